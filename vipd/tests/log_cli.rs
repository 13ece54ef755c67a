//! Log output as journald or a log file sees it: `vipd run` with stderr on a pipe.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = std::env::temp_dir().join(format!("vipd-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    let config = dir.join("vipd.toml");
    // A 10-byte password is a warning (logged, then the run goes on); the interface does
    // not exist, so the daemon then fails at setup without touching the host.
    std::fs::write(
        &config,
        format!(
            "[global]\ncontrol_socket = \"{}\"\nrealtime_priority = 0\n\n\
             [instance.VI_1]\ninterface = \"vipd-none0\"\nvirtual_router_id = 7\nversion = 2\n\
             xdp = \"off\"\nvirtual_ipaddress = [\"192.0.2.100\"]\n\
             authentication = {{ auth_type = \"PASS\", auth_pass = \"0123456789\" }}\n",
            dir.join("vipd.sock").display()
        ),
    )
    .expect("writing the config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vipd"))
        .arg("run")
        .arg("-c")
        .arg(&config)
        .arg("--run-dir")
        .arg(&dir)
        .arg("--bpffs-dir")
        .arg(dir.join("bpf"))
        // Colour must be off because stderr is a pipe, not because NO_COLOR says so.
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the vipd binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("waiting for vipd").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
    let mut stderr = Vec::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_end(&mut stderr)
        .expect("reading stderr");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&stderr);
    assert!(text.contains("auth_pass is 10 bytes"), "{text}");
    assert!(
        !stderr.contains(&0x1b),
        "ESC in piped log output:\n{text:?}"
    );
}
