//! "Accepted ⇒ sent bytes = matched bytes" (DESIGN.md §7 invariant 3), through the
//! real request construction: a raw request target goes the broker's way (normalize,
//! then the capability's rules decide on the normalized target); when the policy
//! allows it, the engine builds the URL it would send (`Engine::request_url`: origin
//! pinning, the normalized-target check, the service's base path joined on, the
//! credential injected, the final re-parse). Asserts, for every allowed request:
//!
//! * the engine either refuses it as the agent's error (a character the HTTP client
//!   would rewrite) or builds a URL whose origin is the service's, unchanged;
//! * the URL's path — as `url` serializes it and as the `http::Uri` reqwest hands to
//!   hyper parses it — is exactly the service's base path followed by the normalized
//!   path that was matched, byte for byte; stripping the base path off the wire path
//!   and normalizing it again gives the same target and the same decision;
//! * with a header credential the whole URL string is `origin + base + target`; with a
//!   query credential the query only gains the credential parameter at its end.
#![no_main]

use std::sync::OnceLock;

use airlock_config::{Auth, Service};
use airlock_engine::{Engine, EngineConfig, ErrorSource, UpstreamRequest};
use airlock_inject::{Bearer, Injector, QueryKey};
use airlock_policy::{RuleSet, normalize, normalize_method};
use futures_util::FutureExt as _;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretSlice;

const METHODS: [&str; 8] = [
    "GET", "post", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "PROPFIND",
];

/// Service base URLs: bare origins, base paths with and without a trailing `/`, an
/// escaped base, explicit default and non-default ports, IPv6, IDNA.
const BASES: [&str; 8] = [
    "https://api.example.com",
    "https://api.example.com/",
    "https://api.example.com/v1/",
    "http://127.0.0.1:8080/base",
    "https://api.example.com:443/a%20b/c/",
    "https://[::1]:8443/x/y",
    "https://b\u{fc}cher.example/api",
    "http://localhost:80/%7Euser/",
];

const SECRET: &str = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";

struct World {
    engine: Engine,
    services: Vec<Service>,
    rules: [RuleSet; 2],
    bearer: Bearer,
    query: QueryKey,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let s = |v: &[&str]| v.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
        let secret = || SecretSlice::from(SECRET.as_bytes().to_vec());
        World {
            engine: Engine::new(EngineConfig::default()).expect("engine"),
            services: BASES
                .iter()
                .map(|b| Service {
                    name: "svc".to_owned(),
                    url: url::Url::parse(b).expect("base URL"),
                    auth: Auth::Bearer {
                        secret: "token".to_owned(),
                    },
                    timeout: None,
                    max_request_bytes: None,
                    max_response_bytes: None,
                    forward_cookies: false,
                    ca_file: None,
                })
                .collect(),
            rules: [
                // Everything but an admin subtree: most normalized paths are allowed.
                RuleSet::compile(&s(&["* /**"]), &s(&["* /admin/**"]), &s(&["propfind"]))
                    .expect("rules"),
                // A realistic capability.
                RuleSet::compile(
                    &s(&["* /v1/**", "GET /v2/*/x*y/**", "PROPFIND /dav/**"]),
                    &s(&["* /v1/admin/**", "DELETE /v2/**"]),
                    &s(&["propfind"]),
                )
                .expect("rules"),
            ],
            bearer: Bearer::new("token", secret()).expect("bearer"),
            query: QueryKey::new("api_key", "token", secret()).expect("query key"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let [selector, base, rest @ ..] = data else {
        return;
    };
    let w = world();
    let method = METHODS[usize::from(selector & 7)];
    let rules = &w.rules[usize::from(selector >> 3 & 1)];
    let use_query_key = selector & 0x10 != 0;
    let service = &w.services[usize::from(*base) % w.services.len()];
    let raw = String::from_utf8_lossy(rest);

    // The broker's checks.
    let Ok(method) = normalize_method(method, rules.extra_methods()) else {
        return;
    };
    let Ok(target) = normalize(&raw) else { return };
    let decision = rules.decide(&method, &target);
    if !decision.is_allowed() {
        return;
    }

    let injector: &dyn Injector = if use_query_key { &w.query } else { &w.bearer };
    let req = UpstreamRequest::new(
        http::Method::from_bytes(method.as_bytes()).expect("a normalized method is a valid token"),
        target.clone(),
    );
    let built = w
        .engine
        .request_url(service, injector, req)
        .now_or_never()
        .expect("header and query injectors never wait");
    let url = match built {
        Ok(url) => url,
        Err(e) => {
            // Refusing is allowed (nothing is sent); only as the agent's error, never as
            // a broken internal invariant.
            assert_eq!(
                e.error_source(),
                ErrorSource::Agent,
                "{method} {raw:?} (target {target}) on {}: {e}",
                service.url
            );
            return;
        }
    };

    // The origin never changes.
    assert_eq!(url.origin(), service.url.origin(), "{raw:?} -> {url}");
    assert_eq!(url.scheme(), service.url.scheme());
    assert_eq!(url.host_str(), service.url.host_str());
    assert_eq!(
        url.port_or_known_default(),
        service.url.port_or_known_default()
    );
    assert!(url.username().is_empty() && url.password().is_none() && url.fragment().is_none());

    // The path on the wire is the base path + exactly the matched path.
    let base_path = service.url.path().trim_end_matches('/');
    let expected_path = format!("{base_path}{}", target.path);
    assert_eq!(url.path(), expected_path, "{method} {raw:?}");
    let origin = service.url.origin().ascii_serialization();
    let serialized = url.as_str();
    assert!(
        serialized.starts_with(&format!("{origin}{expected_path}")),
        "{serialized} does not start with {origin}{expected_path}"
    );
    let uri = http::Uri::try_from(serialized).expect("reqwest's conversion to http::Uri");
    assert_eq!(uri.path(), expected_path);
    assert_eq!(uri.query(), url.query());
    assert_eq!(uri.scheme_str(), Some(service.url.scheme()));

    // What the upstream receives normalizes back to what was matched, and decides the
    // same way.
    let sent_target = match url.query() {
        Some(q) => format!("{}?{q}", &url.path()[base_path.len()..]),
        None => url.path()[base_path.len()..].to_owned(),
    };
    let again = normalize(&sent_target).expect("the sent target normalizes");
    assert_eq!(again.path, target.path, "{raw:?}");
    assert_eq!(rules.decide(&method, &again), decision, "{raw:?}");

    // The query: unchanged with a header credential; the credential appended with a
    // query one.
    if use_query_key {
        let q = url.query().expect("the query credential is on the URL");
        assert!(q.ends_with(&format!("api_key={SECRET}")), "{q}");
    } else {
        assert_eq!(url.query(), target.query.as_deref(), "{raw:?}");
        assert_eq!(serialized, format!("{origin}{base_path}{target}"));
    }
});
