//! The seeds of a command, spelt one way everywhere: `vgrad train --seeds`,
//! `cargo xtask sweep --seeds` and a sweep file's `seeds`.

use std::fmt;
use std::str::FromStr;

/// Distinct seeds in the order given. As text: `N`, the first N seeds (0 to N-1); `A-B`,
/// a range; or a comma-separated list of seeds and ranges, `0,3,7` or `0-4,9`. One seed
/// alone is the range `A-A` (or `--seed A` for `vgrad train`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeds(Vec<u64>);

/// What the seed grammar allows, for error messages.
pub const SEEDS_GRAMMAR: &str =
    "a count N (seeds 0 to N-1), a range A-B, or a list such as 0,3,7 or 0-4,9";

/// The most seeds one list may name. Each seed of a sweep is a run folder and each seed of
/// `vgrad train --seeds` an ensemble member in memory, so a list this long is a typo (an
/// extra zero), refused before anything is allocated for it.
pub const MAX_SEEDS: u64 = 100_000;

impl Seeds {
    /// The seeds `0..count`; at most [`MAX_SEEDS`].
    pub fn count(count: u64) -> Result<Self, String> {
        check_count(count, &count.to_string())?;
        Ok(Self((0..count).collect()))
    }

    /// These seeds, which must be distinct and at least one.
    pub fn list(seeds: Vec<u64>) -> Result<Self, String> {
        if seeds.is_empty() {
            return Err("the list of seeds is empty".into());
        }
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("seed {} appears twice", w[0]));
        }
        Ok(Self(seeds))
    }

    /// The seeds, in the order given.
    pub fn as_slice(&self) -> &[u64] {
        &self.0
    }
}

impl FromStr for Seeds {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if let Ok(count) = spec.parse::<u64>() {
            if count == 0 {
                return Err(format!(
                    "`{spec}` is no seed at all; expected {SEEDS_GRAMMAR}"
                ));
            }
            return Self::count(count);
        }
        let mut seeds = Vec::new();
        let mut named = 0u64;
        for part in spec.split(',').map(str::trim) {
            let bad = || {
                format!("`{part}` in `{spec}` is not a seed or a range; expected {SEEDS_GRAMMAR}")
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (u64, u64) = (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    );
                    if a > b {
                        return Err(format!("the range `{part}` is empty (start after end)"));
                    }
                    named = named.saturating_add((b - a).saturating_add(1));
                    check_count(named, spec)?;
                    seeds.extend(a..=b);
                }
                None => {
                    named = named.saturating_add(1);
                    check_count(named, spec)?;
                    seeds.push(part.parse().map_err(|_| bad())?);
                }
            }
        }
        Self::list(seeds).map_err(|e| format!("{e} in `{spec}`"))
    }
}

/// Refuses more than [`MAX_SEEDS`] seeds (`named` so far) in `spec`.
fn check_count(named: u64, spec: &str) -> Result<(), String> {
    if named > MAX_SEEDS {
        return Err(format!(
            "`{spec}` names more than {MAX_SEEDS} seeds, the most one list may hold (each \
             seed is a run); a typo? e.g. `10` is seeds 0-9 and `0-99` a hundred"
        ));
    }
    Ok(())
}

/// The shortest text of this grammar for `seeds` (distinct, in order): `10` for 0-9,
/// `3-7` for a run of consecutive seeds, else a list.
pub fn spec(seeds: &[u64]) -> String {
    let consecutive = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    match (seeds.first(), seeds.last()) {
        (Some(0), Some(last)) if consecutive => (last + 1).to_string(),
        (Some(first), Some(last)) if consecutive => format!("{first}-{last}"),
        _ => {
            let items: Vec<String> = seeds.iter().map(u64::to_string).collect();
            items.join(",")
        }
    }
}

impl fmt::Display for Seeds {
    /// The shortest text that parses back to the same seeds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&spec(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(spec: &str) -> Result<Vec<u64>, String> {
        spec.parse::<Seeds>().map(|s| s.0)
    }

    #[test]
    fn counts_ranges_and_lists() {
        assert_eq!(seeds("3").unwrap(), vec![0, 1, 2]);
        assert_eq!(seeds("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(seeds("7-7").unwrap(), vec![7]);
        assert_eq!(seeds("0,3,7").unwrap(), vec![0, 3, 7]);
        assert_eq!(seeds("5, 0-1").unwrap(), vec![5, 0, 1]);
        assert!(seeds("3-1").unwrap_err().contains("empty"));
        assert!(seeds("1,1").unwrap_err().contains("twice"));
        assert!(seeds("0").unwrap_err().contains("no seed at all"));
        let err = seeds("a").unwrap_err();
        assert!(err.contains("`a`") && err.contains("a count N"), "{err}");
    }

    #[test]
    fn the_text_parses_back_to_the_same_seeds() {
        for spec in ["10", "3-9", "7-7", "4,1", "0-2,9", "0,2"] {
            let s: Seeds = spec.parse().unwrap();
            assert_eq!(s.to_string().parse::<Seeds>().unwrap(), s, "{spec}");
        }
        assert_eq!(Seeds::count(10).unwrap().to_string(), "10");
        assert_eq!(spec(&[0]), "1");
        assert_eq!(spec(&[4]), "4-4");
        assert_eq!(spec(&[3, 1, 4]), "3,1,4");
        assert_eq!("3-9".parse::<Seeds>().unwrap().to_string(), "3-9");
    }

    #[test]
    fn a_list_too_long_is_refused_before_it_is_built() {
        for spec in [
            "0-100000000",
            "100001",
            "0-18446744073709551615",
            "5,0-99999",
        ] {
            let err = seeds(spec).unwrap_err();
            assert!(
                err.starts_with(&format!("`{spec}` names more than 100000 seeds")),
                "{err}"
            );
        }
        assert_eq!(seeds("0-99999").unwrap().len(), 100_000);
        assert_eq!(seeds("100000").unwrap().len(), 100_000);
    }
}
