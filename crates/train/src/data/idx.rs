//! A reader for IDX files (the format of the original MNIST distribution), plain or
//! gzip-compressed, holding unsigned bytes.
//!
//! The bytes come from outside (a data folder anyone can fill), so every allocation is
//! bounded by the file's size or by [`MAX_DECOMPRESSED_BYTES`], and a damaged file is an
//! [`IdxError`] naming it, never a panic; `fuzz/` fuzzes [`decode`], which is what
//! [`read`] does once the file is in memory.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// The most bytes a gzip-compressed IDX file may decompress to: 256 MiB, over five times
/// MNIST's largest file (the training images, 47 MB) and far more than any data set that
/// fits this tool's in-memory training. Deflate packs up to ~1000 bytes into one, so
/// without a cap a small file (a gzip bomb) could ask for any amount of memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 256 << 20;

/// What can be wrong with an IDX file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{path}: corrupt gzip data: {cause}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The file decompresses to more than [`MAX_DECOMPRESSED_BYTES`].
    #[error(
        "{path}: decompresses to more than {cap} bytes, the most an IDX file may hold \
         (a data set this tool can train on is far smaller); is it a gzip bomb?"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, [`MAX_DECOMPRESSED_BYTES`].
        cap: u64,
    },
    /// The header is not that of an IDX file of unsigned bytes.
    #[error("{path}: not an IDX file of unsigned bytes: {detail}")]
    Header {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The header's dimensions do not match the number of bytes that follow.
    #[error(
        "{path}: the header declares {declared} data bytes ({dims:?}), but the file holds {found}"
    )]
    Size {
        /// The file.
        path: PathBuf,
        /// Dimensions from the header.
        dims: Vec<usize>,
        /// Bytes the dimensions call for.
        declared: u128,
        /// Bytes present after the header.
        found: usize,
    },
}

/// The contents of an IDX file: its dimensions and its bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes of the dimensions, outermost first.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// The bytes of the file at `path`, as stored.
pub fn read_raw(path: &Path) -> Result<Vec<u8>, IdxError> {
    std::fs::read(path).map_err(|cause| IdxError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// `raw` decompressed when it starts with gzip's magic bytes (not by the file name), else
/// `raw` itself; `path` only names the file in errors. At most [`MAX_DECOMPRESSED_BYTES`]
/// are decompressed.
pub fn decompress(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>, IdxError> {
    if is_gzip(&raw) {
        gunzip(&raw, path, MAX_DECOMPRESSED_BYTES)
    } else {
        Ok(raw)
    }
}

/// Whether `raw` starts with gzip's magic bytes.
pub fn is_gzip(raw: &[u8]) -> bool {
    raw.starts_with(&[0x1f, 0x8b])
}

/// The decompressed size a gzip file states in its trailer's last four bytes (RFC 1952,
/// ISIZE): the size mod 2^32, 0 for a file shorter than that.
pub fn gzip_stated_size(gz: &[u8]) -> u64 {
    gz.last_chunk::<4>()
        .map_or(0, |size| u64::from(u32::from_le_bytes(*size)))
}

/// `gz` decompressed, if that gives at most `cap` bytes.
fn gunzip(gz: &[u8], path: &Path, cap: u64) -> Result<Vec<u8>, IdxError> {
    let gzip = |cause| IdxError::Gzip {
        path: path.to_path_buf(),
        cause,
    };
    // Room for the stated size at once spares growing the buffer by doubling, which
    // copied and faulted in the 47 MB of training images about twice over. Only a hint: a
    // wrong one costs growth.
    let hint = gzip_stated_size(gz);
    let mut out = Vec::with_capacity(usize::try_from(hint.min(cap)).unwrap_or(0));
    // Reading stops at the cap exactly (a power of two, where `Vec`'s doubling lands), so
    // the buffer never outgrows it; one more byte then tells a file at the cap from a
    // larger one.
    let mut capped = GzDecoder::new(gz).take(cap);
    capped.read_to_end(&mut out).map_err(gzip)?;
    if out.len() as u64 == cap && capped.into_inner().read(&mut [0u8; 1]).map_err(gzip)? > 0 {
        return Err(IdxError::TooLarge {
            path: path.to_path_buf(),
            cap,
        });
    }
    Ok(out)
}

/// Parses the bytes of an IDX file; `path` only names the file in errors.
pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<IdxArray, IdxError> {
    let header = |detail: String| IdxError::Header {
        path: path.to_path_buf(),
        detail,
    };
    if bytes.len() < 4 {
        return Err(header(format!(
            "{} bytes, too short for the 4-byte magic number",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(header(format!(
            "magic number {:02x}{:02x}{:02x}{:02x}, expected 0000 then the type 08 and the rank",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(header(format!(
            "data type {:#04x}, expected 0x08 (unsigned byte)",
            bytes[2]
        )));
    }
    let rank = usize::from(bytes[3]);
    if rank == 0 {
        return Err(header("rank 0, expected at least one dimension".into()));
    }
    let data_start = 4 + 4 * rank;
    if bytes.len() < data_start {
        return Err(header(format!(
            "rank {rank} needs a {data_start}-byte header, the file has {} bytes",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..data_start]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    // Multiplied in u128, checked, before anything is sized from these untrusted counts:
    // 255 dimensions of up to 2^32 - 1 overflow even u128, and a product that wrapped
    // could match the data's length.
    let declared = if dims.contains(&0) {
        Some(0)
    } else {
        dims.iter()
            .try_fold(1u128, |product, &d| product.checked_mul(d as u128))
    };
    let Some(declared) = declared else {
        return Err(header(format!(
            "the dimensions {dims:?} call for more than 2^128 bytes"
        )));
    };
    let found = bytes.len() - data_start;
    if declared != found as u128 {
        return Err(IdxError::Size {
            path: path.to_path_buf(),
            dims,
            declared,
            found,
        });
    }
    let mut data = bytes;
    data.drain(..data_start);
    Ok(IdxArray { dims, data })
}

/// Decompresses (when gzip) and parses the bytes of an IDX file, as [`read`] does once the
/// file is read; `path` only names the file in errors.
pub fn decode(raw: Vec<u8>, path: &Path) -> Result<IdxArray, IdxError> {
    parse(decompress(raw, path)?, path)
}

/// Reads and parses the IDX file at `path`.
pub fn read(path: &Path) -> Result<IdxArray, IdxError> {
    decode(read_raw(path)?, path)
}

/// The bytes of an IDX file of unsigned bytes with these dimensions: what [`parse`]
/// reads, for writing data sets (and damaged ones) in tests.
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_plain_and_gzipped_files() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = encode(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let plain = dir.path().join("x-idx3-ubyte");
        std::fs::write(&plain, &bytes).unwrap();
        let gz = dir.path().join("whatever-name");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        for path in [plain, gz] {
            let a = read(&path).unwrap();
            assert_eq!(a.dims, vec![2, 2, 3]);
            assert_eq!(a.data, (1..=12).collect::<Vec<u8>>());
        }
    }

    #[test]
    fn rejects_bad_headers_and_sizes_naming_the_file() {
        let p = Path::new("data/bad-file");
        let err = parse(vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0], p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad-file") && err.contains("0x0d"), "{err}");
        let err = parse(vec![0x50, 0x4b, 3, 4], p).unwrap_err().to_string();
        assert!(err.contains("magic"), "{err}");
        // Claims 4 billion items but holds three bytes.
        let err = parse(encode(&[u32::MAX, 1], &[1, 2, 3]), p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("4294967295") && err.contains("holds 3"),
            "{err}"
        );
        let err = parse(encode(&[2], &[1, 2, 3]), p).unwrap_err();
        assert!(matches!(
            err,
            IdxError::Size {
                found: 3,
                declared: 2,
                ..
            }
        ));
        assert!(matches!(
            parse(vec![0, 0, 8, 3, 0], p),
            Err(IdxError::Header { .. })
        ));
        // Found by fuzzing: five dimensions of 2^32 - 1 overflowed the u128 product.
        let err = parse(encode(&[u32::MAX; 5], &[1, 2]), p).unwrap_err();
        assert!(matches!(err, IdxError::Header { .. }), "{err}");
        assert!(err.to_string().contains("2^128"), "{err}");
        let err = parse(
            encode(&[u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX, 0], &[]),
            p,
        );
        assert_eq!(err.unwrap().data, Vec::<u8>::new());
    }

    #[test]
    fn decompression_stops_at_the_cap() {
        let p = Path::new("data/bomb.gz");
        let bytes = encode(&[10, 10], &[7; 100]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        let gz = enc.finish().unwrap();
        let len = bytes.len() as u64;
        assert_eq!(gunzip(&gz, p, len).unwrap(), bytes);
        let err = gunzip(&gz, p, len - 1).unwrap_err();
        assert!(matches!(err, IdxError::TooLarge { cap, .. } if cap == len - 1));
        let err = err.to_string();
        assert!(
            err.contains("bomb.gz") && err.contains("more than 111 bytes"),
            "{err}"
        );
        // What `read` does once the file is in memory, plain or gzipped alike.
        assert_eq!(decode(gz, p).unwrap(), decode(bytes, p).unwrap());
    }

    #[test]
    fn corrupt_gzip_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, IdxError::Gzip { .. }), "{err}");
        assert!(err.to_string().contains("broken.gz"));
    }
}
