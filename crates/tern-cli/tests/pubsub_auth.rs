//! `-u`/`-P`: right credentials connect; wrong ones are refused with the CONNACK code in the
//! message and exit status 5, as mosquitto_pub/mosquitto_sub exit.

mod pubsub_support;

use pubsub_support::*;

fn broker() -> Mosquitto {
    MosquittoConfig::new()
        .allow_anonymous(false)
        .user("alice", "secret")
        .start()
}

fn with(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[test]
fn right_credentials_round_trip() {
    let broker = broker();
    let sub = subscribed(
        &broker,
        "auth-sub",
        with(
            &broker,
            &["-u", "alice", "-P", "secret", "-t", "a", "-C", "1"],
        ),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(with(
        &broker,
        &["-u", "alice", "-P", "secret", "-t", "a", "-m", "in"],
    ));
    run(cmd).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "in\n");
}

#[test]
fn wrong_password_is_refused_with_code_and_sentence() {
    let broker = broker();
    for cmd_name in ["pub", "sub"] {
        let mut cmd = tern([cmd_name]);
        cmd.args(with(&broker, &["-u", "alice", "-P", "wrong", "-t", "a"]));
        if cmd_name == "pub" {
            cmd.args(["-m", "x"]);
        }
        let out = run(cmd);
        out.assert_code(5);
        // mosquitto 2 answers "not authorised" (5); older brokers say 4.
        let refused = out
            .stderr
            .contains("Connection error: connection refused: not authorised (5)")
            || out
                .stderr
                .contains("Connection error: connection refused: bad user name or password (4)");
        assert!(refused, "tern {cmd_name}: {out}");
    }
}

#[test]
fn refusal_exit_status_matches_mosquitto_sub() {
    let broker = broker();
    let reference = broker
        .mosquitto_sub()
        .auth("alice", "wrong")
        .topic("a")
        .count(1)
        .run();
    let mut cmd = tern(["sub"]);
    cmd.args(with(
        &broker,
        &["-u", "alice", "-P", "wrong", "-t", "a", "-C", "1"],
    ));
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        reference.status.code(),
        "tern: {out}\nmosquitto_sub: {reference}"
    );
}

#[test]
fn anonymous_client_is_refused() {
    let broker = broker();
    let mut cmd = tern(["pub"]);
    cmd.args(with(&broker, &["-t", "a", "-m", "x"]));
    let out = run(cmd);
    out.assert_code(5);
    assert!(out.stderr.contains("connection refused"), "{out}");
}
