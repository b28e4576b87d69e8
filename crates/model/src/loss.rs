//! The training loss of an ensemble: each member's mean cross-entropy (or, for a
//! regression task such as the adding problem, its mean squared error), summed over
//! members. Training and the probe's finite-difference test both use these functions.

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

/// The loss of a regression batch and each example's squared error.
#[derive(Debug, Clone)]
pub struct EnsembleRegressionLoss {
    /// The scalar to back-propagate: sum over members of each member's mean squared
    /// error (a sum, as [`EnsembleLoss::loss`], so that every member gets the gradient it
    /// would get alone).
    pub loss: Tensor,
    /// `(prediction - target)^2` per example, `[K, B, outputs]`.
    pub squared: Tensor,
}

/// The mean squared error of `predictions` `[K, B, outputs]` against `targets` of the
/// same shape, per member, summed over members.
pub fn ensemble_mse(predictions: &Tensor, targets: &Tensor) -> Result<EnsembleRegressionLoss> {
    let (_, batch, outputs) = predictions.dims3()?;
    let squared = (predictions - targets)?.sqr()?;
    let loss = (squared.sum_all()? * (1.0 / (batch * outputs).max(1) as f64))?;
    Ok(EnsembleRegressionLoss { loss, squared })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_member_contributes_its_own_mean_squared_error() -> Result<()> {
        let dev = Device::Cpu;
        // Two members, three examples of one output: errors (1, 2, 0) and (0.5, 0, 0).
        let predictions = Tensor::new(&[[[1.0f64], [3.0], [0.5]], [[1.5], [2.0], [-1.0]]], &dev)?;
        let targets = Tensor::new(&[[[0.0f64], [1.0], [0.5]], [[1.0], [2.0], [-1.0]]], &dev)?;
        let l = ensemble_mse(&predictions, &targets)?;
        let want = (1.0 + 4.0 + 0.0) / 3.0 + 0.25 / 3.0;
        assert!((l.loss.to_scalar::<f64>()? - want).abs() < 1e-15);
        assert_eq!(
            l.squared.flatten_all()?.to_vec1::<f64>()?,
            [1.0, 4.0, 0.0, 0.25, 0.0, 0.0]
        );
        // Member 1's gradient is what it would be alone: 2 (p - t) / B.
        let p = candle_core::Var::from_tensor(&predictions)?;
        let grads = ensemble_mse(p.as_tensor(), &targets)?.loss.backward()?;
        let g = grads
            .get(p.as_tensor())
            .map(|g| g.flatten_all())
            .transpose()?;
        let g = g
            .map(|g| g.to_vec1::<f64>())
            .transpose()?
            .unwrap_or_default();
        let want: Vec<f64> = [1.0, 2.0, 0.0, 0.5, 0.0, 0.0]
            .iter()
            .map(|e| 2.0 * e / 3.0)
            .collect();
        assert_eq!(g.len(), 6);
        for (a, b) in g.iter().zip(&want) {
            assert!((a - b).abs() < 1e-15, "{g:?} against {want:?}");
        }
        Ok(())
    }
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
