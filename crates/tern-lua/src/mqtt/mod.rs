//! The `mqtt` module: `mqtt.Client(...)` and the reason-code constants.

pub(crate) mod args;
pub(crate) mod callbacks;
pub(crate) mod client;
pub mod constants;

use mlua::{Lua, Value, Variadic};

/// Installs the `mqtt` global.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set(
        "Client",
        lua.create_function(|lua, args: Variadic<Value>| {
            let shared = crate::registry::shared(lua)?;
            let args =
                args::ClientArgs::parse(&args, shared.config.firmware, &shared.config.board)?;
            client::create(lua, args)
        })?,
    )?;
    constants::install(&m)?;
    lua.globals().raw_set("mqtt", m)
}
