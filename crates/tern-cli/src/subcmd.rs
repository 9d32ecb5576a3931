//! `tern sub`: mosquitto_sub's flags and output on the tern client.
//!
//! Output goes through one buffered, locked stdout, flushed whenever no further event is
//! ready (so an interactive reader sees each message at once, and a flood costs one write per
//! burst) and before exiting.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::Duration;

use tern::{Client, Event, Events, Message, Outcome, ReconnectPolicy, SubscribeReturnCode, Ticket};
use tokio::time::Instant;

use crate::mosq::args::{self, Parsed, SubArgs};
use crate::mosq::format::{Format, View};
use crate::mosq::{self, Fatal, Trace, exit};

const HELP: &str = "\
tern sub: subscribe and print the messages received (mosquitto_sub's flags)

Usage: tern sub {[-h host] [-p port] [-u user] [-P password] -t topic ... | -L URL [-t topic ...]}
                [-q qos] [-C count] [-W secs] [-R | --retained-only] [-T filter_out ...]
                [-U topic ...] [-E] [-v] [-N] [-F format] [-c] [-k keepalive]
                [-i id] [-I id_prefix] [-V 31|311] [-d] [--quiet]
                [--will-topic topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file --key file]
                 [--insecure]]
       tern sub --help

Subscribing:
  -t filter      topic filter to subscribe to; repeatable
  -q qos         requested QoS, 0 (default), 1 or 2
  -T filter      do not print messages whose topic matches; repeatable
  -U filter      unsubscribe from this filter after subscribing (with -c: drop an old one)
  -E             exit once the subscriptions are acknowledged
  -C count       exit after printing count messages
  -W secs        exit with status 27 if still running after secs (fractions allowed); the
                 clock starts before connecting
  -R             do not print retained (stale) messages
  --retained-only  print retained messages only; exit at the first live one
Output (one message each, followed by a newline unless -N):
  (default)      the payload's raw bytes; an empty payload prints nothing
  -v             topic, a space, the payload (\"(null)\" when empty)
  -N             no newline after each message
  -F format      %t topic   %p payload   %q QoS   %r retain flag   %l payload length
                 %x / %X payload as lower / upper-case hex   %m message id (always 0: tern
                 does not expose it)   %j JSON with the payload escaped   %J JSON with the
                 payload inlined (must be JSON)   %I ISO 8601 time   %U Unix time.nanoseconds
                 %% a percent sign; flags - and 0, width and .max as mosquitto_sub:
                 %-10t, %05l, %10.10t
                 @X strftime's %X (@Y year, @H hour, ...), @N nanoseconds, @@ an @
                 \\n \\t \\r \\0 \\a \\e \\v \\\\ escapes
";

pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let a = match args::parse_sub(args) {
        Ok(Parsed::Help) => {
            print!("{HELP}{}\n{}", mosq::CONNECT_HELP, mosq::EXIT_HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(a)) => a,
        Err(e) => return mosq::usage_error("sub", &e),
    };
    let format = match a.format.as_deref().map(Format::parse).transpose() {
        Ok(f) => f,
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
    setup.options = setup.options.reconnect(ReconnectPolicy {
        initial_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(10),
        ..ReconnectPolicy::default()
    });
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
            unsub_ticket: None,
            args: &a,
        };
        let result = s.run(events, deadline).await;
        let flushed = s.out.flush();
        mosq::disconnect(&s.client, &s.trace).await;
        result?;
        flushed.map_err(write_error)
    })
}

/// Awaits `fut` until `deadline` (`-W`); past it, the timeout exit.
async fn within<F: Future>(deadline: Option<Instant>, fut: F) -> Result<F::Output, Fatal> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut)
            .await
            .map_err(|_| Fatal::new(exit::TIMEOUT, "Timed out")),
        None => Ok(fut.await),
    }
}

fn write_error(e: io::Error) -> Fatal {
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
    unsub_ticket: Option<Ticket>,
    args: &'a SubArgs,
}

impl<W: Write> Subscriber<'_, W> {
    async fn run(&mut self, mut events: Events, deadline: Option<Instant>) -> Result<(), Fatal> {
        let topics = &self.args.common.topics;
        if topics.is_empty() {
            self.unsubscribe()?;
        } else {
            let qos = self.args.common.qos;
            for t in topics {
                self.trace.client(format_args!(
                    "sending SUBSCRIBE (Topic: {t}, QoS: {})",
                    qos as u8
                ));
            }
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
        for t in filters {
            self.trace
                .client(format_args!("sending UNSUBSCRIBE (Topic: {t})"));
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
        if self.args.exit_after_sub && self.sub_ticket.is_none() && self.unsub_ticket.is_none() {
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
                    self.trace.client(format_args!("received UNSUBACK"));
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
            Ok(other) => {
                return Err(Fatal::new(
                    exit::ERROR,
                    format!("Error: unexpected answer to SUBSCRIBE: {other:?}"),
                ));
            }
            Err(e) => {
                return Err(Fatal::new(
                    exit::ERROR,
                    format!("Error: subscribe failed: {e}"),
                ));
            }
        };
        self.trace.client(format_args!("received SUBACK"));
        if self.trace.is_on() {
            let granted: Vec<String> = codes.iter().map(|c| c.to_u8().to_string()).collect();
            self.trace
                .note(format_args!("Subscribed: {}", granted.join(", ")));
        }
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
                    eprintln!("Warning: subscription to '{t}' was denied.");
                }
            }
        }
        Ok(())
    }

    fn message(&mut self, m: &Message) -> Result<Flow, Fatal> {
        let a = self.args;
        if self.trace.is_on() {
            self.trace.client(format_args!(
                "received PUBLISH (d{}, q{}, r{}, '{}', ... ({} bytes))",
                u8::from(m.dup),
                m.qos as u8,
                u8::from(m.retain),
                m.topic,
                m.payload.len()
            ));
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
        self.print(m)?;
        self.printed += 1;
        if a.count.is_some_and(|c| self.printed >= c) {
            return Ok(Flow::Done);
        }
        Ok(Flow::Continue)
    }

    fn print(&mut self, m: &Message) -> Result<(), Fatal> {
        let eol = !self.args.no_eol;
        let topic = m.topic.as_str();
        let w = &mut self.out;
        let r = if let Some(f) = &self.format {
            self.line.clear();
            let view = View {
                topic,
                payload: &m.payload,
                qos: m.qos as u8,
                retain: m.retain,
                mid: m.packet_id.map_or(0, |id| id.get()),
            };
            if let Err(e) = f.render(&view, &mut self.line) {
                if !self.args.common.quiet {
                    eprintln!("{e}");
                }
                return Ok(());
            }
            if eol {
                self.line.push(b'\n');
            }
            w.write_all(&self.line)
        } else if self.args.verbose {
            // mosquitto_sub -v: "topic payload", "topic (null)" for an empty payload.
            let payload: &[u8] = if m.payload.is_empty() {
                b"(null)"
            } else {
                &m.payload
            };
            write_parts(w, &[topic.as_bytes(), b" ", payload], eol)
        } else if m.payload.is_empty() {
            // mosquitto_sub prints nothing at all for an empty payload without -v/-F.
            Ok(())
        } else {
            write_parts(w, &[&m.payload], eol)
        };
        r.map_err(write_error)
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
