//! nsqlookupd's options, with Go's defaults (Go's `nsqlookupd.Options` and `NewOptions`).

use std::time::Duration;

/// Everything nsqlookupd can be configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Lowest level logged.
    pub log_level: LogLevel,
    /// Text in front of each log line (Go's default `[nsqlookupd] `).
    pub log_prefix: String,
    /// `<addr>:<port>` of the TCP listener nsqd connects to.
    pub tcp_address: String,
    /// `<addr>:<port>` of the HTTP API.
    pub http_address: String,
    /// The address this lookupd reports in its IDENTIFY answer (the OS hostname unless set).
    pub broadcast_address: String,
    /// How long a producer stays in `/lookup` and `/nodes` after its last IDENTIFY or PING.
    pub inactive_producer_timeout: Duration,
    /// How long `/topic/tombstone` hides a producer of a topic from `/lookup`.
    pub tombstone_lifetime: Duration,
    /// `--config`: the TOML file the other fields were read from (under the command line's flags); empty
    /// when none was given.
    pub config_file: String,
    /// `--verbose` was given. Go kept the flag without effect (`--log-level` replaced it); so do we.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            log_level: LogLevel::Info,
            log_prefix: "[nsqlookupd] ".to_owned(),
            tcp_address: "0.0.0.0:4160".to_owned(),
            http_address: "0.0.0.0:4161".to_owned(),
            broadcast_address: os_hostname(),
            inactive_producer_timeout: Duration::from_secs(300),
            tombstone_lifetime: Duration::from_secs(45),
            config_file: String::new(),
            verbose: false,
        }
    }
}

/// The OS hostname (Go's `os.Hostname()`), empty if it cannot be read.
pub fn os_hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Log verbosity, Go's `lg.LogLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// The default.
    Info,
    /// Problems only.
    Warn,
    /// Errors only.
    Error,
    /// Only what stops the daemon.
    Fatal,
}

impl LogLevel {
    /// Parses a level name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" => Some(Self::Warn),
            "error" => Some(Self::Error),
            "fatal" => Some(Self::Fatal),
            _ => None,
        }
    }

    /// The lowercase name, as accepted by `parse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Fatal => "fatal",
        }
    }
}
