//! Exporters from dataset [`Example`]s to fine-tuning formats, one renderer each,
//! all driven by the same [`ToolSpec`]s: OpenAI chat fine-tuning JSONL, TRL
//! conversational messages, LLaMA-Factory ShareGPT, and text rendered with the
//! Qwen2.5 (Hermes-style) chat template.
//!
//! The target is the routing decision: the assistant turn carries the tool calls,
//! or a short direct-answer marker when no tool is needed. ShareGPT lines also get
//! the real observation and final answer when the example's `meta` carries them
//! (`tool_outputs`: one output per call, and `answer`, as logs-derived examples do).

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use serde_json::{json, Map, Value};
use toolforge_core::ToolSpec;

use toolforge_model::chat;

use crate::dataset::Example;

pub use toolforge_model::chat::{py_json, DEFAULT_SYSTEM_PROMPT, DIRECT_ANSWER};

/// A fine-tuning format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// OpenAI chat fine-tuning JSONL (`messages`, `tools`, `parallel_tool_calls`);
    /// call arguments are JSON strings.
    OpenAi,
    /// TRL / Hugging Face conversational format; call arguments are JSON objects.
    Trl,
    /// LLaMA-Factory ShareGPT (`conversations` with human / function_call /
    /// observation / gpt turns, `system`, `tools` as a JSON string).
    ShareGpt,
    /// `{"text": ...}` rendered with the Qwen2.5 chat template's tool section.
    Qwen,
}

impl ExportFormat {
    /// Every format, in documentation order.
    pub const ALL: [ExportFormat; 4] = [
        ExportFormat::OpenAi,
        ExportFormat::Trl,
        ExportFormat::ShareGpt,
        ExportFormat::Qwen,
    ];

    /// The command-line name: `openai`, `trl`, `sharegpt` or `qwen`.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::OpenAi => "openai",
            ExportFormat::Trl => "trl",
            ExportFormat::ShareGpt => "sharegpt",
            ExportFormat::Qwen => "qwen",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`ExportFormat::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format `{0}` (expected openai, trl, sharegpt or qwen)")]
pub struct UnknownFormat(pub String);

impl FromStr for ExportFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// Texts the renderers put around the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// The system turn of every conversation.
    pub system_prompt: String,
    /// The assistant's reply when no tool is called.
    pub direct_answer: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_string(),
            direct_answer: DIRECT_ANSWER.to_string(),
        }
    }
}

/// Renders examples in one format; the tool list is rendered once.
#[derive(Debug, Clone)]
pub struct Renderer {
    format: ExportFormat,
    options: ExportOptions,
    /// `spec.to_openai()` of each tool.
    openai_tools: Vec<Value>,
    /// ShareGPT's `tools`: a JSON string of the function objects.
    sharegpt_tools: String,
    /// Qwen's system turn, tool section included.
    qwen_system: String,
}

impl Renderer {
    /// A renderer of `format` with `options`, offering `tools` in every line.
    pub fn new(tools: &[ToolSpec], format: ExportFormat, options: ExportOptions) -> Self {
        let functions: Vec<Value> = tools.iter().map(function_object).collect();
        Self {
            format,
            openai_tools: tools.iter().map(ToolSpec::to_openai).collect(),
            sharegpt_tools: py_json(&Value::Array(functions)),
            qwen_system: chat::system_turn(tools, &options.system_prompt),
            options,
        }
    }

    /// One output line (as JSON) for an example.
    pub fn render(&self, example: &Example) -> Value {
        match self.format {
            ExportFormat::OpenAi => self.openai(example),
            ExportFormat::Trl => self.trl(example),
            ExportFormat::ShareGpt => self.sharegpt(example),
            ExportFormat::Qwen => json!({ "text": self.qwen_text(example) }),
        }
    }

    /// The Qwen2.5 prompt for a query, up to the open assistant turn: what a
    /// model trained on the `qwen` export is given at inference.
    pub fn qwen_prompt(&self, query: &str) -> String {
        chat::prompt(&self.qwen_system, query)
    }

    fn system_and_user(&self, example: &Example) -> [Value; 2] {
        [
            json!({"role": "system", "content": self.options.system_prompt}),
            json!({"role": "user", "content": example.query}),
        ]
    }

    fn direct(&self) -> Value {
        json!({"role": "assistant", "content": self.options.direct_answer})
    }

    fn openai(&self, example: &Example) -> Value {
        let [system, user] = self.system_and_user(example);
        let assistant = if example.calls.is_empty() {
            self.direct()
        } else {
            let calls: Vec<Value> = example
                .calls
                .iter()
                .enumerate()
                .map(|(i, call)| {
                    json!({
                        "id": format!("call_{i}"),
                        "type": "function",
                        "function": {
                            "name": call.tool,
                            "arguments": Value::Object(call.arguments.clone()).to_string(),
                        }
                    })
                })
                .collect();
            json!({"role": "assistant", "tool_calls": calls})
        };
        json!({
            "messages": [system, user, assistant],
            "tools": self.openai_tools,
            "parallel_tool_calls": true,
        })
    }

    fn trl(&self, example: &Example) -> Value {
        let [system, user] = self.system_and_user(example);
        let assistant = if example.calls.is_empty() {
            self.direct()
        } else {
            let calls: Vec<Value> = example
                .calls
                .iter()
                .map(|call| {
                    json!({
                        "type": "function",
                        "function": {"name": call.tool, "arguments": call.arguments},
                    })
                })
                .collect();
            json!({"role": "assistant", "tool_calls": calls})
        };
        json!({"messages": [system, user, assistant], "tools": self.openai_tools})
    }

    fn sharegpt(&self, example: &Example) -> Value {
        let mut turns = vec![json!({"from": "human", "value": example.query})];
        if example.calls.is_empty() {
            turns.push(json!({"from": "gpt", "value": self.options.direct_answer}));
        } else {
            let calls: Vec<String> = example
                .calls
                .iter()
                .map(|call| chat::call_json(&call.tool, &call.arguments))
                .collect();
            let value = if calls.len() == 1 {
                calls.concat()
            } else {
                format!("[{}]", calls.join(", "))
            };
            turns.push(json!({"from": "function_call", "value": value}));
            if let Some((outputs, answer)) = observed(example) {
                let observation = if outputs.len() == 1 {
                    py_json(&outputs[0])
                } else {
                    py_json(&Value::Array(outputs.to_vec()))
                };
                turns.push(json!({"from": "observation", "value": observation}));
                turns.push(json!({"from": "gpt", "value": answer}));
            }
        }
        json!({
            "conversations": turns,
            "system": self.options.system_prompt,
            "tools": self.sharegpt_tools,
        })
    }

    fn qwen_text(&self, example: &Example) -> String {
        let mut text = format!(
            "{}<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant",
            self.qwen_system, example.query
        );
        if example.calls.is_empty() {
            text.push('\n');
            text.push_str(&self.options.direct_answer);
        } else {
            for call in &example.calls {
                text.push_str("\n<tool_call>\n");
                text.push_str(&chat::call_json(&call.tool, &call.arguments));
                text.push_str("\n</tool_call>");
            }
        }
        text.push_str("<|im_end|>\n");
        text
    }
}

/// The tool outputs and final answer recorded with an example, when there is
/// one non-null output per call.
fn observed(example: &Example) -> Option<(&[Value], &str)> {
    let outputs = example.meta.get("tool_outputs")?.as_array()?;
    let answer = example.meta.get("answer")?.as_str()?;
    (outputs.len() == example.calls.len() && outputs.iter().all(|o| !o.is_null()))
        .then_some((outputs.as_slice(), answer))
}

/// `{"name": ..., "description": ..., "parameters": ...}` of a tool.
fn function_object(spec: &ToolSpec) -> Value {
    let mut map = Map::new();
    map.insert("name".into(), json!(spec.name));
    map.insert("description".into(), json!(spec.description));
    map.insert("parameters".into(), spec.parameters.clone());
    Value::Object(map)
}

/// Writes one JSON line per example in `format` and returns the number written.
pub fn export<W: Write>(
    examples: &[Example],
    tools: &[ToolSpec],
    format: ExportFormat,
    writer: W,
) -> io::Result<usize> {
    export_with(examples, tools, format, ExportOptions::default(), writer)
}

/// [`export`] with a custom system prompt and direct-answer marker.
pub fn export_with<W: Write>(
    examples: &[Example],
    tools: &[ToolSpec],
    format: ExportFormat,
    options: ExportOptions,
    mut writer: W,
) -> io::Result<usize> {
    let renderer = Renderer::new(tools, format, options);
    for example in examples {
        let mut line = renderer.render(example).to_string();
        line.push('\n');
        writer.write_all(line.as_bytes())?;
    }
    writer.flush()?;
    Ok(examples.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolforge_core::ToolCall;

    fn tools() -> Vec<ToolSpec> {
        toolforge_tools::builtin_tools(&Default::default())
            .iter()
            .map(|t| t.spec())
            .collect()
    }

    fn example(query: &str, calls: Vec<ToolCall>, meta: Value) -> Example {
        Example {
            query: query.into(),
            calls,
            source: "test".into(),
            meta,
            ..Example::default()
        }
    }

    fn examples() -> Vec<Example> {
        vec![
            example(
                "is it raining in oslo",
                vec![ToolCall::new("weather", json!({"location": "Oslo"}))],
                Value::Null,
            ),
            example(
                "weather in Tokyo and 25°C in Fahrenheit",
                vec![
                    ToolCall::new("weather", json!({"location": "Tokyo"})),
                    ToolCall::new(
                        "unit_converter",
                        json!({"value": 25, "from_unit": "°c", "to_unit": "°f"}),
                    ),
                ],
                Value::Null,
            ),
            example("thanks, that's all", vec![], Value::Null),
            example(
                "what's 2+2",
                vec![ToolCall::new("calculator", json!({"expression": "2+2"}))],
                json!({"tool_outputs": [{"value": 4.0, "summary": "2+2 = 4"}], "answer": "2+2 = 4"}),
            ),
        ]
    }

    fn lines(format: ExportFormat) -> Vec<Value> {
        let mut out = Vec::new();
        let written = export(&examples(), &tools(), format, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(written, 4);
        assert_eq!(lines.len(), 4);
        lines
    }

    fn roles(messages: &Value) -> Vec<&str> {
        messages
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn format_names_round_trip() {
        for format in ExportFormat::ALL {
            assert_eq!(format.name().parse::<ExportFormat>().unwrap(), format);
            assert_eq!(format.to_string(), format.name());
        }
        assert_eq!(
            "OpenAI".parse::<ExportFormat>().unwrap(),
            ExportFormat::OpenAi
        );
        let err = "csv".parse::<ExportFormat>().unwrap_err();
        assert!(err.to_string().contains("openai, trl, sharegpt or qwen"));
    }

    #[test]
    fn openai_lines_have_string_arguments() {
        let lines = lines(ExportFormat::OpenAi);
        let specs = tools();
        for line in &lines {
            assert_eq!(
                roles(&line["messages"]),
                vec!["system", "user", "assistant"]
            );
            assert_eq!(line["parallel_tool_calls"], true);
            let tools = line["tools"].as_array().unwrap();
            assert_eq!(tools.len(), specs.len());
            assert_eq!(tools[0], specs[0].to_openai());
            assert_eq!(tools[0]["type"], "function");
        }
        let calls = lines[1]["messages"][2]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1]["id"], "call_1");
        assert_eq!(calls[1]["type"], "function");
        assert_eq!(calls[1]["function"]["name"], "unit_converter");
        let arguments = calls[1]["function"]["arguments"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(arguments).unwrap(),
            json!({"value": 25, "from_unit": "°c", "to_unit": "°f"})
        );
        assert_eq!(lines[0]["messages"][1]["content"], "is it raining in oslo");
        let direct = &lines[2]["messages"][2];
        assert_eq!(direct["content"], DIRECT_ANSWER);
        assert!(direct.get("tool_calls").is_none());
    }

    #[test]
    fn trl_lines_have_object_arguments() {
        let lines = lines(ExportFormat::Trl);
        for line in &lines {
            assert_eq!(
                roles(&line["messages"]),
                vec!["system", "user", "assistant"]
            );
            assert_eq!(line["tools"][0]["type"], "function");
            assert!(line["tools"][0]["function"]["parameters"].is_object());
        }
        let call = &lines[0]["messages"][2]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "weather");
        assert_eq!(call["function"]["arguments"], json!({"location": "Oslo"}));
        assert_eq!(lines[2]["messages"][2]["content"], DIRECT_ANSWER);
    }

    #[test]
    fn sharegpt_lines_follow_llama_factory() {
        let lines = lines(ExportFormat::ShareGpt);
        let from = |line: &Value| -> Vec<String> {
            line["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["from"].as_str().unwrap().to_string())
                .collect()
        };
        for line in &lines {
            let tools: Value = serde_json::from_str(line["tools"].as_str().unwrap()).unwrap();
            let tools = tools.as_array().unwrap();
            assert_eq!(tools.len(), 8);
            assert!(tools
                .iter()
                .all(|t| t["name"].is_string() && t["parameters"].is_object()));
            assert_eq!(line["system"], DEFAULT_SYSTEM_PROMPT);
            let turns = from(line);
            // LLaMA-Factory wants an even number of turns, user side first.
            assert_eq!(turns.len() % 2, 0);
            for (i, role) in turns.iter().enumerate() {
                let allowed: &[&str] = if i % 2 == 0 {
                    &["human", "observation"]
                } else {
                    &["gpt", "function_call"]
                };
                assert!(allowed.contains(&role.as_str()), "{turns:?}");
            }
        }
        assert_eq!(from(&lines[0]), vec!["human", "function_call"]);
        let single: Value =
            serde_json::from_str(lines[0]["conversations"][1]["value"].as_str().unwrap()).unwrap();
        assert_eq!(
            single,
            json!({"name": "weather", "arguments": {"location": "Oslo"}})
        );
        let several: Value =
            serde_json::from_str(lines[1]["conversations"][1]["value"].as_str().unwrap()).unwrap();
        assert_eq!(several.as_array().unwrap().len(), 2);
        assert_eq!(several[1]["name"], "unit_converter");
        assert_eq!(from(&lines[2]), vec!["human", "gpt"]);
        assert_eq!(lines[2]["conversations"][1]["value"], DIRECT_ANSWER);
        assert_eq!(
            from(&lines[3]),
            vec!["human", "function_call", "observation", "gpt"]
        );
        let observation: Value =
            serde_json::from_str(lines[3]["conversations"][2]["value"].as_str().unwrap()).unwrap();
        assert_eq!(observation["value"], 4.0);
        assert_eq!(lines[3]["conversations"][3]["value"], "2+2 = 4");
    }

    #[test]
    fn qwen_text_uses_the_template_tool_section() {
        let lines = lines(ExportFormat::Qwen);
        let text = lines[1]["text"].as_str().unwrap();
        let (system, rest) = text.split_once("<|im_end|>\n").unwrap();
        assert!(system.starts_with(&format!(
            "<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}\n\n# Tools\n"
        )));
        let tools_block = system
            .split_once("<tools>\n")
            .unwrap()
            .1
            .split_once("\n</tools>")
            .unwrap()
            .0;
        let signatures: Vec<Value> = tools_block
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(signatures.len(), 8);
        assert_eq!(
            signatures,
            tools().iter().map(ToolSpec::to_openai).collect::<Vec<_>>()
        );
        assert!(tools_block
            .starts_with("{\"type\": \"function\", \"function\": {\"name\": \"web_search\", "));
        assert!(system.ends_with("<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"));

        assert!(rest.starts_with("<|im_start|>user\nweather in Tokyo and 25°C in Fahrenheit<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"));
        assert!(rest.ends_with("</tool_call><|im_end|>\n"));
        let calls: Vec<Value> = rest
            .split("<tool_call>\n")
            .skip(1)
            .map(|block| {
                serde_json::from_str(block.split_once("\n</tool_call>").unwrap().0).unwrap()
            })
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0],
            json!({"name": "weather", "arguments": {"location": "Tokyo"}})
        );
        assert_eq!(calls[1]["arguments"]["to_unit"], "°f");
        assert!(rest.contains("{\"name\": \"weather\", \"arguments\": {\"location\": \"Tokyo\"}}"));

        let direct = lines[2]["text"].as_str().unwrap();
        assert!(direct.ends_with(&format!(
            "<|im_start|>assistant\n{DIRECT_ANSWER}<|im_end|>\n"
        )));
        assert_eq!(
            direct.matches("<tool_call>").count(),
            2,
            "only the instructions mention it"
        );
    }

    #[test]
    fn qwen_rendering_matches_the_template_exactly() {
        let spec = ToolSpec {
            name: "echo".into(),
            description: "Echo \"text\".".into(),
            parameters: json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        };
        let options = ExportOptions {
            system_prompt: "Route.".into(),
            ..ExportOptions::default()
        };
        let renderer = Renderer::new(&[spec], ExportFormat::Qwen, options);
        let line = renderer.render(&example(
            "say hi",
            vec![ToolCall::new("echo", json!({"text": "hi"}))],
            Value::Null,
        ));
        let expected = "<|im_start|>system\nRoute.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"echo\", \"description\": \"Echo \\\"text\\\".\", \"parameters\": {\"properties\": {\"text\": {\"type\": \"string\"}}, \"required\": [\"text\"], \"type\": \"object\"}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nsay hi<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"echo\", \"arguments\": {\"text\": \"hi\"}}\n</tool_call><|im_end|>\n";
        assert_eq!(line["text"], expected);
        assert!(expected.starts_with(&renderer.qwen_prompt("say hi")));

        let bare = Renderer::new(&[], ExportFormat::Qwen, ExportOptions::default());
        assert!(bare.qwen_prompt("x").starts_with(&format!(
            "<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
        )));
    }
}
