//! `sjson` (NodeMCU's streaming JSON module) and `cjson` (lua-cjson's API), with serde_json
//! parsing underneath.
//!
//! Encoding follows each module's rules for tables: **sjson** writes a table whose keys are
//! all positive integers as an array up to the largest key (holes become `null`), and every
//! other table, as an object; an empty table is `[]`. **cjson** does the same but writes an
//! empty table as `{}` and refuses an excessively sparse array. `nil` and light userdata
//! (`sjson.NULL`, `cjson.null`) are `null`; functions are called and their result written
//! (sjson). Numbers are written as Lua prints them.

use std::cell::RefCell;

use mlua::{AnyUserData, LightUserData, Lua, Table, UserData, UserDataMethods, Value, Variadic};

use crate::args::{bad_arg, check_bytes, lua_error, type_name};

/// sjson's default nesting limit.
const SJSON_DEPTH: usize = 20;
/// cjson's nesting limit (lua-cjson's default).
const CJSON_DEPTH: usize = 1000;

/// sjson's `null`: a light userdata holding NULL.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Which module's rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Sjson,
    Cjson,
}

struct Encoder<'a> {
    lua: &'a Lua,
    flavour: Flavour,
    max_depth: usize,
    /// sjson's `null` option: this string is written as `null`.
    null_string: Option<Vec<u8>>,
    out: Vec<u8>,
}

impl Encoder<'_> {
    fn error(&self, msg: String) -> mlua::Error {
        lua_error(msg)
    }

    fn value(&mut self, v: &Value, depth: usize) -> mlua::Result<()> {
        let mut v = v.clone();
        // sjson calls functions (up to 10 deep) and writes what they return.
        let mut calls = 0;
        while let (Value::Function(f), Flavour::Sjson) = (&v, self.flavour) {
            if calls == 10 {
                break;
            }
            v = f.call::<Value>(())?;
            calls += 1;
        }
        match &v {
            Value::Nil | Value::LightUserData(_) => self.out.extend_from_slice(b"null"),
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Integer(_) | Value::Number(_) => self.number(&v)?,
            Value::String(s) => {
                if self.null_string.as_deref() == Some(&s.as_bytes()[..]) {
                    self.out.extend_from_slice(b"null");
                } else {
                    self.string(&s.as_bytes());
                }
            }
            Value::Table(t) => self.table(t, depth + 1)?,
            other => {
                return Err(self.error(match self.flavour {
                    Flavour::Sjson => format!("Cannot encode type {}", lua_type_number(other)),
                    Flavour::Cjson => {
                        format!("Cannot serialise {}: type not supported", type_name(other))
                    }
                }));
            }
        }
        Ok(())
    }

    fn number(&mut self, v: &Value) -> mlua::Result<()> {
        if let (Value::Number(n), Flavour::Cjson) = (v, self.flavour)
            && !n.is_finite()
        {
            return Err(self.error("Cannot serialise number: must not be NaN or Inf".to_owned()));
        }
        match self.lua.coerce_string(v.clone())? {
            Some(s) => self.out.extend_from_slice(&s.as_bytes()),
            None => self.out.extend_from_slice(b"null"),
        }
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        self.out.push(b'"');
        for &b in s {
            match b {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                0x08 => self.out.extend_from_slice(b"\\b"),
                0x0c => self.out.extend_from_slice(b"\\f"),
                0..0x20 => self.out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => self.out.push(b),
            }
        }
        self.out.push(b'"');
    }

    fn table(&mut self, t: &Table, depth: usize) -> mlua::Result<()> {
        if depth > self.max_depth {
            return Err(self.error(match self.flavour {
                Flavour::Sjson => "encoder stack overflow".to_owned(),
                Flavour::Cjson => format!("Cannot serialise, excessive nesting ({depth})"),
            }));
        }
        let mut max = 0i64;
        let mut count = 0i64;
        let mut array = true;
        for pair in t.clone().pairs::<Value, Value>() {
            let (k, _) = pair?;
            count += 1;
            match k {
                Value::Integer(i) if i > 0 => max = max.max(i),
                Value::Number(n) if n > 0.0 && n.fract() == 0.0 && n < 9.0e15 => {
                    #[allow(clippy::cast_possible_truncation)]
                    let i = n as i64;
                    max = max.max(i);
                }
                _ => array = false,
            }
        }
        if array && count == 0 && self.flavour == Flavour::Cjson {
            array = false; // lua-cjson: {} is an object
        }
        if array && self.flavour == Flavour::Cjson && max > 10 && max > count * 2 {
            return Err(self.error("Cannot serialise table: excessively sparse array".to_owned()));
        }
        if array {
            self.out.push(b'[');
            for i in 1..=max {
                if i > 1 {
                    self.out.push(b',');
                }
                let v: Value = t.raw_get(i)?;
                self.value(&v, depth)?;
            }
            self.out.push(b']');
            return Ok(());
        }
        self.out.push(b'{');
        let mut first = true;
        for pair in t.clone().pairs::<Value, Value>() {
            let (k, v) = pair?;
            if !first {
                self.out.push(b',');
            }
            first = false;
            match &k {
                Value::String(s) => self.string(&s.as_bytes()),
                Value::Integer(_) | Value::Number(_) => {
                    let s = self
                        .lua
                        .coerce_string(k.clone())?
                        .map(|s| s.as_bytes().to_vec());
                    self.string(&s.unwrap_or_default());
                }
                other => {
                    return Err(self.error(match self.flavour {
                        Flavour::Sjson => {
                            format!("Cannot encode type {}", lua_type_number(other))
                        }
                        Flavour::Cjson => format!(
                            "Cannot serialise {}: table key must be a number or string",
                            type_name(other)
                        ),
                    }));
                }
            }
            self.out.push(b':');
            self.value(&v, depth)?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// Lua 5.1's type numbers, which sjson's "Cannot encode type N" reports.
fn lua_type_number(v: &Value) -> i32 {
    match v {
        Value::Nil => 0,
        Value::Boolean(_) => 1,
        Value::LightUserData(_) => 2,
        Value::Integer(_) | Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Table(_) => 5,
        Value::Function(_) => 6,
        Value::UserData(_) => 7,
        Value::Thread(_) => 8,
        _ => -1,
    }
}

/// `sjson.encode(table[, opts])`'s text.
fn sjson_encode(lua: &Lua, func: &str, args: &[Value]) -> mlua::Result<Vec<u8>> {
    let Some(Value::Table(t)) = args.first() else {
        let got = args.first().map_or("no value", type_name);
        return Err(bad_arg(func, 1, format!("table expected, got {got}")));
    };
    let (max_depth, null_string) = encode_opts(args.get(1), SJSON_DEPTH)?;
    let mut e = Encoder {
        lua,
        flavour: Flavour::Sjson,
        max_depth,
        null_string,
        out: Vec::new(),
    };
    e.table(t, 1)?;
    Ok(e.out)
}

/// `sjson.encoder(table[, opts])`: the text handed out in pieces by `:read([size])`.
struct JsonEncoder {
    text: Vec<u8>,
    pos: RefCell<usize>,
}

impl UserData for JsonEncoder {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("read", |lua, this, args: Variadic<Value>| {
            let size = match args.first() {
                Some(Value::Integer(n)) => usize::try_from(*n).unwrap_or(1).max(1),
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(Value::Number(n)) if *n >= 1.0 => *n as usize,
                Some(Value::Number(_)) => 1,
                _ => 1024,
            };
            let mut pos = this.pos.borrow_mut();
            let end = (*pos).saturating_add(size).min(this.text.len());
            if *pos >= end {
                return Ok(Variadic::new()); // the end: nothing, as the device
            }
            let piece = lua.create_string(&this.text[*pos..end])?;
            *pos = end;
            Ok(Variadic::from_iter([Value::String(piece)]))
        });
    }
}

/// Decoding options: what `null` becomes, a metatable for every table, the depth limit.
#[derive(Clone)]
struct DecodeOpts {
    null: Value,
    metatable: Option<Table>,
    depth: usize,
}

fn decode_opts(opts: Option<&Value>, depth: usize) -> mlua::Result<DecodeOpts> {
    let mut o = DecodeOpts {
        null: null(),
        metatable: None,
        depth,
    };
    if let Some(Value::Table(t)) = opts {
        o.null = t.raw_get("null")?;
        o.metatable = t.raw_get("metatable")?;
        if let Some(d) = t.raw_get::<Option<i64>>("depth")? {
            o.depth = usize::try_from(d.clamp(4, 1000)).unwrap_or(SJSON_DEPTH);
        }
    }
    Ok(o)
}

fn nesting(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(nesting).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

fn to_lua(lua: &Lua, v: &serde_json::Value, o: &DecodeOpts) -> mlua::Result<Value> {
    Ok(match v {
        serde_json::Value::Null => o.null.clone(),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, x) in a.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, x, o)?)?;
            }
            t.set_metatable(o.metatable.clone())?;
            Value::Table(t)
        }
        serde_json::Value::Object(m) => {
            let t = lua.create_table_with_capacity(0, m.len())?;
            for (k, x) in m {
                t.raw_set(k.as_str(), to_lua(lua, x, o)?)?;
            }
            t.set_metatable(o.metatable.clone())?;
            Value::Table(t)
        }
    })
}

/// The outcome of parsing a buffer that may still be incomplete.
enum Parsed {
    Done(serde_json::Value),
    Incomplete,
    Invalid(serde_json::Error),
}

/// Parses the first JSON value of `buf`; what follows it is ignored (as sjson does).
fn parse_first(buf: &[u8]) -> Parsed {
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<serde_json::Value>();
    match it.next() {
        Some(Ok(v)) => Parsed::Done(v),
        Some(Err(e)) if e.is_eof() => Parsed::Incomplete,
        Some(Err(e)) => Parsed::Invalid(e),
        None => Parsed::Incomplete,
    }
}

/// sjson's decoding of a complete value; `Ok(None)` when more input is needed.
fn sjson_value(lua: &Lua, buf: &[u8], o: &DecodeOpts) -> mlua::Result<Option<Value>> {
    match parse_first(buf) {
        Parsed::Incomplete => Ok(None),
        Parsed::Invalid(e) => Err(lua_error(format!("JSON parse error: {e}"))),
        // sjson completes only on a top-level object or array.
        Parsed::Done(v) if !(v.is_object() || v.is_array()) => Err(lua_error(
            "JSON parse error: a top-level object or array expected",
        )),
        Parsed::Done(v) if nesting(&v) > o.depth => {
            Err(lua_error("JSON parse error: LEVELS_EXCEEDED"))
        }
        Parsed::Done(v) => Ok(Some(to_lua(lua, &v, o)?)),
    }
}

/// `sjson.decoder([opts])`: feed text with `write`, get the value from `write` or `result`.
struct Decoder {
    opts: DecodeOpts,
    buf: RefCell<Vec<u8>>,
    state: RefCell<DecoderState>,
}

#[derive(Default)]
enum DecoderState {
    #[default]
    Feeding,
    Failed,
    Done(mlua::RegistryKey),
}

impl UserData for Decoder {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("write", |lua, this, args: Variadic<Value>| {
            let chunk = check_bytes("write", &args, 1)?;
            if matches!(*this.state.borrow(), DecoderState::Failed) {
                return Err(lua_error("JSON parse error: previous call"));
            }
            if let DecoderState::Done(key) = &*this.state.borrow() {
                return Ok(Variadic::from_iter([lua.registry_value::<Value>(key)?]));
            }
            let result = {
                let mut buf = this.buf.borrow_mut();
                buf.extend_from_slice(&chunk);
                sjson_value(lua, &buf, &this.opts)
            };
            match result {
                Ok(Some(v)) => {
                    this.buf.borrow_mut().clear();
                    let key = lua.create_registry_value(v.clone())?;
                    *this.state.borrow_mut() = DecoderState::Done(key);
                    Ok(Variadic::from_iter([v]))
                }
                // Nothing at all (not even nil) until the document is complete.
                Ok(None) => Ok(Variadic::new()),
                Err(e) => {
                    *this.state.borrow_mut() = DecoderState::Failed;
                    Err(e)
                }
            }
        });
        methods.add_method("result", |lua, this, ()| match &*this.state.borrow() {
            DecoderState::Done(key) => lua.registry_value::<Value>(key),
            _ => Err(lua_error("decode not complete")),
        });
    }
}

fn encode_opts(opts: Option<&Value>, depth: usize) -> mlua::Result<(usize, Option<Vec<u8>>)> {
    let mut max_depth = depth;
    let mut null_string = None;
    if let Some(Value::Table(t)) = opts {
        if let Some(d) = t.raw_get::<Option<i64>>("depth")? {
            max_depth = usize::try_from(d.clamp(4, 1000)).unwrap_or(SJSON_DEPTH);
        }
        if let Value::String(s) = t.raw_get::<Value>("null")? {
            null_string = Some(s.as_bytes().to_vec());
        }
    }
    Ok((max_depth, null_string))
}

/// Character position (1-based) of a serde_json error in `text`, as lua-cjson reports it.
fn char_position(text: &[u8], e: &serde_json::Error) -> usize {
    let mut line = 1;
    let mut offset = 0;
    for (i, &b) in text.iter().enumerate() {
        if line == e.line() {
            offset = i;
            break;
        }
        if b == b'\n' {
            line += 1;
            offset = i + 1;
        }
    }
    (offset + e.column()).max(1)
}

/// Installs the `sjson` and `cjson` globals.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    let s = lua.create_table()?;
    s.raw_set("NULL", null())?;
    s.raw_set(
        "encode",
        lua.create_function(|lua, args: Variadic<Value>| {
            lua.create_string(sjson_encode(lua, "encode", &args)?)
        })?,
    )?;
    s.raw_set(
        "encoder",
        lua.create_function(|lua, args: Variadic<Value>| {
            let text = sjson_encode(lua, "encoder", &args)?;
            let ud = lua.create_userdata(JsonEncoder {
                text,
                pos: RefCell::new(0),
            })?;
            crate::plain_method_errors(lua, &ud, "sjson.encoder")?;
            Ok(ud)
        })?,
    )?;
    s.raw_set(
        "decode",
        lua.create_function(|lua, args: Variadic<Value>| {
            let text = check_bytes("decode", &args, 1)?;
            let o = decode_opts(args.get(1), SJSON_DEPTH)?;
            sjson_value(lua, &text, &o)?
                .ok_or_else(|| lua_error("Incomplete JSON object passed to sjson.decode"))
        })?,
    )?;
    s.raw_set(
        "decoder",
        lua.create_function(|lua, args: Variadic<Value>| {
            let opts = decode_opts(args.first(), SJSON_DEPTH)?;
            let ud: AnyUserData = lua.create_userdata(Decoder {
                opts,
                buf: RefCell::new(Vec::new()),
                state: RefCell::new(DecoderState::Feeding),
            })?;
            crate::plain_method_errors(lua, &ud, "sjson.decoder")?;
            Ok(ud)
        })?,
    )?;
    lua.globals().raw_set("sjson", s)?;

    let c = lua.create_table()?;
    c.raw_set("null", null())?;
    c.raw_set(
        "encode",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return Err(bad_arg("encode", 1, "expected 1 argument"));
            }
            let mut e = Encoder {
                lua,
                flavour: Flavour::Cjson,
                max_depth: CJSON_DEPTH,
                null_string: None,
                out: Vec::new(),
            };
            e.value(&args[0], 0)?;
            lua.create_string(&e.out)
        })?,
    )?;
    c.raw_set(
        "decode",
        lua.create_function(|lua, args: Variadic<Value>| {
            let text = check_bytes("decode", &args, 1)?;
            let o = decode_opts(None, CJSON_DEPTH)?;
            let mut de = serde_json::Deserializer::from_slice(&text);
            let v = match serde::Deserialize::deserialize(&mut de).and_then(|v| {
                de.end()?;
                Ok(v)
            }) {
                Ok(v) => v,
                Err(e) if e.is_eof() => {
                    return Err(lua_error(format!(
                        "Expected value but found T_END at character {}",
                        text.len() + 1
                    )));
                }
                Err(e) => {
                    return Err(lua_error(format!(
                        "Expected value but found invalid token at character {}",
                        char_position(&text, &e)
                    )));
                }
            };
            if nesting(&v) > o.depth {
                return Err(lua_error(format!(
                    "Found too many nested data structures ({}) at character 1",
                    o.depth + 1
                )));
            }
            to_lua(lua, &v, &o)
        })?,
    )?;
    lua.globals().raw_set("cjson", c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, src: &str) -> String {
        lua.load(src).eval::<String>().unwrap()
    }

    fn lua() -> Lua {
        let lua = Lua::new();
        register_module(&lua).unwrap();
        lua
    }

    #[test]
    fn sjson_arrays_objects_and_empty_tables() {
        let lua = lua();
        assert_eq!(
            eval(&lua, "return sjson.encode({1, 2, 'x'})"),
            r#"[1,2,"x"]"#
        );
        assert_eq!(eval(&lua, "return sjson.encode({})"), "[]");
        assert_eq!(
            eval(&lua, "return sjson.encode({[1]=1, [3]=3})"),
            "[1,null,3]"
        );
        assert_eq!(eval(&lua, "return sjson.encode({a=21.5})"), r#"{"a":21.5}"#);
        assert_eq!(
            eval(&lua, r#"return sjson.encode({s="q\"\\\n"})"#),
            r#"{"s":"q\"\\\n"}"#
        );
        assert_eq!(eval(&lua, "return sjson.encode({sjson.NULL})"), "[null]");
        assert_eq!(
            eval(&lua, "return sjson.encode({f=function() return 7 end})"),
            r#"{"f":7}"#
        );
        let e = lua
            .load("return sjson.encode('x')")
            .eval::<String>()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("bad argument #1 to 'encode' (table expected, got string)")
        );
        let e = lua
            .load("local t = {} t.t = t return sjson.encode(t)")
            .eval::<String>()
            .unwrap_err();
        assert!(e.to_string().contains("encoder stack overflow"));
    }

    #[test]
    fn sjson_decode_and_its_errors() {
        let lua = lua();
        assert_eq!(
            eval(
                &lua,
                r#"local t = sjson.decode('{"a":[1,2,{"b":null}]}') return tostring(t.a[2]) .. tostring(t.a[3].b == sjson.NULL)"#
            ),
            "2true"
        );
        let e = lua
            .load("return sjson.decode('{\"a\":')")
            .exec()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("Incomplete JSON object passed to sjson.decode")
        );
        let e = lua.load("return sjson.decode('{x}')").exec().unwrap_err();
        assert!(e.to_string().contains("JSON parse error:"));
        assert_eq!(
            eval(&lua, r#"return sjson.decode('{"a":null}', {null="N"}).a"#),
            "N"
        );
    }

    #[test]
    fn sjson_streaming_encoder_hands_out_pieces() {
        let lua = lua();
        assert_eq!(
            eval(
                &lua,
                r#"
                local e = sjson.encoder({1, 2, 3})
                local a, b, c = e:read(3), e:read(), e:read()
                return a .. "|" .. b .. "|" .. tostring(c)
            "#
            ),
            "[1,|2,3]|nil"
        );
    }

    #[test]
    fn sjson_streaming_decoder() {
        let lua = lua();
        assert_eq!(
            eval(
                &lua,
                r#"
                local d = sjson.decoder()
                local r1 = d:write('{"temp": 2')
                local ok = pcall(d.result, d)
                local r2 = d:write('1.5, "list": [1]}')
                return tostring(r1) .. " " .. tostring(ok) .. " " .. r2.temp .. " " .. d:result().list[1]
            "#
            ),
            "nil false 21.5 1"
        );
    }

    #[test]
    fn cjson_rules() {
        let lua = lua();
        assert_eq!(eval(&lua, "return cjson.encode({})"), "{}");
        assert_eq!(eval(&lua, "return cjson.encode('x')"), r#""x""#);
        assert_eq!(eval(&lua, "return cjson.decode('[1, \"a\"]')[2]"), "a");
        let e = lua
            .load("return cjson.decode('[1, x]')")
            .exec()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("Expected value but found invalid token at character 5"),
            "{e}"
        );
        let e = lua
            .load("return cjson.encode({[100]=1})")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("excessively sparse array"));
        let e = lua.load("return cjson.encode(print)").exec().unwrap_err();
        assert!(
            e.to_string()
                .contains("Cannot serialise function: type not supported")
        );
    }
}
