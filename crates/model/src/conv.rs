//! 3x3 convolutions as im2col plus a matrix product, in candle's plain ops: the patches
//! are copies of shifted views, so their backward pass is copies too, and the product's
//! backward is two products. candle's own CPU `conv2d` backward runs a direct loop
//! (`conv_transpose2d` and a convolution over the batch), which the products replace.
//!
//! Maps are stored channels-last, one row per (example, position): `[K, B * side^2, C]`,
//! the form a dense layer's `[K, B, units]` takes with positions as extra rows, so that
//! the layers, norms, activations and probe of the MLP serve unchanged (batch norm over
//! the rows is per-channel batch norm over the batch and the positions).

use candle_core::{Result, Tensor};

/// The 3x3 patches of `h` (maps of `side` x `side` and `channels` channels, `[K, B *
/// side^2, channels]` or any shape of the same row-major layout, such as `[K, B,
/// side^2]` images), zero-padded by 1, at every `stride`-th position: `[K, B * out^2, 9 *
/// channels]` with `out = side / stride`, each row ordered by (dy, dx, channel).
pub fn patches(h: &Tensor, side: usize, channels: usize, stride: usize) -> Result<Tensor> {
    let (k, per_member) = (h.dim(0)?, h.elem_count() / h.dim(0)?.max(1));
    let batch = per_member / (side * side * channels);
    let maps = h
        .reshape((k, batch, side, side, channels))?
        .pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?;
    let shifted = (0..3)
        .flat_map(|dy| (0..3).map(move |dx| (dy, dx)))
        .map(|(dy, dx)| {
            let view = maps.narrow(2, dy, side)?.narrow(3, dx, side)?;
            every_other(&view, stride)
        })
        .collect::<Result<Vec<_>>>()?;
    let out = side / stride;
    Tensor::cat(&shifted, 4)?.reshape((k, batch * out * out, 9 * channels))
}

/// Every `stride`-th position (from the first) of `[K, B, side, side, C]` maps, `stride`
/// 1 or 2 (`side` even for 2).
fn every_other(maps: &Tensor, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(maps.clone());
    }
    let (k, b, side, _, c) = maps.dims5()?;
    let half = side / stride;
    maps.reshape(vec![k, b, half, stride, half, stride, c])?
        .narrow(3, 0, 1)?
        .narrow(5, 0, 1)?
        .reshape((k, b, half, half, c))
}

/// The identity shortcut of a layer that changes the maps' shape: every `stride`-th
/// position of `h` (`side` x `side` maps, `[K, B * side^2, channels]`), its channels
/// padded with zeros to `out_channels` (He et al. 2016's option A: no parameters).
pub fn shortcut(
    h: &Tensor,
    side: usize,
    channels: usize,
    stride: usize,
    out_channels: usize,
) -> Result<Tensor> {
    let (k, rows, _) = h.dims3()?;
    let batch = rows / (side * side);
    let picked = every_other(&h.reshape((k, batch, side, side, channels))?, stride)?;
    let out = side / stride;
    picked
        .reshape((k, batch * out * out, channels))?
        .pad_with_zeros(2, 0, out_channels - channels)
}

/// The average of `h` (`[K, B * side^2, C]`) over each example's positions: `[K, B, C]`.
pub fn global_pool(h: &Tensor, side: usize) -> Result<Tensor> {
    let (k, rows, c) = h.dims3()?;
    h.reshape((k, rows / (side * side), side * side, c))?
        .mean(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, DType, Device, Var};

    /// Deterministic values in [-1, 1) without a generator.
    fn values(n: usize, salt: f64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64 * 0.7548776662 + salt).fract() * 2.0) - 1.0)
            .collect()
    }

    /// candle's `conv2d` (NCHW, kernel `[out, in, 3, 3]`, padding 1) against patches times
    /// the same kernel as a `[9 in, out]` matrix, in f64; with the gradients of both
    /// with respect to the input and the kernel, for one weighting of the outputs.
    fn check(side: usize, c_in: usize, c_out: usize, stride: usize) {
        let dev = Device::Cpu;
        let b = 3;
        let x = Var::from_vec(
            values(b * c_in * side * side, 0.1),
            (b, c_in, side, side),
            &dev,
        )
        .unwrap();
        let kernel =
            Var::from_vec(values(c_out * c_in * 9, 0.3), (c_out, c_in, 3, 3), &dev).unwrap();
        let out = side / stride;
        let weigh = Tensor::from_vec(
            values(b * c_out * out * out, 0.5),
            (b, c_out, out, out),
            &dev,
        )
        .unwrap();

        let reference = x
            .as_tensor()
            .conv2d(kernel.as_tensor(), 1, stride, 1, 1)
            .unwrap();
        assert_eq!(reference.dims4().unwrap(), (b, c_out, out, out));
        let grads = (&reference * &weigh)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();

        // The same input channels-last, the same kernel as a matrix ordered (dy, dx, c).
        let x_last = x
            .as_tensor()
            .permute((0, 2, 3, 1))
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let matrix = kernel
            .as_tensor()
            .permute((2, 3, 1, 0))
            .unwrap()
            .reshape((1, 9 * c_in, c_out))
            .unwrap();
        let ours = patches(&x_last, side, c_in, stride)
            .unwrap()
            .matmul(&matrix)
            .unwrap()
            .reshape((b, out, out, c_out))
            .unwrap()
            .permute((0, 3, 1, 2))
            .unwrap();
        let ours_grads = (&ours * &weigh)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();

        let close = |a: &Tensor, b: &Tensor, what: &str| {
            let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            let diff = diff.to_scalar::<f64>().unwrap();
            assert!(
                diff < 1e-12,
                "{what}: {diff} (side {side}, stride {stride})"
            );
        };
        close(&ours, &reference, "output");
        for (var, what) in [(&x, "input gradient"), (&kernel, "kernel gradient")] {
            close(
                ours_grads.get(var.as_tensor()).unwrap(),
                grads.get(var.as_tensor()).unwrap(),
                what,
            );
        }
    }

    #[test]
    fn patches_times_the_kernel_is_candles_conv2d_with_its_gradients() {
        check(6, 2, 3, 1);
        check(6, 2, 3, 2);
        check(28, 1, 4, 2);
        check(14, 3, 5, 2);
    }

    #[test]
    fn the_shortcut_picks_every_other_position_and_pads_channels() {
        let dev = Device::Cpu;
        // One member, one example, 4x4 maps of 2 channels: value = 10 * position + channel.
        let h: Vec<f32> = (0..16)
            .flat_map(|p| [10.0 * p as f32, 10.0 * p as f32 + 1.0])
            .collect();
        let h = Tensor::from_vec(h, (1, 16, 2), &dev).unwrap();
        let s = shortcut(&h, 4, 2, 2, 3).unwrap();
        assert_eq!(s.dims3().unwrap(), (1, 4, 3));
        let rows = s.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        // Positions (0,0), (0,2), (2,0), (2,2) are 0, 2, 8, 10.
        assert_eq!(
            rows,
            vec![
                vec![0.0, 1.0, 0.0],
                vec![20.0, 21.0, 0.0],
                vec![80.0, 81.0, 0.0],
                vec![100.0, 101.0, 0.0]
            ]
        );
    }

    #[test]
    fn global_pool_averages_each_examples_positions() {
        let dev = Device::Cpu;
        let h = Tensor::arange(0f32, 16.0, &dev)
            .unwrap()
            .reshape((1, 8, 2))
            .unwrap();
        // Two examples of 2x2 maps: rows 0-3 and 4-7.
        let pooled = global_pool(&h, 2).unwrap();
        let expected = h
            .reshape((1, 2, 4, 2))
            .unwrap()
            .sum(D::Minus2)
            .unwrap()
            .affine(0.25, 0.0)
            .unwrap();
        assert_eq!(
            pooled
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec3::<f64>()
                .unwrap(),
            expected
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec3::<f64>()
                .unwrap()
        );
    }
}
