//! `tern run --trace KINDS`: one line on stderr per output change or board event, so a person
//! or a test can follow what the firmware does to the board.
//!
//! Each line is `trace SECONDS KIND WHAT VALUE`: seconds since tracing was enabled (three
//! decimals), the kind (`gpio`, `wifi`, `node`, `file`), what changed and its new value, e.g.
//! `trace 0.214 gpio 4 1` or `trace 0.100 wifi STA_GOT_IP 127.0.0.1`.
//!
//! The sink is process-wide (a board has one serial console), so any module can call
//! [`emit`] without a handle; it costs one atomic load when the kind is off.

use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

/// What a trace line is about; `--trace` takes their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Pin modes, output levels, input changes, interrupts armed; sensor values set by the
    /// simulation (`adc`, `dht`).
    Gpio,
    /// Station events and link changes.
    Wifi,
    /// `node` calls (restart, sleep...).
    Node,
    /// File system writes.
    File,
}

impl Kind {
    /// Every kind, in `--trace` order.
    pub const ALL: [Self; 4] = [Self::Gpio, Self::Wifi, Self::Node, Self::File];

    /// The kind's name in `--trace` and in trace lines.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Gpio => "gpio",
            Self::Wifi => "wifi",
            Self::Node => "node",
            Self::File => "file",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A `--trace` list named a kind that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trace kind {0:?} (expected gpio, wifi, node, file or all)")]
pub struct UnknownKind(pub String);

/// Parses a comma-separated `--trace` list (`gpio,wifi`, `all`).
pub fn parse_kinds(list: &str) -> Result<Vec<Kind>, UnknownKind> {
    let mut kinds = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "all" {
            kinds.extend(Kind::ALL);
            continue;
        }
        match Kind::ALL.into_iter().find(|k| k.name() == name) {
            Some(k) => kinds.push(k),
            None => return Err(UnknownKind(name.to_owned())),
        }
    }
    Ok(kinds)
}

static ENABLED: AtomicU8 = AtomicU8::new(0);
static START: OnceLock<Instant> = OnceLock::new();

/// Turns tracing on for `kinds` (adding to those already on). Times count from the first
/// call.
pub fn enable(kinds: &[Kind]) {
    START.get_or_init(Instant::now);
    for k in kinds {
        ENABLED.fetch_or(k.bit(), Ordering::Relaxed);
    }
}

/// True when lines of `kind` are printed; check it before building an expensive value.
pub fn enabled(kind: Kind) -> bool {
    ENABLED.load(Ordering::Relaxed) & kind.bit() != 0
}

/// Prints `trace SECONDS KIND WHAT VALUE` on stderr when `kind` is traced.
pub fn emit(kind: Kind, what: impl Display, value: impl Display) {
    if !enabled(kind) {
        return;
    }
    let secs = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    let line = format!("trace {secs:.3} {} {what} {value}\n", kind.name());
    // One write per line so lines from several threads never interleave; a closed stderr
    // is not the script's problem.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name_and_all() {
        assert_eq!(
            parse_kinds("gpio, wifi").unwrap(),
            vec![Kind::Gpio, Kind::Wifi]
        );
        assert_eq!(parse_kinds("all").unwrap(), Kind::ALL.to_vec());
        assert_eq!(parse_kinds("gpio,adc"), Err(UnknownKind("adc".to_owned())));
    }
}
