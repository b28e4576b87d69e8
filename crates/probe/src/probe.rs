//! Turns one step's gradients into per-member, per-layer records.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use vgrad_model::{ForwardTrace, Mlp};
use vgrad_record::{Histogram, LayerRecord, Percentiles};

use crate::moments::mean_abs;
use crate::{DeltaTaps, Moments, ProbeError, Result};

/// The entries of a `[K, ...]` tensor (as f32), split into one block per member.
fn per_member(t: &Tensor, members: usize) -> Result<Vec<Vec<f32>>> {
    let flat = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if members == 0 || flat.len() % members != 0 {
        return Err(ProbeError::Shape(format!(
            "{:?} does not split into {members} members",
            t.shape()
        )));
    }
    Ok(flat
        .chunks(flat.len() / members)
        .map(<[f32]>::to_vec)
        .collect())
}

/// Fraction of units (last axis of `[B, units]` row-major `z`) that `is_off` for every row.
fn off_fraction(z: &[f32], units: usize, is_off: impl Fn(f32) -> bool) -> f64 {
    if units == 0 || z.is_empty() {
        return 0.0;
    }
    let off = (0..units)
        .filter(|&j| z.iter().skip(j).step_by(units).all(|&v| is_off(v)))
        .count();
    off as f64 / units as f64
}

/// The mean of `f` over `values` (0 for none).
fn mean_of(values: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|&v| f(v)).sum::<f64>() / values.len() as f64
}

/// Reads one step: call it between `backward()` and the optimizer's update, with the
/// trace of the forward pass that ran through `taps`. Returns, for each member, the
/// records of layers 1..=L, at the weights of that step.
pub fn probe_step(
    model: &Mlp,
    grads: &GradStore,
    trace: &ForwardTrace,
    taps: &DeltaTaps,
) -> Result<Vec<Vec<LayerRecord>>> {
    let k = model.members();
    let depth = model.depth();
    let activation = model.activation();
    let mut records: Vec<Vec<LayerRecord>> = (0..k).map(|_| Vec::with_capacity(depth)).collect();
    for l in 1..=depth {
        let layer = model
            .layer(l)
            .ok_or_else(|| ProbeError::Shape(format!("no layer {l}")))?;
        let grad = grads
            .get(layer.weight())
            .ok_or(ProbeError::MissingGradient {
                what: "weight",
                layer: l,
            })?;
        let grads_k = per_member(grad, k)?;
        let weights_k = per_member(layer.weight(), k)?;
        let deltas_k = per_member(taps.delta(grads, l)?, k)?;
        // What the activation reads (after the normalisation, where there is one) decides
        // its derivative and whether a unit is off.
        let z_k = if l < depth {
            let z = trace
                .activation_inputs
                .get(l - 1)
                .ok_or_else(|| ProbeError::Shape(format!("no activation input for layer {l}")))?;
            Some((per_member(z, k)?, z.dim(2)?))
        } else {
            None
        };
        for m in 0..k {
            let g = Moments::of(&grads_k[m]);
            let w = Moments::of(&weights_k[m]);
            let dead_frac = z_k
                .as_ref()
                .map(|(z, units)| off_fraction(&z[m], *units, |v| activation.unit_is_off(v)));
            let deriv_mean = z_k
                .as_ref()
                .map(|(z, _)| mean_of(&z[m], |v| activation.derivative(f64::from(v))));
            let inactive_frac = z_k
                .as_ref()
                .map(|(z, _)| mean_of(&z[m], |v| f64::from(u8::from(activation.unit_is_off(v)))));
            let act_input = z_k.as_ref().map(|(z, _)| Percentiles::of(&z[m]));
            records[m].push(LayerRecord {
                layer: l,
                grad_mean_abs: g.mean_abs,
                grad_l2: g.l2,
                grad_std: g.std,
                grad_max_abs: g.max_abs,
                weight_mean_abs: w.mean_abs,
                weight_l2: w.l2,
                dead_frac,
                deriv_mean,
                inactive_frac,
                act_input,
                delta_mean_abs: mean_abs(&deltas_k[m]),
                grad_hist: Histogram::of(&grads_k[m]),
                weight_hist: Histogram::of(&weights_k[m]),
            });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_fraction_counts_units_off_for_every_row() {
        // 3 rows x 2 units: unit 0 is off in every row, unit 1 is on in row 2.
        let z = [-1.0, -2.0, 0.0, -1.0, -3.0, 0.5];
        assert_eq!(off_fraction(&z, 2, |v| v <= 0.0), 0.5);
        assert_eq!(off_fraction(&z, 2, |v| v <= 1.0), 1.0);
    }
}
