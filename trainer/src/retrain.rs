//! The data side of retraining from logged traffic: part of the logged
//! examples (the users' corrections) is held out for the promotion gate
//! ([`crate::gate`]), and a warm start trains on the rest, repeated so it
//! weighs in the epoch, next to a replayed sample of the old training split
//! against forgetting.
//!
//! ```
//! use toolforge_trainer::retrain::{hold_out, warm_training_set, WarmPlan};
//! use toolforge_trainer::Example;
//!
//! let logged: Vec<Example> = (0..10)
//!     .map(|i| Example { query: format!("roll {i} dice"), ..Example::default() })
//!     .collect();
//! let (learn, held_out) = hold_out(logged, 0.3);
//! assert_eq!((learn.len(), held_out.len()), (7, 3));
//! let old: Vec<Example> = (0..100)
//!     .map(|i| Example { query: format!("weather {i}"), ..Example::default() })
//!     .collect();
//! let plan = WarmPlan { replay: 40, new_share: 0.5, seed: 1 };
//! let set = warm_training_set(&learn, &old, &plan);
//! assert_eq!(set.len(), 40 + 42);
//! ```

use sha2::{Digest, Sha256};

use crate::dataset::Example;
use crate::split::SplitRng;

/// How a warm start mixes new and old examples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmPlan {
    /// Old training examples replayed (a seeded sample; all when fewer).
    pub replay: usize,
    /// Share of the training set the new examples should make up, reached by
    /// repeating them (never fewer than once each, at most 20 times).
    pub new_share: f64,
    /// Seed of the replay sample and the order.
    pub seed: u64,
}

impl Default for WarmPlan {
    fn default() -> Self {
        Self {
            replay: 3000,
            new_share: 0.3,
            seed: 17,
        }
    }
}

/// Splits logged examples into those to learn from and those held out for the
/// gate: `share` of them (rounded), chosen by a hash of the query so the same
/// request is always on the same side, whatever else the log holds. With fewer
/// than 4 examples nothing is held out.
pub fn hold_out(examples: Vec<Example>, share: f64) -> (Vec<Example>, Vec<Example>) {
    if examples.len() < 4 || share <= 0.0 {
        return (examples, Vec::new());
    }
    let wanted = ((examples.len() as f64 * share.min(0.9)).round() as usize).max(1);
    let mut keyed: Vec<(u64, Example)> = examples
        .into_iter()
        .map(|e| (query_key(&e.query), e))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.query.cmp(&b.1.query)));
    let held: Vec<Example> = keyed.drain(..wanted).map(|(_, e)| e).collect();
    let learn = keyed.into_iter().map(|(_, e)| e).collect();
    (learn, held)
}

fn query_key(query: &str) -> u64 {
    let normalised: String = query
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let digest = Sha256::digest(normalised.as_bytes());
    u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ])
}

/// The training set of a warm start: `new` repeated towards `plan.new_share`
/// of the set, plus a seeded sample of `old`, shuffled.
pub fn warm_training_set(new: &[Example], old: &[Example], plan: &WarmPlan) -> Vec<Example> {
    let mut rng = SplitRng::new(plan.seed);
    let mut replay: Vec<Example> = old.to_vec();
    rng.shuffle(&mut replay);
    replay.truncate(plan.replay);
    let repeats = if new.is_empty() {
        0
    } else {
        let share = plan.new_share.clamp(0.0, 0.95);
        let target = share / (1.0 - share) * replay.len() as f64;
        ((target / new.len() as f64).round() as usize).clamp(1, 20)
    };
    let mut set = replay;
    for _ in 0..repeats {
        set.extend(new.iter().cloned());
    }
    rng.shuffle(&mut set);
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(prefix: &str, n: usize) -> Vec<Example> {
        (0..n)
            .map(|i| Example {
                query: format!("{prefix} {i}"),
                ..Example::default()
            })
            .collect()
    }

    #[test]
    fn the_held_out_side_depends_only_on_the_query() {
        let (_, held) = hold_out(examples("q", 20), 0.25);
        assert_eq!(held.len(), 5);
        let mut more = examples("q", 20);
        more.extend(examples("other", 40));
        more.reverse();
        let (_, held_more) = hold_out(more, 0.25);
        // Every query held out of the small log that is also among the lowest
        // keys of the large one stays held out: the key does not change.
        let keys: Vec<u64> = held.iter().map(|e| query_key(&e.query)).collect();
        let max_key = held_more.iter().map(|e| query_key(&e.query)).max().unwrap();
        for (e, k) in held.iter().zip(&keys) {
            if *k <= max_key {
                assert!(held_more.iter().any(|h| h.query == e.query));
            }
        }
        assert_eq!(hold_out(examples("q", 3), 0.5).1.len(), 0);
    }

    #[test]
    fn new_examples_are_repeated_to_their_share() {
        let new = examples("new", 10);
        let old = examples("old", 1000);
        let plan = WarmPlan {
            replay: 300,
            new_share: 0.25,
            seed: 3,
        };
        let set = warm_training_set(&new, &old, &plan);
        let new_count = set.iter().filter(|e| e.query.starts_with("new")).count();
        assert_eq!(new_count, 100);
        assert_eq!(set.len(), 400);
        assert_eq!(set, warm_training_set(&new, &old, &plan));
        assert_eq!(warm_training_set(&[], &old, &plan).len(), 300);
    }
}
