//! Command-line interface. The doc comments here are the `--help` text.

use std::net::IpAddr;
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

/// Whether stderr is connected to the journal: systemd sets `JOURNAL_STREAM` to
/// `DEVICE:INODE` of the stream it gave the service, and a process should log natively
/// only when its stderr is still that stream (not redirected by a wrapper or a shell);
/// see systemd.exec(5), "JOURNAL_STREAM".
pub fn stderr_is_journal(journal_stream: Option<&std::ffi::OsStr>, stderr: (u64, u64)) -> bool {
    let Some(value) = journal_stream.and_then(|v| v.to_str()) else {
        return false;
    };
    let Some((device, inode)) = value.split_once(':') else {
        return false;
    };
    matches!(
        (device.parse::<u64>(), inode.parse::<u64>()),
        (Ok(device), Ok(inode)) if (device, inode) == stderr
    )
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

    /// Answer ARP (and IPv6 neighbour solicitations) for static VIPs from XDP, without
    /// VRRP (diagnostics, lab use).
    ///
    /// Attaches vipd's XDP program to INTERFACE and answers ARP requests for each IPv4
    /// VIP, and neighbour solicitations for each IPv6 VIP, with the interface's MAC (or
    /// --mac) at line rate, whether or not the kernel holds the address. Prints `ready ...` once attached; on SIGTERM/SIGINT detaches and
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

    /// Print the FRR bgpd configuration that announces L3 mode's addresses.
    ///
    /// For a configuration with `announce = "bgp"`: prefix-lists, the `vipd` route-map
    /// (standby MED and AS-path prepending, communities) and the `redistribute connected
    /// route-map vipd` lines of `router bgp ASN`, to merge into bgpd's configuration
    /// (neighbours and timers stay yours). Exit codes as for `check`.
    FrrConfig(FrrConfigArgs),

    /// Write the man pages (vipd.8, vipd-SUBCOMMAND.8) and bash/zsh/fish completions
    /// into DIR (for packaging: `cargo xtask deb` runs it).
    #[command(hide = true)]
    GenerateAssets(GenerateAssetsArgs),
}

/// Arguments of `vipd generate-assets`.
#[derive(Debug, clap::Args)]
pub struct GenerateAssetsArgs {
    /// Output directory (created): `man/` and `completions/` go inside.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// What vipd(8) says beyond the clap definition: the files, signals and exit status an
/// operator looks up in a man page.
const MAN_VIPD_EXTRA: &str = r#".SH SIGNALS
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Masters send a priority\-0 advert and hand their VIPs over, then vipd exits 0.
.TP
\fBSIGHUP\fR
Re\-read the configuration: unchanged instances are left alone; a broken file changes nothing.
.SH FILES
.TP
\fI/etc/vipd/vipd.toml\fR
The configuration, see \fBvipd.toml\fR(5). \fBvipd check \-c\fR validates it.
.TP
\fI/run/vipd/vipd.sock\fR
The control socket (mode 0600) that \fBvipd status\fR asks.
.TP
\fI/sys/fs/bpf/vipd\fR
Pinned XDP links and maps, which outlive a crash so the next start takes over.
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Log filter (default \fBinfo\fR), e.g. \fBvipd=debug\fR.
.TP
\fBJOURNAL_STREAM\fR
Set by systemd: when it names vipd's stderr, log entries go to journald natively, with
priorities and VIPD_* fields.
.TP
\fBNO_COLOR\fR
Non\-empty: no colours in log lines, even on a terminal.
.SH EXIT STATUS
0 on success; for \fBcheck\fR and \fBconvert\fR, 1 when the file is invalid and 2 when it
cannot be read; 1 when the daemon cannot start.
.SH SEE ALSO
\fBvipd.toml\fR(5), \fBkeepalived.conf\fR(5), \fBsystemctl\fR(1), \fBjournalctl\fR(1);
/usr/share/doc/vipd/operations.md
"#;

/// Writes what `vipd generate-assets` promises; returns the files written.
pub fn generate_assets(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    use clap::CommandFactory as _;
    let mut written = Vec::new();
    let man_dir = dir.join("man");
    let completions_dir = dir.join("completions");
    std::fs::create_dir_all(&man_dir)?;
    std::fs::create_dir_all(&completions_dir)?;
    let mut cli = Cli::command();
    cli.build();
    // The top page lists the subcommands; each visible one gets a page of its own
    // (vipd-run(8), …) with its full option list, as git and cargo do.
    let page = |cmd: clap::Command, name: &str, extra: &str| -> std::io::Result<PathBuf> {
        let path = man_dir.join(format!("{name}.8"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .title(name.to_uppercase())
            .section("8")
            .manual("System Manager's Manual")
            .source(format!("vipd {}", env!("CARGO_PKG_VERSION")))
            .render(&mut out)?;
        out.extend_from_slice(extra.as_bytes());
        std::fs::write(&path, out)?;
        Ok(path)
    };
    for sub in cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("vipd-{}", sub.get_name());
        let cmd = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("vipd {}", sub.get_name()));
        written.push(page(cmd, &name, "")?);
    }
    written.push(page(cli.clone(), "vipd", MAN_VIPD_EXTRA)?);
    for (shell, file) in [
        (clap_complete::Shell::Bash, "vipd"),
        (clap_complete::Shell::Zsh, "_vipd"),
        (clap_complete::Shell::Fish, "vipd.fish"),
    ] {
        let path = completions_dir.join(file);
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cli, "vipd", &mut out);
        std::fs::write(&path, out)?;
        written.push(path);
    }
    Ok(written)
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
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,

    /// Keep showing the table, refreshed in place every --interval, until interrupted.
    /// When stdout is not a terminal, each refresh is appended as plain text instead.
    #[arg(long, short = 'w')]
    pub watch: bool,

    /// Time between refreshes with --watch, e.g. `500ms`, `2s`.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval, requires = "watch")]
    pub interval: std::time::Duration,

    /// The daemon's control socket.
    #[arg(long = "socket", value_name = "PATH", default_value = crate::config::DEFAULT_CONTROL_SOCKET)]
    pub socket: PathBuf,
}

/// Parses a `--interval` such as `500ms` or `2s` (at least 100 ms, so a watch cannot
/// busy-poll the daemon).
pub fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if interval < std::time::Duration::from_millis(100) {
        return Err(format!("{text:?} is below the 100ms minimum"));
    }
    Ok(interval)
}

/// One refresh of `vipd status --watch`: a heading with the interval and the wall-clock
/// time, then the table (or why the daemon could not be asked, so a restart shows as a
/// gap rather than ending the watch). On a terminal the frame starts by moving the
/// cursor home and clearing the screen, so it replaces the previous one in place;
/// elsewhere frames are appended, separated by a blank line, without escape codes.
pub fn watch_frame(
    status: Result<&crate::control::DaemonStatus, String>,
    interval: std::time::Duration,
    now: std::time::SystemTime,
    terminal: bool,
) -> String {
    let mut frame = String::new();
    if terminal {
        // CSI H (cursor home) + CSI 2 J (erase display).
        frame.push_str("\x1b[H\x1b[2J");
    }
    let at = humantime::format_rfc3339_seconds(now);
    frame.push_str(&format!(
        "Every {}: vipd status    {at}\n\n",
        humantime::format_duration(interval)
    ));
    match status {
        Ok(status) => frame.push_str(&crate::control::render_table(status)),
        Err(error) => frame.push_str(&format!("{error}\n")),
    }
    if !terminal {
        frame.push('\n');
    }
    frame
}

/// Arguments of `vipd check`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("file").required(true))]
pub struct CheckArgs {
    /// Configuration file (native TOML, or keepalived.conf detected by its name or content).
    #[arg(long = "config", short = 'c', value_name = "FILE", group = "file")]
    pub config: Option<PathBuf>,

    /// Read this file as keepalived.conf, whatever its name or content (as `vipd run`).
    #[arg(long = "keepalived-conf", value_name = "FILE", group = "file")]
    pub keepalived_conf: Option<PathBuf>,
}

/// Which file a command reads, and whether `--keepalived-conf` forced its format.
fn config_source(config: Option<&PathBuf>, keepalived_conf: Option<&PathBuf>) -> (PathBuf, bool) {
    match (keepalived_conf, config) {
        (Some(path), _) => (path.clone(), true),
        (None, Some(path)) => (path.clone(), false),
        // clap requires one of the two; an empty path then fails as unreadable.
        (None, None) => (PathBuf::new(), false),
    }
}

/// Loads `path`, as keepalived.conf when `keepalived` is set, else by detection.
fn load_source(
    path: &std::path::Path,
    keepalived: bool,
) -> Result<crate::config::Loaded, crate::config::LoadError> {
    if keepalived {
        crate::config::load_keepalived(path)
    } else {
        crate::config::load(path)
    }
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
    use crate::config::LoadError;
    let (path, keepalived) = config_source(args.config.as_ref(), args.keepalived_conf.as_ref());
    let file = path.display();
    match load_source(&path, keepalived) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                writeln!(err, "{warning}")?;
            }
            for warning in host_warnings(&path, &loaded.config) {
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

/// The warnings about `path` and the host it runs on, beyond the file's own: file
/// permissions and `ip_nonlocal_bind`. `vipd check` prints them and `vipd run` logs them.
pub fn host_warnings(path: &std::path::Path, config: &crate::config::Config) -> Vec<String> {
    let mut out = crate::config::permission_warnings(path, config);
    out.extend(
        crate::config::host::nonlocal_bind_warnings(config, &crate::config::host::read_proc_sysctl)
            .into_iter()
            .map(|warning| format!("{}: {warning}", path.display())),
    );
    out
}

/// Arguments of `vipd convert`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true))]
pub struct ConvertArgs {
    /// The file to convert (keepalived.conf or native TOML, detected by name or content).
    #[arg(value_name = "FILE", group = "input")]
    pub file: Option<PathBuf>,

    /// Read this file as keepalived.conf, whatever its name or content (as `vipd run`).
    #[arg(long = "keepalived-conf", value_name = "FILE", group = "input")]
    pub keepalived_conf: Option<PathBuf>,
}

/// Runs `vipd convert`: TOML to `out`; errors to `err`.
pub fn convert(
    args: &ConvertArgs,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> std::io::Result<CheckOutcome> {
    let (path, keepalived) = config_source(args.file.as_ref(), args.keepalived_conf.as_ref());
    with_config(&path, keepalived, err, |loaded| {
        let header = [
            format!("Converted by vipd convert from {}", path.display()),
            "Every value is explicit; see docs/configuration.md.".to_owned(),
        ];
        write!(
            out,
            "{}",
            crate::config::render::to_toml(&loaded.config, &header, &loaded.warnings)
        )
    })
}

/// Loads `path` and hands the configuration to `use_it`; an invalid or unreadable file
/// is reported on `err` instead, with the outcome `check` would give.
fn with_config(
    path: &std::path::Path,
    keepalived: bool,
    err: &mut dyn std::io::Write,
    use_it: impl FnOnce(&crate::config::Loaded) -> std::io::Result<()>,
) -> std::io::Result<CheckOutcome> {
    use crate::config::LoadError;
    match load_source(path, keepalived) {
        Ok(loaded) => {
            use_it(&loaded)?;
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

/// Arguments of `vipd frr-config`.
#[derive(Debug, clap::Args)]
pub struct FrrConfigArgs {
    /// The configuration (keepalived.conf or native TOML, detected by name or content).
    #[arg(value_name = "FILE", group = "input")]
    pub file: Option<PathBuf>,

    /// Read this file as keepalived.conf, whatever its name or content.
    #[arg(long = "keepalived-conf", value_name = "FILE", group = "input")]
    pub keepalived_conf: Option<PathBuf>,

    /// This node's BGP AS number (what standby paths prepend).
    #[arg(long, value_name = "ASN")]
    pub asn: u32,
}

/// Runs `vipd frr-config`: the bgpd configuration to `out`; errors to `err`.
pub fn frr_config(
    args: &FrrConfigArgs,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> std::io::Result<CheckOutcome> {
    let (path, keepalived) = config_source(args.file.as_ref(), args.keepalived_conf.as_ref());
    with_config(&path, keepalived, err, |loaded| {
        writeln!(
            out,
            "! bgpd configuration for vipd's L3 mode, from {} (vipd frr-config; docs/l3.md)",
            path.display()
        )?;
        write!(
            out,
            "{}",
            crate::config::frr::bgpd_config(&loaded.config, args.asn)
        )
    })
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

    /// Address to answer for: IPv4 (ARP) or IPv6 (neighbour solicitations); repeat for
    /// several.
    #[arg(long = "vip", required = true)]
    pub vips: Vec<IpAddr>,

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
    fn keepalived_conf_is_accepted_by_run_check_and_convert() {
        let dir = std::env::temp_dir().join(format!("vipd-cli-kconf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A keepalived.conf under a name and content detection would not recognise.
        let path = dir.join("cluster.cfg");
        std::fs::write(
            &path,
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n priority 100\n virtual_ipaddress {\n  192.0.2.100\n }\n}\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        for argv in [
            vec!["vipd", "run", "--keepalived-conf", file],
            vec!["vipd", "check", "--keepalived-conf", file],
            vec!["vipd", "convert", "--keepalived-conf", file],
        ] {
            Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
        let Command::Check(args) =
            Cli::try_parse_from(["vipd", "check", "--keepalived-conf", file])
                .unwrap()
                .command
        else {
            panic!("not check");
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let outcome = check(&args, &mut out, &mut err).unwrap();
        assert_eq!(
            outcome,
            CheckOutcome::Valid,
            "{}",
            String::from_utf8_lossy(&err)
        );
        assert!(String::from_utf8_lossy(&out).contains("OK (1 instance)"));
        let Command::Convert(args) =
            Cli::try_parse_from(["vipd", "convert", "--keepalived-conf", file])
                .unwrap()
                .command
        else {
            panic!("not convert");
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            convert(&args, &mut out, &mut err).unwrap(),
            CheckOutcome::Valid
        );
        assert!(String::from_utf8_lossy(&out).contains("[instance.VI_1]"));
        // The flag decides the format: native TOML given as --keepalived-conf fails.
        let toml = dir.join("vipd.toml");
        std::fs::write(
            &toml,
            "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\npriority = 100\nvirtual_ipaddress = [\"192.0.2.100\"]\n",
        )
        .unwrap();
        for (args, expected) in [
            ((Some(toml.clone()), None), CheckOutcome::Valid),
            ((None, Some(toml.clone())), CheckOutcome::Invalid),
        ] {
            let args = CheckArgs {
                config: args.0,
                keepalived_conf: args.1,
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            assert_eq!(
                check(&args, &mut out, &mut err).unwrap(),
                expected,
                "{args:?}"
            );
        }
        // One file, given once: both flags, or neither, is a usage error.
        assert!(Cli::try_parse_from(["vipd", "check"]).is_err());
        assert!(
            Cli::try_parse_from(["vipd", "check", "-c", file, "--keepalived-conf", file]).is_err()
        );
        assert!(Cli::try_parse_from(["vipd", "convert", file, "--keepalived-conf", file]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn journal_only_when_stderr_is_the_stream_systemd_gave() {
        use std::ffi::OsStr;
        let stderr = (64769, 123456);
        assert!(stderr_is_journal(Some(OsStr::new("64769:123456")), stderr));
        // Redirected by a wrapper: another inode, so plain text to that file.
        assert!(!stderr_is_journal(Some(OsStr::new("64769:999")), stderr));
        assert!(!stderr_is_journal(None, stderr));
        for bad in ["", "64769", "x:123456", "64769:123456:1"] {
            assert!(!stderr_is_journal(Some(OsStr::new(bad)), stderr), "{bad}");
        }
    }

    #[test]
    fn watch_frames_refresh_in_place_only_on_a_terminal() {
        use crate::control::{DaemonStatus, InstanceStatus};
        let status = DaemonStatus {
            instances: vec![InstanceStatus {
                name: "VI_1".into(),
                state: "MASTER".into(),
                ..InstanceStatus::default()
            }],
            ..DaemonStatus::default()
        };
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let second = std::time::Duration::from_millis(1500);
        let on_tty = watch_frame(Ok(&status), second, at, true);
        assert!(on_tty.starts_with("\x1b[H\x1b[2J"), "{on_tty:?}");
        assert!(
            on_tty.contains("Every 1s 500ms: vipd status    2023-11-14T22:13:20Z"),
            "{on_tty:?}"
        );
        assert!(
            on_tty.contains("VI_1") && on_tty.contains("MASTER"),
            "{on_tty:?}"
        );
        let piped = watch_frame(Ok(&status), second, at, false);
        assert!(!piped.contains('\x1b'), "{piped:?}");
        assert!(piped.ends_with("\n\n"), "frames are separated: {piped:?}");
        let down = watch_frame(Err("cannot reach vipd".into()), second, at, false);
        assert!(
            down.contains("cannot reach vipd") && !down.contains("INSTANCE"),
            "{down:?}"
        );
    }

    #[test]
    fn watch_interval_has_a_floor() {
        assert_eq!(
            parse_interval("250ms"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert!(parse_interval("10ms").unwrap_err().contains("100ms"));
        assert!(parse_interval("soon").is_err());
        assert!(Cli::try_parse_from(["vipd", "status", "--interval", "2s"]).is_err());
        assert!(Cli::try_parse_from(["vipd", "status", "--watch", "--json"]).is_err());
        assert!(Cli::try_parse_from(["vipd", "status", "-w", "--interval", "2s"]).is_ok());
    }

    #[test]
    fn generated_assets_cover_every_subcommand_and_shell() {
        let dir = std::env::temp_dir().join(format!("vipd-assets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        generate_assets(&dir).unwrap();
        let man = std::fs::read_to_string(dir.join("man/vipd.8")).unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH VIPD 8"),
            "{man}"
        );
        for sub in ["run", "status", "check", "convert", "arp-responder"] {
            assert!(
                man.contains(&format!("vipd\\-{}(8)", sub.replace('-', "\\-"))),
                "vipd.8 lists {sub}:\n{man}"
            );
            let page = std::fs::read_to_string(dir.join(format!("man/vipd-{sub}.8"))).unwrap();
            assert!(
                page.contains(&format!(".TH VIPD-{}", sub.to_uppercase())),
                "{page}"
            );
        }
        let check = std::fs::read_to_string(dir.join("man/vipd-check.8")).unwrap();
        assert!(check.contains("keepalived\\-conf"), "{check}");
        assert!(
            man.contains(".SH SEE ALSO") && man.contains("vipd.toml\\fR(5)"),
            "{man}"
        );
        assert!(
            !man.contains("generate\\-assets") && !dir.join("man/vipd-generate-assets.8").exists()
        );
        let bash = std::fs::read_to_string(dir.join("completions/vipd")).unwrap();
        assert!(
            bash.contains("--keepalived-conf") && bash.contains("complete -F"),
            "bash"
        );
        let zsh = std::fs::read_to_string(dir.join("completions/_vipd")).unwrap();
        assert!(zsh.starts_with("#compdef vipd"), "{zsh}");
        let fish = std::fs::read_to_string(dir.join("completions/vipd.fish")).unwrap();
        assert!(fish.contains("complete -c vipd"), "{fish}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
