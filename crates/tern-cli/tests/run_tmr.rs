//! `tmr` through `tern run`: the device's timer semantics, and timers driving a client.

mod run_support;

use run_support::run_src;
use tern_testkit::Mosquitto;

#[test]
fn timer_modes_behave_as_on_the_device() {
    let r = run_src(
        r#"
        local single, semi, auto = tmr.create(), tmr.create(), tmr.create()
        local semi_runs, auto_runs = 0, 0
        single:register(200, tmr.ALARM_SINGLE, function(t)
          print("single", t == single, t:state())
        end)
        print("start", single:start(), "again", single:start())
        semi:alarm(10, tmr.ALARM_SEMI, function(t)
          semi_runs = semi_runs + 1
          print("semi", semi_runs, t:state())
          if semi_runs < 2 then t:start() end
        end)
        auto:alarm(100, tmr.ALARM_AUTO, function(t)
          auto_runs = auto_runs + 1
          if auto_runs == 4 then print("auto", auto_runs, t:stop(), t:state()) end
        end)
        print("unregistered", tmr.create():state())
        local ok, err = pcall(tmr.create().alarm, tmr.create(), 0, 0, print)
        print("range", ok, (tostring(err):match("^[^\n]*")))
        "#,
        &[],
    );
    r.assert_ok();
    let lines = r.lines();
    assert_eq!(lines[0], "start\ttrue\tagain\tfalse", "{r}");
    assert_eq!(lines[1], "unregistered\tnil", "{r}");
    assert_eq!(
        lines[2], "range\tfalse\tbad argument #1 to 'alarm' (Range: 1-6870947)",
        "{r}"
    );
    // semi at 10 and 20 ms, single at 200 ms, auto's 4th tick at 400 ms: margins of
    // 180 ms and more, so a loaded machine's late timer does not reorder them.
    assert_eq!(
        lines[3..],
        [
            "semi\t1\tfalse\t2",
            "semi\t2\tfalse\t2",
            "single\ttrue\tnil",
            "auto\t4\ttrue\tfalse\t1"
        ],
        "{r}"
    );
}

#[test]
fn a_periodic_timer_publishes_until_done() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("ticker", 60)
        local received = 0
        m:on("message", function(c, topic, data)
          received = received + 1
          print("got " .. data)
          if received == 3 then c:close() end
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe("tick", 1, function(c)
            local n = 0
            tmr.create():alarm(20, tmr.ALARM_AUTO, function(t)
              n = n + 1
              c:publish("tick", "tick " .. n, 1, 0)
              if n == 3 then t:unregister() end
            end)
          end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok()
        .assert_lines(&["got tick 1", "got tick 2", "got tick 3"]);
}
