//! The committed hand-written files hold to the rules the teachers' output is
//! held to (every line passes the filter against the tool schemas), and the
//! committed dataset leaks no query of a hand-written evaluation set (the data
//! build drops training lines that match one, so independent writers may
//! still write the same short question).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use toolforge_core::ToolSpec;
use toolforge_trainer::filter::{filter_examples, normalize_query, FilterConfig};
use toolforge_trainer::{read_examples, Example};

/// The specs of the nine contract tools (`toolforge tools --json`).
fn tools() -> Vec<ToolSpec> {
    serde_json::from_str(include_str!("../../tests/fixtures/tool_specs.json")).unwrap()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the trainer crate sits in the workspace")
        .to_path_buf()
}

fn jsonl_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    files
}

fn training_files() -> Vec<PathBuf> {
    [
        "trainer/data/handwritten",
        "trainer/data/handwritten_round4",
        "trainer/data/handwritten_round5",
    ]
    .iter()
    .flat_map(|dir| jsonl_files(&workspace().join(dir), ""))
    .collect()
}

fn eval_files() -> Vec<PathBuf> {
    jsonl_files(&workspace().join("tests/fixtures"), "handwritten_eval")
}

/// Filters each file on its own (at least `min_files` of them) and fails with
/// every rejection spelled out.
fn assert_all_lines_pass(files: Vec<PathBuf>, min_files: usize) {
    assert!(files.len() >= min_files, "found {files:?}");
    for path in files {
        let examples = read_examples(&path).unwrap();
        assert_all_kept(&path, examples);
    }
}

fn assert_all_kept(path: &Path, examples: Vec<Example>) {
    let input = examples.len();
    let (kept, report) = filter_examples(examples, &tools(), &FilterConfig::default());
    assert!(input > 0, "{} is empty", path.display());
    assert_eq!(
        kept.len(),
        input,
        "{}: {} of {input} lines rejected: {:#?}",
        path.display(),
        input - kept.len(),
        report.samples
    );
}

#[test]
fn evaluation_sets_are_valid_against_the_tool_schemas() {
    assert_all_lines_pass(eval_files(), 4);
}

#[test]
fn handwritten_training_files_are_valid_against_the_tool_schemas() {
    assert_all_lines_pass(training_files(), 7);
}

#[test]
fn committed_dataset_contains_no_evaluation_query() {
    let mut eval_queries = HashSet::new();
    for path in eval_files() {
        for example in read_examples(&path).unwrap() {
            eval_queries.insert(normalize_query(&example.query));
        }
    }
    for split in ["train", "validation"] {
        let path = workspace().join(format!("data/{split}.jsonl"));
        let leaked: Vec<String> = read_examples(&path)
            .unwrap()
            .into_iter()
            .map(|e| e.query)
            .filter(|q| eval_queries.contains(&normalize_query(q)))
            .collect();
        assert!(leaked.is_empty(), "{}: {leaked:?}", path.display());
    }
}
