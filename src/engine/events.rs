//! `lade events`: the events the store's log keeps from `since`, then (as Docker's
//! `docker events` does) those that happen while it watches, until `until` or until its
//! writer stops taking them. The log is read by polling every 100 ms (see
//! `store::events` for why).

use std::time::Duration;

use super::EngineError;
use crate::store::events::{past_events, Event, Follower};
use crate::store::Store;

/// How often a follower looks for new events.
const POLL: Duration = Duration::from_millis(100);

/// What `lade events` asks for; times in nanoseconds since the epoch.
#[derive(Debug, Clone, Default)]
pub struct EventsRequest {
    /// Past events from this time on; without it (and without `until`), only events
    /// from now on.
    pub since: Option<i64>,
    /// Stop at this time (at once when it has passed).
    pub until: Option<i64>,
    pub filters: EventFilters,
}

/// `--filter KEY=VALUE`: values of one key match if any matches, and every key given
/// must match, as Docker combines them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilters {
    pub types: Vec<String>,
    pub events: Vec<String>,
    pub containers: Vec<String>,
    pub images: Vec<String>,
    /// `KEY` or `KEY=VALUE` of the actor's attributes.
    pub labels: Vec<(String, Option<String>)>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

/// A filter of `docker events` that lade does not know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid --filter {0:?}: lade knows type, event, container, image, label, network, volume")]
pub struct UnknownFilter(pub String);

impl EventFilters {
    /// Adds one `KEY=VALUE`.
    pub fn add(&mut self, text: &str) -> Result<(), UnknownFilter> {
        let unknown = || UnknownFilter(text.to_string());
        let (key, value) = text.split_once('=').ok_or_else(unknown)?;
        let value = value.to_string();
        match key {
            "type" => self.types.push(value),
            "event" => self.events.push(value),
            "container" => self.containers.push(value),
            "image" => self.images.push(value),
            "label" => self.labels.push(match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value, None),
            }),
            "network" => self.networks.push(value),
            "volume" => self.volumes.push(value),
            _ => return Err(unknown()),
        }
        Ok(())
    }

    /// Whether `event` passes every filter given.
    pub fn matches(&self, event: &Event) -> bool {
        let attribute = |key: &str| event.actor.attributes.get(key).map(String::as_str);
        let any = |values: &[String], test: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| test(v))
        };
        let of_kind = |kind: &str, value: &str| {
            event.kind == kind && (event.actor.id == value || attribute("name") == Some(value))
        };
        any(&self.types, &|t| event.kind == t)
            && any(&self.events, &|e| {
                // Docker matches `health_status` (and the exec events) on their prefix:
                // the action carries the status after a colon.
                event.action == e
                    || (matches!(e, "health_status" | "exec_create" | "exec_start")
                        && event.action.starts_with(e))
            })
            && any(&self.containers, &|c| {
                (event.kind == "container" && c.len() >= 4 && event.actor.id.starts_with(c))
                    || of_kind("container", c)
                    || attribute("container") == Some(c)
            })
            && any(&self.images, &|i| {
                let plain = |name: &'_ str| -> String {
                    name.strip_suffix(":latest").unwrap_or(name).to_string()
                };
                let same = |name: &str| plain(name) == plain(i);
                attribute("image").is_some_and(same)
                    || (event.kind == "image" && same(&event.actor.id))
            })
            && self.labels.iter().all(|(key, value)| match value {
                Some(value) => attribute(key) == Some(value.as_str()),
                None => attribute(key).is_some(),
            })
            && any(&self.networks, &|n| of_kind("network", n))
            && any(&self.volumes, &|v| of_kind("volume", v))
    }
}

/// Gives `out` the events asked for, oldest first, until `until` (or for ever without
/// it), or until `out` returns false (its reader is gone).
pub fn events(
    store: &Store,
    request: &EventsRequest,
    out: &mut dyn FnMut(&Event) -> bool,
) -> Result<(), EngineError> {
    let now = || i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX);
    let until = request.until.unwrap_or(i64::MAX);
    let wanted = |event: &Event| {
        event.time_nano <= until
            && request.since.is_none_or(|since| event.time_nano >= since)
            && request.filters.matches(event)
    };
    // Following starts before the past is read, so nothing that happens in between is
    // lost; what the past already gave is not given twice.
    let mut follower = Follower::at_end(store)?;
    let mut given_up_to = i64::MIN;
    if request.since.is_some() || request.until.is_some() {
        for event in past_events(store)? {
            given_up_to = given_up_to.max(event.time_nano);
            if wanted(&event) && !out(&event) {
                return Ok(());
            }
        }
    }
    loop {
        if now() > until {
            return Ok(());
        }
        for event in follower.read_new()? {
            if event.time_nano <= given_up_to {
                continue;
            }
            if event.time_nano > until {
                return Ok(());
            }
            if wanted(&event) && !out(&event) {
                return Ok(());
            }
        }
        let left = Duration::from_nanos(u64::try_from(until.saturating_sub(now())).unwrap_or(0));
        std::thread::sleep(POLL.min(left.max(Duration::from_millis(1))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn event(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        let attributes: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Event::new(kind, action, id, attributes)
    }

    fn filters(texts: &[&str]) -> EventFilters {
        let mut filters = EventFilters::default();
        for text in texts {
            filters.add(text).expect("a known filter");
        }
        filters
    }

    #[test]
    fn filters_combine_as_dockers() {
        let die = event(
            "container",
            "die",
            "0123456789abcdef",
            &[("name", "web"), ("image", "busybox"), ("tier", "front")],
        );
        assert!(filters(&[]).matches(&die));
        assert!(filters(&["type=container", "event=start", "event=die"]).matches(&die));
        assert!(!filters(&["type=image"]).matches(&die));
        assert!(filters(&["container=web"]).matches(&die));
        assert!(filters(&["container=0123"]).matches(&die));
        assert!(!filters(&["container=db"]).matches(&die));
        assert!(filters(&["image=busybox"]).matches(&die));
        assert!(filters(&["image=busybox:latest"]).matches(&die));
        assert!(!filters(&["image=alpine"]).matches(&die));
        assert!(filters(&["label=tier", "label=tier=front"]).matches(&die));
        assert!(!filters(&["label=tier=back"]).matches(&die));
        let health = event("container", "health_status: healthy", "ab", &[]);
        assert!(filters(&["event=health_status"]).matches(&health));
        assert!(filters(&["event=health_status: healthy"]).matches(&health));
        let tag = event(
            "image",
            "tag",
            "busybox:latest",
            &[("name", "busybox:latest")],
        );
        assert!(filters(&["image=busybox"]).matches(&tag));
        let net = event(
            "network",
            "connect",
            "n1",
            &[("name", "front"), ("container", "ab")],
        );
        assert!(filters(&["network=front", "container=ab"]).matches(&net));
        assert_eq!(
            EventFilters::default().add("colour=red"),
            Err(UnknownFilter("colour=red".into()))
        );
        assert!(EventFilters::default().add("type").is_err());
    }
}
