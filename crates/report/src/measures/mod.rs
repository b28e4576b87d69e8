//! One module per measure: each holds its statistics over a scenario's runs, its table,
//! its figure and its sentences. [`Analysis`] is what they all read.

pub mod activations;
pub mod comparison;
pub mod decay;
pub mod depth_fit;
pub mod isometry;
pub mod jacobian;
pub mod learning_rate;
pub mod mean_field;
pub mod outcome;
pub mod papers;
pub mod phase;
pub mod profile;
pub mod regime;
pub mod saturation;
pub mod through_time;
pub mod updates;
pub mod width;

use vgrad_record::StepRecord;
use vgrad_sweep::Sweep;

use crate::Scenario;
use crate::document::Table;
use crate::format::bold;

/// Everything one scenario's runs say, measure by measure.
#[derive(Debug, Clone)]
pub struct ScenarioStats {
    /// How its runs ended, and the trained runs' accuracy.
    pub outcome: outcome::Outcomes,
    /// The back-propagated error's per-layer factor and regime.
    pub regime: regime::RegimeStats,
    /// The reference post's weight-gradient decay ratio.
    pub decay: decay::Decay,
    /// Per-layer gradients and errors.
    pub profile: profile::Profile,
    /// Mean-field theory and the chain of derivatives.
    pub mean_field: mean_field::MeanField,
    /// Dead and saturated units.
    pub saturation: saturation::Saturation,
    /// What the activations read and give.
    pub activations: activations::Activations,
    /// How far the weights move per step.
    pub updates: updates::Updates,
    /// Jacobian spectra.
    pub jacobian: jacobian::Jacobians,
    /// The hidden chain's spectrum and how fast the network learns (the isometry sweep's).
    pub isometry: isometry::IsometryStats,
}

impl ScenarioStats {
    /// The statistics of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        Self {
            outcome: outcome::Outcomes::of(scenario),
            regime: regime::RegimeStats::of(scenario),
            decay: decay::Decay::of(scenario),
            profile: profile::Profile::of(scenario),
            mean_field: mean_field::MeanField::of(scenario),
            saturation: saturation::Saturation::of(scenario),
            activations: activations::Activations::of(scenario),
            updates: updates::Updates::of(scenario),
            jacobian: jacobian::Jacobians::of(scenario),
            isometry: isometry::IsometryStats::of(scenario),
        }
    }
}

/// A sweep's scenarios with their statistics: what every section and sentence reads.
pub struct Analysis<'a> {
    /// The sweep.
    pub sweep: &'a Sweep,
    /// Its grid points with their runs.
    pub scenarios: &'a [Scenario],
    /// Each scenario's statistics.
    pub stats: Vec<ScenarioStats>,
    /// Each kind of network over its depths, by how well it fits its training data.
    pub depth_fit: Vec<depth_fit::Group>,
    /// The phase diagram the sweep's grid makes, if it makes one (the edge-of-chaos
    /// sweep's), with its theory.
    pub phase: Option<phase::PhaseMap>,
    /// Each scenario's measures through time (empty records for networks that are not
    /// recurrent).
    pub time: Vec<through_time::TimeStats>,
}

impl<'a> Analysis<'a> {
    /// The statistics of `scenarios`.
    pub fn new(sweep: &'a Sweep, scenarios: &'a [Scenario]) -> Self {
        let mut a = Self {
            sweep,
            scenarios,
            stats: scenarios.iter().map(ScenarioStats::of).collect(),
            depth_fit: Vec::new(),
            phase: phase::PhaseMap::of(scenarios),
            time: scenarios.iter().map(through_time::TimeStats::of).collect(),
        };
        a.depth_fit = depth_fit::of(&a);
        a
    }

    /// Scenario `i`'s label, as tables show it.
    pub fn label(&self, i: usize) -> String {
        self.scenarios[i].point.label()
    }

    /// Scenario `i`'s label, as sentences show it.
    pub fn named(&self, i: usize) -> String {
        bold(&self.label(i))
    }

    /// The indices of the scenarios with a trained run.
    pub fn with_trained(&self) -> Vec<usize> {
        (0..self.stats.len())
            .filter(|&i| self.stats[i].outcome.trained() > 0)
            .collect()
    }

    /// The indices of the scenarios with a finished run.
    pub fn with_finished(&self) -> Vec<usize> {
        (0..self.stats.len())
            .filter(|&i| self.stats[i].outcome.finished() > 0)
            .collect()
    }

    /// What the error factor steps across: `layer`, or `time step` in a recurrent sweep.
    pub fn unit(&self) -> &'static str {
        if through_time::applies(self) {
            "time step"
        } else {
            "layer"
        }
    }

    /// How many scenarios a sentence names one by one before it counts them instead.
    pub const NAMED_IN_A_SENTENCE: usize = 6;
}

/// Per logged step (those of the first run), `average` over the runs of `value` at that
/// step; steps where it gives `None` are left out.
pub fn per_step(
    runs: &[&[StepRecord]],
    average: fn(Vec<f64>) -> Option<f64>,
    value: impl Fn(&StepRecord) -> Option<f64>,
) -> Vec<(usize, f64)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let at: Vec<f64> = runs.iter().filter_map(|s| value(s.get(i)?)).collect();
            average(at).map(|v| (r.step, v))
        })
        .collect()
}

/// One table per depth of the scenarios `with`: a scenario column, the columns `head`
/// names, then one per layer (`layers(depth)` of them, numbered from 1); `rows` gives a
/// scenario's rows (their cells after the scenario's label).
pub fn per_depth_tables(
    a: &Analysis,
    with: &[usize],
    head: &[&str],
    layers: fn(usize) -> usize,
    rows: impl Fn(usize) -> Vec<Vec<String>>,
) -> Vec<Table> {
    let depth = |i: usize| a.scenarios[i].point.config.layers;
    let mut depths: Vec<usize> = with.iter().map(|&i| depth(i)).collect();
    depths.sort_unstable();
    depths.dedup();
    depths
        .into_iter()
        .map(|d| {
            let mut columns: Vec<String> = std::iter::once("scenario".to_string())
                .chain(head.iter().map(|h| h.to_string()))
                .collect();
            columns.extend((1..=layers(d)).map(|l| l.to_string()));
            let mut t = Table::new(columns);
            for &i in with.iter().filter(|&&i| depth(i) == d) {
                for cells in rows(i) {
                    t.row(std::iter::once(a.label(i)).chain(cells));
                }
            }
            t
        })
        .collect()
}
