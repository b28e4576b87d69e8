//! What each hidden layer's activation reads and gives: the spread of its input and the
//! mean of its output at the start and the end of training, the last hidden layer's
//! input over training (Ioffe & Szegedy 2015, Figure 1), and the distributions of the
//! activations and of the error at step 0 (Glorot & Bengio 2010, Figures 6 and 7).

use vgrad_record::{Distribution, Histogram, StepRecord};

use crate::Scenario;
use crate::document::Section;
use crate::format::sig;
use crate::measures::{Analysis, per_depth_tables};
use crate::stats::{geo_mean, mean};

/// One hidden layer's activations at the first and at the last logged step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerActivations {
    /// Standard deviation of the pre-activation at step 0, geometric mean over every run.
    pub preact_std_start: Option<f64>,
    /// The same at the last logged step, over the trained runs.
    pub preact_std_end: Option<f64>,
    /// Mean of the activation's output at step 0, mean over every run.
    pub act_mean_start: Option<f64>,
    /// The same at the last logged step, over the trained runs.
    pub act_mean_end: Option<f64>,
}

/// A histogram's share of values per bucket, averaged over runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanHistogram {
    /// Upper edges of all buckets but the last, as in [`Histogram`].
    pub edges: Vec<f64>,
    /// Per bucket (`edges.len() + 1`), count / num, mean over the runs.
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

/// A scenario's activations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activations {
    /// Per hidden layer; empty where no run recorded them.
    pub layers: Vec<LayerActivations>,
    /// Per logged step, the 15th, 50th and 85th percentiles of the last hidden layer's
    /// activation input, mean over the trained runs; empty without them.
    pub last_input: Vec<(usize, [f64; 3])>,
    /// Per hidden layer, the activation's output at step 0 over every run.
    pub act_hist: Vec<Option<MeanHistogram>>,
    /// Per layer 1..=L, dC/dz at step 0 over every run.
    pub delta_hist: Vec<Option<MeanHistogram>>,
}

impl Activations {
    /// The activations of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        let (all, trained) = (scenario.all_steps(), scenario.trained_steps());
        let depth = scenario.point.config.layers;
        let hidden = depth.saturating_sub(1);
        let first = |l: usize| all.iter().filter_map(move |s| s.first()?.layers.get(l));
        let last = |l: usize| trained.iter().filter_map(move |s| s.last()?.layers.get(l));
        let layers: Vec<LayerActivations> = (0..hidden)
            .map(|l| LayerActivations {
                preact_std_start: geo_mean(first(l).filter_map(|x| Some(x.preact?.std))),
                preact_std_end: geo_mean(last(l).filter_map(|x| Some(x.preact?.std))),
                act_mean_start: mean(first(l).filter_map(|x| Some(x.act?.mean))),
                act_mean_end: mean(last(l).filter_map(|x| Some(x.act?.mean))),
            })
            .collect();
        let any = layers.iter().any(|l| *l != LayerActivations::default());
        let last_input = last_input(&trained, hidden);
        let act_hist: Vec<Option<MeanHistogram>> = (0..hidden)
            .map(|l| MeanHistogram::of(first(l).filter_map(|x| x.act_hist.as_ref())))
            .collect();
        let delta_hist: Vec<Option<MeanHistogram>> = (0..depth)
            .map(|l| MeanHistogram::of(first(l).filter_map(|x| x.delta_hist.as_ref())))
            .collect();
        let some = |v: Vec<Option<MeanHistogram>>| {
            if v.iter().any(Option::is_some) {
                v
            } else {
                Vec::new()
            }
        };
        Self {
            layers: if any { layers } else { Vec::new() },
            last_input,
            act_hist: some(act_hist),
            delta_hist: some(delta_hist),
        }
    }
}

/// The last hidden layer's input percentiles per logged step, mean over `runs`.
fn last_input(runs: &[&[StepRecord]], hidden: usize) -> Vec<(usize, [f64; 3])> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    if hidden == 0 {
        return Vec::new();
    }
    first
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let at: Vec<Distribution> = runs
                .iter()
                .filter_map(|s| s.get(i)?.layers.get(hidden - 1)?.preact)
                .collect();
            let m = |f: fn(&Distribution) -> f64| mean(at.iter().map(f));
            Some((r.step, [m(|p| p.p15)?, m(|p| p.p50)?, m(|p| p.p85)?]))
        })
        .collect()
}

/// Reads one statistic of a layer's activations.
type Pick = fn(&LayerActivations) -> Option<f64>;

/// The appendix's table of the activations, one per depth.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Activations");
    let with: Vec<usize> = a
        .with_finished()
        .into_iter()
        .filter(|&i| !a.stats[i].activations.layers.is_empty())
        .collect();
    if with.is_empty() {
        return s;
    }
    s.text(
        "What each hidden layer's activation reads and gives, over its units and a logged \
         batch's examples: the standard deviation of the pre-activation (after the \
         normalisation, where there is one; geometric mean over seeds) and the mean of the \
         activation's output (mean over seeds), at step 0 (every run) and at the last logged \
         step (trained runs). Columns are the hidden layers.",
    );
    let rows: [(&str, Pick); 4] = [
        ("pre-activation std, step 0", |x| x.preact_std_start),
        ("pre-activation std, last step", |x| x.preact_std_end),
        ("activation mean, step 0", |x| x.act_mean_start),
        ("activation mean, last step", |x| x.act_mean_end),
    ];
    let tables = per_depth_tables(
        a,
        &with,
        &["measure"],
        |d| d - 1,
        |i| {
            let layers = &a.stats[i].activations.layers;
            rows.iter()
                .map(|(name, pick)| {
                    std::iter::once(name.to_string())
                        .chain(
                            layers
                                .iter()
                                .map(|x| pick(x).map_or(String::new(), |v| sig(v, 3))),
                        )
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
