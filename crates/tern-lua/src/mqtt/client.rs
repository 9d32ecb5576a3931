//! The Lua client object: one [`tern::Client`] per object (created at the first `connect` and
//! reused, so a `cleansession = 0` client keeps its in-flight QoS 1/2 state across `offline`,
//! `close()` and the next `connect`), its methods, and the dispatch of its events.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use mlua::{AnyUserData, Lua, UserData, UserDataMethods, UserDataRef, Value, Variadic};
use tern::{ConnectOptions, Event, QoS, ReconnectPolicy, TlsOptions, Will};

use super::args::{self, ClientArgs, ConnectArgs, PublishArgs, SubscribeArgs, UnsubscribeArgs};
use super::callbacks::{self, CONNECT_FAIL, CONNECT_OK, On};
use crate::args::lua_error;
use crate::registry::{self, Shared};

/// Deadline for one connection attempt (DNS, TCP, TLS, CONNECT and CONNACK together). The
/// ESP8266 gives CONNACK 5 s after CONNECT is sent; this covers the steps before it too.
/// `m:connecttimeout(seconds)` changes it.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the client is in its life; what `publish` and `connect` may do depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Never connected, or the last connection ended / failed. Not rooted.
    Idle,
    /// An attempt is under way. `first`: started by `connect()` (its failure goes to
    /// `fail_cb`); otherwise automatic reconnection (failures are silent).
    Connecting { first: bool },
    /// CONNACK accepted.
    Connected,
}

/// What a tern client was built with; a `connect()` asking for something else needs a new
/// one, since these are fixed per [`tern::Client`].
#[derive(Debug, Clone, PartialEq)]
struct Build {
    tls: TlsOptions,
    will: Option<Will>,
    autoreconnect: bool,
    connect_timeout: Duration,
}

#[derive(Debug)]
struct Conn {
    client: tern::Client,
    /// Tells this client's events apart from those of a replaced one.
    generation: u64,
    build: Build,
    /// The loop waiting on this client's events, under (object id, `generation`).
    shared: Rc<Shared>,
    id: u64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.forget(self.id, self.generation);
    }
}

/// Which `on()` event a completion also fires.
#[derive(Debug, Clone, Copy)]
enum Call {
    Publish,
    Subscribe,
    Unsubscribe,
}

#[derive(Debug)]
struct State {
    args: ClientArgs,
    will: Option<Will>,
    connect_timeout: Duration,
    conn: Option<Conn>,
    phase: Phase,
    /// `close()` was called and its `offline` has not arrived yet.
    closing: bool,
    /// Ticket number → kind and, once it arrived, whether the call succeeded. Completion
    /// callbacks fire in the order the calls were made (as on the ESP8266, whose queue is
    /// stop-and-wait): a completion waits here until every earlier call has completed.
    calls: BTreeMap<u64, (Call, Option<bool>)>,
    generations: u64,
    /// tern extension `m:manualack(true)`: QoS 1/2 messages are acknowledged by `m:ack()`.
    manual_ack: bool,
    /// With `manual_ack`: messages handed to `on("message")` and not acked yet, oldest
    /// first (of the current tern client).
    unacked: VecDeque<tern::Message>,
}

/// An `mqtt.Client` object.
#[derive(Debug)]
pub(crate) struct Client {
    id: u64,
    state: RefCell<State>,
}

fn client(ud: &AnyUserData) -> mlua::Result<UserDataRef<Client>> {
    ud.borrow::<Client>()
}

/// `mqtt.Client(...)`.
pub(crate) fn create(lua: &Lua, args: ClientArgs) -> mlua::Result<AnyUserData> {
    let id = registry::shared(lua)?.next_id();
    let ud = lua.create_userdata(Client {
        id,
        state: RefCell::new(State {
            args,
            will: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            conn: None,
            phase: Phase::Idle,
            closing: false,
            calls: BTreeMap::new(),
            generations: 0,
            manual_ack: false,
            unacked: VecDeque::new(),
        }),
    })?;
    callbacks::clear_calls(&ud, lua)?;
    registry::track(lua, id, &ud)?;
    crate::plain_method_errors(lua, &ud, "mqtt.client")?;
    Ok(ud)
}

fn options(st: &State, build: &Build, broker: &tern::Broker) -> ConnectOptions {
    let a = &st.args;
    let mut o = ConnectOptions::new(a.client_id.clone())
        .keep_alive(a.keep_alive)
        .clean_session(a.clean_session)
        .tls(build.tls.clone())
        .connect_timeout(build.connect_timeout);
    o.username = a.username.clone().or_else(|| broker.username.clone());
    o.password = a
        .password
        .clone()
        .or_else(|| broker.password.clone().map(Into::into));
    o.will = build.will.clone();
    o.manual_ack = st.manual_ack;
    if build.autoreconnect {
        o.reconnect = Some(ReconnectPolicy::default());
    }
    o
}

fn connect(lua: &Lua, ud: &AnyUserData, args: &[Value]) -> mlua::Result<Value> {
    let mut a = ConnectArgs::parse(args)?;
    let shared = registry::shared(lua)?;
    let firmware = shared.config.firmware;
    if a.secure_flag {
        // secure = 1/true: the global `tls.cert` settings, as on the ESP8266.
        a.tls = Some(crate::tls::options(lua)?);
    }
    // Under `--sim`, through the simulated access point (which Wi-Fi drops cut). After the
    // `secure` flag's TLS options, so the relay keeps the broker's name for verification.
    crate::wifi::route(lua, &mut a.broker, &mut a.tls)?;
    let c = client(ud)?;
    let replaced = {
        let mut st = c.state.borrow_mut();
        // A connection that is live (connecting or connected) or waiting to reconnect.
        let mut drop_live = false;
        match st.phase {
            Phase::Idle => {}
            // Waiting for automatic reconnection (e.g. `connect()` from `offline`): both
            // variants accept a new connect(), which takes over.
            Phase::Connecting { first: false } => drop_live = true,
            Phase::Connecting { first: true } | Phase::Connected => {
                if !firmware.connect_replaces_live_connection() {
                    return Err(lua_error(
                        "already connected (call close() and wait for 'offline' first)",
                    ));
                }
                // ESP32: the live connection is destroyed, without an event.
                drop_live = true;
            }
        }
        let build = Build {
            tls: a.tls.clone().unwrap_or_default(),
            will: st.will.clone(),
            autoreconnect: a.autoreconnect,
            connect_timeout: st.connect_timeout,
        };
        let replace = drop_live || st.conn.as_ref().is_none_or(|conn| conn.build != build);
        if replace {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(lua_error(
                    "connect: the tern runtime is not running (no tokio runtime)",
                ));
            }
            // Dropping the old tern client ends its connection (DISCONNECT if it was up)
            // and its events are ignored from now on (a new generation).
            st.conn = None;
            st.generations += 1;
            let generation = st.generations;
            let (tern_client, events) = tern::Client::new(options(&st, &build, &a.broker));
            shared.listen(c.id, generation, events);
            st.conn = Some(Conn {
                client: tern_client,
                generation,
                build,
                shared: Rc::clone(&shared),
                id: c.id,
            });
            st.calls.clear();
            // Messages of the replaced client cannot be acked through the new one.
            st.unacked.clear();
        }
        let Some(conn) = &st.conn else {
            unreachable!("a connection was just ensured");
        };
        if conn.client.start_connect(vec![a.broker]).is_err() {
            return Ok(Value::Boolean(false));
        }
        st.phase = Phase::Connecting { first: true };
        st.closing = false;
        replace
    };
    drop(c);
    if replaced {
        callbacks::clear_calls(ud, lua)?;
    }
    if firmware.connect_callbacks_are_handlers() {
        // ESP8266: the callbacks are the `on("connect")`/`on("connfail")` handlers; nil
        // keeps the handler there is.
        if let Some(f) = a.on_ok {
            callbacks::set_handler(ud, On::Connect, Some(f))?;
        }
        if let Some(f) = a.on_fail {
            callbacks::set_handler(ud, On::ConnFail, Some(f))?;
        }
        ud.set_named_user_value(CONNECT_OK, Value::Nil)?;
        ud.set_named_user_value(CONNECT_FAIL, Value::Nil)?;
    } else {
        // One-shot: each connect() call's callbacks replace the previous call's.
        ud.set_named_user_value(CONNECT_OK, a.on_ok)?;
        ud.set_named_user_value(CONNECT_FAIL, a.on_fail)?;
    }
    let id = client(ud)?.id;
    registry::root(lua, id, ud)?;
    Ok(if firmware.connect_returns_true() {
        Value::Boolean(true)
    } else {
        Value::Nil
    })
}

/// Records a ticket's kind and callback; `None` ticket → `false` for the caller.
fn track_call(
    lua: &Lua,
    ud: &AnyUserData,
    c: &Client,
    ticket: Option<tern::Ticket>,
    kind: Call,
    callback: Option<mlua::Function>,
) -> mlua::Result<bool> {
    let Some(ticket) = ticket else {
        if registry::shared(lua)?
            .config
            .firmware
            .commands_raise_when_not_connected()
        {
            return Err(lua_error("not connected"));
        }
        return Ok(false);
    };
    c.state.borrow_mut().calls.insert(ticket.0, (kind, None));
    callbacks::set_call(ud, ticket.0, callback)?;
    Ok(true)
}

/// The tern client, when commands are accepted: connecting or connected, not closing.
fn usable(st: &State) -> Option<&tern::Client> {
    if st.phase == Phase::Idle || st.closing {
        return None;
    }
    st.conn.as_ref().map(|c| &c.client)
}

fn publish(lua: &Lua, ud: &AnyUserData, args: &[Value]) -> mlua::Result<bool> {
    let a = PublishArgs::parse(args)?;
    let c = client(ud)?;
    let ticket = usable(&c.state.borrow())
        .and_then(|tc| tc.try_publish(&a.topic, a.payload, a.qos, a.retain).ok());
    track_call(lua, ud, &c, ticket, Call::Publish, a.callback)
}

fn subscribe(lua: &Lua, ud: &AnyUserData, args: &[Value]) -> mlua::Result<bool> {
    let a = SubscribeArgs::parse(args)?;
    let c = client(ud)?;
    let ticket = usable(&c.state.borrow()).and_then(|tc| tc.try_subscribe(a.filters).ok());
    track_call(lua, ud, &c, ticket, Call::Subscribe, a.callback)
}

fn unsubscribe(lua: &Lua, ud: &AnyUserData, args: &[Value]) -> mlua::Result<bool> {
    let a = UnsubscribeArgs::parse(args)?;
    let c = client(ud)?;
    let ticket = usable(&c.state.borrow()).and_then(|tc| tc.try_unsubscribe(a.filters).ok());
    track_call(lua, ud, &c, ticket, Call::Unsubscribe, a.callback)
}

fn close(lua: &Lua, ud: &AnyUserData) -> mlua::Result<bool> {
    let firmware = registry::shared(lua)?.config.firmware;
    let c = client(ud)?;
    let mut st = c.state.borrow_mut();
    if st.phase == (Phase::Connecting { first: true }) && firmware.close_ignored_while_connecting()
    {
        return Ok(false); // ESP8266: nothing to close before the connection is up
    }
    let closed = usable(&st).is_some_and(|tc| tc.try_close().is_ok());
    if closed {
        st.closing = true;
    }
    Ok(closed)
}

fn on(ud: &AnyUserData, args: &[Value]) -> mlua::Result<()> {
    const F: &str = "on";
    let name = crate::args::check_bytes(F, args, 1)?;
    let event = On::parse(&name).ok_or_else(|| {
        crate::args::bad_arg(
            F,
            1,
            format!(
                "unknown event '{}'; expected one of {}",
                String::from_utf8_lossy(&name),
                On::names()
            ),
        )
    })?;
    let f = crate::args::opt_function(F, args, 2)?;
    callbacks::set_handler(ud, event, f)
}

/// Size of the PUBLISH packet that carried a message: what ESP8266's `max_message_length`
/// is compared against (fixed header + variable header + payload).
fn publish_packet_len(topic: usize, payload: usize, qos: QoS) -> usize {
    let remaining = 2 + topic + if qos == QoS::AtMostOnce { 0 } else { 2 } + payload;
    let len_bytes = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + len_bytes + remaining
}

/// Runs the callbacks for one event of the client `ud`.
pub(crate) fn dispatch(
    lua: &Lua,
    ud: &AnyUserData,
    generation: u64,
    event: Event,
) -> mlua::Result<()> {
    let Ok(c) = client(ud) else {
        return Ok(()); // collected meanwhile
    };
    let id = c.id;
    let (phase, closing, max_len) = {
        let st = c.state.borrow();
        if st.conn.as_ref().map(|conn| conn.generation) != Some(generation) {
            return Ok(()); // from a tern client since replaced
        }
        (st.phase, st.closing, st.args.max_message_length)
    };
    match event {
        Event::Connected { .. } => {
            c.state.borrow_mut().phase = Phase::Connected;
            drop(c);
            ud.set_named_user_value(CONNECT_FAIL, Value::Nil)?;
            if let Some(f) = callbacks::take(ud, CONNECT_OK)? {
                f.call::<()>(ud.clone())?;
            }
            callbacks::emit(ud, On::Connect, ud.clone())
        }
        Event::ConnectFailed { error, will_retry } => {
            let first = phase == (Phase::Connecting { first: true });
            if will_retry && !first && !closing {
                return Ok(()); // automatic reconnection keeps trying, silently (the seed)
            }
            {
                let mut st = c.state.borrow_mut();
                st.phase = Phase::Idle;
                st.closing = false;
                if will_retry {
                    // The seed: a failed first connection is not retried. Dropping the tern
                    // client stops its driver.
                    st.conn = None;
                    st.calls.clear();
                }
            }
            drop(c);
            registry::unroot(lua, id)?;
            let on_fail = callbacks::take(ud, CONNECT_FAIL)?;
            ud.set_named_user_value(CONNECT_OK, Value::Nil)?;
            if closing {
                return Ok(()); // close() while connecting: the script asked for it
            }
            let (code, message) = (error.code(), crate::wifi::describe(lua, error.to_string()));
            if let (true, Some(f)) = (first, on_fail) {
                f.call::<()>((ud.clone(), code, message.clone()))?;
            }
            callbacks::emit(ud, On::ConnFail, (ud.clone(), code, message))
        }
        Event::Disconnected { will_reconnect, .. } => {
            {
                let mut st = c.state.borrow_mut();
                st.closing = false;
                st.phase = if will_reconnect {
                    Phase::Connecting { first: false }
                } else {
                    Phase::Idle
                };
            }
            drop(c);
            if !will_reconnect {
                registry::unroot(lua, id)?;
            }
            callbacks::emit(ud, On::Offline, ud.clone())
        }
        Event::Message(msg) => {
            if msg.needs_ack() {
                c.state.borrow_mut().unacked.push_back(msg.clone());
            }
            drop(c);
            let topic = msg.topic.as_str();
            let size = publish_packet_len(topic.len(), msg.payload.len(), msg.qos);
            match max_len {
                Some(max) if size > max => {
                    let keep = max.saturating_sub(size - msg.payload.len());
                    let data = lua.create_string(&msg.payload[..keep])?;
                    callbacks::emit(ud, On::Overflow, (ud.clone(), topic, data))
                }
                // The device passes only (client, topic) for an empty payload.
                _ if msg.payload.is_empty() => {
                    callbacks::emit(ud, On::Message, (ud.clone(), topic))
                }
                _ => {
                    let data = lua.create_string(&msg.payload)?;
                    callbacks::emit(ud, On::Message, (ud.clone(), topic, data))
                }
            }
        }
        Event::Completed { ticket, result } => {
            if let Some(entry) = c.state.borrow_mut().calls.get_mut(&ticket.0) {
                entry.1 = Some(result.is_ok());
            }
            drop(c);
            // Fire every completion whose predecessors have all completed, in call order.
            // Bounded: each iteration removes one entry.
            loop {
                let next = {
                    let c = client(ud)?;
                    let mut st = c.state.borrow_mut();
                    match st.calls.first_key_value() {
                        Some((&n, &(kind, Some(ok)))) => {
                            st.calls.remove(&n);
                            Some((n, kind, ok))
                        }
                        _ => None,
                    }
                };
                let Some((n, kind, ok)) = next else {
                    return Ok(());
                };
                let f = callbacks::take_call(ud, n)?;
                // Failed commands (e.g. dropped with the connection) call nothing: the
                // device has no error callback for them.
                if !ok {
                    continue;
                }
                if let Some(f) = f {
                    f.call::<()>(ud.clone())?;
                }
                let event = match kind {
                    Call::Publish => On::PubAck,
                    Call::Subscribe => On::SubAck,
                    Call::Unsubscribe => On::UnsubAck,
                };
                callbacks::emit(ud, event, ud.clone())?;
            }
        }
        _ => Ok(()),
    }
}

impl UserData for Client {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_function(
            "connect",
            |lua, (ud, args): (AnyUserData, Variadic<Value>)| connect(lua, &ud, &args),
        );
        methods.add_function(
            "publish",
            |lua, (ud, args): (AnyUserData, Variadic<Value>)| publish(lua, &ud, &args),
        );
        methods.add_function(
            "subscribe",
            |lua, (ud, args): (AnyUserData, Variadic<Value>)| subscribe(lua, &ud, &args),
        );
        methods.add_function(
            "unsubscribe",
            |lua, (ud, args): (AnyUserData, Variadic<Value>)| unsubscribe(lua, &ud, &args),
        );
        methods.add_function("close", |lua, ud: AnyUserData| close(lua, &ud));
        methods.add_function("on", |_, (ud, args): (AnyUserData, Variadic<Value>)| {
            on(&ud, &args)
        });
        methods.add_function("lwt", |_, (ud, args): (AnyUserData, Variadic<Value>)| {
            let will = args::parse_lwt(&args)?;
            client(&ud)?.state.borrow_mut().will = Some(will);
            Ok(())
        });
        // tern extension: the connect deadline in seconds (the device has none to set).
        methods.add_function(
            "connecttimeout",
            |_, (ud, args): (AnyUserData, Variadic<Value>)| {
                let secs = match args.first() {
                    Some(Value::Integer(i)) => *i as f64,
                    Some(Value::Number(n)) => *n,
                    other => {
                        let got = other.map_or("no value", crate::args::type_name);
                        return Err(crate::args::bad_arg(
                            "connecttimeout",
                            1,
                            format!("number expected, got {got}"),
                        ));
                    }
                };
                let timeout = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        crate::args::bad_arg("connecttimeout", 1, "seconds must be positive")
                    })?;
                client(&ud)?.state.borrow_mut().connect_timeout = timeout;
                Ok(())
            },
        );
        // tern extension: manual acknowledgement. `m:manualack(true)` before `connect()`;
        // then a QoS 1/2 message is acknowledged to the broker only by `m:ack()` (e.g. once
        // the script has stored it), and one never acked is delivered again by a broker that
        // keeps the session (cleansession 0).
        methods.add_function(
            "manualack",
            |_, (ud, args): (AnyUserData, Variadic<Value>)| {
                let on = match args.first() {
                    Some(Value::Boolean(b)) => *b,
                    Some(Value::Integer(i)) => *i != 0,
                    other => {
                        let got = other.map_or("no value", crate::args::type_name);
                        return Err(crate::args::bad_arg(
                            "manualack",
                            1,
                            format!("boolean expected, got {got}"),
                        ));
                    }
                };
                client(&ud)?.state.borrow_mut().manual_ack = on;
                Ok(())
            },
        );
        // tern extension: acknowledges the oldest message handed to `on("message")` and not
        // acknowledged yet (acknowledgements leave in arrival order anyway). Returns false
        // when there is none.
        methods.add_function("ack", |_, ud: AnyUserData| {
            let c = client(&ud)?;
            let mut st = c.state.borrow_mut();
            let Some(msg) = st.unacked.pop_front() else {
                return Ok(false);
            };
            // Offline too: a QoS 2 ack answers the broker's re-send on the next connection.
            match st.conn.as_ref() {
                Some(conn) => conn
                    .client
                    .try_ack(&msg)
                    .map(|()| true)
                    .map_err(|e| lua_error(format!("ack: {e}"))),
                None => Ok(false),
            }
        });
        methods.add_meta_function("__tostring", |_, ud: AnyUserData| {
            Ok(format!("mqtt.client: {:p}", ud.to_pointer()))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_length_counts_headers() {
        // "/t" + "hi" at QoS 0: 1 + 1 + (2 + 2 + 2) = 8.
        assert_eq!(publish_packet_len(2, 2, QoS::AtMostOnce), 8);
        assert_eq!(publish_packet_len(2, 2, QoS::AtLeastOnce), 10);
        // remaining 128 needs two length bytes.
        assert_eq!(publish_packet_len(2, 124, QoS::AtMostOnce), 131);
    }
}
