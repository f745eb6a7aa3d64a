//! Constrained decoding of tool calls: a byte-level grammar of the Hermes
//! answer (`<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`,
//! one or more blocks, then the end token) in which the name can only be a
//! registered tool and the arguments only satisfy that tool's JSON schema
//! (its properties, types, enums, integer bounds, required keys, no others).
//! [`Cursor::allows`] says whether a token's bytes may come next, so a mask
//! over the vocabulary makes an unparsable or invalid call impossible.

use std::sync::Arc;

use serde_json::Value;
use toolforge_core::ToolSpec;

/// Longest string value, in bytes (then only the closing quote may come).
const MAX_STRING_BYTES: usize = 160;
/// Most digits of an integer or of a number's integer part.
const MAX_DIGITS: usize = 12;
/// Most digits after a number's decimal point.
const MAX_FRACTION_DIGITS: usize = 6;
/// Most calls in one answer.
const MAX_CALLS: usize = 4;

/// The opening of a call block, up to the tool's name.
const CALL_OPEN: &str = "<tool_call>\n{\"name\": \"";

/// What one argument may hold.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    String,
    /// Literal JSON values (a string enum, or `true`/`false`).
    OneOf(Vec<String>),
    Integer {
        min: Option<i128>,
        max: Option<i128>,
    },
    /// An unbounded number (a bounded one is written as an integer within its bounds).
    Number,
}

#[derive(Debug, Clone)]
struct Prop {
    name: String,
    kind: Kind,
    required: bool,
}

#[derive(Debug, Clone)]
struct ToolGrammar {
    name: String,
    props: Vec<Prop>,
}

/// The calls a set of tools allows.
#[derive(Debug, Clone)]
pub struct DecisionGrammar {
    tools: Arc<Vec<ToolGrammar>>,
}

impl DecisionGrammar {
    /// The grammar of calls to `tools`. A tool whose required argument has a
    /// type this grammar cannot express (an object, an array) is left out;
    /// such optional arguments are never written.
    pub fn new(tools: &[ToolSpec]) -> Self {
        let grammars = tools.iter().filter_map(tool_grammar).collect();
        Self {
            tools: Arc::new(grammars),
        }
    }

    /// Names of the tools that can be called.
    pub fn tool_names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name.as_str()).collect()
    }

    /// A cursor at the start of an answer made of calls.
    pub fn start(&self) -> Cursor {
        Cursor {
            grammar: self.clone(),
            phase: Phase::Choice {
                alts: Arc::from(vec![Alt::new(CALL_OPEN, Next::Name)]),
                rep: 0,
                consumed: 0,
            },
            tool: 0,
            used: 0,
            calls: 0,
        }
    }
}

fn tool_grammar(spec: &ToolSpec) -> Option<ToolGrammar> {
    let schema = &spec.parameters;
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut props = Vec::new();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            let is_required = required.contains(&name.as_str());
            match kind_of(property) {
                Some(kind) => props.push(Prop {
                    name: name.clone(),
                    kind,
                    required: is_required,
                }),
                None if is_required => return None,
                None => {}
            }
        }
    }
    if props.len() > 64
        || name_needs_escaping(&spec.name)
        || props.iter().any(|p| name_needs_escaping(&p.name))
    {
        return None;
    }
    Some(ToolGrammar {
        name: spec.name.clone(),
        props,
    })
}

fn name_needs_escaping(name: &str) -> bool {
    name.chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
}

fn kind_of(property: &Value) -> Option<Kind> {
    if let Some(values) = property["enum"].as_array() {
        let literals: Vec<String> = values
            .iter()
            .filter(|v| v.is_string() || v.is_number() || v.is_boolean())
            .map(Value::to_string)
            .collect();
        return (!literals.is_empty()).then_some(Kind::OneOf(literals));
    }
    let types: Vec<&str> = match &property["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    };
    match types.first().copied()? {
        "string" => Some(Kind::String),
        "boolean" => Some(Kind::OneOf(vec!["true".into(), "false".into()])),
        "integer" => Some(Kind::Integer {
            min: property["minimum"].as_i64().map(i128::from),
            max: property["maximum"].as_i64().map(i128::from),
        }),
        "number" => {
            let (min, max) = (property["minimum"].as_f64(), property["maximum"].as_f64());
            if min.is_none() && max.is_none() {
                Some(Kind::Number)
            } else {
                let bound = |b: f64| b.clamp(-1e15, 1e15) as i128;
                Some(Kind::Integer {
                    min: min.map(|m| bound(m.ceil())),
                    max: max.map(|m| bound(m.floor())),
                })
            }
        }
        _ => None,
    }
}

/// Where a completed alternative leads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    /// The tool name comes next.
    Name,
    /// Tool `usize` was named; its arguments come next.
    Tool(usize),
    /// The arguments object is open; keys come next.
    ArgsOpen,
    /// Property `usize`'s key was written; its value comes next.
    Key(usize),
    /// A value was written.
    ValueDone,
    /// The call block is closed.
    CallClosed,
}

#[derive(Debug, Clone)]
struct Alt {
    text: Vec<u8>,
    next: Next,
}

impl Alt {
    /// Whether this alternative is still possible after `written` and has a
    /// byte at `written.len()`.
    fn continues(&self, written: &[u8]) -> bool {
        self.text.len() > written.len() && self.text.starts_with(written)
    }

    fn new(text: &str, next: Next) -> Self {
        Self {
            text: text.as_bytes().to_vec(),
            next,
        }
    }
}

#[derive(Debug, Clone)]
enum Phase {
    /// One of several literal texts; `rep` is a live one, `consumed` bytes of
    /// it are written (every live alternative shares them).
    Choice {
        alts: Arc<[Alt]>,
        rep: usize,
        consumed: usize,
    },
    /// Inside a string value: bytes so far, UTF-8 continuation bytes still
    /// due, and the range the next one must be in.
    Str {
        len: usize,
        pending: u8,
        range: (u8, u8),
    },
    /// An integer value being written.
    Int {
        prop: usize,
        digits: usize,
        negative: bool,
        value: i128,
    },
    /// A number value being written (`zero`: its integer part is a lone 0).
    Num {
        digits: usize,
        fraction: Option<usize>,
        negative: bool,
        zero: bool,
    },
    /// After the last call: another block, or the end.
    AfterCall { consumed: usize },
}

/// A position in the grammar; cheap to clone.
#[derive(Debug, Clone)]
pub struct Cursor {
    grammar: DecisionGrammar,
    phase: Phase,
    tool: usize,
    used: u64,
    calls: usize,
}

impl Cursor {
    /// Whether the answer may end here (after at least one whole call).
    pub fn can_end(&self) -> bool {
        matches!(self.phase, Phase::AfterCall { consumed: 0 })
    }

    /// Whether `bytes` may come next (all of them, in order).
    pub fn allows(&self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return false;
        }
        let mut probe = self.clone();
        bytes.iter().all(|b| probe.feed(*b))
    }

    /// The bytes of a shortest way from here to a complete answer (closing the
    /// open value, object and block): what a decoder appends when its token
    /// budget runs out, so even a cut-off answer is a valid one.
    pub fn shortest_completion(&self) -> Vec<u8> {
        // Close a string first ('"'), give an empty one a letter ('x'), then
        // end objects and numbers; digits reach a number's lower bound.
        const PREFERRED: &[u8] = b"\"x},0123456789";
        let mut probe = self.clone();
        let mut out = Vec::new();
        while !probe.can_end() && out.len() < 4_096 {
            let byte = match &probe.phase {
                Phase::Choice {
                    alts,
                    rep,
                    consumed,
                } => {
                    let at = *consumed;
                    let prefix = &alts[*rep].text[..at];
                    let live = alts.iter().filter(|alt| alt.continues(prefix));
                    let best = live.min_by_key(|alt| {
                        let closes = matches!(alt.next, Next::CallClosed | Next::ValueDone);
                        (!closes, alt.text.len())
                    });
                    match best {
                        Some(alt) => alt.text[at],
                        None => break,
                    }
                }
                Phase::Str { pending, range, .. } if *pending > 0 => range.0,
                Phase::AfterCall { consumed } => format!("\n{CALL_OPEN}").as_bytes()[*consumed],
                _ => match PREFERRED.iter().find(|b| probe.allows(&[**b])) {
                    Some(byte) => *byte,
                    None => break,
                },
            };
            if !probe.feed(byte) {
                break;
            }
            out.push(byte);
        }
        out
    }

    /// Takes `bytes`; false (and the cursor unusable) when one is not allowed.
    pub fn advance(&mut self, bytes: &[u8]) -> bool {
        bytes.iter().all(|b| self.feed(*b))
    }

    /// Takes one byte.
    pub fn feed(&mut self, byte: u8) -> bool {
        match &mut self.phase {
            Phase::Choice {
                alts,
                rep,
                consumed,
            } => {
                let at = *consumed;
                let prefix = &alts[*rep].text[..at];
                let Some(found) = alts
                    .iter()
                    .position(|alt| alt.continues(prefix) && alt.text[at] == byte)
                else {
                    return false;
                };
                *rep = found;
                *consumed += 1;
                if alts[found].text.len() == *consumed {
                    let next = alts[found].next;
                    self.enter(next);
                }
                true
            }
            Phase::Str {
                len,
                pending,
                range,
            } => {
                if *pending > 0 {
                    if byte < range.0 || byte > range.1 {
                        return false;
                    }
                    *pending -= 1;
                    *len += 1;
                    *range = (0x80, 0xBF);
                    return true;
                }
                match byte {
                    b'"' if *len > 0 => {
                        self.enter(Next::ValueDone);
                        true
                    }
                    _ if *len >= MAX_STRING_BYTES => false,
                    b'"' | b'\\' | 0x00..=0x1F | 0x7F => false,
                    0x20..=0x7E => {
                        *len += 1;
                        true
                    }
                    // The first continuation byte's range rules out overlong
                    // forms, surrogates and code points past U+10FFFF.
                    0xC2..=0xDF => self.start_utf8(1, (0x80, 0xBF)),
                    0xE0 => self.start_utf8(2, (0xA0, 0xBF)),
                    0xED => self.start_utf8(2, (0x80, 0x9F)),
                    0xE1..=0xEF => self.start_utf8(2, (0x80, 0xBF)),
                    0xF0 => self.start_utf8(3, (0x90, 0xBF)),
                    0xF4 => self.start_utf8(3, (0x80, 0x8F)),
                    0xF1..=0xF3 => self.start_utf8(3, (0x80, 0xBF)),
                    _ => false,
                }
            }
            Phase::Int {
                prop,
                digits,
                negative,
                value,
            } => {
                let Kind::Integer { min, max } =
                    self.grammar.tools[self.tool].props[*prop].kind.clone()
                else {
                    return false;
                };
                match byte {
                    b'-' if *digits == 0 && !*negative && min.is_none_or(|m| m < 0) => {
                        *negative = true;
                        true
                    }
                    b'0'..=b'9' => {
                        if *digits >= MAX_DIGITS || (*digits == 1 && *value == 0) {
                            return false;
                        }
                        let magnitude = *value * 10 + i128::from(byte - b'0');
                        if !integer_feasible(magnitude, *negative, *digits + 1, min, max) {
                            return false;
                        }
                        *value = magnitude;
                        *digits += 1;
                        true
                    }
                    b',' | b'}' => {
                        let signed = if *negative { -*value } else { *value };
                        let within =
                            min.is_none_or(|m| signed >= m) && max.is_none_or(|m| signed <= m);
                        if *digits == 0 || !within {
                            return false;
                        }
                        self.enter(Next::ValueDone);
                        self.feed(byte)
                    }
                    _ => false,
                }
            }
            Phase::Num {
                digits,
                fraction,
                negative,
                zero,
            } => match (byte, *fraction) {
                (b'-', None) if *digits == 0 && !*negative => {
                    *negative = true;
                    true
                }
                (b'0'..=b'9', None) if *digits < MAX_DIGITS && !*zero => {
                    *zero = *digits == 0 && byte == b'0';
                    *digits += 1;
                    true
                }
                (b'.', None) if *digits > 0 => {
                    *fraction = Some(0);
                    true
                }
                (b'0'..=b'9', Some(n)) if n < MAX_FRACTION_DIGITS => {
                    *fraction = Some(n + 1);
                    true
                }
                (b',' | b'}', fraction) if *digits > 0 && fraction != Some(0) => {
                    self.enter(Next::ValueDone);
                    self.feed(byte)
                }
                _ => false,
            },
            Phase::AfterCall { consumed } => {
                let open = format!("\n{CALL_OPEN}");
                let open = open.as_bytes();
                if self.calls >= MAX_CALLS || open.get(*consumed) != Some(&byte) {
                    return false;
                }
                *consumed += 1;
                if *consumed == open.len() {
                    self.enter(Next::Name);
                }
                true
            }
        }
    }

    /// A multi-byte character starts in a string value.
    fn start_utf8(&mut self, continuation: u8, first: (u8, u8)) -> bool {
        if let Phase::Str {
            len,
            pending,
            range,
        } = &mut self.phase
        {
            *len += 1;
            *pending = continuation;
            *range = first;
        }
        true
    }

    fn enter(&mut self, next: Next) {
        let tools = Arc::clone(&self.grammar.tools);
        self.phase = match next {
            Next::Name => {
                let alts: Vec<Alt> = tools
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Alt::new(&format!("{}\"", t.name), Next::Tool(i)))
                    .collect();
                choice(alts)
            }
            Next::Tool(tool) => {
                self.tool = tool;
                self.used = 0;
                choice(vec![Alt::new(", \"arguments\": {", Next::ArgsOpen)])
            }
            Next::ArgsOpen => choice(self.key_alternatives(true)),
            Next::Key(prop) => {
                self.used |= 1 << prop;
                match &tools[self.tool].props[prop].kind {
                    Kind::String => Phase::Str {
                        len: 0,
                        pending: 0,
                        range: (0x80, 0xBF),
                    },
                    Kind::OneOf(literals) => choice(
                        literals
                            .iter()
                            .map(|l| Alt::new(l, Next::ValueDone))
                            .collect(),
                    ),
                    Kind::Integer { .. } => Phase::Int {
                        prop,
                        digits: 0,
                        negative: false,
                        value: 0,
                    },
                    Kind::Number => Phase::Num {
                        digits: 0,
                        fraction: None,
                        negative: false,
                        zero: false,
                    },
                }
            }
            Next::ValueDone => choice(self.key_alternatives(false)),
            Next::CallClosed => {
                self.calls += 1;
                Phase::AfterCall { consumed: 0 }
            }
        };
    }

    /// The next key (`"key": ` first, `, "key": ` after a value) of each unused
    /// property, and the object's end once every required one is there.
    fn key_alternatives(&self, first: bool) -> Vec<Alt> {
        let tool = &self.grammar.tools[self.tool];
        let mut alts: Vec<Alt> = tool
            .props
            .iter()
            .enumerate()
            .filter(|(i, _)| self.used & (1 << i) == 0)
            .map(|(i, p)| {
                // A string value's opening quote is part of its key's text.
                let quote = if p.kind == Kind::String { "\"" } else { "" };
                let text = format!("{}\"{}\": {quote}", if first { "" } else { ", " }, p.name);
                Alt::new(&text, Next::Key(i))
            })
            .collect();
        let complete = tool
            .props
            .iter()
            .enumerate()
            .all(|(i, p)| !p.required || self.used & (1 << i) != 0);
        if complete {
            alts.push(Alt::new("}}\n</tool_call>", Next::CallClosed));
        }
        alts
    }
}

fn choice(alts: Vec<Alt>) -> Phase {
    Phase::Choice {
        alts: Arc::from(alts),
        rep: 0,
        consumed: 0,
    }
}

/// Whether an integer whose magnitude so far is `magnitude` (`digits` digits)
/// can still end within [min, max] with at most [`MAX_DIGITS`] digits.
fn integer_feasible(
    magnitude: i128,
    negative: bool,
    digits: usize,
    min: Option<i128>,
    max: Option<i128>,
) -> bool {
    let (low, high) = (min.unwrap_or(i128::MIN), max.unwrap_or(i128::MAX));
    if magnitude == 0 {
        // A leading zero takes no more digits.
        return (low..=high).contains(&0);
    }
    let mut scale: i128 = 1;
    for _ in digits..=MAX_DIGITS {
        let (a, b) = (magnitude * scale, magnitude * scale + scale - 1);
        let (from, to) = if negative { (-b, -a) } else { (a, b) };
        if to >= low && from <= high {
            return true;
        }
        scale *= 10;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_xoshiro::rand_core::{RngCore, SeedableRng};
    use serde_json::json;

    fn specs() -> Vec<ToolSpec> {
        let spec = |name: &str, parameters: Value| ToolSpec {
            name: name.into(),
            description: format!("{name} tool"),
            parameters,
        };
        vec![
            spec(
                "weather",
                json!({"type": "object", "properties": {"location": {"type": "string"}, "date": {"type": "string"}}, "required": ["location"]}),
            ),
            spec(
                "unit_converter",
                json!({"type": "object", "properties": {"value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}}, "required": ["value", "from_unit", "to_unit"]}),
            ),
            spec(
                "password",
                json!({"type": "object", "additionalProperties": false, "properties": {"length": {"type": "integer", "minimum": 4, "maximum": 128}, "symbols": {"type": "boolean"}}}),
            ),
            spec(
                "dice",
                json!({"type": "object", "properties": {"count": {"type": ["integer", "null"], "minimum": 1, "maximum": 100}, "sides": {"type": "integer", "minimum": -3, "maximum": 1000}}}),
            ),
            spec(
                "temperature",
                json!({"type": "object", "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}, "scale": {"type": "number", "minimum": 0.5, "maximum": 9.5}}, "required": ["unit"]}),
            ),
            spec("weather_now", json!({"type": "object", "properties": {}})),
            spec(
                "nested",
                json!({"type": "object", "properties": {"items": {"type": "array"}}, "required": ["items"]}),
            ),
        ]
    }

    /// The calls of an answer the grammar produced.
    fn parse(text: &str) -> Vec<(String, Value)> {
        text.split("<tool_call>\n")
            .skip(1)
            .map(|block| {
                let json = block.split("\n</tool_call>").next().unwrap();
                let value: Value =
                    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
                (
                    value["name"].as_str().unwrap().to_string(),
                    value["arguments"].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn every_random_walk_through_the_grammar_is_a_valid_call() {
        let tools = specs();
        let grammar = DecisionGrammar::new(&tools);
        assert!(!grammar.tool_names().contains(&"nested"));
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for _ in 0..300 {
            let mut cursor = grammar.start();
            let mut text = Vec::new();
            loop {
                if cursor.can_end() && rng.next_u32() % 3 == 0 {
                    break;
                }
                let allowed: Vec<u8> = (0..=255u8).filter(|b| cursor.allows(&[*b])).collect();
                assert!(
                    !allowed.is_empty() || cursor.can_end(),
                    "dead end after {:?}",
                    String::from_utf8_lossy(&text)
                );
                if allowed.is_empty() {
                    break;
                }
                let byte = allowed[rng.next_u32() as usize % allowed.len()];
                assert!(cursor.feed(byte));
                text.push(byte);
                assert!(text.len() < 10_000);
            }
            let text = String::from_utf8(text).expect("UTF-8");
            let calls = parse(&text);
            assert!(!calls.is_empty() && calls.len() <= MAX_CALLS);
            for (name, arguments) in calls {
                let spec = tools
                    .iter()
                    .find(|t| t.name == name)
                    .expect("a registered tool");
                spec.validate(&arguments)
                    .unwrap_or_else(|e| panic!("{e}: {arguments} in {text}"));
            }
        }
    }

    #[test]
    fn a_shortest_completion_closes_any_open_call() {
        let tools = specs();
        let grammar = DecisionGrammar::new(&tools);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        for _ in 0..300 {
            let mut cursor = grammar.start();
            let mut text = Vec::new();
            let steps = rng.next_u32() % 120;
            for _ in 0..steps {
                let allowed: Vec<u8> = (0..=255u8).filter(|b| cursor.allows(&[*b])).collect();
                if allowed.is_empty() {
                    break;
                }
                let byte = allowed[rng.next_u32() as usize % allowed.len()];
                cursor.feed(byte);
                text.push(byte);
            }
            let rest = cursor.shortest_completion();
            assert!(
                cursor.advance(&rest) && cursor.can_end(),
                "{}",
                String::from_utf8_lossy(&text)
            );
            text.extend(rest);
            for (name, arguments) in parse(&String::from_utf8(text).unwrap()) {
                let spec = tools.iter().find(|t| t.name == name).unwrap();
                spec.validate(&arguments)
                    .unwrap_or_else(|e| panic!("{e}: {arguments}"));
            }
        }
    }

    #[test]
    fn tokens_are_checked_whole() {
        let grammar = DecisionGrammar::new(&specs());
        let mut cursor = grammar.start();
        assert!(cursor.allows(b"<tool"));
        assert!(!cursor.allows(b"Sure"));
        assert!(cursor.advance(b"<tool_call>\n{\"name\": \"pass"));
        assert!(cursor.allows(b"word\""));
        assert!(!cursor.allows(b"port\""));
        assert!(cursor.advance(b"word\", \"arguments\": {\"length\": 1"));
        assert!(!cursor.allows(b"}"), "1 is below the minimum of 4");
        assert!(cursor.allows(b"2}"));
        assert!(!cursor.allows(b"29"), "129 is above the maximum");
        assert!(cursor.advance(b"6}}\n</tool_call>"));
        assert!(cursor.can_end());
    }
}
