//! The update-to-weight ratio of a logged step: how far the optimizer actually moved each
//! layer, ||W_after - W_before|| / ||W_before|| (Frobenius), per member.

use vgrad_model::Mlp;
use vgrad_probe::per_member;

use crate::TrainError;

/// One block of values per member.
type PerMember = Vec<Vec<f32>>;

/// A layer's (weight, bias) update ratios; `None` where the parameter was all zero.
pub type LayerRatios = (Option<f64>, Option<f64>);

/// Host copies of every layer's weight and bias, per member, before an update.
pub struct Snapshot {
    /// Per layer: (weights, biases).
    layers: Vec<(PerMember, PerMember)>,
}

/// ||after - before|| / ||before||; `None` where `before` is all zero.
fn ratio(before: &[f32], after: &[f32]) -> Option<f64> {
    let (mut diff, mut norm) = (0f64, 0f64);
    for (&b, &a) in before.iter().zip(after) {
        diff += (f64::from(a) - f64::from(b)).powi(2);
        norm += f64::from(b).powi(2);
    }
    (norm > 0.0).then(|| (diff / norm).sqrt())
}

impl Snapshot {
    /// The parameters of `model` now.
    pub fn of(model: &Mlp) -> Result<Self, TrainError> {
        let k = model.members();
        let layers = (1..=model.depth())
            .map(|l| {
                let layer = model
                    .layer(l)
                    .ok_or_else(|| TrainError::Internal(format!("no layer {l}")))?;
                Ok((per_member(layer.weight(), k)?, per_member(layer.bias(), k)?))
            })
            .collect::<Result<_, TrainError>>()?;
        Ok(Self { layers })
    }

    /// Per member and layer, the (weight, bias) update ratios from this snapshot to
    /// `model` now.
    pub fn ratios_to(&self, model: &Mlp) -> Result<Vec<Vec<LayerRatios>>, TrainError> {
        let after = Self::of(model)?;
        let members = self.layers.first().map_or(0, |(w, _)| w.len());
        Ok((0..members)
            .map(|m| {
                self.layers
                    .iter()
                    .zip(&after.layers)
                    .map(|((w0, b0), (w1, b1))| (ratio(&w0[m], &w1[m]), ratio(&b0[m], &b1[m])))
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_the_relative_frobenius_change() {
        // ||(3, 4) - (0, 0)|| / ||(0, 0)||: undefined; ||(6, 8) - (3, 4)|| / ||(3, 4)|| = 1.
        assert_eq!(ratio(&[0.0, 0.0], &[3.0, 4.0]), None);
        assert_eq!(ratio(&[3.0, 4.0], &[6.0, 8.0]), Some(1.0));
        assert_eq!(ratio(&[3.0, 4.0], &[3.0, 4.0]), Some(0.0));
    }
}
