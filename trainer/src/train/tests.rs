//! Tests of argument alignment and a tiny end-to-end training run whose saved
//! model directory is then served by `ToolForgeRouter`.

use serde_json::json;
use toolforge_core::Router;
use toolforge_routers::ToolForgeRouter;

use super::*;

fn specs() -> Vec<ToolSpec> {
    serde_json::from_str(include_str!("../../../tests/fixtures/tool_specs.json")).unwrap()
}

fn call(tool: &str, arguments: Value) -> ToolCall {
    ToolCall::new(tool, arguments)
}

/// Tagged spans as (slot key, text).
fn spans(query: &str, calls: &[ToolCall]) -> (Vec<(String, String)>, Alignment) {
    let tools = specs();
    let (_, slots) = describe_tools(&tools);
    let tokens = tokenize(query, 64);
    let a = align(query, &tokens, calls, &slots, &tools);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let tag = a.tags[i] as usize;
        if tag != 0 && tag % 2 == 1 {
            let slot = (tag - 1) / 2;
            let mut end = i;
            while end + 1 < tokens.len() && a.tags[end + 1] as usize == tag_inside(slot) {
                end += 1;
            }
            out.push((
                slots[slot].key(),
                query[tokens[i].start..tokens[end].end].to_string(),
            ));
            i = end + 1;
        } else {
            i += 1;
        }
    }
    (out, a)
}

fn pair(key: &str, text: &str) -> (String, String) {
    (key.to_string(), text.to_string())
}

#[test]
fn aligns_strings_case_insensitively() {
    let (found, a) = spans(
        "who was marie curie?",
        &[call("wikipedia", json!({"topic": "Marie Curie"}))],
    );
    assert_eq!(found, vec![pair("wikipedia.topic", "marie curie")]);
    assert_eq!((a.aligned, a.unaligned.len()), (1, 0));
}

#[test]
fn aligns_numbers_number_words_and_defaults() {
    let (found, _) = spans(
        "convert two kilometers to miles",
        &[call(
            "unit_converter",
            json!({"value": 2, "from_unit": "kilometers", "to_unit": "miles"}),
        )],
    );
    assert!(found.contains(&pair("unit_converter.value", "two")));
    assert!(found.contains(&pair("unit_converter.from_unit", "kilometers")));
    let (found, _) = spans(
        "1,000 usd in eur",
        &[call(
            "unit_converter",
            json!({"value": 1000, "from_unit": "usd", "to_unit": "eur"}),
        )],
    );
    assert!(found.contains(&pair("unit_converter.value", "1,000")));
    // "a gallon": the value is found as "a"; with no such word the default counts as aligned.
    let (found, a) = spans(
        "how many cups in gallon",
        &[call(
            "unit_converter",
            json!({"value": 1, "from_unit": "gallon", "to_unit": "cups"}),
        )],
    );
    assert_eq!(a.unaligned, Vec::<String>::new());
    assert!(!found.iter().any(|(k, _)| k == "unit_converter.value"));
}

#[test]
fn aligns_language_names_and_shared_spans() {
    let (found, a) = spans(
        "say good morning in japanease and french",
        &[
            call(
                "translate",
                json!({"text": "good morning", "target_language": "Japanese"}),
            ),
            call(
                "translate",
                json!({"text": "good morning", "target_language": "French"}),
            ),
        ],
    );
    assert_eq!(
        found,
        vec![
            pair("translate.text", "good morning"),
            pair("translate.target_language", "japanease"),
            pair("translate.target_language", "french"),
        ]
    );
    assert_eq!(a.aligned, 4);
}

#[test]
fn counts_arguments_missing_from_the_query() {
    let (found, a) = spans(
        "weather in paris",
        &[call("weather", json!({"location": "Lyon", "date": null}))],
    );
    assert!(found.is_empty());
    assert_eq!(a.unaligned, vec!["weather.location=\"Lyon\"".to_string()]);
}

#[test]
fn fits_a_temperature() {
    // Overconfident logits on a noisy set get a temperature above 1.
    let logits = vec![vec![8.0f32], vec![8.0], vec![8.0], vec![-8.0]];
    let gold = vec![vec![1.0f32], vec![0.0], vec![1.0], vec![0.0]];
    assert!(fit_temperature(&logits, &gold) > 1.0);
}

#[test]
fn fits_the_unsupported_threshold_on_no_tool_rows() {
    // Columns: one tool, then the unsupported output. Unsupported rows score
    // logits 0.0 and 0.4 (p 0.5, 0.6); direct answers -1.0 and -0.8 (p 0.27, 0.31):
    // any threshold in (0.31, 0.5] separates them, and 0.5 is nearest the default.
    let logits = vec![
        vec![-5.0f32, 0.0],
        vec![-5.0, 0.4],
        vec![-5.0, -1.0],
        vec![-5.0, -0.8],
        vec![5.0, 3.0],
    ];
    let gold = vec![
        vec![0.0f32, 1.0],
        vec![0.0, 1.0],
        vec![0.0, 0.0],
        vec![0.0, 0.0],
        vec![1.0, 0.0],
    ];
    assert_eq!(fit_unsupported_threshold(&logits, &gold, 1.0), 0.5);
    // Unsupported rows that score low pull the threshold down.
    let low = vec![
        vec![-5.0f32, -0.6],
        vec![-5.0, -0.5],
        vec![-5.0, -2.0],
        vec![-5.0, -1.8],
    ];
    let gold = vec![
        vec![0.0f32, 1.0],
        vec![0.0, 1.0],
        vec![0.0, 0.0],
        vec![0.0, 0.0],
    ];
    let t = fit_unsupported_threshold(&low, &gold, 1.0);
    assert!(t > 0.15 && t <= 0.35, "{t}");
    assert_eq!(fit_unsupported_threshold(&[], &[], 1.0), 0.5);
}

#[test]
fn tool_loss_weights_the_rows_that_call_no_tool() {
    let device = Device::Cpu;
    let logits = Tensor::new(&[[2.0f32, -1.0], [0.5, 1.5]], &device).unwrap();
    let targets = Tensor::new(&[[1.0f32, 0.0], [0.0, 0.0]], &device).unwrap();
    let bce = |x: f32, y: f32| x.max(0.0) - x * y + (1.0 + (-x.abs()).exp()).ln();
    let (tool_row, no_tool_row) = (
        bce(2.0, 1.0) + bce(-1.0, 0.0),
        bce(0.5, 0.0) + bce(1.5, 0.0),
    );
    for weight in [1.0, 3.0] {
        let loss = tool_loss(&logits, &targets, weight)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let expected = (tool_row + weight as f32 * no_tool_row) / 4.0;
        assert!(
            (loss - expected).abs() < 1e-6,
            "weight {weight}: {loss} vs {expected}"
        );
    }
}

fn ex(query: &str, calls: Vec<ToolCall>) -> Example {
    Example {
        query: query.to_string(),
        calls,
        source: "test".into(),
        meta: Value::Null,
        ..Example::default()
    }
}

fn weather(place: &str) -> Vec<ToolCall> {
    vec![call("weather", json!({"location": place}))]
}

fn calc(expr: &str) -> Vec<ToolCall> {
    vec![call("calculator", json!({"expression": expr}))]
}

fn translate(text: &str, lang: &str) -> Vec<ToolCall> {
    vec![call(
        "translate",
        json!({"text": text, "target_language": lang}),
    )]
}

fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    for place in [
        "Paris", "Tokyo", "Oslo", "Lima", "Cairo", "Berlin", "Madrid", "Dublin", "Boston",
        "Sydney", "Nairobi", "Seoul",
    ] {
        out.push(ex(&format!("weather in {place}"), weather(place)));
        out.push(ex(
            &format!("is it raining in {}?", place.to_lowercase()),
            weather(place),
        ));
    }
    for (a, b) in [
        (3, 4),
        (12, 7),
        (15, 9),
        (81, 3),
        (2, 10),
        (100, 25),
        (6, 7),
        (9, 8),
    ] {
        out.push(ex(
            &format!("what is {a} + {b}"),
            calc(&format!("{a} + {b}")),
        ));
        out.push(ex(
            &format!("calculate {a} * {b}"),
            calc(&format!("{a} * {b}")),
        ));
    }
    for (text, lang) in [
        ("hello", "French"),
        ("thank you", "Spanish"),
        ("good night", "German"),
        ("cheese", "Italian"),
        ("where is the station", "Japanese"),
        ("i love you", "Korean"),
    ] {
        out.push(ex(
            &format!("translate {text} to {}", lang.to_lowercase()),
            translate(text, lang),
        ));
        out.push(ex(
            &format!("how do you say {text} in {lang}"),
            translate(text, lang),
        ));
    }
    for q in [
        "hi there",
        "how are you",
        "tell me a joke",
        "thanks a lot",
        "good morning",
        "who are you",
        "write me a poem",
        "you are great",
        "hello friend",
        "what can you do",
    ] {
        out.push(ex(q, Vec::new()));
    }
    out
}

#[test]
fn tiny_training_run_is_served_by_the_router() {
    let all = examples();
    assert!(all.len() >= 60);
    let validation: Vec<Example> = all.iter().step_by(6).cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(30);
    let report = train(&all, &validation, &specs(), &config, dir.path(), false).unwrap();
    println!(
        "tiny training: {} examples, {} epochs, {:.0} examples/s, {:.1} s, val acc {:.3}, arg F1 {:.3}, T {}",
        report.train_examples,
        report.epochs.len(),
        report.examples_per_second,
        report.seconds,
        report.validation_tool_set_accuracy,
        report.validation_argument_f1,
        report.temperature
    );
    assert_eq!(
        report.unaligned_arguments, 0,
        "{:?}",
        report.unaligned_samples
    );
    assert!(report.validation_tool_set_accuracy >= 0.9);
    for name in [
        "model.safetensors",
        "config.json",
        "vocab.json",
        "tools.json",
        "manifest.json",
        "training_curve.svg",
        "train_report.json",
    ] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }

    let router = ToolForgeRouter::new(dir.path());
    assert_eq!(router.model_version(), Some(report.model_version.clone()));
    let context = RouteContext::new(specs());
    let decision = router
        .route_sync("weather in Paris", &context)
        .unwrap()
        .expect("a confident decision");
    assert_eq!(decision.router, "toolforge");
    assert_eq!(decision.calls.len(), 1);
    assert_eq!(decision.calls[0].tool, "weather");
    assert_eq!(decision.calls[0].arguments["location"], "Paris");
    let decision = router.route_sync("what is 12 + 7", &context).unwrap();
    if let Some(d) = decision {
        assert_eq!(d.calls[0].tool, "calculator");
        assert_eq!(d.calls[0].arguments["expression"], "12 + 7");
    }
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let all = examples();
    let config = TrainConfig {
        dim: 16,
        layers: 1,
        heads: 2,
        ff_dim: 32,
        batch_size: 16,
        max_epochs: 2,
        min_word_count: 1,
        features: FeatureSizes {
            oov_buckets: 16,
            ngram_buckets: 256,
            max_ngrams: 8,
            max_tokens: 64,
        },
        ..TrainConfig::default()
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = train(&all, &[], &specs(), &config, a.path(), false).unwrap();
    let second = train(&all, &[], &specs(), &config, b.path(), false).unwrap();
    assert_eq!(first.model_version, second.model_version);
    assert!(
        first.validation_examples > 0,
        "a validation share is held out"
    );
}

#[test]
fn wordpieces_take_the_tags_of_their_tokens() {
    let query = "weather in Reykjavik";
    let words = tokenize(query, 64);
    let b = tag_begin(2) as u32;
    let i = tag_inside(2) as u32;
    let pieces =
        [(0, 7), (8, 10), (11, 14), (14, 15), (15, 20)].map(|(start, end)| Token { start, end });
    assert_eq!(
        minilm::project_tags(&words, &[0, 0, b], &pieces),
        vec![0, 0, b, i, i]
    );
}

/// A random BERT encoder in `dir` over the words of [`examples`] (with
/// `layers` layers of width 32), its LayerNorm weights and biases randomised too
/// so that no layer is close to the identity.
pub(super) fn tiny_encoder(dir: &Path, layers: usize) {
    use toolforge_routers::toolforge_model::minilm::{write_random_encoder, ENCODER_WEIGHTS};
    let mut pieces: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in ('a'..='z').chain('0'..='9') {
        pieces.push(c.to_string());
        pieces.push(format!("##{c}"));
    }
    pieces.extend("?.,!'+-*/()%$".chars().map(String::from));
    for example in &examples() {
        for word in example
            .query
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
        {
            if !word.is_empty() && !pieces.iter().any(|p| p == word) {
                pieces.push(word.to_string());
            }
        }
    }
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    write_random_encoder(dir, &refs, 32, layers).unwrap();
    let path = dir.join(ENCODER_WEIGHTS);
    let mut weights = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let mut rng = Rng::new(5);
    for (name, tensor) in weights.iter_mut() {
        if name.contains("LayerNorm") {
            let base = if name.ends_with("weight") { 1.0 } else { 0.0 };
            let values: Vec<f32> = (0..tensor.elem_count())
                .map(|_| base + 0.3 * rng.normal())
                .collect();
            *tensor = Tensor::from_vec(values, tensor.shape(), &Device::Cpu).unwrap();
        }
    }
    candle_core::safetensors::save(&weights, &path).unwrap();
}

/// A tiny `minilm` run on [`examples`] tuning `tune_layers` of a 2-layer random
/// encoder: files, routing, and the router's own validation score equal to the
/// trainer's (the tuned layers reloaded into candle-transformers' BERT).
fn tiny_minilm_run(tune_layers: usize) {
    let all = examples();
    let validation: Vec<Example> = all.iter().step_by(6).cloned().collect();
    let tmp = tempfile::tempdir().unwrap();
    let encoder = tmp.path().join("encoder");
    tiny_encoder(&encoder, 2);
    let out = tmp.path().join("model");
    let config = TrainConfig {
        backbone: Backbone::Minilm,
        encoder: Some(encoder.clone()),
        dim: 32,
        lr: 1e-2,
        encoder_lr: 1e-3,
        tune_layers,
        batch_size: 8,
        max_epochs: 2,
        warmup_steps: 2,
        ..TrainConfig::default()
    };
    let report = train(&all, &validation, &specs(), &config, &out, false).unwrap();
    assert_eq!(report.epochs.len(), 2);
    assert_eq!(
        report.unaligned_arguments, 0,
        "{:?}",
        report.unaligned_samples
    );
    let mut files = vec![
        "heads.safetensors",
        "config.json",
        "tools.json",
        "manifest.json",
        "train_report.json",
        "training_curve.svg",
    ];
    if tune_layers > 0 {
        files.push("encoder_top.safetensors");
    } else {
        assert!(!out.join("encoder_top.safetensors").exists());
    }
    for name in files {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert_eq!(
        manifest.contains("encoder_top.safetensors"),
        tune_layers > 0
    );

    let router = ToolForgeRouter::new(&out);
    assert_eq!(router.model_version(), Some(report.model_version.clone()));
    let model = router.model().unwrap();
    // q, k, v, attention output (32 x 32 + 32 each), 32 -> 64 -> 32 feed-forward, two norms.
    let per_layer = 4 * (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 2 * 32;
    let heads = toolforge_routers::toolforge_model::minilm::Heads::param_count(
        32,
        32,
        model.config().head_outputs(),
        model.config().tag_count(),
    );
    assert_eq!(model.config().head_outputs(), specs().len() + 1);
    assert_eq!(report.parameters, heads + tune_layers * per_layer);
    assert_eq!(
        model.config().encoder.as_ref().unwrap().tuned_layers,
        tune_layers
    );
    let context = RouteContext::new(specs());
    for query in ["weather in Paris", "what is 12 + 7", ""] {
        router.route_sync(query, &context).unwrap();
    }
    let (accuracy, arg_f1) = validate(&model, &validation, &specs(), &context);
    assert!(
        (accuracy - report.validation_tool_set_accuracy).abs() < 1e-9
            && (arg_f1 - report.validation_argument_f1).abs() < 1e-9,
        "router {accuracy} {arg_f1}, trainer {} {}",
        report.validation_tool_set_accuracy,
        report.validation_argument_f1
    );

    let no_encoder = TrainConfig {
        encoder: None,
        ..config.clone()
    };
    let too_deep = TrainConfig {
        tune_layers: 3,
        ..config
    };
    for bad in [no_encoder, too_deep] {
        assert!(matches!(
            train(
                &all,
                &validation,
                &specs(),
                &bad,
                &tmp.path().join("x"),
                false
            ),
            Err(TrainError::Config(_))
        ));
    }
}

#[test]
fn tiny_minilm_training_run_is_served_by_the_router() {
    tiny_minilm_run(0);
}

#[test]
fn tiny_minilm_run_with_a_tuned_top_layer_is_served_by_the_router() {
    tiny_minilm_run(1);
}

#[test]
fn tiny_minilm_run_tuning_every_layer_is_served_by_the_router() {
    tiny_minilm_run(2);
}

#[test]
fn selection_weighs_accuracy_and_argument_f1() {
    assert!(improves_on(None, 0.5, 0.5));
    assert!(improves_on(Some((0.92, 0.88)), 0.91, 0.90));
    assert!(!improves_on(Some((0.92, 0.88)), 0.93, 0.86));
    assert!(improves_on(Some((0.92, 0.88)), 0.93, 0.87));
    assert!(!improves_on(Some((0.92, 0.88)), 0.91, 0.89));
}

fn tiny_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        dim: 32,
        layers: 1,
        heads: 2,
        ff_dim: 64,
        lr: 1e-2,
        batch_size: 8,
        max_epochs: epochs,
        patience: epochs,
        warmup_steps: 5,
        min_word_count: 1,
        features: FeatureSizes {
            oov_buckets: 32,
            ngram_buckets: 1024,
            max_ngrams: 12,
            max_tokens: 64,
        },
        ..TrainConfig::default()
    }
}

fn dice_spec() -> ToolSpec {
    serde_json::from_value(json!({
        "name": "dice",
        "description": "Rolls dice.",
        "parameters": {"type": "object", "properties": {
            "count": {"type": "integer"}, "sides": {"type": "integer"}}}
    }))
    .unwrap()
}

fn dice_examples() -> Vec<Example> {
    let mut out = Vec::new();
    for (count, sides) in [
        (2, 6),
        (3, 20),
        (1, 12),
        (4, 8),
        (5, 10),
        (2, 4),
        (6, 6),
        (3, 100),
    ] {
        let calls = vec![call("dice", json!({"count": count, "sides": sides}))];
        out.push(ex(
            &format!("roll {count} dice with {sides} sides"),
            calls.clone(),
        ));
        out.push(ex(&format!("throw {count} {sides}-sided dice"), calls));
    }
    out
}

#[test]
fn a_warm_start_keeps_the_model_and_learns_a_new_tool() {
    let base_dir = tempfile::tempdir().unwrap();
    let all = examples();
    let validation: Vec<Example> = all.iter().step_by(6).cloned().collect();
    train(
        &all,
        &validation,
        &specs(),
        &tiny_config(20),
        base_dir.path(),
        false,
    )
    .unwrap();
    let base_model = ToolForgeModel::load_dir(base_dir.path()).unwrap();
    let base = WarmStart::from_model(&base_model).unwrap();

    // The registry lists the new tool first: known tools keep their rows anyway.
    let mut tools = vec![dice_spec()];
    tools.extend(specs());
    assert_eq!(base.new_tools(&tools), vec!["dice"]);
    let ordered = base.order_tools(&tools);
    assert_eq!(ordered.last().unwrap().name, "dice");
    let (infos, slots) = describe_tools(&ordered);
    let names: Vec<String> = infos.iter().map(|t| t.name.clone()).collect();
    let arch = base.arch(names.len() + 1, 1 + 2 * slots.len(), 0.0);
    let varmap = VarMap::new();
    Network::init_varmap(&arch, &varmap, 1, &Device::Cpu).unwrap();
    base.seed(&varmap, &names, &slots).unwrap();
    let seeded = varmap.data().lock().unwrap()["tool_head.weight"]
        .as_tensor()
        .to_vec2::<f32>()
        .unwrap();
    let old = base_model.networks().unwrap()[0].named_tensors();
    let old_head = old
        .iter()
        .find(|(n, _)| n == "tool_head.weight")
        .unwrap()
        .1
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(seeded.len(), old_head.len() + 1);
    assert_eq!(seeded[0], old_head[0]);
    assert_eq!(
        seeded.last(),
        old_head.last(),
        "the unsupported row stays last"
    );

    let new = dice_examples();
    let learn: Vec<Example> = new.iter().skip(2).cloned().collect();
    let mut set = all.clone();
    for _ in 0..3 {
        set.extend(learn.iter().cloned());
    }
    let out = tempfile::tempdir().unwrap();
    let report = train_warm(
        &set,
        &validation,
        &tools,
        &base,
        &tiny_config(8),
        out.path(),
        false,
    )
    .unwrap();
    assert_eq!(
        report.vocab_words,
        base.vocab().len(),
        "the vocabulary is kept"
    );
    let router = ToolForgeRouter::new(out.path());
    let context = RouteContext::new(tools.clone());
    let unseen = router
        .route_sync("roll 2 dice with 6 sides", &context)
        .unwrap()
        .expect("a decision");
    assert_eq!(unseen.calls[0].tool, "dice");
    assert_eq!(unseen.calls[0].arguments["sides"], 6);
    let weather = router
        .route_sync("weather in Paris", &context)
        .unwrap()
        .expect("a decision");
    assert_eq!(weather.calls[0].tool, "weather");
}

#[test]
fn seeds_combine_into_a_calibrated_ensemble_and_strangers_are_refused() {
    let all = examples();
    let validation: Vec<Example> = all.iter().step_by(6).cloned().collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for (dir, seed) in dirs.iter().zip([1, 2]) {
        let config = TrainConfig {
            seed,
            ..tiny_config(12)
        };
        train(&all, &validation, &specs(), &config, dir.path(), false).unwrap();
    }
    let members: Vec<PathBuf> = dirs[..2].iter().map(|d| d.path().to_path_buf()).collect();
    let out = tempfile::tempdir().unwrap();
    let report = ensemble::combine(&members, &validation, out.path()).unwrap();
    assert_eq!(report.members.len(), 2);
    assert_ne!(report.members[0], report.members[1]);
    assert_eq!(report.validation_examples, validation.len());
    assert!(report.validation_tool_set_accuracy >= 0.8, "{report:?}");
    assert!(out.path().join("ensemble_report.json").is_file());

    let router = ToolForgeRouter::new(out.path());
    assert_eq!(router.model_version(), Some(report.model_version.clone()));
    let model = router.model().unwrap();
    assert_eq!(model.config().members, 2);
    assert_eq!(model.config().temperature, report.temperature);
    let decision = router
        .route_sync("weather in Paris", &RouteContext::new(specs()))
        .unwrap()
        .expect("a decision");
    assert_eq!(decision.calls[0].tool, "weather");

    // Retraining continues every member: one warm start each, which trains.
    let bases = WarmStart::members(&model).unwrap();
    assert_eq!(bases.len(), 2);
    let warm_dir = tempfile::tempdir().unwrap();
    let warm = train_warm(
        &all,
        &validation,
        &specs(),
        &bases[1],
        &tiny_config(1),
        warm_dir.path(),
        false,
    )
    .unwrap();
    assert_eq!(warm.validation_examples, validation.len());

    // One model is not an ensemble; an ensemble is not a member; a model with
    // another vocabulary cannot be averaged with these.
    let err = |dirs: &[PathBuf]| {
        ensemble::combine(dirs, &validation, tempfile::tempdir().unwrap().path())
            .unwrap_err()
            .to_string()
    };
    assert!(err(&members[..1]).contains("2 to 16"));
    let nested = [members[0].clone(), out.path().to_path_buf()];
    assert!(err(&nested).contains("already an ensemble"));
    let config = TrainConfig {
        min_word_count: 2,
        ..tiny_config(2)
    };
    train(&all, &validation, &specs(), &config, dirs[2].path(), false).unwrap();
    let stranger = [members[0].clone(), dirs[2].path().to_path_buf()];
    assert!(err(&stranger).contains("differs from the first member"));
}
