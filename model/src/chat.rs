//! The Qwen2.5 / Hermes tool-calling chat template, rendered from tool specs:
//! the system turn with its `<tools>` section, the user turn, and the
//! `<tool_call>` blocks of an answer. One renderer for the trainer's `qwen`
//! export and the generative router's prompt, so a model trained on the export
//! is prompted at inference exactly as it was trained.

use serde_json::{Map, Value};
use toolforge_core::ToolSpec;

/// The assistant's reply in the training data when no tool is needed.
pub const DIRECT_ANSWER: &str = "(answer directly)";

/// The system prompt of every exported conversation, unless overridden.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You route requests for a tool-using assistant. \
Call the tools the user's query needs, with arguments taken from the query, one call per \
independent request; call no tool when the query can be answered directly.";

/// The prompt for `query`, up to the open assistant turn, after a system turn
/// from [`system_turn`].
pub fn prompt(system_turn: &str, query: &str) -> String {
    format!("{system_turn}<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n")
}

/// `{"name": "<tool>", "arguments": {...}}` as the Qwen template writes it.
pub fn call_json(tool: &str, arguments: &Map<String, Value>) -> String {
    format!(
        "{{\"name\": {}, \"arguments\": {}}}",
        py_json(&Value::String(tool.to_string())),
        py_json(&Value::Object(arguments.clone()))
    )
}

/// The system turn of the Qwen2.5 template: the system prompt, then (when there
/// are tools) its `# Tools` section with one function signature per line.
pub fn system_turn(tools: &[ToolSpec], system_prompt: &str) -> String {
    if tools.is_empty() {
        return format!("<|im_start|>system\n{system_prompt}<|im_end|>\n");
    }
    let mut text = format!(
        "<|im_start|>system\n{system_prompt}\n\n# Tools\n\nYou may call one or more functions \
         to assist with the user query.\n\nYou are provided with function signatures within \
         <tools></tools> XML tags:\n<tools>"
    );
    for spec in tools {
        text.push('\n');
        text.push_str(&format!(
            "{{\"type\": \"function\", \"function\": {{\"name\": {}, \"description\": {}, \"parameters\": {}}}}}",
            py_json(&Value::String(spec.name.clone())),
            py_json(&Value::String(spec.description.clone())),
            py_json(&spec.parameters)
        ));
    }
    text.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and \
         arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": \
         <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n",
    );
    text
}

/// JSON as Python's `json.dumps` writes it by default (what the chat template's
/// `tojson` produces): `", "` and `": "` separators, non-ASCII kept.
pub fn py_json(value: &Value) -> String {
    let mut out = String::new();
    write_py_json(value, &mut out);
    out
}

fn write_py_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_py_json(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
