//! The records written to `metrics.jsonl`: one [`StepRecord`] per logged step.

use crate::Histogram;

/// What the probe measured for one layer at one step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    /// 1 = first hidden layer, L = output layer.
    pub layer: usize,
    /// mean(|dC/dW_l|): the reference post's measure.
    pub grad_mean_abs: f64,
    /// L2 norm of dC/dW_l.
    pub grad_l2: f64,
    /// Standard deviation of the entries of dC/dW_l.
    pub grad_std: f64,
    /// max(|dC/dW_l|).
    pub grad_max_abs: f64,
    /// mean(|W_l|).
    pub weight_mean_abs: f64,
    /// L2 norm of W_l.
    pub weight_l2: f64,
    /// Fraction of the layer's units that are off (dead or saturated, see
    /// `Activation::unit_is_off`) for every example of the batch; `None` for the output
    /// layer, which has no activation.
    pub dead_frac: Option<f64>,
    /// Mean of the activation's derivative f'(z_l) over the layer's units and the batch's
    /// examples: the factor by which the layer passes the back-propagated error on, on
    /// average (at most 1/4 for sigmoid); `None` for the output layer.
    #[serde(default)]
    pub deriv_mean: Option<f64>,
    /// Mean of the derivative's square f'(z_l)^2 over the same units and examples: its
    /// root is the derivative's typical size in the error's chain, where products of
    /// squares, not of means, set the error's mean square (chi_1); `None` for the output
    /// layer and in records from before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deriv_mean_sq: Option<f64>,
    /// Fraction of the (unit, example) pairs of the batch that are off, by the same test
    /// as `dead_frac` but counted per example: how much of the layer passes no error on
    /// for a typical example; `None` for the output layer.
    #[serde(default)]
    pub inactive_frac: Option<f64>,
    /// What the activation reads (the pre-activation, after the normalisation where there
    /// is one) over the layer's units and the batch's examples: mean, standard deviation,
    /// 15th, 50th and 85th percentiles (Ioffe & Szegedy 2015's Figure 1); `None` for the
    /// output layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preact: Option<Distribution>,
    /// The activation's output f(a) (before a skip adds the layer's input) the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Distribution>,
    /// Histogram of the pre-activation over [`activation_edges`] (Glorot & Bengio 2010's
    /// Figure 6 shows the activations' the same way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preact_hist: Option<Histogram>,
    /// Histogram of the activation's output over [`activation_edges`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_hist: Option<Histogram>,
    /// chi_1 of mean-field theory (Poole et al. 2016; Schoenholz et al. 2017):
    /// n_(l+1) Var(W_(l+1)) E[f'(a_l)^2] over the batch's examples and the layer's units,
    /// the factor by which theory says the mean square of dC/dz shrinks or grows from
    /// layer l + 1 to layer l; `None` for the output layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi1: Option<f64>,
    /// Singular values of the Jacobian dz_(l+1)/dz_l on the probe examples (a fixed set of
    /// test images, the network evaluated as at test time); `None` for the output layer
    /// and at steps the Jacobian was not probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian: Option<Spectrum>,
    /// ||W_after - W_before|| / ||W_before|| (Frobenius) of this step's update: how much
    /// the layer actually moved (about 1e-3 for a healthy layer, by Karpathy's rule of
    /// thumb); `None` for a member frozen at this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_ratio: Option<f64>,
    /// The same for the bias; `None` while the bias is all zero (it starts so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_update_ratio: Option<f64>,
    /// mean((dC/dz_l)^2) over the batch, the quantity whose per-layer ratio chi_1
    /// predicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_mean_sq: Option<f64>,
    /// Histogram of dC/dz_l over the fixed log-spaced [`crate::histogram::edges`]
    /// (Glorot & Bengio 2010's Figure 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_hist: Option<Histogram>,
    /// mean(|dC/dz_l|) of the back-propagated error at the pre-activation, over the batch
    /// (before the normalisation, where there is one).
    pub delta_mean_abs: f64,
    /// Histogram of the entries of dC/dW_l.
    pub grad_hist: Histogram,
    /// Histogram of the entries of W_l.
    pub weight_hist: Histogram,
}

impl LayerRecord {
    /// Layer `layer` with every magnitude 0, empty histograms and none of the optional
    /// measurements: a start for records built by hand (tests, tools).
    pub fn empty(layer: usize) -> Self {
        Self {
            layer,
            grad_mean_abs: 0.0,
            grad_l2: 0.0,
            grad_std: 0.0,
            grad_max_abs: 0.0,
            weight_mean_abs: 0.0,
            weight_l2: 0.0,
            dead_frac: None,
            deriv_mean: None,
            deriv_mean_sq: None,
            inactive_frac: None,
            preact: None,
            act: None,
            preact_hist: None,
            act_hist: None,
            chi1: None,
            jacobian: None,
            update_ratio: None,
            bias_update_ratio: None,
            delta_mean_sq: None,
            delta_hist: None,
            delta_mean_abs: 0.0,
            grad_hist: Histogram::of(&[]),
            weight_hist: Histogram::of(&[]),
        }
    }
}

/// Bucket edges of the activation and pre-activation histograms: -5 to 5 in steps of 0.1
/// (values beyond fall in the end buckets).
pub fn activation_edges() -> Vec<f64> {
    (-50..=50).map(|i| f64::from(i) / 10.0).collect()
}

/// Summary of a set of values: mean, standard deviation and three percentiles.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Distribution {
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// 15th percentile.
    pub p15: f64,
    /// Median.
    pub p50: f64,
    /// 85th percentile.
    pub p85: f64,
}

impl Distribution {
    /// The summary of `values` (NaN for none); each percentile by linear interpolation
    /// between the two nearest ranks, as NumPy's default.
    pub fn of(values: &[f32]) -> Self {
        let sorted = sorted_f64(values);
        let n = sorted.len() as f64;
        let at = |q: f64| {
            if sorted.is_empty() {
                return f64::NAN;
            }
            let rank = q / 100.0 * (sorted.len() - 1) as f64;
            let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[low] + (rank - low as f64) * (sorted[high] - sorted[low])
        };
        let mean = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Self {
            mean,
            std: var.sqrt(),
            p15: at(15.0),
            p50: at(50.0),
            p85: at(85.0),
        }
    }
}

/// `values` in f64, as `f64::total_cmp` sorts them (NaNs aside: they keep their ends but
/// may swap among themselves). They sort as the integer keys `f32::total_cmp` compares,
/// an order widening to f64 keeps, which is cheaper than comparing floats; this sort runs
/// twice per hidden layer at every logged step.
fn sorted_f64(values: &[f32]) -> Vec<f64> {
    let key = |v: f32| {
        let bits = v.to_bits() as i32;
        bits ^ (((bits >> 31) as u32) >> 1) as i32
    };
    let unkey = |k: i32| f32::from_bits((k ^ (((k >> 31) as u32) >> 1) as i32) as u32);
    let mut keys: Vec<i32> = values.iter().map(|&v| key(v)).collect();
    keys.sort_unstable();
    keys.into_iter().map(|k| f64::from(unkey(k))).collect()
}

/// Singular values of a Jacobian, each averaged over the probe examples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spectrum {
    /// Mean singular value.
    pub mean: f64,
    /// Smallest singular value.
    pub min: f64,
    /// Largest singular value.
    pub max: f64,
}

/// The band of singular values that counts as near an isometry in [`ChainSpectrum`]:
/// [1/2, 2], a factor of 2 either way.
pub const ISOMETRY_BAND: (f64, f64) = (0.5, 2.0);

/// How far below the largest singular value of a hidden chain a singular value can be
/// told from rounding: a product of L f64 matrices is exact to about L x 1e-16 of its
/// norm, so values under 1e-12 of the largest (a chain of up to thousands of layers) are
/// only known to be that small.
pub const CHAIN_RESOLUTION: f64 = 1e-12;

/// Upper bucket edges of a hidden chain's singular values: ten per decade from 1e-16 to
/// 1e4, so that a density on a log axis (Pennington et al. 2017's figures) can be drawn
/// from them. Each is 10^(k/10) to four digits, a short decimal that `metrics.jsonl`
/// reads back bit for bit.
pub fn chain_edges() -> Vec<f64> {
    // Formatted once: every logged step's chain histogram is counted over them.
    static EDGES: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    EDGES
        .get_or_init(|| {
            (-160..=40)
                .map(|k| {
                    format!("{:.3e}", 10f64.powf(f64::from(k) / 10.0))
                        .parse()
                        .expect("a formatted float")
                })
                .collect()
        })
        .clone()
}

/// The singular values of the hidden chain d h_(L-1) / d h_1 (the square Jacobian of the
/// last hidden layer's output with respect to the first's) pooled over the probe's
/// examples: how close to an isometry the hidden layers are (Pennington et al. 2017).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChainSpectrum {
    /// Examples pooled.
    pub examples: usize,
    /// Singular values per example (the hidden width).
    pub units: usize,
    /// The fraction of singular values within [`ISOMETRY_BAND`].
    #[serde(deserialize_with = "crate::nan::f64")]
    pub near_one: f64,
    /// The fraction that are exactly 0 (a dead ReLU unit's row of the chain, say).
    pub zero_frac: f64,
    /// The fraction at or below [`CHAIN_RESOLUTION`] times the largest, zeros included:
    /// values the product cannot tell from rounding (NaN in records written before it).
    #[serde(default = "crate::nan::missing", deserialize_with = "crate::nan::f64")]
    pub unresolved: f64,
    /// The standard deviation of the natural logarithms of the resolved values (0 for an
    /// isometry up to scale; NaN where none is).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub log_spread: f64,
    /// The median singular value (below the resolution where `unresolved` is over half).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub median: f64,
    /// The largest.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub max: f64,
    /// Their histogram over [`chain_edges`].
    pub hist: Histogram,
}

impl ChainSpectrum {
    /// The spectrum of `values`, the singular values of `examples` examples pooled.
    pub fn of(values: &[f64], examples: usize) -> Self {
        let n = values.len();
        let (low, high) = ISOMETRY_BAND;
        let near = values
            .iter()
            .filter(|&&v| (low..=high).contains(&v))
            .count();
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let max = sorted.last().copied().unwrap_or(f64::NAN);
        let floor = max * CHAIN_RESOLUTION;
        let logs: Vec<f64> = values
            .iter()
            .filter(|&&v| v > floor && v > 0.0)
            .map(|v| v.ln())
            .collect();
        let resolved = logs.len() as f64;
        let mean = logs.iter().sum::<f64>() / resolved;
        let spread = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / resolved).sqrt();
        let narrow: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Self {
            examples,
            units: n / examples.max(1),
            near_one: near as f64 / n as f64,
            zero_frac: values.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64,
            unresolved: (n as f64 - resolved) / n as f64,
            log_spread: if spread.is_finite() { spread } else { f64::NAN },
            median: sorted.get(n / 2).copied().unwrap_or(f64::NAN),
            max,
            hist: Histogram::over(&narrow, chain_edges()),
        }
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    /// Training step (0-based), before that step's update.
    pub step: usize,
    /// Mean cross-entropy on the step's batch (the mean squared error for a regression
    /// task).
    pub loss: f64,
    /// Accuracy on the step's batch (null for a regression task).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub train_acc: f64,
    /// Accuracy on the validation images at this step's weights, at the steps
    /// `--eval-every` picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f64>,
    /// Singular values of the whole network's Jacobian d logits / d z_1 on the probe
    /// examples; `None` at steps the Jacobian was not probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian: Option<Spectrum>,
    /// The hidden chain's singular values on the probe examples, at the steps the Jacobian
    /// is probed; `None` elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainSpectrum>,
    /// Layers 1..=L; empty for a recurrent network, whose error the probe follows
    /// through time instead (`time`).
    pub layers: Vec<LayerRecord>,
    /// A recurrent network's probe through time: the error at every time step, the
    /// recurrent weight and the gates; absent for the other networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<crate::time::TimeRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_spectrum_counts_the_isometry_band_and_the_log_spread_by_hand() {
        // Two examples of two units: 0.5 and 2 sit on the band's edges, 4 outside.
        let s = ChainSpectrum::of(&[0.5, 1.0, 2.0, 4.0], 2);
        assert_eq!((s.examples, s.units), (2, 2));
        assert_eq!(s.near_one, 0.75);
        assert_eq!((s.median, s.max), (2.0, 4.0));
        // ln: -l, 0, l, 2l with l = ln 2: mean l/2, deviations -3l/2, -l/2, l/2, 3l/2.
        let l = 2f64.ln();
        let want = ((2.25 + 0.25 + 0.25 + 2.25) / 4.0f64).sqrt() * l;
        assert!((s.log_spread - want).abs() < 1e-12, "{}", s.log_spread);
        assert_eq!(s.hist.num, 4);
        let isometry = ChainSpectrum::of(&[1.0; 6], 3);
        assert_eq!((isometry.near_one, isometry.log_spread), (1.0, 0.0));
        // Zeros are counted apart; the spread reads the resolved values, those above
        // 1e-12 of the largest (1e-13 is not).
        let dead = ChainSpectrum::of(&[0.0, 1.0, 4.0, 0.0, 4e-13], 1);
        assert_eq!((dead.zero_frac, dead.unresolved), (0.4, 0.6));
        assert!((dead.log_spread - 4f64.ln() / 2.0).abs() < 1e-12);
        // Ten buckets a decade: 1 in (10^-0.1, 1], 4 in (10^0.6, 10^0.7].
        let bucket = |v: f64| chain_edges().partition_point(|&e| e < v);
        assert_eq!(dead.hist.counts[bucket(1.0)], 1);
        assert_eq!(dead.hist.counts[bucket(4.0)], 1);
        assert_eq!(dead.hist.counts[0], 2, "the zeros, below every edge");
        assert_eq!(bucket(1.0), 160);
        assert!(ChainSpectrum::of(&[0.0, 0.0], 1).log_spread.is_nan());
        let back: ChainSpectrum =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // A record written before `unresolved` existed reads it as not measured.
        let mut old = serde_json::to_value(&s).unwrap();
        old.as_object_mut().unwrap().remove("unresolved");
        let old: ChainSpectrum = serde_json::from_value(old).unwrap();
        assert!(old.unresolved.is_nan());
    }

    #[test]
    fn the_integer_key_sort_is_the_float_sort_bit_for_bit() {
        let mut values = vec![
            0.0f32,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            f32::MAX,
            f32::MIN,
        ];
        // A fixed pseudo-random spread over all bit patterns (an LCG), ties included.
        let mut state = 12345u32;
        for _ in 0..2000 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            values.push(f32::from_bits(state));
            values.push(f32::from_bits(state >> 9) - 0.5);
        }
        values.extend_from_within(..100);
        let mut expected: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        expected.sort_unstable_by(f64::total_cmp);
        // Widening quiets a signalling NaN, which may reorder NaNs among themselves; they
        // keep their places at either end, so every statistic is NaN exactly when before.
        let bits = |v: &[f64]| {
            v.iter()
                .map(|x| match x.is_nan() {
                    true => (x.is_sign_negative(), u64::MAX),
                    false => (false, x.to_bits()),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&sorted_f64(&values)), bits(&expected));
    }

    #[test]
    fn distributions_interpolate_percentiles_as_numpy() {
        // numpy.percentile([4, 1, 3, 2, 5], [15, 50, 85]) = [1.6, 3.0, 4.4]; numpy.std = sqrt(2)
        let p = Distribution::of(&[4.0, 1.0, 3.0, 2.0, 5.0]);
        assert!((p.p15 - 1.6).abs() < 1e-12 && p.p50 == 3.0 && (p.p85 - 4.4).abs() < 1e-12);
        assert_eq!(p.mean, 3.0);
        assert!((p.std - 2f64.sqrt()).abs() < 1e-12);
        assert!(Distribution::of(&[]).p50.is_nan());
        assert_eq!(Distribution::of(&[7.0]).p85, 7.0);
        let edges = activation_edges();
        assert_eq!(
            (edges.len(), edges[0], edges[50], edges[100]),
            (101, -5.0, 0.0, 5.0)
        );
    }
}
