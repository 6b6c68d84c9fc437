//! Vault costs: open a vault of 1,000 secrets and read one; decrypt all 1,000;
//! the Argon2id unlock a passphrase vault pays on every command.
//!
//! Run: `cargo bench -p airlock-vault --bench vault`.
#![allow(clippy::unwrap_used, missing_docs)]

use airlock_home::Home;
use airlock_vault::{KdfParams, LockedVault, NewVaultKey, Vault, derive_from_passphrase};
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::ExposeSecret;

fn vault_with(n: usize) -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("home"));
    let mut v = Vault::init(&home, NewVaultKey::KeyFile).unwrap();
    for i in 0..n {
        v.insert(
            &format!("secret-{i:05}"),
            format!("sk_live_{i:032}").as_bytes(),
        )
        .unwrap();
    }
    v.save(&home).unwrap();
    (dir, home)
}

fn bench(c: &mut Criterion) {
    let (_d, home) = vault_with(1000);

    c.bench_function("open 1000-secret vault (key file) + read one", |b| {
        b.iter(|| {
            let v = LockedVault::load(&home)
                .unwrap()
                .unlock_with_key_file(&home)
                .unwrap();
            let s = v.get("secret-00500").unwrap();
            assert_eq!(s.expose_secret().len(), 40);
        })
    });

    let v = LockedVault::load(&home)
        .unwrap()
        .unlock_with_key_file(&home)
        .unwrap();
    let names: Vec<String> = v.list().into_iter().map(|s| s.name).collect();
    c.bench_function("decrypt all 1000 secrets (unlocked)", |b| {
        b.iter(|| {
            let mut total = 0;
            for n in &names {
                total += v.get(n).unwrap().expose_secret().len();
            }
            assert_eq!(total, 40_000);
        })
    });

    let mut g = c.benchmark_group("argon2id unlock");
    g.sample_size(10);
    for (label, params) in [
        ("default 64MiB t=3 p=1", KdfParams::DEFAULT),
        (
            "floor 19MiB t=2 p=1",
            KdfParams {
                m_kib: 19 * 1024,
                t: 2,
                p: 1,
            },
        ),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| {
                derive_from_passphrase(b"correct horse battery staple", &[7u8; 16], params).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
