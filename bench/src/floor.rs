//! The latency floor: the ping-pong round trip made by a plain blocking socket (`std::net`,
//! TCP_NODELAY, no runtime, no library): write the PUBLISH, read until it comes back. What a
//! client library adds to a round trip is its distance to this.
//!
//! Against a broker with Nagle's algorithm on, the broker's second write of an answer waits
//! for our ACK of its first, which a blocking reader with nothing to send delays by 40 ms:
//! there the floor sets `TCP_QUICKACK` after every read (one system call more per read, the
//! least any client needs to avoid the stall).
//!
//! The packets are written by hand (MQTT 3.1.1); the reader parses just enough to find the
//! echoed PUBLISH and acknowledge it at QoS 1, in the same write as the next PUBLISH.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::LatencyHist;
use crate::record::{Ctx, Record};
use crate::scenario::Scenario;

/// Runs `scenario` (latency only) with the blocking client.
pub fn run(ctx: &Ctx, scenario: Scenario) -> Record {
    let mut rec = Record::new("floor", &scenario.to_string());
    let result = match scenario {
        Scenario::Latency { qos, count, .. } => latency(ctx, qos, count).map(|h| h.fill(&mut rec)),
        _ => Err("the floor client runs the latency scenario only".to_owned()),
    };
    if let Err(e) = result {
        rec.error = Some(e);
    }
    rec
}

/// Appends MQTT's variable-length remaining length.
fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![first];
    put_len(&mut p, body.len());
    p.extend_from_slice(body);
    p
}

/// A blocking MQTT connection with a receive buffer.
struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    /// The next whole packet: its first byte and its body.
    fn next(&mut self, quickack: bool) -> Result<(u8, Vec<u8>), String> {
        loop {
            if let Some((first, body, used)) = parse(&self.buf[self.start..self.end])? {
                self.start += used;
                return Ok((first, body));
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.sock.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err("the broker closed the connection".to_owned()),
                Ok(n) => {
                    self.end += n;
                    if quickack {
                        quick_ack(&self.sock);
                    }
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.sock
            .write_all(bytes)
            .map_err(|e| format!("write: {e}"))
    }
}

/// ACKs what was read now instead of after the delayed-ACK timer (Linux clears the flag
/// again by itself, so it is set after every read).
fn quick_ack(sock: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a c_int option value.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// One packet from the front of `b`: first byte, body, bytes used; `None` if incomplete.
fn parse(b: &[u8]) -> Result<Option<(u8, Vec<u8>, usize)>, String> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let (mut len, mut shift, mut i) = (0usize, 0, 1);
    loop {
        let Some(&byte) = b.get(i) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err("malformed remaining length".to_owned());
        }
    }
    Ok(b.get(i..i + len)
        .map(|body| (first, body.to_vec(), i + len)))
}

fn latency(ctx: &Ctx, q: u8, count: u64) -> Result<LatencyHist, String> {
    let topic = ctx.topic("pp");
    let sock =
        TcpStream::connect((ctx.host.as_str(), ctx.port)).map_err(|e| format!("connect: {e}"))?;
    sock.set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    sock.set_read_timeout(Some(crate::IDLE))
        .map_err(|e| format!("timeout: {e}"))?;
    let mut c = Conn {
        sock,
        buf: vec![0; 4096],
        start: 0,
        end: 0,
    };
    // CONNECT, 3.1.1, clean session, keepalive 60 s.
    let mut body = Vec::new();
    put_str(&mut body, "MQTT");
    body.extend_from_slice(&[4, 0x02, 0, 60]);
    put_str(&mut body, &ctx.client_id("floor"));
    c.send(&packet(0x10, &body))?;
    let qa = ctx.broker_nagle;
    match c.next(qa)? {
        (0x20, b) if b.get(1) == Some(&0) => {}
        (t, b) => return Err(format!("expected CONNACK, got {t:#x} {b:?}")),
    }
    let mut body = vec![0, 1];
    put_str(&mut body, &topic);
    body.push(q);
    c.send(&packet(0x82, &body))?;
    match c.next(qa)? {
        (0x90, b) if b.get(2) == Some(&q) => {}
        (t, b) => {
            return Err(format!(
                "expected SUBACK granting QoS {q}, got {t:#x} {b:?}"
            ));
        }
    }

    let payload = [b'x'; 64];
    let mut hist = LatencyHist::new(ctx.broker_pid, count, ctx.latency_budget);
    let mut id: u16 = 1;
    // The PUBACK owed for the last echo, written with the next PUBLISH.
    let mut owed: Vec<u8> = Vec::with_capacity(4);
    let mut out = Vec::with_capacity(128);
    while hist.more() {
        out.clear();
        out.extend_from_slice(&owed);
        owed.clear();
        let mut body = Vec::with_capacity(80 + topic.len());
        put_str(&mut body, &topic);
        if q > 0 {
            id = id.checked_add(1).unwrap_or(1);
            body.extend_from_slice(&id.to_be_bytes());
        }
        body.extend_from_slice(&payload);
        out.extend_from_slice(&packet(0x30 | (q << 1), &body));
        let t = Instant::now();
        c.send(&out)?;
        loop {
            let (first, body) = c
                .next(qa)
                .map_err(|e| format!("round trip {}: {e}", hist.index()))?;
            match first >> 4 {
                3 => {
                    if (first >> 1) & 3 == 1 {
                        // Acknowledge the echo: [topic len][topic][id].
                        let tl = usize::from(u16::from_be_bytes([
                            *body.first().ok_or("short PUBLISH")?,
                            *body.get(1).ok_or("short PUBLISH")?,
                        ]));
                        let pid = body.get(2 + tl..4 + tl).ok_or("short PUBLISH")?;
                        owed.extend_from_slice(&[0x40, 2, pid[0], pid[1]]);
                    }
                    break;
                }
                4 => {} // PUBACK for our PUBLISH
                t => return Err(format!("unexpected packet type {t}")),
            }
        }
        hist.record(t.elapsed());
    }
    hist.finish();
    let _ = c.send(&[0xe0, 0]);
    std::thread::sleep(Duration::from_millis(10));
    Ok(hist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_round_trips() {
        for n in [0usize, 1, 127, 128, 16_383, 16_384, 2_097_151] {
            let mut p = vec![0x30];
            put_len(&mut p, n);
            p.resize(p.len() + n, 0);
            let (first, body, used) = parse(&p).expect("valid").expect("complete");
            assert_eq!((first, body.len(), used), (0x30, n, p.len()));
            assert!(parse(&p[..p.len() - 1]).expect("valid").is_none() || n == 0);
        }
    }
}
