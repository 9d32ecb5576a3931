//! Wall-clock stamps for `-F` (`%I`, `%U`, `%j`, `@X`): local time through libc's
//! `localtime_r` and `strftime`, so `@X` means exactly what `strftime(3)`'s `%X` means here, as
//! in mosquitto_sub.

use std::ffi::CString;
use std::time::{SystemTime, UNIX_EPOCH};

/// One instant, broken down in the local time zone.
pub(crate) struct Stamp {
    /// Seconds since the Unix epoch.
    pub(crate) secs: i64,
    /// Nanoseconds within the second.
    pub(crate) nanos: u32,
    tm: libc::tm,
}

impl Stamp {
    /// Now.
    pub(crate) fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        Self::at(secs, since.subsec_nanos())
    }

    /// The given instant.
    pub(crate) fn at(secs: i64, nanos: u32) -> Self {
        let t = secs as libc::time_t;
        // SAFETY: an all-zero `tm` is a valid value (integers and, on glibc, a null zone name).
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; localtime_r is the reentrant variant
        // and only writes `tm`. On failure `tm` stays zeroed, which strftime accepts.
        unsafe {
            libc::localtime_r(&t, &mut tm);
        }
        Self { secs, nanos, tm }
    }

    /// `strftime(format)`; empty when the result would exceed 256 bytes or the format holds
    /// a NUL.
    pub(crate) fn strftime(&self, format: &str) -> Vec<u8> {
        let Ok(fmt) = CString::new(format) else {
            return Vec::new();
        };
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is writable for its length, `fmt` is NUL-terminated, `tm` came from
        // localtime_r. strftime writes at most `buf.len()` bytes and returns how many (0 when
        // they would not fit).
        let n =
            unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &self.tm) };
        buf[..n.min(buf.len())].to_vec()
    }

    /// ISO 8601 with the zone offset, as mosquitto's `%I`: `2016-08-10T09:47:38+0100`.
    pub(crate) fn iso8601(&self) -> Vec<u8> {
        self.strftime("%Y-%m-%dT%H:%M:%S%z")
    }

    /// ISO 8601 with microseconds, a `Z` and the zone offset, for `%j`'s `tst`, exactly as
    /// mosquitto_sub 2.0 writes it: `2016-08-10T09:47:38.123456Z+0100`.
    pub(crate) fn iso8601_micros(&self) -> Vec<u8> {
        let mut out = self.strftime("%Y-%m-%dT%H:%M:%S");
        out.extend_from_slice(format!(".{:06}Z", self.nanos / 1000).as_bytes());
        out.extend_from_slice(&self.strftime("%z"));
        out
    }

    /// `%U`: seconds and nanoseconds, `1470818943.786368637`.
    pub(crate) fn unix(&self) -> Vec<u8> {
        format!("{}.{:09}", self.secs, self.nanos).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_render_in_the_documented_shapes() {
        let s = Stamp::at(1_470_818_943, 786_368_637);
        assert_eq!(s.unix(), b"1470818943.786368637");
        let iso = String::from_utf8(s.iso8601()).unwrap();
        // Zone-dependent, so check the shape: date T time then a +hhmm/-hhmm offset.
        assert_eq!(iso.len(), "2016-08-10T09:47:38+0100".len(), "{iso}");
        assert_eq!(&iso[10..11], "T");
        assert!(iso[19..].starts_with(['+', '-']), "{iso}");
        let micros = String::from_utf8(s.iso8601_micros()).unwrap();
        assert_eq!(&micros[19..27], ".786368Z", "{micros}");
        assert_eq!(s.strftime("%Y"), &iso.as_bytes()[..4]);
    }
}
