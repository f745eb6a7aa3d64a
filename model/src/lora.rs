//! PEFT LoRA adapters merged into a model: `adapter_config.json` (`r`,
//! `lora_alpha`, `target_modules`, `use_rslora`, `rank_pattern`,
//! `alpha_pattern`, `fan_in_fan_out`) and `adapter_model.safetensors`; each
//! targeted projection becomes `W + s * B @ A` (s = alpha / r, or alpha /
//! sqrt(r) with rsLoRA), in a GGUF's tensors (at load, or written as a new
//! GGUF) or in Hugging Face safetensors weights at load. What cannot be
//! honoured (DoRA, `modules_to_save`, other layers than the attention and MLP
//! projections) is refused with a clear error.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::causal_lm::{gguf_bytes, hf_name, read_gguf_tensors};
use serde_json::Value;

/// Why an adapter could not be read or merged.
#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The adapter uses something a merge cannot honour.
    #[error("unsupported adapter: {0}")]
    Unsupported(String),
    /// The adapter does not fit the model.
    #[error("the adapter does not fit the model: {0}")]
    Mismatch(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// The fields of `adapter_config.json` a merge reads.
#[derive(Debug, Clone, Deserialize)]
pub struct AdapterConfig {
    /// Rank.
    pub r: usize,
    /// Scale numerator.
    pub lora_alpha: f64,
    /// Module names (or a regex) the adapter targets.
    #[serde(default)]
    pub target_modules: Value,
    /// Scale by alpha / sqrt(r) instead of alpha / r.
    #[serde(default)]
    pub use_rslora: bool,
    /// Per-module ranks, by name pattern.
    #[serde(default)]
    pub rank_pattern: HashMap<String, usize>,
    /// Per-module alphas, by name pattern.
    #[serde(default)]
    pub alpha_pattern: HashMap<String, f64>,
    /// Weights stored as (in, out) (GPT-2's Conv1D).
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// DoRA: refused.
    #[serde(default)]
    pub use_dora: bool,
    /// Extra fully trained modules: refused.
    #[serde(default)]
    pub modules_to_save: Option<Value>,
}

/// One targeted projection: its low-rank factors and scale.
#[derive(Debug)]
struct Pair {
    a: Tensor,
    b: Tensor,
    scale: f64,
}

/// A PEFT LoRA adapter.
#[derive(Debug)]
pub struct LoraAdapter {
    config: AdapterConfig,
    /// By module path (`model.layers.0.self_attn.q_proj`).
    pairs: HashMap<String, Pair>,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReport {
    /// GGUF tensors changed.
    pub merged: usize,
    /// Tensors written in all.
    pub tensors: usize,
}

impl LoraAdapter {
    /// Reads `dir/adapter_config.json` and `dir/adapter_model.safetensors`.
    pub fn read(dir: &Path) -> Result<Self, LoraError> {
        let file_error = |path: &Path, message: String| LoraError::File {
            path: path.display().to_string(),
            message,
        };
        let config_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| file_error(&config_path, e.to_string()))?;
        let config: AdapterConfig =
            serde_json::from_str(&text).map_err(|e| file_error(&config_path, e.to_string()))?;
        if config.use_dora {
            return Err(LoraError::Unsupported(
                "DoRA (use_dora) cannot be merged as W + s*B@A".into(),
            ));
        }
        if config
            .modules_to_save
            .as_ref()
            .is_some_and(|m| m.as_array().is_some_and(|a| !a.is_empty()))
        {
            return Err(LoraError::Unsupported(
                "modules_to_save replaces whole modules (often the embeddings or the head), which a LoRA merge does not carry".into(),
            ));
        }
        if config.r == 0 {
            return Err(LoraError::Unsupported("r = 0".into()));
        }
        let weights_path = dir.join("adapter_model.safetensors");
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu)
            .map_err(|e| file_error(&weights_path, e.to_string()))?;
        let mut halves: HashMap<String, (Option<Tensor>, Option<Tensor>)> = HashMap::new();
        for (name, tensor) in tensors {
            let (module, half) = if let Some(m) = name.strip_suffix(".lora_A.weight") {
                (m, 0)
            } else if let Some(m) = name.strip_suffix(".lora_B.weight") {
                (m, 1)
            } else {
                return Err(LoraError::Unsupported(format!(
                    "tensor `{name}` is not a LoRA factor (lora_A / lora_B)"
                )));
            };
            let module = module.trim_start_matches("base_model.model.").to_string();
            let entry = halves.entry(module).or_default();
            let tensor = tensor.to_dtype(candle_core::DType::F32)?;
            if half == 0 {
                entry.0 = Some(tensor);
            } else {
                entry.1 = Some(tensor);
            }
        }
        let mut pairs = HashMap::new();
        for (module, (a, b)) in halves {
            let (Some(a), Some(b)) = (a, b) else {
                return Err(LoraError::Mismatch(format!(
                    "`{module}` lacks lora_A or lora_B"
                )));
            };
            let short = module.rsplit('.').next().unwrap_or(&module);
            let rank = pattern(&config.rank_pattern, &module, short).unwrap_or(config.r) as f64;
            let alpha = pattern(&config.alpha_pattern, &module, short).unwrap_or(config.lora_alpha);
            let scale = if config.use_rslora {
                alpha / rank.sqrt()
            } else {
                alpha / rank
            };
            pairs.insert(module, Pair { a, b, scale });
        }
        Ok(Self { config, pairs })
    }

    /// The adapter's configuration.
    pub fn config(&self) -> &AdapterConfig {
        &self.config
    }

    /// `s * B @ A` of a module, as (out, in).
    fn delta(&self, module: &str) -> Result<Option<Tensor>, LoraError> {
        let Some(pair) = self.pairs.get(module) else {
            return Ok(None);
        };
        let delta = (pair.b.matmul(&pair.a)? * pair.scale)?;
        Ok(Some(if self.config.fan_in_fan_out {
            delta.t()?.contiguous()?
        } else {
            delta
        }))
    }

    /// Merges every targeted projection into Hugging Face-named weights
    /// (`model.layers.0.self_attn.q_proj.weight`, f32, (out, in)) in place;
    /// returns how many.
    pub fn merge_into(&self, weights: &mut HashMap<String, Tensor>) -> Result<usize, LoraError> {
        let mut missing = Vec::new();
        for module in self.pairs.keys() {
            let key = format!("{module}.weight");
            let (Some(weight), Some(delta)) = (
                weights.get(&key).filter(|_| is_projection(module)),
                self.delta(module)?,
            ) else {
                missing.push(module.clone());
                continue;
            };
            if weight.dims() != delta.dims() {
                return Err(mismatch(module, &delta, weight));
            }
            let merged = (weight.to_dtype(candle_core::DType::F32)? + delta)?;
            weights.insert(key, merged);
        }
        if !missing.is_empty() {
            return Err(no_projection(missing));
        }
        Ok(self.pairs.len())
    }

    /// Every tensor of a GGUF model, with each targeted projection merged and
    /// stored as `quant` (default: Q8_0 when the row length allows, else
    /// F32); the others as they are.
    pub fn merged_gguf_tensors<R: std::io::Read + std::io::Seek>(
        &self,
        content: &gguf_file::Content,
        reader: &mut R,
        quant: Option<GgmlDType>,
    ) -> Result<Vec<(String, QTensor)>, LoraError> {
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let heads = |key: &str| {
            content
                .metadata
                .get(&format!("{arch}.{key}"))
                .and_then(|v| v.to_u32().ok())
                .map(|v| v as usize)
        };
        let (n_head, n_head_kv) = (
            heads("attention.head_count"),
            heads("attention.head_count_kv"),
        );
        let mut unused: Vec<String> = self.pairs.keys().cloned().collect();
        let mut tensors = read_gguf_tensors(content, reader)?;
        for (name, tensor) in tensors.iter_mut() {
            let Some((module, permute_heads)) = hf_module(name, n_head, n_head_kv, &arch) else {
                continue;
            };
            let Some(delta) = self.delta(&module)? else {
                continue;
            };
            let weight = tensor.dequantize(&Device::Cpu)?;
            if weight.dims() != delta.dims() {
                return Err(mismatch(&module, &delta, &weight));
            }
            let delta = match permute_heads {
                Some(heads) => permute(&delta, heads)?,
                None => delta,
            };
            let merged = (weight + delta)?;
            let row = merged.dims().last().copied().unwrap_or(0);
            let dtype = quant.unwrap_or(if row % 32 == 0 {
                GgmlDType::Q8_0
            } else {
                GgmlDType::F32
            });
            *tensor = QTensor::quantize(&merged, dtype)?;
            unused.retain(|m| m != &module);
        }
        if !unused.is_empty() {
            return Err(no_projection(unused));
        }
        Ok(tensors)
    }

    /// Writes `base` with every targeted projection merged to `out` (see
    /// [`LoraAdapter::merged_gguf_tensors`]).
    pub fn merge_gguf(
        &self,
        base: &Path,
        out: &Path,
        quant: Option<GgmlDType>,
    ) -> Result<MergeReport, LoraError> {
        let file_error = |path: &Path, message: String| LoraError::File {
            path: path.display().to_string(),
            message,
        };
        let mut file = std::fs::File::open(base).map_err(|e| file_error(base, e.to_string()))?;
        let content =
            gguf_file::Content::read(&mut file).map_err(|e| file_error(base, e.to_string()))?;
        let tensors = self.merged_gguf_tensors(&content, &mut file, quant)?;
        let bytes = gguf_bytes(&content, &tensors)?;
        std::fs::write(out, bytes).map_err(|e| file_error(out, e.to_string()))?;
        Ok(MergeReport {
            merged: self.pairs.len(),
            tensors: tensors.len(),
        })
    }
}

/// The projections a merge changes (attention and MLP).
const PROJECTIONS: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

fn is_projection(module: &str) -> bool {
    PROJECTIONS.iter().any(|p| module.ends_with(p))
}

fn mismatch(module: &str, delta: &Tensor, weight: &Tensor) -> LoraError {
    LoraError::Mismatch(format!(
        "`{module}` is {:?} in the adapter and {:?} in the model",
        delta.dims(),
        weight.dims()
    ))
}

fn no_projection(mut modules: Vec<String>) -> LoraError {
    modules.sort();
    LoraError::Mismatch(format!(
        "modules the model has no projection for: {modules:?} (only attention and MLP projections merge)"
    ))
}

/// The value of the first pattern that names `module` (full path or last part).
fn pattern<T: Copy>(patterns: &HashMap<String, T>, module: &str, short: &str) -> Option<T> {
    patterns
        .iter()
        .find(|(key, _)| module.ends_with(key.as_str()) || short == key.as_str())
        .map(|(_, v)| *v)
}

/// The Hugging Face module a GGUF projection comes from, and the head count
/// its rows were permuted by (llama.cpp permutes Llama's q and k for its
/// rotary layout).
fn hf_module(
    gguf: &str,
    n_head: Option<usize>,
    n_head_kv: Option<usize>,
    arch: &str,
) -> Option<(String, Option<usize>)> {
    let module = hf_name(gguf)?.strip_suffix(".weight")?.to_string();
    if !is_projection(&module) {
        return None;
    }
    let heads = match (arch, module.rsplit('.').next()) {
        ("llama", Some("q_proj")) => n_head,
        ("llama", Some("k_proj")) => n_head_kv.or(n_head),
        _ => None,
    };
    Some((module, heads))
}

/// llama.cpp's permutation of q/k rows: (heads, 2, d/2, in) -> (heads, d/2, 2, in).
fn permute(weight: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = weight.dims2()?;
    weight
        .reshape((heads, 2, out / heads / 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causal_lm::tiny;

    fn write_adapter(
        dir: &Path,
        config: Value,
        pairs: &[(&str, usize, usize)],
    ) -> HashMap<String, (Tensor, Tensor)> {
        tiny::write_adapter(dir, &config, pairs, 7).unwrap()
    }

    fn gguf_tensor(path: &Path, name: &str) -> Tensor {
        let mut file = std::fs::File::open(path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        content
            .tensor(&mut file, name, &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap()
    }

    #[test]
    fn a_merge_equals_the_base_plus_the_low_rank_path_on_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.gguf");
        tiny::write_llama(&base, 9, false).unwrap();
        let config = serde_json::json!({"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
            "alpha_pattern": {"model.layers.1.self_attn.v_proj": 2.0}, "use_rslora": false});
        let factors = write_adapter(
            dir.path(),
            config,
            &[
                ("model.layers.0.self_attn.q_proj", 64, 64),
                ("model.layers.1.self_attn.v_proj", 32, 64),
            ],
        );
        let merged = dir.path().join("merged.gguf");
        let adapter = LoraAdapter::read(dir.path()).unwrap();
        let report = adapter
            .merge_gguf(&base, &merged, Some(GgmlDType::F32))
            .unwrap();
        assert_eq!(report.merged, 2);
        let x = Tensor::randn(0f32, 1.0, (3, 64), &Device::Cpu).unwrap();
        for (module, gguf, scale, heads) in [
            (
                "model.layers.1.self_attn.v_proj",
                "blk.1.attn_v.weight",
                2.0 / 4.0,
                None,
            ),
            (
                "model.layers.0.self_attn.q_proj",
                "blk.0.attn_q.weight",
                8.0 / 4.0,
                Some(4),
            ),
        ] {
            let (a, b) = &factors[module];
            let w = gguf_tensor(&base, gguf);
            let w_merged = gguf_tensor(&merged, gguf);
            // x W'^T against x W^T + s x A^T B^T (rows permuted as llama.cpp stores q).
            let low_rank = (x
                .matmul(&a.t().unwrap())
                .unwrap()
                .matmul(&b.t().unwrap())
                .unwrap()
                * scale)
                .unwrap();
            let low_rank = match heads {
                Some(h) => permute(&low_rank.t().unwrap(), h).unwrap().t().unwrap(),
                None => low_rank,
            };
            let direct = (x.matmul(&w.t().unwrap()).unwrap() + low_rank).unwrap();
            let via_merge = x.matmul(&w_merged.t().unwrap()).unwrap();
            let diff = crate::max_abs_diff(&direct, &via_merge).unwrap();
            assert!(diff < 1e-4, "{module}: {diff}");
        }
        // Untouched tensors are copied; the merged model loads and runs.
        let same = crate::max_abs_diff(
            &gguf_tensor(&base, "blk.0.attn_k.weight"),
            &gguf_tensor(&merged, "blk.0.attn_k.weight"),
        )
        .unwrap();
        assert_eq!(same, 0.0);
        let mut model = crate::causal_lm::CausalLm::from_gguf(&merged).unwrap();
        assert!(model
            .step(&[1, 2, 3])
            .unwrap()
            .iter()
            .all(|l| l.is_finite()));
    }

    #[test]
    fn adapters_a_merge_cannot_honour_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_adapter(
            dir.path(),
            serde_json::json!({"r": 4, "lora_alpha": 8, "use_dora": true}),
            &[],
        );
        assert!(LoraAdapter::read(dir.path())
            .unwrap_err()
            .to_string()
            .contains("DoRA"));
        write_adapter(
            dir.path(),
            serde_json::json!({"r": 4, "lora_alpha": 8, "modules_to_save": ["lm_head"]}),
            &[],
        );
        assert!(LoraAdapter::read(dir.path())
            .unwrap_err()
            .to_string()
            .contains("modules_to_save"));
        let base = dir.path().join("base.gguf");
        tiny::write_llama(&base, 1, false).unwrap();
        write_adapter(
            dir.path(),
            serde_json::json!({"r": 4, "lora_alpha": 8}),
            &[("model.embed_tokens", 64, 64)],
        );
        let adapter = LoraAdapter::read(dir.path()).unwrap();
        let err = adapter
            .merge_gguf(&base, &dir.path().join("out.gguf"), None)
            .unwrap_err();
        assert!(err.to_string().contains("model.embed_tokens"), "{err}");
    }
}
