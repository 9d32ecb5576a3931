//! How `tern run` ends: exit codes, uncaught errors with tracebacks, `--timeout`, `os.exit`,
//! `arg`, usage errors.

mod run_support;

use std::process::Command;

use run_support::{run, run_command, run_src, script};
use tern_testkit::Mosquitto;

#[test]
fn an_error_in_the_main_chunk_exits_1_with_a_traceback() {
    let path = script(
        "print('before')\nlocal function inner() error('kaboom') end\nlocal function outer() inner() end\nouter()\nprint('after')\n",
    );
    let r = run(&path, &[]);
    r.assert_code(1).assert_lines(&["before"]);
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(r.stderr.starts_with("tern: "), "{r}");
    assert!(r.stderr.contains(&format!("{name}:2: kaboom")), "{r}");
    assert!(r.stderr.contains("stack traceback:"), "{r}");
    assert!(
        r.stderr.contains("in function 'outer'") || r.stderr.contains("'outer'"),
        "{r}"
    );
}

#[test]
fn an_error_in_a_callback_exits_1_with_a_traceback() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("doomed", 60)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          print("connected")
          local t = nil
          print(t.field)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_code(1).assert_lines(&["connected"]);
    assert!(r.stderr.contains("attempt to index"), "{r}");
    assert!(r.stderr.contains("stack traceback:"), "{r}");
}

#[test]
fn a_bad_argument_names_function_and_argument_at_the_scripts_line() {
    let path = script("local m = mqtt.Client('x', 60)\nm:publish('/t', 'x', 3, 0)\n");
    let r = run(&path, &[]);
    r.assert_code(1);
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        r.stderr.starts_with(&format!(
            "tern: {}:2: bad argument #3 to 'publish' (qos must be 0, 1 or 2)",
            path.display()
        )) || r.stderr.contains(&format!(
            "{name}:2: bad argument #3 to 'publish' (qos must be 0, 1 or 2)"
        )),
        "{r}"
    );
    assert!(r.stderr.contains("stack traceback:"), "{r}");
    // No frames of tern's own wrappers, as on the device.
    assert!(!r.stderr.contains("\ttern:"), "{r}");
}

#[test]
fn an_unknown_module_names_the_available_ones() {
    let path = script("print('x')\nlocal gpioz = require('gpioz')\n");
    let r = run(&path, &[]);
    r.assert_code(1).assert_lines(&["x"]);
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        r.stderr.contains(&format!(
            "{name}:2: module 'gpioz' not available in tern (available: "
        )),
        "{r}"
    );
    assert!(
        r.stderr.contains("mqtt") && r.stderr.contains("sjson"),
        "{r}"
    );
}

#[test]
fn require_finds_builtin_modules_and_lua_files_in_the_flash_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("helpers.lua"),
        "return { twice = function(x) return 2 * x end }\n",
    )
    .unwrap();
    let main = dir.path().join("main.lua");
    std::fs::write(
        &main,
        "local m = require('mqtt')\nprint(m == mqtt, require('sjson') == sjson)\nprint(require('helpers').twice(21))\n",
    )
    .unwrap();
    run(&main, &[])
        .assert_ok()
        .assert_lines(&["true\ttrue", "42"]);
}

#[test]
fn a_syntax_error_exits_1() {
    let r = run_src("print('unterminated)\n", &[]);
    r.assert_code(1);
    assert!(r.stderr.contains("unfinished string"), "{r}");
}

#[test]
fn timeout_stops_a_busy_script_with_124() {
    let path = script("print('spinning')\nwhile true do end\n");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.args(["run", "--timeout", "0.3"]).arg(&path);
    let r = run_command(cmd);
    r.assert_code(124).assert_lines(&["spinning"]);
    assert!(r.stderr.contains("--timeout"), "{r}");
}

#[test]
fn timeout_stops_a_script_waiting_on_a_timer() {
    let path =
        script("tmr.create():alarm(60000, tmr.ALARM_SINGLE, function() print('late') end)\n");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.args(["run", "--timeout=0.3"]).arg(&path);
    run_command(cmd).assert_code(124).assert_lines(&[]);
}

#[test]
fn os_exit_sets_the_status_and_keeps_the_output() {
    run_src(
        "print('one')\nio.write('two\\n')\nos.exit(7)\nprint('never')\n",
        &[],
    )
    .assert_code(7)
    .assert_lines(&["one", "two"]);
    run_src(
        "tmr.create():alarm(10, tmr.ALARM_SINGLE, function() print('from a callback') os.exit(3) end)\n",
        &[],
    )
    .assert_code(3)
    .assert_lines(&["from a callback"]);
}

#[test]
fn arg_holds_the_script_and_its_arguments() {
    let path = script(
        "print(arg[0])\nprint(#arg, arg[1], arg[2])\nprint(...)\nprint(os.getenv('TERN_TEST_VAR'))\n",
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.arg("run")
        .arg(&path)
        .args(["first", "--second"])
        .env("TERN_TEST_VAR", "from env");
    let r = run_command(cmd);
    r.assert_ok().assert_lines(&[
        &path.to_string_lossy(),
        "2\tfirst\t--second",
        "first\t--second",
        "from env",
    ]);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["run"][..],
        &["run", "--timeout"],
        &["run", "--frobnicate", "x.lua"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("usage: tern run"),
            "{args:?}"
        );
    }
}

#[test]
fn a_missing_script_exits_1() {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["run", "/nonexistent/script.lua"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/script.lua"));
}
