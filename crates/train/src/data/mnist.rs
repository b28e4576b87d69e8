//! MNIST from a folder of the four original IDX files, gzipped or not, under either of the
//! two common file-name styles (`train-images-idx3-ubyte` or `train-images.idx3-ubyte`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

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
}

/// The genuine MNIST files (checksums from `shared/data/README.md`).
pub const MNIST_FILES: [MnistFile; 4] = [
    MnistFile {
        stem: "train-images",
        kind: "idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    MnistFile {
        stem: "train-labels",
        kind: "idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    MnistFile {
        stem: "t10k-images",
        kind: "idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    MnistFile {
        stem: "t10k-labels",
        kind: "idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
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

/// Reads one file, checking its checksum when `verify` is set.
fn read_file(dir: &Path, file: &MnistFile, verify: bool) -> Result<IdxArray, DataError> {
    let path = find(dir, file)?;
    let bytes = idx::read_bytes(&path)?;
    if verify {
        let found = format!("{:x}", Sha256::digest(&bytes));
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

/// Loads MNIST from `dir`; with `verify`, every file must be the genuine MNIST file.
pub fn load_dir(dir: &Path, verify: bool) -> Result<Mnist, DataError> {
    let [train_x, train_y, test_x, test_y] = MNIST_FILES;
    let read = |f: &MnistFile| read_file(dir, f, verify);
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
}
