//! `node` under `tern run`: `node.restart()` and `node.dsleep()` start the script again from
//! a fresh Lua state (files in the flash directory survive, globals do not), `--timeout`
//! bounds every boot together, `node.compile` + `dofile`, and the device's error texts.

mod run_support;

use std::process::Command;

use run_support::{run_command, run_src_with};

/// Counts boots in a flash file; restarts (or deep-sleeps) until the third.
const BOOTS: &str = r#"
local n = tonumber(file.getcontents("boots") or "0") + 1
file.putcontents("boots", tostring(n))
print("boot", n, tostring(rawget(_G, "survivor")), node.uptime() < 5000000, node.bootreason())
survivor = "set"
if n < 3 then
  tmr.create():alarm(10, tmr.ALARM_SINGLE, function()
    if arg[1] == "sleep" then node.dsleep(200000) else node.restart() end
  end)
else
  print("done")
end
"#;

#[test]
fn restart_starts_the_script_again_from_a_fresh_state() {
    let fs = tempfile::tempdir().unwrap();
    let flags = ["--fs", fs.path().to_str().unwrap()];
    run_src_with(&flags, BOOTS, &["restart"])
        .assert_ok()
        .assert_lines(&[
            "boot\t1\tnil\ttrue\t1\t0",
            "boot\t2\tnil\ttrue\t2\t4",
            "boot\t3\tnil\ttrue\t2\t4",
            "done",
        ]);
}

#[test]
fn dsleep_sleeps_then_boots_again() {
    let fs = tempfile::tempdir().unwrap();
    let flags = ["--fs", fs.path().to_str().unwrap()];
    let started = std::time::Instant::now();
    run_src_with(&flags, BOOTS, &["sleep"])
        .assert_ok()
        .assert_lines(&[
            "boot\t1\tnil\ttrue\t1\t0",
            "boot\t2\tnil\ttrue\t2\t5",
            "boot\t3\tnil\ttrue\t2\t5",
            "done",
        ]);
    // Two sleeps of 0.2 s happened (a lower bound only: no upper timing assertion).
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
}

#[test]
fn timeout_bounds_a_script_that_keeps_restarting() {
    let path = run_support::script("print('boot')\nnode.restart()\n");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.args(["run", "--timeout", "1"]).arg(&path);
    let r = run_command(cmd);
    r.assert_code(124);
    assert!(r.lines().len() > 1, "it booted more than once\n{r}");
    assert!(r.lines().iter().all(|l| *l == "boot"), "{r}");
}

#[test]
fn dsleep_zero_sleeps_until_reset_and_ends_the_run() {
    let r = run_src_with(&[], "print('sleeping')\nnode.dsleep(0)\n", &[]);
    r.assert_ok().assert_lines(&["sleeping"]);
    assert!(r.stderr.contains("node.dsleep(0)"), "{r}");
}

#[test]
fn compile_keeps_the_source_under_the_lc_name_for_dofile() {
    let fs = tempfile::tempdir().unwrap();
    std::fs::write(fs.path().join("lib.lua"), "return 6 * 7\n").unwrap();
    let flags = ["--fs", fs.path().to_str().unwrap()];
    let r = run_src_with(
        &flags,
        "node.compile('lib.lua')\nprint(file.exists('lib.lc'), dofile('lib.lc'))\n",
        &[],
    );
    r.assert_ok().assert_lines(&["true\t42"]);
}

#[test]
fn node_reports_the_board_and_refuses_bad_arguments() {
    let r = run_src_with(
        &[],
        "print(node.chipid(), node.heap() > 0, select('#', node.info()))\nnode.restart(1, 2)\nnode.dsleep({})\n",
        &[],
    );
    r.assert_code(1).assert_lines(&["12648430\ttrue\t8"]);
    assert!(
        r.stderr
            .contains(":3: bad argument #1 to 'dsleep' (number expected, got table)"),
        "{r}"
    );
    assert!(r.stderr.contains("stack traceback:"), "{r}");
}

#[test]
fn a_restart_cuts_the_connection_so_the_broker_publishes_the_will() {
    let broker = tern_testkit::Mosquitto::start_default();
    let mut will = broker
        .mosquitto_sub()
        .id("will-watch")
        .topic("/node/will")
        .count(1)
        .spawn();
    broker.wait_for_log("Sending SUBACK to will-watch");
    let fs = tempfile::tempdir().unwrap();
    let flags = ["--fs", fs.path().to_str().unwrap()];
    let r = run_src_with(
        &flags,
        r#"
        local boot = tonumber(file.getcontents("boot") or "0") + 1
        file.putcontents("boot", tostring(boot))
        if boot > 1 then print("boot " .. boot) return end
        local m = mqtt.Client("rebooter", 60)
        m:lwt("/node/will", "lost", 0, 0)
        m:connect("127.0.0.1", tonumber(arg[1]), function() print("connected") node.restart() end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok().assert_lines(&["connected", "boot 2"]);
    assert_eq!(will.wait_for_line(|l| l == "lost"), "lost");
}
