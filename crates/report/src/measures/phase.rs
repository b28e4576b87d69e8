//! The edge of chaos (Schoenholz et al. 2017, "Deep information propagation"): in a sweep
//! of plain networks over sigma_w^2 (`--init variance:<sigma_w^2>`) and depth, which
//! networks train, against the depth scale 6 xi_c that mean-field theory computes from the
//! activation, sigma_w^2 and sigma_b^2 alone (`vgrad_theory`). Networks count as
//! trainable by [`vgrad_record::class::is_trainable`].

use vgrad_record::class::{TRAINABLE_ACCURACY, is_trainable};
use vgrad_record::{Activation, Init};
use vgrad_theory::{DepthScales, MeanField as Theory, critical_weight_variance};

use crate::Scenario;
use crate::document::{Section, Table};
use crate::format::sig;
use crate::measures::Analysis;
use crate::setting::is_plain_chain;
use crate::stats::mean;

/// The trainable region is compared with this many depth scales (the paper's finding:
/// networks train up to about 6 xi_c layers).
pub const XI_C_MULTIPLE: f64 = 6.0;

/// One grid point's runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// The scenario.
    pub scenario: usize,
    /// Test accuracy, the mean over its finished runs that did not diverge (NaN for none).
    pub test_acc: f64,
    /// Training accuracy at the last logged step (its batch), the same runs' mean.
    pub train_acc: f64,
    /// Whether its runs train: every finished run trainable, none diverged.
    pub trainable: bool,
}

/// A sweep over sigma_w^2 and depth, with the theory at each sigma_w^2.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseMap {
    /// The one activation of the sweep.
    pub activation: Activation,
    /// The one sigma_b^2 of the sweep.
    pub sigma_b2: f64,
    /// The sigma_w^2 of the sweep, ascending.
    pub sigma_w2s: Vec<f64>,
    /// The depths (dense layers) of the sweep, ascending.
    pub depths: Vec<usize>,
    /// `cells[w][d]`: the grid point at `sigma_w2s[w]` and `depths[d]`, if it has a
    /// finished run.
    pub cells: Vec<Vec<Option<Cell>>>,
    /// The depth scales at each sigma_w^2 (`None` where q* is not finite and positive).
    pub theory: Vec<Option<DepthScales>>,
    /// The theory's critical sigma_w^2 at `sigma_b2`.
    pub critical: Option<f64>,
    /// Optimizer steps of every run.
    pub steps: usize,
}

impl PhaseMap {
    /// The map of a sweep's `scenarios`, where they make one: plain networks of one
    /// activation and one sigma_b^2, all with `variance:` weights, over at least two
    /// sigma_w^2 and two depths. [`Analysis::phase`] holds it, computed once.
    pub fn of(scenarios: &[Scenario]) -> Option<Self> {
        let configs: Vec<_> = scenarios.iter().map(|s| &s.point.config).collect();
        let first = configs.first()?;
        // The map's theory is one sigma_b^2 across the grid: a number, not `critical`.
        let sigma_b2 = first.bias_variance.value()?;
        let sigma_w2 = |c: &vgrad_record::RunConfig| match c.init {
            Init::Variance { sigma_w2 } => Some(sigma_w2),
            _ => None,
        };
        let same_kind = configs.iter().all(|c| {
            is_plain_chain(c)
                && c.activation == first.activation
                && c.bias_variance == first.bias_variance
                && c.steps == first.steps
                && sigma_w2(c).is_some()
        });
        if !same_kind {
            return None;
        }
        let mut sigma_w2s: Vec<f64> = configs.iter().filter_map(|c| sigma_w2(c)).collect();
        sigma_w2s.sort_by(f64::total_cmp);
        sigma_w2s.dedup();
        let mut depths: Vec<usize> = configs.iter().map(|c| c.layers).collect();
        depths.sort_unstable();
        depths.dedup();
        if sigma_w2s.len() < 2 || depths.len() < 2 {
            return None;
        }
        let mut cells = vec![vec![None; depths.len()]; sigma_w2s.len()];
        for (i, scenario) in scenarios.iter().enumerate() {
            let c = &scenario.point.config;
            let (Some(w), Some(d)) = (
                sigma_w2s.iter().position(|&s| Some(s) == sigma_w2(c)),
                depths.iter().position(|&l| l == c.layers),
            ) else {
                continue;
            };
            cells[w][d] = cell(scenario, i);
        }
        let theory = sigma_w2s
            .iter()
            .map(|&s| {
                Theory::new(first.activation, s, sigma_b2)
                    .ok()?
                    .depth_scales()
            })
            .collect();
        Some(Self {
            activation: first.activation,
            sigma_b2,
            sigma_w2s,
            depths,
            cells,
            theory,
            critical: critical_weight_variance(first.activation, sigma_b2),
            steps: first.steps,
        })
    }

    /// The deepest trainable network at `sigma_w2s[w]`, if any.
    pub fn deepest_trainable(&self, w: usize) -> Option<usize> {
        self.depths
            .iter()
            .zip(&self.cells[w])
            .filter(|(_, c)| c.is_some_and(|c| c.trainable))
            .map(|(&d, _)| d)
            .max()
    }

    /// The deepest trainable network of the whole map and the indices of the sigma_w^2
    /// where it trains; `None` where nothing trains.
    pub fn peak(&self) -> Option<(usize, Vec<usize>)> {
        let deepest: Vec<(usize, usize)> = (0..self.sigma_w2s.len())
            .filter_map(|w| Some((w, self.deepest_trainable(w)?)))
            .collect();
        let top = deepest.iter().map(|(_, d)| *d).max()?;
        let at = deepest
            .iter()
            .filter(|(_, d)| *d == top)
            .map(|&(w, _)| w)
            .collect();
        Some((top, at))
    }

    /// 6 xi_c at `sigma_w2s[w]` (infinite at the edge; `None` without a theory).
    pub fn depth_bound(&self, w: usize) -> Option<f64> {
        self.theory[w].map(|t| XI_C_MULTIPLE * t.xi_c)
    }
}

/// The cell of `scenario`, the sweep's scenario `i`: `None` without a finished run.
fn cell(scenario: &Scenario, i: usize) -> Option<Cell> {
    let runs: Vec<_> = scenario.finished().collect();
    if runs.is_empty() {
        return None;
    }
    let ok: Vec<_> = runs.iter().filter(|(_, s)| s.status.is_ok()).collect();
    let test_acc = mean(ok.iter().map(|(_, s)| s.test_acc)).unwrap_or(f64::NAN);
    let train_acc = mean(
        ok.iter()
            .filter_map(|(r, _)| r.steps.last().map(|s| s.train_acc)),
    )
    .unwrap_or(f64::NAN);
    let trainable = ok.len() == runs.len() && ok.iter().all(|(_, s)| is_trainable(s.test_acc));
    Some(Cell {
        scenario: i,
        test_acc,
        train_acc,
        trainable,
    })
}

/// The answer: where the deepest trainable network lies against the theory's edge, how
/// the trainable region sits against 6 xi_c, and where the step budget bounds it.
pub fn answer(a: &Analysis) -> Option<String> {
    Some(sentences(a.phase.as_ref()?).join(" "))
}

/// The answer's sentences for `map`.
pub fn sentences(map: &PhaseMap) -> Vec<String> {
    let pct = format!("{:.0}%", 100.0 * TRAINABLE_ACCURACY);
    let edge = match map.critical {
        Some(c) => format!(
            "theory puts the edge of chaos at sigma_w^2 = {} for sigma_b^2 = {}",
            sig(c, 3),
            map.sigma_b2
        ),
        None => format!(
            "theory finds no edge of chaos for {} at sigma_b^2 = {}",
            map.activation, map.sigma_b2
        ),
    };
    let Some((top, peaks)) = map.peak() else {
        return vec![format!(
            "No network of this sweep trains (test accuracy at least {pct}); {edge}."
        )];
    };
    let at: Vec<String> = peaks.iter().map(|&w| sig(map.sigma_w2s[w], 3)).collect();
    let mut out = vec![format!(
        "The deepest network that trains (test accuracy at least {pct}) has {top} layers, at \
         sigma_w^2 = {}; {edge}.",
        crate::format::and_list(&at)
    )];
    // The trainable region against 6 xi_c, per sigma_w^2 with a theory.
    let (mut within, mut beyond) = (0, 0);
    for w in 0..map.sigma_w2s.len() {
        let (Some(bound), Some(d)) = (map.depth_bound(w), map.deepest_trainable(w)) else {
            continue;
        };
        if (d as f64) <= bound {
            within += 1;
        } else {
            beyond += 1;
        }
    }
    if within + beyond > 0 {
        out.push(format!(
            "At {within} of the {} sigma_w^2 with a trainable network, the deepest one lies \
             within 6 xi_c layers, as the paper finds; at {beyond} it lies beyond.",
            within + beyond
        ));
    }
    // Where theory allows every depth of the sweep but the deepest networks fail.
    let Some(&deepest_swept) = map.depths.last() else {
        return out;
    };
    let last = map.depths.len() - 1;
    let bounded: Vec<String> = (0..map.sigma_w2s.len())
        .filter(|&w| {
            map.depth_bound(w)
                .is_some_and(|b| b >= deepest_swept as f64)
                && map.cells[w][last].is_some_and(|c| !c.trainable)
        })
        .map(|w| sig(map.sigma_w2s[w], 3))
        .collect();
    if !bounded.is_empty() {
        out.push(format!(
            "At sigma_w^2 = {} theory allows all {deepest_swept} layers, yet the {deepest_swept}-layer \
             network does not train: there the budget of {} steps, not the theory, bounds the \
             measured region.",
            crate::format::and_list(&bounded),
            crate::format::thousands(map.steps)
        ));
    }
    out
}

/// The comparison with Schoenholz et al. 2017, whose trainable depth peaks at the
/// critical sigma_w^2: whether this sweep's deepest trainable networks include the grid's
/// sigma_w^2 nearest the theory's edge. `None` without a map, an edge or a trainable
/// network.
pub fn against_the_paper(a: &Analysis) -> Option<String> {
    let map = a.phase.as_ref()?;
    let critical = map.critical?;
    let nearest = (0..map.sigma_w2s.len()).min_by(|&i, &j| {
        (map.sigma_w2s[i] - critical)
            .abs()
            .total_cmp(&(map.sigma_w2s[j] - critical).abs())
    })?;
    let (top, peaks) = map.peak()?;
    let at = |w: usize| sig(map.sigma_w2s[w], 3);
    let peak_list: Vec<String> = peaks.iter().map(|&w| at(w)).collect();
    let setting = "their trainable depth peaks at the critical sigma_w^2; qualitative, their \
                   accuracies and depths are not comparable here";
    Some(if peaks.contains(&nearest) {
        format!(
            "Against Schoenholz et al. 2017 ({setting}): as they find, the deepest trainable \
             networks here ({top} layers) include the grid's sigma_w^2 nearest the edge, {}.",
            at(nearest)
        )
    } else {
        format!(
            "Against Schoenholz et al. 2017 ({setting}): unlike their finding, the deepest \
             trainable networks here ({top} layers) lie at sigma_w^2 = {}, not at the grid's \
             sigma_w^2 nearest the edge, {}.",
            crate::format::and_list(&peak_list),
            at(nearest)
        )
    })
}

/// The section: the sweep's grid of test accuracies with the theory at each sigma_w^2.
pub fn section(a: &Analysis) -> Section {
    let mut s = Section::new("Edge of chaos");
    let Some(map) = &a.phase else {
        return s;
    };
    s.text(format!(
        "Mean-field theory (Poole et al. 2016; Schoenholz et al. 2017) puts a deep network \
         at initialisation in an ordered phase (chi_1 < 1: gradients vanish, inputs become \
         alike) or a chaotic one (chi_1 > 1: gradients explode, nearby inputs are driven \
         apart), and computes from the activation, sigma_w^2 and sigma_b^2 alone the depth \
         scale xi_c over which two inputs' correlation settles; it diverges at the edge \
         between the phases, and Schoenholz et al. found networks trainable to about 6 xi_c \
         layers. Here a network is trainable when every run of it ends with a test accuracy \
         of at least {:.0}% (`docs/experiment.md`). The table gives, per sigma_w^2 \
         (sigma_b^2 = {}), chi_1, 6 xi_c, the deepest trainable network, and the test \
         accuracy at each depth (trainable ones in bold).",
        100.0 * TRAINABLE_ACCURACY,
        map.sigma_b2
    ));
    let mut header = vec![
        "sigma_w^2".to_string(),
        "chi_1".to_string(),
        "6 xi_c (layers)".to_string(),
        "deepest trainable".to_string(),
    ];
    header.extend(map.depths.iter().map(|d| format!("{d} layers")));
    let mut t = Table::new(header);
    for (w, &sigma_w2) in map.sigma_w2s.iter().enumerate() {
        let theory = map.theory[w];
        let mut row = vec![
            sig(sigma_w2, 3),
            theory.map_or("n/a".into(), |t| sig(t.chi_1, 3)),
            map.depth_bound(w).map_or("n/a".into(), |b| {
                if b.is_finite() {
                    format!("{b:.0}")
                } else {
                    "unbounded".into()
                }
            }),
            map.deepest_trainable(w)
                .map_or("none".into(), |d| d.to_string()),
        ];
        row.extend(map.cells[w].iter().map(|c| match c {
            None => "-".into(),
            Some(c) if !c.test_acc.is_finite() => "diverged".into(),
            Some(c) => {
                let v = format!("{:.0}%", 100.0 * c.test_acc);
                if c.trainable {
                    crate::format::bold(&v)
                } else {
                    v
                }
            }
        }));
        t.row(row);
    }
    s.table(t);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{self, Spec};

    /// A tanh sweep over sigma_w^2 (1, 1.75, 3) and depth (10, 40, 200) whose runs end with
    /// the test accuracies `accuracy(w, d)`.
    fn map_with(
        accuracy: impl Fn(usize, usize) -> f64,
    ) -> (vgrad_sweep::Sweep, Vec<crate::Scenario>) {
        let sweep = synthetic::sweep(
            "seeds = 1\n[base]\nactivation = \"tanh\"\nbias_variance = 0.05\nsteps = 300\n\
             log_every = 100\n[axes]\ninit = [\"variance:1\", \"variance:1.75\", \"variance:3\"]\n\
             layers = [10, 40, 200]\n",
        );
        let scenarios = sweep
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let spec = Spec {
                    layers: p.config.layers,
                    test_acc: accuracy(i / 3, i % 3),
                    ..Spec::new(0)
                };
                synthetic::scenario(p, &[spec])
            })
            .collect();
        (sweep, scenarios)
    }

    #[test]
    fn the_sentences_agree_with_the_table_on_both_sides_of_trainable() {
        // Just below and just above the trainable accuracy; sigma_w^2 = 3 trains at 200
        // layers, beyond its 6 xi_c of 54; 1.75 (6 xi_c in the thousands) fails at 200.
        let below = TRAINABLE_ACCURACY - 0.01;
        let above = TRAINABLE_ACCURACY + 0.01;
        let table = [
            [above, below, below],
            [above, 0.9, 0.2],
            [above, above, 0.6],
        ];
        let (sweep, scenarios) = map_with(|w, d| table[w][d]);
        let a = Analysis::new(&sweep, &scenarios);
        let map = a.phase.as_ref().expect("a phase map");
        assert_eq!(map.sigma_w2s, vec![1.0, 1.75, 3.0]);
        assert_eq!(map.depths, vec![10, 40, 200]);
        let deepest: Vec<Option<usize>> = (0..3).map(|w| map.deepest_trainable(w)).collect();
        assert_eq!(deepest, vec![Some(10), Some(40), Some(200)]);
        let said = sentences(map);
        assert!(
            said[0].starts_with(
                "The deepest network that trains (test accuracy at least 50%) has 200 layers, \
                 at sigma_w^2 = 3.00; theory puts the edge of chaos at sigma_w^2 = 1.76 for \
                 sigma_b^2 = 0.05"
            ),
            "{said:?}"
        );
        assert!(said[1].contains("At 2 of the 3 sigma_w^2"), "{said:?}");
        assert!(said[1].contains("at 1 it lies beyond"), "{said:?}");
        assert!(
            said[2].starts_with("At sigma_w^2 = 1.75 theory allows all 200 layers"),
            "{said:?}"
        );
        assert!(said[2].contains("budget of 300 steps"), "{said:?}");
        // The table says the same, row by row.
        let text = crate::document::markdown(&[section(&a)], 2, "");
        assert!(
            text.contains("| 1.00 | 0.759 | 22 | 10 | **51%** | 49% | 49% |"),
            "{text}"
        );
        assert!(
            text.contains("| 1.75 | 0.998 | 2557 | 40 | **51%** | **90%** | 20% |"),
            "{text}"
        );
        assert!(
            text.contains("| 3.00 | 1.21 | 54 | 200 | **51%** | **51%** | **60%** |"),
            "{text}"
        );
        // The deepest (200 layers, at 3) is not the grid's point nearest the edge (1.75).
        let paper = against_the_paper(&a).expect("a comparison");
        assert!(paper.contains("unlike their finding"), "{paper}");
        assert!(
            paper.contains(
                "lie at sigma_w^2 = 3.00, not at the grid's \
             sigma_w^2 nearest the edge, 1.75"
            ),
            "{paper}"
        );
    }

    #[test]
    fn no_trainable_network_is_said_as_such_and_other_sweeps_have_no_map() {
        let (sweep, scenarios) = map_with(|_, _| TRAINABLE_ACCURACY - 0.01);
        let a = Analysis::new(&sweep, &scenarios);
        let said = answer(&a).expect("a phase map");
        assert!(
            said.starts_with("No network of this sweep trains (test accuracy at least 50%)"),
            "{said}"
        );
        assert_eq!(against_the_paper(&a), None, "no trainable network");
        let (sweep, scenarios) = synthetic::over(&["sigmoid", "relu"], |_, s| Spec::new(s));
        assert!(Analysis::new(&sweep, &scenarios).phase.is_none());
    }
}
