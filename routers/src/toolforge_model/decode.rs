//! From the network's tool probabilities and per-token tags to tool calls:
//! tools above the decision threshold, their argument spans cut from the original
//! query, one call per span of the fan-out argument ("weather in Paris and
//! London"), the regex router's argument clean-up (title case, numbers incl.
//! number words, language names, units), defaults, arguments inherited from a
//! neighbouring call, a span recovered for a required argument the tags missed,
//! and schema validation. A chosen tool that yields no valid
//! call makes the router abstain, so a chain falls back to the next stage.

use serde_json::{Map, Value};
use toolforge_core::{RouteContext, ToolCall, ToolSpec};

use super::features::Token;
use super::files::{parse_transform, ModelConfig};
use crate::regex_router::text::{apply, clean, number_value, parse_number, Transform};
use toolforge_core::schema_types;

/// How far below `O` a tag logit may be for [`Decoder::force_required`] to
/// still take its token as a missed argument.
/// On the validation split, 0 -> 6 took tool-set accuracy from 91.7% to 92.6%;
/// with the threshold-free model, 6 -> 20 kept it (92.9% -> 93.0%, argument F1
/// 0.918 -> 0.915) while the model alone abstained less (test no-tool precision
/// 0.924 -> 0.955): a tool head that is sure of a tool is rarely wrong about it.
const FORCED_SPAN_MARGIN: f32 = 20.0;

/// How far below `O` the `I-` logit of the next token may be for a forced span
/// to grow over it (the margin validated for starts before it was widened).
const FORCED_SPAN_GROWTH: f32 = 6.0;

/// Tag id of "outside any argument".
pub const TAG_O: usize = 0;

/// The `B-` tag of slot `s`.
pub fn tag_begin(slot: usize) -> usize {
    1 + 2 * slot
}

/// The `I-` tag of slot `s`.
pub fn tag_inside(slot: usize) -> usize {
    2 + 2 * slot
}

#[derive(Debug, Clone)]
struct SlotRule {
    tool: usize,
    argument: String,
    transform: Transform,
    default: Option<Value>,
}

#[derive(Debug, Clone)]
struct ToolRule {
    name: String,
    fan_out: Option<String>,
    inherit: Vec<String>,
    slots: Vec<usize>,
}

/// What the network said about one query.
#[derive(Debug, Clone)]
pub struct Scored<'a> {
    /// The query the tokens' byte offsets point into.
    pub query: &'a str,
    /// The tokens the model read, one tag row each.
    pub tokens: &'a [Token],
    /// The query had more tokens than the model reads.
    pub truncated: bool,
    /// Temperature-scaled probability of each tool.
    pub tool_probs: &'a [f32],
    /// `tokens.len() * tags` tag logits, row-major.
    pub tag_logits: &'a [f32],
}

/// A span of one slot: token indices `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Index of the slot (the argument) in the model config.
    pub slot: usize,
    /// First token of the span.
    pub start: usize,
    /// Last token of the span (inclusive).
    pub end: usize,
}

/// The argument maps of one chosen tool: (first span position, tool index, maps).
type ToolCalls = (usize, usize, Vec<Map<String, Value>>);

/// Turns scores into calls.
#[derive(Debug, Clone)]
pub struct Decoder {
    tools: Vec<ToolRule>,
    slots: Vec<SlotRule>,
    tool_threshold: f32,
}

impl Decoder {
    /// The decoder of a model config; errors name the inconsistency.
    pub fn new(config: &ModelConfig) -> Result<Self, String> {
        let mut tools: Vec<ToolRule> = config
            .tools
            .iter()
            .map(|t| ToolRule {
                name: t.name.clone(),
                fan_out: t.fan_out.clone(),
                inherit: t.inherit.clone(),
                slots: Vec::new(),
            })
            .collect();
        let mut slots = Vec::with_capacity(config.slots.len());
        for (s, slot) in config.slots.iter().enumerate() {
            let tool = tools
                .iter()
                .position(|t| t.name == slot.tool)
                .ok_or_else(|| format!("slot {} names an unknown tool", slot.key()))?;
            let transform = parse_transform(&slot.transform).ok_or_else(|| {
                format!(
                    "slot {} has an unknown transform `{}`",
                    slot.key(),
                    slot.transform
                )
            })?;
            tools[tool].slots.push(s);
            slots.push(SlotRule {
                tool,
                argument: slot.argument.clone(),
                transform,
                default: slot.default.clone(),
            });
        }
        Ok(Self {
            tools,
            slots,
            tool_threshold: config.tool_threshold as f32,
        })
    }

    /// Indices of the tools chosen by their probabilities.
    pub fn chosen(&self, tool_probs: &[f32]) -> Vec<usize> {
        tool_probs
            .iter()
            .enumerate()
            .filter(|(_, p)| **p >= self.tool_threshold)
            .map(|(i, _)| i)
            .take(self.tools.len())
            .collect()
    }

    /// Argument spans, reading each token's best tag among `O` and the slots of
    /// the `chosen` tools; an `I-` tag without its `B-` starts a span, and a `B-`
    /// right after a span of the same slot continues it.
    pub fn spans(&self, tag_logits: &[f32], tokens: usize, chosen: &[usize]) -> Vec<Span> {
        let tags = 1 + 2 * self.slots.len();
        let mut allowed = vec![TAG_O];
        for &t in chosen {
            for &s in &self.tools[t].slots {
                allowed.push(tag_begin(s));
                allowed.push(tag_inside(s));
            }
        }
        let mut spans: Vec<Span> = Vec::new();
        let mut open: Option<Span> = None;
        for i in 0..tokens {
            let row = tag_logits.get(i * tags..(i + 1) * tags).unwrap_or(&[]);
            let best = allowed
                .iter()
                .copied()
                .filter(|&t| t < row.len())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(TAG_O);
            if best == TAG_O {
                spans.extend(open.take());
                continue;
            }
            let slot = (best - 1) / 2;
            match open.as_mut() {
                // Adjacent tokens of one slot form one span, even on a repeated `B-`:
                // separate values always have something between them ("and", ",").
                Some(span) if span.slot == slot => span.end = i,
                _ => {
                    spans.extend(open.take());
                    open = Some(Span {
                        slot,
                        start: i,
                        end: i,
                    });
                }
            }
        }
        spans.extend(open);
        spans
    }

    /// The calls for a scored query, or `Err(reason)` to abstain.
    pub fn decode(
        &self,
        scored: &Scored<'_>,
        context: &RouteContext,
    ) -> Result<Vec<ToolCall>, String> {
        let chosen = self.chosen(scored.tool_probs);
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let mut spans = self.spans(scored.tag_logits, scored.tokens.len(), &chosen);
        self.join_fragments(&mut spans, scored);
        self.join_compound_quantities(&mut spans);
        self.force_required(&mut spans, scored, &chosen, context);
        let mut per_tool: Vec<ToolCalls> = Vec::new();
        for &t in &chosen {
            let tool = &self.tools[t];
            let Some(spec) = context.tool(&tool.name) else {
                continue;
            };
            let mine: Vec<&Span> = spans
                .iter()
                .filter(|s| self.slots[s.slot].tool == t)
                .collect();
            let first = mine.iter().map(|s| s.start).min().unwrap_or(usize::MAX);
            let calls = self.tool_calls(tool, &mine, scored, spec);
            per_tool.push((first, t, calls));
        }
        if per_tool.is_empty() {
            return Err("every predicted tool is missing from the route context".into());
        }
        per_tool.sort_by_key(|(first, t, _)| (*first, *t));
        let mut maps: Vec<(usize, Map<String, Value>)> = per_tool
            .into_iter()
            .flat_map(|(_, t, calls)| calls.into_iter().map(move |c| (t, c)))
            .collect();
        self.inherit(&mut maps);
        let mut calls: Vec<ToolCall> = Vec::with_capacity(maps.len());
        let mut valid_tools: Vec<usize> = Vec::new();
        let mut tools_seen: Vec<usize> = Vec::new();
        let mut rejected: Vec<(usize, Value)> = Vec::new();
        for (t, map) in maps {
            let name = &self.tools[t].name;
            if !tools_seen.contains(&t) {
                tools_seen.push(t);
            }
            let Some(spec) = context.tool(name) else {
                continue;
            };
            let tried = Value::Object(map.clone());
            if let Some(arguments) = conform(spec, map) {
                let call = ToolCall {
                    tool: name.clone(),
                    arguments,
                };
                if !calls.contains(&call) {
                    calls.push(call);
                }
                if !valid_tools.contains(&t) {
                    valid_tools.push(t);
                }
            } else {
                rejected.push((t, tried));
            }
        }
        if let Some(&bad) = tools_seen.iter().find(|t| !valid_tools.contains(t)) {
            let tried = rejected
                .iter()
                .find(|(t, _)| *t == bad)
                .map(|(_, args)| args.to_string())
                .unwrap_or_default();
            return Err(format!(
                "no valid call for predicted tool `{}` (arguments {tried})",
                self.tools[bad].name
            ));
        }
        Ok(calls)
    }

    /// Joins spans of one free-text slot (search query, goal, expression) that
    /// nothing separates but other words: the tags broke one request into
    /// fragments ("is there traffic | on the way | to the city"), and each span
    /// would become a call of its own. Spans with a separator between them
    /// ("and", "or", "then", "also", "plus", `,`, `;`, `&`) stay apart.
    fn join_fragments(&self, spans: &mut Vec<Span>, scored: &Scored<'_>) {
        const SEPARATORS: &[&str] = &["and", "or", "then", "also", "plus", ",", ";", "&"];
        let free_text = |slot: usize| {
            matches!(
                self.slots[slot].transform,
                Transform::Keep | Transform::Expression
            )
        };
        let separated = |from: usize, to: usize| {
            (from..to).any(|i| {
                scored.tokens.get(i).is_some_and(|t| {
                    let text = t.text(scored.query);
                    SEPARATORS.iter().any(|s| text.eq_ignore_ascii_case(s))
                })
            })
        };
        spans.sort_by_key(|s| s.start);
        let mut joined: Vec<Span> = Vec::with_capacity(spans.len());
        for span in spans.drain(..) {
            if let Some(last) = joined.last_mut().filter(|last| {
                last.slot == span.slot
                    && free_text(span.slot)
                    && span.start > last.end
                    && !separated(last.end + 1, span.start)
            }) {
                last.end = span.end;
                continue;
            }
            joined.push(span);
        }
        *spans = joined;
    }

    /// Joins a quantity written in several units ("5 feet 10 inches", "2 h 30
    /// min"): a number span and a unit span of one tool, then a number and a unit
    /// of the same slots right after, are one value whose unit span runs over the
    /// rest ("feet 10 inches"); the tool adds the parts. Fan-out would otherwise
    /// make one call per part.
    fn join_compound_quantities(&self, spans: &mut Vec<Span>) {
        let is = |span: &Span, transform: Transform| self.slots[span.slot].transform == transform;
        let same_tool = |a: &Span, b: &Span| self.slots[a.slot].tool == self.slots[b.slot].tool;
        spans.sort_by_key(|s| s.start);
        let mut i = 0;
        while i + 3 < spans.len() {
            let (number, unit, next_number, next_unit) =
                (spans[i], spans[i + 1], spans[i + 2], spans[i + 3]);
            let compound = is(&number, Transform::Number)
                && is(&unit, Transform::Unit)
                && same_tool(&number, &unit)
                && next_number.slot == number.slot
                && next_unit.slot == unit.slot
                && unit.start == number.end + 1
                && next_number.start == unit.end + 1
                && next_unit.start == next_number.end + 1;
            if compound {
                spans[i + 1].end = next_unit.end;
                spans.drain(i + 2..i + 4);
            } else {
                i += 1;
            }
        }
    }

    /// Adds a span for each required argument of a chosen tool that the tags
    /// missed: the tool head is sure of the tool, so its argument is somewhere in
    /// the query. Candidate spans start at free tokens in order of how close their
    /// `B-`/`I-` logit comes to `O` (within [`FORCED_SPAN_MARGIN`]) and grow right
    /// over tokens whose `I-` logit is within [`FORCED_SPAN_GROWTH`]; the first whose text converts (not
    /// punctuation, not a non-number for a number) is taken. Free-text arguments
    /// are left to the query-text fill, and an inheritable one to the neighbouring
    /// call that has it when several tools are chosen.
    fn force_required(
        &self,
        spans: &mut Vec<Span>,
        scored: &Scored<'_>,
        chosen: &[usize],
        context: &RouteContext,
    ) {
        let tags = 1 + 2 * self.slots.len();
        let row = |i: usize| scored.tag_logits.get(i * tags..(i + 1) * tags);
        let margin = |i: usize, tag: usize| row(i).and_then(|r| Some(r.get(tag)? - r.get(TAG_O)?));
        for &t in chosen {
            let tool = &self.tools[t];
            let Some(spec) = context.tool(&tool.name) else {
                continue;
            };
            let schema_of = |argument: &str| {
                spec.parameters
                    .get("properties")
                    .and_then(|p| p.get(argument))
            };
            for &s in &tool.slots {
                let rule = &self.slots[s];
                let inherited = chosen.len() > 1
                    && tool.inherit.contains(&rule.argument)
                    && spans
                        .iter()
                        .any(|span| self.slots[span.slot].argument == rule.argument);
                let skip = rule.default.is_some()
                    || matches!(rule.transform, Transform::Keep | Transform::Expression)
                    || !is_required(spec, &rule.argument)
                    || inherited
                    || spans.iter().any(|span| span.slot == s);
                if skip {
                    continue;
                }
                let free = |i: &usize| !spans.iter().any(|sp| (sp.start..=sp.end).contains(i));
                let mut candidates: Vec<(usize, f32)> = (0..scored.tokens.len())
                    .filter(free)
                    .filter_map(|i| {
                        let m = margin(i, tag_begin(s))?.max(margin(i, tag_inside(s))?);
                        Some((i, m))
                    })
                    .filter(|&(_, m)| m > -FORCED_SPAN_MARGIN)
                    .collect();
                candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
                let schema = schema_of(&rule.argument);
                let forced = candidates.iter().find_map(|&(start, _)| {
                    let mut end = start;
                    while end + 1 < scored.tokens.len()
                        && free(&(end + 1))
                        && margin(end + 1, tag_inside(s)).is_some_and(|m| m > -FORCED_SPAN_GROWTH)
                    {
                        end += 1;
                    }
                    let span = Span {
                        slot: s,
                        start,
                        end,
                    };
                    let text = span_text(scored, &span, rule.transform);
                    convert(text, rule.transform, schema).map(|_| span)
                });
                if let Some(span) = forced {
                    spans.push(span);
                }
            }
        }
    }

    /// The argument maps of one tool: a call per span of its fan-out argument.
    fn tool_calls(
        &self,
        tool: &ToolRule,
        spans: &[&Span],
        scored: &Scored<'_>,
        spec: &ToolSpec,
    ) -> Vec<Map<String, Value>> {
        let props = spec.parameters.get("properties").and_then(Value::as_object);
        // Values per slot of this tool, in query order, and whether it had spans at
        // all (a span that does not convert is not replaced by the default).
        let values: Vec<(usize, Vec<Value>, bool)> = tool
            .slots
            .iter()
            .map(|&s| {
                let rule = &self.slots[s];
                let schema = props.and_then(|p| p.get(&rule.argument));
                let mine: Vec<&&Span> = spans.iter().filter(|span| span.slot == s).collect();
                let vals = mine
                    .iter()
                    .filter_map(|span| {
                        let text = span_text(scored, span, rule.transform);
                        convert(text, rule.transform, schema)
                    })
                    .collect();
                (s, vals, !mine.is_empty())
            })
            .collect();
        let fan = tool.fan_out.as_ref().and_then(|arg| {
            values
                .iter()
                .find(|(s, _, _)| &self.slots[*s].argument == arg)
                .map(|(_, v, _)| v.len())
        });
        let k = fan.unwrap_or(1).max(1);
        (0..k)
            .map(|i| {
                let mut map = Map::new();
                for (s, vals, had_spans) in &values {
                    let rule = &self.slots[*s];
                    let pick = if vals.len() == k {
                        vals.get(i)
                    } else {
                        vals.first()
                    };
                    match (pick, &rule.default) {
                        (Some(v), _) => {
                            map.insert(rule.argument.clone(), v.clone());
                        }
                        (None, Some(default)) if !had_spans => {
                            map.insert(rule.argument.clone(), default.clone());
                        }
                        // A required free-text argument (search query, goal, text,
                        // expression) that no span gave is the query itself: the tool
                        // head was sure of the tool, and the tool can read the text
                        // (a calculator a word problem, a search engine a question).
                        (None, None)
                            if !had_spans
                                && matches!(
                                    rule.transform,
                                    Transform::Keep | Transform::Expression
                                )
                                && is_required(spec, &rule.argument) =>
                        {
                            let text = scored.query.trim().trim_end_matches(['?', '!', '.']).trim();
                            if !text.is_empty() {
                                map.insert(rule.argument.clone(), Value::String(text.to_string()));
                            }
                        }
                        _ => {}
                    }
                }
                map
            })
            .collect()
    }

    /// Fills missing inheritable arguments from the nearest other call that has
    /// them, earlier calls first ("weather in Oslo and what time is it there").
    fn inherit(&self, maps: &mut [(usize, Map<String, Value>)]) {
        for i in 0..maps.len() {
            let tool = &self.tools[maps[i].0];
            let missing: Vec<&String> = tool
                .inherit
                .iter()
                .filter(|a| !maps[i].1.contains_key(a.as_str()))
                .collect();
            for name in missing {
                let found = (0..i)
                    .rev()
                    .chain(i + 1..maps.len())
                    .find_map(|j| maps[j].1.get(name.as_str()).cloned());
                if let Some(value) = found {
                    maps[i].1.insert(name.clone(), value);
                }
            }
        }
    }
}

/// The text of a span in the original query, widened to whole words where it
/// starts or ends inside a run of letters (a wordpiece model may tag only some
/// pieces of a word: `teraby` of `terabytes`). A text argument that runs to the
/// last token read of a truncated query takes the rest of the query too.
fn span_text<'a>(scored: &Scored<'a>, span: &Span, transform: Transform) -> &'a str {
    let (Some(first), Some(last)) = (scored.tokens.get(span.start), scored.tokens.get(span.end))
    else {
        return "";
    };
    let end = if scored.truncated
        && transform == Transform::Keep
        && span.end + 1 == scored.tokens.len()
    {
        scored.query.len()
    } else {
        last.end
    };
    let (start, end) = whole_words(scored.query, first.start, end);
    scored.query.get(start..end).unwrap_or("")
}

/// Moves `start` back and `end` forward while each sits between two letters.
fn whole_words(text: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    let letter_before = |i: usize| {
        text.get(..i)
            .and_then(|t| t.chars().next_back())
            .filter(|c| c.is_alphabetic())
    };
    let letter_at = |i: usize| {
        text.get(i..)
            .and_then(|t| t.chars().next())
            .filter(|c| c.is_alphabetic())
    };
    while letter_at(start).is_some() {
        match letter_before(start) {
            Some(c) => start -= c.len_utf8(),
            None => break,
        }
    }
    while letter_before(end).is_some() {
        match letter_at(end) {
            Some(c) => end += c.len_utf8(),
            None => break,
        }
    }
    (start, end)
}

/// The argument value a span of text decodes to, for a slot with the transform
/// named `transform` and the property schema `schema`: what the router would put
/// in the call. The trainer aligns labeled arguments to spans with it.
pub fn convert_span(text: &str, transform: &str, schema: Option<&Value>) -> Option<Value> {
    convert(text, parse_transform(transform)?, schema)
}

/// Cleans a span's text with its transform and fits it to the schema type.
fn convert(text: &str, transform: Transform, schema: Option<&Value>) -> Option<Value> {
    let cleaned = clean(text, transform);
    let value = apply(transform, &cleaned)?;
    let types = schema_types(schema);
    let wants_number = types.iter().any(|t| t == "number" || t == "integer");
    let wants_string = types.iter().any(|t| t == "string") || types.is_empty();
    match value {
        Value::String(s) if wants_number && !wants_string => {
            parse_number(&s).and_then(number_value)
        }
        Value::Number(n) if wants_string && !wants_number => Some(Value::String(n.to_string())),
        other => Some(other),
    }
}

/// Drops arguments the schema does not know and validates; `None` when invalid.
fn is_required(spec: &ToolSpec, argument: &str) -> bool {
    spec.parameters
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|v| v == argument))
}

fn conform(spec: &ToolSpec, mut map: Map<String, Value>) -> Option<Map<String, Value>> {
    if let Some(props) = spec.parameters.get("properties").and_then(Value::as_object) {
        map.retain(|k, _| props.contains_key(k));
    }
    let arguments = Value::Object(map);
    spec.validate(&arguments).ok()?;
    match arguments {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolforge_model::features::{tokenize, MAX_TOKENS};
    use crate::toolforge_model::files::describe_tools;
    use crate::toolforge_model::network::ArchConfig;
    use serde_json::json;

    #[test]
    fn spans_widen_to_whole_words() {
        let q = "convret 4.7 terabytes to gigabytes";
        let at = |piece: &str| q.find(piece).unwrap();
        assert_eq!(
            whole_words(q, at("teraby"), at("teraby") + 6),
            (at("terabytes"), at("terabytes") + 9)
        );
        assert_eq!(
            whole_words(q, at("tes "), at("tes ") + 3),
            (at("terabytes"), at("terabytes") + 9)
        );
        assert_eq!(
            whole_words(q, at("4.7"), at("4.7") + 3),
            (at("4.7"), at("4.7") + 3)
        );
        let q = "45kg in lbs, dólares";
        assert_eq!(whole_words(q, 2, 4), (2, 4));
        let start = q.find("dól").unwrap();
        assert_eq!(
            whole_words(q, start, start + "dólar".len()),
            (start, q.len())
        );
    }

    fn specs() -> Vec<ToolSpec> {
        let spec = |name: &str, parameters: Value| ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters,
        };
        vec![
            spec(
                "weather",
                json!({"type": "object", "additionalProperties": false, "required": ["location"],
                "properties": {"location": {"type": "string"}, "date": {"type": ["string", "null"]}}}),
            ),
            spec(
                "unit_converter",
                json!({"type": "object", "additionalProperties": false,
                "required": ["value", "from_unit", "to_unit"],
                "properties": {"value": {"type": "number"}, "from_unit": {"type": "string"},
                               "to_unit": {"type": "string"}}}),
            ),
            spec(
                "translate",
                json!({"type": "object", "additionalProperties": false,
                "required": ["text", "target_language"],
                "properties": {"text": {"type": "string"}, "target_language": {"type": "string"},
                               "source_language": {"type": ["string", "null"]}}}),
            ),
            spec(
                "datetime",
                json!({"type": "object", "properties": {"location": {"type": ["string", "null"]}}}),
            ),
            spec(
                "web_search",
                json!({"type": "object", "additionalProperties": false, "required": ["query"],
                "properties": {"query": {"type": "string"}}}),
            ),
        ]
    }

    fn decoder() -> (Decoder, ModelConfig) {
        let (tools, slots) = describe_tools(&specs());
        let tags = 1 + 2 * slots.len();
        let config = ModelConfig {
            format: 1,
            model_version: "test".into(),
            backbone: "compact".into(),
            architecture: ArchConfig {
                dim: 8,
                layers: 1,
                heads: 1,
                ff_dim: 8,
                max_tokens: 64,
                word_rows: 10,
                ngram_buckets: 10,
                max_ngrams: 4,
                shapes: 7,
                tools: tools.len(),
                tags,
                dropout: 0.0,
            },
            tools,
            unsupported_output: false,
            unsupported_threshold: 0.5,
            slots,
            temperature: 1.0,
            threshold: 0.5,
            tool_threshold: 0.5,
            members: 1,
            encoder: None,
            training: Value::Null,
        };
        (Decoder::new(&config).unwrap(), config)
    }

    /// Tag logits with a 1.0 on the given tag of each token (by slot key and B/I).
    fn tags(config: &ModelConfig, labels: &[Option<(&str, bool)>]) -> Vec<f32> {
        let n = config.tag_count();
        let mut out = vec![0f32; labels.len() * n];
        for (i, label) in labels.iter().enumerate() {
            let tag = match label {
                None => TAG_O,
                Some((key, begin)) => {
                    let s = config.slots.iter().position(|s| s.key() == *key).unwrap();
                    if *begin {
                        tag_begin(s)
                    } else {
                        tag_inside(s)
                    }
                }
            };
            out[i * n + tag] = 1.0;
        }
        out
    }

    fn run(
        query: &str,
        probs: &[f32],
        labels: &[Option<(&str, bool)>],
    ) -> Result<Vec<ToolCall>, String> {
        let (decoder, config) = decoder();
        let tokens = tokenize(query, MAX_TOKENS);
        assert_eq!(tokens.len(), labels.len(), "labels for {query}");
        let logits = tags(&config, labels);
        let scored = Scored {
            query,
            tokens: &tokens,
            truncated: false,
            tool_probs: probs,
            tag_logits: &logits,
        };
        decoder.decode(&scored, &RouteContext::new(specs()))
    }

    const LOC: Option<(&str, bool)> = Some(("weather.location", true));

    #[test]
    fn fans_out_over_several_places_and_title_cases() {
        let calls = run(
            "weather in paris and new york tomorrow",
            &[0.9, 0.1, 0.1, 0.1],
            &[
                None,
                None,
                LOC,
                None,
                LOC,
                Some(("weather.location", false)),
                Some(("weather.date", true)),
            ],
        )
        .unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].arguments,
            json!({"location": "Paris", "date": "tomorrow"})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(calls[1].arguments["location"], "New York");
        assert_eq!(calls[1].arguments["date"], "tomorrow");
    }

    #[test]
    fn fragments_of_one_request_make_one_call() {
        const Q: Option<(&str, bool)> = Some(("web_search.query", true));
        const QI: Option<(&str, bool)> = Some(("web_search.query", false));
        let probs = [0.1, 0.1, 0.1, 0.1, 0.9];
        // "is there traffic | on the way | to the city": three fragments, one call.
        let calls = run(
            "is there traffic on the way to the city",
            &probs,
            &[None, None, Q, None, Q, QI, None, Q, QI],
        )
        .unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(
            calls[0].arguments["query"],
            "traffic on the way to the city"
        );
        // Two requests joined by "and" stay two calls.
        let calls = run(
            "search rust jobs and search go jobs",
            &probs,
            &[None, Q, QI, None, None, Q, QI],
        )
        .unwrap();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[1].arguments["query"], "go jobs");
    }

    #[test]
    fn compound_quantities_make_one_call() {
        let value = Some(("unit_converter.value", true));
        let from = Some(("unit_converter.from_unit", true));
        let to = Some(("unit_converter.to_unit", true));
        let calls = run(
            "convert 5 feet 10 inches to cm",
            &[0.1, 0.9, 0.1, 0.1],
            &[None, value, from, value, from, None, to],
        )
        .unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(
            calls[0].arguments,
            json!({"value": 5, "from_unit": "feet 10 inches", "to_unit": "cm"})
                .as_object()
                .unwrap()
                .clone()
        );
        // Two quantities with "and" between them stay two calls.
        let calls = run(
            "5 feet and 10 inches to cm",
            &[0.1, 0.9, 0.1, 0.1],
            &[value, from, None, value, from, None, to],
        )
        .unwrap();
        assert_eq!(calls.len(), 2, "{calls:?}");
    }

    #[test]
    fn numbers_units_defaults_and_languages() {
        let calls = run(
            "convert two km to Miles",
            &[0.1, 0.9, 0.1, 0.1],
            &[
                None,
                Some(("unit_converter.value", true)),
                Some(("unit_converter.from_unit", true)),
                None,
                Some(("unit_converter.to_unit", true)),
            ],
        )
        .unwrap();
        assert_eq!(
            calls[0].arguments,
            json!({"value": 2, "from_unit": "km", "to_unit": "miles"})
                .as_object()
                .unwrap()
                .clone()
        );
        let calls = run(
            "how many cups in gallon",
            &[0.1, 0.9, 0.1, 0.1],
            &[
                None,
                None,
                Some(("unit_converter.to_unit", true)),
                None,
                Some(("unit_converter.from_unit", true)),
            ],
        )
        .unwrap();
        assert_eq!(calls[0].arguments["value"], 1);
        let calls = run(
            "say good night in japanease and french",
            &[0.1, 0.1, 0.9, 0.1],
            &[
                None,
                Some(("translate.text", true)),
                Some(("translate.text", false)),
                None,
                Some(("translate.target_language", true)),
                None,
                Some(("translate.target_language", true)),
            ],
        )
        .unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments["text"], "good night");
        assert_eq!(calls[0].arguments["target_language"], "Japanese");
        assert_eq!(calls[1].arguments["target_language"], "French");
        assert_eq!(calls[1].arguments["text"], "good night");
    }

    #[test]
    fn orders_tools_by_position_and_inherits_places() {
        let calls = run(
            "what time is it in oslo and the weather there",
            &[0.9, 0.1, 0.1, 0.9],
            &[
                None,
                None,
                None,
                None,
                None,
                Some(("datetime.location", true)),
                None,
                None,
                None,
                None,
            ],
        )
        .unwrap();
        let tools: Vec<&str> = calls.iter().map(|c| c.tool.as_str()).collect();
        assert_eq!(tools, vec!["datetime", "weather"]);
        assert_eq!(calls[1].arguments["location"], "Oslo");
    }

    #[test]
    fn adjacent_spans_of_one_slot_are_merged() {
        let q: Option<(&str, bool)> = Some(("weather.location", true));
        let calls = run(
            "weather in new york",
            &[0.9, 0.1, 0.1, 0.1],
            &[None, None, q, q],
        )
        .unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].arguments["location"], "New York");
    }

    #[test]
    fn invalid_call_makes_the_router_abstain() {
        // Weather chosen but no location span, nothing to inherit, and every
        // token far more `O` than location.
        let (decoder, config) = decoder();
        let query = "weather please";
        let tokens = tokenize(query, MAX_TOKENS);
        let mut logits = tags(&config, &[None, None]);
        logits.iter_mut().for_each(|l| *l *= 30.0);
        let scored = Scored {
            query,
            tokens: &tokens,
            truncated: false,
            tool_probs: &[0.9, 0.1, 0.1, 0.1],
            tag_logits: &logits,
        };
        let err = decoder
            .decode(&scored, &RouteContext::new(specs()))
            .unwrap_err();
        assert!(err.contains("weather"), "{err}");
        // A value that is not a number fails the schema: abstain.
        let err = run(
            "convert lots km to miles",
            &[0.1, 0.9, 0.1, 0.1],
            &[
                None,
                Some(("unit_converter.value", true)),
                Some(("unit_converter.from_unit", true)),
                None,
                Some(("unit_converter.to_unit", true)),
            ],
        )
        .unwrap_err();
        assert!(err.contains("unit_converter"));
        // No tool above the threshold: answer directly.
        assert_eq!(
            run("hi there", &[0.1, 0.2, 0.3, 0.4], &[None, None]),
            Ok(vec![])
        );
    }

    /// Decodes `query` as a sure weather query whose every token is surely `O`
    /// (logit 8), except the `hints`: (token, `B-` or else `I-`, location logit).
    fn weather_with_weak_location(query: &str, hints: &[(usize, bool, f32)]) -> Vec<ToolCall> {
        let (decoder, config) = decoder();
        let tokens = tokenize(query, MAX_TOKENS);
        let n = config.tag_count();
        let location = config
            .slots
            .iter()
            .position(|s| s.key() == "weather.location")
            .unwrap();
        let mut logits = tags(&config, &vec![None; tokens.len()]);
        logits.iter_mut().for_each(|l| *l *= 8.0);
        for &(token, begin, logit) in hints {
            let tag = if begin {
                tag_begin(location)
            } else {
                tag_inside(location)
            };
            logits[token * n + tag] = logit;
        }
        let scored = Scored {
            query,
            tokens: &tokens,
            truncated: false,
            tool_probs: &[0.9, 0.1, 0.1, 0.1],
            tag_logits: &logits,
        };
        decoder
            .decode(&scored, &RouteContext::new(specs()))
            .unwrap()
    }

    #[test]
    fn a_missed_required_argument_is_taken_from_its_closest_tokens() {
        // "san jose" is much less surely `O` than the rest, as a location.
        let calls = weather_with_weak_location(
            "weather for the city of san jose",
            &[(5, true, 5.0), (6, false, 4.0)],
        );
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].arguments["location"], "San Jose");
    }

    #[test]
    fn a_forced_span_must_convert() {
        // The question mark (token 7) is the closest to a location, but names no place.
        let calls = weather_with_weak_location(
            "weather for the city of san jose ?",
            &[(7, true, 7.0), (5, true, 5.0), (6, false, 4.0)],
        );
        assert_eq!(calls[0].arguments["location"], "San Jose");
    }

    #[test]
    fn tools_outside_the_context_are_skipped() {
        let (decoder, config) = decoder();
        let query = "weather in rome";
        let tokens = tokenize(query, MAX_TOKENS);
        let logits = tags(&config, &[None, None, LOC]);
        let scored = Scored {
            query,
            tokens: &tokens,
            truncated: false,
            tool_probs: &[0.9, 0.1, 0.1, 0.1],
            tag_logits: &logits,
        };
        let only_translate = RouteContext::new(vec![specs()[2].clone()]);
        assert!(decoder.decode(&scored, &only_translate).is_err());
        let calls = decoder
            .decode(&scored, &RouteContext::new(specs()))
            .unwrap();
        assert_eq!(calls[0].arguments["location"], "Rome");
    }
}
