//! `NewToolRouter`: routes to registered tools the learned model was never
//! trained on, so a newly registered tool is routable before any retraining. It
//! speaks only for those tools and abstains otherwise (at no cost when there are
//! none), so it goes first in a chain, ahead of the learned stage that is
//! confident only about the tools it knows.
//!
//! Two sources, in order: the user's regex rules for the new tools (`[regex]
//! rules`), whose decision counts only when every call is to a new tool; then
//! nearest-prototype scoring (Tool2Vec's recipe) on the model's own sentence
//! vector: each new tool's prototype is the mean of its example requests'
//! vectors, and a query close enough to one is routed to it. Arguments come
//! from the nearest example: a value it names is looked for in the query at the
//! same place (next to the same word), so "roll 2 dice with 6 sides" teaches
//! `count` and `sides` for "throw 3 dice with 20 sides".

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};
use toolforge_core::{RouteContext, RouteDecision, RouteError, Router, ToolCall, ToolExample};

use crate::toolforge_model::features::tokenize;
use crate::{RegexRouter, ToolForgeRouter};

/// Name reported in decisions.
pub const NAME: &str = "new_tools";

/// Names of the no-call outcomes' prototypes (not tool names: `<` is not
/// allowed in one).
const DIRECT: &str = "<direct>";
const UNSUPPORTED: &str = "<unsupported>";

/// Cosine similarity to a new tool's prototype from which a query is routed
/// to it (the decision's confidence is the similarity).
pub const DEFAULT_MIN_SIMILARITY: f32 = 0.5;

/// Requests answered without a tool, as one more prototype a new tool must beat.
const DIRECT_EXAMPLES: &[&str] = &[
    "hi there",
    "thanks a lot",
    "tell me a joke",
    "how are you today",
    "write a short poem about autumn",
    "what can you do",
    "who made you",
    "good night",
    "give me some advice on staying focused",
    "what do you think about cats",
    "summarize this paragraph for me",
    "yes",
];

/// Requests no tool can serve (actions in the world or in an app), as another.
const UNSUPPORTED_EXAMPLES: &[&str] = &[
    "set an alarm for 7 am",
    "remind me to call mom tomorrow",
    "play some jazz",
    "turn off the lights in the kitchen",
    "text john that i'm running late",
    "book a table for two at 8",
    "order a large pizza",
    "add milk to my shopping list",
    "call my sister",
    "transfer 50 dollars to savings",
    "get me an uber to the airport",
    "schedule a meeting with sarah on friday",
    "turn the volume up",
    "book me a flight to boston",
];

/// The registered tools' example requests under the model, centred on their
/// common mean (sentence vectors share a large common direction; without it
/// every query looks alike).
#[derive(Debug, Clone)]
struct Prototypes {
    /// Hash of every example query it was computed from.
    key: u64,
    background: Vec<f32>,
    tools: Vec<ToolPrototype>,
}

/// Example requests with their sentence vectors.
type Embedded = Vec<(Vec<f32>, ToolExample)>;

/// One tool's prototype: the mean of its examples' centred unit vectors.
#[derive(Debug, Clone)]
struct ToolPrototype {
    name: String,
    mean: Vec<f32>,
    examples: Embedded,
}

/// Routes to tools the learned model does not know (see the module docs).
#[derive(Debug)]
pub struct NewToolRouter {
    model: Arc<ToolForgeRouter>,
    rules: Option<Arc<RegexRouter>>,
    min_similarity: f32,
    prototypes: Mutex<Option<Arc<Prototypes>>>,
}

impl NewToolRouter {
    /// A stage for the tools `model` does not know, by prototypes only.
    pub fn new(model: Arc<ToolForgeRouter>) -> Self {
        Self {
            model,
            rules: None,
            min_similarity: DEFAULT_MIN_SIMILARITY,
            prototypes: Mutex::new(None),
        }
    }

    /// Also consults `rules` (their decisions for new tools only).
    pub fn with_rules(mut self, rules: Arc<RegexRouter>) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Routes by prototype from this cosine similarity on (default 0.5).
    pub fn with_min_similarity(mut self, min_similarity: f32) -> Self {
        self.min_similarity = min_similarity;
        self
    }

    /// Decides without awaiting (the work is CPU-only).
    pub fn route_sync(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        let Ok(model) = self.model.model() else {
            return Ok(None);
        };
        let known: Vec<&str> = model.tools().iter().map(|t| t.name.as_str()).collect();
        let new_tools: Vec<&str> = context
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .filter(|name| !known.contains(name))
            .collect();
        if new_tools.is_empty() {
            return Ok(None);
        }
        if let Some(rules) = &self.rules {
            if let Some(decision) = rules.route_sync(query, context) {
                let all_new = !decision.calls.is_empty()
                    && decision
                        .calls
                        .iter()
                        .all(|c| new_tools.contains(&c.tool.as_str()));
                if all_new {
                    return Ok(Some(RouteDecision {
                        router: NAME.to_string(),
                        ..decision
                    }));
                }
            }
        }
        let embed = |text: &str| model.score(text).ok().map(|scores| scores.sentence);
        let Some(prototypes) = self.prototypes(context, &embed) else {
            return Ok(None);
        };
        let Some(query_vector) = embed(query).and_then(|v| centred(v, &prototypes.background))
        else {
            return Ok(None);
        };
        let Some((similarity, prototype)) = prototypes
            .tools
            .iter()
            .map(|p| (dot(&query_vector, &p.mean), p))
            .max_by(|a, b| a.0.total_cmp(&b.0))
        else {
            return Ok(None);
        };
        tracing::debug!(tool = %prototype.name, similarity, "nearest prototype");
        let tool = prototype.name.as_str();
        if !new_tools.contains(&tool) || similarity < self.min_similarity {
            return Ok(None);
        }
        let mut ranked: Vec<&(Vec<f32>, ToolExample)> = prototype.examples.iter().collect();
        ranked.sort_by(|a, b| dot(&query_vector, &b.0).total_cmp(&dot(&query_vector, &a.0)));
        let Some(nearest) = ranked.first() else {
            return Ok(None);
        };
        // The nearest example's arguments (those it does not name are kept);
        // then arguments it lacks, from the next examples that name them at
        // a place the query has too.
        let (mut arguments, _) = transfer_arguments(&nearest.1, query);
        for (_, example) in ranked.iter().skip(1) {
            let (_, found) = transfer_arguments(example, query);
            for (name, value) in found {
                arguments.entry(name).or_insert(value);
            }
        }
        let call = ToolCall {
            tool: tool.to_string(),
            arguments,
        };
        let valid = context.tool(tool).is_some_and(|spec| {
            spec.validate(&Value::Object(call.arguments.clone()))
                .is_ok()
        });
        if !valid {
            return Ok(None);
        }
        Ok(Some(RouteDecision {
            calls: vec![call],
            ..RouteDecision::direct(NAME, Some(f64::from(similarity.clamp(0.0, 1.0))))
        }))
    }

    /// The prototypes of every registered tool with examples, computed once
    /// per set of examples.
    fn prototypes(
        &self,
        context: &RouteContext,
        embed: &dyn Fn(&str) -> Option<Vec<f32>>,
    ) -> Option<Arc<Prototypes>> {
        let key = examples_key(context);
        if let Ok(cache) = self.prototypes.lock() {
            if let Some(p) = cache.as_ref().filter(|p| p.key == key) {
                return Some(p.clone());
            }
        }
        let raw: Vec<(String, Embedded)> = context
            .tools
            .iter()
            .map(|spec| {
                let vectors = context
                    .examples_of(&spec.name)
                    .iter()
                    .filter_map(|e| Some((embed(&e.query)?, e.clone())))
                    .collect::<Vec<_>>();
                (spec.name.clone(), vectors)
            })
            .filter(|(_, vectors)| !vectors.is_empty())
            .collect();
        let mut raw = raw;
        for (outcome, queries) in [
            (DIRECT, DIRECT_EXAMPLES),
            (UNSUPPORTED, UNSUPPORTED_EXAMPLES),
        ] {
            let vectors = queries
                .iter()
                .filter_map(|q| {
                    let example = ToolExample {
                        query: (*q).to_string(),
                        arguments: Map::new(),
                    };
                    Some((embed(q)?, example))
                })
                .collect();
            raw.push((outcome.to_string(), vectors));
        }
        let all: Vec<&Vec<f32>> = raw
            .iter()
            .flat_map(|(_, v)| v.iter().map(|(x, _)| x))
            .collect();
        let background = mean(&all)?;
        let tools = raw
            .into_iter()
            .filter_map(|(name, vectors)| {
                let examples: Vec<(Vec<f32>, ToolExample)> = vectors
                    .into_iter()
                    .filter_map(|(v, e)| Some((centred(v, &background)?, e)))
                    .collect();
                let units: Vec<&Vec<f32>> = examples.iter().map(|(v, _)| v).collect();
                let mean = unit(mean(&units)?)?;
                Some(ToolPrototype {
                    name,
                    mean,
                    examples,
                })
            })
            .collect();
        let prototypes = Arc::new(Prototypes {
            key,
            background,
            tools,
        });
        if let Ok(mut cache) = self.prototypes.lock() {
            *cache = Some(prototypes.clone());
        }
        Some(prototypes)
    }
}

fn mean(vectors: &[&Vec<f32>]) -> Option<Vec<f32>> {
    let first = vectors.first()?;
    let mut sum = vec![0f32; first.len()];
    for v in vectors {
        for (s, x) in sum.iter_mut().zip(v.iter()) {
            *s += x;
        }
    }
    let n = vectors.len() as f32;
    Some(sum.into_iter().map(|s| s / n).collect())
}

/// `v - background`, as a unit vector.
fn centred(v: Vec<f32>, background: &[f32]) -> Option<Vec<f32>> {
    if v.len() != background.len() {
        return None;
    }
    unit(v.iter().zip(background).map(|(x, b)| x - b).collect())
}

/// A hash of the registered tools' names and example queries.
fn examples_key(context: &RouteContext) -> u64 {
    let texts = context.tools.iter().flat_map(|spec| {
        std::iter::once(spec.name.as_str()).chain(
            context
                .examples_of(&spec.name)
                .iter()
                .map(|e| e.query.as_str()),
        )
    });
    texts.fold(0xcbf2_9ce4_8422_2325u64, |h, text| {
        text.bytes()
            .chain([0])
            .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

fn unit(mut v: Vec<f32>) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return None;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    Some(v)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Lowercased word tokens of `text`.
fn words(text: &str) -> Vec<String> {
    tokenize(text, 256)
        .iter()
        .map(|t| t.text(text).to_lowercase())
        .collect()
}

/// The arguments of `example` carried over to `query`: a value the example's
/// query names (one token, or a run of tokens) is looked for in `query` next to
/// the same word (the one before it, else the one after it); values the
/// example's query does not name (defaults, canonical forms, flags) are kept as
/// they are; values found at no matching place are left out. Returns all the
/// arguments and, separately, those found in `query`.
fn transfer_arguments(
    example: &ToolExample,
    query: &str,
) -> (Map<String, Value>, Map<String, Value>) {
    let source = words(&example.query);
    let target = words(query);
    let mut all = Map::new();
    let mut found_in_query = Map::new();
    for (name, value) in &example.arguments {
        let text = match value {
            Value::String(s) => s.to_lowercase(),
            Value::Number(n) => n.to_string(),
            _ => {
                all.insert(name.clone(), value.clone());
                continue;
            }
        };
        let value_words = words(&text);
        let Some(at) = find_run(&source, &value_words) else {
            all.insert(name.clone(), value.clone());
            continue;
        };
        let before = at.checked_sub(1).map(|i| source[i].as_str());
        let after = source.get(at + value_words.len()).map(String::as_str);
        if let Some(found) = match_span(&target, before, after, value_words.len(), value) {
            all.insert(name.clone(), found.clone());
            found_in_query.insert(name.clone(), found);
        }
    }
    (all, found_in_query)
}

fn find_run(haystack: &[String], needle: &[String]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len()).find(|&i| haystack[i..i + needle.len()] == *needle)
}

/// The span of `target` in the place of the example's value: after `before`
/// (up to `after`, or as many words as the example's value had), else just
/// before `after`. Numbers must parse as numbers.
fn match_span(
    target: &[String],
    before: Option<&str>,
    after: Option<&str>,
    width: usize,
    like: &Value,
) -> Option<Value> {
    let mut candidates: Vec<(usize, usize)> = Vec::new();
    if let Some(before) = before {
        for (i, w) in target.iter().enumerate() {
            if w == before && i + 1 < target.len() {
                let end = match after {
                    Some(after) => target[i + 1..]
                        .iter()
                        .position(|w| w == after)
                        .map_or(i + 1 + width, |p| i + 1 + p),
                    None => target.len(),
                };
                candidates.push((i + 1, end.min(target.len())));
            }
        }
    }
    if let Some(after) = after {
        for (i, w) in target.iter().enumerate() {
            if w == after && i >= width {
                candidates.push((i - width, i));
            }
        }
    }
    candidates.into_iter().find_map(|(start, end)| {
        if start >= end {
            return None;
        }
        let text = target[start..end].join(" ");
        match like {
            Value::Number(_) => {
                let number: f64 = text.parse().ok()?;
                if number.fract() == 0.0 && (like.is_i64() || like.is_u64()) {
                    Some(Value::from(number as i64))
                } else {
                    serde_json::Number::from_f64(number).map(Value::Number)
                }
            }
            _ => Some(Value::String(text)),
        }
    })
}

#[async_trait]
impl Router for NewToolRouter {
    fn name(&self) -> &str {
        NAME
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        self.route_sync(query, context)
    }

    fn model_version(&self) -> Option<String> {
        self.model.model_version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example(query: &str, arguments: Value) -> ToolExample {
        ToolExample {
            query: query.to_string(),
            arguments: arguments.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn arguments_move_to_the_same_place_in_a_new_query() {
        let dice = example("roll 2 dice with 6 sides", json!({"count": 2, "sides": 6}));
        let (args, found) = transfer_arguments(&dice, "please roll 3 dice with 20 sides");
        assert_eq!(Value::Object(args), json!({"count": 3, "sides": 20}));
        assert_eq!(found.len(), 2);
        let (args, _) = transfer_arguments(&dice, "throw 4 dice");
        assert_eq!(Value::Object(args), json!({"count": 4}));
        let stock = example(
            "price of apple stock today",
            json!({"symbol": "apple", "market": "NASDAQ"}),
        );
        let (args, found) = transfer_arguments(&stock, "what is the price of tesla stock");
        assert_eq!(
            Value::Object(args),
            json!({"symbol": "tesla", "market": "NASDAQ"})
        );
        assert_eq!(Value::Object(found), json!({"symbol": "tesla"}));
    }

    #[test]
    fn nothing_is_invented_when_the_place_is_missing() {
        let dice = example("roll 2 dice", json!({"count": 2}));
        assert!(transfer_arguments(&dice, "roll some dice please")
            .0
            .is_empty());
    }

    #[test]
    fn unit_vectors_and_keys() {
        assert!(unit(vec![0.0, 0.0]).is_none());
        let v = unit(vec![3.0, 4.0]).unwrap();
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
        let centred = centred(vec![2.0, 1.0], &[1.0, 1.0]).unwrap();
        assert_eq!(centred, vec![1.0, 0.0]);
        let m = mean(&[&vec![1.0, 3.0], &vec![3.0, 5.0]]).unwrap();
        assert_eq!(m, vec![2.0, 4.0]);
    }
}
