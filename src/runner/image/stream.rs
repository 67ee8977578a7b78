//! Reading an archive on two cores: one thread reads the file, hashes it and decompresses it, while
//! the caller's thread writes the files. Memory stays bounded (a few chunks in flight), whatever the
//! archive's size.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use sha2::{Digest, Sha256};

use super::format::{Compression, decoder};
use super::progress::Progress;

/// Decompressed bytes handed over at a time.
const CHUNK: usize = 1024 * 1024;
/// Chunks in flight: enough to keep both threads busy.
const CHUNKS_IN_FLIGHT: usize = 4;

/// `len` bytes of `file` from `offset`, read with pread so that the file's offset is never shared.
pub struct Region<'a> {
    pub file: &'a File,
    pub offset: u64,
    pub len: u64,
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.len).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += n as u64;
        self.len -= n as u64;
        Ok(n)
    }
}

/// Counts and hashes what passes through.
struct Hashing<'a, R> {
    inner: R,
    hasher: Sha256,
    progress: &'a Progress,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// The decompressed stream, as the reading thread hands it over.
struct Chunks {
    receiver: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            match self.receiver.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.position = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The reader finished: end of stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Fills `buf` as far as the stream allows; returns the bytes read (0 at the end).
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// What the consumer returned, and the region's sha256 (None when the consumer failed).
pub type Consumed<T, E> = (Result<T, E>, Option<[u8; 32]>);

/// Runs `consume` on the decompressed content of `region`. Returns consume's result and the sha256
/// of the region's raw bytes (all of them, also past the point where `consume` stopped reading);
/// the digest is None when consume failed.
pub fn pipelined<T, E>(
    region: Region<'_>,
    compression: Compression,
    progress: &Progress,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> io::Result<Consumed<T, E>> {
    let (result, digests) = hashed_both(region, compression, progress, false, consume)?;
    Ok((result, digests.map(|d| d.raw)))
}

/// The sha256 of a stream's raw bytes and of its decompressed content (an image layer's diff_id).
pub struct Digests {
    pub raw: [u8; 32],
    pub content: [u8; 32],
}

/// `pipelined` of any source, also hashing the decompressed content (on the reading thread) when
/// `content`.
pub fn hashed_both<T, E>(
    region: impl Read + Send,
    compression: Compression,
    progress: &Progress,
    content: bool,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> io::Result<(Result<T, E>, Option<Digests>)> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
        let stop = &stop;
        let reader = scope.spawn(move || -> io::Result<Digests> {
            let mut hashing = Hashing {
                inner: region,
                hasher: Sha256::new(),
                progress,
            };
            let mut content_hasher = content.then(Sha256::new);
            let mut consumer_gone = false;
            {
                let mut decompressed = match decoder(compression, &mut hashing) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = sender.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                loop {
                    let mut chunk = vec![0u8; CHUNK];
                    match fill(&mut decompressed, &mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            chunk.truncate(n);
                            if let Some(hasher) = content_hasher.as_mut() {
                                hasher.update(&chunk);
                            }
                            // The consumer stopped (a tar reader stops at the end-of-archive
                            // blocks): only the digests are still wanted, the content's of all.
                            if !consumer_gone && sender.send(Ok(chunk)).is_err() {
                                consumer_gone = true;
                            }
                            if consumer_gone && content_hasher.is_none() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = sender.send(Err(io::Error::new(
                                e.kind(),
                                format!("cannot decompress the {} data: {e}", compression.name()),
                            )));
                            return Err(e);
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        return Err(io::Error::other("stopped"));
                    }
                }
            }
            drop(sender);
            // Whatever follows the archive's end still belongs to the file's digest.
            let mut rest = vec![0u8; CHUNK];
            while !stop.load(Ordering::Relaxed) && fill(&mut hashing, &mut rest)? > 0 {}
            Ok(Digests {
                raw: hashing.hasher.finalize().into(),
                content: content_hasher
                    .map(|h| h.finalize().into())
                    .unwrap_or_default(),
            })
        });
        let mut chunks = Chunks {
            receiver,
            current: Vec::new(),
            position: 0,
        };
        let result = consume(&mut chunks);
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        drop(chunks);
        let digest = reader
            .join()
            .map_err(|_| io::Error::other("the reading thread failed"))?;
        Ok(match (result, digest) {
            (Ok(value), Ok(digest)) => (Ok(value), Some(digest)),
            (Ok(_), Err(e)) => return Err(e),
            (Err(e), _) => (Err(e), None),
        })
    })
}

/// Hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a whole (small) byte string, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(content: &[u8]) -> File {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(std::env::temp_dir())
            .unwrap();
        file.write_all(content).unwrap();
        file
    }

    #[test]
    fn the_consumer_sees_the_region_and_the_digest_covers_all_of_it() {
        let content: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let file = temp_file(&content);
        let progress = Progress::hidden(content.len() as u64);
        let region = Region {
            file: &file,
            offset: 5,
            len: content.len() as u64 - 5,
        };
        let (seen, digest) = pipelined(region, Compression::None, &progress, |r| {
            let mut first = vec![0u8; 10];
            r.read_exact(&mut first).map(|()| first)
        })
        .unwrap();
        assert_eq!(seen.unwrap(), content[5..15]);
        assert_eq!(hex(&digest.unwrap()), sha256_hex(&content[5..]));
    }

    #[test]
    fn a_stream_of_many_chunks_arrives_whole_and_in_order() {
        // More chunks than may be in flight, the last one short.
        let content: Vec<u8> = (0..(CHUNKS_IN_FLIGHT + 5) * CHUNK + 17)
            .map(|i| (i / 7 % 253) as u8)
            .collect();
        let file = temp_file(&content);
        let progress = Progress::hidden(content.len() as u64);
        let region = Region {
            file: &file,
            offset: 0,
            len: content.len() as u64,
        };
        let (seen, digest) = pipelined(region, Compression::None, &progress, |r| {
            let mut all = Vec::new();
            r.read_to_end(&mut all).map(|_| all)
        })
        .unwrap();
        assert!(seen.unwrap() == content, "the stream differs from the file");
        assert_eq!(hex(&digest.unwrap()), sha256_hex(&content));
    }

    #[test]
    fn a_layer_stream_gives_both_digests() {
        use flate2::{Compression as Level, write::GzEncoder};
        let content: Vec<u8> = (0..2 * CHUNK + 5).map(|i| (i % 13) as u8).collect();
        let mut encoder = GzEncoder::new(Vec::new(), Level::fast());
        encoder.write_all(&content).unwrap();
        let compressed = encoder.finish().unwrap();
        let file = temp_file(&compressed);
        let progress = Progress::hidden(compressed.len() as u64);
        let region = Region {
            file: &file,
            offset: 0,
            len: compressed.len() as u64,
        };
        // The consumer reads only the start, as a tar reader stops at its end-of-archive blocks.
        let (seen, digests) = hashed_both(region, Compression::Gzip, &progress, true, |r| {
            let mut start = vec![0u8; 100];
            r.read_exact(&mut start).map(|()| start)
        })
        .unwrap();
        assert_eq!(seen.unwrap(), content[..100]);
        let digests = digests.unwrap();
        assert_eq!(hex(&digests.raw), sha256_hex(&compressed));
        assert_eq!(hex(&digests.content), sha256_hex(&content));
    }

    #[test]
    fn decompression_errors_reach_the_consumer() {
        let file = temp_file(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]);
        let progress = Progress::hidden(11);
        let region = Region {
            file: &file,
            offset: 0,
            len: 11,
        };
        let (result, digest) = pipelined(region, Compression::Gzip, &progress, |r| {
            let mut all = Vec::new();
            r.read_to_end(&mut all)
        })
        .unwrap();
        assert!(result.is_err());
        assert!(digest.is_none());
    }
}
