//! The recurrent models against a hand-unrolled reference in f64 (plain loops over
//! `Vec<f64>`, no candle), central finite differences of that reference, and each other.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use super::{Gates, Recurrent, RecurrentConfig, RecurrentInit, RecurrentKind, RecurrentTrace};
use crate::Result;

/// Deterministic inputs in [-1, 1], `[members, batch, steps, features]`.
pub(super) fn sequences(
    members: usize,
    batch: usize,
    steps: usize,
    features: usize,
    dtype: DType,
) -> Result<Tensor> {
    let n = members * batch * steps * features;
    Ok(Tensor::arange(0f64, n as f64, &Device::Cpu)?
        .affine(0.731, 0.25)?
        .sin()?
        .reshape((members, batch, steps, features))?
        .to_dtype(dtype)?)
}

/// A tensor's values as bit patterns (f32 or f64), for exact comparisons.
pub(super) fn bits(t: &Tensor) -> Result<Vec<u64>> {
    let flat = t.flatten_all()?;
    Ok(match t.dtype() {
        DType::F32 => flat
            .to_vec1::<f32>()?
            .into_iter()
            .map(|v| u64::from(v.to_bits()))
            .collect(),
        _ => flat
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?
            .into_iter()
            .map(f64::to_bits)
            .collect(),
    })
}

/// Member 0's cell parameters under PyTorch's (and candle-nn's) names and shapes, for
/// candle-nn's cells: weights `[G * hidden, features]`, biases `[G * hidden]`.
///
/// `contiguous`: copies in PyTorch's memory layout, in a `VarMap` (as a checkpoint would
/// hold them). Otherwise transposed views of our weights: candle-nn multiplies by
/// `weight.t()`, which is then our contiguous matrix again. candle's CPU matmul rounds
/// differently for a transposed right-hand side than for a contiguous one (a few ulps), so
/// only the views make the products, and thus the cells, comparable bit for bit.
pub(super) fn pytorch_params(model: &Recurrent, contiguous: bool) -> Result<VarBuilder<'static>> {
    let p = model.params();
    let weight = |t: &Tensor| -> Result<Tensor> {
        let t = t.get(0)?.t()?;
        Ok(if contiguous { t.contiguous()? } else { t })
    };
    let bias = |t: &Tensor| -> Result<Tensor> { Ok(t.get(0)?.flatten_all()?) };
    let entries = [
        ("weight_ih_l0", weight(&p.input_weight)?),
        ("weight_hh_l0", weight(&p.recurrent_weight)?),
        ("bias_ih_l0", bias(&p.input_bias)?),
        ("bias_hh_l0", bias(&p.recurrent_bias)?),
    ];
    let (dtype, device) = (p.input_weight.dtype(), p.input_weight.device().clone());
    if !contiguous {
        let tensors: HashMap<String, Tensor> = entries
            .into_iter()
            .map(|(name, t)| (name.to_string(), t))
            .collect();
        return Ok(VarBuilder::from_tensors(tensors, dtype, &device));
    }
    let varmap = VarMap::new();
    {
        let mut vars = varmap
            .data()
            .lock()
            .map_err(|_| crate::ModelError::Config("the VarMap lock is poisoned".into()))?;
        for (name, t) in entries {
            vars.insert(name.to_string(), Var::from_tensor(&t)?);
        }
    }
    Ok(VarBuilder::from_varmap(&varmap, dtype, &device))
}

/// The largest |a - b| over two tensors' values.
pub(super) fn max_difference(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (a, b) = (values(a)?, values(b)?);
    assert_eq!(a.len(), b.len());
    Ok(a.iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs())))
}

fn config(kind: RecurrentKind, init: RecurrentInit) -> RecurrentConfig {
    RecurrentConfig {
        kind,
        input: 2,
        hidden: 4,
        outputs: 3,
        init,
        forget_bias: None,
    }
}

fn values(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// One member's parameters in f64, row-major, in the order of
/// [`RecurrentConfig::param_names`].
#[derive(Debug, Clone)]
struct Member {
    kind: RecurrentKind,
    input: usize,
    hidden: usize,
    outputs: usize,
    params: [Vec<f64>; 6],
}

impl Member {
    fn of(cfg: &RecurrentConfig, model: &Recurrent, k: usize) -> Result<Self> {
        let p = model.params();
        let r = model.readout();
        let get = |t: &Tensor| values(&t.get(k)?);
        Ok(Self {
            kind: cfg.kind,
            input: cfg.input,
            hidden: cfg.hidden,
            outputs: cfg.outputs,
            params: [
                get(&p.input_weight)?,
                get(&p.recurrent_weight)?,
                get(&p.input_bias)?,
                get(&p.recurrent_bias)?,
                get(r.weight())?,
                get(r.bias())?,
            ],
        })
    }
}

/// The reference's trace of one member: per step `[batch * hidden]` row-major.
struct Unrolled {
    hidden: Vec<Vec<f64>>,
    cells: Vec<Vec<f64>>,
    forget: Vec<Vec<f64>>,
    /// `[batch * outputs]`.
    outputs: Vec<f64>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The equations of PyTorch's `nn.RNN`, `nn.LSTM` and `nn.GRU` documentation, unrolled
/// over `xs` (one member's `[batch, steps, features]`, row-major), with `bump = (t, b,
/// j, delta)` added to h_t[b, j] where given.
fn unroll(
    m: &Member,
    xs: &[f64],
    batch: usize,
    steps: usize,
    bump: Option<(usize, usize, usize, f64)>,
) -> Unrolled {
    let (f, n, o) = (m.input, m.hidden, m.outputs);
    let width = m.kind.gates() * n;
    let [w_x, w_h, b_x, b_h, w_out, b_out] = &m.params;
    let mut out = Unrolled {
        hidden: vec![vec![0.0; batch * n]; steps],
        cells: vec![vec![0.0; batch * n]; steps],
        forget: vec![vec![0.0; batch * n]; steps],
        outputs: vec![0.0; batch * o],
    };
    for b in 0..batch {
        let mut h = vec![0.0; n];
        let mut c = vec![0.0; n];
        for t in 0..steps {
            let x = &xs[(b * steps + t) * f..(b * steps + t + 1) * f];
            let from_x: Vec<f64> = (0..width)
                .map(|j| b_x[j] + (0..f).map(|i| x[i] * w_x[i * width + j]).sum::<f64>())
                .collect();
            let from_h: Vec<f64> = (0..width)
                .map(|j| b_h[j] + (0..n).map(|i| h[i] * w_h[i * width + j]).sum::<f64>())
                .collect();
            let a = |j: usize| from_x[j] + from_h[j];
            let mut next = vec![0.0; n];
            for j in 0..n {
                next[j] = match m.kind {
                    RecurrentKind::RnnTanh => a(j).tanh(),
                    RecurrentKind::RnnRelu => a(j).max(0.0),
                    RecurrentKind::Lstm => {
                        let (i_, f_) = (sigmoid(a(j)), sigmoid(a(n + j)));
                        let (g_, o_) = (a(2 * n + j).tanh(), sigmoid(a(3 * n + j)));
                        c[j] = f_ * c[j] + i_ * g_;
                        out.forget[t][b * n + j] = f_;
                        out.cells[t][b * n + j] = c[j];
                        o_ * c[j].tanh()
                    }
                    RecurrentKind::Gru => {
                        let r = sigmoid(a(j));
                        let z = sigmoid(a(n + j));
                        let cand = (from_x[2 * n + j] + r * from_h[2 * n + j]).tanh();
                        (1.0 - z) * cand + z * h[j]
                    }
                };
            }
            if let Some((bt, bb, bj, delta)) = bump
                && bt == t
                && bb == b
            {
                next[bj] += delta;
            }
            h = next;
            out.hidden[t][b * n..(b + 1) * n].copy_from_slice(&h);
        }
        for k in 0..o {
            out.outputs[b * o + k] =
                b_out[k] + (0..n).map(|j| h[j] * w_out[j * o + k]).sum::<f64>();
        }
    }
    out
}

fn assert_close(ours: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(ours.len(), want.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol,
            "{what}[{i}]: {a} against {b} (tolerance {tol})"
        );
    }
}

/// Every kind with the inits that apply to it, and the LSTM with a forget bias too.
fn cases() -> Vec<RecurrentConfig> {
    let mut cases = Vec::new();
    for kind in RecurrentKind::ALL {
        cases.push(config(kind, RecurrentInit::Uniform));
        cases.push(config(kind, RecurrentInit::Orthogonal { gain: 1.2 }));
        if kind.is_vanilla() {
            cases.push(config(kind, RecurrentInit::Identity { gain: 1.0 }));
        }
    }
    cases.push(RecurrentConfig {
        forget_bias: Some(1.0),
        ..config(RecurrentKind::Lstm, RecurrentInit::Uniform)
    });
    cases
}

/// Values in f64 to 1e-12 (the same equations, summed in another order), and the f32
/// model (the same f32 draws) to 1e-5: a few f32 roundings over 5 steps of O(1) values.
#[test]
fn every_cell_matches_the_hand_unrolled_reference() -> Result<()> {
    let (batch, steps) = (3, 5);
    for cfg in cases() {
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            let model =
                Recurrent::init_with_dtype(&cfg, &[3, 4], &VarMap::new(), &Device::Cpu, dtype)?;
            let xs = sequences(2, batch, steps, cfg.input, dtype)?;
            let trace = model.forward_traced(&xs, None)?;
            let what = format!("{} {} {dtype:?}", cfg.kind, cfg.init);
            for k in 0..2 {
                let want = unroll(
                    &Member::of(&cfg, &model, k)?,
                    &values(&xs.get(k)?)?,
                    batch,
                    steps,
                    None,
                );
                assert_close(&values(&trace.outputs.get(k)?)?, &want.outputs, tol, &what);
                for (ours, want) in trace.hidden.iter().zip(&want.hidden) {
                    assert_close(&values(&ours.get(k)?)?, want, tol, &what);
                }
                if cfg.kind == RecurrentKind::Lstm {
                    let cells = trace.cells.iter().zip(&want.cells);
                    let forget = trace.forget_gates().into_iter().zip(&want.forget);
                    for (ours, want) in cells.chain(forget) {
                        assert_close(&values(&ours.get(k)?)?, want, tol, &what);
                    }
                    assert_eq!(trace.forget_gates().len(), steps);
                }
            }
            let per_step = match cfg.kind {
                RecurrentKind::Lstm => (steps, steps),
                RecurrentKind::Gru => (0, steps),
                _ => (0, 0),
            };
            assert_eq!((trace.cells.len(), trace.gates.len()), per_step, "{what}");
            assert_eq!(trace.steps(), steps);
        }
    }
    Ok(())
}

/// The loss sum(coefficients * outputs), with coefficients that differ per member,
/// example and output, so that no gradient cancels by symmetry.
fn coefficients(members: usize, batch: usize, outputs: usize) -> Result<Tensor> {
    let n = members * batch * outputs;
    Ok(Tensor::arange(0f64, n as f64, &Device::Cpu)?
        .affine(1.3, 0.4)?
        .cos()?
        .reshape((members, batch, outputs))?)
}

/// candle's gradients (f64) of a scalar loss of the outputs, with respect to every
/// parameter of both members and to every h_t through the taps, against central finite
/// differences (step 1e-6) of the f64 reference: |ours - theirs| <= 1e-8 + 1e-6 |theirs|,
/// where the differences' own error is about 1e-10.
#[test]
fn gradients_match_central_differences() -> Result<()> {
    let (members, batch, steps) = (2, 2, 4);
    let eps = 1e-6;
    let mut relu_reaches_first_step = false;
    for cfg in cases() {
        let cfg = RecurrentConfig {
            hidden: 3,
            outputs: 2,
            ..cfg
        };
        let varmap = VarMap::new();
        let model = Recurrent::init_with_dtype(&cfg, &[7, 8], &varmap, &Device::Cpu, DType::F64)?;
        let xs = sequences(members, batch, steps, cfg.input, DType::F64)?;
        let taps = model.zero_taps(batch, steps)?;
        let tap_tensors: Vec<Tensor> = taps.iter().map(|v| v.as_tensor().clone()).collect();
        let trace = model.forward_traced(&xs, Some(&tap_tensors))?;
        let coef = coefficients(members, batch, cfg.outputs)?;
        let grads: GradStore = trace.outputs.mul(&coef)?.sum_all()?.backward()?;
        let what = format!("{} {}", cfg.kind, cfg.init);
        let check = |ours: f64, theirs: f64, at: &str| {
            assert!(
                (ours - theirs).abs() <= 1e-8 + 1e-6 * theirs.abs(),
                "{what} {at}: candle {ours}, finite differences {theirs}"
            );
        };
        let vars = varmap.data().lock().expect("no other user");
        for k in 0..members {
            let member = Member::of(&cfg, &model, k)?;
            let x = values(&xs.get(k)?)?;
            let c = values(&coef.get(k)?)?;
            let loss = |m: &Member, bump| -> f64 {
                let y = unroll(m, &x, batch, steps, bump).outputs;
                y.iter().zip(&c).map(|(y, c)| y * c).sum()
            };
            for (p, name) in RecurrentConfig::param_names().into_iter().enumerate() {
                let var = &vars[name];
                let grad = grads
                    .get(var.as_tensor())
                    .expect("every parameter has a gradient");
                let ours = values(&grad.get(k)?)?;
                for (e, &g) in ours.iter().enumerate() {
                    let (mut up, mut down) = (member.clone(), member.clone());
                    up.params[p][e] += eps;
                    down.params[p][e] -= eps;
                    let fd = (loss(&up, None) - loss(&down, None)) / (2.0 * eps);
                    check(g, fd, &format!("d/d{name}[{k}][{e}]"));
                }
            }
            for (t, tap) in taps.iter().enumerate() {
                let grad = grads
                    .get(tap.as_tensor())
                    .expect("every tap has a gradient");
                let ours = values(&grad.get(k)?)?;
                for (e, &g) in ours.iter().enumerate() {
                    let (b, j) = (e / cfg.hidden, e % cfg.hidden);
                    let fd = (loss(&member, Some((t, b, j, eps)))
                        - loss(&member, Some((t, b, j, -eps))))
                        / (2.0 * eps);
                    check(g, fd, &format!("dC/dh_{}[{k}][{b}][{j}]", t + 1));
                }
                // The error reaches every step; a ReLU network's may stop where every
                // unit of the step after is off, and the differences agree that it does.
                let reaches = ours.iter().any(|&g| g != 0.0);
                if cfg.kind != RecurrentKind::RnnRelu || t + 1 == steps {
                    assert!(reaches, "{what}: dC/dh_{} is zero", t + 1);
                } else if t == 0 {
                    relu_reaches_first_step |= reaches;
                }
            }
        }
    }
    assert!(
        relu_reaches_first_step,
        "no ReLU network passed an error to h_1"
    );
    Ok(())
}

/// Every tensor of a trace, in a fixed order.
fn all_tensors(trace: &RecurrentTrace) -> Vec<&Tensor> {
    let mut all = vec![&trace.outputs];
    all.extend(&trace.hidden);
    all.extend(&trace.cells);
    for gates in &trace.gates {
        match gates {
            Gates::Lstm {
                input,
                forget,
                cell,
                output,
            } => all.extend([input, forget, cell, output]),
            Gates::Gru {
                reset,
                update,
                candidate,
            } => all.extend([reset, update, candidate]),
        }
    }
    all
}

#[test]
fn ensemble_members_equal_solo_runs_bit_for_bit() -> Result<()> {
    let (batch, steps) = (3, 4);
    for cfg in cases() {
        let both = Recurrent::init(&cfg, &[5, 9], &VarMap::new(), &Device::Cpu)?;
        let alone = Recurrent::init(&cfg, &[9], &VarMap::new(), &Device::Cpu)?;
        let xs = sequences(2, batch, steps, cfg.input, DType::F32)?;
        let ours = both.forward_traced(&xs, None)?;
        let solo = alone.forward_traced(&xs.narrow(0, 1, 1)?, None)?;
        let (ours, solo) = (all_tensors(&ours), all_tensors(&solo));
        assert_eq!(ours.len(), solo.len());
        for (i, (a, b)) in ours.iter().zip(&solo).enumerate() {
            assert_eq!(
                bits(&a.narrow(0, 1, 1)?)?,
                bits(b)?,
                "{} {} tensor {i}",
                cfg.kind,
                cfg.init
            );
        }
        // The evaluation pass is the traced pass's outputs.
        assert_eq!(bits(&both.forward(&xs)?)?, bits(ours[0])?);
    }
    Ok(())
}

#[test]
fn zero_taps_change_no_value() -> Result<()> {
    let (batch, steps) = (2, 3);
    for kind in RecurrentKind::ALL {
        let cfg = config(kind, RecurrentInit::Uniform);
        let model = Recurrent::init(&cfg, &[1, 2], &VarMap::new(), &Device::Cpu)?;
        let xs = sequences(2, batch, steps, cfg.input, DType::F32)?;
        let taps: Vec<Tensor> = model
            .zero_taps(batch, steps)?
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect();
        let tapped = model.forward_traced(&xs, Some(&taps))?;
        let plain = model.forward_traced(&xs, None)?;
        for (a, b) in all_tensors(&tapped).iter().zip(all_tensors(&plain)) {
            assert_eq!(bits(a)?, bits(b)?, "{kind}");
        }
        assert_eq!(tapped.hidden[0].dims3()?, (2, batch, cfg.hidden));
        assert_eq!(tapped.outputs.dims3()?, (2, batch, cfg.outputs));
    }
    Ok(())
}

/// One member's parameter `name` as f64 values.
fn member_param(varmap: &VarMap, name: &str, k: usize) -> Result<Vec<f64>> {
    let vars = varmap.data().lock().expect("no other user");
    values(&vars[name].as_tensor().get(k)?)
}

#[test]
fn orthogonal_blocks_are_orthogonal_and_the_other_draws_are_the_uniform_inits() -> Result<()> {
    let hidden = 16;
    for kind in RecurrentKind::ALL {
        for gain in [1.0, 0.5] {
            let cfg = RecurrentConfig {
                hidden,
                ..config(kind, RecurrentInit::Orthogonal { gain })
            };
            let (ortho, uniform) = (VarMap::new(), VarMap::new());
            Recurrent::init(&cfg, &[3, 6], &ortho, &Device::Cpu)?;
            let plain = RecurrentConfig {
                init: RecurrentInit::Uniform,
                ..cfg.clone()
            };
            Recurrent::init(&plain, &[3, 6], &uniform, &Device::Cpu)?;
            let width = cfg.gate_width();
            for k in 0..2 {
                let w = member_param(&ortho, RecurrentConfig::RECURRENT_WEIGHT, k)?;
                for gate in 0..kind.gates() {
                    let at = |r: usize, c: usize| w[r * width + gate * hidden + c];
                    for a in 0..hidden {
                        for b in 0..hidden {
                            let dot: f64 = (0..hidden).map(|r| at(r, a) * at(r, b)).sum();
                            let want = if a == b { gain * gain } else { 0.0 };
                            assert!(
                                (dot - want).abs() < 1e-5,
                                "{kind} gain {gain} member {k} gate {gate}: (W^T W)[{a},{b}] = {dot}"
                            );
                        }
                    }
                }
                if kind.gates() > 1 {
                    // Each gate its own draw.
                    assert_ne!(w[0], w[hidden]);
                }
                for name in RecurrentConfig::param_names() {
                    let same = member_param(&ortho, name, k)? == member_param(&uniform, name, k)?;
                    assert_eq!(
                        same,
                        name != RecurrentConfig::RECURRENT_WEIGHT,
                        "{kind} {name}"
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn the_uniform_init_draws_within_one_over_root_hidden() -> Result<()> {
    let hidden = 16;
    let bound = 1.0 / (hidden as f64).sqrt();
    for kind in RecurrentKind::ALL {
        let cfg = RecurrentConfig {
            hidden,
            input: 8,
            outputs: 10,
            ..config(kind, RecurrentInit::Uniform)
        };
        let varmap = VarMap::new();
        Recurrent::init(&cfg, &[2], &varmap, &Device::Cpu)?;
        for name in RecurrentConfig::param_names() {
            let v = member_param(&varmap, name, 0)?;
            let max = v.iter().fold(0f64, |m, x| m.max(x.abs()));
            // U(-b, b): of n >= 10 draws the largest |v| falls below 0.5 b with
            // probability 0.5^n; all of them below b.
            assert!(
                max <= bound && max > 0.5 * bound,
                "{kind} {name}: max |v| {max}"
            );
        }
    }
    Ok(())
}

#[test]
fn the_irnn_starts_at_the_identity_with_zero_biases() -> Result<()> {
    let hidden = 8;
    for kind in [RecurrentKind::RnnRelu, RecurrentKind::RnnTanh] {
        let cfg = RecurrentConfig {
            hidden,
            input: 50,
            ..config(kind, RecurrentInit::Identity { gain: 1.0 })
        };
        let varmap = VarMap::new();
        Recurrent::init(&cfg, &[4], &varmap, &Device::Cpu)?;
        let w = member_param(&varmap, RecurrentConfig::RECURRENT_WEIGHT, 0)?;
        for r in 0..hidden {
            for c in 0..hidden {
                assert_eq!(w[r * hidden + c], if r == c { 1.0 } else { 0.0 }, "{kind}");
            }
        }
        for name in [RecurrentConfig::INPUT_BIAS, RecurrentConfig::RECURRENT_BIAS] {
            assert!(member_param(&varmap, name, 0)?.iter().all(|&b| b == 0.0));
        }
        // 400 draws of N(0, 0.001^2): their rms within 10% of 0.001 (its standard error
        // is 3.5%).
        let x = member_param(&varmap, RecurrentConfig::INPUT_WEIGHT, 0)?;
        let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt();
        assert!((rms / super::IRNN_INPUT_STD - 1.0).abs() < 0.1, "rms {rms}");
    }
    let scaled = RecurrentConfig {
        hidden,
        ..config(
            RecurrentKind::RnnRelu,
            RecurrentInit::Identity { gain: 0.01 },
        )
    };
    let varmap = VarMap::new();
    Recurrent::init(&scaled, &[4], &varmap, &Device::Cpu)?;
    let w = member_param(&varmap, RecurrentConfig::RECURRENT_WEIGHT, 0)?;
    assert_eq!(w[0], f64::from(0.01f32));
    assert_eq!(w[hidden + 1], f64::from(0.01f32));
    Ok(())
}

#[test]
fn the_forget_bias_sets_the_forget_gates_bias_and_nothing_else() -> Result<()> {
    let hidden = 4;
    let plain = config(RecurrentKind::Lstm, RecurrentInit::Uniform);
    let drawn = VarMap::new();
    Recurrent::init(&plain, &[5], &drawn, &Device::Cpu)?;
    for value in [0.0, 1.0] {
        let cfg = RecurrentConfig {
            forget_bias: Some(value),
            ..plain.clone()
        };
        let set = VarMap::new();
        Recurrent::init(&cfg, &[5], &set, &Device::Cpu)?;
        for name in RecurrentConfig::param_names() {
            let (ours, before) = (member_param(&set, name, 0)?, member_param(&drawn, name, 0)?);
            for (i, (a, b)) in ours.iter().zip(&before).enumerate() {
                let forget = (hidden..2 * hidden).contains(&i);
                let want = match name {
                    RecurrentConfig::INPUT_BIAS if forget => value,
                    RecurrentConfig::RECURRENT_BIAS if forget => 0.0,
                    _ => *b,
                };
                assert_eq!(*a, want, "forget bias {value}: {name}[{i}]");
            }
        }
    }
    Ok(())
}

#[test]
fn rejects_unbuildable_configs_and_inputs() -> Result<()> {
    let dev = Device::Cpu;
    let good = config(RecurrentKind::Gru, RecurrentInit::Uniform);
    let bad = [
        RecurrentConfig {
            hidden: 0,
            ..good.clone()
        },
        RecurrentConfig {
            input: 0,
            ..good.clone()
        },
        RecurrentConfig {
            outputs: 0,
            ..good.clone()
        },
        RecurrentConfig {
            forget_bias: Some(1.0),
            ..good.clone()
        },
        RecurrentConfig {
            forget_bias: Some(f64::NAN),
            ..config(RecurrentKind::Lstm, RecurrentInit::Uniform)
        },
        config(RecurrentKind::Lstm, RecurrentInit::Identity { gain: 1.0 }),
        config(
            RecurrentKind::RnnTanh,
            RecurrentInit::Orthogonal { gain: 0.0 },
        ),
        config(
            RecurrentKind::RnnRelu,
            RecurrentInit::Identity {
                gain: f64::INFINITY,
            },
        ),
    ];
    for cfg in bad {
        assert!(
            Recurrent::init(&cfg, &[1], &VarMap::new(), &dev).is_err(),
            "{cfg:?}"
        );
    }
    assert!(Recurrent::init(&good, &[], &VarMap::new(), &dev).is_err());
    let model = Recurrent::init(&good, &[1, 2], &VarMap::new(), &dev)?;
    let wrong_members = sequences(1, 2, 3, good.input, DType::F32)?;
    let wrong_features = sequences(2, 2, 3, good.input + 1, DType::F32)?;
    let no_steps = Tensor::zeros((2, 2, 0, good.input), DType::F32, &dev)?;
    for xs in [wrong_members, wrong_features, no_steps] {
        assert!(model.forward_traced(&xs, None).is_err(), "{:?}", xs.dims());
    }
    let xs = sequences(2, 2, 3, good.input, DType::F32)?;
    let taps: Vec<Tensor> = model
        .zero_taps(2, 2)?
        .iter()
        .map(|v| v.as_tensor().clone())
        .collect();
    assert!(
        model.forward_traced(&xs, Some(&taps)).is_err(),
        "2 taps for 3 steps"
    );
    Ok(())
}

#[test]
fn kinds_and_inits_read_what_they_write() -> Result<()> {
    for kind in RecurrentKind::ALL {
        assert_eq!(kind.to_string().parse::<RecurrentKind>()?, kind);
    }
    assert_eq!("rnn".parse::<RecurrentKind>()?, RecurrentKind::RnnTanh);
    assert!("transformer".parse::<RecurrentKind>().is_err());
    for init in [
        RecurrentInit::Uniform,
        RecurrentInit::Orthogonal { gain: 1.5 },
        RecurrentInit::Identity { gain: 0.01 },
    ] {
        assert_eq!(init.to_string().parse::<RecurrentInit>()?, init);
    }
    assert_eq!(
        "orthogonal".parse::<RecurrentInit>()?,
        RecurrentInit::Orthogonal { gain: 1.0 }
    );
    assert_eq!(
        "identity".parse::<RecurrentInit>()?,
        RecurrentInit::Identity { gain: 1.0 }
    );
    for bad in ["uniform:2", "orthogonal:-1", "identity:x", "he"] {
        assert!(bad.parse::<RecurrentInit>().is_err(), "{bad}");
    }
    Ok(())
}

/// The IRNN on inputs that start blank: its pre-activations there are exactly 0 (zero
/// biases, h_0 = 0), where the ReLU's derivative is a convention. vgrad's kernels take
/// PyTorch's, 0, so no error crosses those steps; candle's `relu` takes 1. A probe of the
/// gradient through time on row-sequential MNIST (blank top rows) sees the difference.
#[test]
fn the_relus_derivative_at_zero_follows_the_kernels() -> Result<()> {
    let cfg = RecurrentConfig {
        hidden: 3,
        ..config(
            RecurrentKind::RnnRelu,
            RecurrentInit::Identity { gain: 1.0 },
        )
    };
    let model = Recurrent::init(&cfg, &[2], &VarMap::new(), &Device::Cpu)?;
    let (batch, steps) = (1, 4);
    let blank = Tensor::zeros((1, batch, 2, cfg.input), DType::F32, &Device::Cpu)?;
    let xs = Tensor::cat(
        &[&blank, &sequences(1, batch, 2, cfg.input, DType::F32)?],
        2,
    )?;
    for (kernels, first_step_passes) in [
        (crate::Kernels::Fused, false),
        (crate::Kernels::Candle, true),
    ] {
        let model = model.clone().with_kernels(kernels);
        let taps = model.zero_taps(batch, steps)?;
        let tensors: Vec<Tensor> = taps.iter().map(|v| v.as_tensor().clone()).collect();
        let trace = model.forward_traced(&xs, Some(&tensors))?;
        assert!(values(&trace.hidden[1])?.iter().all(|&h| h == 0.0));
        let grads = trace.outputs.sum_all()?.backward()?;
        let error = |t: usize| -> Result<Vec<f64>> {
            values(
                grads
                    .get(taps[t].as_tensor())
                    .expect("every tap has a gradient"),
            )
        };
        assert!(error(2)?.iter().any(|&g| g != 0.0), "{kernels:?}: dC/dh_3");
        let passes = error(0)?.iter().any(|&g| g != 0.0);
        assert_eq!(passes, first_step_passes, "{kernels:?}: dC/dh_1");
    }
    Ok(())
}

/// Driving the cell one step at a time (`[K, B, features]` per step) is the traced
/// pass; an LSTM step without a cell state is an error, not a panic.
#[test]
fn steps_one_at_a_time_are_the_traced_pass() -> Result<()> {
    let (batch, steps) = (2, 3);
    for kind in RecurrentKind::ALL {
        let cfg = config(kind, RecurrentInit::Uniform);
        let model = Recurrent::init(&cfg, &[1, 2], &VarMap::new(), &Device::Cpu)?;
        let xs = sequences(2, batch, steps, cfg.input, DType::F32)?;
        let trace = model.forward_traced(&xs, None)?;
        let mut state = model.zero_state(batch)?;
        for t in 0..steps {
            let x = xs.narrow(2, t, 1)?.squeeze(2)?;
            state = model.step(&x, &state, None)?.state;
            assert_eq!(
                bits(&state.h)?,
                bits(&trace.hidden[t])?,
                "{kind} h_{}",
                t + 1
            );
        }
        let outputs = model.readout().forward(&state.h)?;
        assert_eq!(bits(&outputs)?, bits(&trace.outputs)?, "{kind}");
    }
    let lstm = config(RecurrentKind::Lstm, RecurrentInit::Uniform);
    let model = Recurrent::init(&lstm, &[1], &VarMap::new(), &Device::Cpu)?;
    let mut state = model.zero_state(batch)?;
    state.c = None;
    let x = Tensor::zeros((1, batch, lstm.input), DType::F32, &Device::Cpu)?;
    assert!(model.step(&x, &state, None).is_err());
    Ok(())
}
