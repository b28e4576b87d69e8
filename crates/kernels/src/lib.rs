//! vgrad's fast paths: CPU ops that compute exactly the numbers candle's own ops compute,
//! in fewer passes, and the few other places where vgrad needs SIMD or `unsafe`.
//!
//! Every op here repeats private behaviour of candle-core 0.11.1 and gemm 0.19.0
//! (summation orders, block depths, the zero tensor a gradient is accumulated into),
//! which is why Cargo.toml pins those exact versions, and each has a test that compares
//! it with candle's plain ops bit for bit (the README lists them). The model crate picks
//! these ops or candle's once, when a model is built; nothing else of vgrad writes SIMD
//! or `unsafe`.
//!
//! - [`adam`]: Adam's update on AVX-512, without the cost of subnormal first moments;
//! - [`affine`]: a dense layer's `x W + b` and its backward pass as one op;
//! - [`im2col`]: a 3x3 convolution's patches and their backward pass, one op each;
//! - [`input_matmul`]: the first layer's product, without the gradient of its data input;
//! - [`matmul`]: candle's batched matmul, with narrow products computed in registers;
//! - [`rectifier`]: ReLU and leaky ReLU in one op each;
//! - [`fused_norm`]: the training pass of batch norm and layer norm in one op;
//! - [`transpose`]: column-major to row-major copies;
//! - [`cpu`]: the finiteness scan, in-place reads of tensors, [`with_cpu_feature!`];
//! - [`pixels`]: MNIST bytes to f32 pixels, and the prefetch of a batch's images;
//! - [`svd`]: singular values of many small f64 matrices at once (Golub-Reinsch);
//! - [`platform`]: safe wrappers of the process-level calls (environment, mimalloc,
//!   `prctl`).
//!
//! Everything but [`platform`] is behind the default feature `ops`, the one that needs
//! candle and gemm: the sweep crate uses `platform` alone, and xtask, which builds on it,
//! stays free of candle.

#[cfg(feature = "ops")]
pub mod adam;
#[cfg(feature = "ops")]
pub mod affine;
#[cfg(feature = "ops")]
pub mod cpu;
#[cfg(feature = "ops")]
pub mod fused_norm;
#[cfg(feature = "ops")]
pub mod im2col;
#[cfg(feature = "ops")]
pub mod input_matmul;
#[cfg(feature = "ops")]
pub mod matmul;
#[cfg(feature = "ops")]
mod narrow_product;
#[cfg(feature = "ops")]
pub mod pixels;
pub mod platform;
#[cfg(feature = "ops")]
pub mod rectifier;
#[cfg(feature = "ops")]
pub mod svd;
#[cfg(feature = "ops")]
pub mod transpose;
