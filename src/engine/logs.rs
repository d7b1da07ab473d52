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

/// A time for `--since`/`--until`: RFC 3339, Unix seconds, or a duration ago (`10m`).
pub fn parse_log_time(text: &str) -> Result<Timestamp> {
    log_time_at(text, Timestamp::now())
}

fn log_time_at(text: &str, now: Timestamp) -> Result<Timestamp> {
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(time);
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(Timestamp::from_second(seconds)?);
    }
    let seconds = parse_duration(text).ok_or_else(|| EngineError::BadValue {
        what: "time",
        value: text.to_string(),
        expected: "expected RFC 3339, Unix seconds or a duration such as 10m".into(),
    })?;
    Ok(Timestamp::from_second(now.as_second() - seconds)?)
}

/// `90s`, `30m`, `24h`, `7d`, `2w`, `1h30m`: Docker's durations, and days and weeks, in
/// seconds.
fn parse_duration(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let value: i64 = number.parse().ok()?;
        number.clear();
        let scale = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(value.checked_mul(scale)?)?;
        any = true;
    }
    if !number.is_empty() {
        return None;
    }
    any.then_some(total)
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
    fn log_times_are_absolute_or_ago() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let at = |text| log_time_at(text, now).unwrap().as_second();
        assert_eq!(at("1970-01-01T00:01:40Z"), 100);
        assert_eq!(at("12345"), 12345);
        assert_eq!(at("10m"), 1_000_000 - 600);
        assert_eq!(at("1h30m"), 1_000_000 - 5400);
        assert_eq!(at("2w"), 1_000_000 - 14 * 86_400);
        assert_eq!(
            log_time_at("soon", now).unwrap_err().to_string(),
            "invalid time \"soon\": expected RFC 3339, Unix seconds or a duration such as 10m"
        );
        assert!(log_time_at("10", now).is_ok());
        assert!(log_time_at("5y", now).is_err());
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration(""), None);
    }
}
