//! The `minilm` backbone: a frozen pretrained BERT encoder (all-MiniLM-L6-v2,
//! read with candle-transformers from its own directory) under small trained
//! heads: a projection, a multi-label tool head over mean ⊕ max pooled
//! wordpiece states and a per-wordpiece BIO tag head. The model directory holds
//! only the heads (`heads.safetensors`), `config.json` (with a pointer to the
//! encoder directory), `tools.json` and `manifest.json`; the encoder is fetched
//! separately by `scripts/fetch-minilm.sh`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Result, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolforge_core::ToolSpec;

use super::features::Token;
use super::files::{sha256_hex, Manifest, ModelConfig, CONFIG_FILE, MANIFEST_FILE, TOOLS_FILE};
use super::network::Rng;
use super::wordpiece::WordPiece;
use super::{invalid, json, ModelError};

/// Backbone name in `config.json`.
pub const BACKBONE: &str = "minilm";
/// The heads' weights in a minilm model directory.
pub const HEADS_FILE: &str = "heads.safetensors";
/// Environment variable that overrides the encoder directory recorded in a model.
pub const ENCODER_ENV: &str = "TOOLFORGE_MINILM_DIR";
/// Files of an encoder directory.
pub const ENCODER_CONFIG: &str = "config.json";
pub const ENCODER_TOKENIZER: &str = "tokenizer.json";
pub const ENCODER_WEIGHTS: &str = "model.safetensors";
/// Most wordpieces read per query (`[CLS]`/`[SEP]` not counted).
pub const MAX_PIECES: usize = 126;

/// Where a minilm model's encoder lives, recorded in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderRef {
    /// Encoder directory (relative paths are relative to the model directory).
    pub path: String,
    /// The encoder's `config.json` as trained with (checked against the one loaded).
    pub config: Value,
    /// Width of the encoder's hidden states.
    pub hidden: usize,
    /// Width of the heads' projection.
    pub dim: usize,
    /// Most wordpieces read per query.
    pub max_pieces: usize,
}

/// The frozen encoder: tokenizer and BERT.
pub struct Encoder {
    dir: PathBuf,
    config: Value,
    hidden: usize,
    max_positions: usize,
    wordpiece: WordPiece,
    bert: BertModel,
    device: Device,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("dir", &self.dir)
            .field("hidden", &self.hidden)
            .field("vocab", &self.wordpiece.len())
            .finish()
    }
}

/// One query through the encoder.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Wordpieces with byte offsets into the query.
    pub tokens: Vec<Token>,
    pub truncated: bool,
    /// `tokens.len() x hidden` last hidden states (`[CLS]`/`[SEP]` dropped).
    pub states: Tensor,
}

fn missing(dir: &Path, reason: impl std::fmt::Display) -> ModelError {
    ModelError::EncoderMissing {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl Encoder {
    /// Loads an encoder directory (`config.json`, `tokenizer.json`,
    /// `model.safetensors`); a missing file is [`ModelError::EncoderMissing`].
    pub fn load(dir: &Path) -> std::result::Result<Self, ModelError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| missing(dir, format!("{name}: {e}")))
        };
        let config_bytes = read(ENCODER_CONFIG)?;
        let tokenizer = read(ENCODER_TOKENIZER)?;
        let weights = dir.join(ENCODER_WEIGHTS);
        if !weights.is_file() {
            return Err(missing(dir, format!("{ENCODER_WEIGHTS} not found")));
        }
        let config: Value =
            serde_json::from_slice(&config_bytes).map_err(|e| invalid(ENCODER_CONFIG, e))?;
        let bert_config: BertConfig =
            serde_json::from_value(config.clone()).map_err(|e| invalid(ENCODER_CONFIG, e))?;
        let wordpiece =
            WordPiece::from_json(&tokenizer).map_err(|e| invalid(ENCODER_TOKENIZER, e))?;
        let device = Device::Cpu;
        // SAFETY: the weights file is only read; it must not change while mapped,
        // as with any model file loaded by candle.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }
            .map_err(|e| invalid(ENCODER_WEIGHTS, e))?;
        let bert = BertModel::load(vb, &bert_config).map_err(|e| invalid(ENCODER_WEIGHTS, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            hidden: bert_config.hidden_size,
            max_positions: bert_config.max_position_embeddings,
            wordpiece,
            bert,
            device,
        })
    }

    /// The encoder directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The encoder's `config.json`.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Width of the hidden states.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    pub fn wordpiece(&self) -> &WordPiece {
        &self.wordpiece
    }

    /// Runs the encoder on a batch of queries (padded together, masked).
    pub fn encode_batch(&self, queries: &[&str], max_pieces: usize) -> Result<Vec<Encoded>> {
        let max_pieces = max_pieces.min(self.max_positions.saturating_sub(2));
        let encoded: Vec<_> = queries
            .iter()
            .map(|q| self.wordpiece.encode(q, max_pieces))
            .collect();
        let width = encoded.iter().map(|(p, _)| p.len()).max().unwrap_or(0) + 2;
        let mut ids = vec![0u32; queries.len() * width];
        let mut mask = vec![0u32; queries.len() * width];
        for (row, (pieces, _)) in encoded.iter().enumerate() {
            let base = row * width;
            ids[base] = self.wordpiece.cls();
            for (i, piece) in pieces.iter().enumerate() {
                ids[base + 1 + i] = piece.id;
            }
            ids[base + 1 + pieces.len()] = self.wordpiece.sep();
            mask[base..base + pieces.len() + 2].fill(1);
        }
        let shape = (queries.len(), width);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let types = ids.zeros_like()?;
        let states = self.bert.forward(&ids, &types, Some(&mask))?;
        encoded
            .into_iter()
            .enumerate()
            .map(|(row, (pieces, truncated))| {
                let states = states.get(row)?.narrow(0, 1, pieces.len())?.contiguous()?;
                Ok(Encoded {
                    tokens: pieces.iter().map(|p| p.token).collect(),
                    truncated,
                    states,
                })
            })
            .collect()
    }
}

/// The trained heads over encoder states.
#[derive(Debug, Clone)]
pub struct Heads {
    proj_w: Tensor,
    proj_b: Tensor,
    tool_w: Tensor,
    tool_b: Tensor,
    tag_w: Tensor,
    tag_b: Tensor,
}

/// Outputs of the heads for a batch.
#[derive(Debug, Clone)]
pub struct HeadOutputs {
    /// `batch x tools`.
    pub tool_logits: Tensor,
    /// `batch x len x tags`.
    pub tag_logits: Tensor,
}

/// Names and shapes of the heads' parameters.
fn head_params(
    hidden: usize,
    dim: usize,
    tools: usize,
    tags: usize,
) -> [(&'static str, Vec<usize>); 6] {
    [
        ("proj.weight", vec![hidden, dim]),
        ("proj.bias", vec![dim]),
        ("tool_head.weight", vec![2 * dim, tools]),
        ("tool_head.bias", vec![tools]),
        ("tag_head.weight", vec![dim, tags]),
        ("tag_head.bias", vec![tags]),
    ]
}

fn affine(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.broadcast_matmul(w)?.broadcast_add(b)
}

impl Heads {
    /// Fills `varmap` with freshly initialised heads drawn from `seed`.
    pub fn init_varmap(
        varmap: &VarMap,
        hidden: usize,
        dim: usize,
        tools: usize,
        tags: usize,
        seed: u64,
        device: &Device,
    ) -> Result<()> {
        let mut rng = Rng::new(seed);
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("parameter map lock poisoned".into()))?;
        for (name, shape) in head_params(hidden, dim, tools, tags) {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = if name.ends_with("bias") {
                vec![0.0; n]
            } else {
                let std = (1.0 / shape[0] as f32).sqrt();
                (0..n).map(|_| rng.normal() * std).collect()
            };
            let tensor = Tensor::from_vec(values, shape.as_slice(), device)?;
            data.insert(name.to_string(), Var::from_tensor(&tensor)?);
        }
        Ok(())
    }

    /// Number of trained parameters.
    pub fn param_count(hidden: usize, dim: usize, tools: usize, tags: usize) -> usize {
        head_params(hidden, dim, tools, tags)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Builds the heads from `vb` (a `VarMap` for training, safetensors otherwise).
    pub fn new(
        vb: &VarBuilder,
        hidden: usize,
        dim: usize,
        tools: usize,
        tags: usize,
    ) -> Result<Self> {
        let [p, pb, t, tb, g, gb] = head_params(hidden, dim, tools, tags)
            .map(|(name, shape)| vb.get(shape.as_slice(), name));
        Ok(Self {
            proj_w: p?,
            proj_b: pb?,
            tool_w: t?,
            tool_b: tb?,
            tag_w: g?,
            tag_b: gb?,
        })
    }

    /// A copy whose tensors no longer track training variables.
    pub fn detached(&self) -> Self {
        Self {
            proj_w: self.proj_w.detach(),
            proj_b: self.proj_b.detach(),
            tool_w: self.tool_w.detach(),
            tool_b: self.tool_b.detach(),
            tag_w: self.tag_w.detach(),
            tag_b: self.tag_b.detach(),
        }
    }

    /// Heads over `states` (`batch x len x hidden`) with `mask` (`batch x len`,
    /// 1 for real pieces); `dropout` (training only) applies to the states.
    pub fn forward(&self, states: &Tensor, mask: &Tensor, dropout: f32) -> Result<HeadOutputs> {
        let states = if dropout > 0.0 {
            candle_nn::ops::dropout(states, dropout)?
        } else {
            states.clone()
        };
        let h = affine(&states, &self.proj_w, &self.proj_b)?.gelu()?;
        let m = mask.unsqueeze(D::Minus1)?;
        let count = m.sum(1)?.clamp(1.0, f64::MAX)?;
        let mean = h.broadcast_mul(&m)?.sum(1)?.broadcast_div(&count)?;
        let max = h.broadcast_add(&((m - 1.0)? * 1e4)?)?.max(1)?;
        let pooled = Tensor::cat(&[&mean, &max], 1)?;
        Ok(HeadOutputs {
            tool_logits: affine(&pooled, &self.tool_w, &self.tool_b)?,
            tag_logits: affine(&h, &self.tag_w, &self.tag_b)?,
        })
    }

    /// Tool and tag logits of one encoded query (`tokens.len() * tags` tag logits).
    pub fn run(&self, states: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
        let states = states.unsqueeze(0)?;
        let mask = Tensor::ones(states.dims()[..2].to_vec(), DType::F32, states.device())?;
        let out = self.forward(&states, &mask, 0.0)?;
        Ok((
            out.tool_logits.flatten_all()?.to_vec1()?,
            out.tag_logits.flatten_all()?.to_vec1()?,
        ))
    }
}

/// The encoder directory of a minilm model: `TOOLFORGE_MINILM_DIR` when set, else
/// the recorded path (relative to `model_dir` when relative).
pub fn encoder_dir(reference: &EncoderRef, model_dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = std::env::var_os(ENCODER_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let path = PathBuf::from(&reference.path);
    match model_dir {
        Some(base) if path.is_relative() => base.join(path),
        _ => path,
    }
}

/// Checks that a loaded encoder is the one the heads were trained on.
pub fn check_encoder(
    reference: &EncoderRef,
    encoder: &Encoder,
) -> std::result::Result<(), ModelError> {
    for key in ["hidden_size", "num_hidden_layers", "vocab_size"] {
        if reference.config.get(key) != encoder.config().get(key) {
            return Err(invalid(
                CONFIG_FILE,
                format!(
                    "the encoder in {} has another {key} than the one the model was trained with",
                    encoder.dir().display()
                ),
            ));
        }
    }
    if reference.hidden != encoder.hidden() {
        return Err(invalid(CONFIG_FILE, "encoder width mismatch"));
    }
    Ok(())
}

/// Writes a minilm model directory: `heads.safetensors`, `config.json` (its
/// `model_version` set from the heads' hash when empty), `tools.json` and
/// `manifest.json`. Returns the config as written.
pub fn write_minilm_dir(
    dir: &Path,
    mut config: ModelConfig,
    tools: &[ToolSpec],
    weights: &HashMap<String, Tensor>,
) -> std::result::Result<ModelConfig, ModelError> {
    let io = |path: PathBuf| move |source| ModelError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let weights_path = dir.join(HEADS_FILE);
    candle_core::safetensors::save(weights, &weights_path)?;
    let weights_bytes = std::fs::read(&weights_path).map_err(io(weights_path.clone()))?;
    if config.model_version.is_empty() {
        let hash = sha256_hex(&weights_bytes);
        config.model_version = format!("toolforge-{}-{}", config.backbone, &hash[..12]);
    }
    let config_bytes = json(&config, CONFIG_FILE)?;
    let tools_bytes = json(&tools, TOOLS_FILE)?;
    let manifest = Manifest::of(
        &config.model_version,
        &[
            (CONFIG_FILE, &config_bytes),
            (TOOLS_FILE, &tools_bytes),
            (HEADS_FILE, &weights_bytes),
        ],
    );
    let manifest_bytes = json(&manifest, MANIFEST_FILE)?;
    for (name, bytes) in [
        (CONFIG_FILE, &config_bytes),
        (TOOLS_FILE, &tools_bytes),
        (MANIFEST_FILE, &manifest_bytes),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(path.clone()))?;
    }
    Ok(config)
}

/// Writes a randomly initialised BERT encoder directory (`config.json`,
/// `tokenizer.json` over `pieces`, `model.safetensors`): for tests and smoke runs
/// without the pretrained weights. `pieces` must include `[PAD]`, `[UNK]`,
/// `[CLS]` and `[SEP]`.
pub fn write_random_encoder(
    dir: &Path,
    pieces: &[&str],
    hidden: usize,
    layers: usize,
) -> std::result::Result<(), ModelError> {
    let io = |path: PathBuf| move |source| ModelError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let config = serde_json::json!({
        "vocab_size": pieces.len(),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "model_type": "bert"
    });
    let bert_config: BertConfig =
        serde_json::from_value(config.clone()).map_err(|e| invalid(ENCODER_CONFIG, e))?;
    let vocab: serde_json::Map<String, Value> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| ((*p).to_string(), Value::from(i)))
        .collect();
    let tokenizer = serde_json::json!({
        "normalizer": {"type": "BertNormalizer", "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]",
                  "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                  "vocab": vocab}
    });
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertModel::load(vb, &bert_config)?;
    varmap.save(dir.join(ENCODER_WEIGHTS))?;
    for (name, value) in [(ENCODER_CONFIG, config), (ENCODER_TOKENIZER, tokenizer)] {
        let path = dir.join(name);
        std::fs::write(&path, json(&value, name)?).map_err(io(path.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolforge_model::files::{describe_tools, MODEL_FORMAT};
    use crate::toolforge_model::network::ArchConfig;
    use crate::ToolForgeRouter;
    use toolforge_core::{RouteContext, RouteError};

    fn specs() -> Vec<ToolSpec> {
        serde_json::from_value(serde_json::json!([
            {"name": "weather", "description": "Weather for a place",
             "parameters": {"type": "object", "required": ["location"],
                            "properties": {"location": {"type": "string"}}}}
        ]))
        .unwrap()
    }

    /// A model directory with random heads over a random encoder in `encoder`.
    fn random_model(dir: &Path, encoder: &Path) {
        let pieces = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "weather", "in", "paris", "?",
        ];
        write_random_encoder(encoder, &pieces, 16, 1).unwrap();
        let tools = specs();
        let (infos, slots) = describe_tools(&tools);
        let tags = 1 + 2 * slots.len();
        let varmap = VarMap::new();
        Heads::init_varmap(&varmap, 16, 8, 1, tags, 3, &Device::Cpu).unwrap();
        let weights: HashMap<String, Tensor> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        let config = ModelConfig {
            format: MODEL_FORMAT,
            model_version: String::new(),
            backbone: BACKBONE.into(),
            architecture: ArchConfig {
                dim: 16,
                layers: 1,
                heads: 2,
                ff_dim: 32,
                max_tokens: MAX_PIECES,
                word_rows: pieces.len(),
                ngram_buckets: 0,
                max_ngrams: 0,
                shapes: 0,
                tools: 1,
                tags,
                dropout: 0.0,
            },
            encoder: Some(EncoderRef {
                path: encoder.to_string_lossy().into_owned(),
                config: serde_json::from_slice(
                    &std::fs::read(encoder.join(ENCODER_CONFIG)).unwrap(),
                )
                .unwrap(),
                hidden: 16,
                dim: 8,
                max_pieces: MAX_PIECES,
            }),
            tools: infos,
            slots,
            temperature: 1.0,
            threshold: 0.0,
            tool_threshold: 0.5,
            training: Value::Null,
        };
        write_minilm_dir(dir, config, &tools, &weights).unwrap();
    }

    #[test]
    fn random_minilm_model_routes_from_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let (model_dir, encoder_dir) = (tmp.path().join("model"), tmp.path().join("encoder"));
        random_model(&model_dir, &encoder_dir);
        let router = ToolForgeRouter::new(&model_dir);
        let context = RouteContext::new(specs());
        router.route_sync("Weather in Paris?", &context).unwrap();
        let model = router.model().unwrap();
        let scores = model.score("Weather in Paris?").unwrap();
        let texts: Vec<&str> = scores
            .tokens
            .iter()
            .map(|t| t.text("Weather in Paris?"))
            .collect();
        assert_eq!(texts, vec!["Weather", "in", "Paris", "?"]);
        assert_eq!(scores.tag_logits.len(), 4 * 3);
        assert!(model.vocab().is_none() && model.encoder().is_some());
        assert!(model.version().starts_with("toolforge-minilm-"));
    }

    #[test]
    fn missing_encoder_is_unavailable_and_names_the_fetch_script() {
        let tmp = tempfile::tempdir().unwrap();
        let (model_dir, encoder_dir) = (tmp.path().join("model"), tmp.path().join("encoder"));
        random_model(&model_dir, &encoder_dir);
        std::fs::remove_dir_all(&encoder_dir).unwrap();
        let router = ToolForgeRouter::new(&model_dir);
        let context = RouteContext::new(specs());
        for _ in 0..2 {
            match router.route_sync("weather in paris", &context) {
                Err(RouteError::Unavailable(message)) => {
                    assert!(message.contains("scripts/fetch-minilm.sh"), "{message}")
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
        }
    }
}
