//! A BERT WordPiece tokenizer read from a Hugging Face `tokenizer.json`
//! (`model.vocab`, `[CLS]`/`[SEP]`/`[UNK]`, `##` continuations). Basic
//! tokenization follows BERT's uncased recipe (clean text, lowercase, strip
//! accents, split on whitespace, punctuation and CJK characters); every piece
//! keeps byte offsets into the original query so argument spans are cut from the
//! user's own text.

use std::collections::HashMap;

use serde_json::Value;

use super::features::Token;

/// One wordpiece: its vocabulary id and where it came from in the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Vocabulary id (`[UNK]`'s when the word matches no pieces).
    pub id: u32,
    /// Byte offsets of the piece's text in the query (the whole word for `[UNK]`).
    pub token: Token,
}

/// The WordPiece vocabulary and its special tokens.
#[derive(Debug, Clone)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    cls: u32,
    sep: u32,
    unk: u32,
    prefix: String,
    max_word_chars: usize,
    lowercase: bool,
}

impl WordPiece {
    /// Reads the content of a `tokenizer.json` with a `WordPiece` model.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let root: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let model = root.get("model").ok_or("no `model` section")?;
        if let Some(kind) = model.get("type").and_then(Value::as_str) {
            if kind != "WordPiece" {
                return Err(format!("model type is {kind}, not WordPiece"));
            }
        }
        let vocab: HashMap<String, u32> = model
            .get("vocab")
            .and_then(Value::as_object)
            .ok_or("no `model.vocab` map")?
            .iter()
            .filter_map(|(piece, id)| {
                let id = u32::try_from(id.as_u64()?).ok()?;
                Some((piece.clone(), id))
            })
            .collect();
        let special = |name: &str| {
            vocab
                .get(name)
                .copied()
                .ok_or_else(|| format!("the vocabulary has no {name}"))
        };
        let unk_name = model
            .get("unk_token")
            .and_then(Value::as_str)
            .unwrap_or("[UNK]");
        let lowercase = root
            .get("normalizer")
            .and_then(|n| n.get("lowercase"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Ok(Self {
            cls: special("[CLS]")?,
            sep: special("[SEP]")?,
            unk: special(unk_name)?,
            prefix: model
                .get("continuing_subword_prefix")
                .and_then(Value::as_str)
                .unwrap_or("##")
                .to_string(),
            max_word_chars: model
                .get("max_input_chars_per_word")
                .and_then(Value::as_u64)
                .map_or(100, |n| n as usize),
            lowercase,
            vocab,
        })
    }

    /// Every entry of the vocabulary (pieces, `##` continuations and specials).
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.vocab.keys().map(String::as_str)
    }

    /// Id of `[CLS]`.
    pub fn cls(&self) -> u32 {
        self.cls
    }

    /// Id of `[SEP]`.
    pub fn sep(&self) -> u32 {
        self.sep
    }

    /// Number of entries in the vocabulary.
    pub fn len(&self) -> usize {
        self.vocab.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.vocab.is_empty()
    }

    /// Wordpieces of `text` (no `[CLS]`/`[SEP]`), at most `max_pieces`; the flag
    /// says whether pieces were cut off.
    pub fn encode(&self, text: &str, max_pieces: usize) -> (Vec<Piece>, bool) {
        let mut pieces = Vec::new();
        for word in self.words(text) {
            if pieces.len() >= max_pieces {
                return (pieces, true);
            }
            self.word_pieces(&word, &mut pieces);
        }
        let truncated = pieces.len() > max_pieces;
        pieces.truncate(max_pieces);
        (pieces, truncated)
    }

    /// Basic tokenization: words as normalised characters, each with the byte
    /// range of the original character it came from.
    fn words(&self, text: &str) -> Vec<Vec<(char, usize, usize)>> {
        let mut words = Vec::new();
        let mut current: Vec<(char, usize, usize)> = Vec::new();
        for (start, c) in text.char_indices() {
            let end = start + c.len_utf8();
            if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
                continue;
            }
            if c.is_whitespace() {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                continue;
            }
            if is_punctuation(c) || is_cjk(c) {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                words.push(vec![(c, start, end)]);
                continue;
            }
            if self.lowercase {
                for lower in c.to_lowercase() {
                    if let Some(base) = strip_accent(lower) {
                        current.push((base, start, end));
                    }
                }
            } else {
                current.push((c, start, end));
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
        words
    }

    /// Greedy longest-match-first wordpieces of one word (all `[UNK]` when a part
    /// of it matches nothing, as in BERT).
    fn word_pieces(&self, word: &[(char, usize, usize)], out: &mut Vec<Piece>) {
        let whole = Token {
            start: word.first().map_or(0, |w| w.1),
            end: word.last().map_or(0, |w| w.2),
        };
        if word.len() > self.max_word_chars {
            out.push(Piece {
                id: self.unk,
                token: whole,
            });
            return;
        }
        let mut found = Vec::new();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut hit = None;
            while end > start {
                let mut piece: String = if start > 0 {
                    self.prefix.clone()
                } else {
                    String::new()
                };
                piece.extend(word[start..end].iter().map(|w| w.0));
                if let Some(&id) = self.vocab.get(&piece) {
                    hit = Some(id);
                    break;
                }
                end -= 1;
            }
            let Some(id) = hit else {
                out.push(Piece {
                    id: self.unk,
                    token: whole,
                });
                return;
            };
            found.push(Piece {
                id,
                token: Token {
                    start: word[start].1,
                    end: word[end - 1].2,
                },
            });
            start = end;
        }
        out.extend(found);
    }
}

/// BERT's punctuation: ASCII symbols plus common Unicode punctuation.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c,
            '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205e}' | '\u{3000}'..='\u{303f}'
            | '\u{a1}' | '\u{a7}' | '\u{ab}' | '\u{b6}' | '\u{b7}' | '\u{bb}' | '\u{bf}')
}

/// CJK ideographs, which BERT splits into single characters.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}' | '\u{20000}'..='\u{2a6df}'
        | '\u{f900}'..='\u{faff}' | '\u{2f800}'..='\u{2fa1f}')
}

/// The base letter of an accented Latin letter (lowercase input); combining marks
/// are dropped (`None`).
fn strip_accent(c: char) -> Option<char> {
    if ('\u{300}'..='\u{36f}').contains(&c) {
        return None;
    }
    let base = match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' => 'h',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò'..='ö' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    };
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "weather", "in", "paris", "conv", "##ert", "10",
            "##km", "?", ",", "cafe", "s", "'",
        ];
        let map: serde_json::Map<String, Value> = vocab
            .iter()
            .enumerate()
            .map(|(i, p)| ((*p).to_string(), Value::from(i)))
            .collect();
        let json = serde_json::json!({
            "normalizer": {"type": "BertNormalizer", "lowercase": true},
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                      "continuing_subword_prefix": "##", "vocab": map}
        });
        WordPiece::from_json(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn pieces_keep_offsets_into_the_query() {
        let wp = tiny();
        let q = "Weather in PARIS, convert 10km?";
        let (pieces, truncated) = wp.encode(q, 64);
        assert!(!truncated);
        let texts: Vec<&str> = pieces.iter().map(|p| p.token.text(q)).collect();
        assert_eq!(
            texts,
            vec!["Weather", "in", "PARIS", ",", "conv", "ert", "10", "km", "?"]
        );
        let ids: Vec<u32> = pieces.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![4, 5, 6, 12, 7, 8, 9, 10, 11]);
        assert_eq!((wp.cls(), wp.sep(), wp.len()), (2, 3, 16));
    }

    #[test]
    fn accents_unknown_words_and_truncation() {
        let wp = tiny();
        let q = "Café  zzz ©";
        let (pieces, _) = wp.encode(q, 64);
        let ids: Vec<u32> = pieces.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![13, 1, 1]);
        assert_eq!(pieces[0].token.text(q), "Café");
        assert_eq!(pieces[1].token.text(q), "zzz");
        let (cut, truncated) = wp.encode("in in in in", 3);
        assert_eq!(cut.len(), 3);
        assert!(truncated);
        assert!(WordPiece::from_json(b"{}").is_err());
    }
}
