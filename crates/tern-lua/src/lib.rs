//! NodeMCU's Lua modules on a PC (`mqtt` over the tern client, `tmr`, `node`, `file`, `sjson`,
//! `cjson`, `tls`), for either firmware variant ([`Firmware`]).
//!
//! A [`Runtime`] is one Lua 5.1 state with those modules, `arg` and a line-flushing `print`,
//! plus the loop that runs callbacks one at a time, each client's and each timer's in the
//! order their events happened. It knows NodeMCU's argument rules and callback semantics,
//! never packet bytes.
//!
//! # The contract
//!
//! The seed (the ESP32 `mqtt` module's documentation) gives the signatures, defaults, return
//! values and constants; the ESP8266 module's extras are accepted too (`connfail`, `puback`,
//! `suback`, `unsuback`, `overflow` events, table (un)subscribe, `max_message_length`). Where
//! the two device variants disagree, tern does what this section says, and where a script
//! can observe the difference, `tern run --firmware esp8266|esp32` ([`Firmware`], default
//! ESP32, the seed) picks the variant's behaviour. Each such **switch** is named below by its
//! [`Firmware`] method.
//!
//! ## The divergence table, row by row
//!
//! | Row (`nodemcu-variants.md` 1.1, 1.3, 1.4) | ESP8266 | ESP32 | Switch |
//! |---|---|---|---|
//! | `mqtt.Client` clientid default | `"NodeMCU_" .. hex(chipid)` | required; tern makes a random one | [`Firmware::chip_client_id`] |
//! | keepalive 0 / absent | 60 s | 120 s | [`Firmware::default_keepalive`] |
//! | `max_message_length` | default 1024, larger → `overflow` | none; tern delivers whole messages | [`Firmware::default_max_message_length`] |
//! | `connect()` return value | nil | true | [`Firmware::connect_returns_true`] |
//! | `connect()` callbacks | *are* `on("connect")`/`on("connfail")` (persistent) | one-shot, `on()` handlers fire too | [`Firmware::connect_callbacks_are_handlers`] |
//! | `connect()` while connecting/connected | error `already connected` | drops the live connection (no event), starts anew | [`Firmware::connect_replaces_live_connection`] |
//! | `connect()` while autoreconnect waits (e.g. from `offline`) | accepted | accepted, replaces | both take over |
//! | `close()` before the connection is up | ignored, returns false | ends the attempt | [`Firmware::close_ignored_while_connecting`] |
//! | `publish`/`subscribe`/`unsubscribe` not connected | raise `not connected` | return false | [`Firmware::commands_raise_when_not_connected`] |
//! | TLS settings | `tls.cert.verify`/`auth` for `secure = 1/true` | `secure` table | both accepted on both |
//! | `secure` boolean | accepted | mis-parsed (callbacks ignored) | not reproduced: accepted |
//! | legacy `connect(h, p, 0, 1, ok, fail)` | `ok` becomes the failure handler | autoreconnect | not reproduced: means what it says |
//! | (un)subscribe table form, `connfail`/`puback`/`suback`/`unsuback`/`overflow`, constants | yes | no | available on both (a superset breaks no ESP32 script) |
//! | `lwt` qos/retain | honoured | ignored, truncated | honoured, never truncated |
//! | clientid/user/password truncation | none | 32/32/65 chars | never truncated |
//! | cleansession default | docs 1, code 0 | 1 | 1 on both (both documents say 1) |
//! | fail reason | -5..-1, 1..5 | always -6 | the real reason on both (-6 only for failures outside the table) |
//! | `offline` after `close()` | yes | no | yes on both: scripts wait for it before reconnecting |
//! | `offline` after a failed connect | after failures past TCP | yes | never (the seed: nothing else fires) |
//! | QoS 0 publish callback | when sent | never | when sent, on both |
//! | completion callbacks | one slot each, last wins | one-shot slot | per call, on both |
//! | `subscribe` return value | true | always false (bug) | true on both |
//! | queued messages on disconnect | lost | lost | kept and re-sent (tern's session) |
//! | large incoming messages | `overflow` past `max_message_length` | fragments with empty topic | whole (ESP8266: up to the limit) |
//! | protocol 3.1 / 3.1.1 | 3.1.1 | build-time | 3.1.1 |
//!
//! ## MQTT 5: not in the Lua API
//!
//! NodeMCU's `mqtt` module speaks MQTT 3.1.1 only on both variants (ESP8266's own client,
//! ESP32's esp-mqtt built without `MQTT_PROTOCOL_5`), so `tern run` connects at 3.1.1 and the
//! Lua API takes no level 5 options. An option-table extension (`mqtt.Client{protocol = 5,
//! ...}` with properties on `publish` and in the `message` callback) was considered and left
//! out: no device script could use it, a script written against it would not run on any
//! board, and tern's promise here is that what runs under `tern run` runs on the device.
//! MQTT 5 (properties, reason codes, request/response) is available from the same engine
//! through the `tern` library and through `tern pub`/`tern sub`/`tern rr -V 5`.
//!
//! ## `mqtt.Client([clientid[, keepalive[, username, password[, cleansession[, max_message_length]]]]])`
//!
//! - Every argument is optional (ESP8266). Without a client id the ESP8266 variant uses
//!   `"NodeMCU_" .. hex(node.chipid())`; the ESP32 variant (which requires one) gets a random
//!   one (clean sessions only; a broker refuses an empty id with `cleansession = 0`). Ids,
//!   user names and passwords are never truncated (ESP32 truncates to 32/32/65 characters).
//! - `keepalive` 0 or absent means **60 s** on ESP8266 (`MQTT_DEFAULT_KEEPALIVE`) and
//!   **120 s** on ESP32 (esp-mqtt's default). As on both devices, keepalive cannot be
//!   switched off.
//! - `cleansession` takes 0/1 or a boolean; the default is **1 (true)**, as both variants
//!   document (the ESP8266 code has defaulted to 0 since 2021).
//! - `max_message_length` (ESP8266) defaults to **1024** with `--firmware esp8266` and to
//!   none with ESP32: messages then arrive whole however large (up to the tern client's
//!   16 MiB packet limit), never in fragments as on ESP32. When it is set, a message whose PUBLISH packet (fixed header + topic + packet id + payload) is
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
//! - Returns **true** when the attempt started on ESP32, nil on ESP8266. Calling it while
//!   connecting or connected raises `already connected` on ESP8266; on ESP32 the live
//!   connection is dropped without an event (DISCONNECT if it was up) and a new one starts.
//!   While automatic reconnection is waiting (after `offline` with autoreconnect on, e.g.
//!   `connect()` from the `offline` callback) both variants accept it and it takes over.
//!   After `close()`, the client is reusable once `offline` has fired (as on ESP8266).
//! - Optional arguments are taken in order until the first function, so
//!   `connect(host, conn_cb, fail_cb)`, `connect(host, port, conn_cb, fail_cb)` and the
//!   legacy `connect(host, port, secure, autoreconnect, conn_cb, fail_cb)` all mean what they
//!   say (the ESP8266's off-by-one that makes `conn_cb` the failure handler there is not
//!   reproduced).
//! - `secure`: 0/1, `false`/`true` (ESP32 mis-parses booleans; tern does not), or a table
//!   `{ca_cert=PEM, client_cert=PEM, client_key=PEM}` (TLS on). `secure = 1/true` takes the
//!   settings of `tls.cert.verify`/`tls.cert.auth` (ESP8266's global TLS configuration; see
//!   `tls` below). Without a CA the broker is verified against the system's roots (ESP8266 verifies nothing by default, ESP32
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
//! - ESP32: `conn_cb`/`fail_cb` given to `connect()` are **one-shot** and belong to that call;
//!   `on("connect")`/`on("connfail")` handlers are persistent and fire too, after the one-shot
//!   one. ESP8266: the `connect()` callbacks *become* the `on("connect")`/`on("connfail")`
//!   handlers (a nil keeps the handler there is), so each fires once.
//! - `fail_cb(client, reason, message)`: `reason` is the seed's code, -5..-1 or the CONNACK
//!   code 1..5 (ESP32 always passes -6); failures outside the table (TLS, WebSocket, bad
//!   options) pass -6. `message` is a sentence saying what happened (tern extension). After a
//!   failure **nothing else fires**, not `offline` either (the seed: "No further callbacks
//!   should be called"; both devices fire `offline` after some failures).
//! - `offline` fires whenever an established connection ends, **including after `close()`**
//!   (ESP8266; ESP32 fires nothing, but scripts for both wait for it, so tern fires it on
//!   both). `close()` while still connecting ends the attempt quietly on ESP32 (neither
//!   `fail_cb` nor `offline`); on ESP8266 it is ignored and returns false.
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
//!   (never connected, after `offline`, after `close()`) they return **false** on ESP32 and
//!   raise `not connected` on ESP8266. While connecting they are accepted and sent after
//!   CONNACK.
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
//! `SEMI`, with the device's semantics: intervals 1..6870947 ms, `start()` returns false when
//! already running, a SINGLE timer unregisters itself before its callback runs, SEMI stays
//! registered, `register()` stops a running timer, the callback gets the timer, an armed
//! timer is kept alive.
//!
//! - The legacy static API on timers 0..6: `tmr.alarm(id, ms, mode, fn)`, `tmr.register`,
//!   `tmr.start`, `tmr.stop(id)`, `tmr.unregister(id)`, `tmr.interval(id, ms)`,
//!   `tmr.state(id)`; the oldest id-less forms (`tmr.alarm(ms, repeat, fn)`, `tmr.stop()`)
//!   use timer 0; `tmr.stop(t)` with a timer object works too. Another id raises
//!   `bad argument #1 to 'alarm' (invalid timer index (0..6))`.
//! - `tmr.now()`: µs since boot in 31 bits, wrapping at 2^31 as on the device; `tmr.time()`:
//!   s since boot; `tmr.delay(us)` blocks the Lua thread (the device busy-waits);
//!   `tmr.wdclr()` does nothing; `tmr.softwd(s)` restarts the board (see `node.restart`) unless
//!   called again within `s` seconds (`s <= 0` disarms); `tmr.ccount()` an 80 MHz count.
//!
//! ## `node`
//!
//! Values come from the [`Board`] ([`Config::board`]; a `--sim` file's `chipid` and `heap`
//! set them through [`sim::Board::apply_to`]):
//! `node.chipid()`, `node.flashid()`, `node.flashsize()`, `node.heap()` (a fixed figure: the
//! PC's heap says nothing about the device's), `node.info()` (the 8 legacy values, or the
//! `"hw"`, `"sw_version"`, `"build_config"` tables).
//!
//! - `node.restart()`: the loop stops after the current callback, and `tern run` starts the
//!   script again in a fresh Lua state after the board's boot time (100 ms): globals, timers
//!   and connections are gone (cut without DISCONNECT, as when the power goes, so the
//!   broker publishes the will), files in the flash directory remain. `--timeout` bounds
//!   all boots together. The simulated board outlives the reboot: the next boot starts on
//!   [`Runtime::take_board`] (inputs, sensors, access point as they are, the schedule going
//!   on) and stdin commands reach it.
//! - `--trace node` prints `node boot REASON` at each boot and `node restart MS`, `node
//!   dsleep MS`, `node watchdog MS` (the time until the board is up again) at a reboot.
//! - `node.dsleep(us)`: the same after `us` µs; `node.dsleep(0)` (sleep until reset) ends the
//!   run with status 0 and a note on stderr. A library user sees both as
//!   [`Runtime::reboot_requested`].
//! - `node.bootreason()`: `1, 0` at the first boot, then `2, 4` after `node.restart()`,
//!   `2, 5` after `node.dsleep()`, `2, 3` after `tmr.softwd` expired (the ESP8266's codes).
//! - `node.uptime()`: µs since boot; `node.random()`, `node.random(n)`, `node.random(l, u)`
//!   as `math.random` (not cryptographic); `node.setcpufreq` returns the frequency.
//! - `node.compile("x.lua")`: there is no device bytecode here; the source is copied to
//!   `x.lc` (so `dofile("x.lc")` works), with a note on stderr.
//! - `node.egc.setmode(...)` is accepted and does nothing.
//! - `node.task.post([priority,] fn)`: `fn(priority)` runs from the loop after the current
//!   code, in posting order (priorities are not reordered).
//!
//! ## `file`: the flash file system is a directory
//!
//! `tern run --fs DIR` (default: the script's directory); [`Config::fs`] for a library user.
//! `file.open(name[, mode])` returns a file object (and makes it the current file for the
//! module-level `file.read/readline/write/writeline/seek/flush/close`), or nil when it
//! cannot be opened. Objects: `read([n | char])` (at most 1024 bytes, nil at the end),
//! `readline()` (with its `\n`), `write(s)`, `writeline(s)`, `seek([whence[, offset]])`,
//! `flush()`, `close()`. Module: `exists`, `remove`, `rename` (false if the target exists),
//! `list([pattern])` (name → size, subdirectories as `dir/name`), `fsinfo()` (remaining,
//! used, total bytes of a 3 MiB flash), `stat(name)` (the device's table, UTC time),
//! `getcontents`, `putcontents`. `require("x")` loads `x.lua`/`x.lc`, and `dofile(name)` and
//! `loadfile(name)` read, from the same directory, under the same confinement.
//!
//! Names are relative to the directory: an absolute name, a `..` component, or a link that
//! leads out (or nowhere) raises `open: 'NAME' contains '..'; the flash file system is DIR`
//! (or `is an absolute path`, `leads outside through a link`); nothing outside is read or
//! written. (The standard `io` library is still there, unconfined, as in any Lua.)
//!
//! ## `sjson` and `cjson`
//!
//! `sjson.encode(table[, {depth=, null=}])`, `sjson.encoder(table[, opts])` (`:read([n])`
//! hands the text out in pieces), `sjson.decode(text[, {null=, metatable=,
//! depth=}])`, `sjson.NULL`, and the streaming `sjson.decoder()` (`:write(chunk)` returns the
//! value once the document is complete and nothing before; `:result()`). A table whose keys
//! are all positive integers is an array up to its largest key (holes are `null`), anything
//! else an object; `{}` is `[]`; functions are called and their value written. Errors as the
//! device: `Incomplete JSON object passed to sjson.decode`, `JSON parse error: ...` (the
//! detail after the colon is serde_json's, the device's parser names its own state),
//! `encoder stack overflow` past the depth (20), `Cannot encode type N`, `decode not
//! complete`. Unlike the device, a backslash in a string is escaped (the device writes
//! invalid JSON). Only an object or array is a complete document (as sjson).
//!
//! `cjson.encode(value)`, `cjson.decode(text)`, `cjson.null` follow lua-cjson: `{}` is `{}`,
//! an excessively sparse array and NaN are refused (`Cannot serialise ...`), decoding errors
//! read `Expected value but found invalid token at character N`.
//!
//! ## `tls`
//!
//! `tls.cert.verify(true | false | pem[, pem...] | fn)` and `tls.cert.auth(true | false |
//! pem[, pem...] | fn)` set what `connect(host, port, 1)` (`secure = 1/true`) uses: the CA
//! certificates to verify the broker with (`fn(k)` returns the k-th, k = 1.., until nil), and
//! the client key and certificate (in one or several PEM strings; `fn(0)` the key, `fn(k)` the
//! k-th certificate). `verify(false)` connects without verification. Before any
//! `tls.cert.verify`, the broker is verified against the system's roots (the ESP8266
//! verifies nothing until told to). The host name is checked (the ESP8266 does not).
//!
//! ## Errors
//!
//! A module function's error reaches the script as the device's text with the script's
//! position, `init.lua:12: bad argument #3 to 'publish' (qos must be 0, 1 or 2)`, and an
//! uncaught one ends the run with a traceback free of tern's own frames
//! ([`tidy_traceback`]). `require` of a module tern does not have raises
//! `module 'x' not available in tern (available: cjson, file, mqtt, ...)`.
//!
//! ## The loop
//!
//! The process (`tern run`) ends with status 0 when nothing is pending: no client connecting
//! or connected, no armed timer, no posted task. A reboot (`node.restart`, `node.dsleep`,
//! `tmr.softwd`) ends it early ([`Runtime::reboot_requested`]). A connected client with
//! nothing to do keeps it running, as on the device: `close()` it to finish.
//!
//! ## The simulated board: `gpio`, `wifi`, `dht`, `adc`
//!
//! Pins, station and sensors are simulated ([`sim::Board`]: the documented default board, or
//! a `--sim` file via [`Runtime::simulate`]); what each call does, and where it differs from
//! the devices, is documented in the modules' sources (`gpio.rs`, `wifi/mod.rs`,
//! `sensors.rs`) and listed in `examples/lua/README.md`. The main choices:
//!
//! - ESP8266 and ESP32 forms live side by side and are told apart by their arguments:
//!   `gpio.trig(pin, "down", fn)` calls `fn(level, when, eventcount)` (ESP8266),
//!   `gpio.trig(pin, gpio.INTR_DOWN, fn)` calls `fn(pin, level)` (ESP32); `wifi.setmode` and
//!   `wifi.mode`, `eventmon.register` and `wifi.sta.on` all work.
//! - The station joins its access point after the board's connect time (100 ms by default)
//!   after start, `sta.config` and `sta.connect`, firing `STA_CONNECTED` then `STA_GOT_IP`;
//!   its address is loopback (127.0.0.1).
//! - Under `--sim`, MQTT connections pass through the simulated access point
//!   (`wifi/relay.rs`): a Wi-Fi drop cuts them at once on both sides (a device notices its
//!   link loss at once; the broker, which would wait 1.5 × keepalive, publishes the will at
//!   once too) and refuses new ones (-5) until the station has joined again. A broker that
//!   cannot be reached shows there as -5, also when its name does not resolve (-3 on the
//!   device).
//! - Level interrupts ("low"/"high") fire once per change into the level, not repeatedly.
//! - The run stays alive for the board only while a callback listens (`gpio.trig`, a Wi-Fi
//!   event) and a scheduled change, a station join or a stdin command may still come, or a
//!   background `gpio.serout` runs.
#![warn(missing_docs)]

mod args;
pub mod board;
pub mod config;
mod control;
mod file;
pub mod firmware;
mod gpio;
mod json;
pub mod mqtt;
mod node;
mod registry;
mod runtime;
mod sensors;
pub mod sim;
mod tls;
pub mod tmr;
pub mod trace;
mod wifi;

pub use board::Board;
pub use config::{BootReason, Config, Reboot};
pub use firmware::Firmware;
pub use runtime::{RunError, Runtime};

/// Registry slot of the installed modules' names, sorted and comma-separated.
const MODULE_NAMES: &str = "tern.modules";

/// The NodeMCU modules this runtime installed (`mqtt`, `tmr`, …), sorted: what `require`
/// lists when it cannot find a module and `node.info("build_config").modules` reports.
pub(crate) fn module_names(lua: &mlua::Lua) -> mlua::Result<String> {
    lua.named_registry_value(MODULE_NAMES)
}

/// Installs the modules' globals; [`Runtime::new`] calls it.
pub(crate) fn register(lua: &mlua::Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let before: std::collections::HashSet<String> = globals
        .pairs::<String, mlua::Value>()
        .filter_map(|p| p.ok().map(|(k, _)| k))
        .collect();

    // ---- modules: one line each ----
    mqtt::register_module(lua)?;
    tmr::register_module(lua)?;
    node::register_module(lua)?;
    file::register_module(lua)?;
    json::register_module(lua)?; // sjson, cjson
    tls::register_module(lua)?;
    // the simulated board's modules; `sim` first, it keeps their bookkeeping
    sim::register_module(lua)?;
    gpio::register_module(lua)?;
    sensors::register_module(lua)?; // dht, adc
    wifi::register_module(lua)?;
    // ---- end of modules ----

    // Every table global the lines above added is a module. Errors raised by the modules'
    // functions reach scripts as plain strings with the script's position, as a C module's
    // `luaL_argerror` gives them on the device ("init.lua:12: bad argument #3 to 'publish'
    // (qos must be 0, 1 or 2)"), not as mlua's error object with a Rust-side traceback.
    // Methods are wrapped when the first object of each type is made
    // (`plain_method_errors`).
    let mut modules = Vec::new();
    for pair in globals.pairs::<String, mlua::Value>() {
        if let (name, mlua::Value::Table(t)) = pair?
            && !before.contains(&name)
        {
            modules.push((name, t));
        }
    }
    modules.sort_by(|a, b| a.0.cmp(&b.0));
    let loaded: mlua::Table = globals
        .raw_get::<mlua::Table>("package")?
        .raw_get("loaded")?;
    for (name, t) in &modules {
        wrap_module(lua, t)?;
        loaded.raw_set(name.as_str(), t)?;
    }
    let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    lua.set_named_registry_value(MODULE_NAMES, names.join(", "))?;
    install_require(lua)?;
    install_dofile(lua)
}

/// Makes the functions of a module table (and of its sub-tables, e.g. `tls.cert`,
/// `node.task`) raise plain errors with the caller's position.
fn wrap_module(lua: &mlua::Lua, t: &mlua::Table) -> mlua::Result<()> {
    plain_errors(lua, t)?;
    for pair in t.clone().pairs::<mlua::Value, mlua::Value>() {
        if let (_, mlua::Value::Table(sub)) = pair? {
            plain_errors(lua, &sub)?;
        }
    }
    Ok(())
}

/// `require(name)`: the modules above, then Lua files in the flash file system (as the
/// device loads `name.lua`/`name.lc` from flash); anything else raises
/// "module 'x' not available in tern (available: …)".
fn install_require(lua: &mlua::Lua) -> mlua::Result<()> {
    let shared = registry::shared(lua)?;
    let package: mlua::Table = lua.globals().raw_get("package")?;
    if let Some(dir) = &shared.config.fs {
        let dir = dir.to_string_lossy().replace(';', "");
        package.raw_set("path", format!("{dir}/?.lua;{dir}/?.lc"))?;
        package.raw_set("cpath", "")?;
    }
    let wrap: mlua::Function = lua.load(REQUIRE).set_name("=tern").eval()?;
    let require: mlua::Function = wrap.call(module_names(lua)?)?;
    lua.globals().raw_set("require", require)
}

const REQUIRE: &str = r##"
return function(available)
  local loaded, loaders, orig, type, error, tostring = package.loaded, package.loaders, require, type, error, tostring
  return function(name)
    if loaded[name] ~= nil then return loaded[name] end
    for i = 1, #loaders do
      if type(loaders[i](name)) == "function" then return orig(name) end
    end
    error("module '" .. tostring(name) .. "' not available in tern (available: " .. available .. ")", 2)
  end
end
"##;

/// `dofile(name)` and `loadfile(name)` read `name` from the flash file system, when there is
/// one.
fn install_dofile(lua: &mlua::Lua) -> mlua::Result<()> {
    if registry::shared(lua)?.config.fs.is_none() {
        return Ok(());
    }
    fn load(lua: &mlua::Lua, func: &str, name: &mlua::Value) -> mlua::Result<mlua::Function> {
        let mlua::Value::String(name) = name else {
            return Err(args::bad_arg(
                func,
                1,
                format!("string expected, got {}", args::type_name(name)),
            ));
        };
        let name = name.to_str()?.to_owned();
        let path = file::resolve(lua, func, &name)?;
        let src = std::fs::read(&path)
            .map_err(|e| args::lua_error(format!("cannot open {name}: {e}")))?;
        lua.load(src).set_name(format!("@{name}")).into_function()
    }
    let wrapped = lua.create_table()?;
    wrapped.raw_set(
        "dofile",
        lua.create_function(|lua, name: mlua::Value| {
            load(lua, "dofile", &name)?.call::<mlua::MultiValue>(())
        })?,
    )?;
    wrapped.raw_set(
        "loadfile",
        lua.create_function(|lua, name: mlua::Value| {
            // As Lua's own: nil and the message instead of an error.
            match load(lua, "loadfile", &name) {
                Ok(f) => Ok((Some(f), None)),
                Err(e) => Ok((None, Some(e.to_string()))),
            }
        })?,
    )?;
    plain_errors(lua, &wrapped)?;
    let globals = lua.globals();
    globals.raw_set("dofile", wrapped.raw_get::<mlua::Function>("dofile")?)?;
    globals.raw_set("loadfile", wrapped.raw_get::<mlua::Function>("loadfile")?)
}

/// A Lua error's text as a script's author wants it: without the frames of tern's own
/// wrappers (`tern:NN`), which the device does not have either.
pub fn tidy_traceback(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let frame = line.trim_start();
        if frame.starts_with("tern:") || frame.starts_with("[string \"tern\"]") {
            // The wrapped module function itself, shown as the device shows a C function.
            let name = ["in function '", "in field '", "in method '"]
                .iter()
                .find_map(|p| frame.split_once(p))
                .and_then(|(_, rest)| rest.split_once('\''))
                .map(|(name, _)| name);
            if let Some(name) = name {
                out.push(format!("\t[C]: in function '{name}'"));
            }
            continue;
        }
        // The `error`/`pcall` calls of a wrapper sit just above its frame.
        let next_is_tern = lines
            .get(i + 1)
            .is_some_and(|n| n.trim_start().starts_with("tern:"));
        if next_is_tern && frame.starts_with("[C]:") {
            continue;
        }
        out.push((*line).to_owned());
    }
    out.join("\n")
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
      -- Level 2: the position of the script line that made the call (none when it was
      -- called from C, e.g. through pcall), as luaL_error gives it.
      error(e, 2)
    end
  end
end
"##;

#[cfg(test)]
mod tests {
    #[test]
    fn tidy_traceback_shows_wrapped_functions_as_c_functions() {
        let text = "x.lua:3: bad argument\nstack traceback:\n\t[C]: in ?\n\t[C]: in function 'error'\n\ttern:20: in function 'publish'\n\tx.lua:3: in main chunk";
        assert_eq!(
            super::tidy_traceback(text),
            "x.lua:3: bad argument\nstack traceback:\n\t[C]: in ?\n\t[C]: in function 'publish'\n\tx.lua:3: in main chunk"
        );
    }
}
