//! MQTT 5 enhanced authentication with SCRAM-SHA-256, end to end: tern's [`Scram`] against
//! `tern_testkit`'s [`ScramBroker`], which runs the server side of the exchange (mosquitto
//! has no SCRAM). Each test runs the real exchange over TCP: CONNECT → AUTH 0x18 → AUTH 0x18
//! → CONNACK, and AUTH 0x19 → AUTH 0x18 → AUTH 0x18 → AUTH 0x00 for re-authentication.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{connected, next_event, next_message, unique, within};
use tern::auth::Scram;
use tern::{
    Broker, Client, ConnectError, ConnectOptions, ConnectReasonCode, ConnectionError, Event,
    Protocol, QoS,
};
use tern::{DisconnectReasonCode, ReconnectPolicy};
use tern_testkit::{AuthOutcome, ConnectionEnd, FaultProxy, ScramBroker, ScramBrokerConfig};

fn scram_options(user: &str, password: &str) -> ConnectOptions {
    ConnectOptions::new(unique("scram"))
        .protocol(Protocol::V5)
        .authenticator(Scram::new(user, password).unwrap())
}

/// Subscribes, publishes at QoS 1 and receives the broker's echo: the connection works.
async fn round_trip(client: &Client, events: &mut tern::Events, payload: &str) {
    let topic = unique("auth/echo");
    within(
        "SUBACK",
        client.subscribe([(topic.as_str(), QoS::AtLeastOnce)]),
    )
    .await
    .unwrap();
    within(
        "PUBACK",
        client.publish(topic.as_str(), payload.to_owned(), QoS::AtLeastOnce, false),
    )
    .await
    .unwrap();
    let msg = next_message(events).await;
    assert_eq!(msg.topic.as_str(), topic);
    assert_eq!(&msg.payload[..], payload.as_bytes());
}

async fn connect_err(broker: &ScramBroker, options: ConnectOptions) -> ConnectError {
    let (client, _events) = Client::new(options);
    within(
        "the connection attempt",
        client.connect(Broker::tcp("127.0.0.1", broker.port())),
    )
    .await
    .expect_err("the connection must fail")
}

#[tokio::test]
async fn scram_connect_succeeds_and_the_connection_works() {
    // The second user name needs escaping (`=` → `=3D`, `,` → `=2C`) on the wire.
    let broker = ScramBrokerConfig::new()
        .user("alice", "correct horse")
        .user("ops,team=1", "p,w=d")
        .start()
        .await;
    for (n, (user, password)) in [("alice", "correct horse"), ("ops,team=1", "p,w=d")]
        .into_iter()
        .enumerate()
    {
        let (client, mut events) = connected(scram_options(user, password), broker.port()).await;
        let records = broker.wait_records(n + 1).await;
        assert_eq!(
            records[n].outcome,
            AuthOutcome::Authenticated,
            "{records:?}"
        );
        assert_eq!(records[n].user.as_deref(), Some(user));
        round_trip(&client, &mut events, "after SCRAM").await;
        client.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_server_final_message_in_one_more_auth_round_is_verified() {
    for forge in [false, true] {
        let mut config = ScramBrokerConfig::new()
            .user("alice", "correct horse")
            .server_final_in_auth();
        if forge {
            config = config.forge_server_signature();
        }
        let broker = config.start().await;
        let (client, mut events) = Client::new(scram_options("alice", "correct horse"));
        let result = within(
            "the connection attempt",
            client.connect(Broker::tcp("127.0.0.1", broker.port())),
        )
        .await;
        if forge {
            let err = result.expect_err("a forged signature must fail the connection");
            assert!(err.to_string().contains("server signature"), "{err}");
        } else {
            result.unwrap();
            round_trip(&client, &mut events, "after the extra round").await;
        }
    }
}

#[tokio::test]
async fn a_wrong_password_reaches_the_caller_as_the_broker_s_refusal() {
    for code in [
        ConnectReasonCode::BadUserNameOrPassword,
        ConnectReasonCode::NotAuthorized,
    ] {
        let broker = ScramBrokerConfig::new()
            .user("alice", "correct horse")
            .refusal(code)
            .start()
            .await;
        let err = connect_err(&broker, scram_options("alice", "wrong horse")).await;
        // The seed-style connect error: its code is the broker's reason code, its text the
        // reason and the broker's Reason String.
        assert_eq!(err.code(), i32::from(code.to_u8()), "{err}");
        match &err {
            ConnectError::RefusedV5(ack) => {
                assert_eq!(ack.reason, code);
                let why = ack.properties.reason_string.as_deref().unwrap_or_default();
                assert!(why.contains("invalid proof"), "{why:?}");
            }
            other => panic!("expected the broker's CONNACK refusal, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(code.name()), "{text}");
        let records = broker.wait_records(1).await;
        assert!(
            matches!(&records[0].outcome, AuthOutcome::Refused(why) if why.contains("invalid proof")),
            "{records:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_user_and_a_missing_authenticator_are_refused_by_the_broker() {
    let broker = ScramBrokerConfig::new().user("alice", "pw").start().await;
    let err = connect_err(&broker, scram_options("mallory", "pw")).await;
    assert_eq!(err.code(), 0x86, "{err}");
    // MQTT 5 without enhanced authentication: the broker wants SCRAM, 0x8C.
    let plain = ConnectOptions::new(unique("plain")).protocol(Protocol::V5);
    let err = connect_err(&broker, plain).await;
    assert_eq!(err.code(), 0x8C, "{err}");
}

#[tokio::test]
async fn a_forged_server_signature_is_refused_by_the_client() {
    let broker = ScramBrokerConfig::new()
        .user("alice", "correct horse")
        .forge_server_signature()
        .start()
        .await;
    let err = connect_err(&broker, scram_options("alice", "correct horse")).await;
    // The broker accepted the client's proof; the client refuses the broker.
    assert_eq!(
        broker.wait_records(1).await[0].outcome,
        AuthOutcome::Authenticated
    );
    assert!(matches!(err, ConnectError::Auth(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("server signature"), "{text}");
    // ... and closes the connection with DISCONNECT 0x87 Not authorized.
    assert_eq!(
        broker.wait_end(0).await,
        ConnectionEnd::ClientDisconnect(DisconnectReasonCode::NotAuthorized)
    );
}

#[tokio::test]
async fn re_authentication_succeeds_and_traffic_continues() {
    let broker = ScramBrokerConfig::new()
        .user("alice", "correct horse")
        .start()
        .await;
    let (client, mut events) =
        connected(scram_options("alice", "correct horse"), broker.port()).await;
    for n in 1..=2 {
        within("reauthenticate", client.reauthenticate())
            .await
            .unwrap();
        let records = broker.wait_records(n + 1).await;
        assert_eq!(
            records[n].outcome,
            AuthOutcome::Reauthenticated,
            "{records:?}"
        );
        assert_eq!(records[n].connection, 0, "same connection");
        // The broker's AUTH 0x00 carried a valid signature: the client stays connected.
        round_trip(
            &client,
            &mut events,
            &format!("after re-authentication {n}"),
        )
        .await;
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_forged_signature_at_re_authentication_ends_the_connection() {
    let broker = ScramBrokerConfig::new()
        .user("alice", "correct horse")
        .forge_reauth_signature()
        .start()
        .await;
    let (client, mut events) =
        connected(scram_options("alice", "correct horse"), broker.port()).await;
    within("reauthenticate", client.reauthenticate())
        .await
        .unwrap();
    let error = next_event(
        &mut events,
        "Disconnected after the forged signature",
        |e| match e {
            Event::Disconnected { error, .. } => Some(error),
            _ => None,
        },
    )
    .await;
    assert!(matches!(error, ConnectionError::Auth(_)), "{error:?}");
    assert!(error.to_string().contains("server signature"), "{error}");
    // The client ended the connection itself, with DISCONNECT 0x87 [MQTT-4.12.1-2].
    assert_eq!(
        broker.wait_end(0).await,
        ConnectionEnd::ClientDisconnect(DisconnectReasonCode::NotAuthorized)
    );
}

#[tokio::test]
async fn every_reconnection_runs_a_fresh_exchange() {
    let broker = ScramBrokerConfig::new()
        .user("alice", "correct horse")
        .start()
        .await;
    let proxy = FaultProxy::start(broker.addr()).await;
    let options = scram_options("alice", "correct horse").reconnect(
        ReconnectPolicy::default()
            .initial_delay(std::time::Duration::from_millis(20))
            .max_delay(std::time::Duration::from_millis(200)),
    );
    let (client, mut events) = connected(options, proxy.port()).await;
    broker.wait_records(1).await;
    proxy.cut_now();
    next_event(&mut events, "Connected again after the cut", |e| match e {
        Event::Connected {
            reconnected: true, ..
        } => Some(()),
        _ => None,
    })
    .await;
    let records = broker.wait_records(2).await;
    assert_eq!(
        records[1].outcome,
        AuthOutcome::Authenticated,
        "{records:?}"
    );
    assert_eq!((records[0].connection, records[1].connection), (0, 1));
    // A new client nonce each time: a nonce never repeats.
    assert!(records[0].client_nonce.is_some());
    assert_ne!(records[0].client_nonce, records[1].client_nonce);
    round_trip(&client, &mut events, "after reconnecting").await;
    client.close().await.unwrap();
    assert_eq!(
        broker.wait_end(1).await,
        ConnectionEnd::ClientDisconnect(DisconnectReasonCode::NormalDisconnection)
    );
}
