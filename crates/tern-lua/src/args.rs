//! Argument helpers shared by every Lua module (`mqtt`, `tmr`, `wifi`, `file`, …): Lua
//! values checked and converted the way `luaxlib`'s `luaL_check*` / `luaL_opt*` do, with
//! their error messages. A leaf: it imports no other module of this crate.

use std::fmt::Display;

use mlua::{Function, Value};

/// An error raised into Lua with exactly this message, as `luaL_error` would (mlua's
/// `RuntimeError` would prefix "runtime error: ").
#[derive(Debug)]
pub(crate) struct LuaError(String);

impl Display for LuaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LuaError {}

/// A Lua error with this message.
pub(crate) fn lua_error(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::external(LuaError(msg.into()))
}

/// A Lua error in the shape of Lua's own `luaL_argerror`.
pub(crate) fn bad_arg(func: &str, pos: usize, msg: impl Display) -> mlua::Error {
    lua_error(format!("bad argument #{pos} to '{func}' ({msg})"))
}

/// Lua's "X expected, got Y" message.
pub(crate) fn expected(func: &str, pos: usize, what: &str, got: &Value) -> mlua::Error {
    bad_arg(
        func,
        pos,
        format!("{what} expected, got {}", type_name(got)),
    )
}

/// The type's name as Lua 5.1 reports it (mlua says "integer" for integral numbers).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "no value",
        Value::Integer(_) | Value::Number(_) => "number",
        other => other.type_name(),
    }
}

/// Argument `pos` (1-based), `Nil` past the end.
pub(crate) fn arg(args: &[Value], pos: usize) -> &Value {
    args.get(pos - 1).unwrap_or(&Value::Nil)
}

/// An integer, as `luaL_checkinteger` takes it: a number with an integral value or a numeric
/// string. `None` for nil.
pub(crate) fn opt_integer(func: &str, args: &[Value], pos: usize) -> mlua::Result<Option<i64>> {
    let v = arg(args, pos);
    let n = match v {
        Value::Nil => return Ok(None),
        Value::Integer(i) => return Ok(Some(*i)),
        Value::Number(n) => *n,
        Value::String(s) => match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(n) => n,
            None => return Err(expected(func, pos, "number", v)),
        },
        _ => return Err(expected(func, pos, "number", v)),
    };
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        // Integral and exactly representable: the cast is lossless.
        #[allow(clippy::cast_possible_truncation)]
        Ok(Some(n as i64))
    } else {
        Err(bad_arg(func, pos, "number has no integer representation"))
    }
}

/// A required integer.
pub(crate) fn check_integer(func: &str, args: &[Value], pos: usize) -> mlua::Result<i64> {
    opt_integer(func, args, pos)?.ok_or_else(|| expected(func, pos, "number", arg(args, pos)))
}

/// A string (numbers are converted, as `luaL_checklstring` does). `None` for nil.
pub(crate) fn opt_bytes(func: &str, args: &[Value], pos: usize) -> mlua::Result<Option<Vec<u8>>> {
    match arg(args, pos) {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.as_bytes().to_vec())),
        Value::Integer(i) => Ok(Some(i.to_string().into_bytes())),
        Value::Number(n) => Ok(Some(lua_number_string(*n).into_bytes())),
        v => Err(expected(func, pos, "string", v)),
    }
}

/// A Lua 5.1 number as `tostring` prints it (`%.14g`).
fn lua_number_string(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

/// A required string.
pub(crate) fn check_bytes(func: &str, args: &[Value], pos: usize) -> mlua::Result<Vec<u8>> {
    opt_bytes(func, args, pos)?.ok_or_else(|| expected(func, pos, "string", arg(args, pos)))
}

/// A required string that must be UTF-8 (MQTT strings are).
pub(crate) fn check_utf8(func: &str, args: &[Value], pos: usize) -> mlua::Result<String> {
    utf8(func, pos, check_bytes(func, args, pos)?)
}

pub(crate) fn utf8(func: &str, pos: usize, bytes: Vec<u8>) -> mlua::Result<String> {
    String::from_utf8(bytes).map_err(|_| bad_arg(func, pos, "string is not valid UTF-8"))
}

/// A 0/1 flag or a boolean (any non-zero number is true, as `lua_tointeger(..) != 0` on the
/// device); `default` for nil.
pub(crate) fn opt_flag(
    func: &str,
    args: &[Value],
    pos: usize,
    default: bool,
) -> mlua::Result<bool> {
    match arg(args, pos) {
        Value::Nil => Ok(default),
        Value::Boolean(b) => Ok(*b),
        Value::Integer(_) | Value::Number(_) | Value::String(_) => {
            let n = opt_integer(func, args, pos)
                .map_err(|_| expected(func, pos, "0/1 or boolean", arg(args, pos)))?;
            Ok(n.is_some_and(|n| n != 0))
        }
        v => Err(expected(func, pos, "0/1 or boolean", v)),
    }
}

/// A function or nil.
pub(crate) fn opt_function(
    func: &str,
    args: &[Value],
    pos: usize,
) -> mlua::Result<Option<Function>> {
    match arg(args, pos) {
        Value::Nil => Ok(None),
        Value::Function(f) => Ok(Some(f.clone())),
        v => Err(expected(func, pos, "function", v)),
    }
}
