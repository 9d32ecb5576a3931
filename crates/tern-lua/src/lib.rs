//! NodeMCU's Lua `mqtt` and `tmr` modules on a PC, over the tern client.
//!
//! A [`Runtime`] is one Lua 5.1 state with `mqtt`, `tmr`, `arg` and a line-flushing `print`,
//! plus the loop that runs callbacks one at a time, each client's and each timer's in the
//! order their events happened. It knows NodeMCU's argument rules and callback semantics,
//! never packet bytes.
//!
//! # The contract
//!
//! The seed (the ESP32 `mqtt` module's documentation) gives the signatures, defaults, return
//! values and constants; the ESP8266 module's extras are accepted too (`connfail`, `puback`,
//! `suback`, `unsuback`, `overflow` events, table (un)subscribe, `max_message_length`). Where
//! the two device variants disagree, tern does this:
//!
//! ## `mqtt.Client([clientid[, keepalive[, username, password[, cleansession[, max_message_length]]]]])`
//!
//! - Every argument is optional (ESP8266). Without a client id tern generates a random one
//!   (clean sessions only; a broker refuses an empty id with `cleansession = 0`). Ids, user
//!   names and passwords are never truncated (ESP32 truncates to 32/32/65 characters).
//! - `keepalive` 0 or absent means **60 s** (ESP8266's `MQTT_DEFAULT_KEEPALIVE`; ESP32 uses
//!   120 s). As on both devices, keepalive cannot be switched off.
//! - `cleansession` takes 0/1 or a boolean; the default is **1 (true)**, as both variants
//!   document (the ESP8266 code has defaulted to 0 since 2021).
//! - `max_message_length` (ESP8266) has **no default**: messages arrive whole however large
//!   (up to the tern client's 16 MiB packet limit), never in fragments as on ESP32. When it is
//!   set, a message whose PUBLISH packet (fixed header + topic + packet id + payload) is
//!   larger goes to the `overflow` callback, with the payload truncated so the packet would
//!   fit, instead of `message`; QoS 1/2 messages are still acknowledged.
//!
//! ## `m:lwt(topic, message[, qos[, retain]])`
//!
//! QoS and retain are honoured (ESP8266; ESP32 ignores them); nothing is truncated. Call it
//! before `connect()`; it applies from the next `connect()`.
//!
//! ## `m:connect(host[, port[, secure[, autoreconnect]]][, conn_cb[, fail_cb]])`
//!
//! - Returns **true** when the attempt started (ESP32; ESP8266 returns nil). Calling it while
//!   connecting or connected raises `already connected or connecting` (ESP8266; ESP32 drops
//!   the live connection silently); after `close()`, the client is reusable once `offline`
//!   has fired (as on ESP8266).
//! - Optional arguments are taken in order until the first function, so
//!   `connect(host, conn_cb, fail_cb)`, `connect(host, port, conn_cb, fail_cb)` and the
//!   legacy `connect(host, port, secure, autoreconnect, conn_cb, fail_cb)` all mean what they
//!   say (the ESP8266's off-by-one that makes `conn_cb` the failure handler there is not
//!   reproduced).
//! - `secure`: 0/1, `false`/`true` (ESP32 mis-parses booleans; tern does not), or a table
//!   `{ca_cert=PEM, client_cert=PEM, client_key=PEM}` (TLS on). Without `ca_cert` the broker
//!   is verified against the system's roots (ESP8266 verifies nothing by default, ESP32
//!   refuses to connect); the table key `danger_insecure = true` turns verification off.
//!   The host name is verified and sent as SNI (ESP8266 does neither). The port still
//!   defaults to 1883 with TLS, as on both devices.
//! - `host` may be an `mqtt://`, `mqtts://`, `ws://` or `wss://` URI (ESP32). A `port`
//!   argument overrides the URI's; `secure` on turns `mqtt`/`ws` into `mqtts`/`wss`; a
//!   `user:password@` in the URI is used when `mqtt.Client` got no credentials.
//! - `autoreconnect` (0/1 or boolean, deprecated by the seed) works: a lost connection is
//!   retried with capped exponential backoff; each loss fires `offline`, each success fires
//!   `on("connect")`, failed retries are silent, and subscriptions are restored when the
//!   broker kept no session. A failed *first* attempt is not retried (the seed).
//! - The attempt has a 10 s deadline (DNS, TCP, TLS, CONNECT and CONNACK together; the
//!   ESP8266 waits 5 s for CONNACK). tern extension: `m:connecttimeout(seconds)`.
//! - A QoS 1/2 message is acknowledged (PUBACK/PUBREC) once it is handed to the script, in
//!   arrival order. tern extension: `m:manualack(true)` before `connect()`, then `m:ack()`
//!   acknowledges the oldest message given to `on("message")` and not acked yet; a message
//!   never acked is delivered again by a broker that keeps the session (`cleansession` 0).
//!
//! ## Callbacks
//!
//! - `conn_cb`/`fail_cb` given to `connect()` are **one-shot** and belong to that call (ESP32);
//!   `on("connect")`/`on("connfail")` handlers are persistent and fire too, after the one-shot
//!   one. (On ESP8266 the `connect()` callbacks replace the `on()` handlers.)
//! - `fail_cb(client, reason, message)`: `reason` is the seed's code, -5..-1 or the CONNACK
//!   code 1..5 (ESP32 always passes -6); failures outside the table (TLS, WebSocket, bad
//!   options) pass -6. `message` is a sentence saying what happened (tern extension). After a
//!   failure **nothing else fires**, not `offline` either (the seed: "No further callbacks
//!   should be called"; both devices fire `offline` after some failures).
//! - `offline` fires whenever an established connection ends, **including after `close()`**
//!   (ESP8266; ESP32 fires nothing). `close()` while still connecting ends the attempt
//!   quietly: neither `fail_cb` nor `offline`.
//! - `m:on(event, fn)` accepts `connect`, `connfail`, `offline`, `message`, `overflow`,
//!   `puback`, `suback`, `unsuback`; another name raises an error; `fn = nil` removes the
//!   handler. `message` gets `(client, topic, data)`, `data` a Lua string with the exact
//!   payload bytes, or nil for an empty payload.
//! - Completion callbacks of `publish`/`subscribe`/`unsubscribe` are **per call** (both devices
//!   keep one slot, "last one wins"); several calls in a row each get their own callback, and
//!   the `mqtt_helpers.lua` chaining style works as well. The `puback`/`suback`/`unsuback`
//!   handlers also fire for every completion, after the per-call callback. A QoS 0 publish
//!   completes when it is written to the socket (ESP8266; ESP32 never calls back for QoS 0),
//!   QoS 1 at PUBACK, QoS 2 at PUBCOMP. Completion callbacks fire in the order the calls
//!   were made, as on the ESP8266 (whose queue is stop-and-wait): in the seed's example,
//!   `subscribe success` prints before `sent` although the QoS 0 PUBLISH was written before
//!   the SUBACK arrived; a completion waits until every earlier call has completed. A command that cannot complete (its connection was
//!   lost or closed with `cleansession = 1` before the acknowledgement) calls nothing, so a
//!   script that wants every callback closes after the last one.
//! - Callbacks run one at a time on the Lua thread. An error a callback does not catch ends
//!   the runtime with the message and traceback (ESP8266 reboots; ESP32 logs and goes on).
//!
//! ## Publish, subscribe, unsubscribe, close
//!
//! - Return true when the command was queued. On a client that is not connecting or connected
//!   (never connected, after `offline`, after `close()`) they return **false** (ESP32; ESP8266
//!   raises `not connected`). While connecting they are accepted and sent after CONNACK.
//! - `subscribe(topic, qos[, fn])` (qos defaults to 0, as the seed says) or
//!   `subscribe({topic=qos, ...}[, fn])`; `unsubscribe(topic[, fn])` or
//!   `unsubscribe({topic=any, ...}[, fn])` (or an array of topics). A table sends one packet.
//!   Both return true on success (ESP32 always returns false: its bug, not reproduced).
//! - Wrong argument types, invalid topics or filters, QoS 3: a Lua error naming the function
//!   and argument, e.g. `bad argument #3 to 'publish' (qos must be 0, 1 or 2)`.
//! - `qos` and `retain` of `publish` take numbers or booleans and default to 0 when nil.
//! - Each Lua client object keeps one tern client, so with `cleansession = 0` its unfinished
//!   QoS 1/2 publishes survive `offline`, `close()` and the next `connect()`, and complete
//!   then (their callbacks fire then). A `connect()` with different TLS settings, a changed
//!   `lwt()`, a different `autoreconnect` or connect timeout starts a fresh tern client, and
//!   that local state is dropped.
//! - Messages queued but not yet sent when the connection drops stay queued in the tern
//!   client and go out at the next successful `connect()` of the same object (both devices
//!   drop them).
//! - The client object is kept alive while connecting or connected (ESP8266; ESP32 holds it
//!   weakly), and can be collected otherwise.
//!
//! ## `tmr`
//!
//! `tmr.create()`, `t:register(ms, mode, fn)`, `t:start([restart])`, `t:alarm(ms, mode, fn)`,
//! `t:stop()`, `t:unregister()`, `t:interval(ms)`, `t:state()`, `tmr.ALARM_SINGLE`/`AUTO`/
//! `SEMI`, `tmr.now()` (µs since the runtime started), `tmr.time()` (s), `tmr.delay(us)`
//! (blocks), `tmr.wdclr()` (no-op), with the device's semantics: intervals 1..6870947 ms,
//! `start()` returns false when already running, a SINGLE timer unregisters itself before its
//! callback runs, SEMI stays registered, `register()` stops a running timer, the callback
//! gets the timer, an armed timer is kept alive.
//!
//! ## The loop
//!
//! The process (`tern run`) ends with status 0 when nothing is pending: no client connecting
//! or connected, no armed timer. A connected client with nothing to do keeps it running, as
//! on the device: `close()` it to finish.
#![warn(missing_docs)]

pub mod mqtt;
mod runtime;
pub mod tmr;

pub use runtime::{RunError, Runtime};

/// Installs the `mqtt` and `tmr` globals; [`Runtime::new`] calls it.
pub(crate) fn register(lua: &mlua::Lua) -> mlua::Result<()> {
    mqtt::register_module(lua)?;
    tmr::register_module(lua)?;
    // Errors raised by the modules' functions reach scripts as plain strings, as a C
    // module's `luaL_argerror` gives them on the device ("bad argument #3 to 'publish' (qos
    // must be 0, 1 or 2)"), not as mlua's error object with a Rust-side traceback. Methods
    // are wrapped when the first object of each type is made (`plain_method_errors`).
    let globals = lua.globals();
    for module in ["mqtt", "tmr"] {
        plain_errors(lua, &globals.raw_get::<mlua::Table>(module)?)?;
    }
    Ok(())
}

fn plain_errors(lua: &mlua::Lua, table: &mlua::Table) -> mlua::Result<()> {
    let wrap: mlua::Function = lua.load(PLAIN_ERRORS).set_name("=tern").eval()?;
    wrap.call::<()>(table)
}

/// Wraps the methods of `ud`'s type (see [`register`]), once per type: `kind` names the
/// type's flag in the registry.
pub(crate) fn plain_method_errors(
    lua: &mlua::Lua,
    ud: &mlua::AnyUserData,
    kind: &str,
) -> mlua::Result<()> {
    let flag = format!("tern.plain_errors.{kind}");
    if lua.named_registry_value::<bool>(&flag).unwrap_or(false) {
        return Ok(());
    }
    let index: mlua::Table = ud.metatable()?.get("__index")?;
    plain_errors(lua, &index)?;
    lua.set_named_registry_value(&flag, true)
}

/// Wraps every function of a table so that its errors are raised as one-line strings.
const PLAIN_ERRORS: &str = r##"
return function(t)
  local pcall, error, select, type, tostring, unpack = pcall, error, select, type, tostring, unpack
  local function pack(...) return select("#", ...), { ... } end
  local names = {}
  for k, f in pairs(t) do
    if type(f) == "function" then names[#names + 1] = k end
  end
  for _, k in ipairs(names) do
    local f = t[k]
    t[k] = function(...)
      local n, r = pack(pcall(f, ...))
      if r[1] then return unpack(r, 2, n) end
      local e = r[2]
      if type(e) ~= "string" then e = tostring(e) end
      local cut = e:find("\nstack traceback:", 1, true)
      if cut then e = e:sub(1, cut - 1) end
      error(e, 0)
    end
  end
end
"##;
