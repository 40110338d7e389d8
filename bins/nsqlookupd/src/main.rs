//! The `nsqlookupd` binary: flags in, daemon out. Everything else lives in the library; the start-up steps it
//! shares with `nsqd` are in `nsq_http::daemon`.

use std::process::ExitCode;

use nsq_http::daemon;
use nsqlookupd::cli::{parse_args, version_line};
use nsqlookupd::{Nsqlookupd, Options};

fn main() -> ExitCode {
    let opts = match daemon::options_or_exit(parse_args(std::env::args().skip(1)), version_line) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    if let Some(reason) = opts.unsupported_reason() {
        eprintln!("{}FATAL: {reason}", opts.log_prefix);
        return ExitCode::from(1);
    }
    daemon::init_logging(&["nsqlookupd"], opts.log_level.as_str());
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

/// Binds, then runs until SIGTERM or SIGINT.
fn run(opts: Options) -> anyhow::Result<()> {
    daemon::runtime()?.block_on(async {
        let lookupd = Nsqlookupd::bind(opts).await?;
        lookupd.run(daemon::cancel_on_signal()).await;
        Ok(())
    })
}
