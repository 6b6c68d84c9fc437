//! The chain: record MACs, the key that makes them, and the anchor that pins the
//! chain's head outside the log.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::AuditError;
use crate::files;
use crate::record::split_line;

/// The anchor's file name inside the state directory.
pub const ANCHOR_FILE: &str = "audit-head";

/// Domain separation: an anchor MAC can never be mistaken for a record MAC (record
/// bodies start with `{`).
const ANCHOR_CONTEXT: &[u8] = b"airlock-audit anchor v1\n";

/// An HMAC-SHA256 value: a record's `mac` or `prev`. Written as 64 lowercase hex
/// digits; any other spelling is refused, so no byte of a line can change without
/// the change being detected.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub(crate) [u8; 32]);

impl Mac {
    /// The `prev` of the first record.
    pub const ZERO: Mac = Mac([0; 32]);

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Strict decoding: exactly 64 lowercase hex digits.
    pub(crate) fn from_hex_bytes(hex: &[u8]) -> Option<Mac> {
        if hex.len() != 64 || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(Mac(out))
    }
}

/// A [`Mac`] written other than as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not 64 lowercase hex digits")]
#[non_exhaustive]
pub struct ParseMacError {
    /// The text given.
    pub input: String,
}

impl FromStr for Mac {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Mac, ParseMacError> {
        Mac::from_hex_bytes(s.as_bytes()).ok_or_else(|| ParseMacError {
            input: s.to_string(),
        })
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({})", self.to_hex())
    }
}

/// The audit key, ready to MAC. Only the keyed HMAC state is kept, not the raw key.
#[derive(Clone)]
pub(crate) struct Keyed(Hmac<Sha256>);

impl Keyed {
    pub(crate) fn new(key: &[u8; 32]) -> Keyed {
        // HMAC accepts keys of any length; a 32-byte key cannot be refused.
        Keyed(<Hmac<Sha256> as hmac::Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()))
    }

    /// The MAC of a record body.
    pub(crate) fn record(&self, body: &[u8]) -> Mac {
        let mut h = self.0.clone();
        h.update(body);
        Mac(h.finalize().into_bytes().into())
    }

    /// Constant-time check of a record body against its claimed MAC.
    pub(crate) fn verify_record(&self, body: &[u8], mac: &Mac) -> bool {
        let mut h = self.0.clone();
        h.update(body);
        h.verify_slice(&mac.0).is_ok()
    }

    fn anchor(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut h = self.0.clone();
        h.update(ANCHOR_CONTEXT);
        h.update(body);
        h
    }
}

impl fmt::Debug for Keyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyed(..)")
    }
}

/// The chain's head as recorded in `state/audit-head`: the newest record that is
/// known to be durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// Its MAC.
    pub(crate) head: Mac,
    /// The log file that holds it (`audit-000003.jsonl`).
    pub(crate) file: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorWire {
    seq: u64,
    head: String,
    file: String,
}

/// What [`Anchor::advance`] did to the anchor file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Advanced {
    /// The file already named this record or a newer one; it was left alone.
    Already,
    /// The line was overwritten in place and is not synced yet.
    InPlace,
    /// The file was replaced atomically and its content synced.
    Replaced,
}

/// What is found at the anchor path.
#[derive(Debug)]
pub(crate) enum AnchorState {
    /// No anchor file.
    Missing,
    /// An anchor that does not parse (reason).
    Unreadable(String),
    /// An anchor whose own MAC does not verify with this key.
    BadMac,
    /// A good anchor.
    Valid(Anchor),
}

impl Anchor {
    /// The file content: one JSON line, MAC'd like a record.
    pub(crate) fn to_bytes(&self, key: &Keyed) -> Vec<u8> {
        let wire = AnchorWire {
            seq: self.seq,
            head: self.head.to_hex(),
            file: self.file.clone(),
        };
        let body = serde_json::to_vec(&wire).unwrap_or_else(|_| b"{}".to_vec());
        let mac = Mac(key.anchor(&body).finalize().into_bytes().into());
        crate::record::line_from_body(body, &mac)
    }

    /// Reads and checks the anchor in `state_dir`.
    pub(crate) fn load(state_dir: &Path, key: &Keyed) -> Result<AnchorState, AuditError> {
        let path = state_dir.join(ANCHOR_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AnchorState::Missing),
            Err(e) => return Err(AuditError::io("cannot read the audit anchor", path, e)),
        };
        Ok(Anchor::parse(&bytes, key))
    }

    pub(crate) fn parse(bytes: &[u8], key: &Keyed) -> AnchorState {
        let Some(line) = bytes.strip_suffix(b"\n") else {
            return AnchorState::Unreadable("it does not end in a newline".into());
        };
        let split = match split_line(line) {
            Ok(s) => s,
            Err(reason) => return AnchorState::Unreadable(reason.to_string()),
        };
        if key.anchor(&split.body).verify_slice(&split.mac.0).is_err() {
            return AnchorState::BadMac;
        }
        let wire: AnchorWire = match serde_json::from_slice(&split.body) {
            Ok(w) => w,
            Err(e) => return AnchorState::Unreadable(format!("invalid JSON: {e}")),
        };
        let Some(head) = Mac::from_hex_bytes(wire.head.as_bytes()) else {
            return AnchorState::Unreadable("\"head\" is not 64 lowercase hex digits".into());
        };
        if files::index_of(&wire.file).is_none() {
            return AnchorState::Unreadable(format!(
                "{:?} is not an audit log file name",
                wire.file
            ));
        }
        AnchorState::Valid(Anchor {
            seq: wire.seq,
            head,
            file: wire.file,
        })
    }

    /// Points the anchor file at this record, unless it already names this record
    /// or a newer one (another writer got there first). Returns what it did.
    ///
    /// The usual case costs no sync: an anchor line of the same length as the one
    /// in the file (the anchor only moves forward, so lines grow a digit at a
    /// time) is overwritten in place, one `pwrite` of a few hundred bytes at
    /// offset 0, inside the first disk sector. That write is not synced
    /// ([`Advanced::InPlace`]): the caller fsyncs the file later (off the request
    /// path). It is safe by construction: the records it names are already
    /// durable, so whatever a crash leaves in the file — the new line or the
    /// previous one — is at or *behind* the log, the state that appenders roll
    /// forward and `verify` accepts; and processes see the new line at once, so a
    /// deletion of the newest records while the machine runs is caught as
    /// before. A line of another length (a new digit, a new file name length) or
    /// a missing file is written with [`Anchor::store`] ([`Advanced::Replaced`]):
    /// synced, then renamed over the old one, so the file is never seen half
    /// written or with a stale tail.
    pub(crate) fn advance(
        &self,
        state_dir: &Path,
        key: &Keyed,
        sync_dir: bool,
    ) -> Result<Advanced, AuditError> {
        let path = state_dir.join(ANCHOR_FILE);
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.store(state_dir, key, sync_dir)?;
                return Ok(Advanced::Replaced);
            }
            Err(e) => return Err(AuditError::io("cannot read the audit anchor", path, e)),
        };
        let line = self.to_bytes(key);
        let mut old = Vec::with_capacity(line.len() + 1);
        std::io::Read::read_to_end(&mut file, &mut old)
            .map_err(|e| AuditError::io("cannot read the audit anchor", &path, e))?;
        if let AnchorState::Valid(a) = Anchor::parse(&old, key)
            && a.seq >= self.seq
        {
            return Ok(Advanced::Already);
        }
        if old.len() != line.len() {
            self.store(state_dir, key, sync_dir)?;
            return Ok(Advanced::Replaced);
        }
        files::overwrite_at_start(&file, &line)
            .map_err(|e| AuditError::io("cannot write the audit anchor", path, e))?;
        Ok(Advanced::InPlace)
    }

    /// Replaces the anchor atomically: temp file (0600), fdatasync, rename.
    ///
    /// The directory is fsynced only when `sync_dir` is set (the first anchor a
    /// process writes). Skipping it is safe by construction: the records the anchor
    /// names are already durable, so if a crash loses the rename the anchor is
    /// merely one step *behind* the log — the state after a crash between the
    /// record's fsync and the anchor update, which the appender rolls forward and
    /// `verify` accepts. It saves one of the three syncs of an `Always` append.
    pub(crate) fn store(
        &self,
        state_dir: &Path,
        key: &Keyed,
        sync_dir: bool,
    ) -> Result<(), AuditError> {
        let path = state_dir.join(ANCHOR_FILE);
        let tmp = state_dir.join(format!(".{ANCHOR_FILE}.tmp"));
        let result = (|| -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut file = opts.open(&tmp)?;
            std::io::Write::write_all(&mut file, &self.to_bytes(key))?;
            file.sync_data()?;
            drop(file);
            std::fs::rename(&tmp, &path)?;
            if sync_dir {
                files::sync_dir(state_dir)?;
            }
            Ok(())
        })();
        result.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            AuditError::io("cannot write the audit anchor", path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_round_trips_and_any_change_is_caught() {
        let key = Keyed::new(&[7; 32]);
        let a = Anchor {
            seq: 42,
            head: Mac([3; 32]),
            file: "audit-000002.jsonl".into(),
        };
        let bytes = a.to_bytes(&key);
        assert!(matches!(Anchor::parse(&bytes, &key), AnchorState::Valid(b) if b == a));
        assert!(matches!(
            Anchor::parse(&bytes, &Keyed::new(&[8; 32])),
            AnchorState::BadMac
        ));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert!(
                !matches!(Anchor::parse(&b, &key), AnchorState::Valid(_)),
                "flip at {i}"
            );
        }
    }

    fn anchor(seq: u64) -> Anchor {
        Anchor {
            seq,
            head: Mac([seq as u8; 32]),
            file: "audit-000001.jsonl".into(),
        }
    }

    #[cfg(unix)]
    fn inode(path: &Path) -> u64 {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
    }

    #[cfg(not(unix))]
    fn inode(_path: &Path) -> u64 {
        0
    }

    fn anchored(dir: &Path, key: &Keyed) -> Option<Anchor> {
        match Anchor::load(dir, key).unwrap() {
            AnchorState::Valid(a) => Some(a),
            _ => None,
        }
    }

    /// The anchor moves forward in place while its line keeps its length, is
    /// replaced (a new file) when the length changes or the file is missing, and
    /// never moves back.
    #[test]
    fn advance_overwrites_in_place_replaces_on_a_new_length_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let (key, path) = (Keyed::new(&[7; 32]), dir.path().join(ANCHOR_FILE));

        assert_eq!(
            anchor(3).advance(dir.path(), &key, true).unwrap(),
            Advanced::Replaced
        );
        assert_eq!(anchored(dir.path(), &key), Some(anchor(3)));
        let ino = inode(&path);

        assert_eq!(
            anchor(5).advance(dir.path(), &key, false).unwrap(),
            Advanced::InPlace
        );
        assert_eq!(anchored(dir.path(), &key), Some(anchor(5)));
        assert_eq!(inode(&path), ino, "overwritten in place");

        // The same record, or an older one: left alone.
        for seq in [5, 4] {
            assert_eq!(
                anchor(seq).advance(dir.path(), &key, false).unwrap(),
                Advanced::Already
            );
            assert_eq!(anchored(dir.path(), &key), Some(anchor(5)));
        }

        // seq 10 is one digit longer: a new file, synced and renamed.
        assert_eq!(
            anchor(10).advance(dir.path(), &key, false).unwrap(),
            Advanced::Replaced
        );
        assert_eq!(anchored(dir.path(), &key), Some(anchor(10)));
        assert_eq!(std::fs::read(&path).unwrap(), anchor(10).to_bytes(&key));
        assert!(!dir.path().join(format!(".{ANCHOR_FILE}.tmp")).exists());
    }

    /// Whatever the file held, an advanced anchor reads back exactly: a longer
    /// unreadable file is replaced (an overwrite would leave its tail), one of
    /// the same length is overwritten.
    #[test]
    fn advance_over_an_unreadable_anchor_leaves_exactly_the_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let (key, path) = (Keyed::new(&[7; 32]), dir.path().join(ANCHOR_FILE));
        let line = anchor(42).to_bytes(&key);

        std::fs::write(&path, vec![b'x'; line.len() + 9]).unwrap();
        assert_eq!(
            anchor(42).advance(dir.path(), &key, false).unwrap(),
            Advanced::Replaced
        );
        assert_eq!(std::fs::read(&path).unwrap(), line);

        std::fs::write(&path, vec![b'x'; line.len()]).unwrap();
        assert_eq!(
            anchor(42).advance(dir.path(), &key, false).unwrap(),
            Advanced::InPlace
        );
        assert_eq!(std::fs::read(&path).unwrap(), line);

        // An anchor written with another key does not count as newer.
        let other = anchor(90).to_bytes(&Keyed::new(&[8; 32]));
        std::fs::write(&path, &other).unwrap();
        assert_ne!(
            anchor(42).advance(dir.path(), &key, false).unwrap(),
            Advanced::Already
        );
        assert_eq!(anchored(dir.path(), &key), Some(anchor(42)));
    }

    /// An anchor path that cannot be opened is an error naming it, never taken
    /// for a missing anchor.
    #[test]
    fn advance_refuses_an_anchor_it_cannot_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = Keyed::new(&[7; 32]);
        std::fs::create_dir(dir.path().join(ANCHOR_FILE)).unwrap();
        let err = anchor(1).advance(dir.path(), &key, false).unwrap_err();
        assert!(
            err.to_string().contains("cannot read the audit anchor"),
            "{err}"
        );
    }

    #[test]
    fn mac_hex_is_strict() {
        assert!("ab".repeat(32).parse::<Mac>().is_ok());
        assert!("AB".repeat(32).parse::<Mac>().is_err());
        assert!("ab".repeat(31).parse::<Mac>().is_err());
    }
}
