//! The `gpio` module on simulated pins: ESP8266's `mode`/`read`/`write`/`trig`/`serout` and
//! ESP32's `config`/`trig`, with both firmwares' constants in one table.
//!
//! - Pins 0..39 exist (ESP8266 boards have 0..12; ESP32 up to 39). An output pin reads back
//!   its driven level; an input reads the simulation's level (1, idle and pulled up, unless
//!   the board says otherwise or a change was scheduled or typed on stdin), whatever pull
//!   (`gpio.PULLUP`/`FLOAT`, ESP32's `pull`) was asked for.
//! - `gpio.trig(pin, "up"|"down"|"both"|"low"|"high"|"none"[, fn])` (ESP8266) calls
//!   `fn(level, when, eventcount)` (`when` in µs, as `tmr.now()`, wrapping at 2^31;
//!   `eventcount` 1) for a change of an input in `gpio.INT` mode, as on the device (a pin in
//!   another mode raises nothing). `gpio.trig(pin, gpio.INTR_UP|..., fn)` (ESP32) calls
//!   `fn(pin, level)` for any pin not configured as output. A level trigger ("low"/"high")
//!   fires once per change into that level (the device repeats it while the level holds).
//! - `gpio.serout` drives the pin through the levels: with a callback it runs in the
//!   background (changes traced at their times, the callback called at the end); without,
//!   it blocks for the total time, as on the device.
//! - Every output change is a `--trace gpio` line `N LEVEL`; input changes `N.in LEVEL`,
//!   modes `N.mode NAME`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value, Variadic};

use crate::args::{bad_arg, check_integer, lua_error, opt_integer, type_name};
use crate::registry;
use crate::sim::{Board, BoardEvent};
use crate::trace::{self, Kind};

/// Highest pin number accepted (ESP32's GPIO39).
const MAX_PIN: i64 = 39;
/// Registry table: pin → interrupt callback.
const TRIG: &str = "tern.gpio.trig";
/// Registry table: serout id → completion callback.
const SEROUT: &str = "tern.gpio.serout";
/// ESP8266's limit on `serout`'s delay table.
const DELAY_TABLE_MAX_LEN: usize = 256;

// ESP8266 constants.
const INPUT: i64 = 0;
const OUTPUT: i64 = 1;
const INT: i64 = 2;
const OPENDRAIN: i64 = 3;
const FLOAT: i64 = 0;
const PULLUP: i64 = 1;
// ESP32 constants (`gpio.config`, `gpio.trig`).
const IN: i64 = 1;
const OUT: i64 = 2;
const IN_OUT: i64 = 3;
const PULL_UP: i64 = 0;
const PULL_DOWN: i64 = 1;
const PULL_UP_DOWN: i64 = 2;
const FLOATING: i64 = 3;
const INTR_NAMES: [&str; 6] = ["none", "up", "down", "both", "low", "high"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Input,
    Output,
    OpenDrain,
    Int,
    InOut,
}

impl Mode {
    const fn name(self) -> &'static str {
        match self {
            Self::Input => "INPUT",
            Self::Output => "OUTPUT",
            Self::OpenDrain => "OPENDRAIN",
            Self::Int => "INT",
            Self::InOut => "IN_OUT",
        }
    }

    const fn drives(self) -> bool {
        matches!(self, Self::Output | Self::OpenDrain)
    }
}

/// Interrupt type: the index into [`INTR_NAMES`], which is also ESP32's `gpio.INTR_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trig {
    None = 0,
    Up = 1,
    Down = 2,
    Both = 3,
    Low = 4,
    High = 5,
}

impl Trig {
    const ALL: [Self; 6] = [
        Self::None,
        Self::Up,
        Self::Down,
        Self::Both,
        Self::Low,
        Self::High,
    ];

    fn fires(self, old: u8, new: u8) -> bool {
        if old == new {
            return false;
        }
        match self {
            Self::None => false,
            Self::Up | Self::High => new == 1,
            Self::Down | Self::Low => new == 0,
            Self::Both => true,
        }
    }
}

/// Which firmware's `trig` form armed a pin: decides the callback's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Esp8266,
    Esp32,
}

#[derive(Debug, Clone)]
struct Pin {
    mode: Option<Mode>,
    out: Option<u8>,
    input: u8,
    trig: Trig,
    style: Style,
}

/// The pins' state, in the Lua state's app data.
#[derive(Debug, Default)]
pub(crate) struct Pins {
    pins: BTreeMap<u8, Pin>,
    boot_inputs: BTreeMap<u8, u8>,
    next_serout: u64,
    serouts_running: usize,
}

impl Pins {
    fn pin(&mut self, n: u8) -> &mut Pin {
        let input = self.boot_inputs.get(&n).copied().unwrap_or(1);
        self.pins.entry(n).or_insert(Pin {
            mode: None,
            out: None,
            input,
            trig: Trig::None,
            style: Style::Esp8266,
        })
    }
}

type Shared = Rc<RefCell<Pins>>;

fn pins(lua: &Lua) -> mlua::Result<Shared> {
    lua.app_data_ref::<Shared>()
        .map(|p| Rc::clone(&p))
        .ok_or_else(|| lua_error("gpio: module not installed"))
}

/// Resets the pins to the board's boot state.
pub(crate) fn configure(lua: &Lua, board: &Board) -> mlua::Result<()> {
    let p = pins(lua)?;
    let mut p = p.borrow_mut();
    p.pins.clear();
    p.boot_inputs = board.inputs.clone();
    drop(p);
    lua.set_named_registry_value(TRIG, lua.create_table()?)
}

/// True when a callback could observe an input change (a `trig` is armed).
pub(crate) fn watching(lua: &Lua) -> mlua::Result<bool> {
    let p = pins(lua)?;
    let p = p.borrow();
    Ok(p.pins.values().any(|pin| pin.trig != Trig::None))
}

/// True while a background `serout` runs.
pub(crate) fn busy(lua: &Lua) -> mlua::Result<bool> {
    Ok(pins(lua)?.borrow().serouts_running > 0)
}

fn pin_arg(func: &str, args: &[Value], pos: usize) -> mlua::Result<u8> {
    let n = check_integer(func, args, pos)?;
    if !(0..=MAX_PIN).contains(&n) {
        return Err(bad_arg(func, pos, "Invalid pin"));
    }
    // In range just above.
    Ok(u8::try_from(n).unwrap_or(0))
}

/// `read`/`write`: the device's MOD_CHECK_ID message for a pin that does not exist.
fn existing_pin(func: &str, args: &[Value]) -> mlua::Result<u8> {
    let n = check_integer(func, args, 1)?;
    u8::try_from(n)
        .ok()
        .filter(|n| i64::from(*n) <= MAX_PIN)
        .ok_or_else(|| lua_error(format!("gpio {n} does not exist")))
}

fn level_arg(func: &str, args: &[Value], pos: usize, msg: &str) -> mlua::Result<u8> {
    match check_integer(func, args, pos)? {
        0 => Ok(0),
        1 => Ok(1),
        _ => Err(bad_arg(func, pos, msg)),
    }
}

/// Drives `pin` to `level`, tracing a change.
fn drive(p: &mut Pins, n: u8, level: u8) {
    let pin = p.pin(n);
    if pin.out != Some(level) {
        pin.out = Some(level);
        trace::emit(Kind::Gpio, n, level);
    }
}

fn set_mode(p: &mut Pins, n: u8, mode: Mode) {
    let pin = p.pin(n);
    if pin.mode != Some(mode) {
        pin.mode = Some(mode);
        trace::emit(Kind::Gpio, format_args!("{n}.mode"), mode.name());
    }
}

fn mode(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    const F: &str = "mode";
    let n = check_integer(F, args, 1)?;
    let m = check_integer(F, args, 2)?;
    let pull = opt_integer(F, args, 3)?.unwrap_or(FLOAT);
    if !(0..=MAX_PIN).contains(&n) || (m == INT && n == 0) {
        return Err(bad_arg(F, 1, "Invalid pin"));
    }
    let mode = match m {
        INPUT => Mode::Input,
        OUTPUT => Mode::Output,
        INT => Mode::Int,
        OPENDRAIN => Mode::OpenDrain,
        _ => return Err(bad_arg(F, 2, "wrong arg type")),
    };
    let _ = pull; // FLOAT or PULLUP: the simulated input's level does not depend on it.
    let n = u8::try_from(n).unwrap_or(0);
    let p = pins(lua)?;
    let mut p = p.borrow_mut();
    set_mode(&mut p, n, mode);
    if mode != Mode::Int {
        // The device drops the pin's interrupt callback.
        let pin = p.pin(n);
        if pin.style == Style::Esp8266 {
            pin.trig = Trig::None;
            drop(p);
            lua.named_registry_value::<Table>(TRIG)?
                .raw_set(n, Value::Nil)?;
            return crate::sim::refresh(lua);
        }
    }
    Ok(())
}

fn read(lua: &Lua, args: &[Value]) -> mlua::Result<i64> {
    let n = existing_pin("read", args)?;
    let p = pins(lua)?;
    let mut p = p.borrow_mut();
    let pin = p.pin(n);
    Ok(i64::from(match (pin.mode, pin.out) {
        (Some(m), Some(level)) if m.drives() => level,
        _ => pin.input,
    }))
}

fn write(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    let n = existing_pin("write", args)?;
    let level = level_arg("write", args, 2, "wrong level type")?;
    drive(&mut pins(lua)?.borrow_mut(), n, level);
    Ok(())
}

fn trig(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    const F: &str = "trig";
    let n = check_integer(F, args, 1)?;
    let (kind, style) = match args.get(1) {
        // ESP32: gpio.trig(pin, gpio.INTR_*, fn)
        Some(Value::Integer(_) | Value::Number(_)) => {
            let t = check_integer(F, args, 2)?;
            let kind = usize::try_from(t)
                .ok()
                .and_then(|i| Trig::ALL.get(i).copied())
                .ok_or_else(|| bad_arg(F, 2, "invalid interrupt type"))?;
            (kind, Style::Esp32)
        }
        // ESP8266: gpio.trig(pin, [type [, fn]]), type defaulting to "none".
        None | Some(Value::Nil) => (Trig::None, Style::Esp8266),
        Some(Value::String(s)) => {
            let name = s.to_string_lossy();
            let i = INTR_NAMES
                .iter()
                .position(|o| *o == name)
                .ok_or_else(|| bad_arg(F, 2, format!("invalid option '{name}'")))?;
            (Trig::ALL[i], Style::Esp8266)
        }
        Some(v) => {
            return Err(bad_arg(
                F,
                2,
                format!("string expected, got {}", type_name(v)),
            ));
        }
    };
    if !(0..=MAX_PIN).contains(&n) || (style == Style::Esp8266 && n == 0) {
        return Err(bad_arg(F, 1, "Invalid interrupt pin"));
    }
    let n = u8::try_from(n).unwrap_or(0);
    let table = lua.named_registry_value::<Table>(TRIG)?;
    let old: Option<Function> = table.raw_get(n)?;
    let callback = match args.get(2) {
        Some(Value::Function(f)) => Some(f.clone()),
        None | Some(Value::Nil) if kind == Trig::None || old.is_some() => old,
        _ if kind == Trig::None => None,
        _ => {
            table.raw_set(n, Value::Nil)?;
            pins(lua)?.borrow_mut().pin(n).trig = Trig::None;
            return Err(bad_arg(F, 3, "invalid callback type"));
        }
    };
    let kind = if callback.is_none() { Trig::None } else { kind };
    table.raw_set(n, if kind == Trig::None { None } else { callback })?;
    {
        let p = pins(lua)?;
        let mut p = p.borrow_mut();
        let pin = p.pin(n);
        pin.trig = kind;
        pin.style = style;
    }
    trace::emit(
        Kind::Gpio,
        format_args!("{n}.trig"),
        INTR_NAMES[kind as usize],
    );
    crate::sim::refresh(lua)
}

/// ESP32: `gpio.config({gpio=n|{n,...}, dir=, opendrain=, pull=}, ...)`.
fn config(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    const F: &str = "config";
    if args.is_empty() {
        return Err(bad_arg(F, 1, "table expected, got no value"));
    }
    for (i, v) in args.iter().enumerate() {
        let pos = i + 1;
        let Value::Table(t) = v else {
            return Err(bad_arg(
                F,
                pos,
                format!("table expected, got {}", type_name(v)),
            ));
        };
        let pins_v: Value = t.get("gpio")?;
        let list: Vec<i64> = match pins_v {
            Value::Integer(n) => vec![n],
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e9 => {
                // Integral and small, checked just above.
                #[allow(clippy::cast_possible_truncation)]
                let n = n as i64;
                vec![n]
            }
            Value::Table(list) => list
                .sequence_values::<i64>()
                .collect::<mlua::Result<Vec<_>>>()
                .map_err(|_| bad_arg(F, pos, "gpio: number or list of numbers expected"))?,
            _ => return Err(bad_arg(F, pos, "missing/bad 'gpio' field")),
        };
        let dir: Option<i64> = t
            .get("dir")
            .map_err(|_| bad_arg(F, pos, "bad 'dir' field"))?;
        let od: Option<i64> = t
            .get("opendrain")
            .map_err(|_| bad_arg(F, pos, "bad 'opendrain' field"))?;
        let pull: Option<i64> = t
            .get("pull")
            .map_err(|_| bad_arg(F, pos, "bad 'pull' field"))?;
        if let Some(pull) = pull
            && ![PULL_UP, PULL_DOWN, PULL_UP_DOWN, FLOATING].contains(&pull)
        {
            return Err(bad_arg(F, pos, "invalid 'pull' value"));
        }
        let mode = match (dir.unwrap_or(IN), od.unwrap_or(0) != 0) {
            (IN, _) => Mode::Input,
            (OUT, false) => Mode::Output,
            (OUT, true) => Mode::OpenDrain,
            (IN_OUT, _) => Mode::InOut,
            _ => return Err(bad_arg(F, pos, "invalid 'dir' value")),
        };
        let p = pins(lua)?;
        let mut p = p.borrow_mut();
        for n in list {
            let n = u8::try_from(n)
                .ok()
                .filter(|n| i64::from(*n) <= MAX_PIN)
                .ok_or_else(|| bad_arg(F, pos, format!("invalid gpio {n}")))?;
            set_mode(&mut p, n, mode);
        }
    }
    Ok(())
}

fn serout(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    const F: &str = "serout";
    let n = pin_arg(F, args, 1)?;
    let first = level_arg(F, args, 2, "Wrong level type")?;
    let cycles = opt_integer(F, args, 4)?.unwrap_or(1).max(1);
    let delays: Vec<u64> = match args.get(2) {
        Some(Value::Table(t)) if t.raw_len() < DELAY_TABLE_MAX_LEN => t
            .sequence_values::<i64>()
            .map(|d| d.map(|d| d.max(0).unsigned_abs()))
            .collect::<mlua::Result<_>>()
            .map_err(|_| bad_arg(F, 3, "Invalid delay_times"))?,
        _ => return Err(bad_arg(F, 3, "Invalid delay_times")),
    };
    let callback = match args.get(4) {
        Some(Value::Function(f)) => Some(Some(f.clone())),
        // A number there asks for the background form without a callback.
        Some(Value::Integer(_) | Value::Number(_)) => Some(None),
        _ => None,
    };
    // The level alternates from `first` through every delay of every cycle; steps are
    // produced as they are played, never stored (a script may ask for millions).
    let cycles = cycles.unsigned_abs();
    let steps = move || {
        let delays = delays.clone();
        (0..cycles)
            .flat_map(move |_| delays.clone())
            .scan(first, |level, d| {
                let now = *level;
                *level ^= 1;
                Some((now, d))
            })
    };
    let Some(background) = callback else {
        let p = pins(lua)?;
        for (level, us) in steps() {
            drive(&mut p.borrow_mut(), n, level);
            std::thread::sleep(Duration::from_micros(us));
        }
        return Ok(());
    };
    let shared = registry::shared(lua)?;
    let id = {
        let p = pins(lua)?;
        let mut p = p.borrow_mut();
        p.next_serout += 1;
        p.serouts_running += 1;
        p.next_serout
    };
    if let Some(f) = background {
        let table = match lua.named_registry_value::<Option<Table>>(SEROUT)? {
            Some(t) => t,
            None => {
                let t = lua.create_table()?;
                lua.set_named_registry_value(SEROUT, &t)?;
                t
            }
        };
        table.raw_set(id, f)?;
    }
    let tx = shared.tx.clone();
    tokio::spawn(async move {
        let mut last = first;
        for (level, us) in steps() {
            last = level;
            trace::emit(Kind::Gpio, n, level);
            tokio::time::sleep(Duration::from_micros(us)).await;
        }
        let _ = tx
            .send(registry::LoopEvent::Board(BoardEvent::SeroutDone {
                id,
                pin: n,
                level: last,
            }))
            .await;
    });
    crate::sim::refresh(lua)
}

/// A background `serout` ended: the pin keeps its last level, the callback runs.
pub(crate) fn serout_done(lua: &Lua, id: u64, n: u8, level: u8) -> mlua::Result<()> {
    {
        let p = pins(lua)?;
        let mut p = p.borrow_mut();
        p.serouts_running = p.serouts_running.saturating_sub(1);
        // Traced by the background task already.
        p.pin(n).out = Some(level);
    }
    let f = match lua.named_registry_value::<Option<Table>>(SEROUT)? {
        Some(t) => {
            let f: Option<Function> = t.raw_get(id)?;
            t.raw_set(id, Value::Nil)?;
            f
        }
        None => None,
    };
    crate::sim::refresh(lua)?;
    match f {
        Some(f) => f.call(()),
        None => Ok(()),
    }
}

/// An input changed on the simulated board: records it and runs the pin's interrupt
/// callback when its trigger matches.
pub(crate) fn input(lua: &Lua, n: u8, level: u8) -> mlua::Result<()> {
    let fire = {
        let p = pins(lua)?;
        let mut p = p.borrow_mut();
        let pin = p.pin(n);
        let old = pin.input;
        pin.input = level;
        trace::emit(Kind::Gpio, format_args!("{n}.in"), level);
        let armed = match pin.style {
            Style::Esp8266 => pin.mode == Some(Mode::Int),
            Style::Esp32 => !pin.mode.is_some_and(Mode::drives),
        };
        (armed && pin.trig.fires(old, level)).then_some(pin.style)
    };
    let Some(style) = fire else {
        return Ok(());
    };
    let Some(f) = lua
        .named_registry_value::<Table>(TRIG)?
        .raw_get::<Option<Function>>(n)?
    else {
        return Ok(());
    };
    match style {
        Style::Esp8266 => {
            let us = registry::shared(lua)?.started.elapsed().as_micros();
            let when = i64::try_from(us % (1 << 31)).unwrap_or(0);
            f.call((i64::from(level), when, 1))
        }
        Style::Esp32 => f.call((i64::from(n), i64::from(level))),
    }
}

/// Installs the `gpio` global.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    lua.set_app_data(Shared::default());
    lua.set_named_registry_value(TRIG, lua.create_table()?)?;
    let m = lua.create_table()?;
    for (name, value) in [
        ("INPUT", INPUT),
        ("OUTPUT", OUTPUT),
        ("INT", INT),
        ("OPENDRAIN", OPENDRAIN),
        ("HIGH", 1),
        ("LOW", 0),
        ("FLOAT", FLOAT),
        ("PULLUP", PULLUP),
        ("IN", IN),
        ("OUT", OUT),
        ("IN_OUT", IN_OUT),
        ("PULL_UP", PULL_UP),
        ("PULL_DOWN", PULL_DOWN),
        ("PULL_UP_DOWN", PULL_UP_DOWN),
        ("FLOATING", FLOATING),
        ("INTR_NONE", Trig::None as i64),
        ("INTR_DISABLE", Trig::None as i64),
        ("INTR_UP", Trig::Up as i64),
        ("INTR_DOWN", Trig::Down as i64),
        ("INTR_UP_DOWN", Trig::Both as i64),
        ("INTR_LOW", Trig::Low as i64),
        ("INTR_HIGH", Trig::High as i64),
    ] {
        m.raw_set(name, value)?;
    }
    m.raw_set(
        "mode",
        lua.create_function(|lua, a: Variadic<Value>| mode(lua, &a))?,
    )?;
    m.raw_set(
        "read",
        lua.create_function(|lua, a: Variadic<Value>| read(lua, &a))?,
    )?;
    m.raw_set(
        "write",
        lua.create_function(|lua, a: Variadic<Value>| write(lua, &a))?,
    )?;
    m.raw_set(
        "trig",
        lua.create_function(|lua, a: Variadic<Value>| trig(lua, &a))?,
    )?;
    m.raw_set(
        "config",
        lua.create_function(|lua, a: Variadic<Value>| config(lua, &a))?,
    )?;
    m.raw_set(
        "serout",
        lua.create_function(|lua, a: Variadic<Value>| serout(lua, &a))?,
    )?;
    crate::plain_errors(lua, &m)?;
    lua.globals().raw_set("gpio", m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_fire_on_their_edges_only() {
        assert!(Trig::Up.fires(0, 1));
        assert!(!Trig::Up.fires(1, 0));
        assert!(Trig::Down.fires(1, 0));
        assert!(Trig::Both.fires(0, 1) && Trig::Both.fires(1, 0));
        assert!(Trig::Low.fires(1, 0) && !Trig::Low.fires(0, 1));
        assert!(!Trig::Both.fires(1, 1));
        assert!(!Trig::None.fires(0, 1));
    }
}
