//! Training of the ToolForge router model on CPU with candle: vocabulary from the
//! training split, labeled arguments aligned to token spans (BIO tags), AdamW on
//! tool BCE + tag cross-entropy with cheap augmentation towards human queries
//! (lowercase, no final punctuation, typos, word dropout), validation after each
//! epoch through the router's own decoder, best checkpoint and early stopping,
//! temperature calibration on validation, and the model directory written with
//! its training curve and report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{ParamsAdamW, VarBuilder, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use toolforge_core::{RouteContext, RouteDecision, RouteError, ToolCall, ToolSpec};
use toolforge_model::features::{
    normalize_word, tokenize, FeatureSizes, Features, Token, Vocab, SHAPES,
};
use toolforge_model::network::{
    fold_static_weights, training_builder, ArchConfig, Batch, Dropout, Network, Rng, StaticWords,
    STATIC_PROJ,
};
use toolforge_routers::toolforge_model::decode::{convert_span, tag_begin, tag_inside};
use toolforge_routers::toolforge_model::files::{
    describe_tools, ModelConfig, SlotInfo, MODEL_FORMAT, WEIGHTS_FILE,
};
use toolforge_routers::toolforge_model::{write_model_dir, ModelError, ToolForgeModel};

use crate::dataset::Example;
use crate::eval::{evaluate, Prediction};
use crate::plot::{curves_svg, PlotError};

pub mod ensemble;
mod minilm;
mod optim;
pub mod static_vectors;
mod tune;
mod warm;

use optim::SparseAdamW;
pub use warm::WarmStart;

/// The network family to train.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backbone {
    /// Our own tokenizer and a small transformer encoder (a few MB).
    #[default]
    Compact,
    /// A pretrained MiniLM (BERT) encoder under trained heads, its top
    /// [`TrainConfig::tune_layers`] layers fine-tuned with them.
    Minilm,
}

impl Backbone {
    /// The backbone's name in configs and reports (`compact` or `minilm`).
    pub fn name(&self) -> &'static str {
        match self {
            Backbone::Compact => "compact",
            Backbone::Minilm => "minilm",
        }
    }
}

/// Probabilities of the training-time augmentations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Lowercase the whole query.
    pub lowercase: f32,
    /// Drop a final `?`, `.` or `!`.
    pub drop_final_punct: f32,
    /// Put one character typo in a word outside the arguments.
    pub typo: f32,
    /// Per token: replace its vocabulary id by its out-of-vocabulary bucket, so
    /// that the model also learns from character n-grams.
    pub word_dropout: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            lowercase: 0.35,
            drop_final_punct: 0.35,
            typo: 0.25,
            word_dropout: 0.2,
        }
    }
}

impl Augment {
    /// No augmentation.
    pub fn none() -> Self {
        Self {
            lowercase: 0.0,
            drop_final_punct: 0.0,
            typo: 0.0,
            word_dropout: 0.0,
        }
    }
}

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The network family (default `compact`).
    pub backbone: Backbone,
    /// Width of token vectors.
    pub dim: usize,
    /// `compact`: transformer layers (default 2).
    pub layers: usize,
    /// `compact`: attention heads per layer (default 4).
    pub heads: usize,
    /// Hidden width of the feed-forward blocks.
    pub ff_dim: usize,
    /// Dropout probability in training (default 0.1).
    pub dropout: f32,
    /// Peak learning rate (after warm-up; decays linearly to a tenth).
    pub lr: f64,
    /// AdamW's decoupled weight decay (default 0.01).
    pub weight_decay: f64,
    /// Training examples per optimizer step (default 32).
    pub batch_size: usize,
    /// Most passes over the training examples (default 30).
    pub max_epochs: usize,
    /// Epochs without a better validation score before stopping.
    pub patience: usize,
    /// Seed of every random draw: initialisation, dropout, shuffling, augmentation (default 17).
    pub seed: u64,
    /// Words seen fewer times in the training split are out of vocabulary.
    pub min_word_count: usize,
    /// `compact`: most words in the vocabulary (default 8000).
    pub max_vocab: usize,
    /// `compact`: sizes of the hashed feature tables.
    pub features: FeatureSizes,
    /// Weight of the tag loss next to the tool loss.
    pub tag_loss_weight: f64,
    /// Weight of the tool loss on examples that call no tool. Conversational
    /// turns are a minority of the data and the most varied in wording; a
    /// weight above 1 makes "answer directly" cost as much to get wrong as it
    /// costs users when a greeting triggers a web search.
    #[serde(default = "default_no_tool_weight")]
    pub no_tool_weight: f64,
    /// Probabilities of the training-time augmentations.
    pub augment: Augment,
    /// Confidence below which the router abstains (stored in the model). 0 by
    /// default: in a chain the stage threshold gates the model (and keeps its
    /// below-threshold guess for `best_guess`), and a model used alone should
    /// answer every query it can decode.
    pub threshold: f64,
    /// Learning-rate warm-up steps.
    pub warmup_steps: usize,
    /// Share of the training split held out when no validation split is given.
    pub validation_share: f64,
    /// SHA-256 of the dataset manifest the model was trained from (recorded in the model).
    #[serde(default)]
    pub dataset_sha256: Option<String>,
    /// Encoder directory of the `minilm` backbone (`config.json`, `tokenizer.json`,
    /// `model.safetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<PathBuf>,
    /// `minilm`: top encoder layers fine-tuned with the heads (0 = frozen encoder).
    #[serde(default)]
    pub tune_layers: usize,
    /// `minilm`: peak learning rate of the tuned encoder layers (the heads use `lr`).
    #[serde(default = "default_encoder_lr")]
    pub encoder_lr: f64,
    /// Wall-time budget of the epoch loop in seconds: no epoch is started that
    /// would, at the pace of the previous one, end past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_train_seconds: Option<f64>,
    /// `compact`: each batch is cut into this many shards whose gradients are
    /// computed on parallel threads and summed (candle runs the model's small
    /// matrices on one core). A fixed number, not the machine's core count, so a
    /// seed gives the same model everywhere.
    #[serde(default = "default_parallel_shards")]
    pub parallel_shards: usize,
    /// `compact`: a directory of static word vectors ([`static_vectors`]): their
    /// words join the vocabulary and their vectors, through a trained projection,
    /// join the word embedding (folded into it when the model is saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_vectors: Option<PathBuf>,
}

fn default_parallel_shards() -> usize {
    2
}

/// Chosen on validation: on the 11,378-example dataset, 3 reached 92.5% tool-set
/// accuracy and argument F1 0.924 against 92.3% and 0.920 with 2 (the shipped
/// model, trained with 3, has test no-tool precision and recall 0.978 / 0.978).
/// With 1, an earlier model had test no-tool recall 0.933.
fn default_no_tool_weight() -> f64 {
    3.0
}

/// On 2000 training examples, 6 epochs with 2 tuned layers reached 83.8%
/// validation tool-set accuracy at 2e-4 against 74.3% at 5e-5.
fn default_encoder_lr() -> f64 {
    2e-4
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            backbone: Backbone::Compact,
            dim: 96,
            layers: 2,
            heads: 4,
            ff_dim: 192,
            dropout: 0.1,
            lr: 2e-3,
            weight_decay: 0.01,
            batch_size: 32,
            max_epochs: 30,
            patience: 6,
            seed: 17,
            min_word_count: 2,
            max_vocab: 8000,
            features: FeatureSizes::default(),
            tag_loss_weight: 1.0,
            no_tool_weight: default_no_tool_weight(),
            augment: Augment::default(),
            threshold: 0.0,
            warmup_steps: 100,
            validation_share: 0.1,
            dataset_sha256: None,
            encoder: None,
            tune_layers: 2,
            encoder_lr: default_encoder_lr(),
            max_train_seconds: None,
            parallel_shards: default_parallel_shards(),
            static_vectors: None,
        }
    }
}

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's examples.
    pub train_loss: f64,
    /// Validation tool-set accuracy after the epoch.
    pub validation_tool_set_accuracy: f64,
    /// Validation argument F1 after the epoch.
    pub validation_argument_f1: f64,
    /// Wall time of the epoch in seconds, validation included.
    pub seconds: f64,
}

/// What a training run did (also written as `train_report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// The model directory written.
    pub model_dir: PathBuf,
    /// Version recorded in the model's config.
    pub model_version: String,
    /// The configuration trained with.
    pub config: TrainConfig,
    /// Training examples used.
    pub train_examples: usize,
    /// Validation examples used.
    pub validation_examples: usize,
    /// Examples left out: empty queries or calls to tools not trained on.
    pub skipped_examples: usize,
    /// Training arguments found in their query (or equal to their slot's default).
    pub aligned_arguments: usize,
    /// Training arguments not found in their query (not learned as spans).
    pub unaligned_arguments: usize,
    /// A few arguments that could not be found in their query (`query -> tool.arg=value`).
    pub unaligned_samples: Vec<String>,
    /// Words in the vocabulary (`minilm`: wordpieces of the encoder's).
    pub vocab_words: usize,
    /// Trained parameters (`minilm`: the heads and the tuned layers).
    pub parameters: usize,
    /// Size of the saved weights, in bytes.
    pub weights_bytes: u64,
    /// Numbers of each epoch run.
    pub epochs: Vec<EpochStats>,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Validation tool-set accuracy of the kept weights.
    pub validation_tool_set_accuracy: f64,
    /// Validation argument F1 of the kept weights.
    pub validation_argument_f1: f64,
    /// Temperature of the tool probabilities, fitted on validation.
    pub temperature: f64,
    /// Wall time of the whole run, in seconds.
    pub seconds: f64,
    /// Training examples processed per second (augmented passes, validation excluded).
    pub examples_per_second: f64,
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Fewer than two training examples with a query and known tools.
    #[error("no usable training examples (need at least 2 with a query and known tools)")]
    NoData,
    /// A configuration value or an input it names cannot be used.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// The model could not be built, loaded or saved.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation failed.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// The training curves could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// An output file could not be written.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// An argument's place in a query: BIO tags per token.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// One tag per token (0 = outside; see `tag_begin`/`tag_inside`).
    pub tags: Vec<u32>,
    /// Arguments found in the query (or equal to their slot's default).
    pub aligned: usize,
    /// `tool.argument=value` of arguments not found in the query.
    pub unaligned: Vec<String>,
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            _ => false,
        },
        (Value::String(x), Value::String(y)) => x.trim().to_lowercase() == y.trim().to_lowercase(),
        _ => a == b,
    }
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Aligns the arguments of `calls` to token spans of `query`: a case-insensitive
/// token match of the argument text, else the shortest span that the router would
/// decode to the argument (numbers incl. number words, language names, units, ...).
/// A span already tagged for another slot is not reused; a span shared by several
/// calls for the same slot ("hello" in French and in Spanish) is tagged once.
pub fn align(
    query: &str,
    tokens: &[Token],
    calls: &[ToolCall],
    slots: &[SlotInfo],
    specs: &[ToolSpec],
) -> Alignment {
    let words: Vec<String> = tokens
        .iter()
        .map(|t| normalize_word(t.text(query)))
        .collect();
    let mut tags = vec![0u32; tokens.len()];
    let mut aligned = 0;
    let mut unaligned = Vec::new();
    for call in calls {
        let spec = specs.iter().find(|s| s.name == call.tool);
        for (argument, value) in &call.arguments {
            if value.is_null() {
                continue;
            }
            let Some(slot) = slots
                .iter()
                .position(|s| s.tool == call.tool && &s.argument == argument)
            else {
                unaligned.push(format!("{}.{argument}={value}", call.tool));
                continue;
            };
            let schema = spec
                .and_then(|s| s.parameters.get("properties"))
                .and_then(|p| p.get(argument));
            let candidates = candidates(query, tokens, &words, value, &slots[slot], schema);
            let (b, i) = (tag_begin(slot) as u32, tag_inside(slot) as u32);
            let free = candidates
                .iter()
                .find(|(s, e)| tags[*s..=*e].iter().all(|t| *t == 0));
            let shared = candidates
                .iter()
                .any(|(s, e)| tags[*s] == b && tags[*s + 1..=*e].iter().all(|t| *t == i));
            match free {
                Some(&(s, e)) => {
                    tags[s] = b;
                    tags[s + 1..=e].iter_mut().for_each(|t| *t = i);
                    aligned += 1;
                }
                None if shared => aligned += 1,
                None if candidates.is_empty() && slots[slot].default.as_ref() == Some(value) => {
                    aligned += 1
                }
                None => unaligned.push(format!("{}.{argument}={value}", call.tool)),
            }
        }
    }
    Alignment {
        tags,
        aligned,
        unaligned,
    }
}

/// Token spans (`start..=end`) that carry `value`, best first.
fn candidates(
    query: &str,
    tokens: &[Token],
    words: &[String],
    value: &Value,
    slot: &SlotInfo,
    schema: Option<&Value>,
) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    if let Some(text) = value_text(value) {
        let target: Vec<String> = tokenize(&text, usize::MAX)
            .iter()
            .map(|t| normalize_word(t.text(&text)))
            .collect();
        if !target.is_empty() && target.len() <= words.len() {
            for start in 0..=words.len() - target.len() {
                if words[start..start + target.len()] == target[..] {
                    found.push((start, start + target.len() - 1));
                }
            }
        }
        if !found.is_empty() {
            return found;
        }
        let max_len = (target.len() + 3).max(6).min(tokens.len());
        for len in 1..=max_len {
            for start in 0..=tokens.len() - len {
                let end = start + len - 1;
                let span = &query[tokens[start].start..tokens[end].end];
                if let Some(decoded) = convert_span(span, &slot.transform, schema) {
                    if same_value(&decoded, value) {
                        found.push((start, end));
                    }
                }
            }
            if !found.is_empty() {
                break;
            }
        }
    }
    found
}

/// A training example ready for batching.
#[derive(Debug, Clone)]
struct Prepared {
    tokens: Vec<String>,
    tags: Vec<u32>,
    tools: Vec<f32>,
}

struct Prepare {
    examples: Vec<Prepared>,
    /// Indices (into the input) of the examples kept.
    kept: Vec<usize>,
    skipped: usize,
    aligned: usize,
    unaligned: usize,
    samples: Vec<String>,
}

fn prepare(
    examples: &[Example],
    tool_names: &[String],
    slots: &[SlotInfo],
    specs: &[ToolSpec],
    max_tokens: usize,
) -> Prepare {
    let mut out = Prepare {
        examples: Vec::with_capacity(examples.len()),
        kept: Vec::with_capacity(examples.len()),
        skipped: 0,
        aligned: 0,
        unaligned: 0,
        samples: Vec::new(),
    };
    for (index, example) in examples.iter().enumerate() {
        let tokens = tokenize(&example.query, max_tokens);
        let known = example.calls.iter().all(|c| tool_names.contains(&c.tool));
        if tokens.is_empty() || !known {
            out.skipped += 1;
            continue;
        }
        let alignment = align(&example.query, &tokens, &example.calls, slots, specs);
        out.aligned += alignment.aligned;
        out.unaligned += alignment.unaligned.len();
        for miss in alignment.unaligned {
            if out.samples.len() < 20 {
                out.samples.push(format!("{} -> {miss}", example.query));
            }
        }
        // One target per tool, then the unsupported output.
        let mut tools = vec![0f32; tool_names.len() + 1];
        for call in &example.calls {
            if let Some(i) = tool_names.iter().position(|n| *n == call.tool) {
                tools[i] = 1.0;
            }
        }
        tools[tool_names.len()] =
            f32::from(u8::from(example.unsupported && example.calls.is_empty()));
        out.examples.push(Prepared {
            tokens: tokens
                .iter()
                .map(|t| t.text(&example.query).to_string())
                .collect(),
            tags: alignment.tags,
            tools,
        });
        out.kept.push(index);
    }
    out
}

/// One augmented copy of a prepared example: token texts and tags.
fn augment(example: &Prepared, aug: &Augment, rng: &mut Rng) -> (Vec<String>, Vec<u32>) {
    let mut tokens = example.tokens.clone();
    let mut tags = example.tags.clone();
    if rng.chance(aug.drop_final_punct) && tokens.len() > 1 {
        let last = tokens.len() - 1;
        if tags[last] == 0 && matches!(tokens[last].as_str(), "?" | "." | "!") {
            tokens.pop();
            tags.pop();
        }
    }
    if rng.chance(aug.lowercase) {
        for t in tokens.iter_mut() {
            *t = t.to_lowercase();
        }
    }
    if rng.chance(aug.typo) {
        let words: Vec<usize> = (0..tokens.len())
            .filter(|&i| {
                tags[i] == 0
                    && tokens[i].chars().count() >= 4
                    && tokens[i].chars().all(char::is_alphabetic)
            })
            .collect();
        if !words.is_empty() {
            let i = words[rng.below(words.len())];
            tokens[i] = typo(&tokens[i], rng);
        }
    }
    (tokens, tags)
}

/// One random edit: drop, double, swap with the next, or replace a letter.
fn typo(word: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    let n = chars.len();
    let i = 1 + rng.below(n.saturating_sub(2).max(1));
    let i = i.min(n - 1);
    match rng.below(4) {
        0 => {
            chars.remove(i);
        }
        1 => chars.insert(i, chars[i]),
        2 if i + 1 < n => chars.swap(i, i + 1),
        _ => {
            let letter = (b'a' + rng.below(26) as u8) as char;
            chars[i] = letter;
        }
    }
    chars.into_iter().collect()
}

/// Shuffles `order` and cuts it into batches of similar lengths `len(example)`
/// (less padding): windows of 50 batches are sorted by length, and the batches
/// are shuffled.
fn length_buckets(
    order: &mut [usize],
    len: impl Fn(usize) -> usize,
    batch_size: usize,
    rng: &mut Rng,
) -> Vec<std::ops::Range<usize>> {
    rng.shuffle(order);
    let window = batch_size * 50;
    for chunk in order.chunks_mut(window) {
        chunk.sort_by_key(|&i| len(i));
    }
    let mut batches: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    while start < order.len() {
        // Batches never straddle two windows.
        let window_end = ((start / window) + 1) * window;
        let end = (start + batch_size).min(window_end).min(order.len());
        batches.push(start..end);
        start = end;
    }
    rng.shuffle(&mut batches);
    batches
}

/// Tensors of one training batch.
struct TrainBatch {
    batch: Batch,
    tools: Tensor,
    tags: Tensor,
    tag_mask: Tensor,
    tag_count: f64,
}

fn make_batch(
    items: &[&Prepared],
    vocab: &Vocab,
    aug: &Augment,
    rng: &mut Rng,
    device: &Device,
) -> candle_core::Result<TrainBatch> {
    let mut features: Vec<Features> = Vec::with_capacity(items.len());
    let mut all_tags: Vec<Vec<u32>> = Vec::with_capacity(items.len());
    for item in items {
        let (tokens, tags) = augment(item, aug, rng);
        let mut f = vocab.featurize(&tokens);
        for (i, token) in tokens.iter().enumerate().take(f.len) {
            if rng.chance(aug.word_dropout) {
                f.word_ids[i] = vocab.oov_id(&normalize_word(token));
            }
        }
        features.push(f);
        all_tags.push(tags);
    }
    let refs: Vec<&Features> = features.iter().collect();
    let batch = Batch::new(&refs, vocab.sizes().max_ngrams as usize, device)?;
    let (b, t) = (batch.size, batch.len);
    let mut tags = vec![0u32; b * t];
    let mut mask = vec![0f32; b * t];
    for (row, (item_tags, f)) in all_tags.iter().zip(&features).enumerate() {
        for (i, tag) in item_tags.iter().take(f.len).enumerate() {
            tags[row * t + i] = *tag;
            mask[row * t + i] = 1.0;
        }
    }
    let tag_count = f64::from(mask.iter().sum::<f32>()).max(1.0);
    let n_tools = items.first().map_or(0, |i| i.tools.len());
    let tools: Vec<f32> = items.iter().flat_map(|i| i.tools.iter().copied()).collect();
    Ok(TrainBatch {
        batch,
        tools: Tensor::from_vec(tools, (b, n_tools), device)?,
        tags: Tensor::from_vec(tags, b * t, device)?,
        tag_mask: Tensor::from_vec(mask, b * t, device)?,
        tag_count,
    })
}

/// A progress bar of `len` steps drawn with `template`, or a hidden one.
fn progress_bar(len: usize, show: bool, template: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Tool loss: binary cross-entropy on logits in the stable form
/// `max(x,0) - x*y + ln(1 + e^-|x|)`, averaged over all elements, with the
/// rows of examples that call no tool (all-zero tool targets; the last column
/// is the unsupported output) weighted `no_tool_weight`.
fn tool_loss(
    logits: &Tensor,
    targets: &Tensor,
    no_tool_weight: f64,
) -> candle_core::Result<Tensor> {
    let soft = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let bce = ((logits.relu()? - (logits * targets)?)? + soft)?;
    let tool_columns = targets.dim(1)?.saturating_sub(1);
    let no_tool = targets
        .narrow(1, 0, tool_columns)?
        .sum_keepdim(1)?
        .eq(0f32)?
        .to_dtype(DType::F32)?;
    let row_weights = ((no_tool * (no_tool_weight - 1.0))? + 1.0)?;
    bce.broadcast_mul(&row_weights)?.mean_all()
}

/// Mean cross-entropy of tag logits over the real (unpadded) tokens.
fn tag_loss(logits: &Tensor, batch: &TrainBatch) -> candle_core::Result<Tensor> {
    let flat = logits.flatten_to(1)?;
    let log_probs = candle_nn::ops::log_softmax(&flat, D::Minus1)?;
    let picked = log_probs.gather(&batch.tags.unsqueeze(1)?, 1)?.squeeze(1)?;
    (picked * &batch.tag_mask)?.sum_all()? * (-1.0 / batch.tag_count)
}

fn snapshot(varmap: &VarMap) -> Result<HashMap<String, Tensor>, TrainError> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| TrainError::Config("parameter map lock poisoned".into()))?;
    let mut out = HashMap::with_capacity(data.len());
    for (name, var) in data.iter() {
        out.insert(name.clone(), var.as_tensor().copy()?);
    }
    Ok(out)
}

fn check_config(c: &TrainConfig) -> Result<(), TrainError> {
    let bad = |m: &str| Err(TrainError::Config(m.to_string()));
    if c.batch_size == 0 {
        return bad("batch_size must be at least 1");
    }
    if c.max_epochs == 0 {
        return bad("max_epochs must be at least 1");
    }
    if c.parallel_shards == 0 {
        return bad("parallel_shards must be at least 1");
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return bad("lr must be positive");
    }
    if !(c.encoder_lr.is_finite() && c.encoder_lr > 0.0) {
        return bad("encoder_lr must be positive");
    }
    if c.max_train_seconds
        .is_some_and(|s| !(s.is_finite() && s > 0.0))
    {
        return bad("max_train_seconds must be positive");
    }
    if !(0.0..1.0).contains(&c.validation_share) {
        return bad("validation_share must be in [0, 1)");
    }
    if !(c.no_tool_weight.is_finite() && c.no_tool_weight > 0.0) {
        return bad("no_tool_weight must be positive");
    }
    Ok(())
}

/// Sigmoid with temperature, clamped away from 0 and 1 for logs.
fn prob(logit: f32, temperature: f64) -> f64 {
    let p = 1.0 / (1.0 + (-(f64::from(logit)) / temperature).exp());
    p.clamp(1e-7, 1.0 - 1e-7)
}

/// The temperature minimising the NLL of the gold tool sets, on a grid from 1 to
/// 8: probabilities are only ever softened, never sharpened, because the
/// validation split is in-distribution while real traffic is not.
fn fit_temperature(logits: &[Vec<f32>], gold: &[Vec<f32>]) -> f64 {
    if logits.is_empty() {
        return 1.0;
    }
    let nll = |t: f64| -> f64 {
        logits
            .iter()
            .zip(gold)
            .map(|(z, y)| {
                z.iter()
                    .zip(y)
                    .map(|(z, y)| {
                        let p = prob(*z, t);
                        -(f64::from(*y) * p.ln() + (1.0 - f64::from(*y)) * (1.0 - p).ln())
                    })
                    .sum::<f64>()
            })
            .sum()
    };
    let mut best = (1.0, nll(1.0));
    let mut t = 1.0;
    while t <= 8.0 + 1e-9 {
        let v = nll(t);
        if v < best.1 - 1e-12 {
            best = (t, v);
        }
        t += 0.05;
    }
    (best.0 * 100.0).round() / 100.0
}

/// The threshold on the unsupported output (the last column) that best tells
/// unsupported requests from direct answers among the validation examples that
/// call no tool, on a grid from 0.1 to 0.9; 0.5 when there are none. Ties go to
/// the threshold nearest 0.5.
fn fit_unsupported_threshold(logits: &[Vec<f32>], gold: &[Vec<f32>], temperature: f64) -> f64 {
    let rows: Vec<(f64, bool)> = logits
        .iter()
        .zip(gold)
        .filter_map(|(z, y)| {
            let (last, tools) = y.split_last()?;
            if tools.iter().any(|t| *t > 0.5) {
                return None;
            }
            Some((prob(*z.last()?, temperature), *last > 0.5))
        })
        .collect();
    if rows.is_empty() {
        return 0.5;
    }
    let right = |t: f64| rows.iter().filter(|(p, u)| (*p >= t) == *u).count();
    let mut best: (f64, usize) = (0.5, right(0.5));
    for step in 2..=18 {
        let t = f64::from(step) * 0.05;
        let score = right(t);
        if score > best.1 || (score == best.1 && (t - 0.5).abs() < (best.0 - 0.5).abs()) {
            best = (t, score);
        }
    }
    (best.0 * 100.0).round() / 100.0
}

/// Scores `model` on `examples` (decisions without the abstention threshold).
fn validate(
    model: &ToolForgeModel,
    examples: &[Example],
    tools: &[ToolSpec],
    context: &RouteContext,
) -> (f64, f64) {
    validate_with(examples, tools, |_, example| {
        model.decide(&example.query, context, None)
    })
}

/// Tool-set accuracy and argument F1 of the decisions `decide(index, example)`.
fn validate_with(
    examples: &[Example],
    tools: &[ToolSpec],
    decide: impl Fn(usize, &Example) -> Result<Option<RouteDecision>, RouteError>,
) -> (f64, f64) {
    let predictions: Vec<Prediction> = examples
        .iter()
        .enumerate()
        .map(|(index, example)| {
            let start = Instant::now();
            let result = decide(index, example);
            let latency_us = start.elapsed().as_micros() as u64;
            Prediction::from_result(result, latency_us)
        })
        .collect();
    let report = evaluate("toolforge", examples, &predictions, tools);
    (report.tool_set_accuracy, report.argument_f1)
}

/// `train` and `validation`, or a held-out share of `train` when `validation` is empty.
fn split_validation(
    train: &[Example],
    validation: &[Example],
    config: &TrainConfig,
    rng: &mut Rng,
) -> (Vec<Example>, Vec<Example>) {
    if validation.is_empty() {
        let mut all = train.to_vec();
        rng.shuffle(&mut all);
        let held = ((all.len() as f64 * config.validation_share).round() as usize)
            .clamp(1, all.len().saturating_sub(1).max(1));
        let rest = all.split_off(all.len().saturating_sub(held));
        (all, rest)
    } else {
        (train.to_vec(), validation.to_vec())
    }
}

/// Writes `train_report.json` into the model directory.
fn write_report(out_dir: &Path, report: &TrainReport) -> Result<(), TrainError> {
    write_json_report(out_dir, "train_report.json", report)
}

/// Writes `report` as pretty JSON to `out_dir/file`.
fn write_json_report(
    out_dir: &Path,
    file: &str,
    report: &impl Serialize,
) -> Result<(), TrainError> {
    let path = out_dir.join(file);
    let text = serde_json::to_string_pretty(report).map_err(|e| TrainError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&path, text + "\n").map_err(|e| TrainError::Write {
        path: path.clone(),
        message: e.to_string(),
    })
}

/// Writes the training curves next to the model.
fn write_curves(out_dir: &Path, epochs: &[EpochStats]) -> Result<(), TrainError> {
    let point = |f: fn(&EpochStats) -> f64| -> Vec<(f64, f64)> {
        epochs.iter().map(|e| (e.epoch as f64, f(e))).collect()
    };
    curves_svg(
        "ToolForge training",
        "epoch",
        &[
            ("train loss", point(|e| e.train_loss)),
            (
                "validation tool-set accuracy",
                point(|e| e.validation_tool_set_accuracy),
            ),
            (
                "validation argument F1",
                point(|e| e.validation_argument_f1),
            ),
        ],
        &out_dir.join("training_curve.svg"),
    )?;
    Ok(())
}

/// Model selection shared by both backbones: a checkpoint is better than the best so
/// far `(accuracy, argument F1)` on the sum of validation tool-set accuracy and
/// argument F1, ties broken by accuracy. Both are targets, and their sum is steadier
/// than accuracy alone, whose plateaus in the middle of the learning-rate decay
/// stopped runs before the low-rate epochs that train best.
pub(crate) fn improves_on(best: Option<(f64, f64)>, accuracy: f64, arg_f1: f64) -> bool {
    const EPS: f64 = 1e-12;
    match best {
        None => true,
        Some((a, f)) => {
            let (score, best_score) = (accuracy + arg_f1, a + f);
            score > best_score + EPS || (score >= best_score - EPS && accuracy > a + EPS)
        }
    }
}

/// The best checkpoint: validation tool-set accuracy, argument F1, epoch, weights.
type Checkpoint = (f64, f64, usize, HashMap<String, Tensor>);

/// A backbone's side of the shared epoch loop ([`run_epochs`]).
trait EpochTask {
    /// Cuts `order` (indices of training examples) into this epoch's batches,
    /// as ranges of `order`, which it may shuffle.
    fn batches(&self, order: &mut [usize], rng: &mut Rng) -> Vec<std::ops::Range<usize>>;
    /// One optimizer step on the training examples `batch`, learning rates scaled
    /// by `scale` (warm-up and decay); returns the batch's mean loss.
    fn step(&mut self, batch: &[usize], scale: f64, rng: &mut Rng) -> Result<f64, TrainError>;
    /// Validation tool-set accuracy and argument F1 of the current weights.
    fn validate(&mut self) -> Result<(f64, f64), TrainError>;
    /// A copy of the current weights.
    fn snapshot(&self) -> Result<HashMap<String, Tensor>, TrainError>;
}

/// What the epoch loop did.
struct Epochs {
    epochs: Vec<EpochStats>,
    best: Checkpoint,
    /// Seconds spent in training steps (validation included, caching not).
    train_seconds: f64,
    trained_examples: usize,
}

/// The epoch loop shared by the backbones: linear warm-up then linear decay to a
/// tenth of the learning rates, a progress bar, validation after each epoch,
/// the best checkpoint ([`improves_on`]), early stopping after `patience`
/// epochs without progress and the wall-time budget `max_train_seconds`.
fn run_epochs(
    task: &mut impl EpochTask,
    config: &TrainConfig,
    examples: usize,
    rng: &mut Rng,
    progress: bool,
) -> Result<Epochs, TrainError> {
    let steps_per_epoch = examples.div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.max_epochs;
    let bar = progress_bar(
        total_steps,
        progress,
        "{msg} [{bar:30}] {pos}/{len} steps ({elapsed}, eta {eta})",
    );
    let started = Instant::now();
    let mut order: Vec<usize> = (0..examples).collect();
    let mut epochs: Vec<EpochStats> = Vec::new();
    let mut best: Option<Checkpoint> = None;
    let mut since_best = 0;
    let mut step = 0usize;
    let mut train_seconds = 0.0;
    let mut trained_examples = 0usize;
    for epoch in 1..=config.max_epochs {
        if let (Some(budget), Some(last)) = (config.max_train_seconds, epochs.last()) {
            if started.elapsed().as_secs_f64() + last.seconds > budget {
                break;
            }
        }
        let epoch_start = Instant::now();
        bar.set_message(match epochs.last() {
            Some(last) => format!(
                "epoch {epoch}/{} (last: loss {:.4}, val acc {:.3}, arg F1 {:.3})",
                config.max_epochs,
                last.train_loss,
                last.validation_tool_set_accuracy,
                last.validation_argument_f1
            ),
            None => format!("epoch {epoch}/{}", config.max_epochs),
        });
        let batches = task.batches(&mut order, rng);
        let mut loss_sum = 0.0;
        for range in batches {
            let warm = ((step + 1) as f64 / config.warmup_steps.max(1) as f64).min(1.0);
            let decay = 1.0 - 0.9 * (step as f64 / total_steps.max(1) as f64);
            let batch = &order[range];
            loss_sum += task.step(batch, warm * decay, rng)? * batch.len() as f64;
            step += 1;
            bar.inc(1);
        }
        train_seconds += epoch_start.elapsed().as_secs_f64();
        trained_examples += order.len();
        let train_loss = loss_sum / order.len().max(1) as f64;
        let (accuracy, arg_f1) = task.validate()?;
        epochs.push(EpochStats {
            epoch,
            train_loss,
            validation_tool_set_accuracy: accuracy,
            validation_argument_f1: arg_f1,
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
        let improved = improves_on(best.as_ref().map(|(a, f, _, _)| (*a, *f)), accuracy, arg_f1);
        if improved {
            best = Some((accuracy, arg_f1, epoch, task.snapshot()?));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= config.patience.max(1) {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let best = best.ok_or(TrainError::NoData)?;
    Ok(Epochs {
        epochs,
        best,
        train_seconds,
        trained_examples,
    })
}

/// The `compact` backbone's side of the epoch loop.
struct CompactTask<'a> {
    config: &'a TrainConfig,
    examples: &'a [Prepared],
    vocab: &'a Vocab,
    network: &'a Network,
    optimizer: SparseAdamW,
    /// One dropout stream per shard of a batch.
    dropouts: Vec<Dropout>,
    /// One single-thread pool per shard: the shards already keep the cores
    /// busy, and candle's matrix products would otherwise split each product
    /// over all cores and contend with the other shard (measured 20% slower).
    pools: Vec<rayon::ThreadPool>,
    device: &'a Device,
    varmap: &'a VarMap,
    /// Static word vectors read through the trained projection, if any.
    static_table: Option<&'a Tensor>,
    model_config: &'a ModelConfig,
    tools: &'a [ToolSpec],
    validation: &'a [Example],
    context: &'a RouteContext,
}

impl EpochTask for CompactTask<'_> {
    fn batches(&self, order: &mut [usize], rng: &mut Rng) -> Vec<std::ops::Range<usize>> {
        let examples = self.examples;
        length_buckets(
            order,
            |i| examples[i].tokens.len(),
            self.config.batch_size,
            rng,
        )
    }

    fn step(&mut self, batch: &[usize], scale: f64, rng: &mut Rng) -> Result<f64, TrainError> {
        self.optimizer.set_learning_rate(self.config.lr * scale);
        let total = batch.len() as f64;
        let shard_len = batch.len().div_ceil(self.dropouts.len().max(1));
        let mut shards = Vec::with_capacity(self.dropouts.len());
        for chunk in batch.chunks(shard_len.max(1)) {
            let items: Vec<&Prepared> = chunk.iter().map(|&i| &self.examples[i]).collect();
            let shard = make_batch(&items, self.vocab, &self.config.augment, rng, self.device)?;
            shards.push((shard, chunk.len() as f64 / total));
        }
        let network = self.network;
        let tag_weight = self.config.tag_loss_weight;
        let no_tool_weight = self.config.no_tool_weight;
        let results: Vec<candle_core::Result<(GradStore, f64)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = shards
                .iter()
                .zip(self.dropouts.iter_mut().zip(&self.pools))
                .map(|((shard, share), (dropout, pool))| {
                    scope.spawn(move || {
                        pool.install(|| {
                            let out = network.forward(&shard.batch, Some(dropout))?;
                            let tool_loss =
                                tool_loss(&out.tool_logits, &shard.tools, no_tool_weight)?;
                            let tags = tag_loss(&out.tag_logits, shard)?;
                            let loss = ((tool_loss + (tags * tag_weight)?)? * *share)?;
                            Ok((loss.backward()?, f64::from(loss.to_scalar::<f32>()?)))
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(candle_core::Error::Msg("a training thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut grads = Vec::with_capacity(results.len());
        let mut loss = 0.0;
        for result in results {
            let (store, shard_loss) = result?;
            grads.push(store);
            loss += shard_loss;
        }
        self.optimizer.step(&grads)?;
        Ok(loss)
    }

    fn validate(&mut self) -> Result<(f64, f64), TrainError> {
        let current = ToolForgeModel::from_parts(
            self.model_config.clone(),
            self.vocab.clone(),
            self.tools.to_vec(),
            self.network.clone(),
        )?;
        Ok(validate(
            &current,
            self.validation,
            self.tools,
            self.context,
        ))
    }

    fn snapshot(&self) -> Result<HashMap<String, Tensor>, TrainError> {
        let mut weights = snapshot(self.varmap)?;
        if let Some(table) = self.static_table {
            fold_static_weights(&mut weights, table)?;
        }
        Ok(weights)
    }
}

/// The trained projection of static word vectors (`static_dim -> dim`), added to
/// `varmap`: small random values, so the vectors start as a gentle signal next
/// to the word, n-gram and shape embeddings.
fn static_projection(
    varmap: &VarMap,
    static_dim: usize,
    dim: usize,
    seed: u64,
    device: &Device,
) -> Result<Tensor, TrainError> {
    let mut rng = Rng::new(seed ^ 0x5747_4943);
    let std = 0.1 / (static_dim as f32).sqrt();
    let values: Vec<f32> = (0..static_dim * dim).map(|_| rng.normal() * std).collect();
    let var = candle_core::Var::from_tensor(&Tensor::from_vec(values, (static_dim, dim), device)?)?;
    let tensor = var.as_tensor().clone();
    varmap
        .data()
        .lock()
        .map_err(|_| TrainError::Config("parameter map lock poisoned".into()))?
        .insert(STATIC_PROJ.to_string(), var);
    Ok(tensor)
}

/// Trains a model on `train`, selects and calibrates it on `validation` (or on a
/// held-out share of `train` when `validation` is empty) and writes the model
/// directory to `out_dir`.
pub fn train(
    train: &[Example],
    validation: &[Example],
    tools: &[ToolSpec],
    config: &TrainConfig,
    out_dir: &Path,
    progress: bool,
) -> Result<TrainReport, TrainError> {
    check_config(config)?;
    if config.backbone == Backbone::Minilm {
        return minilm::train_minilm(train, validation, tools, config, out_dir, progress);
    }
    train_compact(train, validation, tools, None, config, out_dir, progress)
}

/// Like [`train`] for the `compact` backbone, but continuing from `base`
/// instead of random weights ([`WarmStart`]): its vocabulary and encoder are
/// kept, its heads grow for tools and arguments it does not know. `config`'s
/// architecture fields and static vectors are ignored (the base model's hold).
pub fn train_warm(
    train: &[Example],
    validation: &[Example],
    tools: &[ToolSpec],
    base: &WarmStart,
    config: &TrainConfig,
    out_dir: &Path,
    progress: bool,
) -> Result<TrainReport, TrainError> {
    check_config(config)?;
    let config = TrainConfig {
        backbone: Backbone::Compact,
        features: base.vocab().sizes(),
        static_vectors: None,
        ..config.clone()
    };
    train_compact(
        train,
        validation,
        tools,
        Some(base),
        &config,
        out_dir,
        progress,
    )
}

fn train_compact(
    train: &[Example],
    validation: &[Example],
    tools: &[ToolSpec],
    warm: Option<&WarmStart>,
    config: &TrainConfig,
    out_dir: &Path,
    progress: bool,
) -> Result<TrainReport, TrainError> {
    let ordered_tools = match warm {
        Some(base) => base.order_tools(tools),
        None => tools.to_vec(),
    };
    let tools = ordered_tools.as_slice();
    let started = Instant::now();
    let device = Device::Cpu;
    let mut rng = Rng::new(config.seed);
    let tool_names: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
    if tool_names.is_empty() {
        return Err(TrainError::Config("no tools to train on".into()));
    }
    let (tool_infos, slots) = describe_tools(tools);
    let max_tokens = config.features.max_tokens as usize;

    let (train_set, validation_set) = split_validation(train, validation, config, &mut rng);
    let prepared = prepare(&train_set, &tool_names, &slots, tools, max_tokens);
    if prepared.examples.len() < 2 {
        return Err(TrainError::NoData);
    }
    let val_prepared = prepare(&validation_set, &tool_names, &slots, tools, max_tokens);
    let validation_set: Vec<Example> = val_prepared
        .kept
        .iter()
        .map(|&i| validation_set[i].clone())
        .collect();
    let val_gold: Vec<Vec<f32>> = val_prepared
        .examples
        .iter()
        .map(|e| e.tools.clone())
        .collect();

    let static_vectors = match warm {
        Some(_) => None,
        None => config
            .static_vectors
            .as_deref()
            .map(static_vectors::StaticVectors::load)
            .transpose()?,
    };
    let vocab = match warm {
        Some(base) => base.vocab().clone(),
        None => Vocab::build(
            prepared
                .examples
                .iter()
                .flat_map(|e| e.tokens.iter().map(String::as_str)),
            config.min_word_count,
            config.max_vocab,
            config.features,
        ),
    };
    let vocab = match &static_vectors {
        Some(vectors) => vocab.with_words(vectors.words.iter().map(String::as_str)),
        None => vocab,
    };
    let fresh_arch = ArchConfig {
        dim: config.dim,
        layers: config.layers,
        heads: config.heads,
        ff_dim: config.ff_dim,
        max_tokens,
        word_rows: vocab.word_rows(),
        ngram_buckets: config.features.ngram_buckets as usize,
        max_ngrams: config.features.max_ngrams as usize,
        shapes: SHAPES,
        tools: tool_names.len() + 1,
        tags: 1 + 2 * slots.len(),
        dropout: config.dropout,
    };
    let arch = match warm {
        Some(base) => base.arch(fresh_arch.tools, fresh_arch.tags, config.dropout),
        None => fresh_arch,
    };
    arch.check().map_err(TrainError::Config)?;
    let mut model_config = ModelConfig {
        format: MODEL_FORMAT,
        model_version: String::new(),
        backbone: config.backbone.name().to_string(),
        architecture: arch.clone(),
        tools: tool_infos,
        unsupported_output: true,
        unsupported_threshold: 0.5,
        slots,
        temperature: 1.0,
        threshold: config.threshold,
        tool_threshold: 0.5,
        members: 1,
        encoder: None,
        training: Value::Null,
    };

    let varmap = VarMap::new();
    Network::init_varmap(&arch, &varmap, config.seed, &device)?;
    if let Some(base) = warm {
        base.seed(&varmap, &tool_names, &model_config.slots)?;
    }
    let mut network = Network::new(&training_builder(&varmap, &device), &arch)?;
    let static_table = match &static_vectors {
        Some(vectors) => {
            let table = vectors.table_for(&vocab)?;
            let proj = static_projection(&varmap, vectors.dim(), arch.dim, config.seed, &device)?;
            network = network.with_static_words(StaticWords {
                table: table.clone(),
                proj,
            })?;
            Some(table)
        }
        None => None,
    };
    let mut named_vars: Vec<(String, candle_core::Var)> = varmap
        .data()
        .lock()
        .map_err(|_| TrainError::Config("parameter map lock poisoned".into()))?
        .iter()
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    named_vars.sort_by(|a, b| a.0.cmp(&b.0));
    let optimizer = SparseAdamW::new(
        named_vars,
        |name| name == "emb.word" || name == "emb.ngram",
        ParamsAdamW {
            lr: config.lr,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let dropouts = (0..config.parallel_shards.max(1) as u64)
        .map(|shard| Dropout::new(config.dropout, config.seed.wrapping_add(1 + shard)))
        .collect();
    let pools = (0..config.parallel_shards.max(1))
        .map(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| candle_core::Error::Msg(format!("cannot start a training thread: {e}")))?;
    let context = RouteContext::new(tools.to_vec());
    let mut task = CompactTask {
        config,
        examples: &prepared.examples,
        vocab: &vocab,
        network: &network,
        optimizer,
        dropouts,
        pools,
        device: &device,
        varmap: &varmap,
        static_table: static_table.as_ref(),
        model_config: &model_config,
        tools,
        validation: &validation_set,
        context: &context,
    };
    let Epochs {
        epochs,
        best: (accuracy, arg_f1, best_epoch, weights),
        train_seconds,
        trained_examples,
    } = run_epochs(
        &mut task,
        config,
        prepared.examples.len(),
        &mut rng,
        progress,
    )?;

    // Calibrate the best network's tool probabilities on validation.
    let vb = VarBuilder::from_tensors(weights.clone(), DType::F32, &device);
    let best_network = Network::new(&vb, &arch)?;
    let best_model = ToolForgeModel::from_parts(
        model_config.clone(),
        vocab.clone(),
        tools.to_vec(),
        best_network,
    )?;
    let mut val_logits = Vec::with_capacity(validation_set.len());
    for example in &validation_set {
        val_logits.push(best_model.score(&example.query)?.tool_logits);
    }
    let temperature = fit_temperature(&val_logits, &val_gold);
    model_config.temperature = temperature;
    model_config.unsupported_threshold =
        fit_unsupported_threshold(&val_logits, &val_gold, temperature);
    let parameters = Network::param_count(&arch);
    model_config.training = json!({
        "backbone": config.backbone.name(),
        "train_examples": prepared.examples.len(),
        "validation_examples": validation_set.len(),
        "epochs_run": epochs.len(),
        "best_epoch": best_epoch,
        "validation_tool_set_accuracy": accuracy,
        "validation_argument_f1": arg_f1,
        "aligned_arguments": prepared.aligned,
        "unaligned_arguments": prepared.unaligned,
        "vocab_words": vocab.len(),
        "parameters": parameters,
        "seed": config.seed,
        "dataset_sha256": config.dataset_sha256,
        "warm_start_from": warm.map(WarmStart::version),
    });
    let written = write_model_dir(out_dir, model_config, &vocab, tools, &weights)?;
    let weights_bytes = std::fs::metadata(out_dir.join(WEIGHTS_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    write_curves(out_dir, &epochs)?;
    let report = TrainReport {
        model_dir: out_dir.to_path_buf(),
        model_version: written.model_version.clone(),
        config: config.clone(),
        train_examples: prepared.examples.len(),
        validation_examples: validation_set.len(),
        skipped_examples: prepared.skipped + val_prepared.skipped,
        aligned_arguments: prepared.aligned,
        unaligned_arguments: prepared.unaligned,
        unaligned_samples: prepared.samples,
        vocab_words: vocab.len(),
        parameters,
        weights_bytes,
        epochs,
        best_epoch,
        validation_tool_set_accuracy: accuracy,
        validation_argument_f1: arg_f1,
        temperature,
        seconds: started.elapsed().as_secs_f64(),
        examples_per_second: trained_examples as f64 / train_seconds.max(1e-9),
    };
    write_report(out_dir, &report)?;
    Ok(report)
}

#[cfg(test)]
pub(crate) mod tests;
