//! Summary statistics of a block of numbers, accumulated in f64.

use vgrad_record::histogram::Sums;

/// Magnitude statistics of a tensor's entries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// mean(|x|).
    pub mean_abs: f64,
    /// sqrt(sum(x^2)).
    pub l2: f64,
    /// Population standard deviation.
    pub std: f64,
    /// max(|x|).
    pub max_abs: f64,
}

impl Moments {
    /// Statistics of `values` (all zero for an empty slice).
    pub fn of(values: &[f32]) -> Self {
        if values.is_empty() {
            return Self {
                mean_abs: 0.0,
                l2: 0.0,
                std: 0.0,
                max_abs: 0.0,
            };
        }
        let n = values.len() as f64;
        let (mut sum, mut sum_abs, mut sum_sq, mut max_abs) = (0f64, 0f64, 0f64, 0f64);
        for &v in values {
            let v = f64::from(v);
            sum += v;
            sum_abs += v.abs();
            sum_sq += v * v;
            max_abs = max_abs.max(v.abs());
        }
        let mean = sum / n;
        Self {
            mean_abs: sum_abs / n,
            l2: sum_sq.sqrt(),
            std: (sum_sq / n - mean * mean).max(0.0).sqrt(),
            max_abs,
        }
    }
}

impl From<&Sums> for Moments {
    /// The statistics of the values `sums` summed; equal, bit for bit, to [`Moments::of`]
    /// those values, whose sums run in the same order.
    fn from(sums: &Sums) -> Self {
        if sums.count == 0 {
            return Self::of(&[]);
        }
        let n = sums.count as f64;
        let mean = sums.sum / n;
        Self {
            mean_abs: sums.sum_abs / n,
            l2: sums.sum_squares.sqrt(),
            std: (sums.sum_squares / n - mean * mean).max(0.0).sqrt(),
            max_abs: sums.max_abs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let m = Moments::of(&[3.0, -4.0, 0.0, 1.0]);
        assert_eq!(m.mean_abs, 2.0);
        assert_eq!(m.l2, 26f64.sqrt());
        assert_eq!(m.max_abs, 4.0);
        // mean 0, variance 26 / 4
        assert!((m.std - 6.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(Moments::of(&[]).l2, 0.0);
    }

    #[test]
    fn moments_from_a_histogram_pass_are_the_plain_moments() {
        use vgrad_record::Histogram;
        let patterns: Vec<f32> = (0..5_000)
            .map(|i| ((i as f32) * 0.618).sin() * 10f32.powi(i % 9 - 6))
            .chain([0.0, -0.0, f32::MAX, f32::MIN_POSITIVE, -1e-40])
            .collect();
        for values in [&patterns[..], &patterns[..1], &[], &[-0.0, -0.0]] {
            let (_, sums) = Histogram::with_sums(values);
            let (a, b) = (Moments::from(&sums), Moments::of(values));
            for (x, y) in [
                (a.mean_abs, b.mean_abs),
                (a.l2, b.l2),
                (a.std, b.std),
                (a.max_abs, b.max_abs),
            ] {
                assert_eq!(x.to_bits(), y.to_bits(), "{values:?}");
            }
        }
    }
}
