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
    /// mean(|dC/dz_l|) of the back-propagated error at the pre-activation, over the batch.
    pub delta_mean_abs: f64,
    /// Histogram of the entries of dC/dW_l.
    pub grad_hist: Histogram,
    /// Histogram of the entries of W_l.
    pub weight_hist: Histogram,
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
    /// Layers 1..=L.
    pub layers: Vec<LayerRecord>,
}
