//! ADD's remote sources and archives: a URL fetched into the step's scratch directory
//! (bounded by the store's reserve of free space, checked against `--checksum`), and
//! whether a local file is a tar archive ADD unpacks.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{at, CopyError, CopyRequest};
use crate::layers;
use crate::oci::Digest;

/// How long ADD of a URL waits to connect, for the response headers, and for the
/// whole body.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const BODY_TIMEOUT: Duration = Duration::from_secs(3600);

/// A fetched URL.
pub(super) struct Downloaded {
    /// The file name the URL's path ends with (`index.html` when it ends in `/`).
    pub name: String,
    pub file: PathBuf,
    /// The server's `Last-Modified`, else the step's time.
    pub mtime: i64,
}

pub(super) fn download(request: &CopyRequest<'_>, url: &str) -> Result<Downloaded, CopyError> {
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .unwrap_or("index.html")
        .to_string();
    let file = request
        .scratch
        .join(format!("download-{}", Digest::of(url.as_bytes()).short()));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .timeout_recv_body(Some(BODY_TIMEOUT))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| CopyError::Download {
        url: url.into(),
        source: Box::new(e),
    })?;
    let reserve = request.extract_limits.reserve.unwrap_or(0);
    let no_room = |source| CopyError::NoRoom {
        url: url.into(),
        source: Box::new(source),
    };
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    layers::check_room(request.scratch, declared, reserve, url).map_err(no_room)?;
    let mtime = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
        .map(|z| z.timestamp().as_second())
        .unwrap_or(request.now);
    let mut body = response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader();
    let mut out = File::create(&file).map_err(at(&file))?;
    let mut hashing = crate::oci::Sha256Writer::new(&mut out);
    // The body is bounded by the store's reserve of free space, looked at again every
    // few megabytes, whatever the server declared.
    let mut chunk = vec![0u8; 1 << 16];
    let mut since_check: u64 = 0;
    loop {
        let n = body
            .read(&mut chunk)
            .map_err(|source| CopyError::DownloadCut {
                url: url.into(),
                source,
            })?;
        if n == 0 {
            break;
        }
        since_check += n as u64;
        if since_check >= 64 << 20 {
            since_check = 0;
            layers::check_room(request.scratch, 0, reserve, url).map_err(no_room)?;
        }
        hashing.write_all(&chunk[..n]).map_err(at(&file))?;
    }
    let (digest, _, _) = hashing.finish();
    out.flush().map_err(at(&file))?;
    if let Some(expected) = &request.step.checksum {
        if digest.to_string() != *expected {
            return Err(CopyError::Checksum {
                url: url.into(),
                expected: expected.clone(),
                actual: digest.to_string(),
            });
        }
    }
    Ok(Downloaded { name, file, mtime })
}

/// Whether a file is a tar archive, compressed or not (ADD unpacks those).
pub(super) fn is_archive(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(mut reader) = layers::decompressing_reader(file) else {
        return false;
    };
    let mut header = [0u8; 512];
    if reader.read_exact(&mut header).is_err() {
        return false;
    }
    layers::is_tar_header(&header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_told_by_their_header_whatever_the_compression() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(1);
        header.set_cksum();
        builder.append_data(&mut header, "x", &b"x"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let plain = dir.path().join("a.tar");
        std::fs::write(&plain, &tar).unwrap();
        let zstd = dir.path().join("a.tar.zst");
        std::fs::write(&zstd, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
        let mut old_style = [0u8; 512];
        old_style[..4].copy_from_slice(b"name");
        let sum: u32 = old_style.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
        old_style[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let old = dir.path().join("old.tar");
        std::fs::write(&old, old_style).unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "just some text\n".repeat(100)).unwrap();
        assert!(is_archive(&plain));
        assert!(is_archive(&zstd));
        assert!(is_archive(&old));
        assert!(!is_archive(&text));
        assert!(!is_archive(&dir.path().join("missing")));
    }
}
