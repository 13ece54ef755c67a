//! Load balancing: vipd's XDP direct-routing balancer against HAProxy (TCP mode) and
//! nginx `stream`, the proxies an operator would pick instead, in the same run, with
//! the same client (wrk) and the same three nginx real servers.
//!
//! Lab: one LAN (bridge), a client, a balancer and three real servers with the VIP on
//! `lo` (arp_ignore / arp_announce, as DR needs; the proxies connect to the servers'
//! own addresses instead). Runs, each `secs` long, with keep-alive connections and with
//! a new connection per request (`Connection: close`), in three rounds (one with
//! `--quick`) of:
//! - `direct`: wrk straight to one real server;
//! - `direct-all`: wrk straight to all three, a thread each: what client, bridge and
//!   servers cost without a balancer, the baseline;
//! - `vipd`: vipd (VRRP holding the VIP + `virtual_server … lb_kind DR`, XDP generic);
//! - `vipd-native`, only with `VIPD_BENCH_LB_NATIVE=1` (needs ethtool): the same in
//!   native (driver) XDP, with what a veth lab needs for it ([`NativeWire`]);
//! - `haproxy`: HAProxy 2.6, `mode tcp`, one thread, round robin;
//! - `nginx`: nginx 1.22 `stream`, one worker, round robin.
//!
//! **LB CPU per request** is the machine's busy CPU (every process, and the kernel's
//! softirq work, which on veth runs on the sending CPU and cannot be charged to one
//! namespace) per request, minus `direct-all`'s of the same round: what putting the
//! balancer in the path costs. The vipd / HAProxy ratio is the median of the rounds';
//! the ratio against `direct` (the method until 2026-12-05) is printed too. wrk runs
//! 3 threads × 5 connections every time, and the lab's switch does not hand frames to
//! netfilter ([`vipd_tests::topo::Lan`]), so the client and the switch cost the same
//! in every run.
//! The balancer namespace's own process CPU is shown beside it. The XDP program's own
//! cost per packet comes from BPF_PROG_TEST_RUN.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use vipd_tests::topo::{Lan, add_addr};
use vipd_tests::vipd::{Router, Scratch};
use vipd_tests::{Netns, Proc, poll_until};

use super::{Options, machine_cpu};

const VIP: &str = "192.0.2.100";
const LB: &str = "192.0.2.1";
const CLIENT: &str = "192.0.2.50";
const RS: [&str; 3] = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
/// wrk connections: enough to keep one core of servers busy, few enough for 2 cores;
/// five per thread.
const CONNECTIONS: u32 = 15;
/// wrk threads: one per real server in the `direct-all` run, the same in every run so
/// the client costs the same.
const THREADS: u32 = 3;
/// The run each balancer's cost is the difference from.
const BASELINE: &str = "direct-all";

/// wrk script for `direct-all`: each thread (five connections) to its own real server,
/// as a client that balances by itself (DNS round robin) would.
fn spread_script() -> String {
    let servers: Vec<String> = RS.iter().map(|rs| format!("\"{rs}\"")).collect();
    format!(
        "local servers = {{{}}}\nlocal n = 0\n\
         function setup(thread)\n  n = n % #servers + 1\n  \
         thread.addr = wrk.lookup(servers[n], \"80\")[1]\nend\n",
        servers.join(", ")
    )
}

/// LAN members.
const CLIENT_NS: usize = 0;
const LB_NS: usize = 1;

fn rs_nginx_conf(dir: &Path, name: &str) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\ndaemon off;\npid {d}/{name}.pid;\nerror_log {d}/{name}.err;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/{name}-body;\n  \
         proxy_temp_path {d}/{name}-proxy;\n  fastcgi_temp_path {d}/{name}-fcgi;\n  \
         uwsgi_temp_path {d}/{name}-uwsgi;\n  scgi_temp_path {d}/{name}-scgi;\n  \
         keepalive_requests 1000000;\n  \
         server {{ listen 80 reuseport; location / {{ return 200 \"{name}\\n\"; }} }}\n}}\n"
    )
}

fn stream_conf(dir: &Path) -> String {
    let d = dir.display();
    let servers: String = RS
        .iter()
        .map(|rs| format!("    server {rs}:80;\n"))
        .collect();
    format!(
        "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\nworker_processes 1;\n\
         daemon off;\npid {d}/lb-nginx.pid;\nerror_log {d}/lb-nginx.err;\n\
         events {{ worker_connections 4096; }}\n\
         stream {{\n  upstream rs {{\n{servers}  }}\n  server {{ listen {VIP}:80; proxy_pass rs; }}\n}}\n"
    )
}

fn haproxy_conf() -> String {
    let servers: String = RS
        .iter()
        .enumerate()
        .map(|(i, rs)| format!("  server rs{} {rs}:80\n", i + 1))
        .collect();
    format!(
        "global\n  nbthread 1\n  maxconn 8192\ndefaults\n  mode tcp\n  timeout connect 2s\n  \
         timeout client 30s\n  timeout server 30s\nfrontend f\n  bind {VIP}:80\n  \
         default_backend b\nbackend b\n  balance roundrobin\n{servers}"
    )
}

fn vipd_conf() -> String {
    let servers: String = RS
        .iter()
        .map(|rs| format!("  real_server {rs} 80 {{\n    weight 1\n  }}\n"))
        .collect();
    format!(
        "global_defs {{\n  router_id lb\n  vrrp_version 3\n}}\n\
         vrrp_instance VI_1 {{\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  \
         priority 200\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n{servers}}}\n"
    )
}

/// [`vipd_conf`] in vipd's TOML, with the XDP attach mode set: `native` for the
/// `vipd-native` row (`VIPD_BENCH_LB_NATIVE=1`). keepalived's syntax has no key for it.
fn vipd_toml(xdp: &str) -> String {
    let servers: String = RS
        .iter()
        .map(|rs| {
            format!("\n[[virtual_server.real_server]]\naddress = \"{rs}\"\nport = 80\nweight = 1\n")
        })
        .collect();
    format!(
        "[global]\nrouter_id = \"lb\"\n\n[instance.VI_1]\ninterface = \"eth0\"\n\
         virtual_router_id = 51\npriority = 200\nadvert_int = \"1s\"\nstate = \"MASTER\"\n\
         version = 3\nvirtual_ipaddress = [\"{VIP}/24\"]\nxdp = \"{xdp}\"\n\n\
         [[virtual_server]]\naddress = \"{VIP}\"\nport = 80\nlb_algo = \"rr\"\n\
         lb_kind = \"DR\"\nprotocol = \"TCP\"\n{servers}"
    )
}

/// What one wrk run measured.
#[derive(Debug, Clone)]
struct Run {
    requests: u64,
    errors: u64,
    /// wrk's own lines about them ([`WrkOutput::error_lines`]).
    error_lines: Vec<String>,
    rps: f64,
    p99_ms: f64,
    /// Segments the client retransmitted (its namespace's `Tcp: RetransSegs`): what
    /// the path lost on the way to the real servers, as the client saw it.
    retransmits: u64,
    machine_cpu_s: f64,
    lb_cpu_s: f64,
}

impl Run {
    fn cpu_us_per_request(&self) -> f64 {
        self.machine_cpu_s / self.requests.max(1) as f64 * 1e6
    }
}

/// What wrk printed: requests, errors, requests/s, p99 (ms), and its own lines about
/// the errors (`Socket errors: connect …, read …, write …, timeout …`, non-2xx
/// responses), to tell a lost SYN from a reset.
#[derive(Debug)]
struct WrkOutput {
    requests: u64,
    errors: u64,
    error_lines: Vec<String>,
    rps: f64,
    p99_ms: f64,
}

/// Parses wrk's `--latency` output.
fn parse_wrk(text: &str) -> anyhow::Result<WrkOutput> {
    let mut requests = None;
    let mut rps = None;
    let mut p99 = None;
    let mut errors = 0u64;
    let mut error_lines = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("requests in") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = parse_latency_ms(v.trim());
        } else if line.starts_with("Socket errors:") {
            errors += line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
            error_lines.push(line.to_owned());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(0);
            error_lines.push(line.to_owned());
        }
    }
    match (requests, rps, p99) {
        (Some(requests), Some(rps), Some(p99_ms)) => Ok(WrkOutput {
            requests,
            errors,
            error_lines,
            rps,
            p99_ms,
        }),
        _ => bail!("could not read wrk's output:\n{text}"),
    }
}

fn parse_latency_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => return None,
    })
}

/// CPU seconds (user + system) of every process in `ns` so far.
fn namespace_cpu_s(ns: &Netns) -> f64 {
    let hz = super::clock_ticks();
    ns.pids()
        .unwrap_or_default()
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the parenthesised command name; utime, stime are 14 and 15.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / hz)
        })
        .sum()
}

/// `Tcp: RetransSegs` of `ns` (`/proc/net/snmp` is per network namespace).
fn tcp_retransmits(ns: &Netns) -> anyhow::Result<u64> {
    let out = ns.exec(&["cat", "/proc/net/snmp"])?;
    snmp_field(&String::from_utf8_lossy(&out.stdout), "Tcp", "RetransSegs")
        .context("no Tcp: RetransSegs in /proc/net/snmp")
}

/// One field of `/proc/net/snmp`'s `PROTO:` header / value line pair.
fn snmp_field(text: &str, proto: &str, field: &str) -> Option<u64> {
    let prefix = format!("{proto}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let names = lines.next()?.split_whitespace();
    let values = lines.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(name, _)| *name == field)
        .and_then(|(_, value)| value.parse().ok())
}

/// One wrk run against `target` (with `script`, which may send threads elsewhere).
fn wrk(
    lan: &Lan,
    target: &str,
    script: Option<&Path>,
    secs: u64,
    close: bool,
) -> anyhow::Result<Run> {
    let url = format!("http://{target}/");
    let duration = format!("{secs}s");
    let connections = CONNECTIONS.to_string();
    let threads = THREADS.to_string();
    let script = script.map(|p| p.display().to_string());
    let mut argv = vec![
        "wrk",
        "-t",
        &threads,
        "-c",
        &connections,
        "-d",
        &duration,
        "--latency",
        "--timeout",
        "2s",
    ];
    if close {
        argv.extend(["-H", "Connection: close"]);
    }
    if let Some(script) = &script {
        argv.extend(["-s", script]);
    }
    argv.push(&url);
    let lb_ns = lan.member(LB_NS);
    let client = lan.member(CLIENT_NS);
    let retrans_before = tcp_retransmits(client)?;
    let (cpu_before, lb_before) = (machine_cpu(), namespace_cpu_s(lb_ns));
    let out = client.exec(&argv)?;
    let (cpu_after, lb_after) = (machine_cpu(), namespace_cpu_s(lb_ns));
    let retransmits = tcp_retransmits(client)?.saturating_sub(retrans_before);
    let text = String::from_utf8_lossy(&out.stdout);
    let WrkOutput {
        requests,
        errors,
        error_lines,
        rps,
        p99_ms,
    } = parse_wrk(&text)?;
    Ok(Run {
        requests,
        errors,
        error_lines,
        rps,
        p99_ms,
        retransmits,
        machine_cpu_s: cpu_after.0 - cpu_before.0,
        lb_cpu_s: lb_after - lb_before,
    })
}

/// Polls `target:80` from the client until it answers.
fn wait_http(lan: &Lan, target: &str) -> anyhow::Result<()> {
    let url = format!("http://{target}/");
    poll_until(
        &format!("{url} to answer"),
        Duration::from_secs(15),
        Duration::from_millis(100),
        || -> Result<(), String> {
            let out = lan
                .member(CLIENT_NS)
                .exec(&["wrk", "-t1", "-c1", "-d1s", "--timeout", "1s", &url])
                .map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            match parse_wrk(&format!("{text}\n99% 0us")) {
                Ok(w) if w.requests > 0 && w.errors == 0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
}

/// BPF_PROG_TEST_RUN: the XDP program's own time for a packet of an established
/// flow to a balanced service, and for a packet it passes (not to a service). Measured
/// by vipd's example `lb_xdp_time` (xtask does not link vipd: see that example's doc).
fn xdp_ns_per_packet() -> anyhow::Result<Value> {
    let out = crate::cargo()
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "vipd",
            "--example",
            "lb_xdp_time",
            "--",
            VIP,
        ])
        .args(RS)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot start cargo")?;
    if !out.status.success() {
        bail!("lb_xdp_time failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).context("lb_xdp_time printed no JSON")
}

/// What a veth lab needs for native (driver) XDP to stand for a NIC's, set for the
/// `vipd-native` row and undone on drop:
/// - an XDP program (`XDP_PASS`, [`PASS_C`]) on the balancer's switch-side port: a veth
///   delivers its peer's XDP_TX frames only to a veth that runs XDP itself (it wakes
///   no other receiver for them);
/// - the client computes its checksums (tx checksum offload off): a veth hands the
///   packet on with the checksum left to do (CHECKSUM_PARTIAL), an XDP_TX frame loses
///   that mark, and the real server drops the packet as corrupt (`TcpInCsumErrors`).
///   A NIC on a real wire carries full checksums. The client's extra work counts
///   against vipd: the baseline runs have the offload on.
struct NativeWire<'a> {
    lan: &'a Lan,
}

/// The switch port's program: pass everything.
const PASS_C: &str = "__attribute__((section(\"xdp\"), used)) int pass(void *ctx) { return 2; }\n\
                      char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n";

impl<'a> NativeWire<'a> {
    fn set(lan: &'a Lan, scratch: &Scratch) -> anyhow::Result<NativeWire<'a>> {
        let source = scratch.write("xdp-pass.c", PASS_C)?;
        let object = scratch.path().join("xdp-pass.o");
        crate::run(
            std::process::Command::new("clang-22")
                .args(["-O2", "-target", "bpf", "-c"])
                .arg(&source)
                .arg("-o")
                .arg(&object),
        )
        .context("compiling the switch port's XDP_PASS program (clang-22: `cargo xtask setup`)")?;
        let wire = NativeWire { lan };
        let port = Lan::port_name(LB_NS);
        let object = object.display().to_string();
        lan.switch().exec_ok(&[
            "ip", "link", "set", "dev", &port, "xdpdrv", "obj", &object, "sec", "xdp",
        ])?;
        lan.member(CLIENT_NS)
            .exec_ok(&["ethtool", "-K", "eth0", "tx", "off"])?;
        Ok(wire)
    }
}

impl Drop for NativeWire<'_> {
    fn drop(&mut self) {
        let port = Lan::port_name(LB_NS);
        let undo = self
            .lan
            .switch()
            .exec_ok(&["ip", "link", "set", "dev", &port, "xdpdrv", "off"])
            .and_then(|_| {
                self.lan
                    .member(CLIENT_NS)
                    .exec_ok(&["ethtool", "-K", "eth0", "tx", "on"])
            });
        if let Err(e) = undo {
            eprintln!("bench lb: cannot undo the native-XDP wire settings: {e:#}");
        }
    }
}

/// Runs the load-balancing bench.
pub fn run(bin: &Path, opts: Options) -> anyhow::Result<Value> {
    for tool in ["wrk", "nginx", "haproxy"] {
        if which::which(tool).is_err() {
            bail!("{tool} is not installed: run `cargo xtask setup`");
        }
    }
    let secs = if opts.quick { 3 } else { 10 };
    let lan = Lan::new("bench_lb", 5)?;
    add_addr(lan.member(CLIENT_NS), "eth0", &format!("{CLIENT}/24"))?;
    add_addr(lan.member(LB_NS), "eth0", &format!("{LB}/24"))?;
    // A connection per request at tens of thousands per second runs a proxy (and the
    // client) out of ephemeral ports within seconds, which would measure TIME_WAIT,
    // not the balancer: the whole port range, and reuse, as a loaded proxy host has.
    for ns in [lan.member(CLIENT_NS), lan.member(LB_NS)] {
        ns.sysctl("net.ipv4.ip_local_port_range", "1024 65535")?;
        ns.sysctl("net.ipv4.tcp_tw_reuse", "1")?;
    }
    let scratch = Scratch::new("bench_lb")?;
    let dir = scratch.path().to_owned();
    let mut servers: Vec<Proc> = Vec::new();
    for (i, rs) in RS.iter().enumerate() {
        let ns = lan.member(2 + i);
        add_addr(ns, "eth0", &format!("{rs}/24"))?;
        vipd_tests::lb::real_server_setup(ns, &[VIP])?;
        let name = format!("rs{}", i + 1);
        let conf = scratch.write(&format!("{name}.conf"), &rs_nginx_conf(&dir, &name))?;
        servers.push(ns.spawn(&["nginx", "-c", &conf.display().to_string()])?);
    }
    wait_http(&lan, RS[0])?;

    let xdp = xdp_ns_per_packet().context("timing the XDP program")?;
    println!(
        "  XDP program (BPF_PROG_TEST_RUN): {} ns per packet of an established flow, {} ns per packet not to a service",
        xdp["established_flow_ns"], xdp["not_a_service_ns"]
    );

    // Rounds of direct, vipd, HAProxy and nginx in turn: the machine's speed drifts
    // between runs (a shared VM: the direct run's CPU per request moved by half between
    // two runs an hour apart), and each balancer's cost is the difference from the
    // direct run of its own round. The ratio is the median of the rounds'.
    let rounds = if opts.quick { 1 } else { 3 };
    let mut rows: Vec<(usize, String, bool, Run)> = Vec::new();
    let lb_ns = lan.member(LB_NS);
    let spread = scratch.write("spread.lua", &spread_script())?;
    let measure = |rows: &mut Vec<(usize, String, bool, Run)>,
                   round: usize,
                   label: &str,
                   target: &str|
     -> anyhow::Result<()> {
        wait_http(&lan, target)?;
        let script = (label == BASELINE).then_some(spread.as_path());
        for close in [false, true] {
            let run = wrk(&lan, target, script, secs, close)?;
            rows.push((round, label.to_owned(), close, run));
        }
        Ok(())
    };
    let run_vipd = |rows: &mut Vec<(usize, String, bool, Run)>,
                    round: usize,
                    label: &str,
                    file: &str,
                    text: &str|
     -> anyhow::Result<()> {
        let conf = scratch.write(file, text)?;
        let mut router = Router::from_file(lb_ns, &scratch, label, &conf)?.bin(bin);
        router.start()?;
        router.wait_state("VI_1", "MASTER", Duration::from_secs(10))?;
        poll_until(
            "vipd to resolve the real servers",
            Duration::from_secs(15),
            Duration::from_millis(100),
            || -> Result<(), String> {
                let status = router.status().map_err(|e| e.to_string())?;
                let reachable = status["virtual_servers"][0]["real_servers"]
                    .as_array()
                    .is_some_and(|l| l.iter().all(|r| r["unreachable"].is_null()));
                if reachable {
                    Ok(())
                } else {
                    Err(status["virtual_servers"].to_string())
                }
            },
        )?;
        measure(rows, round, label, VIP)?;
        // The data path's own account of these runs: a request wrk lost shows here
        // as a drop counter (e.g. a packet of a flow the table did not know).
        if let Ok(status) = router.status() {
            let counters: Vec<String> = status["lb_counters"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| v.as_u64().is_some_and(|n| n > 0))
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let link = lb_ns
                .ip(&["-s", "-j", "link", "show", "eth0"])
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .map(|v| {
                    let s = &v[0]["stats64"];
                    format!(
                        "; eth0 rx dropped {}, tx dropped {}",
                        s["rx"]["dropped"], s["tx"]["dropped"]
                    )
                })
                .unwrap_or_default();
            println!(
                "      vipd data path, round {round}: {}{link}",
                counters.join(", ")
            );
        }
        router.stop(Duration::from_secs(5))?;
        Ok(())
    };
    let vip_cidr = format!("{VIP}/24");
    let native = std::env::var_os("VIPD_BENCH_LB_NATIVE").is_some();
    if native && which::which("ethtool").is_err() {
        bail!(
            "VIPD_BENCH_LB_NATIVE needs ethtool (not installed by setup: only this row uses it): apt-get install ethtool"
        );
    }
    for round in 0..rounds {
        measure(&mut rows, round, "direct", RS[0])?;
        measure(&mut rows, round, BASELINE, RS[0])?;
        // vipd adds the VIP itself (the proxies' rounds added it by hand).
        if round > 0 {
            lb_ns.exec_ok(&["ip", "addr", "del", &vip_cidr, "dev", "eth0"])?;
        }
        run_vipd(&mut rows, round, "vipd", "lb-vipd.conf", &vipd_conf())?;
        if native {
            let _wire = NativeWire::set(&lan, &scratch)?;
            run_vipd(
                &mut rows,
                round,
                "vipd-native",
                "lb-vipd-native.toml",
                &vipd_toml("native"),
            )?;
        }
        add_addr(lb_ns, "eth0", &vip_cidr)?;
        {
            let conf = scratch.write("haproxy.cfg", &haproxy_conf())?;
            let _haproxy = lb_ns.spawn(&["haproxy", "-db", "-f", &conf.display().to_string()])?;
            measure(&mut rows, round, "haproxy", VIP)?;
        }
        {
            let conf = scratch.write("lb-nginx.conf", &stream_conf(&dir))?;
            let _nginx = lb_ns.spawn(&["nginx", "-c", &conf.display().to_string()])?;
            measure(&mut rows, round, "nginx", VIP)?;
        }
    }
    drop(servers);

    println!(
        "{:<5} {:<11} {:<11} {:>10} {:>9} {:>8} {:>8} {:>14} {:>14} {:>14}",
        "round",
        "balancer",
        "connections",
        "req/s",
        "p99 ms",
        "errors",
        "retrans",
        "CPU µs/req",
        "LB CPU µs/req",
        "LB proc µs/req"
    );
    let cpu = |round: usize, label: &str, close: bool| {
        rows.iter()
            .find(|(r, l, c, _)| *r == round && l == label && *c == close)
            .map(|(_, _, _, run)| run.cpu_us_per_request())
    };
    let is_direct = |label: &str| label == "direct" || label == BASELINE;
    let mut table = Vec::new();
    for (round, label, close, run) in &rows {
        let lb_cpu = if is_direct(label) {
            0.0
        } else {
            run.cpu_us_per_request() - cpu(*round, BASELINE, *close).unwrap_or(0.0)
        };
        let proc_cpu = run.lb_cpu_s / run.requests.max(1) as f64 * 1e6;
        let kind = if *close { "new/request" } else { "keep-alive" };
        println!(
            "{round:<5} {label:<11} {kind:<11} {:>10.0} {:>9.2} {:>8} {:>8} {:>14.1} {:>14.1} {:>14.1}",
            run.rps,
            run.p99_ms,
            run.errors,
            run.retransmits,
            run.cpu_us_per_request(),
            lb_cpu,
            proc_cpu
        );
        for line in &run.error_lines {
            println!("      wrk: {line}");
        }
        table.push(json!({
            "round": round,
            "balancer": label,
            "connection_per_request": close,
            "requests": run.requests,
            "requests_per_second": run.rps,
            "p99_ms": run.p99_ms,
            "errors": run.errors,
            "error_lines": run.error_lines,
            "client_retransmits": run.retransmits,
            "machine_cpu_us_per_request": run.cpu_us_per_request(),
            "lb_cpu_us_per_request": lb_cpu,
            "lb_process_cpu_us_per_request": proc_cpu,
        }));
    }
    // The ratio against `direct-all` is the result; against `direct` (one server: the
    // method until 2026-12) it also charges the balancer for the servers sharing the
    // load (three nginx processes woken for fewer requests each, not one), which is
    // the servers' cost, not the balancer's.
    let mut ratios = serde_json::Map::new();
    let labels = ["vipd", "vipd-native"]
        .into_iter()
        .filter(|name| rows.iter().any(|(_, label, _, _)| label == name));
    for (name, (baseline, suffix, what)) in labels.flat_map(|name| {
        [
            (BASELINE, "", "against direct to all three servers"),
            (
                "direct",
                "_one_server_baseline",
                "against direct to one server",
            ),
        ]
        .map(|b| (name, b))
    }) {
        let mut by_kind = serde_json::Map::new();
        for close in [false, true] {
            let lb = |round: usize, name: &str| {
                Some(cpu(round, name, close)? - cpu(round, baseline, close)?)
            };
            let per_round: Vec<f64> = (0..rounds)
                .filter_map(|round| match (lb(round, name), lb(round, "haproxy")) {
                    (Some(v), Some(h)) if h > 0.0 => Some(v.max(0.0) / h),
                    _ => None,
                })
                .collect();
            let Some(median) = super::stats::Summary::of(&per_round).map(|s| s.p50) else {
                continue;
            };
            let kind = if close {
                "new connection per request"
            } else {
                "keep-alive"
            };
            let each: Vec<String> = per_round.iter().map(|r| format!("{r:.2}")).collect();
            let target = if baseline == BASELINE {
                " (target ≤ 0.25)"
            } else {
                ""
            };
            println!(
                "  {name} LB CPU per request / HAProxy's ({kind}, {what}): {median:.2}, the median of the rounds' {}{target}",
                each.join(", ")
            );
            by_kind.insert(
                if close { "close" } else { "keep_alive" }.into(),
                json!({ "median": median, "per_round": per_round }),
            );
        }
        let key = format!("{}_over_haproxy_lb_cpu{suffix}", name.replace('-', "_"));
        ratios.insert(key, by_kind.into());
    }
    let mut out = json!({
        "seconds_per_run": secs,
        "rounds": rounds,
        "connections": CONNECTIONS,
        "threads": THREADS,
        "xdp_program": xdp,
        "runs": table,
    });
    if let Some(map) = out.as_object_mut() {
        map.extend(ratios);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // As wrk 4.1 prints it with --latency (shortened).
    const OUTPUT: &str = "\
Running 10s test @ http://192.0.2.100/
  Latency Distribution
     50%  150.00us
     99%    2.27ms
  90991 requests in 10.00s, 13.45MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 1
Requests/sec:   9099.10
";

    #[test]
    fn snmp_fields_are_read_from_their_protocol_pair() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm ActiveOpens RetransSegs InErrs\nTcp: 1 17 42 0\n";
        assert_eq!(snmp_field(text, "Tcp", "RetransSegs"), Some(42));
        assert_eq!(snmp_field(text, "Tcp", "ActiveOpens"), Some(17));
        assert_eq!(snmp_field(text, "Ip", "RetransSegs"), None);
        assert_eq!(snmp_field(text, "Udp", "InDatagrams"), None);
    }

    #[test]
    fn wrk_output_with_errors_keeps_their_lines() {
        let w = parse_wrk(OUTPUT).unwrap();
        assert_eq!(w.requests, 90991);
        assert_eq!(w.errors, 3);
        assert_eq!(
            w.error_lines,
            vec![
                "Socket errors: connect 0, read 0, write 0, timeout 2".to_owned(),
                "Non-2xx or 3xx responses: 1".to_owned(),
            ]
        );
        assert!((w.rps - 9099.1).abs() < 1e-6);
        assert!((w.p99_ms - 2.27).abs() < 1e-6);
        assert!(parse_wrk("no numbers").is_err());
    }
}
