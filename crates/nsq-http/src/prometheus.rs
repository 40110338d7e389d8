//! The Prometheus text exposition format (version 0.0.4) that both daemons' `GET /metrics` write, and the
//! process figures both report. Go NSQ has no such endpoint (nsqio/nsq#732); each daemon decides *what* it
//! exposes (`docs/prometheus.md`), this module only how it is written.
//!
//! `# HELP` and `# TYPE` come once per family, right before its first sample, so a family without samples is
//! left out entirely; integers are written exactly (an `f64` would round counters past 2^53).

use std::fmt::Write as _;

use axum::response::Response;
use hyper::header::{self, HeaderValue};
use hyper::StatusCode;

use crate::response::GoResponse;

/// The `Content-Type` Prometheus expects for the text format.
pub const CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");

/// The kernel's `USER_HZ`, the unit of `/proc/<pid>/stat` times; 100 on every Linux architecture.
const USER_HZ: f64 = 100.0;

/// A `200 OK` carrying a rendered exposition.
pub fn response(body: String) -> Response {
    GoResponse::new(StatusCode::OK)
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .typed_body(body)
        .build()
}

/// A metric type, as written on the `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts at 0 with the process).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// A metric family: the name its samples carry, its type and its help text.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The metric name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Its `# HELP` text.
    pub help: &'static str,
}

/// A gauge family.
pub const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Gauge,
        help,
    }
}

/// A counter family.
pub const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Counter,
        help,
    }
}

/// A sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// Written exactly.
    Int(i128),
    /// Written in the format's float syntax (`NaN`, `+Inf`, `-Inf`).
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(v.into())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v.into())
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Self::Int(i128::try_from(v).unwrap_or(i128::MAX))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

/// The text being written, and the families written so far (each may appear only once).
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    families: Vec<&'static str>,
}

impl Exposition {
    /// Starts a family; its samples follow through the returned writer.
    pub fn family(&mut self, family: Family) -> Samples<'_> {
        debug_assert!(
            !self.families.contains(&family.name),
            "metric family {} started twice",
            family.name
        );
        self.families.push(family.name);
        Samples {
            out: &mut self.out,
            family,
            headed: false,
        }
    }

    /// The process figures every daemon reports (each left out where it could not be read).
    pub fn process(&mut self, process: &Process) {
        if let Some(v) = process.start_time_seconds {
            self.family(START_TIME).sample(&[], v);
        }
        if let Some(v) = process.resident_memory_bytes {
            self.family(RESIDENT_MEMORY).sample(&[], v);
        }
        if let Some(v) = process.open_fds {
            self.family(OPEN_FDS).sample(&[], v);
        }
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The samples of one family.
#[derive(Debug)]
pub struct Samples<'a> {
    out: &'a mut String,
    family: Family,
    headed: bool,
}

impl Samples<'_> {
    /// Writes `name{label="value",...} value`, after the family's header if this is its first sample.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        // Writing to a String cannot fail.
        if !self.headed {
            self.headed = true;
            let _ = writeln!(
                self.out,
                "# HELP {} {}",
                self.family.name,
                escape_help(self.family.help)
            );
            let _ = writeln!(
                self.out,
                "# TYPE {} {}",
                self.family.name,
                self.family.kind.as_str()
            );
        }
        self.out.push_str(self.family.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{name}=\"{}\"", escape_label_value(value));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value.into() {
            Value::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            Value::Float(v) => self.out.push_str(&format_float(v)),
        }
        self.out.push('\n');
        self
    }
}

/// The standard process families (the names Prometheus client libraries use, so stock dashboards find them).
pub const START_TIME: Family = gauge(
    "process_start_time_seconds",
    "Start time of the process since the Unix epoch in seconds.",
);
/// Resident memory.
pub const RESIDENT_MEMORY: Family = gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
);
/// Open file descriptors.
pub const OPEN_FDS: Family = gauge("process_open_fds", "Number of open file descriptors.");

/// Process figures from `/proc/self` (Linux); each is `None` where it cannot be read.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Process {
    /// Unix time the process started.
    pub start_time_seconds: Option<f64>,
    /// Resident set size.
    pub resident_memory_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
}

impl Process {
    /// Reads the figures now.
    pub fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let system = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Self {
            start_time_seconds: start_time_seconds(&stat, &system),
            resident_memory_bytes: vm_rss_bytes(&status),
            // The listing holds one descriptor itself while it runs; it is not one of the daemon's.
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| (d.count() as u64).saturating_sub(1)),
        }
    }
}

/// Boot time (`btime` of `/proc/stat`) plus the process's `starttime` (field 22 of `/proc/self/stat`, in
/// clock ticks since boot).
fn start_time_seconds(stat: &str, system: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces; fields after it start at 3.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_comm.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let boot: u64 = system
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    #[allow(clippy::cast_precision_loss)]
    // Seconds since 1970 and ticks since boot are far below 2^52.
    Some(boot as f64 + ticks as f64 / USER_HZ)
}

/// The `VmRSS:   1234 kB` line of `/proc/<pid>/status`, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A float as the text format spells it (`NaN`, `+Inf`, `-Inf`, else Rust's shortest round-trip form).
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

/// A `# HELP` text with `\` and line feeds escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// A label value with `\`, `"` and line feeds escaped.
fn escape_label_value(text: &str) -> String {
    text.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("line\nnext"), r"line\nnext");
        assert_eq!(escape_help("x\\y\nz \"q\""), r#"x\\y\nz "q""#);
        let mut exp = Exposition::default();
        exp.family(gauge("t", "a \\ help\ntext"))
            .sample(&[("topic", "we\"ird\\\n")], 1_u64);
        assert_eq!(
            exp.finish(),
            "# HELP t a \\\\ help\\ntext\n# TYPE t gauge\nt{topic=\"we\\\"ird\\\\\\n\"} 1\n"
        );
    }

    #[test]
    fn values_are_exact_integers_or_prometheus_floats() {
        let mut exp = Exposition::default();
        let mut s = exp.family(counter("c_total", "h"));
        s.sample(&[], u64::MAX);
        s.sample(&[("a", "1"), ("b", "2")], -3_i64);
        s.sample(&[], true);
        s.sample(&[], 0.0025);
        s.sample(&[], f64::NAN);
        s.sample(&[], f64::INFINITY);
        s.sample(&[], f64::NEG_INFINITY);
        assert_eq!(
            exp.finish(),
            "# HELP c_total h\n# TYPE c_total counter\nc_total 18446744073709551615\n\
             c_total{a=\"1\",b=\"2\"} -3\nc_total 1\nc_total 0.0025\nc_total NaN\nc_total +Inf\n\
             c_total -Inf\n"
        );
    }

    #[test]
    fn empty_family_is_left_out() {
        let mut exp = Exposition::default();
        exp.family(gauge("nothing", "h"));
        exp.process(&Process::default());
        assert_eq!(exp.finish(), "");
    }

    #[test]
    fn start_time_is_boot_time_plus_ticks() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let stat = "42 (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 1234 1000 50";
        let started = start_time_seconds(stat, "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        assert!((started - 1_700_000_012.34).abs() < 1e-6, "{started}");
        assert_eq!(start_time_seconds(stat, "cpu 1\n"), None);
        assert_eq!(start_time_seconds("garbage", "btime 1\n"), None);
        if cfg!(target_os = "linux") {
            let process = Process::read();
            assert!(process.start_time_seconds.is_some());
            assert!(process.resident_memory_bytes.is_some_and(|b| b > 0));
            assert!(process.open_fds.is_some_and(|n| n > 0));
        }
    }

    #[test]
    fn rss_is_read_from_status() {
        assert_eq!(vm_rss_bytes("VmRSS:\t  10 kB\n"), Some(10 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
    }
}
