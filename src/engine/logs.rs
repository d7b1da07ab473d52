//! `logs`: what a container wrote (its json-file log), filtered by time and count, to
//! the caller's standard output and error; and how `--tail`, `--since` and `--until`
//! are read.

use std::io::Write;

use jiff::Timestamp;

use super::{EngineError, Result};
use crate::container::{self, LogOptions};
use crate::store::Store;

/// What `lade logs` is asked for.
#[derive(Debug, Clone)]
pub struct LogsRequest {
    /// The container's name or id.
    pub container: String,
    /// Keep writing what the container writes until it stops.
    pub follow: bool,
    /// Only the last N lines (of those the times keep); see [`parse_tail`].
    pub tail: Option<usize>,
    /// Only lines written at or after / before these times; see [`parse_log_time`].
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Each line prefixed with its time.
    pub timestamps: bool,
    /// Each line prefixed with the attributes `--log-opt labels=,env=` asked for.
    pub details: bool,
}

/// `lade logs`: the container's lines, each to the stream it was written to.
pub fn logs(
    store: &Store,
    request: &LogsRequest,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<()> {
    let options = LogOptions {
        follow: request.follow,
        tail: request.tail,
        since: request.since,
        until: request.until,
        timestamps: request.timestamps,
        details: request.details,
    };
    Ok(container::logs(
        store,
        &request.container,
        &options,
        stdout,
        stderr,
    )?)
}

/// `--tail`: a number of lines, or `all` (also `-1`, as Docker takes it) for every one.
pub fn parse_tail(text: &str) -> Result<Option<usize>> {
    match text {
        "all" | "-1" => Ok(None),
        n => n.parse().map(Some).map_err(|_| EngineError::BadValue {
            what: "--tail",
            value: n.to_string(),
            expected: "expected a number or all".into(),
        }),
    }
}

/// A time for `--since`/`--until`, as Docker's client reads it (moby's
/// `timestamp.GetTimestamp`): a Go duration before now (`10m`, `1h30m`, `1.5h`; `-1s`
/// is a second from now), RFC 3339 or a part of it (`2026-01-02`,
/// `2026-01-02T15:04`, without a zone in local time), or Unix seconds with a fraction
/// (`1136073600.5`). Days and weeks (`7d`, `2w`) are read too.
pub fn parse_log_time(text: &str) -> Result<Timestamp> {
    log_time_at(text, Timestamp::now(), &jiff::tz::TimeZone::system())
}

fn log_time_at(text: &str, now: Timestamp, local: &jiff::tz::TimeZone) -> Result<Timestamp> {
    let bad = |expected: &str| EngineError::BadValue {
        what: "time",
        value: text.to_string(),
        expected: expected.into(),
    };
    if text != "0" {
        if let Some(nanos) = crate::graph::go_duration(text, true) {
            let ago = jiff::SignedDuration::from_nanos_i128(nanos);
            return Ok(now.checked_sub(ago)?);
        }
    }
    if text.contains('-') {
        return date_time(text, now, local).ok_or_else(|| {
            bad("expected RFC 3339 (2006-01-02T15:04:05Z07:00, or a part of it such as 2006-01-02)")
        });
    }
    unix_time(text).ok_or_else(|| bad("expected RFC 3339, Unix seconds or a duration such as 10m"))
}

/// RFC 3339 or a part of it, as `GetTimestamp` picks the layout: with a zone (`Z`, `+`,
/// or a third `-`) as written, else in the local zone's present offset; a missing time
/// is midnight, missing minutes and seconds are zero.
fn date_time(text: &str, now: Timestamp, local: &jiff::tz::TimeZone) -> Option<Timestamp> {
    let zoned = text.contains(['z', 'Z', '+']) || text.matches('-').count() == 3;
    let (civil, offset) = if !zoned {
        (text, local.to_offset(now))
    } else if let Some(civil) = text.strip_suffix(['Z', 'z']) {
        (civil, jiff::tz::Offset::UTC)
    } else {
        // The zone starts at the `+`, or at the third `-`.
        let at = text
            .rfind('+')
            .or_else(|| text.match_indices('-').nth(2).map(|(i, _)| i))?;
        let (civil, zone) = text.split_at(at);
        (civil, offset(zone)?)
    };
    let (date, time) = match civil.split_once('T') {
        None => (civil, "00:00:00".to_string()),
        Some((date, time)) => {
            let colons = time.matches(':').count();
            let time = match colons {
                0 => format!("{time}:00:00"),
                1 => format!("{time}:00"),
                _ => time.to_string(),
            };
            (date, time)
        }
    };
    // Go's layouts take exactly two digits for each field of the time.
    let fields: Vec<&str> = time.split('.').next()?.split(':').collect();
    if fields.len() != 3 || fields.iter().any(|f| f.len() != 2) || date.len() != 10 {
        return None;
    }
    let civil: jiff::civil::DateTime = format!("{date}T{time}").parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::fixed(offset))
        .ok()
        .map(|z| z.timestamp())
}

/// `+01:00`, `-07:00`.
fn offset(zone: &str) -> Option<jiff::tz::Offset> {
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = zone[1..].split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let seconds = hours.parse::<i32>().ok()? * 3600 + minutes.parse::<i32>().ok()? * 60;
    jiff::tz::Offset::from_seconds(sign * seconds).ok()
}

/// Unix seconds, with a fraction of up to nine digits.
fn unix_time(text: &str) -> Option<Timestamp> {
    let (seconds, fraction) = match text.split_once('.') {
        Some((seconds, fraction)) => (seconds, fraction),
        None => (text, ""),
    };
    let seconds: i64 = seconds.parse().ok()?;
    let nanos: i32 = if fraction.is_empty() && !text.contains('.') {
        0
    } else {
        if fraction.is_empty()
            || fraction.len() > 9
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        format!("{fraction:0<9}").parse().ok()?
    };
    Timestamp::new(seconds, nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_a_count_or_all() {
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("-1").unwrap(), None);
        assert_eq!(parse_tail("3").unwrap(), Some(3));
        assert_eq!(
            parse_tail("x").unwrap_err().to_string(),
            "invalid --tail \"x\": expected a number or all"
        );
    }

    #[test]
    fn log_times_are_read_as_dockers_get_timestamp_reads_them() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let paris = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        let at = |text| log_time_at(text, now, &paris).unwrap();
        let second = |text| at(text).as_second();
        assert_eq!(second("1970-01-01T00:01:40Z"), 100);
        assert_eq!(second("1970-01-01T00:01:40+01:00"), 100 - 3600);
        assert_eq!(second("1970-01-01T00:01:40-01:00"), 100 + 3600);
        assert_eq!(at("1970-01-01T00:01:40.5Z").as_millisecond(), 100_500);
        // Without a zone, local time.
        assert_eq!(second("1970-01-02"), 86_400 - 3600);
        assert_eq!(second("1970-01-02Z"), 86_400);
        assert_eq!(second("1970-01-02T01"), 86_400);
        assert_eq!(second("1970-01-02T01:30"), 86_400 + 1800);
        assert_eq!(second("1970-01-02T01:30:05"), 86_400 + 1805);
        assert_eq!(second("1970-01-02T01Z"), 86_400 + 3600);
        assert_eq!(second("2026-01-02"), 1_767_308_400);
        // Unix seconds, with a fraction.
        assert_eq!(second("12345"), 12345);
        assert_eq!(at("12345.25").as_millisecond(), 12_345_250);
        assert_eq!(at("1136073600.000000001").subsec_nanosecond(), 1);
        // Go durations, before now; a negative one is after.
        assert_eq!(second("10m"), 1_000_000 - 600);
        assert_eq!(second("1h30m"), 1_000_000 - 5400);
        assert_eq!(second("1.5h"), 1_000_000 - 5400);
        assert_eq!(at("500ms").as_millisecond(), 1_000_000_000 - 500);
        assert_eq!(second("-1s"), 1_000_001);
        assert_eq!(second("0s"), 1_000_000);
        assert_eq!(second("0"), 0);
        assert_eq!(second("2w"), 1_000_000 - 14 * 86_400);
        assert_eq!(
            log_time_at("soon", now, &paris).unwrap_err().to_string(),
            "invalid time \"soon\": expected RFC 3339, Unix seconds or a duration such as 10m"
        );
        for bad in [
            "5y",
            "2026-1-2",
            "2026-01-02T1",
            "1.2.3",
            "12.",
            "-",
            "1h30",
            "2026-01-02T",
        ] {
            assert!(log_time_at(bad, now, &paris).is_err(), "{bad}");
        }
    }
}
