//! The systemd unit: what the issue requires of it, and `systemd-analyze verify` where systemd
//! is installed.

use std::path::Path;

fn unit() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/billrecon.service"))
        .unwrap()
}

#[test]
fn the_unit_is_a_hardened_notify_service_with_a_watchdog() {
    let u = unit();
    let has = |line: &str| u.lines().any(|l| l.trim() == line);
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "User=billrecon",
        "StateDirectory=billrecon",
        "LogsDirectory=billrecon",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
    ] {
        assert!(has(line), "missing `{line}`");
    }
    assert!(u.lines().any(|l| l.starts_with("WatchdogSec=")));
    assert!(u.contains(" run"), "ExecStart runs the daemon");
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze is not installed: skipped");
        return;
    };
    assert!(out.status.success());
    // the unit as installed, pointing at the binary under test
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billrecon.service");
    std::fs::write(
        &path,
        unit().replace("/usr/local/bin/billrecon", env!("CARGO_BIN_EXE_billrecon")),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed: {stderr}"
    );
    assert!(
        !stderr.contains("billrecon.service"),
        "systemd-analyze verify complained about the unit: {stderr}"
    );
}
