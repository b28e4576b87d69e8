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

/// Sums of a block of values in f64, accumulated in order in one pass with its histogram:
/// what [`Histogram`] keeps, and the magnitudes a probe reports beside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sums {
    /// Number of values.
    pub count: usize,
    /// Sum of the values.
    pub sum: f64,
    /// Sum of their magnitudes.
    pub sum_abs: f64,
    /// Sum of their squares.
    pub sum_squares: f64,
    /// Smallest value (+inf for none; NaNs are skipped).
    pub min: f64,
    /// Largest value (-inf for none).
    pub max: f64,
    /// Largest magnitude (0 for none).
    pub max_abs: f64,
}

impl Histogram {
    /// Histogram of `values` over the fixed [`edges`].
    pub fn of(values: &[f32]) -> Self {
        Self::with_sums(values).0
    }

    /// Histogram of `values` over the fixed [`edges`], and the sums of the same values.
    pub fn with_sums(values: &[f32]) -> (Self, Sums) {
        let table = &fixed_tables()[0];
        Self::counted(values, table.edges.clone(), |v| table.bucket(v))
    }

    /// Histogram of `values` over the sorted upper bucket edges `edges`.
    pub fn over(values: &[f32], edges: Vec<f64>) -> Self {
        let same = |table: &&BucketTable| {
            table.edges.len() == edges.len()
                && table
                    .edges
                    .iter()
                    .zip(&edges)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
        };
        match fixed_tables().iter().find(same) {
            Some(table) => Self::counted(values, edges, |v| table.bucket(v)).0,
            None => {
                let search = edges.clone();
                Self::counted(values, edges, |v| {
                    search.partition_point(|&e| e < f64::from(v))
                })
                .0
            }
        }
    }

    /// The histogram with each value's bucket from `bucket`, and the values' sums.
    fn counted(values: &[f32], edges: Vec<f64>, bucket: impl Fn(f32) -> usize) -> (Self, Sums) {
        // Neighbouring values often share a bucket, and increments of one counter wait on
        // each other: four counters per bucket, one per position mod 4, summed at the end.
        let mut lanes = vec![[0u64; 4]; edges.len() + 1];
        let mut sums = Sums {
            count: values.len(),
            sum: 0.0,
            sum_abs: 0.0,
            sum_squares: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            max_abs: 0.0,
        };
        for (i, &x) in values.iter().enumerate() {
            lanes[bucket(x)][i % 4] += 1;
            let v = f64::from(x);
            // The extremes as `f64::min` and `max` keep them from a start that is not
            // NaN (a NaN value loses every comparison), without their NaN checks, which
            // lengthened each step's chain of dependent instructions.
            sums.min = if v < sums.min { v } else { sums.min };
            sums.max = if v > sums.max { v } else { sums.max };
            sums.max_abs = if v.abs() > sums.max_abs {
                v.abs()
            } else {
                sums.max_abs
            };
            sums.sum += v;
            sums.sum_abs += v.abs();
            sums.sum_squares += v * v;
        }
        let counts = lanes.iter().map(|lane| lane.iter().sum()).collect();
        let (min, max) = if values.is_empty() {
            (0.0, 0.0)
        } else {
            (sums.min, sums.max)
        };
        let histogram = Self {
            num: values.len() as u64,
            min,
            max,
            sum: sums.sum,
            sum_squares: sums.sum_squares,
            edges,
            counts,
        };
        (histogram, sums)
    }
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
        [
            edges(),
            crate::step::activation_edges(),
            crate::step::chain_edges(),
        ]
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
/// mantissa bits) are a given pattern. The gradient histograms of the first layer count
/// thousands of values per logged step, and a binary search's unpredictable branches made
/// them the probe's largest cost. Most patterns lie in one bucket; a pattern that one edge
/// splits, such as +0.0's (0 is an edge, the positive subnormals lie above it), takes one
/// comparison, made for every value and masked, because exact zeros among other values
/// are common and a branch on them would be mispredicted: the first layer's gradient is
/// 0 for every blank pixel, and a rectifier's for every unit that is off.
struct BucketTable {
    /// The edges the buckets are counted over.
    edges: Vec<f64>,
    /// `edges`, then +inf: the upper edge of every bucket.
    upper: Vec<f64>,
    /// Per 16-bit pattern, its values' bucket `b` (or the lower of two, `b` and `b + 1`,
    /// split at `edges[b]`, plus [`SPLIT`]); [`SEARCH`] where two or more edges split it.
    patterns: Vec<u8>,
}

/// Flags a pattern whose values lie in two buckets; see [`BucketTable::patterns`].
const SPLIT: u8 = 0x80;
/// Flags a pattern for a binary search; none of the study's edge sets needs one.
const SEARCH: u8 = u8::MAX;

impl BucketTable {
    fn new(edges: Vec<f64>) -> Self {
        // Buckets and split buckets must fit below SPLIT and SEARCH.
        assert!(
            edges.len() < usize::from(SPLIT) - 1,
            "too many edges for the table"
        );
        let bucket = |x: f32| edges.partition_point(|&e| e < f64::from(x));
        let patterns = (0..=u16::MAX)
            .map(|top| {
                // The pattern's values are monotonic in their bits, from `first` to
                // `last`, but for the NaNs among them. No edge is less than NaN, so its
                // bucket is 0: that of a pattern of NaNs alone, and a search's for +inf's
                // pattern, which holds NaNs too.
                let first = f32::from_bits(u32::from(top) << 16);
                let last = f32::from_bits((u32::from(top) << 16) | 0xffff);
                match (first.is_nan(), last.is_nan()) {
                    (true, _) => return 0,
                    (false, true) if bucket(first) != 0 => return SEARCH,
                    (false, true) => return 0,
                    (false, false) => {}
                }
                let (a, b) = if first.is_sign_negative() {
                    (bucket(last), bucket(first))
                } else {
                    (bucket(first), bucket(last))
                };
                match b - a {
                    0 => a as u8,
                    1 => SPLIT | a as u8,
                    _ => SEARCH,
                }
            })
            .collect();
        let upper = edges.iter().copied().chain([f64::INFINITY]).collect();
        Self {
            edges,
            upper,
            patterns,
        }
    }

    /// The bucket of `x`, `edges.partition_point(|&e| e < x)`.
    // Always inlined into the counting loop: called out of line (as a change elsewhere in
    // this crate once made the compiler do) it cost a logged step 30 us at width 10.
    #[inline(always)]
    fn bucket(&self, x: f32) -> usize {
        let pattern = self.patterns[(x.to_bits() >> 16) as usize];
        if pattern == SEARCH {
            return self.edges.partition_point(|&e| e < f64::from(x));
        }
        let base = usize::from(pattern & !SPLIT);
        let split = usize::from(pattern >> 7);
        base + (split & usize::from(self.upper[base] < f64::from(x)))
    }
}

/// The tables of the study's two fixed edge sets, [`edges`] then
/// [`crate::step::activation_edges`], built once.
fn fixed_tables() -> &'static [BucketTable; 2] {
    static TABLES: std::sync::OnceLock<[BucketTable; 2]> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        [
            BucketTable::new(edges()),
            BucketTable::new(crate::step::activation_edges()),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_over_other_edges_count_as_a_search_does() {
        let uneven = vec![-3.0, -0.5, 0.0, 1e-3, 0.25, 7.0];
        let values: Vec<f32> = [f32::NAN, f32::INFINITY, -0.0, 0.0, 1e-3, 7.0, -3.5]
            .into_iter()
            .chain((0..400).map(|i| (i as f32 - 200.0) * 0.037))
            .collect();
        for set in [uneven, vec![1.0], vec![]] {
            let mut want = vec![0u64; set.len() + 1];
            for &v in &values {
                want[set.partition_point(|&e| e < f64::from(v))] += 1;
            }
            assert_eq!(
                Histogram::over(&values, set.clone()).counts,
                want,
                "{set:?}"
            );
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
    fn the_tables_give_the_bucket_a_search_gives() {
        for (table, e) in fixed_tables()
            .iter()
            .zip([edges(), crate::step::activation_edges()])
        {
            assert_eq!(table.edges, e);
            let mut values: Vec<f32> = vec![0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
            values.extend(e.iter().flat_map(|&x| {
                let x = x as f32;
                [x, x.next_up(), x.next_down()]
            }));
            // Every 16-bit pattern, at its low end, in its middle and at its high end.
            values.extend((0..=u16::MAX).flat_map(|top| {
                let bits = u32::from(top) << 16;
                [bits, bits | 0x8000, bits | 0xffff].map(f32::from_bits)
            }));
            let mut want = vec![0u64; e.len() + 1];
            for &v in &values {
                let searched = e.partition_point(|&edge| edge < f64::from(v));
                assert_eq!(table.bucket(v), searched, "{v:e} ({:#010x})", v.to_bits());
                want[searched] += 1;
            }
            assert_eq!(Histogram::over(&values, e.clone()).counts, want);
            // The zeros' and subnormals' patterns resolve by one comparison, not a search.
            for zero in [0.0f32, -0.0] {
                assert_ne!(table.patterns[(zero.to_bits() >> 16) as usize], SEARCH);
            }
        }
    }

    #[test]
    fn sums_are_the_plain_sums_in_order() {
        let values = [3.0f32, -4.0, 0.0, 1e-30, f32::NAN, -0.5];
        let (h, s) = Histogram::with_sums(&values);
        let wide = values.map(f64::from);
        assert!(s.sum.is_nan() && s.sum_abs.is_nan() && s.sum_squares.is_nan());
        let finite = &wide[..4];
        let (_, s) = Histogram::with_sums(&values[..4]);
        assert_eq!(s.sum, finite.iter().fold(0.0, |a, b| a + b));
        assert_eq!(s.sum_abs, finite.iter().fold(0.0, |a, b| a + b.abs()));
        assert_eq!(s.sum_squares, finite.iter().fold(0.0, |a, b| a + b * b));
        assert_eq!((s.min, s.max, s.max_abs, s.count), (-4.0, 3.0, 4.0, 4));
        // NaN is skipped by the extremes, as f64::min and f64::max do.
        assert_eq!((h.min, h.max), (-4.0, 3.0));
        let (h, s) = Histogram::with_sums(&[]);
        assert_eq!((h.min, h.max, s.max_abs, s.sum), (0.0, 0.0, 0.0, 0.0));
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
