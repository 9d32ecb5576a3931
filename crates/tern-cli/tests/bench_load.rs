//! `tern bench pub` and `sub` against a real mosquitto: exact counters at QoS 1, the
//! latency header parsed, placeholders expanded, paced rates, and the merge of runs.

mod bench_support;

use bench_support::*;

#[test]
fn qos1_counters_are_exact_and_placeholders_expand() {
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let sub_json = dir.path().join("sub.json");
    let pub_json = dir.path().join("pub.json");
    // Subscriber i listens on ex/i/x only: it hears publisher i alone, so %i expanded the
    // same way on both sides or nothing arrives.
    let sub = spawn(
        and(
            bench(
                "sub",
                &broker,
                "exs",
                &[
                    "-c",
                    "3",
                    "-i",
                    "0",
                    "-q",
                    "1",
                    "-t",
                    "ex/%i/x",
                    "--until-last",
                    "--quiet",
                ],
            ),
            ["--json", sub_json.to_str().expect("utf8")],
        ),
        None,
    );
    for i in 0..3 {
        broker.wait_for_log(&format!("Sending SUBACK to exs_bench_sub_{i}"));
    }
    let out = run(and(
        bench(
            "pub",
            &broker,
            "exp",
            &[
                "-c", "3", "-i", "0", "-q", "1", "-t", "ex/%i/x", "-L", "300", "--rate", "600",
                "-s", "100", "--quiet",
            ],
        ),
        ["--json", pub_json.to_str().expect("utf8")],
    ));
    out.assert_code(0);
    let p = summary(&pub_json);
    assert_eq!(counter(&p, "connect_succ"), 3, "{p}");
    assert_eq!(counter(&p, "pub"), 300, "{p}");
    assert_eq!(
        counter(&p, "pub_fail") + counter(&p, "pub_overrun"),
        0,
        "{p}"
    );

    sub.wait().assert_code(0);
    let s = summary(&sub_json);
    assert_eq!(counter(&s, "sub"), 3, "{s}");
    assert_eq!(counter(&s, "recv"), 300, "{s}");
    assert_eq!(counter(&s, "dup"), 0, "{s}");
    assert_eq!(s["lost"], 0, "{s}");
    // Every message carried a header the subscriber read.
    assert_eq!(s["latency"]["count"], 300, "{s}");
    assert!(s["latency"]["max"].as_f64().expect("max") > 0.0, "{s}");
}

#[test]
fn client_id_and_user_placeholders_reach_the_topic() {
    let broker = MosquittoConfig::new().start();
    let watcher = subscribed(
        &broker,
        "watch",
        with(&broker, &["-t", "ph/#", "-F", "%t", "-C", "2"]),
    );
    let out = run(bench(
        "pub",
        &broker,
        "php",
        &[
            "-c",
            "2",
            "-n",
            "5",
            "-i",
            "0",
            "-u",
            "bob",
            "-t",
            "ph/%c/%u/%i",
            "-L",
            "2",
            "--quiet",
        ],
    ));
    out.assert_code(0);
    let seen = watcher.wait().assert_code(0).text();
    // -F %t: topics only (the payloads are random bytes).
    let mut topics: Vec<&str> = seen.lines().collect();
    topics.sort_unstable();
    assert_eq!(
        topics,
        ["ph/php_bench_pub_5/bob/5", "ph/php_bench_pub_6/bob/6"],
        "{seen}"
    );
}

fn with(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[test]
fn a_paced_run_sends_rate_times_duration_at_that_rate() {
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("pub.json");
    let out = run(and(
        bench(
            "pub",
            &broker,
            "pace",
            &[
                "-c",
                "4",
                "-i",
                "0",
                "-t",
                "pace/%i",
                "--rate",
                "2000",
                "--duration",
                "2",
                "-s",
                "64",
                "--quiet",
            ],
        ),
        ["--json", json.to_str().expect("utf8")],
    ));
    out.assert_code(0);
    let s = summary(&json);
    assert_eq!(counter(&s, "pub"), 4000, "{s}");
    // The rate as a ratio of messages to the time publishing took: within ±10%.
    let rate = 4000.0 / s["elapsed"].as_f64().expect("elapsed");
    assert!((1800.0..=2200.0).contains(&rate), "rate {rate:.0}/s: {s}");
}

#[test]
fn merging_two_subscriber_runs_equals_one_run_of_both() {
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |n: &str| dir.path().join(n).to_str().expect("utf8").to_owned();
    // Runs A and B (one subscriber each) and run C (both subscribers in one process) hear
    // the same publisher.
    let sub = |prefix: &str, count: &str, name: &str| {
        let running = spawn(
            and(
                bench(
                    "sub",
                    &broker,
                    prefix,
                    &[
                        "-c",
                        count,
                        "-i",
                        "0",
                        "-q",
                        "1",
                        "-t",
                        "mg",
                        "--until-last",
                        "--quiet",
                    ],
                ),
                [
                    "--json",
                    &file(&format!("{name}.json")),
                    "--hdr",
                    &file(&format!("{name}.hdr")),
                ],
            ),
            None,
        );
        for i in 0..count.parse::<u32>().expect("count") {
            broker.wait_for_log(&format!("Sending SUBACK to {prefix}_bench_sub_{i}"));
        }
        running
    };
    let a = sub("mga", "1", "a");
    let b = sub("mgb", "1", "b");
    let c = sub("mgc", "2", "c");
    run(bench(
        "pub",
        &broker,
        "mgp",
        &[
            "-c", "2", "-i", "0", "-q", "1", "-t", "mg", "-L", "400", "--rate", "400", "--quiet",
        ],
    ))
    .assert_code(0);
    for s in [a, b, c] {
        s.wait().assert_code(0);
    }
    let svg = file("ab.svg");
    let ab = run(tern([
        "bench",
        "report",
        &file("a.json"),
        &file("a.hdr"),
        &file("b.json"),
        &file("b.hdr"),
        "--svg",
        &svg,
    ]));
    ab.assert_code(0);
    let c = run(tern(["bench", "report", &file("c.json"), &file("c.hdr")]));
    c.assert_code(0);
    let summary_of = |text: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.starts_with("summary"))
            .filter(|l| l.contains("recv") || l.contains("lost") || l.contains("samples"))
            .map(|l| l.split(':').next().unwrap_or(l).to_owned())
            .collect()
    };
    let (ab_text, c_text) = (ab.text(), c.text());
    assert!(
        ab_text.contains("  recv                   800\n"),
        "{ab_text}"
    );
    assert!(ab_text.contains("latency ms (800 samples)"), "{ab_text}");
    assert_eq!(
        summary_of(&ab_text),
        summary_of(&c_text),
        "A+B:\n{ab_text}\nC:\n{c_text}"
    );
    let drawn = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        drawn.starts_with("<svg") && drawn.contains("recv"),
        "{drawn:.200}"
    );
}

#[test]
fn rate_max_saturates_with_backpressure_and_every_message_arrives() {
    // `--rate max` and `-I 0`: as fast as each window takes, waiting for room, nothing
    // refused or overrun, and the last message of each publisher flagged for --until-last.
    for (prefix, pacing) in [("satr", ["--rate", "max"]), ("sati", ["-I", "0"])] {
        let broker = MosquittoConfig::new().max_queued_messages(100_000).start();
        let dir = tempfile::tempdir().expect("tempdir");
        let sub_json = dir.path().join("sub.json");
        let pub_json = dir.path().join("pub.json");
        let sub = spawn(
            and(
                bench(
                    "sub",
                    &broker,
                    &format!("{prefix}s"),
                    &[
                        "-c",
                        "1",
                        "-q",
                        "1",
                        "-t",
                        "sat/#",
                        "--until-last",
                        "--quiet",
                    ],
                ),
                ["--json", sub_json.to_str().expect("utf8")],
            ),
            None,
        );
        broker.wait_for_log(&format!("Sending SUBACK to {prefix}s_bench_sub_0"));
        let out = run(and(
            bench(
                "pub",
                &broker,
                &format!("{prefix}p"),
                &[
                    "-c",
                    "4",
                    "-i",
                    "0",
                    "-q",
                    "1",
                    "--inflight",
                    "5",
                    "-t",
                    "sat/%i",
                    "-L",
                    "4000",
                    "-s",
                    "64",
                    "--quiet",
                ],
            ),
            pacing
                .into_iter()
                .chain(["--json", pub_json.to_str().expect("utf8")]),
        ));
        out.assert_code(0);
        let p = summary(&pub_json);
        assert_eq!(counter(&p, "pub"), 4000, "{pacing:?}: {p}");
        for c in ["pub_fail", "pub_overrun", "pub_unfinished"] {
            assert_eq!(counter(&p, c), 0, "{pacing:?} {c}: {p}");
        }
        sub.wait().assert_code(0);
        let s = summary(&sub_json);
        assert_eq!(counter(&s, "recv"), 4000, "{pacing:?}: {s}");
        assert_eq!(s["lost"], 0, "{pacing:?}: {s}");
        assert_eq!(counter(&s, "dup"), 0, "{pacing:?}: {s}");
    }
}

#[test]
fn an_asked_rate_beyond_the_broker_is_overrun_not_queued_and_nothing_is_left_unfinished() {
    // Two connections asked for a million messages in one second: each holds at most its
    // queue (10,000) and counts the rest as overruns; everything queued completes.
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pub_json = dir.path().join("pub.json");
    let out = run(and(
        bench(
            "pub",
            &broker,
            "over",
            &[
                "-c",
                "2",
                "-i",
                "0",
                "-q",
                "1",
                "--inflight",
                "5",
                "-t",
                "over/%i",
                "--rate",
                "1000000",
                "--duration",
                "1",
                "-s",
                "64",
                "--quiet",
            ],
        ),
        ["--json", pub_json.to_str().expect("utf8")],
    ));
    // Not all asked were published: the exit status says so.
    out.assert_code(1);
    let p = summary(&pub_json);
    let (published, overrun) = (counter(&p, "pub"), counter(&p, "pub_overrun"));
    assert!(overrun > 0, "{p}");
    assert_eq!(published + overrun, 1_000_000, "{p}");
    assert_eq!(counter(&p, "pub_fail"), 0, "{p}");
    assert_eq!(counter(&p, "pub_unfinished"), 0, "{p}");
}
