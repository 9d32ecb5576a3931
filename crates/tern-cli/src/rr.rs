//! `tern rr`: mosquitto_rr's request/response on the tern client.
//!
//! Subscribes to the response topic (`-e`), and once the SUBACK grants it publishes the
//! request to `-t`, then waits for one message on the response topic and prints it as
//! `tern sub` would (`-v`, `-N`, `-F`). With `-l` every line of standard input is a request,
//! each answered before the next is sent. At MQTT v5 (the default, as in mosquitto_rr) the
//! request names the response topic; with correlation data (`-D publish correlation-data`,
//! or fresh per line under `-l`) a reply carrying other correlation data is someone else's
//! and is skipped. Otherwise, and at 3.1.1 (`-V 311`), the first message on the response
//! topic is the answer. `-W` bounds the whole exchange: exit 27, "Timed
//! out".

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use bytes::Bytes;
use tern::{
    Client, ClientError, Event, Events, Message, Outcome, SubscribeReturnCode, Subscription,
};
use tokio::time::Instant;

use crate::mosq::args::{self, Parsed, RrArgs, Source, Version};
use crate::mosq::flags::Cmd;
use crate::mosq::format::Format;
use crate::mosq::{self, Fatal, exit};
use crate::pubcmd::with_properties;
use crate::subcmd::{Print, within, write_error};

const HELP: &str = "\
rr: publish a request and print the response (mosquitto_rr's flags)

Usage: tern rr {[-h host] [-p port] | --unix socket | -L URL} -t request-topic
               -e response-topic {-m message | -f file | -s | -l | -n} [-W secs] [options]
       tern rr --help

MQTT v5 by default (-V 5): the request carries the response topic, and correlation data
with -D publish correlation-data VALUE (under -l: 16 random bytes as hex per line unless
given); then only a response with the same correlation data, or none, is taken. -V 311 works with any broker: the first message on
the response topic is the response. -l sends one request per input line, each answered
before the next. Per-user defaults: $XDG_CONFIG_HOME/tern_rr (else .../mosquitto_rr).
";

pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let parsed = args::with_defaults(Cmd::Rr, args).and_then(args::parse_rr);
    let a = match parsed {
        Ok(Parsed::Help) => {
            mosq::out(&mosq::help(Cmd::Rr, HELP));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            mosq::out(&format!("tern {}\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(a)) => a,
        Err(e) => return mosq::usage_error("rr", &e),
    };
    let format = match a.format.as_deref().map(Format::parse).transpose() {
        Ok(f) => f.map(|mut f| {
            f.pretty = a.pretty;
            f
        }),
        Err(msg) => return mosq::usage_error("rr", &args::UsageError(msg)),
    };
    let quiet = a.common.quiet;
    match run(a, format) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(f) => f.report(quiet),
    }
}

fn run(a: RrArgs, format: Option<Format>) -> Result<(), Fatal> {
    let deadline = a.timeout.map(|d| Instant::now() + d);
    let setup = mosq::setup(&a.common, "rr")?;
    // Like mosquitto_rr, a single request is read before connecting.
    let single = match &a.source {
        Source::Message(m) => Some(Bytes::from(m.clone())),
        Source::Null | Source::Random(_) => Some(Bytes::new()),
        Source::File(path) => Some(crate::pubcmd::read_file(path)?),
        Source::Stdin => Some(crate::pubcmd::read_stdin()?),
        Source::Lines => None,
    };
    let mut lines = single.is_none().then(crate::pubcmd::spawn_line_reader);
    mosq::run(async move {
        let (client, events) = within(deadline, mosq::connect(&setup)).await??;
        let mut r = Requester {
            client,
            events,
            args: &a,
            print: Print {
                format: format.as_ref(),
                verbose: a.verbose,
                eol: !a.no_eol,
                quiet: a.common.quiet,
            },
            out: BufWriter::new(io::stdout()),
            line: Vec::new(),
            correlation: None,
        };
        let result = within(deadline, async {
            r.subscribe().await?;
            match (single, lines.as_mut()) {
                (Some(request), _) => r.exchange(request).await,
                (None, Some(lines)) => {
                    while let Some(batch) = lines.recv().await {
                        let batch = batch.map_err(|e| {
                            Fatal::new(exit::ERROR, format!("Error reading standard input: {e}"))
                        })?;
                        for request in batch {
                            r.exchange(request).await?;
                        }
                    }
                    Ok(())
                }
                (None, None) => Ok(()),
            }
        })
        .await;
        let flushed = r.out.flush();
        mosq::disconnect(&r.client, &setup).await;
        result??;
        flushed.map_err(write_error)
    })
}

/// One connection's requests, answered one at a time.
struct Requester<'a> {
    client: Client,
    events: Events,
    args: &'a RrArgs,
    print: Print<'a>,
    out: BufWriter<io::Stdout>,
    line: Vec<u8>,
    /// The correlation data of the request in flight (MQTT v5).
    correlation: Option<Bytes>,
}

impl Requester<'_> {
    /// The next event; the client ending is an error.
    async fn event(&mut self) -> Result<Event, Fatal> {
        match self.events.recv().await {
            Some(Event::Disconnected { error, .. }) => Err(Fatal::new(
                exit::ERROR,
                format!("Error: connection lost: {error}"),
            )),
            Some(ev) => Ok(ev),
            None => Err(Fatal::new(
                exit::ERROR,
                "Error: the client stopped unexpectedly",
            )),
        }
    }

    /// Subscribes to the response topic and waits for the SUBACK to grant it.
    async fn subscribe(&mut self) -> Result<(), Fatal> {
        let topic = self.args.response_topic.as_str();
        let qos = self.args.common.qos;
        let refused = |why: String| {
            Fatal::new(
                exit::ERROR,
                format!(
                    "Error: the broker refused the subscription to the response topic \
                     '{topic}' ({why})"
                ),
            )
        };
        let failed =
            |e: ClientError| Fatal::new(exit::ERROR, format!("Error: subscribe failed: {e}"));
        if self.args.common.version == Version::V5 {
            // Messages that come before the SUBACK wait in the event queue; none can be an
            // answer to a request not yet sent.
            let ack = self
                .client
                .subscribe_with([Subscription::new(topic, qos)], None)
                .await
                .map_err(failed)?;
            return match ack.reasons.first() {
                Some(code) if !code.is_error() => Ok(()),
                code => Err(refused(match (code, &ack.reason_string) {
                    (Some(c), Some(r)) => format!("SUBACK {c}: {r:?}"),
                    (Some(c), None) => format!("SUBACK {c}"),
                    (None, _) => "an empty SUBACK".into(),
                })),
            };
        }
        let ticket = self.client.try_subscribe([(topic, qos)]).map_err(failed)?;
        loop {
            match self.event().await? {
                Event::Completed { ticket: t, result } if t == ticket => {
                    return match result {
                        Ok(Outcome::Subscribed(codes))
                            if codes
                                .first()
                                .is_some_and(|c| *c != SubscribeReturnCode::Failure) =>
                        {
                            Ok(())
                        }
                        Ok(_) => Err(refused("SUBACK 0x80: failure".into())),
                        Err(e) => Err(failed(e)),
                    };
                }
                // Retained or queued messages before the SUBACK are not answers to a
                // request not yet sent.
                _ => {}
            }
        }
    }

    /// Publishes one request and prints its response.
    async fn exchange(&mut self, request: Bytes) -> Result<(), Fatal> {
        let a = self.args;
        let topic = a.common.topics.first().map_or("", String::as_str);
        if a.common.version == Version::V5 {
            let mut props = a.common.props.publish.clone();
            if a.generated_correlation {
                // A fresh one per request: a late answer to an earlier line is not taken
                // for this one's.
                props.correlation_data = Some(correlation_id());
            }
            let publish =
                with_properties(tern::Publish::new(topic, request).qos(a.common.qos), &props);
            self.correlation = props.correlation_data;
            self.client
                .publish_with(publish)
                .await
                .map_err(|e| publish_error(&e))?;
            loop {
                if let Event::Message(m) = self.event().await?
                    && self.is_response(&m)
                {
                    return self.show(&m);
                }
            }
        }
        let ticket = self
            .client
            .try_publish(topic, request, a.common.qos, false)
            .map_err(|e| publish_error(&e))?;
        let mut published = false;
        let mut answered = false;
        // Both the request's completion and the response are awaited: a fast responder's
        // answer may overtake the PUBACK.
        while !(published && answered) {
            match self.event().await? {
                Event::Completed { ticket: t, result } if t == ticket => {
                    result.map_err(|e| publish_error(&e))?;
                    published = true;
                }
                Event::Message(m) if !answered && self.is_response(&m) => {
                    self.show(&m)?;
                    answered = true;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Prints a response.
    fn show(&mut self, m: &Message) -> Result<(), Fatal> {
        self.print
            .message(&mut self.out, &mut self.line, m)
            .and_then(|()| self.out.flush())
            .map_err(write_error)
    }

    /// Whether `m` answers the request in flight: on the response topic, not a stale
    /// retained message under `-R`, and at MQTT v5 without correlation data other than the
    /// request's (that reply is another requester's).
    fn is_response(&self, m: &Message) -> bool {
        let a = self.args;
        let ours = match (&self.correlation, m.correlation_data()) {
            (Some(sent), Some(got)) => sent == got,
            _ => true,
        };
        m.topic.as_str() == a.response_topic && !(a.no_retain && m.retain) && ours
    }
}

/// 16 random bytes as hex: correlation data that is also printable with `%D`.
pub(crate) fn correlation_id() -> Bytes {
    let id: String = (0..16)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect();
    Bytes::from(id)
}

fn publish_error(e: &ClientError) -> Fatal {
    Fatal::new(
        exit::ERROR,
        format!("Error: publishing the request failed: {e}"),
    )
}
