//! Which rules can match a path at all: a trie over the rules' leading literal
//! segments, so a decision looks at the rules along the path's own prefix instead
//! of every rule of the capability.
//!
//! A rule whose pattern starts with the literal segments `v1`, `customers` (then a
//! glob, `**`, or nothing) can only match a path whose first segments are exactly
//! those; it is filed at that trie node. Looking up a path walks the trie along
//! the path's segments and collects the rules filed on the way: a superset of the
//! rules that match, in their original order. Matching itself is unchanged (each
//! candidate goes through [`crate::Rule`]'s matcher), so the index can only skip
//! rules that cannot match; the differential property test in
//! `tests/policy/index.rs` checks decisions against the full walk.
//!
//! Deny rules match loosely (ASCII case ignored, `;params` cut): their trie is
//! keyed by lower-cased segments and walked with the path both as is and with its
//! parameters cut.
//!
//! The trie is built once and then only read, so it is laid out flat: every node
//! in one vector (12 bytes each), its children contiguous and sorted by key
//! (found by binary search), every key in one byte vector and every node's rules
//! in one index vector. Nodes are created, and their keys, children and rules
//! filed, in the same (breadth-first) order, so each node keeps only where its
//! three ranges start: each ends where the next node's starts (a last, sentinel
//! node holds the ends). No allocation per node: a million rules fill three
//! vectors (docs/benchmarks.md, "Loading 1,000,000 rules").

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::pattern::PathSegments;

/// A trie of rule indices keyed by leading literal segments.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    /// Node 0 is the root; the last node is a sentinel (no node of the trie)
    /// whose starts are the previous node's ends.
    nodes: Vec<Node>,
    /// Every node's key, one after another (ASCII lower-cased when `fold_case`).
    keys: Vec<u8>,
    /// Every node's rules, one after another; each node's ascending.
    rules: Vec<u32>,
    /// Keys are ASCII lower-cased (deny rules).
    fold_case: bool,
}

/// Where a node's ranges start; each ends where the next node's starts.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    /// The segment that leads here from the parent, in `keys`.
    key: u32,
    /// The children, in `nodes`, sorted by key.
    children: u32,
    /// The rules whose literal prefix ends here, in `rules`.
    rules: u32,
}

/// `n` as a `u32`: rule counts and trie sizes stay far below 2³² (a rule is
/// at least a few bytes of configuration, and a configuration is read into memory).
fn small(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 rules and trie nodes")
}

impl Index {
    /// Files rule `i`, whose leading literal segments (decoded) are `prefix`, for
    /// each rule in order.
    pub(crate) fn build<'a, I, P>(rules: I, fold_case: bool) -> Index
    where
        I: IntoIterator<Item = P>,
        P: IntoIterator<Item = &'a [u8]>,
    {
        let key = |seg: &'a [u8]| -> Cow<'a, [u8]> {
            if fold_case {
                Cow::Owned(seg.to_ascii_lowercase())
            } else {
                Cow::Borrowed(seg)
            }
        };
        // Every rule's prefix, one after another in `segs`, and where each one
        // is: two vectors however many rules there are. (Every vector of the
        // build is given its size, or a bound of it, up front: growing them was
        // a tenth of loading a million rules.)
        let rules = rules.into_iter();
        let mut spans: Vec<(u32, u32)> = Vec::with_capacity(rules.size_hint().0);
        let mut segs: Vec<Cow<'a, [u8]>> = Vec::with_capacity(2 * spans.capacity());
        for prefix in rules {
            let start = small(segs.len());
            segs.extend(prefix.into_iter().map(key));
            spans.push((start, small(segs.len())));
        }
        let prefix = |r: u32| {
            let (start, end) = spans[r as usize];
            &segs[start as usize..end as usize]
        };
        // Sorted by prefix, rules sharing a node are neighbours, a node's own rules
        // (the shortest prefix) come before its children's, and the sort being
        // stable keeps each node's rules ascending.
        let mut order: Vec<u32> = (0..small(spans.len())).collect();
        order.sort_by(|&a, &b| prefix(a).cmp(prefix(b)));

        // At most one node per segment, the root and the sentinel.
        let mut nodes = Vec::with_capacity(segs.len() + 2);
        nodes.push(Node::default());
        let mut index = Index {
            nodes,
            keys: Vec::with_capacity(segs.iter().map(|s| s.len()).sum()),
            rules: Vec::with_capacity(order.len()),
            fold_case,
        };
        // Breadth first, so that each node's children are created together:
        // node `at`'s rules in `order` and depth are `work[at]`, and nodes are
        // filled in the order they were created.
        let mut work = Vec::with_capacity(index.nodes.capacity());
        work.push((0..order.len(), 0usize));
        let mut at = 0;
        while let Some((span, depth)) = work.get(at).cloned() {
            let group = &order[span.clone()];
            let own = group
                .iter()
                .take_while(|&&r| prefix(r).len() == depth)
                .count();
            index.nodes[at].rules = small(index.rules.len());
            index.rules.extend_from_slice(&group[..own]);
            index.nodes[at].children = small(index.nodes.len());
            let mut i = span.start + own;
            while i < span.end {
                let seg = &prefix(order[i])[depth];
                let mut j = i;
                while j < span.end && prefix(order[j])[depth] == *seg {
                    j += 1;
                }
                work.push((i..j, depth + 1));
                index.nodes.push(Node {
                    key: small(index.keys.len()),
                    ..Node::default()
                });
                index.keys.extend_from_slice(seg);
                i = j;
            }
            at += 1;
        }
        index.nodes.push(Node {
            key: small(index.keys.len()),
            children: small(index.nodes.len()),
            rules: small(index.rules.len()),
        });
        index.nodes.shrink_to_fit();
        index.keys.shrink_to_fit();
        index
    }

    /// The rules that can match `path` (with its parameters cut too, for a
    /// case-folding index), ascending and without repeats.
    pub(crate) fn candidates(&self, path: &PathSegments) -> Vec<usize> {
        let mut out = Vec::new();
        self.walk(path.exact(), &mut out);
        if self.fold_case
            && let Some(cut) = path.without_params()
        {
            self.walk(cut, &mut out);
            out.sort_unstable();
            out.dedup();
        } else {
            out.sort_unstable();
        }
        out
    }

    fn walk(&self, segs: &[Vec<u8>], out: &mut Vec<usize>) {
        let mut at = 0;
        self.collect(at, out);
        for seg in segs {
            match self.child(at, seg) {
                Some(next) => {
                    at = next;
                    self.collect(at, out);
                }
                None => break,
            }
        }
    }

    fn collect(&self, at: usize, out: &mut Vec<usize>) {
        let rules = &self.rules[self.nodes[at].rules as usize..self.nodes[at + 1].rules as usize];
        out.extend(rules.iter().map(|&r| r as usize));
    }

    /// Node `at`'s key.
    fn key(&self, at: usize) -> &[u8] {
        &self.keys[self.nodes[at].key as usize..self.nodes[at + 1].key as usize]
    }

    /// The child of node `at` keyed by `seg` (lower-cased first when folding case).
    fn child(&self, at: usize, seg: &[u8]) -> Option<usize> {
        // Binary search over the children, sorted by key.
        let (mut lo, mut hi) = (
            self.nodes[at].children as usize,
            self.nodes[at + 1].children as usize,
        );
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let key = self.key(mid);
            let order = if self.fold_case {
                key.iter()
                    .copied()
                    .cmp(seg.iter().map(u8::to_ascii_lowercase))
            } else {
                key.cmp(seg)
            };
            match order {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}
