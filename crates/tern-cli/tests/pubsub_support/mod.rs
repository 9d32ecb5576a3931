//! Helpers for the `tern pub` / `tern sub` tests: run the built binary against a testkit
//! mosquitto with bounded waits, and know when a subscriber is subscribed from the broker's
//! log (never by sleeping).
#![allow(dead_code, unreachable_pub)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use tern_testkit::{Mosquitto, MosquittoConfig};

/// How long a tern process may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A `tern` command line.
pub fn tern<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.args(args);
    cmd
}

/// `-h 127.0.0.1 -p <port>` for the plain listener.
pub fn at(broker: &Mosquitto) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        broker.port().to_string(),
    ]
}

/// What a finished tern printed and how it exited.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// The exit code (panics on death by signal).
    #[track_caller]
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("tern died by a signal: {self}"))
    }

    /// Stdout as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with everything unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.status.code(), Some(code), "unexpected exit: {self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }
}

/// A running tern; killed when dropped.
pub struct Running {
    what: String,
    child: Option<Child>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    stdin: Option<JoinHandle<()>>,
}

/// Starts `cmd` with piped output, feeding `stdin` (closed after) from a thread.
pub fn spawn(mut cmd: Command, stdin: Option<Vec<u8>>) -> Running {
    let what = format!("{cmd:?}");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = child.stdout.take().map(|o| drain(Box::new(o)));
    let stderr = child.stderr.take().map(|e| drain(Box::new(e)));
    let stdin = match (child.stdin.take(), stdin) {
        (Some(mut pipe), Some(data)) => Some(std::thread::spawn(move || {
            // A broken pipe means tern exited early; its exit status tells the story.
            let _ = pipe.write_all(&data);
        })),
        _ => None,
    };
    Running {
        what,
        child: Some(child),
        stdout,
        stderr,
        stdin,
    }
}

/// Runs `cmd` to completion within [`WAIT`].
pub fn run(cmd: Command) -> Output {
    spawn(cmd, None).wait()
}

/// Runs `cmd` with `input` on stdin, to completion within [`WAIT`].
pub fn run_with_input(cmd: Command, input: impl Into<Vec<u8>>) -> Output {
    spawn(cmd, Some(input.into())).wait()
}

impl Running {
    /// Waits for exit within [`WAIT`]; on timeout kills it and panics with its output.
    pub fn wait(self) -> Output {
        self.wait_within(WAIT)
    }

    /// Waits for exit within `within`.
    pub fn wait_within(mut self, within: Duration) -> Output {
        let deadline = Instant::now() + within;
        let mut child = self.child.take().expect("waited twice");
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            // Polling a process exit: std has no bounded wait.
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = self.collect(status.unwrap_or_else(|| child.wait().expect("wait")));
        assert!(
            status.is_some(),
            "{} did not exit within {within:?}\n{out}",
            self.what
        );
        out
    }

    /// Sends `signal` (a name for kill(1), e.g. `"TERM"`) and leaves it running.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("not running").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Kills it (SIGKILL: no DISCONNECT, so the broker sends the will) and collects output.
    pub fn kill(mut self) -> Output {
        let mut child = self.child.take().expect("killed twice");
        let _ = child.kill();
        let status = child.wait().expect("wait after kill");
        self.collect(status)
    }

    fn collect(&mut self, status: ExitStatus) -> Output {
        if let Some(h) = self.stdin.take() {
            let _ = h.join();
        }
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default());
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        Output {
            status,
            stdout: stdout.unwrap_or_default(),
            stderr: String::from_utf8_lossy(&stderr.unwrap_or_default()).into_owned(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `tern sub` with client id `id` and the given arguments, and returns once the broker
/// has sent its SUBACK (read from the broker's log).
pub fn subscribed<I, S>(broker: &Mosquitto, id: &str, args: I) -> Running
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = tern(["sub", "-i", id]);
    cmd.args(args);
    let running = spawn(cmd, None);
    broker.wait_for_log(&format!("Sending SUBACK to {id}"));
    running
}
