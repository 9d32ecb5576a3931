//! Read tuning (`ConnectOptions::read_tuning`) must never make a client slower than reading
//! plainly, above all against a broker as users run it: mosquitto with its default
//! configuration, Nagle's algorithm on. A receive low-water mark once made a publish-only
//! QoS 1 client wait for acknowledgements the broker held until our kernel's delayed ACK:
//! 20,000 publishes took ~30× as long as without it. These tests compare one run with the
//! tuning on against one with it off, on the same broker, as a ratio; and that nothing the
//! broker sends is left unread while acknowledgements are owed (messages for the same
//! connection, a PINGRESP).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::{connected, unique, within};
use tern::{Broker, Client, ClientError, ConnectOptions, Event, Events, QoS};
use tern_proto::PacketType;
use tern_testkit::{Mosquitto, MosquittoConfig, Script, ScriptedBroker};

const COUNT: usize = 20_000;
/// Tuned may take at most this many times as long as untuned.
const MAX_RATIO: f64 = 1.5;
/// Messages a client publishes to itself while its acknowledgements are owed.
const ECHO_COUNT: usize = 1000;

/// Publishes `COUNT` messages at `qos` with nobody subscribed, keeping the in-flight window
/// and some of the queue full (as `tern pub -l` does), and returns the wall time from the
/// first publish to the last completion.
async fn publish_only(broker: &Mosquitto, qos: QoS, tuned: bool) -> Duration {
    const QUEUE_AHEAD: usize = 500;
    let options = ConnectOptions::new(unique("pubonly")).read_tuning(tuned);
    let (client, mut events) = connected(options, broker.port()).await;
    let topic = unique("pubonly");
    let started = Instant::now();
    let (mut sent, mut done) = (0, 0);
    while done < COUNT {
        if sent < COUNT && sent - done < QUEUE_AHEAD {
            match client.try_publish(&topic, "0123456789", qos, false) {
                Ok(_) => {
                    sent += 1;
                    continue;
                }
                Err(ClientError::QueueFull(_)) => {}
                Err(e) => panic!("publish {sent}: {e}"),
            }
        }
        let what = format!("completion {done} of {COUNT} at {qos:?}, tuning {tuned}");
        match within(&what, events.recv()).await {
            Some(Event::Completed { result, .. }) => {
                result.unwrap();
                done += 1;
            }
            Some(_) => {}
            None => panic!("the client stopped after {done} completions"),
        }
    }
    let took = started.elapsed();
    within("close", client.close()).await.unwrap();
    took
}

/// The best of two interleaved runs each way (the machine is shared: the best run is the
/// one least disturbed), and their ratio.
async fn tuned_is_not_slower(qos: QoS) {
    let broker = MosquittoConfig::stock().start();
    let mut tuned = Duration::MAX;
    let mut plain = Duration::MAX;
    for _ in 0..2 {
        tuned = tuned.min(publish_only(&broker, qos, true).await);
        plain = plain.min(publish_only(&broker, qos, false).await);
    }
    let ratio = tuned.as_secs_f64() / plain.as_secs_f64();
    assert!(
        ratio <= MAX_RATIO,
        "{COUNT} publish-only {qos:?} publishes through a stock mosquitto took {tuned:?} with \
         read tuning and {plain:?} without: {ratio:.2}× (at most {MAX_RATIO}× allowed)"
    );
}

#[tokio::test]
async fn publish_only_qos_1_through_a_stock_broker_is_not_slowed_by_read_tuning() {
    tuned_is_not_slower(QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn publish_only_qos_2_through_a_stock_broker_is_not_slowed_by_read_tuning() {
    tuned_is_not_slower(QoS::ExactlyOnce).await;
}

/// Publishes `ECHO_COUNT` messages to `topic` with at most `QUEUE_AHEAD` queued beyond what
/// completed, and returns how many messages arrived on `events` meanwhile (the client may be
/// subscribed to `topic`).
async fn publish_all(client: &Client, events: &mut Events, topic: &str, qos: QoS) -> usize {
    const QUEUE_AHEAD: usize = 300;
    let (mut sent, mut done, mut received) = (0, 0, 0);
    while done < ECHO_COUNT {
        if sent < ECHO_COUNT && sent - done < QUEUE_AHEAD {
            match client.try_publish(topic, "x", qos, false) {
                Ok(_) => {
                    sent += 1;
                    continue;
                }
                Err(ClientError::QueueFull(_)) => {}
                Err(e) => panic!("publish {sent}: {e}"),
            }
        }
        match within(&format!("completion {done} of {ECHO_COUNT}"), events.recv()).await {
            Some(Event::Completed { result, .. }) => {
                result.unwrap();
                done += 1;
            }
            Some(Event::Message(_)) => received += 1,
            Some(_) => {}
            None => panic!("the client stopped after {done} completions"),
        }
    }
    received
}

#[tokio::test]
async fn messages_for_a_publisher_arrive_while_acknowledgements_are_owed() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("owed-echo");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let (client, mut events) =
            connected(ConnectOptions::new(unique("owed-echo")), broker.port()).await;
        within("SUBACK", client.subscribe([(topic.as_str(), qos)]))
            .await
            .unwrap();
        // Our own publishes come back: messages interleave with the acknowledgements.
        let mut received = publish_all(&client, &mut events, &topic, QoS::AtLeastOnce).await;
        while received < ECHO_COUNT {
            match within(
                &format!("message {received} of {ECHO_COUNT} at {qos:?}"),
                events.recv(),
            )
            .await
            {
                Some(Event::Message(_)) => received += 1,
                Some(_) => {}
                None => panic!("the client stopped after {received} messages"),
            }
        }
        within("close", client.close()).await.unwrap();
    }
}

#[tokio::test]
async fn a_pingresp_is_read_while_pubacks_are_owed() {
    // The broker takes 10 QoS 1 publishes and never acknowledges them (40 bytes owed), but
    // answers every PINGREQ. Were the driver still waiting for 10 bytes, the 2-byte PINGRESP
    // would go unread and the keepalive would end the connection.
    let mut script = Script::new()
        .answer_pings(true)
        .expect_connect()
        .send_connack(0, false);
    for _ in 0..10 {
        script = script.expect(PacketType::Publish);
    }
    let broker = ScriptedBroker::start(script.read_until_closed()).await;
    let keep_alive = Duration::from_secs(1);
    let (client, mut events) = Client::new(ConnectOptions::new("owed-ping").keep_alive(keep_alive));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    for i in 0..10 {
        client
            .try_publish("t", format!("{i}"), QoS::AtLeastOnce, false)
            .unwrap();
    }
    let conn = broker.connection(0).await;
    // Three pings answered, each within the keepalive, with the connection up throughout.
    within(
        "three PINGREQs",
        conn.wait_for_count(PacketType::PingReq, 3),
    )
    .await;
    while let Some(ev) = events.try_recv() {
        assert!(
            !matches!(ev, Event::Disconnected { .. }),
            "connection lost while PUBACKs were owed: {ev:?}"
        );
    }
    assert!(!conn.is_closed(), "the client closed the connection");
    within("close", client.close()).await.unwrap();
}

#[tokio::test]
async fn with_keepalive_off_a_lone_puback_is_read_while_more_are_owed() {
    // The broker takes 10 QoS 1 publishes and acknowledges only the last: 4 bytes arrive
    // while 36 more are owed. Nothing but those 4 bytes will ever come (keepalive 0: no
    // PINGRESP either), so a driver waiting for more before it reads would wait forever.
    let mut script = Script::new().expect_connect().send_connack(0, false);
    for _ in 0..10 {
        script = script.expect(PacketType::Publish);
    }
    let script = script
        .respond(|last| {
            let id = last.packet_id().unwrap_or(0).to_be_bytes();
            vec![0x40, 0x02, id[0], id[1]]
        })
        .read_until_closed();
    let broker = ScriptedBroker::start(script).await;
    let (client, mut events) =
        Client::new(ConnectOptions::new("owed-k0").keep_alive(Duration::ZERO));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    for i in 0..10 {
        client
            .try_publish("t", format!("{i}"), QoS::AtLeastOnce, false)
            .unwrap();
    }
    within("the acknowledged publish to complete", async {
        loop {
            match events.recv().await {
                Some(Event::Completed { result, .. }) => return result.unwrap(),
                Some(Event::Disconnected { error, .. }) => panic!("disconnected: {error}"),
                Some(_) => {}
                None => panic!("the client stopped"),
            }
        }
    })
    .await;
    within("close", client.close()).await.unwrap();
}
