//! The `node` module: the board's facts from [`Board`](crate::board::Board), reboots
//! (`restart`, `dsleep`: the script starts again from a fresh Lua state), `uptime`, `random`,
//! `compile`, `egc` and `task.post`.

use std::hash::{BuildHasher, Hasher};

use mlua::{Function, Lua, Table, UserData, Value, Variadic};

use crate::args::{bad_arg, check_bytes, check_integer, lua_error, opt_integer, type_name};
use crate::config::{BootReason, Reboot};
use crate::registry::{self, LoopEvent};
use crate::trace::{self, Kind};

/// Where a posted task keeps its function.
const TASK_FN: &str = "fn";

/// A function posted with `node.task.post`, waiting for its turn.
#[derive(Debug)]
struct Task {
    priority: i64,
}

impl UserData for Task {}

/// Runs the posted task `id` (from the loop).
pub(crate) fn run_task(lua: &Lua, id: u64) -> mlua::Result<()> {
    let Some(ud) = registry::lookup(lua, id)? else {
        return Ok(());
    };
    registry::unroot(lua, id)?;
    let priority = ud.borrow::<Task>()?.priority;
    let f: Option<Function> = ud.named_user_value(TASK_FN)?;
    match f {
        Some(f) => f.call::<()>(priority),
        None => Ok(()),
    }
}

/// `node.task.post([priority,] fn)`.
fn post(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    const F: &str = "post";
    let (priority, f) = match (args.first(), args.get(1)) {
        (Some(Value::Function(f)), _) => (1, f.clone()),
        (Some(_), Some(Value::Function(f))) => {
            let p = check_integer(F, args, 1)?;
            if !(0..=2).contains(&p) {
                return Err(bad_arg(F, 1, "priority must be 0, 1 or 2"));
            }
            (p, f.clone())
        }
        (None, _) => return Err(bad_arg(F, 1, "function expected, got no value")),
        (Some(_), other) => {
            let got = other.map_or("no value", type_name);
            return Err(bad_arg(F, 2, format!("function expected, got {got}")));
        }
    };
    let shared = registry::shared(lua)?;
    let id = shared.next_id();
    let ud = lua.create_userdata(Task { priority })?;
    ud.set_named_user_value(TASK_FN, f)?;
    registry::track(lua, id, &ud)?;
    shared
        .tx
        .try_send(LoopEvent::Task { id })
        .map_err(|_| lua_error("node.task.post: task queue full"))?;
    registry::root(lua, id, &ud)
}

/// A random 64-bit value from the operating system's hasher keys and a counter (the device
/// reads a hardware generator; this needs no dependency and is not for cryptography).
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// `node.random()`: [0, 1); `node.random(n)`: 1..=n; `node.random(l, u)`: l..=u.
fn random(args: &[Value]) -> mlua::Result<Value> {
    const F: &str = "random";
    let bits = random_u64();
    let (lo, hi) = match (opt_integer(F, args, 1)?, opt_integer(F, args, 2)?) {
        (None, _) => {
            // 53 random bits: a uniform double in [0, 1).
            #[allow(clippy::cast_precision_loss)]
            let x = (bits >> 11) as f64 / (1u64 << 53) as f64;
            return Ok(Value::Number(x));
        }
        (Some(n), None) => (1, n),
        (Some(l), Some(u)) => (l, u),
    };
    if lo > hi {
        return Err(bad_arg(F, 2, "interval is empty"));
    }
    let span = hi.abs_diff(lo).saturating_add(1);
    let offset = bits % span;
    Ok(Value::Integer(lo.wrapping_add_unsigned(offset)))
}

/// `node.info([group])`.
fn info(lua: &Lua, args: &[Value]) -> mlua::Result<Variadic<Value>> {
    let b = &registry::shared(lua)?.config.board;
    let group = match args.first() {
        None | Some(Value::Nil) => None,
        Some(_) => Some(String::from_utf8_lossy(&check_bytes("info", args, 1)?).into_owned()),
    };
    let (major, minor, dev) = b.version;
    let Some(group) = group else {
        // The legacy form: majorVer, minorVer, devVer, chipid, flashid, flashsize,
        // flashmode, flashspeed.
        let v = [
            i64::from(major),
            i64::from(minor),
            i64::from(dev),
            i64::from(b.chip_id),
            i64::from(b.flash_id),
            i64::from(b.flash_size / 1024),
            0,
            40_000_000,
        ];
        return Ok(v.into_iter().map(Value::Integer).collect());
    };
    let t = lua.create_table()?;
    match group.as_str() {
        "hw" => {
            t.raw_set("chip_id", b.chip_id)?;
            t.raw_set("flash_id", b.flash_id)?;
            t.raw_set("flash_size", b.flash_size / 1024)?;
            t.raw_set("flash_mode", 0)?;
            t.raw_set("flash_speed", 40_000_000)?;
        }
        "sw_version" => {
            t.raw_set("git_branch", "tern")?;
            t.raw_set("git_commit_id", env!("CARGO_PKG_VERSION"))?;
            t.raw_set("git_release", format!("{major}.{minor}.{dev}"))?;
            t.raw_set("git_commit_dts", "")?;
            t.raw_set("node_version_major", major)?;
            t.raw_set("node_version_minor", minor)?;
            t.raw_set("node_version_revision", dev)?;
        }
        "build_config" => {
            t.raw_set("ssl", true)?;
            t.raw_set("lfs_size", 0)?;
            t.raw_set("modules", crate::module_names(lua)?.replace(", ", ","))?;
            t.raw_set("number_type", "float")?;
        }
        other => return Err(bad_arg("info", 1, format!("invalid group '{other}'"))),
    }
    Ok(Variadic::from_iter([Value::Table(t)]))
}

fn reboot(lua: &Lua, r: Reboot) -> mlua::Result<()> {
    trace_reboot(&r);
    registry::shared(lua)?.reboot.set(Some(r));
    Ok(())
}

/// `--trace node`: `node restart MS`, `node dsleep MS` (until the board is up again), `node
/// watchdog MS`, `node dsleep forever`.
pub(crate) fn trace_reboot(r: &Reboot) {
    match r {
        Reboot::After(after, reason) => {
            let what = match reason {
                BootReason::DeepSleepWake => "dsleep",
                BootReason::Watchdog => "watchdog",
                BootReason::Restart | BootReason::PowerOn => "restart",
            };
            trace::emit(Kind::Node, what, after.as_millis());
        }
        Reboot::SleepForever => trace::emit(Kind::Node, "dsleep", "forever"),
    }
}

/// `node.compile(name)`: there is no device bytecode here; the source is kept under the
/// `.lc` name, so `dofile("name.lc")` works as on the device.
fn compile(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    let name = String::from_utf8_lossy(&check_bytes("compile", args, 1)?).into_owned();
    let src = crate::file::resolve(lua, "compile", &name)?;
    let Some(stem) = name.strip_suffix(".lua") else {
        return Err(bad_arg("compile", 1, "not a .lua file"));
    };
    let dst = crate::file::resolve(lua, "compile", &format!("{stem}.lc"))?;
    std::fs::copy(&src, &dst)
        .map_err(|e| lua_error(format!("compile: cannot compile {name}: {e}")))?;
    eprintln!("tern: node.compile({name}): kept as source in {stem}.lc (no bytecode on a PC)");
    Ok(())
}

/// Installs the `node` global.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    // `--trace node`: `node boot REASON` as each boot starts.
    let reason = match registry::shared(lua)?.config.boot_reason {
        BootReason::PowerOn => "power_on",
        BootReason::Restart => "restart",
        BootReason::Watchdog => "watchdog",
        BootReason::DeepSleepWake => "dsleep_wake",
    };
    trace::emit(Kind::Node, "boot", reason);
    let m = lua.create_table()?;
    let board = |f: fn(&crate::board::Board) -> u32| {
        lua.create_function(move |lua, ()| Ok(f(&registry::shared(lua)?.config.board)))
    };
    m.raw_set("heap", board(|b| b.heap)?)?;
    m.raw_set("chipid", board(|b| b.chip_id)?)?;
    m.raw_set("flashid", board(|b| b.flash_id)?)?;
    m.raw_set("flashsize", board(|b| b.flash_size)?)?;
    m.raw_set(
        "info",
        lua.create_function(|lua, args: Variadic<Value>| info(lua, &args))?,
    )?;
    m.raw_set(
        "restart",
        lua.create_function(|lua, ()| {
            let boot = registry::shared(lua)?.config.board.boot_time;
            reboot(lua, Reboot::After(boot, BootReason::Restart))
        })?,
    )?;
    m.raw_set(
        "dsleep",
        lua.create_function(|lua, args: Variadic<Value>| {
            let us = check_integer("dsleep", &args, 1)?;
            if us < 0 {
                return Err(bad_arg("dsleep", 1, "microseconds must not be negative"));
            }
            let boot = registry::shared(lua)?.config.board.boot_time;
            let r = if us == 0 {
                Reboot::SleepForever
            } else {
                Reboot::After(
                    std::time::Duration::from_micros(us.unsigned_abs()) + boot,
                    BootReason::DeepSleepWake,
                )
            };
            reboot(lua, r)
        })?,
    )?;
    m.raw_set(
        "bootreason",
        lua.create_function(|lua, ()| Ok(registry::shared(lua)?.config.boot_reason.codes()))?,
    )?;
    m.raw_set(
        "uptime",
        lua.create_function(|lua, ()| {
            let us = registry::shared(lua)?.started.elapsed().as_micros();
            Ok(i64::try_from(us).unwrap_or(i64::MAX))
        })?,
    )?;
    m.raw_set(
        "random",
        lua.create_function(|_, args: Variadic<Value>| random(&args))?,
    )?;
    m.raw_set(
        "compile",
        lua.create_function(|lua, args: Variadic<Value>| compile(lua, &args))?,
    )?;
    m.raw_set(
        "setcpufreq",
        lua.create_function(|_, args: Variadic<Value>| {
            match check_integer("setcpufreq", &args, 1)? {
                f @ (80 | 160 | 240) => Ok(f),
                _ => Err(bad_arg("setcpufreq", 1, "frequency must be 80 or 160")),
            }
        })?,
    )?;
    m.raw_set("CPU80MHZ", 80)?;
    m.raw_set("CPU160MHZ", 160)?;
    let egc = lua.create_table()?;
    egc.raw_set(
        "setmode",
        lua.create_function(|_, args: Variadic<Value>| {
            // The PC's collector needs no tuning: accepted and ignored.
            check_integer("setmode", &args, 1)?;
            Ok(())
        })?,
    )?;
    for (name, v) in [
        ("NOT_ACTIVE", 0),
        ("ON_ALLOC_FAILURE", 1),
        ("ON_MEM_LIMIT", 2),
        ("ALWAYS", 4),
    ] {
        egc.raw_set(name, v)?;
    }
    m.raw_set("egc", egc)?;
    let task: Table = lua.create_table()?;
    task.raw_set(
        "post",
        lua.create_function(|lua, args: Variadic<Value>| post(lua, &args))?,
    )?;
    task.raw_set("LOW_PRIORITY", 0)?;
    task.raw_set("MEDIUM_PRIORITY", 1)?;
    task.raw_set("HIGH_PRIORITY", 2)?;
    m.raw_set("task", task)?;
    lua.globals().raw_set("node", m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_stays_in_its_interval() {
        for _ in 0..200 {
            let Value::Number(x) = random(&[]).unwrap() else {
                panic!("a number")
            };
            assert!((0.0..1.0).contains(&x));
            let Value::Integer(n) = random(&[Value::Integer(-3), Value::Integer(3)]).unwrap()
            else {
                panic!("an integer")
            };
            assert!((-3..=3).contains(&n));
        }
        assert!(random(&[Value::Integer(5), Value::Integer(1)]).is_err());
    }

    #[test]
    fn task_userdata_is_plain() {
        let lua = Lua::new();
        let ud: mlua::AnyUserData = lua.create_userdata(Task { priority: 2 }).unwrap();
        assert_eq!(ud.borrow::<Task>().unwrap().priority, 2);
    }
}
