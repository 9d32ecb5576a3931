//! Exit codes and error messages: -C and -W, refused connections, DNS failures, closed
//! ports, bad command lines.

mod pubsub_support;

use std::time::{Duration, Instant};

use pubsub_support::*;
use tern_testkit::{Script, ScriptedBroker};

fn with(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[test]
fn count_exits_zero_after_that_many_messages() {
    let broker = MosquittoConfig::new().start();
    let sub = subscribed(&broker, "count", with(&broker, &["-t", "c", "-C", "2"]));
    let mut cmd = tern(["pub"]);
    cmd.args(with(&broker, &["-t", "c", "-l"]));
    run_with_input(cmd, "1\n2\n3\n").assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "1\n2\n");
}

#[test]
fn timeout_with_nothing_arriving_exits_27() {
    let broker = MosquittoConfig::new().start();
    let mut cmd = tern(["sub"]);
    cmd.args(with(&broker, &["-t", "silent", "-W", "0.5"]));
    let started = Instant::now();
    let out = run(cmd);
    out.assert_code(27);
    assert!(out.stderr.contains("Timed out"), "{out}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "exited early: {out}"
    );
}

#[test]
fn timeout_is_not_hit_when_count_is_reached_first() {
    let broker = MosquittoConfig::new().start();
    let sub = subscribed(
        &broker,
        "cw",
        with(&broker, &["-t", "cw", "-C", "1", "-W", "30"]),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(with(&broker, &["-t", "cw", "-m", "in time"]));
    run(cmd).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "in time\n");
}

#[test]
fn unknown_host_reports_dns_code() {
    let out = run(tern([
        "pub",
        "-h",
        "nonexistent.invalid",
        "-t",
        "t",
        "-m",
        "x",
    ]));
    out.assert_code(3);
    assert!(out.stderr.starts_with("Connection error: "), "{out}");
    assert!(out.stderr.trim_end().ends_with("(-3)"), "{out}");
}

#[test]
fn closed_port_reports_server_not_found_code() {
    let port = tern_testkit::closed_port().to_string();
    for cmd_name in ["pub", "sub"] {
        let mut cmd = tern([cmd_name, "-h", "127.0.0.1", "-p", &port, "-t", "t"]);
        if cmd_name == "pub" {
            cmd.args(["-m", "x"]);
        }
        let out = run(cmd);
        out.assert_code(3);
        assert!(out.stderr.starts_with("Connection error: "), "{out}");
        assert!(out.stderr.trim_end().ends_with("(-5)"), "{out}");
    }
}

#[test]
fn bad_command_lines_exit_2_with_mosquittos_sentence() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["pub", "-t", "t", "-m", "x", "-q", "3"],
            "Invalid QoS given: 3",
        ),
        (
            &["pub", "-t", "t"],
            "Both topic and message must be supplied.",
        ),
        (
            &["pub", "-t", "t", "-m", "x", "-n"],
            "Only one type of message can be sent at once.",
        ),
        (&["sub", "-v"], "You must specify a topic to subscribe to."),
        (
            &["sub", "-t", "a/#/b"],
            "Invalid subscription topic 'a/#/b'",
        ),
        (
            &["pub", "-t", "t", "-n", "-c"],
            "You must provide a client id if you are using the -c option.",
        ),
        (
            &["pub", "-t", "t", "-n", "--bogus"],
            "Unknown option '--bogus'.",
        ),
    ];
    for (argv, msg) in cases {
        let out = run(tern(*argv));
        out.assert_code(2);
        assert!(out.stderr.contains(msg), "{argv:?}: {out}");
        assert!(out.stderr.contains("--help"), "{argv:?}: {out}");
    }
}

#[test]
fn help_lists_flags_and_exit_codes() {
    for cmd_name in ["pub", "sub"] {
        let out = run(tern([cmd_name, "--help"]));
        out.assert_code(0);
        let text = out.text();
        for needle in [
            "-h, --host host",
            "--cafile",
            "--insecure",
            "Exit status:",
            "27",
            "(-4)",
            "-c with an",
            "--unix",
            "--proxy",
            env!("CARGO_PKG_VERSION"),
        ] {
            assert!(
                text.contains(needle),
                "tern {cmd_name} --help lacks {needle:?}:\n{text}"
            );
        }
    }
}

/// Runs `argv` against a scripted broker on `port` without blocking its runtime.
async fn run_against(port: u16, argv: &[&str]) -> Output {
    let mut cmd = tern(argv);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    tokio::task::spawn_blocking(move || run(cmd))
        .await
        .expect("runner thread")
}

#[tokio::test]
async fn all_denied_subscriptions_fail() {
    let broker = ScriptedBroker::start(Script::suback_failure()).await;
    let out = run_against(broker.port(), &["sub", "-t", "x", "-t", "y", "-W", "10"]).await;
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("All subscription requests were denied."),
        "{out}"
    );
}

#[tokio::test]
async fn every_connack_refusal_code_is_named_and_exits_5() {
    let words = [
        "unacceptable protocol version (1)",
        "identifier rejected (2)",
        "broker unavailable (3)",
        "bad user name or password (4)",
        "not authorised (5)",
    ];
    for (code, words) in (1..=5).zip(words) {
        let broker = ScriptedBroker::start(Script::connack(code)).await;
        let out = run_against(broker.port(), &["pub", "-t", "t", "-m", "x"]).await;
        out.assert_code(5);
        assert_eq!(
            out.stderr.trim_end(),
            format!("Connection error: connection refused: {words}"),
            "{out}"
        );
    }
}

#[tokio::test]
async fn w_bounds_a_connect_that_never_completes() {
    let broker = ScriptedBroker::start(Script::never_answer()).await;
    let out = run_against(broker.port(), &["sub", "-t", "t", "-W", "1"]).await;
    out.assert_code(27);
}

#[test]
fn losing_the_connection_keeps_retrying_until_w() {
    // As mosquitto_sub: a lost connection is not an exit; it retries until -W (or forever).
    let mut broker = MosquittoConfig::new().start();
    let sub = subscribed(&broker, "orphan", with(&broker, &["-t", "t", "-W", "2"]));
    broker.kill();
    let out = sub.wait();
    out.assert_code(27);
    assert!(out.stderr.contains("Timed out"), "{out}");
}
