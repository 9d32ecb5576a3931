//! The connection lifecycle: which phase the session's current transport is in.

/// Phase of the current (or last) connection.
///
/// ```text
///            connect()                 CONNACK 0                 disconnect()
///   Idle ─────────────► AwaitConnAck ───────────► Connected ─────────────────► Disconnecting
///    │                   │ CONNACK 1..5,           │ violation, ping timeout,    │ DISCONNECT handed
///    │                   │ not CONNACK, timeout,   │ handle_closed               │ out by poll_transmit,
///    │                   │ handle_closed,          │                             │ or handle_closed
///    │                   │ disconnect()            ▼                             │
///    │                   └───────────────────► Closed ◄──────────────────────────┘
///    │                                             │
///    └──── (never connected)                       └── connect() again: AwaitConnAck
/// ```
///
/// `Event::Disconnected` is emitted exactly once per connection, on the move to `Closed`; it
/// carries the reason, so the state does not keep it (one byte, in every session).
/// Session state (in-flight packets, incoming QoS 2 ids, queued commands) survives `Closed`
/// as clean session allows; only the per-connection parts (outbox, timers, decoder buffer)
/// are reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Created, `connect` never called.
    Idle,
    /// CONNECT queued or sent; nothing else may be sent until CONNACK [MQTT-3.1.0-1]. The
    /// CONNACK timer runs from `connect`.
    AwaitConnAck,
    /// CONNACK accepted the connection.
    Connected,
    /// DISCONNECT is queued behind earlier packets; nothing follows it [MQTT-3.14.4-1].
    Disconnecting,
    /// The connection ended (or never came up); the reason went out in
    /// `Event::Disconnected`.
    Closed,
}

impl State {
    /// A transport is in use: between `connect` and the connection's end.
    pub(super) fn is_open(&self) -> bool {
        matches!(
            self,
            Self::AwaitConnAck | Self::Connected | Self::Disconnecting
        )
    }

    /// CONNACK accepted and the connection has not ended (DISCONNECT may be queued).
    pub(super) fn is_connected(&self) -> bool {
        matches!(self, Self::Connected | Self::Disconnecting)
    }

    /// Commands may be moved from the queue to the wire.
    pub(super) fn is_sending(&self) -> bool {
        matches!(self, Self::Connected)
    }

    /// Waiting for CONNACK.
    pub(super) fn is_awaiting_connack(&self) -> bool {
        matches!(self, Self::AwaitConnAck)
    }
}
