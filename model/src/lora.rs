//! PEFT LoRA adapters merged into a GGUF model: `adapter_config.json` (`r`,
//! `lora_alpha`, `target_modules`, `use_rslora`, `rank_pattern`,
//! `alpha_pattern`, `fan_in_fan_out`) and `adapter_model.safetensors`; each
//! targeted projection becomes `W + s * B @ A` (s = alpha / r, or alpha /
//! sqrt(r) with rsLoRA), written as a new GGUF. What cannot be honoured (DoRA,
//! `modules_to_save`, other layers than the attention and MLP projections) is
//! refused with a clear error.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde::Deserialize;
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

    /// Writes `base` with every targeted projection merged to `out`. Merged
    /// tensors are stored as `quant` (default: Q8_0 when the row length allows,
    /// else F32); the others are copied as they are.
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
        let mut used = 0;
        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        let mut tensors = Vec::with_capacity(names.len());
        for name in names {
            let tensor = content.tensor(&mut file, name, &Device::Cpu)?;
            let Some((module, permute_heads)) = hf_module(name, n_head, n_head_kv, &arch) else {
                tensors.push((name.clone(), tensor));
                continue;
            };
            let Some(delta) = self.delta(&module)? else {
                tensors.push((name.clone(), tensor));
                continue;
            };
            let weight = tensor.dequantize(&Device::Cpu)?;
            if weight.dims() != delta.dims() {
                return Err(LoraError::Mismatch(format!(
                    "`{module}` is {:?} in the adapter and {:?} in the model",
                    delta.dims(),
                    weight.dims()
                )));
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
            tensors.push((name.clone(), QTensor::quantize(&merged, dtype)?));
            used += 1;
        }
        if used != self.pairs.len() {
            let mut missing: Vec<&String> = self
                .pairs
                .keys()
                .filter(|m| {
                    !tensors.iter().any(|(n, _)| {
                        hf_module(n, n_head, n_head_kv, &arch).is_some_and(|(x, _)| &x == *m)
                    })
                })
                .collect();
            missing.sort();
            return Err(LoraError::Mismatch(format!(
                "modules the model has no projection for: {missing:?} (only attention and MLP projections merge)"
            )));
        }
        let metadata: Vec<(&str, &gguf_file::Value)> = content
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut writer = std::fs::File::create(out).map_err(|e| file_error(out, e.to_string()))?;
        gguf_file::write(&mut writer, &metadata, &refs)?;
        Ok(MergeReport {
            merged: used,
            tensors: refs.len(),
        })
    }
}

/// The value of the first pattern that names `module` (full path or last part).
fn pattern<T: Copy>(patterns: &HashMap<String, T>, module: &str, short: &str) -> Option<T> {
    patterns
        .iter()
        .find(|(key, _)| module.ends_with(key.as_str()) || short == key.as_str())
        .map(|(_, v)| *v)
}

/// The Hugging Face module a GGUF tensor comes from, and the head count its
/// rows were permuted by (llama.cpp permutes Llama's q and k for its rotary layout).
fn hf_module(
    gguf: &str,
    n_head: Option<usize>,
    n_head_kv: Option<usize>,
    arch: &str,
) -> Option<(String, Option<usize>)> {
    let rest = gguf.strip_prefix("blk.")?.strip_suffix(".weight")?;
    let (layer, kind) = rest.split_once('.')?;
    let llama = arch == "llama";
    let (module, heads) = match kind {
        "attn_q" => ("self_attn.q_proj", if llama { n_head } else { None }),
        "attn_k" => (
            "self_attn.k_proj",
            if llama { n_head_kv.or(n_head) } else { None },
        ),
        "attn_v" => ("self_attn.v_proj", None),
        "attn_output" => ("self_attn.o_proj", None),
        "ffn_gate" => ("mlp.gate_proj", None),
        "ffn_up" => ("mlp.up_proj", None),
        "ffn_down" => ("mlp.down_proj", None),
        _ => return None,
    };
    Some((format!("model.layers.{layer}.{module}"), heads))
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
        std::fs::write(dir.join("adapter_config.json"), config.to_string()).unwrap();
        let mut tensors = HashMap::new();
        let mut factors = HashMap::new();
        for (i, (module, out, inp)) in pairs.iter().enumerate() {
            let a = (Tensor::randn(0f32, 1.0, (4, *inp), &Device::Cpu).unwrap()
                * (0.1 * (i + 1) as f64))
                .unwrap();
            let b = (Tensor::randn(0f32, 1.0, (*out, 4), &Device::Cpu).unwrap() * 0.1).unwrap();
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
        candle_core::safetensors::save(&tensors, dir.join("adapter_model.safetensors")).unwrap();
        factors
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
            let diff = (direct - via_merge)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-4, "{module}: {diff}");
        }
        // Untouched tensors are copied; the merged model loads and runs.
        let same = (gguf_tensor(&base, "blk.0.attn_k.weight")
            - gguf_tensor(&merged, "blk.0.attn_k.weight"))
        .unwrap();
        assert_eq!(
            same.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
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
