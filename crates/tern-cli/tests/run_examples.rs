//! The examples under `examples/lua/` (other than the seed's, in `run_seed.rs`) against
//! mosquitto.

mod run_support;

use run_support::{command, example, run, run_command, server_runtime, spawn};
use tern_proto::PacketType;
use tern_testkit::{Mosquitto, MosquittoConfig, Script, ScriptedBroker, raw};

#[test]
fn subscribe_many_subscribes_in_one_packet_and_in_a_chain() {
    let broker = Mosquitto::start_default();
    let r = run(
        &example("subscribe_many.lua"),
        &["127.0.0.1", &broker.port().to_string()],
    );
    r.assert_ok();
    let lines = r.lines();
    assert_eq!(lines[0], "subscribed to the table", "{r}");
    let mut chained = lines[1..3].to_vec();
    chained.sort_unstable();
    assert_eq!(
        chained,
        ["subscribed to /many/c", "subscribed to /many/d"],
        "{r}"
    );
    assert_eq!(lines[3], "all subscribed", "{r}");
    let mut messages = lines[4..8].to_vec();
    messages.sort_unstable();
    assert_eq!(
        messages,
        [
            "message /many/a hi",
            "message /many/b hi",
            "message /many/c hi",
            "message /many/d hi"
        ],
        "{r}"
    );
    let mut unsubscribed = lines[8..10].to_vec();
    unsubscribed.sort_unstable();
    assert_eq!(
        unsubscribed,
        ["unsubscribed from /many/c", "unsubscribed from /many/d"],
        "{r}"
    );
    assert_eq!(&lines[10..], ["unsubscribed from the table"], "{r}");
}

#[test]
fn pingpong_makes_its_round_trips_at_each_qos() {
    // mosquitto's default: Nagle's algorithm on (see `tern`'s quick ACKs).
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    for qos in ["0", "1", "2"] {
        let r = run(&example("pingpong.lua"), &["127.0.0.1", &port, "200", qos]);
        r.assert_ok();
        let lines = r.lines();
        let prefix = format!("200 round trips at QoS {qos} in ");
        assert!(
            lines.len() == 1 && lines[0].starts_with(&prefix),
            "expected one line starting {prefix:?}\n{r}"
        );
    }
}

#[test]
fn reconnect_retries_from_a_timer_after_a_refusal() {
    let rt = server_runtime();
    let acks_one_publish = Script::new()
        .expect_connect()
        .send_connack(0, false)
        .expect(PacketType::Publish)
        .respond(|publish| raw::puback(publish.packet_id().unwrap_or(0)))
        .read_until_closed()
        .answer_pings(true);
    let broker = rt.block_on(ScriptedBroker::start_sequence(vec![
        Script::connack(3),
        acks_one_publish,
    ]));
    let mut cmd = command(
        &example("reconnect.lua"),
        &["127.0.0.1", &broker.port().to_string()],
    );
    cmd.env("RETRY_MS", "50").env("CONNECTIONS", "1");
    let r = run_command(cmd);
    r.assert_ok()
        .assert_lines(&["failed reason: 3", "connected 1", "sent 1", "offline"]);
}

#[test]
fn reconnect_survives_a_broker_restart() {
    let mut broker = MosquittoConfig::new().start();
    let mut cmd = command(
        &example("reconnect.lua"),
        &["127.0.0.1", &broker.port().to_string()],
    );
    cmd.env("RETRY_MS", "100").env("CONNECTIONS", "2");
    let mut tern = spawn(cmd);
    tern.wait_for_line("sent 1");
    broker.stop();
    tern.wait_for_line("offline");
    tern.wait_for_line("failed reason: -5");
    broker.restart();
    tern.wait_for_line("connected 2");
    let r = tern.finish();
    r.assert_ok();
    assert_eq!(r.lines().last(), Some(&"offline"), "{r}");
}

#[test]
fn tls_example_verifies_the_broker_with_the_ca_file() {
    let broker = MosquittoConfig::new().tls().start();
    let ca = broker.tls().ca.cert_path.to_string_lossy().into_owned();
    for host in ["localhost", "127.0.0.1"] {
        let r = run(
            &example("tls.lua"),
            &[host, &broker.tls_port().to_string(), &ca],
        );
        r.assert_ok()
            .assert_lines(&["connected over TLS", "/tls: hello, privately", "offline"]);
    }
}

#[test]
fn tls_example_refuses_a_broker_signed_by_another_ca() {
    let broker = MosquittoConfig::new().tls().start();
    let wrong = broker
        .tls()
        .wrong_ca
        .cert_path
        .to_string_lossy()
        .into_owned();
    let r = run(
        &example("tls.lua"),
        &["localhost", &broker.tls_port().to_string(), &wrong],
    );
    r.assert_ok();
    let lines = r.lines();
    assert_eq!(lines.first(), Some(&"failed reason: -6"), "{r}");
    assert!(lines.len() == 2 && lines[1].contains("TLS"), "{r}");
}

#[test]
fn tls_example_presents_a_client_certificate_when_given_one() {
    let broker = MosquittoConfig::new().require_certificate(true).start();
    let tls = broker.tls();
    let mut cmd = command(&example("tls.lua"), &[]);
    cmd.env("MQTT_HOST", "localhost")
        .env("MQTT_PORT", broker.tls_port().to_string())
        .env("MQTT_CA", &tls.ca.cert_path)
        .env("MQTT_CERT", &tls.client.cert_path)
        .env("MQTT_KEY", &tls.client.key_path);
    run_command(cmd).assert_ok().assert_lines(&[
        "connected over TLS",
        "/tls: hello, privately",
        "offline",
    ]);
}
