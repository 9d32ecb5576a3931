//! A real mosquitto broker per test: generated config, free loopback ports, captured log,
//! killed on drop.
//!
//! mosquitto 2.0 opens no default listener when given a config file, so every listener here is
//! written out as `listener <port> 127.0.0.1`. Ports are picked by binding port 0 and releasing
//! it; if mosquitto then finds one taken, the launcher picks new ones and tries again.

use std::env;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tls::TlsMaterial;
use crate::tools::ToolCommand;
use crate::util::{DEFAULT_WAIT, LOCALHOST, free_port};

/// Where to look for the mosquitto programs besides `PATH` (Debian puts the broker in `sbin`,
/// which is not on a normal user's `PATH`; Homebrew uses its own prefix).
const EXTRA_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/local/sbin",
    "/usr/bin",
    "/usr/local/bin",
    "/opt/homebrew/sbin",
    "/opt/homebrew/bin",
];

/// How many times a fresh start picks new ports after mosquitto reports "address in use".
const START_ATTEMPTS: usize = 5;

/// Finds `name` in `$env_var`, then `PATH`, then the usual install directories.
fn find_program(name: &str, env_var: Option<&str>) -> Option<PathBuf> {
    if let Some(p) = env_var.and_then(env::var_os) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    let path_dirs = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn missing(name: &str) -> ! {
    let ci = env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    panic!("{}", missing_message(name, ci))
}

fn missing_message(name: &str, ci: bool) -> String {
    if ci {
        return format!(
            "{name} not installed; .ci/run installs it (looked in PATH and {EXTRA_DIRS:?})"
        );
    }
    format!(
        "{name} not found (looked in PATH and {EXTRA_DIRS:?}). These tests need a real \
         mosquitto 2.x and its clients: `apt-get install mosquitto mosquitto-clients` \
         (Debian/Ubuntu) or `brew install mosquitto` (macOS); TERN_MOSQUITTO may name the \
         broker's path. Tests fail rather than skip so that a missing broker is never mistaken \
         for a pass."
    )
}

/// The path of the `mosquitto` broker; panics with install instructions when it is missing.
///
/// Never skips: under `CI=true` the message says `.ci/run` should have installed it; elsewhere
/// it says how to install it. `TERN_MOSQUITTO` overrides the lookup.
pub fn require_mosquitto() -> PathBuf {
    find_program("mosquitto", Some("TERN_MOSQUITTO")).unwrap_or_else(|| missing("mosquitto"))
}

/// The path of a mosquitto client program (`mosquitto_pub`, `mosquitto_sub`,
/// `mosquitto_passwd`); panics like [`require_mosquitto`] when it is missing.
pub fn require_mosquitto_tool(name: &str) -> PathBuf {
    find_program(name, None).unwrap_or_else(|| missing(name))
}

/// How a [`Mosquitto`] is configured: a by-value builder, finished by [`MosquittoConfig::start`].
///
/// Defaults: one plain listener, anonymous clients allowed, no persistence, mosquitto's own
/// limits and TCP settings (Nagle's algorithm on: `set_tcp_nodelay false`), verbose logging
/// (`log_type all`) captured to a file. [`MosquittoConfig::stock`] is mosquitto's own
/// defaults throughout, logging included, for timings.
#[derive(Debug, Clone)]
pub struct MosquittoConfig {
    allow_anonymous: bool,
    users: Vec<(String, String)>,
    acl: Option<Vec<String>>,
    persistence: bool,
    autosave_interval: Option<u32>,
    tls: bool,
    require_certificate: bool,
    websockets: bool,
    websockets_tls: bool,
    unix_socket: bool,
    max_inflight_messages: Option<u32>,
    max_queued_messages: Option<u32>,
    max_packet_size: Option<u32>,
    tcp_nodelay: Option<bool>,
    log_all: bool,
    extra_lines: Vec<String>,
    start_timeout: Duration,
}

impl Default for MosquittoConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl MosquittoConfig {
    /// The defaults: anonymous allowed, one plain listener.
    pub fn new() -> Self {
        Self {
            allow_anonymous: true,
            users: Vec::new(),
            acl: None,
            persistence: false,
            autosave_interval: None,
            tls: false,
            require_certificate: false,
            websockets: false,
            websockets_tls: false,
            unix_socket: false,
            max_inflight_messages: None,
            max_queued_messages: None,
            max_packet_size: None,
            tcp_nodelay: None,
            log_all: true,
            extra_lines: Vec::new(),
            start_timeout: DEFAULT_WAIT,
        }
    }

    /// A broker as users run it: mosquitto's default settings, in particular Nagle's
    /// algorithm on (`set_tcp_nodelay false`, written out) and its default logging (no line
    /// per message), but anonymous clients allowed on the loopback listener as ever here.
    /// What timing comparisons should run against.
    pub fn stock() -> Self {
        Self {
            tcp_nodelay: Some(false),
            log_all: false,
            ..Self::new()
        }
    }

    /// `set_tcp_nodelay`: `true` turns Nagle's algorithm off on the broker's sockets (as
    /// benchmarks often do); mosquitto's default, and this config's unless set, is `false`.
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = Some(on);
        self
    }

    /// Adds a Unix domain socket listener (`listener 0 <dir>/mqtt.sock`, mosquitto 2.0+);
    /// its path is [`Mosquitto::unix_path`].
    pub fn unix_socket(mut self) -> Self {
        self.unix_socket = true;
        self
    }

    /// `allow_anonymous`; default `true` (mosquitto 2.0's own default is `false`).
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// Adds a user to the generated password file (hashed with `mosquitto_passwd -U`).
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Writes these lines to an ACL file and sets `acl_file` to it.
    ///
    /// Lines before any `user` line apply to anonymous clients, as in mosquitto's docs.
    pub fn acl<I, S>(mut self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acl = Some(lines.into_iter().map(Into::into).collect());
        self
    }

    /// `persistence true` with `persistence_location` in the broker's temp dir; the database
    /// survives [`Mosquitto::restart`] (SIGTERM makes mosquitto save it).
    pub fn persistence(mut self, on: bool) -> Self {
        self.persistence = on;
        self
    }

    /// `autosave_interval` in seconds (only meaningful with persistence).
    pub fn autosave_interval(mut self, secs: u32) -> Self {
        self.autosave_interval = Some(secs);
        self
    }

    /// Adds a TLS listener using a server certificate from freshly generated [`TlsMaterial`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Mutual TLS: `require_certificate true` (implies [`tls`](Self::tls)). Client
    /// certificates must be signed by the test CA. Applies to the WebSocket TLS listener too.
    pub fn require_certificate(mut self, on: bool) -> Self {
        self.require_certificate = on;
        if on {
            self.tls = true;
        }
        self
    }

    /// Adds a plain WebSocket listener (`protocol websockets`).
    pub fn websockets(mut self) -> Self {
        self.websockets = true;
        self
    }

    /// Adds a WebSocket listener over TLS, with the same server certificate as the TLS listener.
    pub fn websockets_tls(mut self) -> Self {
        self.websockets_tls = true;
        self
    }

    /// `max_inflight_messages` (per client, outgoing QoS 1/2).
    pub fn max_inflight_messages(mut self, n: u32) -> Self {
        self.max_inflight_messages = Some(n);
        self
    }

    /// `max_queued_messages` (per client, beyond the in-flight ones).
    pub fn max_queued_messages(mut self, n: u32) -> Self {
        self.max_queued_messages = Some(n);
        self
    }

    /// `max_packet_size` in bytes: the broker disconnects clients sending bigger packets.
    pub fn max_packet_size(mut self, bytes: u32) -> Self {
        self.max_packet_size = Some(bytes);
        self
    }

    /// A raw config line, written in the global section before the listeners.
    pub fn line(mut self, line: impl Into<String>) -> Self {
        self.extra_lines.push(line.into());
        self
    }

    /// How long to wait for the broker to start accepting; default 10 s.
    pub fn start_timeout(mut self, dur: Duration) -> Self {
        self.start_timeout = dur;
        self
    }

    /// Starts the broker. Same as [`Mosquitto::start`].
    pub fn start(self) -> Mosquitto {
        Mosquitto::start(self)
    }

    fn needs_tls_material(&self) -> bool {
        self.tls || self.websockets_tls
    }

    /// Renders the config file.
    fn render(&self, ports: &Ports, files: &Files, tls: Option<&TlsMaterial>) -> String {
        let mut c = String::new();
        // Infallible: writing to a String cannot fail.
        let mut line = |s: String| {
            c.push_str(&s);
            c.push('\n');
        };
        line("# generated by tern-testkit".into());
        if is_root() {
            // Running as root, mosquitto drops to user `mosquitto`, which cannot read or write
            // our 0700 temp dirs. Stay root (mosquitto only warns).
            line("user root".into());
        }
        line("log_dest stderr".into());
        if self.log_all {
            line("log_type all".into());
        } else {
            // mosquitto's default log types.
            for t in ["error", "warning", "notice", "information"] {
                line(format!("log_type {t}"));
            }
        }
        line("log_timestamp true".into());
        line("log_timestamp_format %H:%M:%S".into());
        line("per_listener_settings false".into());
        line(format!("allow_anonymous {}", self.allow_anonymous));
        if let Some(p) = &files.password {
            line(format!("password_file {}", p.display()));
        }
        if let Some(p) = &files.acl {
            line(format!("acl_file {}", p.display()));
        }
        if self.persistence {
            line("persistence true".into());
            line(format!(
                "persistence_location {}/",
                files.persistence.display()
            ));
            if let Some(s) = self.autosave_interval {
                line(format!("autosave_interval {s}"));
            }
        }
        if let Some(n) = self.max_inflight_messages {
            line(format!("max_inflight_messages {n}"));
        }
        if let Some(n) = self.max_queued_messages {
            line(format!("max_queued_messages {n}"));
        }
        if let Some(n) = self.max_packet_size {
            line(format!("max_packet_size {n}"));
        }
        if let Some(on) = self.tcp_nodelay {
            line(format!("set_tcp_nodelay {on}"));
        }
        for l in &self.extra_lines {
            line(l.clone());
        }
        let tls_lines = |line: &mut dyn FnMut(String)| {
            // Infallible: ports with TLS are only allocated when material exists.
            if let Some(t) = tls {
                line(format!("cafile {}", t.ca.cert_path.display()));
                line(format!("certfile {}", t.server.cert_path.display()));
                line(format!("keyfile {}", t.server.key_path.display()));
                line(format!("require_certificate {}", self.require_certificate));
            }
        };
        line(String::new());
        line(format!("listener {} 127.0.0.1", ports.mqtt));
        if let Some(p) = ports.tls {
            line(String::new());
            line(format!("listener {p} 127.0.0.1"));
            tls_lines(&mut line);
        }
        if let Some(p) = ports.ws {
            line(String::new());
            line(format!("listener {p} 127.0.0.1"));
            line("protocol websockets".into());
        }
        if self.unix_socket {
            line(String::new());
            line(format!("listener 0 {}", files.unix.display()));
        }
        if let Some(p) = ports.wss {
            line(String::new());
            line(format!("listener {p} 127.0.0.1"));
            line("protocol websockets".into());
            tls_lines(&mut line);
        }
        c
    }
}

/// The ports of one broker; each `Option` is `Some` when that listener is configured.
#[derive(Debug, Clone, Copy)]
struct Ports {
    mqtt: u16,
    tls: Option<u16>,
    ws: Option<u16>,
    wss: Option<u16>,
}

impl Ports {
    fn pick(config: &MosquittoConfig) -> Self {
        let some = |on: bool| on.then(free_port);
        Self {
            mqtt: free_port(),
            tls: some(config.tls),
            ws: some(config.websockets),
            wss: some(config.websockets_tls),
        }
    }
}

#[derive(Debug)]
struct Files {
    conf: PathBuf,
    unix: PathBuf,
    log: PathBuf,
    password: Option<PathBuf>,
    acl: Option<PathBuf>,
    persistence: PathBuf,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A running mosquitto, killed when dropped.
///
/// If the test is panicking when this drops, the broker's log is printed to stderr (the test
/// harness shows it with the failure).
///
/// ```no_run
/// use tern_testkit::{Mosquitto, MosquittoConfig};
/// let broker = MosquittoConfig::new().user("alice", "secret").allow_anonymous(false).start();
/// let out = broker.mosquitto_pub().auth("alice", "secret").topic("t").message("hi").run();
/// out.assert_success();
/// ```
#[derive(Debug)]
pub struct Mosquitto {
    config: MosquittoConfig,
    program: PathBuf,
    ports: Ports,
    files: Files,
    tls: Option<TlsMaterial>,
    child: Option<Child>,
    /// Declared last so it is removed after the child is gone.
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts a broker with `config`; panics (with the broker's log) if it does not come up
    /// within the start timeout.
    pub fn start(config: MosquittoConfig) -> Self {
        let program = require_mosquitto();
        let dir = tempfile::Builder::new()
            .prefix("tern-mosquitto-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for mosquitto: {e}"));
        let root = dir.path().to_path_buf();
        let tls = config.needs_tls_material().then(|| {
            let tls_dir = root.join("tls");
            mkdir(&tls_dir);
            TlsMaterial::generate_in(&tls_dir)
        });
        let persistence = root.join("persistence");
        mkdir(&persistence);
        let files = Files {
            conf: root.join("mosquitto.conf"),
            unix: root.join("mqtt.sock"),
            log: root.join("mosquitto.log"),
            password: (!config.users.is_empty()).then(|| write_password_file(&root, &config)),
            acl: config.acl.as_ref().map(|lines| {
                let p = root.join("acl");
                write_file(&p, &(lines.join("\n") + "\n"));
                p
            }),
            persistence,
        };
        let mut broker = Self {
            ports: Ports::pick(&config),
            config,
            program,
            files,
            tls,
            child: None,
            dir,
        };
        for attempt in 1..=START_ATTEMPTS {
            if attempt > 1 {
                broker.ports = Ports::pick(&broker.config);
            }
            broker.write_conf();
            match broker.spawn_and_wait() {
                Ok(()) => return broker,
                Err(StartError::AddrInUse) => continue,
                Err(StartError::Failed(why)) => panic!("{why}\n{}", broker.log_banner()),
            }
        }
        panic!(
            "mosquitto found its ports in use {START_ATTEMPTS} times in a row\n{}",
            broker.log_banner()
        );
    }

    /// Starts a broker with the default config (one plain listener, anonymous allowed).
    pub fn start_default() -> Self {
        Self::start(MosquittoConfig::new())
    }

    /// Starts the broker again on the same ports with the same config and files (stopping it
    /// first with SIGTERM if it is still running). With persistence on, sessions and retained
    /// messages survive.
    ///
    /// Retries "address in use" for the start timeout, since the ports must stay the same.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        let deadline = Instant::now() + self.config.start_timeout;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(StartError::AddrInUse) if Instant::now() < deadline => {
                    // Polling for a port to come free: no event to await.
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(StartError::AddrInUse) => panic!(
                    "mosquitto restart: its ports were still in use after {:?}\n{}",
                    self.config.start_timeout,
                    self.log_banner()
                ),
                Err(StartError::Failed(why)) => panic!("{why}\n{}", self.log_banner()),
            }
        }
    }

    /// Stops the broker with SIGTERM and waits (10 s at most) for it to exit; mosquitto saves
    /// its persistence database on the way out. No-op if it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain syscall on a pid we own and have not reaped yet (it is still our
        // child, so the pid cannot have been reused).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if wait_child(&mut child, DEFAULT_WAIT).is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "mosquitto did not exit within {DEFAULT_WAIT:?} of SIGTERM\n{}",
                self.log_banner()
            );
        }
    }

    /// Kills the broker with SIGKILL (a crash: nothing saved, no DISCONNECT, sockets reset by
    /// the kernel) and reaps it. No-op if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the broker process is alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The host every listener binds: `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The plain MQTT port.
    pub fn port(&self) -> u16 {
        self.ports.mqtt
    }

    /// The Unix domain socket's path; panics if the config has no
    /// [`unix_socket`](MosquittoConfig::unix_socket).
    pub fn unix_path(&self) -> &Path {
        assert!(
            self.config.unix_socket,
            "this mosquitto has no Unix socket listener: use MosquittoConfig::unix_socket()"
        );
        &self.files.unix
    }

    /// The plain MQTT address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOCALHOST, self.ports.mqtt))
    }

    /// The MQTT-over-TLS port; panics if the config has no [`tls`](MosquittoConfig::tls).
    pub fn tls_port(&self) -> u16 {
        self.ports.tls.unwrap_or_else(|| {
            panic!("this mosquitto has no TLS listener: use MosquittoConfig::tls()")
        })
    }

    /// The plain WebSocket port; panics if the config has no
    /// [`websockets`](MosquittoConfig::websockets).
    pub fn ws_port(&self) -> u16 {
        self.ports.ws.unwrap_or_else(|| {
            panic!("this mosquitto has no WebSocket listener: use MosquittoConfig::websockets()")
        })
    }

    /// The WebSocket-over-TLS port; panics if the config has no
    /// [`websockets_tls`](MosquittoConfig::websockets_tls).
    pub fn wss_port(&self) -> u16 {
        self.ports.wss.unwrap_or_else(|| {
            panic!(
                "this mosquitto has no WebSocket TLS listener: use MosquittoConfig::websockets_tls()"
            )
        })
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port())
    }

    /// `mqtts://127.0.0.1:<tls port>`.
    pub fn tls_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.tls_port())
    }

    /// `ws://127.0.0.1:<ws port>` (mosquitto accepts any path).
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ws_port())
    }

    /// `wss://127.0.0.1:<wss port>`.
    pub fn wss_url(&self) -> String {
        format!("wss://127.0.0.1:{}", self.wss_port())
    }

    /// The TLS material the broker uses; panics if no TLS listener is configured.
    pub fn tls(&self) -> &TlsMaterial {
        self.tls.as_ref().unwrap_or_else(|| {
            panic!(
                "this mosquitto has no TLS material: use MosquittoConfig::tls() or websockets_tls()"
            )
        })
    }

    /// The broker's temporary directory (config, log, password/ACL files, `persistence/`,
    /// `tls/`); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated config file.
    pub fn config_path(&self) -> &Path {
        &self.files.conf
    }

    /// The persistence directory (exists even with persistence off).
    pub fn persistence_dir(&self) -> &Path {
        &self.files.persistence
    }

    /// Everything the broker logged so far, across restarts.
    pub fn log(&self) -> String {
        fs::read(&self.files.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits (10 s at most) until the log contains `needle`, e.g. `"Sending SUBACK to sub-1"`
    /// to know a reference subscriber with client id `sub-1` is subscribed. Panics with the
    /// log on timeout.
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_count(needle, 1);
    }

    /// Like [`wait_for_log`](Self::wait_for_log), until `needle` appears at least `n` times
    /// (the log is kept across [`restart`](Self::restart)).
    pub fn wait_for_log_count(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + DEFAULT_WAIT;
        while self.log().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "timed out after {DEFAULT_WAIT:?} waiting for {needle:?} in the mosquitto log\n{}",
                self.log_banner()
            );
            // Polling a file another process appends to: no event to await.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A `mosquitto_pub` command aimed at the plain listener.
    pub fn mosquitto_pub(&self) -> ToolCommand {
        ToolCommand::new("mosquitto_pub", self)
    }

    /// A `mosquitto_sub` command aimed at the plain listener.
    pub fn mosquitto_sub(&self) -> ToolCommand {
        ToolCommand::new("mosquitto_sub", self)
    }

    pub(crate) fn tls_port_opt(&self) -> Option<u16> {
        self.ports.tls
    }

    pub(crate) fn require_certificate_on(&self) -> bool {
        self.config.require_certificate
    }

    fn log_banner(&self) -> String {
        format!(
            "----- mosquitto log ({}) -----\n{}----- end of mosquitto log -----",
            self.files.log.display(),
            self.log()
        )
    }

    fn write_conf(&self) {
        let conf = self
            .config
            .render(&self.ports, &self.files, self.tls.as_ref());
        write_file(&self.files.conf, &conf);
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        let log_offset = fs::metadata(&self.files.log).map_or(0, |m| m.len());
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.files.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.files.log.display()));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone the log file handle: {e}"));
        let child = Command::new(&self.program)
            .arg("-c")
            .arg(&self.files.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program.display()));
        self.child = Some(child);
        let deadline = Instant::now() + self.config.start_timeout;
        loop {
            let new_log = self.log_since(log_offset);
            let child = self
                .child
                .as_mut()
                .unwrap_or_else(|| unreachable!("just spawned"));
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                // A websocket listener's bind failure is only reported this way.
                if new_log.contains("Address already in use")
                    || new_log.contains("Unable to create websockets listener")
                {
                    return Err(StartError::AddrInUse);
                }
                return Err(StartError::Failed(format!(
                    "mosquitto exited during startup ({status}); config:\n{}",
                    fs::read_to_string(&self.files.conf).unwrap_or_default()
                )));
            }
            // "running" is logged once every listener is open.
            if new_log.contains(" running")
                && TcpStream::connect_timeout(&self.addr(), Duration::from_millis(500)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(StartError::Failed(format!(
                    "mosquitto did not accept connections on 127.0.0.1:{} within {:?}",
                    self.ports.mqtt, self.config.start_timeout
                )));
            }
            // Polling a starting process: no event to await.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let log = fs::read(&self.files.log).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(log.len());
        String::from_utf8_lossy(&log[start..]).into_owned()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.log_banner());
        }
    }
}

enum StartError {
    AddrInUse,
    Failed(String),
}

fn wait_child(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        // Polling a process exit: std offers no bounded wait.
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn mkdir(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
}

fn write_file(p: &Path, text: &str) {
    fs::write(p, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
}

fn write_password_file(root: &Path, config: &MosquittoConfig) -> PathBuf {
    let path = root.join("passwd");
    let mut plain = String::new();
    for (user, pass) in &config.users {
        assert!(
            !user.contains(':') && !user.contains('\n') && !pass.contains('\n'),
            "mosquitto password files cannot hold user {user:?}: no ':' or newlines"
        );
        // Infallible: writing to a String cannot fail.
        let _ = writeln!(plain, "{user}:{pass}");
    }
    write_file(&path, &plain);
    let tool = require_mosquitto_tool("mosquitto_passwd");
    let out = Command::new(&tool)
        .arg("-U")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    assert!(
        out.status.success(),
        "mosquitto_passwd -U failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_broker_is_a_failure_with_instructions() {
        let ci = missing_message("mosquitto", true);
        assert!(
            ci.starts_with("mosquitto not installed; .ci/run installs it"),
            "{ci}"
        );
        let local = missing_message("mosquitto", false);
        assert!(
            local.contains("apt-get install mosquitto mosquitto-clients"),
            "{local}"
        );
    }

    #[test]
    fn config_has_a_listener_per_port() {
        let config = MosquittoConfig::new()
            .websockets()
            .max_packet_size(1000)
            .line("max_keepalive 30");
        let ports = Ports {
            mqtt: 1001,
            tls: None,
            ws: Some(1002),
            wss: None,
        };
        let files = Files {
            conf: "/x/c".into(),
            unix: "/x/s".into(),
            log: "/x/l".into(),
            password: None,
            acl: None,
            persistence: "/x/p".into(),
        };
        let conf = config.render(&ports, &files, None);
        assert!(conf.contains("listener 1001 127.0.0.1\n"));
        assert!(conf.contains("listener 1002 127.0.0.1\nprotocol websockets\n"));
        assert!(conf.contains("max_packet_size 1000\n"));
        assert!(conf.contains("max_keepalive 30\n"));
        assert!(conf.contains("allow_anonymous true\n"));
        assert!(!conf.contains("persistence true"));
    }
}
