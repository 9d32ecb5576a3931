//! `tmr` semantics (NodeMCU variants doc §1.7), on a paused clock.

mod common;

use common::{run_err, run_ok};

#[test]
fn single_timer_fires_once_passes_itself_and_unregisters() {
    let out = run_ok(
        r#"
        local t = tmr.create()
        t:alarm(50, tmr.ALARM_SINGLE, function(timer)
          emit("fired", timer == t, tmr.now() >= 50000)
          emit("state in callback", timer:state())
        end)
        emit("state", t:state())
        "#,
    );
    assert_eq!(
        out,
        ["state true 0", "fired true true", "state in callback nil"]
    );
}

#[test]
fn start_returns_false_while_running_and_errors_unregistered() {
    let out = run_ok(
        r#"
        local t = tmr.create()
        emit(pcall(t.start, t))
        t:register(10, tmr.ALARM_SINGLE, function() emit("tick") end)
        emit("registered", t:state())
        emit("start", t:start())
        emit("again", t:start())
        "#,
    );
    assert_eq!(out.len(), 5, "{out:?}");
    assert!(
        out[0].starts_with("false ") && out[0].contains("timer not registered"),
        "{out:?}"
    );
    assert_eq!(
        &out[1..],
        ["registered false 0", "start true", "again false", "tick"]
    );
}

#[test]
fn auto_timer_repeats_until_unregistered() {
    let out = run_ok(
        r#"
        local n = 0
        local t0 = tmr.now()
        tmr.create():alarm(100, tmr.ALARM_AUTO, function(t)
          n = n + 1
          emit("tick", n, math.floor((tmr.now() - t0) / 1000))
          if n == 3 then t:unregister() end
        end)
        "#,
    );
    assert_eq!(out, ["tick 1 100", "tick 2 200", "tick 3 300"]);
}

#[test]
fn semi_timer_fires_once_and_can_be_restarted() {
    let out = run_ok(
        r#"
        local n = 0
        local t = tmr.create()
        t:register(20, tmr.ALARM_SEMI, function(timer)
          n = n + 1
          emit("fired", n, timer:state())
          if n < 2 then emit("restart", timer:start()) end
        end)
        t:start()
        "#,
    );
    assert_eq!(out, ["fired 1 false 2", "restart true", "fired 2 false 2"]);
}

#[test]
fn stop_keeps_the_registration_and_reports_idle_timers() {
    let out = run_ok(
        r#"
        local t = tmr.create()
        t:register(10, tmr.ALARM_AUTO, function() emit("never") end)
        emit("stop idle", t:stop())
        t:start()
        emit("stop running", t:stop())
        emit("state", t:state())
        t:unregister()
        emit("after unregister", t:state())
        "#,
    );
    assert_eq!(
        out,
        [
            "stop idle false",
            "stop running true",
            "state false 1",
            "after unregister nil"
        ]
    );
}

#[test]
fn interval_range_and_mode_are_checked() {
    let out = run_ok(
        r#"
        local t = tmr.create()
        local function try(...) local ok, e = pcall(...) emit(ok, ok or tostring(e):match("^[^\n]*")) end
        try(t.register, t, 0, 0, function() end)
        try(t.register, t, 6870948, 0, function() end)
        try(t.register, t, 6870947, 0, function() end)
        try(t.register, t, 10, 3, function() end)
        try(t.register, t, 10, 0, "nope")
        try(t.interval, t, 0)
        "#,
    );
    assert_eq!(
        out,
        [
            "false bad argument #1 to 'register' (Range: 1-6870947)",
            "false bad argument #1 to 'register' (Range: 1-6870947)",
            "true true",
            "false bad argument #2 to 'register' (invalid timer mode)",
            "false bad argument #3 to 'register' (function expected, got string)",
            "false bad argument #1 to 'interval' (Range: 1-6870947)",
        ]
    );
}

#[test]
fn timers_fire_in_deadline_order() {
    let out = run_ok(
        r#"
        for _, ms in ipairs({30, 10, 20}) do
          tmr.create():alarm(ms, tmr.ALARM_SINGLE, function() emit(ms) end)
        end
        "#,
    );
    assert_eq!(out, ["10", "20", "30"]);
}

#[test]
fn a_single_timer_can_rearm_itself_from_its_callback() {
    let out = run_ok(
        r#"
        local n = 0
        local function cb(t)
          n = n + 1
          emit("n", n)
          if n < 3 then emit("rearm", t:alarm(5, tmr.ALARM_SINGLE, cb)) end
        end
        tmr.create():alarm(5, tmr.ALARM_SINGLE, cb)
        "#,
    );
    assert_eq!(out, ["n 1", "rearm true", "n 2", "rearm true", "n 3"]);
}

#[test]
fn interval_changes_the_period_of_a_running_timer() {
    let out = run_ok(
        r#"
        local t0 = tmr.now()
        local n = 0
        local t = tmr.create()
        t:alarm(1000, tmr.ALARM_AUTO, function(timer)
          n = n + 1
          emit(n, math.floor((tmr.now() - t0) / 1000))
          if n == 2 then timer:unregister() end
        end)
        t:interval(10)
        "#,
    );
    assert_eq!(out, ["1 10", "2 20"]);
}

#[test]
fn register_stops_a_running_timer() {
    let out = run_ok(
        r#"
        local t = tmr.create()
        t:alarm(10, tmr.ALARM_AUTO, function() emit("old") end)
        t:register(20, tmr.ALARM_SINGLE, function() emit("new") end)
        emit("state", t:state())
        "#,
    );
    assert_eq!(out, ["state false 0"]);
}

#[test]
fn an_unreferenced_armed_timer_still_fires() {
    let out = run_ok(
        r#"
        tmr.create():alarm(10, tmr.ALARM_SINGLE, function() emit("fired") end)
        collectgarbage("collect")
        collectgarbage("collect")
        "#,
    );
    assert_eq!(out, ["fired"]);
}

#[test]
fn stopped_timers_do_not_keep_the_loop_alive() {
    let out = run_ok(
        r#"
        local t = tmr.create()
        t:alarm(10, tmr.ALARM_AUTO, function() emit("never") end)
        t:stop()
        local s = tmr.create()
        s:register(10, tmr.ALARM_SINGLE, function() emit("never") end)
        emit("done")
        "#,
    );
    assert_eq!(out, ["done"]);
}

#[test]
fn an_error_in_a_timer_callback_ends_the_run_with_a_traceback() {
    let e = run_err(
        r#"
        tmr.create():alarm(10, tmr.ALARM_SINGLE, function() error("boom") end)
        "#,
    );
    assert!(e.contains("boom"), "{e}");
    assert!(e.contains("stack traceback"), "{e}");
}

#[test]
fn time_counts_seconds() {
    let out = run_ok(
        r#"
        tmr.create():alarm(2500, tmr.ALARM_SINGLE, function() emit(tmr.time()) end)
        "#,
    );
    assert_eq!(out, ["2"]);
}
