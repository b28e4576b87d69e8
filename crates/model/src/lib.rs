//! The network under study: an ensemble of K multi-layer perceptrons that share one
//! configuration (depth, width, activation, initialisation) and differ only in their seed.
//!
//! # Where the MLP is
//!
//! Coming from candle's `mnist-training` example: the MLP is [`Mlp`], built from an
//! [`MlpConfig`] by [`Mlp::init`] (fresh, seeded weights in a `VarMap`) or [`Mlp::load`]
//! (a `VarBuilder`); it implements candle's `Module`. Its parts, one file each:
//! [`EnsembleLinear`] (the dense layer), [`ActivationLayer`], [`EnsembleNorm`] (batch and
//! layer norm), the initialisations (`init.rs`), the loss ([`ensemble_cross_entropy`])
//! and the seeded random streams ([`seeding`]).
//!
//! # Convolutional networks
//!
//! With `model: Architecture::Cnn` the same [`Mlp`] is a convolutional network (see
//! [`LayerInput`]): each hidden layer multiplies its input's 3x3 patches ([`conv`]; on the
//! CPU vgrad-kernels' `im2col` op) by its weight matrix, the output layer the average over
//! positions. Maps are rows of (example, position) with the channels as units, so the dense
//! layer, the norms, the activations, the skips and the probe work on them unchanged.
//!
//! Members are stored as batched tensors (weights `[K, in, out]`, biases `[K, 1, out]`,
//! inputs `[K, B, in]`), so one training step pays candle's per-op overhead once for all
//! K members. A single run is simply K = 1, and each member computes exactly the numbers
//! it would compute alone.
//!
//! # Kernels, chosen once
//!
//! By default the layers compute with vgrad's fused CPU ops (the `vgrad-kernels` crate),
//! which give candle's numbers bit for bit in fewer passes; `.with_kernels(Kernels::Candle)`
//! on a model (or a layer) makes it use candle's plain ops throughout. The choice is
//! stored in the layers when the model is built; no forward call takes it.
//!
//! # Gradients of a training pass
//!
//! Differentiate [`Mlp::forward_traced`] with [`ForwardTrace::backward`], not
//! `loss.backward()`: with the fused kernels, the dense layers' and norms' backward passes
//! hand their weight, bias, scale and shift gradients to the trace rather than to candle,
//! so the `GradStore` of `loss.backward()` lacks them (the optimizer and the probe refuse
//! such a store). The evaluation pass (`Module::forward`) and [`Kernels::Candle`] leave
//! every gradient with candle.
//!
//! Why: candle accumulates every gradient it is handed into a fresh `zeros_like`, with an
//! `add`, which for the weights is extra passes over every matrix at every step. Handing
//! the gradients to candle instead (the same bits) made steps slower, measured with
//! release binaries on the 2-core VM (median step of `vgrad train`, 6 alternations, the
//! ranges did not overlap): width 1000, 300 steps, 16.3 ms against 14.6 ms (+12%); the
//! reference network (6 layers of width 10), 68.6 us against 64.0 us (+7%); an ensemble
//! of 10 of it, 419 us against 392 us (+7%).
//!
//! # Recurrent networks
//!
//! [`recurrent`] holds the vanilla RNN, the LSTM and the GRU, ensembles of K seeds in the
//! same layout ([`Recurrent`], built from a [`RecurrentConfig`]), whose traced forward
//! pass keeps every hidden state, cell state and gate of every time step.

#![forbid(unsafe_code)]

mod activation;
mod config;
pub mod conv;
mod error;
mod init;
mod kernels;
mod linear;
mod loss;
mod mlp;
mod norm;
pub mod recurrent;
pub mod seeding;

pub use activation::ActivationLayer;
pub use config::{IMAGE_SIDE, LayerInput, MlpConfig};
pub use error::{ModelError, Result};
pub use kernels::Kernels;
pub use linear::EnsembleLinear;
pub use loss::{EnsembleLoss, EnsembleRegressionLoss, ensemble_cross_entropy, ensemble_mse};
pub use mlp::{ForwardTrace, Mlp};
pub use norm::{BatchStats, EnsembleNorm};
pub use recurrent::{Recurrent, RecurrentConfig, RecurrentInit, RecurrentKind, RecurrentTrace};
