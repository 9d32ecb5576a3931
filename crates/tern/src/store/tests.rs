//! The log format: round trips, torn tails at every length, CRC mismatches, corruption,
//! compaction and crashes in the middle of it, locking.

use std::fs;
use std::io::Write;

use bytes::Bytes;
use tern_proto::session::{PersistOp, Snapshot};
use tern_proto::{MqttString, PacketId, Publish, PublishProperties, QosPid, TopicName};

use super::{LOG, SessionStore, StoreError, TMP};

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn publish_op(n: u16, seq: u64, payload: &str) -> PersistOp {
    let publish = Publish {
        dup: false,
        qos_pid: if n.is_multiple_of(2) {
            QosPid::AtLeastOnce(id(n))
        } else {
            QosPid::ExactlyOnce(id(n))
        },
        retain: n.is_multiple_of(3),
        topic: TopicName::new("t/persist").unwrap(),
        payload: Bytes::from(payload.to_owned()),
    };
    // Every third one carries MQTT 5 properties (its own record kind).
    let properties = n.is_multiple_of(3).then(|| {
        Box::new(PublishProperties {
            content_type: Some(MqttString::new("text/plain").unwrap()),
            correlation_data: Some(Bytes::from_static(b"\x00corr")),
            message_expiry_interval: Some(60),
            user_properties: vec![
                (
                    MqttString::new("k").unwrap(),
                    MqttString::new("v1").unwrap(),
                ),
                (
                    MqttString::new("k").unwrap(),
                    MqttString::new("v2").unwrap(),
                ),
            ],
            ..Default::default()
        })
    });
    PersistOp::Publish {
        seq,
        publish,
        properties,
    }
}

/// A batch touching every record kind.
fn mixed_ops() -> Vec<PersistOp> {
    vec![
        publish_op(1, 0, "one"),
        publish_op(2, 1, "two"),
        publish_op(3, 2, "three"),
        PersistOp::PubRel { seq: 0, id: id(1) },
        PersistOp::Done(id(2)),
        PersistOp::Received(id(7)),
        PersistOp::Received(id(8)),
        PersistOp::Released(id(7)),
    ]
}

fn replay(ops: &[PersistOp]) -> Snapshot {
    let mut s = Snapshot::new();
    for op in ops {
        s.apply(op.clone());
    }
    s
}

#[test]
fn a_new_store_is_empty_and_reopens_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), "c").unwrap();
    assert!(store.snapshot().is_empty());
    drop(store);
    let store = SessionStore::open(dir.path(), "c").unwrap();
    assert!(store.snapshot().is_empty());
    assert!(!dir.path().join(TMP).exists());
}

#[test]
fn every_record_kind_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    store.append(mixed_ops()).unwrap();
    store
        .append([PersistOp::ForgetIncoming, publish_op(9, 3, "nine")])
        .unwrap();
    let expected = store.snapshot().clone();
    drop(store);
    let store = SessionStore::open(dir.path(), "c").unwrap();
    assert_eq!(store.snapshot(), &expected);
    assert_eq!(store.snapshot().outgoing().len(), 3);
    assert_eq!(store.snapshot().incoming().count(), 0);

    let mut store = store;
    store.append([PersistOp::Clear]).unwrap();
    drop(store);
    assert!(
        SessionStore::open(dir.path(), "c")
            .unwrap()
            .snapshot()
            .is_empty()
    );
}

#[test]
fn a_log_cut_at_every_length_recovers_the_whole_records_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let ops = mixed_ops();
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    let header_len = store.log_len();
    // One record per batch, noting where each ends.
    let mut ends = Vec::new();
    for op in &ops {
        store.append([op.clone()]).unwrap();
        ends.push(store.log_len());
    }
    drop(store);
    let full = fs::read(dir.path().join(LOG)).unwrap();
    for cut in header_len..=full.len() as u64 {
        fs::write(dir.path().join(LOG), &full[..cut as usize]).unwrap();
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        let store =
            SessionStore::open(dir.path(), "c").unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(store.snapshot(), &replay(&ops[..whole]), "cut at {cut}");
        let valid = if whole == 0 {
            header_len
        } else {
            ends[whole - 1]
        };
        assert_eq!(store.log_len(), valid, "torn tail cut off (cut at {cut})");
        assert_eq!(fs::metadata(dir.path().join(LOG)).unwrap().len(), valid);
    }
}

#[test]
fn appends_after_a_torn_tail_are_recovered_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    store.append([publish_op(1, 0, "kept")]).unwrap();
    drop(store);
    // Half a record: the length says 100 bytes, 3 follow.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(LOG))
        .unwrap();
    f.write_all(&[100, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9]).unwrap();
    drop(f);
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    store.append([publish_op(2, 1, "after")]).unwrap();
    drop(store);
    let store = SessionStore::open(dir.path(), "c").unwrap();
    assert_eq!(
        store.snapshot(),
        &replay(&[publish_op(1, 0, "kept"), publish_op(2, 1, "after")])
    );
}

#[test]
fn a_crc_mismatch_ends_recovery_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    store.append([publish_op(1, 0, "good")]).unwrap();
    let before_bad = store.log_len();
    store.append([publish_op(2, 1, "flipped")]).unwrap();
    store.append([PersistOp::Received(id(5))]).unwrap();
    drop(store);
    let path = dir.path().join(LOG);
    let mut bytes = fs::read(&path).unwrap();
    // A payload byte of the second record.
    let at = before_bad as usize + 20;
    bytes[at] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let store = SessionStore::open(dir.path(), "c").unwrap();
    assert_eq!(store.snapshot(), &replay(&[publish_op(1, 0, "good")]));
    assert_eq!(store.log_len(), before_bad);
}

#[test]
fn a_record_with_a_valid_crc_but_bad_content_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    drop(SessionStore::open(dir.path(), "c").unwrap());
    let path = dir.path().join(LOG);
    let mut bytes = fs::read(&path).unwrap();
    let body = [42u8, 1, 2];
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    fs::write(&path, &bytes).unwrap();
    let err = SessionStore::open(dir.path(), "c").unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { reason, .. } if reason.contains("unknown record kind 42")),
        "{err}"
    );
    // Nothing was cut off: the file is left for inspection.
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(LOG), b"hello world, not a log").unwrap();
    let err = SessionStore::open(dir.path(), "c").unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { offset: 0, .. }),
        "{err}"
    );
}

#[test]
fn a_store_of_another_client_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SessionStore::open(dir.path(), "alice").unwrap());
    let err = SessionStore::open(dir.path(), "bob").unwrap_err();
    assert!(
        matches!(&err, StoreError::ForeignClient { stored, expected, .. } if stored == "alice" && expected == "bob"),
        "{err}"
    );
}

#[test]
fn a_store_open_elsewhere_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = SessionStore::open(dir.path(), "c").unwrap();
    let err = SessionStore::open(dir.path(), "c").unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    drop(first);
    SessionStore::open(dir.path(), "c").unwrap();
}

#[test]
fn compaction_keeps_the_log_proportional_to_the_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    store.compact_min = 4096;
    let mut seq = 0;
    let mut max_len = 0;
    // 2,000 flows, 4 in flight at a time: without compaction the log would hold them all.
    for round in 0..500u16 {
        let mut batch = Vec::new();
        for k in 0..4u16 {
            let n = (round * 4 + k) % 1000 + 1;
            batch.push(publish_op(n, seq, &"x".repeat(64)));
            seq += 1;
        }
        store.append(batch.clone()).unwrap();
        let done: Vec<PersistOp> = batch
            .iter()
            .map(|op| match op {
                PersistOp::Publish { publish, .. } => PersistOp::Done(publish.packet_id().unwrap()),
                _ => unreachable!(),
            })
            .collect();
        // Leave the last round in flight.
        if round < 499 {
            store.append(done).unwrap();
        }
        max_len = max_len.max(store.log_len());
    }
    assert!(max_len <= 3 * 4096, "log grew to {max_len} bytes");
    let expected = store.snapshot().clone();
    assert_eq!(expected.outgoing().len(), 4);
    drop(store);
    assert_eq!(
        SessionStore::open(dir.path(), "c").unwrap().snapshot(),
        &expected
    );
}

#[test]
fn a_crash_before_the_compaction_rename_leaves_the_old_log_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    store.append(mixed_ops()).unwrap();
    let expected = store.snapshot().clone();
    drop(store);
    // A half-written temporary file, and then a complete one that was never renamed
    // (holding a different state): the log decides either way.
    fs::write(dir.path().join(TMP), b"TERNSES\x01\x10\x00").unwrap();
    let store = SessionStore::open(dir.path(), "c").unwrap();
    assert_eq!(store.snapshot(), &expected);
    assert!(!dir.path().join(TMP).exists(), "the leftover was removed");
    drop(store);

    let other = tempfile::tempdir().unwrap();
    let mut s2 = SessionStore::open(other.path(), "c").unwrap();
    s2.append([publish_op(40, 0, "other")]).unwrap();
    drop(s2);
    fs::copy(other.path().join(LOG), dir.path().join(TMP)).unwrap();
    let store = SessionStore::open(dir.path(), "c").unwrap();
    assert_eq!(store.snapshot(), &expected);
}

#[test]
fn a_crash_after_the_compaction_rename_finds_the_compacted_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    store.append(mixed_ops()).unwrap();
    let before = store.log_len();
    store.compact().unwrap();
    assert!(
        store.log_len() < before,
        "compaction dropped completed flows"
    );
    store.append([PersistOp::Received(id(9))]).unwrap();
    let expected = store.snapshot().clone();
    // A crash: the store is never closed properly (drop releases only the lock).
    std::mem::forget(store);
    let dir2 = dir.path().to_path_buf();
    // The lock died with the "process": simulate by opening from a copy of the directory.
    let copy = tempfile::tempdir().unwrap();
    fs::copy(dir2.join(LOG), copy.path().join(LOG)).unwrap();
    assert_eq!(
        SessionStore::open(copy.path(), "c").unwrap().snapshot(),
        &expected
    );
}

#[test]
fn clear_rewrites_the_log_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SessionStore::open(dir.path(), "c").unwrap();
    store.append(mixed_ops()).unwrap();
    store.clear().unwrap();
    assert!(store.snapshot().is_empty());
    drop(store);
    assert!(
        SessionStore::open(dir.path(), "c")
            .unwrap()
            .snapshot()
            .is_empty()
    );
}
