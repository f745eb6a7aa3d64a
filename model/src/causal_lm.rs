//! Instruct LLMs on a CPU: GGUF files (candle-transformers' quantized Llama,
//! which covers SmolLM2, and quantized Qwen2) and Hugging Face Qwen2 folders
//! of safetensors (candle-transformers' `qwen2`); a PEFT LoRA adapter merged
//! at load; the tokenizer from the GGUF's own metadata or a `tokenizer.json`;
//! the end tokens; and one forward step over new tokens with the KV cache.
//! Llama GGUF and Qwen2 safetensors models can be cloned after a prompt
//! prefix, so the shared system-and-tools prefix is computed once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{quantized_llama, quantized_qwen2, qwen2};

use crate::bpe::{Bpe, BpeError};
use crate::lora::{LoraAdapter, LoraError};

/// Positions the quantized models run (candle precomputes their rotary
/// embeddings for 4,096).
pub const GGUF_MAX_POSITIONS: usize = 4_096;

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
    #[error("unsupported architecture `{0}` (GGUF: llama, qwen2; safetensors folders: qwen2)")]
    Architecture(String),
    /// The tokenizer could not be built.
    #[error(transparent)]
    Tokenizer(#[from] BpeError),
    /// The adapter could not be merged.
    #[error(transparent)]
    Adapter(#[from] LoraError),
    /// A tensor operation failed.
    #[error("model forward failed: {0}")]
    Forward(#[from] candle_core::Error),
}

/// The weights of one architecture (held once per model, so the size
/// difference between variants does not matter).
#[allow(clippy::large_enum_variant)]
enum Weights {
    /// Llama-family GGUF (SmolLM2, Llama, Mistral, ...); cloneable.
    LlamaGguf(quantized_llama::ModelWeights),
    /// Qwen2 / Qwen2.5 GGUF; not cloneable, so no prefix reuse.
    Qwen2Gguf(quantized_qwen2::ModelWeights),
    /// Qwen2 / Qwen2.5 from safetensors, in f32; cloneable.
    Qwen2(qwen2::ModelForCausalLM),
}

/// A causal language model with its tokenizer and KV cache.
pub struct CausalLm {
    weights: Weights,
    tokenizer: Arc<Bpe>,
    end_tokens: Arc<Vec<u32>>,
    architecture: String,
    max_positions: usize,
    position: usize,
}

impl CausalLm {
    /// Loads a model: a GGUF file, or a Hugging Face Qwen2 folder
    /// (`config.json`, `*.safetensors`, `tokenizer.json`); with `adapter`, its
    /// projections merged as `W + s * B @ A` first.
    pub fn load(path: &Path, adapter: Option<&LoraAdapter>) -> Result<Self, LmError> {
        if path.is_dir() {
            Self::from_safetensors_dir(path, adapter)
        } else {
            Self::from_gguf_with(path, adapter)
        }
    }

    /// Loads a GGUF model; the tokenizer comes from its metadata, or from a
    /// `tokenizer.json` in the same folder when the metadata has none.
    pub fn from_gguf(path: &Path) -> Result<Self, LmError> {
        Self::from_gguf_with(path, None)
    }

    fn from_gguf_with(path: &Path, adapter: Option<&LoraAdapter>) -> Result<Self, LmError> {
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
        let eos = content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok());
        let end_tokens = end_tokens(&tokenizer, eos.into_iter().collect());
        if !matches!(architecture.as_str(), "llama" | "qwen2") {
            return Err(LmError::Architecture(architecture));
        }
        let weights = match rewritten(&content, &mut file, adapter)? {
            Some(bytes) => {
                let mut reader = std::io::Cursor::new(bytes);
                let content = gguf_file::Content::read(&mut reader)?;
                load_gguf_weights(&architecture, content, &mut reader)?
            }
            None => load_gguf_weights(&architecture, content, &mut file)?,
        };
        Ok(Self {
            weights,
            tokenizer: Arc::new(tokenizer),
            end_tokens: Arc::new(end_tokens),
            architecture,
            max_positions: GGUF_MAX_POSITIONS,
            position: 0,
        })
    }

    /// Loads a Hugging Face Qwen2 / Qwen2.5 folder: `config.json`, the weights
    /// in one or more `*.safetensors` files (any float type, run in f32) and
    /// `tokenizer.json`.
    pub fn from_safetensors_dir(
        dir: &Path,
        adapter: Option<&LoraAdapter>,
    ) -> Result<Self, LmError> {
        let read_error = |path: &Path, message: String| LmError::Read {
            path: path.display().to_string(),
            message,
        };
        let read_json = |name: &str| -> Result<serde_json::Value, LmError> {
            let path = dir.join(name);
            let text =
                std::fs::read_to_string(&path).map_err(|e| read_error(&path, e.to_string()))?;
            serde_json::from_str(&text).map_err(|e| read_error(&path, e.to_string()))
        };
        let config_json = read_json("config.json")?;
        let model_type = config_json["model_type"].as_str().unwrap_or_default();
        if model_type != "qwen2" {
            return Err(LmError::Architecture(format!("{model_type} (safetensors)")));
        }
        let config = qwen2_config(config_json.clone())
            .map_err(|e| read_error(&dir.join("config.json"), e.to_string()))?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = Bpe::from_tokenizer_json(
            &std::fs::read_to_string(&tokenizer_path)
                .map_err(|e| read_error(&tokenizer_path, e.to_string()))?,
        )?;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| read_error(dir, e.to_string()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(read_error(dir, "no *.safetensors weights".into()));
        }
        let mut tensors = HashMap::new();
        for file in &files {
            for (name, tensor) in candle_core::safetensors::load(file, &Device::Cpu)
                .map_err(|e| read_error(file, e.to_string()))?
            {
                tensors.insert(name, tensor.to_dtype(DType::F32)?);
            }
        }
        if let Some(adapter) = adapter {
            adapter.merge_into(&mut tensors)?;
        }
        let model = qwen2::ModelForCausalLM::new(
            &config,
            VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        )?;
        let mut eos = ids(&config_json["eos_token_id"]);
        if let Ok(generation) = read_json("generation_config.json") {
            eos.extend(ids(&generation["eos_token_id"]));
        }
        Ok(Self {
            weights: Weights::Qwen2(model),
            end_tokens: Arc::new(end_tokens(&tokenizer, eos)),
            tokenizer: Arc::new(tokenizer),
            architecture: "qwen2".into(),
            max_positions: config.max_position_embeddings,
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

    /// Positions the model can run (prompt and answer).
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Tokens seen so far (the KV cache's length).
    pub fn position(&self) -> usize {
        self.position
    }

    /// A copy that continues from the same cache, for Llama GGUF and Qwen2
    /// safetensors weights (cheap: weights and cached keys and values are
    /// shared, not copied); `None` for Qwen2 GGUF.
    pub fn fork(&self) -> Option<Self> {
        let weights = match &self.weights {
            Weights::LlamaGguf(weights) => Weights::LlamaGguf(weights.clone()),
            Weights::Qwen2(weights) => Weights::Qwen2(weights.clone()),
            Weights::Qwen2Gguf(_) => return None,
        };
        Some(Self {
            weights,
            tokenizer: Arc::clone(&self.tokenizer),
            end_tokens: Arc::clone(&self.end_tokens),
            architecture: self.architecture.clone(),
            max_positions: self.max_positions,
            position: self.position,
        })
    }

    /// Empties the KV cache.
    pub fn reset(&mut self) {
        match &mut self.weights {
            Weights::LlamaGguf(weights) => weights.clear_kv_cache(),
            Weights::Qwen2Gguf(weights) => weights.clear_kv_cache(),
            Weights::Qwen2(weights) => weights.clear_kv_cache(),
        }
        self.position = 0;
    }

    /// Feeds `tokens` after those seen so far; returns the next-token logits.
    pub fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>, LmError> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match &mut self.weights {
            Weights::LlamaGguf(weights) => weights.forward(&input, self.position)?,
            Weights::Qwen2Gguf(weights) => weights.forward(&input, self.position)?,
            Weights::Qwen2(weights) => weights.forward(&input, self.position)?,
        };
        self.position += tokens.len();
        Ok(logits
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?)
    }
}

/// The model's end-of-answer tokens: the chat template's and `eos`.
fn end_tokens(tokenizer: &Bpe, eos: Vec<u32>) -> Vec<u32> {
    let mut tokens: Vec<u32> = ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"]
        .iter()
        .filter_map(|t| tokenizer.token_id(t))
        .chain(eos)
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    tokens
}

/// Token ids from a `config.json` field: one number or a list.
fn ids(value: &serde_json::Value) -> Vec<u32> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().map(|n| n as u32).into_iter().collect(),
        serde_json::Value::Array(items) => items.iter().flat_map(ids).collect(),
        _ => Vec::new(),
    }
}

/// candle's Qwen2 `Config` from a `config.json`, with the defaults of
/// Transformers' `Qwen2Config` for fields a file leaves out; without sliding
/// windows the window spans every position (candle always applies it).
fn qwen2_config(mut json: serde_json::Value) -> Result<qwen2::Config, serde_json::Error> {
    use serde_json::json;
    let defaults = [
        ("max_position_embeddings", json!(32_768)),
        ("rope_theta", json!(10_000.0)),
        ("rms_norm_eps", json!(1e-6)),
        ("tie_word_embeddings", json!(false)),
        ("use_sliding_window", json!(false)),
        ("hidden_act", json!("silu")),
    ];
    if let Some(fields) = json.as_object_mut() {
        for (key, value) in defaults {
            if fields.get(key).is_none_or(|v| v.is_null()) {
                fields.insert(key.into(), value);
            }
        }
        let layers = fields.get("num_hidden_layers").cloned().unwrap_or(json!(0));
        fields.entry("max_window_layers").or_insert(layers);
        let heads = fields
            .get("num_attention_heads")
            .cloned()
            .unwrap_or(json!(1));
        if fields
            .get("num_key_value_heads")
            .is_none_or(|v| v.is_null())
        {
            fields.insert("num_key_value_heads".into(), heads);
        }
        let positions = fields["max_position_embeddings"].clone();
        if fields["use_sliding_window"] != json!(true)
            || fields.get("sliding_window").is_none_or(|v| v.is_null())
        {
            fields.insert("sliding_window".into(), positions);
        }
    }
    serde_json::from_value(json)
}

fn load_gguf_weights<R: std::io::Read + std::io::Seek>(
    architecture: &str,
    content: gguf_file::Content,
    reader: &mut R,
) -> Result<Weights, LmError> {
    let device = Device::Cpu;
    Ok(match architecture {
        "qwen2" => Weights::Qwen2Gguf(quantized_qwen2::ModelWeights::from_gguf(
            content, reader, &device,
        )?),
        _ => Weights::LlamaGguf(quantized_llama::ModelWeights::from_gguf(
            content, reader, &device,
        )?),
    })
}

/// The GGUF rewritten in memory when it must change before loading: with an
/// adapter's projections merged, and tensors in block formats candle
/// multiplies without SIMD on x86 (Q4_1, Q5_0, Q5_1) requantized to Q8_0
/// (nearly lossless from 4 or 5 bits, and SIMD-fast). `None` when neither applies.
fn rewritten(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
    adapter: Option<&LoraAdapter>,
) -> Result<Option<Vec<u8>>, LmError> {
    let slow =
        |dtype: GgmlDType| matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1);
    if adapter.is_none()
        && !content
            .tensor_infos
            .values()
            .any(|info| slow(info.ggml_dtype))
    {
        return Ok(None);
    }
    let tensors = match adapter {
        Some(adapter) => adapter.merged_gguf_tensors(content, file, None)?,
        None => read_gguf_tensors(content, file)?,
    };
    let mut fast = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let fits_q8 = tensor.shape().dims().last().is_some_and(|d| d % 32 == 0);
        let tensor = if slow(tensor.dtype()) && fits_q8 {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        fast.push((name, tensor));
    }
    Ok(Some(gguf_bytes(content, &fast)?))
}

/// Every tensor of a GGUF file, by name in sorted order.
pub(crate) fn read_gguf_tensors<R: std::io::Read + std::io::Seek>(
    content: &gguf_file::Content,
    reader: &mut R,
) -> candle_core::Result<Vec<(String, QTensor)>> {
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| Ok((name.clone(), content.tensor(reader, name, &Device::Cpu)?)))
        .collect()
}

/// A GGUF file in memory: `content`'s metadata with `tensors`.
pub(crate) fn gguf_bytes(
    content: &gguf_file::Content,
    tensors: &[(String, QTensor)],
) -> candle_core::Result<Vec<u8>> {
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &refs)?;
    Ok(out.into_inner())
}

/// The Hugging Face name of a GGUF tensor (llama.cpp's names for Llama and
/// Qwen2), e.g. `blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`.
pub fn hf_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let (layer, rest) = gguf.strip_prefix("blk.")?.split_once('.')?;
    let (kind, suffix) = rest.split_once('.')?;
    let module = match kind {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{module}.{suffix}"))
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

/// Tiny random-weight models for tests, written by the tests themselves: a
/// Llama or Qwen2 GGUF with a byte-level tokenizer in its metadata, the same
/// Qwen2 weights as a Hugging Face folder of safetensors, and LoRA adapters.
pub mod tiny {
    use std::collections::HashMap;
    use std::path::Path;

    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// Special tokens of the tiny tokenizer, after its 256 byte tokens and merges.
    pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    const MERGES: [&str; 9] = [
        "t o", "o l", "to ol", "c a", "l l", "ca ll", "Ġ t", "a m", "n a",
    ];
    const DIM: usize = 64;
    const HEADS: usize = 4;
    const KV_HEADS: usize = 2;
    const FF: usize = 128;
    const LAYERS: usize = 2;

    /// A seeded generator of small uniform values.
    struct Lcg(u64);

    impl Lcg {
        fn new(seed: u64) -> Self {
            Self(
                seed.wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            )
        }

        fn tensor(&mut self, shape: &[usize], scale: f32) -> candle_core::Result<Tensor> {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    self.0 = self
                        .0
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((self.0 >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * scale
                })
                .collect();
            Tensor::from_vec(values, shape, &Device::Cpu)
        }
    }

    /// The vocabulary: byte tokens, merged tokens, specials.
    fn tokens() -> Vec<String> {
        let mut tokens: Vec<String> = crate::bpe::byte_level_chars()
            .iter()
            .map(|c| c.to_string())
            .collect();
        tokens.extend(MERGES.iter().map(|m| m.replace(' ', "")));
        tokens.extend(SPECIALS.iter().map(|s| s.to_string()));
        tokens
    }

    /// The weights under their GGUF names, and whether each is a projection
    /// matrix (stored quantized on request).
    fn weights(arch: &str, seed: u64) -> candle_core::Result<Vec<(String, Tensor, bool)>> {
        let vocab = tokens().len();
        let mut random = Lcg::new(seed);
        let ones = Tensor::ones(DIM, candle_core::DType::F32, &Device::Cpu)?;
        let mut tensors = vec![
            (
                "token_embd.weight".into(),
                random.tensor(&[vocab, DIM], 0.4)?,
                false,
            ),
            ("output_norm.weight".into(), ones.clone(), false),
            (
                "output.weight".into(),
                random.tensor(&[vocab, DIM], 0.4)?,
                false,
            ),
        ];
        let kv_dim = DIM / HEADS * KV_HEADS;
        for layer in 0..LAYERS {
            let name = |n: &str| format!("blk.{layer}.{n}.weight");
            tensors.push((name("attn_norm"), ones.clone(), false));
            if arch == "qwen2" {
                for (n, size) in [("attn_q", DIM), ("attn_k", kv_dim), ("attn_v", kv_dim)] {
                    let bias = random.tensor(&[size], 0.4)?;
                    tensors.push((format!("blk.{layer}.{n}.bias"), bias, false));
                }
            }
            tensors.push((name("ffn_norm"), ones.clone(), false));
            for (n, shape) in [
                ("attn_q", [DIM, DIM]),
                ("attn_k", [kv_dim, DIM]),
                ("attn_v", [kv_dim, DIM]),
                ("attn_output", [DIM, DIM]),
                ("ffn_gate", [FF, DIM]),
                ("ffn_up", [FF, DIM]),
                ("ffn_down", [DIM, FF]),
            ] {
                tensors.push((name(n), random.tensor(&shape, 0.4)?, true));
            }
        }
        Ok(tensors)
    }

    /// Writes a 2-layer Llama GGUF with random weights (seeded) to `path`;
    /// `quantized` stores the matrices as Q4_1 (converted at load) instead of F32.
    pub fn write_llama(path: &Path, seed: u64, quantized: bool) -> candle_core::Result<()> {
        write_gguf(path, "llama", seed, quantized)
    }

    /// The same for the `qwen2` architecture (attention biases, Qwen2's
    /// pre-tokenizer).
    pub fn write_qwen2(path: &Path, seed: u64, quantized: bool) -> candle_core::Result<()> {
        write_gguf(path, "qwen2", seed, quantized)
    }

    fn write_gguf(path: &Path, arch: &str, seed: u64, quantized: bool) -> candle_core::Result<()> {
        let matrix_type = if quantized {
            GgmlDType::Q4_1
        } else {
            GgmlDType::F32
        };
        let mut tensors: Vec<(String, QTensor)> = Vec::new();
        for (name, tensor, matrix) in weights(arch, seed)? {
            let dtype = if matrix { matrix_type } else { GgmlDType::F32 };
            tensors.push((name, QTensor::quantize(&tensor, dtype)?));
        }
        let tokens = tokens();
        let types: Vec<Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, _)| {
                Value::I32(if i + SPECIALS.len() >= tokens.len() {
                    3
                } else {
                    1
                })
            })
            .collect();
        let vocab = tokens.len();
        let strings =
            |items: Vec<String>| Value::Array(items.into_iter().map(Value::String).collect());
        let key = |k: &str| format!("{arch}.{k}");
        let metadata: Vec<(String, Value)> = vec![
            ("general.architecture".into(), Value::String(arch.into())),
            (key("attention.head_count"), Value::U32(HEADS as u32)),
            (key("attention.head_count_kv"), Value::U32(KV_HEADS as u32)),
            (key("block_count"), Value::U32(LAYERS as u32)),
            (key("embedding_length"), Value::U32(DIM as u32)),
            (key("context_length"), Value::U32(4_096)),
            (
                key("rope.dimension_count"),
                Value::U32((DIM / HEADS) as u32),
            ),
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
                strings(MERGES.iter().map(|m| m.to_string()).collect()),
            ),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
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

    /// Writes the weights `write_qwen2` writes for `seed` (unquantized) as a
    /// Hugging Face Qwen2 folder: `config.json`, `model.safetensors` (bf16 when
    /// `bf16`, else f32) and a `tokenizer.json` with Qwen2's pre-tokenizer.
    pub fn write_qwen2_safetensors(dir: &Path, seed: u64, bf16: bool) -> candle_core::Result<()> {
        std::fs::create_dir_all(dir)?;
        let dtype = if bf16 {
            candle_core::DType::BF16
        } else {
            candle_core::DType::F32
        };
        let mut tensors = HashMap::new();
        for (name, tensor, _) in weights("qwen2", seed)? {
            let hf = super::hf_name(&name).ok_or_else(|| {
                candle_core::Error::Msg(format!("no Hugging Face name for {name}"))
            })?;
            tensors.insert(hf, tensor.to_dtype(dtype)?);
        }
        candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
        let tokens = tokens();
        let config = serde_json::json!({
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
            "vocab_size": tokens.len(), "hidden_size": DIM, "intermediate_size": FF,
            "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "num_key_value_heads": KV_HEADS, "max_position_embeddings": 4096,
            "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": false,
            "use_sliding_window": false, "sliding_window": null, "hidden_act": "silu",
            "eos_token_id": tokens.len() - 1, "torch_dtype": if bf16 { "bfloat16" } else { "float32" },
        });
        let specials_from = tokens.len() - SPECIALS.len();
        let vocab: serde_json::Map<String, serde_json::Value> = tokens[..specials_from]
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), serde_json::json!(id)))
            .collect();
        let added: Vec<serde_json::Value> = SPECIALS
            .iter()
            .enumerate()
            .map(|(i, s)| serde_json::json!({"id": specials_from + i, "content": s, "special": true}))
            .collect();
        let split = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        let tokenizer = serde_json::json!({
            "version": "1.0", "added_tokens": added,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
            "model": {"type": "BPE", "vocab": vocab, "merges": MERGES},
        });
        std::fs::write(dir.join("config.json"), config.to_string())?;
        std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string())?;
        Ok(())
    }

    /// Writes a PEFT adapter to `dir`: `config` as `adapter_config.json` and
    /// rank-4 factors for each `(module, out, in)` (seeded); returns each
    /// module's `(A, B)`.
    pub fn write_adapter(
        dir: &Path,
        config: &serde_json::Value,
        modules: &[(&str, usize, usize)],
        seed: u64,
    ) -> candle_core::Result<HashMap<String, (Tensor, Tensor)>> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("adapter_config.json"), config.to_string())?;
        let mut random = Lcg::new(seed);
        let mut tensors = HashMap::new();
        let mut factors = HashMap::new();
        for (module, out, inp) in modules {
            let a = random.tensor(&[4, *inp], 0.6)?;
            let b = random.tensor(&[*out, 4], 0.6)?;
            tensors.insert(
                format!("base_model.model.{module}.lora_A.weight"),
                a.clone(),
            );
            tensors.insert(
                format!("base_model.model.{module}.lora_B.weight"),
                b.clone(),
            );
            factors.insert(module.to_string(), (a, b));
        }
        candle_core::safetensors::save(&tensors, dir.join("adapter_model.safetensors"))?;
        Ok(factors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(quantized: bool) -> (tempfile::TempDir, CausalLm) {
        tiny_of("llama", quantized)
    }

    /// `arch`: `llama`, `qwen2` (GGUF) or `qwen2-hf` (safetensors folder).
    fn tiny_of(arch: &str, quantized: bool) -> (tempfile::TempDir, CausalLm) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        match arch {
            "qwen2" => tiny::write_qwen2(&path, 3, quantized).unwrap(),
            "qwen2-hf" => {
                let folder = dir.path().join("hf");
                tiny::write_qwen2_safetensors(&folder, 3, quantized).unwrap();
                let model = CausalLm::load(&folder, None).unwrap();
                return (dir, model);
            }
            _ => tiny::write_llama(&path, 3, quantized).unwrap(),
        }
        let model = CausalLm::from_gguf(&path).unwrap();
        (dir, model)
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
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
            ("qwen2-hf", false),
            ("qwen2-hf", true),
        ] {
            let (_dir, mut model) = tiny_of(arch, quantized);
            assert_eq!(model.architecture(), arch.trim_end_matches("-hf"));
            assert_eq!(model.fork().is_some(), arch != "qwen2");
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

    #[test]
    fn a_qwen2_folder_of_safetensors_runs_as_its_gguf_does() {
        let dir = tempfile::tempdir().unwrap();
        let gguf = dir.path().join("tiny.gguf");
        tiny::write_qwen2(&gguf, 5, false).unwrap();
        tiny::write_qwen2_safetensors(&dir.path().join("hf"), 5, false).unwrap();
        let mut quantized = CausalLm::load(&gguf, None).unwrap();
        let mut full = CausalLm::load(&dir.path().join("hf"), None).unwrap();
        let text = "<|im_start|>user\ncall a tool at 10:30<|im_end|>\n<|im_start|>assistant\n";
        let prompt = quantized.tokenizer().encode(text);
        assert_eq!(prompt, full.tokenizer().encode(text), "one tokenizer");
        assert_eq!(quantized.end_tokens(), full.end_tokens());
        let (mut a, mut b) = (
            quantized.step(&prompt).unwrap(),
            full.step(&prompt).unwrap(),
        );
        for _ in 0..6 {
            assert!(max_diff(&a, &b) < 1e-3, "{}", max_diff(&a, &b));
            let next = argmax(&a);
            assert_eq!(next, argmax(&b));
            (a, b) = (
                quantized.step(&[next]).unwrap(),
                full.step(&[next]).unwrap(),
            );
        }
        assert_eq!(full.max_positions(), 4096);
    }

    #[test]
    fn an_adapter_merged_at_load_runs_as_a_merged_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let modules = [
            ("model.layers.0.self_attn.q_proj", 64, 64),
            ("model.layers.0.self_attn.k_proj", 32, 64),
            ("model.layers.1.self_attn.o_proj", 64, 64),
            ("model.layers.1.mlp.down_proj", 64, 128),
        ];
        let config = serde_json::json!({"r": 4, "lora_alpha": 8,
            "target_modules": ["q_proj", "k_proj", "o_proj", "down_proj"]});
        let adapter_dir = dir.path().join("adapter");
        tiny::write_adapter(&adapter_dir, &config, &modules, 11).unwrap();
        let adapter = LoraAdapter::read(&adapter_dir).unwrap();
        let prompt = [266u32, 40, 41, 42, 260, 265];
        let logits = |mut model: CausalLm| model.step(&prompt).unwrap();
        // Llama (q and k rows permuted in GGUF): at load equals `model merge`.
        let base = dir.path().join("llama.gguf");
        tiny::write_llama(&base, 4, true).unwrap();
        let merged = dir.path().join("merged.gguf");
        adapter.merge_gguf(&base, &merged, None).unwrap();
        let at_load = logits(CausalLm::load(&base, Some(&adapter)).unwrap());
        let from_file = logits(CausalLm::load(&merged, None).unwrap());
        let plain = logits(CausalLm::load(&base, None).unwrap());
        assert_eq!(max_diff(&at_load, &from_file), 0.0);
        assert!(
            max_diff(&at_load, &plain) > 1e-2,
            "the adapter changes the model"
        );
        // Qwen2 safetensors merged at load (Hugging Face layout, no
        // permutation) equals the GGUF merged in f32.
        let base = dir.path().join("qwen2.gguf");
        tiny::write_qwen2(&base, 4, false).unwrap();
        let folder = dir.path().join("hf");
        tiny::write_qwen2_safetensors(&folder, 4, false).unwrap();
        adapter
            .merge_gguf(&base, &merged, Some(GgmlDType::F32))
            .unwrap();
        let at_load = logits(CausalLm::load(&folder, Some(&adapter)).unwrap());
        let from_file = logits(CausalLm::load(&merged, None).unwrap());
        let plain = logits(CausalLm::load(&folder, None).unwrap());
        assert!(max_diff(&at_load, &from_file) < 1e-3);
        assert!(max_diff(&at_load, &plain) > 1e-2);
    }

    #[test]
    fn folders_it_cannot_run_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let error = |dir: &Path| CausalLm::load(dir, None).err().unwrap().to_string();
        assert!(error(dir.path()).contains("config.json"));
        std::fs::write(dir.path().join("config.json"), r#"{"model_type": "gemma"}"#).unwrap();
        assert!(error(dir.path()).contains("gemma"));
        tiny::write_qwen2_safetensors(dir.path(), 1, true).unwrap();
        std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
        assert!(error(dir.path()).contains("safetensors"));
        let adapter_dir = dir.path().join("adapter");
        tiny::write_adapter(
            &adapter_dir,
            &serde_json::json!({"r": 4, "lora_alpha": 8}),
            &[("model.layers.7.self_attn.q_proj", 64, 64)],
            1,
        )
        .unwrap();
        tiny::write_qwen2_safetensors(dir.path(), 1, true).unwrap();
        let adapter = LoraAdapter::read(&adapter_dir).unwrap();
        let message = CausalLm::load(dir.path(), Some(&adapter))
            .err()
            .unwrap()
            .to_string();
        assert!(
            message.contains("model.layers.7.self_attn.q_proj"),
            "{message}"
        );
    }
}
