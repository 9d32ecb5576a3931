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
