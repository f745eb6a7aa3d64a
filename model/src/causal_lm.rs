//! Instruct LLMs on a CPU from GGUF files (candle-transformers' quantized
//! Llama, which covers SmolLM2, and quantized Qwen2): the weights, the
//! tokenizer from the file's own metadata (or a `tokenizer.json` beside it),
//! the end tokens, and one forward step over new tokens with the KV cache.
//! A Llama model can be cloned after a prompt prefix, so the shared
//! system-and-tools prefix is computed once.

use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

use crate::bpe::{Bpe, BpeError};

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// The file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The model file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The architecture is not one this module runs.
    #[error("unsupported architecture `{0}` (llama and qwen2 GGUF files are)")]
    Architecture(String),
    /// The tokenizer could not be built.
    #[error(transparent)]
    Tokenizer(#[from] BpeError),
    /// A tensor operation failed.
    #[error("model forward failed: {0}")]
    Forward(#[from] candle_core::Error),
}

/// The weights of one architecture (held once per model, so the size
/// difference between variants does not matter).
#[allow(clippy::large_enum_variant)]
enum Weights {
    /// Llama-family GGUF (SmolLM2, Llama, Mistral, ...); cloneable.
    Llama(quantized_llama::ModelWeights),
    /// Qwen2 / Qwen2.5 GGUF; not cloneable, so no prefix reuse.
    Qwen2(quantized_qwen2::ModelWeights),
}

/// A causal language model with its tokenizer and KV cache.
pub struct CausalLm {
    weights: Weights,
    tokenizer: Arc<Bpe>,
    end_tokens: Arc<Vec<u32>>,
    architecture: String,
    position: usize,
}

impl CausalLm {
    /// Loads a GGUF model; the tokenizer comes from its metadata, or from a
    /// `tokenizer.json` in the same folder when the metadata has none.
    pub fn from_gguf(path: &Path) -> Result<Self, LmError> {
        let read_error = |message: String| LmError::Read {
            path: path.display().to_string(),
            message,
        };
        let mut file = std::fs::File::open(path).map_err(|e| read_error(e.to_string()))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| read_error(e.to_string()))?;
        let architecture = metadata_string(&content, "general.architecture").unwrap_or_default();
        let tokenizer = match tokenizer_from_metadata(&content) {
            Some(tokenizer) => tokenizer?,
            None => {
                let json = path.with_file_name("tokenizer.json");
                let text = std::fs::read_to_string(&json).map_err(|e| {
                    read_error(format!(
                        "no tokenizer in the GGUF metadata and {}: {e}",
                        json.display()
                    ))
                })?;
                Bpe::from_tokenizer_json(&text)?
            }
        };
        let mut end_tokens: Vec<u32> = ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"]
            .iter()
            .filter_map(|t| tokenizer.token_id(t))
            .collect();
        if let Some(eos) = content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
        {
            end_tokens.push(eos);
        }
        let device = Device::Cpu;
        let weights = match architecture.as_str() {
            "llama" => Weights::Llama(quantized_llama::ModelWeights::from_gguf(
                content, &mut file, &device,
            )?),
            "qwen2" => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
                content, &mut file, &device,
            )?),
            other => return Err(LmError::Architecture(other.to_string())),
        };
        end_tokens.sort_unstable();
        end_tokens.dedup();
        Ok(Self {
            weights,
            tokenizer: Arc::new(tokenizer),
            end_tokens: Arc::new(end_tokens),
            architecture,
            position: 0,
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Arc<Bpe> {
        &self.tokenizer
    }

    /// Tokens that end an answer.
    pub fn end_tokens(&self) -> &[u32] {
        &self.end_tokens
    }

    /// `llama` or `qwen2`.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// Tokens seen so far (the KV cache's length).
    pub fn position(&self) -> usize {
        self.position
    }

    /// A copy that continues from the same cache, for Llama-family weights
    /// (cheap: weights and cached keys and values are shared, not copied).
    pub fn fork(&self) -> Option<Self> {
        match &self.weights {
            Weights::Llama(weights) => Some(Self {
                weights: Weights::Llama(weights.clone()),
                tokenizer: Arc::clone(&self.tokenizer),
                end_tokens: Arc::clone(&self.end_tokens),
                architecture: self.architecture.clone(),
                position: self.position,
            }),
            Weights::Qwen2(_) => None,
        }
    }

    /// Empties the KV cache.
    pub fn reset(&mut self) {
        match &mut self.weights {
            Weights::Llama(weights) => weights.clear_kv_cache(),
            Weights::Qwen2(weights) => weights.clear_kv_cache(),
        }
        self.position = 0;
    }

    /// Feeds `tokens` after those seen so far; returns the next-token logits.
    pub fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>, LmError> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match &mut self.weights {
            Weights::Llama(weights) => weights.forward(&input, self.position)?,
            Weights::Qwen2(weights) => weights.forward(&input, self.position)?,
        };
        self.position += tokens.len();
        Ok(logits
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?)
    }
}

fn metadata_string(content: &gguf_file::Content, key: &str) -> Option<String> {
    content.metadata.get(key)?.to_string().ok().cloned()
}

fn metadata_strings(content: &gguf_file::Content, key: &str) -> Option<Vec<String>> {
    content
        .metadata
        .get(key)?
        .to_vec()
        .ok()?
        .iter()
        .map(|v| v.to_string().ok().cloned())
        .collect()
}

/// The `tokenizer.ggml.*` tokenizer, when the metadata carries one.
fn tokenizer_from_metadata(content: &gguf_file::Content) -> Option<Result<Bpe, BpeError>> {
    let tokens = metadata_strings(content, "tokenizer.ggml.tokens")?;
    let model = metadata_string(content, "tokenizer.ggml.model").unwrap_or_default();
    let pre = metadata_string(content, "tokenizer.ggml.pre").unwrap_or_default();
    let merges = metadata_strings(content, "tokenizer.ggml.merges").unwrap_or_default();
    let types: Vec<i32> = content
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|values| values.iter().map(|v| v.to_i32().unwrap_or(1)).collect())
        .unwrap_or_default();
    Some(Bpe::from_gguf_metadata(
        &model, &pre, tokens, &merges, &types,
    ))
}
