//! A device of a team: enrollment, publishing, and the verified sync.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use airlock_broker::state::{self, RevokeTarget};
use airlock_home::Home;
use airlock_vault::Vault;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};
use zeroize::Zeroizing;

use crate::keys::{self, DeviceKeys, DevicePublic, KEY_LEN, message};
use crate::local::{self, TeamState};
use crate::{Result, TeamError};

/// How soon a follower whose catch-up failed tries again.
const RETRY: Duration = Duration::from_secs(1);

/// The `pg_notify` channel that carries change numbers.
pub const CHANNEL: &str = "airlock_changes";
/// How often a follower uploads this device's new audit records.
pub const AUDIT_TICK: Duration = Duration::from_secs(2);
/// How often an admin device's follower writes an audit checkpoint (when a
/// chain's head moved).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);
/// How long an invite code is valid.
const INVITE_TTL_SECS: i64 = 3600;

/// Where a device stands in the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Enrolled, waiting for an admin's approval.
    Pending,
    /// A member: its signature counts and it holds the team key.
    Approved,
    /// Removed by an admin.
    Revoked,
}

impl DeviceStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Revoked => "revoked",
        }
    }
}

/// A device as verified by this node.
#[derive(Debug, Clone)]
pub struct Device {
    /// Device id (hex SHA-256 over its public keys).
    pub id: String,
    /// The name it enrolled with.
    pub name: String,
    /// Whether it is an admin (only meaningful once approved).
    pub admin: bool,
    /// Its standing.
    pub status: DeviceStatus,
    /// The admin that approved it.
    pub approved_by: Option<String>,
    /// Unix seconds of its enrollment.
    pub joined_at: i64,
    pub(crate) sign_pk: Vec<u8>,
    kx_pk: Vec<u8>,
    invite: Option<Vec<u8>>,
    approval_sig: Option<Vec<u8>>,
    revoked_by: Option<String>,
    revocation_sig: Option<Vec<u8>>,
    admin_claimed: bool,
}

impl Device {
    /// The short fingerprint an admin confirms.
    pub fn fingerprint(&self) -> String {
        keys::fingerprint(&self.id)
    }
    fn is_admin(&self) -> bool {
        self.status == DeviceStatus::Approved && self.admin
    }
    fn row(&self) -> String {
        format!("airlock.devices id={}", self.id)
    }
}

/// What one sync did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Secrets written to the local vault (name, team version).
    pub secrets: Vec<(String, i32)>,
    /// Services and capabilities written to `airlock.toml` (kind, name, team
    /// version; removed when the row's body is empty).
    pub config: Vec<(String, String, i32)>,
    /// Change-log rows applied.
    pub changes: usize,
    /// Revocations applied to this home's state.
    pub revocations: usize,
    /// The lock state set by this sync, if it changed it.
    pub lock: Option<bool>,
    /// Incident locks (capabilities and agents) of other devices this sync
    /// added or renewed.
    pub incident_locks: Vec<RevokeTarget>,
    /// Incident locks a team unlock released in this sync.
    pub incident_unlocked: Vec<RevokeTarget>,
    /// The team's agents this sync added (`false`) or removed (`true`).
    pub agents: Vec<(String, bool)>,
    /// Agent tokens of this home revoked by this sync: a team token
    /// revocation, or a removed agent's.
    pub tokens_revoked: usize,
    /// The audit checkpointer an admin designated, if this sync applied it.
    pub checkpointer: Option<String>,
    /// Whether this sync took a new database URL from an admin.
    pub db_url: bool,
    /// Why this device could not record in `airlock.device_db_urls` which
    /// database URL it uses (the sync itself went through; the next one
    /// tries again).
    pub db_url_report: Option<String>,
    /// The last change number applied.
    pub last_seq: i64,
}

/// What `airlock doctor` learns from the team's database.
#[derive(Debug, Clone)]
pub struct Health {
    /// host:port/db.
    pub db: String,
    /// Whether this connection is encrypted (`pg_stat_ssl`).
    pub tls: bool,
    /// Whether the database's host is this machine.
    pub loopback: bool,
    /// One round trip, in ms.
    pub rtt_ms: i64,
    /// This machine's clock minus the database's, in ms (half a round trip
    /// either way).
    pub skew_ms: i64,
    /// This device's last successful sync.
    pub last_sync: Option<jiff::Timestamp>,
    /// The last change applied here.
    pub last_seq: i64,
    /// The newest change in the database.
    pub head_seq: i64,
    /// Rows of this device's audit chain in the database.
    pub audit_rows: i64,
}

/// What [`Team::follow`] reports.
#[derive(Debug)]
pub enum Followed {
    /// A catch-up with the change log.
    Sync(Result<SyncReport>),
    /// An audit upload, and the checkpoint written with it (admin devices,
    /// about once a minute).
    Audit(Result<(crate::Upload, Option<i64>)>),
}

/// `airlock team status`.
#[derive(Debug, Clone)]
pub struct Status {
    /// Team id.
    pub team: String,
    /// This device.
    pub device: String,
    /// Where the database is (no password).
    pub db: String,
    /// Last change number applied here.
    pub last_seq: i64,
    /// The database's newest change number.
    pub head_seq: i64,
    /// When this device last synced.
    pub last_sync: Option<jiff::Timestamp>,
    /// Every device, verified.
    pub devices: Vec<Device>,
    /// The admin device that writes audit checkpoints.
    pub checkpointer: String,
    /// Which database URL each device uses.
    pub db_url: UrlStatus,
}

/// Which database URL each device uses, as `airlock team status` shows it:
/// the newest URL an admin sent (`team set-db-url`) and each device's own
/// signed report of the version it moved to (`airlock.device_db_urls`).
#[derive(Debug, Clone, Default)]
pub struct UrlStatus {
    /// The newest admin-signed `db-url` row; `None`: no admin has sent one,
    /// every device uses the URL it enrolled with (or one set by hand).
    pub newest: Option<UrlVersion>,
    /// Every approved device, with what it reported.
    pub devices: Vec<DeviceUrl>,
}

/// One database URL an admin sent to the team (a `db-url` change row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlVersion {
    /// Its change number.
    pub seq: i64,
    /// Its signed instant (unix ms): what identifies the version.
    pub at: i64,
    /// The admin device that sent it.
    pub by: String,
}

/// An approved device and the database URL version it reported.
#[derive(Debug, Clone)]
pub struct DeviceUrl {
    /// The device's id.
    pub device: String,
    /// Its name.
    pub name: String,
    /// The version it uses, from its verified row: the signed instant of the
    /// `db-url` row it adopted, 0 for the URL it enrolled with; `None`: no
    /// row that verifies (not reported yet, or refused).
    pub url_at: Option<i64>,
    /// When it wrote that row (unix ms, signed).
    pub reported_at: Option<i64>,
    /// Its row does not verify (not signed by the device): refused, and the
    /// device counts as not moved.
    pub refused: bool,
}

impl UrlStatus {
    /// Whether `d` is on the newest URL an admin sent (always, when none was).
    pub fn moved(&self, d: &DeviceUrl) -> bool {
        self.newest
            .as_ref()
            .is_none_or(|n| d.url_at.is_some_and(|u| u >= n.at))
    }

    /// The approved devices not on the newest URL yet: the old credential is
    /// taken away once this is empty.
    pub fn behind(&self) -> Vec<&DeviceUrl> {
        self.devices.iter().filter(|d| !self.moved(d)).collect()
    }
}

/// What `airlock team set-db-url` did.
#[derive(Debug, Clone)]
pub struct DbUrlSet {
    /// The `db-url` change row sent to every device (admin devices).
    pub change: Option<i64>,
    /// Why this device could not record in `airlock.device_db_urls` that it
    /// moved (its next sync tries again).
    pub report_error: Option<String>,
}

/// What `airlock team revoke-device` did.
#[derive(Debug, Clone)]
pub struct DeviceRevocation {
    /// The device, now revoked.
    pub device: Device,
    /// The new team key epoch.
    pub epoch: i32,
    /// How many devices hold it.
    pub devices: usize,
    /// Secrets re-sealed under it (name, new team version).
    pub resealed: Vec<(String, i32)>,
    /// Every secret the device could open (a version sealed under an epoch it
    /// held): the upstream keys to rotate.
    pub exposed: Vec<String>,
}

pub(crate) struct View {
    pub(crate) members: BTreeMap<String, Device>,
    epochs: BTreeMap<i32, Zeroizing<[u8; KEY_LEN]>>,
}

impl View {
    pub(crate) fn member(&self, id: &str) -> Option<&Device> {
        self.members
            .get(id)
            .filter(|d| d.status == DeviceStatus::Approved)
    }
    pub(crate) fn admin(&self, id: &str) -> Option<&Device> {
        self.member(id).filter(|d| d.admin)
    }
}

/// This device, connected to its team's database.
pub struct Team {
    pub(crate) home: Home,
    pub(crate) state: TeamState,
    pub(crate) keys: DeviceKeys,
    db_url: Zeroizing<String>,
    pub(crate) pool: PgPool,
    /// The newest local audit file (name, length) when the last upload left
    /// nothing to send: the next upload skips reading the log while it is so.
    pub(crate) audit_seen: Option<(String, u64)>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team")
            .field("team", &self.state.team)
            .field("device", &self.state.device)
            .field("db", &self.state.db)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// host:port/db of a database URL: what may be shown and stored in the clear.
fn display_db(url: &str) -> Result<String> {
    let u = url::Url::parse(url).map_err(|e| TeamError::BadUrl(e.to_string()))?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return Err(TeamError::BadUrl(format!(
            "scheme \"{}\" is not postgres",
            u.scheme()
        )));
    }
    Ok(format!(
        "{}:{}{}",
        u.host_str().unwrap_or("localhost"),
        u.port().unwrap_or(5432),
        u.path()
    ))
}

async fn connect(url: &str) -> Result<PgPool> {
    display_db(url)?;
    let opts = PgConnectOptions::from_str(url).map_err(|e| TeamError::BadUrl(e.to_string()))?;
    Ok(PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await?)
}

fn b(v: bool) -> [u8; 1] {
    [u8::from(v)]
}

fn approval_msg(team: &str, d: &Device, admin: bool, by: &str) -> Vec<u8> {
    message(
        "device",
        &[
            team.as_bytes(),
            d.id.as_bytes(),
            d.name.as_bytes(),
            &d.sign_pk,
            &d.kx_pk,
            &b(admin),
            by.as_bytes(),
        ],
    )
}

fn revocation_msg(team: &str, id: &str, by: &str) -> Vec<u8> {
    message(
        "device revoked",
        &[team.as_bytes(), id.as_bytes(), by.as_bytes()],
    )
}

fn epoch_info(team: &str, epoch: i32, device: &str) -> Vec<u8> {
    message(
        "epoch key info",
        &[team.as_bytes(), &epoch.to_be_bytes(), device.as_bytes()],
    )
}

fn epoch_msg(team: &str, epoch: i32, device: &str, enc: &[u8], ct: &[u8], by: &str) -> Vec<u8> {
    message(
        "epoch key",
        &[
            team.as_bytes(),
            &epoch.to_be_bytes(),
            device.as_bytes(),
            enc,
            ct,
            by.as_bytes(),
        ],
    )
}

fn invite_msg(team: &str, code_hash: &[u8], admin: bool, expires: i64, by: &str) -> Vec<u8> {
    message(
        "invite",
        &[
            team.as_bytes(),
            code_hash,
            &b(admin),
            &expires.to_be_bytes(),
            by.as_bytes(),
        ],
    )
}

/// Opens a secret row's value (version `version` of `name`, sealed under the
/// key of `epoch`); `row` names the row in the error when it does not open.
#[allow(clippy::too_many_arguments)]
fn open_row_secret(
    view: &View,
    team: &str,
    name: &str,
    version: i32,
    epoch: i32,
    nonce: &[u8],
    ct: &[u8],
    row: String,
) -> Result<Zeroizing<Vec<u8>>, TeamError> {
    let key = view.epochs.get(&epoch).ok_or_else(|| TeamError::Tampered {
        row: row.clone(),
        why: format!("this device holds no key of epoch {epoch}"),
    })?;
    keys::open_secret(
        key,
        team,
        &secret_aad(team, name, version, epoch),
        nonce,
        ct,
    )
    .ok_or_else(|| TeamError::Tampered {
        row,
        why: "it does not open under its epoch key and identity".into(),
    })
}

fn secret_aad(team: &str, name: &str, version: i32, epoch: i32) -> Vec<u8> {
    message(
        "secret aad",
        &[
            team.as_bytes(),
            name.as_bytes(),
            &version.to_be_bytes(),
            &epoch.to_be_bytes(),
        ],
    )
}

#[allow(clippy::too_many_arguments)]
fn secret_msg(
    team: &str,
    name: &str,
    version: i32,
    epoch: i32,
    nonce: &[u8],
    ct: &[u8],
    author: &str,
) -> Vec<u8> {
    message(
        "secret",
        &[
            team.as_bytes(),
            name.as_bytes(),
            &version.to_be_bytes(),
            &epoch.to_be_bytes(),
            nonce,
            ct,
            author.as_bytes(),
        ],
    )
}

/// What a device signs for a row of `airlock.changes`: (team, kind, subject,
/// body, signed instant in unix ms, device).
pub fn change_msg(
    team: &str,
    kind: &str,
    subject: &str,
    body: &str,
    at: i64,
    device: &str,
) -> Vec<u8> {
    message(
        "change",
        &[
            team.as_bytes(),
            kind.as_bytes(),
            subject.as_bytes(),
            body.as_bytes(),
            &at.to_be_bytes(),
            device.as_bytes(),
        ],
    )
}

fn config_msg(
    team: &str,
    kind: &str,
    name: &str,
    version: i32,
    body: &str,
    author: &str,
) -> Vec<u8> {
    message(
        "config",
        &[
            team.as_bytes(),
            kind.as_bytes(),
            name.as_bytes(),
            &version.to_be_bytes(),
            body.as_bytes(),
            author.as_bytes(),
        ],
    )
}

/// The newest row of each (kind, name) in `airlock.config`, verified: signed by an
/// admin device, its body exactly the one table it names. A row that fails is
/// refused by name.
async fn verified_config(
    pool: &PgPool,
    team: &str,
    view: &View,
) -> Result<Vec<(String, String, i32, String)>> {
    let rows = sqlx::query(
        "SELECT DISTINCT ON (kind, name) kind, name, version, body, author, sig \
         FROM airlock.config ORDER BY kind, name, version DESC",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let kind: String = r.try_get("kind")?;
        let name: String = r.try_get("name")?;
        let version: i32 = r.try_get("version")?;
        let body: String = r.try_get("body")?;
        let author: String = r.try_get("author")?;
        let sig: Vec<u8> = r.try_get("sig")?;
        let row = format!("airlock.config kind={kind} name={name} version={version}");
        let signed = view.admin(&author).is_some_and(|a| {
            keys::verify(
                &a.sign_pk,
                &config_msg(team, &kind, &name, version, &body, &author),
                &sig,
            )
        });
        if !signed {
            return Err(TeamError::Tampered {
                row,
                why: format!("it is not signed by admin device {author}"),
            });
        }
        let shaped = crate::config::section(&kind).is_some_and(|sec| {
            body.is_empty() || crate::config::table_of(sec, &name, &body).is_some()
        });
        if !shaped {
            return Err(TeamError::Tampered {
                row,
                why: "its body is not the one table it names".into(),
            });
        }
        out.push((kind, name, version, body));
    }
    Ok(out)
}

fn id_of(sign_pk: &[u8], kx_pk: &[u8]) -> Option<String> {
    Some(
        DevicePublic {
            sign_pk: sign_pk.try_into().ok()?,
            kx_pk: kx_pk.try_into().ok()?,
        }
        .id(),
    )
}

async fn load_devices(pool: &PgPool) -> Result<Vec<Device>> {
    let rows = sqlx::query(
        "SELECT id, name, sign_pk, kx_pk, invite, admin, approved_by, approval_sig, revoked_by, \
         revocation_sig, extract(epoch from joined_at)::bigint AS joined \
         FROM airlock.devices ORDER BY joined_at, id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Device {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                admin: false,
                admin_claimed: r.try_get("admin")?,
                status: DeviceStatus::Pending,
                approved_by: r.try_get("approved_by")?,
                joined_at: r.try_get("joined")?,
                sign_pk: r.try_get("sign_pk")?,
                kx_pk: r.try_get("kx_pk")?,
                invite: r.try_get("invite")?,
                approval_sig: r.try_get("approval_sig")?,
                revoked_by: r.try_get("revoked_by")?,
                revocation_sig: r.try_get("revocation_sig")?,
            })
        })
        .collect()
}

/// Verifies membership from the pinned root: a device is a member only through a
/// chain of admin signatures that ends at the root. Any row that claims an
/// approval or a revocation that does not verify is refused, by name.
fn verify_members(
    team: &str,
    root: &str,
    root_pk: &[u8],
    rows: Vec<Device>,
) -> Result<BTreeMap<String, Device>> {
    let mut devs: BTreeMap<String, Device> = BTreeMap::new();
    for d in rows {
        if id_of(&d.sign_pk, &d.kx_pk).as_deref() != Some(d.id.as_str()) {
            return Err(TeamError::Tampered {
                row: d.row(),
                why: "the id does not match its public keys".into(),
            });
        }
        devs.insert(d.id.clone(), d);
    }
    match devs.get(root) {
        Some(r) if r.sign_pk == root_pk => {}
        _ => {
            return Err(TeamError::Tampered {
                row: format!("airlock.devices id={root}"),
                why: "the root admin is missing or has other keys than the ones pinned on this device".into(),
            });
        }
    }
    let mut approved: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut progress = false;
        for d in devs.values() {
            if approved.contains(&d.id) {
                continue;
            }
            let Some(by) = d.approved_by.as_deref() else {
                continue;
            };
            let signer = if d.id == root {
                (by == root).then_some(root_pk)
            } else if approved.contains(by) && devs.get(by).is_some_and(|a| a.admin_claimed) {
                devs.get(by).map(|a| a.sign_pk.as_slice())
            } else {
                None
            };
            let Some(pk) = signer else { continue };
            let sig = d.approval_sig.as_deref().unwrap_or_default();
            let admin = d.admin_claimed || d.id == root;
            if !keys::verify(pk, &approval_msg(team, d, admin, by), sig) {
                return Err(TeamError::Tampered {
                    row: d.row(),
                    why: format!("its approval is not signed by admin device {by}"),
                });
            }
            approved.insert(d.id.clone());
            progress = true;
        }
        if !progress {
            break;
        }
    }
    if let Some(d) = devs
        .values()
        .find(|d| d.approved_by.is_some() && !approved.contains(&d.id))
    {
        return Err(TeamError::Tampered {
            row: d.row(),
            why: format!(
                "it claims approval by {}, which is not an admin of this team",
                d.approved_by.as_deref().unwrap_or_default()
            ),
        });
    }
    for id in &approved {
        if let Some(d) = devs.get_mut(id) {
            d.status = DeviceStatus::Approved;
            d.admin = d.admin_claimed || *id == root;
        }
    }
    let mut revoked = Vec::new();
    for d in devs.values() {
        let Some(by) = d.revoked_by.as_deref() else {
            continue;
        };
        let ok = devs.get(by).filter(|a| a.is_admin()).is_some_and(|a| {
            keys::verify(
                &a.sign_pk,
                &revocation_msg(team, &d.id, by),
                d.revocation_sig.as_deref().unwrap_or_default(),
            )
        });
        if !ok {
            return Err(TeamError::Tampered {
                row: d.row(),
                why: format!("its revocation is not signed by admin device {by}"),
            });
        }
        revoked.push(d.id.clone());
    }
    for id in revoked {
        if let Some(d) = devs.get_mut(&id) {
            d.status = DeviceStatus::Revoked;
        }
    }
    Ok(devs)
}

async fn insert_change(
    tx: &mut Transaction<'_, Postgres>,
    team: &str,
    keys: &DeviceKeys,
    device: &str,
    kind: &str,
    subject: &str,
    body: &str,
) -> Result<i64> {
    let at = jiff::Timestamp::now().as_millisecond();
    insert_change_at(tx, team, keys, device, kind, subject, body, at).await
}

/// [`insert_change`] signed at `at` (unix ms).
#[allow(clippy::too_many_arguments)]
async fn insert_change_at(
    tx: &mut Transaction<'_, Postgres>,
    team: &str,
    keys: &DeviceKeys,
    device: &str,
    kind: &str,
    subject: &str,
    body: &str,
    at: i64,
) -> Result<i64> {
    let sig = keys.sign(&change_msg(team, kind, subject, body, at, device));
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO airlock.changes (kind, subject, body, at, device, sig) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
    )
    .bind(kind)
    .bind(subject)
    .bind(body)
    .bind(at)
    .bind(device)
    .bind(sig)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(seq.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

/// The change-log kind of an incident lock (`airlock incident`): its subject
/// names one capability or agent as a revocation's does.
const INCIDENT_LOCK: &str = "incident-lock";
/// The change-log kind of the release of every incident lock (`airlock
/// unlock`, admin devices only).
const INCIDENT_UNLOCK: &str = "incident-unlock";
/// The change-log kinds of an admin adding or removing one of the team's
/// agents (subject: the agent's name).
const AGENT_ADD: &str = "agent-add";
const AGENT_REMOVE: &str = "agent-remove";
/// The change-log kind of an agent token's revocation (subject: its id): every
/// device revokes the token of that id if it holds it. Any member's counts, as
/// a revocation's does: it only takes authority away.
const TOKEN_REVOKE: &str = "token-revoke";
/// The change-log kind of an admin designating the device that writes the
/// audit checkpoints (subject: its id).
const CHECKPOINTER: &str = "checkpointer";
/// What a member device cannot do with the lock.
const RELEASE: &str = "release the team's lock";
/// The change-log kind of an admin handing every device a new database URL
/// (subject: the epoch whose key seals it; body: base64 of nonce ‖ ciphertext).
const DB_URL: &str = "db-url";
/// Kinds that count only when signed by an admin device.
const ADMIN_KINDS: [&str; 6] = [
    "unlock",
    INCIDENT_UNLOCK,
    AGENT_ADD,
    AGENT_REMOVE,
    CHECKPOINTER,
    DB_URL,
];

/// The associated data a new database URL is sealed with.
fn db_url_aad(team: &str, epoch: i32, author: &str) -> Vec<u8> {
    message(
        "db url aad",
        &[team.as_bytes(), &epoch.to_be_bytes(), author.as_bytes()],
    )
}

/// What a device signs for its row of `airlock.device_db_urls`: (team,
/// device, the URL version it uses, the signed instant of the row).
pub fn device_url_msg(team: &str, device: &str, url_at: i64, at: i64) -> Vec<u8> {
    message(
        "device db url",
        &[
            team.as_bytes(),
            device.as_bytes(),
            &url_at.to_be_bytes(),
            &at.to_be_bytes(),
        ],
    )
}

/// Whether a database error says a table does not exist (a schema older
/// than migration 4, before any device's `airlock team sync` upgraded it).
fn undefined_table(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42P01")
}

/// Connects to `url` and checks that it holds this device's team (same id
/// and root): a URL that points anywhere else is refused before it is kept.
async fn connect_same_team(url: &str, state: &TeamState) -> Result<PgPool> {
    let pool = connect(url).await?;
    let (team, root) = team_row(&pool).await?;
    if team != state.team || root != state.root {
        return Err(TeamError::BadUrl(format!(
            "{} holds another team than this device's ({})",
            display_db(url)?,
            state.team
        )));
    }
    Ok(pool)
}

/// A revocation (or an incident lock) as the change log carries it.
fn revoke_subject(t: &RevokeTarget) -> String {
    match t {
        RevokeTarget::Session(s) => format!("session:{s}"),
        RevokeTarget::Agent(a) => format!("agent:{a}"),
        RevokeTarget::Capability(c) => format!("capability:{c}"),
        RevokeTarget::All => "all".into(),
    }
}

fn parse_revoke_subject(s: &str) -> Option<RevokeTarget> {
    if s == "all" {
        return Some(RevokeTarget::All);
    }
    let (k, v) = s.split_once(':')?;
    Some(match k {
        "session" => RevokeTarget::Session(v.into()),
        "agent" => RevokeTarget::Agent(v.into()),
        "capability" => RevokeTarget::Capability(v.into()),
        _ => return None,
    })
}

impl Team {
    /// Whether `home` is a device of a team (no database needed to tell).
    pub fn is_member(home: &Home) -> bool {
        local::is_member(home)
    }

    /// `airlock team init`: creates the schema and the team; this device becomes
    /// the root admin and holds the first epoch key.
    pub async fn init(home: &Home, vault: &Vault, db_url: &str, name: &str) -> Result<Team> {
        if let Ok(s) = local::load_state(home) {
            return Err(TeamError::AlreadyInTeam { team: s.team });
        }
        let db = display_db(db_url)?;
        let pool = connect(db_url).await?;
        crate::schema::migrate(&pool).await?;
        let keys = DeviceKeys::generate()?;
        let public = keys.public();
        let id = public.id();
        let mut t = [0u8; 16];
        keys::random(&mut t)?;
        let team = hex::encode(t);
        let mut tx = pool.begin().await?;
        let existing: Option<String> = sqlx::query_scalar("SELECT id FROM airlock.team FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(team) = existing {
            return Err(TeamError::TeamExists { team });
        }
        sqlx::query("INSERT INTO airlock.team (id, root_device) VALUES ($1, $2)")
            .bind(&team)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let me = Device {
            id: id.clone(),
            name: name.into(),
            admin: true,
            status: DeviceStatus::Approved,
            approved_by: Some(id.clone()),
            joined_at: now_secs(),
            sign_pk: public.sign_pk.to_vec(),
            kx_pk: public.kx_pk.to_vec(),
            invite: None,
            approval_sig: None,
            revoked_by: None,
            revocation_sig: None,
            admin_claimed: true,
        };
        let sig = keys.sign(&approval_msg(&team, &me, true, &id));
        sqlx::query(
            "INSERT INTO airlock.devices (id, name, sign_pk, kx_pk, admin, approved_by, approval_sig) \
             VALUES ($1, $2, $3, $4, true, $1, $5)",
        )
        .bind(&id)
        .bind(name)
        .bind(&me.sign_pk)
        .bind(&me.kx_pk)
        .bind(sig)
        .execute(&mut *tx)
        .await?;
        let mut epoch_key = Zeroizing::new([0u8; KEY_LEN]);
        keys::random(epoch_key.as_mut())?;
        insert_wrapped(&mut tx, &team, &keys, &id, 1, &epoch_key, &me).await?;
        insert_change(&mut tx, &team, &keys, &id, "device", &id, "root").await?;
        tx.commit().await?;
        let state = TeamState::enrolled(team, id.clone(), id, hex::encode(public.sign_pk), db);
        Team::enrolled(home, vault, state, keys, db_url, pool)
    }

    /// `airlock team join`: checks the code against the team's pinned root,
    /// consumes it, registers this device's public keys (pending approval).
    pub async fn join(
        home: &Home,
        vault: &Vault,
        db_url: &str,
        code: &str,
        name: &str,
    ) -> Result<Team> {
        if let Ok(s) = local::load_state(home) {
            return Err(TeamError::AlreadyInTeam { team: s.team });
        }
        let raw = B64URL
            .decode(code.trim())
            .ok()
            .filter(|r| r.len() == 32)
            .ok_or(TeamError::BadCode)?;
        let (secret, root_prefix) = raw.split_at(16);
        let db = display_db(db_url)?;
        let pool = connect(db_url).await?;
        let (team, root) = team_row(&pool).await?;
        if hex::decode(&root)
            .ok()
            .as_deref()
            .map(|r| &r[..16.min(r.len())])
            != Some(root_prefix)
        {
            return Err(TeamError::Tampered {
                row: "airlock.team".into(),
                why: "its root admin is not the one this invite code names".into(),
            });
        }
        let rows = load_devices(&pool).await?;
        let root_pk = rows
            .iter()
            .find(|d| d.id == root)
            .map(|d| d.sign_pk.clone())
            .ok_or_else(|| TeamError::Tampered {
                row: format!("airlock.devices id={root}"),
                why: "the root admin's row is missing".into(),
            })?;
        let members = verify_members(&team, &root, &root_pk, rows)?;
        let keys = DeviceKeys::generate()?;
        let public = keys.public();
        let id = public.id();
        let code_hash = Sha256::digest(secret).to_vec();
        let mut tx = pool.begin().await?;
        let inv = sqlx::query(
            "UPDATE airlock.invites SET used_by = $1, used_at = now() \
             WHERE code_hash = $2 AND used_by IS NULL AND expires > extract(epoch from now()) \
             RETURNING admin, expires, created_by, sig",
        )
        .bind(&id)
        .bind(&code_hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(TeamError::InviteRefused)?;
        let admin: bool = inv.try_get("admin")?;
        let expires: i64 = inv.try_get("expires")?;
        let by: String = inv.try_get("created_by")?;
        let sig: Vec<u8> = inv.try_get("sig")?;
        let signed = members
            .values()
            .find(|d| d.id == by && d.is_admin())
            .is_some_and(|a| {
                keys::verify(
                    &a.sign_pk,
                    &invite_msg(&team, &code_hash, admin, expires, &by),
                    &sig,
                )
            });
        if !signed {
            return Err(TeamError::Tampered {
                row: "airlock.invites (this code)".into(),
                why: format!("it is not signed by admin device {by}"),
            });
        }
        sqlx::query(
            "INSERT INTO airlock.devices (id, name, sign_pk, kx_pk, invite) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(name)
        .bind(public.sign_pk.to_vec())
        .bind(public.kx_pk.to_vec())
        .bind(&code_hash)
        .execute(&mut *tx)
        .await?;
        insert_change(&mut tx, &team, &keys, &id, "device", &id, "joined").await?;
        tx.commit().await?;
        let state = TeamState::enrolled(team, id, root, hex::encode(&root_pk), db);
        Team::enrolled(home, vault, state, keys, db_url, pool)
    }

    /// A device just enrolled (`init`, `join`): its keys and database URL
    /// sealed in the vault, its state saved, connected through `pool`.
    fn enrolled(
        home: &Home,
        vault: &Vault,
        state: TeamState,
        keys: DeviceKeys,
        db_url: &str,
        pool: PgPool,
    ) -> Result<Team> {
        local::save_device(home, vault, &state.device, &keys, db_url)?;
        local::save_state(home, &state)?;
        Ok(Team {
            home: home.clone(),
            state,
            keys,
            db_url: Zeroizing::new(db_url.into()),
            pool,
            audit_seen: None,
        })
    }

    /// Opens this home's team membership and connects.
    pub async fn open(home: &Home, vault: &Vault) -> Result<Team> {
        let state = local::load_state(home)?;
        let (keys, db_url) = local::load_device(home, vault, &state.device)?;
        let pool = connect(&db_url).await?;
        Ok(Team {
            home: home.clone(),
            state,
            keys,
            db_url,
            pool,
            audit_seen: None,
        })
    }

    /// Opens this home's membership and syncs once, giving up after `limit`
    /// (then a database error: the pool timed out).
    pub async fn catch_up(home: &Home, vault: &mut Vault, limit: Duration) -> Result<SyncReport> {
        tokio::time::timeout(limit, async {
            Team::open(home, vault).await?.sync(vault).await
        })
        .await
        .unwrap_or(Err(TeamError::Db(sqlx::Error::PoolTimedOut)))
    }

    /// Applies the schema's migrations this database does not have yet (a team
    /// made by an older airlock); `airlock team sync` runs it.
    pub async fn migrate(&self) -> Result<()> {
        crate::schema::migrate(&self.pool).await
    }

    /// This device's id.
    pub fn device(&self) -> &str {
        &self.state.device
    }

    /// This device's fingerprint.
    pub fn fingerprint(&self) -> String {
        keys::fingerprint(&self.state.device)
    }

    /// The team id.
    pub fn team_id(&self) -> &str {
        &self.state.team
    }

    pub(crate) async fn view(&self) -> Result<View> {
        let (team, root) = team_row(&self.pool).await?;
        if team != self.state.team || root != self.state.root {
            return Err(TeamError::Tampered {
                row: "airlock.team".into(),
                why: "the team id or its root admin differs from the ones pinned on this device"
                    .into(),
            });
        }
        let root_pk = hex::decode(&self.state.root_sign_pk).map_err(|_| TeamError::Local {
            path: local::dir(&self.home).join("state.json"),
            detail: "root_sign_pk is not hex".into(),
        })?;
        let members = verify_members(&team, &root, &root_pk, load_devices(&self.pool).await?)?;
        let rows = sqlx::query(
            "SELECT epoch, enc, ct, wrapped_by, sig FROM airlock.epoch_keys WHERE device = $1",
        )
        .bind(&self.state.device)
        .fetch_all(&self.pool)
        .await?;
        let mut epochs = BTreeMap::new();
        for r in rows {
            let epoch: i32 = r.try_get("epoch")?;
            let enc: Vec<u8> = r.try_get("enc")?;
            let ct: Vec<u8> = r.try_get("ct")?;
            let by: String = r.try_get("wrapped_by")?;
            let sig: Vec<u8> = r.try_get("sig")?;
            let row = || {
                format!(
                    "airlock.epoch_keys epoch={epoch} device={}",
                    self.state.device
                )
            };
            let signed = members
                .values()
                .find(|d| d.id == by && d.is_admin())
                .is_some_and(|a| {
                    keys::verify(
                        &a.sign_pk,
                        &epoch_msg(&team, epoch, &self.state.device, &enc, &ct, &by),
                        &sig,
                    )
                });
            if !signed {
                return Err(TeamError::Tampered {
                    row: row(),
                    why: format!("it is not signed by admin device {by}"),
                });
            }
            let key = self
                .keys
                .unwrap_epoch_key(&epoch_info(&team, epoch, &self.state.device), &enc, &ct)
                .ok_or_else(|| TeamError::Tampered {
                    row: row(),
                    why: "it does not open with this device's key".into(),
                })?;
            epochs.insert(epoch, key);
        }
        Ok(View { members, epochs })
    }

    pub(crate) fn me<'v>(&self, view: &'v View) -> Result<&'v Device> {
        if view
            .members
            .get(&self.state.device)
            .is_some_and(|d| d.status == DeviceStatus::Revoked)
        {
            return Err(TeamError::DeviceRevoked {
                fingerprint: self.fingerprint(),
            });
        }
        view.member(&self.state.device)
            .ok_or_else(|| TeamError::NotApproved {
                fingerprint: self.fingerprint(),
            })
    }

    /// The one device whose fingerprint (or id) starts with `fingerprint`.
    fn find<'v>(&self, view: &'v View, fingerprint: &str) -> Result<&'v Device> {
        let want: String = fingerprint
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .collect::<String>()
            .to_ascii_lowercase();
        let named = || fingerprint.escape_debug().to_string();
        if want.len() < 8 {
            return Err(TeamError::NoSuchDevice(named()));
        }
        let found: Vec<&Device> = view
            .members
            .values()
            .filter(|d| d.id.starts_with(&want))
            .collect();
        match found.as_slice() {
            [d] => Ok(*d),
            [] => Err(TeamError::NoSuchDevice(named())),
            _ => Err(TeamError::AmbiguousDevice(named())),
        }
    }

    fn require_admin(&self, view: &View, action: &'static str) -> Result<()> {
        if self.me(view)?.admin {
            Ok(())
        } else {
            Err(TeamError::NotAdmin { action })
        }
    }

    /// `airlock team invite`: a single-use code valid for one hour.
    pub async fn invite(&self, admin: bool) -> Result<String> {
        let view = self.view().await?;
        self.require_admin(&view, "invite devices")?;
        let mut secret = [0u8; 16];
        keys::random(&mut secret)?;
        let code_hash = Sha256::digest(secret).to_vec();
        let expires = now_secs() + INVITE_TTL_SECS;
        let sig = self.keys.sign(&invite_msg(
            &self.state.team,
            &code_hash,
            admin,
            expires,
            &self.state.device,
        ));
        sqlx::query(
            "INSERT INTO airlock.invites (code_hash, admin, expires, created_by, sig) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&code_hash)
        .bind(admin)
        .bind(expires)
        .bind(&self.state.device)
        .bind(sig)
        .execute(&self.pool)
        .await?;
        let root = hex::decode(&self.state.root).unwrap_or_default();
        let mut raw = secret.to_vec();
        raw.extend_from_slice(&root[..16.min(root.len())]);
        Ok(B64URL.encode(raw))
    }

    /// Every device, as verified from the root.
    pub async fn devices(&self) -> Result<Vec<Device>> {
        Ok(sorted(self.view().await?))
    }

    /// `airlock team approve`: signs the device's membership (admin as its invite
    /// said) and wraps every epoch key this admin holds to it.
    pub async fn approve(&self, fingerprint: &str) -> Result<Device> {
        let view = self.view().await?;
        self.require_admin(&view, "approve devices")?;
        let d = self.find(&view, fingerprint)?.clone();
        if d.status != DeviceStatus::Pending {
            return Ok(d);
        }
        let invite = d.invite.clone().ok_or_else(|| TeamError::Tampered {
            row: d.row(),
            why: "a pending device without an invite".into(),
        })?;
        let inv = sqlx::query(
            "SELECT admin, expires, created_by, sig, used_by FROM airlock.invites WHERE code_hash = $1",
        )
        .bind(&invite)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| TeamError::Tampered {
            row: d.row(),
            why: "its invite does not exist".into(),
        })?;
        let admin: bool = inv.try_get("admin")?;
        let expires: i64 = inv.try_get("expires")?;
        let by: String = inv.try_get("created_by")?;
        let sig: Vec<u8> = inv.try_get("sig")?;
        let used_by: Option<String> = inv.try_get("used_by")?;
        let signed = view.admin(&by).is_some_and(|a| {
            keys::verify(
                &a.sign_pk,
                &invite_msg(&self.state.team, &invite, admin, expires, &by),
                &sig,
            )
        });
        if !signed || used_by.as_deref() != Some(d.id.as_str()) {
            return Err(TeamError::Tampered {
                row: format!("airlock.invites used by {}", d.id),
                why: "the invite is not an admin's, or was used by another device".into(),
            });
        }
        let me = &self.state.device;
        let sig = self
            .keys
            .sign(&approval_msg(&self.state.team, &d, admin, me));
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE airlock.devices SET admin = $2, approved_by = $3, approval_sig = $4 \
             WHERE id = $1 AND approved_by IS NULL",
        )
        .bind(&d.id)
        .bind(admin)
        .bind(me)
        .bind(sig)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            for (epoch, key) in &view.epochs {
                insert_wrapped(&mut tx, &self.state.team, &self.keys, me, *epoch, key, &d).await?;
            }
            insert_change(
                &mut tx,
                &self.state.team,
                &self.keys,
                me,
                "device",
                &d.id,
                "approved",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Device {
            status: DeviceStatus::Approved,
            admin,
            approved_by: Some(me.clone()),
            ..d
        })
    }

    /// The newest epoch whose key this device holds, with the key (none: the
    /// device is not approved yet).
    fn newest_epoch<'v>(&self, view: &'v View) -> Result<(&'v i32, &'v Zeroizing<[u8; KEY_LEN]>)> {
        view.epochs
            .iter()
            .next_back()
            .ok_or_else(|| TeamError::NotApproved {
                fingerprint: self.fingerprint(),
            })
    }

    /// Seals a new version of a secret under the current epoch key and logs it.
    /// Returns its team version.
    pub async fn publish_secret(&mut self, name: &str, value: &[u8]) -> Result<i32> {
        let view = self.view().await?;
        self.me(&view)?;
        let (epoch, key) = self.newest_epoch(&view)?;
        let team = &self.state.team;
        let me = &self.state.device;
        let mut tx = self.pool.begin().await?;
        // One writer per name at a time; the primary key refuses a duplicate anyway.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('airlock.secrets:' || $1))")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let version: i32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM airlock.secrets WHERE name = $1",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let aad = secret_aad(team, name, version, *epoch);
        let (nonce, ct) = keys::seal_secret(key, team, &aad, value)?;
        let sig = self
            .keys
            .sign(&secret_msg(team, name, version, *epoch, &nonce, &ct, me));
        sqlx::query(
            "INSERT INTO airlock.secrets (name, version, epoch, nonce, ct, author, sig) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(name)
        .bind(version)
        .bind(*epoch)
        .bind(nonce)
        .bind(ct)
        .bind(me)
        .bind(sig)
        .execute(&mut *tx)
        .await?;
        insert_change(
            &mut tx,
            team,
            &self.keys,
            me,
            "secret",
            name,
            &version.to_string(),
        )
        .await?;
        tx.commit().await?;
        // This device already holds the value: its own sync must not rewrite it.
        self.state.secrets.insert(name.into(), version);
        local::save_state(&self.home, &self.state)?;
        Ok(version)
    }

    /// `airlock team push-config`: publishes this device's services and
    /// capabilities (all, or those named) whose table differs from the team's
    /// newest version, each as a new version signed by this admin device. A name
    /// given that this device no longer defines but the team does is published as
    /// removed. Returns (kind, name, team version, removed) of each row written.
    pub async fn push_config(
        &mut self,
        names: &[String],
    ) -> Result<Vec<(String, String, i32, bool)>> {
        let view = self.view().await?;
        self.require_admin(&view, "share services and capabilities")?;
        let team = self.state.team.clone();
        let me = self.state.device.clone();
        let local = crate::config::entries(&self.home, &crate::config::read_local(&self.home)?)?;
        let current = verified_config(&self.pool, &team, &view).await?;
        let wanted = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
        let mut plan: Vec<(String, String, String)> = Vec::new();
        for (kind, name, body) in &local {
            let same = current
                .iter()
                .any(|(k, n, _, b)| k == kind && n == name && b == body);
            if wanted(name) && !same {
                plan.push((kind.clone(), name.clone(), body.clone()));
            }
        }
        for (kind, name, _, body) in &current {
            let here = local.iter().any(|(k, n, _)| k == kind && n == name);
            if !names.is_empty() && wanted(name) && !here && !body.is_empty() {
                plan.push((kind.clone(), name.clone(), String::new()));
            }
        }
        for n in names {
            let known =
                local.iter().any(|(_, l, _)| l == n) || current.iter().any(|(_, c, _, _)| c == n);
            if !known {
                return Err(TeamError::Config(airlock_config::ConfigError::Edit(
                    format!(
                        "no service or capability \"{}\" here or in the team",
                        n.escape_debug()
                    ),
                )));
            }
        }
        let mut done = Vec::new();
        if plan.is_empty() {
            return Ok(done);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('airlock.config'))")
            .execute(&mut *tx)
            .await?;
        for (kind, name, body) in plan {
            let version: i32 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM airlock.config WHERE kind = $1 AND name = $2",
            )
            .bind(&kind)
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?;
            let sig = self
                .keys
                .sign(&config_msg(&team, &kind, &name, version, &body, &me));
            sqlx::query(
                "INSERT INTO airlock.config (kind, name, version, body, author, sig) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&kind)
            .bind(&name)
            .bind(version)
            .bind(&body)
            .bind(&me)
            .bind(sig)
            .execute(&mut *tx)
            .await?;
            insert_change(
                &mut tx,
                &team,
                &self.keys,
                &me,
                "config",
                &format!("{kind}:{name}"),
                &version.to_string(),
            )
            .await?;
            done.push((kind, name, version, body.is_empty()));
        }
        tx.commit().await?;
        // This device already holds what it published.
        for (kind, name, version, _) in &done {
            self.state.config.insert(format!("{kind}:{name}"), *version);
        }
        local::save_state(&self.home, &self.state)?;
        Ok(done)
    }

    /// `airlock team revoke-device`: removes a device (admin devices only). In one
    /// transaction: the device's revocation, signed; a new team key epoch wrapped
    /// to every remaining approved device; every secret's current version
    /// re-sealed under it (a new version, same value); whatever the device signed
    /// as an admin and is still current (wrapped keys of older epochs, the newest
    /// service/capability rows) signed again by this admin; a change-log row.
    /// The device can no longer sync, and holds no key of the new epoch.
    pub async fn revoke_device(&mut self, fingerprint: &str) -> Result<DeviceRevocation> {
        let view = self.view().await?;
        self.require_admin(&view, "revoke devices")?;
        let d = self.find(&view, fingerprint)?.clone();
        let team = self.state.team.clone();
        let me = self.state.device.clone();
        if d.id == me || d.id == self.state.root {
            return Err(TeamError::CannotRevoke {
                fingerprint: d.fingerprint(),
                why: if d.id == self.state.root {
                    "it is the team's root admin, pinned on every device"
                } else {
                    "it is this device; revoke it from another admin device"
                },
            });
        }
        if d.status == DeviceStatus::Revoked {
            return Err(TeamError::CannotRevoke {
                fingerprint: d.fingerprint(),
                why: "it is already revoked",
            });
        }
        let held: Vec<i32> =
            sqlx::query_scalar("SELECT epoch FROM airlock.epoch_keys WHERE device = $1")
                .bind(&d.id)
                .fetch_all(&self.pool)
                .await?;
        let exposed: BTreeSet<String> = if held.is_empty() {
            BTreeSet::new()
        } else {
            sqlx::query_scalar::<_, String>(
                "SELECT DISTINCT name FROM airlock.secrets WHERE epoch = ANY($1)",
            )
            .bind(&held)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect()
        };
        let remaining: Vec<&Device> = view
            .members
            .values()
            .filter(|m| m.status == DeviceStatus::Approved && m.id != d.id)
            .collect();

        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('airlock.epochs'))")
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(
            "UPDATE airlock.devices SET revoked_by = $2, revocation_sig = $3 \
             WHERE id = $1 AND revoked_by IS NULL",
        )
        .bind(&d.id)
        .bind(&me)
        .bind(self.keys.sign(&revocation_msg(&team, &d.id, &me)))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(TeamError::CannotRevoke {
                fingerprint: d.fingerprint(),
                why: "it is already revoked",
            });
        }
        let epoch: i32 =
            sqlx::query_scalar("SELECT COALESCE(MAX(epoch), 0) + 1 FROM airlock.epoch_keys")
                .fetch_one(&mut *tx)
                .await?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        keys::random(key.as_mut())?;
        for m in &remaining {
            insert_wrapped(&mut tx, &team, &self.keys, &me, epoch, &key, m).await?;
        }
        // Keys of older epochs the revoked admin wrapped: wrapped again by this one.
        if d.admin {
            let rows = sqlx::query(
                "SELECT epoch, device FROM airlock.epoch_keys WHERE wrapped_by = $1 AND device <> $1",
            )
            .bind(&d.id)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let (e, to): (i32, String) = (r.try_get("epoch")?, r.try_get("device")?);
                let (Some(k), Some(m)) = (view.epochs.get(&e), view.members.get(&to)) else {
                    continue;
                };
                sqlx::query("DELETE FROM airlock.epoch_keys WHERE epoch = $1 AND device = $2")
                    .bind(e)
                    .bind(&to)
                    .execute(&mut *tx)
                    .await?;
                insert_wrapped(&mut tx, &team, &self.keys, &me, e, k, m).await?;
            }
            for (kind, name, _, body) in verified_config(&self.pool, &team, &view).await? {
                let author: Option<String> = sqlx::query_scalar(
                    "SELECT author FROM airlock.config WHERE kind = $1 AND name = $2 \
                     ORDER BY version DESC LIMIT 1",
                )
                .bind(&kind)
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?;
                if author.as_deref() == Some(d.id.as_str()) {
                    self.insert_config(&mut tx, &kind, &name, &body).await?;
                }
            }
        }
        // Every secret's current version, re-sealed under the new epoch.
        let rows = sqlx::query(
            "SELECT DISTINCT ON (name) name, version, epoch, nonce, ct FROM airlock.secrets \
             ORDER BY name, version DESC",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut resealed = Vec::new();
        for r in rows {
            let name: String = r.try_get("name")?;
            let version: i32 = r.try_get("version")?;
            let old: i32 = r.try_get("epoch")?;
            let nonce: Vec<u8> = r.try_get("nonce")?;
            let ct: Vec<u8> = r.try_get("ct")?;
            let row = format!("airlock.secrets name={name} version={version}");
            let value = open_row_secret(&view, &team, &name, version, old, &nonce, &ct, row)?;
            let next = version + 1;
            let (nonce, ct) =
                keys::seal_secret(&key, &team, &secret_aad(&team, &name, next, epoch), &value)?;
            let sig = self
                .keys
                .sign(&secret_msg(&team, &name, next, epoch, &nonce, &ct, &me));
            sqlx::query(
                "INSERT INTO airlock.secrets (name, version, epoch, nonce, ct, author, sig) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&name)
            .bind(next)
            .bind(epoch)
            .bind(nonce)
            .bind(ct)
            .bind(&me)
            .bind(sig)
            .execute(&mut *tx)
            .await?;
            resealed.push((name, next));
        }
        insert_change(&mut tx, &team, &self.keys, &me, "device", &d.id, "revoked").await?;
        tx.commit().await?;
        for (name, version) in &resealed {
            self.state.secrets.insert(name.clone(), *version);
        }
        local::save_state(&self.home, &self.state)?;
        Ok(DeviceRevocation {
            device: Device {
                status: DeviceStatus::Revoked,
                ..d
            },
            epoch,
            devices: remaining.len(),
            resealed,
            exposed: exposed.into_iter().collect(),
        })
    }

    async fn insert_config(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        kind: &str,
        name: &str,
        body: &str,
    ) -> Result<i32> {
        let (team, me) = (&self.state.team, &self.state.device);
        let version: i32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM airlock.config WHERE kind = $1 AND name = $2",
        )
        .bind(kind)
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
        let sig = self
            .keys
            .sign(&config_msg(team, kind, name, version, body, me));
        sqlx::query(
            "INSERT INTO airlock.config (kind, name, version, body, author, sig) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(kind)
        .bind(name)
        .bind(version)
        .bind(body)
        .bind(me)
        .bind(sig)
        .execute(&mut **tx)
        .await?;
        insert_change(
            tx,
            team,
            &self.keys,
            me,
            "config",
            &format!("{kind}:{name}"),
            &version.to_string(),
        )
        .await?;
        self.state.config.insert(format!("{kind}:{name}"), version);
        Ok(version)
    }

    /// Logs a revocation made on this device, for every other device.
    pub async fn publish_revocation(&self, target: &RevokeTarget) -> Result<i64> {
        self.publish_change("revoke", &revoke_subject(target), None)
            .await
    }

    /// Logs the emergency lock (`true`) or its release (admin devices only).
    pub async fn publish_lock(&self, locked: bool) -> Result<i64> {
        let admin = (!locked).then_some(RELEASE);
        self.publish_change(if locked { "lock" } else { "unlock" }, "", admin)
            .await
    }

    /// Adds (`add`) or removes one of the team's agents (admin devices only).
    /// Once the team has agents, every device issues tokens only to them; a
    /// removed agent's tokens are revoked and its sessions end on every device.
    pub async fn publish_agent(&self, name: &str, add: bool) -> Result<i64> {
        let kind = if add { AGENT_ADD } else { AGENT_REMOVE };
        self.publish_change(kind, name, Some("add or remove the team's agents"))
            .await
    }

    /// Logs the revocation of the agent token `id` (made on this device or
    /// not): every device that holds it revokes it.
    pub async fn publish_token_revocation(&self, id: &str) -> Result<i64> {
        self.publish_change(TOKEN_REVOKE, id, None).await
    }

    /// Designates the admin device (`fingerprint`) that writes the team's
    /// audit checkpoints (admin devices only).
    pub async fn designate_checkpointer(&self, fingerprint: &str) -> Result<(Device, i64)> {
        let view = self.view().await?;
        self.require_admin(&view, "designate the audit checkpointer")?;
        let d = self.find(&view, fingerprint)?.clone();
        if !d.is_admin() {
            return Err(TeamError::NotAdminDevice {
                fingerprint: d.fingerprint(),
            });
        }
        let seq = self
            .publish_change(
                CHECKPOINTER,
                &d.id,
                Some("designate the audit checkpointer"),
            )
            .await?;
        Ok((d, seq))
    }

    /// `airlock team set-db-url`: this device's database URL becomes `url`,
    /// once it connects and holds this team, and this device is a member there
    /// (checked first, through `url`: the old URL may no longer work). On an
    /// admin device the URL is also sealed under the newest epoch key (which a
    /// device removed by `revoke-device` does not hold) and logged, signed, for
    /// every device: each re-seals it into its `team/device.sealed` at its next
    /// sync. Returns the change number on an admin device.
    ///
    /// An admin device also records the new version as its own (its signed
    /// instant) and reports it in `airlock.device_db_urls`, as every other
    /// device does when it adopts the URL.
    pub async fn set_db_url(home: &Home, vault: &Vault, url: &str) -> Result<DbUrlSet> {
        let state = local::load_state(home)?;
        let (keys, _) = local::load_device(home, vault, &state.device)?;
        let pool = connect_same_team(url, &state).await?;
        let mut t = Team {
            home: home.clone(),
            state,
            keys,
            db_url: Zeroizing::new(url.to_string()),
            pool: pool.clone(),
            audit_seen: None,
        };
        let view = t.view().await?;
        let me = t.me(&view)?.clone();
        t.adopt_db_url(vault, url, pool, None)?;
        let sent = t.publish_db_url(&view, &me, url).await?;
        if let Some((_, at)) = sent {
            t.state.db_url_at = Some(at);
            local::save_state(&t.home, &t.state)?;
        }
        let report_error = t.report_db_url().await.err().map(|e| e.to_string());
        Ok(DbUrlSet {
            change: sent.map(|(seq, _)| seq),
            report_error,
        })
    }

    /// On an admin device, seals `url` under the newest epoch key and logs it
    /// for every device: the change number and signed instant.
    async fn publish_db_url(
        &self,
        view: &View,
        me: &Device,
        url: &str,
    ) -> Result<Option<(i64, i64)>> {
        if !me.admin {
            return Ok(None);
        }
        let (epoch, key) = self.newest_epoch(view)?;
        let team = &self.state.team;
        let aad = db_url_aad(team, *epoch, &me.id);
        let (nonce, ct) = keys::seal_secret(key, team, &aad, url.as_bytes())?;
        let body = B64URL.encode([nonce, ct].concat());
        let at = jiff::Timestamp::now().as_millisecond();
        let mut tx = self.pool.begin().await?;
        let seq = insert_change_at(
            &mut tx,
            team,
            &self.keys,
            &me.id,
            DB_URL,
            &epoch.to_string(),
            &body,
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(Some((seq, at)))
    }

    /// Records in `airlock.device_db_urls`, signed by this device, the
    /// database URL version it uses (`db_url_at`, 0: the URL it enrolled
    /// with), unless it already did: an admin's `team status` names the
    /// devices that have not moved to the newest one.
    async fn report_db_url(&mut self) -> Result<()> {
        let url_at = self.state.db_url_at.unwrap_or(0);
        if self.state.db_url_reported == Some(url_at) {
            return Ok(());
        }
        let at = jiff::Timestamp::now().as_millisecond();
        let device = &self.state.device;
        let sig = self
            .keys
            .sign(&device_url_msg(&self.state.team, device, url_at, at));
        sqlx::query(
            "INSERT INTO airlock.device_db_urls (device, url_at, at, sig) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (device) DO UPDATE SET url_at = $2, at = $3, sig = $4",
        )
        .bind(device)
        .bind(url_at)
        .bind(at)
        .bind(sig)
        .execute(&self.pool)
        .await?;
        self.state.db_url_reported = Some(url_at);
        local::save_state(&self.home, &self.state)?;
        Ok(())
    }

    /// Which database URL each approved device uses: the newest admin-signed
    /// `db-url` row, and every device's row of `airlock.device_db_urls` that
    /// verifies against its key.
    async fn url_status(&self, view: &View) -> Result<UrlStatus> {
        let team = &self.state.team;
        let mut newest: Option<UrlVersion> = None;
        let rows = sqlx::query(
            "SELECT seq, subject, body, at, device, sig FROM airlock.changes \
             WHERE kind = $1 ORDER BY seq",
        )
        .bind(DB_URL)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let (subject, body): (String, String) = (r.try_get("subject")?, r.try_get("body")?);
            let (at, device): (i64, String) = (r.try_get("at")?, r.try_get("device")?);
            let sig: Vec<u8> = r.try_get("sig")?;
            // As a sync takes them: admin-signed (a revoked admin's too), the
            // newest by signed instant.
            let signed = view.members.get(&device).is_some_and(|d| {
                d.admin
                    && keys::verify(
                        &d.sign_pk,
                        &change_msg(team, DB_URL, &subject, &body, at, &device),
                        &sig,
                    )
            });
            if signed && newest.as_ref().is_none_or(|n| n.at < at) {
                newest = Some(UrlVersion {
                    seq: r.try_get("seq")?,
                    at,
                    by: device,
                });
            }
        }
        let rows = match sqlx::query("SELECT device, url_at, at, sig FROM airlock.device_db_urls")
            .fetch_all(&self.pool)
            .await
        {
            Ok(rows) => rows,
            // Not migrated yet: no device has reported.
            Err(e) if undefined_table(&e) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut reports = BTreeMap::new();
        for r in rows {
            let device: String = r.try_get("device")?;
            let (url_at, at): (i64, i64) = (r.try_get("url_at")?, r.try_get("at")?);
            let sig: Vec<u8> = r.try_get("sig")?;
            let signed = view.members.get(&device).is_some_and(|d| {
                keys::verify(&d.sign_pk, &device_url_msg(team, &device, url_at, at), &sig)
            });
            reports.insert(device, signed.then_some((url_at, at)));
        }
        let devices = view
            .members
            .values()
            .filter(|d| d.status == DeviceStatus::Approved)
            .map(|d| {
                let report = reports.get(&d.id);
                let ok = report.copied().flatten();
                DeviceUrl {
                    device: d.id.clone(),
                    name: d.name.clone(),
                    url_at: ok.map(|(u, _)| u),
                    reported_at: ok.map(|(_, a)| a),
                    refused: report.is_some_and(Option::is_none),
                }
            })
            .collect();
        Ok(UrlStatus { newest, devices })
    }

    /// Keeps `url` as this device's database URL (sealed), with its pool.
    fn adopt_db_url(
        &mut self,
        vault: &Vault,
        url: &str,
        pool: PgPool,
        at: Option<i64>,
    ) -> Result<()> {
        local::save_device(&self.home, vault, &self.state.device, &self.keys, url)?;
        self.state.db = display_db(url)?;
        if at.is_some() {
            self.state.db_url_at = at;
        }
        local::save_state(&self.home, &self.state)?;
        self.db_url = Zeroizing::new(url.to_string());
        self.pool = pool;
        Ok(())
    }

    /// Opens a `db-url` row's URL (sealed under `epoch`'s key by `author`).
    fn open_db_url(
        &self,
        view: &View,
        epoch: &str,
        body: &str,
        author: &str,
        row: &str,
    ) -> Result<Zeroizing<String>> {
        let bad = |why: &str| TeamError::Tampered {
            row: row.to_string(),
            why: why.to_string(),
        };
        let epoch: i32 = epoch
            .parse()
            .map_err(|_| bad("its epoch is not a number"))?;
        let raw = B64URL
            .decode(body)
            .map_err(|_| bad("its body is not base64"))?;
        if raw.len() < 24 {
            return Err(bad("its body is too short"));
        }
        let key = view
            .epochs
            .get(&epoch)
            .ok_or_else(|| bad("this device holds no key of its epoch"))?;
        let (nonce, ct) = raw.split_at(24);
        let team = &self.state.team;
        let plain = keys::open_secret(key, team, &db_url_aad(team, epoch, author), nonce, ct)
            .ok_or_else(|| bad("it does not open under its epoch key"))?;
        let url =
            Zeroizing::new(String::from_utf8(plain.to_vec()).map_err(|_| bad("it is not a URL"))?);
        display_db(&url).map_err(|_| bad("it is not a postgres URL"))?;
        Ok(url)
    }

    /// The admin device that writes audit checkpoints: the one an admin
    /// designated last, while it is an admin; otherwise the root admin.
    pub(crate) fn checkpointer(&self, view: &View) -> String {
        self.state
            .checkpointer
            .as_ref()
            .map(|c| c.device.clone())
            .filter(|d| view.admin(d).is_some())
            .unwrap_or_else(|| self.state.root.clone())
    }

    /// Logs the incident locks `airlock incident` set on this device (each
    /// capability and agent a row of its own, in one transaction), for every
    /// other device; the last change number.
    pub async fn publish_incident_locks(
        &self,
        capabilities: &[String],
        agents: &[String],
    ) -> Result<i64> {
        let subjects: Vec<String> = capabilities
            .iter()
            .map(|c| revoke_subject(&RevokeTarget::Capability(c.clone())))
            .chain(
                agents
                    .iter()
                    .map(|a| revoke_subject(&RevokeTarget::Agent(a.clone()))),
            )
            .collect();
        self.publish_changes(INCIDENT_LOCK, &subjects, None).await
    }

    /// Logs the release of every incident lock made until now (`airlock unlock`;
    /// admin devices only).
    pub async fn publish_incident_unlock(&self) -> Result<i64> {
        self.publish_changes(INCIDENT_UNLOCK, &[String::new()], Some(RELEASE))
            .await
    }

    async fn publish_change(
        &self,
        kind: &str,
        subject: &str,
        admin: Option<&'static str>,
    ) -> Result<i64> {
        self.publish_changes(kind, &[subject.to_string()], admin)
            .await
    }

    /// One row of `kind` per subject, in one transaction; the last number.
    /// `admin`: the action, when only an admin device may do it.
    async fn publish_changes(
        &self,
        kind: &str,
        subjects: &[String],
        admin: Option<&'static str>,
    ) -> Result<i64> {
        let view = self.view().await?;
        self.me(&view)?;
        if let Some(action) = admin {
            self.require_admin(&view, action)?;
        }
        let mut tx = self.pool.begin().await?;
        let mut seq = 0;
        for subject in subjects {
            seq = insert_change(
                &mut tx,
                &self.state.team,
                &self.keys,
                &self.state.device,
                kind,
                subject,
                "",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(seq)
    }

    /// One catch-up: verifies every row it uses, writes new secret versions into
    /// the local vault, and applies the change log's revocations and lock to this
    /// home's state files (which every running server of the home checks on each
    /// request). A row that does not verify stops the sync, named; nothing of it
    /// is applied.
    pub async fn sync(&mut self, vault: &mut Vault) -> Result<SyncReport> {
        let view = self.view().await?;
        self.me(&view)?;
        let team = self.state.team.clone();
        let mut report = SyncReport::default();

        // Secrets: the newest version of each, verified and opened.
        let rows = sqlx::query(
            "SELECT DISTINCT ON (name) name, version, epoch, nonce, ct, author, sig \
             FROM airlock.secrets ORDER BY name, version DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut fresh: Vec<(String, i32, Zeroizing<Vec<u8>>)> = Vec::new();
        for r in rows {
            let name: String = r.try_get("name")?;
            let version: i32 = r.try_get("version")?;
            if self.state.secrets.get(&name) == Some(&version) {
                continue;
            }
            let epoch: i32 = r.try_get("epoch")?;
            let nonce: Vec<u8> = r.try_get("nonce")?;
            let ct: Vec<u8> = r.try_get("ct")?;
            let author: String = r.try_get("author")?;
            let sig: Vec<u8> = r.try_get("sig")?;
            let row = format!("airlock.secrets name={name} version={version}");
            let signed = view.member(&author).is_some_and(|a| {
                keys::verify(
                    &a.sign_pk,
                    &secret_msg(&team, &name, version, epoch, &nonce, &ct, &author),
                    &sig,
                )
            });
            if !signed {
                return Err(TeamError::Tampered {
                    row,
                    why: format!("it is not signed by member device {author}"),
                });
            }
            let value = open_row_secret(&view, &team, &name, version, epoch, &nonce, &ct, row)?;
            fresh.push((name, version, value));
        }

        // Services and capabilities: the newest row of each, verified (every sync,
        // applied or not), applied when this device has not applied that version.
        let fresh_config: Vec<(String, String, i32, String)> =
            verified_config(&self.pool, &team, &view)
                .await?
                .into_iter()
                .filter(|(k, n, v, _)| self.state.config.get(&format!("{k}:{n}")) != Some(v))
                .collect();

        // The change log since the last number applied.
        let rows = sqlx::query(
            "SELECT seq, kind, subject, body, at, device, sig FROM airlock.changes \
             WHERE seq > $1 ORDER BY seq",
        )
        .bind(self.state.last_seq)
        .fetch_all(&self.pool)
        .await?;
        let revoked_ids: Vec<String> = view
            .members
            .values()
            .filter(|d| d.status == DeviceStatus::Revoked)
            .map(|d| d.id.clone())
            .collect();
        let revoked_at: BTreeMap<String, i64> = sqlx::query(
            "SELECT subject, MIN(seq) AS seq FROM airlock.changes \
             WHERE kind = 'device' AND body = 'revoked' AND subject = ANY($1) GROUP BY subject",
        )
        .bind(&revoked_ids)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("subject")?, r.try_get("seq")?)))
        .collect::<Result<_>>()?;
        let mut actions = Vec::new();
        let mut new_url: Option<(Zeroizing<String>, i64)> = None;
        let mut last_seq = self.state.last_seq;
        for r in rows {
            let seq: i64 = r.try_get("seq")?;
            let kind: String = r.try_get("kind")?;
            let subject: String = r.try_get("subject")?;
            let body: String = r.try_get("body")?;
            let at: i64 = r.try_get("at")?;
            let device: String = r.try_get("device")?;
            let sig: Vec<u8> = r.try_get("sig")?;
            let row = format!("airlock.changes seq={seq}");
            // A device's own enrollment is signed by that (still pending) device.
            // A revoked device's changes count up to its revocation's row.
            let signer = if (kind == "device" && body == "joined")
                || revoked_at.get(&device).is_some_and(|r| seq < *r)
            {
                view.members.get(&device)
            } else {
                view.member(&device)
            };
            let signed = signer.is_some_and(|d| {
                keys::verify(
                    &d.sign_pk,
                    &change_msg(&team, &kind, &subject, &body, at, &device),
                    &sig,
                )
            });
            if !signed {
                return Err(TeamError::Tampered {
                    row,
                    why: format!("it is not signed by member device {device}"),
                });
            }
            // Admin-only kinds: signed by a device that was an admin when it
            // signed (a revoked admin's rows before its revocation still count).
            if ADMIN_KINDS.contains(&kind.as_str()) && !signer.is_some_and(|d| d.admin) {
                return Err(TeamError::Tampered {
                    row,
                    why: format!("{kind} by {device}, which is not an admin device"),
                });
            }
            let mine = device == self.state.device;
            let newer = |t: Option<i64>| t.is_none_or(|t| t < at);
            if kind == DB_URL
                && !mine
                && newer(self.state.db_url_at)
                && newer(new_url.as_ref().map(|(_, t)| *t))
            {
                let url = self.open_db_url(&view, &subject, &body, &device, &row)?;
                new_url = Some((url, at));
            }
            actions.push((kind, subject, at, mine));
            last_seq = seq;
            report.changes += 1;
        }

        // Apply: the vault first (under the home's writer lock, re-read from disk),
        // then airlock.toml.
        let _lock = (!fresh.is_empty() || !fresh_config.is_empty())
            .then(|| self.home.lock())
            .transpose()?;
        if !fresh.is_empty() {
            vault.refresh(&Zeroizing::new(airlock_home::read(
                &self.home.vault_path(),
            )?))?;
            for (name, _, value) in &fresh {
                if vault.contains(name) {
                    vault.rotate(name, value)?;
                } else {
                    vault.insert(name, value)?;
                }
            }
            vault.save(&self.home)?;
        }
        for (name, version, _) in fresh {
            self.state.secrets.insert(name.clone(), version);
            report.secrets.push((name, version));
        }
        let rows: Vec<(String, String, String)> = fresh_config
            .iter()
            .map(|(k, n, _, b)| (k.clone(), n.clone(), b.clone()))
            .collect();
        crate::config::apply(&self.home, &rows)?;
        drop(_lock);
        for (kind, name, version, _) in fresh_config {
            self.state.config.insert(format!("{kind}:{name}"), version);
            report.config.push((kind, name, version));
        }
        for (kind, subject, at, mine) in actions {
            match kind.as_str() {
                "revoke" => {
                    if let (Some(target), Ok(t)) = (
                        parse_revoke_subject(&subject),
                        jiff::Timestamp::from_millisecond(at),
                    ) {
                        let sessions = state::apply_team_revocation(&self.home, &target, t)?;
                        // As a local `revoke --all | --agent A` does: the agent
                        // tokens too, those issued before the signed instant (a
                        // server restarted later would otherwise start a new
                        // session with an old token).
                        let tokens = self.revoke_tokens(&target, t)?;
                        if sessions || tokens > 0 {
                            report.revocations += 1;
                        }
                    }
                }
                "lock" | "unlock" if self.state.lock_at.is_none_or(|l| l < at) => {
                    self.state.lock_at = Some(at);
                    let locked = kind == "lock";
                    if locked {
                        airlock_home::ensure_private_dir(&self.home.state_dir())?;
                        state::engage_lock(&self.home)?;
                    } else {
                        state::release_lock(&self.home)?;
                    }
                    report.lock = Some(locked);
                }
                INCIDENT_LOCK if self.state.incident_unlock_at.is_none_or(|u| u < at) => {
                    let target = parse_revoke_subject(&subject).filter(|t| {
                        matches!(t, RevokeTarget::Capability(_) | RevokeTarget::Agent(_))
                    });
                    if let (Some(target), Ok(t)) = (target, jiff::Timestamp::from_millisecond(at))
                        && state::apply_team_incident_lock(&self.home, &target, t)?
                        && !mine
                    {
                        report.incident_locks.push(target);
                    }
                }
                INCIDENT_UNLOCK if self.state.incident_unlock_at.is_none_or(|u| u < at) => {
                    self.state.incident_unlock_at = Some(at);
                    if let Ok(t) = jiff::Timestamp::from_millisecond(at) {
                        let released = state::release_team_incident_locks(&self.home, t)?;
                        report.incident_unlocked.extend(
                            released
                                .capabilities
                                .into_keys()
                                .map(RevokeTarget::Capability)
                                .chain(released.agents.into_keys().map(RevokeTarget::Agent)),
                        );
                    }
                }
                AGENT_ADD | AGENT_REMOVE
                    if airlock_home::is_valid_name(&subject)
                        && self.state.agents.get(&subject).is_none_or(|a| a.at < at) =>
                {
                    let removed = kind == AGENT_REMOVE;
                    self.state
                        .agents
                        .insert(subject.clone(), local::TeamAgent { at, removed });
                    report.agents.push((subject, removed));
                }
                TOKEN_REVOKE => {
                    let _lock = self.home.lock()?;
                    report.tokens_revoked +=
                        airlock_broker::tokens::revoke_where(&self.home, |t| t.id == subject)
                            .map_err(|e| self.token_store_error(&e))?;
                }
                CHECKPOINTER if self.state.checkpointer.as_ref().is_none_or(|c| c.at < at) => {
                    self.state.checkpointer = Some(local::Designation {
                        device: subject.clone(),
                        at,
                    });
                    report.checkpointer = Some(subject);
                }
                _ => {}
            }
        }
        // A removed agent: its sessions end and every token of it is revoked,
        // whenever issued (one issued here before this device heard of the
        // removal too); this device issues it no new one.
        let removed: Vec<(String, i64)> = report
            .agents
            .iter()
            .filter_map(|(a, _)| {
                self.state
                    .agents
                    .get(a)
                    .filter(|s| s.removed)
                    .map(|s| (a.clone(), s.at))
            })
            .collect();
        for (agent, at) in removed {
            if let Ok(t) = jiff::Timestamp::from_millisecond(at) {
                let target = RevokeTarget::Agent(agent.clone());
                if state::apply_team_revocation(&self.home, &target, t)? {
                    report.revocations += 1;
                }
            }
            let _lock = self.home.lock()?;
            report.tokens_revoked +=
                airlock_broker::tokens::revoke_where(&self.home, |t| t.agent == agent)
                    .map_err(|e| self.token_store_error(&e))?;
        }
        // A new database URL from an admin: kept (sealed) once it reaches this
        // team; until it does (its credential not made yet), the sync fails
        // and the next one tries again, on the old URL.
        if let Some((url, at)) = new_url {
            let pool = connect_same_team(&url, &self.state).await?;
            self.adopt_db_url(vault, &url, pool, Some(at))?;
            report.db_url = true;
        }
        // Which URL this device uses, for the admin waiting to take the old
        // credential away (once per version; a failure is retried at the
        // next sync and does not fail this one).
        report.db_url_report = self.report_db_url().await.err().map(|e| e.to_string());
        self.state.last_seq = last_seq;
        self.state.last_sync = Some(jiff::Timestamp::now());
        local::save_state(&self.home, &self.state)?;
        report.last_seq = last_seq;
        Ok(report)
    }

    /// Revokes this home's agent tokens that a team revocation of everything
    /// or of an agent covers: those issued at or before its instant.
    fn revoke_tokens(&self, target: &RevokeTarget, at: jiff::Timestamp) -> Result<usize> {
        let agent = match target {
            RevokeTarget::All => None,
            RevokeTarget::Agent(a) => Some(a.as_str()),
            _ => return Ok(0),
        };
        let _lock = self.home.lock()?;
        airlock_broker::tokens::revoke_where(&self.home, |t| {
            t.created <= at && agent.is_none_or(|a| t.agent == a)
        })
        .map_err(|e| self.token_store_error(&e))
    }

    fn token_store_error(&self, e: &airlock_broker::tokens::TokenError) -> TeamError {
        TeamError::Local {
            path: airlock_broker::tokens::store_path(&self.home),
            detail: e.to_string(),
        }
    }

    /// Follows the change log: a sync now, then on every `pg_notify`, after every
    /// reconnect, and every `poll` at the latest (every second while a sync
    /// fails); and, while in sync, uploads
    /// this device's new audit records every [`AUDIT_TICK`] and (admin devices)
    /// writes an audit checkpoint every [`CHECKPOINT_EVERY`] when a head moved.
    /// `report` hears each outcome. Returns only if the listener cannot be set up.
    pub async fn follow(
        &mut self,
        vault: &mut Vault,
        poll: Duration,
        mut report: impl FnMut(Followed),
    ) -> Result<()> {
        use tokio::time::Instant;
        let mut listener = listen(&self.db_url).await?;
        let mut next_sync = Instant::now();
        let mut next_checkpoint = Instant::now();
        let mut in_sync = false;
        loop {
            if Instant::now() >= next_sync {
                let r = self.sync(vault).await;
                in_sync = r.is_ok();
                // A new database URL from an admin: listen through it (the old
                // credential may stop working at any time now).
                if r.as_ref().is_ok_and(|r| r.db_url)
                    && let Ok(l) = listen(&self.db_url).await
                {
                    listener = l;
                }
                report(Followed::Sync(r));
                // Out of sync (the database away), try again soon: a restarted
                // database wakes no listener, and the server refuses every
                // request past max_staleness until a catch-up succeeds.
                next_sync = Instant::now() + if in_sync { poll } else { poll.min(RETRY) };
            }
            if in_sync {
                let r = match self.upload_audit().await {
                    Ok(u) if Instant::now() >= next_checkpoint => {
                        next_checkpoint = Instant::now() + CHECKPOINT_EVERY;
                        self.checkpoint().await.map(|c| (u, c))
                    }
                    Ok(u) => Ok((u, None)),
                    Err(e) => Err(e),
                };
                report(Followed::Audit(r));
            }
            let wait = next_sync
                .saturating_duration_since(Instant::now())
                .min(AUDIT_TICK);
            tokio::select! {
                n = listener.try_recv() => match n {
                    // A change, or (None) the connection dropped: try_recv
                    // reconnects on the next call; catch up now either way.
                    Ok(_) => next_sync = Instant::now(),
                    Err(e) => {
                        report(Followed::Sync(Err(e.into())));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// `airlock doctor` on a team device: the database's clock, whether this
    /// connection uses TLS, the change log's head, this device's audit backlog.
    pub async fn health(&self) -> Result<Health> {
        let t0 = jiff::Timestamp::now();
        let row = sqlx::query(
            "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now_ms, \
             COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl, \
             (SELECT COALESCE(MAX(seq), 0) FROM airlock.changes) AS head",
        )
        .fetch_one(&self.pool)
        .await?;
        let t1 = jiff::Timestamp::now();
        let db_ms: i64 = row.try_get("now_ms")?;
        let rtt_ms = (t1.as_millisecond() - t0.as_millisecond()).max(0);
        let local_ms = t0.as_millisecond() + rtt_ms / 2;
        let uploaded: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM airlock.audit WHERE device = $1")
                .bind(&self.state.device)
                .fetch_one(&self.pool)
                .await?;
        let loopback = loopback(&self.db_url);
        Ok(Health {
            db: self.state.db.clone(),
            tls: row.try_get("ssl")?,
            loopback,
            rtt_ms,
            skew_ms: local_ms - db_ms,
            last_sync: self.state.last_sync,
            last_seq: self.state.last_seq,
            head_seq: row.try_get("head")?,
            audit_rows: uploaded,
        })
    }

    /// `airlock team status`.
    pub async fn status(&self) -> Result<Status> {
        let view = self.view().await?;
        let checkpointer = self.checkpointer(&view);
        let db_url = self.url_status(&view).await?;
        let devices = sorted(view);
        let head_seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM airlock.changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(Status {
            team: self.state.team.clone(),
            device: self.state.device.clone(),
            db: self.state.db.clone(),
            last_seq: self.state.last_seq,
            head_seq,
            last_sync: self.state.last_sync,
            devices,
            checkpointer,
            db_url,
        })
    }
}

/// A listener on the change log's channel.
async fn listen(url: &str) -> Result<PgListener> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Every device of a view, in the order they joined.
fn sorted(view: View) -> Vec<Device> {
    let mut v: Vec<Device> = view.members.into_values().collect();
    v.sort_by_key(|d| (d.joined_at, d.id.clone()));
    v
}

/// Whether a database URL's host is this machine (loopback address,
/// `localhost`, or a UNIX socket: no host, or a `host=/path` parameter).
fn loopback(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    if u.query_pairs()
        .any(|(k, v)| k == "host" && v.starts_with('/'))
    {
        return true;
    }
    match u.host() {
        None => true,
        // postgres: is not a special scheme, so an IPv4 address is a "domain".
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
    }
}

async fn team_row(pool: &PgPool) -> Result<(String, String)> {
    let row = match sqlx::query("SELECT id, root_device FROM airlock.team")
        .fetch_optional(pool)
        .await
    {
        Ok(r) => r,
        // 42P01: undefined_table (no schema yet).
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => None,
        Err(e) => return Err(e.into()),
    };
    let row = row.ok_or(TeamError::NoTeam)?;
    Ok((row.try_get("id")?, row.try_get("root_device")?))
}

async fn insert_wrapped(
    tx: &mut Transaction<'_, Postgres>,
    team: &str,
    keys: &DeviceKeys,
    me: &str,
    epoch: i32,
    key: &[u8; KEY_LEN],
    to: &Device,
) -> Result<()> {
    let (enc, ct) = keys::wrap_epoch_key(&to.kx_pk, &epoch_info(team, epoch, &to.id), key)?;
    let sig = keys.sign(&epoch_msg(team, epoch, &to.id, &enc, &ct, me));
    sqlx::query(
        "INSERT INTO airlock.epoch_keys (epoch, device, enc, ct, wrapped_by, sig) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(epoch)
    .bind(&to.id)
    .bind(enc)
    .bind(ct)
    .bind(me)
    .bind(sig)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts_are_told_from_remote_ones() {
        for url in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgres://u:p@127.9.0.1/db",
            "postgres://u:p@localhost/db",
            "postgres://u:p@[::1]:5432/db",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert!(super::loopback(url), "{url}");
        }
        for url in [
            "postgres://u:p@db.internal:5432/db",
            "postgres://u:p@10.0.0.5/db",
            "postgres://u:p@localhost.evil.example/db",
            "postgres://u:p@[2001:db8::1]/db",
            "not a url",
        ] {
            assert!(!super::loopback(url), "{url}");
        }
    }
}
