//! MNIST from a folder of the four original IDX files, gzipped or not, under either of the
//! two common file-name styles (`train-images-idx3-ubyte` or `train-images.idx3-ubyte`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cache::Cache;
use super::idx::{self, IdxArray};
use super::{DataError, ImageSet, Mnist};

/// One of the four files of the distribution.
#[derive(Debug, Clone, Copy)]
pub struct MnistFile {
    /// File name before the type suffix, e.g. `train-images`.
    pub stem: &'static str,
    /// The type suffix, e.g. `idx3-ubyte`.
    pub kind: &'static str,
    /// SHA-256 of the genuine MNIST file, decompressed.
    pub sha256: &'static str,
    /// Size in bytes of the genuine file, decompressed.
    pub len: u64,
    /// SHA-256 of the gzip file as vendored in `data/mnist` (and `shared/data/mnist`):
    /// a file with these bytes is genuine without hashing the five times larger
    /// decompressed data, which every run of a sweep would otherwise do.
    pub vendored_gz_sha256: &'static str,
}

/// The genuine MNIST files (checksums from `shared/data/README.md`).
pub const MNIST_FILES: [MnistFile; 4] = [
    MnistFile {
        stem: "train-images",
        kind: "idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        len: 47_040_016,
        vendored_gz_sha256: "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    },
    MnistFile {
        stem: "train-labels",
        kind: "idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        len: 60_008,
        vendored_gz_sha256: "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    },
    MnistFile {
        stem: "t10k-images",
        kind: "idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        len: 7_840_016,
        vendored_gz_sha256: "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    },
    MnistFile {
        stem: "t10k-labels",
        kind: "idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        len: 10_008,
        vendored_gz_sha256: "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    },
];

/// The path of `file` in `dir`, under whichever accepted name exists.
pub fn find(dir: &Path, file: &MnistFile) -> Result<PathBuf, DataError> {
    let names: Vec<String> = ["-", "."]
        .iter()
        .flat_map(|sep| {
            let base = format!("{}{sep}{}", file.stem, file.kind);
            [format!("{base}.gz"), base]
        })
        .collect();
    names
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| DataError::MissingFile {
            dir: dir.to_path_buf(),
            stem: file.stem,
            names: names.join(", "),
        })
}

/// Reads one file, checking its checksum when `verify` is set. The vendored gzip file
/// (which `verify` recognises by its checksum) is read from `cache` where a copy is kept,
/// and decompressed into it where none is.
fn read_file(
    dir: &Path,
    file: &MnistFile,
    verify: bool,
    cache: Option<&Cache>,
) -> Result<IdxArray, DataError> {
    let path = find(dir, file)?;
    let raw = idx::read_raw(&path)?;
    let vendored = verify && idx::is_gzip(&raw) && hex_sha256(&raw) == file.vendored_gz_sha256;
    let cache = cache.filter(|_| vendored);
    if let Some(cache) = cache {
        // Exactly the vendored file's size: every MNIST file is under 4 GiB.
        if let Some(bytes) = cache.read(file.sha256, idx::gzip_stated_size(&raw)) {
            return Ok(idx::parse(bytes, &path)?);
        }
    }
    let bytes = idx::decompress(raw, &path)?;
    if let Some(cache) = cache {
        cache.write(file.sha256, &bytes);
    }
    if verify && !vendored {
        let found = hex_sha256(&bytes);
        if found != file.sha256 {
            return Err(DataError::Checksum {
                path,
                found,
                expected: file.sha256,
            });
        }
    }
    Ok(idx::parse(bytes, &path)?)
}

/// SHA-256 of `bytes`, in lower-case hex.
fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Pairs an images file with its labels file into a checked [`ImageSet`].
fn image_set(images: IdxArray, labels: IdxArray, what: &str) -> Result<ImageSet, DataError> {
    let invalid = |message: String| Err(DataError::Invalid(message));
    let [n, rows, cols] = images.dims[..] else {
        return invalid(format!(
            "{what} images: expected 3 dimensions (count, 28, 28), found {:?}",
            images.dims
        ));
    };
    if (rows, cols) != (28, 28) {
        return invalid(format!(
            "{what} images: expected 28x28 pixels, found {rows}x{cols}"
        ));
    }
    let [n_labels] = labels.dims[..] else {
        return invalid(format!(
            "{what} labels: expected 1 dimension, found {:?}",
            labels.dims
        ));
    };
    if n != n_labels {
        return invalid(format!("{what}: {n} images but {n_labels} labels"));
    }
    if let Some((i, &label)) = labels.data.iter().enumerate().find(|(_, l)| **l > 9) {
        return invalid(format!(
            "{what} labels: label {label} at index {i} is outside 0-9"
        ));
    }
    Ok(ImageSet {
        images: images.data,
        labels: labels.data,
        rows,
        cols,
    })
}

/// Loads MNIST from `dir`; with `verify`, every file must be the genuine MNIST file, and
/// the vendored files are read from the [`Cache`] of the environment
/// ([`Cache::from_env`]).
pub fn load_dir(dir: &Path, verify: bool) -> Result<Mnist, DataError> {
    load_dir_cached(dir, verify, Cache::from_env().as_ref())
}

/// [`load_dir`] with decompressed copies of the vendored files kept in `cache`.
pub fn load_dir_cached(
    dir: &Path,
    verify: bool,
    cache: Option<&Cache>,
) -> Result<Mnist, DataError> {
    let [train_x, train_y, test_x, test_y] = MNIST_FILES;
    let read = |f: &MnistFile| read_file(dir, f, verify, cache);
    let train = image_set(read(&train_x)?, read(&train_y)?, "training")?;
    let test = image_set(read(&test_x)?, read(&test_y)?, "test")?;
    Ok(Mnist { train, test })
}

/// Whether `cache` holds a decompressed copy of each of the four files.
pub fn in_cache(cache: &Cache) -> bool {
    MNIST_FILES.iter().all(|f| cache.holds(f.sha256, f.len))
}

/// MNIST from the decompressed copies in `cache` alone: what `--data auto` reads where no
/// vendored folder is (a binary moved from its checkout, or run on a cluster node that
/// shares the home folder where a run from the checkout kept them). A copy is trusted by
/// its name and length, as where the vendored files are there (see [`super::cache`]):
/// hashing the 55 MB would cost every run of a sweep a few tenths of a second.
pub fn load_cache(cache: &Cache) -> Result<Mnist, DataError> {
    let read = |file: &MnistFile| {
        let path = cache.path_of(file.sha256);
        // Found by `in_cache`, but another process may have removed it since.
        let bytes = cache.read(file.sha256, file.len).ok_or_else(|| {
            DataError::Invalid(format!(
                "{}: the decompressed copy of {} is gone or no longer {} bytes",
                path.display(),
                file.stem,
                file.len
            ))
        })?;
        Ok::<_, DataError>(idx::parse(bytes, &path)?)
    };
    let [train_x, train_y, test_x, test_y] = MNIST_FILES;
    let train = image_set(read(&train_x)?, read(&train_y)?, "training")?;
    let test = image_set(read(&test_x)?, read(&test_y)?, "test")?;
    Ok(Mnist { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
        std::fs::write(path, idx::encode(dims, data)).unwrap();
    }

    fn write_set(dir: &Path, sep: &str, n: u32, labels: &[u8]) {
        let px = vec![7u8; n as usize * 784];
        write_idx(
            &dir.join(format!("train-images{sep}idx3-ubyte")),
            &[n, 28, 28],
            &px,
        );
        write_idx(
            &dir.join(format!("train-labels{sep}idx1-ubyte")),
            &[n],
            labels,
        );
        write_idx(
            &dir.join(format!("t10k-images{sep}idx3-ubyte")),
            &[n, 28, 28],
            &px,
        );
        write_idx(
            &dir.join(format!("t10k-labels{sep}idx1-ubyte")),
            &[n],
            labels,
        );
    }

    #[test]
    fn loads_either_name_style() {
        for sep in ["-", "."] {
            let dir = tempfile::tempdir().unwrap();
            write_set(dir.path(), sep, 3, &[1, 2, 3]);
            let m = load_dir(dir.path(), false).unwrap();
            assert_eq!(m.train.labels, vec![1, 2, 3]);
            assert_eq!(m.test.pixels(), 784);
        }
    }

    #[test]
    fn checks_labels_counts_and_checksums() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), "-", 3, &[1, 12, 3]);
        let err = load_dir(dir.path(), false).unwrap_err().to_string();
        assert!(err.contains("label 12 at index 1"), "{err}");
        write_set(dir.path(), "-", 3, &[1, 2, 3]);
        let err = format!("{:#}", load_dir(dir.path(), true).unwrap_err());
        assert!(
            err.contains("SHA-256") && err.contains("train-images-idx3-ubyte"),
            "{err}"
        );
        let empty = tempfile::tempdir().unwrap();
        let err = load_dir(empty.path(), false).unwrap_err().to_string();
        assert!(err.contains("train-images.idx3-ubyte.gz"), "{err}");
    }

    #[test]
    fn vendored_files_are_read_back_from_the_cache_as_decompressed() {
        let vendored = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let fresh = load_dir_cached(&vendored, true, None).unwrap();
        let first = load_dir_cached(&vendored, true, Some(&cache)).unwrap();
        for file in &MNIST_FILES {
            let kept = std::fs::read(dir.path().join(format!("{}.idx", file.sha256))).unwrap();
            assert_eq!(
                hex_sha256(&kept),
                file.sha256,
                "{} kept as decompressed",
                file.stem
            );
        }
        // Read back from the copies: a changed copy of the same length shows that they
        // are what the second load reads.
        let images = dir.path().join(format!("{}.idx", MNIST_FILES[2].sha256));
        let mut kept = std::fs::read(&images).unwrap();
        kept[16] ^= 1;
        std::fs::write(&images, &kept).unwrap();
        let second = load_dir_cached(&vendored, true, Some(&cache)).unwrap();
        assert_eq!((&first.train, &second.train), (&fresh.train, &fresh.train));
        assert_eq!(second.test.images[0], fresh.test.images[0] ^ 1);
        // A copy of another length is not the file: decompressed and kept again.
        std::fs::write(&images, &kept[..100]).unwrap();
        let third = load_dir_cached(&vendored, true, Some(&cache)).unwrap();
        assert_eq!(third.test, fresh.test);
        assert_eq!(std::fs::read(&images).unwrap().len(), kept.len());
        // Without `verify` (a folder the user named) the cache is not used.
        let other = tempfile::tempdir().unwrap();
        load_dir_cached(&vendored, false, Some(&Cache::at(other.path()))).unwrap();
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_stated_sizes_are_the_vendored_files_decompressed() {
        let vendored = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        for file in &MNIST_FILES {
            let raw = idx::read_raw(&find(&vendored, file).unwrap()).unwrap();
            assert_eq!(idx::gzip_stated_size(&raw), file.len, "{}", file.stem);
        }
    }

    #[test]
    fn the_cache_alone_gives_the_vendored_data() {
        let vendored = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        assert!(!in_cache(&cache));
        let fresh = load_dir_cached(&vendored, true, Some(&cache)).unwrap();
        assert!(in_cache(&cache));
        let cached = load_cache(&cache).unwrap();
        assert_eq!((cached.train, cached.test), (fresh.train, fresh.test));
        // A copy cut short is not the file: not found, and named if it goes after the look.
        let labels = dir.path().join(format!("{}.idx", MNIST_FILES[3].sha256));
        std::fs::write(&labels, b"short").unwrap();
        assert!(!in_cache(&cache));
        let err = load_cache(&cache).unwrap_err().to_string();
        assert!(
            err.contains(&labels.display().to_string()) && err.contains("t10k-labels"),
            "{err}"
        );
    }

    #[test]
    fn the_vendored_file_or_any_compression_of_the_genuine_data_passes() {
        let labels = &MNIST_FILES[1];
        let vendored = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let read = read_file(&vendored, labels, true, None).unwrap();
        assert_eq!(read.dims, vec![60_000]);
        // The same data compressed anew: other gzip bytes, so the decompressed data's
        // checksum decides.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-labels-idx1-ubyte.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &idx::encode(&[60_000], &read.data)).unwrap();
        let recompressed = gz.finish().unwrap();
        assert_ne!(hex_sha256(&recompressed), labels.vendored_gz_sha256);
        std::fs::write(&path, &recompressed).unwrap();
        assert_eq!(read_file(dir.path(), labels, true, None).unwrap(), read);
        // One label changed: caught.
        let mut changed = read.data.clone();
        changed[7] = (changed[7] + 1) % 10;
        std::fs::write(&path, idx::encode(&[60_000], &changed)).unwrap();
        let err = read_file(dir.path(), labels, true, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SHA-256") && err.contains(labels.sha256),
            "{err}"
        );
    }
}
