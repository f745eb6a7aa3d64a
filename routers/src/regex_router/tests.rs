//! Unit tests of the regex router: precedence traps, phrasings per tool, argument
//! values, multi-tool splits, abstention, chit-chat, custom rules and robustness.

use std::sync::OnceLock;

use serde_json::{json, Value};
use toolforge_core::{RouteContext, RouteDecision, Router, ToolSpec};

use super::*;

fn spec(name: &str, required: &[&str], props: Value) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: format!("test spec of {name}"),
        parameters: json!({
            "type": "object",
            "required": required,
            "properties": props,
            "additionalProperties": false,
        }),
    }
}

/// Minimal specs of the nine built-in tools, with the contract's argument names and types.
fn specs() -> Vec<ToolSpec> {
    let s = json!({"type": "string"});
    let opt = json!({"type": ["string", "null"]});
    vec![
        spec(
            "web_search",
            &["query"],
            json!({"query": s, "max_results": {"type": ["integer", "null"], "minimum": 1}}),
        ),
        spec("calculator", &["expression"], json!({"expression": s})),
        spec(
            "weather",
            &["location"],
            json!({"location": s, "date": opt}),
        ),
        spec("wikipedia", &["topic"], json!({"topic": s})),
        spec(
            "translate",
            &["text", "target_language"],
            json!({"text": s, "target_language": s, "source_language": opt}),
        ),
        spec("dictionary", &["word"], json!({"word": s})),
        spec("datetime", &[], json!({"location": opt, "timezone": opt})),
        spec(
            "unit_converter",
            &["value", "from_unit", "to_unit"],
            json!({"value": {"type": "number"}, "from_unit": s, "to_unit": s}),
        ),
        spec("autonomous_task", &["goal"], json!({"goal": s})),
    ]
}

fn context() -> &'static RouteContext {
    static CONTEXT: OnceLock<RouteContext> = OnceLock::new();
    CONTEXT.get_or_init(|| RouteContext::new(specs()))
}

fn router() -> RegexRouter {
    RegexRouter::try_builtin().unwrap()
}

fn route(query: &str) -> Option<RouteDecision> {
    router().route_sync(query, context())
}

fn tools_of(query: &str) -> Vec<String> {
    route(query)
        .map(|d| d.calls.into_iter().map(|c| c.tool).collect())
        .unwrap_or_else(|| vec!["<abstain>".to_string()])
}
/// Asserts the exact calls (tools and arguments, in order) for a query.
#[track_caller]
fn expect(query: &str, expected: &[(&str, Value)]) {
    let decision = route(query).unwrap_or_else(|| panic!("{query:?}: abstained"));
    let got: Vec<(String, Value)> = decision
        .calls
        .iter()
        .map(|c| (c.tool.clone(), Value::Object(c.arguments.clone())))
        .collect();
    let want: Vec<(String, Value)> = expected
        .iter()
        .map(|(t, a)| (t.to_string(), a.clone()))
        .collect();
    assert_eq!(got, want, "query {query:?}");
    let confidence = decision.confidence.unwrap();
    assert!((0.0..=1.0).contains(&confidence), "{query:?}: {confidence}");
    assert_eq!(decision.router, "regex");
}

/// Asserts the tool sequence only.
#[track_caller]
fn expect_tools(query: &str, tools: &[&str]) {
    assert_eq!(tools_of(query), tools, "query {query:?}");
}

#[track_caller]
fn expect_direct(query: &str) {
    let decision = route(query).unwrap_or_else(|| panic!("{query:?}: abstained"));
    assert!(decision.calls.is_empty(), "{query:?}: {:?}", decision.calls);
    assert!(decision.confidence.unwrap() > 0.5, "{query:?}");
}

#[track_caller]
fn expect_abstain(query: &str) {
    assert_eq!(route(query), None, "query {query:?}");
}

#[test]
fn precedence_traps() {
    expect(
        "what's 15% of 2850",
        &[("calculator", json!({"expression": "15% of 2850"}))],
    );
    expect(
        "say hello in Japanese",
        &[(
            "translate",
            json!({"text": "hello", "target_language": "Japanese"}),
        )],
    );
    expect(
        "compare React vs Vue for 2026",
        &[(
            "autonomous_task",
            json!({"goal": "compare React vs Vue for 2026"}),
        )],
    );
    expect(
        "what time is it in Nairobi",
        &[("datetime", json!({"location": "Nairobi"}))],
    );
    expect(
        "how many cups in a gallon",
        &[(
            "unit_converter",
            json!({"value": 1, "from_unit": "gallon", "to_unit": "cups"}),
        )],
    );
    expect(
        "who is the president of France",
        &[("web_search", json!({"query": "president of France"}))],
    );
    expect(
        "who was Napoleon",
        &[("wikipedia", json!({"topic": "Napoleon"}))],
    );
    expect(
        "define ephemeral",
        &[("dictionary", json!({"word": "ephemeral"}))],
    );
    expect(
        "what does Ubiquitous mean?",
        &[("dictionary", json!({"word": "ubiquitous"}))],
    );
    expect(
        "price of bitcoin",
        &[("web_search", json!({"query": "price of bitcoin"}))],
    );
    expect(
        "latest news",
        &[("web_search", json!({"query": "latest news"}))],
    );
    expect(
        "score of the game",
        &[("web_search", json!({"query": "score of the game"}))],
    );
    expect_direct("hello!");
    expect_direct("write me a poem");
    expect_direct("tell me a joke");
}

#[test]
fn calculator_phrasings() {
    expect(
        "hey what's 15% of 2850?",
        &[("calculator", json!({"expression": "15% of 2850"}))],
    );
    expect(
        "whats 345 * 12",
        &[("calculator", json!({"expression": "345 * 12"}))],
    );
    expect(
        "calcualte 5*5",
        &[("calculator", json!({"expression": "5*5"}))],
    );
    expect(
        "sqrt of 44567",
        &[("calculator", json!({"expression": "sqrt of 44567"}))],
    );
    expect(
        "2 to the power of 20",
        &[("calculator", json!({"expression": "2 to the power of 20"}))],
    );
    expect(
        "what is the square root of 144",
        &[("calculator", json!({"expression": "square root of 144"}))],
    );
    expect(
        "what's 10!",
        &[("calculator", json!({"expression": "10!"}))],
    );
    expect(
        "what is 1234 divided by 56",
        &[("calculator", json!({"expression": "1234 divided by 56"}))],
    );
    expect(
        "(3+4)*2",
        &[("calculator", json!({"expression": "(3+4)*2"}))],
    );
    expect_tools("solve 3x + 5 = 20", &["calculator"]);
    expect_tools("how much is 18% tip on 64 dollars", &["calculator"]);
}

#[test]
fn unit_converter_phrasings_and_numbers() {
    let conv = |v: Value, from: &str, to: &str| {
        (
            "unit_converter",
            json!({"value": v, "from_unit": from, "to_unit": to}),
        )
    };
    expect(
        "convert 26.2 miles to km",
        &[conv(json!(26.2), "miles", "km")],
    );
    expect("25°C in Fahrenheit", &[conv(json!(25), "°c", "fahrenheit")]);
    expect("whats 72 F in celsius", &[conv(json!(72), "f", "celsius")]);
    expect(
        "1,000 yards in miles",
        &[conv(json!(1000), "yards", "miles")],
    );
    expect(
        "how many ml in half a cup",
        &[conv(json!(0.5), "cup", "ml")],
    );
    expect(
        "convert a gallon to liters",
        &[conv(json!(1), "gallon", "liters")],
    );
    expect(
        "how many feet are in 3 meters",
        &[conv(json!(3), "meters", "feet")],
    );
    expect("$100 in euros", &[conv(json!(100), "usd", "euros")]);
    expect(
        "how many euros is 50 dollars",
        &[conv(json!(50), "dollars", "euros")],
    );
    expect("3/4 cup to ml", &[conv(json!(0.75), "cup", "ml")]);
    expect_tools("how many hours in a week", &["unit_converter"]);
}

#[test]
fn weather_phrasings() {
    expect(
        "is it raining in paris",
        &[("weather", json!({"location": "Paris"}))],
    );
    expect(
        "weather in Oslo tomorrow",
        &[("weather", json!({"location": "Oslo", "date": "tomorrow"}))],
    );
    expect(
        "whats the wether like in new york city today",
        &[(
            "weather",
            json!({"location": "New York City", "date": "today"}),
        )],
    );
    expect(
        "london weather",
        &[("weather", json!({"location": "London"}))],
    );
    expect(
        "will it snow in denver on Friday?",
        &[("weather", json!({"location": "Denver", "date": "friday"}))],
    );
    expect(
        "do i need an umbrella in Seattle",
        &[("weather", json!({"location": "Seattle"}))],
    );
    expect(
        "temperature in rio de janeiro right now",
        &[("weather", json!({"location": "Rio de Janeiro"}))],
    );
    expect(
        "weather in Bosnia and Herzegovina",
        &[("weather", json!({"location": "Bosnia and Herzegovina"}))],
    );
    // No place: the required location cannot be built, so the router abstains.
    expect_abstain("what's the weather like");
}

#[test]
fn datetime_phrasings() {
    expect(
        "what time is it in nairobi",
        &[("datetime", json!({"location": "Nairobi"}))],
    );
    expect(
        "current time in tokyo",
        &[("datetime", json!({"location": "Tokyo"}))],
    );
    expect("tokyo time", &[("datetime", json!({"location": "Tokyo"}))]);
    expect("what time is it", &[("datetime", json!({}))]);
    expect("how many days until christmas", &[("datetime", json!({}))]);
    expect("whats the date today", &[("datetime", json!({}))]);
    expect(
        "what time is it in pst",
        &[("datetime", json!({"timezone": "PST"}))],
    );
    expect(
        "time in UTC+3",
        &[("datetime", json!({"timezone": "UTC+3"}))],
    );
    expect(
        "what time is it in Europe/Berlin",
        &[("datetime", json!({"timezone": "Europe/Berlin"}))],
    );
    // "what time does X close" is about opening hours, not the clock.
    expect_tools("what time does walmart close", &["web_search"]);
}

#[test]
fn translate_phrasings() {
    let tr = |text: &str, target: &str| {
        (
            "translate",
            json!({"text": text, "target_language": target}),
        )
    };
    expect(
        "how do you say thank you in french",
        &[tr("thank you", "French")],
    );
    expect(
        "translate good morning to spanish",
        &[tr("good morning", "Spanish")],
    );
    expect(
        "translate to german: where is the train station",
        &[tr("where is the train station", "German")],
    );
    expect("how do u say goodbye in korean", &[tr("goodbye", "Korean")]);
    expect(
        "tranlate i love you into portugese",
        &[tr("i love you", "Portuguese")],
    );
    expect("spanish word for dog", &[tr("dog", "Spanish")]);
    expect("what does 'gato' mean in English", &[tr("gato", "English")]);
    expect(
        "translate 'gato' from Spanish to English",
        &[(
            "translate",
            json!({"text": "gato", "target_language": "English", "source_language": "Spanish"}),
        )],
    );
    expect(
        "translate \u{201C}salt and pepper\u{201D} into French and Spanish",
        &[
            tr("salt and pepper", "French"),
            tr("salt and pepper", "Spanish"),
        ],
    );
}

#[test]
fn dictionary_phrasings() {
    let d = |w: &str| ("dictionary", json!({"word": w}));
    expect("Define Ephemeral.", &[d("ephemeral")]);
    expect("defne loquacious", &[d("loquacious")]);
    expect("meaning of serendipity", &[d("serendipity")]);
    expect("synonyms for happy", &[d("happy")]);
    expect("whats another word for big", &[d("big")]);
    expect("how do you spell necessary", &[d("necessary")]);
    expect("is irregardless a real word", &[d("irregardless")]);
    expect("ephemeral meaning", &[d("ephemeral")]);
    expect("define carpe diem", &[d("carpe diem")]);
}

#[test]
fn wikipedia_phrasings() {
    let w = |t: &str| ("wikipedia", json!({"topic": t}));
    expect("who was marie curie", &[w("Marie Curie")]);
    expect(
        "tell me about the french revolution",
        &[w("French Revolution")],
    );
    expect("what is photosynthesis", &[w("Photosynthesis")]);
    expect("when was the eiffel tower built", &[w("Eiffel Tower")]);
    expect("who invented the telephone", &[w("Telephone")]);
    expect(
        "look up albert einstein on wikipedia",
        &[w("Albert Einstein")],
    );
    expect("history of the roman empire", &[w("Roman Empire")]);
    expect("how tall is mount everest", &[w("Mount Everest")]);
}

#[test]
fn web_search_phrasings() {
    let s = |q: &str| ("web_search", json!({"query": q}));
    expect(
        "what's the latest price of bitcoin",
        &[s("latest price of bitcoin")],
    );
    expect("who won the super bowl", &[s("who won the super bowl")]);
    expect(
        "search for cheap flights to rome",
        &[s("cheap flights to rome")],
    );
    expect("google rust async tutorials", &[s("rust async tutorials")]);
    expect("tesla stock price", &[s("tesla stock price")]);
    expect(
        "best pizza places in chicago",
        &[s("best pizza places in chicago")],
    );
    expect_tools("whats the score of the lakers game", &["web_search"]);
    expect_tools("when is the next iphone coming out", &["web_search"]);
}

#[test]
fn autonomous_task_phrasings() {
    let a = |g: &str| ("autonomous_task", json!({"goal": g}));
    expect(
        "can you plan a 5 day trip to japan for me?",
        &[a("plan a 5 day trip to japan for me")],
    );
    expect(
        "pros and cons of remote work",
        &[a("pros and cons of remote work")],
    );
    expect("help me plan my wedding", &[a("help me plan my wedding")]);
    expect(
        "research the best electric cars under 40k and summarize",
        &[a("research the best electric cars under 40k and summarize")],
    );
    expect_tools(
        "find the cheapest flight to tokyo and book a hotel near shibuya",
        &["autonomous_task"],
    );
    expect_tools(
        "which is better python or javascript for beginners",
        &["autonomous_task"],
    );
}

#[test]
fn multi_tool_splits() {
    expect(
        "weather in Tokyo and 25°C in Fahrenheit",
        &[
            ("weather", json!({"location": "Tokyo"})),
            (
                "unit_converter",
                json!({"value": 25, "from_unit": "°c", "to_unit": "fahrenheit"}),
            ),
        ],
    );
    expect(
        "convert 5 km to miles and 20 kg to pounds",
        &[
            (
                "unit_converter",
                json!({"value": 5, "from_unit": "km", "to_unit": "miles"}),
            ),
            (
                "unit_converter",
                json!({"value": 20, "from_unit": "kg", "to_unit": "pounds"}),
            ),
        ],
    );
    // "there" and missing places are taken from the neighbouring call.
    expect(
        "what's the weather in paris and what time is it there",
        &[
            ("weather", json!({"location": "Paris"})),
            ("datetime", json!({"location": "Paris"})),
        ],
    );
    expect(
        "What's the weather in Berlin? Also, how do you say cheers in German?",
        &[
            ("weather", json!({"location": "Berlin"})),
            (
                "translate",
                json!({"text": "cheers", "target_language": "German"}),
            ),
        ],
    );
    expect(
        "whats 15% of 200, also what time is it in tokyo",
        &[
            ("calculator", json!({"expression": "15% of 200"})),
            ("datetime", json!({"location": "Tokyo"})),
        ],
    );
    expect(
        "weather in paris and london",
        &[
            ("weather", json!({"location": "Paris"})),
            ("weather", json!({"location": "London"})),
        ],
    );
    // Chit-chat parts add no call.
    expect(
        "tell me a joke and then the weather in rome",
        &[("weather", json!({"location": "Rome"}))],
    );
    // Not split inside math, quotes or names.
    expect(
        "what's the sum of 3 and 4",
        &[("calculator", json!({"expression": "sum of 3 and 4"}))],
    );
    expect(
        "what's 5 plus 3",
        &[("calculator", json!({"expression": "5 plus 3"}))],
    );
    expect_tools("translate 'salt and pepper' to French", &["translate"]);
    expect_tools("tell me about romeo and juliet", &["wikipedia"]);
    // Independent math requests are separate calls.
    expect(
        "what's 2+2 and 3 plus 4",
        &[
            ("calculator", json!({"expression": "2+2"})),
            ("calculator", json!({"expression": "3 plus 4"})),
        ],
    );
    expect(
        "what's 2+2 plus the weather in paris",
        &[
            ("calculator", json!({"expression": "2+2"})),
            ("weather", json!({"location": "Paris"})),
        ],
    );
    // An open-ended task keeps the whole query.
    expect_tools(
        "compare the weather in Paris and London and recommend where to go",
        &["autonomous_task"],
    );
}

#[test]
fn multi_tool_confidence_is_lower() {
    let single = route("weather in Tokyo").unwrap().confidence.unwrap();
    let multi = route("weather in Tokyo and 25°C in Fahrenheit")
        .unwrap()
        .confidence
        .unwrap();
    assert!(multi < single, "{multi} vs {single}");
}

#[test]
fn chit_chat_is_answered_directly() {
    for q in [
        "hi",
        "hey 👋",
        "good morning",
        "thanks!",
        "thank you so much",
        "how are you?",
        "whats your name",
        "who made you",
        "write a haiku about autumn",
        "tell me a joke",
        "write a python function to reverse a string",
        "i'm bored",
        "ok",
        "bye",
        "what do you think about pineapple on pizza",
        "what is the meaning of life",
    ] {
        expect_direct(q);
    }
    // A greeting in front of a real request does not hide it.
    expect_tools("hi! what's the weather in madrid", &["weather"]);
    expect_tools("hello, what's 2+2", &["calculator"]);
    // "say hello" is a translation, not a greeting.
    expect_tools("say hello in Spanish", &["translate"]);
}

#[test]
fn abstains_when_nothing_matches() {
    for q in [
        "asdkjhasd",
        "blue",
        "the",
        "purple monkey dishwasher",
        "?",
        "I like turtles",
        "can you help me",
        "",
        "   \t\n ",
    ] {
        expect_abstain(q);
    }
}

#[test]
fn only_calls_tools_in_context() {
    let r = router();
    let only_weather = RouteContext::new(
        specs()
            .into_iter()
            .filter(|s| s.name == "weather")
            .collect(),
    );
    assert_eq!(r.route_sync("what's 15% of 2850", &only_weather), None);
    let d = r
        .route_sync("weather in Tokyo and 25°C in Fahrenheit", &only_weather)
        .unwrap();
    assert_eq!(d.calls.len(), 1);
    assert_eq!(d.calls[0].tool, "weather");
    // No tools at all: only chit-chat is still decided.
    let empty = RouteContext::default();
    assert_eq!(r.route_sync("weather in Tokyo", &empty), None);
    assert!(r.route_sync("hi", &empty).unwrap().calls.is_empty());
}

#[test]
fn arguments_are_fitted_to_the_context_schema() {
    let r = router();
    let with = |name: &str, edit: &dyn Fn(&mut ToolSpec)| {
        let mut tools = specs();
        for t in &mut tools {
            if t.name == name {
                edit(t);
            }
        }
        RouteContext::new(tools)
    };
    // A stricter unit converter: values above 10 are invalid, so the call is dropped.
    let strict = with("unit_converter", &|t| {
        t.parameters["properties"]["value"]["maximum"] = json!(10)
    });
    assert!(r.route_sync("convert 5 km to miles", &strict).is_some());
    assert_eq!(r.route_sync("convert 500 km to miles", &strict), None);
    // A schema that wants the value as a string gets a string.
    let stringly = with("unit_converter", &|t| {
        t.parameters["properties"]["value"] = json!({"type": "string"})
    });
    let d = r.route_sync("convert 26.2 miles to km", &stringly).unwrap();
    assert_eq!(d.calls[0].arguments["value"], json!("26.2"));
    // Arguments the schema does not know are left out.
    let no_date = with("weather", &|t| {
        t.parameters = json!({"type": "object", "required": ["location"],
                              "properties": {"location": {"type": "string"}}})
    });
    let d = r.route_sync("weather in Oslo tomorrow", &no_date).unwrap();
    assert_eq!(
        Value::Object(d.calls[0].arguments.clone()),
        json!({"location": "Oslo"})
    );
}

const CUSTOM: &str = r#"
[vars]
ticker = '''[a-z]{1,5}'''

[[tools]]
name = "stock_quote"
required = ["symbol"]
extract = ['''\b(?:quote|price) (?:for |of )?(?P<symbol>{{ticker}})\b''']
args = { symbol = { transform = "upper" } }

[[tools.rules]]
id = "quote"
weight = 0.97
patterns = ['''\bstock quote\b''', '''\bquote for [a-z]{1,5}\b''']
unless = ['''\bfamous quote''']
"#;

#[test]
fn custom_rules_add_a_tool() {
    let r = RegexRouter::with_extra_rules(CUSTOM).unwrap();
    assert!(r.tool_names().contains(&"stock_quote"));
    assert!(r.tool_names().contains(&"weather"));
    let mut tools = specs();
    tools.push(spec(
        "stock_quote",
        &["symbol"],
        json!({"symbol": {"type": "string"}}),
    ));
    let ctx = RouteContext::new(tools);
    let d = r.route_sync("get me a stock quote for aapl", &ctx).unwrap();
    assert_eq!(d.calls.len(), 1);
    assert_eq!(d.calls[0].tool, "stock_quote");
    assert_eq!(d.calls[0].arguments["symbol"], "AAPL");
    // Defaults still work, and the new tool joins multi-tool splits.
    let d = r
        .route_sync("quote for msft and weather in Oslo", &ctx)
        .unwrap();
    let names: Vec<&str> = d.calls.iter().map(|c| c.tool.as_str()).collect();
    assert_eq!(names, ["stock_quote", "weather"]);
    // `unless` vetoes the rule.
    let d = r.route_sync("famous quote for today", &ctx);
    assert!(d.is_none_or(|d| d.calls.iter().all(|c| c.tool != "stock_quote")));
    // Without the tool in the context it is never called.
    assert!(r
        .route_sync("stock quote for aapl", context())
        .is_none_or(|d| d.calls.iter().all(|c| c.tool != "stock_quote")));
    // A rules-only router knows just its own tool.
    let alone = RegexRouter::from_toml_str(CUSTOM).unwrap();
    assert_eq!(alone.tool_names(), ["stock_quote"]);
    assert_eq!(alone.route_sync("weather in Oslo", &ctx), None);
}

#[test]
fn user_rules_extend_a_builtin_tool() {
    let extra = r#"
[[tools]]
name = "weather"
extract = ['''\bclima (?:en )?(?P<location>[a-z ]+)$''']

[[tools.rules]]
id = "spanish"
weight = 0.9
patterns = ['''\bclima\b''']
"#;
    let r = RegexRouter::with_extra_rules(extra).unwrap();
    let d = r.route_sync("clima en buenos aires", context()).unwrap();
    assert_eq!(d.calls[0].tool, "weather");
    assert_eq!(d.calls[0].arguments["location"], "Buenos Aires");
    expect_tools("weather in Oslo", &["weather"]);
}

#[test]
fn invalid_rule_files_are_clear_errors() {
    let err = RegexRouter::from_toml_str("[[tools]\nname = 1").unwrap_err();
    assert!(matches!(err, RuleError::Toml(_)), "{err}");
    assert!(err.to_string().starts_with("invalid rule file"));

    let bad_regex = r#"
[[tools]]
name = "x"
[[tools.rules]]
id = "broken"
weight = 0.5
patterns = ['''(unclosed''']
"#;
    match RegexRouter::from_toml_str(bad_regex).unwrap_err() {
        RuleError::Pattern { location, .. } => {
            assert_eq!(location, "tools.x.rules[0] (broken).patterns[0]")
        }
        other => panic!("unexpected {other:?}"),
    }
    let bad_extract = "[[tools]]\nname = \"x\"\nextract = ['''(?P<a>''']\n";
    assert!(matches!(
        RegexRouter::from_toml_str(bad_extract),
        Err(RuleError::Pattern { .. })
    ));
    let unknown_var = "[[direct]]\nweight = 0.5\npatterns = ['''{{nope}}''']\n";
    assert!(matches!(
        RegexRouter::from_toml_str(unknown_var),
        Err(RuleError::UnknownVar { .. })
    ));
    let bad_weight = "[[direct]]\nweight = 1.5\npatterns = ['''hi''']\n";
    assert!(matches!(
        RegexRouter::from_toml_str(bad_weight),
        Err(RuleError::Invalid { .. })
    ));
    let no_patterns = "[[direct]]\nweight = 0.5\npatterns = []\n";
    assert!(matches!(
        RegexRouter::from_toml_str(no_patterns),
        Err(RuleError::Invalid { .. })
    ));
    let unknown_transform = "[[tools]]\nname = \"x\"\nargs = { a = { transform = \"shout\" } }\n";
    assert!(matches!(
        RegexRouter::from_toml_str(unknown_transform),
        Err(RuleError::Toml(_))
    ));
    let twice = "[[tools]]\nname = \"x\"\n[[tools]]\nname = \"x\"\n";
    assert!(matches!(
        RegexRouter::from_toml_str(twice),
        Err(RuleError::Invalid { .. })
    ));
    // User rules are checked too, and the defaults stay usable.
    assert!(RegexRouter::with_extra_rules(bad_regex).is_err());
    assert!(RegexRouter::try_builtin().is_ok());
}

#[test]
fn odd_input_never_panics() {
    let r = router();
    let inputs = [
        String::new(),
        " ".repeat(100),
        "\u{0}\u{1}\u{7f}".to_string(),
        "😀🎉🔥".repeat(2000),
        "é".repeat(6000),
        "what's the weather in Zürich and the time in São Paulo?".to_string(),
        "\u{FFFD}\u{200B}translate \u{FEFF}hi to french".to_string(),
        "'".repeat(500),
        "\"and\" and \"and\"".to_string(),
        "and and and and".to_string(),
        ", , ; ; . . ? ?".to_string(),
        "İstanbul and İzmir weather".to_string(),
        "lorem ipsum dolor sit amet ".repeat(400),
        "what's 2+2 and ".repeat(700),
        "1/0 in km to km".to_string(),
        "9".repeat(400) + " km to miles",
    ];
    for input in &inputs {
        if let Some(d) = r.route_sync(input, context()) {
            let c = d.confidence.unwrap();
            assert!((0.0..=1.0).contains(&c));
            for call in &d.calls {
                let spec = context().tool(&call.tool).unwrap();
                assert!(spec
                    .validate(&Value::Object(call.arguments.clone()))
                    .is_ok());
            }
        }
    }
    expect(
        "weather in 東京",
        &[("weather", json!({"location": "東京"}))],
    );
}

#[test]
fn routing_is_fast_and_compiled_once() {
    let a = RegexRouter::builtin();
    let b = RegexRouter::default();
    assert!(
        Arc::ptr_eq(&a.inner, &b.inner),
        "default rules are compiled once"
    );
    let queries = [
        "what's the weather in paris and what time is it there",
        "what's 15% of 2850",
        "translate good morning to spanish",
        "hello",
        "asdkjhasd",
    ];
    let start = std::time::Instant::now();
    for _ in 0..200 {
        for q in queries {
            let _ = a.route_sync(q, context());
        }
    }
    let per_query = start.elapsed() / 1000;
    // Typically tens of microseconds; the bound is generous for slow machines.
    assert!(
        per_query < std::time::Duration::from_millis(5),
        "{per_query:?} per query"
    );
    let start = std::time::Instant::now();
    let _ = a.route_sync(&"😀 weather in paris ".repeat(600), context());
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn implements_the_router_trait() {
    let r: Box<dyn Router> = Box::new(router());
    assert_eq!(r.name(), "regex");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let d = rt
        .block_on(r.route("weather in Tokyo", context()))
        .unwrap()
        .unwrap();
    assert_eq!(d.calls[0].tool, "weather");
    assert_eq!(rt.block_on(r.route("", context())).unwrap(), None);
}

#[test]
fn default_rules_file_is_valid() {
    let r = RegexRouter::try_builtin().unwrap();
    let names = r.tool_names();
    for tool in [
        "web_search",
        "calculator",
        "weather",
        "wikipedia",
        "translate",
        "dictionary",
        "datetime",
        "unit_converter",
        "autonomous_task",
    ] {
        assert!(names.contains(&tool), "{tool} missing");
    }
}
