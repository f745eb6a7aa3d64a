//! Configuration of the built-in tools: endpoints, keys, timeouts and retries.
//! Deserialised from the `[tools]` table of the agent's TOML config.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toolforge_core::ApiKey;

/// One HTTP endpoint of a network tool.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Overrides the tool's public default base URL (e.g. a loopback fixture or a self-hosted instance).
    pub base_url: Option<String>,
    /// The key itself. Prefer `api_key_env`, which keeps keys out of config files.
    pub api_key: Option<ApiKey>,
    /// Name of the environment variable holding the key.
    pub api_key_env: Option<String>,
    /// Per-request timeout in milliseconds (default 8000).
    pub timeout_ms: Option<u64>,
    /// Retries after the first attempt on 429, 5xx and connection failures.
    pub retries: Option<u32>,
    /// First backoff delay; doubled at each retry.
    pub backoff_ms: Option<u64>,
}

impl EndpointConfig {
    /// A config that only overrides the base URL, everything else default.
    pub fn with_base_url(base_url: impl Into<String>) -> Self {
        Self {
            base_url: Some(base_url.into()),
            ..Self::default()
        }
    }

    /// The key: the literal one, else the named environment variable's value.
    pub fn resolve_key(&self) -> Option<ApiKey> {
        self.api_key.clone().filter(|k| !k.is_empty()).or_else(|| {
            self.api_key_env
                .as_deref()
                .and_then(|var| std::env::var(var).ok())
                .filter(|k| !k.is_empty())
                .map(ApiKey::new)
        })
    }

    /// The per-request timeout: `timeout_ms`, default 8 s.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(8_000))
    }

    /// Retries after the first attempt: `retries`, default 2, capped at 10.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(2).min(10)
    }

    /// The first backoff delay: `backoff_ms`, default 250 ms.
    pub fn backoff(&self) -> Duration {
        Duration::from_millis(self.backoff_ms.unwrap_or(250))
    }
}

/// Which web search provider `web_search` uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchProvider {
    /// A SearXNG instance's JSON API (`/search?format=json`).
    #[default]
    Searxng,
    /// The Brave Search API (keyed).
    Brave,
}

/// The `[tools]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsConfig {
    /// Open-Meteo forecast API used by `weather`.
    #[serde(default)]
    pub weather: EndpointConfig,
    /// Open-Meteo geocoding API, which `weather` uses to turn place names into coordinates.
    #[serde(default)]
    pub geocoding: EndpointConfig,
    /// Wikipedia API used by `wikipedia`.
    #[serde(default)]
    pub wikipedia: EndpointConfig,
    /// Endpoint of the provider chosen by `search_provider`, used by `web_search`.
    #[serde(default)]
    pub web_search: EndpointConfig,
    /// Which backend `web_search` uses (default SearXNG).
    #[serde(default)]
    pub search_provider: SearchProvider,
    /// LibreTranslate API used by `translate`.
    #[serde(default)]
    pub translate: EndpointConfig,
    /// Free Dictionary API used by `dictionary`.
    #[serde(default)]
    pub dictionary: EndpointConfig,
    /// Exchange rates for currency conversion in `unit_converter`.
    #[serde(default)]
    pub currency: EndpointConfig,
    /// Shared libraries implementing the ToolForge plugin ABI, loaded at start.
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    /// The user's own place ("Oslo"), used when a request names none (the router
    /// then passes `current location`, see [`crate::weather::CURRENT_LOCATION`]).
    #[serde(default)]
    pub home: Option<String>,
}

impl ToolsConfig {
    /// Every secret the tools may use, so log sinks can redact them.
    pub fn secrets(&self) -> Vec<String> {
        [
            &self.weather,
            &self.geocoding,
            &self.wikipedia,
            &self.web_search,
            &self.translate,
            &self.dictionary,
            &self.currency,
        ]
        .iter()
        .filter_map(|e| e.resolve_key())
        .map(|key| key.expose().to_string())
        .collect()
    }
}
