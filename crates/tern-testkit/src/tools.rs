//! `mosquitto_pub` / `mosquitto_sub` runners aimed at a launched broker, for cross-checking tern
//! against the reference clients. Every wait is bounded.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::mosquitto::{Mosquitto, require_mosquitto_tool};
use crate::util::DEFAULT_WAIT;

/// A reference-client command line under construction, pre-aimed at a [`Mosquitto`].
///
/// Built by [`Mosquitto::mosquitto_pub`] / [`Mosquitto::mosquitto_sub`]; finished with
/// [`run`](Self::run) (wait for exit) or [`spawn`](Self::spawn) (keep it running).
#[derive(Debug, Clone)]
pub struct ToolCommand {
    name: &'static str,
    program: PathBuf,
    port: u16,
    tls_port: Option<u16>,
    ca: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    require_certificate: bool,
    use_tls: bool,
    args: Vec<OsString>,
    timeout: Duration,
}

impl ToolCommand {
    pub(crate) fn new(name: &'static str, broker: &Mosquitto) -> Self {
        let tls_port = broker.tls_port_opt();
        Self {
            name,
            program: require_mosquitto_tool(name),
            port: broker.port(),
            tls_port,
            ca: tls_port.map(|_| broker.tls().ca.cert_path.clone()),
            client_cert: tls_port.map(|_| {
                let c = &broker.tls().client;
                (c.cert_path.clone(), c.key_path.clone())
            }),
            require_certificate: broker.require_certificate_on(),
            use_tls: false,
            args: Vec::new(),
            timeout: DEFAULT_WAIT,
        }
    }

    /// Connects to the TLS listener, trusting the test CA (`--cafile`), and presents the test
    /// client certificate when the broker requires one. Panics if the broker has no TLS.
    pub fn tls(mut self) -> Self {
        assert!(
            self.tls_port.is_some(),
            "{}: the broker has no TLS listener (MosquittoConfig::tls())",
            self.name
        );
        self.use_tls = true;
        self
    }

    /// Trusts this CA file instead of the test CA (e.g. the wrong CA). Implies
    /// [`tls`](Self::tls).
    pub fn cafile(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self.tls()
    }

    /// Presents this client certificate and key. Implies [`tls`](Self::tls).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self.require_certificate = true;
        self.tls()
    }

    /// `-t topic`.
    pub fn topic(self, topic: &str) -> Self {
        self.arg("-t").arg(topic)
    }

    /// `-m message` (mosquitto_pub).
    pub fn message(self, message: &str) -> Self {
        self.arg("-m").arg(message)
    }

    /// `-q qos`.
    pub fn qos(self, qos: u8) -> Self {
        self.arg("-q").arg(qos.to_string())
    }

    /// `-u user -P password`.
    pub fn auth(self, user: &str, password: &str) -> Self {
        self.arg("-u").arg(user).arg("-P").arg(password)
    }

    /// `-i client_id`.
    pub fn id(self, id: &str) -> Self {
        self.arg("-i").arg(id)
    }

    /// `-C count` (mosquitto_sub: exit after `count` messages).
    pub fn count(self, count: u32) -> Self {
        self.arg("-C").arg(count.to_string())
    }

    /// `-V mqttv31` (protocol 3.1) instead of the tools' default 3.1.1.
    pub fn v31(self) -> Self {
        self.arg("-V").arg("mqttv31")
    }

    /// Any other argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// How long [`run`](Self::run) and the [`RunningTool`] waits last; default 10 s.
    pub fn timeout(mut self, dur: Duration) -> Self {
        self.timeout = dur;
        self
    }

    /// The `std::process::Command` this describes, for callers who want to drive it themselves.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-h").arg("127.0.0.1");
        if self.use_tls {
            // Infallible: `tls()` asserted the port exists.
            let port = self.tls_port.unwrap_or(self.port);
            cmd.arg("-p").arg(port.to_string());
            if let Some(ca) = &self.ca {
                cmd.arg("--cafile").arg(ca);
            }
            if self.require_certificate
                && let Some((cert, key)) = &self.client_cert
            {
                cmd.arg("--cert").arg(cert).arg("--key").arg(key);
            }
        } else {
            cmd.arg("-p").arg(self.port.to_string());
        }
        cmd.args(&self.args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs to completion (bounded by the timeout: on expiry the process is killed and the test
    /// panics with its output so far).
    pub fn run(self) -> ToolOutput {
        let timeout = self.timeout;
        let running = self.spawn();
        running.finish_within(timeout)
    }

    /// Starts the program and returns at once; it is killed when the handle drops.
    pub fn spawn(self) -> RunningTool {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program.display()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().map(|out| {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
        });
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = err.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        });
        RunningTool {
            name: self.name,
            child: Some(child),
            lines: rx,
            seen: Vec::new(),
            stdout,
            stderr,
            timeout: self.timeout,
        }
    }
}

/// What a finished tool printed, and how it exited.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl ToolOutput {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics (showing the output) unless it exited with status 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "tool failed: {self}");
        self
    }

    /// Panics (showing the output) if it exited with status 0.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(!self.success(), "tool unexpectedly succeeded: {self}");
        self
    }
}

impl std::fmt::Display for ToolOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A reference tool still running (typically `mosquitto_sub`); killed on drop.
#[derive(Debug)]
pub struct RunningTool {
    name: &'static str,
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
    timeout: Duration,
}

impl RunningTool {
    /// Waits (bounded by the command's timeout) for a stdout line satisfying `pred` and
    /// returns it; earlier lines are kept for [`finish`](Self::finish).
    ///
    /// `mosquitto_sub` flushes after each message it prints, but not after `-d` debug lines
    /// (C stdio buffers a pipe), so do not wait for "SUBACK" here: give the subscriber an id and
    /// use [`Mosquitto::wait_for_log`] with `"Sending SUBACK to <id>"`.
    pub fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{}: no matching output line within {:?}; got:\n{}",
                    self.name,
                    self.timeout,
                    self.seen.join("\n")
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "{}: exited without a matching output line; got:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits (bounded by the command's timeout) for the tool to exit by itself.
    pub fn finish(self) -> ToolOutput {
        let timeout = self.timeout;
        self.finish_within(timeout)
    }

    /// Kills the tool and collects what it printed.
    pub fn kill(mut self) -> ToolOutput {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
        }
        self.finish_within(DEFAULT_WAIT)
    }

    fn finish_within(mut self, within: Duration) -> ToolOutput {
        // Infallible: `child` is only taken here and in Drop.
        let Some(mut child) = self.child.take() else {
            unreachable!("finish called twice")
        };
        let deadline = Instant::now() + within;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            // Polling a process exit: std offers no bounded wait.
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        self.seen.extend(self.lines.try_iter());
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let mut stdout = self.seen.join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        let Some(status) = status else {
            panic!(
                "{} did not exit within {within:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                self.name
            );
        };
        ToolOutput {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for RunningTool {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
