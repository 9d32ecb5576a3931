//! Parity with mosquitto_sub / mosquitto_pub 2.0 at MQTT 5, with the real tools as the
//! control: each test runs the same command line through mosquitto's client and through
//! tern against one test-started mosquitto, and asserts the same standard output, the same
//! standard error (the tool's name aside) and the same exit status (usage errors aside:
//! tern's exit 2 is documented). Each pins a difference that was found and fixed.

mod pubsub_support;

use std::process::Command;

use pubsub_support::*;
use tern_testkit::require_mosquitto_tool;

/// A mosquitto client command aimed at `broker`.
fn mosquitto(tool: &str, broker: &Mosquitto, args: &[&str]) -> Command {
    let mut cmd = Command::new(require_mosquitto_tool(tool));
    cmd.args(at(broker));
    cmd.args(args);
    cmd
}

/// Publishes with mosquitto_pub and asserts it succeeded.
fn publish(broker: &Mosquitto, args: &[&str]) {
    let out = run(mosquitto("mosquitto_pub", broker, args));
    out.assert_code(0);
}

/// `"tst":"<stamp>"` (or `"tst":<TAB>"<stamp>"` under `--pretty`) replaced by `"tst":TST`,
/// after checking the stamp has mosquitto_sub 2.0's exact shape,
/// `2026-01-02T03:04:05.123456Z+0000`.
fn without_stamps(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let mut rest: &str = &text;
    let mut done = String::new();
    while let Some(at) = rest.find("\"tst\":") {
        let (head, tail) = rest.split_at(at + "\"tst\":".len());
        done.push_str(head);
        let tail = tail.strip_prefix('\t').unwrap_or(tail);
        let stamp = tail
            .strip_prefix('"')
            .and_then(|t| t.split_once('"'))
            .unwrap_or_else(|| panic!("tst is not a string in {text}"));
        let b = stamp.0.as_bytes();
        assert!(
            b.len() == 32
                && b[10] == b'T'
                && b[19] == b'.'
                && b[26] == b'Z'
                && matches!(b[27], b'+' | b'-')
                && b[20..26].iter().all(u8::is_ascii_digit),
            "tst {:?} is not shaped as mosquitto_sub's in {text}",
            stamp.0
        );
        done.push_str("TST");
        rest = stamp.1;
    }
    done.push_str(rest);
    done
}

/// Runs `mosquitto_sub ARGS` and `tern sub ARGS` side by side (each with its own client id),
/// waits for both SUBACKs, runs `then`, and asserts both print and exit alike.
fn subs_agree(broker: &Mosquitto, name: &str, args: &[&str], then: impl FnOnce()) -> String {
    let (mid, tid) = (format!("mosq-{name}"), format!("tern-{name}"));
    let mut m = mosquitto("mosquitto_sub", broker, &["-i", &mid]);
    m.args(args);
    let control = spawn(m, None);
    broker.wait_for_log(&format!("Sending SUBACK to {mid}"));
    let ours = subscribed(
        broker,
        &tid,
        at(broker)
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied()),
    );
    then();
    let control = control.wait();
    let ours = ours.wait();
    let expected = without_stamps(&control.stdout);
    assert_eq!(
        without_stamps(&ours.stdout),
        expected,
        "mosquitto_sub: {control}\ntern: {ours}"
    );
    assert_eq!(
        ours.stderr,
        control.stderr.replace("mosquitto_sub", "tern sub"),
        "mosquitto_sub: {control}\ntern: {ours}"
    );
    assert_eq!(
        ours.code(),
        control.code(),
        "mosquitto_sub: {control}\ntern: {ours}"
    );
    expected
}

/// `-F %j` at MQTT 5: `tst` with mosquitto's `Z` before the zone, `mid` at QoS 1/2, the
/// `properties` object with the subscription identifier first and the message expiry last
/// (as mosquitto forwards them), and `null` for an empty payload.
#[test]
fn json_output_is_mosquitto_subs() {
    let broker = MosquittoConfig::new().start();
    let args = [
        "-V",
        "5",
        "-q",
        "1",
        "-t",
        "pj/#",
        "-C",
        "4",
        "-W",
        "20",
        "-F",
        "%j",
        "-D",
        "subscribe",
        "subscription-identifier",
        "9",
    ];
    let out = subs_agree(&broker, "json", &args, || {
        publish(
            &broker,
            &[
                "-V",
                "5",
                "-q",
                "1",
                "-t",
                "pj/1",
                "-m",
                "a \"q\" \\ \u{e9}\t\x01",
                "-D",
                "publish",
                "payload-format-indicator",
                "1",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-D",
                "publish",
                "response-topic",
                "pj/re",
                "-D",
                "publish",
                "correlation-data",
                "c1",
                "-D",
                "publish",
                "user-property",
                "k",
                "v1",
                "-D",
                "publish",
                "user-property",
                "k",
                "v2",
                "-D",
                "publish",
                "message-expiry-interval",
                "120",
            ],
        );
        publish(&broker, &["-V", "5", "-q", "0", "-t", "pj/2", "-n"]);
        publish(
            &broker,
            &["-V", "5", "-q", "1", "-t", "pj/3", "-m", "{\"x\":1}"],
        );
        // A payload with a NUL: mosquitto_sub's JSON string stops there.
        let nul = [
            "-V",
            "5",
            "-t",
            "pj/4",
            "-s",
            "-D",
            "publish",
            "correlation-data",
            "c",
        ];
        run_with_input(mosquitto("mosquitto_pub", &broker, &nul), b"a\0b".to_vec()).assert_code(0);
    });
    // The control really exercised what this test is about.
    assert!(out.contains("\"mid\":"), "{out}");
    assert!(out.contains("\"payload\":null"), "{out}");
    assert!(
        out.contains("\"properties\":{\"subscription-identifier\":9,\"payload-format-indicator\""),
        "{out}"
    );
    assert!(out.contains("\"message-expiry-interval\":"), "{out}");
    assert!(
        out.contains(
            "\"payloadlen\":3,\"properties\":{\"subscription-identifier\":9,\"correlation-data\":\"c\"},\"payload\":\"a\"}"
        ),
        "{out}"
    );
}

/// `-F %J` writes the payload back as cJSON prints it (minified, numbers as `%g`), `--pretty`
/// is cJSON's tab layout, and a payload that is not JSON is reported while the rest of the
/// line is still printed.
#[test]
fn raw_json_and_pretty_are_cjsons() {
    let broker = MosquittoConfig::new().start();
    let payload = r#" {"a": [1, {"b": 2.50, "c": []}, {}], "d": 1e3, "e": -0.0, "f": 12345678901234567890, "g": "\u00e9\/\u0001", "h": [true, null]} "#;
    let out = subs_agree(
        &broker,
        "rawjson",
        &["-V", "5", "-t", "pr/#", "-C", "2", "-W", "20", "-F", "<%J>"],
        || {
            publish(&broker, &["-V", "5", "-t", "pr/1", "-m", payload]);
            publish(&broker, &["-V", "5", "-t", "pr/2", "-m", "{not json"]);
        },
    );
    assert!(out.contains("\"d\":1000,\"e\":-0,"), "{out}");
    assert!(out.contains("<>\n"), "{out}");
    let out = subs_agree(
        &broker,
        "pretty",
        &[
            "-V", "5", "-q", "1", "-t", "pp/#", "-C", "2", "-W", "20", "-F", "%J", "--pretty",
        ],
        || {
            publish(
                &broker,
                &[
                    "-V",
                    "5",
                    "-t",
                    "pp/1",
                    "-m",
                    payload,
                    "-D",
                    "publish",
                    "user-property",
                    "a",
                    "b",
                ],
            );
            publish(&broker, &["-V", "5", "-t", "pp/2", "-q", "1", "-m", "[]"]);
        },
    );
    assert!(out.contains("\n\t\"topic\":\t\"pp/1\",\n"), "{out}");
}

/// Widths as mosquitto_sub applies them: they cut `%p` and `%x` (hex printing whole bytes
/// within half the width), `%q %r %U %j %D %P` ignore them, `0` pads an absent numeric v5
/// property, and `-` is left alignment with spaces.
#[test]
fn widths_and_padding_are_mosquitto_subs() {
    let broker = MosquittoConfig::new().start();
    let format = "[%-5p][%05p][%3p][%3x][%-9x][%07X][%.2p][%5q][%-3r][%04m][%3A][%05E][%-05S]\
                  [%-4C][%4R][%.3C][%6F][%-6l][%08D][%9P][%-8t][%.3t][%10.4t]";
    subs_agree(
        &broker,
        "widths",
        &[
            "-V", "mqttv5", "-t", "pw/#", "-C", "2", "-W", "20", "-F", format,
        ],
        || {
            publish(
                &broker,
                &[
                    "-V",
                    "5",
                    "-t",
                    "pw/1",
                    "-m",
                    "hello world",
                    "-D",
                    "publish",
                    "content-type",
                    "text",
                    "-D",
                    "publish",
                    "payload-format-indicator",
                    "1",
                    "-D",
                    "publish",
                    "correlation-data",
                    "cd",
                    "-D",
                    "publish",
                    "user-property",
                    "a",
                    "b",
                ],
            );
            publish(&broker, &["-V", "5", "-t", "pw/22", "-m", "\u{ff}\u{1}Ab"]);
        },
    );
}

/// `-v -N`: an empty payload prints nothing at all (not `topic (null)`).
#[test]
fn verbose_without_eol_skips_empty_payloads() {
    let broker = MosquittoConfig::new().start();
    let out = subs_agree(
        &broker,
        "vn",
        &["-V", "5", "-v", "-N", "-t", "pv/#", "-C", "3", "-W", "20"],
        || {
            publish(&broker, &["-V", "5", "-t", "pv/1", "-m", "one"]);
            publish(&broker, &["-V", "5", "-t", "pv/2", "-n"]);
            publish(&broker, &["-V", "5", "-t", "pv/3", "-m", "three"]);
        },
    );
    assert_eq!(out, "pv/1 onepv/3 three");
}

/// `-D` mistakes are refused in mosquitto_pub's words and layout (a blank line of their own
/// before the pointer to `--help`; a duplicate property in mosquitto's sentence, without
/// `Error: `); tern exits 2 (documented) where mosquitto_pub exits 1.
#[test]
fn property_mistakes_are_refused_in_mosquittos_words() {
    let broker = MosquittoConfig::new().start();
    let cases: &[&[&str]] = &[
        &["-D", "publish", "receive-maximum", "3"],
        &["-D", "connect", "topic-alias", "3"],
        &["-D", "publish", "subscription-identifier", "3"],
        &["-D", "publish", "bogus", "1"],
        &["-D", "suback", "reason-string", "x"],
        &["-D", "pingreq", "user-property", "a", "b"],
        &["-D", "connack", "user-property", "a", "b"],
        &["-D", "connack", "topic-alias", "1"],
        &["-D", "bogus", "content-type", "1"],
        &["-D", "publish", "user-property", "a"],
        &["-D", "publish", "payload-format-indicator", "256"],
        &["-D", "publish", "message-expiry-interval", "-1"],
        &[
            "-D",
            "publish",
            "content-type",
            "a",
            "-D",
            "publish",
            "content-type",
            "b",
        ],
        &[
            "-D",
            "connect",
            "receive-maximum",
            "1",
            "-D",
            "connect",
            "receive-maximum",
            "2",
        ],
    ];
    for case in cases {
        let mut args = vec!["-V", "5", "-t", "pe/1", "-m", "x"];
        args.extend_from_slice(case);
        let control = run(mosquitto("mosquitto_pub", &broker, &args));
        let mut cmd = tern(["pub"]);
        cmd.args(at(&broker)).args(&args);
        let ours = run(cmd);
        control.assert_code(1);
        ours.assert_code(2);
        assert!(
            control.stderr.contains("Use 'mosquitto_pub --help'"),
            "{case:?}: {control}"
        );
        assert_eq!(
            ours.stderr,
            control.stderr.replace("mosquitto_pub", "tern pub"),
            "{case:?}"
        );
    }
}

/// Command-line mistakes `tern sub` / `tern pub` share with mosquitto's tools are refused in
/// their words (topics without tern's detail, counts and timeouts as atoi(3) read them, the
/// blank line mosquitto adds after some); a file that cannot be opened is mosquitto_pub's two
/// lines and exit 1.
#[test]
fn usage_mistakes_are_refused_in_mosquittos_words() {
    let broker = MosquittoConfig::new().start();
    let cases: &[(&str, &[&str])] = &[
        ("sub", &["-t", "a/#/b"]),
        ("sub", &["-t", "a/#", "-T", "x/#/y"]),
        ("sub", &["-t", "a", "-U", "a/#/x"]),
        ("sub", &["-t", "a", "-C", "0"]),
        ("sub", &["-t", "a", "-C", "abc"]),
        ("sub", &["-t", "a", "-W", "-1"]),
        ("sub", &["-t", "a", "-x", "-2"]),
        ("sub", &["-t", "a", "-x", "soon"]),
        ("sub", &["-t", "a", "-F", "%0-3t"]),
        ("sub", &["-t", "a", "-F", "[%--3p]"]),
        ("sub", &["-t", "a", "-k", "3"]),
        ("sub", &["-L", "mqtt://127.0.0.1:1"]),
        ("sub", &["-t", "a", "-I", "pre", "-c"]),
        ("sub", &["-t", "a", "--proxy", "http://h"]),
        ("sub", &["-t", "a", "--proxy", "socks5h://"]),
        ("sub", &["-t", "a", "--random-filter", "0.05"]),
        ("sub", &["-t", "a", "--random-filter", "1001"]),
        ("sub", &["-t", "a", "-i", "x", "-I", "y"]),
        ("sub", &["-t", "a", "-V", "6"]),
        ("sub", &["-L", "foo://h/a"]),
        ("sub", &["-t", "a", "--will-topic", "w", "--will-qos", "3"]),
        (
            "sub",
            &[
                "-t",
                "a",
                "-x",
                "3",
                "-D",
                "connect",
                "session-expiry-interval",
                "5",
            ],
        ),
        ("sub", &["-t", "a", "-W"]),
        ("sub", &["-t", "a", "--will-topic"]),
        ("sub", &["-t", "a", "-V"]),
        ("sub", &["-t"]),
        ("pub", &["-t", "a/+", "-m", "x"]),
        ("pub", &["-t", "a", "-m", "x", "-n"]),
        ("pub", &["-t", "a", "-m", "x", "--repeat", "0"]),
        ("pub", &["-t", "a", "-m", "x", "--repeat-delay", "-2"]),
    ];
    for (cmd, case) in cases {
        let mut args = vec!["-V", "5"];
        args.extend_from_slice(case);
        let tool = format!("mosquitto_{cmd}");
        let control = run(mosquitto(&tool, &broker, &args));
        let mut ours = tern([cmd]);
        ours.args(at(&broker)).args(&args);
        let ours = run(ours);
        control.assert_code(1);
        ours.assert_code(2);
        assert!(control.stderr.starts_with("Error"), "{case:?}: {control}");
        assert_eq!(
            ours.stderr,
            control.stderr.replace(&tool, &format!("tern {cmd}")),
            "{case:?}"
        );
    }
    let missing = ["-V", "5", "-t", "a", "-f", "/nonexistent/tern-parity"];
    let control = run(mosquitto("mosquitto_pub", &broker, &missing));
    let mut ours = tern(["pub"]);
    ours.args(at(&broker)).args(missing);
    let ours = run(ours);
    control.assert_code(1);
    ours.assert_code(1);
    assert_eq!(ours.stderr, control.stderr);
    // -s with nothing on standard input sends nothing.
    let empty = ["-V", "5", "-t", "a", "-s"];
    let control = run_with_input(mosquitto("mosquitto_pub", &broker, &empty), Vec::new());
    let mut ours = tern(["pub"]);
    ours.args(at(&broker)).args(empty);
    let ours = run_with_input(ours, Vec::new());
    control.assert_code(1);
    ours.assert_code(1);
    assert_eq!(ours.stderr, control.stderr);
}

/// One request/response through `rr` (mosquitto_rr or tern rr, `args` after the broker's
/// address): a mosquitto_sub/mosquitto_pub responder answers on the request's response topic,
/// echoing its correlation data when it has some. Returns what rr printed and how it exited,
/// and the request as the responder saw it.
fn rr_round(broker: &Mosquitto, id: &str, mut rr: Command) -> (Output, String) {
    let listener = spawn(
        mosquitto(
            "mosquitto_sub",
            broker,
            &[
                "-i",
                id,
                "-V",
                "5",
                "-t",
                "rq/x",
                "-C",
                "1",
                "-W",
                "20",
                "-F",
                "%R\t%D\t%p",
            ],
        ),
        None,
    );
    broker.wait_for_log(&format!("Sending SUBACK to {id}"));
    rr.args(at(broker))
        .args(RR_ARGS)
        .args(["-i", &format!("{id}-rr")]);
    let rr = spawn(rr, None);
    let seen = listener.wait().assert_code(0).text();
    let mut fields = seen.trim_end_matches('\n').split('\t');
    let (to, corr) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
    let mut reply = vec![
        "-V",
        "5",
        "-t",
        to,
        "-m",
        "pong",
        "-D",
        "publish",
        "content-type",
        "ct",
    ];
    if !corr.is_empty() {
        reply.extend(["-D", "publish", "correlation-data", corr]);
    }
    publish(broker, &reply);
    (rr.wait(), seen)
}

const RR_ARGS: [&str; 12] = [
    "-V",
    "5",
    "-t",
    "rq/x",
    "-e",
    "rq/x/re",
    "-m",
    "ping",
    "-W",
    "20",
    "-F",
    "%t|%p|%D|%C|%j",
];

/// `tern rr` sends the request mosquitto_rr sends (the response topic, no correlation data
/// of its own) and prints the response as it does.
#[test]
fn request_and_response_are_mosquitto_rrs() {
    let broker = MosquittoConfig::new().start();
    let (control, control_seen) = rr_round(
        &broker,
        "resp-m",
        Command::new(require_mosquitto_tool("mosquitto_rr")),
    );
    let (ours, ours_seen) = rr_round(&broker, "resp-t", tern(["rr"]));
    assert_eq!(ours_seen, control_seen, "the request differs");
    assert_eq!(control_seen, "rq/x/re\t\tping\n");
    control.assert_code(0);
    ours.assert_code(0);
    assert_eq!(
        without_stamps(&ours.stdout),
        without_stamps(&control.stdout),
        "mosquitto_rr: {control}\ntern: {ours}"
    );
    assert_eq!(ours.stderr, control.stderr);
}
