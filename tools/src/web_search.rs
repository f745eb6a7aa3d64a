//! The `web_search` tool: web results for time-sensitive questions, from a
//! pluggable [`SearchProvider`]. Two providers ship: a SearXNG instance's JSON API
//! (self-hosted, keyless) and the Brave Search API (keyed).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use toolforge_core::{Tool, ToolError};

use crate::config::{EndpointConfig, SearchProvider as ProviderKind};
use crate::http::{HttpEndpoint, HttpError};

/// SearXNG has no reliable public instance; this is where a local one listens by default.
pub const DEFAULT_SEARXNG_BASE: &str = "http://127.0.0.1:8888";
/// Public Brave Search API.
pub const DEFAULT_BRAVE_BASE: &str = "https://api.search.brave.com";
/// Results returned when `max_results` is not given.
pub const DEFAULT_MAX_RESULTS: usize = 5;
/// Upper bound of `max_results` (also Brave's per-request maximum).
pub const MAX_RESULTS_CAP: usize = 20;
/// Longest snippet kept per result, in characters.
const SNIPPET_CHARS: usize = 400;

/// Arguments of `web_search`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSearchArgs {
    /// What to look up, e.g. "latest price of bitcoin".
    pub query: String,
    /// How many results to return (1 to 20, default 5).
    #[serde(default)]
    pub max_results: Option<i64>,
}

/// One web result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Title of the page.
    pub title: String,
    /// Address of the page.
    pub url: String,
    /// Plain-text excerpt of the page (markup removed).
    pub snippet: String,
}

/// A web search backend.
#[async_trait]
pub trait SearchProvider: Send + Sync {
    /// Short name reported in the tool's output (e.g. `searxng`).
    fn name(&self) -> &str;
    /// Up to `max_results` results for `query`, best first.
    async fn search(&self, query: &str, max_results: usize)
        -> Result<Vec<SearchResult>, ToolError>;
}

/// A SearXNG instance's JSON API (`/search?format=json`).
#[derive(Debug, Clone)]
pub struct SearxngProvider {
    endpoint: HttpEndpoint,
}

impl SearxngProvider {
    /// Builds the provider; the base URL defaults to a local instance on port 8888.
    pub fn new(config: &EndpointConfig) -> Self {
        Self {
            endpoint: HttpEndpoint::new("SearXNG", config, DEFAULT_SEARXNG_BASE),
        }
    }
}

#[derive(Debug, Deserialize)]
struct SearxngResponse {
    results: Vec<SearxngResult>,
}

#[derive(Debug, Deserialize)]
struct SearxngResult {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

#[async_trait]
impl SearchProvider for SearxngProvider {
    fn name(&self) -> &str {
        "searxng"
    }

    async fn search(
        &self,
        query: &str,
        max_results: usize,
    ) -> Result<Vec<SearchResult>, ToolError> {
        let body = self
            .endpoint
            .get_json(
                "/search",
                &[("q", query.to_string()), ("format", "json".to_string())],
                &[("Accept", "application/json".to_string())],
            )
            .await
            .map_err(|e| match e {
                HttpError::Network { message, .. } => ToolError::Network(format!(
                    "the SearXNG instance at {} is unreachable ({message}); run one there or set \
                     `tools.web_search.base_url` to a SearXNG instance (or use search_provider = \
                     \"brave\" with an API key)",
                    self.endpoint.base_url()
                )),
                HttpError::Status { status: 403, .. } => ToolError::Failed(format!(
                    "the SearXNG instance at {} refused JSON output (HTTP 403); enable the `json` \
                     format under `search.formats` in its settings.yml",
                    self.endpoint.base_url()
                )),
                other => other.into(),
            })?;
        let response: SearxngResponse = serde_json::from_value(body)
            .map_err(|e| ToolError::Failed(format!("SearXNG sent a malformed response: {e}")))?;
        Ok(response
            .results
            .into_iter()
            .filter_map(|r| {
                let url = r.url.filter(|u| !u.is_empty())?;
                Some(SearchResult {
                    title: clean_text(r.title.as_deref().unwrap_or(&url)),
                    snippet: clean_text(r.content.as_deref().unwrap_or("")),
                    url,
                })
            })
            .take(max_results)
            .collect())
    }
}

/// The Brave Search API (`/res/v1/web/search`, key in `X-Subscription-Token`).
#[derive(Debug, Clone)]
pub struct BraveProvider {
    endpoint: HttpEndpoint,
}

impl BraveProvider {
    /// Builds the provider; the key comes from the config (`api_key_env` preferred).
    pub fn new(config: &EndpointConfig) -> Self {
        Self {
            endpoint: HttpEndpoint::new("Brave Search", config, DEFAULT_BRAVE_BASE),
        }
    }
}

#[derive(Debug, Deserialize)]
struct BraveResponse {
    /// Always present in real answers (`"search"`); required so that a foreign
    /// body is reported as malformed instead of as "no results".
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: String,
    /// Absent when there are no web results.
    #[serde(default)]
    web: Option<BraveWeb>,
}

#[derive(Debug, Deserialize)]
struct BraveWeb {
    #[serde(default)]
    results: Vec<BraveResult>,
}

#[derive(Debug, Deserialize)]
struct BraveResult {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[async_trait]
impl SearchProvider for BraveProvider {
    fn name(&self) -> &str {
        "brave"
    }

    async fn search(
        &self,
        query: &str,
        max_results: usize,
    ) -> Result<Vec<SearchResult>, ToolError> {
        let key = self.endpoint.require_key()?;
        let body = self
            .endpoint
            .get_json(
                "/res/v1/web/search",
                &[("q", query.to_string()), ("count", max_results.to_string())],
                &[
                    ("X-Subscription-Token", key.to_string()),
                    ("Accept", "application/json".to_string()),
                ],
            )
            .await
            .map_err(brave_error)?;
        let response: BraveResponse = serde_json::from_value(body).map_err(|e| {
            ToolError::Failed(format!("Brave Search sent a malformed response: {e}"))
        })?;
        Ok(response
            .web
            .map(|w| w.results)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| {
                let url = r.url.filter(|u| !u.is_empty())?;
                Some(SearchResult {
                    title: clean_text(r.title.as_deref().unwrap_or(&url)),
                    snippet: clean_text(r.description.as_deref().unwrap_or("")),
                    url,
                })
            })
            .take(max_results)
            .collect())
    }
}

/// Brave reports errors as `{"type": "ErrorResponse", "error": {"detail": "...", "code": "..."}}`.
fn brave_error(error: HttpError) -> ToolError {
    if let HttpError::Status { status, body, .. } = &error {
        let detail = serde_json::from_str::<Value>(body).ok().and_then(|v| {
            v.pointer("/error/detail")
                .and_then(Value::as_str)
                .map(ToString::to_string)
        });
        if let Some(detail) = detail {
            return if matches!(status, 401 | 403 | 422) && detail.to_lowercase().contains("token") {
                ToolError::NotConfigured(format!(
                    "Brave Search rejected the API key (HTTP {status}): {detail}"
                ))
            } else {
                ToolError::Failed(format!(
                    "Brave Search rejected the request (HTTP {status}): {detail}"
                ))
            };
        }
    }
    error.into()
}

/// Web search over a configured provider.
pub struct WebSearch {
    provider: Box<dyn SearchProvider>,
}

impl std::fmt::Debug for WebSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSearch")
            .field("provider", &self.provider.name())
            .finish()
    }
}

impl WebSearch {
    /// Builds the tool over one of the shipped providers.
    pub fn new(provider: ProviderKind, config: &EndpointConfig) -> Self {
        match provider {
            ProviderKind::Searxng => Self::with_provider(Box::new(SearxngProvider::new(config))),
            ProviderKind::Brave => Self::with_provider(Box::new(BraveProvider::new(config))),
        }
    }

    /// Builds the tool over any provider.
    pub fn with_provider(provider: Box<dyn SearchProvider>) -> Self {
        Self { provider }
    }
}

#[async_trait]
impl Tool for WebSearch {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        crate::knowledge::examples(self.name())
    }

    type Args = WebSearchArgs;

    fn name(&self) -> &str {
        "web_search"
    }

    fn description(&self) -> &str {
        "Searches the web: current events, prices, scores, releases, anything time-sensitive."
    }

    async fn call(&self, args: WebSearchArgs) -> Result<Value, ToolError> {
        let query = args.query.trim();
        if query.is_empty() {
            return Err(ToolError::InvalidArguments(
                "`query` must not be empty".into(),
            ));
        }
        let max_results = clamp_max_results(args.max_results);
        let results = self.provider.search(query, max_results).await?;
        let summary = match results.first() {
            Some(top) if top.snippet.is_empty() => {
                format!("Top result for \"{query}\": {} ({}).", top.title, top.url)
            }
            Some(top) => format!(
                "Top result for \"{query}\": {} - {}",
                top.title,
                with_period(&top.snippet)
            ),
            None => format!("No web results found for \"{query}\"."),
        };
        Ok(json!({
            "query": query,
            "provider": self.provider.name(),
            "results": results,
            "summary": summary,
        }))
    }
}

/// `max_results` clamped to 1..=20, 5 when absent.
fn clamp_max_results(requested: Option<i64>) -> usize {
    requested.map_or(DEFAULT_MAX_RESULTS, |n| {
        usize::try_from(n.clamp(1, MAX_RESULTS_CAP as i64)).unwrap_or(DEFAULT_MAX_RESULTS)
    })
}

fn with_period(text: &str) -> String {
    if text.ends_with(['.', '!', '?', '…']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// Plain text from a snippet: tags removed, common entities decoded, whitespace
/// collapsed, length capped.
fn clean_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let decoded = text
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    let collapsed = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= SNIPPET_CHARS {
        collapsed
    } else {
        let cut: String = collapsed.chars().take(SNIPPET_CHARS).collect();
        format!("{}…", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_results_is_clamped() {
        assert_eq!(clamp_max_results(None), 5);
        assert_eq!(clamp_max_results(Some(0)), 1);
        assert_eq!(clamp_max_results(Some(-4)), 1);
        assert_eq!(clamp_max_results(Some(7)), 7);
        assert_eq!(clamp_max_results(Some(500)), 20);
    }

    #[test]
    fn snippets_lose_markup() {
        assert_eq!(
            clean_text("The <strong>Rust</strong>\n language &amp; its &quot;book&quot;"),
            "The Rust language & its \"book\""
        );
        assert!(clean_text(&"x".repeat(1000)).ends_with('…'));
    }
}
