//! The promotion gate of `retrain`: a candidate model against the current one on
//! the same examples (the frozen test split, the held-out corrections), paired
//! per example, with a bootstrap interval of the accuracy difference and
//! McNemar's exact test, so a difference within noise is neither a win nor a
//! regression. The decision is the exact test's (the percentile bootstrap is
//! too eager with a handful of discordant examples); the interval is reported. A candidate is refused when it is worse beyond noise on any set
//! or fails to learn the held-out corrections; otherwise it is promoted.
//!
//! ```
//! use toolforge_trainer::gate::{decide, paired, GatePolicy};
//!
//! let current = vec![true; 200];
//! let mut candidate = current.clone();
//! candidate[3] = false; // one example lost: noise
//! let test = paired("test split", &current, &candidate, &GatePolicy::default());
//! assert!(!test.worse_beyond_noise() && test.p_value == 1.0);
//! assert!(decide(&[test], None).promote);
//! ```

use std::fmt;

use serde::Serialize;

use crate::split::SplitRng;

/// How the gate judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GatePolicy {
    /// Bootstrap resamples of the paired differences.
    pub resamples: usize,
    /// Two-sided confidence of the interval (e.g. 0.95).
    pub confidence: f64,
    /// Seed of the bootstrap (the report is reproducible).
    pub seed: u64,
}

impl Default for GatePolicy {
    fn default() -> Self {
        Self {
            resamples: 2000,
            confidence: 0.95,
            seed: 17,
        }
    }
}

/// Current and candidate scored on the same examples, paired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedScore {
    /// Which set (e.g. `frozen test split`).
    pub set: String,
    /// Examples in the set.
    pub examples: usize,
    /// The current model's accuracy.
    pub current: f64,
    /// The candidate's accuracy.
    pub candidate: f64,
    /// Lower end of the bootstrap interval of `candidate - current`.
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// Examples only the current model gets right.
    pub current_only: usize,
    /// Examples only the candidate gets right.
    pub candidate_only: usize,
    /// McNemar's exact two-sided p-value on the discordant examples.
    pub p_value: f64,
    /// Significance level of the verdicts (`1 - confidence`).
    pub alpha: f64,
}

impl PairedScore {
    /// `candidate - current`.
    pub fn difference(&self) -> f64 {
        self.candidate - self.current
    }

    /// `+1.23 pts, interval [-0.40, +2.80]`: the difference and its interval.
    pub fn change(&self) -> String {
        format!(
            "{:+.2} pts, interval [{:+.2}, {:+.2}]",
            100.0 * self.difference(),
            100.0 * self.ci_low,
            100.0 * self.ci_high
        )
    }

    /// The candidate loses more examples than it gains, beyond noise
    /// (McNemar's exact test at `alpha`).
    pub fn worse_beyond_noise(&self) -> bool {
        self.current_only > self.candidate_only && self.p_value < self.alpha
    }

    /// The candidate gains more examples than it loses, beyond noise.
    pub fn better_beyond_noise(&self) -> bool {
        self.candidate_only > self.current_only && self.p_value < self.alpha
    }
}

impl fmt::Display for PairedScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<24} {:>5} examples  current {:6.2}%  candidate {:6.2}%  difference {:+.2} pts [{:+.2}, {:+.2}]  discordant {}/{} (McNemar p = {:.3})",
            self.set,
            self.examples,
            100.0 * self.current,
            100.0 * self.candidate,
            100.0 * self.difference(),
            100.0 * self.ci_low,
            100.0 * self.ci_high,
            self.current_only,
            self.candidate_only,
            self.p_value,
        )
    }
}

/// Pairs per-example correctness of the current model and the candidate
/// (`current[i]` and `candidate[i]` are the same example; extra entries of
/// the longer slice are ignored).
pub fn paired(set: &str, current: &[bool], candidate: &[bool], policy: &GatePolicy) -> PairedScore {
    let n = current.len().min(candidate.len());
    let diffs: Vec<i8> = current
        .iter()
        .zip(candidate)
        .map(|(&a, &b)| i8::from(b) - i8::from(a))
        .collect();
    let mean = |count: usize| if n == 0 { 0.0 } else { count as f64 / n as f64 };
    let current_right = current[..n].iter().filter(|&&c| c).count();
    let candidate_right = candidate[..n].iter().filter(|&&c| c).count();
    let current_only = diffs.iter().filter(|&&d| d < 0).count();
    let candidate_only = diffs.iter().filter(|&&d| d > 0).count();
    let (ci_low, ci_high) = bootstrap_interval(&diffs, policy);
    PairedScore {
        set: set.to_string(),
        examples: n,
        current: mean(current_right),
        candidate: mean(candidate_right),
        ci_low,
        ci_high,
        current_only,
        candidate_only,
        p_value: mcnemar_exact(current_only, candidate_only),
        alpha: 1.0 - policy.confidence.clamp(0.0, 1.0),
    }
}

/// Percentile bootstrap interval of the mean of `diffs`.
fn bootstrap_interval(diffs: &[i8], policy: &GatePolicy) -> (f64, f64) {
    let n = diffs.len();
    if n == 0 || policy.resamples == 0 {
        return (0.0, 0.0);
    }
    let mut rng = SplitRng::new(policy.seed);
    let mut means: Vec<f64> = (0..policy.resamples)
        .map(|_| {
            let sum: i64 = (0..n)
                .map(|_| i64::from(diffs[rng.below(n as u64) as usize]))
                .sum();
            sum as f64 / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - policy.confidence.clamp(0.0, 1.0)) / 2.0;
    let at = |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    (at(tail), at(1.0 - tail))
}

/// Two-sided exact binomial test of `b` against `c` discordant pairs (p = 1/2).
fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X <= k) for X ~ Binomial(n, 1/2), in log space for large n.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// The gate's decision and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Promote the candidate.
    pub promote: bool,
    /// One line per reason, in order of importance.
    pub reasons: Vec<String>,
}

/// Judges a candidate: refused when it is worse beyond noise on any of
/// `guards` (the frozen test split, other held-out sets) or, when held-out
/// `corrections` exist, when it is worse on them than the current model;
/// promoted otherwise.
pub fn decide(guards: &[PairedScore], corrections: Option<&PairedScore>) -> Verdict {
    let mut reasons = Vec::new();
    let mut promote = true;
    for score in guards {
        let verdict = if score.worse_beyond_noise() {
            promote = false;
            "worse beyond noise"
        } else {
            "no regression beyond noise"
        };
        reasons.push(format!(
            "{verdict} on the {} ({})",
            score.set,
            score.change()
        ));
    }
    match corrections {
        Some(score) if score.examples > 0 => {
            if score.difference() < 0.0 {
                promote = false;
                reasons.push(format!(
                    "worse than the current model on the held-out corrections ({:+.2} pts)",
                    100.0 * score.difference()
                ));
            } else if score.better_beyond_noise() {
                reasons.push(format!(
                    "learned the held-out corrections ({})",
                    score.change()
                ));
            } else {
                reasons.push(format!(
                    "held-out corrections unchanged within noise ({:+.2} pts)",
                    100.0 * score.difference()
                ));
            }
        }
        _ => reasons.push("no held-out corrections to judge the new traffic on".to_string()),
    }
    if !promote {
        reasons.sort_by_key(|r| !r.starts_with("worse"));
    }
    Verdict { promote, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_flips(n: usize, lost: &[usize], gained: &[usize]) -> (Vec<bool>, Vec<bool>) {
        let mut current = vec![true; n];
        for &i in gained {
            current[i] = false;
        }
        let mut candidate = current.clone();
        for &i in lost {
            candidate[i] = false;
        }
        for &i in gained {
            candidate[i] = true;
        }
        (current, candidate)
    }

    #[test]
    fn mcnemar_matches_the_binomial() {
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // 0 vs 5: 2 * 0.5^5
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // 2 vs 8: 2 * (1 + 10 + 45) / 1024
        assert!((mcnemar_exact(2, 8) - 112.0 / 1024.0).abs() < 1e-12);
        assert!((mcnemar_exact(8, 2) - 112.0 / 1024.0).abs() < 1e-12);
        assert!(mcnemar_exact(500, 500) > 0.9);
    }

    #[test]
    fn small_differences_are_noise_and_large_ones_are_not() {
        let policy = GatePolicy::default();
        let (current, candidate) = with_flips(1000, &[1, 2, 3, 4, 5], &[10, 11]);
        let score = paired("test", &current, &candidate, &policy);
        assert_eq!((score.current_only, score.candidate_only), (5, 2));
        assert!(
            !score.worse_beyond_noise() && !score.better_beyond_noise(),
            "{score}"
        );
        assert!(decide(&[score], None).promote);

        let lost: Vec<usize> = (0..60).collect();
        let (current, candidate) = with_flips(1000, &lost, &[900]);
        let score = paired("test", &current, &candidate, &policy);
        assert!(score.worse_beyond_noise(), "{score}");
        assert!(score.p_value < 1e-6);
        let verdict = decide(&[score], None);
        assert!(!verdict.promote);
        assert!(verdict.reasons[0].starts_with("worse beyond noise"));
    }

    #[test]
    fn corrections_must_not_get_worse() {
        let policy = GatePolicy::default();
        let (current, candidate) = with_flips(500, &[], &[]);
        let test = paired("test", &current, &candidate, &policy);
        let gained: Vec<usize> = (0..30).collect();
        let (current, candidate) = with_flips(40, &[], &gained);
        let learned = paired("corrections", &current, &candidate, &policy);
        assert!(learned.better_beyond_noise());
        let verdict = decide(std::slice::from_ref(&test), Some(&learned));
        assert!(verdict.promote);
        assert!(verdict.reasons.iter().any(|r| r.starts_with("learned")));

        let (current, candidate) = with_flips(40, &[1, 2], &[]);
        let forgot = paired("corrections", &current, &candidate, &policy);
        assert!(!decide(&[test], Some(&forgot)).promote);
    }

    #[test]
    fn the_bootstrap_is_reproducible_and_empty_sets_are_neutral() {
        let policy = GatePolicy::default();
        let (current, candidate) = with_flips(300, &[1, 2, 3], &[7]);
        assert_eq!(
            paired("a", &current, &candidate, &policy),
            paired("a", &current, &candidate, &policy)
        );
        let empty = paired("empty", &[], &[], &policy);
        assert_eq!(
            (empty.ci_low, empty.ci_high, empty.p_value),
            (0.0, 0.0, 1.0)
        );
        assert!(!empty.worse_beyond_noise());
        // Four examples lost and none gained: the bootstrap interval may end
        // below zero, but four discordant pairs are not evidence (p = 0.125).
        let (current, candidate) = with_flips(300, &[1, 2, 3, 4], &[]);
        let few = paired("few", &current, &candidate, &policy);
        assert!((few.p_value - 0.125).abs() < 1e-12);
        assert!(!few.worse_beyond_noise());
    }
}
