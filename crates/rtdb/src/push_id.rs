//! Push ids (spec §6): 8 characters of millisecond time and 12 random ones from a 64-symbol
//! alphabet in ASCII order, so ids sort in creation order; within one millisecond the random
//! part counts up.

const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Default)]
pub struct PushIds {
    last_ms: i64,
    random: [u8; 12],
}

impl PushIds {
    /// The next id at `now_ms`, with `fresh` supplying random symbols (0..64) when the
    /// millisecond changes.
    pub fn next(&mut self, now_ms: i64, fresh: impl FnOnce() -> [u8; 12]) -> String {
        let mut out = [0u8; 20];
        let mut t = now_ms.max(0) as u64;
        for slot in out[..8].iter_mut().rev() {
            *slot = ALPHABET[(t % 64) as usize];
            t /= 64;
        }
        if now_ms == self.last_ms {
            for d in self.random.iter_mut().rev() {
                if *d == 63 {
                    *d = 0;
                } else {
                    *d += 1;
                    break;
                }
            }
        } else {
            self.random = fresh().map(|d| d % 64);
            self.last_ms = now_ms;
        }
        for (slot, d) in out[8..].iter_mut().zip(self.random) {
            *slot = ALPHABET[d as usize];
        }
        out.iter().map(|&b| b as char).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::PushIds;

    #[test]
    fn ids_increase_within_and_across_milliseconds() {
        let mut ids = PushIds::default();
        let mut first = [0; 12];
        first[11] = 63;
        let a = ids.next(1_700_000_000_000, || first);
        let b = ids.next(1_700_000_000_000, || [0; 12]);
        let c = ids.next(1_700_000_000_001, || [0; 12]);
        assert_eq!(a.len(), 20);
        assert!(a < b && b < c, "{a} {b} {c}");
        // The last symbol carried into the one before it.
        assert!(
            a.ends_with("-----------z") && b.ends_with("----------0-"),
            "{a} {b}"
        );
        assert!(a.starts_with('-'));
    }
}
