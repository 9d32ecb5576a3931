//! `tern bench` at MQTT 5 against a real mosquitto 2: exact counts and latency at QoS 1
//! (with and without topic aliases, user properties on every publish), `conn`, loss
//! accounting across a restarted subscriber (which at level 5 rests on the Session Expiry
//! Interval), and failures counted by their reason codes: PUBACK 0x87 from an ACL, a
//! refusing CONNACK, and from a scripted broker what mosquitto 2.0 never sends: a SUBACK
//! refusal and a DISCONNECT with a reason code. Topic aliases are measured on the wire.

mod bench_support;

use std::path::Path;

use bench_support::*;
use serde_json::Value;
use tern_testkit::{Direction, FaultProxy, Script, ScriptedBroker};

fn path(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Publishers and subscribers at `-V 5 -q 1` with `extra` publisher flags: every message
/// reaches every subscriber once, with its latency header read.
fn pub_sub_exact(prefix: &str, extra: &[&str]) -> (Value, Value) {
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sub_json, pub_json) = (dir.path().join("sub.json"), dir.path().join("pub.json"));
    let sub_prefix = format!("{prefix}s");
    let sub = spawn(
        and(
            bench(
                "sub",
                &broker,
                &sub_prefix,
                &[
                    "-V",
                    "5",
                    "-c",
                    "2",
                    "-i",
                    "0",
                    "-q",
                    "1",
                    "-t",
                    "v5/+",
                    "--until-last",
                    "--quiet",
                ],
            ),
            ["--json", path(&sub_json)],
        ),
        None,
    );
    for i in 0..2 {
        broker.wait_for_log(&format!("Sending SUBACK to {sub_prefix}_bench_sub_{i}"));
    }
    let mut cmd = bench(
        "pub",
        &broker,
        &format!("{prefix}p"),
        &[
            "-V", "5", "-c", "2", "-i", "0", "-q", "1", "-t", "v5/%i", "-L", "600", "--rate",
            "600", "--quiet",
        ],
    );
    cmd.args(extra).args(["--json", path(&pub_json)]);
    run(cmd).assert_code(0);
    sub.wait().assert_code(0);
    (summary(&pub_json), summary(&sub_json))
}

#[test]
fn pub_and_sub_at_v5_qos1_count_exactly_with_topic_aliases() {
    let (p, s) = pub_sub_exact("al", &["--prop", "run=ci"]);
    assert_eq!(counter(&p, "pub"), 600, "{p}");
    assert_eq!(counter(&p, "pub_fail"), 0, "{p}");
    // Both subscribers hear both publishers (v5/+): each message twice in all.
    assert_eq!(counter(&s, "recv"), 1200, "{s}");
    assert_eq!(counter(&s, "dup"), 0, "{s}");
    assert_eq!(s["lost"], 0, "{s}");
    assert_eq!(
        s["latency"]["count"], 1200,
        "every message's header parsed: {s}"
    );
    assert_eq!(counter(&s, "sub"), 2, "{s}");
}

#[test]
fn pub_and_sub_at_v5_count_exactly_without_topic_aliases() {
    let (p, s) = pub_sub_exact("na", &["--no-topic-alias"]);
    assert_eq!(counter(&p, "pub"), 600, "{p}");
    assert_eq!(counter(&s, "recv"), 1200, "{s}");
    assert_eq!(s["lost"], 0, "{s}");
    assert_eq!(s["latency"]["count"], 1200, "{s}");
}

/// Bytes a `-V 5` publisher of 100 QoS 1 messages on a 200-byte topic sends to the broker,
/// through a counting proxy, with `extra` flags.
fn bytes_sent(broker: &Mosquitto, prefix: &str, extra: &[&str]) -> u64 {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let proxy = rt.block_on(FaultProxy::start_to_port(broker.port()));
    let topic = format!("alias/{}", "t".repeat(194));
    let port = proxy.port().to_string();
    let mut cmd = tern(["bench", "pub", "-h", "127.0.0.1", "-p", &port]);
    cmd.args(["--prefix", prefix, "-V", "5", "-c", "1", "-q", "1"])
        .args(["-t", &topic, "-L", "100", "--rate", "500", "--quiet"])
        .args(extra);
    run(cmd).assert_code(0);
    proxy.bytes(Direction::ToServer)
}

#[test]
fn topic_aliases_spare_the_topic_on_the_wire_unless_turned_off() {
    let broker = MosquittoConfig::new().start();
    let aliased = bytes_sent(&broker, "ta", &[]);
    let plain = bytes_sent(&broker, "tp", &["--no-topic-alias"]);
    eprintln!("with aliases {aliased} bytes, without {plain}");
    // 99 of the 100 PUBLISHes carry a 3-byte alias instead of the 200-byte topic.
    assert!(
        plain >= aliased + 99 * 190,
        "with aliases {aliased} bytes, without {plain}"
    );
}

#[test]
fn user_properties_ride_on_every_publish() {
    let broker = MosquittoConfig::new().start();
    let watcher = spawn(
        and(
            tern(["sub", "-i", "watch"]),
            at(&broker)
                .into_iter()
                .chain(
                    ["-V", "5", "-t", "up/#", "-C", "3", "-W", "15", "-F", "%P"].map(str::to_owned),
                )
                .collect::<Vec<_>>(),
        ),
        None,
    );
    broker.wait_for_log("Sending SUBACK to watch");
    run(bench(
        "pub",
        &broker,
        "up",
        &[
            "-V",
            "5",
            "-c",
            "1",
            "-q",
            "1",
            "-t",
            "up/x",
            "-L",
            "3",
            "--rate",
            "50",
            "--prop",
            "tool=tern",
            "--prop",
            "run=7",
            "--quiet",
        ],
    ))
    .assert_code(0);
    let out = watcher.wait();
    out.assert_code(0);
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf8")
        .lines()
        .collect();
    assert_eq!(lines, ["tool:tern run:7"; 3], "{out}");
}

#[test]
fn conn_at_v5_holds_every_connection() {
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("conn.json");
    let out = run(and(
        bench(
            "conn",
            &broker,
            "c5",
            &["-V", "mqttv5", "-c", "5", "-i", "0", "--duration", "1s"],
        ),
        ["--json", path(&json)],
    ));
    out.assert_code(0);
    let s = summary(&json);
    assert_eq!(counter(&s, "connect_succ"), 5, "{s}");
    assert_eq!(counter(&s, "connect_fail"), 0, "{s}");
    assert_eq!(s["connect"]["count"], 5, "connect latency of each: {s}");
    // Level 5 on the wire: mosquitto logs the protocol level of each CONNECT.
    broker.wait_for_log_count("(p5, c1, k300", 5);
}

/// A subscriber at `-V 5 -C false` with `expiry` flags is stopped once messages flow and
/// restarted after the publisher sent 100 more: (first summary, second summary).
fn restarted_subscriber(prefix: &str, expiry: &[&str]) -> (Value, Value) {
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let (first_json, second_json) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let sub_id = format!("{prefix}s_bench_sub_0");
    let pub_id = format!("{prefix}p_bench_pub_0");
    let sub = |json: &Path| {
        let mut cmd = bench(
            "sub",
            &broker,
            &format!("{prefix}s"),
            &[
                "-V",
                "5",
                "-C",
                "false",
                "-c",
                "1",
                "-q",
                "1",
                "-t",
                "loss5",
                "--until-last",
                "--quiet",
            ],
        );
        cmd.args(expiry)
            .args(["--state", path(&state), "--json", path(json)]);
        spawn(cmd, None)
    };
    let first = sub(&first_json);
    broker.wait_for_log(&format!("Sending SUBACK to {sub_id}"));
    let publisher = spawn(
        bench(
            "pub",
            &broker,
            &format!("{prefix}p"),
            &[
                "-V", "5", "-c", "1", "-q", "1", "-t", "loss5", "-L", "1500", "--rate", "500",
                "--quiet",
            ],
        ),
        None,
    );
    broker.wait_for_log_count(&format!("Sending PUBLISH to {sub_id}"), 20);
    first.signal("TERM");
    first.wait().assert_code(0);
    // Messages published while it is away: kept for it only if its session lives on.
    let received = format!("Received PUBLISH from {pub_id}");
    let so_far = broker.log().matches(&received).count();
    broker.wait_for_log_count(&received, so_far + 100);
    let second = sub(&second_json);
    publisher.wait().assert_code(0);
    second.wait().assert_code(0);
    (summary(&first_json), summary(&second_json))
}

#[test]
fn a_restarted_v5_subscriber_with_its_session_kept_misses_nothing() {
    // -C false at level 5: the session never expires unless -x says so.
    let (a, b) = restarted_subscriber("lk", &[]);
    let (got_a, got_b) = (counter(&a, "recv"), counter(&b, "recv"));
    let dup = counter(&a, "dup") + counter(&b, "dup");
    eprintln!("first received {got_a}, second {got_b}, dup {dup}");
    assert!(got_a >= 20, "{a}");
    assert_eq!(b["lost"], 0, "the session kept what it missed: {a}\n{b}");
    // QoS 1: one in flight at the stop may come again (counted as a duplicate).
    assert_eq!(got_a + got_b, 1500 + dup, "first {a}\nsecond {b}");
}

#[test]
fn a_restarted_v5_subscriber_whose_session_expired_reports_exactly_what_it_missed() {
    // -x 0: the broker drops the session at disconnect, and what came meanwhile with it.
    let (a, b) = restarted_subscriber("lx", &["-x", "0"]);
    let (got_a, got_b) = (counter(&a, "recv"), counter(&b, "recv"));
    let lost = b["lost"].as_u64().expect("lost");
    eprintln!("first received {got_a}, second {got_b}, lost {lost}");
    assert!(
        lost >= 100,
        "100 were published while it was away: {a}\n{b}"
    );
    assert_eq!(got_a + got_b + lost, 1500, "first {a}\nsecond {b}");
    assert_eq!(counter(&a, "dup") + counter(&b, "dup"), 0, "{a}\n{b}");
}

/// The failure entries of `stage` in a summary: (reason, count).
fn failures(s: &Value, stage: &str) -> Vec<(String, u64)> {
    s[format!("{stage}_failures")]
        .as_array()
        .unwrap_or_else(|| panic!("no {stage}_failures in {s}"))
        .iter()
        .map(|f| {
            (
                f["reason"].as_str().expect("reason").to_owned(),
                f["count"].as_u64().expect("count"),
            )
        })
        .collect()
}

#[test]
fn publishes_the_acl_refuses_count_under_0x87() {
    let broker = MosquittoConfig::new()
        .acl(["topic readwrite open/#"])
        .start();
    let dir = tempfile::tempdir().expect("tempdir");
    for qos in ["1", "2"] {
        let json = dir.path().join(format!("q{qos}.json"));
        let out = run(and(
            bench(
                "pub",
                &broker,
                &format!("acl{qos}"),
                &[
                    "-V", "5", "-c", "1", "-q", qos, "-t", "closed/x", "-L", "8", "--rate", "100",
                ],
            ),
            ["--json", path(&json)],
        ));
        // Nothing published: the run says so.
        out.assert_code(1);
        assert!(out.stderr.contains("0 of 8 messages published"), "{out}");
        assert!(
            out.text()
                .contains("publish failures, reason code 0x87: 8 ("),
            "QoS {qos}: {out}"
        );
        let s = summary(&json);
        assert_eq!(counter(&s, "pub_fail"), 8, "{s}");
        assert_eq!(failures(&s, "publish"), [("0x87".to_owned(), 8)], "{s}");
        assert_eq!(s["publish_failures"][0]["code"], 0x87, "{s}");
        assert!(failures(&s, "connect").is_empty(), "{s}");
    }
}

#[test]
fn a_refusing_connack_at_v5_counts_its_reason_code_and_exits_5() {
    let broker = MosquittoConfig::new().allow_anonymous(false).start();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("conn.json");
    let out = run(and(
        bench(
            "conn",
            &broker,
            "rf5",
            &["-V", "5", "-c", "2", "-i", "0", "--duration", "5"],
        ),
        ["--json", path(&json)],
    ));
    out.assert_code(5);
    let s = summary(&json);
    let f = failures(&s, "connect");
    assert_eq!(f.len(), 1, "{s}");
    let (reason, count) = &f[0];
    assert_eq!(*count, 2, "{s}");
    // mosquitto: 0x87 Not authorized (or 0x86 Bad User Name or Password).
    assert!(reason == "0x87" || reason == "0x86", "{s}");
    assert!(
        out.stderr
            .contains("Connection error: connection refused: "),
        "{out}"
    );
    assert!(out.stderr.contains(&format!("({reason})")), "{out}");
    assert!(
        out.text()
            .contains(&format!("connect failures, reason code {reason}: 2")),
        "{out}"
    );
}

/// CONNACK success at level 5, then a SUBACK refusing the filter with 0x87 and a Reason
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
async fn a_suback_refusal_counts_under_its_reason_code() {
    let broker = ScriptedBroker::start(v5_suback_refusal()).await;
    let port = broker.port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("sub.json");
    let json2 = json.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = tern(["bench", "sub", "-V", "5", "-h", "127.0.0.1", "-p", &port]);
        cmd.args(["-c", "1", "-t", "secret", "--duration", "2", "--quiet"])
            .args(["--json", path(&json2)]);
        run(cmd)
    })
    .await
    .expect("runner thread");
    out.assert_code(0);
    let s = summary(&json);
    assert_eq!(counter(&s, "sub_fail"), 1, "{s}");
    assert_eq!(counter(&s, "sub"), 0, "{s}");
    assert_eq!(failures(&s, "subscribe"), [("0x87".to_owned(), 1)], "{s}");
    assert!(
        out.text().contains(
            "subscribe failures, reason code 0x87: 1 (SUBACK refused the filter: Not authorized (0x87): \"no access\")"
        ),
        "{out}"
    );
}

#[test]
fn bad_version_and_v5_only_flags_are_usage_errors() {
    for args in [
        &["bench", "pub", "-t", "x", "-V", "6"][..],
        &["bench", "sub", "-t", "x", "-V", "mqttv6"],
        &["bench", "conn", "-V", "4", "-x", "60"],
        &["bench", "pub", "-t", "x", "--no-topic-alias"],
        &[
            "bench",
            "pub",
            "-t",
            "x",
            "-V",
            "5",
            "--prop",
            "no-equals-sign",
        ],
        &["bench", "sub", "-t", "x", "-V", "5", "--prop", "a=b"],
    ] {
        let out = run(tern(args));
        out.assert_code(2);
        assert!(out.stderr.contains("Error: "), "{args:?}: {out}");
        assert!(out.stderr.contains("tern bench --help"), "{args:?}: {out}");
    }
    let out = run(tern(["bench", "pub", "-t", "x", "-V", "6"]));
    assert!(
        out.stderr
            .contains("-V 6: tern bench speaks 3 (MQTT 3.1), 4 (3.1.1) and 5 (MQTT 5)"),
        "{out}"
    );
}

#[tokio::test]
async fn a_broker_disconnect_counts_under_its_reason_code() {
    // mosquitto 2.0.11 closes a taken-over session's socket without a DISCONNECT: a
    // scripted broker sends the one a newer broker would.
    let script = Script::new()
        .expect_connect()
        .send(&[0x20, 0x03, 0x00, 0x00, 0x00][..])
        .send(&[0xE0, 0x01, 0x8E][..])
        .read_until_closed();
    let broker = ScriptedBroker::start(script).await;
    let port = broker.port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("conn.json");
    let json2 = json.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = tern(["bench", "conn", "-V", "5", "-h", "127.0.0.1", "-p", &port]);
        cmd.args(["-c", "1", "--duration", "5", "--quiet"])
            .args(["--json", path(&json2)]);
        run(cmd)
    })
    .await
    .expect("runner thread");
    out.assert_code(0);
    let s = summary(&json);
    assert_eq!(counter(&s, "disconnect"), 1, "{s}");
    assert_eq!(failures(&s, "disconnect"), [("0x8e".to_owned(), 1)], "{s}");
    assert!(
        out.text().contains(
            "disconnect failures, reason code 0x8e: 1 (disconnected by the broker: Session taken over (0x8e))"
        ),
        "{out}"
    );
}
