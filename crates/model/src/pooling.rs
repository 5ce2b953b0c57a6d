//! Pooling, dense and normalization: the sentence-transformers modules after the transformer.

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::error::Result;
use crate::layout::{Activation, DenseLayout, PoolingConfig, PoolingMode};
use crate::ops::Linear;

/// Pools packed token embeddings (`tokens × hidden`, sequences back to back) into one row per
/// sequence (`sequences × hidden·modes`). `skip` leading tokens of every sequence (the prompt, when
/// the pooling config excludes it) are left out of the mean, max and weighted-mean modes, as in
/// sentence-transformers.
pub fn pool(
    hidden: &Tensor,
    seq_lens: &[usize],
    config: &PoolingConfig,
    skip: usize,
) -> Result<Tensor> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let width = hidden.dim(1)?;
    let device = hidden.device();
    let mut rows = Vec::with_capacity(seq_lens.len());
    let mut start = 0;
    for &len in seq_lens {
        let seq = hidden.narrow(0, start, len)?;
        let kept = len.saturating_sub(skip);
        let body = (kept > 0)
            .then(|| seq.narrow(0, len - kept, kept))
            .transpose()?;
        let mut parts = Vec::with_capacity(config.modes.len());
        for mode in &config.modes {
            let part = match (mode, &body) {
                (PoolingMode::Cls, _) => seq.get(0)?,
                (PoolingMode::LastToken, _) => seq.get(len - 1)?,
                (_, None) => Tensor::zeros(width, DType::F32, device)?,
                (PoolingMode::Mean, Some(b)) => b.mean(0)?,
                (PoolingMode::Max, Some(b)) => b.max(0)?,
                (PoolingMode::MeanSqrtLen, Some(b)) => (b.sum(0)? / (kept as f64).sqrt())?,
                (PoolingMode::WeightedMean, Some(b)) => {
                    // Position weights 1..=len over the whole sequence, masked to the kept part.
                    let weights: Vec<f32> = ((len - kept + 1)..=len).map(|w| w as f32).collect();
                    let total: f32 = weights.iter().sum();
                    let w = Tensor::from_vec(weights, (kept, 1), device)?;
                    (b.broadcast_mul(&w)?.sum(0)? / total as f64)?
                }
            };
            parts.push(part);
        }
        rows.push(Tensor::cat(&parts, 0)?);
        start += len;
    }
    Ok(Tensor::stack(&rows, 0)?)
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

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.linear.forward(x, None)?;
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
