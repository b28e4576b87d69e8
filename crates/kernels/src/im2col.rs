//! A 3x3 convolution's patches (im2col) of channels-last maps as one op, and its
//! backward pass (col2im) as another.
//!
//! Built of candle's ops (`vgrad_model::conv::patches`: two pads, nine narrowed views and
//! a concatenation along the channels), the patches of maps with few channels cost
//! candle's strided copy one call per run of `channels` values, forward and backward:
//! 68% of a 16-layer network's step of 8 channels (`perf record`, 2026-12-06). Here each
//! patch row is written in one pass, and the backward pass adds each row back in one.
//!
//! The forward pass copies values, so it gives candle's bits. The backward pass sums at
//! most nine values per input entry, in the order candle's backward pass accumulates the
//! nine views' gradients (tested bit for bit against the candle-op path).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};

use crate::cpu::contiguous;

/// The shape of the maps a convolution reads and how it steps over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Side of the square input maps.
    pub side: usize,
    /// Channels of the input maps.
    pub channels: usize,
    /// 1, or 2 (with an even side) to keep every other position.
    pub stride: usize,
}

impl Geometry {
    /// Side of the output maps.
    pub fn out_side(&self) -> usize {
        self.side / self.stride
    }

    /// Values of one patch row: 9 offsets of every channel.
    fn row(&self) -> usize {
        9 * self.channels
    }

    /// Values of one example's maps.
    fn example(&self) -> usize {
        self.side * self.side * self.channels
    }
}

/// Whether [`patches`] computes for `h` on this device and type: contiguous f32 or f64 on
/// the CPU.
pub fn supported(h: &Tensor) -> bool {
    h.device().is_cpu()
        && h.is_contiguous()
        && matches!(h.dtype(), candle_core::DType::F32 | candle_core::DType::F64)
}

/// The patches of `h` (`[K, ...]` holding `K x B` examples' maps of `geometry`,
/// channels-last and contiguous), zero-padded by 1: `[K, B * out^2, 9 * channels]`, each
/// row ordered by (dy, dx, channel), as `vgrad_model::conv::patches` computes them.
pub fn patches(h: &Tensor, geometry: Geometry) -> Result<Tensor> {
    let k = h.dim(0)?;
    let per_member = h.elem_count() / k.max(1);
    if geometry.stride == 0
        || !geometry.side.is_multiple_of(geometry.stride)
        || !per_member.is_multiple_of(geometry.example().max(1))
    {
        bail!(
            "im2col: {:?} does not hold whole maps of {geometry:?}",
            h.shape()
        );
    }
    let batch = per_member / geometry.example();
    let out = geometry.out_side();
    h.apply_op1(Patches {
        geometry,
        examples: k * batch,
        shape: Shape::from((k, batch * out * out, geometry.row())),
    })
}

/// The forward op: maps to patch rows.
struct Patches {
    geometry: Geometry,
    /// K x B.
    examples: usize,
    /// `[K, B * out^2, 9 * channels]`.
    shape: Shape,
}

/// The backward op: patch rows' gradients added back onto the maps.
struct Unpatch {
    geometry: Geometry,
    examples: usize,
    /// The maps' shape, as the forward op's input had it.
    shape: Shape,
}

/// The input position read by output position `o` at offset `d` (0..3) of the padded
/// maps, or `None` where it falls on the padding.
fn source(o: usize, d: usize, stride: usize, side: usize) -> Option<usize> {
    (o * stride + d).checked_sub(1).filter(|&i| i < side)
}

fn im2col<T: Copy + Default>(maps: &[T], g: Geometry, examples: usize) -> Vec<T> {
    let (side, c, out) = (g.side, g.channels, g.out_side());
    let mut rows = vec![T::default(); examples * out * out * g.row()];
    for (example, dst) in maps
        .chunks_exact(g.example().max(1))
        .zip(rows.chunks_exact_mut((out * out * g.row()).max(1)))
        .take(examples)
    {
        for (p, row) in dst.chunks_exact_mut(g.row()).enumerate() {
            let (oy, ox) = (p / out, p % out);
            for (d, cell) in row.chunks_exact_mut(c).enumerate() {
                let (dy, dx) = (d / 3, d % 3);
                if let (Some(y), Some(x)) = (
                    source(oy, dy, g.stride, side),
                    source(ox, dx, g.stride, side),
                ) {
                    let at = (y * side + x) * c;
                    cell.copy_from_slice(&example[at..at + c]);
                }
            }
        }
    }
    rows
}

/// The sum, per map entry, of the patch-row gradients that read it: offsets visited in
/// the order candle's backward pass adds the nine views' gradients (last view first).
fn col2im<T: Copy + Default + std::ops::Add<Output = T>>(
    rows: &[T],
    g: Geometry,
    examples: usize,
) -> Vec<T> {
    let (side, c, out) = (g.side, g.channels, g.out_side());
    let mut maps = vec![T::default(); examples * g.example()];
    for (src, example) in rows
        .chunks_exact((out * out * g.row()).max(1))
        .zip(maps.chunks_exact_mut(g.example().max(1)))
    {
        for d in (0..9).rev() {
            let (dy, dx) = (d / 3, d % 3);
            for (p, row) in src.chunks_exact(g.row()).enumerate() {
                let (oy, ox) = (p / out, p % out);
                if let (Some(y), Some(x)) = (
                    source(oy, dy, g.stride, side),
                    source(ox, dx, g.stride, side),
                ) {
                    let at = (y * side + x) * c;
                    for (m, &v) in example[at..at + c].iter_mut().zip(&row[d * c..(d + 1) * c]) {
                        *m = *m + v;
                    }
                }
            }
        }
    }
    maps
}

impl CustomOp1 for Patches {
    fn name(&self) -> &'static str {
        "vgrad-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, n) = (self.geometry, self.examples);
        let rows = match storage {
            CpuStorage::F32(h) => {
                CpuStorage::F32(im2col(contiguous(h, layout, self.name())?, g, n))
            }
            CpuStorage::F64(h) => {
                CpuStorage::F64(im2col(contiguous(h, layout, self.name())?, g, n))
            }
            _ => bail!("{}: expects f32 or f64", self.name()),
        };
        Ok((rows, self.shape.clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let unpatch = Unpatch {
            geometry: self.geometry,
            examples: self.examples,
            shape: arg.shape().clone(),
        };
        Ok(Some(grad_res.contiguous()?.apply_op1(unpatch)?))
    }
}

impl CustomOp1 for Unpatch {
    fn name(&self) -> &'static str {
        "vgrad-col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, n) = (self.geometry, self.examples);
        let maps = match storage {
            CpuStorage::F32(r) => {
                CpuStorage::F32(col2im(contiguous(r, layout, self.name())?, g, n))
            }
            CpuStorage::F64(r) => {
                CpuStorage::F64(col2im(contiguous(r, layout, self.name())?, g, n))
            }
            _ => bail!("{}: expects f32 or f64", self.name()),
        };
        Ok((maps, self.shape.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Patches built of candle's ops, as the model crate builds them (the reference).
    fn reference(h: &Tensor, g: Geometry) -> Result<Tensor> {
        let k = h.dim(0)?;
        let batch = h.elem_count() / k / (g.side * g.side * g.channels);
        let maps = h
            .reshape((k, batch, g.side, g.side, g.channels))?
            .pad_with_zeros(2, 1, 1)?
            .pad_with_zeros(3, 1, 1)?;
        let half = g.out_side();
        let mut views = Vec::new();
        for dy in 0..3 {
            for dx in 0..3 {
                let v = maps.narrow(2, dy, g.side)?.narrow(3, dx, g.side)?;
                let v = if g.stride == 1 {
                    v
                } else {
                    v.reshape(vec![k, batch, half, 2, half, 2, g.channels])?
                        .narrow(3, 0, 1)?
                        .narrow(5, 0, 1)?
                        .reshape((k, batch, half, half, g.channels))?
                };
                views.push(v);
            }
        }
        Tensor::cat(&views, 4)?.reshape((k, batch * half * half, 9 * g.channels))
    }

    fn bits(t: &Tensor) -> Result<Vec<u32>> {
        Ok(t.flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(f32::to_bits)
            .collect())
    }

    #[test]
    fn gives_candles_patches_and_gradients_bit_for_bit() -> Result<()> {
        let dev = Device::Cpu;
        for g in [
            Geometry {
                side: 6,
                channels: 3,
                stride: 1,
            },
            Geometry {
                side: 6,
                channels: 3,
                stride: 2,
            },
            Geometry {
                side: 28,
                channels: 1,
                stride: 2,
            },
            Geometry {
                side: 7,
                channels: 4,
                stride: 1,
            },
        ] {
            let (k, b) = (2, 3);
            let n = k * b * g.side * g.side * g.channels;
            let h = Var::from_tensor(
                &Tensor::arange(0f32, n as f32, &dev)?
                    .affine(0.37, 0.0)?
                    .sin()?
                    .reshape((k, b * g.side * g.side, g.channels))?,
            )?;
            let ours = patches(&h, g)?;
            let theirs = reference(&h, g)?;
            assert_eq!(ours.dims(), theirs.dims());
            assert_eq!(bits(&ours)?, bits(&theirs)?, "{g:?}");
            let weights = Tensor::arange(0f32, ours.elem_count() as f32, &dev)?
                .affine(0.11, 0.0)?
                .cos()?
                .reshape(ours.shape())?;
            let g_ours = (ours * &weights)?.sum_all()?.backward()?;
            let g_theirs = (theirs * &weights)?.sum_all()?.backward()?;
            let (a, b) = (g_ours.get(&h), g_theirs.get(&h));
            let (Some(a), Some(b)) = (a, b) else {
                bail!("no gradient")
            };
            assert_eq!(a.dims(), b.dims());
            assert_eq!(bits(a)?, bits(b)?, "gradient {g:?}");
        }
        Ok(())
    }

    #[test]
    fn refuses_tensors_that_hold_no_whole_maps() {
        let h = Tensor::zeros((1, 10), candle_core::DType::F32, &Device::Cpu).unwrap();
        let g = Geometry {
            side: 3,
            channels: 1,
            stride: 1,
        };
        let err = patches(&h, g).unwrap_err().to_string();
        assert!(err.contains("does not hold whole maps"), "{err}");
    }
}
