//! A firmware in the style of NodeMCU's `lua_examples/mqtt/mqtt_file.lua`, written here:
//! commands arrive as JSON messages and drive the module-level `file` API (open, write,
//! close, remove), `dofile` runs what was written, and `read` publishes a file's content in
//! 1 KiB pieces. Run unchanged under both firmware variants against a real mosquitto; the
//! test asserts what the script prints and what a subscriber receives.

mod run_support;

use run_support::{command_with, script, spawn};
use tern_testkit::Mosquitto;

const FIRMWARE: &str = r#"
local handlers = {}
local function dispatch(m, t, pl)
  if pl ~= nil and handlers[t] then handlers[t](m, pl) end
end

local function pubfile(m, filename)
  file.close()
  file.open(filename)
  repeat
    local pl = file.read(1024)
    if pl then m:publish("/xfer/out", pl, 1, 0) end
  until not pl
  file.close()
  m:publish("/xfer/out", "EOF", 1, 0)
end

handlers["/xfer/in"] = function(m, pl)
  local pack = sjson.decode(pl)
  if pack.cmd == "open" then file.open(pack.content, "w+")
  elseif pack.cmd == "write" then file.write(pack.content)
  elseif pack.cmd == "close" then file.close()
  elseif pack.cmd == "remove" then file.remove(pack.content)
  elseif pack.cmd == "run" then dofile(pack.content)
  elseif pack.cmd == "read" then pubfile(m, pack.content)
  elseif pack.cmd == "quit" then m:close()
  end
end

m = mqtt.Client()
m:on("connect", function(m)
  print("connected, heap " .. node.heap())
  m:subscribe("/xfer/in", 0, function(m) print("sub done") end)
end)
m:on("offline", function() print("offline") end)
m:on("message", dispatch)
m:connect("127.0.0.1", tonumber(arg[1]), 0, 1)
"#;

fn transfer(firmware: &str) {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    let flash = tempfile::tempdir().expect("a scratch directory");
    let fs = flash.path().to_string_lossy().into_owned();
    let mut out = broker
        .mosquitto_sub()
        .id("xfer-watch")
        .topic("/xfer/out")
        .qos(1)
        .count(3)
        .spawn();
    broker.wait_for_log("Sending SUBACK to xfer-watch");
    let mut tern = spawn(command_with(
        &["--firmware", firmware, "--fs", &fs],
        &script(FIRMWARE),
        &[&port],
    ));
    tern.wait_for_line("sub done");
    // Two 700-byte comment lines, so `read` takes two pieces; each command stays under the
    // ESP8266's 1 KiB `max_message_length` (a larger one would go to `overflow`).
    let filler = "x".repeat(700);
    let commands = [
        r#"{"cmd":"open","content":"test.lua"}"#.to_owned(),
        r#"{"cmd":"write","content":"print([[hello world]])\n"}"#.to_owned(),
        format!(r#"{{"cmd":"write","content":"--{filler}\n"}}"#),
        format!(r#"{{"cmd":"write","content":"--{filler}\n"}}"#),
        r#"{"cmd":"write","content":"print(\"hello2 world2\")\n"}"#.to_owned(),
        r#"{"cmd":"close","content":"test.lua"}"#.to_owned(),
        r#"{"cmd":"run","content":"test.lua"}"#.to_owned(),
        r#"{"cmd":"read","content":"test.lua"}"#.to_owned(),
    ];
    for c in &commands {
        broker
            .mosquitto_pub()
            .topic("/xfer/in")
            .message(c)
            .run()
            .assert_success();
    }
    tern.wait_for_line("hello2 world2");
    // The file arrives in 1024-byte pieces, then the end marker.
    let first = out.wait_for_line(|l| l.starts_with("print([[hello world]])"));
    assert_eq!(first, "print([[hello world]])", "firmware {firmware}");
    let eof = out.wait_for_line(|l| l == "EOF");
    assert_eq!(eof, "EOF");
    broker
        .mosquitto_pub()
        .topic("/xfer/in")
        .message(r#"{"cmd":"quit","content":"-"}"#)
        .run()
        .assert_success();
    let r = tern.finish();
    r.assert_ok().assert_lines(&[
        "connected, heap 40960",
        "sub done",
        "hello world",
        "hello2 world2",
        "offline",
    ]);
    let written = std::fs::read_to_string(flash.path().join("test.lua")).expect("the written file");
    assert_eq!(
        written,
        format!("print([[hello world]])\n--{filler}\n--{filler}\nprint(\"hello2 world2\")\n")
    );
}

#[test]
fn files_travel_over_mqtt_on_esp8266() {
    transfer("esp8266");
}

#[test]
fn files_travel_over_mqtt_on_esp32() {
    transfer("esp32");
}
