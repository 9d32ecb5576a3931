//! The seed's main example, run unchanged but for the broker address, against mosquitto.

mod run_support;

use run_support::{command, example, run, run_command};
use tern_testkit::Mosquitto;

#[test]
fn seed_example_connects_subscribes_publishes_and_receives() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    let r = run(&example("seed_example.lua"), &["127.0.0.1", &port]);
    r.assert_ok();
    // The one-shot connect() callback and the on("connect") handler both print "connected".
    // Completion callbacks fire in call order, as on the device: subscribe, then publish.
    let lines = r.lines();
    assert_eq!(
        lines,
        [
            "connected",
            "connected",
            "subscribe success",
            "sent",
            "/topic:",
            "hello",
            "offline"
        ],
        "{r}"
    );
}

#[test]
fn seed_example_takes_the_broker_from_the_environment() {
    let broker = Mosquitto::start_default();
    let mut cmd = command(&example("seed_example.lua"), &[]);
    cmd.env("MQTT_HOST", "127.0.0.1")
        .env("MQTT_PORT", broker.port().to_string());
    let r = run_command(cmd);
    r.assert_ok()
        .assert_has_line("hello")
        .assert_has_line("offline");
}

#[test]
fn seed_example_reports_a_missing_broker_through_its_failure_callback() {
    let port = tern_testkit::closed_port().to_string();
    let r = run(&example("seed_example.lua"), &["127.0.0.1", &port]);
    r.assert_ok().assert_lines(&["failed reason: -5"]);
}
