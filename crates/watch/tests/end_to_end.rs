//! A tiny candle model trained with the watch: what reaches the event file and
//! `metrics.jsonl`, against values worked out by hand.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Linear, Optimizer, SGD, VarBuilder, VarMap};
use vgrad_watch::{METRICS, StepRecord, Taps, Watch};

/// Two layers, tanh between them, a tap at the first layer's output.
struct Tiny {
    l1: Linear,
    l2: Linear,
    taps: Taps,
}

impl Tiny {
    fn new(varmap: &VarMap) -> Tiny {
        let vs = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        Tiny {
            l1: candle_nn::linear(4, 3, vs.pp("layer1")).unwrap(),
            l2: candle_nn::linear(3, 2, vs.pp("layer2")).unwrap(),
            taps: Taps::new(),
        }
    }

    /// The output and the tapped pre-activation.
    fn forward(&self, xs: &Tensor) -> (Tensor, Tensor) {
        let z = self.l1.forward(xs).unwrap();
        let tapped = self.taps.tap("layer1", &z).unwrap();
        (self.l2.forward(&tapped.tanh().unwrap()).unwrap(), z)
    }
}

fn batch(step: usize) -> Tensor {
    Tensor::arange(0f32, 20.0, &Device::Cpu)
        .unwrap()
        .affine(0.1, -1.0 + 0.01 * step as f64)
        .unwrap()
        .reshape((5, 4))
        .unwrap()
}

fn loss(out: &Tensor) -> Tensor {
    out.sqr().unwrap().mean_all().unwrap()
}

fn records(dir: &Path) -> Vec<StepRecord> {
    std::fs::read_to_string(dir.join(METRICS))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Per event of the folder's one event file: its step and its histogram tags.
fn histogram_tags(dir: &Path) -> Vec<(i64, Vec<String>)> {
    let files = vgrad_tensorboard::event_files(dir).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    vgrad_tensorboard::histogram_tags(&vgrad_tensorboard::read_events(&files[0]).unwrap())
}

#[test]
fn logged_steps_reach_both_files_and_unlogged_steps_record_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let varmap = VarMap::new();
    let model = Tiny::new(&varmap);
    let mut opt = SGD::new(varmap.all_vars(), 0.05).unwrap();
    let mut watch = Watch::new(dir.path(), &varmap)
        .unwrap()
        .every(3)
        .with_taps(&model.taps);
    let mut z_at_step_3 = None;
    for step in 0..7 {
        // Taps are active exactly before the logged steps 0, 3 and 6.
        assert_eq!(model.taps.is_armed(), step % 3 == 0, "step {step}");
        let (out, z) = model.forward(&batch(step));
        if step == 3 {
            z_at_step_3 = Some(z.to_vec2::<f32>().unwrap());
        }
        watch.backward_step(&mut opt, &loss(&out)).unwrap();
    }
    watch.finish().unwrap();

    let recs = records(dir.path());
    assert_eq!(recs.iter().map(|r| r.step).collect::<Vec<_>>(), [0, 3, 6]);
    let names = [
        "layer1.bias",
        "layer1.weight",
        "layer2.bias",
        "layer2.weight",
    ];
    for r in &recs {
        assert_eq!(
            r.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            names
        );
        assert!(r.loss.is_some_and(|l| l > 0.0));
        assert!(
            r.params
                .iter()
                .all(|p| p.update_ratio.is_some_and(|u| u > 0.0))
        );
        assert_eq!(r.taps.len(), 1);
    }

    // The tap's forward statistics are those of the tensor it tapped (its error is checked
    // against finite differences below).
    let z = z_at_step_3.unwrap();
    let tap = &recs[1].taps[0];
    assert_eq!(tap.shape, [5, 3]);
    let mean_z: f64 = z.iter().flatten().map(|&v| f64::from(v)).sum::<f64>() / 15.0;
    assert!((tap.mean - mean_z).abs() < 1e-6, "{} vs {mean_z}", tap.mean);
    assert!(tap.error_mean_abs > 0.0 && tap.error_rms >= tap.error_mean_abs);

    // Every VarMap name has a gradient histogram at every logged step, and nothing
    // else was written.
    let events = histogram_tags(dir.path());
    assert_eq!(
        events.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [0, 3, 6]
    );
    for (step, tags) in &events {
        for name in names {
            assert!(
                tags.contains(&format!("grad_hist/{name}")),
                "step {step}: {tags:?}"
            );
            assert!(tags.contains(&format!("weight_hist/{name}")), "step {step}");
        }
        assert!(tags.contains(&"error_hist/layer1".to_string()));
        assert!(tags.contains(&"act_hist/layer1".to_string()));
    }
}

#[test]
fn a_taps_error_matches_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let varmap = VarMap::new();
    let model = Tiny::new(&varmap);
    let mut watch = Watch::new(dir.path(), &varmap)
        .unwrap()
        .with_taps(&model.taps);
    let x = batch(0);
    let (out, z) = model.forward(&x);
    let grads = loss(&out).backward().unwrap();
    watch.observe(&grads).unwrap();
    watch.stepped().unwrap();
    let tap = watch.last().unwrap().taps[0].clone();

    // C as a function of z alone, the rest of the network fixed, differentiated by central
    // differences in f64 entry by entry.
    let w2 = varmap.data().lock().unwrap()["layer2.weight"]
        .as_tensor()
        .to_dtype(DType::F64)
        .unwrap();
    let b2 = varmap.data().lock().unwrap()["layer2.bias"]
        .as_tensor()
        .to_dtype(DType::F64)
        .unwrap();
    let cost = |z: &Tensor| -> f64 {
        let y = z
            .tanh()
            .unwrap()
            .matmul(&w2.t().unwrap())
            .unwrap()
            .broadcast_add(&b2)
            .unwrap();
        y.sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let z = z.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
    let h = 1e-6;
    let mut numeric = Vec::new();
    for i in 0..z.len() {
        for j in 0..z[i].len() {
            let at = |d: f64| {
                let mut zz = z.clone();
                zz[i][j] += d;
                cost(&Tensor::new(zz, &Device::Cpu).unwrap())
            };
            numeric.push((at(h) - at(-h)) / (2.0 * h));
        }
    }
    let mean_abs = numeric.iter().map(|v| v.abs()).sum::<f64>() / numeric.len() as f64;
    let rms = (numeric.iter().map(|v| v * v).sum::<f64>() / numeric.len() as f64).sqrt();
    assert!(
        (tap.error_mean_abs - mean_abs).abs() < 1e-5 * mean_abs.max(1e-3),
        "{} vs {mean_abs}",
        tap.error_mean_abs
    );
    assert!(
        (tap.error_rms - rms).abs() < 1e-5 * rms.max(1e-3),
        "{} vs {rms}",
        tap.error_rms
    );
}

#[test]
fn a_tap_of_sum_of_squares_has_error_twice_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let w = Var::new(&[[1f32, -2.0], [0.5, 4.0]], &Device::Cpu).unwrap();
    let taps = Taps::new();
    let mut watch = Watch::from_vars(dir.path(), [("w", w.clone())])
        .unwrap()
        .with_taps(&taps);
    let x = taps
        .tap("x", &w.as_tensor().affine(1.0, 1.0).unwrap())
        .unwrap();
    // loss = sum(x * x) with x = w + 1 = [[2, -1], [1.5, 5]]: dC/dx = 2x = [[4, -2], [3, 10]].
    let grads = x.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    watch.observe(&grads).unwrap();
    watch.stepped().unwrap();
    let tap = &watch.last().unwrap().taps[0];
    assert_eq!(tap.error_mean_abs, (4.0 + 2.0 + 3.0 + 10.0) / 4.0);
    assert_eq!(tap.error_rms, ((16.0 + 4.0 + 9.0 + 100.0) / 4.0f64).sqrt());
    assert_eq!(tap.mean, (2.0 - 1.0 + 1.5 + 5.0) / 4.0);
    // No optimizer ran: the weights did not move.
    assert_eq!(watch.last().unwrap().params[0].update_ratio, Some(0.0));
}

#[test]
fn a_watch_turned_off_records_nothing_and_taps_stay_idle() {
    let dir = tempfile::tempdir().unwrap();
    let varmap = VarMap::new();
    let model = Tiny::new(&varmap);
    let mut opt = SGD::new(varmap.all_vars(), 0.05).unwrap();
    let mut watch = Watch::new(dir.path(), &varmap)
        .unwrap()
        .every(0)
        .with_taps(&model.taps);
    for step in 0..3 {
        assert!(!model.taps.is_armed());
        let (out, _) = model.forward(&batch(step));
        watch.backward_step(&mut opt, &loss(&out)).unwrap();
    }
    assert!(watch.last().is_none());
    watch.finish().unwrap();
    assert!(records(dir.path()).is_empty());
    assert!(histogram_tags(dir.path()).is_empty());
}
