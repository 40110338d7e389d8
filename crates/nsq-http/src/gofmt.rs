//! Go's text renderings that HTTP clients can see, written once so that nsqd's stats text and both daemons'
//! response headers agree with Go byte for byte: `time.Duration.String()`, RFC 3339 and RFC 1123 (HTTP
//! `Date`) timestamps in UTC, and nsq's `NanoSecondToHuman` used for e2e latencies.

/// Go's `time.Duration(nanos).String()`: `0s`, `150.06719ms`, `7.528259437s`, `1m5s`, `2h0m3.5s`.
pub fn duration_string(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (digits, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        return format!("{sign}{}{unit}", fixed_point(u, digits));
    }
    let total_secs = u / 1_000_000_000;
    let seconds = fixed_point((total_secs % 60) * 1_000_000_000 + u % 1_000_000_000, 9);
    let minutes = (total_secs / 60) % 60;
    let hours = total_secs / 3600;
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

/// `v / 10^digits` with the fraction's trailing zeros (and a bare point) removed, as Go prints durations.
fn fixed_point(v: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (int, frac) = (v / scale, v % scale);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// nsq's `stringy.NanoSecondToHuman`: one decimal and the largest unit the value exceeds (`3.5s`, `0.0ns`).
pub fn nanos_to_human(v: f64) -> String {
    let (v, suffix) = if v > 1e9 {
        (v / 1e9, "s")
    } else if v > 1e6 {
        (v / 1e6, "ms")
    } else if v > 1e3 {
        (v / 1e3, "us")
    } else {
        (v, "ns")
    };
    format!("{v:.1}{suffix}")
}

/// Go's `time.Unix(secs, 0).Format(time.RFC3339)` on a machine whose zone is UTC: `2026-11-21T16:09:21Z`.
pub fn rfc3339_utc(unix_secs: i64) -> String {
    let t = Civil::from_unix(unix_secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// The HTTP `Date` format (`http.TimeFormat`): `Sat, 21 Nov 2026 16:09:22 GMT`.
pub fn http_date(unix_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = Civil::from_unix(unix_secs);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[t.weekday],
        t.day,
        MONTHS[t.month as usize - 1],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}

/// A UTC calendar time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    /// 0 is Sunday.
    weekday: usize,
}

impl Civil {
    /// Converts Unix seconds with the proleptic Gregorian "days from civil" inversion (H. Hinnant's method).
    fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            // Both are small positive numbers by construction.
            month: u32::try_from(month).unwrap_or(1),
            day: u32::try_from(day).unwrap_or(1),
            hour: rem / 3_600,
            minute: rem % 3_600 / 60,
            second: rem % 60,
            // 1970-01-01 was a Thursday.
            weekday: usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(999), "999ns");
        assert_eq!(duration_string(1_500), "1.5µs");
        // Golden stats_text_empty: "uptime 150.06719ms".
        assert_eq!(duration_string(150_067_190), "150.06719ms");
        assert_eq!(duration_string(7_528_259_437), "7.528259437s");
        assert_eq!(duration_string(5_000_000_000), "5s");
        assert_eq!(duration_string(65_000_000_000), "1m5s");
        assert_eq!(duration_string(3_600_000_000_000), "1h0m0s");
        assert_eq!(duration_string(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(duration_string(-2_000_000_000), "-2s");
    }

    #[test]
    fn human_latencies_match_nsq() {
        assert_eq!(nanos_to_human(0.0), "0.0ns");
        assert_eq!(nanos_to_human(3_539_423_744.0), "3.5s");
        assert_eq!(nanos_to_human(1_500_000.0), "1.5ms");
        assert_eq!(nanos_to_human(2_000.0), "2.0us");
        // The comparisons are strict: exactly one second is still shown in ms.
        assert_eq!(nanos_to_human(1e9), "1000.0ms");
    }

    #[test]
    fn timestamps_match_the_golden_capture() {
        // Golden stats_text_empty: start_time 1795277361 is printed as 2026-11-21T16:09:21Z.
        assert_eq!(rfc3339_utc(1_795_277_361), "2026-11-21T16:09:21Z");
        assert_eq!(http_date(1_795_277_362), "Sat, 21 Nov 2026 16:09:22 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
