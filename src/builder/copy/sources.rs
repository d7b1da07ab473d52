//! Which sources a COPY or ADD selects and where each goes in the image, with Docker's
//! rules: globs expanded in the source (`..` never leaves it), `.dockerignore` applied to
//! the context, a missing source an error unless a wildcard found nothing for it, several
//! sources only into a directory ending in `/`, a file onto `dest` itself unless `dest`
//! is a directory, a directory's contents (not itself) into `dest`, `--parents` keeping
//! its path, and `--exclude` on names. Nothing is read but metadata, so the
//! key walk and the layer writer share these decisions.

use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use super::super::context::{expand_sources, has_wildcards, IgnoreMatcher};
use super::super::view::resolve_in_root;
use super::{at, fetch, CopyError, CopyRequest, Source};
use crate::graph::CopySource;

/// What a step copies, in the order its sources name it.
pub(super) struct Selection {
    pub items: Vec<Selected>,
    /// `--exclude`, for the walks of directory sources.
    pub excludes: IgnoreMatcher,
}

/// One source after globbing, with its place in the image (an absolute path).
pub(super) enum Selected {
    /// A heredoc: `name` holding `content`.
    Text {
        name: String,
        content: String,
        target: String,
    },
    /// A URL fetched into the scratch directory.
    Download {
        name: String,
        file: PathBuf,
        mtime: i64,
        target: String,
    },
    /// A directory: what it holds goes under `target`.
    Directory {
        relative: String,
        path: PathBuf,
        target: String,
    },
    /// A file, link or device at `target`; `dest` is the destination directory an ADDed
    /// archive is unpacked into.
    Entry {
        relative: String,
        path: PathBuf,
        meta: Metadata,
        target: String,
        dest: String,
    },
}

/// A path found under the source root, before its destination is known.
enum Found {
    Text { name: String, content: String },
    Download(fetch::Downloaded),
    Path(String),
}

pub(super) fn select(request: &CopyRequest<'_>) -> Result<Selection, CopyError> {
    let step = request.step;
    let root = source_root(request);
    let mut found = Vec::new();
    for source in &step.sources {
        match source {
            CopySource::Heredoc { name, content } => found.push(Found::Text {
                name: name.clone(),
                content: content.clone(),
            }),
            CopySource::Url(url) => found.push(Found::Download(fetch::download(request, url)?)),
            CopySource::Path(pattern) => {
                let mut any = false;
                for relative in expand_sources(&root, pattern)? {
                    if let Source::Context(context) = request.source {
                        if !relative.is_empty() && context.ignore.excludes(&relative) {
                            continue;
                        }
                    }
                    let resolved = resolve_in_root(&root, &relative, true);
                    if fs::symlink_metadata(&resolved).is_err() {
                        if has_wildcards(pattern) {
                            continue;
                        }
                        return Err(not_found(request, pattern));
                    }
                    any = true;
                    found.push(Found::Path(relative));
                }
                if !any {
                    return Err(not_found(request, pattern));
                }
            }
        }
    }
    let several = found.len() > 1;
    if several && !step.dest.ends_with('/') {
        return Err(CopyError::SeveralSourcesNeedDirectory {
            instruction: if step.add { "ADD" } else { "COPY" },
        });
    }
    let dest = match step.dest.trim_end_matches('/') {
        "" => "/".to_string(),
        dest => dest.to_string(),
    };
    let excludes = IgnoreMatcher::from_patterns(&step.excludes)?;
    let mut items = Vec::with_capacity(found.len());
    for one in found {
        let item = match one {
            Found::Text { name, content } => Selected::Text {
                target: file_target(request, &dest, &name, several),
                name,
                content,
            },
            Found::Download(download) => Selected::Download {
                target: file_target(request, &dest, &download.name, several),
                name: download.name,
                file: download.file,
                mtime: download.mtime,
            },
            Found::Path(relative) => {
                let path = resolve_in_root(&root, &relative, true);
                let meta = fs::symlink_metadata(&path).map_err(at(&path))?;
                let base_name = Path::new(&relative)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !relative.is_empty() && excludes.excludes(&base_name) {
                    continue;
                }
                let parents_target = || {
                    let kept = match relative.split_once("/./") {
                        Some((_, after)) => after,
                        None => relative.as_str(),
                    };
                    format!("{}/{kept}", dest.trim_end_matches('/'))
                };
                if meta.is_dir() {
                    let target = if step.parents && !relative.is_empty() {
                        parents_target()
                    } else {
                        dest.clone()
                    };
                    Selected::Directory {
                        relative,
                        path,
                        target,
                    }
                } else {
                    let target = if step.parents {
                        parents_target()
                    } else {
                        file_target(request, &dest, &base_name, several)
                    };
                    Selected::Entry {
                        relative,
                        path,
                        meta,
                        target,
                        dest: dest.clone(),
                    }
                }
            }
        };
        items.push(item);
    }
    Ok(Selection { items, excludes })
}

pub(super) fn source_root(request: &CopyRequest<'_>) -> PathBuf {
    match request.source {
        Source::Context(context) => context.root.clone(),
        Source::Root(root) => root.to_path_buf(),
    }
}

fn not_found(request: &CopyRequest<'_>, pattern: &str) -> CopyError {
    let pattern = pattern.to_string();
    match request.source {
        Source::Context(_) => CopyError::NotInContext { pattern },
        Source::Root(_) => CopyError::NotInSource { pattern },
    }
}

/// Where a single file named `name` goes.
fn file_target(request: &CopyRequest<'_>, dest: &str, name: &str, several: bool) -> String {
    let into_dir = request.step.dest.ends_with('/') || several || is_dir_in_image(request, dest);
    if into_dir {
        format!("{}/{name}", dest.trim_end_matches('/'))
    } else {
        dest.to_string()
    }
}

pub(super) fn is_dir_in_image(request: &CopyRequest<'_>, path: &str) -> bool {
    request
        .dest_root
        .is_some_and(|root| resolve_in_root(root, path, true).is_dir())
}

#[cfg(test)]
mod tests {
    use super::super::super::context::BuildContext;
    use super::*;
    use crate::graph::CopyStep;
    use crate::layers::ExtractLimits;

    fn step(sources: &[&str], dest: &str) -> CopyStep {
        let sources = sources
            .iter()
            .map(|s| CopySource::Path(s.to_string()))
            .collect();
        crate::builder::plan::plain_copy(sources, dest, None)
    }

    /// A context with `a.txt`, `b.txt`, `src/app/main.rs`, `src/app/lib.rs`, `secret`
    /// (ignored), and an image with `/opt` a directory.
    struct Fixture {
        context: tempfile::TempDir,
        image: tempfile::TempDir,
        scratch: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let context = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("src/app/main.rs", "fn main() {}"),
            ("src/app/lib.rs", ""),
            ("secret", "s"),
        ] {
            let path = context.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        fs::write(context.path().join(".dockerignore"), "secret\n").unwrap();
        let image = tempfile::tempdir().unwrap();
        fs::create_dir(image.path().join("opt")).unwrap();
        Fixture {
            context,
            image,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    /// The targets `step` selects, as `relative -> target` (`dir` for directories).
    fn targets(fixture: &Fixture, step: &CopyStep) -> Result<Vec<String>, CopyError> {
        let context = BuildContext::open(fixture.context.path(), None).unwrap();
        let limits = ExtractLimits::default();
        let request = CopyRequest {
            step,
            source: Source::Context(&context),
            dest_root: Some(fixture.image.path()),
            source_date_epoch: None,
            now: 0,
            scratch: fixture.scratch.path(),
            extract_limits: &limits,
            hasher: None,
        };
        Ok(select(&request)?
            .items
            .into_iter()
            .map(|item| match item {
                Selected::Text { name, target, .. } => format!("<<{name} -> {target}"),
                Selected::Download { name, target, .. } => format!("{name} -> {target}"),
                Selected::Directory {
                    relative, target, ..
                } => format!("dir {relative} -> {target}"),
                Selected::Entry {
                    relative, target, ..
                } => format!("{relative} -> {target}"),
            })
            .collect())
    }

    fn check(fixture: &Fixture, step: &CopyStep, expected: &[&str]) {
        assert_eq!(targets(fixture, step).unwrap(), expected);
    }

    #[test]
    fn a_file_goes_onto_dest_unless_dest_is_a_directory() {
        let f = fixture();
        check(&f, &step(&["a.txt"], "/x"), &["a.txt -> /x"]);
        check(&f, &step(&["a.txt"], "/x/"), &["a.txt -> /x/a.txt"]);
        // An existing directory of the image takes the file under its own name.
        check(&f, &step(&["a.txt"], "/opt"), &["a.txt -> /opt/a.txt"]);
        check(&f, &step(&["a.txt"], "/"), &["a.txt -> /a.txt"]);
    }

    #[test]
    fn a_directory_copies_its_contents_and_parents_keep_the_path() {
        let f = fixture();
        check(&f, &step(&["src"], "/app"), &["dir src -> /app"]);
        let mut parents = step(&["src/*/main.rs", "src/app"], "/w/");
        parents.parents = true;
        check(
            &f,
            &parents,
            &[
                "src/app/main.rs -> /w/src/app/main.rs",
                "dir src/app -> /w/src/app",
            ],
        );
    }

    #[test]
    fn several_sources_need_a_directory_ending_in_a_slash() {
        let f = fixture();
        let error = targets(&f, &step(&["*.txt"], "/x")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "when using COPY with more than one source file, the destination must be a directory and end with a /"
        );
        check(
            &f,
            &step(&["*.txt"], "/x/"),
            &["a.txt -> /x/a.txt", "b.txt -> /x/b.txt"],
        );
        // One match of a wildcard is one source.
        check(&f, &step(&["a*"], "/x"), &["a.txt -> /x"]);
    }

    #[test]
    fn missing_and_ignored_sources_are_errors_unless_a_wildcard_finds_others() {
        let f = fixture();
        for missing in ["nothing", "secret", "*.rs"] {
            let error = targets(&f, &step(&[missing], "/x")).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "{missing}: file not found in the build context or excluded by .dockerignore"
                )
            );
        }
        check(
            &f,
            &step(&["*.txt", "src/*/main.rs"], "/x/"),
            &[
                "a.txt -> /x/a.txt",
                "b.txt -> /x/b.txt",
                "src/app/main.rs -> /x/main.rs",
            ],
        );
        // `..` stays in the context.
        check(&f, &step(&["../../a.txt"], "/x"), &["a.txt -> /x"]);
    }

    #[test]
    fn exclude_leaves_out_names_and_heredocs_are_files() {
        let f = fixture();
        let mut excluded = step(&["*.txt"], "/x/");
        excluded.excludes = vec!["b.*".into()];
        check(&f, &excluded, &["a.txt -> /x/a.txt"]);
        let mut heredoc = step(&[], "/etc/");
        heredoc.sources = vec![CopySource::Heredoc {
            name: "motd".into(),
            content: "hello\n".into(),
        }];
        check(&f, &heredoc, &["<<motd -> /etc/motd"]);
        let mut bad = step(&["a.txt"], "/x");
        bad.excludes = vec!["[".into()];
        assert!(targets(&f, &bad)
            .unwrap_err()
            .to_string()
            .starts_with("--exclude=["));
    }
}
