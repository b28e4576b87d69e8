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
    #[serde(serialize_with = "serialize_edges")]
    pub edges: Vec<f64>,
    /// Values per bucket: `edges.len() + 1` entries.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Histogram of `values` over the fixed [`edges`].
    pub fn of(values: &[f32]) -> Self {
        let table = log_buckets();
        Self::counted(values, table.edges.clone(), |v| table.bucket(v))
    }

    /// Histogram of `values` over the sorted upper bucket edges `edges`.
    pub fn over(values: &[f32], edges: Vec<f64>) -> Self {
        let search = edges.clone();
        Self::counted(values, edges, |v| bucket_near(&search, f64::from(v)))
    }

    /// The histogram with each value's bucket from `bucket`.
    fn counted(values: &[f32], edges: Vec<f64>, bucket: impl Fn(f32) -> usize) -> Self {
        // Neighbouring values often share a bucket, and increments of one counter wait on
        // each other: four counters per bucket, one per position mod 4, summed at the end.
        let mut lanes = vec![[0u64; 4]; edges.len() + 1];
        let (mut min, mut max, mut sum, mut sum_squares) =
            (f64::INFINITY, f64::NEG_INFINITY, 0f64, 0f64);
        for (i, &x) in values.iter().enumerate() {
            lanes[bucket(x)][i % 4] += 1;
            let v = f64::from(x);
            min = min.min(v);
            max = max.max(v);
            sum += v;
            sum_squares += v * v;
        }
        let counts = lanes.iter().map(|lane| lane.iter().sum()).collect();
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

/// The bucket of `x` among the sorted `edges`, `edges.partition_point(|&e| e < x)`: from
/// a guess that is right for evenly spaced edges (the activation histograms' -5..5),
/// stepped until the edges on either side agree. A binary search's unpredictable
/// branches made these histograms a large part of a logged step.
fn bucket_near(edges: &[f64], x: f64) -> usize {
    let n = edges.len();
    if n < 2 {
        return edges.partition_point(|&e| e < x);
    }
    let (first, last) = (edges[0], edges[n - 1]);
    let guess = ((x - first) / (last - first) * (n - 1) as f64).ceil();
    // NaN and anything below the first edge start at 0; `as` saturates above.
    let mut i = if guess > 0.0 {
        (guess as usize).min(n)
    } else {
        0
    };
    // The predicate partition_point splits on: true for the edges of buckets below x's.
    let below = |e: f64| e < x;
    while i > 0 && !below(edges[i - 1]) {
        i -= 1;
    }
    while i < n && below(edges[i]) {
        i += 1;
    }
    i
}

/// Serialises bucket edges `values` as a sequence of floats; the study's two fixed sets (the log-spaced
/// [`edges`] and [`crate::step::activation_edges`]) as their JSON text, formatted once.
/// Formatting those floats anew was two thirds of the time of writing a logged step's
/// line of `metrics.jsonl` (49 of 75 us at the reference network).
fn serialize_edges<S: serde::Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    static TEXTS: std::sync::OnceLock<Vec<(Vec<f64>, Box<serde_json::value::RawValue>)>> =
        std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        [edges(), crate::step::activation_edges()]
            .into_iter()
            .map(|set| {
                let text = serde_json::to_string(&set).expect("finite floats serialise");
                let raw = serde_json::value::RawValue::from_string(text)
                    .expect("serde_json's own output is JSON");
                (set, raw)
            })
            .collect()
    });
    let same = |set: &[f64]| {
        set.len() == values.len()
            && set
                .iter()
                .zip(values)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    };
    match texts.iter().find(|(set, _)| same(set)) {
        Some((_, raw)) => raw.serialize(serializer),
        None => values.serialize(serializer),
    }
}

/// The bucket among [`edges`] of every f32 whose top 16 bits (sign, exponent and 7
/// mantissa bits) are a given pattern, where all such values share one bucket. The
/// gradient histograms of the first layer count thousands of values per logged step,
/// and a binary search's unpredictable branches made them the probe's largest cost.
struct BucketTable {
    /// The edges the buckets are counted over.
    edges: Vec<f64>,
    /// Per 16-bit pattern, the bucket, or `u8::MAX` where an edge splits the pattern's
    /// values (then the caller searches).
    buckets: Vec<u8>,
}

impl BucketTable {
    fn new(edges: Vec<f64>) -> Self {
        let bucket = |x: f32| edges.partition_point(|&e| e < f64::from(x)) as u8;
        let buckets = (0..=u16::MAX)
            .map(|top| {
                let low = f32::from_bits(u32::from(top) << 16);
                let high = f32::from_bits((u32::from(top) << 16) | 0xffff);
                let (a, b) = (bucket(low), bucket(high));
                if a == b && !low.is_nan() && !high.is_nan() {
                    a
                } else {
                    u8::MAX
                }
            })
            .collect();
        Self { edges, buckets }
    }

    /// The bucket of `x`: from the table, or by a search where an edge splits its pattern.
    fn bucket(&self, x: f32) -> usize {
        match self.buckets[(x.to_bits() >> 16) as usize] {
            u8::MAX => self.edges.partition_point(|&e| e < f64::from(x)),
            b => usize::from(b),
        }
    }
}

/// The table of the fixed [`edges`], built once.
fn log_buckets() -> &'static BucketTable {
    static TABLE: std::sync::OnceLock<BucketTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| BucketTable::new(edges()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guessed_bucket_is_the_searched_bucket() {
        let uneven = vec![-3.0, -0.5, 0.0, 1e-3, 0.25, 7.0];
        let sets = [
            crate::step::activation_edges(),
            edges(),
            uneven,
            vec![1.0],
            vec![],
        ];
        let mut values: Vec<f64> = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0];
        for set in &sets {
            values.extend(set.iter().flat_map(|&e| [e, e.next_up(), e.next_down()]));
        }
        values.extend((0..4000).map(|i| (i as f64 - 2000.0) * 0.003_7));
        for set in &sets {
            for &x in &values {
                let searched = set.partition_point(|&e| e < x);
                assert_eq!(bucket_near(set, x), searched, "{x} in {set:?}");
            }
        }
    }

    #[test]
    fn fixed_edges_serialise_as_plain_floats_would() {
        #[derive(serde::Serialize)]
        struct Plain {
            edges: Vec<f64>,
        }
        for set in [
            edges(),
            crate::step::activation_edges(),
            vec![-1.5, 0.0, 2.25],
            vec![],
        ] {
            let hist = Histogram::over(&[0.5, -3.0], set.clone());
            let ours = serde_json::to_string(&hist).unwrap();
            let plain = serde_json::to_string(&Plain { edges: set }).unwrap();
            let edges_text = plain
                .trim_start_matches("{\"edges\":")
                .trim_end_matches('}');
            assert!(ours.contains(&format!("\"edges\":{edges_text},")), "{ours}");
            // And it reads back as the same histogram, through a value too.
            assert_eq!(serde_json::from_str::<Histogram>(&ours).unwrap(), hist);
            let value = serde_json::to_value(&hist).unwrap();
            assert_eq!(serde_json::from_value::<Histogram>(value).unwrap(), hist);
        }
    }

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
    fn the_table_gives_the_bucket_a_search_gives() {
        let e = edges();
        let mut values: Vec<f32> = vec![0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        values.extend(e.iter().flat_map(|&x| {
            let x = x as f32;
            [
                x,
                f32::from_bits(x.to_bits() + 1),
                f32::from_bits(x.to_bits().saturating_sub(1)),
            ]
        }));
        // Every 16-bit pattern, at its low end, in its middle and at its high end.
        values.extend((0..=u16::MAX).flat_map(|top| {
            let bits = u32::from(top) << 16;
            [bits, bits | 0x8000, bits | 0xffff].map(f32::from_bits)
        }));
        let h = Histogram::of(&values);
        let mut want = vec![0u64; e.len() + 1];
        for &v in &values {
            want[e.partition_point(|&edge| edge < f64::from(v))] += 1;
        }
        assert_eq!(h.counts, want);
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
