//! Byte-level BPE, the tokenizer of GPT-2-family chat models (SmolLM2, Qwen2):
//! built from a `tokenizer.json` or from a GGUF file's `tokenizer.ggml.*`
//! metadata, so a GGUF alone is enough. Special tokens (`<|im_start|>`, ...) are
//! matched whole before the text is split and merged; decoding maps each
//! token back to its bytes, which constrained decoding also uses.

use std::collections::HashMap;
use std::sync::Mutex;

use regex::Regex;

/// Why a tokenizer could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BpeError {
    /// The description is not a byte-level BPE this module reads.
    #[error("unsupported tokenizer: {0}")]
    Unsupported(String),
    /// The description is malformed.
    #[error("invalid tokenizer: {0}")]
    Invalid(String),
}

/// How text is split into pieces before merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2's pattern; with `split_digits`, each digit is a piece of its own
    /// first (SmolLM's `Digits(individual_digits)`).
    Gpt2 {
        /// Whether digits are split one by one before the pattern.
        split_digits: bool,
    },
    /// Qwen2's pattern (single digits, newlines kept with the whitespace before them).
    Qwen2,
}

/// A byte-level BPE tokenizer.
#[derive(Debug)]
pub struct Bpe {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
    ranks: HashMap<(String, String), u32>,
    specials: Vec<(String, u32)>,
    pre: PreTokenizer,
    pattern: Regex,
    byte_chars: [char; 256],
    char_bytes: HashMap<char, u8>,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

/// GPT-2's pattern without its lookahead (`\s+(?!\S)` is applied by hand).
const GPT2_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";
/// Qwen2's pattern, likewise.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+";

/// Pieces longer than this are split into chunks before merging (bounded work).
const MAX_PIECE_BYTES: usize = 256;

impl Bpe {
    /// A tokenizer from its token strings (byte-level encoded), merges in rank
    /// order, the ids of special tokens, and the pre-tokenizer.
    pub fn new(
        tokens: Vec<String>,
        merges: &[(String, String)],
        special_ids: &[u32],
        pre: PreTokenizer,
    ) -> Result<Self, BpeError> {
        let ids: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let ranks = merges
            .iter()
            .enumerate()
            .map(|(rank, pair)| (pair.clone(), rank as u32))
            .collect();
        let mut specials: Vec<(String, u32)> = special_ids
            .iter()
            .filter_map(|&id| tokens.get(id as usize).map(|t| (t.clone(), id)))
            .filter(|(t, _)| !t.is_empty())
            .collect();
        specials.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        let pattern = Regex::new(match pre {
            PreTokenizer::Gpt2 { .. } => GPT2_PATTERN,
            PreTokenizer::Qwen2 => QWEN2_PATTERN,
        })
        .map_err(|e| BpeError::Invalid(e.to_string()))?;
        let byte_chars = byte_chars();
        let char_bytes = byte_chars
            .iter()
            .enumerate()
            .map(|(b, c)| (*c, b as u8))
            .collect();
        Ok(Self {
            tokens,
            ids,
            ranks,
            specials,
            pre,
            pattern,
            byte_chars,
            char_bytes,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// From a Hugging Face `tokenizer.json` (a byte-level `BPE` model).
    pub fn from_tokenizer_json(text: &str) -> Result<Self, BpeError> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BpeError::Invalid(e.to_string()))?;
        let model = &json["model"];
        if model["type"] != "BPE" {
            return Err(BpeError::Unsupported(format!(
                "model type {} (only BPE)",
                model["type"]
            )));
        }
        let vocab = model["vocab"]
            .as_object()
            .ok_or_else(|| BpeError::Invalid("model.vocab is not an object".into()))?;
        let mut tokens = vec![String::new(); vocab.len()];
        let mut specials = Vec::new();
        for (token, id) in vocab {
            let id = id
                .as_u64()
                .ok_or_else(|| BpeError::Invalid("a vocab id is not a number".into()))?
                as usize;
            if id >= tokens.len() {
                tokens.resize(id + 1, String::new());
            }
            tokens[id] = token.clone();
        }
        for added in json["added_tokens"].as_array().into_iter().flatten() {
            let (Some(content), Some(id)) = (added["content"].as_str(), added["id"].as_u64())
            else {
                continue;
            };
            let id = id as usize;
            if id >= tokens.len() {
                tokens.resize(id + 1, String::new());
            }
            tokens[id] = content.to_string();
            specials.push(id as u32);
        }
        let merges = parse_merges(&model["merges"])?;
        let pre_text = json["pre_tokenizer"].to_string();
        let pre = if pre_text.contains("[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+") {
            PreTokenizer::Qwen2
        } else {
            PreTokenizer::Gpt2 {
                split_digits: pre_text.contains("\"Digits\""),
            }
        };
        Self::new(tokens, &merges, &specials, pre)
    }

    /// From GGUF `tokenizer.ggml.*` metadata: `model` (must be `gpt2`), `pre`,
    /// `tokens`, `merges` and `token_type` (3 and 4 are special).
    pub fn from_gguf_metadata(
        model: &str,
        pre: &str,
        tokens: Vec<String>,
        merges: &[String],
        token_types: &[i32],
    ) -> Result<Self, BpeError> {
        if model != "gpt2" {
            return Err(BpeError::Unsupported(format!(
                "GGUF tokenizer model `{model}` (only gpt2-style byte-level BPE)"
            )));
        }
        let merges = merges
            .iter()
            .map(|m| split_merge(m))
            .collect::<Result<Vec<_>, _>>()?;
        let specials: Vec<u32> = token_types
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, 3 | 4))
            .map(|(i, _)| i as u32)
            .collect();
        let pre = match pre {
            "qwen2" => PreTokenizer::Qwen2,
            "smollm" | "starcoder" | "refact" => PreTokenizer::Gpt2 { split_digits: true },
            _ => PreTokenizer::Gpt2 {
                split_digits: false,
            },
        };
        Self::new(tokens, &merges, &specials, pre)
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The id of a token given as its string (`<|im_end|>`), if it exists.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// Token ids of `text`; special tokens written in it are matched whole.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next_special = self
                .specials
                .iter()
                .filter_map(|(token, id)| rest.find(token.as_str()).map(|at| (at, token, *id)))
                .min_by_key(|(at, token, _)| (*at, std::cmp::Reverse(token.len())));
            match next_special {
                Some((at, token, id)) => {
                    self.encode_ordinary(&rest[..at], &mut ids);
                    ids.push(id);
                    rest = &rest[at + token.len()..];
                }
                None => {
                    self.encode_ordinary(rest, &mut ids);
                    rest = "";
                }
            }
        }
        ids
    }

    /// The bytes a token stands for (a special token: its text).
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let Some(token) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        if self.specials.iter().any(|(_, s)| *s == id) {
            return token.as_bytes().to_vec();
        }
        token
            .chars()
            .map(|c| self.char_bytes.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .unwrap_or_else(|| token.as_bytes().to_vec())
    }

    /// Whether `id` is a special token.
    pub fn is_special(&self, id: u32) -> bool {
        self.specials.iter().any(|(_, s)| *s == id)
    }

    /// The text of token ids (invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|id| self.token_bytes(*id)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn encode_ordinary(&self, text: &str, ids: &mut Vec<u32>) {
        for segment in self.segments(text) {
            for piece in self.pieces(segment) {
                self.encode_piece(piece, ids);
            }
        }
    }

    /// Digits one by one, when the pre-tokenizer splits them first.
    fn segments<'a>(&self, text: &'a str) -> Vec<&'a str> {
        if !matches!(self.pre, PreTokenizer::Gpt2 { split_digits: true }) {
            return vec![text];
        }
        let mut segments = Vec::new();
        let mut start = 0;
        for (at, c) in text.char_indices() {
            if c.is_numeric() {
                if start < at {
                    segments.push(&text[start..at]);
                }
                segments.push(&text[at..at + c.len_utf8()]);
                start = at + c.len_utf8();
            }
        }
        if start < text.len() {
            segments.push(&text[start..]);
        }
        segments
    }

    /// The pattern's pieces, with `\s+(?!\S)`: a whitespace run followed by
    /// text leaves its last character to that text.
    fn pieces<'a>(&self, text: &'a str) -> Vec<&'a str> {
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let Some(found) = self.pattern.find_at(text, at) else {
                pieces.push(&text[at..]);
                break;
            };
            let mut end = found.end();
            let piece = &text[found.start()..end];
            let whitespace = piece.chars().all(char::is_whitespace);
            let ends_in_newline = piece.ends_with(['\r', '\n']);
            let keeps_newlines = matches!(self.pre, PreTokenizer::Qwen2) && ends_in_newline;
            if whitespace && !keeps_newlines && end < text.len() && piece.chars().count() > 1 {
                if let Some(last) = piece.chars().last() {
                    end -= last.len_utf8();
                }
            }
            if found.start() > at {
                pieces.push(&text[at..found.start()]);
            }
            pieces.push(&text[found.start()..end]);
            at = end;
        }
        pieces
    }

    fn encode_piece(&self, piece: &str, ids: &mut Vec<u32>) {
        if piece.is_empty() {
            return;
        }
        if let Some(cached) = self.cache.lock().ok().and_then(|c| c.get(piece).cloned()) {
            ids.extend(cached);
            return;
        }
        let mut out = Vec::new();
        for chunk in piece.as_bytes().chunks(MAX_PIECE_BYTES) {
            let mut parts: Vec<String> = chunk
                .iter()
                .map(|b| self.byte_chars[*b as usize].to_string())
                .collect();
            loop {
                let best = parts
                    .windows(2)
                    .enumerate()
                    .filter_map(|(i, w)| {
                        self.ranks
                            .get(&(w[0].clone(), w[1].clone()))
                            .map(|rank| (*rank, i))
                    })
                    .min();
                let Some((_, i)) = best else { break };
                let merged = format!("{}{}", parts[i], parts[i + 1]);
                parts[i] = merged;
                parts.remove(i + 1);
            }
            for part in parts {
                match self.ids.get(&part) {
                    Some(id) => out.push(*id),
                    None => out.extend(
                        part.chars()
                            .filter_map(|c| self.ids.get(&c.to_string()).copied()),
                    ),
                }
            }
        }
        if piece.len() <= 64 {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() < 100_000 {
                    cache.insert(piece.to_string(), out.clone());
                }
            }
        }
        ids.extend(out);
    }
}

fn parse_merges(value: &serde_json::Value) -> Result<Vec<(String, String)>, BpeError> {
    let items = value
        .as_array()
        .ok_or_else(|| BpeError::Invalid("model.merges is not a list".into()))?;
    items
        .iter()
        .map(|item| match item {
            serde_json::Value::String(text) => split_merge(text),
            serde_json::Value::Array(pair) if pair.len() == 2 => Ok((
                pair[0].as_str().unwrap_or_default().to_string(),
                pair[1].as_str().unwrap_or_default().to_string(),
            )),
            _ => Err(BpeError::Invalid(
                "a merge is neither \"a b\" nor [a, b]".into(),
            )),
        })
        .collect()
}

fn split_merge(text: &str) -> Result<(String, String), BpeError> {
    text.split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| BpeError::Invalid(format!("merge `{text}` has no space")))
}

/// GPT-2's reversible map from bytes to printable characters (the token
/// strings of a byte-level vocabulary spell bytes with these).
pub fn byte_level_chars() -> [char; 256] {
    byte_chars()
}

fn byte_chars() -> [char; 256] {
    let mut chars = ['\0'; 256];
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut next = 256u32;
    for b in 0..256u32 {
        chars[b as usize] = if printable(b) {
            char::from_u32(b).unwrap_or('?')
        } else {
            let c = char::from_u32(next).unwrap_or('?');
            next += 1;
            c
        };
    }
    chars
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny tokenizer: every byte as a token, a few merges, two specials.
    pub(crate) fn tiny() -> Bpe {
        let chars = byte_chars();
        let mut tokens: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        let merges: Vec<(String, String)> = [("h", "e"), ("l", "l"), ("he", "ll"), ("Ġ", "w")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        for (a, b) in &merges {
            tokens.push(format!("{a}{b}"));
        }
        tokens.push("<|im_start|>".into());
        tokens.push("<|im_end|>".into());
        let specials = [tokens.len() as u32 - 2, tokens.len() as u32 - 1];
        Bpe::new(
            tokens,
            &merges,
            &specials,
            PreTokenizer::Gpt2 { split_digits: true },
        )
        .unwrap()
    }

    #[test]
    fn merges_specials_and_round_trips() {
        let bpe = tiny();
        let ids = bpe.encode("<|im_start|>hello world 42<|im_end|>");
        assert_eq!(ids[0], bpe.token_id("<|im_start|>").unwrap());
        assert_eq!(*ids.last().unwrap(), bpe.token_id("<|im_end|>").unwrap());
        assert_eq!(ids[1], bpe.token_id("hell").unwrap());
        assert!(ids.contains(&bpe.token_id("Ġw").unwrap()));
        assert_eq!(bpe.decode(&ids), "<|im_start|>hello world 42<|im_end|>");
        for text in [
            "naïve café — 東京",
            "  two  spaces\n\nand\ttabs ",
            "'s 're x123y",
        ] {
            assert_eq!(bpe.decode(&bpe.encode(text)), text);
        }
    }

    #[test]
    fn whitespace_before_a_word_goes_with_the_word() {
        let bpe = tiny();
        let pieces = bpe.pieces("a   b");
        assert_eq!(pieces, vec!["a", "  ", " b"]);
        assert_eq!(bpe.segments("a12"), vec!["a", "1", "2"]);
    }
}
