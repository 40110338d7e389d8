//! The `nsqlookupd` binary: flags in, daemon out. Everything else lives in the library.

use std::process::ExitCode;

use nsqlookupd::cli::{parse_args, version_line, CliAction};
use nsqlookupd::options::LogLevel;
use nsqlookupd::{Nsqlookupd, Options};
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
    if let Some(reason) = opts.unsupported_reason() {
        eprintln!("{}FATAL: {reason}", opts.log_prefix);
        return ExitCode::from(1);
    }
    init_logging(&opts);
    if opts.verbose {
        tracing::warn!("--verbose is deprecated and has no effect; use --log-level=debug");
    }
    match run(opts.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}FATAL: {e:#}", opts.log_prefix);
            ExitCode::from(1)
        }
    }
}

fn init_logging(opts: &Options) {
    let level = match opts.log_level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error | LogLevel::Fatal => "error",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "nsqlookupd={level}"
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
        let daemon = Nsqlookupd::bind(opts).await?;
        let cancel = CancellationToken::new();
        let signal_cancel = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signal_cancel.cancel();
        });
        daemon.run(cancel).await;
        Ok(())
    })
}

/// SIGINT or SIGTERM; both end in a clean exit with status 0, as in Go.
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
