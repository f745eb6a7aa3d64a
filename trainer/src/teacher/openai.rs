//! The OpenAI-compatible teacher: `/chat/completions` with the tool specs in
//! OpenAI's function shape, sent through a [`ClientPool`] of keys. `tool_calls`
//! become calls, in order (arguments that are not valid JSON stay a string); a
//! plain `content` answer means no tool.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use toolforge_core::ToolSpec;

use super::pool::{ClientPool, PoolRequest, SlotRef};
use super::prompt::{parse_query_list, query_generation_prompt, routing_instructions};
use super::{QueryRequest, Teacher, TeacherAnswer, TeacherError};

/// The public OpenAI API.
pub const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";

/// A routing teacher speaking the OpenAI chat-completions API through a key pool.
#[derive(Debug, Clone)]
pub struct OpenAiTeacher {
    pool: Arc<ClientPool>,
}

impl OpenAiTeacher {
    /// A teacher sending its requests through `pool`.
    pub fn new(pool: Arc<ClientPool>) -> Self {
        Self { pool }
    }

    /// The key pool (for its request count, models and settings).
    pub fn pool(&self) -> &ClientPool {
        &self.pool
    }

    /// The request for `body` on `slot`: the slot's model goes into the body.
    fn request(slot: SlotRef<'_>, body: &Value) -> PoolRequest {
        let mut body = body.clone();
        body["model"] = json!(slot.model);
        PoolRequest {
            path: "/chat/completions".into(),
            query: Vec::new(),
            headers: vec![(
                "authorization".into(),
                format!("Bearer {}", slot.key.expose()),
            )],
            body,
        }
    }

    /// The label request body for `query` (without `model`, set per slot).
    pub fn label_body(query: &str, tools: &[ToolSpec]) -> Value {
        let mut body = json!({
            "messages": [
                { "role": "system", "content": routing_instructions(tools) },
                { "role": "user", "content": query },
            ],
            "temperature": 0,
        });
        if !tools.is_empty() {
            let tools: Vec<Value> = tools.iter().map(ToolSpec::to_openai).collect();
            body["tools"] = Value::Array(tools);
            body["tool_choice"] = json!("auto");
        }
        body
    }

    /// Reads the calls out of a chat-completions answer.
    pub fn parse_label(&self, body: &Value) -> Result<TeacherAnswer, TeacherError> {
        let message = self.message(body)?;
        let raw = message.to_string();
        let calls = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .map(|calls| calls.iter().map(raw_call).collect())
            .unwrap_or_default();
        Ok(TeacherAnswer { calls, raw })
    }

    fn message<'a>(&self, body: &'a Value) -> Result<&'a Value, TeacherError> {
        let choice = body["choices"]
            .get(0)
            .ok_or_else(|| self.malformed("no choices in the answer".into()))?;
        let message = choice
            .get("message")
            .ok_or_else(|| self.malformed("no message in choices[0]".into()))?;
        let empty = message.get("tool_calls").is_none_or(Value::is_null)
            && message.get("content").is_none_or(Value::is_null);
        if empty && choice["finish_reason"] == "content_filter" {
            return Err(TeacherError::Refused {
                teacher: self.name(),
                reason: "content_filter".into(),
            });
        }
        Ok(message)
    }

    fn malformed(&self, message: String) -> TeacherError {
        TeacherError::Malformed {
            teacher: self.name(),
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
impl Teacher for OpenAiTeacher {
    fn name(&self) -> String {
        format!("openai:{}", self.pool.models().join("+"))
    }

    async fn label(&self, query: &str, tools: &[ToolSpec]) -> Result<TeacherAnswer, TeacherError> {
        let body = Self::label_body(query, tools);
        let reply = self.pool.post(|slot| Self::request(slot, &body)).await?;
        self.parse_label(&reply.body)
    }

    async fn generate_queries(
        &self,
        request: &QueryRequest,
        tools: &[ToolSpec],
    ) -> Result<Vec<String>, TeacherError> {
        let prompt = query_generation_prompt(request, tools)?;
        if request.count == 0 {
            return Ok(Vec::new());
        }
        let body = json!({
            "messages": [{ "role": "user", "content": prompt }],
            "temperature": 1.0,
        });
        let reply = self.pool.post(|slot| Self::request(slot, &body)).await?;
        let text = self.message(&reply.body)?["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut queries = parse_query_list(&text).map_err(|e| self.malformed(e))?;
        queries.truncate(request.count);
        Ok(queries)
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
