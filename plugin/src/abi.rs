//! What [`export!`](crate::export) expands to call: the C side of the plugin
//! ABI (C strings in and out, panics caught, strings owned by this library)
//! over a [`DynTool`], and the JSON side, usable without pointers in tests.
#![allow(unsafe_code)]

use std::any::Any;
use std::ffi::{c_char, CStr, CString};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use serde_json::{json, Value};
use toolforge_core::DynTool;

/// The spec JSON the host reads: `{"name", "description", "parameters",
/// "examples"}` (examples left out when the tool has none).
pub fn spec_json(tool: &dyn DynTool) -> String {
    let spec = tool.spec();
    let mut value = json!({
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
    });
    let examples = tool.examples();
    if !examples.is_empty() {
        value["examples"] = json!(examples);
    }
    value.to_string()
}

/// Runs one call on JSON text: `{"ok": <result>}` or `{"error": "<message>"}`.
/// Arguments are checked against the tool's schema first; a panic in the tool
/// becomes an error naming it.
pub fn call_json(tool: &dyn DynTool, args_json: &str) -> Value {
    let name = tool.spec().name;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let arguments: Value = serde_json::from_str(args_json)
            .map_err(|e| format!("invalid arguments: not JSON: {e}"))?;
        block_on(tool.call_json(arguments)).map_err(|e| e.to_string())
    }));
    match outcome {
        Ok(Ok(value)) => json!({ "ok": value }),
        Ok(Err(message)) => json!({ "error": message }),
        Err(payload) => json!({
            "error": format!("the {name} plugin panicked: {}", panic_message(payload.as_ref()))
        }),
    }
}

/// `toolforge_plugin_spec`: the spec as a C string owned by this library (null
/// if it could not be built).
pub fn spec(tool: fn() -> &'static dyn DynTool) -> *mut c_char {
    catch_unwind(|| spec_json(tool())).map_or(std::ptr::null_mut(), into_c_string)
}

/// `toolforge_plugin_call`: see [`call_json`].
///
/// # Safety
/// `args_json` must be null or point to a NUL-terminated string that stays
/// valid for the call.
pub unsafe fn call(tool: fn() -> &'static dyn DynTool, args_json: *const c_char) -> *mut c_char {
    let reply = catch_unwind(AssertUnwindSafe(|| {
        if args_json.is_null() {
            return json!({"error": "no arguments were passed (null pointer)"});
        }
        // SAFETY: non-null and NUL-terminated, valid for this call (the caller's contract).
        let text = unsafe { CStr::from_ptr(args_json) };
        match text.to_str() {
            Ok(text) => call_json(tool(), text),
            Err(e) => json!({"error": format!("arguments are not UTF-8: {e}")}),
        }
    }))
    .unwrap_or_else(|payload| {
        json!({"error": format!("the plugin panicked: {}", panic_message(payload.as_ref()))})
    });
    into_c_string(reply.to_string())
}

/// `toolforge_plugin_free`: releases a string from [`spec`] or [`call`].
///
/// # Safety
/// `ptr` must be null or a pointer returned by this library and not yet freed.
pub unsafe fn free(ptr: *mut c_char) {
    if !ptr.is_null() {
        // SAFETY: `ptr` came from `CString::into_raw` here (the caller's contract).
        drop(unsafe { CString::from_raw(ptr) });
    }
}

fn into_c_string(text: String) -> *mut c_char {
    CString::new(text).map_or(std::ptr::null_mut(), CString::into_raw)
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

/// Wakes [`block_on`]'s wait. A mutex and a condition variable, not
/// `thread::park`: the plugin's own copy of `std` must not register
/// thread-local destructors on the host's threads, since they would run after
/// the host unloads the library.
#[derive(Default)]
struct Signal {
    woken: Mutex<bool>,
    wakeup: Condvar,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Ok(mut woken) = self.woken.lock() {
            *woken = true;
            self.wakeup.notify_one();
        }
    }
}

/// Drives `future` to completion on this thread (the host calls plugins on a
/// blocking worker thread, so waiting here blocks no runtime).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let signal = Arc::new(Signal::default());
    let waker = Waker::from(signal.clone());
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        let mut woken = signal.woken.lock().unwrap_or_else(|e| e.into_inner());
        while !*woken {
            woken = signal.wakeup.wait(woken).unwrap_or_else(|e| e.into_inner());
        }
        *woken = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_waits_for_a_wake_from_another_thread() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::thread;
        struct Later {
            started: bool,
            done: Arc<AtomicBool>,
        }
        impl Future for Later {
            type Output = u32;
            fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
                if self.done.load(Ordering::SeqCst) {
                    return Poll::Ready(7);
                }
                if !self.started {
                    self.started = true;
                    let (waker, done) = (cx.waker().clone(), self.done.clone());
                    thread::spawn(move || {
                        thread::sleep(std::time::Duration::from_millis(10));
                        done.store(true, Ordering::SeqCst);
                        waker.wake();
                    });
                }
                Poll::Pending
            }
        }
        let later = Later {
            started: false,
            done: Arc::new(AtomicBool::new(false)),
        };
        assert_eq!(block_on(later), 7);
    }

    #[test]
    fn null_and_bad_strings_are_errors_and_free_accepts_null() {
        fn tool() -> &'static dyn DynTool {
            unreachable!("not called for a null pointer")
        }
        // SAFETY: null is allowed; the reply is freed once below.
        let raw = unsafe { call(tool, std::ptr::null()) };
        // SAFETY: returned by `call` above, NUL-terminated.
        let reply = unsafe { CStr::from_ptr(raw) }.to_str().unwrap().to_string();
        // SAFETY: returned by `call`, freed once.
        unsafe { free(raw) };
        assert!(reply.contains("null pointer"));
        // SAFETY: null is a no-op.
        unsafe { free(std::ptr::null_mut()) };
    }
}
