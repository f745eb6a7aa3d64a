//! One time-budget mechanism for all work that may run late: router stages (the
//! `Budget` layer of `toolforge-routers`) and tool calls (the agent's executor).

use std::future::Future;
use std::time::{Duration, Instant};

/// The work did not finish within its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("exceeded its budget of {} ms", .budget.as_millis())]
pub struct Overrun {
    /// The time budget that was exceeded.
    pub budget: Duration,
}

impl Overrun {
    /// The budget in whole milliseconds, as run records report it.
    pub fn budget_ms(&self) -> u64 {
        u64::try_from(self.budget.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Runs `work` within `budget`. Work that finishes late counts as an overrun
/// too: a stage that computes without yielding cannot be interrupted, but its
/// late answer is not taken.
///
/// ```
/// use std::time::Duration;
/// use toolforge_core::deadline::within;
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// let quick = rt.block_on(within(Duration::from_millis(50), async { 7 }));
/// assert_eq!(quick, Ok(7));
/// let slow = rt.block_on(async {
///     within(Duration::from_millis(5), tokio::time::sleep(Duration::from_secs(5))).await
/// });
/// assert_eq!(slow.unwrap_err().budget_ms(), 5);
/// ```
pub async fn within<F: Future>(budget: Duration, work: F) -> Result<F::Output, Overrun> {
    let start = Instant::now();
    match tokio::time::timeout(budget, work).await {
        Ok(output) if start.elapsed() <= budget => Ok(output),
        _ => Err(Overrun { budget }),
    }
}
