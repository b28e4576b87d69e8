//! Loading the data set a run's `--data` names.

use std::path::{Path, PathBuf};

use vgrad_record::DataSource;

use super::{DataError, Mnist, mnist};

/// Where Debian's `dataset-fashion-mnist` package puts the four files.
pub const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Loads Fashion-MNIST (same sizes and IDX layout as MNIST) from `dir`, with an error
/// that says how to install it when it is not there.
pub fn load_fashion(dir: &Path) -> Result<Mnist, DataError> {
    if !dir.is_dir() {
        return Err(DataError::FashionMissing(dir.to_path_buf()));
    }
    mnist::load_dir(dir, false)
}

/// Folders `--data auto` looks in: the repository this library was built from, then
/// `data/mnist` under the working directory.
pub fn vendored_dirs() -> Vec<PathBuf> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    vec![built_from, PathBuf::from("data/mnist")]
}

/// Loads the data set `source` names.
pub fn load(source: &DataSource) -> Result<Mnist, DataError> {
    match source {
        DataSource::Auto => {
            let dirs = vendored_dirs();
            match dirs.iter().find(|d| d.is_dir()) {
                Some(dir) => mnist::load_dir(dir, true),
                None => Err(DataError::NoVendoredCopy {
                    dirs: dirs
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                }),
            }
        }
        DataSource::Dir(dir) => {
            if !dir.is_dir() {
                return Err(DataError::NoSuchFolder(dir.clone()));
            }
            mnist::load_dir(dir, false)
        }
        DataSource::Hf => load_hub(),
        DataSource::Fashion => load_fashion(Path::new(FASHION_DIR)),
    }
}

#[cfg(feature = "hub")]
fn load_hub() -> Result<Mnist, DataError> {
    super::hub::load()
}

#[cfg(not(feature = "hub"))]
fn load_hub() -> Result<Mnist, DataError> {
    Err(DataError::HubNotBuilt)
}
