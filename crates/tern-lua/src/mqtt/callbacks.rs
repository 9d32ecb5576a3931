//! Where a client's callbacks live: named user values on the client userdata, never Rust
//! `Function` fields, so a callback that captures its client does not make a cycle the Lua
//! collector cannot see (mlua-rs/rlua#41).

use mlua::{AnyUserData, Function, IntoLuaMulti, Table, Value};

/// The one-shot success callback of the pending `connect()` call.
pub(crate) const CONNECT_OK: &str = "connect:ok";
/// The one-shot failure callback of the pending `connect()` call.
pub(crate) const CONNECT_FAIL: &str = "connect:fail";
/// Table: ticket number → completion callback of that publish/subscribe/unsubscribe call.
pub(crate) const CALLS: &str = "calls";

/// The events `m:on()` accepts: the seed's three plus the ESP8266's five.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    Connect,
    ConnFail,
    Offline,
    Message,
    Overflow,
    PubAck,
    SubAck,
    UnsubAck,
}

impl On {
    const ALL: [Self; 8] = [
        Self::Connect,
        Self::ConnFail,
        Self::Offline,
        Self::Message,
        Self::Overflow,
        Self::PubAck,
        Self::SubAck,
        Self::UnsubAck,
    ];

    /// The event's name in Lua.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::ConnFail => "connfail",
            Self::Offline => "offline",
            Self::Message => "message",
            Self::Overflow => "overflow",
            Self::PubAck => "puback",
            Self::SubAck => "suback",
            Self::UnsubAck => "unsuback",
        }
    }

    /// The user value holding the handler.
    const fn key(self) -> &'static str {
        match self {
            Self::Connect => "on:connect",
            Self::ConnFail => "on:connfail",
            Self::Offline => "on:offline",
            Self::Message => "on:message",
            Self::Overflow => "on:overflow",
            Self::PubAck => "on:puback",
            Self::SubAck => "on:suback",
            Self::UnsubAck => "on:unsuback",
        }
    }

    pub(crate) fn parse(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name().as_bytes() == name)
    }

    /// "connect, connfail, ..." for error messages.
    pub(crate) fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

/// Sets (or, with `None`, removes) the handler for `event`.
pub(crate) fn set_handler(ud: &AnyUserData, event: On, f: Option<Function>) -> mlua::Result<()> {
    ud.set_named_user_value(event.key(), f)
}

/// Calls the handler for `event`, if any.
pub(crate) fn emit(ud: &AnyUserData, event: On, args: impl IntoLuaMulti) -> mlua::Result<()> {
    match ud.named_user_value::<Option<Function>>(event.key())? {
        Some(f) => f.call::<()>(args),
        None => Ok(()),
    }
}

/// Removes and returns the one-shot callback stored under `key`.
pub(crate) fn take(ud: &AnyUserData, key: &str) -> mlua::Result<Option<Function>> {
    let f = ud.named_user_value::<Option<Function>>(key)?;
    ud.set_named_user_value(key, Value::Nil)?;
    Ok(f)
}

/// Stores the completion callback for ticket `n`.
pub(crate) fn set_call(ud: &AnyUserData, n: u64, f: Option<Function>) -> mlua::Result<()> {
    if let Some(f) = f {
        ud.named_user_value::<Table>(CALLS)?.raw_set(n, f)?;
    }
    Ok(())
}

/// Removes and returns the completion callback for ticket `n`.
pub(crate) fn take_call(ud: &AnyUserData, n: u64) -> mlua::Result<Option<Function>> {
    let calls = ud.named_user_value::<Table>(CALLS)?;
    let f = calls.raw_get::<Option<Function>>(n)?;
    calls.raw_set(n, Value::Nil)?;
    Ok(f)
}

/// Forgets every pending completion callback.
pub(crate) fn clear_calls(ud: &AnyUserData, lua: &mlua::Lua) -> mlua::Result<()> {
    ud.set_named_user_value(CALLS, lua.create_table()?)
}
