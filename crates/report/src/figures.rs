//! The report's figures, each built from one measure's statistics and drawn by [`plot`]:
//! legends beside the data, labelled axes, log scales where values span orders, at most
//! [`plot::MAX_SERIES`] series a panel (more are faceted), and coinciding series named in
//! the caption.

use std::path::Path;

use vgrad_record::class::STABLE_BAND;

use crate::document::Figure;
use crate::measures::Analysis;
use crate::measures::learning_rate::searches;
use crate::measures::phase::{PhaseMap, XI_C_MULTIPLE};
use crate::plot::{self, Axis, Guide, Kind, Panel, Scale, Series};
use crate::setting::{groups, varies, without_depth};
use crate::{ReportError, Result};

/// The figures of a report: those of the report itself and those of its appendix.
#[derive(Debug, Default)]
pub struct Figures {
    /// Beside the answer.
    pub main: Vec<Figure>,
    /// In `details.md`.
    pub details: Vec<Figure>,
}

fn axis(label: &str, scale: Scale, integer: bool) -> Axis {
    Axis {
        label: label.into(),
        scale,
        range: None,
        integer,
    }
}

fn steps() -> Axis {
    axis("training step", Scale::Linear, true)
}

fn lines(title: String, x: Axis, y: Axis, series: Vec<Series>) -> Panel {
    Panel {
        heat: None,
        title,
        x,
        y,
        kind: Kind::Lines,
        series,
        guides: Vec::new(),
    }
}

fn series(label: String, points: Vec<(f64, f64)>) -> Series {
    Series {
        label,
        points,
        bars: Vec::new(),
    }
}

/// The guides of the error factor's stable band.
fn band() -> Vec<Guide> {
    vec![
        Guide::Horizontal {
            y: STABLE_BAND,
            label: Some("edges of the stable band".into()),
        },
        Guide::Horizontal {
            y: 1.0 / STABLE_BAND,
            label: None,
        },
    ]
}

/// `members` split into panels of at most [`plot::MAX_SERIES`]: all in one while they fit,
/// else one per activation, then per depth, then in runs of the most a panel holds. Each
/// facet's title suffix and members.
fn facets(a: &Analysis, members: &[usize]) -> Vec<(String, Vec<usize>)> {
    if members.len() <= plot::MAX_SERIES {
        return vec![(String::new(), members.to_vec())];
    }
    let activation = |i: usize| a.scenarios[i].point.config.activation;
    let mut out = Vec::new();
    for (act, of) in groups_of(members, activation) {
        if of.len() <= plot::MAX_SERIES {
            out.push((act.to_string(), of));
            continue;
        }
        for (layers, of) in groups_of(&of, |i| a.scenarios[i].point.config.layers) {
            for (k, chunk) in of.chunks(plot::MAX_SERIES).enumerate() {
                let part = if of.len() > plot::MAX_SERIES {
                    format!(", part {}", k + 1)
                } else {
                    String::new()
                };
                out.push((format!("{act}, {layers} layers{part}"), chunk.to_vec()));
            }
        }
    }
    out
}

/// `members` grouped by `key`, in order of first appearance.
fn groups_of<K: PartialEq + Copy>(
    members: &[usize],
    key: impl Fn(usize) -> K,
) -> Vec<(K, Vec<usize>)> {
    let mut out: Vec<(K, Vec<usize>)> = Vec::new();
    for &i in members {
        let k = key(i);
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, of)) => of.push(i),
            None => out.push((k, vec![i])),
        }
    }
    out
}

/// Scenario `i`'s label without its depth (its whole label where nothing else is left).
fn without_depth_label(a: &Analysis, i: usize) -> String {
    let label = a.scenarios[i].point.label_without("layers");
    if label.is_empty() { a.label(i) } else { label }
}

/// `base`, or `base: suffix`.
fn titled(base: &str, suffix: &str) -> String {
    if suffix.is_empty() {
        base.into()
    } else {
        format!("{base}: {suffix}")
    }
}

/// A panel's labels for its members: the scenario labels, or without the facet's own
/// part where the facet names it.
fn label(a: &Analysis, i: usize, facet: &str) -> String {
    let full = a.label(i);
    if facet.is_empty() {
        return full;
    }
    let act = a.scenarios[i].point.config.activation.to_string();
    let short = full
        .split(", ")
        .filter(|part| *part != act && !facet.contains(part))
        .collect::<Vec<_>>()
        .join(", ");
    if short.is_empty() { full } else { short }
}

/// One panel per facet of `members`: each scenario's `curve` over the logged steps, with
/// `title` and the y axis `y`.
fn curve_panels(
    a: &Analysis,
    members: &[usize],
    title: &str,
    y: &Axis,
    curve: impl Fn(&crate::ScenarioStats) -> Vec<(usize, f64)>,
) -> Vec<Panel> {
    facets(a, members)
        .into_iter()
        .map(|(facet, of)| {
            let s = of
                .iter()
                .map(|&i| {
                    let points = curve(&a.stats[i])
                        .into_iter()
                        .map(|(x, v)| (x as f64, v))
                        .collect();
                    series(label(a, i, &facet), points)
                })
                .collect();
            lines(titled(title, &facet), steps(), y.clone(), s)
        })
        .collect()
}

/// Draws `panels` into `dir/file` and the figure with `caption` and the plot's notes.
fn draw(dir: &Path, file: &str, caption: &str, panels: &[Panel]) -> Result<Option<Figure>> {
    let panels: Vec<Panel> = panels
        .iter()
        .filter(|p| p.heat.is_some() || p.series.iter().any(|s| !s.points.is_empty()))
        .cloned()
        .collect();
    if panels.is_empty() {
        return Ok(None);
    }
    let path = dir.join(file);
    let notes =
        plot::draw(&path, &panels).map_err(|message| ReportError::Figure { path, message })?;
    let mut caption = caption.to_string();
    for note in notes {
        caption.push(' ');
        caption.push_str(&note);
    }
    Ok(Some(Figure {
        file: file.into(),
        caption,
    }))
}

/// Draws every figure of the report into `dir`.
pub fn draw_all(a: &Analysis, dir: &Path) -> Result<Figures> {
    let mut f = Figures::default();
    if let Some(map) = &a.phase {
        // A phase diagram's grid has a scenario per (sigma_w^2, depth): its two maps say
        // what a curve per scenario would, in two figures instead of dozens of panels.
        let main = [phase_diagram(map, dir)?, phase_factor(a, map, dir)?];
        f.main.extend(main.into_iter().flatten());
        return Ok(f);
    }
    if crate::measures::through_time::applies(a) {
        let main = [time_profile(a, dir)?, training_loss(a, dir)?];
        f.main.extend(main.into_iter().flatten());
        return Ok(f);
    }
    if crate::measures::isometry::applies(a) {
        let main = [chain_spectra(a, dir)?, training_loss(a, dir)?];
        f.main.extend(main.into_iter().flatten());
        return Ok(f);
    }
    let main = [
        accuracy(a, dir)?,
        error_factor(a, dir)?,
        versus_depth(a, dir)?,
        error_profile(a, dir)?,
        theory_vs_measurement(a, dir)?,
        learning_rates(a, dir)?,
        learning_curves(a, dir)?,
        activation_inputs(a, dir)?,
    ];
    f.main.extend(main.into_iter().flatten());
    let details = [
        gradients(a, dir)?,
        update_ratio(a, dir)?,
        activation_hist(a, dir)?,
        delta_hist(a, dir)?,
    ];
    f.details.extend(details.into_iter().flatten());
    Ok(f)
}

/// The error through time, ||dC/dh_t|| relative to the last step's, against t on a log
/// axis (the figure of Bengio et al. 1994 and Pascanu et al. 2013): at step 0 and at the
/// last logged step, one line per scenario, a pair of panels per model where a sweep has
/// more scenarios than a panel holds.
fn time_profile(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    use crate::measures::through_time::TimeStats;
    let all: Vec<usize> = (0..a.scenarios.len()).collect();
    let groups: Vec<(String, Vec<usize>)> = if all.len() <= plot::MAX_SERIES {
        vec![(String::new(), all)]
    } else {
        groups_of(&all, |i| a.scenarios[i].point.config.model)
            .into_iter()
            .map(|(model, of)| (model.to_string(), of))
            .collect()
    };
    let x = axis("time step t", Scale::Linear, true);
    let y = axis("||dC/dh_t|| / ||dC/dh_T|| (log)", Scale::Log, false);
    let mut panels = Vec::new();
    for (group, of) in &groups {
        let mut end_step = None;
        for (when, pick) in [
            (
                "step 0",
                (|t: &TimeStats| &t.profile_start) as fn(&TimeStats) -> &Vec<f64>,
            ),
            ("end of training", |t: &TimeStats| &t.profile_end),
        ] {
            let s = of
                .iter()
                .map(|&i| {
                    if when != "step 0" {
                        end_step = end_step.or(a.time[i].last_step);
                    }
                    let points = pick(&a.time[i])
                        .iter()
                        .enumerate()
                        .map(|(t, &v)| ((t + 1) as f64, v))
                        .collect();
                    let name = if group.is_empty() {
                        a.label(i)
                    } else {
                        label(a, i, group)
                    };
                    series(name, points)
                })
                .collect();
            let when = match (when, end_step) {
                ("step 0", _) => "step 0".to_string(),
                (_, Some(step)) => format!("step {step}"),
                (w, None) => w.to_string(),
            };
            let title = titled(&format!("Error through time, {when}"), group);
            panels.push(lines(title, x.clone(), y.clone(), s));
        }
    }
    draw(
        dir,
        "time_profile.svg",
        "The norm of the error at each hidden state, ||dC/dh_t|| over the batch and the units, relative to the last time step's, on a log axis: at step 0 over every run and at the last logged step over the trained runs, geometric mean over seeds. A line falling toward t = 1 is an error that vanishes on its way back in time.",
        &panels,
    )
}

/// The densities of the hidden chain's singular values at step 0 on a log axis, a panel
/// per chain depth and a line per scenario (Pennington et al. 2017's figure).
fn chain_spectra(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let x = axis(
        "singular value of d h_(L-1) / d h_1 (log)",
        Scale::Log,
        false,
    );
    let y = axis("share of singular values per decade", Scale::Linear, false);
    let all: Vec<usize> = (0..a.scenarios.len()).collect();
    let panels = groups_of(&all, |i| a.scenarios[i].point.config.layers)
        .into_iter()
        .map(|(layers, of)| {
            let s = of
                .iter()
                .filter_map(|&i| {
                    let density = a.stats[i].isometry.chain.as_ref()?.density();
                    // From the first bucket with a value to the last, zeros between kept.
                    let first = density.iter().position(|p| p.1 > 0.0)?;
                    let last = density.iter().rposition(|p| p.1 > 0.0)?;
                    let name = a.scenarios[i].point.label_without("layers");
                    Some(series(name, density[first..=last].to_vec()))
                })
                .collect();
            let title = format!("Chain depth {}, step 0", layers.saturating_sub(2));
            lines(title, x.clone(), y.clone(), s)
        })
        .collect::<Vec<Panel>>();
    draw(
        dir,
        "chain_spectra.svg",
        "The singular values of the hidden chain d h_(L-1) / d h_1 at step 0, pooled over the probe's test images and the seeds: the share per decade (ten buckets a decade), on a log axis of singular values. An isometry is a spike at 1. Values below 1e-12 of the largest are not resolved by the f64 product: those above 1e-16 are drawn at the left end, smaller ones and zeros not at all, so a curve's area is its share above 1e-16.",
        &panels,
    )
}

/// The training loss on the logged batches over training, trained runs, on a log axis.
fn training_loss(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let regression = crate::measures::through_time::is_regression(a);
    let what = if regression {
        "mean squared error on the logged batch (log)"
    } else {
        "cross-entropy on the logged batch (log)"
    };
    let y = axis(what, Scale::Log, false);
    let panels = curve_panels(a, &a.with_trained(), "Training loss", &y, |st| {
        st.outcome.loss_curve.clone()
    });
    let guide = regression.then(|| Guide::Horizontal {
        y: vgrad_record::class::CONSTANT_PREDICTOR_MSE,
        label: Some("predicting the mean".into()),
    });
    let panels: Vec<Panel> = panels
        .into_iter()
        .map(|mut p| {
            p.guides.extend(guide.clone());
            p
        })
        .collect();
    draw(
        dir,
        "training_loss.svg",
        "The loss on the logged training batches over training, geometric mean over the trained runs, on a log axis.",
        &panels,
    )
}

/// Training accuracy on the logged batches, trained runs.
fn accuracy(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let mut y = axis("accuracy on the logged batch", Scale::Linear, false);
    y.range = Some((0.0, 1.0));
    let panels = curve_panels(a, &a.with_trained(), "Training accuracy", &y, |st| {
        st.outcome.train_curve.clone()
    });
    draw(
        dir,
        "accuracy.svg",
        "Accuracy on the logged training batches, mean over the trained runs.",
        &panels,
    )
}

/// The error factor at every logged step, trained runs.
fn error_factor(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let y = axis(
        "rms dC/dz, layer l over layer l + 1 (log)",
        Scale::Log,
        false,
    );
    let mut panels = curve_panels(a, &a.with_trained(), "Per-layer error factor", &y, |st| {
        st.regime.curve.clone()
    });
    for p in &mut panels {
        p.guides = band();
    }
    draw(
        dir,
        "error_factor.svg",
        "The per-layer factor of the back-propagated error's rms over the hidden layers, toward the input, at every logged step (geometric mean over the trained runs; step 0 is the initial network). Below the band the error vanishes, above it it explodes.",
        &panels,
    )
}

/// The error factor at step 0 and over training against depth.
fn versus_depth(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    if !varies(a.scenarios, |c| c.layers) {
        return Ok(None);
    }
    let lines_of: Vec<(String, Vec<usize>)> = groups(a.scenarios, without_depth)
        .into_iter()
        .map(|(_, of)| (without_depth_label(a, of[0]), of))
        .collect();
    let pick = |start: bool| {
        move |i: usize| {
            let r = &a.stats[i].regime;
            if start { r.start } else { r.training }
        }
    };
    let mut panels = Vec::new();
    for chunk in lines_of.chunks(plot::MAX_SERIES) {
        for (start, title) in [
            (true, "Error factor at initialisation"),
            (false, "Error factor over training"),
        ] {
            let s = chunk
                .iter()
                .map(|(name, of)| {
                    let with: Vec<(f64, crate::stats::GeometricSummary)> = of
                        .iter()
                        .filter_map(|&i| {
                            Some((
                                a.scenarios[i].point.config.layers as f64,
                                pick(start)(i).split.positive?,
                            ))
                        })
                        .collect();
                    Series {
                        label: name.clone(),
                        points: with.iter().map(|(x, g)| (*x, g.geo_mean)).collect(),
                        bars: with
                            .iter()
                            .filter(|(_, g)| g.ci_low.is_finite())
                            .map(|(x, g)| (*x, g.ci_low, g.ci_high))
                            .collect(),
                    }
                })
                .collect();
            let mut p = lines(
                title.into(),
                axis("dense layers", Scale::Linear, true),
                axis("per-layer error factor (log)", Scale::Log, false),
                s,
            );
            p.guides = band();
            panels.push(p);
        }
    }
    draw(
        dir,
        "factor_vs_depth.svg",
        "The per-layer error factor against depth, at step 0 (every run) and over training (trained runs): geometric mean over seeds with its 95% interval.",
        &panels,
    )
}

/// The error's rms per layer, at step 0 and over training.
fn error_profile(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let with = a.with_finished();
    let deepest = with
        .iter()
        .map(|&i| a.scenarios[i].point.config.layers)
        .max()
        .unwrap_or(0);
    // Over depth sweeps the deepest networks show the profile; the table gives the rest.
    let of: Vec<usize> = with
        .into_iter()
        .filter(|&i| a.scenarios[i].point.config.layers == deepest)
        .collect();
    let mut panels = Vec::new();
    for (facet, members) in facets(a, &of) {
        for (start, title) in [
            (true, "Error per layer at step 0"),
            (false, "Error per layer over training"),
        ] {
            let s = members
                .iter()
                .map(|&i| {
                    let p = &a.stats[i].profile.error_rms;
                    let values = if start { &p.start } else { &p.training };
                    series(
                        label(a, i, &facet),
                        values
                            .iter()
                            .enumerate()
                            .filter_map(|(l, v)| Some(((l + 1) as f64, (*v)?)))
                            .collect(),
                    )
                })
                .collect();
            panels.push(lines(
                titled(title, &facet),
                axis("layer (1 = first hidden, L = output)", Scale::Linear, true),
                axis("rms dC/dz (log)", Scale::Log, false),
                s,
            ));
        }
    }
    let which = if varies(a.scenarios, |c| c.layers) {
        format!(" Networks of {deepest} layers.")
    } else {
        String::new()
    };
    draw(
        dir,
        "error_profile.svg",
        &format!(
            "The root mean square of the back-propagated error dC/dz at each layer, at step 0 (every run) and over training (trained runs), geometric mean over seeds.{which}"
        ),
        &panels,
    )
}

/// The measured error factor at step 0 against the theory's prediction.
fn theory_vs_measurement(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let with: Vec<(usize, f64, f64)> = a
        .with_finished()
        .into_iter()
        .filter_map(|i| {
            let c = a.stats[i].mean_field.chain?;
            Some((
                i,
                c.predicted_factor()?,
                a.stats[i].regime.start.split.positive?.geo_mean,
            ))
        })
        .collect();
    if with.is_empty() {
        return Ok(None);
    }
    // One series per setting but the depth, so that each scenario is told apart; its
    // points are its depths.
    let settings: Vec<(String, Vec<usize>)> = groups(a.scenarios, without_depth)
        .into_iter()
        .map(|(_, of)| (without_depth_label(a, of[0]), of))
        .filter(|(_, of)| with.iter().any(|w| of.contains(&w.0)))
        .collect();
    let mut panels = Vec::new();
    for chunk in settings.chunks(plot::MAX_SERIES) {
        let s = chunk
            .iter()
            .map(|(name, of)| {
                series(
                    name.clone(),
                    with.iter()
                        .filter(|w| of.contains(&w.0))
                        .map(|w| (w.1, w.2))
                        .collect(),
                )
            })
            .collect();
        panels.push(Panel {
            heat: None,
            title: "Measured against predicted, step 0".into(),
            x: axis("sqrt(chi_1) from first principles (log)", Scale::Log, false),
            y: axis("measured per-layer error factor (log)", Scale::Log, false),
            kind: Kind::Points,
            series: s,
            guides: vec![Guide::Diagonal {
                factor: 1.0,
                label: Some("theory exact".into()),
            }],
        });
    }
    draw(
        dir,
        "theory_vs_measurement.svg",
        "Each plain network's per-layer error factor at step 0 (geometric mean over its runs) against the factor sqrt(chi_1) that mean-field theory predicts from the activation and the weight variance alone; one series per setting, one marker per depth where the depth varies.",
        &panels,
    )
}

/// Validation accuracy against the learning rate, per setting.
fn learning_rates(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let all = searches(a);
    if all.is_empty() {
        return Ok(None);
    }
    let panels: Vec<Panel> = all
        .chunks(plot::MAX_SERIES)
        .map(|chunk| {
            let s = chunk
                .iter()
                .map(|search| {
                    let points = search.rates.iter().map(|r| (r.0, r.1)).collect();
                    series(
                        a.scenarios[search.example].point.label_without("lr"),
                        points,
                    )
                })
                .collect();
            let mut p = lines(
                "Validation accuracy by learning rate".into(),
                axis("learning rate (log)", Scale::Log, false),
                axis("mean validation accuracy", Scale::Linear, false),
                s,
            );
            p.y.range = Some((0.0, 1.0));
            p
        })
        .collect();
    draw(
        dir,
        "learning_rate.svg",
        "Mean validation accuracy over the seeds at each learning rate (a diverged run counts as a guess).",
        &panels,
    )
}

/// Validation accuracy over training (sweeps with `eval_every`).
fn learning_curves(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    // As the error rate on a log axis: accuracies near 1 (97.2% against 98.1%) part there.
    let y = axis("validation error, 1 - accuracy (log)", Scale::Log, false);
    let panels = curve_panels(a, &a.with_trained(), "Validation error", &y, |st| {
        st.outcome
            .val_curve
            .iter()
            .map(|&(x, acc)| (x, 1.0 - acc))
            .collect()
    });
    draw(
        dir,
        "learning_curves.svg",
        "The error rate (1 - accuracy) on the 5,000 held-out validation images over training, mean over the trained runs, on a log axis so that accuracies near 1 stay apart; the last point is the end of training.",
        &panels,
    )
}

/// The last hidden layer's activation input over training (Ioffe & Szegedy 2015, Figure 1).
fn activation_inputs(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    if !a.sweep.points.iter().any(|p| p.config.eval_every > 0) {
        return Ok(None);
    }
    let panels: Vec<Panel> = a
        .with_trained()
        .into_iter()
        .filter(|&i| !a.stats[i].activations.last_input.is_empty())
        .take(8)
        .map(|i| {
            let c = &a.stats[i].activations.last_input;
            let line = |k: usize, name: &str| {
                series(
                    name.into(),
                    c.iter().map(|(step, p)| (*step as f64, p[k])).collect(),
                )
            };
            lines(
                a.label(i),
                steps(),
                axis("last hidden layer's activation input", Scale::Linear, false),
                vec![
                    line(2, "85th percentile"),
                    line(1, "median"),
                    line(0, "15th percentile"),
                ],
            )
        })
        .collect();
    draw(
        dir,
        "activation_inputs.svg",
        "The 15th, 50th and 85th percentiles of the last hidden layer's activation input (after the normalisation, where there is one) over its units and the batch's examples, at every logged step, mean over the trained runs (Ioffe & Szegedy 2015, Figure 1b, c).",
        &panels,
    )
}

/// The post's two figures: the first and the last layer's mean |dC/dW| over training.
fn gradients(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let y = axis("mean |dC/dW| (log)", Scale::Log, false);
    let with = a.with_trained();
    let first = curve_panels(a, &with, "Mean |dC/dW|, layer 1", &y, |st| {
        st.decay.grad_first.clone()
    });
    let last = curve_panels(a, &with, "Mean |dC/dW|, layer L", &y, |st| {
        st.decay.grad_last.clone()
    });
    draw(
        dir,
        "gradients.svg",
        "The mean absolute weight gradient of the first and of the last layer over training, geometric mean over the trained runs: the reference post's two figures.",
        &interleave(first, last),
    )
}

/// The first and the last layer's update-to-weight ratio over training.
fn update_ratio(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let y = axis("||dW|| / ||W|| per step (log)", Scale::Log, false);
    let with = a.with_trained();
    let first = curve_panels(a, &with, "Update ratio, layer 1", &y, |st| {
        st.updates.curve_first.clone()
    });
    let last = curve_panels(a, &with, "Update ratio, layer L", &y, |st| {
        st.updates.curve_last.clone()
    });
    let mut panels = interleave(first, last);
    for p in &mut panels {
        p.guides = vec![Guide::Horizontal {
            y: 1e-3,
            label: Some("rule of thumb, 1e-3".into()),
        }];
    }
    draw(
        dir,
        "update_ratio.svg",
        "How far the first and the last layer's weights move per step relative to their size, geometric mean over the trained runs.",
        &panels,
    )
}

/// `a` and `b` side by side, facet by facet: a[0], b[0], a[1], b[1], ...
fn interleave(a: Vec<Panel>, b: Vec<Panel>) -> Vec<Panel> {
    a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect()
}

/// At most this many scenarios get a histogram panel.
const MAX_HISTOGRAM_PANELS: usize = 8;

/// Histogram panels at step 0: one per scenario, one line per layer (at most eight).
fn histogram_panels(
    a: &Analysis,
    pick: fn(
        &crate::measures::activations::Activations,
    ) -> &Vec<Option<crate::measures::activations::MeanHistogram>>,
    magnitude: bool,
    x_label: &str,
) -> Vec<Panel> {
    let with: Vec<usize> = a
        .with_finished()
        .into_iter()
        .filter(|&i| !pick(&a.stats[i].activations).is_empty())
        .collect();
    if with.len() > MAX_HISTOGRAM_PANELS {
        return Vec::new();
    }
    with.into_iter()
        .map(|i| {
            let layers = pick(&a.stats[i].activations);
            let n = layers.len();
            // Evenly spread layers, first and last included.
            let shown: Vec<usize> = if n <= plot::MAX_SERIES {
                (0..n).collect()
            } else {
                (0..plot::MAX_SERIES)
                    .map(|k| k * (n - 1) / (plot::MAX_SERIES - 1))
                    .collect()
            };
            let s = shown
                .into_iter()
                .filter_map(|l| {
                    let h = layers[l].as_ref()?;
                    let points = if magnitude {
                        magnitude_buckets(h)
                    } else {
                        linear_buckets(h)
                    };
                    Some(series(format!("layer {}", l + 1), points))
                })
                .collect();
            let x = axis(
                x_label,
                if magnitude { Scale::Log } else { Scale::Linear },
                false,
            );
            lines(
                a.label(i),
                x,
                axis("share of values", Scale::Linear, false),
                s,
            )
        })
        .collect()
}

/// Each bucket of a linear histogram at its centre, with its share; the open end buckets
/// at the edges.
fn linear_buckets(h: &crate::measures::activations::MeanHistogram) -> Vec<(f64, f64)> {
    let e = &h.edges;
    (0..h.share.len())
        .map(|k| {
            let x = match k {
                0 => e[0],
                k if k == e.len() => e[e.len() - 1],
                k => (e[k - 1] + e[k]) / 2.0,
            };
            (x, h.share[k])
        })
        .collect()
}

/// A symmetric log-spaced histogram folded onto magnitudes: each magnitude bucket's share
/// (both signs) at its upper edge.
fn magnitude_buckets(h: &crate::measures::activations::MeanHistogram) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (k, share) in h.share.iter().enumerate() {
        let edge = h.edges.get(k).copied().unwrap_or(f64::INFINITY);
        let lower = if k == 0 {
            f64::NEG_INFINITY
        } else {
            h.edges[k - 1]
        };
        // The bucket (lower, edge]: on the positive side its magnitudes reach `edge`, on
        // the negative side `-lower`; the open end buckets (beyond 10) are left out.
        let magnitude = if lower >= 0.0 { edge } else { -lower };
        if !magnitude.is_finite() {
            continue;
        }
        match out.iter_mut().find(|(m, _)| *m == magnitude) {
            Some((_, s)) => *s += share,
            None => out.push((magnitude, *share)),
        }
    }
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    out
}

/// Glorot & Bengio 2010's Figure 6 at step 0.
fn activation_hist(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let panels = histogram_panels(a, |x| &x.act_hist, false, "activation output");
    draw(
        dir,
        "activation_hist.svg",
        "The activation's output at step 0, one line per hidden layer: each bucket's share of the values over a logged batch's examples and the layer's units, at the bucket's centre, mean over every run (Glorot & Bengio 2010, Figure 6); values beyond -5 and 5 are drawn at the ends.",
        &panels,
    )
}

/// Glorot & Bengio 2010's Figure 7 at step 0.
fn delta_hist(a: &Analysis, dir: &Path) -> Result<Option<Figure>> {
    let panels = histogram_panels(a, |x| &x.delta_hist, true, "magnitude of dC/dz (log)");
    draw(
        dir,
        "delta_hist.svg",
        "The back-propagated error dC/dz at each layer at step 0 by magnitude (both signs), one line per layer: each bucket's share of a logged batch's values, mean over every run (Glorot & Bengio 2010, Figure 7). A vanishing error moves left from the output layer to layer 1.",
        &panels,
    )
}

/// 6 xi_c over a fine grid of sigma_w^2 across the map, for the line drawn over it.
fn depth_bound_curve(map: &PhaseMap) -> Vec<(f64, f64)> {
    let (lo, hi) = (map.sigma_w2s[0], map.sigma_w2s[map.sigma_w2s.len() - 1]);
    let fine: Vec<f64> = (0..=240)
        .map(|k| lo + (hi - lo) * f64::from(k) / 240.0)
        .collect();
    let grid = vgrad_theory::phase_diagram(map.activation, &fine, &[map.sigma_b2]);
    fine.iter()
        .zip(&grid[0])
        .map(|(&w, scales)| {
            let bound = scales.map_or(f64::NAN, |s| XI_C_MULTIPLE * s.xi_c);
            // The edge itself, where 6 xi_c is infinite, breaks the line.
            (w, if bound.is_finite() { bound } else { f64::NAN })
        })
        .collect()
}

/// Test and training accuracy over (sigma_w^2, depth), with the theory's 6 xi_c over them.
fn phase_diagram(map: &PhaseMap, dir: &Path) -> Result<Option<Figure>> {
    let x = axis(
        "sigma_w^2 (weights N(0, sigma_w^2 / fan-in))",
        Scale::Linear,
        false,
    );
    let y = axis("dense layers (log)", Scale::Log, true);
    let curve = depth_bound_curve(map);
    let panel = |title: &str, label: &str, value: fn(&crate::measures::phase::Cell) -> f64| {
        let cells = map
            .cells
            .iter()
            .enumerate()
            .flat_map(|(w, row)| {
                row.iter().enumerate().filter_map(move |(d, c)| {
                    c.map(|c| (map.sigma_w2s[w], map.depths[d] as f64, value(&c)))
                })
            })
            .collect();
        Panel {
            title: title.into(),
            x: x.clone(),
            y: y.clone(),
            kind: Kind::Lines,
            series: vec![series(
                format!("6 xi_c, theory (sigma_b^2 = {})", map.sigma_b2),
                curve.clone(),
            )],
            guides: Vec::new(),
            heat: Some(plot::Heat {
                cells,
                label: label.into(),
            }),
        }
    };
    let panels = [
        panel("Test accuracy", "test accuracy", |c| c.test_acc),
        panel(
            "Training accuracy, last logged batch",
            "training accuracy",
            |c| c.train_acc,
        ),
    ];
    let edge = map.critical.map_or(String::new(), |c| {
        format!(
            " It diverges at the edge of chaos, sigma_w^2 = {}.",
            crate::format::sig(c, 3)
        )
    });
    draw(
        dir,
        "phase_diagram.svg",
        &format!(
            "Test accuracy (left) and the last logged batch's training accuracy (right) of \
             every network of the sweep after {} steps, mean over its runs, with the depth \
             the theory lets a signal cross, 6 xi_c, drawn over them.{edge}",
            map.steps
        ),
        &panels,
    )
}

/// The measured per-layer error factor at step 0, squared, against chi_1 along sigma_w^2.
fn phase_factor(a: &Analysis, map: &PhaseMap, dir: &Path) -> Result<Option<Figure>> {
    let mut s: Vec<Series> = map
        .depths
        .iter()
        .enumerate()
        .map(|(d, depth)| {
            let points = (0..map.sigma_w2s.len())
                .filter_map(|w| {
                    let c = map.cells[w][d]?;
                    let g = a.stats[c.scenario].regime.start.split.positive?.geo_mean;
                    Some((map.sigma_w2s[w], g * g))
                })
                .collect();
            series(format!("measured, {depth} layers"), points)
        })
        .collect();
    s.truncate(plot::MAX_SERIES - 1);
    let theory = map
        .sigma_w2s
        .iter()
        .zip(&map.theory)
        .filter_map(|(&w, t)| Some((w, t.as_ref()?.chi_1)))
        .collect();
    s.push(series("chi_1, theory".into(), theory));
    let mut panel = lines(
        "Per-layer factor of the error's mean square, step 0".into(),
        axis("sigma_w^2", Scale::Linear, false),
        axis("factor per layer toward the input (log)", Scale::Log, false),
        s,
    );
    panel.guides = vec![Guide::Horizontal {
        y: 1.0,
        label: Some("1: the edge of chaos".into()),
    }];
    draw(
        dir,
        "phase_factor.svg",
        "The measured per-layer error factor at step 0, squared (the mean square's factor \
         from one hidden layer to the one below, geometric mean over runs), one line per \
         depth, against chi_1 of mean-field theory, which predicts it for wide networks.",
        &[panel],
    )
}
