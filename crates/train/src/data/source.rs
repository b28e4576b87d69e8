//! Loading the data set a run's `--data` names.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use vgrad_record::DataSource;

use super::cache::{CACHE_VAR, Cache};
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

/// The environment variable naming the folder `--data auto` reads MNIST from, instead of
/// looking for it: the four files, checked against their checksums as the vendored copy
/// is. Unlike `--data PATH` it leaves the run's configuration `auto`, so a sweep's runs
/// keep their folder names (which hash the configuration) on a machine without the checkout.
pub const DATA_VAR: &str = "VGRAD_DATA";

/// Folders `--data auto` looks in: the repository this library was built from, then
/// `data/mnist` under the working directory.
pub fn vendored_dirs() -> Vec<PathBuf> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    vec![built_from, PathBuf::from("data/mnist")]
}

/// Where `--data auto` found MNIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoSource {
    /// A folder of the four files: [`DATA_VAR`]'s, or a vendored copy.
    Dir(PathBuf),
    /// The decompressed copies a run from a checkout kept ([`Cache`]), all four there.
    Cache(Cache),
}

/// Where `--data auto` reads MNIST from: the folder [`DATA_VAR`] names where it is set;
/// else the first of `dirs` that exists (the checkout's copy, found where the binary was
/// built); else the decompressed cache, so that a binary moved, or copied to a machine
/// that shares the home folder, still finds the data without a network. The environment's
/// variables are read through `get`.
pub fn locate_auto(
    dirs: &[PathBuf],
    get: impl Fn(&str) -> Option<OsString>,
) -> Result<AutoSource, DataError> {
    if let Some(dir) = get(DATA_VAR).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Ok(AutoSource::Dir(dir))
        } else {
            Err(DataError::DataVarNotFolder(dir))
        };
    }
    if let Some(dir) = dirs.iter().find(|d| d.is_dir()) {
        return Ok(AutoSource::Dir(dir.clone()));
    }
    let cache = Cache::from_vars(&get);
    if let Some(cache) = cache.as_ref().filter(|c| mnist::in_cache(c)) {
        return Ok(AutoSource::Cache(cache.clone()));
    }
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let dirs = dirs.join(", ");
    let looked = match &cache {
        Some(cache) => format!(
            "{dirs}, or the decompressed cache {}",
            cache.dir().display()
        ),
        None => format!(
            "{dirs} (and no decompressed cache: {CACHE_VAR} is empty, or no home folder is set)"
        ),
    };
    Err(DataError::AutoNotFound { looked })
}

/// Loads MNIST for `--data auto` from where [`locate_auto`] finds it in this process's
/// environment.
fn load_auto() -> Result<Mnist, DataError> {
    let get = |name: &str| std::env::var_os(name);
    match locate_auto(&vendored_dirs(), get)? {
        AutoSource::Dir(dir) => mnist::load_dir_cached(&dir, true, Cache::from_vars(get).as_ref()),
        AutoSource::Cache(cache) => mnist::load_cache(&cache),
    }
}

/// Loads the data set `source` names.
pub fn load(source: &DataSource) -> Result<Mnist, DataError> {
    match source {
        DataSource::Auto => load_auto(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// [`locate_auto`] with only `vars` set.
    fn locate(dirs: &[PathBuf], vars: &[(&str, &Path)]) -> Result<AutoSource, DataError> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_os_str().to_owned()))
            .collect();
        locate_auto(dirs, |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn auto_looks_in_the_variable_then_the_checkout_then_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let gone = tmp.path().join("moved-checkout/data/mnist");
        let checkout = tmp.path().join("checkout");
        std::fs::create_dir_all(&checkout).unwrap();
        let home = tmp.path().join("home");
        let cache = Cache::at(home.join(".cache/vgrad/mnist"));
        let vendored = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let fresh = mnist::load_dir_cached(&vendored, true, Some(&cache)).unwrap();

        let dirs = [gone.clone(), checkout.clone()];
        let found = locate(&dirs, &[("HOME", &home)]).unwrap();
        assert_eq!(
            found,
            AutoSource::Dir(checkout.clone()),
            "the checkout first"
        );
        let found = locate(&dirs[..1], &[("HOME", &home)]).unwrap();
        assert_eq!(found, AutoSource::Cache(cache.clone()), "then the cache");
        let AutoSource::Cache(cache) = found else {
            unreachable!()
        };
        let loaded = mnist::load_cache(&cache).unwrap();
        assert_eq!((loaded.train, loaded.test), (fresh.train, fresh.test));
        let found = locate(&dirs, &[("HOME", &home), (DATA_VAR, &vendored)]).unwrap();
        assert_eq!(found, AutoSource::Dir(vendored), "the variable before all");
    }

    #[test]
    fn auto_without_mnist_says_in_one_line_where_it_looked_and_how_to_point_at_it() {
        let tmp = tempfile::tempdir().unwrap();
        let gone = tmp.path().join("moved-checkout/data/mnist");
        let home = tmp.path().join("home");
        let err = locate(std::slice::from_ref(&gone), &[("HOME", &home)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "--data auto: no MNIST in {}, or the decompressed cache {}; set VGRAD_DATA \
                 to a folder holding the four MNIST files (a checkout's data/mnist), or pass \
                 --data PATH",
                gone.display(),
                home.join(".cache/vgrad/mnist").display()
            )
        );
        assert!(!err.contains('\n'));
        let missing = tmp.path().join("nowhere");
        let err = locate(&[], &[(DATA_VAR, &missing)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "VGRAD_DATA={}: no such folder; expected a folder holding the four MNIST \
                 files (--data auto reads them from it)",
                missing.display()
            )
        );
    }
}
