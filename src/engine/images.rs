//! `lade images`: the store's images as the user sees them, with Docker's filters
//! (`reference` with Go's path patterns, `dangling`, `label`, `before`, `since`) and the
//! intermediate ones `-a` adds.

use std::collections::{BTreeMap, BTreeSet};

use super::{EngineError, Result};
use crate::oci::{Digest, ImageRef, ReferenceError};
use crate::store::{Image, ImageSummary, Store};

/// `images REPOSITORY[:TAG]`: the images of a repository, of one tag when one is given.
#[derive(Debug, Clone)]
pub struct ImageFilter {
    reference: ImageRef,
    with_tag: bool,
}

impl ImageFilter {
    pub fn parse(text: &str) -> std::result::Result<ImageFilter, ReferenceError> {
        let reference = text.parse::<ImageRef>()?;
        // A tag is given when the last path component has one: the colon of
        // `HOST:PORT/REPO` is a port's.
        let last = text.rsplit('/').next().unwrap_or(text);
        let with_tag = last.contains(':') && !last.ends_with(':');
        Ok(ImageFilter {
            reference,
            with_tag,
        })
    }

    fn admits(&self, tag: Option<&str>) -> bool {
        tag.and_then(|t| t.parse::<ImageRef>().ok())
            .is_some_and(|r| {
                r.familiar_repository() == self.reference.familiar_repository()
                    && (!self.with_tag || r.tag() == self.reference.tag())
            })
    }
}

/// One `images --filter`, as Docker's daemon reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImagesFilter {
    /// `dangling=true`: only images no tag names; `false`: only named ones.
    Dangling(bool),
    /// `label=KEY` (any value) or `label=KEY=VALUE`, of the image's config.
    Label(String, Option<String>),
    /// Made before the image this names was.
    Before(String),
    /// Made after the image this names was.
    Since(String),
    /// Tags matching this pattern (Go's `path.Match`, against `name:tag` or `name`).
    Reference(String),
}

impl ImagesFilter {
    pub fn parse(text: &str) -> Result<ImagesFilter> {
        let bad = |expected: &str| EngineError::BadValue {
            what: "--filter",
            value: text.to_string(),
            expected: expected.to_string(),
        };
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE"))?;
        Ok(match key {
            "dangling" => match value.to_ascii_lowercase().as_str() {
                "true" | "1" => ImagesFilter::Dangling(true),
                "false" | "0" => ImagesFilter::Dangling(false),
                _ => return Err(bad("dangling is true or false")),
            },
            "label" => match value.split_once('=') {
                Some((k, v)) => ImagesFilter::Label(k.into(), Some(v.into())),
                None => ImagesFilter::Label(value.into(), None),
            },
            "before" => ImagesFilter::Before(value.into()),
            "since" => ImagesFilter::Since(value.into()),
            "reference" => ImagesFilter::Reference(value.into()),
            other => {
                return Err(bad(&format!(
                    "lade knows dangling, label, before, since, reference (not {other})"
                )))
            }
        })
    }
}

/// What `lade images` is asked for.
#[derive(Debug, Clone, Default)]
pub struct ImagesRequest {
    /// `REPOSITORY[:TAG]`.
    pub repository: Option<ImageFilter>,
    /// `-a`: intermediate images too.
    pub all: bool,
    pub filters: Vec<ImagesFilter>,
    /// Each row's registry digest too.
    pub digests: bool,
}

/// A row of `lade images`: one per tag, and one per untagged image.
#[derive(Debug, Clone)]
pub struct ListedImage {
    pub id: Digest,
    /// REPOSITORY and TAG, `<none>` for an image no tag names.
    pub repository: String,
    pub tag: String,
    pub manifest_digest: Digest,
    /// What the registry of this row's repository calls the image, when asked for.
    pub repo_digest: Option<Digest>,
    pub created: Option<String>,
    pub size: u64,
    /// A tag naming a multi-platform image: the platforms the store holds of it (the
    /// row's id, size and time are this machine's image's, else the first's).
    pub platforms: Vec<String>,
}

/// `lade images`.
pub fn images(store: &Store, request: &ImagesRequest) -> Result<Vec<ListedImage>> {
    let mut summaries = store.list_images()?;
    if let Some(filter) = &request.repository {
        summaries.retain(|s| filter.admits(s.tag.as_deref()));
    }
    if !request.all {
        let intermediate = intermediate_images(store, &summaries)?;
        summaries.retain(|s| !intermediate.contains(&s.id));
    }
    let selection = Selection::new(store, &request.filters)?;
    let mut images: BTreeMap<Digest, Option<Image>> = BTreeMap::new();
    let mut kept = Vec::with_capacity(summaries.len());
    for summary in summaries {
        let image = match images.get(&summary.id) {
            Some(image) => image.clone(),
            None if selection.needs_config() => {
                let image = store.image(&summary.id.to_string())?;
                images.insert(summary.id, Some(image.clone()));
                Some(image)
            }
            None => None,
        };
        if selection.admits(&summary, image.as_ref()) {
            kept.push(summary);
        }
    }
    Ok(kept
        .into_iter()
        .map(|s| {
            let repo_digest = request.digests.then(|| repo_digest(store, &s)).flatten();
            let (repository, tag) = repository_and_tag(s.tag.as_deref());
            ListedImage {
                id: s.id,
                repository,
                tag,
                manifest_digest: s.manifest_digest,
                repo_digest,
                created: s.created,
                size: s.size,
                platforms: s.index.map(|(_, platforms)| platforms).unwrap_or_default(),
            }
        })
        .collect())
}

/// Untagged images another image is built on (Docker's images with children, which
/// `images` hides without `-a`): their layers begin another image's layers.
fn intermediate_images(store: &Store, summaries: &[ImageSummary]) -> Result<BTreeSet<Digest>> {
    let untagged: BTreeSet<Digest> = summaries
        .iter()
        .filter(|s| s.tag.is_none())
        .map(|s| s.id)
        .collect();
    if untagged.is_empty() {
        return Ok(BTreeSet::new());
    }
    let ids: BTreeSet<Digest> = summaries.iter().map(|s| s.id).collect();
    let mut chains: Vec<(Digest, Vec<Digest>)> = Vec::with_capacity(ids.len());
    for id in ids {
        let image = store.image(&id.to_string())?;
        chains.push((id, image.config.rootfs.diff_ids.clone()));
    }
    Ok(chains
        .iter()
        .filter(|(id, _)| untagged.contains(id))
        .filter(|(id, parent)| {
            !parent.is_empty()
                && chains.iter().any(|(other, child)| {
                    other != id && child.len() > parent.len() && child.starts_with(parent)
                })
        })
        .map(|(id, _)| *id)
        .collect())
}

/// The filters of one `images`, with the times `before` and `since` name.
struct Selection<'a> {
    filters: &'a [ImagesFilter],
    /// Made before this (the earliest `before` image's time).
    before: Option<jiff::Timestamp>,
    /// Made after this (the latest `since` image's time).
    since: Option<jiff::Timestamp>,
}

impl<'a> Selection<'a> {
    fn new(store: &Store, filters: &'a [ImagesFilter]) -> Result<Selection<'a>> {
        let created = |reference: &str| -> Result<Option<jiff::Timestamp>> {
            let image = store.image(reference)?;
            Ok(image.config.created.as_deref().and_then(|c| c.parse().ok()))
        };
        let mut before = None;
        let mut since = None;
        for filter in filters {
            match filter {
                ImagesFilter::Before(reference) => {
                    if let Some(time) = created(reference)? {
                        before = Some(before.map_or(time, |b: jiff::Timestamp| b.min(time)));
                    }
                }
                ImagesFilter::Since(reference) => {
                    if let Some(time) = created(reference)? {
                        since = Some(since.map_or(time, |s: jiff::Timestamp| s.max(time)));
                    }
                }
                _ => {}
            }
        }
        Ok(Selection {
            filters,
            before,
            since,
        })
    }

    fn needs_config(&self) -> bool {
        self.filters
            .iter()
            .any(|f| matches!(f, ImagesFilter::Label(..)))
    }

    fn admits(&self, summary: &ImageSummary, image: Option<&Image>) -> bool {
        let created = summary
            .created
            .as_deref()
            .and_then(|c| c.parse::<jiff::Timestamp>().ok());
        if let Some(before) = self.before {
            if created.is_none_or(|c| c >= before) {
                return false;
            }
        }
        if let Some(since) = self.since {
            if created.is_none_or(|c| c <= since) {
                return false;
            }
        }
        let references: Vec<&str> = self
            .filters
            .iter()
            .filter_map(|f| match f {
                ImagesFilter::Reference(pattern) => Some(pattern.as_str()),
                _ => None,
            })
            .collect();
        if !references.is_empty() {
            let Some(tag) = summary.tag.as_deref() else {
                return false;
            };
            if !references
                .iter()
                .any(|pattern| reference_matches(pattern, tag))
            {
                return false;
            }
        }
        let labels = image.and_then(|i| i.config.config.labels.as_ref());
        self.filters.iter().all(|filter| match filter {
            ImagesFilter::Dangling(dangling) => summary.tag.is_none() == *dangling,
            ImagesFilter::Label(key, value) => labels
                .and_then(|l| l.get(key))
                .is_some_and(|v| value.as_ref().is_none_or(|want| want == v)),
            _ => true,
        })
    }
}

/// Docker's `reference.FamiliarMatch`: the pattern against `name:tag`, else `name`.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let Ok(reference) = tag.parse::<ImageRef>() else {
        return go_path_match(pattern, tag);
    };
    let name = reference.familiar_repository();
    let full = match reference.tag() {
        Some(t) => format!("{name}:{t}"),
        None => name.clone(),
    };
    go_path_match(pattern, &full) || go_path_match(pattern, &name)
}

/// Go's `path.Match`: `*` is any run of characters but `/`, `?` one of them, `[a-z]`
/// and `[^a-z]` a class, `\` quotes the next character. A malformed pattern matches
/// nothing.
fn go_path_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some('*') => {
            let rest = &pattern[1..];
            (0..=name.len())
                .take_while(|&i| i == 0 || name[i - 1] != '/')
                .any(|i| match_from(rest, &name[i..]))
        }
        Some(_) => {
            let Some((&c, tail)) = name.split_first() else {
                return false;
            };
            match single(pattern, c) {
                Some((true, used)) => match_from(&pattern[used..], tail),
                _ => false,
            }
        }
    }
}

/// Whether the pattern's first element (not `*`) takes `c`, and its length.
fn single(pattern: &[char], c: char) -> Option<(bool, usize)> {
    match pattern[0] {
        '?' => Some((c != '/', 1)),
        '\\' => pattern.get(1).map(|&q| (q == c, 2)),
        '[' => {
            let mut i = 1;
            let negated = pattern.get(i) == Some(&'^');
            if negated {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            loop {
                let &lo = pattern.get(i)?;
                if lo == ']' && !first {
                    i += 1;
                    break;
                }
                first = false;
                let lo = if lo == '\\' {
                    i += 1;
                    *pattern.get(i)?
                } else {
                    lo
                };
                i += 1;
                let mut hi = lo;
                if pattern.get(i) == Some(&'-') && pattern.get(i + 1).is_some_and(|&h| h != ']') {
                    hi = *pattern.get(i + 1)?;
                    i += 2;
                    if hi == '\\' {
                        hi = *pattern.get(i)?;
                        i += 1;
                    }
                }
                if lo <= c && c <= hi {
                    matched = true;
                }
            }
            Some((matched != negated && c != '/', i))
        }
        other => Some((other == c, 1)),
    }
}

/// The digest the registry of the row's repository gave its image, if any did.
fn repo_digest(store: &Store, summary: &ImageSummary) -> Option<Digest> {
    let repository = summary
        .tag
        .as_deref()
        .and_then(|t| t.parse::<ImageRef>().ok())
        .map(|r| format!("{}/{}", r.registry(), r.repository()));
    store
        .repo_digests(&summary.manifest_digest)
        .ok()?
        .into_iter()
        .find(|(r, _)| repository.as_deref().is_none_or(|want| want == r))
        .map(|(_, d)| d)
}

fn repository_and_tag(tag: Option<&str>) -> (String, String) {
    let Some(name) = tag else {
        return ("<none>".into(), "<none>".into());
    };
    match name.parse::<ImageRef>() {
        Ok(r) => (
            r.familiar_repository(),
            r.tag().unwrap_or("<none>").to_string(),
        ),
        Err(_) => (name.to_string(), "<none>".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_has_a_tag_only_when_its_last_component_does() {
        let repo = ImageFilter::parse("localhost:5000/app").unwrap();
        assert!(repo.admits(Some("localhost:5000/app:1")));
        assert!(repo.admits(Some("localhost:5000/app:2")));
        assert!(!repo.admits(None));
        let one = ImageFilter::parse("busybox:1").unwrap();
        assert!(one.admits(Some("docker.io/library/busybox:1")));
        assert!(!one.admits(Some("busybox:2")));
    }

    #[test]
    fn reference_patterns_are_go_path_patterns() {
        assert!(reference_matches(
            "busy*",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("busybox:1*", "busybox:latest"));
        assert!(!reference_matches("*", "localhost:5000/team/app:1"));
        assert!(reference_matches("*/*/app", "localhost:5000/team/app:1"));
        assert!(reference_matches("[a-c]pp:?", "app:1"));
        assert!(!reference_matches("[^a-c]pp", "app:1"));
        assert!(!reference_matches("[a-", "app:1"));
    }

    #[test]
    fn filters_parse_as_docker_names_them() {
        assert_eq!(
            ImagesFilter::parse("dangling=true").unwrap(),
            ImagesFilter::Dangling(true)
        );
        assert_eq!(
            ImagesFilter::parse("label=a=b").unwrap(),
            ImagesFilter::Label("a".into(), Some("b".into()))
        );
        assert!(ImagesFilter::parse("dangling=maybe").is_err());
        assert!(ImagesFilter::parse("colour=red").is_err());
    }

    #[test]
    fn untagged_images_show_none() {
        assert_eq!(
            repository_and_tag(None),
            ("<none>".to_string(), "<none>".to_string())
        );
        assert_eq!(
            repository_and_tag(Some("docker.io/library/busybox:1")),
            ("busybox".to_string(), "1".to_string())
        );
    }
}
