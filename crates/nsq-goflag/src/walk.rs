//! The argument walk of Go's `flag.FlagSet.Parse`, independent of any flag table.
//!
//! The caller says which names are flags and whether each is boolean; this module splits `argv` into
//! `(name, value)` pairs exactly as Go does and reports Go's messages for malformed arguments.

use std::fmt;

/// What kind of value a defined flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// A boolean flag: complete alone (meaning `true`), or `-flag=<bool>`; it never takes the next argument.
    Bool,
    /// Any other flag: `-flag value` or `-flag=value`.
    Value,
}

/// How the walk ended when no argument was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walked {
    /// Every flag was handed to the setter; parsing stopped at the end, at `--` or at the first non-flag.
    Done,
    /// `-h`, `-help`, `--h` or `--help` was given (and is not a defined flag): print the help and exit.
    Help,
}

/// A malformed command line, with the message Go's `flag` package prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// A flag the program does not define.
    UndefinedFlag(String),
    /// An argument such as `---x` or `-=x`.
    BadSyntax(String),
    /// A non-boolean flag at the end of the arguments with no value.
    MissingValue(String),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::UndefinedFlag(name) => write!(f, "flag provided but not defined: -{name}"),
            ArgError::BadSyntax(arg) => write!(f, "bad flag syntax: {arg}"),
            ArgError::MissingValue(name) => write!(f, "flag needs an argument: -{name}"),
        }
    }
}

impl std::error::Error for ArgError {}

/// Why [`walk_args`] stopped early: a malformed argument, or the setter refused a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkError<E> {
    /// The argument itself was malformed.
    Arg(ArgError),
    /// The setter's error for a value it could not take.
    Value(E),
}

/// Walks `args` (without argv\[0\]) as Go's `flag` package does.
///
/// `kind` answers whether a name (without dashes) is a defined flag and which kind; `set` receives each flag
/// with its value, in order (`"true"` for a boolean flag given alone). Parsing stops at the first argument that
/// is not a flag (a lone `-` counts as one) or after `--`; whatever follows is ignored, as Go's daemons ignore
/// it.
pub fn walk_args<I, K, S, E>(args: I, kind: K, mut set: S) -> Result<Walked, WalkError<E>>
where
    I: IntoIterator<Item = String>,
    K: Fn(&str) -> Option<FlagKind>,
    S: FnMut(&str, &str) -> Result<(), E>,
{
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(stripped) = arg.strip_prefix('-') else {
            break;
        };
        if stripped.is_empty() {
            break;
        }
        let name_and_value = match stripped.strip_prefix('-') {
            Some("") => break,
            Some(rest) => rest,
            None => stripped,
        };
        if name_and_value.starts_with(['-', '=']) {
            return Err(WalkError::Arg(ArgError::BadSyntax(arg)));
        }
        let (name, inline_value) = match name_and_value.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (name_and_value, None),
        };
        let Some(flag_kind) = kind(name) else {
            if name == "h" || name == "help" {
                return Ok(Walked::Help);
            }
            return Err(WalkError::Arg(ArgError::UndefinedFlag(name.to_owned())));
        };
        let value = match (flag_kind, inline_value) {
            (FlagKind::Bool, value) => value.unwrap_or("true").to_owned(),
            (FlagKind::Value, Some(value)) => value.to_owned(),
            (FlagKind::Value, None) => args
                .next()
                .ok_or_else(|| WalkError::Arg(ArgError::MissingValue(name.to_owned())))?,
        };
        set(name, &value).map_err(WalkError::Value)?;
    }
    Ok(Walked::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(name: &str) -> Option<FlagKind> {
        match name {
            "v" | "verbose" => Some(FlagKind::Bool),
            "addr" => Some(FlagKind::Value),
            _ => None,
        }
    }

    type Outcome = (Result<Walked, WalkError<String>>, Vec<(String, String)>);

    fn walk(list: &[&str]) -> Outcome {
        let mut seen = Vec::new();
        let res = walk_args(list.iter().map(|s| (*s).to_owned()), kinds, |n, v| {
            if v == "bad" {
                return Err(format!("refused {n}"));
            }
            seen.push((n.to_owned(), v.to_owned()));
            Ok(())
        });
        (res, seen)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn all_four_spellings_and_bool_forms() {
        for argv in [
            &["-addr", "x"][..],
            &["-addr=x"],
            &["--addr", "x"],
            &["--addr=x"],
        ] {
            let (res, seen) = walk(argv);
            assert_eq!(res, Ok(Walked::Done));
            assert_eq!(seen, pairs(&[("addr", "x")]), "{argv:?}");
        }
        let (_, seen) = walk(&["-v", "--verbose=false", "-addr", "-v"]);
        assert_eq!(
            seen,
            pairs(&[("v", "true"), ("verbose", "false"), ("addr", "-v")])
        );
    }

    #[test]
    fn stops_at_positionals_and_double_dash() {
        for argv in [
            &["-v", "pos", "-addr", "x"][..],
            &["-v", "--", "-addr", "x"],
            &["-v", "-", "-addr", "x"],
            // A boolean never takes the next argument, so "false" is a positional.
            &["-v", "false", "-addr", "x"],
        ] {
            let (res, seen) = walk(argv);
            assert_eq!(res, Ok(Walked::Done));
            assert_eq!(seen, pairs(&[("v", "true")]), "{argv:?}");
        }
    }

    #[test]
    fn go_error_messages() {
        let msg = |argv: &[&str]| match walk(argv).0 {
            Err(WalkError::Arg(e)) => e.to_string(),
            other => panic!("{argv:?} gave {other:?}"),
        };
        assert_eq!(msg(&["-nope"]), "flag provided but not defined: -nope");
        assert_eq!(msg(&["---addr"]), "bad flag syntax: ---addr");
        assert_eq!(msg(&["-=x"]), "bad flag syntax: -=x");
        assert_eq!(msg(&["--addr"]), "flag needs an argument: -addr");
        assert_eq!(
            walk(&["-addr=bad"]).0,
            Err(WalkError::Value("refused addr".to_owned()))
        );
    }

    #[test]
    fn help_flags() {
        for h in ["-h", "--h", "-help", "--help"] {
            assert_eq!(walk(&["-v", h, "-nope"]).0, Ok(Walked::Help), "{h}");
        }
    }
}
