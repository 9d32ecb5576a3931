//! `tern sub -F`: mosquitto_sub's output format language.
//!
//! `%` sequences print message fields (with printf-like `-`/`0` flags, width and, for `%t`
//! `%I`, a maximum width), `@` sequences go to `strftime(3)` (`@N` is nanoseconds, `@@` an
//! `@`), `\` sequences are escapes. The string is parsed once; each message is rendered into
//! a byte buffer, payload bytes untouched except where a sequence says otherwise (`%x`, `%j`).

use tern_proto::{MqttString, PublishProperties};

use super::clock::Stamp;
use super::json::Json;

/// What a `%` sequence prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `%%`.
    Percent,
    /// `%t`.
    Topic,
    /// `%p`: payload bytes as received.
    Payload,
    /// `%q`.
    Qos,
    /// `%r`: 0 or 1.
    Retain,
    /// `%l`: payload length in bytes.
    Len,
    /// `%m`: message id.
    Mid,
    /// `%x`: payload as lower-case hex.
    Hex,
    /// `%X`: payload as upper-case hex.
    HexUpper,
    /// `%j`: JSON object with the escaped payload.
    Json,
    /// `%J`: JSON object with the payload inlined (it must be JSON).
    JsonRaw,
    /// `%I`: ISO 8601 local time.
    Iso,
    /// `%U`: Unix time with nanoseconds.
    Unix,
    /// `%A`: MQTT v5 topic alias.
    TopicAlias,
    /// `%C`: MQTT v5 content type.
    ContentType,
    /// `%D`: MQTT v5 correlation data, raw bytes, never padded.
    CorrelationData,
    /// `%E`: MQTT v5 message expiry interval (seconds left).
    MessageExpiry,
    /// `%F`: MQTT v5 payload format indicator.
    PayloadFormat,
    /// `%P`: MQTT v5 user properties, `name:value` separated by spaces, never padded.
    UserProperties,
    /// `%R`: MQTT v5 response topic (nothing at all when absent, as mosquitto_sub).
    ResponseTopic,
    /// `%S`: MQTT v5 subscription identifier (the first).
    SubscriptionId,
}

impl Field {
    /// MQTT v5 properties: empty for a 3.1/3.1.1 message or one without the property
    /// (padded to the width, as mosquitto_sub does, except `%D %P %R`).
    fn is_v5(self) -> bool {
        matches!(
            self,
            Self::TopicAlias
                | Self::ContentType
                | Self::CorrelationData
                | Self::MessageExpiry
                | Self::PayloadFormat
                | Self::UserProperties
                | Self::ResponseTopic
                | Self::SubscriptionId
        )
    }
}

/// Flags, width and maximum width of one `%` sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Spec {
    /// `-`: left-align.
    left: bool,
    /// `0`: pad numbers and hex with zeros.
    zero: bool,
    /// Minimum width in bytes.
    width: usize,
    /// `.N`: maximum width (only `%t`, `%I` and the v5 strings honour it, as in mosquitto).
    max: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Field(Field, Spec),
    /// `@X` → `strftime("%X")`.
    Time(u8),
    /// `@N`: nanoseconds within the second.
    Nanos,
}

/// A parsed `-F` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Format {
    pieces: Vec<Piece>,
    needs_time: bool,
    /// `--pretty`: `%j` / `%J` indented.
    pub(crate) pretty: bool,
}

/// The parts of a received message a format can print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) topic: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    /// Packet id, 0 when unknown or QoS 0.
    pub(crate) mid: u16,
    /// MQTT v5 properties; `None` at 3.1/3.1.1.
    pub(crate) props: Option<&'a PublishProperties>,
}

/// Why a message was not printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RenderError {
    /// `%J` with a payload that is not JSON.
    NotJson { topic: String },
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotJson { topic } => {
                write!(
                    f,
                    "Error: Message payload is not valid JSON on topic {topic}."
                )
            }
        }
    }
}

impl Format {
    /// Parses a format string; the error is mosquitto's sentence for it.
    pub(crate) fn parse(s: &[u8]) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < s.len() {
            let c = s[i];
            i += 1;
            match c {
                b'%' => {
                    let (field, spec, next) = parse_percent(s, i)?;
                    i = next;
                    if field == Field::Percent {
                        lit.push(b'%');
                        continue;
                    }
                    flush(&mut lit, &mut pieces);
                    pieces.push(Piece::Field(field, spec));
                }
                b'@' => {
                    let Some(&t) = s.get(i) else {
                        return Err("Incomplete format specifier.".into());
                    };
                    i += 1;
                    match t {
                        b'@' => lit.push(b'@'),
                        b'N' => {
                            flush(&mut lit, &mut pieces);
                            pieces.push(Piece::Nanos);
                        }
                        _ => {
                            flush(&mut lit, &mut pieces);
                            pieces.push(Piece::Time(t));
                        }
                    }
                }
                b'\\' => {
                    let Some(&e) = s.get(i) else {
                        return Err("Incomplete escape specifier.".into());
                    };
                    i += 1;
                    lit.push(match e {
                        b'\\' => b'\\',
                        b'0' => 0,
                        b'a' => 0x07,
                        b'e' => 0x1b,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'v' => 0x0b,
                        _ => {
                            return Err(format!(
                                "Invalid escape specifier '{}'.",
                                char::from(e).escape_default()
                            ));
                        }
                    });
                }
                _ => lit.push(c),
            }
        }
        flush(&mut lit, &mut pieces);
        let needs_time = pieces.iter().any(|p| {
            matches!(
                p,
                Piece::Time(_)
                    | Piece::Nanos
                    | Piece::Field(Field::Iso | Field::Unix | Field::Json | Field::JsonRaw, _)
            )
        });
        Ok(Self {
            pieces,
            needs_time,
            pretty: false,
        })
    }

    /// Appends the rendering of `msg` to `out`, and returns what could not be printed (a
    /// `%J` payload that is not JSON): like mosquitto_sub, the rest of the format is still
    /// printed and the caller reports each error.
    pub(crate) fn render(&self, msg: &View<'_>, out: &mut Vec<u8>) -> Vec<RenderError> {
        let stamp = self.needs_time.then(Stamp::now);
        self.render_at(msg, stamp.as_ref(), out)
    }

    fn render_at(
        &self,
        msg: &View<'_>,
        stamp: Option<&Stamp>,
        out: &mut Vec<u8>,
    ) -> Vec<RenderError> {
        let mut errors = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(b) => out.extend_from_slice(b),
                Piece::Nanos => {
                    let n = stamp.map_or(0, |s| s.nanos);
                    out.extend_from_slice(format!("{n:09}").as_bytes());
                }
                Piece::Time(c) => {
                    if let Some(s) = stamp {
                        let fmt = format!("%{}", char::from(*c));
                        out.extend_from_slice(&s.strftime(&fmt));
                    }
                }
                Piece::Field(field, spec) => match self.value(*field, msg, stamp) {
                    Ok(v) => v.write(spec, out),
                    Err(e) => errors.push(e),
                },
            }
        }
        errors
    }

    /// What `field` prints for `msg`.
    fn value<'m>(
        &self,
        field: Field,
        msg: &View<'m>,
        stamp: Option<&Stamp>,
    ) -> Result<Value<'m>, RenderError> {
        let stamp_str = |f: fn(&Stamp) -> Vec<u8>| stamp.map(f).unwrap_or_default();
        Ok(match field {
            Field::Percent => Value::Raw(b"%".to_vec()),
            Field::Topic => Value::Str(msg.topic.as_bytes().into()),
            Field::Payload => Value::Payload(msg.payload, None),
            Field::Hex => Value::Payload(msg.payload, Some(b"0123456789abcdef")),
            Field::HexUpper => Value::Payload(msg.payload, Some(b"0123456789ABCDEF")),
            Field::Qos => Value::Raw(vec![b'0' + msg.qos]),
            Field::Retain => Value::Raw(vec![if msg.retain { b'1' } else { b'0' }]),
            Field::Len => Value::Int(i64::try_from(msg.payload.len()).unwrap_or(i64::MAX)),
            Field::Mid => Value::Int(msg.mid.into()),
            Field::Iso => Value::Str(stamp_str(Stamp::iso8601).into()),
            Field::Unix => Value::Raw(stamp_str(Stamp::unix)),
            Field::Json | Field::JsonRaw => {
                let raw = field == Field::JsonRaw;
                let payload = if msg.payload.is_empty() {
                    Json::Null
                } else if raw {
                    Json::parse(msg.payload).ok_or_else(|| RenderError::NotJson {
                        topic: msg.topic.to_owned(),
                    })?
                } else {
                    Json::Str(c_string(msg.payload).to_vec())
                };
                let mut out = Vec::new();
                json(msg, stamp, payload).write(self.pretty, &mut out);
                Value::Raw(out)
            }
            v5 => property(v5, msg.props),
        })
    }
}

/// A field's value and how mosquitto_sub pads it.
enum Value<'m> {
    /// Never padded nor cut.
    Raw(Vec<u8>),
    /// `printf("%d")` with the width, `-` and `0`.
    Int(i64),
    /// `printf("%s")` with the width, `-` and the maximum width.
    Str(std::borrow::Cow<'m, [u8]>),
    /// The payload, as is or in hex: the width also cuts it (mosquitto_sub's
    /// `write_payload`, hex halving the bytes it prints).
    Payload(&'m [u8], Option<&'static [u8; 16]>),
    /// An absent numeric v5 property: the width in the pad character (`0` or space).
    BlankPad,
    /// An absent string v5 property: the width in spaces.
    BlankSpace,
}

impl Value<'_> {
    fn write(&self, spec: &Spec, out: &mut Vec<u8>) {
        let fill = |out: &mut Vec<u8>, n: usize, c: u8| out.resize(out.len() + n, c);
        let pad_char = if spec.zero { b'0' } else { b' ' };
        match self {
            Self::Raw(b) => out.extend_from_slice(b),
            Self::Int(n) => {
                let digits = n.to_string();
                let n_fill = spec.width.saturating_sub(digits.len());
                if spec.left {
                    out.extend_from_slice(digits.as_bytes());
                    fill(out, n_fill, b' ');
                } else if spec.zero && *n < 0 {
                    out.push(b'-');
                    fill(out, n_fill, b'0');
                    out.extend_from_slice(&digits.as_bytes()[1..]);
                } else {
                    fill(out, n_fill, pad_char);
                    out.extend_from_slice(digits.as_bytes());
                }
            }
            Self::Str(v) => {
                let v = match spec.max {
                    Some(max) if v.len() > max => &v[..max],
                    _ => &v[..],
                };
                let n_fill = spec.width.saturating_sub(v.len());
                if spec.left {
                    out.extend_from_slice(v);
                    fill(out, n_fill, b' ');
                } else {
                    fill(out, n_fill, b' ');
                    out.extend_from_slice(v);
                }
            }
            Self::Payload(payload, digits) => {
                let mut len = payload.len();
                let mut printed = len;
                if spec.width > 0 {
                    len = len.min(spec.width);
                    printed = len;
                    if digits.is_some() {
                        len /= 2;
                        printed = len * 2;
                    }
                }
                let n_fill = spec.width.saturating_sub(printed);
                if !spec.left {
                    fill(out, n_fill, pad_char);
                }
                match digits {
                    None => out.extend_from_slice(&payload[..len]),
                    Some(d) => hex(&payload[..len], d, out),
                }
                if spec.left {
                    fill(out, n_fill, b' ');
                }
            }
            Self::BlankPad => fill(out, spec.width, pad_char),
            Self::BlankSpace => fill(out, spec.width, b' '),
        }
    }
}

/// A v5 property's value as mosquitto_sub prints it: numbers as C `int`s, `%C %R` as
/// strings, `%D %P` never padded, an absent `%R` as nothing and other absent ones as
/// padding. At 3.1/3.1.1 every property is absent.
fn property(field: Field, p: Option<&PublishProperties>) -> Value<'_> {
    let int = |n: Option<u32>| match n {
        // mosquitto_sub casts to `int`: 4294967295 prints as -1.
        Some(n) => Value::Int(i64::from(n as i32)),
        None => Value::BlankPad,
    };
    match field {
        Field::TopicAlias => int(p.and_then(|p| p.topic_alias).map(|a| a.get().into())),
        Field::MessageExpiry => int(p.and_then(|p| p.message_expiry_interval)),
        Field::PayloadFormat => int(p.and_then(|p| p.payload_format_indicator).map(|f| f as u32)),
        Field::SubscriptionId => int(p
            .and_then(|p| p.subscription_identifiers.first())
            .map(|s| s.get())),
        Field::ContentType => match p.and_then(|p| p.content_type.as_ref()) {
            Some(c) => Value::Str(c.as_bytes().into()),
            None => Value::BlankSpace,
        },
        Field::ResponseTopic => match p.and_then(|p| p.response_topic.as_ref()) {
            Some(t) => Value::Str(t.as_str().as_bytes().into()),
            None => Value::Raw(Vec::new()),
        },
        Field::CorrelationData => Value::Raw(
            p.and_then(|p| p.correlation_data.as_ref())
                .map(|d| d.to_vec())
                .unwrap_or_default(),
        ),
        Field::UserProperties => {
            let mut out = Vec::new();
            for (i, (k, v)) in p.iter().flat_map(|p| &p.user_properties).enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(k.as_bytes());
                out.push(b':');
                out.extend_from_slice(v.as_bytes());
            }
            Value::Raw(out)
        }
        _ => Value::Raw(Vec::new()),
    }
}

/// `"properties"` for `%j` / `%J`, keyed by mosquitto's property names, user properties as
/// one object. Members in the order mosquitto 2.0 forwards a message: subscription
/// identifiers first, the publisher's properties, the message expiry last (the library
/// does not keep the wire order, so the publisher's are in the order tern pub sends them).
fn json_properties(p: &PublishProperties) -> Json {
    let s = |b: &[u8]| Json::Str(b.to_vec());
    let mut m: Vec<(Vec<u8>, Json)> = Vec::new();
    let mut put = |k: &str, v: Json| m.push((k.as_bytes().to_vec(), v));
    for id in &p.subscription_identifiers {
        put("subscription-identifier", Json::Number(id.get().into()));
    }
    if let Some(f) = p.payload_format_indicator {
        put("payload-format-indicator", Json::Number(f64::from(f as u8)));
    }
    if let Some(c) = &p.content_type {
        put("content-type", s(c.as_bytes()));
    }
    if let Some(t) = &p.response_topic {
        put("response-topic", s(t.as_str().as_bytes()));
    }
    if let Some(d) = &p.correlation_data {
        put("correlation-data", s(c_string(d)));
    }
    if !p.user_properties.is_empty() {
        let users = p
            .user_properties
            .iter()
            .map(|(k, v)| (MqttString::as_bytes(k).to_vec(), s(v.as_bytes())))
            .collect();
        put("user-properties", Json::Object(users));
    }
    if let Some(a) = p.topic_alias {
        put("topic-alias", Json::Number(a.get().into()));
    }
    if let Some(n) = p.message_expiry_interval {
        put("message-expiry-interval", Json::Number(n.into()));
    }
    Json::Object(m)
}

/// `bytes` up to the first NUL: mosquitto_sub hands payloads and correlation data to cJSON
/// as C strings, so `%j` shows them only that far.
fn c_string(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |end| &bytes[..end])
}

fn flush(lit: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
    if !lit.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(lit)));
    }
}

/// Parses what follows a `%` at `i`: flags, width, `.max`, conversion.
/// The largest field width or precision `-F` takes (1 MB of padding per field).
const MAX_WIDTH: usize = 1 << 20;

fn parse_percent(s: &[u8], mut i: usize) -> Result<(Field, Spec, usize), String> {
    let mut spec = Spec::default();
    // As mosquitto_sub: at most one `-`, then at most one `0`, in that order.
    if s.get(i) == Some(&b'-') {
        spec.left = true;
        i += 1;
    }
    if s.get(i) == Some(&b'0') {
        spec.zero = true;
        i += 1;
    }
    // Widths and precisions beyond MAX_WIDTH are taken as MAX_WIDTH: a 20-digit width must
    // neither overflow nor ask for gigabytes of padding.
    let digits = |i: &mut usize| -> usize {
        let mut n: usize = 0;
        while let Some(d) = s.get(*i).filter(|c| c.is_ascii_digit()) {
            n = n
                .saturating_mul(10)
                .saturating_add(usize::from(d - b'0'))
                .min(MAX_WIDTH);
            *i += 1;
        }
        n
    };
    spec.width = digits(&mut i);
    if s.get(i) == Some(&b'.') {
        i += 1;
        spec.max = Some(digits(&mut i));
    }
    let Some(&c) = s.get(i) else {
        return Err("Incomplete format specifier.".into());
    };
    let field = match c {
        b'%' => Field::Percent,
        b't' => Field::Topic,
        b'p' => Field::Payload,
        b'q' => Field::Qos,
        b'r' => Field::Retain,
        b'l' => Field::Len,
        b'm' => Field::Mid,
        b'x' => Field::Hex,
        b'X' => Field::HexUpper,
        b'j' => Field::Json,
        b'J' => Field::JsonRaw,
        b'I' => Field::Iso,
        b'U' => Field::Unix,
        b'A' => Field::TopicAlias,
        b'C' => Field::ContentType,
        b'D' => Field::CorrelationData,
        b'E' => Field::MessageExpiry,
        b'F' => Field::PayloadFormat,
        b'P' => Field::UserProperties,
        b'R' => Field::ResponseTopic,
        b'S' => Field::SubscriptionId,
        _ => {
            return Err(format!(
                "Invalid format specifier '{}'.",
                char::from(c).escape_default()
            ));
        }
    };
    // Only these honour a maximum width in mosquitto_sub.
    if !(matches!(field, Field::Topic | Field::Iso) || field.is_v5()) {
        spec.max = None;
    }
    Ok((field, spec, i + 1))
}

fn hex(bytes: &[u8], digits: &[u8; 16], out: &mut Vec<u8>) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0x0f)]);
    }
}

/// `%j` / `%J`: `{"tst":..,"topic":..,"qos":..,"retain":..,"payloadlen":..,"mid":..,
/// "properties":{..},"payload":..}`, the keys and their order as mosquitto_sub 2.0 writes
/// them (`mid` only at QoS 1/2, `properties` only when the message has some).
fn json(msg: &View<'_>, stamp: Option<&Stamp>, payload: Json) -> Json {
    let mut m: Vec<(Vec<u8>, Json)> = Vec::with_capacity(8);
    let mut put = |k: &str, v: Json| m.push((k.as_bytes().to_vec(), v));
    put(
        "tst",
        Json::Str(stamp.map(Stamp::iso8601_micros).unwrap_or_default()),
    );
    put("topic", Json::Str(msg.topic.as_bytes().to_vec()));
    put("qos", Json::Number(msg.qos.into()));
    put("retain", Json::Number(u8::from(msg.retain).into()));
    put("payloadlen", Json::Number(msg.payload.len() as f64));
    if msg.qos > 0 {
        put("mid", Json::Number(msg.mid.into()));
    }
    if let Some(p) = msg.props {
        put("properties", json_properties(p));
    }
    put("payload", payload);
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(topic: &'a str, payload: &'a [u8]) -> View<'a> {
        View {
            topic,
            payload,
            qos: 1,
            retain: true,
            mid: 7,
            props: None,
        }
    }

    fn render(fmt: &str, v: &View<'_>) -> Vec<u8> {
        let f = Format::parse(fmt.as_bytes()).unwrap();
        let stamp = Stamp::at(1_470_818_943, 786_368_637);
        let mut out = Vec::new();
        assert_eq!(f.render_at(v, Some(&stamp), &mut out), []);
        out
    }

    #[test]
    fn message_fields_print_as_documented() {
        let v = view("a/b", b"hi\x00\xff");
        assert_eq!(
            render("%t|%p|%q|%r|%l|%m|%x|%X|%%", &v),
            b"a/b|hi\x00\xff|1|1|4|7|686900ff|686900FF|%"
        );
        assert_eq!(render("%U", &v), b"1470818943.786368637");
        assert_eq!(render("@N", &v), b"786368637");
        assert_eq!(render("@@x", &v), b"@x");
    }

    #[test]
    fn widths_flags_and_maximums_pad_or_cut() {
        let v = view("e/1", b"hi");
        assert_eq!(
            render("[%5t][%-5t][%.2t][%05l][%-5l][%08x][%3p][%5.3I]", &v),
            b"[  e/1][e/1  ][e/][00002][2    ][00000068][ hi][  201]"
        );
        // As mosquitto_sub's write_payload: a width cuts the payload, and in hex counts
        // characters of which it prints only whole bytes (half the width).
        let long = view("e/1", b"hello");
        assert_eq!(
            render("[%3p][%-7p][%03p][%3x][%-9X][%07x][%.2p]", &long),
            b"[hel][hello  ][hel][ 68][6865     ][0006865][hello]"
        );
        // %q %r %U %j ignore widths.
        assert_eq!(
            render("[%3q][%-3r][%30U]", &v),
            b"[1][1][1470818943.786368637]"
        );
        // 0 is ignored for strings and overridden by -.
        assert_eq!(render("[%05t][%-05l]", &v), b"[  e/1][2    ]");
        // A width past MAX_WIDTH is MAX_WIDTH: no overflow, no gigabytes of padding.
        let huge = render("%99999999999999999999999t|", &v);
        assert_eq!(huge.len(), MAX_WIDTH + 1);
        assert!(huge.ends_with(b"e/1|"));
    }

    #[test]
    fn escapes_are_translated() {
        let v = view("t", b"");
        assert_eq!(
            render(r"a\tb\n\0\\\e\a\r\v", &v),
            b"a\tb\n\0\\\x1b\x07\r\x0b"
        );
    }

    #[test]
    fn bad_formats_are_refused_with_mosquittos_words() {
        assert_eq!(
            Format::parse(b"%Q"),
            Err("Invalid format specifier 'Q'.".into())
        );
        assert_eq!(
            Format::parse(b"%"),
            Err("Incomplete format specifier.".into())
        );
        assert_eq!(
            Format::parse(b"%-5"),
            Err("Incomplete format specifier.".into())
        );
        assert_eq!(
            Format::parse(b"%0-3t"),
            Err("Invalid format specifier '-'.".into())
        );
        assert_eq!(
            Format::parse(b"%--3t"),
            Err("Invalid format specifier '-'.".into())
        );
        assert!(Format::parse(b"%-03t%00t").is_ok());
        assert_eq!(
            Format::parse(br"\z"),
            Err("Invalid escape specifier 'z'.".into())
        );
        assert_eq!(
            Format::parse(b"\\"),
            Err("Incomplete escape specifier.".into())
        );
    }

    #[test]
    fn json_escapes_the_payload_and_keeps_mosquittos_keys() {
        let v = view("t/\"q\"", b"h\x01\"\\\n\xff");
        let out = String::from_utf8_lossy(&render("%j", &v)).into_owned();
        let tst_end = out.find("\",\"topic\"").unwrap();
        assert!(out.starts_with("{\"tst\":\"20"), "{out}");
        assert_eq!(
            &out[tst_end..],
            "\",\"topic\":\"t/\\\"q\\\"\",\"qos\":1,\"retain\":1,\"payloadlen\":6,\
             \"mid\":7,\"payload\":\"h\\u0001\\\"\\\\\\n\u{fffd}\"}"
        );
    }

    #[test]
    fn json_strings_stop_at_a_nul_as_mosquitto_subs() {
        let v = view("t", b"a\x00b");
        let out = String::from_utf8(render("%j|%l", &v)).unwrap();
        assert!(out.ends_with("\"payload\":\"a\"}|3"), "{out}");
    }

    #[test]
    fn raw_json_needs_a_json_payload() {
        let ok = view("t", br#"{"a":[1,2.5e3,true,null,"x"]}"#);
        let out = String::from_utf8(render("%J", &ok)).unwrap();
        assert!(
            out.ends_with(r#""mid":7,"payload":{"a":[1,2500,true,null,"x"]}}"#),
            "{out}"
        );
        let bad = view("t", b"{nope");
        let f = Format::parse(b"x%Jy").unwrap();
        let mut out = b"keep".to_vec();
        assert_eq!(
            f.render(&bad, &mut out),
            [RenderError::NotJson { topic: "t".into() }]
        );
        assert_eq!(out, b"keepxy");
    }

    #[test]
    fn v5_properties_are_empty_at_3_1_1() {
        let v = view("t", b"p");
        assert_eq!(
            render("[%A%C%D%E%F%P%R%S][%3C][%3R][%-03E][%3S]", &v),
            b"[][   ][][000][   ]"
        );
    }

    #[test]
    fn v5_properties_print_as_mosquitto_sub_prints_them() {
        let mut p = PublishProperties::default();
        let s = |x: &str| MqttString::new(x).unwrap();
        p.content_type = Some(s("text/plain"));
        p.user_properties = vec![(s("unit"), s("C")), (s("unit"), s("K"))];
        p.correlation_data = Some(bytes::Bytes::from_static(b"\x01id"));
        p.message_expiry_interval = Some(59);
        p.payload_format_indicator = Some(tern_proto::PayloadFormat::Utf8);
        p.response_topic = Some(tern_proto::TopicName::new("re/1").unwrap());
        p.subscription_identifiers = vec![tern_proto::SubscriptionId::new(7).unwrap()];
        p.topic_alias = std::num::NonZeroU16::new(3);
        let mut v = view("t", b"p");
        v.props = Some(&p);
        assert_eq!(
            render("%C|%P|%D|%E|%F|%R|%S|%A", &v),
            b"text/plain|unit:C unit:K|\x01id|59|1|re/1|7|3"
        );
        assert_eq!(
            render("[%-12C][%04E][%.2R][%5P]", &v),
            b"[text/plain  ][0059][re][unit:C unit:K]"
        );
        let json = String::from_utf8(render("%j", &v)).unwrap();
        assert!(
            json.contains(
                "\"payloadlen\":1,\"mid\":7,\"properties\":{\"subscription-identifier\":7,\
                 \"payload-format-indicator\":1,\"content-type\":\"text/plain\",\
                 \"response-topic\":\"re/1\",\"correlation-data\":\"\\u0001id\",\
                 \"user-properties\":{\"unit\":\"C\",\"unit\":\"K\"},\"topic-alias\":3,\
                 \"message-expiry-interval\":59},\"payload\":\"p\"}"
            ),
            "{json}"
        );
        let empty = PublishProperties::default();
        v.props = Some(&empty);
        assert_eq!(render("[%C][%3E][%R][%P]", &v), b"[][   ][][]");
    }
}
