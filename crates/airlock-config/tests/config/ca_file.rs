//! `services.NAME.ca_file`: a private CA for an https service (the engine
//! trusts only its certificates for that service).

use super::parse;

fn service(extra: &str, url: &str) -> String {
    format!(
        "[services.billing]\nurl = \"{url}\"\nauth = {{ type = \"bearer\", secret = \"billing\" }}\n{extra}\n"
    )
}

#[test]
fn an_absolute_ca_file_on_an_https_service_is_kept() {
    let c = parse(&service(
        "ca_file = \"/etc/ssl/private-ca.pem\"",
        "https://billing.internal:8443",
    ))
    .unwrap();
    assert_eq!(
        c.services["billing"].ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ssl/private-ca.pem"))
    );
    let c = parse(&service("", "https://billing.internal:8443")).unwrap();
    assert_eq!(c.services["billing"].ca_file, None);
}

#[test]
fn a_relative_path_or_a_plain_http_service_is_a_located_error() {
    let e = parse(&service("ca_file = \"ca.pem\"", "https://billing.internal")).unwrap_err();
    assert!(e.contains("airlock.toml:4:"), "{e}");
    assert!(e.contains("ca_file must be the absolute path"), "{e}");
    let e = parse(&service("ca_file = \"/ca.pem\"", "http://127.0.0.1:9000")).unwrap_err();
    assert!(e.contains("ca_file is for https services"), "{e}");
    let e = parse(&service("ca_file = \"/a\\nb\"", "https://billing.internal")).unwrap_err();
    assert!(e.contains("ca_file must be"), "{e}");
}
