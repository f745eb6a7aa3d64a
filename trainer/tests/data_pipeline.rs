//! End to end through the data tools: run log -> examples -> filter -> split ->
//! export, through the public API only.

use std::collections::HashMap;

use serde_json::{json, Value};
use toolforge_core::{
    CallRecord, Feedback, RouteDecision, RunRecord, StageOutcome, StageRecord, ToolCall, ToolSpec,
    RUN_RECORD_SCHEMA_VERSION,
};
use toolforge_trainer::export::{export, ExportFormat};
use toolforge_trainer::filter::{filter_examples, FilterConfig, RejectReason};
use toolforge_trainer::logs::{append_feedback, examples_from_logs, LogsPolicy};
use toolforge_trainer::split::{
    read_split, split, stats, verify_splits, write_splits, Provenance, SplitConfig,
};

fn tools() -> Vec<ToolSpec> {
    toolforge_tools::builtin_tools(&Default::default())
        .iter()
        .map(|t| t.spec())
        .collect()
}

fn run(id: usize, query: &str, calls: Vec<ToolCall>) -> RunRecord {
    let decision = RouteDecision {
        calls: calls.clone(),
        router: "toolforge".into(),
        confidence: Some(0.95),
        unsupported: false,
    };
    RunRecord {
        schema_version: RUN_RECORD_SCHEMA_VERSION,
        run_id: format!("run-{id}"),
        timestamp: "2026-03-01T12:00:00.000Z".into(),
        query: query.into(),
        stages: vec![StageRecord {
            router: "toolforge".into(),
            outcome: StageOutcome::Decided {
                decision: decision.clone(),
            },
            confidence: Some(0.95),
            latency_us: 800,
        }],
        calls: calls
            .iter()
            .map(|c| CallRecord {
                tool: c.tool.clone(),
                arguments: c.arguments.clone(),
                output: Some(json!({"summary": "ok"})),
                error: None,
                duration_us: 1000,
            })
            .collect(),
        decision,
        answer: "done".into(),
        feedback: None,
        router_model_version: Some("tf-2026-03".into()),
        total_us: 2000,
    }
}

#[test]
fn logs_become_split_and_exported_training_data() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let cities = [
        "Oslo", "Lima", "Tokyo", "Nairobi", "Quito", "Perth", "Dakar", "Riga",
    ];
    let mut lines = Vec::new();
    let mut id = 0;
    for (i, city) in cities.iter().enumerate() {
        id += 1;
        let weather = ToolCall::new("weather", json!({"location": city}));
        lines.push(run(id, &format!("weather in {city}"), vec![weather]));
        id += 1;
        let expression = format!("{} * 3", i + 2);
        let calc = ToolCall::new("calculator", json!({"expression": expression}));
        lines.push(run(id, &format!("what is {expression}"), vec![calc]));
        id += 1;
        lines.push(run(id, &format!("thanks, bye from {city}"), vec![]));
    }
    // A repeated query and a router mistake the user corrects later.
    lines.push(run(
        100,
        "weather in Oslo",
        vec![ToolCall::new("weather", json!({"location": "Oslo"}))],
    ));
    lines.push(run(
        101,
        "define ephemeral",
        vec![ToolCall::new("wikipedia", json!({"topic": "ephemeral"}))],
    ));
    // The router produced arguments the schema rejects.
    lines.push(run(
        102,
        "weather please",
        vec![ToolCall::new("weather", json!({"city": "Rome"}))],
    ));
    let mut text: String = lines
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    text.push_str("{\"truncated\": \n");
    std::fs::write(&log, text).unwrap();

    let corrected = RouteDecision {
        calls: vec![ToolCall::new("dictionary", json!({"word": "ephemeral"}))],
        router: "user".into(),
        confidence: None,
        unsupported: false,
    };
    append_feedback(
        &log,
        "run-101",
        Feedback::Corrected {
            decision: corrected,
        },
    )
    .unwrap();

    let (examples, logs_report) =
        examples_from_logs(&log, &HashMap::new(), &LogsPolicy::default()).unwrap();
    assert_eq!(logs_report.corrupt_lines, 1);
    assert_eq!(examples.len(), 27);

    let tools = tools();
    let config = FilterConfig {
        eval_queries: vec!["What is 4 * 3?".into()],
        ..FilterConfig::default()
    };
    let (clean, filter_report) = filter_examples(examples, &tools, &config);
    assert_eq!(filter_report.count(RejectReason::Duplicate), 1);
    assert_eq!(filter_report.count(RejectReason::Schema), 1);
    // "what is 4 * 3" is in the evaluation set.
    assert_eq!(filter_report.count(RejectReason::Leakage), 1);
    assert_eq!(clean.len(), 24);
    assert!(clean
        .iter()
        .any(|e| e.source == "logs:feedback_corrected" && e.calls[0].tool == "dictionary"));

    let splits = split(clean, &SplitConfig::default());
    assert!(splits.validation.iter().any(|e| e.calls.is_empty()));
    assert!(splits.test.iter().any(|e| e.calls.is_empty()));
    let out = dir.path().join("dataset");
    let provenance = Provenance::new(["toolforge", "data", "from-logs", "runs.jsonl"], &tools);
    let manifest = write_splits(&out, &splits, &provenance).unwrap();
    assert_eq!(manifest.total, 24);
    assert_eq!(manifest.tools.len(), 8);
    assert_eq!(verify_splits(&out).unwrap(), manifest);
    let train = read_split(&out, "train").unwrap();
    assert_eq!(train, splits.train);

    let table = stats(&splits).to_string();
    assert!(table.contains("| weather"), "{table}");

    for format in ExportFormat::ALL {
        let mut buffer = Vec::new();
        let written = export(&train, &tools, format, &mut buffer).unwrap();
        assert_eq!(written, train.len());
        let text = String::from_utf8(buffer).unwrap();
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).unwrap();
            assert!(value.is_object(), "{format}: {line}");
        }
    }
}
