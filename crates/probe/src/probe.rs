//! Turns one step's gradients into per-member, per-layer records.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use vgrad_model::{ForwardTrace, Mlp};
use vgrad_record::histogram::Sums;
use vgrad_record::step::activation_edges;
use vgrad_record::{Activation, Distribution, Histogram, LayerRecord};

use crate::{DeltaTaps, Moments, ProbeError, Result};

/// The entries of a `[K, ...]` tensor (as f32), split into one block per member.
pub fn per_member(t: &Tensor, members: usize) -> Result<Vec<Vec<f32>>> {
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

/// Fraction of units (last axis of `[B, units]` row-major `is_off`) off in every row.
fn off_fraction(is_off: &[bool], units: usize) -> f64 {
    if units == 0 || is_off.is_empty() {
        return 0.0;
    }
    let off = (0..units)
        .filter(|&j| is_off.iter().skip(j).step_by(units).all(|&o| o))
        .count();
    off as f64 / units as f64
}

/// The mean of `f` over `values`, summed in order (0 for none).
fn mean_f64<T>(values: &[T], f: impl Fn(&T) -> f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(f).sum::<f64>() / values.len() as f64
}

/// What the probe reads of a hidden layer's activation for one member: its input a
/// (row-major `[B, units]`) and its output f(a).
struct Hidden<'a> {
    input: &'a [f32],
    output: &'a [f32],
    units: usize,
}

/// The statistics of a hidden layer's activation, and chi_1 with the next layer's
/// weights, whose entries summed to `next` (`[units, n_next]`).
struct HiddenStats {
    dead_frac: f64,
    deriv_mean: f64,
    deriv_mean_sq: f64,
    inactive_frac: f64,
    preact: Distribution,
    act: Distribution,
    preact_hist: Histogram,
    act_hist: Histogram,
    chi1: f64,
}

impl HiddenStats {
    fn of(activation: Activation, h: &Hidden, next: &Sums, n_next: usize) -> Self {
        // Each value's derivative and state once: for sigmoid each costs an exp, and the
        // statistics below read them several times.
        let (derivs, off): (Vec<f64>, Vec<bool>) = h
            .input
            .iter()
            .map(|&v| activation.derivative_and_off(v))
            .unzip();
        let deriv_sq = mean_f64(&derivs, |d| d.powi(2));
        // Var(W) over all entries of the next layer's weight matrix, from the square of
        // the norm (not the sum of squares it came from), as the records always had it.
        let entries = next.count.max(1) as f64;
        let mean_w = next.sum / entries;
        let var_w = Moments::from(next).l2.powi(2) / entries - mean_w * mean_w;
        Self {
            dead_frac: off_fraction(&off, h.units),
            deriv_mean: mean_f64(&derivs, |&d| d),
            deriv_mean_sq: deriv_sq,
            inactive_frac: mean_f64(&off, |&o| f64::from(u8::from(o))),
            preact: Distribution::of(h.input),
            act: Distribution::of(h.output),
            preact_hist: Histogram::over(h.input, activation_edges()),
            act_hist: Histogram::over(h.output, activation_edges()),
            chi1: n_next as f64 * var_w * deriv_sq,
        }
    }
}

/// Reads one step: call it between `backward()` and the optimizer's update, with the
/// trace of the forward pass that ran through `taps`. Returns, for each member, the
/// records of layers 1..=L, at the weights of that step (the update ratios and the
/// Jacobian spectra are the trainer's to fill in).
pub fn probe_step(
    model: &Mlp,
    grads: &GradStore,
    trace: &ForwardTrace,
    taps: &DeltaTaps,
) -> Result<Vec<Vec<LayerRecord>>> {
    let k = model.members();
    let depth = model.depth();
    let activation = model.activation();
    let layer = |l: usize| {
        model
            .layer(l)
            .ok_or_else(|| ProbeError::Shape(format!("no layer {l}")))
    };
    // Each weight matrix's histogram and sums, per member: its layer's record reads them,
    // and so does chi_1 of the layer before.
    let weights: Vec<(Vec<(Histogram, Sums)>, usize)> = (1..=depth)
        .map(|l| {
            let w = layer(l)?.weight();
            let per = per_member(w, k)?;
            Ok((
                per.iter().map(|v| Histogram::with_sums(v)).collect(),
                w.dim(2)?,
            ))
        })
        .collect::<Result<_>>()?;
    let mut records: Vec<Vec<LayerRecord>> = (0..k).map(|_| Vec::with_capacity(depth)).collect();
    for l in 1..=depth {
        let grad = grads
            .get(layer(l)?.weight())
            .ok_or(ProbeError::MissingWeightGradient { layer: l })?;
        let grads_k = per_member(grad, k)?;
        let weights_k = &weights[l - 1].0;
        let deltas_k = per_member(taps.delta(grads, l)?, k)?;
        // What the activation reads (after the normalisation, where there is one) decides
        // its derivative and whether a unit is off.
        let hidden_k = if l < depth {
            let missing = || ProbeError::Shape(format!("no activation for layer {l}"));
            let a = trace.activation_inputs.get(l - 1).ok_or_else(missing)?;
            let out = trace.activations.get(l - 1).ok_or_else(missing)?;
            Some((per_member(a, k)?, per_member(out, k)?, a.dim(2)?))
        } else {
            None
        };
        for m in 0..k {
            let (grad_hist, grad_sums) = Histogram::with_sums(&grads_k[m]);
            let g = Moments::from(&grad_sums);
            let (weight_hist, weight_sums) = &weights_k[m];
            let w = Moments::from(weight_sums);
            let hidden = hidden_k.as_ref().map(|(a, out, units)| {
                let h = Hidden {
                    input: &a[m],
                    output: &out[m],
                    units: *units,
                };
                let (next, n_next) = &weights[l];
                HiddenStats::of(activation, &h, &next[m].1, *n_next)
            });
            let (delta_hist, delta_sums) = Histogram::with_sums(&deltas_k[m]);
            let delta = Moments::from(&delta_sums);
            records[m].push(LayerRecord {
                layer: l,
                grad_mean_abs: g.mean_abs,
                grad_l2: g.l2,
                grad_std: g.std,
                grad_max_abs: g.max_abs,
                weight_mean_abs: w.mean_abs,
                weight_l2: w.l2,
                dead_frac: hidden.as_ref().map(|h| h.dead_frac),
                deriv_mean: hidden.as_ref().map(|h| h.deriv_mean),
                deriv_mean_sq: hidden.as_ref().map(|h| h.deriv_mean_sq),
                inactive_frac: hidden.as_ref().map(|h| h.inactive_frac),
                preact: hidden.as_ref().map(|h| h.preact),
                act: hidden.as_ref().map(|h| h.act),
                // Mean-field theory's chi_1 of a dense layer; a convolution's would count
                // each unit's 9 x channels outgoing weights, which the probe does not.
                chi1: hidden
                    .as_ref()
                    .filter(|_| !model.is_convolutional())
                    .map(|h| h.chi1),
                jacobian: None,
                update_ratio: None,
                bias_update_ratio: None,
                delta_mean_abs: delta.mean_abs,
                delta_mean_sq: Some(mean_square(&delta_sums)),
                grad_hist,
                weight_hist: weight_hist.clone(),
                delta_hist: Some(delta_hist),
                preact_hist: hidden.as_ref().map(|h| h.preact_hist.clone()),
                act_hist: hidden.map(|h| h.act_hist),
            });
        }
    }
    Ok(records)
}

/// The mean square of the values summed to `sums` (0 for none).
fn mean_square(sums: &Sums) -> f64 {
    if sums.count == 0 {
        return 0.0;
    }
    sums.sum_squares / sums.count as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;
    use vgrad_model::MlpConfig;
    use vgrad_record::{Init, Norm};

    /// A two-member f32 model on the CPU, where every layer takes the fused path, and a
    /// batch of 5 inputs for it.
    fn fused_model() -> (Mlp, Tensor) {
        let cfg = MlpConfig {
            model: vgrad_record::Architecture::Mlp,
            input: 4,
            width: 3,
            layers: 3,
            classes: 2,
            activation: Activation::Tanh,
            init: Init::GlorotNormal,
            bias_variance: 0.0,
            norm: Norm::None,
            residual: false,
            branch_scale: vgrad_record::BranchScale::One,
        };
        let mlp = Mlp::init(&cfg, &[1, 2], &VarMap::new(), &Device::Cpu).unwrap();
        let x = Tensor::arange(0f32, 40.0, &Device::Cpu)
            .and_then(|t| t.affine(0.1, -2.0))
            .and_then(|t| t.reshape((2, 5, 4)))
            .unwrap();
        (mlp, x)
    }

    #[test]
    fn refuses_gradients_from_loss_backward_naming_the_layer_and_the_call() {
        let (mlp, x) = fused_model();
        let taps = DeltaTaps::new(&mlp, 5, &Device::Cpu).unwrap();
        let trace = mlp.forward_traced(&x, Some(taps.tensors())).unwrap();
        let loss = trace.logits.sqr().unwrap().sum_all().unwrap();
        let err = probe_step(&mlp, &loss.backward().unwrap(), &trace, &taps).unwrap_err();
        assert!(
            matches!(err, ProbeError::MissingWeightGradient { layer: 1 }),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("layer 1") && message.contains("ForwardTrace::backward"),
            "{message}"
        );
        // The same pass differentiated as the trace says is read (a fresh pass: the first
        // backward left its weight gradients in the trace, which a second would add to).
        let trace = mlp.forward_traced(&x, Some(taps.tensors())).unwrap();
        let loss = trace.logits.sqr().unwrap().sum_all().unwrap();
        let records = probe_step(&mlp, &trace.backward(&loss).unwrap(), &trace, &taps).unwrap();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.len() == 3));
    }

    #[test]
    fn refuses_gradients_of_a_pass_that_bypassed_the_taps() {
        let (mlp, x) = fused_model();
        let taps = DeltaTaps::new(&mlp, 5, &Device::Cpu).unwrap();
        let trace = mlp.forward_traced(&x, None).unwrap();
        let loss = trace.logits.sqr().unwrap().sum_all().unwrap();
        let err = probe_step(&mlp, &trace.backward(&loss).unwrap(), &trace, &taps).unwrap_err();
        assert!(
            matches!(err, ProbeError::MissingTapGradient { layer: 1 }),
            "{err}"
        );
        assert!(err.to_string().contains("forward_traced"), "{err}");
    }

    #[test]
    fn off_fraction_counts_units_off_for_every_row() {
        // 3 rows x 2 units: unit 0 is off in every row, unit 1 is on in row 2.
        let z = [-1.0, -2.0, 0.0, -1.0, -3.0, 0.5];
        let off = |limit: f64| z.map(|v: f64| v <= limit);
        assert_eq!(off_fraction(&off(0.0), 2), 0.5);
        assert_eq!(off_fraction(&off(1.0), 2), 1.0);
    }
}
