//! nsqadmin's command line, with Go's flag names, defaults and syntax.
//!
//! The argument walk and Go's value syntax come from `nsq-goflag`; this module holds the table of Go
//! nsqadmin's flags and how each value is stored, from the command line or from a `--config` TOML file. Keys
//! are the flag names with `-` as `_`, except the repeatable lists, whose keys are Go's `cfg` names
//! (`nsqlookupd_http_addresses`, `nsqd_http_addresses`, `admin_users`). A flag on the command line wins over
//! the file, the file over the default.

use std::time::Duration;

use nsq_goflag::{
    config_key, duration_flag_value, format_go_duration, parse_go_bool, parse_layered, usage_text,
    value_bool, value_duration, value_string, value_strings, value_text, ArgError, ConfigError,
    HelpEntry, LayeredFlag, TableFlag, TomlValue, PARSE_ERROR,
};

use crate::options::{is_log_level, Options};
use crate::NSQ_VERSION;

/// What the command line asks nsqadmin to do.
pub type CliAction = nsq_goflag::CliAction<Options>;

/// Why the command line was rejected. `Display` is the message Go's `flag` package prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A malformed argument or an unknown flag.
    #[error("{0}")]
    Arg(#[from] ArgError),
    /// A value the flag's type does not accept.
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    InvalidValue {
        /// The flag name.
        flag: String,
        /// The value given.
        value: String,
        /// Go's reason.
        reason: String,
    },
    /// The `--config` file cannot be used; fatal (exit status 1) as in Go.
    #[error("{0}")]
    Config(#[from] ConfigError),
}

/// Parses argv (without argv\[0\]) as Go's nsqadmin does; `--version` wins, then the `--config` file fills in
/// every option the command line did not give.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<CliAction, CliError> {
    let parsed = parse_layered(args, FLAGS, |s| s.version, |s| &s.opts.config_file)?;
    let Some(state) = parsed else {
        return Ok(CliAction::PrintHelp(help_text()));
    };
    if state.version {
        return Ok(CliAction::PrintVersion);
    }
    Ok(CliAction::Run(state.opts))
}

/// The `--version` line, `nsqadmin v1.3.0 (built w/rust, ...)`.
pub fn version_line() -> String {
    format!(
        "nsqadmin v{NSQ_VERSION} (built w/rust, nsq-rs {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The `--help` text, laid out as Go's `flag.PrintDefaults`.
pub fn help_text() -> String {
    let mut defaults = ParseState::default();
    let entries = FLAGS
        .iter()
        .map(|flag| {
            let (type_name, default) = match flag.setter {
                Setter::Bool(_) => ("", None),
                Setter::Str(field) => {
                    let v = field(&mut defaults);
                    ("string", (!v.is_empty()).then(|| format!("{v:?}")))
                }
                Setter::Duration(field) => {
                    let v = *field(&mut defaults);
                    ("duration", (!v.is_zero()).then(|| format_go_duration(v)))
                }
                Setter::List(_) => ("value", None),
                Setter::LogLevel => ("value", Some(defaults.opts.log_level.clone())),
            };
            HelpEntry {
                name: flag.name,
                type_name,
                usage: flag.usage,
                default,
            }
        })
        .collect();
    usage_text("nsqadmin", entries)
}

#[derive(Default)]
struct ParseState {
    opts: Options,
    version: bool,
}

struct FlagSpec {
    name: &'static str,
    usage: &'static str,
    setter: Setter,
}

#[derive(Clone, Copy)]
enum Setter {
    Bool(fn(&mut ParseState) -> &mut bool),
    Str(fn(&mut ParseState) -> &mut String),
    Duration(fn(&mut ParseState) -> &mut Duration),
    /// A repeatable flag: each use appends.
    List(fn(&mut ParseState) -> &mut Vec<String>),
    LogLevel,
}

/// Every flag of Go's nsqadmin 1.3.
const FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "version",
        usage: "print version string",
        setter: Setter::Bool(|s| &mut s.version),
    },
    FlagSpec {
        name: "config",
        usage: "path to config file",
        setter: Setter::Str(|s| &mut s.opts.config_file),
    },
    FlagSpec {
        name: "log-level",
        usage: "set log verbosity: debug, info, warn, error, or fatal",
        setter: Setter::LogLevel,
    },
    FlagSpec {
        name: "log-prefix",
        usage: "log message prefix",
        setter: Setter::Str(|s| &mut s.opts.log_prefix),
    },
    FlagSpec {
        name: "http-address",
        usage: "<addr>:<port> to listen on for HTTP clients",
        setter: Setter::Str(|s| &mut s.opts.http_address),
    },
    FlagSpec {
        name: "base-path",
        usage: "URL base path",
        setter: Setter::Str(|s| &mut s.opts.base_path),
    },
    FlagSpec {
        name: "dev-static-dir",
        usage: "(development use only)",
        setter: Setter::Str(|s| &mut s.opts.dev_static_dir),
    },
    FlagSpec {
        name: "graphite-url",
        usage: "graphite HTTP address",
        setter: Setter::Str(|s| &mut s.opts.graphite_url),
    },
    FlagSpec {
        name: "proxy-graphite",
        usage: "proxy HTTP requests to graphite",
        setter: Setter::Bool(|s| &mut s.opts.proxy_graphite),
    },
    FlagSpec {
        name: "statsd-counter-format",
        usage: "The counter stats key formatting applied by the implementation of statsd",
        setter: Setter::Str(|s| &mut s.opts.statsd_counter_format),
    },
    FlagSpec {
        name: "statsd-gauge-format",
        usage: "The gauge stats key formatting applied by the implementation of statsd",
        setter: Setter::Str(|s| &mut s.opts.statsd_gauge_format),
    },
    FlagSpec {
        name: "statsd-prefix",
        usage: "prefix used for keys sent to statsd (%s for host replacement, must match nsqd)",
        setter: Setter::Str(|s| &mut s.opts.statsd_prefix),
    },
    FlagSpec {
        name: "statsd-interval",
        usage: "time interval nsqd is configured to push to statsd (must match nsqd)",
        setter: Setter::Duration(|s| &mut s.opts.statsd_interval),
    },
    FlagSpec {
        name: "notification-http-endpoint",
        usage: "HTTP endpoint (fully qualified) to which POST notifications of admin actions will be sent",
        setter: Setter::Str(|s| &mut s.opts.notification_http_endpoint),
    },
    FlagSpec {
        name: "http-client-connect-timeout",
        usage: "timeout for HTTP connect",
        setter: Setter::Duration(|s| &mut s.opts.http_client_connect_timeout),
    },
    FlagSpec {
        name: "http-client-request-timeout",
        usage: "timeout for HTTP request",
        setter: Setter::Duration(|s| &mut s.opts.http_client_request_timeout),
    },
    FlagSpec {
        name: "http-client-tls-insecure-skip-verify",
        usage: "configure the HTTP client to skip verification of TLS certificates",
        setter: Setter::Bool(|s| &mut s.opts.http_client_tls_insecure_skip_verify),
    },
    FlagSpec {
        name: "http-client-tls-root-ca-file",
        usage: "path to CA file for the HTTP client",
        setter: Setter::Str(|s| &mut s.opts.http_client_tls_root_ca_file),
    },
    FlagSpec {
        name: "http-client-tls-cert",
        usage: "path to certificate file for the HTTP client",
        setter: Setter::Str(|s| &mut s.opts.http_client_tls_cert),
    },
    FlagSpec {
        name: "http-client-tls-key",
        usage: "path to key file for the HTTP client",
        setter: Setter::Str(|s| &mut s.opts.http_client_tls_key),
    },
    FlagSpec {
        name: "allow-config-from-cidr",
        usage: "A CIDR from which to allow HTTP requests to the /config endpoint",
        setter: Setter::Str(|s| &mut s.opts.allow_config_from_cidr),
    },
    FlagSpec {
        name: "acl-http-header",
        usage: "HTTP header to check for authenticated admin users",
        setter: Setter::Str(|s| &mut s.opts.acl_http_header),
    },
    FlagSpec {
        name: "admin-user",
        usage: "admin user (may be given multiple times; if specified, only these users will be able to perform privileged actions)",
        setter: Setter::List(|s| &mut s.opts.admin_users),
    },
    FlagSpec {
        name: "lookupd-http-address",
        usage: "lookupd HTTP address (may be given multiple times)",
        setter: Setter::List(|s| &mut s.opts.nsqlookupd_http_addresses),
    },
    FlagSpec {
        name: "nsqd-http-address",
        usage: "nsqd HTTP address (may be given multiple times)",
        setter: Setter::List(|s| &mut s.opts.nsqd_http_addresses),
    },
];

impl TableFlag for FlagSpec {
    fn name(&self) -> &str {
        self.name
    }

    fn is_bool(&self) -> bool {
        matches!(self.setter, Setter::Bool(_))
    }
}

impl FlagSpec {
    /// The flag's config-file key (Go's `cfg` name), or `None` for `--config` and `--version`.
    fn config_key(&self) -> Option<String> {
        match self.name {
            "config" | "version" => None,
            "admin-user" => Some("admin_users".to_owned()),
            "lookupd-http-address" => Some("nsqlookupd_http_addresses".to_owned()),
            "nsqd-http-address" => Some("nsqd_http_addresses".to_owned()),
            name => Some(config_key(name)),
        }
    }

    fn set_from_config(&self, state: &mut ParseState, value: &TomlValue) -> Result<(), String> {
        match self.setter {
            Setter::Bool(field) => *field(state) = value_bool(value)?,
            Setter::Str(field) => *field(state) = value_string(value)?,
            Setter::Duration(field) => *field(state) = value_duration(value)?,
            Setter::List(field) => *field(state) = value_strings(value)?,
            Setter::LogLevel => {
                let text = value_text(value)?;
                if !is_log_level(&text) {
                    return Err(format!(
                        "invalid log level '{text}' (debug, info, warn, error, fatal)"
                    ));
                }
                state.opts.log_level = text.to_ascii_lowercase();
            }
        }
        Ok(())
    }

    fn set(&self, state: &mut ParseState, value: &str) -> Result<(), CliError> {
        let invalid = |reason: &str| CliError::InvalidValue {
            flag: self.name.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        match self.setter {
            Setter::Bool(field) => {
                *field(state) = parse_go_bool(value).ok_or_else(|| invalid(PARSE_ERROR))?;
            }
            Setter::Str(field) => *field(state) = value.to_owned(),
            Setter::Duration(field) => {
                *field(state) = duration_flag_value(value).map_err(invalid)?;
            }
            Setter::List(field) => field(state).push(value.to_owned()),
            Setter::LogLevel => {
                if !is_log_level(value) {
                    return Err(invalid(&format!(
                        "invalid log level '{value}' (debug, info, warn, error, fatal)"
                    )));
                }
                state.opts.log_level = value.to_ascii_lowercase();
            }
        }
        Ok(())
    }
}

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
mod tests {
    use super::*;

    fn run(list: &[&str]) -> Options {
        match parse_args(list.iter().map(|s| (*s).to_owned())) {
            Ok(CliAction::Run(opts)) => opts,
            other => panic!("{list:?} gave {other:?}"),
        }
    }

    #[test]
    fn defaults_are_gos() {
        let o = run(&[]);
        assert_eq!(o.http_address, "0.0.0.0:4171");
        assert_eq!(o.base_path, "/");
        assert_eq!(o.log_prefix, "[nsqadmin] ");
        assert_eq!(o.acl_http_header, "X-Forwarded-User");
        assert_eq!(o.allow_config_from_cidr, "127.0.0.1/8");
        assert_eq!(o.statsd_prefix, "nsq.%s");
        assert_eq!(o.statsd_counter_format, "stats.counters.%s.count");
        assert_eq!(o.statsd_gauge_format, "stats.gauges.%s");
        assert_eq!(o.statsd_interval, Duration::from_secs(60));
        assert_eq!(o.http_client_connect_timeout, Duration::from_secs(2));
        assert_eq!(o.http_client_request_timeout, Duration::from_secs(5));
    }

    #[test]
    fn repeatable_flags_and_values() {
        let o = run(&[
            "--lookupd-http-address=a:1",
            "-lookupd-http-address",
            "b:2",
            "--nsqd-http-address=c:3",
            "--admin-user=alice",
            "--proxy-graphite",
            "--statsd-interval=10s",
            "--log-level=WARN",
        ]);
        assert_eq!(o.nsqlookupd_http_addresses, ["a:1", "b:2"]);
        assert_eq!(o.nsqd_http_addresses, ["c:3"]);
        assert_eq!(o.admin_users, ["alice"]);
        assert!(o.proxy_graphite);
        assert_eq!(o.statsd_interval, Duration::from_secs(10));
        assert_eq!(o.log_level, "warn");
        assert_eq!(
            parse_args(["--version".to_owned()]),
            Ok(CliAction::PrintVersion)
        );
        assert_eq!(
            parse_args(["--nope".to_owned()]).map_err(|e| e.to_string()),
            Err("flag provided but not defined: -nope".to_owned())
        );
    }

    #[test]
    fn config_file_keys_use_cfg_names() {
        let dir = std::env::temp_dir().join(format!("nsqadmin-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.cfg");
        std::fs::write(
            &path,
            "nsqlookupd_http_addresses = [\"x:1\"]\nadmin_users = [\"bob\"]\nbase_path = \"/admin\"\n",
        )
        .unwrap();
        let cfg = format!("--config={}", path.display());
        let o = run(&[&cfg, "--base-path=/other"]);
        assert_eq!(o.nsqlookupd_http_addresses, ["x:1"]);
        assert_eq!(o.admin_users, ["bob"]);
        assert_eq!(o.base_path, "/other");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
