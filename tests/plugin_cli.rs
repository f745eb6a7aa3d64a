//! The dice plugin example, built as a shared library, loads from the config and
//! answers through `toolforge ask`; a broken plugin path leaves the agent running.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn build_dice_plugin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugin-test")
        .join("dice");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "-p",
            "toolforge-plugin-dice",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the dice plugin failed");
    let file = format!(
        "{}toolforge_plugin_dice{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    target.join("debug").join(file)
}

fn ask(config: &Path, query: &str) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["ask", "--json", "--router", "regex", "--config"])
        .arg(config)
        .arg(query)
        .env("TOOLFORGE_LOG", "off")
        .output()
        .expect("run toolforge");
    let stdout = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (
        output.status.success(),
        stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn plugin_tool_is_registered_routed_and_answers() {
    let plugin = build_dice_plugin();
    let dir = tempfile::tempdir().unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugin-dice/rules.toml");
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        format!(
            "[regex]\nrules = {:?}\n[tools]\nplugins = [{:?}, \"/nonexistent/libnothing.so\"]\n",
            rules.display().to_string(),
            plugin.display().to_string()
        ),
    )
    .unwrap();
    let (ok, answer, stderr) = ask(&config, "roll 3 dice with 20 sides");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("plugin not loaded"), "{stderr}");
    let call = &answer["calls"][0];
    assert_eq!(call["tool"], "dice", "{answer}");
    assert_eq!(call["arguments"]["count"], 3);
    assert_eq!(call["arguments"]["sides"], 20);
    let rolls = call["output"]["rolls"].as_array().expect("rolls");
    assert_eq!(rolls.len(), 3);
    assert!(rolls
        .iter()
        .all(|r| (1..=20).contains(&r.as_u64().unwrap())));

    let tools = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["tools", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let specs: Vec<Value> = serde_json::from_slice(&tools.stdout).unwrap();
    assert!(specs.iter().any(|s| s["name"] == "dice"));
}
