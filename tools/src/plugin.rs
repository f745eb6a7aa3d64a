//! Tools shipped as shared libraries (`.so`, `.dylib`, `.dll`) and loaded at start,
//! so new tools need no rebuild of the agent. A plugin speaks a small, stable C ABI
//! of JSON strings; [`PluginTool`] wraps one as a [`DynTool`].
//!
//! # The plugin ABI, version 1
//!
//! A plugin exports four functions (`extern "C"`, `#[no_mangle]`):
//!
//! ```text
//! toolforge_plugin_abi_version() -> u32                           // must equal TOOLFORGE_PLUGIN_ABI_VERSION = 1
//! toolforge_plugin_spec() -> *mut c_char                          // JSON {"name","description","parameters"[,"examples"]}
//! toolforge_plugin_call(args_json: *const c_char) -> *mut c_char  // JSON {"ok": <value>} or {"error": "<msg>"}
//! toolforge_plugin_free(ptr: *mut c_char)                         // frees strings returned above
//! ```
//!
//! Rules both sides rely on:
//!
//! - Every string is NUL-terminated UTF-8. Strings returned by `toolforge_plugin_spec`
//!   and `toolforge_plugin_call` belong to the plugin's allocator: the host copies
//!   them and hands each back to `toolforge_plugin_free` exactly once. The argument
//!   string belongs to the host and is valid only during the call.
//! - The spec may carry `"examples"`: example requests `[{"query", "arguments"}]`
//!   (as [`toolforge_core::ToolExample`]); routers use them before any retraining
//!   (nearest-prototype routing) and the data generator varies them into training data.
//! - `parameters` is the JSON schema (an object schema) of the arguments. The host
//!   checks arguments against it before calling, so the plugin sees only valid shapes
//!   (it should still check its own bounds).
//! - The `ok` value should be a JSON object with a `"summary"` sentence, like every
//!   ToolForge tool; the host adds a summary when it is missing.
//! - `toolforge_plugin_call` runs on a thread of its own and may run on several
//!   threads at once, so it must be thread-safe. A call that never returns costs its
//!   thread, not the agent: the executor's timeout answers, the process still exits,
//!   and at most [`MAX_CALLS_IN_FLIGHT`] calls per plugin run at once (more are refused).
//! - **No panic may unwind out of an exported function.** Unwinding across `extern "C"`
//!   aborts the whole host process, so the plugin must wrap each function body in
//!   [`std::panic::catch_unwind`] and report a caught panic as `{"error": ...}` (or a
//!   null pointer, which the host also treats as a failed call). The example crate
//!   `examples/plugin-dice` shows the pattern.
//! - The library stays loaded as long as any [`PluginTool`] made from it exists.
//!
//! Loading a library runs its initialisers with the agent's privileges: only list
//! trusted plugins in the `[tools] plugins` config.
//!
//! This module is where the workspace allows `unsafe`: loading libraries and
//! calling through the C ABI cannot be done without it.
#![allow(unsafe_code)]

use std::collections::HashSet;
use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use libloading::Library;
use serde_json::{json, Map, Value};
use toolforge_core::{DynTool, ToolError, ToolExample, ToolSpec};

/// The ABI version this host speaks; a plugin reporting another one is refused.
pub const TOOLFORGE_PLUGIN_ABI_VERSION: u32 = 1;

/// Calls one plugin may have running at once; a call beyond them is refused at
/// once, so calls that never return cannot pile up threads without bound.
pub const MAX_CALLS_IN_FLIGHT: usize = 16;

/// Exported symbol: `extern "C" fn() -> u32`.
pub const SYMBOL_ABI_VERSION: &str = "toolforge_plugin_abi_version";
/// Exported symbol: `extern "C" fn() -> *mut c_char`.
pub const SYMBOL_SPEC: &str = "toolforge_plugin_spec";
/// Exported symbol: `extern "C" fn(*const c_char) -> *mut c_char`.
pub const SYMBOL_CALL: &str = "toolforge_plugin_call";
/// Exported symbol: `extern "C" fn(*mut c_char)`.
pub const SYMBOL_FREE: &str = "toolforge_plugin_free";

type AbiVersionFn = unsafe extern "C" fn() -> u32;
type SpecFn = unsafe extern "C" fn() -> *mut c_char;
type CallFn = unsafe extern "C" fn(*const c_char) -> *mut c_char;
type FreeFn = unsafe extern "C" fn(*mut c_char);

/// Why a plugin could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// The configured path does not exist.
    #[error("plugin {} not found: no such file", path.display())]
    NotFound {
        /// Path of the plugin library.
        path: PathBuf,
    },
    /// The file could not be loaded as a shared library.
    #[error("plugin {} is not a loadable shared library: {message}", path.display())]
    Load {
        /// Path of the plugin library.
        path: PathBuf,
        /// The loader's error, as text.
        message: String,
    },
    /// The library lacks one of the ABI's exported functions.
    #[error("plugin {} does not export the symbol `{symbol}`", path.display())]
    MissingSymbol {
        /// Path of the plugin library.
        path: PathBuf,
        /// Name of the missing symbol.
        symbol: String,
    },
    /// The plugin speaks another ABI version than this host.
    #[error(
        "plugin {} speaks plugin ABI version {found}, but this ToolForge expects version {expected}",
        path.display()
    )]
    AbiVersion {
        /// Path of the plugin library.
        path: PathBuf,
        /// The version this host speaks ([`TOOLFORGE_PLUGIN_ABI_VERSION`]).
        expected: u32,
        /// The version the plugin reported.
        found: u32,
    },
    /// The plugin's spec is missing, not UTF-8 or not a valid tool spec.
    #[error("plugin {} returned an invalid spec: {message}", path.display())]
    InvalidSpec {
        /// Path of the plugin library.
        path: PathBuf,
        /// What is wrong with the spec.
        message: String,
    },
    /// The plugin's tool name repeats an earlier plugin's.
    #[error("plugin {} defines tool `{name}`, which an earlier plugin already defines", path.display())]
    DuplicateName {
        /// Path of the refused plugin library.
        path: PathBuf,
        /// The repeated tool name.
        name: String,
    },
}

/// The loaded library and the two functions calls need. The function pointers are
/// valid only while `_library` is loaded, which this struct guarantees.
struct Loaded {
    call: CallFn,
    free: FreeFn,
    _library: Library,
}

impl Loaded {
    /// Copies out a string the plugin returned and gives it back to the plugin's `free`.
    /// `None` for a null pointer.
    fn take_string(&self, ptr: *mut c_char) -> Option<Result<String, std::str::Utf8Error>> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: the ABI makes non-null returned strings NUL-terminated and owned by
        // the plugin until handed to its `free`, which happens once, right after the copy.
        let text = unsafe { CStr::from_ptr(ptr) }.to_str().map(str::to_string);
        // SAFETY: `ptr` came from this plugin and has not been freed.
        unsafe { (self.free)(ptr) };
        Some(text)
    }

    /// One call into the plugin; `Err` describes a broken reply.
    fn invoke(&self, arguments: &CStr) -> Result<String, String> {
        // SAFETY: `arguments` is NUL-terminated and outlives the call; the ABI forbids
        // the plugin from unwinding out of it.
        let reply = unsafe { (self.call)(arguments.as_ptr()) };
        match self.take_string(reply) {
            None => Err("returned no result (a null pointer)".to_string()),
            Some(Err(e)) => Err(format!("returned a reply that is not UTF-8: {e}")),
            Some(Ok(text)) => Ok(text),
        }
    }
}

/// A tool implemented by a shared library speaking the plugin ABI.
pub struct PluginTool {
    path: PathBuf,
    spec: ToolSpec,
    examples: Vec<ToolExample>,
    library: Arc<Loaded>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for PluginTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginTool")
            .field("path", &self.path)
            .field("name", &self.spec.name)
            .finish()
    }
}

impl PluginTool {
    /// Loads the library at `path`, checks its ABI version and reads its spec.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PluginError> {
        // The loader looks a bare file name up in the system's library paths, not in
        // the working directory; an absolute path means what the operator wrote.
        let path =
            std::path::absolute(path.as_ref()).unwrap_or_else(|_| path.as_ref().to_path_buf());
        if !path.exists() {
            return Err(PluginError::NotFound { path });
        }
        // SAFETY: loading runs the library's initialisers; plugins are trusted code
        // named by the operator (see the module docs).
        let library = unsafe { Library::new(&path) }.map_err(|e| PluginError::Load {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let abi_version: AbiVersionFn = symbol(&library, &path, SYMBOL_ABI_VERSION)?;
        // SAFETY: the symbol has the ABI's signature; it takes nothing and returns a u32.
        check_abi_version(&path, unsafe { abi_version() })?;
        let spec_fn: SpecFn = symbol(&library, &path, SYMBOL_SPEC)?;
        let call: CallFn = symbol(&library, &path, SYMBOL_CALL)?;
        let free: FreeFn = symbol(&library, &path, SYMBOL_FREE)?;
        let loaded = Loaded {
            call,
            free,
            _library: library,
        };
        let invalid = |message: String| PluginError::InvalidSpec {
            path: path.clone(),
            message,
        };
        // SAFETY: the symbol has the ABI's signature; the returned string is handled by `take_string`.
        let raw = unsafe { spec_fn() };
        let text = loaded
            .take_string(raw)
            .ok_or_else(|| invalid("the plugin returned a null pointer".to_string()))?
            .map_err(|e| invalid(format!("not UTF-8: {e}")))?;
        let (spec, examples) = parse_spec(&text).map_err(invalid)?;
        tracing::info!(tool = %spec.name, path = %path.display(), "loaded plugin tool");
        Ok(Self {
            path,
            spec,
            examples,
            library: Arc::new(loaded),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_CALLS_IN_FLIGHT)),
        })
    }

    /// Where the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tool's name, from its spec.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

#[async_trait]
impl DynTool for PluginTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn examples(&self) -> Vec<ToolExample> {
        self.examples.clone()
    }

    async fn call_json(&self, arguments: Value) -> Result<Value, ToolError> {
        let arguments = if arguments.is_null() {
            json!({})
        } else {
            arguments
        };
        self.spec.validate(&arguments)?;
        let input = CString::new(arguments.to_string()).map_err(|_| {
            ToolError::InvalidArguments("arguments contain a NUL character".to_string())
        })?;
        let name = &self.spec.name;
        let permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                ToolError::Failed(format!(
                    "plugin tool `{name}` is busy: {MAX_CALLS_IN_FLIGHT} calls are still running"
                ))
            })?;
        let library = Arc::clone(&self.library);
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        // A thread of its own rather than the runtime's blocking pool: the runtime
        // waits for its pool at shutdown, so a call that never returns would keep
        // the process alive after the executor's timeout answered.
        std::thread::Builder::new()
            .name(format!("plugin-{name}"))
            .spawn(move || {
                let reply = library.invoke(&input);
                drop(permit);
                let _ = reply_tx.send(reply);
            })
            .map_err(|e| {
                ToolError::Failed(format!(
                    "plugin tool `{name}` could not start a thread: {e}"
                ))
            })?;
        let reply = reply_rx
            .await
            .map_err(|_| {
                ToolError::Failed(format!("plugin tool `{name}` panicked during the call"))
            })?
            .map_err(|message| ToolError::Failed(format!("plugin tool `{name}` {message}")))?;
        parse_reply(name, &reply)
    }
}

/// Loads every plugin, keeping the ones that work: the agent runs on when one fails.
/// A plugin whose tool name repeats an earlier plugin's is refused.
pub fn load_plugins(paths: &[PathBuf]) -> (Vec<Arc<dyn DynTool>>, Vec<PluginError>) {
    let mut tools: Vec<Arc<dyn DynTool>> = Vec::new();
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    for path in paths {
        match PluginTool::load(path) {
            Ok(tool) if !names.insert(tool.spec.name.clone()) => {
                let error = PluginError::DuplicateName {
                    path: path.clone(),
                    name: tool.spec.name.clone(),
                };
                tracing::debug!(%error, "skipping plugin");
                errors.push(error);
            }
            Ok(tool) => tools.push(Arc::new(tool)),
            Err(error) => {
                tracing::debug!(%error, "skipping plugin");
                errors.push(error);
            }
        }
    }
    (tools, errors)
}

/// Refuses a plugin built for another ABI version.
pub fn check_abi_version(path: &Path, found: u32) -> Result<(), PluginError> {
    if found == TOOLFORGE_PLUGIN_ABI_VERSION {
        Ok(())
    } else {
        Err(PluginError::AbiVersion {
            path: path.to_path_buf(),
            expected: TOOLFORGE_PLUGIN_ABI_VERSION,
            found,
        })
    }
}

/// A function pointer exported by `library` under `name`.
fn symbol<T: Copy>(library: &Library, path: &Path, name: &str) -> Result<T, PluginError> {
    let missing = || PluginError::MissingSymbol {
        path: path.to_path_buf(),
        symbol: name.to_string(),
    };
    let c_name = CString::new(name).map_err(|_| missing())?;
    // SAFETY: `T` is the ABI's function-pointer type for `name`; the pointer is only
    // used while `library` stays loaded (it is stored next to it in `Loaded`).
    unsafe { library.get::<T>(c_name.as_bytes_with_nul()) }
        .map(|s| *s)
        .map_err(|_| missing())
}

/// Parses and checks a plugin's spec JSON and its optional example requests.
fn parse_spec(text: &str) -> Result<(ToolSpec, Vec<ToolExample>), String> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let examples: Vec<ToolExample> = match value.as_object_mut().and_then(|m| m.remove("examples"))
    {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => serde_json::from_value(list).map_err(|e| {
            format!("\"examples\" must be a list of {{\"query\", \"arguments\"}}: {e}")
        })?,
    };
    let spec: ToolSpec = serde_json::from_value(value)
        .map_err(|e| format!("expected {{\"name\", \"description\", \"parameters\"}}: {e}"))?;
    let name_ok = !spec.name.is_empty()
        && spec.name.len() <= 64
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !name_ok {
        return Err(format!(
            "tool name {:?} must be 1 to 64 letters, digits, '_' or '-'",
            spec.name
        ));
    }
    let object_schema = spec
        .parameters
        .as_object()
        .is_some_and(|p| p.get("type").and_then(Value::as_str) == Some("object"));
    if !object_schema {
        return Err(
            "parameters must be an object schema ({\"type\": \"object\", ...})".to_string(),
        );
    }
    for example in &examples {
        spec.validate(&Value::Object(example.arguments.clone()))
            .map_err(|e| format!("example {:?} has invalid arguments: {e}", example.query))?;
    }
    Ok((spec, examples))
}

/// Turns a call reply into the tool's result or error.
fn parse_reply(name: &str, reply: &str) -> Result<Value, ToolError> {
    let broken = |why: &str| ToolError::Failed(format!("plugin tool `{name}` sent {why}"));
    let value: Value = serde_json::from_str(reply)
        .map_err(|e| broken(&format!("a reply that is not JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(broken("a reply that is not a JSON object"));
    };
    if let Some(error) = map.remove("error") {
        let message = match error {
            Value::String(s) => s,
            other => other.to_string(),
        };
        return Err(ToolError::Failed(format!("{name}: {message}")));
    }
    match map.remove("ok") {
        Some(result) => Ok(with_summary(name, result)),
        None => Err(broken("a reply with neither \"ok\" nor \"error\"")),
    }
}

/// Guarantees the result is an object with a `summary`, as every tool's is.
fn with_summary(name: &str, result: Value) -> Value {
    let mut map = match result {
        Value::Object(map) => map,
        other => {
            let mut map = Map::new();
            map.insert("value".to_string(), other);
            map
        }
    };
    if !map.get("summary").is_some_and(Value::is_string) {
        let mut shown = Value::Object(map.clone()).to_string();
        if shown.len() > 200 {
            let mut end = 200;
            while !shown.is_char_boundary(end) {
                end -= 1;
            }
            shown.truncate(end);
            shown.push('…');
        }
        map.insert(
            "summary".to_string(),
            Value::String(format!("{name} returned {shown}")),
        );
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_version_check_names_both_versions() {
        let path = Path::new("/plugins/libold.so");
        assert!(check_abi_version(path, TOOLFORGE_PLUGIN_ABI_VERSION).is_ok());
        let err = check_abi_version(path, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin /plugins/libold.so speaks plugin ABI version 2, but this ToolForge expects version 1"
        );
    }

    #[test]
    fn specs_are_checked() {
        let good =
            r#"{"name":"dice","description":"d","parameters":{"type":"object","properties":{}}}"#;
        assert_eq!(parse_spec(good).unwrap().0.name, "dice");
        assert!(parse_spec(good).unwrap().1.is_empty());
        let with_examples = r#"{"name":"dice","description":"d","parameters":{"type":"object","properties":{"sides":{"type":"integer"}}},
            "examples":[{"query":"roll a d20","arguments":{"sides":20}}]}"#;
        let (spec, examples) = parse_spec(with_examples).unwrap();
        assert!(spec.parameters.get("examples").is_none());
        assert_eq!(examples[0].query, "roll a d20");
        let bad_example = r#"{"name":"dice","description":"d","parameters":{"type":"object","properties":{"sides":{"type":"integer"}}},
            "examples":[{"query":"roll","arguments":{"sides":"many"}}]}"#;
        assert!(parse_spec(bad_example)
            .unwrap_err()
            .contains("invalid arguments"));
        assert!(parse_spec(
            r#"{"name":"d","description":"d","parameters":{"type":"object"},"examples":3}"#
        )
        .unwrap_err()
        .contains("must be a list"));
        assert!(parse_spec("nope").unwrap_err().contains("not JSON"));
        assert!(parse_spec(r#"{"name":"dice"}"#)
            .unwrap_err()
            .contains("expected"));
        let bad_name = r#"{"name":"two words","description":"d","parameters":{"type":"object"}}"#;
        assert!(parse_spec(bad_name).unwrap_err().contains("tool name"));
        let bad_schema = r#"{"name":"x","description":"d","parameters":{"type":"string"}}"#;
        assert!(parse_spec(bad_schema)
            .unwrap_err()
            .contains("object schema"));
    }

    #[test]
    fn replies_become_results_or_errors() {
        let ok = parse_reply("dice", r#"{"ok":{"total":4,"summary":"Rolled 1d6: 4"}}"#).unwrap();
        assert_eq!(ok["total"], 4);
        assert_eq!(ok["summary"], "Rolled 1d6: 4");
        let bare = parse_reply("dice", r#"{"ok":7}"#).unwrap();
        assert_eq!(
            bare,
            json!({"value": 7, "summary": "dice returned {\"value\":7}"})
        );
        assert_eq!(
            parse_reply("dice", r#"{"error":"sides must be between 2 and 1000"}"#).unwrap_err(),
            ToolError::Failed("dice: sides must be between 2 and 1000".to_string())
        );
        for broken in ["not json", "[1]", r#"{"result":1}"#] {
            let err = parse_reply("dice", broken).unwrap_err();
            assert!(
                matches!(err, ToolError::Failed(ref m) if m.starts_with("plugin tool `dice` sent")),
                "{err}"
            );
        }
    }

    #[test]
    fn missing_paths_are_reported_and_others_still_load() {
        let (tools, errors) = load_plugins(&[PathBuf::from("/nonexistent/libnothing.so")]);
        assert!(tools.is_empty());
        assert_eq!(
            errors[0].to_string(),
            "plugin /nonexistent/libnothing.so not found: no such file"
        );
    }
}
