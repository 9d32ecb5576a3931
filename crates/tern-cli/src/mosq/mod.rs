//! What `tern pub` and `tern sub` share: mosquitto-compatible flags ([`args`]), connection
//! setup from them, exit codes, error reporting and the `-d` trace.
//!
//! Output contract: data on stdout, diagnostics on stderr, and the exit codes in [`exit`].

pub(crate) mod args;
mod clock;
pub(crate) mod flags;
pub(crate) mod format;
mod json;
pub(crate) mod props;
pub(crate) mod trace;

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use std::num::NonZeroU16;
use tern::tls::Roots;

use tern::auth::{AuthError, Authenticator};
use tern::{
    Broker, Client, ConnectError, ConnectOptions, Events, Protocol, Scheme, TlsOptions, Will,
};
use tern_proto::ConnectProperties;

use args::{Common, Version};

/// Exit codes scripts can rely on (also listed in both commands' `--help`).
pub(crate) mod exit {
    /// Everything worked.
    pub(crate) const OK: u8 = 0;
    /// A failure after connecting (connection lost, a publish or subscribe refused or
    /// abandoned) or reading the input (`-f`, `-s`, `-l`, TLS files).
    pub(crate) const ERROR: u8 = 1;
    /// The command line is wrong.
    pub(crate) const USAGE: u8 = 2;
    /// No connection: DNS, TCP, TLS, WebSocket, or no CONNACK in time (seed codes -1..-6).
    pub(crate) const CONNECT_FAILED: u8 = 3;
    /// The broker refused the connection (CONNACK 1..5, named in the message). 5 because that
    /// is what mosquitto_pub/sub exit with for the common case, "not authorised".
    pub(crate) const REFUSED: u8 = 5;
    /// `tern sub -W` / `tern rr -W` ran out (mosquitto_sub and mosquitto_rr's value).
    pub(crate) const TIMEOUT: u8 = 27;
}

/// The exit-code table for `--help`.
pub(crate) const EXIT_HELP: &str = "\
Exit status:
  0   success
  1   error after connecting (connection lost, publish/subscribe failed) or reading input
  2   bad command line, including options that cannot make a valid CONNECT (NodeMCU
      code -6 for invalid options: -c with an empty client id, a client id over 23
      characters with -V 31, ...)
  3   could not connect, with the NodeMCU code in the message: DNS (-3); nothing
      listening, or the connection reset during CONNECT (-5); the broker answered with
      something other than CONNACK or hung up (-4); TLS, WebSocket, proxy or TLS file
      failure (-6); no CONNACK in time (-2); CONNECT not sent in time (-1)
  5   connection refused by the broker, CONNACK code 1..5 in the message, e.g.
      \"Connection error: connection refused: not authorised (5)\"
  27  timed out (-W: sub, or rr with no response in time)
";

/// Writes to stdout, ignoring a closed pipe (mosquitto exits quietly then too).
pub(crate) fn out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Writes a line to stderr, ignoring a closed pipe: diagnostics must never turn into a
/// panic (`tern pub -d ... 2>&1 | head -1`).
pub(crate) fn err_line(text: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// A command's `--help`: the summary and usage, the flag table's sections, exit codes.
pub(crate) fn help(cmd: flags::Cmd, head: &str) -> String {
    format!(
        "tern {} {head}\n{}\n{EXIT_HELP}",
        env!("CARGO_PKG_VERSION"),
        flags::help(cmd)
    )
}

/// A fatal condition: the exit code and what to print (nothing when empty).
#[derive(Debug)]
pub(crate) struct Fatal {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Fatal {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `Connection error: ...` line for a failed connect, with the seed's code.
    pub(crate) fn connect(e: &ConnectError) -> Self {
        match e {
            // Display already ends in "(code)": "connection refused: not authorised (5)".
            ConnectError::Refused(_) => Self::new(exit::REFUSED, format!("Connection error: {e}")),
            // MQTT 5: "connection refused: Not authorized (0x87): \"reason string\"".
            ConnectError::RefusedV5(_) => {
                Self::new(exit::REFUSED, format!("Connection error: {e}"))
            }
            // Options no CONNECT can carry come from the command line.
            ConnectError::InvalidOptions(_) | ConnectError::Options(_) => Self::new(
                exit::USAGE,
                format!("Error: {e}\n\nUse --help to see usage."),
            ),
            _ => Self::new(
                exit::CONNECT_FAILED,
                format!("Connection error: {e} ({})", e.code()),
            ),
        }
    }

    /// Prints the message (unless `quiet`) and converts to an exit code.
    pub(crate) fn report(self, quiet: bool) -> ExitCode {
        if !quiet && !self.message.is_empty() {
            err_line(format_args!("{}", self.message));
        }
        ExitCode::from(self.code)
    }
}

/// Prints a usage error as mosquitto does and returns the usage exit code.
pub(crate) fn usage_error(cmd: &str, e: &args::UsageError) -> ExitCode {
    if e.0.is_empty() {
        // What mosquitto prints for a refusal it has no sentence for.
        err_line(format_args!("\nUse 'tern {cmd} --help' to see usage."));
        return ExitCode::from(exit::USAGE);
    }
    // mosquitto's "Error in PUBLISH properties: ..." sentences carry no "Error: ".
    let prefix = if e.0.starts_with("Error in ") {
        ""
    } else {
        "Error: "
    };
    err_line(format_args!(
        "{prefix}{}\n\nUse 'tern {cmd} --help' to see usage.",
        e.0
    ));
    ExitCode::from(exit::USAGE)
}

/// `-d`: notes of the commands' own (reconnecting, subscriptions denied) as `Client <id>
/// ...` lines on stderr, beside the library's connection and packet trace
/// ([`trace::install`]).
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    on: bool,
    id: String,
}

impl Trace {
    /// `Client <id> <what>`.
    pub(crate) fn client(&self, what: fmt::Arguments<'_>) {
        if self.on {
            err_line(format_args!("Client {} {what}", self.id));
        }
    }
}

/// Everything needed to connect, derived from the shared flags.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) options: ConnectOptions,
    pub(crate) broker: Broker,
    pub(crate) trace: Trace,
    /// MQTT v5: the DISCONNECT's Session Expiry Interval (`-D disconnect
    /// session-expiry-interval`).
    pub(crate) disconnect_expiry: Option<u32>,
}

/// Builds options and broker address from the flags; reads the TLS files.
pub(crate) fn setup(c: &Common, role: &str) -> Result<Setup, Fatal> {
    let client_id = match (&c.client_id, &c.id_prefix) {
        (Some(id), _) => id.clone(),
        (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
        // Short enough for MQTT 3.1's 23-character limit; the random part keeps two
        // machines' processes with the same pid from kicking each other off a shared broker.
        (None, None) => format!(
            "tern-{role}-{}-{:04x}",
            std::process::id() % 10_000_000,
            fastrand::u16(..)
        ),
    };
    if c.debug {
        trace::install(&client_id);
    }
    let url_broker = match &c.url {
        Some(u) => Some(
            Broker::parse(&u.broker)
                .map_err(|e| Fatal::new(exit::USAGE, format!("Error: invalid -L URL: {e}")))?,
        ),
        None => None,
    };
    let tls_flags = c.cafile.is_some() || c.capath.is_some() || c.os_certs;
    let mut broker = match url_broker.clone() {
        Some(mut b) => {
            if tls_flags && b.scheme == Scheme::Mqtt {
                b.scheme = Scheme::Mqtts;
            }
            if tls_flags && b.scheme == Scheme::Ws {
                b.scheme = Scheme::Wss;
            }
            b
        }
        None => {
            let scheme = if tls_flags {
                Scheme::Mqtts
            } else {
                Scheme::Mqtt
            };
            Broker::new(scheme, "localhost", scheme.default_port())
        }
    };
    if let Some(path) = &c.unix {
        broker = Broker::unix(path.clone());
    }
    if let Some(h) = &c.host {
        broker.host = h.clone();
    }
    if let Some(p) = c.port {
        broker.port = p;
    }
    if c.cert.is_some() && !broker.scheme.is_tls() {
        return Err(Fatal::new(
            exit::USAGE,
            "Error: --cert/--key need TLS: add --cafile, --capath or --tls-use-os-certs.",
        ));
    }

    let protocol = match c.version {
        Version::V31 => Protocol::V3_1,
        Version::V311 => Protocol::V3_1_1,
        Version::V5 => Protocol::V5,
    };
    let mut options = ConnectOptions::new(client_id.clone())
        .keep_alive(Duration::from_secs(c.keepalive.into()))
        .clean_session(c.clean_session)
        .protocol(protocol);
    let username = c
        .username
        .clone()
        .or_else(|| url_broker.as_ref().and_then(|b| b.username.clone()));
    let password = c.password.clone().or_else(|| {
        url_broker
            .as_ref()
            .and_then(|b| b.password.clone())
            .map(String::into_bytes)
    });
    if let Some(user) = username {
        options = options.credentials(user, password);
    }
    if let Some(topic) = &c.will_topic {
        let mut will = Will::new(
            topic.clone(),
            c.will_payload.clone().unwrap_or_default(),
            c.will_qos,
            c.will_retain,
        );
        if c.version == Version::V5 {
            will = will.properties(c.props.will.clone());
        }
        options = options.will(will);
    }
    if c.version == Version::V5 {
        unsendable(&c.props)?;
        options = v5_options(options, &c.props.connect);
    }
    if let Some(n) = c.max_inflight {
        options = options.max_inflight(n);
    }
    if let Some(p) = &c.proxy {
        options = options.proxy(p.clone());
    }
    if let Some(a) = c.bind {
        options = options.bind_address(a);
    }
    if let Some(t) = c.connect_timeout {
        options = options.connect_timeout(t);
    }
    if broker.scheme.is_tls() {
        options = options.tls(tls_options(c)?);
    }
    Ok(Setup {
        options,
        broker,
        disconnect_expiry: c.props.disconnect.session_expiry_interval,
        trace: Trace {
            on: c.debug,
            id: client_id,
        },
    })
}

/// `-D` properties the client library has no way to send: refused rather than dropped.
fn unsendable(p: &props::Properties) -> Result<(), Fatal> {
    let what = if !p.subscribe.user_properties.is_empty() {
        "-D subscribe user-property"
    } else if p.unsubscribe != Default::default() {
        "-D unsubscribe"
    } else if p.disconnect.reason_string.is_some()
        || p.disconnect.server_reference.is_some()
        || !p.disconnect.user_properties.is_empty()
    {
        "-D disconnect (other than session-expiry-interval)"
    } else {
        return Ok(());
    };
    Err(Fatal::new(
        exit::USAGE,
        format!(
            "Error: {what} properties cannot be sent: the tern client library does not put \
             properties on that packet yet.\n\nUse --help to see usage."
        ),
    ))
}

/// The `-D connect ...` properties (and `-x`, already folded in) on the options.
fn v5_options(mut options: ConnectOptions, p: &ConnectProperties) -> ConnectOptions {
    let v5 = &mut options.v5;
    v5.session_expiry = p.session_expiry_interval;
    v5.receive_maximum = p.receive_maximum.map(NonZeroU16::get);
    if let Some(n) = p.topic_alias_maximum {
        v5.topic_alias_maximum = n;
    }
    if let Some(on) = p.request_response_information {
        v5.request_response_information = on;
    }
    v5.request_problem_information = p.request_problem_information;
    v5.user_properties = p
        .user_properties
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
        .collect();
    if let Some(n) = p.maximum_packet_size {
        options = options.max_packet_size(usize::try_from(n.get()).unwrap_or(usize::MAX));
    }
    if let Some(method) = &p.authentication_method {
        options = options.authenticator(FixedAuth {
            method: method.as_str().to_owned(),
            data: p.authentication_data.clone(),
        });
    }
    options
}

/// `-D connect authentication-method/-data`: CONNECT carries them as given, as
/// mosquitto_pub does; a broker that answers with a challenge (AUTH 0x18) cannot be
/// answered from the command line, so the connection fails with that said.
struct FixedAuth {
    method: String,
    data: Option<bytes::Bytes>,
}

impl Authenticator for FixedAuth {
    fn method(&self) -> &str {
        &self.method
    }

    fn start(&mut self) -> Result<Option<bytes::Bytes>, AuthError> {
        Ok(self.data.clone())
    }

    fn step(&mut self, _data: Option<&[u8]>) -> Result<Option<bytes::Bytes>, AuthError> {
        Err(AuthError::Failed(format!(
            "the broker continued the {} exchange, which a fixed -D authentication-data \
             cannot answer",
            self.method
        )))
    }

    fn finish(&mut self, _data: Option<&[u8]>) -> Result<(), AuthError> {
        Ok(())
    }
}

fn read_text(what: &str, path: &Path) -> Result<String, Fatal> {
    std::fs::read_to_string(path).map_err(|e| {
        Fatal::new(
            exit::ERROR,
            format!("Error: cannot read {what} {}: {e}", path.display()),
        )
    })
}

fn tls_options(c: &Common) -> Result<TlsOptions, Fatal> {
    let mut pem = String::new();
    if let Some(f) = &c.cafile {
        pem.push_str(&read_text("CA file", f)?);
        pem.push('\n');
    }
    if let Some(dir) = &c.capath {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Fatal::new(
                exit::ERROR,
                format!("Error: cannot read CA directory {}: {e}", dir.display()),
            )
        })?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
            .collect();
        files.sort();
        for f in files {
            pem.push_str(&read_text("CA file", &f)?);
            pem.push('\n');
        }
    }
    let mut tls = TlsOptions::default();
    if !pem.is_empty() {
        tls.roots = Roots::Pem(pem);
    }
    tls.danger_skip_hostname_check = c.insecure;
    tls.version = c.tls_version;
    tls.alpn = c.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
        tls = tls.client_auth(
            read_text("certificate file", cert)?,
            read_text("key file", key)?,
        );
    }
    Ok(tls)
}

/// Creates the client on the current runtime and connects (`-d` shows each step and packet
/// through the library's trace).
pub(crate) async fn connect(setup: &Setup) -> Result<(Client, Events), Fatal> {
    let (client, events) = Client::new(setup.options.clone());
    match client.connect(setup.broker.clone()).await {
        Ok(_session_present) => Ok((client, events)),
        Err(e) => {
            let mut fatal = Fatal::connect(&e);
            let old_broker = match &e {
                ConnectError::Refused(code) => {
                    *code == tern_proto::ConnectReturnCode::UnacceptableProtocolVersion
                }
                ConnectError::RefusedV5(ack) => {
                    ack.reason == tern_proto::ConnectReasonCode::UnsupportedProtocolVersion
                }
                _ => false,
            };
            if old_broker && setup.options.protocol == Protocol::V5 {
                fatal.message.push_str(
                    "\nThe broker does not speak MQTT v5: use -V 311 (and no -D or -x) with it.",
                );
            }
            Err(fatal)
        }
    }
}

/// Sends DISCONNECT after everything queued and waits for the close, bounded so a dead
/// link cannot hang the exit. At MQTT v5 it carries `-D disconnect
/// session-expiry-interval` when given.
pub(crate) async fn disconnect(client: &Client, setup: &Setup) {
    let close = async {
        match setup.disconnect_expiry {
            Some(secs) => {
                client
                    .close_with(
                        tern::DisconnectReasonCode::NormalDisconnection,
                        Some(Duration::from_secs(secs.into())),
                    )
                    .await
            }
            None => client.close().await,
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), close).await;
}

/// Runs a command's work on a current-thread runtime (one client, no thread hand-offs), as a
/// spawned task rather than as `block_on`'s own future.
///
/// Waking `block_on`'s future makes tokio's current-thread scheduler poll the I/O driver
/// first, one `epoll_wait` per wake-up, i.e. per packet read; a spawned task is polled from
/// the run queue, so the client's driver and the command take turns without it (the driver's
/// PUBACK then leaves after the command has taken the message).
pub(crate) fn run<T: Send + 'static>(
    work: impl Future<Output = Result<T, Fatal>> + Send + 'static,
) -> Result<T, Fatal> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal::new(exit::ERROR, format!("Error: cannot start the runtime: {e}")))?;
    match rt.block_on(async { tokio::spawn(work).await }) {
        Ok(result) => result,
        // The task can only end early by panicking (nothing cancels it): pass the panic on.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn common(s: &[&str]) -> Common {
        let mut v: Vec<OsString> = s.iter().map(OsString::from).collect();
        if !s.contains(&"-L") {
            v.extend(["-t", "t"].map(OsString::from));
        }
        v.push("-n".into());
        match args::parse_pub(v) {
            Ok(args::Parsed::Run(a)) => a.common,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broker_defaults_follow_tls_and_url() {
        let s = setup(&common(&[]), "pub").unwrap();
        assert_eq!(s.broker.to_string(), "mqtt://localhost:1883");
        assert!(s.options.client_id.starts_with("tern-pub-"));
        assert!(s.options.client_id.len() <= 23, "{}", s.options.client_id);
        let s = setup(
            &common(&["-L", "mqtt://u:p%40ss@127.0.0.1:1999/x", "-p", "2000"]),
            "pub",
        )
        .unwrap();
        assert_eq!(s.broker.to_string(), "mqtt://127.0.0.1:2000");
        assert_eq!(s.options.username.as_deref(), Some("u"));
        assert_eq!(s.options.password.as_deref(), Some(&b"p@ss"[..]));
        let s = setup(&common(&["-u", "me", "-P", "pw", "-I", "pre-"]), "sub").unwrap();
        assert_eq!(s.options.username.as_deref(), Some("me"));
        assert_eq!(s.options.client_id, format!("pre-{}", std::process::id()));
    }

    #[test]
    fn tls_flags_switch_scheme_and_port() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let s = setup(&common(&["--cafile", ca.to_str().unwrap()]), "pub").unwrap();
        assert_eq!(s.broker.to_string(), "mqtts://localhost:8883");
        assert!(matches!(s.options.tls.roots, Roots::Pem(_)));
        let missing = setup(&common(&["--cafile", "/nonexistent/ca.pem"]), "pub").unwrap_err();
        assert_eq!(missing.code, exit::ERROR);
        assert!(
            missing.message.contains("/nonexistent/ca.pem"),
            "{}",
            missing.message
        );
        let s = setup(&common(&["-L", "wss://h/x", "--insecure"]), "pub").unwrap();
        assert!(s.options.tls.danger_skip_hostname_check);
        assert_eq!(s.broker.port, 443);
    }

    #[test]
    fn connect_errors_carry_the_seed_code() {
        let dns = ConnectError::Dns {
            host: "nonexistent.invalid".into(),
            source: std::sync::Arc::new(std::io::Error::other("no such host")),
        };
        let f = Fatal::connect(&dns);
        assert_eq!(f.code, exit::CONNECT_FAILED);
        assert!(f.message.ends_with("(-3)"), "{}", f.message);
        let refused = ConnectError::Refused(tern_proto::ConnectReturnCode::BadUserNameOrPassword);
        let f = Fatal::connect(&refused);
        assert_eq!(f.code, exit::REFUSED);
        assert_eq!(
            f.message,
            "Connection error: connection refused: bad user name or password (4)"
        );
    }
}
