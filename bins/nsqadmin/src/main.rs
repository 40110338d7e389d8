//! The `nsqadmin` binary: flags in, daemon out. Everything else lives in the library; the start-up steps
//! shared with the other daemons are in `nsq_http::daemon`.

use std::process::ExitCode;

use nsq_http::daemon;
use nsqadmin::cli::{parse_args, version_line, CliError};
use nsqadmin::{Nsqadmin, Options};

fn main() -> ExitCode {
    let parsed = parse_args(std::env::args().skip(1));
    if let Err(CliError::Config(e)) = &parsed {
        eprintln!("[nsqadmin] FATAL: {e}");
        return ExitCode::from(1);
    }
    let opts = match daemon::options_or_exit(parsed, version_line) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    daemon::init_logging(&["nsqadmin"], &opts.log_level, &opts.log_prefix);
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
        let admin = Nsqadmin::bind(opts).await?;
        admin.run(daemon::cancel_on_signal()).await;
        Ok(())
    })
}
