//! The `dictionary` tool: English definitions, pronunciation, synonyms and
//! antonyms from the Free Dictionary API (dictionaryapi.dev, Wiktionary data).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge_core::{Tool, ToolError};

use crate::config::EndpointConfig;
use crate::http::{HttpEndpoint, HttpError};
use crate::wikipedia::encode_path_segment;

/// Public Free Dictionary API.
pub const DEFAULT_DICTIONARY_BASE: &str = "https://api.dictionaryapi.dev";
/// Definitions kept per part of speech.
const DEFINITIONS_PER_MEANING: usize = 3;
/// Synonyms (and antonyms) kept.
const RELATED_WORDS_CAP: usize = 10;

/// Arguments of `dictionary`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DictionaryArgs {
    /// The English word or fixed phrase to define, lowercase, e.g. "ephemeral".
    pub word: String,
}

/// English word definitions via dictionaryapi.dev.
#[derive(Debug, Clone)]
pub struct Dictionary {
    endpoint: HttpEndpoint,
}

impl Dictionary {
    /// Builds the tool; the base URL defaults to the public API.
    pub fn new(config: &EndpointConfig) -> Self {
        Self {
            endpoint: HttpEndpoint::new("Free Dictionary API", config, DEFAULT_DICTIONARY_BASE),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Entry {
    word: String,
    #[serde(default)]
    phonetic: Option<String>,
    #[serde(default)]
    phonetics: Vec<Phonetic>,
    #[serde(default)]
    meanings: Vec<Meaning>,
}

#[derive(Debug, Deserialize)]
struct Phonetic {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    audio: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Meaning {
    #[serde(rename = "partOfSpeech", default)]
    part_of_speech: Option<String>,
    #[serde(default)]
    definitions: Vec<Definition>,
    #[serde(default)]
    synonyms: Vec<String>,
    #[serde(default)]
    antonyms: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Definition {
    definition: String,
    #[serde(default)]
    example: Option<String>,
    #[serde(default)]
    synonyms: Vec<String>,
    #[serde(default)]
    antonyms: Vec<String>,
}

/// Definitions of one part of speech, merged across entries.
struct Sense {
    part_of_speech: String,
    definitions: Vec<(String, Option<String>)>,
}

#[async_trait]
impl Tool for Dictionary {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        crate::knowledge::examples(self.name())
    }

    type Args = DictionaryArgs;

    fn name(&self) -> &str {
        "dictionary"
    }

    fn description(&self) -> &str {
        "English dictionary: definitions, synonyms, antonyms, pronunciation and spelling of a word."
    }

    async fn call(&self, args: DictionaryArgs) -> Result<Value, ToolError> {
        let word = args.word.trim();
        if word.is_empty() {
            return Err(ToolError::InvalidArguments(
                "`word` must not be empty".into(),
            ));
        }
        let not_found = || ToolError::Failed(format!("no definition found for \"{word}\""));
        let path = format!(
            "/api/v2/entries/en/{}",
            encode_path_segment(&word.to_lowercase())
        );
        let body = match self.endpoint.get_json(&path, &[], &[]).await {
            Ok(body) => body,
            Err(HttpError::Status { status: 404, .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let entries: Vec<Entry> = serde_json::from_value(body).map_err(|e| {
            ToolError::Failed(format!(
                "Free Dictionary API sent a malformed response: {e}"
            ))
        })?;
        let Some(first) = entries.first() else {
            return Err(not_found());
        };

        let headword = first.word.clone();
        let phonetic = entries
            .iter()
            .filter_map(|e| e.phonetic.clone())
            .chain(
                entries
                    .iter()
                    .flat_map(|e| &e.phonetics)
                    .filter_map(|p| p.text.clone()),
            )
            .find(|p| !p.trim().is_empty());
        let audio = entries
            .iter()
            .flat_map(|e| &e.phonetics)
            .filter_map(|p| p.audio.clone())
            .find(|a| !a.trim().is_empty());

        let mut senses: Vec<Sense> = Vec::new();
        let mut synonyms = Vec::new();
        let mut antonyms = Vec::new();
        for meaning in entries.iter().flat_map(|e| &e.meanings) {
            let part = meaning
                .part_of_speech
                .clone()
                .filter(|p| !p.trim().is_empty())
                .unwrap_or_else(|| "unspecified".to_string());
            let index = match senses.iter().position(|s| s.part_of_speech == part) {
                Some(i) => i,
                None => {
                    senses.push(Sense {
                        part_of_speech: part,
                        definitions: Vec::new(),
                    });
                    senses.len() - 1
                }
            };
            for definition in &meaning.definitions {
                let text = definition.definition.trim();
                let sense = &mut senses[index];
                if !text.is_empty() && sense.definitions.len() < DEFINITIONS_PER_MEANING {
                    sense
                        .definitions
                        .push((text.to_string(), definition.example.clone()));
                }
                add_related(&mut synonyms, &definition.synonyms);
                add_related(&mut antonyms, &definition.antonyms);
            }
            add_related(&mut synonyms, &meaning.synonyms);
            add_related(&mut antonyms, &meaning.antonyms);
        }
        senses.retain(|s| !s.definitions.is_empty());
        let Some(top) = senses.first() else {
            return Err(not_found());
        };
        let summary = format!(
            "{headword} ({}): {}",
            top.part_of_speech,
            sentence_case_lower(&top.definitions[0].0)
        );

        let meanings: Vec<Value> = senses
            .iter()
            .map(|s| {
                json!({
                    "part_of_speech": s.part_of_speech,
                    "definitions": s.definitions.iter().map(|(d, example)| {
                        let mut item = json!({ "definition": d });
                        if let Some(example) = example {
                            item["example"] = json!(example);
                        }
                        item
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(json!({
            "word": headword,
            "phonetic": phonetic,
            "audio": audio,
            "meanings": meanings,
            "synonyms": synonyms,
            "antonyms": antonyms,
            "summary": summary,
        }))
    }
}

/// Appends words not yet present (case-insensitively), up to the cap.
fn add_related(into: &mut Vec<String>, words: &[String]) {
    for word in words {
        let word = word.trim();
        if into.len() >= RELATED_WORDS_CAP {
            return;
        }
        if !word.is_empty() && !into.iter().any(|w| w.eq_ignore_ascii_case(word)) {
            into.push(word.to_string());
        }
    }
}

/// A definition as the tail of a sentence: first letter lowercased (unless it
/// starts an acronym or a name like "I") and a closing period.
fn sentence_case_lower(definition: &str) -> String {
    let mut chars = definition.chars();
    let mut text = match (chars.next(), chars.clone().next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => definition.to_string(),
    };
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_read_as_sentence_tails() {
        assert_eq!(
            sentence_case_lower("Lasting for a very short time"),
            "lasting for a very short time."
        );
        assert_eq!(sentence_case_lower("NASA's rocket."), "NASA's rocket.");
    }

    #[test]
    fn related_words_are_deduplicated_and_capped() {
        let mut out = Vec::new();
        add_related(&mut out, &["brief".into(), "Brief".into(), " ".into()]);
        assert_eq!(out, vec!["brief"]);
        let many: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
        add_related(&mut out, &many);
        assert_eq!(out.len(), RELATED_WORDS_CAP);
    }
}
