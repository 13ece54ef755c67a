//! `cargo xtask deb`: a Debian package built with `dpkg-deb` from a staged tree.
//!
//! Why not cargo-deb: it would be one more tool to install (and to keep building with the
//! pinned rustc) on every fresh machine, while what it does for a single-binary package
//! is a handful of files, which dpkg-deb (part of dpkg, on every Debian system) packs.
//!
//! | file | from |
//! |---|---|
//! | `/usr/sbin/vipd` | the release binary, stripped |
//! | `/lib/systemd/system/vipd.service` | `contrib/vipd.service`, pointed at /usr/sbin |
//! | `/etc/vipd/vipd.toml` (conffile) | `examples/vipd-node1.toml` |
//! | `/usr/share/man/man8/vipd*.8.gz` | `vipd generate-assets` (clap_mangen) |
//! | `/usr/share/man/man5/vipd.toml.5.gz` | docs/configuration.md (see `man.rs`) |
//! | completions (bash, zsh, fish) | `vipd generate-assets` (clap_complete) |
//! | `/usr/share/doc/vipd/` | copyright, changelog.Debian.gz, docs/*.md |
//!
//! Maintainer scripts follow what debhelper writes for `dh_installsystemd --no-enable
//! --no-start`: the unit is registered (so a purge forgets an operator's `enable`) but
//! neither enabled nor started, since the shipped configuration is an example to edit
//! first; removal stops the service, masks it until purge, and unpins vipd's XDP program
//! (pins outlive the daemon by design; with the daemon gone for good they would keep
//! dropping ARP for its VIPs). dpkg's conffile handling keeps an edited
//! /etc/vipd/vipd.toml on upgrade and removal; purge deletes it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::install::{put, read};
use crate::run;

/// The package name.
const PACKAGE: &str = "vipd";
/// Debian revision of the package built from this version.
const REVISION: &str = "1";
/// Tools the package build uses beyond dpkg itself (lintian checks the result).
pub const BUILD_TOOLS: &[&str] = &["binutils", "lintian"];

/// The package is built from the repository, not uploaded: example.org (RFC 2606) says so.
const MAINTAINER: &str = "vipd developers <vipd@example.org>";

/// What was built.
#[derive(Debug)]
pub struct Built {
    /// The .deb file.
    pub deb: PathBuf,
}

/// Builds the package from `bin` into `out_dir`; `lint`: run lintian and fail on any
/// error or warning it reports.
pub fn build(root: &Path, bin: &Path, out_dir: &Path, lint: bool) -> anyhow::Result<Built> {
    let version = format!("{}-{REVISION}", env!("CARGO_PKG_VERSION"));
    let arch = output_of(Command::new("dpkg").arg("--print-architecture"))?;
    let stage = out_dir.join(format!("{PACKAGE}_{version}_{arch}"));
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    let at = |path: &str| stage.join(path.trim_start_matches('/'));

    // The binary, without symbols (lintian: unstripped-binary-or-object).
    let sbin = at("/usr/sbin/vipd");
    put(&sbin, &read(bin)?, 0o755)?;
    run(Command::new("strip")
        .args([
            "--strip-unneeded",
            "--remove-section=.comment",
            "--remove-section=.note",
        ])
        .arg(&sbin))
    .context("stripping vipd (strip is in binutils)")?;

    let unit = String::from_utf8(read(&root.join("contrib/vipd.service"))?)
        .context("contrib/vipd.service is not UTF-8")?
        .replace("/usr/local/bin/vipd", "/usr/sbin/vipd");
    anyhow::ensure!(
        unit.contains("ExecStart=/usr/sbin/vipd run"),
        "contrib/vipd.service no longer runs /usr/local/bin/vipd: update deb.rs"
    );
    put(
        &at("/lib/systemd/system/vipd.service"),
        unit.as_bytes(),
        0o644,
    )?;
    put(
        &at("/etc/vipd/vipd.toml"),
        &read(&root.join("examples/vipd-node1.toml"))?,
        0o644,
    )?;

    // Man pages and completions.
    let assets = out_dir.join("assets");
    if assets.exists() {
        fs::remove_dir_all(&assets)?;
    }
    run(Command::new(bin).arg("generate-assets").arg(&assets))
        .context("vipd generate-assets failed")?;
    let mut man8: Vec<PathBuf> = fs::read_dir(assets.join("man"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    man8.sort();
    for page in man8 {
        let name = page.file_name().context("man page name")?.to_string_lossy();
        put_gz(
            &at(&format!("/usr/share/man/man8/{name}.gz")),
            &read(&page)?,
        )?;
    }
    let config_doc = String::from_utf8(read(&root.join("docs/configuration.md"))?)
        .context("docs/configuration.md is not UTF-8")?;
    put_gz(
        &at("/usr/share/man/man5/vipd.toml.5.gz"),
        crate::man::config_page(&config_doc, env!("CARGO_PKG_VERSION")).as_bytes(),
    )?;
    for (file, target) in [
        ("vipd", "/usr/share/bash-completion/completions/vipd"),
        ("_vipd", "/usr/share/zsh/vendor-completions/_vipd"),
        (
            "vipd.fish",
            "/usr/share/fish/vendor_completions.d/vipd.fish",
        ),
    ] {
        put(
            &at(target),
            &read(&assets.join("completions").join(file))?,
            0o644,
        )?;
    }

    // Documentation: the unit's Documentation= points at operations.md.
    let doc = "/usr/share/doc/vipd";
    put(
        &at(&format!("{doc}/copyright")),
        COPYRIGHT.as_bytes(),
        0o644,
    )?;
    put_gz(
        &at(&format!("{doc}/changelog.Debian.gz")),
        changelog(&version, &source_date(root)?).as_bytes(),
    )?;
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    for page in docs {
        let name = page.file_name().context("doc name")?.to_string_lossy();
        put(&at(&format!("{doc}/{name}")), &read(&page)?, 0o644)?;
    }

    // Control area.
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {MAINTAINER}\n\
         Installed-Size: {size}\n\
         Depends: {depends}\n\
         Section: net\n\
         Priority: optional\n\
         Description: VRRP failover agent with an XDP fast path\n \
         vipd moves virtual IP addresses between Linux hosts with VRRP (RFC 5798,\n \
         versions 2 and 3, IPv4 and IPv6). It reads its own TOML configuration or\n \
         a keepalived.conf, answers ARP for its addresses from an XDP program, and\n \
         reports its state over a control socket, Prometheus metrics and an HTTP\n \
         status API.\n",
        size = installed_size_kib(&stage)?,
        depends = depends(&sbin)?,
    );
    put(&at("/DEBIAN/control"), control.as_bytes(), 0o644)?;
    put(&at("/DEBIAN/conffiles"), b"/etc/vipd/vipd.toml\n", 0o644)?;
    put(&at("/DEBIAN/postinst"), POSTINST.as_bytes(), 0o755)?;
    put(&at("/DEBIAN/prerm"), PRERM.as_bytes(), 0o755)?;
    put(&at("/DEBIAN/postrm"), POSTRM.as_bytes(), 0o755)?;
    put(&at("/DEBIAN/md5sums"), md5sums(&stage)?.as_bytes(), 0o644)?;

    let deb = out_dir.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&stage)
        .arg(&deb))
    .context("dpkg-deb --build failed")?;
    if lint {
        lintian(&deb)?;
    }
    Ok(Built { deb })
}

/// Runs lintian on `deb`; any error or warning fails the build. The overrides are the
/// tags that follow from how this package is made, each with its reason.
fn lintian(deb: &Path) -> anyhow::Result<()> {
    if which::which("lintian").is_err() {
        bail!(
            "lintian is not installed: `cargo xtask deb` installs it (as root), or pass --no-lintian"
        );
    }
    let mut cmd = Command::new("lintian");
    cmd.args(["--fail-on", "error,warning", "--tag-display-limit", "0"]);
    for (tag, _why) in LINTIAN_ACCEPTED {
        cmd.args(["--suppress-tags", tag]);
    }
    run(cmd.arg(deb)).context("lintian found problems in the package (see above)")
}

/// Lintian tags this package accepts, and why.
const LINTIAN_ACCEPTED: &[(&str, &str)] = &[(
    "initial-upload-closes-no-bugs",
    "not uploaded to Debian: there is no ITP bug to close",
)];

/// `Depends:` from the libraries the binary links: libc6 at the newest glibc symbol
/// version it uses, and libgcc-s1 for the unwinder.
fn depends(bin: &Path) -> anyhow::Result<String> {
    let versions = output_of(Command::new("objdump").arg("-T").arg(bin))?;
    let newest = versions
        .split_whitespace()
        .filter_map(|w| {
            w.strip_prefix("(GLIBC_")
                .or_else(|| w.strip_prefix("GLIBC_"))
        })
        .map(|v| v.trim_end_matches(')'))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((
                parts.next()??,
                parts.next()??,
                parts.next().flatten().unwrap_or(0),
            ))
        })
        .max()
        .context("no GLIBC_ symbol versions in the binary: is it a glibc build?")?;
    let needed = output_of(Command::new("objdump").arg("-p").arg(bin))?;
    let mut depends = vec![format!("libc6 (>= {}.{})", newest.0, newest.1)];
    if needed.contains("libgcc_s.so.1") {
        depends.push("libgcc-s1 (>= 4.2)".to_owned());
    }
    Ok(depends.join(", "))
}

/// Size of the installed files in KiB, as dpkg counts it.
fn installed_size_kib(stage: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for file in files_under(stage)? {
        total += fs::metadata(&file)?.len().div_ceil(1024);
    }
    Ok(total.max(1))
}

/// `md5sum`-style lines for every file outside DEBIAN/, paths relative to the root.
fn md5sums(stage: &Path) -> anyhow::Result<String> {
    let files: Vec<PathBuf> = files_under(stage)?
        .into_iter()
        .filter_map(|f| f.strip_prefix(stage).ok().map(Path::to_path_buf))
        .collect();
    let mut cmd = Command::new("md5sum");
    cmd.current_dir(stage).args(&files);
    output_of(&mut cmd).map(|mut sums| {
        sums.push('\n');
        sums
    })
}

/// Every regular file below `stage` except the control area, sorted.
fn files_under(stage: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![stage.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path == stage.join("DEBIAN") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `bytes` gzip-compressed (`gzip -9n`: no name or time stamp, so the package is
/// reproducible) at `path`.
fn put_gz(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("gzip")
        .args(["-9n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running gzip")?;
    let mut stdin = child.stdin.take().context("gzip stdin")?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().context("gzip")?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("gzip writer panicked"))??;
    anyhow::ensure!(out.status.success(), "gzip failed for {}", path.display());
    put(path, &out.stdout, 0o644)
}

/// The last commit's date in RFC 2822 (the changelog's date; reproducible for a commit).
fn source_date(root: &Path) -> anyhow::Result<String> {
    let date = Command::new("git")
        .args(["log", "-1", "--format=%aD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|d| !d.is_empty());
    Ok(date.unwrap_or_else(|| "Thu, 01 Jan 2026 00:00:00 +0000".to_owned()))
}

fn changelog(version: &str, date: &str) -> String {
    format!(
        "{PACKAGE} ({version}) unstable; urgency=medium\n\n  \
         * Built by `cargo xtask deb` from the vipd repository.\n\n \
         -- {MAINTAINER}  {date}\n"
    )
}

fn output_of(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

const COPYRIGHT: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vipd
Upstream-Contact: vipd developers <vipd@example.org>
Comment: The binary also contains the Rust crates vipd depends on (see Cargo.lock in
 the source), each under its own free licence, mostly MIT or Apache-2.0.

Files: *
Copyright: 2026 vipd developers
License: MIT or Apache-2.0

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the \"Software\"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 THE SOFTWARE.

License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
";

/// Registers the unit without enabling or starting it: the shipped vipd.toml is an
/// example (interface eth0, TEST-NET addresses) that must be edited before vipd runs.
const POSTINST: &str = r#"#!/bin/sh
set -e

if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	# Like dh_installsystemd --no-enable --no-start: remember the unit (so a purge
	# forgets an operator's enable) but neither enable nor start it.
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper update-state 'vipd.service' >/dev/null || true
	fi
	if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
fi
"#;

/// Stops the daemon before its binary goes away (not on upgrade: the running vipd keeps
/// its VIPs until the operator restarts it).
const PRERM: &str = r#"#!/bin/sh
set -e

if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ] ; then
	deb-systemd-invoke stop 'vipd.service' >/dev/null || true
fi
"#;

/// After removal: reload systemd, mask the unit until purge (debhelper's way of keeping
/// an enabled-but-removed unit from failing), unpin the XDP program; on purge, forget
/// the unit's state. dpkg itself deletes the conffile on purge.
const POSTRM: &str = r#"#!/bin/sh
set -e

if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] ; then
	systemctl --system daemon-reload >/dev/null || true
fi

if [ "$1" = "remove" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ] ; then
		deb-systemd-helper mask 'vipd.service' >/dev/null || true
	fi
	# vipd pins its XDP program so that it outlives a crash; with vipd removed the pins
	# would keep the program attached and answering (or dropping) ARP for its VIPs.
	if [ -d /sys/fs/bpf/vipd ] ; then
		rm -rf /sys/fs/bpf/vipd
	fi
fi

if [ "$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ] ; then
		deb-systemd-helper purge 'vipd.service' >/dev/null || true
		deb-systemd-helper unmask 'vipd.service' >/dev/null || true
	fi
fi
"#;
