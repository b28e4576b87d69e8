//! Histograms with one fixed set of bucket edges for every tensor, layer and step, so
//! that any two histograms of a study can be compared bucket by bucket.

/// Upper edges of the buckets: 0 and ±{1, 2, 5} x 10^e for e = -9..0, plus ±10. Gradients
/// of this study span many orders of magnitude, so the edges are spaced logarithmically
/// on each side of zero.
pub fn edges() -> Vec<f64> {
    let mut magnitudes: Vec<f64> = (-9..=0)
        .flat_map(|e| [1, 2, 5].map(|m| format!("{m}e{e}")))
        .chain(std::iter::once("10".to_string()))
        .map(|s| s.parse().expect("a literal decimal"))
        .collect();
    let mut edges: Vec<f64> = magnitudes.iter().rev().map(|m| -m).collect();
    edges.push(0.0);
    edges.append(&mut magnitudes);
    edges
}

/// Counts of values per bucket, with the moments TensorBoard's `HistogramProto` carries.
///
/// Bucket `i` holds values in `(edges[i-1], edges[i]]`; the first bucket is unbounded
/// below and the last one, `counts[edges.len()]`, unbounded above.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    /// Number of values.
    pub num: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_squares: f64,
    /// Upper edges of all buckets but the last.
    pub edges: Vec<f64>,
    /// Values per bucket: `edges.len() + 1` entries.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Histogram of `values` over the fixed [`edges`].
    pub fn of(values: &[f32]) -> Self {
        let edges = edges();
        let mut counts = vec![0u64; edges.len() + 1];
        let (mut min, mut max, mut sum, mut sum_squares) =
            (f64::INFINITY, f64::NEG_INFINITY, 0f64, 0f64);
        for &v in values {
            let v = f64::from(v);
            counts[edges.partition_point(|&e| e < v)] += 1;
            min = min.min(v);
            max = max.max(v);
            sum += v;
            sum_squares += v * v;
        }
        if values.is_empty() {
            (min, max) = (0.0, 0.0);
        }
        Self {
            num: values.len() as u64,
            min,
            max,
            sum,
            sum_squares,
            edges,
            counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_sorted_symmetric_and_short() {
        let e = edges();
        assert_eq!(e.len(), 63);
        assert!(e.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(e[31], 0.0);
        assert_eq!(e[32], 1e-9);
        assert_eq!(e[62], 10.0);
        assert_eq!(e[0], -10.0);
    }

    #[test]
    fn values_land_in_the_right_buckets() {
        let e = edges();
        let h = Histogram::of(&[0.0, 1e-9, 1.5e-9, -3e-9, 20.0, -20.0, 0.3]);
        let bucket = |x: f64| e.partition_point(|&edge| edge < x);
        assert_eq!(h.counts.iter().sum::<u64>(), 7);
        assert_eq!(h.counts[31], 1, "0 falls in (-1e-9, 0]");
        assert_eq!(h.counts[32], 1, "1e-9 falls in (0, 1e-9]");
        assert_eq!(h.counts[33], 1, "1.5e-9 falls in (1e-9, 2e-9]");
        assert_eq!(h.counts[bucket(-3e-9)], 1);
        assert_eq!(e[bucket(-3e-9)], -2e-9);
        assert_eq!(h.counts[63], 1, "above 10");
        assert_eq!(h.counts[0], 1, "at or below -10");
        assert_eq!(e[bucket(0.3)], 0.5);
        assert_eq!((h.min, h.max, h.num), (-20.0, 20.0, 7));
    }
}
