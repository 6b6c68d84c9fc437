//! Vault costs: open a vault of 1,000 and of 100,000 secrets and read one; decrypt
//! all 1,000; the Argon2id unlock a passphrase vault pays on every command.
//!
//! Run: `cargo bench -p airlock-vault --bench vault` (bench/run's `vault` section).
//! The 100,000-secret vault takes a while to build, so it is kept under the target
//! directory (`CARGO_TARGET_TMPDIR/vault-100000`) and rebuilt only if it no longer
//! opens.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use airlock_home::Home;
use airlock_vault::{KdfParams, LockedVault, NewVaultKey, Vault, derive_from_passphrase};
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::ExposeSecret;

fn name(i: usize) -> String {
    format!("secret-{i:06}")
}

fn fill(home: &Home, n: usize) {
    let mut v = Vault::init(home, NewVaultKey::KeyFile).unwrap();
    for i in 0..n {
        v.insert(&name(i), format!("sk_live_{i:032}").as_bytes())
            .unwrap();
    }
    v.save(home).unwrap();
}

/// A key-file vault of `n` secrets in `dir` (created if missing or unusable).
fn vault_at(dir: &Path, n: usize) -> Home {
    let home = Home::at(dir.join("home"));
    let usable = LockedVault::load(&home)
        .and_then(|v| v.unlock_with_key_file(&home))
        .is_ok_and(|v| v.list().len() == n && v.get(&name(n - 1)).is_ok());
    if !usable {
        if dir.exists() {
            std::fs::remove_dir_all(dir).unwrap();
        }
        std::fs::create_dir_all(dir).unwrap();
        fill(&home, n);
    }
    home
}

fn open_and_read(home: &Home, n: usize) {
    let v = LockedVault::load(home)
        .unwrap()
        .unlock_with_key_file(home)
        .unwrap();
    let s = v.get(&name(n / 2)).unwrap();
    assert_eq!(s.expose_secret().len(), 40);
}

fn bench(c: &mut Criterion) {
    let small = tempfile::tempdir().unwrap();
    let home_1k = vault_at(small.path(), 1000);
    let home_100k = vault_at(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("vault-100000"),
        100_000,
    );

    let mut g = c.benchmark_group("open");
    g.bench_function("1000 secrets (key file) + read one", |b| {
        b.iter(|| open_and_read(&home_1k, 1000))
    });
    g.sample_size(10);
    g.bench_function("100000 secrets (key file) + read one", |b| {
        b.iter(|| open_and_read(&home_100k, 100_000))
    });
    g.finish();

    let v = LockedVault::load(&home_1k)
        .unwrap()
        .unlock_with_key_file(&home_1k)
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
