//! The ToolForge plugin SDK: write a typed [`Tool`](toolforge_core::Tool) (an
//! args struct deriving `Deserialize` and `JsonSchema`) and [`export!`] it; the
//! macro generates the four functions of the plugin ABI (version
//! [`ABI_VERSION`], see `toolforge_tools::plugin`): the ABI version, the spec
//! (name, description, generated schema and the tool's example requests), the
//! call (arguments checked against the schema, the async `call` driven to
//! completion) and the free function. Panics are caught and reported as
//! errors, strings are owned and freed by the plugin. Build the crate as a
//! `cdylib` and list the library under `[tools] plugins`.
//!
//! ```
//! use async_trait::async_trait;
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::{json, Value};
//! use toolforge_core::{Tool, ToolError, ToolExample};
//!
//! /// Arguments of `shout`.
//! #[derive(Deserialize, JsonSchema)]
//! struct ShoutArgs {
//!     /// The text to shout.
//!     text: String,
//! }
//!
//! struct Shout;
//!
//! #[async_trait]
//! impl Tool for Shout {
//!     type Args = ShoutArgs;
//!     fn name(&self) -> &str { "shout" }
//!     fn description(&self) -> &str { "Repeats text in capitals." }
//!     async fn call(&self, args: ShoutArgs) -> Result<Value, ToolError> {
//!         let loud = args.text.to_uppercase();
//!         Ok(json!({"text": loud, "summary": loud}))
//!     }
//!     fn examples(&self) -> Vec<ToolExample> {
//!         vec![ToolExample { query: "shout hello".into(), arguments: json!({"text": "hello"}).as_object().cloned().unwrap_or_default() }]
//!     }
//! }
//!
//! toolforge_plugin::export!(Shout);
//!
//! // What the host sees through the C ABI:
//! let spec: Value = serde_json::from_str(&toolforge_plugin::abi::spec_json(&Shout)).unwrap();
//! assert_eq!(spec["name"], "shout");
//! assert_eq!(spec["examples"][0]["arguments"]["text"], "hello");
//! let reply = toolforge_plugin::abi::call_json(&Shout, r#"{"text": "hi"}"#);
//! assert_eq!(reply, json!({"ok": {"text": "HI", "summary": "HI"}}));
//! let refused = toolforge_plugin::abi::call_json(&Shout, r#"{"loud": true}"#);
//! assert!(refused["error"].as_str().unwrap().contains("invalid arguments"));
//! ```

pub mod abi;

pub use toolforge_core;

/// The plugin ABI version this SDK implements (the host refuses any other).
pub const ABI_VERSION: u32 = 1;

/// Exports a tool (an expression whose type implements
/// [`DynTool`](toolforge_core::DynTool), e.g. any typed `Tool`) as this
/// library's plugin: generates `toolforge_plugin_abi_version`,
/// `toolforge_plugin_spec`, `toolforge_plugin_call` and `toolforge_plugin_free`.
/// The tool is built once, on first use. `export!(tool, abi_version = N)`
/// reports another ABI version (for hosts' tests).
#[macro_export]
macro_rules! export {
    ($tool:expr) => {
        $crate::export!($tool, abi_version = $crate::ABI_VERSION);
    };
    ($tool:expr, abi_version = $version:expr) => {
        fn __toolforge_plugin_tool() -> &'static dyn $crate::toolforge_core::DynTool {
            static TOOL: ::std::sync::OnceLock<
                ::std::boxed::Box<dyn $crate::toolforge_core::DynTool>,
            > = ::std::sync::OnceLock::new();
            TOOL.get_or_init(|| ::std::boxed::Box::new($tool)).as_ref()
        }

        /// ABI: the plugin ABI version this library implements.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn toolforge_plugin_abi_version() -> u32 {
            $version
        }

        /// ABI: the tool's spec as NUL-terminated JSON, to be released with
        /// `toolforge_plugin_free`; null if building it panicked.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn toolforge_plugin_spec() -> *mut ::std::ffi::c_char {
            $crate::abi::spec(__toolforge_plugin_tool)
        }

        /// ABI: runs one call; `{"ok": ...}` or `{"error": ...}` as
        /// NUL-terminated JSON, to be released with `toolforge_plugin_free`.
        ///
        /// # Safety
        /// `args_json` must be null or a NUL-terminated string valid for the call.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub unsafe extern "C" fn toolforge_plugin_call(
            args_json: *const ::std::ffi::c_char,
        ) -> *mut ::std::ffi::c_char {
            // SAFETY: the caller's contract, passed on.
            unsafe { $crate::abi::call(__toolforge_plugin_tool, args_json) }
        }

        /// ABI: releases a string this library returned.
        ///
        /// # Safety
        /// `ptr` must be null or a pointer returned by this library, not yet freed.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub unsafe extern "C" fn toolforge_plugin_free(ptr: *mut ::std::ffi::c_char) {
            // SAFETY: the caller's contract, passed on.
            unsafe { $crate::abi::free(ptr) }
        }
    };
}
