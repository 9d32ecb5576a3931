//! MQTT 5 connections against a real mosquitto (and the scripted broker for refusals
//! mosquitto never sends): the level in use, the CONNACK's capabilities, local refusals of
//! what the broker declared unsupported, the broker's DISCONNECT with its reason, and
//! `Protocol::Auto` falling back.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{connected, next_event, unique, within};
use tern::{
    ApiMisuse, Broker, Client, ClientError, ConnectError, ConnectOptions, ConnectionError,
    DisconnectReasonCode, Event, OptionsError, Protocol, Publish, QoS, ServerCapabilities,
};
use tern_testkit::{MosquittoConfig, Script, ScriptedBroker};

fn v5(id: &str) -> ConnectOptions {
    ConnectOptions::new(id).protocol(Protocol::V5)
}

/// The `protocol` and `capabilities` of the next `Connected`.
async fn connected_event(
    events: &mut tern::Events,
) -> (Protocol, Option<std::sync::Arc<ServerCapabilities>>) {
    next_event(events, "Connected", |e| match e {
        Event::Connected {
            protocol,
            capabilities,
            ..
        } => Some((protocol, capabilities)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_v5_connection_reports_its_level_and_the_brokers_capabilities() {
    let broker = MosquittoConfig::new()
        .line("retain_available false")
        .start();
    let (client, mut events) = connected(v5(&unique("caps")), broker.port()).await;
    let (protocol, caps) = connected_event(&mut events).await;
    assert_eq!(protocol, Protocol::V5);
    let caps = caps.expect("a level 5 CONNACK's capabilities");
    assert!(!caps.retain_available);

    // What the broker declared unsupported is refused locally, with a clear error.
    let e = client
        .publish_with(Publish::new("t", "x").retain(true))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Misuse(ApiMisuse::RetainNotSupported)),
        "{e:?}"
    );
    assert!(e.to_string().contains("Retain Available"), "{e}");
    // Without retain all is well.
    client
        .publish_with(Publish::new("t", "x").qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_publish_above_the_brokers_maximum_qos_is_refused_locally() {
    // mosquitto 2.0 applies `max_qos` per listener only; a scripted CONNACK declares
    // Maximum QoS 1 (property 0x24).
    let broker = ScriptedBroker::start(Script::reply_to_connect(
        b"\x20\x05\x00\x00\x02\x24\x01".to_vec(),
    ))
    .await;
    let (client, mut events) = connected(v5("t"), broker.port()).await;
    let caps = connected_event(&mut events).await.1.unwrap();
    assert_eq!(caps.maximum_qos, QoS::AtLeastOnce);
    let e = client
        .publish_with(Publish::new("t", "x").qos(QoS::ExactlyOnce))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Misuse(ApiMisuse::QoSNotSupported { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_3_1_1_connection_reports_no_capabilities() {
    let broker = MosquittoConfig::new().start();
    let (client, mut events) = connected(ConnectOptions::new(unique("old")), broker.port()).await;
    let (protocol, caps) = connected_event(&mut events).await;
    assert_eq!(protocol, Protocol::V3_1_1);
    assert!(caps.is_none());
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_speaks_5_with_a_broker_that_does() {
    let broker = MosquittoConfig::new().start();
    let opts = ConnectOptions::new(unique("auto")).protocol(Protocol::Auto);
    let (client, mut events) = connected(opts, broker.port()).await;
    assert_eq!(connected_event(&mut events).await.0, Protocol::V5);
    client.close().await.unwrap();
}

#[tokio::test]
async fn auto_falls_back_to_3_1_1_when_the_broker_refuses_level_5() {
    // A 3.1.1 broker answers a level 5 CONNECT with CONNACK 1 (unacceptable protocol
    // version) in the 3.1.1 form; a level 5 broker that will not speak 5 answers 0x84.
    for refusal in [&b"\x20\x02\x00\x01"[..], &b"\x20\x03\x00\x84\x00"[..]] {
        let broker = ScriptedBroker::start_sequence(vec![
            Script::reply_to_connect(refusal.to_vec()),
            Script::connack(0).read_until_closed(),
        ])
        .await;
        let opts = ConnectOptions::new("t").protocol(Protocol::Auto);
        let (client, mut events) = Client::new(opts);
        within(
            "CONNACK",
            client.connect(Broker::tcp("127.0.0.1", broker.port())),
        )
        .await
        .unwrap_or_else(|e| panic!("fallback after {refusal:x?} connects: {e}"));
        let first = broker.connection(0).await.connect_packet().unwrap();
        assert_eq!(
            &first.body()[..7],
            b"\x00\x04MQTT\x05",
            "first try is level 5"
        );
        let second = broker.connection(1).await.connect_packet().unwrap();
        assert_eq!(&second.body()[..7], b"\x00\x04MQTT\x04", "then 3.1.1");
        assert_eq!(connected_event(&mut events).await.0, Protocol::V3_1_1);
    }
}

#[tokio::test]
async fn a_refusing_v5_connack_is_an_error_with_its_reason_code_and_string() {
    // CONNACK 0x87 Not authorized, Reason String "go away".
    let broker = ScriptedBroker::start(Script::reply_to_connect(
        b"\x20\x0d\x00\x87\x0a\x1f\x00\x07go away".to_vec(),
    ))
    .await;
    let (client, _events) = Client::new(v5("t"));
    let e = within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .unwrap_err();
    match &e {
        ConnectError::RefusedV5(ack) => {
            assert_eq!(ack.reason.to_u8(), 0x87);
            assert_eq!(ack.properties.reason_string.as_deref(), Some("go away"));
        }
        other => panic!("expected RefusedV5, got {other:?}"),
    }
    assert_eq!(e.code(), 0x87);
    assert!(e.to_string().contains("go away"), "{e}");
}

#[tokio::test]
async fn the_brokers_disconnect_ends_the_connection_with_its_reason() {
    // mosquitto 2.0.11 closes a taken-over connection without DISCONNECT: scripted.
    // DISCONNECT 0x8E Session taken over, Reason String "taken".
    let broker = ScriptedBroker::start(Script::reply_to_connect(
        b"\x20\x03\x00\x00\x00\xe0\x0a\x8e\x08\x1f\x00\x05taken".to_vec(),
    ))
    .await;
    let (_client, mut events) = connected(v5("t"), broker.port()).await;
    let error = next_event(&mut events, "Disconnected", |e| match e {
        Event::Disconnected { error, .. } => Some(error),
        _ => None,
    })
    .await;
    match &error {
        ConnectionError::Server(d) => {
            assert_eq!(d.reason, DisconnectReasonCode::SessionTakenOver);
            assert_eq!(d.properties.reason_string.as_deref(), Some("taken"));
        }
        other => panic!("expected the broker's DISCONNECT, got {other:?}"),
    }
    assert!(error.to_string().contains("Session taken over"), "{error}");
    assert!(error.to_string().contains("taken"), "{error}");
}

#[test]
fn v5_settings_need_a_v5_protocol() {
    let opts = ConnectOptions::new("x").session_expiry(std::time::Duration::from_secs(60));
    assert!(matches!(opts.validate(), Err(OptionsError::NeedsV5(_))));
    assert!(opts.clone().protocol(Protocol::V5).validate().is_ok());
    assert!(opts.protocol(Protocol::Auto).validate().is_ok());
    let bad = v5("x").user_property("k", "nul\0");
    assert!(matches!(
        bad.validate(),
        Err(OptionsError::UserProperty { .. })
    ));
    assert!(matches!(
        v5("x").receive_maximum(0).validate(),
        Err(OptionsError::ReceiveMaximum)
    ));
}
