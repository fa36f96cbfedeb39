//! Sliding-window request counters kept in memory (per instance). Written by hand: a map of
//! timestamps is all a few per-address limits need.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// At most `max` events per key within any `window_ms`.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window_ms: i64,
    hits: Mutex<HashMap<String, VecDeque<i64>>>,
}

/// Keys tracked before idle ones are dropped.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(max: usize, window_ms: i64) -> Self {
        Self {
            max,
            window_ms,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` is at its limit at `now_ms` (nothing is counted).
    pub fn exhausted(&self, key: &str, now_ms: i64) -> bool {
        let Ok(hits) = self.hits.lock() else {
            return false;
        };
        let since = now_ms - self.window_ms;
        hits.get(key)
            .is_some_and(|times| times.iter().filter(|t| **t > since).count() >= self.max)
    }

    /// Takes back the last event counted for `key` (an attempt that turned out fine).
    pub fn undo(&self, key: &str) {
        if let Ok(mut hits) = self.hits.lock() {
            if let Some(times) = hits.get_mut(key) {
                times.pop_back();
            }
        }
    }

    /// Counts an event for `key` at `now_ms`; false (and not counted) when the key is at
    /// its limit.
    pub fn allow(&self, key: &str, now_ms: i64) -> bool {
        let Ok(mut hits) = self.hits.lock() else {
            return true;
        };
        let since = now_ms - self.window_ms;
        if hits.len() >= SWEEP_AT {
            hits.retain(|_, times| times.back().is_some_and(|t| *t > since));
        }
        let times = hits.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|t| *t <= since) {
            times.pop_front();
        }
        if times.len() >= self.max {
            return false;
        }
        times.push_back(now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_window() {
        let l = RateLimiter::new(2, 1000);
        assert!(l.allow("a", 0));
        assert!(l.allow("a", 10));
        assert!(!l.allow("a", 20));
        assert!(l.allow("b", 20));
        assert!(l.allow("a", 1001));
        assert!(!l.allow("a", 1005));
        assert!(l.exhausted("a", 1005));
        assert!(!l.exhausted("b", 1005));
        l.undo("a");
        assert!(l.allow("a", 1006));
    }
}
