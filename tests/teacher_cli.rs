//! Teacher commands against a loopback OpenAI-compatible server: `data queries`
//! asks for diverse queries, `data distill` labels them (resumable), and `data
//! filter` keeps the valid labels and counts the hallucinated ones.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use toolforge::tools::fixture::{FixtureServer, Reply};

fn teacher_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("teacher.toml");
    std::fs::write(
        &path,
        format!(
            "api = \"openai\"\nbase_url = \"{url}\"\nmodel = \"tiny\"\nmin_gap_ms = 0\nbackoff_ms = 1\n\
             slots = [{{ api_key_env = \"TOOLFORGE_TEST_TEACHER_KEY\" }}]\n"
        ),
    )
    .unwrap();
    path
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(args)
        .env("TOOLFORGE_TEST_TEACHER_KEY", "sk-test-123456")
        .env("TOOLFORGE_LOG", "off")
        .env_remove("TOOLFORGE_CONFIG")
        .output()
        .unwrap()
}

fn chat(message: Value) -> Reply {
    Reply::json(
        200,
        &json!({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_then_distill_then_filter() {
    let dir = tempfile::tempdir().unwrap();
    let generator = FixtureServer::start(vec![(
        "POST /chat/completions",
        vec![chat(json!({"role": "assistant",
            "content": "```json\n[\"weather in oslo tmrw\", \"is it gonna rain in lima\"]\n```"}))],
    )])
    .await;
    let queries = dir.path().join("queries.jsonl");
    let output = run(&[
        "data", "queries", "--count", "4", "--mix", "weather=1,web_search=0,calculator=0,translate=0,wikipedia=0,no_tool=0,dictionary=0,datetime=0,unit_converter=0,autonomous_task=0,multi=0,unsupported=0",
        "--out", queries.to_str().unwrap(),
        "--teacher", teacher_config(dir.path(), generator.url()).to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = std::fs::read_to_string(&queries)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "duplicates across batches are dropped");
    assert_eq!(lines[0]["meta"]["class"], "weather");

    let labeler = FixtureServer::start(vec![(
        "POST /chat/completions",
        vec![
            chat(json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "weather", "arguments": "{\"location\": \"Oslo\", \"date\": \"tomorrow\"}"}}]})),
            chat(json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c2", "type": "function",
                "function": {"name": "umbrella_finder", "arguments": "{}"}}]})),
        ],
    )])
    .await;
    let distilled = dir.path().join("distilled.jsonl");
    let teacher = teacher_config(dir.path(), labeler.url());
    let args = [
        "data",
        "distill",
        "--queries",
        queries.to_str().unwrap(),
        "--out",
        distilled.to_str().unwrap(),
        "--teacher",
        teacher.to_str().unwrap(),
    ];
    let output = run(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(labeler.requests().len(), 2);
    assert_eq!(
        labeler.requests()[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bearer sk-test-123456")
    );
    // A rerun resumes: nothing left to ask.
    assert!(run(&args).status.success());
    assert_eq!(labeler.requests().len(), 2);

    let clean = dir.path().join("clean.jsonl");
    let output = run(&[
        "data",
        "filter",
        "--input",
        distilled.to_str().unwrap(),
        "--out",
        clean.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(report.contains("hallucinated_tool"), "{report}");
    let kept: Value =
        serde_json::from_str(std::fs::read_to_string(&clean).unwrap().trim()).unwrap();
    assert_eq!(kept["calls"][0]["arguments"]["location"], "Oslo");
    assert_eq!(kept["source"], "teacher:openai:tiny");
}
