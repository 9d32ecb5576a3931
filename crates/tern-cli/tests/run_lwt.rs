//! The last will: published with its QoS and retain flag when the client vanishes, not after
//! `close()`.

mod run_support;

use run_support::run_src;
use tern_testkit::Mosquitto;

const VANISH: &str = r#"
local m = mqtt.Client("mortal", 60)
m:lwt("/lwt/mortal", "gone", tonumber(arg[2]), tonumber(arg[3]))
m:connect("127.0.0.1", tonumber(arg[1]), function(c)
  print("connected")
  if arg[4] == "close" then c:close() else os.exit(0) end
end)
"#;

fn watch(broker: &Mosquitto, id: &str) -> tern_testkit::RunningTool {
    let sub = broker
        .mosquitto_sub()
        .id(id)
        .topic("/lwt/#")
        .qos(2)
        .count(1)
        .arg("-F")
        .arg("%q %r %p")
        .spawn();
    broker.wait_for_log(&format!("Sending SUBACK to {id}"));
    sub
}

#[test]
fn the_will_is_published_with_its_qos_and_retain_flag() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    let mut live = watch(&broker, "live");
    // os.exit() ends the process without DISCONNECT, like a device losing power.
    run_src(VANISH, &[&port, "1", "1", "exit"])
        .assert_ok()
        .assert_lines(&["connected"]);
    // Delivered live at QoS 1 (a 3.1.1 subscriber sees retain 0 on live messages)...
    live.wait_for_line(|l| l == "1 0 gone");
    // ...and retained for later subscribers.
    let later = broker
        .mosquitto_sub()
        .topic("/lwt/mortal")
        .qos(2)
        .count(1)
        .arg("-F")
        .arg("%q %r %p")
        .run();
    later.assert_success();
    assert_eq!(later.stdout.trim(), "1 1 gone", "{later}");
}

#[test]
fn the_seeds_default_will_is_qos_0_and_not_retained() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    let mut live = watch(&broker, "live");
    run_src(
        r#"
        local m = mqtt.Client("mortal", 60)
        m:lwt("/lwt/mortal", "offline")
        m:connect("127.0.0.1", tonumber(arg[1]), function() os.exit(0) end)
        "#,
        &[&port],
    )
    .assert_ok();
    live.wait_for_line(|l| l == "0 0 offline");
}

#[test]
fn close_sends_disconnect_so_no_will_is_published() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    let mut live = watch(&broker, "live");
    run_src(VANISH, &[&port, "1", "0", "close"])
        .assert_ok()
        .assert_lines(&["connected"]);
    // tern has exited, its DISCONNECT handled: if a will were coming it would come first.
    broker
        .mosquitto_pub()
        .topic("/lwt/marker")
        .message("marker")
        .qos(1)
        .run()
        .assert_success();
    // The watcher prints one message (count 1) and exits: it must be the marker.
    live.wait_for_line(|l| l.ends_with(" marker"));
}
