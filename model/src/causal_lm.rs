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
        if !matches!(architecture.as_str(), "llama" | "qwen2") {
            return Err(LmError::Architecture(architecture));
        }
        let weights = match requantized(&content, &mut file)? {
            Some(bytes) => {
                let mut reader = std::io::Cursor::new(bytes);
                let content = gguf_file::Content::read(&mut reader)?;
                load_weights(&architecture, content, &mut reader)?
            }
            None => load_weights(&architecture, content, &mut file)?,
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

fn load_weights<R: std::io::Read + std::io::Seek>(
    architecture: &str,
    content: gguf_file::Content,
    reader: &mut R,
) -> Result<Weights, LmError> {
    let device = Device::Cpu;
    Ok(match architecture {
        "qwen2" => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
            content, reader, &device,
        )?),
        _ => Weights::Llama(quantized_llama::ModelWeights::from_gguf(
            content, reader, &device,
        )?),
    })
}

/// Block formats candle multiplies without SIMD on x86 (Q4_1, Q5_0, Q5_1)
/// are slow: such a file is rewritten in memory with those tensors as Q8_0
/// (nearly lossless from 4 or 5 bits, and SIMD-fast). `None` when none is.
fn requantized(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
) -> Result<Option<Vec<u8>>, LmError> {
    use candle_core::quantized::{GgmlDType, QTensor};
    let slow =
        |dtype: GgmlDType| matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1);
    if !content
        .tensor_infos
        .values()
        .any(|info| slow(info.ggml_dtype))
    {
        return Ok(None);
    }
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content.tensor(file, name, &Device::Cpu)?;
        let fits_q8 = tensor.shape().dims().last().is_some_and(|d| d % 32 == 0);
        let tensor = if slow(tensor.dtype()) && fits_q8 {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.clone(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensor_refs)?;
    Ok(Some(out.into_inner()))
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

/// Tiny random-weight models for tests: a Llama-architecture GGUF with a
/// byte-level tokenizer in its metadata, written by the tests themselves.
pub mod tiny {
    use std::path::Path;

    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// Special tokens of the tiny tokenizer, after its 256 byte tokens and merges.
    pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    /// Writes a 2-layer Llama GGUF with random weights (seeded) to `path`;
    /// `quantized` stores the matrices as Q4_1 (converted at load) instead of F32.
    pub fn write_llama(path: &Path, seed: u64, quantized: bool) -> candle_core::Result<()> {
        write(path, "llama", seed, quantized)
    }

    /// The same for the `qwen2` architecture (attention biases, Qwen2's
    /// pre-tokenizer).
    pub fn write_qwen2(path: &Path, seed: u64, quantized: bool) -> candle_core::Result<()> {
        write(path, "qwen2", seed, quantized)
    }

    fn write(path: &Path, arch: &str, seed: u64, quantized: bool) -> candle_core::Result<()> {
        let device = Device::Cpu;
        let (dim, heads, kv_heads, ff, layers) = (64usize, 4u32, 2u32, 128usize, 2u32);
        let byte_chars = crate::bpe::byte_level_chars();
        let mut tokens: Vec<String> = byte_chars.iter().map(|c| c.to_string()).collect();
        let merges = [
            "t o", "o l", "to ol", "c a", "l l", "ca ll", "Ġ t", "a m", "n a",
        ];
        for merge in merges {
            tokens.push(merge.replace(' ', ""));
        }
        let mut types = vec![1i32; tokens.len()];
        for special in SPECIALS {
            tokens.push(special.to_string());
            types.push(3);
        }
        let vocab = tokens.len();
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut random = |shape: &[usize]| -> candle_core::Result<Tensor> {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.4
                })
                .collect();
            Tensor::from_vec(values, shape, &device)
        };
        let matrix_type = if quantized {
            GgmlDType::Q4_1
        } else {
            GgmlDType::F32
        };
        let mut tensors: Vec<(String, QTensor)> = Vec::new();
        let ones = Tensor::ones(dim, candle_core::DType::F32, &device)?;
        tensors.push((
            "token_embd.weight".into(),
            QTensor::quantize(&random(&[vocab, dim])?, GgmlDType::F32)?,
        ));
        tensors.push((
            "output_norm.weight".into(),
            QTensor::quantize(&ones, GgmlDType::F32)?,
        ));
        tensors.push((
            "output.weight".into(),
            QTensor::quantize(&random(&[vocab, dim])?, GgmlDType::F32)?,
        ));
        let kv_dim = dim / heads as usize * kv_heads as usize;
        for layer in 0..layers {
            let name = |n: &str| format!("blk.{layer}.{n}.weight");
            tensors.push((name("attn_norm"), QTensor::quantize(&ones, GgmlDType::F32)?));
            if arch == "qwen2" {
                for (n, size) in [("attn_q", dim), ("attn_k", kv_dim), ("attn_v", kv_dim)] {
                    let bias = QTensor::quantize(&random(&[size])?, GgmlDType::F32)?;
                    tensors.push((format!("blk.{layer}.{n}.bias"), bias));
                }
            }
            tensors.push((name("ffn_norm"), QTensor::quantize(&ones, GgmlDType::F32)?));
            for (n, shape) in [
                ("attn_q", [dim, dim]),
                ("attn_k", [kv_dim, dim]),
                ("attn_v", [kv_dim, dim]),
                ("attn_output", [dim, dim]),
                ("ffn_gate", [ff, dim]),
                ("ffn_up", [ff, dim]),
                ("ffn_down", [dim, ff]),
            ] {
                tensors.push((name(n), QTensor::quantize(&random(&shape)?, matrix_type)?));
            }
        }
        let strings =
            |items: Vec<String>| Value::Array(items.into_iter().map(Value::String).collect());
        let key = |k: &str| format!("{arch}.{k}");
        let metadata: Vec<(String, Value)> = vec![
            ("general.architecture".into(), Value::String(arch.into())),
            (key("attention.head_count"), Value::U32(heads)),
            (key("attention.head_count_kv"), Value::U32(kv_heads)),
            (key("block_count"), Value::U32(layers)),
            (key("embedding_length"), Value::U32(dim as u32)),
            (key("context_length"), Value::U32(4_096)),
            (key("rope.dimension_count"), Value::U32(dim as u32 / heads)),
            (key("attention.layer_norm_rms_epsilon"), Value::F32(1e-5)),
            (key("rope.freq_base"), Value::F32(10_000.0)),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            (
                "tokenizer.ggml.pre".into(),
                Value::String(if arch == "qwen2" { "qwen2" } else { "smollm" }.into()),
            ),
            ("tokenizer.ggml.tokens".into(), strings(tokens)),
            (
                "tokenizer.ggml.merges".into(),
                strings(merges.iter().map(|m| m.to_string()).collect()),
            ),
            (
                "tokenizer.ggml.token_type".into(),
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            (
                "tokenizer.ggml.eos_token_id".into(),
                Value::U32(vocab as u32 - 1),
            ),
        ];
        let metadata_refs: Vec<(&str, &Value)> =
            metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensor_refs: Vec<(&str, &QTensor)> =
            tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut file = std::fs::File::create(path)?;
        gguf_file::write(&mut file, &metadata_refs, &tensor_refs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(quantized: bool) -> (tempfile::TempDir, CausalLm) {
        tiny_of("llama", quantized)
    }

    fn tiny_of(arch: &str, quantized: bool) -> (tempfile::TempDir, CausalLm) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        if arch == "qwen2" {
            tiny::write_qwen2(&path, 3, quantized).unwrap();
        } else {
            tiny::write_llama(&path, 3, quantized).unwrap();
        }
        let model = CausalLm::from_gguf(&path).unwrap();
        (dir, model)
    }

    fn argmax(logits: &[f32]) -> u32 {
        (0..logits.len())
            .max_by(|a, b| logits[*a].total_cmp(&logits[*b]))
            .unwrap() as u32
    }

    #[test]
    fn decoding_with_the_kv_cache_gives_the_tokens_of_decoding_without_it() {
        for (arch, quantized) in [
            ("llama", false),
            ("llama", true),
            ("qwen2", false),
            ("qwen2", true),
        ] {
            let (_dir, mut model) = tiny_of(arch, quantized);
            assert_eq!(model.architecture(), arch);
            assert_eq!(model.fork().is_some(), arch == "llama");
            let prompt = model
                .tokenizer()
                .encode("<|im_start|>user\ncall a tool<|im_end|>\n");
            assert_eq!(
                prompt[0],
                model.tokenizer().token_id("<|im_start|>").unwrap()
            );
            let mut cached = Vec::new();
            let mut logits = model.step(&prompt).unwrap();
            for _ in 0..12 {
                let next = argmax(&logits);
                cached.push(next);
                logits = model.step(&[next]).unwrap();
            }
            let mut uncached = Vec::new();
            let mut sequence = prompt.clone();
            for _ in 0..12 {
                model.reset();
                let next = argmax(&model.step(&sequence).unwrap());
                uncached.push(next);
                sequence.push(next);
            }
            assert_eq!(cached, uncached, "{arch}, quantized: {quantized}");
        }
    }

    #[test]
    fn a_forked_prefix_continues_as_the_whole_prompt_would() {
        let (_dir, mut model) = tiny(false);
        let prefix = model
            .tokenizer()
            .encode("<|im_start|>system\ntools<|im_end|>\n");
        let suffix = model.tokenizer().encode("<|im_start|>user\nhi<|im_end|>\n");
        model.step(&prefix).unwrap();
        let mut fork = model.fork().expect("llama forks");
        let forked = fork.step(&suffix).unwrap();
        let mut whole = model.fork().unwrap();
        whole.reset();
        let all: Vec<u32> = prefix.iter().chain(&suffix).copied().collect();
        let direct = whole.step(&all).unwrap();
        let diff = forked
            .iter()
            .zip(&direct)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "{diff}");
        assert_eq!(model.position(), prefix.len());
    }
}
