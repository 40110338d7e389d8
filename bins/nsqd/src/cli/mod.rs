//! nsqd's command line, parsed the way Go's `flag` package parses it.
//!
//! Scripts, init files and container specs written for Go's nsqd pass flags as `-flag value`, `--flag=value`
//! and so on, and expect Go's error wording when they get one wrong. A derive-based parser would reject or
//! reinterpret some of those spellings, so this module implements Go's rules directly over a table of flags,
//! one `FlagSpec` line per flag. Every flag of Go's nsqd (master 3103474b) is in the table; which of them are
//! stored but not acted on yet is listed on `Options`.
//!
//! `--config FILE` names a TOML file whose keys are the same options (see `FlagSpec::config_key` for the key
//! names); a flag given on the command line wins over the file, and the file over the default, as in Go.

impl LayeredFlag for FlagSpec {
    type State = ParseState;
    type Error = CliError;

    fn apply(&self, state: &mut ParseState, value: &str) -> Result<(), CliError> {
        self.set(state, value)
    }

    fn key(&self) -> Option<String> {
        self.config_key()
    }

    fn apply_config(&self, state: &mut ParseState, value: &TomlValue) -> Result<(), String> {
        self.set_from_config(state, value)
    }
}

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use nsq_goflag::parse_go_duration;
use nsq_goflag::{
    config_key, duration_flag_value, format_go_duration, parse_go_bool, parse_go_int,
    parse_layered, usage_text, value_bool, value_duration, value_floats, value_int, value_string,
    value_strings, value_text, ArgError, ConfigError, HelpEntry, LayeredFlag, TableFlag, TomlValue,
    PARSE_ERROR,
};

use crate::options::{LogLevel, Options, TLS_NOT_REQUIRED, TLS_REQUIRED, TLS_REQUIRED_EXCEPT_HTTP};

/// What the command line asks nsqd to do: run with these options, print `version_line()`, or print the help.
pub type CliAction = nsq_goflag::CliAction<Options>;

/// Why the command line was rejected. `Display` is the message Go's `flag` package or nsqd prints.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag that nsqd does not define.
    #[error("flag provided but not defined: -{0}")]
    UndefinedFlag(String),
    /// An argument such as `---x` or `-=x`.
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    /// A non-boolean flag at the end of the arguments with no value.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A value the flag's type does not accept.
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    InvalidValue {
        flag: String,
        value: String,
        reason: String,
    },
    /// A boolean flag (or `--tls-required`, which Go also treats as one) given as `-flag=x` with an `x` it
    /// does not accept.
    #[error("invalid boolean value {value:?} for -{flag}: {reason}")]
    InvalidBool {
        flag: String,
        value: String,
        reason: String,
    },
    /// One element of a percentile list is not a number (Go exits with this message while parsing).
    #[error("Could not parse: {0}")]
    BadPercentile(String),
    /// `--max-deflate-level` outside the levels deflate has.
    #[error("--max-deflate-level must be [1,9]")]
    DeflateLevelOutOfRange(i64),
    /// `--node-id` outside what fits in a message ID.
    #[error("--node-id must be [0,1024)")]
    NodeIdOutOfRange(i64),
    /// Only one of `--tls-cert` and `--tls-key`. Go fails here too, when it tries to load the pair.
    #[error("failed to build TLS config - --tls-cert and --tls-key must be given together")]
    TlsKeyPairIncomplete,
    /// `--tls-required` (or `--tls-client-auth-policy`) without a certificate to offer.
    #[error("cannot require TLS client connections without TLS key and cert")]
    TlsRequiredWithoutCert,
    /// `--auth-http-request-method` other than `get` or `post`.
    #[error("--auth-http-request-method must be post or get")]
    BadAuthMethod(String),
    /// A latency percentile outside (0, 1].
    #[error("invalid E2E processing latency percentile: {0}")]
    PercentileOutOfRange(f64),
    /// The `--config` file is missing, is not TOML, has a key nsqd does not know or a value it refuses. Go
    /// treats a file it cannot load as fatal (exit status 1, not the flag package's 2), and so does `main`.
    #[error("{0}")]
    Config(#[from] ConfigError),
}

impl From<ArgError> for CliError {
    fn from(e: ArgError) -> Self {
        match e {
            ArgError::UndefinedFlag(name) => CliError::UndefinedFlag(name),
            ArgError::BadSyntax(arg) => CliError::BadSyntax(arg),
            ArgError::MissingValue(name) => CliError::MissingValue(name),
        }
    }
}

/// Parses argv (without argv[0]) the way Go's `flag` package does.
///
/// Each flag is accepted as `-flag value`, `-flag=value`, `--flag value` and `--flag=value`. Boolean flags are
/// set by `-flag` alone or `-flag=<bool>` (Go's `strconv.ParseBool` spellings), never `-flag false`. Parsing
/// stops at the first non-flag argument or after `--`; Go's nsqd ignores whatever follows, and so do we.
/// `-h`, `-help` and their double-dash forms ask for help. After parsing, `--version` wins; otherwise the
/// `--config` file is read (see `apply_config_file`), then the options are completed and checked as Go's
/// nsqd does at start-up (`--tls-client-auth-policy` turns `tls_required` on), whichever source set them.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<CliAction, CliError> {
    let parsed = parse_layered(args, FLAGS, |s| s.version, |s| &s.opts.config_file)?;
    let Some(state) = parsed else {
        return Ok(CliAction::PrintHelp(help_text()));
    };
    if state.version {
        return Ok(CliAction::PrintVersion);
    }
    let mut opts = state.opts;
    if !opts.tls_client_auth_policy.is_empty() && opts.tls_required == TLS_NOT_REQUIRED {
        // Asking for client certificates only makes sense over TLS, so Go's nsqd turns the requirement on.
        opts.tls_required = TLS_REQUIRED;
    }
    validate(&opts)?;
    Ok(CliAction::Run(opts))
}

/// The `--version` line. Go prints `nsqd v1.3.0 (built w/go1.19.8)`; tools match on the first part, so that
/// stays as Go has it and the rest says what this build is.
pub fn version_line() -> String {
    format!(
        "nsqd v{GO_NSQ_VERSION} (built w/rust, nsq-rs {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The `--help` text, laid out as Go's `flag.PrintDefaults`: every flag sorted by name, each as `-name type`
/// followed by an indented description and its default when that is not the type's zero value.
pub fn help_text() -> String {
    let mut defaults = ParseState::default();
    let entries = FLAGS
        .iter()
        .map(|flag| HelpEntry {
            name: flag.name,
            type_name: flag.setter.type_name(),
            usage: flag.usage,
            default: flag.setter.default_text(&mut defaults),
        })
        .collect();
    usage_text("nsqd", entries)
}

/// The NSQ release whose behaviour this build reproduces.
const GO_NSQ_VERSION: &str = "1.3.0";

/// What the parser fills in: the options, plus flags that are actions rather than options.
#[derive(Default)]
struct ParseState {
    opts: Options,
    version: bool,
}

/// One command-line flag: its name without dashes, its help line and how its value is stored.
struct FlagSpec {
    name: &'static str,
    usage: &'static str,
    setter: Setter,
}

/// How a flag's value is parsed and stored. Each kind takes a plain function that points at the field, so a
/// table line says which field a flag sets and nothing more; the help text reads defaults through it too.
#[derive(Clone, Copy)]
enum Setter {
    Bool(fn(&mut ParseState) -> &mut bool),
    Str(fn(&mut ParseState) -> &mut String),
    /// A repeatable flag: each occurrence appends its whole value (Go's `app.StringArray`, no comma split).
    Strings(fn(&mut ParseState) -> &mut Vec<String>),
    Int(fn(&mut ParseState) -> &mut i64),
    /// A Go `int` flag that holds a port; 0 to 65535 are accepted.
    Port(fn(&mut ParseState) -> &mut u16),
    Duration(fn(&mut ParseState) -> &mut Duration),
    LogLevel,
    Percentiles,
    /// `true`, `false` or `tcp-https`, case-insensitive. Go marks it a boolean flag, so `--tls-required`
    /// alone means `true` and a value must be written `--tls-required=<value>`.
    TlsRequired,
    /// `tls1.0` to `tls1.3`, case-insensitive, stored as the TLS wire version; empty leaves it unchanged.
    TlsMinVersion,
}

/// Every flag Go's nsqd accepts, each with Go's name and type; defaults come from `Options::default`.
const FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "version",
        usage: "print the version and exit",
        setter: Setter::Bool(|s| &mut s.version),
    },
    FlagSpec {
        name: "config",
        usage:
            "path of a TOML config file; its keys are the flag names with '-' as '_', and flags \
                given on the command line win over them",
        setter: Setter::Str(|s| &mut s.opts.config_file),
    },
    FlagSpec {
        name: "log-level",
        usage: "lowest level logged: debug, info, warn, error or fatal",
        setter: Setter::LogLevel,
    },
    FlagSpec {
        name: "log-prefix",
        usage: "text put in front of each log line",
        setter: Setter::Str(|s| &mut s.opts.log_prefix),
    },
    FlagSpec {
        name: "verbose",
        usage: "deprecated and without effect; use --log-level",
        setter: Setter::Bool(|s| &mut s.opts.verbose),
    },
    FlagSpec {
        name: "node-id",
        usage:
            "this node's part of message IDs, in [0,1024); the default is a hash of the hostname",
        setter: Setter::Int(|s| &mut s.opts.node_id),
    },
    FlagSpec {
        name: "worker-id",
        usage: "deprecated and without effect; use --node-id",
        setter: Setter::Bool(|s| &mut s.opts.worker_id),
    },
    FlagSpec {
        name: "tcp-address",
        usage: "<addr>:<port> the TCP protocol listener binds to",
        setter: Setter::Str(|s| &mut s.opts.tcp_address),
    },
    FlagSpec {
        name: "http-address",
        usage: "<addr>:<port> the HTTP API listener binds to",
        setter: Setter::Str(|s| &mut s.opts.http_address),
    },
    FlagSpec {
        name: "https-address",
        usage: "<addr>:<port> the HTTPS API listener binds to",
        setter: Setter::Str(|s| &mut s.opts.https_address),
    },
    FlagSpec {
        name: "broadcast-address",
        usage: "address registered with nsqlookupd (the OS hostname unless set)",
        setter: Setter::Str(|s| &mut s.opts.broadcast_address),
    },
    FlagSpec {
        name: "broadcast-tcp-port",
        usage: "TCP port registered with nsqlookupd (0 means the port the TCP listener got)",
        setter: Setter::Port(|s| &mut s.opts.broadcast_tcp_port),
    },
    FlagSpec {
        name: "broadcast-http-port",
        usage: "HTTP port registered with nsqlookupd (0 means the port the HTTP listener got)",
        setter: Setter::Port(|s| &mut s.opts.broadcast_http_port),
    },
    FlagSpec {
        name: "lookupd-tcp-address",
        usage: "TCP address of an nsqlookupd to register with (repeat the flag for several)",
        setter: Setter::Strings(|s| &mut s.opts.nsqlookupd_tcp_addresses),
    },
    FlagSpec {
        name: "auth-http-address",
        usage: "<addr>:<port> or URL of an auth server to check AUTH secrets with (repeatable)",
        setter: Setter::Strings(|s| &mut s.opts.auth_http_addresses),
    },
    FlagSpec {
        name: "auth-http-request-method",
        usage: "HTTP method used to query auth servers: get or post",
        setter: Setter::Str(|s| &mut s.opts.auth_http_request_method),
    },
    FlagSpec {
        name: "http-client-connect-timeout",
        usage: "connect timeout of outgoing HTTP requests",
        setter: Setter::Duration(|s| &mut s.opts.http_client_connect_timeout),
    },
    FlagSpec {
        name: "http-client-request-timeout",
        usage: "whole-request timeout of outgoing HTTP requests",
        setter: Setter::Duration(|s| &mut s.opts.http_client_request_timeout),
    },
    FlagSpec {
        name: "topology-region",
        usage: "region this node reports to topology-aware clients",
        setter: Setter::Str(|s| &mut s.opts.topology_region),
    },
    FlagSpec {
        name: "topology-zone",
        usage: "zone this node reports to topology-aware clients",
        setter: Setter::Str(|s| &mut s.opts.topology_zone),
    },
    FlagSpec {
        name: "enable-experiment",
        usage: "switch on an experimental feature by name, such as 'topology-aware-consumption' \
                (repeatable)",
        setter: Setter::Strings(|s| &mut s.opts.enable_experiment),
    },
    FlagSpec {
        name: "data-path",
        usage: "directory for disk queues and metadata (the default is the working directory)",
        setter: Setter::Str(|s| &mut s.opts.data_path),
    },
    FlagSpec {
        name: "mem-queue-size",
        usage: "messages kept in memory per topic and per channel before spilling to disk",
        setter: Setter::Int(|s| &mut s.opts.mem_queue_size),
    },
    FlagSpec {
        name: "max-bytes-per-file",
        usage: "size in bytes at which a disk queue starts a new file",
        setter: Setter::Int(|s| &mut s.opts.max_bytes_per_file),
    },
    FlagSpec {
        name: "sync-every",
        usage: "disk queue writes between fsyncs",
        setter: Setter::Int(|s| &mut s.opts.sync_every),
    },
    FlagSpec {
        name: "sync-timeout",
        usage: "longest time a disk queue goes without an fsync",
        setter: Setter::Duration(|s| &mut s.opts.sync_timeout),
    },
    FlagSpec {
        name: "queue-scan-worker-pool-max",
        usage: "most workers checking in-flight and deferred timeouts at once",
        setter: Setter::Int(|s| &mut s.opts.queue_scan_worker_pool_max),
    },
    FlagSpec {
        name: "queue-scan-selection-count",
        usage: "channels sampled per 100ms scan for in-flight and deferred timeouts",
        setter: Setter::Int(|s| &mut s.opts.queue_scan_selection_count),
    },
    FlagSpec {
        name: "msg-timeout",
        usage: "how long a delivered message may go unacknowledged before it is requeued",
        setter: Setter::Duration(|s| &mut s.opts.msg_timeout),
    },
    FlagSpec {
        name: "max-msg-timeout",
        usage: "longest message timeout a client may ask for",
        setter: Setter::Duration(|s| &mut s.opts.max_msg_timeout),
    },
    FlagSpec {
        name: "max-msg-size",
        usage: "largest message body accepted, in bytes",
        setter: Setter::Int(|s| &mut s.opts.max_msg_size),
    },
    FlagSpec {
        name: "max-body-size",
        usage: "largest command body (such as a whole MPUB) accepted, in bytes",
        setter: Setter::Int(|s| &mut s.opts.max_body_size),
    },
    FlagSpec {
        name: "max-req-timeout",
        usage: "longest requeue or publish deferral a client may ask for",
        setter: Setter::Duration(|s| &mut s.opts.max_req_timeout),
    },
    FlagSpec {
        name: "max-heartbeat-interval",
        usage: "longest heartbeat interval a client may ask for",
        setter: Setter::Duration(|s| &mut s.opts.max_heartbeat_interval),
    },
    FlagSpec {
        name: "max-rdy-count",
        usage: "largest RDY count a client may set",
        setter: Setter::Int(|s| &mut s.opts.max_rdy_count),
    },
    FlagSpec {
        name: "max-output-buffer-size",
        usage: "largest output buffer a client may ask for, in bytes",
        setter: Setter::Int(|s| &mut s.opts.max_output_buffer_size),
    },
    FlagSpec {
        name: "max-output-buffer-timeout",
        usage: "longest output buffer flush delay a client may ask for",
        setter: Setter::Duration(|s| &mut s.opts.max_output_buffer_timeout),
    },
    FlagSpec {
        name: "min-output-buffer-timeout",
        usage: "shortest output buffer flush delay a client may ask for",
        setter: Setter::Duration(|s| &mut s.opts.min_output_buffer_timeout),
    },
    FlagSpec {
        name: "output-buffer-timeout",
        usage: "output buffer flush delay for clients that do not ask for one",
        setter: Setter::Duration(|s| &mut s.opts.output_buffer_timeout),
    },
    FlagSpec {
        name: "max-channel-consumers",
        usage: "most consumers one channel may have (0 means no limit)",
        setter: Setter::Int(|s| &mut s.opts.max_channel_consumers),
    },
    FlagSpec {
        name: "statsd-address",
        usage: "UDP <addr>:<port> of a statsd daemon to push metrics to",
        setter: Setter::Str(|s| &mut s.opts.statsd_address),
    },
    FlagSpec {
        name: "statsd-prefix",
        usage: "prefix of statsd keys; %s stands for this node's address and HTTP port",
        setter: Setter::Str(|s| &mut s.opts.statsd_prefix),
    },
    FlagSpec {
        name: "statsd-interval",
        usage: "time between pushes to statsd",
        setter: Setter::Duration(|s| &mut s.opts.statsd_interval),
    },
    FlagSpec {
        name: "statsd-mem-stats",
        usage: "also push memory statistics to statsd",
        setter: Setter::Bool(|s| &mut s.opts.statsd_mem_stats),
    },
    FlagSpec {
        name: "statsd-udp-packet-size",
        usage: "largest UDP packet sent to statsd, in bytes",
        setter: Setter::Int(|s| &mut s.opts.statsd_udp_packet_size),
    },
    FlagSpec {
        name: "statsd-exclude-ephemeral",
        usage: "leave ephemeral topics and channels out of statsd",
        setter: Setter::Bool(|s| &mut s.opts.statsd_exclude_ephemeral),
    },
    FlagSpec {
        name: "e2e-processing-latency-percentile",
        usage:
            "end-to-end latency percentile to track, in (0,1]; repeat the flag or give a comma list",
        setter: Setter::Percentiles,
    },
    FlagSpec {
        name: "e2e-processing-latency-window-time",
        usage: "time window the latency percentiles are computed over",
        setter: Setter::Duration(|s| &mut s.opts.e2e_processing_latency_window_time),
    },
    FlagSpec {
        name: "tls-cert",
        usage: "path of the TLS certificate file",
        setter: Setter::Str(|s| &mut s.opts.tls_cert),
    },
    FlagSpec {
        name: "tls-key",
        usage: "path of the TLS private key file",
        setter: Setter::Str(|s| &mut s.opts.tls_key),
    },
    FlagSpec {
        name: "tls-root-ca-file",
        usage: "path of the certificate authority file used to check client certificates",
        setter: Setter::Str(|s| &mut s.opts.tls_root_ca_file),
    },
    FlagSpec {
        name: "tls-client-auth-policy",
        usage: "client certificate policy, 'require' or 'require-verify'; implies --tls-required",
        setter: Setter::Str(|s| &mut s.opts.tls_client_auth_policy),
    },
    FlagSpec {
        name: "tls-required",
        usage:
            "whether clients must use TLS: true, false or tcp-https (TCP only); give a value as \
                --tls-required=<value>",
        setter: Setter::TlsRequired,
    },
    FlagSpec {
        name: "tls-min-version",
        usage: "oldest TLS version accepted: 'tls1.0', 'tls1.1', 'tls1.2' or 'tls1.3'",
        setter: Setter::TlsMinVersion,
    },
    FlagSpec {
        name: "deflate",
        usage: "let clients negotiate deflate compression",
        setter: Setter::Bool(|s| &mut s.opts.deflate),
    },
    FlagSpec {
        name: "max-deflate-level",
        usage: "highest deflate level a client may negotiate, 1 to 9 (higher costs more CPU)",
        setter: Setter::Int(|s| &mut s.opts.max_deflate_level),
    },
    FlagSpec {
        name: "snappy",
        usage: "let clients negotiate snappy compression",
        setter: Setter::Bool(|s| &mut s.opts.snappy),
    },
];

impl TableFlag for FlagSpec {
    fn name(&self) -> &str {
        self.name
    }

    fn is_bool(&self) -> bool {
        self.setter.is_bool_flag()
    }
}

/// The flags whose config-file key is not the flag name with `-` turned into `_` (Go's `cfg` struct tags).
const RENAMED_KEYS: [(&str, &str); 4] = [
    ("node-id", "id"),
    ("lookupd-tcp-address", "nsqlookupd_tcp_addresses"),
    ("auth-http-address", "auth_http_addresses"),
    (
        "e2e-processing-latency-percentile",
        "e2e_processing_latency_percentiles",
    ),
];

impl FlagSpec {
    /// The flag's key in a config file, or `None` for `--config` and `--version`, which a file cannot set.
    /// `verbose` and `worker_id` are keys (Go's shipped example file sets `verbose`), without effect as flags.
    fn config_key(&self) -> Option<String> {
        if matches!(self.name, "config" | "version") {
            return None;
        }
        Some(
            RENAMED_KEYS
                .iter()
                .find(|(flag, _)| *flag == self.name)
                .map_or_else(|| config_key(self.name), |(_, key)| (*key).to_owned()),
        )
    }

    /// Stores a config file's value for this flag, or returns why it is refused. Strings in the file are
    /// read as the flag reads its value; other TOML types follow go-options (integers for durations are
    /// milliseconds, arrays for the repeatable flags, and a comma-separated string also works for those).
    fn set_from_config(&self, state: &mut ParseState, value: &TomlValue) -> Result<(), String> {
        match self.setter {
            Setter::Bool(field) => *field(state) = value_bool(value)?,
            Setter::Str(field) => *field(state) = value_string(value)?,
            Setter::Strings(field) => *field(state) = value_strings(value)?,
            Setter::Int(field) => *field(state) = value_int(value)?,
            Setter::Port(field) => {
                *field(state) =
                    u16::try_from(value_int(value)?).map_err(|_| PORT_RANGE_ERROR.to_owned())?;
            }
            Setter::Duration(field) => *field(state) = value_duration(value)?,
            Setter::LogLevel => {
                let text = value_text(value)?;
                state.opts.log_level = LogLevel::parse(&text).ok_or_else(|| {
                    format!("invalid log level '{text}' (debug, info, warn, error, fatal)")
                })?;
            }
            Setter::Percentiles => {
                let mut list = value_floats(value)?;
                list.sort_by(|a, b| b.total_cmp(a));
                state.opts.e2e_processing_latency_percentiles = list;
            }
            // Go formats whatever the file holds as text and parses it as the flag would, so `false`,
            // `"false"` and `"tcp-https"` all work.
            Setter::TlsRequired => {
                state.opts.tls_required = parse_tls_required(&value_text(value)?)?;
            }
            Setter::TlsMinVersion => {
                if let Some(version) = parse_tls_min_version(&value_text(value)?)? {
                    state.opts.tls_min_version = version;
                }
            }
        }
        Ok(())
    }

    /// Parses and stores a flag's value; for a boolean flag given alone the caller passes `"true"`.
    fn set(&self, state: &mut ParseState, value: &str) -> Result<(), CliError> {
        let invalid = |reason: &str| {
            let (flag, value, reason) = (self.name.to_owned(), value.to_owned(), reason.to_owned());
            if self.setter.is_bool_flag() {
                CliError::InvalidBool {
                    flag,
                    value,
                    reason,
                }
            } else {
                CliError::InvalidValue {
                    flag,
                    value,
                    reason,
                }
            }
        };
        match self.setter {
            Setter::Bool(field) => {
                *field(state) = parse_go_bool(value).ok_or_else(|| invalid(PARSE_ERROR))?;
            }
            Setter::Str(field) => *field(state) = value.to_owned(),
            Setter::Strings(field) => field(state).push(value.to_owned()),
            Setter::Int(field) => *field(state) = parse_go_int(value).map_err(invalid)?,
            Setter::Port(field) => {
                let n = parse_go_int(value).map_err(invalid)?;
                *field(state) = u16::try_from(n).map_err(|_| invalid(PORT_RANGE_ERROR))?;
            }
            Setter::Duration(field) => {
                *field(state) = duration_flag_value(value).map_err(invalid)?
            }
            Setter::LogLevel => {
                state.opts.log_level = LogLevel::parse(value).ok_or_else(|| {
                    invalid(&format!(
                        "invalid log level '{value}' (debug, info, warn, error, fatal)"
                    ))
                })?;
            }
            Setter::Percentiles => {
                // Go appends every element of every occurrence, then keeps the list sorted descending.
                let list = &mut state.opts.e2e_processing_latency_percentiles;
                for part in value.split(',') {
                    let p: f64 = part
                        .parse()
                        .map_err(|_| CliError::BadPercentile(part.to_owned()))?;
                    list.push(p);
                }
                list.sort_by(|a, b| b.total_cmp(a));
            }
            Setter::TlsRequired => {
                state.opts.tls_required = parse_tls_required(value).map_err(|r| invalid(&r))?;
            }
            Setter::TlsMinVersion => {
                if let Some(version) = parse_tls_min_version(value).map_err(|r| invalid(&r))? {
                    state.opts.tls_min_version = version;
                }
            }
        }
        Ok(())
    }
}

impl Setter {
    /// Whether Go treats the flag as boolean: it is complete alone and never takes the next argument.
    fn is_bool_flag(self) -> bool {
        matches!(self, Setter::Bool(_) | Setter::TlsRequired)
    }

    /// The type word Go's help shows after the flag name; boolean flags show none.
    fn type_name(self) -> &'static str {
        match self {
            Setter::Bool(_) | Setter::TlsRequired => "",
            Setter::Str(_) => "string",
            Setter::Int(_) | Setter::Port(_) => "int",
            Setter::Duration(_) => "duration",
            Setter::Strings(_) | Setter::LogLevel | Setter::Percentiles | Setter::TlsMinVersion => {
                "value"
            }
        }
    }

    /// The default as Go's help shows it, or `None` for the zero value, which Go leaves out. The state is
    /// only read; it is `&mut` because the field accessors are shared with the parser.
    fn default_text(self, defaults: &mut ParseState) -> Option<String> {
        match self {
            Setter::Bool(field) => field(defaults).then(|| "true".to_owned()),
            Setter::Str(field) => {
                let v = field(defaults);
                (!v.is_empty()).then(|| format!("{v:?}"))
            }
            Setter::Strings(field) => {
                let v = field(defaults);
                (!v.is_empty()).then(|| v.join(","))
            }
            Setter::Int(field) => {
                let v = *field(defaults);
                (v != 0).then(|| v.to_string())
            }
            Setter::Port(field) => {
                let v = *field(defaults);
                (v != 0).then(|| v.to_string())
            }
            Setter::Duration(field) => {
                let v = *field(defaults);
                (!v.is_zero()).then(|| format_go_duration(v))
            }
            Setter::LogLevel => Some(defaults.opts.log_level.as_str().to_owned()),
            Setter::Percentiles => None,
            Setter::TlsRequired => {
                let v = defaults.opts.tls_required;
                (v != TLS_NOT_REQUIRED).then(|| v.to_string())
            }
            Setter::TlsMinVersion => {
                let v = defaults.opts.tls_min_version;
                Some(tls_version_name(v).map_or_else(|| v.to_string(), str::to_owned))
            }
        }
    }
}

/// Why a port flag's number was refused. Go takes any `int` here; a port that cannot exist is an error for us.
const PORT_RANGE_ERROR: &str = "a port must be in [0,65535]";

/// Go's `--tls-required` values: `tcp-https`, or a `strconv.ParseBool` spelling, compared after lowercasing.
/// The error is the reason Go prints, which quotes the lowercased value.
fn parse_tls_required(value: &str) -> Result<i64, String> {
    let lower = value.to_ascii_lowercase();
    if lower == "tcp-https" {
        return Ok(TLS_REQUIRED_EXCEPT_HTTP);
    }
    match parse_go_bool(&lower) {
        Some(true) => Ok(TLS_REQUIRED),
        Some(false) => Ok(TLS_NOT_REQUIRED),
        None => Err(format!(
            "strconv.ParseBool: parsing {lower:?}: invalid syntax"
        )),
    }
}

/// The `--tls-min-version` names, matched case-insensitively, with their TLS wire versions.
const TLS_VERSIONS: [(&str, u16); 4] = [
    ("tls1.0", 0x0301),
    ("tls1.1", 0x0302),
    ("tls1.2", 0x0303),
    ("tls1.3", 0x0304),
];

/// Parses a `--tls-min-version` value: `Some(version)`, or `None` for an empty value, which Go treats as
/// "leave the default". SSL 3.0 is refused: Go's help still names `ssl3.0`, but Go's nsqd rejects it.
fn parse_tls_min_version(value: &str) -> Result<Option<u16>, String> {
    let lower = value.to_ascii_lowercase();
    if lower.is_empty() {
        return Ok(None);
    }
    if lower == "ssl3.0" {
        return Err("SSL 3.0 is not supported; use tls1.0, tls1.1, tls1.2 or tls1.3".to_owned());
    }
    TLS_VERSIONS
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|&(_, version)| Some(version))
        .ok_or_else(|| format!("unknown tlsVersionOption {lower:?}"))
}

/// The `--tls-min-version` name of a TLS wire version, as Go's help shows the default.
fn tls_version_name(version: u16) -> Option<&'static str> {
    TLS_VERSIONS
        .iter()
        .find(|&&(_, v)| v == version)
        .map(|&(name, _)| name)
}

/// Go nsqd's start-up checks on what the flags produced, in the order Go makes them.
fn validate(opts: &Options) -> Result<(), CliError> {
    if !(1..=9).contains(&opts.max_deflate_level) {
        return Err(CliError::DeflateLevelOutOfRange(opts.max_deflate_level));
    }
    if !(0..1024).contains(&opts.node_id) {
        return Err(CliError::NodeIdOutOfRange(opts.node_id));
    }
    let (has_cert, has_key) = (!opts.tls_cert.is_empty(), !opts.tls_key.is_empty());
    if has_cert != has_key {
        return Err(CliError::TlsKeyPairIncomplete);
    }
    if opts.tls_required != TLS_NOT_REQUIRED && !has_cert {
        return Err(CliError::TlsRequiredWithoutCert);
    }
    if !matches!(opts.auth_http_request_method.as_str(), "get" | "post") {
        return Err(CliError::BadAuthMethod(
            opts.auth_http_request_method.clone(),
        ));
    }
    for &p in &opts.e2e_processing_latency_percentiles {
        // Written so that NaN fails too; Go's check happens to let NaN through.
        if !(p > 0.0 && p <= 1.0) {
            return Err(CliError::PercentileOutOfRange(p));
        }
    }
    Ok(())
}
