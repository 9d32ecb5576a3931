//! The README's install step: `cargo install --path crates/tern-cli` produces a `tern` that
//! runs. Offline, in debug mode and on the workspace's target directory, so it reuses what
//! the test build already compiled and stays fast in CI.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn cargo_install_produces_a_working_binary() {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .and_then(|p| p.parent())
        .expect("crates/tern-cli sits two levels below the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    let root = tempfile::tempdir().expect("tempdir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let mut child = Command::new(cargo)
        .args([
            "install",
            "--offline",
            "--locked",
            "--debug",
            "--quiet",
            "--path",
        ])
        .arg(&manifest_dir)
        .arg("--root")
        .arg(root.path())
        .env("CARGO_TARGET_DIR", &target)
        .spawn()
        .expect("run cargo install");
    // Bounded: a build that has not finished in 15 minutes is a failure, not a hang.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(900) {
            let _ = child.kill();
            panic!("cargo install did not finish within 15 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "cargo install failed: {status}");
    let tern = root.path().join("bin").join("tern");
    let out = Command::new(&tern)
        .arg("--version")
        .output()
        .expect("run the installed tern");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("tern {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(&tern)
        .args(["help", "sub"])
        .output()
        .expect("tern help sub");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--remove-retained"));
}
