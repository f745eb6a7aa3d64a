//! The files of a model directory: `config.json` (architecture, tools, argument
//! slots and their clean-up, calibration, version, training facts), `vocab.json`,
//! `tools.json`, `model.safetensors` and `manifest.json` (SHA-256 of each file,
//! checked on load). Slot clean-up comes from the regex router's default rules
//! at training time and is then frozen in the model's own config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolforge_core::{schema_types, ToolSpec};

use super::minilm::EncoderRef;
use super::network::ArchConfig;
use crate::regex_router::default_rules;
use crate::regex_router::text::Transform;

/// Format version of `config.json`.
pub const MODEL_FORMAT: u32 = 1;
/// File name of the model config ([`ModelConfig`]).
pub const CONFIG_FILE: &str = "config.json";
/// File name of a `compact` model's vocabulary ([`super::features::VocabFile`]).
pub const VOCAB_FILE: &str = "vocab.json";
/// File name of the tool specs the model was trained on.
pub const TOOLS_FILE: &str = "tools.json";
/// File name of a `compact` model's network weights.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the manifest ([`Manifest`]).
pub const MANIFEST_FILE: &str = "manifest.json";

/// A tool the model can call, with its multi-call and inheritance rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// The tool's name, as in its [`ToolSpec`].
    pub name: String,
    /// Argument whose several spans ("Paris and London") give one call each.
    #[serde(default)]
    pub fan_out: Option<String>,
    /// Arguments taken from a neighbouring call when this tool's call lacks them.
    #[serde(default)]
    pub inherit: Vec<String>,
}

/// One argument slot (`weather.location`) and how its span is cleaned up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotInfo {
    /// Name of the tool the argument belongs to.
    pub tool: String,
    /// Name of the argument in the tool's parameter schema.
    pub argument: String,
    /// A regex-router transform name: `keep`, `lower`, `title`, `number`, `language`, ...
    pub transform: String,
    /// Value used when the query has no span for the argument.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

impl SlotInfo {
    /// `tool.argument`.
    pub fn key(&self) -> String {
        format!("{}.{}", self.tool, self.argument)
    }
}

/// The content of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Format version; [`MODEL_FORMAT`] when written.
    pub format: u32,
    /// Recorded in run logs as the router model version.
    pub model_version: String,
    /// Backbone kind (`compact` or `minilm`).
    pub backbone: String,
    /// The network's sizes; for `minilm`, the encoder's (`dim`, `layers`, `heads`,
    /// `ff_dim`, `word_rows` = its vocabulary) and the heads' (`tools`, `tags`).
    pub architecture: ArchConfig,
    /// The pretrained encoder of a `minilm` model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderRef>,
    /// Tools in the order of the tool head's outputs.
    pub tools: Vec<ToolInfo>,
    /// The tool head has one more output, after the tools: the probability that
    /// the request asks for something no tool can do (contract 1.1 `unsupported`).
    #[serde(default)]
    pub unsupported_output: bool,
    /// A no-tool decision is `unsupported` from this (temperature-scaled)
    /// probability of the unsupported output on, fitted on validation data.
    #[serde(default = "default_unsupported_threshold")]
    pub unsupported_threshold: f64,
    /// Slots in tag order: slot `s` has tags `B = 1 + 2s`, `I = 2 + 2s` (0 is `O`).
    pub slots: Vec<SlotInfo>,
    /// Temperature of the tool sigmoids, fitted on validation data.
    pub temperature: f64,
    /// Below this confidence (of the predicted tool set) the router abstains.
    pub threshold: f64,
    /// A tool is chosen from this (temperature-scaled) probability on.
    pub tool_threshold: f64,
    /// Networks whose outputs are averaged (`compact`): several trainings of one
    /// architecture on one vocabulary, differing only in their seed. With more
    /// than one, member `k`'s weights are named `member{k}.` in the weights file.
    #[serde(default = "one_member", skip_serializing_if = "is_one_member")]
    pub members: usize,
    /// Facts about training (data sizes, epochs, validation scores).
    #[serde(default)]
    pub training: Value,
}

fn default_unsupported_threshold() -> f64 {
    0.5
}

fn one_member() -> usize {
    1
}

fn is_one_member(members: &usize) -> bool {
    *members == 1
}

/// Prefix of ensemble member `k`'s weight names (`member{k}`).
pub fn member_prefix(k: usize) -> String {
    format!("member{k}")
}

impl ModelConfig {
    /// Outputs of the tool head: one per tool, plus the unsupported one.
    pub fn head_outputs(&self) -> usize {
        self.tools.len() + usize::from(self.unsupported_output)
    }

    /// Number of BIO tags.
    pub fn tag_count(&self) -> usize {
        1 + 2 * self.slots.len()
    }
}

/// The stable name of a transform (the one rule files use).
pub(crate) fn transform_name(t: Transform) -> &'static str {
    match t {
        Transform::Keep => "keep",
        Transform::Lower => "lower",
        Transform::Upper => "upper",
        Transform::Title => "title",
        Transform::Number => "number",
        Transform::Language => "language",
        Transform::Date => "date",
        Transform::Unit => "unit",
        Transform::Timezone => "timezone",
        Transform::Expression => "expression",
    }
}

/// Parses a transform name.
pub(crate) fn parse_transform(name: &str) -> Option<Transform> {
    serde_json::from_value(Value::String(name.to_string())).ok()
}

/// Tools and slots of a model trained on `tools`: one slot per schema property;
/// clean-up, defaults, fan-out and inheritance from the regex router's default
/// rules where they know the tool, else from the schema (numbers parsed, text kept,
/// fan-out over the first required argument).
pub fn describe_tools(tools: &[ToolSpec]) -> (Vec<ToolInfo>, Vec<SlotInfo>) {
    let rules = default_rules().unwrap_or_default();
    let mut infos = Vec::with_capacity(tools.len());
    let mut slots = Vec::new();
    for spec in tools {
        let rule = rules.tools.iter().find(|t| t.name == spec.name);
        let props = spec
            .parameters
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let required: Vec<String> = spec
            .parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let fan_out = rule
            .and_then(|r| r.fan_out.clone())
            .or_else(|| required.first().cloned())
            .filter(|name| props.contains_key(name));
        infos.push(ToolInfo {
            name: spec.name.clone(),
            fan_out,
            inherit: rule
                .map(|r| {
                    r.inherit
                        .iter()
                        .filter(|a| props.contains_key(*a))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        });
        for (argument, schema) in &props {
            let arg_rule = rule.and_then(|r| r.args.get(argument));
            let numeric = schema_types(Some(schema))
                .iter()
                .any(|t| t == "number" || t == "integer");
            let transform = match arg_rule {
                Some(a) => a.transform,
                None if numeric => Transform::Number,
                None => Transform::Keep,
            };
            slots.push(SlotInfo {
                tool: spec.name.clone(),
                argument: argument.clone(),
                transform: transform_name(transform).to_string(),
                default: arg_rule.and_then(|a| a.default.clone()),
            });
        }
    }
    (infos, slots)
}

/// One file's entry in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDigest {
    /// SHA-256 of the file's content, lowercase hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// The content of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version; [`MODEL_FORMAT`] when written.
    pub format: u32,
    /// Version of the model the files belong to (the config's `model_version`).
    pub model_version: String,
    /// Digest of each listed file, by file name.
    pub files: BTreeMap<String, FileDigest>,
}

impl Manifest {
    /// A manifest of `files` (name, content).
    pub fn of(model_version: &str, files: &[(&str, &[u8])]) -> Self {
        Self {
            format: MODEL_FORMAT,
            model_version: model_version.to_string(),
            files: files
                .iter()
                .map(|(name, bytes)| {
                    (
                        (*name).to_string(),
                        FileDigest {
                            sha256: sha256_hex(bytes),
                            bytes: bytes.len() as u64,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Checks `content` of file `name` against its entry (files not listed pass).
    pub fn check(&self, name: &str, content: &[u8]) -> Result<(), String> {
        let Some(digest) = self.files.get(name) else {
            return Ok(());
        };
        if digest.bytes != content.len() as u64 || digest.sha256 != sha256_hex(content) {
            return Err(format!(
                "{name} does not match manifest.json (corrupt or replaced file)"
            ));
        }
        Ok(())
    }
}

/// SHA-256 of `data` as lowercase hex (re-exported from core for the model files).
pub use toolforge_core::digest::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manifest_checks_file_digests() {
        let long = vec![b'a'; 1000];
        assert_eq!(
            sha256_hex(&long),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
        let m = Manifest::of("v", &[("a", b"abc")]);
        assert!(m.check("a", b"abc").is_ok());
        assert!(m.check("a", b"abd").is_err());
        assert!(m.check("other", b"x").is_ok());
    }

    #[test]
    fn slots_follow_rules_and_schemas() {
        let weather = ToolSpec {
            name: "weather".into(),
            description: String::new(),
            parameters: json!({"type": "object", "required": ["location"],
                "properties": {"location": {"type": "string"}, "date": {"type": ["string", "null"]}}}),
        };
        let custom = ToolSpec {
            name: "stock".into(),
            description: String::new(),
            parameters: json!({"type": "object", "required": ["symbol"],
                "properties": {"symbol": {"type": "string"}, "days": {"type": "integer"}}}),
        };
        let uc = ToolSpec {
            name: "unit_converter".into(),
            description: String::new(),
            parameters: json!({"type": "object", "required": ["value", "from_unit", "to_unit"],
                "properties": {"value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}}}),
        };
        let (tools, slots) = describe_tools(&[weather, custom, uc]);
        assert_eq!(tools[0].fan_out.as_deref(), Some("location"));
        assert_eq!(tools[0].inherit, vec!["location"]);
        assert_eq!(tools[1].fan_out.as_deref(), Some("symbol"));
        let find = |k: &str| slots.iter().find(|s| s.key() == k).unwrap().clone();
        assert_eq!(find("weather.location").transform, "title");
        assert_eq!(find("weather.date").transform, "date");
        assert_eq!(find("stock.days").transform, "number");
        assert_eq!(find("stock.symbol").transform, "keep");
        assert_eq!(find("unit_converter.value").default, Some(json!(1)));
        assert_eq!(find("unit_converter.from_unit").transform, "unit");
        for s in &slots {
            assert!(parse_transform(&s.transform).is_some());
        }
    }
}
