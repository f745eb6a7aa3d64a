//! `unit_converter`: physical units (length, mass, volume, temperature, speed, area,
//! time, data, angle) converted offline from exact definitions, and currencies
//! converted with rates from a pluggable [`RatesProvider`] (Frankfurter by default).

mod catalog;
mod currency;

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge_core::{Tool, ToolError};

use crate::config::EndpointConfig;

pub use catalog::{convert, normalise, parse_unit, Category, Scale, Unit, UnitError};
pub use currency::{ExchangeRate, FrankfurterRates, RatesProvider};

/// Significant digits shown in summaries (the `value` field keeps full precision).
const SIGNIFICANT_DIGITS: i32 = 4;

/// Arguments of `unit_converter`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitConverterArgs {
    /// The amount to convert, as a number ("a gallon" is 1).
    pub value: f64,
    /// The unit to convert from, as written: a name, plural, abbreviation or symbol
    /// ("miles", "km", "°f", "fl oz", "sq ft", "usd", "€").
    pub from_unit: String,
    /// The unit to convert to, in the same forms ("km", "celsius", "cups", "eur").
    pub to_unit: String,
}

/// The `unit_converter` tool.
#[derive(Clone)]
pub struct UnitConverter {
    rates: Arc<dyn RatesProvider>,
}

impl std::fmt::Debug for UnitConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitConverter")
            .field("rates", &self.rates.name())
            .finish()
    }
}

impl UnitConverter {
    /// A converter whose currency rates come from the Frankfurter API at
    /// `currency.base_url` (default [`FrankfurterRates::DEFAULT_BASE`]).
    pub fn new(currency: &EndpointConfig) -> Self {
        Self::with_provider(Arc::new(FrankfurterRates::new(currency)))
    }

    /// A converter with another source of exchange rates.
    pub fn with_provider(rates: Arc<dyn RatesProvider>) -> Self {
        Self { rates }
    }

    /// Converts `value` from one unit to another; the JSON result carries the
    /// numeric `value`, canonical unit names, the `category` and a `summary`.
    pub async fn convert(
        &self,
        value: f64,
        from_unit: &str,
        to_unit: &str,
    ) -> Result<Value, ToolError> {
        if !value.is_finite() {
            return Err(ToolError::InvalidArguments(
                "value must be a finite number".to_string(),
            ));
        }
        let given = value;
        let (value, from) = compound(value, from_unit).map_err(invalid)?;
        let to = parse_unit(to_unit, "to_unit").map_err(invalid)?;
        // An ambiguous unit takes the reading of the other unit's kind.
        let (from, to) = if from.category == to.category {
            (from, to)
        } else if let Some(other) = catalog::reading_as(&from, to.category) {
            (other, to)
        } else if let Some(other) = catalog::reading_as(&to, from.category) {
            (from, other)
        } else {
            (from, to)
        };
        if from.category != to.category {
            return Err(invalid(UnitError::Incompatible {
                from: from.plural,
                from_category: from.category,
                to: to.plural,
                to_category: to.category,
            }));
        }
        match (from.scale, to.scale) {
            (Scale::Currency(from_code), Scale::Currency(to_code)) => {
                let quote = if from_code == to_code {
                    ExchangeRate {
                        rate: 1.0,
                        date: None,
                    }
                } else {
                    self.rates.rate(from_code, to_code).await?
                };
                let result = catalog::within_range(value, &from, value * quote.rate, &to)
                    .map_err(invalid)?;
                let mut output = output(value, &from, result, &to, display_money);
                output["rate"] = json!(quote.rate);
                output["date"] = json!(quote.date);
                output["source"] = json!(self.rates.name());
                Ok(output)
            }
            _ => {
                let result = convert(value, &from, &to).map_err(invalid)?;
                let mut out = output(value, &from, result, &to, display_number);
                if value != given {
                    // A compound quantity: show it as written ("5 feet 10 inches = ...").
                    out["summary"] = json!(format!(
                        "{} {} = {}",
                        display_input(given),
                        from_unit.trim(),
                        to.describe(&display_number(result))
                    ));
                }
                Ok(out)
            }
        }
    }
}

#[async_trait]
impl Tool for UnitConverter {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        crate::knowledge::examples(self.name())
    }

    type Args = UnitConverterArgs;

    fn name(&self) -> &str {
        "unit_converter"
    }

    fn description(&self) -> &str {
        "Converts a value between units of length, mass, volume, temperature, speed, area, \
         time, data size and angle, and between currencies at current exchange rates."
    }

    async fn call(&self, args: UnitConverterArgs) -> Result<Value, ToolError> {
        self.convert(args.value, &args.from_unit, &args.to_unit)
            .await
    }
}

/// The value and unit of `value` + `from_unit`, where `from_unit` may go on with
/// more parts of one quantity ("5" + "feet 10 inches", "2" + "h 30 min", "3" +
/// "lb and 4 oz"): each part is added to the value in the first unit. Parts must
/// be of one kind, and not temperatures or currencies.
fn compound(value: f64, from_unit: &str) -> Result<(f64, Unit), UnitError> {
    let whole = match parse_unit(from_unit, "from_unit") {
        Ok(unit) => return Ok((value, unit)),
        Err(e) => e,
    };
    let mut parts: Vec<(f64, String)> = vec![(value, String::new())];
    for word in from_unit.split_whitespace() {
        let word = word.trim_matches(',');
        if word.eq_ignore_ascii_case("and") || word == "+" || word.is_empty() {
            continue;
        }
        match (word.parse::<f64>(), parts.last_mut()) {
            (Ok(n), _) if n.is_finite() => parts.push((n, String::new())),
            (_, Some((_, unit))) => {
                if !unit.is_empty() {
                    unit.push(' ');
                }
                unit.push_str(word);
            }
            (_, None) => {}
        }
    }
    if parts.len() < 2 {
        return Err(whole);
    }
    let units = parts
        .iter()
        .map(|(_, text)| parse_unit(text, "from_unit"))
        .collect::<Result<Vec<Unit>, UnitError>>()
        .map_err(|_| whole.clone())?;
    let base = units[0].clone();
    let linear = |u: &Unit| {
        u.category == base.category
            && !matches!(u.category, Category::Temperature | Category::Currency)
    };
    if !units.iter().all(linear) {
        return Err(whole);
    }
    let mut total = 0.0;
    for ((n, _), unit) in parts.iter().zip(&units) {
        total += convert(*n, unit, &base)?;
    }
    Ok((total, base))
}

fn invalid(e: UnitError) -> ToolError {
    ToolError::InvalidArguments(e.to_string())
}

fn output(value: f64, from: &Unit, result: f64, to: &Unit, show: fn(f64) -> String) -> Value {
    let summary = format!(
        "{} = {}",
        from.describe(&display_input(value)),
        to.describe(&show(result))
    );
    json!({
        "value": result,
        "unit": to.name,
        "from": {"value": value, "unit": from.name},
        "category": to.category.name(),
        "summary": summary,
    })
}

/// The number as the user gave it when that is short, else rounded like results.
fn display_input(value: f64) -> String {
    let plain = value.to_string();
    if plain.len() <= 12 {
        plain
    } else {
        display_number(value)
    }
}

/// Rounds for display to [`SIGNIFICANT_DIGITS`] significant digits (never rounding
/// the integer part, and keeping two decimals below 1000 so `273.15` survives),
/// trailing zeros dropped; scientific notation for extremes.
fn display_number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 || !value.is_finite() {
        return "0".to_string();
    }
    if !(1e-6..1e15).contains(&magnitude) {
        let text = format!("{:.*e}", (SIGNIFICANT_DIGITS - 1) as usize, value);
        return match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => text,
        };
    }
    let decimals = if magnitude < 1000.0 {
        decimals_for(magnitude).max(2)
    } else {
        decimals_for(magnitude)
    };
    trim_zeros(&format!("{:.*}", decimals, value))
}

/// Money: at least two decimals (dropped when they are zero).
fn display_money(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 || !value.is_finite() {
        return "0".to_string();
    }
    if !(1e-6..1e15).contains(&magnitude) {
        return display_number(value);
    }
    let text = format!("{:.*}", decimals_for(magnitude).max(2), value);
    match text.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole.to_string(),
        _ => text,
    }
}

fn decimals_for(magnitude: f64) -> usize {
    (SIGNIFICANT_DIGITS - 1 - magnitude.log10().floor() as i32).max(0) as usize
}

fn trim_zeros(text: &str) -> String {
    let trimmed = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    };
    if trimmed == "-0" {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{FixtureServer, Reply};
    use toolforge_core::DynTool;

    fn offline() -> UnitConverter {
        // Physical conversions never touch the network; this address is never dialled.
        UnitConverter::new(&EndpointConfig::with_base_url("http://127.0.0.1:9"))
    }

    async fn run(value: f64, from: &str, to: &str) -> Value {
        offline()
            .call_json(json!({"value": value, "from_unit": from, "to_unit": to}))
            .await
            .unwrap_or_else(|e| panic!("{value} {from} -> {to}: {e}"))
    }

    /// Within a thousandth of `want` (for results of compound conversions).
    fn near(v: &Value, want: f64) -> bool {
        v.as_f64().is_some_and(|v| (v - want).abs() < 1e-3 * want)
    }

    fn close(a: &Value, b: f64) -> bool {
        a.as_f64()
            .is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
    }

    #[tokio::test]
    async fn marathon_in_kilometers() {
        let out = run(26.2, "miles", "km").await;
        assert!(close(&out["value"], 42.164_812_8), "{out}");
        assert_eq!(out["unit"], "kilometer");
        assert_eq!(out["from"], json!({"value": 26.2, "unit": "mile"}));
        assert_eq!(out["category"], "length");
        assert_eq!(out["summary"], "26.2 miles = 42.16 kilometers");
    }

    #[tokio::test]
    async fn temperatures_both_ways_and_kelvin() {
        let out = run(98.6, "°F", "C").await;
        assert!(close(&out["value"], 37.0), "{out}");
        assert_eq!(out["unit"], "celsius");
        assert_eq!(out["summary"], "98.6 °F = 37 °C");
        assert!(close(
            &run(25.0, "celsius", "fahrenheit").await["value"],
            77.0
        ));
        assert!(close(
            &run(-40.0, "degrees f", "degrees c").await["value"],
            -40.0
        ));
        let out = run(0.0, "°C", "kelvin").await;
        assert!(close(&out["value"], 273.15));
        assert_eq!(out["summary"], "0 °C = 273.15 K");
        assert!(close(&run(300.0, "K", "°F").await["value"], 80.33));
        let err = offline()
            .call_json(json!({"value": -500, "from_unit": "F", "to_unit": "C"}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("below absolute zero"), "{err}");
    }

    #[tokio::test]
    async fn kitchen_volumes() {
        let out = run(1.0, "gallon", "cups").await;
        assert!(close(&out["value"], 16.0), "{out}");
        assert_eq!(out["summary"], "1 gallon = 16 cups");
        assert!(close(&run(1.0, "cup", "ml").await["value"], 236.588_236_5));
        assert!(close(&run(3.0, "tsp", "tbsp").await["value"], 1.0));
        assert!(close(&run(1.0, "cup", "fl oz").await["value"], 8.0));
        assert!(close(
            &run(1.0, "imperial gallon", "liters").await["value"],
            4.546_09
        ));
        assert!(close(
            &run(1.0, "imperial pint", "fluid ounces").await["value"],
            19.215_198_8
        ));
    }

    #[tokio::test]
    async fn data_sizes_binary_versus_decimal() {
        assert!(close(&run(1.0, "GiB", "MB").await["value"], 1_073.741_824));
        assert!(close(
            &run(1.0, "GB", "MiB").await["value"],
            953.674_316_406_25
        ));
        assert!(close(&run(1.0, "Mb", "KB").await["value"], 1_000.0));
        assert!(close(
            &run(1.0, "megabit", "kilobytes").await["value"],
            125.0
        ));
        assert!(close(&run(1.0, "byte", "bits").await["value"], 8.0));
        let out = run(1.0, "TiB", "bytes").await;
        assert_eq!(out["summary"], "1 tebibyte = 1099511627776 bytes");
    }

    #[tokio::test]
    async fn speed_area_time_angle_mass() {
        assert!(close(&run(60.0, "mph", "km/h").await["value"], 96.560_64));
        assert!(close(
            &run(10.0, "knots", "m/s").await["value"],
            5.144_444_444_4
        ));
        assert!(close(
            &run(1.0, "hectare", "acres").await["value"],
            2.471_053_814_67
        ));
        assert!(close(
            &run(1.0, "sq mi", "km²").await["value"],
            2.589_988_110_336
        ));
        assert!(close(
            &run(1000.0, "square feet", "m2").await["value"],
            92.903_04
        ));
        assert!(close(&run(1.0, "year", "days").await["value"], 365.2425));
        assert!(close(&run(90.0, "minutes", "h").await["value"], 1.5));
        assert!(close(
            &run(90.0, "°", "rad").await["value"],
            std::f64::consts::FRAC_PI_2
        ));
        assert!(close(&run(150.0, "lbs", "kg").await["value"], 68.038_855_5));
        assert!(close(&run(16.0, "oz", "pounds").await["value"], 1.0));
    }

    #[tokio::test]
    async fn ambiguous_units_read_from_the_other_unit() {
        // Ounces beside a volume are fluid ounces; beside a mass, ounces.
        assert!(near(&run(2.0, "liters", "ounces").await["value"], 67.628));
        assert!(near(&run(2.0, "oz", "ml").await["value"], 59.147));
        assert!(near(&run(16.0, "oz", "pounds").await["value"], 1.0));
        assert!(near(&run(1.0, "fl oz", "grams").await["value"], 28.3495));
    }

    #[tokio::test]
    async fn compound_quantities_add_their_parts() {
        assert!(near(
            &run(5.0, "feet 10 inches", "centimeters").await["value"],
            177.8
        ));
        assert!(near(&run(2.0, "h 30 min", "minutes").await["value"], 150.0));
        assert!(near(
            &run(3.0, "lb and 4 oz", "kg").await["value"],
            1.474_17
        ));
        let mixed = offline()
            .convert(5.0, "feet 10 kg", "cm")
            .await
            .unwrap_err();
        assert!(mixed.to_string().contains("unknown unit"), "{mixed}");
    }

    #[tokio::test]
    async fn incompatible_and_unknown_units_are_clear_errors() {
        let converter = offline();
        let err = converter
            .call_json(json!({"value": 3, "from_unit": "miles", "to_unit": "kg"}))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ToolError::InvalidArguments(_)));
        assert!(
            text.contains("(length)") && text.contains("(mass)"),
            "{text}"
        );
        let err = converter
            .call_json(json!({"value": 3, "from_unit": "usd", "to_unit": "kg"}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("(currency)") && err.to_string().contains("(mass)"));
        let err = converter
            .call_json(json!({"value": 3, "from_unit": "smoots", "to_unit": "m"}))
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments(_)));
        assert!(err.to_string().contains("\"smoots\" in from_unit"), "{err}");
        let err = converter
            .call_json(json!({"value": "three", "from_unit": "m", "to_unit": "ft"}))
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments(_)));
    }

    #[test]
    fn display_rounds_to_sensible_digits() {
        assert_eq!(display_number(42.164_812_8), "42.16");
        assert_eq!(display_number(36.999_999_999_9), "37");
        assert_eq!(display_number(1_234_567.89), "1234568");
        assert_eq!(display_number(273.15), "273.15");
        assert_eq!(display_number(1.609_344), "1.609");
        assert_eq!(display_number(0.000_123_456), "0.0001235");
        assert_eq!(display_number(-0.000_000_000_1), "-1e-10");
        assert_eq!(display_number(9.461e15), "9.461e15");
        assert_eq!(display_money(92.0), "92");
        assert_eq!(display_money(92.5), "92.50");
        assert_eq!(display_money(0.923_456), "0.9235");
    }

    fn rates_config(url: &str) -> EndpointConfig {
        EndpointConfig {
            base_url: Some(url.to_string()),
            retries: Some(0),
            timeout_ms: Some(2_000),
            ..EndpointConfig::default()
        }
    }

    #[tokio::test]
    async fn currency_uses_the_frankfurter_latest_endpoint() {
        let server = FixtureServer::start(vec![(
            "GET /latest",
            vec![Reply::json(
                200,
                r#"{"amount":1.0,"base":"USD","date":"2026-11-20","rates":{"EUR":0.92}}"#,
            )],
        )])
        .await;
        let converter = UnitConverter::new(&rates_config(server.url()));
        let out = converter
            .call_json(json!({"value": 100, "from_unit": "dollars", "to_unit": "€"}))
            .await
            .unwrap();
        assert!(close(&out["value"], 92.0), "{out}");
        assert_eq!(out["unit"], "EUR");
        assert_eq!(out["from"], json!({"value": 100.0, "unit": "USD"}));
        assert_eq!(out["category"], "currency");
        assert_eq!(out["date"], "2026-11-20");
        assert_eq!(out["source"], "frankfurter");
        assert_eq!(out["summary"], "100 USD = 92 EUR");
        assert_eq!(server.requests()[0].target, "/latest?from=USD&to=EUR");
        let same = converter
            .convert(5.0, "gbp", "pounds sterling")
            .await
            .unwrap();
        assert!(close(&same["value"], 5.0));
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_currency_result_beyond_f64_is_an_error_not_zero() {
        let server = FixtureServer::start(vec![(
            "GET /latest",
            vec![Reply::json(
                200,
                r#"{"amount":1.0,"base":"USD","date":"2026-11-20","rates":{"EUR":1e300}}"#,
            )],
        )])
        .await;
        let converter = UnitConverter::new(&rates_config(server.url()));
        let err = converter.convert(1e300, "usd", "eur").await.unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments(_)), "{err}");
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[tokio::test]
    async fn currency_errors_are_clear() {
        let server = FixtureServer::start(vec![(
            "GET /latest",
            vec![
                Reply::json(404, r#"{"message":"not found"}"#),
                Reply::json(422, r#"{"message":"not found"}"#),
                Reply::json(200, "{oops"),
                Reply::json(200, r#"{"amount":1.0,"base":"USD","rates":{}}"#),
            ],
        )])
        .await;
        let converter = UnitConverter::new(&rates_config(server.url()));
        for expected in ["not found (HTTP 404)", "not found (HTTP 422)"] {
            let err = converter.convert(1.0, "usd", "yen").await.unwrap_err();
            assert!(matches!(err, ToolError::Failed(_)), "{err:?}");
            assert!(err.to_string().contains("no rate from USD to JPY"), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
        let err = converter.convert(1.0, "usd", "yen").await.unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");
        let err = converter.convert(1.0, "usd", "yen").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("malformed response: no rate for JPY"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unreachable_rate_service_is_a_network_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let converter = UnitConverter::new(&rates_config(&url));
        let err = converter.convert(1.0, "eur", "inr").await.unwrap_err();
        assert!(matches!(err, ToolError::Network(_)), "{err:?}");
        assert!(err.to_string().contains("Frankfurter"), "{err}");
    }

    #[test]
    fn schema_names_the_contract_arguments() {
        let spec = offline().spec();
        assert_eq!(spec.name, "unit_converter");
        assert_eq!(spec.parameters["properties"]["value"]["type"], "number");
        let mut required: Vec<&str> = spec.parameters["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        required.sort();
        assert_eq!(required, ["from_unit", "to_unit", "value"]);
    }
}
