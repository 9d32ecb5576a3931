//! A scripted broker that breaks the rules: each case ends with a precise error (or the
//! spec's reaction) within a bounded time, never a panic or a hang.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{next_event, within};
use tern::{Broker, Client, ConnectOptions, ConnectionError, Event, QoS};
use tern_proto::PacketType;
use tern_testkit::{Script, ScriptedBroker};

/// Connects to a scripted broker that accepts, then waits for the connection to end.
async fn lost_after_connack(script: Script) -> (ConnectionError, tern_testkit::Connection) {
    let broker = ScriptedBroker::start(script).await;
    let (client, mut events) = Client::new(ConnectOptions::new("mis"));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    let error = next_event(&mut events, "the connection to end", |e| match e {
        Event::Disconnected { error, .. } => Some(error),
        _ => None,
    })
    .await;
    let conn = broker.connection(0).await;
    conn.wait_closed().await;
    (error, conn)
}

fn protocol_text(e: &ConnectionError) -> String {
    assert!(
        matches!(e, ConnectionError::Protocol(_)),
        "expected a protocol error, got {e:?}"
    );
    e.to_string()
}

#[tokio::test]
async fn malformed_remaining_length_closes_the_connection() {
    let (e, _) = lost_after_connack(Script::malformed_remaining_length()).await;
    assert!(protocol_text(&e).contains("remaining length"), "{e}");
}

#[tokio::test]
async fn truncated_packet_then_close_is_a_closed_connection() {
    let (e, _) = lost_after_connack(Script::truncated_then_close()).await;
    assert!(matches!(e, ConnectionError::Closed), "{e:?}");
}

#[tokio::test]
async fn garbage_bytes_close_the_connection() {
    let (e, _) = lost_after_connack(Script::garbage()).await;
    protocol_text(&e);
}

#[tokio::test]
async fn a_publish_claiming_256_mib_is_refused_before_buffering() {
    let (e, _) = lost_after_connack(Script::huge_publish()).await;
    let text = protocol_text(&e);
    assert!(text.contains("exceeds the limit"), "{text}");
}

#[tokio::test]
async fn unsolicited_acks_for_unknown_ids_are_handled_per_spec() {
    // PUBREL for an unknown id is answered with PUBCOMP [MQTT-4.3.3-2]; the connection stays.
    let broker = ScriptedBroker::start(Script::unsolicited(PacketType::PubRel, 77)).await;
    let (client, _events) = Client::new(ConnectOptions::new("mis"));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    let conn = broker.connection(0).await;
    let comp = conn.wait_for(PacketType::PubComp).await;
    assert_eq!(comp.packet_id(), Some(77));

    // PUBACK, PUBREC, PUBCOMP for ids with nothing in flight are protocol violations.
    for kind in [PacketType::PubAck, PacketType::PubRec, PacketType::PubComp] {
        let (e, _) = lost_after_connack(Script::unsolicited(kind, 9)).await;
        let text = protocol_text(&e);
        assert!(text.contains("packet id 9"), "{kind}: {text}");
    }
}

#[tokio::test]
async fn one_byte_per_interval_still_decodes() {
    // CONNACK dribbled one byte at a time, then a PUBLISH the same way.
    let mut bytes = tern_testkit::raw::connack(0, false);
    bytes.extend(tern_testkit::raw::publish(
        "slow/topic",
        b"payload",
        0,
        0,
        false,
    ));
    let script = Script::new()
        .expect_connect()
        .dribble(bytes, Duration::from_millis(20))
        .read_until_closed();
    let broker = ScriptedBroker::start(script).await;
    let (client, mut events) = Client::new(ConnectOptions::new("slow"));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    let msg = common::next_message(&mut events).await;
    assert_eq!(msg.topic.as_str(), "slow/topic");
    assert_eq!(&msg.payload[..], b"payload");
    client
        .publish("x", "y", QoS::AtMostOnce, false)
        .await
        .unwrap();
}
