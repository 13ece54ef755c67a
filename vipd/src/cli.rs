//! Command-line interface. The doc comments here are the `--help` text.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::io::bpf::AttachMode;

/// vipd: VRRP failover agent for Linux with an XDP fast path.
#[derive(Debug, Parser)]
#[command(name = "vipd", version, about, long_about = None)]
pub struct Cli {
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Whether log lines get ANSI colours: only on a terminal, and not when `NO_COLOR` is set
/// to a non-empty value (<https://no-color.org>). A pipe, journald or a file gets plain
/// text.
pub fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the VRRP daemon.
    ///
    /// Loads the configuration, removes VIPs a crashed earlier run left behind, joins the
    /// election on every configured instance and holds the VIPs while master. SIGTERM or
    /// SIGINT: masters send a priority-0 advert and release their VIPs, then vipd exits 0.
    Run(RunArgs),

    /// Show the running daemon's instances (state, priority, master, last change).
    Status(StatusArgs),

    /// Answer ARP for static VIPs from XDP, without VRRP (diagnostics, lab use).
    ///
    /// Attaches vipd's XDP program to INTERFACE and answers ARP requests for each VIP
    /// with the interface's MAC (or --mac) at line rate, whether or not the kernel holds
    /// the address. Prints `ready ...` once attached; on SIGTERM/SIGINT detaches and
    /// prints the program's counters as one JSON line.
    ArpResponder(ArpResponderArgs),

    /// Validate a configuration file and exit.
    ///
    /// Reads native TOML or keepalived.conf (a `.conf` name or keepalived blocks inside).
    /// Prints warnings, then `FILE: OK (N instances[, M virtual servers])` and exits 0; or prints every error,
    /// one per line as `FILE:LINE:COL: KEY: MESSAGE`, and exits 1. Exits 2 if the file
    /// cannot be read.
    Check(CheckArgs),

    /// Prepare this host as a direct-routing real server until stopped.
    ///
    /// Adds each VIP to `lo` as a /32 (/128) and sets net.ipv4.conf.{all,lo}.arp_ignore=1
    /// and arp_announce=2 (IPv4 VIPs only), so the host accepts the balancer's packets
    /// for the VIPs without answering ARP for them. Prints `ready: ...` once done; on
    /// SIGTERM/SIGINT removes the addresses it added, restores each sysctl's previous
    /// value and prints `restored`.
    RealServer(RealServerArgs),

    /// Print a configuration (typically keepalived.conf) as equivalent native TOML.
    ///
    /// Every value is written explicitly; warnings become `#` comments. Exit codes as for
    /// `check`: 1 with the errors on stderr if the file is invalid, 2 if unreadable.
    Convert(ConvertArgs),
}

/// Arguments of `vipd run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (native TOML).
    #[arg(
        long = "config",
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/vipd/vipd.toml"
    )]
    pub config: PathBuf,

    /// Run from a keepalived.conf instead (includes followed, unsupported keys warned).
    #[arg(
        long = "keepalived-conf",
        value_name = "FILE",
        conflicts_with = "config"
    )]
    pub keepalived_conf: Option<PathBuf>,

    /// Control socket path (overrides global.control_socket).
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Log the XDP program's own debug lines (aya-log; costs CPU per packet).
    #[arg(long)]
    pub xdp_log: bool,

    /// bpffs directory where XDP links and maps are pinned, so they outlive a crash.
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/bpf/vipd")]
    pub bpffs_dir: PathBuf,

    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9641 (GET /metrics).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Directory for per-interface lock files (one vipd per interface).
    #[arg(long, value_name = "DIR", default_value = "/run/vipd")]
    pub run_dir: PathBuf,
}

/// Arguments of `vipd status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON (for scripts and monitoring) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// The daemon's control socket.
    #[arg(long = "socket", value_name = "PATH", default_value = crate::config::DEFAULT_CONTROL_SOCKET)]
    pub socket: PathBuf,
}

/// Arguments of `vipd check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Configuration file (native TOML or keepalived.conf).
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

/// What `vipd check` found, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Valid (warnings allowed): exit 0.
    Valid,
    /// Read but invalid: exit 1.
    Invalid,
    /// Could not be read: exit 2.
    Unreadable,
}

impl CheckOutcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Valid => 0,
            Self::Invalid => 1,
            Self::Unreadable => 2,
        }
    }
}

/// Runs `vipd check`: the report goes to `out` (OK line) and `err` (warnings, errors).
pub fn check(
    args: &CheckArgs,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> std::io::Result<CheckOutcome> {
    use crate::config::{LoadError, load};
    let file = args.config.display();
    match load(&args.config) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                writeln!(err, "{warning}")?;
            }
            for warning in crate::config::permission_warnings(&args.config, &loaded.config) {
                writeln!(err, "{warning}")?;
            }
            let count = loaded.config.instances.len();
            let noun = if count == 1 { "instance" } else { "instances" };
            let services = match loaded.config.virtual_servers.len() {
                0 => String::new(),
                1 => ", 1 virtual server".to_owned(),
                n => format!(", {n} virtual servers"),
            };
            writeln!(out, "{file}: OK ({count} {noun}{services})")?;
            Ok(CheckOutcome::Valid)
        }
        Err(LoadError::Invalid(invalid)) => {
            for warning in &invalid.warnings {
                writeln!(err, "{warning}")?;
            }
            for error in &invalid.errors {
                writeln!(err, "{error}")?;
            }
            let count = invalid.errors.len();
            let noun = if count == 1 { "error" } else { "errors" };
            writeln!(err, "{file}: {count} {noun}")?;
            Ok(CheckOutcome::Invalid)
        }
        Err(read @ LoadError::Read { .. }) => {
            writeln!(err, "error: {read}")?;
            Ok(CheckOutcome::Unreadable)
        }
    }
}

/// Arguments of `vipd convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// The file to convert (keepalived.conf or native TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `vipd convert`: TOML to `out`; errors to `err`.
pub fn convert(
    args: &ConvertArgs,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> std::io::Result<CheckOutcome> {
    use crate::config::{LoadError, load, render};
    match load(&args.file) {
        Ok(loaded) => {
            let header = [
                format!("Converted by vipd convert from {}", args.file.display()),
                "Every value is explicit; see docs/configuration.md.".to_owned(),
            ];
            write!(
                out,
                "{}",
                render::to_toml(&loaded.config, &header, &loaded.warnings)
            )?;
            Ok(CheckOutcome::Valid)
        }
        Err(LoadError::Invalid(invalid)) => {
            for line in invalid.warnings.iter().map(ToString::to_string) {
                writeln!(err, "{line}")?;
            }
            for line in invalid.errors.iter().map(ToString::to_string) {
                writeln!(err, "{line}")?;
            }
            Ok(CheckOutcome::Invalid)
        }
        Err(read @ LoadError::Read { .. }) => {
            writeln!(err, "error: {read}")?;
            Ok(CheckOutcome::Unreadable)
        }
    }
}

/// Arguments of `vipd real-server`.
#[derive(Debug, clap::Args)]
pub struct RealServerArgs {
    /// A virtual address the balancer forwards here (IPv4 or IPv6); repeat for several.
    #[arg(long = "vip", value_name = "ADDR", required = true)]
    pub vips: Vec<std::net::IpAddr>,

    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `vipd arp-responder`.
#[derive(Debug, clap::Args)]
pub struct ArpResponderArgs {
    /// Interface to attach to.
    #[arg(long, short = 'i')]
    pub interface: String,

    /// IPv4 address to answer for; repeat for several.
    #[arg(long = "vip", required = true)]
    pub vips: Vec<Ipv4Addr>,

    /// MAC address to answer with (default: the interface's own).
    #[arg(long, value_parser = parse_mac)]
    pub mac: Option<[u8; 6]>,

    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,
}

/// `--xdp-mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Native where the driver supports it, else generic.
    Auto,
    /// Driver mode only.
    Native,
    /// Generic (skb) mode only.
    Generic,
}

impl From<XdpModeArg> for AttachMode {
    fn from(mode: XdpModeArg) -> Self {
        match mode {
            XdpModeArg::Auto => AttachMode::Auto,
            XdpModeArg::Native => AttachMode::Native,
            XdpModeArg::Generic => AttachMode::Generic,
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!(
            "{text:?} is not a MAC address like 02:00:00:00:00:01"
        ));
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(&parts) {
        *byte = u8::from_str_radix(part, 16)
            .ok()
            .filter(|_| part.len() == 2)
            .ok_or_else(|| format!("{text:?}: {part:?} is not a hex byte"))?;
    }
    Ok(mac)
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips() {
        let mac = parse_mac("02:00:5e:00:01:07").unwrap();
        assert_eq!(mac, [0x02, 0x00, 0x5e, 0x00, 0x01, 0x07]);
        assert_eq!(format_mac(mac), "02:00:5e:00:01:07");
        assert_eq!(parse_mac("02-00-5E-00-01-07"), Ok(mac));
    }

    #[test]
    fn bad_macs_are_rejected_with_a_reason() {
        for bad in [
            "",
            "02:00",
            "02:00:5e:00:01:zz",
            "02:00:5e:00:01:070",
            "1:2:3:4:5:6",
        ] {
            let err = parse_mac(bad).unwrap_err();
            assert!(err.contains(bad) || err.contains("hex"), "{bad}: {err}");
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
