//! The OpenAI-compatible provider: `/chat/completions` (OpenAI, vLLM, llama.cpp
//! server, Ollama, ...) with the tool specs in OpenAI's function shape, sent
//! through a [`ClientPool`] of keys. `tool_calls` become calls, in order
//! (arguments that are not valid JSON stay a string); `content` is the text.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use toolforge_core::ToolSpec;

use crate::pool::{ClientPool, PoolRequest, SlotRef};
use crate::{temperature_json, ChatModel, ChatReply, ChatRequest, LlmError, Role};

/// The public OpenAI API.
pub const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";

/// A chat model speaking the OpenAI chat-completions API through a key pool.
#[derive(Debug, Clone)]
pub struct OpenAi {
    pool: Arc<ClientPool>,
}

impl OpenAi {
    /// A model sending its requests through `pool`.
    pub fn new(pool: Arc<ClientPool>) -> Self {
        Self { pool }
    }

    /// The key pool (for its request count, models and settings).
    pub fn pool(&self) -> &ClientPool {
        &self.pool
    }

    /// The request for `body` on `slot`: the slot's model goes into the body; a
    /// slot without a key (a local server) sends no `authorization`.
    fn request(slot: SlotRef<'_>, body: &Value) -> PoolRequest {
        let mut body = body.clone();
        body["model"] = json!(slot.model);
        let key = slot.key.expose();
        PoolRequest {
            path: "/chat/completions".into(),
            query: Vec::new(),
            headers: if key.is_empty() {
                Vec::new()
            } else {
                vec![("authorization".into(), format!("Bearer {key}"))]
            },
            body,
        }
    }

    /// The request body (without `model`, set per slot).
    pub fn body(request: &ChatRequest) -> Value {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = &request.system {
            messages.push(json!({ "role": "system", "content": system }));
        }
        for message in &request.messages {
            let role = match message.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({ "role": role, "content": message.content }));
        }
        let mut body = json!({
            "messages": messages,
            "temperature": temperature_json(request.temperature),
        });
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request.tools.iter().map(ToolSpec::to_openai).collect();
            body["tools"] = Value::Array(tools);
            body["tool_choice"] = json!("auto");
        }
        body
    }

    /// Reads calls and text out of a chat-completions answer.
    pub fn parse(&self, body: &Value) -> Result<ChatReply, LlmError> {
        let message = self.message(body)?;
        let raw = message.to_string();
        let calls = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .map(|calls| calls.iter().map(raw_call).collect())
            .unwrap_or_default();
        let text = message
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(ChatReply { text, calls, raw })
    }

    fn message<'a>(&self, body: &'a Value) -> Result<&'a Value, LlmError> {
        let choice = body["choices"]
            .get(0)
            .ok_or_else(|| self.malformed("no choices in the answer".into()))?;
        let message = choice
            .get("message")
            .ok_or_else(|| self.malformed("no message in choices[0]".into()))?;
        let empty = message.get("tool_calls").is_none_or(Value::is_null)
            && message.get("content").is_none_or(Value::is_null);
        if empty && choice["finish_reason"] == "content_filter" {
            return Err(LlmError::Refused {
                model: self.name(),
                reason: "content_filter".into(),
            });
        }
        Ok(message)
    }

    fn malformed(&self, message: String) -> LlmError {
        LlmError::Malformed {
            model: self.name(),
            message,
        }
    }
}

/// `{"type":"function","function":{"name","arguments":"<JSON>"}}` ->
/// `{"tool","arguments"}`; arguments that do not parse are kept as the string.
fn raw_call(call: &Value) -> Value {
    let function = &call["function"];
    let arguments = match function.get("arguments") {
        Some(Value::String(text)) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
        }
        Some(other) => other.clone(),
        None => json!({}),
    };
    json!({
        "tool": function.get("name").cloned().unwrap_or(Value::Null),
        "arguments": arguments,
    })
}

#[async_trait]
impl ChatModel for OpenAi {
    fn name(&self) -> String {
        format!("openai:{}", self.pool.models().join("+"))
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        let body = Self::body(request);
        let reply = self.pool.post(|slot| Self::request(slot, &body)).await?;
        self.parse(&reply.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_keep_bad_arguments_as_strings() {
        let call = json!({"id": "c1", "type": "function",
            "function": {"name": "weather", "arguments": "{\"location\": \"Oslo\""}});
        assert_eq!(
            raw_call(&call),
            json!({"tool": "weather", "arguments": "{\"location\": \"Oslo\""})
        );
        let object_args = json!({"type": "function",
            "function": {"name": "calculator", "arguments": {"expression": "2+2"}}});
        assert_eq!(
            raw_call(&object_args),
            json!({"tool": "calculator", "arguments": {"expression": "2+2"}})
        );
    }
}
