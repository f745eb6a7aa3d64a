//! Style noise applied after labeling: case, punctuation, typos, chat
//! abbreviations, spoken fillers and emoji. It rewrites free text freely and
//! argument text only in ways whose label follows (a typo in a place name is
//! carried into its capitalised label; dates and numbers keep their values).

use super::rng::Rng;
use super::template::{ArgKind, Seg};

/// Probabilities of each kind of noise (per query).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Noise {
    pub lower: f64,
    pub capitalise: f64,
    pub upper: f64,
    pub no_punct: f64,
    pub typo: f64,
    pub arg_typo: f64,
    pub abbrev: f64,
    pub filler: f64,
    pub emoji: f64,
}

impl Default for Noise {
    fn default() -> Self {
        Self {
            lower: 0.38,
            capitalise: 0.32,
            upper: 0.012,
            no_punct: 0.22,
            typo: 0.17,
            arg_typo: 0.025,
            abbrev: 0.16,
            filler: 0.07,
            emoji: 0.035,
        }
    }
}

const FILLERS: &[&str] = &[
    "um ", "uh ", "so ", "ok so ", "hmm ", "like ", "hey so ", "umm ", "erm ", "okay so ",
    "right, ", "well ",
];

/// Openings that already sound spoken; no filler is added before them.
const CHATTY_STARTS: &[&str] = &[
    "ok", "so ", "um", "uh", "hmm", "hey", "hi", "yo", "well", "like ", "alright", "erm", "right",
    "hello", "sorry",
];

const EMOJI: &[&str] = &[
    " 🙏", " 😅", " 🤔", " 😊", " 👀", " 🙂", " 😂", " 🔥", " ✨", " 👍", " 🥲", " 😬",
];

const ABBREVIATIONS: &[(&str, &[&str])] = &[
    ("you", &["u", "u", "ya"]),
    ("your", &["ur"]),
    ("you're", &["ur", "youre"]),
    ("please", &["pls", "plz", "pleasee"]),
    ("tomorrow", &["tmrw", "tmr", "tomorow"]),
    ("tonight", &["tonite", "2night"]),
    ("what's", &["whats", "wats", "wuts"]),
    ("how's", &["hows"]),
    ("are", &["r"]),
    ("thanks", &["thx", "ty", "thnx"]),
    ("because", &["cuz", "bc"]),
    ("people", &["ppl"]),
    ("something", &["smth", "sth"]),
    ("probably", &["prob", "prolly"]),
    ("about", &["abt"]),
    ("with", &["w/"]),
    ("okay", &["ok", "k"]),
    ("i'm", &["im"]),
    ("don't", &["dont"]),
    ("can't", &["cant"]),
    ("it's", &["its"]),
    ("know", &["kno"]),
    ("really", &["rly"]),
    ("before", &["b4"]),
    ("message", &["msg"]),
    ("minutes", &["mins"]),
];

const PHRASES: &[(&str, &str)] = &[
    ("going to", "gonna"),
    ("want to", "wanna"),
    ("right now", "rn"),
    ("got to", "gotta"),
    ("let me", "lemme"),
    ("give me", "gimme"),
    ("what is", "whats"),
    ("i don't know", "idk"),
    ("to be honest", "tbh"),
    ("by the way", "btw"),
];

fn neighbours(c: char) -> &'static str {
    match c {
        'q' => "wa",
        'w' => "qes",
        'e' => "wrd",
        'r' => "etf",
        't' => "ryg",
        'y' => "tuh",
        'u' => "yij",
        'i' => "uok",
        'o' => "ipl",
        'p' => "ol",
        'a' => "qsz",
        's' => "adwx",
        'd' => "sfe",
        'f' => "dgr",
        'g' => "fht",
        'h' => "gjy",
        'j' => "hku",
        'k' => "jli",
        'l' => "ko",
        'z' => "xa",
        'x' => "zcs",
        'c' => "xvd",
        'v' => "cbf",
        'b' => "vng",
        'n' => "bmh",
        'm' => "nj",
        _ => "",
    }
}

/// One keyboard-style typo in a word (never the first letter); None if too short.
pub(crate) fn typo_word(word: &str, rng: &mut Rng) -> Option<String> {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 4 || !chars.iter().all(|c| c.is_alphabetic()) {
        return None;
    }
    let i = 1 + rng.below(chars.len() - 1);
    let mut out = chars.clone();
    match rng.below(4) {
        0 if i + 1 < chars.len() && chars[i] != chars[i + 1] => out.swap(i, i + 1),
        1 => {
            out.remove(i);
        }
        2 => out.insert(i, chars[i]),
        _ => {
            let lower = chars[i].to_ascii_lowercase();
            let n: Vec<char> = neighbours(lower).chars().collect();
            let replacement = *rng.pick(&n)?;
            out[i] = if chars[i].is_uppercase() {
                replacement.to_ascii_uppercase()
            } else {
                replacement
            };
        }
    }
    let typed: String = out.into_iter().collect();
    if typed == word {
        None
    } else {
        Some(typed)
    }
}

/// Word spans `(start, end)` of alphabetic-or-apostrophe runs.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let inside = c.is_alphabetic() || c == '\'';
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

fn is_date_seg(seg: &Seg) -> bool {
    matches!(seg.arg, Some(("date", ArgKind::Fixed(_))))
}

/// Adds typos to free/noisy words; returns how many were made.
fn add_typos(segs: &mut [Seg], count: usize, rng: &mut Rng) -> usize {
    let mut candidates = Vec::new();
    for (si, seg) in segs.iter().enumerate() {
        if !seg.is_noisy() {
            continue;
        }
        for (s, e) in word_spans(&seg.text) {
            if e - s >= 4 {
                candidates.push((si, s, e));
            }
        }
    }
    rng.shuffle(&mut candidates);
    let mut made = 0;
    let mut touched: Vec<usize> = Vec::new();
    for (si, s, e) in candidates {
        if made >= count {
            break;
        }
        if touched.contains(&si) {
            continue;
        }
        let word = segs[si].text[s..e].to_string();
        if let Some(t) = typo_word(&word, rng) {
            segs[si].text.replace_range(s..e, &t);
            touched.push(si);
            made += 1;
        }
    }
    made
}

/// A typo inside one place, topic or dictionary word; its label follows.
fn add_arg_typo(segs: &mut [Seg], rng: &mut Rng) -> bool {
    let idx: Vec<usize> = segs
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            matches!(
                s.arg,
                Some(("location", ArgKind::Proper { .. }))
                    | Some(("topic", ArgKind::Proper { .. }))
                    | Some(("word", ArgKind::Lower))
            )
        })
        .map(|(i, _)| i)
        .collect();
    let Some(&i) = rng.pick(&idx) else {
        return false;
    };
    let seg = &mut segs[i];
    let spans: Vec<(usize, usize)> = word_spans(&seg.text)
        .into_iter()
        .filter(|(s, e)| e - s >= 4)
        .collect();
    let Some(&(s, e)) = rng.pick(&spans) else {
        return false;
    };
    let word = seg.text[s..e].to_string();
    let Some(typed) = typo_word(&word, rng) else {
        return false;
    };
    seg.text.replace_range(s..e, &typed);
    let text = seg.text.clone();
    if let Some((_, ArgKind::Proper { canonical })) = seg.arg.as_mut() {
        *canonical = recase_like(&text, canonical);
    }
    true
}

/// `typed` with each word's first letter upper-cased where the same word of
/// `model` starts upper-case ("emperoor penguin" like "Emperor penguin").
fn recase_like(typed: &str, model: &str) -> String {
    let model_words: Vec<&str> = model.split(' ').collect();
    typed
        .split(' ')
        .enumerate()
        .map(|(i, w)| {
            let upper = model_words
                .get(i)
                .and_then(|m| m.chars().next())
                .is_some_and(char::is_uppercase);
            if upper {
                super::template::capitalise(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces whole words/phrases with chat abbreviations; returns how many.
fn abbreviate(segs: &mut [Seg], rng: &mut Rng) -> usize {
    let mut made = 0;
    for seg in segs.iter_mut() {
        let date = is_date_seg(seg);
        if !seg.is_noisy() && !date {
            continue;
        }
        for (long, short) in PHRASES {
            if !date && rng.chance(0.6) && seg.text.to_lowercase().contains(long) {
                if let Some(pos) = seg.text.to_lowercase().find(long) {
                    let end = pos + long.len();
                    let bounded = seg.text[..pos]
                        .chars()
                        .last()
                        .is_none_or(|c| !c.is_alphanumeric())
                        && seg.text[end..]
                            .chars()
                            .next()
                            .is_none_or(|c| !c.is_alphanumeric());
                    if bounded {
                        seg.text.replace_range(pos..end, short);
                        made += 1;
                    }
                }
            }
        }
        let spans = word_spans(&seg.text);
        for (s, e) in spans.into_iter().rev() {
            let word = seg.text[s..e].to_lowercase();
            let Some((_, shorts)) = ABBREVIATIONS.iter().find(|(l, _)| *l == word) else {
                continue;
            };
            let p = match word.as_str() {
                "are" | "with" | "know" => 0.15,
                _ => 0.6,
            };
            if date && word != "tomorrow" && word != "tonight" {
                continue;
            }
            if rng.chance(p) {
                let short = rng.pick_str(shorts);
                seg.text.replace_range(s..e, short);
                made += 1;
            }
        }
    }
    made
}

/// Removes sentence punctuation and apostrophes from free and noisy text,
/// keeping decimal points and separators between digits.
fn strip_punct(segs: &mut [Seg]) {
    for seg in segs.iter_mut() {
        if !seg.is_noisy() && !is_date_seg(seg) {
            continue;
        }
        let chars: Vec<char> = seg.text.chars().collect();
        let mut out = String::with_capacity(seg.text.len());
        for (i, c) in chars.iter().enumerate() {
            let between_digits = i > 0
                && i + 1 < chars.len()
                && chars[i - 1].is_ascii_digit()
                && chars[i + 1].is_ascii_digit();
            let drop = match c {
                '?' | '!' | '\'' | '’' | ';' => true,
                '.' | ',' | ':' => !between_digits,
                _ => false,
            };
            if !drop {
                out.push(*c);
            }
        }
        seg.text = out;
    }
}

/// Applies noise to assembled segments; returns the style tags used.
pub(crate) fn apply(segs: &mut Vec<Seg>, noise: &Noise, rng: &mut Rng) -> Vec<&'static str> {
    let mut tags = Vec::new();
    if rng.chance(noise.arg_typo) && add_arg_typo(segs, rng) {
        tags.push("argtypo");
    }
    if rng.chance(noise.abbrev) && abbreviate(segs, rng) > 0 {
        tags.push("abbrev");
    }
    if rng.chance(noise.typo) {
        let count = if rng.chance(0.3) { 2 } else { 1 };
        if add_typos(segs, count, rng) > 0 {
            tags.push("typo");
        }
    }
    let starts_chatty = segs
        .iter()
        .find(|s| !s.text.trim().is_empty())
        .map(|s| s.text.trim_start().to_lowercase())
        .is_some_and(|t| CHATTY_STARTS.iter().any(|c| t.starts_with(c)));
    if !starts_chatty && rng.chance(noise.filler) {
        segs.insert(0, Seg::free(rng.pick_str(FILLERS)));
        tags.push("spoken");
    }
    if rng.chance(noise.no_punct) {
        strip_punct(segs);
        tags.push("nopunct");
    }
    let r = rng.f64();
    if r < noise.lower {
        for seg in segs.iter_mut() {
            seg.text = seg.text.to_lowercase();
        }
        tags.push("lower");
    } else if r < noise.lower + noise.upper {
        for seg in segs.iter_mut() {
            seg.text = seg.text.to_uppercase();
        }
        tags.push("upper");
    } else if r < noise.lower + noise.upper + noise.capitalise {
        if let Some(seg) = segs.iter_mut().find(|s| !s.text.trim().is_empty()) {
            let first = seg.text.char_indices().find(|(_, c)| !c.is_whitespace());
            if let Some((i, c)) = first.filter(|(_, c)| c.is_alphabetic()) {
                let upper: String = c.to_uppercase().collect();
                seg.text.replace_range(i..i + c.len_utf8(), &upper);
                tags.push("cap");
            }
        }
    }
    if rng.chance(noise.emoji) {
        segs.push(Seg::free(rng.pick_str(EMOJI)));
        tags.push("emoji");
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn typos_change_words_but_not_first_letter() {
        let mut rng = Rng::new(4);
        for _ in 0..200 {
            if let Some(t) = typo_word("weather", &mut rng) {
                assert_ne!(t, "weather");
                assert!(t.starts_with('w'));
            }
        }
        assert!(typo_word("in", &mut rng).is_none());
    }

    #[test]
    fn arg_typo_updates_label() {
        let mut rng = Rng::new(1);
        let mut segs = vec![
            Seg::free("weather in "),
            Seg::arg(
                "London",
                "location",
                ArgKind::Proper {
                    canonical: "London".into(),
                },
            ),
        ];
        assert!(add_arg_typo(&mut segs, &mut rng));
        let (_, value) = segs[1].value().unwrap();
        assert_ne!(value, Value::String("London".into()));
        assert_eq!(value, Value::String(segs[1].text.clone()));
    }

    #[test]
    fn recasing_follows_the_model() {
        assert_eq!(
            recase_like("emperoor penguin", "Emperor penguin"),
            "Emperoor penguin"
        );
        assert_eq!(
            recase_like("rio de janiero", "Rio de Janeiro"),
            "Rio de Janiero"
        );
    }

    #[test]
    fn punctuation_strip_keeps_decimals() {
        let mut segs = vec![Seg::free("what's 3.5, 1,000 and so on?")];
        strip_punct(&mut segs);
        assert_eq!(segs[0].text, "whats 3.5 1,000 and so on");
    }

    #[test]
    fn protected_arguments_are_left_alone() {
        let mut rng = Rng::new(8);
        let noise = Noise {
            typo: 1.0,
            abbrev: 1.0,
            no_punct: 1.0,
            lower: 0.0,
            capitalise: 0.0,
            upper: 0.0,
            arg_typo: 0.0,
            filler: 0.0,
            emoji: 0.0,
        };
        for _ in 0..50 {
            let mut segs = vec![
                Seg::free("please translate "),
                Seg::arg(
                    "where's the station?",
                    "text",
                    ArgKind::Verbatim { noisy: false },
                ),
            ];
            apply(&mut segs, &noise, &mut rng);
            assert!(segs.iter().any(|s| s.text == "where's the station?"));
        }
    }
}
