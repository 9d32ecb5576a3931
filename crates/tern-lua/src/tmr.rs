//! The `tmr` module: timer objects with the device's semantics (NodeMCU `tmr.create()`,
//! `register`/`start`/`alarm`/`stop`/`unregister`/`interval`/`state`), the legacy static
//! API (`tmr.alarm(id, ms, mode, fn)` and friends on timers 0..6), plus `tmr.now()`,
//! `tmr.time()`, `tmr.delay()`, `tmr.wdclr()`, `tmr.softwd()` and `tmr.ccount()`.
//!
//! An armed timer is a task sleeping until its deadline and then queueing an expiry; the
//! loop runs the callback. Each arming has a generation number, so an expiry already queued
//! when the timer was stopped or re-armed is recognised as stale and dropped.

use std::cell::RefCell;
use std::time::Duration;

use mlua::{AnyUserData, Function, Lua, UserData, UserDataMethods, Value, Variadic};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::args::{bad_arg, check_integer, lua_error, opt_flag, type_name};
use crate::registry::{self, LoopEvent};

/// Longest interval the device accepts, in milliseconds (its `tmr` range check).
pub const MAX_INTERVAL_MS: i64 = 6_870_947;

/// Where a timer keeps its callback: a named user value, so a callback that references its
/// own timer does not make an uncollectable cycle through Rust.
const CALLBACK: &str = "fn";

/// `tmr.ALARM_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Fires once, then unregisters itself.
    Single = 0,
    /// Fires every interval until stopped.
    Auto = 1,
    /// Fires once and stays registered; `start()` arms it again.
    Semi = 2,
}

#[derive(Debug)]
struct State {
    interval: Duration,
    mode: Mode,
    registered: bool,
    running: bool,
    /// Bumped at every arming and disarming; expiries carry the value they were armed with.
    generation: u64,
    task: Option<AbortHandle>,
}

/// A `tmr` timer object.
#[derive(Debug)]
pub(crate) struct Timer {
    id: u64,
    state: RefCell<State>,
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(task) = self.state.get_mut().task.take() {
            task.abort();
        }
    }
}

fn timer(ud: &AnyUserData) -> mlua::Result<mlua::UserDataRef<Timer>> {
    ud.borrow::<Timer>()
}

fn interval_arg(func: &str, args: &[Value], pos: usize) -> mlua::Result<Duration> {
    let ms = check_integer(func, args, pos)?;
    if !(1..=MAX_INTERVAL_MS).contains(&ms) {
        return Err(bad_arg(func, pos, format!("Range: 1-{MAX_INTERVAL_MS}")));
    }
    Ok(Duration::from_millis(ms.unsigned_abs()))
}

fn mode_arg(func: &str, args: &[Value], pos: usize) -> mlua::Result<Mode> {
    match check_integer(func, args, pos)? {
        0 => Ok(Mode::Single),
        1 => Ok(Mode::Auto),
        2 => Ok(Mode::Semi),
        _ => Err(bad_arg(func, pos, "invalid timer mode")),
    }
}

/// Starts (or restarts) the timer's countdown and roots it.
fn arm(lua: &Lua, ud: &AnyUserData) -> mlua::Result<()> {
    let shared = registry::shared(lua)?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(lua_error(
            "tmr: the tern runtime is not running (no tokio runtime)",
        ));
    }
    let t = timer(ud)?;
    let mut st = t.state.borrow_mut();
    if let Some(task) = st.task.take() {
        task.abort();
    }
    st.generation += 1;
    st.running = true;
    let handle = tokio::spawn(countdown(
        shared.tx.clone(),
        t.id,
        st.generation,
        st.interval,
        st.mode == Mode::Auto,
    ));
    st.task = Some(handle.abort_handle());
    drop(st);
    registry::root(lua, t.id, ud)
}

/// Stops the countdown and unroots the timer; registration is untouched.
fn disarm(lua: &Lua, t: &Timer) -> mlua::Result<()> {
    let mut st = t.state.borrow_mut();
    if let Some(task) = st.task.take() {
        task.abort();
    }
    st.generation += 1;
    st.running = false;
    drop(st);
    registry::unroot(lua, t.id)
}

async fn countdown(
    tx: mpsc::Sender<LoopEvent>,
    id: u64,
    generation: u64,
    period: Duration,
    periodic: bool,
) {
    let mut next = tokio::time::Instant::now() + period;
    loop {
        tokio::time::sleep_until(next).await;
        if tx.send(LoopEvent::Timer { id, generation }).await.is_err() || !periodic {
            return;
        }
        // Keep the period's phase, but never schedule in the past after a slow callback.
        next = (next + period).max(tokio::time::Instant::now());
    }
}

/// Runs a timer's callback for an expiry queued by arming `generation`.
pub(crate) fn fire(lua: &Lua, ud: &AnyUserData, generation: u64) -> mlua::Result<()> {
    let Ok(t) = timer(ud) else {
        return Ok(());
    };
    let mode = {
        let st = t.state.borrow();
        if !st.running || st.generation != generation {
            return Ok(());
        }
        st.mode
    };
    let callback: Option<Function> = ud.named_user_value(CALLBACK)?;
    match mode {
        Mode::Auto => {}
        Mode::Semi => disarm(lua, &t)?,
        Mode::Single => {
            // The device unregisters before calling, so the callback may register again.
            disarm(lua, &t)?;
            t.state.borrow_mut().registered = false;
            ud.set_named_user_value(CALLBACK, Value::Nil)?;
        }
    }
    drop(t);
    match callback {
        Some(f) => f.call::<()>(ud.clone()),
        None => Ok(()),
    }
}

/// `register(ms, mode, fn)`; the arguments are at positions `base + 1..=base + 3`.
fn register(
    lua: &Lua,
    ud: &AnyUserData,
    func: &str,
    args: &[Value],
    base: usize,
) -> mlua::Result<()> {
    let interval = interval_arg(func, args, base + 1)?;
    let mode = mode_arg(func, args, base + 2)?;
    let callback = match args.get(base + 2) {
        Some(Value::Function(f)) => f.clone(),
        other => {
            let got = other.map_or("no value", type_name);
            return Err(bad_arg(
                func,
                base + 3,
                format!("function expected, got {got}"),
            ));
        }
    };
    let t = timer(ud)?;
    // Re-registering a running timer stops it first (as the device does).
    if t.state.borrow().running {
        disarm(lua, &t)?;
    }
    {
        let mut st = t.state.borrow_mut();
        st.interval = interval;
        st.mode = mode;
        st.registered = true;
    }
    drop(t);
    ud.set_named_user_value(CALLBACK, callback)
}

/// `start([restart])`: false when already running (unless `restart`), error when
/// unregistered.
fn start(lua: &Lua, ud: &AnyUserData, func: &str, restart: bool) -> mlua::Result<bool> {
    let (registered, running) = {
        let t = timer(ud)?;
        let st = t.state.borrow();
        (st.registered, st.running)
    };
    if !registered {
        return Err(lua_error(format!("{func}: timer not registered")));
    }
    if running && !restart {
        return Ok(false);
    }
    arm(lua, ud)?;
    Ok(true)
}

fn stop(lua: &Lua, ud: &AnyUserData) -> mlua::Result<bool> {
    let t = timer(ud)?;
    if !t.state.borrow().running {
        return Ok(false);
    }
    disarm(lua, &t)?;
    Ok(true)
}

fn unregister(lua: &Lua, ud: &AnyUserData) -> mlua::Result<()> {
    let t = timer(ud)?;
    disarm(lua, &t)?;
    t.state.borrow_mut().registered = false;
    drop(t);
    ud.set_named_user_value(CALLBACK, Value::Nil)
}

/// `interval(ms)`, the argument at position `base + 1`.
fn interval(lua: &Lua, ud: &AnyUserData, args: &[Value], base: usize) -> mlua::Result<()> {
    let interval = interval_arg("interval", args, base + 1)?;
    let running = {
        let t = timer(ud)?;
        let mut st = t.state.borrow_mut();
        st.interval = interval;
        st.running
    };
    if running {
        arm(lua, ud)?;
    }
    Ok(())
}

fn state(ud: &AnyUserData) -> mlua::Result<Variadic<Value>> {
    let t = timer(ud)?;
    let st = t.state.borrow();
    // The device returns a single nil for an unregistered timer.
    let values = if st.registered {
        vec![Value::Boolean(st.running), Value::Integer(st.mode as i64)]
    } else {
        vec![Value::Nil]
    };
    Ok(Variadic::from_iter(values))
}

impl UserData for Timer {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_function(
            "register",
            |lua, (ud, args): (AnyUserData, Variadic<Value>)| {
                register(lua, &ud, "register", &args, 0)
            },
        );
        methods.add_function(
            "start",
            |lua, (ud, args): (AnyUserData, Variadic<Value>)| {
                let restart = opt_flag("start", &args, 1, false)?;
                start(lua, &ud, "start", restart)
            },
        );
        methods.add_function(
            "alarm",
            |lua, (ud, args): (AnyUserData, Variadic<Value>)| {
                register(lua, &ud, "alarm", &args, 0)?;
                start(lua, &ud, "alarm", false)
            },
        );
        methods.add_function("stop", |lua, ud: AnyUserData| stop(lua, &ud));
        methods.add_function("unregister", |lua, ud: AnyUserData| unregister(lua, &ud));
        methods.add_function(
            "interval",
            |lua, (ud, args): (AnyUserData, Variadic<Value>)| interval(lua, &ud, &args, 0),
        );
        methods.add_function("state", |_, ud: AnyUserData| state(&ud));
        methods.add_meta_function("__tostring", |_, ud: AnyUserData| {
            Ok(format!("timer: {:p}", ud.to_pointer()))
        });
    }
}

/// A new, unregistered timer object.
fn new_timer(lua: &Lua) -> mlua::Result<AnyUserData> {
    let shared = registry::shared(lua)?;
    let id = shared.next_id();
    let ud = lua.create_userdata(Timer {
        id,
        state: RefCell::new(State {
            interval: Duration::from_millis(1),
            mode: Mode::Single,
            registered: false,
            running: false,
            generation: 0,
            task: None,
        }),
    })?;
    registry::track(lua, id, &ud)?;
    crate::plain_method_errors(lua, &ud, "tmr.timer")?;
    Ok(ud)
}

/// The legacy static API's timer for `tmr.FUNC(id, ...)` (ids 0..6, created on first use
/// and kept), or the object of `tmr.FUNC(t, ...)`; and where the call's own arguments
/// start (`base`).
fn static_timer(lua: &Lua, func: &str, args: &[Value]) -> mlua::Result<(AnyUserData, usize)> {
    if let Some(Value::UserData(ud)) = args.first() {
        timer(ud)?;
        return Ok((ud.clone(), 1));
    }
    // The oldest firmware's forms have no id and use timer 0: `tmr.alarm(ms, repeat, fn)`,
    // `tmr.stop()`.
    let (id, base) = match (args.first(), args.get(2)) {
        (None | Some(Value::Nil), _) => (0, 0),
        (_, Some(Value::Function(_))) if matches!(func, "alarm" | "register") => (0, 0),
        _ => (check_integer(func, args, 1)?, 1),
    };
    static_timer_id(lua, func, id, base)
}

fn static_timer_id(
    lua: &Lua,
    func: &str,
    id: i64,
    base: usize,
) -> mlua::Result<(AnyUserData, usize)> {
    if !(0..STATIC_TIMERS).contains(&id) {
        return Err(bad_arg(
            func,
            1,
            format!("invalid timer index (0..{})", STATIC_TIMERS - 1),
        ));
    }
    let table: mlua::Table = match lua.named_registry_value::<Value>(STATIC)? {
        Value::Table(t) => t,
        _ => {
            let t = lua.create_table()?;
            lua.set_named_registry_value(STATIC, &t)?;
            t
        }
    };
    if let Value::UserData(ud) = table.raw_get::<Value>(id)? {
        return Ok((ud, base));
    }
    let ud = new_timer(lua)?;
    table.raw_set(id, &ud)?;
    Ok((ud, base))
}

/// How many static timers the legacy API has (the ESP8266's `NUM_TMR`).
const STATIC_TIMERS: i64 = 7;
/// Registry slot of the static timers.
const STATIC: &str = "tern.tmr.static";
/// Registry slot of the `tmr.softwd` timer.
const SOFTWD: &str = "tern.tmr.softwd";

/// The legacy static functions: `tmr.alarm(id, ms, mode, fn)`, `tmr.stop(id)`, ….
fn install_static(lua: &Lua, m: &mlua::Table) -> mlua::Result<()> {
    m.raw_set(
        "register",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (ud, base) = static_timer(lua, "register", &args)?;
            register(lua, &ud, "register", &args, base)
        })?,
    )?;
    m.raw_set(
        "alarm",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (ud, base) = static_timer(lua, "alarm", &args)?;
            register(lua, &ud, "alarm", &args, base)?;
            start(lua, &ud, "alarm", false)
        })?,
    )?;
    m.raw_set(
        "start",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (ud, base) = static_timer(lua, "start", &args)?;
            let restart = opt_flag("start", &args, base + 1, false)?;
            start(lua, &ud, "start", restart)
        })?,
    )?;
    m.raw_set(
        "stop",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (ud, _) = static_timer(lua, "stop", &args)?;
            stop(lua, &ud)
        })?,
    )?;
    m.raw_set(
        "unregister",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (ud, _) = static_timer(lua, "unregister", &args)?;
            unregister(lua, &ud)
        })?,
    )?;
    m.raw_set(
        "interval",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (ud, base) = static_timer(lua, "interval", &args)?;
            interval(lua, &ud, &args, base)
        })?,
    )?;
    m.raw_set(
        "state",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (ud, _) = static_timer(lua, "state", &args)?;
            state(&ud)
        })?,
    )?;
    m.raw_set(
        "softwd",
        lua.create_function(|lua, args: Variadic<Value>| {
            let secs = check_integer("softwd", &args, 1)?;
            let ud = match lua.named_registry_value::<Value>(SOFTWD)? {
                Value::UserData(ud) => ud,
                _ => {
                    let ud = new_timer(lua)?;
                    lua.set_named_registry_value(SOFTWD, &ud)?;
                    ud
                }
            };
            if secs <= 0 {
                unregister(lua, &ud)?;
                return Ok(());
            }
            let expire = lua.create_function(|lua, _: Value| {
                eprintln!("tern: tmr.softwd expired: restarting");
                let shared = registry::shared(lua)?;
                let r = crate::config::Reboot::After(
                    shared.config.board.boot_time,
                    crate::config::BootReason::Watchdog,
                );
                crate::node::trace_reboot(&r);
                shared.reboot.set(Some(r));
                Ok(())
            })?;
            let ms = secs.saturating_mul(1000).min(MAX_INTERVAL_MS);
            let args = [
                Value::Integer(ms),
                Value::Integer(0),
                Value::Function(expire),
            ];
            register(lua, &ud, "softwd", &args, 0)?;
            start(lua, &ud, "softwd", true)?;
            Ok(())
        })?,
    )?;
    Ok(())
}

/// Installs the `tmr` global.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set("ALARM_SINGLE", Mode::Single as i64)?;
    m.raw_set("ALARM_AUTO", Mode::Auto as i64)?;
    m.raw_set("ALARM_SEMI", Mode::Semi as i64)?;
    m.raw_set("create", lua.create_function(|lua, ()| new_timer(lua))?)?;
    install_static(lua, &m)?;
    m.raw_set(
        "now",
        lua.create_function(|lua, ()| {
            // A 31-bit microsecond counter, wrapping as on the device.
            let us = registry::shared(lua)?.started.elapsed().as_micros();
            Ok(i64::try_from(us & 0x7fff_ffff).unwrap_or(0))
        })?,
    )?;
    m.raw_set(
        "time",
        lua.create_function(|lua, ()| {
            let s = registry::shared(lua)?.started.elapsed().as_secs();
            Ok(i64::try_from(s).unwrap_or(i64::MAX))
        })?,
    )?;
    m.raw_set(
        "delay",
        lua.create_function(|_, args: Variadic<Value>| {
            let us = check_integer("delay", &args, 1)?;
            // Busy-waits on the device; here it blocks the one Lua thread just the same.
            std::thread::sleep(Duration::from_micros(us.max(0).unsigned_abs()));
            Ok(())
        })?,
    )?;
    m.raw_set("wdclr", lua.create_function(|_, ()| Ok(()))?)?;
    m.raw_set(
        "ccount",
        lua.create_function(|lua, ()| {
            // An 80 MHz cycle counter, 32 bits wrapping.
            let us = registry::shared(lua)?.started.elapsed().as_micros();
            Ok(i64::try_from(us.wrapping_mul(80) & 0xffff_ffff).unwrap_or(0))
        })?,
    )?;
    lua.globals().raw_set("tmr", m)
}
