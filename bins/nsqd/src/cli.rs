//! nsqd's command line, parsed the way Go's `flag` package parses it.
//!
//! Scripts, init files and container specs written for Go's nsqd pass flags as `-flag value`, `--flag=value`
//! and so on, and expect Go's error wording when they get one wrong. A derive-based parser would reject or
//! reinterpret some of those spellings, so this module implements Go's rules directly over a table of flags:
//! adding one of Go's remaining flags is one `FlagSpec` line.

use std::fmt::Write as _;
use std::time::Duration;

use crate::options::{LogLevel, Options};

/// What the command line asks nsqd to do.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once at start-up and moved straight into the daemon; a Box would only add noise for callers"
)]
pub enum CliAction {
    /// Start the daemon with these options.
    Run(Options),
    /// `--version`: print `version_line()` and exit successfully.
    PrintVersion,
    /// `-h`/`--help`: print this text (as Go does, to stderr) and exit successfully.
    PrintHelp(String),
}

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
    /// A boolean flag given as `-flag=x` with an `x` that is not a boolean.
    #[error("invalid boolean value {value:?} for -{flag}: parse error")]
    InvalidBool { flag: String, value: String },
    /// One element of a percentile list is not a number (Go exits with this message while parsing).
    #[error("Could not parse: {0}")]
    BadPercentile(String),
    /// `--node-id` outside what fits in a message ID.
    #[error("--node-id must be [0,1024)")]
    NodeIdOutOfRange(i64),
    /// A latency percentile outside (0, 1].
    #[error("invalid E2E processing latency percentile: {0}")]
    PercentileOutOfRange(f64),
}

/// Parses argv (without argv[0]) the way Go's `flag` package does.
///
/// Each flag is accepted as `-flag value`, `-flag=value`, `--flag value` and `--flag=value`. Boolean flags are
/// set by `-flag` alone or `-flag=<bool>` (Go's `strconv.ParseBool` spellings), never `-flag false`. Parsing
/// stops at the first non-flag argument or after `--`; Go's nsqd ignores whatever follows, and so do we.
/// `-h`, `-help` and their double-dash forms ask for help. After parsing, `--version` wins; otherwise the
/// options are checked as Go's nsqd checks them at start-up.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<CliAction, CliError> {
    let mut state = ParseState {
        opts: Options::default(),
        version: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(stripped) = arg.strip_prefix('-') else {
            break;
        };
        if stripped.is_empty() {
            // A lone "-" is a positional argument to Go.
            break;
        }
        let name_and_value = match stripped.strip_prefix('-') {
            Some("") => break,
            Some(rest) => rest,
            None => stripped,
        };
        if name_and_value.starts_with(['-', '=']) {
            return Err(CliError::BadSyntax(arg));
        }
        let (name, inline_value) = match name_and_value.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (name_and_value, None),
        };
        let Some(spec) = FLAGS.iter().find(|f| f.name == name) else {
            if name == "h" || name == "help" {
                return Ok(CliAction::PrintHelp(help_text()));
            }
            return Err(CliError::UndefinedFlag(name.to_owned()));
        };
        if let Setter::Bool(set) = spec.setter {
            let value = match inline_value {
                None => true,
                Some(v) => parse_go_bool(v).ok_or_else(|| CliError::InvalidBool {
                    flag: name.to_owned(),
                    value: v.to_owned(),
                })?,
            };
            *set(&mut state) = value;
            continue;
        }
        let value = match inline_value {
            Some(v) => v.to_owned(),
            None => args
                .next()
                .ok_or_else(|| CliError::MissingValue(name.to_owned()))?,
        };
        spec.set(&mut state, &value)?;
    }
    if state.version {
        return Ok(CliAction::PrintVersion);
    }
    validate(&state.opts)?;
    Ok(CliAction::Run(state.opts))
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers, each with an optional fraction and a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), with an optional sign in front; `"0"` needs no unit. Negative
/// durations parse in Go but mean nothing for nsqd's options, so they are an error here (`-0s` is zero).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    match go_duration_nanos(s)? {
        (true, n) if n > 0 => Err(format!("time: negative duration {s:?} is not allowed")),
        (_, n) => Ok(Duration::from_nanos(n)),
    }
}

/// The `--version` line. Go prints `nsqd v1.3.0 (built w/go1.19.8)`; tools match on the first part, so that
/// stays as Go has it and the rest says what this build is.
pub fn version_line() -> String {
    format!(
        "nsqd v{GO_NSQ_VERSION} (built w/rust, nsq-rs {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The `--help` text, laid out as Go's `flag.PrintDefaults`: flags sorted by name, each as `-name type`
/// followed by an indented description and its default when that is not the type's zero value.
pub fn help_text() -> String {
    let mut defaults = ParseState {
        opts: Options::default(),
        version: false,
    };
    let mut flags: Vec<&FlagSpec> = FLAGS.iter().collect();
    flags.sort_by_key(|f| f.name);
    let mut out = String::from("Usage of nsqd:\n");
    for flag in flags {
        let type_name = flag.setter.type_name();
        if type_name.is_empty() {
            let _ = writeln!(out, "  -{}", flag.name);
        } else {
            let _ = writeln!(out, "  -{} {type_name}", flag.name);
        }
        let _ = write!(out, "    \t{}", flag.usage);
        if let Some(default) = flag.setter.default_text(&mut defaults) {
            let _ = write!(out, " (default {default})");
        }
        out.push('\n');
    }
    out
}

/// The NSQ release whose behaviour this build reproduces.
const GO_NSQ_VERSION: &str = "1.3.0";

/// What the parser fills in: the options, plus flags that are actions rather than options.
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
    Int(fn(&mut ParseState) -> &mut i64),
    Duration(fn(&mut ParseState) -> &mut Duration),
    LogLevel,
    Percentiles,
}

/// Every flag nsqd accepts. Go's flags that are not here yet are rejected as undefined.
const FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "version",
        usage: "print the version and exit",
        setter: Setter::Bool(|s| &mut s.version),
    },
    FlagSpec {
        name: "log-level",
        usage: "lowest level logged: debug, info, warn, error or fatal",
        setter: Setter::LogLevel,
    },
    FlagSpec {
        name: "node-id",
        usage:
            "this node's part of message IDs, in [0,1024); the default is a hash of the hostname",
        setter: Setter::Int(|s| &mut s.opts.node_id),
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
];

impl FlagSpec {
    /// Parses and stores the value of a non-boolean flag.
    fn set(&self, state: &mut ParseState, value: &str) -> Result<(), CliError> {
        let invalid = |reason: &str| CliError::InvalidValue {
            flag: self.name.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        match self.setter {
            // Boolean flags never reach here: the parser handles them because they take no separate value.
            Setter::Bool(field) => {
                *field(state) = parse_go_bool(value).ok_or_else(|| invalid(PARSE_ERROR))?;
            }
            Setter::Str(field) => *field(state) = value.to_owned(),
            Setter::Int(field) => *field(state) = parse_go_int(value).map_err(invalid)?,
            Setter::Duration(field) => {
                *field(state) = match go_duration_nanos(value) {
                    Err(_) => return Err(invalid(PARSE_ERROR)),
                    Ok((true, n)) if n > 0 => {
                        return Err(invalid("negative durations are not allowed"))
                    }
                    Ok((_, n)) => Duration::from_nanos(n),
                }
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
        }
        Ok(())
    }
}

impl Setter {
    /// The type word Go's help shows after the flag name; booleans show none.
    fn type_name(self) -> &'static str {
        match self {
            Setter::Bool(..) => "",
            Setter::Str(_) => "string",
            Setter::Int(_) => "int",
            Setter::Duration(_) => "duration",
            Setter::LogLevel | Setter::Percentiles => "value",
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
            Setter::Int(field) => {
                let v = *field(defaults);
                (v != 0).then(|| v.to_string())
            }
            Setter::Duration(field) => {
                let v = *field(defaults);
                (!v.is_zero()).then(|| format_go_duration(v))
            }
            Setter::LogLevel => Some(defaults.opts.log_level.as_str().to_owned()),
            Setter::Percentiles => None,
        }
    }
}

/// The reason Go's `flag` package gives for any value its type cannot parse.
const PARSE_ERROR: &str = "parse error";

/// Go nsqd's start-up checks on what the flags produced.
fn validate(opts: &Options) -> Result<(), CliError> {
    if !(0..1024).contains(&opts.node_id) {
        return Err(CliError::NodeIdOutOfRange(opts.node_id));
    }
    for &p in &opts.e2e_processing_latency_percentiles {
        // Written so that NaN fails too; Go's check happens to let NaN through.
        if !(p > 0.0 && p <= 1.0) {
            return Err(CliError::PercentileOutOfRange(p));
        }
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, as the `flag` package uses it: an optional sign, then decimal, `0x` hex,
/// `0o` or leading-`0` octal, or `0b` binary, with `_` allowed between digits. The error is Go's reason text.
fn parse_go_int(s: &str) -> Result<i64, &'static str> {
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
const RANGE_ERROR: &str = "value out of range";

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
fn go_duration_nanos(orig: &str) -> Result<(bool, u64), String> {
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
fn format_go_duration(d: Duration) -> String {
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

    /// Every spelling Go accepts for a flag that takes a value.
    fn spellings(flag: &str, value: &str) -> [Vec<String>; 4] {
        [
            args(&[&format!("-{flag}"), value]),
            args(&[&format!("-{flag}={value}")]),
            args(&[&format!("--{flag}"), value]),
            args(&[&format!("--{flag}={value}")]),
        ]
    }

    #[test]
    fn every_flag_in_all_four_spellings() {
        type Check = fn(&Options) -> bool;
        let cases: &[(&str, &str, Check)] = &[
            ("tcp-address", "127.0.0.1:1", |o| {
                o.tcp_address == "127.0.0.1:1"
            }),
            ("http-address", ":4000", |o| o.http_address == ":4000"),
            ("https-address", "[::1]:2", |o| o.https_address == "[::1]:2"),
            ("broadcast-address", "10.1.2.3", |o| {
                o.broadcast_address == "10.1.2.3"
            }),
            ("node-id", "1023", |o| o.node_id == 1023),
            ("data-path", "/var/lib/nsq", |o| {
                o.data_path == "/var/lib/nsq"
            }),
            ("mem-queue-size", "0", |o| o.mem_queue_size == 0),
            ("msg-timeout", "1m30s", |o| {
                o.msg_timeout == Duration::from_secs(90)
            }),
            ("max-msg-timeout", "1h", |o| {
                o.max_msg_timeout == Duration::from_secs(3600)
            }),
            ("max-msg-size", "2048", |o| o.max_msg_size == 2048),
            ("max-body-size", "0x1000", |o| o.max_body_size == 4096),
            ("max-req-timeout", "90s", |o| {
                o.max_req_timeout == Duration::from_secs(90)
            }),
            ("max-rdy-count", "100", |o| o.max_rdy_count == 100),
            ("max-heartbeat-interval", "5s", |o| {
                o.max_heartbeat_interval == Duration::from_secs(5)
            }),
            ("max-output-buffer-size", "1_024", |o| {
                o.max_output_buffer_size == 1024
            }),
            ("max-output-buffer-timeout", "2s", |o| {
                o.max_output_buffer_timeout == Duration::from_secs(2)
            }),
            ("min-output-buffer-timeout", "10ms", |o| {
                o.min_output_buffer_timeout == Duration::from_millis(10)
            }),
            ("output-buffer-timeout", "1.5s", |o| {
                o.output_buffer_timeout == Duration::from_millis(1500)
            }),
            ("max-channel-consumers", "7", |o| {
                o.max_channel_consumers == 7
            }),
            ("e2e-processing-latency-percentile", "0.9", |o| {
                o.e2e_processing_latency_percentiles == [0.9]
            }),
            ("e2e-processing-latency-window-time", "1m", |o| {
                o.e2e_processing_latency_window_time == Duration::from_secs(60)
            }),
            ("log-level", "DEBUG", |o| o.log_level == LogLevel::Debug),
        ];
        // Every flag except the action flags must have a case here.
        let covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
        for spec in FLAGS {
            assert!(
                spec.name == "version" || covered.contains(&spec.name),
                "no test case for -{}",
                spec.name
            );
        }
        for &(flag, value, check) in cases {
            for argv in spellings(flag, value) {
                let opts = match parse_args(argv.clone()) {
                    Ok(CliAction::Run(opts)) => opts,
                    other => panic!("{argv:?} gave {other:?}"),
                };
                assert!(check(&opts), "{argv:?} did not set the option");
            }
        }
    }

    #[test]
    fn version_in_all_bool_forms() {
        for spelling in ["-version", "--version"] {
            for suffix in ["", "=true", "=1", "=t", "=T", "=TRUE", "=True"] {
                let argv = args(&[&format!("{spelling}{suffix}")]);
                assert!(
                    matches!(parse_args(argv.clone()), Ok(CliAction::PrintVersion)),
                    "{argv:?}"
                );
            }
            for suffix in ["=false", "=0", "=f", "=F", "=FALSE", "=False"] {
                let argv = args(&[&format!("{spelling}{suffix}")]);
                assert!(
                    matches!(parse_args(argv.clone()), Ok(CliAction::Run(_))),
                    "{argv:?}"
                );
            }
        }
        // A later occurrence overrides an earlier one, as in Go.
        assert!(matches!(
            parse_args(args(&["--version", "--version=false"])),
            Ok(CliAction::Run(_))
        ));
    }

    #[test]
    fn bool_flags_never_take_a_separate_value() {
        // "false" is a positional argument, so parsing stops there and the flag stays set.
        assert!(matches!(
            parse_args(args(&["--version", "false"])),
            Ok(CliAction::PrintVersion)
        ));
        assert_eq!(
            err(&["--version=yes"]),
            "invalid boolean value \"yes\" for -version: parse error"
        );
        assert_eq!(
            err(&["-version=tRUE"]),
            "invalid boolean value \"tRUE\" for -version: parse error"
        );
    }

    #[test]
    fn version_is_reported_before_validation_but_after_parse_errors() {
        assert!(matches!(
            parse_args(args(&["--node-id=5000", "--version"])),
            Ok(CliAction::PrintVersion)
        ));
        assert_eq!(
            err(&["--version", "--bogus"]),
            "flag provided but not defined: -bogus"
        );
    }

    #[test]
    fn help_flags() {
        for flag in ["-h", "--h", "-help", "--help"] {
            match parse_args(args(&[flag])) {
                Ok(CliAction::PrintHelp(text)) => assert_eq!(text, help_text()),
                other => panic!("{flag} gave {other:?}"),
            }
        }
        // Help stops parsing, so a bad flag after it is not reached, but one before it is.
        assert!(matches!(
            parse_args(args(&["--help", "--bogus"])),
            Ok(CliAction::PrintHelp(_))
        ));
        assert_eq!(
            err(&["--bogus", "--help"]),
            "flag provided but not defined: -bogus"
        );
    }

    #[test]
    fn unknown_flags_and_bad_syntax() {
        assert_eq!(err(&["--nope"]), "flag provided but not defined: -nope");
        assert_eq!(err(&["-nope=1"]), "flag provided but not defined: -nope");
        // Go's nsqd flags that this build does not have yet are rejected, not silently ignored.
        assert_eq!(
            err(&["--lookupd-tcp-address=127.0.0.1:4160"]),
            "flag provided but not defined: -lookupd-tcp-address"
        );
        assert_eq!(
            err(&["---tcp-address=x"]),
            "bad flag syntax: ---tcp-address=x"
        );
        assert_eq!(err(&["-=x"]), "bad flag syntax: -=x");
        assert_eq!(err(&["--=x"]), "bad flag syntax: --=x");
    }

    #[test]
    fn missing_values() {
        assert_eq!(
            err(&["--tcp-address"]),
            "flag needs an argument: -tcp-address"
        );
        assert_eq!(
            err(&["-msg-timeout"]),
            "flag needs an argument: -msg-timeout"
        );
    }

    #[test]
    fn separate_values_may_look_like_flags() {
        // Go takes the next argument as the value whatever it looks like.
        assert_eq!(run(&["--data-path", "--weird"]).data_path, "--weird");
        // An empty inline value is a value.
        assert_eq!(run(&["--broadcast-address="]).broadcast_address, "");
        // Only the first '=' splits.
        assert_eq!(run(&["--data-path=a=b"]).data_path, "a=b");
    }

    #[test]
    fn bad_integers() {
        assert_eq!(
            err(&["--max-msg-size=abc"]),
            "invalid value \"abc\" for flag -max-msg-size: parse error"
        );
        assert_eq!(
            err(&["--mem-queue-size", "1.5"]),
            "invalid value \"1.5\" for flag -mem-queue-size: parse error"
        );
        assert_eq!(
            err(&["--max-rdy-count="]),
            "invalid value \"\" for flag -max-rdy-count: parse error"
        );
        assert_eq!(
            err(&["--max-body-size=99999999999999999999"]),
            "invalid value \"99999999999999999999\" for flag -max-body-size: value out of range"
        );
        assert_eq!(
            err(&["--max-channel-consumers=09"]),
            "invalid value \"09\" for flag -max-channel-consumers: parse error"
        );
    }

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
    fn bad_durations() {
        for bad in ["60", "1x", "abc", "", "1.5.5s", "-", ".s"] {
            assert_eq!(
                err(&["--msg-timeout", bad]),
                format!("invalid value {bad:?} for flag -msg-timeout: parse error")
            );
        }
        assert_eq!(
            err(&["--msg-timeout=-1s"]),
            "invalid value \"-1s\" for flag -msg-timeout: negative durations are not allowed"
        );
        assert_eq!(run(&["--msg-timeout=-0s"]).msg_timeout, Duration::ZERO);
    }

    #[test]
    fn bad_log_level() {
        assert_eq!(
            err(&["--log-level=loud"]),
            "invalid value \"loud\" for flag -log-level: invalid log level 'loud' \
             (debug, info, warn, error, fatal)"
        );
        assert_eq!(run(&["-log-level", "fatal"]).log_level, LogLevel::Fatal);
    }

    #[test]
    fn parsing_stops_at_positional_arguments() {
        let opts = run(&["--node-id=3", "extra", "--node-id=4", "--bogus"]);
        assert_eq!(opts.node_id, 3);
        let opts = run(&["--node-id=3", "--", "--node-id=4", "--bogus"]);
        assert_eq!(opts.node_id, 3);
        let opts = run(&["--node-id=3", "-", "--bogus"]);
        assert_eq!(opts.node_id, 3);
        // Only "--" itself ends the flags; the argument after it is not parsed even if it is "--".
        let opts = run(&["--", "--", "--node-id=9"]);
        assert_eq!(opts.node_id, Options::default().node_id);
    }

    #[test]
    fn later_occurrences_win() {
        let opts = run(&["--tcp-address=a:1", "-tcp-address", "b:2"]);
        assert_eq!(opts.tcp_address, "b:2");
    }

    #[test]
    fn no_arguments_gives_defaults() {
        let opts = run(&[]);
        let defaults = Options::default();
        for name in [
            "id",
            "tcp_address",
            "msg_timeout",
            "log_level",
            "broadcast_address",
        ] {
            assert_eq!(
                opts.config_value(name),
                defaults.config_value(name),
                "{name}"
            );
        }
    }

    #[test]
    fn defaults_equal_go() {
        let o = Options::default();
        let durations: &[(&str, Duration, Duration)] = &[
            ("sync_timeout", o.sync_timeout, Duration::from_secs(2)),
            (
                "queue_scan_interval",
                o.queue_scan_interval,
                Duration::from_millis(100),
            ),
            (
                "queue_scan_refresh_interval",
                o.queue_scan_refresh_interval,
                Duration::from_secs(5),
            ),
            ("msg_timeout", o.msg_timeout, Duration::from_secs(60)),
            (
                "max_msg_timeout",
                o.max_msg_timeout,
                Duration::from_secs(900),
            ),
            (
                "max_req_timeout",
                o.max_req_timeout,
                Duration::from_secs(3600),
            ),
            ("client_timeout", o.client_timeout, Duration::from_secs(60)),
            (
                "max_heartbeat_interval",
                o.max_heartbeat_interval,
                Duration::from_secs(60),
            ),
            (
                "max_output_buffer_timeout",
                o.max_output_buffer_timeout,
                Duration::from_secs(30),
            ),
            (
                "min_output_buffer_timeout",
                o.min_output_buffer_timeout,
                Duration::from_millis(25),
            ),
            (
                "output_buffer_timeout",
                o.output_buffer_timeout,
                Duration::from_millis(250),
            ),
            (
                "e2e_window",
                o.e2e_processing_latency_window_time,
                Duration::from_secs(600),
            ),
            (
                "http_client_connect_timeout",
                o.http_client_connect_timeout,
                Duration::from_secs(2),
            ),
            (
                "http_client_request_timeout",
                o.http_client_request_timeout,
                Duration::from_secs(5),
            ),
            (
                "statsd_interval",
                o.statsd_interval,
                Duration::from_secs(60),
            ),
        ];
        for (name, got, want) in durations {
            assert_eq!(got, want, "{name}");
        }
        let ints: &[(&str, i64, i64)] = &[
            ("mem_queue_size", o.mem_queue_size, 10_000),
            ("max_bytes_per_file", o.max_bytes_per_file, 104_857_600),
            ("sync_every", o.sync_every, 2500),
            (
                "queue_scan_selection_count",
                o.queue_scan_selection_count,
                20,
            ),
            (
                "queue_scan_worker_pool_max",
                o.queue_scan_worker_pool_max,
                4,
            ),
            ("max_msg_size", o.max_msg_size, 1_048_576),
            ("max_body_size", o.max_body_size, 5_242_880),
            ("max_rdy_count", o.max_rdy_count, 2500),
            ("max_output_buffer_size", o.max_output_buffer_size, 65_536),
            ("max_channel_consumers", o.max_channel_consumers, 0),
            ("max_deflate_level", o.max_deflate_level, 6),
            ("tls_required", o.tls_required, 0),
            ("tls_min_version", i64::from(o.tls_min_version), 769),
            ("statsd_udp_packet_size", o.statsd_udp_packet_size, 508),
            ("broadcast_tcp_port", i64::from(o.broadcast_tcp_port), 0),
            ("broadcast_http_port", i64::from(o.broadcast_http_port), 0),
        ];
        for (name, got, want) in ints {
            assert_eq!(got, want, "{name}");
        }
        let strings: &[(&str, &str, &str)] = &[
            ("log_prefix", &o.log_prefix, "[nsqd] "),
            ("tcp_address", &o.tcp_address, "0.0.0.0:4150"),
            ("http_address", &o.http_address, "0.0.0.0:4151"),
            ("https_address", &o.https_address, "0.0.0.0:4152"),
            ("data_path", &o.data_path, ""),
            ("statsd_prefix", &o.statsd_prefix, "nsq.%s"),
            ("statsd_address", &o.statsd_address, ""),
            (
                "auth_http_request_method",
                &o.auth_http_request_method,
                "get",
            ),
            ("tls_cert", &o.tls_cert, ""),
            ("tls_key", &o.tls_key, ""),
            ("tls_root_ca_file", &o.tls_root_ca_file, ""),
            ("tls_client_auth_policy", &o.tls_client_auth_policy, ""),
            ("topology_region", &o.topology_region, ""),
            ("topology_zone", &o.topology_zone, ""),
        ];
        for (name, got, want) in strings {
            assert_eq!(got, want, "{name}");
        }
        let bools: &[(&str, bool, bool)] = &[
            ("deflate", o.deflate, true),
            ("snappy", o.snappy, true),
            ("statsd_mem_stats", o.statsd_mem_stats, true),
            (
                "statsd_exclude_ephemeral",
                o.statsd_exclude_ephemeral,
                false,
            ),
        ];
        for (name, got, want) in bools {
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(o.log_level, LogLevel::Info);
        assert_eq!(o.queue_scan_dirty_percent, 0.25);
        assert!(o.nsqlookupd_tcp_addresses.is_empty());
        assert!(o.auth_http_addresses.is_empty());
        assert!(o.e2e_processing_latency_percentiles.is_empty());
        assert!(o.enable_experiment.is_empty());
        assert!(!o.broadcast_address.is_empty());
        assert!((0..1024).contains(&o.node_id));
    }

    #[test]
    fn percentiles_are_sorted_descending_across_occurrences() {
        let opts = run(&["--e2e-processing-latency-percentile=0.5,0.99"]);
        assert_eq!(opts.e2e_processing_latency_percentiles, [0.99, 0.5]);
        let opts = run(&[
            "--e2e-processing-latency-percentile=0.5",
            "-e2e-processing-latency-percentile",
            "0.95,1.0,0.75",
            "--e2e-processing-latency-percentile",
            "0.99",
        ]);
        assert_eq!(
            opts.e2e_processing_latency_percentiles,
            [1.0, 0.99, 0.95, 0.75, 0.5]
        );
    }

    #[test]
    fn percentile_validation() {
        assert_eq!(
            err(&["--e2e-processing-latency-percentile=0.5,1.5"]),
            "invalid E2E processing latency percentile: 1.5"
        );
        assert_eq!(
            err(&["--e2e-processing-latency-percentile=0"]),
            "invalid E2E processing latency percentile: 0"
        );
        assert_eq!(
            err(&["--e2e-processing-latency-percentile=-0.5"]),
            "invalid E2E processing latency percentile: -0.5"
        );
        assert_eq!(
            err(&["--e2e-processing-latency-percentile=NaN"]),
            "invalid E2E processing latency percentile: NaN"
        );
        assert_eq!(
            err(&["--e2e-processing-latency-percentile=0.5,abc"]),
            "Could not parse: abc"
        );
        assert_eq!(
            err(&["--e2e-processing-latency-percentile=0.5,"]),
            "Could not parse: "
        );
        assert_eq!(
            run(&["--e2e-processing-latency-percentile=1"]).e2e_processing_latency_percentiles,
            [1.0]
        );
    }

    #[test]
    fn node_id_validation() {
        assert_eq!(run(&["--node-id=0"]).node_id, 0);
        assert_eq!(run(&["--node-id=1023"]).node_id, 1023);
        assert_eq!(err(&["--node-id=1024"]), "--node-id must be [0,1024)");
        assert_eq!(err(&["--node-id", "-1"]), "--node-id must be [0,1024)");
    }

    #[test]
    fn golden_instance_flags_reproduce_golden_config_bodies() {
        let opts = run(&[
            "--tcp-address=127.0.0.1:54636",
            "--http-address=127.0.0.1:54637",
            "--broadcast-address=127.0.0.1",
            "--node-id=1",
            "--data-path=/tmp/nsqd-data-7t2h1ajv",
            "--e2e-processing-latency-percentile=0.5,0.99",
        ]);
        let body = |name: &str| match opts.config_value(name) {
            Some(crate::options::ConfigValue::Text(s)) => s,
            Some(crate::options::ConfigValue::Json(v)) => serde_json::to_string(&v).unwrap(),
            None => "<none>".to_owned(),
        };
        for (name, want) in [
            ("nsqlookupd_tcp_addresses", "[]"),
            ("log_level", "2"),
            ("mem_queue_size", "10000"),
            ("msg_timeout", "60000000000"),
            ("max_req_timeout", "3600000000000"),
            ("e2e_processing_latency_percentiles", "[0.99,0.5]"),
            ("broadcast_address", "127.0.0.1"),
            ("tls_min_version", "769"),
            ("tls_required", "0"),
            ("data_path", "/tmp/nsqd-data-7t2h1ajv"),
            ("id", "1"),
            ("node_id", "<none>"),
            ("statsd_prefix", "nsq.127_0_0_1_54637."),
            ("deflate", "true"),
            ("max_deflate_level", "6"),
            ("enable_experiment", "[]"),
            ("bogus_option", "<none>"),
        ] {
            assert_eq!(body(name), want, "{name}");
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

    #[test]
    fn version_line_starts_like_go() {
        let line = version_line();
        assert!(line.starts_with("nsqd v1.3.0 "), "{line}");
        assert!(line.contains(env!("CARGO_PKG_VERSION")), "{line}");
    }

    #[test]
    fn help_lists_every_flag_with_its_default_in_go_layout() {
        let text = help_text();
        assert!(text.starts_with("Usage of nsqd:\n"));
        for spec in FLAGS {
            assert!(
                text.contains(&format!("\n  -{}", spec.name)),
                "-{} missing",
                spec.name
            );
        }
        assert!(text.contains(
            "  -msg-timeout duration\n    \thow long a delivered message may go unacknowledged \
             before it is requeued (default 1m0s)\n"
        ));
        assert!(text.contains("  -tcp-address string\n    \t<addr>:<port> the TCP protocol listener binds to (default \"0.0.0.0:4150\")\n"));
        assert!(text.contains("  -mem-queue-size int\n"));
        assert!(text.contains("(default 10000)\n"));
        assert!(text.contains("  -version\n    \tprint the version and exit\n"));
        assert!(text.contains("  -log-level value\n"));
        assert!(text.contains("(default info)\n"));
        // Zero defaults are left out, as Go does.
        let data_path = text
            .lines()
            .skip_while(|l| !l.starts_with("  -data-path"))
            .nth(1)
            .unwrap();
        assert!(!data_path.contains("(default"), "{data_path}");
        // Flags are sorted by name.
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  -"))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), FLAGS.len());
    }
}
