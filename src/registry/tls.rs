//! The certificates a registry's TLS is checked against: the system's bundle (which
//! holds the local CAs `update-ca-certificates` added) and, as Docker and podman read
//! them, the `*.crt` files of `certs.d/<host[:port]>/` under `/etc/containers`,
//! `/etc/docker` and `$LADE_CERTS_DIR`.

use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The system's CA bundles, the first found is used.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn certs_dirs(registry: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("LADE_CERTS_DIR") {
        dirs.push(PathBuf::from(dir).join(registry));
    }
    dirs.push(Path::new("/etc/containers/certs.d").join(registry));
    dirs.push(Path::new("/etc/docker/certs.d").join(registry));
    dirs
}

fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect()
}

/// The TLS settings for `registry`.
pub(crate) fn config(registry: &str) -> TlsConfig {
    let mut roots: Vec<Certificate<'static>> = SYSTEM_BUNDLES
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .map(|pem| certificates(&pem))
        .unwrap_or_default();
    for dir in certs_dirs(registry) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "crt") {
                if let Ok(pem) = std::fs::read(&path) {
                    roots.extend(certificates(&pem));
                }
            }
        }
    }
    let builder = TlsConfig::builder();
    if roots.is_empty() {
        return builder.build();
    }
    builder
        .root_certs(RootCerts::new_with_certs(&roots))
        .build()
}
