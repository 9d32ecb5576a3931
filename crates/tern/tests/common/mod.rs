//! Shared helpers for the client's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use tern::{Broker, Client, ConnectOptions, Event, Events, Message};

/// How long any single expected event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test with `what` after [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tern_testkit::timeout(WAIT, fut, what).await
}

/// A client connected to `127.0.0.1:port`.
pub async fn connected(options: ConnectOptions, port: u16) -> (Client, Events) {
    let (client, events) = Client::new(options);
    within("CONNACK", client.connect(Broker::tcp("127.0.0.1", port)))
        .await
        .unwrap_or_else(|e| panic!("connect failed: {e}"));
    (client, events)
}

/// The next message on `events`, skipping other events.
pub async fn next_message(events: &mut Events) -> Message {
    within("a message", async {
        loop {
            match events.recv().await {
                Some(Event::Message(m)) => return m,
                Some(_) => continue,
                None => panic!("event stream ended while waiting for a message"),
            }
        }
    })
    .await
}

/// The next event accepted by `pick`, skipping others.
pub async fn next_event<T>(
    events: &mut Events,
    what: &str,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    within(what, async {
        loop {
            match events.recv().await {
                Some(ev) => {
                    if let Some(t) = pick(ev) {
                        return t;
                    }
                }
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
}

/// A unique client id / topic suffix per test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand_u32())
}

fn fastrand_u32() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}
