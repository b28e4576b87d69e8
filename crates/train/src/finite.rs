//! Which ensemble members' gradients hold a NaN or an infinity: the trainer freezes those
//! members (their run has diverged) and hands the mask to the optimizer's step, so that
//! one member's NaN reaches no other member's numbers.

use candle_core::{DType, Result, Storage, Tensor, Var};
use vgrad_kernels::cpu::all_finite;

/// The members whose gradient of any of `params` holds a NaN or an infinity somewhere;
/// `grads` holds one gradient per parameter, in order. `known_finite` tells, per
/// parameter, the members whose gradient is known to be finite already (`None`: none
/// is); those are not read.
pub fn nonfinite_members(
    params: &[Var],
    grads: &[&Tensor],
    members: usize,
    known_finite: impl Fn(&Tensor) -> Result<Option<Vec<bool>>>,
) -> Result<Vec<bool>> {
    if params.len() != grads.len() {
        candle_core::bail!("{} gradients for {} parameters", grads.len(), params.len());
    }
    let mut bad = vec![false; members];
    for (param, grad) in params.iter().zip(grads) {
        let known = known_finite(param.as_tensor())?;
        let nonfinite = nonfinite_per_member(grad, members, known.as_deref())?;
        for (b, nonfinite) in bad.iter_mut().zip(nonfinite) {
            *b |= nonfinite;
        }
    }
    Ok(bad)
}

/// For each of the `members` slices of `t` (along its first axis), whether it holds a NaN
/// or an infinity; a member `known_finite` marks is taken to hold none and not read. On
/// the CPU the values are scanned in place; elsewhere `t - t`, which is NaN exactly where
/// `t` is not finite, is summed per member.
pub fn nonfinite_per_member(
    t: &Tensor,
    members: usize,
    known_finite: Option<&[bool]>,
) -> Result<Vec<bool>> {
    let known = |m: usize| known_finite.is_some_and(|k| k.get(m) == Some(&true));
    if (0..members).all(known) {
        return Ok(vec![false; members]);
    }
    if t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous() {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            let values = &cpu.as_slice::<f32>()?[start..end];
            let per = values.len() / members.max(1);
            return Ok(values
                .chunks(per.max(1))
                .take(members)
                .enumerate()
                .map(|(m, c)| !known(m) && !all_finite(c))
                .collect());
        }
    }
    // `t - t` on purpose: 0 where t is finite, NaN where it is NaN or infinite.
    #[allow(clippy::eq_op)]
    let zeros_or_nan = (t - t)?;
    let sums = zeros_or_nan
        .flatten_from(1)?
        .sum(1)?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?;
    Ok(sums
        .iter()
        .enumerate()
        .map(|(m, v)| !known(m) && !v.is_finite())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn finds_members_with_nan_or_infinite_values() -> Result<()> {
        let t = Tensor::new(
            &[[1.0f32, 2.0], [f32::NAN, 0.0], [3.0, f32::INFINITY]],
            &Device::Cpu,
        )?;
        assert_eq!(nonfinite_per_member(&t, 3, None)?, vec![false, true, true]);
        // Members known to be finite are not read (here, a false claim shows it); the
        // others still are.
        let known = [false, true, false];
        assert_eq!(
            nonfinite_per_member(&t, 3, Some(&known))?,
            vec![false, false, true]
        );
        assert_eq!(
            nonfinite_per_member(&t, 3, Some(&[true; 3]))?,
            vec![false; 3]
        );
        // The tensor-ops path (taken off the CPU), here through f64.
        let t64 = t.to_dtype(DType::F64)?;
        assert_eq!(
            nonfinite_per_member(&t64, 3, None)?,
            vec![false, true, true]
        );
        assert_eq!(
            nonfinite_per_member(&t64, 3, Some(&known))?,
            vec![false, false, true]
        );
        Ok(())
    }

    #[test]
    fn a_member_is_nonfinite_where_any_parameter_is() -> Result<()> {
        let dev = Device::Cpu;
        let w = Var::new(&[[1.0f32], [2.0], [3.0]], &dev)?;
        let b = Var::new(&[0.0f32, 0.0, 0.0], &dev)?;
        let gw = Tensor::new(&[[1.0f32], [f32::NAN], [1.0]], &dev)?;
        let gb = Tensor::new(&[f32::INFINITY, 0.0, 0.0], &dev)?;
        let bad = nonfinite_members(&[w.clone(), b.clone()], &[&gw, &gb], 3, |_| Ok(None))?;
        assert_eq!(bad, [true, true, false]);
        // What the layers know to be finite is not read.
        let bad = nonfinite_members(&[w, b], &[&gw, &gb], 3, |_| Ok(Some(vec![true; 3])))?;
        assert_eq!(bad, [false; 3]);
        Ok(())
    }
}
