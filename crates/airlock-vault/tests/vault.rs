//! Integration tests for the vault: round trips, tampering, golden vectors.
#![allow(clippy::unwrap_used)]

use airlock_home::Home;
use airlock_vault::{
    KdfParams, LockedVault, MasterKey, NewVaultKey, UnlockMode, Vault, VaultError,
};
use proptest::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// The weakest parameters the vault accepts: keeps tests fast, still real Argon2id.
const TEST_KDF: KdfParams = KdfParams {
    m_kib: 19 * 1024,
    t: 2,
    p: 1,
};

fn new_home() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("home"));
    (dir, home)
}

/// A new vault (unlocked by `key`) holding the one secret `name`, saved to `home`.
fn saved_with(home: &Home, key: NewVaultKey<'_>, name: &str, value: &[u8]) {
    let mut v = Vault::init(home, key).unwrap();
    v.insert(name, value).unwrap();
    v.save(home).unwrap();
}

fn reopen(home: &Home) -> Vault {
    LockedVault::load(home)
        .unwrap()
        .unlock_with_key_file(home)
        .unwrap()
}

#[test]
fn key_file_vault_round_trip_and_persistence() {
    let (_d, home) = new_home();
    saved_with(&home, NewVaultKey::KeyFile, "stripe", b"sk_live_123");
    let v = reopen(&home);
    assert_eq!(v.get("stripe").unwrap().expose_secret(), b"sk_live_123");
    assert_eq!(v.mode(), UnlockMode::KeyFile);
    assert_eq!(std::fs::read(home.master_key_path()).unwrap().len(), 32);
}

#[test]
fn init_twice_never_destroys_the_vault() {
    let (_d, home) = new_home();
    saved_with(&home, NewVaultKey::KeyFile, "a", b"value-a");
    let key_before = std::fs::read(home.master_key_path()).unwrap();
    let err = Vault::init(&home, NewVaultKey::KeyFile).unwrap_err();
    assert!(
        matches!(err, VaultError::AlreadyInitialized { .. }),
        "{err}"
    );
    let pass = SecretString::from("pw");
    assert!(Vault::init(&home, NewVaultKey::Passphrase(&pass, TEST_KDF)).is_err());
    assert_eq!(std::fs::read(home.master_key_path()).unwrap(), key_before);
    assert_eq!(reopen(&home).get("a").unwrap().expose_secret(), b"value-a");
}

#[test]
fn passphrase_unlocks_and_wrong_one_is_named() {
    let (_d, home) = new_home();
    let pass = SecretString::from("correct horse");
    saved_with(&home, NewVaultKey::Passphrase(&pass, TEST_KDF), "k", b"v1");
    assert!(
        !home.master_key_path().exists(),
        "passphrase mode wrote a key file"
    );
    let locked = LockedVault::load(&home).unwrap();
    assert_eq!(locked.mode(), UnlockMode::Passphrase);
    let err = locked
        .unlock_with_passphrase(&SecretString::from("wrong"))
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongPassphrase), "{err}");
    let v = LockedVault::load(&home)
        .unwrap()
        .unlock_with_passphrase(&pass)
        .unwrap();
    assert_eq!(v.get("k").unwrap().expose_secret(), b"v1");
}

#[test]
fn changing_the_passphrase_keeps_every_secret_ciphertext() {
    let (_d, home) = new_home();
    let pass = SecretString::from("old");
    let mut v = Vault::init(&home, NewVaultKey::Passphrase(&pass, TEST_KDF)).unwrap();
    v.insert("k", b"value").unwrap();
    let before: Value = serde_json::from_slice(&v.to_bytes()).unwrap();
    v.set_passphrase(&SecretString::from("new"), TEST_KDF)
        .unwrap();
    v.save(&home).unwrap();
    let after: Value = serde_json::from_slice(&v.to_bytes()).unwrap();
    assert_eq!(
        before["secrets"], after["secrets"],
        "secrets were rewritten"
    );
    assert_ne!(before["data_key"], after["data_key"]);
    let locked = LockedVault::load(&home).unwrap();
    assert!(locked.unlock_with_passphrase(&pass).is_err());
    let v = LockedVault::load(&home)
        .unwrap()
        .unlock_with_passphrase(&SecretString::from("new"))
        .unwrap();
    assert_eq!(v.get("k").unwrap().expose_secret(), b"value");
}

#[test]
fn wrong_key_file_is_refused() {
    let (_d, home) = new_home();
    Vault::init(&home, NewVaultKey::KeyFile).unwrap();
    let other = MasterKey::generate().unwrap();
    let err = LockedVault::load(&home)
        .unwrap()
        .unlock_with_key(&other, "master.key")
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{err}");
}

#[test]
fn rotate_bumps_version_and_keeps_created() {
    let (_d, home) = new_home();
    let mut v = Vault::init(&home, NewVaultKey::KeyFile).unwrap();
    v.insert("k", b"one").unwrap();
    let fp1 = v.list()[0].fingerprint.clone();
    assert!(matches!(
        v.insert("k", b"two"),
        Err(VaultError::SecretExists { .. })
    ));
    v.rotate("k", b"two").unwrap();
    let info = &v.list()[0];
    assert_eq!(info.version, 2);
    assert!(info.rotated.is_some());
    assert_ne!(info.fingerprint, fp1);
    assert_eq!(v.get("k").unwrap().expose_secret(), b"two");
    assert!(matches!(
        v.rotate("nope", b"x"),
        Err(VaultError::NoSuchSecret { .. })
    ));
}

#[test]
fn header_mode_cannot_be_edited() {
    // Claiming another unlock mode changes the data key's AAD: refused.
    let (_d, home) = new_home();
    Vault::init(&home, NewVaultKey::KeyFile).unwrap();
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(home.vault_path()).unwrap()).unwrap();
    doc["unlock"] = serde_json::json!({"mode": "keyring"});
    let locked = LockedVault::from_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let key = MasterKey::from_key_file(&std::fs::read(home.master_key_path()).unwrap()).unwrap();
    assert!(locked.unlock_with_key(&key, "master.key").is_err());
}

#[test]
fn malformed_files_are_corrupt_not_panics() {
    for bytes in [
        &b""[..],
        b"{",
        b"[]",
        b"{\"format\":\"airlock-vault\"}",
        b"{\"format\":\"something-else\",\"version\":1}",
        b"{\"format\":\"airlock-vault\",\"version\":1,\"vault_id\":\"zz\"}",
    ] {
        let err = LockedVault::from_bytes(bytes).unwrap_err();
        assert!(matches!(err, VaultError::Corrupt { .. }), "{err}");
    }
    let err = LockedVault::from_bytes(b"{\"format\":\"airlock-vault\",\"version\":9}").unwrap_err();
    assert!(
        matches!(err, VaultError::UnsupportedVersion { found: 9 }),
        "{err}"
    );
}

#[test]
fn absurd_kdf_parameters_are_refused_before_running() {
    let (_d, home) = new_home();
    let pass = SecretString::from("pw");
    Vault::init(&home, NewVaultKey::Passphrase(&pass, TEST_KDF)).unwrap();
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(home.vault_path()).unwrap()).unwrap();
    doc["unlock"]["params"]["m_kib"] = serde_json::json!(u32::MAX);
    let err = LockedVault::from_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
    assert!(matches!(err, VaultError::Corrupt { .. }), "{err}");
}

/// The golden vectors: vaults written by this version of airlock with fixed keys.
/// They must keep decrypting forever; a format change adds a new version, it never
/// breaks these. (Regenerate nothing: if this fails, the change broke compatibility.)
#[test]
fn golden_vectors_keep_decrypting() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let key_file: [u8; 32] = core::array::from_fn(|i| i as u8);

    let bytes = std::fs::read(dir.join("v1-key-file.json")).unwrap();
    let v = LockedVault::from_bytes(&bytes)
        .unwrap()
        .unlock_with_key(&MasterKey::from_bytes(key_file), "master.key")
        .unwrap();
    assert_eq!(
        v.get("stripe").unwrap().expose_secret(),
        b"sk_test_golden_vector_1"
    );
    assert_eq!(
        v.get("openai").unwrap().expose_secret(),
        "π and ünïcode bytes ✓".as_bytes()
    );
    assert_eq!(v.list()[1].version, 2, "stripe was rotated once");

    let bytes = std::fs::read(dir.join("v1-passphrase.json")).unwrap();
    let v = LockedVault::from_bytes(&bytes)
        .unwrap()
        .unlock_with_passphrase(&SecretString::from("golden passphrase"))
        .unwrap();
    assert_eq!(
        v.get("github").unwrap().expose_secret(),
        b"ghp_golden_vector_value"
    );
}

/// Writes the golden vectors. Run once, by hand, when a new format version is
/// introduced: `cargo test -p airlock-vault -- --ignored write_golden_vectors`.
#[test]
#[ignore]
fn write_golden_vectors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let (_d, home) = new_home();
    home.ensure_dir().unwrap();
    let key_file: [u8; 32] = core::array::from_fn(|i| i as u8);
    airlock_home::create_new(&home.master_key_path(), &key_file).unwrap();
    let mut v = Vault::init(&home, NewVaultKey::KeyFile).unwrap();
    v.insert("stripe", b"sk_test_golden_vector_0").unwrap();
    v.rotate("stripe", b"sk_test_golden_vector_1").unwrap();
    v.insert("openai", "π and ünïcode bytes ✓".as_bytes())
        .unwrap();
    std::fs::write(dir.join("v1-key-file.json"), v.to_bytes()).unwrap();

    let (_d2, home2) = new_home();
    let pass = SecretString::from("golden passphrase");
    let mut v = Vault::init(&home2, NewVaultKey::Passphrase(&pass, TEST_KDF)).unwrap();
    v.insert("github", b"ghp_golden_vector_value").unwrap();
    std::fs::write(dir.join("v1-passphrase.json"), v.to_bytes()).unwrap();
}

fn flip(doc: &mut Value, pointer: &str) {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::STANDARD;
    let field = doc.pointer_mut(pointer).unwrap();
    let mut bytes = e.decode(field.as_str().unwrap()).unwrap();
    bytes[0] ^= 1;
    *field = Value::String(e.encode(bytes));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_open_round_trip(value in proptest::collection::vec(any::<u8>(), 1..2048),
                            name in "[a-z0-9][a-z0-9_.-]{0,20}") {
        let (_d, home) = new_home();
        saved_with(&home, NewVaultKey::KeyFile, &name, &value);
        let v = reopen(&home);
        let got = v.get(&name).unwrap();
        prop_assert_eq!(got.expose_secret(), &value[..]);
    }

    /// Tampering with the ciphertext, the nonce, the entry's name or its version —
    /// or swapping two entries' ciphertexts — makes `get` fail; it never returns
    /// another value.
    #[test]
    fn tampering_is_detected(which in 0usize..5, a in "[a-z]{1,8}", b in "[A-Z]{1,8}") {
        let (_d, home) = new_home();
        let mut v = Vault::init(&home, NewVaultKey::KeyFile).unwrap();
        v.insert(&a, b"value-of-a").unwrap();
        v.insert(&b, b"value-of-b").unwrap();
        let mut doc: Value = serde_json::from_slice(&v.to_bytes()).unwrap();
        let target = match which {
            0 => { flip(&mut doc, &format!("/secrets/{a}/ciphertext")); a.clone() }
            1 => { flip(&mut doc, &format!("/secrets/{a}/nonce")); a.clone() }
            2 => {
                // rename the entry: the AAD binds the name
                let e = doc["secrets"].as_object_mut().unwrap().remove(&a).unwrap();
                doc["secrets"]["renamed"] = e;
                "renamed".to_string()
            }
            3 => { doc["secrets"][&a]["version"] = Value::from(7); a.clone() }
            _ => {
                // swap ciphertexts and nonces between a and b
                let ea = doc["secrets"][&a].clone();
                let eb = doc["secrets"][&b].clone();
                for f in ["nonce", "ciphertext"] {
                    doc["secrets"][&a][f] = eb[f].clone();
                    doc["secrets"][&b][f] = ea[f].clone();
                }
                a.clone()
            }
        };
        let key = MasterKey::from_key_file(&std::fs::read(home.master_key_path()).unwrap()).unwrap();
        let v = LockedVault::from_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap()
            .unlock_with_key(&key, "master.key").unwrap();
        let err = v.get(&target).unwrap_err();
        prop_assert!(matches!(err, VaultError::Tampered { .. }), "{}", err);
    }
}
