//! Arbitrary bytes as vault.json: parse, and try to unlock with a fixed key.
//! Never a panic, never an unbounded allocation from header parameters; a
//! successful unlock of a mutated file must still authenticate every entry or
//! report it as tampered.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(locked) = airlock_vault::LockedVault::from_bytes(data) else { return };
    let _ = locked.mode();
    // The golden vector's key: mutations of that file reach the entry checks.
    let key = airlock_vault::MasterKey::from_bytes(core::array::from_fn(|i| i as u8));
    if let Ok(vault) = locked.unlock_with_key(&key, "master.key") {
        for info in vault.list() {
            let _ = vault.get(&info.name);
        }
    }
});
