//! Units that pass no error on: dead (a ReLU-like unit whose input is at most 0) or
//! saturated (a sigmoid-like unit whose derivative is below 1% of its maximum), counted
//! two ways: units off for every example of a batch, and (unit, example) pairs off.

use vgrad_record::{Activation, OffKind, StepRecord};

use crate::Scenario;
use crate::document::{Section, Table};
use crate::format::percent;
use crate::measures::Analysis;
use crate::stats::mean;

/// Per hidden layer, a fraction at initialisation and over training.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fractions {
    /// At step 0, mean over every finished run.
    pub start: Vec<Option<f64>>,
    /// Over the logged steps after step 0, mean over the steps, then over the trained runs.
    pub training: Vec<Option<f64>>,
}

impl Fractions {
    fn of(
        all: &[&[StepRecord]],
        trained: &[&[StepRecord]],
        hidden: usize,
        pick: fn(&vgrad_record::LayerRecord) -> Option<f64>,
    ) -> Self {
        let at = |s: &StepRecord, l: usize| pick(s.layers.get(l)?);
        Self {
            start: (0..hidden)
                .map(|l| mean(all.iter().filter_map(|s| at(s.first()?, l))))
                .collect(),
            training: (0..hidden)
                .map(|l| {
                    mean(trained.iter().filter_map(|s| {
                        mean(s.iter().filter(|r| r.step > 0).filter_map(|r| at(r, l)))
                    }))
                })
                .collect(),
        }
    }

    /// The largest fraction, with its hidden layer (1-based) and whether it is at step 0.
    fn largest(&self) -> Option<(f64, usize, bool)> {
        let at = |v: &Vec<Option<f64>>, start: bool| -> Vec<(f64, usize, bool)> {
            v.iter()
                .enumerate()
                .filter_map(|(l, x)| x.map(|x| (x, l + 1, start)))
                .collect()
        };
        at(&self.start, true)
            .into_iter()
            .chain(at(&self.training, false))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }
}

/// What an off unit of an activation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Off {
    /// Input at most 0 and derivative 0: a dead ReLU unit.
    Dead,
    /// Input at most 0, where the derivative is small but not 0 (leaky ReLU, ELU, SELU,
    /// GELU, SiLU): the unit still passes some error.
    Negative,
    /// Derivative below 1% of its maximum (sigmoid, tanh, softsign).
    Saturated,
}

impl Off {
    /// The kind of `activation`'s off units.
    fn of(activation: Activation) -> Self {
        match activation.off_kind() {
            OffKind::Saturated => Self::Saturated,
            OffKind::Dead if activation.derivative(-1.0) == 0.0 => Self::Dead,
            OffKind::Dead => Self::Negative,
        }
    }

    /// Its name in the tables.
    fn name(self) -> &'static str {
        match self {
            Self::Dead => "dead",
            Self::Negative => "on the negative side",
            Self::Saturated => "saturated",
        }
    }
}

/// A scenario's dead or saturated units.
#[derive(Debug, Clone, PartialEq)]
pub struct Saturation {
    /// Which kind of "off" its activation's units can be.
    pub kind: Off,
    /// Units off for every example of a logged batch.
    pub units: Fractions,
    /// (unit, example) pairs off.
    pub pairs: Fractions,
}

impl Saturation {
    /// The off units of `scenario`'s runs.
    pub fn of(scenario: &Scenario) -> Self {
        let hidden = scenario.point.config.layers.saturating_sub(1);
        let (all, trained) = (scenario.all_steps(), scenario.trained_steps());
        Self {
            kind: Off::of(scenario.point.config.activation),
            units: Fractions::of(&all, &trained, hidden, |x| x.dead_frac),
            pairs: Fractions::of(&all, &trained, hidden, |x| x.inactive_frac),
        }
    }
}

/// The appendix's tables; a table that would show 0% throughout becomes a sentence.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Dead and saturated units");
    let with = a.with_finished();
    let max_hidden = with
        .iter()
        .map(|&i| a.scenarios[i].point.config.layers - 1)
        .max()
        .unwrap_or(0);
    if max_hidden == 0 {
        return s;
    }
    s.text(
        "A unit is off when it passes little or no error on: dead (pre-activation at most 0, \
         derivative 0) for ReLU; on the negative side (pre-activation at most 0, where the \
         derivative is small but not 0) for leaky ReLU, ELU, SELU, GELU and SiLU; saturated \
         (derivative below 1% of its maximum) for sigmoid, tanh and softsign. Two counts: units off for every example of a logged batch \
         (a dead unit never learns again), and (unit, example) pairs off (how much of a layer \
         passes nothing for a typical example). At step 0 over every run, and over training \
         (the mean over the logged steps after step 0) over the trained runs. Columns are the \
         hidden layers.",
    );
    for (title, pick) in [
        (
            "units off for every example",
            (|x: &Saturation| &x.units) as fn(&Saturation) -> &Fractions,
        ),
        ("(unit, example) pairs off", |x: &Saturation| &x.pairs),
    ] {
        let all_zero = with.iter().all(|&i| {
            let f = pick(&a.stats[i].saturation);
            f.start
                .iter()
                .chain(&f.training)
                .all(|v| v.is_none_or(|v| v == 0.0))
        });
        if all_zero {
            s.text(format!(
                "No hidden layer of any scenario has {title}, at step 0 or over training."
            ));
            continue;
        }
        let mut head = vec!["scenario".to_string(), title.to_string()];
        head.extend((1..=max_hidden).map(|l| l.to_string()));
        let mut t = Table::new(head);
        for &i in &with {
            let f = pick(&a.stats[i].saturation);
            let kind = a.stats[i].saturation.kind.name();
            for (when, values) in [("step 0", &f.start), ("training", &f.training)] {
                let mut row = vec![a.label(i), format!("{kind}, {when}")];
                row.extend((0..max_hidden).map(|l| {
                    values
                        .get(l)
                        .copied()
                        .flatten()
                        .map_or(String::new(), percent)
                }));
                t.row(row);
            }
        }
        s.table(t);
    }
    s
}

/// For each kind of unit: how much is off where most is, and whether any unit is off
/// for every example.
pub fn explanations(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for kind in [Off::Saturated, Off::Dead, Off::Negative] {
        let of: Vec<usize> = a
            .with_finished()
            .into_iter()
            .filter(|&i| a.stats[i].saturation.kind == kind)
            .collect();
        let pairs = of
            .iter()
            .filter_map(|&i| a.stats[i].saturation.pairs.largest().map(|p| (i, p)))
            .max_by(|x, y| x.1.0.total_cmp(&y.1.0));
        let units = of
            .iter()
            .filter_map(|&i| a.stats[i].saturation.units.largest().map(|p| (i, p)))
            .max_by(|x, y| x.1.0.total_cmp(&y.1.0));
        let (Some((pi, (pv, pl, pstart))), Some((ui, (uv, ul, ustart)))) = (pairs, units) else {
            continue;
        };
        let when = |start: bool| if start { "at step 0" } else { "over training" };
        let name = kind.name();
        let units_text = if uv == 0.0 {
            format!("no unit is {name} for every example of a batch in any of these scenarios")
        } else {
            format!(
                "{} of layer {ul}'s units are {name} for every example {} under {}",
                percent(uv),
                when(ustart),
                a.named(ui)
            )
        };
        if pv == 0.0 {
            out.push(format!(
                "No (unit, example) pair of any scenario is {name}, at step 0 or over training."
            ));
            continue;
        }
        out.push(format!(
            "Of the (unit, example) pairs, at most {} are {name} (layer {pl} {} under {}); {}.",
            percent(pv),
            when(pstart),
            a.named(pi),
            units_text
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, over};

    #[test]
    fn a_table_of_zeros_becomes_a_sentence() {
        let (sweep, mut scenarios) = over(&["sigmoid", "relu"], |_, seed| Spec::new(seed));
        let a = Analysis::new(&sweep, &scenarios);
        let text = section(&a).markdown(2, "");
        assert!(
            text.contains("No hidden layer of any scenario has units off for every example"),
            "{text}"
        );
        assert!(text.contains("| relu | dead, step 0 | 10.0% |"), "{text}");
        // One ReLU unit in two dead at step 0 of one run: the table appears and agrees.
        scenarios[1].runs[0].steps[0].layers[0].dead_frac = Some(0.5);
        let a = Analysis::new(&sweep, &scenarios);
        let text = section(&a).markdown(2, "");
        assert!(
            text.contains("| relu | dead, step 0 | 25.0% | 0.0% |"),
            "{text}"
        );
        let why = explanations(&a).join(" ");
        assert!(
            why.contains(
                "25.0% of layer 1's units are dead for every example at step 0 under **relu**"
            ),
            "{why}"
        );
    }
}
