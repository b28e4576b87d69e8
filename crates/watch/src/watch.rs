//! The watch: counts steps, and at a logged one reads the gradients, the weights before
//! and after the optimizer's step, and the taps.

use std::path::{Path, PathBuf};

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::{Optimizer, VarMap};

use crate::record::{ParamRecord, StepRecord, TapRecord, host_values, update_ratio};
use crate::sink::Sink;
use crate::taps::Taps;
use crate::{Result, WatchError};

/// How often a watch logs unless told otherwise: every 200 steps, and step 0.
pub const DEFAULT_EVERY: u64 = 200;

/// A logged step observed but not yet stepped: its record and the weights before the
/// optimizer's step, for the update ratios.
struct Pending {
    record: StepRecord,
    before: Vec<Vec<f32>>,
}

/// Watches a model's parameters through training and writes what it sees to a run folder
/// (`metrics.jsonl` and a TensorBoard event file). See the crate's documentation for a
/// complete example.
///
/// Every `every` steps (and at step 0) it records, per parameter, the gradient's mean |g|,
/// L2 norm, max |g| and histogram, the weight's L2 norm and histogram, and the update
/// ratio ||W_after - W_before|| / ||W_before|| of that step; and, per tap, the tensor's
/// mean, std and histogram beside its error's mean |dC/dx|, rms and histogram. Any other
/// step costs a counter.
///
/// Dropping the watch writes what it holds and flushes its files, ignoring errors;
/// [`Watch::finish`] does the same and reports them.
pub struct Watch {
    params: Vec<(String, Var)>,
    every: u64,
    step: u64,
    taps: Taps,
    loss: Option<f64>,
    pending: Option<Pending>,
    sink: Option<Sink>,
    dir: PathBuf,
    last: Option<StepRecord>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Watch")
            .field("dir", &self.dir)
            .field("params", &names)
            .field("every", &self.every)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// `a` before `b` with runs of digits compared as numbers, so that `layer2` comes before
/// `layer10` in the records and TensorBoard's tag lists.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut prev_digit = None;
        for (i, c) in s.char_indices() {
            let digit = c.is_ascii_digit();
            if prev_digit.is_some_and(|p| p != digit) {
                out.push((prev_digit == Some(true), &s[start..i]));
                start = i;
            }
            prev_digit = Some(digit);
        }
        if start < s.len() {
            out.push((prev_digit == Some(true), &s[start..]));
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (&(da, x), &(db, y)) in ca.iter().zip(&cb) {
        let order = if da && db {
            // Numbers of any length: fewer significant digits is smaller.
            let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if order.is_ne() {
            return order;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

impl Watch {
    /// A watch over every variable of `varmap`, in the natural order of their names,
    /// writing to `dir` (created if needed; it must not hold an earlier run's files).
    /// Create it after the model, whose `VarBuilder` fills the `VarMap`.
    pub fn new(dir: impl AsRef<Path>, varmap: &VarMap) -> Result<Self> {
        let vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            // A panic while the map was locked leaves whole entries: read them.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        let mut watch = Self::from_vars(dir, vars)?;
        watch.params.sort_by(|a, b| natural_cmp(&a.0, &b.0));
        Ok(watch)
    }

    /// A watch over `vars`, named as given and kept in their order, writing to `dir`.
    pub fn from_vars<N: Into<String>>(
        dir: impl AsRef<Path>,
        vars: impl IntoIterator<Item = (N, Var)>,
    ) -> Result<Self> {
        let params: Vec<(String, Var)> = vars.into_iter().map(|(n, v)| (n.into(), v)).collect();
        if params.is_empty() {
            return Err(WatchError::NoParameters);
        }
        let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(WatchError::DuplicateName(w[0].to_string()));
        }
        let dir = dir.as_ref().to_path_buf();
        let sink = Sink::create(&dir)?;
        Ok(Self {
            params,
            every: DEFAULT_EVERY,
            step: 0,
            taps: Taps::new(),
            loss: None,
            pending: None,
            sink: Some(sink),
            dir,
            last: None,
        })
    }

    /// Logs every `n` steps (and step 0) instead of every [`DEFAULT_EVERY`]. 0 turns
    /// logging off: every step then costs a counter, which times a loop with and without
    /// the watch's work from one build.
    pub fn every(mut self, n: u64) -> Self {
        self.every = n;
        self.taps.arm(self.is_logged());
        self
    }

    /// Records the taps of `taps` (a handle the model holds) at logged steps.
    pub fn with_taps(mut self, taps: &Taps) -> Self {
        self.taps = taps.clone();
        self.taps.arm(self.is_logged());
        self
    }

    /// The taps this watch records, for a model created after the watch.
    pub fn taps(&self) -> &Taps {
        &self.taps
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The coming step, counted from 0.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Whether the coming step is logged.
    pub fn is_logged(&self) -> bool {
        self.step.checked_rem(self.every) == Some(0)
    }

    /// The record of the last logged step written.
    pub fn last(&self) -> Option<&StepRecord> {
        self.last.as_ref()
    }

    /// In place of candle's `opt.backward_step(&loss)`: back-propagates `loss`, records
    /// the gradients if the step is logged, takes the optimizer's step, and records the
    /// update it made.
    pub fn backward_step<O: Optimizer>(&mut self, opt: &mut O, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        if self.is_logged() {
            self.loss = if loss.rank() == 0 {
                Some(f64::from(
                    loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?,
                ))
            } else {
                None
            };
            self.observe(&grads)?;
        }
        opt.step(&grads)?;
        self.stepped()
    }

    /// For a loop that runs `backward()` and the optimizer itself: call it with the step's
    /// gradients before the optimizer's step, and [`Watch::stepped`] after. At a logged
    /// step it reads the gradients, the weights and the taps; otherwise it does nothing.
    pub fn observe(&mut self, grads: &GradStore) -> Result<()> {
        if !self.is_logged() {
            return Ok(());
        }
        if self.pending.is_some() {
            return Err(WatchError::Sequence { step: self.step });
        }
        let mut params = Vec::with_capacity(self.params.len());
        let mut before = Vec::with_capacity(self.params.len());
        for (name, var) in &self.params {
            let grad = grads
                .get(var.as_tensor())
                .ok_or_else(|| WatchError::MissingGradient { name: name.clone() })?;
            let in_param = |source| WatchError::Parameter {
                name: name.clone(),
                source,
            };
            let g = host_values(grad).map_err(in_param)?;
            let w = host_values(var.as_tensor()).map_err(in_param)?;
            params.push(ParamRecord::of(name, var.dims(), &g, &w));
            before.push(w);
        }
        // The step's taps are read; the next ones come with the next logged step.
        self.taps.arm(false);
        let taps = self
            .taps
            .take()
            .into_iter()
            .map(|tap| {
                let error = grads.get(tap.var.as_tensor()).ok_or_else(|| {
                    WatchError::MissingTapGradient {
                        name: tap.name.clone(),
                    }
                })?;
                let in_tap = |source| WatchError::Tap {
                    name: tap.name.clone(),
                    source,
                };
                let x = host_values(&tap.input).map_err(in_tap)?;
                let e = host_values(error).map_err(in_tap)?;
                Ok(TapRecord::of(&tap.name, tap.input.dims(), &x, &e))
            })
            .collect::<Result<Vec<_>>>()?;
        self.pending = Some(Pending {
            record: StepRecord {
                step: self.step,
                loss: self.loss.take(),
                params,
                taps,
            },
            before,
        });
        Ok(())
    }

    /// Call after the optimizer's step: at a logged step it reads the weights again for
    /// the update ratios and writes the step's record; every step it advances the count.
    pub fn stepped(&mut self) -> Result<()> {
        if let Some(Pending { mut record, before }) = self.pending.take() {
            for ((p, (name, var)), b) in record.params.iter_mut().zip(&self.params).zip(&before) {
                let after =
                    host_values(var.as_tensor()).map_err(|source| WatchError::Parameter {
                        name: name.clone(),
                        source,
                    })?;
                p.update_ratio = update_ratio(b, &after);
            }
            self.write(record)?;
        }
        self.step += 1;
        if self.is_logged() {
            self.taps.arm(true);
        }
        Ok(())
    }

    fn write(&mut self, record: StepRecord) -> Result<()> {
        if let Some(sink) = &mut self.sink {
            sink.write(&record)?;
        }
        self.last = Some(record);
        Ok(())
    }

    /// Writes a step observed but never stepped (without update ratios) and flushes.
    fn close(&mut self) -> Result<()> {
        if let Some(Pending { record, .. }) = self.pending.take() {
            self.write(record)?;
        }
        match self.sink.take() {
            Some(mut sink) => sink.flush(),
            None => Ok(()),
        }
    }

    /// Writes what the watch still holds and flushes its files, reporting any error (which
    /// dropping the watch would ignore).
    pub fn finish(mut self) -> Result<()> {
        self.close()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Errors cannot be reported from a drop; `finish` reports them.
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{SGD, VarBuilder};

    #[test]
    fn names_sort_naturally() {
        let mut names = vec!["layer10.w", "layer2.w", "fc.bias", "layer2.b", "a01", "a1"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            ["a01", "a1", "fc.bias", "layer2.b", "layer2.w", "layer10.w"]
        );
    }

    /// A VarMap holding `w` = [[1, 2], [3, 4]] and `b` = [0.5, -0.5].
    fn tiny() -> (VarMap, Var, Var) {
        let varmap = VarMap::new();
        let vs = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        vs.get_with_hints((2, 2), "w", candle_nn::init::ZERO)
            .unwrap();
        vs.get_with_hints(2, "b", candle_nn::init::ZERO).unwrap();
        let mut map = varmap.data().lock().unwrap();
        let w = map.get_mut("w").unwrap().clone();
        let b = map.get_mut("b").unwrap().clone();
        drop(map);
        w.set(&Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap())
            .unwrap();
        b.set(&Tensor::new(&[0.5f32, -0.5], &Device::Cpu).unwrap())
            .unwrap();
        (varmap, w, b)
    }

    /// loss = sum(W x + b) for x = [1, 2]: dL/dW = [[1, 2], [1, 2]], dL/db = [1, 1].
    fn loss(w: &Var, b: &Var) -> Tensor {
        let x = Tensor::new(&[[1f32], [2.0]], &Device::Cpu).unwrap();
        w.as_tensor()
            .matmul(&x)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .add(b.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
    }

    #[test]
    fn a_logged_step_records_gradients_weights_and_the_sgd_update() {
        let dir = tempfile::tempdir().unwrap();
        let (varmap, w, b) = tiny();
        let mut watch = Watch::new(dir.path(), &varmap).unwrap().every(2);
        let mut sgd = SGD::new(varmap.all_vars(), 0.1).unwrap();
        watch.backward_step(&mut sgd, &loss(&w, &b)).unwrap();
        let r = watch.last().unwrap().clone();
        assert_eq!(r.step, 0);
        // loss = (1 + 4 + 0.5) + (3 + 8 - 0.5) = 16.
        assert_eq!(r.loss, Some(16.0));
        let names: Vec<&str> = r.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["b", "w"]);
        let (pb, pw) = (&r.params[0], &r.params[1]);
        assert_eq!(pw.shape, [2, 2]);
        // dL/dW = [[1, 2], [1, 2]]: mean |g| 1.5, ||g|| sqrt(10), max 2; ||W|| sqrt(30).
        assert_eq!(pw.grad_mean_abs, 1.5);
        assert!((pw.grad_l2 - 10f64.sqrt()).abs() < 1e-12);
        assert_eq!(pw.grad_max_abs, 2.0);
        assert!((pw.weight_l2 - 30f64.sqrt()).abs() < 1e-12);
        // SGD with lr 0.1 moves W by -0.1 g: ||dW|| = 0.1 sqrt(10), over sqrt(30).
        let want = 0.1 * (10f64 / 30.0).sqrt();
        assert!((pw.update_ratio.unwrap() - want).abs() < 1e-7, "{pw:?}");
        // b moves by -0.1 [1, 1]: 0.1 sqrt(2) / sqrt(0.5) = 0.2.
        assert_eq!(pb.grad_l2, 2f64.sqrt());
        assert!((pb.update_ratio.unwrap() - 0.2).abs() < 1e-7);
        // The optimizer did take the step.
        assert_eq!(
            w.as_tensor().to_vec2::<f32>().unwrap(),
            [[0.9, 1.8], [2.9, 3.8]]
        );
        // Step 1 is not logged: the record stays step 0's.
        watch.backward_step(&mut sgd, &loss(&w, &b)).unwrap();
        assert_eq!(watch.last().unwrap().step, 0);
        assert_eq!(watch.step(), 2);
        assert!(watch.is_logged());
    }

    #[test]
    fn a_missing_gradient_names_the_parameter() {
        let dir = tempfile::tempdir().unwrap();
        let (varmap, w, _) = tiny();
        let mut watch = Watch::new(dir.path(), &varmap).unwrap();
        let grads = w.as_tensor().sum_all().unwrap().backward().unwrap();
        let err = watch.observe(&grads).unwrap_err();
        assert!(
            matches!(&err, WatchError::MissingGradient { name } if name == "b"),
            "{err}"
        );
        assert!(err.to_string().contains("parameter `b`"), "{err}");
    }

    #[test]
    fn dropping_the_watch_writes_a_step_observed_but_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let (varmap, w, b) = tiny();
        let mut watch = Watch::new(dir.path(), &varmap).unwrap();
        watch.observe(&loss(&w, &b).backward().unwrap()).unwrap();
        drop(watch);
        let text = std::fs::read_to_string(dir.path().join(crate::METRICS)).unwrap();
        let lines: Vec<StepRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].params.iter().all(|p| p.update_ratio.is_none()));
    }

    #[test]
    fn observe_twice_without_a_step_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (varmap, w, b) = tiny();
        let mut watch = Watch::new(dir.path(), &varmap).unwrap();
        let grads = loss(&w, &b).backward().unwrap();
        watch.observe(&grads).unwrap();
        let err = watch.observe(&grads).unwrap_err();
        assert!(matches!(err, WatchError::Sequence { step: 0 }), "{err}");
    }

    #[test]
    fn refuses_no_parameters_duplicate_names_and_an_occupied_folder() {
        let dir = tempfile::tempdir().unwrap();
        let err = Watch::new(dir.path(), &VarMap::new()).unwrap_err();
        assert!(matches!(err, WatchError::NoParameters), "{err}");
        let v = Var::zeros(1, DType::F32, &Device::Cpu).unwrap();
        let err = Watch::from_vars(dir.path(), [("a", v.clone()), ("a", v.clone())]).unwrap_err();
        assert!(
            matches!(&err, WatchError::DuplicateName(n) if n == "a"),
            "{err}"
        );
        let first = Watch::from_vars(dir.path(), [("a", v.clone())]).unwrap();
        first.finish().unwrap();
        let err = Watch::from_vars(dir.path(), [("a", v)]).unwrap_err();
        assert!(matches!(err, WatchError::Occupied { .. }), "{err}");
    }
}
