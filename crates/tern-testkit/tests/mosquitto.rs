//! The launcher starts a real mosquitto with each option and the reference tools agree.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tern_testkit::{Mosquitto, MosquittoConfig, raw};

/// Sends a hand-made 3.1.1 CONNECT and returns the 4 CONNACK bytes.
fn raw_connect(port: u16) -> [u8; 4] {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("raw CONNECT to mosquitto");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("raw CONNECT to mosquitto");
    s.write_all(&[
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
    ])
    .expect("raw CONNECT to mosquitto");
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).expect("CONNACK from mosquitto");
    ack
}

#[test]
fn mosquitto_accepts_a_raw_connect() {
    let broker = Mosquitto::start_default();
    assert_eq!(broker.host(), "127.0.0.1");
    assert_eq!(raw_connect(broker.port()), [0x20, 0x02, 0x00, 0x00]);
    assert!(broker.log().contains("running"), "{}", broker.log());
}

#[test]
fn kill_and_stop_end_the_broker_and_restart_uses_the_same_port() {
    let mut broker = Mosquitto::start_default();
    let port = broker.port();
    broker.kill();
    assert!(!broker.is_running());
    assert!(TcpStream::connect(broker.addr()).is_err());
    broker.restart();
    assert_eq!(broker.port(), port);
    assert_eq!(raw_connect(port), [0x20, 0x02, 0x00, 0x00]);
    broker.stop();
    assert!(broker.log().contains("terminating"), "{}", broker.log());
}

#[test]
fn retained_message_survives_a_restart_with_persistence() {
    let mut broker = MosquittoConfig::new().persistence(true).start();
    broker
        .mosquitto_pub()
        .topic("tern/persist")
        .message("kept")
        .qos(1)
        .arg("-r")
        .run()
        .assert_success();
    let port = broker.port();
    broker.restart();
    assert_eq!(broker.port(), port);
    assert!(broker.persistence_dir().join("mosquitto.db").exists());
    let out = broker
        .mosquitto_sub()
        .topic("tern/persist")
        .count(1)
        .arg("-W")
        .arg("5")
        .run();
    out.assert_success();
    assert_eq!(out.stdout, "kept\n");
}

#[test]
fn password_auth_accepts_the_right_password_only() {
    let broker = MosquittoConfig::new()
        .allow_anonymous(false)
        .user("alice", "secret")
        .start();
    broker
        .mosquitto_pub()
        .auth("alice", "secret")
        .topic("t")
        .message("m")
        .run()
        .assert_success();
    broker
        .mosquitto_pub()
        .auth("alice", "wrong")
        .topic("t")
        .message("m")
        .run()
        .assert_failure();
    broker
        .mosquitto_pub()
        .topic("t")
        .message("anonymous")
        .run()
        .assert_failure();
    // The raw CONNECT without credentials gets "not authorized".
    assert_eq!(raw_connect(broker.port()), [0x20, 0x02, 0x00, 0x05]);
}

#[test]
fn acl_limits_what_a_user_may_read() {
    let broker = MosquittoConfig::new()
        .allow_anonymous(false)
        .user("bob", "pw")
        .acl(["user bob", "topic readwrite allowed/#"])
        .start();
    let mut sub = broker
        .mosquitto_sub()
        .auth("bob", "pw")
        .topic("allowed/x")
        .topic("denied/x")
        .id("acl-sub")
        .arg("-v")
        .spawn();
    broker.wait_for_log("Sending SUBACK to acl-sub");
    for topic in ["denied/x", "allowed/x"] {
        broker
            .mosquitto_pub()
            .auth("bob", "pw")
            .topic(topic)
            .message("hello")
            .run()
            .assert_success();
    }
    let line = sub.wait_for_line(|l| l.contains(" hello"));
    assert_eq!(line, "allowed/x hello");
    let out = sub.kill();
    assert!(!out.stdout.contains("denied/x hello"), "{out}");
}

#[test]
fn tls_listener_verifies_with_the_generated_ca() {
    let broker = MosquittoConfig::new().tls().start();
    assert_ne!(broker.tls_port(), broker.port());
    broker
        .mosquitto_pub()
        .tls()
        .topic("t")
        .message("over tls")
        .run()
        .assert_success();
    // Trusting the wrong CA must fail the handshake.
    broker
        .mosquitto_pub()
        .cafile(&broker.tls().wrong_ca.cert_path)
        .topic("t")
        .message("m")
        .run()
        .assert_failure();
    // Plain MQTT still works on the plain port.
    assert_eq!(raw_connect(broker.port()), [0x20, 0x02, 0x00, 0x00]);
}

#[test]
fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let broker = MosquittoConfig::new().require_certificate(true).start();
    broker
        .mosquitto_pub()
        .tls()
        .topic("t")
        .message("with cert")
        .run()
        .assert_success();
    let tls = broker.tls();
    broker
        .mosquitto_pub()
        .client_cert(&tls.wrong_client.cert_path, &tls.wrong_client.key_path)
        .topic("t")
        .message("wrong cert")
        .run()
        .assert_failure();
    // No client certificate at all.
    let mut cmd = broker.mosquitto_pub().command();
    let out = cmd
        .args(["-p", &broker.tls_port().to_string()])
        .args(["--cafile"])
        .arg(&tls.ca.cert_path)
        .args(["-t", "t", "-m", "no cert"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "connected without a client certificate"
    );
}

#[test]
fn limits_and_raw_lines_reach_the_config() {
    let broker = MosquittoConfig::new()
        .max_inflight_messages(3)
        .max_queued_messages(7)
        .max_packet_size(64)
        .line("max_keepalive 30")
        .start();
    let conf = std::fs::read_to_string(broker.config_path()).unwrap();
    for l in [
        "max_inflight_messages 3",
        "max_queued_messages 7",
        "max_packet_size 64",
        "max_keepalive 30",
    ] {
        assert!(conf.contains(l), "{conf}");
    }
    // A PUBLISH over 64 bytes gets the client disconnected.
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&raw::connect("big", 60, true)).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
    s.write_all(&raw::publish("t", &[0u8; 100], 0, 0, false))
        .unwrap();
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "expected the broker to close the connection");
}
