//! What width changes: a sweep whose scenarios differ in the hidden layers' width (and
//! come in groups that differ in nothing else) reads each finding of its narrowest
//! network, as a class, at every width, and says which hold.

use vgrad_record::Regime;

use crate::document::{Section, Table};
use crate::format::{accuracy, and_list, bold, geometric, sig, thousands};
use crate::measures::mean_field::measured_over_predicted;
use crate::measures::{Analysis, regime::verb};
use crate::setting::{groups, varies};
use crate::stats::min_max;

/// The axis a width sweep varies.
const WIDTH: &str = "width";

/// A finding of the narrowest network that a wider one may keep or lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Whether the runs train.
    Trains,
    /// The error's regime at initialisation.
    RegimeAtStart,
    /// The error's regime over training (trained runs).
    RegimeInTraining,
    /// Whether mean-field theory predicts the regime at initialisation.
    TheoryAtStart,
    /// The regime the post's decay ratio reads (per layer, over the logged steps), beside
    /// the error's over training.
    PostRatio,
}

impl Finding {
    /// Every finding, in the order the report lists them.
    pub const ALL: [Finding; 5] = [
        Self::Trains,
        Self::RegimeAtStart,
        Self::RegimeInTraining,
        Self::TheoryAtStart,
        Self::PostRatio,
    ];

    /// The finding's name in a table.
    fn name(self) -> &'static str {
        match self {
            Self::Trains => "runs train",
            Self::RegimeAtStart => "error at initialisation",
            Self::RegimeInTraining => "error over training",
            Self::TheoryAtStart => "mean-field theory at initialisation",
            Self::PostRatio => "the post's ratio reads, over training",
        }
    }
}

/// How many of a scenario's finished runs trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trains {
    /// Every finished run.
    All,
    /// Some, not all.
    Some,
    /// None.
    None,
}

/// What a finding reads at one width: a class, never a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// [`Finding::Trains`].
    Trains(Trains),
    /// [`Finding::RegimeAtStart`] or [`Finding::RegimeInTraining`].
    Regime(Regime),
    /// [`Finding::TheoryAtStart`]: whether the predicted regime is the measured one.
    Predicted(bool),
    /// [`Finding::PostRatio`]: the regime the post's ratio reads, and the error's.
    PostRatio {
        /// The regime of the ratio's per-layer factor, ratio^(-1 / (L - 1)).
        reads: Regime,
        /// The error factor's regime over training.
        error: Regime,
    },
}

impl Finding {
    /// What a sentence about the finding is about.
    fn subject(self) -> &'static str {
        match self {
            Self::Trains => "the runs",
            Self::RegimeAtStart | Self::RegimeInTraining => "the error",
            Self::TheoryAtStart => "mean-field theory",
            Self::PostRatio => "the post's decay ratio",
        }
    }
}

impl Reading {
    /// What the subject of `finding` does, as a verb phrase.
    fn predicate(self, finding: Finding) -> String {
        match (self, finding) {
            (Self::Trains(Trains::All), _) => "all train".into(),
            (Self::Trains(Trains::Some), _) => "do not all train".into(),
            (Self::Trains(Trains::None), _) => "none train".into(),
            (Self::Regime(r), Finding::RegimeAtStart) => {
                format!("{} at initialisation", verb(r))
            }
            (Self::Regime(r), _) => format!("{} over training", verb(r)),
            (Self::Predicted(true), _) => "predicts the regime at initialisation".into(),
            (Self::Predicted(false), _) => "mispredicts the regime at initialisation".into(),
            (Self::PostRatio { reads, error }, _) if reads == error => {
                "reads the error's regime over training".into()
            }
            (Self::PostRatio { .. }, _) => "misreads the error's regime over training".into(),
        }
    }

    /// Whether two readings are the same class: for the post's ratio, whether it reads the
    /// error's regime (not which regimes those are, which the error's own findings give).
    fn same_class(self, other: Self) -> bool {
        match (self, other) {
            (Self::PostRatio { reads, error }, Self::PostRatio { reads: r, error: e }) => {
                (reads == error) == (r == e)
            }
            _ => self == other,
        }
    }

    /// The reading in a table cell.
    fn cell(self) -> String {
        match self {
            Self::Trains(Trains::All) => "all trained".into(),
            Self::Trains(Trains::Some) => "some trained".into(),
            Self::Trains(Trains::None) => "none trained".into(),
            Self::Regime(r) => r.to_string(),
            Self::Predicted(true) => "predicted".into(),
            Self::Predicted(false) => "mispredicted".into(),
            Self::PostRatio { reads, error } if reads == error => format!("{reads}, as the error"),
            Self::PostRatio { reads, error } => format!("{reads}; the error {error}"),
        }
    }
}

/// Scenarios that differ only in width, narrowest first.
#[derive(Debug, Clone, PartialEq)]
pub struct WidthGroup {
    /// Their label without the width.
    pub label: String,
    /// `(width, scenario index)`, narrowest first.
    pub members: Vec<(usize, usize)>,
}

/// The sweep's groups of scenarios that differ only in width, where it has them: more
/// than one width, and every group at the same widths.
pub fn width_groups(a: &Analysis) -> Option<Vec<WidthGroup>> {
    if !varies(a.scenarios, |c| c.width) || super::through_time::applies(a) {
        return None;
    }
    let keyed = groups(a.scenarios, |s| s.point.label_without(WIDTH));
    let out: Vec<WidthGroup> = keyed
        .into_iter()
        .map(|(label, members)| {
            let mut members: Vec<(usize, usize)> = members
                .into_iter()
                .map(|i| (a.scenarios[i].point.config.width, i))
                .collect();
            members.sort_unstable();
            WidthGroup { label, members }
        })
        .collect();
    let widths = |g: &WidthGroup| g.members.iter().map(|m| m.0).collect::<Vec<_>>();
    let first = widths(out.first()?);
    let same = out.iter().all(|g| widths(g) == first);
    (same && first.len() > 1 && first.windows(2).all(|w| w[0] < w[1])).then_some(out)
}

/// Whether the sweep is a width sweep.
pub fn applies(a: &Analysis) -> bool {
    width_groups(a).is_some()
}

/// What `finding` reads for scenario `i`; `None` where it has nothing to read.
pub fn reading(a: &Analysis, i: usize, finding: Finding) -> Option<Reading> {
    let st = &a.stats[i];
    match finding {
        Finding::Trains => {
            let (trained, finished) = (st.outcome.trained(), st.outcome.finished());
            (finished > 0).then_some(Reading::Trains(match trained {
                0 => Trains::None,
                t if t == finished => Trains::All,
                _ => Trains::Some,
            }))
        }
        Finding::RegimeAtStart => st.regime.start.regime().map(Reading::Regime),
        Finding::RegimeInTraining => st.regime.training.regime().map(Reading::Regime),
        Finding::TheoryAtStart => {
            let predicted = st.mean_field.chain?.predicted_regime()?;
            Some(Reading::Predicted(predicted == st.regime.start.regime()?))
        }
        Finding::PostRatio => {
            let ratio = st.decay.ratio.positive?.geo_mean;
            let layers = a.scenarios[i].point.config.layers;
            let reads = Regime::of(super::decay::per_layer_factor(ratio, layers)?)?;
            Some(Reading::PostRatio {
                reads,
                error: st.regime.training.regime()?,
            })
        }
    }
}

/// The readings of `finding` across `g`'s widths, narrowest first; `None` if one is
/// missing.
fn readings(a: &Analysis, g: &WidthGroup, finding: Finding) -> Option<Vec<Reading>> {
    g.members
        .iter()
        .map(|&(_, i)| reading(a, i, finding))
        .collect()
}

/// `10, 100 and 1,000`.
fn widths_text(widths: &[usize]) -> String {
    and_list(&widths.iter().map(|&w| thousands(w)).collect::<Vec<_>>())
}

/// The answer: the accuracy at each width, the findings that hold, the ones that change,
/// and what widths do to the post's ratio and to mean-field theory.
pub fn answer(a: &Analysis) -> Vec<String> {
    let Some(gs) = width_groups(a) else {
        return Vec::new();
    };
    let widths: Vec<usize> = gs[0].members.iter().map(|m| m.0).collect();
    let accuracies: Vec<String> = gs
        .iter()
        .map(|g| {
            let each: Vec<String> = g
                .members
                .iter()
                .map(|&(_, i)| accuracy(a.stats[i].outcome.accuracy))
                .collect();
            format!("{} {}", bold(&g.label), each.join(", "))
        })
        .collect();
    let mut out = vec![format!(
        "Test accuracy (trained runs) at widths {}: {}.",
        widths_text(&widths),
        accuracies.join("; ")
    )];
    let (held, changed) = findings(a, &gs);
    let wider = widths_text(&widths[1..]);
    if !held.is_empty() {
        out.push(format!(
            "Of the findings at width {}, these hold at {wider}: {}.",
            thousands(widths[0]),
            held.join("; ")
        ));
    }
    if changed.is_empty() {
        out.push(format!("None changes at {wider}."));
    } else {
        out.push(format!("These change with width: {}.", changed.join("; ")));
    }
    out.extend(decay_sentence(a, &gs));
    out.extend(theory_sentence(a, &gs));
    out
}

/// The phrases of the findings that hold at every width (grouped by reading) and of those
/// that change (each group's readings by width).
fn findings(a: &Analysis, gs: &[WidthGroup]) -> (Vec<String>, Vec<String>) {
    let (mut held, mut changed) = (Vec::new(), Vec::new());
    for finding in Finding::ALL {
        let mut holding: Vec<(Reading, Vec<String>)> = Vec::new();
        for g in gs {
            let Some(rs) = readings(a, g, finding) else {
                continue;
            };
            if rs.iter().all(|r| r.same_class(rs[0])) {
                match holding.iter_mut().find(|(r, _)| r.same_class(rs[0])) {
                    Some((_, names)) => names.push(bold(&g.label)),
                    None => holding.push((rs[0], vec![bold(&g.label)])),
                }
            } else {
                changed.push(format!(
                    "under {}, {}",
                    bold(&g.label),
                    by_width(g, &rs, finding)
                ));
            }
        }
        held.extend(holding.into_iter().map(|(r, names)| {
            format!(
                "{} {} under {}",
                finding.subject(),
                r.predicate(finding),
                and_list(&names)
            )
        }));
    }
    (held, changed)
}

/// `rs` (one per width of `g`) as runs of equal readings: `the error keeps its size over
/// training at width 10 and 100, and vanishes ... at 1,000`.
fn by_width(g: &WidthGroup, rs: &[Reading], finding: Finding) -> String {
    let mut runs: Vec<(Reading, Vec<usize>)> = Vec::new();
    for (&(w, _), &r) in g.members.iter().zip(rs) {
        match runs.last_mut() {
            Some((last, ws)) if last.same_class(r) => ws.push(w),
            _ => runs.push((r, vec![w])),
        }
    }
    let parts: Vec<String> = runs
        .into_iter()
        .map(|(r, ws)| {
            let at = if ws.len() == 1 { "width" } else { "widths" };
            format!("{} at {at} {}", r.predicate(finding), widths_text(&ws))
        })
        .collect();
    format!("{} {}", finding.subject(), and_list(&parts))
}

/// The post's decay ratio where it moves between the narrowest and widest network (their
/// intervals apart) while the error's regime over training holds: a measure the layers'
/// widths distort.
fn decay_sentence(a: &Analysis, gs: &[WidthGroup]) -> Option<String> {
    let moved: Vec<String> = gs
        .iter()
        .filter_map(|g| {
            let (&(w0, first), &(w1, last)) = (g.members.first()?, g.members.last()?);
            let (r0, r1) = (
                a.stats[first].decay.ratio.positive?,
                a.stats[last].decay.ratio.positive?,
            );
            let regime = readings(a, g, Finding::RegimeInTraining)?;
            let holds = regime.iter().all(|r| r.same_class(regime[0]));
            (holds && !r0.overlaps(&r1)).then(|| {
                format!(
                    "under {} from {} at width {} to {} at {}",
                    bold(&g.label),
                    geometric(Some(r0)),
                    thousands(w0),
                    geometric(Some(r1)),
                    thousands(w1)
                )
            })
        })
        .collect();
    (!moved.is_empty()).then(|| {
        format!(
            "The post's decay ratio (the output layer's mean |dC/dW| over the first layer's) \
             moves with width where the error's regime over training does not: {}. It \
             compares a layer whose inputs are the last hidden layer's units with one whose \
             inputs are the 784 pixels, so their widths enter it; the error factor compares \
             hidden layers of equal width.",
            and_list(&moved)
        )
    })
}

/// The measured per-layer factor at initialisation over mean-field theory's prediction,
/// at each width (the theory is that of infinitely wide layers).
fn theory_sentence(a: &Analysis, gs: &[WidthGroup]) -> Option<String> {
    let widths: Vec<usize> = gs[0].members.iter().map(|m| m.0).collect();
    let ranges: Vec<String> = (0..widths.len())
        .map(|k| {
            let (lo, hi) = min_max(
                gs.iter()
                    .filter_map(|g| measured_over_predicted(&a.stats[g.members[k].1])),
            )?;
            let range = if sig(lo, 3) == sig(hi, 3) {
                sig(lo, 3)
            } else {
                format!("{} to {}", sig(lo, 3), sig(hi, 3))
            };
            Some(format!("{range} at width {}", thousands(widths[k])))
        })
        .collect::<Option<_>>()?;
    Some(format!(
        "The measured per-layer factor at initialisation is {} times the one mean-field \
         theory predicts for infinitely wide layers.",
        and_list(&ranges)
    ))
}

/// The section: each finding's class per group and width, and whether it holds.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Across widths");
    let Some(gs) = width_groups(a) else {
        return s;
    };
    let widths: Vec<usize> = gs[0].members.iter().map(|m| m.0).collect();
    s.text(format!(
        "Each finding of the narrowest network, as its class (`docs/experiment.md`), at \
         every width; it holds where the class is the same at every width. The error's \
         regime is that of its factor per hidden layer (the results table gives the \
         factors); the hidden layers being of equal width, the factor compares like with \
         like at every width. Widths: {}.",
        widths_text(&widths)
    ));
    let mut head = vec!["finding".to_string(), "scenario".to_string()];
    head.extend(widths.iter().map(|w| format!("width {}", thousands(*w))));
    head.push("holds".into());
    let mut t = Table::new(head);
    for finding in Finding::ALL {
        for g in &gs {
            let cells: Vec<Option<Reading>> = g
                .members
                .iter()
                .map(|&(_, i)| reading(a, i, finding))
                .collect();
            if cells.iter().all(Option::is_none) {
                continue;
            }
            let holds = match cells.iter().copied().collect::<Option<Vec<_>>>() {
                Some(rs) if rs.iter().all(|r| r.same_class(rs[0])) => "yes",
                Some(_) => "no",
                None => "n/a",
            };
            let mut row = vec![finding.name().to_string(), g.label.clone()];
            row.extend(cells.iter().map(|r| r.map_or("n/a".into(), Reading::cell)));
            row.push(holds.into());
            t.row(row);
        }
    }
    s.table(t);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, over_axes};

    /// A width sweep of sigmoid and relu at widths 10 and 1,000 where relu's error keeps
    /// its size over training at 10 and vanishes at 1,000, and sigmoid's ratio moves.
    fn sweep() -> (Vec<String>, String) {
        let (sweep, scenarios) = over_axes(
            "activation = [\"sigmoid\", \"relu\"]\nwidth = [10, 1000]",
            |i, seed| Spec {
                factor_start: 0.5,
                factor_training: [0.7, 0.7, 1.0, 0.5][i],
                output_rms: if i == 1 { 1e-1 } else { 1e-2 },
                ..Spec::new(seed)
            },
        );
        let a = Analysis::new(&sweep, &scenarios);
        let table = section(&a).markdown(2, "");
        (answer(&a), table)
    }

    #[test]
    fn the_answer_names_what_holds_and_what_changes_as_the_table_does() {
        let (answer, table) = sweep();
        let all = answer.join(" ");
        assert!(
            all.contains("the error vanishes at initialisation under **sigmoid** and **relu**;"),
            "{all}"
        );
        assert!(
            all.contains(
                "under **relu**, the error keeps its size over training at width 10 and \
                 vanishes over training at width 1,000"
            ),
            "{all}"
        );
        assert!(
            table.contains("| error over training | relu | stable | vanishing | no |"),
            "{table}"
        );
        assert!(
            table.contains("| error over training | sigmoid | vanishing | vanishing | yes |"),
            "{table}"
        );
        assert!(all.contains("under **sigmoid** from "), "{all}");
        // relu's ratio reads the same regime at both widths while its error changes.
        let relu = table
            .lines()
            .find(|l| l.starts_with("| the post's ratio reads, over training | relu |"))
            .unwrap();
        assert!(
            relu.ends_with("| vanishing; the error stable | vanishing, as the error | no |"),
            "{relu}"
        );
        assert!(
            all.contains(
                "under **relu**, the post's decay ratio misreads the error's regime \
                 over training at width 10 and reads the error's regime over training at width \
                 1,000"
            ),
            "{all}"
        );
        assert!(!all.contains("under **relu** from"), "{all}");
    }
}
