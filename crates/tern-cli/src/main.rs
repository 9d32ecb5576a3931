//! The `tern` command: `tern run script.lua`, `tern pub`, `tern sub`, `tern demo`.
//!
//! Each subcommand owns its flags (pub/sub follow mosquitto_pub/mosquitto_sub, whose `-h` is
//! the host, so there is no shared clap parser at the top).

mod mosq;
mod pubcmd;
mod run;
mod subcmd;

use std::process::ExitCode;

const USAGE: &str = "\
tern: an MQTT 3.1/3.1.1 client with the NodeMCU mqtt module's API

usage:
  tern run [--timeout SECS] script.lua [args...]   run a NodeMCU Lua script
  tern pub [mosquitto_pub flags]                     publish messages
  tern sub [mosquitto_sub flags]                     subscribe and print messages
  tern help                                          this text
";

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let _argv0 = args.next();
    let rest: Vec<std::ffi::OsString> = args.collect();
    let Some(sub) = rest.first().and_then(|s| s.to_str()) else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let sub_args = rest[1..].to_vec();
    match sub {
        "run" => run::main(sub_args),
        "pub" => pubcmd::main(sub_args),
        "sub" => subcmd::main(sub_args),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        "--version" | "-V" => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("tern: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
