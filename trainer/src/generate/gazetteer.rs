//! Hand-curated gazetteers, parsed once per generator: the shared ones embedded
//! from `trainer/data/teacher/` (places, languages, no-tool prompts), and each
//! tool's own from its knowledge folder (`tools/knowledge/<tool>/gazetteer.txt`:
//! translate's phrases, dictionary words, encyclopedic topics, web-search
//! subjects, autonomous goals).

use toolforge_tools::knowledge;

const PLACES: &str = include_str!("../../data/teacher/places.txt");
const LANGUAGES: &str = include_str!("../../data/teacher/languages.txt");
const NO_TOOL: &str = include_str!("../../data/teacher/notool.txt");

/// The gazetteer of built-in tool `tool` ("" when it has none).
fn of_tool(tool: &str) -> &'static str {
    knowledge::for_tool(tool).map_or("", |k| k.gazetteer)
}

/// A place: spellings people use (first is the usual one), its region or country, size class.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub names: Vec<String>,
    pub region: String,
    pub size: String,
}

/// A language: English names (first is canonical).
#[derive(Debug, Clone)]
pub(crate) struct Language {
    pub names: Vec<String>,
}

/// A phrase to translate and the language it is written in.
#[derive(Debug, Clone)]
pub(crate) struct Phrase {
    pub language: String,
    pub text: String,
}

/// A dictionary entry and the kind of question it suits.
#[derive(Debug, Clone)]
pub(crate) struct Word {
    pub word: String,
    pub kind: String,
}

/// An encyclopedic topic: kind, surface forms (proper capitalisation), article.
#[derive(Debug, Clone)]
pub(crate) struct Topic {
    pub kind: String,
    pub names: Vec<String>,
    pub article: String,
}

/// A web-search subject line: kind plus its fields.
#[derive(Debug, Clone)]
pub(crate) struct WebItem {
    pub kind: String,
    pub fields: Vec<String>,
}

/// A no-tool prompt and its kind.
#[derive(Debug, Clone)]
pub(crate) struct Chat {
    pub kind: String,
    pub text: String,
}

/// Every gazetteer, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Gazetteers {
    pub places: Vec<Place>,
    pub languages: Vec<Language>,
    pub phrases: Vec<Phrase>,
    pub words: Vec<Word>,
    pub topics: Vec<Topic>,
    pub web: Vec<WebItem>,
    pub goals: Vec<String>,
    pub chats: Vec<Chat>,
}

fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('|').map(str::trim).collect())
}

fn variants(field: &str) -> Vec<String> {
    field
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn field(row: &[&str], i: usize) -> String {
    row.get(i).map(|s| s.to_string()).unwrap_or_default()
}

impl Gazetteers {
    /// Parses the embedded files; malformed lines (missing fields) are skipped.
    pub(crate) fn load() -> Self {
        let places = rows(PLACES)
            .filter(|r| r.len() >= 3)
            .map(|r| Place {
                names: variants(r[0]),
                region: field(&r, 1),
                size: field(&r, 2),
            })
            .filter(|p| !p.names.is_empty())
            .collect();
        let languages = rows(LANGUAGES)
            .map(|r| Language {
                names: variants(r[0]),
            })
            .filter(|l| !l.names.is_empty())
            .collect();
        let phrases = rows(of_tool("translate"))
            .filter(|r| r.len() >= 2 && !r[1].is_empty())
            .map(|r| Phrase {
                language: field(&r, 0),
                text: field(&r, 1),
            })
            .collect();
        let words = rows(of_tool("dictionary"))
            .filter(|r| r.len() >= 2 && !r[0].is_empty())
            .map(|r| Word {
                word: field(&r, 0),
                kind: field(&r, 1),
            })
            .collect();
        let topics = rows(of_tool("wikipedia"))
            .filter(|r| r.len() >= 2)
            .map(|r| Topic {
                kind: field(&r, 0),
                names: variants(r[1]),
                article: field(&r, 2),
            })
            .filter(|t| !t.names.is_empty())
            .collect();
        let web = rows(of_tool("web_search"))
            .filter(|r| r.len() >= 2 && !r[1].is_empty())
            .map(|r| WebItem {
                kind: field(&r, 0),
                fields: r[1..].iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        let goals = rows(of_tool("autonomous_task"))
            .map(|r| r.join("|"))
            .collect();
        let chats = rows(NO_TOOL)
            .filter(|r| r.len() >= 2)
            .map(|r| Chat {
                kind: field(&r, 0),
                text: r[1..].join("|"),
            })
            .collect();
        Self {
            places,
            languages,
            phrases,
            words,
            topics,
            web,
            goals,
            chats,
        }
    }

    /// Web items of one kind.
    pub(crate) fn web_of(&self, kind: &str) -> Vec<&WebItem> {
        self.web.iter().filter(|w| w.kind == kind).collect()
    }

    /// Topics of one kind.
    pub(crate) fn topics_of(&self, kind: &str) -> Vec<&Topic> {
        self.topics.iter().filter(|t| t.kind == kind).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gazetteers_have_the_promised_sizes() {
        let g = Gazetteers::load();
        assert!(g.places.len() >= 300, "places {}", g.places.len());
        assert!(g.languages.len() >= 60);
        assert!(g.phrases.len() >= 150);
        assert!(g.words.len() >= 400);
        assert!(g.topics.len() >= 300);
        assert!(g.web.len() >= 250);
        assert!(g.goals.len() >= 100);
        assert!(g.chats.len() >= 200);
        assert!(g
            .places
            .iter()
            .any(|p| p.names.iter().any(|n| n == "Rio de Janeiro")));
    }
}
