//! A writer that hands what it is given to a thread of its own, which writes it on. A
//! layer's compressed bytes go this way into their blob, so that hashing them and copying
//! them into the page cache no longer hold up the thread that reads files, builds the tar
//! stream and feeds the compressor.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes are handed over in chunks of this size...
const CHUNK: usize = 1 << 20;
/// ...with at most this many waiting, which bounds the memory in flight.
const IN_FLIGHT: usize = 4;

pub(crate) struct Background<W: Write + Send + 'static> {
    pending: Vec<u8>,
    to_worker: Option<SyncSender<Vec<u8>>>,
    /// Written chunks come back to be filled again.
    returned: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> Background<W> {
    pub(crate) fn start(mut inner: W) -> io::Result<Background<W>> {
        let (to_worker, chunks) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, returned) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let worker = std::thread::Builder::new()
            .name("blob-writer".into())
            .spawn(move || {
                for mut chunk in chunks {
                    inner.write_all(&chunk)?;
                    chunk.clear();
                    let _ = give_back.try_send(chunk);
                }
                inner.flush()?;
                Ok(inner)
            })?;
        Ok(Background {
            pending: Vec::with_capacity(CHUNK),
            to_worker: Some(to_worker),
            returned,
            worker: Some(worker),
        })
    }

    fn hand_over(&mut self) -> io::Result<()> {
        let fresh = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.pending, fresh);
        let sent = match &self.to_worker {
            Some(to_worker) => to_worker.send(chunk).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The worker only hangs up when a write failed: report that failure.
            Err(match self.join() {
                Err(e) => e,
                Ok(_) => io::Error::other("the blob writer stopped early"),
            })
        }
    }

    fn join(&mut self) -> io::Result<W> {
        self.to_worker = None;
        match self.worker.take() {
            Some(worker) => worker
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the blob writer thread panicked"))),
            None => Err(io::Error::other("the blob writer has already ended")),
        }
    }

    /// Writes out what is left, waits for the thread, and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if !self.pending.is_empty() {
            self.hand_over()?;
        }
        self.join()
    }
}

impl<W: Write + Send + 'static> Write for Background<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(buf.len())
    }

    /// Hands over what is pending without waiting for it to be written: the writes are
    /// only known to be done once [`Background::finish`] returns.
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.hand_over()?;
        }
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for Background<W> {
    /// Abandoned (an error elsewhere): the thread ends, and drops the inner writer, once
    /// the chunks already handed over are written.
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_whole_and_in_order() {
        let data: Vec<u8> = (0..(3 * CHUNK + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut writer = Background::start(Vec::new()).unwrap();
        for piece in data.chunks(100_003) {
            writer.write_all(piece).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), data);
    }

    /// Fails after accepting `left` bytes.
    struct FailingAfter {
        left: usize,
    }

    impl Write for FailingAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_inner_writers_error_comes_back() {
        let mut writer = Background::start(FailingAfter { left: CHUNK / 2 }).unwrap();
        let chunk = vec![0u8; CHUNK];
        let mut failure = None;
        for _ in 0..(IN_FLIGHT + 8) {
            if let Err(e) = writer.write_all(&chunk) {
                failure = Some(e);
                break;
            }
        }
        let error = match failure {
            Some(e) => e,
            None => writer.finish().err().expect("the write error is reported"),
        };
        assert!(error.to_string().contains("disk full"), "{error}");
    }
}
