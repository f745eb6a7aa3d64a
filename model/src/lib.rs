//! The router models, written once for training and inference: tokenizers and
//! features, the compact network (its candle forward for training and its fused,
//! allocation-free forward for serving, checked against each other), the BERT
//! encoder of the `minilm` backbone (one layer type for inference and
//! fine-tuning, candle-transformers' `bert.rs` style: `Config` deserialised,
//! weights by name through `VarBuilder` prefixes, dropout as an option), and the
//! fused ops with their backward passes.
//!
//! The generative side: the Qwen2.5 / Hermes tool template (`chat`), shared by
//! the trainer's `qwen` export and the generative router.
//!
//! `toolforge-routers` decodes these models' outputs into routing decisions and
//! loads model directories; `toolforge-trainer` trains them.

pub mod bert;
pub mod bpe;
pub mod causal_lm;
pub mod chat;
pub mod constrain;
pub mod features;
pub mod fused;
pub mod infer;
pub mod lora;
pub mod network;
pub mod stored;
pub mod wordpiece;

/// Largest absolute difference between two f32 tensors of one shape: how far
/// a rewritten or quantized computation lands from its reference.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let a = Tensor::new(&[1.0f32, 2.0, 3.0], &Device::Cpu)?;
/// let b = Tensor::new(&[1.0f32, 2.5, 2.0], &Device::Cpu)?;
/// assert_eq!(toolforge_model::max_abs_diff(&a, &b)?, 1.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> candle_core::Result<f32> {
    (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
}
