//! Topic templates: `%i` (client index), `%c` (client id), `%u` (user name), `%rand_N`
//! (a random number in 1..=N, drawn anew for every message).

use std::fmt::Write;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Index,
    ClientId,
    User,
    Rand(u64),
}

/// A parsed `-t` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// What a connection fills a template with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fill<'a> {
    pub(crate) index: u64,
    pub(crate) client_id: &'a str,
    pub(crate) user: &'a str,
}

impl Template {
    /// Parses `%i`, `%c`, `%u`, `%rand_N` and `%%`; any other `%` is an error.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("-t needs a non-empty topic".into());
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(pos) = rest.find('%') {
            text.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (part, used) = if let Some(r) = after.strip_prefix('%') {
                text.push('%');
                rest = r;
                continue;
            } else if let Some(r) = after.strip_prefix("rand_") {
                let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                let n: u64 = r[..digits]
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("-t {s:?}: %rand_N needs a positive N"))?;
                (Part::Rand(n), 5 + digits)
            } else if after.starts_with('i') {
                (Part::Index, 1)
            } else if after.starts_with('c') {
                (Part::ClientId, 1)
            } else if after.starts_with('u') {
                (Part::User, 1)
            } else {
                return Err(format!(
                    "-t {s:?}: unknown placeholder (use %i, %c, %u, %rand_N or %%)"
                ));
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
            rest = &after[used..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { parts })
    }

    /// A publish topic may hold no wildcard.
    pub(crate) fn check_publish(&self) -> Result<(), String> {
        let wild = self
            .parts
            .iter()
            .any(|p| matches!(p, Part::Text(t) if t.contains(['+', '#'])));
        if wild {
            return Err(
                "tern bench pub: -t may not contain + or # (a topic name, not a filter)".into(),
            );
        }
        Ok(())
    }

    /// Whether every expansion for a connection is the same (no `%rand_N`).
    pub(crate) fn is_fixed(&self) -> bool {
        !self.parts.iter().any(|p| matches!(p, Part::Rand(_)))
    }

    /// The topic for one connection (and one message, for `%rand_N`).
    pub(crate) fn expand(&self, fill: Fill<'_>, rng: &mut fastrand::Rng) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Index => {
                    let _ = write!(out, "{}", fill.index);
                }
                Part::ClientId => out.push_str(fill.client_id),
                Part::User => out.push_str(fill.user),
                Part::Rand(n) => {
                    let _ = write!(out, "{}", rng.u64(1..=*n));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand() {
        let t = Template::parse("bench/%i/%c/%u/100%%/%rand_3").expect("parse");
        let fill = Fill {
            index: 7,
            client_id: "c7",
            user: "bob",
        };
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..50 {
            let s = t.expand(fill, &mut rng);
            let (head, r) = s.rsplit_once('/').expect("slash");
            assert_eq!(head, "bench/7/c7/bob/100%");
            assert!(["1", "2", "3"].contains(&r), "{s}");
        }
        assert!(!t.is_fixed());
        assert!(Template::parse("a/%i").expect("parse").is_fixed());
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(Template::parse("a/%x").is_err());
        assert!(Template::parse("a/%rand_").is_err());
        assert!(Template::parse("a/%rand_0").is_err());
        assert!(Template::parse("").is_err());
        assert!(
            Template::parse("a/#")
                .expect("filter")
                .check_publish()
                .is_err()
        );
    }
}
