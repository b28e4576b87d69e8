//! The report's figures, drawn as SVG with plotters.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use vgrad_sweep::Sweep;

use crate::collect::group_without;
use crate::diagnostics::{LayerTheory, MeanHistogram};
use crate::seeds::GeometricSummary;
use crate::{ReportError, Result, Scenario, ScenarioStats};

/// A figure written next to the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// File name inside the report's figure folder.
    pub file: String,
    /// What it shows, as the report's caption.
    pub caption: String,
}

/// One line of a chart.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    /// Error bars (x, low, high), drawn where present.
    bars: Vec<(f64, f64, f64)>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = std::result::Result<(), String>;

const FONT: &str = "sans-serif";

fn color(i: usize) -> RGBAColor {
    Palette99::pick(i).to_rgba()
}

/// x and y ranges covering all points (and bars), padded; y is kept positive for log axes.
fn ranges(series: &[Series], log_y: bool) -> ((f64, f64), (f64, f64)) {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.1)
            .chain(s.bars.iter().flat_map(|b| [b.1, b.2]))
    });
    let ys: Vec<f64> = ys
        .filter(|y| y.is_finite() && (!log_y || *y > 0.0))
        .collect();
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (y0, y1) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    let (x0, x1) = if x0.is_finite() && x1 > x0 {
        (x0, x1)
    } else if x0.is_finite() {
        (x0 - 1.0, x0 + 1.0)
    } else {
        (0.0, 1.0)
    };
    let (y0, y1) = match (y0.is_finite(), log_y) {
        (false, true) => (1e-6, 1.0),
        (false, false) => (0.0, 1.0),
        // Head-room above the data keeps the legend (upper right) off the lines.
        (true, true) => {
            let span = (y1 / y0).max(10.0);
            (y0 / span.powf(0.05), y1 * span.powf(0.45))
        }
        (true, false) => {
            let span = (y1 - y0).max(1e-2);
            (y0 - 0.05 * span, y1 + 0.45 * span)
        }
    };
    ((x0, x1), (y0, y1))
}

/// The marker of series `i` at pixel offset `at`: a circle, a triangle, a cross or a
/// square, in turn.
fn marker<DB: DrawingBackend>(
    at: (i32, i32),
    i: usize,
    c: RGBAColor,
) -> DynElement<'static, DB, (i32, i32)> {
    let size = 5i32.saturating_sub(i as i32 / 2).max(2);
    match i % 4 {
        0 => Circle::new(at, size - 1, c.filled()).into_dyn(),
        1 => TriangleMarker::new(at, size, c.filled()).into_dyn(),
        2 => Cross::new(at, size - 1, c.stroke_width(2)).into_dyn(),
        _ => {
            let h = size - 2;
            Rectangle::new([(at.0 - h, at.1 - h), (at.0 + h, at.1 + h)], c.filled()).into_dyn()
        }
    }
}

macro_rules! draw_chart {
    ($chart:expr, $panel:expr, $y_fmt:expr) => {{
        let chart = &mut $chart;
        let panel: &Panel = $panel;
        chart
            .configure_mesh()
            .x_desc(panel.x_desc)
            .y_desc(panel.y_desc)
            .x_labels(panel.x_labels)
            .x_label_formatter(&panel.x_fmt)
            .y_labels(8)
            .y_label_formatter($y_fmt)
            .label_style((FONT, 12))
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in panel.series.iter().enumerate() {
            let c = color(i);
            // Every other line dashed, a marker shape per line, and later lines thinner
            // with smaller markers, drawn over the earlier ones: two series with the same
            // values stay apart.
            let line = c.stroke_width(3u32.saturating_sub(i as u32 / 2).max(1));
            let drawn = if i % 2 == 1 {
                chart.draw_series(DashedLineSeries::new(s.points.iter().copied(), 8, 5, line))
            } else {
                chart.draw_series(LineSeries::new(s.points.iter().copied(), line))
            };
            drawn
                .map_err(|e| e.to_string())?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (18, 0)], line)
                        + marker((9, 0), i, c)
                });
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&p| EmptyElement::at(p) + marker((0, 0), i, c)),
                )
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(s.bars.iter().map(|&(x, lo, hi)| {
                    ErrorBar::new_vertical(x, lo, (lo * hi).abs().sqrt(), hi, c.stroke_width(1), 6)
                }))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, 11))
            .position(panel.legend.clone())
            .draw()
            .map_err(|e| e.to_string())?;
    }};
}

/// One chart of a figure.
struct Panel {
    title: String,
    x_desc: &'static str,
    y_desc: &'static str,
    series: Vec<Series>,
    log_y: bool,
    /// How many x labels (all x values are integers: steps or layers).
    x_labels: usize,
    /// A fixed y range instead of one fitted to the data (an accuracy: 0 to 1).
    y_range: Option<(f64, f64)>,
    /// Where the legend goes.
    legend: SeriesLabelPosition,
    /// The x labels' text.
    x_fmt: fn(&f64) -> String,
}

/// An x label of integer values: steps or layers.
fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

impl Panel {
    /// A panel over training steps.
    fn steps(title: &str, y_desc: &'static str, series: Vec<Series>, log_y: bool) -> Self {
        Self {
            title: title.into(),
            x_desc: "step",
            y_desc,
            series,
            log_y,
            x_labels: 6,
            y_range: None,
            legend: SeriesLabelPosition::UpperRight,
            x_fmt: whole,
        }
    }

    /// A panel of accuracies over training steps: y from 0 to 1, the legend low on the
    /// right, below curves that climb.
    fn accuracy(title: &str, series: Vec<Series>) -> Self {
        Self {
            y_range: Some((0.0, 1.0)),
            legend: SeriesLabelPosition::LowerRight,
            ..Self::steps(title, "accuracy", series, false)
        }
    }

    /// A panel over layers (or depths): one label per integer up to 12, fewer beyond.
    fn layers(
        title: &str,
        x_desc: &'static str,
        y_desc: &'static str,
        series: Vec<Series>,
    ) -> Self {
        let max = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold(1.0, f64::max) as usize;
        let x_labels = if max <= 12 { max } else { 8 };
        Self {
            title: title.into(),
            x_desc,
            y_desc,
            series,
            log_y: true,
            x_labels,
            y_range: None,
            legend: SeriesLabelPosition::UpperRight,
            x_fmt: whole,
        }
    }
}

/// Draws one panel of lines, on a log y axis when `log_y`.
fn panel(area: &Area, p: &Panel) -> DrawResult {
    let ((x0, x1), fitted) = ranges(&p.series, p.log_y);
    let (y0, y1) = p.y_range.unwrap_or(fitted);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&p.title, (FONT, 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(62);
    if p.log_y {
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(|e| e.to_string())?;
        draw_chart!(chart, p, &|v: &f64| format!("{v:.0e}"));
    } else {
        let mut chart = builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        draw_chart!(chart, p, &|v: &f64| format!("{v:.2}"));
    }
    Ok(())
}

/// Draws `panels` side by side (two per row) into `dir/file`.
fn figure(dir: &Path, file: &str, panels: &[Panel]) -> Result<()> {
    figure_of(dir, file, panels, panel)
}

/// Draws `panels` side by side (two per row) into `dir/file`, each with `draw`.
fn figure_of<P>(
    dir: &Path,
    file: &str,
    panels: &[P],
    draw: fn(&Area, &P) -> DrawResult,
) -> Result<()> {
    let path = dir.join(file);
    let fail = |message: String| ReportError::Figure {
        path: path.clone(),
        message,
    };
    let cols = panels.len().clamp(1, 2);
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = (560 * cols as u32, 400 * rows as u32);
    let root = SVGBackend::new(&path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let areas = root.split_evenly((rows, cols));
    for (p, area) in panels.iter().zip(&areas) {
        draw(area, p).map_err(fail)?;
    }
    root.present().map_err(|e| fail(e.to_string()))
}

fn curve(label: &str, steps: &[usize], values: &[f64]) -> Series {
    Series {
        label: label.to_string(),
        points: steps
            .iter()
            .zip(values)
            .map(|(&s, &v)| (s as f64, v))
            .collect(),
        bars: Vec::new(),
    }
}

fn profile(label: &str, values: &[f64]) -> Series {
    Series {
        label: label.to_string(),
        points: values
            .iter()
            .enumerate()
            .map(|(l, &v)| ((l + 1) as f64, v))
            .collect(),
        bars: Vec::new(),
    }
}

/// What the figures of one report are drawn from.
struct Sources<'a> {
    scenarios: &'a [Scenario],
    stats: &'a [ScenarioStats],
    dir: &'a Path,
    /// Each scenario's label.
    labels: Vec<String>,
    /// The scenarios with at least one finished run.
    with_data: Vec<usize>,
    /// The rows of panels of the per-step and per-layer figures: a title suffix and the
    /// scenarios drawn there (one row of all, or a row per activation).
    rows: Vec<(String, Vec<usize>)>,
    /// What the caption says about a selection of scenarios, or nothing.
    selection: String,
}

/// More lines than one chart can keep apart (the depth sweep's 18 are the most a
/// committed report draws in one chart).
const MAX_LINES: usize = 18;

impl Sources<'_> {
    /// One series per scenario of `members`: `values` of its curves over the logged steps.
    fn curves(&self, members: &[usize], values: impl Fn(&ScenarioStats) -> &[f64]) -> Vec<Series> {
        members
            .iter()
            .map(|&i| {
                let c = &self.stats[i].curves;
                curve(&self.labels[i], &c.steps, values(&self.stats[i]))
            })
            .collect()
    }

    /// One series per scenario of `members`: a per-layer profile.
    fn profiles(
        &self,
        members: &[usize],
        values: impl Fn(&ScenarioStats) -> &[f64],
    ) -> Vec<Series> {
        members
            .iter()
            .map(|&i| profile(&self.labels[i], values(&self.stats[i])))
            .collect()
    }

    /// The panels `make` builds for each row, from the row's title suffix and members.
    fn per_row(
        &self,
        make: impl Fn(&dyn Fn(&str) -> String, &[usize]) -> Vec<Panel>,
    ) -> Vec<Panel> {
        self.rows
            .iter()
            .flat_map(|(row, members)| {
                let title = |base: &str| {
                    if row.is_empty() {
                        base.to_string()
                    } else {
                        format!("{base}: {row}")
                    }
                };
                make(&title, members)
            })
            .collect()
    }

    /// `caption` with what it says about the selection of scenarios.
    fn caption(&self, caption: &str) -> String {
        format!("{caption}{}", self.selection)
    }
}

/// The rows of panels for `with_data`: all in one row while a chart can keep them apart,
/// else the deepest networks only, one row per activation.
fn rows_of(
    scenarios: &[Scenario],
    stats: &[ScenarioStats],
    with_data: &[usize],
) -> (Vec<(String, Vec<usize>)>, String) {
    if with_data.len() <= MAX_LINES {
        return (vec![(String::new(), with_data.to_vec())], String::new());
    }
    let deepest = with_data
        .iter()
        .map(|&i| stats[i].layers)
        .max()
        .unwrap_or(0);
    let mut rows: Vec<(String, Vec<usize>)> = Vec::new();
    for &i in with_data.iter().filter(|&&i| stats[i].layers == deepest) {
        let activation = scenarios[i].point.config.activation.to_string();
        match rows.iter_mut().find(|(a, _)| *a == activation) {
            Some((_, members)) => members.push(i),
            None => rows.push((activation, vec![i])),
        }
    }
    let note = format!(
        " With more scenarios than a chart can keep apart, only the {deepest}-layer networks are drawn, one row of panels per activation; the tables give every scenario."
    );
    (rows, note)
}

/// Draws every figure of the report into `dir` and returns them in reading order.
pub fn draw_all(
    sweep: &Sweep,
    scenarios: &[Scenario],
    stats: &[ScenarioStats],
    dir: &Path,
) -> Result<Vec<Figure>> {
    let with_data: Vec<usize> = (0..stats.len()).filter(|&i| stats[i].ok > 0).collect();
    let (rows, selection) = rows_of(scenarios, stats, &with_data);
    let sources = Sources {
        scenarios,
        stats,
        dir,
        labels: scenarios.iter().map(|s| s.point.label()).collect(),
        with_data: with_data.clone(),
        rows,
        selection,
    };
    let mut figures = vec![
        accuracy(&sources)?,
        gradients(&sources)?,
        decay_over_training(&sources)?,
        layer_profiles(&sources)?,
    ];
    if sweep.varies("layers") {
        figures.push(decay_vs_depth(&sources)?);
    }
    if sweep.varies("init") {
        figures.push(profile_by_init(&sources)?);
    }
    if stats.iter().any(|st| !st.curves.val_acc.is_empty()) {
        figures.push(learning_curves(&sources)?);
    }
    if sweep.points.iter().any(|p| p.config.eval_every > 0)
        && stats.iter().any(|st| !st.curves.last_act_input.is_empty())
    {
        figures.push(activation_inputs(&sources)?);
    }
    figures.extend(diagnostic_figures(&sources)?);
    Ok(figures)
}

/// Training accuracy over the steps.
fn accuracy(s: &Sources) -> Result<Figure> {
    let panels = s.per_row(|title, members| {
        vec![Panel::accuracy(
            &title("Training accuracy (batch, mean over seeds)"),
            s.curves(members, |st| &st.curves.train_acc),
        )]
    });
    figure(s.dir, "accuracy.svg", &panels)?;
    Ok(Figure {
        file: "accuracy.svg".into(),
        caption: s.caption("Training accuracy on the logged batches, mean over seeds."),
    })
}

/// The first and the last layer's gradient over the steps: the reference post's figures.
fn gradients(s: &Sources) -> Result<Figure> {
    let panels = s.per_row(|title, members| {
        vec![
            Panel::steps(
                &title("First layer: mean |dC/dW|"),
                "mean |grad| (log)",
                s.curves(members, |st| &st.curves.grad_first),
                true,
            ),
            Panel::steps(
                &title("Last layer: mean |dC/dW|"),
                "mean |grad| (log)",
                s.curves(members, |st| &st.curves.grad_last),
                true,
            ),
        ]
    });
    figure(s.dir, "gradients.svg", &panels)?;
    Ok(Figure {
        file: "gradients.svg".into(),
        caption: s.caption("Mean absolute weight gradient of the first and of the last layer over training (geometric mean over seeds), the two figures of the reference post."),
    })
}

/// The decay ratios at every logged step: how far the average over training is from the
/// ratio at initialisation.
fn decay_over_training(s: &Sources) -> Result<Figure> {
    let panels = s.per_row(|title, members| {
        vec![
            Panel::steps(
                &title("Weight-gradient decay ratio"),
                "grad[L] / grad[1] (log)",
                s.curves(members, |st| &st.curves.decay),
                true,
            ),
            Panel::steps(
                &title("Back-propagated error decay ratio"),
                "delta[L] / delta[1] (log)",
                s.curves(members, |st| &st.curves.delta_decay),
                true,
            ),
        ]
    });
    figure(s.dir, "decay_over_training.svg", &panels)?;
    Ok(Figure {
        file: "decay_over_training.svg".into(),
        caption: s.caption("Decay ratio at every logged step, last layer over first, geometric mean over seeds: step 0 is the initial network, and the report's tables average over all these steps."),
    })
}

/// The per-layer profile of the weight gradient and of the error.
fn layer_profiles(s: &Sources) -> Result<Figure> {
    let panels = s.per_row(|title, members| {
        vec![
            Panel::layers(
                &title("Weight gradient per layer"),
                "layer",
                "mean |dC/dW| (log)",
                s.profiles(members, |st| &st.grad_profile),
            ),
            Panel::layers(
                &title("Back-propagated error per layer"),
                "layer",
                "mean |dC/dz| (log)",
                s.profiles(members, |st| &st.delta_profile),
            ),
        ]
    });
    figure(s.dir, "profile.svg", &panels)?;
    Ok(Figure {
        file: "profile.svg".into(),
        caption: s.caption("Per-layer profile, layer 1 (input side) to L (output): each layer's value averaged over the logged steps, geometric mean over seeds."),
    })
}

/// The decay ratios against depth, one line per setting of the other axes; with more
/// than eight lines, one row of panels per activation, so that each legend stays short.
fn decay_vs_depth(s: &Sources) -> Result<Figure> {
    let groups: Vec<(String, Vec<usize>)> = group_without(s.scenarios, "layers")
        .into_iter()
        .map(|(label, members)| {
            let label = if label.is_empty() {
                "all".into()
            } else {
                label
            };
            (label, members)
        })
        .collect();
    let series = |groups: &[&(String, Vec<usize>)],
                  pick: &dyn Fn(&ScenarioStats) -> Option<GeometricSummary>|
     -> Vec<Series> {
        groups
            .iter()
            .map(|(label, members)| {
                let ok: Vec<(f64, GeometricSummary)> = members
                    .iter()
                    .filter_map(|&i| pick(&s.stats[i]).map(|g| (s.stats[i].layers as f64, g)))
                    .collect();
                Series {
                    label: label.clone(),
                    points: ok.iter().map(|(x, g)| (*x, g.geo_mean)).collect(),
                    bars: ok
                        .iter()
                        .filter(|(_, g)| g.ci_low.is_finite())
                        .map(|(x, g)| (*x, g.ci_low, g.ci_high))
                        .collect(),
                }
            })
            .collect()
    };
    // (activation, its groups): one row of panels each.
    type Row<'a> = (String, Vec<&'a (String, Vec<usize>)>);
    let rows: Vec<Row> = if groups.len() > 8 {
        let mut rows: Vec<Row> = Vec::new();
        for group in &groups {
            let activation = s.scenarios[group.1[0]].point.config.activation.to_string();
            match rows.iter_mut().find(|(a, _)| *a == activation) {
                Some((_, members)) => members.push(group),
                None => rows.push((activation, vec![group])),
            }
        }
        rows
    } else {
        vec![(String::new(), groups.iter().collect())]
    };
    let title = |what: &str, activation: &str| {
        if activation.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {activation}")
        }
    };
    let panels: Vec<Panel> = rows
        .iter()
        .flat_map(|(activation, members)| {
            [
                Panel::layers(
                    &title("Weight-gradient decay ratio", activation),
                    "dense layers L",
                    "grad[L] / grad[1] (log)",
                    series(members, &|st| st.decay),
                ),
                Panel::layers(
                    &title("Back-propagated error decay ratio", activation),
                    "dense layers L",
                    "delta[L] / delta[1] (log)",
                    series(members, &|st| st.delta_decay),
                ),
            ]
        })
        .collect();
    figure(s.dir, "decay_vs_depth.svg", &panels)?;
    Ok(Figure {
        file: "decay_vs_depth.svg".into(),
        caption: "Decay ratio against depth: geometric mean over seeds with 95% intervals.".into(),
    })
}

/// The gradient profile per initialisation, one panel per setting of the other axes.
fn profile_by_init(s: &Sources) -> Result<Figure> {
    let panels: Vec<Panel> = group_without(s.scenarios, "init")
        .into_iter()
        .map(|(label, members)| {
            let series = members
                .iter()
                .filter(|&&i| s.stats[i].ok > 0)
                .map(|&i| {
                    profile(
                        s.scenarios[i].point.value("init").unwrap_or("?"),
                        &s.stats[i].grad_profile,
                    )
                })
                .collect();
            let title = if label.is_empty() { "all" } else { &label };
            Panel::layers(title, "layer", "mean |dC/dW| (log)", series)
        })
        .collect();
    figure(s.dir, "profile_by_init.svg", &panels)?;
    Ok(Figure {
        file: "profile_by_init.svg".into(),
        caption: "Weight-gradient profile per initialisation, one panel per other setting.".into(),
    })
}

/// Validation accuracy over training (sweeps with `eval_every`).
fn learning_curves(s: &Sources) -> Result<Figure> {
    let series = s
        .with_data
        .iter()
        .filter(|&&i| !s.stats[i].curves.val_acc.is_empty())
        .map(|&i| Series {
            label: s.labels[i].clone(),
            points: s.stats[i]
                .curves
                .val_acc
                .iter()
                .map(|&(step, acc)| (step as f64, acc))
                .collect(),
            bars: Vec::new(),
        })
        .collect();
    figure(
        s.dir,
        "learning_curves.svg",
        &[Panel::accuracy(
            "Validation accuracy (mean over seeds)",
            series,
        )],
    )?;
    Ok(Figure {
        file: "learning_curves.svg".into(),
        caption: "Accuracy on the 5,000 held-out validation images over training, mean over seeds; the last point is the end of training.".into(),
    })
}

/// The 15th, 50th and 85th percentiles of the last hidden layer's activation input over
/// training, one panel per scenario: Ioffe & Szegedy 2015's Figure 1 (b, c).
fn activation_inputs(s: &Sources) -> Result<Figure> {
    let panels: Vec<Panel> = s
        .with_data
        .iter()
        .filter(|&&i| !s.stats[i].curves.last_act_input.is_empty())
        .map(|&i| {
            let c = &s.stats[i].curves;
            let line = |k: usize, label: &str| Series {
                label: label.into(),
                points: c
                    .steps
                    .iter()
                    .zip(&c.last_act_input)
                    .map(|(&step, p)| (step as f64, p[k]))
                    .collect(),
                bars: Vec::new(),
            };
            Panel::steps(
                &s.labels[i],
                "activation input",
                vec![
                    line(2, "85th percentile"),
                    line(1, "median"),
                    line(0, "15th percentile"),
                ],
                false,
            )
        })
        .collect();
    figure(s.dir, "activation_inputs.svg", &panels)?;
    Ok(Figure {
        file: "activation_inputs.svg".into(),
        caption: "The 15th, 50th and 85th percentiles of the last hidden layer's activation input (after the normalisation, where there is one) over its units and the batch's examples, at every logged step, mean over seeds.".into(),
    })
}

/// The most scenarios the histogram figures draw, one panel each.
const MAX_HISTOGRAM_PANELS: usize = 8;

/// The most lines (layers) a histogram panel draws.
const MAX_HISTOGRAM_LINES: usize = 6;

/// The figures of the probe's diagnostics, each where some run has its data.
fn diagnostic_figures(s: &Sources) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let has = |f: fn(&ScenarioStats) -> bool| s.with_data.iter().any(|&i| f(&s.stats[i]));
    if has(|st| st.diagnostics.has_update()) {
        figures.push(update_ratio(s)?);
    }
    let with_hist = |f: fn(&ScenarioStats) -> bool| {
        let n = s.with_data.iter().filter(|&&i| f(&s.stats[i])).count();
        n > 0 && n <= MAX_HISTOGRAM_PANELS
    };
    if with_hist(|st| !st.diagnostics.act_hist.is_empty()) {
        figures.push(activation_hist(s)?);
    }
    if with_hist(|st| !st.diagnostics.delta_hist.is_empty()) {
        figures.push(delta_hist(s)?);
    }
    if has(|st| st.diagnostics.has_theory()) {
        figures.push(theory_vs_measurement(s)?);
    }
    Ok(figures)
}

/// The first and the last layer's update-to-weight ratio over training.
fn update_ratio(s: &Sources) -> Result<Figure> {
    let series = |members: &[usize], pick: fn(&ScenarioStats) -> &Vec<(usize, f64)>| {
        members
            .iter()
            .filter(|&&i| s.stats[i].diagnostics.has_update())
            .map(|&i| Series {
                label: s.labels[i].clone(),
                points: pick(&s.stats[i])
                    .iter()
                    .map(|&(step, v)| (step as f64, v))
                    .filter(|p| p.1 > 0.0 && p.1.is_finite())
                    .collect(),
                bars: Vec::new(),
            })
            .collect::<Vec<_>>()
    };
    let panels = s.per_row(|title, members| {
        vec![
            Panel::steps(
                &title("First layer: ||dW|| / ||W|| per step"),
                "update ratio (log)",
                series(members, |st| &st.diagnostics.update_first),
                true,
            ),
            Panel::steps(
                &title("Last layer: ||dW|| / ||W|| per step"),
                "update ratio (log)",
                series(members, |st| &st.diagnostics.update_last),
                true,
            ),
        ]
    });
    figure(s.dir, "update_ratio.svg", &panels)?;
    Ok(Figure {
        file: "update_ratio.svg".into(),
        caption: s.caption("Update-to-weight ratio ||W_after - W_before|| / ||W_before|| of the first and of the last layer at every logged step (geometric mean over seeds); Karpathy's rule of thumb puts a healthy layer near 1e-3."),
    })
}

/// At most [`MAX_HISTOGRAM_LINES`] of the indices `0..n`, evenly spread, the first and the
/// last among them.
fn spread_out(n: usize) -> Vec<usize> {
    if n <= MAX_HISTOGRAM_LINES {
        return (0..n).collect();
    }
    let k = MAX_HISTOGRAM_LINES - 1;
    let mut picked: Vec<usize> = (0..=k).map(|j| (j * (n - 1) + k / 2) / k).collect();
    picked.dedup();
    picked
}

/// Lines of a histogram panel with the buckets where no line has values trimmed from
/// both ends (one empty bucket kept on each side).
fn trimmed(mut lines: Vec<Series>) -> Vec<Series> {
    let any = |k: usize| {
        lines
            .iter()
            .any(|l| l.points.get(k).is_some_and(|p| p.1 > 0.0))
    };
    let n = lines.iter().map(|l| l.points.len()).max().unwrap_or(0);
    let Some(first) = (0..n).find(|&k| any(k)) else {
        return lines;
    };
    let last = (0..n).rev().find(|&k| any(k)).unwrap_or(first);
    let (from, to) = (first.saturating_sub(1), (last + 1).min(n - 1));
    for l in &mut lines {
        let end = to.min(l.points.len().saturating_sub(1));
        l.points = l.points.get(from..=end).map_or(Vec::new(), <[_]>::to_vec);
    }
    lines
}

/// One histogram panel per scenario that has `pick`'s histograms: a line per layer (at
/// most [`MAX_HISTOGRAM_LINES`]), each bucket's share of the values at its `x`.
fn histogram_panels(
    s: &Sources,
    pick: fn(&ScenarioStats) -> &Vec<Option<MeanHistogram>>,
    points: fn(&MeanHistogram) -> Vec<(f64, f64)>,
    line_label: fn(usize, usize) -> String,
    x_desc: &'static str,
    x_fmt: fn(&f64) -> String,
    legend: SeriesLabelPosition,
) -> Vec<Panel> {
    s.with_data
        .iter()
        .filter(|&&i| !pick(&s.stats[i]).is_empty())
        .map(|&i| {
            let hists = pick(&s.stats[i]);
            let lines: Vec<Series> = spread_out(hists.len())
                .into_iter()
                .filter_map(|l| {
                    let h = hists[l].as_ref()?;
                    Some(Series {
                        label: line_label(l + 1, s.stats[i].layers),
                        points: points(h),
                        bars: Vec::new(),
                    })
                })
                .collect();
            Panel {
                title: s.labels[i].clone(),
                x_desc,
                y_desc: "share of values per bucket",
                series: trimmed(lines),
                log_y: false,
                x_labels: 12,
                y_range: None,
                legend: legend.clone(),
                x_fmt,
            }
        })
        .collect()
}

/// Each bucket of a histogram over linear edges at its centre (the two open-ended buckets
/// half a step beyond the edges).
fn linear_buckets(h: &MeanHistogram) -> Vec<(f64, f64)> {
    let e = &h.edges;
    let step = if e.len() > 1 { e[1] - e[0] } else { 1.0 };
    h.share
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let x = if k == 0 {
                e[0] - step / 2.0
            } else if k == e.len() {
                e[k - 1] + step / 2.0
            } else {
                (e[k - 1] + e[k]) / 2.0
            };
            (x, v)
        })
        .collect()
}

/// A histogram over edges symmetric about 0 and spaced logarithmically on each side,
/// folded onto magnitudes: each bucket of |value| with the share of both signs, at
/// log10 of its geometric centre (the bucket at 0 and the open-ended one a quarter of a
/// decade beyond their edge).
fn magnitude_buckets(h: &MeanHistogram) -> Vec<(f64, f64)> {
    let e = &h.edges;
    let mut folded: Vec<(f64, f64, f64)> = Vec::new();
    for (k, &v) in h.share.iter().enumerate() {
        let lo = if k == 0 { f64::NEG_INFINITY } else { e[k - 1] };
        let hi = if k == e.len() { f64::INFINITY } else { e[k] };
        let (a, b) = if hi <= 0.0 {
            (-hi, -lo)
        } else {
            (lo.max(0.0), hi)
        };
        match folded.iter_mut().find(|f| f.0 == a && f.1 == b) {
            Some(f) => f.2 += v,
            None => folded.push((a, b, v)),
        }
    }
    let mut points: Vec<(f64, f64)> = folded
        .into_iter()
        .map(|(a, b, v)| {
            let x = if a <= 0.0 {
                b.log10() - 0.25
            } else if b.is_infinite() {
                a.log10() + 0.25
            } else {
                (a * b).sqrt().log10()
            };
            (x, v)
        })
        .collect();
    points.sort_by(|p, q| p.0.total_cmp(&q.0));
    points
}

/// An x label on a log10 axis: `1e-5` at whole decades, else the value.
fn decade(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("1e{:.0}", v.round())
    } else {
        crate::format::sig(10f64.powf(*v), 1)
    }
}

/// An x label of a linear axis with tenths.
fn tenths(v: &f64) -> String {
    format!("{v:.1}")
}

/// The activation's output at step 0, one panel per scenario, a line per hidden layer.
fn activation_hist(s: &Sources) -> Result<Figure> {
    let panels = histogram_panels(
        s,
        |st| &st.diagnostics.act_hist,
        linear_buckets,
        |l, _| format!("layer {l}"),
        "activation f(z) (buckets of 0.1)",
        tenths,
        SeriesLabelPosition::UpperRight,
    );
    figure(s.dir, "activation_hist.svg", &panels)?;
    Ok(Figure {
        file: "activation_hist.svg".into(),
        caption: "The activation's output at step 0 (the initial network), one line per hidden layer: each bucket's share of the values over a logged batch's examples and the layer's units, mean over seeds (Glorot & Bengio 2010, Figure 6). Each point is a bucket (a, a + 0.1] at its centre, so an output of exactly 0 (a ReLU unit that is off) counts in (-0.1, 0] and shows at -0.05; values beyond -5 and 5 are drawn at the ends.".into(),
    })
}

/// The back-propagated error dC/dz at step 0, one panel per scenario, a line per layer.
fn delta_hist(s: &Sources) -> Result<Figure> {
    let panels = histogram_panels(
        s,
        |st| &st.diagnostics.delta_hist,
        magnitude_buckets,
        |l, layers| {
            if l == layers {
                format!("layer {l} (output)")
            } else {
                format!("layer {l}")
            }
        },
        "|dC/dz| (log scale)",
        decade,
        // The output layer's error is the largest, on the right.
        SeriesLabelPosition::UpperLeft,
    );
    figure(s.dir, "delta_hist.svg", &panels)?;
    Ok(Figure {
        file: "delta_hist.svg".into(),
        caption: "The back-propagated error dC/dz at each layer's pre-activation at step 0, by magnitude (both signs together) on a log scale, one line per layer: each bucket's share of the values over a logged batch, mean over seeds (Glorot & Bengio 2010, Figure 7). A vanishing error moves left from the output layer to layer 1; the leftmost point holds the values of magnitude 1e-9 or less.".into(),
    })
}

/// A log-log scatter of a measured value against its prediction.
struct Scatter {
    title: String,
    series: Vec<Series>,
}

/// Draws a scatter panel on log-log axes (log10 of the values on linear axes, labelled
/// with the values): the points of each series with its marker, the diagonal where
/// measurement meets prediction, and the band within [`AGREE`] of it.
fn scatter(area: &Area, p: &Scatter) -> DrawResult {
    let logs: Vec<Vec<(f64, f64)>> = p
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|q| q.0 > 0.0 && q.1 > 0.0 && q.0.is_finite() && q.1.is_finite())
                .map(|q| (q.0.log10(), q.1.log10()))
                .collect()
        })
        .collect();
    let (lo, hi) = logs
        .iter()
        .flatten()
        .flat_map(|q| [q.0, q.1])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        let centre = (lo + hi) / 2.0;
        let half = ((hi - lo) / 2.0).max(0.5) * 1.25;
        (centre - half, centre + half)
    } else {
        (-1.0, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(62)
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(|e| e.to_string())?;
    let value = |v: &f64| crate::format::sig(10f64.powf((v * 1e6).round() / 1e6), 2);
    chart
        .configure_mesh()
        .x_desc("predicted: chi_1 (log scale)")
        .y_desc("measured: ratio of mean sq. errors (log scale)")
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&value)
        .y_label_formatter(&value)
        .label_style((FONT, 12))
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    let grey = BLACK.mix(0.5);
    chart
        .draw_series(LineSeries::new([(lo, lo), (hi, hi)], grey.stroke_width(1)))
        .map_err(|e| e.to_string())?
        .label("measured = predicted")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(1)));
    let band = BLACK.mix(0.25);
    for (k, d) in [AGREE.log10(), -AGREE.log10()].into_iter().enumerate() {
        let drawn = chart
            .draw_series(DashedLineSeries::new(
                [(lo, lo + d), (hi, hi + d)],
                6,
                4,
                band.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        if k == 0 {
            drawn
                .label(format!("within {AGREE}x"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], band.stroke_width(1))
                });
        }
    }
    for (i, (s, points)) in p.series.iter().zip(&logs).enumerate() {
        let c = color(i);
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&q| EmptyElement::at(q) + marker((0, 0), i, c)),
            )
            .map_err(|e| e.to_string())?
            .label(s.label.clone())
            .legend(move |(x, y)| EmptyElement::at((x + 9, y)) + marker((0, 0), i, c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 11))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())
}

/// The factor within which the scatter's band counts prediction and measurement as
/// agreeing.
const AGREE: f64 = 1.5;

/// The most scenarios the scatter gives a marker each; beyond, one per activation.
const MAX_SCATTER_SERIES: usize = 8;

/// Measured against predicted factor of the error's mean square per layer, for every
/// scenario and hidden layer: at step 0 and averaged over training.
fn theory_vs_measurement(s: &Sources) -> Result<Figure> {
    let with: Vec<usize> = s
        .with_data
        .iter()
        .copied()
        .filter(|&i| s.stats[i].diagnostics.has_theory())
        .collect();
    let groups: Vec<(String, Vec<usize>)> = if with.len() <= MAX_SCATTER_SERIES {
        with.iter()
            .map(|&i| (s.labels[i].clone(), vec![i]))
            .collect()
    } else {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for &i in &with {
            let a = s.scenarios[i].point.config.activation.to_string();
            match groups.iter_mut().find(|(g, _)| *g == a) {
                Some((_, members)) => members.push(i),
                None => groups.push((a, vec![i])),
            }
        }
        groups
    };
    let series = |pick: fn(&LayerTheory) -> (Option<f64>, Option<f64>)| -> Vec<Series> {
        groups
            .iter()
            .map(|(label, members)| Series {
                label: label.clone(),
                points: members
                    .iter()
                    .flat_map(|&i| s.stats[i].diagnostics.theory.iter())
                    .filter_map(|t| match pick(t) {
                        (Some(p), Some(m)) => Some((p, m)),
                        _ => None,
                    })
                    .collect(),
                bars: Vec::new(),
            })
            .collect()
    };
    let panels = [
        Scatter {
            title: "At step 0".into(),
            series: series(|t| (t.chi1_start, t.measured_start)),
        },
        Scatter {
            title: "Averaged over training".into(),
            series: series(|t| (t.chi1_mean, t.measured_mean)),
        },
    ];
    figure_of(s.dir, "theory_vs_measurement.svg", &panels, scatter)?;
    let per = if with.len() <= MAX_SCATTER_SERIES {
        "scenario"
    } else {
        "activation"
    };
    Ok(Figure {
        file: "theory_vs_measurement.svg".into(),
        caption: format!(
            "Mean-field theory against measurement: for every scenario and hidden layer l, the measured factor mean((dC/dz_l)^2) / mean((dC/dz_(l+1))^2) against chi_1, at step 0 and as a geometric mean over the logged steps (both geometric means over seeds); one marker per {per}. On the solid diagonal the theory is exact; between the dashed lines it is within a factor of {AGREE}."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures of a synthetic sweep of `activations`, drawn into a fresh folder.
    fn drawn(activations: &[&str], diagnostics: bool, name: &str) -> Vec<String> {
        let (sweep, scenarios) = crate::synthetic::sweep(activations, diagnostics);
        let stats: Vec<ScenarioStats> = scenarios.iter().map(ScenarioStats::of).collect();
        let dir = std::env::temp_dir().join(format!("vgrad-report-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let figures = draw_all(&sweep, &scenarios, &stats, &dir).unwrap();
        for f in &figures {
            let svg = std::fs::read_to_string(dir.join(&f.file)).unwrap();
            assert!(svg.contains("<svg"), "{}", f.file);
        }
        std::fs::remove_dir_all(&dir).unwrap();
        figures.into_iter().map(|f| f.file).collect()
    }

    #[test]
    fn the_diagnostic_figures_follow_the_others_where_runs_have_the_data() {
        let old = drawn(&["sigmoid", "relu"], false, "old");
        assert_eq!(
            old,
            [
                "accuracy.svg",
                "gradients.svg",
                "decay_over_training.svg",
                "profile.svg"
            ]
        );
        let new = drawn(&["sigmoid", "relu"], true, "new");
        assert_eq!(new[..4], old[..]);
        assert_eq!(
            new[4..],
            [
                "update_ratio.svg",
                "activation_hist.svg",
                "delta_hist.svg",
                "theory_vs_measurement.svg"
            ]
        );
        // Nine scenarios: too many for a panel each, so no histograms.
        let many = [
            "sigmoid",
            "relu",
            "tanh",
            "elu",
            "gelu",
            "silu",
            "softsign",
            "selu",
            "leaky-relu:0.2",
        ];
        let nine = drawn(&many, true, "nine");
        assert!(!nine.iter().any(|f| f.ends_with("_hist.svg")), "{nine:?}");
        assert!(nine.contains(&"theory_vs_measurement.svg".to_string()));
    }

    #[test]
    fn magnitude_buckets_fold_both_signs() {
        let h = MeanHistogram {
            edges: vec![-10.0, -1.0, 0.0, 1.0, 10.0],
            share: vec![0.0, 0.1, 0.2, 0.3, 0.15, 0.25],
        };
        // |v| <= 1: 0.2 + 0.3; (1, 10]: 0.1 + 0.15; beyond 10: 0 + 0.25.
        let points = magnitude_buckets(&h);
        assert_eq!(points.len(), 3);
        assert_eq!(points[0], (-0.25, 0.5));
        assert_eq!(points[1], (0.5, 0.25));
        assert_eq!(points[2], (1.25, 0.25));
        assert_eq!(decade(&-5.0), "1e-5");
        assert_eq!(spread_out(24), vec![0, 5, 9, 14, 18, 23]);
        assert_eq!(spread_out(4), vec![0, 1, 2, 3]);
    }
}
