//! Process start-up that the `nsqd` and `nsqlookupd` binaries share: acting on the command line's outcome,
//! logging to stderr, the Tokio runtime and the signals that stop the daemon.
//!
//! These are a few lines each, but both `main.rs` files repeated them word for word; they live here because
//! both binaries already depend on this crate, and a crate of their own would be larger than its contents.

use std::fmt::Display;
use std::process::ExitCode;

use nsq_goflag::CliAction;
use tokio_util::sync::CancellationToken;

/// Acts on a parsed command line as Go's daemons do: `--version` prints `version_line()` to stdout and `-h`
/// prints the help to stderr (both exit 0); a rejected command line prints its error and exits 2. What is
/// left is the options to run with.
pub fn options_or_exit<O, E: Display>(
    parsed: Result<CliAction<O>, E>,
    version_line: impl FnOnce() -> String,
) -> Result<O, ExitCode> {
    match parsed {
        Ok(CliAction::Run(opts)) => Ok(opts),
        Ok(CliAction::PrintVersion) => {
            println!("{}", version_line());
            Err(ExitCode::SUCCESS)
        }
        Ok(CliAction::PrintHelp(text)) => {
            eprint!("{text}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Logs the events of `crates` (Rust crate names) to stderr, without targets or colours, from `go_level` up:
/// a `--log-level` name (`debug`, `info`, `warn`, `error`, `fatal`; `fatal` logs errors, which is the closest
/// `tracing` level).
pub fn init_logging(crates: &[&str], go_level: &str) {
    let level = if go_level == "fatal" {
        "error"
    } else {
        go_level
    };
    let filter = crates
        .iter()
        .map(|name| format!("{name}={level}"))
        .collect::<Vec<_>>()
        .join(",");
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_ansi(false)
        .init();
}

/// The multi-threaded runtime a daemon runs on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// A token cancelled at the first SIGTERM or SIGINT, which both end the daemon cleanly with status 0, as in
/// Go. Call it inside the runtime once the daemon is bound, so a signal during start-up still kills it.
pub fn cancel_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let signal_cancel = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal_cancel.cancel();
    });
    cancel
}

/// Resolves at SIGTERM or SIGINT; never, if SIGTERM cannot be watched.
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

/// The address to bind for a Go listen flag: Go accepts `:4150` for "all interfaces, port 4150".
pub fn listen_address(addr: &str) -> String {
    if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn a_bare_port_means_every_interface() {
        assert_eq!(listen_address(":4150"), "0.0.0.0:4150");
        assert_eq!(listen_address("127.0.0.1:4161"), "127.0.0.1:4161");
    }
}
