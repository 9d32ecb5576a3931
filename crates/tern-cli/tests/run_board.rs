//! The simulated board under `tern run --sim`: the acceptance firmware against a real
//! mosquitto (LED driven by messages, a button interrupt, sensor JSON on a timer, a Wi-Fi
//! drop and return survived, the will published at the drop), the schedule of a `--sim` file,
//! the default board, and the device's errors for bad arguments.

mod run_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use run_support::{RUN_TIMEOUT_SECS, Run, Spawned, example, run_command, run_src, script, spawn};
use tern_testkit::Mosquitto;

/// How long a line from the firmware is waited for.
const LINE_WAIT: Duration = Duration::from_secs(20);

/// A `tern run` with stdin, stdout and stderr piped: commands go in, lines come out.
type Board = Spawned;

/// Starts `tern run ARGS` with its stdin piped for board commands.
fn board(args: &[&str]) -> Board {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.arg("run")
        .arg("--timeout")
        .arg(RUN_TIMEOUT_SECS.to_string())
        .args(args)
        .stdin(Stdio::piped());
    spawn(cmd).line_wait(LINE_WAIT)
}

/// Writes a `--sim` file.
fn sim_file(json: &str) -> String {
    let lua = script("-- unused");
    let path = lua.with_extension("json");
    std::fs::write(&path, json).expect("cannot write the sim file");
    path.display().to_string()
}

/// Panics unless `want` appear in `lines` in this order (other lines may come between).
#[track_caller]
fn assert_in_order(lines: &[&str], want: &[&str], context: &dyn std::fmt::Display) {
    let mut it = lines.iter();
    for w in want {
        assert!(
            it.any(|l| l == w),
            "{w:?} missing or out of order (want {want:?})\n{context}"
        );
    }
}

fn trace_lines(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("trace "))
        // Drop the time stamp.
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_owned()))
        .collect()
}

/// True when `line` is `home/node1/sensors` with this JSON (sjson's key order is the Lua
/// table's, so the text is compared as JSON).
fn is_sensors(line: &str, want: &serde_json::Value) -> bool {
    line.strip_prefix("home/node1/sensors ")
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .is_some_and(|v| &v == want)
}

#[test]
fn the_firmware_drives_its_board_and_survives_a_wifi_drop_and_a_restart() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    let mut sub = broker
        .mosquitto_sub()
        .id("watch")
        .topic("home/#")
        .qos(1)
        .arg("-v")
        .timeout(LINE_WAIT)
        .spawn();
    broker.wait_for_log("Sending SUBACK to watch");
    let sim = sim_file(r#"{"wifi": {"connect_ms": 50}, "chipid": 4242}"#);
    let flash = tempfile::tempdir().expect("cannot create the flash directory");
    let fw = example("board_firmware.lua");
    let mut board = board(&[
        "--sim",
        &sim,
        "--trace",
        "all",
        "--fs",
        flash.path().to_str().expect("a UTF-8 path"),
        fw.to_str().expect("a UTF-8 path"),
        "127.0.0.1",
        &port,
        "200",
    ]);

    // First boot: the settings are written to flash; Wi-Fi, then MQTT with the will set.
    board.wait_for_line("settings written");
    board.wait_for_line("mqtt up");
    sub.wait_for_line(|l| l == "home/node1/status online");
    broker.wait_for_log("Sending SUBACK to node1");

    // A message drives the LED, whose state is reported.
    broker
        .mosquitto_pub()
        .topic("home/node1/led")
        .message("on")
        .qos(1)
        .run()
        .assert_success();
    board.wait_for_line("led on");
    sub.wait_for_line(|l| l == "home/node1/led/state on");

    // The button (a falling edge on pin 3) is published.
    board.send("gpio 3 0");
    board.wait_for_line("button 0");
    sub.wait_for_line(|l| l == "home/node1/button pressed");

    // Sensor readings arrive as JSON (sjson) on the timer, and follow the simulation.
    let first = serde_json::json!({"temp": 21.5, "humi": 45, "adc": 512});
    sub.wait_for_line(|l| is_sensors(l, &first));
    board.send("dht 25 50");
    board.send("adc 700");
    let changed = serde_json::json!({"temp": 25, "humi": 50, "adc": 700});
    sub.wait_for_line(|l| is_sensors(l, &changed));

    // The access point goes away: Wi-Fi event, then MQTT offline; the broker publishes the will.
    board.send("wifi drop");
    board.wait_for_line("mqtt offline");
    sub.wait_for_line(|l| l == "home/node1/status offline");

    // It comes back: the station joins again and the firmware reconnects by itself.
    board.send("wifi up");
    board.wait_for_line("mqtt up");
    sub.wait_for_line(|l| l == "home/node1/status online");
    // Still working after the return.
    broker
        .mosquitto_pub()
        .topic("home/node1/led")
        .message("off")
        .qos(1)
        .run()
        .assert_success();
    sub.wait_for_line(|l| l == "home/node1/led/state off");
    broker
        .mosquitto_pub()
        .topic("home/node1/led")
        .message("on")
        .qos(1)
        .run()
        .assert_success();
    sub.wait_for_line(|l| l == "home/node1/led/state on");

    // A restart: the connection ends as at a power loss (the will), the second boot reads
    // its settings back (the LED comes back on), joins and connects again.
    broker
        .mosquitto_pub()
        .topic("home/node1/restart")
        .message("now")
        .qos(1)
        .run()
        .assert_success();
    board.wait_for_line("restarting");
    sub.wait_for_line(|l| l == "home/node1/status offline");
    board.wait_for_line("settings loaded");
    board.wait_for_line("mqtt up");
    sub.wait_for_line(|l| l == "home/node1/status online");
    // The board kept its state over the reboot (pin 3 is still low) and stdin drives the
    // new boot: a release and a press publish again.
    board.send("gpio 3 1");
    board.send("gpio 3 0");
    board.wait_for_line("button 0");
    sub.wait_for_line(|l| l == "home/node1/button pressed");

    // Killed like a board losing power: the broker publishes the will again.
    let run = board.stop();
    sub.wait_for_line(|l| l == "home/node1/status offline");
    let out = sub.kill();
    // The broker's side, sensor readings aside: exactly this sequence.
    let seen: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("home/node1/sensors "))
        .collect();
    assert_eq!(
        seen,
        [
            "home/node1/status online",
            "home/node1/led on",
            "home/node1/led/state on",
            "home/node1/button pressed",
            "home/node1/status offline",
            "home/node1/status online",
            "home/node1/led off",
            "home/node1/led/state off",
            "home/node1/led on",
            "home/node1/led/state on",
            "home/node1/restart now",
            "home/node1/status offline",
            "home/node1/status online",
            "home/node1/button pressed",
            "home/node1/status offline",
        ],
        "broker-side sequence\n{run}"
    );
    assert_in_order(
        &run.lines(),
        &[
            "settings written",
            "wifi up 127.0.0.1",
            "mqtt up",
            "led on",
            "button 0",
            "wifi down 200",
            "mqtt offline",
            "wifi up 127.0.0.1",
            "mqtt up",
            "led off",
            "led on",
            "restarting",
            "settings loaded",
            "wifi up 127.0.0.1",
            "mqtt up",
            "button 0",
        ],
        &run,
    );
    let trace = trace_lines(&run);
    let trace: Vec<&str> = trace.iter().map(String::as_str).collect();
    assert_in_order(
        &trace,
        &[
            "node boot power_on",
            "file open settings.json w",
            "gpio 4.mode OUTPUT",
            "gpio 4 0",
            "gpio 3.mode INT",
            "wifi STA_CONNECTED tern",
            "wifi STA_GOT_IP 127.0.0.1",
            "gpio 4 1",
            "file open settings.json w",
            "gpio 3.in 0",
            "wifi ap drop",
            "wifi STA_DISCONNECTED reason=200",
            "wifi ap up",
            "wifi STA_GOT_IP 127.0.0.1",
            "gpio 4 0",
            "gpio 4 1",
            "node restart 100",
            "node boot restart",
            "file open settings.json r",
            "gpio 4 1",
            "wifi STA_GOT_IP 127.0.0.1",
            "gpio 3.in 1",
            "gpio 3.in 0",
        ],
        &run,
    );
    assert!(
        trace
            .iter()
            .any(|l| l.starts_with("file write settings.json ")),
        "{run}"
    );
    // The settings in flash, as the firmware last wrote them.
    let saved = std::fs::read_to_string(flash.path().join("settings.json"))
        .expect("the firmware wrote its settings");
    let saved: serde_json::Value = serde_json::from_str(&saved).expect("settings are JSON");
    assert_eq!(saved["led_on"], true, "{saved}");
    assert_eq!(
        saved["port"],
        port.parse::<u16>().expect("a port"),
        "{saved}"
    );
}

#[test]
fn node_reports_the_sim_files_board_which_outlives_a_restart() {
    // The access point drops at 200 ms and returns at 3 s; the script restarts at 400 ms. The
    // second boot starts with the access point still away and the input as it was left, and
    // joins when the schedule brings the access point back.
    let run = run_sim_with(
        &["--trace", "node,wifi"],
        r#"{"chipid": 4242, "heap": 30000, "gpio": {"2": 1}, "wifi": {"connect_ms": 20},
            "schedule": [{"at_ms": 100, "gpio": 2, "level": 0},
                         {"at_ms": 200, "wifi": "drop"},
                         {"at_ms": 3000, "wifi": "up"}]}"#,
        r#"
        local boot = select(2, node.bootreason())
        print("boot", boot, node.chipid(), node.heap(), gpio.read(2), wifi.sta.getip())
        wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(t)
          print("got ip", boot)
          wifi.eventmon.unregister(wifi.eventmon.STA_GOT_IP)
          if boot == 0 then
            tmr.create():alarm(300, tmr.ALARM_SINGLE, function() node.restart() end)
          end
        end)
        "#,
        &[],
    );
    run.assert_ok().assert_lines(&[
        "boot\t0\t4242\t30000\t1\tnil",
        "got ip\t0",
        "boot\t4\t4242\t30000\t0\tnil",
        "got ip\t4",
    ]);
    let trace = trace_lines(&run);
    let trace: Vec<&str> = trace.iter().map(String::as_str).collect();
    assert_in_order(
        &trace,
        &[
            "node boot power_on",
            "wifi STA_GOT_IP 127.0.0.1",
            "wifi ap drop",
            "node restart 100",
            "node boot restart",
            "wifi ap up",
            "wifi STA_GOT_IP 127.0.0.1",
        ],
        &run,
    );
    // The drop is not played again on the second boot.
    assert_eq!(
        trace.iter().filter(|l| **l == "wifi ap drop").count(),
        1,
        "{run}"
    );
}

#[test]
fn a_command_typed_while_the_board_sleeps_changes_the_board_it_wakes_on() {
    let sim = sim_file(r#"{"gpio": {"2": 1}, "wifi": {"connect_ms": 20}}"#);
    let src = script(
        r#"
        local reason = select(2, node.bootreason())
        print("boot " .. reason .. " pin " .. gpio.read(2))
        if reason == 0 then
          print("sleeping")
          node.dsleep(1000000)
        end
        "#,
    );
    let mut board = board(&[
        "--sim",
        &sim,
        "--trace",
        "node",
        src.to_str().expect("a UTF-8 path"),
    ]);
    board.wait_for_line("boot 0 pin 1");
    board.wait_for_line("sleeping");
    board.send("gpio 2 0");
    board.wait_for_line("boot 5 pin 0");
    board.close_stdin();
    let run = board.finish();
    assert_eq!(run.code, Some(0), "{run}");
    let trace = trace_lines(&run);
    let trace: Vec<&str> = trace.iter().map(String::as_str).collect();
    assert_eq!(
        trace,
        [
            "node boot power_on",
            "node dsleep 1100",
            "node boot dsleep_wake"
        ],
        "{run}"
    );
}

#[test]
fn a_sim_files_schedule_fires_interrupts_and_wifi_events_then_the_run_ends() {
    let sim = sim_file(
        r#"{"wifi": {"connect_ms": 50},
            "schedule": [
              {"at_ms": 300, "gpio": 5, "level": 0},
              {"at_ms": 400, "gpio": 5, "level": 1},
              {"at_ms": 500, "wifi": "drop"},
              {"at_ms": 600, "wifi": "up"}
            ]}"#,
    );
    let src = script(
        r#"
        gpio.config({gpio = 5, dir = gpio.IN, pull = gpio.PULL_UP})
        gpio.trig(5, gpio.INTR_UP_DOWN, function(pin, level)
          print("pin " .. pin .. " " .. level)
        end)
        wifi.sta.on("got_ip", function(ev, info) print(ev .. " " .. info.ip) end)
        wifi.sta.on("disconnected", function(ev, info) print(ev .. " " .. info.reason) end)
        print("status " .. wifi.sta.status(), wifi.sta.getip())
        "#,
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.args([
        "run",
        "--timeout",
        &RUN_TIMEOUT_SECS.to_string(),
        "--sim",
        &sim,
    ])
    .arg(&src)
    .stdin(Stdio::null());
    let run = run_command(cmd);
    run.assert_ok();
    let lines = run.lines();
    assert_eq!(lines.first(), Some(&"status 1\tnil"), "{run}");
    assert_in_order(&lines, &["pin 5 0", "pin 5 1"], &run);
    assert_in_order(
        &lines,
        &["got_ip 127.0.0.1", "disconnected 200", "got_ip 127.0.0.1"],
        &run,
    );
    assert_eq!(lines.len(), 6, "{run}");
}

#[test]
fn mqtt_connections_are_refused_until_the_station_has_joined() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    let sim = sim_file(r#"{"wifi": {"connect_ms": 300}}"#);
    let src = script(
        r#"
        local port = tonumber(arg[1])
        local m = mqtt.Client("early", 60)
        -- Before the station has joined: refused, as on a device without Wi-Fi.
        m:connect("127.0.0.1", port, false, function() print("unexpected") end,
          function(c, reason) print("failed " .. reason) end)
        wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function()
          wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, nil)
          m:connect("127.0.0.1", port, false, function(c)
            print("connected")
            c:close()
          end)
        end)
        "#,
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.args([
        "run",
        "--timeout",
        &RUN_TIMEOUT_SECS.to_string(),
        "--sim",
        &sim,
    ])
    .arg(&src)
    .arg(&port)
    .stdin(Stdio::null());
    run_command(cmd)
        .assert_ok()
        .assert_lines(&["failed -5", "connected"]);
}

#[test]
fn the_default_board_answers_plausibly() {
    run_src(
        r#"
        print(wifi.sta.getip(), wifi.sta.status(), wifi.getmode() == wifi.STATION)
        print(dht.read(5))
        print(adc.read(0))
        gpio.mode(1, gpio.INPUT)
        print(gpio.read(1))
        wifi.sta.getap(function(t) for ssid, v in pairs(t) do print("ap", ssid, v) end end)
        wifi.sta.getap({}, 1, function(t) for bssid, v in pairs(t) do print("ap", bssid, v) end end)
        wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(t)
          print(t.IP, t.netmask, t.gateway, wifi.sta.status())
          print(wifi.sta.getip())
          wifi.eventmon.unregister(wifi.eventmon.STA_GOT_IP)
        end)
        "#,
        &[],
    )
    .assert_ok()
    .assert_lines(&[
        "nil\t1\ttrue",
        "0\t21.5\t45\t500\t0",
        "512",
        "1",
        "ap\ttern\t3,-52,02:00:00:00:00:01,6",
        "ap\t02:00:00:00:00:01\ttern,-52,3,6",
        "127.0.0.1\t255.0.0.0\t127.0.0.1\t5",
        "127.0.0.1\t255.0.0.0\t127.0.0.1",
    ]);
}

#[test]
fn bad_arguments_raise_the_devices_errors() {
    for (src, want) in [
        (
            "gpio.write(4, 2)",
            "bad argument #2 to 'write' (wrong level type)",
        ),
        (
            "gpio.mode(99, gpio.OUTPUT)",
            "bad argument #1 to 'mode' (Invalid pin)",
        ),
        (
            "gpio.mode(1, 7)",
            "bad argument #2 to 'mode' (wrong arg type)",
        ),
        (
            "gpio.read()",
            "bad argument #1 to 'read' (number expected, got no value)",
        ),
        (
            "gpio.trig(0, 'down', print)",
            "bad argument #1 to 'trig' (Invalid interrupt pin)",
        ),
        (
            "gpio.trig(1, 'sideways', print)",
            "bad argument #2 to 'trig' (invalid option 'sideways')",
        ),
        (
            "gpio.trig(1, 'down', 5)",
            "bad argument #3 to 'trig' (invalid callback type)",
        ),
        (
            "wifi.sta.config(5)",
            "bad argument #1 to 'config' (config table not found!)",
        ),
        (
            "wifi.sta.config({pwd = 'password123'})",
            "bad argument #1 to 'config' (ssid required)",
        ),
        (
            "wifi.setmode('x')",
            "bad argument #1 to 'setmode' (number expected, got string)",
        ),
        ("wifi.sta.on('nope', print)", "unknown event: nope"),
        (
            "dht.read()",
            "bad argument #1 to 'read' (number expected, got no value)",
        ),
        (
            "adc.read(3)",
            "bad argument #1 to 'read' (no channel for adc)",
        ),
    ] {
        let run = run_src(src, &[]);
        run.assert_code(1);
        assert!(run.stderr.contains(want), "{src}: want {want:?}\n{run}");
        assert!(run.stderr.contains("stack traceback"), "{src}\n{run}");
    }
}

#[test]
fn a_bad_sim_file_is_a_usage_error() {
    let src = script("print('never')");
    for (json, want) in [
        (Some("{\"adc\": 5000}"), "0..1023"),
        (
            Some("{\"schedule\": [{\"at_ms\": 1, \"wifi\": \"sideways\"}]}"),
            "\"drop\" or \"up\"",
        ),
        (None, "cannot read"),
    ] {
        let sim = match json {
            Some(j) => sim_file(j),
            None => "/nonexistent/board.json".to_owned(),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
        cmd.args(["run", "--sim", &sim]).arg(&src);
        let run = run_command(cmd);
        run.assert_code(2);
        assert!(run.stderr.contains(want), "want {want:?}\n{run}");
        assert!(!run.stdout.contains("never"), "{run}");
    }
}

#[test]
fn the_example_board_file_parses() {
    let path = example("board.json");
    tern_lua::sim::Board::load(Path::new(&path)).expect("examples/lua/board.json is valid");
}

#[test]
fn autoreconnect_comes_back_after_the_access_point_does() {
    let broker = Mosquitto::start_default();
    let port = broker.port().to_string();
    let sim = sim_file(r#"{"wifi": {"connect_ms": 20}}"#);
    let src = script(
        r#"
        local n = 0
        local m = mqtt.Client("auto", 60)
        m:on("connect", function(c)
          n = n + 1
          print("connect " .. n)
          if n == 2 then c:close() end
        end)
        m:on("offline", function() print("offline") end)
        wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function()
          if n == 0 then m:connect("127.0.0.1", tonumber(arg[1]), 0, 1) end
        end)
        "#,
    );
    let src = src.to_str().expect("a UTF-8 path");
    let mut board = board(&["--sim", &sim, src, &port]);
    board.wait_for_line("connect 1");
    board.send("wifi drop");
    board.wait_for_line("offline");
    // Retries while the access point is away are refused, silently (autoreconnect).
    board.send("wifi up");
    board.wait_for_line("connect 2");
    board.wait_for_line("offline");
    // The Wi-Fi callback listens while stdin may bring commands; at its end the run ends.
    board.close_stdin();
    let run = board.finish();
    assert_eq!(run.code, Some(0), "the run ends after close(): {run}");
}

#[test]
fn esp8266_forms_behave_as_on_the_device() {
    let sim = sim_file(r#"{"wifi": {"connect_ms": 20}, "gpio": {"2": 0}}"#);
    let src = script(
        r#"
        -- The old positional config, and the old status monitor.
        wifi.sta.eventMonReg(wifi.STA_GOTIP, function(prev) print("gotip, was " .. prev) end)
        wifi.sta.eventMonStart()
        print(wifi.sta.config("home", "password123"))
        print("input", gpio.read(2))
        gpio.mode(2, gpio.INT)
        gpio.trig(2, "up", function(level, when, count)
          print("up", level, type(when), count)
          -- serout in the background, then a callback.
          gpio.mode(6, gpio.OUTPUT)
          gpio.serout(6, gpio.HIGH, {1000, 1000}, 2, function()
            print("serout done", gpio.read(6))
            gpio.trig(2, "none")
            -- Leaving on request: reason 8 (ASSOC_LEAVE).
            wifi.sta.disconnect()
          end)
        end)
        wifi.eventmon.register(wifi.eventmon.STA_DISCONNECTED, function(t)
          print("left", t.SSID, t.reason, wifi.sta.status())
        end)
        wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(t)
          print("joined", wifi.sta.getip())
        end)
        "#,
    );
    let src = src.to_str().expect("a UTF-8 path");
    let mut board = board(&["--sim", &sim, "--trace", "gpio", src]);
    board.wait_for_line("joined\t127.0.0.1\t255.0.0.0\t127.0.0.1");
    board.send("gpio 2 1");
    board.wait_for_line("left\thome\t8\t0");
    board.close_stdin();
    let run = board.finish();
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        run.lines(),
        [
            "true",
            "input\t0",
            "gotip, was 1",
            "joined\t127.0.0.1\t255.0.0.0\t127.0.0.1",
            "up\t1\tnumber\t1",
            "serout done\t0",
            "left\thome\t8\t0",
        ],
        "{run}"
    );
    let trace = trace_lines(&run);
    let serout: Vec<&str> = trace
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("gpio 6 "))
        .collect();
    assert_eq!(
        serout,
        ["gpio 6 1", "gpio 6 0", "gpio 6 1", "gpio 6 0"],
        "{run}"
    );
}

/// Runs `src` under `--sim` (stdin closed) with `args`.
fn run_sim(json: &str, src: &str, args: &[&str]) -> Run {
    run_sim_with(&[], json, src, args)
}

/// Runs `src` under `--sim` (stdin closed) with `tern run` flags and `args`.
fn run_sim_with(flags: &[&str], json: &str, src: &str, args: &[&str]) -> Run {
    let sim = sim_file(json);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.args([
        "run",
        "--timeout",
        &RUN_TIMEOUT_SECS.to_string(),
        "--sim",
        &sim,
    ])
    .args(flags)
    .arg(script(src))
    .args(args)
    .stdin(Stdio::null());
    run_command(cmd)
}

/// Once the station has an address: connects to arg[1] (port arg[2], `secure` a table with
/// the CA file arg[3] when given), publishes to itself, prints the message.
const ROUND_TRIP_AFTER_GOT_IP: &str = r#"
local host, port, ca_file = arg[1], tonumber(arg[2]), arg[3]
local secure
if ca_file then
  local f = assert(io.open(ca_file, "rb"))
  secure = { ca_cert = f:read("*a") }
  f:close()
end
wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function()
  wifi.eventmon.unregister(wifi.eventmon.STA_GOT_IP)
  local m = mqtt.Client("relayed", 60)
  m:on("message", function(c, topic, data) print(topic .. " " .. data) c:close() end)
  m:connect(host, port, secure, function(c)
    c:subscribe("via", 1, function(c) c:publish("via", "ok", 1, 0) end)
  end, function(c, reason, message) print("failed " .. reason) io.stderr:write(message, "\n") end)
end)
"#;

#[test]
fn tls_through_the_simulated_access_point_with_a_ca_table() {
    let broker = tern_testkit::MosquittoConfig::new().tls().start();
    let ca = broker.tls().ca.cert_path.to_string_lossy().into_owned();
    let port = broker.tls_port().to_string();
    run_sim(
        r#"{"wifi": {"connect_ms": 20}}"#,
        ROUND_TRIP_AFTER_GOT_IP,
        &["localhost", &port, &ca],
    )
    .assert_ok()
    .assert_lines(&["via ok"]);
}

#[test]
fn websocket_through_the_simulated_access_point() {
    let broker = tern_testkit::MosquittoConfig::new().websockets().start();
    run_sim(
        r#"{"wifi": {"connect_ms": 20}}"#,
        ROUND_TRIP_AFTER_GOT_IP,
        &[&broker.ws_url()],
    )
    .assert_ok()
    .assert_lines(&["via ok"]);
}

#[test]
fn esp32_forms_behave_as_on_the_device() {
    run_sim(
        r#"{"wifi": {"connect_ms": 20}, "adc": 256, "dht": {"temp": 19.25, "humi": 61.5}}"#,
        r#"
        wifi.mode(wifi.STATION)
        -- auto = false: nothing happens until start() and connect().
        wifi.sta.config({ssid = "lab", pwd = "password123", auto = false})
        wifi.sta.on("start", function(ev) print(ev) end)
        wifi.sta.on("connected", function(ev, info) print(ev, info.ssid, info.channel) end)
        wifi.sta.on("got_ip", function(ev, info)
          print(ev, info.ip, info.netmask, info.gw)
          wifi.sta.on("got_ip", nil)
          wifi.sta.on("connected", nil)
        end)
        print("before", wifi.sta.getip())
        wifi.start()
        wifi.sta.connect()
        gpio.config({gpio = {12, 13}, dir = gpio.OUT}, {gpio = 14, dir = gpio.IN, pull = gpio.PULL_DOWN})
        gpio.write(12, 1)
        print("gpio", gpio.read(12), gpio.read(13), gpio.read(14))
        adc.setup(adc.ADC1, 0, adc.ATTEN_11db)
        print("adc", adc.read(adc.ADC1, 0))
        adc.setwidth(adc.ADC1, 10)
        print("adc10", adc.read(adc.ADC1, 0))
        print("dht", dht.read2x(4))
        wifi.sta.on("start", nil)
        "#,
        &[],
    )
    .assert_ok()
    .assert_lines(&[
        "before\tnil",
        "start",
        "gpio\t1\t1\t1",
        "adc\t1024",
        "adc10\t256",
        "dht\t0\t19.25\t61.5\t250\t500",
        "connected\tlab\t6",
        "got_ip\t127.0.0.1\t255.0.0.0\t127.0.0.1",
    ]);
}

#[test]
fn an_unreachable_broker_is_named_in_the_failure_not_the_relay() {
    // A closed loopback port: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let run = run_sim(
        r#"{"wifi": {"connect_ms": 20}}"#,
        r#"
        wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function()
          wifi.eventmon.unregister(wifi.eventmon.STA_GOT_IP)
          local m = mqtt.Client("x", 60)
          m:connect("127.0.0.1", tonumber(arg[1]), 0, function() print("connected") end,
            function(c, reason, message) print("failed " .. reason) print(message) end)
        end)
        "#,
        &[&port],
    );
    run.assert_ok();
    let lines = run.lines();
    assert_eq!(lines.first(), Some(&"failed -5"), "{run}");
    assert!(
        lines
            .get(1)
            .is_some_and(|m| m.contains(&format!("127.0.0.1:{port}"))),
        "the message names the broker's address\n{run}"
    );
}
