//! candle's MNIST training example, its convolutional network, with vgrad-watch added.
//!
//! `ConvNet` and `training_loop_cnn` are those of candle's
//! `candle-examples/examples/mnist-training/main.rs` (github.com/huggingface/candle, commit
//! 2a13b0f3, MIT or Apache-2.0 like this workspace), changed only where marked:
//! `// vgrad-watch` marks the four lines the watch added to the training loop (the watch is
//! created after the model, which fills the VarMap), `// tap` the optional taps in the
//! model, and `// example:` what this example needs to run offline and briefly (vgrad's
//! vendored MNIST instead of the hub, a step limit, `--every`, a seeded shuffle, step times
//! for `cargo xtask bench`).
//!
//! ```sh
//! cargo run --release -p vgrad-example-mnist-conv -- --epochs 1
//! tensorboard --logdir runs/mnist-conv
//! ```

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use rand::prelude::*;

use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::{Conv2d, Linear, ModuleT, Optimizer, VarBuilder, VarMap, loss, ops};
use vgrad_watch::{Taps, Watch}; // vgrad-watch

const LABELS: usize = 10;

#[derive(Debug)]
struct ConvNet {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    dropout: candle_nn::Dropout,
    taps: Taps, // tap: the back-propagated error at each layer's output
}

impl ConvNet {
    fn new(vs: VarBuilder) -> Result<Self> {
        let conv1 = candle_nn::conv2d(1, 32, 5, Default::default(), vs.pp("c1"))?;
        let conv2 = candle_nn::conv2d(32, 64, 5, Default::default(), vs.pp("c2"))?;
        let fc1 = candle_nn::linear(1024, 1024, vs.pp("fc1"))?;
        let fc2 = candle_nn::linear(1024, LABELS, vs.pp("fc2"))?;
        let dropout = candle_nn::Dropout::new(0.5);
        Ok(Self {
            conv1,
            conv2,
            fc1,
            fc2,
            dropout,
            taps: Taps::new(), // tap
        })
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let (b_sz, _img_dim) = xs.dims2()?;
        let xs = xs
            .reshape((b_sz, 1, 28, 28))?
            .apply(&self.conv1)?
            .apply(&self.taps.at("c1"))? // tap
            .max_pool2d(2)?
            .apply(&self.conv2)?
            .apply(&self.taps.at("c2"))? // tap
            .max_pool2d(2)?
            .flatten_from(1)?
            .apply(&self.fc1)?
            .apply(&self.taps.at("fc1"))? // tap
            .relu()?;
        self.dropout.forward_t(&xs, train)?.apply(&self.fc2)
    }
}

/// The fields of candle-datasets' `vision::Dataset` that the training loop reads.
struct Dataset {
    train_images: Tensor,
    train_labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
}

struct TrainingArgs {
    learning_rate: f64,
    epochs: usize,
    // example: what the loop needs beyond candle's arguments.
    steps: Option<usize>,
    seed: u64,
    out: PathBuf,
    every: u64,
}

/// What the example prints last, as one JSON line, for `cargo xtask bench`.
struct Timing {
    steps: usize,
    step_s: Vec<f64>,
    logged: Vec<bool>,
}

fn training_loop_cnn(m: Dataset, args: &TrainingArgs) -> anyhow::Result<Timing> {
    const BSIZE: usize = 64;

    let dev = Device::cuda_if_available(0)?;

    let train_labels = m.train_labels;
    let train_images = m.train_images.to_device(&dev)?;
    let train_labels = train_labels.to_dtype(DType::U32)?.to_device(&dev)?;

    let varmap = VarMap::new();
    let vs = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let model = ConvNet::new(vs.clone())?;

    let adamw_params = candle_nn::ParamsAdamW {
        lr: args.learning_rate,
        ..Default::default()
    };
    let mut opt = candle_nn::AdamW::new(varmap.all_vars(), adamw_params)?;
    let mut watch = Watch::new(&args.out, &varmap)?.with_taps(&model.taps); // vgrad-watch
    watch = watch.every(args.every); // example: --every, for the test and the bench
    let test_images = m.test_images.to_device(&dev)?;
    let test_labels = m.test_labels.to_dtype(DType::U32)?.to_device(&dev)?;
    let n_batches = train_images.dim(0)? / BSIZE;
    let mut batch_idxs = (0..n_batches).collect::<Vec<usize>>();
    // example: a seeded shuffle (candle's uses the thread's generator) and step times.
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut timing = Timing {
        steps: 0,
        step_s: Vec::new(),
        logged: Vec::new(),
    };
    'epochs: for epoch in 1..=args.epochs {
        let mut sum_loss = 0f32;
        batch_idxs.shuffle(&mut rng);
        for batch_idx in batch_idxs.iter() {
            if args.steps.is_some_and(|s| timing.steps >= s) {
                println!("stopped after {} steps (--steps)", timing.steps);
                break 'epochs;
            }
            let (started, logged) = (Instant::now(), watch.is_logged());
            let train_images = train_images.narrow(0, batch_idx * BSIZE, BSIZE)?;
            let train_labels = train_labels.narrow(0, batch_idx * BSIZE, BSIZE)?;
            let logits = model.forward(&train_images, true)?;
            let log_sm = ops::log_softmax(&logits, D::Minus1)?;
            let loss = loss::nll(&log_sm, &train_labels)?;
            watch.backward_step(&mut opt, &loss)?; // vgrad-watch, was: opt.backward_step(&loss)?;
            sum_loss += loss.to_vec0::<f32>()?;
            timing.step_s.push(started.elapsed().as_secs_f64());
            timing.logged.push(logged);
            timing.steps += 1;
        }
        let avg_loss = sum_loss / n_batches as f32;

        let test_logits = model.forward(&test_images, false)?;
        let sum_ok = test_logits
            .argmax(D::Minus1)?
            .eq(&test_labels)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
        let test_accuracy = sum_ok / test_labels.dims1()? as f32;
        println!(
            "{epoch:4} train loss {:8.5} test acc: {:5.2}%",
            avg_loss,
            100. * test_accuracy
        );
    }
    watch.finish()?; // vgrad-watch
    Ok(timing)
}

#[derive(Parser)]
#[command(about = "candle's MNIST ConvNet with vgrad-watch, on vgrad's offline MNIST")]
struct Args {
    #[arg(long)]
    learning_rate: Option<f64>,

    #[arg(long, default_value_t = 1)]
    epochs: usize,

    /// Stop after this many training steps (batches of 64), wherever in an epoch.
    #[arg(long)]
    steps: Option<usize>,

    /// The folder of the four MNIST files (default: the checkout's data/mnist).
    #[arg(long)]
    data: Option<PathBuf>,

    /// Where runs go: each run writes to the first free `run-<n>` folder in it.
    #[arg(long, default_value = "runs/mnist-conv")]
    out: PathBuf,

    /// The watch logs every this many steps, and step 0; 0 turns it off.
    #[arg(long, default_value_t = vgrad_watch::DEFAULT_EVERY)]
    every: u64,

    /// Seed of the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The first `run-<n>` under `out` that does not exist, so that runs stay apart and
/// TensorBoard's run selector lists each.
fn fresh_run_dir(out: &Path) -> PathBuf {
    (1u64..)
        .map(|n| out.join(format!("run-{n}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| out.join("run"))
}

/// MNIST as candle's example holds it: images `[n, 784]` f32 in [0, 1], labels u8.
fn load_mnist(dir: Option<&Path>) -> anyhow::Result<Dataset> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => vgrad_train::data::source::vendored_dirs()
            .into_iter()
            .find(|d| d.is_dir())
            .context("no data/mnist in this checkout; pass --data with the four MNIST files")?,
    };
    let mnist = vgrad_train::data::mnist::load_dir(&dir, false)?;
    let tensors = |set: &vgrad_train::data::ImageSet| -> Result<(Tensor, Tensor)> {
        let n = set.len();
        let images = Tensor::from_slice(&set.images, (n, set.pixels()), &Device::Cpu)?
            .to_dtype(DType::F32)?
            .affine(1.0 / 255.0, 0.0)?;
        let labels = Tensor::from_slice(&set.labels, n, &Device::Cpu)?;
        Ok((images, labels))
    };
    let (train_images, train_labels) = tensors(&mnist.train)?;
    let (test_images, test_labels) = tensors(&mnist.test)?;
    Ok(Dataset {
        train_images,
        train_labels,
        test_images,
        test_labels,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let m = load_mnist(args.data.as_deref())?;
    println!("train-images: {:?}", m.train_images.shape());
    println!("test-images: {:?}", m.test_images.shape());
    let out = fresh_run_dir(&args.out);
    let training_args = TrainingArgs {
        epochs: args.epochs,
        learning_rate: args.learning_rate.unwrap_or(0.001),
        steps: args.steps,
        seed: args.seed,
        out: out.clone(),
        every: args.every,
    };
    let timing = training_loop_cnn(m, &training_args)?;
    println!(
        "watched: {}\nsee it with: tensorboard --logdir {}",
        out.display(),
        args.out.display()
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let pick = |logged: bool| -> Vec<f64> {
        timing
            .step_s
            .iter()
            .zip(&timing.logged)
            .filter(|&(_, &l)| l == logged)
            .map(|(&s, _)| s)
            .collect()
    };
    // One JSON line, last, for `cargo xtask bench`: the training loop's time (the
    // evaluation excluded) and its steps' medians, logged and not.
    println!(
        "{}",
        serde_json::json!({
            "steps": timing.steps,
            "every": args.every,
            "train_s": timing.step_s.iter().sum::<f64>(),
            "step_s_median": median(pick(false)),
            "logged_step_s_median": median(pick(true)),
        })
    );
    Ok(())
}
