//! The built-in offline teacher: a grammar/template generator with embedded
//! gazetteers that emits labeled routing examples (`source: "teacher:offline"`)
//! so a router can be trained without any API key.
//!
//! Every example is built from labeled segments (see `template`): the argument
//! values are derived from the exact text that ends up in the query, after
//! style noise (case, punctuation, typos, abbreviations, fillers, emoji), and
//! follow `docs/labeling.md`. Class proportions come from [`ClassMix`];
//! output is deterministic for a seed and free of duplicate queries.
//!
//! ```
//! use toolforge_trainer::generate::{ClassMix, Generator};
//!
//! let mut generator = Generator::new(7, ClassMix::default());
//! let examples = generator.generate(50);
//! assert_eq!(examples.len(), 50);
//! assert!(examples.iter().all(|e| e.source == "teacher:offline"));
//! ```

mod actions;
mod examples;
mod gazetteer;
mod math;
mod rng;
mod slots;
mod style;
mod template;
mod templates;
mod units;

pub use examples::{ExampleGenerator, ExamplesError};

use std::collections::HashSet;

use serde_json::{json, Map, Value};
use toolforge_core::ToolCall;

use crate::dataset::Example;
use gazetteer::Gazetteers;
use rng::Rng;
use slots::{build_clause, Clause, Form};
use style::Noise;
use template::Seg;

/// The `source` of every generated example.
pub const SOURCE: &str = "teacher:offline";

/// The classes the offline generator writes, with their default weights: the
/// tools it has templates for, `no_tool`, and `multi` (two or three
/// sub-requests). Defaults follow the write-up: single-tool and no-tool classes
/// summing to ~100, plus autonomous tasks and multi-tool chains on top.
const DEFAULT_MIX: [(&str, f64); 12] = [
    ("web_search", 24.0),
    ("calculator", 13.0),
    ("weather", 12.0),
    ("translate", 11.0),
    ("wikipedia", 11.0),
    ("no_tool", 10.0),
    ("unsupported", 6.0),
    ("dictionary", 7.0),
    ("datetime", 6.0),
    ("unit_converter", 5.0),
    ("autonomous_task", 5.0),
    ("multi", 8.0),
];

/// A `--mix` that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MixError {
    /// A class the generator has no templates for.
    #[error("unknown class `{class}`; classes: {known}")]
    UnknownClass {
        /// The name given.
        class: String,
        /// The known classes, comma-separated.
        known: String,
    },
    /// A part that is not `name=weight` with a finite weight ≥ 0.
    #[error("`{0}`: expected name=weight with a weight ≥ 0")]
    Malformed(String),
}

/// Relative weights of the generated classes, keyed by class name (a tool's
/// name, `no_tool` or `multi`); they need not sum to 1 (they are renormalised).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMix {
    weights: Vec<(&'static str, f64)>,
}

impl Default for ClassMix {
    fn default() -> Self {
        Self {
            weights: DEFAULT_MIX.to_vec(),
        }
    }
}

impl ClassMix {
    /// Every class at weight 0; [`ClassMix::set`] then picks some.
    pub fn none() -> Self {
        Self {
            weights: DEFAULT_MIX.iter().map(|(c, _)| (*c, 0.0)).collect(),
        }
    }

    /// The default mix with `text`'s weights (`name=weight,...`) applied.
    ///
    /// ```
    /// use toolforge_trainer::generate::ClassMix;
    ///
    /// let mix = ClassMix::parse("web_search=30, no_tool=15").unwrap();
    /// assert_eq!(mix.weight("web_search"), 30.0);
    /// assert_eq!(mix.weight("calculator"), 13.0);
    /// assert!(ClassMix::parse("dice=3").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, MixError> {
        let mut mix = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| MixError::Malformed(part.to_string()))?;
            let weight: f64 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| MixError::Malformed(part.to_string()))?;
            mix.set(name.trim(), weight)?;
        }
        Ok(mix)
    }

    /// Sets one class's weight.
    pub fn set(&mut self, class: &str, weight: f64) -> Result<(), MixError> {
        match self.weights.iter_mut().find(|(c, _)| *c == class) {
            Some(entry) => {
                entry.1 = weight;
                Ok(())
            }
            None => Err(MixError::UnknownClass {
                class: class.to_string(),
                known: self
                    .weights
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// One class's weight (0 for a class the mix does not have).
    pub fn weight(&self, class: &str) -> f64 {
        self.weights
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(0.0, |(_, w)| *w)
    }

    /// `(class, weight)` pairs in a fixed order; class names are the tool names
    /// plus `no_tool` and `multi` (as written to `meta.category`).
    pub fn weights(&self) -> &[(&'static str, f64)] {
        &self.weights
    }

    /// Normalised shares, in the order of [`ClassMix::weights`]; all zero when
    /// no weight is positive.
    pub fn shares(&self) -> Vec<(&'static str, f64)> {
        let mut w = self.weights.clone();
        let total: f64 = w.iter().map(|(_, x)| x.max(0.0)).sum();
        for (_, x) in w.iter_mut() {
            *x = if total > 0.0 { x.max(0.0) / total } else { 0.0 };
        }
        w
    }

    /// How many of `n` examples each class gets (largest remainder, sums to `n`
    /// when any weight is positive).
    pub fn quotas(&self, n: usize) -> Vec<(&'static str, usize)> {
        let shares = self.shares();
        if shares.iter().all(|(_, s)| *s == 0.0) {
            return shares.iter().map(|(c, _)| (*c, 0)).collect();
        }
        let mut out: Vec<(&'static str, usize, f64)> = shares
            .iter()
            .map(|(c, s)| {
                let exact = s * n as f64;
                (*c, exact.floor() as usize, exact - exact.floor())
            })
            .collect();
        let assigned: usize = out.iter().map(|o| o.1).sum();
        let mut order: Vec<usize> = (0..out.len()).collect();
        order.sort_by(|a, b| out[*b].2.total_cmp(&out[*a].2).then(a.cmp(b)));
        for i in order.into_iter().take(n.saturating_sub(assigned)) {
            out[i].1 += 1;
        }
        out.into_iter().map(|(c, k, _)| (c, k)).collect()
    }
}

/// The offline teacher. Deterministic for a seed; never repeats a query
/// (compared lowercased, without punctuation) across calls on one generator.
pub struct Generator {
    rng: Rng,
    mix: ClassMix,
    gaz: Gazetteers,
    noise: Noise,
    seen: HashSet<String>,
}

const LEAD_Q: &[&str] = &[
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "hey ",
    "hey, ",
    "hi, ",
    "hello, ",
    "quick question: ",
    "quick question, ",
    "so ",
    "ok so ",
    "um ",
    "hey so ",
    "question: ",
    "sorry, ",
    "hi there! ",
    "yo ",
    "excuse me, ",
    "one more thing, ",
    "thanks! and ",
    "ok cool, ",
    "hmm ",
    "random question but ",
    "hey quick one, ",
    "good morning! ",
    "so i'm at work and bored, ",
    "quick sanity check: ",
    "i was just wondering, ",
    "not urgent but ",
    "this might be a dumb question but ",
    "sorry to bother you, ",
];
const LEAD_I: &[&str] = &[
    "",
    "",
    "",
    "",
    "",
    "",
    "please ",
    "can you ",
    "could you ",
    "can u ",
    "would you ",
    "pls ",
    "hey can you ",
    "hey, could you ",
    "i need you to ",
    "go ahead and ",
    "quickly ",
    "kindly ",
    "yo ",
    "hey! ",
    "ok now ",
    "can you please ",
    "could u ",
    "when you get a chance, ",
    "real quick, ",
    "sorry to bother you but could you ",
    "before i forget, ",
];
const LEAD_N: &[&str] = &[
    "",
    "",
    "",
    "",
    "what's the ",
    "i need the ",
    "give me the ",
    "show me the ",
    "tell me the ",
    "i wanna know the ",
    "can you get me the ",
    "can u give me the ",
    "need the ",
    "check the ",
    "hey what's the ",
    "lemme see the ",
    "i'd like the ",
    "gimme the ",
    "whats the ",
];
const LEAD_T: &[&str] = &["", "", "", "", "", "", "", "", "", "", "hey ", "yo "];
const LEAD_S: &[&str] = &[
    "", "", "", "", "", "", "hey, ", "hi! ", "so ", "ok so ", "um ",
];

const TAIL_Q: &[&str] = &[
    "?", "?", "?", "?", "?", "?", "", "", "", "", "??", "? thanks", "? thx", " please?", "?!",
    "? 🙏", " pls", "? ty", " lol", "...", "? asap",
];
const TAIL_I: &[&str] = &[
    "",
    "",
    "",
    "",
    ".",
    ".",
    " please",
    " pls",
    " for me",
    " for me please",
    "!",
    " thanks",
    " thx",
    " asap",
    " please?",
    "?",
];
const TAIL_N: &[&str] = &[
    "", "", "", "", "?", "?", " please", " pls", " thanks", " for me",
];
const TAIL_T: &[&str] = &[
    "", "", "", "", "", "", "", "", "?", "?", "?", " pls", " plz", " please", "??",
];
const TAIL_S: &[&str] = &["", "", "", "?", "?", "?", ".", " thanks!", " thx", "!"];

const CONNECTORS: &[&str] = &[
    " and ",
    " and ",
    " and ",
    " and also ",
    ", also ",
    ". also ",
    " then ",
    ", then ",
    " & ",
    ", plus ",
    "; ",
    ". and ",
    " and then ",
    ". Also, ",
    " + ",
    ", and ",
    " also ",
    ". ",
    " and can you ",
    ", and then ",
];
const CONNECTORS_AFTER_Q: &[&str] = &["? and ", "? also ", "? ", "? and then "];

fn leads(form: Form) -> &'static [&'static str] {
    match form {
        Form::Question => LEAD_Q,
        Form::Imperative => LEAD_I,
        Form::Noun => LEAD_N,
        Form::Terse => LEAD_T,
        Form::Sentence => LEAD_S,
    }
}

/// Lead-ins that only make sense for one tool's questions.
fn tool_leads(tool: Option<&str>) -> Vec<&'static str> {
    tool.and_then(toolforge_tools::knowledge::for_tool)
        .map(|knowledge| knowledge.leads())
        .unwrap_or_default()
}

fn tails(form: Form) -> &'static [&'static str] {
    match form {
        Form::Question => TAIL_Q,
        Form::Imperative => TAIL_I,
        Form::Noun => TAIL_N,
        Form::Terse => TAIL_T,
        Form::Sentence => TAIL_S,
    }
}

fn inner_leads(form: Form) -> &'static [&'static str] {
    match form {
        Form::Noun => &["the ", "what's the ", "give me the ", "also the ", "the "],
        Form::Imperative => &["", "", "please ", "also "],
        Form::Question => &["", "", "", "also "],
        _ => &[""],
    }
}

/// Lowercased, punctuation-free, single-spaced text for duplicate checks.
fn normalise(query: &str) -> String {
    query
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Generator {
    /// A generator with its own PRNG stream for `seed` and class mix `mix`.
    pub fn new(seed: u64, mix: ClassMix) -> Self {
        Self {
            rng: Rng::new(seed),
            mix,
            gaz: Gazetteers::load(),
            noise: Noise::default(),
            seen: HashSet::new(),
        }
    }

    /// The class mix in use.
    pub fn mix(&self) -> &ClassMix {
        &self.mix
    }

    /// `n` labeled examples in the configured mix, shuffled. Fewer only if the
    /// generator cannot find new distinct queries (not the case at dataset
    /// sizes of tens of thousands).
    pub fn generate(&mut self, n: usize) -> Vec<Example> {
        let mut classes: Vec<&'static str> = Vec::with_capacity(n);
        for (class, count) in self.mix.quotas(n) {
            classes.extend(std::iter::repeat_n(class, count));
        }
        self.rng.shuffle(&mut classes);
        let mut out = Vec::with_capacity(n);
        for class in classes {
            for _ in 0..200 {
                let Some(example) = self.example(class) else {
                    continue;
                };
                let key = normalise(&example.query);
                if key.is_empty() || !self.seen.insert(key) {
                    continue;
                }
                out.push(example);
                break;
            }
        }
        out
    }

    fn clause(&mut self, class: &'static str, chain: bool) -> Option<Clause> {
        for _ in 0..30 {
            if let Some(c) = build_clause(&self.gaz, class, chain, &mut self.rng) {
                return Some(c);
            }
        }
        None
    }

    fn example(&mut self, class: &'static str) -> Option<Example> {
        let clauses = match class {
            "multi" => self.chain_clauses()?,
            class => vec![self.clause(class, false)?],
        };
        let (mut segs, has_lead) = self.assemble(&clauses);
        template::tidy(&mut segs);
        let mut noise = self.noise;
        if has_lead {
            noise.filler = 0.0;
        }
        let tags = style::apply(&mut segs, &noise, &mut self.rng);
        let query = template::tidy(&mut segs);
        let calls = calls_from(&clauses, &segs);
        let template_id = clauses
            .iter()
            .map(|c| c.template.clone())
            .collect::<Vec<_>>()
            .join("+");
        let style = if tags.is_empty() {
            "clean".to_string()
        } else {
            tags.join("+")
        };
        Some(Example {
            query,
            calls,
            source: SOURCE.to_string(),
            meta: json!({"category": class, "style": style, "template": template_id}),
            unsupported: class == "unsupported",
            ..Example::default()
        })
    }

    fn chain_clauses(&mut self) -> Option<Vec<Clause>> {
        let k = if self.rng.chance(0.18) { 3 } else { 2 };
        let tools: Vec<(&'static str, f64)> = self
            .mix
            .weights()
            .iter()
            .filter(|(c, _)| !["no_tool", "unsupported", "multi", "autonomous_task"].contains(c))
            .map(|(c, w)| (*c, w.max(0.0) + 1.0))
            .collect();
        let weights: Vec<f64> = tools.iter().map(|t| t.1).collect();
        let mut chosen: Vec<&'static str> = Vec::new();
        while chosen.len() < k {
            let tool = tools[self.rng.weighted(&weights)].0;
            let repeat_ok = self.rng.chance(0.08);
            if chosen.contains(&tool) && !repeat_ok {
                continue;
            }
            chosen.push(tool);
        }
        let mut clauses = Vec::new();
        for tool in chosen {
            clauses.push(self.clause(tool, true)?);
        }
        Some(clauses)
    }

    /// Lead-in, clauses joined by connectors (calls in query order), ending;
    /// also whether a lead-in was used.
    fn assemble(&mut self, clauses: &[Clause]) -> (Vec<Seg>, bool) {
        let mut segs = Vec::new();
        let first_form = clauses.first().map(|c| c.form).unwrap_or(Form::Sentence);
        let last_form = clauses.last().map(|c| c.form).unwrap_or(Form::Sentence);
        let single_tool = match clauses {
            [only] => only.tool,
            _ => None,
        };
        let topical = tool_leads(single_tool);
        let lead = if !topical.is_empty()
            && matches!(first_form, Form::Question | Form::Imperative)
            && self.rng.chance(0.1)
        {
            self.rng.pick_str(&topical)
        } else {
            self.rng.pick_str(leads(first_form))
        };
        segs.push(Seg::free(lead));
        for (i, clause) in clauses.iter().enumerate() {
            if i > 0 {
                let prev = clauses[i - 1].form;
                let mut conn = if prev == Form::Question && self.rng.chance(0.4) {
                    self.rng.pick_str(CONNECTORS_AFTER_Q)
                } else {
                    self.rng.pick_str(CONNECTORS)
                };
                if conn.ends_with("can you ") && clause.form != Form::Imperative {
                    conn = " and ";
                }
                segs.push(Seg::free(conn));
                let inner = if conn.ends_with("can you ") {
                    ""
                } else {
                    self.rng.pick_str(inner_leads(clause.form))
                };
                segs.push(Seg::free(inner));
            }
            for seg in &clause.segs {
                let mut seg = seg.clone();
                seg.call = i;
                segs.push(seg);
            }
        }
        let mut tail = self.rng.pick_str(tails(last_form));
        let polite = |t: &str| ["please", "pls", "plz"].iter().any(|p| t.contains(p));
        for _ in 0..5 {
            if !(polite(lead) && polite(tail)) {
                break;
            }
            tail = self.rng.pick_str(tails(last_form));
        }
        if polite(lead) && polite(tail) {
            tail = "";
        }
        segs.push(Seg::free(tail));
        (segs, !lead.is_empty())
    }
}

fn calls_from(clauses: &[Clause], segs: &[Seg]) -> Vec<ToolCall> {
    let mut calls = Vec::new();
    for (i, clause) in clauses.iter().enumerate() {
        let Some(tool) = clause.tool else {
            continue;
        };
        let mut args = Map::new();
        for seg in segs.iter().filter(|s| s.call == i) {
            if let Some((name, value)) = seg.value() {
                args.insert(name.to_string(), value);
            }
        }
        calls.push(ToolCall::new(tool, Value::Object(args)));
    }
    calls
}

#[cfg(test)]
mod tests;
