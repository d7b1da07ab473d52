//! TLS to a registry as Docker and podman set it up from `certs.d/<host[:port]>/`
//! (under `$LADE_CERTS_DIR`, `/etc/containers` and `/etc/docker`):
//!
//! - every `*.crt` is trusted as a CA, on top of the system's bundle (which holds the
//!   local CAs `update-ca-certificates` added);
//! - a `*.crt` that is the very certificate the registry presents is trusted as that
//!   registry's own, even when it is self-signed and marked a CA (what `openssl req
//!   -x509` makes, and Docker's documentation tells users to make). Go's verifier, which
//!   docker, podman and skopeo use, accepts such a leaf because it is in the root pool;
//!   webpki refuses a CA as an end entity, so lade pins it itself, still checking its
//!   name and validity period;
//! - a `NAME.cert` with its `NAME.key` is the client certificate of mutual TLS.
//!
//! ureq 3 has no door for a custom rustls verifier, so lade puts its own TLS connector
//! (rustls with the same ring provider ureq uses) behind ureq's proxy and TCP ones.
//! A TLS failure becomes one sentence that names the registry and how to trust it.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme, StreamOwned,
};
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    TcpConnector, Transport, TransportAdapter,
};

use super::{RegistryError, Result};

/// The system's CA bundles, the first found is used.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The `certs.d` directories of `registry`, first the one `$LADE_CERTS_DIR` names.
fn certs_dirs(registry: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("LADE_CERTS_DIR") {
        dirs.push(PathBuf::from(dir).join(registry));
    }
    dirs.push(Path::new("/etc/containers/certs.d").join(registry));
    dirs.push(Path::new("/etc/docker/certs.d").join(registry));
    dirs
}

fn bad_file(path: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::Config {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file, at least one: a `.crt` that holds none is a mistake
/// its owner should hear about, not a file to skip.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_file(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad_file(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The files of a `certs.d` directory, sorted; none when it does not exist.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            Ok(paths)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(RegistryError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension().is_some_and(|e| e == extension)
}

/// A client certificate chain and its key.
pub(crate) struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The `.key` file, for errors about the pair.
    key_path: PathBuf,
}

impl fmt::Debug for ClientIdentity {
    // Never the key itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain.len())
            .field("key_path", &self.key_path)
            .finish()
    }
}

/// The client identity of one `certs.d` directory: its first `NAME.cert` with
/// `NAME.key` (Docker's pairing); a half pair is an error, as it is for Docker.
fn client_identity(files: &[PathBuf]) -> Result<Option<ClientIdentity>> {
    for path in files {
        if has_extension(path, "key") && !path.with_extension("cert").exists() {
            return Err(bad_file(
                path,
                format!(
                    "a client key without its certificate: put the certificate in {}",
                    path.with_extension("cert").display()
                ),
            ));
        }
    }
    let Some(cert_path) = files.iter().find(|p| has_extension(p, "cert")) else {
        return Ok(None);
    };
    let key_path = cert_path.with_extension("key");
    if !key_path.exists() {
        return Err(bad_file(
            cert_path,
            format!(
                "a client certificate without its key: put the key in {}",
                key_path.display()
            ),
        ));
    }
    let chain = certificates(cert_path)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?)
        .map_err(|e| bad_file(&key_path, format!("not a PEM private key: {e}")))?;
    Ok(Some(ClientIdentity {
        chain,
        key,
        key_path,
    }))
}

/// What `certs.d` says about one registry.
#[derive(Debug, Default)]
pub(crate) struct CertsD {
    /// Every `*.crt` certificate: CAs, and the registry's own certificate if pinned.
    pub(crate) certificates: Vec<CertificateDer<'static>>,
    /// The first directory's client certificate (podman reads one directory; lade
    /// takes the first pair, in the order of [`certs_dirs`]).
    pub(crate) client: Option<ClientIdentity>,
}

/// Reads `certs.d` for `registry`; a file that cannot be read or parsed is an error
/// naming it.
pub(crate) fn certs_d(registry: &str) -> Result<CertsD> {
    load(&certs_dirs(registry))
}

fn load(dirs: &[PathBuf]) -> Result<CertsD> {
    let mut found = CertsD::default();
    for dir in dirs {
        let files = entries(dir)?;
        for path in files.iter().filter(|p| has_extension(p, "crt")) {
            found.certificates.extend(certificates(path)?);
        }
        if found.client.is_none() {
            found.client = client_identity(&files)?;
        }
    }
    Ok(found)
}

/// The system's roots: its bundle, else the Mozilla roots built into lade.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let bundle = SYSTEM_BUNDLES
        .iter()
        .find_map(|path| std::fs::read(path).ok());
    if let Some(pem) = bundle {
        // A system bundle may hold a few certificates webpki cannot parse (old or odd
        // ones); they are skipped, as every TLS client does.
        let certs = CertificateDer::pem_slice_iter(&pem).filter_map(|c| c.ok());
        roots.add_parsable_certificates(certs);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// The crypto ureq itself would use (its `rustls` feature builds ring).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls settings for `registry`: verified against the system's roots and
/// `certs.d` (or not at all when `insecure`), with `certs.d`'s client certificate.
pub(crate) fn client_config(registry: &str, insecure: bool) -> Result<ClientConfig> {
    let found = certs_d(registry)?;
    build_config(found, insecure).map_err(|reason| RegistryError::Registry {
        registry: registry.to_string(),
        reason,
    })
}

fn build_config(found: CertsD, insecure: bool) -> std::result::Result<ClientConfig, String> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let trust = if insecure {
        Trust::Any
    } else {
        let mut roots = system_roots();
        // A certificate webpki cannot take as an anchor may still be pinned.
        roots.add_parsable_certificates(found.certificates.iter().cloned());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("cannot set up TLS verification: {e}"))?;
        Trust::PinnedOrWebPki {
            pinned: found.certificates,
            webpki,
        }
    };
    let verifier = Arc::new(RegistryVerifier { trust, algorithms });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match found.client {
        Some(client) => builder
            .with_client_auth_cert(client.chain, client.key)
            .map_err(|e| {
                format!(
                    "{}: cannot use it as the client key of its certificate: {e}",
                    client.key_path.display()
                )
            }),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// How a registry's certificate is judged.
#[derive(Debug)]
enum Trust {
    /// A certificate that `certs.d` holds as it is is trusted (its name and dates
    /// still checked); any other is asked of webpki, with `certs.d`'s CAs among the
    /// roots.
    PinnedOrWebPki {
        pinned: Vec<CertificateDer<'static>>,
        webpki: Arc<WebPkiServerVerifier>,
    },
    /// `--tls-verify=false` and `insecure = true`: any certificate and signature, as
    /// ureq's own disabled verification takes them (the session is still encrypted, to
    /// whoever answers).
    Any,
}

/// The one certificate verifier of registry connections, in the mode `trust` says.
#[derive(Debug)]
struct RegistryVerifier {
    trust: Trust,
    algorithms: WebPkiSupportedAlgorithms,
}

impl RegistryVerifier {
    fn checks_signatures(&self) -> bool {
        !matches!(self.trust, Trust::Any)
    }
}

impl ServerCertVerifier for RegistryVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Trust::PinnedOrWebPki { pinned, webpki } = &self.trust else {
            return Ok(ServerCertVerified::assertion());
        };
        if pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) {
            let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&parsed, server_name)?;
            check_validity(end_entity.as_ref(), now)?;
            // The handshake's signature (checked below, as for any certificate) proves
            // the registry holds this certificate's key.
            return Ok(ServerCertVerified::assertion());
        }
        webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        if !self.checks_signatures() {
            return Ok(HandshakeSignatureValid::assertion());
        }
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        if !self.checks_signatures() {
            return Ok(HandshakeSignatureValid::assertion());
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The notBefore/notAfter check webpki makes of every certificate it takes, for the
/// pinned one it cannot take.
fn check_validity(der: &[u8], now: UnixTime) -> std::result::Result<(), rustls::Error> {
    let (not_before, not_after) = validity(der).ok_or(rustls::Error::InvalidCertificate(
        CertificateError::BadEncoding,
    ))?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < not_before {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > not_after {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

/// A certificate's validity period in Unix seconds (RFC 5280 4.1.2.5).
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let validity = certificate.validity();
    Some((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

/// ureq's proxy and TCP connectors, then lade's TLS with `config`.
pub(crate) fn connector(config: ClientConfig) -> impl Connector {
    ().chain(ConnectProxyConnector::default())
        .chain(TcpConnector::default())
        .chain(TlsConnector {
            config: Arc::new(config),
        })
}

/// rustls over the chained transport, for `https` URLs.
struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish()
    }
}

/// rustls reports a handshake failure inside an `io::Error`; lifted out, it reaches
/// [`refusal`] as a `rustls::Error` whose kind can be told in words.
fn lift(error: io::Error) -> ureq::Error {
    if error.get_ref().is_some_and(|e| e.is::<rustls::Error>()) {
        if let Some(Ok(tls)) = error.into_inner().map(|e| e.downcast::<rustls::Error>()) {
            return ureq::Error::Rustls(*tls);
        }
        return ureq::Error::Tls("TLS failed");
    }
    ureq::Error::from(error)
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> std::result::Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        // An IPv6 literal comes bracketed in the URL, bare in a certificate.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("the registry's host is not a valid TLS name"))?;
        let mut connection = ClientConnection::new(self.config.clone(), name)?;
        let mut socket = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        socket.set_timeout(details.timeout);
        connection.complete_io(&mut socket).map_err(lift)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned::new(connection, socket),
        })))
    }
}

/// An established TLS connection, as ureq's own rustls transport is.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> std::result::Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output).map_err(lift)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        // TLS 1.3 servers check a client certificate after the handshake, so their
        // refusal arrives here, with the first read.
        let amount = self.stream.read(input).map_err(lift)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// What went wrong with TLS, for [`RegistryError::Untrusted`] and
/// [`RegistryError::ClientCertificate`]; `None` for errors that are not TLS's.
pub(crate) fn refusal(registry: &str, error: &ureq::Error) -> Option<RegistryError> {
    let tls = match error {
        ureq::Error::Rustls(tls) => tls,
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        ureq::Error::Tls(reason) => {
            return Some(RegistryError::Untrusted {
                registry: registry.to_string(),
                reason: (*reason).to_string(),
            })
        }
        _ => return None,
    };
    let registry = registry.to_string();
    if let rustls::Error::AlertReceived(alert) = tls {
        let reason = match alert {
            AlertDescription::CertificateRequired => Some("asks for a TLS client certificate"),
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::AccessDenied => {
                Some("refused lade's TLS client certificate (or wants one)")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            return Some(RegistryError::ClientCertificate {
                registry,
                reason: reason.to_string(),
            });
        }
    }
    let reason = match tls {
        rustls::Error::InvalidCertificate(problem) => match problem {
            CertificateError::UnknownIssuer => {
                "presented a TLS certificate signed by an unknown authority".to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "presented a TLS certificate for another name".to_string()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "presented an expired TLS certificate".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "presented a TLS certificate that is not valid yet".to_string()
            }
            // webpki's own error type is not rustls's to name; its text is stable.
            CertificateError::Other(other) if other.to_string() == "CaUsedAsEndEntity" => {
                "presented a self-signed TLS certificate that certs.d does not hold".to_string()
            }
            CertificateError::Other(other) => {
                format!("presented a TLS certificate lade cannot trust ({other})")
            }
            other => format!("presented a TLS certificate lade cannot trust ({other:?})"),
        },
        other => format!("failed the TLS handshake ({other})"),
    };
    Some(RegistryError::Untrusted { registry, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made as Docker's docs make a registry's certificate (`openssl req -x509`, so
    /// also a CA), with an EC key to stay short: 127.0.0.1, 2026-12-06T22:29:27Z to
    /// 2036-12-03T22:29:27Z.
    const SELF_SIGNED: &str = "-----BEGIN CERTIFICATE-----
MIIBjjCCATSgAwIBAgIUc8i98UGG5a5viVKg+iCYOVYcMiEwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMB4XDTI2MTIwNjIyMjkyN1oXDTM2MTIwMzIy
MjkyN1owFDESMBAGA1UEAwwJMTI3LjAuMC4xMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAELN7rXgw2SkGvTdQplo31VmGoCbaRtRxCWC5pezgwjmm3B5Vlkuy6RFbk
fHsxf90M/1jwB+nt6GwGn0VVQjawq6NkMGIwHQYDVR0OBBYEFC5vWNh/zCv1krmb
OkBqA/OsN4DmMB8GA1UdIwQYMBaAFC5vWNh/zCv1krmbOkBqA/OsN4DmMA8GA1Ud
EwEB/wQFMAMBAf8wDwYDVR0RBAgwBocEfwAAATAKBggqhkjOPQQDAgNIADBFAiEA
2nZE6hz3uOmLAcEmpaxrgwZljoKyRyWk/wM/k/wOmrYCIHmAQB+UwqFvC/Dhdk69
SZQdIAqP8bNA0KnFVIZabpUe
-----END CERTIFICATE-----
";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgoyx2RhvRUXzIEHis
0UUkjQyeAmg9GAXrYZRQNTavQW2hRANCAAQs3uteDDZKQa9N1CmWjfVWYagJtpG1
HEJYLml7ODCOabcHlWWS7LpEVuR8ezF/3Qz/WPAH6e3obAafRVVCNrCr
-----END PRIVATE KEY-----
";
    const NOT_BEFORE: u64 = 1_796_596_167;
    const NOT_AFTER: u64 = 2_111_956_167;

    fn der() -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(SELF_SIGNED.as_bytes()).unwrap()
    }

    fn at(seconds: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds))
    }

    fn verifier() -> RegistryVerifier {
        let provider = provider();
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(system_roots()), provider.clone())
                .build()
                .unwrap();
        RegistryVerifier {
            trust: Trust::PinnedOrWebPki {
                pinned: vec![der()],
                webpki,
            },
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn verify(name: &str, now: u64) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier().verify_server_cert(&der(), &[], &name, &[], at(now))
    }

    #[test]
    fn a_pinned_self_signed_certificate_is_trusted_for_its_name_and_dates_only() {
        assert!(verify("127.0.0.1", NOT_BEFORE + 60).is_ok());
        let other_name = verify("127.0.0.2", NOT_BEFORE + 60).unwrap_err();
        assert!(
            matches!(
                other_name,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
                    | rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
            ),
            "{other_name:?}"
        );
        assert_eq!(
            verify("127.0.0.1", NOT_AFTER + 1).unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::Expired)
        );
        assert_eq!(
            verify("127.0.0.1", NOT_BEFORE - 1).unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::NotValidYet)
        );
    }

    #[test]
    fn the_validity_period_is_read_from_the_der() {
        assert_eq!(
            validity(der().as_ref()),
            Some((NOT_BEFORE as i64, NOT_AFTER as i64))
        );
    }

    #[test]
    fn truncated_der_is_refused_not_a_panic() {
        let whole = der();
        let cuts = (0..whole.as_ref().len()).step_by(7);
        for cut in cuts.map(|n| &whole.as_ref()[..n]) {
            assert_eq!(validity(cut), None);
            assert!(check_validity(cut, at(NOT_BEFORE + 60)).is_err());
        }
        assert_eq!(validity(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn certs_d_gives_cas_and_a_client_pair() {
        let dir = dir_with(&[
            ("ca.crt", SELF_SIGNED),
            ("client.cert", SELF_SIGNED),
            ("client.key", KEY),
        ]);
        let found = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(found.certificates, vec![der()]);
        let client = found.client.as_ref().unwrap();
        assert_eq!(client.chain, vec![der()]);
        assert_eq!(client.key_path, dir.path().join("client.key"));
        // The pair makes a working rustls client configuration, verified or not.
        for insecure in [false, true] {
            let found = load(&[dir.path().to_path_buf()]).unwrap();
            let config = build_config(found, insecure).unwrap();
            assert!(config.client_auth_cert_resolver.has_certs());
        }
        // A missing directory is nothing to read.
        let none = load(&[dir.path().join("absent")]).unwrap();
        assert!(none.certificates.is_empty() && none.client.is_none());
    }

    #[test]
    fn bad_files_are_errors_naming_them() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("ca.crt", "not a certificate\n")], "ca.crt"),
            (&[("client.cert", SELF_SIGNED)], "client.cert"),
            (&[("client.key", KEY)], "client.key"),
            (
                &[("client.cert", SELF_SIGNED), ("client.key", "junk\n")],
                "client.key",
            ),
            (&[("client.cert", KEY), ("client.key", KEY)], "client.cert"),
        ];
        for (files, named) in cases {
            let dir = dir_with(files);
            let error = load(&[dir.path().to_path_buf()]).unwrap_err().to_string();
            assert!(error.contains(named), "{files:?}: {error}");
        }
    }

    #[test]
    fn tls_failures_are_told_with_the_way_to_trust_the_registry() {
        let untrusted = refusal(
            "10.0.0.5:5000",
            &ureq::Error::Rustls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        )
        .unwrap()
        .to_string();
        assert!(untrusted.contains("unknown authority"), "{untrusted}");
        assert!(
            untrusted.contains("/etc/containers/certs.d/10.0.0.5:5000/ca.crt"),
            "{untrusted}"
        );
        assert!(untrusted.contains("--tls-verify=false"), "{untrusted}");
        assert!(untrusted.contains("insecure = true"), "{untrusted}");
        let wrapped = ureq::Error::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        ));
        let client = refusal("10.0.0.5:5000", &wrapped).unwrap().to_string();
        assert!(
            client.contains("/etc/containers/certs.d/10.0.0.5:5000/client.cert"),
            "{client}"
        );
        assert!(refusal("10.0.0.5:5000", &ureq::Error::ConnectionFailed).is_none());
    }
}
