//! `tern run [--timeout SECS] script.lua [args...]`: runs a NodeMCU Lua script with the
//! `mqtt` and `tmr` modules until nothing is pending.
//!
//! Exit status: 0 when the script finished (no client connecting or connected, no armed
//! timer); `n` after `os.exit(n)`; 1 after an uncaught Lua error (message and traceback on
//! stderr) or an unreadable script; 2 for bad usage; 124 when `--timeout` expired.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tern_lua::{RunError, Runtime};

const USAGE: &str = "\
usage: tern run [--timeout SECS] [--sim FILE] [--trace KINDS] script.lua [args...]

Runs a NodeMCU Lua script with the mqtt and tmr modules. The script sees its path as arg[0]
and its arguments as arg[1], arg[2], ...

  --timeout SECS   stop the script after SECS seconds (fractions allowed), exit status 124
  --sim FILE       simulate the board FILE describes (JSON: inputs, sensors, Wi-Fi drops...;
                   see examples/lua/board.json); MQTT connections go through its simulated
                   access point, and stdin takes commands: gpio PIN LEVEL, wifi drop,
                   wifi up, adc VALUE, dht TEMP HUMI [STATUS]
  --trace KINDS    print a line on stderr per output change or event, for KINDS among
                   gpio, wifi, node, file (comma-separated, or all)
";

/// Exit status after `--timeout`, as coreutils' `timeout` uses.
const TIMED_OUT: u8 = 124;

#[derive(Debug)]
struct Options {
    timeout: Option<Duration>,
    board: BoardOptions,
    script: PathBuf,
    args: Vec<OsString>,
}

// --- the simulated board: `--sim`, `--trace` ---

/// `--sim FILE` and `--trace KINDS`.
#[derive(Debug, Default)]
struct BoardOptions {
    sim: Option<PathBuf>,
    trace: Vec<tern_lua::trace::Kind>,
}

impl BoardOptions {
    /// Takes `text` (and its value from `it`) when it is one of these options.
    fn take(
        &mut self,
        text: &str,
        it: &mut impl Iterator<Item = OsString>,
    ) -> Result<bool, String> {
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) => (n, Some(OsString::from(v))),
            None => (text, None),
        };
        if name != "--sim" && name != "--trace" {
            return Ok(false);
        }
        let value = inline
            .or_else(|| it.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        if name == "--sim" {
            self.sim = Some(PathBuf::from(value));
        } else {
            let kinds = tern_lua::trace::parse_kinds(&value.to_string_lossy())
                .map_err(|e| format!("--trace: {e}"))?;
            self.trace.extend(kinds);
        }
        Ok(true)
    }

    /// Turns tracing on and loads the board; errors are the command line's.
    fn board(&self) -> Result<Option<tern_lua::sim::Board>, String> {
        tern_lua::trace::enable(&self.trace);
        self.sim
            .as_deref()
            .map(tern_lua::sim::Board::load)
            .transpose()
            .map_err(|e| format!("--sim: {e}"))
    }
}

// --- end of the simulated board's options ---

fn parse(args: Vec<OsString>) -> Result<Option<Options>, String> {
    let mut timeout = None;
    let mut board = BoardOptions::default();
    let mut it = args.into_iter();
    let script = loop {
        let Some(arg) = it.next() else {
            return Err("no script given".into());
        };
        let text = arg.to_str().unwrap_or("");
        if text == "-h" || text == "--help" {
            return Ok(None);
        }
        if text == "--" {
            match it.next() {
                Some(s) => break s,
                None => return Err("no script given".into()),
            }
        }
        if board.take(text, &mut it)? {
            continue;
        }
        let value = if text == "--timeout" {
            match it.next() {
                Some(v) => v.to_string_lossy().into_owned(),
                None => return Err("--timeout needs a number of seconds".into()),
            }
        } else if let Some(v) = text.strip_prefix("--timeout=") {
            v.to_owned()
        } else if text.starts_with('-') && text.len() > 1 {
            return Err(format!("unknown option {text:?}"));
        } else {
            break arg;
        };
        let secs: f64 = value
            .parse()
            .map_err(|_| format!("--timeout: {value:?} is not a number of seconds"))?;
        timeout = Some(
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--timeout: {value:?} must be a positive number"))?,
        );
    };
    Ok(Some(Options {
        timeout,
        board,
        script: PathBuf::from(script),
        args: it.collect(),
    }))
}

/// Ends the process with status 124 once `after` has passed, whatever the script is doing
/// (even a busy Lua loop, which no async timeout could interrupt).
fn start_watchdog(after: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        eprintln!(
            "tern: script still running after {} s (--timeout); stopped",
            after.as_secs_f64()
        );
        // `exit` flushes C stdio, through which the script's output goes.
        std::process::exit(i32::from(TIMED_OUT));
    });
}

pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let options = match parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("tern run: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let board = match options.board.board() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tern run: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(after) = options.timeout {
        start_watchdog(after);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tern: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let mut lua = Runtime::new()?;
        if let Some(board) = board {
            lua.simulate(board, true)?;
        }
        lua.set_args(&options.script.to_string_lossy(), &options.args)?;
        lua.exec_file(&options.script)?;
        lua.run().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern: {}", error_text(&e).trim_end());
            ExitCode::FAILURE
        }
    }
}

/// A Lua error as the `lua` interpreter prints it: the message (with its traceback), without
/// the library's "runtime error: " prefix.
fn error_text(e: &RunError) -> String {
    let text = e.to_string();
    match text.strip_prefix("runtime error: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn timeout_comes_before_the_script_and_the_rest_is_the_scripts() {
        let o = parse(os(&["--timeout", "1.5", "s.lua", "a", "--timeout"]))
            .unwrap()
            .unwrap();
        assert_eq!(o.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(o.script, PathBuf::from("s.lua"));
        assert_eq!(o.args, os(&["a", "--timeout"]));
        let o = parse(os(&["--timeout=2", "--", "-s.lua"]))
            .unwrap()
            .unwrap();
        assert_eq!(o.timeout, Some(Duration::from_secs(2)));
        assert_eq!(o.script, PathBuf::from("-s.lua"));
    }

    #[test]
    fn sim_and_trace_come_before_the_script() {
        let o = parse(os(&[
            "--sim",
            "b.json",
            "--trace=gpio,wifi",
            "s.lua",
            "--sim",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.board.sim, Some(PathBuf::from("b.json")));
        assert_eq!(
            o.board.trace,
            vec![tern_lua::trace::Kind::Gpio, tern_lua::trace::Kind::Wifi]
        );
        assert_eq!(o.args, os(&["--sim"]));
        assert!(parse(os(&["--trace", "gpio,bogus", "s.lua"])).is_err());
        assert!(parse(os(&["--sim"])).is_err());
    }

    #[test]
    fn bad_usage_is_reported() {
        assert!(parse(os(&[])).is_err());
        assert!(parse(os(&["--timeout"])).is_err());
        assert!(parse(os(&["--timeout", "x", "s.lua"])).is_err());
        assert!(parse(os(&["--timeout", "0", "s.lua"])).is_err());
        assert!(parse(os(&["--bogus", "s.lua"])).is_err());
        assert!(parse(os(&["--help"])).unwrap().is_none());
    }
}
