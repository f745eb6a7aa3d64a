//! Compiled rules: every rule pattern of every tool in one `RegexSet` (one pass
//! over the text scores all tools), extraction patterns as individual `Regex`es,
//! and the fixed patterns used to split multi-tool queries. Built once per router.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde_json::{Map, Value};

use super::rules::{expand_vars, RuleDef, RuleError, RuleFile};
use super::text::{apply, clean, Transform};

const SIZE_LIMIT: usize = 256 << 20;

/// Who a rule speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Answer directly, no tool.
    Direct,
    /// Index into [`Compiled::tools`].
    Tool(usize),
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub owner: Owner,
    pub weight: f64,
    pub extract: Vec<Regex>,
}

#[derive(Debug)]
pub(crate) struct Arg {
    pub transform: Transform,
    pub reject: Option<Regex>,
    pub whole: Option<Regex>,
    pub default: Option<Value>,
}

#[derive(Debug)]
pub(crate) struct Tool {
    pub name: String,
    pub required: Vec<String>,
    pub fan_out: Option<String>,
    pub inherit: Vec<String>,
    pub no_split: bool,
    pub extract: Vec<Regex>,
    pub args: BTreeMap<String, Arg>,
}

/// The best firing rule of one tool (or of the direct rules) for a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    pub owner: Owner,
    pub weight: f64,
    pub rule: usize,
}

/// Hits for a text, strongest first (ties: earlier in the rule file first).
#[derive(Debug, Clone, Default)]
pub(crate) struct Scores {
    pub hits: Vec<Hit>,
}

impl Scores {
    pub fn best(&self) -> Option<Hit> {
        self.hits.first().copied()
    }

    pub fn best_tool(&self) -> Option<Hit> {
        self.hits
            .iter()
            .copied()
            .find(|h| matches!(h.owner, Owner::Tool(_)))
    }

    pub fn direct(&self) -> Option<Hit> {
        self.hits.iter().copied().find(|h| h.owner == Owner::Direct)
    }

    /// Strongest weight of any owner other than `owner`.
    pub fn runner_up(&self, owner: Owner) -> f64 {
        self.hits
            .iter()
            .find(|h| h.owner != owner)
            .map_or(0.0, |h| h.weight)
    }
}

#[derive(Debug)]
pub(crate) struct Compiled {
    set: RegexSet,
    /// For each pattern of `set`: the rule it belongs to and whether it is an `unless`.
    entries: Vec<(usize, bool)>,
    pub rules: Vec<Rule>,
    pub tools: Vec<Tool>,
}

fn regex(pattern: &str, location: &str) -> Result<Regex, RuleError> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| RuleError::Pattern {
            location: location.to_string(),
            message: e.to_string(),
        })
}

impl Compiled {
    /// A rule set with no rules: it matches nothing.
    pub fn empty() -> Self {
        Self {
            set: RegexSet::empty(),
            entries: Vec::new(),
            rules: Vec::new(),
            tools: Vec::new(),
        }
    }

    pub fn build(file: &RuleFile) -> Result<Self, RuleError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut locations: Vec<String> = Vec::new();
        let mut entries = Vec::new();
        let mut rules = Vec::new();
        let mut tools = Vec::new();
        let vars = &file.vars;

        let mut add_rule = |def: &RuleDef,
                            owner: Owner,
                            location: String,
                            rules: &mut Vec<Rule>|
         -> Result<(), RuleError> {
            if !(0.0..=1.0).contains(&def.weight) || def.weight.is_nan() {
                return Err(RuleError::Invalid {
                    location,
                    message: format!("weight {} is not in [0, 1]", def.weight),
                });
            }
            if def.patterns.is_empty() {
                return Err(RuleError::Invalid {
                    location,
                    message: "a rule needs at least one pattern".into(),
                });
            }
            let index = rules.len();
            for (kind, list, negative) in [
                ("patterns", &def.patterns, false),
                ("unless", &def.unless, true),
            ] {
                for (i, p) in list.iter().enumerate() {
                    let loc = format!("{location}.{kind}[{i}]");
                    patterns.push(expand_vars(p, vars, &loc)?);
                    locations.push(loc);
                    entries.push((index, negative));
                }
            }
            let extract = def
                .extract
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let loc = format!("{location}.extract[{i}]");
                    regex(&expand_vars(p, vars, &loc)?, &loc)
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                owner,
                weight: def.weight,
                extract,
            });
            Ok(())
        };

        for (i, def) in file.direct.iter().enumerate() {
            let location = rule_location("direct", def.id.as_deref(), i);
            add_rule(def, Owner::Direct, location, &mut rules)?;
        }
        for (t, tool) in file.tools.iter().enumerate() {
            let base = format!("tools.{}", tool.name);
            if tool.name.trim().is_empty() {
                return Err(RuleError::Invalid {
                    location: format!("tools[{t}]"),
                    message: "a tool needs a name".into(),
                });
            }
            if file.tools[..t].iter().any(|other| other.name == tool.name) {
                return Err(RuleError::Invalid {
                    location: base,
                    message: "the tool is defined twice".into(),
                });
            }
            for (i, def) in tool.rules.iter().enumerate() {
                let location = rule_location(&format!("{base}.rules"), def.id.as_deref(), i);
                add_rule(def, Owner::Tool(t), location, &mut rules)?;
            }
            let extract = tool
                .extract
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let loc = format!("{base}.extract[{i}]");
                    regex(&expand_vars(p, vars, &loc)?, &loc)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut args = BTreeMap::new();
            for (name, def) in &tool.args {
                let loc = format!("{base}.args.{name}.reject");
                let reject = match &def.reject {
                    Some(p) => Some(regex(&expand_vars(p, vars, &loc)?, &loc)?),
                    None => None,
                };
                let loc = format!("{base}.args.{name}.whole");
                let whole = match &def.whole {
                    Some(p) => Some(regex(&expand_vars(p, vars, &loc)?, &loc)?),
                    None => None,
                };
                args.insert(
                    name.clone(),
                    Arg {
                        transform: def.transform,
                        reject,
                        whole,
                        default: def.default.clone(),
                    },
                );
            }
            tools.push(Tool {
                name: tool.name.clone(),
                required: tool.required.clone(),
                fan_out: tool.fan_out.clone(),
                inherit: tool.inherit.clone(),
                no_split: tool.no_split,
                extract,
                args,
            });
        }

        let set = RegexSetBuilder::new(&patterns)
            .case_insensitive(true)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| {
                // Name the culprit: compile the patterns one by one.
                patterns
                    .iter()
                    .zip(&locations)
                    .find_map(|(p, loc)| regex(p, loc).err())
                    .unwrap_or(RuleError::Pattern {
                        location: "rule set".into(),
                        message: e.to_string(),
                    })
            })?;
        Ok(Self {
            set,
            entries,
            rules,
            tools,
        })
    }

    /// Scores `text`: the best firing rule per tool (for tools `allowed`) and for direct answers.
    pub fn score(&self, text: &str, allowed: &[bool]) -> Scores {
        if text.is_empty() {
            return Scores::default();
        }
        // 1 = a pattern matched, 2 = an `unless` matched.
        let mut state = vec![0u8; self.rules.len()];
        for index in self.set.matches(text).iter() {
            if let Some(&(rule, negative)) = self.entries.get(index) {
                state[rule] |= if negative { 2 } else { 1 };
            }
        }
        let mut best: Vec<Hit> = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if state[i] != 1 {
                continue;
            }
            if let Owner::Tool(t) = rule.owner {
                if !allowed.get(t).copied().unwrap_or(false) {
                    continue;
                }
            }
            match best.iter_mut().find(|h| h.owner == rule.owner) {
                Some(hit) if hit.weight >= rule.weight => {}
                Some(hit) => {
                    hit.weight = rule.weight;
                    hit.rule = i;
                }
                None => best.push(Hit {
                    owner: rule.owner,
                    weight: rule.weight,
                    rule: i,
                }),
            }
        }
        best.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.rule.cmp(&b.rule)));
        Scores { hits: best }
    }

    /// Extracts arguments of `tool` from `text`, the winning `rule`'s patterns first.
    /// Returns one argument map per item when the tool's fan-out argument holds a list.
    pub fn extract(&self, tool: usize, rule: usize, text: &str) -> Vec<Map<String, Value>> {
        let Some(spec) = self.tools.get(tool) else {
            return Vec::new();
        };
        let rule_patterns = self.rules.get(rule).map_or(&[][..], |r| &r.extract[..]);
        let mut found: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for re in rule_patterns.iter().chain(&spec.extract) {
            let Some(caps) = re.captures(text) else {
                continue;
            };
            for name in re.capture_names().flatten() {
                if found.contains_key(name) {
                    continue;
                }
                let Some(m) = caps.name(name) else {
                    continue;
                };
                if let Some(values) = self.arg_values(spec, name, m.as_str()) {
                    found.insert(name.to_string(), values);
                }
            }
        }
        for (name, arg) in &spec.args {
            if let Some(default) = &arg.default {
                found
                    .entry(name.clone())
                    .or_insert_with(|| vec![default.clone()]);
            }
        }
        let mut base = Map::new();
        let mut items = Vec::new();
        for (name, mut values) in found {
            if spec.fan_out.as_deref() == Some(name.as_str()) && values.len() > 1 {
                items = values.into_iter().map(|v| (name.clone(), v)).collect();
            } else if let Some(v) = values.pop() {
                base.insert(name, v);
            }
        }
        if items.is_empty() {
            return vec![base];
        }
        items
            .into_iter()
            .map(|(name, v)| {
                let mut map = base.clone();
                map.insert(name, v);
                map
            })
            .collect()
    }

    /// Cleans, checks and transforms one captured value; a fan-out argument is
    /// split into its list items. `None` when nothing usable remains.
    fn arg_values(&self, tool: &Tool, name: &str, raw: &str) -> Option<Vec<Value>> {
        let arg = tool.args.get(name);
        let transform = arg.map_or(Transform::Keep, |a| a.transform);
        let reject = arg.and_then(|a| a.reject.as_ref());
        let whole = arg.and_then(|a| a.whole.as_ref());
        let cleaned = clean(raw, transform);
        let parts: Vec<String> = if tool.fan_out.as_deref() == Some(name)
            && !whole.is_some_and(|w| w.is_match(&cleaned))
        {
            split_list(&cleaned)
        } else {
            vec![cleaned]
        };
        // In a list, unusable items are skipped ("Tokyo and 25°C" -> Tokyo).
        let mut values = Vec::new();
        for part in parts {
            let part = clean(&part, transform);
            if part.is_empty() || reject.is_some_and(|r| r.is_match(&part)) {
                continue;
            }
            if let Some(value) = apply(transform, &part) {
                values.push(value);
            }
        }
        (!values.is_empty()).then_some(values)
    }
}

fn rule_location(base: &str, id: Option<&str>, index: usize) -> String {
    match id {
        Some(id) => format!("{base}[{index}] ({id})"),
        None => format!("{base}[{index}]"),
    }
}

/// Splits "Paris, London and Rome" into its items. Commas split only in a list
/// that also has "and" / "&", so "Paris, France" stays one item.
fn split_list(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let has_and = lower.contains(" and ") || lower.contains(" & ");
    if !has_and {
        return vec![text.to_string()];
    }
    let mut items = Vec::new();
    for chunk in text.split(',') {
        let mut rest = chunk.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            let cut = [" and ", " & "]
                .iter()
                .filter_map(|sep| lower.find(sep).map(|at| (at, sep.len())))
                .min();
            match cut {
                Some((at, len)) if rest.is_char_boundary(at) && rest.is_char_boundary(at + len) => {
                    items.push(rest[..at].trim().to_string());
                    rest = rest[at + len..].trim();
                }
                _ => break,
            }
        }
        let last = rest.trim();
        let last = last
            .strip_prefix("and ")
            .or_else(|| last.strip_prefix("& "))
            .unwrap_or(last);
        items.push(last.trim().to_string());
    }
    items.retain(|i| !i.is_empty());
    items
}
