//! The write-up's own kind of router: an instruct LLM that writes the tool
//! call, here on a CPU from a GGUF file (SmolLM2, Llama, Qwen2) or a Hugging
//! Face Qwen2 folder of safetensors, with an optional PEFT LoRA adapter merged
//! at load. The prompt is
//! the Qwen2.5 / Hermes tool template rendered from the registered tools (the
//! trainer's `qwen` export renders the same), so a newly registered tool is
//! routable at once. Greedy decoding with the KV cache; the system-and-tools
//! prefix is computed once per tool set and forked for each query (where the
//! weights can fork). With
//! constraints (the default) a token mask keeps the answer inside the grammar
//! of valid calls, so its output always parses; a first token outside the
//! grammar means a direct answer. The model loads on first use; any failure
//! abstains, so a chain falls back.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Map, Value};
use toolforge_core::{RouteContext, RouteDecision, RouteError, Router, ToolCall};
use toolforge_model::causal_lm::CausalLm;
use toolforge_model::chat;
use toolforge_model::constrain::{Cursor, DecisionGrammar};
use toolforge_model::lora::LoraAdapter;

/// Tokens generated at most for one answer.
pub const MAX_NEW_TOKENS: usize = 160;

/// A routing stage backed by a generative model.
pub struct GenerativeRouter {
    path: PathBuf,
    adapter: Option<PathBuf>,
    constrained: bool,
    require_call: bool,
    max_new_tokens: usize,
    model: Arc<OnceLock<Result<Loaded, String>>>,
}

/// The loaded model and what decoding needs of its vocabulary.
struct Loaded {
    /// The model with an empty cache (used when prefixes cannot be forked).
    base: Mutex<CausalLm>,
    /// Each token's bytes, and whether it is special.
    tokens: Vec<(Vec<u8>, bool)>,
    end_tokens: Vec<u32>,
    /// The last tool set's system turn and the model after it, to fork.
    prefix: Mutex<Option<(String, Arc<CausalLm>)>>,
    version: String,
}

/// How one answer was produced, for traces and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Prompt tokens run (after the cached prefix).
    pub prompt_tokens: usize,
    /// Time to run them, in microseconds.
    pub prefill_us: u64,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Time to generate them, in microseconds.
    pub decode_us: u64,
}

impl GenerativeRouter {
    /// A router over the model at `path` (a GGUF file or a Hugging Face Qwen2
    /// folder), constrained.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            adapter: None,
            constrained: true,
            require_call: false,
            max_new_tokens: MAX_NEW_TOKENS,
            model: Arc::new(OnceLock::new()),
        }
    }

    /// With `false`, the model writes freely and unparsable answers abstain
    /// (the write-up's behaviour, for comparison).
    pub fn constrained(mut self, constrained: bool) -> Self {
        self.constrained = constrained;
        self
    }

    /// With `true`, the answer must call a tool (no direct answer): for
    /// labeling requests known to need one.
    pub fn require_call(mut self, require: bool) -> Self {
        self.require_call = require;
        self
    }

    /// A PEFT LoRA adapter folder (`adapter_config.json`,
    /// `adapter_model.safetensors`) merged into the model at load.
    pub fn adapter(mut self, adapter: Option<PathBuf>) -> Self {
        self.adapter = adapter;
        self
    }

    /// The model file or folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn loaded(&self) -> Result<&Loaded, RouteError> {
        self.model
            .get_or_init(|| load(&self.path, self.adapter.as_deref()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| RouteError::Unavailable(e.clone()))
    }

    /// Routes one query, blocking (the model runs on this thread); also returns
    /// how long the prompt and the generation took.
    pub fn route_blocking(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<(Option<RouteDecision>, Timings), RouteError> {
        let loaded = self.loaded()?;
        let failed = |e: toolforge_model::causal_lm::LmError| RouteError::Failed(e.to_string());
        let system = chat::system_turn(&context.tools, chat::DEFAULT_SYSTEM_PROMPT);
        let user = chat::prompt("", query);
        let (tokenizer, max_positions) = loaded
            .base
            .lock()
            .map(|model| (Arc::clone(model.tokenizer()), model.max_positions()))
            .map_err(|_| RouteError::Failed("model lock poisoned".into()))?;
        let needed =
            tokenizer.encode(&system).len() + tokenizer.encode(&user).len() + self.max_new_tokens;
        if needed > max_positions {
            return Err(RouteError::Failed(format!(
                "the prompt with the tools and {} tokens to answer needs {needed} positions; the model runs {max_positions}",
                self.max_new_tokens
            )));
        }
        let mut timings = Timings::default();
        let (mut model, logits) = match self.prefixed(loaded, &system)? {
            Some(mut model) => {
                let tokens = model.tokenizer().encode(&user);
                timings.prompt_tokens = tokens.len();
                let start = Instant::now();
                let logits = model.step(&tokens).map_err(failed)?;
                timings.prefill_us = start.elapsed().as_micros() as u64;
                (model, logits)
            }
            None => {
                let mut model = loaded
                    .base
                    .lock()
                    .map_err(|_| RouteError::Failed("model lock poisoned".into()))?;
                model.reset();
                let tokens = model.tokenizer().encode(&format!("{system}{user}"));
                timings.prompt_tokens = tokens.len();
                let start = Instant::now();
                let logits = model.step(&tokens).map_err(failed)?;
                timings.prefill_us = start.elapsed().as_micros() as u64;
                let decided = self.decode(loaded, &mut model, logits, context, &mut timings);
                return decided.map(|d| (d, timings));
            }
        };
        let decided = self.decode(loaded, &mut model, logits, context, &mut timings);
        decided.map(|d| (d, timings))
    }

    /// A fork of the model after `system`, computing it once per tool set;
    /// `None` when the architecture cannot fork.
    fn prefixed(&self, loaded: &Loaded, system: &str) -> Result<Option<CausalLm>, RouteError> {
        let mut prefix = loaded
            .prefix
            .lock()
            .map_err(|_| RouteError::Failed("prefix lock poisoned".into()))?;
        if let Some((text, model)) = prefix.as_ref() {
            if text == system {
                return Ok(model.fork());
            }
        }
        let base = loaded
            .base
            .lock()
            .map_err(|_| RouteError::Failed("model lock poisoned".into()))?;
        let Some(mut model) = base.fork() else {
            return Ok(None);
        };
        model.reset();
        let tokens = model.tokenizer().encode(system);
        let start = Instant::now();
        model
            .step(&tokens)
            .map_err(|e| RouteError::Failed(e.to_string()))?;
        tracing::debug!(
            tokens = tokens.len(),
            ms = start.elapsed().as_millis() as u64,
            "tool prefix computed"
        );
        let fork = model.fork();
        *prefix = Some((system.to_string(), Arc::new(model)));
        Ok(fork)
    }

    /// Greedy decoding from `logits` (the prompt's last position).
    fn decode(
        &self,
        loaded: &Loaded,
        model: &mut CausalLm,
        mut logits: Vec<f32>,
        context: &RouteContext,
        timings: &mut Timings,
    ) -> Result<Option<RouteDecision>, RouteError> {
        let grammar = DecisionGrammar::new(&context.tools);
        let mut cursor = grammar.start();
        let mut text = Vec::new();
        let mut log_probs = Vec::new();
        let start = Instant::now();
        for step in 0..self.max_new_tokens {
            if self.constrained && step > 0 {
                let closing = cursor.shortest_completion();
                if step + closing.len() >= self.max_new_tokens {
                    // Out of budget: close the open call the shortest way.
                    text.extend(closing);
                    break;
                }
            }
            let probabilities = softmax(&logits);
            let best = best_allowed(&logits, |_| true).unwrap_or(0);
            let chosen = if !self.constrained {
                best
            } else if step == 0 && !self.require_call && !self.allowed(loaded, &cursor, best) {
                // The model does not open a call: it answers directly.
                timings.decode_us = start.elapsed().as_micros() as u64;
                let confidence = f64::from(probabilities[best]);
                return Ok(Some(RouteDecision {
                    calls: Vec::new(),
                    router: self.name().to_string(),
                    confidence: Some(round4(confidence)),
                    unsupported: false,
                }));
            } else {
                best_allowed(&logits, |id| self.allowed(loaded, &cursor, id)).ok_or_else(|| {
                    RouteError::Failed("no token of the vocabulary continues the grammar".into())
                })?
            };
            log_probs.push(f64::from(probabilities[chosen].max(1e-12)).ln());
            timings.generated_tokens += 1;
            let id = chosen as u32;
            if loaded.end_tokens.contains(&id) {
                break;
            }
            let (bytes, _) = &loaded.tokens[chosen];
            if self.constrained && !cursor.advance(bytes) {
                return Err(RouteError::Failed(
                    "the token mask let through a token the grammar refuses".into(),
                ));
            }
            text.extend_from_slice(bytes);
            logits = model
                .step(&[id])
                .map_err(|e| RouteError::Failed(e.to_string()))?;
        }
        timings.decode_us = start.elapsed().as_micros() as u64;
        let text = String::from_utf8_lossy(&text).into_owned();
        tracing::debug!(%text, ?timings, "generated");
        let confidence = (log_probs.iter().sum::<f64>() / log_probs.len().max(1) as f64).exp();
        let Some(calls) = parse_calls(&text, context) else {
            // Unconstrained output that does not parse, or is cut off: abstain.
            return Ok(None);
        };
        Ok(Some(RouteDecision {
            calls,
            router: self.name().to_string(),
            confidence: Some(round4(confidence)),
            unsupported: false,
        }))
    }

    /// Whether token `id` may come next under the grammar.
    fn allowed(&self, loaded: &Loaded, cursor: &Cursor, id: usize) -> bool {
        let (bytes, special) = &loaded.tokens[id];
        if loaded.end_tokens.contains(&(id as u32)) {
            return cursor.can_end();
        }
        !special && cursor.allows(bytes)
    }
}

fn load(path: &Path, adapter: Option<&Path>) -> Result<Loaded, String> {
    let lora = adapter
        .map(LoraAdapter::read)
        .transpose()
        .map_err(|e| e.to_string())?;
    let model = CausalLm::load(path, lora.as_ref()).map_err(|e| e.to_string())?;
    let tokenizer = Arc::clone(model.tokenizer());
    let tokens = (0..tokenizer.vocab_size() as u32)
        .map(|id| (tokenizer.token_bytes(id), tokenizer.is_special(id)))
        .collect();
    let end_tokens = model.end_tokens().to_vec();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let name = |path: &Path| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let stem = match adapter {
        Some(adapter) => format!("{}+{}", name(path), name(adapter)),
        None => name(path),
    };
    Ok(Loaded {
        base: Mutex::new(model),
        tokens,
        end_tokens,
        prefix: Mutex::new(None),
        version: format!("generative-{stem}-{size}"),
    })
}

/// The calls of an answer: every `<tool_call>` block's JSON, naming a
/// registered tool with arguments its schema accepts, an exact repeat of an
/// earlier call dropped (small models loop on their last call). `None` when a
/// block does not parse or validate (an unconstrained model's failure); no
/// block at all is a direct answer.
pub fn parse_calls(text: &str, context: &RouteContext) -> Option<Vec<ToolCall>> {
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("<tool_call>") {
        // The JSON is read as JSON, so a string value may hold `</tool_call>`.
        let body = rest[at + "<tool_call>".len()..].trim_start();
        let mut values = serde_json::Deserializer::from_str(body).into_iter::<Value>();
        let value = values.next()?.ok()?;
        let after = &body[values.byte_offset()..];
        rest = after.trim_start().strip_prefix("</tool_call>")?;
        let name = value["name"].as_str()?;
        let arguments: Map<String, Value> = match &value["arguments"] {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            _ => return None,
        };
        let spec = context.tools.iter().find(|t| t.name == name)?;
        spec.validate(&Value::Object(arguments.clone())).ok()?;
        let call = ToolCall {
            tool: name.to_string(),
            arguments,
        };
        if !calls.contains(&call) {
            calls.push(call);
        }
    }
    Some(calls)
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The id with the highest logit among those `keep` accepts, trying ids from
/// the most likely down (the grammar is asked about few of them).
fn best_allowed(logits: &[f32], keep: impl Fn(usize) -> bool) -> Option<usize> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_unstable_by(|a, b| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b)));
    order.into_iter().find(|id| keep(*id))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[async_trait]
impl Router for GenerativeRouter {
    fn name(&self) -> &str {
        "generative"
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        let router = Self {
            path: self.path.clone(),
            adapter: self.adapter.clone(),
            constrained: self.constrained,
            require_call: self.require_call,
            max_new_tokens: self.max_new_tokens,
            model: Arc::clone(&self.model),
        };
        let query = query.to_string();
        let context = context.clone();
        tokio::task::spawn_blocking(move || router.route_blocking(&query, &context).map(|(d, _)| d))
            .await
            .map_err(|e| RouteError::Failed(format!("the generative router stopped: {e}")))?
    }

    fn model_version(&self) -> Option<String> {
        self.model
            .get()
            .and_then(|loaded| loaded.as_ref().ok())
            .map(|loaded| loaded.version.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolforge_core::ToolSpec;

    #[test]
    fn calls_are_read_as_json_so_strings_may_hold_the_tags() {
        let context = RouteContext::new(vec![ToolSpec {
            name: "web_search".into(),
            description: "Searches.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
        }]);
        let text = "<tool_call>\n{\"name\": \"web_search\", \"arguments\": {\"query\": \"what is </tool_call>\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"web_search\", \"arguments\": {\"query\": \"rust\"}}\n</tool_call>";
        let calls = parse_calls(text, &context).unwrap();
        assert_eq!(calls.len(), 2);
        let repeated = "<tool_call>\n{\"name\": \"web_search\", \"arguments\": {\"query\": \"rust\"}}\n</tool_call>\n".repeat(3);
        assert_eq!(parse_calls(&repeated, &context).unwrap().len(), 1);
        assert_eq!(calls[0].arguments["query"], "what is </tool_call>");
        assert_eq!(
            parse_calls("Sure! The answer is 4.", &context),
            Some(vec![])
        );
        assert_eq!(
            parse_calls(
                "<tool_call>\n{\"name\": \"teleport\"}\n</tool_call>",
                &context
            ),
            None
        );
        assert_eq!(
            parse_calls("<tool_call>\n{\"name\": \"web_search\", \"arg", &context),
            None
        );
    }
}
