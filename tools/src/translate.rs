//! The `translate` tool: translation through a LibreTranslate-compatible API.
//! Languages may be given by English name, a common native or alternate name, or
//! ISO 639-1 code; unknown languages are rejected before any request is made.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use toolforge_core::{Tool, ToolError};

use crate::config::EndpointConfig;
use crate::http::{HttpEndpoint, HttpError};

/// Public LibreTranslate (it requires a key; self-hosted instances do not).
pub const DEFAULT_TRANSLATE_BASE: &str = "https://libretranslate.com";

/// Arguments of `translate`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TranslateArgs {
    /// The text to translate, without surrounding quotes.
    pub text: String,
    /// Language to translate into: English name (e.g. "Japanese") or ISO 639-1 code (e.g. "ja").
    pub target_language: String,
    /// Language of the text, only when stated; detected automatically otherwise.
    #[serde(default)]
    pub source_language: Option<String>,
}

/// A language the tool knows: its code and English name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Language {
    /// ISO 639-1 code (with a script subtag for the Chinese variants).
    pub code: &'static str,
    /// English name.
    pub name: &'static str,
}

/// (code, English name, other accepted names). Names compare case-insensitively.
const LANGUAGES: &[(&str, &str, &[&str])] = &[
    ("en", "English", &["inglés", "anglais", "englisch"]),
    (
        "es",
        "Spanish",
        &["español", "espanol", "castilian", "castellano"],
    ),
    ("fr", "French", &["français", "francais"]),
    ("de", "German", &["deutsch"]),
    ("it", "Italian", &["italiano"]),
    ("pt", "Portuguese", &["português", "portugues"]),
    (
        "pt-BR",
        "Brazilian Portuguese",
        &["portuguese (brazil)", "português brasileiro"],
    ),
    ("nl", "Dutch", &["nederlands", "flemish", "vlaams"]),
    ("ru", "Russian", &["русский", "russkiy"]),
    (
        "zh",
        "Chinese",
        &[
            "mandarin",
            "mandarin chinese",
            "中文",
            "汉语",
            "漢語",
            "普通话",
            "putonghua",
            "simplified chinese",
            "chinese (simplified)",
        ],
    ),
    (
        "zh-Hant",
        "Traditional Chinese",
        &["chinese (traditional)", "繁體中文"],
    ),
    ("ja", "Japanese", &["日本語", "nihongo"]),
    ("ko", "Korean", &["한국어", "hangul"]),
    ("ar", "Arabic", &["العربية", "arabi"]),
    ("hi", "Hindi", &["हिन्दी", "हिंदी"]),
    ("bn", "Bengali", &["bangla", "বাংলা"]),
    ("ur", "Urdu", &["اردو"]),
    ("fa", "Persian", &["farsi", "فارسی"]),
    ("tr", "Turkish", &["türkçe", "turkce"]),
    ("pl", "Polish", &["polski"]),
    ("uk", "Ukrainian", &["українська", "ukrainska"]),
    ("cs", "Czech", &["čeština", "cestina"]),
    ("sk", "Slovak", &["slovenčina", "slovencina"]),
    (
        "sl",
        "Slovenian",
        &["slovene", "slovenščina", "slovenscina"],
    ),
    ("hr", "Croatian", &["hrvatski"]),
    ("sr", "Serbian", &["српски", "srpski"]),
    ("bs", "Bosnian", &["bosanski"]),
    ("mk", "Macedonian", &["македонски"]),
    ("bg", "Bulgarian", &["български"]),
    ("ro", "Romanian", &["română", "romana", "moldovan"]),
    ("hu", "Hungarian", &["magyar"]),
    ("el", "Greek", &["ελληνικά", "ellinika"]),
    ("sv", "Swedish", &["svenska"]),
    (
        "nb",
        "Norwegian",
        &[
            "norsk",
            "bokmål",
            "bokmal",
            "norwegian bokmål",
            "norwegian bokmal",
        ],
    ),
    ("da", "Danish", &["dansk"]),
    ("fi", "Finnish", &["suomi"]),
    ("is", "Icelandic", &["íslenska", "islenska"]),
    ("et", "Estonian", &["eesti"]),
    ("lv", "Latvian", &["latviešu", "latviesu"]),
    ("lt", "Lithuanian", &["lietuvių", "lietuviu"]),
    ("ga", "Irish", &["gaeilge", "irish gaelic"]),
    ("cy", "Welsh", &["cymraeg"]),
    ("eu", "Basque", &["euskara"]),
    ("ca", "Catalan", &["català", "catala", "valencian"]),
    ("gl", "Galician", &["galego"]),
    ("sq", "Albanian", &["shqip"]),
    ("he", "Hebrew", &["עברית", "ivrit"]),
    ("id", "Indonesian", &["bahasa indonesia"]),
    ("ms", "Malay", &["bahasa melayu", "melayu"]),
    ("tl", "Tagalog", &["filipino", "pilipino"]),
    ("vi", "Vietnamese", &["tiếng việt", "tieng viet"]),
    ("th", "Thai", &["ภาษาไทย"]),
    ("sw", "Swahili", &["kiswahili"]),
    ("am", "Amharic", &["አማርኛ"]),
    ("ta", "Tamil", &["தமிழ்"]),
    ("te", "Telugu", &["తెలుగు"]),
    ("mr", "Marathi", &["मराठी"]),
    ("gu", "Gujarati", &["ગુજરાતી"]),
    ("pa", "Punjabi", &["panjabi", "ਪੰਜਾਬੀ"]),
    ("kn", "Kannada", &["ಕನ್ನಡ"]),
    ("ml", "Malayalam", &["മലയാളം"]),
    ("ne", "Nepali", &["नेपाली"]),
    ("si", "Sinhala", &["sinhalese", "සිංහල"]),
    ("az", "Azerbaijani", &["azeri", "azərbaycan"]),
    ("kk", "Kazakh", &["қазақ"]),
    ("uz", "Uzbek", &["oʻzbek", "ozbek"]),
    ("ka", "Georgian", &["ქართული"]),
    ("hy", "Armenian", &["հայերեն"]),
    ("mn", "Mongolian", &["монгол"]),
    ("af", "Afrikaans", &[]),
    ("eo", "Esperanto", &[]),
    ("la", "Latin", &["latina"]),
    ("yo", "Yoruba", &["yorùbá"]),
    ("zu", "Zulu", &["isizulu"]),
    ("ha", "Hausa", &[]),
    ("so", "Somali", &["soomaali"]),
    ("km", "Khmer", &["cambodian", "ខ្មែរ"]),
    ("lo", "Lao", &["laotian", "ລາວ"]),
    ("my", "Burmese", &["myanmar", "မြန်မာ"]),
];

/// Codes other services use for a language in the table.
const CODE_ALIASES: &[(&str, &str)] = &[
    ("no", "nb"),
    ("iw", "he"),
    ("in", "id"),
    ("fil", "tl"),
    ("zh-cn", "zh"),
    ("zh-hans", "zh"),
    ("zh-tw", "zh-Hant"),
    ("pt-pt", "pt"),
];

/// Looks a language up by English name, alternate name or code.
pub fn lookup_language(input: &str) -> Option<Language> {
    let key = input.trim().to_lowercase();
    let key = key.strip_suffix(" language").unwrap_or(&key).trim();
    let key = key.strip_prefix("the ").unwrap_or(key).trim();
    let key = CODE_ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key.to_string(), |(_, code)| code.to_lowercase());
    LANGUAGES
        .iter()
        .find(|(code, name, others)| {
            code.to_lowercase() == key
                || name.to_lowercase() == key
                || others.iter().any(|o| o.to_lowercase() == key)
        })
        .map(|&(code, name, _)| Language { code, name })
}

fn language_arg(argument: &str, value: &str) -> Result<Language, ToolError> {
    lookup_language(value).ok_or_else(|| {
        ToolError::InvalidArguments(format!(
            "unknown language \"{value}\" in `{argument}`: give an English language name (e.g. \"Japanese\") or an ISO 639-1 code (e.g. \"ja\")"
        ))
    })
}

/// Translation between languages via LibreTranslate.
#[derive(Debug, Clone)]
pub struct Translate {
    endpoint: HttpEndpoint,
}

impl Translate {
    /// Builds the tool; the key (optional, required by libretranslate.com) comes from the config.
    pub fn new(config: &EndpointConfig) -> Self {
        Self {
            endpoint: HttpEndpoint::new("LibreTranslate", config, DEFAULT_TRANSLATE_BASE),
        }
    }

    /// LibreTranslate errors carry `{"error": "..."}`; surface that message.
    fn api_error(&self, error: HttpError) -> ToolError {
        let HttpError::Status { status, body, .. } = &error else {
            return error.into();
        };
        let Some(message) = serde_json::from_str::<Value>(body).ok().and_then(|v| {
            v.get("error")
                .and_then(Value::as_str)
                .map(ToString::to_string)
        }) else {
            return error.into();
        };
        let key_problem = *status == 403 || message.to_lowercase().contains("api key");
        if key_problem && self.endpoint.api_key().is_none() {
            ToolError::NotConfigured(format!(
                "LibreTranslate at {} needs an API key (HTTP {status}: {message}); set \
                 `tools.translate.api_key_env` or point `tools.translate.base_url` at a \
                 self-hosted instance",
                self.endpoint.base_url()
            ))
        } else {
            ToolError::Failed(format!("LibreTranslate error (HTTP {status}): {message}"))
        }
    }
}

#[derive(Debug, Deserialize)]
struct TranslateResponse {
    #[serde(rename = "translatedText")]
    translated_text: String,
    #[serde(rename = "detectedLanguage", default)]
    detected_language: Option<DetectedLanguage>,
}

#[derive(Debug, Deserialize)]
struct DetectedLanguage {
    language: String,
    #[serde(default)]
    confidence: Option<f64>,
}

#[async_trait]
impl Tool for Translate {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        crate::knowledge::examples(self.name())
    }

    type Args = TranslateArgs;

    fn name(&self) -> &str {
        "translate"
    }

    fn description(&self) -> &str {
        "Translates text between languages (source language detected when not given)."
    }

    async fn call(&self, args: TranslateArgs) -> Result<Value, ToolError> {
        let text = args.text.trim();
        if text.is_empty() {
            return Err(ToolError::InvalidArguments(
                "`text` must not be empty".into(),
            ));
        }
        let target = language_arg("target_language", &args.target_language)?;
        let source = match args
            .source_language
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("auto"))
        {
            Some(s) => Some(language_arg("source_language", s)?),
            None => None,
        };

        let mut body = Map::new();
        body.insert("q".into(), json!(text));
        body.insert("source".into(), json!(source.map_or("auto", |l| l.code)));
        body.insert("target".into(), json!(target.code));
        body.insert("format".into(), json!("text"));
        if let Some(key) = self.endpoint.api_key() {
            body.insert("api_key".into(), json!(key));
        }
        let response = self
            .endpoint
            .post_json("/translate", &Value::Object(body), &[])
            .await
            .map_err(|e| self.api_error(e))?;
        if let Some(message) = response.get("error").and_then(Value::as_str) {
            return Err(ToolError::Failed(format!(
                "LibreTranslate error: {message}"
            )));
        }
        let response: TranslateResponse = serde_json::from_value(response).map_err(|e| {
            ToolError::Failed(format!("LibreTranslate sent a malformed response: {e}"))
        })?;

        let (source_code, source_name, confidence) = match (source, &response.detected_language) {
            (Some(l), _) => (l.code.to_string(), Some(l.name.to_string()), None),
            (None, Some(d)) => (
                d.language.clone(),
                lookup_language(&d.language).map(|l| l.name.to_string()),
                d.confidence,
            ),
            (None, None) => ("auto".to_string(), None, None),
        };
        let translation = response.translated_text;
        let from = source_name
            .as_deref()
            .map(|n| format!(" (from {n})"))
            .unwrap_or_default();
        let summary = format!("\"{text}\" in {}: \"{translation}\"{from}.", target.name);
        Ok(json!({
            "text": text,
            "translation": translation,
            "source": { "code": source_code, "name": source_name },
            "target": { "code": target.code, "name": target.name },
            "detected_confidence": confidence,
            "summary": summary,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_native_names_and_codes_resolve() {
        let code = |s: &str| lookup_language(s).map(|l| l.code);
        assert_eq!(code("Japanese"), Some("ja"));
        assert_eq!(code("deutsch"), Some("de"));
        assert_eq!(code("Español"), Some("es"));
        assert_eq!(code("Mandarin"), Some("zh"));
        assert_eq!(code("Chinese"), Some("zh"));
        assert_eq!(code("Farsi"), Some("fa"));
        assert_eq!(code("Persian"), Some("fa"));
        assert_eq!(code("  FR "), Some("fr"));
        assert_eq!(code("the Spanish language"), Some("es"));
        assert_eq!(code("no"), Some("nb"));
        assert_eq!(code("pt-br"), Some("pt-BR"));
        assert_eq!(code("Klingon"), None);
        assert_eq!(code(""), None);
    }

    #[test]
    fn table_is_large_and_codes_are_unique() {
        assert!(LANGUAGES.len() >= 60);
        let mut codes: Vec<&str> = LANGUAGES.iter().map(|(c, _, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), LANGUAGES.len());
    }
}
