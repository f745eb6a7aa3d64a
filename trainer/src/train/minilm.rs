//! Training of the `minilm` backbone: the pretrained encoder stays frozen, its
//! last hidden states are computed once for every training and validation
//! example, and only the heads are trained (candle autograd + AdamW) on those
//! cached states. Argument tags come from the compact alignment, projected from
//! our tokens onto the wordpieces; selection, early stopping and temperature
//! fitting are the compact trainer's.

use std::sync::Arc;

use candle_nn::Optimizer;
use toolforge_routers::toolforge_model::decode::{tag_begin, tag_inside, TAG_O};
use toolforge_routers::toolforge_model::minilm::{
    write_minilm_dir, Encoded, Encoder, EncoderRef, Heads, BACKBONE, HEADS_FILE, MAX_PIECES,
};

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

fn bar(len: usize, progress: bool, template: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Runs the encoder over `queries`, with a progress bar.
fn encode_all(
    encoder: &Encoder,
    queries: &[&str],
    what: &str,
    progress: bool,
) -> Result<Vec<Encoded>, TrainError> {
    let bar = bar(
        queries.len(),
        progress,
        "{msg} [{bar:30}] {pos}/{len} queries ({elapsed}, eta {eta})",
    );
    bar.set_message(format!("encoding {what}"));
    let mut out = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(ENCODE_BATCH) {
        out.extend(encoder.encode_batch(chunk, MAX_PIECES)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// One cached training example.
struct Cached {
    encoded: Encoded,
    tags: Vec<u32>,
    tools: Vec<f32>,
}

/// Cached examples of `set` that `prepare` kept (with the kept examples).
fn cache(
    encoder: &Encoder,
    set: &[Example],
    prepared: &Prepare,
    what: &str,
    progress: bool,
) -> Result<(Vec<Example>, Vec<Cached>), TrainError> {
    let kept: Vec<Example> = prepared.kept.iter().map(|&i| set[i].clone()).collect();
    let queries: Vec<&str> = kept.iter().map(|e| e.query.as_str()).collect();
    let encoded = encode_all(encoder, &queries, what, progress)?;
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
fn batch_tensors(
    items: &[&Cached],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor, Tensor, Tensor, Tensor, f64)> {
    let len = items
        .iter()
        .map(|c| c.encoded.tokens.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut states = Vec::with_capacity(items.len());
    let mut mask = vec![0f32; items.len() * len];
    let mut tags = vec![0u32; items.len() * len];
    for (row, item) in items.iter().enumerate() {
        let n = item.encoded.tokens.len();
        states.push(item.encoded.states.pad_with_zeros(0, 0, len - n)?);
        mask[row * len..row * len + n].fill(1.0);
        for (i, tag) in item.tags.iter().take(n).enumerate() {
            tags[row * len + i] = *tag;
        }
    }
    let tag_count = f64::from(mask.iter().sum::<f32>()).max(1.0);
    let tools: Vec<f32> = items.iter().flat_map(|c| c.tools.iter().copied()).collect();
    let n_tools = items.first().map_or(0, |c| c.tools.len());
    Ok((
        Tensor::stack(&states, 0)?,
        Tensor::from_vec(mask.clone(), (items.len(), len), device)?,
        Tensor::from_vec(tools, (items.len(), n_tools), device)?,
        Tensor::from_vec(tags, items.len() * len, device)?,
        Tensor::from_vec(mask, items.len() * len, device)?,
        tag_count,
    ))
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
    let (_, train_cache) = cache(&encoder, &train_set, &prepared, "training split", progress)?;
    let (validation_set, val_cache) = cache(
        &encoder,
        &validation_set,
        &val_prepared,
        "validation split",
        progress,
    )?;

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
        tools: tool_names.len(),
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
        }),
        tools: tool_infos,
        slots,
        temperature: 1.0,
        threshold: config.threshold,
        tool_threshold: 0.5,
        training: Value::Null,
    };

    let varmap = VarMap::new();
    Heads::init_varmap(
        &varmap,
        hidden,
        dim,
        tool_names.len(),
        tags,
        config.seed,
        &device,
    )?;
    let heads = Heads::new(
        &training_builder(&varmap, &device),
        hidden,
        dim,
        tool_names.len(),
        tags,
    )?;
    let mut optimizer = candle_nn::AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: config.lr,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let context = RouteContext::new(tools.to_vec());
    let steps_per_epoch = train_cache.len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.max_epochs;
    let bar = bar(
        total_steps,
        progress,
        "{msg} [{bar:30}] {pos}/{len} steps ({elapsed}, eta {eta})",
    );

    let mut order: Vec<usize> = (0..train_cache.len()).collect();
    let mut epochs: Vec<EpochStats> = Vec::new();
    let mut best: Option<(f64, f64, usize, HashMap<String, Tensor>)> = None;
    let mut since_best = 0;
    let mut step = 0usize;
    let mut train_seconds = 0.0;
    let mut trained_examples = 0usize;
    for epoch in 1..=config.max_epochs {
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
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        for chunk in order.chunks(config.batch_size) {
            let warm = ((step + 1) as f64 / config.warmup_steps.max(1) as f64).min(1.0);
            let decay = 1.0 - 0.9 * (step as f64 / total_steps.max(1) as f64);
            optimizer.set_learning_rate(config.lr * warm * decay);
            let items: Vec<&Cached> = chunk.iter().map(|&i| &train_cache[i]).collect();
            let (states, mask, gold_tools, gold_tags, tag_mask, tag_count) =
                batch_tensors(&items, &device)?;
            let out = heads.forward(&states, &mask, config.dropout)?;
            let tool_loss = bce_with_logits(&out.tool_logits, &gold_tools)?;
            let flat = out.tag_logits.flatten_to(1)?;
            let log_probs = candle_nn::ops::log_softmax(&flat, D::Minus1)?;
            let picked = log_probs.gather(&gold_tags.unsqueeze(1)?, 1)?.squeeze(1)?;
            let tag_loss = ((picked * &tag_mask)?.sum_all()? * (-1.0 / tag_count))?;
            let loss = (tool_loss + (tag_loss * config.tag_loss_weight)?)?;
            optimizer.backward_step(&loss)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * items.len() as f64;
            step += 1;
            bar.inc(1);
        }
        train_seconds += epoch_start.elapsed().as_secs_f64();
        trained_examples += order.len();
        let train_loss = loss_sum / order.len().max(1) as f64;
        let current = ToolForgeModel::from_minilm(
            model_config.clone(),
            tools.to_vec(),
            encoder.clone(),
            heads.clone(),
        )?;
        let (accuracy, arg_f1) =
            validate_cached(&current, &validation_set, &val_cache, tools, &context);
        epochs.push(EpochStats {
            epoch,
            train_loss,
            validation_tool_set_accuracy: accuracy,
            validation_argument_f1: arg_f1,
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
        let improved = improves_on(best.as_ref().map(|(a, f, _, _)| (*a, *f)), accuracy, arg_f1);
        if improved {
            best = Some((accuracy, arg_f1, epoch, snapshot(&varmap)?));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= config.patience.max(1) {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let Some((accuracy, arg_f1, best_epoch, weights)) = best else {
        return Err(TrainError::NoData);
    };

    // Calibrate the best heads' tool probabilities on validation.
    let vb = VarBuilder::from_tensors(weights.clone(), DType::F32, &device);
    let best_heads = Heads::new(&vb, hidden, dim, tool_names.len(), tags)?;
    let best_model = ToolForgeModel::from_minilm(
        model_config.clone(),
        tools.to_vec(),
        encoder.clone(),
        best_heads,
    )?;
    let mut val_logits = Vec::with_capacity(val_cache.len());
    let mut val_gold = Vec::with_capacity(val_cache.len());
    for cached in &val_cache {
        if let Some(scores) = best_model.score_states(&cached.encoded) {
            val_logits.push(scores?.tool_logits);
            val_gold.push(cached.tools.clone());
        }
    }
    let temperature = fit_temperature(&val_logits, &val_gold);
    model_config.temperature = temperature;
    let parameters = Heads::param_count(hidden, dim, tool_names.len(), tags);
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
        "seed": config.seed,
        "dataset_sha256": config.dataset_sha256,
    });
    let written = write_minilm_dir(out_dir, model_config, tools, &weights)?;
    let weights_bytes = std::fs::metadata(out_dir.join(HEADS_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
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

/// Scores `model` on `examples` from their cached encoder states.
fn validate_cached(
    model: &ToolForgeModel,
    examples: &[Example],
    cached: &[Cached],
    tools: &[ToolSpec],
    context: &RouteContext,
) -> (f64, f64) {
    validate_with(examples, tools, |index, example| {
        let scores = cached
            .get(index)
            .and_then(|c| model.score_states(&c.encoded))
            .ok_or_else(|| RouteError::Failed("no cached encoder states".into()))?
            .map_err(|e| RouteError::Failed(e.to_string()))?;
        model.decide_scored(&example.query, &scores, context, None)
    })
}
