//! Gradient clipping by global norm (Pascanu, Mikolov & Bengio 2013, "On the difficulty of
//! training recurrent neural networks", Algorithm 1), each ensemble member by its own
//! norm, so that a member clips exactly when, and as, its run alone would.

use candle_core::{DType, Result, Tensor};

/// What clipping one step did.
#[derive(Debug, Clone)]
pub struct Clipped {
    /// The gradients to step with: scaled where a member's norm exceeded the bound, the
    /// same tensors where none did.
    pub grads: Vec<Tensor>,
    /// Each member's global gradient norm over all its parameters, before clipping.
    pub norms: Vec<f64>,
    /// Whether each member's gradients were scaled down.
    pub clipped: Vec<bool>,
}

/// Each member's gradients scaled by max_norm / (norm + 1e-6) where their global norm (over
/// every variable's slice of that member, summed in f64 in the variables' order) exceeds
/// `max_norm`: PyTorch's `clip_grad_norm_`, per member. Every gradient is `[K, ...]`. A
/// member whose norm is not finite (it diverged, and is frozen) is left as it is.
///
/// A member that is not clipped keeps its gradients' bits: where another member is, its
/// slices are multiplied by exactly 1.
pub fn clip_by_global_norm(grads: &[&Tensor], members: usize, max_norm: f64) -> Result<Clipped> {
    let mut squares = vec![0.0f64; members];
    for g in grads {
        let per_member = g.flatten_from(1)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        if per_member.len() != members {
            candle_core::bail!(
                "clipping: a gradient of {} members in an ensemble of {members}",
                per_member.len()
            );
        }
        for (sum, values) in squares.iter_mut().zip(&per_member) {
            *sum += values
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>();
        }
    }
    let norms: Vec<f64> = squares.into_iter().map(f64::sqrt).collect();
    let clipped: Vec<bool> = norms
        .iter()
        .map(|&n| n.is_finite() && n > max_norm)
        .collect();
    let grads = if clipped.iter().any(|&c| c) {
        let coefficients: Vec<f32> = norms
            .iter()
            .zip(&clipped)
            .map(|(&n, &c)| {
                if c {
                    (max_norm / (n + 1e-6)) as f32
                } else {
                    1.0
                }
            })
            .collect();
        let coefficients = Tensor::from_vec(coefficients, (members, 1), grads[0].device())?;
        grads
            .iter()
            .map(|g| {
                let flat = g.flatten_from(1)?;
                flat.broadcast_mul(&coefficients.to_dtype(g.dtype())?)?
                    .reshape(g.shape())
            })
            .collect::<Result<_>>()?
    } else {
        grads.iter().map(|g| (*g).clone()).collect()
    };
    Ok(Clipped {
        grads,
        norms,
        clipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map(|v| v.into_iter().map(f32::to_bits).collect())
            .unwrap_or_default()
    }

    #[test]
    fn each_member_is_clipped_by_its_own_norm_and_the_others_keep_their_bits() -> Result<()> {
        let dev = Device::Cpu;
        // Member 0: norm sqrt(9 + 16 + 144) = 13 over two variables; member 1: norm 0.5.
        let w = Tensor::new(&[[[3f32, 0.0], [0.0, 4.0]], [[0.3, 0.0], [0.0, 0.4]]], &dev)?;
        let b = Tensor::new(&[[[12f32]], [[0.0]]], &dev)?;
        let out = clip_by_global_norm(&[&w, &b], 2, 1.0)?;
        // 0.3 and 0.4 in f32 are a few 1e-8 off their decimal values.
        assert!((out.norms[0] - 13.0).abs() < 1e-12 && (out.norms[1] - 0.5).abs() < 1e-7);
        assert_eq!(out.clipped, vec![true, false]);
        let scale = (1.0 / (13.0 + 1e-6)) as f32;
        let w0 = out.grads[0].get(0)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(w0, vec![3.0 * scale, 0.0, 0.0, 4.0 * scale]);
        let clipped_norm: f64 = [3.0 * scale, 4.0 * scale, 12.0 * scale]
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((clipped_norm - 1.0).abs() < 1e-6, "{clipped_norm}");
        assert_eq!(
            bits(&out.grads[0].get(1)?),
            bits(&w.get(1)?),
            "member 1 untouched"
        );
        assert_eq!(bits(&out.grads[1].get(1)?), bits(&b.get(1)?));
        // A member alone clips as it does in the ensemble.
        let alone = clip_by_global_norm(&[&w.narrow(0, 0, 1)?, &b.narrow(0, 0, 1)?], 1, 1.0)?;
        assert_eq!(bits(&alone.grads[0]), bits(&out.grads[0].narrow(0, 0, 1)?));
        assert_eq!(bits(&alone.grads[1]), bits(&out.grads[1].narrow(0, 0, 1)?));
        Ok(())
    }

    #[test]
    fn nothing_changes_below_the_bound_or_for_a_diverged_member() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::new(&[[0.1f32, -0.2], [f32::NAN, 1e6]], &dev)?;
        let out = clip_by_global_norm(&[&w], 2, 1.0)?;
        assert_eq!(out.clipped, vec![false, false]);
        assert!(out.norms[1].is_nan());
        assert_eq!(bits(&out.grads[0]), bits(&w));
        assert!(clip_by_global_norm(&[&w], 3, 1.0).is_err());
        Ok(())
    }
}
