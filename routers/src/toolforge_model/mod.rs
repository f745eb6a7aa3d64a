//! `ToolForgeRouter`: the learned router stage. A small transformer over our own
//! token features ([`features`]) predicts the tool set (multi-label) and BIO tags
//! of argument spans ([`network`]); [`decode`] turns them into validated calls.
//! The model directory is loaded lazily on the first query; when it is missing or
//! broken the router reports [`RouteError::Unavailable`] (every time, never a
//! panic), and when it is unsure it abstains, so a chain falls back to regex.
//!
//! Two backbones exist: `compact` (our own tokenizer and small transformer,
//! embedded in the binary) and `minilm` ([`minilm`]: a pretrained BERT encoder,
//! frozen or with fine-tuned top layers, under trained heads, loaded from its
//! own directory).
//!
//! Confidence is the calibrated probability of the predicted tool set: the
//! product over tools of `p` (chosen) or `1 - p` (not chosen) under
//! temperature-scaled sigmoids; below the model's threshold the router abstains.

pub mod decode;
pub mod files;
pub mod minilm;

/// The models themselves live in `toolforge-model`, written once for training
/// and inference; these paths stay for the decoders and loaders here.
pub use ::toolforge_model::{bert, features, fused, infer, network, stored, wordpiece};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use toolforge_core::{RouteContext, RouteDecision, RouteError, Router, ToolSpec};

use crate::regex_router::text::MAX_QUERY_BYTES;
use decode::{Decoder, Scored};
use features::{tokenize, Token, Vocab, VocabFile, SHAPES, VOCAB_FORMAT};
use files::{
    member_prefix, sha256_hex, Manifest, ModelConfig, CONFIG_FILE, MANIFEST_FILE, MODEL_FORMAT,
    TOOLS_FILE, VOCAB_FILE, WEIGHTS_FILE,
};
use infer::{InferenceNet, NetOutput};
use minilm::{Encoder, EncoderRef, Heads, HEADS_FILE, TUNED_FILE};
use network::Network;

/// Name reported in decisions.
pub const NAME: &str = "toolforge";

/// Why a model could not be loaded, saved or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's content is malformed or inconsistent with the rest of the model.
    #[error("invalid {file}: {message}")]
    Invalid {
        /// Name of the file (e.g. `config.json`).
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// The pretrained MiniLM encoder a `minilm` model needs is not there.
    #[error(
        "the MiniLM encoder is missing in {path} ({reason}); fetch it with \
         scripts/fetch-minilm.sh or set TOOLFORGE_MINILM_DIR to its directory"
    )]
    EncoderMissing {
        /// The directory where the encoder was looked for.
        path: PathBuf,
        /// Why it could not be loaded (e.g. the missing file).
        reason: String,
    },
    /// A tensor operation failed.
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub(crate) fn invalid(file: &str, message: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid {
        file: file.to_string(),
        message: message.to_string(),
    }
}

/// The raw files of a model directory.
#[derive(Debug, Clone, Copy)]
pub struct ModelFiles<'a> {
    /// `config.json`: the [`ModelConfig`].
    pub config: &'a [u8],
    /// `vocab.json`: the [`VocabFile`].
    pub vocab: &'a [u8],
    /// `tools.json`: the tool specs the model was trained on.
    pub tools: &'a [u8],
    /// `model.safetensors`: the network weights.
    pub weights: &'a [u8],
    /// `manifest.json`; when present every file is checked against it.
    pub manifest: Option<&'a [u8]>,
}

/// What the network says about one query, before decoding.
#[derive(Debug, Clone)]
pub struct QueryScores {
    /// The tokens the model read, as byte offsets into the query.
    pub tokens: Vec<Token>,
    /// The query had more tokens than the model reads.
    pub truncated: bool,
    /// Raw (not temperature-scaled) tool logits.
    pub tool_logits: Vec<f32>,
    /// `tokens.len() * tags` tag logits.
    pub tag_logits: Vec<f32>,
    /// The sentence vector the tool head reads (`compact`; empty for `minilm`).
    pub sentence: Vec<f32>,
}

/// The network part of a loaded model.
#[derive(Debug, Clone)]
enum Backbone {
    Compact {
        vocab: Vocab,
        /// Every member's weights, in inference form; their outputs are
        /// averaged. The candle networks are rebuilt from them on demand.
        fast: Arc<[InferenceNet]>,
    },
    Minilm {
        encoder: Arc<Encoder>,
        heads: Heads,
        max_pieces: usize,
    },
}

/// A loaded model: config, tool specs, backbone and decoder.
#[derive(Debug, Clone)]
pub struct ToolForgeModel {
    config: ModelConfig,
    tools: Vec<ToolSpec>,
    backbone: Backbone,
    decoder: Decoder,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl ToolForgeModel {
    /// Loads a model directory (either backbone, from its `config.json`).
    pub fn load_dir(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ModelError::Io { path, source })
        };
        let config = read(CONFIG_FILE)?;
        let backbone: serde_json::Value =
            serde_json::from_slice(&config).map_err(|e| invalid(CONFIG_FILE, e))?;
        if backbone.get("backbone").and_then(serde_json::Value::as_str) == Some(minilm::BACKBONE) {
            return Self::load_minilm_dir(dir, &config);
        }
        let vocab = read(VOCAB_FILE)?;
        let tools = read(TOOLS_FILE)?;
        let weights = read(WEIGHTS_FILE)?;
        let manifest = match read(MANIFEST_FILE) {
            Ok(bytes) => Some(bytes),
            Err(ModelError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                None
            }
            Err(e) => return Err(e),
        };
        Self::from_files(&ModelFiles {
            config: &config,
            vocab: &vocab,
            tools: &tools,
            weights: &weights,
            manifest: manifest.as_deref(),
        })
    }

    /// Loads a `minilm` model directory whose `config.json` is `config_bytes`.
    fn load_minilm_dir(dir: &Path, config_bytes: &[u8]) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ModelError::Io { path, source })
        };
        let config: ModelConfig =
            serde_json::from_slice(config_bytes).map_err(|e| invalid(CONFIG_FILE, e))?;
        let reference = config
            .encoder
            .clone()
            .ok_or_else(|| invalid(CONFIG_FILE, "a minilm model needs an `encoder` entry"))?;
        let tools_bytes = read(TOOLS_FILE)?;
        let weights = read(HEADS_FILE)?;
        let tuned_bytes = if reference.tuned_layers > 0 {
            Some(read(TUNED_FILE)?)
        } else {
            None
        };
        match read(MANIFEST_FILE) {
            Ok(bytes) => {
                let manifest: Manifest =
                    serde_json::from_slice(&bytes).map_err(|e| invalid(MANIFEST_FILE, e))?;
                let mut files = vec![
                    (CONFIG_FILE, config_bytes),
                    (TOOLS_FILE, &tools_bytes),
                    (HEADS_FILE, &weights),
                ];
                if let Some(tuned) = &tuned_bytes {
                    files.push((TUNED_FILE, tuned));
                }
                for (name, content) in files {
                    manifest
                        .check(name, content)
                        .map_err(|m| invalid(MANIFEST_FILE, m))?;
                }
            }
            Err(ModelError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            }
            Err(e) => return Err(e),
        }
        let tools: Vec<ToolSpec> =
            serde_json::from_slice(&tools_bytes).map_err(|e| invalid(TOOLS_FILE, e))?;
        let encoder_dir = minilm::encoder_dir(&reference, Some(dir));
        let encoder = match &tuned_bytes {
            None => Encoder::load(&encoder_dir)?,
            Some(bytes) => {
                let tuned = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
                    .map_err(|e| invalid(TUNED_FILE, e))?;
                minilm::check_tuned(&reference, &tuned)?;
                Encoder::load_tuned(&encoder_dir, tuned)?
            }
        };
        let precision = minilm::Precision::from_env()?;
        let encoder = encoder.with_precision(precision)?;
        let mut config = config;
        if precision == minilm::Precision::Int8 {
            config.model_version.push_str("+int8");
        }
        let vb = VarBuilder::from_slice_safetensors(&weights, DType::F32, &Device::Cpu)
            .map_err(|e| invalid(HEADS_FILE, e))?;
        let heads = Heads::new(
            &vb,
            reference.hidden,
            reference.dim,
            config.head_outputs(),
            config.tag_count(),
        )
        .map_err(|e| invalid(HEADS_FILE, e))?;
        Self::from_minilm(config, tools, Arc::new(encoder), heads)
    }

    /// A `minilm` model from an encoder and heads already in memory (the
    /// trainer's, for instance); the heads are detached from autograd.
    pub fn from_minilm(
        config: ModelConfig,
        tools: Vec<ToolSpec>,
        encoder: Arc<Encoder>,
        heads: Heads,
    ) -> Result<Self, ModelError> {
        if config.format != MODEL_FORMAT {
            return Err(invalid(
                CONFIG_FILE,
                format!("unsupported format {}", config.format),
            ));
        }
        if config.backbone != minilm::BACKBONE {
            return Err(invalid(CONFIG_FILE, "the backbone is not minilm"));
        }
        if config.members != 1 {
            return Err(invalid(CONFIG_FILE, "a minilm model has one member"));
        }
        let reference: &EncoderRef = config
            .encoder
            .as_ref()
            .ok_or_else(|| invalid(CONFIG_FILE, "a minilm model needs an `encoder` entry"))?;
        minilm::check_encoder(reference, &encoder)?;
        if !(config.temperature.is_finite() && config.temperature > 0.0) {
            return Err(invalid(CONFIG_FILE, "temperature must be positive"));
        }
        let max_pieces = reference.max_pieces.clamp(1, minilm::MAX_PIECES);
        let decoder = Decoder::new(&config).map_err(|m| invalid(CONFIG_FILE, m))?;
        Ok(Self {
            config,
            tools,
            backbone: Backbone::Minilm {
                encoder,
                heads: heads.detached(),
                max_pieces,
            },
            decoder,
        })
    }

    /// Loads a `compact` model from the bytes of its files.
    pub fn from_files(files: &ModelFiles<'_>) -> Result<Self, ModelError> {
        if let Some(bytes) = files.manifest {
            let manifest: Manifest =
                serde_json::from_slice(bytes).map_err(|e| invalid(MANIFEST_FILE, e))?;
            for (name, content) in [
                (CONFIG_FILE, files.config),
                (VOCAB_FILE, files.vocab),
                (TOOLS_FILE, files.tools),
                (WEIGHTS_FILE, files.weights),
            ] {
                manifest
                    .check(name, content)
                    .map_err(|m| invalid(MANIFEST_FILE, m))?;
            }
        }
        let config: ModelConfig =
            serde_json::from_slice(files.config).map_err(|e| invalid(CONFIG_FILE, e))?;
        if config.backbone == minilm::BACKBONE {
            return Err(invalid(
                CONFIG_FILE,
                "a minilm model is loaded from its directory, not from embedded files",
            ));
        }
        let vocab_file: VocabFile =
            serde_json::from_slice(files.vocab).map_err(|e| invalid(VOCAB_FILE, e))?;
        if vocab_file.format != VOCAB_FORMAT {
            return Err(invalid(
                VOCAB_FILE,
                format!("unsupported format {}", vocab_file.format),
            ));
        }
        let tools: Vec<ToolSpec> =
            serde_json::from_slice(files.tools).map_err(|e| invalid(TOOLS_FILE, e))?;
        let vocab = Vocab::from_file(vocab_file);
        check_parts(&config, &vocab)?;
        let mut weights = read_weights(files.weights)?;
        // One member at a time, its tensors dropped once copied, so loading
        // never holds more than one extra copy of a member.
        let fast = (0..config.members)
            .map(|k| {
                let member: HashMap<String, Tensor> = if config.members > 1 {
                    let prefix = format!("{}.", member_prefix(k));
                    let names: Vec<String> = weights
                        .keys()
                        .filter(|name| name.starts_with(&prefix))
                        .cloned()
                        .collect();
                    names
                        .into_iter()
                        .filter_map(|name| {
                            let tensor = weights.remove(&name)?;
                            Some((name[prefix.len()..].to_string(), tensor))
                        })
                        .collect()
                } else {
                    std::mem::take(&mut weights)
                };
                if member.is_empty() {
                    return Err(invalid(
                        WEIGHTS_FILE,
                        if config.members > 1 {
                            format!(
                                "{CONFIG_FILE} names {} members, but the weights have no {}",
                                config.members,
                                member_prefix(k)
                            )
                        } else {
                            "the weights are empty".to_string()
                        },
                    ));
                }
                let vb = VarBuilder::from_tensors(member, DType::F32, &Device::Cpu);
                let network = Network::new(&vb, &config.architecture)
                    .map_err(|e| invalid(WEIGHTS_FILE, e))?;
                Ok(InferenceNet::from_network(&network)?)
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Self::from_fast(config, vocab, tools, fast)
    }

    /// A model from parts already in memory (the trainer's network, for instance).
    /// Routing uses a copy of the network's weights taken now, with any static
    /// word vectors folded into the word table.
    pub fn from_parts(
        config: ModelConfig,
        vocab: Vocab,
        tools: Vec<ToolSpec>,
        network: Network,
    ) -> Result<Self, ModelError> {
        Self::from_members(config, vocab, tools, vec![network])
    }

    /// An ensemble from its members' networks (as many as `config.members`, one
    /// architecture): a query's tool and tag logits are the members' means.
    pub fn from_members(
        config: ModelConfig,
        vocab: Vocab,
        tools: Vec<ToolSpec>,
        networks: Vec<Network>,
    ) -> Result<Self, ModelError> {
        check_parts(&config, &vocab)?;
        if networks
            .iter()
            .any(|network| network.arch() != &config.architecture)
        {
            return Err(invalid(
                CONFIG_FILE,
                "a network's architecture differs from the config",
            ));
        }
        let fast = networks
            .iter()
            .map(InferenceNet::from_network)
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_fast(config, vocab, tools, fast)
    }

    /// A `compact` model from its members' inference copies.
    fn from_fast(
        config: ModelConfig,
        vocab: Vocab,
        tools: Vec<ToolSpec>,
        fast: Vec<InferenceNet>,
    ) -> Result<Self, ModelError> {
        if fast.len() != config.members {
            return Err(invalid(
                CONFIG_FILE,
                format!(
                    "members is {}, but {} networks were given",
                    config.members,
                    fast.len()
                ),
            ));
        }
        let decoder = Decoder::new(&config).map_err(|m| invalid(CONFIG_FILE, m))?;
        Ok(Self {
            config,
            tools,
            backbone: Backbone::Compact {
                vocab,
                fast: fast.into(),
            },
            decoder,
        })
    }

    /// The model's config (`config.json`).
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The vocabulary of a `compact` model.
    pub fn vocab(&self) -> Option<&Vocab> {
        match &self.backbone {
            Backbone::Compact { vocab, .. } => Some(vocab),
            Backbone::Minilm { .. } => None,
        }
    }

    /// The tool specs the model was trained on.
    pub fn tools(&self) -> &[ToolSpec] {
        &self.tools
    }

    /// The members' candle networks of a `compact` model (empty for `minilm`),
    /// rebuilt from the weights in memory, with any static word vectors folded
    /// into the word table: what a warm start continues.
    pub fn networks(&self) -> Result<Vec<Network>, ModelError> {
        match &self.backbone {
            Backbone::Compact { fast, .. } => fast
                .iter()
                .map(|net| net.to_network(&self.config.architecture))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ModelError::from),
            Backbone::Minilm { .. } => Ok(Vec::new()),
        }
    }

    /// The encoder of a `minilm` model.
    pub fn encoder(&self) -> Option<&Arc<Encoder>> {
        match &self.backbone {
            Backbone::Minilm { encoder, .. } => Some(encoder),
            Backbone::Compact { .. } => None,
        }
    }

    /// The model version recorded in run logs.
    pub fn version(&self) -> &str {
        &self.config.model_version
    }

    /// Runs the network on one query.
    pub fn score(&self, query: &str) -> Result<QueryScores, ModelError> {
        let mut cut = query.len().min(MAX_QUERY_BYTES);
        while !query.is_char_boundary(cut) {
            cut -= 1;
        }
        let query = &query[..cut];
        let (vocab, fast) = match &self.backbone {
            Backbone::Compact { vocab, fast, .. } => (vocab, fast),
            Backbone::Minilm {
                encoder,
                heads,
                max_pieces,
            } => {
                let encoded = encoder
                    .encode_batch(&[query], *max_pieces)?
                    .pop()
                    .ok_or_else(|| invalid(CONFIG_FILE, "the encoder returned nothing"))?;
                return self.score_encoded(heads, &encoded);
            }
        };
        let max = vocab.sizes().max_tokens as usize;
        let mut tokens = tokenize(query, max + 1);
        let truncated = tokens.len() > max;
        tokens.truncate(max);
        if tokens.is_empty() {
            return Ok(QueryScores {
                tokens,
                truncated,
                tool_logits: vec![0.0; self.config.head_outputs()],
                tag_logits: Vec::new(),
                sentence: Vec::new(),
            });
        }
        let texts: Vec<&str> = tokens.iter().map(|t| t.text(query)).collect();
        let features = vocab.featurize(&texts);
        let output = mean_output(fast.iter().map(|net| net.run(&features)));
        Ok(QueryScores {
            tokens,
            truncated,
            tool_logits: output.tools,
            tag_logits: output.tags,
            sentence: output.sentence,
        })
    }

    fn score_encoded(
        &self,
        heads: &Heads,
        encoded: &minilm::Encoded,
    ) -> Result<QueryScores, ModelError> {
        if encoded.tokens.is_empty() {
            return Ok(QueryScores {
                tokens: Vec::new(),
                truncated: encoded.truncated,
                tool_logits: vec![0.0; self.config.head_outputs()],
                tag_logits: Vec::new(),
                sentence: Vec::new(),
            });
        }
        let (tool_logits, tag_logits) = heads.run(&encoded.states)?;
        Ok(QueryScores {
            tokens: encoded.tokens.clone(),
            truncated: encoded.truncated,
            tool_logits,
            tag_logits,
            sentence: Vec::new(),
        })
    }

    /// Scores of a query already run through this `minilm` model's encoder (the
    /// trainer caches encoder states); `None` for a `compact` model.
    pub fn score_states(
        &self,
        encoded: &minilm::Encoded,
    ) -> Option<Result<QueryScores, ModelError>> {
        match &self.backbone {
            Backbone::Minilm { heads, .. } => Some(self.score_encoded(heads, encoded)),
            Backbone::Compact { .. } => None,
        }
    }

    /// Temperature-scaled tool probabilities for raw logits.
    pub fn probabilities(&self, tool_logits: &[f32]) -> Vec<f32> {
        let t = self.config.temperature.max(1e-3) as f32;
        tool_logits.iter().map(|z| sigmoid(z / t)).collect()
    }

    /// Routes one query. With a `threshold`, a decision whose confidence is below
    /// it becomes an abstention (`Ok(None)`); an empty or undecodable query also
    /// abstains. The model's own threshold is `self.config().threshold`.
    pub fn decide(
        &self,
        query: &str,
        context: &RouteContext,
        threshold: Option<f64>,
    ) -> Result<Option<RouteDecision>, RouteError> {
        let scores = self
            .score(query)
            .map_err(|e| RouteError::Failed(e.to_string()))?;
        self.decide_scored(query, &scores, context, threshold)
    }

    /// [`ToolForgeModel::decide`] from scores already computed for `query`.
    pub fn decide_scored(
        &self,
        query: &str,
        scores: &QueryScores,
        context: &RouteContext,
        threshold: Option<f64>,
    ) -> Result<Option<RouteDecision>, RouteError> {
        if scores.tokens.is_empty() {
            return Ok(None);
        }
        let cut = query.len().min(MAX_QUERY_BYTES);
        let query = query.get(..cut).unwrap_or(query);
        let all_probs = self.probabilities(&scores.tool_logits);
        let n_tools = self.config.tools.len().min(all_probs.len());
        let (probs, outcome) = all_probs.split_at(n_tools);
        let chosen = self.decoder.chosen(probs);
        // The extra output, when the model has one: "no tool can do this".
        let unsupported_p = outcome.first().copied();
        let unsupported = chosen.is_empty()
            && unsupported_p.is_some_and(|p| f64::from(p) >= self.config.unsupported_threshold);
        let confidence: f64 = probs
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let p = f64::from(p);
                if chosen.contains(&i) {
                    p
                } else {
                    1.0 - p
                }
            })
            .product::<f64>()
            * unsupported_p.map_or(1.0, |p| {
                let p = f64::from(p);
                if unsupported {
                    p
                } else if chosen.is_empty() {
                    1.0 - p
                } else {
                    1.0
                }
            });
        let scored = Scored {
            query,
            tokens: &scores.tokens,
            truncated: scores.truncated,
            tool_probs: probs,
            tag_logits: &scores.tag_logits,
        };
        let calls = match self.decoder.decode(&scored, context) {
            Ok(calls) => calls,
            Err(reason) => {
                tracing::debug!(router = NAME, %reason, "abstaining");
                return Ok(None);
            }
        };
        if threshold.is_some_and(|t| confidence < t) {
            tracing::debug!(router = NAME, confidence, "abstaining below threshold");
            return Ok(None);
        }
        Ok(Some(RouteDecision {
            unsupported: unsupported && calls.is_empty(),
            calls,
            router: NAME.to_string(),
            confidence: Some((confidence.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0),
        }))
    }
}

/// The members' mean tool and tag logits; the sentence vectors are
/// concatenated (cosine similarity over them is the members' mean similarity,
/// up to their norms).
fn mean_output(outputs: impl Iterator<Item = NetOutput>) -> NetOutput {
    let mut sum = NetOutput {
        tools: Vec::new(),
        tags: Vec::new(),
        sentence: Vec::new(),
    };
    let mut count = 0usize;
    for output in outputs {
        if count == 0 {
            sum.tools = output.tools;
            sum.tags = output.tags;
        } else {
            sum.tools
                .iter_mut()
                .zip(&output.tools)
                .for_each(|(s, v)| *s += v);
            sum.tags
                .iter_mut()
                .zip(&output.tags)
                .for_each(|(s, v)| *s += v);
        }
        sum.sentence.extend(output.sentence);
        count += 1;
    }
    if count > 1 {
        let n = count as f32;
        sum.tools
            .iter_mut()
            .chain(sum.tags.iter_mut())
            .for_each(|v| *v /= n);
    }
    sum
}

/// Checks that a config and a vocabulary belong together.
fn check_parts(config: &ModelConfig, vocab: &Vocab) -> Result<(), ModelError> {
    if config.format != MODEL_FORMAT {
        return Err(invalid(
            CONFIG_FILE,
            format!("unsupported format {}", config.format),
        ));
    }
    let arch = &config.architecture;
    arch.check().map_err(|m| invalid(CONFIG_FILE, m))?;
    let sizes = vocab.sizes();
    let expected = [
        ("tools", arch.tools, config.head_outputs()),
        ("tags", arch.tags, config.tag_count()),
        ("word_rows", arch.word_rows, vocab.word_rows()),
        (
            "ngram_buckets",
            arch.ngram_buckets,
            sizes.ngram_buckets as usize,
        ),
        ("max_ngrams", arch.max_ngrams, sizes.max_ngrams as usize),
        ("max_tokens", arch.max_tokens, sizes.max_tokens as usize),
        ("shapes", arch.shapes, SHAPES),
    ];
    for (name, got, want) in expected {
        if got != want {
            return Err(invalid(
                CONFIG_FILE,
                format!("architecture.{name} is {got}, the model files need {want}"),
            ));
        }
    }
    if !(config.temperature.is_finite() && config.temperature > 0.0) {
        return Err(invalid(CONFIG_FILE, "temperature must be positive"));
    }
    if config.members == 0 || config.members > MAX_MEMBERS {
        return Err(invalid(
            CONFIG_FILE,
            format!("members must be 1 to {MAX_MEMBERS}, not {}", config.members),
        ));
    }
    Ok(())
}

/// The most networks one model may average.
pub const MAX_MEMBERS: usize = 16;

/// Tables stored as 8-bit rows ([`stored`]): most of a compact model's bytes.
const EMBEDDING_TABLES: &[&str] = &["emb.word", "emb.ngram"];

/// The weight map of a `compact` model's `model.safetensors` bytes, tables
/// restored from their stored form (8-bit rows, or f16 in older files).
pub fn read_weights(bytes: &[u8]) -> Result<HashMap<String, Tensor>, ModelError> {
    let raw = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| invalid(WEIGHTS_FILE, e))?;
    stored::unpack(raw).map_err(|e| invalid(WEIGHTS_FILE, e))
}

/// Writes a model directory: weights (embedding tables as 8-bit rows), `config.json` (its `model_version` set from
/// the weights' hash when empty), `vocab.json`, `tools.json` and `manifest.json`.
/// Returns the config as written.
pub fn write_model_dir(
    dir: &Path,
    config: ModelConfig,
    vocab: &Vocab,
    tools: &[ToolSpec],
    weights: &HashMap<String, Tensor>,
) -> Result<ModelConfig, ModelError> {
    write_members_dir(dir, config, vocab, tools, std::slice::from_ref(weights))
}

/// [`write_model_dir`] for an ensemble: one weight map per member, sharing the
/// vocabulary, tools and config (whose `members` is set to their number).
pub fn write_members_dir(
    dir: &Path,
    mut config: ModelConfig,
    vocab: &Vocab,
    tools: &[ToolSpec],
    members: &[HashMap<String, Tensor>],
) -> Result<ModelConfig, ModelError> {
    if members.is_empty() || members.len() > MAX_MEMBERS {
        return Err(invalid(
            WEIGHTS_FILE,
            format!(
                "a model has 1 to {MAX_MEMBERS} members, not {}",
                members.len()
            ),
        ));
    }
    config.members = members.len();
    let io = |path: PathBuf| move |source| ModelError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut named = HashMap::new();
    for (k, weights) in members.iter().enumerate() {
        for (name, tensor) in weights {
            let name = if members.len() > 1 {
                format!("{}.{name}", member_prefix(k))
            } else {
                name.clone()
            };
            named.insert(name, tensor.to_dtype(DType::F32)?);
        }
    }
    // The embedding tables are most of the weights and lose nothing that
    // matters in 8 bits per entry (they load back as f32).
    let stored = stored::pack(&named, EMBEDDING_TABLES)?;
    candle_core::safetensors::save(&stored, &weights_path)?;
    let weights_bytes = std::fs::read(&weights_path).map_err(io(weights_path.clone()))?;
    if config.model_version.is_empty() {
        let hash = sha256_hex(&weights_bytes);
        config.model_version = format!("toolforge-{}-{}", config.backbone, &hash[..12]);
    }
    let config_bytes = json(&config, CONFIG_FILE)?;
    let vocab_bytes = json(&vocab.to_file(), VOCAB_FILE)?;
    let tools_bytes = json(&tools, TOOLS_FILE)?;
    let manifest = Manifest::of(
        &config.model_version,
        &[
            (CONFIG_FILE, &config_bytes),
            (VOCAB_FILE, &vocab_bytes),
            (TOOLS_FILE, &tools_bytes),
            (WEIGHTS_FILE, &weights_bytes),
        ],
    );
    let manifest_bytes = json(&manifest, MANIFEST_FILE)?;
    for (name, bytes) in [
        (CONFIG_FILE, &config_bytes),
        (VOCAB_FILE, &vocab_bytes),
        (TOOLS_FILE, &tools_bytes),
        (MANIFEST_FILE, &manifest_bytes),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(path.clone()))?;
    }
    Ok(config)
}

/// Pretty JSON with a final newline.
pub(crate) fn json<T: serde::Serialize>(value: &T, file: &str) -> Result<Vec<u8>, ModelError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| invalid(file, e))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Files of the default model compiled into the binary.
struct EmbeddedModel {
    config: &'static [u8],
    vocab: &'static [u8],
    tools: &'static [u8],
    weights: &'static [u8],
    manifest: Option<&'static [u8]>,
}

// Defines `EMBEDDED: Option<EmbeddedModel>` (generated by build.rs from `models/compact/`).
include!(concat!(env!("OUT_DIR"), "/embedded_model.rs"));

/// Whether a default model was compiled into this binary.
pub fn has_embedded_model() -> bool {
    EMBEDDED.is_some()
}

#[derive(Debug, Clone)]
enum Source {
    Dir(PathBuf),
    Embedded,
    Memory,
}

type Loaded = Result<Arc<ToolForgeModel>, String>;

/// The learned router stage (`"toolforge"`). Cheap to clone: clones share the
/// loaded model.
#[derive(Debug, Clone)]
pub struct ToolForgeRouter {
    source: Source,
    model: Arc<OnceLock<Loaded>>,
    threshold: Option<f64>,
}

impl ToolForgeRouter {
    /// A router over the model directory `model_dir`, loaded on the first query.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::Dir(model_dir.into()),
            model: Arc::new(OnceLock::new()),
            threshold: None,
        }
    }

    /// The router over the default model compiled into the binary
    /// (`routers/models/compact/` at build time), loaded on the first query.
    pub fn embedded() -> Self {
        Self {
            source: Source::Embedded,
            model: Arc::new(OnceLock::new()),
            threshold: None,
        }
    }

    /// A router over a model already in memory.
    pub fn from_model(model: ToolForgeModel) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(Ok(Arc::new(model)));
        Self {
            source: Source::Memory,
            model: Arc::new(cell),
            threshold: None,
        }
    }

    /// Replaces the model's own abstention threshold (its `config.json`
    /// `threshold`) with `threshold`, a confidence in `[0, 1]`; `0` never abstains
    /// on confidence, which suits the model running alone without a fallback.
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.threshold = Some(threshold.clamp(0.0, 1.0));
        self
    }

    /// Whether `self` and `other` share one loaded model (one is a clone of the
    /// other), so the model is read and held in memory once.
    pub fn shares_model_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.model, &other.model)
    }

    /// The model directory, for routers made with [`ToolForgeRouter::new`].
    pub fn model_dir(&self) -> Option<&Path> {
        match &self.source {
            Source::Dir(dir) => Some(dir),
            _ => None,
        }
    }

    /// The model, loading it on first use; a load failure is reported (again) on
    /// every call.
    pub fn model(&self) -> Result<Arc<ToolForgeModel>, RouteError> {
        self.model
            .get_or_init(|| self.load())
            .clone()
            .map_err(RouteError::Unavailable)
    }

    fn load(&self) -> Loaded {
        let loaded = match &self.source {
            Source::Dir(dir) => ToolForgeModel::load_dir(dir)
                .map_err(|e| format!("cannot load the router model in {}: {e}", dir.display())),
            Source::Embedded => match &EMBEDDED {
                Some(files) => ToolForgeModel::from_files(&ModelFiles {
                    config: files.config,
                    vocab: files.vocab,
                    tools: files.tools,
                    weights: files.weights,
                    manifest: files.manifest,
                })
                .map_err(|e| format!("cannot load the embedded router model: {e}")),
                None => Err("no embedded model; train one with `toolforge train`".to_string()),
            },
            Source::Memory => Err("the in-memory model is missing".to_string()),
        };
        if let Err(reason) = &loaded {
            tracing::warn!(router = NAME, %reason, "router model unavailable");
        }
        loaded.map(Arc::new)
    }

    /// Routes synchronously (pure CPU work).
    pub fn route_sync(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        let model = self.model()?;
        let threshold = self.threshold.unwrap_or(model.config().threshold);
        model.decide(query, context, Some(threshold))
    }
}

#[async_trait]
impl Router for ToolForgeRouter {
    fn name(&self) -> &str {
        NAME
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        self.route_sync(query, context)
    }

    fn model_version(&self) -> Option<String> {
        self.model().ok().map(|m| m.version().to_string())
    }
}

#[cfg(test)]
mod tests;
