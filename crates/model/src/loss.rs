//! The training loss of an ensemble: each member's mean cross-entropy, summed over
//! members. Training and the probe's finite-difference test both use this function.

use candle_core::{D, Result, Tensor};

/// The loss of a batch and, for each example, the log-probability the model gave its
/// label.
#[derive(Debug, Clone)]
pub struct EnsembleLoss {
    /// The scalar to back-propagate: sum over members of each member's mean
    /// cross-entropy. A mean over all K*B rows would scale every member's gradient by 1/K;
    /// this sum gives every member exactly the gradient it would get alone.
    pub loss: Tensor,
    /// `log softmax(logits)[label]` per example, `[K, B, 1]`.
    pub picked: Tensor,
}

/// The loss of `logits` `[K, B, classes]` against the labels `ys` `[K, B, 1]` (u32).
pub fn ensemble_cross_entropy(logits: &Tensor, ys: &Tensor) -> Result<EnsembleLoss> {
    let batch = logits.dim(1)?;
    let picked = candle_nn::ops::log_softmax(logits, D::Minus1)?.gather(ys, D::Minus1)?;
    let loss = (picked.sum_all()? * (-1.0 / batch as f64))?;
    Ok(EnsembleLoss { loss, picked })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn each_member_contributes_its_own_mean_cross_entropy() -> Result<()> {
        // Two members, two examples of three classes, by hand in f64.
        let logits = [
            [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]],
            [[2.0, 2.0, 2.0], [1.0, 0.0, 0.0]],
        ];
        let labels = [[1u32, 2], [0, 1]];
        let ce = |row: &[f64; 3], label: u32| {
            let norm = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            norm - row[label as usize]
        };
        let want: f64 = (0..2)
            .map(|m| (0..2).map(|b| ce(&logits[m][b], labels[m][b])).sum::<f64>() / 2.0)
            .sum();
        let dev = Device::Cpu;
        let l = ensemble_cross_entropy(
            &Tensor::new(&logits, &dev)?,
            &Tensor::new(&labels, &dev)?.unsqueeze(2)?,
        )?;
        assert!((l.loss.to_scalar::<f64>()? - want).abs() < 1e-12);
        assert_eq!(l.picked.dims(), &[2, 2, 1]);
        Ok(())
    }
}
