//! The `wikipedia` tool: an encyclopedic summary of a subject from the MediaWiki
//! REST page-summary API, falling back to a full-text search when the topic is
//! not an exact article title or names a disambiguation page.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge_core::{Tool, ToolError};

use crate::config::EndpointConfig;
use crate::http::{HttpEndpoint, HttpError};

/// Public English Wikipedia.
pub const DEFAULT_WIKIPEDIA_BASE: &str = "https://en.wikipedia.org";
/// Search hits considered when the exact title fails.
const SEARCH_LIMIT: u32 = 3;

/// Arguments of `wikipedia`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WikipediaArgs {
    /// The subject to look up, properly capitalised, e.g. "Marie Curie" or "Photosynthesis".
    pub topic: String,
}

/// Encyclopedic summaries from Wikipedia.
#[derive(Debug, Clone)]
pub struct Wikipedia {
    endpoint: HttpEndpoint,
}

impl Wikipedia {
    /// Builds the tool; the base URL defaults to English Wikipedia.
    pub fn new(config: &EndpointConfig) -> Self {
        Self {
            endpoint: HttpEndpoint::new("Wikipedia", config, DEFAULT_WIKIPEDIA_BASE),
        }
    }

    /// The page summary, or `None` when no page has this title.
    async fn summary(&self, title: &str) -> Result<Option<PageSummary>, ToolError> {
        let path = format!(
            "/api/rest_v1/page/summary/{}",
            encode_path_segment(&normalize_title(title))
        );
        match self.endpoint.get_json(&path, &[], &[]).await {
            Ok(body) => serde_json::from_value(body).map(Some).map_err(|e| {
                ToolError::Failed(format!("Wikipedia sent a malformed page summary: {e}"))
            }),
            // 400 is MediaWiki's answer to a string that cannot be a title.
            Err(HttpError::Status {
                status: 404 | 400, ..
            }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Titles of the best full-text search hits.
    async fn search(&self, topic: &str) -> Result<Vec<String>, ToolError> {
        let body = self
            .endpoint
            .get_json(
                "/w/api.php",
                &[
                    ("action", "query".to_string()),
                    ("list", "search".to_string()),
                    ("srsearch", topic.to_string()),
                    ("format", "json".to_string()),
                    ("srlimit", SEARCH_LIMIT.to_string()),
                ],
                &[],
            )
            .await?;
        if let Some(info) = body.get("error") {
            let message = info
                .get("info")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(ToolError::Failed(format!(
                "Wikipedia search failed: {message}"
            )));
        }
        let response: SearchResponse = serde_json::from_value(body).map_err(|e| {
            ToolError::Failed(format!("Wikipedia sent a malformed search response: {e}"))
        })?;
        Ok(response.query.search.into_iter().map(|h| h.title).collect())
    }

    fn not_found(topic: &str) -> ToolError {
        ToolError::Failed(format!("Wikipedia has no article about \"{topic}\""))
    }
}

#[async_trait]
impl Tool for Wikipedia {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        crate::knowledge::examples(self.name())
    }

    type Args = WikipediaArgs;

    fn name(&self) -> &str {
        "wikipedia"
    }

    fn description(&self) -> &str {
        "Encyclopedic summary of a stable subject (people, places, history, science) from Wikipedia."
    }

    async fn call(&self, args: WikipediaArgs) -> Result<Value, ToolError> {
        let topic = args.topic.trim();
        if topic.is_empty() {
            return Err(ToolError::InvalidArguments(
                "`topic` must name a subject".into(),
            ));
        }
        let direct = self.summary(topic).await?;
        let page = match direct {
            Some(page) if !page.is_disambiguation() => page,
            direct => {
                let tried = direct.as_ref().map(|p| normalize_title(&p.title));
                let titles = self.search(topic).await?;
                let next = titles.into_iter().find(|t| {
                    tried.as_deref() != Some(normalize_title(t).as_str())
                        && normalize_title(t) != normalize_title(topic)
                });
                match (next, direct) {
                    (Some(title), direct) => match self.summary(&title).await? {
                        Some(page) => page,
                        None => direct.ok_or_else(|| Self::not_found(topic))?,
                    },
                    (None, Some(disambiguation)) => disambiguation,
                    (None, None) => return Err(Self::not_found(topic)),
                }
            }
        };
        Ok(page.into_output(self.endpoint.base_url()))
    }
}

#[derive(Debug, Deserialize)]
struct PageSummary {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    title: String,
    #[serde(default)]
    description: Option<String>,
    extract: String,
    #[serde(default)]
    content_urls: Option<ContentUrls>,
}

#[derive(Debug, Deserialize)]
struct ContentUrls {
    desktop: Option<PageUrl>,
}

#[derive(Debug, Deserialize)]
struct PageUrl {
    page: Option<String>,
}

impl PageSummary {
    fn is_disambiguation(&self) -> bool {
        self.kind.as_deref() == Some("disambiguation")
    }

    fn into_output(self, base_url: &str) -> Value {
        let url = self
            .content_urls
            .and_then(|c| c.desktop)
            .and_then(|d| d.page)
            .unwrap_or_else(|| {
                format!(
                    "{base_url}/wiki/{}",
                    encode_path_segment(&normalize_title(&self.title))
                )
            });
        let lead = lead_sentences(&self.extract, 2);
        let summary = if lead.is_empty() {
            match &self.description {
                Some(d) => format!("{}: {d}.", self.title),
                None => format!("{} (Wikipedia article without a summary).", self.title),
            }
        } else {
            lead
        };
        json!({
            "title": self.title,
            "description": self.description,
            "extract": self.extract,
            "url": url,
            "disambiguation": self.kind.as_deref() == Some("disambiguation"),
            "summary": summary,
        })
    }
}

#[derive(Debug, Deserialize)]
struct SearchResponse {
    query: SearchQuery,
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    search: Vec<SearchHit>,
}

#[derive(Debug, Deserialize)]
struct SearchHit {
    title: String,
}

/// A title as MediaWiki writes it in URLs: trimmed, single underscores for
/// whitespace, first letter capitalised.
fn normalize_title(title: &str) -> String {
    let joined = title.split_whitespace().collect::<Vec<_>>().join("_");
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Percent-encodes one URL path segment (everything but RFC 3986 unreserved characters).
pub(crate) fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Abbreviations whose trailing period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "no", "vs", "etc", "e.g", "i.e", "c", "ca",
    "approx", "inc", "ltd", "co", "mt", "ft", "gen", "col", "lt", "sgt", "rev", "u.s", "u.k", "fl",
    "b", "d",
];

/// The first `max` sentences of a text (one when the first is already long),
/// skipping periods of abbreviations and initials and those inside parentheses.
pub(crate) fn lead_sentences(text: &str, max: usize) -> String {
    let text = text.trim();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut depth = 0usize;
    let mut count = 0;
    for (i, &(pos, c)) in chars.iter().enumerate() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '.' | '!' | '?' if depth == 0 => {
                let next = chars.get(i + 1).map(|&(_, n)| n);
                let after = chars.get(i + 2).map(|&(_, n)| n);
                let boundary = match next {
                    None => true,
                    Some(n) if n.is_whitespace() => after.is_none_or(|a| {
                        a.is_uppercase() || a.is_ascii_digit() || matches!(a, '"' | '“' | '\'')
                    }),
                    _ => false,
                };
                if !boundary || (c == '.' && ends_with_abbreviation(&text[..pos])) {
                    continue;
                }
                count += 1;
                let end = pos + c.len_utf8();
                if count >= max || end >= 200 {
                    return text[..end].to_string();
                }
            }
            _ => {}
        }
    }
    text.to_string()
}

fn ends_with_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let lower = word.to_lowercase();
    (word.chars().count() == 1 && word.chars().all(char::is_uppercase))
        || ABBREVIATIONS.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_normalized_and_encoded() {
        assert_eq!(normalize_title("  marie   curie "), "Marie_curie");
        assert_eq!(normalize_title("éclair"), "Éclair");
        assert_eq!(encode_path_segment("AC/DC"), "AC%2FDC");
        assert_eq!(encode_path_segment("Zürich"), "Z%C3%BCrich");
        assert_eq!(encode_path_segment("C++_(x)"), "C%2B%2B_%28x%29");
    }

    #[test]
    fn lead_takes_one_or_two_sentences() {
        let text =
            "J. R. R. Tolkien was an English writer. He wrote The Hobbit. He taught at Oxford.";
        assert_eq!(
            lead_sentences(text, 2),
            "J. R. R. Tolkien was an English writer. He wrote The Hobbit."
        );
        assert_eq!(
            lead_sentences("Dr. Who (b. 1963) is a show. It is long.", 1),
            "Dr. Who (b. 1963) is a show."
        );
        assert_eq!(lead_sentences("No period here", 2), "No period here");
        assert_eq!(
            lead_sentences("Version 1.5 shipped. Then 2.0.", 1),
            "Version 1.5 shipped."
        );
        let long = format!("{} end. Second.", "word ".repeat(50));
        assert!(lead_sentences(&long, 2).ends_with("end."));
    }
}
