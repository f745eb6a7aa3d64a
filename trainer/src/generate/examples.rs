//! Data for any tool from its spec and a handful of example requests: the
//! generator's path for tools it has no templates for (plugins, tools a user
//! registers). Each example's argument values are found in its text; new
//! requests swap in other examples' values for the same argument, vary the
//! lead-in, ending, case and punctuation, and keep only arguments the tool's
//! schema accepts.

use std::collections::HashSet;

use serde_json::{json, Map, Value};
use toolforge_core::{ToolCall, ToolExample, ToolSpec};

use super::rng::Rng;
use super::{normalise, SOURCE};
use crate::Example;

/// Openings a request may get (the example's own text always stays).
const LEADS: &[&str] = &[
    "",
    "",
    "",
    "can you ",
    "could you ",
    "please ",
    "hey, ",
    "i need to ",
    "i want to ",
    "quick one: ",
    "ok so ",
];

/// Openings that already read as a lead-in: no second one goes before them.
const LEAD_WORDS: &[&str] = &[
    "can ", "could ", "would ", "will ", "please", "hey", "hi", "i need", "i want", "i'd",
];

/// Endings a request may get.
const TAILS: &[&str] = &["", "", "", " please", " thanks", " for me", " now", " pls"];

/// Why no data could be made for a tool.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExamplesError {
    /// The tool carries no examples (and none were given).
    #[error("tool `{0}` has no example requests; give some (e.g. --examples FILE)")]
    NoExamples(String),
    /// None of the examples has arguments the tool's schema accepts.
    #[error("no example of tool `{tool}` is valid: {reason}")]
    NoValidExample {
        /// The tool.
        tool: String,
        /// Why the first example was rejected.
        reason: String,
    },
}

/// One piece of an example's text: free text, or the text of an argument value.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Free(String),
    Arg(String),
}

/// An example split into pieces, with its arguments.
#[derive(Debug, Clone)]
struct Parsed {
    pieces: Vec<Piece>,
    arguments: Map<String, Value>,
}

/// The text an argument value is written as, when it can appear in a request.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Splits `query` at the first (case-insensitive) occurrence of each argument's
/// text; arguments not written in the text stay fixed.
fn parse(example: &ToolExample) -> Parsed {
    let mut pieces = vec![Piece::Free(example.query.clone())];
    let mut names: Vec<&String> = example.arguments.keys().collect();
    // Longer values first, so "new york city" is found before "york".
    names.sort_by_key(|name| {
        std::cmp::Reverse(value_text(&example.arguments[*name]).map_or(0, |t| t.len()))
    });
    for name in names {
        let Some(text) = value_text(&example.arguments[name]) else {
            continue;
        };
        let needle = text.to_lowercase();
        let found = pieces
            .iter()
            .enumerate()
            .find_map(|(i, piece)| match piece {
                Piece::Free(free) => free
                    .to_lowercase()
                    .find(&needle)
                    .filter(|&at| {
                        free.is_char_boundary(at) && free.is_char_boundary(at + needle.len())
                    })
                    .map(|at| (i, at)),
                Piece::Arg(_) => None,
            });
        let Some((i, at)) = found else { continue };
        let Piece::Free(free) = pieces[i].clone() else {
            continue;
        };
        let (before, rest) = free.split_at(at);
        let (_, after) = rest.split_at(needle.len());
        let mut replacement = Vec::new();
        if !before.is_empty() {
            replacement.push(Piece::Free(before.to_string()));
        }
        replacement.push(Piece::Arg(name.clone()));
        if !after.is_empty() {
            replacement.push(Piece::Free(after.to_string()));
        }
        pieces.splice(i..=i, replacement);
    }
    Parsed {
        pieces,
        arguments: example.arguments.clone(),
    }
}

/// Makes labelled requests for one tool from its examples.
pub struct ExampleGenerator {
    spec: ToolSpec,
    examples: Vec<Parsed>,
    rng: Rng,
    seen: HashSet<String>,
}

impl ExampleGenerator {
    /// A generator for `spec` from `examples`; examples whose arguments the
    /// schema rejects are left out (an error when none is left).
    pub fn new(spec: ToolSpec, examples: &[ToolExample], seed: u64) -> Result<Self, ExamplesError> {
        if examples.is_empty() {
            return Err(ExamplesError::NoExamples(spec.name.clone()));
        }
        let mut first_error = None;
        let valid: Vec<Parsed> = examples
            .iter()
            .filter(
                |e| match spec.validate(&Value::Object(e.arguments.clone())) {
                    Ok(()) => !e.query.trim().is_empty(),
                    Err(error) => {
                        first_error.get_or_insert_with(|| error.to_string());
                        false
                    }
                },
            )
            .map(parse)
            .collect();
        if valid.is_empty() {
            return Err(ExamplesError::NoValidExample {
                tool: spec.name.clone(),
                reason: first_error.unwrap_or_else(|| "empty queries".into()),
            });
        }
        Ok(Self {
            spec,
            examples: valid,
            rng: Rng::new(seed),
            seen: HashSet::new(),
        })
    }

    /// Up to `n` distinct labelled requests (fewer when the examples do not
    /// vary into that many).
    pub fn generate(&mut self, n: usize) -> Vec<Example> {
        let mut out = Vec::with_capacity(n);
        let mut attempts = 0usize;
        while out.len() < n && attempts < n.saturating_mul(30).max(100) {
            attempts += 1;
            if let Some(example) = self.one() {
                out.push(example);
            }
        }
        out
    }

    fn one(&mut self) -> Option<Example> {
        let index = self.rng.below(self.examples.len());
        let base = self.examples[index].clone();
        let mut arguments = base.arguments.clone();
        let mut text = String::new();
        let mut swapped = false;
        for piece in &base.pieces {
            match piece {
                Piece::Free(free) => text.push_str(free),
                Piece::Arg(name) => {
                    let value = if self.rng.chance(0.7) {
                        self.other_value(name, &arguments[name.as_str()])
                    } else {
                        None
                    };
                    let value = match value {
                        Some(value) => {
                            swapped = true;
                            value
                        }
                        None => arguments[name.as_str()].clone(),
                    };
                    text.push_str(&value_text(&value).unwrap_or_default());
                    arguments.insert(name.clone(), value);
                }
            }
        }
        let (query, style) = self.restyle(text.trim());
        self.spec.validate(&Value::Object(arguments.clone())).ok()?;
        let key = normalise(&query);
        if key.is_empty() || !self.seen.insert(key) {
            return None;
        }
        let template = format!(
            "{}/example/{index}{}",
            self.spec.name,
            if swapped { "+swap" } else { "" }
        );
        Some(Example {
            query,
            calls: vec![ToolCall::new(&self.spec.name, Value::Object(arguments))],
            source: SOURCE.to_string(),
            meta: json!({"category": self.spec.name, "style": style, "template": template}),
            ..Example::default()
        })
    }

    /// Another example's value for argument `name`, different from `current`.
    fn other_value(&mut self, name: &str, current: &Value) -> Option<Value> {
        let values: Vec<Value> = self
            .examples
            .iter()
            .filter_map(|e| e.arguments.get(name))
            .filter(|v| *v != current && value_text(v).is_some())
            .cloned()
            .collect();
        if values.is_empty() {
            None
        } else {
            Some(values[self.rng.below(values.len())].clone())
        }
    }

    /// A lead-in, an ending, case and final punctuation, with the style tags.
    fn restyle(&mut self, text: &str) -> (String, String) {
        let mut tags = Vec::new();
        let lower = text.to_lowercase();
        let led = LEAD_WORDS.iter().any(|w| lower.starts_with(w));
        let lead = if led { "" } else { self.rng.pick_str(LEADS) };
        let polite = lead.contains("please") || lower.contains("please");
        let tail = match self.rng.pick_str(TAILS) {
            " please" | " pls" if polite => "",
            tail => tail,
        };
        let mut body = text.trim_end_matches(['?', '.', '!']).to_string();
        let ending = &text[body.len()..];
        if !lead.is_empty() {
            tags.push("lead");
            let mut chars = body.chars();
            if let Some(first) = chars.next() {
                if first.is_uppercase() && chars.next().is_some_and(char::is_lowercase) {
                    body = first
                        .to_lowercase()
                        .chain(chars_after_first(&body))
                        .collect();
                }
            }
        }
        let mut query = format!("{lead}{body}{tail}");
        if !tail.is_empty() {
            tags.push("tail");
        }
        match self.rng.below(3) {
            0 => query.push_str(ending),
            1 => {
                tags.push("nopunct");
            }
            _ => query.push_str(if ending.is_empty() { "?" } else { ending }),
        }
        if self.rng.chance(0.35) {
            query = query.to_lowercase();
            tags.push("lower");
        }
        let style = if tags.is_empty() {
            "clean".to_string()
        } else {
            tags.join("+")
        };
        (query, style)
    }
}

fn chars_after_first(text: &str) -> std::str::Chars<'_> {
    let mut chars = text.chars();
    chars.next();
    chars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ToolSpec {
        ToolSpec {
            name: "dice".into(),
            description: "Rolls dice.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "count": {"type": "integer", "minimum": 1, "maximum": 100},
                    "sides": {"type": "integer", "minimum": 2}
                },
                "required": ["count", "sides"]
            }),
        }
    }

    fn example(query: &str, count: i64, sides: i64) -> ToolExample {
        ToolExample {
            query: query.into(),
            arguments: json!({"count": count, "sides": sides})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn varies_examples_into_valid_labelled_requests() {
        let examples = [
            example("roll 3 dice with 20 sides", 3, 20),
            example("Throw 2 six-sided dice, 6 sides each", 2, 6),
            example("roll 1 die with 12 sides", 1, 12),
        ];
        let mut generator = ExampleGenerator::new(spec(), &examples, 7).unwrap();
        let out = generator.generate(40);
        assert!(out.len() >= 20, "only {} requests", out.len());
        let mut keys = HashSet::new();
        for e in &out {
            assert!(keys.insert(normalise(&e.query)), "repeated {}", e.query);
            assert_eq!(e.calls.len(), 1);
            let args = &e.calls[0].arguments;
            spec().validate(&Value::Object(args.clone())).unwrap();
            // Arguments written in the text follow the text.
            let count = args["count"].to_string();
            assert!(e.query.contains(&count), "{} lacks {count}", e.query);
        }
        // Values move between examples.
        assert!(out
            .iter()
            .any(|e| e.query.contains("roll 3") && e.calls[0].arguments["sides"] != json!(20)));
        // Same seed, same data.
        let again = ExampleGenerator::new(spec(), &examples, 7)
            .unwrap()
            .generate(40);
        assert_eq!(
            out.iter().map(|e| &e.query).collect::<Vec<_>>(),
            again.iter().map(|e| &e.query).collect::<Vec<_>>()
        );
    }

    #[test]
    fn refuses_tools_without_usable_examples() {
        assert_eq!(
            ExampleGenerator::new(spec(), &[], 1).err(),
            Some(ExamplesError::NoExamples("dice".into()))
        );
        let bad = [example("roll 0 dice", 0, 6)];
        assert!(matches!(
            ExampleGenerator::new(spec(), &bad, 1).err(),
            Some(ExamplesError::NoValidExample { .. })
        ));
    }
}
