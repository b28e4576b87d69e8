//! One definition of a run: every field of the run configuration is a `vgrad train` flag,
//! a sweep-file key and a `config.json` field, with the same default in all three; and
//! the crates that read runs build without the tensor library.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

use clap::Parser;
use serde_json::Value;
use vgrad_cli::args::{Cli, Command as Subcommand};
use vgrad_record::config::text;
use vgrad_record::{ConfigFile, DataSource, DeviceChoice, Norm, RunConfig};
use vgrad_sweep::{Overrides, Sweep, SweepDefinition};

/// A configuration whose every field differs from the default. A new field of
/// `RunConfig` breaks this literal until it is given a value here, and so gets tested.
fn all_changed() -> RunConfig {
    RunConfig {
        model: vgrad_record::Architecture::Cnn,
        task: vgrad_record::Task::Adding,
        sequence_length: 25,
        recurrent_init: "orthogonal:1.5".parse().unwrap(),
        forget_bias: vgrad_record::ForgetBias::Set(1.0),
        activation: "leaky-relu:0.3".parse().unwrap(),
        layers: 3,
        width: 7,
        init: "he-normal".parse().unwrap(),
        bias_variance: vgrad_record::BiasVariance::Value(0.05),
        norm: Norm::Layer,
        residual: true,
        branch_scale: vgrad_record::BranchScale::SkipInit,
        steps: 11,
        batch_size: 5,
        optimizer: "momentum:0.5".parse().unwrap(),
        lr: 0.25,
        beta1: 0.5,
        beta2: 0.75,
        epsilon: 1e-6,
        clip_norm: 2.5,
        warmup_steps: 3,
        log_every: 4,
        log_first: 2,
        eval_every: 400,
        probe: vgrad_record::Probe::Basic,
        seed: 9,
        data: DataSource::Fashion,
        device: DeviceChoice::Auto,
    }
}

/// The configuration `vgrad train FLAGS` describes.
fn from_flags(flags: &[&str]) -> RunConfig {
    let cli = Cli::try_parse_from(["vgrad", "train"].iter().chain(flags)).unwrap();
    match cli.command {
        Subcommand::Train(args) => args.config,
        Subcommand::Selftest(_) | Subcommand::Peak(_) => panic!("not train"),
    }
}

/// The configuration of the single run of a sweep file.
fn from_sweep(text: &str) -> RunConfig {
    let definition = SweepDefinition::parse(text, Path::new("experiments/one.toml")).unwrap();
    let sweep = Sweep::new(definition, &Overrides::default()).unwrap();
    let seed = sweep.seeds[0];
    sweep.points[0].run_config(seed)
}

/// The default configuration with `field` set to `value`.
fn with_field(field: &str, value: &Value) -> RunConfig {
    with_field_of(RunConfig::default(), field, value)
}

/// `config` with `field` set to `value`.
fn with_field_of(config: RunConfig, field: &str, value: &Value) -> RunConfig {
    let mut object = serde_json::to_value(config).unwrap();
    object[field] = value.clone();
    serde_json::from_value(object).unwrap()
}

#[test]
fn every_field_is_a_flag_a_sweep_key_and_a_config_json_field_with_one_default() {
    let default = RunConfig::default();
    assert_eq!(from_flags(&[]), default, "the flags' defaults");
    assert_eq!(from_sweep("seeds = 1\n"), default, "a sweep's defaults");
    let empty: RunConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, default, "config.json's defaults");

    let changed = all_changed().fields();
    let defaults = default.fields();
    assert_eq!(
        changed.iter().map(|f| &f.0).collect::<Vec<_>>(),
        defaults.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((field, value), (_, default_value)) in changed.iter().zip(&defaults) {
        assert_ne!(
            value, default_value,
            "{field}: all_changed() must change it"
        );
        // A setting that only applies beside another is set with it.
        let recurrent = |model: &str| {
            vec![
                ("model", Value::from(model)),
                ("activation", Value::from("tanh")),
                ("layers", Value::from(2)),
            ]
        };
        let needs: Vec<(&str, Value)> = match field.as_str() {
            "branch_scale" => vec![("residual", Value::Bool(true))],
            "task" => [recurrent("gru"), vec![("sequence_length", Value::from(25))]].concat(),
            "sequence_length" => [recurrent("rnn"), vec![("task", Value::from("adding"))]].concat(),
            "recurrent_init" => recurrent("rnn"),
            "forget_bias" => recurrent("lstm"),
            _ => Vec::new(),
        };
        let needs = needs.as_slice();
        let mut want = with_field(field, value);
        for (other, v) in needs {
            want = with_field_of(want, other, v);
        }

        let flag = format!("--{}={}", field.replace('_', "-"), text(value));
        let mut flags = vec![flag.clone()];
        flags.extend(
            needs
                .iter()
                .map(|(o, v)| format!("--{}={}", o.replace('_', "-"), text(v))),
        );
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        assert_eq!(from_flags(&flags), want, "the flag {flag}");

        let literal = toml::Value::try_from(value).unwrap().to_string();
        let sweep = if field == "seed" {
            // A sweep's seeds are its top-level key, not a field of `[base]`.
            format!("seeds = [{literal}]\n")
        } else {
            let mut base = format!("seeds = 1\n[base]\n{field} = {literal}\n");
            for (other, v) in needs {
                let literal = toml::Value::try_from(v).unwrap().to_string();
                base.push_str(&format!("{other} = {literal}\n"));
            }
            base
        };
        assert_eq!(from_sweep(&sweep), want, "the sweep file\n{sweep}");

        let json = serde_json::to_value(ConfigFile::of(&want)).unwrap();
        assert_eq!(&json[field.as_str()], value, "config.json's {field}");
        let back: ConfigFile = serde_json::from_value(json).unwrap();
        assert_eq!(back.config, want, "config.json read back");
    }
}

#[test]
fn the_sweep_and_the_report_build_without_candle() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for package in ["vgrad-record", "vgrad-sweep", "vgrad-report"] {
        let output = Command::new(&cargo)
            .args(["tree", "--offline", "--edges", "normal", "--prefix", "none"])
            .args(["--package", package])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cargo tree: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let tree = String::from_utf8_lossy(&output.stdout);
        let heavy: Vec<&str> = tree
            .lines()
            .filter(|l| {
                ["candle", "vgrad-model", "vgrad-cli", "vgrad-train", "clap "]
                    .iter()
                    .any(|c| l.starts_with(c))
            })
            .collect();
        assert!(heavy.is_empty(), "{package} depends on {heavy:?}");
        assert!(tree.lines().count() > 3, "{tree}");
    }
}
