//! The Gemini provider: `generateContent` with function declarations built from
//! the tool specs (converted to Gemini's schema dialect by [`to_gemini_schema`]),
//! sent through a [`ClientPool`] of keys. `functionCall` parts become calls, in
//! order; text parts (thoughts aside) become the answer's text.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use toolforge_core::ToolSpec;

use crate::pool::{ClientPool, PoolRequest, SlotRef};
use crate::{temperature_json, ChatModel, ChatReply, ChatRequest, LlmError, Role};

/// The public Gemini API.
pub const GEMINI_DEFAULT_BASE: &str = "https://generativelanguage.googleapis.com";

/// Schema keys Gemini accepts and that pass through unchanged.
const KEPT_KEYS: &[&str] = &[
    "description",
    "title",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "propertyOrdering",
    "nullable",
];

/// Converts a JSON schema to Gemini's OpenAPI-style subset: drops what Gemini
/// rejects (`$schema`, `additionalProperties`, `default`, `examples`, `format`
/// other than `enum`/`date-time`, non-string enums, ...), turns nullable types
/// (`"type": ["string", "null"]`, a `null` member of `anyOf`, `null` in an enum)
/// into `"nullable": true`, and maps `oneOf` to `anyOf` and a string `const` to an enum.
pub fn to_gemini_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return json!({});
    };
    let mut out = Map::new();
    let mut nullable = false;
    match map.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), Value::String(t.clone()));
        }
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            nullable |= names.contains(&"null");
            let concrete: Vec<&str> = names.into_iter().filter(|t| *t != "null").collect();
            match concrete.as_slice() {
                [] => {}
                [single] => {
                    out.insert("type".into(), json!(single));
                }
                several => {
                    let members = several.iter().map(|t| json!({ "type": t })).collect();
                    out.insert("anyOf".into(), Value::Array(members));
                }
            }
        }
        _ => {}
    }
    for (key, value) in map {
        match key.as_str() {
            k if KEPT_KEYS.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            "format" if matches!(value.as_str(), Some("enum" | "date-time")) => {
                out.insert(key.clone(), value.clone());
            }
            "enum" => {
                let options = value.as_array().cloned().unwrap_or_default();
                nullable |= options.iter().any(Value::is_null);
                let options: Vec<Value> = options.into_iter().filter(|v| !v.is_null()).collect();
                if !options.is_empty() && options.iter().all(Value::is_string) {
                    out.insert("enum".into(), Value::Array(options));
                    out.entry("type").or_insert_with(|| json!("string"));
                }
            }
            "const" if value.is_string() => {
                out.insert("enum".into(), json!([value]));
                out.entry("type").or_insert_with(|| json!("string"));
            }
            "properties" => {
                if let Value::Object(properties) = value {
                    let converted = properties
                        .iter()
                        .map(|(name, sub)| (name.clone(), to_gemini_schema(sub)))
                        .collect();
                    out.insert(key.clone(), Value::Object(converted));
                }
            }
            "items" => {
                out.insert(key.clone(), to_gemini_schema(value));
            }
            "anyOf" | "oneOf" | "allOf" => {
                let members = value.as_array().cloned().unwrap_or_default();
                let mut kept = Vec::new();
                for member in &members {
                    if member.get("type").and_then(Value::as_str) == Some("null") {
                        nullable = true;
                    } else {
                        kept.push(to_gemini_schema(member));
                    }
                }
                if kept.len() == 1 || (key == "allOf" && !kept.is_empty()) {
                    for member in kept {
                        if let Value::Object(fields) = member {
                            for (k, v) in fields {
                                if k == "nullable" {
                                    nullable |= v == Value::Bool(true);
                                } else {
                                    out.entry(k).or_insert(v);
                                }
                            }
                        }
                    }
                } else if !kept.is_empty() {
                    out.insert("anyOf".into(), Value::Array(kept));
                }
            }
            _ => {}
        }
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    Value::Object(out)
}

/// Gemini's declaration of one tool; `parameters` is left out when the tool takes
/// no arguments (Gemini rejects an object schema without properties).
fn function_declaration(tool: &ToolSpec) -> Value {
    let mut declaration = json!({ "name": tool.name, "description": tool.description });
    let parameters = to_gemini_schema(&tool.parameters);
    let has_properties = parameters
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    if has_properties {
        declaration["parameters"] = parameters;
    }
    declaration
}

/// A chat model speaking the Gemini API through a key pool.
#[derive(Debug, Clone)]
pub struct Gemini {
    pool: Arc<ClientPool>,
}

impl Gemini {
    /// A model sending its requests through `pool`.
    pub fn new(pool: Arc<ClientPool>) -> Self {
        Self { pool }
    }

    /// The key pool (for its request count, models and settings).
    pub fn pool(&self) -> &ClientPool {
        &self.pool
    }

    /// The `generateContent` request for `body` on `slot`.
    fn request(slot: SlotRef<'_>, body: &Value) -> PoolRequest {
        let model = slot.model.trim_start_matches("models/");
        PoolRequest {
            path: format!("/v1beta/models/{model}:generateContent"),
            query: vec![("key".into(), slot.key.expose().to_string())],
            headers: Vec::new(),
            body: body.clone(),
        }
    }

    /// The request body: user and assistant turns as `contents`; the system text
    /// and any system messages of the conversation as `systemInstruction`.
    pub fn body(request: &ChatRequest) -> Value {
        let contents: Vec<Value> = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| {
                let role = if m.role == Role::Assistant {
                    "model"
                } else {
                    "user"
                };
                json!({ "role": role, "parts": [{ "text": m.content }] })
            })
            .collect();
        let system: Vec<&str> = request
            .system
            .iter()
            .map(String::as_str)
            .chain(
                request
                    .messages
                    .iter()
                    .filter(|m| m.role == Role::System)
                    .map(|m| m.content.as_str()),
            )
            .collect();
        let mut generation = json!({ "temperature": temperature_json(request.temperature) });
        if request.json_answer {
            generation["responseMimeType"] = json!("application/json");
        }
        let mut body = json!({ "contents": contents, "generationConfig": generation });
        if !system.is_empty() {
            body["systemInstruction"] = json!({ "parts": [{ "text": system.join("\n\n") }] });
        }
        if !request.tools.is_empty() {
            let declarations: Vec<Value> = request.tools.iter().map(function_declaration).collect();
            body["tools"] = json!([{ "functionDeclarations": declarations }]);
            body["toolConfig"] = json!({ "functionCallingConfig": { "mode": "AUTO" } });
        }
        body
    }

    /// Reads calls and text out of a `generateContent` answer.
    pub fn parse(&self, body: &Value) -> Result<ChatReply, LlmError> {
        let candidate = self.candidate(body)?;
        let raw = candidate
            .get("content")
            .filter(|c| c.get("parts").is_some())
            .unwrap_or(candidate)
            .to_string();
        let finish = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(parts) = candidate["content"]["parts"].as_array() else {
            return match finish {
                // The model tried to call but produced no parsable call: keep it, as a
                // string, so the filters count it as invalid.
                "MALFORMED_FUNCTION_CALL" => {
                    let message = candidate
                        .get("finishMessage")
                        .and_then(Value::as_str)
                        .unwrap_or(finish);
                    Ok(ChatReply {
                        text: String::new(),
                        calls: vec![Value::String(message.to_string())],
                        raw,
                    })
                }
                "" | "STOP" => Ok(ChatReply {
                    text: String::new(),
                    calls: Vec::new(),
                    raw,
                }),
                "SAFETY" | "PROHIBITED_CONTENT" | "BLOCKLIST" | "SPII" | "RECITATION" => {
                    Err(LlmError::Refused {
                        model: self.name(),
                        reason: finish.to_string(),
                    })
                }
                other => Err(self.malformed(format!("no content parts (finishReason {other})"))),
            };
        };
        let calls = parts
            .iter()
            .filter_map(|part| part.get("functionCall"))
            .map(|call| {
                json!({
                    "tool": call.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": call.get("args").cloned().unwrap_or_else(|| json!({})),
                })
            })
            .collect();
        let text = parts
            .iter()
            .filter(|p| p.get("thought") != Some(&Value::Bool(true)))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        Ok(ChatReply { text, calls, raw })
    }

    fn candidate<'a>(&self, body: &'a Value) -> Result<&'a Value, LlmError> {
        match body["candidates"].get(0) {
            Some(candidate) => Ok(candidate),
            None => match body["promptFeedback"]["blockReason"].as_str() {
                Some(reason) => Err(LlmError::Refused {
                    model: self.name(),
                    reason: reason.to_string(),
                }),
                None => Err(self.malformed("no candidates in the answer".into())),
            },
        }
    }

    fn malformed(&self, message: String) -> LlmError {
        LlmError::Malformed {
            model: self.name(),
            message,
        }
    }
}

#[async_trait]
impl ChatModel for Gemini {
    fn name(&self) -> String {
        format!("gemini:{}", self.pool.models().join("+"))
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
    use schemars::JsonSchema;
    use serde::Deserialize;
    use toolforge_core::schema_for;

    #[test]
    fn strips_unsupported_keys_and_keeps_structure() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "required": ["when", "n"],
            "properties": {
                "when": {"type": "string", "format": "date-time", "default": "now"},
                "n": {"type": "integer", "format": "uint32", "minimum": 0, "examples": [3]},
                "tags": {"type": "array", "items": {"type": "string", "format": "email"}}
            }
        });
        assert_eq!(
            to_gemini_schema(&schema),
            json!({
                "type": "object",
                "required": ["when", "n"],
                "properties": {
                    "when": {"type": "string", "format": "date-time"},
                    "n": {"type": "integer", "minimum": 0},
                    "tags": {"type": "array", "items": {"type": "string"}}
                }
            })
        );
    }

    #[test]
    fn nullable_types_anyof_enums_and_consts() {
        assert_eq!(
            to_gemini_schema(&json!({"type": ["string", "null"], "description": "d"})),
            json!({"type": "string", "nullable": true, "description": "d"})
        );
        assert_eq!(
            to_gemini_schema(
                &json!({"anyOf": [{"type": "integer", "format": "int64"}, {"type": "null"}]})
            ),
            json!({"type": "integer", "nullable": true})
        );
        assert_eq!(
            to_gemini_schema(&json!({"oneOf": [{"type": "integer"}, {"type": "string"}]})),
            json!({"anyOf": [{"type": "integer"}, {"type": "string"}]})
        );
        assert_eq!(
            to_gemini_schema(&json!({"type": ["number", "string"]})),
            json!({"anyOf": [{"type": "number"}, {"type": "string"}]})
        );
        assert_eq!(
            to_gemini_schema(&json!({"enum": ["c", "f", null]})),
            json!({"type": "string", "enum": ["c", "f"], "nullable": true})
        );
        assert_eq!(
            to_gemini_schema(&json!({"type": "integer", "enum": [1, 2]})),
            json!({"type": "integer"})
        );
        assert_eq!(
            to_gemini_schema(&json!({"const": "x"})),
            json!({"type": "string", "enum": ["x"]})
        );
        assert_eq!(to_gemini_schema(&json!(true)), json!({}));
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Args {
        /// Where.
        location: String,
        /// When, if said.
        date: Option<String>,
        /// How many.
        max_results: Option<u32>,
    }

    #[test]
    fn generated_tool_schemas_convert_cleanly() {
        let converted = to_gemini_schema(&schema_for::<Args>());
        assert_eq!(converted["type"], "object");
        assert!(converted.get("additionalProperties").is_none());
        assert_eq!(
            converted["properties"]["date"],
            json!({"type": "string", "nullable": true, "description": "When, if said."})
        );
        assert_eq!(converted["properties"]["max_results"]["type"], "integer");
        assert_eq!(converted["properties"]["max_results"]["nullable"], true);
        assert!(converted["properties"]["max_results"]
            .get("format")
            .is_none());
        assert_eq!(converted["required"], json!(["location"]));
    }

    #[test]
    fn argumentless_tools_are_declared_without_parameters() {
        let tool = ToolSpec {
            name: "now".into(),
            description: "d".into(),
            parameters: json!({"type": "object", "properties": {}}),
        };
        assert_eq!(
            function_declaration(&tool),
            json!({"name": "now", "description": "d"})
        );
    }
}
