//! The `minilm` backbone: a pretrained BERT encoder (all-MiniLM-L6-v2, read
//! with candle-transformers from its own directory) under small trained heads: a
//! projection, a multi-label tool head over mean ⊕ max pooled wordpiece states
//! and a per-wordpiece BIO tag head. The encoder is frozen, or its top layers
//! are fine-tuned with the heads. The model directory holds the heads
//! (`heads.safetensors`), the tuned top layers if any
//! (`encoder_top.safetensors`, only those layers' tensors), `config.json` (with
//! a pointer to the encoder directory), `tools.json` and `manifest.json`; the
//! encoder is fetched separately by `scripts/fetch-minilm.sh`, and at load time
//! the tuned tensors replace the pretrained ones of the same name. Routing runs
//! [`super::bert::Bert`], the computation of candle-transformers' `BertModel`
//! laid out for fast single-query inference.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::BufferedSafetensors;
#[cfg(feature = "train")]
use candle_core::Var;
use candle_core::{DType, Device, Result, Shape, Tensor, D};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolforge_core::ToolSpec;

use super::bert::Bert;
use super::features::Token;
use super::files::{sha256_hex, Manifest, ModelConfig, CONFIG_FILE, MANIFEST_FILE, TOOLS_FILE};
use super::network::Dropout;
#[cfg(feature = "train")]
use super::network::Rng;
use super::wordpiece::WordPiece;
use super::{invalid, json, ModelError};

/// Backbone name in `config.json`.
pub const BACKBONE: &str = "minilm";
/// The heads' weights in a minilm model directory.
pub const HEADS_FILE: &str = "heads.safetensors";
/// The fine-tuned top encoder layers in a minilm model directory (absent when
/// the encoder was frozen).
pub const TUNED_FILE: &str = "encoder_top.safetensors";
/// Environment variable that overrides the encoder directory recorded in a model.
pub const ENCODER_ENV: &str = "TOOLFORGE_MINILM_DIR";
/// Environment variable that picks the encoder's weight precision at load:
/// `f32` (the default) or `int8` ([`Precision`]).
pub const PRECISION_ENV: &str = "TOOLFORGE_MINILM_PRECISION";
/// The encoder's BERT configuration file in its directory.
pub const ENCODER_CONFIG: &str = "config.json";
/// The encoder's WordPiece tokenizer file (Hugging Face `tokenizer.json`).
pub const ENCODER_TOKENIZER: &str = "tokenizer.json";
/// The encoder's pretrained weights.
pub const ENCODER_WEIGHTS: &str = "model.safetensors";
/// Most wordpieces read per query (`[CLS]`/`[SEP]` not counted).
pub const MAX_PIECES: usize = 126;

/// How the encoder's dense weights are held when serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// As stored (run in f32).
    #[default]
    F32,
    /// 8-bit weights (Q8_0), multiplied by candle's quantized kernels.
    Int8,
}

impl Precision {
    /// From [`PRECISION_ENV`]: unset or empty is f32; anything but `f32` and
    /// `int8` is an error naming the variable.
    pub fn from_env() -> std::result::Result<Self, ModelError> {
        match std::env::var(PRECISION_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(Self::F32),
            Ok(value) => value.parse(),
            Err(e) => Err(invalid(PRECISION_ENV, e)),
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = ModelError;

    fn from_str(value: &str) -> std::result::Result<Self, ModelError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "f32" => Ok(Self::F32),
            "int8" => Ok(Self::Int8),
            other => Err(invalid(
                PRECISION_ENV,
                format!("unknown precision {other:?} (f32 or int8)"),
            )),
        }
    }
}

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
    /// Top encoder layers fine-tuned with the heads (their weights are in
    /// [`TUNED_FILE`]); 0 for a frozen encoder.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tuned_layers: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The encoder: tokenizer and BERT (pretrained, or with tuned top layers).
pub struct Encoder {
    dir: PathBuf,
    config: Value,
    hidden: usize,
    max_positions: usize,
    /// Layers run (all of the encoder's, or a bottom part).
    layers: usize,
    /// Prefix of the encoder's tensor names (`""`, `"bert."`, ...).
    prefix: String,
    wordpiece: WordPiece,
    bert: Bert,
    device: Device,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("dir", &self.dir)
            .field("hidden", &self.hidden)
            .field("layers", &self.layers)
            .field("vocab", &self.wordpiece.len())
            .finish()
    }
}

/// One query through the encoder.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Wordpieces with byte offsets into the query.
    pub tokens: Vec<Token>,
    /// Whether the query had more wordpieces than were read.
    pub truncated: bool,
    /// `tokens.len() x hidden` last hidden states (`[CLS]`/`[SEP]` dropped), or
    /// `(tokens.len() + 2) x hidden` with them, from
    /// [`Encoder::encode_batch_with_specials`].
    pub states: Tensor,
}

/// Tensors looked up first in a map of tuned tensors, then in the pretrained
/// weights file.
struct Overlay {
    tuned: HashMap<String, Tensor>,
    base: BufferedSafetensors,
}

impl SimpleBackend for Overlay {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        match self.tuned.get(name) {
            Some(tensor) => {
                if tensor.shape() != &s {
                    return Err(candle_core::Error::UnexpectedShape {
                        msg: format!("shape mismatch for tuned {name}"),
                        expected: s,
                        got: tensor.shape().clone(),
                    });
                }
                tensor.to_dtype(dtype)?.to_device(dev)
            }
            None => SimpleBackend::get(&self.base, s, name, h, dtype, dev),
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        match self.tuned.get(name) {
            Some(tensor) => tensor.to_dtype(dtype)?.to_device(dev),
            None => SimpleBackend::get_unchecked(&self.base, name, dtype, dev),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tuned.contains_key(name) || SimpleBackend::contains_tensor(&self.base, name)
    }
}

/// The prefix under which `weights` holds the encoder layers, tried as
/// candle-transformers' `BertModel::load` does (none, then the model type).
fn layer_prefix(
    weights: &BufferedSafetensors,
    config: &Value,
) -> std::result::Result<String, ModelError> {
    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .map(|t| format!("{t}."));
    [Some(String::new()), model_type, Some("bert.".to_string())]
        .into_iter()
        .flatten()
        .find(|p| {
            SimpleBackend::contains_tensor(
                weights,
                &format!("{p}encoder.layer.0.attention.self.query.weight"),
            )
        })
        .ok_or_else(|| invalid(ENCODER_WEIGHTS, "no BERT encoder layers found"))
}

/// Reads a weights file into memory (no memory map: no `unsafe`, and a file
/// replaced while the model runs cannot change its weights).
fn read_weights(path: &Path) -> std::result::Result<BufferedSafetensors, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| invalid(ENCODER_WEIGHTS, e))?;
    BufferedSafetensors::new(bytes).map_err(|e| invalid(ENCODER_WEIGHTS, e))
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
        Self::open(dir, None, HashMap::new())
    }

    /// Loads an encoder directory with `tuned` tensors (named as in its weights
    /// file) in place of the pretrained ones; a name the weights file lacks is an
    /// error, so that tuned layers never go unused.
    pub fn load_tuned(
        dir: &Path,
        tuned: HashMap<String, Tensor>,
    ) -> std::result::Result<Self, ModelError> {
        Self::open(dir, None, tuned)
    }

    /// Loads only the first `layers` layers of an encoder directory: the frozen
    /// bottom under layers being fine-tuned.
    pub fn load_bottom(dir: &Path, layers: usize) -> std::result::Result<Self, ModelError> {
        Self::open(dir, Some(layers), HashMap::new())
    }

    fn open(
        dir: &Path,
        layers: Option<usize>,
        tuned: HashMap<String, Tensor>,
    ) -> std::result::Result<Self, ModelError> {
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
        let mut bert_config: BertConfig =
            serde_json::from_value(config.clone()).map_err(|e| invalid(ENCODER_CONFIG, e))?;
        if let Some(layers) = layers {
            if layers > bert_config.num_hidden_layers {
                return Err(invalid(
                    ENCODER_CONFIG,
                    format!(
                        "the encoder has {} layers, not {layers}",
                        bert_config.num_hidden_layers
                    ),
                ));
            }
            bert_config.num_hidden_layers = layers;
        }
        let wordpiece =
            WordPiece::from_json(&tokenizer).map_err(|e| invalid(ENCODER_TOKENIZER, e))?;
        let device = Device::Cpu;
        let base = read_weights(&weights)?;
        let prefix = layer_prefix(&base, &config)?;
        if let Some(unknown) = tuned
            .keys()
            .find(|name| !SimpleBackend::contains_tensor(&base, name))
        {
            return Err(invalid(
                TUNED_FILE,
                format!("{unknown} is not a tensor of the encoder"),
            ));
        }
        let vb = VarBuilder::from_backend(
            Box::new(Overlay { tuned, base }),
            DType::F32,
            device.clone(),
        );
        let vb = match prefix.strip_suffix('.') {
            Some(outer) => vb.pp(outer),
            None => vb,
        };
        let bert = Bert::load(vb, &bert_config).map_err(|e| invalid(ENCODER_WEIGHTS, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            hidden: bert_config.hidden_size,
            max_positions: bert_config.max_position_embeddings,
            layers: bert_config.num_hidden_layers,
            prefix,
            wordpiece,
            bert,
            device,
        })
    }

    /// The encoder at `precision`: [`Precision::Int8`] quantizes every layer's
    /// dense weights to Q8_0 (the embedding tables stay f32).
    pub fn with_precision(self, precision: Precision) -> std::result::Result<Self, ModelError> {
        match precision {
            Precision::F32 => Ok(self),
            Precision::Int8 => Ok(Self {
                bert: self
                    .bert
                    .to_int8()
                    .map_err(|e| invalid(ENCODER_WEIGHTS, e))?,
                ..self
            }),
        }
    }

    /// Name of layer `index` in the encoder's weights file (`encoder.layer.4`);
    /// its tensors are `{name}.attention.self.query.weight` and so on.
    pub fn layer_name(&self, index: usize) -> String {
        format!("{}encoder.layer.{index}", self.prefix)
    }

    /// Number of layers this encoder runs.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// The pretrained tensors of layer `index`, by their names in the weights file.
    pub fn layer_tensors(
        &self,
        index: usize,
    ) -> std::result::Result<HashMap<String, Tensor>, ModelError> {
        let weights = read_weights(&self.dir.join(ENCODER_WEIGHTS))?;
        let prefix = format!("{}.", self.layer_name(index));
        let mut out = HashMap::new();
        for (name, _) in weights.tensors() {
            if name.starts_with(&prefix) {
                let tensor = weights
                    .load(&name, &self.device)
                    .and_then(|t| t.to_dtype(DType::F32))
                    .map_err(|e| invalid(ENCODER_WEIGHTS, e))?;
                out.insert(name, tensor);
            }
        }
        if out.is_empty() {
            return Err(invalid(
                ENCODER_WEIGHTS,
                format!("no tensors for layer {index}"),
            ));
        }
        Ok(out)
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

    /// The encoder's tokenizer.
    pub fn wordpiece(&self) -> &WordPiece {
        &self.wordpiece
    }

    /// Runs the encoder on a batch of queries (padded together, masked); the
    /// states are those of the wordpieces.
    pub fn encode_batch(&self, queries: &[&str], max_pieces: usize) -> Result<Vec<Encoded>> {
        self.run_batch(queries, max_pieces, false)
    }

    /// [`Encoder::encode_batch`], keeping the states of `[CLS]` (first row) and
    /// `[SEP]` (last row): the input of further encoder layers.
    pub fn encode_batch_with_specials(
        &self,
        queries: &[&str],
        max_pieces: usize,
    ) -> Result<Vec<Encoded>> {
        self.run_batch(queries, max_pieces, true)
    }

    fn run_batch(
        &self,
        queries: &[&str],
        max_pieces: usize,
        specials: bool,
    ) -> Result<Vec<Encoded>> {
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
        let states = self.bert.forward(&ids, &types, &mask)?;
        encoded
            .into_iter()
            .enumerate()
            .map(|(row, (pieces, truncated))| {
                let (start, len) = if specials {
                    (0, pieces.len() + 2)
                } else {
                    (1, pieces.len())
                };
                let states = states.get(row)?.narrow(0, start, len)?.contiguous()?;
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
    #[cfg(feature = "train")]
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
    /// 1 for the pieces pooled); `dropout` (training only) applies to the states.
    pub fn forward(
        &self,
        states: &Tensor,
        mask: &Tensor,
        dropout: Option<&mut Dropout>,
    ) -> Result<HeadOutputs> {
        let states = match dropout {
            Some(dropout) => dropout.apply(states)?,
            None => states.clone(),
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
        let out = self.forward(&states, &mask, None)?;
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

/// Checks that `tuned` holds tensors of exactly the top
/// `reference.tuned_layers` layers of the encoder, each of them present.
pub fn check_tuned(
    reference: &EncoderRef,
    tuned: &HashMap<String, Tensor>,
) -> std::result::Result<(), ModelError> {
    let total = reference
        .config
        .get("num_hidden_layers")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let count = reference.tuned_layers;
    if count > total {
        return Err(invalid(
            CONFIG_FILE,
            format!("{count} tuned layers for an encoder of {total}"),
        ));
    }
    let first = total - count;
    let mut seen = vec![false; count];
    for name in tuned.keys() {
        let index = name
            .split("encoder.layer.")
            .nth(1)
            .and_then(|rest| rest.split('.').next())
            .and_then(|i| i.parse::<usize>().ok());
        match index {
            Some(i) if (first..total).contains(&i) => seen[i - first] = true,
            _ => {
                return Err(invalid(
                    TUNED_FILE,
                    format!("{name} is not a tensor of the top {count} layers"),
                ))
            }
        }
    }
    match seen.iter().position(|s| !s) {
        Some(missing) => Err(invalid(
            TUNED_FILE,
            format!("no tensors for layer {}", first + missing),
        )),
        None => Ok(()),
    }
}

/// Writes a minilm model directory: `heads.safetensors`, the `tuned` encoder
/// tensors (named as in the encoder's weights file) in `encoder_top.safetensors`
/// unless there are none, `config.json` (its `model_version` set from the
/// weights' hash when empty), `tools.json` and `manifest.json`. Returns the
/// config as written.
pub fn write_minilm_dir(
    dir: &Path,
    mut config: ModelConfig,
    tools: &[ToolSpec],
    weights: &HashMap<String, Tensor>,
    tuned: &HashMap<String, Tensor>,
) -> std::result::Result<ModelConfig, ModelError> {
    let io = |path: PathBuf| move |source| ModelError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let weights_path = dir.join(HEADS_FILE);
    candle_core::safetensors::save(weights, &weights_path)?;
    let weights_bytes = std::fs::read(&weights_path).map_err(io(weights_path.clone()))?;
    let tuned_path = dir.join(TUNED_FILE);
    let tuned_bytes = if tuned.is_empty() {
        match std::fs::remove_file(&tuned_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(tuned_path)(e)),
            _ => None,
        }
    } else {
        candle_core::safetensors::save(tuned, &tuned_path)?;
        Some(std::fs::read(&tuned_path).map_err(io(tuned_path.clone()))?)
    };
    if config.model_version.is_empty() {
        let hash = match &tuned_bytes {
            None => sha256_hex(&weights_bytes),
            Some(bytes) => sha256_hex(
                format!("{}{}", sha256_hex(&weights_bytes), sha256_hex(bytes)).as_bytes(),
            ),
        };
        config.model_version = format!("toolforge-{}-{}", config.backbone, &hash[..12]);
    }
    let config_bytes = json(&config, CONFIG_FILE)?;
    let tools_bytes = json(&tools, TOOLS_FILE)?;
    let mut files: Vec<(&str, &[u8])> = vec![
        (CONFIG_FILE, &config_bytes),
        (TOOLS_FILE, &tools_bytes),
        (HEADS_FILE, &weights_bytes),
    ];
    if let Some(bytes) = &tuned_bytes {
        files.push((TUNED_FILE, bytes));
    }
    let manifest = Manifest::of(&config.model_version, &files);
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

    const PIECES: [&str; 8] = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "weather", "in", "paris", "?",
    ];

    /// A model directory with random heads over a random encoder in `encoder`.
    fn random_model(dir: &Path, encoder: &Path) {
        write_random_encoder(encoder, &PIECES, 16, 1).unwrap();
        write_random_heads(dir, encoder, 0, &HashMap::new());
    }

    /// Random heads over the encoder in `encoder`, with `tuned` tensors of its
    /// top `tuned_layers` layers.
    fn write_random_heads(
        dir: &Path,
        encoder: &Path,
        tuned_layers: usize,
        tuned: &HashMap<String, Tensor>,
    ) {
        let pieces = PIECES;
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
                tuned_layers,
            }),
            tools: infos,
            unsupported_output: false,
            unsupported_threshold: 0.5,
            slots,
            temperature: 1.0,
            threshold: 0.0,
            tool_threshold: 0.5,
            members: 1,
            training: Value::Null,
        };
        write_minilm_dir(dir, config, &tools, &weights, tuned).unwrap();
    }

    /// The tensors of layer `index` of the encoder in `encoder`, scaled by `factor`.
    fn scaled_layer(encoder: &Path, index: usize, factor: f64) -> HashMap<String, Tensor> {
        Encoder::load(encoder)
            .unwrap()
            .layer_tensors(index)
            .unwrap()
            .into_iter()
            .map(|(name, t)| (name, (t * factor).unwrap()))
            .collect()
    }

    #[test]
    fn int8_precision_keeps_the_states_close_and_rejects_odd_widths() {
        let tmp = tempfile::tempdir().unwrap();
        let encoder = tmp.path().join("encoder");
        write_random_encoder(&encoder, &PIECES, 64, 2).unwrap();
        let query = ["what is the weather in paris"];
        let float = Encoder::load(&encoder).unwrap();
        let int8 = Encoder::load(&encoder)
            .unwrap()
            .with_precision(Precision::Int8)
            .unwrap();
        let want = &float.encode_batch(&query, MAX_PIECES).unwrap()[0];
        let got = &int8.encode_batch(&query, MAX_PIECES).unwrap()[0];
        assert_eq!(got.tokens, want.tokens);
        let worst = ::toolforge_model::max_abs_diff(&got.states, &want.states).unwrap();
        assert!(worst > 0.0 && worst < 0.1, "int8 states differ by {worst}");

        let narrow = tmp.path().join("narrow");
        write_random_encoder(&narrow, &PIECES, 16, 1).unwrap();
        let err = Encoder::load(&narrow)
            .unwrap()
            .with_precision(Precision::Int8)
            .unwrap_err();
        assert!(err.to_string().contains(ENCODER_WEIGHTS), "{err}");
    }

    #[test]
    fn precision_parses_f32_and_int8_only() {
        assert_eq!("".parse::<Precision>().unwrap(), Precision::F32);
        assert_eq!(" INT8 ".parse::<Precision>().unwrap(), Precision::Int8);
        let err = "int4".parse::<Precision>().unwrap_err();
        assert!(err.to_string().contains(PRECISION_ENV), "{err}");
    }

    #[test]
    fn tuned_layers_replace_the_pretrained_ones_at_load() {
        let tmp = tempfile::tempdir().unwrap();
        let encoder = tmp.path().join("encoder");
        write_random_encoder(&encoder, &PIECES, 16, 2).unwrap();
        let tuned = scaled_layer(&encoder, 1, 1.5);
        assert_eq!(tuned.len(), 16);
        assert!(tuned.keys().all(|k| k.starts_with("encoder.layer.1.")));
        let model_dir = tmp.path().join("model");
        write_random_heads(&model_dir, &encoder, 1, &tuned);
        assert!(model_dir.join(TUNED_FILE).is_file());
        let manifest = std::fs::read_to_string(model_dir.join(MANIFEST_FILE)).unwrap();
        assert!(manifest.contains(TUNED_FILE));

        // The same weights written as a whole encoder give the same states.
        let mut all =
            candle_core::safetensors::load(encoder.join(ENCODER_WEIGHTS), &Device::Cpu).unwrap();
        all.extend(tuned.clone());
        let merged = tmp.path().join("merged");
        std::fs::create_dir_all(&merged).unwrap();
        for name in [ENCODER_CONFIG, ENCODER_TOKENIZER] {
            std::fs::copy(encoder.join(name), merged.join(name)).unwrap();
        }
        candle_core::safetensors::save(&all, merged.join(ENCODER_WEIGHTS)).unwrap();

        let router = ToolForgeRouter::new(&model_dir);
        let model = router.model().unwrap();
        let query = ["weather in paris?"];
        let states = |e: &Encoder| -> Vec<f32> {
            e.encode_batch(&query, MAX_PIECES).unwrap()[0]
                .states
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let tuned_states = states(model.encoder().unwrap());
        let merged_states = states(&Encoder::load(&merged).unwrap());
        let pretrained_states = states(&Encoder::load(&encoder).unwrap());
        assert_eq!(tuned_states, merged_states);
        assert_ne!(tuned_states, pretrained_states);

        // A replaced tuned file fails the manifest check.
        let other = scaled_layer(&encoder, 1, 0.5);
        candle_core::safetensors::save(&other, model_dir.join(TUNED_FILE)).unwrap();
        assert!(crate::toolforge_model::ToolForgeModel::load_dir(&model_dir).is_err());
    }

    #[test]
    fn tuned_tensors_must_be_the_top_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let encoder = tmp.path().join("encoder");
        write_random_encoder(&encoder, &PIECES, 16, 2).unwrap();
        let reference = |tuned_layers| EncoderRef {
            path: encoder.to_string_lossy().into_owned(),
            config: serde_json::json!({"num_hidden_layers": 2}),
            hidden: 16,
            dim: 8,
            max_pieces: MAX_PIECES,
            tuned_layers,
        };
        let top = scaled_layer(&encoder, 1, 1.0);
        let bottom = scaled_layer(&encoder, 0, 1.0);
        check_tuned(&reference(1), &top).unwrap();
        assert!(check_tuned(&reference(1), &bottom).is_err());
        assert!(check_tuned(&reference(2), &top).is_err(), "layer 0 missing");
        let mut both = top.clone();
        both.extend(bottom);
        check_tuned(&reference(2), &both).unwrap();
        assert!(check_tuned(&reference(3), &both).is_err());
        let mut unknown = top;
        unknown.insert(
            "encoder.layer.1.extra.weight".into(),
            Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
        );
        check_tuned(&reference(1), &unknown).unwrap();
        assert!(Encoder::load_tuned(&encoder, unknown).is_err());
    }

    #[test]
    fn bottom_layers_and_specials() {
        let tmp = tempfile::tempdir().unwrap();
        let encoder = tmp.path().join("encoder");
        write_random_encoder(&encoder, &PIECES, 16, 2).unwrap();
        let full = Encoder::load(&encoder).unwrap();
        let bottom = Encoder::load_bottom(&encoder, 1).unwrap();
        assert_eq!((full.layers(), bottom.layers()), (2, 1));
        assert!(Encoder::load_bottom(&encoder, 3).is_err());
        assert_eq!(full.layer_name(1), "encoder.layer.1");
        let queries = ["weather in paris?", "paris"];
        let plain = full.encode_batch(&queries, MAX_PIECES).unwrap();
        let with = full
            .encode_batch_with_specials(&queries, MAX_PIECES)
            .unwrap();
        for (p, w) in plain.iter().zip(&with) {
            assert_eq!(w.states.dims()[0], p.tokens.len() + 2);
            let inner: Vec<f32> = w
                .states
                .narrow(0, 1, p.tokens.len())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(
                inner,
                p.states.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
        }
        let low = bottom.encode_batch(&queries, MAX_PIECES).unwrap();
        assert_ne!(
            low[0]
                .states
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            plain[0]
                .states
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
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
        // A frozen-encoder directory keeps the format it had before tuned layers.
        let config = std::fs::read_to_string(model_dir.join(CONFIG_FILE)).unwrap();
        assert!(!config.contains("tuned_layers"));
        assert!(!model_dir.join(TUNED_FILE).exists());
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
