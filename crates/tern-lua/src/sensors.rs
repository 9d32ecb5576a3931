//! Sensors read from the simulated board: `dht` (DHT11/21/22 temperature and humidity) and
//! `adc`.
//!
//! - `dht.read(pin)`, `read11`, `read12`, `read2x`, `readxx` return
//!   `status, temp, humi, temp_dec, humi_dec` as the float firmware does (`temp_dec` the
//!   decimal part in thousandths); `read11` returns whole degrees and percent, as a DHT11
//!   gives. A failure status set in the simulation (`dht.ERROR_CHECKSUM`/`ERROR_TIMEOUT`)
//!   comes with the simulated values, as the device returns its last reading with it.
//! - `adc.read(0)` (ESP8266) gives the 10-bit value; `adc.read(adc.ADC1, channel)` (ESP32)
//!   scales it to the width set with `adc.setwidth` (12 bits by default); `adc.readvdd33()`
//!   gives 3300 (mV).

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Lua, Value, Variadic};

use crate::args::{bad_arg, check_integer, lua_error};
use crate::sim::{Board, Dht};

/// The sensors' current values, in the Lua state's app data.
#[derive(Debug, Clone)]
pub(crate) struct Sensors {
    dht: Dht,
    adc: u16,
    /// ESP32 `adc.setwidth` bits.
    width: u8,
}

type Shared = Rc<RefCell<Sensors>>;

fn sensors(lua: &Lua) -> mlua::Result<Shared> {
    lua.app_data_ref::<Shared>()
        .map(|s| Rc::clone(&s))
        .ok_or_else(|| lua_error("sensors: module not installed"))
}

/// Sets the sensors to the board's boot values.
pub(crate) fn configure(lua: &Lua, board: &Board) -> mlua::Result<()> {
    let s = sensors(lua)?;
    let mut s = s.borrow_mut();
    s.dht = board.dht;
    s.adc = board.adc;
    Ok(())
}

/// The DHT answers `dht` from now on.
pub(crate) fn set_dht(lua: &Lua, dht: Dht) -> mlua::Result<()> {
    sensors(lua)?.borrow_mut().dht = dht;
    Ok(())
}

/// The ADC reads `value` (10 bits) from now on.
pub(crate) fn set_adc(lua: &Lua, value: u16) -> mlua::Result<()> {
    sensors(lua)?.borrow_mut().adc = value;
    Ok(())
}

/// The whole and thousandths parts, as the firmware splits a reading.
fn split(v: f64) -> i64 {
    // Readings are small (-40..125 °C, 0..100 %): the casts cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let dec = ((v - v.trunc()) * 1000.0).round() as i64;
    dec
}

fn dht_read(lua: &Lua, func: &str, args: &[Value], whole: bool) -> mlua::Result<Variadic<Value>> {
    let pin = check_integer(func, args, 1)?;
    if !(0..=39).contains(&pin) {
        return Err(bad_arg(func, 1, "Invalid pin"));
    }
    let d = sensors(lua)?.borrow().dht;
    let (t, h) = if whole {
        (d.temp.trunc(), d.humi.trunc())
    } else {
        (d.temp, d.humi)
    };
    Ok(Variadic::from_iter([
        Value::Integer(i64::from(d.status)),
        Value::Number(t),
        Value::Number(h),
        Value::Integer(split(t)),
        Value::Integer(split(h)),
    ]))
}

fn install_dht(lua: &Lua) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set("OK", 0)?;
    m.raw_set("ERROR_CHECKSUM", -1)?;
    m.raw_set("ERROR_TIMEOUT", -2)?;
    for (name, whole) in [
        ("read", false),
        ("read11", true),
        ("read12", false),
        ("read2x", false),
        ("readxx", false),
    ] {
        m.raw_set(
            name,
            lua.create_function(move |lua, a: Variadic<Value>| dht_read(lua, name, &a, whole))?,
        )?;
    }
    crate::plain_errors(lua, &m)?;
    lua.globals().raw_set("dht", m)
}

fn adc_read(lua: &Lua, args: &[Value]) -> mlua::Result<i64> {
    const F: &str = "read";
    let s = sensors(lua)?.borrow().clone();
    if args.len() >= 2 {
        // ESP32: adc.read(adc.ADC1, channel)
        let unit = check_integer(F, args, 1)?;
        if unit != 1 {
            return Err(bad_arg(F, 1, "adc unit must be adc.ADC1"));
        }
        let ch = check_integer(F, args, 2)?;
        if !(0..=7).contains(&ch) {
            return Err(bad_arg(F, 2, "Invalid channel"));
        }
        let v = i64::from(s.adc);
        return Ok(match s.width {
            w @ 10.. => v << (w - 10),
            w => v >> (10 - w),
        });
    }
    let ch = check_integer(F, args, 1)?;
    if ch != 0 {
        return Err(bad_arg(F, 1, "no channel for adc"));
    }
    Ok(i64::from(s.adc))
}

fn install_adc(lua: &Lua) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set("ADC1", 1)?;
    for (name, v) in [
        ("ATTEN_0db", 0),
        ("ATTEN_2_5db", 1),
        ("ATTEN_6db", 2),
        ("ATTEN_11db", 3),
    ] {
        m.raw_set(name, v)?;
    }
    m.raw_set("INIT_ADC", 0)?;
    m.raw_set("INIT_VDD33", 1)?;
    m.raw_set(
        "read",
        lua.create_function(|lua, a: Variadic<Value>| adc_read(lua, &a))?,
    )?;
    m.raw_set("readvdd33", lua.create_function(|_, ()| Ok(3300))?)?;
    // ESP8266: adc.force_init_mode(mode) -> false (already in that mode; no restart needed).
    m.raw_set(
        "force_init_mode",
        lua.create_function(|_, a: Variadic<Value>| {
            check_integer("force_init_mode", &a, 1)?;
            Ok(false)
        })?,
    )?;
    // ESP32: adc.setwidth(adc.ADC1, bits), adc.setup(adc.ADC1, channel, atten).
    m.raw_set(
        "setwidth",
        lua.create_function(|lua, a: Variadic<Value>| {
            check_integer("setwidth", &a, 1)?;
            let bits = check_integer("setwidth", &a, 2)?;
            let bits = u8::try_from(bits)
                .ok()
                .filter(|b| (9..=12).contains(b))
                .ok_or_else(|| bad_arg("setwidth", 2, "width must be 9..12"))?;
            sensors(lua)?.borrow_mut().width = bits;
            Ok(())
        })?,
    )?;
    m.raw_set(
        "setup",
        lua.create_function(|_, a: Variadic<Value>| {
            check_integer("setup", &a, 1)?;
            let ch = check_integer("setup", &a, 2)?;
            if !(0..=7).contains(&ch) {
                return Err(bad_arg("setup", 2, "Invalid channel"));
            }
            let atten = check_integer("setup", &a, 3)?;
            if !(0..=3).contains(&atten) {
                return Err(bad_arg("setup", 3, "Invalid attenuation"));
            }
            Ok(())
        })?,
    )?;
    crate::plain_errors(lua, &m)?;
    lua.globals().raw_set("adc", m)
}

/// Installs the `dht` and `adc` globals.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    let board = Board::default();
    lua.set_app_data::<Shared>(Rc::new(RefCell::new(Sensors {
        dht: board.dht,
        adc: board.adc,
        width: 12,
    })));
    install_dht(lua)?;
    install_adc(lua)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_thousandths() {
        assert_eq!(split(21.5), 500);
        assert_eq!(split(45.0), 0);
        assert_eq!(split(-3.25), -250);
    }
}
