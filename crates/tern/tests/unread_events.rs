//! The event policy of `ConnectOptions::event_capacity` against a real mosquitto: a
//! publish-only client whose application never reads `Events` neither stalls nor grows.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{connected, unique};
use tern::{ConnectOptions, QoS};
use tern_testkit::MosquittoConfig;

const COUNT: usize = 100_000;
const CAPACITY: usize = 64;
/// Publishes per burst, the last one awaited.
const BURST: usize = 1_000;

/// 100,000 QoS 1 publishes, most by `try_publish` (each completes with an
/// `Event::Completed`), and the application never reads an event until the end: publishing
/// never stalls (every awaited publish completes), and the client holds at most `2 × event_capacity` events (the
/// channel and the backlog beside it); the rest were dropped and counted.
#[tokio::test]
async fn a_publish_only_client_that_never_reads_events_neither_stalls_nor_grows() {
    let broker = MosquittoConfig::new().start();
    let options = ConnectOptions::new(unique("unread")).event_capacity(CAPACITY);
    let (client, mut events) = connected(options, broker.port()).await;
    let topic = unique("unread");
    let run = async {
        // Bursts of `try_publish` (each completes as an `Event::Completed` nobody reads),
        // each closed by an awaited publish: completions are in order, so it returns only
        // once the broker acknowledged the whole burst. A burst stays far below
        // `max_queued`, so none is refused.
        for burst in 0..COUNT / BURST {
            for i in 0..BURST - 1 {
                if let Err(e) = client.try_publish(&topic, "0123456789", QoS::AtLeastOnce, false) {
                    panic!("burst {burst}, publish {i}: {e}");
                }
            }
            client
                .publish(&topic, "end of burst", QoS::AtLeastOnce, false)
                .await
                .unwrap_or_else(|e| panic!("burst {burst} completes: {e}"));
        }
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("100,000 publishes with unread events complete within 120 s (no stall)");
    let mut held = 0;
    // What the client holds: the channel's events, then those waiting beside it, which the
    // driver moves in as room is made (it runs when this task yields; bounded rounds).
    let mut idle = 0;
    while idle < 100 {
        match events.try_recv() {
            Some(_) => {
                held += 1;
                idle = 0;
            }
            None => {
                idle += 1;
                tokio::task::yield_now().await;
            }
        }
    }
    assert!(
        held <= 2 * CAPACITY,
        "{held} events held for an application that never read any (bound {})",
        2 * CAPACITY
    );
    let dropped = events.dropped() as usize;
    // One `Completed` per `try_publish`, and the `Connected` event.
    let emitted = COUNT - COUNT / BURST + 1;
    assert_eq!(
        dropped + held,
        emitted,
        "every event was either held or counted as dropped"
    );
}
