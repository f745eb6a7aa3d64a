//! The rule file format of the regex router (TOML) and its errors. A file holds
//! `[vars]` (reusable pattern pieces written `{{name}}`), `[[direct]]` rules for
//! queries answered without a tool, and `[[tools]]`, each with its argument
//! transforms, extraction patterns and an ordered list of weighted rules.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::text::Transform;

/// Why a rule file could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The text is not valid TOML or does not have the rule file's shape.
    #[error("invalid rule file: {0}")]
    Toml(String),
    /// A pattern is not a valid regular expression.
    #[error("invalid pattern in {location}: {message}")]
    Pattern {
        /// Where the pattern is (`tools.weather.rules[2].patterns[0]`, ...).
        location: String,
        /// The regex compiler's explanation.
        message: String,
    },
    /// A pattern uses a `{{name}}` that `[vars]` does not define.
    #[error("unknown variable `{{{{{name}}}}}` in {location}")]
    UnknownVar {
        /// Where the pattern is.
        location: String,
        /// The variable name.
        name: String,
    },
    /// Any other inconsistency (bad weight, rule without patterns, ...).
    #[error("invalid rule in {location}: {message}")]
    Invalid {
        /// Where the problem is.
        location: String,
        /// What is wrong.
        message: String,
    },
}

/// A whole rule file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    /// Format version; only 1 exists.
    #[serde(default)]
    pub version: Option<u32>,
    /// Reusable pattern pieces, written `{{name}}` inside patterns.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Rules for queries answered directly, without any tool.
    #[serde(default)]
    pub direct: Vec<RuleDef>,
    /// Per-tool rules.
    #[serde(default)]
    pub tools: Vec<ToolDef>,
}

/// The rules of one tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolDef {
    pub name: String,
    /// Arguments a call needs, used when the route context has no schema for the tool.
    #[serde(default)]
    pub required: Vec<String>,
    /// An argument whose list value ("Paris and London") yields one call per item.
    #[serde(default)]
    pub fan_out: Option<String>,
    /// Arguments taken from a neighbouring call when missing (or "there").
    #[serde(default)]
    pub inherit: Vec<String>,
    /// When this tool wins the whole query, the query is not split into several calls.
    #[serde(default)]
    pub no_split: bool,
    /// Extraction patterns; named groups are argument names. Tried in order after
    /// the winning rule's own `extract` patterns; the first capture of an argument wins.
    #[serde(default)]
    pub extract: Vec<String>,
    /// Per-argument clean-up.
    #[serde(default)]
    pub args: BTreeMap<String, ArgDef>,
    /// Ordered rules.
    #[serde(default)]
    pub rules: Vec<RuleDef>,
}

/// Clean-up of one argument.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArgDef {
    #[serde(default)]
    pub transform: Transform,
    /// A capture matching this pattern (anywhere; anchor it for a whole match) is
    /// discarded and the next extraction pattern is tried.
    #[serde(default)]
    pub reject: Option<String>,
    /// For the fan-out argument: values matching this pattern are never split into
    /// a list ("Bosnia and Herzegovina").
    #[serde(default)]
    pub whole: Option<String>,
    /// Value used when no extraction pattern captures the argument
    /// ("how many cups in gallon" -> `value = 1`).
    #[serde(default)]
    pub default: Option<serde_json::Value>,
}

/// One weighted rule: it fires when any of `patterns` matches and none of `unless` does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDef {
    #[serde(default)]
    pub id: Option<String>,
    /// Strength in [0, 1]; the strongest firing rule decides the tool.
    pub weight: f64,
    pub patterns: Vec<String>,
    #[serde(default)]
    pub unless: Vec<String>,
    /// Extraction patterns tried before the tool's own.
    #[serde(default)]
    pub extract: Vec<String>,
}

impl RuleFile {
    /// Parses a rule file.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Toml(e.to_string()))?;
        if let Some(version) = file.version {
            if version != 1 {
                return Err(RuleError::Invalid {
                    location: "version".into(),
                    message: format!("unsupported rule format version {version} (expected 1)"),
                });
            }
        }
        Ok(file)
    }

    /// Adds `extra` to these rules: new variables and tools are added, variables of
    /// the same name are replaced, and rules of an existing tool are appended (its
    /// extraction patterns go first, so user patterns take precedence).
    pub fn merge(&mut self, extra: RuleFile) {
        self.vars.extend(extra.vars);
        self.direct.extend(extra.direct);
        for tool in extra.tools {
            match self.tools.iter_mut().find(|t| t.name == tool.name) {
                Some(existing) => {
                    for name in tool.required {
                        if !existing.required.contains(&name) {
                            existing.required.push(name);
                        }
                    }
                    if tool.fan_out.is_some() {
                        existing.fan_out = tool.fan_out;
                    }
                    existing.inherit.extend(tool.inherit);
                    existing.no_split |= tool.no_split;
                    let mut extract = tool.extract;
                    extract.append(&mut existing.extract);
                    existing.extract = extract;
                    existing.args.extend(tool.args);
                    existing.rules.extend(tool.rules);
                }
                None => self.tools.push(tool),
            }
        }
    }
}

/// Replaces every `{{name}}` in `pattern` by the variable's text (wrapped in a
/// non-capturing group). Variables may use other variables, up to a small depth.
pub(crate) fn expand_vars(
    pattern: &str,
    vars: &BTreeMap<String, String>,
    location: &str,
) -> Result<String, RuleError> {
    expand_depth(pattern, vars, location, 0)
}

fn expand_depth(
    pattern: &str,
    vars: &BTreeMap<String, String>,
    location: &str,
    depth: usize,
) -> Result<String, RuleError> {
    if depth > 8 {
        return Err(RuleError::Invalid {
            location: location.to_string(),
            message: "variables nest too deeply (a variable refers to itself?)".into(),
        });
    }
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = after[..end].trim();
        let value = vars.get(name).ok_or_else(|| RuleError::UnknownVar {
            location: location.to_string(),
            name: name.to_string(),
        })?;
        out.push_str("(?:");
        out.push_str(&expand_depth(value, vars, location, depth + 1)?);
        out.push(')');
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_nested_vars() {
        let mut vars = BTreeMap::new();
        vars.insert("a".to_string(), "x|{{b}}".to_string());
        vars.insert("b".to_string(), "y".to_string());
        assert_eq!(expand_vars("^{{a}}$", &vars, "t").unwrap(), "^(?:x|(?:y))$");
        assert_eq!(expand_vars(r"\d{2}", &vars, "t").unwrap(), r"\d{2}");
        let err = expand_vars("{{nope}}", &vars, "tools.x").unwrap_err();
        assert_eq!(err.to_string(), "unknown variable `{{nope}}` in tools.x");
        vars.insert("loop".to_string(), "{{loop}}".to_string());
        assert!(expand_vars("{{loop}}", &vars, "t").is_err());
    }

    #[test]
    fn rejects_unknown_fields_and_versions() {
        assert!(matches!(
            RuleFile::parse("[[tools]]\nname = \"x\"\nbogus = 1\n"),
            Err(RuleError::Toml(_))
        ));
        assert!(matches!(
            RuleFile::parse("version = 2\n"),
            Err(RuleError::Invalid { .. })
        ));
    }
}
