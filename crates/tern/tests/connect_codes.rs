//! Every seed reason code, from real and scripted brokers.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::within;
use tern::error::ConnectStage;
use tern::{Broker, Client, ConnectError, ConnectOptions, Event, Protocol};
use tern_proto::PacketType;
use tern_testkit::{MosquittoConfig, Script, ScriptedBroker, closed_port};

async fn connect_err(options: ConnectOptions, broker: Broker) -> ConnectError {
    let (client, _events) = Client::new(options);
    match within("the connect outcome", client.connect(broker)).await {
        Ok(_) => panic!("connect unexpectedly succeeded"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn closed_port_is_server_not_found_minus_5() {
    let e = connect_err(
        ConnectOptions::new("t"),
        Broker::tcp("127.0.0.1", closed_port()),
    )
    .await;
    assert_eq!(e.code(), -5, "{e}");
    assert!(e.to_string().contains("no broker listening"), "{e}");
}

#[tokio::test]
async fn unresolvable_host_is_dns_minus_3() {
    let e = connect_err(
        ConnectOptions::new("t"),
        Broker::tcp("nonexistent.invalid", 1883),
    )
    .await;
    assert_eq!(e.code(), -3, "{e}");
    assert!(matches!(e, ConnectError::Dns { .. }), "{e:?}");
}

#[tokio::test]
async fn silent_listener_is_connack_timeout_minus_2() {
    let broker = ScriptedBroker::start(Script::never_answer()).await;
    let opts = ConnectOptions::new("t").connect_timeout(Duration::from_millis(500));
    let e = connect_err(opts, Broker::tcp("127.0.0.1", broker.port())).await;
    assert_eq!(e.code(), -2, "{e}");
    assert!(
        matches!(
            e,
            ConnectError::Timeout {
                stage: ConnectStage::ConnAck,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn stalled_tls_handshake_is_send_timeout_minus_1() {
    // TCP is accepted but the TLS ClientHello is never answered: CONNECT cannot be sent.
    let broker = ScriptedBroker::start(Script::never_answer()).await;
    let opts = ConnectOptions::new("t").connect_timeout(Duration::from_millis(500));
    let e = connect_err(
        opts,
        Broker::new(tern::Scheme::Mqtts, "127.0.0.1", broker.port()),
    )
    .await;
    assert_eq!(e.code(), -1, "{e}");
}

#[tokio::test]
async fn non_connack_first_packet_is_minus_4() {
    let broker = ScriptedBroker::start(Script::non_connack_first()).await;
    let e = connect_err(
        ConnectOptions::new("t"),
        Broker::tcp("127.0.0.1", broker.port()),
    )
    .await;
    assert_eq!(e.code(), -4, "{e}");
    assert!(matches!(e, ConnectError::NotConnAck(_)), "{e:?}");
}

#[tokio::test]
async fn each_connack_refusal_code_is_passed_through() {
    for code in 1..=5u8 {
        let broker = ScriptedBroker::start(Script::connack(code)).await;
        let e = connect_err(
            ConnectOptions::new("t"),
            Broker::tcp("127.0.0.1", broker.port()),
        )
        .await;
        assert_eq!(e.code(), i32::from(code), "{e}");
        assert!(matches!(e, ConnectError::Refused(_)), "{e:?}");
    }
}

#[tokio::test]
async fn unknown_connack_code_is_a_protocol_error_not_a_success() {
    let broker = ScriptedBroker::start(Script::connack(6)).await;
    let e = connect_err(
        ConnectOptions::new("t"),
        Broker::tcp("127.0.0.1", broker.port()),
    )
    .await;
    assert!(matches!(e, ConnectError::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("return code 6"), "{e}");
}

#[tokio::test]
async fn wrong_password_is_refused_by_mosquitto() {
    let broker = MosquittoConfig::new()
        .allow_anonymous(false)
        .user("alice", "secret")
        .start();
    let opts = ConnectOptions::new("t").credentials("alice", Some("wrong"));
    let e = connect_err(opts, Broker::tcp("127.0.0.1", broker.port())).await;
    // mosquitto 2.0 answers a bad password with CONNACK 5 (not authorised); pass it through.
    assert!(matches!(e.code(), 4 | 5), "{e}");
    assert!(e.to_string().starts_with("connection refused"), "{e}");

    let ok = ConnectOptions::new("t2").credentials("alice", Some("secret"));
    let (client, _ev) = Client::new(ok);
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .expect("the right password is accepted");
}

#[tokio::test]
async fn anonymous_refused_when_broker_requires_login() {
    let broker = MosquittoConfig::new()
        .allow_anonymous(false)
        .user("alice", "secret")
        .start();
    let e = connect_err(
        ConnectOptions::new("t"),
        Broker::tcp("127.0.0.1", broker.port()),
    )
    .await;
    assert_eq!(e.code(), 5, "{e}");
}

#[tokio::test]
async fn failure_is_also_reported_as_an_event() {
    let (client, mut events) = Client::new(ConnectOptions::new("t"));
    client
        .start_connect(vec![Broker::tcp("127.0.0.1", closed_port())])
        .unwrap();
    let code = common::next_event(&mut events, "ConnectFailed", |ev| match ev {
        Event::ConnectFailed { error, will_retry } => Some((error.code(), will_retry)),
        _ => None,
    })
    .await;
    assert_eq!(code, (-5, false));
}

#[tokio::test]
async fn auto_protocol_falls_back_to_3_1_when_level_4_is_refused() {
    // Auto tries 5, 3.1.1, then 3.1: refuse levels 5 and 4 with CONNACK 1; then accept.
    let broker = ScriptedBroker::start_sequence(vec![
        Script::connack(1),
        Script::connack(1),
        Script::connack(0).read_until_closed(),
    ])
    .await;
    let (client, _events) = Client::new(ConnectOptions::new("t").protocol(Protocol::Auto));
    within(
        "CONNACK",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .expect("fallback to 3.1 connects");
    let third = broker.connection(2).await;
    let connect = third.connect_packet().expect("third CONNECT");
    // Protocol name "MQIsdp", level 3.
    assert_eq!(&connect.body()[..9], b"\x00\x06MQIsdp\x03");
    assert_eq!(connect.packet_type(), Some(PacketType::Connect));
}

#[tokio::test]
async fn v31_client_id_longer_than_23_is_refused_before_sending() {
    let opts = ConnectOptions::new("a-client-id-of-24-chars!").protocol(Protocol::V3_1);
    let broker = MosquittoConfig::new().start();
    let e = connect_err(opts, Broker::tcp("127.0.0.1", broker.port())).await;
    assert!(matches!(e, ConnectError::Options(_)), "{e:?}");
    assert!(e.to_string().contains("23"), "{e}");
}

#[tokio::test]
async fn empty_client_id_gets_a_random_one_with_clean_session_only() {
    let broker = MosquittoConfig::new().start();
    for protocol in [Protocol::V3_1_1, Protocol::V3_1] {
        let (client, _) = Client::new(ConnectOptions::new("").protocol(protocol));
        within(
            "CONNACK",
            client.connect(Broker::tcp("127.0.0.1", broker.port())),
        )
        .await
        .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
    }
    let e = connect_err(
        ConnectOptions::new("").clean_session(false),
        Broker::tcp("127.0.0.1", broker.port()),
    )
    .await;
    assert!(e.to_string().contains("MQTT-3.1.3-7"), "{e}");
}
