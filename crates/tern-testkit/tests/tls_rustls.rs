//! The generated certificates satisfy rustls/webpki (the stack tern uses), against mosquitto's
//! TLS and WebSocket-TLS listeners, including mutual TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tern_testkit::{CertKey, MosquittoConfig, raw};

fn config(ca: &CertKey, client: Option<&CertKey>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der.clone()))
        .expect("rustls client config");
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("rustls client config")
            .with_root_certificates(roots);
    let config = match client {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(c.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_der.clone())),
            )
            .expect("rustls client config"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

fn connect(
    port: u16,
    name: &str,
    config: Arc<ClientConfig>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("TLS connection setup");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("TLS connection setup");
    let name = ServerName::try_from(name.to_owned()).expect("TLS connection setup");
    let conn = ClientConnection::new(config, name).expect("TLS connection setup");
    StreamOwned::new(conn, tcp)
}

/// MQTT CONNECT over TLS; returns the CONNACK or the IO error (handshake failures surface
/// on first use).
fn mqtt_over_tls(s: &mut StreamOwned<ClientConnection, TcpStream>) -> std::io::Result<[u8; 4]> {
    s.write_all(&raw::connect("tls", 60, true))?;
    s.flush()?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack)?;
    Ok(ack)
}

#[test]
fn rustls_accepts_the_server_certificate_by_ip_and_by_name() {
    let broker = MosquittoConfig::new().tls().start();
    let tls = broker.tls();
    for name in ["127.0.0.1", "localhost"] {
        let mut s = connect(broker.tls_port(), name, config(&tls.ca, None));
        assert_eq!(
            mqtt_over_tls(&mut s).unwrap(),
            [0x20, 0x02, 0, 0],
            "as {name}"
        );
    }
}

#[test]
fn rustls_rejects_the_server_when_trusting_the_wrong_ca() {
    let broker = MosquittoConfig::new().tls().start();
    let mut s = connect(
        broker.tls_port(),
        "127.0.0.1",
        config(&broker.tls().wrong_ca, None),
    );
    let err = mqtt_over_tls(&mut s).unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[test]
fn mutual_tls_accepts_the_test_client_certificate_with_rustls() {
    let broker = MosquittoConfig::new().require_certificate(true).start();
    let tls = broker.tls();
    let mut s = connect(
        broker.tls_port(),
        "localhost",
        config(&tls.ca, Some(&tls.client)),
    );
    assert_eq!(mqtt_over_tls(&mut s).unwrap(), [0x20, 0x02, 0, 0]);

    let mut s = connect(
        broker.tls_port(),
        "localhost",
        config(&tls.ca, Some(&tls.wrong_client)),
    );
    assert!(
        mqtt_over_tls(&mut s).is_err(),
        "wrong client certificate accepted"
    );
}

/// An HTTP upgrade with subprotocol `mqtt`, then a masked binary frame holding CONNECT;
/// returns the server's first frame.
fn websocket_connect(s: &mut (impl Read + Write)) -> Vec<u8> {
    s.write_all(
        b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
    )
    .expect("WebSocket exchange");
    s.flush().expect("WebSocket exchange");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("WebSocket exchange");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqtt"),
        "{head}"
    );
    let payload = raw::connect("ws", 60, true);
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x82, 0x80 | payload.len() as u8];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).expect("WebSocket exchange");
    s.flush().expect("WebSocket exchange");
    let mut reply = [0u8; 6];
    s.read_exact(&mut reply).expect("WebSocket exchange");
    reply.to_vec()
}

#[test]
fn websocket_listeners_speak_mqtt_plain_and_over_tls() {
    let broker = MosquittoConfig::new().websockets().websockets_tls().start();
    assert_eq!(
        broker.ws_url(),
        format!("ws://127.0.0.1:{}", broker.ws_port())
    );
    assert_eq!(
        broker.wss_url(),
        format!("wss://127.0.0.1:{}", broker.wss_port())
    );
    let mut tcp = TcpStream::connect(("127.0.0.1", broker.ws_port())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(websocket_connect(&mut tcp), [0x82, 4, 0x20, 2, 0, 0]);

    let mut tls = connect(
        broker.wss_port(),
        "localhost",
        config(&broker.tls().ca, None),
    );
    assert_eq!(websocket_connect(&mut tls), [0x82, 4, 0x20, 2, 0, 0]);
}
