//! Parsing of Go-style durations (`10s`, `1m30s`, `250ms`) and of the `--deadline` start time.
//!
//! The flags keep the spelling of Go's `bench_writer`/`bench_reader`, so scripts written for
//! those tools can pass the same values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When a benchmark starts sending, after every connection is set up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartAt {
    /// As soon as the connections are ready.
    #[default]
    Now,
    /// At a wall-clock time, so several tool processes can start together (Go's `--deadline`).
    At(SystemTime),
}

impl StartAt {
    /// Sleeps until the start time; returns at once for a time in the past.
    pub async fn wait(&self) {
        if let Self::At(t) = self {
            if let Ok(d) = t.duration_since(SystemTime::now()) {
                tokio::time::sleep(d).await;
            }
        }
    }
}

/// Parses a Go duration: a sequence of decimal numbers, each with a unit among `ns`, `us`,
/// `µs`, `ms`, `s`, `m`, `h`, such as `10s`, `1.5s` or `1m30s`. A bare `0` is allowed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("bad number in duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?} in duration {s:?}")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("duration {s:?}: {e}"))
}

/// Parses Go's `--deadline` layout `2006-01-02 15:04:05`, read as UTC like Go's `time.Parse`.
pub fn parse_deadline(s: &str) -> Result<SystemTime, String> {
    let bad = || format!("deadline {s:?} is not in the form YYYY-MM-DD HH:MM:SS");
    let (date, time) = s.trim().split_once(' ').ok_or_else(bad)?;
    let nums = |part: &str, sep: char| -> Result<Vec<i64>, String> {
        part.split(sep)
            .map(|n| n.parse::<i64>().map_err(|_| bad()))
            .collect()
    };
    let (d, t) = (nums(date, '-')?, nums(time, ':')?);
    let ([y, mo, day], [h, mi, sec]) = (
        <[i64; 3]>::try_from(d).map_err(|_| bad())?,
        <[i64; 3]>::try_from(t).map_err(|_| bad())?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let secs = days_from_civil(y, mo, day) * 86_400 + h * 3600 + mi * 60 + sec;
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn deadlines_are_utc() {
        assert_eq!(
            parse_deadline("1970-01-01 00:00:10"),
            Ok(UNIX_EPOCH + Duration::from_secs(10))
        );
        assert_eq!(
            parse_deadline("2024-03-01 12:00:00"),
            Ok(UNIX_EPOCH + Duration::from_secs(1_709_294_400))
        );
        assert!(parse_deadline("2024-13-01 00:00:00").is_err());
        assert!(parse_deadline("tomorrow").is_err());
    }
}
