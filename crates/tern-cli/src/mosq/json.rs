//! JSON for `-F %J` (the payload must be one JSON value) and `--pretty`, with serde_json,
//! whose recursion limit keeps a hostile payload from exhausting the stack.

/// True when `bytes` is exactly one JSON value, optionally surrounded by whitespace.
pub(crate) fn is_valid(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
}

/// `json` indented, keys in their order; `None` when it is not JSON.
pub(crate) fn pretty(json: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    serde_json::to_vec_pretty(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::{is_valid, pretty};

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
            assert!(is_valid(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "01", "[1,]", "{\"a\"}", "nul", "\"\x01\"", "1 2", "{'a':1}", "-", "1.",
        ] {
            assert!(!is_valid(bad.as_bytes()), "{bad}");
        }
        assert!(!is_valid(&[b'"', 0xff, b'"']));
        let deep = "[".repeat(10_000);
        assert!(!is_valid(deep.as_bytes()));
    }

    #[test]
    fn pretty_keeps_key_order() {
        let p = pretty(br#"{"tst":"x","topic":"t","qos":0}"#).unwrap();
        assert_eq!(
            String::from_utf8(p).unwrap(),
            "{\n  \"tst\": \"x\",\n  \"topic\": \"t\",\n  \"qos\": 0\n}"
        );
        assert!(pretty(b"{").is_none());
    }
}
