//! What a logged step records: per parameter and per tap, computed on the host from the
//! tensors' values, and its TensorBoard form.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use vgrad_record::Histogram;
use vgrad_record::histogram::Sums;
use vgrad_tensorboard::HistogramProto;

/// One line of `metrics.jsonl`: everything a logged step recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step, counted from 0.
    pub step: u64,
    /// The loss, where the step went through [`crate::Watch::backward_step`] with a scalar
    /// loss (`null` otherwise).
    pub loss: Option<f64>,
    /// One record per watched parameter, in the watch's order.
    pub params: Vec<ParamRecord>,
    /// One record per tap the step's forward pass went through, in the order it met them.
    pub taps: Vec<TapRecord>,
}

/// A parameter at a logged step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamRecord {
    /// The parameter's name, e.g. `c1.weight`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// mean |g| over the gradient's entries.
    pub grad_mean_abs: f64,
    /// ||g||, the gradient's L2 norm.
    pub grad_l2: f64,
    /// max |g|.
    pub grad_max_abs: f64,
    /// ||W||, the weight's L2 norm before the optimizer's step.
    pub weight_l2: f64,
    /// ||W_after - W_before|| / ||W_before|| across the step's update; `null` where the
    /// step was not taken (the run ended after `observe`) or ||W_before|| is 0.
    pub update_ratio: Option<f64>,
    /// The gradient's histogram.
    pub grad_hist: Histogram,
    /// The weight's histogram before the step.
    pub weight_hist: Histogram,
}

/// A tapped tensor at a logged step: its values in the forward pass and the
/// back-propagated error dC/dx at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TapRecord {
    /// The tap's name.
    pub name: String,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// Mean of the tensor's entries.
    pub mean: f64,
    /// Their population standard deviation.
    pub std: f64,
    /// mean |dC/dx|.
    pub error_mean_abs: f64,
    /// sqrt(mean (dC/dx)^2).
    pub error_rms: f64,
    /// The tensor's histogram.
    pub hist: Histogram,
    /// The error's histogram.
    pub error_hist: Histogram,
}

/// The entries of `t` on the host as f32, row-major.
pub(crate) fn host_values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
}

fn mean(sum: f64, sums: &Sums) -> f64 {
    if sums.count == 0 {
        0.0
    } else {
        sum / sums.count as f64
    }
}

impl ParamRecord {
    /// The record of parameter `name` of `shape` from its gradient's and weight's entries;
    /// the update ratio is set after the step.
    pub fn of(name: &str, shape: &[usize], grad: &[f32], weight: &[f32]) -> Self {
        let (grad_hist, g) = Histogram::with_sums(grad);
        let (weight_hist, w) = Histogram::with_sums(weight);
        Self {
            name: name.to_string(),
            shape: shape.to_vec(),
            grad_mean_abs: mean(g.sum_abs, &g),
            grad_l2: g.sum_squares.sqrt(),
            grad_max_abs: g.max_abs,
            weight_l2: w.sum_squares.sqrt(),
            update_ratio: None,
            grad_hist,
            weight_hist,
        }
    }
}

impl TapRecord {
    /// The record of tap `name` of `shape` from the tensor's and its error's entries.
    pub fn of(name: &str, shape: &[usize], values: &[f32], errors: &[f32]) -> Self {
        let (hist, x) = Histogram::with_sums(values);
        let (error_hist, e) = Histogram::with_sums(errors);
        let m = mean(x.sum, &x);
        Self {
            name: name.to_string(),
            shape: shape.to_vec(),
            mean: m,
            // E[x^2] - E[x]^2 can come out a rounding error below 0 for constant values.
            std: (mean(x.sum_squares, &x) - m * m).max(0.0).sqrt(),
            error_mean_abs: mean(e.sum_abs, &e),
            error_rms: mean(e.sum_squares, &e).sqrt(),
            hist,
            error_hist,
        }
    }
}

/// ||after - before|| / ||before||, summed in f64 (the difference of two f32 is exact in
/// f64, so a small update is not lost to rounding); `None` for a zero `before` or for
/// lengths that differ.
pub fn update_ratio(before: &[f32], after: &[f32]) -> Option<f64> {
    if before.len() != after.len() {
        return None;
    }
    let (mut diff, mut norm) = (0f64, 0f64);
    for (&b, &a) in before.iter().zip(after) {
        let (b, a) = (f64::from(b), f64::from(a));
        diff += (a - b) * (a - b);
        norm += b * b;
    }
    (norm > 0.0).then(|| (diff / norm).sqrt())
}

/// TensorBoard's form of `h`, or `None` for a histogram of no values. The empty buckets at
/// either end are left out: TensorBoard spreads the first bucket from the smallest value
/// and the last one to the largest, so empty end buckets would only stretch the axis.
pub fn histogram_proto(h: &Histogram) -> Option<HistogramProto> {
    let first = h.counts.iter().position(|&c| c > 0)?;
    let last = h.counts.iter().rposition(|&c| c > 0)?;
    // The last bucket has no upper edge of its own: f64::MAX, as TensorFlow writes it.
    let limits = h.edges.iter().copied().chain(std::iter::once(f64::MAX));
    Some(HistogramProto {
        min: h.min,
        max: h.max,
        num: h.num as f64,
        sum: h.sum,
        sum_squares: h.sum_squares,
        bucket_limit: limits.skip(first).take(last - first + 1).collect(),
        bucket: h.counts[first..=last].iter().map(|&c| c as f64).collect(),
    })
}

impl StepRecord {
    /// The step's scalars under `<measure>/<name>` tags: the loss, then each parameter's,
    /// then each tap's.
    pub fn scalars(&self) -> Vec<(String, f32)> {
        let mut out = Vec::with_capacity(1 + 5 * self.params.len() + 4 * self.taps.len());
        if let Some(loss) = self.loss {
            out.push(("loss".to_string(), loss as f32));
        }
        for p in &self.params {
            let mut push = |measure: &str, v: f64| {
                out.push((format!("{measure}/{}", p.name), v as f32));
            };
            // First in TensorBoard's scalars (it sorts digits before letters), as vgrad's
            // own runs put the reference measure, mean |dC/dW|.
            push("1_grad_mean_abs", p.grad_mean_abs);
            push("grad_l2", p.grad_l2);
            push("grad_max_abs", p.grad_max_abs);
            push("weight_l2", p.weight_l2);
            if let Some(r) = p.update_ratio {
                push("update_ratio", r);
            }
        }
        for t in &self.taps {
            let mut push = |measure: &str, v: f64| {
                out.push((format!("{measure}/{}", t.name), v as f32));
            };
            push("act_mean", t.mean);
            push("act_std", t.std);
            push("error_mean_abs", t.error_mean_abs);
            push("error_rms", t.error_rms);
        }
        out
    }

    /// The step's histograms: `grad_hist/<name>` and `weight_hist/<name>` for every
    /// parameter, `act_hist/<tap>` and `error_hist/<tap>` for every tap (none for a
    /// tensor of no entries).
    pub fn histograms(&self) -> Vec<(String, HistogramProto)> {
        let params = self.params.iter().flat_map(|p| {
            [("grad_hist", &p.grad_hist), ("weight_hist", &p.weight_hist)]
                .map(|(measure, h)| (format!("{measure}/{}", p.name), h))
        });
        let taps = self.taps.iter().flat_map(|t| {
            [("act_hist", &t.hist), ("error_hist", &t.error_hist)]
                .map(|(measure, h)| (format!("{measure}/{}", t.name), h))
        });
        params
            .chain(taps)
            .filter_map(|(tag, h)| histogram_proto(h).map(|p| (tag, p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_statistics_match_hand_computation() {
        // g = [3, -4, 0, 1]: mean |g| = 8 / 4 = 2, ||g|| = sqrt(9 + 16 + 1) = sqrt(26),
        // max |g| = 4. W = [1, 2, 2]: ||W|| = 3.
        let p = ParamRecord::of(
            "l.weight",
            &[2, 2],
            &[3.0, -4.0, 0.0, 1.0],
            &[1.0, 2.0, 2.0],
        );
        assert_eq!(p.grad_mean_abs, 2.0);
        assert_eq!(p.grad_l2, 26f64.sqrt());
        assert_eq!(p.grad_max_abs, 4.0);
        assert_eq!(p.weight_l2, 3.0);
        assert_eq!(p.grad_hist.num, 4);
        assert_eq!(p.grad_hist.counts.iter().sum::<u64>(), 4);
        assert_eq!((p.grad_hist.min, p.grad_hist.max), (-4.0, 3.0));
        assert_eq!(p.update_ratio, None);
    }

    #[test]
    fn tap_statistics_match_hand_computation() {
        // x = [1, 3, 5, 7]: mean 4, variance (9 + 1 + 1 + 9) / 4 = 5.
        // e = [-2, 2, 0, 4]: mean |e| = 2, rms = sqrt((4 + 4 + 16) / 4) = sqrt(6).
        let t = TapRecord::of("c1", &[1, 4], &[1.0, 3.0, 5.0, 7.0], &[-2.0, 2.0, 0.0, 4.0]);
        assert_eq!(t.mean, 4.0);
        assert!((t.std - 5f64.sqrt()).abs() < 1e-12);
        assert_eq!(t.error_mean_abs, 2.0);
        assert!((t.error_rms - 6f64.sqrt()).abs() < 1e-12);
        // A constant tensor has std 0, not a rounding error's NaN.
        let c = TapRecord::of("c", &[3], &[0.1; 3], &[0.0; 3]);
        assert_eq!(c.std, 0.0);
    }

    #[test]
    fn update_ratio_is_the_relative_change() {
        // before [3, 4] (norm 5), after [3, 4.5]: |diff| = 0.5, ratio 0.1.
        assert_eq!(update_ratio(&[3.0, 4.0], &[3.0, 4.5]), Some(0.1));
        assert_eq!(update_ratio(&[0.0, 0.0], &[1.0, 1.0]), None);
        assert_eq!(update_ratio(&[1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn histogram_protos_drop_empty_end_buckets_and_keep_every_count() {
        let values = [-0.3f32, 0.0, 0.002, 0.002, 0.7, 42.0];
        let h = Histogram::of(&values);
        let p = histogram_proto(&h).expect("values");
        assert_eq!(p.num, 6.0);
        assert_eq!(p.bucket.iter().sum::<f64>(), 6.0);
        assert_eq!(p.bucket.len(), p.bucket_limit.len());
        assert!(p.bucket[0] > 0.0 && *p.bucket.last().expect("buckets") > 0.0);
        // 42 lies above the last edge (10): the open bucket, limited by f64::MAX.
        assert_eq!(*p.bucket_limit.last().expect("limits"), f64::MAX);
        // -0.3 lies in (-0.5, -0.2], the first bucket kept.
        assert_eq!(p.bucket_limit[0], -0.2);
        assert!(p.bucket_limit.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(histogram_proto(&Histogram::of(&[])), None);
    }

    #[test]
    fn tags_name_the_measure_then_the_parameter() {
        let mut p = ParamRecord::of("fc1.weight", &[2], &[1.0, -1.0], &[0.5, 0.5]);
        p.update_ratio = Some(0.01);
        let t = TapRecord::of("fc1", &[2], &[1.0, 2.0], &[0.1, 0.2]);
        let r = StepRecord {
            step: 200,
            loss: Some(0.5),
            params: vec![p],
            taps: vec![t],
        };
        let tags: Vec<String> = r.scalars().into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            tags,
            [
                "loss",
                "1_grad_mean_abs/fc1.weight",
                "grad_l2/fc1.weight",
                "grad_max_abs/fc1.weight",
                "weight_l2/fc1.weight",
                "update_ratio/fc1.weight",
                "act_mean/fc1",
                "act_std/fc1",
                "error_mean_abs/fc1",
                "error_rms/fc1",
            ]
        );
        let hists: Vec<String> = r.histograms().into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            hists,
            [
                "grad_hist/fc1.weight",
                "weight_hist/fc1.weight",
                "act_hist/fc1",
                "error_hist/fc1"
            ]
        );
    }
}
