//! JSON for `-F %j` / `%J` and `--pretty`, written byte for byte as mosquitto_sub 2.0 writes
//! it with cJSON: members in insertion order (duplicate keys kept), numbers as C's `%1.15g`
//! (`%1.17g` when that loses the value), strings with only `"`, `\` and control characters
//! escaped, and `--pretty` as `cJSON_Print` (tabs, `"key":<TAB>value`, arrays on one line).
//! A `%J` payload is parsed with serde_json, whose recursion limit keeps a hostile payload
//! from exhausting the stack, and written back in that form (as mosquitto_sub re-prints it).

/// A JSON value as cJSON holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Every number is a double in cJSON.
    Number(f64),
    /// A string's bytes (not necessarily UTF-8: a payload is written as received).
    Str(Vec<u8>),
    /// `[...]`.
    Array(Vec<Self>),
    /// `{...}`, members in order.
    Object(Vec<(Vec<u8>, Self)>),
}

impl Json {
    /// Parses `bytes` as exactly one JSON value, optionally surrounded by whitespace.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .map(Self::from)
    }

    /// Appends this value, minified or (`pretty`) as `cJSON_Print` indents it.
    pub(crate) fn write(&self, pretty: bool, out: &mut Vec<u8>) {
        self.write_at(pretty, 0, out);
    }

    fn write_at(&self, pretty: bool, depth: usize, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Self::Number(n) => number(*n, out),
            Self::Str(s) => string(s, out),
            Self::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(if pretty { b", " } else { b"," });
                    }
                    item.write_at(pretty, depth + 1, out);
                }
                out.push(b']');
            }
            Self::Object(members) => {
                let depth = depth + 1;
                out.push(b'{');
                if pretty {
                    out.push(b'\n');
                }
                for (i, (key, value)) in members.iter().enumerate() {
                    if pretty {
                        out.resize(out.len() + depth, b'\t');
                    }
                    string(key, out);
                    out.push(b':');
                    if pretty {
                        out.push(b'\t');
                    }
                    value.write_at(pretty, depth, out);
                    if i + 1 < members.len() {
                        out.push(b',');
                    }
                    if pretty {
                        out.push(b'\n');
                    }
                }
                if pretty {
                    out.resize(out.len() + depth - 1, b'\t');
                }
                out.push(b'}');
            }
        }
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Self {
        use serde_json::Value;
        match v {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) => n.as_f64().map_or(Self::Null, Self::Number),
            Value::String(s) => Self::Str(s.into_bytes()),
            Value::Array(a) => Self::Array(a.into_iter().map(Self::from).collect()),
            Value::Object(o) => Self::Object(
                o.into_iter()
                    .map(|(k, v)| (k.into_bytes(), Self::from(v)))
                    .collect(),
            ),
        }
    }
}

/// A JSON string literal: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
/// escapes; every other byte is copied as is (as cJSON does, so a payload that is not UTF-8
/// yields its exact bytes rather than replacement characters).
pub(crate) fn string(bytes: &[u8], out: &mut Vec<u8>) {
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

/// cJSON's number: `null` unless finite, `%1.15g`, or `%1.17g` when reading the shorter
/// form back is further from the value than the double's precision.
fn number(n: f64, out: &mut Vec<u8>) {
    if !n.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let short = c_g(n, 15);
    let close = short
        .parse::<f64>()
        .is_ok_and(|back| (back - n).abs() <= back.abs().max(n.abs()) * f64::EPSILON);
    out.extend_from_slice(if close { short } else { c_g(n, 17) }.as_bytes());
}

/// C's `%1.<precision>g` through libc, so exponents and trimming are exactly printf's.
fn c_g(n: f64, precision: i32) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer and its length are valid, the format is NUL-terminated and takes
    // exactly the `int` and `double` passed; snprintf writes at most `buf.len()` bytes.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%1.*g".as_ptr(),
            precision,
            n,
        )
    };
    let len = usize::try_from(len).unwrap_or(0).min(buf.len() - 1);
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::Json;

    fn minified(s: &str) -> Option<String> {
        let mut out = Vec::new();
        Json::parse(s.as_bytes())?.write(false, &mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn json_values_are_recognised() {
        for ok in [
            "0",
            "-1.5e+3",
            " \"a\\u00e9\\n\" ",
            "[]",
            "{}",
            r#"{"a":[1,{"b":null}],"c":false}"#,
            "true",
        ] {
            assert!(Json::parse(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in [
            "", "01", "[1,]", "{\"a\"}", "nul", "\"\x01\"", "1 2", "{'a':1}", "-", "1.",
        ] {
            assert!(Json::parse(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(Json::parse(&[b'"', 0xff, b'"']).is_none());
        let deep = "[".repeat(10_000);
        assert!(Json::parse(deep.as_bytes()).is_none());
    }

    #[test]
    fn values_are_rewritten_as_cjson_prints_them() {
        assert_eq!(
            minified(r#" { "a" : [1, 2.50, 1e3, -0.0, 0.1] , "b": "\u00e9\/\u0001" } "#).unwrap(),
            "{\"a\":[1,2.5,1000,-0,0.1],\"b\":\"\u{e9}/\\u0001\"}"
        );
        assert_eq!(
            minified(
                "[12345678901234567890, 1.7976931348623157e308, 3.14159265358979, 4294967295]"
            )
            .unwrap(),
            "[1.2345678901234567e+19,1.79769313486232e+308,3.14159265358979,4294967295]"
        );
    }

    #[test]
    fn pretty_is_cjson_print() {
        let mut out = Vec::new();
        Json::parse(br#"{"a":[1,{"b":2,"c":[]},{}],"d":{}}"#)
            .unwrap()
            .write(true, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n\t\"a\":\t[1, {\n\t\t\t\"b\":\t2,\n\t\t\t\"c\":\t[]\n\t\t}, {\n\t\t}],\n\
             \t\"d\":\t{\n\t}\n}"
        );
    }
}
