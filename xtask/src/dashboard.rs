//! `cargo xtask dashboard`: the panels of contrib/grafana/vipd.json drawn with plotters
//! from metrics scraped during a real run, into docs/img/dashboard.png.
//!
//! Grafana itself cannot be installed here, so this draws the same four panels from the
//! same Prometheus series: two vipd routers (priorities 150 and 100, adverts every
//! 100 ms, XDP on) in network namespaces, each serving `--metrics-listen`; a scraper
//! reads both `/metrics` every 100 ms while the run forces three failovers of r1: frozen
//! (SIGSTOP, so its next advert is late), link down (FAULT), and a graceful stop and
//! restart. The load-balancer row of the dashboard has no data until the load balancer
//! exports its `vipd_lb_*` series; the picture leaves the row's place marked.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use plotters::prelude::*;
use vipd_tests::in_netns;
use vipd_tests::netns::Netns;
use vipd_tests::proc::Proc;
use vipd_tests::topo::{Lan, add_addr, link_down, link_up};

use crate::bench::plot::{PALETTE, err, font};

const LISTEN: &str = "127.0.0.1:9641";
const SCRAPE_EVERY: Duration = Duration::from_millis(100);

/// One scrape: seconds since the start, router, series (`name{labels}`) → value.
type Scrape = (f64, &'static str, BTreeMap<String, f64>);

/// A marked moment of the run: seconds since the start and what happened.
type Event = (f64, &'static str);

struct Router<'a> {
    name: &'static str,
    ns: &'a Netns,
    config: PathBuf,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl Router<'_> {
    fn start(&mut self, bin: &Path) -> anyhow::Result<()> {
        let bin = bin.to_string_lossy().into_owned();
        let config = self.config.to_string_lossy().into_owned();
        let bpffs = format!("/sys/fs/bpf/vipd-dash-{}-{}", std::process::id(), self.name);
        let run_dir = self.dir.join(format!("{}.run", self.name));
        let run_dir = run_dir.to_string_lossy().into_owned();
        self.proc = Some(self.ns.spawn(&[
            &bin,
            "run",
            "-c",
            &config,
            "--bpffs-dir",
            &bpffs,
            "--run-dir",
            &run_dir,
            "--metrics-listen",
            LISTEN,
        ])?);
        Ok(())
    }
}

impl Drop for Router<'_> {
    fn drop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            let _ = proc.terminate(Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(format!(
            "/sys/fs/bpf/vipd-dash-{}-{}",
            std::process::id(),
            self.name
        ));
    }
}

/// Runs the lab and writes the picture to `out`.
pub fn dashboard(bin: &Path, out: &Path) -> anyhow::Result<()> {
    font()?;
    let lan = Lan::new("dash", 2).context("building the lab (needs root)")?;
    let dir = std::env::temp_dir().join(format!("vipd-dash-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut routers = Vec::new();
    for (i, (name, priority)) in [("r1", 150u8), ("r2", 100)].into_iter().enumerate() {
        let ns = lan.member(i);
        add_addr(ns, "eth0", &format!("192.0.2.{}/24", i + 1))?;
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[global]\nrouter_id = \"{name}\"\ncontrol_socket = \"{}\"\n\n\
                 [instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\n\
                 priority = {priority}\nadvert_int = \"100ms\"\n\
                 virtual_ipaddress = [\"192.0.2.100/24\"]\ngarp_master_delay = \"0s\"\nxdp = \"auto\"\n",
                dir.join(format!("{name}.sock")).display()
            ),
        )?;
        routers.push(Router {
            name,
            ns,
            config,
            dir: dir.clone(),
            proc: None,
        });
    }

    let started = Instant::now();
    let since = move || started.elapsed().as_secs_f64();
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes: Arc<Mutex<Vec<Scrape>>> = Arc::default();
    let mut events: Vec<Event> = Vec::new();
    let result = std::thread::scope(|scope| -> anyhow::Result<()> {
        for router in &routers {
            let (stop, scrapes, ns, name) = (stop.clone(), scrapes.clone(), router.ns, router.name);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let next = Instant::now() + SCRAPE_EVERY;
                    if let Ok(Ok(text)) = in_netns(ns, get_metrics) {
                        let at = since();
                        if let Ok(mut all) = scrapes.lock() {
                            all.push((at, name, parse(&text)));
                        }
                    }
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            });
        }
        let mut scenario = || -> anyhow::Result<()> {
            for router in routers.iter_mut() {
                router.start(bin)?;
            }
            events.push((since(), "start"));
            std::thread::sleep(Duration::from_secs(4));
            let r1 = routers[0].proc.as_ref().context("r1 runs")?;
            events.push((since(), "r1 frozen 0.8 s"));
            r1.signal(libc::SIGSTOP)?;
            std::thread::sleep(Duration::from_millis(800));
            r1.signal(libc::SIGCONT)?;
            std::thread::sleep(Duration::from_secs(4));
            events.push((since(), "r1 link down"));
            link_down(routers[0].ns, "eth0")?;
            std::thread::sleep(Duration::from_secs(3));
            link_up(routers[0].ns, "eth0")?;
            events.push((since(), "r1 link up"));
            std::thread::sleep(Duration::from_secs(4));
            events.push((since(), "r1 stopped (SIGTERM)"));
            if let Some(mut proc) = routers[0].proc.take() {
                proc.terminate(Duration::from_secs(5))?;
            }
            std::thread::sleep(Duration::from_secs(3));
            routers[0].start(bin)?;
            events.push((since(), "r1 restarted"));
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        };
        let result = scenario();
        stop.store(true, Ordering::Relaxed);
        result
    });
    drop(routers);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    let scrapes = std::mem::take(
        &mut *scrapes
            .lock()
            .map_err(|_| anyhow::anyhow!("scraper panicked"))?,
    );
    anyhow::ensure!(
        scrapes.len() > 100,
        "only {} scrapes: is --metrics-listen answering?",
        scrapes.len()
    );
    println!("dashboard: {} scrapes over {:.0} s", scrapes.len(), since());
    // The Grafana dashboard must ask for series vipd really exports.
    let grafana = std::fs::read_to_string(crate::workspace_root().join(GRAFANA))
        .with_context(|| format!("reading {GRAFANA}"))?;
    let missing: Vec<String> = vrrp_metric_names(&grafana)
        .into_iter()
        .filter(|name| {
            !scrapes.iter().any(|s| {
                s.2.keys()
                    .any(|k| k.split('{').next() == Some(name.as_str()))
            })
        })
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{GRAFANA} queries series vipd did not export in the run: {missing:?}"
    );
    draw(out, &scrapes, &events)?;
    println!("dashboard: wrote {}", out.display());
    Ok(())
}

fn get_metrics() -> anyhow::Result<String> {
    let mut stream = std::net::TcpStream::connect(LISTEN)?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: vipd\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (_, body) = response.split_once("\r\n\r\n").context("no HTTP body")?;
    Ok(body.to_owned())
}

/// The Grafana dashboard this picture shows.
const GRAFANA: &str = "contrib/grafana/vipd.json";

/// The metric names a dashboard's queries use, but for the load balancer's (which do not
/// exist yet) and the XDP counters' regex.
fn vrrp_metric_names(dashboard: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = dashboard;
    while let Some(at) = rest.find("vipd_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        if !name.starts_with("vipd_lb_") && !name.starts_with("vipd_xdp_") {
            names.insert(name);
        }
    }
    names
}

/// Prometheus text format: `name{labels} value` per sample line.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `label` in a series name such as `vipd_x{instance="VI_1",state="MASTER"}`.
fn label<'s>(series: &'s str, label: &str) -> Option<&'s str> {
    let start = series.find(&format!("{label}=\""))? + label.len() + 2;
    let end = series[start..].find('"')? + start;
    Some(&series[start..end])
}

/// A counter's increase since the first scrape, through restarts (a drop means the
/// process restarted from 0), per scrape of `router`.
fn increases(scrapes: &[Scrape], router: &str, series: &str) -> Vec<(f64, f64)> {
    let mut total = 0.0;
    let mut last: Option<f64> = None;
    let mut out = Vec::new();
    for (at, _, samples) in scrapes.iter().filter(|s| s.1 == router) {
        let value = samples.get(series).copied().unwrap_or(0.0);
        total += match last {
            Some(prev) if value >= prev => value - prev,
            Some(_) => value,
            None => 0.0,
        };
        last = Some(value);
        out.push((*at, total));
    }
    out
}

/// A line split where scrapes are missing (the router was down), so no segment bridges
/// the gap, as Grafana leaves it empty.
fn gaps_broken(line: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    for point in line {
        match out.last_mut() {
            Some(segment) if segment.last().is_some_and(|last| point.0 - last.0 <= 0.5) => {
                segment.push(*point);
            }
            _ => out.push(vec![*point]),
        }
    }
    out
}

fn state_colour(state: &str) -> RGBColor {
    match state {
        "MASTER" => RGBColor(86, 166, 75),
        "BACKUP" => RGBColor(50, 116, 217),
        "FAULT" => RGBColor(224, 47, 68),
        _ => RGBColor(150, 150, 150),
    }
}

fn draw(out: &Path, scrapes: &[Scrape], events: &[Event]) -> anyhow::Result<()> {
    let end = scrapes.iter().map(|s| s.0).fold(1.0, f64::max);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = BitMapBackend::new(out, (1400, 1060)).into_drawing_area();
    root.fill(&RGBColor(250, 250, 250)).map_err(err)?;
    let (title, body) = root.split_vertically(40);
    title
        .draw_text(
            "vipd dashboard (contrib/grafana/vipd.json), drawn from /metrics scraped every 100 ms during a real run",
            &("sans-serif", 20).into_text_style(&title),
            (12, 10),
        )
        .map_err(err)?;
    let (grid, lb) = body.split_vertically(880);
    let panels = grid.split_evenly((2, 2));
    let routers = ["r1", "r2"];
    let event_lines = |chart: &mut ChartContext<
        '_,
        BitMapBackend<'_>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
                       y_max: f64|
     -> anyhow::Result<()> {
        chart
            .draw_series(events.iter().map(|(t, _)| {
                PathElement::new(
                    vec![(*t, 0.0), (*t, y_max)],
                    BLACK.mix(0.25).stroke_width(1),
                )
            }))
            .map_err(err)?;
        Ok(())
    };

    // 1. State timeline per instance.
    {
        let mut chart = ChartBuilder::on(&panels[0])
            .caption("Instance state (vipd_instance_state)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end, 0.0..2.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(5)
            .y_label_formatter(&|y: &f64| match (*y * 2.0).round() as i64 {
                1 => "r2 VI_1".to_owned(),
                3 => "r1 VI_1".to_owned(),
                _ => String::new(),
            })
            .x_desc("seconds")
            .draw()
            .map_err(err)?;
        for (row, router) in routers.iter().enumerate() {
            let base = 1.0 - row as f64;
            let mine: Vec<&Scrape> = scrapes.iter().filter(|s| s.1 == *router).collect();
            for pair in mine.windows(2) {
                let (from, to) = (pair[0].0, pair[1].0.min(pair[0].0 + 0.5));
                let state = pair[0]
                    .2
                    .iter()
                    .find(|(k, v)| k.starts_with("vipd_instance_state{") && **v == 1.0)
                    .and_then(|(k, _)| label(k, "state"))
                    .unwrap_or("?");
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from, base + 0.1), (to, base + 0.9)],
                        state_colour(state).filled(),
                    )))
                    .map_err(err)?;
            }
        }
        for state in ["MASTER", "BACKUP", "FAULT"] {
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(err)?
                .label(state)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], state_colour(state).filled())
                });
        }
        for (t, what) in events {
            chart
                .draw_series(std::iter::once(Text::new(
                    what.to_string(),
                    (*t, 1.97),
                    ("sans-serif", 11)
                        .into_font()
                        .transform(FontTransform::Rotate90),
                )))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }

    // 2. Transitions by reason (cumulative increase, both routers).
    {
        let mut reasons: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let names: std::collections::BTreeSet<String> = scrapes
            .iter()
            .flat_map(|s| s.2.keys())
            .filter(|k| k.starts_with("vipd_transitions_by_reason_total{"))
            .cloned()
            .collect();
        for router in routers {
            for series in &names {
                let reason = label(series, "reason").unwrap_or("?").to_owned();
                let line = increases(scrapes, router, series);
                if line.last().is_some_and(|p| p.1 > 0.0) {
                    reasons.insert(format!("{router} {reason}"), line);
                }
            }
        }
        let y_max = reasons
            .values()
            .flat_map(|l| l.iter().map(|p| p.1))
            .fold(1.0, f64::max)
            + 1.0;
        let mut chart = ChartBuilder::on(&panels[1])
            .caption(
                "Transitions by reason (vipd_transitions_by_reason_total)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..end, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("count since start")
            .draw()
            .map_err(err)?;
        event_lines(&mut chart, y_max)?;
        for (i, (name, line)) in reasons.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    line.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }

    // 3. Late adverts: how many, and the latest.
    {
        let late: Vec<(&str, Vec<(f64, f64)>)> = routers
            .iter()
            .map(|r| {
                let series = scrapes
                    .iter()
                    .flat_map(|s| s.2.keys())
                    .find(|k| k.starts_with("vipd_adverts_late_total{"))
                    .cloned()
                    .unwrap_or_default();
                (*r, increases(scrapes, r, &series))
            })
            .collect();
        let late_max: Vec<(&str, Vec<(f64, f64)>)> = routers
            .iter()
            .map(|r| {
                let line = scrapes
                    .iter()
                    .filter(|s| s.1 == *r)
                    .filter_map(|s| {
                        s.2.iter()
                            .find(|(k, _)| k.starts_with("vipd_advert_late_max_seconds{"))
                            .map(|(_, v)| (s.0, v * 1000.0))
                    })
                    .collect();
                (*r, line)
            })
            .collect();
        let y_max = late_max
            .iter()
            .flat_map(|l| l.1.iter().map(|p| p.1))
            .fold(1.0, f64::max)
            * 1.2;
        let mut chart = ChartBuilder::on(&panels[2])
            .caption(
                "Late adverts (vipd_adverts_late_total, vipd_advert_late_max_seconds)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..end, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("ms")
            .draw()
            .map_err(err)?;
        event_lines(&mut chart, y_max)?;
        for (i, (router, line)) in late_max.iter().enumerate() {
            let colour = PALETTE[i];
            let count = late[i].1.last().map_or(0.0, |p| p.1);
            chart
                .draw_series(
                    gaps_broken(line)
                        .into_iter()
                        .map(|segment| PathElement::new(segment, colour.stroke_width(2))),
                )
                .map_err(err)?
                .label(format!(
                    "{router}: latest advert, ms late ({count} late adverts in the run)"
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }

    // 4. XDP counters, as rates.
    {
        let names: std::collections::BTreeSet<String> = scrapes
            .iter()
            .flat_map(|s| s.2.keys())
            .filter(|k| k.starts_with("vipd_xdp_"))
            .cloned()
            .collect();
        let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for router in routers {
            for series in &names {
                let cumulative = increases(scrapes, router, series);
                // Per-second rate over 1 s windows, as Grafana's rate() would show it.
                let rate: Vec<(f64, f64)> = cumulative
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (t, v))| {
                        let back = cumulative[..i].iter().rev().find(|(t0, _)| t - t0 >= 1.0)?;
                        Some((*t, (v - back.1) / (t - back.0)))
                    })
                    .collect();
                if rate.iter().any(|p| p.1 > 0.0) {
                    let name = series
                        .trim_start_matches("vipd_xdp_")
                        .split('{')
                        .next()
                        .unwrap_or("")
                        .trim_end_matches("_total");
                    lines.push((format!("{router} {name}"), rate));
                }
            }
        }
        lines.sort_by(|a, b| {
            let sum = |l: &[(f64, f64)]| l.iter().map(|p| p.1).sum::<f64>();
            sum(&b.1).total_cmp(&sum(&a.1))
        });
        lines.truncate(6);
        let y_max = lines
            .iter()
            .flat_map(|l| l.1.iter().map(|p| p.1))
            .fold(1.0, f64::max)
            * 1.3;
        let mut chart = ChartBuilder::on(&panels[3])
            .caption(
                "XDP program counters, per second (vipd_xdp_*_total)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..end, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("per second")
            .draw()
            .map_err(err)?;
        event_lines(&mut chart, y_max)?;
        for (i, (name, line)) in lines.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(
                    gaps_broken(line)
                        .into_iter()
                        .map(|segment| PathElement::new(segment, colour.stroke_width(2))),
                )
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }

    // 5. The load balancer's row, waiting for its series.
    let lb = lb.margin(8, 8, 12, 12);
    lb.fill(&RGBColor(235, 235, 235)).map_err(err)?;
    let style = ("sans-serif", 16).into_text_style(&lb);
    for (i, line) in [
        "Load balancer: real servers (row in the Grafana dashboard; no data until the load balancer exports it)",
        "vipd_lb_real_server_up{service,real_server} (state timeline)   vipd_lb_real_server_weight   rate(vipd_lb_packets_total)   rate(vipd_lb_bytes_total)   vipd_lb_active_flows",
    ]
    .iter()
    .enumerate()
    {
        lb.draw_text(line, &style, (12, 20 + 40 * i as i32)).map_err(err)?;
    }
    root.present()
        .map_err(err)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_increase_through_a_restart() {
        let scrape = |t: f64, v: f64| -> Scrape { (t, "r1", [("c".to_owned(), v)].into()) };
        let scrapes = [
            scrape(0.0, 5.0),
            scrape(1.0, 7.0),
            scrape(2.0, 1.0),
            scrape(3.0, 2.0),
        ];
        assert_eq!(
            increases(&scrapes, "r1", "c"),
            vec![(0.0, 0.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)]
        );
    }

    #[test]
    fn the_grafana_dashboard_has_the_promised_panels() {
        let text = std::fs::read_to_string(crate::workspace_root().join(GRAFANA)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let panels = json["panels"].as_array().unwrap();
        let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
        for title in [
            "Instance state",
            "Transitions by reason",
            "Late adverts",
            "XDP program counters",
            "Load balancer: real servers",
            "Real server health",
        ] {
            assert!(titles.contains(&title), "{title} missing from {titles:?}");
        }
        for panel in panels.iter().filter(|p| p["type"] != "row") {
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{panel}");
            for target in targets {
                assert!(
                    target["expr"].as_str().unwrap().contains("vipd_"),
                    "{target}"
                );
            }
        }
        for lb in [
            "vipd_lb_real_server_up",
            "vipd_lb_real_server_weight",
            "vipd_lb_packets_total",
            "vipd_lb_bytes_total",
            "vipd_lb_active_flows",
        ] {
            assert!(text.contains(lb), "{lb}");
        }
        let names = vrrp_metric_names(&text);
        assert!(names.contains("vipd_instance_state") && names.contains("vipd_adverts_late_total"));
        assert!(!names.iter().any(|n| n.starts_with("vipd_lb_")));
    }

    #[test]
    fn samples_and_labels_are_read() {
        let parsed = parse(
            "# HELP x y\nvipd_instance_state{instance=\"VI_1\",state=\"MASTER\"} 1\nvipd_uptime_seconds 2.5\n",
        );
        assert_eq!(parsed.len(), 2);
        let series = parsed
            .keys()
            .find(|k| k.starts_with("vipd_instance_state"))
            .unwrap();
        assert_eq!(label(series, "state"), Some("MASTER"));
        assert_eq!(label(series, "instance"), Some("VI_1"));
        assert_eq!(label(series, "vrid"), None);
    }
}
