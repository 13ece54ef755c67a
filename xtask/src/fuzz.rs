//! `cargo xtask fuzz`: the cargo-fuzz campaign (vipd/fuzz) and the XDP program's frame
//! fuzzing (`vipd/tests/xdp_fuzz.rs`).
//!
//! Each cargo-fuzz target runs for a time and/or an exec count on a scratch corpus
//! (target/fuzz/corpus/NAME, grown by libFuzzer) seeded from the committed one
//! (vipd/fuzz/corpus/NAME, read only unless `--merge`). The summary per target comes
//! from libFuzzer's own final lines: execs (`stat::number_of_executed_units`), coverage
//! (`cov:` edges, `ft:` features of its last status line), and crashes (its exit status
//! and the files it wrote to vipd/fuzz/artifacts/NAME).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::{nightly_cargo, require_root, run, setup, target_dir, workspace_root};

/// The cargo-fuzz targets in vipd/fuzz.
pub const TARGETS: [&str; 6] = [
    "advert_parse",
    "keepalived_conf",
    "toml_config",
    "bfd_packet",
    "virtual_server",
    "lb_table",
];

/// What to run and for how long.
pub struct Plan<'a> {
    /// Wall-clock limit per target (`-max_total_time`).
    pub seconds: Option<u64>,
    /// Exec limit per target (`-runs`).
    pub runs: Option<u64>,
    /// Only this target.
    pub only: Option<&'a str>,
    /// Afterwards, merge what the run found into the committed corpus (`-merge=1
    /// -use_counters=0`: only inputs that reach new edges, not new hit counts, so the
    /// committed corpus stays small).
    pub merge: bool,
}

/// libFuzzer's figures for one run.
#[derive(Debug, Default)]
struct Summary {
    execs: Option<u64>,
    /// libFuzzer's own time ("Done N runs in S second(s)"), without the build.
    fuzz_seconds: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<String>,
    peak_rss_mb: Option<u64>,
}

/// Reads the figures from libFuzzer's log.
fn summarize(log: &str) -> Summary {
    let mut summary = Summary::default();
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units: ") {
            summary.execs = n.trim().parse().ok();
        }
        if let Some(rest) = line.strip_prefix("Done ") {
            summary.fuzz_seconds = rest.split_whitespace().nth(3).and_then(|s| s.parse().ok());
        }
        if let Some(n) = line.strip_prefix("stat::peak_rss_mb: ") {
            summary.peak_rss_mb = n.trim().parse().ok();
        }
        // "#1048576 DONE   cov: 812 ft: 3012 corp: 310/40Kb lim: 4096 exec/s: ..."
        if line.starts_with('#') && line.contains(" cov: ") {
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                match word {
                    "cov:" => summary.cov = words.next().and_then(|w| w.parse().ok()),
                    "ft:" => summary.ft = words.next().and_then(|w| w.parse().ok()),
                    "corp:" => summary.corpus = words.next().map(str::to_owned),
                    _ => {}
                }
            }
        }
    }
    summary
}

fn artifacts(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the cargo-fuzz targets; fails if any found a crash.
pub fn cargo_fuzz(plan: &Plan<'_>) -> anyhow::Result<()> {
    setup::setup()?;
    if which::which("cargo-fuzz").is_err() {
        println!("fuzz: installing cargo-fuzz");
        run(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))
            .context("installing cargo-fuzz failed")?;
    }
    let targets: Vec<&str> = match plan.only {
        Some(t) if TARGETS.contains(&t) => vec![t],
        Some(t) => bail!(
            "no fuzz target {t:?}; the targets are {}",
            TARGETS.join(", ")
        ),
        None => TARGETS.to_vec(),
    };
    let root = workspace_root();
    let fuzz_dir = root.join("vipd/fuzz");
    let scratch = target_dir().join("fuzz");
    let mut limits = Vec::new();
    if let Some(seconds) = plan.seconds {
        limits.push(format!("-max_total_time={seconds}"));
    }
    if let Some(runs) = plan.runs {
        limits.push(format!("-runs={runs}"));
    }
    if limits.is_empty() {
        limits.push("-max_total_time=60".to_owned());
    }
    let mut rows = Vec::new();
    let mut crashed = Vec::new();
    for target in targets {
        let corpus = scratch.join("corpus").join(target);
        let seeds = fuzz_dir.join("corpus").join(target);
        let artifact_dir = fuzz_dir.join("artifacts").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifact_dir)?;
        let before = artifacts(&artifact_dir).len();
        let log_path = scratch.join(format!("{target}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        println!(
            "fuzz: {target} ({}), log {}",
            limits.join(" "),
            log_path.display()
        );
        let started = Instant::now();
        let status = fuzz_run(&root, target)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .args(&limits)
            .arg("-print_final_stats=1")
            .env("AYA_BUILD_SKIP", "1")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .status()
            .context("cannot start cargo fuzz")?;
        let wall = started.elapsed();
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let summary = summarize(&text);
        let new_artifacts = artifacts(&artifact_dir).len().saturating_sub(before);
        let crashes = if status.success() {
            0
        } else {
            new_artifacts.max(1)
        };
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            for line in tail.into_iter().rev() {
                println!("  | {line}");
            }
            crashed.push(target);
        }
        if plan.merge && status.success() {
            run(fuzz_run(&root, target)
                .arg(&seeds)
                .arg(&corpus)
                .args(["--", "-merge=1", "-use_counters=0"])
                .env("AYA_BUILD_SKIP", "1"))
            .with_context(|| format!("merging the {target} corpus"))?;
        }
        let shown = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        rows.push(format!(
            "{target:<16} {:>11} {:>7} {:>9.1} {:>6} {:>7} {:>12} {:>6} {:>7}",
            shown(summary.execs),
            shown(summary.fuzz_seconds),
            wall.as_secs_f64(),
            shown(summary.cov),
            shown(summary.ft),
            summary.corpus.unwrap_or_else(|| "?".to_owned()),
            shown(summary.peak_rss_mb),
            crashes,
        ));
    }
    println!(
        "\n{:<16} {:>11} {:>7} {:>9} {:>6} {:>7} {:>12} {:>6} {:>7}",
        "target", "execs", "fuzz s", "wall s", "cov", "ft", "corpus", "rss MB", "crashes"
    );
    for row in rows {
        println!("{row}");
    }
    if !crashed.is_empty() {
        bail!(
            "fuzz targets found crashes: {} (inputs in vipd/fuzz/artifacts/<target>/, logs in {})",
            crashed.join(", "),
            scratch.display()
        );
    }
    Ok(())
}

/// Runs `vipd/tests/xdp_fuzz.rs` with `frames` frames (default: the test's own size).
pub fn xdp(frames: Option<u64>) -> anyhow::Result<()> {
    setup::setup()?;
    require_root("cargo xtask fuzz --xdp")?;
    let mut cmd = crate::cargo();
    cmd.args([
        "test",
        "-p",
        "vipd",
        "--test",
        "xdp_fuzz",
        "--",
        "--nocapture",
    ]);
    if let Some(frames) = frames {
        cmd.env("VIPD_XDP_FUZZ_FRAMES", frames.to_string());
    }
    run(&mut cmd).context("XDP fuzzing failed (see above)")
}

/// `cargo fuzz run TARGET` in vipd/ on the nightly toolchain. `--sanitizer=none`: the
/// fuzzed code is safe Rust (no `unsafe` in the config and wire paths), so
/// AddressSanitizer would only halve the exec rate; overflow checks and debug
/// assertions stay on.
fn fuzz_run(root: &std::path::Path, target: &str) -> std::process::Command {
    let mut cmd = nightly_cargo();
    cmd.current_dir(root.join("vipd")).args([
        "fuzz",
        "run",
        "--sanitizer=none",
        "--debug-assertions",
        target,
    ]);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_figures() {
        let log = "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #1000000\tDONE   cov: 812 ft: 3012 corp: 310/40Kb lim: 4096 exec/s: 9000 rss: 60Mb\n\
                   Done 1000000 runs in 111 second(s)\n\
                   stat::number_of_executed_units: 1000000\n\
                   stat::peak_rss_mb: 61\n";
        let s = summarize(log);
        assert_eq!(
            (s.execs, s.cov, s.ft, s.peak_rss_mb),
            (Some(1_000_000), Some(812), Some(3012), Some(61))
        );
        assert_eq!(s.corpus.as_deref(), Some("310/40Kb"));
    }
}
