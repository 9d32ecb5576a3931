//! `tern run [--timeout SECS] [--firmware esp8266|esp32] [--fs DIR] [--sim FILE] [--trace KINDS]
//! script.lua [args...]`: runs a NodeMCU Lua script until nothing is pending.
//! `node.restart()` / `node.dsleep()` start it again from a fresh Lua state, within the same
//! `--timeout`, on the same simulated board (its inputs, sensors and access point as they are
//! then, its schedule going on).
//!
//! Exit status: 0 when the script finished (no client connecting or connected, no armed
//! timer); `n` after `os.exit(n)`; 1 after an uncaught Lua error (message and traceback on
//! stderr) or an unreadable script; 2 for bad usage; 124 when `--timeout` expired.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tern_lua::{Config, Firmware, Reboot, RunError, Runtime};

const USAGE: &str = "\
usage: tern run [--timeout SECS] [--firmware esp8266|esp32] [--fs DIR] [--sim FILE]
                [--trace KINDS] script.lua [args...]

Runs a NodeMCU Lua script with the mqtt, tmr, node, file, sjson, cjson, tls, gpio, wifi,
dht and adc modules. The script sees its path as arg[0] and its arguments as arg[1],
arg[2], ...

  --timeout SECS      stop the script after SECS seconds (fractions allowed), exit status 124;
                      covers restarts (node.restart, node.dsleep) too
  --firmware NAME     follow the esp8266 or esp32 (default) NodeMCU firmware where they differ
  --fs DIR            the flash file system for file, require and dofile (default: the
                      script's directory); nothing outside it is read or written
  --sim FILE          simulate the board FILE describes (JSON: inputs, sensors, Wi-Fi
                      drops...; see examples/lua/board.json); MQTT connections go through
                      its simulated access point, and stdin takes commands: gpio PIN LEVEL,
                      wifi drop, wifi up, adc VALUE, dht TEMP HUMI [STATUS]
  --trace KINDS       print a line on stderr per output change or event, for KINDS among
                      gpio, wifi, node, file (comma-separated, or all)
";

/// Exit status after `--timeout`, as coreutils' `timeout` uses.
const TIMED_OUT: u8 = 124;

#[derive(Debug)]
struct Options {
    timeout: Option<Duration>,
    firmware: Firmware,
    fs: Option<PathBuf>,
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
    let mut firmware = Firmware::default();
    let mut fs = None;
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
        // ---- lua1 flags: --firmware, --fs ----
        if let Some(v) = flag_value(text, "--firmware", &mut it)? {
            firmware = v.parse().map_err(|e| format!("--firmware: {e}"))?;
            continue;
        }
        if let Some(v) = flag_value(text, "--fs", &mut it)? {
            fs = Some(PathBuf::from(v));
            continue;
        }
        // ---- end of lua1 flags ----
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
        firmware,
        fs,
        board,
        script: PathBuf::from(script),
        args: it.collect(),
    }))
}

/// The value of `--name VALUE` or `--name=VALUE` when `text` is that flag.
fn flag_value(
    text: &str,
    name: &str,
    it: &mut impl Iterator<Item = OsString>,
) -> Result<Option<String>, String> {
    if text == name {
        return match it.next() {
            Some(v) => Ok(Some(v.to_string_lossy().into_owned())),
            None => Err(format!("{name} needs a value")),
        };
    }
    Ok(text
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
        .map(str::to_owned))
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
    let mut board = match options.board.board() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tern run: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(after) = options.timeout {
        start_watchdog(after);
    }
    let fs = match &options.fs {
        Some(dir) if !dir.is_dir() => {
            eprintln!("tern run: --fs {}: not a directory", dir.display());
            return ExitCode::from(2);
        }
        Some(dir) => dir.clone(),
        // The script's directory: its files sit beside it, as on the flash.
        None => match options.script.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    let mut config = Config {
        firmware: options.firmware,
        fs: Some(fs),
        ..Config::default()
    };
    if let Some(b) = &board {
        b.apply_to(&mut config.board); // chip id, heap: what `node` reports
    }
    // Each turn is one boot of the board, in its own async runtime: a reboot drops the
    // runtime with the connections' tasks, so they end as when the power goes (no
    // DISCONNECT; the broker publishes the will). Bounded by --timeout: as on the device, a
    // script that keeps restarting runs until stopped. The simulated board outlives the
    // boots: each one starts on its state at the reboot, and stdin keeps driving it.
    let result = loop {
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
        let boot = rt.block_on(async {
            let mut lua = Runtime::with_config(config.clone())?;
            if let Some(b) = board.take() {
                lua.simulate(b, true)?;
            }
            lua.set_args(&options.script.to_string_lossy(), &options.args)?;
            lua.exec_file(&options.script)?;
            lua.run().await?;
            Ok::<_, RunError>(lua)
        });
        let mut lua = match boot {
            Ok(lua) => lua,
            Err(e) => break Err(e),
        };
        let reboot = lua.reboot_requested();
        // The board as it is now; what happens to it while the board reboots applies below.
        let snapshot = reboot
            .and_then(|_| lua.take_board())
            .map(|b| (b, std::time::Instant::now()));
        drop(rt);
        drop(lua);
        match reboot {
            None => break Ok(()),
            Some(Reboot::After(delay, reason)) => {
                config.boot_reason = reason;
                std::thread::sleep(delay);
            }
            Some(Reboot::SleepForever) => {
                eprintln!("tern: node.dsleep(0): the board sleeps until reset; stopping");
                break Ok(());
            }
        }
        board = snapshot.map(|(b, at)| b.advanced(at.elapsed()));
    };
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
    let text = tern_lua::tidy_traceback(&e.to_string());
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
    fn firmware_and_fs_come_before_the_script() {
        let o = parse(os(&[
            "--firmware",
            "esp8266",
            "--fs=/flash",
            "s.lua",
            "--fs",
            "x",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.firmware, Firmware::Esp8266);
        assert_eq!(o.fs, Some(PathBuf::from("/flash")));
        assert_eq!(o.args, os(&["--fs", "x"]));
        let o = parse(os(&["s.lua"])).unwrap().unwrap();
        assert_eq!((o.firmware, o.fs), (Firmware::Esp32, None));
        assert!(parse(os(&["--firmware", "esp42", "s.lua"])).is_err());
        assert!(parse(os(&["--fs"])).is_err());
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
