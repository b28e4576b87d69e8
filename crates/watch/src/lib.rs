//! Watch the gradients of any candle model: per parameter, the gradient's mean |g|, L2
//! norm, max |g| and histogram, the weight's norm and histogram, and the update-to-weight
//! ratio of the step; per tap, the back-propagated error at an intermediate tensor beside
//! the tensor itself. Written every 200 steps (and step 0) to TensorBoard and to
//! `metrics.jsonl`, tags named by the `VarMap`'s names (`grad_hist/fc1.weight`).
//!
//! A training loop gains the watch in three lines: create it after the model, replace
//! `opt.backward_step(&loss)?` with `watch.backward_step(&mut opt, &loss)?`, and finish it
//! at the end. Taps are optional, one line per tapped tensor in the forward pass:
//!
//! ```no_run
//! use candle_core::{DType, Device, Tensor, D};
//! use candle_nn::{loss, ops, AdamW, Linear, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap};
//! use vgrad_watch::{Taps, Watch};
//!
//! struct Model {
//!     fc1: Linear,
//!     fc2: Linear,
//!     taps: Taps, // optional: the error at tapped tensors
//! }
//!
//! impl Model {
//!     fn new(vs: VarBuilder) -> candle_core::Result<Self> {
//!         Ok(Self {
//!             fc1: candle_nn::linear(784, 100, vs.pp("fc1"))?,
//!             fc2: candle_nn::linear(100, 10, vs.pp("fc2"))?,
//!             taps: Taps::new(),
//!         })
//!     }
//!
//!     fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
//!         let xs = self.fc1.forward(xs)?;
//!         let xs = self.taps.tap("fc1", &xs)?; // optional: dC/dx at fc1's output
//!         self.fc2.forward(&xs.relu()?)
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dev = Device::Cpu;
//!     let varmap = VarMap::new();
//!     let model = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
//!     let mut opt = AdamW::new(varmap.all_vars(), ParamsAdamW::default())?;
//!     let mut watch = Watch::new("runs/my-model", &varmap)?.with_taps(&model.taps);
//!     for _step in 0..1000 {
//!         // Your data here; random stand-ins keep the example whole.
//!         let images = Tensor::randn(0f32, 1.0, (64, 784), &dev)?;
//!         let labels = Tensor::zeros(64, DType::U32, &dev)?;
//!         let logits = model.forward(&images)?;
//!         let loss = loss::nll(&ops::log_softmax(&logits, D::Minus1)?, &labels)?;
//!         watch.backward_step(&mut opt, &loss)?; // was: opt.backward_step(&loss)?;
//!     }
//!     watch.finish()?;
//!     println!("tensorboard --logdir runs");
//!     Ok(())
//! }
//! ```
//!
//! A loop that calls `backward()` and the optimizer itself calls [`Watch::observe`] with
//! the gradients before the optimizer's step and [`Watch::stepped`] after it:
//!
//! ```no_run
//! # fn f(watch: &mut vgrad_watch::Watch, opt: &mut candle_nn::SGD, loss: &candle_core::Tensor)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! # use candle_nn::Optimizer;
//! let grads = loss.backward()?;
//! watch.observe(&grads)?;
//! opt.step(&grads)?;
//! watch.stepped()?;
//! # Ok(()) }
//! ```
//!
//! Cost: a step that is not logged costs a counter, and a tap one atomic load. A logged
//! step copies every parameter and gradient to the host (twice for the weights, before
//! and after the optimizer's step), and a tap adds a zero variable to its tensor in that
//! step's forward pass. The files are flushed at most about once a second, and when the
//! watch is finished or dropped.

#![forbid(unsafe_code)]

pub mod error;
pub mod record;
mod sink;
pub mod taps;
mod watch;

pub use error::{Result, WatchError};
pub use record::{ParamRecord, StepRecord, TapRecord};
pub use sink::METRICS;
pub use taps::{Tap, Taps};
pub use watch::{DEFAULT_EVERY, Watch};
