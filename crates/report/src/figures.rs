//! The report's figures, drawn as SVG with plotters.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use vgrad_sweep::Sweep;

use crate::collect::group_without;
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
            .x_label_formatter(&|v: &f64| format!("{v:.0}"))
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
        panel(area, p).map_err(fail)?;
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
