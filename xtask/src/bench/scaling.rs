//! How the step time grows with the work: the reference depth (6 dense layers) at widths
//! 10, 100 and 1000 and batches of 10 and 128, vgrad against PyTorch, each row also as
//! GFLOP/s against the machine's measured single-thread matrix-multiply peak.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use super::{Bench, Row, Target, median};

/// Widths of the table.
pub const WIDTHS: [usize; 3] = [10, 100, 1000];
/// Batch sizes of the table.
pub const BATCHES: [usize; 2] = [10, 128];
/// Dense layers, as the reference.
pub const LAYERS: usize = 6;

/// One row: a size and both step times.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Units per hidden layer.
    pub width: usize,
    /// Examples per batch.
    pub batch: usize,
    /// Floating-point operations of one training step.
    pub flops: f64,
    /// vgrad's median step time, microseconds.
    pub vgrad_us: f64,
    /// PyTorch's median step time, microseconds.
    pub torch_us: f64,
}

impl Point {
    /// GFLOP/s at `us` microseconds per step.
    pub fn gflops(&self, us: f64) -> f64 {
        self.flops / us / 1e3
    }
}

/// What sets the flop count of a step besides the sizes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extras {
    /// Floating-point operations of the optimizer per parameter (Adam about 10: two
    /// moment updates, bias corrections, a square root, a division; SGD 2).
    pub optimizer_per_param: f64,
    /// Batch or layer norm on every hidden layer.
    pub norm: bool,
    /// Skip connections on hidden layers 2..L-1.
    pub residual: bool,
}

/// Adam, as the reference.
pub const ADAM: Extras = Extras {
    optimizer_per_param: 10.0,
    norm: false,
    residual: false,
};

/// Floating-point operations of one training step of a `layers`-layer network of `width`
/// on `batch` examples: per dense layer of `i` inputs and `o` outputs, the forward product
/// (2 b i o) and bias (b o), the backward products for the weights (2 b i o) and, beyond
/// the first layer, for the inputs (2 b i o), the bias gradient (b o); per hidden unit
/// and example the activation and its derivative (3), a norm's forward and backward (about
/// 20), a skip's two additions; the softmax cross-entropy (5 per logit); the optimizer.
pub fn flops_per_step(width: usize, layers: usize, batch: usize, extras: Extras) -> f64 {
    let b = batch as f64;
    let mut sizes = vec![vgrad_record::INPUT];
    sizes.extend(std::iter::repeat_n(width, layers.saturating_sub(1)));
    sizes.push(vgrad_record::CLASSES);
    let mut flops = 0.0;
    let mut params = 0.0;
    for (l, pair) in sizes.windows(2).enumerate() {
        let (i, o) = (pair[0] as f64, pair[1] as f64);
        let products = if l == 0 { 2.0 } else { 3.0 };
        flops += products * 2.0 * b * i * o + 2.0 * b * o;
        params += i * o + o;
    }
    let hidden_units = b * (layers.saturating_sub(1) * width) as f64;
    flops += 3.0 * hidden_units;
    if extras.norm {
        flops += 20.0 * hidden_units;
        params += 2.0 * (layers.saturating_sub(1) * width) as f64;
    }
    if extras.residual {
        flops += 2.0 * b * (layers.saturating_sub(2) * width) as f64;
    }
    flops += 5.0 * b * vgrad_record::CLASSES as f64;
    flops + extras.optimizer_per_param * params
}

/// Steps for about a second of vgrad's time: the work at an assumed 30 GFLOP/s, but no
/// step under 80 microseconds (what overhead costs a tiny step), between
/// the reference's logging interval (200) and 2,500. Step 0 is always logged, so fewer
/// steps would log more often than the reference's one step in 200.
pub fn steps_for(flops: f64) -> usize {
    let seconds = (flops / 30e9).max(80e-6);
    ((1.0 / seconds) as usize).clamp(vgrad_record::REFERENCE.log_every, 2500)
}

/// Measures every size of the table, vgrad and PyTorch alternately.
pub fn measure(b: &Bench) -> Result<Vec<Point>> {
    let mut points = Vec::new();
    for width in WIDTHS {
        for batch in BATCHES {
            eprintln!("bench: scaling, width {width}, batch {batch}");
            let flops = flops_per_step(width, LAYERS, batch, ADAM);
            let steps = steps_for(flops).to_string();
            let (w, bs) = (width.to_string(), batch.to_string());
            let common = [
                "--width",
                w.as_str(),
                "--layers",
                "6",
                "--batch-size",
                bs.as_str(),
                "--steps",
                steps.as_str(),
            ];
            let ours = super::like_baseline(common);
            let theirs = super::baseline_single(common);
            let (vgrad_us, torch_us) =
                b.alternate(&|| b.vgrad(&ours, 1), &[&|| b.first(&theirs)])?;
            points.push(Point {
                width,
                batch,
                flops,
                vgrad_us,
                torch_us: torch_us[0],
            });
        }
    }
    Ok(points)
}

/// The size whose targets the benchmark's table carries: width 1000 at batch 128, where
/// the products rule the step.
pub const TARGET_SIZE: (usize, usize) = (1000, 128);

/// The table's rows for [`TARGET_SIZE`]: vgrad's step at most PyTorch's, and at least 75%
/// of `candle_peak` (candle's own measured GEMM rate, GFLOP/s). None if that size was not
/// measured.
pub fn target_rows(points: &[Point], candle_peak: f64) -> Vec<Row> {
    let Some(p) = points.iter().find(|p| (p.width, p.batch) == TARGET_SIZE) else {
        return Vec::new();
    };
    let what = format!("width {}, batch {}, {LAYERS} layers", p.width, p.batch);
    vec![
        Row {
            what: what.clone(),
            vgrad: p.vgrad_us,
            baseline: p.torch_us,
            baseline_name: "PyTorch, fused Adam".into(),
            unit: "us/step",
            target: Some(Target::AtMost(1.0)),
        },
        Row {
            what: format!("{what}: vgrad's rate against candle's GEMM peak"),
            vgrad: p.gflops(p.vgrad_us),
            baseline: candle_peak,
            baseline_name: "candle's f32 GEMM of 1024 x 1024, `vgrad peak`".into(),
            unit: "GFLOP/s",
            target: Some(Target::AtLeast(0.75)),
        },
    ]
}

/// The machine's single-thread f32 GEMM peak, GFLOP/s: the better of candle's kernels
/// (`vgrad peak`) and PyTorch's (`pytorch_baseline.py peak`), medians of the repetitions.
pub fn peak(b: &Bench) -> Result<(f64, f64)> {
    let json = |out: std::process::Output, what: &str| -> Result<f64> {
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with('{'))
            .with_context(|| format!("{what} printed no JSON: {text}"))?;
        let v: serde_json::Value = serde_json::from_str(line)?;
        v["gflops"]
            .as_f64()
            .with_context(|| format!("no gflops in {line}"))
    };
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..b.reps {
        let out = std::process::Command::new(&b.vgrad)
            .args(["peak", "--size", "1024"])
            .output()
            .context("running vgrad peak")?;
        ours.push(json(out, "vgrad peak")?);
        let script = crate::workspace_root()
            .join("bench")
            .join("pytorch_baseline.py");
        let out = std::process::Command::new(&b.python)
            .arg(script)
            .args(["peak", "--size", "1024"])
            .output()
            .context("running the baseline's peak")?;
        theirs.push(json(out, "pytorch_baseline.py peak")?);
    }
    Ok((median(&ours), median(&theirs)))
}

/// The markdown table of `points` against the GEMM `peak` (GFLOP/s).
pub fn render(points: &[Point], peak: f64) -> String {
    let mut out = String::from(
        "| width | batch | MFLOP/step | vgrad us/step | PyTorch us/step | vgrad / PyTorch | vgrad GFLOP/s | PyTorch GFLOP/s | vgrad % of peak | PyTorch % of peak |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for p in points {
        let (ours, theirs) = (p.gflops(p.vgrad_us), p.gflops(p.torch_us));
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.0}% | {:.0}% |\n",
            p.width,
            p.batch,
            p.flops / 1e6,
            p.vgrad_us,
            p.torch_us,
            p.vgrad_us / p.torch_us,
            ours,
            theirs,
            100.0 * ours / peak,
            100.0 * theirs / peak
        ));
    }
    out
}

/// Achieved GFLOP/s against the work per step, log-log, one line per tool and batch, with
/// the GEMM peak as a dashed line.
pub fn figure(points: &[Point], peak: f64, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    let fail = |e: String| anyhow::anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let x_max = points.iter().map(|p| p.flops).fold(1e6, f64::max) * 2.0;
    let x_min = points.iter().map(|p| p.flops).fold(f64::INFINITY, f64::min) / 2.0;
    let y_min = points
        .iter()
        .flat_map(|p| [p.gflops(p.vgrad_us), p.gflops(p.torch_us)])
        .fold(f64::INFINITY, f64::min)
        / 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Training step, 6 dense layers: achieved GFLOP/s (one thread)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (x_min..x_max).log_scale(),
            (y_min.max(1e-3)..peak * 1.5).log_scale(),
        )
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("floating-point operations per step")
        .y_desc("GFLOP/s")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    let lines = [("vgrad", true, BLUE), ("PyTorch", false, RED)];
    for (name, ours, color) in lines {
        for (k, batch) in BATCHES.iter().enumerate() {
            let series: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.batch == *batch)
                .map(|p| {
                    let us = if ours { p.vgrad_us } else { p.torch_us };
                    (p.flops, p.gflops(us))
                })
                .collect();
            let style = if k == 0 {
                color.stroke_width(2)
            } else {
                color.mix(0.5).stroke_width(2)
            };
            chart
                .draw_series(LineSeries::new(series.clone(), style))
                .map_err(|e| fail(e.to_string()))?
                .label(format!("{name}, batch {batch}"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
            chart
                .draw_series(series.iter().map(|&p| Circle::new(p, 3, style.filled())))
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    chart
        .draw_series(DashedLineSeries::new(
            [(x_min, peak), (x_max, peak)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(|e| fail(e.to_string()))?
        .label(format!("GEMM peak, {peak:.0} GFLOP/s"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flop_count_is_the_products_by_hand() {
        // One layer 784 -> 10, batch 1: forward 2*7840 + 2*10 (bias, as 2 b o), backward
        // for the weights only 2*7840, the loss 5*10, Adam 10 per parameter (7850).
        let f = flops_per_step(10, 1, 1, ADAM);
        assert_eq!(f, 2.0 * 2.0 * 7840.0 + 20.0 + 50.0 + 78_500.0);
        // Width 1000 at batch 128: the products dominate (Adam's 48 MFLOP and the
        // element-wise work are under 2%); 3 products of 2 flops per weight and example
        // beyond layer 1.
        let wide = flops_per_step(1000, 6, 128, ADAM);
        let products = 128.0 * 2.0 * (2.0 * 784e3 + 3.0 * 4e6 + 3.0 * 1e4);
        assert!((wide / products - 1.0).abs() < 0.02, "{wide} vs {products}");
    }

    #[test]
    fn steps_give_about_a_second_within_bounds() {
        assert_eq!(steps_for(1e3), 2500);
        assert_eq!(steps_for(3.0e9), 200);
        assert_eq!(steps_for(3.0e7), 1000);
    }
}
