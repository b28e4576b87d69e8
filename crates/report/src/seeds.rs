//! Summaries across seeds, as `docs/experiment.md` defines them.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A ratio summarised over seeds: the geometric mean, with a 95% confidence interval
/// computed on log(ratio) with Student's t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeometricSummary {
    /// Number of seeds.
    pub n: usize,
    /// exp(mean(log(ratio))).
    pub geo_mean: f64,
    /// Lower end of the 95% interval (NaN for a single seed).
    pub ci_low: f64,
    /// Upper end of the 95% interval (NaN for a single seed).
    pub ci_high: f64,
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom.
pub fn t_975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64)
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(f64::NAN)
}

/// Mean and sample standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

impl GeometricSummary {
    /// The summary of positive `ratios`; `None` when there are none.
    pub fn of(ratios: &[f64]) -> Option<Self> {
        if ratios.is_empty() {
            return None;
        }
        let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
        let (mean, sd) = mean_std(&logs);
        let half = t_975(logs.len().saturating_sub(1)) * sd / (logs.len() as f64).sqrt();
        let (ci_low, ci_high) = if logs.len() < 2 {
            (f64::NAN, f64::NAN)
        } else {
            ((mean - half).exp(), (mean + half).exp())
        };
        Some(Self {
            n: ratios.len(),
            geo_mean: mean.exp(),
            ci_low,
            ci_high,
        })
    }

    /// Whether the two 95% intervals share any value.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.ci_low <= other.ci_high && other.ci_low <= self.ci_high
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
        // logs ln2, ln8: mean ln4, sd = ln4 * sqrt(2) / ... computed by hand:
        let sd = ((2f64.ln() - 4f64.ln()).powi(2) * 2.0).sqrt();
        let half = 12.706205 * sd / 2f64.sqrt();
        assert!((s.ci_high - (4f64.ln() + half).exp()).abs() / s.ci_high < 1e-6);
        assert!(
            (s.ci_low * s.ci_high - 16.0).abs() < 1e-9,
            "symmetric in log space"
        );
        let one = GeometricSummary::of(&[3.0]).unwrap();
        assert!(one.ci_low.is_nan() && (one.geo_mean - 3.0).abs() < 1e-12);
        assert!(GeometricSummary::of(&[]).is_none());
        let a = GeometricSummary::of(&[10.0, 12.0, 11.0]).unwrap();
        let b = GeometricSummary::of(&[1.0, 1.2, 1.1]).unwrap();
        assert!(!a.overlaps(&b) && a.overlaps(&a));
    }
}
