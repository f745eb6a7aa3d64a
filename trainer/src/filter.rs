//! Cleaning candidate routing examples (teacher output, logs, imports) into
//! dataset [`Example`]s: malformed or invalid calls, empty or overlong queries,
//! duplicates, near-duplicates and evaluation-set leakage are dropped, and every
//! rejection is counted by reason in a [`FilterReport`].
//!
//! Near-duplicates are found exactly (no sampling) with a prefix-filtered
//! inverted index over word shingles: each shingle set is ordered rarest-first
//! and only its first `|s| - ⌈t·|s|⌉ + 1` shingles are indexed, which two sets
//! with Jaccard similarity ≥ `t` are guaranteed to share. Rare shingles have short
//! posting lists, so 20k queries are compared in well under a second.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use toolforge_core::{ToolCall, ToolSpec};

use crate::dataset::Example;

/// An unchecked example: a query and the calls a teacher (or a log) gave for it.
///
/// Each raw call should be `{"tool": "<name>", "arguments": {...}}`; `arguments`
/// may also be a string holding a JSON object (as function-calling APIs return it),
/// or be missing/`null` for no arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The user's request.
    pub query: String,
    /// The calls as given, unchecked (see above).
    #[serde(default)]
    pub raw_calls: Vec<Value>,
    /// No tool can do what is asked (kept only when there are no calls).
    #[serde(default)]
    pub unsupported: bool,
    /// Where it came from; carried to the example.
    #[serde(default)]
    pub source: String,
    /// Free-form facts, carried to the example.
    #[serde(default)]
    pub meta: Value,
}

impl From<Example> for Candidate {
    fn from(example: Example) -> Self {
        let raw_calls = example
            .calls
            .into_iter()
            .map(|call| serde_json::json!({"tool": call.tool, "arguments": call.arguments}))
            .collect();
        Self {
            query: example.query,
            raw_calls,
            unsupported: example.unsupported,
            source: example.source,
            meta: example.meta,
        }
    }
}

/// Why a candidate was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// A call is not an object with a string `tool`, or its `arguments` are not a JSON object.
    InvalidJson,
    /// A call names a tool that is not registered.
    HallucinatedTool,
    /// A call's arguments fail the tool's JSON schema.
    Schema,
    /// The query is blank (or only punctuation).
    EmptyQuery,
    /// The query is longer than [`FilterConfig::max_query_chars`].
    TooLongQuery,
    /// Same normalised query as an example already kept.
    Duplicate,
    /// Word-shingle Jaccard similarity with a kept example at or above the threshold.
    NearDuplicate,
    /// The query (or a near-duplicate of it) is in an evaluation set.
    Leakage,
}

impl RejectReason {
    /// Every reason, in report order.
    pub const ALL: [RejectReason; 8] = [
        RejectReason::InvalidJson,
        RejectReason::HallucinatedTool,
        RejectReason::Schema,
        RejectReason::EmptyQuery,
        RejectReason::TooLongQuery,
        RejectReason::Duplicate,
        RejectReason::NearDuplicate,
        RejectReason::Leakage,
    ];

    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::HallucinatedTool => "hallucinated_tool",
            RejectReason::Schema => "schema",
            RejectReason::EmptyQuery => "empty_query",
            RejectReason::TooLongQuery => "too_long_query",
            RejectReason::Duplicate => "duplicate",
            RejectReason::NearDuplicate => "near_duplicate",
            RejectReason::Leakage => "leakage",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Thresholds of the filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilterConfig {
    /// Longest accepted query, in characters (after trimming).
    pub max_query_chars: usize,
    /// Jaccard similarity of word shingles at which a query is a near-duplicate
    /// of one already kept; `None` turns near-duplicate removal off.
    pub near_duplicate_threshold: Option<f64>,
    /// Jaccard similarity at which a query counts as leaked from an evaluation
    /// query; `None` checks exact (normalised) matches only.
    pub leakage_threshold: Option<f64>,
    /// Words per shingle (queries shorter than this are one shingle).
    pub shingle_size: usize,
    /// Queries of the evaluation sets that training data must not contain.
    pub eval_queries: Vec<String>,
    /// Rejected queries kept in the report as samples, per reason.
    pub samples_per_reason: usize,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            max_query_chars: 512,
            near_duplicate_threshold: Some(0.9),
            leakage_threshold: Some(0.9),
            shingle_size: 3,
            eval_queries: Vec::new(),
            samples_per_reason: 3,
        }
    }
}

impl FilterConfig {
    /// Adds the queries of an evaluation set to [`FilterConfig::eval_queries`].
    pub fn with_eval_examples(mut self, examples: &[Example]) -> Self {
        self.eval_queries
            .extend(examples.iter().map(|e| e.query.clone()));
        self
    }
}

/// One rejected candidate, kept as a sample in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// Why it was dropped.
    pub reason: RejectReason,
    /// The candidate's query.
    pub query: String,
    /// The candidate's source.
    pub source: String,
    /// What exactly was wrong (the schema error, the matching query, ...).
    pub detail: String,
}

/// What the filter did: counts per reason and per source, with a few samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterReport {
    /// Candidates seen.
    pub input: usize,
    /// Examples kept.
    pub kept: usize,
    /// Rejections per reason; every reason is present, zero or not.
    pub rejected: BTreeMap<RejectReason, usize>,
    /// Examples kept per `source`.
    pub kept_by_source: BTreeMap<String, usize>,
    /// Candidates rejected per `source`.
    pub rejected_by_source: BTreeMap<String, usize>,
    /// The first few rejections of each reason.
    pub samples: Vec<Rejection>,
}

impl FilterReport {
    fn new(input: usize) -> Self {
        Self {
            input,
            kept: 0,
            rejected: RejectReason::ALL.iter().map(|r| (*r, 0)).collect(),
            kept_by_source: BTreeMap::new(),
            rejected_by_source: BTreeMap::new(),
            samples: Vec::new(),
        }
    }

    /// Rejections of one reason.
    pub fn count(&self, reason: RejectReason) -> usize {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }

    /// All rejections.
    pub fn rejected_total(&self) -> usize {
        self.rejected.values().sum()
    }

    fn reject(&mut self, rejection: Rejection, samples_per_reason: usize) {
        let count = self.rejected.entry(rejection.reason).or_insert(0);
        *count += 1;
        *self
            .rejected_by_source
            .entry(rejection.source.clone())
            .or_insert(0) += 1;
        if *count <= samples_per_reason {
            self.samples.push(rejection);
        }
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

impl fmt::Display for FilterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "filter: {} candidates -> {} kept ({:.1}%)",
            self.input,
            self.kept,
            percent(self.kept, self.input)
        )?;
        writeln!(f, "{:<20} {:>8} {:>7}", "reason", "count", "%")?;
        for (reason, count) in &self.rejected {
            writeln!(
                f,
                "{:<20} {:>8} {:>6.1}%",
                reason.as_str(),
                count,
                percent(*count, self.input)
            )?;
        }
        let total = self.rejected_total();
        writeln!(
            f,
            "{:<20} {:>8} {:>6.1}%",
            "rejected (total)",
            total,
            percent(total, self.input)
        )?;
        if !self.kept_by_source.is_empty() || !self.rejected_by_source.is_empty() {
            writeln!(f, "\n{:<28} {:>8} {:>9}", "source", "kept", "rejected")?;
            let sources: std::collections::BTreeSet<&String> = self
                .kept_by_source
                .keys()
                .chain(self.rejected_by_source.keys())
                .collect();
            for source in sources {
                let name = if source.is_empty() { "(none)" } else { source };
                writeln!(
                    f,
                    "{:<28} {:>8} {:>9}",
                    name,
                    self.kept_by_source.get(source).copied().unwrap_or(0),
                    self.rejected_by_source.get(source).copied().unwrap_or(0)
                )?;
            }
        }
        if !self.samples.is_empty() {
            writeln!(f, "\nsamples:")?;
            for s in &self.samples {
                writeln!(f, "  [{}] {:?}: {}", s.reason, s.query, s.detail)?;
            }
        }
        Ok(())
    }
}

/// The comparison form of a query: lowercase, sentence punctuation removed
/// (apostrophes dropped, other marks read as spaces), whitespace collapsed.
///
/// Characters that change a query's meaning are kept: arithmetic and comparison
/// operators, currency and degree signs, and a `.` or `,` between two digits, so
/// "2+2" and "2*2", or "3.5" and "35", stay distinct.
pub fn normalize_query(query: &str) -> String {
    let chars: Vec<char> = query.chars().collect();
    let mut out = String::with_capacity(query.len());
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if c.is_whitespace() {
            out.push(' ');
        } else if matches!(c, '\'' | '’' | '‘' | '`') {
            continue;
        } else if matches!(c, '.' | ',') {
            let between_digits = i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            out.push(if between_digits { c } else { ' ' });
        } else if is_sentence_punctuation(c) {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_sentence_punctuation(c: char) -> bool {
    matches!(
        c,
        '!' | '?'
            | ';'
            | ':'
            | '"'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '_'
            | '|'
            | '\\'
            | '~'
            | '@'
            | '#'
            | '&'
            | '…'
            | '“'
            | '”'
            | '«'
            | '»'
            | '¿'
            | '¡'
            | '·'
            | '–'
            | '—'
    )
}

/// Cleans candidates: see [`RejectReason`] for what is dropped. Checks run in the
/// order empty → too long → call shape → tool names → schemas → leakage →
/// duplicate → near-duplicate, and the first failure is the reason counted.
/// The first occurrence of a duplicate is the one kept. Queries are trimmed and
/// arguments that are `null` are left out (optional arguments are omitted).
pub fn filter(
    candidates: Vec<Candidate>,
    tools: &[ToolSpec],
    config: &FilterConfig,
) -> (Vec<Example>, FilterReport) {
    let mut report = FilterReport::new(candidates.len());
    let specs: HashMap<&str, &ToolSpec> = tools.iter().map(|t| (t.name.as_str(), t)).collect();
    let shingle_size = config.shingle_size.max(1);

    let normalized: Vec<String> = candidates
        .iter()
        .map(|c| normalize_query(c.query.trim()))
        .collect();
    let (eval_normalized, eval_original): (Vec<String>, Vec<&str>) = config
        .eval_queries
        .iter()
        .map(|q| (normalize_query(q), q.as_str()))
        .filter(|(n, _)| !n.is_empty())
        .unzip();
    let eval_exact: HashMap<&str, &str> = eval_normalized
        .iter()
        .zip(&eval_original)
        .map(|(n, q)| (n.as_str(), *q))
        .collect();

    // Shingle sets and the global rarity order they are indexed by.
    let candidate_shingles: Vec<Vec<u64>> = normalized
        .iter()
        .map(|n| shingles(n, shingle_size))
        .collect();
    let eval_shingles: Vec<Vec<u64>> = eval_normalized
        .iter()
        .map(|n| shingles(n, shingle_size))
        .collect();
    let mut document_frequency: HashMap<u64, u32> = HashMap::new();
    for set in candidate_shingles.iter().chain(&eval_shingles) {
        for h in set {
            *document_frequency.entry(*h).or_insert(0) += 1;
        }
    }

    let mut eval_index = config
        .leakage_threshold
        .map(|t| ShingleIndex::new(t, &document_frequency));
    if let Some(index) = &mut eval_index {
        for set in &eval_shingles {
            index.insert(set.clone());
        }
    }
    let mut kept_index = config
        .near_duplicate_threshold
        .map(|t| ShingleIndex::new(t, &document_frequency));
    let mut kept_normalized: HashMap<String, usize> = HashMap::new();
    let mut kept_queries: Vec<String> = Vec::new();
    let mut kept_index_ids: Vec<usize> = Vec::new();

    let mut examples = Vec::new();
    for ((candidate, norm), set) in candidates
        .into_iter()
        .zip(normalized)
        .zip(candidate_shingles)
    {
        let query = candidate.query.trim().to_string();
        let verdict = check_candidate(&query, &norm, &candidate.raw_calls, &specs, config)
            .and_then(|calls| {
                if let Some(original) = eval_exact.get(norm.as_str()) {
                    return Err((
                        RejectReason::Leakage,
                        format!("same as evaluation query {original:?}"),
                    ));
                }
                if let Some(original) = wrapped_eval_query(&norm, &eval_exact) {
                    return Err((
                        RejectReason::Leakage,
                        format!("evaluation query {original:?} with a word or two around it"),
                    ));
                }
                if let Some(index) = &eval_index {
                    if let Some((id, similarity)) = index.find(&set) {
                        return Err((
                            RejectReason::Leakage,
                            format!(
                                "{similarity:.2} similar to evaluation query {:?}",
                                eval_original[id]
                            ),
                        ));
                    }
                }
                if let Some(first) = kept_normalized.get(&norm) {
                    return Err((
                        RejectReason::Duplicate,
                        format!("same as {:?}", kept_queries[*first]),
                    ));
                }
                if let Some(index) = &kept_index {
                    if let Some((id, similarity)) = index.find(&set) {
                        return Err((
                            RejectReason::NearDuplicate,
                            format!(
                                "{similarity:.2} similar to {:?}",
                                kept_queries[kept_index_ids[id]]
                            ),
                        ));
                    }
                }
                Ok(calls)
            });
        match verdict {
            Ok(calls) => {
                kept_normalized.insert(norm, kept_queries.len());
                if let Some(index) = &mut kept_index {
                    if index.insert(set) {
                        kept_index_ids.push(kept_queries.len());
                    }
                }
                kept_queries.push(query.clone());
                report.kept += 1;
                *report
                    .kept_by_source
                    .entry(candidate.source.clone())
                    .or_insert(0) += 1;
                examples.push(Example {
                    query,
                    unsupported: candidate.unsupported && calls.is_empty(),
                    calls,
                    source: candidate.source,
                    meta: candidate.meta,
                    accept: Vec::new(),
                });
            }
            Err((reason, detail)) => report.reject(
                Rejection {
                    reason,
                    query,
                    source: candidate.source,
                    detail,
                },
                config.samples_per_reason,
            ),
        }
    }
    (examples, report)
}

/// [`filter`] for examples that are already parsed (e.g. an imported dataset or
/// logs turned into data): their calls are re-checked like a teacher's.
pub fn filter_examples(
    examples: Vec<Example>,
    tools: &[ToolSpec],
    config: &FilterConfig,
) -> (Vec<Example>, FilterReport) {
    filter(
        examples.into_iter().map(Candidate::from).collect(),
        tools,
        config,
    )
}

type Verdict<T> = Result<T, (RejectReason, String)>;

/// The per-candidate checks that need no other example.
fn check_candidate(
    query: &str,
    normalized: &str,
    raw_calls: &[Value],
    specs: &HashMap<&str, &ToolSpec>,
    config: &FilterConfig,
) -> Verdict<Vec<ToolCall>> {
    if normalized.is_empty() {
        return Err((
            RejectReason::EmptyQuery,
            "no words in the query".to_string(),
        ));
    }
    let chars = query.chars().count();
    if chars > config.max_query_chars {
        return Err((
            RejectReason::TooLongQuery,
            format!("{chars} characters (limit {})", config.max_query_chars),
        ));
    }
    let calls = raw_calls
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            parse_call(raw).map_err(|e| (RejectReason::InvalidJson, format!("call {i}: {e}")))
        })
        .collect::<Verdict<Vec<ToolCall>>>()?;
    if let Some(unknown) = calls.iter().find(|c| !specs.contains_key(c.tool.as_str())) {
        return Err((
            RejectReason::HallucinatedTool,
            format!("no tool named {:?}", unknown.tool),
        ));
    }
    for call in &calls {
        if let Some(spec) = specs.get(call.tool.as_str()) {
            spec.validate(&Value::Object(call.arguments.clone()))
                .map_err(|e| (RejectReason::Schema, format!("{}: {e}", call.tool)))?;
        }
    }
    Ok(calls)
}

/// Reads one raw `{"tool", "arguments"}` call.
fn parse_call(raw: &Value) -> Result<ToolCall, String> {
    let object = raw
        .as_object()
        .ok_or_else(|| "a call must be a JSON object".to_string())?;
    let tool = object
        .get("tool")
        .and_then(Value::as_str)
        .ok_or_else(|| "a call needs a string `tool`".to_string())?;
    let arguments = match object.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(text)) if text.trim().is_empty() => Map::new(),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("`arguments` string is not a JSON object".to_string()),
            Err(e) => return Err(format!("`arguments` string is not JSON: {e}")),
        },
        Some(_) => return Err("`arguments` must be an object".to_string()),
    };
    let arguments = arguments
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    Ok(ToolCall {
        tool: tool.to_string(),
        arguments,
    })
}

/// 64-bit FNV-1a: a stable hash (unlike `DefaultHasher`, fixed across releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Words a query may add around an evaluation query (a lead-in such as "hmm",
/// "please") and still count as that query.
const WRAPPING_WORDS: usize = 2;

/// Shortest evaluation query, in words, caught inside a longer query.
const MIN_WRAPPED_WORDS: usize = 3;

/// The evaluation query that `normalized` is, give or take
/// [`WRAPPING_WORDS`] words around it ("hmm when will my flight land?" holds
/// "when will my flight land"): shingle similarity misses these short ones.
fn wrapped_eval_query<'a>(normalized: &str, eval: &HashMap<&str, &'a str>) -> Option<&'a str> {
    let words: Vec<&str> = normalized.split_whitespace().collect();
    let n = words.len();
    (n.saturating_sub(WRAPPING_WORDS).max(MIN_WRAPPED_WORDS)..n)
        .rev()
        .flat_map(|len| words.windows(len))
        .find_map(|window| eval.get(window.join(" ").as_str()).copied())
}

/// Hashed word `k`-shingles of a normalised query, sorted and de-duplicated; a
/// query of fewer than `k` words is one shingle.
fn shingles(normalized: &str, k: usize) -> Vec<u64> {
    let words: Vec<&str> = normalized.split_whitespace().collect();
    if words.is_empty() {
        return Vec::new();
    }
    let mut set: Vec<u64> = if words.len() < k {
        vec![fnv1a(words.join(" ").as_bytes())]
    } else {
        words
            .windows(k)
            .map(|w| fnv1a(w.join(" ").as_bytes()))
            .collect()
    };
    set.sort_unstable();
    set.dedup();
    set
}

/// Exact Jaccard search over shingle sets with prefix filtering.
struct ShingleIndex<'a> {
    threshold: f64,
    document_frequency: &'a HashMap<u64, u32>,
    /// Indexed sets, sorted by hash for merging.
    sets: Vec<Vec<u64>>,
    postings: HashMap<u64, Vec<usize>>,
}

impl<'a> ShingleIndex<'a> {
    fn new(threshold: f64, document_frequency: &'a HashMap<u64, u32>) -> Self {
        Self {
            threshold: threshold.clamp(f64::MIN_POSITIVE, 1.0),
            document_frequency,
            sets: Vec::new(),
            postings: HashMap::new(),
        }
    }

    /// The rarest shingles of `set` that any set similar enough must share.
    fn prefix(&self, set: &[u64]) -> Vec<u64> {
        let mut ranked = set.to_vec();
        ranked.sort_unstable_by_key(|h| (self.document_frequency.get(h).copied().unwrap_or(0), *h));
        let len = ranked.len();
        // Subtracting a little keeps float error from shortening the prefix.
        let overlap = ((self.threshold * len as f64) - 1e-9).ceil().max(1.0) as usize;
        ranked.truncate(len.saturating_sub(overlap.min(len)) + 1);
        ranked
    }

    /// Indexes a set; empty sets are not indexed (returns false).
    fn insert(&mut self, set: Vec<u64>) -> bool {
        if set.is_empty() {
            return false;
        }
        let id = self.sets.len();
        for h in self.prefix(&set) {
            self.postings.entry(h).or_default().push(id);
        }
        self.sets.push(set);
        true
    }

    /// The first indexed set with similarity ≥ threshold, and the similarity.
    fn find(&self, set: &[u64]) -> Option<(usize, f64)> {
        if set.is_empty() {
            return None;
        }
        let len = set.len() as f64;
        let mut seen = HashSet::new();
        let mut best: Option<(usize, f64)> = None;
        for h in self.prefix(set) {
            for &id in self.postings.get(&h).map(Vec::as_slice).unwrap_or(&[]) {
                if !seen.insert(id) {
                    continue;
                }
                let other = &self.sets[id];
                let other_len = other.len() as f64;
                if other_len < self.threshold * len - 1e-9
                    || len < self.threshold * other_len - 1e-9
                {
                    continue;
                }
                let similarity = jaccard(set, other);
                if similarity + 1e-12 >= self.threshold && best.is_none_or(|(b, _)| id < b) {
                    best = Some((id, similarity));
                }
            }
        }
        best
    }
}

/// Jaccard similarity of two sorted, de-duplicated sets.
fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Vec<ToolSpec> {
        toolforge_tools::builtin_tools(&Default::default())
            .iter()
            .map(|t| t.spec())
            .collect()
    }

    fn candidate(query: &str, raw_calls: Value) -> Candidate {
        Candidate {
            query: query.to_string(),
            raw_calls: raw_calls.as_array().cloned().unwrap_or_default(),
            unsupported: false,
            source: "teacher:test".into(),
            meta: json!({"n": 1}),
        }
    }

    fn long_query(last: &str) -> String {
        format!(
            "please look up the opening hours of the city library near the central station \
             and tell me whether it is open on public holidays this {last}"
        )
    }

    #[test]
    fn every_reason_is_counted() {
        let config = FilterConfig {
            max_query_chars: 200,
            eval_queries: vec![
                "Is it raining in Paris?".into(),
                "what is the population density of the greater tokyo metropolitan area \
                 compared with the greater osaka metropolitan area in twenty twenty"
                    .into(),
            ],
            ..FilterConfig::default()
        };
        let cases: Vec<(Candidate, Option<RejectReason>)> = vec![
            (
                candidate(
                    "weather in Oslo",
                    json!([{"tool": "weather", "arguments": {"location": "Oslo"}}]),
                ),
                None,
            ),
            (
                candidate(
                    "what's 2+2",
                    json!([{"tool": "calculator", "arguments": "{\"expression\": \"2+2\"}"}]),
                ),
                None,
            ),
            (
                candidate(
                    "what's 2*2",
                    json!([{"tool": "calculator", "arguments": {"expression": "2*2"}}]),
                ),
                None,
            ),
            (candidate("hello there", json!([])), None),
            (
                candidate(
                    &long_query("week"),
                    json!([{"tool": "web_search", "arguments": {"query": "x"}}]),
                ),
                None,
            ),
            (
                candidate(
                    "define dog",
                    json!([{"tool": "dictionary", "arguments": "{not json"}]),
                ),
                Some(RejectReason::InvalidJson),
            ),
            (
                candidate(
                    "define cat",
                    json!([{"tool": "dictionary", "arguments": "[1, 2]"}]),
                ),
                Some(RejectReason::InvalidJson),
            ),
            (
                candidate("define cow", json!(["dictionary"])),
                Some(RejectReason::InvalidJson),
            ),
            (
                candidate(
                    "define hen",
                    json!([{"name": "dictionary", "arguments": {"word": "hen"}}]),
                ),
                Some(RejectReason::InvalidJson),
            ),
            (
                candidate(
                    "book a flight",
                    json!([{"tool": "flight_booker", "arguments": {}}]),
                ),
                Some(RejectReason::HallucinatedTool),
            ),
            (
                candidate(
                    "weather in Rome",
                    json!([{"tool": "weather", "arguments": {"city": "Rome"}}]),
                ),
                Some(RejectReason::Schema),
            ),
            (
                candidate(
                    "convert ten miles",
                    json!([{"tool": "unit_converter", "arguments": {"value": "ten", "from_unit": "miles", "to_unit": "km"}}]),
                ),
                Some(RejectReason::Schema),
            ),
            (candidate("   ", json!([])), Some(RejectReason::EmptyQuery)),
            (candidate("?!", json!([])), Some(RejectReason::EmptyQuery)),
            (
                candidate(&"word ".repeat(60), json!([])),
                Some(RejectReason::TooLongQuery),
            ),
            (
                candidate(
                    "Weather in  OSLO!",
                    json!([{"tool": "weather", "arguments": {"location": "Oslo"}}]),
                ),
                Some(RejectReason::Duplicate),
            ),
            (
                candidate(
                    &long_query("weekend"),
                    json!([{"tool": "web_search", "arguments": {"query": "x"}}]),
                ),
                Some(RejectReason::NearDuplicate),
            ),
            (
                candidate(
                    "is it raining in paris",
                    json!([{"tool": "weather", "arguments": {"location": "Paris"}}]),
                ),
                Some(RejectReason::Leakage),
            ),
            (
                candidate(
                    "hmm, is it raining in Paris?",
                    json!([{"tool": "weather", "arguments": {"location": "Paris"}}]),
                ),
                Some(RejectReason::Leakage),
            ),
            (
                candidate(
                    "what is the population density of the greater tokyo metropolitan area \
                     compared with the greater osaka metropolitan area in twenty twenty one",
                    json!([{"tool": "web_search", "arguments": {"query": "x"}}]),
                ),
                Some(RejectReason::Leakage),
            ),
        ];
        let (candidates, expected): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
        let (kept, report) = filter(candidates, &tools(), &config);

        assert_eq!(report.input, expected.len());
        assert_eq!(report.kept, expected.iter().filter(|e| e.is_none()).count());
        assert_eq!(kept.len(), report.kept);
        for reason in RejectReason::ALL {
            let want = expected.iter().filter(|e| **e == Some(reason)).count();
            assert_eq!(report.count(reason), want, "{reason}: {report}");
        }
        assert_eq!(report.rejected_total() + report.kept, report.input);
        assert_eq!(report.kept_by_source["teacher:test"], report.kept);

        // Arguments given as a JSON string are parsed into an object.
        assert_eq!(kept[1].calls[0].arguments["expression"], "2+2");
        assert_eq!(kept[0].meta, json!({"n": 1}));
        // The display is a readable table naming every reason.
        let table = report.to_string();
        for reason in RejectReason::ALL {
            assert!(table.contains(reason.as_str()), "{table}");
        }
        // The report serialises with reason names as keys.
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["rejected"]["invalid_json"], 4);
        let back: FilterReport = serde_json::from_value(value).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn first_failure_wins_and_nulls_are_dropped() {
        let (kept, report) = filter(
            vec![
                candidate(
                    "weather in Lima",
                    json!([{"tool": "weather", "arguments": {"location": "Lima", "date": null}}]),
                ),
                candidate(
                    "two bad calls",
                    json!([{"tool": "weather", "arguments": {}}, {"tool": "nope"}]),
                ),
            ],
            &tools(),
            &FilterConfig::default(),
        );
        assert_eq!(kept.len(), 1);
        assert!(!kept[0].calls[0].arguments.contains_key("date"));
        assert_eq!(report.count(RejectReason::HallucinatedTool), 1);
    }

    #[test]
    fn thresholds_are_configurable() {
        let tools = tools();
        let pair = || {
            vec![
                candidate(&long_query("week"), json!([])),
                candidate(&long_query("weekend"), json!([])),
            ]
        };
        let off = FilterConfig {
            near_duplicate_threshold: None,
            ..FilterConfig::default()
        };
        assert_eq!(filter(pair(), &tools, &off).0.len(), 2);
        let strict = FilterConfig {
            near_duplicate_threshold: Some(0.99),
            ..FilterConfig::default()
        };
        assert_eq!(filter(pair(), &tools, &strict).0.len(), 2);
        let loose = FilterConfig {
            near_duplicate_threshold: Some(0.5),
            ..FilterConfig::default()
        };
        assert_eq!(filter(pair(), &tools, &loose).0.len(), 1);
        let short = FilterConfig {
            max_query_chars: 10,
            ..FilterConfig::default()
        };
        let (_, report) = filter(pair(), &tools, &short);
        assert_eq!(report.count(RejectReason::TooLongQuery), 2);
    }

    #[test]
    fn normalisation_keeps_meaningful_symbols() {
        assert_eq!(
            normalize_query("  What's   the Weather, in PARIS?! "),
            "whats the weather in paris"
        );
        assert_eq!(normalize_query("(3.5 + 2) * 4"), "3.5 + 2 * 4");
        assert_ne!(normalize_query("2+2"), normalize_query("2*2"));
        assert_ne!(normalize_query("3.5 km"), normalize_query("35 km"));
        assert_eq!(normalize_query("convert $5 to €"), "convert $5 to €");
        assert_eq!(normalize_query("hello,world"), "hello world");
    }

    #[test]
    fn filter_examples_rechecks_parsed_examples() {
        let examples = vec![
            Example {
                query: "weather in Oslo".into(),
                calls: vec![ToolCall::new("weather", json!({"location": "Oslo"}))],
                source: "handwritten".into(),
                meta: Value::Null,
                ..Example::default()
            },
            Example {
                query: "weather in Bergen".into(),
                calls: vec![ToolCall::new("weather", json!({"place": "Bergen"}))],
                source: "handwritten".into(),
                meta: Value::Null,
                ..Example::default()
            },
        ];
        let (kept, report) = filter_examples(examples.clone(), &tools(), &FilterConfig::default());
        assert_eq!(kept, examples[..1].to_vec());
        assert_eq!(report.count(RejectReason::Schema), 1);
    }

    /// A deterministic stream of pseudo-random numbers for generated queries.
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *state >> 33
    }

    fn generated_queries(count: usize, vocabulary: usize, seed: u64) -> Vec<String> {
        let mut state = seed;
        let mut queries = Vec::with_capacity(count);
        for i in 0..count {
            // Every fifth query is a one-word edit of an earlier one.
            if i % 5 == 4 {
                let base: &String = &queries[(lcg(&mut state) as usize) % i];
                let mut words: Vec<String> = base.split(' ').map(str::to_string).collect();
                let at = (lcg(&mut state) as usize) % words.len();
                words[at] = format!("w{}", lcg(&mut state) as usize % vocabulary);
                queries.push(words.join(" "));
                continue;
            }
            let len = 4 + (lcg(&mut state) as usize % 24);
            let words: Vec<String> = (0..len)
                .map(|_| format!("w{}", lcg(&mut state) as usize % vocabulary))
                .collect();
            queries.push(words.join(" "));
        }
        queries
    }

    #[test]
    fn near_duplicate_search_matches_brute_force() {
        let tools = tools();
        for threshold in [0.5f64, 0.7, 0.9] {
            let queries = generated_queries(400, 12, threshold.to_bits());
            let config = FilterConfig {
                near_duplicate_threshold: Some(threshold),
                ..FilterConfig::default()
            };
            let candidates = queries.iter().map(|q| candidate(q, json!([]))).collect();
            let (kept, _) = filter(candidates, &tools, &config);

            let mut expected: Vec<&String> = Vec::new();
            let mut expected_sets: Vec<Vec<u64>> = Vec::new();
            let mut seen = HashSet::new();
            for q in &queries {
                let set = shingles(&normalize_query(q), 3);
                if !seen.insert(normalize_query(q)) {
                    continue;
                }
                if expected_sets
                    .iter()
                    .any(|other| jaccard(&set, other) >= threshold)
                {
                    continue;
                }
                expected.push(q);
                expected_sets.push(set);
            }
            let got: Vec<&String> = kept.iter().map(|e| &e.query).collect();
            assert_eq!(got, expected, "threshold {threshold}");
        }
    }

    #[test]
    fn twenty_thousand_candidates_filter_quickly() {
        let queries = generated_queries(20_000, 5_000, 7);
        let config = FilterConfig {
            eval_queries: queries[..500].to_vec(),
            ..FilterConfig::default()
        };
        let candidates = queries.iter().map(|q| candidate(q, json!([]))).collect();
        let start = std::time::Instant::now();
        let (kept, report) = filter(candidates, &tools(), &config);
        let elapsed = start.elapsed();
        assert!(report.count(RejectReason::Leakage) >= 500);
        assert!(report.count(RejectReason::NearDuplicate) > 0, "{report}");
        assert_eq!(kept.len() + report.rejected_total(), 20_000);
        assert!(elapsed.as_secs() < 30, "took {elapsed:?}");
    }

    #[test]
    fn an_evaluation_query_with_a_word_or_two_around_it_is_found() {
        let eval: HashMap<&str, &str> = [
            ("when will my flight land", "When will my flight land?"),
            ("hi there", "hi there"),
        ]
        .into_iter()
        .collect();
        let found = |q: &str| wrapped_eval_query(&normalize_query(q), &eval);
        assert_eq!(
            found("hmm when will my flight land"),
            Some("When will my flight land?")
        );
        assert_eq!(
            found("ok so when will my flight land"),
            Some("When will my flight land?")
        );
        assert_eq!(found("ok so uh when will my flight land"), None);
        assert_eq!(
            found("when will my flight land"),
            None,
            "exact matches are checked apart"
        );
        assert_eq!(
            found("oh hi there"),
            None,
            "two-word queries are too common to catch"
        );
    }
}
