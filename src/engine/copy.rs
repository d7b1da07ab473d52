//! A container's files seen from outside: `cp` (between it and the host or a tar
//! stream), `export` (its whole root file system as a tar) and `diff` (what it changed).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{EngineError, Result};
use crate::container::{self, CopyEnd, CopyOptions};
use crate::store::Store;

/// What `lade cp` is asked for: checked by [`CopyRequest::new`], so that exactly one
/// end is in a container.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    from: CopyEnd,
    to: CopyEnd,
    options: CopyOptions,
}

impl CopyRequest {
    /// `source` and `destination` as Docker reads them: `CONTAINER:PATH`, `-` for a tar
    /// stream, or a host path. `archive` keeps owners; `follow_link` follows a symlink
    /// named as the source.
    pub fn new(
        source: &str,
        destination: &str,
        archive: bool,
        follow_link: bool,
    ) -> Result<CopyRequest> {
        let from = CopyEnd::parse(source);
        let to = CopyEnd::parse(destination);
        let in_container = |end: &CopyEnd| matches!(end, CopyEnd::Container { .. });
        if in_container(&from) == in_container(&to) {
            return Err(EngineError::CopyNeedsContainer);
        }
        Ok(CopyRequest {
            from,
            to,
            options: CopyOptions {
                archive,
                follow_link,
            },
        })
    }

    /// Whether the copy writes a tar stream to the caller's output.
    pub fn writes_stream(&self) -> bool {
        self.to == CopyEnd::Stream
    }
}

/// `lade cp`: `input` is read when the source is `-`, `output` written when the
/// destination is.
pub fn copy(
    store: &Store,
    request: &CopyRequest,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<()> {
    container::copy(
        store,
        &request.from,
        &request.to,
        request.options,
        input,
        output,
    )?;
    Ok(())
}

/// `lade export`.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub container: String,
    /// `-o`: the archive is written there (else to the caller's output).
    pub output: Option<PathBuf>,
}

/// `lade export`: the container's root file system as a tar, to the file asked for
/// (whole or not at all) or else to `stream`.
pub fn export(store: &Store, request: &ExportRequest, stream: &mut dyn Write) -> Result<()> {
    match &request.output {
        Some(path) => export_to_file(store, &request.container, path),
        None => Ok(container::export(store, &request.container, stream)?),
    }
}

/// Written beside, renamed into place: no half-written archive is left on failure.
fn export_to_file(store: &Store, reference: &str, path: &Path) -> Result<()> {
    let tmp = path.with_extension("part");
    let failed = |source| EngineError::Output {
        path: tmp.clone(),
        source,
    };
    let file = std::fs::File::create(&tmp).map_err(failed)?;
    let mut file = std::io::BufWriter::new(file);
    let written = container::export(store, reference, &mut file)
        .map_err(EngineError::from)
        .and_then(|()| file.flush().map_err(failed));
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|source| EngineError::Output {
        path: path.to_path_buf(),
        source,
    })
}

/// One line of `lade diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `A` added, `C` changed, `D` deleted.
    pub kind: char,
    /// Absolute, in the container.
    pub path: String,
}

/// `lade diff`: what the container changed on its image, by path.
pub fn diff(store: &Store, reference: &str) -> Result<Vec<Change>> {
    Ok(container::diff(store, reference)?
        .into_iter()
        .map(|(kind, path)| Change { kind, path })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_has_one_end_in_a_container() {
        let request = CopyRequest::new("web:/etc/hosts", "-", false, false).unwrap();
        assert!(request.writes_stream());
        assert!(!CopyRequest::new("./a", "web:/", true, false)
            .unwrap()
            .writes_stream());
        for (from, to) in [("a", "b"), ("-", "/tmp/x"), ("web:/a", "db:/b")] {
            assert!(matches!(
                CopyRequest::new(from, to, false, false),
                Err(EngineError::CopyNeedsContainer)
            ));
        }
    }
}
