//! End-to-end tests of the `toolforge` binary: `route` obeys the contract line for
//! line (including error lines for bad input), `ask --json` runs the whole agent
//! offline, and `tools --json` lists the nine tools with generated schemas.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn toolforge(args: &[&str], stdin: Option<&[u8]>, log: &std::path::Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(args)
        .env("TOOLFORGE_LOG_PATH", log)
        .env_remove("TOOLFORGE_CONFIG")
        .env_remove("TOOLFORGE_ROUTER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn toolforge");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("toolforge output")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn route_answers_every_line_in_order_with_errors_for_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = Vec::new();
    input.extend(b"{\"id\": \"q1\", \"query\": \"what's 15% of 2850\"}\n");
    input.extend(b"say hello in Japanese\n");
    input.extend(b"{\"id\": 3, \"query\": \n");
    input.extend(b"{\"id\": 4}\n");
    input.extend(b"\n");
    input.extend(b"\xff\xfe bad bytes\n");
    input.extend(vec![b'a'; 1_048_576]);
    input.extend(b"\n{\"id\": [8], \"query\": \"hi there\"}\n");
    input.extend(b"{\"id\": 9, \"query\": \"compare React vs Vue for 2026\"}");
    let output = toolforge(
        &["route", "--router", "regex"],
        Some(&input),
        &dir.path().join("log"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 9);

    assert_eq!(lines[0]["id"], "q1");
    assert_eq!(lines[0]["query"], "what's 15% of 2850");
    assert_eq!(lines[0]["calls"][0]["tool"], "calculator");
    assert_eq!(lines[0]["router"], "regex");
    assert!(lines[0]["confidence"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["latency_us"].is_u64());

    assert_eq!(lines[1]["id"], 2);
    assert_eq!(lines[1]["calls"][0]["tool"], "translate");
    assert_eq!(
        lines[1]["calls"][0]["arguments"]["target_language"],
        "Japanese"
    );

    for (i, needle) in [
        (2, "invalid JSON"),
        (3, "missing `query`"),
        (4, "empty line"),
        (5, "UTF-8"),
        (6, "limit"),
    ] {
        let error = lines[i]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("line {i}: {}", lines[i]));
        assert!(error.contains(needle), "line {i}: {error}");
        assert!(lines[i].get("calls").is_none());
    }
    assert_eq!(lines[3]["id"], 4);
    assert_eq!(lines[7]["id"], serde_json::json!([8]));
    assert_eq!(lines[7]["calls"], serde_json::json!([]));
    assert_eq!(lines[8]["calls"][0]["tool"], "autonomous_task");
}

#[test]
fn route_reads_and_writes_files_and_chain_falls_back_to_regex() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let out = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"query\": \"convert 26.2 miles to kilometers\"}\n",
    )
    .unwrap();
    let model_dir = dir.path().join("no-model");
    let output = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["route", "--router", "chain", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .env("TOOLFORGE_MODEL_DIR", &model_dir)
        .env("TOOLFORGE_LOG", "off")
        .output()
        .unwrap();
    assert!(output.status.success());
    let line: Value = serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
    assert_eq!(line["router"], "regex");
    assert_eq!(line["calls"][0]["arguments"]["value"], 26.2);
}

#[test]
fn ask_json_runs_the_agent_offline_and_logs_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let output = toolforge(
        &["ask", "--json", "--router", "regex", "what's 15% of 2850"],
        None,
        &log,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["query"], "what's 15% of 2850");
    assert_eq!(answer["router"], "regex");
    assert_eq!(answer["calls"][0]["tool"], "calculator");
    assert_eq!(answer["calls"][0]["output"]["value"], 427.5);
    assert!(answer["answer"].as_str().unwrap().contains("427.5"));
    let logged: toolforge::core::RunRecord =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(logged.query, "what's 15% of 2850");
    assert_eq!(logged.calls[0].output.as_ref().unwrap()["value"], 427.5);
}

#[test]
fn ask_answers_the_offline_show_queries() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, f64); 4] = [
        (
            "convert 26.2 miles to kilometers",
            "unit_converter",
            42.1648128,
        ),
        ("what's 98.6 F in C", "unit_converter", 37.0),
        ("how many cups in a gallon", "unit_converter", 16.0),
        ("sqrt of 44567", "calculator", 211.108976597),
    ];
    for (query, tool, value) in cases {
        let output = toolforge(&["ask", "--json", query], None, &dir.path().join("log"));
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(answer["calls"][0]["tool"], tool, "{query}");
        let got = answer["calls"][0]["output"]["value"].as_f64().unwrap();
        assert!((got - value).abs() < 1e-6, "{query}: {got}");
    }
    let output = toolforge(
        &["ask", "--json", "what time is it in Nairobi"],
        None,
        &dir.path().join("log"),
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["calls"][0]["tool"], "datetime");
    assert_eq!(answer["calls"][0]["output"]["timezone"], "Africa/Nairobi");
}

#[test]
fn ask_with_unreachable_network_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        "[tools.wikipedia]\nbase_url = \"http://127.0.0.1:9\"\nretries = 0\ntimeout_ms = 500\n",
    )
    .unwrap();
    let output = toolforge(
        &[
            "ask",
            "--json",
            "--config",
            config.to_str().unwrap(),
            "who was Napoleon",
        ],
        None,
        &dir.path().join("log"),
    );
    assert!(output.status.success());
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["calls"][0]["tool"], "wikipedia");
    assert!(answer["calls"][0]["error"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
    assert!(answer["answer"]
        .as_str()
        .unwrap()
        .contains("wikipedia failed"));
}

#[test]
fn tools_json_lists_the_nine_tools_with_generated_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let output = toolforge(&["tools", "--json"], None, &dir.path().join("log"));
    let specs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = specs.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for tool in [
        "web_search",
        "calculator",
        "weather",
        "wikipedia",
        "translate",
        "dictionary",
        "datetime",
        "unit_converter",
        "autonomous_task",
    ] {
        assert!(names.contains(&tool), "{tool} missing from {names:?}");
    }
    let converter = specs
        .iter()
        .find(|s| s["name"] == "unit_converter")
        .unwrap();
    assert_eq!(
        converter["parameters"]["properties"]["value"]["type"],
        "number"
    );
    let mut required: Vec<&str> = converter["parameters"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(required, ["from_unit", "to_unit", "value"]);
}

#[test]
fn bad_router_name_and_bad_config_fail_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let output = toolforge(
        &["route", "--router", "magic"],
        Some(b"hi\n"),
        &dir.path().join("log"),
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown router `magic`"));
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "router = [").unwrap();
    let output = toolforge(
        &["tools", "--config", config.to_str().unwrap()],
        None,
        &dir.path().join("log"),
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid config"));
}

#[test]
fn committed_tool_specs_fixture_matches_the_live_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let output = toolforge(&["tools", "--json"], None, &dir.path().join("log"));
    let live: Value = serde_json::from_slice(&output.stdout).unwrap();
    let fixture: Value = serde_json::from_str(include_str!("fixtures/tool_specs.json")).unwrap();
    assert_eq!(
        live, fixture,
        "regenerate with: cargo run -- tools --json > tests/fixtures/tool_specs.json"
    );
}

#[test]
fn failures_that_lose_data_or_a_router_are_reported_on_stderr() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let unwritable = toolforge(&["ask", "2+2"], None, std::path::Path::new("/dev/full"));
    assert!(unwritable.status.success());
    assert!(
        String::from_utf8_lossy(&unwritable.stderr).contains("run log write failed"),
        "{}",
        String::from_utf8_lossy(&unwritable.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let missing_model = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["ask", "--router", "toolforge", "2+2"])
        .env("TOOLFORGE_LOG_PATH", dir.path().join("runs.jsonl"))
        .env("TOOLFORGE_MODEL_DIR", "/nonexistent/model")
        .env_remove("TOOLFORGE_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing_model.stderr);
    assert!(stderr.contains("router model unavailable"), "{stderr}");
    assert!(stderr.contains("/nonexistent/model"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_echoing_the_key_never_shows_it_in_ask_json_or_traces() {
    use toolforge::tools::fixture::{FixtureServer, Reply};
    let key = "brave-secret-987654";
    let echoing_success = include_str!("../tools/tests/fixtures/brave_web_search_rust.json")
        .replacen(
            "Rust Programming Language",
            &format!("Rust (token {key})"),
            1,
        );
    let server = FixtureServer::start(vec![(
        "GET /res/v1/web/search",
        vec![
            Reply::json(200, &echoing_success),
            Reply::json(401, &format!(r#"{{"error": "bad token {key}"}}"#)),
        ],
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nsearch_provider = \"brave\"\n[tools.web_search]\nbase_url = \"{}\"\napi_key_env = \"TOOLFORGE_TEST_BRAVE_KEY\"\nretries = 0\n",
            server.url()
        ),
    )
    .unwrap();
    for _ in 0..2 {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_toolforge"))
            .args(["ask", "--json", "-vv", "--router", "regex", "--config"])
            .arg(&config)
            .arg("search the web for rust programming language")
            .env("TOOLFORGE_TEST_BRAVE_KEY", key)
            .env("TOOLFORGE_LOG", "off")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stdout.contains("web_search"), "{stdout}");
        assert!(!stdout.contains(key), "{stdout}");
        assert!(!stderr.contains(key), "{stderr}");
    }
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn model_merge_folds_a_lora_adapter_into_a_gguf_and_refuses_dora() {
    use candle_core::{Device, Tensor};
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.gguf");
    toolforge::model::causal_lm::tiny::write_llama(&base, 2, true).unwrap();
    let adapter = dir.path().join("adapter");
    std::fs::create_dir(&adapter).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"r": 2, "lora_alpha": 4, "target_modules": ["o_proj"]}"#,
    )
    .unwrap();
    let factors = std::collections::HashMap::from([
        (
            "base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight".to_string(),
            Tensor::ones((2, 64), candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
        (
            "base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight".to_string(),
            Tensor::ones((64, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
    ]);
    candle_core::safetensors::save(&factors, adapter.join("adapter_model.safetensors")).unwrap();
    let merged = dir.path().join("merged.gguf");
    let log = dir.path().join("runs.jsonl");
    let args = |out: &std::path::Path| {
        vec![
            "model".to_string(),
            "merge".into(),
            "--base".into(),
            base.display().to_string(),
            "--adapter".into(),
            adapter.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--quant".into(),
            "q8_0".into(),
        ]
    };
    let owned = args(&merged);
    let output = toolforge(
        &owned.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        &log,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("merged 1 projections"));
    toolforge::model::causal_lm::CausalLm::from_gguf(&merged).expect("the merge loads");
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"r": 2, "lora_alpha": 4, "use_dora": true}"#,
    )
    .unwrap();
    let owned = args(&dir.path().join("dora.gguf"));
    let refused = toolforge(
        &owned.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        &log,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("DoRA"));
}
