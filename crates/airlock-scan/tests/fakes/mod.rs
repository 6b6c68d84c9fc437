//! Fixed fake secrets for the scan tests (`scan.rs`, `sarif.rs`, `walk.rs`), assembled from
//! pieces so no source file trips a scanner.
#![allow(dead_code)] // each test binary uses its own subset

pub(crate) fn fake_github_pat() -> String {
    let random = concat!("Ab3dE5gH7jK9mN1pQ2r", "S4tU6vW8xY0");
    format!(
        "{}{random}{}",
        "ghp_",
        airlock_scan::testing::github_checksum(random.as_bytes())
    )
}

pub(crate) fn fake_stripe_live() -> String {
    concat!("sk_", "live_", "Zq8mN3vR5tY7uI9oP1aS2dF4").to_owned()
}

pub(crate) fn fake_stripe_test() -> String {
    concat!("sk_", "test_", "Hj4kL6zX8cV0bN2mQ4wE6rT8").to_owned()
}

pub(crate) fn fake_openai() -> String {
    format!(
        "{}{}{}",
        "sk-proj-",
        concat!("Rk2Lm9Nq4Pz7Vx1Wy3Ua5", "T3Blbk", "FJ"),
        "Hb5Jd8Kf0Lg2Mh4Ni6Oc7"
    )
}
