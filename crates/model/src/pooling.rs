//! Pooling, dense and normalization: the sentence-transformers modules after the transformer.

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::error::Result;
use crate::layout::{Activation, DenseLayout, PoolingConfig, PoolingMode};
use crate::ops::{Linear, Pass};

/// Pools packed token embeddings (`tokens × hidden`, sequences back to back) into one row per
/// sequence (`sequences × hidden·modes`). `skip` leading tokens of every sequence (the prompt, when
/// the pooling config excludes it) are left out of the mean, max and weighted-mean modes, as in
/// sentence-transformers.
///
/// The work is a fixed number of tensor operations per group of similar lengths, not per
/// sequence: token rows are gathered into a padded `sequences × longest × hidden` block (padding
/// slots read a zero row, or for max a real row of the same sequence) and reduced along it.
pub fn pool(
    hidden: &Tensor,
    seq_lens: &[usize],
    config: &PoolingConfig,
    skip: usize,
) -> Result<Tensor> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let (tokens, width) = hidden.dims2()?;
    let device = hidden.device();
    let index = |rows: Vec<u32>| -> Result<Tensor> {
        let n = rows.len();
        Ok(Tensor::from_vec(rows, n, device)?)
    };
    let starts = crate::kernels::seq_starts(seq_lens);
    let kept: Vec<usize> = seq_lens
        .iter()
        .map(|len| len.saturating_sub(skip))
        .collect();
    let reduces = config
        .modes
        .iter()
        .any(|m| !matches!(m, PoolingMode::Cls | PoolingMode::LastToken));
    // The hidden rows with one zero row after them (row `tokens`), read by padding slots.
    let padded_source = if reduces {
        Some(Tensor::cat(
            &[&hidden, &Tensor::zeros((1, width), DType::F32, device)?],
            0,
        )?)
    } else {
        None
    };
    let packing = Packing {
        seq_lens,
        starts: &starts,
        kept: &kept,
        tokens,
    };
    let mut parts = Vec::with_capacity(config.modes.len());
    for mode in &config.modes {
        let part = match mode {
            PoolingMode::Cls => {
                hidden.index_select(&index(starts.iter().map(|&s| s as u32).collect())?, 0)?
            }
            PoolingMode::LastToken => hidden.index_select(
                &index(
                    starts
                        .iter()
                        .zip(seq_lens)
                        .map(|(&s, &len)| (s + len - 1) as u32)
                        .collect(),
                )?,
                0,
            )?,
            mode => {
                let source = padded_source.as_ref().expect("made for reducing modes");
                reduce(source, *mode, &packing)?
            }
        };
        parts.push(part);
    }
    Ok(Tensor::cat(&parts, 1)?)
}

/// The sequences packed in a forward pass, as pooling reads them.
struct Packing<'a> {
    seq_lens: &'a [usize],
    /// Where each sequence starts in the packed rows.
    starts: &'a [usize],
    /// Tokens of each sequence that are pooled (its length less the skipped prompt).
    kept: &'a [usize],
    /// Packed rows in all; row `tokens` of the padded source is zeros.
    tokens: usize,
}

/// A reducing mode (mean, max, mean/√len, weighted mean) over each sequence's kept tokens, for
/// groups of similar lengths at once (padding adds at most a quarter): each group's rows are
/// gathered into `count × longest × width` from `source` (the hidden rows and a zero row) and
/// reduced over the middle dimension.
fn reduce(source: &Tensor, mode: PoolingMode, p: &Packing) -> Result<Tensor> {
    let width = source.dim(1)?;
    let device = source.device();
    let mut rows = Vec::with_capacity(p.seq_lens.len());
    for group in crate::ops::padded_groups(p.kept, 1, usize::MAX) {
        // An empty body still reads one (zero) slot.
        let (count, longest) = (group.count, group.longest.max(1));
        let mut slots = Vec::with_capacity(count * longest);
        let mut weights = Vec::with_capacity(count * longest);
        let mut divisors = Vec::with_capacity(count);
        for s in group.first..group.first + count {
            let (len, k) = (p.seq_lens[s], p.kept[s]);
            let body = p.starts[s] + len - k;
            for at in 0..longest {
                let slot = match (at < k, mode) {
                    (true, _) => body + at,
                    (false, PoolingMode::Max) if k > 0 => body + k - 1,
                    (false, _) => p.tokens,
                };
                slots.push(slot as u32);
                // Position weights 1..=len over the whole sequence, masked to the kept part.
                weights.push(if at < k {
                    (len - k + 1 + at) as f32
                } else {
                    0.0
                });
            }
            divisors.push(match mode {
                _ if k == 0 => 1.0,
                PoolingMode::Mean => k as f32,
                PoolingMode::MeanSqrtLen => (k as f32).sqrt(),
                PoolingMode::WeightedMean => ((len - k + 1)..=len).map(|w| w as f32).sum(),
                _ => 1.0,
            });
        }
        let slots = Tensor::from_vec(slots, count * longest, device)?;
        let block = source
            .index_select(&slots, 0)?
            .reshape((count, longest, width))?;
        let divisors = Tensor::from_vec(divisors, (count, 1), device)?;
        rows.push(match mode {
            PoolingMode::Max => block.max(1)?,
            PoolingMode::WeightedMean => block
                .broadcast_mul(&Tensor::from_vec(weights, (count, longest, 1), device)?)?
                .sum(1)?
                .broadcast_div(&divisors)?,
            _ => block.sum(1)?.broadcast_div(&divisors)?,
        });
    }
    Ok(Tensor::cat(&rows, 0)?)
}

/// A sentence-transformers `Dense` module: linear then activation.
#[derive(Debug)]
pub struct Dense {
    linear: Linear,
    activation: Activation,
}

impl Dense {
    pub fn load(layout: &DenseLayout, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear: Linear::load(
                vb.pp("linear"),
                layout.in_features,
                layout.out_features,
                layout.bias,
            )?,
            activation: layout.activation,
        })
    }

    pub fn forward(&self, pass: Pass, x: &Tensor) -> Result<Tensor> {
        let y = self.linear.forward(pass, x, None)?;
        Ok(match self.activation {
            Activation::Identity => y,
            Activation::Tanh => y.tanh()?,
            Activation::Relu => y.relu()?,
            Activation::Gelu => y.gelu_erf()?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(&y)?,
            Activation::Silu => y.silu()?,
        })
    }
}

/// Scales a vector to unit length (sentence-transformers' `Normalize`; a zero vector stays zero).
pub fn normalize_in_place(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}
