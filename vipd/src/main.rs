//! The `vipd` binary: parses the command line and hands over to the library.
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use vipd::cli::{Cli, Command, LogFormat};

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        // No logging and no runtime: check is a pure function of the file.
        Command::Check(args) => {
            let outcome = vipd::cli::check(&args, &mut std::io::stdout(), &mut std::io::stderr())
                .context("writing the check report")?;
            Ok(outcome.exit_code().into())
        }
        Command::Convert(args) => {
            let outcome = vipd::cli::convert(&args, &mut std::io::stdout(), &mut std::io::stderr())
                .context("writing the converted configuration")?;
            Ok(outcome.exit_code().into())
        }
        Command::FrrConfig(args) => {
            let outcome =
                vipd::cli::frr_config(&args, &mut std::io::stdout(), &mut std::io::stderr())
                    .context("writing the FRR configuration")?;
            Ok(outcome.exit_code().into())
        }
        Command::Run(args) => {
            let _log = init_logging(cli.log_format);
            let (path, loaded) = match &args.keepalived_conf {
                Some(path) => (path, vipd::config::load_keepalived(path)),
                None => (&args.config, vipd::config::load(&args.config)),
            };
            let loaded = loaded.with_context(|| format!("cannot start with {}", path.display()))?;
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            for warning in vipd::cli::host_warnings(path, &loaded.config) {
                tracing::warn!("{warning}");
            }
            let options = vipd::daemon::RunOptions {
                config_path: Some(path.clone()),
                metrics_listen: args.metrics_listen,
                control_socket: args.socket,
                xdp_log: args.xdp_log,
                pin: Some(vipd::io::bpf::PinConfig {
                    bpffs_dir: args.bpffs_dir,
                    lock_dir: args.run_dir,
                }),
            };
            runtime()?.block_on(vipd::daemon::run(loaded.config, options))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) if args.watch => {
            runtime()?.block_on(watch_status(&args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            let status = runtime()?.block_on(vipd::control::query_status(&args.socket))?;
            if args.json {
                print!("{}", vipd::control::status_json(&status)?);
            } else {
                print!("{}", vipd::control::render_table(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::GenerateAssets(args) => {
            for file in vipd::cli::generate_assets(&args.dir).with_context(|| {
                format!(
                    "writing man pages and completions into {}",
                    args.dir.display()
                )
            })? {
                println!("{}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RealServer(args) => {
            if args.dry_run {
                runtime()?.block_on(vipd::lb::real_server::run(&args.vips, true))?;
                return Ok(ExitCode::SUCCESS);
            }
            let _log = init_logging(cli.log_format);
            runtime()?.block_on(vipd::lb::real_server::run(&args.vips, false))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ArpResponder(args) => {
            let _log = init_logging(cli.log_format);
            runtime()?.block_on(vipd::tools::arp_responder(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `vipd status --watch`: a frame per interval until Ctrl-C (or the reader of a pipe
/// goes away).
async fn watch_status(args: &vipd::cli::StatusArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut ticks = tokio::time::interval(args.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let status = vipd::control::query_status(&args.socket).await;
        let frame = vipd::cli::watch_frame(
            status.as_ref().map_err(ToString::to_string),
            args.interval,
            std::time::SystemTime::now(),
            terminal,
        );
        let mut out = std::io::stdout().lock();
        if out
            .write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(());
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Sets up the log; the guard, held until the command is done, writes out what is still
/// queued (see `vipd::logging`).
fn init_logging(format: LogFormat) -> Option<vipd::logging::FlushGuard> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd, text goes to journald natively: each event keeps its priority
    // (syslog's: ERROR 3, WARN 4, INFO 6, DEBUG/TRACE 7) for `journalctl -p`, and its
    // fields as VIPD_INSTANCE=…, VIPD_TO=… for field matches (prefixed so that a field
    // called `priority` cannot overwrite the entry's PRIORITY). JSON stays on stderr:
    // whoever asked for it collects stderr.
    if format == LogFormat::Text && stderr_is_journal() {
        use tracing_journald::{Priority, PriorityMappings};
        match tracing_journald::layer() {
            Ok(journald) => {
                let journald = journald
                    .with_syslog_identifier("vipd".to_owned())
                    .with_field_prefix(Some("VIPD".to_owned()))
                    .with_priority_mappings(PriorityMappings {
                        info: Priority::Informational,
                        debug: Priority::Debug,
                        ..PriorityMappings::new()
                    });
                tracing_subscriber::registry()
                    .with(filter)
                    .with(journald)
                    .init();
                return None;
            }
            Err(e) => eprintln!("vipd: cannot log to journald ({e}); logging to stderr"),
        }
    }
    // journald and log files would keep colour codes as literal `ESC[…m` noise.
    let colour = vipd::cli::log_colour(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    // Lines go through a queue to a writer thread, so a slow reader of stderr never
    // holds up the real-time threads that log.
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let (writer, guard) = match vipd::logging::stderr() {
        Ok((sink, guard)) => (BoxMakeWriter::new(sink), Some(guard)),
        Err(e) => {
            eprintln!("vipd: cannot start the log writer thread ({e}); writing to stderr directly");
            (BoxMakeWriter::new(std::io::stderr), None)
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

/// Whether our stderr is the journal stream systemd set up for the service.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    vipd::cli::stderr_is_journal(Some(&stream), (meta.dev(), meta.ino()))
}
