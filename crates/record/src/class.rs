//! The classes every reader of a run uses (`summary.json`, the report, TensorBoard): how
//! the run ended (trained, collapsed or diverged) and what the back-propagated error does
//! across the hidden layers (vanishing, stable or exploding). Each threshold is defined
//! here once; `docs/experiment.md` explains them, and no reader restates them.

use std::fmt;

use crate::{CLASSES, RunStatus, StepRecord};

/// A run whose final test accuracy is at most chance plus this margin (5 percentage
/// points: 15% for ten classes) has not learnt to classify: it collapsed.
pub const COLLAPSE_MARGIN: f64 = 0.05;

/// The per-layer error factor outside `[1 / STABLE_BAND, STABLE_BAND]` is vanishing
/// (below) or exploding (above): the error loses or gains more than a fifth of its size
/// (a quarter, the other way) at every layer on its way to the input.
pub const STABLE_BAND: f64 = 1.25;

/// The test accuracy from which a network counts as trainable in a phase diagram (the
/// edge-of-chaos report): a run that reaches it has learned far beyond a guess (10%), as
/// Schoenholz et al. 2017 read trainability off their heatmaps.
pub const TRAINABLE_ACCURACY: f64 = 0.5;

/// Whether a run that ended with `test_acc` is trainable ([`TRAINABLE_ACCURACY`]); a NaN
/// (a diverged run) is not.
pub fn is_trainable(test_acc: f64) -> bool {
    test_acc >= TRAINABLE_ACCURACY
}

/// A regression run (the adding problem: Hochreiter & Schmidhuber 1997) whose test mean
/// squared error is below this has solved its task; predicting the constant mean scores
/// about [`CONSTANT_PREDICTOR_MSE`] there.
pub const SOLVED_MSE: f64 = 0.01;

/// The adding problem's mean squared error of the best constant prediction (the mean,
/// 1): the variance of the sum of two independent U(0, 1) values, 2 x 1/12 = 1/6.
pub const CONSTANT_PREDICTOR_MSE: f64 = 1.0 / 6.0;

/// How a regression run ended: the twin of [`RunClass`] for tasks scored by their mean
/// squared error rather than their accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RegressionClass {
    /// It trained all its steps and its test mean squared error is below [`SOLVED_MSE`].
    Solved,
    /// It trained all its steps without getting there.
    Unsolved,
    /// Its loss or a gradient stopped being finite.
    Diverged,
}

impl RegressionClass {
    /// All classes, in the order reports list them.
    pub const ALL: [Self; 3] = [Self::Solved, Self::Unsolved, Self::Diverged];

    /// The class of a run that ended with `status` and final `test_mse`.
    pub fn of(status: RunStatus, test_mse: f64) -> Self {
        match status {
            RunStatus::Diverged { .. } => Self::Diverged,
            // A NaN error with an ok status has measured nothing: not solved.
            RunStatus::Ok if test_mse < SOLVED_MSE => Self::Solved,
            RunStatus::Ok => Self::Unsolved,
        }
    }

    /// Its name in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Solved => "solved",
            Self::Unsolved => "unsolved",
            Self::Diverged => "diverged",
        }
    }
}

impl fmt::Display for RegressionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RegressionClass {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_named(&Self::ALL, Self::name, s, "regression class")
    }
}

crate::serde_as_text!(RegressionClass);

impl RegressionClass {
    /// The class as a number for TensorBoard's HParams (whose metrics are numbers), in
    /// [`RunClass::code`]'s convention: 1 solved, 0 unsolved, -1 diverged.
    pub fn code(self) -> f64 {
        match self {
            Self::Solved => 1.0,
            Self::Unsolved => 0.0,
            Self::Diverged => -1.0,
        }
    }
}

/// The accuracy of a guess: one over the number of classes.
pub fn chance_accuracy() -> f64 {
    1.0 / CLASSES as f64
}

/// The one of `all` whose `name` is `s` (trimmed); the error names `what` and them all.
fn parse_named<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    s: &str,
    what: &'static str,
) -> Result<T, crate::ParseError> {
    all.iter()
        .copied()
        .find(|&c| name(c) == s.trim())
        .ok_or_else(|| crate::ParseError {
            what,
            value: s.to_string(),
            expected: format!(
                "expected one of {}",
                all.iter().map(|&c| name(c)).collect::<Vec<_>>().join(", ")
            ),
        })
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunClass {
    /// It trained all its steps and learnt more than chance plus [`COLLAPSE_MARGIN`].
    Trained,
    /// It trained all its steps without learning: test accuracy at most chance plus
    /// [`COLLAPSE_MARGIN`].
    Collapsed,
    /// Its loss or a gradient stopped being finite.
    Diverged,
}

impl RunClass {
    /// All classes, in the order reports list them.
    pub const ALL: [Self; 3] = [Self::Trained, Self::Collapsed, Self::Diverged];

    /// The class of a run that ended with `status` and final `test_acc`.
    pub fn of(status: RunStatus, test_acc: f64) -> Self {
        match status {
            RunStatus::Diverged { .. } => Self::Diverged,
            // A NaN accuracy with an ok status cannot come from the trainer; a run that
            // measured nothing has learnt nothing.
            RunStatus::Ok if test_acc > chance_accuracy() + COLLAPSE_MARGIN => Self::Trained,
            RunStatus::Ok => Self::Collapsed,
        }
    }

    /// The class as a number, for TensorBoard's scalars and HParams dashboard, which
    /// sort and filter numbers: 1 trained, 0 collapsed, -1 diverged (the better the
    /// outcome, the larger).
    pub fn code(self) -> f64 {
        match self {
            Self::Trained => 1.0,
            Self::Collapsed => 0.0,
            Self::Diverged => -1.0,
        }
    }

    /// Its name in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Trained => "trained",
            Self::Collapsed => "collapsed",
            Self::Diverged => "diverged",
        }
    }
}

impl fmt::Display for RunClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RunClass {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_named(&Self::ALL, Self::name, s, "run class")
    }
}

crate::serde_as_text!(RunClass);

/// What the back-propagated error does on its way from the last hidden layer to the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Regime {
    /// It shrinks: a per-layer factor below `1 / STABLE_BAND`.
    Vanishing,
    /// It keeps its size: a factor within `[1 / STABLE_BAND, STABLE_BAND]`.
    Stable,
    /// It grows: a factor above `STABLE_BAND`.
    Exploding,
}

impl Regime {
    /// All regimes, in the order reports list them.
    pub const ALL: [Self; 3] = [Self::Vanishing, Self::Stable, Self::Exploding];

    /// The regime of a per-layer error factor (see [`error_factor`]); `None` for NaN.
    pub fn of(factor: f64) -> Option<Self> {
        if factor.is_nan() {
            None
        } else if factor < 1.0 / STABLE_BAND {
            Some(Self::Vanishing)
        } else if factor > STABLE_BAND {
            Some(Self::Exploding)
        } else {
            Some(Self::Stable)
        }
    }

    /// Its name in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vanishing => "vanishing",
            Self::Stable => "stable",
            Self::Exploding => "exploding",
        }
    }

    /// -1, 0 or 1: the regime as a number, for TensorBoard's scalar charts.
    pub fn code(self) -> f64 {
        match self {
            Self::Vanishing => -1.0,
            Self::Stable => 0.0,
            Self::Exploding => 1.0,
        }
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Regime {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_named(&Self::ALL, Self::name, s, "regime")
    }
}

crate::serde_as_text!(Regime);

/// The phase mean-field theory puts a network in at initialisation (Poole et al. 2016;
/// Schoenholz et al. 2017), from chi_1, the factor it predicts for the error's mean square
/// per layer, and the network's depth: *critical* where the error it predicts keeps its
/// size across all the network's hidden layers (sqrt(chi_1) to the power of the hidden
/// steps, the whole network's error factor, within the stable band of [`Regime`]),
/// *ordered* below that (chi_1 < 1: the error vanishes), *chaotic* above (it explodes).
/// The deeper the network, the closer to 1 chi_1 must be to count as critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// chi_1 below 1 by more than the network's depth leaves the error intact.
    Ordered,
    /// chi_1 close enough to 1 that the predicted error keeps its size across the network.
    Critical,
    /// chi_1 above 1 by more than the network's depth leaves the error intact.
    Chaotic,
}

impl Phase {
    /// All phases, ordered to chaotic.
    pub const ALL: [Self; 3] = [Self::Ordered, Self::Critical, Self::Chaotic];

    /// The phase of a network whose chi_1 is `chi_1`, over `hidden_steps` steps between
    /// hidden layers (L - 2 for L dense layers, as the error factor counts them); `None`
    /// for a NaN or negative chi_1.
    pub fn of(chi_1: f64, hidden_steps: usize) -> Option<Self> {
        if chi_1.is_nan() || chi_1 < 0.0 {
            return None;
        }
        let whole = chi_1.sqrt().powf(hidden_steps.max(1) as f64);
        Some(match Regime::of(whole)? {
            Regime::Vanishing => Self::Ordered,
            Regime::Stable => Self::Critical,
            Regime::Exploding => Self::Chaotic,
        })
    }

    /// Its name in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ordered => "ordered",
            Self::Critical => "critical",
            Self::Chaotic => "chaotic",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Phase {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_named(&Self::ALL, Self::name, s, "phase")
    }
}

crate::serde_as_text!(Phase);

/// The per-layer error factor of one logged step: the factor by which the root mean square
/// of the back-propagated error dC/dz is multiplied, per layer, from the last hidden layer
/// to the first, `(rms_1 / rms_H)^(1 / (H - 1))` over the H hidden layers. Below 1 the
/// error shrinks on its way to the input, above 1 it grows; its square is what mean-field
/// theory's chi_1 predicts.
///
/// The hidden layers all have the same width, so this equals the ratio of per-example
/// norms ||dC/dz_l||; the output layer (10 units, and the loss's own error) is left out,
/// so that a different width cannot pass for a change in the signal.
///
/// `None` with fewer than two hidden layers, without the mean squares (records from
/// before they were measured), or where the last hidden layer passes no error at all
/// while the first gets some (a factor that would be infinite says nothing). 0 where no
/// error reaches the first hidden layer.
pub fn error_factor(step: &StepRecord) -> Option<f64> {
    if let Some(time) = &step.time {
        return time_factor(time);
    }
    let hidden = step.layers.len().checked_sub(1)?;
    if hidden < 2 {
        return None;
    }
    let first = step.layers[0].delta_mean_sq?;
    let last = step.layers[hidden - 1].delta_mean_sq?;
    if first == 0.0 {
        return Some(0.0);
    }
    let factor = (first / last).powf(0.5 / (hidden - 1) as f64);
    (factor.is_finite() && factor > 0.0).then_some(factor)
}

/// A recurrent network's error factor per time step (time in place of depth):
/// [`crate::time::TimeRecord::step_factor`], with [`error_factor`]'s conventions: 0 where
/// no error reaches the first step, `None` where it is undefined or infinite.
fn time_factor(time: &crate::time::TimeRecord) -> Option<f64> {
    let first = time.steps.first()?.delta_l2;
    if time.steps.len() < 2 {
        return None;
    }
    if first == 0.0 {
        return Some(0.0);
    }
    let factor = time.step_factor;
    (factor.is_finite() && factor > 0.0).then_some(factor)
}

/// A run's per-layer error factor over training: the geometric mean of [`error_factor`]
/// over its logged steps after step 0 (step 0 is the initial network, which
/// [`error_factor`] of the first record gives). 0 when some step has a factor of 0 (no
/// error reaches the first hidden layer there); `None` when no step after the first has a
/// factor.
pub fn error_factor_over_training(steps: &[StepRecord]) -> Option<f64> {
    let factors: Vec<f64> = steps
        .iter()
        .filter(|s| s.step > 0)
        .filter_map(error_factor)
        .collect();
    if factors.is_empty() {
        return None;
    }
    if factors.contains(&0.0) {
        return Some(0.0);
    }
    Some((factors.iter().map(|f| f.ln()).sum::<f64>() / factors.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_runs_are_solved_on_one_side_of_the_threshold_only() {
        let ok = RunStatus::Ok;
        let below = SOLVED_MSE * (1.0 - 1e-9);
        assert_eq!(RegressionClass::of(ok, below), RegressionClass::Solved);
        assert_eq!(
            RegressionClass::of(ok, SOLVED_MSE),
            RegressionClass::Unsolved
        );
        assert_eq!(
            RegressionClass::of(ok, CONSTANT_PREDICTOR_MSE),
            RegressionClass::Unsolved
        );
        assert_eq!(RegressionClass::of(ok, f64::NAN), RegressionClass::Unsolved);
        let diverged = RunStatus::Diverged { step: 3 };
        assert_eq!(
            RegressionClass::of(diverged, 0.0),
            RegressionClass::Diverged
        );
        let names: Vec<String> = RegressionClass::ALL.iter().map(|c| c.to_string()).collect();
        assert_eq!(names, ["solved", "unsolved", "diverged"]);
    }

    #[test]
    fn outcome_codes_order_the_classes_best_first() {
        let codes = RunClass::ALL.map(RunClass::code);
        assert_eq!(codes, [1.0, 0.0, -1.0]);
    }

    #[test]
    fn phases_share_the_regimes_thresholds_on_both_sides() {
        // Over 4 hidden steps the whole network's factor is chi_1^2: the band's edges sit
        // at chi_1 = STABLE_BAND^(+-1/2).
        let edge = STABLE_BAND.sqrt();
        let below = |x: f64| x * (1.0 - 1e-9);
        let above = |x: f64| x * (1.0 + 1e-9);
        assert_eq!(Phase::of(below(1.0 / edge), 4), Some(Phase::Ordered));
        assert_eq!(Phase::of(above(1.0 / edge), 4), Some(Phase::Critical));
        assert_eq!(Phase::of(1.0, 4), Some(Phase::Critical));
        assert_eq!(Phase::of(below(edge), 4), Some(Phase::Critical));
        assert_eq!(Phase::of(above(edge), 4), Some(Phase::Chaotic));
        // Deeper, the same chi_1 leaves the critical band.
        assert_eq!(Phase::of(0.99, 4), Some(Phase::Critical));
        assert_eq!(Phase::of(0.99, 198), Some(Phase::Ordered));
        assert_eq!(Phase::of(f64::NAN, 4), None);
        assert_eq!(Phase::of(-1.0, 4), None);
        for p in Phase::ALL {
            assert_eq!(p.name().parse::<Phase>().unwrap(), p);
        }
    }
    use crate::LayerRecord;

    fn step(step: usize, mean_squares: &[f64]) -> StepRecord {
        let layer = |l: usize, ms: f64| LayerRecord {
            delta_mean_sq: Some(ms),
            delta_mean_abs: ms.sqrt(),
            ..LayerRecord::empty(l)
        };
        StepRecord {
            step,
            loss: 1.0,
            train_acc: 0.5,
            val_acc: None,
            jacobian: None,
            chain: None,
            layers: mean_squares
                .iter()
                .enumerate()
                .map(|(i, &ms)| layer(i + 1, ms))
                .collect(),
            time: None,
        }
    }

    #[test]
    fn runs_are_classed_by_status_and_accuracy_against_chance() {
        assert_eq!(chance_accuracy(), 0.1);
        let ok = RunStatus::Ok;
        assert_eq!(RunClass::of(ok, 0.16), RunClass::Trained);
        assert_eq!(RunClass::of(ok, 0.15), RunClass::Collapsed);
        assert_eq!(RunClass::of(ok, 0.098), RunClass::Collapsed);
        assert_eq!(RunClass::of(ok, f64::NAN), RunClass::Collapsed);
        let diverged = RunStatus::Diverged { step: 3 };
        assert_eq!(RunClass::of(diverged, 0.9), RunClass::Diverged);
        for class in RunClass::ALL {
            assert_eq!(class.name().parse::<RunClass>().unwrap(), class);
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{class}\""));
        }
        assert_eq!(
            "dead".parse::<RunClass>().unwrap_err().to_string(),
            "invalid run class `dead`: expected one of trained, collapsed, diverged"
        );
    }

    #[test]
    fn regimes_split_at_the_band_around_one() {
        assert_eq!(Regime::of(0.79), Some(Regime::Vanishing));
        assert_eq!(Regime::of(0.8), Some(Regime::Stable));
        assert_eq!(Regime::of(1.0), Some(Regime::Stable));
        assert_eq!(Regime::of(1.25), Some(Regime::Stable));
        assert_eq!(Regime::of(1.26), Some(Regime::Exploding));
        assert_eq!(Regime::of(0.0), Some(Regime::Vanishing));
        assert_eq!(Regime::of(f64::INFINITY), Some(Regime::Exploding));
        assert_eq!(Regime::of(f64::NAN), None);
        for regime in Regime::ALL {
            assert_eq!(regime.name().parse::<Regime>().unwrap(), regime);
        }
        assert!("flat".parse::<Regime>().is_err());
    }

    #[test]
    fn the_error_factor_reads_the_hidden_layers_only() {
        // Hidden mean squares 16, 4, 1 (rms 4, 2, 1): the error halves per layer toward
        // the output, so it doubles per layer toward the input; the output's 100 is left
        // out.
        let s = step(0, &[16.0, 4.0, 1.0, 100.0]);
        assert_eq!(error_factor(&s), Some(2.0));
        // Rms 1, 3, 9: a factor of 1/3 per layer.
        let s = step(0, &[1.0, 9.0, 81.0, 0.5]);
        assert!((error_factor(&s).unwrap() - 1.0 / 3.0).abs() < 1e-15);
        // One hidden layer has no chain; a first layer without error is a factor of 0;
        // a last hidden layer without error, with some below, has none.
        assert_eq!(error_factor(&step(0, &[1.0, 2.0])), None);
        assert_eq!(error_factor(&step(0, &[0.0, 0.0, 1.0])), Some(0.0));
        assert_eq!(error_factor(&step(0, &[1.0, 0.0, 1.0])), None);
        let mut old = step(0, &[1.0, 1.0, 1.0]);
        old.layers[0].delta_mean_sq = None;
        assert_eq!(error_factor(&old), None);
    }

    #[test]
    fn over_training_is_the_geometric_mean_after_step_0() {
        let steps = [
            step(0, &[100.0, 1.0, 1.0]),
            step(200, &[4.0, 1.0, 1.0]),
            step(400, &[1.0, 4.0, 1.0]),
            step(600, &[16.0, 1.0, 1.0]),
        ];
        // Step 0 (factor 10) is left out; 2, 1/2 and 4 give 2^(1/3) * ... = (4)^(1/3).
        let got = error_factor_over_training(&steps).unwrap();
        assert!((got - 4f64.cbrt()).abs() < 1e-12, "{got}");
        assert_eq!(error_factor_over_training(&steps[..1]), None);
        let dead = [step(0, &[1.0, 1.0, 1.0]), step(200, &[0.0, 0.0, 1.0])];
        assert_eq!(error_factor_over_training(&dead), Some(0.0));
    }
}
