//! `tern sub`: mosquitto_sub's flags and output on the tern client.
//!
//! Output goes through one buffered, locked stdout, flushed whenever no further event is
//! ready (so an interactive reader sees each message at once, and a flood costs one write per
//! burst) and before exiting.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::Duration;

use tern::{
    Client, Event, Events, Message, Outcome, QoS, ReconnectPolicy, RetainHandling, SubAck,
    SubAckReasonCode, SubscribeReturnCode, Subscription, Ticket,
};
use tokio::time::Instant;

use crate::mosq::args::{self, Parsed, SubArgs, Version};
use crate::mosq::flags::Cmd;
use crate::mosq::format::{Format, View};
use crate::mosq::{self, Fatal, Trace, exit};

const HELP: &str = "\
sub: subscribe and print the messages received (mosquitto_sub's flags)

Usage: tern sub {[-h host] [-p port] | --unix socket | -L URL} -t filter ... [options]
       tern sub --help

Output, one message each, followed by a newline unless -N: by default the payload's raw
bytes (an empty payload prints nothing); -v: topic, a space, the payload; -F: a format.
Per-user defaults: options in $XDG_CONFIG_HOME/tern_sub (else .../mosquitto_sub; the
directory defaults to ~/.config), one per line, are read before the command line.
";

pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let parsed = args::with_defaults(Cmd::Sub, args).and_then(args::parse_sub);
    let a = match parsed {
        Ok(Parsed::Help) => {
            mosq::out(&mosq::help(Cmd::Sub, HELP));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            mosq::out(&format!("tern {}\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(a)) => a,
        Err(e) => return mosq::usage_error("sub", &e),
    };
    let format = match a.format.as_deref().map(Format::parse).transpose() {
        Ok(f) => f.map(|mut f| {
            f.pretty = a.pretty;
            f
        }),
        Err(msg) => return mosq::usage_error("sub", &args::UsageError(msg)),
    };
    let quiet = a.common.quiet;
    match run(a, format) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(f) => f.report(quiet),
    }
}

fn run(a: SubArgs, format: Option<Format>) -> Result<(), Fatal> {
    let deadline = a.timeout.map(|d| Instant::now() + d);
    let mut setup = mosq::setup(&a.common, "sub")?;
    // Like mosquitto_sub: a lost connection is re-made (a first failure is not retried),
    // and the subscriptions with it.
    setup.options = setup.options.reconnect(
        ReconnectPolicy::default()
            .initial_delay(Duration::from_millis(500))
            .max_delay(Duration::from_secs(10)),
    );
    mosq::run(async move {
        let (client, events) = within(deadline, mosq::connect(&setup)).await??;
        let mut s = Subscriber {
            client,
            trace: setup.trace.clone(),
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            line: Vec::new(),
            format,
            printed: 0,
            sub_ticket: None,
            v5_pending: a.common.version == Version::V5 && !a.common.topics.is_empty(),
            unsub_ticket: None,
            args: &a,
        };
        let result = s.run(events, deadline).await;
        let flushed = s.out.flush();
        mosq::disconnect(&s.client, &setup).await;
        result?;
        flushed.map_err(write_error)
    })
}

/// Awaits `fut` until `deadline` (`-W`); past it, the timeout exit.
pub(crate) async fn within<F: Future>(
    deadline: Option<Instant>,
    fut: F,
) -> Result<F::Output, Fatal> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut)
            .await
            .map_err(|_| Fatal::new(exit::TIMEOUT, "Timed out")),
        None => Ok(fut.await),
    }
}

pub(crate) fn write_error(e: io::Error) -> Fatal {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // The reader went away (`tern sub | head -1`): nothing useful left to say.
        Fatal::new(exit::ERROR, "")
    } else {
        Fatal::new(exit::ERROR, format!("Error writing output: {e}"))
    }
}

/// Whether to keep going after an event.
enum Flow {
    Continue,
    Done,
}

struct Subscriber<'a, W: Write> {
    client: Client,
    trace: Trace,
    out: W,
    /// Reused rendering buffer for `-F`.
    line: Vec<u8>,
    format: Option<Format>,
    /// Messages printed so far, for `-C`.
    printed: u64,
    sub_ticket: Option<Ticket>,
    /// An MQTT v5 SUBSCRIBE not yet acknowledged.
    v5_pending: bool,
    unsub_ticket: Option<Ticket>,
    args: &'a SubArgs,
}

impl<W: Write> Subscriber<'_, W> {
    async fn run(&mut self, mut events: Events, deadline: Option<Instant>) -> Result<(), Fatal> {
        let topics = &self.args.common.topics;
        let mut v5_sub = None;
        if topics.is_empty() {
            self.unsubscribe()?;
        } else if self.args.common.version == Version::V5 {
            // subscribe_with resolves at SUBACK; a task awaits it while the messages that
            // may come first (queued for a -c session, retained) are drained here.
            v5_sub = Some(tokio::spawn(subscribe_v5(
                self.client.clone(),
                self.args.clone(),
            )));
        } else {
            let qos = self.args.common.qos;
            // try_subscribe, not subscribe().await: messages (queued for a -c session, or
            // retained) may arrive before the SUBACK and must be drained meanwhile.
            let ticket = self
                .client
                .try_subscribe(topics.iter().map(|t| (t.as_str(), qos)))
                .map_err(|e| Fatal::new(exit::ERROR, format!("Error: subscribe failed: {e}")))?;
            self.sub_ticket = Some(ticket);
        }
        let mut stop = Stop::new();
        loop {
            let mut ev = tokio::select! {
                ev = within(deadline, events.recv()) => ev?,
                acked = within(deadline, async { v5_sub.as_mut().expect("guarded").await }),
                    if v5_sub.is_some() =>
                {
                    v5_sub = None;
                    let acked = match acked? {
                        Ok(acked) => acked.map_err(|e| {
                            Fatal::new(exit::ERROR, format!("Error: subscribe failed: {e}"))
                        })?,
                        // Nothing cancels the task: it can only have panicked.
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    };
                    self.suback_v5(acked)?;
                    self.v5_pending = false;
                    self.unsubscribe()?;
                    if let Flow::Done = self.acknowledged() {
                        return Ok(());
                    }
                    continue;
                }
                () = stop.requested() => {
                    // Like mosquitto_sub: a clean DISCONNECT (so no will) and status 0.
                    return Ok(());
                }
            };
            // Handle everything already waiting before paying for a flush.
            loop {
                if let Flow::Done = self.handle(ev)? {
                    return Ok(());
                }
                match events.try_recv() {
                    Some(next) => ev = Some(next),
                    None => break,
                }
            }
            self.out.flush().map_err(write_error)?;
        }
    }

    fn unsubscribe(&mut self) -> Result<(), Fatal> {
        let filters = &self.args.unsubscribe;
        if filters.is_empty() {
            return Ok(());
        }
        let ticket = self
            .client
            .try_unsubscribe(filters)
            .map_err(|e| Fatal::new(exit::ERROR, format!("Error: unsubscribe failed: {e}")))?;
        self.unsub_ticket = Some(ticket);
        Ok(())
    }

    /// After SUBACK (or UNSUBACK when only unsubscribing): `-E` ends here.
    fn acknowledged(&self) -> Flow {
        if self.args.exit_after_sub
            && !self.v5_pending
            && self.sub_ticket.is_none()
            && self.unsub_ticket.is_none()
        {
            Flow::Done
        } else {
            Flow::Continue
        }
    }

    fn handle(&mut self, ev: Option<Event>) -> Result<Flow, Fatal> {
        match ev {
            Some(Event::Message(m)) => self.message(&m),
            Some(Event::Completed { ticket, result }) => {
                if Some(ticket) == self.sub_ticket {
                    self.sub_ticket = None;
                    self.suback(result)?;
                    self.unsubscribe()?;
                } else if Some(ticket) == self.unsub_ticket {
                    self.unsub_ticket = None;
                    result.map_err(|e| {
                        Fatal::new(exit::ERROR, format!("Error: unsubscribe failed: {e}"))
                    })?;
                }
                Ok(self.acknowledged())
            }
            Some(Event::Disconnected {
                error,
                will_reconnect: true,
            }) => {
                self.trace
                    .client(format_args!("connection lost ({error}); reconnecting"));
                Ok(Flow::Continue)
            }
            Some(Event::Disconnected { error, .. }) => Err(Fatal::new(
                exit::ERROR,
                format!("Error: connection lost: {error}"),
            )),
            Some(Event::ConnectFailed {
                error,
                will_retry: false,
            }) => Err(Fatal::new(
                exit::ERROR,
                format!("Error: reconnecting failed: {error}"),
            )),
            Some(_) => Ok(Flow::Continue),
            None => Err(Fatal::new(
                exit::ERROR,
                "Error: the client stopped unexpectedly",
            )),
        }
    }

    fn suback(&self, result: Result<Outcome, tern::ClientError>) -> Result<(), Fatal> {
        let codes = match result {
            Ok(Outcome::Subscribed(codes)) => codes,
            Ok(_) => {
                return Err(Fatal::new(
                    exit::ERROR,
                    "Error: the answer to SUBSCRIBE was not a SUBACK",
                ));
            }
            Err(e) => {
                return Err(Fatal::new(
                    exit::ERROR,
                    format!("Error: subscribe failed: {e}"),
                ));
            }
        };
        let topics = &self.args.common.topics;
        if !codes.is_empty() && codes.iter().all(|c| *c == SubscribeReturnCode::Failure) {
            return Err(Fatal::new(
                exit::ERROR,
                "Error: All subscription requests were denied.",
            ));
        }
        if !self.args.common.quiet {
            for (t, c) in topics.iter().zip(&codes) {
                if *c == SubscribeReturnCode::Failure {
                    mosq::err_line(format_args!("Warning: subscription to '{t}' was denied."));
                }
            }
        }
        Ok(())
    }

    /// MQTT v5 SUBACK: a reason per filter, and the broker's Reason String.
    fn suback_v5(&self, ack: SubAck) -> Result<(), Fatal> {
        let why = |code: SubAckReasonCode| match &ack.reason_string {
            Some(r) => format!("{code}: {r:?}"),
            None => code.to_string(),
        };
        let refused: Vec<_> = ack.reasons.iter().filter(|c| c.is_error()).collect();
        if !ack.reasons.is_empty() && refused.len() == ack.reasons.len() {
            let mut reasons: Vec<String> = refused.iter().map(|c| why(**c)).collect();
            reasons.dedup();
            return Err(Fatal::new(
                exit::ERROR,
                format!(
                    "Error: All subscription requests were denied: {}",
                    reasons.join(", ")
                ),
            ));
        }
        if !self.args.common.quiet {
            for (t, c) in self.args.common.topics.iter().zip(&ack.reasons) {
                if c.is_error() {
                    mosq::err_line(format_args!(
                        "Warning: subscription to '{t}' was denied: {}",
                        why(*c)
                    ));
                }
            }
        }
        Ok(())
    }

    fn message(&mut self, m: &Message) -> Result<Flow, Fatal> {
        let a = self.args;
        if a.remove_retained && m.retain {
            // mosquitto_sub --remove-retained: clear it with an empty retained message.
            // Queued, not awaited: the messages keep flowing meanwhile.
            if let Err(e) = self.client.try_publish(
                m.topic.as_str(),
                bytes::Bytes::new(),
                QoS::AtMostOnce,
                true,
            ) {
                return Err(Fatal::new(
                    exit::ERROR,
                    format!(
                        "Error: could not clear retained message on {}: {e}",
                        m.topic
                    ),
                ));
            }
        }
        if a.retained_only && !m.retain {
            return Ok(Flow::Done);
        }
        if a.no_retain && m.retain {
            return Ok(Flow::Continue);
        }
        if a.filter_out.iter().any(|f| f.matches(&m.topic)) {
            return Ok(Flow::Continue);
        }
        if let Some(p) = a.random_filter
            && fastrand::f64() >= p
        {
            return Ok(Flow::Continue);
        }
        self.print(m)?;
        self.printed += 1;
        if a.count.is_some_and(|c| self.printed >= c) {
            return Ok(Flow::Done);
        }
        Ok(Flow::Continue)
    }

    fn print(&mut self, m: &Message) -> Result<(), Fatal> {
        let how = Print {
            format: self.format.as_ref(),
            verbose: self.args.verbose,
            eol: !self.args.no_eol,
            quiet: self.args.common.quiet,
        };
        how.message(&mut self.out, &mut self.line, m)
            .map_err(write_error)
    }
}

/// The MQTT v5 SUBSCRIBE of `tern sub`: every `-t` at `-q`, with `--retain-as-published`,
/// `-R` as "do not send retained messages" (as mosquitto_sub), and the `-D subscribe
/// subscription-identifier`.
async fn subscribe_v5(client: Client, a: SubArgs) -> Result<SubAck, tern::ClientError> {
    let subs: Vec<Subscription> = a
        .common
        .topics
        .iter()
        .map(|t| {
            let mut s = Subscription::new(t.as_str(), a.common.qos)
                .retain_as_published(a.retain_as_published);
            if a.no_retain {
                s = s.retain_handling(RetainHandling::DoNotSend);
            }
            s
        })
        .collect();
    let id = a
        .common
        .props
        .subscribe
        .subscription_identifier
        .map(|i| i.get());
    client.subscribe_with(subs, id).await
}

/// How a received message is printed: `-F`, `-v`, `-N` (shared with `tern rr`).
pub(crate) struct Print<'a> {
    pub(crate) format: Option<&'a Format>,
    pub(crate) verbose: bool,
    pub(crate) eol: bool,
    pub(crate) quiet: bool,
}

impl Print<'_> {
    /// Writes `m` as mosquitto_sub would; `line` is a reusable buffer for `-F`.
    pub(crate) fn message<W: Write>(
        &self,
        w: &mut W,
        line: &mut Vec<u8>,
        m: &Message,
    ) -> io::Result<()> {
        let topic = m.topic.as_str();
        if let Some(f) = self.format {
            line.clear();
            let view = View {
                topic,
                payload: &m.payload,
                qos: m.qos as u8,
                retain: m.retain,
                mid: m.packet_id.map_or(0, |id| id.get()),
                props: m.properties.as_deref(),
            };
            // Like mosquitto_sub, a `%J` payload that is not JSON is reported and the rest
            // of the line is still printed.
            for e in f.render(&view, line) {
                if !self.quiet {
                    mosq::err_line(format_args!("{e}"));
                }
            }
            if self.eol {
                line.push(b'\n');
            }
            w.write_all(line)
        } else if self.verbose {
            // mosquitto_sub -v: "topic payload", "topic (null)" for an empty payload, and
            // under -N nothing at all for an empty payload.
            if m.payload.is_empty() {
                if !self.eol {
                    return Ok(());
                }
                return write_parts(w, &[topic.as_bytes(), b" (null)"], self.eol);
            }
            write_parts(w, &[topic.as_bytes(), b" ", &m.payload], self.eol)
        } else if m.payload.is_empty() {
            // mosquitto_sub prints nothing at all for an empty payload without -v/-F.
            Ok(())
        } else {
            write_parts(w, &[&m.payload], self.eol)
        }
    }
}

/// SIGINT / SIGTERM, when the handlers could be installed (otherwise the default action, death,
/// stays in place).
struct Stop {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Stop {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves when a stop signal arrives; never, if none can.
    async fn requested(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.term) => {}
                () = recv(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}

fn write_parts<W: Write>(w: &mut W, parts: &[&[u8]], eol: bool) -> io::Result<()> {
    for p in parts {
        w.write_all(p)?;
    }
    if eol {
        w.write_all(b"\n")?;
    }
    Ok(())
}
