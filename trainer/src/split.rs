//! Train/validation/test splits stratified by tool set and reproducible from a
//! seed, written as JSONL files with a `manifest.json` (counts, SHA-256 of the
//! content, seed, ratios, provenance), plus the tool distribution table.
//!
//! Lines are written in canonical JSON (object keys sorted, no spaces), so the
//! manifest's `sha256` is the hash of `cat train.jsonl validation.jsonl test.jsonl`
//! and the same examples, seed and ratios always give the same bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use toolforge_core::digest::{finish_hex, sha256_hex, Sha256};
use toolforge_core::ToolSpec;

use crate::dataset::{read_examples, DatasetError, Example};

/// The split files, in order.
pub const SPLIT_NAMES: [&str; 3] = ["train", "validation", "test"];

/// Version of the [`Manifest`] layout.
pub const MANIFEST_VERSION: u32 = 1;

/// Why splits could not be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// A ratio is negative or not finite, or all are zero.
    #[error("invalid split ratios: {0}")]
    InvalidRatios(String),
    /// A split name other than `train`, `validation` or `test`.
    #[error("unknown split `{0}` (expected train, validation or test)")]
    UnknownSplit(String),
    /// A file of the split directory could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A split file is not a valid dataset.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// `manifest.json` could not be parsed or serialised.
    #[error("{path}: not a split manifest: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The JSON error.
        message: String,
    },
    /// The split files changed since the manifest was written.
    #[error(
        "split content does not match the manifest: sha256 {actual}, manifest says {expected}"
    )]
    HashMismatch {
        /// The manifest's `sha256`.
        expected: String,
        /// SHA-256 of the files as they are.
        actual: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SplitError + '_ {
    move |source| SplitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Shares of the three splits. They need not sum to 1; they are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitRatios {
    /// Share of the training split (default 0.8).
    pub train: f64,
    /// Share of the validation split (default 0.1).
    pub validation: f64,
    /// Share of the test split (default 0.1).
    pub test: f64,
}

impl Default for SplitRatios {
    fn default() -> Self {
        Self {
            train: 0.8,
            validation: 0.1,
            test: 0.1,
        }
    }
}

impl SplitRatios {
    /// Checked ratios: each finite and non-negative, not all zero; normalised to sum 1.
    pub fn new(train: f64, validation: f64, test: f64) -> Result<Self, SplitError> {
        let all = [train, validation, test];
        if all.iter().any(|r| !r.is_finite() || *r < 0.0) {
            return Err(SplitError::InvalidRatios(format!(
                "{train}/{validation}/{test}: each must be a non-negative number"
            )));
        }
        let sum: f64 = all.iter().sum();
        if sum <= 0.0 {
            return Err(SplitError::InvalidRatios(
                "at least one ratio must be positive".to_string(),
            ));
        }
        Ok(Self {
            train: train / sum,
            validation: validation / sum,
            test: test / sum,
        })
    }

    /// The shares as used: invalid values count as 0, and all-zero means all train.
    fn shares(&self) -> [f64; 3] {
        let clean = |r: f64| if r.is_finite() && r > 0.0 { r } else { 0.0 };
        let raw = [clean(self.train), clean(self.validation), clean(self.test)];
        let sum: f64 = raw.iter().sum();
        if sum <= 0.0 {
            [1.0, 0.0, 0.0]
        } else {
            raw.map(|r| r / sum)
        }
    }
}

/// How to split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SplitConfig {
    /// Seed of the shuffles (default 42).
    pub seed: u64,
    /// Shares of the three splits.
    pub ratios: SplitRatios,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            ratios: SplitRatios::default(),
        }
    }
}

/// The three splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    /// Examples to train on.
    pub train: Vec<Example>,
    /// Examples for model selection and calibration.
    pub validation: Vec<Example>,
    /// Held-out examples for the final evaluation.
    pub test: Vec<Example>,
    /// Seed the splits were drawn with.
    pub seed: u64,
    /// Ratios the splits were drawn with.
    pub ratios: SplitRatios,
}

impl Splits {
    /// `(name, examples)` for each split, in [`SPLIT_NAMES`] order.
    pub fn parts(&self) -> [(&'static str, &[Example]); 3] {
        [
            (SPLIT_NAMES[0], &self.train),
            (SPLIT_NAMES[1], &self.validation),
            (SPLIT_NAMES[2], &self.test),
        ]
    }

    /// One split by name.
    pub fn get(&self, name: &str) -> Option<&[Example]> {
        self.parts()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e)
    }

    /// Examples in all splits.
    pub fn total(&self) -> usize {
        self.train.len() + self.validation.len() + self.test.len()
    }
}

/// The stratum of an example: its sorted tool names joined by `+`, or `none`.
pub fn stratum_key(example: &Example) -> String {
    let tools = example.tool_set();
    if tools.is_empty() {
        "none".to_string()
    } else {
        tools.join("+")
    }
}

/// Unbiased draws and shuffles over one seeded, platform-stable stream
/// (`rand_xoshiro`'s SplitMix64): a split never changes with the platform.
#[derive(Debug, Clone)]
pub struct SplitRng(SplitMix64);

impl SplitRng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::seed_from_u64(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..bound` (`bound` > 0), without modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % bound;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % bound;
            }
        }
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A generator for one named purpose, so strata do not share a random stream
/// (adding a stratum does not reshuffle the others).
fn rng_for(seed: u64, label: &str) -> SplitRng {
    let label_hash = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut mixer = SplitRng::new(seed ^ label_hash);
    SplitRng::new(mixer.next_u64())
}

/// Sizes of the three splits for a stratum of `n` examples: largest-remainder
/// rounding, then every split with a positive share gets at least one example
/// when `n ≥ 3`, taken from the largest split.
fn allocate(n: usize, shares: [f64; 3]) -> [usize; 3] {
    let raw = shares.map(|s| s * n as f64);
    let mut counts = raw.map(|r| r.floor() as usize);
    let mut order = [0usize, 1, 2];
    order.sort_by(|a, b| {
        let fa = raw[*a] - raw[*a].floor();
        let fb = raw[*b] - raw[*b].floor();
        fb.total_cmp(&fa).then(a.cmp(b))
    });
    let mut left = n.saturating_sub(counts.iter().sum());
    for i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if shares[*i] > 0.0 {
            counts[*i] += 1;
            left -= 1;
        }
    }
    if n >= 3 {
        for i in 0..3 {
            if shares[i] > 0.0 && counts[i] == 0 {
                let donor = (0..3)
                    .filter(|j| counts[*j] > 1)
                    .max_by_key(|j| (counts[*j], std::cmp::Reverse(*j)));
                if let Some(donor) = donor {
                    counts[donor] -= 1;
                    counts[i] += 1;
                }
            }
        }
    }
    counts
}

/// Splits examples by stratum (tool set), each stratum shuffled with the seed and
/// cut by the ratios, then each split shuffled. The result depends only on the
/// examples (not their order), the seed and the ratios.
pub fn split(examples: Vec<Example>, config: &SplitConfig) -> Splits {
    let shares = config.ratios.shares();
    let mut strata: BTreeMap<String, Vec<(String, Example)>> = BTreeMap::new();
    for example in examples {
        let line = canonical_line(&example);
        strata
            .entry(stratum_key(&example))
            .or_default()
            .push((line, example));
    }
    let mut parts: [Vec<(String, Example)>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (key, mut members) in strata {
        members.sort_by(|a, b| a.0.cmp(&b.0));
        rng_for(config.seed, &format!("stratum:{key}")).shuffle(&mut members);
        let counts = allocate(members.len(), shares);
        let mut members = members.into_iter();
        for (part, count) in parts.iter_mut().zip(counts) {
            part.extend(members.by_ref().take(count));
        }
    }
    let [train, validation, test] = parts.map(|mut part| {
        part.sort_by(|a, b| a.0.cmp(&b.0));
        part
    });
    let finish = |mut part: Vec<(String, Example)>, name: &str| -> Vec<Example> {
        rng_for(config.seed, &format!("split:{name}")).shuffle(&mut part);
        part.into_iter().map(|(_, e)| e).collect()
    };
    Splits {
        train: finish(train, SPLIT_NAMES[0]),
        validation: finish(validation, SPLIT_NAMES[1]),
        test: finish(test, SPLIT_NAMES[2]),
        seed: config.seed,
        ratios: config.ratios,
    }
}

/// Like [`split`], but the examples for which `train_only` holds go to the
/// training and validation splits only (in the configured train:validation
/// proportion), never to test: hand-written training examples are too few to
/// spend on a test split that the held-out evaluation sets already cover.
pub fn split_train_only(
    examples: Vec<Example>,
    train_only: impl Fn(&Example) -> bool,
    config: &SplitConfig,
) -> Splits {
    let (kept_out, rest): (Vec<Example>, Vec<Example>) =
        examples.into_iter().partition(|e| train_only(e));
    let mut splits = split(rest, config);
    let ratios = config.ratios.shares();
    let no_test = SplitConfig {
        seed: config.seed,
        ratios: SplitRatios {
            train: ratios[0],
            validation: ratios[1],
            test: 0.0,
        },
    };
    let extra = split(kept_out, &no_test);
    for (part, more, name) in [
        (&mut splits.train, extra.train, SPLIT_NAMES[0]),
        (&mut splits.validation, extra.validation, SPLIT_NAMES[1]),
    ] {
        part.extend(more);
        let mut keyed: Vec<(String, Example)> =
            part.drain(..).map(|e| (canonical_line(&e), e)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        rng_for(config.seed, &format!("split:{name}")).shuffle(&mut keyed);
        part.extend(keyed.into_iter().map(|(_, e)| e));
    }
    splits
}

/// JSON with object keys sorted at every level and no insignificant spaces.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// An example as one canonical JSON line (without the newline).
pub fn canonical_line(example: &Example) -> String {
    match serde_json::to_value(example) {
        Ok(value) => canonical_json(&value),
        // An `Example` is plain data and always serialises; keep the default form otherwise.
        Err(_) => serde_json::to_string(example).unwrap_or_default(),
    }
}

/// Where a dataset came from, recorded in its manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The command and arguments that created the dataset.
    pub command: Vec<String>,
    /// Names of the tools the dataset was built for.
    pub tools: Vec<String>,
}

impl Provenance {
    /// Provenance from a command line and the tool specs in use.
    pub fn new<S: Into<String>>(command: impl IntoIterator<Item = S>, tools: &[ToolSpec]) -> Self {
        Self {
            command: command.into_iter().map(Into::into).collect(),
            tools: tools.iter().map(|t| t.name.clone()).collect(),
        }
    }
}

/// One split file in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// Split name (`train`, `validation` or `test`).
    pub name: String,
    /// File name in the split directory (`<name>.jsonl`).
    pub file: String,
    /// Examples in the file.
    pub count: usize,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Examples per tool set (stratum key).
    pub tool_sets: BTreeMap<String, usize>,
}

/// `manifest.json`: what a split directory holds and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version; [`MANIFEST_VERSION`] when written.
    pub manifest_version: u32,
    /// Examples in all splits.
    pub total: usize,
    /// SHA-256 of the three files concatenated (train, validation, test).
    pub sha256: String,
    /// Seed the splits were drawn with.
    pub seed: u64,
    /// Ratios the splits were drawn with.
    pub ratios: SplitRatios,
    /// One summary per split file, in [`SPLIT_NAMES`] order.
    pub splits: Vec<SplitSummary>,
    /// Examples per tool set over all splits.
    pub tool_sets: BTreeMap<String, usize>,
    /// Examples per `source` (teacher, logs policy, handwritten, ...).
    pub sources: BTreeMap<String, usize>,
    /// The command and arguments that created the dataset.
    pub command: Vec<String>,
    /// Names of the tools the dataset was built for.
    pub tools: Vec<String>,
}

/// Writes `train.jsonl`, `validation.jsonl`, `test.jsonl` and `manifest.json`
/// into `dir` (created if needed) and returns the manifest.
pub fn write_splits(
    dir: &Path,
    splits: &Splits,
    provenance: &Provenance,
) -> Result<Manifest, SplitError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut total_hash = Sha256::new();
    let mut summaries = Vec::new();
    let mut tool_sets: BTreeMap<String, usize> = BTreeMap::new();
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    for (name, examples) in splits.parts() {
        let mut content = String::new();
        let mut split_sets: BTreeMap<String, usize> = BTreeMap::new();
        for example in examples {
            content.push_str(&canonical_line(example));
            content.push('\n');
            let key = stratum_key(example);
            *split_sets.entry(key.clone()).or_insert(0) += 1;
            *tool_sets.entry(key).or_insert(0) += 1;
            *sources.entry(example.source.clone()).or_insert(0) += 1;
        }
        let file = format!("{name}.jsonl");
        let path = dir.join(&file);
        std::fs::write(&path, content.as_bytes()).map_err(io_error(&path))?;
        total_hash.update(content.as_bytes());
        summaries.push(SplitSummary {
            name: name.to_string(),
            file,
            count: examples.len(),
            sha256: sha256_hex(content.as_bytes()),
            tool_sets: split_sets,
        });
    }
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        total: splits.total(),
        sha256: finish_hex(total_hash),
        seed: splits.seed,
        ratios: splits.ratios,
        splits: summaries,
        tool_sets,
        sources,
        command: provenance.command.clone(),
        tools: provenance.tools.clone(),
    };
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| SplitError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&path, format!("{text}\n")).map_err(io_error(&path))?;
    Ok(manifest)
}

/// Reads one split (`train`, `validation` or `test`) of a split directory.
pub fn read_split(dir: &Path, name: &str) -> Result<Vec<Example>, SplitError> {
    if !SPLIT_NAMES.contains(&name) {
        return Err(SplitError::UnknownSplit(name.to_string()));
    }
    Ok(read_examples(&dir.join(format!("{name}.jsonl")))?)
}

/// Reads `manifest.json` of a split directory.
pub fn read_manifest(dir: &Path) -> Result<Manifest, SplitError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    serde_json::from_str(&text).map_err(|e| SplitError::Manifest {
        path,
        message: e.to_string(),
    })
}

/// Reads the manifest and checks the split files still hash to its `sha256`.
pub fn verify_splits(dir: &Path) -> Result<Manifest, SplitError> {
    let manifest = read_manifest(dir)?;
    let mut hash = Sha256::new();
    for name in SPLIT_NAMES {
        let path = dir.join(format!("{name}.jsonl"));
        hash.update(&std::fs::read(&path).map_err(io_error(&path))?);
    }
    let actual = finish_hex(hash);
    if actual != manifest.sha256 {
        return Err(SplitError::HashMismatch {
            expected: manifest.sha256,
            actual,
        });
    }
    Ok(manifest)
}

/// One row of a [`Distribution`]: a label and its count in each column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionRow {
    /// A tool name, `multi-tool` or `no tool`.
    pub label: String,
    /// Count of the label in each column, in `columns` order.
    pub counts: Vec<usize>,
}

/// How examples spread over tools, per split. An example with several tools
/// counts under each of its tools and once under `multi-tool`, so tool rows
/// can add up to more than 100%; `no tool` counts examples with no call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Column names (splits, then `all`).
    pub columns: Vec<String>,
    /// Examples per column.
    pub totals: Vec<usize>,
    /// Tools by overall count (then name), then `multi-tool`, then `no tool`.
    pub rows: Vec<DistributionRow>,
}

impl Distribution {
    /// The counts of one row, by label.
    pub fn row(&self, label: &str) -> Option<&[usize]> {
        self.rows
            .iter()
            .find(|r| r.label == label)
            .map(|r| r.counts.as_slice())
    }
}

/// The distribution table of named example sets (one column each).
pub fn distribution(columns: &[(&str, &[Example])]) -> Distribution {
    let mut tools: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut multi = vec![0; columns.len()];
    let mut none = vec![0; columns.len()];
    for (c, (_, examples)) in columns.iter().enumerate() {
        for example in examples.iter() {
            let set = example.tool_set();
            match set.len() {
                0 => none[c] += 1,
                1 => {}
                _ => multi[c] += 1,
            }
            for tool in set {
                tools.entry(tool).or_insert_with(|| vec![0; columns.len()])[c] += 1;
            }
        }
    }
    let mut rows: Vec<DistributionRow> = tools
        .into_iter()
        .map(|(label, counts)| DistributionRow { label, counts })
        .collect();
    rows.sort_by(|a, b| {
        let total = |r: &DistributionRow| r.counts.iter().sum::<usize>();
        total(b).cmp(&total(a)).then_with(|| a.label.cmp(&b.label))
    });
    rows.push(DistributionRow {
        label: "multi-tool".to_string(),
        counts: multi,
    });
    rows.push(DistributionRow {
        label: "no tool".to_string(),
        counts: none,
    });
    Distribution {
        columns: columns.iter().map(|(n, _)| n.to_string()).collect(),
        totals: columns.iter().map(|(_, e)| e.len()).collect(),
        rows,
    }
}

/// The distribution table of the splits, with an `all` column.
pub fn stats(splits: &Splits) -> Distribution {
    let all: Vec<Example> = splits
        .parts()
        .iter()
        .flat_map(|(_, e)| e.iter().cloned())
        .collect();
    let mut columns: Vec<(&str, &[Example])> = splits.parts().to_vec();
    columns.push(("all", &all));
    distribution(&columns)
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| r.label.chars().count())
            .chain([5])
            .max()
            .unwrap_or(5);
        let widths: Vec<usize> = self
            .columns
            .iter()
            .map(|c| c.chars().count().max(8))
            .collect();
        write!(f, "| {:<width$} |", "tool")?;
        for (column, w) in self.columns.iter().zip(&widths) {
            write!(f, " {column:>w$} | {:>6} |", "%")?;
        }
        writeln!(f)?;
        write!(f, "|{}|", "-".repeat(width + 2))?;
        for w in &widths {
            write!(f, "{}:|{}:|", "-".repeat(w + 1), "-".repeat(7))?;
        }
        writeln!(f)?;
        let line = |f: &mut fmt::Formatter<'_>, label: &str, counts: &[usize]| {
            write!(f, "| {label:<width$} |")?;
            for ((count, total), w) in counts.iter().zip(&self.totals).zip(&widths) {
                let pct = if *total == 0 {
                    0.0
                } else {
                    100.0 * *count as f64 / *total as f64
                };
                write!(f, " {count:>w$} | {pct:>5.1}% |")?;
            }
            writeln!(f)
        };
        for row in &self.rows {
            line(f, &row.label, &row.counts)?;
        }
        line(f, "total", &self.totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use toolforge_core::ToolCall;

    fn example(query: &str, tools: &[&str], source: &str) -> Example {
        Example {
            query: query.to_string(),
            calls: tools
                .iter()
                .map(|t| ToolCall::new(*t, json!({"q": query})))
                .collect(),
            source: source.to_string(),
            meta: json!({"b": 2, "a": [1, {"z": 0, "y": 1}]}),
            ..Example::default()
        }
    }

    /// 100 weather, 40 calculator, 10 no-tool, 5 weather+unit_converter,
    /// 3 dictionary, 2 translate, 1 web_search.
    fn corpus() -> Vec<Example> {
        let mut out = Vec::new();
        let mut add = |n: usize, tools: &[&str], source: &str| {
            for i in 0..n {
                out.push(example(&format!("{} {i}", tools.join(" ")), tools, source));
            }
        };
        add(100, &["weather"], "teacher:offline");
        add(40, &["calculator"], "teacher:offline");
        add(10, &[], "handwritten");
        add(5, &["weather", "unit_converter"], "logs:agreement");
        add(3, &["dictionary"], "logs:agreement");
        add(2, &["translate"], "handwritten");
        add(1, &["web_search"], "handwritten");
        out
    }

    #[test]
    fn train_only_examples_never_reach_the_test_split() {
        let config = SplitConfig::default();
        let hand = |e: &Example| e.source == "handwritten";
        let splits = split_train_only(corpus(), hand, &config);
        assert_eq!(splits.total(), corpus().len());
        assert!(splits.test.iter().all(|e| !hand(e)));
        assert!(splits.train.iter().any(hand));
        assert!(splits.validation.iter().any(hand));
        assert!(!splits.test.is_empty());
        assert_eq!(splits, split_train_only(corpus(), hand, &config));
    }

    #[test]
    fn sha256_matches_known_digests() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let million = vec![b'a'; 1_000_000];
        assert_eq!(
            sha256_hex(&million),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        let mut streamed = Sha256::new();
        for chunk in million.chunks(37) {
            streamed.update(chunk);
        }
        assert_eq!(finish_hex(streamed), sha256_hex(&million));
    }

    #[test]
    fn allocation_covers_every_split_when_possible() {
        let shares = SplitRatios::default().shares();
        assert_eq!(allocate(100, shares), [80, 10, 10]);
        assert_eq!(allocate(3, shares), [1, 1, 1]);
        assert_eq!(allocate(5, shares), [3, 1, 1]);
        assert_eq!(allocate(2, shares), [2, 0, 0]);
        assert_eq!(allocate(1, shares), [1, 0, 0]);
        assert_eq!(allocate(0, shares), [0, 0, 0]);
        let no_test = SplitRatios::new(0.9, 0.1, 0.0).unwrap().shares();
        assert_eq!(allocate(3, no_test), [2, 1, 0]);
        for n in 0..200 {
            assert_eq!(allocate(n, shares).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn ratios_are_checked() {
        assert!(SplitRatios::new(-1.0, 0.5, 0.5).is_err());
        assert!(SplitRatios::new(0.0, 0.0, 0.0).is_err());
        assert!(SplitRatios::new(f64::NAN, 0.5, 0.5).is_err());
        let r = SplitRatios::new(8.0, 1.0, 1.0).unwrap();
        assert!((r.train - 0.8).abs() < 1e-12);
    }

    #[test]
    fn split_is_stratified_and_deterministic() {
        let config = SplitConfig::default();
        let splits = split(corpus(), &config);
        assert_eq!(splits.total(), 161);

        let mut reversed = corpus();
        reversed.reverse();
        assert_eq!(
            split(reversed, &config),
            splits,
            "input order must not matter"
        );
        assert_eq!(split(corpus(), &config), splits);
        let other = split(corpus(), &SplitConfig { seed: 7, ..config });
        assert_ne!(other.train, splits.train);

        for (name, part) in splits.parts() {
            let keys: std::collections::BTreeSet<String> = part.iter().map(stratum_key).collect();
            for key in [
                "weather",
                "calculator",
                "none",
                "unit_converter+weather",
                "dictionary",
            ] {
                assert!(keys.contains(key), "{name} lacks {key}");
            }
        }
        let count =
            |part: &[Example], key: &str| part.iter().filter(|e| stratum_key(e) == key).count();
        assert_eq!(count(&splits.train, "weather"), 80);
        assert_eq!(count(&splits.validation, "weather"), 10);
        assert_eq!(count(&splits.test, "calculator"), 4);
        // Strata too small to spread stay in train.
        assert_eq!(count(&splits.train, "translate"), 2);
        assert_eq!(count(&splits.train, "web_search"), 1);
    }

    #[test]
    fn written_splits_are_reproducible_and_verifiable() {
        let tools = vec![ToolSpec {
            name: "weather".into(),
            description: "Weather.".into(),
            parameters: json!({"type": "object"}),
        }];
        let provenance = Provenance::new(["toolforge", "data", "split", "--seed", "42"], &tools);
        let splits = split(corpus(), &SplitConfig::default());
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let manifest = write_splits(a.path(), &splits, &provenance).unwrap();
        let again = write_splits(
            b.path(),
            &split(corpus(), &SplitConfig::default()),
            &provenance,
        )
        .unwrap();
        assert_eq!(manifest, again);
        for file in [
            "train.jsonl",
            "validation.jsonl",
            "test.jsonl",
            "manifest.json",
        ] {
            assert_eq!(
                std::fs::read(a.path().join(file)).unwrap(),
                std::fs::read(b.path().join(file)).unwrap(),
                "{file}"
            );
        }

        let mut all = Vec::new();
        for name in SPLIT_NAMES {
            all.extend(std::fs::read(a.path().join(format!("{name}.jsonl"))).unwrap());
        }
        assert_eq!(manifest.sha256, sha256_hex(&all));
        assert_eq!(manifest.total, 161);
        assert_eq!(manifest.splits[0].name, "train");
        assert_eq!(manifest.splits[0].count, splits.train.len());
        assert_eq!(manifest.tool_sets["weather"], 100);
        assert_eq!(manifest.tool_sets["none"], 10);
        assert_eq!(manifest.sources["logs:agreement"], 8);
        assert_eq!(manifest.command[2], "split");
        assert_eq!(manifest.tools, vec!["weather"]);
        assert_eq!(read_manifest(a.path()).unwrap(), manifest);
        assert_eq!(verify_splits(a.path()).unwrap(), manifest);

        // Lines are canonical: keys sorted at every level.
        let first = std::fs::read_to_string(a.path().join("train.jsonl")).unwrap();
        let line = first.lines().next().unwrap();
        assert!(line.starts_with("{\"calls\":"), "{line}");
        assert!(
            line.contains("\"meta\":{\"a\":[1,{\"y\":1,\"z\":0}],\"b\":2}"),
            "{line}"
        );

        assert_eq!(read_split(a.path(), "train").unwrap(), splits.train);
        assert_eq!(read_split(a.path(), "test").unwrap(), splits.test);
        assert!(matches!(
            read_split(a.path(), "../secret"),
            Err(SplitError::UnknownSplit(_))
        ));

        std::fs::write(a.path().join("test.jsonl"), "").unwrap();
        assert!(matches!(
            verify_splits(a.path()),
            Err(SplitError::HashMismatch { .. })
        ));
    }

    #[test]
    fn stats_count_multi_tool_under_each_tool() {
        let splits = split(corpus(), &SplitConfig::default());
        let table = stats(&splits);
        assert_eq!(table.columns, vec!["train", "validation", "test", "all"]);
        assert_eq!(table.totals[3], 161);
        assert_eq!(table.row("weather").unwrap()[3], 105);
        assert_eq!(table.row("unit_converter").unwrap()[3], 5);
        assert_eq!(table.row("multi-tool").unwrap()[3], 5);
        assert_eq!(table.row("no tool").unwrap()[3], 10);
        assert_eq!(table.rows[0].label, "weather");
        assert_eq!(table.rows.last().unwrap().label, "no tool");
        let text = table.to_string();
        assert!(text.starts_with("| tool"), "{text}");
        assert!(text.contains("| multi-tool"), "{text}");
        assert!(text.contains("| total"), "{text}");
        assert!(text.contains("65.2%"), "{text}");
    }
}
