//! Unix domain sockets, SOCKS5 proxies and broker-URI credentials through the library API,
//! against real mosquitto brokers.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::within;
use tern::broker::Proxy;
use tern::{Broker, Client, ConnectError, ConnectOptions, Event, QoS};
use tern_testkit::{MosquittoConfig, SocksProxy, SocksRequest};

/// Subscribes, publishes one message to itself and returns it.
async fn round_trip(options: ConnectOptions, broker: Broker, topic: &str) -> Vec<u8> {
    let (client, mut events) = Client::new(options);
    within("CONNACK", client.connect(broker)).await.unwrap();
    within("SUBACK", client.subscribe([(topic, QoS::AtLeastOnce)]))
        .await
        .unwrap();
    within(
        "PUBACK",
        client.publish(topic, "ping", QoS::AtLeastOnce, false),
    )
    .await
    .unwrap();
    let payload = within("the message", async {
        loop {
            if let Some(Event::Message(m)) = events.recv().await {
                break m.payload.to_vec();
            }
        }
    })
    .await;
    within("close", client.close()).await.unwrap();
    payload
}

#[tokio::test]
async fn unix_uri_connects_to_mosquittos_socket_listener() {
    let broker = MosquittoConfig::new().unix_socket().start();
    let uri = format!("unix://{}", broker.unix_path().display());
    let addr = Broker::parse(&uri).unwrap();
    let got = round_trip(ConnectOptions::new("lib-unix"), addr, "unix/t").await;
    assert_eq!(got, b"ping");
}

#[tokio::test]
async fn socks5h_proxy_carries_tls_free_mqtt_and_resolves_the_name() {
    let broker = MosquittoConfig::new().start();
    let proxy = SocksProxy::with_credentials("u", "p");
    let options = ConnectOptions::new("lib-socks")
        .proxy(Proxy::parse(&proxy.url("socks5h", Some(("u", "p")))).unwrap());
    let got = round_trip(options, Broker::tcp("localhost", broker.port()), "socks/t").await;
    assert_eq!(got, b"ping");
    assert_eq!(
        proxy.requests(),
        [SocksRequest::Name("localhost".into(), broker.port())]
    );
}

#[tokio::test]
async fn uri_credentials_log_in_and_explicit_options_win() {
    let broker = MosquittoConfig::new()
        .user("alice", "s3cret")
        .allow_anonymous(false)
        .start();
    let uri = format!("mqtt://alice:s3cret@127.0.0.1:{}", broker.port());
    let addr = Broker::parse(&uri).unwrap();
    let got = round_trip(ConnectOptions::new("lib-uri"), addr.clone(), "cred/t").await;
    assert_eq!(got, b"ping");
    // Explicit credentials in the options win over the URI's.
    let (client, _events) =
        Client::new(ConnectOptions::new("lib-opt").credentials("alice", Some("wrong")));
    let e = within("refusal", client.connect(addr)).await.unwrap_err();
    assert!(matches!(e, ConnectError::Refused(_)), "{e}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
}
