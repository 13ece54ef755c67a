//! `cargo xtask`: the one entry point a newcomer needs.
//!
//! - `setup`: install what is missing (apt packages, nightly rust-src, bpf-linker).
//! - `build [--release]`, `run -- <vipd args>`: build (and run) vipd with its XDP program.
//! - `test`: setup, lint, then every test (unit, XDP, netns integration, the .deb) as root.
//! - `demo`: setup, build, then a small lab in network namespaces.
//! - `bench`: vipd against keepalived in network-namespace labs; table, JSON and plots.
//! - `fuzz [--seconds N] [--runs N] [--target T] [--merge] [--xdp]`: the cargo-fuzz
//!   campaign (execs, time, coverage, crashes per target), or the XDP frame fuzzing.
//! - `install [--prefix] [--destdir]`: release binary, systemd unit, example config, docs.
//! - `dashboard`: docs/img/dashboard.png, the Grafana dashboard's panels from a real run.
//! - `soak --minutes N`: a vipd pair under a schedule of disturbances, checked and plotted.
//! - `deb`: a Debian package (binary, unit, conffile, man pages, completions), linted.
mod bench;
mod dashboard;
mod deb;
mod debroot;
mod demo;
mod disk;
mod fuzz;
mod install;
mod interrupt;
mod man;
mod setup;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

/// Developer tasks for vipd.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what building and testing needs (idempotent; apt needs root).
    Setup,
    /// Build vipd (and its embedded XDP program).
    Build {
        /// Optimised build.
        #[arg(long)]
        release: bool,
    },
    /// Build and run vipd with the given arguments, e.g. `cargo xtask run -- --help`.
    Run {
        /// Optimised build.
        #[arg(long)]
        release: bool,
        /// Arguments for vipd.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run every check: fmt, clippy, unit tests, XDP program tests, netns integration
    /// tests, and the Debian package (built, linted, installed and purged in a cached
    /// debootstrap root under target/deb-test/).
    Test {
        /// Skip `cargo fmt --check` and clippy.
        #[arg(long)]
        no_lint: bool,
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        cargo_test_args: Vec<String>,
    },
    /// Show vipd in a network-namespace lab (needs root; cleans up after itself).
    Demo,
    /// Build the release binary and install it with the systemd unit, an example config
    /// (`/etc/vipd/vipd.toml.example`; an existing `vipd.toml` is left alone) and the docs.
    Install {
        /// Installation prefix of the binary (`PREFIX/bin/vipd`) and docs.
        #[arg(long, default_value = "/usr/local")]
        prefix: PathBuf,
        /// Stage everything under this directory instead of `/` (for packaging).
        #[arg(long)]
        destdir: Option<PathBuf>,
        /// Install this binary instead of building target/release/vipd.
        #[arg(long)]
        vipd_bin: Option<PathBuf>,
    },
    /// Draw docs/img/dashboard.png: the panels of contrib/grafana/vipd.json from metrics
    /// scraped every 100 ms while two vipd in network namespaces fail over (needs root).
    Dashboard {
        /// Where to write the picture.
        #[arg(long, default_value = "docs/img/dashboard.png")]
        out: PathBuf,
    },
    /// Build a Debian package: target/deb/vipd_VERSION_ARCH.deb (see docs/operations.md).
    ///
    /// Release binary, systemd unit, /etc/vipd/vipd.toml (a conffile), man pages vipd(8)
    /// and vipd.toml(5), bash/zsh/fish completions; checked with lintian.
    Deb {
        /// Package this binary instead of building target/release/vipd.
        #[arg(long)]
        vipd_bin: Option<PathBuf>,
        /// Skip lintian.
        #[arg(long)]
        no_lintian: bool,
        /// Then install, check, remove and purge it in a throwaway Debian root (the
        /// test `cargo xtask test` runs; needs root).
        #[arg(long)]
        test: bool,
    },
    /// Run the cargo-fuzz targets for a time and/or an exec count each, and print execs,
    /// wall time, coverage and crashes per target; or (`--xdp`) the XDP program's frame
    /// fuzzing through BPF_PROG_TEST_RUN (needs root).
    Fuzz {
        /// Seconds per target (default 60 when --runs is not given either).
        #[arg(long)]
        seconds: Option<u64>,
        /// Execs per target (libFuzzer -runs); with --xdp, the number of frames.
        #[arg(long)]
        runs: Option<u64>,
        /// Only this target (advert_parse, keepalived_conf, toml_config, bfd_packet,
        /// virtual_server, lb_table).
        #[arg(long)]
        target: Option<String>,
        /// Afterwards merge the inputs that add coverage into vipd/fuzz/corpus/TARGET.
        #[arg(long)]
        merge: bool,
        /// Fuzz the XDP program (vipd/tests/xdp_fuzz.rs) instead.
        #[arg(long)]
        xdp: bool,
    },
    /// Measure vipd against keepalived 2.2.7 in network-namespace labs (needs root).
    ///
    /// Builds vipd in release mode, runs the chosen part (all by default), prints a
    /// table and writes target/bench/results.json and PNG plots. `all` takes about 10
    /// minutes on 2 cores; `--quick` a few minutes.
    Bench {
        /// Which part: failover, flood, arp, scale, idle, lb, l3 or all.
        #[arg(value_enum)]
        which: Option<bench::Which>,
        /// Few repetitions and short runs: a smoke test, not numbers to publish.
        #[arg(long)]
        quick: bool,
        /// Failover repetitions per configuration at 10 ms and 100 ms adverts (1 s
        /// adverts get a fifth, at least 2). Default 20, 3 with --quick.
        #[arg(long)]
        reps: Option<usize>,
        /// Seconds of each flood variant. Default 60 (45 within `all`, 5 with --quick).
        #[arg(long)]
        flood_secs: Option<u64>,
        /// Use this vipd binary instead of building target/release/vipd.
        #[arg(long)]
        vipd_bin: Option<PathBuf>,
    },
    /// Run a vipd pair (16 instances, 10 ms adverts, XDP generic) for N minutes under a
    /// schedule of reloads, stalls, floods, track-script and link flaps (needs root).
    ///
    /// Checks every state change against the schedule, and RSS, fds, BPF maps, pins,
    /// adverts and log rate; writes target/soak/soak.json and the PNG; exits non-zero on
    /// any mismatch. Not part of `cargo xtask test`. See docs/reliability.md.
    Soak {
        /// Length of the run.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        /// Where to draw RSS, fds and transitions over time.
        #[arg(long, default_value = "docs/img/soak.png")]
        png: PathBuf,
        /// Use this vipd binary instead of building target/release/vipd.
        #[arg(long)]
        vipd_bin: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `run` is vipd in the foreground: its own Ctrl-C handling is the one that counts.
    if !matches!(cli.task, Task::Run { .. }) {
        interrupt::clean_up_on_signal()?;
    }
    let result = run_task(cli.task);
    // The run fails as its processes are killed under it; the sweep decides the exit.
    interrupt::wait_if_interrupted();
    result
}

fn run_task(task: Task) -> anyhow::Result<()> {
    match task {
        Task::Setup => setup::setup(),
        Task::Build { release } => {
            setup::setup()?;
            build(release).map(|_| ())
        }
        Task::Run { release, args } => {
            setup::setup()?;
            let bin = build(release)?;
            let status = Command::new(&bin)
                .args(&args)
                .status()
                .with_context(|| format!("running {}", bin.display()))?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Task::Test {
            no_lint,
            cargo_test_args,
        } => test(no_lint, &cargo_test_args),
        Task::Fuzz {
            seconds,
            runs,
            target,
            merge,
            xdp,
        } => {
            if xdp {
                fuzz::xdp(runs)
            } else {
                fuzz::cargo_fuzz(&fuzz::Plan {
                    seconds,
                    runs,
                    only: target.as_deref(),
                    merge,
                })
            }
        }
        Task::Install {
            prefix,
            destdir,
            vipd_bin,
        } => {
            let bin = match vipd_bin {
                Some(bin) => bin,
                None => {
                    setup::setup()?;
                    build(true)?
                }
            };
            let installed = install::install(&workspace_root(), &bin, &prefix, destdir.as_deref())?;
            for file in &installed.files {
                println!("installed {}", file.display());
            }
            if destdir.is_none() {
                println!(
                    "next: cp /etc/vipd/vipd.toml.example /etc/vipd/vipd.toml, edit it, check it with \
                     `{} check -c /etc/vipd/vipd.toml`, then `systemctl daemon-reload && systemctl enable --now vipd`",
                    installed.bin.display()
                );
            }
            Ok(())
        }
        Task::Deb {
            vipd_bin,
            no_lintian,
            test,
        } => {
            let bin = match vipd_bin {
                Some(bin) => bin,
                None => {
                    setup::setup()?;
                    build(true)?
                }
            };
            if !no_lintian {
                setup::ensure_apt(deb::BUILD_TOOLS)?;
            }
            let built = deb::build(
                &workspace_root(),
                &bin,
                &target_dir().join("deb"),
                !no_lintian,
            )?;
            println!("built {}", built.deb.display());
            if test {
                require_root("cargo xtask deb --test")?;
                debroot::test_package(&built.deb, &target_dir().join("deb-test"))?;
            }
            Ok(())
        }
        Task::Dashboard { out } => {
            setup::setup()?;
            require_root("cargo xtask dashboard")?;
            let bin = build(false)?;
            cleanup_stale_namespaces();
            let out = if out.is_absolute() {
                out
            } else {
                workspace_root().join(out)
            };
            let result = dashboard::dashboard(&bin, &out);
            cleanup_stale_namespaces();
            result
        }
        Task::Demo => {
            setup::setup()?;
            require_root("cargo xtask demo")?;
            let bin = build(false)?;
            demo::demo(&bin)
        }
        Task::Bench {
            which,
            quick,
            reps,
            flood_secs,
            vipd_bin,
        } => {
            require_root("cargo xtask bench")?;
            let bin = match vipd_bin {
                Some(bin) => bin,
                None => {
                    setup::setup()?;
                    build(true)?
                }
            };
            if which::which("keepalived").is_err() {
                bail!(
                    "keepalived is not installed: run `cargo xtask setup` (or apt-get install keepalived)"
                );
            }
            cleanup_stale_namespaces();
            let result = bench::bench(
                &bin,
                &target_dir().join("bench"),
                which.unwrap_or(bench::Which::All),
                bench::Options {
                    quick,
                    reps,
                    flood_secs,
                },
            );
            cleanup_stale_namespaces();
            result
        }
        Task::Soak {
            minutes,
            png,
            vipd_bin,
        } => {
            require_root("cargo xtask soak")?;
            let bin = match vipd_bin {
                Some(bin) => bin,
                None => {
                    setup::setup()?;
                    build(true)?
                }
            };
            let png = if png.is_absolute() {
                png
            } else {
                workspace_root().join(png)
            };
            cleanup_stale_namespaces();
            let result = bench::soak::run(&bin, minutes, &target_dir().join("soak"), &png);
            cleanup_stale_namespaces();
            result
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// The nightly toolchain's cargo (fuzzing needs it), free of the stable toolchain
/// settings `cargo xtask` itself runs under.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo"])
        .current_dir(workspace_root())
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

/// Builds vipd and returns the binary's path.
fn build(release: bool) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--package", "vipd"]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd).context("building vipd failed")?;
    let bin = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("vipd");
    if !bin.exists() {
        bail!("build succeeded but {} is missing", bin.display());
    }
    Ok(bin)
}

fn test(no_lint: bool, cargo_test_args: &[String]) -> anyhow::Result<()> {
    require_root("cargo xtask test")?;
    disk::ensure_room("cargo xtask test", &target_dir(), disk::TEST_BUILD)?;
    setup::setup()?;
    if !no_lint {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
            .context("code is not formatted: run `cargo fmt --all`")?;
        run(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))
            .context("clippy found problems (see above)")?;
    }
    // The fuzz targets must keep compiling (running them is `cargo xtask fuzz`).
    run(nightly_cargo()
        .args([
            "build",
            "--quiet",
            "--manifest-path",
            "vipd/fuzz/Cargo.toml",
        ])
        .env("AYA_BUILD_SKIP", "1"))
    .context("the fuzz targets in vipd/fuzz do not build")?;
    let bin = build(false)?;
    cleanup_stale_namespaces();
    run(cargo()
        .args(["test", "--no-fail-fast"])
        .args(cargo_test_args)
        .env("VIPD_BIN", &bin))
    .context("tests failed (see above)")?;
    cleanup_stale_namespaces();
    // The package: built around the binary just tested (the debug build; `cargo xtask
    // deb` packages the release build the same way), linted, then installed, checked
    // and purged in a cached Debian root.
    setup::ensure_apt(deb::BUILD_TOOLS)?;
    let built = deb::build(
        &workspace_root(),
        &bin,
        &target_dir().join("deb-test"),
        true,
    )
    .context("building the Debian package failed")?;
    debroot::test_package(&built.deb, &target_dir().join("deb-test"))
        .context("the Debian package test failed")?;
    Ok(())
}

/// Deletes namespaces (and what runs in them) left by earlier runs that died.
fn cleanup_stale_namespaces() {
    report_cleanup("stale", vipd_tests::cleanup_stale());
}

/// Prints what a sweep of `whose` namespaces and pins removed, or why it could not.
pub(crate) fn report_cleanup(whose: &str, result: anyhow::Result<Vec<String>>) {
    match result {
        Ok(removed) => {
            for name in removed {
                println!("xtask: removed {whose} {name}");
            }
        }
        Err(e) => println!("xtask: could not sweep {whose} namespaces: {e:#}"),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn require_root(what: &str) -> anyhow::Result<()> {
    if !is_root() {
        bail!(
            "{what} needs root (network namespaces, XDP: CAP_NET_ADMIN + CAP_BPF): run it as root or with `sudo -E`"
        );
    }
    Ok(())
}

/// Runs a command, echoing it, and fails if it fails.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("+ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo xtask test` and `cargo xtask demo` build xtask first and run `setup` from
    /// it, so on a new machine xtask must build before anything is installed: nothing it
    /// links may have vipd's build script (the XDP program needs nightly rust-src and
    /// bpf-linker). A fresh machine's CI failed this way once.
    #[test]
    fn builds_before_setup() {
        let out = cargo()
            .args([
                "tree",
                "--package",
                "xtask",
                "--edges",
                "normal,build",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        let linked: Vec<&str> = tree
            .lines()
            .filter(|line| {
                let name = line.split_whitespace().next().unwrap_or("");
                name == "vipd" || name == "vipd-ebpf"
            })
            .collect();
        assert!(linked.is_empty(), "xtask links {linked:?}");
    }
}
