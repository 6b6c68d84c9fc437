//! Issue 14 item 16: the SARIF report through `cli::run` for every form a path
//! can be given in (`.`, `./x`, absolute, `../x`), then validated against the
//! SARIF 2.1.0 JSON schema (vendored in `tests/sarif/`) with Python's
//! `jsonschema`.
//!
//! Its own test binary with a single test: it changes the process's current
//! directory, which would race any other test in the same process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_scan::cli::{OutputFormat, ScanArgs, run};
use fakes::fake_github_pat;
use serde_json::Value;

mod fakes;

fn sarif(paths: &[&str]) -> Value {
    let args = ScanArgs {
        paths: paths.iter().map(PathBuf::from).collect(),
        format: OutputFormat::Sarif,
        ..ScanArgs::default()
    };
    let mut out = Vec::new();
    assert_eq!(run(&args, &mut out).unwrap(), 1, "{paths:?}: no finding");
    serde_json::from_slice(&out).unwrap()
}

/// The artifact URIs of a report, and the `%SRCROOT%` it declares.
fn uris(v: &Value) -> (Vec<String>, String) {
    let run0 = &v["runs"][0];
    let mut uris: Vec<String> = run0["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let a = &r["locations"][0]["physicalLocation"]["artifactLocation"];
            assert_eq!(a["uriBaseId"], "%SRCROOT%", "{a}");
            a["uri"].as_str().unwrap().to_owned()
        })
        .collect();
    uris.sort();
    uris.dedup();
    let root = run0["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    (uris, root)
}

fn file_uri(dir: &Path) -> String {
    format!("file://{}/", dir.display())
}

#[test]
fn sarif_is_schema_valid_with_versioned_driver_named_rules_and_root_relative_uris() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let repo = base.join("repo");
    let other = base.join("x");
    std::fs::create_dir_all(repo.join("sub dir")).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let pat = fake_github_pat();
    let stripe = concat!("sk_", "live_", "Zq8mN3vR5tY7uI9oP1aS2dF4");
    std::fs::write(repo.join(".env"), format!("GITHUB_TOKEN={pat}\n")).unwrap();
    std::fs::write(
        repo.join("sub dir/app.env"),
        format!("STRIPE_KEY={stripe}\n"),
    )
    .unwrap();
    std::fs::write(other.join(".env"), format!("GITHUB_TOKEN={pat}\n")).unwrap();
    std::env::set_current_dir(&repo).unwrap();

    let both = vec![".env".to_owned(), "sub%20dir/app.env".to_owned()];
    let abs_repo = repo.display().to_string();
    let abs_other = other.display().to_string();
    let abs_sub = repo.join("sub dir").display().to_string();
    let cases: Vec<(Vec<&str>, Vec<String>, &Path)> = vec![
        (vec!["."], both.clone(), &repo),
        (vec!["./"], both.clone(), &repo),
        (vec![abs_repo.as_str()], both.clone(), &repo),
        (vec!["./sub dir"], vec![both[1].clone()], &repo),
        (vec![abs_sub.as_str()], vec![both[1].clone()], &repo),
        (vec!["../x"], vec![".env".into()], &other),
        (vec!["../repo/../x/."], vec![".env".into()], &other),
        (vec![abs_other.as_str()], vec![".env".into()], &other),
        (vec!["../x/.env"], vec![".env".into()], &other),
        (
            vec!["../x", "."],
            vec![
                "repo/.env".into(),
                "repo/sub%20dir/app.env".into(),
                "x/.env".into(),
            ],
            &base,
        ),
    ];
    let out_dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (paths, want, root)) in cases.iter().enumerate() {
        let v = sarif(paths);
        let (got, root_uri) = uris(&v);
        assert_eq!(&got, want, "{paths:?}");
        assert_eq!(root_uri, file_uri(root), "{paths:?}");

        let driver = &v["runs"][0]["tool"]["driver"];
        assert_eq!(driver["name"], "airlock");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        // The workspace's repository URL, unless it is the source tree's
        // placeholder on a reserved `.invalid` host: then no link at all.
        let repository = env!("CARGO_PKG_REPOSITORY");
        if repository.contains(".invalid/") {
            assert!(driver.get("informationUri").is_none(), "{driver}");
        } else {
            assert_eq!(driver["informationUri"], repository);
        }
        for rule in driver["rules"].as_array().unwrap() {
            let (id, name) = (rule["id"].as_str().unwrap(), rule["name"].as_str().unwrap());
            assert_ne!(id, name);
            assert!(
                name.starts_with(|c: char| c.is_ascii_uppercase())
                    && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "rule name {name} is not PascalCase"
            );
        }
        let text = serde_json::to_string(&v).unwrap();
        assert!(
            !text.contains(&pat) && !text.contains(stripe),
            "a secret leaked"
        );
        let file = out_dir.path().join(format!("{i}.sarif"));
        std::fs::write(&file, &text).unwrap();
        files.push(file);
    }

    // The schema check: Python's jsonschema, Draft 4 as the schema declares.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sarif/validate.py");
    let python = std::env::var_os("AIRLOCK_SARIF_PYTHON").unwrap_or_else(|| "python3".into());
    let required = std::env::var_os("AIRLOCK_SARIF_PYTHON").is_some();
    let out = Command::new(&python).arg(&script).args(&files).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) if o.status.code() == Some(3) && !required => eprintln!(
            "SKIPPED the SARIF schema check: python3 has no jsonschema (tests/interop/run runs it with one)"
        ),
        Err(e) if !required => eprintln!("SKIPPED the SARIF schema check: no python3 ({e})"),
        other => panic!(
            "SARIF schema validation failed: {}",
            match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            }
        ),
    }
}
