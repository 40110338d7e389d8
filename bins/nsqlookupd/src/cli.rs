//! nsqlookupd's command line, with Go's flag names, defaults and syntax.
//!
//! The argument walk and Go's value syntax come from `nsq-goflag` (shared with nsqd); this module only holds
//! the table of Go nsqlookupd's flags (master 3103474b) and how each value is stored, from the command line
//! or from a `--config` TOML file (keys are the flag names with `-` as `_`; a flag on the command line wins
//! over the file, the file over the default, as with Go's go-options).

use std::time::Duration;

use nsq_goflag::{
    config_key, duration_flag_value, format_go_duration, parse_go_bool, parse_layered, usage_text,
    value_bool, value_duration, value_string, value_text, ArgError, ConfigError, HelpEntry,
    LayeredFlag, TableFlag, TomlValue, PARSE_ERROR,
};

use crate::options::{LogLevel, Options};
use crate::NSQ_VERSION;

/// What the command line asks nsqlookupd to do: run with these options, print `version_line()`, or print
/// the help.
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
    /// A boolean flag given as `-flag=x` with an `x` Go's `strconv.ParseBool` refuses.
    #[error("invalid boolean value {value:?} for -{flag}: {reason}")]
    InvalidBool {
        /// The flag name.
        flag: String,
        /// The value given.
        value: String,
        /// Go's reason.
        reason: String,
    },
    /// The `--config` file is missing, is not TOML, or has a key or value nsqlookupd refuses. Go treats a
    /// file it cannot load as fatal (exit status 1, not the flag package's 2), and so does `main`.
    #[error("{0}")]
    Config(#[from] ConfigError),
}

/// Parses argv (without argv\[0\]) as Go's nsqlookupd does: `-flag value`, `-flag=value`, `--flag value` and
/// `--flag=value`; boolean flags alone or as `-flag=<bool>`; Go durations such as `300s` or `5m`. After
/// parsing, `--version` wins over everything else; then the `--config` file, if any, fills in every option
/// the command line did not give.
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

/// The `--version` line. Go prints `nsqlookupd v1.3.0 (built w/go1.19.8)`; tools match on the first part, so
/// that stays as Go has it and the rest says what this build is.
pub fn version_line() -> String {
    format!(
        "nsqlookupd v{NSQ_VERSION} (built w/rust, nsq-rs {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The `--help` text, laid out as Go's `flag.PrintDefaults`: flags sorted by name, each as `-name type`, then
/// an indented description with the default when it is not the zero value.
pub fn help_text() -> String {
    // Read through the same field accessors the parser uses; the state is only read.
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
                Setter::LogLevel => ("value", Some(defaults.opts.log_level.as_str().to_owned())),
            };
            HelpEntry {
                name: flag.name,
                type_name,
                usage: flag.usage,
                default,
            }
        })
        .collect();
    usage_text("nsqlookupd", entries)
}

/// What the parser fills in: the options, plus `--version`, which is an action rather than an option.
#[derive(Default)]
struct ParseState {
    opts: Options,
    version: bool,
}

/// One flag: its name without dashes, its help line and how its value is stored.
struct FlagSpec {
    name: &'static str,
    usage: &'static str,
    setter: Setter,
}

/// How a flag's value is parsed and stored; each kind points at its field with a plain function.
#[derive(Clone, Copy)]
enum Setter {
    Bool(fn(&mut ParseState) -> &mut bool),
    Str(fn(&mut ParseState) -> &mut String),
    Duration(fn(&mut ParseState) -> &mut Duration),
    LogLevel,
}

/// Every flag of Go's nsqlookupd.
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
        name: "tcp-address",
        usage: "<addr>:<port> the TCP listener (for nsqd) binds to",
        setter: Setter::Str(|s| &mut s.opts.tcp_address),
    },
    FlagSpec {
        name: "http-address",
        usage: "<addr>:<port> the HTTP API listener binds to",
        setter: Setter::Str(|s| &mut s.opts.http_address),
    },
    FlagSpec {
        name: "broadcast-address",
        usage: "address of this lookupd node, as reported to nsqd (the OS hostname unless set)",
        setter: Setter::Str(|s| &mut s.opts.broadcast_address),
    },
    FlagSpec {
        name: "inactive-producer-timeout",
        usage: "how long a producer stays listed after its last ping",
        setter: Setter::Duration(|s| &mut s.opts.inactive_producer_timeout),
    },
    FlagSpec {
        name: "tombstone-lifetime",
        usage: "how long a tombstoned producer stays hidden from /lookup if it stays registered",
        setter: Setter::Duration(|s| &mut s.opts.tombstone_lifetime),
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
    /// The flag's key in a config file: the name with `-` as `_`, or `None` for `--config` and `--version`,
    /// which a file cannot set. `verbose` is a key (Go's shipped example file sets it), without effect.
    fn config_key(&self) -> Option<String> {
        (!matches!(self.name, "config" | "version")).then(|| config_key(self.name))
    }

    /// Stores a config file's value for this flag, or returns why it is refused: strings are read as the
    /// flag reads them, integer durations are milliseconds (go-options' rule).
    fn set_from_config(&self, state: &mut ParseState, value: &TomlValue) -> Result<(), String> {
        match self.setter {
            Setter::Bool(field) => *field(state) = value_bool(value)?,
            Setter::Str(field) => *field(state) = value_string(value)?,
            Setter::Duration(field) => *field(state) = value_duration(value)?,
            Setter::LogLevel => {
                // Go formats the value as text and parses that as a level name.
                let text = value_text(value)?;
                state.opts.log_level = LogLevel::parse(&text).ok_or_else(|| {
                    format!("invalid log level '{text}' (debug, info, warn, error, fatal)")
                })?;
            }
        }
        Ok(())
    }

    /// Parses and stores a flag's value; a boolean flag given alone arrives as `"true"`.
    fn set(&self, state: &mut ParseState, value: &str) -> Result<(), CliError> {
        let invalid = |reason: &str| {
            let (flag, value, reason) = (self.name.to_owned(), value.to_owned(), reason.to_owned());
            if self.is_bool() {
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

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run(list: &[&str]) -> Options {
        match parse_args(args(list)) {
            Ok(CliAction::Run(opts)) => opts,
            other => panic!("{list:?} gave {other:?}"),
        }
    }

    fn err(list: &[&str]) -> String {
        match parse_args(args(list)) {
            Err(e) => e.to_string(),
            other => panic!("{list:?} should fail, gave {other:?}"),
        }
    }

    #[test]
    fn defaults_are_gos() {
        let o = run(&[]);
        assert_eq!(o.tcp_address, "0.0.0.0:4160");
        assert_eq!(o.http_address, "0.0.0.0:4161");
        assert_eq!(o.broadcast_address, crate::options::os_hostname());
        assert_eq!(o.inactive_producer_timeout, Duration::from_secs(300));
        assert_eq!(o.tombstone_lifetime, Duration::from_secs(45));
        assert_eq!(o.log_level, LogLevel::Info);
        assert_eq!(o.log_prefix, "[nsqlookupd] ");
        assert!(o.config_file.is_empty());
    }

    #[test]
    fn every_flag_in_all_four_spellings() {
        type Check = fn(&Options) -> bool;
        let cases: &[(&str, &str, Check)] = &[
            ("tcp-address", "127.0.0.1:1", |o| {
                o.tcp_address == "127.0.0.1:1"
            }),
            ("http-address", ":2", |o| o.http_address == ":2"),
            ("broadcast-address", "10.0.0.1", |o| {
                o.broadcast_address == "10.0.0.1"
            }),
            ("inactive-producer-timeout", "300s", |o| {
                o.inactive_producer_timeout == Duration::from_secs(300)
            }),
            ("inactive-producer-timeout", "5m", |o| {
                o.inactive_producer_timeout == Duration::from_secs(300)
            }),
            ("tombstone-lifetime", "1m30s", |o| {
                o.tombstone_lifetime == Duration::from_secs(90)
            }),
            ("log-level", "WARN", |o| o.log_level == LogLevel::Warn),
            ("log-prefix", "", |o| o.log_prefix.is_empty()),
            (
                "config",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../docs/nsqlookupd.cfg.example"
                ),
                |o| o.config_file.ends_with("/docs/nsqlookupd.cfg.example"),
            ),
        ];
        for (flag, value, check) in cases {
            for argv in [
                vec![format!("-{flag}"), (*value).to_owned()],
                vec![format!("-{flag}={value}")],
                vec![format!("--{flag}"), (*value).to_owned()],
                vec![format!("--{flag}={value}")],
            ] {
                let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
                assert!(check(&run(&refs)), "{argv:?}");
            }
        }
    }

    #[test]
    fn bool_flags_and_version() {
        assert!(run(&["--verbose"]).verbose);
        assert!(run(&["-verbose=t"]).verbose);
        assert!(!run(&["-verbose=0"]).verbose);
        // A boolean never takes the next argument: parsing stops at the positional "false".
        assert_eq!(
            run(&["-verbose", "false", "-tcp-address=x"]).tcp_address,
            "0.0.0.0:4160"
        );
        assert_eq!(
            parse_args(args(&["--version"])),
            Ok(CliAction::PrintVersion)
        );
        assert_eq!(
            parse_args(args(&["--tcp-address=x", "-version=true"])),
            Ok(CliAction::PrintVersion)
        );
        assert!(version_line().starts_with("nsqlookupd v1.3.0 (built w/rust, nsq-rs "));
    }

    #[test]
    fn go_error_messages() {
        assert_eq!(err(&["--nope"]), "flag provided but not defined: -nope");
        assert_eq!(
            err(&["--tcp-address"]),
            "flag needs an argument: -tcp-address"
        );
        assert_eq!(
            err(&["--tombstone-lifetime=45"]),
            "invalid value \"45\" for flag -tombstone-lifetime: parse error"
        );
        assert_eq!(
            err(&["--tombstone-lifetime=-1s"]),
            "invalid value \"-1s\" for flag -tombstone-lifetime: negative durations are not allowed"
        );
        assert_eq!(
            err(&["--verbose=maybe"]),
            "invalid boolean value \"maybe\" for -verbose: parse error"
        );
        assert_eq!(
            err(&["--log-level=loud"]),
            "invalid value \"loud\" for flag -log-level: invalid log level 'loud' (debug, info, warn, error, fatal)"
        );
    }

    #[test]
    fn help_lists_every_flag_with_go_defaults() {
        let CliAction::PrintHelp(text) = parse_args(args(&["-h"])).unwrap() else {
            panic!("no help");
        };
        assert!(text.starts_with("Usage of nsqlookupd:\n"));
        for flag in FLAGS {
            assert!(
                text.contains(&format!("\n  -{}", flag.name)),
                "{}",
                flag.name
            );
        }
        assert!(text.contains("(default 5m0s)"), "{text}");
        assert!(text.contains("(default 45s)"), "{text}");
        assert!(text.contains("(default \"0.0.0.0:4160\")"), "{text}");
        assert!(text.contains("(default \"[nsqlookupd] \")"), "{text}");
        assert!(text.contains("  -log-level value\n"), "{text}");
    }

    /// A config file holding `text` under the system's temporary directory, removed when dropped.
    struct TempConfig(std::path::PathBuf);

    impl TempConfig {
        fn new(text: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "nsqlookupd-cli-test-{}-{n}.cfg",
                std::process::id()
            ));
            std::fs::write(&path, text).unwrap();
            TempConfig(path)
        }

        fn flag(&self) -> String {
            format!("--config={}", self.0.display())
        }
    }

    impl Drop for TempConfig {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn run_with_config(text: &str, flags: &[&str]) -> Options {
        let file = TempConfig::new(text);
        let config = file.flag();
        let mut list = vec![config.as_str()];
        list.extend_from_slice(flags);
        run(&list)
    }

    fn config_err(text: &str) -> String {
        let file = TempConfig::new(text);
        err(&[&file.flag()]).replace(&file.0.display().to_string(), "nsqlookupd.cfg")
    }

    #[test]
    fn config_file_under_the_command_line() {
        let file = "tcp_address = \"127.0.0.1:5160\"\n\
                    tombstone_lifetime = \"90s\"\n\
                    verbose = true\n\
                    log_level = \"warn\"\n";
        let o = run_with_config(file, &[]);
        assert_eq!(o.tcp_address, "127.0.0.1:5160");
        assert_eq!(o.tombstone_lifetime, Duration::from_secs(90));
        assert!(o.verbose);
        assert_eq!(o.log_level, LogLevel::Warn);
        // Untouched keys keep their defaults.
        assert_eq!(o.http_address, "0.0.0.0:4161");
        assert_eq!(o.inactive_producer_timeout, Duration::from_secs(300));
        let o = run_with_config(
            file,
            &[
                "-tcp-address",
                "127.0.0.1:6160",
                "--tombstone-lifetime=1s",
                "--verbose=false",
                "--log-level=info",
            ],
        );
        assert_eq!(o.tcp_address, "127.0.0.1:6160");
        assert_eq!(o.tombstone_lifetime, Duration::from_secs(1));
        assert!(!o.verbose);
        assert_eq!(o.log_level, LogLevel::Info);
        // Integer durations are milliseconds, as go-options reads them.
        assert_eq!(
            run_with_config("inactive_producer_timeout = 2500\n", &[]).inactive_producer_timeout,
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn config_file_errors() {
        assert_eq!(
            config_err("max_foo = 1\n"),
            "failed to load config file nsqlookupd.cfg - unknown key \"max_foo\""
        );
        assert_eq!(
            config_err("tombstone_lifetime = \"abc\"\n"),
            "failed to load config file nsqlookupd.cfg - invalid value \"abc\" for key \
             \"tombstone_lifetime\": parse error"
        );
        assert_eq!(
            config_err("log_level = 2\n"),
            "failed to load config file nsqlookupd.cfg - invalid value 2 for key \"log_level\": \
             invalid log level '2' (debug, info, warn, error, fatal)"
        );
        assert!(config_err("config = \"x\"\n").ends_with("unknown key \"config\""));
        assert!(config_err("tcp_address = [\n").contains(" - invalid TOML: "));
        let missing = parse_args(args(&["--config=/nonexistent/nsqlookupd.cfg"]));
        assert!(matches!(missing, Err(CliError::Config(_))), "{missing:?}");
        assert_eq!(
            parse_args(args(&["--config=/nonexistent/nsqlookupd.cfg", "--version"])),
            Ok(CliAction::PrintVersion)
        );
    }

    #[test]
    fn docs_example_config_loads() {
        let path = format!(
            "{}/../../docs/nsqlookupd.cfg.example",
            env!("CARGO_MANIFEST_DIR")
        );
        let o = run(&[&format!("--config={path}")]);
        let want = Options {
            config_file: path.clone(),
            ..Options::default()
        };
        assert_eq!(o, want);
        let text = std::fs::read_to_string(&path).unwrap();
        for flag in FLAGS {
            if let Some(key) = flag.config_key().filter(|k| k != "verbose") {
                assert!(
                    text.contains(&format!("\n{key} = ")) || text.contains(&format!("# {key} = ")),
                    "{key}"
                );
            }
        }
    }

    #[test]
    fn the_shape_of_gos_shipped_example_loads() {
        // Go's contrib/nsqlookupd.cfg.example sets the deprecated `verbose` and 300s as a string.
        let o = run_with_config(
            "verbose = false\n\
             tcp_address = \"0.0.0.0:4160\"\n\
             http_address = \"0.0.0.0:4161\"\n\
             inactive_producer_timeout = \"300s\"\n\
             tombstone_lifetime = \"45s\"\n",
            &[],
        );
        assert!(o.config_file.ends_with(".cfg"), "{}", o.config_file);
        let want = Options {
            config_file: o.config_file.clone(),
            ..Options::default()
        };
        assert_eq!(o, want);
    }
}
