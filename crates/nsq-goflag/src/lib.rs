//! Go's command-line conventions, shared by our daemons so that scripts written for Go's `nsqd` and
//! `nsqlookupd` keep working unchanged.
//!
//! Three parts:
//! - [`walk_args`]: the argument walk of Go's `flag` package (`-f v`, `-f=v`, `--f v`, `--f=v`, boolean flags
//!   complete alone, parsing stops at the first non-flag or `--`, `-h`/`-help` ask for help), with Go's error
//!   wording. Each daemon keeps its own table of flags and only answers "is this a flag, and is it boolean".
//! - Go's value syntax: `strconv.ParseBool`, `strconv.ParseInt(s, 0, 64)` and `time.ParseDuration`, plus
//!   `time.Duration.String` for help texts. They are the part of Go's behaviour with the most corner cases
//!   (octal, underscores, fractional durations, overflow), and they are tested against Go's answers here.
//! - what surrounds each daemon's flag table: the walk over it ([`walk_table`]), [`CliAction`], the help layout
//!   ([`usage_text`]) and the duration flag rule ([`duration_flag_value`]).
//! - `--config FILE`: the TOML file read with go-options' precedence and value rules ([`ConfigFile`]).
//!
//! The only dependency is `toml`, and the only I/O is reading a config file.

mod cli;
mod config;
mod walk;

use std::time::Duration;

pub use cli::{duration_flag_value, usage_text, walk_table, CliAction, HelpEntry, TableFlag};
pub use config::{
    config_key, parse_layered, value_bool, value_duration, value_floats, value_int, value_string,
    value_strings, value_text, ConfigError, ConfigFile, ConfigProblem, LayeredFlag, TomlValue,
};
pub use walk::{walk_args, ArgError, FlagKind, WalkError, Walked};

/// Go's `time.ParseDuration`: a sequence of decimal numbers, each with an optional fraction and a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), with an optional sign in front; `"0"` needs no unit. Negative
/// durations parse in Go but mean nothing for nsqd's options, so they are an error here (`-0s` is zero).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    match go_duration_nanos(s)? {
        (true, n) if n > 0 => Err(format!("time: negative duration {s:?} is not allowed")),
        (_, n) => Ok(Duration::from_nanos(n)),
    }
}

/// The reason Go's `flag` package gives for any value its type cannot parse.
pub const PARSE_ERROR: &str = "parse error";

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, as the `flag` package uses it: an optional sign, then decimal, `0x` hex,
/// `0o` or leading-`0` octal, or `0b` binary, with `_` allowed between digits. The error is Go's reason text.
pub fn parse_go_int(s: &str) -> Result<i64, &'static str> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_go_uint(unsigned)?;
    if negative {
        if magnitude > 1u64 << 63 {
            return Err(RANGE_ERROR);
        }
        Ok(0i64.wrapping_sub_unsigned(magnitude))
    } else {
        i64::try_from(magnitude).map_err(|_| RANGE_ERROR)
    }
}

/// The reason Go's `flag` package gives for an integer that does not fit.
pub const RANGE_ERROR: &str = "value out of range";

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_go_uint(s: &str) -> Result<u64, &'static str> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err(PARSE_ERROR);
    }
    let (base, digits): (u64, &[u8]) = if bytes[0] == b'0' && bytes.len() >= 3 {
        match bytes[1].to_ascii_lowercase() {
            b'b' => (2, &bytes[2..]),
            b'o' => (8, &bytes[2..]),
            b'x' => (16, &bytes[2..]),
            _ => (8, &bytes[1..]),
        }
    } else if bytes[0] == b'0' {
        (8, &bytes[1..])
    } else {
        (10, bytes)
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'z' | b'A'..=b'Z' => u64::from(c.to_ascii_lowercase() - b'a') + 10,
            _ => return Err(PARSE_ERROR),
        };
        if d >= base {
            return Err(PARSE_ERROR);
        }
        n = n
            .checked_mul(base)
            .and_then(|n| n.checked_add(d))
            .ok_or(RANGE_ERROR)?;
    }
    if underscores && !go_underscores_ok(s) {
        return Err(PARSE_ERROR);
    }
    Ok(n)
}

/// Go's rule for `_` in base-prefixed literals: only between digits, or between the base prefix and a digit.
fn go_underscores_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    // What came last: a digit (or base prefix), an underscore, the start, or something else.
    #[derive(PartialEq)]
    enum Saw {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let mut saw = Saw::Start;
    let mut hex = false;
    if bytes.len() >= 2
        && bytes[0] == b'0'
        && matches!(bytes[1].to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        i = 2;
        saw = Saw::Digit;
        hex = bytes[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &bytes[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = Saw::Digit;
        } else if c == b'_' {
            if saw != Saw::Digit {
                return false;
            }
            saw = Saw::Underscore;
        } else if saw == Saw::Underscore {
            return false;
        } else {
            saw = Saw::Other;
        }
    }
    saw != Saw::Underscore
}

/// Go's `time.ParseDuration`, returning the sign and the magnitude in nanoseconds, or Go's error message.
pub fn go_duration_nanos(orig: &str) -> Result<(bool, u64), String> {
    const MAX: u64 = 1 << 63;
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig.as_bytes();
    let mut negative = false;
    if let Some(&c @ (b'-' | b'+')) = s.first() {
        negative = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok((negative, 0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The whole part.
        let int_len = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &s[..int_len] {
            whole = whole
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|&v| v <= MAX)
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        // The fraction: digits past what fits are ignored, as Go does.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            frac_len = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..frac_len] {
                if overflow {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(c - b'0')))
                    .filter(|&v| v <= MAX)
                {
                    Some(v) if frac <= (MAX - 1) / 10 => {
                        frac = v;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            s = &s[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        // The unit runs up to the next digit or dot.
        let unit_len = s
            .iter()
            .take_while(|&&c| c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let unit_bytes = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_bytes {
            b"ns" => 1,
            b"us" => 1_000,
            // U+00B5 (micro sign) and U+03BC (Greek small letter mu).
            b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {:?} in duration {orig:?}",
                    String::from_utf8_lossy(unit_bytes)
                ))
            }
        };
        if whole > MAX / unit {
            return Err(invalid());
        }
        let mut v = whole * unit;
        if frac > 0 {
            // Truncation toward zero is what Go's conversion does.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > MAX {
                return Err(invalid());
            }
        }
        total = total
            .checked_add(v)
            .filter(|&t| t <= MAX)
            .ok_or_else(invalid)?;
    }
    if !negative && total > MAX - 1 {
        return Err(invalid());
    }
    Ok((negative, total))
}

/// Go's `time.Duration.String`, used for defaults in the help text: `1h0m0s`, `1m30s`, `1.5s`, `250ms`, `0s`.
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000_000_000 {
        let (div, digits, unit) = match ns {
            0..1_000 => (1, 0, "ns"),
            1_000..1_000_000 => (1_000, 3, "µs"),
            _ => (1_000_000, 6, "ms"),
        };
        return format!("{}{unit}", with_fraction(ns / div, ns % div, digits));
    }
    let secs = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = with_fraction(s, sub, 9);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `whole.frac` with `frac` written in `digits` places and trailing zeros (and a bare dot) dropped.
fn with_fraction(whole: u128, frac: u128, digits: usize) -> String {
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_integer_syntax() {
        for (s, want) in [
            ("0", Ok(0)),
            ("-0", Ok(0)),
            ("+42", Ok(42)),
            ("-42", Ok(-42)),
            ("010", Ok(8)),
            ("0o17", Ok(15)),
            ("0O17", Ok(15)),
            ("0b101", Ok(5)),
            ("0xFF", Ok(255)),
            ("0x_ff", Ok(255)),
            ("1_000_000", Ok(1_000_000)),
            ("9223372036854775807", Ok(i64::MAX)),
            ("-9223372036854775808", Ok(i64::MIN)),
            ("9223372036854775808", Err(RANGE_ERROR)),
            ("-9223372036854775809", Err(RANGE_ERROR)),
            ("", Err(PARSE_ERROR)),
            ("-", Err(PARSE_ERROR)),
            ("0x", Err(PARSE_ERROR)),
            ("1__0", Err(PARSE_ERROR)),
            ("_1", Err(PARSE_ERROR)),
            ("1_", Err(PARSE_ERROR)),
            ("08", Err(PARSE_ERROR)),
            ("0b2", Err(PARSE_ERROR)),
            ("12a", Err(PARSE_ERROR)),
            (" 1", Err(PARSE_ERROR)),
        ] {
            assert_eq!(parse_go_int(s), want, "{s:?}");
        }
    }

    #[test]
    fn go_durations() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("0s", 0),
            ("-0s", 0),
            ("250ms", 250_000_000),
            ("1h", 3_600_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5s", 1_500_000_000),
            ("1.s", 1_000_000_000),
            (".5s", 500_000_000),
            ("+5s", 5_000_000_000),
            ("3ns", 3),
            ("3us", 3_000),
            ("3µs", 3_000),
            ("3μs", 3_000),
            ("1h1m1s1ms1us1ns", 3_661_001_001_001),
            ("1.0000000001s", 1_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("0.1s", 100_000_000),
            ("2562047h47m16.854775807s", i64::MAX as u64),
        ];
        for &(s, want) in ok {
            assert_eq!(
                parse_go_duration(s),
                Ok(Duration::from_nanos(want)),
                "{s:?}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("", "time: invalid duration \"\""),
            ("-", "time: invalid duration \"-\""),
            ("1", "time: missing unit in duration \"1\""),
            ("1.5", "time: missing unit in duration \"1.5\""),
            ("1d", "time: unknown unit \"d\" in duration \"1d\""),
            ("1sm", "time: unknown unit \"sm\" in duration \"1sm\""),
            ("s", "time: invalid duration \"s\""),
            (".s", "time: invalid duration \".s\""),
            ("1s ", "time: unknown unit \"s \" in duration \"1s \""),
            (
                "2562047h47m16.854775808s",
                "time: invalid duration \"2562047h47m16.854775808s\"",
            ),
            (
                "9223372036854775808ns",
                "time: invalid duration \"9223372036854775808ns\"",
            ),
        ];
        for &(s, want) in bad {
            assert_eq!(parse_go_duration(s), Err(want.to_owned()), "{s:?}");
        }
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("-1ns").is_err());
        // Go accepts exactly one more nanosecond when negative; it is still negative, so still an error here.
        assert_eq!(
            go_duration_nanos("-2562047h47m16.854775808s"),
            Ok((true, 1 << 63))
        );
    }

    #[test]
    fn go_duration_strings() {
        for (d, want) in [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(3), "3ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(25), "25ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(900), "15m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(3661), "1h1m1s"),
        ] {
            assert_eq!(format_go_duration(d), want);
        }
    }
}
