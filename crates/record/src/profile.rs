//! The decay ratios of `docs/experiment.md`, from a run's logged steps.

use crate::StepRecord;

/// A run's per-layer profile (each layer's value averaged over all logged steps) and the
/// first-to-last-layer decay derived from it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecayProfile {
    /// mean over logged steps of `grad_mean_abs[l]`, layers 1..=L.
    #[serde(deserialize_with = "crate::nan::vec_f64")]
    pub grad_mean_abs: Vec<f64>,
    /// mean over logged steps of `delta_mean_abs[l]`, layers 1..=L.
    #[serde(deserialize_with = "crate::nan::vec_f64")]
    pub delta_mean_abs: Vec<f64>,
    /// `grad_mean_abs[L] / grad_mean_abs[1]`: above 1 means the gradient shrinks on its
    /// way back to the input.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub decay_ratio: f64,
    /// `decay_ratio^(1/(L-1))`, comparable across depths.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub layer_factor: f64,
    /// `delta_mean_abs[L] / delta_mean_abs[1]`.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub delta_decay_ratio: f64,
    /// `delta_decay_ratio^(1/(L-1))`.
    #[serde(deserialize_with = "crate::nan::f64")]
    pub delta_layer_factor: f64,
}

/// Last layer's value over the first layer's.
pub fn decay_ratio(profile: &[f64]) -> f64 {
    match (profile.first(), profile.last()) {
        (Some(first), Some(last)) => last / first,
        _ => f64::NAN,
    }
}

/// The per-layer factor `ratio^(1/(L-1))`; NaN for a single layer, which has no chain.
pub fn layer_factor(ratio: f64, layers: usize) -> f64 {
    if layers < 2 {
        f64::NAN
    } else {
        ratio.powf(1.0 / (layers - 1) as f64)
    }
}

impl DecayProfile {
    /// The profile of a run that logged nothing: no layers, every ratio NaN.
    pub fn empty() -> Self {
        Self {
            grad_mean_abs: Vec::new(),
            delta_mean_abs: Vec::new(),
            decay_ratio: f64::NAN,
            layer_factor: f64::NAN,
            delta_decay_ratio: f64::NAN,
            delta_layer_factor: f64::NAN,
        }
    }
    /// The profile of a run from its logged steps; `None` when nothing was logged.
    pub fn from_steps(steps: &[StepRecord]) -> Option<Self> {
        let first = steps.first()?;
        let depth = first.layers.len();
        let mut grad = vec![0f64; depth];
        let mut delta = vec![0f64; depth];
        for step in steps {
            for (i, layer) in step.layers.iter().enumerate().take(depth) {
                grad[i] += layer.grad_mean_abs;
                delta[i] += layer.delta_mean_abs;
            }
        }
        let n = steps.len() as f64;
        grad.iter_mut()
            .chain(delta.iter_mut())
            .for_each(|v| *v /= n);
        let ratio = decay_ratio(&grad);
        let delta_ratio = decay_ratio(&delta);
        Some(Self {
            layer_factor: layer_factor(ratio, depth),
            delta_layer_factor: layer_factor(delta_ratio, depth),
            grad_mean_abs: grad,
            delta_mean_abs: delta,
            decay_ratio: ratio,
            delta_decay_ratio: delta_ratio,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LayerRecord;

    fn layer(l: usize, grad: f64, delta: f64) -> LayerRecord {
        LayerRecord {
            grad_mean_abs: grad,
            delta_mean_abs: delta,
            ..LayerRecord::empty(l)
        }
    }

    #[test]
    fn averages_steps_before_taking_the_ratio() {
        let steps: Vec<StepRecord> = [(1.0, 10.0), (3.0, 50.0)]
            .iter()
            .enumerate()
            .map(|(i, &(first, last))| StepRecord {
                step: i * 200,
                loss: 0.0,
                train_acc: 0.0,
                val_acc: None,
                jacobian: None,
                chain: None,
                layers: vec![
                    layer(1, first, 1.0),
                    layer(2, 5.0, 2.0),
                    layer(3, last, 4.0),
                ],
                time: None,
            })
            .collect();
        let p = DecayProfile::from_steps(&steps).unwrap();
        assert_eq!(p.grad_mean_abs, vec![2.0, 5.0, 30.0]);
        // mean of the ratios would be 13.33; the definition averages first: 30 / 2.
        assert_eq!(p.decay_ratio, 15.0);
        assert_eq!(p.layer_factor, 15f64.sqrt());
        assert_eq!(p.delta_decay_ratio, 4.0);
        assert_eq!(p.delta_layer_factor, 2.0);
        assert!(DecayProfile::from_steps(&[]).is_none());
        // NaN goes out as null and comes back as NaN.
        let json = serde_json::to_string(&DecayProfile::empty()).unwrap();
        assert!(json.contains("\"decay_ratio\":null"), "{json}");
        let back: DecayProfile = serde_json::from_str(&json).unwrap();
        assert!(back.decay_ratio.is_nan() && back.grad_mean_abs.is_empty());
    }
}
