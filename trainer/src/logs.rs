//! Logged traffic to training data: run logs (JSON Lines of [`LogLine`]) become
//! dataset [`Example`]s by a labeling policy, and user feedback is appended to a
//! log with [`append_feedback`].
//!
//! Policy, in priority order (the first that applies labels the run):
//! 1. feedback: a correction gives the corrected decision's calls
//!    (`logs:feedback_corrected`); `ok` keeps the run's decision (`logs:feedback_ok`);
//! 2. teacher relabelling of the other queries, prepared by the caller
//!    (`logs:teacher_relabel`);
//! 3. agreement: every tool call succeeded and every routing stage that decided
//!    chose the same tool set as the final decision (`logs:agreement`).
//!
//! Runs no policy labels are skipped and counted by reason; corrupt lines are
//! skipped and counted, never fatal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use toolforge_core::{Feedback, FeedbackRecord, LogLine, RunRecord, StageOutcome, ToolCall};

use crate::dataset::Example;

/// Source of examples labeled by a user's correction.
pub const SOURCE_FEEDBACK_CORRECTED: &str = "logs:feedback_corrected";
/// Source of examples whose decision a user confirmed.
pub const SOURCE_FEEDBACK_OK: &str = "logs:feedback_ok";
/// Source of examples relabeled by a teacher.
pub const SOURCE_TEACHER_RELABEL: &str = "logs:teacher_relabel";
/// Source of examples whose stages agreed and whose calls all succeeded.
pub const SOURCE_AGREEMENT: &str = "logs:agreement";

/// Line numbers of corrupt lines kept in the report.
const CORRUPT_SAMPLES: usize = 20;

/// Why logs could not be read or feedback not appended.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The run log could not be opened, read or appended to.
    #[error("cannot access run log {path}: {source}")]
    Io {
        /// The run log.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Feedback names a run the log does not hold.
    #[error("no run with id `{run_id}` in {path}")]
    UnknownRun {
        /// The id given.
        run_id: String,
        /// The run log searched.
        path: PathBuf,
    },
    /// The feedback record could not be serialised (the JSON error, as text).
    #[error("cannot encode the feedback record: {0}")]
    Encode(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LogsError + '_ {
    move |source| LogsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Which policies may label a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogsPolicy {
    /// Use user feedback (corrections and confirmations).
    pub feedback: bool,
    /// Use the caller's teacher relabels.
    pub relabel: bool,
    /// Use runs whose stages agreed and whose calls all succeeded.
    pub agreement: bool,
    /// Stages that must have decided for agreement to count (a run routed by no
    /// stage, e.g. after a routing failure, says nothing about the right tools).
    pub min_deciding_stages: usize,
}

impl Default for LogsPolicy {
    fn default() -> Self {
        Self {
            feedback: true,
            relabel: true,
            agreement: true,
            min_deciding_stages: 1,
        }
    }
}

/// Why a run gave no example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The logged query is blank.
    EmptyQuery,
    /// A tool call of the run failed.
    ToolError,
    /// The decision's calls were not all executed.
    CallsNotExecuted,
    /// Fewer routing stages decided than [`LogsPolicy::min_deciding_stages`].
    NoDecidingStage,
    /// A stage that decided chose other tools than the final decision.
    StageDisagreement,
    /// No enabled policy applies.
    NoPolicy,
    /// A second run line with an id already seen (the first is used).
    DuplicateRunId,
}

impl SkipReason {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::EmptyQuery => "empty_query",
            SkipReason::ToolError => "tool_error",
            SkipReason::CallsNotExecuted => "calls_not_executed",
            SkipReason::NoDecidingStage => "no_deciding_stage",
            SkipReason::StageDisagreement => "stage_disagreement",
            SkipReason::NoPolicy => "no_policy",
            SkipReason::DuplicateRunId => "duplicate_run_id",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What reading a log did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogsReport {
    /// Files read: the log and its rotated files (`runs.jsonl.1` ...), oldest first.
    #[serde(default)]
    pub files: usize,
    /// Non-blank lines read.
    pub lines: usize,
    /// Run lines parsed.
    pub runs: usize,
    /// Feedback lines parsed.
    pub feedback_records: usize,
    /// Lines that were neither (bad JSON, bad UTF-8, unknown shape).
    pub corrupt_lines: usize,
    /// 1-based numbers of the first corrupt lines.
    pub corrupt_line_numbers: Vec<usize>,
    /// Whether the last line is torn: unparsable and without its newline, as a
    /// writer killed mid-line leaves it. Skipped, and not counted as corrupt.
    #[serde(default)]
    pub torn_last_line: bool,
    /// Run ids that have feedback but no run line in the log.
    pub orphan_feedback: usize,
    /// Examples made, per source.
    pub examples: BTreeMap<String, usize>,
    /// Runs skipped, per reason.
    pub skipped: BTreeMap<SkipReason, usize>,
}

impl LogsReport {
    /// Examples made from all policies.
    pub fn examples_total(&self) -> usize {
        self.examples.values().sum()
    }

    /// Runs skipped for one reason.
    pub fn skipped_for(&self, reason: SkipReason) -> usize {
        self.skipped.get(&reason).copied().unwrap_or(0)
    }
}

impl fmt::Display for LogsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "logs: {} lines in {} file(s), {} runs, {} feedback records, {} corrupt lines, {} orphan feedback",
            self.lines,
            self.files,
            self.runs,
            self.feedback_records,
            self.corrupt_lines,
            self.orphan_feedback
        )?;
        if !self.corrupt_line_numbers.is_empty() {
            let numbers: Vec<String> = self
                .corrupt_line_numbers
                .iter()
                .map(ToString::to_string)
                .collect();
            writeln!(f, "corrupt lines: {}", numbers.join(", "))?;
        }
        if self.torn_last_line {
            writeln!(f, "torn last line skipped: 1 (a write cut off mid-line)")?;
        }
        writeln!(f, "{:<28} {:>8}", "examples by source", "count")?;
        for (source, count) in &self.examples {
            writeln!(f, "{source:<28} {count:>8}")?;
        }
        writeln!(f, "{:<28} {:>8}", "total", self.examples_total())?;
        if !self.skipped.is_empty() {
            writeln!(f, "{:<28} {:>8}", "skipped runs by reason", "count")?;
            for (reason, count) in &self.skipped {
                writeln!(f, "{:<28} {count:>8}", reason.as_str())?;
            }
        }
        Ok(())
    }
}

/// A run with the feedback that applies to it (the last one given).
struct LoggedRun {
    run: RunRecord,
    feedback: Option<Feedback>,
    feedback_timestamp: Option<String>,
}

/// Runs of a log (first line per id), with feedback applied, and the report so far.
fn scan_log(path: &Path) -> Result<(Vec<LoggedRun>, LogsReport), LogsError> {
    let files = toolforge_core::jsonl::with_rotated(path);
    if files.is_empty() {
        // Nothing there: the open error names the path.
        std::fs::File::open(path).map_err(io_error(path))?;
    }
    let mut report = LogsReport {
        files: files.len(),
        ..LogsReport::default()
    };
    let mut runs: Vec<LoggedRun> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut feedback: HashMap<String, FeedbackRecord> = HashMap::new();
    let mut offset = 0;
    for (n, file_path) in files.iter().enumerate() {
        let last_file = n + 1 == files.len();
        let file = std::fs::File::open(file_path).map_err(io_error(file_path))?;
        let mut file_lines = 0;
        for line in toolforge_core::jsonl::lines(std::io::BufReader::new(file)) {
            let line = line.map_err(io_error(file_path))?;
            file_lines = line.number;
            let number = offset + line.number;
            report.lines += 1;
            let parsed = line
                .text
                .ok()
                .and_then(|text| serde_json::from_str::<LogLine>(text.trim()).ok());
            let Some(parsed) = parsed else {
                if line.unterminated && last_file {
                    // The line being written when the writer died: expected, not damage.
                    report.torn_last_line = true;
                } else {
                    note_corrupt(&mut report, number);
                }
                continue;
            };
            match parsed {
                LogLine::Run(run) => {
                    report.runs += 1;
                    if index.contains_key(&run.run_id) {
                        *report
                            .skipped
                            .entry(SkipReason::DuplicateRunId)
                            .or_insert(0) += 1;
                        continue;
                    }
                    index.insert(run.run_id.clone(), runs.len());
                    let inline = run.feedback.clone();
                    runs.push(LoggedRun {
                        run: *run,
                        feedback: inline,
                        feedback_timestamp: None,
                    });
                }
                LogLine::Feedback(record) => {
                    report.feedback_records += 1;
                    feedback.insert(record.feedback_for.clone(), record);
                }
            }
        }
        offset += file_lines;
    }
    for (run_id, record) in feedback {
        match index.get(&run_id) {
            Some(&i) => {
                runs[i].feedback = Some(record.feedback);
                runs[i].feedback_timestamp = Some(record.timestamp);
            }
            None => report.orphan_feedback += 1,
        }
    }
    Ok((runs, report))
}

fn note_corrupt(report: &mut LogsReport, number: usize) {
    report.corrupt_lines += 1;
    if report.corrupt_line_numbers.len() < CORRUPT_SAMPLES {
        report.corrupt_line_numbers.push(number);
    }
}

/// Checks the agreement policy: calls all executed and succeeded, enough stages
/// decided, and each chose the final decision's tool set.
fn agreement(run: &RunRecord, policy: &LogsPolicy) -> Result<(), SkipReason> {
    if run.calls.len() != run.decision.calls.len()
        || run
            .calls
            .iter()
            .zip(&run.decision.calls)
            .any(|(done, planned)| done.tool != planned.tool)
    {
        return Err(SkipReason::CallsNotExecuted);
    }
    if run.calls.iter().any(|c| c.error.is_some()) {
        return Err(SkipReason::ToolError);
    }
    let decided: Vec<Vec<String>> =
        run.stages
            .iter()
            .filter_map(|stage| match &stage.outcome {
                StageOutcome::Decided { decision }
                | StageOutcome::BelowThreshold { decision, .. } => Some(decision.tool_set()),
                _ => None,
            })
            .collect();
    if decided.len() < policy.min_deciding_stages {
        return Err(SkipReason::NoDecidingStage);
    }
    let final_set = run.decision.tool_set();
    if decided.iter().any(|set| *set != final_set) {
        return Err(SkipReason::StageDisagreement);
    }
    Ok(())
}

/// What the run was and did, for an example's `meta`.
fn run_meta(logged: &LoggedRun, with_outputs: bool) -> Value {
    let run = &logged.run;
    let mut meta = Map::new();
    meta.insert("run_id".into(), json!(run.run_id));
    meta.insert("timestamp".into(), json!(run.timestamp));
    meta.insert("router".into(), json!(run.decision.router));
    meta.insert(
        "router_model_version".into(),
        json!(run.router_model_version),
    );
    if let Some(at) = &logged.feedback_timestamp {
        meta.insert("feedback_timestamp".into(), json!(at));
    }
    // The real tool outputs and answer, when they belong to the labeled calls.
    if with_outputs
        && run.calls.len() == run.decision.calls.len()
        && run.calls.iter().all(|c| c.error.is_none())
    {
        let outputs: Vec<Value> = run
            .calls
            .iter()
            .map(|c| c.output.clone().unwrap_or(Value::Null))
            .collect();
        meta.insert("tool_outputs".into(), Value::Array(outputs));
        meta.insert("answer".into(), json!(run.answer));
    }
    Value::Object(meta)
}

/// Labels one run, or says why not.
fn label_run(
    logged: &LoggedRun,
    relabels: &HashMap<String, Vec<ToolCall>>,
    policy: &LogsPolicy,
) -> Result<Example, SkipReason> {
    let run = &logged.run;
    let query = run.query.trim();
    if query.is_empty() {
        return Err(SkipReason::EmptyQuery);
    }
    let make = |calls: Vec<ToolCall>, source: &str, with_outputs: bool| Example {
        query: query.to_string(),
        calls,
        source: source.to_string(),
        meta: run_meta(logged, with_outputs),
        ..Example::default()
    };
    if policy.feedback {
        match &logged.feedback {
            Some(Feedback::Corrected { decision }) => {
                return Ok(make(
                    decision.calls.clone(),
                    SOURCE_FEEDBACK_CORRECTED,
                    false,
                ))
            }
            Some(Feedback::Ok) => {
                return Ok(make(run.decision.calls.clone(), SOURCE_FEEDBACK_OK, true))
            }
            None => {}
        }
    }
    if policy.relabel {
        if let Some(calls) = relabels
            .get(run.query.as_str())
            .or_else(|| relabels.get(query))
        {
            return Ok(make(calls.clone(), SOURCE_TEACHER_RELABEL, false));
        }
    }
    if policy.agreement {
        agreement(run, policy)?;
        return Ok(make(run.decision.calls.clone(), SOURCE_AGREEMENT, true));
    }
    Err(SkipReason::NoPolicy)
}

/// Turns a run log into examples by the labeling policy (see the module docs).
///
/// `relabels` maps a logged query to the calls a teacher gave for it; it labels
/// runs without feedback. Each example's `meta` holds `run_id`, `timestamp`,
/// `router`, `router_model_version` (and `feedback_timestamp` when feedback was
/// appended later); examples that keep the run's executed calls also carry their
/// `tool_outputs` and the run's `answer`. Only an unreadable file is an error.
pub fn examples_from_logs(
    path: &Path,
    relabels: &HashMap<String, Vec<ToolCall>>,
    policy: &LogsPolicy,
) -> Result<(Vec<Example>, LogsReport), LogsError> {
    let (runs, mut report) = scan_log(path)?;
    let mut examples = Vec::new();
    for logged in &runs {
        match label_run(logged, relabels, policy) {
            Ok(example) => {
                *report.examples.entry(example.source.clone()).or_insert(0) += 1;
                examples.push(example);
            }
            Err(reason) => *report.skipped.entry(reason).or_insert(0) += 1,
        }
    }
    Ok((examples, report))
}

/// Distinct queries of the runs that have no feedback (in log order): what a
/// teacher should relabel to build the `relabels` of [`examples_from_logs`].
pub fn queries_to_relabel(path: &Path) -> Result<Vec<String>, LogsError> {
    let (runs, _) = scan_log(path)?;
    let mut seen = HashSet::new();
    Ok(runs
        .into_iter()
        .filter(|r| r.feedback.is_none())
        .map(|r| r.run.query.trim().to_string())
        .filter(|q| !q.is_empty() && seen.insert(q.clone()))
        .collect())
}

/// Appends a verdict on run `run_id` to the log, as a [`FeedbackRecord`] line
/// stamped with the current UTC time (RFC 3339). Fails with
/// [`LogsError::UnknownRun`] if the log has no run with that id.
pub fn append_feedback(
    log_path: &Path,
    run_id: &str,
    feedback: Feedback,
) -> Result<FeedbackRecord, LogsError> {
    std::fs::File::open(log_path).map_err(io_error(log_path))?;
    let mut found = false;
    for file_path in toolforge_core::jsonl::with_rotated(log_path).iter().rev() {
        let file = std::fs::File::open(file_path).map_err(io_error(file_path))?;
        if toolforge_core::log_has_run(std::io::BufReader::new(file), run_id)
            .map_err(io_error(file_path))?
        {
            found = true;
            break;
        }
    }
    if !found {
        return Err(LogsError::UnknownRun {
            run_id: run_id.to_string(),
            path: log_path.to_path_buf(),
        });
    }
    let record = FeedbackRecord::now(run_id, feedback);
    let line = serde_json::to_string(&record).map_err(|e| LogsError::Encode(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(log_path)
        .map_err(io_error(log_path))?;
    toolforge_core::jsonl::append_line(&mut file, &line).map_err(io_error(log_path))?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolforge_core::{CallRecord, RouteDecision, StageRecord, RUN_RECORD_SCHEMA_VERSION};

    fn call(tool: &str, arguments: Value) -> ToolCall {
        ToolCall::new(tool, arguments)
    }

    fn decision(router: &str, calls: Vec<ToolCall>) -> RouteDecision {
        RouteDecision {
            calls,
            router: router.into(),
            confidence: Some(0.9),
            unsupported: false,
        }
    }

    fn stage(router: &str, outcome: StageOutcome) -> StageRecord {
        StageRecord {
            router: router.into(),
            outcome,
            confidence: Some(0.9),
            latency_us: 10,
        }
    }

    /// A run routed by `stages` to `calls`, every call succeeding unless `error`.
    fn run(
        id: &str,
        query: &str,
        stages: Vec<StageRecord>,
        calls: Vec<ToolCall>,
        error: Option<&str>,
    ) -> RunRecord {
        RunRecord {
            schema_version: RUN_RECORD_SCHEMA_VERSION,
            run_id: id.into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            query: query.into(),
            stages,
            calls: calls
                .iter()
                .map(|c| CallRecord {
                    tool: c.tool.clone(),
                    arguments: c.arguments.clone(),
                    output: if error.is_some() {
                        None
                    } else {
                        Some(json!({"summary": "done"}))
                    },
                    error: error.map(str::to_string),
                    duration_us: 5,
                })
                .collect(),
            decision: decision("toolforge", calls),
            answer: "answer".into(),
            feedback: None,
            router_model_version: Some("tf-1".into()),
            total_us: 50,
        }
    }

    fn decided(router: &str, calls: Vec<ToolCall>) -> StageRecord {
        stage(
            router,
            StageOutcome::Decided {
                decision: decision(router, calls),
            },
        )
    }

    fn below(router: &str, calls: Vec<ToolCall>) -> StageRecord {
        stage(
            router,
            StageOutcome::BelowThreshold {
                decision: decision(router, calls),
                threshold: 0.8,
            },
        )
    }

    fn feedback_line(id: &str, feedback: Feedback) -> String {
        serde_json::to_string(&FeedbackRecord {
            feedback_for: id.into(),
            timestamp: "2026-01-02T00:00:00Z".into(),
            feedback,
        })
        .unwrap()
    }

    fn weather(place: &str) -> ToolCall {
        call("weather", json!({"location": place}))
    }

    fn calc(expression: &str) -> ToolCall {
        call("calculator", json!({"expression": expression}))
    }

    /// A log with one run per policy outcome, corrupt lines and feedback.
    fn write_log(dir: &Path) -> PathBuf {
        let runs = [
            // Agreement: two stages, same tool set, calls succeeded.
            run(
                "agree",
                "weather in Oslo",
                vec![
                    below("toolforge", vec![weather("Oslo")]),
                    decided("regex", vec![weather("Oslo")]),
                ],
                vec![weather("Oslo")],
                None,
            ),
            // Disagreement: toolforge wanted weather, regex decided calculator.
            run(
                "disagree",
                "what is 2+2 in oslo",
                vec![
                    below("toolforge", vec![weather("Oslo")]),
                    decided("regex", vec![calc("2+2")]),
                ],
                vec![calc("2+2")],
                None,
            ),
            // A tool failed.
            run(
                "failed",
                "weather in Atlantis",
                vec![decided("toolforge", vec![weather("Atlantis")])],
                vec![weather("Atlantis")],
                Some("unknown place"),
            ),
            // Routing failed: no stage decided, answered directly.
            run(
                "nostage",
                "hi",
                vec![stage(
                    "toolforge",
                    StageOutcome::Error {
                        message: "no model".into(),
                    },
                )],
                vec![],
                None,
            ),
            // Confirmed later by the user although its stages disagreed.
            run(
                "ok",
                "sqrt of 16",
                vec![
                    below("toolforge", vec![]),
                    decided("regex", vec![calc("sqrt(16)")]),
                ],
                vec![calc("sqrt(16)")],
                None,
            ),
            // Corrected twice; the later correction wins.
            run(
                "fixed",
                "how warm is it in Lima and what's 3*3",
                vec![decided("toolforge", vec![weather("Lima")])],
                vec![weather("Lima")],
                None,
            ),
            // No feedback, stages disagree, but the teacher relabeled it.
            run(
                "relabel",
                "define serendipity",
                vec![
                    below("toolforge", vec![]),
                    decided("regex", vec![calc("0")]),
                ],
                vec![calc("0")],
                None,
            ),
            // No tool, one stage: agreement gives a no-tool example.
            run(
                "direct",
                "thanks!",
                vec![decided("toolforge", vec![])],
                vec![],
                None,
            ),
        ];
        let mut lines: Vec<String> = runs
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        lines.insert(2, "{not json".into());
        lines.insert(4, r#"{"some": "other object"}"#.into());
        lines.push(String::new());
        lines.push(feedback_line(
            "fixed",
            Feedback::Corrected {
                decision: decision("user", vec![calc("1+1")]),
            },
        ));
        lines.push(feedback_line("ok", Feedback::Ok));
        lines.push(feedback_line("ghost", Feedback::Ok));
        lines.push(feedback_line(
            "fixed",
            Feedback::Corrected {
                decision: decision("user", vec![weather("Lima"), calc("3*3")]),
            },
        ));
        // A second line for a run id already seen is ignored.
        lines.push(
            serde_json::to_string(&run("agree", "weather in Bergen", vec![], vec![], None))
                .unwrap(),
        );
        let path = dir.join("runs.jsonl");
        let mut bytes = lines.join("\n").into_bytes();
        bytes.extend_from_slice(b"\n\xff\xfe broken utf-8\n");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn by_run(examples: &[Example]) -> HashMap<String, &Example> {
        examples
            .iter()
            .map(|e| (e.meta["run_id"].as_str().unwrap().to_string(), e))
            .collect()
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_counted_apart_from_corrupt_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path());
        let whole = examples_from_logs(&path, &HashMap::new(), &LogsPolicy::default())
            .unwrap()
            .1;
        assert!(!whole.torn_last_line);
        let mut bytes = std::fs::read(&path).unwrap();
        let next =
            serde_json::to_string(&run("cut", "weather in Oslo", vec![], vec![], None)).unwrap();
        bytes.extend_from_slice(&next.as_bytes()[..next.len() / 2]);
        std::fs::write(&path, bytes).unwrap();
        let (_, torn) = examples_from_logs(&path, &HashMap::new(), &LogsPolicy::default()).unwrap();
        assert!(torn.torn_last_line, "{torn}");
        assert_eq!(torn.corrupt_lines, whole.corrupt_lines);
        assert_eq!(torn.runs, whole.runs);
        assert!(torn.to_string().contains("torn last line skipped"));
    }

    #[test]
    fn rotated_files_are_read_oldest_first_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path());
        let (whole, report) =
            examples_from_logs(&path, &HashMap::new(), &LogsPolicy::default()).unwrap();
        assert_eq!(report.files, 1);
        let text = std::fs::read(&path).unwrap();
        let cut = text.iter().position(|b| *b == b'\n').unwrap() + 1;
        std::fs::write(toolforge_core::jsonl::rotated_path(&path, 1), &text[..cut]).unwrap();
        std::fs::write(&path, &text[cut..]).unwrap();
        let (split, split_report) =
            examples_from_logs(&path, &HashMap::new(), &LogsPolicy::default()).unwrap();
        assert_eq!(split_report.files, 2);
        assert_eq!(split_report.runs, report.runs);
        assert_eq!(
            split_report.corrupt_line_numbers,
            report.corrupt_line_numbers
        );
        let queries =
            |examples: &[Example]| examples.iter().map(|e| e.query.clone()).collect::<Vec<_>>();
        assert_eq!(queries(&split), queries(&whole));
    }

    #[test]
    fn policies_label_runs_in_priority_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path());
        let relabels = HashMap::from([(
            "define serendipity".to_string(),
            vec![call("dictionary", json!({"word": "serendipity"}))],
        )]);
        let (examples, report) =
            examples_from_logs(&path, &relabels, &LogsPolicy::default()).unwrap();
        let runs = by_run(&examples);

        assert_eq!(report.corrupt_lines, 3, "{report}");
        assert_eq!(report.corrupt_line_numbers, vec![3, 5, 17]);
        assert_eq!(report.runs, 9);
        assert_eq!(report.feedback_records, 4);
        assert_eq!(report.orphan_feedback, 1);
        assert_eq!(report.skipped_for(SkipReason::DuplicateRunId), 1);
        assert_eq!(report.skipped_for(SkipReason::StageDisagreement), 1);
        assert_eq!(report.skipped_for(SkipReason::ToolError), 1);
        assert_eq!(report.skipped_for(SkipReason::NoDecidingStage), 1);
        assert_eq!(report.examples_total(), 5);
        assert_eq!(examples.len(), 5);
        assert!(
            !runs.contains_key("disagree")
                && !runs.contains_key("failed")
                && !runs.contains_key("nostage")
        );

        let agree = runs["agree"];
        assert_eq!(agree.source, SOURCE_AGREEMENT);
        assert_eq!(agree.query, "weather in Oslo");
        assert_eq!(agree.calls, vec![weather("Oslo")]);
        assert_eq!(agree.meta["router"], "toolforge");
        assert_eq!(agree.meta["router_model_version"], "tf-1");
        assert_eq!(agree.meta["timestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(agree.meta["tool_outputs"], json!([{"summary": "done"}]));
        assert_eq!(agree.meta["answer"], "answer");

        let ok = runs["ok"];
        assert_eq!(ok.source, SOURCE_FEEDBACK_OK);
        assert_eq!(ok.calls, vec![calc("sqrt(16)")]);
        assert_eq!(ok.meta["feedback_timestamp"], "2026-01-02T00:00:00Z");

        let fixed = runs["fixed"];
        assert_eq!(fixed.source, SOURCE_FEEDBACK_CORRECTED);
        assert_eq!(fixed.calls, vec![weather("Lima"), calc("3*3")]);
        assert!(fixed.meta.get("tool_outputs").is_none());

        assert_eq!(runs["relabel"].source, SOURCE_TEACHER_RELABEL);
        assert_eq!(runs["relabel"].calls[0].tool, "dictionary");
        assert_eq!(runs["direct"].source, SOURCE_AGREEMENT);
        assert!(runs["direct"].calls.is_empty());
        assert_eq!(report.examples[SOURCE_FEEDBACK_CORRECTED], 1);

        let text = report.to_string();
        assert!(
            text.contains("stage_disagreement") && text.contains("logs:agreement"),
            "{text}"
        );
        assert_eq!(queries_to_relabel(&path).unwrap().len(), 6);
    }

    #[test]
    fn disabled_policies_fall_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path());
        let policy = LogsPolicy {
            feedback: false,
            relabel: false,
            agreement: false,
            ..LogsPolicy::default()
        };
        let (examples, report) = examples_from_logs(&path, &HashMap::new(), &policy).unwrap();
        assert!(examples.is_empty());
        assert_eq!(report.skipped_for(SkipReason::NoPolicy), 8);

        // Without feedback, the confirmed run is judged by agreement (its stages disagree).
        let policy = LogsPolicy {
            feedback: false,
            ..LogsPolicy::default()
        };
        let (examples, _) = examples_from_logs(&path, &HashMap::new(), &policy).unwrap();
        let runs = by_run(&examples);
        assert!(!runs.contains_key("ok"));
        assert_eq!(runs["fixed"].source, SOURCE_AGREEMENT);
    }

    #[test]
    fn missing_log_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = examples_from_logs(
            &dir.path().join("none.jsonl"),
            &HashMap::new(),
            &LogsPolicy::default(),
        );
        assert!(matches!(err, Err(LogsError::Io { .. })));
    }

    #[test]
    fn append_feedback_checks_the_run_and_appends_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        let record = run(
            "r-1",
            "weather in Oslo",
            vec![
                below("toolforge", vec![]),
                decided("regex", vec![weather("Oslo")]),
            ],
            vec![weather("Oslo")],
            None,
        );
        // No trailing newline: the appended record still gets its own line.
        std::fs::write(&path, serde_json::to_string(&record).unwrap()).unwrap();

        let err = append_feedback(&path, "r-404", Feedback::Ok).unwrap_err();
        assert!(matches!(&err, LogsError::UnknownRun { run_id, .. } if run_id == "r-404"));
        assert!(err.to_string().contains("no run with id `r-404`"), "{err}");

        let appended = append_feedback(
            &path,
            "r-1",
            Feedback::Corrected {
                decision: decision("user", vec![weather("Bergen")]),
            },
        )
        .unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(&appended.timestamp).is_ok());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        let last: FeedbackRecord = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last, appended);

        let (examples, report) =
            examples_from_logs(&path, &HashMap::new(), &LogsPolicy::default()).unwrap();
        assert_eq!(report.corrupt_lines, 0);
        assert_eq!(examples[0].source, SOURCE_FEEDBACK_CORRECTED);
        assert_eq!(examples[0].calls, vec![weather("Bergen")]);

        // A later verdict overrides the correction.
        append_feedback(&path, "r-1", Feedback::Ok).unwrap();
        let (examples, _) =
            examples_from_logs(&path, &HashMap::new(), &LogsPolicy::default()).unwrap();
        assert_eq!(examples[0].source, SOURCE_FEEDBACK_OK);
        assert_eq!(examples[0].calls, vec![weather("Oslo")]);

        assert!(matches!(
            append_feedback(&dir.path().join("missing.jsonl"), "r-1", Feedback::Ok),
            Err(LogsError::Io { .. })
        ));
    }
}
