//! The probe's per-layer statistics against gradients computed by finite differences, on
//! a tiny ensemble in f64 (the same code path as training, with exact enough arithmetic
//! for central differences), for every activation, and through batch norm, layer norm and
//! skip connections, whose backward passes are candle's autograd of their forward ops;
//! and on convolutional networks, whose patches (im2col) have a backward op of their own.

#![forbid(unsafe_code)]

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::VarMap;
use vgrad_model::{ActivationLayer, IMAGE_SIDE, Kernels, Mlp, MlpConfig, ensemble_cross_entropy};
use vgrad_probe::{DeltaTaps, Moments, probe_step};
use vgrad_record::{Activation, Architecture, BranchScale, Distribution, Init, LayerRecord, Norm};

const K: usize = 2;
/// Examples per member: 5 for an MLP, 2 for a convolutional network, whose every
/// position of every example is a tap entry to perturb.
const B: usize = 5;
const B_CNN: usize = 2;

/// The training loss (the model crate's, as training computes it) through `taps`.
fn loss(model: &Mlp, x: &Tensor, y: &Tensor, taps: &[Tensor]) -> candle_core::Result<Tensor> {
    let trace = model
        .forward_traced(x, Some(taps))
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Ok(ensemble_cross_entropy(&trace.logits, y)?.loss)
}

/// Central difference of the loss in every entry of `target` (which must be read by
/// `eval`), split per member.
fn numeric_gradient(target: &Var, eval: &dyn Fn() -> f64) -> Vec<Vec<f32>> {
    const H: f64 = 1e-6;
    let base = target
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let shape = target.shape().clone();
    let mut grad = vec![0f32; base.len()];
    for i in 0..base.len() {
        let mut v = base.clone();
        let mut at = |delta: f64| {
            v[i] = base[i] + delta;
            target
                .set(&Tensor::from_vec(v.clone(), &shape, &Device::Cpu).unwrap())
                .unwrap();
            eval()
        };
        grad[i] = ((at(H) - at(-H)) / (2.0 * H)) as f32;
    }
    target
        .set(&Tensor::from_vec(base, &shape, &Device::Cpu).unwrap())
        .unwrap();
    grad.chunks(grad.len() / K).map(<[f32]>::to_vec).collect()
}

/// Each member's mean of f'(z) and of f'(z)^2 over the entries of `z` `[K, B, units]`,
/// by central differences of the activation as the model applies it, in f64.
fn mean_derivative(activation: Activation, z: &Tensor) -> (Vec<f64>, Vec<f64>) {
    const H: f64 = 1e-6;
    let layer = ActivationLayer::new(activation).with_kernels(Kernels::Candle);
    let f = |t: Tensor| layer.forward(&t).unwrap();
    let up = f((z + H).unwrap());
    let down = f((z - H).unwrap());
    let d = ((up - down).unwrap() / (2.0 * H)).unwrap();
    let mean = |t: &Tensor| {
        t.flatten_from(1)
            .unwrap()
            .mean(1)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    (mean(&d), mean(&d.sqr().unwrap()))
}

/// n_out * Var(W) of member `m`'s `[in, out]` weight matrix (population variance).
fn sigma_w_sq(weight: &Tensor, m: usize) -> f64 {
    let w = weight.narrow(0, m, 1).unwrap().flatten_all().unwrap();
    let values = w.to_vec1::<f64>().unwrap();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    weight.dim(2).unwrap() as f64 * var
}

fn assert_close(what: &str, probe: f64, numeric: f64) {
    // The probe reports f32 statistics; the differences are exact to ~1e-9.
    let tol = 1e-5 * numeric.abs().max(1e-6);
    assert!(
        (probe - numeric).abs() <= tol,
        "{what}: probe {probe} vs finite difference {numeric}"
    );
}

fn check(activation: Activation, norm: Norm, residual: bool, branch_scale: BranchScale) {
    check_model(Architecture::Mlp, activation, norm, residual, branch_scale);
}

/// [`check`] of a network of `model`'s kind: an MLP of 6 inputs, 4 layers of width 4, or a
/// convolutional network on 28 x 28 images, 4 layers (the stem and a convolution of 2
/// channels at 14 x 14, a stride-2 one of 4 at 7 x 7, the output layer).
fn check_model(
    model: Architecture,
    activation: Activation,
    norm: Norm,
    residual: bool,
    branch_scale: BranchScale,
) {
    let dev = Device::Cpu;
    let (input, width, b) = match model {
        Architecture::Mlp => (6, 4, B),
        Architecture::Cnn => (IMAGE_SIDE * IMAGE_SIDE, 2, B_CNN),
        Architecture::Rnn | Architecture::Lstm | Architecture::Gru => {
            unreachable!("the probe through time has its own finite differences")
        }
    };
    let cfg = MlpConfig {
        model,
        input,
        width,
        layers: 4,
        classes: 3,
        activation,
        init: Init::GlorotNormal,
        bias_variance: 0.0,
        norm,
        residual,
        branch_scale,
    };
    let varmap = VarMap::new();
    let model = Mlp::init_with_dtype(&cfg, &[11, 12], &varmap, &dev, DType::F64).unwrap();
    // Non-zero biases: with zero biases a unit whose inputs are all zero sits exactly on
    // the ReLU kink, where a central difference sees half a slope.
    for l in 1..=cfg.layers {
        let bias = &varmap.data().lock().unwrap()[&MlpConfig::bias_name(l)];
        let n = bias.elem_count();
        let values = Tensor::arange(0f64, n as f64, &dev)
            .unwrap()
            .affine(0.7, 0.3)
            .unwrap()
            .cos()
            .unwrap()
            * 0.1;
        bias.set(&values.unwrap().reshape(bias.shape()).unwrap())
            .unwrap();
    }
    // A learned branch scale away from SkipInit's 0, where the branch's own gradients
    // would all be 0.
    for l in (1..=cfg.layers).filter(|&l| cfg.has_learned_branch(l)) {
        let gain = varmap.data().lock().unwrap()[&MlpConfig::branch_gain_name(l)].clone();
        let values = Tensor::new(&[0.7f64, -0.4], &dev).unwrap();
        gain.set(&values.reshape(gain.shape()).unwrap()).unwrap();
    }
    // Deterministic inputs spread over [-2, 2].
    let x = (Tensor::arange(0f64, (K * b * input) as f64, &dev)
        .unwrap()
        .affine(0.37, 0.1)
        .unwrap()
        .sin()
        .unwrap()
        * 2.0)
        .unwrap()
        .reshape((K, b, input))
        .unwrap();
    let y = Tensor::new(&[[0u32, 1, 2, 1, 0], [2, 2, 1, 0, 1]], &dev)
        .unwrap()
        .narrow(1, 0, b)
        .unwrap()
        .contiguous()
        .unwrap()
        .unsqueeze(2)
        .unwrap();
    let taps = DeltaTaps::new(&model, b, &dev).unwrap();
    let trace = model.forward_traced(&x, Some(taps.tensors())).unwrap();
    let grads: GradStore = trace
        .backward(&ensemble_cross_entropy(&trace.logits, &y).unwrap().loss)
        .unwrap();
    let records: Vec<Vec<LayerRecord>> = probe_step(&model, &grads, &trace, &taps).unwrap();

    // Finite-difference taps: plain variables whose values we can perturb.
    let fd_taps: Vec<Var> = (1..=cfg.layers)
        .map(|l| {
            let out = cfg.layer_dims()[l - 1].1;
            Var::zeros((K, b * cfg.positions(l), out), DType::F64, &dev).unwrap()
        })
        .collect();
    let tap_tensors: Vec<Tensor> = fd_taps.iter().map(|v| v.as_tensor().clone()).collect();
    let eval = || {
        loss(&model, &x, &y, &tap_tensors)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let vars = varmap.data().lock().unwrap().clone();
    // The learned branch scales' own gradients, which the optimizer steps with.
    for l in (1..=cfg.layers).filter(|&l| cfg.has_learned_branch(l)) {
        let gain = &vars[&MlpConfig::branch_gain_name(l)];
        let numeric = numeric_gradient(gain, &eval);
        let analytic = grads
            .get(gain)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for m in 0..K {
            assert_close(
                &format!("branch gain {l} member {m}"),
                analytic[m],
                f64::from(numeric[m][0]),
            );
        }
    }
    for l in 1..=cfg.layers {
        let weight = &vars[&MlpConfig::weight_name(l)];
        let numeric_w = numeric_gradient(weight, &eval);
        let numeric_delta = numeric_gradient(&fd_taps[l - 1], &eval);
        let numeric_deriv =
            (l < cfg.layers).then(|| mean_derivative(activation, &trace.activation_inputs[l - 1]));
        for m in 0..K {
            let r = &records[m][l - 1];
            let want = Moments::of(&numeric_w[m]);
            let tag = |s: &str| format!("{activation} layer {l} member {m} {s}");
            assert_eq!(r.layer, l);
            assert_close(&tag("grad_mean_abs"), r.grad_mean_abs, want.mean_abs);
            assert_close(&tag("grad_l2"), r.grad_l2, want.l2);
            assert_close(&tag("grad_max_abs"), r.grad_max_abs, want.max_abs);
            assert_close(&tag("grad_std"), r.grad_std, want.std);
            assert_close(
                &tag("delta_mean_abs"),
                r.delta_mean_abs,
                Moments::of(&numeric_delta[m]).mean_abs,
            );
            assert_eq!(
                r.grad_hist.num as usize,
                cfg.layer_dims()[l - 1].0 * cfg.layer_dims()[l - 1].1
            );
            assert_eq!(r.dead_frac.is_none(), l == cfg.layers);
            match &numeric_deriv {
                Some((per_member, squares)) => {
                    assert_close(&tag("deriv_mean"), r.deriv_mean.unwrap(), per_member[m]);
                    let next = vars[&MlpConfig::weight_name(l + 1)].as_tensor();
                    let chi1 = sigma_w_sq(next, m) * squares[m];
                    match cfg.model {
                        Architecture::Mlp => assert_close(&tag("chi1"), r.chi1.unwrap(), chi1),
                        // A dense layer's chi_1 does not describe a convolution.
                        Architecture::Cnn => assert_eq!(r.chi1, None),
                        Architecture::Rnn | Architecture::Lstm | Architecture::Gru => {
                            unreachable!("not an Mlp")
                        }
                    }
                    let input = trace.activation_inputs[l - 1]
                        .narrow(0, m, 1)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_dtype(DType::F32)
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap();
                    assert_eq!(r.preact, Some(Distribution::of(&input)), "{}", tag(""));
                }
                None => assert!(r.deriv_mean.is_none() && r.preact.is_none() && r.chi1.is_none()),
            }
            let delta_sq = numeric_delta[m]
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                / numeric_delta[m].len() as f64;
            assert_close(&tag("delta_mean_sq"), r.delta_mean_sq.unwrap(), delta_sq);
        }
    }
}

macro_rules! fd_test {
    ($name:ident, $activation:expr) => {
        fd_test!($name, $activation, Norm::None, false);
    };
    ($name:ident, $activation:expr, $norm:expr, $residual:expr) => {
        fd_test!($name, $activation, $norm, $residual, BranchScale::One);
    };
    ($name:ident, $activation:expr, $norm:expr, $residual:expr, $branch:expr) => {
        #[test]
        fn $name() {
            check($activation, $norm, $residual, $branch);
        }
    };
}

fd_test!(sigmoid, Activation::Sigmoid);
fd_test!(tanh, Activation::Tanh);
fd_test!(relu, Activation::Relu);
fd_test!(leaky_relu, Activation::LeakyRelu { slope: 0.2 });
fd_test!(elu, Activation::Elu);
fd_test!(gelu, Activation::Gelu);
fd_test!(silu, Activation::Silu);
fd_test!(softsign, Activation::Softsign);
fd_test!(selu, Activation::Selu);
fd_test!(linear, Activation::Linear);
fd_test!(sigmoid_batch_norm, Activation::Sigmoid, Norm::Batch, false);
fd_test!(relu_layer_norm, Activation::Relu, Norm::Layer, false);
fd_test!(tanh_residual, Activation::Tanh, Norm::None, true);
fd_test!(
    relu_batch_norm_residual,
    Activation::Relu,
    Norm::Batch,
    true
);
fd_test!(
    tanh_residual_inverse_sqrt_depth,
    Activation::Tanh,
    Norm::None,
    true,
    BranchScale::InverseSqrtDepth
);
fd_test!(
    relu_layer_norm_residual_skipinit,
    Activation::Relu,
    Norm::Layer,
    true,
    BranchScale::SkipInit
);

#[test]
fn relu_cnn() {
    check_model(
        Architecture::Cnn,
        Activation::Relu,
        Norm::None,
        false,
        BranchScale::One,
    );
}

#[test]
fn tanh_cnn_batch_norm_residual() {
    check_model(
        Architecture::Cnn,
        Activation::Tanh,
        Norm::Batch,
        true,
        BranchScale::One,
    );
}
