//! Router-level tests: loading and saving model directories, failures reported
//! as `Unavailable` (never a panic), and a latency print with full-size weights.

use std::time::Instant;

use candle_nn::VarMap;
use serde_json::{json, Value};

use super::features::FeatureSizes;
use super::files::describe_tools;
use super::network::{training_builder, ArchConfig};
use super::*;

fn specs() -> Vec<ToolSpec> {
    serde_json::from_str(include_str!("../../../tests/fixtures/tool_specs.json")).unwrap()
}

/// A randomly initialised model written to `dir`.
fn random_model(dir: &Path, dim: usize, words: usize) -> ModelConfig {
    random_model_seeded(dir, dim, words, 5).0
}

/// [`random_model`] from the initialisation seed `seed`, also returning the
/// vocabulary, tools and weights it wrote.
fn random_model_seeded(
    dir: &Path,
    dim: usize,
    words: usize,
    seed: u64,
) -> (ModelConfig, Vocab, Vec<ToolSpec>, HashMap<String, Tensor>) {
    let tools = specs();
    let (infos, slots) = describe_tools(&tools);
    let corpus: Vec<String> = (0..words)
        .flat_map(|i| [format!("w{i}"), format!("w{i}")])
        .collect();
    let vocab = Vocab::build(
        corpus.iter().map(String::as_str),
        2,
        words,
        FeatureSizes::default(),
    );
    let sizes = vocab.sizes();
    let arch = ArchConfig {
        dim,
        layers: 2,
        heads: 4,
        ff_dim: 2 * dim,
        max_tokens: sizes.max_tokens as usize,
        word_rows: vocab.word_rows(),
        ngram_buckets: sizes.ngram_buckets as usize,
        max_ngrams: sizes.max_ngrams as usize,
        shapes: SHAPES,
        tools: infos.len(),
        tags: 1 + 2 * slots.len(),
        dropout: 0.1,
    };
    let varmap = VarMap::new();
    Network::init_varmap(&arch, &varmap, seed, &Device::Cpu).unwrap();
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
        backbone: "compact".into(),
        architecture: arch,
        tools: infos,
        unsupported_output: false,
        unsupported_threshold: 0.5,
        slots,
        temperature: 1.0,
        threshold: 0.0,
        tool_threshold: 0.5,
        members: 1,
        encoder: None,
        training: Value::Null,
    };
    // The network builds from the same parameters.
    Network::new(
        &training_builder(&varmap, &Device::Cpu),
        &config.architecture,
    )
    .unwrap();
    let written = write_model_dir(dir, config, &vocab, &tools, &weights).unwrap();
    (written, vocab, tools, weights)
}

#[test]
fn an_ensemble_scores_the_mean_of_its_members() {
    let member_dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let parts: Vec<_> = member_dirs
        .iter()
        .zip([5, 6])
        .map(|(dir, seed)| random_model_seeded(dir.path(), 16, 20, seed))
        .collect();
    let (config, vocab, tools, _) = &parts[0];
    let weights: Vec<HashMap<String, Tensor>> = parts.iter().map(|p| p.3.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config.clone();
    config.model_version.clear();
    let written = write_members_dir(dir.path(), config, vocab, tools, &weights).unwrap();
    assert_eq!(written.members, 2);
    let ensemble = ToolForgeModel::load_dir(dir.path()).unwrap();
    assert_eq!(ensemble.config().members, 2);

    let query = "w1 w3 weather in paris tomorrow";
    let [a, b] = member_dirs.each_ref().map(|d| {
        ToolForgeModel::load_dir(d.path())
            .unwrap()
            .score(query)
            .unwrap()
    });
    assert_ne!(a.tool_logits, b.tool_logits, "the members must differ");
    let mean = ensemble.score(query).unwrap();
    let close = |got: &[f32], x: &[f32], y: &[f32]| {
        assert_eq!(got.len(), x.len());
        for ((g, x), y) in got.iter().zip(x).zip(y) {
            assert!((g - (x + y) / 2.0).abs() < 1e-4, "{g} vs {x} and {y}");
        }
    };
    close(&mean.tool_logits, &a.tool_logits, &b.tool_logits);
    close(&mean.tag_logits, &a.tag_logits, &b.tag_logits);
    assert_eq!(mean.sentence, [a.sentence, b.sentence].concat());
    let context = RouteContext::new(specs());
    assert!(ensemble.decide(query, &context, Some(0.0)).is_ok());

    // A config naming members the weights lack is a clear load error.
    std::fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
    let config_path = dir.path().join(CONFIG_FILE);
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["members"] = json!(3);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let err = ToolForgeModel::load_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("member2"), "{err}");
    config["members"] = json!(0);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let err = ToolForgeModel::load_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("members must be 1 to 16"), "{err}");
    assert!(write_members_dir(dir.path(), written, vocab, tools, &[]).is_err());
}

#[test]
fn missing_model_dir_is_unavailable_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let router = ToolForgeRouter::new(dir.path().join("nope"));
    let context = RouteContext::new(specs());
    for _ in 0..2 {
        match router.route_sync("weather in paris", &context) {
            Err(RouteError::Unavailable(reason)) => {
                assert!(reason.contains("config.json"), "{reason}")
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
    assert_eq!(router.model_version(), None);
    assert_eq!(router.model_dir(), Some(dir.path().join("nope").as_path()));
}

#[test]
fn embedded_router_reports_why_it_is_unavailable() {
    let router = ToolForgeRouter::embedded();
    let result = router.route_sync("hi", &RouteContext::new(specs()));
    if has_embedded_model() {
        assert!(result.is_ok());
    } else {
        match result {
            Err(RouteError::Unavailable(reason)) => {
                assert!(reason.contains("no embedded model"), "{reason}")
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
}

#[test]
fn saved_model_loads_routes_and_rejects_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let config = random_model(dir.path(), 16, 20);
    assert!(config.model_version.starts_with("toolforge-compact-"));
    let router = ToolForgeRouter::new(dir.path());
    assert_eq!(router.model_version(), Some(config.model_version.clone()));
    let context = RouteContext::new(specs());
    for query in [
        "weather in paris",
        "",
        "   ",
        &"word ".repeat(500),
        "héllo wörld ✨",
    ] {
        let result = router.route_sync(query, &context);
        assert!(result.is_ok(), "{query:?}: {result:?}");
        if let Ok(Some(decision)) = result {
            assert_eq!(decision.router, "toolforge");
            let c = decision.confidence.unwrap();
            assert!((0.0..=1.0).contains(&c));
        }
    }

    // A tampered file fails the manifest check.
    let copy = tempfile::tempdir().unwrap();
    for name in [
        CONFIG_FILE,
        VOCAB_FILE,
        TOOLS_FILE,
        WEIGHTS_FILE,
        MANIFEST_FILE,
    ] {
        std::fs::copy(dir.path().join(name), copy.path().join(name)).unwrap();
    }
    let mut weights = std::fs::read(copy.path().join(WEIGHTS_FILE)).unwrap();
    let last = weights.len() - 1;
    weights[last] ^= 0xff;
    std::fs::write(copy.path().join(WEIGHTS_FILE), &weights).unwrap();
    match ToolForgeRouter::new(copy.path()).route_sync("hi", &context) {
        Err(RouteError::Unavailable(reason)) => assert!(reason.contains("manifest"), "{reason}"),
        other => panic!("expected unavailable, got {other:?}"),
    }

    // Without the manifest, garbage weights and bad JSON are errors, not panics.
    std::fs::remove_file(copy.path().join(MANIFEST_FILE)).unwrap();
    std::fs::write(copy.path().join(WEIGHTS_FILE), b"not safetensors").unwrap();
    assert!(matches!(
        ToolForgeRouter::new(copy.path()).route_sync("hi", &context),
        Err(RouteError::Unavailable(_))
    ));
    std::fs::copy(
        dir.path().join(WEIGHTS_FILE),
        copy.path().join(WEIGHTS_FILE),
    )
    .unwrap();
    assert!(ToolForgeRouter::new(copy.path())
        .route_sync("hi", &context)
        .is_ok());
    std::fs::write(copy.path().join(CONFIG_FILE), b"{\"format\": 1").unwrap();
    assert!(matches!(
        ToolForgeRouter::new(copy.path()).route_sync("hi", &context),
        Err(RouteError::Unavailable(_))
    ));
    // A config whose sizes do not match the weights.
    let mut bad: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(CONFIG_FILE)).unwrap()).unwrap();
    bad["architecture"]["dim"] = json!(32);
    std::fs::write(copy.path().join(CONFIG_FILE), bad.to_string()).unwrap();
    assert!(matches!(
        ToolForgeRouter::new(copy.path()).route_sync("hi", &context),
        Err(RouteError::Unavailable(_))
    ));
}

#[test]
fn single_query_latency_with_full_size_weights() {
    let dir = tempfile::tempdir().unwrap();
    random_model(dir.path(), 96, 8000);
    let bytes = std::fs::metadata(dir.path().join(WEIGHTS_FILE))
        .unwrap()
        .len();
    let router = ToolForgeRouter::new(dir.path());
    let context = RouteContext::new(specs());
    let model = router.model().unwrap();
    let queries = [
        "whats the weather in paris and what time is it there",
        "convert 26.2 miles to km",
        "hey how are you doing today",
        "who was marie curie",
    ];
    for q in queries {
        model.decide(q, &context, None).unwrap();
    }
    let mut times = Vec::new();
    for _ in 0..50 {
        for q in queries {
            let start = Instant::now();
            model.decide(q, &context, None).unwrap();
            times.push(start.elapsed().as_micros());
        }
    }
    times.sort_unstable();
    println!(
        "toolforge latency (dim 96, 8k words, {:.1} MB weights): p50 {} us, p90 {} us, params {}",
        bytes as f64 / 1e6,
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        Network::param_count(&model.config().architecture)
    );
}

#[test]
fn fast_inference_matches_the_candle_network() {
    let dir = tempfile::tempdir().unwrap();
    random_model(dir.path(), 32, 50);
    let model = ToolForgeModel::load_dir(dir.path()).unwrap();
    for query in [
        "whats the weather in Paris and what time is it there",
        "hi",
        "w1 w2 w3 ?",
    ] {
        let scores = model.score(query).unwrap();
        let texts: Vec<&str> = scores.tokens.iter().map(|t| t.text(query)).collect();
        let features = model.vocab().unwrap().featurize(&texts);
        let batch = network::Batch::new(&[&features], 16, &Device::Cpu).unwrap();
        let weights = read_weights(&std::fs::read(dir.path().join(WEIGHTS_FILE)).unwrap()).unwrap();
        let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let network = Network::new(&vb, &model.config().architecture).unwrap();
        let out = network.forward(&batch, None).unwrap();
        let tools: Vec<f32> = out.tool_logits.flatten_all().unwrap().to_vec1().unwrap();
        let tags: Vec<f32> = out.tag_logits.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(tools.len(), scores.tool_logits.len());
        assert_eq!(tags.len(), scores.tag_logits.len());
        for (a, b) in tools
            .iter()
            .chain(&tags)
            .zip(scores.tool_logits.iter().chain(&scores.tag_logits))
        {
            assert!((a - b).abs() < 1e-3, "{query}: {a} vs {b}");
        }
    }
}
