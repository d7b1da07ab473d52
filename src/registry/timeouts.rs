//! How long lade waits on a registry, so that no registry (slow, broken or hostile) can
//! hold a command forever: one base duration (`$LADE_REGISTRY_TIMEOUT` seconds, 30 by
//! default) from which every limit is derived, and the one place the HTTP agent that
//! applies them is configured.
//!
//! A blob's body cannot have a total deadline: a real 2 GB layer on a slow link takes
//! as long as it takes, and the manifest's size cannot be trusted to scale one (the
//! registry that sends the blob wrote it). So a body is bounded two ways instead: no
//! read may wait longer than the base duration for data (ureq's per-read timeout, an
//! idle timeout: a stall), and each window of that length must bring at least
//! [`MIN_BLOB_RATE`] bytes a second on average ([`Paced`]: a server trickling a byte
//! now and then never stalls a read, but falls far under the floor). Any real link
//! clears the floor; a cut transfer is resumed with a range request a bounded number of
//! times, so a passing dip costs a retry, not the pull.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::{RegistryError, Result};

/// The environment variable that sets the base duration, in seconds.
pub const TIMEOUT_VARIABLE: &str = "LADE_REGISTRY_TIMEOUT";

const DEFAULT_BASE: Duration = Duration::from_secs(30);

/// The average rate, in bytes a second, a blob's body must keep over each window.
pub const MIN_BLOB_RATE: u64 = 1024;

/// The limits of one client, all derived from one base duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    base: Duration,
}

impl Timeouts {
    /// From `$LADE_REGISTRY_TIMEOUT` (seconds; fractions allowed), else 30 s.
    pub fn from_env() -> Result<Timeouts> {
        match std::env::var(TIMEOUT_VARIABLE) {
            Ok(value) => Timeouts::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(Timeouts { base: DEFAULT_BASE }),
            Err(std::env::VarError::NotUnicode(value)) => Err(RegistryError::Setting {
                variable: TIMEOUT_VARIABLE,
                value: value.to_string_lossy().into_owned(),
                reason: "is not text".to_string(),
            }),
        }
    }

    fn parse(value: &str) -> Result<Timeouts> {
        let invalid = |reason: &str| RegistryError::Setting {
            variable: TIMEOUT_VARIABLE,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let seconds: f64 = value
            .trim()
            .parse()
            .map_err(|_| invalid("is not a number of seconds"))?;
        if !seconds.is_finite() || seconds <= 0.0 {
            return Err(invalid("must be a number of seconds above 0"));
        }
        let base = Duration::try_from_secs_f64(seconds)
            .map_err(|_| invalid("is more seconds than lade can wait"))?;
        Ok(Timeouts { base })
    }

    /// Connecting, TLS included; sending a request's headers; waiting for an answer's
    /// headers; and the longest a read or write may wait without progress.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// A whole small body (a manifest, a config, a token, an error's explanation).
    pub fn small_body(&self) -> Duration {
        self.base * 4
    }

    /// The answer to an upload, which a registry may give only once it has moved the
    /// blob into its storage.
    pub fn upload_answer(&self) -> Duration {
        self.base * 10
    }

    /// The first HTTPS request to a loopback or insecure registry, before lade tries
    /// plain HTTP.
    pub fn probe(&self) -> Duration {
        self.base / 3
    }

    /// The whole limits as ureq applies them to every request of an agent; blob bodies
    /// lift the total ([`Timeouts::small_body`]) per request.
    pub(crate) fn agent(
        &self,
        connector: impl ureq::unversioned::transport::Connector,
    ) -> ureq::Agent {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(self.base))
            .timeout_send_request(Some(self.base))
            .timeout_recv_response(Some(self.base))
            .timeout_recv_body(Some(self.small_body()))
            .timeout_per_read(Some(self.base))
            .timeout_per_write(Some(self.base))
            .build();
        ureq::Agent::with_parts(
            config,
            connector,
            ureq::unversioned::resolver::DefaultResolver::default(),
        )
    }

    /// What ran out, in words: `sent no response headers within 30s`.
    pub fn describe(&self, timeout: ureq::Timeout) -> String {
        let within = |what: &str, limit: Duration| format!("{what} within {}", seconds(limit));
        match timeout {
            ureq::Timeout::Resolve | ureq::Timeout::Connect => {
                within("could not be connected to", self.base)
            }
            ureq::Timeout::SendRequest | ureq::Timeout::SendBody => {
                within("did not take the request", self.base)
            }
            ureq::Timeout::PerWrite => {
                format!("stalled: took no data for {}", seconds(self.base))
            }
            ureq::Timeout::RecvResponse => within("sent no response headers", self.base),
            ureq::Timeout::PerRead => format!("stalled: no data for {}", seconds(self.base)),
            ureq::Timeout::RecvBody => within("did not send the whole answer", self.small_body()),
            _ => "did not answer in time".to_string(),
        }
    }
}

/// `30s`, `1.5s`.
fn seconds(duration: Duration) -> String {
    let text = format!("{:.3}", duration.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A body that fell under the floor rate for a whole window.
#[derive(Debug, thiserror::Error)]
#[error("trickled: {bytes} bytes in {} (under the {MIN_BLOB_RATE} bytes a second lade waits for)", seconds(*.elapsed))]
pub struct Trickled {
    bytes: u64,
    elapsed: Duration,
}

/// A blob's body, failed with [`Trickled`] (an `io::ErrorKind::TimedOut`) when a window
/// of the base duration brings less than [`MIN_BLOB_RATE`] bytes a second. It is
/// checked as reads return, which the per-read timeout makes happen at least once a
/// window: a trickle ends within two.
pub struct Paced<R> {
    inner: R,
    window: Duration,
    started: Instant,
    bytes: u64,
}

impl<R> Paced<R> {
    pub fn new(inner: R, timeouts: &Timeouts) -> Paced<R> {
        Paced {
            inner,
            window: timeouts.base,
            started: Instant::now(),
            bytes: 0,
        }
    }
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Ok(0);
        }
        self.bytes += n as u64;
        let elapsed = self.started.elapsed();
        if elapsed >= self.window {
            if (self.bytes as f64) < MIN_BLOB_RATE as f64 * elapsed.as_secs_f64() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    Trickled {
                        bytes: self.bytes,
                        elapsed,
                    },
                ));
            }
            self.started = Instant::now();
            self.bytes = 0;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_scales_every_limit_and_bad_values_are_refused() {
        let timeouts = Timeouts::parse("2").unwrap();
        assert_eq!(timeouts.base(), Duration::from_secs(2));
        assert_eq!(timeouts.small_body(), Duration::from_secs(8));
        assert_eq!(
            Timeouts::parse("0.5").unwrap().base(),
            Duration::from_millis(500)
        );
        for bad in ["", "soon", "0", "-3", "inf", "NaN", "1e300"] {
            let error = Timeouts::parse(bad).unwrap_err().to_string();
            assert!(
                error.contains(TIMEOUT_VARIABLE) && error.contains(&format!("{bad:?}")),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn the_stage_that_ran_out_is_said_in_words() {
        let timeouts = Timeouts::parse("1.5").unwrap();
        assert_eq!(
            timeouts.describe(ureq::Timeout::RecvResponse),
            "sent no response headers within 1.5s"
        );
        assert_eq!(
            timeouts.describe(ureq::Timeout::PerRead),
            "stalled: no data for 1.5s"
        );
    }

    /// Gives `chunk` bytes a read, each read taking `delay`.
    struct Slow {
        chunk: usize,
        delay: Duration,
    }

    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.delay);
            let n = self.chunk.min(buf.len());
            buf[..n].fill(0);
            Ok(n)
        }
    }

    #[test]
    fn a_trickle_fails_within_two_windows_and_a_steady_body_does_not() {
        let timeouts = Timeouts::parse("0.1").unwrap();
        let mut trickle = Paced::new(
            Slow {
                chunk: 1,
                delay: Duration::from_millis(10),
            },
            &timeouts,
        );
        let started = Instant::now();
        let error = io::copy(&mut trickle, &mut io::sink()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().starts_with("trickled: "), "{error}");
        assert!(started.elapsed() < Duration::from_millis(300));
        // 4 KiB every 10 ms: 400 KiB/s, far above the floor, for five windows.
        let mut steady = Paced::new(
            Slow {
                chunk: 4096,
                delay: Duration::from_millis(10),
            },
            &timeouts,
        )
        .take(50 * 4096);
        assert_eq!(io::copy(&mut steady, &mut io::sink()).unwrap(), 50 * 4096);
    }
}
