//! The committed sweep files and reports agree with each other: the optimizer sweep trains
//! each optimizer at the rate its learning-rate search chose for that activation.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use vgrad_sweep::{Overrides, Sweep};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_optimizer_sweep_uses_the_rates_its_search_chose_per_activation() {
    let ws = workspace();
    let search: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join("reports/optimizer_lr.json")).unwrap(),
    )
    .unwrap();
    let best = |setting: &str| -> f64 {
        search["learning_rates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["setting"] == setting)
            .unwrap_or_else(|| panic!("no search for {setting}"))["best_lr"]
            .as_f64()
            .unwrap()
    };
    let sweep = Sweep::load(
        &ws.join("experiments/optimizer.toml"),
        &Overrides::default(),
    )
    .unwrap();
    let mut checked = 0;
    for point in &sweep.points {
        let c = &point.config;
        let setting = format!("{}, optimizer {}", c.activation, c.optimizer);
        assert_eq!(
            c.lr,
            best(&setting),
            "{}: the search chose another rate",
            point.label()
        );
        checked += 1;
    }
    // Two activations, three optimizers, two depths.
    assert_eq!(checked, 12);
}
