//! Placeholder: filled in by its own work item.

use std::ffi::OsString;
use std::process::ExitCode;

pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let _ = args;
    eprintln!("tern: not built yet");
    ExitCode::from(2)
}
