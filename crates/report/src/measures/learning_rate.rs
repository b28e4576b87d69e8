//! For sweeps over the learning rate: per setting of the other fields, the rate with the
//! best mean validation accuracy, and whether it lies inside the grid (a best rate at the
//! grid's edge says the grid is too narrow, not that the rate is best).

use vgrad_record::{RunClass, class::chance_accuracy};

use crate::Scenario;
use crate::document::{Section, Table};
use crate::format::{and_list, bold, percent};
use crate::measures::Analysis;
use crate::setting::{all_but, groups, varies};
use crate::stats::mean;

/// The rates tried for one setting, and the best.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// A scenario of the setting (for its label without the rate).
    pub example: usize,
    /// Each rate with its mean validation accuracy over the finished runs (a diverged
    /// run counts as a guess) and whether any of its runs trained, in increasing rate.
    pub rates: Vec<(f64, f64, bool)>,
    /// The index in `rates` of the best rate among those with a trained run; `None`
    /// where no rate trains.
    pub best: Option<usize>,
}

impl Search {
    /// Whether the best rate has a smaller and a larger one beside it.
    pub fn interior(&self) -> bool {
        self.best.is_some_and(|b| b > 0 && b + 1 < self.rates.len())
    }

    /// The best rate: among those where a run trained, the best by validation accuracy;
    /// where none trains, the best of all (ties to the larger rate).
    pub fn best_rate(&self) -> f64 {
        let any = (0..self.rates.len())
            .max_by(|&x, &y| self.rates[x].1.total_cmp(&self.rates[y].1))
            .unwrap_or(0);
        self.rates[self.best.unwrap_or(any)].0
    }

    /// The best rate's mean validation accuracy.
    pub fn best_accuracy(&self) -> f64 {
        self.rates
            .iter()
            .find(|r| r.0 == self.best_rate())
            .map_or(f64::NAN, |r| r.1)
    }
}

/// Mean validation accuracy of a scenario's finished runs; a diverged run counts as a
/// guess.
fn validation(s: &Scenario) -> Option<f64> {
    mean(s.finished().map(|(_, summary)| {
        if summary.class() == RunClass::Diverged {
            chance_accuracy()
        } else {
            summary.val_acc
        }
    }))
}

/// Every setting's search; empty where the rate does not vary.
pub fn searches(a: &Analysis) -> Vec<Search> {
    if !varies(a.scenarios, |c| c.lr) {
        return Vec::new();
    }
    groups(a.scenarios, |s| all_but(s, |c| c.lr = 0.0))
        .into_iter()
        .filter_map(|(_, members)| {
            let mut rates: Vec<(f64, f64, bool)> = members
                .iter()
                .filter_map(|&i| {
                    let s = &a.scenarios[i];
                    Some((
                        s.point.config.lr,
                        validation(s)?,
                        s.trained().next().is_some(),
                    ))
                })
                .collect();
            if rates.len() < 2 {
                return None;
            }
            rates.sort_by(|x, y| x.0.total_cmp(&y.0));
            let best = (0..rates.len())
                .filter(|&k| rates[k].2)
                .max_by(|&x, &y| rates[x].1.total_cmp(&rates[y].1));
            Some(Search {
                example: members[0],
                rates,
                best,
            })
        })
        .collect()
}

/// The label of a search's setting.
fn setting(a: &Analysis, s: &Search) -> String {
    a.scenarios[s.example].point.label_without("lr")
}

/// The table of mean validation accuracy per rate.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Learning rate by validation accuracy");
    let all = searches(a);
    let Some(first) = all.first() else {
        return s;
    };
    s.text(
        "Mean validation accuracy (the 5,000 held-out training images) over the seeds at each \
         rate; a run that diverged counts as a guess. The best rate per setting among those \
         where a run trained is in bold; \"interior\" says whether a smaller and a larger rate \
         were tried beside it.",
    );
    let mut head = vec!["setting".to_string()];
    head.extend(first.rates.iter().map(|r| lr_text(r.0)));
    head.extend(["best".to_string(), "interior".to_string()]);
    let mut t = Table::new(head);
    for search in &all {
        let mut row = vec![setting(a, search)];
        row.extend(search.rates.iter().enumerate().map(|(k, r)| {
            if Some(k) == search.best {
                bold(&percent(r.1))
            } else {
                percent(r.1)
            }
        }));
        row.push(match search.best {
            Some(_) => lr_text(search.best_rate()),
            None => "none trains".into(),
        });
        row.push(match (search.best, search.interior()) {
            (None, _) => "n/a".into(),
            (Some(_), true) => "yes".into(),
            (Some(_), false) => "no: widen the grid".into(),
        });
        t.row(row);
    }
    s.table(t);
    s
}

/// A rate as the sweep file writes it.
fn lr_text(lr: f64) -> String {
    vgrad_record::config::text(&serde_json::json!(lr))
}

/// The sentence on the best rates and whether they lie inside the grid.
pub fn answer(a: &Analysis) -> Option<String> {
    let all = searches(a);
    if all.is_empty() {
        return None;
    }
    let each: Vec<String> = all
        .iter()
        .map(|s| match s.best {
            Some(_) => format!(
                "{} at {} ({})",
                bold(&setting(a, s)),
                lr_text(s.best_rate()),
                percent(s.best_accuracy())
            ),
            None => format!("{} at none: no rate trains it", bold(&setting(a, s))),
        })
        .collect();
    let trains = all.iter().filter(|s| s.best.is_some()).count();
    let interior = all.iter().filter(|s| s.interior()).count();
    let listed = if each.len() <= Analysis::NAMED_IN_A_SENTENCE {
        format!(": {}", and_list(&each))
    } else {
        String::new()
    };
    Some(format!(
        "By mean validation accuracy the best rate lies inside the grid for {interior} of the {trains} settings some rate trains{}{listed}.",
        if trains < all.len() {
            format!(" ({} of {} settings)", trains, all.len())
        } else {
            String::new()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Spec, scenario, sweep};

    /// A search over three rates whose runs end at `accs` (validation = test here).
    fn search_of(accs: [f64; 3]) -> (String, Vec<Search>) {
        let sweep = sweep(
            "seeds = 2\n[base]\nlayers = 6\nsteps = 300\nlog_every = 100\noptimizer = \"sgd\"\n\
             [axes]\nlr = [0.01, 0.1, 1.0]\n",
        );
        let scenarios: Vec<_> = sweep
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let spec = |seed| Spec {
                    test_acc: accs[i],
                    ..Spec::new(seed)
                };
                scenario(p, &[spec(0), spec(1)])
            })
            .collect();
        let a = Analysis::new(&sweep, &scenarios);
        (answer(&a).unwrap(), searches(&a))
    }

    #[test]
    fn the_best_rate_is_interior_or_at_the_edge_and_never_one_that_does_not_train() {
        let (text, s) = search_of([0.5, 0.9, 0.3]);
        assert_eq!(
            (s[0].best, s[0].interior(), s[0].best_rate()),
            (Some(1), true, 0.1)
        );
        assert!(
            text.contains("inside the grid for 1 of the 1 settings"),
            "{text}"
        );
        let (text, s) = search_of([0.5, 0.6, 0.9]);
        assert_eq!((s[0].best, s[0].interior()), (Some(2), false));
        assert!(
            text.contains("inside the grid for 0 of the 1 settings"),
            "{text}"
        );
        // Nothing trains: the 11% rate is no best.
        let (text, s) = search_of([0.1, 0.11, 0.105]);
        assert_eq!(
            (s[0].best, s[0].interior(), s[0].best_rate()),
            (None, false, 0.1)
        );
        assert!(text.contains("no rate trains it"), "{text}");
    }
}
