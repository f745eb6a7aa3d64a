//! What the project knows about routing to each built-in tool, kept with the
//! tools as data files in `tools/knowledge/<tool>/`: the regex router's rules
//! (`rules.toml`), the labelling convention for its arguments that teachers are
//! given (`hint.md`, from `docs/labeling.md`), and example requests with their
//! arguments (`examples.jsonl`) that the offline generator varies and
//! [`toolforge_core::Tool::examples`] returns. A new built-in tool adds its
//! folder and one entry in [`BUILTIN`].

use serde_json::Value;
use toolforge_core::ToolExample;

/// The routing knowledge of one tool.
#[derive(Debug, Clone, Copy)]
pub struct Knowledge {
    /// The tool's name.
    pub tool: &'static str,
    /// Regex-router rules (TOML, one `[[tools]]` section).
    pub rules: &'static str,
    /// How its arguments are labelled, one paragraph.
    pub hint: &'static str,
    /// Example requests: JSON Lines of `{"query", "arguments"}`.
    pub examples: &'static str,
}

macro_rules! knowledge {
    ($tool:literal) => {
        Knowledge {
            tool: $tool,
            rules: include_str!(concat!("../knowledge/", $tool, "/rules.toml")),
            hint: include_str!(concat!("../knowledge/", $tool, "/hint.md")),
            examples: include_str!(concat!("../knowledge/", $tool, "/examples.jsonl")),
        }
    };
}

/// Every built-in tool's knowledge, in the order the regex router merges the
/// rules (which breaks ties between equally weighted rules).
pub const BUILTIN: &[Knowledge] = &[
    knowledge!("calculator"),
    knowledge!("unit_converter"),
    knowledge!("weather"),
    knowledge!("datetime"),
    knowledge!("translate"),
    knowledge!("dictionary"),
    knowledge!("wikipedia"),
    knowledge!("web_search"),
    knowledge!("autonomous_task"),
];

/// The knowledge of built-in tool `name`.
///
/// ```
/// let weather = toolforge_tools::knowledge::for_tool("weather").unwrap();
/// assert!(weather.hint.contains("location"));
/// assert!(toolforge_tools::knowledge::for_tool("dice").is_none());
/// ```
pub fn for_tool(name: &str) -> Option<&'static Knowledge> {
    BUILTIN.iter().find(|k| k.tool == name)
}

impl Knowledge {
    /// The labelling hint, trimmed.
    pub fn hint(&self) -> &'static str {
        self.hint.trim()
    }

    /// The example requests (lines that do not parse are skipped; a test checks
    /// that none does not).
    pub fn examples(&self) -> Vec<ToolExample> {
        self.examples
            .lines()
            .filter(|line| !line.trim().is_empty())
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// The example requests of built-in tool `name` (none for other tools).
pub fn examples(name: &str) -> Vec<ToolExample> {
    for_tool(name).map(Knowledge::examples).unwrap_or_default()
}

/// The example arguments as a JSON value, for checks against a schema.
pub fn example_arguments(example: &ToolExample) -> Value {
    Value::Object(example.arguments.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{builtin_tools, ToolsConfig};

    #[test]
    fn every_tool_has_knowledge_with_valid_examples() {
        for tool in builtin_tools(&ToolsConfig::default()) {
            let spec = tool.spec();
            let knowledge = for_tool(&spec.name).expect("knowledge for every built-in tool");
            assert!(knowledge
                .rules
                .contains(&format!("name = \"{}\"", spec.name)));
            assert!(!knowledge.hint().is_empty());
            let lines = knowledge
                .examples
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count();
            let examples = knowledge.examples();
            assert_eq!(
                examples.len(),
                lines,
                "{}: an example line does not parse",
                spec.name
            );
            assert!(examples.len() >= 5, "{}: too few examples", spec.name);
            for example in &examples {
                spec.validate(&example_arguments(example))
                    .unwrap_or_else(|e| panic!("{}: {:?}: {e}", spec.name, example.query));
            }
            assert_eq!(tool.examples(), examples);
        }
    }
}
