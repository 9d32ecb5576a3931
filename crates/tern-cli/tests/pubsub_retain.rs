//! `-r` retains; a later subscriber receives it with the retain flag; `-R` skips it and
//! `--retained-only` prints only it.

mod pubsub_support;

use pubsub_support::*;

fn with(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn publish(broker: &Mosquitto, extra: &[&str]) {
    let mut cmd = tern(["pub"]);
    cmd.args(with(broker, extra));
    run(cmd).assert_code(0);
}

#[test]
fn retained_message_reaches_a_later_subscriber() {
    let broker = MosquittoConfig::new().start();
    publish(&broker, &["-t", "ret/a", "-m", "kept", "-r", "-q", "1"]);
    let mut cmd = tern(["sub"]);
    cmd.args(with(&broker, &["-t", "ret/#", "-C", "1", "-F", "%t %r %p"]));
    assert_eq!(run(cmd).assert_code(0).text(), "ret/a 1 kept\n");
}

#[test]
fn no_stale_flag_skips_retained_but_prints_live_messages() {
    let broker = MosquittoConfig::new().start();
    publish(&broker, &["-t", "ret/a", "-m", "stale", "-r"]);
    let sub = subscribed(
        &broker,
        "fresh-only",
        with(&broker, &["-t", "ret/#", "-R", "-C", "1", "-F", "%r %p"]),
    );
    publish(&broker, &["-t", "ret/a", "-m", "live"]);
    assert_eq!(sub.wait().assert_code(0).text(), "0 live\n");
}

#[test]
fn no_stale_flag_with_only_retained_times_out() {
    let broker = MosquittoConfig::new().start();
    publish(&broker, &["-t", "ret/a", "-m", "stale", "-r"]);
    let mut cmd = tern(["sub"]);
    cmd.args(with(&broker, &["-t", "ret/#", "-R", "-C", "1", "-W", "1"]));
    let out = run(cmd);
    out.assert_code(27);
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn retained_only_exits_at_the_first_live_message() {
    let broker = MosquittoConfig::new().start();
    publish(&broker, &["-t", "ret/a", "-m", "one", "-r"]);
    publish(&broker, &["-t", "ret/b", "-m", "two", "-r"]);
    let sub = subscribed(
        &broker,
        "ret-only",
        with(&broker, &["-t", "ret/#", "--retained-only", "-v"]),
    );
    publish(&broker, &["-t", "ret/c", "-m", "live"]);
    let out = sub.wait().assert_code(0).text();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["ret/a one", "ret/b two"]);
}
