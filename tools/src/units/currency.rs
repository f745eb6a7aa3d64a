//! Exchange rates for currency conversion: a [`RatesProvider`] trait so sources can
//! be swapped, and [`FrankfurterRates`], which reads the Frankfurter API (European
//! Central Bank reference rates, no key) through the shared [`HttpEndpoint`].

use async_trait::async_trait;
use serde_json::Value;
use toolforge_core::ToolError;

use crate::config::EndpointConfig;
use crate::http::{HttpEndpoint, HttpError};

/// One quoted rate: how many units of the target currency one unit of the source buys.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRate {
    /// Units of the target currency per unit of the source.
    pub rate: f64,
    /// The day the rate was published (`"2026-11-20"`), when the source says.
    pub date: Option<String>,
}

/// A source of exchange rates.
#[async_trait]
pub trait RatesProvider: Send + Sync {
    /// Short name of the source, reported in outputs (`"frankfurter"`).
    fn name(&self) -> &str;

    /// The rate from `from` to `to`, both uppercase ISO 4217 codes.
    async fn rate(&self, from: &str, to: &str) -> Result<ExchangeRate, ToolError>;
}

/// Rates from the Frankfurter API: `GET {base}/latest?from=USD&to=EUR` answers
/// `{"amount":1.0,"base":"USD","date":"2026-11-20","rates":{"EUR":0.92}}`.
#[derive(Debug, Clone)]
pub struct FrankfurterRates {
    endpoint: HttpEndpoint,
}

impl FrankfurterRates {
    /// The public instance, used when the config names no `base_url`.
    pub const DEFAULT_BASE: &'static str = "https://api.frankfurter.app";

    /// Reads rates from `config.base_url`, default [`Self::DEFAULT_BASE`].
    pub fn new(config: &EndpointConfig) -> Self {
        Self {
            endpoint: HttpEndpoint::new(
                "Frankfurter exchange-rate API",
                config,
                Self::DEFAULT_BASE,
            ),
        }
    }
}

#[async_trait]
impl RatesProvider for FrankfurterRates {
    fn name(&self) -> &str {
        "frankfurter"
    }

    async fn rate(&self, from: &str, to: &str) -> Result<ExchangeRate, ToolError> {
        let query = [("from", from.to_string()), ("to", to.to_string())];
        let body = self
            .endpoint
            .get_json("/latest", &query, &[])
            .await
            .map_err(|e| match e {
                HttpError::Status {
                    status: status @ (400 | 404 | 422),
                    ref body,
                    ..
                } => ToolError::Failed(format!(
                    "{} has no rate from {from} to {to}: {} (HTTP {status})",
                    self.endpoint.service(),
                    api_message(body)
                )),
                other => other.into(),
            })?;
        parse_latest(&body, to).map_err(|message| {
            ToolError::Failed(format!(
                "{} sent a malformed response: {message}",
                self.endpoint.service()
            ))
        })
    }
}

/// The `message` of a Frankfurter error body (`{"message":"not found"}`), else the raw text.
fn api_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            let trimmed = body.trim();
            if trimmed.is_empty() {
                "no details given".to_string()
            } else {
                trimmed.to_string()
            }
        })
}

fn parse_latest(body: &Value, to: &str) -> Result<ExchangeRate, String> {
    let quoted = body
        .get("rates")
        .and_then(|rates| rates.get(to))
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("no rate for {to}"))?;
    let amount = body.get("amount").and_then(Value::as_f64).unwrap_or(1.0);
    if !(amount > 0.0 && quoted.is_finite() && quoted > 0.0) {
        return Err(format!("rate for {to} is not a positive number"));
    }
    Ok(ExchangeRate {
        rate: quoted / amount,
        date: body.get("date").and_then(Value::as_str).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_latest_format_and_scales_by_amount() {
        let body =
            json!({"amount": 10.0, "base": "USD", "date": "2026-11-20", "rates": {"EUR": 9.2}});
        let rate = parse_latest(&body, "EUR").unwrap();
        assert!((rate.rate - 0.92).abs() < 1e-12);
        assert_eq!(rate.date.as_deref(), Some("2026-11-20"));
        assert!(parse_latest(&json!({"rates": {"EUR": -1}}), "EUR").is_err());
        assert!(parse_latest(&json!({"rates": {}}), "EUR").is_err());
    }

    #[test]
    fn error_bodies_yield_their_message() {
        assert_eq!(api_message(r#"{"message":"not found"}"#), "not found");
        assert_eq!(api_message("gateway exploded"), "gateway exploded");
        assert_eq!(api_message(""), "no details given");
    }
}
