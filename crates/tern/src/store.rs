//! A file-backed session store: what a client with clean session off must not forget when its
//! process dies (see [`tern_proto::session::PersistOp`]), kept in an append-only log.
//!
//! Set it with [`ConnectOptions::session_store`](crate::ConnectOptions::session_store); the
//! driver opens it at the first `connect`, restores the session from it, and makes every
//! batch of store ops durable (one `fsync` per batch) before it sends the packets or hands
//! out the events they protect. Opening and every batch run on tokio's blocking pool: the
//! client waits for its own batch (write-ahead), the runtime's thread does not, so other
//! clients and timers on it carry on while the disk is slow.
//!
//! # Format
//!
//! A directory per client holds `session.log` (and, briefly, `session.log.tmp` and a `lock`
//! file). The log is the 8-byte magic `TERNSES` 0x01, then records:
//!
//! ```text
//! length: u32 LE | crc32: u32 LE (of body) | body: kind u8, fields
//!   0 header    client id (UTF-8), always the first record
//!   1 publish   seq u64 LE, the PUBLISH packet as on the wire (DUP clear)
//!   2 pubrel    seq u64 LE, packet id u16 BE
//!   3 done      packet id u16 BE
//!   4 received  packet id u16 BE
//!   5 released  packet id u16 BE
//!   6 forget incoming
//!   7 clear
//! ```
//!
//! # Crash safety
//!
//! - Each batch is written at the end of the log and `fdatasync`ed before anything it
//!   protects leaves the process. A crash mid-batch leaves a torn tail: a short record or a
//!   CRC mismatch. Recovery replays records up to the first such one and truncates the rest.
//!   That loses only ops of the unsynced batch: a batch is written only after the previous
//!   one was synced, so no synced record can follow a torn one. A record whose CRC matches
//!   but whose content cannot be decoded is not a torn write: opening fails with
//!   [`StoreError::Corrupt`] instead of silently dropping state.
//! - Compaction (when the log reaches twice its size after the last compaction, and at
//!   least 1 MiB) writes the live state to `session.log.tmp`, `fsync`s it, renames it over
//!   `session.log` and `fsync`s the directory. A crash before the rename leaves the old log
//!   (the temporary file is deleted at the next open); after it, the new one; both are
//!   complete.
//! - A `lock` file, locked while the store is open, keeps two clients off one store.
//!
//! Why a log of our own rather than an embedded database (redb, sled): the state is a few
//! hundred records that change in order and are read back only once, at start-up; an
//! append-only log makes each batch one `write` + one `fdatasync`, the format is a page of
//! documentation, and it adds one tiny dependency (crc32fast) instead of a storage engine.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tern_proto::packet::{ProtocolLevel, PublishV5};
use tern_proto::{Decoder, Packet, PacketId};

pub use tern_proto::Session;
/// The sans-IO session types [`SessionStore`]'s methods take and return, re-exported so a
/// caller driving a store by hand needs no `tern-proto` dependency.
pub use tern_proto::session::{PersistOp, Snapshot};

/// First bytes of every log: name and format version.
const MAGIC: &[u8; 8] = b"TERNSES\x01";
const LOG: &str = "session.log";
const TMP: &str = "session.log.tmp";
const LOCK: &str = "lock";
/// Bytes before a record's body: length and CRC.
const RECORD_HEADER: usize = 8;
/// Largest body: kind, seq, and the largest PUBLISH (5-byte fixed header + 268,435,455).
const MAX_BODY: usize = 1 + 8 + 5 + 268_435_455;
/// The log is compacted when it reaches twice its size after the last compaction, but not
/// below this: small logs are cheap to replay, and rewriting them often costs fsyncs.
const COMPACT_MIN: u64 = 1 << 20;

const KIND_HEADER: u8 = 0;
const KIND_PUBLISH: u8 = 1;
const KIND_PUBREL: u8 = 2;
const KIND_DONE: u8 = 3;
const KIND_RECEIVED: u8 = 4;
const KIND_RELEASED: u8 = 5;
const KIND_FORGET_INCOMING: u8 = 6;
const KIND_CLEAR: u8 = 7;
/// A QoS 1/2 PUBLISH with its MQTT 5 properties (encoded at level 5).
const KIND_PUBLISH_V5: u8 = 8;

/// Opening a session store failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system refused.
    #[error("session store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another client (in this or another process) has the store open.
    #[error("session store {path} is in use by another client")]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The log holds something this version cannot read (not a torn write: those are
    /// recovered from silently).
    #[error("session store {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The store belongs to another client id: its packet ids mean nothing to this one.
    #[error("session store {path} belongs to client id {stored:?}, not {expected:?}")]
    ForeignClient {
        /// The store directory.
        path: PathBuf,
        /// The client id in the store.
        stored: String,
        /// The client id of this client.
        expected: String,
    },
}

/// Called before each `fdatasync` of a batch: a test's way to make the store slow.
/// Not part of the API.
#[doc(hidden)]
#[derive(Clone)]
pub struct SyncHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for SyncHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncHook")
    }
}

/// An open session store: the recovered [`Snapshot`], kept up to date, and the log.
///
/// Its methods do blocking file IO (`open`, and a write and an `fdatasync` per batch); the
/// client's driver runs them on tokio's blocking pool, never on the runtime's threads.
#[derive(Debug)]
pub struct SessionStore {
    dir: PathBuf,
    client_id: String,
    log: File,
    /// Held (and locked) while the store is open.
    _lock: File,
    snapshot: Snapshot,
    /// Bytes of the log that are valid and synced; the next batch goes here.
    len: u64,
    /// Log size right after the last compaction (or open).
    base_len: u64,
    compact_min: u64,
    /// Ops pulled from the session and not yet durable (kept across a failed write, so
    /// they are retried before anything they protect is sent).
    pending: Vec<PersistOp>,
    buf: Vec<u8>,
    /// A compaction renamed the log but could not sync the directory: the next batch
    /// syncs it before counting as durable.
    dir_unsynced: bool,
    sync_hook: Option<SyncHook>,
}

impl SessionStore {
    /// Opens (creating if needed) the store in directory `dir` for `client_id`, recovering
    /// from a crash: a torn tail is cut off, a half-written compaction discarded.
    pub fn open(dir: impl AsRef<Path>, client_id: &str) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path: dir }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let tmp = dir.join(TMP);
        match fs::remove_file(&tmp) {
            Ok(()) => tracing::debug!(path = %tmp.display(), "removed a half-written compaction"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&tmp)(e)),
        }
        let log_path = dir.join(LOG);
        let bytes = match fs::read(&log_path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&log_path)(e)),
        };
        let Some(bytes) = bytes else {
            // A new store: written like a compaction, so the log never exists half-made.
            let (log, len, dir_synced) =
                write_log(&dir, client_id, &Snapshot::new()).map_err(io_err(&dir))?;
            dir_synced.map_err(io_err(&dir))?;
            return Ok(Self::new(dir, client_id, log, Snapshot::new(), len, lock));
        };
        let recovered = recover(&bytes).map_err(|(offset, reason)| StoreError::Corrupt {
            path: log_path.clone(),
            offset,
            reason,
        })?;
        if recovered.client_id != client_id {
            return Err(StoreError::ForeignClient {
                path: dir,
                stored: recovered.client_id,
                expected: client_id.to_owned(),
            });
        }
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let valid = recovered.valid_len as u64;
        if recovered.valid_len < bytes.len() {
            tracing::warn!(
                path = %log_path.display(),
                dropped = bytes.len() - recovered.valid_len,
                "session store: cut off a torn tail (a crash during a write)"
            );
            log.set_len(valid).map_err(io_err(&log_path))?;
            log.sync_all().map_err(io_err(&log_path))?;
        }
        log.seek(SeekFrom::Start(valid))
            .map_err(io_err(&log_path))?;
        Ok(Self::new(
            dir,
            client_id,
            log,
            recovered.snapshot,
            valid,
            lock,
        ))
    }

    fn new(
        dir: PathBuf,
        client_id: &str,
        log: File,
        snapshot: Snapshot,
        len: u64,
        lock: File,
    ) -> Self {
        Self {
            dir,
            client_id: client_id.to_owned(),
            log,
            _lock: lock,
            snapshot,
            len,
            base_len: len,
            compact_min: COMPACT_MIN,
            pending: Vec::new(),
            buf: Vec::new(),
            dir_unsynced: false,
            sync_hook: None,
        }
    }

    /// Runs `hook` before every batch's `fdatasync` (tests: a slow disk). Not part of the API.
    #[doc(hidden)]
    pub fn set_sync_hook(&mut self, hook: Option<SyncHook>) {
        self.sync_hook = hook;
    }

    /// The state the store holds (recovered at open, plus every batch written since).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Current size of the log in bytes.
    pub fn log_len(&self) -> u64 {
        self.len
    }

    /// Pulls every op from `session` and makes them durable: one write, one `fdatasync`.
    /// On error nothing pulled is lost: the ops are retried first by the next call, and
    /// the caller must not transmit or deliver anything meanwhile.
    pub fn persist(&mut self, session: &mut Session) -> io::Result<()> {
        self.pull(session);
        self.flush()
    }

    /// Pulls every op from `session` into the next batch, without IO; returns whether a
    /// batch waits for [`flush`](Self::flush). Once pulled, the session transmits and hands
    /// out events again: the caller must not poll it for either until `flush` succeeded.
    pub fn pull(&mut self, session: &mut Session) -> bool {
        while let Some(op) = session.poll_persist() {
            self.pending.push(op);
        }
        !self.pending.is_empty()
    }

    /// Whether pulled ops wait for [`flush`](Self::flush) (a write failed, or none ran yet).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes the pulled ops durable (one write, one `fdatasync`; nothing when none wait).
    /// On error the ops stay pulled and are retried first by the next call.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_pending()
    }

    /// Makes `ops` durable, after any left from a failed write (one `fdatasync`).
    pub fn append(&mut self, ops: impl IntoIterator<Item = PersistOp>) -> io::Result<()> {
        self.pending.extend(ops);
        self.write_pending()
    }

    /// Forgets everything (clean session): the log is rewritten empty.
    pub fn clear(&mut self) -> io::Result<()> {
        self.pending.clear();
        self.snapshot = Snapshot::new();
        self.compact()
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for op in &self.pending {
            encode_op(op, &mut self.buf);
        }
        let hook = self.sync_hook.as_ref();
        let mut result = self.log.write_all(&self.buf).and_then(|()| {
            if let Some(SyncHook(hook)) = hook {
                hook();
            }
            self.log.sync_data()
        });
        if result.is_ok() && self.dir_unsynced {
            result = sync_dir(&self.dir);
            self.dir_unsynced = result.is_err();
        }
        if let Err(e) = result {
            // Put the end back where the last good batch ended, so the next batch does not
            // follow a torn record (best effort: recovery would cut it off anyway).
            let _ = self.log.set_len(self.len);
            let _ = self.log.seek(SeekFrom::Start(self.len));
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        for op in self.pending.drain(..) {
            self.snapshot.apply(op);
        }
        if self.len >= self.compact_min.max(self.base_len.saturating_mul(2))
            && let Err(e) = self.compact()
        {
            // The batch is durable (in the old log, still whole, or in the renamed new one).
            tracing::warn!(error = %e, dir = %self.dir.display(), "session store compaction failed");
        }
        Ok(())
    }

    /// Rewrites the log as the current snapshot (temporary file, fsync, rename, fsync dir).
    pub fn compact(&mut self) -> io::Result<()> {
        let (log, len, dir_synced) = write_log(&self.dir, &self.client_id, &self.snapshot)?;
        // Renamed: the old file is gone from the directory, so write to the new one even
        // if the directory sync failed (retried before the next batch counts as durable).
        self.log = log;
        self.len = len;
        self.base_len = len;
        self.dir_unsynced = dir_synced.is_err();
        dir_synced
    }
}

/// Writes a complete log holding `snapshot` to the temporary file, syncs it, renames it over
/// the log and syncs the directory. Returns the open log, positioned at its end, its length,
/// and the outcome of the directory sync (the rename happened either way).
fn write_log(
    dir: &Path,
    client_id: &str,
    snapshot: &Snapshot,
) -> io::Result<(File, u64, io::Result<()>)> {
    let tmp = dir.join(TMP);
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(MAGIC);
    let mut body = vec![KIND_HEADER];
    body.extend_from_slice(client_id.as_bytes());
    push_record(&body, &mut buf);
    for op in snapshot.ops() {
        encode_op(&op, &mut buf);
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(&buf)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(LOG))?;
    Ok((file, buf.len() as u64, sync_dir(dir)))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn push_record(body: &[u8], out: &mut Vec<u8>) {
    // A body never exceeds MAX_BODY (< 4 GiB): PUBLISH size is bounded by the protocol.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// Appends `op` as one record.
fn encode_op(op: &PersistOp, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    match op {
        PersistOp::Publish {
            seq,
            publish,
            properties,
        } => {
            // A PUBLISH with MQTT 5 properties is kept as a level 5 packet.
            let (kind, level, packet) = match properties {
                Some(p) => (
                    KIND_PUBLISH_V5,
                    ProtocolLevel::V5,
                    Packet::PublishV5(Box::new(PublishV5 {
                        publish: publish.clone(),
                        properties: (**p).clone(),
                    })),
                ),
                None => (
                    KIND_PUBLISH,
                    ProtocolLevel::V3_1_1,
                    Packet::Publish(publish.clone()),
                ),
            };
            out.push(kind);
            out.extend_from_slice(&seq.to_le_bytes());
            let mut bytes = BytesMut::new();
            // The session encoded this PUBLISH's size and topic when it was queued; a
            // failure here would be a bug, and an empty body fails recovery loudly.
            if packet.encode_for(level, &mut bytes).is_ok() {
                out.extend_from_slice(&bytes);
            }
        }
        PersistOp::PubRel { seq, id } => {
            out.push(KIND_PUBREL);
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&id.get().to_be_bytes());
        }
        PersistOp::Done(id) => id_record(KIND_DONE, *id, out),
        PersistOp::Received(id) => id_record(KIND_RECEIVED, *id, out),
        PersistOp::Released(id) => id_record(KIND_RELEASED, *id, out),
        PersistOp::ForgetIncoming => out.push(KIND_FORGET_INCOMING),
        PersistOp::Clear => out.push(KIND_CLEAR),
        // A newer session op this store does not know: refuse to lose it silently.
        other => {
            tracing::error!(op = ?other, "session store: unknown op, not stored");
            out.truncate(start);
            return;
        }
    }
    let body = &out[start + RECORD_HEADER..];
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn id_record(kind: u8, id: PacketId, out: &mut Vec<u8>) {
    out.push(kind);
    out.extend_from_slice(&id.get().to_be_bytes());
}

/// What the log held.
struct Recovered {
    client_id: String,
    snapshot: Snapshot,
    /// Bytes up to the end of the last whole, CRC-valid record.
    valid_len: usize,
}

/// Replays a log. `Err((offset, reason))` for content that is not a torn write.
fn recover(bytes: &[u8]) -> Result<Recovered, (u64, String)> {
    if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err((0, "not a tern session store (bad magic)".into()));
    }
    let mut pos = MAGIC.len();
    let mut client_id = None;
    let mut snapshot = Snapshot::new();
    loop {
        let rest = &bytes[pos..];
        if rest.len() < RECORD_HEADER {
            break;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > MAX_BODY || rest.len() - RECORD_HEADER < len {
            break;
        }
        let body = &rest[RECORD_HEADER..RECORD_HEADER + len];
        if crc32fast::hash(body) != crc {
            break;
        }
        let at = pos as u64;
        match decode_body(body).map_err(|reason| (at, reason))? {
            Record::Header(id) if client_id.is_none() => client_id = Some(id),
            Record::Header(_) => return Err((at, "a second header record".into())),
            Record::Op(_) if client_id.is_none() => {
                return Err((at, "the first record is not the header".into()));
            }
            Record::Op(op) => snapshot.apply(op),
        }
        pos += RECORD_HEADER + len;
    }
    let Some(client_id) = client_id else {
        // Logs are created whole (temporary file + rename), header included.
        return Err((MAGIC.len() as u64, "no header record".into()));
    };
    Ok(Recovered {
        client_id,
        snapshot,
        valid_len: pos,
    })
}

enum Record {
    Header(String),
    Op(PersistOp),
}

fn decode_body(body: &[u8]) -> Result<Record, String> {
    let Some((&kind, mut rest)) = body.split_first() else {
        return Err("empty record".into());
    };
    let id = |rest: &[u8]| -> Result<PacketId, String> {
        match rest {
            [hi, lo] => PacketId::new(u16::from_be_bytes([*hi, *lo]))
                .ok_or_else(|| "packet id 0".to_string()),
            _ => Err(format!(
                "{} bytes where a packet id was expected",
                rest.len()
            )),
        }
    };
    let op = match kind {
        KIND_HEADER => {
            return String::from_utf8(rest.to_vec())
                .map(Record::Header)
                .map_err(|_| "client id is not UTF-8".into());
        }
        KIND_PUBLISH | KIND_PUBLISH_V5 => {
            let seq = take_seq(&mut rest)?;
            let mut packet = BytesMut::from(rest);
            let level = if kind == KIND_PUBLISH_V5 {
                ProtocolLevel::V5
            } else {
                ProtocolLevel::V3_1_1
            };
            let mut decoder = Decoder::new(level, usize::MAX);
            let (publish, properties) = match decoder.decode(&mut packet) {
                Ok(Some(Packet::Publish(publish))) => (Some(publish), None),
                Ok(Some(Packet::PublishV5(p))) => {
                    let PublishV5 {
                        publish,
                        properties,
                    } = *p;
                    (Some(publish), Some(Box::new(properties)))
                }
                Ok(_) => (None, None),
                Err(e) => return Err(format!("stored PUBLISH does not decode: {e}")),
            };
            match publish {
                Some(publish) if packet.is_empty() && publish.packet_id().is_some() => {
                    PersistOp::Publish {
                        seq,
                        publish,
                        properties,
                    }
                }
                _ => return Err("not a single QoS 1/2 PUBLISH".into()),
            }
        }
        KIND_PUBREL => {
            let seq = take_seq(&mut rest)?;
            PersistOp::PubRel { seq, id: id(rest)? }
        }
        KIND_DONE => PersistOp::Done(id(rest)?),
        KIND_RECEIVED => PersistOp::Received(id(rest)?),
        KIND_RELEASED => PersistOp::Released(id(rest)?),
        KIND_FORGET_INCOMING if rest.is_empty() => PersistOp::ForgetIncoming,
        KIND_CLEAR if rest.is_empty() => PersistOp::Clear,
        other => {
            return Err(format!(
                "unknown record kind {other} ({} bytes)",
                body.len()
            ));
        }
    };
    Ok(Record::Op(op))
}

fn take_seq(rest: &mut &[u8]) -> Result<u64, String> {
    if rest.len() < 8 {
        return Err("record too short for its sequence number".into());
    }
    Ok(rest.get_u64_le())
}

#[cfg(test)]
mod tests;
