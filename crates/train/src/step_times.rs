//! How long a run's training steps took: the median step that was not logged, and the
//! median logged one, whose difference is what the probe and the records cost once every
//! `--log-every` steps. Two processes' times for the same run vary by more than that cost
//! on a shared machine; one run's own medians do not.

/// The durations of one run's training steps, by whether the step was logged.
#[derive(Debug, Clone, Default)]
pub struct StepTimes {
    /// Microseconds of each step that was not logged.
    plain: Vec<f64>,
    /// Microseconds of each logged step but step 0.
    logged: Vec<f64>,
}

impl StepTimes {
    /// Room for `steps` steps.
    pub fn with_capacity(steps: usize) -> Self {
        Self {
            plain: Vec::with_capacity(steps),
            logged: Vec::new(),
        }
    }

    /// Adds step `step`, which took `us` microseconds and was logged or not. Step 0 is
    /// left out: it is also the first touch of every buffer and builds the probe's
    /// tables, which every run pays once, logging or not.
    pub fn add(&mut self, step: usize, logged: bool, us: f64) {
        match (step, logged) {
            (0, _) => {}
            (_, true) => self.logged.push(us),
            (_, false) => self.plain.push(us),
        }
    }

    /// The median microseconds of a step that was not logged (NaN for none).
    pub fn step_us(&self) -> f64 {
        median(&self.plain)
    }

    /// The median microseconds of a logged step after step 0 (NaN for none).
    pub fn logged_step_us(&self) -> f64 {
        median(&self.logged)
    }
}

/// The median of `values`, the mean of the middle two for an even count (NaN for none).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_split_logged_from_plain_steps_and_leave_out_step_0() {
        let mut times = StepTimes::with_capacity(8);
        assert!(times.step_us().is_nan() && times.logged_step_us().is_nan());
        // Step 0 is logged and slow; steps 2 and 4 are logged too.
        for (step, us) in [9000.0, 61.0, 300.0, 59.0, 340.0, 60.0, 80.0]
            .into_iter()
            .enumerate()
        {
            times.add(step, step % 2 == 0 && step < 6, us);
        }
        // 61, 59, 60 and 80: the mean of 60 and 61. 300 and 340: their mean.
        assert_eq!(times.step_us(), 60.5);
        assert_eq!(times.logged_step_us(), 320.0);
        times.add(7, true, 1000.0);
        assert_eq!(times.logged_step_us(), 340.0);
    }
}
