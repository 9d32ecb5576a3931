//! `-d`: the library's connection and packet trace (`tern::connect`, `tern::packet`) printed
//! mosquitto-style, `Client <id> sending PUBLISH (d0, q1, r0, m1, 't', ... (5 bytes))`, on
//! stderr. A closed stderr is ignored, never a panic.

use std::fmt;
use std::io::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Prints every connection step and packet of this process's clients as `Client <id> ...`.
/// Installs a global subscriber; a second call does nothing.
pub(crate) fn install(client_id: &str) {
    let filter = Targets::new()
        .with_target(tern::trace::CONNECT_TARGET, Level::DEBUG)
        .with_target(tern::trace::PACKET_TARGET, Level::DEBUG);
    let layer = Lines {
        prefix: format!("Client {client_id} "),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}

/// Writes each event's message as one line.
struct Lines {
    prefix: String,
}

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = self.prefix.clone();
        event.record(&mut Message(&mut line));
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Appends the `message` field; other fields as ` name=value`.
struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        use fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        use fmt::Write as _;
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}
