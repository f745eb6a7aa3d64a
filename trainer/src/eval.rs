//! Router evaluation: tool-set accuracy, balanced accuracy (mean over gold
//! classes) and per-source accuracy, macro-F1 and per-tool precision/recall,
//! no-tool precision/recall, unsupported requests recognised, decisions with
//! several calls, a confusion matrix, argument F1 (token-level for strings, exact
//! for numbers), the invalid-call rate and latency percentiles.
//!
//! A gold line may list several acceptable tool sets (`accept`); a prediction is
//! right when its set is one of them, and is then compared with that one.
//!
//! Argument F1 is measured on calls whose tool was predicted right (each gold
//! call is paired with the first unpaired predicted call of the same tool); tool
//! mistakes are already counted by the routing metrics.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolforge_core::{RouteContext, Router, ToolCall, ToolSpec};

use crate::dataset::Example;

/// What a router answered for one example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Predicted calls; empty for no tool, abstention or error.
    pub calls: Vec<ToolCall>,
    /// The router's error, if it failed.
    pub error: Option<String>,
    /// The router abstained (scored as "no tool": the agent then answers without tools).
    #[serde(default)]
    pub abstained: bool,
    /// The decision said no tool can serve the request.
    #[serde(default)]
    pub unsupported: bool,
    /// Time the router took to answer, in microseconds.
    pub latency_us: u64,
}

impl Prediction {
    /// The prediction for a router's answer that took `latency_us`.
    pub fn from_result(
        result: Result<Option<toolforge_core::RouteDecision>, toolforge_core::RouteError>,
        latency_us: u64,
    ) -> Self {
        match result {
            Ok(decision) => Self {
                abstained: decision.is_none(),
                unsupported: decision.as_ref().is_some_and(|d| d.unsupported),
                calls: decision.map(|d| d.calls).unwrap_or_default(),
                error: None,
                latency_us,
            },
            Err(e) => Self {
                calls: Vec::new(),
                error: Some(e.to_string()),
                abstained: false,
                unsupported: false,
                latency_us,
            },
        }
    }
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Share of predictions of the class that were right (0 when there are none).
    pub precision: f64,
    /// Share of gold examples of the class that were predicted (0 when there are none).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Gold examples of the class.
    pub support: usize,
}

impl ClassScores {
    fn from_counts(tp: usize, fp: usize, fn_: usize) -> Self {
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            f1,
            support: tp + fn_,
        }
    }
}

/// Mean F1 of one argument (`tool.argument`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ArgumentScore {
    /// Mean F1 over the scored occurrences; a missing or extra argument scores 0.
    pub f1: f64,
    /// Occurrences scored: matched call pairs where either call has the argument.
    pub count: usize,
}

/// Gold label (rows) against predicted label (columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// Tools, then `none` (no tool) and `multi` (two or more tools).
    pub labels: Vec<String>,
    /// `counts[gold][predicted]` examples, indexed like `labels`.
    pub counts: Vec<Vec<usize>>,
}

/// A misrouted example, for reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Miss {
    /// The example's query.
    pub query: String,
    /// Gold tool set (the first acceptable one), sorted.
    pub expected: Vec<String>,
    /// Predicted tool set, sorted.
    pub predicted: Vec<String>,
}

/// How well requests that no tool can serve were recognised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UnsupportedScores {
    /// Gold unsupported requests.
    pub support: usize,
    /// Of those, answered with no call and the `unsupported` flag.
    pub flagged: usize,
    /// `flagged / support`.
    pub recall: f64,
    /// Requests flagged unsupported that are not.
    pub false_flags: usize,
}

/// Everything `toolforge eval` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Name of the router evaluated.
    pub router: String,
    /// Examples evaluated.
    pub examples: usize,
    /// Share of examples whose predicted tool set is acceptable.
    pub tool_set_accuracy: f64,
    /// Mean over gold classes (a class is the list of acceptable tool sets) of
    /// their accuracy: the headline when classes are unbalanced.
    #[serde(default)]
    pub balanced_accuracy: f64,
    /// Accuracy and count per gold class.
    #[serde(default)]
    pub per_class: BTreeMap<String, (f64, usize)>,
    /// Accuracy and count per example `source`.
    #[serde(default)]
    pub per_source: BTreeMap<String, (f64, usize)>,
    /// How requests no tool can serve were recognised.
    #[serde(default)]
    pub unsupported: UnsupportedScores,
    /// Decisions with two or more calls.
    #[serde(default)]
    pub multi_call_decisions: usize,
    /// Mean of the per-tool F1 over tools with gold examples.
    pub macro_f1: f64,
    /// Precision and recall of each tool, by tool name.
    pub per_tool: BTreeMap<String, ClassScores>,
    /// Precision and recall of answering with no tool.
    pub no_tool: ClassScores,
    /// Mean argument F1 over every scored argument occurrence.
    pub argument_f1: f64,
    /// Argument F1 per `tool.argument`.
    pub per_argument: BTreeMap<String, ArgumentScore>,
    /// `invalid_calls / predicted_calls`.
    pub invalid_call_rate: f64,
    /// Predicted calls that fail their tool's schema or name an unknown tool.
    pub invalid_calls: usize,
    /// Predicted calls over all examples.
    pub predicted_calls: usize,
    /// Examples on which the router returned an error.
    pub router_errors: usize,
    /// Examples the router abstained on (counted as "no tool" above).
    #[serde(default)]
    pub abstentions: usize,
    /// Median routing latency, in microseconds.
    pub latency_p50_us: u64,
    /// 99th-percentile routing latency, in microseconds.
    pub latency_p99_us: u64,
    /// Mean routing latency, in microseconds.
    pub latency_mean_us: f64,
    /// Gold against predicted labels.
    pub confusion: Confusion,
    /// Up to 50 misrouted examples.
    pub misses: Vec<Miss>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Routes every example through `router`, timing each, with a progress bar when `show_progress`.
pub async fn predict(
    router: &dyn Router,
    context: &RouteContext,
    examples: &[Example],
    show_progress: bool,
) -> Vec<Prediction> {
    let bar = if show_progress {
        let bar = ProgressBar::new(examples.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("routing with {}", router.name()));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut predictions = Vec::with_capacity(examples.len());
    for example in examples {
        let start = Instant::now();
        let result = router.route(&example.query, context).await;
        let latency_us = start.elapsed().as_micros() as u64;
        predictions.push(Prediction::from_result(result, latency_us));
        bar.inc(1);
    }
    bar.finish_and_clear();
    predictions
}

fn label(tools: &[String]) -> String {
    match tools.len() {
        0 => "none".into(),
        1 => tools[0].clone(),
        _ => "multi".into(),
    }
}

fn tool_set(calls: &[ToolCall]) -> Vec<String> {
    let mut names: Vec<String> = calls.iter().map(|c| c.tool.clone()).collect();
    names.sort();
    names.dedup();
    names
}

/// The name of a gold class: its acceptable sets, `+` within a set, `|` between.
fn class_name(sets: &[Vec<String>]) -> String {
    sets.iter()
        .map(|s| {
            if s.is_empty() {
                "none".into()
            } else {
                s.join("+")
            }
        })
        .collect::<Vec<String>>()
        .join("|")
}

/// Accuracy and count of each group of right/wrong outcomes.
fn accuracies(groups: BTreeMap<String, (usize, usize)>) -> BTreeMap<String, (f64, usize)> {
    groups
        .into_iter()
        .map(|(k, (right, n))| (k, (ratio(right, n), n)))
        .collect()
}

/// Whether `prediction` calls an acceptable set of tools for `example` (the
/// per-example verdict behind tool-set accuracy).
pub fn tool_set_right(example: &Example, prediction: &Prediction) -> bool {
    example
        .accepted_sets()
        .contains(&tool_set(&prediction.calls))
}

/// Scores `predictions` (one per example, same order) against the gold calls.
pub fn evaluate(
    router: &str,
    examples: &[Example],
    predictions: &[Prediction],
    tools: &[ToolSpec],
) -> EvalReport {
    let mut labels: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
    labels.push("none".into());
    labels.push("multi".into());
    let index: HashMap<String, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), i))
        .collect();
    let mut confusion = vec![vec![0usize; labels.len()]; labels.len()];
    let mut counts: BTreeMap<String, (usize, usize, usize)> =
        tools.iter().map(|t| (t.name.clone(), (0, 0, 0))).collect();
    let (mut none_tp, mut none_fp, mut none_fn) = (0, 0, 0);
    let mut exact = 0;
    let mut argument_scores: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut invalid_calls = 0;
    let mut predicted_calls = 0;
    let mut router_errors = 0;
    let mut abstentions = 0;
    let mut misses = Vec::new();
    let mut latencies: Vec<u64> = Vec::with_capacity(predictions.len());
    let mut per_class: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut per_source: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut unsupported = UnsupportedScores::default();
    let mut multi_call_decisions = 0;

    for (example, prediction) in examples.iter().zip(predictions) {
        latencies.push(prediction.latency_us);
        router_errors += usize::from(prediction.error.is_some());
        abstentions += usize::from(prediction.abstained);
        multi_call_decisions += usize::from(prediction.calls.len() > 1);
        let accepted = example.accepted_sets();
        let predicted = tool_set(&prediction.calls);
        let right = accepted.contains(&predicted);
        let gold = if right {
            predicted.clone()
        } else {
            accepted.first().cloned().unwrap_or_default()
        };
        for (groups, key) in [
            (&mut per_class, class_name(&accepted)),
            (&mut per_source, example.source.clone()),
        ] {
            let entry = groups.entry(key).or_default();
            entry.0 += usize::from(right);
            entry.1 += 1;
        }
        let flagged = prediction.unsupported && prediction.calls.is_empty();
        if example.unsupported {
            unsupported.support += 1;
            unsupported.flagged += usize::from(flagged);
        } else {
            unsupported.false_flags += usize::from(flagged);
        }
        if right {
            exact += 1;
        } else if misses.len() < 50 {
            misses.push(Miss {
                query: example.query.clone(),
                expected: gold.clone(),
                predicted: predicted.clone(),
            });
        }
        let row = index.get(&label(&gold)).copied();
        let col = index.get(&label(&predicted)).copied();
        if let (Some(r), Some(c)) = (row, col) {
            confusion[r][c] += 1;
        }
        for (tool, (tp, fp, fn_)) in counts.iter_mut() {
            match (gold.contains(tool), predicted.contains(tool)) {
                (true, true) => *tp += 1,
                (false, true) => *fp += 1,
                (true, false) => *fn_ += 1,
                (false, false) => {}
            }
        }
        match (gold.is_empty(), predicted.is_empty()) {
            (true, true) => none_tp += 1,
            (false, true) => none_fp += 1,
            (true, false) => none_fn += 1,
            (false, false) => {}
        }
        for call in &prediction.calls {
            predicted_calls += 1;
            let valid = tools
                .iter()
                .find(|t| t.name == call.tool)
                .is_some_and(|spec| {
                    spec.validate(&Value::Object(call.arguments.clone()))
                        .is_ok()
                });
            invalid_calls += usize::from(!valid);
        }
        let mut used = vec![false; prediction.calls.len()];
        for gold_call in &example.calls {
            let Some(slot) = prediction
                .calls
                .iter()
                .enumerate()
                .position(|(i, c)| !used[i] && c.tool == gold_call.tool)
            else {
                continue;
            };
            used[slot] = true;
            let predicted_call = &prediction.calls[slot];
            let mut keys: Vec<&String> = gold_call
                .arguments
                .keys()
                .chain(predicted_call.arguments.keys())
                .collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let score = match (
                    gold_call.arguments.get(key),
                    predicted_call.arguments.get(key),
                ) {
                    (Some(g), Some(p)) => value_f1(g, p),
                    _ => 0.0,
                };
                let entry = argument_scores
                    .entry(format!("{}.{}", gold_call.tool, key))
                    .or_insert((0.0, 0));
                entry.0 += score;
                entry.1 += 1;
            }
        }
    }

    let per_tool: BTreeMap<String, ClassScores> = counts
        .into_iter()
        .map(|(tool, (tp, fp, fn_))| (tool, ClassScores::from_counts(tp, fp, fn_)))
        .collect();
    let scored: Vec<&ClassScores> = per_tool
        .values()
        .filter(|s| s.support > 0 || s.precision > 0.0)
        .collect();
    let macro_f1 = if scored.is_empty() {
        0.0
    } else {
        scored.iter().map(|s| s.f1).sum::<f64>() / scored.len() as f64
    };
    let (sum, n) = argument_scores
        .values()
        .fold((0.0, 0), |(s, n), (v, c)| (s + v, n + c));
    latencies.sort_unstable();
    unsupported.recall = ratio(unsupported.flagged, unsupported.support);
    let per_class = accuracies(per_class);
    let balanced_accuracy = if per_class.is_empty() {
        0.0
    } else {
        per_class.values().map(|(a, _)| a).sum::<f64>() / per_class.len() as f64
    };
    EvalReport {
        router: router.to_string(),
        examples: examples.len(),
        tool_set_accuracy: ratio(exact, examples.len()),
        balanced_accuracy,
        per_class,
        per_source: accuracies(per_source),
        unsupported,
        multi_call_decisions,
        macro_f1,
        per_tool,
        no_tool: ClassScores::from_counts(none_tp, none_fp, none_fn),
        argument_f1: if n == 0 { 0.0 } else { sum / n as f64 },
        per_argument: argument_scores
            .into_iter()
            .map(|(k, (s, c))| {
                (
                    k,
                    ArgumentScore {
                        f1: s / c as f64,
                        count: c,
                    },
                )
            })
            .collect(),
        invalid_call_rate: ratio(invalid_calls, predicted_calls),
        invalid_calls,
        predicted_calls,
        router_errors,
        abstentions,
        latency_p50_us: percentile(&latencies, 0.50),
        latency_p99_us: percentile(&latencies, 0.99),
        latency_mean_us: if latencies.is_empty() {
            0.0
        } else {
            latencies.iter().sum::<u64>() as f64 / latencies.len() as f64
        },
        confusion: Confusion {
            labels,
            counts: confusion,
        },
        misses,
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Tokens for argument F1: lowercase alphanumeric runs (a decimal point inside a
/// number stays), and every other visible symbol on its own (`%`, `+`, `^`, ...).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let decimal_point = c == '.'
            && !current.is_empty()
            && current.chars().all(|d| d.is_ascii_digit())
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c.is_alphanumeric() || decimal_point {
            current.extend(c.to_lowercase());
            continue;
        }
        if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if !c.is_whitespace()
            && !matches!(
                c,
                '"' | '\'' | ',' | '?' | '!' | '.' | '“' | '”' | '‘' | '’'
            )
        {
            out.push(c.to_string());
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Token-level F1 of two strings (1.0 when both are empty).
pub fn token_f1(gold: &str, predicted: &str) -> f64 {
    let gold = tokens(gold);
    let predicted = tokens(predicted);
    if gold.is_empty() && predicted.is_empty() {
        return 1.0;
    }
    let mut remaining: HashMap<&str, usize> = HashMap::new();
    for t in &gold {
        *remaining.entry(t.as_str()).or_default() += 1;
    }
    let mut overlap = 0;
    for t in &predicted {
        if let Some(n) = remaining.get_mut(t.as_str()).filter(|n| **n > 0) {
            *n -= 1;
            overlap += 1;
        }
    }
    if overlap == 0 {
        return 0.0;
    }
    let precision = overlap as f64 / predicted.len() as f64;
    let recall = overlap as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// F1 of one argument value: token F1 for strings, exact for numbers and the rest.
pub fn value_f1(gold: &Value, predicted: &Value) -> f64 {
    match (gold, predicted) {
        (Value::String(g), Value::String(p)) => token_f1(g, p),
        (Value::Number(g), Value::Number(p)) => {
            let (g, p) = (
                g.as_f64().unwrap_or(f64::NAN),
                p.as_f64().unwrap_or(f64::NAN),
            );
            f64::from(u8::from((g - p).abs() <= 1e-9 * g.abs().max(1.0)))
        }
        (g, p) => f64::from(u8::from(g == p)),
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "router: {}   examples: {}", self.router, self.examples)?;
        writeln!(
            f,
            "tool-set accuracy   {:.1}%",
            100.0 * self.tool_set_accuracy
        )?;
        writeln!(f, "balanced accuracy   {:.3}", self.balanced_accuracy)?;
        writeln!(f, "macro-F1            {:.3}", self.macro_f1)?;
        writeln!(
            f,
            "no tool             precision {:.3}  recall {:.3}  (support {})",
            self.no_tool.precision, self.no_tool.recall, self.no_tool.support
        )?;
        writeln!(
            f,
            "unsupported         {} of {} flagged ({:.3}), {} flagged wrongly",
            self.unsupported.flagged,
            self.unsupported.support,
            self.unsupported.recall,
            self.unsupported.false_flags
        )?;
        writeln!(
            f,
            "several calls       {} decisions ({:.1}%)",
            self.multi_call_decisions,
            100.0 * ratio(self.multi_call_decisions, self.examples)
        )?;
        if self.per_argument.is_empty() {
            writeln!(f, "argument F1         n/a (no labeled arguments)")?;
        } else {
            writeln!(f, "argument F1         {:.3}", self.argument_f1)?;
        }
        writeln!(
            f,
            "invalid calls       {:.2}% ({} of {})",
            100.0 * self.invalid_call_rate,
            self.invalid_calls,
            self.predicted_calls
        )?;
        writeln!(f, "router errors       {}", self.router_errors)?;
        writeln!(
            f,
            "abstentions         {} (scored as no tool)",
            self.abstentions
        )?;
        writeln!(
            f,
            "latency             p50 {} µs  p99 {} µs  mean {:.0} µs",
            self.latency_p50_us, self.latency_p99_us, self.latency_mean_us
        )?;
        writeln!(
            f,
            "\n{:<18} {:>9} {:>7} {:>6} {:>8}",
            "tool", "precision", "recall", "F1", "support"
        )?;
        for (tool, s) in &self.per_tool {
            writeln!(
                f,
                "{tool:<18} {:>9.3} {:>7.3} {:>6.3} {:>8}",
                s.precision, s.recall, s.f1, s.support
            )?;
        }
        writeln!(f, "\n{:<40} {:>8} {:>6}", "gold class", "accuracy", "count")?;
        for (class, (accuracy, n)) in &self.per_class {
            writeln!(f, "{class:<40} {accuracy:>8.3} {n:>6}")?;
        }
        if self.per_source.len() > 1 {
            writeln!(f, "\n{:<40} {:>8} {:>6}", "source", "accuracy", "count")?;
            for (source, (accuracy, n)) in &self.per_source {
                writeln!(f, "{source:<40} {accuracy:>8.3} {n:>6}")?;
            }
        }
        writeln!(f, "\n{:<32} {:>6} {:>6}", "argument", "F1", "count")?;
        for (name, s) in &self.per_argument {
            writeln!(f, "{name:<32} {:>6.3} {:>6}", s.f1, s.count)?;
        }
        writeln!(f, "\nconfusion (rows: expected, columns: predicted)")?;
        let short: Vec<String> = self
            .confusion
            .labels
            .iter()
            .map(|l| l.chars().take(6).collect())
            .collect();
        write!(f, "{:<16}", "")?;
        for s in &short {
            write!(f, "{s:>7}")?;
        }
        writeln!(f)?;
        for (label, row) in self.confusion.labels.iter().zip(&self.confusion.counts) {
            write!(f, "{label:<16}")?;
            for n in row {
                write!(f, "{n:>7}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str, required: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {required: {"type": "string"}},
                               "required": [required], "additionalProperties": false}),
        }
    }

    fn example(query: &str, calls: Vec<ToolCall>) -> Example {
        Example {
            query: query.into(),
            calls,
            source: "test".into(),
            ..Example::default()
        }
    }

    fn prediction(calls: Vec<ToolCall>, latency_us: u64) -> Prediction {
        Prediction {
            calls,
            error: None,
            abstained: false,
            unsupported: false,
            latency_us,
        }
    }

    #[test]
    fn accept_lines_balanced_accuracy_and_unsupported() {
        let tools = vec![spec("web_search", "query"), spec("wikipedia", "topic")];
        let accept = |sets: &[&[&str]], source: &str, unsupported: bool| Example {
            query: "q".into(),
            accept: sets
                .iter()
                .map(|s| s.iter().map(|t| t.to_string()).collect())
                .collect(),
            unsupported,
            source: source.into(),
            ..Example::default()
        };
        let search = ToolCall::new("web_search", json!({"query": "x"}));
        let wiki = ToolCall::new("wikipedia", json!({"topic": "x"}));
        let examples = vec![
            accept(&[&["web_search"], &["wikipedia"]], "facts", false),
            accept(&[&["web_search"], &["wikipedia"]], "facts", false),
            accept(&[&[]], "alarm", true),
            accept(&[&[]], "alarm", true),
            accept(&[&[]], "chat", false),
            accept(&[&[]], "chat", false),
        ];
        let mut flagged = prediction(vec![], 1);
        flagged.unsupported = true;
        let predictions = vec![
            prediction(vec![wiki.clone()], 1),
            prediction(vec![search.clone(), search], 1),
            flagged.clone(),
            prediction(vec![wiki], 1),
            flagged,
            prediction(vec![], 1),
        ];
        let r = evaluate("test", &examples, &predictions, &tools);
        // Facts: 2 of 2 right; none: 3 of 4 right.
        assert_eq!(r.tool_set_accuracy, 5.0 / 6.0);
        assert_eq!(r.balanced_accuracy, (1.0 + 0.75) / 2.0);
        assert_eq!(r.per_class["web_search|wikipedia"], (1.0, 2));
        assert_eq!(r.per_source["alarm"], (0.5, 2));
        assert_eq!(r.unsupported.support, 2);
        assert_eq!(r.unsupported.flagged, 1);
        assert_eq!(r.unsupported.false_flags, 1);
        assert_eq!(r.multi_call_decisions, 1);
    }

    #[test]
    fn token_f1_ignores_case_spacing_and_quotes() {
        assert_eq!(token_f1("15% of 2850", "15 % of 2850"), 1.0);
        assert_eq!(token_f1("New York", "new york"), 1.0);
        assert!(
            (token_f1("latest price of bitcoin", "bitcoin price") - 2.0 * 0.5 * 1.0 / 1.5).abs()
                < 1e-9
        );
        assert_eq!(tokens("26.2 miles."), vec!["26.2", "miles"]);
        assert_eq!(value_f1(&json!(26.2), &json!(26.2)), 1.0);
        assert_eq!(value_f1(&json!(26.2), &json!(26)), 0.0);
    }

    #[test]
    fn scores_a_small_run() {
        let tools = vec![
            spec("weather", "location"),
            spec("calculator", "expression"),
        ];
        let w = |loc: &str| ToolCall::new("weather", json!({"location": loc}));
        let c = |e: &str| ToolCall::new("calculator", json!({"expression": e}));
        let examples = vec![
            example("weather in tokyo", vec![w("Tokyo")]),
            example("2+2", vec![c("2+2")]),
            example("hi", vec![]),
            example("rain in new york and 3*3", vec![w("New York"), c("3*3")]),
        ];
        let predictions = vec![
            prediction(vec![w("Tokyo")], 10),
            prediction(vec![w("2+2")], 20),
            prediction(vec![], 30),
            prediction(
                vec![
                    w("York"),
                    c("3*3"),
                    ToolCall::new("weather", json!({"place": 1})),
                ],
                40,
            ),
        ];
        let r = evaluate("test", &examples, &predictions, &tools);
        assert_eq!(r.tool_set_accuracy, 0.75);
        assert_eq!(r.no_tool.precision, 1.0);
        assert_eq!(r.no_tool.recall, 1.0);
        assert_eq!(r.per_tool["calculator"].recall, 0.5);
        assert_eq!(r.per_tool["weather"].precision, 2.0 / 3.0);
        assert_eq!(r.invalid_calls, 1);
        assert_eq!(r.predicted_calls, 5);
        // Tokyo 1.0, New York vs York 2/3, 3*3 1.0.
        assert!((r.argument_f1 - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-9);
        assert_eq!(r.latency_p50_us, 30);
        let calc = r
            .confusion
            .labels
            .iter()
            .position(|l| l == "calculator")
            .unwrap();
        let weather = r
            .confusion
            .labels
            .iter()
            .position(|l| l == "weather")
            .unwrap();
        assert_eq!(r.confusion.counts[calc][weather], 1);
        assert_eq!(r.misses.len(), 1);
        assert!(r.to_string().contains("tool-set accuracy   75.0%"));
        assert_eq!(r.abstentions, 0);
    }

    #[test]
    fn abstentions_are_counted_and_scored_as_no_tool() {
        let tools = vec![spec("weather", "location")];
        let examples = vec![
            example("hi", vec![]),
            example(
                "weather in oslo",
                vec![ToolCall::new("weather", json!({"location": "Oslo"}))],
            ),
        ];
        let predictions = vec![
            Prediction::from_result(Ok(None), 5),
            Prediction::from_result(Ok(None), 5),
        ];
        let r = evaluate("test", &examples, &predictions, &tools);
        assert_eq!(r.abstentions, 2);
        assert_eq!(r.tool_set_accuracy, 0.5);
        assert_eq!(r.no_tool.precision, 0.5);
        assert!(r.to_string().contains("abstentions         2"));
        let failed =
            Prediction::from_result(Err(toolforge_core::RouteError::Failed("boom".into())), 5);
        assert_eq!(failed.error.as_deref(), Some("routing failed: boom"));
        assert!(!failed.abstained);
    }
}
