//! While the broker owes acknowledgements, the driver asks the kernel to wake it only once a
//! quarter of their bytes are readable (`SO_RCVLOWAT`, see the driver's `lowat` module): a
//! publisher with a full window then reads its PUBACKs in batches instead of one per wake-up.
//! These tests check the batching through the driver's `read` trace events, and that nothing
//! is left unread meanwhile: messages for the same connection, a PINGRESP.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{connected, unique, within};
use tern::{Broker, Client, ClientError, ConnectOptions, Event, Events, QoS};
use tern_proto::PacketType;
use tern_testkit::{DriverTrace, MosquittoConfig, Script, ScriptedBroker};

const COUNT: usize = 1000;

/// Publishes `COUNT` messages to `topic` with at most `QUEUE_AHEAD` queued beyond what
/// completed, and returns how many messages arrived on `events` meanwhile (the client may be
/// subscribed to `topic`).
async fn publish_all(client: &Client, events: &mut Events, topic: &str, qos: QoS) -> usize {
    const QUEUE_AHEAD: usize = 300;
    let (mut sent, mut done, mut received) = (0, 0, 0);
    while done < COUNT {
        if sent < COUNT && sent - done < QUEUE_AHEAD {
            match client.try_publish(topic, "x", qos, false) {
                Ok(_) => {
                    sent += 1;
                    continue;
                }
                Err(ClientError::QueueFull) => {}
                Err(e) => panic!("publish {sent}: {e}"),
            }
        }
        match within(&format!("completion {done} of {COUNT}"), events.recv()).await {
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

async fn acknowledgements_are_read_in_batches(qos: QoS, acks_per_publish: usize) {
    let broker = MosquittoConfig::new().start();
    let trace = DriverTrace::default();
    let _trace = trace.install();
    let topic = unique("lowat");
    let (client, mut events) = connected(
        ConnectOptions::new(unique("lowat")).max_inflight(100),
        broker.port(),
    )
    .await;
    publish_all(&client, &mut events, &topic, qos).await;
    within("close", client.close()).await.unwrap();
    let reads: Vec<u64> = trace
        .events()
        .into_iter()
        .filter(|e| e.message == "read")
        .filter_map(|e| e.bytes)
        .collect();
    // A read of 4 bytes or fewer is a lone acknowledgement (or the CONNACK). Woken for every
    // acknowledgement, most reads are (95–307 of 105–425 in debug builds here, where the slow
    // client batches some by itself; nearly all of them in a release build).
    // Batched, only the window's tail is: fewer than 8 acknowledgements owed.
    let lone = reads.iter().filter(|&&n| n <= 4).count();
    assert!(
        lone <= 8,
        "{lone} of {} reads held a lone acknowledgement at {qos:?} (at most 8 expected); \
         the first read sizes: {:?}",
        reads.len(),
        &reads[..reads.len().min(40)]
    );
    let bound = COUNT * acks_per_publish / 5;
    assert!(
        reads.len() <= bound,
        "{} reads for {} acknowledgements at {qos:?} (at most {bound} expected)",
        reads.len(),
        COUNT * acks_per_publish
    );
}

#[tokio::test]
async fn a_qos_1_publisher_reads_its_pubacks_in_batches() {
    acknowledgements_are_read_in_batches(QoS::AtLeastOnce, 1).await;
}

#[tokio::test]
async fn a_qos_2_publisher_reads_its_pubrecs_and_pubcomps_in_batches() {
    acknowledgements_are_read_in_batches(QoS::ExactlyOnce, 2).await;
}

#[tokio::test]
async fn messages_for_a_publisher_arrive_while_acknowledgements_are_owed() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("lowat-echo");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let (client, mut events) =
            connected(ConnectOptions::new(unique("lowat-echo")), broker.port()).await;
        within("SUBACK", client.subscribe([(topic.as_str(), qos)]))
            .await
            .unwrap();
        // Our own publishes come back: messages interleave with the acknowledgements.
        let mut received = publish_all(&client, &mut events, &topic, QoS::AtLeastOnce).await;
        while received < COUNT {
            match within(
                &format!("message {received} of {COUNT} at {qos:?}"),
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
    let (client, mut events) =
        Client::new(ConnectOptions::new("lowat-ping").keep_alive(keep_alive));
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
