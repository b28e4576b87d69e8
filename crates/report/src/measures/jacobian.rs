//! The singular values of the Jacobians the error is multiplied by: of each hidden layer
//! to the next, dz_(l+1)/dz_l, and of the whole network, d logits / d z_1, on the probe's
//! fixed test images. Batch-norm networks have none (see
//! `RunConfig::probes_jacobian_at`).

use vgrad_record::{Norm, Spectrum, StepRecord};

use crate::Scenario;
use crate::document::{Section, Table};
use crate::format::sig;
use crate::measures::{Analysis, per_depth_tables};
use crate::stats::geo_mean;

/// A singular value below this share of the largest is rounding noise: the network
/// computes in float32.
pub const PRECISION: f64 = f32::EPSILON as f64;

/// The whole network's spectrum over runs: its mean and largest singular value
/// (geometric means), and its smallest where every run measured it above precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkSpectrum {
    /// Mean singular value.
    pub mean: f64,
    /// Largest singular value.
    pub max: f64,
    /// Smallest, `None` where some run's is below precision.
    pub min: Option<f64>,
    /// Runs whose smallest singular value is below precision.
    pub below_precision: usize,
    /// Runs.
    pub runs: usize,
}

impl NetworkSpectrum {
    fn of(spectra: &[Spectrum]) -> Option<Self> {
        let finite: Vec<&Spectrum> = spectra
            .iter()
            .filter(|s| s.max.is_finite() && s.max > 0.0)
            .collect();
        let below = finite.iter().filter(|s| s.min <= PRECISION * s.max).count();
        Some(Self {
            mean: geo_mean(finite.iter().map(|s| s.mean))?,
            max: geo_mean(finite.iter().map(|s| s.max))?,
            min: if below == 0 {
                geo_mean(finite.iter().map(|s| s.min))
            } else {
                None
            },
            below_precision: below,
            runs: finite.len(),
        })
    }

    /// The smallest singular value as a cell.
    pub fn min_cell(&self) -> String {
        match self.min {
            Some(m) => sig(m, 3),
            None => format!(
                "below precision ({} of {} runs)",
                self.below_precision, self.runs
            ),
        }
    }
}

/// A scenario's Jacobian spectra.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Jacobians {
    /// Per hidden layer l, the mean singular value of dz_(l+1)/dz_l at step 0, geometric
    /// mean over every run; empty without it.
    pub layer_mean: Vec<Option<f64>>,
    /// The whole network's at step 0, over every run.
    pub start: Option<NetworkSpectrum>,
    /// The whole network's at the last step it was probed at (the latest over the trained
    /// runs), over the trained runs.
    pub end: Option<(usize, NetworkSpectrum)>,
    /// Whether the network has batch norm, whose Jacobians the probe leaves out.
    pub batch_norm: bool,
}

impl Jacobians {
    /// The spectra of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        if scenario.point.config.norm == Norm::Batch {
            // An evaluation-mode Jacobian (records of an older probe have them) beside the
            // training-mode errors would describe another network.
            return Self {
                batch_norm: true,
                ..Self::default()
            };
        }
        let (all, trained) = (scenario.all_steps(), scenario.trained_steps());
        let hidden = scenario.point.config.layers.saturating_sub(1);
        let layer_mean: Vec<Option<f64>> = (0..hidden)
            .map(|l| {
                geo_mean(
                    all.iter()
                        .filter_map(|s| Some(s.first()?.layers.get(l)?.jacobian?.mean)),
                )
            })
            .collect();
        let starts: Vec<Spectrum> = all.iter().filter_map(|s| s.first()?.jacobian).collect();
        let ends: Vec<(usize, Spectrum)> = trained
            .iter()
            .filter_map(|s: &&[StepRecord]| {
                s.iter().rev().find_map(|r| r.jacobian.map(|j| (r.step, j)))
            })
            .collect();
        let end_step = ends.iter().map(|e| e.0).max();
        let ends: Vec<Spectrum> = ends.into_iter().map(|e| e.1).collect();
        Self {
            layer_mean: if layer_mean.iter().any(Option::is_some) {
                layer_mean
            } else {
                Vec::new()
            },
            start: NetworkSpectrum::of(&starts),
            end: end_step.filter(|&s| s > 0).zip(NetworkSpectrum::of(&ends)),
            batch_norm: false,
        }
    }
}

/// The appendix's tables of the spectra.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Jacobian singular values");
    let with: Vec<usize> = a
        .with_finished()
        .into_iter()
        .filter(|&i| a.stats[i].jacobian.start.is_some())
        .collect();
    let batch_norm = a
        .with_finished()
        .iter()
        .any(|&i| a.stats[i].jacobian.batch_norm);
    if with.is_empty() && !batch_norm {
        return s;
    }
    s.text(format!(
        "Back-propagation multiplies the error by the transposed Jacobians, so their singular \
         values are the factors by which it shrinks or grows in each direction; dynamical \
         isometry (Saxe et al. 2013; Pennington et al. 2017) asks for all of them near 1. They \
         are taken on the first test images, the same for every run, at the network's \
         evaluation pass: each singular value averaged over the images, then a geometric mean \
         over seeds (step 0: every run; the last probed step: trained runs). A smallest singular \
         value under {} times the largest is rounding noise of float32 arithmetic and shows as \
         \"below precision\" (a ReLU unit that is off for an image removes a direction \
         exactly).{}",
        sig(PRECISION, 2),
        if batch_norm {
            " Networks with batch norm are left out: their Jacobian at evaluation reads the running statistics, while training, and every error measured here, normalises by the batch's own (at step 0 the evaluation-mode Jacobian is the plain network's)."
        } else {
            ""
        }
    ));
    if with.is_empty() {
        return s;
    }
    let mut t = Table::new([
        "scenario",
        "mean, step 0",
        "min",
        "max",
        "last probed step",
        "mean",
        "min",
        "max",
    ]);
    for &i in &with {
        let j = &a.stats[i].jacobian;
        let Some(start) = j.start else { continue };
        let mut row = vec![
            a.label(i),
            sig(start.mean, 3),
            start.min_cell(),
            sig(start.max, 3),
        ];
        match j.end {
            Some((step, e)) => row.extend([
                step.to_string(),
                sig(e.mean, 3),
                e.min_cell(),
                sig(e.max, 3),
            ]),
            None => row.extend([
                "step 0 only".into(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
        t.row(row);
    }
    s.text("The whole network's Jacobian d logits / d z_1:");
    s.table(t);
    let with_layers: Vec<usize> = with
        .iter()
        .copied()
        .filter(|&i| !a.stats[i].jacobian.layer_mean.is_empty())
        .collect();
    if !with_layers.is_empty() {
        s.text("Mean singular value of dz_(l+1)/dz_l at step 0; column l is the Jacobian from hidden layer l to layer l + 1 (L is the output layer's logits):");
    }
    let tables = per_depth_tables(
        a,
        &with_layers,
        &[],
        |d| d - 1,
        |i| {
            let means = &a.stats[i].jacobian.layer_mean;
            vec![
                means
                    .iter()
                    .map(|v| v.map_or(String::new(), |v| sig(v, 3)))
                    .collect(),
            ]
        },
    );
    for t in tables {
        s.table(t);
    }
    s
}

/// How far the whole network is from an isometry at step 0: the scenarios nearest and
/// farthest (by how far the mean singular value is from 1), each with its spread where it
/// is measured.
pub fn explanations(a: &Analysis) -> Vec<String> {
    let with: Vec<(usize, NetworkSpectrum)> = a
        .with_finished()
        .into_iter()
        .filter_map(|i| a.stats[i].jacobian.start.map(|j| (i, j)))
        .collect();
    let far = |j: &NetworkSpectrum| j.mean.ln().abs();
    let (Some(near), Some(farthest)) = (
        with.iter().min_by(|x, y| far(&x.1).total_cmp(&far(&y.1))),
        with.iter().max_by(|x, y| far(&x.1).total_cmp(&far(&y.1))),
    ) else {
        return Vec::new();
    };
    let spread = |j: &NetworkSpectrum| match j.min {
        Some(min) => format!("largest over smallest {}", sig(j.max / min, 2)),
        None => "its smallest below precision".into(),
    };
    let describe = |(i, j): &(usize, NetworkSpectrum)| {
        format!(
            "{} (mean singular value {}, {})",
            a.named(*i),
            sig(j.mean, 2),
            spread(j)
        )
    };
    if near.0 == farthest.0 {
        let (i, j) = near;
        return vec![format!(
            "At step 0 the network's Jacobian d logits / d z_1 under {} has a mean singular value of {} ({}).",
            a.named(*i),
            sig(j.mean, 2),
            spread(j)
        )];
    }
    vec![format!(
        "At step 0 the network's Jacobian d logits / d z_1 comes nearest to an isometry (every singular value 1) under {} and is farthest from it under {}.",
        describe(near),
        describe(farthest)
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::named;

    #[test]
    fn rounding_noise_is_shown_as_below_precision_and_batch_norm_is_left_out() {
        let (sweep, mut scenarios) = named(&[
            ("sigmoid", "activation = \"sigmoid\""),
            (
                "sigmoid, batch norm",
                "activation = \"sigmoid\"\nnorm = \"batch\"",
            ),
        ]);
        // Seed 1's smallest singular value is under float32's precision of its largest.
        let set_min = |s: &mut crate::Scenario, seed: usize, min: f64| {
            for step in &mut s.runs[seed].steps {
                step.jacobian = Some(Spectrum {
                    mean: 0.5,
                    min,
                    max: 3.0,
                });
            }
        };
        set_min(&mut scenarios[0], 1, 1e-7);
        // Records of an older probe gave batch-norm networks evaluation-mode Jacobians.
        set_min(&mut scenarios[1], 0, 0.01);
        let a = Analysis::new(&sweep, &scenarios);
        let plain = a.stats[0].jacobian.start.unwrap();
        assert_eq!(plain.min_cell(), "below precision (1 of 2 runs)");
        assert!(a.stats[1].jacobian.start.is_none() && a.stats[1].jacobian.layer_mean.is_empty());
        let text = section(&a).markdown(2, "");
        assert!(
            text.contains("Networks with batch norm are left out"),
            "{text}"
        );
        assert!(!text.contains("| sigmoid, batch norm |"), "{text}");
        // Above precision the smallest is a number: the geometric mean of seed 0's 0.01
        // and seed 1's 1e-4.
        set_min(&mut scenarios[0], 1, 1e-4);
        let a = Analysis::new(&sweep, &scenarios);
        assert_eq!(a.stats[0].jacobian.start.unwrap().min_cell(), "0.00100");
        let text = explanations(&a).join(" ");
        assert!(text.contains("largest over smallest 3000"), "{text}");
    }
}
