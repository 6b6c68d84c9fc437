//! The authority diff of two rule sets: exactly which (method, path) requests one
//! allows and the other refuses, computed from the rule semantics rather than the
//! rules' text (`airlock policy diff`, and the reload log of `airlock serve`).
//!
//! A decision depends on a path only through which rules' path patterns match it
//! (exactly for allow rules, loosely for deny rules; see [`crate::RuleSet`]). So
//! the paths fall into finitely many *classes*, one per set of matching patterns
//! (of both rule sets together), and every path of a class is decided alike by
//! each rule set for a given method. [`diff`] finds every class that has at least
//! one real (normalized) path, with the shortest such path as its example, by a
//! breadth-first walk of the product of one automaton per pattern, over an alphabet
//! that has one character per character a pattern names (both cases of a letter,
//! since deny rules ignore case), `;` (deny rules also match with `;params` cut)
//! and one character that no pattern names (standing for all the others: decoded
//! segments are valid UTF-8 and a pattern's literal pieces are whole characters,
//! so a character no pattern names is only ever matched by a `*`). The
//! walk only takes paths that [`crate::normalize`] can produce (no `.` or `..`
//! segment, no `%` and two hex digits after decoding, no `.;` segment), so every
//! class it reports is inhabited, and since it explores every reachable
//! combination, every inhabited class is found: rewriting rules into equivalent
//! ones reports nothing, and any request decided differently falls in a reported
//! class.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::method::STANDARD_METHODS;
use crate::normalize::{is_unreserved, percent_decode};
use crate::{Rule, RuleList, RuleSet};

/// Largest number of automaton states [`diff`] explores before giving up.
pub const MAX_DIFF_STATES: usize = 200_000;

/// Why two rule sets could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// The rules interact in too many ways to enumerate.
    #[error(
        "the rules are too intricate to compare exactly (more than {MAX_DIFF_STATES} path \
         states); compare fewer capabilities at a time or simplify the globs"
    )]
    TooComplex,
}

/// Whether a class of requests gained or lost access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Change {
    /// Refused by the old rules, allowed by the new.
    NewlyAllowed,
    /// Allowed by the old rules, refused by the new.
    NewlyRefused,
}

impl Change {
    /// `newly allowed` or `newly refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::NewlyAllowed => "newly allowed",
            Change::NewlyRefused => "newly refused",
        }
    }
}

/// Which side(s) of the diff a rule is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Presence {
    /// Only in the old rules (removed).
    Old,
    /// Only in the new rules (added).
    New,
    /// In both (same list, same canonical text).
    Both,
}

impl Presence {
    /// `old`, `new` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Old => "old",
            Presence::New => "new",
            Presence::Both => "both",
        }
    }
}

/// A rule of either side whose path pattern matches the paths of a class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchedRule {
    /// The list it is in.
    pub list: ListName,
    /// Its canonical text, e.g. `GET /v1/**`.
    pub rule: String,
    /// Whether it is old, new or in both.
    pub presence: Presence,
}

/// [`RuleList`] with an order, for sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListName {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
}

impl From<ListName> for RuleList {
    fn from(l: ListName) -> RuleList {
        match l {
            ListName::Allow => RuleList::Allow,
            ListName::Deny => RuleList::Deny,
        }
    }
}

impl ListName {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListName::Allow => "allow",
            ListName::Deny => "deny",
        }
    }
}

/// A class of requests decided differently by the old and the new rules.
///
/// A request is in the class when its method is one of `methods` and the rules
/// (of both sides) whose path pattern matches its normalized path — exactly for
/// allow rules, loosely for deny rules, whatever the rule's method — are exactly
/// `matches`. Every request of the class has the same `change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathClass {
    /// Gained or lost.
    pub change: Change,
    /// The methods (upper-case), in the order of [`STANDARD_METHODS`] then extras.
    pub methods: Vec<String>,
    /// The rules whose path pattern matches (sorted: allow first, then deny).
    pub matches: Vec<MatchedRule>,
    /// The rules for one of `methods` whose path pattern does *not* match the
    /// class's paths but does match some paths that every rule of `matches`
    /// matches too: what tells this class from its neighbours (for people; the
    /// class is defined by `matches` alone).
    pub excludes: Vec<MatchedRule>,
    /// The shortest normalized path of the class.
    pub example: String,
}

/// Everything that changes between two rule sets.
#[derive(Debug, Clone)]
pub struct RuleDiff {
    /// The classes that changed, newly allowed first.
    pub classes: Vec<PathClass>,
    /// Extra methods only the old rules allow.
    pub methods_removed: Vec<String>,
    /// Extra methods only the new rules allow.
    pub methods_added: Vec<String>,
    matchers: Vec<MatcherSpec>,
}

impl RuleDiff {
    /// Whether the two rule sets decide every request alike.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The class a request (method and normalized path) falls in, if the two rule
    /// sets decide it differently. Computed from the rules' own matcher, so it
    /// can be checked against [`RuleSet::decide`].
    pub fn class_of(&self, method: &str, path: &str) -> Option<&PathClass> {
        let method = method.to_ascii_uppercase();
        let matched: BTreeSet<(ListName, &str)> = self
            .matchers
            .iter()
            .filter(|m| m.rule.matches_path(path, m.loose))
            .flat_map(|m| m.rules.iter().map(|(l, r)| (*l, r.as_str())))
            .collect();
        self.classes.iter().find(|c| {
            c.methods.contains(&method)
                && c.matches.len() == matched.len()
                && c.matches
                    .iter()
                    .all(|r| matched.contains(&(r.list, r.rule.as_str())))
        })
    }
}

impl Rule {
    /// Whether the rule's path pattern matches, whatever its method.
    fn matches_path(&self, path: &str, loose: bool) -> bool {
        let m = self.method().unwrap_or("GET");
        if loose {
            self.matches_loosely(m, path)
        } else {
            self.matches(m, path)
        }
    }
}

/// Compares what two rule sets allow. `None` stands for "refuses everything" (a
/// capability that does not exist on that side, or one that is closed).
///
/// # Errors
///
/// [`DiffError::TooComplex`] when the walk would exceed [`MAX_DIFF_STATES`].
pub fn diff(old: Option<&RuleSet>, new: Option<&RuleSet>) -> Result<RuleDiff, DiffError> {
    // One matcher per distinct (path pattern, strictness); each rule points at it.
    let mut matchers: Vec<MatcherSpec> = Vec::new();
    let mut index: HashMap<(String, bool), usize> = HashMap::new();
    let mut sides: [Vec<SideRule>; 2] = [Vec::new(), Vec::new()];
    for (s, rs) in [old, new].into_iter().enumerate() {
        let Some(rs) = rs else { continue };
        for (list, rules) in [
            (ListName::Allow, rs.allow_rules()),
            (ListName::Deny, rs.deny_rules()),
        ] {
            for rule in rules {
                let loose = list == ListName::Deny;
                let key = (rule.path().to_owned(), loose);
                let at = *index.entry(key).or_insert_with(|| {
                    matchers.push(MatcherSpec {
                        rule: rule.clone(),
                        loose,
                        rules: BTreeSet::new(),
                    });
                    matchers.len() - 1
                });
                matchers[at].rules.insert((list, rule.as_str().to_owned()));
                sides[s].push(SideRule {
                    list,
                    method: rule.method().map(str::to_owned),
                    matcher: at,
                    text: rule.as_str().to_owned(),
                });
            }
        }
    }
    let [old_rules, new_rules] = sides;
    let old_side = old.map(|rs| Side {
        rules: &old_rules,
        extras: rs.extra_methods(),
        open: rs.allow_rules().is_empty(),
    });
    let new_side = new.map(|rs| Side {
        rules: &new_rules,
        extras: rs.extra_methods(),
        open: rs.allow_rules().is_empty(),
    });

    let mut methods: Vec<String> = STANDARD_METHODS.iter().map(|m| (*m).to_owned()).collect();
    for rs in [old, new].into_iter().flatten() {
        for m in rs.extra_methods() {
            if !methods.contains(m) {
                methods.push(m.clone());
            }
        }
    }

    let atoms = walk(&matchers)?;

    let mut classes: BTreeMap<(Change, Vec<bool>), (Vec<String>, String)> = BTreeMap::new();
    for (bits, example) in &atoms {
        for m in &methods {
            let was = old_side.as_ref().is_some_and(|s| s.allows(m, bits));
            let is = new_side.as_ref().is_some_and(|s| s.allows(m, bits));
            let change = match (was, is) {
                (false, true) => Change::NewlyAllowed,
                (true, false) => Change::NewlyRefused,
                _ => continue,
            };
            classes
                .entry((change, bits.clone()))
                .or_insert_with(|| (Vec::new(), example.clone()))
                .0
                .push(m.clone());
        }
    }
    let presence = |list: ListName, text: &str| {
        let in_old = old_rules.iter().any(|r| r.list == list && r.text == text);
        let in_new = new_rules.iter().any(|r| r.list == list && r.text == text);
        match (in_old, in_new) {
            (true, true) => Presence::Both,
            (true, false) => Presence::Old,
            _ => Presence::New,
        }
    };
    let classes = classes
        .into_iter()
        .map(|((change, bits), (methods, example))| {
            let mut matches: Vec<MatchedRule> = matchers
                .iter()
                .zip(&bits)
                .filter(|(_, hit)| **hit)
                .flat_map(|(m, _)| m.rules.iter())
                .map(|(list, rule)| MatchedRule {
                    list: *list,
                    rule: rule.clone(),
                    presence: presence(*list, rule),
                })
                .collect();
            matches.sort();
            matches.dedup();
            let mut excludes: Vec<MatchedRule> = old_rules
                .iter()
                .chain(&new_rules)
                .filter(|r| !bits[r.matcher] && r.concerns(&methods))
                .filter(|r| {
                    // A neighbour: some inhabited class matches this rule and
                    // every rule this one matches.
                    atoms
                        .keys()
                        .any(|a| a[r.matcher] && a.iter().zip(&bits).all(|(x, y)| *x || !*y))
                })
                .map(|r| MatchedRule {
                    list: r.list,
                    rule: r.text.clone(),
                    presence: presence(r.list, &r.text),
                })
                .collect();
            excludes.sort();
            excludes.dedup();
            PathClass {
                change,
                methods,
                matches,
                excludes,
                example,
            }
        })
        .collect();

    let extras = |rs: Option<&RuleSet>| -> Vec<String> {
        rs.map(|r| r.extra_methods().to_vec()).unwrap_or_default()
    };
    let (old_x, new_x) = (extras(old), extras(new));
    Ok(RuleDiff {
        classes,
        methods_removed: old_x
            .iter()
            .filter(|m| !new_x.contains(m))
            .cloned()
            .collect(),
        methods_added: new_x
            .iter()
            .filter(|m| !old_x.contains(m))
            .cloned()
            .collect(),
        matchers,
    })
}

#[derive(Debug, Clone)]
struct MatcherSpec {
    /// A rule with this path (its method is ignored).
    rule: Rule,
    loose: bool,
    /// Every rule (list, text) of either side that uses this matcher.
    rules: BTreeSet<(ListName, String)>,
}

struct SideRule {
    list: ListName,
    method: Option<String>,
    matcher: usize,
    text: String,
}

impl SideRule {
    /// Whether the rule can decide a request with one of `methods`.
    fn concerns(&self, methods: &[String]) -> bool {
        match self.method.as_deref() {
            None => true,
            Some(m) => methods
                .iter()
                .any(|x| x == m || (self.list == ListName::Deny && m == "GET" && x == "HEAD")),
        }
    }
}

struct Side<'a> {
    rules: &'a [SideRule],
    extras: &'a [String],
    open: bool,
}

impl Side<'_> {
    /// The decision procedure of [`RuleSet::decide`], on a class's match bits.
    fn allows(&self, method: &str, bits: &[bool]) -> bool {
        if !STANDARD_METHODS.contains(&method) && !self.extras.iter().any(|e| e == method) {
            return false;
        }
        let applies = |r: &SideRule, loose: bool| match r.method.as_deref() {
            None => true,
            Some(m) => m == method || (loose && m == "GET" && method == "HEAD"),
        };
        let denied = self
            .rules
            .iter()
            .any(|r| r.list == ListName::Deny && applies(r, true) && bits[r.matcher]);
        if denied {
            return false;
        }
        self.open
            || self
                .rules
                .iter()
                .any(|r| r.list == ListName::Allow && applies(r, false) && bits[r.matcher])
    }
}

// ---------------------------------------------------------------------------------
// Automata
// ---------------------------------------------------------------------------------

/// A symbol of the walk: a character of a decoded segment, or the end of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sym {
    Char(char),
    Sep,
}

#[derive(Debug, Clone, Copy)]
enum Edge {
    Char(char),
    Any,
    Sep,
}

/// A pattern as an NFA; state 0 is the start.
struct Nfa {
    edges: Vec<Vec<(Edge, u32)>>,
    eps: Vec<Vec<u32>>,
    accept: u32,
    ci: bool,
}

impl Nfa {
    fn new(path: &str, ci: bool) -> Nfa {
        let mut nfa = Nfa {
            edges: vec![Vec::new()],
            eps: vec![Vec::new()],
            accept: 0,
            ci,
        };
        let mut cur = 0u32;
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            if seg == "**" {
                let inside = nfa.state();
                let next = nfa.state();
                nfa.edge(cur, Edge::Any, inside);
                nfa.edge(inside, Edge::Any, inside);
                nfa.edge(inside, Edge::Sep, cur);
                nfa.eps[cur as usize].push(next);
                cur = next;
                continue;
            }
            // Split on the literal `*` first, then decode, as the matcher does.
            for (i, piece) in seg.split('*').enumerate() {
                if i > 0 {
                    nfa.edge(cur, Edge::Any, cur);
                    // A fresh state after the loop keeps the loop local to this `*`.
                    let next = nfa.state();
                    nfa.eps[cur as usize].push(next);
                    cur = next;
                }
                for ch in String::from_utf8_lossy(&percent_decode(piece)).chars() {
                    let next = nfa.state();
                    nfa.edge(cur, Edge::Char(ch), next);
                    cur = next;
                }
            }
            let next = nfa.state();
            nfa.edge(cur, Edge::Sep, next);
            cur = next;
        }
        nfa.accept = cur;
        nfa
    }

    fn state(&mut self) -> u32 {
        self.edges.push(Vec::new());
        self.eps.push(Vec::new());
        u32::try_from(self.edges.len() - 1).unwrap_or(u32::MAX)
    }

    fn edge(&mut self, from: u32, e: Edge, to: u32) {
        self.edges[from as usize].push((e, to));
    }

    fn closure(&self, mut set: Vec<u32>) -> Vec<u32> {
        let mut i = 0;
        while i < set.len() {
            for &n in &self.eps[set[i] as usize] {
                if !set.contains(&n) {
                    set.push(n);
                }
            }
            i += 1;
        }
        set.sort_unstable();
        set
    }

    fn start(&self) -> Vec<u32> {
        self.closure(vec![0])
    }

    fn step(&self, set: &[u32], sym: Sym) -> Vec<u32> {
        let mut out = Vec::new();
        for &s in set {
            for &(e, to) in &self.edges[s as usize] {
                let hit = match (e, sym) {
                    (Edge::Sep, Sym::Sep) | (Edge::Any, Sym::Char(_)) => true,
                    (Edge::Char(a), Sym::Char(b)) => {
                        a == b || (self.ci && a.eq_ignore_ascii_case(&b))
                    }
                    _ => false,
                };
                if hit && !out.contains(&to) {
                    out.push(to);
                }
            }
        }
        self.closure(out)
    }
}

/// The walk's state for all matchers is one `Vec<u32>`: per matcher the
/// interned subset of its NFA on the path as is, and for a loose (deny) matcher
/// two more: the subset on the path with `;params` cut and the segments left
/// empty dropped, and flags ([`SKIPPING`], [`EMITTED`]).
/// A `;` was seen in this segment.
const SKIPPING: u32 = 1;
/// This segment's part before `;` is not empty.
const EMITTED: u32 = 2;

/// A pattern's NFA determinized lazily: subsets of NFA states are interned and
/// their transitions cached, so each step of the walk is a table look-up.
struct Dfa {
    nfa: Nfa,
    loose: bool,
    subsets: Vec<Vec<u32>>,
    ids: FastMap<Vec<u32>, u32>,
    /// `next[id][sym]`, `u32::MAX` until computed.
    next: Vec<Vec<u32>>,
    accepting: Vec<bool>,
}

impl Dfa {
    fn new(nfa: Nfa, loose: bool) -> Dfa {
        let mut dfa = Dfa {
            nfa,
            loose,
            subsets: Vec::new(),
            ids: FastMap::default(),
            next: Vec::new(),
            accepting: Vec::new(),
        };
        let start = dfa.nfa.start();
        dfa.intern(start);
        dfa
    }

    fn intern(&mut self, set: Vec<u32>) -> u32 {
        if let Some(&id) = self.ids.get(&set) {
            return id;
        }
        let id = u32::try_from(self.subsets.len()).unwrap_or(u32::MAX);
        self.accepting.push(set.contains(&self.nfa.accept));
        self.ids.insert(set.clone(), id);
        self.subsets.push(set);
        self.next.push(Vec::new());
        id
    }

    fn step(&mut self, id: u32, sym: usize, syms: &[Sym]) -> u32 {
        let row = &mut self.next[id as usize];
        if row.is_empty() {
            row.resize(syms.len(), u32::MAX);
        }
        let cached = row[sym];
        if cached != u32::MAX {
            return cached;
        }
        let set = self.nfa.step(&self.subsets[id as usize], syms[sym]);
        let to = self.intern(set);
        self.next[id as usize][sym] = to;
        to
    }
}

/// What the walk knows of the current segment, to keep to normalized paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Domain {
    /// 0 empty (a segment boundary), 1 `.`, 2 `..`, 3 anything else.
    dots: u8,
    /// 0, 1 after `%`, 2 after `%` and a hex digit.
    pct: u8,
}

impl Domain {
    const START: Domain = Domain { dots: 0, pct: 0 };

    fn step(self, sym: Sym) -> Option<Domain> {
        match sym {
            // No empty, `.` or `..` segment.
            Sym::Sep => (self.dots == 3).then_some(Domain::START),
            Sym::Char(c) => {
                let dots = match (self.dots, c) {
                    (0, '.') => 1,
                    (1, '.') => 2,
                    // `.;x` and `..;x` are refused by the normalizer.
                    (1 | 2, ';') => return None,
                    _ => 3,
                };
                let pct = match (self.pct, c) {
                    (_, '%') => 1,
                    (1, h) if h.is_ascii_hexdigit() => 2,
                    // `%` and two hex digits after decoding: refused (double encoding).
                    (2, h) if h.is_ascii_hexdigit() => return None,
                    _ => 0,
                };
                Some(Domain { dots, pct })
            }
        }
    }
}

struct Machine {
    dfas: Vec<Dfa>,
    syms: Vec<Sym>,
    /// The index of `;` in `syms`, if any.
    semi: Option<usize>,
    /// The index of the segment end in `syms`.
    sep: usize,
}

impl Machine {
    fn start(&self) -> Vec<u32> {
        self.dfas
            .iter()
            .flat_map(|d| {
                if d.loose {
                    &[0u32, 0, 0][..]
                } else {
                    &[0u32][..]
                }
            })
            .copied()
            .collect()
    }

    fn step(&mut self, states: &[u32], sym: usize) -> Vec<u32> {
        let (syms, semi, sep) = (&self.syms, self.semi, self.sep);
        let mut out = Vec::with_capacity(states.len());
        let mut at = 0;
        for dfa in &mut self.dfas {
            out.push(dfa.step(states[at], sym, syms));
            if !dfa.loose {
                at += 1;
                continue;
            }
            let (cut, flags) = (states[at + 1], states[at + 2]);
            let (cut, flags) = if sym == sep {
                if flags & EMITTED != 0 {
                    (dfa.step(cut, sym, syms), 0)
                } else {
                    (cut, 0)
                }
            } else if flags & SKIPPING != 0 {
                (cut, flags)
            } else if Some(sym) == semi {
                (cut, flags | SKIPPING)
            } else {
                (dfa.step(cut, sym, syms), EMITTED)
            };
            out.push(cut);
            out.push(flags);
            at += 3;
        }
        out
    }

    fn bits(&self, states: &[u32]) -> Vec<bool> {
        let mut at = 0;
        self.dfas
            .iter()
            .map(|dfa| {
                let hit = dfa.accepting[states[at] as usize]
                    || (dfa.loose && dfa.accepting[states[at + 1] as usize]);
                at += if dfa.loose { 3 } else { 1 };
                hit
            })
            .collect()
    }
}

/// A word-at-a-time multiplicative hash (as rustc's FxHash), for the walk's
/// keys: hundreds of bytes each, hashed millions of times, where SipHash
/// dominates the walk's time. The keys derive from the owner's rules, not from
/// anyone who could choose collisions.
#[derive(Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// The characters that tell patterns apart, and one that no pattern names. In
/// the order the walk tries them, so that examples read like the rules: the
/// characters as the rules write them, then the other one, then the other
/// letter case, then `;`.
fn alphabet(matchers: &[MatcherSpec]) -> Vec<char> {
    let mut written: Vec<char> = Vec::new();
    for m in matchers {
        for seg in m.rule.path().split('/') {
            for piece in seg.split('*') {
                written.extend(String::from_utf8_lossy(&percent_decode(piece)).chars());
            }
        }
    }
    let mut out: Vec<char> = Vec::new();
    let add = |c: char, out: &mut Vec<char>| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    for &c in &written {
        add(c, &mut out);
    }
    let folded: Vec<char> = written
        .iter()
        .flat_map(|c| [c.to_ascii_lowercase(), c.to_ascii_uppercase()])
        .collect();
    let other = ('a'..='z')
        .chain('0'..='9')
        .chain('\u{C0}'..='\u{24F}')
        .find(|c| !folded.contains(c) && *c != ';' && !c.is_ascii_hexdigit())
        .unwrap_or('g');
    add(other, &mut out);
    for c in folded {
        add(c, &mut out);
    }
    add(';', &mut out);
    out
}

/// Every inhabited class (the match bits of each matcher) with its shortest path.
fn walk(matchers: &[MatcherSpec]) -> Result<BTreeMap<Vec<bool>, String>, DiffError> {
    let mut syms: Vec<Sym> = alphabet(matchers).into_iter().map(Sym::Char).collect();
    syms.push(Sym::Sep);
    let mut machine = Machine {
        dfas: matchers
            .iter()
            .map(|m| Dfa::new(Nfa::new(m.rule.path(), m.loose), m.loose))
            .collect(),
        semi: syms.iter().position(|s| *s == Sym::Char(';')),
        sep: syms.len() - 1,
        syms,
    };

    type Key = (Domain, Vec<u32>);
    let mut seen: FastMap<Key, ()> = FastMap::default();
    // (state, parent, symbol that led here)
    let mut states: Vec<(Key, usize, Option<Sym>)> = Vec::new();
    let start: Key = (Domain::START, machine.start());
    seen.insert(start.clone(), ());
    states.push((start, 0, None));
    let mut atoms: BTreeMap<Vec<bool>, String> = BTreeMap::new();
    let mut at = 0;
    while at < states.len() {
        let (domain, ms) = states[at].0.clone();
        if domain == Domain::START {
            let bits = machine.bits(&ms);
            atoms.entry(bits).or_insert_with(|| witness(&states, at));
        }
        for sym in 0..machine.syms.len() {
            let Some(d) = domain.step(machine.syms[sym]) else {
                continue;
            };
            let key = (d, machine.step(&ms, sym));
            if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(key) {
                if states.len() >= MAX_DIFF_STATES {
                    return Err(DiffError::TooComplex);
                }
                states.push((slot.key().clone(), at, Some(machine.syms[sym])));
                slot.insert(());
            }
        }
        at += 1;
    }
    Ok(atoms)
}

/// The normalized path spelled by the symbols leading to state `at`.
fn witness<K>(states: &[(K, usize, Option<Sym>)], mut at: usize) -> String {
    let mut syms = Vec::new();
    while let Some(sym) = states[at].2 {
        syms.push(sym);
        at = states[at].1;
    }
    let mut out = String::from("/");
    let mut buf = [0u8; 4];
    for sym in syms.into_iter().rev() {
        match sym {
            Sym::Sep => out.push('/'),
            Sym::Char(c) if c.is_ascii() && is_unreserved(c as u8) => out.push(c),
            Sym::Char(c) => {
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    if out.len() > 1 {
        out.pop(); // the last segment's end
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize;

    fn set(allow: &[&str], deny: &[&str]) -> RuleSet {
        let s = |v: &[&str]| v.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
        RuleSet::compile(&s(allow), &s(deny), &[]).unwrap()
    }

    #[test]
    fn reordering_and_redundant_rules_are_no_change() {
        let a = set(
            &["GET /v1/a/*", "GET /v1/a/**", "POST /x"],
            &["* /v1/a/admin"],
        );
        let b = set(&["POST /x", "GET /v1/a/**"], &["* /v1/a/admin"]);
        assert!(diff(Some(&a), Some(&b)).unwrap().is_empty());
        assert!(diff(Some(&b), Some(&a)).unwrap().is_empty());
    }

    #[test]
    fn narrowing_shows_newly_refused_with_an_example() {
        let old = set(&["GET /v1/**"], &[]);
        let new = set(&["GET /v1/customers/*"], &[]);
        let d = diff(Some(&old), Some(&new)).unwrap();
        assert!(!d.is_empty());
        assert!(d.classes.iter().all(|c| c.change == Change::NewlyRefused));
        assert!(d.classes.iter().all(|c| c.methods == ["GET"]));
        for c in &d.classes {
            let t = normalize(&c.example).unwrap();
            assert_eq!(t.path, c.example);
            assert!(old.decide("GET", &t).is_allowed());
            assert!(!new.decide("GET", &t).is_allowed());
        }
        let c = d.class_of("GET", "/v1/balance").unwrap();
        assert_eq!(c.change, Change::NewlyRefused);
        assert!(d.class_of("GET", "/v1/customers/5").is_none());
    }

    #[test]
    fn deny_rules_match_case_and_params_loosely() {
        let old = set(&["* /v1/**"], &[]);
        let new = set(&["* /v1/**"], &["* /v1/admin/**"]);
        let d = diff(Some(&old), Some(&new)).unwrap();
        for p in ["/v1/ADMIN", "/v1/admin;x/y", "/v1/;q/admin"] {
            let c = d.class_of("POST", p).unwrap_or_else(|| panic!("{p}"));
            assert_eq!(c.change, Change::NewlyRefused);
        }
        assert!(d.class_of("GET", "/v1/administrator").is_none());
    }

    #[test]
    fn a_class_only_other_letter_case_reaches_is_found() {
        // `/ADMIN` is matched by the deny rule (loosely) but not by the exact
        // allow rule `/admin*` (which `admin;x` matches too): a class of its
        // own, found only because the walk also tries the other case of every
        // letter a rule names.
        let old = set(&["GET /admin*", "GET /*"], &[]);
        let new = set(&["GET /admin*", "GET /*"], &["* /admin"]);
        let d = diff(Some(&old), Some(&new)).unwrap();
        let upper = d.class_of("GET", "/ADMIN").unwrap();
        let lower = d.class_of("GET", "/admin").unwrap();
        assert_ne!(upper, lower);
        assert!(d.class_of("GET", "/other").is_none());
        assert_eq!(d.classes.len(), 2);
    }

    #[test]
    fn absent_side_refuses_everything() {
        let new = set(&["GET /a"], &[]);
        let d = diff(None, Some(&new)).unwrap();
        assert_eq!(d.classes.len(), 1);
        assert_eq!(d.classes[0].example, "/a");
        assert_eq!(d.classes[0].methods, ["GET"]);
        assert!(diff(None, None).unwrap().is_empty());
    }

    #[test]
    fn the_walk_keeps_to_normalized_paths() {
        let walk_str = |s: &str| {
            s.chars().try_fold(Domain::START, |d, c| {
                d.step(if c == '/' { Sym::Sep } else { Sym::Char(c) })
            })
        };
        for refused in [".", "..", ".;x", "..;", "a%41", "%4F", "/"] {
            assert!(walk_str(&format!("{refused}/")).is_none(), "{refused}");
        }
        for ok in ["...", ".a", ";x", "%g1", "a%4g", "x.;"] {
            assert_eq!(walk_str(&format!("{ok}/")), Some(Domain::START), "{ok}");
        }
        // Every example is a path the normalizer keeps as it is.
        let old = set(&["GET /a/*"], &[]);
        let new = set(&["GET /a/*"], &["* /a/%25*", "* /a/caf%C3%A9", "* /a/x;y"]);
        let d = diff(Some(&old), Some(&new)).unwrap();
        assert!(d.classes.len() >= 3, "{:?}", d.classes);
        for c in &d.classes {
            assert_eq!(normalize(&c.example).unwrap().path, c.example);
            assert!(
                !new.decide("GET", &normalize(&c.example).unwrap())
                    .is_allowed()
            );
        }
    }
}
