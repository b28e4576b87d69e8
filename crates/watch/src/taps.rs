//! Taps: the back-propagated error at intermediate tensors of a forward pass.
//!
//! candle's `backward()` keeps the gradients of `Var`s only and drops those of
//! intermediate tensors. A tap adds a zero `Var` to the tensor: the values of the forward
//! pass are unchanged, and since d(x + t)/dt = 1 the variable's gradient is exactly
//! dC/dx, the error back-propagated to x.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use candle_core::{Module, Tensor, Var};

/// A tap recorded in a forward pass: the tensor as it came in and the zero variable added
/// to it.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) name: String,
    pub(crate) input: Tensor,
    pub(crate) var: Var,
}

#[derive(Debug, Default)]
struct Shared {
    /// Whether the coming step is logged. Read on every tap; an atomic, so that an
    /// unlogged step's tap costs one load and no lock.
    armed: AtomicBool,
    recorded: Mutex<Vec<Recorded>>,
}

/// A handle a model keeps to tap tensors in its forward pass, one line per tap:
/// `let xs = taps.tap("conv1", &xs)?;`. Clones share one set of taps; hand one to the
/// [`crate::Watch`] with [`crate::Watch::with_taps`].
///
/// A tap is active only while the coming step is logged: otherwise it returns the tensor
/// untouched, at the cost of one atomic load. When active it records the tensor and adds
/// a zero variable to it; a later pass through the same tap before the step's gradients
/// are observed replaces the earlier one, so an evaluation pass run between two training
/// steps is superseded by the training pass that follows it.
#[derive(Debug, Clone, Default)]
pub struct Taps {
    shared: Arc<Shared>,
}

impl Taps {
    /// Taps for a model, inactive until a [`crate::Watch`] that holds them expects a
    /// logged step.
    pub fn new() -> Self {
        Self::default()
    }

    /// `xs`, tapped under `name` when the coming step is logged: `xs` plus a zero variable
    /// whose gradient is the error at `xs`. Otherwise `xs` itself.
    pub fn tap(&self, name: &str, xs: &Tensor) -> candle_core::Result<Tensor> {
        if !self.is_armed() {
            return Ok(xs.clone());
        }
        let var = Var::zeros(xs.shape(), xs.dtype(), xs.device())?;
        let out = xs.add(var.as_tensor())?;
        let mut recorded = self.lock();
        let entry = Recorded {
            name: name.to_string(),
            input: xs.clone(),
            var,
        };
        match recorded.iter_mut().find(|r| r.name == name) {
            Some(slot) => *slot = entry,
            None => recorded.push(entry),
        }
        Ok(out)
    }

    /// The tap `name` as a candle [`Module`], for a forward pass written as a chain:
    /// `xs.apply(&self.conv1)?.apply(&self.taps.at("conv1"))?`.
    pub fn at<'a>(&'a self, name: &'a str) -> Tap<'a> {
        Tap { taps: self, name }
    }

    /// Whether the coming step is logged, so that a tap records.
    pub fn is_armed(&self) -> bool {
        self.shared.armed.load(Ordering::Relaxed)
    }

    /// Makes the taps record (`true`) or pass tensors through (`false`).
    pub(crate) fn arm(&self, armed: bool) {
        self.shared.armed.store(armed, Ordering::Relaxed);
    }

    /// The taps recorded since the last call, in the order the forward pass met them.
    pub(crate) fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.lock())
    }

    /// The recorded taps. A panic while the lock was held (in another thread's forward
    /// pass) leaves a list that is still whole, so a poisoned lock is taken over.
    fn lock(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.shared
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One named tap as a candle [`Module`] (see [`Taps::at`]).
#[derive(Debug, Clone, Copy)]
pub struct Tap<'a> {
    taps: &'a Taps,
    name: &'a str,
}

impl Module for Tap<'_> {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.taps.tap(self.name, xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn an_idle_tap_returns_the_tensor_and_records_nothing() {
        let taps = Taps::new();
        let x = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let y = taps.tap("x", &x).unwrap();
        assert_eq!(y.id(), x.id());
        assert!(taps.take().is_empty());
    }

    #[test]
    fn an_armed_tap_gives_the_error_at_the_tensor() {
        let taps = Taps::new();
        taps.arm(true);
        let w = Var::new(&[1f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let x = w.as_tensor().affine(2.0, 0.0).unwrap();
        let y = x.apply(&taps.at("x")).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), [2.0, -4.0, 6.0]);
        // loss = sum(y * y): dloss/dx = 2x, wherever x is.
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let recorded = taps.take();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].name, "x");
        let error = grads.get(recorded[0].var.as_tensor()).unwrap();
        assert_eq!(error.to_vec1::<f32>().unwrap(), [4.0, -8.0, 12.0]);
    }

    #[test]
    fn a_second_pass_through_a_tap_replaces_the_first() {
        let taps = Taps::new();
        taps.arm(true);
        let a = Tensor::new(&[1f32], &Device::Cpu).unwrap();
        let b = Tensor::new(&[2f32, 3.0], &Device::Cpu).unwrap();
        taps.tap("x", &a).unwrap();
        taps.tap("y", &a).unwrap();
        taps.tap("x", &b).unwrap();
        let recorded = taps.take();
        let names: Vec<&str> = recorded.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(recorded[0].input.dims(), [2]);
    }
}
