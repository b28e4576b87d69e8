//! MNIST through `candle-datasets` and hf-hub: the local Hugging Face cache first, then
//! the hub (`ylecun/mnist`, parquet).

use candle_core::{DType, Tensor};

use super::{DataError, ImageSet, Mnist};

fn hub_error(e: candle_core::Error) -> DataError {
    DataError::Hub(e.to_string())
}

/// Images `[n, 784]` scaled to [0, 1] and labels `[n]` back to the byte form the rest of
/// the program uses (the scaling by 1/255 is exactly undone by rounding).
fn image_set(images: &Tensor, labels: &Tensor) -> Result<ImageSet, DataError> {
    let images: Vec<u8> = images
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(hub_error)?
        .into_iter()
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    let labels = labels
        .to_dtype(DType::U8)
        .and_then(|t| t.to_vec1::<u8>())
        .map_err(hub_error)?;
    if images.len() != labels.len() * 784 {
        return Err(DataError::Invalid(format!(
            "--data hf: the hub dataset holds {} pixels for {} labels, expected 784 per image",
            images.len(),
            labels.len()
        )));
    }
    Ok(ImageSet {
        images,
        labels,
        rows: 28,
        cols: 28,
    })
}

/// Loads MNIST with `candle_datasets::vision::mnist::load()`.
pub fn load() -> Result<Mnist, DataError> {
    let ds = candle_datasets::vision::mnist::load().map_err(hub_error)?;
    Ok(Mnist {
        train: image_set(&ds.train_images, &ds.train_labels)?,
        test: image_set(&ds.test_images, &ds.test_labels)?,
    })
}
