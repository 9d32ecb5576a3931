//! The `file` module under `tern run --fs DIR`: the device's calls on file objects and on the
//! current file, listing and stat, and confinement: `..`, absolute paths and links leading
//! out are refused with a clear error and nothing outside the directory is read or written.

mod run_support;

use run_support::run_src_with;

fn fs_flags(dir: &std::path::Path) -> [String; 2] {
    ["--fs".into(), dir.to_string_lossy().into_owned()]
}

fn run_in(dir: &std::path::Path, src: &str) -> run_support::Run {
    let flags = fs_flags(dir);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    run_src_with(&flags, src, &[])
}

#[test]
fn objects_and_the_current_file_read_write_seek() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        r##"
        local function show(...)
          local t = {}
          for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))):gsub("\n", "|") end
          print(table.concat(t, " "))
        end
        local f = file.open("settings.txt", "w")
        show(f:writeline("ssid=home"), f:write("port=1883\n"))
        f:close()
        f = file.open("settings.txt")
        show(f:readline(), f:read(4), f:seek("cur"), f:seek("set", 5))
        show(f:read("\n"), f:read(), f:read())
        f:close()
        -- the module-level calls work on the file last opened
        file.open("settings.txt", "a+")
        file.writeline("qos=1")
        file.seek("set")
        show(file.read(9))
        file.close()
        show(file.exists("settings.txt"), file.exists("nope"), file.open("nope"))
        "##,
    );
    r.assert_ok().assert_lines(&[
        "true true",
        "ssid=home| port 14 5",
        "home| port=1883| nil",
        "ssid=home",
        "true false nil",
    ]);
    let text = std::fs::read_to_string(dir.path().join("settings.txt")).unwrap();
    assert_eq!(text, "ssid=home\nport=1883\nqos=1\n");
}

#[test]
fn list_stat_rename_remove_fsinfo() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.lua"), "x").unwrap();
    std::fs::write(dir.path().join("b.json"), "{}").unwrap();
    let r = run_in(
        dir.path(),
        r#"
        local l = file.list()
        print(l["a.lua"], l["b.json"])
        local lua = file.list("%.lua$")
        print(lua["a.lua"], lua["b.json"])
        local s = file.stat("b.json")
        print(s.name, s.size, s.is_dir, s.time.year >= 2020)
        print(file.rename("a.lua", "b.json"), file.rename("a.lua", "c.lua"))
        file.remove("b.json")
        print(file.exists("a.lua"), file.exists("b.json"), file.exists("c.lua"))
        local remaining, used, total = file.fsinfo()
        print(used, remaining + used == total)
        "#,
    );
    r.assert_ok().assert_lines(&[
        "1\t2",
        "1\tnil",
        "b.json\t2\tfalse\ttrue",
        "false\ttrue",
        "false\tfalse\ttrue",
        "1\ttrue",
    ]);
}

#[test]
fn paths_leading_out_are_refused_and_nothing_outside_is_touched() {
    let top = tempfile::tempdir().unwrap();
    let flash = top.path().join("flash");
    let outside = top.path().join("outside");
    std::fs::create_dir_all(&flash).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "s3cret").unwrap();
    std::os::unix::fs::symlink(&outside, flash.join("link")).unwrap();
    let secret = outside.join("secret").to_string_lossy().into_owned();
    let r = run_in(
        &flash,
        &format!(
            r#"
            for _, name in ipairs({{"../outside/new", "{secret}", "link/secret", "link/new"}}) do
              for _, call in ipairs({{
                function() return file.open(name, "w") end,
                function() return file.getcontents(name) end,
                function() return file.putcontents(name, "x") end,
                function() return file.remove(name) end,
              }}) do
                local ok, err = pcall(call)
                print(ok, err)
              end
            end
            "#
        ),
    );
    r.assert_ok();
    let lines = r.lines();
    assert_eq!(lines.len(), 16, "{r}");
    assert!(lines.iter().all(|l| l.starts_with("false\t")), "{r}");
    let flash_real = flash.canonicalize().unwrap();
    assert!(
        lines[0].contains(&format!(
            "open: '../outside/new' contains '..'; the flash file system is {}",
            flash_real.display()
        )),
        "{r}"
    );
    assert!(lines[4].contains("is an absolute path"), "{r}");
    assert!(lines[8].contains("leads outside through a link"), "{r}");
    // Nothing outside was written, created or removed.
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "s3cret"
    );
    assert!(!outside.join("new").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn bad_arguments_use_the_devices_texts() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        "print(pcall(file.open, 'x', 'rw'))\nfile.open({})\n",
    );
    r.assert_code(1)
        .assert_lines(&["false\tbad argument #2 to 'open' (invalid mode)"]);
    assert!(
        r.stderr
            .contains(":2: bad argument #1 to 'open' (string expected, got table)"),
        "{r}"
    );
}

#[test]
fn dofile_and_loadfile_read_from_the_flash_directory_only() {
    let top = tempfile::tempdir().unwrap();
    let flash = top.path().join("flash");
    std::fs::create_dir_all(&flash).unwrap();
    std::fs::write(flash.join("config.lua"), "return { port = 1883 }\n").unwrap();
    std::fs::write(top.path().join("outside.lua"), "print('escaped')\n").unwrap();
    let r = run_in(
        &flash,
        r#"
        print(dofile("config.lua").port, loadfile("config.lua")().port)
        local f, err = loadfile("../outside.lua")
        print(f, (err:match("contains '%.%.'")))
        dofile("../outside.lua")
        "#,
    );
    r.assert_code(1)
        .assert_lines(&["1883\t1883", "nil\tcontains '..'"]);
    assert!(
        r.stderr
            .contains(":5: dofile: '../outside.lua' contains '..'"),
        "{r}"
    );
}

#[test]
fn trace_file_prints_opens_writes_renames_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let flags = fs_flags(dir.path());
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    flags.extend(["--trace", "file"]);
    let r = run_src_with(
        &flags,
        r#"
        local f = file.open("a.txt", "w")
        f:write("12345")
        f:writeline("ab")
        f:close()
        print(file.open("missing.txt") == nil)
        file.putcontents("b.txt", "xyz")
        print(file.rename("a.txt", "c.txt"), file.rename("b.txt", "c.txt"))
        file.remove("c.txt")
        file.remove("c.txt")
        "#,
        &[],
    );
    r.assert_ok().assert_lines(&["true", "true\tfalse"]);
    let trace: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("trace "))
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .collect();
    // Only what happened: no line for the failed open, rename, or the second remove.
    assert_eq!(
        trace,
        [
            "file open a.txt w",
            "file write a.txt 5",
            "file write a.txt 3",
            "file write b.txt 3",
            "file rename a.txt c.txt",
            "file remove c.txt",
        ],
        "{r}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "b.txt is left"
    );
}
