//! Training of the `minilm` backbone. The encoder's bottom layers stay frozen:
//! their hidden states are computed once for every training and validation
//! example (all layers when none are tuned). The top `tune_layers` layers run in
//! our own trainable BERT layers ([`super::tune`]), initialised from the
//! pretrained weights and trained with the heads (candle autograd; AdamW with a
//! smaller learning rate for the encoder). Argument tags come from the compact
//! alignment, projected from our tokens onto the wordpieces; the epoch loop,
//! selection, early stopping and temperature fitting are the compact trainer's.

use std::sync::Arc;

use candle_nn::Optimizer;
use toolforge_routers::toolforge_model::decode::{tag_begin, tag_inside, TAG_O};
use toolforge_routers::toolforge_model::minilm::{
    write_minilm_dir, Encoded, Encoder, EncoderRef, Heads, BACKBONE, HEADS_FILE, MAX_PIECES,
    TUNED_FILE,
};

use super::tune::{split_weights, TopLayers};
use super::*;

/// Queries encoded per encoder call.
const ENCODE_BATCH: usize = 32;
/// Most of our tokens aligned per query (far more than the encoder reads).
const ALIGN_TOKENS: usize = 4096;

/// Tags of our tokens (`words`, `word_tags`) carried over to `pieces`: a piece
/// takes the tag of the token it starts in, and the later pieces of a `B-` token
/// become `I-`.
pub(super) fn project_tags(words: &[Token], word_tags: &[u32], pieces: &[Token]) -> Vec<u32> {
    let mut previous = None;
    pieces
        .iter()
        .map(|piece| {
            let Some(w) = words
                .iter()
                .position(|t| t.start <= piece.start && piece.start < t.end)
            else {
                previous = None;
                return TAG_O as u32;
            };
            let first = previous != Some(w);
            previous = Some(w);
            let tag = word_tags.get(w).copied().unwrap_or(TAG_O as u32) as usize;
            if tag == TAG_O {
                return TAG_O as u32;
            }
            let slot = (tag - 1) / 2;
            if tag == tag_begin(slot) && !first {
                tag_inside(slot) as u32
            } else {
                tag as u32
            }
        })
        .collect()
}

/// Runs the encoder over `queries`, with a progress bar; with `specials`, the
/// states of `[CLS]` and `[SEP]` are kept (the input of tuned layers).
fn encode_all(
    encoder: &Encoder,
    queries: &[&str],
    specials: bool,
    what: &str,
    progress: bool,
) -> Result<Vec<Encoded>, TrainError> {
    let bar = progress_bar(
        queries.len(),
        progress,
        "{msg} [{bar:30}] {pos}/{len} queries ({elapsed}, eta {eta})",
    );
    bar.set_message(format!("encoding {what}"));
    let mut out = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(ENCODE_BATCH) {
        out.extend(if specials {
            encoder.encode_batch_with_specials(chunk, MAX_PIECES)?
        } else {
            encoder.encode_batch(chunk, MAX_PIECES)?
        });
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// One cached example: the frozen encoder's states, tags and tool targets.
struct Cached {
    /// With tuned layers, the states include `[CLS]` and `[SEP]`.
    encoded: Encoded,
    tags: Vec<u32>,
    tools: Vec<f32>,
}

/// Cached examples of `set` that `prepare` kept (with the kept examples).
fn cache(
    encoder: &Encoder,
    set: &[Example],
    prepared: &Prepare,
    specials: bool,
    what: &str,
    progress: bool,
) -> Result<(Vec<Example>, Vec<Cached>), TrainError> {
    let kept: Vec<Example> = prepared.kept.iter().map(|&i| set[i].clone()).collect();
    let queries: Vec<&str> = kept.iter().map(|e| e.query.as_str()).collect();
    let encoded = encode_all(encoder, &queries, specials, what, progress)?;
    let cached = encoded
        .into_iter()
        .zip(&prepared.examples)
        .zip(&kept)
        .map(|((encoded, prep), example)| {
            let words = tokenize(&example.query, ALIGN_TOKENS);
            let tags = project_tags(&words, &prep.tags, &encoded.tokens);
            Cached {
                encoded,
                tags,
                tools: prep.tools.clone(),
            }
        })
        .collect();
    Ok((kept, cached))
}

/// Padded tensors of one batch of cached examples.
struct MiniBatch {
    /// `batch x len x hidden` cached states.
    states: Tensor,
    /// `batch x len`: 1 for every real position (`[CLS]`/`[SEP]` included).
    attention: Tensor,
    /// `batch x len`: 1 for the wordpieces, which the heads pool and tag.
    pieces: Tensor,
    /// `batch x tools` targets.
    tools: Tensor,
    /// `batch * len` gold tags and their mask (the wordpieces).
    tags: Tensor,
    tag_mask: Tensor,
    tag_count: f64,
}

/// A batch of `items`, whose states include `[CLS]`/`[SEP]` when `specials`.
fn batch_tensors(
    items: &[&Cached],
    specials: bool,
    device: &Device,
) -> candle_core::Result<MiniBatch> {
    let offset = usize::from(specials);
    let rows = |c: &Cached| c.encoded.tokens.len() + 2 * offset;
    let len = items.iter().map(|c| rows(c)).max().unwrap_or(1).max(1);
    let mut states = Vec::with_capacity(items.len());
    let mut attention = vec![0f32; items.len() * len];
    let mut pieces = vec![0f32; items.len() * len];
    let mut tags = vec![0u32; items.len() * len];
    for (row, item) in items.iter().enumerate() {
        let (n, base) = (item.encoded.tokens.len(), row * len);
        states.push(item.encoded.states.pad_with_zeros(0, 0, len - rows(item))?);
        attention[base..base + rows(item)].fill(1.0);
        pieces[base + offset..base + offset + n].fill(1.0);
        for (i, tag) in item.tags.iter().take(n).enumerate() {
            tags[base + offset + i] = *tag;
        }
    }
    let tag_count = f64::from(pieces.iter().sum::<f32>()).max(1.0);
    let tools: Vec<f32> = items.iter().flat_map(|c| c.tools.iter().copied()).collect();
    let n_tools = items.first().map_or(0, |c| c.tools.len());
    let shape = (items.len(), len);
    Ok(MiniBatch {
        states: Tensor::stack(&states, 0)?,
        attention: Tensor::from_vec(attention, shape, device)?,
        pieces: Tensor::from_vec(pieces.clone(), shape, device)?,
        tools: Tensor::from_vec(tools, (items.len(), n_tools), device)?,
        tags: Tensor::from_vec(tags, items.len() * len, device)?,
        tag_mask: Tensor::from_vec(pieces, items.len() * len, device)?,
        tag_count,
    })
}

/// The trained parameters of a `minilm` run (heads and tuned layers, in one
/// `VarMap`) and their optimizers.
struct Trainable {
    varmap: VarMap,
    top: TopLayers,
    heads: Heads,
    head_optimizer: candle_nn::AdamW,
    /// `None` when no layer is tuned.
    encoder_optimizer: Option<candle_nn::AdamW>,
    dropout: Dropout,
}

impl Trainable {
    /// Fresh heads (`tools` outputs, `tags` tags) over trainable copies of the
    /// top `config.tune_layers` layers of `encoder`.
    fn new(
        encoder: &Encoder,
        config: &TrainConfig,
        tools: usize,
        tags: usize,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let hidden = encoder.hidden();
        let varmap = VarMap::new();
        Heads::init_varmap(
            &varmap,
            hidden,
            config.dim,
            tools,
            tags,
            config.seed,
            device,
        )?;
        TopLayers::init_varmap(&varmap, encoder, config.tune_layers)?;
        let vb = training_builder(&varmap, device);
        let heads = Heads::new(&vb, hidden, config.dim, tools, tags)?;
        let top = TopLayers::new(&vb, encoder, config.tune_layers)?;
        let mut named: Vec<(String, candle_core::Var)> = varmap
            .data()
            .lock()
            .map_err(|_| TrainError::Config("parameter map lock poisoned".into()))?
            .iter()
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let (encoder_vars, head_vars): (Vec<_>, Vec<_>) =
            named.into_iter().partition(|(name, _)| top.owns(name));
        let adamw = |vars: Vec<(String, candle_core::Var)>, lr: f64| {
            candle_nn::AdamW::new(
                vars.into_iter().map(|(_, var)| var).collect(),
                ParamsAdamW {
                    lr,
                    weight_decay: config.weight_decay,
                    ..ParamsAdamW::default()
                },
            )
        };
        let encoder_optimizer = if encoder_vars.is_empty() {
            None
        } else {
            Some(adamw(encoder_vars, config.encoder_lr)?)
        };
        Ok(Self {
            head_optimizer: adamw(head_vars, config.lr)?,
            encoder_optimizer,
            dropout: Dropout::new(config.dropout, config.seed.wrapping_add(1)),
            varmap,
            top,
            heads,
        })
    }

    /// One AdamW step on `batch` with the learning rates scaled by `scale`;
    /// returns the loss (tool BCE + weighted tag cross-entropy).
    fn step(
        &mut self,
        batch: &MiniBatch,
        config: &TrainConfig,
        scale: f64,
    ) -> Result<f64, TrainError> {
        self.head_optimizer.set_learning_rate(config.lr * scale);
        if let Some(optimizer) = &mut self.encoder_optimizer {
            optimizer.set_learning_rate(config.encoder_lr * scale);
        }
        let states = self
            .top
            .forward(&batch.states, &batch.attention, Some(&mut self.dropout))?;
        let out = self
            .heads
            .forward(&states, &batch.pieces, Some(&mut self.dropout))?;
        let tool_loss = super::tool_loss(&out.tool_logits, &batch.tools, config.no_tool_weight)?;
        let flat = out.tag_logits.flatten_to(1)?;
        let log_probs = candle_nn::ops::log_softmax(&flat, D::Minus1)?;
        let picked = log_probs.gather(&batch.tags.unsqueeze(1)?, 1)?.squeeze(1)?;
        let tag_loss = ((picked * &batch.tag_mask)?.sum_all()? * (-1.0 / batch.tag_count))?;
        let loss = (tool_loss + (tag_loss * config.tag_loss_weight)?)?;
        let grads = loss.backward()?;
        self.head_optimizer.step(&grads)?;
        if let Some(optimizer) = &mut self.encoder_optimizer {
            optimizer.step(&grads)?;
        }
        Ok(f64::from(loss.to_scalar::<f32>()?))
    }
}

/// The wordpiece states of `cached` examples after the `top` layers (the cached
/// states themselves when no layer is tuned).
fn top_states(
    top: &TopLayers,
    cached: &[Cached],
    device: &Device,
) -> Result<Vec<Encoded>, TrainError> {
    if top.len() == 0 {
        return Ok(cached.iter().map(|c| c.encoded.clone()).collect());
    }
    let mut order: Vec<usize> = (0..cached.len()).collect();
    order.sort_by_key(|&i| cached[i].encoded.tokens.len());
    let mut out: Vec<Option<Encoded>> = vec![None; cached.len()];
    for chunk in order.chunks(ENCODE_BATCH) {
        let items: Vec<&Cached> = chunk.iter().map(|&i| &cached[i]).collect();
        let batch = batch_tensors(&items, true, device)?;
        let states = top.forward(&batch.states, &batch.attention, None)?.detach();
        for (row, &i) in chunk.iter().enumerate() {
            let encoded = &cached[i].encoded;
            out[i] = Some(Encoded {
                tokens: encoded.tokens.clone(),
                truncated: encoded.truncated,
                states: states
                    .get(row)?
                    .narrow(0, 1, encoded.tokens.len())?
                    .contiguous()?,
            });
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// The `minilm` backbone's side of the epoch loop.
struct MinilmTask<'a> {
    config: &'a TrainConfig,
    params: Trainable,
    train: &'a [Cached],
    validation: &'a [Example],
    val_cache: &'a [Cached],
    encoder: &'a Arc<Encoder>,
    model_config: &'a ModelConfig,
    tools: &'a [ToolSpec],
    context: &'a RouteContext,
    device: &'a Device,
}

impl EpochTask for MinilmTask<'_> {
    fn batches(&self, order: &mut [usize], rng: &mut Rng) -> Vec<std::ops::Range<usize>> {
        let train = self.train;
        length_buckets(
            order,
            |i| train[i].encoded.tokens.len(),
            self.config.batch_size,
            rng,
        )
    }

    fn step(&mut self, batch: &[usize], scale: f64, _rng: &mut Rng) -> Result<f64, TrainError> {
        let items: Vec<&Cached> = batch.iter().map(|&i| &self.train[i]).collect();
        let batch = batch_tensors(&items, self.params.top.len() > 0, self.device)?;
        self.params.step(&batch, self.config, scale)
    }

    fn validate(&mut self) -> Result<(f64, f64), TrainError> {
        let encoded = top_states(&self.params.top, self.val_cache, self.device)?;
        let current = ToolForgeModel::from_minilm(
            self.model_config.clone(),
            self.tools.to_vec(),
            self.encoder.clone(),
            self.params.heads.clone(),
        )?;
        Ok(validate_cached(
            &current,
            self.validation,
            &encoded,
            self.tools,
            self.context,
        ))
    }

    fn snapshot(&self) -> Result<HashMap<String, Tensor>, TrainError> {
        snapshot(&self.params.varmap)
    }
}

/// Trains the `minilm` backbone (see the module docs); the encoder directory is
/// `config.encoder`.
pub(super) fn train_minilm(
    train: &[Example],
    validation: &[Example],
    tools: &[ToolSpec],
    config: &TrainConfig,
    out_dir: &Path,
    progress: bool,
) -> Result<TrainReport, TrainError> {
    let started = Instant::now();
    let device = Device::Cpu;
    let encoder_path = config.encoder.clone().ok_or_else(|| {
        TrainError::Config("the minilm backbone needs an encoder directory (--encoder)".into())
    })?;
    let encoder = Arc::new(Encoder::load(&encoder_path)?);
    let tune = config.tune_layers;
    if tune > encoder.layers() {
        return Err(TrainError::Config(format!(
            "cannot tune {tune} layers of an encoder of {}",
            encoder.layers()
        )));
    }
    let bottom = match tune {
        0 => None,
        _ => Some(Encoder::load_bottom(
            &encoder_path,
            encoder.layers() - tune,
        )?),
    };
    let frozen = bottom.as_ref().unwrap_or(&encoder);
    let specials = tune > 0;
    let mut rng = Rng::new(config.seed);
    let tool_names: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
    if tool_names.is_empty() {
        return Err(TrainError::Config("no tools to train on".into()));
    }
    let (tool_infos, slots) = describe_tools(tools);
    let (train_set, validation_set) = split_validation(train, validation, config, &mut rng);
    let prepared = prepare(&train_set, &tool_names, &slots, tools, ALIGN_TOKENS);
    if prepared.examples.len() < 2 {
        return Err(TrainError::NoData);
    }
    let val_prepared = prepare(&validation_set, &tool_names, &slots, tools, ALIGN_TOKENS);
    let (_, train_cache) = cache(
        frozen,
        &train_set,
        &prepared,
        specials,
        "training split",
        progress,
    )?;
    let (validation_set, val_cache) = cache(
        frozen,
        &validation_set,
        &val_prepared,
        specials,
        "validation split",
        progress,
    )?;
    drop(bottom);

    let hidden = encoder.hidden();
    let dim = config.dim;
    let tags = 1 + 2 * slots.len();
    let bert = encoder.config();
    let size = |key: &str| bert.get(key).and_then(Value::as_u64).unwrap_or(0) as usize;
    let arch = ArchConfig {
        dim: hidden,
        layers: size("num_hidden_layers"),
        heads: size("num_attention_heads"),
        ff_dim: size("intermediate_size"),
        max_tokens: MAX_PIECES,
        word_rows: encoder.wordpiece().len(),
        ngram_buckets: 0,
        max_ngrams: 0,
        shapes: 0,
        tools: tool_names.len() + 1,
        tags,
        dropout: config.dropout,
    };
    let absolute = std::fs::canonicalize(&encoder_path).unwrap_or(encoder_path.clone());
    let mut model_config = ModelConfig {
        format: MODEL_FORMAT,
        model_version: String::new(),
        backbone: BACKBONE.to_string(),
        architecture: arch,
        encoder: Some(EncoderRef {
            path: absolute.to_string_lossy().into_owned(),
            config: bert.clone(),
            hidden,
            dim,
            max_pieces: MAX_PIECES,
            tuned_layers: tune,
        }),
        tools: tool_infos,
        unsupported_output: true,
        unsupported_threshold: 0.5,
        slots,
        temperature: 1.0,
        threshold: config.threshold,
        tool_threshold: 0.5,
        members: 1,
        training: Value::Null,
    };

    let params = Trainable::new(&encoder, config, tool_names.len() + 1, tags, &device)?;
    let parameters = Heads::param_count(hidden, dim, tool_names.len() + 1, tags);
    let tuned_parameters = params.top.param_count();
    let context = RouteContext::new(tools.to_vec());
    let mut task = MinilmTask {
        config,
        params,
        train: &train_cache,
        validation: &validation_set,
        val_cache: &val_cache,
        encoder: &encoder,
        model_config: &model_config,
        tools,
        context: &context,
        device: &device,
    };
    let Epochs {
        epochs,
        best: (accuracy, arg_f1, best_epoch, weights),
        train_seconds,
        trained_examples,
    } = run_epochs(&mut task, config, train_cache.len(), &mut rng, progress)?;

    // Calibrate the best checkpoint's tool probabilities on validation.
    let vb = VarBuilder::from_tensors(weights.clone(), DType::F32, &device);
    let best_heads = Heads::new(&vb, hidden, dim, tool_names.len() + 1, tags)?;
    let best_top = TopLayers::new(&vb, &encoder, tune)?;
    let best_model = ToolForgeModel::from_minilm(
        model_config.clone(),
        tools.to_vec(),
        encoder.clone(),
        best_heads,
    )?;
    let val_encoded = top_states(&best_top, &val_cache, &device)?;
    let mut val_logits = Vec::with_capacity(val_cache.len());
    let mut val_gold = Vec::with_capacity(val_cache.len());
    for (cached, encoded) in val_cache.iter().zip(&val_encoded) {
        if let Some(scores) = best_model.score_states(encoded) {
            val_logits.push(scores?.tool_logits);
            val_gold.push(cached.tools.clone());
        }
    }
    let temperature = fit_temperature(&val_logits, &val_gold);
    model_config.temperature = temperature;
    model_config.unsupported_threshold =
        super::fit_unsupported_threshold(&val_logits, &val_gold, temperature);
    model_config.training = json!({
        "backbone": BACKBONE,
        "train_examples": train_cache.len(),
        "validation_examples": validation_set.len(),
        "epochs_run": epochs.len(),
        "best_epoch": best_epoch,
        "validation_tool_set_accuracy": accuracy,
        "validation_argument_f1": arg_f1,
        "aligned_arguments": prepared.aligned,
        "unaligned_arguments": prepared.unaligned,
        "head_parameters": parameters,
        "tuned_layers": tune,
        "tuned_parameters": tuned_parameters,
        "encoder_lr": config.encoder_lr,
        "seed": config.seed,
        "dataset_sha256": config.dataset_sha256,
    });
    let (tuned, head_weights) = split_weights(&best_top, weights);
    let written = write_minilm_dir(out_dir, model_config, tools, &head_weights, &tuned)?;
    let weights_bytes = [HEADS_FILE, TUNED_FILE]
        .iter()
        .filter_map(|name| std::fs::metadata(out_dir.join(name)).ok())
        .map(|m| m.len())
        .sum();
    write_curves(out_dir, &epochs)?;
    let report = TrainReport {
        model_dir: out_dir.to_path_buf(),
        model_version: written.model_version.clone(),
        config: config.clone(),
        train_examples: train_cache.len(),
        validation_examples: validation_set.len(),
        skipped_examples: prepared.skipped + val_prepared.skipped,
        aligned_arguments: prepared.aligned,
        unaligned_arguments: prepared.unaligned,
        unaligned_samples: prepared.samples,
        vocab_words: encoder.wordpiece().len(),
        parameters: parameters + tuned_parameters,
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

/// Scores `model` on `examples` from their wordpiece states `encoded`.
fn validate_cached(
    model: &ToolForgeModel,
    examples: &[Example],
    encoded: &[Encoded],
    tools: &[ToolSpec],
    context: &RouteContext,
) -> (f64, f64) {
    validate_with(examples, tools, |index, example| {
        let scores = encoded
            .get(index)
            .and_then(|e| model.score_states(e))
            .ok_or_else(|| RouteError::Failed("no cached encoder states".into()))?
            .map_err(|e| RouteError::Failed(e.to_string()))?;
        model.decide_scored(&example.query, &scores, context, None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::tiny_encoder;

    /// Cached examples of a few queries with some argument tags.
    fn cached(encoder: &Encoder, specials: bool, tools: usize) -> Vec<Cached> {
        let queries = [
            "weather in paris",
            "what is 12 + 7",
            "translate hello to french",
        ];
        let encoded = if specials {
            encoder.encode_batch_with_specials(&queries, MAX_PIECES)
        } else {
            encoder.encode_batch(&queries, MAX_PIECES)
        }
        .unwrap();
        encoded
            .into_iter()
            .enumerate()
            .map(|(i, encoded)| {
                let n = encoded.tokens.len();
                let mut targets = vec![0.0; tools];
                targets[i % tools] = 1.0;
                Cached {
                    tags: (0..n).map(|t| ((t + i) % 3) as u32).collect(),
                    tools: targets,
                    encoded,
                }
            })
            .collect()
    }

    /// Every trained parameter, heads and tuned layers, moves in one step: no op
    /// on the path drops the gradient (candle's fused layer norm would).
    #[test]
    fn one_step_moves_every_trainable_parameter() {
        let tmp = tempfile::tempdir().unwrap();
        tiny_encoder(tmp.path(), 3);
        let device = Device::Cpu;
        let full = Encoder::load(tmp.path()).unwrap();
        for tune in [0, 2] {
            let config = TrainConfig {
                dim: 16,
                tune_layers: tune,
                weight_decay: 0.0,
                ..TrainConfig::default()
            };
            let bottom = Encoder::load_bottom(tmp.path(), 3 - tune).unwrap();
            let items = cached(&bottom, tune > 0, 4);
            let refs: Vec<&Cached> = items.iter().collect();
            let batch = batch_tensors(&refs, tune > 0, &device).unwrap();
            let mut params = Trainable::new(&full, &config, 4, 5, &device).unwrap();
            assert_eq!(params.top.len(), tune);
            let before = snapshot(&params.varmap).unwrap();
            assert_eq!(before.len(), 6 + 16 * tune);
            params.step(&batch, &config, 1.0).unwrap();
            let after = snapshot(&params.varmap).unwrap();
            for (name, old) in &before {
                let moved = ::toolforge_model::max_abs_diff(old, &after[name]).unwrap();
                assert!(moved > 0.0, "{name} did not change (tune {tune})");
            }
        }
    }

    #[test]
    fn batches_put_tags_under_their_wordpieces() {
        let tmp = tempfile::tempdir().unwrap();
        tiny_encoder(tmp.path(), 1);
        let encoder = Encoder::load(tmp.path()).unwrap();
        for specials in [false, true] {
            let items = cached(&encoder, specials, 2);
            let refs: Vec<&Cached> = items.iter().collect();
            let batch = batch_tensors(&refs, specials, &Device::Cpu).unwrap();
            let len = batch.attention.dims()[1];
            let attention: Vec<Vec<f32>> = batch.attention.to_vec2().unwrap();
            let pieces: Vec<Vec<f32>> = batch.pieces.to_vec2().unwrap();
            let tags: Vec<u32> = batch.tags.to_vec1().unwrap();
            let offset = usize::from(specials);
            for (row, item) in items.iter().enumerate() {
                let n = item.encoded.tokens.len();
                assert_eq!(attention[row].iter().sum::<f32>() as usize, n + 2 * offset);
                assert_eq!(pieces[row].iter().sum::<f32>() as usize, n);
                assert_eq!(pieces[row][offset], 1.0);
                assert_eq!(
                    &tags[row * len + offset..row * len + offset + n],
                    item.tags.as_slice()
                );
            }
        }
    }
}
