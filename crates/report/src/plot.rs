//! The drawing primitives of the report's figures: panels of lines or markers on linear or
//! log axes, written as SVG.
//!
//! The figure rules behind them: every axis is labelled and ticked, the legend sits beside
//! the data and never on it, and each series differs from the others in colour, marker and
//! dash pattern at once, so a figure still reads in greyscale and where lines overlap.
//! Only plotters' SVG primitives are used, not its chart mesh: ticks, clipping and dashes
//! are computed here, so the same input gives the same bytes on every run.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Equal distances for equal differences.
    Linear,
    /// Equal distances for equal ratios; only positive values can be drawn.
    Log,
}

/// One axis: its label (always drawn), scale, and optionally a fixed range; `integer`
/// when the values are whole numbers (steps, layers, depths) so ticks are integers.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// What the axis measures, drawn beside it.
    pub label: String,
    /// How values map to positions.
    pub scale: Scale,
    /// Fixed ends (low, high) in data units instead of a range fitted to the data.
    pub range: Option<(f64, f64)>,
    /// Whether the values are whole numbers, so only whole-number ticks make sense.
    pub integer: bool,
}

/// One series: a label, points (x, y), optional vertical error bars (x, low, high).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name the legend gives it.
    pub label: String,
    /// The values; points that cannot be drawn (not finite, or not positive on a log
    /// axis) are skipped and break the line.
    pub points: Vec<(f64, f64)>,
    /// Vertical error bars (x, low, high).
    pub bars: Vec<(f64, f64, f64)>,
}

/// A reference line drawn behind the data: horizontal at y, or the diagonal y = factor * x
/// (scatter charts), dashed grey, with an optional short label shown in the legend.
#[derive(Debug, Clone, PartialEq)]
pub enum Guide {
    /// The line y = `y` across the panel.
    Horizontal {
        /// Where it crosses the y axis.
        y: f64,
        /// Its legend entry, if any.
        label: Option<String>,
    },
    /// The line y = `factor` * x (straight on linear-linear and log-log axes).
    Diagonal {
        /// The ratio y / x along the line.
        factor: f64,
        /// Its legend entry, if any.
        label: Option<String>,
    },
}

/// What a panel draws: lines through the points (with markers), or markers only (scatter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Lines through the points in their order, with markers.
    Lines,
    /// Markers only.
    Points,
}

/// One chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Drawn above the chart.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// Lines or markers only.
    pub kind: Kind,
    /// At most [`MAX_SERIES`]; later ones are drawn over earlier ones.
    pub series: Vec<Series>,
    /// Reference lines behind the data.
    pub guides: Vec<Guide>,
    /// A heatmap behind the series, if any.
    pub heat: Option<Heat>,
}

/// A heatmap: cells centred on grid points, shaded by a value in [0, 1] from light to dark,
/// with a key of shades in the legend. A cell reaches halfway to its neighbours (on the
/// axis's scale); a value that is not finite is drawn grey and keyed as "no result".
#[derive(Debug, Clone, PartialEq)]
pub struct Heat {
    /// (x, y, value) per cell.
    pub cells: Vec<(f64, f64, f64)>,
    /// What the shade measures, for the key ("test accuracy").
    pub label: String,
}

/// The shades' key: the values of [`Heat`] its legend shows.
const HEAT_KEY: [f64; 5] = [0.1, 0.3, 0.5, 0.7, 0.9];
const NO_RESULT: RGBColor = RGBColor(0xBD, 0xBD, 0xBD);

/// The shade of `v` in [0, 1]: from near white to dark blue (sequential, light to dark,
/// so it reads in greyscale).
fn shade(v: f64) -> RGBColor {
    if !v.is_finite() {
        return NO_RESULT;
    }
    let v = v.clamp(0.0, 1.0);
    let (light, dark) = ((0xF7, 0xFB, 0xFF), (0x08, 0x30, 0x6B));
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * v).round() as u8;
    RGBColor(
        mix(light.0, dark.0),
        mix(light.1, dark.1),
        mix(light.2, dark.2),
    )
}

/// `axis` with the range of the cells at `centres` from the first one's outer edge to the
/// last one's (see [`cell_edges`], on the axis's scale), unless it has a range of its own.
fn heat_axis(axis: &Axis, centres: impl Iterator<Item = f64>) -> Axis {
    if axis.range.is_some() {
        return axis.clone();
    }
    let log = axis.scale == Scale::Log;
    let ts: Vec<f64> = centres.filter_map(|c| transform(c, log)).collect();
    let edges = cell_edges(&ts);
    let value = |t: f64| if log { 10f64.powf(t) } else { t };
    Axis {
        range: edges
            .first()
            .zip(edges.last())
            .map(|(first, last)| (value(first.1), value(last.2))),
        ..axis.clone()
    }
}

/// Each of `centres`' half-way points to its neighbours/// Each of `centres`' half-way points to its neighbours (in axis units), as (low, high)
/// per centre; a lone centre spans half a unit either side.
fn cell_edges(centres: &[f64]) -> Vec<(f64, f64, f64)> {
    let mut sorted: Vec<f64> = centres.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup_by(|a, b| same(*a, *b));
    sorted
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let before = k.checked_sub(1).map(|j| sorted[j]);
            let after = sorted.get(k + 1).copied();
            let half_below = before.map(|b| (c - b) / 2.0);
            let half_above = after.map(|a| (a - c) / 2.0);
            let (lo, hi) = match (half_below, half_above) {
                (Some(b), Some(a)) => (b, a),
                (Some(b), None) => (b, b),
                (None, Some(a)) => (a, a),
                (None, None) => (0.5, 0.5),
            };
            (c, c - lo, c + hi)
        })
        .collect()
}

/// The most series one panel may hold: callers facet beyond it.
pub const MAX_SERIES: usize = 8;

/// Draws `panels` into the SVG file `path` (two panels per row, or one per row when there
/// is only one) and returns notes for the caption: one sentence per pair of series of a
/// panel that coincide (identical points within a relative 1e-9), as in "In panel 'X', 'a'
/// and 'b' coincide: 'b' is drawn over 'a'.". Errors (as text) if there is no panel, a
/// panel has more than [`MAX_SERIES`] series or an empty fixed range (then no file is
/// written), or drawing fails.
pub fn draw(path: &Path, panels: &[Panel]) -> Result<Vec<String>, String> {
    if panels.is_empty() {
        return Err("a figure needs at least one panel".into());
    }
    for p in panels {
        if p.series.len() > MAX_SERIES {
            return Err(format!(
                "panel '{}' has {} series, more than the {MAX_SERIES} one panel can keep apart: split them over several panels",
                p.title,
                p.series.len()
            ));
        }
    }
    let charts = panels
        .iter()
        .map(Chart::of)
        .collect::<Result<Vec<_>, _>>()?;
    let legends: Vec<Vec<Entry>> = charts.iter().map(Chart::legend).collect();
    // Identical legends (same labels, hence the same looks) are drawn once for the figure.
    let shared = legends.windows(2).all(|w| w[0] == w[1]);
    let cols = panels.len().min(2) as i32;
    let rows = panels.len().div_ceil(2) as i32;
    let own = if shared { 0 } else { LEGEND_W };
    let side = if shared && !legends[0].is_empty() {
        LEGEND_W
    } else {
        0
    };
    let size = (cols * (PANEL_W + own) + side, rows * PANEL_H);
    let root = SVGBackend::new(path, (size.0 as u32, size.1 as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(fail)?;
    for (k, (chart, entries)) in charts.iter().zip(&legends).enumerate() {
        let k = k as i32;
        let origin = ((k % cols) * (PANEL_W + own), (k / cols) * PANEL_H);
        chart.draw(&root, origin)?;
        if !shared {
            legend(&root, (origin.0 + PANEL_W, origin.1 + TOP), entries)?;
        }
    }
    if side > 0 {
        legend(&root, (cols * PANEL_W, TOP), &legends[0])?;
    }
    root.present().map_err(fail)?;
    Ok(coincidences(panels))
}

type Root<'a> = DrawingArea<SVGBackend<'a>, Shift>;

const FONT: &str = "sans-serif";
const PANEL_W: i32 = 560;
const PANEL_H: i32 = 400;
const LEGEND_W: i32 = 230;
/// The top of the plotting frame within a panel, below the title; the legend starts level
/// with it.
const TOP: i32 = 44;
const BOTTOM_MARGIN: i32 = 56;
const RIGHT_MARGIN: i32 = 24;
/// Sizes whose SVG font size prints exactly (see [`font_size`]): 13 and 15 do not.
const TITLE_PX: f64 = 14.5;
const LABEL_PX: f64 = 12.5;
const TICK_PX: f64 = 12.0;
/// The distance between lines of one label.
const LINE_PX: f64 = 15.0;
/// Below this a label is shortened rather than drawn smaller.
const MIN_PX: f64 = 12.0;
/// A legend label's line length in characters, and its number of lines.
const LEGEND_CHARS: usize = 26;
const LEGEND_LINES: usize = 2;
/// Beyond this many points a line gets markers on every k-th point only: a marker on each
/// of hundreds of steps would merge into a thick band and hide the line's dash pattern.
const MAX_MARKERS: usize = 24;
const LINE_WIDTH: u32 = 2;

/// Okabe–Ito: told apart with every common colour-vision deficiency. Yellow, darkened to
/// show as a line on white, comes last, as the series least often drawn.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xB5, 0xA5, 0x00),
];
const GUIDE: RGBColor = RGBColor(0x80, 0x80, 0x80);
const GRID: RGBColor = RGBColor(0xE6, 0xE6, 0xE6);
const FRAME: RGBColor = RGBColor(0x44, 0x44, 0x44);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);

/// On and off lengths in pixels: solid, dashed, dotted, dash-dot.
const DASHES: [&[f64]; 4] = [&[], &[9.0, 5.0], &[2.0, 3.0], &[10.0, 4.0, 2.0, 4.0]];
const GUIDE_DASH: &[f64] = &[6.0, 4.0];

/// Marker shapes, in the order series take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Circle,
    TriangleUp,
    Square,
    Diamond,
    Cross,
    TriangleDown,
}

const SHAPES: [Shape; 6] = [
    Shape::Circle,
    Shape::TriangleUp,
    Shape::Square,
    Shape::Diamond,
    Shape::Cross,
    Shape::TriangleDown,
];

/// How series `i` of a panel looks. Colour, shape and dash cycle with periods 8, 6 and 4,
/// and every other series has hollow markers, so any two of the first [`MAX_SERIES`]
/// differ in shape, dash or fill as well as colour (greyscale keeps them apart). Markers
/// shrink a little from series to series, so an earlier marker under a later one still
/// shows around it.
#[derive(Debug, Clone, Copy)]
struct Look {
    color: RGBColor,
    shape: Shape,
    dash: &'static [f64],
    filled: bool,
    size: f64,
}

fn look(i: usize) -> Look {
    Look {
        color: PALETTE[i % PALETTE.len()],
        shape: SHAPES[i % SHAPES.len()],
        dash: DASHES[i % DASHES.len()],
        filled: i.is_multiple_of(2),
        size: 5.0 - 0.25 * (i % MAX_SERIES) as f64,
    }
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `v` in axis units (log10 of it on a log axis), or `None` where it cannot be drawn.
fn transform(v: f64, log: bool) -> Option<f64> {
    match (v.is_finite(), log) {
        (false, _) => None,
        (true, false) => Some(v),
        (true, true) => (v > 0.0).then(|| v.log10()),
    }
}

/// The decimal `m` * 10^`e`, as close as f64 gets to it (so it prints without noise:
/// 3 * 0.1 would print as 0.30000000000000004, 3 / 10 prints as 0.3).
fn decimal(m: i64, e: i32) -> f64 {
    if e >= 0 {
        m as f64 * 10f64.powi(e)
    } else {
        m as f64 / 10f64.powi(-e)
    }
}

/// An axis fitted or fixed, in axis units, with its ticks.
#[derive(Debug, Clone, PartialEq)]
struct Mapped {
    log: bool,
    lo: f64,
    hi: f64,
    /// Labelled ticks: position in axis units and label.
    ticks: Vec<(f64, String)>,
    /// Unlabelled ticks (the 2..9 multiples between labelled decades).
    minor: Vec<f64>,
}

impl Mapped {
    fn of(axis: &Axis, values: &[f64], what: &str) -> Result<Self, String> {
        let log = axis.scale == Scale::Log;
        let (lo, hi) = match axis.range {
            Some((a, b)) => match (transform(a, log), transform(b, log)) {
                (Some(lo), Some(hi)) if lo < hi => (lo, hi),
                _ => {
                    return Err(format!(
                        "the {what} range ({a}, {b}) is empty{}",
                        if log {
                            " or not positive on a log axis"
                        } else {
                            ""
                        }
                    ));
                }
            },
            None => fitted(
                values.iter().filter_map(|&v| transform(v, log)),
                log,
                axis.integer,
            ),
        };
        let (ticks, minor) = if log {
            log_ticks(lo, hi, axis.integer)
        } else {
            (linear_ticks(lo, hi, axis.integer), Vec::new())
        };
        Ok(Self {
            log,
            lo,
            hi,
            ticks,
            minor,
        })
    }

    fn t(&self, v: f64) -> Option<f64> {
        transform(v, self.log)
    }

    fn value(&self, t: f64) -> f64 {
        if self.log { 10f64.powf(t) } else { t }
    }

    fn contains(&self, t: f64) -> bool {
        let eps = 1e-9 * (self.hi - self.lo);
        t >= self.lo - eps && t <= self.hi + eps
    }

    /// `t`'s share of the way from `lo` to `hi`.
    fn share(&self, t: f64) -> f64 {
        (t - self.lo) / (self.hi - self.lo)
    }
}

/// Whether a and b are equal but for rounding (relative 1e-9).
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// A range (in axis units) around `ts` with a little padding on each side.
fn fitted(ts: impl Iterator<Item = f64>, log: bool, integer: bool) -> (f64, f64) {
    let (a, b) = ts.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
        (a.min(t), b.max(t))
    });
    if !a.is_finite() {
        return (0.0, 1.0);
    }
    if same(a, b) || (b - a) <= 1e-9 * a.abs().max(b.abs()).max(1.0) {
        return if log {
            (a - 0.5, a + 0.5)
        } else if integer {
            (a - 1.0, a + 1.0)
        } else {
            let pad = if a == 0.0 { 1.0 } else { a.abs() * 0.1 };
            (a - pad, a + pad)
        };
    }
    let mut pad = 0.04 * (b - a);
    if integer && !log {
        // Whole numbers a step or two apart would otherwise sit on the frame.
        pad = pad.max(0.25);
    }
    (a - pad, b + pad)
}

/// Ticks on a linear axis from `lo` to `hi`: every integer up to 12 of them on an integer
/// axis, else the finest step of 1, 2 or 5 times a power of ten that gives at most 8.
fn linear_ticks(lo: f64, hi: f64, integer: bool) -> Vec<(f64, String)> {
    if integer {
        let (a, b) = ((lo - 1e-9).ceil(), (hi + 1e-9).floor());
        if b >= a && b - a < 12.0 {
            let (a, b) = (a as i64, b as i64);
            return (a..=b).map(|n| (n as f64, n.to_string())).collect();
        }
    }
    let k0 = (hi - lo).log10().floor() as i32 - 2;
    for k in k0..k0 + 6 {
        if integer && k < 0 {
            continue;
        }
        for m in [1i64, 2, 5] {
            let step = decimal(m, k);
            if !step.is_finite() || step == 0.0 {
                continue;
            }
            let n0 = (lo / step - 1e-9).ceil() as i64;
            let n1 = (hi / step + 1e-9).floor() as i64;
            if n1 - n0 < 8 {
                let values: Vec<f64> = (n0..=n1).map(|n| decimal(n * m, k)).collect();
                let widest = values.iter().fold(0f64, |w, v| w.max(v.abs()));
                // Long runs of zeros read badly: 2e-5 rather than 0.00002.
                let scientific = k < -3 || widest >= 1e5;
                let places = (-k).max(0) as usize;
                return values
                    .into_iter()
                    .map(|v| {
                        let label = if scientific {
                            if v == 0.0 {
                                "0".into()
                            } else {
                                format!("{v:e}")
                            }
                        } else {
                            format!("{v:.places$}")
                        };
                        (v, label)
                    })
                    .collect();
            }
        }
    }
    Vec::new()
}

/// The label of m * 10^e on a log axis: plain from 0.01 to 999, else `me<e>` (`1e-3`).
fn log_label(m: i64, e: i32) -> String {
    if (-2..=2).contains(&e) {
        decimal(m, e).to_string()
    } else {
        format!("{m}e{e}")
    }
}

/// Ticks on a log axis from 10^`lo` to 10^`hi` (in log10 units): the powers of ten (every
/// k-th, so at most 8) where there are at least three; else 1, 2 and 5 times them, or
/// 1 to 9 times them, or linear ticks, whichever first gives three or more (else the
/// most of them). Also the minor ticks between decades labelled one by one.
fn log_ticks(lo: f64, hi: f64, integer: bool) -> (Vec<(f64, String)>, Vec<f64>) {
    let eps = 1e-9 * (hi - lo);
    let inside = |t: f64| t >= lo - eps && t <= hi + eps;
    let (e0, e1) = ((lo - eps).ceil() as i32, (hi + eps).floor() as i32);
    let e0 = if integer { e0.max(0) } else { e0 };
    if e1 - e0 >= 2 {
        let stride = (e1 - e0 + 8) / 8;
        let ticks = (e0..=e1)
            .filter(|e| e.rem_euclid(stride) == 0)
            .map(|e| (f64::from(e), log_label(1, e)))
            .collect();
        let mut minor = Vec::new();
        if stride == 1 {
            for e in (lo.floor() as i32)..=(hi.ceil() as i32) {
                for m in 2..=9 {
                    let t = f64::from(e) + (m as f64).log10();
                    if inside(t) {
                        minor.push(t);
                    }
                }
            }
        }
        return (ticks, minor);
    }
    let mut best: Vec<(f64, String)> = Vec::new();
    for mantissas in [&[1i64, 2, 5][..], &[1, 2, 3, 4, 5, 6, 7, 8, 9]] {
        let mut ticks = Vec::new();
        for e in (lo.floor() as i32)..=(hi.ceil() as i32) {
            if integer && e < 0 {
                continue;
            }
            for &m in mantissas {
                let t = f64::from(e) + (m as f64).log10();
                if inside(t) {
                    ticks.push((t, log_label(m, e)));
                }
            }
        }
        if ticks.len() >= 3 {
            return (ticks, Vec::new());
        }
        if ticks.len() > best.len() {
            best = ticks;
        }
    }
    let linear: Vec<(f64, String)> = linear_ticks(10f64.powf(lo), 10f64.powf(hi), integer)
        .into_iter()
        .filter(|(v, _)| *v > 0.0)
        .map(|(v, label)| (v.log10(), label))
        .filter(|(t, _)| inside(*t))
        .collect();
    if linear.len() > best.len() {
        best = linear;
    }
    (best, Vec::new())
}

/// A panel's entry in a legend.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Series {
        label: String,
        look: usize,
        line: bool,
    },
    Guide {
        label: String,
    },
    Swatch {
        label: String,
        color: RGBColor,
    },
}

/// A panel ready to draw: its axes fitted and its guides clipped.
struct Chart<'a> {
    panel: &'a Panel,
    x: Mapped,
    y: Mapped,
    /// Each guide's visible pieces, in axis units (none where it misses the panel).
    guides: Vec<Vec<Vec<(f64, f64)>>>,
    /// The plotting frame within the panel, in pixels: left, right, top, bottom.
    frame: (f64, f64, f64, f64),
}

impl<'a> Chart<'a> {
    fn of(panel: &'a Panel) -> Result<Self, String> {
        let (xlog, ylog) = (panel.x.scale == Scale::Log, panel.y.scale == Scale::Log);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for s in &panel.series {
            for &(x, y) in &s.points {
                if transform(x, xlog).is_some() && transform(y, ylog).is_some() {
                    xs.push(x);
                    ys.push(y);
                }
            }
            for &(x, lo, hi) in &s.bars {
                let ends: Vec<f64> = [lo, hi]
                    .into_iter()
                    .filter(|&v| transform(v, ylog).is_some())
                    .collect();
                if transform(x, xlog).is_some() && !ends.is_empty() {
                    xs.push(x);
                    ys.extend(ends);
                }
            }
        }
        // A heatmap's axes span its cells, edge to edge, where no range is fixed: lines
        // drawn over it (a theory's curve) are clipped to the map rather than stretching it.
        let (x_axis, y_axis) = match &panel.heat {
            Some(heat) => (
                heat_axis(&panel.x, heat.cells.iter().map(|c| c.0)),
                heat_axis(&panel.y, heat.cells.iter().map(|c| c.1)),
            ),
            None => (panel.x.clone(), panel.y.clone()),
        };
        let in_panel = |e: String| format!("panel '{}': {e}", panel.title);
        let x = Mapped::of(&x_axis, &xs, "x").map_err(in_panel)?;
        let y = Mapped::of(&y_axis, &ys, "y").map_err(in_panel)?;
        let widest = y
            .ticks
            .iter()
            .map(|t| t.1.chars().count())
            .max()
            .unwrap_or(1);
        let (top, bottom) = (f64::from(TOP), f64::from(PANEL_H - BOTTOM_MARGIN));
        let y_lines = label_lines(&panel.y.label, LABEL_PX, bottom - top).0.len();
        let left = 12.0 + LINE_PX * y_lines as f64 + 8.0 + number_width(widest, TICK_PX) + 10.0;
        let frame = (left.round(), f64::from(PANEL_W - RIGHT_MARGIN), top, bottom);
        let mut chart = Self {
            panel,
            x,
            y,
            guides: Vec::new(),
            frame,
        };
        chart.guides = panel.guides.iter().map(|g| chart.guide(g)).collect();
        Ok(chart)
    }

    /// The visible pieces of `g`, in axis units.
    fn guide(&self, g: &Guide) -> Vec<Vec<(f64, f64)>> {
        let line: Vec<Option<(f64, f64)>> = match g {
            Guide::Horizontal { y, .. } => match self.y.t(*y) {
                Some(t) => vec![Some((self.x.lo, t)), Some((self.x.hi, t))],
                None => Vec::new(),
            },
            Guide::Diagonal { factor, .. } => {
                // Straight where both axes have the same scale, else a curve: sampled.
                let n = if self.x.log == self.y.log { 2 } else { 97 };
                (0..n)
                    .map(|j| {
                        let tx = self.x.lo + (self.x.hi - self.x.lo) * j as f64 / (n - 1) as f64;
                        Some((tx, self.y.t(factor * self.x.value(tx))?))
                    })
                    .collect()
            }
        };
        runs(&line)
            .into_iter()
            .flat_map(|run| clip(&run, self.bounds()))
            .collect()
    }

    fn bounds(&self) -> (f64, f64, f64, f64) {
        (self.x.lo, self.x.hi, self.y.lo, self.y.hi)
    }

    fn legend(&self) -> Vec<Entry> {
        let series = self
            .panel
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| Entry::Series {
                label: s.label.clone(),
                look: i,
                line: self.panel.kind == Kind::Lines,
            });
        let guides = self
            .panel
            .guides
            .iter()
            .zip(&self.guides)
            .filter(|(_, pieces)| !pieces.is_empty())
            .filter_map(|(g, _)| match g {
                Guide::Horizontal { label, .. } | Guide::Diagonal { label, .. } => label.clone(),
            })
            .map(|label| Entry::Guide { label });
        let key: Vec<Entry> = match &self.panel.heat {
            None => Vec::new(),
            Some(heat) => {
                let mut key: Vec<Entry> = HEAT_KEY
                    .iter()
                    .map(|&v| Entry::Swatch {
                        label: format!("{} {v}", heat.label),
                        color: shade(v),
                    })
                    .collect();
                if heat.cells.iter().any(|c| !c.2.is_finite()) {
                    key.push(Entry::Swatch {
                        label: "no result".into(),
                        color: NO_RESULT,
                    });
                }
                key
            }
        };
        series.chain(guides).chain(key).collect()
    }

    /// Draws the heatmap's cells inside the frame.
    fn cells(&self, root: &Root, origin: (i32, i32), heat: &Heat) -> Result<(), String> {
        let tx: Vec<f64> = heat.cells.iter().filter_map(|c| self.x.t(c.0)).collect();
        let ty: Vec<f64> = heat.cells.iter().filter_map(|c| self.y.t(c.1)).collect();
        let (ex, ey) = (cell_edges(&tx), cell_edges(&ty));
        let edge = |edges: &[(f64, f64, f64)], t: f64| {
            edges
                .iter()
                .find(|e| same(e.0, t))
                .map(|&(_, lo, hi)| (lo, hi))
        };
        for &(x, y, v) in &heat.cells {
            let (Some(cx), Some(cy)) = (self.x.t(x), self.y.t(y)) else {
                continue;
            };
            let (Some((x0, x1)), Some((y0, y1))) = (edge(&ex, cx), edge(&ey, cy)) else {
                continue;
            };
            let clamp_x = |t: f64| t.clamp(self.x.lo, self.x.hi);
            let clamp_y = |t: f64| t.clamp(self.y.lo, self.y.hi);
            let a = self.pixel(origin, (clamp_x(x0), clamp_y(y1)));
            let b = self.pixel(origin, (clamp_x(x1), clamp_y(y0)));
            root.draw(&Rectangle::new([round(a), round(b)], shade(v).filled()))
                .map_err(fail)?;
        }
        Ok(())
    }

    /// The pixel of (tx, ty) in axis units, for a panel at `origin`.
    fn pixel(&self, origin: (i32, i32), (tx, ty): (f64, f64)) -> (f64, f64) {
        let (left, right, top, bottom) = self.frame;
        (
            f64::from(origin.0) + left + self.x.share(tx) * (right - left),
            f64::from(origin.1) + bottom - self.y.share(ty) * (bottom - top),
        )
    }

    fn draw(&self, root: &Root, origin: (i32, i32)) -> Result<(), String> {
        let (left, right, top, bottom) = self.frame;
        let (ox, oy) = (f64::from(origin.0), f64::from(origin.1));
        let (l, r, t, b) = (ox + left, ox + right, oy + top, oy + bottom);
        let line = |from: (f64, f64), to: (f64, f64), color: &RGBColor| {
            root.draw(&PathElement::new(
                vec![round(from), round(to)],
                color.stroke_width(1),
            ))
            .map_err(fail)
        };
        for &(tx, _) in &self.x.ticks {
            let x = self.pixel(origin, (tx, self.y.lo)).0;
            line((x, t), (x, b), &GRID)?;
        }
        for &(ty, _) in &self.y.ticks {
            let y = self.pixel(origin, (self.x.lo, ty)).1;
            line((l, y), (r, y), &GRID)?;
        }
        if let Some(heat) = &self.panel.heat {
            self.cells(root, origin, heat)?;
        }
        for pieces in &self.guides {
            for piece in pieces {
                let pixels: Vec<(f64, f64)> =
                    piece.iter().map(|&p| self.pixel(origin, p)).collect();
                stroke(root, &pixels, GUIDE_DASH, GUIDE.stroke_width(1))?;
            }
        }
        let count = self.panel.series.len();
        for (i, s) in self.panel.series.iter().enumerate() {
            self.series(root, origin, i, count, s)?;
        }
        root.draw(&Rectangle::new(
            [round((l, t)), round((r, b))],
            FRAME.stroke_width(1),
        ))
        .map_err(fail)?;
        for &(tx, ref label) in &self.x.ticks {
            let x = self.pixel(origin, (tx, self.y.lo)).0;
            line((x, b), (x, b + 5.0), &FRAME)?;
            text(
                root,
                label,
                TICK_PX,
                round((x, b + 8.0)),
                (HPos::Center, VPos::Top),
                false,
            )?;
        }
        for &tx in &self.x.minor {
            let x = self.pixel(origin, (tx, self.y.lo)).0;
            line((x, b), (x, b + 3.0), &FRAME)?;
        }
        for &(ty, ref label) in &self.y.ticks {
            let y = self.pixel(origin, (self.x.lo, ty)).1;
            line((l - 5.0, y), (l, y), &FRAME)?;
            text(
                root,
                label,
                TICK_PX,
                round((l - 8.0, y)),
                (HPos::Right, VPos::Center),
                false,
            )?;
        }
        for &ty in &self.y.minor {
            let y = self.pixel(origin, (self.x.lo, ty)).1;
            line((l - 3.0, y), (l, y), &FRAME)?;
        }
        let (lines, px) = label_lines(&self.panel.x.label, LABEL_PX, r - l);
        for (k, line) in lines.iter().enumerate() {
            let at = ((l + r) / 2.0, b + 26.0 + LINE_PX * k as f64);
            text(root, line, px, round(at), (HPos::Center, VPos::Top), false)?;
        }
        // Turned to read upwards, so a second line stands to the right of the first.
        let (lines, px) = label_lines(&self.panel.y.label, LABEL_PX, b - t);
        for (k, line) in lines.iter().enumerate() {
            let at = (ox + 12.0 + LINE_PX * (k as f64 + 0.5), (t + b) / 2.0);
            text(
                root,
                line,
                px,
                round(at),
                (HPos::Center, VPos::Center),
                true,
            )?;
        }
        let (title, title_px) = fitting(&self.panel.title, TITLE_PX, f64::from(PANEL_W) - 24.0);
        // Centred over the frame, unless that would run it off the panel.
        let half = text_width(title.chars().count(), title_px) / 2.0;
        let centre = ((l + r) / 2.0).clamp(ox + 12.0 + half, ox + f64::from(PANEL_W) - 12.0 - half);
        text(
            root,
            &title,
            title_px,
            round((centre, oy + 12.0)),
            (HPos::Center, VPos::Top),
            false,
        )
    }

    /// Draws series `i` of `count`: its error bars, then its line, then its markers.
    fn series(
        &self,
        root: &Root,
        origin: (i32, i32),
        i: usize,
        count: usize,
        s: &Series,
    ) -> Result<(), String> {
        let look = look(i);
        for &(x, lo, hi) in &s.bars {
            let Some(tx) = self.x.t(x).filter(|&t| self.x.contains(t)) else {
                continue;
            };
            let Some(thi) = self.y.t(hi) else { continue };
            // A low end at or below zero on a log axis reaches the bottom of the panel, with
            // no cap: it has no end there.
            let tlo = match self.y.t(lo) {
                Some(t) => Some(t),
                None if self.y.log && lo <= 0.0 => None,
                None => continue,
            };
            let (a, b) = match tlo {
                Some(t) => (t.min(thi), t.max(thi)),
                None => (f64::NEG_INFINITY, thi),
            };
            if a > self.y.hi || b < self.y.lo {
                continue;
            }
            let (ca, cb) = (a.max(self.y.lo), b.min(self.y.hi));
            let (x, ya) = self.pixel(origin, (tx, ca));
            let yb = self.pixel(origin, (tx, cb)).1;
            let style = look.color.stroke_width(1);
            root.draw(&PathElement::new(
                vec![round((x, ya)), round((x, yb))],
                style,
            ))
            .map_err(fail)?;
            for (end, y) in [(a, ya), (b, yb)] {
                if self.y.contains(end) {
                    root.draw(&PathElement::new(
                        vec![round((x - 4.0, y)), round((x + 4.0, y))],
                        style,
                    ))
                    .map_err(fail)?;
                }
            }
        }
        let points: Vec<Option<(f64, f64)>> = s
            .points
            .iter()
            .map(|&(x, y)| Some((self.x.t(x)?, self.y.t(y)?)))
            .collect();
        if self.panel.kind == Kind::Lines {
            for run in runs(&points) {
                for piece in clip(&run, self.bounds()) {
                    let pixels: Vec<(f64, f64)> =
                        piece.iter().map(|&p| self.pixel(origin, p)).collect();
                    stroke(
                        root,
                        &pixels,
                        look.dash,
                        look.color.stroke_width(LINE_WIDTH),
                    )?;
                }
            }
        }
        let shown: Vec<(f64, f64)> = points
            .iter()
            .flatten()
            .copied()
            .filter(|&(tx, ty)| self.x.contains(tx) && self.y.contains(ty))
            .collect();
        let (every, offset) = if self.panel.kind == Kind::Lines && shown.len() > MAX_MARKERS {
            // Staggered between series, so lines that share their points keep markers apart.
            let every = shown.len().div_ceil(MAX_MARKERS);
            (every, i * every / count.max(1))
        } else {
            (1, 0)
        };
        for (j, &p) in shown.iter().enumerate() {
            if j % every == offset {
                marker(root, round(self.pixel(origin, p)), look)?;
            }
        }
        Ok(())
    }
}

/// The maximal runs of consecutive drawable points (a point that cannot be drawn breaks a
/// line rather than being bridged).
fn runs(points: &[Option<(f64, f64)>]) -> Vec<Vec<(f64, f64)>> {
    points
        .split(Option::is_none)
        .map(|run| run.iter().flatten().copied().collect::<Vec<_>>())
        .filter(|run| !run.is_empty())
        .collect()
}

/// The parts of the polyline `run` inside `bounds` (x0, x1, y0, y1): one piece per stretch
/// that stays inside.
fn clip(run: &[(f64, f64)], bounds: (f64, f64, f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let mut pieces = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut flush = |current: &mut Vec<(f64, f64)>| {
        if current.len() >= 2 {
            pieces.push(std::mem::take(current));
        } else {
            current.clear();
        }
    };
    for w in run.windows(2) {
        match clip_segment(w[0], w[1], bounds) {
            None => flush(&mut current),
            Some((a, b, a_cut, b_cut)) => {
                if a_cut || current.is_empty() {
                    flush(&mut current);
                    current.push(a);
                }
                current.push(b);
                if b_cut {
                    flush(&mut current);
                }
            }
        }
    }
    flush(&mut current);
    pieces
}

/// The part of the segment p-q inside `bounds` (Liang–Barsky), and whether each end was
/// cut.
#[allow(clippy::type_complexity)]
fn clip_segment(
    p: (f64, f64),
    q: (f64, f64),
    (x0, x1, y0, y1): (f64, f64, f64, f64),
) -> Option<((f64, f64), (f64, f64), bool, bool)> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let (mut t0, mut t1) = (0f64, 1f64);
    for (pk, qk) in [
        (-dx, p.0 - x0),
        (dx, x1 - p.0),
        (-dy, p.1 - y0),
        (dy, y1 - p.1),
    ] {
        if pk == 0.0 {
            if qk < 0.0 {
                return None;
            }
        } else {
            let t = qk / pk;
            if pk < 0.0 {
                if t > t1 {
                    return None;
                }
                t0 = t0.max(t);
            } else {
                if t < t0 {
                    return None;
                }
                t1 = t1.min(t);
            }
        }
    }
    let at = |t: f64| (p.0 + t * dx, p.1 + t * dy);
    Some((at(t0), at(t1), t0 > 0.0, t1 < 1.0))
}

/// The dashes of the pixel polyline `line` under `pattern` (on, off, on, off, … lengths;
/// empty for a solid line). The pattern runs on across corners, as a pen would.
fn dashes(line: &[(f64, f64)], pattern: &[f64]) -> Vec<Vec<(f64, f64)>> {
    if pattern.is_empty() || line.len() < 2 {
        return vec![line.to_vec()];
    }
    let mut out = Vec::new();
    let (mut k, mut left, mut on) = (0, pattern[0], true);
    let mut current = vec![line[0]];
    for w in line.windows(2) {
        let (a, b) = (w[0], w[1]);
        let length = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        if length == 0.0 {
            continue;
        }
        let mut done = 0.0;
        while length - done >= left {
            done += left;
            let f = done / length;
            let at = (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1));
            if on {
                current.push(at);
                out.push(std::mem::take(&mut current));
            } else {
                current = vec![at];
            }
            on = !on;
            k = (k + 1) % pattern.len();
            left = pattern[k];
        }
        left -= length - done;
        if on && current.last() != Some(&b) {
            current.push(b);
        }
    }
    if on && current.len() >= 2 {
        out.push(current);
    }
    out
}

fn round((x, y): (f64, f64)) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

/// Draws the pixel polyline `line` with `pattern`'s dashes.
fn stroke(
    root: &Root,
    line: &[(f64, f64)],
    pattern: &[f64],
    style: ShapeStyle,
) -> Result<(), String> {
    for dash in dashes(line, pattern) {
        let mut pixels: Vec<(i32, i32)> = dash.into_iter().map(round).collect();
        pixels.dedup();
        if pixels.len() == 1 {
            // A dot shorter than a pixel still shows as one.
            pixels.push(pixels[0]);
        }
        root.draw(&PathElement::new(pixels, style)).map_err(fail)?;
    }
    Ok(())
}

/// Draws `look`'s marker centred on `at`.
fn marker(root: &Root, at: (i32, i32), look: Look) -> Result<(), String> {
    let s = look.size;
    let c = look.color;
    let outline = |root: &Root, corners: &[(f64, f64)]| -> Result<(), String> {
        let mut pixels: Vec<(i32, i32)> = corners
            .iter()
            .map(|&(dx, dy)| round((f64::from(at.0) + dx * s, f64::from(at.1) + dy * s)))
            .collect();
        if look.filled {
            root.draw(&Polygon::new(pixels, c.filled())).map_err(fail)
        } else {
            pixels.push(pixels[0]);
            root.draw(&PathElement::new(pixels, c.stroke_width(1)))
                .map_err(fail)
        }
    };
    match look.shape {
        Shape::Circle => {
            let style = if look.filled {
                c.filled()
            } else {
                c.stroke_width(1)
            };
            root.draw(&Circle::new(at, s.round() as i32, style))
                .map_err(fail)
        }
        Shape::TriangleUp => outline(root, &[(0.0, -1.25), (1.15, 0.8), (-1.15, 0.8)]),
        Shape::TriangleDown => outline(root, &[(0.0, 1.25), (1.15, -0.8), (-1.15, -0.8)]),
        Shape::Square => outline(root, &[(-0.9, -0.9), (0.9, -0.9), (0.9, 0.9), (-0.9, 0.9)]),
        Shape::Diamond => outline(root, &[(0.0, -1.3), (1.1, 0.0), (0.0, 1.3), (-1.1, 0.0)]),
        Shape::Cross => {
            let d = s * 0.9;
            let (x, y) = (f64::from(at.0), f64::from(at.1));
            for (from, to) in [
                ((x - d, y - d), (x + d, y + d)),
                ((x - d, y + d), (x + d, y - d)),
            ] {
                root.draw(&PathElement::new(
                    vec![round(from), round(to)],
                    c.stroke_width(2),
                ))
                .map_err(fail)?;
            }
            Ok(())
        }
    }
}

/// Draws `entries` in a column whose top left is `at`.
fn legend(root: &Root, at: (i32, i32), entries: &[Entry]) -> Result<(), String> {
    let (x, mut y) = (f64::from(at.0) + 10.0, f64::from(at.1) + 8.0);
    for entry in entries {
        let (sample_from, sample_to) = ((x, y), (x + 30.0, y));
        let label = match entry {
            Entry::Series {
                label,
                look: i,
                line,
            } => {
                let look = look(*i);
                if *line {
                    stroke(
                        root,
                        &[sample_from, sample_to],
                        look.dash,
                        look.color.stroke_width(LINE_WIDTH),
                    )?;
                }
                marker(root, round((x + 15.0, y)), look)?;
                label
            }
            Entry::Guide { label } => {
                stroke(
                    root,
                    &[sample_from, sample_to],
                    GUIDE_DASH,
                    GUIDE.stroke_width(1),
                )?;
                label
            }
            Entry::Swatch { label, color } => {
                let square = [round((x + 8.0, y - 7.0)), round((x + 22.0, y + 7.0))];
                root.draw(&Rectangle::new(square, color.filled()))
                    .map_err(fail)?;
                root.draw(&Rectangle::new(square, FRAME.stroke_width(1)))
                    .map_err(fail)?;
                label
            }
        };
        let lines = wrap(label, LEGEND_CHARS, LEGEND_LINES);
        for (k, line) in lines.iter().enumerate() {
            let row = (x + 38.0, y + LINE_PX * k as f64);
            text(
                root,
                line,
                TICK_PX,
                round(row),
                (HPos::Left, VPos::Center),
                false,
            )?;
        }
        y += LINE_PX * lines.len() as f64 + 8.0;
    }
    Ok(())
}

/// `label` in lines of at most `width` characters, broken at spaces where it can be, and
/// at most `max_lines` of them, the last ending in an ellipsis where text was left out.
fn wrap(label: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in label.split(' ') {
        let (n, w) = (current.chars().count(), word.chars().count());
        if n > 0 && n + 1 + w <= width {
            current.push(' ');
            current.push_str(word);
            continue;
        }
        if n > 0 {
            lines.push(std::mem::take(&mut current));
        }
        let mut rest: Vec<char> = word.chars().collect();
        while rest.len() > width {
            lines.push(rest.drain(..width).collect());
        }
        current = rest.into_iter().collect();
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        let tail = lines[max_lines - 1..].join(" ");
        lines.truncate(max_lines - 1);
        lines.push(shorten(&tail, width));
    }
    lines
}

/// `s` cut to `width` characters, with an ellipsis where it was cut.
fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut cut: String = s.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// About how wide `chars` characters of words in sans-serif at `px` pixels are (a little
/// wide for common fonts, so text planned with it fits).
fn text_width(chars: usize, px: f64) -> f64 {
    chars as f64 * px * EM
}

/// The same for numbers, whose digits are wider than the average letter.
fn number_width(chars: usize, px: f64) -> f64 {
    chars as f64 * px * 0.62
}

/// A character's average width in words, as a share of the font size.
const EM: f64 = 0.55;

/// `s` at `px`, or smaller (down to [`MIN_PX`]), then shortened, to fit in `room` pixels.
fn fitting(s: &str, px: f64, room: f64) -> (String, f64) {
    let n = s.chars().count();
    if text_width(n, px) <= room {
        return (s.to_string(), px);
    }
    let smaller = (room / (n as f64 * EM)).floor().clamp(MIN_PX, px);
    let chars = (room / (smaller * EM)).floor() as usize;
    (shorten(s, chars), smaller)
}

/// An axis label in `room` pixels: one line at `px` or [`MIN_PX`] where it fits, else two
/// lines at [`MIN_PX`] (an axis label cut short could no longer say what is plotted).
fn label_lines(s: &str, px: f64, room: f64) -> (Vec<String>, f64) {
    let (one, size) = fitting(s, px, room);
    if one == s {
        return (vec![one], size);
    }
    let chars = (room / (MIN_PX * EM)).floor() as usize;
    (wrap(s, chars, 2), MIN_PX)
}

/// The size to give plotters for text `px` pixels high: its SVG backend writes the size
/// divided by 1.24, and `px * 1.24` can come back as 14.000000000000002, so the neighbour
/// that comes back exact is taken where there is one.
fn font_size(px: f64) -> f64 {
    let near = px * 1.24;
    (0..16u64)
        .flat_map(|k| [near.to_bits() + k, near.to_bits() - k])
        .map(f64::from_bits)
        .find(|s| s / 1.24 == px)
        .unwrap_or(near)
}

fn text(
    root: &Root,
    s: &str,
    px: f64,
    at: (i32, i32),
    (h, v): (HPos, VPos),
    upright: bool,
) -> Result<(), String> {
    let mut style = TextStyle::from((FONT, font_size(px)))
        .color(&INK)
        .pos(Pos::new(h, v));
    if upright {
        style = style.transform(FontTransform::Rotate270);
    }
    root.draw_text(s, &style, at).map_err(fail)
}

/// One sentence per pair of series of a panel with the same points.
fn coincidences(panels: &[Panel]) -> Vec<String> {
    let mut notes = Vec::new();
    for p in panels {
        for (i, a) in p.series.iter().enumerate() {
            for b in &p.series[i + 1..] {
                let equal = !a.points.is_empty()
                    && a.points.len() == b.points.len()
                    && a.points
                        .iter()
                        .zip(&b.points)
                        .all(|(u, v)| same(u.0, v.0) && same(u.1, v.1));
                if equal {
                    notes.push(format!(
                        "In panel '{}', '{}' and '{}' coincide: '{}' is drawn over '{}'.",
                        p.title, a.label, b.label, b.label, a.label
                    ));
                }
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh folder of this test process, removed when dropped.
    struct Folder(PathBuf);

    impl Folder {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("vgrad-plot-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn join(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn axis(label: &str, scale: Scale, integer: bool) -> Axis {
        Axis {
            label: label.into(),
            scale,
            range: None,
            integer,
        }
    }

    fn series(label: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
            bars: Vec::new(),
        }
    }

    /// A panel of lines over steps 0..=10, on a log y axis.
    fn panel(title: &str, series: Vec<Series>) -> Panel {
        Panel {
            heat: None,
            title: title.into(),
            x: axis("training step", Scale::Linear, true),
            y: axis("gradient norm", Scale::Log, false),
            kind: Kind::Lines,
            series,
            guides: Vec::new(),
        }
    }

    /// A decay from 1 to 1e-3 over steps 0..=10, scaled by `f`.
    fn decay(f: f64) -> Vec<(f64, f64)> {
        (0..=10)
            .map(|k| (k as f64, f * 10f64.powf(-0.3 * k as f64)))
            .collect()
    }

    /// Draws `panels` into `name` in a fresh folder; returns the SVG text and the notes.
    fn drawn(name: &str, panels: &[Panel]) -> (String, Vec<String>) {
        let dir = Folder::new(name);
        let path = dir.join("figure.svg");
        let notes = draw(&path, panels).unwrap();
        (std::fs::read_to_string(&path).unwrap(), notes)
    }

    /// The value of attribute `name` in the tag `tag`.
    fn attribute<'s>(tag: &'s str, name: &str) -> Option<&'s str> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(&tag[start..start + tag[start..].find('"')?])
    }

    /// Every `<text>`: its x and its text.
    fn texts(svg: &str) -> Vec<(f64, String)> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let x = attribute(t, "x").unwrap().parse().unwrap();
                let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                (x, body.trim().to_string())
            })
            .collect()
    }

    /// Every `<polyline>`: its stroke and its points.
    fn polylines(svg: &str) -> Vec<(String, Vec<(f64, f64)>)> {
        svg.split("<polyline")
            .skip(1)
            .map(|t| {
                let points = attribute(t, "points")
                    .unwrap()
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                (attribute(t, "stroke").unwrap().to_string(), points)
            })
            .collect()
    }

    fn labels(ticks: &[(f64, String)]) -> Vec<&str> {
        ticks.iter().map(|t| t.1.as_str()).collect()
    }

    #[test]
    fn every_label_and_tick_is_drawn_and_the_legend_is_right_of_the_data() {
        let mut p = panel(
            "Gradient norms",
            vec![
                series("alpha", decay(1.0)),
                series("beta", decay(0.5)),
                series("gamma", decay(0.25)),
            ],
        );
        p.guides.push(Guide::Horizontal {
            y: 0.1,
            label: Some("reference".into()),
        });
        let (svg, notes) = drawn("labels", &[p]);
        assert!(notes.is_empty(), "{notes:?}");
        let texts = texts(&svg);
        let has = |s: &str| texts.iter().any(|t| t.1 == s);
        for s in [
            "Gradient norms",
            "training step",
            "gradient norm",
            "alpha",
            "beta",
            "gamma",
            "reference",
        ] {
            assert!(has(s), "no text {s:?} in {texts:?}");
        }
        for tick in ["1e-3", "0.01", "0.1", "1"] {
            assert!(has(tick), "no y tick {tick:?} in {texts:?}");
        }
        for step in 0..=10 {
            assert!(has(&step.to_string()), "no x tick {step} in {texts:?}");
        }
        // The data: polylines of more than two points (the solid series and its grid).
        let data_right = polylines(&svg)
            .iter()
            .filter(|(stroke, points)| stroke == "#0072B2" && points.len() > 2)
            .flat_map(|(_, points)| points.iter().map(|p| p.0))
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(data_right > 300.0, "{data_right}");
        for label in ["alpha", "beta", "gamma", "reference"] {
            let x = texts.iter().find(|t| t.1 == label).unwrap().0;
            assert!(
                x > data_right + 20.0,
                "{label} at {x}, data to {data_right}"
            );
            assert!(x > f64::from(PANEL_W), "{label} at {x}");
        }
        // Readable sizes, written without rounding noise.
        for size in svg.split("font-size=\"").skip(1) {
            let size: f64 = size[..size.find('"').unwrap()].parse().unwrap();
            assert!((12.0..=15.0).contains(&size), "{size}");
        }
        assert!(
            !svg.contains("00000"),
            "a number written with rounding noise"
        );
    }

    #[test]
    fn panels_with_other_series_get_a_legend_each_beside_their_own_data() {
        let a = panel("A", vec![series("left one", decay(1.0))]);
        let b = panel("B", vec![series("right one", decay(2.0))]);
        let (svg, _) = drawn("own-legends", &[a, b]);
        let width = 2 * (PANEL_W + LEGEND_W);
        assert!(
            svg.starts_with(&format!("<svg width=\"{width}\"")),
            "{}",
            &svg[..60]
        );
        let texts = texts(&svg);
        let lines = polylines(&svg);
        for (k, (label, stroke)) in [("left one", "#0072B2"), ("right one", "#0072B2")]
            .into_iter()
            .enumerate()
        {
            let (from, to) = (
                f64::from(k as i32 * (PANEL_W + LEGEND_W)),
                f64::from((k as i32 + 1) * (PANEL_W + LEGEND_W)),
            );
            let data_right = lines
                .iter()
                .filter(|(s, p)| s == stroke && p.len() > 2 && p[0].0 >= from && p[0].0 < to)
                .flat_map(|(_, p)| p.iter().map(|q| q.0))
                .fold(f64::NEG_INFINITY, f64::max);
            let x = texts.iter().find(|t| t.1 == label).unwrap().0;
            assert!(
                data_right > from && x > data_right && x < to,
                "{label}: {x} vs {data_right}"
            );
        }
    }

    #[test]
    fn panels_with_the_same_series_share_one_legend() {
        let make = |title: &str, f: f64| {
            panel(
                title,
                vec![series("first", decay(f)), series("second", decay(f / 3.0))],
            )
        };
        let panels = [make("A", 1.0), make("B", 2.0), make("C", 4.0)];
        let (svg, _) = drawn("shared", &panels);
        let (width, height) = (2 * PANEL_W + LEGEND_W, 2 * PANEL_H);
        let head = format!("<svg width=\"{width}\" height=\"{height}\"");
        assert!(svg.starts_with(&head), "{}", &svg[..60]);
        let texts = texts(&svg);
        for label in ["first", "second"] {
            let at: Vec<f64> = texts.iter().filter(|t| t.1 == label).map(|t| t.0).collect();
            assert_eq!(at.len(), 1, "{label}: {at:?}");
            assert!(at[0] > f64::from(2 * PANEL_W), "{label}: {at:?}");
        }
    }

    #[test]
    fn more_series_than_a_panel_keeps_apart_is_an_error_naming_the_panel() {
        let many = (0..=MAX_SERIES)
            .map(|i| series(&format!("s{i}"), decay(i as f64 + 1.0)))
            .collect();
        let dir = Folder::new("too-many");
        let path = dir.join("figure.svg");
        let e = draw(&path, &[panel("ok", vec![]), panel("Crowded", many)]).unwrap_err();
        assert!(e.contains("'Crowded'") && e.contains("9 series"), "{e}");
        assert!(!path.exists());
        assert!(draw(&path, &[]).is_err());
        let mut fixed = panel("Fixed", vec![series("a", decay(1.0))]);
        fixed.y.range = Some((0.0, 1.0));
        let e = draw(&path, &[fixed]).unwrap_err();
        assert!(e.contains("'Fixed'") && e.contains("y range"), "{e}");
    }

    #[test]
    fn identical_series_are_named_in_a_note() {
        let nudged: Vec<(f64, f64)> = decay(1.0)
            .into_iter()
            .map(|(x, y)| (x, y * (1.0 + 1e-12)))
            .collect();
        let p = panel(
            "Twins",
            vec![
                series("a", decay(1.0)),
                series("b", nudged),
                series("c", decay(1.01)),
                series("empty", vec![]),
                series("also empty", vec![]),
            ],
        );
        let (svg, notes) = drawn("twins", &[p]);
        assert_eq!(
            notes,
            ["In panel 'Twins', 'a' and 'b' coincide: 'b' is drawn over 'a'."]
        );
        // The later twin's markers are hollow: an outline over the filled circles.
        assert!(svg.contains("fill=\"#0072B2\""));
        assert!(svg.contains(
            "<polyline fill=\"none\" opacity=\"1\" stroke=\"#D55E00\" stroke-width=\"1\""
        ));
    }

    #[test]
    fn points_that_cannot_be_drawn_are_left_out() {
        let odd = vec![
            (1.0, f64::NAN),
            (2.0, -1.0),
            (3.0, 0.0),
            (4.0, 0.01),
            (5.0, 0.1),
            (f64::INFINITY, 1.0),
            (6.0, f64::NEG_INFINITY),
        ];
        let none = vec![(1.0, f64::NAN), (2.0, 0.0)];
        let mut p = panel(
            "Odd values",
            vec![
                series("odd", odd),
                series("none", none),
                series("empty", vec![]),
            ],
        );
        p.series[0].bars = vec![(4.0, -1.0, 0.02), (f64::NAN, 1.0, 2.0)];
        let (svg, _) = drawn("odd", &[p.clone()]);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let blue: Vec<Vec<(f64, f64)>> = polylines(&svg)
            .into_iter()
            .filter(|(stroke, _)| stroke == "#0072B2")
            .map(|(_, points)| points)
            .collect();
        // The line from x = 4 to x = 5, the legend's sample, the bar and its top cap.
        assert_eq!(blue.len(), 4, "{blue:?}");
        assert!(blue.iter().all(|l| l.len() == 2), "{blue:?}");
        // Two markers on the data, one in the legend.
        assert_eq!(svg.matches("<circle").count(), 3);
        let chart = Chart::of(&p).unwrap();
        assert!(chart.x.lo > 3.0 && chart.x.hi < 5.5, "{:?}", chart.x);
        // Nothing drawable at all still gives a figure.
        let nothing = panel("Nothing", vec![series("none", vec![(f64::NAN, 1.0)])]);
        drawn("nothing", &[nothing]);
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let mut p = panel(
            "Same",
            vec![series("a", decay(1.0)), series("b", decay(2.0))],
        );
        p.series[1].bars = decay(2.0)
            .into_iter()
            .map(|(x, y)| (x, y / 2.0, y * 2.0))
            .collect();
        let dir = Folder::new("same");
        draw(&dir.join("1.svg"), &[p.clone(), p.clone()]).unwrap();
        draw(&dir.join("2.svg"), &[p.clone(), p]).unwrap();
        let (one, two) = (
            std::fs::read(dir.join("1.svg")).unwrap(),
            std::fs::read(dir.join("2.svg")).unwrap(),
        );
        assert!(one.len() > 1000);
        assert_eq!(one, two);
    }

    #[test]
    fn error_bars_widen_the_fitted_range() {
        let mut p = panel("Bars", vec![series("a", decay(1.0))]);
        p.series[0].bars = vec![(5.0, 1e-5, 100.0)];
        let chart = Chart::of(&p).unwrap();
        assert!(chart.y.lo < -5.0 && chart.y.hi > 2.0, "{:?}", chart.y);
        assert!(labels(&chart.y.ticks).contains(&"100"));
    }

    #[test]
    fn linear_ticks_are_few_round_and_short() {
        let ticks = linear_ticks(0.0, 1.0, false);
        assert_eq!(labels(&ticks), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let ticks = linear_ticks(-0.03, 0.73, false);
        assert_eq!(
            labels(&ticks),
            ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
        );
        assert_eq!(ticks[3].0, 0.3);
        let ticks = linear_ticks(-40.0, 1040.0, true);
        assert_eq!(labels(&ticks), ["0", "200", "400", "600", "800", "1000"]);
        let ticks = linear_ticks(0.75, 12.25, true);
        assert_eq!(ticks.len(), 12);
        assert_eq!((ticks[0].1.as_str(), ticks[11].1.as_str()), ("1", "12"));
        let ticks = linear_ticks(0.5, 30.5, true);
        assert_eq!(labels(&ticks), ["5", "10", "15", "20", "25", "30"]);
        let ticks = linear_ticks(0.3, 2.7, true);
        assert_eq!(labels(&ticks), ["1", "2"]);
        let ticks = linear_ticks(-1e-6, 4.2e-5, false);
        assert_eq!(labels(&ticks), ["0", "1e-5", "2e-5", "3e-5", "4e-5"]);
        let ticks = linear_ticks(0.0, 3e6, false);
        assert_eq!(
            labels(&ticks),
            ["0", "5e5", "1e6", "1.5e6", "2e6", "2.5e6", "3e6"]
        );
        for (lo, hi) in [
            (0.0, 1.0),
            (-3.3, 17.9),
            (0.123, 0.129),
            (-1e3, -2.0),
            (1e4, 9.9e4),
        ] {
            let ticks = linear_ticks(lo, hi, false);
            assert!((4..=8).contains(&ticks.len()), "{lo}..{hi}: {ticks:?}");
            assert!(
                ticks
                    .iter()
                    .all(|t| t.1.len() <= 6 && t.0 >= lo && t.0 <= hi),
                "{ticks:?}"
            );
        }
    }

    #[test]
    fn log_ticks_are_powers_of_ten_and_at_least_two() {
        let (ticks, minor) = log_ticks(-3.1, 0.1, false);
        assert_eq!(labels(&ticks), ["1e-3", "0.01", "0.1", "1"]);
        // 8e-4 and 9e-4, then 2 to 9 times 1e-3, 0.01 and 0.1.
        assert_eq!(minor.len(), 2 + 3 * 8);
        let (ticks, _) = log_ticks(-1.2, 3.4, false);
        assert_eq!(labels(&ticks), ["0.1", "1", "10", "100", "1e3"]);
        let (ticks, minor) = log_ticks(-30.5, 0.5, false);
        assert_eq!(
            labels(&ticks),
            [
                "1e-28", "1e-24", "1e-20", "1e-16", "1e-12", "1e-8", "1e-4", "1"
            ]
        );
        assert!(minor.is_empty());
        // Less than a decade, or one decade: multiples fill in.
        let (ticks, _) = log_ticks(0.3f64.log10(), 4.0f64.log10(), false);
        assert_eq!(labels(&ticks), ["0.5", "1", "2"]);
        let (ticks, _) = log_ticks(1.5e-4f64.log10(), 1.2e-3f64.log10(), false);
        assert_eq!(labels(&ticks), ["2e-4", "5e-4", "1e-3"]);
        let (ticks, _) = log_ticks(1.2f64.log10(), 3.1f64.log10(), false);
        assert_eq!(labels(&ticks), ["1.5", "2.0", "2.5", "3.0"]);
        let (ticks, _) = log_ticks(0.3f64.log10(), 0.32f64.log10(), false);
        assert!(ticks.len() >= 2, "{ticks:?}");
        // Depths 2 to 32.
        let (ticks, _) = log_ticks(0.25, 1.56, true);
        assert_eq!(labels(&ticks), ["2", "5", "10", "20"]);
    }

    #[test]
    fn lines_are_clipped_to_the_panel_and_dashed() {
        let bounds = (0.0, 10.0, 0.0, 10.0);
        let pieces = clip(
            &[(-5.0, 5.0), (5.0, 5.0), (5.0, 15.0), (8.0, 5.0), (9.0, 5.0)],
            bounds,
        );
        assert_eq!(
            pieces,
            [
                vec![(0.0, 5.0), (5.0, 5.0), (5.0, 10.0)],
                vec![(6.5, 10.0), (8.0, 5.0), (9.0, 5.0)]
            ]
        );
        assert!(clip(&[(11.0, 0.0), (11.0, 9.0)], bounds).is_empty());
        let dashed = dashes(&[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)], &[4.0, 2.0]);
        let expected: Vec<Vec<(f64, f64)>> = vec![
            vec![(0.0, 0.0), (4.0, 0.0)],
            vec![(6.0, 0.0), (10.0, 0.0)],
            vec![(10.0, 2.0), (10.0, 6.0)],
            vec![(10.0, 8.0), (10.0, 10.0)],
        ];
        assert_eq!(dashed, expected);
        assert_eq!(
            dashes(&[(0.0, 0.0), (3.0, 4.0)], &[]),
            [vec![(0.0, 0.0), (3.0, 4.0)]]
        );
    }

    #[test]
    fn long_legend_labels_wrap_then_end_in_an_ellipsis() {
        assert_eq!(wrap("relu", 26, 2), ["relu"]);
        assert_eq!(
            wrap("relu, he init, 20 layers, lr 0.01", 26, 2),
            ["relu, he init, 20 layers,", "lr 0.01"]
        );
        let lines = wrap(
            "a label far too long for two lines of the legend column",
            26,
            2,
        );
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].ends_with('…') && lines.iter().all(|l| l.chars().count() <= 26),
            "{lines:?}"
        );
        assert_eq!(wrap("abcdefghij", 4, 2), ["abcd", "efg…"]);
        assert_eq!(wrap("", 4, 2), [""]);
    }

    #[test]
    fn series_differ_in_more_than_colour() {
        let looks: Vec<(Shape, &[f64], bool)> = (0..MAX_SERIES)
            .map(|i| (look(i).shape, look(i).dash, look(i).filled))
            .collect();
        for (i, a) in looks.iter().enumerate() {
            for b in &looks[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let colors: Vec<RGBColor> = (0..MAX_SERIES).map(|i| look(i).color).collect();
        for (i, a) in colors.iter().enumerate() {
            assert!(!colors[i + 1..].contains(a));
        }
    }

    #[test]
    fn a_heatmaps_axes_span_its_cells_edge_to_edge_unless_fixed() {
        let axis = |scale, range| Axis {
            label: "x".into(),
            scale,
            range,
            integer: false,
        };
        let linear = heat_axis(&axis(Scale::Linear, None), [2.0, 1.0, 3.0].into_iter());
        assert_eq!(linear.range, Some((0.5, 3.5)));
        let log = heat_axis(&axis(Scale::Log, None), [10.0, 100.0].into_iter());
        let (lo, hi) = log.range.unwrap();
        assert!((lo - 10f64.powf(0.5)).abs() < 1e-12 && (hi - 10f64.powf(2.5)).abs() < 1e-9);
        let fixed = heat_axis(
            &axis(Scale::Linear, Some((0.0, 9.0))),
            [1.0, 2.0].into_iter(),
        );
        assert_eq!(fixed.range, Some((0.0, 9.0)));
    }
}
