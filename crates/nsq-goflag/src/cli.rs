//! The parts of a daemon's command line that sit around its flag table and are the same for nsqd and
//! nsqlookupd: the walk over a table ([`walk_table`]), what the command line asks for ([`CliAction`]), Go's
//! `flag.PrintDefaults` layout of the help text ([`usage_text`]) and the rule for duration values
//! ([`duration_flag_value`]).
//!
//! Each daemon keeps its own table, option struct and error type; these pieces only take what a table line
//! already knows, so both help texts and both duration checks stay identical to Go's by construction.

use std::fmt::Write as _;
use std::time::Duration;

use crate::{go_duration_nanos, walk_args, ArgError, FlagKind, WalkError, Walked, PARSE_ERROR};

/// One line of a daemon's flag table, as far as the walk needs to know it.
pub trait TableFlag {
    /// The name without dashes.
    fn name(&self) -> &str;
    /// Whether Go treats the flag as boolean (complete alone, never taking the next argument).
    fn is_bool(&self) -> bool;
}

/// Walks `args` (without argv\[0\]) with [`walk_args`] over `table`: `set` receives each defined flag with its
/// value; a name not in the table is Go's "flag provided but not defined", and every malformed argument
/// becomes the daemon's error through `From<ArgError>`.
pub fn walk_table<I, F, E, S>(args: I, table: &[F], mut set: S) -> Result<Walked, E>
where
    I: IntoIterator<Item = String>,
    F: TableFlag,
    E: From<ArgError>,
    S: FnMut(&F, &str) -> Result<(), E>,
{
    let find = |name: &str| table.iter().find(|f| f.name() == name);
    let walked = walk_args(
        args,
        |name| {
            let flag = find(name)?;
            Some(if flag.is_bool() {
                FlagKind::Bool
            } else {
                FlagKind::Value
            })
        },
        |name, value| match find(name) {
            Some(flag) => set(flag, value),
            None => Err(E::from(ArgError::UndefinedFlag(name.to_owned()))),
        },
    );
    match walked {
        Ok(walked) => Ok(walked),
        Err(WalkError::Arg(e)) => Err(e.into()),
        Err(WalkError::Value(e)) => Err(e),
    }
}

/// What a daemon's command line asks it to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliAction<O> {
    /// Start with these options. The caller still has to check what the daemon does not support.
    Run(O),
    /// `--version`: print the daemon's version line and exit successfully.
    PrintVersion,
    /// `-h`/`--help`: print this text (to stderr, as Go does) and exit successfully.
    PrintHelp(String),
}

/// One flag as the help text shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpEntry {
    /// The name without dashes.
    pub name: &'static str,
    /// The type word after the name (`string`, `int`, `duration`, `value`); empty for a boolean flag.
    pub type_name: &'static str,
    /// The description.
    pub usage: &'static str,
    /// The default as Go shows it, or `None` for the type's zero value, which Go leaves out.
    pub default: Option<String>,
}

/// The `--help` text of `program`, laid out as Go's `flag.PrintDefaults`: flags sorted by name, each as
/// `-name type`, then an indented description with the default when there is one.
pub fn usage_text(program: &str, mut entries: Vec<HelpEntry>) -> String {
    entries.sort_by_key(|e| e.name);
    let mut out = format!("Usage of {program}:\n");
    for entry in entries {
        if entry.type_name.is_empty() {
            let _ = writeln!(out, "  -{}", entry.name);
        } else {
            let _ = writeln!(out, "  -{} {}", entry.name, entry.type_name);
        }
        let _ = write!(out, "    \t{}", entry.usage);
        if let Some(default) = entry.default {
            let _ = write!(out, " (default {default})");
        }
        out.push('\n');
    }
    out
}

/// A duration flag's value in Go's syntax; the error is the reason Go's `flag` package (or the daemon, for a
/// negative duration) prints after `invalid value ... for flag -name:`.
pub fn duration_flag_value(value: &str) -> Result<Duration, &'static str> {
    match go_duration_nanos(value) {
        Err(_) => Err(PARSE_ERROR),
        Ok((true, n)) if n > 0 => Err("negative durations are not allowed"),
        Ok((_, n)) => Ok(Duration::from_nanos(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-line table: a boolean and a value flag.
    struct Flag(&'static str, bool);

    impl TableFlag for Flag {
        fn name(&self) -> &str {
            self.0
        }

        fn is_bool(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn the_table_decides_what_is_a_flag() {
        let table = [Flag("v", true), Flag("addr", false)];
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut seen = Vec::new();
        let walked = walk_table(args(&["-v", "--addr", "x"]), &table, |f, v| {
            seen.push((f.0, v.to_owned()));
            Ok::<(), ArgError>(())
        });
        assert_eq!(walked, Ok(Walked::Done));
        assert_eq!(seen, [("v", "true".to_owned()), ("addr", "x".to_owned())]);
        let undefined = walk_table(args(&["-nope"]), &table, |_, _| Ok::<(), ArgError>(()));
        assert_eq!(undefined, Err(ArgError::UndefinedFlag("nope".to_owned())));
        let help = walk_table(args(&["-h"]), &table, |_, _| Ok::<(), ArgError>(()));
        assert_eq!(help, Ok(Walked::Help));
    }

    fn entry(name: &'static str, type_name: &'static str, default: Option<&str>) -> HelpEntry {
        HelpEntry {
            name,
            type_name,
            usage: "what it does",
            default: default.map(str::to_owned),
        }
    }

    #[test]
    fn help_is_sorted_and_laid_out_as_go() {
        let text = usage_text(
            "nsqd",
            vec![
                entry("verbose", "", None),
                entry("http-address", "string", Some("\"0.0.0.0:4151\"")),
            ],
        );
        assert_eq!(
            text,
            "Usage of nsqd:\n  -http-address string\n    \twhat it does (default \"0.0.0.0:4151\")\n  \
             -verbose\n    \twhat it does\n"
        );
    }

    #[test]
    fn durations_refuse_negatives_and_garbage() {
        assert_eq!(duration_flag_value("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration_flag_value("-0s"), Ok(Duration::ZERO));
        assert_eq!(duration_flag_value("45"), Err(PARSE_ERROR));
        assert_eq!(
            duration_flag_value("-1s"),
            Err("negative durations are not allowed")
        );
    }
}
