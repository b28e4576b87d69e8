//! The records of the probe through time (issue 36): what a recurrent network's
//! back-propagated error does across the time steps of a sequence, its recurrent weight,
//! and its gates, for one ensemble member at one logged step. The recurrent counterpart
//! of [`crate::LayerRecord`], with time in place of depth.
//!
//! Ratios a run may not have (a sequence of one step, an error that is zero everywhere)
//! are NaN in memory and `null` in JSON, read back as NaN; an infinite ratio is written
//! as `null` too (JSON has neither), and so also reads back as NaN.

/// The fraction below which, or above 1 minus which, a sigmoid gate's value counts as
/// saturated: its derivative sigmoid' = s (1 - s) is then below 0.05 * 0.95 = 0.0475, a
/// fifth of its largest (1/4), and the gate passes little gradient to its inputs.
pub const GATE_SATURATION: f64 = 0.05;

/// The back-propagated error at one time step of one member.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeStep {
    /// The time step, 1-based: h_t is the hidden state after the t-th input.
    pub t: usize,
    /// ||dC/dh_t||: the L2 norm of the error at h_t over the batch's examples and the
    /// hidden units (the quantity Pascanu et al. 2013 and Hochreiter 1991 follow back in
    /// time).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub delta_l2: f64,
    /// mean |dC/dh_t| over the same entries: the layer probe's `delta_mean_abs`.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub delta_mean_abs: f64,
    /// The mean over the batch and the units of the gate that carries the state through
    /// time: the LSTM's forget gate f_t (dc_t/dc_(t-1) = f_t along the cell), the GRU's
    /// update gate z_t (the share of h_(t-1) that h_t keeps); `None` for the vanilla RNN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry_gate_mean: Option<f64>,
}

/// One hidden x hidden block of the recurrent weight W_h: the vanilla RNN's whole W_h, or
/// one gate's block of a gated cell's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecurrentBlock {
    /// The gate the block feeds (PyTorch's names: `i`, `f`, `g`, `o` for the LSTM, `r`,
    /// `z`, `n` for the GRU), or `h` for the vanilla RNN's single block.
    pub gate: String,
    /// The largest |eigenvalue| of the block: whether the linearised recurrence
    /// h_t = h_(t-1) W_h grows (above 1) or dies out (below 1) over many steps.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub spectral_radius: f64,
    /// The largest singular value sigma_max of the block: Pascanu et al. 2013's sufficient
    /// condition for vanishing gradients in the vanilla RNN is sigma_max < 1 / gamma
    /// (gamma = 1 for tanh and ReLU). At least the spectral radius.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub max_singular: f64,
}

/// The recurrent weight W_h of one member and its gradient.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecurrentWeight {
    /// Its hidden x hidden blocks, in the cell's gate order.
    pub blocks: Vec<RecurrentBlock>,
    /// mean |dC/dW_h| over the whole weight (every gate).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub grad_mean_abs: f64,
    /// ||dC/dW_h|| (Frobenius).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub grad_l2: f64,
    /// mean |W_h|.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub weight_mean_abs: f64,
    /// ||W_h|| (Frobenius).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub weight_l2: f64,
}

/// One sigmoid gate's values over every time step, the batch and the units.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GateStats {
    /// The gate (PyTorch's names: `i`, `f`, `o` for the LSTM, `r`, `z` for the GRU; the
    /// tanh candidates `g` and `n` are no gates and are left out).
    pub gate: String,
    /// The mean value.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub mean: f64,
    /// The fraction of values below [`GATE_SATURATION`] (shut).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub low_frac: f64,
    /// The fraction of values above 1 - [`GATE_SATURATION`] (open).
    #[serde(deserialize_with = "crate::nan::f64")]
    pub high_frac: f64,
    /// `low_frac + high_frac`: the fraction of saturated values, where the gate passes
    /// almost no gradient to what computed it.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub saturated_frac: f64,
}

/// What the probe through time measured for one member at one step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeRecord {
    /// Time steps 1..=T.
    pub steps: Vec<TimeStep>,
    /// ||dC/dh_T|| / ||dC/dh_1||: above 1 the error shrinks on its way back to the start
    /// of the sequence (the layer probe's decay ratio, last over first); NaN for a single
    /// step or an error that is zero at both ends.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub delta_ratio: f64,
    /// (||dC/dh_1|| / ||dC/dh_T||)^(1/(T-1)): the factor by which the error is multiplied
    /// per step going back in time, the geometric mean over the sequence (below 1 it
    /// vanishes, above 1 it explodes), in the sign convention of the layer probe's
    /// per-layer error factor; NaN for a single step.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub step_factor: f64,
    /// The recurrent weight.
    pub recurrent: RecurrentWeight,
    /// The sigmoid gates' statistics; empty for the vanilla RNN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateStats>,
    /// The vanilla RNN's Jacobians through time beside Pascanu et al. 2013's bound, on
    /// the probe's examples, at the steps the probe measures Jacobians; absent elsewhere
    /// and for the gated cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobians: Option<TimeJacobians>,
}

/// The norms of a vanilla RNN's step Jacobians dh_t/dh_(t-1) = W_h^T diag(f'(a_t)) and
/// Pascanu et al. 2013's bound on them (section 2.1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeJacobians {
    /// Examples the norms were taken on.
    pub examples: usize,
    /// The geometric mean of ||dh_t/dh_(t-1)|| (spectral norm) over the examples and
    /// steps t = 2..=T: the per-step factor of the product of the Jacobians' norms.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub norm_per_step: f64,
    /// The bound on every step's norm: sigma_max(W_h) gamma, with gamma the activation
    /// derivative's bound (1 for tanh and ReLU). Below 1 the error must vanish.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub bound_per_step: f64,
}

/// ||dC/dh_T|| / ||dC/dh_1|| of a profile of norms over time steps 1..=T (NaN for
/// fewer than two steps).
pub fn delta_ratio(norms: &[f64]) -> f64 {
    match (norms.first(), norms.last()) {
        (Some(first), Some(last)) if norms.len() > 1 => last / first,
        _ => f64::NAN,
    }
}

/// (||dC/dh_1|| / ||dC/dh_T||)^(1/(T-1)) of a profile of norms over time steps 1..=T:
/// the per-step factor of the error going back in time (NaN for fewer than two steps).
pub fn step_factor(norms: &[f64]) -> f64 {
    match (norms.first(), norms.last()) {
        (Some(first), Some(last)) if norms.len() > 1 => {
            (first / last).powf(1.0 / (norms.len() - 1) as f64)
        }
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_and_the_factor_of_an_error_halving_each_step_back() {
        // ||dC/dh_t|| = 2^(t - T) over T = 5: the error halves per step going back.
        let norms: Vec<f64> = (1..=5).map(|t| 2f64.powi(t - 5)).collect();
        assert_eq!(delta_ratio(&norms), 16.0);
        assert!((step_factor(&norms) - 0.5).abs() < 1e-15);
        assert!(delta_ratio(&[1.0]).is_nan() && step_factor(&[1.0]).is_nan());
        assert!(delta_ratio(&[]).is_nan() && step_factor(&[]).is_nan());
        // No error reaches h_1: the factor is 0.
        assert_eq!(step_factor(&[0.0, 1.0, 2.0]), 0.0);
    }

    #[test]
    fn records_read_what_they_write_with_nan_as_null() {
        let record = TimeRecord {
            steps: vec![
                TimeStep {
                    t: 1,
                    delta_l2: 0.5,
                    delta_mean_abs: 0.1,
                    carry_gate_mean: Some(0.7),
                },
                TimeStep {
                    t: 2,
                    delta_l2: 1.0,
                    delta_mean_abs: 0.2,
                    carry_gate_mean: Some(0.6),
                },
            ],
            delta_ratio: 2.0,
            step_factor: 0.5,
            recurrent: RecurrentWeight {
                blocks: vec![RecurrentBlock {
                    gate: "f".into(),
                    spectral_radius: 0.9,
                    max_singular: 1.1,
                }],
                grad_mean_abs: 1e-3,
                grad_l2: 1e-2,
                weight_mean_abs: 0.3,
                weight_l2: 2.0,
            },
            gates: vec![GateStats {
                gate: "f".into(),
                mean: 0.65,
                low_frac: 0.0,
                high_frac: 0.25,
                saturated_frac: 0.25,
            }],
            jacobians: Some(TimeJacobians {
                examples: 8,
                norm_per_step: 0.8,
                bound_per_step: 1.2,
            }),
        };
        let json = serde_json::to_string(&record).expect("a record serialises");
        let back: TimeRecord = serde_json::from_str(&json).expect("and reads back");
        assert_eq!(back, record);
        // A vanilla RNN's record of one step: no gates, NaN ratios written as null.
        let single = TimeRecord {
            steps: vec![TimeStep {
                t: 1,
                delta_l2: 0.5,
                delta_mean_abs: 0.1,
                carry_gate_mean: None,
            }],
            delta_ratio: f64::NAN,
            step_factor: f64::NAN,
            gates: Vec::new(),
            ..record
        };
        let json = serde_json::to_string(&single).expect("a record serialises");
        assert!(json.contains("\"delta_ratio\":null"), "{json}");
        assert!(
            !json.contains("gates") && !json.contains("carry_gate_mean"),
            "{json}"
        );
        let back: TimeRecord = serde_json::from_str(&json).expect("and reads back");
        assert!(back.delta_ratio.is_nan() && back.step_factor.is_nan());
        assert_eq!(back.steps, single.steps);
        assert!(back.gates.is_empty());
    }
}
