//! The matching engine: keyword prefilter, per-rule regexes, validators,
//! decoy filter, redaction and fingerprints.

use std::collections::BTreeMap;
use std::path::Path;

use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use base64::Engine as _;
use regex::bytes::Regex;
use sha2::{Digest, Sha256};

use crate::finding::{FileContext, Finding};
use crate::rules::{Check, END, GENERIC_ASSIGNMENT, Kind, RULES, RuleDef, XML_SECRET};
use crate::{ScanError, risk, structured};

/// A compiled rule.
#[derive(Debug)]
struct Compiled {
    def: &'static RuleDef,
    re: Regex,
    s_group: Option<usize>,
    k_group: Option<usize>,
    q_group: Option<usize>,
}

/// Public description of one rule, for documentation and SARIF.
#[derive(Clone, Copy, Debug)]
pub struct RuleInfo {
    /// Stable rule id, e.g. `github-pat`.
    pub id: &'static str,
    /// Provider, e.g. `GitHub`.
    pub provider: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// `true` for the generic (name + entropy) rules.
    pub generic: bool,
}

/// A raw match before it becomes a [`Finding`]: where it is, which rule, and
/// the secret bytes (never leaves this crate).
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) rule: usize,
    pub(crate) kind: Kind,
    /// Location span in the file as stored (for decoded content: where the
    /// encoded value sits).
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) secret: Vec<u8>,
    pub(crate) context: Option<String>,
}

/// The secret scanner: the compiled rule set. Cheap to share between threads.
#[derive(Debug)]
pub struct Scanner {
    rules: Vec<Compiled>,
    /// every rule's keywords (ASCII case-insensitive, all matches reported)
    kw: DFA,
    kw_start: StateID,
    /// keyword pattern index → rule index
    kw_rule: Vec<usize>,
    generic: usize,
    /// rule index → the rule is line-local (see [`LINE_LOCAL`])
    line_local: Vec<bool>,
    /// Findings of rules `--verify` supports keep their key (until `verify`).
    keep_keys: bool,
}

impl Scanner {
    /// Compiles the built-in rule set.
    pub fn new() -> Result<Self, ScanError> {
        let mut rules = Vec::with_capacity(RULES.len());
        let mut keywords: Vec<&str> = Vec::new();
        let mut kw_rule = Vec::new();
        let mut generic = usize::MAX;
        for (i, def) in RULES.iter().enumerate() {
            let pat = format!("(?-u){}", def.pattern.replace("{E}", END));
            let re = regex::bytes::RegexBuilder::new(&pat)
                .size_limit(64 << 20)
                .dfa_size_limit(16 << 20)
                .build()
                .map_err(|e| ScanError::Rule {
                    rule: def.id,
                    reason: e.to_string(),
                })?;
            let s_group = re.capture_names().position(|n| n == Some("s"));
            let k_group = re.capture_names().position(|n| n == Some("k"));
            let q_group = re.capture_names().position(|n| n == Some("q"));
            for kw in def.keywords {
                keywords.push(kw);
                kw_rule.push(i);
            }
            if def.id == GENERIC_ASSIGNMENT {
                generic = i;
            }
            rules.push(Compiled {
                def,
                re,
                s_group,
                k_group,
                q_group,
            });
        }
        // A full DFA, walked by hand (`keywords`): no prefilter can skip ahead
        // over 300 case-insensitive keywords, so the per-byte cost of the
        // automaton is the cost of the pass.
        let kw = aho_corasick::dfa::Builder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .build(&keywords)
            .map_err(|e| ScanError::Rule {
                rule: "keywords",
                reason: e.to_string(),
            })?;
        let kw_start = kw.start_state(Anchored::No).map_err(|e| ScanError::Rule {
            rule: "keywords",
            reason: e.to_string(),
        })?;
        let line_local = rules
            .iter()
            .map(|c| LINE_LOCAL.contains(&c.def.id))
            .collect();
        Ok(Self {
            rules,
            kw,
            kw_start,
            kw_rule,
            generic,
            line_local,
            keep_keys: false,
        })
    }

    /// A scanner whose findings of rules that [`crate::verify`] supports hold
    /// their key (wiped on drop, never serialized or printed) until
    /// [`crate::verify::verify`] takes it. Only for `--verify`.
    pub fn keeping_keys_for_verify(mut self) -> Self {
        self.keep_keys = true;
        self
    }

    /// The rules this scanner applies.
    pub fn rules(&self) -> impl Iterator<Item = RuleInfo> + '_ {
        self.rules.iter().map(|c| RuleInfo {
            id: c.def.id,
            provider: c.def.provider,
            description: c.def.description,
            generic: c.def.kind == Kind::Generic,
        })
    }

    /// Scans one file's content. The risk is rated from what the path alone
    /// says (an MCP client config or not); use [`Scanner::scan_with_context`]
    /// to add git and permission facts.
    pub fn scan_bytes(&self, path: &Path, bytes: &[u8]) -> Vec<Finding> {
        let ctx = FileContext {
            mcp_config: structured::is_mcp_config(path),
            ..FileContext::default()
        };
        self.scan_with_context(path, &path.to_string_lossy(), bytes, &ctx)
    }

    /// Scans one file's content; `display` is the path written in findings.
    pub fn scan_with_context(
        &self,
        path: &Path,
        display: &str,
        bytes: &[u8],
        ctx: &FileContext,
    ) -> Vec<Finding> {
        let mut hits = Vec::new();
        self.raw_hits(bytes, structured::is_source_or_doc(path), &mut hits);
        structured::hits(self, path, bytes, &mut hits);
        let hits = dedupe(hits, &self.rules);
        let mut lines = LineIndex::new(bytes);
        let mut out = Vec::with_capacity(hits.len());
        for h in hits {
            let (line, column, line_text) = lines.locate(h.start);
            if memchr::memmem::find(line_text, b"airlock:allow").is_some() {
                continue;
            }
            let def = self.rules[h.rule].def;
            let (risk, reason) = risk::rate(h.kind, ctx);
            out.push(Finding {
                rule_id: def.id,
                provider: def.provider,
                description: def.description,
                file: display.to_owned(),
                line,
                column,
                preview: preview(def, &h.secret),
                fingerprint: fingerprint(def.id, &h.secret),
                risk,
                risk_reason: reason,
                context: h.context,
                commit: ctx.commit.clone(),
                in_head: ctx.in_head,
                verification: None,
                kind: h.kind,
                key: (self.keep_keys && crate::verify::supports(def.id))
                    .then(|| crate::verify::HeldKey::new(&h.secret)),
            });
        }
        out
    }

    /// Regex pass over the bytes as stored. In source code and documents
    /// (`quoted_only`), the generic rule only takes quoted string literals:
    /// `token: token::Paren` is a type, not a secret.
    pub(crate) fn raw_hits(&self, bytes: &[u8], quoted_only: bool, out: &mut Vec<Hit>) {
        let mut active = vec![false; self.rules.len()];
        let mut ends = Vec::new();
        if !self.keywords(bytes, &mut active, &mut ends) {
            return;
        }
        let mut lines = None;
        for (i, &on) in active.iter().enumerate() {
            if !on {
                continue;
            }
            if self.line_local[i] {
                let lines = lines.get_or_insert_with(|| keyword_lines(bytes, &mut ends));
                for line in lines.iter() {
                    self.rule_hits(i, bytes, line.clone(), quoted_only, out);
                }
            } else {
                self.rule_hits(i, bytes, 0..bytes.len(), quoted_only, out);
            }
        }
    }

    /// Which rules have a keyword in `bytes` (`active`; false when none has),
    /// and where the keywords of line-local rules end (`ends`, unordered,
    /// maybe twice).
    ///
    /// Each step of a DFA waits for the one before (the next state is a load
    /// from the table at the current one), so a file of some size is cut into
    /// [`STREAMS`] pieces walked side by side in one loop: the CPU runs the
    /// independent loads at once. A piece reads on past its end by the longest
    /// keyword less one byte, so a keyword that starts in it is found whole
    /// (a keyword that starts in the next piece is found there).
    fn keywords(&self, bytes: &[u8], active: &mut [bool], ends: &mut Vec<usize>) -> bool {
        let mut seen = Seen {
            active,
            ends,
            any: false,
        };
        let n = bytes.len();
        if n < SPLIT_FROM {
            self.walk(bytes, 0, self.kw_start, &mut seen);
            return seen.any;
        }
        let piece = n / STREAMS;
        let over = self.kw.max_pattern_len().saturating_sub(1);
        let starts: [usize; STREAMS] = std::array::from_fn(|i| i * piece);
        let ends_at: [usize; STREAMS] = std::array::from_fn(|i| {
            if i + 1 == STREAMS {
                n
            } else {
                ((i + 1) * piece + over).min(n)
            }
        });
        let common = (0..STREAMS)
            .map(|i| ends_at[i] - starts[i])
            .min()
            .unwrap_or(0);
        let [a, b, c, d] = starts.map(|s| &bytes[s..s + common]);
        let mut sid = [self.kw_start; STREAMS];
        for (j, (((&x0, &x1), &x2), &x3)) in a.iter().zip(b).zip(c).zip(d).enumerate() {
            for (k, x) in [x0, x1, x2, x3].into_iter().enumerate() {
                sid[k] = self.kw.next_state(Anchored::No, sid[k], x);
                if self.kw.is_special(sid[k]) {
                    self.on_match(sid[k], starts[k] + j + 1, &mut seen);
                }
            }
        }
        for k in 0..STREAMS {
            let from = starts[k] + common;
            self.walk(&bytes[from..ends_at[k]], from, sid[k], &mut seen);
        }
        seen.any
    }

    /// One stream of [`Scanner::keywords`]: `bytes` start at `at` in the file,
    /// the automaton in state `sid`.
    fn walk(&self, bytes: &[u8], at: usize, mut sid: StateID, seen: &mut Seen<'_>) {
        for (j, &x) in bytes.iter().enumerate() {
            sid = self.kw.next_state(Anchored::No, sid, x);
            if self.kw.is_special(sid) {
                self.on_match(sid, at + j + 1, seen);
            }
        }
    }

    /// The keywords that end at `end` (the DFA is in match state `sid`).
    #[cold]
    fn on_match(&self, sid: StateID, end: usize, seen: &mut Seen<'_>) {
        seen.any = true;
        for m in 0..self.kw.match_len(sid) {
            let r = self.kw_rule[self.kw.match_pattern(sid, m).as_usize()];
            seen.active[r] = true;
            if self.line_local[r] {
                seen.ends.push(end);
            }
        }
    }

    /// Rule `i`'s matches that lie in `span` of `bytes`.
    fn rule_hits(
        &self,
        i: usize,
        bytes: &[u8],
        span: std::ops::Range<usize>,
        quoted_only: bool,
        out: &mut Vec<Hit>,
    ) {
        let c = &self.rules[i];
        let off = span.start;
        let at = |r: std::ops::Range<usize>| r.start + off..r.end + off;
        for caps in c.re.captures_iter(&bytes[span]) {
            let Some(m) = c.s_group.and_then(|g| caps.get(g)).or_else(|| caps.get(0)) else {
                continue;
            };
            if quoted_only && c.q_group.is_some_and(|g| caps.get(g).is_none()) {
                continue;
            }
            let m_range = at(m.range());
            let whole = caps.get(0).map_or(m_range.clone(), |w| at(w.range()));
            if c.def.id == "gcp-api-key" && firebase_client_config(bytes, m_range.start) {
                continue;
            }
            // `EAAA` is a short prefix: a line of a wrapped base64 blob
            // (a test vector split into 64-character lines) starts with it
            // now and then
            if c.def.id == "square-access-token" && wrapped_base64_line(bytes, m_range.clone()) {
                continue;
            }
            let key = c.k_group.and_then(|g| caps.get(g)).map(|k| k.as_bytes());
            let Some(kind) = self.accept(i, m.as_bytes(), key, &bytes[whole.clone()]) else {
                continue;
            };
            let start = if c.def.kind == Kind::PrivateKey || c.def.kind == Kind::Encrypted {
                whole.start
            } else {
                m_range.start
            };
            out.push(Hit {
                rule: i,
                kind,
                start,
                end: m_range.end.max(start + 1),
                secret: normalize(c.def, m.as_bytes()),
                context: None,
            });
        }
    }

    /// Runs the provider rules over decoded content (base64 data, notebook
    /// cells) and maps each hit back to `at..at+len` in the stored file.
    pub(crate) fn decoded_hits(
        &self,
        decoded: &[u8],
        at: usize,
        len: usize,
        context: Option<&str>,
        out: &mut Vec<Hit>,
    ) {
        let mut inner = Vec::new();
        self.raw_hits(decoded, false, &mut inner);
        for mut h in inner {
            h.start = at;
            h.end = at + len.max(1);
            h.context = context.map(str::to_owned);
            out.push(h);
        }
    }

    /// A value found under a name by a structured reader (`.env`, JSON, YAML,
    /// TOML, MCP config): provider rules first, then the generic name +
    /// entropy gate. `at` is where the value sits in the stored file.
    pub(crate) fn structured_value(
        &self,
        rule_id: &str,
        key: &str,
        value: &[u8],
        at: usize,
        context: &str,
        out: &mut Vec<Hit>,
    ) {
        let rule = if rule_id == GENERIC_ASSIGNMENT {
            self.generic
        } else {
            match self.rules.iter().position(|c| c.def.id == rule_id) {
                Some(r) => r,
                None => return,
            }
        };
        if let Some(kind) = self.accept(rule, value, Some(key.as_bytes()), value) {
            out.push(Hit {
                rule,
                kind,
                start: at,
                end: at + value.len().max(1),
                secret: value.to_vec(),
                context: Some(context.to_owned()),
            });
        }
    }

    /// Validates one candidate; returns the kind (live/test…) when accepted.
    fn accept(&self, rule: usize, secret: &[u8], key: Option<&[u8]>, whole: &[u8]) -> Option<Kind> {
        let def = self.rules[rule].def;
        if secret.is_empty() {
            return None;
        }
        let norm;
        let body: &[u8] = if matches!(def.kind, Kind::PrivateKey | Kind::Encrypted) {
            norm = normalize(def, secret);
            if norm.len() < 64 {
                return None;
            }
            &norm
        } else {
            secret
        };
        let pre_ok = match def.check {
            Check::Generic => generic_gate(key.unwrap_or_default(), secret),
            Check::UrlPassword => password_ok(secret),
            _ => true,
        };
        if !pre_ok {
            return None;
        }
        // In a URL's userinfo a leading `*` or `&` is just a character of the
        // password (RFC 3986 sub-delims), not a YAML alias or a mask, and a
        // leading `%23` is an escaped `#`, not a `%VAR%` reference.
        let decoy_body = if def.check == Check::UrlPassword {
            let escaped = body.len() > 3
                && body[0] == b'%'
                && body[1].is_ascii_hexdigit()
                && body[2].is_ascii_hexdigit();
            if escaped {
                // `%2A%2B…` all the way is an escaping test vector, not a password
                let rest = &body[3..];
                if rest.first() == Some(&b'%') {
                    body
                } else {
                    rest
                }
            } else {
                unmasked(body)
            }
        } else {
            body
        };
        if is_decoy(decoy_body, def.hex_ok) {
            return None;
        }
        if def.min_entropy > 0.0 && entropy(body) < def.min_entropy {
            return None;
        }
        let ok = match def.check {
            Check::GithubCrc32 => github_crc_ok(secret),
            Check::Jwt => jwt_ok(secret),
            Check::DockerAuth => docker_auth_ok(secret),
            _ => true,
        };
        if !ok || (def.check == Check::UrlPassword && is_doc_url(whole)) {
            return None;
        }
        let mut kind = def.kind;
        if let Some(marker) = def.test_marker
            && memchr::memmem::find(secret, marker.as_bytes()).is_some()
        {
            kind = Kind::Test;
        }
        if def.check == Check::UrlPassword && is_local_url(whole) {
            kind = Kind::Test;
        }
        Some(kind)
    }
}

/// For private keys the secret is the base64 body: drop whitespace, header
/// lines and JSON `\n` escapes so the fingerprint does not depend on layout.
fn normalize(def: &RuleDef, secret: &[u8]) -> Vec<u8> {
    if !matches!(def.kind, Kind::PrivateKey | Kind::Encrypted)
        && def.id != "gcp-service-account-key"
    {
        return secret.to_vec();
    }
    let mut out = Vec::with_capacity(secret.len());
    let mut i = 0;
    while i < secret.len() {
        let b = secret[i];
        if b == b'\\' && secret.get(i + 1) == Some(&b'n') {
            i += 2;
            continue;
        }
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// Pieces of a file the keyword pass walks side by side, and the size from
/// which it cuts a file into pieces (below, the set-up costs more than the
/// overlap of the loads gains).
const STREAMS: usize = 4;
const SPLIT_FROM: usize = 4096;

/// What the keyword pass found so far.
struct Seen<'a> {
    active: &'a mut [bool],
    ends: &'a mut Vec<usize>,
    any: bool,
}

/// Rules whose regex runs only on the lines that hold one of their keywords,
/// not over the whole file (the generic rule's regex has no literal to skip
/// ahead with, and its keywords are in most source files; issue 18,
/// docs/benchmarks.md). Exact, not a heuristic, for a rule whose every match
/// (1) lies within one line (no class or `\s` that takes a `\n`), (2) holds
/// one of its keywords, and (3) sees nothing a line's bounds change: no `\A`,
/// `\z`, `^`, `$`, and no class that could take the `\n` after the match (as
/// `{E}` does); a `\b` is fine, since a `\n` is no word character either.
/// Then the same matches are found line by line as over the whole file.
/// `keyword_pass_finds_what_the_whole_file_pass_finds` checks it.
const LINE_LOCAL: &[&str] = &[GENERIC_ASSIGNMENT, XML_SECRET, "url-password"];

/// The lines holding the keywords that end at `ends`, each once, in order, as
/// spans `start..end` (without the final `\n`). Lines less than [`JOIN_GAP`]
/// bytes apart share a span, with the lines between them: a regex call costs
/// more than running over a short line that has no keyword, hence no match.
fn keyword_lines(bytes: &[u8], ends: &mut [usize]) -> Vec<std::ops::Range<usize>> {
    ends.sort_unstable();
    let mut lines: Vec<std::ops::Range<usize>> = Vec::new();
    // where the last line taken ends (its `\n`, or the end of the bytes)
    let mut done = 0;
    for &e in ends.iter() {
        // the keyword's last byte: never a `\n`
        let p = e - 1;
        if !lines.is_empty() && p < done {
            continue;
        }
        let start = memchr::memrchr(b'\n', &bytes[done..p]).map_or(done, |i| done + i + 1);
        let end = memchr::memchr(b'\n', &bytes[p..]).map_or(bytes.len(), |i| p + i);
        match lines.last_mut() {
            Some(last) if start - last.end <= JOIN_GAP => last.end = end,
            _ => lines.push(start..end),
        }
        done = end;
    }
    lines
}

/// See [`keyword_lines`].
const JOIN_GAP: usize = 256;

/// Removes overlapping hits, keeping the most specific (highest priority,
/// then one with a key-path context, then the earliest).
fn dedupe(mut hits: Vec<Hit>, rules: &[Compiled]) -> Vec<Hit> {
    hits.sort_by(|a, b| {
        let pa = rules[a.rule].def.priority;
        let pb = rules[b.rule].def.priority;
        pb.cmp(&pa)
            .then(b.context.is_some().cmp(&a.context.is_some()))
            .then(a.start.cmp(&b.start))
    });
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(hits.len());
    for h in hits {
        let before = taken.range(..=h.start).next_back();
        if let Some((_, &e)) = before
            && e > h.start
        {
            continue;
        }
        let after = taken.range(h.start..).next();
        if let Some((&s, _)) = after
            && s < h.end
        {
            continue;
        }
        taken.insert(h.start, h.end);
        kept.push(h);
    }
    kept.sort_by_key(|h| (h.start, h.rule));
    kept
}

/// A Google API key inside a Firebase client configuration (`firebaseConfig`
/// of a web app, `google-services.json`, `GoogleService-Info.plist`): such a
/// key ships in every copy of the app and is public by design (Firebase
/// restricts it by app and rules, not by secrecy). Known by its neighbours
/// within a few hundred bytes.
/// The match fills its line (quotes, a `\n` escape and white space aside) and
/// a line next to it is base64 of the same length that does not start like
/// the match: one line of a wrapped blob, not a token in a list of tokens.
fn wrapped_base64_line(bytes: &[u8], m: std::ops::Range<usize>) -> bool {
    fn core(line: &[u8]) -> &[u8] {
        let t = line.trim_ascii();
        let t = t.strip_suffix(b",").unwrap_or(t);
        let t = t.strip_prefix(b"\"").unwrap_or(t);
        let t = t.strip_suffix(b"\"").unwrap_or(t);
        t.strip_suffix(b"\\n").unwrap_or(t)
    }
    let line_start = memchr::memrchr(b'\n', &bytes[..m.start]).map_or(0, |i| i + 1);
    let line_end = memchr::memchr(b'\n', &bytes[m.end..]).map_or(bytes.len(), |i| m.end + i);
    let token = &bytes[m.clone()];
    if core(&bytes[line_start..line_end]) != token {
        return false;
    }
    let blob_line = |line: &[u8]| {
        let c = core(line);
        c.len() == token.len()
            && c.get(..4) != token.get(..4)
            && c.iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    };
    let prev = line_start
        .checked_sub(1)
        .map(|end| &bytes[memchr::memrchr(b'\n', &bytes[..end]).map_or(0, |i| i + 1)..end]);
    let next = (line_end < bytes.len()).then(|| {
        let rest = &bytes[line_end + 1..];
        &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())]
    });
    prev.is_some_and(blob_line) || next.is_some_and(blob_line)
}

fn firebase_client_config(bytes: &[u8], at: usize) -> bool {
    const WINDOW: usize = 600;
    const MARKERS: &[&[u8]] = &[
        b"authDomain",
        b"firebaseapp.com",
        b"firebaseio.com",
        b"messagingSenderId",
        b"GCM_SENDER_ID",
        b"mobilesdk_app_id",
    ];
    let near = &bytes[at.saturating_sub(WINDOW)..(at + WINDOW).min(bytes.len())];
    MARKERS
        .iter()
        .any(|m| memchr::memmem::find(near, m).is_some())
}

/// Incremental offset → (line, column) for ascending offsets.
struct LineIndex<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
}

impl<'a> LineIndex<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// 1-based line, 1-based column (in characters), and the line's bytes.
    fn locate(&mut self, offset: usize) -> (usize, usize, &'a [u8]) {
        let offset = offset.min(self.bytes.len());
        if offset < self.pos {
            self.pos = 0;
            self.line = 1;
            self.line_start = 0;
        }
        for nl in memchr::memchr_iter(b'\n', &self.bytes[self.pos..offset]) {
            self.line += 1;
            self.line_start = self.pos + nl + 1;
        }
        self.pos = offset;
        let line_end =
            memchr::memchr(b'\n', &self.bytes[offset..]).map_or(self.bytes.len(), |e| offset + e);
        let col = 1 + self.bytes[self.line_start..offset]
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count();
        (self.line, col, &self.bytes[self.line_start..line_end])
    }
}

/// Redacted preview: an identifying prefix and at most the last 4 characters.
pub(crate) fn preview(def: &RuleDef, secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let chars: Vec<char> = text.chars().collect();
    let (prefix, used) = match def.label {
        Some(l) => (l.to_owned(), 0),
        None => {
            let p = def
                .keywords
                .iter()
                .find(|k| secret.starts_with(k.as_bytes()))
                .map(|k| k.len())
                .unwrap_or_else(|| segment_prefix(secret));
            (String::from_utf8_lossy(&secret[..p]).into_owned(), p)
        }
    };
    let body = chars.len().saturating_sub(used);
    let tail = match body {
        0..8 => 0,
        8..16 => 2,
        _ => 4,
    };
    let tail: String = chars[chars.len() - tail..].iter().collect();
    format!("{prefix}…{tail}")
}

/// Leading `abc-` / `abc_` segments (lowercase, ≤ 8 chars each, ≤ 3 of them).
fn segment_prefix(s: &[u8]) -> usize {
    let mut end = 0;
    for _ in 0..3 {
        let rest = &s[end..];
        let seg = rest
            .iter()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .count();
        if seg == 0 || seg > 8 {
            break;
        }
        match rest.get(seg) {
            Some(b'-' | b'_' | b'.') => end += seg + 1,
            _ => break,
        }
    }
    if end * 2 > s.len() { 0 } else { end }
}

/// SHA-256 over a domain tag, the rule id and the secret; 32 hex characters.
/// The path is deliberately not part of it: the same secret keeps its
/// fingerprint when the file moves or the line changes.
pub(crate) fn fingerprint(rule_id: &str, secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"airlock-scan/v1\0");
    h.update(rule_id.as_bytes());
    h.update(b"\0");
    h.update(secret);
    hex::encode(&h.finalize()[..16])
}

/// Shannon entropy in bits per byte.
pub(crate) fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

const PLACEHOLDERS: &[&str] = &[
    "example",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "your_",
    "your-",
    "yourkey",
    "yourtoken",
    "yoursecret",
    "${",
    "{{",
    "}}",
    "%(",
    "airlock://",
    "op://",
    "vault:",
    "xxxx",
    "****",
    "....",
    "\u{2026}",
    "dummy",
    "redacted",
    "sample",
    "insert_",
    "replace_",
    "replaceme",
    "_here",
    "-here",
    "notreal",
    "not_real",
    "not-a-real",
    "foobar",
    "secretsmanager:",
    "abcdefgh",
    "12345678",
    // test values that say what they are for (`…SECRETTOKENMARKERzzz`)
    "marker",
];

/// Placeholders, documented example keys, references, digests, UUIDs.
pub(crate) fn is_decoy(s: &[u8], hex_ok: bool) -> bool {
    let lower = s.to_ascii_lowercase();
    let upper = s.to_ascii_uppercase();
    // Placeholders are written in one case (`your_api_key`, `YOUR_API_KEY`);
    // matching case-sensitively keeps random mixed-case tokens from tripping
    // over a short word by chance. Long bodies (private keys) only check the
    // long placeholders.
    let hit = |p: &&str| {
        (s.len() <= 200 || p.len() >= 7)
            && (memchr::memmem::find(s, p.as_bytes()).is_some()
                || memchr::memmem::find(s, p.to_ascii_uppercase().as_bytes()).is_some())
    };
    if PLACEHOLDERS.iter().any(hit)
        || memchr::memmem::find(&upper, b"EXAMPLE").is_some()
        || memchr::memmem::find(s, b"IOSFODNN7").is_some()
    {
        return true;
    }
    if matches!(s.first(), Some(b'$' | b'<' | b'@' | b'&' | b'*')) {
        return true;
    }
    // `%VAR%`, `%(name)s`, `%{x}`: a reference or a format field; `%3A%2F…`:
    // percent-encoded text (URL test vectors); a random password may begin
    // with `%` too (`%lPKeV5…`). URL passwords are unescaped before this.
    if s.first() == Some(&b'%')
        && (s.len() < 4
            || s.ends_with(b"%")
            || matches!(s.get(1), Some(b'(' | b'{'))
            || (s[1].is_ascii_hexdigit() && s[2].is_ascii_hexdigit()))
    {
        return true;
    }
    // a format-string field: `f"postgres://{user}:{password}@{host}"`, `{pw}`
    if s.len() >= 3 && s.starts_with(b"{") && s.ends_with(b"}") {
        return true;
    }
    for integrity in ["sha512-", "sha384-", "sha256-", "sha1-"] {
        if lower.starts_with(integrity.as_bytes()) {
            return true;
        }
    }
    // Very few distinct characters: `aaaaaaaa`, `0000-0000`, `abababab`.
    let mut seen = [false; 256];
    let distinct = s
        .iter()
        .filter(|&&b| !std::mem::replace(&mut seen[b as usize], true))
        .count();
    if s.len() >= 8 && distinct <= 3 {
        return true;
    }
    if !hex_ok && (is_uuid(s) || is_hex_digest(s)) {
        return true;
    }
    false
}

fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

fn is_hex_digest(s: &[u8]) -> bool {
    matches!(s.len(), 32 | 40 | 56 | 64 | 96 | 128) && s.iter().all(u8::is_ascii_hexdigit)
}

const NON_SECRET_SUFFIXES: &[&str] = &[
    "name",
    "_id",
    "id",
    "type",
    "file",
    "path",
    "url",
    "uri",
    "env",
    "var",
    "length",
    "len",
    "size",
    "count",
    "field",
    "header",
    "prefix",
    "expires",
    "expiry",
    "ttl",
    "_at",
    "endpoint",
    "limit",
    "format",
    "mode",
    "policy",
    "ref",
    "hash",
    "sha",
    "digest",
    "checksum",
    "version",
    "timeout",
    "enabled",
    "required",
    "tokens",
    "index",
    "regex",
    "pattern",
    "label",
    "hint",
    "kind",
    "scope",
    "scopes",
    "issuer",
    "audience",
    "algorithm",
    "alg",
    "location",
    "dir",
    "class",
    "provider",
    "source",
    "store",
    "helper",
    "command",
    "cmd",
    "method",
    "usage",
    "rotation",
    "arn",
];

/// Names of values that are public by design (`STRIPE_PUBLISHABLE_KEY`,
/// `public_key`): what they hold is meant to be seen.
const PUBLIC_NAMES: &[&str] = &[
    "publishable",
    "public_key",
    "publickey",
    "public-key",
    "pubkey",
];

/// Prefixes of keys that are public by design: Stripe publishable keys,
/// PostHog project keys, Supabase publishable keys.
/// Mapbox public tokens (`pk.eyJ…`) too: they are made for browsers.
const PUBLIC_PREFIXES: &[&str] = &["pk_live_", "pk_test_", "phc_", "sb_publishable_", "pk.eyJ"];

/// Generic rule: the name must say "secret", the value must look random.
pub(crate) fn generic_gate(key: &[u8], value: &[u8]) -> bool {
    let key = key.to_ascii_lowercase();
    let key = key.trim_ascii_end();
    let key = key.strip_suffix(b"\"").unwrap_or(key);
    if NON_SECRET_SUFFIXES
        .iter()
        .any(|s| key.ends_with(s.as_bytes()))
    {
        return false;
    }
    if value.len() < 10 || value.len() > 256 {
        return false;
    }
    // a table of names (`{"setAttr-Token-B0Prime", "setAttr-Token-B0Prime"}`),
    // a WebSocket handshake nonce (`Sec-WebSocket-Key`)
    if value.eq_ignore_ascii_case(key) || memchr::memmem::find(key, b"websocket").is_some() {
        return false;
    }
    // Human language, not a generated secret: `API-Schlüssel`, `APIトークン`.
    if !value.is_ascii() {
        return false;
    }
    // Public by design: publishable keys go into web pages.
    if PUBLIC_NAMES
        .iter()
        .any(|w| memchr::memmem::find(key, w.as_bytes()).is_some())
        || PUBLIC_PREFIXES
            .iter()
            .any(|p| value.starts_with(p.as_bytes()))
    {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if [
        &b"http://"[..],
        b"https://",
        b"file://",
        b"/",
        b"./",
        b"../",
        b"~/",
        // the same paths percent-encoded (`.%2Ftests%2Fcerts%2Fclient.key`)
        b".%2f",
        b"..%2f",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
        || value.contains(&b'\\')
    {
        return false;
    }
    if matches!(
        &lower[..],
        b"true" | b"false" | b"null" | b"none" | b"undefined"
    ) {
        return false;
    }
    // code, not data: `a::b`, `a->b`, `:Paren`, `0x8009030E_u32`, `a b`
    if value.iter().any(u8::is_ascii_whitespace)
        || memchr::memmem::find(value, b"::").is_some()
        || memchr::memmem::find(value, b"->").is_some()
        || value.starts_with(b":")
        || lower.starts_with(b"0x")
    {
        return false;
    }
    let (mut lo, mut up, mut dg, mut ot) = (false, false, false, false);
    for &b in value {
        match b {
            b'a'..=b'z' => lo = true,
            b'A'..=b'Z' => up = true,
            b'0'..=b'9' => dg = true,
            _ => ot = true,
        }
    }
    // a lookup written as code: `os.environ['API_TOKEN']`, `os.getenv("X")`,
    // `ENV.fetch("X")`, `process.env["X"]`
    if let Some(open) = value.iter().position(|&b| b == b'[' || b == b'(')
        && open > 0
        && value[..open]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$'))
        && value[0].is_ascii_alphabetic()
        && matches!(value.last(), Some(b']' | b')'))
    {
        return false;
    }
    // identifiers and references: `process.env.TOKEN`, `settings.SECRET_KEY`, `my-app-name`
    let identifier = value
        .iter()
        .all(|&b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.' | b'-'));
    if identifier && (ot || !(lo && up)) {
        return false;
    }
    // JWT-shaped values belong to the `jwt` rule (which validates them), Google
    // API keys to `gcp-api-key` (which knows Firebase client configs);
    // `hijklmnop…` alphabets are tables, not secrets
    if is_name_like(value)
        || is_camel_words(value)
        || value.starts_with(b"eyJ")
        || value.starts_with(b"AIza")
        || has_ascending_run(value, 5)
    {
        return false;
    }
    // `Protocol=https;AccountKey=…`, `TOKEN=abc`: a `k=v` list or line, not
    // one value. A password may hold `=` too (`3=Tyj3IPqb…`): it is a `k=v`
    // only when `;`/`&` separate pairs or a name comes before the `=`.
    if let Some(last) = value.iter().rposition(|&b| b != b'=')
        && let Some(eq) = value[..last].iter().position(|&b| b == b'=')
    {
        let name = &value[..eq];
        // (`ww=jCRSy…`: two letters before `=` are as likely a password's own)
        let named = name.len() >= 3
            && name
                .iter()
                .all(|&b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-' | b'.'))
            && (!name.iter().any(u8::is_ascii_lowercase)
                || !name.iter().any(u8::is_ascii_uppercase)
                || name.iter().any(|b| matches!(b, b'_' | b'-' | b'.'))
                || is_camel_words(name));
        if named || value.contains(&b';') || value.contains(&b'&') {
            return false;
        }
    }
    // a container image pinned by digest: `ghcr.io/acme/api@sha256:…`
    if memchr::memmem::find(&lower, b"sha256:").is_some() {
        return false;
    }
    if u8::from(lo) + u8::from(up) + u8::from(dg) + u8::from(ot) < 2 {
        return false;
    }
    // A name that says only "key" (`APP_KEY`, `"key"`) is weak context: demand a
    // value that is long and clearly random.
    const STRONG: &[&str] = &[
        "pass",
        "pwd",
        "secret",
        "token",
        "api",
        "access",
        "private",
        "auth",
        "cred",
        "signing",
        "encryption",
        "master",
        "client",
    ];
    let strong = STRONG
        .iter()
        .any(|w| memchr::memmem::find(key, w.as_bytes()).is_some());
    if !strong
        && (value.len() < 20 || value.iter().all(u8::is_ascii_hexdigit) || entropy(value) < 4.0)
    {
        return false;
    }
    let threshold = if value.len() < 16 { 3.0 } else { 3.5 };
    if entropy(value) < threshold {
        return false;
    }
    // A pure-hex value under a name that is about digests is a digest.
    if value.iter().all(u8::is_ascii_hexdigit)
        && (key.ends_with(b"sum") || key.ends_with(b"integrity"))
    {
        return false;
    }
    true
}

/// `Win32_Security`, `progress-test-1`, `m2m-access-token-12345`: names made
/// of words, not random. At least two `_`/`-`/`.`-separated segments, three
/// quarters of them word-like (letters in one case or Capitalized, then at
/// most three digits; or a short number).
fn is_name_like(value: &[u8]) -> bool {
    let segs: Vec<&[u8]> = value
        .split(|b| matches!(b, b'_' | b'-' | b'.'))
        .filter(|s| !s.is_empty())
        .collect();
    if segs.len() < 2 {
        return false;
    }
    let wordlike = |s: &&&[u8]| {
        if s.len() > 20 {
            return false;
        }
        let letters = s.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let (l, d) = s.split_at(letters);
        if !d.iter().all(u8::is_ascii_digit) {
            return false;
        }
        if l.is_empty() {
            return d.len() <= 6;
        }
        let one_case = l.iter().all(u8::is_ascii_lowercase)
            || l.iter().all(u8::is_ascii_uppercase)
            || (l[0].is_ascii_uppercase() && l[1..].iter().all(u8::is_ascii_lowercase));
        one_case && d.len() <= 3
    };
    segs.iter().filter(wordlike).count() * 4 >= segs.len() * 3
}

/// `abcde`, `12345`, `KLMNO`: a run of `n` consecutive ascending characters.
fn has_ascending_run(value: &[u8], n: usize) -> bool {
    let mut run = 1;
    for w in value.windows(2) {
        if w[1] == w[0].wrapping_add(1) && w[0].is_ascii_alphanumeric() {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            run = 1;
        }
    }
    false
}

/// `Credential`, `SecretValue`, `AccessTokenV2`: CamelCase words — every upper-case
/// letter starts a run of at least two lower-case ones.
fn is_camel_words(value: &[u8]) -> bool {
    let letters = value.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let (word, rest) = value.split_at(letters);
    if word.is_empty() || rest.len() > 3 || !rest.iter().all(u8::is_ascii_digit) {
        return false;
    }
    word.iter().enumerate().all(|(i, b)| {
        !b.is_ascii_uppercase()
            || (word.get(i + 1).is_some_and(u8::is_ascii_lowercase)
                && word.get(i + 2).is_none_or(u8::is_ascii_lowercase))
    })
}

const DEFAULT_PASSWORDS: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "secret",
    "changeme",
    "root",
    "admin",
    "postgres",
    "mysql",
    "redis",
    "mongo",
    "mongodb",
    "test",
    "testing",
    "user",
    "username",
    "pw",
    "pwd",
    "example",
    "guest",
    "default",
    "dev",
    "development",
    "local",
    "localhost",
    "docker",
    "demo",
    "sample",
    "123456",
    "12345678",
    "qwerty",
    "letmein",
    "pass123",
    "password123",
    "p@ssw0rd",
    "token",
    "x-oauth-basic",
    "foo",
    "bar",
    "baz",
    "hunter2",
    "secret1",
    "secret123",
    "opensesame",
    // xkcd 936's example passphrase, the usual one in docs
    "correct horse battery staple",
];

/// URL and netrc passwords: not a reference, not a default password.
fn password_ok(pw: &[u8]) -> bool {
    // as written in a URL (`p%40ssw0rd`); `[user[:password]@]` is the
    // syntax line of a manual, not a password
    let lower = percent_decoded(pw.strip_suffix(b"]").unwrap_or(pw)).to_ascii_lowercase();
    // one or two characters: `u:p@host` in a usage line
    if pw.len() < 3 || DEFAULT_PASSWORDS.iter().any(|p| lower == p.as_bytes()) {
        return false;
    }
    if pw.iter().all(|&b| b == b'*' || b == b'x' || b == b'X')
        || memchr::memmem::find(&lower, b"foo").is_some()
    {
        return false;
    }
    // `user:pass@host` in docs, and `:port@` mis-parses
    !pw.iter().all(u8::is_ascii_digit) || pw.len() > 6
}

/// `%XX` escapes decoded; anything else (a lone `%`, `%zz`) kept as it is.
fn percent_decoded(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) if s[i] == b'%' => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(s[i]);
                i += 1;
            }
        }
    }
    out
}

/// The host of a URL-ish match, lower case: after the last `@`, up to the
/// port, path or query; `tcp(…)`/`unix(…)` (Go MySQL DSNs) unwrapped,
/// `[v6]` kept whole. A Unix socket (`@/db?host=/run/…`, `@unix(…)`) gives `/`.
fn url_host(whole: &[u8]) -> Vec<u8> {
    let Some(at) = memchr::memrchr(b'@', whole) else {
        return Vec::new();
    };
    let rest = whole[at + 1..].to_ascii_lowercase();
    if rest.starts_with(b"/") || rest.starts_with(b"unix(") {
        return b"/".to_vec();
    }
    let rest = rest.strip_prefix(b"tcp(").unwrap_or(&rest);
    let end = if rest.starts_with(b"[") {
        memchr::memchr(b']', rest).map_or(rest.len(), |e| e + 1)
    } else {
        rest.iter()
            .position(|b| matches!(b, b'/' | b':' | b'?' | b'#' | b')' | b','))
            .unwrap_or(rest.len())
    };
    rest[..end].to_vec()
}

/// Documentation hosts (`example.com`, RFC 2606 and 6761 names) and
/// stand-in hosts (`host`, `foo.bar`), compared label by label: a real host
/// may well contain `host` or `example` (`build-host.corp`, `examplecorp.com`).
fn is_doc_url(whole: &[u8]) -> bool {
    let host = url_host(whole);
    let labels: Vec<&[u8]> = host.split(|&b| b == b'.').collect();
    let last = labels.last().copied().unwrap_or_default();
    labels.iter().any(|l| {
        matches!(
            *l,
            b"example"
                | b"foo"
                | b"bar"
                | b"baz"
                | b"host"
                | b"hostname"
                | b"domain"
                | b"your-host"
                | b"yourhost"
                | b"your-domain"
                | b"yourdomain"
                | b"mydomain"
                | b"yourcompany"
                | b"your-server"
                | b"yourserver"
        )
    }) || matches!(last, b"test" | b"invalid")
        || (host.len() == 1 && host[0].is_ascii_alphanumeric())
        || matches!(&host[..], b"myhost" | b"dbhost")
}

fn is_local_url(whole: &[u8]) -> bool {
    let host = url_host(whole);
    host == b"/"
        || [
            &b"localhost"[..],
            b"127.0.0.1",
            b"0.0.0.0",
            b"[::1]",
            b"host.docker.internal",
        ]
        .contains(&&host[..])
        || host.ends_with(b".localhost")
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// GitHub (and npm) tokens: `prefix_` + 30 random + 6 base62 digits of the
/// CRC32 of the random part.
pub(crate) fn github_crc_ok(token: &[u8]) -> bool {
    let Some(us) = memchr::memchr(b'_', token) else {
        return false;
    };
    let rest = &token[us + 1..];
    if rest.len() != 36 {
        return false;
    }
    let (random, sum) = rest.split_at(30);
    let mut value: u64 = 0;
    for &c in sum {
        let Some(d) = BASE62.iter().position(|&b| b == c) else {
            return false;
        };
        value = value * 62 + d as u64;
    }
    value == u64::from(crc32fast::hash(random))
}

/// The 6-character base62 checksum of a GitHub-style token body.
pub(crate) fn github_checksum(random: &[u8]) -> String {
    let mut v = u64::from(crc32fast::hash(random));
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut chk: u32 = 1;
    for v in values {
        let b = chk >> 25;
        chk = ((chk & 0x1ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (b >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// Bech32 checksum (BIP-173) as used by age identities (the corpus tests
/// check their generator with it; the scanner does not require it).
#[cfg(test)]
pub(crate) fn bech32_ok(s: &[u8]) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some(sep) = memchr::memrchr(b'1', &lower) else {
        return false;
    };
    let (hrp, data) = (&lower[..sep], &lower[sep + 1..]);
    if data.len() < 6 {
        return false;
    }
    let mut vals = Vec::with_capacity(hrp.len() * 2 + 1 + data.len());
    vals.extend(hrp.iter().map(|c| c >> 5));
    vals.push(0);
    vals.extend(hrp.iter().map(|c| c & 31));
    for c in data {
        match BECH32.iter().position(|b| b == c) {
            Some(v) => vals.push(v as u8),
            None => return false,
        }
    }
    bech32_polymod(vals.into_iter()) == 1
}

/// Appends the bech32 checksum for `hrp` + 5-bit `data` (for the test corpus).
pub(crate) fn bech32_encode(hrp: &str, data: &[u8]) -> String {
    let hrp_l = hrp.to_ascii_lowercase();
    let h = hrp_l.as_bytes();
    let mut vals: Vec<u8> = h.iter().map(|c| c >> 5).collect();
    vals.push(0);
    vals.extend(h.iter().map(|c| c & 31));
    vals.extend_from_slice(data);
    vals.extend_from_slice(&[0; 6]);
    let pm = bech32_polymod(vals.into_iter()) ^ 1;
    let mut out = String::from(hrp);
    out.push('1');
    for &d in data {
        out.push(BECH32[d as usize & 31] as char);
    }
    for i in 0..6 {
        out.push(BECH32[((pm >> (5 * (5 - i))) & 31) as usize] as char);
    }
    out.to_ascii_uppercase()
}

fn b64url(part: &[u8]) -> Option<Vec<u8>> {
    let trimmed: Vec<u8> = part.iter().copied().filter(|&b| b != b'=').collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
}

fn jwt_ok(token: &[u8]) -> bool {
    let mut parts = token.split(|&b| b == b'.');
    let (Some(h), Some(p)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(header) = b64url(h).and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
    else {
        return false;
    };
    if header.get("alg").is_none() {
        return false;
    }
    let Some(payload) =
        b64url(p).and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
    else {
        return false;
    };
    if !payload.is_object() {
        return false;
    }
    // jwt.io's sample token, and Supabase anon keys (public by design)
    let s = |k: &str| {
        payload
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    if s("sub") == "1234567890" && s("name") == "John Doe" {
        return false;
    }
    s("role") != "anon"
}

fn docker_auth_ok(v: &[u8]) -> bool {
    let Ok(d) = base64::engine::general_purpose::STANDARD.decode(v) else {
        return false;
    };
    match memchr::memchr(b':', &d) {
        Some(i) => {
            i + 1 < d.len() && password_ok(&d[i + 1..]) && !is_decoy(unmasked(&d[i + 1..]), true)
        }
        None => false,
    }
}

/// A password's leading `*` or `&` is a character of it (in a URL's userinfo,
/// RFC 3986 sub-delims; after `user:` in a Docker `auth`), not a YAML alias or
/// a mask: the decoy filter judges the rest. `**…` stays a mask.
fn unmasked(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"*")
        .or_else(|| body.strip_prefix(b"&"))
        .filter(|rest| !rest.starts_with(b"*"))
        .unwrap_or(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn github_checksum_round_trip() {
        let random = b"0123456789abcdefghijABCDEFGHIJ";
        let token = format!(
            "ghp_{}{}",
            std::str::from_utf8(random).unwrap(),
            github_checksum(random)
        );
        assert!(github_crc_ok(token.as_bytes()));
        assert!(!github_crc_ok(&token.as_bytes()[..token.len() - 1]));
        let mut bad = token.into_bytes();
        bad[5] ^= 1;
        assert!(!github_crc_ok(&bad));
    }

    #[test]
    fn bech32_round_trip() {
        let data: Vec<u8> = (0..52).map(|i| (i * 7 % 32) as u8).collect();
        let key = bech32_encode("AGE-SECRET-KEY-", &data);
        assert!(key.starts_with("AGE-SECRET-KEY-1"));
        assert!(bech32_ok(key.as_bytes()));
        let mut bad = key.into_bytes();
        let i = bad.len() - 3;
        bad[i] = if bad[i] == b'Q' { b'P' } else { b'Q' };
        assert!(!bech32_ok(&bad));
    }

    #[test]
    fn name_like_values() {
        assert!(is_name_like(b"Win32_Security"));
        assert!(is_name_like(b"progress-test-1"));
        assert!(is_name_like(b"m2m-access-token-12345"));
        assert!(!is_name_like(b"aB3_x-Kq9zT"));
        assert!(!is_name_like(b"Xk29!pQz7#Lm4vB8"));
        assert!(is_name_like(b"Win32_Security_Authorization"));
        assert!(is_camel_words(b"Credential"));
        assert!(!is_camel_words(b"kQzXvBnMrTpLwYsHjDfG"));
    }

    #[test]
    fn previews_reveal_little() {
        let rule = RULES.iter().find(|r| r.id == "stripe-secret-key").unwrap();
        assert_eq!(
            preview(rule, b"sk_live_abcdefghijklmnopqrstuvwx"),
            "sk_live_…uvwx"
        );
        let generic = RULES.iter().find(|r| r.id == GENERIC_ASSIGNMENT).unwrap();
        assert_eq!(preview(generic, b"short-pw1"), "…w1");
        assert_eq!(preview(generic, b"tiny"), "…");
        let openai = RULES.iter().find(|r| r.id == "openai-api-key").unwrap();
        assert!(
            preview(
                openai,
                b"sk-proj-AbCdEfGhIjKlMnOpQrStT3BlbkFJAbCdEfGhIjKlMnOpQrSt"
            )
            .starts_with("sk-proj-…")
        );
    }

    #[test]
    fn decoys() {
        assert!(is_decoy(b"AKIAIOSFODNN7EXAMPLE", false));
        assert!(is_decoy(b"${OPENAI_API_KEY}", false));
        assert!(is_decoy(
            b"sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            false
        ));
        assert!(is_decoy(b"550e8400-e29b-41d4-a716-446655440000", false));
        assert!(!is_decoy(b"550e8400-e29b-41d4-a716-446655440000", true));
        assert!(is_decoy(b"da39a3ee5e6b4b0d3255bfef95601890afd80709", false));
        assert!(!is_decoy(b"Xk29pQz7Lm4vB8nR", false));
    }

    /// The pass as it was before issue 18's throughput work: an overlapping
    /// search for the keywords with the library's own iterator, then every
    /// active rule's regex over the whole file.
    fn whole_file_hits(
        scanner: &Scanner,
        ac: &aho_corasick::AhoCorasick,
        bytes: &[u8],
        quoted_only: bool,
    ) -> Vec<Hit> {
        let mut active = vec![false; scanner.rules.len()];
        for m in ac.find_overlapping_iter(bytes) {
            active[scanner.kw_rule[m.pattern().as_usize()]] = true;
        }
        let mut out = Vec::new();
        for (i, on) in active.into_iter().enumerate() {
            if on {
                scanner.rule_hits(i, bytes, 0..bytes.len(), quoted_only, &mut out);
            }
        }
        out
    }

    fn summary(hits: &[Hit]) -> Vec<(usize, usize, usize, Vec<u8>, Kind)> {
        hits.iter()
            .map(|h| (h.rule, h.start, h.end, h.secret.clone(), h.kind))
            .collect()
    }

    /// The keyword pass walks a file in pieces side by side and runs the
    /// line-local rules on keyword lines only: it must find exactly what one
    /// walk and whole-file regexes find, also when a keyword or a secret
    /// straddles the cut between two pieces, and with `\r\n`, long lines,
    /// no final newline, keywords in values and several secrets on a line.
    #[test]
    fn keyword_pass_finds_what_the_whole_file_pass_finds() {
        let scanner = Scanner::new().unwrap();
        // a renamed rule would silently leave the list
        assert_eq!(
            scanner.line_local.iter().filter(|&&l| l).count(),
            LINE_LOCAL.len()
        );
        let keywords: Vec<&str> = RULES
            .iter()
            .flat_map(|r| r.keywords.iter().copied())
            .collect();
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&keywords)
            .unwrap();
        let snippets: &[&str] = &[
            "password = \"Xk29pQz7Lm4vB8nR\"",
            "api_key: 'aB3xK9mQ2zT7wE5r'",
            "  <apiKey>Zk29pQz7Lm4vB8nRq1</apiKey>",
            "DATABASE_URL=postgres://app:S3cr3tPw9x@db.internal:5432/x",
            "see https://deploy:Qw8rT5yU2iO@build.corp.net/path and smtp://u:Zx9Cv8Bn7M@mail.io",
            "let key = map.get(&k); token: token::Paren,",
            "ghp_0123456789abcdefghijABCDEFGHIJ3z0KXa \"secret\": \"Hj7Kl9Mn2Bv4Cx6Z\"",
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9sW3tL8u",
            "x = 1 // a comment with Token and KEY but no value",
            "auth_token => \"r8_Tq3Lm9Zx2Vb7Nc4Kd1Fg6Hj5Sa0Pw8Ey3Ru\"",
            "twilio AC0123456789abcdef0123456789abcdef sc_abcdefghijkl.abcde.acc_abcdefghijklmnopqrst.ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        ];
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let filler = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ 0123456789 =:,;(){}<>'\"_-./";
        let mut total = 0;
        for case in 0..120 {
            let size = [64, 900, 4096, 5000, 20_000, 70_000][case % 6] + next(3000);
            let mut text = Vec::with_capacity(size + 256);
            while text.len() < size {
                match next(6) {
                    0 | 1 => text.extend_from_slice(snippets[next(snippets.len())].as_bytes()),
                    2 => text.extend((0..next(200)).map(|_| filler[next(filler.len())])),
                    3 => text.extend((0..next(4000)).map(|_| filler[next(filler.len())])),
                    _ => {}
                }
                text.extend_from_slice(if next(4) == 0 { b"\r\n" } else { b"\n" });
            }
            if case % 2 == 0 {
                // no final newline
                while text.last().is_some_and(|b| b.is_ascii_whitespace()) {
                    text.pop();
                }
            }
            // a secret right across each cut between the pieces
            let n = text.len();
            for k in 1..STREAMS {
                let cut = k * (n / STREAMS);
                let snippet = snippets[next(snippets.len())].as_bytes();
                let at = cut.saturating_sub(next(snippet.len())).min(n);
                text.splice(at..at, snippet.iter().copied());
            }
            for quoted_only in [false, true] {
                let mut fast = Vec::new();
                scanner.raw_hits(&text, quoted_only, &mut fast);
                let slow = whole_file_hits(&scanner, &ac, &text, quoted_only);
                assert_eq!(summary(&fast), summary(&slow), "case {case}");
                total += slow.len();
            }
        }
        // the cases do hold secrets of the line-local rules and of others
        assert!(total > 400, "{total}");
        // one secret alone in a file of digits, at every offset across each
        // cut: a keyword cut in two must still be found by the piece it starts in
        let digits: Vec<u8> = b"0123456789 "
            .iter()
            .copied()
            .cycle()
            .take(SPLIT_FROM)
            .collect();
        let mut found = 0;
        for snippet in snippets {
            for k in 1..STREAMS {
                let cut = k * (digits.len() / STREAMS);
                for back in 0..=snippet.len() {
                    let mut text = digits.clone();
                    text[cut - back..cut - back + snippet.len()]
                        .copy_from_slice(snippet.as_bytes());
                    let mut fast = Vec::new();
                    scanner.raw_hits(&text, false, &mut fast);
                    let slow = whole_file_hits(&scanner, &ac, &text, false);
                    assert_eq!(
                        summary(&fast),
                        summary(&slow),
                        "{snippet} at cut {k} - {back}"
                    );
                    found += usize::from(!slow.is_empty());
                }
            }
        }
        assert!(found > 300, "{found}");
    }

    #[test]
    fn entropy_bounds() {
        assert_eq!(entropy(b""), 0.0);
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-9);
    }
}
