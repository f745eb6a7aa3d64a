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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};
use toolforge_core::{RouteContext, RouteDecision, RouteError, Router, ToolCall, ToolExample};

use crate::toolforge_model::features::tokenize;
use crate::{RegexRouter, ToolForgeRouter};

/// Name reported in decisions.
pub const NAME: &str = "new_tools";

/// Cosine similarity to a new tool's prototype from which a query is routed
/// to it (the decision's confidence is the similarity).
pub const DEFAULT_MIN_SIMILARITY: f32 = 0.8;

/// A new tool's examples under the model: their unit vectors and their mean.
#[derive(Debug, Clone)]
struct Prototype {
    /// Hash of the example queries it was computed from.
    key: u64,
    mean: Vec<f32>,
    examples: Vec<(Vec<f32>, ToolExample)>,
}

/// Routes to tools the learned model does not know (see the module docs).
#[derive(Debug)]
pub struct NewToolRouter {
    model: Arc<ToolForgeRouter>,
    rules: Option<Arc<RegexRouter>>,
    min_similarity: f32,
    prototypes: Mutex<HashMap<String, Arc<Prototype>>>,
}

impl NewToolRouter {
    /// A stage for the tools `model` does not know, by prototypes only.
    pub fn new(model: Arc<ToolForgeRouter>) -> Self {
        Self {
            model,
            rules: None,
            min_similarity: DEFAULT_MIN_SIMILARITY,
            prototypes: Mutex::new(HashMap::new()),
        }
    }

    /// Also consults `rules` (their decisions for new tools only).
    pub fn with_rules(mut self, rules: Arc<RegexRouter>) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Routes by prototype from this cosine similarity on (default 0.8).
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
        let embed = |text: &str| -> Option<Vec<f32>> {
            let sentence = model.score(text).ok()?.sentence;
            unit(sentence)
        };
        let Some(query_vector) = embed(query) else {
            return Ok(None);
        };
        let mut best: Option<(f32, &str, Arc<Prototype>)> = None;
        for name in new_tools {
            let examples = context.examples_of(name);
            let Some(prototype) = self.prototype(name, examples, &embed) else {
                continue;
            };
            let similarity = dot(&query_vector, &prototype.mean);
            if best.as_ref().is_none_or(|(s, _, _)| similarity > *s) {
                best = Some((similarity, name, prototype));
            }
        }
        let Some((similarity, tool, prototype)) = best else {
            return Ok(None);
        };
        if similarity < self.min_similarity {
            return Ok(None);
        }
        let Some(nearest) = prototype
            .examples
            .iter()
            .max_by(|a, b| dot(&query_vector, &a.0).total_cmp(&dot(&query_vector, &b.0)))
            .map(|(_, example)| example)
        else {
            return Ok(None);
        };
        let arguments = transfer_arguments(nearest, query);
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

    /// The prototype of `tool` from `examples`, computed once per set of examples.
    fn prototype(
        &self,
        tool: &str,
        examples: &[ToolExample],
        embed: &dyn Fn(&str) -> Option<Vec<f32>>,
    ) -> Option<Arc<Prototype>> {
        if examples.is_empty() {
            return None;
        }
        let key = examples_key(examples);
        if let Ok(cache) = self.prototypes.lock() {
            if let Some(p) = cache.get(tool).filter(|p| p.key == key) {
                return Some(p.clone());
            }
        }
        let vectors: Vec<(Vec<f32>, ToolExample)> = examples
            .iter()
            .filter_map(|e| Some((embed(&e.query)?, e.clone())))
            .collect();
        let dim = vectors.first()?.0.len();
        let mut mean = vec![0f32; dim];
        for (v, _) in &vectors {
            for (m, x) in mean.iter_mut().zip(v) {
                *m += x;
            }
        }
        let prototype = Arc::new(Prototype {
            key,
            mean: unit(mean)?,
            examples: vectors,
        });
        if let Ok(mut cache) = self.prototypes.lock() {
            cache.insert(tool.to_string(), prototype.clone());
        }
        Some(prototype)
    }
}

fn examples_key(examples: &[ToolExample]) -> u64 {
    examples.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, e| {
        e.query
            .bytes()
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
/// example's query does not name (defaults, canonical forms) are kept as they
/// are; values found at no matching place are left out.
fn transfer_arguments(example: &ToolExample, query: &str) -> Map<String, Value> {
    let source = words(&example.query);
    let target = words(query);
    let mut out = Map::new();
    for (name, value) in &example.arguments {
        let text = match value {
            Value::String(s) => s.to_lowercase(),
            Value::Number(n) => n.to_string(),
            _ => {
                out.insert(name.clone(), value.clone());
                continue;
            }
        };
        let value_words = words(&text);
        let Some(at) = find_run(&source, &value_words) else {
            out.insert(name.clone(), value.clone());
            continue;
        };
        let before = at.checked_sub(1).map(|i| source[i].as_str());
        let after = source.get(at + value_words.len()).map(String::as_str);
        let found = match_span(&target, before, after, value_words.len(), value);
        if let Some(found) = found {
            out.insert(name.clone(), found);
        }
    }
    out
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
        let args = transfer_arguments(&dice, "please roll 3 dice with 20 sides");
        assert_eq!(Value::Object(args), json!({"count": 3, "sides": 20}));
        let args = transfer_arguments(&dice, "throw 4 dice");
        assert_eq!(Value::Object(args), json!({"count": 4}));
        let stock = example(
            "price of apple stock today",
            json!({"symbol": "apple", "market": "NASDAQ"}),
        );
        let args = transfer_arguments(&stock, "what is the price of tesla stock");
        assert_eq!(
            Value::Object(args),
            json!({"symbol": "tesla", "market": "NASDAQ"})
        );
    }

    #[test]
    fn nothing_is_invented_when_the_place_is_missing() {
        let dice = example("roll 2 dice", json!({"count": 2}));
        assert!(transfer_arguments(&dice, "roll some dice please").is_empty());
    }

    #[test]
    fn unit_vectors_and_keys() {
        assert!(unit(vec![0.0, 0.0]).is_none());
        let v = unit(vec![3.0, 4.0]).unwrap();
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
        let a = [example("a", json!({}))];
        let b = [example("b", json!({}))];
        assert_ne!(examples_key(&a), examples_key(&b));
    }
}
