//! A pool of API keys (each with its model) shared by an LLM client's requests.
//! The slot that has rested longest goes next, never sooner than `min_gap` after
//! its previous request; a slot answered with 429 or 5xx backs off (exponentially
//! per slot, or as long as `Retry-After` says) and the request moves on to another
//! slot, for a bounded number of attempts. A `budget` caps the total requests.
//! Keys are never logged: [`ApiKey`]'s `Debug` is redacted and errors are scrubbed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use toolforge_tools::http::{HttpEndpoint, HttpError};
use toolforge_tools::EndpointConfig;

pub use toolforge_core::ApiKey;

use crate::clock::Clock;
use crate::LlmError;

/// One (API key, model) pair of the pool.
#[derive(Debug, Clone)]
pub struct Slot {
    /// API key sent with this slot's requests.
    pub key: ApiKey,
    /// Model requested with this key.
    pub model: String,
}

impl Slot {
    /// A slot from a key and a model name.
    pub fn new(key: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            key: ApiKey::new(key),
            model: model.into(),
        }
    }
}

/// Scheduling and retry policy of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    /// Shortest time between two requests on the same slot.
    pub min_gap: Duration,
    /// First backoff of a slot after a 429/5xx; doubled at each further failure.
    pub backoff: Duration,
    /// Longest backoff, including delays asked for by `Retry-After`.
    pub max_backoff: Duration,
    /// Attempts per request, over all slots, before giving up.
    pub max_attempts: u32,
    /// Total requests the pool may send; `None` = unlimited.
    pub budget: Option<u64>,
    /// Per-request HTTP timeout.
    pub timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            min_gap: Duration::from_secs(1),
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            max_attempts: 5,
            budget: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The slot a request is being built for.
#[derive(Debug, Clone, Copy)]
pub struct SlotRef<'a> {
    /// Position of the slot in the pool.
    pub index: usize,
    /// The slot's API key.
    pub key: &'a ApiKey,
    /// The slot's model.
    pub model: &'a str,
}

/// A POST request built for one slot.
#[derive(Debug, Clone)]
pub struct PoolRequest {
    /// Path appended to the pool's base URL.
    pub path: String,
    /// Query parameters (e.g. Gemini's `key`).
    pub query: Vec<(String, String)>,
    /// Extra headers (e.g. OpenAI's `authorization`).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
}

/// A successful answer and the slot that produced it.
#[derive(Debug, Clone)]
pub struct PoolReply {
    /// The parsed JSON answer.
    pub body: Value,
    /// Index of the slot that answered.
    pub slot: usize,
    /// That slot's model.
    pub model: String,
}

#[derive(Debug, Clone, Default)]
struct SlotState {
    last_request: Option<Instant>,
    backoff_until: Option<Instant>,
    failures: u32,
    disabled: bool,
}

#[derive(Debug, Default)]
struct PoolState {
    slots: Vec<SlotState>,
    spent: u64,
}

/// A granted turn: which slot, and how long to wait before sending.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Lease {
    slot: usize,
    wait: Duration,
}

/// Rotating API keys in front of one HTTP endpoint.
pub struct ClientPool {
    endpoint: HttpEndpoint,
    slots: Vec<Slot>,
    settings: PoolSettings,
    clock: Arc<dyn Clock>,
    state: Mutex<PoolState>,
}

impl std::fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPool")
            .field("service", &self.endpoint.service())
            .field("base_url", &self.endpoint.base_url())
            .field("slots", &self.slots)
            .field("settings", &self.settings)
            .finish()
    }
}

impl ClientPool {
    /// A pool for `service` at `base_url`. The HTTP client itself never retries:
    /// the pool owns retries and rotation. Fails when `slots` is empty.
    pub fn new(
        service: &str,
        base_url: &str,
        slots: Vec<Slot>,
        settings: PoolSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LlmError> {
        if slots.is_empty() {
            return Err(LlmError::NotConfigured(format!(
                "the {service} client needs at least one API key slot"
            )));
        }
        let config = EndpointConfig {
            base_url: Some(base_url.to_string()),
            timeout_ms: Some(settings.timeout.as_millis().min(u64::MAX as u128) as u64),
            retries: Some(0),
            ..EndpointConfig::default()
        };
        let state = PoolState {
            slots: vec![SlotState::default(); slots.len()],
            spent: 0,
        };
        Ok(Self {
            endpoint: HttpEndpoint::new(service, &config, base_url),
            slots,
            settings,
            clock,
            state: Mutex::new(state),
        })
    }

    /// The pool's scheduling and retry policy.
    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    /// The service name used in errors and logs (`gemini`, `openai`).
    pub fn service(&self) -> &str {
        self.endpoint.service()
    }

    /// The distinct models of the slots, in slot order.
    pub fn models(&self) -> Vec<String> {
        let mut models: Vec<String> = Vec::new();
        for slot in &self.slots {
            if !models.contains(&slot.model) {
                models.push(slot.model.clone());
            }
        }
        models
    }

    /// Requests sent so far (every attempt counts against the budget).
    pub fn requests_sent(&self) -> u64 {
        self.lock().spent
    }

    /// Sends a POST built by `build` for the slot whose turn it is, retrying on
    /// other slots after rate limits, server errors and connection failures.
    pub async fn post<F>(&self, build: F) -> Result<PoolReply, LlmError>
    where
        F: Fn(SlotRef<'_>) -> PoolRequest + Send + Sync,
    {
        let attempts = self.settings.max_attempts.max(1);
        let mut last = None;
        for attempt in 1..=attempts {
            let lease = self.lease()?;
            if !lease.wait.is_zero() {
                self.clock.sleep(lease.wait).await;
            }
            let slot = &self.slots[lease.slot];
            let request = build(SlotRef {
                index: lease.slot,
                key: &slot.key,
                model: &slot.model,
            });
            let query: Vec<(&str, String)> = request
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            let headers: Vec<(&str, String)> = request
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            let outcome = self
                .endpoint
                .post_json_once(&request.path, &query, &request.body, &headers)
                .await;
            match outcome {
                Ok(body) => {
                    self.succeeded(lease.slot);
                    return Ok(PoolReply {
                        body,
                        slot: lease.slot,
                        model: slot.model.clone(),
                    });
                }
                Err(failure) => {
                    let error = failure.error.without_secret(slot.key.expose());
                    if key_rejected(&error) {
                        tracing::warn!(
                            service = self.service(),
                            slot = lease.slot,
                            "API key rejected; slot disabled"
                        );
                        self.disable(lease.slot);
                    } else if failure.retryable {
                        let delay = self.back_off(lease.slot, failure.retry_after);
                        tracing::warn!(
                            service = self.service(),
                            slot = lease.slot,
                            attempt,
                            status = error.status(),
                            ?delay,
                            "LLM request failed; slot backs off"
                        );
                    } else {
                        return Err(LlmError::Http(error));
                    }
                    last = Some(error);
                }
            }
        }
        match last {
            Some(last) => Err(LlmError::Unavailable { attempts, last }),
            None => Err(LlmError::NoUsableSlot),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When a slot may send next; `None` = now.
    fn ready_at(&self, state: &SlotState) -> Option<Instant> {
        let gap = state.last_request.map(|t| t + self.settings.min_gap);
        match (gap, state.backoff_until) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Picks the next slot and reserves its turn (counted against the budget).
    fn lease(&self) -> Result<Lease, LlmError> {
        let now = self.clock.now();
        let mut state = self.lock();
        if let Some(budget) = self.settings.budget {
            if state.spent >= budget {
                return Err(LlmError::BudgetExhausted { budget });
            }
        }
        let usable = || {
            state
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.disabled)
                .map(|(i, s)| (i, self.ready_at(s), s.last_request))
        };
        // Ready slots: longest rested first (never used before all others).
        let ready = usable()
            .filter(|(_, at, _)| at.is_none_or(|t| t <= now))
            .min_by_key(|(i, _, last)| (last.is_some(), *last, *i));
        let chosen = match ready {
            Some((i, _, _)) => Some((i, now)),
            None => usable()
                .min_by_key(|(i, at, last)| (*at, *last, *i))
                .map(|(i, at, _)| (i, at.unwrap_or(now).max(now))),
        };
        let Some((slot, start)) = chosen else {
            return Err(LlmError::NoUsableSlot);
        };
        state.slots[slot].last_request = Some(start);
        state.spent += 1;
        Ok(Lease {
            slot,
            wait: start - now,
        })
    }

    fn succeeded(&self, slot: usize) {
        let mut state = self.lock();
        state.slots[slot].failures = 0;
        state.slots[slot].backoff_until = None;
    }

    fn disable(&self, slot: usize) {
        self.lock().slots[slot].disabled = true;
    }

    /// Puts a slot on backoff; returns the delay chosen.
    fn back_off(&self, slot: usize, retry_after: Option<Duration>) -> Duration {
        let now = self.clock.now();
        let mut state = self.lock();
        let slot_state = &mut state.slots[slot];
        slot_state.failures = slot_state.failures.saturating_add(1);
        let exponent = slot_state.failures.saturating_sub(1).min(16);
        let delay = retry_after
            .unwrap_or_else(|| self.settings.backoff.saturating_mul(1u32 << exponent))
            .min(self.settings.max_backoff);
        slot_state.backoff_until = Some(now + delay);
        delay
    }
}

/// Whether the server refused the key itself (so retrying with it is pointless).
fn key_rejected(error: &HttpError) -> bool {
    match error {
        HttpError::Status { status, body, .. } => {
            matches!(status, 401 | 403)
                || (*status == 400
                    && (body.contains("API_KEY_INVALID") || body.contains("API key not valid")))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn pool(slots: usize, settings: PoolSettings) -> (ClientPool, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let slots = (0..slots)
            .map(|i| Slot::new(format!("key-{i}"), "m"))
            .collect();
        let pool =
            ClientPool::new("test", "http://127.0.0.1:9", slots, settings, clock.clone()).unwrap();
        (pool, clock)
    }

    fn gap(ms: u64) -> PoolSettings {
        PoolSettings {
            min_gap: Duration::from_millis(ms),
            ..PoolSettings::default()
        }
    }

    #[tokio::test]
    async fn rotates_through_slots_and_waits_out_the_min_gap() {
        let (pool, clock) = pool(3, gap(1_000));
        let mut order = Vec::new();
        let mut times = Vec::new();
        for _ in 0..7 {
            let lease = pool.lease().unwrap();
            clock.sleep(lease.wait).await;
            order.push(lease.slot);
            times.push(clock.elapsed().as_millis());
        }
        assert_eq!(order, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(times, vec![0, 0, 0, 1_000, 1_000, 1_000, 2_000]);
    }

    #[tokio::test]
    async fn longest_rested_slot_goes_first() {
        let (pool, clock) = pool(3, gap(100));
        for _ in 0..3 {
            pool.lease().unwrap();
        }
        clock.advance(Duration::from_millis(500));
        // Slot 0 would be next, but it is backing off.
        pool.back_off(0, Some(Duration::from_secs(10)));
        assert_eq!(pool.lease().unwrap().slot, 1);
        assert_eq!(pool.lease().unwrap().slot, 2);
        // Slot 0 is still backing off; slot 1 is ready again first.
        let lease = pool.lease().unwrap();
        assert_eq!(lease.slot, 1);
        assert_eq!(lease.wait, Duration::from_millis(100));
    }

    #[tokio::test]
    async fn backoff_doubles_per_slot_caps_and_resets() {
        let settings = PoolSettings {
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            ..gap(0)
        };
        let (pool, _clock) = pool(2, settings);
        let delays: Vec<u64> = (0..4).map(|_| pool.back_off(0, None).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5]);
        assert_eq!(pool.back_off(1, None).as_secs(), 1);
        assert_eq!(pool.back_off(1, Some(Duration::from_secs(3))).as_secs(), 3);
        pool.succeeded(0);
        assert_eq!(pool.back_off(0, None).as_secs(), 1);
    }

    #[tokio::test]
    async fn budget_and_disabled_slots_are_enforced() {
        let settings = PoolSettings {
            budget: Some(2),
            ..gap(0)
        };
        let (pool, _clock) = pool(2, settings);
        pool.disable(0);
        assert_eq!(pool.lease().unwrap().slot, 1);
        assert_eq!(pool.lease().unwrap().slot, 1);
        assert!(matches!(
            pool.lease(),
            Err(LlmError::BudgetExhausted { budget: 2 })
        ));
        let (pool, _clock) = pool_all_disabled();
        assert!(matches!(pool.lease(), Err(LlmError::NoUsableSlot)));
    }

    fn pool_all_disabled() -> (ClientPool, Arc<ManualClock>) {
        let (pool, clock) = pool(1, gap(0));
        pool.disable(0);
        (pool, clock)
    }

    #[test]
    fn keys_never_show_in_debug_or_errors() {
        let (pool, _clock) = pool(2, gap(0));
        let debug = format!("{pool:?}");
        assert!(!debug.contains("key-0") && debug.contains("***"), "{debug}");
        let error = HttpError::Network {
            service: "gemini".into(),
            message: "error sending request for url (http://x/?key=ab%2Fcd and ab/cd)".into(),
        };
        assert_eq!(
            error.without_secret("ab/cd").to_string(),
            "gemini is unreachable: error sending request for url (http://x/?key=*** and ***)"
        );
    }

    #[test]
    fn rejected_keys_are_recognised() {
        let status = |status, body: &str| HttpError::Status {
            service: "s".into(),
            status,
            body: body.into(),
        };
        assert!(key_rejected(&status(401, "")));
        assert!(key_rejected(&status(
            400,
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key."}}"#
        )));
        assert!(!key_rejected(&status(400, "bad schema")));
        assert!(!key_rejected(&status(429, "")));
    }
}
