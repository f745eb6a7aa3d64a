//! The `weather` tool: current conditions and a daily forecast from Open-Meteo.
//! A place name is geocoded first (Open-Meteo geocoding), then the forecast is
//! fetched for its coordinates in the place's own time zone.

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate, Weekday};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge_core::{Tool, ToolError};

use crate::config::EndpointConfig;
use crate::http::{HttpEndpoint, HttpError};

/// Public Open-Meteo forecast API.
pub const DEFAULT_WEATHER_BASE: &str = "https://api.open-meteo.com";
/// Public Open-Meteo geocoding API.
pub const DEFAULT_GEOCODING_BASE: &str = "https://geocoding-api.open-meteo.com";

const CURRENT_FIELDS: &str =
    "temperature_2m,relative_humidity_2m,apparent_temperature,precipitation,weather_code,wind_speed_10m";
const DAILY_FIELDS: &str =
    "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max";
/// Candidates fetched when the location carries a qualifier ("Paris, Texas").
const QUALIFIED_CANDIDATES: u32 = 10;
/// The `location` routers give when the request names no place ("do I need an
/// umbrella"); the tool reads it (and "here") as the configured home.
pub const CURRENT_LOCATION: &str = "current location";

/// Arguments of `weather`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeatherArgs {
    /// The place, e.g. "Tokyo" or "Paris, France".
    pub location: String,
    /// Day of the forecast, only when asked: "today", "tomorrow", a weekday name, or an ISO date (YYYY-MM-DD) within the next 7 days.
    #[serde(default)]
    pub date: Option<String>,
}

/// Current conditions and a 7-day forecast for a place, via Open-Meteo.
#[derive(Debug, Clone)]
pub struct Weather {
    forecast: HttpEndpoint,
    geocoding: HttpEndpoint,
    home: Option<String>,
}

impl Weather {
    /// Builds the tool from the forecast and geocoding endpoint configurations.
    pub fn new(weather: &EndpointConfig, geocoding: &EndpointConfig) -> Self {
        Self {
            forecast: HttpEndpoint::new("Open-Meteo forecast", weather, DEFAULT_WEATHER_BASE),
            geocoding: HttpEndpoint::new("Open-Meteo geocoding", geocoding, DEFAULT_GEOCODING_BASE),
            home: None,
        }
    }

    /// The place used for [`CURRENT_LOCATION`] (`[tools] home` in the config).
    pub fn with_home(mut self, home: Option<String>) -> Self {
        self.home = home.filter(|h| !h.trim().is_empty());
        self
    }

    async fn geocode(&self, location: &str) -> Result<Place, ToolError> {
        let (name, qualifier) = match location.split_once(',') {
            Some((name, rest)) if !name.trim().is_empty() => {
                (name.trim(), Some(rest.trim()).filter(|q| !q.is_empty()))
            }
            _ => (location, None),
        };
        let count = if qualifier.is_some() {
            QUALIFIED_CANDIDATES
        } else {
            1
        };
        let body = self
            .geocoding
            .get_json(
                "/v1/search",
                &[
                    ("name", name.to_string()),
                    ("count", count.to_string()),
                    ("language", "en".to_string()),
                    ("format", "json".to_string()),
                ],
                &[],
            )
            .await
            .map_err(|e| open_meteo_error(&self.geocoding, e))?;
        let response: GeocodingResponse = parse(&self.geocoding, body)?;
        let mut places = response.results.unwrap_or_default();
        if places.is_empty() {
            return Err(ToolError::Failed(format!(
                "unknown location \"{location}\": Open-Meteo geocoding found no place by that name"
            )));
        }
        // A qualifier picks among same-named places; without a match the best-ranked one wins.
        let chosen = qualifier
            .and_then(|q| places.iter().position(|p| p.matches_qualifier(q)))
            .unwrap_or(0);
        Ok(places.swap_remove(chosen))
    }

    async fn fetch_forecast(&self, place: &Place) -> Result<Forecast, ToolError> {
        let body = self
            .forecast
            .get_json(
                "/v1/forecast",
                &[
                    ("latitude", place.latitude.to_string()),
                    ("longitude", place.longitude.to_string()),
                    ("current", CURRENT_FIELDS.to_string()),
                    ("daily", DAILY_FIELDS.to_string()),
                    ("timezone", "auto".to_string()),
                    ("forecast_days", "7".to_string()),
                ],
                &[],
            )
            .await
            .map_err(|e| open_meteo_error(&self.forecast, e))?;
        parse(&self.forecast, body)
    }
}

#[async_trait]
impl Tool for Weather {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        crate::knowledge::examples(self.name())
    }

    type Args = WeatherArgs;

    fn name(&self) -> &str {
        "weather"
    }

    fn description(&self) -> &str {
        "Current weather conditions and the daily forecast (up to 7 days ahead) for a place."
    }

    async fn call(&self, args: WeatherArgs) -> Result<Value, ToolError> {
        let mut location = args.location.trim();
        if location.is_empty() {
            return Err(ToolError::InvalidArguments(
                "`location` must name a place".into(),
            ));
        }
        if location.eq_ignore_ascii_case(CURRENT_LOCATION) || location.eq_ignore_ascii_case("here")
        {
            location = self.home.as_deref().map(str::trim).ok_or_else(|| {
                ToolError::InvalidArguments(
                    "no place was named and no home place is configured: name the place, \
                     or set `home = \"<city>\"` under [tools] in the config"
                        .into(),
                )
            })?;
        }
        let wanted = args
            .date
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(DateSpec::parse)
            .transpose()?;

        let place = self.geocode(location).await?;
        let forecast = self.fetch_forecast(&place).await?;
        let days = forecast.daily.days()?;
        let current = &forecast.current;
        let condition = wmo_condition(current.weather_code);

        let place_label = match &place.country {
            Some(country) => format!("{}, {}", place.name, country),
            None => place.name.clone(),
        };
        let mut output = json!({
            "location": location,
            "place": place.name,
            "country": place.country,
            "region": place.admin1,
            "latitude": place.latitude,
            "longitude": place.longitude,
            "timezone": forecast.timezone.as_ref().or(place.timezone.as_ref()),
            "current": {
                "time": current.time,
                "temperature_c": current.temperature_2m,
                "feels_like_c": current.apparent_temperature,
                "humidity_percent": current.relative_humidity_2m,
                "wind_kmh": current.wind_speed_10m,
                "precipitation_mm": current.precipitation,
                "weather_code": current.weather_code,
                "condition": condition,
            },
            "daily": days.iter().map(DayForecast::to_json).collect::<Vec<_>>(),
        });

        let summary = match wanted {
            None => format!(
                "{place_label}: {:.1}°C, {condition}, wind {:.0} km/h.",
                current.temperature_2m, current.wind_speed_10m
            ),
            Some(spec) => {
                let index = spec.resolve(&days)?;
                let day = &days[index];
                let mut entry = day.to_json();
                let label = day_label(index, day.date);
                entry["label"] = json!(label);
                output["forecast"] = entry;
                day.summary(&place_label, &label)
            }
        };
        output["summary"] = json!(summary);
        Ok(output)
    }
}

/// One geocoding hit.
#[derive(Debug, Clone, Deserialize)]
struct Place {
    name: String,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    admin1: Option<String>,
    #[serde(default)]
    admin2: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
}

impl Place {
    fn matches_qualifier(&self, qualifier: &str) -> bool {
        [
            &self.country,
            &self.country_code,
            &self.admin1,
            &self.admin2,
        ]
        .into_iter()
        .flatten()
        .any(|field| field.eq_ignore_ascii_case(qualifier))
    }
}

#[derive(Debug, Deserialize)]
struct GeocodingResponse {
    /// Absent when nothing matched.
    #[serde(default)]
    results: Option<Vec<Place>>,
}

#[derive(Debug, Deserialize)]
struct Forecast {
    #[serde(default)]
    timezone: Option<String>,
    current: Current,
    daily: Daily,
}

#[derive(Debug, Deserialize)]
struct Current {
    #[serde(default)]
    time: Option<String>,
    temperature_2m: f64,
    #[serde(default)]
    relative_humidity_2m: Option<f64>,
    #[serde(default)]
    apparent_temperature: Option<f64>,
    #[serde(default)]
    precipitation: Option<f64>,
    weather_code: u32,
    wind_speed_10m: f64,
}

#[derive(Debug, Deserialize)]
struct Daily {
    time: Vec<String>,
    #[serde(default)]
    weather_code: Vec<Option<u32>>,
    #[serde(default)]
    temperature_2m_max: Vec<Option<f64>>,
    #[serde(default)]
    temperature_2m_min: Vec<Option<f64>>,
    #[serde(default)]
    precipitation_probability_max: Vec<Option<f64>>,
}

impl Daily {
    /// The columns zipped into one record per day.
    fn days(&self) -> Result<Vec<DayForecast>, ToolError> {
        if self.time.is_empty() {
            return Err(ToolError::Failed(
                "Open-Meteo forecast sent a malformed response: no daily forecast".into(),
            ));
        }
        self.time
            .iter()
            .enumerate()
            .map(|(i, date)| {
                let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|e| {
                    ToolError::Failed(format!(
                        "Open-Meteo forecast sent a malformed response: bad date \"{date}\": {e}"
                    ))
                })?;
                Ok(DayForecast {
                    date,
                    weather_code: self.weather_code.get(i).copied().flatten(),
                    max_c: self.temperature_2m_max.get(i).copied().flatten(),
                    min_c: self.temperature_2m_min.get(i).copied().flatten(),
                    precipitation_probability: self
                        .precipitation_probability_max
                        .get(i)
                        .copied()
                        .flatten(),
                })
            })
            .collect()
    }
}

/// One day of the forecast.
#[derive(Debug, Clone)]
struct DayForecast {
    date: NaiveDate,
    weather_code: Option<u32>,
    max_c: Option<f64>,
    min_c: Option<f64>,
    precipitation_probability: Option<f64>,
}

impl DayForecast {
    fn condition(&self) -> &'static str {
        self.weather_code
            .map_or("unknown conditions", wmo_condition)
    }

    fn to_json(&self) -> Value {
        json!({
            "date": self.date.format("%Y-%m-%d").to_string(),
            "weekday": weekday_name(self.date.weekday()),
            "weather_code": self.weather_code,
            "condition": self.condition(),
            "max_c": self.max_c,
            "min_c": self.min_c,
            "precipitation_probability_percent": self.precipitation_probability,
        })
    }

    fn summary(&self, place: &str, label: &str) -> String {
        let mut text = format!("{place} {label}: {}", self.condition());
        match (self.min_c, self.max_c) {
            (Some(min), Some(max)) => text.push_str(&format!(", {min:.1} to {max:.1}°C")),
            (None, Some(max)) => text.push_str(&format!(", high {max:.1}°C")),
            (Some(min), None) => text.push_str(&format!(", low {min:.1}°C")),
            (None, None) => {}
        }
        if let Some(p) = self.precipitation_probability {
            text.push_str(&format!(", {p:.0}% chance of precipitation"));
        }
        text.push('.');
        text
    }
}

/// "today (2024-05-01)", "tomorrow (2024-05-02)", "on Friday 2024-05-03".
fn day_label(index: usize, date: NaiveDate) -> String {
    let iso = date.format("%Y-%m-%d");
    match index {
        0 => format!("today ({iso})"),
        1 => format!("tomorrow ({iso})"),
        _ => format!("on {} {iso}", weekday_name(date.weekday())),
    }
}

/// A requested forecast day, parsed before any request is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateSpec {
    /// Days after the forecast's first day (its "today").
    Offset(usize),
    /// The first such weekday from today on; `after_today` skips today itself.
    Weekday {
        day: Weekday,
        after_today: bool,
    },
    Iso(NaiveDate),
}

impl DateSpec {
    fn parse(text: &str) -> Result<Self, ToolError> {
        let lower = text.trim().to_lowercase();
        let lower = lower.strip_prefix("on ").unwrap_or(&lower).trim();
        match lower {
            "today" | "now" | "tonight" | "this evening" | "this afternoon" | "this morning"
            | "current" | "currently" => return Ok(Self::Offset(0)),
            "tomorrow" | "tmrw" | "tomorrow morning" | "tomorrow night" => {
                return Ok(Self::Offset(1))
            }
            "day after tomorrow" | "the day after tomorrow" => return Ok(Self::Offset(2)),
            _ => {}
        }
        if let Ok(date) = NaiveDate::parse_from_str(lower, "%Y-%m-%d") {
            return Ok(Self::Iso(date));
        }
        let (after_today, day_word) = match lower.strip_prefix("next ") {
            Some(rest) => (true, rest.trim()),
            None => (false, lower.strip_prefix("this ").unwrap_or(lower).trim()),
        };
        if let Some(day) = parse_weekday(day_word) {
            return Ok(Self::Weekday { day, after_today });
        }
        Err(ToolError::InvalidArguments(format!(
            "could not understand date \"{text}\": use \"today\", \"tomorrow\", a weekday name, or YYYY-MM-DD"
        )))
    }

    /// Index of the requested day among the forecast's days.
    fn resolve(self, days: &[DayForecast]) -> Result<usize, ToolError> {
        let window = || match (days.first(), days.last()) {
            (Some(first), Some(last)) => format!(
                "the forecast covers {} to {}",
                first.date.format("%Y-%m-%d"),
                last.date.format("%Y-%m-%d")
            ),
            _ => "no forecast days are available".to_string(),
        };
        let found = match self {
            Self::Offset(n) => (n < days.len()).then_some(n),
            Self::Weekday { day, after_today } => days
                .iter()
                .enumerate()
                .skip(usize::from(after_today))
                .find(|(_, d)| d.date.weekday() == day)
                .map(|(i, _)| i),
            Self::Iso(date) => days.iter().position(|d| d.date == date),
        };
        found.ok_or_else(|| {
            let asked = match self {
                Self::Offset(n) => format!("{n} days ahead"),
                Self::Weekday { day, after_today } => format!(
                    "{}{}",
                    if after_today { "next " } else { "" },
                    weekday_name(day)
                ),
                Self::Iso(date) => date.format("%Y-%m-%d").to_string(),
            };
            ToolError::Failed(format!(
                "{asked} is outside the 7-day forecast window: {}",
                window()
            ))
        })
    }
}

fn parse_weekday(word: &str) -> Option<Weekday> {
    let day = match word {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" | "tues" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// Text for a WMO weather interpretation code, as Open-Meteo documents them.
pub fn wmo_condition(code: u32) -> &'static str {
    match code {
        0 => "clear sky",
        1 => "mainly clear",
        2 => "partly cloudy",
        3 => "overcast",
        45 => "fog",
        48 => "depositing rime fog",
        51 => "light drizzle",
        53 => "moderate drizzle",
        55 => "dense drizzle",
        56 => "light freezing drizzle",
        57 => "dense freezing drizzle",
        61 => "slight rain",
        63 => "moderate rain",
        65 => "heavy rain",
        66 => "light freezing rain",
        67 => "heavy freezing rain",
        71 => "slight snowfall",
        73 => "moderate snowfall",
        75 => "heavy snowfall",
        77 => "snow grains",
        80 => "slight rain showers",
        81 => "moderate rain showers",
        82 => "violent rain showers",
        85 => "slight snow showers",
        86 => "heavy snow showers",
        95 => "thunderstorm",
        96 => "thunderstorm with slight hail",
        99 => "thunderstorm with heavy hail",
        _ => "unknown conditions",
    }
}

/// Deserialises a success body, turning a wrong shape into a clear error.
fn parse<T: serde::de::DeserializeOwned>(
    endpoint: &HttpEndpoint,
    body: Value,
) -> Result<T, ToolError> {
    serde_json::from_value(body).map_err(|e| {
        ToolError::Failed(format!(
            "{} sent a malformed response: {e}",
            endpoint.service()
        ))
    })
}

/// Open-Meteo reports bad requests as `{"error": true, "reason": "..."}`.
fn open_meteo_error(endpoint: &HttpEndpoint, error: HttpError) -> ToolError {
    if let HttpError::Status { status, body, .. } = &error {
        let reason = serde_json::from_str::<Value>(body).ok().and_then(|v| {
            v.get("reason")
                .and_then(Value::as_str)
                .map(ToString::to_string)
        });
        if let Some(reason) = reason {
            return ToolError::Failed(format!(
                "{} rejected the request (HTTP {status}): {reason}",
                endpoint.service()
            ));
        }
    }
    error.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(start: &str) -> Vec<DayForecast> {
        let first = NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap();
        (0..7)
            .map(|i| DayForecast {
                date: first + chrono::Duration::days(i),
                weather_code: Some(2),
                max_c: Some(20.0),
                min_c: Some(10.0),
                precipitation_probability: Some(5.0),
            })
            .collect()
    }

    #[test]
    fn dates_resolve_against_the_forecast_window() {
        // 2024-05-01 was a Wednesday.
        let days = week("2024-05-01");
        let at = |s: &str| DateSpec::parse(s).unwrap().resolve(&days);
        assert_eq!(at("today").unwrap(), 0);
        assert_eq!(at("Tomorrow").unwrap(), 1);
        assert_eq!(at("wednesday").unwrap(), 0);
        assert!(at("next Wednesday").is_err());
        assert_eq!(at("Friday").unwrap(), 2);
        assert_eq!(at("on tue").unwrap(), 6);
        assert_eq!(at("2024-05-04").unwrap(), 3);
        let err = at("2024-06-01").unwrap_err().to_string();
        assert!(err.contains("outside the 7-day forecast"), "{err}");
        assert!(err.contains("2024-05-01 to 2024-05-07"), "{err}");
    }

    #[test]
    fn unreadable_dates_are_invalid_arguments() {
        assert!(matches!(
            DateSpec::parse("someday"),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(matches!(
            DateSpec::parse("2024-13-40"),
            Err(ToolError::InvalidArguments(_))
        ));
    }

    #[test]
    fn wmo_codes_have_text() {
        assert_eq!(wmo_condition(0), "clear sky");
        assert_eq!(wmo_condition(2), "partly cloudy");
        assert_eq!(wmo_condition(95), "thunderstorm");
        assert_eq!(wmo_condition(42), "unknown conditions");
    }

    #[test]
    fn forecast_day_summary_reads_well() {
        let days = week("2024-05-01");
        assert_eq!(
            days[1].summary("Oslo, Norway", &day_label(1, days[1].date)),
            "Oslo, Norway tomorrow (2024-05-02): partly cloudy, 10.0 to 20.0°C, 5% chance of precipitation."
        );
        assert_eq!(day_label(3, days[3].date), "on Saturday 2024-05-04");
    }
}
