//! Helpers for the `tern bench` tests: command lines against a testkit mosquitto, and the
//! summary line of a `--json` file.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use serde_json::Value;

#[allow(unused_imports)]
#[path = "../pubsub_support/mod.rs"]
mod pubsub_support;
#[allow(unused_imports)]
pub use pubsub_support::*;

/// `tern bench ROLE -h 127.0.0.1 -p PORT --prefix PREFIX ARGS...`.
pub fn bench(role: &str, broker: &Mosquitto, prefix: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = tern(["bench", role]);
    cmd.args(at(broker)).args(["--prefix", prefix]).args(args);
    cmd
}

/// The `{"summary": ...}` object of a `--json` file.
#[track_caller]
pub fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("summary").cloned())
        .unwrap_or_else(|| panic!("no summary in {}:\n{text}", path.display()))
}

/// A counter of a summary.
#[track_caller]
pub fn counter(summary: &Value, name: &str) -> u64 {
    summary["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {summary}"))
}

/// `cmd` with `args` appended.
pub fn and<I, S>(mut cmd: std::process::Command, args: I) -> std::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    cmd.args(args);
    cmd
}
