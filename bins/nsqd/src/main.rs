//! The `nsqd` binary: flags in, daemon out. Everything else lives in the library.

use std::process::ExitCode;

use nsqd::cli::{parse_args, version_line, CliAction};
use nsqd::{Nsqd, Options};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(CliAction::Run(opts)) => opts,
        Ok(CliAction::PrintVersion) => {
            println!("{}", version_line());
            return ExitCode::SUCCESS;
        }
        Ok(CliAction::PrintHelp(text)) => {
            eprint!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&opts);
    if let Some(reason) = opts.unsupported_reason() {
        eprintln!("[nsqd] FATAL: {reason}");
        return ExitCode::from(1);
    }
    if opts.verbose {
        tracing::warn!("--verbose is deprecated and has no effect; use --log-level=debug");
    }
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[nsqd] FATAL: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(opts: &Options) {
    let level = match opts.log_level {
        nsqd::options::LogLevel::Debug => "debug",
        nsqd::options::LogLevel::Info => "info",
        nsqd::options::LogLevel::Warn => "warn",
        nsqd::options::LogLevel::Error | nsqd::options::LogLevel::Fatal => "error",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "nsqd={level},nsq_core={level}"
        )))
        .with_target(false)
        .with_ansi(false)
        .init();
}

fn run(opts: Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let nsqd = Nsqd::bind(opts).await?;
        let cancel = CancellationToken::new();
        let signal_cancel = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signal_cancel.cancel();
        });
        nsqd.run(cancel).await;
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
