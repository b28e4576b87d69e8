//! Decompressed copies of the vendored MNIST files, shared by every run on the machine.
//!
//! Inflating the four gzip files took about 0.1 s of every process (a tenth of a
//! reference ensemble run; the seed sweep starts 4 such processes, the remedies sweep 39);
//! reading the 55 MB back from a file takes a fifth of that. A copy is kept only of a
//! file that decompressed from the vendored gzip bytes (checked by their SHA-256), and is
//! found by the SHA-256 of the genuine decompressed file, so a run that reads it reads
//! exactly what decompressing would have given. Entries are written whole and then
//! renamed into place, so that a process reading while another writes sees either the
//! whole file or none. Where no vendored folder is found (a `vgrad` moved from its
//! checkout, or run on a machine that shares the home folder), `--data auto` reads MNIST
//! from these copies alone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that names the cache folder; set but empty, it turns the
/// cache off.
pub const CACHE_VAR: &str = "VGRAD_CACHE";

/// A folder of decompressed files, each named by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (created when the first entry is written).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache [`CACHE_VAR`] names, else `$XDG_CACHE_HOME/vgrad/mnist`, else
    /// `$HOME/.cache/vgrad/mnist`; `None` where [`CACHE_VAR`] is set but empty, or none of
    /// them is set.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// [`Cache::from_env`] with the environment's variables read through `get`.
    pub(crate) fn from_vars(get: impl Fn(&str) -> Option<OsString>) -> Option<Self> {
        if let Some(dir) = get(CACHE_VAR) {
            return (!dir.is_empty()).then(|| Self::at(dir));
        }
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let base = var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cache")))?;
        Some(Self::at(base.join("vgrad").join("mnist")))
    }

    /// The folder the entries are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the copy of the file whose SHA-256 is `sha256` is kept.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.idx"))
    }

    /// Whether a copy of the file whose SHA-256 is `sha256` is kept, of exactly `len`
    /// bytes (as [`Cache::read`] would find it), without reading it.
    pub fn holds(&self, sha256: &str, len: u64) -> bool {
        std::fs::metadata(self.path_of(sha256)).is_ok_and(|m| m.is_file() && m.len() == len)
    }

    /// The kept copy of the file whose SHA-256 is `sha256`, if there is one of exactly
    /// `len` bytes (a shorter or longer one is not the file, and is ignored).
    pub fn read(&self, sha256: &str, len: u64) -> Option<Vec<u8>> {
        let path = self.path_of(sha256);
        if std::fs::metadata(&path).ok()?.len() != len {
            return None;
        }
        std::fs::read(&path)
            .ok()
            .filter(|bytes| bytes.len() as u64 == len)
    }

    /// Keeps `bytes` as the copy of the file whose SHA-256 is `sha256`. A cache that
    /// cannot be written (a read-only home, a full disk) only costs the next run the
    /// decompression again, so a failure is logged, not returned.
    pub fn write(&self, sha256: &str, bytes: &[u8]) {
        if let Err(err) = self.try_write(sha256, bytes) {
            tracing::debug!(
                "not keeping a decompressed copy in {}: {err}",
                self.dir.display()
            );
        }
    }

    fn try_write(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        // Unique among the processes and threads writing at once.
        static WRITES: AtomicUsize = AtomicUsize::new(0);
        std::fs::create_dir_all(&self.dir)?;
        let partial = self.dir.join(format!(
            ".{sha256}.{}.{}.partial",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, self.path_of(sha256)));
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_and_finds_a_file_of_the_stated_length_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("nested"));
        assert_eq!(cache.read("abc", 3), None, "nothing kept yet");
        cache.write("abc", &[1, 2, 3]);
        assert_eq!(cache.read("abc", 3), Some(vec![1, 2, 3]));
        assert_eq!(cache.read("abc", 4), None, "a copy of another length");
        assert_eq!(cache.read("abd", 3), None, "another file");
        // Only the entry is left behind, no partial file.
        let names: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc.idx"]);
    }

    #[test]
    fn the_folder_comes_from_vgrad_cache_then_xdg_then_home() {
        let from = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, OsString)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect();
            Cache::from_vars(|name: &str| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
            .map(|c| c.dir().to_path_buf())
        };
        let all = [
            ("VGRAD_CACHE", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(from(&all), Some("/c".into()));
        assert_eq!(from(&all[1..]), Some("/x/vgrad/mnist".into()));
        assert_eq!(from(&all[2..]), Some("/h/.cache/vgrad/mnist".into()));
        assert_eq!(
            from(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")]),
            Some("/h/.cache/vgrad/mnist".into())
        );
        assert_eq!(
            from(&[("VGRAD_CACHE", ""), ("HOME", "/h")]),
            None,
            "turned off"
        );
        assert_eq!(from(&[]), None);
    }

    #[test]
    fn an_unwritable_cache_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"not a folder").unwrap();
        let cache = Cache::at(file.join("cache"));
        cache.write("abc", &[1, 2, 3]);
        assert_eq!(cache.read("abc", 3), None);
    }
}
