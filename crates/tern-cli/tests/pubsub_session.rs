//! `-c` (persistent session), `-E` (exit after SUBACK), `-U` (unsubscribe), and WebSocket
//! `-L ws://`.

mod pubsub_support;

use pubsub_support::*;

fn with(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn tern_at(broker: &Mosquitto, extra: &[&str]) -> Output {
    let mut cmd = tern(&extra[..1]);
    cmd.args(with(broker, &extra[1..]));
    run(cmd)
}

#[test]
fn persistent_session_keeps_messages_until_unsubscribed() {
    let broker = MosquittoConfig::new().start();
    // Subscribe in a persistent session and leave at once.
    tern_at(
        &broker,
        &["sub", "-c", "-i", "keeper", "-t", "kept", "-q", "1", "-E"],
    )
    .assert_code(0);
    tern_at(
        &broker,
        &["pub", "-t", "kept", "-m", "while away", "-q", "1"],
    )
    .assert_code(0);
    // Back in the same session (no new subscription to kept): the queued message arrives.
    let out = tern_at(
        &broker,
        &["sub", "-c", "-i", "keeper", "-t", "other", "-C", "1", "-v"],
    );
    assert_eq!(out.assert_code(0).text(), "kept while away\n");
    // -U drops the old subscription; later messages are not kept.
    tern_at(&broker, &["sub", "-c", "-i", "keeper", "-U", "kept", "-E"]).assert_code(0);
    tern_at(&broker, &["pub", "-t", "kept", "-m", "dropped", "-q", "1"]).assert_code(0);
    let out = tern_at(
        &broker,
        &["sub", "-c", "-i", "keeper", "-t", "other", "-W", "1"],
    );
    out.assert_code(27);
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn websocket_url_round_trip() {
    let broker = MosquittoConfig::new().websockets().start();
    let url = format!("ws://127.0.0.1:{}/ws/topic", broker.ws_port());
    let sub = subscribed(&broker, "ws-sub", ["-L", &url, "-C", "1", "-v"]);
    run(tern(["pub", "-L", &url, "-m", "over websocket", "-q", "1"])).assert_code(0);
    assert_eq!(
        sub.wait().assert_code(0).text(),
        "ws/topic over websocket\n"
    );
}

#[test]
fn debug_traces_packets_on_stderr() {
    let broker = MosquittoConfig::new().start();
    let sub = subscribed(
        &broker,
        "dbg-sub",
        with(&broker, &["-d", "-t", "d", "-C", "1", "-q", "1"]),
    );
    let out = tern_at(
        &broker,
        &[
            "pub", "-d", "-i", "dbg-pub", "-t", "d", "-m", "traced", "-q", "1",
        ],
    );
    out.assert_code(0);
    let expected_pub = [
        "Client dbg-pub TCP connected to 127.0.0.1:",
        "Client dbg-pub sending CONNECT (id 'dbg-pub', MQTT 3.1.1, clean session 1, keepalive 60) [",
        "Client dbg-pub received CONNACK (session present 0, return code 0: connection accepted) [4 bytes]",
        "Client dbg-pub sending PUBLISH (d0, q1, r0, m1, 'd', ... (6 bytes)) [13 bytes]",
        "Client dbg-pub received PUBACK (m1) [4 bytes]",
        "Client dbg-pub sending DISCONNECT [2 bytes]",
    ];
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), expected_pub.len(), "{out}");
    for (line, want) in lines.iter().zip(expected_pub) {
        assert!(line.starts_with(want), "{want:?} expected:\n{out}");
    }
    let sub = sub.wait();
    sub.assert_code(0);
    for needle in [
        "Client dbg-sub sending SUBSCRIBE (m1, 'd' q1)",
        "Client dbg-sub received SUBACK (m1, granted q1)",
        "Client dbg-sub received PUBLISH (d0, q1, r0, m1, 'd', ... (6 bytes))",
        "Client dbg-sub sending PUBACK (m1)",
        "Client dbg-sub sending DISCONNECT",
    ] {
        assert!(sub.stderr.contains(needle), "missing {needle:?}: {sub}");
    }
    assert_eq!(sub.text(), "traced\n");
}

#[test]
fn sub_reconnects_and_resubscribes_after_a_broker_restart() {
    let mut broker = MosquittoConfig::new().start();
    let sub = subscribed(
        &broker,
        "phoenix-sub",
        with(&broker, &["-t", "ph", "-C", "1"]),
    );
    broker.restart();
    // mosquitto_sub's behaviour: back on the same port, subscribed again (the restarted
    // broker kept no session).
    broker.wait_for_log_count("Sending SUBACK to phoenix-sub", 2);
    tern_at(&broker, &["pub", "-t", "ph", "-m", "after"]).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "after\n");
}
