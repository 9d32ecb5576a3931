//! Against a broker with Nagle's algorithm on (mosquitto's default), a request/response
//! exchange must not wait for our delayed ACKs. mosquitto answers a PUBLISH with two writes;
//! when the client reads the first alone and answers nothing, the second waits for the
//! client's ACK, which Linux delays by 40 ms: 22 ms per QoS 1 round trip on average before
//! this was handled. The driver notices the broker waiting (a read 30–250 ms after a read
//! that nothing answered) and from then on ACKs unanswered reads at once. Tests assert no
//! timings, so this checks the driver's trace event of that switch, with every round trip
//! bounded. With `ConnectOptions::read_tuning(false)` it never switches.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{connected, unique, within};
use tern::{ConnectOptions, Event, QoS};
use tern_testkit::{DriverTrace, MosquittoConfig};

const ROUND_TRIPS: usize = 50;

/// Runs `ROUND_TRIPS` request/response exchanges at `qos` through a broker with Nagle's
/// algorithm on; returns the driver's trace messages other than reads and writes.
async fn ping_pong(qos: QoS, read_tuning: bool) -> Vec<String> {
    let trace = DriverTrace::default();
    let _trace = trace.install();
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
    trace.messages()
}

async fn ping_pong_switches_to_quick_acks(qos: QoS) {
    let others = ping_pong(qos, true).await;
    assert!(
        others.iter().any(|m| m.contains("quick ACKs from now on")),
        "no switch to quick ACKs in {ROUND_TRIPS} round trips at {qos:?}; driver events other \
         than writes and reads: {others:?}"
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
    let others = ping_pong(QoS::AtLeastOnce, false).await;
    assert!(
        !others.iter().any(|m| m.contains("quick ACKs")),
        "read tuning is off, yet: {others:?}"
    );
}
