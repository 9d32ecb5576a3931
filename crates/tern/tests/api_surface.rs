//! The public API as an application sees it: everything here is reached through `tern::`
//! only (this file never names `tern_proto`), so an application needs no `tern-proto`
//! dependency to name the types in `tern`'s signatures.

use tern::{
    ApiMisuse, ClientError, ConnectError, ConnectReturnCode, ConnectionError, Initiator, Message,
    PacketId, PacketType, ProtocolError, QoS, QueueLimit, RequestError, SubscribeReturnCode,
    TopicError, TopicFilter, TopicName,
};

/// Every protocol type in a public signature can be named, built and matched via `tern::`.
#[test]
fn protocol_types_are_reachable_from_tern() {
    let name = TopicName::new("a/b").expect("a valid topic name");
    assert_eq!(name.as_str(), "a/b");
    let filter = TopicFilter::new("a/+").expect("a valid filter");
    assert!(filter.matches(&name));
    let err: TopicError = TopicName::new("a/+").expect_err("wildcards are not allowed in names");
    let client_err = ClientError::Topic {
        topic: "a/+".into(),
        source: err,
    };
    assert!(client_err.to_string().contains("a/+"));
    assert_eq!(QoS::AtLeastOnce as u8, 1);
    let _: Option<PacketId> = PacketId::new(1);
    let _ = SubscribeReturnCode::Failure;
    let _ = ConnectReturnCode::NotAuthorized;
    let _ = PacketType::Publish;
    let _: fn(&ProtocolError) = |_| {};
    let _: fn(&RequestError) = |_| {};
    let _: fn(&ApiMisuse) = |_| {};
    let _: fn(&Message) -> bool = Message::needs_ack;
    let _: fn(&ConnectError) -> i32 = ConnectError::code;
    let _ = (Initiator::Local, Initiator::Remote, Initiator::Library);
    let _: fn(&ConnectionError) = |_| {};
}

/// A refused connection keeps the operating system's error as a typed source: the
/// application can read its `io::ErrorKind` through the standard error chain.
#[tokio::test]
async fn connect_errors_keep_the_io_error_as_source() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.local_addr().expect("local address").port()
    }; // closed again: nothing listens there now
    let (client, _events) = tern::Client::new(tern::ConnectOptions::new("api-refused"));
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.connect(tern::Broker::tcp("127.0.0.1", port)),
    )
    .await
    .expect("a refused connect fails within 10 s")
    .expect_err("nothing listens on the port");
    assert!(
        matches!(err, ConnectError::ServerNotFound { .. }),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).expect("the OS error is the source");
    let io = source
        .downcast_ref::<std::sync::Arc<std::io::Error>>()
        .expect("the source is the io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    let kind = err.io_error().map(std::io::Error::kind);
    assert_eq!(kind, Some(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(err.initiator(), Initiator::Remote);
}

/// Who ended a connection reaches the application, as the protocol core decides it.
#[test]
fn connection_errors_say_whose_fault() {
    assert_eq!(ConnectionError::Local.initiator(), Initiator::Local);
    assert_eq!(ConnectionError::Closed.initiator(), Initiator::Remote);
    let io = ConnectionError::Io(std::sync::Arc::new(std::io::Error::from(
        std::io::ErrorKind::ConnectionReset,
    )));
    assert_eq!(io.initiator(), Initiator::Remote);
    let kind = std::error::Error::source(&io)
        .and_then(|s| s.downcast_ref::<std::sync::Arc<std::io::Error>>())
        .map(|e| e.kind());
    assert_eq!(kind, Some(std::io::ErrorKind::ConnectionReset));
    let kind = io.io_error().map(std::io::Error::kind);
    assert_eq!(kind, Some(std::io::ErrorKind::ConnectionReset));
    assert_eq!(
        ConnectionError::PingTimeout(std::time::Duration::from_secs(1)).initiator(),
        Initiator::Library
    );
    assert_eq!(ConnectError::Closed.initiator(), Initiator::Local);
}

/// Both of the session's queue limits arrive as the one `QueueFull` error.
#[test]
fn every_queue_limit_is_one_queue_full_error() {
    let commands: ClientError = ApiMisuse::QueueFull { max: 7 }.into();
    assert!(matches!(
        commands,
        ClientError::QueueFull(QueueLimit::Commands(7))
    ));
    let bytes: ClientError = ApiMisuse::QueueBytesFull { max: 9 }.into();
    assert!(matches!(
        bytes,
        ClientError::QueueFull(QueueLimit::Bytes(9))
    ));
    assert!(matches!(
        ClientError::from(ApiMisuse::NoFilters),
        ClientError::Misuse(_)
    ));
}

/// `try_publish` refuses at the documented `max_queued`, not at an internal channel size:
/// back to back (the driver never runs in between), exactly `max_queued` are taken.
#[tokio::test]
async fn try_publish_capacity_follows_max_queued() {
    for max in [5, 3_000] {
        let (client, _events) =
            tern::Client::new(tern::ConnectOptions::new("api-capacity").max_queued(max));
        for i in 0..max {
            if let Err(e) = client.try_publish("t", "x", QoS::AtLeastOnce, false) {
                panic!("publish {} of {max} refused: {e}", i + 1);
            }
        }
        match client.try_publish("t", "x", QoS::AtLeastOnce, false) {
            Err(ClientError::QueueFull(QueueLimit::Commands(n))) => assert_eq!(n, max),
            other => panic!("publish {} of max_queued {max}: {other:?}", max + 1),
        }
    }
    // The default (10,000) too: well past the former fixed 1,024.
    let (client, _events) = tern::Client::new(tern::ConnectOptions::new("api-default"));
    for i in 0..10_000 {
        if let Err(e) = client.try_publish("t", "x", QoS::AtMostOnce, false) {
            panic!("publish {} of the default 10,000 refused: {e}", i + 1);
        }
    }
    assert!(matches!(
        client.try_publish("t", "x", QoS::AtMostOnce, false),
        Err(ClientError::QueueFull(_))
    ));
}

/// Options that cannot work are refused where they are built, with a typed error, before
/// any connection: `validate` and `Client::try_new`.
#[tokio::test]
async fn options_are_validated_when_built() {
    use std::time::Duration;
    use tern::{ConnectOptions, OptionsError, Protocol, Will};

    let ok = ConnectOptions::new("sensor-1");
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(
        ConnectOptions::new("").validate(),
        Ok(()),
        "empty id + clean session"
    );
    type Expect = fn(&OptionsError) -> bool;
    let cases: Vec<(ConnectOptions, Expect)> = vec![
        (
            ConnectOptions::new("a-client-id-longer-than-23").protocol(Protocol::V3_1),
            |e| matches!(e, OptionsError::Connect(_)),
        ),
        (
            // 3.1 is Auto's fallback, so its id limit applies too.
            ConnectOptions::new("a-client-id-longer-than-23").protocol(Protocol::Auto),
            |e| matches!(e, OptionsError::Connect(_)),
        ),
        (ConnectOptions::new("").clean_session(false), |e| {
            matches!(e, OptionsError::Connect(_))
        }),
        (
            ConnectOptions::new("id").will(Will::new("a/+", "x", QoS::AtMostOnce, false)),
            |e| matches!(e, OptionsError::WillTopic { .. }),
        ),
        (
            ConnectOptions::new("id").keep_alive(Duration::from_secs(70_000)),
            |e| matches!(e, OptionsError::KeepAlive(_)),
        ),
        (
            {
                // The setter raises 0 to 1; the public field can still hold 0.
                let mut o = ConnectOptions::new("id");
                o.max_inflight = 0;
                o
            },
            |e| matches!(e, OptionsError::MaxInflight),
        ),
        (
            {
                let mut o = ConnectOptions::new("id");
                o.event_capacity = 0;
                o
            },
            |e| matches!(e, OptionsError::EventCapacity),
        ),
        (ConnectOptions::new("id").max_packet_size(3), |e| {
            matches!(e, OptionsError::MaxPacketSize(3))
        }),
        (ConnectOptions::new("nul\0id"), |e| {
            matches!(e, OptionsError::ClientId(_))
        }),
    ];
    for (options, expected) in cases {
        let err = options.validate().expect_err("invalid options");
        assert!(expected(&err), "{options:?}: {err:?}");
        let refused = tern::Client::try_new(options.clone()).err();
        assert_eq!(
            refused.as_ref(),
            Some(&err),
            "try_new refuses as validate does"
        );
    }
    let mut password_only = ConnectOptions::new("id");
    password_only.password = Some("secret".into());
    assert!(matches!(
        password_only.validate(),
        Err(OptionsError::Connect(_))
    ));
    let mut half_tls = ConnectOptions::new("id");
    let mut tls = tern::TlsOptions::default();
    tls.client_cert = Some("CERT".into());
    half_tls.tls = tls.into();
    assert!(matches!(half_tls.validate(), Err(OptionsError::Tls(_))));

    // Through `Client::new` the same check still guards `connect`, with the typed error,
    // before any socket is opened (the port is never contacted).
    let (client, _events) = tern::Client::new(
        ConnectOptions::new("a-client-id-longer-than-23").protocol(Protocol::V3_1),
    );
    let err = client
        .connect(tern::Broker::tcp("127.0.0.1", 9))
        .await
        .expect_err("invalid options");
    assert!(
        matches!(err, ConnectError::Options(OptionsError::Connect(_))),
        "{err:?}"
    );
}
