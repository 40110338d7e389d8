//! The `--config FILE` side of Go's daemons: a TOML file whose keys are the flag names with `-` turned into
//! `_` (give or take a few renames each daemon lists), resolved as Go's `mreiferson/go-options` does: a flag
//! given on the command line wins, then the file's key, then the default.
//!
//! Each daemon keeps its own table and its own field setters; this module loads the file, walks its keys
//! against the table ([`ConfigFile::resolve`]), and turns TOML values into the Go types the flags hold
//! (`value_*`), so that both daemons read files the same way and report problems with the same wording.
//!
//! One deliberate difference from Go: Go ignores keys it does not know, which turns a typo into a setting
//! that silently does nothing. Here an unknown key, like a bad value, stops the daemon with a message that
//! names the key.

use std::fmt;
use std::time::Duration;

pub use toml::Value as TomlValue;

use crate::{duration_flag_value, parse_go_bool, parse_go_int, PARSE_ERROR};

/// The config-file key of a flag by Go's default rule: the flag name with every `-` turned into `_`.
pub fn config_key(flag: &str) -> String {
    flag.replace('-', "_")
}

/// A config file that has been read and parsed as TOML, not yet applied to any options.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: String,
    table: toml::Table,
}

/// Why a config file could not be used. `Display` is `failed to load config file <path> - <problem>`, the
/// shape of Go's fatal message for a file it cannot load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The path as given to `--config`.
    pub path: String,
    /// What is wrong with it.
    pub problem: ConfigProblem,
}

/// What is wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigProblem {
    /// The file could not be read; the text is the operating system's reason.
    Unreadable(String),
    /// The file is not valid TOML; the text is the parser's reason, with its line and column.
    Syntax(String),
    /// A key that names no option of this daemon.
    UnknownKey(String),
    /// A key whose value the option does not accept.
    InvalidValue {
        /// The key.
        key: String,
        /// The value as written in TOML.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to load config file {} - ", self.path)?;
        match &self.problem {
            ConfigProblem::Unreadable(reason) => write!(f, "cannot read it: {reason}"),
            ConfigProblem::Syntax(reason) => write!(f, "invalid TOML: {reason}"),
            ConfigProblem::UnknownKey(key) => write!(f, "unknown key {key:?}"),
            ConfigProblem::InvalidValue { key, value, reason } => {
                write!(f, "invalid value {value} for key {key:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigFile {
    /// Reads and parses the file at `path`.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            problem: ConfigProblem::Unreadable(e.to_string()),
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the contents of the file at `path` (the path only goes into error messages).
    pub fn parse(path: &str, text: &str) -> Result<Self, ConfigError> {
        let table = text.parse::<toml::Table>().map_err(|e| ConfigError {
            path: path.to_owned(),
            // The parser's message spans several lines with a source excerpt; one line reads better in a log.
            problem: ConfigProblem::Syntax(
                e.to_string()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && *l != "|")
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        })?;
        Ok(ConfigFile {
            path: path.to_owned(),
            table,
        })
    }

    /// The path the file was loaded from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Applies the file to a daemon's options, key by key in sorted order.
    ///
    /// `key` gives each table line's config key (`None` for a flag that has no key, such as `--config`
    /// itself); a key of the file that matches no line is an error. `on_command_line` says whether the flag
    /// was given on the command line: then the file's key is skipped, because the flag wins. `set` stores a
    /// value or returns why it cannot, which becomes an error naming the key.
    pub fn resolve<F, K, C, S>(
        &self,
        flags: &[F],
        key: K,
        on_command_line: C,
        mut set: S,
    ) -> Result<(), ConfigError>
    where
        K: Fn(&F) -> Option<String>,
        C: Fn(&F) -> bool,
        S: FnMut(&F, &TomlValue) -> Result<(), String>,
    {
        for (name, value) in &self.table {
            let flag = flags
                .iter()
                .find(|f| key(f).as_deref() == Some(name.as_str()))
                .ok_or_else(|| self.error(ConfigProblem::UnknownKey(name.clone())))?;
            if on_command_line(flag) {
                continue;
            }
            set(flag, value).map_err(|reason| {
                self.error(ConfigProblem::InvalidValue {
                    key: name.clone(),
                    value: value.to_string(),
                    reason,
                })
            })?;
        }
        Ok(())
    }

    fn error(&self, problem: ConfigProblem) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            problem,
        }
    }
}

/// A daemon's flag table line, with what [`parse_layered`] needs to apply a command line over a config file.
pub trait LayeredFlag: crate::TableFlag {
    /// What the flags are parsed into (the options and whatever else the command line carries).
    type State: Default;
    /// The daemon's command-line error.
    type Error: From<crate::ArgError> + From<ConfigError>;
    /// Stores a command-line value.
    fn apply(&self, state: &mut Self::State, value: &str) -> Result<(), Self::Error>;
    /// The flag's config-file key, or `None` when the file cannot set it (`--config`, `--version`).
    fn key(&self) -> Option<String>;
    /// Stores a config-file value, or says why it cannot.
    fn apply_config(&self, state: &mut Self::State, value: &TomlValue) -> Result<(), String>;
}

/// Parses a daemon's command line over its `--config` file, with go-options precedence: the defaults, then
/// every key of the file whose flag is not on the command line, then the command line's flags again in their
/// order (replaying them, rather than only skipping the file's keys, keeps repeatable flags exactly as the
/// command line gave them).
///
/// Returns `None` for `-h`/`--help`. The file is not read when `skip_config` says so for the walked state
/// (`--version` wins over a broken file, as in Go) or when `config_path` is empty.
pub fn parse_layered<I, F>(
    args: I,
    table: &[F],
    skip_config: impl Fn(&F::State) -> bool,
    config_path: impl Fn(&F::State) -> &str,
) -> Result<Option<F::State>, F::Error>
where
    I: IntoIterator<Item = String>,
    F: LayeredFlag,
{
    let mut state = F::State::default();
    let mut given: Vec<(String, String)> = Vec::new();
    let walked = crate::walk_table(args, table, |flag: &F, value| {
        flag.apply(&mut state, value)?;
        given.push((flag.name().to_owned(), value.to_owned()));
        Ok::<(), F::Error>(())
    })?;
    if walked == crate::Walked::Help {
        return Ok(None);
    }
    if skip_config(&state) || config_path(&state).is_empty() {
        return Ok(Some(state));
    }
    let file = ConfigFile::load(config_path(&state))?;
    let mut merged = F::State::default();
    file.resolve(
        table,
        LayeredFlag::key,
        |flag| given.iter().any(|(name, _)| name == flag.name()),
        |flag, value| flag.apply_config(&mut merged, value),
    )?;
    for (name, value) in &given {
        if let Some(flag) = table.iter().find(|f| f.name() == name) {
            flag.apply(&mut merged, value)?;
        }
    }
    Ok(Some(merged))
}

/// A boolean option: a TOML boolean, or a string in Go's `strconv.ParseBool` spellings.
pub fn value_bool(value: &TomlValue) -> Result<bool, String> {
    match value {
        TomlValue::Boolean(b) => Ok(*b),
        TomlValue::String(s) => parse_go_bool(s).ok_or_else(|| PARSE_ERROR.to_owned()),
        _ => Err("expected a boolean".to_owned()),
    }
}

/// An integer option: a TOML integer, or a string in the flag's syntax (Go's `strconv.ParseInt(s, 0, 64)`).
pub fn value_int(value: &TomlValue) -> Result<i64, String> {
    match value {
        TomlValue::Integer(n) => Ok(*n),
        TomlValue::String(s) => parse_go_int(s).map_err(str::to_owned),
        _ => Err("expected an integer".to_owned()),
    }
}

/// A string option: only a TOML string (Go would format any other value into text nobody meant).
pub fn value_string(value: &TomlValue) -> Result<String, String> {
    match value {
        TomlValue::String(s) => Ok(s.clone()),
        _ => Err("expected a string".to_owned()),
    }
}

/// A repeatable string option: an array of strings, or one string that is split at commas as go-options
/// splits it (unlike the flag, whose every occurrence is one whole element).
pub fn value_strings(value: &TomlValue) -> Result<Vec<String>, String> {
    match value {
        TomlValue::String(s) => Ok(s.split(',').map(str::to_owned).collect()),
        TomlValue::Array(items) => items
            .iter()
            .map(|item| match item {
                TomlValue::String(s) => Ok(s.clone()),
                _ => Err("expected an array of strings".to_owned()),
            })
            .collect(),
        _ => Err("expected an array of strings".to_owned()),
    }
}

/// A duration option: a string in Go's `time.ParseDuration` syntax (`"250ms"`, `"1h"`), or an integer
/// number of milliseconds, which is how go-options reads integers for durations. Negative durations are
/// refused, as for the flag.
pub fn value_duration(value: &TomlValue) -> Result<Duration, String> {
    match value {
        TomlValue::String(s) => duration_flag_value(s).map_err(str::to_owned),
        TomlValue::Integer(ms) => u64::try_from(*ms)
            .map(Duration::from_millis)
            .map_err(|_| "negative durations are not allowed".to_owned()),
        _ => Err("expected a duration such as \"250ms\", or an integer of milliseconds".to_owned()),
    }
}

/// A list of floats: an array of numbers, or one string of comma-separated numbers.
pub fn value_floats(value: &TomlValue) -> Result<Vec<f64>, String> {
    let expected = || "expected an array of numbers".to_owned();
    match value {
        TomlValue::String(s) => s
            .split(',')
            .map(|part| {
                let part = part.trim();
                part.parse::<f64>()
                    .map_err(|_| format!("{part:?} is not a number"))
            })
            .collect(),
        TomlValue::Array(items) => items
            .iter()
            .map(|item| match item {
                TomlValue::Float(f) => Ok(*f),
                // An integer has an exact float for every value a percentile list can sensibly hold.
                TomlValue::Integer(n) => Ok(*n as f64),
                _ => Err(expected()),
            })
            .collect(),
        _ => Err(expected()),
    }
}

/// The text of a scalar, as Go's `fmt.Sprintf("%v", v)` gives it: Go's daemons validate `tls_required`,
/// `tls_min_version` and `log_level` by formatting whatever the file holds and parsing that as the flag would.
pub fn value_text(value: &TomlValue) -> Result<String, String> {
    match value {
        TomlValue::String(s) => Ok(s.clone()),
        TomlValue::Integer(n) => Ok(n.to_string()),
        TomlValue::Float(f) => Ok(f.to_string()),
        TomlValue::Boolean(b) => Ok(b.to_string()),
        _ => Err("expected a string".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of three flags, one of them without a config key.
    const FLAGS: [&str; 3] = ["mem-queue-size", "node-id", "config"];

    fn key(flag: &&str) -> Option<String> {
        match *flag {
            "config" => None,
            "node-id" => Some("id".to_owned()),
            other => Some(config_key(other)),
        }
    }

    fn resolve(text: &str, on_cli: &[&str]) -> Result<Vec<(String, i64)>, String> {
        let file = ConfigFile::parse("test.cfg", text).map_err(|e| e.to_string())?;
        let mut set = Vec::new();
        file.resolve(
            &FLAGS,
            key,
            |f| on_cli.contains(f),
            |f, v| {
                set.push(((*f).to_owned(), value_int(v)?));
                Ok(())
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(set)
    }

    #[test]
    fn keys_map_to_flags_and_command_line_flags_are_skipped() {
        assert_eq!(
            config_key("max-output-buffer-timeout"),
            "max_output_buffer_timeout"
        );
        let set = resolve("mem_queue_size = 5\nid = 7\n", &[]).unwrap();
        assert_eq!(
            set,
            [("node-id".to_owned(), 7), ("mem-queue-size".to_owned(), 5)]
        );
        let set = resolve("mem_queue_size = 5\nid = 7\n", &["node-id"]).unwrap();
        assert_eq!(set, [("mem-queue-size".to_owned(), 5)]);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        assert_eq!(
            resolve("max_foo = 1\n", &[]).unwrap_err(),
            "failed to load config file test.cfg - unknown key \"max_foo\""
        );
        // The flag's own name and a key-less flag are not keys.
        assert!(resolve("node_id = 1\n", &[])
            .unwrap_err()
            .contains("\"node_id\""));
        assert!(resolve("config = \"x\"\n", &[])
            .unwrap_err()
            .contains("unknown key \"config\""));
        assert_eq!(
            resolve("mem_queue_size = \"abc\"\n", &[]).unwrap_err(),
            "failed to load config file test.cfg - invalid value \"abc\" for key \"mem_queue_size\": \
             parse error"
        );
        assert_eq!(
            resolve("mem_queue_size = 1.5\n", &[]).unwrap_err(),
            "failed to load config file test.cfg - invalid value 1.5 for key \"mem_queue_size\": \
             expected an integer"
        );
        let syntax = resolve("mem_queue_size = \n", &[]).unwrap_err();
        assert!(
            syntax.starts_with("failed to load config file test.cfg - invalid TOML: "),
            "{syntax}"
        );
        assert!(!syntax.contains('\n'), "{syntax}");
        let missing = ConfigFile::load("/nonexistent/dir/nsqd.cfg").unwrap_err();
        assert!(
            missing.to_string().starts_with(
                "failed to load config file /nonexistent/dir/nsqd.cfg - cannot read it: "
            ),
            "{missing}"
        );
    }

    fn toml(text: &str) -> TomlValue {
        let table: toml::Table = format!("v = {text}").parse().unwrap();
        table["v"].clone()
    }

    #[test]
    fn value_conversions() {
        assert_eq!(value_bool(&toml("false")), Ok(false));
        assert_eq!(value_bool(&toml("\"T\"")), Ok(true));
        assert!(value_bool(&toml("1")).is_err());
        assert_eq!(value_int(&toml("0x10")), Ok(16));
        assert_eq!(value_int(&toml("\"0x10\"")), Ok(16));
        assert_eq!(value_string(&toml("\"a\"")), Ok("a".to_owned()));
        assert!(value_string(&toml("4150")).is_err());
        assert_eq!(
            value_strings(&toml("[\"a:1\", \"b:2\"]")),
            Ok(vec!["a:1".to_owned(), "b:2".to_owned()])
        );
        assert_eq!(
            value_strings(&toml("\"a:1,b:2\"")),
            Ok(vec!["a:1".to_owned(), "b:2".to_owned()])
        );
        assert!(value_strings(&toml("[1]")).is_err());
        assert_eq!(
            value_duration(&toml("\"1m30s\"")),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(value_duration(&toml("250")), Ok(Duration::from_millis(250)));
        assert_eq!(value_duration(&toml("\"45\"")), Err(PARSE_ERROR.to_owned()));
        assert!(value_duration(&toml("-1")).is_err());
        assert!(value_duration(&toml("\"-1s\"")).is_err());
        assert_eq!(
            value_floats(&toml("[1.0, 0.5, 1]")),
            Ok(vec![1.0, 0.5, 1.0])
        );
        assert_eq!(value_floats(&toml("\"0.9, 0.5\"")), Ok(vec![0.9, 0.5]));
        assert!(value_floats(&toml("[\"x\"]")).is_err());
        assert_eq!(value_text(&toml("false")), Ok("false".to_owned()));
        assert_eq!(value_text(&toml("2")), Ok("2".to_owned()));
        assert!(value_text(&toml("[]")).is_err());
    }
}
