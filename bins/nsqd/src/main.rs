//! The `nsqd` binary: flags in, daemon out. Everything else lives in the library; the start-up steps it
//! shares with `nsqlookupd` are in `nsq_http::daemon`.

use std::process::ExitCode;

use nsq_http::daemon;
use nsqd::cli::{parse_args, version_line};
use nsqd::{Nsqd, Options};

fn main() -> ExitCode {
    let opts = match daemon::options_or_exit(parse_args(std::env::args().skip(1)), version_line) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    daemon::init_logging(&["nsqd", "nsq_core"], opts.log_level.as_str());
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

/// Binds, then runs until SIGTERM or SIGINT.
fn run(opts: Options) -> anyhow::Result<()> {
    daemon::runtime()?.block_on(async {
        let nsqd = Nsqd::bind(opts).await?;
        nsqd.run(daemon::cancel_on_signal()).await;
        Ok(())
    })
}
