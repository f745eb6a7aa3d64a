//! Tests of the offline teacher's output: determinism, mix, schema-valid
//! arguments, spans present in the text, order of multi-tool calls, styles.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::*;

/// `(tool, required, optional)` per the public contract; `value` and
/// `max_results` are numbers, everything else a string.
const CONTRACT: &[(&str, &[&str], &[&str])] = &[
    ("web_search", &["query"], &["max_results"]),
    ("calculator", &["expression"], &[]),
    ("weather", &["location"], &["date"]),
    ("wikipedia", &["topic"], &[]),
    (
        "translate",
        &["text", "target_language"],
        &["source_language"],
    ),
    ("dictionary", &["word"], &[]),
    ("datetime", &[], &["location", "timezone"]),
    ("unit_converter", &["value", "from_unit", "to_unit"], &[]),
    ("autonomous_task", &["goal"], &[]),
];

fn sample(seed: u64, n: usize) -> Vec<Example> {
    Generator::new(seed, ClassMix::default()).generate(n)
}

fn category(e: &Example) -> &str {
    e.meta["category"].as_str().unwrap_or("")
}

#[test]
fn deterministic_for_a_seed() {
    let a = sample(42, 400);
    let b = sample(42, 400);
    assert_eq!(a, b);
    let c = sample(43, 400);
    assert_ne!(a, c);
}

#[test]
fn class_mix_within_tolerance() {
    let n = 5000;
    let examples = sample(1, n);
    assert_eq!(examples.len(), n);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in &examples {
        *counts.entry(category(e).to_string()).or_default() += 1;
    }
    for (class, share) in ClassMix::default().shares() {
        let got = *counts.get(class).unwrap_or(&0) as f64 / n as f64;
        assert!((got - share).abs() < 0.01, "{class}: {got} vs {share}");
    }
    let mut custom = ClassMix::none();
    custom.set("web_search", 1.0).unwrap();
    custom.set("calculator", 1.0).unwrap();
    let only = Generator::new(3, custom).generate(300);
    assert!(only
        .iter()
        .all(|e| ["web_search", "calculator"].contains(&category(e))));
}

#[test]
fn calls_follow_the_contract() {
    for e in sample(7, 5000) {
        assert_eq!(e.source, "teacher:offline");
        for call in &e.calls {
            let (_, required, optional) = CONTRACT
                .iter()
                .find(|(t, _, _)| *t == call.tool)
                .unwrap_or_else(|| panic!("unknown tool {} in {:?}", call.tool, e.query));
            for r in *required {
                assert!(call.arguments.contains_key(*r), "{r} missing: {e:?}");
            }
            for (name, value) in &call.arguments {
                assert!(
                    required.contains(&name.as_str()) || optional.contains(&name.as_str()),
                    "unknown argument {name}: {e:?}"
                );
                match name.as_str() {
                    "value" => assert!(value.is_number(), "{e:?}"),
                    "max_results" => assert!(value.is_u64(), "{e:?}"),
                    _ => assert!(
                        value.as_str().is_some_and(|s| !s.trim().is_empty()),
                        "empty {name}: {e:?}"
                    ),
                }
            }
        }
        match category(&e) {
            "no_tool" => assert!(e.calls.is_empty() && !e.unsupported, "{e:?}"),
            "unsupported" => assert!(e.calls.is_empty() && e.unsupported, "{e:?}"),
            "multi" => assert!(e.calls.len() >= 2, "{e:?}"),
            tool => {
                assert_eq!(e.calls.len(), 1, "{e:?}");
                assert_eq!(e.calls[0].tool, tool);
            }
        }
    }
}

#[test]
fn no_duplicate_queries() {
    let mut generator = Generator::new(9, ClassMix::default());
    let mut seen = HashSet::new();
    for e in generator
        .generate(3000)
        .into_iter()
        .chain(generator.generate(3000))
    {
        assert!(seen.insert(normalise(&e.query)), "duplicate {:?}", e.query);
    }
}

#[test]
fn spans_appear_in_the_query() {
    for e in sample(11, 5000) {
        let q = e.query.to_lowercase();
        for call in &e.calls {
            for name in [
                "location",
                "word",
                "topic",
                "text",
                "query",
                "goal",
                "from_unit",
                "to_unit",
                "timezone",
            ] {
                if let Some(Value::String(v)) = call.arguments.get(name) {
                    assert!(
                        q.contains(&v.to_lowercase()),
                        "{name}={v:?} not in {:?}",
                        e.query
                    );
                }
            }
        }
    }
}

fn anchor(call: &ToolCall) -> Option<String> {
    [
        "query",
        "goal",
        "location",
        "topic",
        "word",
        "text",
        "expression",
        "from_unit",
        "timezone",
    ]
    .iter()
    .find_map(|k| call.arguments.get(*k).and_then(Value::as_str))
    .map(str::to_lowercase)
}

#[test]
fn multi_tool_calls_are_in_query_order() {
    let mut checked = 0;
    for e in sample(13, 4000).iter().filter(|e| category(e) == "multi") {
        let q = e.query.to_lowercase();
        let mut from = 0;
        for call in &e.calls {
            let Some(a) = anchor(call) else { continue };
            if !q.contains(&a) {
                continue;
            }
            let pos = q[from..].find(&a).map(|p| p + from);
            assert!(pos.is_some(), "{:?} out of order in {:?}", a, e.query);
            from = pos.unwrap_or(0) + a.len();
        }
        checked += 1;
    }
    assert!(checked > 200);
}

#[test]
fn styles_are_varied() {
    let examples = sample(17, 3000);
    let styles: Vec<&str> = examples
        .iter()
        .map(|e| e.meta["style"].as_str().unwrap_or(""))
        .collect();
    for tag in [
        "lower", "typo", "nopunct", "abbrev", "cap", "clean", "argtypo", "spoken", "emoji",
    ] {
        let k = styles
            .iter()
            .filter(|s| s.split('+').any(|t| t == tag))
            .count();
        assert!(k > 10, "style {tag} seen {k} times");
    }
    let lower = examples
        .iter()
        .filter(|e| e.query == e.query.to_lowercase())
        .count();
    assert!(lower > 600);
    let no_question_mark = examples.iter().filter(|e| !e.query.contains('?')).count();
    assert!(no_question_mark > 1000);
}

#[test]
fn templates_are_diverse() {
    let examples = sample(19, 6000);
    let templates: HashSet<&str> = examples
        .iter()
        .flat_map(|e| e.meta["template"].as_str().unwrap_or("").split('+'))
        .collect();
    assert!(templates.len() > 400, "{} templates used", templates.len());
}

#[test]
fn edge_cases_are_labeled_as_documented() {
    let examples = sample(23, 8000);
    let find = |pred: &dyn Fn(&Example) -> bool| examples.iter().find(|e| pred(e)).cloned();
    let capital =
        find(&|e| e.query.to_lowercase().contains("capital of") && category(e) == "wikipedia");
    assert!(capital.is_some());
    let bare_time = find(&|e| category(e) == "datetime" && e.calls[0].arguments.is_empty());
    assert!(bare_time.is_some());
    let spell =
        find(&|e| e.query.to_lowercase().starts_with("spell ") && category(e) == "dictionary");
    assert!(spell.is_some());
    let dated = find(&|e| {
        category(e) == "weather"
            && e.calls[0].arguments.get("date") == Some(&Value::from("tomorrow"))
    });
    assert!(dated.is_some());
    for e in examples.iter().filter(|e| category(e) == "weather") {
        if let Some(Value::String(d)) = e.calls[0].arguments.get("date") {
            let ok = ["today", "tomorrow"].contains(&d.as_str())
                || [
                    "Monday",
                    "Tuesday",
                    "Wednesday",
                    "Thursday",
                    "Friday",
                    "Saturday",
                    "Sunday",
                ]
                .contains(&d.as_str())
                || (d.len() == 10 && d.chars().nth(4) == Some('-'));
            assert!(ok, "bad date {d} in {:?}", e.query);
        }
    }
}

#[test]
#[ignore = "prints a sample for manual review: cargo test -p toolforge-trainer print_sample -- --ignored --nocapture"]
fn print_sample() {
    let seed = std::env::var("SAMPLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let n = std::env::var("SAMPLE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    for e in sample(seed, n) {
        println!("{}", serde_json::to_string(&e).unwrap_or_default());
    }
}
