//! `tern sub -C N` acknowledges only the messages it printed (issue 16, point 1): a
//! persistent session's backlog drained by repeated `tern sub -c -C 1` runs prints every
//! QoS 1 message at least once and every QoS 2 message exactly once, and loses none.

mod pubsub_support;

use std::collections::HashMap;

use pubsub_support::*;

fn tern_at(broker: &Mosquitto, args: &[&str]) -> Output {
    let mut cmd = tern(&args[..1]);
    cmd.args(at(broker));
    cmd.args(&args[1..]);
    run(cmd)
}

#[test]
fn a_backlog_drained_by_one_message_runs_prints_each_and_loses_none() {
    let broker = MosquittoConfig::new().start();
    let (id, topic) = ("drainer", "backlog/t");
    // The persistent session, subscribed at QoS 2 (messages keep their own QoS).
    tern_at(
        &broker,
        &["sub", "-c", "-i", id, "-t", topic, "-q", "2", "-E"],
    )
    .assert_code(0);
    // Queued while the subscriber is away, and a last one that says the backlog is done.
    let bodies = ["q1-a", "q2-a", "q1-b", "q2-b", "q1-c", "q2-c"];
    for body in bodies {
        let qos = if body.starts_with("q1") { "1" } else { "2" };
        tern_at(&broker, &["pub", "-t", topic, "-m", body, "-q", qos]).assert_code(0);
    }
    tern_at(&broker, &["pub", "-t", topic, "-m", "end", "-q", "1"]).assert_code(0);

    // mosquitto sends the whole backlog after CONNACK; each run prints (and may
    // acknowledge) only the first.
    let mut printed: HashMap<String, usize> = HashMap::new();
    let mut done = false;
    for _run in 0..3 * (bodies.len() + 1) {
        let out = tern_at(
            &broker,
            &["sub", "-c", "-i", id, "-t", topic, "-q", "2", "-C", "1"],
        );
        let line = out.assert_code(0).text();
        let line = line.trim_end().to_owned();
        if line == "end" {
            done = true;
            break;
        }
        *printed.entry(line).or_default() += 1;
    }
    assert!(done, "the backlog never drained: {printed:?}");
    for body in bodies {
        let n = printed.get(body).copied().unwrap_or(0);
        if body.starts_with("q1") {
            assert!(n >= 1, "QoS 1 {body} lost: {printed:?}");
        } else {
            assert_eq!(n, 1, "QoS 2 {body} printed {n} times: {printed:?}");
        }
    }
    assert!(
        printed.keys().all(|k| bodies.contains(&k.as_str())),
        "unexpected output: {printed:?}"
    );
}
