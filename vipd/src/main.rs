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
        Command::Run(args) => {
            init_logging(cli.log_format);
            let (path, loaded) = match &args.keepalived_conf {
                Some(path) => (path, vipd::config::load_keepalived(path)),
                None => (&args.config, vipd::config::load(&args.config)),
            };
            let loaded = loaded.with_context(|| format!("cannot start with {}", path.display()))?;
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            for warning in vipd::config::permission_warnings(path, &loaded.config) {
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
        Command::Status(args) => {
            let status = runtime()?.block_on(vipd::control::query_status(&args.socket))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", vipd::control::render_table(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RealServer(args) => {
            if args.dry_run {
                runtime()?.block_on(vipd::lb::real_server::run(&args.vips, true))?;
                return Ok(ExitCode::SUCCESS);
            }
            init_logging(cli.log_format);
            runtime()?.block_on(vipd::lb::real_server::run(&args.vips, false))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ArpResponder(args) => {
            init_logging(cli.log_format);
            runtime()?.block_on(vipd::tools::arp_responder(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // journald and log files would keep colour codes as literal `ESC[…m` noise.
    let colour = vipd::cli::log_colour(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
