//! An API key or token: a string whose `Debug` and `Display` never show it, so a
//! configuration or client printed with `{:?}` (a panic message, a `-v` trace)
//! cannot leak it. The one type for every secret the crates hold.

use serde::Deserialize;

/// An API key; its `Debug` and `Display` never show it.
///
/// ```
/// use toolforge_core::ApiKey;
/// let key = ApiKey::new("sk-live-123");
/// assert_eq!(format!("{key:?} {key}"), "ApiKey(***) ***");
/// assert_eq!(key.expose(), "sk-live-123");
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for building a request or a redaction list.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}
