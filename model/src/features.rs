//! The ToolForge model's own tokenizer and featurizer. Tokens keep byte offsets
//! into the original query so argument spans are cut from the user's text; each
//! token is described by a vocabulary word id (or a hashed out-of-vocabulary
//! bucket), hashed character 3-grams (typos still share most of them) and a
//! small shape id. Everything here is deterministic and saved with the model.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Most tokens looked at per query; the rest of a longer query is not seen.
pub const MAX_TOKENS: usize = 64;
/// Number of shape ids, padding (0) included.
pub const SHAPES: usize = 7;
/// Shape of padding positions.
pub const SHAPE_PAD: u32 = 0;
/// A number: digits with `.`/`,` inside ("1,000", "26.2").
pub const SHAPE_NUMBER: u32 = 1;
/// A token mixing digits and other characters.
pub const SHAPE_HAS_DIGIT: u32 = 2;
/// Capitalised word ("Paris").
pub const SHAPE_CAPITALISED: u32 = 3;
/// All capitals, two letters or more ("NASA").
pub const SHAPE_ALL_CAPS: u32 = 4;
/// One punctuation or symbol character.
pub const SHAPE_PUNCT: u32 = 5;
/// Any other word (lowercase).
pub const SHAPE_OTHER: u32 = 6;

/// Format version of `vocab.json`.
pub const VOCAB_FORMAT: u32 = 1;

/// One token: byte offsets `start..end` into the text it was cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Byte offset of the token's first character.
    pub start: usize,
    /// Byte offset just past the token's last character.
    pub end: usize,
}

impl Token {
    /// The token's text in `source` (the string it was cut from).
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        source.get(self.start..self.end).unwrap_or("")
    }
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

fn is_digit(c: char) -> bool {
    c.is_numeric()
}

/// Whether the run containing `prev` continues with `next` (followed by `after`).
fn continues(prev: char, next: char, after: Option<char>) -> bool {
    if next.is_alphanumeric() {
        // Digits and letters are separate tokens ("10km" -> "10", "km").
        return is_digit(prev) == is_digit(next);
    }
    let Some(after) = after else {
        return false;
    };
    if (next == '.' || next == ',') && is_digit(prev) && is_digit(after) {
        return true;
    }
    is_apostrophe(next) && prev.is_alphabetic() && after.is_alphabetic()
}

/// Splits `text` into tokens: runs of letters or of digits (a `.` or `,` between
/// digits and an apostrophe inside a word stay inside), and every other
/// non-space character on its own. At most `max_tokens` tokens are returned.
pub fn tokenize(text: &str, max_tokens: usize) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() && tokens.len() < max_tokens {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if c.is_alphanumeric() {
            while j < chars.len() {
                let prev = chars[j - 1].1;
                let next = chars[j].1;
                let after = chars.get(j + 1).map(|&(_, c)| c);
                if !continues(prev, next, after) {
                    break;
                }
                // `.`, `,` and apostrophes are taken together with the char after them.
                j += if next.is_alphanumeric() { 1 } else { 2 };
            }
        }
        let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
        tokens.push(Token { start, end });
        i = j;
    }
    tokens
}

/// The lowercased form of a token used for vocabulary look-ups.
pub fn normalize_word(token: &str) -> String {
    token
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == '\u{2019}' { '\'' } else { c })
        .collect()
}

/// The shape id of a token.
pub fn shape(token: &str) -> u32 {
    let mut chars = token.chars();
    let Some(first) = chars.next() else {
        return SHAPE_PAD;
    };
    if !first.is_alphanumeric() && token.chars().count() == 1 {
        return SHAPE_PUNCT;
    }
    let digits = token.chars().filter(|c| is_digit(*c)).count();
    if digits > 0 {
        let number = is_digit(first) && token.chars().all(|c| is_digit(c) || c == '.' || c == ',');
        return if number {
            SHAPE_NUMBER
        } else {
            SHAPE_HAS_DIGIT
        };
    }
    let letters: Vec<char> = token.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase()) {
        return SHAPE_ALL_CAPS;
    }
    if first.is_uppercase() {
        return SHAPE_CAPITALISED;
    }
    SHAPE_OTHER
}

/// 64-bit FNV-1a over `bytes`, started from a seeded basis (stable across
/// platforms and releases, unlike `std`'s hasher).
pub fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const SEED_OOV: u64 = 1;
const SEED_WORD: u64 = 2;
const SEED_TRIGRAM: u64 = 3;

/// Sizes of the feature tables, saved in `vocab.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSizes {
    /// Hashed buckets for out-of-vocabulary words.
    pub oov_buckets: u32,
    /// Hashed buckets for character n-grams.
    pub ngram_buckets: u32,
    /// Most n-grams per token (the whole-word marker included).
    pub max_ngrams: u32,
    /// Most tokens per query.
    pub max_tokens: u32,
}

impl Default for FeatureSizes {
    fn default() -> Self {
        Self {
            oov_buckets: 512,
            ngram_buckets: 8192,
            max_ngrams: 16,
            max_tokens: MAX_TOKENS as u32,
        }
    }
}

/// The content of `vocab.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VocabFile {
    /// Format version; [`VOCAB_FORMAT`] when written.
    pub format: u32,
    /// Sizes of the hashed feature tables.
    #[serde(flatten)]
    pub sizes: FeatureSizes,
    /// Known words; word `i` has id `i + 1` (0 is padding).
    pub words: Vec<String>,
}

/// Features of one query, flattened row-major: `len` tokens, `max_ngrams` n-gram
/// slots per token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    /// Tokens featurized (at most `max_tokens`).
    pub len: usize,
    /// Word id of each token: vocabulary id, or OOV bucket after the known words.
    pub word_ids: Vec<u32>,
    /// `len * max_ngrams` hashed n-gram ids (0 in unused slots).
    pub ngram_ids: Vec<u32>,
    /// `1/n` for each of a token's `n` n-grams, 0 for unused slots.
    pub ngram_weights: Vec<f32>,
    /// Shape id of each token (`SHAPE_*`).
    pub shape_ids: Vec<u32>,
}

/// The vocabulary and feature hashing of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    sizes: FeatureSizes,
    words: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocab {
    /// Builds a vocabulary from training tokens: normalised words seen at least
    /// `min_count` times, the `max_words` most frequent (ties alphabetical).
    pub fn build<'a>(
        tokens: impl IntoIterator<Item = &'a str>,
        min_count: usize,
        max_words: usize,
        sizes: FeatureSizes,
    ) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for token in tokens {
            *counts.entry(normalize_word(token)).or_default() += 1;
        }
        let mut words: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(w, c)| *c >= min_count.max(1) && !w.is_empty())
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        words.truncate(max_words);
        Self::from_file(VocabFile {
            format: VOCAB_FORMAT,
            sizes,
            words: words.into_iter().map(|(w, _)| w).collect(),
        })
    }

    /// The vocabulary with `extra` words appended (those it lacks, in order):
    /// words the model should know beyond its training data, such as the words
    /// of static vectors.
    pub fn with_words<'a>(self, extra: impl IntoIterator<Item = &'a str>) -> Self {
        let mut file = self.to_file();
        for word in extra {
            let word = normalize_word(word);
            if !word.is_empty() && !self.index.contains_key(&word) {
                file.words.push(word);
            }
        }
        let mut seen = std::collections::HashSet::new();
        file.words.retain(|w| seen.insert(w.clone()));
        Self::from_file(file)
    }

    /// Known words, word `i` having id `i + 1`.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// A vocabulary from its saved form.
    pub fn from_file(file: VocabFile) -> Self {
        let index = file
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32 + 1))
            .collect();
        Self {
            sizes: file.sizes,
            words: file.words,
            index,
        }
    }

    /// The saved form (`vocab.json`).
    pub fn to_file(&self) -> VocabFile {
        VocabFile {
            format: VOCAB_FORMAT,
            sizes: self.sizes,
            words: self.words.clone(),
        }
    }

    /// The sizes of the feature tables.
    pub fn sizes(&self) -> FeatureSizes {
        self.sizes
    }

    /// Known words (ids `1..=len`).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether the vocabulary has no known words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Rows of the word embedding table: padding, known words, OOV buckets.
    pub fn word_rows(&self) -> usize {
        1 + self.words.len() + self.sizes.oov_buckets.max(1) as usize
    }

    /// The hashed out-of-vocabulary id of a normalised word.
    pub fn oov_id(&self, word: &str) -> u32 {
        let buckets = u64::from(self.sizes.oov_buckets.max(1));
        1 + self.words.len() as u32 + (fnv1a(SEED_OOV, word.as_bytes()) % buckets) as u32
    }

    /// The id of a normalised word: its vocabulary id or its OOV bucket.
    pub fn word_id(&self, word: &str) -> u32 {
        self.index
            .get(word)
            .copied()
            .unwrap_or_else(|| self.oov_id(word))
    }

    /// Appends the n-gram ids of a normalised word to `ids` (at most `max_ngrams`):
    /// the whole-word marker `<word>`, then the 3-grams of `<word>`, digits read as `0`.
    fn ngrams(&self, word: &str, ids: &mut Vec<u32>) {
        let max = self.sizes.max_ngrams.max(1) as usize;
        let buckets = u64::from(self.sizes.ngram_buckets.max(1));
        let mut chars: Vec<char> = Vec::with_capacity(word.len() + 2);
        chars.push('<');
        chars.extend(word.chars().map(|c| if is_digit(c) { '0' } else { c }));
        chars.push('>');
        let mut buf = [0u8; 16];
        let mut whole = String::with_capacity(word.len() + 2);
        whole.extend(chars.iter());
        ids.push((fnv1a(SEED_WORD, whole.as_bytes()) % buckets) as u32);
        for window in chars.windows(3) {
            if ids.len() >= max {
                break;
            }
            let mut n = 0;
            for c in window {
                n += c.encode_utf8(&mut buf[n..]).len();
            }
            ids.push((fnv1a(SEED_TRIGRAM, &buf[..n]) % buckets) as u32);
        }
    }

    /// Features of a sequence of token texts (at most `max_tokens` are used).
    pub fn featurize<S: AsRef<str>>(&self, tokens: &[S]) -> Features {
        let g = self.sizes.max_ngrams.max(1) as usize;
        let len = tokens.len().min(self.sizes.max_tokens as usize);
        let mut out = Features {
            len,
            word_ids: Vec::with_capacity(len),
            ngram_ids: vec![0; len * g],
            ngram_weights: vec![0.0; len * g],
            shape_ids: Vec::with_capacity(len),
        };
        let mut ids = Vec::with_capacity(g);
        for (t, token) in tokens.iter().take(len).enumerate() {
            let token = token.as_ref();
            let word = normalize_word(token);
            out.word_ids.push(self.word_id(&word));
            out.shape_ids.push(shape(token));
            ids.clear();
            self.ngrams(&word, &mut ids);
            let weight = 1.0 / ids.len().max(1) as f32;
            for (k, id) in ids.iter().enumerate() {
                out.ngram_ids[t * g + k] = *id;
                out.ngram_weights[t * g + k] = weight;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(q: &str) -> Vec<&str> {
        tokenize(q, MAX_TOKENS).iter().map(|t| t.text(q)).collect()
    }

    #[test]
    fn tokens_keep_offsets_into_the_original_text() {
        let q = "Convert 1,000.5 km to mi? what's 10km in Zürich’s";
        let tokens = tokenize(q, MAX_TOKENS);
        for t in &tokens {
            assert!(q.is_char_boundary(t.start) && q.is_char_boundary(t.end));
        }
        assert_eq!(
            texts(q),
            vec![
                "Convert",
                "1,000.5",
                "km",
                "to",
                "mi",
                "?",
                "what's",
                "10",
                "km",
                "in",
                "Zürich’s"
            ]
        );
        assert_eq!(
            texts("2+2=4 (ok)."),
            vec!["2", "+", "2", "=", "4", "(", "ok", ")", "."]
        );
        assert_eq!(
            texts("end. 3.5, then 'quoted'"),
            vec!["end", ".", "3.5", ",", "then", "'", "quoted", "'"]
        );
        assert_eq!(texts("25°C"), vec!["25", "°", "C"]);
        assert!(tokenize("   ", MAX_TOKENS).is_empty());
        assert_eq!(tokenize(&"a ".repeat(200), MAX_TOKENS).len(), MAX_TOKENS);
    }

    #[test]
    fn shapes() {
        assert_eq!(shape("1,000.5"), SHAPE_NUMBER);
        assert_eq!(shape("²x"), SHAPE_HAS_DIGIT);
        assert_eq!(shape("Paris"), SHAPE_CAPITALISED);
        assert_eq!(shape("NASA"), SHAPE_ALL_CAPS);
        assert_eq!(shape("?"), SHAPE_PUNCT);
        assert_eq!(shape("paris"), SHAPE_OTHER);
    }

    #[test]
    fn featurizer_is_deterministic_and_typos_share_ngrams() {
        let vocab = Vocab::build(
            ["weather", "in", "weather", "in", "paris"],
            2,
            100,
            FeatureSizes::default(),
        );
        assert_eq!(vocab.len(), 2);
        let a = vocab.featurize(&["Weather", "in", "Paris"]);
        let b = vocab.featurize(&["Weather", "in", "Paris"]);
        assert_eq!(a, b);
        assert_eq!(a.len, 3);
        assert_eq!(a.word_ids[0], vocab.word_id("weather"));
        assert!(
            a.word_ids[2] > vocab.len() as u32,
            "paris is out of vocabulary"
        );
        assert_eq!(
            a.shape_ids,
            vec![SHAPE_CAPITALISED, SHAPE_OTHER, SHAPE_CAPITALISED]
        );
        let g = FeatureSizes::default().max_ngrams as usize;
        let weights: f32 = a.ngram_weights[..g].iter().sum();
        assert!((weights - 1.0).abs() < 1e-5);
        let typo = vocab.featurize(&["wether"]);
        let set = |f: &Features| {
            f.ngram_ids[..g]
                .iter()
                .zip(&f.ngram_weights[..g])
                .filter(|(_, w)| **w > 0.0)
                .map(|(i, _)| *i)
                .collect::<std::collections::HashSet<_>>()
        };
        let shared = set(&a).intersection(&set(&typo)).count();
        assert!(shared >= 3, "typo shares {shared} n-grams");
        let saved = serde_json::to_string(&vocab.to_file()).unwrap();
        let back = Vocab::from_file(serde_json::from_str(&saved).unwrap());
        assert_eq!(back, vocab);
    }
}
