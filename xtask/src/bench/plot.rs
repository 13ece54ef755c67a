//! PNG plots (plotters, bitmap backend only).
//!
//! Text is drawn with ab_glyph from a TrueType font on the machine: DejaVu Sans from
//! Debian's `fonts-dejavu-core` (`cargo xtask setup` installs it), or the file named by
//! `VIPD_BENCH_FONT`. Without a font the plots are skipped with a message; the table and
//! the JSON do not depend on them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::failover::{Outcome, Timeline};
use super::lab::Kind;

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers the font once; an error says which file is missing.
pub(crate) fn font() -> anyhow::Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("VIPD_BENCH_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        let bytes = candidates
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                format!(
                    "no TrueType font found (tried {candidates:?}): apt-get install fonts-dejavu-core or set VIPD_BENCH_FONT"
                )
            })?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the font file is not a usable TrueType font".to_owned())
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e:?}")
}

/// The legend as every chart here draws it: framed, on a translucent white box.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// Writes the finished picture `root` to `path`.
pub(crate) fn present<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    path: &Path,
) -> anyhow::Result<()> {
    root.present()
        .map_err(err)
        .with_context(|| format!("writing {}", path.display()))
}

pub(crate) const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// CDFs of the crash and graceful outages, one line per configuration:
/// `failover_crash.png`, `failover_graceful.png`.
pub fn failover_cdf(dir: &Path, outcomes: &[Outcome]) -> anyhow::Result<Vec<PathBuf>> {
    font()?;
    let mut made = Vec::new();
    for (name, pick) in [
        (
            "crash",
            (|o: &Outcome| o.crash.clone()) as fn(&Outcome) -> Vec<f64>,
        ),
        ("graceful", |o: &Outcome| o.graceful.clone()),
    ] {
        let path = dir.join(format!("failover_{name}.png"));
        let all: Vec<f64> = outcomes.iter().flat_map(pick).collect();
        let max = all.iter().copied().fold(1.0f64, f64::max) * 1.5;
        let min = all.iter().copied().fold(max, f64::min).max(0.1) / 1.5;
        draw_cdf(&path, name, min, max, outcomes, pick)?;
        made.push(path);
    }
    Ok(made)
}

fn draw_cdf(
    path: &Path,
    name: &str,
    min: f64,
    max: f64,
    outcomes: &[Outcome],
    pick: fn(&Outcome) -> Vec<f64>,
) -> anyhow::Result<()> {
    {
        let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{name} failover: outage seen by a client pinging every 1 ms (CDF)"),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d((min..max).log_scale(), 0f64..1.0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("client-visible outage (ms, log scale)")
            .y_desc("fraction of repetitions")
            .draw()
            .map_err(err)?;
        for (i, o) in outcomes.iter().enumerate() {
            let mut samples = pick(o);
            if samples.is_empty() {
                continue;
            }
            samples.sort_by(f64::total_cmp);
            let n = samples.len() as f64;
            let mut points = Vec::new();
            for (k, x) in samples.iter().enumerate() {
                points.push((*x, k as f64 / n));
                points.push((*x, (k + 1) as f64 / n));
            }
            let color = PALETTE[i % PALETTE.len()];
            let style = if o.plan.kind == Kind::Keepalived {
                color.stroke_width(2)
            } else {
                color.stroke_width(3)
            };
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(err)?
                .label(format!(
                    "{} {} ms adverts (n={})",
                    o.plan.label(),
                    o.plan.interval.as_millis(),
                    samples.len()
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        present(&root, path)?;
    }
    Ok(())
}

/// One panel per timeline: who is MASTER over time and when the client got replies.
pub fn timeline(path: &Path, timelines: &[Timeline]) -> anyhow::Result<PathBuf> {
    font()?;
    let root = BitMapBackend::new(path, (1100, 330 * timelines.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((timelines.len(), 1));
    for (panel, t) in panels.iter().zip(timelines) {
        let x_min = t
            .states
            .iter()
            .map(|s| s.0)
            .chain(t.replies.iter().copied())
            .fold(0.0f64, f64::min);
        let x_max = t
            .states
            .iter()
            .map(|s| s.0)
            .chain(t.replies.iter().copied())
            .fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "{}: who is MASTER, and the client's replies (0 = event)",
                    t.label
                ),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(110)
            .build_cartesian_2d(x_min..x_max, 0f64..3.0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("ms since the master was killed")
            .y_labels(4)
            .y_label_formatter(&|y| match y.round() as i64 {
                2 => "r1 (MASTER up)".to_owned(),
                1 => "r2 (MASTER up)".to_owned(),
                0 => "client reply".to_owned(),
                _ => String::new(),
            })
            .draw()
            .map_err(err)?;
        let level = |base: f64, on: bool| if on { base + 0.6 } else { base };
        let step = |f: &dyn Fn(&(f64, bool, bool)) -> f64| -> Vec<(f64, f64)> {
            let mut out = Vec::new();
            for w in t.states.windows(2) {
                out.push((w[0].0, f(&w[0])));
                out.push((w[1].0, f(&w[0])));
            }
            out
        };
        chart
            .draw_series(LineSeries::new(
                step(&|s| level(1.7, s.1)),
                PALETTE[0].stroke_width(2),
            ))
            .map_err(err)?
            .label("r1 MASTER (high)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], PALETTE[0]));
        chart
            .draw_series(LineSeries::new(
                step(&|s| level(0.7, s.2)),
                PALETTE[1].stroke_width(2),
            ))
            .map_err(err)?
            .label("r2 MASTER (high)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], PALETTE[1]));
        chart
            .draw_series(
                t.replies
                    .iter()
                    .map(|x| Circle::new((*x, 0.2), 2, PALETTE[2].filled())),
            )
            .map_err(err)?
            .label("client got a reply")
            .legend(|(x, y)| Circle::new((x + 10, y), 3, PALETTE[2].filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    present(&root, path)?;
    Ok(path.to_owned())
}
