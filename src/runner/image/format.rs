//! What an image file is, told by its content (names lie: `rootfs.tar` may well be zstd), and the
//! decompressing reader for it.

use std::io::{self, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// How many leading bytes `sniff` wants (a tar header).
pub const SNIFF_LEN: usize = 512;

/// The compression of a stream that starts with `head`, or why it is not something we can read.
pub fn sniff(head: &[u8]) -> Result<Compression, String> {
    const MAGICS: [(&[u8], Compression); 3] = [
        (&[0x1f, 0x8b], Compression::Gzip),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
        (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
    ];
    for (magic, compression) in MAGICS {
        if head.starts_with(magic) {
            return Ok(compression);
        }
    }
    const UNSUPPORTED: [(&[u8], &str); 3] = [
        (
            b"BZh",
            "bzip2 (decompress it first with bunzip2, or recompress with zstd)",
        ),
        (
            &[0x04, 0x22, 0x4d, 0x18],
            "lz4 (decompress it first with lz4 -d)",
        ),
        (
            &[0x5d, 0x00, 0x00],
            "lzma (decompress it first with unlzma)",
        ),
    ];
    for (magic, what) in UNSUPPORTED {
        if head.starts_with(magic) {
            return Err(format!("it is compressed with {what}"));
        }
    }
    if is_tar_header(head) {
        return Ok(Compression::None);
    }
    Err("it is neither a tar archive nor a gzip, xz or zstd compressed one".into())
}

/// A tar header: "ustar" magic, or (old V7 archives) a checksum that adds up.
pub fn is_tar_header(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    if &head[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&head[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let computed: u32 = head[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    // An all-zero block has checksum 256 over spaces but stores nothing.
    stored == Some(computed) && head[0] != 0
}

/// `input` decompressed.
pub fn decoder<'a>(
    compression: Compression,
    input: impl Read + 'a,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        // Multi-member: pigz and concatenated gzip files are common.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_header() -> Vec<u8> {
        let mut header = tar::Header::new_ustar();
        header.set_path("etc/hostname").unwrap();
        header.set_size(0);
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    #[test]
    fn compressions_are_told_by_content() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Ok(Compression::Gzip));
        assert_eq!(sniff(b"\xfd7zXZ\0rest"), Ok(Compression::Xz));
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Ok(Compression::Zstd));
        assert_eq!(sniff(&tar_header()), Ok(Compression::None));
    }

    #[test]
    fn old_tar_headers_are_recognised_by_checksum() {
        let mut header = tar::Header::new_old();
        header.set_path("bin/sh").unwrap();
        header.set_size(0);
        header.set_cksum();
        assert_eq!(sniff(header.as_bytes()), Ok(Compression::None));
        let mut broken = header.as_bytes().to_vec();
        broken[0] ^= 1;
        assert!(sniff(&broken).is_err());
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        assert!(sniff(b"BZh91AY").unwrap_err().contains("bzip2"));
        assert!(sniff(&[0u8; 512]).unwrap_err().contains("neither"));
        assert!(sniff(b"hello").is_err());
    }

    #[test]
    fn every_compression_round_trips() {
        let data = b"some tar bytes".repeat(1000);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            io::Write::write_all(&mut e, &data).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            io::Write::write_all(&mut e, &data).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::stream::encode_all(&data[..], 1).unwrap();
        for (compressed, kind) in [
            (gz, Compression::Gzip),
            (xz, Compression::Xz),
            (zst, Compression::Zstd),
        ] {
            assert_eq!(sniff(&compressed), Ok(kind));
            let mut out = Vec::new();
            decoder(kind, &compressed[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
    }
}
