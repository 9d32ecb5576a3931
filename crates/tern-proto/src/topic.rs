//! Topic names (what a PUBLISH carries) and topic filters (what a SUBSCRIBE carries), and
//! the rule that matches one against the other [MQTT-4.7].

use std::fmt;

use bytes::Bytes;

use crate::text::{MqttString, StringError};

/// A topic name: at least one character, no `+` or `#` [MQTT-4.7.1-1], [MQTT-4.7.3-1].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(MqttString);

/// A topic filter: at least one character; `#` only as the whole last level, `+` only as a
/// whole level [MQTT-4.7.1-2], [MQTT-4.7.1-3].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(MqttString);

/// Why a string is not a valid topic name or filter.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The string itself is not a valid MQTT string.
    #[error(transparent)]
    String(#[from] StringError),
    /// Topics must be at least one character long [MQTT-4.7.3-1].
    #[error("topic is empty [MQTT-4.7.3-1]")]
    Empty,
    /// A topic name contains `+` or `#`.
    #[error("topic name contains wildcard {wildcard:?} at byte {at} [MQTT-4.7.1-1]")]
    WildcardInName {
        /// The wildcard character.
        wildcard: char,
        /// Its byte offset.
        at: usize,
    },
    /// `#` that is not alone in the last level of a filter.
    #[error("'#' at byte {at} must be the whole last level of a filter [MQTT-4.7.1-2]")]
    MisplacedMultiLevel {
        /// Its byte offset.
        at: usize,
    },
    /// `+` that does not occupy a whole level of a filter.
    #[error("'+' at byte {at} must occupy a whole level of a filter [MQTT-4.7.1-3]")]
    MisplacedSingleLevel {
        /// Its byte offset.
        at: usize,
    },
}

impl TopicName {
    /// Validates `s` as a topic name.
    pub fn new(s: &str) -> Result<Self, TopicError> {
        Self::from_string(MqttString::new(s)?)
    }

    /// Validates bytes (e.g. a slice of a received packet) as a topic name, without copying.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, TopicError> {
        // The decoder's hot path: one vectorised pass for the usual ASCII name.
        if Self::is_plain(&bytes) {
            return Ok(Self::from_plain(bytes));
        }
        Self::from_string(MqttString::from_bytes(bytes)?)
    }

    /// True when `bytes` is a valid topic name of the common kind: non-empty plain ASCII
    /// without U+0000, `+` or `#`. False means "check precisely", not "invalid".
    #[inline]
    pub(crate) fn is_plain(bytes: &[u8]) -> bool {
        !bytes.is_empty() && crate::text::plain_ascii_without(bytes, b'+', b'#')
    }

    /// Wraps bytes that [`TopicName::is_plain`] accepted.
    #[inline]
    pub(crate) fn from_plain(bytes: Bytes) -> Self {
        debug_assert!(Self::is_plain(&bytes));
        Self(MqttString::from_checked(bytes))
    }

    /// The empty topic of an MQTT 5 PUBLISH that names its topic by a Topic Alias only
    /// [MQTT-3.3.2-1]; the codec refuses it anywhere else.
    pub(crate) fn empty_for_alias() -> Self {
        Self(MqttString::default())
    }

    /// Validates an already valid MQTT string as a topic name.
    pub fn from_string(s: MqttString) -> Result<Self, TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        if let Some(at) = s.as_bytes().iter().position(|&b| b == b'+' || b == b'#') {
            let wildcard = char::from(s.as_bytes()[at]);
            return Err(TopicError::WildcardInName { wildcard, at });
        }
        Ok(Self(s))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as an [`MqttString`].
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// True for names starting with `$` (e.g. `$SYS/...`), which wildcard-led filters do not
    /// match [MQTT-4.7.2-1].
    pub fn is_system(&self) -> bool {
        self.0.as_bytes().first() == Some(&b'$')
    }
}

impl TopicFilter {
    /// Validates `s` as a topic filter.
    pub fn new(s: &str) -> Result<Self, TopicError> {
        Self::from_string(MqttString::new(s)?)
    }

    /// Validates bytes (e.g. a slice of a received packet) as a topic filter, without copying.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, TopicError> {
        Self::from_string(MqttString::from_bytes(bytes)?)
    }

    /// Validates an already valid MQTT string as a topic filter.
    pub fn from_string(s: MqttString) -> Result<Self, TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        let bytes = s.as_bytes();
        let mut level_start = 0;
        for (at, &b) in bytes.iter().enumerate() {
            match b {
                b'/' => level_start = at + 1,
                b'#' => {
                    let alone = at == level_start && at + 1 == bytes.len();
                    if !alone {
                        return Err(TopicError::MisplacedMultiLevel { at });
                    }
                }
                b'+' => {
                    let ends_level = at + 1 == bytes.len() || bytes[at + 1] == b'/';
                    if at != level_start || !ends_level {
                        return Err(TopicError::MisplacedSingleLevel { at });
                    }
                }
                _ => {}
            }
        }
        Ok(Self(s))
    }

    /// The filter.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The filter as an [`MqttString`].
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// True when the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.0.as_bytes().iter().any(|&b| b == b'+' || b == b'#')
    }

    /// Whether a message published to `name` matches this filter.
    ///
    /// `+` matches exactly one level (possibly empty), `#` matches the parent level and any
    /// number of child levels, and a filter starting with a wildcard does not match a name
    /// starting with `$` [MQTT-4.7.2-1].
    pub fn matches(&self, name: &TopicName) -> bool {
        matches(self, name)
    }
}

/// Whether a message published to `name` matches `filter` (see [`TopicFilter::matches`]).
pub fn matches(filter: &TopicFilter, name: &TopicName) -> bool {
    let f = filter.as_str();
    if name.is_system() && (f.starts_with('+') || f.starts_with('#')) {
        return false;
    }
    let mut names = name.as_str().split('/');
    for level in f.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if names.next().is_none() {
                    return false;
                }
            }
            exact => {
                if names.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    names.next().is_none()
}

macro_rules! topic_common_impls {
    ($ty:ident) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = TopicError;
            fn from_str(s: &str) -> Result<Self, TopicError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = TopicError;
            fn try_from(s: &str) -> Result<Self, TopicError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = TopicError;
            fn try_from(s: String) -> Result<Self, TopicError> {
                Self::from_string(MqttString::try_from(s)?)
            }
        }
    };
}
topic_common_impls!(TopicName);
topic_common_impls!(TopicFilter);

#[cfg(test)]
mod tests {
    use super::*;

    fn m(filter: &str, name: &str) -> bool {
        TopicFilter::new(filter)
            .unwrap()
            .matches(&TopicName::new(name).unwrap())
    }

    #[test]
    fn names_refuse_wildcards_and_empty() {
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(
            TopicName::new("a/+"),
            Err(TopicError::WildcardInName {
                wildcard: '+',
                at: 2
            })
        );
        assert_eq!(
            TopicName::new("#"),
            Err(TopicError::WildcardInName {
                wildcard: '#',
                at: 0
            })
        );
        assert!(TopicName::new("/").is_ok());
        assert!(TopicName::new("sport/tennis/player1").is_ok());
    }

    #[test]
    fn filters_follow_wildcard_placement_rules() {
        for ok in [
            "#",
            "+",
            "+/+",
            "/+",
            "sport/#",
            "sport/+/player1",
            "+/tennis/#",
            "/",
        ] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok} should be valid");
        }
        assert_eq!(
            TopicFilter::new("sport/tennis#"),
            Err(TopicError::MisplacedMultiLevel { at: 12 })
        );
        assert_eq!(
            TopicFilter::new("sport/#/ranking"),
            Err(TopicError::MisplacedMultiLevel { at: 6 })
        );
        assert_eq!(
            TopicFilter::new("sport+"),
            Err(TopicError::MisplacedSingleLevel { at: 5 })
        );
        assert_eq!(
            TopicFilter::new("a/+b"),
            Err(TopicError::MisplacedSingleLevel { at: 2 })
        );
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    }

    #[test]
    fn matching_follows_the_spec_examples() {
        assert!(m("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(m("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
        assert!(m(
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon"
        ));
        assert!(m("sport/#", "sport"));
        assert!(m("#", "a/b/c"));
        assert!(m("sport/tennis/+", "sport/tennis/player1"));
        assert!(!m("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!m("sport/+", "sport"));
        assert!(m("sport/+", "sport/"));
        assert!(m("+/+", "/finance"));
        assert!(m("/+", "/finance"));
        assert!(!m("+", "/finance"));
        assert!(!m("a/b", "a/b/c"));
        assert!(!m("a/b/c", "a/b"));
    }

    #[test]
    fn dollar_topics_do_not_match_leading_wildcards() {
        assert!(!m("#", "$SYS/broker/uptime"));
        assert!(!m("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(m("$SYS/#", "$SYS/broker/uptime"));
        assert!(m("$SYS/monitor/+", "$SYS/monitor/Clients"));
    }
}
