//! The data pipeline and feedback on the command line: `data build` writes
//! reproducible splits with a manifest, `data export` renders them, and
//! `feedback` appends verdicts to the run log (refusing unknown runs and tools).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn toolforge(args: &[&str], log: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(args)
        .env("TOOLFORGE_LOG_PATH", log)
        .env_remove("TOOLFORGE_CONFIG")
        .output()
        .expect("run toolforge")
}

/// `toolforge data build` of 400 generated examples, seed 11, into `out`, with `more` arguments.
fn build_data(out: &Path, more: &[&str], log: &Path) -> Output {
    let mut args = vec![
        "data",
        "build",
        "--count",
        "400",
        "--seed",
        "11",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(more);
    toolforge(&args, log)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn data_build_is_reproducible_and_exports_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let eval = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/handwritten_eval.jsonl");
    let mut hashes = Vec::new();
    for run in ["a", "b"] {
        let out = dir.path().join(run);
        let output = build_data(&out, &["--eval", eval.to_str().unwrap()], &log);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap())
                .unwrap();
        assert!(manifest["total"].as_u64().unwrap() > 300);
        hashes.push(manifest["sha256"].as_str().unwrap().to_string());
        for split in ["train", "validation", "test"] {
            assert!(out.join(format!("{split}.jsonl")).exists());
        }
    }
    assert_eq!(hashes[0], hashes[1], "same seed, same dataset");

    let train = dir.path().join("a/train.jsonl");
    let exported = dir.path().join("train.openai.jsonl");
    let output = toolforge(
        &[
            "data",
            "export",
            "--data",
            train.to_str().unwrap(),
            "--format",
            "openai",
            "--out",
            exported.to_str().unwrap(),
        ],
        &log,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&exported)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(first["messages"].is_array() && first["tools"].is_array());

    let stats = toolforge(
        &["data", "stats", dir.path().join("a").to_str().unwrap()],
        &log,
    );
    assert!(stats.status.success());
    assert!(text(&stats.stdout).contains("web_search"));
}

#[test]
fn hand_written_training_files_leave_the_test_split_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let build = |out: &Path, extra: Option<&Path>| {
        let more = match extra {
            Some(extra) => vec!["--extra-train", extra.to_str().unwrap()],
            None => Vec::new(),
        };
        let output = build_data(out, &more, &log);
        assert!(output.status.success(), "{}", text(&output.stderr));
        std::fs::read_to_string(out.join("test.jsonl")).unwrap()
    };
    let plain = dir.path().join("plain");
    let test_before = build(&plain, None);

    // A hand-written file that repeats some generated queries word for word
    // (the filter keeps the generated ones) and adds a new one.
    let train = std::fs::read_to_string(plain.join("train.jsonl")).unwrap();
    let mut extra = String::new();
    for line in train.lines().take(5) {
        let mut example: Value = serde_json::from_str(line).unwrap();
        example["source"] = "handwritten-train".into();
        example["meta"] = serde_json::json!({"author": "test"});
        extra.push_str(&format!("{example}\n"));
    }
    extra.push_str(
        r#"{"query": "uh could you check if the ferry to bornholm runs on sundays", "calls": [{"tool": "web_search", "arguments": {"query": "ferry to bornholm runs on sundays"}}], "source": "handwritten-train", "meta": {"author": "test"}}"#,
    );
    extra.push('\n');
    let extra_path = dir.path().join("extra.jsonl");
    std::fs::write(&extra_path, extra).unwrap();

    let with_extra = dir.path().join("with_extra");
    let test_after = build(&with_extra, Some(&extra_path));
    assert_eq!(test_before, test_after, "the test split moved");
    let train_after = std::fs::read_to_string(with_extra.join("train.jsonl")).unwrap()
        + &std::fs::read_to_string(with_extra.join("validation.jsonl")).unwrap();
    assert!(train_after.contains("ferry to bornholm"));
}

#[test]
fn feedback_is_appended_for_known_runs_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let ask = toolforge(&["ask", "--router", "regex", "what's 2+2"], &log);
    assert!(ask.status.success(), "{}", text(&ask.stderr));
    let record: Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    let run_id = record["run_id"].as_str().unwrap();

    let ok = toolforge(&["feedback", run_id, "--ok"], &log);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let correct = toolforge(
        &[
            "feedback",
            run_id,
            "--correct",
            r#"{"calls": [{"tool": "calculator", "arguments": {"expression": "2+2"}}]}"#,
        ],
        &log,
    );
    assert!(correct.status.success(), "{}", text(&correct.stderr));
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["feedback_for"], run_id);
    assert_eq!(lines[2]["feedback"]["verdict"], "corrected");

    let unknown = toolforge(&["feedback", "no-such-run", "--ok"], &log);
    assert!(!unknown.status.success());
    let bad_tool = toolforge(
        &[
            "feedback",
            run_id,
            "--correct",
            r#"[{"tool": "teleport", "arguments": {}}]"#,
        ],
        &log,
    );
    assert!(!bad_tool.status.success());
    assert!(text(&bad_tool.stderr).contains("unknown tool `teleport`"));

    let examples = dir.path().join("from_logs.jsonl");
    let from_logs = toolforge(
        &[
            "data",
            "from-logs",
            "--logs",
            log.to_str().unwrap(),
            "--out",
            examples.to_str().unwrap(),
        ],
        &log,
    );
    assert!(from_logs.status.success(), "{}", text(&from_logs.stderr));
    let example: Value =
        serde_json::from_str(std::fs::read_to_string(&examples).unwrap().trim()).unwrap();
    assert_eq!(example["source"], "logs:feedback_corrected");
    assert_eq!(example["calls"][0]["arguments"]["expression"], "2+2");
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let file = dir.path().join("examples.jsonl");
    let content = "{\"query\": \"weather in oslo\", \"calls\": [{\"tool\": \"weather\", \"arguments\": {\"location\": \"Oslo\"}}]}\n";
    std::fs::write(&file, content).unwrap();
    std::fs::write(&log, "").unwrap();
    let same = dir.path().join(".").join("examples.jsonl");
    let cases: [Vec<&str>; 3] = [
        vec![
            "data",
            "filter",
            "--input",
            file.to_str().unwrap(),
            "--out",
            same.to_str().unwrap(),
        ],
        vec![
            "data",
            "export",
            "--data",
            file.to_str().unwrap(),
            "--format",
            "openai",
            "--out",
            same.to_str().unwrap(),
        ],
        vec![
            "data",
            "from-logs",
            "--logs",
            log.to_str().unwrap(),
            "--out",
            log.to_str().unwrap(),
        ],
    ];
    for args in cases {
        let output = toolforge(&args, &log);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            text(&output.stderr).contains("is also an input"),
            "{}",
            text(&output.stderr)
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), content);
}

#[test]
fn a_line_that_is_not_utf8_costs_only_itself_or_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let input = dir.path().join("candidates.jsonl");
    let mut bytes = br#"{"query": "weather in Oslo", "calls": [{"tool": "weather", "arguments": {"location": "Oslo"}}]}"#.to_vec();
    bytes.extend_from_slice(b"\n{\"query\": \"\xff\xfe\"}\n");
    bytes.extend_from_slice(br#"{"query": "what is 2+2", "calls": [{"tool": "calculator", "arguments": {"expression": "2+2"}}]}"#);
    bytes.push(b'\n');
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.path().join("clean.jsonl");
    let filtered = toolforge(
        &[
            "data",
            "filter",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &log,
    );
    assert!(filtered.status.success(), "{}", text(&filtered.stderr));
    assert!(
        text(&filtered.stdout).contains("unreadable lines skipped: 1"),
        "{}",
        text(&filtered.stdout)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 2);

    let stats = toolforge(
        &[
            "data",
            "export",
            "--data",
            input.to_str().unwrap(),
            "--format",
            "openai",
            "--out",
            dir.path().join("x.jsonl").to_str().unwrap(),
        ],
        &log,
    );
    assert!(!stats.status.success());
    let message = text(&stats.stderr);
    assert!(
        message.contains("candidates.jsonl:2") && message.contains("not valid UTF-8"),
        "{message}"
    );
}
