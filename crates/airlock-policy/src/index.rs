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

use std::collections::HashMap;

use crate::pattern::PathSegments;

/// A trie of rule indices keyed by leading literal segments.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    nodes: Vec<Node>,
    /// Keys are ASCII lower-cased (deny rules).
    fold_case: bool,
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: HashMap<Vec<u8>, usize>,
    /// Rules whose literal prefix ends here, ascending.
    rules: Vec<usize>,
}

impl Index {
    /// Files rule `i`, whose leading literal segments (decoded) are `prefix`, for
    /// each rule in order.
    pub(crate) fn build<'a, I, P>(rules: I, fold_case: bool) -> Index
    where
        I: IntoIterator<Item = P>,
        P: IntoIterator<Item = &'a [u8]>,
    {
        let mut index = Index {
            nodes: vec![Node::default()],
            fold_case,
        };
        for (i, prefix) in rules.into_iter().enumerate() {
            let mut at = 0;
            for seg in prefix {
                let key = index.key(seg);
                let next = index.nodes.len();
                at = *index.nodes[at].children.entry(key).or_insert(next);
                if at == next {
                    index.nodes.push(Node::default());
                }
            }
            index.nodes[at].rules.push(i);
        }
        index
    }

    fn key(&self, seg: &[u8]) -> Vec<u8> {
        if self.fold_case {
            seg.to_ascii_lowercase()
        } else {
            seg.to_vec()
        }
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
        out.extend_from_slice(&self.nodes[at].rules);
        for seg in segs {
            let found = if self.fold_case {
                self.nodes[at].children.get(&seg.to_ascii_lowercase())
            } else {
                self.nodes[at].children.get(seg)
            };
            match found {
                Some(&next) => {
                    at = next;
                    out.extend_from_slice(&self.nodes[at].rules);
                }
                None => break,
            }
        }
    }
}
