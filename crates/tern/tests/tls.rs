//! TLS: server authentication with a PEM CA, mutual TLS, and clear errors.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{next_message, unique, within};
use tern::{Broker, Client, ConnectError, ConnectOptions, QoS, Scheme, TlsOptions};
use tern_testkit::MosquittoConfig;

#[tokio::test]
async fn ca_cert_verifies_the_broker_and_messages_flow() {
    let broker = MosquittoConfig::new().tls().start();
    let tls = TlsOptions::ca_pem(broker.tls().ca.cert_pem.clone());
    let (client, mut events) = Client::new(ConnectOptions::new(unique("tls")).tls(tls));
    let addr = Broker::new(Scheme::Mqtts, "127.0.0.1", broker.tls_port());
    within("CONNACK over TLS", client.connect(addr))
        .await
        .unwrap();
    let topic = unique("tls");
    client
        .subscribe([(topic.as_str(), QoS::AtLeastOnce)])
        .await
        .unwrap();
    client
        .publish(&topic, "secret", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"secret");
}

#[tokio::test]
async fn host_name_is_verified_too() {
    let broker = MosquittoConfig::new().tls().start();
    let tls = TlsOptions::ca_pem(broker.tls().ca.cert_pem.clone());
    let (client, _) = Client::new(ConnectOptions::new(unique("tls")).tls(tls));
    let addr = Broker::new(Scheme::Mqtts, "localhost", broker.tls_port());
    within("CONNACK over TLS", client.connect(addr))
        .await
        .unwrap();
}

#[tokio::test]
async fn mutual_tls_with_client_cert_and_key() {
    let broker = MosquittoConfig::new()
        .tls()
        .require_certificate(true)
        .start();
    let m = broker.tls();
    let tls = TlsOptions::ca_pem(m.ca.cert_pem.clone())
        .client_auth(m.client.cert_pem.clone(), m.client.key_pem.clone());
    let (client, _) = Client::new(ConnectOptions::new(unique("mtls")).tls(tls));
    within(
        "CONNACK over mutual TLS",
        client.connect(Broker::new(Scheme::Mqtts, "127.0.0.1", broker.tls_port())),
    )
    .await
    .unwrap();

    // Without a client certificate the broker refuses the handshake.
    let tls = TlsOptions::ca_pem(m.ca.cert_pem.clone());
    let (client, _) = Client::new(ConnectOptions::new(unique("mtls")).tls(tls));
    let e = within(
        "refusal",
        client.connect(Broker::new(Scheme::Mqtts, "127.0.0.1", broker.tls_port())),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tern::error::CODE_OTHER, "{e}");
}

#[tokio::test]
async fn wrong_ca_gives_a_certificate_error_naming_the_problem() {
    let broker = MosquittoConfig::new().tls().start();
    let tls = TlsOptions::ca_pem(broker.tls().wrong_ca.cert_pem.clone());
    let (client, _) = Client::new(ConnectOptions::new(unique("tls")).tls(tls));
    let e = within(
        "refusal",
        client.connect(Broker::new(Scheme::Mqtts, "127.0.0.1", broker.tls_port())),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ConnectError::Tls { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("UnknownIssuer") || text.contains("unknown issuer"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1"), "{text}");
}

#[tokio::test]
async fn client_cert_without_key_is_a_configuration_error() {
    let broker = MosquittoConfig::new().tls().start();
    let mut tls = TlsOptions::ca_pem(broker.tls().ca.cert_pem.clone());
    tls.client_cert = Some(broker.tls().client.cert_pem.clone());
    let (client, _) = Client::new(ConnectOptions::new(unique("tls")).tls(tls));
    let e = within(
        "refusal",
        client.connect(Broker::new(Scheme::Mqtts, "127.0.0.1", broker.tls_port())),
    )
    .await
    .unwrap_err();
    // Found by the options' check, before any connection (`ConnectOptions::validate`).
    assert!(
        matches!(e, ConnectError::Options(tern::OptionsError::Tls(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("client_key"), "{e}");
}

#[tokio::test]
async fn danger_insecure_accepts_an_unverifiable_certificate() {
    let broker = MosquittoConfig::new().tls().start();
    let mut tls = TlsOptions::ca_pem(broker.tls().wrong_ca.cert_pem.clone());
    tls.danger_insecure = true;
    let (client, _) = Client::new(ConnectOptions::new(unique("insecure")).tls(tls));
    within(
        "CONNACK",
        client.connect(Broker::new(Scheme::Mqtts, "127.0.0.1", broker.tls_port())),
    )
    .await
    .expect("insecure mode skips verification");
}

#[tokio::test]
async fn skipping_the_host_name_check_still_verifies_the_chain() {
    let broker = MosquittoConfig::new().tls().start();
    let addr = || Broker::new(Scheme::Mqtts, "127.0.0.1", broker.tls_port());
    let mut tls = TlsOptions::ca_pem(broker.tls().ca.cert_pem.clone());
    tls.server_name = Some("not-the-broker.example".into());
    let (client, _) = Client::new(ConnectOptions::new(unique("name")).tls(tls.clone()));
    let e = within("refusal", client.connect(addr())).await.unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");

    tls.danger_skip_hostname_check = true;
    let (client, _) = Client::new(ConnectOptions::new(unique("name")).tls(tls));
    within("CONNACK", client.connect(addr()))
        .await
        .expect("name check skipped");

    let mut wrong = TlsOptions::ca_pem(broker.tls().wrong_ca.cert_pem.clone());
    wrong.danger_skip_hostname_check = true;
    let (client, _) = Client::new(ConnectOptions::new(unique("name")).tls(wrong));
    let e = within("refusal", client.connect(addr())).await.unwrap_err();
    assert!(e.to_string().contains("unknown issuer"), "{e}");
}
