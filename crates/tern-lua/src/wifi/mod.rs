//! The `wifi` module on a simulated station: ESP8266's `setmode`/`getmode`, `setphymode`,
//! `sta.config` (table and old positional forms), `sta.connect`/`disconnect`/`autoconnect`,
//! `sta.getip`/`getmac`/`status`/`sleeptype`, `eventmon.register` and the old
//! `sta.eventMonReg`; ESP32's `wifi.mode`, `wifi.start`/`stop` and `wifi.sta.on`.
//!
//! The station joins its access point [`Board::connect_time`] after boot, after
//! `sta.config` (with `auto`, the default) and after `sta.connect`, firing the device's
//! events in the device's order: `STA_CONNECTED` then `STA_GOT_IP` (ESP32: `connected` then
//! `got_ip`). `sta.config` on a joined station leaves first (`STA_DISCONNECTED`, reason 8
//! `ASSOC_LEAVE`), as the device does. `getip()` gives the board's loopback address (default
//! 127.0.0.1), mask 255.0.0.0, gateway 127.0.0.1, or nil while not joined.
//!
//! Losing the access point (a `"drop"` in the `--sim` schedule, `wifi drop` on stdin) fires
//! `STA_DISCONNECTED` with reason 200 (`BEACON_TIMEOUT`) and, under `--sim`, cuts the MQTT
//! connections and refuses new ones (see [`relay`]); when it returns the station joins again.
//! The event fires once per loss (a device searching for its access point repeats it, with
//! reason 201 `NO_AP_FOUND`, every few seconds).
//! Without `--sim` there is no relay: the events still fire, connections are not touched.
//!
//! For one event the callbacks run in this order: the `sta.config` table's `*_cb`,
//! `eventmon.register`'s, then `wifi.sta.on`'s. The old `eventMonReg` callbacks (after
//! `eventMonStart()`) get the previous status when the status changes, just before the
//! `STA_GOT_IP` or `STA_DISCONNECTED` callbacks. Every event is a `--trace wifi` line.

pub(crate) mod relay;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value, Variadic};

use crate::args::{bad_arg, check_integer, lua_error, opt_integer, type_name};
use crate::registry::{self, LoopEvent};
use crate::sim::{Board, BoardEvent};
use crate::trace::{self, Kind};

/// Registry table of every Wi-Fi callback, by key: `em<N>` (`eventmon.register`),
/// `on:<name>` (`wifi.sta.on`), `cfg:<key>` (`sta.config`'s `*_cb`, `sta.connect`'s and
/// `sta.disconnect`'s), `old<N>` (`sta.eventMonReg`).
const CALLBACKS: &str = "tern.wifi.callbacks";

const NULLMODE: i64 = 0;
const STATION: i64 = 1;
const SOFTAP: i64 = 2;
const STATIONAP: i64 = 3;

// wifi.sta.status() values.
const STA_IDLE: i64 = 0;
const STA_CONNECTING: i64 = 1;
const STA_GOTIP: i64 = 5;

/// `wifi.eventmon` event numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Connected = 0,
    Disconnected = 1,
    GotIp = 3,
    ModeChanged = 8,
}

impl Event {
    const fn name(self) -> &'static str {
        match self {
            Self::Connected => "STA_CONNECTED",
            Self::Disconnected => "STA_DISCONNECTED",
            Self::GotIp => "STA_GOT_IP",
            Self::ModeChanged => "WIFI_MODE_CHANGED",
        }
    }

    /// ESP32 `wifi.sta.on` name, and the `sta.config` table's callback key.
    const fn esp32(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Connected => Some(("connected", "connected_cb")),
            Self::Disconnected => Some(("disconnected", "disconnected_cb")),
            Self::GotIp => Some(("got_ip", "got_ip_cb")),
            Self::ModeChanged => None,
        }
    }
}

const EVENTMON: [(&str, i64); 9] = [
    ("STA_CONNECTED", 0),
    ("STA_DISCONNECTED", 1),
    ("STA_AUTHMODE_CHANGE", 2),
    ("STA_GOT_IP", 3),
    ("STA_DHCP_TIMEOUT", 4),
    ("AP_STACONNECTED", 5),
    ("AP_STADISCONNECTED", 6),
    ("AP_PROBEREQRECVED", 7),
    ("WIFI_MODE_CHANGED", 8),
];

const REASONS: [(&str, i64); 26] = [
    ("UNSPECIFIED", 1),
    ("AUTH_EXPIRE", 2),
    ("AUTH_LEAVE", 3),
    ("ASSOC_EXPIRE", 4),
    ("ASSOC_TOOMANY", 5),
    ("NOT_AUTHED", 6),
    ("NOT_ASSOCED", 7),
    ("ASSOC_LEAVE", 8),
    ("ASSOC_NOT_AUTHED", 9),
    ("DISASSOC_PWRCAP_BAD", 10),
    ("DISASSOC_SUPCHAN_BAD", 11),
    ("IE_INVALID", 13),
    ("MIC_FAILURE", 14),
    ("4WAY_HANDSHAKE_TIMEOUT", 15),
    ("GROUP_KEY_UPDATE_TIMEOUT", 16),
    ("IE_IN_4WAY_DIFFERS", 17),
    ("GROUP_CIPHER_INVALID", 18),
    ("PAIRWISE_CIPHER_INVALID", 19),
    ("AKMP_INVALID", 20),
    ("UNSUPP_RSN_IE_VERSION", 21),
    ("INVALID_RSN_IE_CAP", 22),
    ("802_1X_AUTH_FAILED", 23),
    ("CIPHER_SUITE_REJECTED", 24),
    ("BEACON_TIMEOUT", 200),
    ("NO_AP_FOUND", 201),
    ("AUTH_FAIL", 202),
];

/// Reason of a station that left on request.
const ASSOC_LEAVE: i64 = 8;
/// Reason of a station that lost its access point.
const BEACON_TIMEOUT: i64 = 200;

/// Where the station is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Not trying (after `disconnect()`, or a mode without station).
    Down,
    /// Trying to join; joins when the access point is there.
    Joining,
    /// Joined, with an address.
    Up,
}

/// The station's state, in the Lua state's app data.
#[derive(Debug)]
pub(crate) struct Station {
    mode: i64,
    phymode: i64,
    sleeptype: i64,
    ssid: String,
    pwd: String,
    bssid: Option<String>,
    autoconnect: bool,
    /// The access point is in range (the simulation's drops and returns).
    ap_present: bool,
    link: Link,
    status: i64,
    /// A join is scheduled; bumped generations make older ones stale.
    join_pending: bool,
    generation: u64,
    ip: String,
    mac: String,
    hostname: String,
    connect_time: Duration,
    /// `eventMonStart()` was called.
    monitor: bool,
    /// Under `--sim`: the relays MQTT connections go through.
    net: Option<Rc<relay::Net>>,
}

type Shared = Rc<RefCell<Station>>;

fn station(lua: &Lua) -> mlua::Result<Shared> {
    lua.app_data_ref::<Shared>()
        .map(|s| Rc::clone(&s))
        .ok_or_else(|| lua_error("wifi: module not installed"))
}

fn fresh(board: &Board, net: Option<Rc<relay::Net>>) -> Station {
    Station {
        mode: STATION,
        phymode: 3,
        sleeptype: 2,
        ssid: board.ssid.clone(),
        pwd: String::new(),
        bssid: None,
        autoconnect: true,
        ap_present: board.ap_up,
        link: Link::Joining,
        status: STA_CONNECTING,
        join_pending: false,
        generation: 0,
        ip: board.ip.clone(),
        mac: board.mac.clone(),
        hostname: "NODE-C0FFEE".to_owned(),
        connect_time: board.connect_time,
        monitor: false,
        net,
    }
}

/// Resets the station to the board's boot state: joining its access point. `simulate_net`
/// routes MQTT connections through the simulated access point (`--sim`).
pub(crate) fn configure(lua: &Lua, board: &Board, simulate_net: bool) -> mlua::Result<()> {
    let s = station(lua)?;
    let generation = s.borrow().generation + 1;
    let net = simulate_net.then(|| Rc::new(relay::Net::new(false)));
    let mut st = fresh(board, net);
    st.generation = generation;
    *s.borrow_mut() = st;
    schedule_join(lua)
}

/// True when a script callback listens to station events.
pub(crate) fn watching(lua: &Lua) -> mlua::Result<bool> {
    let t: Table = lua.named_registry_value(CALLBACKS)?;
    Ok(t.pairs::<Value, Value>().next().is_some())
}

/// True while a join is scheduled.
pub(crate) fn joining(lua: &Lua) -> mlua::Result<bool> {
    Ok(station(lua)?.borrow().join_pending)
}

/// Under `--sim`, points an MQTT connection at the simulated access point's relay for its
/// broker (keeping the broker's name for TLS). Without `--sim`, leaves it alone.
pub(crate) fn route(
    lua: &Lua,
    broker: &mut tern::Broker,
    tls: &mut Option<tern::TlsOptions>,
) -> mlua::Result<()> {
    let Some(net) = station(lua)?.borrow().net.clone() else {
        return Ok(());
    };
    let port = net
        .relay_port(&broker.host, broker.port)
        .map_err(|e| lua_error(format!("connect: the simulated access point: {e}")))?;
    if broker.scheme.is_tls() {
        let t = tls.get_or_insert_with(Default::default);
        if t.server_name.is_none() {
            t.server_name = Some(broker.host.clone());
        }
    }
    broker.host = "127.0.0.1".to_owned();
    broker.port = port;
    Ok(())
}

/// A connection error's message naming the broker, not the simulated access point's relay.
pub(crate) fn describe(lua: &Lua, text: String) -> String {
    match station(lua).ok().and_then(|s| s.borrow().net.clone()) {
        Some(net) => net.describe(&text),
        None => text,
    }
}

/// Starts the station's join (after the connect time), replacing one under way.
fn schedule_join(lua: &Lua) -> mlua::Result<()> {
    let s = station(lua)?;
    let (generation, after) = {
        let mut st = s.borrow_mut();
        st.generation += 1;
        st.link = Link::Joining;
        st.join_pending = true;
        (st.generation, st.connect_time)
    };
    if tokio::runtime::Handle::try_current().is_err() {
        // No loop to wait in (a runtime built outside tokio): joined already.
        return join(lua, generation);
    }
    let tx = registry::shared(lua)?.tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = tx
            .send(LoopEvent::Board(BoardEvent::Join { generation }))
            .await;
    });
    crate::sim::refresh(lua)
}

/// A scheduled join is due.
pub(crate) fn join(lua: &Lua, generation: u64) -> mlua::Result<()> {
    let s = station(lua)?;
    {
        let mut st = s.borrow_mut();
        if st.generation != generation || st.link != Link::Joining {
            return Ok(());
        }
        st.join_pending = false;
        if !st.ap_present || st.mode & STATION == 0 {
            drop(st);
            return crate::sim::refresh(lua); // waits for the access point
        }
        st.link = Link::Up;
        if let Some(net) = &st.net {
            net.set_link(true);
        }
    }
    crate::sim::refresh(lua)?;
    fire(lua, Fired::Connected)?;
    set_status(lua, STA_GOTIP)?;
    fire(lua, Fired::GotIp)
}

/// Leaves the access point (`reason`), firing `STA_DISCONNECTED` if joined.
fn leave(lua: &Lua, reason: i64, then: Link) -> mlua::Result<()> {
    let s = station(lua)?;
    let was_up = {
        let mut st = s.borrow_mut();
        st.generation += 1;
        st.join_pending = false;
        let was_up = st.link == Link::Up;
        st.link = then;
        if let Some(net) = &st.net {
            net.set_link(false);
        }
        was_up
    };
    crate::sim::refresh(lua)?;
    // The status has changed by the time the event's callbacks run.
    set_status(
        lua,
        if then == Link::Down {
            STA_IDLE
        } else {
            STA_CONNECTING
        },
    )?;
    if was_up {
        fire(lua, Fired::Disconnected(reason))?;
    }
    Ok(())
}

/// The access point went away (the simulation).
pub(crate) fn drop_ap(lua: &Lua) -> mlua::Result<()> {
    trace::emit(Kind::Wifi, "ap", "drop");
    let s = station(lua)?;
    let link = {
        let mut st = s.borrow_mut();
        st.ap_present = false;
        st.link
    };
    if link == Link::Up {
        // The station keeps searching.
        leave(lua, BEACON_TIMEOUT, Link::Joining)?;
    }
    Ok(())
}

/// The access point is back (the simulation).
pub(crate) fn return_ap(lua: &Lua) -> mlua::Result<()> {
    trace::emit(Kind::Wifi, "ap", "up");
    let s = station(lua)?;
    let link = {
        let mut st = s.borrow_mut();
        st.ap_present = true;
        st.link
    };
    if link == Link::Joining {
        schedule_join(lua)?;
    }
    Ok(())
}

/// The station's status changed: `eventMonReg` callbacks get the previous one.
fn set_status(lua: &Lua, status: i64) -> mlua::Result<()> {
    let s = station(lua)?;
    let (previous, monitor) = {
        let mut st = s.borrow_mut();
        let previous = st.status;
        st.status = status;
        (previous, st.monitor)
    };
    if previous == status || !monitor {
        return Ok(());
    }
    match callback(lua, &format!("old{status}"))? {
        Some(f) => f.call(previous),
        None => Ok(()),
    }
}

fn callbacks(lua: &Lua) -> mlua::Result<Table> {
    lua.named_registry_value(CALLBACKS)
}

fn callback(lua: &Lua, key: &str) -> mlua::Result<Option<Function>> {
    callbacks(lua)?.raw_get(key)
}

fn set_callback(lua: &Lua, key: &str, f: Option<Function>) -> mlua::Result<()> {
    callbacks(lua)?.raw_set(key, f)?;
    crate::sim::refresh(lua)
}

/// A station event and what it reports.
#[derive(Debug, Clone, Copy)]
enum Fired {
    Connected,
    Disconnected(i64),
    GotIp,
}

impl Fired {
    const fn event(self) -> Event {
        match self {
            Self::Connected => Event::Connected,
            Self::Disconnected(_) => Event::Disconnected,
            Self::GotIp => Event::GotIp,
        }
    }
}

/// Runs every callback of one station event.
fn fire(lua: &Lua, what: Fired) -> mlua::Result<()> {
    let event = what.event();
    let (ssid, ip) = {
        let s = station(lua)?;
        let st = s.borrow();
        (st.ssid.clone(), st.ip.clone())
    };
    let bssid = "02:00:00:00:00:01";
    // The ESP8266's table (eventmon, sta.config callbacks) and the ESP32's info table.
    let t = lua.create_table()?;
    let info = lua.create_table()?;
    match what {
        Fired::Connected => {
            trace::emit(Kind::Wifi, event.name(), &ssid);
            t.raw_set("SSID", ssid.as_str())?;
            t.raw_set("BSSID", bssid)?;
            t.raw_set("channel", 6)?;
            info.raw_set("ssid", ssid.as_str())?;
            info.raw_set("bssid", bssid)?;
            info.raw_set("channel", 6)?;
            info.raw_set("auth", 3)?;
        }
        Fired::Disconnected(reason) => {
            trace::emit(Kind::Wifi, event.name(), format_args!("reason={reason}"));
            t.raw_set("SSID", ssid.as_str())?;
            t.raw_set("BSSID", bssid)?;
            t.raw_set("reason", reason)?;
            info.raw_set("ssid", ssid.as_str())?;
            info.raw_set("bssid", bssid)?;
            info.raw_set("reason", reason)?;
        }
        Fired::GotIp => {
            trace::emit(Kind::Wifi, event.name(), &ip);
            t.raw_set("IP", ip.as_str())?;
            t.raw_set("netmask", "255.0.0.0")?;
            t.raw_set("gateway", "127.0.0.1")?;
            info.raw_set("ip", ip.as_str())?;
            info.raw_set("netmask", "255.0.0.0")?;
            info.raw_set("gw", "127.0.0.1")?;
        }
    }
    let (on_name, cfg_key) = event.esp32().unwrap_or(("", ""));
    if let Some(f) = callback(lua, &format!("cfg:{cfg_key}"))? {
        f.call::<()>(t.clone())?;
    }
    if let Some(f) = callback(lua, &format!("em{}", event as i64))? {
        f.call::<()>(t)?;
    }
    if let Some(f) = callback(lua, &format!("on:{on_name}"))? {
        f.call::<()>((on_name, info))?;
    }
    Ok(())
}

/// `WIFI_MODE_CHANGED` (eventmon only).
fn fire_mode_changed(lua: &Lua, old: i64, new: i64) -> mlua::Result<()> {
    trace::emit(Kind::Wifi, Event::ModeChanged.name(), new);
    if let Some(f) = callback(lua, &format!("em{}", Event::ModeChanged as i64))? {
        let t = lua.create_table()?;
        t.raw_set("old_mode", old)?;
        t.raw_set("new_mode", new)?;
        f.call::<()>(t)?;
    }
    Ok(())
}

/// ESP32's `start`/`stop` events (`wifi.sta.on` only).
fn fire_simple(lua: &Lua, name: &str) -> mlua::Result<()> {
    trace::emit(Kind::Wifi, name, "-");
    match callback(lua, &format!("on:{name}"))? {
        Some(f) => f.call((name, lua.create_table()?)),
        None => Ok(()),
    }
}

fn setmode(lua: &Lua, func: &str, args: &[Value]) -> mlua::Result<i64> {
    let mode = check_integer(func, args, 1)?;
    if ![NULLMODE, STATION, SOFTAP, STATIONAP].contains(&mode) {
        return Err(bad_arg(func, 1, "Invalid mode"));
    }
    let s = station(lua)?;
    let (old, link, want_station) = {
        let mut st = s.borrow_mut();
        let old = st.mode;
        st.mode = mode;
        (old, st.link, mode & STATION != 0)
    };
    if old != mode {
        fire_mode_changed(lua, old, mode)?;
        if !want_station && link != Link::Down {
            leave(lua, ASSOC_LEAVE, Link::Down)?;
        } else if want_station && old & STATION == 0 && s.borrow().autoconnect {
            schedule_join(lua)?;
        }
    }
    Ok(mode)
}

/// A string field of the config table: `None` when absent.
fn field_string(t: &Table, key: &str) -> mlua::Result<Option<String>> {
    match t.raw_get::<Value>(key)? {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.to_string_lossy())),
        Value::Integer(i) => Ok(Some(i.to_string())),
        _ => Err(bad_arg("config", 1, format!("{key}:not string"))),
    }
}

fn field_function(t: &Table, key: &str) -> mlua::Result<Option<Function>> {
    match t.raw_get::<Value>(key)? {
        Value::Nil => Ok(None),
        Value::Function(f) => Ok(Some(f)),
        v => Err(bad_arg(
            "config",
            1,
            format!("{key}: function expected, got {}", type_name(&v)),
        )),
    }
}

/// `wifi.sta.config(table)` or the old `wifi.sta.config(ssid, pwd[, auto[, bssid]])`.
fn sta_config(lua: &Lua, args: &[Value]) -> mlua::Result<bool> {
    const F: &str = "config";
    let (ssid, pwd, auto, bssid) = match args.first() {
        Some(Value::Table(t)) => {
            let ssid = field_string(t, "ssid")?.ok_or_else(|| bad_arg(F, 1, "ssid required"))?;
            let pwd = field_string(t, "pwd")?.unwrap_or_default();
            let auto = match t.raw_get::<Value>("auto")? {
                Value::Nil => true,
                Value::Boolean(b) => b,
                Value::Integer(i) => i != 0,
                v => {
                    return Err(bad_arg(
                        F,
                        1,
                        format!("auto: boolean expected, got {}", type_name(&v)),
                    ));
                }
            };
            let bssid = field_string(t, "bssid")?;
            for (key, slot) in [
                ("connected_cb", "cfg:connected_cb"),
                ("disconnected_cb", "cfg:disconnected_cb"),
                ("got_ip_cb", "cfg:got_ip_cb"),
                ("authmode_change_cb", "cfg:authmode_change_cb"),
                ("dhcp_timeout_cb", "cfg:dhcp_timeout_cb"),
            ] {
                if let Some(f) = field_function(t, key)? {
                    set_callback(lua, slot, Some(f))?;
                }
            }
            (ssid, pwd, auto, bssid)
        }
        Some(Value::String(_)) => {
            let ssid = crate::args::check_utf8(F, args, 1)?;
            let pwd = crate::args::opt_bytes(F, args, 2)?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let auto = opt_integer(F, args, 3)?.is_none_or(|a| a != 0);
            let bssid = crate::args::opt_bytes(F, args, 4)?
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            (ssid, pwd, auto, bssid)
        }
        _ => return Err(bad_arg(F, 1, "config table not found!")),
    };
    if ssid.is_empty() || ssid.len() > 32 {
        return Err(bad_arg(F, 1, "ssid: length:1-32"));
    }
    if !(pwd.is_empty() || (8..=64).contains(&pwd.len())) {
        return Err(bad_arg(F, 1, "pwd: length:0 or 8-64"));
    }
    {
        let s = station(lua)?;
        let mut st = s.borrow_mut();
        st.ssid = ssid;
        st.pwd = pwd;
        st.bssid = bssid;
    }
    // The device leaves its access point first, then joins if `auto`.
    leave(lua, ASSOC_LEAVE, Link::Down)?;
    if auto {
        schedule_join(lua)?;
        set_status(lua, STA_CONNECTING)?;
    }
    Ok(true)
}

fn sta_connect(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    if let Some(f) = crate::args::opt_function("connect", args, 1)? {
        set_callback(lua, "cfg:connected_cb", Some(f))?;
    }
    let link = station(lua)?.borrow().link;
    if link == Link::Down {
        schedule_join(lua)?;
        set_status(lua, STA_CONNECTING)?;
    }
    Ok(())
}

fn sta_disconnect(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    if let Some(f) = crate::args::opt_function("disconnect", args, 1)? {
        set_callback(lua, "cfg:disconnected_cb", Some(f))?;
    }
    leave(lua, ASSOC_LEAVE, Link::Down)
}

fn sta_getip(lua: &Lua) -> mlua::Result<Variadic<Value>> {
    let s = station(lua)?;
    let st = s.borrow();
    // The address comes with STA_GOT_IP, after STA_CONNECTED.
    if st.link != Link::Up || st.status != STA_GOTIP {
        return Ok(Variadic::from_iter([Value::Nil]));
    }
    Ok(Variadic::from_iter([
        Value::String(lua.create_string(&st.ip)?),
        Value::String(lua.create_string("255.0.0.0")?),
        Value::String(lua.create_string("127.0.0.1")?),
    ]))
}

fn sta_getconfig(lua: &Lua, args: &[Value]) -> mlua::Result<Variadic<Value>> {
    let as_table = matches!(args.first(), Some(Value::Boolean(true)));
    let s = station(lua)?;
    let st = s.borrow();
    let bssid = st
        .bssid
        .clone()
        .unwrap_or_else(|| "ff:ff:ff:ff:ff:ff".to_owned());
    if as_table {
        let t = lua.create_table()?;
        t.raw_set("ssid", st.ssid.as_str())?;
        t.raw_set("pwd", st.pwd.as_str())?;
        t.raw_set("bssid_set", i64::from(st.bssid.is_some()))?;
        t.raw_set("bssid", bssid)?;
        return Ok(Variadic::from_iter([Value::Table(t)]));
    }
    Ok(Variadic::from_iter([
        Value::String(lua.create_string(&st.ssid)?),
        Value::String(lua.create_string(&st.pwd)?),
        Value::Integer(i64::from(st.bssid.is_some())),
        Value::String(lua.create_string(&bssid)?),
    ]))
}

/// `wifi.sta.getap([cfg,] [format,] fn)`: the scan finds the board's access point; `fn` gets
/// `{ssid = "authmode,rssi,bssid,channel"}` (format 0) or `{bssid = "ssid,rssi,authmode,channel"}`
/// (format 1) from the loop, as the device calls back when its scan ends.
fn sta_getap(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    const F: &str = "getap";
    let Some(pos) = args.iter().rposition(|v| matches!(v, Value::Function(_))) else {
        let got = args.last().map_or("no value", type_name);
        return Err(bad_arg(
            F,
            args.len().max(1),
            format!("function expected, got {got}"),
        ));
    };
    let mut format = 0;
    for (i, v) in args[..pos].iter().enumerate() {
        match v {
            Value::Table(_) | Value::Nil => {}
            Value::Integer(_) | Value::Number(_) => {
                format = check_integer(F, args, i + 1)?;
                if !(0..=1).contains(&format) {
                    return Err(bad_arg(F, i + 1, "format must be 0 or 1"));
                }
            }
            v => {
                return Err(bad_arg(
                    F,
                    i + 1,
                    format!("table or number expected, got {}", type_name(v)),
                ));
            }
        }
    }
    let Value::Function(f) = &args[pos] else {
        return Ok(()); // found by rposition just above
    };
    let id = registry::shared(lua)?.next_id();
    set_callback(lua, &format!("scan:{id}"), Some(f.clone()))?;
    registry::shared(lua)?
        .tx
        .try_send(LoopEvent::Board(BoardEvent::ScanDone { id, format }))
        .map_err(|_| lua_error("getap: too many events queued"))
}

/// A `getap` scan ended: calls its callback with the board's access point.
pub(crate) fn scan_done(lua: &Lua, id: u64, format: i64) -> mlua::Result<()> {
    let key = format!("scan:{id}");
    let Some(f) = callback(lua, &key)? else {
        return Ok(());
    };
    set_callback(lua, &key, None)?;
    let ssid = station(lua)?.borrow().ssid.clone();
    let bssid = "02:00:00:00:00:01";
    let t = lua.create_table()?;
    if format == 1 {
        t.raw_set(bssid, format!("{ssid},-52,3,6"))?;
    } else {
        t.raw_set(ssid, format!("3,-52,{bssid},6"))?;
    }
    f.call(t)
}

/// ESP32: `wifi.sta.on(event, fn)`.
fn sta_on(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    const NAMES: [&str; 6] = [
        "start",
        "stop",
        "connected",
        "disconnected",
        "authmode_changed",
        "got_ip",
    ];
    let name = crate::args::check_utf8("on", args, 1)?;
    if !NAMES.contains(&name.as_str()) {
        return Err(lua_error(format!("unknown event: {name}")));
    }
    let f = crate::args::opt_function("on", args, 2)?;
    set_callback(lua, &format!("on:{name}"), f)
}

fn eventmon_register(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    let ev = check_integer("register", args, 1)?;
    if !(0..=8).contains(&ev) {
        return Err(bad_arg("register", 1, "valid wifi events:0-8"));
    }
    let f = match args.get(1) {
        None | Some(Value::Nil) => None,
        Some(Value::Function(f)) => Some(f.clone()),
        Some(v) => {
            return Err(bad_arg(
                "register",
                2,
                format!("function expected, got {}", type_name(v)),
            ));
        }
    };
    set_callback(lua, &format!("em{ev}"), f)
}

/// The old `wifi.sta.eventMonReg(status, fn | "unreg")`.
fn event_mon_reg(lua: &Lua, args: &[Value]) -> mlua::Result<()> {
    let status = check_integer("eventMonReg", args, 1)?;
    if !(0..=5).contains(&status) {
        return Err(bad_arg("eventMonReg", 1, "valid wifi status:0-5"));
    }
    let f = match args.get(1) {
        Some(Value::Function(f)) => Some(f.clone()),
        Some(Value::String(s)) if s.as_bytes().as_ref() == b"unreg" => None,
        None | Some(Value::Nil) => None,
        Some(v) => {
            return Err(bad_arg(
                "eventMonReg",
                2,
                format!("function or \"unreg\" expected, got {}", type_name(v)),
            ));
        }
    };
    set_callback(lua, &format!("old{status}"), f)
}

fn install_sta(lua: &Lua, wifi: &Table) -> mlua::Result<()> {
    let sta = lua.create_table()?;
    sta.raw_set(
        "config",
        lua.create_function(|lua, a: Variadic<Value>| sta_config(lua, &a))?,
    )?;
    sta.raw_set(
        "connect",
        lua.create_function(|lua, a: Variadic<Value>| sta_connect(lua, &a))?,
    )?;
    sta.raw_set(
        "disconnect",
        lua.create_function(|lua, a: Variadic<Value>| sta_disconnect(lua, &a))?,
    )?;
    sta.raw_set(
        "autoconnect",
        lua.create_function(|lua, a: Variadic<Value>| {
            let on = check_integer("autoconnect", &a, 1)? != 0;
            station(lua)?.borrow_mut().autoconnect = on;
            Ok(())
        })?,
    )?;
    sta.raw_set("getip", lua.create_function(|lua, ()| sta_getip(lua))?)?;
    sta.raw_set(
        "getmac",
        lua.create_function(|lua, ()| Ok(station(lua)?.borrow().mac.clone()))?,
    )?;
    sta.raw_set(
        "status",
        lua.create_function(|lua, ()| Ok(station(lua)?.borrow().status))?,
    )?;
    sta.raw_set(
        "getrssi",
        lua.create_function(
            |lua, ()| Ok((station(lua)?.borrow().link == Link::Up).then_some(-52)),
        )?,
    )?;
    sta.raw_set(
        "sleeptype",
        lua.create_function(|lua, a: Variadic<Value>| {
            let t = check_integer("sleeptype", &a, 1)?;
            if !(0..=2).contains(&t) {
                return Err(bad_arg("sleeptype", 1, "wrong arg type"));
            }
            station(lua)?.borrow_mut().sleeptype = t;
            Ok(t)
        })?,
    )?;
    sta.raw_set(
        "getconfig",
        lua.create_function(|lua, a: Variadic<Value>| sta_getconfig(lua, &a))?,
    )?;
    sta.raw_set(
        "gethostname",
        lua.create_function(|lua, ()| Ok(station(lua)?.borrow().hostname.clone()))?,
    )?;
    sta.raw_set(
        "sethostname",
        lua.create_function(|lua, a: Variadic<Value>| {
            let name = crate::args::check_utf8("sethostname", &a, 1)?;
            let ok = !name.is_empty()
                && name.len() <= 32
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if ok {
                station(lua)?.borrow_mut().hostname = name;
            }
            Ok(ok)
        })?,
    )?;
    sta.raw_set(
        "on",
        lua.create_function(|lua, a: Variadic<Value>| sta_on(lua, &a))?,
    )?;
    sta.raw_set(
        "getap",
        lua.create_function(|lua, a: Variadic<Value>| sta_getap(lua, &a))?,
    )?;
    sta.raw_set(
        "eventMonReg",
        lua.create_function(|lua, a: Variadic<Value>| event_mon_reg(lua, &a))?,
    )?;
    sta.raw_set(
        "eventMonStart",
        lua.create_function(|lua, a: Variadic<Value>| {
            opt_integer("eventMonStart", &a, 1)?;
            station(lua)?.borrow_mut().monitor = true;
            Ok(())
        })?,
    )?;
    sta.raw_set(
        "eventMonStop",
        lua.create_function(|lua, a: Variadic<Value>| {
            let unreg = opt_integer("eventMonStop", &a, 1)?.is_some_and(|u| u != 0);
            station(lua)?.borrow_mut().monitor = false;
            if unreg {
                for status in 0..=5 {
                    set_callback(lua, &format!("old{status}"), None)?;
                }
            }
            Ok(())
        })?,
    )?;
    crate::plain_errors(lua, &sta)?;
    wifi.raw_set("sta", sta)
}

fn install_eventmon(lua: &Lua, wifi: &Table) -> mlua::Result<()> {
    let em = lua.create_table()?;
    for (name, v) in EVENTMON {
        em.raw_set(name, v)?;
    }
    let reason = lua.create_table()?;
    for (name, v) in REASONS {
        reason.raw_set(name, v)?;
    }
    em.raw_set("reason", reason)?;
    em.raw_set(
        "register",
        lua.create_function(|lua, a: Variadic<Value>| eventmon_register(lua, &a))?,
    )?;
    em.raw_set(
        "unregister",
        lua.create_function(|lua, a: Variadic<Value>| {
            let ev = check_integer("unregister", &a, 1)?;
            set_callback(lua, &format!("em{ev}"), None)
        })?,
    )?;
    crate::plain_errors(lua, &em)?;
    wifi.raw_set("eventmon", em)
}

/// Installs the `wifi` global, with the station joining the default board's access point.
pub(crate) fn register_module(lua: &Lua) -> mlua::Result<()> {
    lua.set_app_data::<Shared>(Rc::new(RefCell::new(fresh(&Board::default(), None))));
    lua.set_named_registry_value(CALLBACKS, lua.create_table()?)?;
    let wifi = lua.create_table()?;
    for (name, v) in [
        ("NULLMODE", NULLMODE),
        ("STATION", STATION),
        ("SOFTAP", SOFTAP),
        ("STATIONAP", STATIONAP),
        ("PHYMODE_B", 1),
        ("PHYMODE_G", 2),
        ("PHYMODE_N", 3),
        ("NONE_SLEEP", 0),
        ("LIGHT_SLEEP", 1),
        ("MODEM_SLEEP", 2),
        ("OPEN", 0),
        ("WEP", 1),
        ("WPA_PSK", 2),
        ("WPA2_PSK", 3),
        ("WPA_WPA2_PSK", 4),
        ("STA_IDLE", STA_IDLE),
        ("STA_CONNECTING", STA_CONNECTING),
        ("STA_WRONGPWD", 2),
        ("STA_APNOTFOUND", 3),
        ("STA_FAIL", 4),
        ("STA_GOTIP", STA_GOTIP),
    ] {
        wifi.raw_set(name, v)?;
    }
    wifi.raw_set(
        "setmode",
        lua.create_function(|lua, a: Variadic<Value>| setmode(lua, "setmode", &a))?,
    )?;
    wifi.raw_set(
        "mode",
        lua.create_function(|lua, a: Variadic<Value>| setmode(lua, "mode", &a))?,
    )?;
    wifi.raw_set(
        "getmode",
        lua.create_function(|lua, ()| Ok(station(lua)?.borrow().mode))?,
    )?;
    wifi.raw_set(
        "setphymode",
        lua.create_function(|lua, a: Variadic<Value>| {
            let m = check_integer("setphymode", &a, 1)?;
            if !(1..=3).contains(&m) {
                return Err(bad_arg("setphymode", 1, "Unsupported physical mode"));
            }
            station(lua)?.borrow_mut().phymode = m;
            Ok(m)
        })?,
    )?;
    wifi.raw_set(
        "getphymode",
        lua.create_function(|lua, ()| Ok(station(lua)?.borrow().phymode))?,
    )?;
    // ESP32: the station starts with `wifi.start()` (joining if configured).
    wifi.raw_set(
        "start",
        lua.create_function(|lua, ()| {
            fire_simple(lua, "start")?;
            let link = station(lua)?.borrow().link;
            if link == Link::Down {
                schedule_join(lua)?;
            }
            Ok(())
        })?,
    )?;
    wifi.raw_set(
        "stop",
        lua.create_function(|lua, ()| {
            leave(lua, ASSOC_LEAVE, Link::Down)?;
            fire_simple(lua, "stop")
        })?,
    )?;
    crate::plain_errors(lua, &wifi)?;
    install_sta(lua, &wifi)?;
    install_eventmon(lua, &wifi)?;
    lua.globals().raw_set("wifi", wifi)?;
    // The device's station joins its saved access point after boot.
    schedule_join(lua)
}
