//! `lade events`: its arguments as the engine's request, and each event as a line
//! (Docker's plain form, or a `--format` template over Docker's JSON of the event).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;

use super::template::Format;
use super::StoreConfig;
use crate::engine::LoggedEvent;
use crate::engine::{self, EventFilters, EventsRequest};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show the events from this time on: RFC 3339 (2024-05-01T10:00:00Z), a date
    /// (2024-05-01), Unix seconds (1714557600.5), or a duration before now (10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Stop at this time (same forms as --since); without it, follow until interrupted
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events that match: type=container|image|network|volume, event=ACTION,
    /// container=NAME|ID, image=NAME, label=KEY[=VALUE], network=, volume= (values of
    /// one key: any; different keys: all)
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// A Go template over Docker's JSON of each event (`{{.Type}} {{.Action}}`,
    /// `{{json .}}`), or `json`
    #[arg(long)]
    pub format: Option<String>,
}

/// A time of `--since`/`--until`, in nanoseconds since the epoch; `now` for durations.
fn parse_time(text: &str, now: jiff::Timestamp) -> Result<i64> {
    let bad = || {
        anyhow!("invalid time {text:?}: expected RFC 3339, a date, Unix seconds or a duration such as 10m")
    };
    let nanos = |t: jiff::Timestamp| i64::try_from(t.as_nanosecond()).map_err(|_| bad());
    if let Some(duration) = crate::engine::parse_duration(text).filter(|_| text != "0") {
        let before = jiff::SignedDuration::from_nanos(i64::try_from(duration).map_err(|_| bad())?);
        return nanos(now.checked_sub(before).map_err(|_| bad())?);
    }
    if let Some((seconds, fraction)) = unix_time(text) {
        return seconds
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(fraction))
            .ok_or_else(bad);
    }
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return nanos(time);
    }
    // Without a zone, the local time, as Docker reads it.
    let local = text
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            text.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|_| bad())?;
    let zoned = local
        .to_zoned(jiff::tz::TimeZone::system())
        .map_err(|_| bad())?;
    nanos(zoned.timestamp())
}

/// `1714557600` or `1714557600.5`: seconds and nanoseconds.
fn unix_time(text: &str) -> Option<(i64, i64)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    Some((whole.parse().ok()?, nanos))
}

/// Docker's plain line: the local time with nanoseconds, type, action, actor and its
/// attributes.
fn plain_line(event: &LoggedEvent) -> String {
    let time = jiff::Timestamp::from_nanosecond(i128::from(event.time_nano))
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%dT%H:%M:%S.%f%:z")
                .to_string()
        })
        .unwrap_or_default();
    let mut line = format!("{time} {} {} {}", event.kind, event.action, event.actor.id);
    if !event.actor.attributes.is_empty() {
        let attributes: Vec<String> = event
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        line.push_str(&format!(" ({})", attributes.join(", ")));
    }
    line
}

pub fn events(store_config: &StoreConfig, args: EventsArgs) -> Result<ExitCode> {
    let now = jiff::Timestamp::now();
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time(t, now))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| parse_time(t, now))
        .transpose()?;
    let mut filters = EventFilters::default();
    for text in &args.filter {
        filters.add(text)?;
    }
    let format = match args.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Format::parse("{{json .}}")?),
        Some(text) => Some(Format::parse(text)?),
    };
    let store = super::open_store(store_config)?;
    let request = EventsRequest {
        since,
        until,
        filters,
    };
    let mut failure = None;
    let mut stdout = std::io::stdout().lock();
    engine::events(&store, &request, &mut |event| {
        let line = match &format {
            None => plain_line(event),
            Some(format) => match serde_json::to_value(event)
                .map_err(anyhow::Error::from)
                .and_then(|json| format.render(&json))
            {
                Ok(line) => line,
                Err(err) => {
                    failure = Some(err);
                    return false;
                }
            },
        };
        // A reader that went away ends the command, as it ends `docker events`.
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_ok()
    })?;
    match failure {
        Some(err) => Err(err),
        None => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_docker_takes_them() {
        let now: jiff::Timestamp = "2024-05-01T10:00:00Z".parse().expect("a time");
        let at = |text: &str| parse_time(text, now).expect(text);
        let ten = 1_714_557_600_000_000_000i64;
        assert_eq!(at("2024-05-01T10:00:00Z"), ten);
        assert_eq!(at("2024-05-01T12:00:00+02:00"), ten);
        assert_eq!(at("1714557600"), ten);
        assert_eq!(at("1714557600.25"), ten + 250_000_000);
        assert_eq!(at("10m"), ten - 600_000_000_000);
        assert_eq!(at("1h30m"), ten - 5_400_000_000_000);
        assert_eq!(at("0"), 0);
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("10y", now).is_err());
        assert!(parse_time("1.2.3", now).is_err());
    }

    #[test]
    fn plain_lines_name_type_action_actor_and_attributes() {
        let attributes = [("name", "web"), ("image", "busybox")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let line = plain_line(&LoggedEvent::new("container", "start", "abc", attributes));
        assert!(
            line.ends_with(" container start abc (image=busybox, name=web)"),
            "{line}"
        );
    }
}
