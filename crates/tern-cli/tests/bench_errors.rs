//! `tern bench` failures: bad command lines exit 2, an unreachable broker gives the reason
//! code.

mod bench_support;

use bench_support::*;

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["bench"][..],
        &["bench", "flood"],
        &["bench", "pub"],
        &["bench", "pub", "-t", "x", "-q", "7"],
        &["bench", "pub", "-t", "x", "-s", "10"],
        &["bench", "pub", "-t", "x/#"],
        &["bench", "sub", "-t", "x", "--rate", "fast"],
        &["bench", "conn", "--no-such-flag"],
        &["bench", "conn", "-c"],
        &["bench", "report"],
    ] {
        let out = run(tern(args));
        out.assert_code(2);
        assert!(out.stderr.contains("Error: "), "{args:?}: {out}");
        assert!(out.stderr.contains("tern bench --help"), "{args:?}: {out}");
    }
}

#[test]
fn unreachable_broker_reports_the_reason_code() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
        .to_string();
    let out = run(tern([
        "bench",
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-c",
        "3",
        "-i",
        "0",
        "-t",
        "x",
        "-L",
        "1",
    ]));
    out.assert_code(3);
    assert!(out.stderr.contains("(-5)"), "{out}");
    assert!(
        out.text().contains("connect failures, reason code -5: 3"),
        "{out}"
    );
}

#[test]
fn publishers_that_lose_the_broker_stop_and_exit_1() {
    let mut broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("pub.json");
    let publisher = spawn(
        and(
            bench(
                "pub",
                &broker,
                "kp",
                &[
                    "-c",
                    "1",
                    "-q",
                    "1",
                    "-t",
                    "k",
                    "--rate",
                    "200",
                    "--duration",
                    "5",
                    "--quiet",
                ],
            ),
            ["--json", json.to_str().expect("utf8")],
        ),
        None,
    );
    broker.wait_for_log_count("Received PUBLISH from kp_bench_pub_0", 20);
    broker.kill();
    // Bounded: WAIT (20 s) — the run would take 5 s if it went on publishing to nowhere.
    let out = publisher.wait();
    out.assert_code(1);
    assert!(out.stderr.contains("of 1000 messages published"), "{out}");
    let s = summary(&json);
    assert_eq!(counter(&s, "disconnect"), 1, "{s}");
    assert!(counter(&s, "pub") >= 20 && counter(&s, "pub") < 1000, "{s}");
}

#[test]
fn a_refusing_broker_gives_its_connack_code_and_exit_5() {
    let broker = MosquittoConfig::new().allow_anonymous(false).start();
    let out = run(bench(
        "conn",
        &broker,
        "rf",
        &["-c", "2", "-i", "0", "--duration", "5"],
    ));
    out.assert_code(5);
    assert!(out.stderr.contains("not authorised (5)"), "{out}");
    assert!(!out.stderr.contains("(5) (5)"), "{out}");
    assert!(
        out.text().contains("connect failures, reason code 5: 2"),
        "{out}"
    );
}
