//! Where a run's MNIST comes from (`--data`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Result, bail};

use super::{Mnist, mnist};

/// The value of `--data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The copy vendored in this repository (`data/mnist`), checked against its SHA-256.
    Auto,
    /// `candle_datasets::vision::mnist::load()`: the Hugging Face cache, then the hub.
    Hf,
    /// Fashion-MNIST as Debian's `dataset-fashion-mnist` package installs it.
    Fashion,
    /// Any folder holding the four IDX files.
    Dir(PathBuf),
}

impl FromStr for DataSource {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Self::Auto,
            "hf" => Self::Hf,
            "fashion" => Self::Fashion,
            path => Self::Dir(PathBuf::from(path)),
        })
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Hf => f.write_str("hf"),
            Self::Fashion => f.write_str("fashion"),
            Self::Dir(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where Debian's `dataset-fashion-mnist` package puts the four files.
pub const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Loads Fashion-MNIST (same sizes and IDX layout as MNIST) from `dir`, with an error
/// that says how to install it when it is not there.
pub fn load_fashion(dir: &Path) -> Result<Mnist> {
    if !dir.is_dir() {
        bail!(
            "--data fashion: Fashion-MNIST is not installed ({} does not exist); on Debian or \
             Ubuntu install it with `apt-get install dataset-fashion-mnist`, or pass --data PATH \
             with a folder holding its four IDX files",
            dir.display()
        );
    }
    mnist::load_dir(dir, false)
}

/// Folders `--data auto` looks in: the repository this binary was built from, then
/// `data/mnist` under the working directory.
pub fn vendored_dirs() -> Vec<PathBuf> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    vec![built_from, PathBuf::from("data/mnist")]
}

impl DataSource {
    /// Loads MNIST from this source.
    pub fn load(&self) -> Result<Mnist> {
        match self {
            Self::Auto => {
                let dirs = vendored_dirs();
                match dirs.iter().find(|d| d.is_dir()) {
                    Some(dir) => mnist::load_dir(dir, true),
                    None => bail!(
                        "--data auto: no vendored MNIST in {}; pass --data PATH with a folder \
                         holding the four MNIST files",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                }
            }
            Self::Dir(dir) => {
                if !dir.is_dir() {
                    bail!("--data {}: no such folder", dir.display());
                }
                mnist::load_dir(dir, false)
            }
            Self::Hf => load_hub(),
            Self::Fashion => load_fashion(Path::new(FASHION_DIR)),
        }
    }
}

#[cfg(feature = "hub")]
fn load_hub() -> Result<Mnist> {
    super::hub::load()
}

#[cfg(not(feature = "hub"))]
fn load_hub() -> Result<Mnist> {
    bail!(
        "--data hf: this vgrad was built without the `hub` feature; rebuild with default \
         features, or use --data auto (the vendored copy) or --data PATH"
    )
}
