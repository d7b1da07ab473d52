//! `lade cache`: what the build cache holds (its records, what went into the key of a
//! step or of every step of a built image, the space it takes by kind) and pruning it.

use serde_json::Value;

use super::{EngineError, Result};
use crate::store::{CacheRecord, CacheUsage, PruneOptions, PruneReport, Store};

/// `lade cache ls`: every record, most recently used first.
pub fn cache_records(store: &Store) -> Result<Vec<CacheRecord>> {
    Ok(store.cache_records()?)
}

/// `lade cache du`.
pub fn cache_usage(store: &Store) -> Result<CacheUsage> {
    Ok(store.cache_usage()?)
}

/// A step of an image lade built, and its cache record.
#[derive(Debug, Clone)]
pub struct CachedStep {
    /// The step list's own entry (its stage and step as shown).
    pub stage: Value,
    pub step: Value,
    /// `None` for a step that only changes the config: never cached.
    pub key: Option<String>,
    /// `None` once pruned (or for a config-only step).
    pub record: Option<CacheRecord>,
}

/// What `lade cache inspect` found.
#[derive(Debug, Clone)]
pub enum CacheInspection {
    /// The one record whose key starts so.
    Record(CacheRecord),
    /// An image lade built in this store, and its steps.
    Image {
        id: String,
        tags: Vec<String>,
        steps: Vec<CachedStep>,
    },
}

/// `lade cache inspect`: `target` is a key (or the start of one, 4 hex digits at least)
/// or else an image.
pub fn cache_inspect(store: &Store, target: &str) -> Result<CacheInspection> {
    let target = target.trim();
    let hex_like = target.len() >= 4 && target.chars().all(|c| c.is_ascii_hexdigit());
    if hex_like {
        let mut records = store.cache_records_by_prefix(&target.to_ascii_lowercase())?;
        match records.len() {
            0 => {}
            1 => return Ok(CacheInspection::Record(records.remove(0))),
            count => {
                return Err(EngineError::AmbiguousKey {
                    prefix: target.to_string(),
                    count,
                })
            }
        }
    }
    let image = store
        .image(target)
        .map_err(|source| EngineError::NotKeyNorImage {
            target: target.to_string(),
            source,
        })?;
    let Some(steps) = store.built_image(&image.id)? else {
        return Err(EngineError::NotBuiltHere(image.id.short()));
    };
    let steps: Vec<Value> = serde_json::from_str(&steps).map_err(EngineError::StepList)?;
    let mut out = Vec::new();
    for step in steps {
        let key = step["key"].as_str().map(str::to_string);
        let record = match &key {
            Some(key) => store.cache_record_full(key)?,
            None => None,
        };
        out.push(CachedStep {
            stage: step["stage"].clone(),
            step: step["step"].clone(),
            key,
            record,
        });
    }
    Ok(CacheInspection::Image {
        id: image.id.to_string(),
        tags: image.tags,
        steps: out,
    })
}

/// What `lade cache prune` is asked for.
#[derive(Debug, Clone, Default)]
pub struct CachePruneRequest {
    /// Every record, used by an image or not, the cache mounts and the context hashes.
    pub all: bool,
    /// `until=DURATION`: only what was last used longer ago than so many seconds.
    pub unused_for: Option<i64>,
    /// Least recently used first until the cache takes no more than so many bytes.
    pub keep_storage: Option<u64>,
}

/// `lade cache prune`.
pub fn prune_cache(store: &Store, request: &CachePruneRequest) -> Result<PruneReport> {
    let options = PruneOptions {
        all: request.all,
        unused_since: request
            .unused_for
            .map(|seconds| jiff::Timestamp::now().as_second() - seconds),
        keep_storage: request.keep_storage,
    };
    Ok(store.prune_cache(&options)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ambiguous_or_unknown_target_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = cache_inspect(&store, "abcd").unwrap_err();
        assert!(matches!(err, EngineError::NotKeyNorImage { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("\"abcd\" is neither a cache key nor an image"));
        let usage = cache_usage(&store).unwrap();
        assert_eq!(usage.records, 0);
    }
}
