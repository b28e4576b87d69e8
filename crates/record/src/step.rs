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
    /// Fraction of the (unit, example) pairs of the batch that are off, by the same test
    /// as `dead_frac` but counted per example: how much of the layer passes no error on
    /// for a typical example; `None` for the output layer.
    #[serde(default)]
    pub inactive_frac: Option<f64>,
    /// The 15th, 50th and 85th percentiles of the activation's input over the layer's
    /// units and the batch's examples (after the normalisation, where there is one): the
    /// measure of Ioffe & Szegedy 2015's Figure 1; `None` for the output layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_input: Option<Percentiles>,
    /// mean(|dC/dz_l|) of the back-propagated error at the pre-activation, over the batch
    /// (before the normalisation, where there is one).
    pub delta_mean_abs: f64,
    /// Histogram of the entries of dC/dW_l.
    pub grad_hist: Histogram,
    /// Histogram of the entries of W_l.
    pub weight_hist: Histogram,
}

/// Three percentiles of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// 15th percentile.
    pub p15: f64,
    /// Median.
    pub p50: f64,
    /// 85th percentile.
    pub p85: f64,
}

impl Percentiles {
    /// The percentiles of `values` (NaN for none), each by linear interpolation between
    /// the two nearest ranks, as NumPy's default.
    pub fn of(values: &[f32]) -> Self {
        let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if sorted.is_empty() {
                return f64::NAN;
            }
            let rank = q / 100.0 * (sorted.len() - 1) as f64;
            let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[low] + (rank - low as f64) * (sorted[high] - sorted[low])
        };
        Self {
            p15: at(15.0),
            p50: at(50.0),
            p85: at(85.0),
        }
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    /// Training step (0-based), before that step's update.
    pub step: usize,
    /// Mean cross-entropy on the step's batch.
    pub loss: f64,
    /// Accuracy on the step's batch.
    pub train_acc: f64,
    /// Accuracy on the validation images at this step's weights, at the steps
    /// `--eval-every` picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f64>,
    /// Layers 1..=L.
    pub layers: Vec<LayerRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks_as_numpy() {
        // numpy.percentile([4, 1, 3, 2, 5], [15, 50, 85]) = [1.6, 3.0, 4.4]
        let p = Percentiles::of(&[4.0, 1.0, 3.0, 2.0, 5.0]);
        assert!((p.p15 - 1.6).abs() < 1e-12 && p.p50 == 3.0 && (p.p85 - 4.4).abs() < 1e-12);
        assert!(Percentiles::of(&[]).p50.is_nan());
        assert_eq!(Percentiles::of(&[7.0]).p85, 7.0);
    }
}
