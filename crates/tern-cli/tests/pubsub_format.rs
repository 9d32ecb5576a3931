//! `tern sub` output: default, `-v`, `-N`, and `-F` with %t %p %q %r %l %x %X %j %J %I %U, flags
//! and escapes.

mod pubsub_support;

use pubsub_support::*;

fn with(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

/// Subscribes with `sub_args`, publishes `payload` to `fmt/t` at QoS 1 retained=false, and
/// returns what the subscriber printed.
fn one(sub_args: &[&str], payload: &str) -> Output {
    let broker = MosquittoConfig::new().start();
    let mut args = vec!["-t", "fmt/t", "-C", "1", "-q", "2"];
    args.extend_from_slice(sub_args);
    let sub = subscribed(&broker, "fmt", with(&broker, &args));
    let mut cmd = tern(["pub"]);
    cmd.args(with(&broker, &["-t", "fmt/t", "-q", "1", "-m", payload]));
    run(cmd).assert_code(0);
    sub.wait()
}

#[test]
fn message_fields_print_as_mosquitto_documents() {
    let out = one(&["-F", "%t|%p|%q|%r|%l|%x|%X|%%|%m"], "hi\u{e9}");
    assert_eq!(
        out.assert_code(0).text(),
        "fmt/t|hi\u{e9}|1|0|4|6869c3a9|6869C3A9|%|1\n"
    );
}

#[test]
fn widths_escapes_and_no_newline() {
    let out = one(&["-N", "-F", r"[%-7t][%6l][%04l][%.3t]\t\\end"], "abc");
    assert_eq!(
        out.assert_code(0).text(),
        "[fmt/t  ][     3][0003][fmt]\t\\end"
    );
}

#[test]
fn json_format_escapes_payload() {
    let out = one(&["-F", "%j"], "a\"b\\c\td");
    let text = out.assert_code(0).text();
    assert!(text.starts_with("{\"tst\":\""), "{text}");
    assert!(
        text.ends_with(
            "\",\"topic\":\"fmt/t\",\"qos\":1,\"retain\":0,\"payloadlen\":7,\
             \"mid\":1,\"payload\":\"a\\\"b\\\\c\\td\"}\n"
        ),
        "{text}"
    );
}

#[test]
fn raw_json_format_inlines_a_json_payload() {
    let out = one(&["-F", "%J"], r#"{"t":21.5}"#);
    let text = out.assert_code(0).text();
    assert!(
        text.ends_with("\"payloadlen\":10,\"mid\":1,\"payload\":{\"t\":21.5}}\n"),
        "{text}"
    );
}

#[test]
fn time_sequences_print_iso_and_unix_time() {
    let out = one(&["-F", "%I|%U|@Y"], "x");
    let text = out.assert_code(0).text();
    let parts: Vec<&str> = text.trim_end().split('|').collect();
    assert_eq!(parts.len(), 3, "{text}");
    // 2016-08-10T09:47:38+0100
    assert_eq!(parts[0].len(), 24, "{text}");
    assert_eq!(&parts[0][10..11], "T", "{text}");
    let (secs, nanos) = parts[1].split_once('.').expect("secs.nanos");
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000, "{text}");
    assert_eq!(nanos.len(), 9, "{text}");
    assert_eq!(parts[2], &parts[0][..4], "{text}");
}

#[test]
fn verbose_prints_topic_and_payload() {
    let out = one(&["-v"], "payload with spaces");
    assert_eq!(out.assert_code(0).text(), "fmt/t payload with spaces\n");
}

#[test]
fn bad_format_is_a_usage_error() {
    let out = run(tern(["sub", "-t", "x", "-F", "%Q"]));
    out.assert_code(2);
    assert!(
        out.stderr.contains("Invalid format specifier 'Q'."),
        "{out}"
    );
}
