//! The regex router: ToolForge's heuristic baseline and fallback stage. Weighted
//! rules from a TOML file (embedded defaults, extensible with user rules for custom
//! tools) are compiled once into a `RegexSet`; the strongest firing rule picks the
//! tool, named-capture patterns fill its arguments, and multi-tool queries are split
//! on conjunctions when every part matches a tool.
//!
//! ```
//! use toolforge_core::{RouteContext, ToolSpec};
//! use toolforge_routers::RegexRouter;
//! use serde_json::json;
//!
//! let router = RegexRouter::builtin();
//! let weather = ToolSpec {
//!     name: "weather".into(),
//!     description: "Weather for a place.".into(),
//!     parameters: json!({"type": "object", "required": ["location"],
//!                        "properties": {"location": {"type": "string"}, "date": {"type": "string"}}}),
//! };
//! let context = RouteContext::new(vec![weather]);
//! let decision = router.route_sync("is it raining in paris tomorrow?", &context).unwrap();
//! assert_eq!(decision.calls[0].tool, "weather");
//! assert_eq!(decision.calls[0].arguments["location"], "Paris");
//! assert_eq!(decision.calls[0].arguments["date"], "tomorrow");
//! ```
//!
//! Rule file format (see `routers/rules/common.toml` and each built-in tool's
//! `tools/knowledge/<tool>/rules.toml` for the default set):
//!
//! ```toml
//! [vars]
//! ticker = '''[a-z]{1,5}'''
//!
//! [[tools]]
//! name = "stock_quote"
//! required = ["symbol"]
//! extract = ['''\bquote (?:for )?(?P<symbol>{{ticker}})\b''']
//! args = { symbol = { transform = "upper" } }
//!
//! [[tools.rules]]
//! id = "quote"
//! weight = 0.9
//! patterns = ['''\bstock quote\b''', '''\bquote for [a-z]{1,5}\b''']
//! unless = ['''\bfamous quote''']
//! ```
//!
//! Patterns are case-insensitive (`(?-i)` turns that off). A rule fires when one of
//! its `patterns` matches and none of its `unless` patterns does; extraction
//! patterns' named groups are argument names, cleaned by the argument's
//! `transform` (`keep`, `lower`, `upper`, `title`, `number`, `language`, `date`,
//! `unit`, `timezone`, `expression`) and dropped when they match `reject`.

mod compiled;
pub(crate) mod rules;
pub(crate) mod text;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use toolforge_core::{
    schema_types, RouteContext, RouteDecision, RouteError, Router, ToolCall, ToolSpec,
};

use compiled::{Compiled, Owner, Scores};
pub use rules::RuleError;
use rules::RuleFile;
use text::{normalize, number_value, parse_number, quoted_spans};

/// The common rules (variables and direct, no-tool rules), embedded in the
/// binary; each built-in tool's rules live with the tool
/// (`toolforge_tools::knowledge`) and are merged after these.
pub const COMMON_RULES: &str = include_str!("../rules/common.toml");

/// The default rule file: the common rules, then each built-in tool's rules in
/// the order of `toolforge_tools::knowledge::BUILTIN`.
pub(crate) fn default_rules() -> Result<RuleFile, RuleError> {
    let mut file = RuleFile::parse(COMMON_RULES)?;
    for knowledge in toolforge_tools::knowledge::BUILTIN {
        file.merge(RuleFile::parse(knowledge.rules)?);
    }
    Ok(file)
}

/// Name reported in decisions.
const NAME: &str = "regex";
/// A part of a split query counts as matched from this rule weight on.
const MIN_PIECE_WEIGHT: f64 = 0.5;
/// Direct answers win over a tool only with this lead.
const DIRECT_MARGIN: f64 = 0.05;
/// A weaker tool is tried when the winner's arguments cannot be built, if it is
/// at most this far behind.
const FALLBACK_SPAN: f64 = 0.3;
/// A weaker tool is only tried from this weight on.
const MIN_FALLBACK_WEIGHT: f64 = 0.8;
/// More candidate parts than this and the query is not split.
const MAX_PIECES: usize = 8;

/// The heuristic routing stage (`"regex"`). Cheap to clone: the compiled rules are shared.
#[derive(Debug, Clone)]
pub struct RegexRouter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    compiled: Compiled,
    /// `None` only in the never-expected fallback router, which then never splits.
    splitter: Option<Splitter>,
}

/// Fixed patterns that find where a query may be split into sub-requests.
#[derive(Debug)]
struct Splitter {
    separator: Regex,
    ends_number: Regex,
    starts_number: Regex,
    starts_math: Regex,
    two_operands: Regex,
}

impl Splitter {
    fn new() -> Result<Self, RuleError> {
        let build = |pattern: &str| {
            RegexBuilder::new(pattern)
                .case_insensitive(true)
                .build()
                .map_err(|e| RuleError::Pattern {
                    location: "query splitter".into(),
                    message: e.to_string(),
                })
        };
        Ok(Self {
            separator: build(
                r"\s*;\s*|\s*,\s+(?:(?:and|then|also|plus)(?:\s+(?:then|also))?\s+)?|\s+(?:and|then|also|plus|as well as|after that)(?:\s+(?:then|also))?,?\s+|[?!.]+\s+(?:(?:and|also|then|plus),?\s+)?",
            )?,
            ends_number: build(r"(?:\d|%|\))\s*$")?,
            starts_number: build(r"^\s*[-+(]*\s*[$€£]?\.?\d")?,
            starts_math: build(
                r"^\s*(?:the\s+)?(?:sqrt|square|cube|half|twice|double|triple|pi|e|log|ln|sin|cos|tan|another|one|two|three|four|five|six|seven|eight|nine|ten)\b|^\s*\(",
            )?,
            two_operands: build(
                r"\b(?:sum|product|difference|average|mean|median|gcd|gcf|hcf|lcm|ratio|quotient|between|from|min|max|minimum|maximum|multiply|add|subtract|divide)\b(?:\s+of)?[-\d.,\s$€£%]*$",
            )?,
        })
    }

    /// Candidate parts of `text` (byte ranges), cut at conjunctions that are not
    /// inside quotes or math ("sum of 3 and 4", "3 plus 4").
    fn pieces(&self, text: &str) -> Vec<Range<usize>> {
        let quotes = quoted_spans(text);
        let mut pieces = Vec::new();
        let mut start = 0;
        for m in self.separator.find_iter(text) {
            if m.start() == 0 || m.end() >= text.len() {
                continue;
            }
            if quotes.iter().any(|&(a, b)| m.start() >= a && m.start() < b) {
                continue;
            }
            let (left, right) = (&text[..m.start()], &text[m.end()..]);
            let left_number = self.ends_number.is_match(left);
            let right_number = self.starts_number.is_match(right);
            let plus = m.as_str().to_ascii_lowercase().contains("plus");
            if plus && (right_number || (left_number && self.starts_math.is_match(right))) {
                continue;
            }
            if left_number && right_number && self.two_operands.is_match(left) {
                continue;
            }
            if m.start() > start {
                pieces.push(start..m.start());
            }
            start = m.end();
            if pieces.len() >= MAX_PIECES {
                return std::iter::once(0..text.len()).collect();
            }
        }
        if start < text.len() {
            pieces.push(start..text.len());
        }
        if pieces.is_empty() {
            pieces.push(0..text.len());
        }
        pieces
    }
}

/// What one part of a query asks for.
enum Choice {
    Direct(f64),
    Calls {
        tool: usize,
        maps: Vec<Map<String, Value>>,
        confidence: f64,
    },
    Nothing,
}

/// Clamps to [0, 1] and rounds to 4 decimals (stable, readable logs).
fn round(confidence: f64) -> f64 {
    (confidence.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
}

/// Confidence of a winning rule: its weight, lowered when a rival is close
/// (down to 60% of the weight on a tie; no penalty from a 0.25 lead on).
fn confidence(weight: f64, runner_up: f64) -> f64 {
    let margin = (weight - runner_up).max(0.0);
    let closeness = (1.0 - margin / 0.25).clamp(0.0, 1.0);
    (weight * (1.0 - 0.4 * closeness)).clamp(0.0, 1.0)
}

impl Default for RegexRouter {
    fn default() -> Self {
        Self::builtin()
    }
}

impl RegexRouter {
    /// The router with the embedded default rules ([`COMMON_RULES`] and each
    /// built-in tool's), compiled
    /// once per process and shared. Should the embedded rules ever fail to compile
    /// (tests guard against it), the error is logged and the router always abstains.
    pub fn builtin() -> Self {
        Self::try_builtin().unwrap_or_else(|e| {
            tracing::error!("embedded regex rules are invalid: {e}");
            Self {
                inner: Arc::new(Inner {
                    compiled: Compiled::empty(),
                    splitter: None,
                }),
            }
        })
    }

    /// Like [`RegexRouter::builtin`], reporting a compile error instead of logging it.
    pub fn try_builtin() -> Result<Self, RuleError> {
        static BUILTIN: OnceLock<Result<Arc<Inner>, RuleError>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Inner::from_file(&default_rules()?).map(Arc::new))
            .clone()
            .map(|inner| Self { inner })
    }

    /// A router with exactly the rules of `toml` (no defaults).
    pub fn from_toml_str(toml: &str) -> Result<Self, RuleError> {
        let file = RuleFile::parse(toml)?;
        Ok(Self {
            inner: Arc::new(Inner::from_file(&file)?),
        })
    }

    /// The default rules plus user rules from `toml`: new tools are added, rules for
    /// an existing tool are appended to its own, `[vars]` of the same name replace
    /// the default ones.
    pub fn with_extra_rules(toml: &str) -> Result<Self, RuleError> {
        let mut file = default_rules()?;
        file.merge(RuleFile::parse(toml)?);
        Ok(Self {
            inner: Arc::new(Inner::from_file(&file)?),
        })
    }

    /// Names of the tools the rules know, in rule-file order.
    pub fn tool_names(&self) -> Vec<&str> {
        self.inner
            .compiled
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect()
    }

    /// Routes synchronously (the work is pure CPU): `Some` decision, or `None` to abstain.
    pub fn route_sync(&self, query: &str, context: &RouteContext) -> Option<RouteDecision> {
        self.inner.route(query, context)
    }
}

impl Inner {
    fn from_file(file: &RuleFile) -> Result<Self, RuleError> {
        Ok(Self {
            compiled: Compiled::build(file)?,
            splitter: Some(Splitter::new()?),
        })
    }

    fn route(&self, query: &str, context: &RouteContext) -> Option<RouteDecision> {
        let text = normalize(query);
        if text.is_empty() {
            return None;
        }
        let allowed: Vec<bool> = self
            .compiled
            .tools
            .iter()
            .map(|t| context.tool(&t.name).is_some())
            .collect();
        let whole = self.compiled.score(&text, &allowed);
        let best = whole.best()?;
        let no_split = match best.owner {
            Owner::Tool(t) => self.compiled.tools[t].no_split,
            Owner::Direct => false,
        };
        let pieces = if no_split {
            vec![(0..text.len(), whole)]
        } else {
            self.segment(&text, &allowed, whole)
        };

        let mut choices: Vec<Choice> = pieces
            .iter()
            .map(|(range, scores)| self.choose(&text[range.clone()], scores, context))
            .collect();
        self.inherit(&mut choices);

        let mut calls: Vec<ToolCall> = Vec::new();
        let mut confidences = Vec::new();
        let mut tool_pieces = 0;
        let mut any_direct = false;
        let mut dropped = false;
        for choice in &choices {
            match choice {
                Choice::Direct(c) => {
                    any_direct = true;
                    confidences.push(*c);
                }
                Choice::Calls {
                    tool,
                    maps,
                    confidence,
                } => {
                    confidences.push(*confidence);
                    tool_pieces += 1;
                    let name = &self.compiled.tools[*tool].name;
                    for map in maps {
                        match conform(context.tool(name), map.clone()) {
                            Some(arguments) => {
                                let call = ToolCall {
                                    tool: name.clone(),
                                    arguments,
                                };
                                if !calls.contains(&call) {
                                    calls.push(call);
                                }
                            }
                            None => dropped = true,
                        }
                    }
                }
                Choice::Nothing => dropped = true,
            }
        }
        if calls.is_empty() && (!any_direct || dropped) {
            return None;
        }
        let mut confidence = confidences.iter().copied().fold(1.0_f64, f64::min);
        if tool_pieces > 1 {
            confidence *= 0.95_f64.powi(tool_pieces - 1);
        }
        if dropped {
            confidence *= 0.8;
        }
        Some(RouteDecision {
            calls,
            router: NAME.to_string(),
            confidence: Some(round(confidence)),
            unsupported: false,
        })
    }

    /// Splits `text` into sub-requests: candidate parts that match no rule are
    /// merged back into their neighbour until every part matches (or one is left).
    fn segment(&self, text: &str, allowed: &[bool], whole: Scores) -> Vec<(Range<usize>, Scores)> {
        let Some(splitter) = &self.splitter else {
            return vec![(0..text.len(), whole)];
        };
        let ranges = splitter.pieces(text);
        if ranges.len() <= 1 {
            return vec![(0..text.len(), whole)];
        }
        let score = |r: &Range<usize>| self.compiled.score(&text[r.clone()], allowed);
        let mut pieces: Vec<(Range<usize>, Scores)> =
            ranges.into_iter().map(|r| (r.clone(), score(&r))).collect();
        let matched = |s: &Scores| s.best().is_some_and(|h| h.weight >= MIN_PIECE_WEIGHT);
        while pieces.len() > 1 {
            let Some(i) = pieces.iter().position(|(_, s)| !matched(s)) else {
                break;
            };
            let j = if i > 0 { i - 1 } else { 1 };
            let (a, b) = (i.min(j), i.max(j));
            let range = pieces[a].0.start..pieces[b].0.end;
            let scores = score(&range);
            pieces.splice(a..=b, [(range, scores)]);
        }
        if pieces.len() == 1 {
            return vec![(0..text.len(), whole)];
        }
        pieces
    }

    /// Decides one part: a direct answer, a tool with its arguments, or nothing.
    fn choose(&self, text: &str, scores: &Scores, context: &RouteContext) -> Choice {
        let best_tool = scores.best_tool();
        let direct = scores.direct();
        if let Some(d) = direct {
            if best_tool.is_none_or(|t| d.weight - t.weight >= DIRECT_MARGIN - 1e-9) {
                return Choice::Direct(confidence(d.weight, scores.runner_up(Owner::Direct)));
            }
        }
        let Some(top) = best_tool else {
            return Choice::Nothing;
        };
        for hit in &scores.hits {
            let Owner::Tool(t) = hit.owner else {
                continue;
            };
            if hit.owner != top.owner
                && (hit.weight < top.weight - FALLBACK_SPAN || hit.weight < MIN_FALLBACK_WEIGHT)
            {
                break;
            }
            let tool = &self.compiled.tools[t];
            let maps = self.compiled.extract(t, hit.rule, text);
            let required = required_args(context.tool(&tool.name), &tool.required);
            let complete = maps.iter().all(|map| {
                required
                    .iter()
                    .all(|r| map.contains_key(r) || tool.inherit.contains(r))
            });
            if complete {
                let mut c = confidence(hit.weight, scores.runner_up(hit.owner));
                if hit.owner != top.owner {
                    c *= 0.8;
                }
                return Choice::Calls {
                    tool: t,
                    maps,
                    confidence: c,
                };
            }
        }
        match direct {
            Some(d) => Choice::Direct(confidence(d.weight, top.weight) * 0.8),
            None => Choice::Nothing,
        }
    }

    /// Fills missing inheritable arguments ("what time is it there") from the
    /// nearest other call that has them, earlier calls first.
    fn inherit(&self, choices: &mut [Choice]) {
        let n = choices.len();
        for i in 0..n {
            let Choice::Calls { tool, maps, .. } = &choices[i] else {
                continue;
            };
            let names = &self.compiled.tools[*tool].inherit;
            let missing: Vec<&String> = names
                .iter()
                .filter(|name| maps.iter().any(|m| !m.contains_key(name.as_str())))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let order = (0..i).rev().chain(i + 1..n);
            let mut fills: Vec<(String, Value)> = Vec::new();
            for name in missing {
                let found = order.clone().find_map(|j| match &choices[j] {
                    Choice::Calls { maps, .. } => maps.iter().find_map(|m| m.get(name.as_str())),
                    _ => None,
                });
                if let Some(value) = found {
                    fills.push((name.clone(), value.clone()));
                }
            }
            if let Choice::Calls { maps, .. } = &mut choices[i] {
                for map in maps.iter_mut() {
                    for (name, value) in &fills {
                        if !map.contains_key(name) {
                            map.insert(name.clone(), value.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Required arguments: the context schema's `required`, else the rule file's.
fn required_args(spec: Option<&ToolSpec>, fallback: &[String]) -> Vec<String> {
    spec.and_then(|s| s.parameters.get("required"))
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_else(|| fallback.to_vec())
}

/// Fits arguments to the tool's schema: unknown arguments are dropped, numbers
/// and strings converted where the schema asks for the other; `None` when the
/// result still fails validation.
fn conform(spec: Option<&ToolSpec>, mut map: Map<String, Value>) -> Option<Map<String, Value>> {
    let Some(spec) = spec else {
        return Some(map);
    };
    if let Some(props) = spec.parameters.get("properties").and_then(Value::as_object) {
        map.retain(|k, _| props.contains_key(k));
        for (key, value) in map.iter_mut() {
            let types = schema_types(props.get(key));
            let wants_number = types.iter().any(|t| t == "number" || t == "integer");
            let wants_string = types.iter().any(|t| t == "string");
            match value {
                Value::String(s) if wants_number && !wants_string => {
                    if let Some(n) = parse_number(s).and_then(number_value) {
                        *value = n;
                    }
                }
                Value::Number(n) if wants_string && !wants_number => {
                    *value = Value::String(n.to_string());
                }
                _ => {}
            }
        }
    }
    let arguments = Value::Object(map);
    spec.validate(&arguments).ok()?;
    match arguments {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[async_trait]
impl Router for RegexRouter {
    fn name(&self) -> &str {
        NAME
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        Ok(self.route_sync(query, context))
    }
}
