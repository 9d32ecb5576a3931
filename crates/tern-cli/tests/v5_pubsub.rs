//! `tern pub` / `tern sub` at MQTT 5 against a real mosquitto 2: `-D` properties arrive and
//! print with `-F`, a queued message expires while its subscriber is offline, the broker's
//! refusals (publish 0x87 by ACL, CONNACK) print their reason codes with the usual exit
//! codes, and a SUBACK refusal (which mosquitto's acl_file never sends) from a scripted
//! broker prints its reason and Reason String.

mod pubsub_support;

use std::time::Duration;

use pubsub_support::*;
use tern_testkit::{Script, ScriptedBroker};

fn with(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[test]
fn properties_given_with_d_arrive_and_print_with_f() {
    let broker = MosquittoConfig::new().start();
    let sub = subscribed(
        &broker,
        "props",
        with(
            &broker,
            &[
                "-V",
                "5",
                "-t",
                "p/#",
                "-q",
                "1",
                "-C",
                "1",
                "-W",
                "15",
                "-F",
                "%t|%P|%C|%F|%R|%D|%p",
            ],
        ),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(with(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "p/1",
            "-q",
            "1",
            "-m",
            "21.5",
            "-D",
            "publish",
            "user-property",
            "unit",
            "celsius",
            "-D",
            "publish",
            "user-property",
            "unit",
            "kelvin",
            "-D",
            "publish",
            "user-property",
            "a",
            "b",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
            "-D",
            "publish",
            "response-topic",
            "p/reply",
            "-D",
            "publish",
            "correlation-data",
            "req-7",
        ],
    ));
    run(cmd).assert_code(0);
    let out = sub.wait();
    out.assert_code(0);
    assert_eq!(
        out.text(),
        "p/1|unit:celsius unit:kelvin a:b|text/plain|1|p/reply|req-7|21.5\n",
        "user properties keep their order and repeats: {out}"
    );
}

#[test]
fn a_queued_message_expires_while_the_subscriber_is_offline() {
    let broker = MosquittoConfig::new().start();
    let session = [
        "-V", "5", "-i", "expiring", "-c", "-x", "300", "-t", "e", "-q", "1",
    ];
    let mut first = tern(["sub"]);
    first.args(with(&broker, &session)).arg("-E");
    run(first).assert_code(0);
    let mut short = tern(["pub"]);
    short.args(with(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "e",
            "-q",
            "1",
            "-m",
            "stale",
            "-D",
            "publish",
            "message-expiry-interval",
            "1",
        ],
    ));
    run(short).assert_code(0);
    let mut long = tern(["pub"]);
    long.args(with(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "e",
            "-q",
            "1",
            "-m",
            "fresh",
            "-D",
            "publish",
            "message-expiry-interval",
            "600",
        ],
    ));
    run(long).assert_code(0);
    // The behaviour under test is the passing of time: the first message's second.
    std::thread::sleep(Duration::from_millis(2200));
    let mut back = tern(["sub"]);
    back.args(with(&broker, &session))
        .args(["-C", "1", "-W", "15", "-F", "%p %E"]);
    let out = run(back);
    out.assert_code(0);
    let text = out.text();
    let (payload, left) = text.trim_end().split_once(' ').expect("payload and expiry");
    assert_eq!(
        payload, "fresh",
        "the expired message must not be delivered: {out}"
    );
    let left: u32 = left.parse().expect("%E is a number");
    assert!(
        (590..=600).contains(&left),
        "the expiry counts down from 600: {out}"
    );
}

#[test]
fn a_publish_the_acl_refuses_prints_0x87_and_exits_1() {
    let broker = MosquittoConfig::new().acl(["topic read open/#"]).start();
    let mut cmd = tern(["pub"]);
    cmd.args(with(
        &broker,
        &["-V", "5", "-t", "closed", "-q", "1", "-m", "x"],
    ));
    let out = run(cmd);
    out.assert_code(1);
    assert!(out.stderr.contains("Not authorized (0x87)"), "{out}");
}

#[test]
fn a_refused_connection_prints_the_v5_reason_and_exits_5() {
    let broker = MosquittoConfig::new().allow_anonymous(false).start();
    let mut cmd = tern(["sub"]);
    cmd.args(with(&broker, &["-V", "5", "-t", "x", "-W", "15"]));
    let out = run(cmd);
    out.assert_code(5);
    assert!(
        out.stderr
            .contains("Connection error: connection refused: "),
        "{out}"
    );
    assert!(
        out.stderr.contains("(0x8"),
        "the v5 reason code is shown: {out}"
    );
}

/// CONNACK success at level 5, then a SUBACK refusing every filter with 0x87 and a Reason
/// String.
fn v5_suback_refusal() -> Script {
    Script::new()
        .expect_connect()
        .send(&[0x20, 0x03, 0x00, 0x00, 0x00][..])
        .expect(tern_proto::PacketType::Subscribe)
        .respond(|sub| {
            let id = sub.packet_id().unwrap_or(1);
            let reason = b"no access";
            let mut props = vec![0x1F, 0x00, reason.len() as u8];
            props.extend_from_slice(reason);
            let mut body = id.to_be_bytes().to_vec();
            body.push(props.len() as u8);
            body.extend_from_slice(&props);
            body.push(0x87);
            let mut packet = vec![0x90, body.len() as u8];
            packet.extend_from_slice(&body);
            packet
        })
        .read_until_closed()
        .answer_pings(true)
}

#[tokio::test]
async fn a_refused_subscription_prints_the_reason_and_reason_string() {
    let broker = ScriptedBroker::start(v5_suback_refusal()).await;
    let port = broker.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = tern(["sub", "-V", "5", "-h", "127.0.0.1", "-p", &port]);
        cmd.args(["-t", "secret", "-W", "10"]);
        run(cmd)
    })
    .await
    .expect("runner thread");
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "All subscription requests were denied: Not authorized (0x87): \"no access\""
        ),
        "{out}"
    );
}

#[test]
fn lines_stream_at_v5_in_order_each_with_the_properties() {
    let broker = MosquittoConfig::new().start();
    let n = 2000;
    let sub = subscribed(
        &broker,
        "v5lines",
        with(
            &broker,
            &[
                "-V",
                "5",
                "-t",
                "l5",
                "-q",
                "1",
                "-C",
                &n.to_string(),
                "-W",
                "30",
                "-F",
                "%C %p",
            ],
        ),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(with(
        &broker,
        &[
            "-V",
            "5",
            "-t",
            "l5",
            "-q",
            "1",
            "-l",
            "-D",
            "publish",
            "content-type",
            "n",
        ],
    ));
    let input: String = (0..n).map(|i| format!("{i}\n")).collect();
    run_with_input(cmd, input).assert_code(0);
    let out = sub.wait();
    out.assert_code(0);
    let expected: String = (0..n).map(|i| format!("n {i}\n")).collect();
    assert!(
        out.text() == expected,
        "lines out of order or without their content type: {out}"
    );
}

#[test]
fn disconnect_session_expiry_zero_ends_a_kept_session() {
    let broker = MosquittoConfig::new().start();
    let session = ["-V", "5", "-i", "farewell", "-c", "-t", "f", "-q", "1"];
    // Control: with -c alone (a session kept for ever at v5) a message waits offline.
    let mut kept = tern(["sub"]);
    kept.args(with(&broker, &session)).arg("-E");
    run(kept).assert_code(0);
    let mut publish = tern(["pub"]);
    publish.args(with(
        &broker,
        &["-V", "5", "-t", "f", "-q", "1", "-m", "waited"],
    ));
    run(publish).assert_code(0);
    let mut back = tern(["sub"]);
    back.args(with(&broker, &session)).args([
        "-C",
        "1",
        "-W",
        "15",
        "-D",
        "disconnect",
        "session-expiry-interval",
        "0",
    ]);
    let out = run(back);
    out.assert_code(0);
    assert_eq!(out.text(), "waited\n", "{out}");
    // That last DISCONNECT set the expiry to 0: the session is gone, nothing is queued.
    let mut publish = tern(["pub"]);
    publish.args(with(
        &broker,
        &["-V", "5", "-t", "f", "-q", "1", "-m", "lost"],
    ));
    run(publish).assert_code(0);
    let mut again = tern(["sub"]);
    again.args(with(&broker, &session)).args(["-W", "1"]);
    let out = run(again);
    out.assert_code(27);
    assert!(
        out.stdout.is_empty(),
        "the session should have ended: {out}"
    );
}

#[test]
fn will_properties_given_with_d_arrive_with_the_will() {
    let broker = MosquittoConfig::new().start();
    let watcher = subscribed(
        &broker,
        "will-watcher",
        with(
            &broker,
            &[
                "-V", "5", "-t", "wills/#", "-C", "1", "-W", "15", "-F", "%C|%P|%p",
            ],
        ),
    );
    let victim = subscribed(
        &broker,
        "will-victim",
        with(
            &broker,
            &[
                "-V",
                "5",
                "-t",
                "x",
                "--will-topic",
                "wills/victim",
                "--will-payload",
                "gone",
                "-D",
                "will",
                "content-type",
                "text/x",
                "-D",
                "will",
                "user-property",
                "k",
                "v",
            ],
        ),
    );
    victim.kill();
    let out = watcher.wait();
    out.assert_code(0);
    assert_eq!(out.text(), "text/x|k:v|gone\n", "{out}");
}

#[test]
fn sub_at_v5_resubscribes_after_a_broker_restart_with_its_options() {
    let mut broker = MosquittoConfig::new().start();
    let sub = subscribed(
        &broker,
        "v5-phoenix",
        with(
            &broker,
            &[
                "-V",
                "5",
                "-t",
                "ph5",
                "-C",
                "1",
                "-W",
                "30",
                "-D",
                "subscribe",
                "subscription-identifier",
                "9",
                "-F",
                "%S %p",
            ],
        ),
    );
    broker.restart();
    broker.wait_for_log_count("Sending SUBACK to v5-phoenix", 2);
    let mut cmd = tern(["pub"]);
    cmd.args(with(&broker, &["-V", "5", "-t", "ph5", "-m", "after"]));
    run(cmd).assert_code(0);
    let out = sub.wait();
    out.assert_code(0);
    assert_eq!(
        out.text(),
        "9 after\n",
        "resubscribed with its subscription identifier: {out}"
    );
}
