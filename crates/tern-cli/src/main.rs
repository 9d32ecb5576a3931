//! The `tern` command: `tern run script.lua`, `tern pub`, `tern sub`, `tern rr`, plus `tern help`,
//! `tern completions` and `tern man`.
//!
//! Each subcommand owns its flags (pub/sub follow mosquitto_pub/mosquitto_sub, whose `-h` is
//! the host, so there is no shared parser at the top). pub's and sub's flags are one table
//! (`mosq::flags`), from which their help, the shell completions and the man pages come.

mod bench;
mod mosq;
mod pubcmd;
mod rr;
mod run;
mod subcmd;

use std::process::ExitCode;

use mosq::flags::{self, Cmd};

const USAGE: &str = "\
an MQTT client with the NodeMCU mqtt module's API

usage:
  tern run [--timeout SECS] script.lua [args...]   run a NodeMCU Lua script
  tern pub [mosquitto_pub flags]                     publish messages
  tern sub [mosquitto_sub flags]                     subscribe and print messages
  tern rr [mosquitto_rr flags]                       publish a request, print the response
  tern bench pub|sub|conn|report [flags]             load generator (emqtt-bench's flags)
  tern help [pub|sub|rr|run|bench]                   this text, or a command's help
  tern completions bash|zsh|fish                     a shell completion script
  tern man pub|sub|rr|all [DIR]                      a man page (tern-pub.1); all: every page to DIR
  tern --version
";

fn usage() -> String {
    format!("tern {} {USAGE}", env!("CARGO_PKG_VERSION"))
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let _argv0 = args.next();
    let rest: Vec<std::ffi::OsString> = args.collect();
    let Some(sub) = rest.first().and_then(|s| s.to_str()) else {
        mosq::err_line(format_args!("{}", usage()));
        return ExitCode::from(2);
    };
    let sub_args = rest[1..].to_vec();
    let word = |i: usize| sub_args.get(i).and_then(|s| s.to_str());
    match sub {
        "run" => run::main(sub_args),
        "pub" => pubcmd::main(sub_args),
        "sub" => subcmd::main(sub_args),
        "rr" => rr::main(sub_args),
        "bench" => bench::main(sub_args),
        "help" | "--help" | "-h" => match word(0) {
            None => {
                mosq::out(&usage());
                ExitCode::SUCCESS
            }
            Some(cmd @ ("pub" | "sub" | "rr" | "run" | "bench")) => {
                let help = std::ffi::OsString::from("--help");
                match cmd {
                    "pub" => pubcmd::main(vec![help]),
                    "sub" => subcmd::main(vec![help]),
                    "rr" => rr::main(vec![help]),
                    "bench" => bench::main(vec![help]),
                    _ => run::main(vec![help]),
                }
            }
            Some(other) => {
                mosq::err_line(format_args!("tern: no help for {other:?}\n\n{}", usage()));
                ExitCode::from(2)
            }
        },
        "completions" => match word(0).and_then(flags::completions) {
            Some(script) => {
                mosq::out(&script);
                ExitCode::SUCCESS
            }
            None => {
                mosq::err_line(format_args!(
                    "Error: tern completions needs a shell: bash, zsh or fish\n\
                     e.g. tern completions bash > ~/.local/share/bash-completion/completions/tern"
                ));
                ExitCode::from(2)
            }
        },
        "man" => man(word(0), sub_args.get(1)),
        "--version" | "-V" => {
            mosq::out(&format!("tern {}\n", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        other => {
            mosq::err_line(format_args!(
                "tern: unknown command {other:?}\n\n{}",
                usage()
            ));
            ExitCode::from(2)
        }
    }
}

/// `tern man pub|sub` prints a page; `tern man all DIR` writes `tern-pub.1` and
/// `tern-sub.1` into DIR.
fn man(which: Option<&str>, dir: Option<&std::ffi::OsString>) -> ExitCode {
    let page = |cmd| {
        let summary = match cmd {
            Cmd::Pub => "publish MQTT messages (mosquitto_pub's flags)",
            Cmd::Sub => "subscribe to MQTT topics and print the messages (mosquitto_sub's flags)",
            Cmd::Rr => "publish an MQTT request and print the response (mosquitto_rr's flags)",
        };
        flags::man(cmd, env!("CARGO_PKG_VERSION"), summary, mosq::EXIT_HELP)
    };
    let cmds: &[(Cmd, &str)] = match which {
        Some("pub") => &[(Cmd::Pub, "tern-pub.1")],
        Some("sub") => &[(Cmd::Sub, "tern-sub.1")],
        Some("rr") => &[(Cmd::Rr, "tern-rr.1")],
        Some("all") => &[
            (Cmd::Pub, "tern-pub.1"),
            (Cmd::Sub, "tern-sub.1"),
            (Cmd::Rr, "tern-rr.1"),
        ],
        _ => {
            mosq::err_line(format_args!(
                "Error: tern man needs pub, sub, rr or all (all needs a directory): \
                 tern man pub | man -l -"
            ));
            return ExitCode::from(2);
        }
    };
    match dir {
        None if cmds.len() == 1 => {
            mosq::out(&page(cmds[0].0));
            ExitCode::SUCCESS
        }
        None => {
            mosq::err_line(format_args!("Error: tern man all needs a directory"));
            ExitCode::from(2)
        }
        Some(dir) => {
            let dir = std::path::Path::new(dir);
            for (cmd, file) in cmds {
                if let Err(e) = std::fs::write(dir.join(file), page(*cmd)) {
                    mosq::err_line(format_args!(
                        "Error: cannot write {}: {e}",
                        dir.join(file).display()
                    ));
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
    }
}
