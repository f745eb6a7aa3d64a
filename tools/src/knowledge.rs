//! What the project knows about routing to each built-in tool, kept with the
//! tools as data files in `tools/knowledge/<tool>/`: the regex router's rules
//! (`rules.toml`), the labelling convention for its arguments that teachers are
//! given (`hint.md`, from `docs/labeling.md`), example requests with their
//! arguments (`examples.jsonl`) that [`toolforge_core::Tool::examples`] returns,
//! and the offline generator's query templates (`templates/<kind>.txt`, one
//! template per line) and gazetteer (`gazetteer.txt`, the values its slots
//! draw from) and topical openings (`leads.txt`) where the tool has them. A new built-in tool adds its folder and
//! one entry in [`BUILTIN`]; without templates, the generator varies its
//! examples.

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
    /// The generator's query templates by kind (`main`, or e.g. `person`,
    /// `landmark` for wikipedia's topic kinds), one template per line.
    pub templates: &'static [(&'static str, &'static str)],
    /// The generator's gazetteer for this tool's slots ("" when it has none).
    pub gazetteer: &'static str,
    /// Topical openings of a request ("for my homework, "), one per line, each
    /// ending in a space.
    pub leads: &'static str,
}

macro_rules! knowledge {
    ($tool:literal, [$($kind:literal),*], $gazetteer:expr) => {
        Knowledge {
            tool: $tool,
            rules: include_str!(concat!("../knowledge/", $tool, "/rules.toml")),
            hint: include_str!(concat!("../knowledge/", $tool, "/hint.md")),
            examples: include_str!(concat!("../knowledge/", $tool, "/examples.jsonl")),
            templates: &[$((
                $kind,
                include_str!(concat!("../knowledge/", $tool, "/templates/", $kind, ".txt")),
            )),*],
            gazetteer: $gazetteer,
            leads: include_str!(concat!("../knowledge/", $tool, "/leads.txt")),
        }
    };
}

/// Every built-in tool's knowledge, in the order the regex router merges the
/// rules (which breaks ties between equally weighted rules).
pub const BUILTIN: &[Knowledge] = &[
    knowledge!("calculator", ["main"], ""),
    knowledge!("unit_converter", ["main"], ""),
    knowledge!("weather", ["main"], ""),
    knowledge!("datetime", ["main"], ""),
    knowledge!(
        "translate",
        ["main"],
        include_str!("../knowledge/translate/gazetteer.txt")
    ),
    knowledge!(
        "dictionary",
        ["rare", "common", "phrase", "spell", "sound"],
        include_str!("../knowledge/dictionary/gazetteer.txt")
    ),
    knowledge!(
        "wikipedia",
        [
            "person", "landmark", "country", "event", "science", "concept", "work", "org",
            "animal", "city"
        ],
        include_str!("../knowledge/wikipedia/gazetteer.txt")
    ),
    knowledge!(
        "web_search",
        ["main"],
        include_str!("../knowledge/web_search/gazetteer.txt")
    ),
    knowledge!(
        "autonomous_task",
        ["main"],
        include_str!("../knowledge/autonomous_task/gazetteer.txt")
    ),
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

    /// The example requests (a line that does not parse is skipped; a test
    /// checks that every line parses).
    pub fn examples(&self) -> Vec<ToolExample> {
        self.examples
            .lines()
            .filter(|line| !line.trim().is_empty())
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl Knowledge {
    /// The topical openings (none when the tool has no `leads.txt` lines).
    pub fn leads(&self) -> Vec<&'static str> {
        self.leads
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// The templates of `kind`, one per line (empty when the tool has none).
    pub fn templates(&self, kind: &str) -> Vec<&'static str> {
        self.templates
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, text)| text.lines().filter(|l| !l.trim().is_empty()).collect())
            .unwrap_or_default()
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
            assert!(
                knowledge.leads().iter().all(|l| l.ends_with(' ')),
                "{}",
                spec.name
            );
            for (kind, _) in knowledge.templates {
                let templates = knowledge.templates(kind);
                assert!(!templates.is_empty(), "{}: no {kind} templates", spec.name);
                assert!(
                    templates.iter().all(|t| t.contains('|')),
                    "{}: {kind}",
                    spec.name
                );
            }
        }
    }
}
