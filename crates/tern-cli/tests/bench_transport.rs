//! `tern bench` over TLS and WebSocket: a subscriber on the WebSocket listener hears every
//! message of publishers on the TLS listener.

mod bench_support;

use bench_support::*;

#[test]
fn tls_publishers_and_websocket_subscribers_count_exactly() {
    let broker = MosquittoConfig::new().tls().websockets().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let sub_json = dir.path().join("sub.json");
    let ca = broker.tls().ca.cert_path.to_str().expect("utf8").to_owned();
    let ws_port = broker.ws_port().to_string();
    let tls_port = broker.tls_port().to_string();
    let mut sub = tern(["bench", "sub", "-h", "127.0.0.1", "-p", &ws_port, "--ws"]);
    sub.args([
        "--prefix", "wss", "-c", "2", "-i", "0", "-q", "1", "-t", "tw/#",
    ]);
    sub.args([
        "--until-last",
        "--quiet",
        "--json",
        sub_json.to_str().expect("utf8"),
    ]);
    let sub = spawn(sub, None);
    broker.wait_for_log("Sending SUBACK to wss_bench_sub_0");
    broker.wait_for_log("Sending SUBACK to wss_bench_sub_1");
    let mut publisher = tern(["bench", "pub", "-h", "127.0.0.1", "-p", &tls_port, "-S"]);
    publisher.args([
        "--cacertfile",
        &ca,
        "--prefix",
        "tlp",
        "-c",
        "2",
        "-i",
        "0",
        "-q",
        "1",
    ]);
    publisher.args(["-t", "tw/%i", "-L", "200", "--rate", "1000", "--quiet"]);
    run(publisher).assert_code(0);
    sub.wait().assert_code(0);
    let s = summary(&sub_json);
    assert_eq!(counter(&s, "connect_succ"), 2, "{s}");
    // Two subscribers, each hearing all 200.
    assert_eq!(counter(&s, "recv"), 400, "{s}");
    assert_eq!(
        (s["lost"].as_u64(), counter(&s, "dup")),
        (Some(0), 0),
        "{s}"
    );
}

#[test]
fn ifaddr_spreads_connections_over_local_source_addresses() {
    let broker = MosquittoConfig::new().start();
    let out = run(bench(
        "conn",
        &broker,
        "ifa",
        &[
            "-c",
            "4",
            "-i",
            "0",
            "--ifaddr",
            "127.0.0.2,127.0.0.3",
            "--duration",
            "500ms",
        ],
    ));
    out.assert_code(0);
    assert!(out.text().contains("connect_succ             4"), "{out}");
    let log = broker.log();
    // Client index i binds to address i mod 2.
    for (i, addr) in [
        (0, "127.0.0.2"),
        (1, "127.0.0.3"),
        (2, "127.0.0.2"),
        (3, "127.0.0.3"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(&format!("from {addr}:"))
                && l.contains(&format!("as ifa_bench_conn_{i} "))),
            "client {i} not from {addr}:\n{log}"
        );
    }
}

#[test]
fn conn_churn_closes_and_reopens_connections() {
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("conn.json");
    let out = run(and(
        bench(
            "conn",
            &broker,
            "ch",
            &[
                "-c",
                "5",
                "-i",
                "0",
                "--churn",
                "10",
                "--duration",
                "2s",
                "--quiet",
            ],
        ),
        ["--json", json.to_str().expect("utf8")],
    ));
    out.assert_code(0);
    let s = summary(&json);
    // Five opened, then reopened as churned: more connects than connections, none failed,
    // and a connect latency for every one.
    let opened = counter(&s, "connect_succ");
    assert!(opened > 5, "{s}");
    assert_eq!(counter(&s, "connect_fail"), 0, "{s}");
    assert_eq!(s["connect"]["count"].as_u64(), Some(opened), "{s}");
    assert!(
        broker.log().contains("Client ch_bench_conn_0 disconnected"),
        "{s}"
    );
    // The established gauge: all five held while churning, never more.
    let text = std::fs::read_to_string(&json).expect("json");
    let established: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["gauge"] == "established")
        .filter_map(|v| v["value"].as_u64())
        .collect();
    assert!(established.contains(&5), "{text}");
    assert!(established.iter().all(|&n| n <= 5), "{text}");
}
