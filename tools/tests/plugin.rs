//! End-to-end test of the plugin loader against the example `dice` plugin, built
//! here as a real shared library (and once more with the `wrong-abi` feature).
//! The builds use their own target directories under `<target>/plugin-test`, so the
//! cargo running this test keeps its lock on the main one without deadlock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use toolforge_core::{DynTool, ToolError};
use toolforge_tools::plugin::{load_plugins, PluginError, PluginTool};

struct Built {
    dice: PathBuf,
    wrong_abi: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tools/ sits in the workspace")
        .to_path_buf()
}

/// Builds the dice plugin into `dir` and returns the shared library's path.
fn build_dice(dir: &Path, features: &[&str]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "-p",
            "toolforge-plugin-dice",
            "--target-dir",
        ])
        .arg(dir);
    for feature in features {
        command.args(["--features", feature]);
    }
    let output = command.output().expect("run cargo");
    assert!(
        output.status.success(),
        "building the dice plugin failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = format!(
        "{}toolforge_plugin_dice{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = dir.join("debug").join(file);
    assert!(path.exists(), "no plugin at {}", path.display());
    path
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("plugin-test");
        Built {
            dice: build_dice(&target.join("dice"), &[]),
            wrong_abi: build_dice(&target.join("wrong-abi"), &["wrong-abi"]),
        }
    })
}

fn dice() -> PluginTool {
    PluginTool::load(&built().dice).expect("load dice plugin")
}

#[tokio::test]
async fn spec_comes_from_the_plugin() {
    let spec = dice().spec();
    assert_eq!(spec.name, "dice");
    assert!(spec.description.contains("Rolls dice"));
    assert_eq!(spec.parameters["type"], "object");
    assert_eq!(spec.parameters["additionalProperties"], false);
    assert_eq!(spec.parameters["properties"]["sides"]["minimum"], 2);
    assert_eq!(spec.parameters["properties"]["count"]["maximum"], 100);
}

#[tokio::test]
async fn calls_return_rolls_in_range() {
    let tool = dice();
    let out = tool
        .call_json(json!({"sides": 20, "count": 3}))
        .await
        .unwrap();
    let rolls: Vec<u64> = out["rolls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert_eq!(rolls.len(), 3);
    assert!(rolls.iter().all(|r| (1..=20).contains(r)), "{out}");
    assert_eq!(out["total"].as_u64().unwrap(), rolls.iter().sum::<u64>());
    assert!(out["summary"]
        .as_str()
        .unwrap()
        .starts_with("Rolled 3d20: "));
    let default = tool.call_json(Value::Null).await.unwrap();
    assert!((1..=6).contains(&default["total"].as_u64().unwrap()));
}

#[tokio::test]
async fn invalid_arguments_are_refused_with_clear_errors() {
    let tool = dice();
    let err = tool.call_json(json!({"sides": 1})).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments(_)), "{err:?}");
    assert!(
        err.to_string().contains("sides: is below the minimum 2"),
        "{err}"
    );
    let err = tool.call_json(json!({"faces": 6})).await.unwrap_err();
    assert!(
        err.to_string().contains("unknown argument `faces`"),
        "{err}"
    );
    let err = tool.call_json(json!({"count": "two"})).await.unwrap_err();
    assert!(err.to_string().contains("count: expected integer"), "{err}");
}

#[tokio::test]
async fn a_panicking_call_is_a_clean_error_and_the_host_lives_on() {
    let tool = dice();
    let err = tool
        .call_json(json!({"debug_panic": true}))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ToolError::Failed("dice: the dice plugin panicked: debug_panic was requested".to_string())
    );
    let after = tool.call_json(json!({"count": 2})).await.unwrap();
    assert_eq!(after["count"], 2);
}

#[tokio::test]
async fn concurrent_calls_share_one_library() {
    let tool: Arc<dyn DynTool> = Arc::new(dice());
    let calls = (0..8).map(|i| {
        let tool = tool.clone();
        tokio::spawn(async move { tool.call_json(json!({"count": i + 1})).await })
    });
    for (i, call) in calls.enumerate() {
        let out = call.await.unwrap().unwrap();
        assert_eq!(out["rolls"].as_array().unwrap().len(), i + 1);
    }
}

#[tokio::test]
async fn the_tool_outlives_everything_but_itself() {
    let (tools, errors) = load_plugins(&[built().dice.clone()]);
    assert!(errors.is_empty(), "{errors:?}");
    let tool = tools.into_iter().next().unwrap();
    let out = tool.call_json(json!({})).await.unwrap();
    assert!(out["summary"].is_string());
}

#[test]
fn wrong_abi_version_is_refused() {
    let err = PluginTool::load(&built().wrong_abi).unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::AbiVersion {
                expected: 1,
                found: 999,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 999"), "{err}");
    assert!(err.to_string().contains("expects version 1"), "{err}");
}

#[test]
fn non_libraries_and_missing_paths_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("toolforge-plugin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join(format!("libfake{}", std::env::consts::DLL_SUFFIX));
    std::fs::write(&fake, "this is not a shared library").unwrap();
    let err = PluginTool::load(&fake).unwrap_err();
    assert!(matches!(err, PluginError::Load { .. }), "{err:?}");
    assert!(
        err.to_string().contains("is not a loadable shared library"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let missing = dir.join("libgone.so");
    let err = PluginTool::load(&missing).unwrap_err();
    assert!(matches!(err, PluginError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn load_plugins_keeps_the_good_ones() {
    let paths = [
        PathBuf::from("/nonexistent/libnothing.so"),
        built().dice.clone(),
        built().wrong_abi.clone(),
        built().dice.clone(),
    ];
    let (tools, errors) = load_plugins(&paths);
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].spec().name, "dice");
    assert_eq!(errors.len(), 3);
    assert!(matches!(errors[0], PluginError::NotFound { .. }));
    assert!(matches!(errors[1], PluginError::AbiVersion { .. }));
    assert!(matches!(errors[2], PluginError::DuplicateName { .. }));
}

/// A real shared library without the plugin symbols: the C library this test runs on.
#[cfg(target_os = "linux")]
#[test]
fn a_library_without_the_abi_names_the_missing_symbol() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let libc = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libc.so") || n.starts_with("libc-"))
        })
        .expect("libc is mapped");
    let err = PluginTool::load(libc).unwrap_err();
    assert_eq!(
        err,
        PluginError::MissingSymbol {
            path: PathBuf::from(libc),
            symbol: "toolforge_plugin_abi_version".to_string(),
        }
    );
    assert!(err
        .to_string()
        .contains("does not export the symbol `toolforge_plugin_abi_version`"));
}
