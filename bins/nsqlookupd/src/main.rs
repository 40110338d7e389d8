//! The `nsqlookupd` binary: flags in, daemon out. Everything else lives in the library; the start-up steps it
//! shares with `nsqd` are in `nsq_http::daemon`.

use std::process::ExitCode;

use nsq_http::daemon;
use nsqlookupd::cli::{parse_args, version_line, CliError};
use nsqlookupd::{Nsqlookupd, Options};

fn main() -> ExitCode {
    let parsed = parse_args(std::env::args().skip(1));
    // A config file that cannot be loaded is fatal in Go (status 1); a bad flag is the flag package's 2.
    if let Err(CliError::Config(e)) = &parsed {
        eprintln!("[nsqlookupd] FATAL: {e}");
        return ExitCode::from(1);
    }
    let opts = match daemon::options_or_exit(parsed, version_line) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    daemon::init_logging(&["nsqlookupd"], opts.log_level.as_str(), &opts.log_prefix);
    if opts.verbose {
        tracing::warn!("--verbose is deprecated and has no effect; use --log-level=debug");
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
        let lookupd = Nsqlookupd::bind(opts).await?;
        lookupd.run(daemon::cancel_on_signal()).await;
        Ok(())
    })
}
