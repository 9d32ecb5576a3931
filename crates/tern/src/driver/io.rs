//! Socket IO: one poll that writes the outbox, flushes, and hands what it reads to the
//! session. The hot path of every connection: a read goes straight into
//! `Session::handle_input`, and `Session::poll_transmit_max` encodes straight into the outbox
//! this writes.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tern_proto::Session;
use tern_proto::session::ProtocolError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::transport::BoxStream;

/// Largest single read (into a buffer shared by the thread's connections).
const READ_CHUNK: usize = 64 * 1024;
/// Encoded bytes waiting for the socket beyond which nothing more is encoded.
pub(super) const OUTBOX_HIGH_WATER: usize = 256 * 1024;
/// Largest send buffer kept between bursts.
const MAX_KEPT_OUTBOX: usize = 4 * 1024 * 1024;

/// What one poll of the socket did.
pub(super) enum IoEvent {
    /// Bytes were read at this time (the driver's one clock reading for the read, which the
    /// session was given too) and handed to the session.
    Read(Instant),
    /// What was read broke the protocol (the session has ended the connection).
    Violation(ProtocolError),
    /// Some of the outbox was written or flushed.
    Progress,
    /// The broker closed its end.
    Eof,
    /// The socket failed.
    Error(io::Error),
}

/// Writes what it can of `outbox`, flushes, and reads into the session; ready as soon as any
/// of them made progress.
pub(super) fn poll_io(
    cx: &mut Context<'_>,
    stream: &mut BoxStream,
    session: &mut Session,
    outbox: &mut BytesMut,
    needs_flush: &mut bool,
    can_read: bool,
) -> Poll<IoEvent> {
    let mut progress = false;
    while !outbox.is_empty() {
        match Pin::new(&mut *stream).poll_write(cx, outbox) {
            Poll::Ready(Ok(0)) => {
                return Poll::Ready(IoEvent::Error(io::ErrorKind::WriteZero.into()));
            }
            Poll::Ready(Ok(n)) => {
                tracing::trace!(target: super::TARGET, bytes = n, "wrote");
                outbox.advance(n);
                *needs_flush = true;
                progress = true;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(IoEvent::Error(e)),
            Poll::Pending => break,
        }
    }
    if outbox.is_empty() && *needs_flush {
        match Pin::new(&mut *stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                *needs_flush = false;
                progress = true;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(IoEvent::Error(e)),
            Poll::Pending => {}
        }
    }
    if outbox.capacity() > MAX_KEPT_OUTBOX && outbox.is_empty() {
        // Give back memory after an unusually large burst; smaller buffers are kept, so a
        // steady stream does not allocate and free its send buffer on every wake-up.
        *outbox = BytesMut::new();
    }
    if can_read && let Poll::Ready(ev) = poll_read_into(cx, stream, session) {
        return Poll::Ready(ev);
    }
    if progress {
        Poll::Ready(IoEvent::Progress)
    } else {
        Poll::Pending
    }
}

thread_local! {
    /// Where every connection on this thread reads into: the session copies what it is
    /// given into its own buffer, so an idle connection holds no receive buffer at all.
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Reads once (up to [`READ_CHUNK`] bytes) and hands the bytes to the session.
fn poll_read_into(
    cx: &mut Context<'_>,
    stream: &mut BoxStream,
    session: &mut Session,
) -> Poll<IoEvent> {
    let mut read = |buf: &mut [u8]| {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(IoEvent::Eof),
            Poll::Ready(Ok(())) => {
                tracing::trace!(target: super::TARGET, bytes = rb.filled().len(), "read");
                let at = Instant::now();
                Poll::Ready(match session.handle_input(at.into_std(), rb.filled()) {
                    Ok(()) => IoEvent::Read(at),
                    Err(e) => IoEvent::Violation(e),
                })
            }
            Poll::Ready(Err(e)) => Poll::Ready(IoEvent::Error(e)),
            Poll::Pending => Poll::Pending,
        }
    };
    READ_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => read(&mut buf),
        // Not reentered in practice (a stream does not poll another client's driver); if
        // it ever is, a buffer of its own does the job.
        Err(_) => read(&mut vec![0; READ_CHUNK]),
    })
}

/// Closes our side after DISCONNECT was written: shuts down the write half, then reads and
/// discards until the broker closes its side. Dropping a socket with unread bytes (the
/// broker's answers to what was in flight) makes the kernel reset the connection, and a
/// reset can make the broker discard what it had not read yet: publishes written before
/// DISCONNECT would be lost. The caller bounds the wait.
pub(super) async fn close(stream: &mut BoxStream) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.shutdown().await?;
    let mut discard = [0u8; 512];
    // Bounded by the caller's timeout: each read returns bytes, or 0 at EOF.
    while stream.read(&mut discard).await? > 0 {}
    Ok(())
}
