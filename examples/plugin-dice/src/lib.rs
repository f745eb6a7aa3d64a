//! `dice`: an example ToolForge plugin, built as a shared library (`cdylib`) that the
//! agent loads at start. It is the tool itself: a typed [`Tool`] (arguments
//! deriving `Deserialize` and `JsonSchema`, example requests) exported with
//! [`toolforge_plugin::export!`], which generates the C ABI (version, spec,
//! call with the panic guard, string ownership; see `toolforge_tools::plugin`).
//!
//! Build it with `cargo build -p toolforge-plugin-dice` and list the resulting
//! `libtoolforge_plugin_dice.so` (`.dylib` on macOS, `toolforge_plugin_dice.dll` on
//! Windows) under `plugins` in the `[tools]` config table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge_core::{Tool, ToolError, ToolExample};

/// The plugin ABI version this library reports (999 with the `wrong-abi` test feature).
pub const ABI_VERSION: u32 = if cfg!(feature = "wrong-abi") {
    999
} else {
    toolforge_plugin::ABI_VERSION
};

/// Fewest and most faces a die may have.
pub const SIDES_RANGE: (u32, u32) = (2, 1_000);
/// Fewest and most dice one call may roll.
pub const COUNT_RANGE: (u32, u32) = (1, 100);

/// Arguments of the `dice` tool.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiceArgs {
    /// Faces on each die, from 2 to 1000 (default 6).
    #[schemars(range(min = 2, max = 1000))]
    pub sides: Option<u32>,
    /// How many dice to roll, from 1 to 100 (default 1).
    #[schemars(range(min = 1, max = 100))]
    pub count: Option<u32>,
    /// Host testing aid, leave unset: when true the call panics inside the plugin,
    /// to check that the panic is contained and reported as an ordinary error.
    #[serde(default)]
    pub debug_panic: bool,
}

/// The `dice` tool.
#[derive(Debug, Default, Clone, Copy)]
pub struct Dice;

#[async_trait]
impl Tool for Dice {
    type Args = DiceArgs;

    fn name(&self) -> &str {
        "dice"
    }

    fn description(&self) -> &str {
        "Rolls dice: how many, and how many sides each (a d6 unless told otherwise)."
    }

    async fn call(&self, args: DiceArgs) -> Result<Value, ToolError> {
        roll(&args).map_err(ToolError::InvalidArguments)
    }

    /// Shipped in the spec: the host routes to the tool by them before any
    /// retraining and varies them into training data.
    fn examples(&self) -> Vec<ToolExample> {
        [
            ("roll a die", json!({})),
            ("roll 2 dice", json!({"count": 2})),
            (
                "roll 3 dice with 20 sides",
                json!({"count": 3, "sides": 20}),
            ),
            ("throw a d20 for me", json!({"sides": 20})),
            (
                "can you roll 4 six-sided dice",
                json!({"count": 4, "sides": 6}),
            ),
            (
                "toss 2 dice with 12 sides",
                json!({"count": 2, "sides": 12}),
            ),
            (
                "give me a random roll of a 10 sided die",
                json!({"sides": 10}),
            ),
            ("dice roll please", json!({})),
            ("roll 5 dice for yahtzee", json!({"count": 5})),
            ("i need a d8 roll", json!({"sides": 8})),
        ]
        .into_iter()
        .map(|(query, arguments)| ToolExample {
            query: query.to_string(),
            arguments: arguments.as_object().cloned().unwrap_or_default(),
        })
        .collect()
    }
}

toolforge_plugin::export!(Dice, abi_version = ABI_VERSION);

/// Rolls the dice described by `args`.
pub fn roll(args: &DiceArgs) -> Result<Value, String> {
    if args.debug_panic {
        panic!("debug_panic was requested");
    }
    let sides = bounded("sides", args.sides.unwrap_or(6), SIDES_RANGE)?;
    let count = bounded("count", args.count.unwrap_or(1), COUNT_RANGE)?;
    let rolls: Vec<u32> = (0..count).map(|_| roll_one(sides)).collect();
    let total: u64 = rolls.iter().map(|&r| u64::from(r)).sum();
    let summary = if rolls.len() == 1 {
        format!("Rolled 1d{sides}: {total}")
    } else {
        let terms: Vec<String> = rolls.iter().map(u32::to_string).collect();
        format!("Rolled {count}d{sides}: {} = {total}", terms.join(" + "))
    };
    Ok(json!({
        "rolls": rolls,
        "total": total,
        "sides": sides,
        "count": count,
        "summary": summary,
    }))
}

fn bounded(name: &str, value: u32, (min, max): (u32, u32)) -> Result<u32, String> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{name} must be between {min} and {max}, got {value}"
        ))
    }
}

/// xorshift64* state, seeded from the clock on first use; shared by all threads.
static STATE: AtomicU64 = AtomicU64::new(0);

fn next_u64() -> u64 {
    let mut current = STATE.load(Ordering::Relaxed);
    loop {
        let mut x = if current == 0 { seed() } else { current };
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        match STATE.compare_exchange_weak(current, x, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return x.wrapping_mul(0x2545_f491_4f6c_dd1d),
            Err(actual) => current = actual,
        }
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let local = 0u8;
    (nanos ^ (std::ptr::addr_of!(local) as u64).rotate_left(32)) | 1
}

/// A uniform roll in `1..=sides` (multiply-shift; the bias is below 2^-54).
fn roll_one(sides: u32) -> u32 {
    let scaled = (u128::from(next_u64()) * u128::from(sides)) >> 64;
    // `scaled < sides`, so it fits in u32.
    1 + scaled as u32
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};

    use super::*;
    use toolforge_plugin::abi::{call_json, spec_json};

    fn through_abi(args: &str) -> Value {
        let input = CString::new(args).unwrap();
        unsafe {
            let raw = toolforge_plugin_call(input.as_ptr());
            assert!(!raw.is_null());
            let reply: Value = serde_json::from_str(CStr::from_ptr(raw).to_str().unwrap()).unwrap();
            toolforge_plugin_free(raw);
            reply
        }
    }

    fn ok(args: &str) -> Value {
        let reply = call_json(&Dice, args);
        reply
            .get("ok")
            .cloned()
            .unwrap_or_else(|| panic!("{reply}"))
    }

    fn error(args: &str) -> String {
        call_json(&Dice, args)["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn spec_is_generated_and_clean() {
        let spec: Value = serde_json::from_str(&spec_json(&Dice)).unwrap();
        assert_eq!(spec["name"], "dice");
        let params = &spec["parameters"];
        assert_eq!(params["type"], "object");
        assert!(params.get("$schema").is_none() && params.get("title").is_none());
        assert_eq!(params["properties"]["sides"]["maximum"], 1000);
        assert!(params["properties"]["count"]["description"]
            .as_str()
            .unwrap()
            .contains("How many dice"));
        assert_eq!(spec["examples"].as_array().map(Vec::len), Some(10));
        assert_eq!(ABI_VERSION, 1);
        assert_eq!(toolforge_plugin_abi_version(), 1);
    }

    #[test]
    fn rolls_stay_in_range_and_sum() {
        for _ in 0..200 {
            let out = ok(r#"{"sides": 3, "count": 4}"#);
            let rolls: Vec<u64> = out["rolls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(rolls.len(), 4);
            assert!(rolls.iter().all(|r| (1..=3).contains(r)));
            assert_eq!(out["total"].as_u64().unwrap(), rolls.iter().sum::<u64>());
        }
        let out = ok("{}");
        assert_eq!(out["sides"], 6);
        assert!(out["summary"].as_str().unwrap().starts_with("Rolled 1d6: "));
        let seen: std::collections::HashSet<u64> = (0..500)
            .map(|_| ok(r#"{"sides": 6}"#)["total"].as_u64().unwrap())
            .collect();
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        assert!(error(r#"{"sides": 1}"#).contains("sides: is below the minimum 2"));
        assert!(error(r#"{"count": 101}"#).contains("count: is above the maximum 100"));
        assert!(error(r#"{"sides": "six"}"#).starts_with("invalid arguments"));
        assert!(error(r#"{"faces": 6}"#).contains("unknown argument `faces`"));
        let direct = roll(&DiceArgs {
            sides: Some(1),
            ..DiceArgs::default()
        });
        assert_eq!(
            direct.unwrap_err(),
            "sides must be between 2 and 1000, got 1"
        );
    }

    #[test]
    fn the_abi_reports_results_errors_and_contained_panics() {
        assert!(through_abi(r#"{"count": 2}"#)["ok"]["rolls"].is_array());
        assert!(through_abi(r#"{"sides": 0}"#)["error"]
            .as_str()
            .unwrap()
            .contains("sides"));
        let reply = through_abi(r#"{"debug_panic": true}"#);
        assert_eq!(
            reply["error"],
            "the dice plugin panicked: debug_panic was requested"
        );
        unsafe {
            let raw = toolforge_plugin_call(std::ptr::null());
            let reply = CStr::from_ptr(raw).to_str().unwrap().to_string();
            toolforge_plugin_free(raw);
            assert!(reply.contains("null pointer"));
            toolforge_plugin_free(std::ptr::null_mut());
            let spec = toolforge_plugin_spec();
            assert!(CStr::from_ptr(spec)
                .to_str()
                .unwrap()
                .contains("\"examples\""));
            toolforge_plugin_free(spec);
        }
    }
}
