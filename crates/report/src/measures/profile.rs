//! Layer by layer: the weight gradient (the post's mean |dC/dW| and the Frobenius norm
//! ||dC/dW||, which carries the layer's size) and the error's root mean square, at
//! initialisation and over training; and what layer 1's input does to its gradient.

use vgrad_record::StepRecord;

use crate::Scenario;
use crate::document::Section;
use crate::format::sig;
use crate::measures::{Analysis, per_depth_tables};
use crate::stats::geo_mean;

/// Per layer 1..=L, a value at initialisation and over training.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layers {
    /// At step 0: geometric mean over every finished run.
    pub start: Vec<Option<f64>>,
    /// Over training: per trained run the geometric mean over its logged steps after
    /// step 0, then the geometric mean over the runs.
    pub training: Vec<Option<f64>>,
}

impl Layers {
    /// `pick` of every layer, at step 0 over `all` runs and over training over `trained`.
    fn of(
        all: &[&[StepRecord]],
        trained: &[&[StepRecord]],
        layers: usize,
        pick: impl Fn(&StepRecord, usize) -> Option<f64>,
    ) -> Self {
        let start = (0..layers)
            .map(|l| geo_mean(all.iter().filter_map(|s| pick(s.first()?, l))))
            .collect();
        let training = (0..layers)
            .map(|l| {
                let per_run = trained.iter().filter_map(|s| {
                    geo_mean(s.iter().filter(|r| r.step > 0).filter_map(|r| pick(r, l)))
                });
                geo_mean(per_run)
            })
            .collect();
        Self { start, training }
    }
}

/// A scenario's per-layer profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The post's mean |dC/dW| per layer, averaged over each trained run's logged steps
    /// (as its decay ratio), geometric mean over the runs.
    pub grad_mean_abs: Vec<Option<f64>>,
    /// ||dC/dW_l|| (Frobenius).
    pub grad_norm: Layers,
    /// The root mean square of dC/dz_l.
    pub error_rms: Layers,
    /// The weight gradient per unit of error, mean |dC/dW| / mean |dC/dz|, of layer 1
    /// over layer 2: below 1 where layer 1's input makes its gradient smaller than the
    /// same error would make layer 2's.
    pub input_effect: Layers,
}

impl Profile {
    /// The profile of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        let layers = scenario.point.config.layers;
        let (all, trained) = (scenario.all_steps(), scenario.trained_steps());
        let per_error = |s: &StepRecord, l: usize| {
            let x = s.layers.get(l)?;
            Some(x.grad_mean_abs / x.delta_mean_abs)
        };
        let input = |s: &StepRecord, _: usize| Some(per_error(s, 0)? / per_error(s, 1)?);
        Self {
            grad_mean_abs: (0..layers)
                .map(|l| {
                    geo_mean(
                        scenario
                            .trained()
                            .filter_map(|(_, s)| s.profile.grad_mean_abs.get(l).copied()),
                    )
                })
                .collect(),
            grad_norm: Layers::of(&all, &trained, layers, |s, l| {
                Some(s.layers.get(l)?.grad_l2)
            }),
            error_rms: Layers::of(&all, &trained, layers, |s, l| {
                Some(s.layers.get(l)?.delta_mean_sq?.sqrt())
            }),
            input_effect: if layers >= 3 {
                Layers::of(&all, &trained, 1, input)
            } else {
                Layers::default()
            },
        }
    }
}

/// A row of per-layer cells.
fn cells(values: &[Option<f64>]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.map_or(String::new(), |v| sig(v, 3)))
        .collect()
}

/// The appendix's per-layer tables, one per depth.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Per-layer profile");
    s.text(
        "Each layer's mean |dC/dW| (the post's measure, averaged over each trained run's logged \
         steps), its ||dC/dW|| (Frobenius norm, which carries the layer's size: layer 1 has 784 \
         inputs, the output layer 10 units) and the root mean square of its error dC/dz, at step \
         0 (every run) and over training (trained runs; the geometric mean over the logged steps \
         after step 0); geometric means over seeds. Layer 1 is the first hidden layer, L the \
         output layer.",
    );
    let tables = per_depth_tables(
        a,
        &a.with_finished(),
        &["measure"],
        |d| d,
        |i| {
            let p = &a.stats[i].profile;
            [
                ("mean abs(dC/dW), averaged", &p.grad_mean_abs),
                ("norm of dC/dW, step 0", &p.grad_norm.start),
                ("norm of dC/dW, training", &p.grad_norm.training),
                ("rms dC/dz, step 0", &p.error_rms.start),
                ("rms dC/dz, training", &p.error_rms.training),
            ]
            .into_iter()
            .map(|(name, values)| {
                std::iter::once(name.to_string())
                    .chain(cells(values))
                    .collect()
            })
            .collect()
        },
    );
    for t in tables {
        s.table(t);
    }
    s
}

/// Layer 1's input against its error: where layer 1's gradient per unit of error is
/// smaller than layer 2's over training, how much of that gap was there at step 0, and
/// what the second layer's input (the first layer's output) did meanwhile.
pub fn explanations(a: &Analysis) -> Vec<String> {
    let with: Vec<(usize, f64, f64)> = a
        .with_trained()
        .into_iter()
        .filter_map(|i| {
            let e = &a.stats[i].profile.input_effect;
            let (start, training) = ((*e.start.first()?)?, (*e.training.first()?)?);
            (training < 1.0).then_some((i, start, training))
        })
        .collect();
    let Some(&(i, start, training)) = with.iter().min_by(|x, y| x.2.total_cmp(&y.2)) else {
        return Vec::new();
    };
    let act = a.stats[i].activations.layers.first();
    let grows = act
        .and_then(|l| Some((l.act_mean_start?, l.act_mean_end?)))
        .map_or(String::new(), |(from, to)| {
            format!(
                "; meanwhile layer 2's input, layer 1's output, went from a mean of {} to {}, while layer 1's input, the pixels, stayed the same",
                sig(from, 2),
                sig(to, 2)
            )
        });
    vec![format!(
        "A weight gradient is the layer's input times its error. Under {} layer 1's gradient per unit of error is {} times layer 2's over training, and {} times at step 0{grows}. The post's decay ratio counts that gap as decay, though the error itself does not shrink by it.",
        a.named(i),
        sig(training, 2),
        sig(start, 2),
    )]
}
