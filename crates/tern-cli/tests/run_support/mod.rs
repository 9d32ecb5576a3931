//! Shared by the `run_*` tests: runs the built `tern` binary with `tern run` on an example or
//! a purpose-written script, bounded by tern's own `--timeout`.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every run is stopped by `tern run --timeout` after this many seconds (exit status 124,
/// which the assertions then report), so a hung script fails the test instead of hanging it.
pub const RUN_TIMEOUT_SECS: u32 = 30;

/// What a `tern run` printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Panics with the whole output unless the exit status is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit status\n{self}");
        self
    }

    /// Panics unless the exit status is 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        self.assert_code(0)
    }

    /// Panics unless stdout is exactly these lines.
    #[track_caller]
    pub fn assert_lines(&self, want: &[&str]) -> &Self {
        assert_eq!(self.lines(), want, "unexpected output\n{self}");
        self
    }

    /// Panics unless stdout has a line equal to `line`.
    #[track_caller]
    pub fn assert_has_line(&self, line: &str) -> &Self {
        assert!(self.lines().contains(&line), "no line {line:?}\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit status {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `examples/lua/<name>`.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/lua")
        .join(name)
}

/// Writes `src` to a fresh file under Cargo's per-test scratch directory.
pub fn script(src: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lua");
    std::fs::create_dir_all(&dir).expect("cannot create the scratch directory");
    let path = dir.join(format!(
        "script-{}-{}.lua",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, src).expect("cannot write the script");
    path
}

/// A `tern run --timeout N <script> <args>` command, for adding environment variables.
pub fn command(script: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.arg("run")
        .arg("--timeout")
        .arg(RUN_TIMEOUT_SECS.to_string())
        .arg(script)
        .args(args);
    cmd
}

/// A `tern run --timeout N <flags> <script> <args>` command (`--firmware`, `--fs`, ...).
pub fn command_with(flags: &[&str], script: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.arg("run")
        .arg("--timeout")
        .arg(RUN_TIMEOUT_SECS.to_string())
        .args(flags)
        .arg(script)
        .args(args);
    cmd
}

/// Runs a purpose-written script with `tern run <flags>`.
pub fn run_src_with(flags: &[&str], src: &str, args: &[&str]) -> Run {
    run_command(command_with(flags, &script(src), args))
}

/// Runs a prepared command to completion.
pub fn run_command(mut cmd: Command) -> Run {
    let out = cmd.output().expect("cannot run the tern binary");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `tern run <script> <args>`.
pub fn run(script: &Path, args: &[&str]) -> Run {
    run_command(command(script, args))
}

/// Runs a purpose-written script with `args`.
pub fn run_src(src: &str, args: &[&str]) -> Run {
    run(&script(src), args)
}

/// A multi-threaded tokio runtime for the testkit's async servers, which keep running on its
/// workers while the test blocks on the `tern` process.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the test servers")
}

/// A `tern run` still running, its stdout read line by line.
pub struct Spawned {
    child: std::process::Child,
    /// The child's stdin, when the command piped it.
    stdin: Option<std::process::ChildStdin>,
    /// How long [`Spawned::wait_for_line`] waits.
    line_wait: std::time::Duration,
    finished: bool,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// How long [`Spawned::wait_for_line`] waits.
pub const LINE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Starts a prepared `tern run` command with piped output (and its stdin kept for
/// [`Spawned::send`] when the command pipes it).
pub fn spawn(mut cmd: Command) -> Spawned {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot run the tern binary");
    let out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    Spawned {
        stdin: child.stdin.take(),
        child,
        line_wait: LINE_WAIT,
        finished: false,
        lines,
        seen: Vec::new(),
        stderr,
    }
}

impl Spawned {
    /// Waits for lines at most `wait` each (default [`LINE_WAIT`]).
    pub fn line_wait(mut self, wait: std::time::Duration) -> Self {
        self.line_wait = wait;
        self
    }

    /// Types `line` on the child's stdin (the command must have piped it).
    pub fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin is piped and open");
        writeln!(stdin, "{line}").expect("tern's stdin is open");
        stdin.flush().expect("tern's stdin is open");
    }

    /// Ends the child's stdin: no more input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits (at most the line wait) for the stdout line `want`; panics with what was seen.
    #[track_caller]
    pub fn wait_for_line(&mut self, want: &str) {
        let wait = self.line_wait;
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line == want;
                    self.seen.push(line);
                    if done {
                        return;
                    }
                }
                Err(e) => panic!(
                    "no line {want:?} within {wait:?} ({e}); got:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Stops the process (a firmware runs forever) and returns everything it printed.
    pub fn stop(mut self) -> Run {
        let _ = self.child.kill();
        self.finish()
    }

    /// Waits for the process to end by itself (bounded by `tern run --timeout`), returning
    /// everything it printed.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().expect("waiting for tern");
        self.finished = true;
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.lines.iter());
        let mut stdout = lines.join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        Run {
            code: status.code(),
            stdout,
            stderr: std::mem::replace(&mut self.stderr, std::thread::spawn(String::new))
                .join()
                .unwrap_or_default(),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
