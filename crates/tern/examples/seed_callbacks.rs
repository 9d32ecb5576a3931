//! The seed's example, callback style (no async in sight): `on_connect`, `on_offline`,
//! `on_message`, connect with success and failure callbacks, per-call completions.
//! Usage: `cargo run -p tern --example seed_callbacks -- [host] [port]`.

use std::sync::mpsc;
use std::time::Duration;

use tern::callback::CallbackClient;
use tern::{Broker, ConnectOptions, QoS, Will};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".to_owned());
    let port: u16 = args.next().map_or(Ok(1883), |p| p.parse())?;

    let m = CallbackClient::new(
        ConnectOptions::new("clientid")
            .keep_alive(Duration::from_secs(120))
            .will(Will::new("/lwt", "offline", QoS::AtMostOnce, false)),
    );
    let (done_tx, done_rx) = mpsc::channel::<()>();

    m.on_connect(|_c| println!("connected"));
    let offline_tx = done_tx.clone();
    m.on_offline(move |_c, _why| {
        println!("offline");
        let _ = offline_tx.send(());
    });
    m.on_message(|c, msg| {
        println!("{}:", msg.topic);
        if !msg.payload.is_empty() {
            println!("{}", String::from_utf8_lossy(&msg.payload));
        }
        let _ = c.close();
    });

    let fail_tx = done_tx;
    m.connect(
        Broker::tcp(host, port),
        |c| {
            let _ = c.subscribe([("/topic", QoS::AtMostOnce)], |_c, _granted| {
                println!("subscribe success");
            });
            let _ = c.publish("/topic", "hello", QoS::AtMostOnce, false, |_c, _r| {
                println!("sent");
            });
        },
        move |_c, err| {
            println!("failed reason: {}", err.code());
            let _ = fail_tx.send(());
        },
    )?;
    // Wait for offline (after close) or the failure, at most 30 s.
    done_rx.recv_timeout(Duration::from_secs(30))?;
    Ok(())
}
