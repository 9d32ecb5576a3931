//! `tern pub` → mosquitto → `tern sub`: message sources (-m -f -s -l -n), QoS, -V 31, -L.

mod pubsub_support;

use pubsub_support::*;

fn args(broker: &Mosquitto, extra: &[&str]) -> Vec<String> {
    let mut v = at(broker);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn publish(broker: &Mosquitto, extra: &[&str]) -> Output {
    let mut cmd = tern(["pub"]);
    cmd.args(args(broker, extra));
    run(cmd)
}

#[test]
fn lines_arrive_in_order_at_every_qos() {
    let broker = MosquittoConfig::new().start();
    for qos in ["0", "1", "2"] {
        let id = format!("lines-q{qos}");
        let sub = subscribed(
            &broker,
            &id,
            args(&broker, &["-t", "l/#", "-q", qos, "-C", "4", "-v"]),
        );
        let mut cmd = tern(["pub"]);
        cmd.args(args(&broker, &["-t", "l/x", "-l", "-q", qos]));
        // Empty lines are empty messages, CR stays, a last line without newline still counts.
        run_with_input(cmd, "one\n\ntwo\r\nlast").assert_code(0);
        let out = sub.wait();
        out.assert_code(0);
        assert_eq!(
            out.text(),
            "l/x one\nl/x (null)\nl/x two\r\nl/x last\n",
            "qos {qos}"
        );
    }
}

#[test]
fn file_payload_arrives_byte_exact() {
    let broker = MosquittoConfig::new().start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all-bytes.bin");
    let payload: Vec<u8> = (0..=255u8).chain([0, b'\n', 0xff]).collect();
    std::fs::write(&file, &payload).unwrap();
    let hex_sub = subscribed(
        &broker,
        "hex",
        args(&broker, &["-t", "bin", "-C", "1", "-F", "%x"]),
    );
    let raw_sub = subscribed(
        &broker,
        "raw",
        args(&broker, &["-t", "bin", "-C", "1", "-q", "1"]),
    );
    publish(
        &broker,
        &["-t", "bin", "-q", "1", "-f", file.to_str().unwrap()],
    )
    .assert_code(0);
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex_sub.wait().assert_code(0).text(), format!("{hex}\n"));
    // Default output: the raw bytes and a newline, as mosquitto_sub.
    let mut expected = payload.clone();
    expected.push(b'\n');
    assert_eq!(raw_sub.wait().assert_code(0).stdout, expected);
}

#[test]
fn whole_stdin_and_null_messages_arrive_as_sent() {
    let broker = MosquittoConfig::new().start();
    let sub = subscribed(
        &broker,
        "whole",
        args(&broker, &["-t", "w", "-C", "2", "-F", "%l:%x"]),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(args(&broker, &["-t", "w", "-s", "-q", "2"]));
    run_with_input(cmd, b"a\nb\x00\n".to_vec()).assert_code(0);
    publish(&broker, &["-t", "w", "-n"]).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "5:610a62000a\n0:\n");
}

#[test]
fn repeat_publishes_the_message_n_times() {
    let broker = MosquittoConfig::new().start();
    let sub = subscribed(&broker, "rep", args(&broker, &["-t", "r", "-C", "3"]));
    publish(
        &broker,
        &[
            "-t",
            "r",
            "-m",
            "again",
            "--repeat",
            "3",
            "--repeat-delay",
            "0.01",
            "-q",
            "1",
        ],
    )
    .assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "again\nagain\nagain\n");
}

#[test]
fn mqtt_31_clients_round_trip() {
    let broker = MosquittoConfig::new().start();
    let sub = subscribed(
        &broker,
        "v31-sub",
        args(&broker, &["-V", "31", "-t", "v", "-C", "1", "-q", "1"]),
    );
    publish(
        &broker,
        &[
            "-V", "mqttv31", "-i", "v31-pub", "-t", "v", "-m", "old", "-q", "1",
        ],
    )
    .assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "old\n");
    let log = broker.log();
    // mosquitto logs the protocol as p1 (3.1), p2 (3.1.1).
    for id in ["v31-sub", "v31-pub"] {
        assert!(
            log.contains(&format!("as {id} (p1,")),
            "{id} not on MQTT 3.1:\n{log}"
        );
    }
}

#[test]
fn url_supplies_credentials_host_port_and_topic() {
    let broker = MosquittoConfig::new()
        .allow_anonymous(false)
        .user("url-user", "s3cret")
        .start();
    let url = format!(
        "mqtt://url-user:s3cret@127.0.0.1:{}/from/url",
        broker.port()
    );
    let sub = subscribed(&broker, "url-sub", ["-L", &url, "-C", "1", "-v"]);
    run({
        let mut c = tern(["pub", "-L", &url, "-m", "via url"]);
        c.arg("-q").arg("1");
        c
    })
    .assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "from/url via url\n");
}

#[test]
fn filtered_out_topics_are_not_printed_or_counted() {
    let broker = MosquittoConfig::new().start();
    let sub = subscribed(
        &broker,
        "filter",
        args(&broker, &["-t", "f/#", "-T", "f/skip/#", "-C", "1", "-v"]),
    );
    publish(&broker, &["-t", "f/skip/1", "-m", "no"]).assert_code(0);
    publish(&broker, &["-t", "f/keep", "-m", "yes"]).assert_code(0);
    assert_eq!(sub.wait().assert_code(0).text(), "f/keep yes\n");
}

/// 100,000 lines, so packet ids wrap at least once; every line must arrive, in order, and
/// the publisher must wait for all completions before it disconnects.
fn hundred_thousand_lines(qos: &str) {
    let broker = MosquittoConfig::new()
        .max_inflight_messages(1000)
        .max_queued_messages(200_000)
        .start();
    let n = 100_000;
    let input: String = (1..=n).map(|i| format!("{i}\n")).collect();
    let id = format!("bulk-q{qos}");
    let count = n.to_string();
    let sub = subscribed(
        &broker,
        &id,
        args(&broker, &["-t", "bulk", "-q", qos, "-C", &count]),
    );
    let mut cmd = tern(["pub"]);
    cmd.args(args(&broker, &["-t", "bulk", "-l", "-q", qos]));
    // A debug build on two shared cores needs ~15-25 s for 100,000 QoS 2 round trips.
    let limit = std::time::Duration::from_secs(120);
    spawn(cmd, Some(input.clone().into_bytes()))
        .wait_within(limit)
        .assert_code(0);
    let out = sub.wait_within(limit);
    out.assert_code(0);
    let text = out.text();
    assert_eq!(text.lines().count(), n, "lines received at QoS {qos}");
    assert!(
        text == input,
        "QoS {qos}: lines arrived out of order or altered"
    );
}

#[test]
fn hundred_thousand_lines_at_qos_1_all_arrive() {
    hundred_thousand_lines("1");
}

#[test]
fn hundred_thousand_lines_at_qos_2_all_arrive() {
    hundred_thousand_lines("2");
}

/// QoS 0, 100,000 lines, nobody subscribed: the publisher completes every line and exits.
/// (Its completions once outnumbered what the client holds for an application that has not
/// read them yet; the oldest were dropped, and the publisher waited for them forever.)
#[test]
fn hundred_thousand_lines_at_qos_0_publish_only_exit() {
    let broker = MosquittoConfig::stock().start();
    let input: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    let mut cmd = tern(["pub"]);
    cmd.args(args(&broker, &["-t", "bulk0", "-l", "-q", "0"]));
    spawn(cmd, Some(input.into_bytes()))
        .wait_within(std::time::Duration::from_secs(60))
        .assert_code(0);
}
