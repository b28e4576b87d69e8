//! MNIST in memory: where it comes from, how it is split, and how batches are drawn.

use std::path::PathBuf;

use vgrad_kernels::pixels::{prefetch, scale_pixels};

pub mod adding;
pub mod batches;
pub mod cache;
#[cfg(feature = "hub")]
pub mod hub;
pub mod idx;
pub mod mnist;
pub mod source;

pub use batches::BatchSampler;
pub use idx::IdxError;
pub use source::load;

/// Why a data set could not be loaded; every variant names the file, folder or flag.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An IDX file that cannot be read or parsed.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// A folder without one of the four files.
    #[error("{dir}: no {stem} file; expected one of: {names}")]
    MissingFile {
        /// The folder.
        dir: PathBuf,
        /// The file looked for, e.g. `train-images`.
        stem: &'static str,
        /// The names accepted for it.
        names: String,
    },
    /// A vendored file that is not the genuine MNIST file.
    #[error(
        "{path}: SHA-256 of the decompressed data is {found}, expected {expected} (the genuine \
         MNIST file); restore it with `git checkout -- data/mnist` or copy it from shared/data/mnist"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Its checksum.
        found: String,
        /// The genuine file's.
        expected: &'static str,
    },
    /// Files that read but do not form a data set (sizes, shapes, labels).
    #[error("{0}")]
    Invalid(String),
    /// `--data auto` that found MNIST nowhere it looks.
    #[error(
        "--data auto: no MNIST in {looked}; set VGRAD_DATA to a folder holding the four MNIST \
         files (a checkout's data/mnist), or pass --data PATH"
    )]
    AutoNotFound {
        /// The places looked in, for the message.
        looked: String,
    },
    /// `VGRAD_DATA` that names no folder.
    #[error(
        "VGRAD_DATA={}: no such folder; expected a folder holding the four MNIST files \
         (--data auto reads them from it)", .0.display()
    )]
    DataVarNotFolder(PathBuf),
    /// `--data PATH` that is not a folder.
    #[error("--data {}: no such folder", .0.display())]
    NoSuchFolder(PathBuf),
    /// `--data fashion` without Debian's package.
    #[error(
        "--data fashion: Fashion-MNIST is not installed ({} does not exist); on Debian or \
         Ubuntu install it with `apt-get install dataset-fashion-mnist`, or pass --data PATH \
         with a folder holding its four IDX files", .0.display()
    )]
    FashionMissing(PathBuf),
    /// `--data hf` with a build that has no hub loader.
    #[error(
        "--data hf: this vgrad was built without the `hub` feature; build it with \
         `cargo build --release -p vgrad-cli --features hub`, or use --data auto (the \
         vendored copy) or --data PATH"
    )]
    HubNotBuilt,
    /// `--data hf` that found MNIST neither in the cache nor on the hub.
    #[error(
        "--data hf: MNIST is neither in the Hugging Face cache nor reachable on the hub; \
         without a network use --data auto (the vendored copy) or --data PATH: {0}"
    )]
    Hub(String),
}

/// Images (bytes, row-major) with their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// `len() * rows * cols` grey levels, 0..=255.
    pub images: Vec<u8>,
    /// One class per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// Images `start..end` as a set of their own.
    pub fn slice(&self, start: usize, end: usize) -> Self {
        let p = self.pixels();
        Self {
            images: self.images[start * p..end * p].to_vec(),
            labels: self.labels[start..end].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Appends the images `indices` to `x` (pixels scaled to [0, 1]) and their labels to
    /// `y`. Appending lets a batch be built in the buffer its tensor then owns: copying it
    /// into a tensor was a fifteenth of an ensemble's step.
    pub fn gather(&self, indices: &[u32], x: &mut Vec<f32>, y: &mut Vec<u32>) {
        let p = self.pixels();
        x.reserve(indices.len() * p);
        y.reserve(indices.len());
        for (j, &i) in indices.iter().enumerate() {
            if let Some(&ahead) = indices.get(j + PREFETCH_AHEAD) {
                let ahead = ahead as usize;
                prefetch(&self.images[ahead * p..(ahead + 1) * p]);
            }
            let i = i as usize;
            scale_pixels(&self.images[i * p..(i + 1) * p], x);
            y.push(u32::from(self.labels[i]));
        }
    }
}

/// How many images ahead [`ImageSet::gather`] asks for: the images of a batch lie at
/// random in 47 MB, and each one's first cache lines missed every cache.
const PREFETCH_AHEAD: usize = 8;

/// The MNIST training and test sets as distributed.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// The 60,000 training images.
    pub train: ImageSet,
    /// The 10,000 test images.
    pub test: ImageSet,
}

/// The three parts an experiment uses.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Images the optimizer sees.
    pub train: ImageSet,
    /// Held-out images for the validation accuracy.
    pub val: ImageSet,
    /// The test set, used once at the end.
    pub test: ImageSet,
}

impl Mnist {
    /// The reference split of TensorFlow's MNIST helper: the first `validation` training
    /// images are held out, the rest are trained on.
    pub fn split(self, validation: usize) -> Result<Splits, DataError> {
        let n = self.train.len();
        if validation >= n {
            return Err(DataError::Invalid(format!(
                "cannot hold out {validation} validation images from a training set of {n}"
            )));
        }
        let val = self.train.slice(0, validation);
        let mut train = self.train;
        // The training images move down in their own buffer rather than into a new one:
        // fresh memory for 43 MB, faulted in page by page, cost more than the rest of
        // loading (about a tenth of a second per process, on every run of a sweep).
        train.images.drain(..validation * train.pixels());
        train.labels.drain(..validation);
        Ok(Splits {
            val,
            train,
            test: self.test,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_scaled_pixels_and_labels() {
        let set = ImageSet {
            images: vec![0, 255, 51, 102, 1, 2, 3, 4],
            labels: vec![7, 3],
            rows: 2,
            cols: 2,
        };
        let (mut x, mut y) = (Vec::new(), Vec::new());
        set.gather(&[1, 0], &mut x, &mut y);
        assert_eq!(y, vec![3, 7]);
        assert_eq!(&x[4..], &[0.0, 1.0, 0.2, 0.4]);
        assert_eq!(x[0], 1.0 / 255.0);
        let splits = Mnist {
            train: set.clone(),
            test: set,
        }
        .split(1)
        .unwrap();
        assert_eq!((splits.val.labels[0], splits.train.labels[0]), (7, 3));
    }
}
