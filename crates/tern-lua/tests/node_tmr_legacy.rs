//! `node` and the legacy static `tmr` API in a runtime on a paused clock: reboots requested
//! by `node.restart`/`node.dsleep`/`tmr.softwd`, `node.task.post`, the board's values, and
//! `tmr.alarm(id, ...)` and friends.

mod common;

use std::time::Duration;

use common::{run_err, run_ok};
use tern_lua::{Board, BootReason, Config, Reboot, Runtime};

/// Runs `script` in a runtime made from `config` until the loop stops; returns the reboot it
/// asked for and the lines it printed with `emit`.
fn run_with(config: Config, script: &str) -> (Option<Reboot>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let mut lua = Runtime::with_config(config).expect("a Lua runtime");
        lua.exec(
            "out = {} function emit(...) local t = {} for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end out[#out + 1] = table.concat(t, ' ') end",
            "prelude",
        )
        .expect("the prelude runs");
        lua.exec(script, "test").expect("the script runs");
        tokio::time::timeout(Duration::from_secs(24 * 3600), lua.run())
            .await
            .expect("the loop stopped within a virtual day")
            .expect("no error");
        let out: mlua::Table = lua.lua().globals().get("out").expect("out");
        let lines = out
            .sequence_values::<String>()
            .map(|v| v.expect("strings"))
            .collect();
        (lua.reboot_requested(), lines)
    })
}

#[test]
fn restart_stops_the_loop_even_with_a_timer_armed() {
    let (reboot, out) = run_with(
        Config::default(),
        r#"
        tmr.create():alarm(1000, tmr.ALARM_AUTO, function() emit("tick") end)
        tmr.create():alarm(10, tmr.ALARM_SINGLE, function() emit("restarting") node.restart() end)
        "#,
    );
    assert_eq!(out, ["restarting"]);
    assert_eq!(
        reboot,
        Some(Reboot::After(
            Board::default().boot_time,
            BootReason::Restart
        ))
    );
}

#[test]
fn dsleep_asks_for_a_reboot_after_the_sleep() {
    let (reboot, _) = run_with(Config::default(), "node.dsleep(2000000)");
    assert_eq!(
        reboot,
        Some(Reboot::After(
            Duration::from_secs(2) + Board::default().boot_time,
            BootReason::DeepSleepWake
        ))
    );
    let (reboot, _) = run_with(Config::default(), "node.dsleep(0)");
    assert_eq!(reboot, Some(Reboot::SleepForever));
}

#[test]
fn the_software_watchdog_restarts_unless_fed() {
    let (reboot, out) = run_with(
        Config::default(),
        r#"
        tmr.softwd(1)
        tmr.create():alarm(500, tmr.ALARM_SINGLE, function() emit("fed") tmr.softwd(1) end)
        "#,
    );
    assert_eq!(out, ["fed"]);
    assert!(
        matches!(reboot, Some(Reboot::After(_, BootReason::Watchdog))),
        "{reboot:?}"
    );
    let (reboot, _) = run_with(Config::default(), "tmr.softwd(1) tmr.softwd(-1)");
    assert_eq!(reboot, None);
}

#[test]
fn the_board_answers_node() {
    let config = Config {
        board: Board {
            chip_id: 0xabcdef,
            heap: 12345,
            ..Board::default()
        },
        ..Config::default()
    };
    let (_, out) = run_with(
        config,
        r#"
        emit(node.chipid(), node.heap(), node.flashid() == select(5, node.info()))
        emit(node.info("hw").chip_id, node.info("sw_version").node_version_major)
        local r = node.random(5, 7)
        emit(r >= 5 and r <= 7, node.random() < 1, node.uptime() >= 0)
        node.egc.setmode(node.egc.ALWAYS)
        "#,
    );
    assert_eq!(out, ["11259375 12345 true", "11259375 3", "true true true"]);
}

#[test]
fn posted_tasks_run_after_the_current_code_in_order_with_their_priority() {
    let out = run_ok(
        r#"
        node.task.post(node.task.LOW_PRIORITY, function(p) emit("first", p) end)
        node.task.post(function(p) emit("second", p) end)
        emit("main")
        "#,
    );
    assert_eq!(out, ["main", "first 0", "second 1"]);
}

#[test]
fn node_bad_arguments_use_the_devices_texts() {
    let e = run_err("node.dsleep('soon')");
    assert!(
        e.contains("bad argument #1 to 'dsleep' (number expected, got string)"),
        "{e}"
    );
    let e = run_err("node.task.post(1)");
    assert!(
        e.contains("bad argument #2 to 'post' (function expected, got no value)"),
        "{e}"
    );
    let e = run_err("node.info('bogus')");
    assert!(e.contains("invalid group 'bogus'"), "{e}");
}

#[test]
fn static_alarm_repeats_until_stopped_and_unregister_clears_it() {
    let out = run_ok(
        r#"
        local n = 0
        tmr.alarm(0, 100, tmr.ALARM_AUTO, function()
          n = n + 1
          emit("tick", n)
          if n == 3 then
            tmr.stop(0)
            emit("stopped", tmr.state(0))
            tmr.unregister(0)
            emit("unregistered", tmr.state(0))
          end
        end)
        emit("armed", tmr.state(0))
        "#,
    );
    assert_eq!(
        out,
        [
            "armed true 1",
            "tick 1",
            "tick 2",
            "tick 3",
            "stopped false 1",
            "unregistered nil"
        ]
    );
}

#[test]
fn static_register_start_and_interval() {
    let out = run_ok(
        r#"
        tmr.register(3, 5000, tmr.ALARM_SEMI, function() emit("fired", tmr.now() < 100000) end)
        tmr.interval(3, 50)
        emit("started", tmr.start(3), tmr.start(3))
        "#,
    );
    assert_eq!(out, ["started true false", "fired true"]);
}

#[test]
fn static_timers_check_their_index_and_arguments() {
    let e = run_err("tmr.alarm(7, 100, 0, function() end)");
    assert!(
        e.contains("bad argument #1 to 'alarm' (invalid timer index (0..6))"),
        "{e}"
    );
    let e = run_err("tmr.alarm(0, 'soon', 0, function() end)");
    assert!(
        e.contains("bad argument #2 to 'alarm' (number expected, got string)"),
        "{e}"
    );
    let e = run_err("tmr.alarm(0, 100, 0)");
    assert!(
        e.contains("bad argument #4 to 'alarm' (function expected, got no value)"),
        "{e}"
    );
    let e = run_err("tmr.start(2)");
    assert!(e.contains("timer not registered"), "{e}");
}

#[test]
fn now_wraps_at_2_to_the_31_microseconds() {
    // 2148 s after start: 2_148_000_000 µs is past 2^31 (2_147_483_648).
    let out = run_ok(
        r#"
        tmr.create():alarm(2148000, tmr.ALARM_SINGLE, function()
          local now = tmr.now()
          emit(now >= 0, now < 2^31, now < 1000000, tmr.time())
        end)
        "#,
    );
    assert_eq!(out, ["true true true 2148"]);
}

#[test]
fn the_oldest_forms_without_an_id_use_timer_0() {
    let out = run_ok(
        r#"
        local n = 0
        tmr.alarm(100, 1, function()
          n = n + 1
          emit("tick", n)
          if n == 2 then tmr.stop() emit("state", tmr.state(0)) tmr.unregister(0) end
        end)
        "#,
    );
    assert_eq!(out, ["tick 1", "tick 2", "state false 1"]);
}
