//! `ca_files`: a service's private CA is read when the engine is made, so a
//! missing or empty file is an error at load naming the service and the file.

use std::collections::BTreeMap;

use airlock_engine::{Engine, EngineConfig};

fn engine_with_ca(path: &std::path::Path) -> Result<Engine, String> {
    Engine::new(EngineConfig {
        ca_files: BTreeMap::from([("billing".to_string(), path.to_path_buf())]),
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())
}

#[test]
fn a_missing_or_certificate_less_ca_file_fails_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let e = engine_with_ca(&missing).unwrap_err();
    assert!(e.contains("service \"billing\": ca_file"), "{e}");
    assert!(e.contains("nope.pem"), "{e}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = engine_with_ca(&empty).unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
}
