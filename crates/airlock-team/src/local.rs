//! This device's team files in the airlock home.
//!
//! | file | content |
//! |---|---|
//! | `team/state.json` | team id, this device's id, the pinned root admin (id and signing key), the database's address without its password, the last change number applied, the last sync, the versions of team secrets applied, the team's agents, the designated audit checkpointer, the database URL version adopted and the one last reported to the database |
//! | `team/device.sealed` | this device's two private key seeds and the full database URL, sealed (XChaCha20-Poly1305) under the vault's team-device key |

use std::collections::BTreeMap;
use std::path::PathBuf;

use airlock_home::Home;
use airlock_vault::Vault;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keys::{self, DeviceKeys, KEY_LEN};
use crate::{Result, TeamError};

/// What this device remembers about its team (no secret in it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TeamState {
    /// The team id.
    pub team: String,
    /// This device's id.
    pub device: String,
    /// The root admin's device id, pinned at init or join.
    pub root: String,
    /// The root admin's Ed25519 key (hex), pinned with it.
    pub root_sign_pk: String,
    /// Where the database is (host:port/db; never the password).
    pub db: String,
    /// The last change-log number applied.
    #[serde(default)]
    pub last_seq: i64,
    /// When the last successful sync finished.
    #[serde(default)]
    pub last_sync: Option<jiff::Timestamp>,
    /// The team version of each secret applied to the local vault.
    #[serde(default)]
    pub secrets: BTreeMap<String, i32>,
    /// The signed instant of the last lock/unlock applied (the latest wins).
    #[serde(default)]
    pub lock_at: Option<i64>,
    /// The signed instant of the last release of the incident locks applied:
    /// an incident lock signed at or before it is not applied again.
    #[serde(default)]
    pub incident_unlock_at: Option<i64>,
    /// The team version of each service and capability applied to `airlock.toml`
    /// (`service:NAME`, `capability:NAME`).
    #[serde(default)]
    pub config: BTreeMap<String, i32>,
    /// The newest row of this device's audit chain it uploaded (team seq and
    /// row hash): `audit verify --team` on this device checks that the
    /// database still holds it, so deleting the chain's newest rows is seen.
    #[serde(default)]
    pub audit_head: Option<Mark>,
    /// The newest audit checkpoint this device wrote (admin devices), checked
    /// the same way.
    #[serde(default)]
    pub checkpoint: Option<Mark>,
    /// The team's agents, each as the newest admin-signed `agent-add` or
    /// `agent-remove` row says (by signed instant: a replayed older row changes
    /// nothing). Empty: the team defines no agents, and any agent name may be
    /// issued a token on this device.
    #[serde(default)]
    pub agents: BTreeMap<String, TeamAgent>,
    /// The admin device designated to write audit checkpoints, with the signed
    /// instant of its designation; `None`: the root admin.
    #[serde(default)]
    pub checkpointer: Option<Designation>,
    /// The signed instant of the newest database URL an admin handed this
    /// device (a `db-url` row) that it adopted, or sent itself (admin devices).
    #[serde(default)]
    pub db_url_at: Option<i64>,
    /// The URL version (a `db_url_at`; 0: the URL it enrolled with) this
    /// device last reported in `airlock.device_db_urls`; a sync reports it
    /// again while it differs from `db_url_at`.
    #[serde(default)]
    pub db_url_reported: Option<i64>,
}

/// One of the team's agents as this device last synced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamAgent {
    /// The signed instant (unix ms) of the row that set this.
    pub at: i64,
    /// Removed by an admin (its tokens revoked on every device, no new one issued).
    pub removed: bool,
}

/// An admin's designation of the audit checkpointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Designation {
    /// The designated admin device's id.
    pub device: String,
    /// The signed instant (unix ms) of the designation.
    pub at: i64,
}

impl TeamState {
    /// The state of a device that has just enrolled: nothing applied yet.
    pub fn enrolled(
        team: String,
        device: String,
        root: String,
        root_sign_pk: String,
        db: String,
    ) -> TeamState {
        TeamState {
            team,
            device,
            root,
            root_sign_pk,
            db,
            ..TeamState::default()
        }
    }

    /// Why this device refuses to issue a token to `agent`, if it does: the
    /// team removed it, or the team defines its agents and `agent` is not one.
    pub fn agent_refusal(&self, agent: &str) -> Option<String> {
        let agent_shown = agent.escape_debug();
        match self.agents.get(agent) {
            Some(a) if a.removed => Some(format!(
                "agent \"{agent_shown}\" was removed from the team by an admin; an admin's `airlock team agent add {agent_shown}` brings it back"
            )),
            Some(_) => None,
            None if self.agents.values().any(|a| !a.removed) => Some(format!(
                "agent \"{agent_shown}\" is not one of the team's agents (`airlock team agent list`); an admin adds it with `airlock team agent add {agent_shown}`"
            )),
            None => None,
        }
    }
}

/// A row this device remembers: its number and hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The row's number (team audit seq, or checkpoint seq).
    pub seq: i64,
    /// Its hash, hex.
    pub hash: String,
}

#[derive(Serialize, Deserialize)]
struct SealedFile {
    nonce: String,
    ciphertext: String,
}

#[derive(Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct DeviceSecrets {
    sign_seed: String,
    kx_seed: String,
    db_url: String,
}

/// The team directory.
pub fn dir(home: &Home) -> PathBuf {
    home.root().join("team")
}
fn state_path(home: &Home) -> PathBuf {
    dir(home).join("state.json")
}
fn sealed_path(home: &Home) -> PathBuf {
    dir(home).join("device.sealed")
}

/// Whether this home is a device of a team.
pub fn is_member(home: &Home) -> bool {
    state_path(home).exists()
}

/// Reads `team/state.json`.
pub fn load_state(home: &Home) -> Result<TeamState> {
    let path = state_path(home);
    if !path.exists() {
        return Err(TeamError::NotInTeam);
    }
    let bytes = airlock_home::read(&path)?;
    serde_json::from_slice(&bytes).map_err(|e| TeamError::Local {
        path,
        detail: e.to_string(),
    })
}

/// Writes `team/state.json` atomically.
pub fn save_state(home: &Home, state: &TeamState) -> Result<()> {
    airlock_home::ensure_private_dir(&dir(home))?;
    let path = state_path(home);
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| TeamError::Local {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    airlock_home::write_atomic(&path, &bytes)?;
    Ok(())
}

fn aad(device: &str) -> Vec<u8> {
    keys::message("device file", &[device.as_bytes()])
}

/// Seals the device keys and the database URL under the vault's team-device key.
pub fn save_device(
    home: &Home,
    vault: &Vault,
    device: &str,
    keys: &DeviceKeys,
    db_url: &str,
) -> Result<()> {
    let (s, x) = keys.seeds();
    let plain = Zeroizing::new(
        serde_json::to_vec(&DeviceSecrets {
            sign_seed: hex::encode(s.as_ref()),
            kx_seed: hex::encode(x.as_ref()),
            db_url: db_url.to_string(),
        })
        .map_err(|e| TeamError::Crypto(e.to_string()))?,
    );
    let (nonce, ct) = keys::seal_local(&vault.team_device_key(), &aad(device), &plain)?;
    let file = serde_json::to_vec_pretty(&SealedFile {
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    })
    .map_err(|e| TeamError::Crypto(e.to_string()))?;
    airlock_home::ensure_private_dir(&dir(home))?;
    airlock_home::write_atomic(&sealed_path(home), &file)?;
    Ok(())
}

/// Opens the device keys and the database URL.
pub fn load_device(
    home: &Home,
    vault: &Vault,
    device: &str,
) -> Result<(DeviceKeys, Zeroizing<String>)> {
    let path = sealed_path(home);
    let bad = |detail: &str| TeamError::Local {
        path: path.clone(),
        detail: detail.to_string(),
    };
    let bytes = airlock_home::read(&path)?;
    let file: SealedFile = serde_json::from_slice(&bytes).map_err(|e| bad(&e.to_string()))?;
    let nonce = B64.decode(&file.nonce).map_err(|_| bad("nonce"))?;
    let ct = B64
        .decode(&file.ciphertext)
        .map_err(|_| bad("ciphertext"))?;
    let plain = keys::open_local(&vault.team_device_key(), &aad(device), &nonce, &ct)
        .ok_or_else(|| bad("it does not open with this vault's key"))?;
    let parsed: DeviceSecrets = serde_json::from_slice(&plain).map_err(|_| bad("content"))?;
    let seed = |h: &str| -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let v = Zeroizing::new(hex::decode(h).map_err(|_| bad("seed"))?);
        let arr: [u8; KEY_LEN] = v.as_slice().try_into().map_err(|_| bad("seed length"))?;
        Ok(Zeroizing::new(arr))
    };
    let s = seed(&parsed.sign_seed)?;
    let x = seed(&parsed.kx_seed)?;
    let keys = DeviceKeys::from_seeds(&s, &x);
    Ok((keys, Zeroizing::new(parsed.db_url.clone())))
}
