//! The seed's example, async style: connect, subscribe to `/topic`, publish `hello`, print
//! what arrives, close. Usage: `cargo run -p tern --example seed_async -- [host] [port]`.

use std::time::Duration;

use tern::{Broker, Client, ConnectOptions, Event, QoS, Will};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".to_owned());
    let port: u16 = args.next().map_or(Ok(1883), |p| p.parse())?;

    // init mqtt client without logins, keepalive timer 120s, last will on /lwt
    let options = ConnectOptions::new("clientid")
        .keep_alive(Duration::from_secs(120))
        .will(Will::new("/lwt", "offline", QoS::AtMostOnce, false));
    let (m, mut events) = Client::new(options);

    match m.connect(Broker::tcp(host, port)).await {
        Ok(_) => println!("connected"),
        Err(e) => {
            println!("failed reason: {} ({e})", e.code());
            return Ok(());
        }
    }
    // Pipelined: no need to wait for SUBACK before publishing.
    let (sub, publ) = tokio::join!(
        m.subscribe([("/topic", QoS::AtMostOnce)]),
        m.publish("/topic", "hello", QoS::AtMostOnce, false),
    );
    sub?;
    println!("subscribe success");
    publ?;
    println!("sent");

    while let Some(event) = events.recv().await {
        if let Event::Message(msg) = event {
            println!("{}:", msg.topic);
            println!("{}", String::from_utf8_lossy(&msg.payload));
            break;
        }
    }
    m.close().await?;
    Ok(())
}
