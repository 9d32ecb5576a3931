//! Against a broker with Nagle's algorithm on (mosquitto's default), a request/response
//! exchange must not wait for our delayed ACKs. mosquitto answers a PUBLISH with two writes;
//! when the client reads the first alone and answers nothing, the second waits for the
//! client's ACK, which Linux delays by 40 ms: 22 ms per QoS 1 round trip on average before
//! this was handled. The driver notices the broker waiting (a read 30–250 ms after a read
//! that nothing answered) and from then on ACKs unanswered reads at once. Tests assert no
//! timings: they count the driver's read-tuning trace events (field `read_tuning` on target
//! `tern::driver`: `"quick_acks"` when a connection switches, `"quickack"` for every
//! `TCP_QUICKACK` it sets), with every round trip bounded. With
//! `ConnectOptions::read_tuning(false)` there are none.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{connected, unique, within};
use std::sync::{Arc, Mutex, PoisonError};

use tern::{ConnectOptions, Event, QoS};
use tern_testkit::MosquittoConfig;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const ROUND_TRIPS: usize = 50;

/// The driver's read-tuning decisions, by kind, as counted from its trace events.
#[derive(Debug, Default, Clone, Copy)]
struct Tuning {
    /// Switches to quick ACKs (`read_tuning = "quick_acks"`).
    switches: usize,
    /// `TCP_QUICKACK`s set (`read_tuning = "quickack"`).
    quickacks: usize,
}

/// Counts the driver's events that carry a `read_tuning` field.
#[derive(Clone, Default)]
struct TuningEvents(Arc<Mutex<Tuning>>);

impl<S: tracing::Subscriber> Layer<S> for TuningEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "tern::driver" {
            return;
        }
        let mut kind = Kind(None);
        event.record(&mut kind);
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match kind.0.as_deref() {
            Some("quick_acks") => counts.switches += 1,
            Some("quickack") => counts.quickacks += 1,
            _ => {}
        }
    }
}

struct Kind(Option<String>);

impl Visit for Kind {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "read_tuning" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// Runs `ROUND_TRIPS` request/response exchanges at `qos` through a broker with Nagle's
/// algorithm on; returns the driver's read-tuning decisions.
async fn ping_pong(qos: QoS, read_tuning: bool) -> Tuning {
    // Every task of this test runs on this thread (a current-thread runtime).
    let trace = TuningEvents::default();
    let _trace =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(trace.clone()));
    let broker = MosquittoConfig::new().tcp_nodelay(false).start();
    let topic = unique("pp");
    let options = ConnectOptions::new(unique("pp")).read_tuning(read_tuning);
    let (client, mut events) = connected(options, broker.port()).await;
    within("SUBACK", client.subscribe([(topic.as_str(), qos)]))
        .await
        .unwrap();
    for i in 0..ROUND_TRIPS {
        client.try_publish(&topic, "ping", qos, false).unwrap();
        within(&format!("round trip {i}"), async {
            loop {
                match events.recv().await {
                    Some(Event::Message(m)) => {
                        assert_eq!(&m.payload[..], b"ping");
                        return;
                    }
                    Some(Event::Completed { result, .. }) => {
                        result.unwrap();
                    }
                    Some(_) => {}
                    None => panic!("the client stopped"),
                }
            }
        })
        .await;
    }
    within("close", client.close()).await.unwrap();
    *trace.0.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn ping_pong_switches_to_quick_acks(qos: QoS) {
    let tuning = ping_pong(qos, true).await;
    assert_eq!(
        tuning.switches, 1,
        "one connection switches to quick ACKs once in {ROUND_TRIPS} round trips at {qos:?}: \
         {tuning:?}"
    );
    assert!(
        tuning.quickacks > 0,
        "switched, yet no TCP_QUICKACK was set: {tuning:?}"
    );
}

#[tokio::test]
async fn qos_1_ping_pong_through_a_nagle_broker_switches_to_quick_acks() {
    ping_pong_switches_to_quick_acks(QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn qos_2_ping_pong_through_a_nagle_broker_switches_to_quick_acks() {
    ping_pong_switches_to_quick_acks(QoS::ExactlyOnce).await;
}

#[tokio::test]
async fn with_read_tuning_off_ping_pong_never_switches_to_quick_acks() {
    let tuning = ping_pong(QoS::AtLeastOnce, false).await;
    assert_eq!(
        (tuning.switches, tuning.quickacks),
        (0, 0),
        "read tuning is off, yet: {tuning:?}"
    );
}
