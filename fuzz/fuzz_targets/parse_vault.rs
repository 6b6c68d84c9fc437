//! Arbitrary bytes as vault.json: parse, and try to unlock with a fixed key.
//! Never a panic, never an unbounded allocation from header parameters. A file that
//! unlocks round-trips: what the vault writes (`to_bytes`) parses, unlocks with the
//! same key to the same mode, names, versions, fingerprints and values, and is a
//! fixed point (writing it again gives the same bytes). Every entry either
//! authenticates or is reported tampered — never another error — and an entry that
//! authenticates keeps its value and its fingerprint through the round trip.
#![no_main]

use airlock_vault::{LockedVault, MasterKey, VaultError};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

/// The golden vector's key: mutations of that file reach the entry checks.
fn key() -> MasterKey {
    MasterKey::from_bytes(core::array::from_fn(|i| i as u8))
}

fuzz_target!(|data: &[u8]| {
    let Ok(locked) = LockedVault::from_bytes(data) else {
        return;
    };
    let mode = locked.mode();
    let id = locked.id().to_string();
    let Ok(vault) = locked.unlock_with_key(&key(), "master.key") else {
        return;
    };
    assert_eq!(vault.mode(), mode, "unlocking changed the mode");

    // Every entry: authentic (value) or tampered, nothing else.
    let infos = vault.list();
    let mut values = Vec::with_capacity(infos.len());
    for info in &infos {
        assert!(
            vault.contains(&info.name),
            "listed but not contained: {:?}",
            info.name
        );
        match vault.get(&info.name) {
            Ok(v) => {
                // (The stored fingerprint is display data outside the entry's AAD,
                // so it is not checked against the value here.)
                values.push(Some(v.expose_secret().to_vec()));
            }
            Err(VaultError::Tampered { name }) => {
                assert_eq!(name, info.name);
                values.push(None);
            }
            Err(e) => panic!("entry {:?}: neither a value nor tampered: {e}", info.name),
        }
    }

    // Round trip: what the vault writes reads back as the same vault.
    let bytes = vault.to_bytes();
    let again = match LockedVault::from_bytes(&bytes) {
        Ok(l) => l,
        Err(e) => panic!("the vault's own output does not parse: {e}"),
    };
    assert_eq!(again.mode(), mode);
    assert_eq!(again.id(), id);
    let again = match again.unlock_with_key(&key(), "master.key") {
        Ok(v) => v,
        Err(e) => panic!("the vault's own output does not unlock with the same key: {e}"),
    };
    assert_eq!(
        again.list(),
        infos,
        "entries changed through to_bytes/from_bytes"
    );
    for (info, value) in infos.iter().zip(&values) {
        match (again.get(&info.name), value) {
            (Ok(v), Some(want)) => assert_eq!(
                v.expose_secret(),
                want.as_slice(),
                "value of {:?} changed",
                info.name
            ),
            (Err(VaultError::Tampered { .. }), None) => {}
            (got, want) => panic!(
                "entry {:?}: before the round trip {}, after {}",
                info.name,
                if want.is_some() {
                    "authentic"
                } else {
                    "tampered"
                },
                match got {
                    Ok(_) => "authentic".to_string(),
                    Err(e) => e.to_string(),
                }
            ),
        }
    }
    assert_eq!(again.to_bytes(), bytes, "to_bytes is not a fixed point");
});
