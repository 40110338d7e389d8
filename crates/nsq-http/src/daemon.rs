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

/// Logs the events of `crates` (Rust crate names) to stderr in Go's layout (see [`GoLogFormat`]), from
/// `go_level` up: a `--log-level` name (`debug`, `info`, `warn`, `error`, `fatal`). `prefix` is
/// `--log-prefix` (`"[nsqd] "`, `"[nsqlookupd] "`). The level can change later with [`set_log_level`].
pub fn init_logging(crates: &[&str], go_level: &str, prefix: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let _ = LOG_PREFIX.set(prefix.to_owned());
    let _ = LOG_CRATES.set(crates.iter().map(|c| (*c).to_owned()).collect());
    let (filter, handle) = tracing_subscriber::reload::Layer::new(level_filter(go_level));
    let _ = FILTER.set(handle);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(GoLogFormat::new(prefix));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init();
}

/// Changes the level that [`init_logging`] set (nsqd's `PUT /config/log_level`); an unknown name is
/// ignored. Does nothing before `init_logging`.
pub fn set_log_level(go_level: &str) {
    if let Some(handle) = FILTER.get() {
        let _ = handle.reload(level_filter(go_level));
    }
}

/// Writes a `FATAL:` line in Go's layout with the `--log-prefix` given to [`init_logging`] (no prefix before
/// it). `tracing` has no level above error, so the daemons' last words go through here; a fatal line is
/// written at every `--log-level`.
pub fn log_fatal(message: impl Display) {
    let prefix = LOG_PREFIX.get().map_or("", String::as_str);
    eprintln!(
        "{}{}",
        go_log_head(prefix, std::time::SystemTime::now(), "FATAL"),
        message
    );
}

type ReloadHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

static LOG_PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static LOG_CRATES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
static FILTER: std::sync::OnceLock<ReloadHandle> = std::sync::OnceLock::new();

/// The filter for a Go level name over the crates given to [`init_logging`]. `fatal` silences every
/// `tracing` event: no event is fatal, and Go at that level prints fatal lines only.
fn level_filter(go_level: &str) -> tracing_subscriber::EnvFilter {
    let level = match go_level.to_ascii_lowercase().as_str() {
        "debug" => "debug",
        "warn" => "warn",
        "error" => "error",
        "fatal" => "off",
        _ => "info",
    };
    let directives = LOG_CRATES
        .get()
        .map(|crates| {
            crates
                .iter()
                .map(|name| format!("{name}={level}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    tracing_subscriber::EnvFilter::new(directives)
}

/// Go's log line for nsq's daemons (`log.New(os.Stderr, prefix, Ldate|Ltime|Lmicroseconds)` fed by
/// `internal/lg`): `<prefix><yyyy/mm/dd hh:mm:ss.micros> <LEVEL>: <message>`, local time, with the level
/// words `DEBUG`, `INFO`, `WARNING`, `ERROR` (`tracing`'s trace level prints as `DEBUG`). Fields of an event
/// follow its message as `key=value`.
#[derive(Debug, Clone)]
pub struct GoLogFormat {
    prefix: String,
}

impl GoLogFormat {
    /// A format that starts every line with `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for GoLogFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let head = go_log_head(
            &self.prefix,
            std::time::SystemTime::now(),
            go_level_word(*event.metadata().level()),
        );
        writer.write_str(&head)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Go's word for a `tracing` level (`internal/lg`'s `LogLevel.String`).
pub fn go_level_word(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::ERROR => "ERROR",
        tracing::Level::WARN => "WARNING",
        tracing::Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// Everything of a Go log line before the message: prefix, local date and time to the microsecond, level.
pub fn go_log_head(prefix: &str, at: std::time::SystemTime, level_word: &str) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let local = secs.saturating_add(i64::from(localtime::offset_at(secs)));
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{prefix}{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}.{:06} {level_word}: ",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// The local time zone for log lines, as Go finds it: `$TZ` (empty or unset: `/etc/localtime`), read from a
/// TZif file once. Transitions are honoured; the POSIX rule a TZif file may end with (for times after its
/// last transition) is not, so such a zone keeps its last listed offset. Anything unreadable is UTC.
mod localtime {
    use std::sync::OnceLock;

    /// Transition times (Unix seconds, ascending) with the UTC offset that starts at each, and the offset
    /// before the first.
    struct Zone {
        transitions: Vec<(i64, i32)>,
        initial: i32,
    }

    static ZONE: OnceLock<Zone> = OnceLock::new();

    /// The UTC offset in seconds at Unix time `secs`.
    pub(super) fn offset_at(secs: i64) -> i32 {
        let zone = ZONE.get_or_init(|| {
            load().unwrap_or(Zone {
                transitions: Vec::new(),
                initial: 0,
            })
        });
        let after = zone.transitions.partition_point(|(t, _)| *t <= secs);
        if after == 0 {
            zone.initial
        } else {
            zone.transitions[after - 1].1
        }
    }

    fn load() -> Option<Zone> {
        let path = match std::env::var("TZ") {
            Ok(tz) if !tz.is_empty() => {
                let tz = tz.strip_prefix(':').unwrap_or(&tz).to_owned();
                if tz == "UTC" {
                    return None;
                }
                if tz.starts_with('/') {
                    tz
                } else {
                    format!("/usr/share/zoneinfo/{tz}")
                }
            }
            _ => "/etc/localtime".to_owned(),
        };
        parse_tzif(&std::fs::read(path).ok()?)
    }

    fn be_u32(data: &[u8], at: usize) -> Option<usize> {
        let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(u32::from_be_bytes(bytes)).ok()
    }

    /// Reads a TZif file: the 64-bit (version 2+) data block when present, else the version 1 block.
    fn parse_tzif(data: &[u8]) -> Option<Zone> {
        if data.get(..4)? != b"TZif" {
            return None;
        }
        let v1 = block(data, 0, 4)?;
        if data.get(4).copied().unwrap_or(0) >= b'2' {
            if let Some(zone) = block(data, v1.1, 8) {
                return Some(zone.0);
            }
        }
        Some(v1.0)
    }

    /// The zone of the data block whose header starts at `start`, with transition times `width` bytes wide,
    /// and where the block ends.
    fn block(data: &[u8], start: usize, width: usize) -> Option<(Zone, usize)> {
        if data.get(start..start + 4)? != b"TZif" {
            return None;
        }
        let count = |i: usize| be_u32(data, start + 20 + 4 * i);
        let (isut, isstd, leap, time, types, chars) = (
            count(0)?,
            count(1)?,
            count(2)?,
            count(3)?,
            count(4)?,
            count(5)?,
        );
        let times_at = start + 44;
        let index_at = times_at + time * width;
        let types_at = index_at + time;
        let end = types_at + types * 6 + chars + leap * (width + 4) + isstd + isut;
        if data.len() < end || types == 0 {
            return None;
        }
        let offset_of = |ty: usize| -> Option<i32> {
            let at = types_at + ty * 6;
            Some(i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
        };
        let mut transitions = Vec::with_capacity(time);
        for i in 0..time {
            let at = times_at + i * width;
            let t = if width == 8 {
                i64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?)
            } else {
                i64::from(i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
            };
            let ty = usize::from(*data.get(index_at + i)?);
            transitions.push((t, offset_of(ty)?));
        }
        let initial = offset_of(0)?;
        Some((
            Zone {
                transitions,
                initial,
            },
            end,
        ))
    }
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
    use super::*;

    #[test]
    fn a_bare_port_means_every_interface() {
        assert_eq!(listen_address(":4150"), "0.0.0.0:4150");
        assert_eq!(listen_address("127.0.0.1:4161"), "127.0.0.1:4161");
    }

    #[test]
    fn log_lines_have_go_layout() {
        // 2026-11-21 16:10:23.123456 UTC.
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_795_277_423_123_456);
        let offset = localtime::offset_at(1_795_277_423);
        let head = go_log_head("[nsqd] ", at, go_level_word(tracing::Level::INFO));
        if offset == 0 {
            assert_eq!(head, "[nsqd] 2026/11/21 16:10:23.123456 INFO: ");
        }
        // Whatever the zone: prefix, `yyyy/mm/dd hh:mm:ss.micros`, level word.
        let rest = head.strip_prefix("[nsqd] ").unwrap();
        let shape: String = rest
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999/99/99 99:99:99.999999 INFO: ");
        assert!(rest.contains(".123456 "));
        let lookupd = go_log_head("[nsqlookupd] ", at, go_level_word(tracing::Level::WARN));
        assert!(lookupd.starts_with("[nsqlookupd] 2026/11/2"), "{lookupd}");
        assert!(lookupd.ends_with(".123456 WARNING: "), "{lookupd}");
        assert_eq!(go_level_word(tracing::Level::ERROR), "ERROR");
        assert_eq!(go_level_word(tracing::Level::DEBUG), "DEBUG");
        assert_eq!(go_level_word(tracing::Level::TRACE), "DEBUG");
        assert!(go_log_head("", at, "FATAL").ends_with(" FATAL: "));
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
    }

    #[test]
    fn a_whole_event_is_one_go_line() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::fmt::MakeWriter;

        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Sink {
            type Writer = Sink;
            fn make_writer(&'a self) -> Sink {
                self.clone()
            }
        }

        let sink = Sink::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink.clone())
            .with_ansi(false)
            .event_format(GoLogFormat::new("[nsqlookupd] "))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!("TCP: listening on {}", "/tmp/l.sock");
            tracing::error!(client = 7, "failed");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("[nsqlookupd] 20"), "{text}");
        assert!(
            lines[0].ends_with(" WARNING: TCP: listening on /tmp/l.sock"),
            "{text}"
        );
        assert!(lines[1].ends_with(" ERROR: failed client=7"), "{text}");
    }
}
