//! A blob's body as a pull reads it: held to a floor on its rate ([`Paced`]), resumed
//! with a range request where a failure cuts it, and refused on the first byte past the
//! size its descriptor gives, so no registry can hold a pull or fill the disk with an
//! endless body.

use std::io::{self, Read};

use super::client::Client;
use super::timeouts::Paced;
use super::{RegistryError, Result};
use crate::oci::Digest;

impl Client {
    /// `digest`'s body from `repository`, checked against [`Paced`]'s floor, resumed
    /// where a failure cuts it and refused past `size`, its descriptor's (see
    /// [`Resuming`]).
    pub(super) fn open_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        stage: &str,
    ) -> Result<Resuming<'_>> {
        let url = self.blob_url(repository, digest);
        let mut response = self.get_with(&url, None, stage, true)?;
        if response.status() != 200 {
            return Err(self.status_error(stage, &mut response));
        }
        Ok(Resuming {
            client: self,
            reader: Box::new(Paced::new(
                response.into_body().into_reader(),
                &self.timeouts,
            )),
            url,
            stage: stage.to_string(),
            digest: *digest,
            offset: 0,
            size,
            resumptions: 0,
            failure: None,
        })
    }
}

/// A blob's body that picks up where a failure cut it (a reset, a stall, a trickle
/// under [`Paced`]'s floor, a body shorter than the manifest said): with a range
/// request, or, from a registry that ignores ranges, the whole blob again with the part
/// already read skipped. At most [`MAX_RESUMPTIONS`] times.
pub(super) struct Resuming<'a> {
    client: &'a Client,
    url: String,
    /// What the fetch is, as errors name it.
    stage: String,
    reader: Box<dyn Read + Send + 'a>,
    digest: Digest,
    offset: u64,
    /// The size its descriptor gives: a byte past it fails the fetch, so a registry
    /// cannot hold a pull with an endless body nor fill the disk with one.
    size: u64,
    resumptions: u32,
    /// Why it gave up, when it did: the error to report rather than the reader's.
    pub(super) failure: Option<RegistryError>,
}

const MAX_RESUMPTIONS: u32 = 5;

/// Why a resumption did not give a body.
enum Reopening {
    /// A failure worth another try.
    Again(io::Error),
    /// An answer no retry changes (404, 401).
    Refused(RegistryError),
}

impl<'a> Resuming<'a> {
    fn resume(&mut self, mut why: io::Error) -> io::Result<()> {
        loop {
            if self.resumptions >= MAX_RESUMPTIONS {
                let message = why.to_string();
                let stage = format!("{} (resumed {} times)", self.stage, self.resumptions);
                self.failure = Some(self.client.body_error(why, &stage));
                return Err(io::Error::other(message));
            }
            self.resumptions += 1;
            match self.reopen() {
                Ok(reader) => {
                    self.reader = reader;
                    return Ok(());
                }
                Err(Reopening::Again(again)) => why = again,
                Err(Reopening::Refused(error)) => {
                    let message = error.to_string();
                    self.failure = Some(error);
                    return Err(io::Error::other(message));
                }
            }
        }
    }

    fn reopen(&self) -> std::result::Result<Box<dyn Read + Send + 'a>, Reopening> {
        let mut response = self
            .client
            .blob_request(&self.url)
            .header("Range", format!("bytes={}-", self.offset))
            .call()
            .map_err(|e| Reopening::Again(e.into_io()))?;
        let status = response.status().as_u16();
        if status != 200 && status != 206 {
            if status == 429 || status >= 500 {
                return Err(Reopening::Again(io::Error::other(format!(
                    "the registry answered {status} when asked again"
                ))));
            }
            let stage = format!("{} (resuming at byte {})", self.stage, self.offset);
            return Err(Reopening::Refused(
                self.client.status_error(&stage, &mut response),
            ));
        }
        let mut reader: Box<dyn Read + Send + 'a> = Box::new(Paced::new(
            response.into_body().into_reader(),
            &self.client.timeouts,
        ));
        if status == 200 {
            let skipped = io::copy(&mut (&mut reader).take(self.offset), &mut io::sink())
                .map_err(Reopening::Again)?;
            if skipped < self.offset {
                return Err(Reopening::Again(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "sent again, the blob ended at byte {skipped} of the {} already read",
                        self.offset
                    ),
                )));
            }
        }
        Ok(reader)
    }
}

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.reader.read(buf) {
                Ok(0) if self.offset < self.size => {
                    let cut = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the connection ended at byte {} of {}",
                            self.offset, self.size
                        ),
                    );
                    self.resume(cut)?;
                }
                Ok(n) if self.offset.saturating_add(n as u64) > self.size => {
                    // No resumption: the registry sent what it sent, and more of it
                    // would not make it right.
                    let error = self.client.error(format!(
                        "blob {}: the registry sent more than the {} bytes its descriptor gives",
                        self.digest, self.size
                    ));
                    let message = error.to_string();
                    self.failure = Some(error);
                    return Err(io::Error::other(message));
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e)?,
            }
        }
    }
}
