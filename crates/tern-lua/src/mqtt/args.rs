//! NodeMCU argument rules: each `mqtt` call's Lua arguments turned into a typed struct once,
//! accepting what either device variant accepts (0/1 or booleans, optional-argument shuffles).
//!
//! Positions in error messages count the arguments after the client, as Lua's own
//! `luaL_argerror` does for method calls: in `m:publish("t", "x", 3, 0)` the QoS is `#3`.

use std::time::Duration;

use bytes::Bytes;
use mlua::{Function, LuaString, Table, Value};
use tern::tls::Roots;
use tern::{Broker, QoS, Scheme, TlsOptions, Will};
use tern_proto::{TopicFilter, TopicName};

use crate::args::{
    arg, bad_arg, check_bytes, check_utf8, expected, opt_bytes, opt_flag, opt_function,
    opt_integer, type_name, utf8,
};
use crate::board::Board;
use crate::firmware::Firmware;

/// The port `connect` uses when none is given, TLS or not (both device variants).
pub(crate) const DEFAULT_PORT: u16 = 1883;

/// A QoS level 0, 1 or 2; `default` for nil (an error when there is none).
pub(crate) fn qos(
    func: &str,
    args: &[Value],
    pos: usize,
    default: Option<QoS>,
) -> mlua::Result<QoS> {
    match opt_integer(func, args, pos)? {
        None => default.ok_or_else(|| expected(func, pos, "number", arg(args, pos))),
        Some(n) => qos_value(func, pos, n),
    }
}

fn qos_value(func: &str, pos: usize, n: i64) -> mlua::Result<QoS> {
    u8::try_from(n)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| bad_arg(func, pos, "qos must be 0, 1 or 2"))
}

fn topic_name(func: &str, pos: usize, topic: String) -> mlua::Result<String> {
    TopicName::new(&topic)
        .map_err(|e| bad_arg(func, pos, format!("invalid topic {topic:?}: {e}")))?;
    Ok(topic)
}

fn topic_filter(func: &str, pos: usize, topic: String) -> mlua::Result<String> {
    TopicFilter::new(&topic)
        .map_err(|e| bad_arg(func, pos, format!("invalid topic filter {topic:?}: {e}")))?;
    Ok(topic)
}

/// `mqtt.Client([clientid[, keepalive[, username, password[, cleansession[, max_message_length]]]]])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientArgs {
    /// Empty when not given: tern then generates one (with clean session).
    pub(crate) client_id: String,
    /// 0 or absent means the firmware's default ([`Firmware::default_keepalive`]).
    pub(crate) keep_alive: Duration,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    /// Default true, as the seed documents.
    pub(crate) clean_session: bool,
    /// ESP8266: incoming packets larger than this go to `overflow` instead of `message`.
    pub(crate) max_message_length: Option<usize>,
}

impl ClientArgs {
    /// The defaults that depend on the firmware variant (client id, keepalive,
    /// `max_message_length`) come from `firmware` and `board`.
    pub(crate) fn parse(args: &[Value], firmware: Firmware, board: &Board) -> mlua::Result<Self> {
        const F: &str = "Client";
        let client_id = match opt_bytes(F, args, 1)? {
            Some(b) => utf8(F, 1, b)?,
            None if firmware.chip_client_id() => board.default_client_id(),
            None => String::new(),
        };
        let keep_alive = match opt_integer(F, args, 2)? {
            None | Some(0) => firmware.default_keepalive(),
            Some(n @ 1..=65535) => Duration::from_secs(n.unsigned_abs()),
            Some(_) => return Err(bad_arg(F, 2, "keepalive must be 0..65535 seconds")),
        };
        let username = match opt_bytes(F, args, 3)? {
            Some(b) => Some(utf8(F, 3, b)?),
            None => None,
        };
        let password = opt_bytes(F, args, 4)?.map(Bytes::from);
        let clean_session = opt_flag(F, args, 5, true)?;
        let max_message_length = match opt_integer(F, args, 6)? {
            None => firmware.default_max_message_length(),
            Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Some(_) => return Err(bad_arg(F, 6, "max_message_length must be positive")),
        };
        Ok(Self {
            client_id,
            keep_alive,
            username,
            password,
            clean_session,
            max_message_length,
        })
    }
}

/// `m:lwt(topic, message[, qos[, retain]])`.
pub(crate) fn parse_lwt(args: &[Value]) -> mlua::Result<Will> {
    const F: &str = "lwt";
    let topic = topic_name(F, 1, check_utf8(F, args, 1)?)?;
    let payload = Bytes::from(check_bytes(F, args, 2)?);
    let qos = qos(F, args, 3, Some(QoS::AtMostOnce))?;
    let retain = opt_flag(F, args, 4, false)?;
    Ok(Will::new(topic, payload, qos, retain))
}

/// The `secure` argument of `connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Secure {
    /// 0, false or nil.
    Off,
    /// 1, true or a table.
    On(TlsOptions),
}

/// `m:connect(host[, port[, secure[, autoreconnect]]][, conn_cb[, fail_cb]])`.
#[derive(Debug, Clone)]
pub(crate) struct ConnectArgs {
    pub(crate) broker: Broker,
    /// TLS settings when the connection is secure.
    pub(crate) tls: Option<TlsOptions>,
    /// `secure` was 1/true (not a table): the TLS settings are `tls.cert`'s.
    pub(crate) secure_flag: bool,
    pub(crate) autoreconnect: bool,
    pub(crate) on_ok: Option<Function>,
    pub(crate) on_fail: Option<Function>,
}

impl ConnectArgs {
    /// The optional positional arguments (port, secure, autoreconnect) are taken in order
    /// until the first function, so `connect(host, cb, failcb)`, `connect(host, port, cb)`
    /// and the legacy `connect(host, port, secure, autoreconnect, cb, failcb)` all work.
    pub(crate) fn parse(args: &[Value]) -> mlua::Result<Self> {
        const F: &str = "connect";
        let host = check_utf8(F, args, 1)?;
        if host.is_empty() {
            return Err(bad_arg(F, 1, "host is empty"));
        }
        let mut pos = 2;
        let mut port = None;
        let mut secure = Secure::Off;
        let mut autoreconnect = false;
        for slot in 0..3 {
            match arg(args, pos) {
                Value::Function(_) => break,
                _ if pos > args.len() => break,
                _ => {}
            }
            match slot {
                0 => port = parse_port(args, pos)?,
                1 => secure = parse_secure(args, pos)?,
                _ => autoreconnect = opt_flag(F, args, pos, false)?,
            }
            pos += 1;
        }
        let on_ok = opt_function(F, args, pos)?;
        let on_fail = opt_function(F, args, pos + 1)?;

        let secure_flag =
            !matches!(arg(args, 3), Value::Table(_)) && matches!(secure, Secure::On(_));
        let mut tls = match secure {
            Secure::On(tls) => Some(tls),
            Secure::Off => None,
        };
        let broker = if Broker::is_uri(&host) {
            let mut broker = Broker::parse(&host)
                .map_err(|e| bad_arg(F, 1, format!("invalid broker address: {e}")))?;
            if let Some(port) = port {
                broker.port = port;
            }
            if tls.is_some() {
                broker.scheme = match broker.scheme {
                    Scheme::Mqtt => Scheme::Mqtts,
                    Scheme::Ws => Scheme::Wss,
                    other => other,
                };
            } else if broker.scheme.is_tls() {
                tls = Some(TlsOptions::default());
            }
            broker
        } else {
            let scheme = if tls.is_some() {
                Scheme::Mqtts
            } else {
                Scheme::Mqtt
            };
            Broker::new(scheme, host, port.unwrap_or(DEFAULT_PORT))
        };
        Ok(Self {
            broker,
            tls,
            secure_flag,
            autoreconnect,
            on_ok,
            on_fail,
        })
    }
}

fn parse_port(args: &[Value], pos: usize) -> mlua::Result<Option<u16>> {
    match opt_integer("connect", args, pos)? {
        None => Ok(None),
        Some(n) => u16::try_from(n)
            .ok()
            .filter(|&p| p != 0)
            .map(Some)
            .ok_or_else(|| bad_arg("connect", pos, "port must be 1..65535")),
    }
}

fn parse_secure(args: &[Value], pos: usize) -> mlua::Result<Secure> {
    const F: &str = "connect";
    match arg(args, pos) {
        Value::Table(t) => Ok(Secure::On(tls_table(t, pos)?)),
        Value::Nil | Value::Boolean(_) | Value::Integer(_) | Value::Number(_) => {
            Ok(if opt_flag(F, args, pos, false)? {
                Secure::On(TlsOptions::default())
            } else {
                Secure::Off
            })
        }
        v => Err(expected(F, pos, "0/1, boolean or table", v)),
    }
}

/// `{ca_cert=PEM, client_cert=PEM, client_key=PEM}` (plus tern's `danger_insecure=true`).
fn tls_table(t: &Table, pos: usize) -> mlua::Result<TlsOptions> {
    let field = |name: &str| -> mlua::Result<Option<String>> {
        match t.raw_get::<Value>(name)? {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(
                s.to_str()
                    .map_err(|_| bad_arg("connect", pos, format!("{name} is not PEM text")))?
                    .to_owned(),
            )),
            v => Err(bad_arg(
                "connect",
                pos,
                format!("{name} must be a PEM string, got {}", type_name(&v)),
            )),
        }
    };
    let mut tls = TlsOptions::default();
    if let Some(ca) = field("ca_cert")? {
        tls.roots = Roots::Pem(ca);
    }
    tls.client_cert = field("client_cert")?;
    tls.client_key = field("client_key")?;
    tls.danger_insecure = matches!(t.raw_get::<Value>("danger_insecure")?, Value::Boolean(true));
    Ok(tls)
}

/// `m:publish(topic, payload, qos, retain[, fn])`.
#[derive(Debug, Clone)]
pub(crate) struct PublishArgs {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) callback: Option<Function>,
}

impl PublishArgs {
    /// QoS and retain default to 0 when nil (the device requires them; nil is not a wrong
    /// type, so tern is lenient).
    pub(crate) fn parse(args: &[Value]) -> mlua::Result<Self> {
        const F: &str = "publish";
        let topic = topic_name(F, 1, check_utf8(F, args, 1)?)?;
        let payload = Bytes::from(check_bytes(F, args, 2)?);
        let qos = qos(F, args, 3, Some(QoS::AtMostOnce))?;
        let retain = opt_flag(F, args, 4, false)?;
        let callback = opt_function(F, args, 5)?;
        Ok(Self {
            topic,
            payload,
            qos,
            retain,
            callback,
        })
    }
}

/// `m:subscribe(topic, qos[, fn])` or `m:subscribe({topic=qos, ...}[, fn])`.
#[derive(Debug, Clone)]
pub(crate) struct SubscribeArgs {
    pub(crate) filters: Vec<(String, QoS)>,
    pub(crate) callback: Option<Function>,
}

impl SubscribeArgs {
    pub(crate) fn parse(args: &[Value]) -> mlua::Result<Self> {
        const F: &str = "subscribe";
        if let Value::Table(t) = arg(args, 1) {
            let mut filters = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let Value::String(k) = k else {
                    return Err(bad_arg(F, 1, "table keys must be topic strings"));
                };
                let topic = topic_filter(F, 1, lua_utf8(F, 1, &k)?)?;
                let q = match v {
                    Value::Integer(n) => u8::try_from(n).ok().and_then(QoS::from_u8),
                    _ => None,
                }
                .ok_or_else(|| bad_arg(F, 1, format!("qos for {topic:?} must be 0, 1 or 2")))?;
                filters.push((topic, q));
            }
            if filters.is_empty() {
                return Err(bad_arg(F, 1, "table of topics is empty"));
            }
            // The table form's callback is the 2nd argument; tolerate the 3rd as well, for
            // scripts that pass a dummy qos.
            let callback = match arg(args, 2) {
                Value::Nil | Value::Integer(_) | Value::Number(_) => opt_function(F, args, 3)?,
                _ => opt_function(F, args, 2)?,
            };
            return Ok(Self { filters, callback });
        }
        let topic = topic_filter(F, 1, check_utf8(F, args, 1)?)?;
        // The seed: "QoS subscription level, default 0".
        let (q, callback) = match arg(args, 2) {
            Value::Function(f) => (QoS::AtMostOnce, Some(f.clone())),
            _ => (
                qos(F, args, 2, Some(QoS::AtMostOnce))?,
                opt_function(F, args, 3)?,
            ),
        };
        Ok(Self {
            filters: vec![(topic, q)],
            callback,
        })
    }
}

/// `m:unsubscribe(topic[, fn])` or `m:unsubscribe({topic=anything, ...}[, fn])` (an array of
/// topic strings works too).
#[derive(Debug, Clone)]
pub(crate) struct UnsubscribeArgs {
    pub(crate) filters: Vec<String>,
    pub(crate) callback: Option<Function>,
}

impl UnsubscribeArgs {
    pub(crate) fn parse(args: &[Value]) -> mlua::Result<Self> {
        const F: &str = "unsubscribe";
        let filters = if let Value::Table(t) = arg(args, 1) {
            let mut filters = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let topic = match pair? {
                    (Value::String(k), _) => k,
                    (Value::Integer(_), Value::String(v)) => v,
                    _ => return Err(bad_arg(F, 1, "table must hold topic strings")),
                };
                filters.push(topic_filter(F, 1, lua_utf8(F, 1, &topic)?)?);
            }
            if filters.is_empty() {
                return Err(bad_arg(F, 1, "table of topics is empty"));
            }
            filters
        } else {
            vec![topic_filter(F, 1, check_utf8(F, args, 1)?)?]
        };
        let callback = opt_function(F, args, 2)?;
        Ok(Self { filters, callback })
    }
}

fn lua_utf8(func: &str, pos: usize, s: &LuaString) -> mlua::Result<String> {
    utf8(func, pos, s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use mlua::{Lua, MultiValue};

    use super::*;

    /// Evaluates a Lua expression list into argument values.
    fn args(lua: &Lua, exprs: &str) -> Vec<Value> {
        lua.load(format!("return {exprs}"))
            .eval::<MultiValue>()
            .unwrap()
            .into_vec()
    }

    fn err_text(e: mlua::Error) -> String {
        e.to_string()
    }

    #[test]
    fn client_defaults_follow_the_seed() {
        let lua = Lua::new();
        let c = ClientArgs::parse(
            &args(&lua, r#""id", 120"#),
            Firmware::Esp32,
            &Board::default(),
        )
        .unwrap();
        assert_eq!(c.client_id, "id");
        assert_eq!(c.keep_alive, Duration::from_secs(120));
        assert!(c.clean_session);
        assert_eq!((c.username, c.password), (None, None));
        assert_eq!(c.max_message_length, None);
    }

    #[test]
    fn client_defaults_follow_the_firmware() {
        let lua = Lua::new();
        let board = Board::default();
        let c = ClientArgs::parse(&args(&lua, r#""id", 0"#), Firmware::Esp8266, &board).unwrap();
        assert_eq!(c.keep_alive, Duration::from_secs(60));
        let c = ClientArgs::parse(&[], Firmware::Esp32, &board).unwrap();
        assert_eq!(c.keep_alive, Duration::from_secs(120));
        assert_eq!(c.client_id, "");
        assert_eq!(c.max_message_length, None);
        let c = ClientArgs::parse(&[], Firmware::Esp8266, &board).unwrap();
        assert_eq!(c.client_id, board.default_client_id());
        assert_eq!(c.max_message_length, Some(1024));
    }

    #[test]
    fn client_cleansession_accepts_numbers_and_booleans() {
        let lua = Lua::new();
        for (expr, want) in [
            ("0", false),
            ("1", true),
            ("false", false),
            ("true", true),
            ("nil", true),
        ] {
            let c = ClientArgs::parse(
                &args(&lua, &format!(r#""id", 10, "u", "p", {expr}"#)),
                Firmware::Esp32,
                &Board::default(),
            )
            .unwrap();
            assert_eq!(c.clean_session, want, "cleansession = {expr}");
            assert_eq!(c.username.as_deref(), Some("u"));
            assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
        }
    }

    #[test]
    fn client_max_message_length_is_the_sixth_argument() {
        let lua = Lua::new();
        let c = ClientArgs::parse(
            &args(&lua, r#""id", 10, nil, nil, 1, 2048"#),
            Firmware::Esp32,
            &Board::default(),
        )
        .unwrap();
        assert_eq!(c.max_message_length, Some(2048));
        let e = ClientArgs::parse(
            &args(&lua, r#""id", 10, nil, nil, 1, 0"#),
            Firmware::Esp32,
            &Board::default(),
        )
        .unwrap_err();
        assert!(err_text(e).contains("bad argument #6 to 'Client'"));
    }

    #[test]
    fn client_rejects_bad_keepalive() {
        let lua = Lua::new();
        let e = ClientArgs::parse(
            &args(&lua, r#""id", -1"#),
            Firmware::Esp32,
            &Board::default(),
        )
        .unwrap_err();
        assert!(err_text(e).contains("bad argument #2 to 'Client' (keepalive must be 0..65535"));
        let e = ClientArgs::parse(
            &args(&lua, r#""id", {}"#),
            Firmware::Esp32,
            &Board::default(),
        )
        .unwrap_err();
        assert!(err_text(e).contains("bad argument #2 to 'Client' (number expected, got table)"));
    }

    #[test]
    fn connect_takes_port_secure_and_callbacks() {
        let lua = Lua::new();
        let c = ConnectArgs::parse(&args(
            &lua,
            r#""h", 1884, 0, function() end, function() end"#,
        ))
        .unwrap();
        assert_eq!(c.broker, Broker::tcp("h", 1884));
        assert!(c.tls.is_none() && !c.autoreconnect);
        assert!(c.on_ok.is_some() && c.on_fail.is_some());
    }

    #[test]
    fn connect_short_form_takes_callbacks_after_host() {
        let lua = Lua::new();
        let c =
            ConnectArgs::parse(&args(&lua, r#""server", function() end, function() end"#)).unwrap();
        assert_eq!(c.broker, Broker::tcp("server", DEFAULT_PORT));
        assert!(c.on_ok.is_some() && c.on_fail.is_some());
        let c = ConnectArgs::parse(&args(&lua, r#""server", 1999, function() end"#)).unwrap();
        assert_eq!(c.broker.port, 1999);
        assert!(c.on_ok.is_some() && c.on_fail.is_none());
    }

    #[test]
    fn connect_legacy_autoreconnect_form_keeps_both_callbacks() {
        // ESP8266 registers okcb as the failure handler here (variants doc 1.3.8); tern does not.
        let lua = Lua::new();
        let vals = args(
            &lua,
            r#""h", 1883, 0, 1, function() return "ok" end, function() return "fail" end"#,
        );
        let c = ConnectArgs::parse(&vals).unwrap();
        assert!(c.autoreconnect);
        assert_eq!(c.on_ok.unwrap().call::<String>(()).unwrap(), "ok");
        assert_eq!(c.on_fail.unwrap().call::<String>(()).unwrap(), "fail");
    }

    #[test]
    fn connect_secure_accepts_number_boolean_and_table() {
        let lua = Lua::new();
        for expr in ["1", "true"] {
            let c = ConnectArgs::parse(&args(&lua, &format!(r#""h", 8883, {expr}"#))).unwrap();
            assert_eq!(c.broker.scheme, Scheme::Mqtts);
            assert_eq!(c.tls, Some(TlsOptions::default()), "secure = {expr}");
        }
        for expr in ["0", "false", "nil"] {
            let c = ConnectArgs::parse(&args(
                &lua,
                &format!(r#""h", 1883, {expr}, function() end"#),
            ))
            .unwrap();
            assert_eq!(c.broker.scheme, Scheme::Mqtt);
            assert!(c.tls.is_none() && c.on_ok.is_some(), "secure = {expr}");
        }
        let c = ConnectArgs::parse(&args(
            &lua,
            r#""h", 8883, {ca_cert="CA", client_cert="C", client_key="K"}"#,
        ))
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.roots, Roots::Pem("CA".into()));
        assert_eq!(
            (tls.client_cert.as_deref(), tls.client_key.as_deref()),
            (Some("C"), Some("K"))
        );
        // secure without a port keeps the device's default port.
        let c = ConnectArgs::parse(&args(&lua, r#""h", nil, 1"#)).unwrap();
        assert_eq!(
            (c.broker.scheme, c.broker.port),
            (Scheme::Mqtts, DEFAULT_PORT)
        );
    }

    #[test]
    fn connect_accepts_uris() {
        let lua = Lua::new();
        let c = ConnectArgs::parse(&args(&lua, r#""mqtts://broker:9999""#)).unwrap();
        assert_eq!((c.broker.scheme, c.broker.port), (Scheme::Mqtts, 9999));
        assert!(c.tls.is_some());
        let c = ConnectArgs::parse(&args(&lua, r#""ws://broker/mqtt", nil, 1"#)).unwrap();
        assert_eq!(c.broker.scheme, Scheme::Wss);
        let c = ConnectArgs::parse(&args(&lua, r#""mqtt://broker", 1999"#)).unwrap();
        assert_eq!((c.broker.scheme, c.broker.port), (Scheme::Mqtt, 1999));
        let e = ConnectArgs::parse(&args(&lua, r#""http://broker""#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #1 to 'connect' (invalid broker address"));
    }

    #[test]
    fn connect_rejects_wrong_types() {
        let lua = Lua::new();
        let e = ConnectArgs::parse(&args(&lua, "nil")).unwrap_err();
        assert!(
            err_text(e).contains("bad argument #1 to 'connect' (string expected, got no value)")
        );
        let e = ConnectArgs::parse(&args(&lua, r#""h", 70000"#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #2 to 'connect' (port must be 1..65535)"));
        let e = ConnectArgs::parse(&args(&lua, r#""h", 1883, "x""#)).unwrap_err();
        assert!(
            err_text(e).contains("bad argument #3 to 'connect' (0/1, boolean or table expected")
        );
        let e = ConnectArgs::parse(&args(&lua, r#""h", 1883, 0, 0, 5"#)).unwrap_err();
        assert!(
            err_text(e).contains("bad argument #5 to 'connect' (function expected, got number)")
        );
        let e = ConnectArgs::parse(&args(&lua, r#""h", 1883, {ca_cert=1}"#)).unwrap_err();
        assert!(err_text(e).contains("ca_cert must be a PEM string"));
    }

    #[test]
    fn publish_checks_qos_and_topic() {
        let lua = Lua::new();
        let p = PublishArgs::parse(&args(&lua, r#""/t", "hello", 1, 1, function() end"#)).unwrap();
        assert_eq!((p.topic.as_str(), &p.payload[..]), ("/t", &b"hello"[..]));
        assert_eq!((p.qos, p.retain), (QoS::AtLeastOnce, true));
        assert!(p.callback.is_some());
        let p = PublishArgs::parse(&args(&lua, r#""/t", 42, 2, false"#)).unwrap();
        assert_eq!(
            (&p.payload[..], p.qos, p.retain),
            (&b"42"[..], QoS::ExactlyOnce, false)
        );
        let e = PublishArgs::parse(&args(&lua, r#""/t", "x", 3, 0"#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #3 to 'publish' (qos must be 0, 1 or 2)"));
        let e = PublishArgs::parse(&args(&lua, r#""/t/#", "x", 0, 0"#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #1 to 'publish' (invalid topic \"/t/#\""));
        let e = PublishArgs::parse(&args(&lua, r#""", "x", 0, 0"#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #1 to 'publish'"));
        let e = PublishArgs::parse(&args(&lua, r#""/t", nil, 0, 0"#)).unwrap_err();
        assert!(
            err_text(e).contains("bad argument #2 to 'publish' (string expected, got no value)")
        );
        let e = PublishArgs::parse(&args(&lua, r#""/t", "x", 0, 0, 7"#)).unwrap_err();
        assert!(
            err_text(e).contains("bad argument #5 to 'publish' (function expected, got number)")
        );
        let e = PublishArgs::parse(&args(&lua, r#""/t", "x", 0.5, 0"#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #3 to 'publish' (number has no integer"));
    }

    #[test]
    fn publish_keeps_binary_payloads_exactly() {
        let lua = Lua::new();
        let all: Vec<u8> = (0..=255).collect();
        let s = lua.create_string(&all).unwrap();
        let vals = vec![
            Value::String(lua.create_string("/b").unwrap()),
            Value::String(s),
        ];
        let p = PublishArgs::parse(&vals).unwrap();
        assert_eq!(&p.payload[..], &all[..]);
    }

    #[test]
    fn subscribe_single_and_table_forms() {
        let lua = Lua::new();
        let s = SubscribeArgs::parse(&args(&lua, r#""/a/+", 1, function() end"#)).unwrap();
        assert_eq!(s.filters, vec![("/a/+".to_owned(), QoS::AtLeastOnce)]);
        assert!(s.callback.is_some());
        let s = SubscribeArgs::parse(&args(&lua, r#""/a""#)).unwrap();
        assert_eq!(s.filters, vec![("/a".to_owned(), QoS::AtMostOnce)]);
        let s = SubscribeArgs::parse(&args(&lua, r#""/a", function() end"#)).unwrap();
        assert!(s.callback.is_some());
        let mut s =
            SubscribeArgs::parse(&args(&lua, r#"{["/x"]=0, ["/y"]=2}, function() end"#)).unwrap();
        s.filters.sort();
        assert_eq!(
            s.filters,
            vec![
                ("/x".to_owned(), QoS::AtMostOnce),
                ("/y".to_owned(), QoS::ExactlyOnce)
            ]
        );
        assert!(s.callback.is_some());
        let e = SubscribeArgs::parse(&args(&lua, r#"{["/x"]=5}"#)).unwrap_err();
        assert!(err_text(e).contains("qos for \"/x\" must be 0, 1 or 2"));
        let e = SubscribeArgs::parse(&args(&lua, "{}")).unwrap_err();
        assert!(err_text(e).contains("table of topics is empty"));
        let e = SubscribeArgs::parse(&args(&lua, r#""a/#/b", 0"#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #1 to 'subscribe' (invalid topic filter"));
        let e = SubscribeArgs::parse(&args(&lua, r#""/a", 3"#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #2 to 'subscribe' (qos must be 0, 1 or 2)"));
    }

    #[test]
    fn unsubscribe_single_table_and_array_forms() {
        let lua = Lua::new();
        let u = UnsubscribeArgs::parse(&args(&lua, r#""/a", function() end"#)).unwrap();
        assert_eq!(u.filters, vec!["/a".to_owned()]);
        assert!(u.callback.is_some());
        let mut u = UnsubscribeArgs::parse(&args(&lua, r#"{["/x"]=true, ["/y"]=1}"#)).unwrap();
        u.filters.sort();
        assert_eq!(u.filters, vec!["/x".to_owned(), "/y".to_owned()]);
        let u = UnsubscribeArgs::parse(&args(&lua, r#"{"/p", "/q"}"#)).unwrap();
        assert_eq!(u.filters, vec!["/p".to_owned(), "/q".to_owned()]);
        let e = UnsubscribeArgs::parse(&args(&lua, "true")).unwrap_err();
        assert!(err_text(e).contains("bad argument #1 to 'unsubscribe'"));
    }

    #[test]
    fn lwt_honours_qos_and_retain() {
        let lua = Lua::new();
        let w = parse_lwt(&args(&lua, r#""/lwt", "offline", 1, 1"#)).unwrap();
        assert_eq!(w.topic, "/lwt");
        assert_eq!(&w.payload[..], b"offline");
        assert_eq!((w.qos, w.retain), (QoS::AtLeastOnce, true));
        let w = parse_lwt(&args(&lua, r#""/lwt", "offline""#)).unwrap();
        assert_eq!((w.qos, w.retain), (QoS::AtMostOnce, false));
        let e = parse_lwt(&args(&lua, r#""/lwt", "x", 4"#)).unwrap_err();
        assert!(err_text(e).contains("bad argument #3 to 'lwt' (qos must be 0, 1 or 2)"));
    }
}
