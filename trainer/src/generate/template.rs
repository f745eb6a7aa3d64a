//! The template mini-language and labeled text segments.
//!
//! A template is text with `{slot}` placeholders, `(a|b|)` choices (an empty
//! branch makes the group optional; groups nest) and `[...]` marking the span
//! that becomes a verbatim argument (a web query, a goal). `\` escapes a
//! special character. Rendering yields [`Seg`]s: text pieces that know which
//! argument, if any, they carry, so style noise can change the query and the
//! labels stay in step.

use serde_json::Value;

use super::rng::Rng;

/// A parsed template node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Slot(String),
    Choice(Vec<Vec<Node>>),
    Span(Vec<Node>),
}

/// A resolved template item (choices made).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Text(String),
    Slot(String),
    SpanOpen,
    SpanClose,
}

/// Parses a template; unbalanced brackets are closed at the end.
pub(crate) fn parse(template: &str) -> Vec<Node> {
    let chars: Vec<char> = template.chars().collect();
    let mut pos = 0;
    parse_seq(&chars, &mut pos, None)
}

fn push_text(nodes: &mut Vec<Node>, text: &mut String) {
    if !text.is_empty() {
        nodes.push(Node::Text(std::mem::take(text)));
    }
}

fn parse_seq(chars: &[char], pos: &mut usize, until: Option<char>) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut text = String::new();
    while *pos < chars.len() {
        let c = chars[*pos];
        match c {
            '\\' => {
                *pos += 1;
                if let Some(next) = chars.get(*pos) {
                    text.push(*next);
                }
                *pos += 1;
            }
            '{' => {
                push_text(&mut nodes, &mut text);
                *pos += 1;
                let mut name = String::new();
                while *pos < chars.len() && chars[*pos] != '}' {
                    name.push(chars[*pos]);
                    *pos += 1;
                }
                *pos += 1;
                nodes.push(Node::Slot(name));
            }
            '(' => {
                push_text(&mut nodes, &mut text);
                *pos += 1;
                let mut branches = Vec::new();
                loop {
                    let branch = parse_seq(chars, pos, Some('|'));
                    branches.push(branch);
                    match chars.get(*pos) {
                        Some('|') => *pos += 1,
                        Some(')') => {
                            *pos += 1;
                            break;
                        }
                        _ => break,
                    }
                }
                nodes.push(Node::Choice(branches));
            }
            '[' => {
                push_text(&mut nodes, &mut text);
                *pos += 1;
                let inner = parse_seq(chars, pos, Some(']'));
                if chars.get(*pos) == Some(&']') {
                    *pos += 1;
                }
                nodes.push(Node::Span(inner));
            }
            '|' | ')' if until == Some('|') => break,
            ']' if until == Some(']') => break,
            _ => {
                text.push(c);
                *pos += 1;
            }
        }
    }
    push_text(&mut nodes, &mut text);
    nodes
}

/// Makes every choice, flattening the template into items.
pub(crate) fn resolve(nodes: &[Node], rng: &mut Rng) -> Vec<Item> {
    let mut out = Vec::new();
    resolve_into(nodes, rng, &mut out);
    out
}

fn resolve_into(nodes: &[Node], rng: &mut Rng, out: &mut Vec<Item>) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push(Item::Text(t.clone())),
            Node::Slot(s) => out.push(Item::Slot(s.clone())),
            Node::Choice(branches) => {
                if let Some(branch) = rng.pick(branches) {
                    resolve_into(branch, rng, out);
                }
            }
            Node::Span(inner) => {
                out.push(Item::SpanOpen);
                resolve_into(inner, rng, out);
                out.push(Item::SpanClose);
            }
        }
    }
}

/// Slot names used by resolved items.
pub(crate) fn slot_names(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Slot(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// How an argument's value follows the text it was written as.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ArgKind {
    /// The value is the text as it finally reads (web query, goal, expression,
    /// text to translate, timezone). `noisy` allows typos and abbreviations in it.
    Verbatim { noisy: bool },
    /// A proper name: the value keeps the canonical capitalisation whatever the
    /// query's case; a typo in the name is carried into the value.
    Proper { canonical: String },
    /// A dictionary word or unit: the value is the text, lowercased.
    Lower,
    /// A value fixed by the convention (a number, a normalised date or language);
    /// the text may be empty when the value is implied.
    Fixed(Value),
}

/// A piece of query text and the argument it carries, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seg {
    pub text: String,
    /// `Some((argument name, kind))` for argument text.
    pub arg: Option<(&'static str, ArgKind)>,
    /// Index of the call (clause) the argument belongs to.
    pub call: usize,
}

impl Seg {
    /// Plain text with no argument.
    pub(crate) fn free(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            arg: None,
            call: 0,
        }
    }

    /// Argument text.
    pub(crate) fn arg(text: impl Into<String>, name: &'static str, kind: ArgKind) -> Self {
        Self {
            text: text.into(),
            arg: Some((name, kind)),
            call: 0,
        }
    }

    /// True when typos and abbreviations may touch this segment.
    pub(crate) fn is_noisy(&self) -> bool {
        matches!(
            self.arg,
            None | Some((_, ArgKind::Verbatim { noisy: true }))
        )
    }

    /// The argument value this segment stands for, given its final text.
    pub(crate) fn value(&self) -> Option<(&'static str, Value)> {
        let (name, kind) = self.arg.as_ref()?;
        let text = self.text.trim();
        let value = match kind {
            ArgKind::Verbatim { .. } => Value::String(text.to_string()),
            ArgKind::Proper { canonical } => {
                if canonical.to_lowercase() == text.to_lowercase() {
                    Value::String(canonical.clone())
                } else {
                    Value::String(title_case(text))
                }
            }
            ArgKind::Lower => Value::String(text.to_lowercase()),
            ArgKind::Fixed(v) => v.clone(),
        };
        Some((name, value))
    }
}

/// Capitalises each word except short joining words ("Rio de Janeiro").
pub(crate) fn title_case(text: &str) -> String {
    const SMALL: &[&str] = &[
        "de", "da", "do", "del", "la", "le", "of", "the", "and", "es", "en", "an", "von", "van",
        "di", "y",
    ];
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i > 0 && SMALL.contains(&w) {
                w.to_string()
            } else {
                capitalise(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Upper-cases the first character.
pub(crate) fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Joins segments into the final query, tidying whitespace at the joins and
/// trimming each segment's text the same way, so labels match the query.
pub(crate) fn tidy(segs: &mut Vec<Seg>) -> String {
    for seg in segs.iter_mut() {
        let collapsed = collapse_spaces(&seg.text);
        seg.text = collapsed;
    }
    let mut out = String::new();
    for seg in segs.iter_mut() {
        let mut text = seg.text.clone();
        if out.is_empty() || out.ends_with(' ') {
            text = text.trim_start().to_string();
        }
        if text.starts_with(' ') {
            let rest = text.trim_start();
            if rest.starts_with(['?', ',', '.', '!', ':', ';']) {
                text = rest.to_string();
            }
        }
        if text.is_empty() && seg.arg.is_none() {
            seg.text = text;
            continue;
        }
        if out.ends_with(' ') && text.starts_with(['?', ',', '.', '!', ';']) && seg.arg.is_none() {
            out.pop();
        }
        out.push_str(&text);
        seg.text = text;
    }
    let trimmed_len = out.trim_end().len();
    out.truncate(trimmed_len);
    segs.retain(|s| !(s.arg.is_none() && s.text.is_empty()));
    out
}

fn collapse_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices_slots_and_spans() {
        let nodes = parse("(hi|hey|) what's [the {x}] now\\(ok\\)");
        assert!(matches!(nodes[0], Node::Choice(ref b) if b.len() == 3));
        assert!(nodes.iter().any(|n| matches!(n, Node::Span(_))));
        let mut rng = Rng::new(3);
        let items = resolve(&nodes, &mut rng);
        assert_eq!(slot_names(&items), vec!["x".to_string()]);
        assert!(items.contains(&Item::Text(" now(ok)".into())));
    }

    #[test]
    fn nested_choices_resolve() {
        let nodes = parse("a (b (c|d)|e) f");
        let mut rng = Rng::new(1);
        for _ in 0..20 {
            let items = resolve(&nodes, &mut rng);
            let text: String = items
                .iter()
                .map(|i| match i {
                    Item::Text(t) => t.as_str(),
                    _ => "",
                })
                .collect();
            assert!(
                ["a b c f", "a b d f", "a e f"].contains(&text.as_str()),
                "{text}"
            );
        }
    }

    #[test]
    fn tidy_joins_cleanly() {
        let mut segs = vec![
            Seg::free("what's the weather in  "),
            Seg::arg(
                "paris",
                "location",
                ArgKind::Proper {
                    canonical: "Paris".into(),
                },
            ),
            Seg::free(" "),
            Seg::free(" ?"),
        ];
        assert_eq!(tidy(&mut segs), "what's the weather in paris?");
        assert_eq!(
            segs[1].value(),
            Some(("location", Value::String("Paris".into())))
        );
    }

    #[test]
    fn title_case_keeps_joining_words() {
        assert_eq!(title_case("rio de janeiro"), "Rio de Janeiro");
        assert_eq!(title_case("londn"), "Londn");
    }
}
