//! A scenario's diagnostics across its seeds: how far each layer moves per step, what its
//! activations look like, the Jacobian's singular values and mean-field theory's chi_1
//! against the factor measured. Runs from before the probe recorded these have none of
//! them, and every field is then empty.

use vgrad_record::{Histogram, Spectrum, StepRecord};

/// The geometric mean of `values`; `None` for none. A zero makes it 0, a NaN NaN.
pub fn geo_mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    (n > 0).then(|| (sum / n as f64).exp())
}

/// The arithmetic mean of `values`; `None` for none.
fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Per run, the geometric mean of `f` over the logged steps that have it; then the
/// geometric mean of those over the runs that have any.
fn over_steps_and_seeds(
    runs: &[&[StepRecord]],
    f: impl Fn(&StepRecord) -> Option<f64>,
) -> Option<f64> {
    geo_mean(
        runs.iter()
            .filter_map(|steps| geo_mean(steps.iter().filter_map(&f))),
    )
}

/// `f` at the first logged step of each run that has it.
fn at_first(runs: &[&[StepRecord]], f: impl Fn(&StepRecord) -> Option<f64>) -> Vec<f64> {
    runs.iter().filter_map(|s| s.first().and_then(&f)).collect()
}

/// `f` at the last logged step of each run that has it.
fn at_last(runs: &[&[StepRecord]], f: impl Fn(&StepRecord) -> Option<f64>) -> Vec<f64> {
    runs.iter().filter_map(|s| s.last().and_then(&f)).collect()
}

/// The measured factor by which the mean square of dC/dz changes from layer `l + 1` to
/// layer `l` (0-based): delta_mean_sq[l] / delta_mean_sq[l + 1].
pub fn measured_factor(s: &StepRecord, l: usize) -> Option<f64> {
    let lower = s.layers.get(l)?.delta_mean_sq?;
    let upper = s.layers.get(l + 1)?.delta_mean_sq?;
    Some(lower / upper)
}

/// A histogram's share of values per bucket, averaged over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanHistogram {
    /// Upper edges of all buckets but the last, as in [`Histogram`].
    pub edges: Vec<f64>,
    /// Per bucket (`edges.len() + 1`), counts / num, mean over the seeds.
    pub share: Vec<f64>,
}

impl MeanHistogram {
    /// The mean share per bucket of `histograms` (those with values and the first one's
    /// edges); `None` when there is none.
    fn of<'a>(histograms: impl IntoIterator<Item = &'a Histogram>) -> Option<Self> {
        let mut edges: Option<&Vec<f64>> = None;
        let mut sum: Vec<f64> = Vec::new();
        let mut n = 0usize;
        for h in histograms {
            if h.num == 0 || h.counts.len() != h.edges.len() + 1 {
                continue;
            }
            match edges {
                None => {
                    edges = Some(&h.edges);
                    sum = vec![0.0; h.counts.len()];
                }
                Some(e) if *e != h.edges => continue,
                Some(_) => {}
            }
            for (s, &c) in sum.iter_mut().zip(&h.counts) {
                *s += c as f64 / h.num as f64;
            }
            n += 1;
        }
        Some(Self {
            edges: edges?.clone(),
            share: sum.iter().map(|s| s / n as f64).collect(),
        })
    }
}

/// One hidden layer's activations at the first and at the last logged step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerActivations {
    /// Standard deviation of the pre-activation at the first logged step, geometric mean
    /// over seeds.
    pub preact_std_start: Option<f64>,
    /// The same at the last logged step.
    pub preact_std_end: Option<f64>,
    /// Mean of the activation's output at the first logged step, mean over seeds.
    pub act_mean_start: Option<f64>,
    /// The same at the last logged step.
    pub act_mean_end: Option<f64>,
}

/// One hidden layer l: mean-field theory's chi_1 against the factor measured,
/// delta_mean_sq[l] / delta_mean_sq[l + 1].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerTheory {
    /// chi_1 at the first logged step, geometric mean over seeds.
    pub chi1_start: Option<f64>,
    /// The measured factor at the first logged step, geometric mean over seeds.
    pub measured_start: Option<f64>,
    /// chi_1, geometric mean over the logged steps and the seeds.
    pub chi1_mean: Option<f64>,
    /// The measured factor, geometric mean over the logged steps and the seeds.
    pub measured_mean: Option<f64>,
}

/// What the probe's diagnostics say about one scenario, over its finished runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics {
    /// Per layer 1..=L, the update-to-weight ratio ||dW|| / ||W||: per run the geometric
    /// mean over the logged steps, then the geometric mean over seeds; empty where no run
    /// recorded it.
    pub update_ratio: Vec<Option<f64>>,
    /// (step, the first layer's update ratio, geometric mean over seeds) per logged step
    /// that has it.
    pub update_first: Vec<(usize, f64)>,
    /// The same for the last layer.
    pub update_last: Vec<(usize, f64)>,
    /// Per hidden layer, its activations at the start and the end; empty without them.
    pub activations: Vec<LayerActivations>,
    /// Per hidden layer, the histogram of the activation's output at the first logged
    /// step; empty without them.
    pub act_hist: Vec<Option<MeanHistogram>>,
    /// Per layer 1..=L, the histogram of dC/dz at the first logged step; empty without
    /// them.
    pub delta_hist: Vec<Option<MeanHistogram>>,
    /// Per hidden layer l, the mean singular value of dz_(l+1)/dz_l at the first logged
    /// step, geometric mean over seeds; empty without it.
    pub layer_jacobian: Vec<Option<f64>>,
    /// The whole network's d logits / d z_1 at the first logged step: its mean, smallest
    /// and largest singular value, each a geometric mean over seeds.
    pub jacobian_start: Option<Spectrum>,
    /// The same at the last logged step it was probed at, with that step (the latest
    /// over the seeds).
    pub jacobian_end: Option<(usize, Spectrum)>,
    /// Per hidden layer, chi_1 against the measured factor; empty without them.
    pub theory: Vec<LayerTheory>,
}

/// `values` when any is `Some`, else empty.
fn unless_empty<T>(values: Vec<Option<T>>) -> Vec<Option<T>> {
    if values.iter().any(Option::is_some) {
        values
    } else {
        Vec::new()
    }
}

/// The geometric mean over seeds of each of a spectrum's values.
fn spectrum_mean(spectra: &[Spectrum]) -> Option<Spectrum> {
    Some(Spectrum {
        mean: geo_mean(spectra.iter().map(|s| s.mean))?,
        min: geo_mean(spectra.iter().map(|s| s.min))?,
        max: geo_mean(spectra.iter().map(|s| s.max))?,
    })
}

impl Diagnostics {
    /// The diagnostics of the logged steps of a scenario's finished runs (one slice per
    /// seed) of `layers` dense layers.
    pub fn of(runs: &[&[StepRecord]], layers: usize) -> Self {
        let hidden = layers.saturating_sub(1);
        let update_ratio = unless_empty(
            (0..layers)
                .map(|l| over_steps_and_seeds(runs, |s| s.layers.get(l)?.update_ratio))
                .collect(),
        );
        let update_curve = |l: usize| -> Vec<(usize, f64)> {
            let Some(first) = runs.first() else {
                return Vec::new();
            };
            (0..first.len())
                .filter_map(|i| {
                    let at = runs
                        .iter()
                        .filter_map(|r| r.get(i)?.layers.get(l)?.update_ratio);
                    geo_mean(at).map(|v| (first[i].step, v))
                })
                .collect()
        };
        let (update_first, update_last) = if update_ratio.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (update_curve(0), update_curve(layers - 1))
        };
        let activations: Vec<LayerActivations> = (0..hidden)
            .map(|l| {
                let std = |s: &StepRecord| Some(s.layers.get(l)?.preact?.std);
                let act = |s: &StepRecord| Some(s.layers.get(l)?.act?.mean);
                LayerActivations {
                    preact_std_start: geo_mean(at_first(runs, std)),
                    preact_std_end: geo_mean(at_last(runs, std)),
                    act_mean_start: mean(at_first(runs, act)),
                    act_mean_end: mean(at_last(runs, act)),
                }
            })
            .collect();
        let activations = if activations
            .iter()
            .any(|a| *a != LayerActivations::default())
        {
            activations
        } else {
            Vec::new()
        };
        let first_layers = |l: usize| runs.iter().filter_map(move |r| r.first()?.layers.get(l));
        let act_hist = unless_empty(
            (0..hidden)
                .map(|l| MeanHistogram::of(first_layers(l).filter_map(|x| x.act_hist.as_ref())))
                .collect(),
        );
        let delta_hist = unless_empty(
            (0..layers)
                .map(|l| MeanHistogram::of(first_layers(l).filter_map(|x| x.delta_hist.as_ref())))
                .collect(),
        );
        let layer_jacobian = unless_empty(
            (0..hidden)
                .map(|l| geo_mean(first_layers(l).filter_map(|x| x.jacobian.map(|j| j.mean))))
                .collect(),
        );
        let starts: Vec<Spectrum> = runs.iter().filter_map(|r| r.first()?.jacobian).collect();
        let ends: Vec<(usize, Spectrum)> = runs
            .iter()
            .filter_map(|r| r.iter().rev().find_map(|s| s.jacobian.map(|j| (s.step, j))))
            .collect();
        let end_step = ends.iter().map(|e| e.0).max();
        let ends: Vec<Spectrum> = ends.into_iter().map(|e| e.1).collect();
        let theory: Vec<LayerTheory> = (0..hidden)
            .map(|l| {
                let chi1 = |s: &StepRecord| s.layers.get(l)?.chi1;
                let measured = |s: &StepRecord| measured_factor(s, l);
                LayerTheory {
                    chi1_start: geo_mean(at_first(runs, chi1)),
                    measured_start: geo_mean(at_first(runs, measured)),
                    chi1_mean: over_steps_and_seeds(runs, chi1),
                    measured_mean: over_steps_and_seeds(runs, measured),
                }
            })
            .collect();
        let theory = if theory.iter().any(|t| *t != LayerTheory::default()) {
            theory
        } else {
            Vec::new()
        };
        Self {
            update_ratio,
            update_first,
            update_last,
            activations,
            act_hist,
            delta_hist,
            layer_jacobian,
            jacobian_start: spectrum_mean(&starts),
            jacobian_end: end_step.zip(spectrum_mean(&ends)),
            theory,
        }
    }

    /// Whether any run recorded the update-to-weight ratio.
    pub fn has_update(&self) -> bool {
        !self.update_ratio.is_empty()
    }

    /// Whether any run recorded the activations' distributions.
    pub fn has_activations(&self) -> bool {
        !self.activations.is_empty()
    }

    /// Whether any run probed a Jacobian.
    pub fn has_jacobian(&self) -> bool {
        !self.layer_jacobian.is_empty() || self.jacobian_start.is_some()
    }

    /// Whether any run recorded chi_1 or the mean square of dC/dz.
    pub fn has_theory(&self) -> bool {
        !self.theory.is_empty()
    }

    /// Whether any of the diagnostics is there.
    pub fn any(&self) -> bool {
        self.has_update()
            || self.has_activations()
            || self.has_jacobian()
            || self.has_theory()
            || !self.act_hist.is_empty()
            || !self.delta_hist.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{layer, step};

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() <= 1e-12 * b.abs())
    }

    #[test]
    fn records_without_the_new_fields_have_no_diagnostics() {
        let run = vec![step(0, vec![layer(1), layer(2), layer(3)])];
        let d = Diagnostics::of(&[&run, &run], 3);
        assert_eq!(d, Diagnostics::default());
        assert!(!d.any());
        assert_eq!(Diagnostics::of(&[], 3), Diagnostics::default());
    }

    #[test]
    fn update_ratios_are_geometric_means_over_steps_then_seeds() {
        // Layer 1 of seed A: 1e-4 and 1e-2 (geometric mean 1e-3); of seed B: 4e-3 at both
        // steps; over seeds sqrt(1e-3 * 4e-3) = 2e-3. Layer 2 has it at one step only.
        let with = |step_no, r1: f64, r2: Option<f64>| {
            let mut a = layer(1);
            a.update_ratio = Some(r1);
            let mut b = layer(2);
            b.update_ratio = r2;
            step(step_no, vec![a, b])
        };
        let seed_a = vec![with(0, 1e-4, Some(5e-3)), with(200, 1e-2, None)];
        let seed_b = vec![with(0, 4e-3, Some(2e-3)), with(200, 4e-3, None)];
        let d = Diagnostics::of(&[&seed_a, &seed_b], 2);
        assert!(close(d.update_ratio[0], 2e-3), "{:?}", d.update_ratio);
        assert!(close(d.update_ratio[1], 1e-5f64.sqrt()));
        // Per step, over seeds: sqrt(1e-4 * 4e-3) = 6.32e-4 at step 0, sqrt(4e-5) at 200.
        assert_eq!(d.update_first.len(), 2);
        assert_eq!(d.update_first[1].0, 200);
        assert!((d.update_first[0].1 - 4e-7f64.sqrt()).abs() < 1e-15);
        assert!((d.update_first[1].1 - 4e-5f64.sqrt()).abs() < 1e-15);
        assert_eq!(
            d.update_last.len(),
            1,
            "the last layer has it at step 0 only"
        );
        assert!(d.has_update() && !d.has_theory() && !d.has_jacobian());
    }

    #[test]
    fn the_measured_factor_is_the_ratio_of_mean_squares_against_chi1() {
        // Three layers: delta_mean_sq 8, 2, 1 at step 0 (factors 4 and 2), 1, 1, 1 at the
        // last step (factors 1 and 1); chi_1 0.5 then 2 for layer 1.
        let with = |step_no, sq: [f64; 3], chi1: [Option<f64>; 2]| {
            let layers = (0..3)
                .map(|l| {
                    let mut x = layer(l + 1);
                    x.delta_mean_sq = Some(sq[l]);
                    x.chi1 = chi1.get(l).copied().flatten();
                    x
                })
                .collect();
            step(step_no, layers)
        };
        let run = vec![
            with(0, [8.0, 2.0, 1.0], [Some(0.5), Some(3.0)]),
            with(200, [1.0, 1.0, 1.0], [Some(2.0), Some(3.0)]),
        ];
        assert_eq!(measured_factor(&run[0], 0), Some(4.0));
        assert_eq!(
            measured_factor(&run[0], 2),
            None,
            "the output has no layer above"
        );
        let d = Diagnostics::of(&[&run], 3);
        assert_eq!(d.theory.len(), 2, "hidden layers only");
        let t = d.theory[0];
        assert!(close(t.chi1_start, 0.5) && close(t.measured_start, 4.0));
        assert!(close(t.chi1_mean, 1.0) && close(t.measured_mean, 2.0));
        let t = d.theory[1];
        assert!(close(t.chi1_mean, 3.0) && close(t.measured_mean, 2f64.sqrt()));
    }

    #[test]
    fn jacobians_activations_and_histograms_at_the_first_and_last_step() {
        let spectrum = |mean, min, max| Spectrum { mean, min, max };
        let dist = |mean, std| vgrad_record::Distribution {
            mean,
            std,
            p15: 0.0,
            p50: 0.0,
            p85: 0.0,
        };
        let with = |step_no, j: Option<Spectrum>, std: f64, act_mean: f64, h: &[f32]| {
            let mut a = layer(1);
            a.jacobian = j;
            a.preact = Some(dist(0.0, std));
            a.act = Some(dist(act_mean, 1.0));
            a.act_hist = Some(Histogram::over(h, vec![0.0, 1.0]));
            let mut s = step(step_no, vec![a, layer(2)]);
            s.jacobian = j;
            s
        };
        let seed_a = vec![
            with(0, Some(spectrum(2.0, 1.0, 4.0)), 1.0, 0.5, &[-1.0, 0.5]),
            with(100, Some(spectrum(1.0, 1.0, 1.0)), 2.0, 0.1, &[]),
            with(200, None, 3.0, 0.2, &[]),
        ];
        let seed_b = vec![
            with(
                0,
                Some(spectrum(8.0, 4.0, 16.0)),
                4.0,
                -0.5,
                &[0.5, 0.5, 0.5, 2.0],
            ),
            with(100, Some(spectrum(4.0, 1.0, 9.0)), 2.0, 0.1, &[]),
            with(200, None, 12.0, 0.4, &[]),
        ];
        let d = Diagnostics::of(&[&seed_a, &seed_b], 2);
        assert!(close(d.layer_jacobian[0], 4.0));
        let near = |a: Spectrum, b: Spectrum| {
            close(Some(a.mean), b.mean) && close(Some(a.min), b.min) && close(Some(a.max), b.max)
        };
        assert!(near(d.jacobian_start.unwrap(), spectrum(4.0, 2.0, 8.0)));
        let (end_step, end) = d.jacobian_end.unwrap();
        assert!(
            end_step == 100 && near(end, spectrum(2.0, 1.0, 3.0)),
            "{end:?}"
        );
        let a = d.activations[0];
        assert!(close(a.preact_std_start, 2.0) && close(a.preact_std_end, 6.0));
        assert!(close(a.act_mean_start, 0.0) && close(a.act_mean_end, 0.3));
        // Buckets (-inf, 0], (0, 1], (1, inf): seed A 1/2, 1/2, 0; seed B 0, 3/4, 1/4.
        let h = d.act_hist[0].as_ref().unwrap();
        assert_eq!(h.edges, vec![0.0, 1.0]);
        assert_eq!(h.share, vec![0.25, 0.625, 0.125]);
        assert!(d.delta_hist.is_empty() && d.theory.is_empty() && !d.has_update());
    }
}
