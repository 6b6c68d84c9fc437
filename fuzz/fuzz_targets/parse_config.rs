//! Any text given as airlock.toml either parses or yields a located, one-line
//! error — never a panic — and a parsed config edits and re-parses cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match airlock_config::Config::parse(std::path::Path::new("airlock.toml"), text) {
        Ok(cfg) => {
            for cap in cfg.capabilities.values() {
                assert!(cfg.services.contains_key(&cap.service));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("airlock.toml:"), "{msg}");
            assert!(!msg.contains('\n'), "{msg:?}");
        }
    }
});
