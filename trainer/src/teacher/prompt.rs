//! The teacher's prompts, shared by every API format: routing instructions (each
//! offered tool's labelling hint, kept with the tool in `tools/knowledge/`), the
//! query-generation request, and the parser of its JSON-array answer. Tool names,
//! descriptions and arguments come from the [`ToolSpec`]s alone.

use serde_json::Value;
use toolforge_core::ToolSpec;

use super::{QueryRequest, TeacherError};

/// The system instruction for routing with `tools`.
pub fn routing_instructions(tools: &[ToolSpec]) -> String {
    let mut text = String::from(
        "You are the tool router of an assistant. For the user's message, call the function or \
         functions it needs, with arguments taken from the message, or call no function at all.\n\
         Rules:\n\
         - Call no function for chit-chat, greetings, opinions, writing or coding help you can do \
         yourself, and questions about the assistant: just reply in text.\n\
         - When the message holds several independent requests, make one call per request, in \
         the order of the message.\n\
         - Use only the functions provided and only their declared arguments. Leave optional \
         arguments out unless the message states them.\n\
         - Take argument values from the message: drop lead-in words (\"can you\", \"please\", \
         \"search for\", \"tell me about\") and otherwise keep the user's wording.\n",
    );
    let conventions: Vec<String> = tools
        .iter()
        .filter_map(|tool| {
            toolforge_tools::knowledge::for_tool(&tool.name)
                .map(|knowledge| format!("- {}: {}", tool.name, knowledge.hint()))
        })
        .collect();
    if !conventions.is_empty() {
        text.push_str("Argument conventions:\n");
        text.push_str(&conventions.join("\n"));
        text.push('\n');
    }
    text
}

fn category_instruction(request: &QueryRequest) -> Result<String, TeacherError> {
    let tool = request.tool.as_deref();
    let text = match (request.category.as_str(), tool) {
        ("single", Some(t)) => format!("Each message needs exactly one tool: `{t}`, and no other."),
        ("single", None) => {
            return Err(TeacherError::InvalidRequest(
                "category `single` needs a tool".into(),
            ))
        }
        ("multi", Some(t)) => format!(
            "Each message holds two or three independent requests that need different tools, \
             one of them `{t}`."
        ),
        ("multi", None) => "Each message holds two or three independent requests that need \
                            different tools."
            .to_string(),
        ("no_tool", _) => "Each message needs none of the tools: greetings, chit-chat, opinions, \
                           writing or coding help, or questions about the assistant itself. \
                           Make some of them look superficially like tool requests."
            .to_string(),
        ("unsupported", _) => "Each message asks for an action in the world or in an app that \
                               none of the tools can perform: alarms, timers, reminders, \
                               calendars, calls, messages, music, smart home, banking, bookings, \
                               orders, rides; shopping for a flight, a room or a ride to take; \
                               questions about the user's own accounts, orders and lists. Make \
                               some of them look superficially like tool requests."
            .to_string(),
        ("ambiguous", Some(t)) => format!(
            "Each message is a borderline case between `{t}` and another tool or no tool, yet \
             has one right answer for a careful reader."
        ),
        ("ambiguous", None) => "Each message is a borderline case between two tools, or between \
                                a tool and no tool, yet has one right answer for a careful reader."
            .to_string(),
        ("edge", Some(t)) => format!(
            "Each message is an unusual but valid request for `{t}`: rare names or units, numbers \
             in words, very short or very long inputs, odd word order."
        ),
        ("edge", None) => "Each message is an unusual but valid request for one of the tools: \
                           rare names or units, numbers in words, odd word order."
            .to_string(),
        (other, Some(t)) => format!("Kind of message: {other}, about the tool `{t}`."),
        (other, None) => format!("Kind of message: {other}."),
    };
    Ok(text)
}

fn style_instruction(style: &str) -> String {
    match style {
        "casual" => "Write them casually, the way people type to a chat assistant.".into(),
        "terse" => "Write them tersely: a few words, no greeting, like a search box.".into(),
        "spoken" => {
            "Write them as transcribed speech: filler words, no punctuation, numbers as spoken."
                .into()
        }
        "misspelled" => "Write them with realistic typos and misspellings.".into(),
        "lowercase" => "Write them all in lowercase with little punctuation.".into(),
        "long" => {
            "Write long messages: some context or backstory before the actual request.".into()
        }
        other => format!("Style: {other}."),
    }
}

/// The prompt asking for `request.count` user messages.
pub fn query_generation_prompt(
    request: &QueryRequest,
    tools: &[ToolSpec],
) -> Result<String, TeacherError> {
    let target = match request.tool.as_deref() {
        Some(name) => Some(
            tools
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| TeacherError::InvalidRequest(format!("unknown tool `{name}`")))?,
        ),
        None => None,
    };
    let mut text = format!(
        "Write {} different messages that real users might send to an assistant that has these \
         tools:\n",
        request.count
    );
    for tool in tools {
        text.push_str(&format!("- {}: {}\n", tool.name, tool.description));
    }
    if let Some(tool) = target {
        text.push_str(&format!(
            "Arguments of `{}` (JSON schema): {}\n",
            tool.name, tool.parameters
        ));
        if !request.examples.is_empty() {
            text.push_str(&format!(
                "Requests `{}` serves look like these; write new ones in other words, do not \
                 copy them:\n",
                tool.name
            ));
            for example in request.examples.iter().take(10) {
                text.push_str(&format!("- {example}\n"));
            }
        }
    }
    text.push_str(&category_instruction(request)?);
    text.push('\n');
    text.push_str(&style_instruction(&request.style));
    text.push_str(
        "\nVary topics, places, numbers, names and phrasing; no two messages alike. Write only \
         the user's messages, never answers.\nReply with a JSON array of strings and nothing else.",
    );
    Ok(text)
}

/// Parses a JSON array of strings from a model's answer, tolerating ```json
/// fences and text around the array. Blank and repeated entries are dropped.
pub fn parse_query_list(text: &str) -> Result<Vec<String>, String> {
    let start = text
        .find('[')
        .ok_or_else(|| "no JSON array in the answer".to_string())?;
    let end = text
        .rfind(']')
        .filter(|end| *end > start)
        .ok_or_else(|| "unterminated JSON array in the answer".to_string())?;
    let items: Vec<Value> = serde_json::from_str(&text[start..=end])
        .map_err(|e| format!("the answer's array is not valid JSON: {e}"))?;
    let mut queries: Vec<String> = Vec::new();
    for item in items {
        let Value::String(query) = item else {
            return Err("the answer's array holds something other than strings".into());
        };
        let query = query.trim().to_string();
        if !query.is_empty() && !queries.contains(&query) {
            queries.push(query);
        }
    }
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: format!("the {name} tool"),
            parameters: json!({"type": "object", "properties": {"x": {"type": "string"}}}),
        }
    }

    #[test]
    fn routing_instructions_cover_chit_chat_and_only_offered_tools() {
        let text = routing_instructions(&[spec("weather"), spec("my_plugin")]);
        assert!(text.contains("Call no function for chit-chat"));
        assert!(text.contains("- weather: `location`"));
        assert!(!text.contains("unit_converter"));
        assert!(!routing_instructions(&[spec("my_plugin")]).contains("Argument conventions"));
    }

    #[test]
    fn generation_prompt_names_tools_category_and_style() {
        let request = QueryRequest {
            tool: Some("weather".into()),
            category: "single".into(),
            style: "spoken".into(),
            count: 7,
            examples: vec!["is it sunny in lima".into()],
        };
        let tools = [spec("weather"), spec("calculator")];
        let text = query_generation_prompt(&request, &tools).unwrap();
        assert!(text.starts_with("Write 7 different messages"));
        assert!(text.contains("- calculator: the calculator tool"));
        assert!(text.contains("exactly one tool: `weather`"));
        assert!(text.contains("transcribed speech"));
        assert!(text.contains("JSON array of strings"));
        assert!(text.contains("do not copy them:\n- is it sunny in lima\n"));
        let unknown = QueryRequest {
            tool: Some("nope".into()),
            ..request.clone()
        };
        assert!(query_generation_prompt(&unknown, &tools).is_err());
        let no_tool = QueryRequest {
            tool: None,
            ..request
        };
        assert!(query_generation_prompt(&no_tool, &tools).is_err());
    }

    #[test]
    fn query_lists_parse_with_fences_and_noise() {
        let fenced = "Sure!\n```json\n[\"weather in oslo\", \"  \", \"weather in oslo\", \"rain tmrw?\"]\n```\n";
        assert_eq!(
            parse_query_list(fenced).unwrap(),
            vec!["weather in oslo", "rain tmrw?"]
        );
        assert_eq!(
            parse_query_list(r#"{"queries": ["a", "b"]}"#).unwrap(),
            vec!["a", "b"]
        );
        assert!(parse_query_list("no array here").is_err());
        assert!(parse_query_list("[1, 2]").is_err());
        assert!(parse_query_list("[\"a\", ").is_err());
    }
}
