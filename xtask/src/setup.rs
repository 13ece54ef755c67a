//! `cargo xtask setup`: installs what building and testing vipd needs, idempotently.
//!
//! Each step first checks and only then installs, so a second run prints "nothing to do"
//! and takes seconds. Every failure is one line that says what to do.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{is_root, run};

/// Debian packages the build (bpf-linker against LLVM 22) and the tests use.
const APT_PACKAGES: &[&str] = &[
    // bpf-linker is built against LLVM 22.
    "llvm-22-dev",
    "libclang-22-dev",
    "clang-22",
    // Inspecting XDP programs and maps.
    "bpftool",
    // Namespaces, veths, bridges; ARP probes; captures; firewall rules for fault tests.
    "iproute2",
    "iputils-arping",
    "iputils-ping",
    "tcpdump",
    "tshark",
    "nftables",
    // Real peers for interop tests and benchmarks.
    "keepalived",
    "frr",
    // Packet crafting for hostile-input tests.
    "python3-scapy",
    "netsniff-ng",
    // Text in the bench's PNG plots (plotters + ab_glyph needs a TrueType font).
    "fonts-dejavu-core",
    // CPU hogs in the bench's flood scenario (taskset).
    "util-linux",
    // A real SMTP server for the state-change mail tests.
    "python3-aiosmtpd",
    // The nginx HA recipe's test (docs/recipes/nginx.md) serves pages through
    // failovers; the load-balancing bench uses nginx for its real servers and its
    // stream module as a proxy to compare with, as well as wrk and HAProxy.
    "nginx-light",
    "libnginx-mod-stream",
    "wrk",
    "haproxy",
];

/// Where Debian's LLVM 22 lives (bpf-linker's build needs its llvm-config on PATH).
const LLVM_BIN: &str = "/usr/lib/llvm-22/bin";

/// Runs every step; returns whether anything was installed.
pub fn setup() -> anyhow::Result<()> {
    let mut did_something = false;
    did_something |= apt_packages()?;
    did_something |= nightly_rust_src()?;
    did_something |= bpf_linker()?;
    if did_something {
        println!("setup: done");
    } else {
        println!("setup: nothing to do, everything is installed");
    }
    Ok(())
}

fn apt_packages() -> anyhow::Result<bool> {
    ensure_apt(APT_PACKAGES)
}

/// Installs those of `packages` that are missing (apt-get, non-interactive, waiting for
/// another apt to finish); returns whether anything was installed. Used by setup and by
/// the tasks that need a tool only they use (packaging: dpkg-dev, lintian, debootstrap).
pub fn ensure_apt(packages: &[&str]) -> anyhow::Result<bool> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|pkg| !dpkg_installed(pkg))
        .collect();
    if missing.is_empty() {
        println!("setup: apt packages: all {} present", packages.len());
        return Ok(false);
    }
    println!("setup: apt packages missing: {}", missing.join(" "));
    if which::which("apt-get").is_err() {
        bail!(
            "apt-get not found: this setup supports Debian/Ubuntu; install these packages by hand: {}",
            missing.join(" ")
        );
    }
    if !is_root() {
        bail!(
            "installing apt packages needs root: run `sudo -E cargo xtask setup` (or as root), or install: {}",
            missing.join(" ")
        );
    }
    let noninteractive = |cmd: &mut Command| {
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
    };
    let mut update = Command::new("apt-get");
    update.args(["-o", "DPkg::Lock::Timeout=600", "update"]);
    noninteractive(&mut update);
    run(&mut update).context("apt-get update failed: check the machine's apt sources")?;
    let mut install = Command::new("apt-get");
    install.args([
        "-o",
        "DPkg::Lock::Timeout=600",
        "install",
        "-y",
        "--no-install-recommends",
    ]);
    install.args(&missing);
    noninteractive(&mut install);
    run(&mut install).context("apt-get install failed")?;
    Ok(true)
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|out| out.status.success() && out.stdout.ends_with(b"install ok installed"))
        .unwrap_or(false)
}

fn nightly_rust_src() -> anyhow::Result<bool> {
    let rustup = which::which("rustup")
        .context("rustup not found: vipd's XDP build needs rustup with a nightly toolchain")?;
    let toolchains = Command::new(&rustup)
        .args(["toolchain", "list"])
        .output()
        .context("running `rustup toolchain list`")?;
    let toolchains = String::from_utf8_lossy(&toolchains.stdout);
    if !toolchains.lines().any(|line| line.starts_with("nightly")) {
        bail!(
            "no nightly Rust toolchain: install one with `rustup toolchain install nightly` (the XDP program is built with -Z build-std)"
        );
    }
    let installed = Command::new(&rustup)
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .context("running `rustup component list`")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == "rust-src")
    {
        println!("setup: nightly rust-src: present");
        return Ok(false);
    }
    println!("setup: nightly rust-src: installing");
    run(Command::new(&rustup).args(["component", "add", "rust-src", "--toolchain", "nightly"]))
        .context("`rustup component add rust-src --toolchain nightly` failed")?;
    Ok(true)
}

fn bpf_linker() -> anyhow::Result<bool> {
    if let Ok(path) = which::which("bpf-linker") {
        println!("setup: bpf-linker: present at {}", path.display());
        return Ok(false);
    }
    // `cargo install` puts it in ~/.cargo/bin, which may not be on PATH in a fresh shell.
    if let Some(path) = cargo_bin("bpf-linker").filter(|p| p.exists()) {
        bail!(
            "bpf-linker is installed at {} but not on PATH: add {} to PATH",
            path.display(),
            path.parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    if !PathBuf::from(LLVM_BIN).join("llvm-config").exists() {
        bail!(
            "{LLVM_BIN}/llvm-config not found: install llvm-22-dev (cargo xtask setup does, as root)"
        );
    }
    println!("setup: bpf-linker: building it against LLVM 22 (about a minute)");
    let path = format!("{LLVM_BIN}:{}", std::env::var("PATH").unwrap_or_default());
    run(Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("PATH", path))
    .context("building bpf-linker failed (needs llvm-22-dev, libclang-22-dev)")?;
    Ok(true)
}

fn cargo_bin(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    Some(home.join("bin").join(name))
}
