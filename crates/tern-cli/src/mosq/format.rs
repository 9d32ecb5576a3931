//! `tern sub -F`: mosquitto_sub's output format language.
//!
//! `%` sequences print message fields (with printf-like `-`/`0` flags, width and, for `%t`
//! `%I`, a maximum width), `@` sequences go to `strftime(3)` (`@N` is nanoseconds, `@@` an
//! `@`), `\` sequences are escapes. The string is parsed once; each message is rendered into
//! a byte buffer, payload bytes untouched except where a sequence says otherwise (`%x`, `%j`).

use tern_proto::{MqttString, PublishProperties};

use super::clock::Stamp;

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

    /// Appends the rendering of `msg` to `out`. On error `out` is left as it was.
    pub(crate) fn render(&self, msg: &View<'_>, out: &mut Vec<u8>) -> Result<(), RenderError> {
        let stamp = self.needs_time.then(Stamp::now);
        self.render_at(msg, stamp.as_ref(), out)
    }

    fn render_at(
        &self,
        msg: &View<'_>,
        stamp: Option<&Stamp>,
        out: &mut Vec<u8>,
    ) -> Result<(), RenderError> {
        let start = out.len();
        let mut scratch = Vec::new();
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
                Piece::Field(field, spec) => {
                    scratch.clear();
                    let numeric = match field {
                        Field::Percent => {
                            scratch.push(b'%');
                            false
                        }
                        Field::Topic => {
                            scratch.extend_from_slice(msg.topic.as_bytes());
                            false
                        }
                        Field::Payload => {
                            scratch.extend_from_slice(msg.payload);
                            false
                        }
                        Field::Qos => {
                            scratch.push(b'0' + msg.qos);
                            false
                        }
                        Field::Retain => {
                            scratch.push(if msg.retain { b'1' } else { b'0' });
                            false
                        }
                        Field::Len => {
                            scratch.extend_from_slice(msg.payload.len().to_string().as_bytes());
                            true
                        }
                        Field::Mid => {
                            scratch.extend_from_slice(msg.mid.to_string().as_bytes());
                            true
                        }
                        Field::Hex => {
                            hex(msg.payload, b"0123456789abcdef", &mut scratch);
                            true
                        }
                        Field::HexUpper => {
                            hex(msg.payload, b"0123456789ABCDEF", &mut scratch);
                            true
                        }
                        Field::Json | Field::JsonRaw => {
                            if *field == Field::JsonRaw && !super::json::is_valid(msg.payload) {
                                out.truncate(start);
                                return Err(RenderError::NotJson {
                                    topic: msg.topic.to_owned(),
                                });
                            }
                            json(msg, stamp, *field == Field::JsonRaw, &mut scratch);
                            if self.pretty
                                && let Some(p) = super::json::pretty(&scratch)
                            {
                                scratch = p;
                            }
                            false
                        }
                        Field::Iso => {
                            if let Some(s) = stamp {
                                scratch.extend_from_slice(&s.iso8601());
                            }
                            false
                        }
                        Field::Unix => {
                            if let Some(s) = stamp {
                                scratch.extend_from_slice(&s.unix());
                            }
                            false
                        }
                        v5 => {
                            let Some(p) = msg.props else {
                                if !matches!(
                                    v5,
                                    Field::CorrelationData
                                        | Field::UserProperties
                                        | Field::ResponseTopic
                                ) {
                                    pad(&scratch, spec, false, out);
                                }
                                continue;
                            };
                            match property(*v5, p, &mut scratch) {
                                Some(numeric) => numeric,
                                None => {
                                    out.extend_from_slice(&scratch);
                                    continue;
                                }
                            }
                        }
                    };
                    pad(&scratch, spec, numeric, out);
                }
            }
        }
        Ok(())
    }
}

/// Writes a v5 property's value into `out`: `Some(numeric)` to pad it to the width,
/// `None` to print it as is (`%D`, `%P`, as mosquitto_sub; a missing `%R`).
fn property(field: Field, p: &PublishProperties, out: &mut Vec<u8>) -> Option<bool> {
    let num = |n: Option<u64>, out: &mut Vec<u8>| {
        if let Some(n) = n {
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Some(true)
    };
    match field {
        Field::TopicAlias => num(p.topic_alias.map(|a| a.get().into()), out),
        Field::MessageExpiry => num(p.message_expiry_interval.map(u64::from), out),
        Field::PayloadFormat => num(p.payload_format_indicator.map(|f| f as u64), out),
        Field::SubscriptionId => num(
            p.subscription_identifiers.first().map(|s| s.get().into()),
            out,
        ),
        Field::ContentType => {
            if let Some(c) = &p.content_type {
                out.extend_from_slice(c.as_bytes());
            }
            Some(false)
        }
        Field::ResponseTopic => match &p.response_topic {
            Some(t) => {
                out.extend_from_slice(t.as_str().as_bytes());
                Some(false)
            }
            None => None,
        },
        Field::CorrelationData => {
            if let Some(d) = &p.correlation_data {
                out.extend_from_slice(d);
            }
            None
        }
        Field::UserProperties => {
            for (i, (k, v)) in p.user_properties.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(k.as_bytes());
                out.push(b':');
                out.extend_from_slice(v.as_bytes());
            }
            None
        }
        _ => Some(false),
    }
}

/// `"properties":{...},` for `%j` / `%J`, keyed by mosquitto's property names, user
/// properties as one object (as mosquitto_sub built with cJSON writes them).
fn json_properties(p: &PublishProperties, out: &mut Vec<u8>) {
    let mut first = true;
    let mut key = |name: &str, out: &mut Vec<u8>| {
        out.extend_from_slice(if first { b"\"" } else { b",\"" });
        first = false;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    out.extend_from_slice(b"\"properties\":{");
    if let Some(f) = p.payload_format_indicator {
        key("payload-format-indicator", out);
        out.extend_from_slice((f as u8).to_string().as_bytes());
    }
    if let Some(n) = p.message_expiry_interval {
        key("message-expiry-interval", out);
        out.extend_from_slice(n.to_string().as_bytes());
    }
    if let Some(c) = &p.content_type {
        key("content-type", out);
        json_string(c.as_bytes(), out);
    }
    if let Some(t) = &p.response_topic {
        key("response-topic", out);
        json_string(t.as_str().as_bytes(), out);
    }
    if let Some(d) = &p.correlation_data {
        key("correlation-data", out);
        json_string(d, out);
    }
    for id in &p.subscription_identifiers {
        key("subscription-identifier", out);
        out.extend_from_slice(id.get().to_string().as_bytes());
    }
    if let Some(a) = p.topic_alias {
        key("topic-alias", out);
        out.extend_from_slice(a.get().to_string().as_bytes());
    }
    if !p.user_properties.is_empty() {
        key("user-properties", out);
        out.push(b'{');
        for (i, (k, v)) in p.user_properties.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_string(MqttString::as_bytes(k), out);
            out.push(b':');
            json_string(v.as_bytes(), out);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"},");
}

fn flush(lit: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
    if !lit.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(lit)));
    }
}

/// Parses what follows a `%` at `i`: flags, width, `.max`, conversion.
fn parse_percent(s: &[u8], mut i: usize) -> Result<(Field, Spec, usize), String> {
    let mut spec = Spec::default();
    while let Some(&c) = s.get(i) {
        match c {
            b'-' => spec.left = true,
            b'0' => spec.zero = true,
            _ => break,
        }
        i += 1;
    }
    let digits = |i: &mut usize| -> usize {
        let mut n: usize = 0;
        while let Some(d) = s.get(*i).filter(|c| c.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add(usize::from(d - b'0'));
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

fn pad(value: &[u8], spec: &Spec, numeric: bool, out: &mut Vec<u8>) {
    let value = match spec.max {
        Some(max) if value.len() > max => &value[..max],
        _ => value,
    };
    let fill = spec.width.saturating_sub(value.len());
    if spec.left {
        out.extend_from_slice(value);
        out.resize(out.len() + fill, b' ');
    } else {
        let c = if spec.zero && numeric { b'0' } else { b' ' };
        out.resize(out.len() + fill, c);
        out.extend_from_slice(value);
    }
}

fn hex(bytes: &[u8], digits: &[u8; 16], out: &mut Vec<u8>) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0x0f)]);
    }
}

/// `%j` / `%J`: `{"tst":..,"topic":..,"qos":..,"retain":..,"payloadlen":..,"payload":..}`, the
/// keys and their order as mosquitto_sub writes them.
fn json(msg: &View<'_>, stamp: Option<&Stamp>, raw_payload: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"tst\":\"");
    if let Some(s) = stamp {
        out.extend_from_slice(&s.iso8601_micros());
    }
    out.extend_from_slice(b"\",\"topic\":");
    json_string(msg.topic.as_bytes(), out);
    out.extend_from_slice(
        format!(
            ",\"qos\":{},\"retain\":{},\"payloadlen\":{},",
            msg.qos,
            u8::from(msg.retain),
            msg.payload.len()
        )
        .as_bytes(),
    );
    if let Some(p) = msg.props {
        json_properties(p, out);
    }
    out.extend_from_slice(b"\"payload\":");
    if raw_payload {
        out.extend_from_slice(msg.payload);
    } else {
        json_string(msg.payload, out);
    }
    out.push(b'}');
}

/// A JSON string literal: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
/// escapes; every other byte is copied as is (as mosquitto_sub does, so a payload that is not
/// UTF-8 yields its exact bytes rather than replacement characters).
pub(crate) fn json_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
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
        f.render_at(v, Some(&stamp), &mut out).unwrap();
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
            b"[  e/1][e/1  ][e/][00002][2    ][00006869][ hi][  201]"
        );
        // 0 is ignored for strings and overridden by -.
        assert_eq!(render("[%05t][%-05l]", &v), b"[  e/1][2    ]");
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
             \"payload\":\"h\\u0001\\\"\\\\\\n\u{fffd}\"}"
        );
    }

    #[test]
    fn raw_json_needs_a_json_payload() {
        let ok = view("t", br#"{"a":[1,2.5e3,true,null,"x"]}"#);
        let out = String::from_utf8(render("%J", &ok)).unwrap();
        assert!(
            out.ends_with(r#""payload":{"a":[1,2.5e3,true,null,"x"]}}"#),
            "{out}"
        );
        let bad = view("t", b"{nope");
        let f = Format::parse(b"x%J").unwrap();
        let mut out = b"keep".to_vec();
        assert_eq!(
            f.render(&bad, &mut out),
            Err(RenderError::NotJson { topic: "t".into() })
        );
        assert_eq!(out, b"keep");
    }

    #[test]
    fn v5_properties_are_empty_at_3_1_1() {
        let v = view("t", b"p");
        assert_eq!(render("[%A%C%D%E%F%P%R%S][%3C][%3R]", &v), b"[][   ][]");
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
                "\"payloadlen\":1,\"properties\":{\"payload-format-indicator\":1,\
                 \"message-expiry-interval\":59,\"content-type\":\"text/plain\",\
                 \"response-topic\":\"re/1\",\"correlation-data\":\"\\u0001id\",\
                 \"subscription-identifier\":7,\"topic-alias\":3,\
                 \"user-properties\":{\"unit\":\"C\",\"unit\":\"K\"}},\"payload\":\"p\"}"
            ),
            "{json}"
        );
        let empty = PublishProperties::default();
        v.props = Some(&empty);
        assert_eq!(render("[%C][%3E][%R][%P]", &v), b"[][   ][][]");
    }
}
