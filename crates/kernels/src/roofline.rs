//! The instruction-level peaks the kernels are measured against (`examples/roofline.rs`): how many
//! multiply-adds one core retires per second when it does nothing else, on the instructions the
//! AVX2 kernels use. Register-only loops of independent chains, so neither memory nor latency
//! limits them.

use std::time::Instant;

/// Independent accumulators per loop step: more than the multiply ports × their latency, so the
/// loop is bound by throughput.
const CHAINS: usize = 12;

/// Multiply-adds per second of one thread on AVX2's integer instructions.
#[derive(Debug, Clone, Copy)]
pub struct Int8Peaks {
    /// `vpmaddwd` alone (16 i16 products summed in pairs into i32).
    pub madd: f64,
    /// `vpmaddwd` with the `vpaddd` that accumulates it: the instruction mix of an i16-pair kernel.
    pub madd_add: f64,
    /// `vpmaddubsw` (32 u8 × i8 products into i16 pairs), `vpmaddwd` by ones and `vpaddd`: the
    /// mix of fathom's AVX2 int8 kernel.
    pub maddubs: f64,
}

/// The AVX2 integer peaks, each measured for about `seconds`; `None` where this CPU (or
/// `FATHOM_CPU`) has no AVX2.
pub fn int8_avx2(seconds: f64) -> Option<Int8Peaks> {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::enabled().avx2 {
        return Some(Int8Peaks {
            madd: rate(seconds, 16, |n| x86::madd(n, false)),
            madd_add: rate(seconds, 16, |n| x86::madd(n, true)),
            maddubs: rate(seconds, 32, x86::maddubs),
        });
    }
    let _ = seconds;
    None
}

/// Multiply-adds per second of one thread on 256-bit `vfmadd` (8 f32 products each); `None`
/// without AVX2 and FMA.
pub fn f32_fma(seconds: f64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::enabled().avx2 {
        return Some(rate(seconds, 8, x86::fma));
    }
    let _ = seconds;
    None
}

/// Runs `run(steps)` (each step `CHAINS` instructions of `per_instruction` multiply-adds) for
/// about `seconds`, and returns the multiply-adds per second.
fn rate(seconds: f64, per_instruction: usize, run: impl Fn(usize) -> i64) -> f64 {
    let mut steps = 1 << 16;
    loop {
        let t = Instant::now();
        std::hint::black_box(run(steps));
        let took = t.elapsed().as_secs_f64();
        if took >= seconds {
            return (steps * CHAINS * per_instruction) as f64 / took;
        }
        steps *= 2;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::CHAINS;

    pub(super) fn madd(steps: usize, add: bool) -> i64 {
        assert!(
            crate::cpu::detected().avx2,
            "AVX2 roofline on a CPU without AVX2"
        );
        // SAFETY: AVX2 is present (asserted above); registers only.
        unsafe { madd_avx2(steps, add) }
    }

    pub(super) fn fma(steps: usize) -> i64 {
        assert!(
            crate::cpu::detected().avx2,
            "FMA roofline on a CPU without AVX2 and FMA"
        );
        // SAFETY: AVX2 and FMA are present (`avx2` means both here); registers only.
        unsafe { fma_avx2(steps) }
    }

    /// # Safety
    /// AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn madd_avx2(steps: usize, add: bool) -> i64 {
        let b = _mm256_set1_epi16(5);
        let mut acc = [_mm256_set1_epi16(3); CHAINS];
        if add {
            // Each chain: a product of its own sum, added to it (4 cycles of latency, 12 chains).
            for _ in 0..steps {
                for acc in acc.iter_mut() {
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(*acc, b));
                }
            }
        } else {
            for _ in 0..steps {
                for acc in acc.iter_mut() {
                    *acc = _mm256_madd_epi16(*acc, b);
                }
            }
        }
        let sum = acc
            .iter()
            .fold(_mm256_setzero_si256(), |s, &v| _mm256_add_epi32(s, v));
        _mm256_extract_epi32::<0>(sum) as i64
    }

    pub(super) fn maddubs(steps: usize) -> i64 {
        assert!(
            crate::cpu::detected().avx2,
            "AVX2 roofline on a CPU without AVX2"
        );
        // SAFETY: AVX2 is present (asserted above); registers only.
        unsafe { maddubs_avx2(steps) }
    }

    /// # Safety
    /// AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn maddubs_avx2(steps: usize) -> i64 {
        let b = _mm256_set1_epi8(5);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_set1_epi16(3); CHAINS];
        for _ in 0..steps {
            for acc in acc.iter_mut() {
                let p = _mm256_maddubs_epi16(*acc, b);
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(p, ones));
            }
        }
        let sum = acc
            .iter()
            .fold(_mm256_setzero_si256(), |s, &v| _mm256_add_epi32(s, v));
        _mm256_extract_epi32::<0>(sum) as i64
    }

    /// # Safety
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fma_avx2(steps: usize) -> i64 {
        let a = _mm256_set1_ps(0.999);
        let b = _mm256_set1_ps(0.001);
        let mut acc = [_mm256_setzero_ps(); CHAINS];
        for _ in 0..steps {
            for acc in acc.iter_mut() {
                *acc = _mm256_fmadd_ps(*acc, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        _mm256_cvtss_f32(sum) as i64
    }
}
