//! Adam's update on AVX-512, without the cost of subnormal first moments.
//!
//! A weight whose gradient stays exactly 0 (one reading a pixel that is blank in every
//! image since) keeps a first moment that decays by beta1 every step, through the
//! subnormal range to 0. Intel cores run every vector instruction that reads or produces a
//! subnormal through a microcode assist, and on the reference network those weights made
//! Adam a sixth of an ensemble's step. vgrad does not flush subnormals to zero (the
//! numbers would change), so this kernel keeps them away from the floating-point units
//! while computing the same bits:
//!
//! - a lane with a zero gradient and a first moment below 2^-100 is *quiet*; the ordinary
//!   computation runs with its moment replaced by 0, so it sees no subnormal;
//! - its new moment, beta1 * m + (1 - beta1) * 0, is computed exactly: a moment below
//!   2^-125 is an integer multiple of 2^-149 (its bits, without the sign, are that
//!   integer), whose product with beta1 is exact in f64 and rounds to that grid as an
//!   integer, ties to even; larger ones go through the f32 product, which stays normal;
//! - its parameter keeps its value, as it does in IEEE arithmetic: a lane is quiet only
//!   where the update's bound, step_size * 2^-100 / epsilon, is below a quarter of the
//!   parameter's unit in the last place, so `p - update` rounds back to `p`.
//!
//! Every other lane, and every lane off AVX-512, runs the portable loop's operations in
//! its order. Tested bit for bit against the portable loop.

// Off x86-64 only the portable loop runs.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::cpu::INFINITY_BITS;

/// Adam's per-step scalars, computed in f64 once per step as PyTorch does, then rounded
/// to f32 for the update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamScalars {
    /// The first moment's decay.
    pub beta1: f32,
    /// The second moment's decay.
    pub beta2: f32,
    /// The learning rate over the first moment's bias correction.
    pub step_size: f32,
    /// The square root of the second moment's bias correction.
    pub bias_correction2_sqrt: f32,
    /// Added to the denominator.
    pub epsilon: f32,
}

impl AdamScalars {
    /// The scalars of step `t` (from 1) for learning rate `lr`, decays `beta1` and
    /// `beta2`, and `epsilon`.
    pub fn new(lr: f64, beta1: f64, beta2: f64, epsilon: f64, t: i32) -> Self {
        let bc1 = 1.0 - beta1.powi(t);
        let bc2 = 1.0 - beta2.powi(t);
        Self {
            beta1: beta1 as f32,
            beta2: beta2 as f32,
            step_size: (lr / bc1) as f32,
            bias_correction2_sqrt: bc2.sqrt() as f32,
            epsilon: epsilon as f32,
        }
    }
}

/// One member's Adam update, the reference every kernel matches bit for bit: `params` and
/// `grads` side by side, `moments` interleaved as `[m, v]` per parameter, each value's
/// IEEE operations in this order (Rust never fuses a multiply and an add on its own).
#[inline(always)]
pub fn adam_loop(s: AdamScalars, params: &mut [f32], grads: &[f32], moments: &mut [f32]) {
    for ((p, &g), mv) in params
        .iter_mut()
        .zip(grads)
        .zip(moments.chunks_exact_mut(2))
    {
        let m = s.beta1 * mv[0] + (1.0 - s.beta1) * g;
        let v = s.beta2 * mv[1] + (1.0 - s.beta2) * g * g;
        mv[0] = m;
        mv[1] = v;
        *p -= s.step_size * m / (v.sqrt() / s.bias_correction2_sqrt + s.epsilon);
    }
}

/// Moments below this (bits without the sign: 2^-100) may be quiet.
const QUIET_MOMENT_BITS: u32 = (127 - 100) << 23;

/// Moments below this (bits: 2^-125, exponent field at most 1) are integer multiples of
/// 2^-149, as are beta1 times them.
const GRID_MOMENT_BITS: u32 = 1 << 24;

/// The smallest parameter magnitude whose quiet update provably rounds away (see the
/// module's doc), or `None` where the scalars give no such bound.
fn smallest_quiet_param(s: &AdamScalars) -> Option<f32> {
    let (step, eps) = (f64::from(s.step_size), f64::from(s.epsilon));
    let bc2 = f64::from(s.bias_correction2_sqrt);
    let usable = step.is_finite()
        && step >= 0.0
        && eps > 0.0
        && bc2 > 0.0
        && bc2.is_finite()
        && (0.0..1.0).contains(&s.beta1);
    if !usable {
        return None;
    }
    // |update| = |step * m'| / denom with |m'| < 2^-100 and denom >= epsilon; each
    // rounding adds at most 2^-24 relative, or 2^-150 absolute below 2^-126.
    let tiny = 2f64.powi(-149);
    let bound = ((step * 2f64.powi(-100) + tiny) / eps + tiny) * (1.0 + 2f64.powi(-20));
    // Parameters at or above 2^e have ulp 2^(e-23): ulp / 4 > bound once 2^(e-25) > bound.
    let exponent = bound.log2().floor() as i32 + 26;
    (exponent < 127).then(|| 2f32.powi(exponent.max(-126)))
}

/// One member's Adam update (`moments` interleaved as `[m, v]`), the same bits as
/// [`adam_loop`], with quiet lanes kept from the floating-point units on AVX-512.
pub fn adam_member(s: AdamScalars, params: &mut [f32], grads: &[f32], moments: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let whole = params.len().min(grads.len()).min(moments.len() / 2) / 16 * 16;
        if let Some(smallest) = smallest_quiet_param(&s) {
            // SAFETY: the CPU has AVX-512F, checked above; the slices hold `whole`
            // parameters and gradients and `2 * whole` moments.
            unsafe {
                adam_avx512(
                    s,
                    smallest,
                    &mut params[..whole],
                    &grads[..whole],
                    &mut moments[..2 * whole],
                )
            };
        } else {
            adam_wide(
                s,
                &mut params[..whole],
                &grads[..whole],
                &mut moments[..2 * whole],
            );
        }
        adam_loop(
            s,
            &mut params[whole..],
            &grads[whole..],
            &mut moments[2 * whole..],
        );
        return;
    }
    adam_loop(s, params, grads, moments);
}

crate::with_cpu_feature! {
    /// [`adam_loop`] compiled for AVX-512, for steps whose scalars allow no quiet lanes.
    fn adam_wide(s: AdamScalars, params: &mut [f32], grads: &[f32], moments: &mut [f32]) = adam_loop if "avx512f";
}

/// Sixteen parameters at a time; `params.len()` must be a multiple of 16.
///
/// # Safety
///
/// The CPU must have AVX-512F, `grads` must be as long as `params` and `moments` twice as
/// long, and `params.len()` a multiple of 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn adam_avx512(
    s: AdamScalars,
    smallest_param: f32,
    params: &mut [f32],
    grads: &[f32],
    moments: &mut [f32],
) {
    let beta1 = _mm512_set1_ps(s.beta1);
    let beta2 = _mm512_set1_ps(s.beta2);
    let one_minus_beta1 = _mm512_set1_ps(1.0 - s.beta1);
    let one_minus_beta2 = _mm512_set1_ps(1.0 - s.beta2);
    let step_size = _mm512_set1_ps(s.step_size);
    let bc2 = _mm512_set1_ps(s.bias_correction2_sqrt);
    let eps = _mm512_set1_ps(s.epsilon);
    let magnitude = _mm512_set1_epi32(0x7fff_ffff);
    let sign = _mm512_set1_epi32(i32::MIN);
    let quiet_moment = _mm512_set1_epi32(QUIET_MOMENT_BITS as i32);
    let grid_moment = _mm512_set1_epi32(GRID_MOMENT_BITS as i32);
    let smallest = _mm512_set1_epi32(smallest_param.to_bits() as i32);
    let infinity = _mm512_set1_epi32(INFINITY_BITS as i32);
    let beta1_f64 = _mm512_set1_pd(f64::from(s.beta1));
    // Even and odd elements of two vectors of [m, v] pairs, and back.
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let low_pairs = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high_pairs =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for i in (0..params.len()).step_by(16) {
        // Bounds, for every access below: i + 16 <= params.len() == grads.len(), and
        // 2 * i + 32 <= moments.len() (the caller's promise).
        // SAFETY: i < params.len(), so the pointer stays inside `params`.
        let p_ptr = unsafe { params.as_mut_ptr().add(i) };
        // SAFETY: 2 * i < moments.len(), so the pointer stays inside `moments`.
        let mv_ptr = unsafe { moments.as_mut_ptr().add(2 * i) };
        // SAFETY: 16 floats from p_ptr lie inside `params`; AVX-512F is the caller's promise.
        let p = unsafe { _mm512_loadu_ps(p_ptr) };
        // SAFETY: 16 floats from grads[i] lie inside `grads` (as long as `params`).
        let g = unsafe { _mm512_loadu_ps(grads.as_ptr().add(i)) };
        // SAFETY: 16 floats from moments[2 i] lie inside `moments`.
        let mv_low = unsafe { _mm512_loadu_ps(mv_ptr) };
        // SAFETY: 16 floats from moments[2 i + 16] lie inside `moments` (2 i + 32 <= len).
        let mv_high = unsafe { _mm512_loadu_ps(mv_ptr.add(16)) };
        let m = _mm512_permutex2var_ps(mv_low, evens, mv_high);
        let v = _mm512_permutex2var_ps(mv_low, odds, mv_high);

        let m_bits = _mm512_and_si512(_mm512_castps_si512(m), magnitude);
        // v >= +0 and not NaN (unsigned bits at most an infinity's), so denom >= epsilon.
        let v_ordered = _mm512_cmple_epu32_mask(_mm512_castps_si512(v), infinity);
        let g_bits = _mm512_and_si512(_mm512_castps_si512(g), magnitude);
        let p_bits = _mm512_and_si512(_mm512_castps_si512(p), magnitude);
        let quiet = _mm512_cmpeq_epi32_mask(g_bits, _mm512_setzero_si512())
            & _mm512_cmpgt_epi32_mask(m_bits, _mm512_setzero_si512())
            & _mm512_cmplt_epi32_mask(m_bits, quiet_moment)
            & _mm512_cmpge_epi32_mask(p_bits, smallest)
            & _mm512_cmplt_epi32_mask(p_bits, infinity)
            & v_ordered;
        let m_loud = _mm512_mask_mov_ps(m, quiet, _mm512_setzero_ps());

        // The portable loop's operations, in its order.
        let mut m_new = _mm512_add_ps(
            _mm512_mul_ps(beta1, m_loud),
            _mm512_mul_ps(one_minus_beta1, g),
        );
        let v_new = _mm512_add_ps(
            _mm512_mul_ps(beta2, v),
            _mm512_mul_ps(_mm512_mul_ps(one_minus_beta2, g), g),
        );
        let denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(v_new), bc2), eps);
        let update = _mm512_div_ps(_mm512_mul_ps(step_size, m_new), denom);
        let p_new = _mm512_sub_ps(p, update);

        if quiet != 0 {
            m_new = _mm512_mask_mov_ps(
                m_new,
                quiet,
                quiet_moments(
                    quiet,
                    m,
                    m_bits,
                    g,
                    beta1,
                    one_minus_beta1,
                    beta1_f64,
                    grid_moment,
                    sign,
                ),
            );
        }

        let mv_low_new = _mm512_permutex2var_ps(m_new, low_pairs, v_new);
        let mv_high_new = _mm512_permutex2var_ps(m_new, high_pairs, v_new);
        // SAFETY: the same 16 parameters and 32 moments the loads above read, inside
        // `params` and `moments`, which this function borrows mutably.
        unsafe {
            _mm512_storeu_ps(p_ptr, p_new);
            _mm512_storeu_ps(mv_ptr, mv_low_new);
            _mm512_storeu_ps(mv_ptr.add(16), mv_high_new);
        }
    }
}

/// beta1 * m + (1 - beta1) * g of the `quiet` lanes (where g is ±0), computed without a
/// subnormal operand or result; other lanes are 0.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn quiet_moments(
    quiet: __mmask16,
    m: __m512,
    m_bits: __m512i,
    g: __m512,
    beta1: __m512,
    one_minus_beta1: __m512,
    beta1_f64: __m512d,
    grid_moment: __m512i,
    sign: __m512i,
) -> __m512 {
    let on_grid = quiet & _mm512_cmplt_epi32_mask(m_bits, grid_moment);
    // Normal moments of at least 2^-125: the f32 operations, whose results stay normal
    // (beta1 * m >= 2^-126 for beta1 >= 1/2; below, they are still exact, only slower).
    let large = _mm512_maskz_mov_ps(quiet & !on_grid, m);
    let from_large = _mm512_add_ps(
        _mm512_mul_ps(beta1, large),
        _mm512_mul_ps(one_minus_beta1, g),
    );
    // On the grid: n * 2^-149 with n < 2^24, so beta1 * n is exact in f64; rounding it to
    // an integer, ties to even, is rounding the product to f32.
    let n = _mm512_maskz_mov_epi32(on_grid, m_bits);
    let low = round_product(_mm512_castsi512_si256(n), beta1_f64);
    let high = round_product(_mm512_extracti64x4_epi64::<1>(n), beta1_f64);
    let rounded = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high);
    // With m's sign; a product that rounds to 0 plus (1 - beta1) * g is -0 only where
    // both are -0.
    let m_sign = _mm512_and_si512(_mm512_castps_si512(m), sign);
    let g_sign = _mm512_and_si512(_mm512_castps_si512(g), sign);
    let is_zero = _mm512_cmpeq_epi32_mask(rounded, _mm512_setzero_si512());
    let signed = _mm512_mask_mov_epi32(
        _mm512_or_si512(rounded, m_sign),
        is_zero,
        _mm512_and_si512(m_sign, g_sign),
    );
    _mm512_mask_mov_ps(from_large, on_grid, _mm512_castsi512_ps(signed))
}

/// `n * beta1` rounded to an integer, ties to even, for 8 integers below 2^24 (the
/// product is exact in f64).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn round_product(n: __m256i, beta1: __m512d) -> __m256i {
    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let product = _mm512_mul_pd(_mm512_cvtepi32_pd(n), beta1);
    _mm512_cvtpd_epi32(_mm512_roundscale_pd::<NEAREST>(product))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam's hyper-parameters, as the optimizer holds them.
    struct AdamParams {
        lr: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
    }

    fn scalars(p: &AdamParams, t: i32) -> AdamScalars {
        AdamScalars::new(p.lr, p.beta1, p.beta2, p.epsilon, t)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Runs both kernels `steps` times on the same state and compares every value after
    /// every step.
    fn assert_same_as_portable(
        p: &AdamParams,
        params: Vec<f32>,
        grads: &[f32],
        moments: Vec<f32>,
        steps: i32,
    ) {
        let (mut p1, mut m1) = (params.clone(), moments.clone());
        let (mut p2, mut m2) = (params, moments);
        for t in 1..=steps {
            let s = scalars(p, t);
            adam_member(s, &mut p1, grads, &mut m1);
            adam_loop(s, &mut p2, grads, &mut m2);
            assert_eq!(bits(&p1), bits(&p2), "parameters after step {t}");
            assert_eq!(bits(&m1), bits(&m2), "moments after step {t}");
        }
    }

    /// A fixed LCG over many magnitudes.
    fn values(seed: u32, n: usize, lowest_exponent: i32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let mantissa = f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5;
                let exponent = lowest_exponent + (state % 13) as i32 * (-lowest_exponent) / 12;
                (mantissa * 2f64.powi(exponent)) as f32
            })
            .collect()
    }

    #[test]
    fn decaying_moments_give_the_portable_bits_through_the_subnormal_range() {
        // Moments from 2^-95 down: 1,200 steps of beta1 take them through every subnormal
        // and to 0. Gradients: mostly exact zeros of both signs, some tiny, some normal.
        let n = 16 * 40 + 7;
        let mut moments = Vec::with_capacity(2 * n);
        for (i, m) in values(3, n, -95).into_iter().enumerate() {
            let m = if i % 11 == 0 {
                f32::from_bits(i as u32 * 7919)
            } else {
                m
            };
            let v = if i % 13 == 0 {
                0.0
            } else {
                m.abs().sqrt() + 1e-12
            };
            moments.extend([if i % 17 == 0 { -m } else { m }, v]);
        }
        let grads: Vec<f32> = (0..n)
            .map(|i| match i % 9 {
                0 => -0.0,
                1 => 1e-39,
                2 => 0.25,
                _ => 0.0,
            })
            .collect();
        // Parameters from ordinary weights down to below the quiet bound, and a few
        // specials.
        let mut params = values(5, n, -60);
        params[3] = 0.0;
        params[20] = -0.0;
        params[40] = f32::INFINITY;
        params[41] = f32::from_bits(1);
        for beta1 in [0.9, 0.5, 0.99, 0.3] {
            for (lr, epsilon) in [(1e-3, 1e-8), (0.5, 1e-8), (1e-3, 1e-30)] {
                let p = AdamParams {
                    lr,
                    beta1,
                    beta2: 0.999,
                    epsilon,
                };
                assert_same_as_portable(&p, params.clone(), &grads, moments.clone(), 1200);
            }
        }
    }

    #[test]
    fn ties_round_to_even_on_the_subnormal_grid() {
        // beta1 = 0.5 halves n * 2^-149: odd n are ties, which go to the even neighbour.
        let n = 64;
        let moments: Vec<f32> = (0..n)
            .flat_map(|i| [f32::from_bits(i as u32 * 3 + 1), 1e-6])
            .collect();
        let p = AdamParams {
            lr: 1e-3,
            beta1: 0.5,
            beta2: 0.999,
            epsilon: 1e-8,
        };
        assert_same_as_portable(&p, vec![0.5; n], &vec![0.0; n], moments, 30);
    }

    #[test]
    fn no_quiet_lanes_where_the_scalars_bound_nothing() {
        let scalars = |epsilon: f64, lr: f64| AdamScalars::new(lr, 0.9, 0.999, epsilon, 1);
        assert_eq!(smallest_quiet_param(&scalars(0.0, 1e-3)), None);
        assert_eq!(smallest_quiet_param(&scalars(1e-8, f64::INFINITY)), None);
        // Adam's defaults at the first step: step size 1e-2, bound 1e-2 * 2^-100 / 1e-8.
        let smallest = smallest_quiet_param(&scalars(1e-8, 1e-3)).expect("a bound");
        let bound = 1e-2 * 2f64.powi(-100) / 1e-8;
        let ulp = f64::from(smallest) * 2f64.powi(-23);
        assert!(ulp / 4.0 > bound && ulp / 4.0 < 8.0 * bound, "{smallest}");
    }

    #[test]
    fn adam_gives_the_same_bits_at_every_vector_width() {
        let s = AdamScalars::new(1e-3, 0.9, 0.999, 1e-8, 3);
        // Values over many magnitudes, from a fixed LCG, and a length off every width.
        let mut state = 7u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5) as f32
                * 10f32.powi((state % 9) as i32 - 6)
        };
        let n = 1003;
        let grads: Vec<f32> = (0..n).map(|_| next()).collect();
        let params: Vec<f32> = (0..n).map(|_| next()).collect();
        let moments: Vec<f32> = (0..2 * n).map(|_| next().abs()).collect();
        let (mut p1, mut m1) = (params.clone(), moments.clone());
        let (mut p2, mut m2) = (params, moments);
        adam_member(s, &mut p1, &grads, &mut m1);
        adam_loop(s, &mut p2, &grads, &mut m2);
        assert_eq!(bits(&p1), bits(&p2));
        assert_eq!(bits(&m1), bits(&m2));
    }
}
