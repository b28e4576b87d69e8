//! Numbers and lists as a report writes them.

use crate::stats::{AccuracySummary, GeometricSummary};

/// `x` with `sig` significant figures: fixed notation from 0.001 to 99,999, scientific
/// (`4.63e-4`) outside; `n/a` for NaN.
pub fn sig(x: f64, sig: usize) -> String {
    if x.is_nan() {
        return "n/a".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let magnitude = x.abs().log10().floor() as i32;
    if (-3..5).contains(&magnitude) {
        let decimals = (sig as i32 - 1 - magnitude).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        let text = format!("{:.*e}", sig.saturating_sub(1), x);
        text.replace("e-0", "e-").replace("e0", "e")
    }
}

/// A value with its 95% interval: `47.6 [41.2, 55.0]`; the value alone without one.
pub fn with_ci(value: f64, low: f64, high: f64) -> String {
    if low.is_nan() || high.is_nan() {
        sig(value, 3)
    } else {
        format!("{} [{}, {}]", sig(value, 3), sig(low, 3), sig(high, 3))
    }
}

/// A geometric summary with its interval, `n/a` for none.
pub fn geometric(g: Option<GeometricSummary>) -> String {
    g.map_or("n/a".into(), |g| with_ci(g.geo_mean, g.ci_low, g.ci_high))
}

/// A fraction as a percentage with one decimal: `89.5%`.
pub fn percent(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1}%", 100.0 * x)
    }
}

/// An accuracy with its 95% interval: `89.2% [88.8%, 89.6%]`; `n/a` for none.
pub fn accuracy(a: Option<AccuracySummary>) -> String {
    match a {
        None => "n/a".into(),
        Some(a) if a.ci_low.is_nan() => percent(a.mean),
        Some(a) => format!(
            "{} [{}, {}]",
            percent(a.mean),
            percent(a.ci_low),
            percent(a.ci_high)
        ),
    }
}

/// `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `1 run` or `3 runs`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A scenario's label as a sentence shows it.
pub fn bold(label: &str) -> String {
    format!("**{label}**")
}

/// `n` with commas between groups of three digits (1,200).
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_figures() {
        assert_eq!(sig(47.593, 3), "47.6");
        assert_eq!(sig(7.5204, 3), "7.52");
        assert_eq!(sig(0.70042, 3), "0.700");
        assert_eq!(sig(0.000463, 3), "4.63e-4");
        assert_eq!(sig(0.00463, 3), "0.00463");
        assert_eq!(sig(123456.0, 3), "1.23e5");
        assert_eq!(sig(1234.6, 3), "1235");
        assert_eq!(sig(f64::NAN, 3), "n/a");
        assert_eq!(with_ci(10.0, 8.0, 12.5), "10.0 [8.00, 12.5]");
        assert_eq!(percent(0.8945), "89.5%");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(count(1, "run", "runs"), "1 run");
        let a = AccuracySummary::of(&[0.8, 0.9]);
        assert!(accuracy(a).starts_with("85.0% ["), "{}", accuracy(a));
        assert_eq!(accuracy(AccuracySummary::of(&[0.5])), "50.0%");
    }

    #[test]
    fn thousands_are_grouped_by_commas() {
        assert_eq!(thousands(1200), "1,200");
        assert_eq!(thousands(25), "25");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
