//! `--will-*`: the broker publishes the will when the client vanishes without DISCONNECT,
//! and not when it exits normally.

mod pubsub_support;

use pubsub_support::*;

fn with(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[test]
fn will_is_delivered_when_the_client_is_killed() {
    let broker = MosquittoConfig::new().start();
    let watcher = subscribed(
        &broker,
        "watcher",
        with(&broker, &["-t", "wills/#", "-C", "1", "-F", "%t %r %q %p"]),
    );
    let victim = subscribed(
        &broker,
        "victim",
        with(
            &broker,
            &[
                "-t",
                "unused",
                "--will-topic",
                "wills/victim",
                "--will-payload",
                "gone",
                "--will-qos",
                "1",
                "--will-retain",
            ],
        ),
    );
    let killed = victim.kill();
    assert!(!killed.status.success(), "{killed}");
    // Retained wills arrive with retain 0 to live subscribers [MQTT-3.3.1-9]; QoS is the
    // subscription's (0).
    assert_eq!(
        watcher.wait().assert_code(0).text(),
        "wills/victim 0 0 gone\n"
    );
    // Retained: a later subscriber gets it with the flag set.
    let mut late = tern(["sub"]);
    late.args(with(
        &broker,
        &["-t", "wills/victim", "-C", "1", "-F", "%r %p"],
    ));
    assert_eq!(run(late).assert_code(0).text(), "1 gone\n");
}

#[test]
fn will_is_not_sent_after_a_normal_exit() {
    let broker = MosquittoConfig::new().start();
    let watcher = subscribed(
        &broker,
        "watcher",
        with(&broker, &["-t", "wills/#", "-t", "done", "-C", "1", "-v"]),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(with(
        &broker,
        &[
            "-t",
            "other",
            "-m",
            "x",
            "--will-topic",
            "wills/pub",
            "--will-payload",
            "no",
        ],
    ));
    run(cmd).assert_code(0);
    let mut cmd = tern(["pub"]);
    cmd.args(with(&broker, &["-t", "done", "-m", "marker"]));
    run(cmd).assert_code(0);
    assert_eq!(watcher.wait().assert_code(0).text(), "done marker\n");
}

#[test]
fn sigterm_and_sigint_disconnect_cleanly_without_the_will() {
    let broker = MosquittoConfig::new().start();
    let watcher = subscribed(
        &broker,
        "watcher",
        with(&broker, &["-t", "wills/#", "-t", "done", "-C", "1", "-v"]),
    );
    for (i, sig) in ["TERM", "INT"].into_iter().enumerate() {
        let id = format!("stopped-{i}");
        let victim = subscribed(
            &broker,
            &id,
            with(
                &broker,
                &[
                    "-t",
                    "unused",
                    "--will-topic",
                    "wills/stopped",
                    "--will-payload",
                    sig,
                ],
            ),
        );
        victim.signal(sig);
        victim.wait().assert_code(0);
    }
    let mut cmd = tern(["pub"]);
    cmd.args(with(&broker, &["-t", "done", "-m", "marker"]));
    run(cmd).assert_code(0);
    assert_eq!(watcher.wait().assert_code(0).text(), "done marker\n");
}
