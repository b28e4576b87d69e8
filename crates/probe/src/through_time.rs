//! The probe through time (issue 36, part 3): what back-propagation did across the time
//! steps of a recurrent network's sequence, read from candle's `GradStore`, as one
//! [`TimeRecord`] per ensemble member.
//!
//! The error at each hidden state, dC/dh_t, is the gradient of the zero tap the traced
//! forward pass added to h_t ([`Recurrent::zero_taps`]): the study's "gradient through
//! time", followed from the last step back to the first as Hochreiter 1991, Bengio,
//! Simard & Frasconi 1994 and Pascanu, Mikolov & Bengio 2013 follow it. Beside it the
//! recurrent weight (its blocks' spectral radius and largest singular value, Pascanu et
//! al.'s condition for vanishing; its gradient's size), and the gates that carry the
//! state: the LSTM's forget gate (Gers et al. 2000) and the GRU's update gate (Cho et al.
//! 2014), with every sigmoid gate's saturated fraction.
//!
//! Everything is read in f64 from the tensors as they are (f32 or f64), so that a model
//! in f64 is measured to f64's precision (its finite-difference checks need that).

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use nalgebra::{DMatrix, SVD, Schur};
use vgrad_model::recurrent::{Gates, Recurrent, RecurrentKind, RecurrentTrace};
use vgrad_record::time::{
    GATE_SATURATION, GateStats, RecurrentBlock, RecurrentWeight, TimeJacobians, TimeRecord,
    TimeStep, delta_ratio, step_factor,
};

use crate::{ProbeError, Result};

/// Iterations nalgebra's Schur decomposition and SVD may take before the probe reports
/// NaN rather than wait: they converge in a few per eigenvalue for the hidden sizes of
/// this study, and an unbounded count (nalgebra's default) could stall a training run on
/// a pathological weight.
const MAX_ITERATIONS: usize = 10_000;

/// The names of the blocks of `hidden` columns of a cell's weights, in its gate order
/// (PyTorch's): the vanilla RNN's single block is `h`.
pub fn block_names(kind: RecurrentKind) -> &'static [&'static str] {
    match kind {
        RecurrentKind::RnnTanh | RecurrentKind::RnnRelu => &["h"],
        RecurrentKind::Lstm => &["i", "f", "g", "o"],
        RecurrentKind::Gru => &["r", "z", "n"],
    }
}

/// The entries of a `[K, ...]` tensor in f64, split into one block per member.
fn member_values(t: &Tensor, members: usize) -> Result<Vec<Vec<f64>>> {
    let flat = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    if members == 0 || flat.len() % members != 0 {
        return Err(ProbeError::Shape(format!(
            "{:?} does not split into {members} members",
            t.shape()
        )));
    }
    if flat.is_empty() {
        return Ok(vec![Vec::new(); members]);
    }
    Ok(flat
        .chunks(flat.len() / members)
        .map(<[f64]>::to_vec)
        .collect())
}

/// (mean |x|, sqrt(sum x^2)) of `values`, summed in f64 in order (0 for none).
fn magnitudes(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let (sum_abs, sum_sq) = values
        .iter()
        .fold((0.0, 0.0), |(a, s), v| (a + v.abs(), s + v * v));
    (sum_abs / values.len() as f64, sum_sq.sqrt())
}

/// The mean of `values` (NaN for none).
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// (spectral radius, largest singular value) of the `n x n` row-major `block`, from
/// nalgebra's real Schur decomposition (eigenvalues of a non-symmetric matrix come in
/// complex pairs; their modulus counts) and its SVD. NaN for a block with a non-finite
/// entry, or where either fails to converge.
pub fn block_spectrum(block: &[f64], n: usize) -> (f64, f64) {
    if n == 0 || block.len() != n * n || block.iter().any(|v| !v.is_finite()) {
        return (f64::NAN, f64::NAN);
    }
    let m = DMatrix::from_row_slice(n, n, block);
    let radius = Schur::try_new(m.clone(), f64::EPSILON, MAX_ITERATIONS).map_or(f64::NAN, |s| {
        s.complex_eigenvalues()
            .iter()
            .map(|z| z.norm())
            .fold(0.0, f64::max)
    });
    let sigma = SVD::try_new(m, false, false, f64::EPSILON, MAX_ITERATIONS)
        .map_or(f64::NAN, |s| s.singular_values.max());
    (radius, sigma)
}

/// The statistics of one sigmoid gate's `values` (NaN where there are none).
pub fn gate_stats(gate: &str, values: &[f64]) -> GateStats {
    let n = values.len() as f64;
    let low = values.iter().filter(|&&v| v < GATE_SATURATION).count() as f64 / n;
    let high = values
        .iter()
        .filter(|&&v| v > 1.0 - GATE_SATURATION)
        .count() as f64
        / n;
    GateStats {
        gate: gate.to_string(),
        mean: mean(values),
        low_frac: low,
        high_frac: high,
        saturated_frac: low + high,
    }
}

/// The sigmoid gates of one step with their names, and the gate that carries the state
/// (the LSTM's forget gate, the GRU's update gate).
fn sigmoid_gates(gates: &Gates) -> (Vec<(&'static str, &Tensor)>, &Tensor) {
    match gates {
        Gates::Lstm {
            input,
            forget,
            output,
            ..
        } => (vec![("i", input), ("f", forget), ("o", output)], forget),
        Gates::Gru { reset, update, .. } => (vec![("r", reset), ("z", update)], update),
    }
}

/// Reads one step of a recurrent model: call it between `backward()` and the optimizer's
/// update, with the trace of the forward pass that ran through `taps` (one per time step,
/// [`Recurrent::zero_taps`]) and the gradients of a loss computed from that pass.
/// Returns one [`TimeRecord`] per member, at the weights of that step:
///
/// - per time step t, ||dC/dh_t|| (the L2 norm over the batch's examples and the hidden
///   units) and mean |dC/dh_t|, and the mean of the LSTM's forget gate or the GRU's
///   update gate;
/// - the ratio ||dC/dh_T|| / ||dC/dh_1|| (above 1 the error shrinks going back in time)
///   and the per-step factor (||dC/dh_1|| / ||dC/dh_T||)^(1/(T-1)): the factor by which
///   the error is multiplied per step going back, its geometric mean over the sequence,
///   in the sign convention of the layer probe's per-layer error factor (below 1 it
///   vanishes);
/// - each hidden x hidden block of W_h's spectral radius and largest singular value,
///   and W_h's and its gradient's magnitudes;
/// - for the gated cells, each sigmoid gate's mean and saturated fractions over every
///   step, example and unit.
///
/// Fails with a [`ProbeError::Shape`] whose message names what is missing, where the
/// `GradStore` holds no gradient for a tap (the loss did not come from a pass through
/// these taps) or for W_h (the gradients are of another model's pass: candle's backward
/// gives one to every operand of a differentiated product, variable or not), or where the
/// trace or the taps do not fit the model.
pub fn probe_through_time(
    model: &Recurrent,
    trace: &RecurrentTrace,
    taps: &[Var],
    grads: &GradStore,
) -> Result<Vec<TimeRecord>> {
    let k = model.members();
    let hidden = model.hidden();
    let kind = model.kind();
    let steps = trace.steps();
    if taps.len() != steps {
        return Err(ProbeError::Shape(format!(
            "{} taps for a trace of {steps} time steps: pass the taps the traced pass ran \
             through (Recurrent::zero_taps(batch, steps))",
            taps.len()
        )));
    }
    if steps == 0 {
        return Err(ProbeError::Shape("a trace of no time step".into()));
    }
    if !kind.is_vanilla() && trace.gates.len() != steps {
        return Err(ProbeError::Shape(format!(
            "the {kind}'s trace holds the gates of {} of its {steps} steps",
            trace.gates.len()
        )));
    }

    // dC/dh_t per step and member: (mean |.|, L2).
    let mut deltas: Vec<Vec<(f64, f64)>> = vec![Vec::with_capacity(steps); k];
    for (t, tap) in taps.iter().enumerate() {
        let grad = grads.get(tap.as_tensor()).ok_or_else(|| {
            ProbeError::Shape(format!(
                "the GradStore holds no gradient for the tap of time step {}: run the \
                 training pass through these taps (Recurrent::forward_traced(xs, \
                 Some(taps))) and differentiate a loss computed from that pass",
                t + 1
            ))
        })?;
        for (m, values) in member_values(grad, k)?.iter().enumerate() {
            deltas[m].push(magnitudes(values));
        }
    }

    // The gates: per member, the carrying gate's mean per step and every sigmoid gate's
    // values over the whole sequence.
    let mut carry: Vec<Vec<f64>> = vec![Vec::with_capacity(steps); k];
    let mut gate_values: Vec<Vec<(&'static str, Vec<f64>)>> = vec![Vec::new(); k];
    for gates in &trace.gates {
        let (sigmoids, carrying) = sigmoid_gates(gates);
        for (m, values) in member_values(carrying, k)?.iter().enumerate() {
            carry[m].push(mean(values));
        }
        for (g, (name, tensor)) in sigmoids.into_iter().enumerate() {
            for (m, values) in member_values(tensor, k)?.into_iter().enumerate() {
                match gate_values[m].get_mut(g) {
                    Some((_, all)) => all.extend(values),
                    None => gate_values[m].push((name, values)),
                }
            }
        }
    }

    // The recurrent weight and its gradient.
    let w = &model.params().recurrent_weight;
    let grad_w = grads.get(w).ok_or_else(|| {
        ProbeError::Shape(
            "the GradStore holds no gradient for the recurrent weight W_h: differentiate a \
             loss of this model's forward pass (the gradients are of another model's)"
                .into(),
        )
    })?;
    let weights = member_values(w, k)?;
    let weight_grads = member_values(grad_w, k)?;
    let names = block_names(kind);
    let member_blocks = recurrent_blocks(model)?;

    let mut records = Vec::with_capacity(k);
    for m in 0..k {
        let blocks = names
            .iter()
            .zip(&member_blocks[m])
            .map(|(gate, block)| {
                let (spectral_radius, max_singular) = block_spectrum(block, hidden);
                RecurrentBlock {
                    gate: (*gate).to_string(),
                    spectral_radius,
                    max_singular,
                }
            })
            .collect();
        let (grad_mean_abs, grad_l2) = magnitudes(&weight_grads[m]);
        let (weight_mean_abs, weight_l2) = magnitudes(&weights[m]);
        let norms: Vec<f64> = deltas[m].iter().map(|&(_, l2)| l2).collect();
        records.push(TimeRecord {
            steps: deltas[m]
                .iter()
                .enumerate()
                .map(|(t, &(mean_abs, l2))| TimeStep {
                    t: t + 1,
                    delta_l2: l2,
                    delta_mean_abs: mean_abs,
                    carry_gate_mean: carry[m].get(t).copied(),
                })
                .collect(),
            delta_ratio: delta_ratio(&norms),
            step_factor: step_factor(&norms),
            recurrent: RecurrentWeight {
                blocks,
                grad_mean_abs,
                grad_l2,
                weight_mean_abs,
                weight_l2,
            },
            gates: gate_values[m]
                .iter()
                .map(|(name, values)| gate_stats(name, values))
                .collect(),
            jacobians: None,
        });
    }
    Ok(records)
}

/// The vanilla RNN's step Jacobians through time on the first `examples` examples of a
/// traced pass (with no taps or zero taps), beside Pascanu et al. 2013's bound, one per
/// member: the geometric mean of their spectral norms and sigma_max(W_h) gamma. `None`
/// per member for the gated cells, whose Jacobians through time are not W_h diag(f').
/// Costs one hidden x hidden SVD per example and step.
pub fn time_jacobians(
    model: &Recurrent,
    trace: &RecurrentTrace,
    examples: usize,
) -> Result<Vec<Option<TimeJacobians>>> {
    let k = model.members();
    let Some(activation) = model.kind().activation() else {
        return Ok(vec![None; k]);
    };
    let hidden = model.hidden();
    let gamma = vgrad_theory::recurrent::derivative_bound(activation);
    let derivatives = vanilla_derivatives(model, trace)?;
    let blocks = recurrent_blocks(model)?;
    let mut out = Vec::with_capacity(k);
    for (derivs, blocks) in derivatives.iter().zip(&blocks) {
        let w_h = &blocks[0];
        let batch = derivs.first().map_or(0, |d| d.len() / hidden.max(1));
        let n = examples.min(batch);
        // Step 1's Jacobian is that of h_1 against the fixed h_0: it carries no error.
        let mut norms = Vec::with_capacity(n * derivs.len().saturating_sub(1));
        for d in derivs.iter().skip(1) {
            for example in d.chunks_exact(hidden).take(n) {
                let j = vgrad_theory::recurrent::rnn_step_jacobian(w_h, hidden, example)
                    .map_err(|e| ProbeError::Shape(e.to_string()))?;
                // nalgebra's SVD: the theory crate's Jacobi method is exact but takes
                // milliseconds per matrix at these widths, and there are T per example.
                norms.push(block_spectrum(&j, hidden).1);
            }
        }
        let bound_per_step =
            vgrad_theory::recurrent::step_norm_bound(w_h, hidden, gamma).unwrap_or(f64::NAN);
        out.push(Some(TimeJacobians {
            examples: n,
            norm_per_step: vgrad_theory::recurrent::NormProduct::of(&norms).per_step,
            bound_per_step,
        }));
    }
    Ok(out)
}

/// The vanilla RNN's f'(a_t) for every member and step, read back from the hidden states
/// of a trace: `[member][t - 1]` holds step t's `[batch, hidden]` row-major, the input of
/// `vgrad_theory::recurrent::jacobian_products` for the Jacobians' norms against Pascanu
/// et al. 2013's bound. tanh' = 1 - h_t^2; ReLU' = 1 where h_t > 0 and 0 elsewhere (vgrad's
/// and PyTorch's 0 at an exact 0, the default kernels'). The trace must come from a pass
/// with no taps or zero taps, which leave h_t = f(a_t). Fails for the gated cells.
pub fn vanilla_derivatives(
    model: &Recurrent,
    trace: &RecurrentTrace,
) -> Result<Vec<Vec<Vec<f64>>>> {
    let k = model.members();
    let derivative: fn(f64) -> f64 = match model.kind() {
        RecurrentKind::RnnTanh => |h| 1.0 - h * h,
        RecurrentKind::RnnRelu => |h| f64::from(u8::from(h > 0.0)),
        kind => {
            return Err(ProbeError::Shape(format!(
                "the {kind} is no vanilla RNN: its Jacobians through time are not W_h diag(f')"
            )));
        }
    };
    let mut out = vec![Vec::with_capacity(trace.steps()); k];
    for h in &trace.hidden {
        for (m, values) in member_values(h, k)?.into_iter().enumerate() {
            out[m].push(values.into_iter().map(derivative).collect());
        }
    }
    Ok(out)
}

/// Each member's hidden x hidden blocks of W_h, row-major, in the cell's gate order
/// ([`block_names`]): `[member][gate]`. The vanilla RNN's single block is its W_h, the
/// other input of `vgrad_theory::recurrent::jacobian_products`.
pub fn recurrent_blocks(model: &Recurrent) -> Result<Vec<Vec<Vec<f64>>>> {
    let hidden = model.hidden();
    let gates = block_names(model.kind()).len();
    let width = gates * hidden;
    member_values(&model.params().recurrent_weight, model.members())?
        .into_iter()
        .enumerate()
        .map(|(m, w)| {
            if w.len() != hidden * width {
                return Err(ProbeError::Shape(format!(
                    "W_h of member {m} holds {} values, expected {hidden} x {width}",
                    w.len()
                )));
            }
            Ok((0..gates)
                .map(|j| {
                    // Gate j's block: columns j * hidden..(j + 1) * hidden of every row.
                    w.chunks_exact(width)
                        .flat_map(|row| &row[j * hidden..(j + 1) * hidden])
                        .copied()
                        .collect()
                })
                .collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Module};
    use candle_nn::{VarBuilder, VarMap};
    use vgrad_model::recurrent::{RecurrentConfig, RecurrentInit};

    use super::*;

    /// Deterministic inputs in [-1, 1], `[members, batch, steps, features]`.
    fn sequences(shape: (usize, usize, usize, usize), dtype: DType) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        Tensor::arange(0f64, n as f64, &Device::Cpu)
            .and_then(|t| t.affine(0.731, 0.25))
            .and_then(|t| t.sin())
            .and_then(|t| t.reshape(shape))
            .and_then(|t| t.to_dtype(dtype))
            .expect("a fixed tensor")
    }

    /// sum(coefficients * outputs), coefficients differing per member, example and output
    /// so that no gradient cancels by symmetry.
    fn loss(outputs: &Tensor) -> Tensor {
        let coef = Tensor::arange(0f64, outputs.elem_count() as f64, &Device::Cpu)
            .and_then(|t| t.affine(1.3, 0.4))
            .and_then(|t| t.cos())
            .and_then(|t| t.reshape(outputs.shape()))
            .and_then(|t| t.to_dtype(outputs.dtype()))
            .expect("a fixed tensor");
        outputs
            .mul(&coef)
            .and_then(|t| t.sum_all())
            .expect("a scalar loss")
    }

    fn tensors(taps: &[Var]) -> Vec<Tensor> {
        taps.iter().map(|v| v.as_tensor().clone()).collect()
    }

    /// One training pass through fresh taps: the trace, the taps and the gradients.
    fn probed(model: &Recurrent, xs: &Tensor) -> Result<Vec<TimeRecord>> {
        let (_, batch, steps, _) = xs.dims4()?;
        let taps = model.zero_taps(batch, steps)?;
        let trace = model.forward_traced(xs, Some(&tensors(&taps)))?;
        let grads = loss(&trace.outputs).backward()?;
        probe_through_time(model, &trace, &taps, &grads)
    }

    /// ||dC/dh_t|| and mean |dC/dh_t| of every member and step, from the probe, against
    /// the same of central differences (step 1e-6, in f64) of the loss with respect to
    /// every entry of every h_t: a tap of eps at one entry of h_t is exactly a
    /// perturbation of h_t there. Within 1e-9 + 1e-7 relative: the differences' own
    /// rounding error is about 1e-10 per entry, against norms of 1e-3 to 1.
    #[test]
    fn errors_through_time_match_central_differences() -> Result<()> {
        let (members, batch, steps, hidden) = (2, 2, 4, 3);
        let eps = 1e-6;
        for kind in [RecurrentKind::RnnTanh, RecurrentKind::Lstm] {
            let cfg = RecurrentConfig {
                kind,
                input: 2,
                hidden,
                outputs: 2,
                init: RecurrentInit::Uniform,
                forget_bias: None,
            };
            let model = Recurrent::init_with_dtype(
                &cfg,
                &[7, 8],
                &VarMap::new(),
                &Device::Cpu,
                DType::F64,
            )?;
            let xs = sequences((members, batch, steps, cfg.input), DType::F64);
            let records = probed(&model, &xs)?;
            assert_eq!(records.len(), members);
            let per_step = members * batch * hidden;
            for t in 0..steps {
                let mut fd = vec![0f64; per_step];
                for (e, fd) in fd.iter_mut().enumerate() {
                    let bumped = |by: f64| -> Result<f64> {
                        let mut taps = Vec::with_capacity(steps);
                        for s in 0..steps {
                            let mut v = vec![0f64; per_step];
                            if s == t {
                                v[e] = by;
                            }
                            taps.push(Tensor::from_vec(v, (members, batch, hidden), &Device::Cpu)?);
                        }
                        let out = model.forward_traced(&xs, Some(&taps))?.outputs;
                        Ok(loss(&out).to_scalar::<f64>()?)
                    };
                    *fd = (bumped(eps)? - bumped(-eps)?) / (2.0 * eps);
                }
                for (m, record) in records.iter().enumerate() {
                    let (mean_abs, l2) =
                        magnitudes(&fd[m * batch * hidden..(m + 1) * batch * hidden]);
                    let step = &record.steps[t];
                    assert_eq!(step.t, t + 1);
                    let close =
                        |ours: f64, theirs: f64| (ours - theirs).abs() <= 1e-9 + 1e-7 * theirs;
                    assert!(
                        close(step.delta_l2, l2),
                        "{kind} member {m} t {}: {} vs {l2}",
                        t + 1,
                        step.delta_l2
                    );
                    assert!(
                        close(step.delta_mean_abs, mean_abs),
                        "{kind} member {m} t {}",
                        t + 1
                    );
                    assert!(l2 > 0.0, "{kind}: no error reaches h_{}", t + 1);
                }
            }
            for record in &records {
                let norms: Vec<f64> = record.steps.iter().map(|s| s.delta_l2).collect();
                assert_eq!(record.delta_ratio, norms[steps - 1] / norms[0]);
                let factor = (norms[0] / norms[steps - 1]).powf(1.0 / (steps - 1) as f64);
                assert!((record.step_factor - factor).abs() <= 1e-15 * factor);
                assert_eq!(record.recurrent.blocks.len(), kind.gates());
                assert_eq!(record.gates.len(), if kind.is_vanilla() { 0 } else { 3 });
                assert_eq!(
                    record.steps.iter().all(|s| s.carry_gate_mean.is_some()),
                    !kind.is_vanilla()
                );
            }
        }
        Ok(())
    }

    /// A linear recurrence: a ReLU RNN whose pre-activations are all positive (positive
    /// inputs and input weights, zero biases, W_h = 0.5 I), read out from h_T. Then
    /// dC/dh_(t-1) = dC/dh_t W_h^T = dC/dh_t / 2, exactly (powers of 2): the error halves
    /// each step back, the ratio is 2^(T-1), the per-step factor 1/2, and W_h's spectral
    /// radius and largest singular value are 1/2.
    #[test]
    fn an_error_that_halves_each_step_back() -> Result<()> {
        let (members, batch, steps, input, hidden) = (2, 3, 6, 2, 4);
        let dev = Device::Cpu;
        let cfg = RecurrentConfig {
            kind: RecurrentKind::RnnRelu,
            input,
            hidden,
            outputs: 1,
            init: RecurrentInit::Uniform,
            forget_bias: None,
        };
        let identity = Tensor::eye(hidden, DType::F32, &dev)?;
        let w_h = (identity.unsqueeze(0)?.repeat((members, 1, 1))? * 0.5)?;
        let params = [
            (
                RecurrentConfig::INPUT_WEIGHT,
                Tensor::full(0.25f32, (members, input, hidden), &dev)?,
            ),
            (RecurrentConfig::RECURRENT_WEIGHT, w_h),
            (
                RecurrentConfig::INPUT_BIAS,
                Tensor::zeros((members, 1, hidden), DType::F32, &dev)?,
            ),
            (
                RecurrentConfig::RECURRENT_BIAS,
                Tensor::zeros((members, 1, hidden), DType::F32, &dev)?,
            ),
            (
                RecurrentConfig::READOUT_WEIGHT,
                Tensor::new(&[0.5f32, -1.0, 2.0, 0.75], &dev)?
                    .reshape((1, hidden, 1))?
                    .repeat((members, 1, 1))?,
            ),
            (
                RecurrentConfig::READOUT_BIAS,
                Tensor::zeros((members, 1, 1), DType::F32, &dev)?,
            ),
        ];
        // Variables, so that the GradStore holds W_h's gradient.
        let vars: HashMap<String, Tensor> = params
            .into_iter()
            .map(|(name, t)| Ok((name.to_string(), Var::from_tensor(&t)?.as_tensor().clone())))
            .collect::<Result<_>>()?;
        let model = Recurrent::load(
            &cfg,
            members,
            VarBuilder::from_tensors(vars, DType::F32, &dev),
        )?;
        // Inputs in [0.25, 1]: every pre-activation positive, every ReLU passing.
        let xs = sequences((members, batch, steps, input), DType::F32).affine(0.375, 0.625)?;
        let records = probed(&model, &xs)?;
        for record in &records {
            let last = record.steps[steps - 1].delta_l2;
            assert!(last > 0.0);
            for (t, step) in record.steps.iter().enumerate() {
                let want = last * 0.5f64.powi((steps - 1 - t) as i32);
                assert_eq!(step.delta_l2, want, "t {}", t + 1);
                assert_eq!(step.carry_gate_mean, None);
            }
            assert_eq!(record.delta_ratio, 32.0);
            assert!((record.step_factor - 0.5).abs() < 1e-15);
            let block = &record.recurrent.blocks[0];
            assert_eq!(block.gate, "h");
            assert!((block.spectral_radius - 0.5).abs() < 1e-12);
            assert!((block.max_singular - 0.5).abs() < 1e-12);
            assert_eq!(record.recurrent.weight_mean_abs, 0.5 / hidden as f64);
            assert_eq!(record.recurrent.weight_l2, 1.0);
            assert!(record.gates.is_empty());
        }
        // W_h's gradient statistics are those of the GradStore's gradient.
        let taps = model.zero_taps(batch, steps)?;
        let trace = model.forward_traced(&xs, Some(&tensors(&taps)))?;
        let grads = loss(&trace.outputs).backward()?;
        let g = grads
            .get(&model.params().recurrent_weight)
            .expect("W_h is a variable");
        let records = probe_through_time(&model, &trace, &taps, &grads)?;
        // Every ReLU active: f' = 1 everywhere, the theory's attained bound.
        let derivs = vanilla_derivatives(&model, &trace)?;
        assert!(derivs.iter().flatten().flatten().all(|&d| d == 1.0));
        assert_eq!(recurrent_blocks(&model)?[0][0][0], 0.5);
        for (m, record) in records.iter().enumerate() {
            let values: Vec<f64> = g.get(m)?.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
            let n = values.len() as f64;
            let l2 = values.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mean_abs = values.iter().map(|v| v.abs()).sum::<f64>() / n;
            assert!((record.recurrent.grad_l2 - l2).abs() <= 1e-12 * l2 && l2 > 0.0);
            assert!((record.recurrent.grad_mean_abs - mean_abs).abs() <= 1e-12 * mean_abs);
        }
        Ok(())
    }

    #[test]
    fn spectra_of_known_matrices() {
        // A rotation by 0.9 rad times 0.9: eigenvalues 0.9 e^(+-0.9 i), every singular
        // value 0.9.
        let (c, s) = (0.9f64.cos(), 0.9f64.sin());
        let (radius, sigma) = block_spectrum(&[0.9 * c, -0.9 * s, 0.9 * s, 0.9 * c], 2);
        assert!((radius - 0.9).abs() < 1e-14 && (sigma - 0.9).abs() < 1e-14);
        // A diagonal: the largest |entry| for both.
        let (radius, sigma) = block_spectrum(&[0.3, 0.0, 0.0, 0.0, -0.8, 0.0, 0.0, 0.0, 0.1], 3);
        assert!((radius - 0.8).abs() < 1e-14 && (sigma - 0.8).abs() < 1e-14);
        // A non-normal block: eigenvalues 0.5 twice, sigma_max = (sqrt(5) + 2) / 2 above
        // them (the transient growth the radius does not see).
        let (radius, sigma) = block_spectrum(&[0.5, 2.0, 0.0, 0.5], 2);
        assert!((radius - 0.5).abs() < 1e-7, "{radius}");
        assert!((sigma - (5f64.sqrt() + 2.0) / 2.0).abs() < 1e-14, "{sigma}");
        assert!(block_spectrum(&[f64::NAN], 1).0.is_nan());
        assert!(block_spectrum(&[1.0, 2.0], 2).1.is_nan());
    }

    #[test]
    fn saturated_fractions_of_hand_made_gates() {
        // Strictly below 0.05 and strictly above 0.95 count; the edges do not.
        let values = [0.01, 0.04, 0.05, 0.5, 0.95, 0.96, 0.99, 0.3];
        let g = gate_stats("f", &values);
        assert_eq!(g.gate, "f");
        assert_eq!(
            (g.low_frac, g.high_frac, g.saturated_frac),
            (0.25, 0.25, 0.5)
        );
        assert!((g.mean - 3.8 / 8.0).abs() < 1e-15);
        assert!(gate_stats("i", &[]).mean.is_nan());
    }

    /// The gates through the probe: an LSTM whose forget gates are pinned shut or open by
    /// the forget bias (+-20 outweighs any |x W_x + h W_h| of 3 units), and a GRU whose
    /// update gate's mean per step is the trace's.
    #[test]
    fn gate_statistics_through_the_probe() -> Result<()> {
        let (members, batch, steps) = (2, 3, 5);
        for bias in [20.0, -20.0] {
            let cfg = RecurrentConfig {
                kind: RecurrentKind::Lstm,
                input: 2,
                hidden: 3,
                outputs: 2,
                init: RecurrentInit::Uniform,
                forget_bias: Some(bias),
            };
            let model = Recurrent::init(&cfg, &[1, 2], &VarMap::new(), &Device::Cpu)?;
            let xs = sequences((members, batch, steps, cfg.input), DType::F32);
            for record in probed(&model, &xs)? {
                let names: Vec<&str> = record.gates.iter().map(|g| g.gate.as_str()).collect();
                assert_eq!(names, ["i", "f", "o"]);
                let f = &record.gates[1];
                let open = bias > 0.0;
                assert_eq!(
                    (f.high_frac, f.low_frac),
                    if open { (1.0, 0.0) } else { (0.0, 1.0) }
                );
                assert_eq!(f.saturated_frac, 1.0);
                for step in &record.steps {
                    let mean = step.carry_gate_mean.expect("an LSTM's forget gate");
                    assert!(if open { mean > 0.999 } else { mean < 1e-3 }, "{mean}");
                }
                let blocks: Vec<&str> = record
                    .recurrent
                    .blocks
                    .iter()
                    .map(|b| b.gate.as_str())
                    .collect();
                assert_eq!(blocks, ["i", "f", "g", "o"]);
            }
        }
        let cfg = RecurrentConfig {
            kind: RecurrentKind::Gru,
            input: 2,
            hidden: 3,
            outputs: 2,
            init: RecurrentInit::Orthogonal { gain: 1.0 },
            forget_bias: None,
        };
        let model = Recurrent::init(&cfg, &[3, 4], &VarMap::new(), &Device::Cpu)?;
        let xs = sequences((members, batch, steps, cfg.input), DType::F32);
        let taps = model.zero_taps(batch, steps)?;
        let trace = model.forward_traced(&xs, Some(&tensors(&taps)))?;
        let grads = loss(&trace.outputs).backward()?;
        let records = probe_through_time(&model, &trace, &taps, &grads)?;
        for (m, record) in records.iter().enumerate() {
            let names: Vec<&str> = record.gates.iter().map(|g| g.gate.as_str()).collect();
            assert_eq!(names, ["r", "z"]);
            for (t, step) in record.steps.iter().enumerate() {
                let Gates::Gru { update, .. } = &trace.gates[t] else {
                    panic!("a GRU's gates");
                };
                let z: Vec<f64> = update
                    .get(m)?
                    .flatten_all()?
                    .to_dtype(DType::F64)?
                    .to_vec1()?;
                assert_eq!(step.carry_gate_mean, Some(mean(&z)));
            }
            // Orthogonal blocks: every eigenvalue and singular value 1 (to f32's precision).
            for block in &record.recurrent.blocks {
                assert!((block.spectral_radius - 1.0).abs() < 1e-5, "{block:?}");
                assert!((block.max_singular - 1.0).abs() < 1e-5, "{block:?}");
            }
        }
        Ok(())
    }

    /// Gradients of a pass that bypassed the taps, or of another model's pass (here the
    /// same weights copied, so that the taps have their gradients and this model's W_h
    /// none), are refused with what is missing named; so are taps that do not fit the
    /// trace.
    #[test]
    fn refuses_what_is_missing() -> Result<()> {
        let cfg = RecurrentConfig {
            kind: RecurrentKind::RnnTanh,
            input: 2,
            hidden: 3,
            outputs: 1,
            init: RecurrentInit::Uniform,
            forget_bias: None,
        };
        let varmap = VarMap::new();
        let model = Recurrent::init(&cfg, &[5], &varmap, &Device::Cpu)?;
        let xs = sequences((1, 2, 3, 2), DType::F32);
        let taps = model.zero_taps(2, 3)?;
        let trace = model.forward_traced(&xs, None)?;
        let grads = loss(&trace.outputs).backward()?;
        let err = probe_through_time(&model, &trace, &taps, &grads).unwrap_err();
        assert!(err.to_string().contains("tap of time step 1"), "{err}");
        let err = probe_through_time(&model, &trace, &taps[..2], &grads).unwrap_err();
        assert!(err.to_string().contains("2 taps for a trace of 3"), "{err}");
        // The same weights copied and detached (a copy alone passes its gradient back to
        // the original): another model, whose pass leaves this one's W_h out.
        let plain: HashMap<String, Tensor> = varmap
            .data()
            .lock()
            .expect("no other user")
            .iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?.detach())))
            .collect::<Result<_>>()?;
        let copy = Recurrent::load(
            &cfg,
            1,
            VarBuilder::from_tensors(plain, DType::F32, &Device::Cpu),
        )?;
        let trace = copy.forward_traced(&xs, Some(&tensors(&taps)))?;
        assert_eq!(
            trace.outputs.to_vec3::<f32>()?,
            model.forward(&xs)?.to_vec3::<f32>()?
        );
        let grads = loss(&trace.outputs).backward()?;
        let err = probe_through_time(&model, &trace, &taps, &grads).unwrap_err();
        assert!(err.to_string().contains("recurrent weight W_h"), "{err}");
        Ok(())
    }

    /// f'(a_t) read back from h_t is the derivative at the pre-activation recomputed from
    /// the parameters, member by member and step by step; W_h's blocks are its column
    /// blocks; a gated cell has no f'.
    #[test]
    fn derivatives_and_blocks_for_the_theory() -> Result<()> {
        let (members, batch, steps) = (2, 2, 3);
        let cfg = RecurrentConfig {
            kind: RecurrentKind::RnnTanh,
            input: 2,
            hidden: 3,
            outputs: 1,
            init: RecurrentInit::Uniform,
            forget_bias: None,
        };
        let model =
            Recurrent::init_with_dtype(&cfg, &[9, 10], &VarMap::new(), &Device::Cpu, DType::F64)?;
        let xs = sequences((members, batch, steps, cfg.input), DType::F64);
        let trace = model.forward_traced(&xs, None)?;
        let derivs = vanilla_derivatives(&model, &trace)?;
        let p = model.params();
        let mut h = model.zero_state(batch)?.h;
        // want[t - 1][member]: 1 - tanh(a_t)^2 from the recomputed pre-activation.
        let mut want = Vec::with_capacity(steps);
        for t in 0..steps {
            let x = xs.narrow(2, t, 1)?.squeeze(2)?;
            let a = x
                .matmul(&p.input_weight)?
                .broadcast_add(&p.input_bias)?
                .add(
                    &h.matmul(&p.recurrent_weight)?
                        .broadcast_add(&p.recurrent_bias)?,
                )?;
            want.push(member_values(
                &a.tanh()?.sqr()?.affine(-1.0, 1.0)?,
                members,
            )?);
            h = a.tanh()?;
        }
        for (m, ours) in derivs.iter().enumerate() {
            assert_eq!(ours.len(), steps);
            for (t, ours) in ours.iter().enumerate() {
                assert_eq!(ours.len(), batch * cfg.hidden);
                for (d, w) in ours.iter().zip(&want[t][m]) {
                    assert!((d - w).abs() < 1e-14, "member {m} t {}", t + 1);
                }
            }
        }
        let lstm = Recurrent::init(
            &RecurrentConfig {
                kind: RecurrentKind::Lstm,
                ..cfg
            },
            &[9, 10],
            &VarMap::new(),
            &Device::Cpu,
        )?;
        let blocks = recurrent_blocks(&lstm)?;
        for (m, gates) in blocks.iter().enumerate() {
            assert_eq!(gates.len(), 4);
            for (j, block) in gates.iter().enumerate() {
                let want: Vec<f64> = lstm
                    .params()
                    .recurrent_weight
                    .get(m)?
                    .narrow(1, j * 3, 3)?
                    .flatten_all()?
                    .to_dtype(DType::F64)?
                    .to_vec1()?;
                assert_eq!(block, &want, "member {m} gate {j}");
            }
        }
        let trace = lstm.forward_traced(&xs.to_dtype(DType::F32)?, None)?;
        let err = vanilla_derivatives(&lstm, &trace).unwrap_err();
        assert!(err.to_string().contains("no vanilla RNN"), "{err}");
        Ok(())
    }

    #[test]
    fn time_jacobians_agree_with_the_theory_crate() -> Result<()> {
        let (members, batch, steps) = (2, 3, 5);
        let cfg = RecurrentConfig {
            kind: RecurrentKind::RnnTanh,
            input: 2,
            hidden: 4,
            outputs: 1,
            init: RecurrentInit::Orthogonal { gain: 1.3 },
            forget_bias: None,
        };
        let model =
            Recurrent::init_with_dtype(&cfg, &[4, 5], &VarMap::new(), &Device::Cpu, DType::F64)?;
        let xs = sequences((members, batch, steps, cfg.input), DType::F64);
        let trace = model.forward_traced(&xs, None)?;
        let ours = time_jacobians(&model, &trace, 2)?;
        let derivs = vanilla_derivatives(&model, &trace)?;
        let blocks = recurrent_blocks(&model)?;
        for m in 0..members {
            // The theory crate's cyclic Jacobi on the first two examples.
            let firsts: Vec<Vec<f64>> = derivs[m].iter().map(|d| d[..2 * 4].to_vec()).collect();
            let want = vgrad_theory::recurrent::jacobian_products(&blocks[m][0], 4, &firsts, 1.0)
                .expect("finite");
            let got = ours[m].as_ref().expect("a vanilla RNN has Jacobians");
            assert_eq!(got.examples, 2);
            assert!(
                (got.norm_per_step - want.mean_per_step).abs() < 1e-10,
                "member {m}"
            );
            // Orthogonal blocks times 1.3: every singular value is 1.3.
            assert!(
                (got.bound_per_step - 1.3).abs() < 1e-6,
                "{}",
                got.bound_per_step
            );
            assert!(got.norm_per_step <= got.bound_per_step);
        }
        let gru = Recurrent::init(
            &RecurrentConfig {
                kind: RecurrentKind::Gru,
                init: RecurrentInit::Uniform,
                ..cfg
            },
            &[4],
            &VarMap::new(),
            &Device::Cpu,
        )?;
        let trace = gru.forward_traced(&xs.narrow(0, 0, 1)?.to_dtype(DType::F32)?, None)?;
        assert_eq!(time_jacobians(&gru, &trace, 2)?, vec![None]);
        Ok(())
    }
}
