//! The `file` module over one directory, the flash file system (`tern run --fs DIR`).
//!
//! Names are relative to that directory. An absolute name, a `..` component, or a link that
//! leads outside is refused with an error naming the directory; nothing outside it is read
//! or written. `file.open` returns a file object and makes it the current file that the
//! module-level `file.read`/`write`/… use, as on the device.
//!
//! `--trace file` prints `file open NAME MODE`, `file write NAME BYTES` (each write),
//! `file remove NAME` and `file rename FROM TO`.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use mlua::{AnyUserData, Lua, Table, UserData, UserDataMethods, Value, Variadic};

use crate::args::{bad_arg, check_bytes, lua_error, opt_bytes, opt_integer, type_name};
use crate::registry;
use crate::trace::{self, Kind};

/// Most bytes `read()` without a count, `read(char)` and `readline()` return (the device's
/// `FILE_READ_CHUNK`).
const READ_CHUNK: usize = 1024;
/// Registry slot of the current file (the last one `file.open` returned).
const CURRENT: &str = "tern.file.current";
/// Deepest directory level `file.list` walks.
const LIST_DEPTH: usize = 8;

/// The flash directory, canonical.
fn root(lua: &Lua) -> mlua::Result<PathBuf> {
    let shared = registry::shared(lua)?;
    let dir = shared.config.fs.as_ref().ok_or_else(|| {
        lua_error("file: no flash file system (tern run --fs DIR chooses the directory)")
    })?;
    dir.canonicalize().map_err(|e| {
        lua_error(format!(
            "file: the flash directory {} is not usable: {e}",
            dir.display()
        ))
    })
}

/// `name` inside the flash directory, or an error when it would lead outside.
pub(crate) fn resolve(lua: &Lua, func: &str, name: &str) -> mlua::Result<PathBuf> {
    let root = root(lua)?;
    resolve_in(&root, name).map_err(|why| {
        lua_error(format!(
            "{func}: '{name}' {why}; the flash file system is {}",
            root.display()
        ))
    })
}

/// The checks of [`resolve`]; `Err` says why the name is refused.
fn resolve_in(root: &Path, name: &str) -> Result<PathBuf, &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    let rel = Path::new(name);
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("contains '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    let path = root.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => {
            // Exists (possibly as a link): where it really is must be inside.
            let real = path
                .canonicalize()
                .map_err(|_| "is a link that leads nowhere")?;
            if !real.starts_with(root) {
                return Err("leads outside through a link");
            }
            // The name itself: `remove`/`rename` act on a link, not on what it points to.
            Ok(path)
        }
        Err(_) => {
            // New: its directory must be inside.
            let parent = path.parent().unwrap_or(root);
            match parent.canonicalize() {
                Ok(real) if real.starts_with(root) => Ok(path),
                Ok(_) => Err("leads outside through a link"),
                Err(_) => Ok(path), // no such directory: opening fails as on the device
            }
        }
    }
}

/// An open file.
#[derive(Debug)]
struct FileObj {
    file: RefCell<Option<File>>,
    /// The name it was opened by, for `--trace file`.
    name: String,
}

fn with_file<T>(
    ud: &AnyUserData,
    f: impl FnOnce(&mut File) -> std::io::Result<T>,
) -> mlua::Result<Option<T>> {
    let obj = ud.borrow::<FileObj>()?;
    let mut slot = obj.file.borrow_mut();
    let Some(file) = slot.as_mut() else {
        return Err(lua_error("file: the file is closed"));
    };
    // I/O errors give nil, as the device's calls do.
    Ok(f(file).ok())
}

/// Reads up to `READ_CHUNK` (or `n`) bytes, or up to and including `stop`.
fn read_from(file: &mut File, n: usize, stop: Option<u8>) -> std::io::Result<Vec<u8>> {
    // Grows with what is there: a huge `n` allocates no more than the file holds.
    let mut buf = Vec::new();
    file.take(u64::try_from(n).unwrap_or(u64::MAX))
        .read_to_end(&mut buf)?;
    if let Some(stop) = stop
        && let Some(i) = buf.iter().position(|&b| b == stop)
    {
        // Give back what follows the delimiter.
        let back = i64::try_from(buf.len() - i - 1).unwrap_or(0);
        file.seek(SeekFrom::Current(-back))?;
        buf.truncate(i + 1);
    }
    Ok(buf)
}

/// `read([n_or_char])`: nil at the end of the file.
fn read(lua: &Lua, ud: &AnyUserData, args: &[Value]) -> mlua::Result<Value> {
    let (n, stop) = match args.first() {
        None | Some(Value::Nil) => (READ_CHUNK, None),
        Some(Value::Integer(_) | Value::Number(_)) => {
            // Up to `n` bytes (the chunk limit is only the default).
            let n = opt_integer("read", args, 1)?.unwrap_or(0);
            (usize::try_from(n).unwrap_or(0).max(1), None)
        }
        Some(Value::String(s)) => (READ_CHUNK, s.as_bytes().first().copied()),
        Some(v) => {
            return Err(bad_arg(
                "read",
                1,
                format!("number or string expected, got {}", type_name(v)),
            ));
        }
    };
    match with_file(ud, |f| read_from(f, n, stop))? {
        Some(bytes) if !bytes.is_empty() => Ok(Value::String(lua.create_string(&bytes)?)),
        _ => Ok(Value::Nil),
    }
}

fn write(ud: &AnyUserData, func: &str, args: &[Value], newline: bool) -> mlua::Result<Value> {
    let mut data = check_bytes(func, args, 1)?;
    if newline {
        data.push(b'\n');
    }
    Ok(match with_file(ud, |f| f.write_all(&data))? {
        Some(()) => {
            let obj = ud.borrow::<FileObj>()?;
            trace::emit(
                Kind::File,
                "write",
                format_args!("{} {}", obj.name, data.len()),
            );
            Value::Boolean(true)
        }
        None => Value::Nil,
    })
}

fn seek(ud: &AnyUserData, args: &[Value]) -> mlua::Result<Value> {
    let whence = opt_bytes("seek", args, 1)?.unwrap_or_else(|| b"cur".to_vec());
    let offset = opt_integer("seek", args, 2)?.unwrap_or(0);
    let pos = match whence.as_slice() {
        b"set" => SeekFrom::Start(u64::try_from(offset).unwrap_or(0)),
        b"cur" => SeekFrom::Current(offset),
        b"end" => SeekFrom::End(offset),
        _ => {
            return Err(bad_arg(
                "seek",
                1,
                "invalid option, expected set, cur or end",
            ));
        }
    };
    Ok(match with_file(ud, |f| f.seek(pos))? {
        Some(p) => Value::Integer(i64::try_from(p).unwrap_or(i64::MAX)),
        None => Value::Nil,
    })
}

fn close(ud: &AnyUserData) -> mlua::Result<()> {
    let obj = ud.borrow::<FileObj>()?;
    if let Some(mut f) = obj.file.borrow_mut().take() {
        let _ = f.flush();
    }
    Ok(())
}

impl UserData for FileObj {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_function("read", |lua, (ud, args): (AnyUserData, Variadic<Value>)| {
            read(lua, &ud, &args)
        });
        methods.add_function("readline", |lua, ud: AnyUserData| {
            read(lua, &ud, &[Value::String(lua.create_string("\n")?)])
        });
        methods.add_function("write", |_, (ud, args): (AnyUserData, Variadic<Value>)| {
            write(&ud, "write", &args, false)
        });
        methods.add_function(
            "writeline",
            |_, (ud, args): (AnyUserData, Variadic<Value>)| write(&ud, "writeline", &args, true),
        );
        methods.add_function("seek", |_, (ud, args): (AnyUserData, Variadic<Value>)| {
            seek(&ud, &args)
        });
        methods.add_function("flush", |_, ud: AnyUserData| {
            Ok(with_file(&ud, File::flush)?.is_some())
        });
        methods.add_function("close", |_, ud: AnyUserData| close(&ud));
        methods.add_meta_function("__tostring", |_, ud: AnyUserData| {
            Ok(format!("file.obj: {:p}", ud.to_pointer()))
        });
    }
}

fn name_arg(func: &str, args: &[Value], pos: usize) -> mlua::Result<String> {
    let b = check_bytes(func, args, pos)?;
    String::from_utf8(b).map_err(|_| bad_arg(func, pos, "file name is not valid UTF-8"))
}

/// `file.open(name[, mode])`: a file object, or nil when it cannot be opened.
fn open(lua: &Lua, args: &[Value]) -> mlua::Result<Value> {
    let name = name_arg("open", args, 1)?;
    let mode = opt_bytes("open", args, 2)?.unwrap_or_else(|| b"r".to_vec());
    let mut o = OpenOptions::new();
    match mode.strip_suffix(b"b").unwrap_or(&mode) {
        b"r" => o.read(true),
        b"w" => o.write(true).create(true).truncate(true),
        b"a" => o.append(true).create(true),
        b"r+" => o.read(true).write(true),
        b"w+" => o.read(true).write(true).create(true).truncate(true),
        b"a+" => o.read(true).append(true).create(true),
        _ => return Err(bad_arg("open", 2, "invalid mode")),
    };
    let path = resolve(lua, "open", &name)?;
    if path.is_dir() {
        return Ok(Value::Nil);
    }
    let Ok(file) = o.open(&path) else {
        return Ok(Value::Nil);
    };
    trace::emit(
        Kind::File,
        "open",
        format_args!("{name} {}", String::from_utf8_lossy(&mode)),
    );
    let ud = lua.create_userdata(FileObj {
        file: RefCell::new(Some(file)),
        name,
    })?;
    crate::plain_method_errors(lua, &ud, "file.obj")?;
    lua.set_named_registry_value(CURRENT, &ud)?;
    Ok(Value::UserData(ud))
}

/// The current file, for the module-level calls.
fn current(lua: &Lua) -> mlua::Result<AnyUserData> {
    match lua.named_registry_value::<Value>(CURRENT)? {
        Value::UserData(ud) => Ok(ud),
        _ => Err(lua_error("open a file first")),
    }
}

/// `file.stat(name)`'s `time` table, from seconds since 1970 (UTC).
fn civil_time(lua: &Lua, secs: i64) -> mlua::Result<Table> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let mon = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(mon <= 2);
    let t = lua.create_table()?;
    t.raw_set("year", year)?;
    t.raw_set("mon", mon)?;
    t.raw_set("day", day)?;
    t.raw_set("hour", rem / 3600)?;
    t.raw_set("min", rem % 3600 / 60)?;
    t.raw_set("sec", rem % 60)?;
    Ok(t)
}

fn stat(lua: &Lua, args: &[Value]) -> mlua::Result<Value> {
    let name = name_arg("stat", args, 1)?;
    let path = resolve(lua, "stat", &name)?;
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(Value::Nil);
    };
    let t = lua.create_table()?;
    t.raw_set("name", name.as_str())?;
    t.raw_set("size", meta.len())?;
    let secs = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    t.raw_set("time", civil_time(lua, secs)?)?;
    t.raw_set("is_dir", meta.is_dir())?;
    t.raw_set("is_rdonly", meta.permissions().readonly())?;
    t.raw_set("is_hidden", false)?;
    t.raw_set("is_sys", false)?;
    t.raw_set("is_arch", false)?;
    Ok(Value::Table(t))
}

/// Every regular file under `dir`, named relative to `root` with `/`, with its size.
fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        // Links are followed only when they stay inside.
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if !real.starts_with(root) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&real) else {
            continue;
        };
        if meta.is_dir() {
            if depth < LIST_DEPTH {
                walk(root, &path, depth + 1, out);
            }
        } else if let Ok(rel) = path.strip_prefix(root) {
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, meta.len()));
        }
    }
}

fn files(lua: &Lua) -> mlua::Result<Vec<(String, u64)>> {
    let root = root(lua)?;
    let mut out = Vec::new();
    walk(&root, &root, 0, &mut out);
    Ok(out)
}

/// Installs the `file` global.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set(
        "open",
        lua.create_function(|lua, args: Variadic<Value>| open(lua, &args))?,
    )?;
    m.raw_set(
        "close",
        lua.create_function(|lua, args: Variadic<Value>| {
            let ud = match args.first() {
                Some(Value::UserData(ud)) => ud.clone(),
                // Nothing open: nothing to do, as on the device.
                _ => match lua.named_registry_value::<Value>(CURRENT)? {
                    Value::UserData(ud) => ud,
                    _ => return Ok(()),
                },
            };
            close(&ud)
        })?,
    )?;
    m.raw_set(
        "read",
        lua.create_function(|lua, args: Variadic<Value>| read(lua, &current(lua)?, &args))?,
    )?;
    m.raw_set(
        "readline",
        lua.create_function(|lua, ()| {
            read(
                lua,
                &current(lua)?,
                &[Value::String(lua.create_string("\n")?)],
            )
        })?,
    )?;
    m.raw_set(
        "write",
        lua.create_function(|lua, args: Variadic<Value>| {
            write(&current(lua)?, "write", &args, false)
        })?,
    )?;
    m.raw_set(
        "writeline",
        lua.create_function(|lua, args: Variadic<Value>| {
            write(&current(lua)?, "writeline", &args, true)
        })?,
    )?;
    m.raw_set(
        "seek",
        lua.create_function(|lua, args: Variadic<Value>| seek(&current(lua)?, &args))?,
    )?;
    m.raw_set(
        "flush",
        lua.create_function(|lua, ()| Ok(with_file(&current(lua)?, File::flush)?.is_some()))?,
    )?;
    m.raw_set(
        "exists",
        lua.create_function(|lua, args: Variadic<Value>| {
            let name = name_arg("exists", &args, 1)?;
            Ok(resolve(lua, "exists", &name)?.is_file())
        })?,
    )?;
    m.raw_set(
        "remove",
        lua.create_function(|lua, args: Variadic<Value>| {
            let name = name_arg("remove", &args, 1)?;
            let path = resolve(lua, "remove", &name)?;
            if path.is_file() && std::fs::remove_file(&path).is_ok() {
                trace::emit(Kind::File, "remove", &name);
            }
            Ok(())
        })?,
    )?;
    m.raw_set(
        "rename",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (from_name, to_name) =
                (name_arg("rename", &args, 1)?, name_arg("rename", &args, 2)?);
            let from = resolve(lua, "rename", &from_name)?;
            let to = resolve(lua, "rename", &to_name)?;
            // The device refuses to overwrite.
            if !from.is_file() || to.exists() {
                return Ok(false);
            }
            let done = std::fs::rename(&from, &to).is_ok();
            if done {
                trace::emit(Kind::File, "rename", format_args!("{from_name} {to_name}"));
            }
            Ok(done)
        })?,
    )?;
    m.raw_set(
        "list",
        lua.create_function(|lua, args: Variadic<Value>| {
            let pattern = opt_bytes("list", &args, 1)?;
            let matcher: mlua::Function = lua.globals().get::<Table>("string")?.get("match")?;
            let t = lua.create_table()?;
            for (name, size) in files(lua)? {
                if let Some(p) = &pattern {
                    let hit: Value = matcher.call((name.as_str(), lua.create_string(p)?))?;
                    if hit.is_nil() {
                        continue;
                    }
                }
                t.raw_set(name, size)?;
            }
            Ok(t)
        })?,
    )?;
    m.raw_set(
        "fsinfo",
        lua.create_function(|lua, ()| {
            let total = u64::from(registry::shared(lua)?.config.board.flash_size) * 3 / 4;
            let used: u64 = files(lua)?.iter().map(|(_, s)| s).sum();
            Ok((total.saturating_sub(used), used, total))
        })?,
    )?;
    m.raw_set(
        "stat",
        lua.create_function(|lua, args: Variadic<Value>| stat(lua, &args))?,
    )?;
    m.raw_set(
        "getcontents",
        lua.create_function(|lua, args: Variadic<Value>| {
            let path = resolve(lua, "getcontents", &name_arg("getcontents", &args, 1)?)?;
            match std::fs::read(path) {
                Ok(b) => Ok(Value::String(lua.create_string(&b)?)),
                Err(_) => Ok(Value::Nil),
            }
        })?,
    )?;
    m.raw_set(
        "putcontents",
        lua.create_function(|lua, args: Variadic<Value>| {
            let name = name_arg("putcontents", &args, 1)?;
            let path = resolve(lua, "putcontents", &name)?;
            let data = check_bytes("putcontents", &args, 2)?;
            let done = std::fs::write(path, &data).is_ok();
            if done {
                trace::emit(Kind::File, "write", format_args!("{name} {}", data.len()));
            }
            Ok(done.then_some(true))
        })?,
    )?;
    lua.globals().raw_set("file", m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_confined_to_the_root() {
        let dir = std::env::temp_dir().join(format!("tern-fs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let root = dir.canonicalize().unwrap();
        assert_eq!(resolve_in(&root, "a.txt"), Ok(root.join("a.txt")));
        assert_eq!(resolve_in(&root, "sub/b.txt"), Ok(root.join("sub/b.txt")));
        assert_eq!(resolve_in(&root, "../x"), Err("contains '..'"));
        assert_eq!(resolve_in(&root, "sub/../../x"), Err("contains '..'"));
        assert_eq!(resolve_in(&root, "/etc/passwd"), Err("is an absolute path"));
        assert_eq!(resolve_in(&root, ""), Err("is empty"));
        #[cfg(unix)]
        {
            let _ = std::fs::remove_file(root.join("out"));
            std::os::unix::fs::symlink("/tmp", root.join("out")).unwrap();
            assert_eq!(
                resolve_in(&root, "out/x"),
                Err("leads outside through a link")
            );
            let _ = std::fs::remove_file(root.join("dangling"));
            std::os::unix::fs::symlink("/nonexistent/tern", root.join("dangling")).unwrap();
            assert_eq!(
                resolve_in(&root, "dangling"),
                Err("is a link that leads nowhere")
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn civil_time_of_a_known_instant() {
        let lua = Lua::new();
        // 2021-03-04 05:06:07 UTC.
        let t = civil_time(&lua, 1_614_834_367).unwrap();
        let get = |k: &str| t.raw_get::<i64>(k).unwrap();
        assert_eq!(
            (
                get("year"),
                get("mon"),
                get("day"),
                get("hour"),
                get("min"),
                get("sec")
            ),
            (2021, 3, 4, 5, 6, 7)
        );
    }
}
