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
    ask_with(config, "regex", query)
}

fn ask_with(config: &Path, router: &str, query: &str) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["ask", "--json", "--router", router, "--config"])
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

fn route(config: &Path, queries: &[&str]) -> Vec<Value> {
    let input: String = queries
        .iter()
        .map(|q| format!("{}\n", serde_json::json!({"query": q})))
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["route", "--config"])
        .arg(config)
        .env("TOOLFORGE_LOG", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run toolforge");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_default_chain_routes_the_plugin_by_its_rules_phrased_several_ways() {
    let plugin = build_dice_plugin();
    let dir = tempfile::tempdir().unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugin-dice/rules.toml");
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        format!(
            "[regex]\nrules = {:?}\n[tools]\nplugins = [{:?}]\n",
            rules.display().to_string(),
            plugin.display().to_string()
        ),
    )
    .unwrap();
    let cases = [
        ("roll 3 dice with 20 sides", Some(3), Some(20)),
        ("can you roll a d20", None, Some(20)),
        ("throw two six-sided dice", Some(2), Some(6)),
        ("toss 4 d6", Some(4), Some(6)),
        ("roll 2d8", Some(2), Some(8)),
    ];
    let queries: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let decisions = route(&config, &queries);
    for ((query, count, sides), decision) in cases.iter().zip(&decisions) {
        let call = &decision["calls"][0];
        assert_eq!(call["tool"], "dice", "{query}: {decision}");
        assert_eq!(decision["router"], "new_tools", "{query}: {decision}");
        assert_eq!(
            call["arguments"].get("count").and_then(Value::as_u64),
            *count,
            "{query}"
        );
        assert_eq!(
            call["arguments"].get("sides").and_then(Value::as_u64),
            *sides,
            "{query}"
        );
    }
    // The built-in tools still go to the model.
    let others = route(&config, &["weather in Oslo tomorrow", "what is 17 * 3"]);
    assert_eq!(others[0]["calls"][0]["tool"], "weather");
    assert_eq!(others[1]["calls"][0]["tool"], "calculator");
    assert_eq!(others[0]["router"], "toolforge");
    let (ok, answer, stderr) = ask_with(&config, "chain", "throw two six-sided dice");
    assert!(ok, "{stderr}");
    assert_eq!(
        answer["calls"][0]["output"]["rolls"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn a_plugin_without_rules_is_routed_by_its_example_requests() {
    let plugin = build_dice_plugin();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        format!("[tools]\nplugins = [{:?}]\n", plugin.display().to_string()),
    )
    .unwrap();
    let decisions = route(
        &config,
        &[
            "roll five dice",
            "toss 4 dice with 6 sides",
            "set an alarm for 7",
            "play some music",
            "tell me a joke",
            "what's the weather in Oslo",
        ],
    );
    assert_eq!(decisions[0]["calls"][0]["tool"], "dice", "{}", decisions[0]);
    assert_eq!(decisions[0]["router"], "new_tools");
    let toss = &decisions[1]["calls"][0];
    assert_eq!(toss["tool"], "dice", "{}", decisions[1]);
    assert_eq!(toss["arguments"]["count"], 4);
    assert_eq!(toss["arguments"]["sides"], 6);
    for decision in &decisions[2..] {
        assert_ne!(decision["router"], "new_tools", "{decision}");
    }
    assert_eq!(decisions[5]["calls"][0]["tool"], "weather");
}

fn toolforge(args: &[&str], envs: &[(&str, &Path)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_toolforge"));
    command.args(args).env_remove("TOOLFORGE_MODEL_DIR");
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("run toolforge")
}

/// The first `n` lines of a split of the shipped data.
fn head_split(from: &str, to: &Path, n: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("data").join(from)).unwrap();
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(to.join(from), lines.join("\n") + "\n").unwrap();
}

#[test]
fn corrected_runs_of_a_new_tool_retrain_through_the_gate() {
    let plugin = build_dice_plugin();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        format!("[tools]\nplugins = [{:?}]\n", plugin.display().to_string()),
    )
    .unwrap();
    let log = dir.path().join("runs.jsonl");
    let envs = [("TOOLFORGE_LOG_PATH", log.as_path())];
    let requests = [
        ("roll 2 dice", 2, 6),
        ("throw 3 dice with 8 sides", 3, 8),
        ("roll four twenty-sided dice", 4, 20),
        ("i need 5 dice rolled", 5, 6),
        ("give me 2 rolls of a 12 sided die", 2, 12),
        ("toss 6 dice for me", 6, 6),
        ("roll 3 d10s", 3, 10),
        ("we need 2 dice with 4 sides each", 2, 4),
    ];
    for (query, count, sides) in requests {
        let output = toolforge(
            &["ask", "--json", "--config", config.to_str().unwrap(), query],
            &envs,
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let last = std::fs::read_to_string(&log).unwrap();
        let run: Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
        let correction = serde_json::json!({"calls": [{"tool": "dice", "arguments": {"count": count, "sides": sides}}]});
        let output = toolforge(
            &[
                "feedback",
                "--config",
                config.to_str().unwrap(),
                run["run_id"].as_str().unwrap(),
                "--correct",
                &correction.to_string(),
            ],
            &envs,
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    head_split("train.jsonl", &data, 300);
    head_split("validation.jsonl", &data, 60);
    head_split("test.jsonl", &data, 80);
    let out = dir.path().join("model");
    let retrain = |extra: &[&str]| {
        let mut args = vec![
            "retrain",
            "--config",
            config.to_str().unwrap(),
            "--logs",
            log.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--replay",
            "150",
            "--epochs",
            "2",
            "--generate",
            "40",
        ];
        args.extend_from_slice(extra);
        toolforge(&args, &envs)
    };
    let dry = retrain(&["--dry-run"]);
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        stdout.contains("new tools the head grows for: dice"),
        "{stdout}"
    );
    assert!(
        stdout.contains("6 logged examples to learn from, 2 held out"),
        "{stdout}"
    );
    assert!(stdout.contains("frozen test split"), "{stdout}");
    assert!(stdout.contains("held-out corrections"), "{stdout}");
    assert!(stdout.contains("dry run: nothing promoted"), "{stdout}");
    assert!(!out.exists(), "a dry run promotes nothing");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("model.candidate/gate.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["mode"], "warm_start");
    assert_eq!(report["held_out"], 2);
    assert!(report["verdict"]["promote"].is_boolean());
    let candidate: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("model.candidate/model/config.json")).unwrap(),
    )
    .unwrap();
    let tools: Vec<&str> = candidate["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools.last(),
        Some(&"dice"),
        "the head grew for the new tool"
    );
    // An ensemble stays one: each member is continued, then they are combined.
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("routers/models/compact/config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        candidate["members"].as_u64().unwrap_or(1),
        shipped["members"].as_u64().unwrap_or(1)
    );
}

#[test]
fn rollback_swaps_the_model_with_the_one_it_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let previous = dir.path().join("model.previous");
    let missing = toolforge(&["rollback", "--model", model.to_str().unwrap()], &[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nothing to roll back to"));
    for (path, text) in [(&model, "new"), (&previous, "old")] {
        std::fs::create_dir_all(path).unwrap();
        std::fs::write(path.join("config.json"), text).unwrap();
    }
    let output = toolforge(&["rollback", "--model", model.to_str().unwrap()], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(model.join("config.json")).unwrap(),
        "old"
    );
    assert_eq!(
        std::fs::read_to_string(previous.join("config.json")).unwrap(),
        "new"
    );
    let again = toolforge(&["rollback", "--model", model.to_str().unwrap()], &[]);
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(model.join("config.json")).unwrap(),
        "new"
    );
}

#[test]
fn the_c_plugin_speaks_the_same_abi_and_is_routed_by_its_examples() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let library = dir.path().join(format!(
        "{}toolforge_plugin_password{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(root.join("examples/plugin-password-c/password.c"))
        .status()
        .expect("run the C compiler (cc)");
    assert!(status.success(), "compiling password.c failed");
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        format!("[tools]\nplugins = [{:?}]\n", library.display().to_string()),
    )
    .unwrap();
    let (ok, answer, stderr) = ask_with(&config, "chain", "i need a 20 character password");
    assert!(ok, "{stderr}");
    let call = &answer["calls"][0];
    assert_eq!(call["tool"], "password", "{answer}");
    assert_eq!(call["arguments"]["length"], 20, "{answer}");
    let password = call["output"]["password"].as_str().expect("a password");
    assert_eq!(password.chars().count(), 20);
    assert_eq!(answer["router"], "new_tools");
    let tools = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["tools", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let specs: Vec<Value> = serde_json::from_slice(&tools.stdout).unwrap();
    let spec = specs.iter().find(|s| s["name"] == "password").unwrap();
    assert_eq!(spec["parameters"]["properties"]["length"]["maximum"], 128);
}

/// Compiles `tests/fixtures/plugins/faulty.c` into `dir` with the given defines.
fn build_faulty_plugin(dir: &Path, file: &str, defines: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let library = dir.join(file);
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-Wall", "-Werror", "-shared", "-fPIC"])
        .args(defines)
        .arg("-o")
        .arg(&library)
        .arg(root.join("tests/fixtures/plugins/faulty.c"))
        .status()
        .expect("run the C compiler (cc)");
    assert!(status.success(), "compiling faulty.c failed");
    library
}

/// Waits for `child` at most `limit`; kills it and fails the test if it is still running.
fn wait_or_kill(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::process::Output {
    let start = std::time::Instant::now();
    while child.try_wait().expect("poll the child").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the command was still running after {limit:?}: it hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect the output")
}

#[test]
fn a_plugin_call_that_never_returns_times_out_and_the_command_exits() {
    let dir = tempfile::tempdir().unwrap();
    let library = build_faulty_plugin(dir.path(), "libhang.so", &["-DHANG"]);
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "version = 1\n[[tools]]\nname = \"faulty\"\n[[tools.rules]]\nid = \"faulty\"\nweight = 0.97\npatterns = ['\\bfaulty\\b']\n",
    )
    .unwrap();
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        format!(
            "[regex]\nrules = {:?}\n[tools]\nplugins = [{:?}]\n[executor]\ntool_timeout_ms = 300\n",
            rules.display().to_string(),
            library.display().to_string()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .args(["ask", "--json", "--router", "regex", "--config"])
        .arg(&config)
        .arg("run the faulty tool")
        .env("TOOLFORGE_LOG", "off")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run toolforge");
    let output = wait_or_kill(child, std::time::Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let answer: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(answer["calls"][0]["tool"], "faulty", "{answer}");
    let error = answer["calls"][0]["error"].as_str().expect("an error");
    assert!(error.contains("timed out"), "{error}");
}

#[test]
fn plugins_named_like_a_built_in_are_refused_and_bare_file_names_load_from_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    build_faulty_plugin(dir.path(), "libweather.so", &["-DTOOL_NAME=\"weather\""]);
    build_faulty_plugin(
        dir.path(),
        "libautonomous.so",
        &["-DTOOL_NAME=\"autonomous_task\""],
    );
    build_faulty_plugin(dir.path(), "libfaulty.so", &[]);
    let config = dir.path().join("toolforge.toml");
    std::fs::write(
        &config,
        "[tools]\nplugins = [\"libweather.so\", \"libautonomous.so\", \"libfaulty.so\"]\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_toolforge"))
        .current_dir(dir.path())
        .args(["tools", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let specs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = specs.iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(names.contains(&"faulty"), "{names:?} {stderr}");
    assert_eq!(names.iter().filter(|n| **n == "weather").count(), 1);
    assert_eq!(names.iter().filter(|n| **n == "autonomous_task").count(), 1);
    assert_eq!(
        stderr.matches("plugin not registered").count(),
        2,
        "{stderr}"
    );
}
