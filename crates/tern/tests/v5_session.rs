//! MQTT 5 sessions and limits against a real mosquitto: session expiry (clean session off
//! keeps the session; expiry 0 does not), message expiry while the subscriber is offline,
//! will delay (cancelled by a reconnection within it), the broker's Receive Maximum never
//! exceeded, its Maximum Packet Size refused locally.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{connected, next_event, next_message, unique, within};
use tern::{
    ApiMisuse, Broker, Client, ClientError, ConnectOptions, Event, Protocol, Publish, QoS, Will,
};
use tern_testkit::{FaultProxy, MosquittoConfig};

fn v5(id: &str) -> ConnectOptions {
    ConnectOptions::new(id).protocol(Protocol::V5)
}

async fn session_present(opts: ConnectOptions, port: u16) -> bool {
    let (client, _events) = Client::new(opts);
    let present = within("CONNACK", client.connect(Broker::tcp("127.0.0.1", port)))
        .await
        .unwrap();
    client.close().await.unwrap();
    present
}

#[tokio::test]
async fn clean_session_off_keeps_the_session_at_level_5_unless_its_expiry_is_0() {
    let broker = MosquittoConfig::new().start();
    let id = unique("kept");
    let keep = || v5(&id).clean_session(false);
    session_present(keep(), broker.port()).await;
    assert!(
        session_present(keep(), broker.port()).await,
        "clean session off alone keeps the session (expiry: never)"
    );
    let id = unique("gone");
    let gone = || v5(&id).clean_session(false).session_expiry(Duration::ZERO);
    session_present(gone(), broker.port()).await;
    assert!(
        !session_present(gone(), broker.port()).await,
        "expiry 0: the session ends with the connection"
    );
}

#[tokio::test]
async fn a_message_expires_while_the_subscriber_is_offline() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("expiry");
    let id = unique("offline-sub");
    let opts = || {
        v5(&id)
            .clean_session(false)
            .session_expiry(Duration::from_secs(300))
    };
    let (sub, _events) = connected(opts(), broker.port()).await;
    sub.subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    sub.close().await.unwrap();

    let (publisher, _p) = connected(v5(&unique("pub")), broker.port()).await;
    publisher
        .publish_with(
            Publish::new(&topic, "short")
                .qos(QoS::AtLeastOnce)
                .message_expiry(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    publisher
        .publish_with(
            Publish::new(&topic, "long")
                .qos(QoS::AtLeastOnce)
                .message_expiry(Duration::from_secs(300)),
        )
        .await
        .unwrap();
    // Time passing is the point here: the first message's expiry runs out.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let (sub, mut events) = connected(opts(), broker.port()).await;
    let m = next_message(&mut events).await;
    assert_eq!(
        &m.payload[..],
        b"long",
        "the expired message was not delivered"
    );
    let left = m.message_expiry().unwrap();
    assert!(left < 300, "the broker counts down what is left: {left}");
    sub.close().await.unwrap();
}

#[tokio::test]
async fn a_delayed_will_is_cancelled_by_a_reconnection_within_the_delay() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("will");
    let (watcher, mut events) = connected(v5(&unique("w")), broker.port()).await;
    watcher
        .subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();

    let id = unique("dying");
    let opts = || {
        v5(&id)
            .clean_session(false)
            .session_expiry(Duration::from_secs(60))
            .will(
                Will::new(topic.clone(), "gone", QoS::AtLeastOnce, false)
                    .delay(Duration::from_secs(2)),
            )
    };
    // Lost without DISCONNECT: the will waits 2 s ...
    let proxy = FaultProxy::start(broker.addr()).await;
    let (client, mut client_events) = Client::new(opts());
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", proxy.port())),
    )
    .await
    .unwrap();
    proxy.cut_now();
    next_event(&mut client_events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    // ... and the client is back within them.
    let (back, _b) = connected(opts(), broker.port()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    watcher
        .publish(&topic, "marker", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert_eq!(&m.payload[..], b"marker", "the will was cancelled");
    back.close().await.unwrap();

    // Without the reconnection the will is published, after its delay.
    let topic2 = unique("will2");
    watcher
        .subscribe([(topic2.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    let proxy = FaultProxy::start(broker.addr()).await;
    let opts = v5(&unique("dying2"))
        .will(
            Will::new(topic2.clone(), "gone", QoS::AtLeastOnce, false)
                .delay(Duration::from_secs(1)),
        )
        .session_expiry(Duration::from_secs(60));
    let (client, _e) = Client::new(opts);
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", proxy.port())),
    )
    .await
    .unwrap();
    let cut = std::time::Instant::now();
    proxy.cut_now();
    let m = next_message(&mut events).await;
    assert_eq!(&m.payload[..], b"gone");
    assert!(
        cut.elapsed() >= Duration::from_millis(900),
        "published only after the delay ({:?})",
        cut.elapsed()
    );
}

#[tokio::test]
async fn the_brokers_receive_maximum_is_never_exceeded() {
    // mosquitto advertises max_inflight_messages as its Receive Maximum and disconnects a
    // client exceeding it (0x93).
    let broker = MosquittoConfig::new().max_inflight_messages(2).start();
    let (client, mut events) = connected(v5(&unique("rm")), broker.port()).await;
    let caps = next_event(&mut events, "Connected", |e| match e {
        Event::Connected { capabilities, .. } => capabilities,
        _ => None,
    })
    .await;
    assert_eq!(caps.receive_maximum, 2);
    let mut pending = Vec::new();
    for i in 0..50 {
        pending.push(
            client
                .start_publish("rm/t", i.to_string(), QoS::ExactlyOnce, false)
                .await
                .unwrap(),
        );
    }
    for p in pending {
        within("PUBCOMP", p).await.unwrap();
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_publish_above_the_brokers_maximum_packet_size_fails_locally() {
    let broker = MosquittoConfig::new().max_packet_size(200).start();
    let (client, _events) = connected(v5(&unique("mps")), broker.port()).await;
    let e = client
        .publish_with(Publish::new("mps/t", vec![0u8; 300]).qos(QoS::AtLeastOnce))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Misuse(ApiMisuse::PacketTooLarge { max: 200, .. })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("Maximum Packet Size"), "{e}");
    // The connection is fine: a small one goes through.
    client
        .publish_with(Publish::new("mps/t", vec![0u8; 20]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
}

#[tokio::test]
async fn close_with_will_has_the_broker_publish_the_will() {
    let broker = MosquittoConfig::new().start();
    let topic = unique("will-close");
    let (watcher, mut events) = connected(v5(&unique("w")), broker.port()).await;
    watcher
        .subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    let opts =
        v5(&unique("leaving")).will(Will::new(topic.clone(), "bye", QoS::AtLeastOnce, false));
    let (client, _e) = connected(opts, broker.port()).await;
    client
        .close_with(tern::DisconnectReasonCode::DisconnectWithWillMessage, None)
        .await
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"bye");

    // Below 5 it is refused and the connection stays.
    let (old, _o) = connected(ConnectOptions::new(unique("old")), broker.port()).await;
    let e = old
        .close_with(tern::DisconnectReasonCode::DisconnectWithWillMessage, None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Misuse(ApiMisuse::NeedsV5(_))),
        "{e:?}"
    );
    old.publish("still/here", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
}

#[tokio::test]
async fn incoming_topic_aliases_are_resolved_before_the_application_sees_a_message() {
    use tern_testkit::{Script, ScriptedBroker};
    // mosquitto never sends aliases: CONNACK, PUBLISH a/b with alias 1 ("x"), PUBLISH by
    // alias 1 only ("y"), then alias 2, never set ("z"): a protocol error.
    let mut bytes = b"\x20\x03\x00\x00\x00".to_vec();
    bytes.extend_from_slice(b"\x30\x0a\x00\x03a/b\x03\x23\x00\x01x");
    bytes.extend_from_slice(b"\x30\x07\x00\x00\x03\x23\x00\x01y");
    bytes.extend_from_slice(b"\x30\x07\x00\x00\x03\x23\x00\x02z");
    let broker = ScriptedBroker::start(Script::reply_to_connect(bytes)).await;
    let (_client, mut events) = connected(v5("t").topic_alias_maximum(5), broker.port()).await;
    for payload in [b"x", b"y"] {
        let m = next_message(&mut events).await;
        assert_eq!(m.topic.as_str(), "a/b");
        assert_eq!(&m.payload[..], payload);
        assert!(
            m.properties
                .as_ref()
                .is_none_or(|p| p.topic_alias.is_none()),
            "the alias is not shown"
        );
    }
    let error = next_event(&mut events, "Disconnected", |e| match e {
        Event::Disconnected { error, .. } => Some(error),
        Event::Message(m) => panic!("a message with an unknown alias was delivered: {m:?}"),
        _ => None,
    })
    .await;
    assert!(
        matches!(error, tern::ConnectionError::Protocol(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_session_with_expiry_survives_a_broker_restart_with_persistence() {
    let mut broker = MosquittoConfig::new().persistence(true).start();
    let id = unique("persist");
    let topic = unique("persist-t");
    let opts = || {
        v5(&id)
            .clean_session(false)
            .session_expiry(Duration::from_secs(600))
    };
    let (client, _e) = connected(opts(), broker.port()).await;
    client
        .subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    client.close().await.unwrap();
    broker.restart();
    let (client, mut events) = Client::new(opts());
    let present = within(
        "CONNACK after the restart",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap();
    assert!(present, "the session was restored from the broker's store");
    // Its subscription too: no re-subscribe needed.
    let (publisher, _p) = connected(v5(&unique("pub")), broker.port()).await;
    publisher
        .publish(&topic, "after", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"after");
}

#[tokio::test]
async fn retain_handling_0_1_and_2() {
    use tern::{RetainHandling, Subscription};
    let broker = MosquittoConfig::new().start();
    let topic = unique("rh");
    let (client, mut events) = connected(v5(&unique("rh")), broker.port()).await;
    client
        .publish_with(
            Publish::new(&topic, "kept")
                .retain(true)
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    let sub = |h| [Subscription::new(&topic, QoS::AtLeastOnce).retain_handling(h)];
    let marker = |n: &str| {
        let client = client.clone();
        let topic = topic.clone();
        let n = n.to_owned();
        async move {
            client
                .publish(&topic, n, QoS::AtLeastOnce, false)
                .await
                .unwrap();
        }
    };
    // 1: sent, the subscription being new; 1 again (it exists): not sent.
    client
        .subscribe_with(sub(RetainHandling::SendIfNew), None)
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert!(m.retain && &m.payload[..] == b"kept", "{m:?}");
    client
        .subscribe_with(sub(RetainHandling::SendIfNew), None)
        .await
        .unwrap();
    marker("m1").await;
    assert_eq!(&next_message(&mut events).await.payload[..], b"m1");
    // 0: sent at every subscribe.
    client
        .subscribe_with(sub(RetainHandling::SendAtSubscribe), None)
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert!(m.retain && &m.payload[..] == b"kept", "{m:?}");
    // 2: never.
    client
        .subscribe_with(sub(RetainHandling::DoNotSend), None)
        .await
        .unwrap();
    marker("m2").await;
    assert_eq!(&next_message(&mut events).await.payload[..], b"m2");
    client
        .publish_with(Publish::new(&topic, "").retain(true))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_broker_exceeding_our_receive_maximum_is_a_protocol_error() {
    use tern_testkit::{Script, ScriptedBroker};
    // Receive Maximum 1, and the message not acknowledged (manual ack): the broker's second
    // QoS 1 PUBLISH exceeds it.
    let mut bytes = b"\x20\x03\x00\x00\x00".to_vec();
    bytes.extend_from_slice(b"\x32\x07\x00\x01a\x00\x01\x00x");
    bytes.extend_from_slice(b"\x32\x07\x00\x01a\x00\x02\x00y");
    let broker = ScriptedBroker::start(Script::reply_to_connect(bytes)).await;
    let opts = v5("t").receive_maximum(1).manual_ack(true);
    let (_client, mut events) = connected(opts, broker.port()).await;
    assert_eq!(&next_message(&mut events).await.payload[..], b"x");
    let error = next_event(&mut events, "Disconnected", |e| match e {
        Event::Disconnected { error, .. } => Some(error),
        Event::Message(m) => panic!("a message beyond Receive Maximum was delivered: {m:?}"),
        _ => None,
    })
    .await;
    assert!(
        matches!(error, tern::ConnectionError::Protocol(_)),
        "{error:?}"
    );
    // We told the broker why: DISCONNECT 0x93 Receive Maximum exceeded.
    let sent = broker.connection(0).await.wait_closed().await;
    let disconnect = sent
        .iter()
        .find(|p| p.packet_type() == Some(tern::PacketType::Disconnect))
        .expect("a DISCONNECT with the reason");
    assert_eq!(disconnect.body()[0], 0x93);
}
