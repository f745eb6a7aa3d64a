//! The five network tools against a loopback `FixtureServer` answering with
//! recorded-style bodies in each real API's format: success, the API's own error
//! path, malformed bodies, 429-then-success retries, and unreachable or
//! unconfigured endpoints.

use serde_json::{json, Value};
use toolforge_core::{DynTool, ToolError};
use toolforge_tools::config::SearchProvider;
use toolforge_tools::fixture::{FixtureServer, Reply};
use toolforge_tools::{Dictionary, EndpointConfig, Translate, Weather, WebSearch, Wikipedia};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/", $name))
    };
}

fn config(server: &FixtureServer) -> EndpointConfig {
    EndpointConfig {
        base_url: Some(server.url().to_string()),
        backoff_ms: Some(1),
        ..Default::default()
    }
}

fn keyed(server: &FixtureServer, key: &str) -> EndpointConfig {
    EndpointConfig {
        api_key: Some(toolforge_core::ApiKey::new(key)),
        ..config(server)
    }
}

/// A loopback URL nothing listens on.
fn dead_config() -> EndpointConfig {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    EndpointConfig {
        base_url: Some(url),
        backoff_ms: Some(1),
        retries: Some(1),
        ..Default::default()
    }
}

fn message(err: &ToolError) -> String {
    err.to_string()
}

// ---------------------------------------------------------------- weather

async fn weather_server(geocoding: Vec<Reply>, forecast: Vec<Reply>) -> FixtureServer {
    FixtureServer::start(vec![
        ("GET /v1/search", geocoding),
        ("GET /v1/forecast", forecast),
    ])
    .await
}

fn weather_tool(server: &FixtureServer) -> Weather {
    Weather::new(&config(server), &config(server))
}

fn tokyo_replies() -> (Vec<Reply>, Vec<Reply>) {
    (
        vec![Reply::json(
            200,
            fixture!("open_meteo_geocoding_tokyo.json"),
        )],
        vec![Reply::json(200, fixture!("open_meteo_forecast_tokyo.json"))],
    )
}

#[tokio::test]
async fn weather_reports_current_conditions() {
    let (geo, fc) = tokyo_replies();
    let server = weather_server(geo, fc).await;
    let out = weather_tool(&server)
        .call_json(json!({"location": "Tokyo"}))
        .await
        .unwrap();
    assert_eq!(
        out["summary"],
        "Tokyo, Japan: 18.2°C, partly cloudy, wind 12 km/h."
    );
    assert_eq!(out["place"], "Tokyo");
    assert_eq!(out["country"], "Japan");
    assert_eq!(out["timezone"], "Asia/Tokyo");
    assert_eq!(out["current"]["temperature_c"], 18.2);
    assert_eq!(out["current"]["feels_like_c"], 17.4);
    assert_eq!(out["current"]["humidity_percent"], 61.0);
    assert_eq!(out["current"]["wind_kmh"], 11.9);
    assert_eq!(out["current"]["condition"], "partly cloudy");
    assert_eq!(out["daily"].as_array().unwrap().len(), 7);
    assert_eq!(out["daily"][6]["condition"], "thunderstorm");
    assert!(out["daily"][6]["precipitation_probability_percent"].is_null());
    assert!(out.get("forecast").is_none());

    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].target,
        "/v1/search?name=Tokyo&count=1&language=en&format=json"
    );
    let forecast = &seen[1].target;
    for part in [
        "latitude=35.6895",
        "longitude=139.69171",
        "current=temperature_2m%2Crelative_humidity_2m%2Capparent_temperature%2Cprecipitation%2Cweather_code%2Cwind_speed_10m",
        "daily=weather_code%2Ctemperature_2m_max%2Ctemperature_2m_min%2Cprecipitation_probability_max",
        "timezone=auto",
        "forecast_days=7",
    ] {
        assert!(forecast.contains(part), "{forecast} lacks {part}");
    }
}

#[tokio::test]
async fn weather_current_location_is_the_configured_home() {
    let (geo, fc) = tokyo_replies();
    let server = weather_server(geo, fc).await;
    let out = weather_tool(&server)
        .with_home(Some("Tokyo".into()))
        .call_json(json!({"location": "current location"}))
        .await
        .unwrap();
    assert_eq!(out["place"], "Tokyo");
    assert!(server.requests()[0].target.contains("name=Tokyo"));

    let (geo, fc) = tokyo_replies();
    let server = weather_server(geo, fc).await;
    let err = weather_tool(&server)
        .call_json(json!({"location": "here"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("home"), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn weather_picks_the_requested_day() {
    let (geo, fc) = tokyo_replies();
    let server = weather_server(geo, fc).await;
    let tool = weather_tool(&server);

    let out = tool
        .call_json(json!({"location": "Tokyo", "date": "tomorrow"}))
        .await
        .unwrap();
    assert_eq!(out["forecast"]["date"], "2024-05-02");
    assert_eq!(out["forecast"]["condition"], "slight rain");
    assert_eq!(out["forecast"]["max_c"], 18.4);
    assert_eq!(
        out["summary"],
        "Tokyo, Japan tomorrow (2024-05-02): slight rain, 14.0 to 18.4°C, 85% chance of precipitation."
    );

    let out = tool
        .call_json(json!({"location": "Tokyo", "date": "Saturday"}))
        .await
        .unwrap();
    assert_eq!(out["forecast"]["date"], "2024-05-04");
    assert_eq!(out["forecast"]["weekday"], "Saturday");

    let out = tool
        .call_json(json!({"location": "Tokyo", "date": "2024-05-07"}))
        .await
        .unwrap();
    assert_eq!(out["forecast"]["condition"], "thunderstorm");

    let err = tool
        .call_json(json!({"location": "Tokyo", "date": "2024-06-01"}))
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("outside the 7-day forecast window"),
        "{err}"
    );
}

#[tokio::test]
async fn weather_rejects_unreadable_dates_before_any_request() {
    let (geo, fc) = tokyo_replies();
    let server = weather_server(geo, fc).await;
    let err = weather_tool(&server)
        .call_json(json!({"location": "Tokyo", "date": "whenever"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments(_)), "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn weather_uses_a_location_qualifier_to_choose_among_places() {
    let server = weather_server(
        vec![Reply::json(
            200,
            fixture!("open_meteo_geocoding_paris.json"),
        )],
        vec![Reply::json(200, fixture!("open_meteo_forecast_tokyo.json"))],
    )
    .await;
    let out = weather_tool(&server)
        .call_json(json!({"location": "Paris, Texas"}))
        .await
        .unwrap();
    assert_eq!(out["region"], "Texas");
    assert_eq!(out["country"], "United States");
    let seen = server.requests();
    assert!(
        seen[0].target.contains("name=Paris&count=10"),
        "{}",
        seen[0].target
    );
    assert!(
        seen[1].target.contains("latitude=33.66094"),
        "{}",
        seen[1].target
    );
}

#[tokio::test]
async fn weather_unknown_location_is_a_clear_error() {
    let server = weather_server(
        vec![Reply::json(
            200,
            fixture!("open_meteo_geocoding_empty.json"),
        )],
        vec![Reply::json(200, fixture!("open_meteo_forecast_tokyo.json"))],
    )
    .await;
    let err = weather_tool(&server)
        .call_json(json!({"location": "Atlantis"}))
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("unknown location \"Atlantis\""),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn weather_surfaces_open_meteo_error_reasons() {
    let (geo, _) = tokyo_replies();
    let server = weather_server(
        geo,
        vec![Reply::json(400, fixture!("open_meteo_forecast_error.json"))],
    )
    .await;
    let err = weather_tool(&server)
        .call_json(json!({"location": "Tokyo"}))
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("Latitude must be in range of -90 to 90°"),
        "{err}"
    );
}

#[tokio::test]
async fn weather_malformed_bodies_are_clear_errors() {
    let (geo, _) = tokyo_replies();
    let server = weather_server(
        geo,
        vec![Reply::json(
            200,
            r#"{"latitude": 35.7, "current": {"time": "2024-05-01T14:15"}}"#,
        )],
    )
    .await;
    let err = weather_tool(&server)
        .call_json(json!({"location": "Tokyo"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Failed(_)), "{err:?}");
    assert!(message(&err).contains("malformed"), "{err}");

    let server = weather_server(
        vec![Reply::json(200, "<html>maintenance</html>")],
        vec![Reply::json(200, fixture!("open_meteo_forecast_tokyo.json"))],
    )
    .await;
    let err = weather_tool(&server)
        .call_json(json!({"location": "Tokyo"}))
        .await
        .unwrap_err();
    assert!(message(&err).contains("malformed"), "{err}");
}

#[tokio::test]
async fn weather_retries_429_then_succeeds() {
    let server = weather_server(
        vec![
            Reply::json(
                429,
                r#"{"error":true,"reason":"Too many concurrent requests"}"#,
            ),
            Reply::json(200, fixture!("open_meteo_geocoding_tokyo.json")),
        ],
        vec![
            Reply::status(503, "busy"),
            Reply::json(200, fixture!("open_meteo_forecast_tokyo.json")),
        ],
    )
    .await;
    let out = weather_tool(&server)
        .call_json(json!({"location": "Tokyo"}))
        .await
        .unwrap();
    assert_eq!(out["place"], "Tokyo");
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn weather_unreachable_is_a_network_error() {
    let dead = dead_config();
    let err = Weather::new(&dead, &dead)
        .call_json(json!({"location": "Tokyo"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Network(_)), "{err:?}");
    assert!(message(&err).contains("unreachable"), "{err}");
}

// ---------------------------------------------------------------- wikipedia

#[tokio::test]
async fn wikipedia_returns_the_page_summary() {
    let server = FixtureServer::start(vec![(
        "GET /api/rest_v1/page/summary/Marie_Curie",
        vec![Reply::json(
            200,
            fixture!("wikipedia_summary_marie_curie.json"),
        )],
    )])
    .await;
    let out = Wikipedia::new(&config(&server))
        .call_json(json!({"topic": "Marie Curie"}))
        .await
        .unwrap();
    assert_eq!(out["title"], "Marie Curie");
    assert_eq!(
        out["description"],
        "Polish-French physicist and chemist (1867–1934)"
    );
    assert_eq!(out["url"], "https://en.wikipedia.org/wiki/Marie_Curie");
    assert!(out["extract"]
        .as_str()
        .unwrap()
        .ends_with("co-winner of her first Nobel Prize."));
    let summary = out["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Maria Salomea Skłodowska-Curie"),
        "{summary}"
    );
    assert!(summary.ends_with("in two scientific fields."), "{summary}");
    assert_eq!(out["disambiguation"], false);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn wikipedia_falls_back_to_search_on_404() {
    let server = FixtureServer::start(vec![
        (
            "GET /api/rest_v1/page/summary/Marie_Curie",
            vec![Reply::json(
                200,
                fixture!("wikipedia_summary_marie_curie.json"),
            )],
        ),
        (
            "GET /api/rest_v1/page/summary/",
            vec![Reply::json(404, fixture!("wikipedia_not_found.json"))],
        ),
        (
            "GET /w/api.php",
            vec![Reply::json(200, fixture!("wikipedia_search_curie.json"))],
        ),
    ])
    .await;
    let out = Wikipedia::new(&config(&server))
        .call_json(json!({"topic": "curie radioactivity lady"}))
        .await
        .unwrap();
    assert_eq!(out["title"], "Marie Curie");
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].target,
        "/api/rest_v1/page/summary/Curie_radioactivity_lady"
    );
    assert!(seen[1].target.starts_with("/w/api.php?action=query&list=search&srsearch=curie+radioactivity+lady&format=json&srlimit="));
}

#[tokio::test]
async fn wikipedia_resolves_disambiguation_pages_through_search() {
    let server = FixtureServer::start(vec![
        (
            "GET /api/rest_v1/page/summary/Mercury_%28planet%29",
            vec![Reply::json(
                200,
                fixture!("wikipedia_summary_mercury_planet.json"),
            )],
        ),
        (
            "GET /api/rest_v1/page/summary/Mercury",
            vec![Reply::json(
                200,
                fixture!("wikipedia_summary_mercury_disambiguation.json"),
            )],
        ),
        (
            "GET /w/api.php",
            vec![Reply::json(200, fixture!("wikipedia_search_mercury.json"))],
        ),
    ])
    .await;
    let out = Wikipedia::new(&config(&server))
        .call_json(json!({"topic": "Mercury"}))
        .await
        .unwrap();
    assert_eq!(out["title"], "Mercury (planet)");
    assert_eq!(out["url"], "https://en.wikipedia.org/wiki/Mercury_(planet)");
    assert_eq!(
        out["summary"],
        "Mercury is the first planet from the Sun and the smallest in the Solar System. It is a rocky planet with a trace atmosphere and a surface gravity slightly higher than that of Mars."
    );
}

#[tokio::test]
async fn wikipedia_nothing_found_is_a_clear_error() {
    let server = FixtureServer::start(vec![
        (
            "GET /api/rest_v1/page/summary/",
            vec![Reply::json(404, fixture!("wikipedia_not_found.json"))],
        ),
        (
            "GET /w/api.php",
            vec![Reply::json(200, fixture!("wikipedia_search_empty.json"))],
        ),
    ])
    .await;
    let err = Wikipedia::new(&config(&server))
        .call_json(json!({"topic": "Qwzxv Plorg"}))
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Wikipedia has no article about \"Qwzxv Plorg\""
    );
}

#[tokio::test]
async fn wikipedia_malformed_bodies_are_clear_errors() {
    let server = FixtureServer::start(vec![(
        "GET /api/rest_v1/page/summary/",
        vec![Reply::json(200, r#"{"type": "standard", "pageid": 20408}"#)],
    )])
    .await;
    let err = Wikipedia::new(&config(&server))
        .call_json(json!({"topic": "Marie Curie"}))
        .await
        .unwrap_err();
    assert!(message(&err).contains("malformed page summary"), "{err}");

    let server = FixtureServer::start(vec![
        (
            "GET /api/rest_v1/page/summary/",
            vec![Reply::json(404, fixture!("wikipedia_not_found.json"))],
        ),
        (
            "GET /w/api.php",
            vec![Reply::json(200, r#"{"batchcomplete": ""}"#)],
        ),
    ])
    .await;
    let err = Wikipedia::new(&config(&server))
        .call_json(json!({"topic": "Marie Curie"}))
        .await
        .unwrap_err();
    assert!(message(&err).contains("malformed search response"), "{err}");
}

#[tokio::test]
async fn wikipedia_retries_429_then_succeeds() {
    let server = FixtureServer::start(vec![(
        "GET /api/rest_v1/page/summary/Marie_Curie",
        vec![
            Reply::status(429, "Too Many Requests").with_header("retry-after", "0"),
            Reply::json(200, fixture!("wikipedia_summary_marie_curie.json")),
        ],
    )])
    .await;
    let out = Wikipedia::new(&config(&server))
        .call_json(json!({"topic": "Marie Curie"}))
        .await
        .unwrap();
    assert_eq!(out["title"], "Marie Curie");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn wikipedia_unreachable_is_a_network_error() {
    let err = Wikipedia::new(&dead_config())
        .call_json(json!({"topic": "Marie Curie"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Network(_)), "{err:?}");
}

// ---------------------------------------------------------------- web_search

#[tokio::test]
async fn searxng_results_are_parsed_and_capped() {
    let server = FixtureServer::start(vec![(
        "GET /search",
        vec![Reply::json(200, fixture!("searxng_rust.json"))],
    )])
    .await;
    let out = WebSearch::new(SearchProvider::Searxng, &config(&server))
        .call_json(json!({"query": "rust programming language", "max_results": 2}))
        .await
        .unwrap();
    assert_eq!(out["provider"], "searxng");
    assert_eq!(out["query"], "rust programming language");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["title"], "Rust Programming Language");
    assert_eq!(results[0]["url"], "https://www.rust-lang.org/");
    assert_eq!(
        results[0]["snippet"],
        "A language empowering everyone to build reliable and efficient software."
    );
    assert_eq!(
        out["summary"],
        "Top result for \"rust programming language\": Rust Programming Language - A language empowering everyone to build reliable and efficient software."
    );
    assert_eq!(
        server.requests()[0].target,
        "/search?q=rust+programming+language&format=json"
    );
}

#[tokio::test]
async fn searxng_default_max_results_and_clamping() {
    let server = FixtureServer::start(vec![(
        "GET /search",
        vec![Reply::json(200, fixture!("searxng_rust.json"))],
    )])
    .await;
    let tool = WebSearch::new(SearchProvider::Searxng, &config(&server));
    let out = tool.call_json(json!({"query": "rust"})).await.unwrap();
    assert_eq!(out["results"].as_array().unwrap().len(), 3);
    let out = tool
        .call_json(json!({"query": "rust", "max_results": 0}))
        .await
        .unwrap();
    assert_eq!(out["results"].as_array().unwrap().len(), 1);
    let err = tool
        .call_json(json!({"query": "rust", "max_results": "many"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments(_)), "{err:?}");
}

#[tokio::test]
async fn searxng_without_json_format_is_explained() {
    let server =
        FixtureServer::start(vec![("GET /search", vec![Reply::status(403, "Forbidden")])]).await;
    let err = WebSearch::new(SearchProvider::Searxng, &config(&server))
        .call_json(json!({"query": "rust"}))
        .await
        .unwrap_err();
    assert!(message(&err).contains("search.formats"), "{err}");
}

#[tokio::test]
async fn searxng_malformed_body_is_a_clear_error() {
    let server = FixtureServer::start(vec![(
        "GET /search",
        vec![Reply::json(
            200,
            r#"{"query": "rust", "number_of_results": 0}"#,
        )],
    )])
    .await;
    let err = WebSearch::new(SearchProvider::Searxng, &config(&server))
        .call_json(json!({"query": "rust"}))
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("SearXNG sent a malformed response"),
        "{err}"
    );
}

#[tokio::test]
async fn searxng_retries_429_then_succeeds() {
    let server = FixtureServer::start(vec![(
        "GET /search",
        vec![
            Reply::status(429, "Too Many Requests"),
            Reply::json(200, fixture!("searxng_rust.json")),
        ],
    )])
    .await;
    let out = WebSearch::new(SearchProvider::Searxng, &config(&server))
        .call_json(json!({"query": "rust"}))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["title"], "Rust Programming Language");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn searxng_unreachable_says_how_to_configure() {
    let err = WebSearch::new(SearchProvider::Searxng, &dead_config())
        .call_json(json!({"query": "rust"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Network(_)), "{err:?}");
    assert!(message(&err).contains("tools.web_search.base_url"), "{err}");
}

#[tokio::test]
async fn brave_results_are_parsed_with_the_key_header() {
    let server = FixtureServer::start(vec![(
        "GET /res/v1/web/search",
        vec![Reply::json(200, fixture!("brave_web_search_rust.json"))],
    )])
    .await;
    let out = WebSearch::new(SearchProvider::Brave, &keyed(&server, "brave-test-key"))
        .call_json(json!({"query": "rust programming language", "max_results": 3}))
        .await
        .unwrap();
    assert_eq!(out["provider"], "brave");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[1]["snippet"],
        "Rust is a general-purpose programming language emphasizing performance, type safety, and concurrency."
    );
    assert_eq!(
        results[1]["url"],
        "https://en.wikipedia.org/wiki/Rust_(programming_language)"
    );
    let seen = &server.requests()[0];
    assert_eq!(
        seen.target,
        "/res/v1/web/search?q=rust+programming+language&count=3"
    );
    assert_eq!(
        seen.headers.get("x-subscription-token").map(String::as_str),
        Some("brave-test-key")
    );
}

#[tokio::test]
async fn brave_without_key_is_not_configured() {
    let server = FixtureServer::start(vec![(
        "GET /res/v1/web/search",
        vec![Reply::json(200, fixture!("brave_web_search_rust.json"))],
    )])
    .await;
    let err = WebSearch::new(SearchProvider::Brave, &config(&server))
        .call_json(json!({"query": "rust"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotConfigured(_)), "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn brave_error_bodies_are_surfaced() {
    let server = FixtureServer::start(vec![(
        "GET /res/v1/web/search",
        vec![Reply::json(422, fixture!("brave_error_invalid_token.json"))],
    )])
    .await;
    let err = WebSearch::new(SearchProvider::Brave, &keyed(&server, "wrong"))
        .call_json(json!({"query": "rust"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotConfigured(_)), "{err:?}");
    assert!(
        message(&err).contains("The provided subscription token is invalid."),
        "{err}"
    );
}

#[tokio::test]
async fn brave_malformed_body_and_retry() {
    let server = FixtureServer::start(vec![(
        "GET /res/v1/web/search",
        vec![Reply::json(200, r#"[1, 2, 3]"#)],
    )])
    .await;
    let err = WebSearch::new(SearchProvider::Brave, &keyed(&server, "k"))
        .call_json(json!({"query": "rust"}))
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("Brave Search sent a malformed response"),
        "{err}"
    );

    let server = FixtureServer::start(vec![(
        "GET /res/v1/web/search",
        vec![
            Reply::json(429, r#"{"type":"ErrorResponse","error":{"status":429,"code":"RATE_LIMITED","detail":"Request rate limit exceeded for plan."}}"#),
            Reply::json(200, fixture!("brave_web_search_rust.json")),
        ],
    )])
    .await;
    let out = WebSearch::new(SearchProvider::Brave, &keyed(&server, "k"))
        .call_json(json!({"query": "rust"}))
        .await
        .unwrap();
    assert_eq!(out["results"].as_array().unwrap().len(), 2);
    assert_eq!(server.requests().len(), 2);
}

// ---------------------------------------------------------------- translate

fn sent_body(server: &FixtureServer) -> Value {
    serde_json::from_str(&server.requests()[0].body).unwrap()
}

#[tokio::test]
async fn translate_detects_the_source_language() {
    let server = FixtureServer::start(vec![(
        "POST /translate",
        vec![Reply::json(200, fixture!("libretranslate_hello_es.json"))],
    )])
    .await;
    let out = Translate::new(&config(&server))
        .call_json(json!({"text": "Hello, how are you?", "target_language": "Español"}))
        .await
        .unwrap();
    assert_eq!(out["translation"], "Hola, ¿cómo estás?");
    assert_eq!(out["target"], json!({"code": "es", "name": "Spanish"}));
    assert_eq!(out["source"], json!({"code": "en", "name": "English"}));
    assert_eq!(out["detected_confidence"], 90.0);
    assert_eq!(
        out["summary"],
        "\"Hello, how are you?\" in Spanish: \"Hola, ¿cómo estás?\" (from English)."
    );
    assert_eq!(
        sent_body(&server),
        json!({"q": "Hello, how are you?", "source": "auto", "target": "es", "format": "text"})
    );
}

#[tokio::test]
async fn translate_sends_the_source_language_and_key() {
    let server = FixtureServer::start(vec![(
        "POST /translate",
        vec![Reply::json(200, fixture!("libretranslate_gato_en.json"))],
    )])
    .await;
    let out = Translate::new(&keyed(&server, "lt-key"))
        .call_json(
            json!({"text": "gato", "target_language": "English", "source_language": "Spanish"}),
        )
        .await
        .unwrap();
    assert_eq!(out["translation"], "cat");
    assert_eq!(out["source"]["code"], "es");
    assert_eq!(
        out["summary"],
        "\"gato\" in English: \"cat\" (from Spanish)."
    );
    assert_eq!(
        sent_body(&server),
        json!({"q": "gato", "source": "es", "target": "en", "format": "text", "api_key": "lt-key"})
    );
}

#[tokio::test]
async fn translate_rejects_unknown_languages_before_any_request() {
    let server = FixtureServer::start(vec![(
        "POST /translate",
        vec![Reply::json(200, fixture!("libretranslate_gato_en.json"))],
    )])
    .await;
    let tool = Translate::new(&config(&server));
    let err = tool
        .call_json(json!({"text": "hello", "target_language": "Klingon"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments(_)), "{err:?}");
    assert!(
        message(&err).contains("unknown language \"Klingon\""),
        "{err}"
    );
    let err = tool
        .call_json(
            json!({"text": "hello", "target_language": "French", "source_language": "Elvish"}),
        )
        .await
        .unwrap_err();
    assert!(message(&err).contains("source_language"), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn translate_surfaces_api_error_messages() {
    let server = FixtureServer::start(vec![(
        "POST /translate",
        vec![Reply::json(
            400,
            fixture!("libretranslate_error_unsupported.json"),
        )],
    )])
    .await;
    let err = Translate::new(&keyed(&server, "k"))
        .call_json(json!({"text": "hello", "target_language": "Latin"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Failed(_)), "{err:?}");
    assert!(message(&err).contains("xx is not supported"), "{err}");

    let server = FixtureServer::start(vec![(
        "POST /translate",
        vec![Reply::json(
            400,
            fixture!("libretranslate_error_api_key.json"),
        )],
    )])
    .await;
    let err = Translate::new(&config(&server))
        .call_json(json!({"text": "hello", "target_language": "French"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotConfigured(_)), "{err:?}");
    assert!(message(&err).contains("portal.libretranslate.com"), "{err}");
    assert!(
        message(&err).contains("tools.translate.api_key_env"),
        "{err}"
    );
}

#[tokio::test]
async fn translate_malformed_body_is_a_clear_error() {
    let server = FixtureServer::start(vec![(
        "POST /translate",
        vec![Reply::json(200, r#"{"alternatives": []}"#)],
    )])
    .await;
    let err = Translate::new(&config(&server))
        .call_json(json!({"text": "hello", "target_language": "fr"}))
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("LibreTranslate sent a malformed response"),
        "{err}"
    );
}

#[tokio::test]
async fn translate_retries_429_then_succeeds() {
    let server = FixtureServer::start(vec![(
        "POST /translate",
        vec![
            Reply::json(429, r#"{"error": "Too many request limits violations"}"#),
            Reply::json(200, fixture!("libretranslate_hello_es.json")),
        ],
    )])
    .await;
    let out = Translate::new(&config(&server))
        .call_json(json!({"text": "Hello, how are you?", "target_language": "es"}))
        .await
        .unwrap();
    assert_eq!(out["translation"], "Hola, ¿cómo estás?");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn translate_unreachable_is_a_network_error() {
    let err = Translate::new(&dead_config())
        .call_json(json!({"text": "hello", "target_language": "German"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Network(_)), "{err:?}");
}

// ---------------------------------------------------------------- dictionary

#[tokio::test]
async fn dictionary_returns_definitions_and_related_words() {
    let server = FixtureServer::start(vec![(
        "GET /api/v2/entries/en/ephemeral",
        vec![Reply::json(200, fixture!("dictionary_ephemeral.json"))],
    )])
    .await;
    let out = Dictionary::new(&config(&server))
        .call_json(json!({"word": "Ephemeral"}))
        .await
        .unwrap();
    assert_eq!(out["word"], "ephemeral");
    assert_eq!(out["phonetic"], "/ɪˈfɛm(ə)ɹəl/");
    assert_eq!(
        out["audio"],
        "https://api.dictionaryapi.dev/media/pronunciations/en/ephemeral-us.mp3"
    );
    assert_eq!(
        out["summary"],
        "ephemeral (adjective): lasting for a very short time."
    );
    let meanings = out["meanings"].as_array().unwrap();
    assert_eq!(meanings.len(), 2);
    assert_eq!(meanings[0]["part_of_speech"], "adjective");
    assert_eq!(meanings[0]["definitions"].as_array().unwrap().len(), 3);
    assert_eq!(
        meanings[0]["definitions"][0]["example"],
        "ephemeral pleasures"
    );
    assert_eq!(meanings[1]["part_of_speech"], "noun");
    assert_eq!(
        out["synonyms"],
        json!(["fleeting", "transient", "short-lived", "evanescent"])
    );
    assert_eq!(
        out["antonyms"],
        json!(["perennial", "permanent", "everlasting"])
    );
}

#[tokio::test]
async fn dictionary_unknown_word_is_a_clear_error() {
    let server = FixtureServer::start(vec![(
        "GET /api/v2/entries/en/",
        vec![Reply::json(404, fixture!("dictionary_not_found.json"))],
    )])
    .await;
    let err = Dictionary::new(&config(&server))
        .call_json(json!({"word": "flibbertigibbetz"}))
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "no definition found for \"flibbertigibbetz\""
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn dictionary_encodes_phrases_in_the_path() {
    let server = FixtureServer::start(vec![(
        "GET /api/v2/entries/en/",
        vec![Reply::json(200, fixture!("dictionary_ephemeral.json"))],
    )])
    .await;
    Dictionary::new(&config(&server))
        .call_json(json!({"word": "break down"}))
        .await
        .unwrap();
    assert_eq!(
        server.requests()[0].target,
        "/api/v2/entries/en/break%20down"
    );
}

#[tokio::test]
async fn dictionary_malformed_bodies_are_clear_errors() {
    let server = FixtureServer::start(vec![(
        "GET /api/v2/entries/en/",
        vec![Reply::json(
            200,
            r#"{"word": "ephemeral", "meanings": "lots"}"#,
        )],
    )])
    .await;
    let err = Dictionary::new(&config(&server))
        .call_json(json!({"word": "ephemeral"}))
        .await
        .unwrap_err();
    assert!(message(&err).contains("malformed response"), "{err}");

    let server = FixtureServer::start(vec![(
        "GET /api/v2/entries/en/",
        vec![Reply::json(200, "[]")],
    )])
    .await;
    let err = Dictionary::new(&config(&server))
        .call_json(json!({"word": "ephemeral"}))
        .await
        .unwrap_err();
    assert_eq!(message(&err), "no definition found for \"ephemeral\"");
}

#[tokio::test]
async fn dictionary_retries_429_then_succeeds() {
    let server = FixtureServer::start(vec![(
        "GET /api/v2/entries/en/ephemeral",
        vec![
            Reply::status(429, "Too Many Requests"),
            Reply::json(200, fixture!("dictionary_ephemeral.json")),
        ],
    )])
    .await;
    let out = Dictionary::new(&config(&server))
        .call_json(json!({"word": "ephemeral"}))
        .await
        .unwrap();
    assert_eq!(out["word"], "ephemeral");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn dictionary_unreachable_is_a_network_error() {
    let err = Dictionary::new(&dead_config())
        .call_json(json!({"word": "ephemeral"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Network(_)), "{err:?}");
}

// ---------------------------------------------------------------- schemas

#[test]
fn argument_names_match_the_contract() {
    let cfg = EndpointConfig::default();
    let specs = [
        Weather::new(&cfg, &cfg).spec(),
        Wikipedia::new(&cfg).spec(),
        WebSearch::new(SearchProvider::Searxng, &cfg).spec(),
        Translate::new(&cfg).spec(),
        Dictionary::new(&cfg).spec(),
    ];
    let expected: [(&str, &[&str], &[&str]); 5] = [
        ("weather", &["location"], &["date"]),
        ("wikipedia", &["topic"], &[]),
        ("web_search", &["query"], &["max_results"]),
        (
            "translate",
            &["text", "target_language"],
            &["source_language"],
        ),
        ("dictionary", &["word"], &[]),
    ];
    for (spec, (name, required, optional)) in specs.iter().zip(expected) {
        assert_eq!(spec.name, name);
        let props = spec.parameters["properties"].as_object().unwrap();
        let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut want: Vec<&str> = required.iter().chain(optional).copied().collect();
        want.sort_unstable();
        assert_eq!(names, want, "{name}");
        assert_eq!(spec.parameters["required"], json!(required), "{name}");
        for prop in props.values() {
            assert!(prop["description"].is_string(), "{name}: {prop}");
        }
    }
}

// ---------------------------------------------------------------- the shared client

#[tokio::test]
async fn bodies_beyond_the_limit_are_refused_not_buffered() {
    use toolforge_tools::http::{HttpEndpoint, HttpError, MAX_BODY_BYTES};
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(MAX_BODY_BYTES + 1));
    let server = FixtureServer::start(vec![
        ("GET /huge", vec![Reply::json(200, &huge)]),
        ("GET /small", vec![Reply::json(200, r#"{"ok": true}"#)]),
    ])
    .await;
    let endpoint = HttpEndpoint::new("svc", &config(&server), "http://127.0.0.1:9");
    let err = endpoint.get_json("/huge", &[], &[]).await.unwrap_err();
    assert!(matches!(err, HttpError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("larger than"), "{err}");
    let ok = endpoint.get_json("/small", &[], &[]).await.unwrap();
    assert_eq!(ok["ok"], true);
}

#[tokio::test]
async fn an_upstream_echoing_the_key_never_shows_it_in_errors() {
    let key = "sk-test-0123456789";
    let server = FixtureServer::start(vec![(
        "GET /res/v1/web/search",
        vec![Reply::json(
            401,
            &format!(r#"{{"error": "invalid subscription token {key}"}}"#),
        )],
    )])
    .await;
    let tool = WebSearch::new(SearchProvider::Brave, &keyed(&server, key));
    let err = tool.call_json(json!({"query": "rust"})).await.unwrap_err();
    let text = message(&err);
    assert!(!text.contains(key), "{text}");
    assert!(text.contains("***"), "{text}");
    let debug = format!("{:?}", keyed(&server, key));
    assert!(!debug.contains(key), "{debug}");
}
