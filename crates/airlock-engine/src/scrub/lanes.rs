//! Where the first occurrence can be, found by walking the patterns' DFA over
//! several parts of the data at once.
//!
//! The scrubber's cost on clean data is one automaton walk over every byte, and a
//! walk is a chain of dependent loads (state → next state): one byte per L1 load
//! latency, whatever the automaton (measured: the same 440 MiB/s for aho-corasick's
//! NFA and DFA on this project's 2-core machine). The patterns (secrets in many
//! encodings, matched ignoring case) leave no prefilter to skip bytes. What is
//! left is instruction-level parallelism: [`LANES`] independent walks, each over
//! its own slice of the data, interleaved in one loop, so the CPU overlaps their
//! loads. Each slice starts `max_len - 1` bytes early, so an occurrence ending in
//! it is seen by its walk whole.
//!
//! The answer is a lower bound: no occurrence starts before it. The caller runs
//! the exact (overlapping) search from there, so a clean body costs the fast walk
//! only, and a body with a secret costs the exact search from shortly before the
//! first one.

use aho_corasick::automaton::Automaton as _;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};

/// Walks interleaved per loop iteration.
const LANES: usize = 4;

/// Bytes searched per round of lanes (the lanes' bytes and the DFA share L1).
const BLOCK: usize = 16 * 1024;

/// Below this many bytes per lane, one walk (the set-up is not worth it).
const MIN_LANE: usize = 512;

/// Haystacks shorter than this are searched by the exact search alone (and the
/// DFA is not built for them).
pub(super) const MIN_HAYSTACK: usize = LANES * MIN_LANE;

/// The DFA is kept only while its transition table stays this small (about 150
/// KiB per API-key-sized secret, so about 50 secrets); beyond it the scrubber
/// walks its compact automaton alone, at the single-walk speed.
pub(super) const MAX_DFA_BYTES: usize = 8 << 20;

/// A lower bound of the DFA's size: one state per pattern byte, at least 64
/// byte classes (hex and base64 forms), 4 bytes a transition.
fn estimate(pattern_bytes: usize) -> usize {
    pattern_bytes.saturating_mul(64 * 4)
}

/// A DFA over every pattern, searched for where occurrences can begin.
pub(super) struct Lanes {
    dfa: DFA,
    /// Longest pattern (≥ 1).
    max_len: usize,
}

impl Lanes {
    /// A DFA over `patterns` (ignoring ASCII case), or `None` when it cannot be
    /// built within [`MAX_DFA_BYTES`].
    pub(super) fn build<'a>(
        patterns: impl IntoIterator<Item = &'a [u8]> + Clone,
        max_len: usize,
    ) -> Option<Lanes> {
        let bytes: usize = patterns.clone().into_iter().map(<[u8]>::len).sum();
        if max_len == 0 || estimate(bytes) > MAX_DFA_BYTES {
            return None;
        }
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .prefilter(false)
            .build(patterns)
            .ok()?;
        (dfa.memory_usage() <= MAX_DFA_BYTES).then_some(Lanes { dfa, max_len })
    }

    /// A position no occurrence in `hay` starts before, or `None` when `hay`
    /// holds no occurrence at all.
    pub(super) fn first_start(&self, hay: &[u8]) -> Option<usize> {
        // Block by block, so the lanes' bytes stay in the L1 cache together.
        (0..hay.len())
            .step_by(BLOCK)
            .find_map(|lo| self.first_end(hay, lo, (lo + BLOCK).min(hay.len())))
            .map(|e| e.saturating_sub(self.max_len))
    }

    /// The end of the first occurrence whose last byte is in `hay[lo..hi]`, when
    /// no occurrence ends before `lo`.
    fn first_end(&self, hay: &[u8], lo: usize, hi: usize) -> Option<usize> {
        let overlap = self.max_len - 1;
        let n = hi - lo;
        let start = self.start();
        if n < LANES * MIN_LANE {
            return self.walk(hay, start, lo.saturating_sub(overlap), hi);
        }
        // Lane l covers the last bytes in [bounds[l], bounds[l + 1]) and starts
        // walking `max_len - 1` bytes before them.
        let bounds: [usize; LANES + 1] = std::array::from_fn(|i| lo + i * n / LANES);
        let mut state = [start; LANES];
        let mut pos: [usize; LANES] = std::array::from_fn(|i| bounds[i].saturating_sub(overlap));
        let common = (0..LANES).fold(n, |c, l| c.min(bounds[l + 1] - pos[l]));
        for _ in 0..common {
            let mut special = false;
            for l in 0..LANES {
                state[l] = self.dfa.next_state(Anchored::No, state[l], hay[pos[l]]);
                pos[l] += 1;
                special |= self.dfa.is_special(state[l]);
            }
            if special && (0..LANES).any(|l| self.dfa.is_match(state[l])) {
                // Lane 0 has seen every end up to pos[0] and found none before
                // it (if lane 0 matched, its match ends at pos[0]): the first
                // end is at or after pos[0].
                return Some(pos[0]);
            }
        }
        // Lanes run in order: when lane l reports `e`, the lanes before it saw no
        // end before bounds[l], and lane l sees every end from there on.
        (0..LANES).find_map(|l| self.walk(hay, state[l], pos[l], bounds[l + 1]))
    }

    fn start(&self) -> aho_corasick::automaton::StateID {
        // An unanchored DFA always has an unanchored start state.
        self.dfa
            .start_state(Anchored::No)
            .expect("unanchored DFA has an unanchored start state")
    }

    /// Walks `hay[from..to]` from `state`; the end of the first match seen.
    fn walk(
        &self,
        hay: &[u8],
        mut state: aho_corasick::automaton::StateID,
        from: usize,
        to: usize,
    ) -> Option<usize> {
        for (i, &b) in hay[from..to].iter().enumerate() {
            state = self.dfa.next_state(Anchored::No, state, b);
            if self.dfa.is_special(state) && self.dfa.is_match(state) {
                return Some(from + i + 1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::AhoCorasickBuilder;
    use proptest::prelude::*;

    /// The exact answer: the smallest start of any occurrence.
    fn truth(patterns: &[Vec<u8>], hay: &[u8]) -> Option<usize> {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(patterns)
            .unwrap();
        ac.find_overlapping_iter(hay).map(|m| m.start()).min()
    }

    fn lanes(patterns: &[Vec<u8>]) -> Lanes {
        let max_len = patterns.iter().map(Vec::len).max().unwrap();
        Lanes::build(patterns.iter().map(Vec::as_slice), max_len).unwrap()
    }

    /// Positions where a walk's bookkeeping changes: lane and block bounds.
    fn edges(n: usize) -> Vec<usize> {
        let mut e = Vec::new();
        let mut lo = 0;
        while lo < n {
            let len = (lo + BLOCK).min(n) - lo;
            e.extend((0..=LANES).map(|i| lo + i * len / LANES));
            lo += BLOCK;
        }
        e
    }

    #[test]
    fn an_occurrence_straddling_any_lane_or_block_edge_is_found() {
        let secret = b"sk_live_4eC39HqLyjWDarjtT1zdp7dc".to_vec();
        let l = lanes(std::slice::from_ref(&secret));
        for n in [3000, 2 * BLOCK + 777] {
            for edge in edges(n) {
                for back in 0..=secret.len() {
                    let Some(at) = edge.checked_sub(back) else {
                        continue;
                    };
                    if at + secret.len() > n {
                        continue;
                    }
                    let mut hay = vec![b'.'; n];
                    hay[at..at + secret.len()].copy_from_slice(&secret.to_ascii_uppercase());
                    let got = l.first_start(&hay);
                    assert!(
                        matches!(got, Some(f) if f <= at),
                        "n {n}, occurrence at {at}: {got:?}"
                    );
                }
            }
            assert_eq!(l.first_start(&vec![b'.'; n]), None, "clean, n {n}");
        }
    }

    #[test]
    fn a_large_body_has_every_occurrence_redacted_wherever_it_falls() {
        use crate::scrub::Scrubber;
        let secret = b"ghp_16C7e42F292c6912E7710c838347Ae178B4a";
        let scrubber = Scrubber::new([("gh", secret.as_slice())]).unwrap();
        let n = 2 * BLOCK + 4321;
        let mut body = vec![b'x'; n];
        let mut planted = 0;
        let mut next_free = 0;
        for edge in edges(n) {
            let at = edge.saturating_sub(secret.len() / 2).max(next_free);
            if at + secret.len() <= n {
                body[at..at + secret.len()].copy_from_slice(secret);
                planted += 1;
                next_free = at + secret.len() + 1;
            }
        }
        let out = scrubber.scrub(&body);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("[REDACTED:gh]").count(), planted);
        assert!(!text.contains("ghp_"));
        let mut st = scrubber.stream();
        let mut streamed = Vec::new();
        for chunk in body.chunks(5000) {
            streamed.extend(st.push(chunk));
        }
        streamed.extend(st.finish());
        assert_eq!(streamed, text.as_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        #[test]
        fn never_later_than_the_first_occurrence_and_none_only_when_clean(
            patterns in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'B'), Just(b'c'), any::<u8>()], 1..24),
                1..5,
            ),
            filler in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'C'), any::<u8>()], 1..64),
            n in 0usize..(2 * BLOCK + 100),
            plants in proptest::collection::vec((0.0f64..1.0, any::<prop::sample::Index>(), any::<bool>()), 0..3),
        ) {
            let mut hay: Vec<u8> = filler.iter().copied().cycle().take(n).collect();
            for (frac, which, upper) in &plants {
                let p = which.get(&patterns);
                let p = if *upper { p.to_ascii_uppercase() } else { p.clone() };
                let at = ((n as f64) * frac) as usize;
                if at + p.len() <= n {
                    hay[at..at + p.len()].copy_from_slice(&p);
                }
            }
            let got = lanes(&patterns).first_start(&hay);
            match truth(&patterns, &hay) {
                None => prop_assert_eq!(got, None),
                Some(first) => prop_assert!(
                    matches!(got, Some(f) if f <= first),
                    "first occurrence at {}, fast walk said {:?}", first, got
                ),
            }
        }
    }
}
