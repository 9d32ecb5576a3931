//! `tern bench report`: merges runs.

use std::process::ExitCode;

/// `tern bench report FILES... [--svg OUT]`.
pub(crate) fn main(_args: &[String]) -> ExitCode {
    ExitCode::SUCCESS
}
