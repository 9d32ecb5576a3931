//! MQTT v5 command lines refused before any connection: `-D` as mosquitto_pub/sub 2.x
//! refuse it (exit 2, naming the property and the command), `-x` and `-V`, and `tern rr`'s
//! required flags.

// Only the runner helpers are needed here, not the broker ones it re-exports.
#[allow(unused_imports)]
mod pubsub_support;

use pubsub_support::*;

/// Runs `tern <args>` (no broker: every case is refused before connecting; the port is a
/// closed loopback one, so a command line that slipped through would fail differently).
fn refused(args: &[&str]) -> Output {
    // The broker flags go first: a -D at the end must be able to run out of words.
    let mut cmd = tern(&args[..1]);
    cmd.args(["-h", "127.0.0.1", "-p", "1"]);
    cmd.args(&args[1..]);
    let out = run(cmd);
    out.assert_code(2);
    assert!(
        out.stdout.is_empty(),
        "usage errors print nothing on stdout: {out}"
    );
    out
}

#[test]
fn a_property_not_allowed_on_the_packet_names_both() {
    let out = refused(&[
        "pub",
        "-t",
        "t",
        "-m",
        "x",
        "-D",
        "connect",
        "topic-alias",
        "1",
    ]);
    assert!(
        out.stderr.contains(
            "Error: topic-alias property not allowed for connect in --property argument."
        ),
        "{out}"
    );
    assert!(out.stderr.contains("Use 'tern pub --help'"), "{out}");
    let out = refused(&["sub", "-t", "t", "-D", "subscribe", "content-type", "x"]);
    assert!(
        out.stderr
            .contains("content-type property not allowed for subscribe in --property argument."),
        "{out}"
    );
    let out = refused(&[
        "pub",
        "-t",
        "t",
        "-n",
        "-D",
        "publish",
        "subscription-identifier",
        "1",
    ]);
    assert!(
        out.stderr.contains(
            "subscription-identifier property not supported for publish in --property argument."
        ),
        "{out}"
    );
}

#[test]
fn unknown_commands_names_and_missing_words_are_refused() {
    let out = refused(&["pub", "-t", "t", "-n", "-D", "publsh", "content-type", "x"]);
    assert!(
        out.stderr
            .contains("Invalid command given in --property argument."),
        "{out}"
    );
    let out = refused(&["pub", "-t", "t", "-n", "-D", "publish", "content-typ", "x"]);
    assert!(
        out.stderr
            .contains("Invalid property name given in --property argument."),
        "{out}"
    );
    let out = refused(&[
        "pub",
        "-t",
        "t",
        "-n",
        "-D",
        "publish",
        "user-property",
        "k",
    ]);
    assert!(
        out.stderr
            .contains("--property argument given but not enough arguments specified."),
        "{out}"
    );
}

#[test]
fn values_out_of_their_wire_range_or_repeated_are_refused() {
    let out = refused(&[
        "pub",
        "-t",
        "t",
        "-n",
        "-D",
        "connect",
        "receive-maximum",
        "70000",
    ]);
    assert!(
        out.stderr
            .contains("Property value (70000) out of range for property receive-maximum."),
        "{out}"
    );
    let out = refused(&[
        "pub",
        "-t",
        "t",
        "-n",
        "-D",
        "connect",
        "receive-maximum",
        "0",
    ]);
    assert!(
        out.stderr.contains("receive-maximum must not be 0"),
        "{out}"
    );
    let out = refused(&[
        "pub",
        "-t",
        "t",
        "-n",
        "-D",
        "publish",
        "content-type",
        "a",
        "-D",
        "publish",
        "content-type",
        "b",
    ]);
    assert!(
        out.stderr
            .contains("Error in PUBLISH properties: Duplicate property in property list"),
        "{out}"
    );
}

#[test]
fn v5_only_flags_at_another_level_are_refused() {
    let out = refused(&[
        "pub",
        "-t",
        "t",
        "-n",
        "-D",
        "publish",
        "content-type",
        "a",
        "-V",
        "311",
    ]);
    assert!(out.stderr.contains("-D properties are MQTT v5"), "{out}");
    let out = refused(&["sub", "-t", "t", "-x", "60"]);
    assert!(
        out.stderr
            .contains("-x (session expiry interval) is MQTT v5 only"),
        "{out}"
    );
    let out = refused(&["sub", "-t", "t", "-V", "5", "-x", "∞"]);
    assert!(
        out.stderr
            .contains("You must provide a client id if you are using an infinite session"),
        "{out}"
    );
    let out = refused(&["sub", "-t", "t", "-V", "6"]);
    assert!(
        out.stderr
            .contains("Invalid protocol version argument given."),
        "{out}"
    );
}

#[test]
fn rr_needs_topic_message_and_response_topic() {
    let out = refused(&["rr", "-t", "req", "-m", "x"]);
    assert!(
        out.stderr
            .contains("All of topic, message, and response topic must be supplied."),
        "{out}"
    );
    assert!(out.stderr.contains("Use 'tern rr --help'"), "{out}");
    let out = refused(&["rr", "-t", "req", "-e", "resp/#", "-m", "x"]);
    assert!(
        out.stderr.contains("Invalid response topic 'resp/#'"),
        "{out}"
    );
    let out = refused(&["rr", "-t", "req", "-e", "resp", "-m", "x", "-C", "1"]);
    assert!(out.stderr.contains("Unknown option '-C'."), "{out}");
}

#[test]
fn help_lists_the_v5_flags() {
    for cmd in ["pub", "sub", "rr"] {
        let out = run(tern([cmd, "--help"]));
        out.assert_code(0);
        let text = out.text();
        for needle in [
            "-D, --property",
            "-D publish user-property unit celsius",
            "-x secs",
            "mqttv5",
        ] {
            assert!(
                text.contains(needle),
                "tern {cmd} --help lacks {needle:?}:\n{text}"
            );
        }
    }
    let sub = run(tern(["sub", "--help"])).text();
    assert!(sub.contains("%P user properties"), "{sub}");
    let rr = run(tern(["rr", "--help"])).text();
    assert!(rr.contains("-e topic"), "{rr}");
}
