//! The team audit (docs/team.md, "Team audit"): each device's local audit
//! records, signed with its Ed25519 key and hash-chained per device, uploaded in
//! order to `airlock.audit`; admin checkpoints over every chain's head; and the
//! walk behind `airlock audit verify --team` and `airlock logs --team`.
//!
//! ```text
//! row (device, seq, prev, record, sig)             seq = 1, 2, 3… per device
//!   msg    = message("audit", team, device, seq, prev, record)
//!   sig    = Ed25519(device key, msg)      hash = SHA-256(msg)
//!   prev   = hash of (device, seq - 1); 32 zero bytes for seq 1
//!   record = the local record's canonical line (the fields `airlock logs --json` prints)
//! checkpoint (seq, device, at, prev, heads, sig)   written by an admin device
//!   msg    = message("audit checkpoint", team, device, at, prev, heads)
//!   heads  = JSON [[device, seq, hash hex], ...]   prev = SHA-256 of the previous checkpoint's msg
//! ```
//!
//! Where the upload resumes comes from the database alone: the newest row of
//! this device's chain (its signature checked) names the local record it holds,
//! and the upload continues with the local record after that one. A process
//! killed mid-upload leaves either a whole batch (one transaction) or none, so
//! the next upload neither skips nor repeats a record.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use airlock_audit::{Filter, Mac, Record};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::keys::{self, message};
use crate::local::{self, Mark};
use crate::team::{DeviceStatus, Team, View};
use crate::{Result, TeamError};

/// One row of `airlock.audit` as read back.
struct AuditRow {
    device: String,
    seq: i64,
    prev: Vec<u8>,
    record: String,
    sig: Vec<u8>,
}

impl AuditRow {
    fn read(r: &sqlx::postgres::PgRow) -> std::result::Result<AuditRow, sqlx::Error> {
        Ok(AuditRow {
            device: r.try_get("device")?,
            seq: r.try_get("seq")?,
            prev: r.try_get("prev")?,
            record: r.try_get("record")?,
            sig: r.try_get("sig")?,
        })
    }
}

/// Rows uploaded per transaction.
pub const UPLOAD_BATCH: usize = 256;

const ZERO: [u8; 32] = [0; 32];

fn row_msg(team: &str, device: &str, seq: i64, prev: &[u8], record: &str) -> Vec<u8> {
    message(
        "audit",
        &[
            team.as_bytes(),
            device.as_bytes(),
            &seq.to_be_bytes(),
            prev,
            record.as_bytes(),
        ],
    )
}

fn checkpoint_msg(team: &str, device: &str, at: i64, prev: &[u8], heads: &str) -> Vec<u8> {
    message(
        "audit checkpoint",
        &[
            team.as_bytes(),
            device.as_bytes(),
            &at.to_be_bytes(),
            prev,
            heads.as_bytes(),
        ],
    )
}

fn sha(msg: &[u8]) -> [u8; 32] {
    Sha256::digest(msg).into()
}

fn audit_row(device: &str, seq: i64) -> String {
    format!("airlock.audit device={device} seq={seq}")
}

/// The newest local audit file's name and length (names sort by length, then
/// by name: `audit-999999.jsonl` before `audit-1000000.jsonl`).
fn newest_log(dir: &std::path::Path) -> Option<(String, u64)> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            (name.starts_with("audit-") && name.ends_with(".jsonl"))
                .then(|| Some((name.len(), name, e.metadata().ok()?.len())))?
        })
        .max()
        .map(|(_, name, len)| (name, len))
}

fn local_audit(e: impl std::fmt::Display) -> TeamError {
    TeamError::LocalAudit(e.to_string())
}

/// What one upload did.
#[derive(Debug, Default, Clone)]
pub struct Upload {
    /// Rows written.
    pub rows: usize,
    /// This device's chain head afterwards (team audit seq), if it has one.
    pub head: Option<i64>,
}

/// One thing wrong in the team audit, naming the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditProblem {
    /// The row: `airlock.audit device=… seq=…` or `airlock.audit_checkpoints seq=…`.
    pub row: String,
    /// The device whose chain the row is in (audit rows).
    pub device: Option<String>,
    /// The row's number.
    pub seq: Option<i64>,
    /// What is wrong.
    pub why: String,
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.row, self.why)
    }
}

/// One device's chain as verified.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Device id.
    pub device: String,
    /// Its name (as enrolled; agent-free but shown escaped).
    pub name: String,
    /// Rows that verified.
    pub rows: u64,
    /// The newest row that verified (0: none).
    pub head: i64,
    /// Whether every row of it verified.
    pub intact: bool,
}

/// What `airlock audit verify --team` found.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    /// Every device with rows, and every approved device.
    pub chains: Vec<Chain>,
    /// Rows that verified.
    pub rows: u64,
    /// Checkpoints that verified.
    pub checkpoints: u64,
    /// Every problem, each naming its row.
    pub problems: Vec<AuditProblem>,
}

impl AuditReport {
    /// Nothing wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A verified record of the team audit (`airlock logs --team`).
#[derive(Debug, Clone)]
pub struct TeamRecord {
    /// The device that wrote it.
    pub device: String,
    /// That device's name.
    pub name: String,
    /// The row's number in that device's chain.
    pub seq: i64,
    /// The record.
    pub record: Record,
}

struct Walk {
    expect: i64,
    prev: [u8; 32],
    last: Option<(u64, Mac)>,
    rows: u64,
    broken_at: Option<i64>,
}

impl Walk {
    fn new() -> Walk {
        Walk {
            expect: 1,
            prev: ZERO,
            last: None,
            rows: 0,
            broken_at: None,
        }
    }

    /// Checks `row`, the next row of this chain: its record and hash when it
    /// verifies (the chain moves on), else the seq to name and why (the chain
    /// is broken from there).
    fn step(
        &mut self,
        view: &View,
        team: &str,
        row: &AuditRow,
    ) -> std::result::Result<(Record, [u8; 32]), (i64, String)> {
        let (device, seq) = (&row.device, row.seq);
        let msg = row_msg(team, device, seq, &row.prev, &row.record);
        let who = view
            .members
            .get(device)
            .filter(|d| d.status != DeviceStatus::Pending);
        let checked = if let Some(d) = who {
            if seq != self.expect {
                Err((
                    self.expect,
                    format!(
                        "the row is missing (deleted): the chain goes from seq {} to seq {seq}",
                        self.expect - 1
                    ),
                ))
            } else if !keys::verify(&d.sign_pk, &msg, &row.sig) {
                Err((
                    seq,
                    "its signature by the device does not verify: the row was edited, reordered or forged".into(),
                ))
            } else if row.prev != self.prev {
                Err((seq, format!("its prev is not the hash of seq {}", seq - 1)))
            } else {
                match Record::parse_line(row.record.as_bytes()) {
                    Err(e) => Err((seq, format!("its record does not parse: {e}"))),
                    Ok(rec) => match self.last {
                        Some((s, mac)) if rec.seq != s + 1 || rec.prev != mac => Err((
                            seq,
                            format!(
                                "its record (local #{}) does not follow the device's record #{s}",
                                rec.seq
                            ),
                        )),
                        _ => Ok(rec),
                    },
                }
            }
        } else {
            Err((seq, format!("device {device} is not a member of this team")))
        };
        match checked {
            Ok(rec) => {
                let h = sha(&msg);
                self.prev = h;
                self.expect += 1;
                self.rows += 1;
                self.last = Some((rec.seq, rec.mac));
                Ok((rec, h))
            }
            Err((at, why)) => {
                self.broken_at = Some(at);
                Err((at, why))
            }
        }
    }
}

/// `airlock logs --team --follow`: where each device's chain has been read
/// and verified up to, so that each poll reads only the rows added since.
#[derive(Default)]
pub struct AuditFollow {
    chains: BTreeMap<String, Walk>,
}

fn team_record(view: &View, device: &str, seq: i64, record: Record) -> TeamRecord {
    TeamRecord {
        name: view
            .members
            .get(device)
            .map(|d| d.name.clone())
            .unwrap_or_default(),
        device: device.to_string(),
        seq,
        record,
    }
}

impl Team {
    /// Uploads this device's local audit records that the database does not
    /// hold yet, in order, `UPLOAD_BATCH` per transaction.
    pub async fn upload_audit(&mut self) -> Result<Upload> {
        let mut out = Upload::default();
        // Nothing appended since the last upload that sent everything: no
        // need to read the log (or ask the database) again.
        let seen = newest_log(&self.home.audit_dir());
        if seen.is_some() && seen == self.audit_seen {
            out.head = self.state.audit_head.as_ref().map(|m| m.seq);
            return Ok(out);
        }
        loop {
            let n = self.upload_batch(&mut out).await?;
            if n < UPLOAD_BATCH {
                break;
            }
        }
        self.audit_seen = seen;
        if out.rows > 0 {
            local::save_state(&self.home, &self.state)?;
        }
        Ok(out)
    }

    async fn upload_batch(&mut self, out: &mut Upload) -> Result<usize> {
        let team = self.state.team.clone();
        let me = self.state.device.clone();
        let mut tx = self.pool.begin().await?;
        // One uploader per device at a time (the server's follower and a
        // `team sync` of the same home); the primary key refuses a duplicate anyway.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('airlock.audit:' || $1))")
            .bind(&me)
            .execute(&mut *tx)
            .await?;
        let head = sqlx::query(
            "SELECT seq, prev, record, sig FROM airlock.audit WHERE device = $1 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(&me)
        .fetch_optional(&mut *tx)
        .await?;
        let (mut seq, mut prev, mut last) = match head {
            None => (0i64, ZERO, None),
            Some(r) => {
                let seq: i64 = r.try_get("seq")?;
                let p: Vec<u8> = r.try_get("prev")?;
                let record: String = r.try_get("record")?;
                let sig: Vec<u8> = r.try_get("sig")?;
                let msg = row_msg(&team, &me, seq, &p, &record);
                if !keys::verify(&self.keys.public().sign_pk, &msg, &sig) {
                    return Err(TeamError::Tampered {
                        row: audit_row(&me, seq),
                        why: "it is not signed by this device, which will not extend a chain it did not write; `airlock audit verify --team` shows the damage".into(),
                    });
                }
                let rec =
                    Record::parse_line(record.as_bytes()).map_err(|e| TeamError::Tampered {
                        row: audit_row(&me, seq),
                        why: format!("its record does not parse: {e}"),
                    })?;
                (seq, sha(&msg), Some((rec.seq, rec.mac)))
            }
        };
        out.head = (seq > 0).then_some(seq);
        let after = last.map_or(0, |(s, _)| s);
        let mut batch: Vec<String> = Vec::new();
        // From the first local record after `after` on, found without reading
        // the log from its start (airlock_audit::records_after).
        for item in
            airlock_audit::records_after(&self.home.audit_dir(), after).map_err(local_audit)?
        {
            let r = item.map_err(local_audit)?;
            if let Some((s, mac)) = last
                && (r.seq != s + 1 || r.prev != mac)
            {
                return Err(TeamError::LocalAudit(format!(
                    "record {} does not follow record {s}, the newest this device uploaded; `airlock audit verify` says why",
                    r.seq
                )));
            }
            last = Some((r.seq, r.mac));
            batch.push(r.to_json());
            if batch.len() == UPLOAD_BATCH {
                break;
            }
        }
        if batch.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let (mut seqs, mut prevs, mut sigs) = (Vec::new(), Vec::new(), Vec::new());
        for record in &batch {
            seq += 1;
            let msg = row_msg(&team, &me, seq, &prev, record);
            seqs.push(seq);
            prevs.push(prev.to_vec());
            sigs.push(self.keys.sign(&msg));
            prev = sha(&msg);
        }
        sqlx::query(
            "INSERT INTO airlock.audit (device, seq, prev, record, sig) \
             SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[], $4::text[], $5::bytea[])",
        )
        .bind(&me)
        .bind(&seqs)
        .bind(&prevs)
        .bind(&batch)
        .bind(&sigs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        out.rows += batch.len();
        out.head = Some(seq);
        self.state.audit_head = Some(Mark {
            seq,
            hash: hex::encode(prev),
        });
        Ok(batch.len())
    }

    /// On the designated checkpointer (the admin device an admin designated
    /// last, else the root admin): a signed checkpoint over the head of every
    /// device's chain, chained to the checkpoint before it. `None` on any
    /// other device, or when no head moved since the newest checkpoint.
    pub async fn checkpoint(&mut self) -> Result<Option<i64>> {
        let view = self.view().await?;
        if !self.me(&view)?.admin || self.checkpointer(&view) != self.state.device {
            return Ok(None);
        }
        let team = self.state.team.clone();
        let me = self.state.device.clone();
        let rows = sqlx::query(
            "SELECT DISTINCT ON (device) device, seq, prev, record, sig FROM airlock.audit \
             ORDER BY device, seq DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut heads: Vec<(String, i64, String)> = Vec::new();
        for r in rows {
            let AuditRow {
                device,
                seq,
                prev,
                record,
                sig,
            } = AuditRow::read(&r)?;
            let msg = row_msg(&team, &device, seq, &prev, &record);
            let signed = view
                .members
                .get(&device)
                .filter(|d| d.status != DeviceStatus::Pending)
                .is_some_and(|d| keys::verify(&d.sign_pk, &msg, &sig));
            if !signed {
                return Err(TeamError::Tampered {
                    row: audit_row(&device, seq),
                    why: "it is not signed by its device; no checkpoint covers it".into(),
                });
            }
            heads.push((device, seq, hex::encode(sha(&msg))));
        }
        let heads = serde_json::to_string(&heads).map_err(|e| TeamError::Crypto(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('airlock.audit_checkpoints'))")
            .execute(&mut *tx)
            .await?;
        let last = sqlx::query(
            "SELECT device, at, prev, heads FROM airlock.audit_checkpoints ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let prev = match last {
            None if heads == "[]" => return Ok(None),
            None => ZERO,
            Some(r) => {
                let last_heads: String = r.try_get("heads")?;
                if last_heads == heads {
                    return Ok(None);
                }
                let (d, at, p): (String, i64, Vec<u8>) =
                    (r.try_get("device")?, r.try_get("at")?, r.try_get("prev")?);
                sha(&checkpoint_msg(&team, &d, at, &p, &last_heads))
            }
        };
        let at = jiff::Timestamp::now().as_millisecond();
        let msg = checkpoint_msg(&team, &me, at, &prev, &heads);
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO airlock.audit_checkpoints (device, at, prev, heads, sig) \
             VALUES ($1, $2, $3, $4, $5) RETURNING seq",
        )
        .bind(&me)
        .bind(at)
        .bind(prev.to_vec())
        .bind(&heads)
        .bind(self.keys.sign(&msg))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.state.checkpoint = Some(Mark {
            seq,
            hash: hex::encode(sha(&msg)),
        });
        local::save_state(&self.home, &self.state)?;
        Ok(Some(seq))
    }

    /// `airlock audit verify --team`: every chain, every signature, every
    /// checkpoint, and the newest row and checkpoint this device remembers
    /// writing.
    pub async fn verify_audit(&self) -> Result<AuditReport> {
        Ok(self.walk(None).await?.0)
    }

    /// `airlock logs --team`: every record that verifies and passes `filter`,
    /// oldest first (by the record's time, then device and seq), with the
    /// report of what did not verify.
    pub async fn read_audit(&self, filter: &Filter) -> Result<(Vec<TeamRecord>, AuditReport)> {
        let (report, mut records) = self.walk(Some(filter)).await?;
        records
            .sort_by(|a, b| (a.record.ts, &a.device, a.seq).cmp(&(b.record.ts, &b.device, b.seq)));
        Ok((records, report))
    }

    /// `airlock logs --team --follow`: the rows added to every device's chain
    /// since the last call with `follow` (all of them at the first), verified
    /// as [`Team::read_audit`] does, those passing `filter` oldest first; and
    /// the problems found in them (a chain is not read past its first bad row).
    pub async fn follow_audit(
        &self,
        follow: &mut AuditFollow,
        filter: &Filter,
    ) -> Result<(Vec<TeamRecord>, Vec<AuditProblem>)> {
        let view = self.view().await?;
        let team = self.state.team.as_str();
        let (devices, heads): (Vec<String>, Vec<i64>) = follow
            .chains
            .iter()
            .map(|(d, c)| (d.clone(), c.broken_at.map_or(c.expect - 1, |_| i64::MAX)))
            .unzip();
        let rows = sqlx::query(
            "SELECT a.device, a.seq, a.prev, a.record, a.sig FROM airlock.audit a \
             LEFT JOIN UNNEST($1::text[], $2::bigint[]) AS k(device, head) ON k.device = a.device \
             WHERE a.seq > COALESCE(k.head, 0) ORDER BY a.device, a.seq",
        )
        .bind(&devices)
        .bind(&heads)
        .fetch_all(&self.pool)
        .await?;
        let (mut kept, mut problems) = (Vec::new(), Vec::new());
        for r in rows {
            let row = AuditRow::read(&r)?;
            let c = follow
                .chains
                .entry(row.device.clone())
                .or_insert_with(Walk::new);
            if c.broken_at.is_some() {
                continue;
            }
            match c.step(&view, team, &row) {
                Err((at, why)) => problems.push(AuditProblem {
                    row: audit_row(&row.device, at),
                    device: Some(row.device.clone()),
                    seq: Some(at),
                    why,
                }),
                Ok((rec, _)) if filter.matches(&rec) => {
                    kept.push(team_record(&view, &row.device, row.seq, rec));
                }
                Ok(_) => {}
            }
        }
        kept.sort_by(|a, b| (a.record.ts, &a.device, a.seq).cmp(&(b.record.ts, &b.device, b.seq)));
        Ok((kept, problems))
    }

    async fn walk(&self, keep: Option<&Filter>) -> Result<(AuditReport, Vec<TeamRecord>)> {
        let view = self.view().await?;
        let team = self.state.team.as_str();
        let mut report = AuditReport::default();
        let mut kept = Vec::new();
        let mut chains: BTreeMap<String, Walk> = BTreeMap::new();
        let mut hashes: HashMap<(String, i64), [u8; 32]> = HashMap::new();
        let mut named: BTreeSet<String> = BTreeSet::new();
        let mut problem = |report: &mut AuditReport, p: AuditProblem| {
            if named.insert(p.row.clone()) {
                report.problems.push(p);
            }
        };
        let rows = sqlx::query(
            "SELECT device, seq, prev, record, sig FROM airlock.audit ORDER BY device, seq",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let row = AuditRow::read(&r)?;
            let c = chains.entry(row.device.clone()).or_insert_with(Walk::new);
            if c.broken_at.is_some() {
                continue;
            }
            match c.step(&view, team, &row) {
                Err((at, why)) => problem(
                    &mut report,
                    AuditProblem {
                        row: audit_row(&row.device, at),
                        device: Some(row.device.clone()),
                        seq: Some(at),
                        why,
                    },
                ),
                Ok((rec, h)) => {
                    hashes.insert((row.device.clone(), row.seq), h);
                    report.rows += 1;
                    if let Some(f) = keep
                        && f.matches(&rec)
                    {
                        kept.push(team_record(&view, &row.device, row.seq, rec));
                    }
                }
            }
        }

        // A head that a checkpoint (or this device) vouches for must be there,
        // unchanged; a chain already broken before it was reported above.
        let mut vouched = |report: &mut AuditReport, d: &str, s: i64, h: &str, who: &str| {
            let broken_before = chains
                .get(d)
                .and_then(|c| c.broken_at)
                .is_some_and(|b| b <= s);
            if broken_before {
                return;
            }
            let why = match hashes.get(&(d.to_string(), s)) {
                Some(x) if hex::encode(x) == h => return,
                Some(_) => format!("it differs from the row {who} covered"),
                None => format!(
                    "it is missing (deleted): {who} saw this chain reach seq {s}, the database's ends at seq {}",
                    chains.get(d).map_or(0, |c| c.expect - 1)
                ),
            };
            problem(
                report,
                AuditProblem {
                    row: audit_row(d, s),
                    device: Some(d.to_string()),
                    seq: Some(s),
                    why,
                },
            );
        };
        let cps = sqlx::query(
            "SELECT seq, device, at, prev, heads, sig FROM airlock.audit_checkpoints ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut prev_cp = ZERO;
        let mut cp_hashes: HashMap<i64, [u8; 32]> = HashMap::new();
        for r in cps {
            let seq: i64 = r.try_get("seq")?;
            let device: String = r.try_get("device")?;
            let at: i64 = r.try_get("at")?;
            let prev: Vec<u8> = r.try_get("prev")?;
            let heads: String = r.try_get("heads")?;
            let sig: Vec<u8> = r.try_get("sig")?;
            let row = format!("airlock.audit_checkpoints seq={seq}");
            let msg = checkpoint_msg(team, &device, at, &prev, &heads);
            let h = sha(&msg);
            let signed = view
                .members
                .get(&device)
                .filter(|d| d.admin && d.status != DeviceStatus::Pending)
                .is_some_and(|d| keys::verify(&d.sign_pk, &msg, &sig));
            let chained = prev == prev_cp;
            prev_cp = h;
            let why = if !signed {
                Some(format!(
                    "it is not signed by admin device {device}: it was edited or forged"
                ))
            } else if !chained {
                Some(
                    "its prev is not the hash of the checkpoint before it: a checkpoint was deleted, changed or inserted".into(),
                )
            } else {
                None
            };
            let parsed: Option<Vec<(String, i64, String)>> = serde_json::from_str(&heads).ok();
            let why = why.or_else(|| {
                parsed
                    .is_none()
                    .then(|| "its heads do not parse".to_string())
            });
            if let Some(why) = why {
                report.problems.push(AuditProblem {
                    row,
                    device: None,
                    seq: Some(seq),
                    why,
                });
                continue;
            }
            cp_hashes.insert(seq, h);
            report.checkpoints += 1;
            for (d, s, hh) in parsed.unwrap_or_default() {
                vouched(&mut report, &d, s, &hh, &format!("checkpoint {seq}"));
            }
        }
        if let Some(m) = &self.state.audit_head {
            vouched(
                &mut report,
                &self.state.device,
                m.seq,
                &m.hash,
                "this device's last upload",
            );
        }
        if let Some(m) = &self.state.checkpoint
            && cp_hashes.get(&m.seq).map(hex::encode).as_deref() != Some(m.hash.as_str())
        {
            let row = format!("airlock.audit_checkpoints seq={}", m.seq);
            if !report.problems.iter().any(|p| p.row == row) {
                report.problems.push(AuditProblem {
                    row,
                    device: None,
                    seq: Some(m.seq),
                    why: "this device wrote it; it is missing or changed".into(),
                });
            }
        }

        let mut ids: BTreeSet<String> = chains.keys().cloned().collect();
        ids.extend(
            view.members
                .values()
                .filter(|d| d.status == DeviceStatus::Approved)
                .map(|d| d.id.clone()),
        );
        for id in ids {
            let c = chains.get(&id);
            report.chains.push(Chain {
                name: view
                    .members
                    .get(&id)
                    .map(|d| d.name.clone())
                    .unwrap_or_default(),
                rows: c.map_or(0, |c| c.rows),
                head: c.map_or(0, |c| c.expect - 1),
                intact: !report
                    .problems
                    .iter()
                    .any(|p| p.device.as_deref() == Some(id.as_str())),
                device: id,
            });
        }
        report
            .problems
            .sort_by(|a, b| (&a.device, a.seq, &a.row).cmp(&(&b.device, b.seq, &b.row)));
        Ok((report, kept))
    }
}
