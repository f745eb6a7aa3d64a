//! The generative router on tiny random-weight Llama and Qwen2 models the test
//! writes itself (GGUF files, a Qwen2 safetensors folder, a LoRA adapter): with constraints every output parses to a valid decision even though
//! the weights are noise; without them, a broken answer abstains; a missing
//! model is an error a chain can fall back from.

use std::path::PathBuf;

use toolforge_core::{RouteContext, RouteError, Router, ToolSpec};
use toolforge_model::causal_lm::tiny;
use toolforge_routers::GenerativeRouter;

fn tools() -> Vec<ToolSpec> {
    // A few tools: the tiny tokenizer spells the prompt almost byte by byte.
    let mut specs: Vec<ToolSpec> = toolforge_tools::builtin_tools(&Default::default())
        .iter()
        .map(|tool| tool.spec())
        .filter(|spec| ["calculator", "unit_converter", "translate"].contains(&spec.name.as_str()))
        .collect();
    specs.push(ToolSpec {
        name: "password".into(),
        description: "Generates a random password.".into(),
        parameters: serde_json::json!({"type": "object", "additionalProperties": false, "properties": {
            "length": {"type": "integer", "minimum": 4, "maximum": 128},
            "symbols": {"type": "boolean"}}}),
    });
    specs
}

fn tiny_model(seed: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    // Seeds 0-1: Llama GGUF (forked prefix); 2-3: Qwen2 GGUF (prompt
    // recomputed); 4-5: a Qwen2 safetensors folder (forked); even: Q4_1 or bf16.
    let compact = seed.is_multiple_of(2);
    match seed {
        0 | 1 => tiny::write_llama(&path, seed, compact).unwrap(),
        2 | 3 => tiny::write_qwen2(&path, seed, compact).unwrap(),
        _ => {
            let folder = dir.path().join("tiny-hf");
            tiny::write_qwen2_safetensors(&folder, seed, compact).unwrap();
            return (dir, folder);
        }
    }
    (dir, path)
}

const QUERIES: [&str; 8] = [
    "weather in Oslo tomorrow",
    "what is 17% of 230",
    "translate good night to German",
    "hi",
    "define serendipity",
    "convert 5 miles to km",
    "make me a 20 character password",
    "who wrote Dune",
];

#[tokio::test]
async fn with_constraints_every_output_of_random_weights_is_a_valid_decision() {
    let context = RouteContext::new(tools());
    let mut calls = 0;
    for seed in 0..6 {
        let (dir, path) = tiny_model(seed);
        let adapter = dir.path().join("adapter");
        tiny::write_adapter(
            &adapter,
            &serde_json::json!({"r": 4, "lora_alpha": 8, "target_modules": ["v_proj"]}),
            &[("model.layers.1.self_attn.v_proj", 32, 64)],
            seed,
        )
        .unwrap();
        let with_adapter = seed % 3 == 0;
        let forced = GenerativeRouter::new(&path)
            .adapter(with_adapter.then_some(adapter))
            .require_call(true);
        let free_to_answer = GenerativeRouter::new(&path);
        for query in QUERIES {
            let decision = forced
                .route(query, &context)
                .await
                .unwrap()
                .expect("a constrained router always decides");
            assert!(!decision.calls.is_empty(), "{query}: a call was required");
            for call in &decision.calls {
                let spec = context
                    .tools
                    .iter()
                    .find(|t| t.name == call.tool)
                    .expect("a registered tool");
                spec.validate(&serde_json::Value::Object(call.arguments.clone()))
                    .unwrap_or_else(|e| panic!("{query}: {e}: {call:?}"));
                calls += 1;
            }
            let confidence = decision.confidence.unwrap();
            assert!((0.0..=1.0).contains(&confidence));
            let maybe_direct = free_to_answer.route(query, &context).await.unwrap();
            assert!(maybe_direct.is_some());
        }
        let version = forced.model_version().unwrap();
        assert!(version.starts_with("generative-tiny"), "{version}");
        assert_eq!(version.contains("+adapter"), with_adapter, "{version}");
    }
    assert!(calls >= 48);
}

#[tokio::test]
async fn without_constraints_broken_answers_abstain_and_never_panic() {
    let context = RouteContext::new(tools());
    let (_dir, path) = tiny_model(5);
    let router = GenerativeRouter::new(&path).constrained(false);
    for query in QUERIES {
        if let Some(decision) = router.route(query, &context).await.unwrap() {
            for call in &decision.calls {
                let spec = context.tools.iter().find(|t| t.name == call.tool).unwrap();
                assert!(spec
                    .validate(&serde_json::Value::Object(call.arguments.clone()))
                    .is_ok());
            }
        }
    }
}

#[tokio::test]
async fn a_missing_model_or_adapter_is_unavailable() {
    let router = GenerativeRouter::new("/nonexistent/model.gguf");
    let error = router
        .route("hi", &RouteContext::new(tools()))
        .await
        .unwrap_err();
    assert!(matches!(error, RouteError::Unavailable(_)), "{error}");
    let (_dir, path) = tiny_model(0);
    let router = GenerativeRouter::new(&path).adapter(Some("/nonexistent/lora".into()));
    let error = router
        .route("hi", &RouteContext::new(tools()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RouteError::Unavailable(m) if m.contains("/nonexistent/lora")),
        "{error}"
    );
}
