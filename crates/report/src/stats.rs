//! Summaries over seeds, as `docs/experiment.md` defines them: ratios and factors by their
//! geometric mean with a Student t interval on the log scale, accuracies by their mean with
//! a Student t interval on the logit scale (so that it stays inside 0..1).

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom (NaN for 0).
pub fn t_975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64)
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(f64::NAN)
}

/// Mean and sample standard deviation (NaN for fewer than two values).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The arithmetic mean; `None` for no values.
pub fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The geometric mean of values that are all positive and finite; `None` for no values or
/// where any is not (a zero would make it 0 whatever the others say).
pub fn geo_mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut sum = 0.0;
    let mut n = 0usize;
    for v in values {
        if !(v > 0.0 && v.is_finite()) {
            return None;
        }
        sum += v.ln();
        n += 1;
    }
    (n > 0).then(|| (sum / n as f64).exp())
}

/// A positive ratio or factor summarised over seeds: the geometric mean, with a 95%
/// interval computed on its logarithm with Student's t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeometricSummary {
    /// Number of seeds.
    pub n: usize,
    /// exp(mean(log(value))).
    pub geo_mean: f64,
    /// Lower end of the 95% interval (NaN for a single seed).
    pub ci_low: f64,
    /// Upper end of the 95% interval (NaN for a single seed).
    pub ci_high: f64,
}

impl GeometricSummary {
    /// The summary of `values`, all positive and finite; `None` for no values or where one
    /// is not (use [`Split::of`] to set those apart first).
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() || !values.iter().all(|v| *v > 0.0 && v.is_finite()) {
            return None;
        }
        let logs: Vec<f64> = values.iter().map(|r| r.ln()).collect();
        let (mean, sd) = mean_std(&logs);
        let (ci_low, ci_high) = if logs.len() < 2 {
            (f64::NAN, f64::NAN)
        } else {
            let half = t_975(logs.len() - 1) * sd / (logs.len() as f64).sqrt();
            ((mean - half).exp(), (mean + half).exp())
        };
        Some(Self {
            n: values.len(),
            geo_mean: mean.exp(),
            ci_low,
            ci_high,
        })
    }

    /// Whether the two 95% intervals share any value (false where either has none).
    pub fn overlaps(&self, other: &Self) -> bool {
        self.ci_low <= other.ci_high && other.ci_low <= self.ci_high
    }
}

/// Per-seed values of a ratio or factor, split into those a geometric mean can take and
/// those it cannot: exact zeros (a dead layer passes no gradient at all) and values that
/// are infinite or undefined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// The geometric summary of the positive, finite values.
    pub positive: Option<GeometricSummary>,
    /// How many values were exactly 0.
    pub zero: usize,
    /// How many were infinite or NaN.
    pub undefined: usize,
}

impl Split {
    /// Splits `values`.
    pub fn of(values: &[f64]) -> Self {
        let positive: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| *v > 0.0 && v.is_finite())
            .collect();
        Self {
            positive: GeometricSummary::of(&positive),
            zero: values.iter().filter(|v| **v == 0.0).count(),
            undefined: values
                .iter()
                .filter(|v| !v.is_finite() || **v < 0.0)
                .count(),
        }
    }

    /// How many values there were.
    pub fn n(&self) -> usize {
        self.positive.map_or(0, |p| p.n) + self.zero + self.undefined
    }
}

/// The smallest and the largest of `values`; `None` for none (or only NaNs).
pub fn min_max(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    lo.is_finite().then_some((lo, hi))
}

/// Test accuracies over seeds: their mean and sample standard deviation, and a 95%
/// interval from Student's t on the logit scale, mapped back, so that it never leaves
/// 0..1 however few seeds or however close to chance or to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccuracySummary {
    /// Number of seeds.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (NaN for one seed).
    pub sd: f64,
    /// Lower end of the 95% interval (NaN for one seed).
    pub ci_low: f64,
    /// Upper end of the 95% interval (NaN for one seed).
    pub ci_high: f64,
}

/// Accuracies of exactly 0 or 1 are taken as half an example away from them, on the
/// 10,000 test images, so that their logit is finite.
const HALF_AN_EXAMPLE: f64 = 0.5 / 10_000.0;

impl AccuracySummary {
    /// The summary of `accuracies` (fractions); `None` for none.
    pub fn of(accuracies: &[f64]) -> Option<Self> {
        if accuracies.is_empty() {
            return None;
        }
        let (mean, sd) = mean_std(accuracies);
        let logit = |p: f64| {
            let p = p.clamp(HALF_AN_EXAMPLE, 1.0 - HALF_AN_EXAMPLE);
            (p / (1.0 - p)).ln()
        };
        let logits: Vec<f64> = accuracies.iter().map(|&a| logit(a)).collect();
        let (centre, spread) = mean_std(&logits);
        let (ci_low, ci_high) = if accuracies.len() < 2 {
            (f64::NAN, f64::NAN)
        } else {
            let half = t_975(logits.len() - 1) * spread / (logits.len() as f64).sqrt();
            let expit = |x: f64| 1.0 / (1.0 + (-x).exp());
            (expit(centre - half), expit(centre + half))
        };
        Some(Self {
            n: accuracies.len(),
            mean,
            sd,
            ci_low,
            ci_high,
        })
    }

    /// Whether the two 95% intervals are apart (false where either has none).
    pub fn apart_from(&self, other: &Self) -> bool {
        self.ci_high < other.ci_low || other.ci_high < self.ci_low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        assert!((t_975(9) - 2.262157).abs() < 1e-6);
        assert!((t_975(4) - 2.776445).abs() < 1e-6);
        assert!((t_975(1000) - 1.962339).abs() < 1e-5);
    }

    #[test]
    fn geometric_mean_and_interval() {
        let s = GeometricSummary::of(&[2.0, 8.0]).unwrap();
        assert!((s.geo_mean - 4.0).abs() < 1e-12);
        let sd = ((2f64.ln() - 4f64.ln()).powi(2) * 2.0).sqrt();
        let half = 12.706205 * sd / 2f64.sqrt();
        assert!((s.ci_high - (4f64.ln() + half).exp()).abs() / s.ci_high < 1e-6);
        assert!(
            (s.ci_low * s.ci_high - 16.0).abs() < 1e-9,
            "symmetric in logs"
        );
        let one = GeometricSummary::of(&[3.0]).unwrap();
        assert!(one.ci_low.is_nan() && (one.geo_mean - 3.0).abs() < 1e-12);
        assert!(GeometricSummary::of(&[]).is_none());
        let a = GeometricSummary::of(&[10.0, 12.0, 11.0]).unwrap();
        let b = GeometricSummary::of(&[1.0, 1.2, 1.1]).unwrap();
        assert!(!a.overlaps(&b) && a.overlaps(&a));
    }

    #[test]
    fn a_zero_is_never_averaged_in() {
        assert!(GeometricSummary::of(&[0.0, 4.0]).is_none());
        assert_eq!(geo_mean([0.0, 4.0]), None);
        assert_eq!(geo_mean([1.0, 4.0]), Some(2.0));
        let split = Split::of(&[0.0, 2.0, 8.0, f64::INFINITY, f64::NAN]);
        assert_eq!((split.zero, split.undefined, split.n()), (1, 2, 5));
        assert!((split.positive.unwrap().geo_mean - 4.0).abs() < 1e-12);
        assert_eq!(Split::of(&[0.0]).positive, None);
    }

    #[test]
    fn accuracy_intervals_stay_inside_zero_and_one() {
        // Two seeds far apart: the old mean +- t sd / sqrt(n) gave [-6.4%, 49.1%] for
        // a mean of 21.3%.
        let s = AccuracySummary::of(&[0.11, 0.3]).unwrap();
        assert!((s.mean - 0.205).abs() < 1e-12);
        assert!(s.ci_low > 0.0 && s.ci_high < 1.0 && s.ci_low < s.mean && s.mean < s.ci_high);
        // By hand: logits of 0.11 and 0.3, t with one degree of freedom.
        let (a, b) = ((0.11f64 / 0.89).ln(), (0.3f64 / 0.7).ln());
        let half = 12.706204736 * (a - b).abs() / 2f64.sqrt() / 2f64.sqrt();
        let expit = |x: f64| 1.0 / (1.0 + (-x).exp());
        assert!((s.ci_low - expit((a + b) / 2.0 - half)).abs() < 1e-9);
        let perfect = AccuracySummary::of(&[1.0, 1.0, 0.999]).unwrap();
        assert!(perfect.ci_high < 1.0 && perfect.ci_low > 0.99);
        let one = AccuracySummary::of(&[0.5]).unwrap();
        assert!(one.ci_low.is_nan() && one.sd.is_nan());
        let low = AccuracySummary::of(&[0.1, 0.11, 0.12]).unwrap();
        assert!(!low.apart_from(&s) && low.apart_from(&perfect));
    }
}
