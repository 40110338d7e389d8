//! The `nsqd` binary: flags in, daemon out. Everything else lives in the library; the start-up steps it
//! shares with `nsqlookupd` are in `nsq_http::daemon`.

use std::process::ExitCode;

use nsq_http::daemon;
use nsqd::cli::{parse_args, version_line, CliError};
use nsqd::{Nsqd, Options};

fn main() -> ExitCode {
    let parsed = parse_args(std::env::args().skip(1));
    // A config file that cannot be loaded is fatal in Go (status 1); a bad flag is the flag package's 2.
    if let Err(CliError::Config(e)) = &parsed {
        eprintln!("[nsqd] FATAL: {e}");
        return ExitCode::from(1);
    }
    let opts = match daemon::options_or_exit(parsed, version_line) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    daemon::init_logging(
        &["nsqd", "nsq_core"],
        opts.log_level.as_str(),
        &opts.log_prefix,
    );
    if opts.verbose {
        tracing::warn!("--verbose is deprecated and has no effect; use --log-level=debug");
    }
    if opts.worker_id {
        tracing::warn!("--worker-id is deprecated and has no effect; use --node-id");
    }
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            daemon::log_fatal(format_args!("{e:#}"));
            ExitCode::from(1)
        }
    }
}

/// Binds, then runs until SIGTERM or SIGINT.
fn run(opts: Options) -> anyhow::Result<()> {
    daemon::runtime()?.block_on(async {
        let nsqd = Nsqd::bind(opts).await?;
        nsqd.run(daemon::cancel_on_signal()).await;
        Ok(())
    })
}
