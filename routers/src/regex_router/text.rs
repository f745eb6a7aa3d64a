//! Text helpers for the regex router: query normalisation, the argument
//! transforms named in rule files (title case, numbers, languages, units, ...)
//! and quote detection used when splitting multi-tool queries.

use serde::Deserialize;
use serde_json::{Number, Value};

/// Longest query (in bytes) that is routed; longer input is cut at a char boundary.
pub(crate) const MAX_QUERY_BYTES: usize = 4096;

/// How an extracted argument is cleaned up before it is put in a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// As written (trimmed, surrounding quotes and trailing punctuation removed).
    #[default]
    Keep,
    /// Lowercase.
    Lower,
    /// Uppercase.
    Upper,
    /// Proper capitalisation of names: lowercase words are capitalised, except
    /// connectors such as "of", "de", "and" after the first word; words that
    /// already carry a capital are kept ("iPhone", "NASA").
    Title,
    /// A JSON number: digits ("1,000", "26.2", "3/4") or words ("a", "a dozen", "half").
    Number,
    /// A language name in English, capitalised ("japanese" -> "Japanese", common typos fixed).
    Language,
    /// A date word lowercased ("Tomorrow" -> "tomorrow", "tonight" -> "today"); ISO dates kept.
    Date,
    /// A unit, lowercased, with currency symbols spelled as codes ("$" -> "usd").
    Unit,
    /// A time zone: abbreviations uppercased ("pst" -> "PST"), IANA names kept.
    Timezone,
    /// A math expression as written; a trailing "!" right after a digit is kept (factorial).
    Expression,
}

/// Normalises a raw query: typographic quotes and odd spaces become plain ones,
/// control characters are dropped, whitespace is collapsed and the text is trimmed
/// and capped at [`MAX_QUERY_BYTES`].
pub(crate) fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_QUERY_BYTES));
    let mut pending_space = false;
    for c in raw.chars() {
        let c = match c {
            '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{2032}' | '`' | '\u{00B4}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' | '\u{00AB}' | '\u{00BB}' => '"',
            '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
            '\u{00D7}' => '*',
            '\u{00F7}' => '/',
            c if c.is_whitespace() => ' ',
            c if c.is_control() || c == '\u{FFFD}' || c == '\u{FEFF}' || c == '\u{200B}' => {
                continue
            }
            c => c,
        };
        if c == ' ' {
            pending_space = !out.is_empty();
            continue;
        }
        if out.len() + c.len_utf8() + 1 > MAX_QUERY_BYTES {
            break;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// Trims whitespace, surrounding quotes and trailing punctuation from a capture.
pub(crate) fn clean(raw: &str, transform: Transform) -> String {
    let mut s = raw.trim();
    loop {
        let before = s.len();
        s = s.trim_end_matches([',', ';', ':', '?', '.', ' ']);
        if transform != Transform::Expression || !ends_with_factorial(s) {
            s = s.trim_end_matches('!');
        }
        s = s.trim();
        if let Some(inner) = strip_pair(s) {
            s = inner.trim();
        }
        if s.len() == before {
            break;
        }
    }
    s.to_string()
}

fn ends_with_factorial(s: &str) -> bool {
    let t = s.trim_end_matches('!');
    s.len() - t.len() == 1 && t.ends_with(|c: char| c.is_ascii_digit() || c == ')')
}

fn strip_pair(s: &str) -> Option<&str> {
    for (open, close) in [('"', '"'), ('\'', '\''), ('(', ')'), ('[', ']')] {
        if s.len() >= 2 && s.starts_with(open) && s.ends_with(close) {
            let inner = &s[open.len_utf8()..s.len() - close.len_utf8()];
            if !inner.contains(open) && !inner.contains(close) {
                return Some(inner);
            }
        }
    }
    None
}

/// Applies a transform to a cleaned value; `None` when the value cannot be
/// represented (e.g. a number that does not parse, or an empty string).
pub(crate) fn apply(transform: Transform, value: &str) -> Option<Value> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let text = match transform {
        Transform::Keep | Transform::Expression => value.to_string(),
        Transform::Lower => value.to_lowercase(),
        Transform::Upper => value.to_uppercase(),
        Transform::Title => title_case(value),
        Transform::Number => return parse_number(value).and_then(number_value),
        Transform::Language => language(value),
        Transform::Date => date(value),
        Transform::Unit => unit(value),
        Transform::Timezone => timezone(value),
    };
    if text.is_empty() {
        None
    } else {
        Some(Value::String(text))
    }
}

const CONNECTORS: &[&str] = &[
    "of", "the", "and", "de", "del", "della", "di", "da", "do", "dos", "das", "du", "des", "la",
    "le", "les", "von", "van", "der", "den", "upon", "on", "in", "y", "e", "al", "at", "for", "to",
    "a", "an", "sur", "am",
];

/// Proper capitalisation of a place, person or subject name.
pub(crate) fn title_case(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for (j, part) in word.split('-').enumerate() {
            if j > 0 {
                out.push('-');
            }
            let keep_lower = (i > 0 || j > 0) && CONNECTORS.contains(&part);
            if keep_lower || part.chars().any(char::is_uppercase) {
                out.push_str(part);
            } else {
                out.push_str(&capitalize(part));
            }
        }
    }
    out
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Common misspellings of language names, mapped to the English name.
const LANGUAGE_FIXES: &[(&str, &str)] = &[
    ("spanich", "Spanish"),
    ("spansh", "Spanish"),
    ("spainish", "Spanish"),
    ("spanis", "Spanish"),
    ("espanol", "Spanish"),
    ("español", "Spanish"),
    ("frensh", "French"),
    ("franch", "French"),
    ("frnch", "French"),
    ("francais", "French"),
    ("français", "French"),
    ("german", "German"),
    ("germen", "German"),
    ("deutsch", "German"),
    ("japanease", "Japanese"),
    ("japanes", "Japanese"),
    ("japenese", "Japanese"),
    ("japaneese", "Japanese"),
    ("chineese", "Chinese"),
    ("chinease", "Chinese"),
    ("italien", "Italian"),
    ("itallian", "Italian"),
    ("portugese", "Portuguese"),
    ("portugeuse", "Portuguese"),
    ("russain", "Russian"),
    ("korian", "Korean"),
    ("arabik", "Arabic"),
    ("englsh", "English"),
    ("englis", "English"),
    ("inglish", "English"),
];

fn language(value: &str) -> String {
    let lower = value.to_lowercase();
    LANGUAGE_FIXES
        .iter()
        .find(|(typo, _)| *typo == lower)
        .map(|(_, fixed)| (*fixed).to_string())
        .unwrap_or_else(|| title_case(&lower))
}

fn date(value: &str) -> String {
    let lower = value.to_lowercase();
    let lower = lower
        .trim_start_matches("on ")
        .trim_start_matches("for ")
        .trim_start_matches("this ")
        .trim_start_matches("next ")
        .trim();
    match lower {
        "tonight" | "tonite" | "this morning" | "this afternoon" | "this evening" | "now"
        | "right now" => "today".to_string(),
        "tmrw" | "tmr" | "tomorow" | "tommorow" | "tommorrow" | "2morrow" => "tomorrow".to_string(),
        other => other.to_string(),
    }
}

fn unit(value: &str) -> String {
    match value {
        "$" | "us$" => "usd".to_string(),
        "€" => "eur".to_string(),
        "£" => "gbp".to_string(),
        "¥" => "jpy".to_string(),
        "₹" => "inr".to_string(),
        other => other.to_lowercase().replace("° ", "°"),
    }
}

fn timezone(value: &str) -> String {
    if value.contains('/') {
        value.to_string()
    } else {
        value.to_uppercase().replace(' ', "")
    }
}

/// Parses a number as people write it: "1,000", "26.2", "-3", "3/4", "$5",
/// "a", "an", "one" ... "twelve", "a dozen", "half a", "a quarter".
pub(crate) fn parse_number(raw: &str) -> Option<f64> {
    let lower = raw.trim().to_lowercase();
    let s = lower
        .trim_start_matches(['$', '€', '£', '¥', '₹', '+'])
        .trim();
    if let Some((num, den)) = s.split_once('/') {
        let num: f64 = num.trim().parse().ok()?;
        let den: f64 = den.trim().parse().ok()?;
        return (den != 0.0).then_some(num / den);
    }
    let digits: String = s.chars().filter(|c| *c != ',' && *c != '_').collect();
    if let Ok(v) = digits.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let words = s
        .trim_start_matches("a ")
        .trim_end_matches(" a")
        .trim_end_matches(" an")
        .trim();
    let v = match words {
        "a" | "an" | "one" | "single" => 1.0,
        "two" | "a couple of" | "couple" | "a pair of" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" | "dozen" => 12.0,
        "fifteen" => 15.0,
        "twenty" => 20.0,
        "thirty" => 30.0,
        "forty" => 40.0,
        "fifty" => 50.0,
        "hundred" => 100.0,
        "thousand" => 1000.0,
        "million" => 1_000_000.0,
        "half" => 0.5,
        "quarter" => 0.25,
        _ => return None,
    };
    Some(v)
}

/// A JSON number, integral values as integers so that `1000` is not `1000.0`.
pub(crate) fn number_value(v: f64) -> Option<Value> {
    if !v.is_finite() {
        return None;
    }
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        return Some(Value::Number(Number::from(v as i64)));
    }
    Number::from_f64(v).map(Value::Number)
}

/// Byte ranges of quoted passages ("..." or '...' opened after a space), inside
/// which a query is never split.
pub(crate) fn quoted_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let opens = match b {
            b'"' => true,
            b'\'' => i == 0 || matches!(bytes[i - 1], b' ' | b'(' | b':'),
            _ => false,
        };
        if opens {
            let close = (i + 1..bytes.len()).find(|&j| {
                bytes[j] == b
                    && (b == b'"'
                        || j + 1 == bytes.len()
                        || matches!(
                            bytes[j + 1],
                            b' ' | b'?' | b'.' | b'!' | b',' | b';' | b':' | b')'
                        ))
            });
            if let Some(j) = close {
                spans.push((i, j + 1));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalizes_quotes_and_space() {
        assert_eq!(
            normalize("  what\u{2019}s   2\u{00D7}3\t?\n"),
            "what's 2*3 ?"
        );
        assert_eq!(normalize(""), "");
        assert!(normalize(&"x".repeat(10_000)).len() <= MAX_QUERY_BYTES);
    }

    #[test]
    fn cleans_captures() {
        assert_eq!(clean(" 'gato'? ", Transform::Keep), "gato");
        assert_eq!(clean("\"good morning\"", Transform::Keep), "good morning");
        assert_eq!(clean("5!", Transform::Expression), "5!");
        assert_eq!(clean("5!", Transform::Keep), "5");
        assert_eq!(clean("Paris!!", Transform::Title), "Paris");
    }

    #[test]
    fn title_cases_names() {
        assert_eq!(title_case("rio de janeiro"), "Rio de Janeiro");
        assert_eq!(title_case("new york"), "New York");
        assert_eq!(title_case("stratford-upon-avon"), "Stratford-upon-Avon");
        assert_eq!(title_case("iPhone 15"), "iPhone 15");
        assert_eq!(title_case("são paulo"), "São Paulo");
        assert_eq!(title_case("the hague"), "The Hague");
    }

    #[test]
    fn parses_numbers() {
        assert_eq!(parse_number("1,000"), Some(1000.0));
        assert_eq!(parse_number("26.2"), Some(26.2));
        assert_eq!(parse_number("a"), Some(1.0));
        assert_eq!(parse_number("half a"), Some(0.5));
        assert_eq!(parse_number("a dozen"), Some(12.0));
        assert_eq!(parse_number("3/4"), Some(0.75));
        assert_eq!(parse_number("$100"), Some(100.0));
        assert_eq!(parse_number("1/0"), None);
        assert_eq!(parse_number("many"), None);
        assert_eq!(number_value(1000.0), Some(json!(1000)));
        assert_eq!(number_value(26.2), Some(json!(26.2)));
        assert_eq!(number_value(f64::NAN), None);
    }

    #[test]
    fn transforms() {
        assert_eq!(
            apply(Transform::Language, "japanease"),
            Some(json!("Japanese"))
        );
        assert_eq!(apply(Transform::Language, "french"), Some(json!("French")));
        assert_eq!(apply(Transform::Date, "Tomorrow"), Some(json!("tomorrow")));
        assert_eq!(apply(Transform::Date, "on Friday"), Some(json!("friday")));
        assert_eq!(
            apply(Transform::Date, "2026-03-01"),
            Some(json!("2026-03-01"))
        );
        assert_eq!(apply(Transform::Unit, "°F"), Some(json!("°f")));
        assert_eq!(apply(Transform::Unit, "$"), Some(json!("usd")));
        assert_eq!(apply(Transform::Timezone, "pst"), Some(json!("PST")));
        assert_eq!(apply(Transform::Timezone, "utc + 3"), Some(json!("UTC+3")));
        assert_eq!(
            apply(Transform::Timezone, "Europe/Berlin"),
            Some(json!("Europe/Berlin"))
        );
        assert_eq!(
            apply(Transform::Lower, "Ephemeral"),
            Some(json!("ephemeral"))
        );
        assert_eq!(apply(Transform::Keep, "  "), None);
    }

    #[test]
    fn finds_quoted_spans() {
        let q = "translate 'salt and pepper' to French and what's 2+2";
        let spans = quoted_spans(q);
        assert_eq!(spans.len(), 1);
        assert_eq!(&q[spans[0].0..spans[0].1], "'salt and pepper'");
        assert!(quoted_spans("what's up and how's it going").is_empty());
        assert_eq!(quoted_spans("say \"a and b\" in French").len(), 1);
    }
}
