//! The package test: install the .deb into a real Debian system, check the installed
//! example, remove and purge it, and compare what is left with what was there before.
//!
//! The system is a throwaway root made by `debootstrap --variant=minbase` (plus
//! init-system-helpers, so the maintainer scripts' deb-systemd-helper path runs) for the
//! host's own release, from the host's own apt mirror. It is built once and cached under
//! `target/deb-test/`; each run works on a fresh copy, so a failed run cannot leave the
//! cache dirty. dpkg runs inside it with chroot: nothing is installed on the host.
//! No /proc or /sys is mounted in it: dpkg needs neither, and the maintainer scripts'
//! systemd branches (`/run/systemd/system`) stay off as on a system without systemd.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};

use crate::run;

/// Packages added to minbase: deb-systemd-helper for the maintainer scripts.
const EXTRA_PACKAGES: &str = "init-system-helpers";

/// Paths that dpkg itself changes on any install and purge, which Debian policy keeps:
/// its database, its log, and the alternatives/trigger bookkeeping. Prefixes, relative
/// to the root.
const KEPT_BY_POLICY: &[&str] = &[
    "var/lib/dpkg/status",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/available",
    "var/lib/dpkg/diversions-old",
    "var/lib/dpkg/statoverride-old",
    "var/lib/dpkg/lock",
    "var/lib/dpkg/triggers/",
    "var/lib/dpkg/updates/",
    "var/log/dpkg.log",
    "var/cache/debconf/",
];

/// Runs the whole test with `deb`; `cache` holds the Debian root between runs.
pub fn test_package(deb: &Path, cache: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let pristine = pristine_root(cache)?;
    let made = started.elapsed();
    let work = cache.join("work");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    run(Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(&pristine)
        .arg(&work))
    .context("copying the cached Debian root")?;
    let result = exercise(deb, &work);
    if result.is_ok() {
        let _ = fs::remove_dir_all(&work);
    } else {
        println!(
            "deb test: the root is kept for a look at {}",
            work.display()
        );
    }
    println!(
        "deb test: {} in {:.0?} (root ready after {:.0?})",
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed(),
        made
    );
    result
}

/// Install, check, upgrade over an edited config, remove, purge; each step asserted.
fn exercise(deb: &Path, root: &Path) -> anyhow::Result<()> {
    let before = listing(root)?;
    let in_root = Path::new("/tmp/vipd.deb");
    fs::copy(deb, root.join("tmp/vipd.deb")).context("copying the package into the root")?;
    let chroot = |argv: &[&str]| -> anyhow::Result<std::process::Output> {
        let out = Command::new("chroot")
            .arg(root)
            .args(argv)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .with_context(|| format!("chroot {argv:?}"))?;
        Ok(out)
    };
    let ok = |argv: &[&str]| -> anyhow::Result<String> {
        let out = chroot(argv)?;
        ensure!(
            out.status.success(),
            "`{}` in the Debian root failed ({}):\n{}{}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let status = |package: &str| -> anyhow::Result<String> {
        let out = chroot(&["dpkg-query", "-W", "-f=${Status}", package])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let deb_path = in_root.to_string_lossy().into_owned();

    // Install: dependencies resolve on a minimal system, files are where docs say.
    ok(&["dpkg", "-i", &deb_path])?;
    ensure!(
        status("vipd")? == "install ok installed",
        "vipd not installed: {}",
        status("vipd")?
    );
    for file in [
        "usr/sbin/vipd",
        "lib/systemd/system/vipd.service",
        "etc/vipd/vipd.toml",
        "usr/share/man/man8/vipd.8.gz",
        "usr/share/man/man5/vipd.toml.5.gz",
        "usr/share/bash-completion/completions/vipd",
        "usr/share/zsh/vendor-completions/_vipd",
        "usr/share/fish/vendor_completions.d/vipd.fish",
        "usr/share/doc/vipd/copyright",
    ] {
        ensure!(root.join(file).exists(), "/{file} is not installed");
    }
    let conffiles = ok(&["dpkg-query", "-W", "-f=${Conffiles}", "vipd"])?;
    ensure!(
        conffiles.contains("/etc/vipd/vipd.toml"),
        "/etc/vipd/vipd.toml is not a conffile: {conffiles:?}"
    );
    // Installed, not enabled and not started.
    ensure!(
        !root
            .join("etc/systemd/system/multi-user.target.wants/vipd.service")
            .exists(),
        "the package enabled vipd.service"
    );

    // The installed binary accepts the installed example.
    let checked = ok(&["vipd", "check", "-c", "/etc/vipd/vipd.toml"])?;
    ensure!(
        checked.contains("/etc/vipd/vipd.toml: OK"),
        "vipd check said: {checked}"
    );
    let unit = fs::read_to_string(root.join("lib/systemd/system/vipd.service"))?;
    ensure!(
        unit.contains("ExecStartPre=/usr/sbin/vipd check -c /etc/vipd/vipd.toml"),
        "the unit does not run the packaged binary:\n{unit}"
    );

    // An operator's edit survives a reinstall (the upgrade path) untouched.
    let config = root.join("etc/vipd/vipd.toml");
    let edited = format!(
        "{}\n# edited by the operator\n",
        fs::read_to_string(&config)?
    );
    fs::write(&config, &edited)?;
    ok(&["dpkg", "-i", &deb_path])?;
    ensure!(
        fs::read_to_string(&config)? == edited,
        "reinstalling the package changed /etc/vipd/vipd.toml"
    );

    // Remove: the program goes, the (edited) configuration stays.
    ok(&["dpkg", "-r", "vipd"])?;
    ensure!(
        status("vipd")? == "deinstall ok config-files",
        "after dpkg -r: {}",
        status("vipd")?
    );
    ensure!(
        !root.join("usr/sbin/vipd").exists(),
        "dpkg -r left /usr/sbin/vipd"
    );
    ensure!(config.exists(), "dpkg -r removed the configuration");

    // Purge: nothing of the package is left but dpkg's own records.
    ok(&["dpkg", "-P", "vipd"])?;
    ensure!(
        status("vipd")?.is_empty() || status("vipd")? == "unknown ok not-installed",
        "after dpkg -P: {}",
        status("vipd")?
    );
    fs::remove_file(root.join("tmp/vipd.deb"))?;
    let after = listing(root)?;
    let left: Vec<&String> = after
        .difference(&before)
        .filter(|p| !kept_by_policy(p))
        .collect();
    let lost: Vec<&String> = before
        .difference(&after)
        .filter(|p| !kept_by_policy(p))
        .collect();
    ensure!(
        left.is_empty() && lost.is_empty(),
        "purge left {left:?} behind and took {lost:?} away"
    );
    Ok(())
}

fn kept_by_policy(path: &str) -> bool {
    KEPT_BY_POLICY.iter().any(|kept| path.starts_with(kept))
}

/// Every path under `root` (directories with a trailing `/`), relative to it.
fn listing(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Not following symlinks: a link is an entry like a file.
            if entry.file_type()?.is_dir() {
                out.insert(format!("{relative}/"));
                dirs.push(path);
            } else {
                out.insert(relative);
            }
        }
    }
    Ok(out)
}

/// The cached minbase root for the host's release, made if missing (into a temporary
/// directory renamed at the end, so an interrupted debootstrap is never taken for one).
fn pristine_root(cache: &Path) -> anyhow::Result<PathBuf> {
    let codename = host_codename()?;
    let root = cache.join(format!("{codename}-minbase"));
    if root.join("usr/bin/dpkg").exists() {
        println!("deb test: using the cached Debian root {}", root.display());
        return Ok(root);
    }
    crate::setup::ensure_apt(&["debootstrap"])?;
    let partial = cache.join(format!("{codename}-minbase.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    fs::create_dir_all(cache)?;
    println!(
        "deb test: making a minimal {codename} root (once; cached in {})",
        root.display()
    );
    let mut cmd = Command::new("debootstrap");
    cmd.args([
        "--variant=minbase",
        &format!("--include={EXTRA_PACKAGES}"),
        &codename,
    ])
    .arg(&partial);
    // The host's mirror, when its sources name one for this release (else debootstrap's
    // default).
    if let Some(mirror) = host_mirror(&codename) {
        cmd.arg(mirror);
    }
    run(&mut cmd).context("debootstrap failed (is the apt mirror reachable?)")?;
    fs::rename(&partial, &root)?;
    Ok(root)
}

fn host_codename() -> anyhow::Result<String> {
    let os_release = fs::read_to_string("/etc/os-release").context("reading /etc/os-release")?;
    let codename = os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim_matches('"').to_owned())
        .filter(|c| !c.is_empty());
    match codename {
        Some(c) => Ok(c),
        None => {
            bail!("/etc/os-release has no VERSION_CODENAME: the package test needs a Debian host")
        }
    }
}

/// The first mirror URI the host's apt sources use for `codename` (deb822 `.sources`
/// or one-line `sources.list`).
fn host_mirror(codename: &str) -> Option<String> {
    let mut texts = Vec::new();
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "sources") {
                texts.push(fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
    }
    for text in &texts {
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
            };
            let suites = field("Suites:").unwrap_or("");
            if field("Types:").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
                && suites.split_whitespace().any(|s| s == codename)
            {
                return field("URIs:")
                    .and_then(|u| u.split_whitespace().next())
                    .map(str::to_owned);
            }
        }
    }
    let list = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    list.lines().find_map(|line| {
        let words: Vec<&str> = line
            .split_whitespace()
            .filter(|w| !w.starts_with('['))
            .collect();
        (words.first() == Some(&"deb") && words.get(2) == Some(&codename))
            .then(|| words.get(1).map(|u| (*u).to_owned()))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_records_are_kept_and_package_files_are_not() {
        assert!(kept_by_policy("var/lib/dpkg/status"));
        assert!(kept_by_policy("var/log/dpkg.log"));
        assert!(!kept_by_policy("etc/vipd/"));
        assert!(!kept_by_policy("var/lib/dpkg/info/vipd.list"));
        assert!(!kept_by_policy("lib/systemd/system/vipd.service"));
    }
}
