//! The network under study: an ensemble of K multi-layer perceptrons that share one
//! configuration (depth, width, activation, initialisation) and differ only in their seed.
//!
//! Members are stored as batched tensors (weights `[K, in, out]`, biases `[K, 1, out]`,
//! inputs `[K, B, in]`), so one training step pays candle's per-op overhead once for all
//! K members. A single run is simply K = 1, and each member computes exactly the numbers
//! it would compute alone.

pub mod activation;
pub mod affine;
pub mod cpu;
pub mod error;
pub mod fused_norm;
pub mod init;
pub mod input_matmul;
pub mod kernels;
pub mod linear;
pub mod loss;
pub mod matmul;
pub mod mlp;
pub mod narrow_product;
pub mod norm;
pub mod rectifier;
pub mod seeding;
pub mod transpose;

pub use error::{ModelError, Result};
pub use kernels::Kernels;
pub use linear::EnsembleLinear;
pub use loss::{EnsembleLoss, ensemble_cross_entropy};
pub use mlp::{ForwardTrace, Mlp, MlpConfig};
pub use norm::{BatchStats, EnsembleNorm};
