//! `vipd check` as an operator runs it: the built binary, real files, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vipd_check(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vipd"))
        .arg("check")
        .arg("-c")
        .arg(config)
        .output()
        .expect("running the vipd binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stderr without the host-dependent `ip_nonlocal_bind` warning (it depends on this
/// machine's sysctl; config::host's tests and tests/tests/nginx_recipe.rs cover it).
fn file_warnings(bytes: &[u8]) -> String {
    text(bytes)
        .lines()
        .filter(|l| !l.contains("ip_nonlocal_bind"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A file in a per-test temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vipd-check-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        let path = dir.join("vipd.toml");
        std::fs::write(&path, contents).expect("writing the config");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn shipped_example_is_ok() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vipd-node1.toml");
    let output = vipd_check(&example);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(stdout, format!("{}: OK (1 instance)\n", example.display()));
    assert_eq!(file_warnings(&output.stderr), "");
}

#[test]
fn warnings_are_printed_and_still_ok() {
    let file = TempFile::new(
        "warn",
        "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\nversion = 2\n\
         virtual_ipaddress = [\"192.0.2.100\"]\n\
         authentication = { auth_type = \"PASS\", auth_pass = \"0123456789\" }\n\n\
         [instance.VI_2]\ninterface = \"eth0\"\nvirtual_router_id = 8\n\
         virtual_ipaddress = [\"192.0.2.101\"]\n",
    );
    let output = vipd_check(&file.0);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).ends_with(": OK (2 instances)\n"));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("vipd.toml:6:"), "{stderr}");
    assert!(
        stderr.contains("warning: auth_pass is 10 bytes"),
        "{stderr}"
    );
}

#[test]
fn bad_file_lists_every_error_and_exits_1() {
    let file = TempFile::new(
        "bad",
        "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 0\npriority = 300\n\
         virtual_ipaddress = [\"192.0.2.100\"]\n",
    );
    let output = vipd_check(&file.0);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "");
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let path = file.0.display();
    assert_eq!(
        lines,
        [
            format!("{path}:3:21: instance.VI_1.virtual_router_id: 0 is out of range 1..=255"),
            format!("{path}:4:12: instance.VI_1.priority: 300 is out of range 1..=255"),
            format!("{path}: 2 errors"),
        ]
    );
}

#[test]
fn unknown_key_exits_1_with_location() {
    let file = TempFile::new(
        "unknown",
        "[instance.VI_1]\ninterface = \"eth0\"\nprioirty = 100\n",
    );
    let output = vipd_check(&file.0);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let expected = format!(
        "{}:3:1: instance.VI_1: unknown field \"prioirty\"",
        file.0.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn unreadable_file_exits_2() {
    let output = vipd_check(Path::new("/nonexistent/vipd.toml"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: cannot read /nonexistent/vipd.toml:"),
        "{stderr}"
    );
}

#[test]
fn long_option_is_accepted() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vipd-node2.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(["check", "--config"])
        .arg(&example)
        .output()
        .expect("running the vipd binary");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn world_writable_config_and_script_are_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let file = TempFile::new("perm", "");
    let dir = file.0.parent().expect("temp dir").to_owned();
    let script = dir.join("notify.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("writing the script");
    std::fs::write(
        &file.0,
        format!(
            "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\n\
             virtual_ipaddress = [\"192.0.2.100\"]\nnotify_master = \"{}\"\n",
            script.display()
        ),
    )
    .expect("writing the config");
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    };
    // Private files: no warning.
    mode(&file.0, 0o600);
    mode(&script, 0o755);
    let quiet = vipd_check(&file.0);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet.stderr));
    assert_eq!(file_warnings(&quiet.stderr), "");
    // World-writable: one warning each, still valid.
    mode(&file.0, 0o666);
    mode(&script, 0o777);
    let loud = vipd_check(&file.0);
    assert_eq!(loud.status.code(), Some(0), "{}", text(&loud.stderr));
    let stderr = text(&loud.stderr);
    assert!(
        stderr.contains("configuration file is world-writable"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} is world-writable", script.display())),
        "{stderr}"
    );
}

/// Three independent mistakes in different tables or blocks: one run of `vipd check`
/// reports all three as `FILE:LINE:COL`, for both front ends, and exits 1.
#[test]
fn check_reports_every_error_of_both_formats_in_one_run() {
    let toml = TempFile::new(
        "three-toml",
        "[instance.A]\ninterface = \"eth0\"\nvirtual_router_id = 7\npriority = \"high\"\n\
         virtual_ipaddress = [\"192.0.2.1\"]\n\n\
         [instance.B]\ninterface = \"eth0\"\nvirtual_router_id = 300\n\
         virtual_ipaddress = [\"192.0.2.2\"]\n\n\
         [script.chk]\nscript = \"/bin/true\"\nintervall = 1\n",
    );
    // Detected as keepalived.conf by its blocks, whatever the name.
    let conf = TempFile::new(
        "three-conf",
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 7\n  priority high\n  \
         virtual_ipaddress {\n    192.0.2.100\n  }\n}\n\
         vrrp_instance VI_2 {\n  interface eth0\n  virtual_router_id 300\n  \
         virtual_ipaddress {\n    192.0.2.101\n  }\n}\n\
         vrrp_script chk {\n  script \"/bin/true\n  interval 1\n}\n",
    );
    for (file, positions) in [
        (&toml, ["4:12", "9:21", "14:1"]),
        (&conf, ["4:12", "11:21", "17:10"]),
    ] {
        let output = vipd_check(&file.0);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(text(&output.stdout), "");
        let path = file.0.display().to_string();
        // Warnings (an unused script) come first; then the errors and the count.
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains(": warning: "))
            .collect();
        assert_eq!(lines.len(), 4, "{stderr}");
        for (line, position) in lines.iter().zip(positions) {
            assert!(
                line.starts_with(&format!("{path}:{position}: ")),
                "expected {position}: {stderr}"
            );
        }
        assert_eq!(lines[3], format!("{path}: 3 errors"));
    }
}
