//! keepalived.conf through the built binary: `vipd convert` and `vipd check` on both
//! formats, with the seed configs shipped as fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vipd(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(args)
        .arg(file)
        .output()
        .expect("running the vipd binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keepalived")
        .join(name)
}

#[test]
fn check_accepts_the_seed_keepalived_configs() {
    for name in ["node1-keepalived.conf", "node2-keepalived.conf"] {
        let path = seed(name);
        let output = vipd(&["check", "-c"], &path);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        assert_eq!(
            text(&output.stdout),
            format!("{}: OK (1 instance, 1 virtual server)\n", path.display())
        );
        let stderr = text(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        // The seed's notify.sh starts nginx on the VIP: on a host where
        // ip_nonlocal_bind is 0 (the kernel's default), check says so as well.
        let nonlocal_bind_off = std::fs::read_to_string("/proc/sys/net/ipv4/ip_nonlocal_bind")
            .is_ok_and(|v| v.trim() == "0");
        assert_eq!(lines.len(), 2 + usize::from(nonlocal_bind_off), "{stderr}");
        if nonlocal_bind_off {
            assert!(
                lines[2].contains("warning: net.ipv4.ip_nonlocal_bind is 0 and instance VI_1 starts services by state"),
                "{stderr}"
            );
        }
        assert!(
            lines[0].contains(
                ":14:11: vrrp_script.chk_mantaince_down: warning: script uses shell syntax"
            )
        );
        assert!(lines[1].contains(
            ":44:5: virtual_server 192.0.2.100 80.nat_mask: warning: `nat_mask` is not implemented"
        ));
    }
}

#[test]
fn convert_output_is_accepted_by_check_and_loads_equal() {
    let source = seed("node1-keepalived.conf");
    let output = vipd(&["convert"], &source);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let toml = text(&output.stdout);
    assert!(
        toml.starts_with(&format!(
            "# Converted by vipd convert from {}\n",
            source.display()
        )),
        "{toml}"
    );
    assert!(toml.contains("# ") && toml.contains("warning: script uses shell syntax"));
    assert!(toml.contains("version = 2\n"));

    let dir = std::env::temp_dir().join(format!("vipd-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let converted = dir.join("vipd.toml");
    std::fs::write(&converted, &toml).unwrap();
    let check = vipd(&["check", "-c"], &converted);
    let from_keepalived = vipd::config::load(&source).unwrap().config;
    let from_toml = vipd::config::load(&converted).unwrap().config;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert_eq!(from_toml, from_keepalived);
}

#[test]
fn check_detects_keepalived_content_without_a_conf_name() {
    let dir = std::env::temp_dir().join(format!("vipd-detect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keepalived.cfg");
    std::fs::write(
        &path,
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 300\n \
         virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
    )
    .unwrap();
    let output = vipd(&["check", "-c"], &path);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "{0}:3:20: instance.VI_1.virtual_router_id: 300 is out of range 1..=255\n{0}: 1 error\n",
            path.display()
        )
    );
}

#[test]
fn convert_of_a_broken_file_exits_1_and_of_a_missing_one_2() {
    let dir = std::env::temp_dir().join(format!("vipd-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keepalived.conf");
    std::fs::write(&path, "global_defs {\n").unwrap();
    let output = vipd(&["convert"], &path);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "");
    assert!(
        text(&output.stderr)
            .contains("keepalived.conf:1:1: block `global_defs` opened here is never closed")
    );
    let missing = vipd(&["convert"], Path::new("/nonexistent/keepalived.conf"));
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn run_takes_a_keepalived_conf_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(["run", "--help"])
        .output()
        .expect("running the vipd binary");
    assert!(text(&output.stdout).contains("--keepalived-conf <FILE>"));
    let clash = Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(["run", "-c", "a.toml", "--keepalived-conf", "b.conf"])
        .output()
        .expect("running the vipd binary");
    assert_eq!(clash.status.code(), Some(2), "{}", text(&clash.stderr));
}
