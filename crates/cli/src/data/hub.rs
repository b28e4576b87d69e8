//! MNIST through `candle-datasets` and hf-hub: the local Hugging Face cache first, then
//! the hub (`ylecun/mnist`, parquet).

use anyhow::{Context, Result};
use candle_core::{DType, Tensor};

use super::{ImageSet, Mnist};

/// Images `[n, 784]` scaled to [0, 1] and labels `[n]` back to the byte form the rest of
/// the program uses (the scaling by 1/255 is exactly undone by rounding).
fn image_set(images: &Tensor, labels: &Tensor) -> Result<ImageSet> {
    let images: Vec<u8> = images
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    let labels = labels.to_dtype(DType::U8)?.to_vec1::<u8>()?;
    anyhow::ensure!(
        images.len() == labels.len() * 784,
        "the hub dataset holds {} pixels for {} labels, expected 784 per image",
        images.len(),
        labels.len()
    );
    Ok(ImageSet {
        images,
        labels,
        rows: 28,
        cols: 28,
    })
}

/// Loads MNIST with `candle_datasets::vision::mnist::load()`.
pub fn load() -> Result<Mnist> {
    let ds = candle_datasets::vision::mnist::load().context(
        "MNIST is neither in the Hugging Face cache nor reachable on the hub; without a \
         network use --data auto (the vendored copy) or --data PATH",
    )?;
    Ok(Mnist {
        train: image_set(&ds.train_images, &ds.train_labels)?,
        test: image_set(&ds.test_images, &ds.test_labels)?,
    })
}
