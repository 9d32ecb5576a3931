//! `tern pub`: mosquitto_pub's flags and behaviour on the tern client.
//!
//! Publishes are pipelined: each is queued with `try_publish` and up to [`WINDOW`] wait for
//! completion at once, so `-l` streams at socket speed; the command exits only after every
//! completion (PUBACK/PUBCOMP, or written for QoS 0) and a DISCONNECT.

use std::ffi::OsString;
use std::io::{self, Read};
use std::process::ExitCode;
use std::thread;

use bytes::{Bytes, BytesMut};
use std::time::Duration;

use tern::{Client, ClientError, Event, Events, QoS};
use tern_proto::{PayloadFormat, PublishProperties};
use tokio::sync::mpsc;

use crate::mosq::args::{self, Parsed, PubArgs, Source, Version};
use crate::mosq::flags::Cmd;
use crate::mosq::{self, Fatal, exit};

/// Publishes queued but not yet completed, at most. Deep enough to keep the in-flight
/// window (`-M`, default 100) full while stdin is read, small enough to stay far below the
/// client's queue bound, so a queued publish is never refused for space.
const WINDOW: usize = 4096;

/// Bytes read from stdin per `read` call in `-l` mode.
const READ_CHUNK: usize = 64 * 1024;

const HELP: &str = "\
pub: publish one message, or one per line of input, and exit (mosquitto_pub's flags)

Usage: tern pub {[-h host] [-p port] | --unix socket | -L URL} -t topic
                {-m message | -f file | -s | -l | -n | --payload-size bytes} [options]
       tern pub --help

Per-user defaults: options in $XDG_CONFIG_HOME/tern_pub (else .../mosquitto_pub; the
directory defaults to ~/.config), one per line, are read before the command line.
";

pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let parsed = args::with_defaults(Cmd::Pub, args).and_then(args::parse_pub);
    let a = match parsed {
        Ok(Parsed::Help) => {
            mosq::out(&mosq::help(Cmd::Pub, HELP));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            mosq::out(&format!("tern {}\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(a)) => a,
        Err(e) => return mosq::usage_error("pub", &e),
    };
    let quiet = a.common.quiet;
    match run(a) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(f) => f.report(quiet),
    }
}

fn run(a: PubArgs) -> Result<(), Fatal> {
    let mut setup = mosq::setup(&a.common, "pub")?;
    // Up to WINDOW completions may wait between two reads of the event stream; with an
    // event capacity of WINDOW the client keeps them all (it drops the oldest only beyond
    // twice that). Its default of 1,024 dropped completions past 2,048 unread, and the
    // publisher waited for them forever.
    setup.options = setup.options.event_capacity(WINDOW);
    // Like mosquitto_pub, read a single message before connecting: a missing file fails
    // without touching the broker.
    let single = match &a.source {
        Source::Message(m) => Some(Bytes::from(m.clone())),
        Source::Null => Some(Bytes::new()),
        Source::File(path) => Some(read_file(path)?),
        Source::Stdin => Some(read_stdin()?),
        Source::Random(n) => Some(random_payload(*n)),
        Source::Lines => None,
    };
    let random = match a.source {
        Source::Random(n) => Some(n),
        _ => None,
    };
    let lines = single.is_none().then(spawn_line_reader);
    let topic = a.common.topics.first().cloned().unwrap_or_default();
    mosq::run(async move {
        let (client, events) = mosq::connect(&setup).await?;
        let mut p = Publisher {
            client,
            events,
            topic,
            qos: a.common.qos,
            retain: a.retain,
            outstanding: 0,
            v5: (a.common.version == Version::V5).then(|| a.common.props.publish.clone()),
        };
        match (single, lines) {
            (Some(payload), _) => {
                for i in 0..a.repeat {
                    // --payload-size: a new random payload each time.
                    let payload = match random {
                        Some(n) if i > 0 => random_payload(n),
                        _ => payload.clone(),
                    };
                    p.send(payload).await?;
                    if !a.repeat_delay.is_zero() && i + 1 < a.repeat {
                        p.finish().await?;
                        tokio::time::sleep(a.repeat_delay).await;
                    }
                }
            }
            (None, Some(mut lines)) => loop {
                tokio::select! {
                    batch = lines.recv() => match batch {
                        Some(Ok(batch)) => {
                            for line in batch {
                                p.send(line).await?;
                            }
                        }
                        Some(Err(e)) => {
                            return Err(Fatal::new(
                                exit::ERROR,
                                format!("Error reading standard input: {e}"),
                            ));
                        }
                        None => break,
                    },
                    ev = p.events.recv() => p.handle(ev)?,
                }
            },
            (None, None) => {}
        }
        p.finish().await?;
        mosq::disconnect(&p.client, &setup).await;
        Ok(())
    })
}

/// Pipelined publishing on one client.
struct Publisher {
    client: Client,
    events: Events,
    topic: String,
    qos: QoS,
    retain: bool,
    /// Queued with `try_publish`, completion not seen yet.
    outstanding: usize,
    /// At MQTT v5: the `-D publish` properties every message carries.
    v5: Option<PublishProperties>,
}

impl Publisher {
    /// Queues one publish, first waiting for room in the window or the client's channel.
    /// At MQTT v5 it carries the `-D publish` properties.
    async fn send(&mut self, payload: Bytes) -> Result<(), Fatal> {
        while self.outstanding >= WINDOW {
            let ev = self.events.recv().await;
            self.handle(ev)?;
        }
        loop {
            let queued = match &self.v5 {
                Some(props) => self.client.try_publish_with(with_properties(
                    tern::Publish::new(self.topic.as_str(), payload.clone())
                        .qos(self.qos)
                        .retain(self.retain),
                    props,
                )),
                None => {
                    self.client
                        .try_publish(&self.topic, payload.clone(), self.qos, self.retain)
                }
            };
            match queued {
                Ok(_) => {
                    self.outstanding += 1;
                    return Ok(());
                }
                // The command channel is full; every command in it is one of ours, so a
                // completion is on its way.
                Err(ClientError::QueueFull(_)) if self.outstanding > 0 => {
                    let ev = self.events.recv().await;
                    self.handle(ev)?;
                }
                Err(e) => {
                    return Err(Fatal::new(
                        exit::ERROR,
                        format!("Error: publish failed: {e}"),
                    ));
                }
            }
        }
    }

    /// Waits until every queued publish has completed.
    async fn finish(&mut self) -> Result<(), Fatal> {
        while self.outstanding > 0 {
            let ev = self.events.recv().await;
            self.handle(ev)?;
        }
        Ok(())
    }

    fn handle(&mut self, ev: Option<Event>) -> Result<(), Fatal> {
        match ev {
            Some(Event::Completed { result: Ok(_), .. }) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                Ok(())
            }
            Some(Event::Completed { result: Err(e), .. }) => Err(Fatal::new(
                exit::ERROR,
                format!("Error: publish failed: {e}"),
            )),
            Some(Event::Disconnected { error, .. }) => Err(Fatal::new(
                exit::ERROR,
                format!("Error: connection lost: {error}"),
            )),
            Some(_) => Ok(()),
            None => Err(Fatal::new(
                exit::ERROR,
                "Error: the client stopped before every message was published",
            )),
        }
    }
}

/// `publish` with the `-D publish` properties. A Topic Alias is not copied: the client
/// assigns aliases itself where the broker allows them.
pub(crate) fn with_properties(mut publish: tern::Publish, p: &PublishProperties) -> tern::Publish {
    publish.message_expiry = p
        .message_expiry_interval
        .map(|s| Duration::from_secs(s.into()));
    publish.content_type = p.content_type.as_ref().map(|c| c.as_str().to_owned());
    publish.utf8_payload = p.payload_format_indicator == Some(PayloadFormat::Utf8);
    publish.response_topic = p.response_topic.as_ref().map(|t| t.as_str().to_owned());
    publish.correlation_data = p.correlation_data.clone();
    publish.user_properties = p
        .user_properties
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
        .collect();
    publish
}

/// `n` random bytes (`--payload-size`).
fn random_payload(n: usize) -> Bytes {
    let mut rng = fastrand::Rng::new();
    let mut v = vec![0u8; n];
    rng.fill(&mut v);
    Bytes::from(v)
}

/// Reads stdin on its own thread (reads block; the runtime must keep driving the socket)
/// and sends its lines in batches, one batch per read. Lines are zero-copy slices of the
/// read buffer.
pub(crate) fn spawn_line_reader() -> mpsc::Receiver<io::Result<Vec<Bytes>>> {
    let (tx, rx) = mpsc::channel(16);
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let n = match stdin.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            if n == 0 {
                if !buf.is_empty() {
                    let _ = tx.blocking_send(Ok(vec![buf.split().freeze()]));
                }
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            let batch = split_lines(&mut buf);
            if !batch.is_empty() && tx.blocking_send(Ok(batch)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Takes every complete line off the front of `buf`, newline removed; leaves the partial
/// last line in `buf`.
fn split_lines(buf: &mut BytesMut) -> Vec<Bytes> {
    let mut lines = Vec::new();
    while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
        let mut line = buf.split_to(pos + 1);
        line.truncate(pos);
        lines.push(line.freeze());
    }
    lines
}

/// `-s`: standard input read whole; empty input is refused in mosquitto_pub's words (it
/// sends nothing rather than an empty message).
pub(crate) fn read_stdin() -> Result<Bytes, Fatal> {
    let mut buf = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| Fatal::new(exit::ERROR, format!("Error reading standard input: {e}")))?;
    if buf.is_empty() {
        return Err(Fatal::new(
            exit::ERROR,
            "Error: Zero length input.\nError loading input from stdin.",
        ));
    }
    Ok(Bytes::from(buf))
}

/// `-f FILE` read whole, refused in mosquitto_pub's words when it cannot be opened.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Bytes, Fatal> {
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|_| {
        Fatal::new(
            exit::ERROR,
            format!(
                "Error: Unable to open file \"{shown}\".\nError loading input file \"{shown}\"."
            ),
        )
    })?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(|e| {
        Fatal::new(
            exit::ERROR,
            format!("Error loading input file \"{shown}\": {e}"),
        )
    })?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_without_their_newline_and_keep_cr() {
        let mut buf = BytesMut::from(&b"a\n\nb\r\npart"[..]);
        let lines = split_lines(&mut buf);
        assert_eq!(lines, [&b"a"[..], b"", b"b\r"]);
        assert_eq!(&buf[..], b"part");
        buf.extend_from_slice(b"ial\n");
        assert_eq!(split_lines(&mut buf), [&b"partial"[..]]);
        assert!(buf.is_empty());
    }
}
