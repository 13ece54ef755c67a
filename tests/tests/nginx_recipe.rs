//! docs/recipes/nginx.md, run: real nginx on two vipd nodes, started and stopped by
//! contrib/nginx/nginx-notify.sh and tracked by contrib/nginx/nginx-check.sh (the shipped
//! scripts, with their paths pointed into the test's scratch directory through their
//! environment variables), `net.ipv4.ip_nonlocal_bind = 1` on both nodes.
//!
//! A client fetches http://VIP/ every 20 ms throughout. nginx on the master (node1) dies;
//! its check fails, node1 goes to FAULT and node2 takes over and starts its nginx; node1's
//! check passes again once it no longer serves, it returns as BACKUP and preempts (higher
//! priority), starting nginx again. The client must get node1's page, then node2's, then
//! node1's again, never an error response, and nothing but node1's pages once it is back.
//! The gaps are printed, not asserted (timing belongs in the bench).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use vipd_tests::vipd::{Router, Scratch, router_lab};
use vipd_tests::{Netns, in_netns, poll_until, require_root};

const VIP: &str = "192.0.2.100";

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib/nginx")
        .join(name)
}

/// One node's nginx: a config serving `served by NAME` on VIP:80 from its own prefix.
struct Nginx {
    dir: PathBuf,
    conf: PathBuf,
}

impl Nginx {
    fn new(scratch: &Scratch, name: &str) -> anyhow::Result<Nginx> {
        let dir = scratch.path().join(format!("{name}-nginx"));
        std::fs::create_dir_all(dir.join("html"))?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::write(dir.join("html/index.html"), format!("served by {name}\n"))?;
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  \
                 proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  \
                 uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  \
                 server {{ listen {VIP}:80; root {d}/html; }}\n}}\n"
            ),
        )?;
        Ok(Nginx { dir, conf })
    }

    /// A script standing in for `systemctl start|stop nginx` (which, like it, succeeds
    /// when there is nothing to do): nginx-notify.sh runs it.
    fn control_script(&self, scratch: &Scratch, action: &str) -> anyhow::Result<PathBuf> {
        let pid = self.pid_file();
        let pid = pid.display();
        // A crashed master whose orphaned process nobody reaped yet is a zombie: not
        // running, whatever `kill -0` says.
        let alive = format!(
            "pid=$(cat {pid} 2>/dev/null) && [ -n \"$pid\" ] && \
             state=$(sed -n 's/^[0-9]* (.*) \\(.\\) .*/\\1/p' /proc/$pid/stat 2>/dev/null) && \
             [ -n \"$state\" ] && [ \"$state\" != Z ]"
        );
        let body = match action {
            "start" => format!("#!/bin/sh\nexec {}\n", self.command(None)),
            _ => format!(
                "#!/bin/sh\n{alive} || exit 0\nexec {}\n",
                self.command(Some("quit"))
            ),
        };
        let name = format!(
            "{}-{action}.sh",
            self.dir
                .file_name()
                .map_or("nginx".into(), |n| n.to_string_lossy())
        );
        let script = scratch.write(&name, &body)?;
        vipd_tests::vipd::make_executable(&script)?;
        Ok(script)
    }

    /// nginx's command line with this node's config and prefix.
    fn command(&self, signal: Option<&str>) -> String {
        let mut cmd = format!(
            "nginx -c {} -p {}/ -e {}/error.log",
            self.conf.display(),
            self.dir.display(),
            self.dir.display()
        );
        if let Some(signal) = signal {
            cmd.push_str(&format!(" -s {signal}"));
        }
        cmd
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("nginx.pid")
    }

    /// Kills nginx outright, master and workers at once (what a crash leaves): SIGKILL to
    /// its process group. The master is the group's leader (nginx calls setsid when it
    /// daemonises); killing the workers first would let the master fork new ones.
    fn crash(&self) -> anyhow::Result<()> {
        let master: i32 = std::fs::read_to_string(self.pid_file())?.trim().parse()?;
        // SAFETY: kill(2) with a negative pid signals that process group; at worst it is
        // gone (ESRCH).
        let killed = unsafe { libc::kill(-master, libc::SIGKILL) };
        ensure!(
            killed == 0,
            "killing nginx's process group {master}: {}",
            std::io::Error::last_os_error()
        );
        Ok(())
    }

    fn stop(&self) {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(self.command(Some("stop")))
            .output();
    }
}

/// The node's vipd config: the recipe's, with the scripts from contrib/.
fn config(name: &str, priority: u8, socket: &Path) -> String {
    let notify = contrib("nginx-notify.sh").display().to_string();
    let check = contrib("nginx-check.sh").display().to_string();
    format!(
        r#"[global]
router_id = "{name}"
control_socket = "{socket}"

[script.chk_nginx]
script = "{check}"
interval = "200ms"
fall = 2
rise = 2
weight = 0

[instance.VI_1]
interface = "eth0"
virtual_router_id = 7
priority = {priority}
advert_int = "100ms"
virtual_ipaddress = ["{VIP}/24"]
garp_master_delay = "0s"
xdp = "off"
track_script = ["chk_nginx"]
notify_master = ["{notify}", "master"]
notify_backup = ["{notify}", "backup"]
notify_fault = ["{notify}", "fault"]
"#,
        socket = socket.display()
    )
}

/// One GET of http://VIP/ from inside the client namespace's thread.
fn fetch() -> Result<String, String> {
    let addr: SocketAddr = format!("{VIP}:80").parse().map_err(|e| format!("{e}"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if !response.starts_with("HTTP/1.1 200") {
        return Err(format!("bad response: {response:?}"));
    }
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_owned())
        .ok_or_else(|| format!("no body: {response:?}"))
}

/// Which node served each page, in order, with the failures between.
#[derive(Debug, Default)]
struct ClientLog {
    results: Vec<(Instant, Result<String, String>)>,
}

impl ClientLog {
    /// The distinct runs of serving nodes, e.g. ["node1", "node2", "node1"].
    fn servers(&self) -> Vec<String> {
        let mut runs: Vec<String> = Vec::new();
        for (_, result) in &self.results {
            if let Ok(page) = result
                && runs.last() != Some(page)
            {
                runs.push(page.clone());
            }
        }
        runs
    }
}

fn node_states(state_file: &Path) -> String {
    std::fs::read_to_string(state_file).unwrap_or_default()
}

#[test]
fn the_client_keeps_getting_pages_through_an_nginx_failover() -> anyhow::Result<()> {
    require_root();
    ensure!(
        which_nginx(),
        "nginx is not installed: `cargo xtask setup` installs nginx-light"
    );
    let (lan, scratch) = router_lab("nginx", 2, true)?;
    let client = lan.member(2);

    // `vipd check` warns about ip_nonlocal_bind where it is 0 (a namespace's default)
    // for a config whose notify commands start services...
    let mut routers = Vec::new();
    let mut nginxes = Vec::new();
    let mut state_files = Vec::new();
    for (i, (name, priority)) in [("node1", 200u8), ("node2", 100)].into_iter().enumerate() {
        let ns: &Netns = lan.member(i);
        let socket = scratch.path().join(format!("{name}.sock"));
        let path = scratch.write(&format!("{name}.toml"), &config(name, priority, &socket))?;
        let path_text = path.to_string_lossy().into_owned();
        let bin = vipd_tests::vipd_bin().to_string_lossy().into_owned();
        let checked = ns.exec(&[&bin, "check", "-c", &path_text])?;
        let stderr = String::from_utf8_lossy(&checked.stderr);
        ensure!(
            checked.status.success() && stderr.contains("net.ipv4.ip_nonlocal_bind is 0"),
            "{name}: vipd check did not warn about ip_nonlocal_bind: {stderr}"
        );
        // ...and not once the recipe's sysctl is set.
        ns.sysctl("net.ipv4.ip_nonlocal_bind", "1")?;
        let checked = ns.exec(&[&bin, "check", "-c", &path_text])?;
        let stderr = String::from_utf8_lossy(&checked.stderr);
        ensure!(
            checked.status.success() && !stderr.contains("ip_nonlocal_bind"),
            "{name}: vipd check still warns: {stderr}"
        );

        let nginx = Nginx::new(&scratch, name)?;
        let state_file = scratch.path().join(format!("{name}.state"));
        let router = Router::from_file(ns, &scratch, name, &path)?
            .env("VIPD_NGINX_STATE", &state_file.to_string_lossy())
            .env("VIPD_NGINX_PIDFILE", &nginx.pid_file().to_string_lossy())
            .env(
                "VIPD_NGINX_START",
                &nginx.control_script(&scratch, "start")?.to_string_lossy(),
            )
            .env(
                "VIPD_NGINX_STOP",
                &nginx.control_script(&scratch, "stop")?.to_string_lossy(),
            );
        routers.push(router);
        nginxes.push(nginx);
        state_files.push(state_file);
    }

    let result = (|| -> anyhow::Result<()> {
        for router in &mut routers {
            router.start()?;
        }
        routers[0].wait_state("VI_1", "MASTER", Duration::from_secs(10))?;
        routers[1].wait_state("VI_1", "BACKUP", Duration::from_secs(10))?;
        poll_until(
            "node1's page at the VIP",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || match in_netns(client, fetch) {
                Ok(Ok(page)) if page == "served by node1" => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )?;

        let stop = AtomicBool::new(false);
        let log = std::thread::scope(|scope| -> anyhow::Result<ClientLog> {
            let fetcher = scope.spawn(|| {
                in_netns(client, || {
                    let mut log = ClientLog::default();
                    while !stop.load(Ordering::Relaxed) {
                        log.results.push((Instant::now(), fetch()));
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    log
                })
            });
            let scenario = (|| -> anyhow::Result<()> {
                std::thread::sleep(Duration::from_millis(500));
                nginxes[0].crash()?;
                // node1's check fails: FAULT; node2 takes over and starts nginx.
                routers[1].wait_state("VI_1", "MASTER", Duration::from_secs(10))?;
                // node1 stopped serving, its check passes: back, and it preempts.
                routers[0].wait_state("VI_1", "MASTER", Duration::from_secs(10))?;
                routers[1].wait_state("VI_1", "BACKUP", Duration::from_secs(10))?;
                std::thread::sleep(Duration::from_secs(1));
                Ok(())
            })();
            stop.store(true, Ordering::Relaxed);
            let log = fetcher
                .join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
            scenario?;
            Ok(log)
        })?;

        let failures: Vec<&String> = log
            .results
            .iter()
            .filter_map(|r| r.1.as_ref().err())
            .collect();
        if let Some((start, _)) = log.results.first() {
            let mut last: Option<String> = None;
            for (at, result) in &log.results {
                let what = match result {
                    Ok(page) => page.clone(),
                    Err(e) => format!("error: {e}"),
                };
                if last.as_ref() != Some(&what) {
                    println!(
                        "client: {:>6.0} ms  {what}",
                        at.duration_since(*start).as_secs_f64() * 1e3
                    );
                    last = Some(what);
                }
            }
        }
        println!(
            "client: {} requests, {} failed (connection refused/reset/timeouts while the VIP moved)",
            log.results.len(),
            failures.len()
        );
        ensure!(
            failures.iter().all(|e| !e.starts_with("bad response")),
            "nginx answered with an error: {failures:?}"
        );
        ensure!(
            log.servers() == ["served by node1", "served by node2", "served by node1"],
            "pages came from {:?}",
            log.servers()
        );
        // Once node1 served again, every request got its page.
        let last_node2 = log
            .results
            .iter()
            .rposition(|r| r.1.as_deref() == Ok("served by node2"))
            .context("node2 served nothing")?;
        let after: Vec<&Result<String, String>> = log.results[last_node2 + 1..]
            .iter()
            .map(|r| &r.1)
            .skip_while(|r| r.is_err())
            .collect();
        ensure!(
            !after.is_empty() && after.iter().all(|r| r.as_deref() == Ok("served by node1")),
            "after node1 was back the client got {after:?}"
        );
        // The notify script drove nginx by state on both nodes.
        ensure!(
            node_states(&state_files[0]).trim() == "master",
            "node1: {}",
            node_states(&state_files[0])
        );
        ensure!(
            node_states(&state_files[1]).trim() == "backup",
            "node2: {}",
            node_states(&state_files[1])
        );
        ensure!(
            !nginxes[1].pid_file().exists(),
            "nginx still runs on node2, the backup"
        );
        Ok(())
    })();
    for router in &mut routers {
        let _ = router.stop(Duration::from_secs(5));
    }
    for nginx in &nginxes {
        nginx.stop();
    }
    result.with_context(|| {
        format!(
            "nginx error logs:\n{}",
            nginxes
                .iter()
                .map(|n| std::fs::read_to_string(n.dir.join("error.log")).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn which_nginx() -> bool {
    std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}
