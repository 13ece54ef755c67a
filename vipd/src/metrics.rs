//! Prometheus metrics and the read-only HTTP status API: the daemon's status rendered
//! in the text exposition format (`/metrics`) or as `vipd status --json` prints it
//! (`/status`), plus a liveness probe (`/healthz`), served over HTTP on `metrics_listen`.
//!
//! The metrics are built from the same [`DaemonStatus`] snapshot `vipd status --json`
//! prints, with the `prometheus-client` crate doing the encoding, so the two never
//! disagree.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::control::{ControlRequest, DaemonStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance: String,
    interface: String,
    vrid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RealServerLabels {
    service: String,
    real_server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RealServerStateLabels {
    service: String,
    real_server: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    instance: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    instance: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InterfaceLabels {
    interface: String,
}

/// The states an instance can be in, each exported (1 for the current one, 0 else) so a
/// dashboard can graph every state without knowing which exist.
const STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

/// The load balancer's metrics: per real server up/state, weight, flows, packets and
/// bytes, and the data path's counters.
fn register_lb(registry: &mut Registry, status: &DaemonStatus) {
    if status.virtual_servers.is_empty() {
        return;
    }
    let up = Family::<RealServerLabels, Gauge>::default();
    let state = Family::<RealServerStateLabels, Gauge>::default();
    let weight = Family::<RealServerLabels, Gauge>::default();
    let flows = Family::<RealServerLabels, Gauge>::default();
    let packets = Family::<RealServerLabels, Counter>::default();
    let bytes = Family::<RealServerLabels, Counter>::default();
    let quorum = Family::<ServiceLabels, Gauge>::default();
    for vs in &status.virtual_servers {
        quorum
            .get_or_create(&ServiceLabels {
                service: vs.name.clone(),
            })
            .set(i64::from(vs.quorum_up));
        for rs in &vs.real_servers {
            let labels = RealServerLabels {
                service: vs.name.clone(),
                real_server: if rs.sorry {
                    format!("{} (sorry)", rs.address)
                } else {
                    rs.address.clone()
                },
            };
            let alive = rs.state == "alive" && rs.unreachable.is_none();
            up.get_or_create(&labels).set(i64::from(alive));
            for name in ["alive", "failed", "inhibited"] {
                state
                    .get_or_create(&RealServerStateLabels {
                        service: labels.service.clone(),
                        real_server: labels.real_server.clone(),
                        state: name.into(),
                    })
                    .set(i64::from(rs.state == name));
            }
            weight.get_or_create(&labels).set(i64::from(rs.weight));
            flows
                .get_or_create(&labels)
                .set(i64::try_from(rs.active_flows).unwrap_or(i64::MAX));
            set_counter(&packets, &labels, rs.packets);
            set_counter(&bytes, &labels, rs.bytes);
        }
    }
    registry.register(
        "lb_real_server_up",
        "1 while the real server is alive and reachable",
        up,
    );
    registry.register(
        "lb_real_server_state",
        "The real server's state (alive, failed, inhibited)",
        state,
    );
    registry.register("lb_real_server_weight", "Effective weight", weight);
    registry.register("lb_active_flows", "Open flows the balancer saw", flows);
    registry.register("lb_packets", "Frames forwarded to the real server", packets);
    registry.register("lb_bytes", "Bytes forwarded to the real server", bytes);
    registry.register(
        "lb_quorum_up",
        "1 while the service's quorum is met",
        quorum,
    );
    for (name, value) in &status.lb_counters {
        let counter: Counter<u64, AtomicU64> = Counter::default();
        counter.inc_by(*value);
        let name = name.strip_prefix("lb_").unwrap_or(name);
        registry.register(
            format!("lb_xdp_{name}"),
            format!("XDP load balancer counter {name}, summed across CPUs and interfaces"),
            counter,
        );
    }
}

fn set_counter<L>(family: &Family<L, Counter>, labels: &L, value: u64)
where
    L: Clone + std::hash::Hash + Eq,
{
    family.get_or_create(labels).inc_by(value);
}

/// Renders `status` in the Prometheus text format.
pub fn render(status: &DaemonStatus) -> String {
    let mut registry = Registry::with_prefix("vipd");

    let state = Family::<StateLabels, Gauge>::default();
    let priority = Family::<InstanceLabels, Gauge>::default();
    let effective = Family::<InstanceLabels, Gauge>::default();
    let dropped = Family::<ReasonLabels, Counter>::default();
    let transitions = Family::<ReasonLabels, Counter>::default();
    let late_max = Family::<InstanceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let mut instance_counters: std::collections::BTreeMap<String, Family<InstanceLabels, Counter>> =
        Default::default();

    for i in &status.instances {
        let labels = InstanceLabels {
            instance: i.name.clone(),
            interface: i.interface.clone(),
            vrid: i.vrid.to_string(),
        };
        for s in STATES {
            state
                .get_or_create(&StateLabels {
                    instance: i.name.clone(),
                    state: s.to_owned(),
                })
                .set(i64::from(i.state == s));
        }
        priority.get_or_create(&labels).set(i64::from(i.priority));
        effective
            .get_or_create(&labels)
            .set(i64::from(i.effective_priority));
        for (reason, count) in &i.transitions_by_reason {
            set_counter(
                &transitions,
                &ReasonLabels {
                    instance: i.name.clone(),
                    reason: reason.clone(),
                },
                *count,
            );
        }
        for (name, value) in &i.counters {
            if let Some(reason) = name
                .strip_prefix("rx_")
                .filter(|r| !crate::proto::validate::RxCounters::counts_accepted(r))
            {
                set_counter(
                    &dropped,
                    &ReasonLabels {
                        instance: i.name.clone(),
                        reason: reason.to_owned(),
                    },
                    *value,
                );
                continue;
            }
            if name == "advert_late_max_us" {
                late_max.get_or_create(&labels).set(*value as f64 / 1e6);
                continue;
            }
            let family = instance_counters.entry(name.clone()).or_default();
            set_counter(family, &labels, *value);
        }
    }
    registry.register(
        "instance_state",
        "1 for the state the instance is in, 0 for the others",
        state,
    );
    registry.register("priority", "Configured priority", priority);
    registry.register(
        "effective_priority",
        "Priority after tracker weights",
        effective,
    );
    registry.register(
        "adverts_dropped",
        "Received adverts discarded, by RFC 5798 §7.1 check",
        dropped,
    );
    registry.register(
        "advert_late_max_seconds",
        "Latest an advert was sent after it was due, since start (CPU starvation shows here)",
        late_max,
    );
    registry.register(
        "transitions_by_reason",
        "State transitions, by reason",
        transitions,
    );
    for (name, family) in instance_counters {
        let help = format!("Per-instance counter {name}");
        registry.register(name, help, family);
    }

    for xdp in &status.xdp {
        let labels = InterfaceLabels {
            interface: xdp.interface.clone(),
        };
        for (name, value) in &xdp.counters {
            let family = Family::<InterfaceLabels, Counter>::default();
            set_counter(&family, &labels, *value);
            registry.register(
                format!("xdp_{name}"),
                format!("XDP program counter {name}, summed across CPUs"),
                family,
            );
        }
    }
    register_lb(&mut registry, status);
    for (name, value) in &status.counters {
        let counter: Counter<u64, AtomicU64> = Counter::default();
        counter.inc_by(*value);
        registry.register(name.clone(), format!("Daemon counter {name}"), counter);
    }
    let uptime: Gauge<f64, AtomicU64> = Gauge::default();
    uptime.set(status.uptime_seconds);
    registry.register("uptime_seconds", "Seconds since the daemon started", uptime);

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// What a request to the metrics listener asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`: Prometheus text.
    Metrics,
    /// `GET /status`: the JSON document `vipd status --json` prints.
    Status,
    /// `GET /healthz`: 200 while the daemon loop answers, 503 when it does not.
    Healthz,
    /// Anything else: 404.
    NotFound,
}

impl Route {
    /// The route of a request head (`GET /status HTTP/1.1 …`). A query string is
    /// ignored; only GET is served (the API is read-only).
    pub fn of(request: &str) -> Self {
        let mut words = request.split_ascii_whitespace();
        let (Some("GET"), Some(target)) = (words.next(), words.next()) else {
            return Self::NotFound;
        };
        match target.split_once('?').map_or(target, |(path, _)| path) {
            "/metrics" => Self::Metrics,
            "/status" => Self::Status,
            "/healthz" => Self::Healthz,
            _ => Self::NotFound,
        }
    }
}

/// How long `/healthz` waits for the daemon loop before calling it unhealthy. The loop
/// answers within microseconds when it runs; a stuck loop fails adverts long before.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A fresh status snapshot from the daemon loop, or `None` when it does not answer
/// within `timeout` (stopped or stuck).
async fn snapshot(
    requests: &mpsc::Sender<ControlRequest>,
    timeout: std::time::Duration,
) -> Option<DaemonStatus> {
    let (tx, rx) = oneshot::channel();
    tokio::time::timeout(timeout, async {
        requests.send(ControlRequest { reply: tx }).await.ok()?;
        rx.await.ok()
    })
    .await
    .ok()
    .flatten()
}

/// The HTTP response for `route`, built from a fresh snapshot.
async fn respond(route: Route, requests: &mpsc::Sender<ControlRequest>) -> String {
    let response = |status: &str, content_type: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let unavailable = || {
        response(
            "503 Service Unavailable",
            "text/plain",
            "vipd's daemon loop did not answer\n",
        )
    };
    match route {
        Route::Metrics => match snapshot(requests, HEALTH_TIMEOUT * 5).await {
            Some(status) => response(
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &render(&status),
            ),
            None => unavailable(),
        },
        Route::Status => match snapshot(requests, HEALTH_TIMEOUT * 5).await {
            Some(status) => match crate::control::status_json(&status) {
                Ok(body) => response("200 OK", "application/json", &body),
                Err(_) => unavailable(),
            },
            None => unavailable(),
        },
        Route::Healthz => match snapshot(requests, HEALTH_TIMEOUT).await {
            Some(_) => response("200 OK", "text/plain", "ok\n"),
            None => unavailable(),
        },
        Route::NotFound => response(
            "404 Not Found",
            "text/plain",
            "vipd serves GET /metrics (Prometheus), /status (JSON) and /healthz\n",
        ),
    }
}

/// Serves `GET /metrics`, `/status` and `/healthz` on `listen`, answering each request
/// from a fresh status snapshot requested from the daemon loop.
///
/// HTTP is hand-written here: three read-only GET endpoints with a bounded request read
/// do not justify an HTTP server stack in a failover daemon.
pub async fn serve(
    listen: SocketAddr,
    requests: mpsc::Sender<ControlRequest>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(%listen, "serving /metrics (Prometheus), /status (JSON) and /healthz over HTTP");
    Ok(tokio::spawn(async move {
        let mut backoff = crate::control::AcceptBackoff::default();
        loop {
            let (mut stream, _) = match listener.accept().await {
                Ok(accepted) => {
                    backoff.succeeded("metrics");
                    accepted
                }
                Err(e) => {
                    backoff.failed(&e, "metrics").await;
                    continue;
                }
            };
            let requests = requests.clone();
            tokio::spawn(async move {
                // The request head may arrive in pieces: read until its blank line (or
                // 2 KiB, or 5 s), then answer from the request line.
                let mut head = Vec::with_capacity(2048);
                let mut chunk = [0u8; 512];
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                while head.len() < 2048 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                        Ok(Ok(n)) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                if head.is_empty() {
                    return;
                }
                let request = String::from_utf8_lossy(&head);
                let response = respond(Route::of(&request), &requests).await;
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::InstanceStatus;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        for (request, route) in [
            ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", Route::Metrics),
            ("GET /metrics?name[]=x HTTP/1.1\r\n\r\n", Route::Metrics),
            ("GET /status HTTP/1.1\r\n\r\n", Route::Status),
            ("GET /healthz HTTP/1.0\r\n\r\n", Route::Healthz),
            ("GET /statusx HTTP/1.1\r\n\r\n", Route::NotFound),
            ("GET / HTTP/1.1\r\n\r\n", Route::NotFound),
            ("POST /status HTTP/1.1\r\n\r\n", Route::NotFound),
            ("GET", Route::NotFound),
            ("", Route::NotFound),
        ] {
            assert_eq!(Route::of(request), route, "{request:?}");
        }
    }

    #[test]
    fn status_becomes_metrics() {
        let mut instance = InstanceStatus {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 7,
            state: "MASTER".into(),
            priority: 100,
            effective_priority: 98,
            ..InstanceStatus::default()
        };
        instance.counters.insert("adverts_sent".into(), 42);
        instance.counters.insert("rx_ttl_not_255".into(), 3);
        instance.counters.insert("rx_accepted".into(), 5);
        instance
            .counters
            .insert("rx_checksum_ipv4_message_only".into(), 4);
        instance
            .transitions_by_reason
            .insert("MasterDown".into(), 1);
        let status = DaemonStatus {
            instances: vec![instance],
            counters: [("rx_queue_drops".to_owned(), 9)].into(),
            ..DaemonStatus::default()
        };
        let text = render(&status);
        for line in [
            "vipd_instance_state{instance=\"VI_1\",state=\"MASTER\"} 1",
            "vipd_instance_state{instance=\"VI_1\",state=\"BACKUP\"} 0",
            "vipd_priority{instance=\"VI_1\",interface=\"eth0\",vrid=\"7\"} 100",
            "vipd_effective_priority{instance=\"VI_1\",interface=\"eth0\",vrid=\"7\"} 98",
            "vipd_adverts_sent_total{instance=\"VI_1\",interface=\"eth0\",vrid=\"7\"} 42",
            "vipd_adverts_dropped_total{instance=\"VI_1\",reason=\"ttl_not_255\"} 3",
            "vipd_rx_accepted_total{instance=\"VI_1\",interface=\"eth0\",vrid=\"7\"} 5",
            // Accepted adverts by checksum form are not drops.
            "vipd_rx_checksum_ipv4_message_only_total{instance=\"VI_1\",interface=\"eth0\",vrid=\"7\"} 4",
            "vipd_transitions_by_reason_total{instance=\"VI_1\",reason=\"MasterDown\"} 1",
            "vipd_rx_queue_drops_total 9",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("reason=\"checksum_ipv4"), "{text}");
    }

    #[test]
    fn load_balancer_metrics_per_real_server() {
        use crate::control::{RealServerStatus, VirtualServerStatus};
        let rs = |address: &str, state: &str, packets: u64| RealServerStatus {
            address: address.into(),
            state: state.into(),
            weight: 1,
            active_flows: 2,
            packets,
            bytes: packets * 100,
            ..RealServerStatus::default()
        };
        let status = DaemonStatus {
            virtual_servers: vec![VirtualServerStatus {
                name: "192.0.2.100:80/tcp".into(),
                algo: "mh".into(),
                quorum_up: true,
                real_servers: vec![
                    rs("192.0.2.11:80", "alive", 7),
                    rs("192.0.2.12:80", "failed", 0),
                ],
                ..VirtualServerStatus::default()
            }],
            lb_counters: [("lb_forwarded".to_owned(), 7)].into(),
            ..DaemonStatus::default()
        };
        let text = render(&status);
        let labels = |rs: &str| format!("service=\"192.0.2.100:80/tcp\",real_server=\"{rs}\"");
        for line in [
            format!("vipd_lb_real_server_up{{{}}} 1", labels("192.0.2.11:80")),
            format!("vipd_lb_real_server_up{{{}}} 0", labels("192.0.2.12:80")),
            format!("vipd_lb_packets_total{{{}}} 7", labels("192.0.2.11:80")),
            format!("vipd_lb_bytes_total{{{}}} 700", labels("192.0.2.11:80")),
            format!("vipd_lb_active_flows{{{}}} 2", labels("192.0.2.11:80")),
            format!(
                "vipd_lb_real_server_weight{{{}}} 1",
                labels("192.0.2.12:80")
            ),
            format!(
                "vipd_lb_real_server_state{{{},state=\"failed\"}} 1",
                labels("192.0.2.12:80")
            ),
            "vipd_lb_quorum_up{service=\"192.0.2.100:80/tcp\"} 1".to_owned(),
            "vipd_lb_xdp_forwarded_total 7".to_owned(),
        ] {
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
    }
}
