//! OAuth 1.0a (HMAC-SHA1): RFC 5849's worked example, a request with query and form
//! parameters, each checked by an independent verifier written here (RustCrypto
//! HMAC-SHA1, `url`'s form decoder, its own encoder and sorting).

use std::sync::Arc;

use airlock_inject::{Injector, ManualClock, NamedSecret, OAuth1, OutgoingRequest};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::support::{emitted, header, named, request};

fn signer(ck: &str, cs: &str, token: Option<(&str, &str)>) -> OAuth1 {
    OAuth1::new(
        named("ck", ck),
        named("cs", cs),
        token.map(|(t, ts)| (named("tok", t), named("toks", ts))),
        Arc::new(ManualClock::at_unix(1_318_622_958)),
    )
    .unwrap()
}

/// RFC 3986 unreserved-only encoding, written independently of the crate's.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `Authorization: OAuth …` parameters, decoded.
fn oauth_params(value: &str) -> Vec<(String, String)> {
    let rest = value.strip_prefix("OAuth ").expect("OAuth scheme");
    rest.split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            let v = v.trim_matches('"');
            let v = percent_decode(v);
            (k.to_string(), v)
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

/// Recomputes the signature base string and HMAC-SHA1 from the request as the server
/// sees it, and returns (expected signature, base string).
fn verify(req: &OutgoingRequest, consumer_secret: &str, token_secret: &str) -> (String, String) {
    let auth = header(req, "authorization");
    let oauth = oauth_params(auth);
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(q) = req.query() {
        params.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    let form = req.headers.get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    });
    if form {
        params.extend(url::form_urlencoded::parse(req.body()).into_owned());
    }
    params.extend(
        oauth
            .iter()
            .filter(|(k, _)| k != "oauth_signature" && k != "realm")
            .cloned(),
    );
    let mut encoded: Vec<(String, String)> = params.iter().map(|(k, v)| (enc(k), enc(v))).collect();
    encoded.sort();
    let normalized = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let base_uri = format!("{}{}", req.origin().to_ascii_lowercase(), req.path());
    let base = format!(
        "{}&{}&{}",
        req.method().as_str(),
        enc(&base_uri),
        enc(&normalized)
    );
    let mut mac = Hmac::<Sha1>::new_from_slice(
        format!("{}&{}", enc(consumer_secret), enc(token_secret)).as_bytes(),
    )
    .unwrap();
    mac.update(base.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let sent = oauth
        .iter()
        .find(|(k, _)| k == "oauth_signature")
        .unwrap()
        .1
        .clone();
    assert_eq!(sent, sig, "the verifier disagrees for base string {base}");
    (sig, base)
}

/// RFC 5849 §3.1 / §3.4.1: `POST /request?b5=%3D%253D&a3=a&c%40=&a2=r%20b` with the
/// form body `c2&a3=2+q`, client secret `j49sk3j29djd`, token secret `dh893hdasih9`.
/// The base string is the RFC's, character for character. The RFC prints
/// `bYT5CMsGcbgUdFHObYMEfcx6bsw=` as the signature, which its errata correct: HMAC-SHA1
/// of that base string under that key is `r6/TJjbCOr97/+UU0NsvSne7s5g=`.
#[test]
fn rfc5849_worked_example() {
    let s = OAuth1::new(
        named("ck", "9djdj82h48djs9d2"),
        named("cs", "j49sk3j29djd"),
        Some((
            named("tok", "kkk9d7dh3k39sjv7"),
            named("toks", "dh893hdasih9"),
        )),
        Arc::new(ManualClock::at_unix(0)),
    )
    .unwrap()
    .with_version_param(false);
    let mut req = request(
        "POST",
        "http://example.com",
        "/request",
        Some("b5=%3D%253D&a3=a&c%40=&a2=r%20b"),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"c2&a3=2+q",
    );
    let value = s.authorization(&req, 137_131_201, "7d8f3e4a").unwrap();
    assert!(value.is_sensitive());
    req.headers.insert("authorization", value);
    let (sig, base) = verify(&req, "j49sk3j29djd", "dh893hdasih9");
    assert_eq!(
        base,
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
         %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
         key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
         ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
         9d7dh3k39sjv7"
    );
    assert_eq!(sig, "r6/TJjbCOr97/+UU0NsvSne7s5g=");
    let params = oauth_params(header(&req, "authorization"));
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_token"
        ]
    );
}

/// A request with query *and* form parameters (including `+`, `%2b`, `,` and `!`), the
/// example of Twitter's "Creating a signature" guide, with `oauth_version`. The guide's
/// signature was computed for `/1/statuses/update.json` (later editions print the
/// `/1.1/` path next to the same signature; for `/1.1/` it is `hCtSmYh+iHYCEqBWrE7C7hYmtUk=`).
#[test]
fn query_and_form_parameters() {
    let s = signer(
        "xvz1evFS4wEEPTGEFPHBog",
        "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        Some((
            "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        )),
    );
    let mut req = request(
        "POST",
        "https://api.twitter.com",
        "/1/statuses/update.json",
        Some("include_entities=true"),
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        b"status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
    );
    let value = s
        .authorization(
            &req,
            1_318_622_958,
            "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        )
        .unwrap();
    req.headers.insert("authorization", value);
    let (sig, base) = verify(
        &req,
        "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
    );
    assert!(base.contains("oauth_version%3D1.0"), "{base}");
    assert!(
        base.contains("status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C"),
        "{base}"
    );
    assert_eq!(sig, "tnnArxj06cWHq44gCs1OSKk/jLY=");
}

/// Through `inject`: a random nonce and the clock's timestamp; repeated and empty
/// parameters, a non-default port, and a non-form body (not signed) all verify.
#[tokio::test]
async fn inject_signs_what_is_sent() {
    let s = signer("key", "sec ret&/", Some(("tok", "tok secret")));
    let cases: Vec<OutgoingRequest> = vec![
        request(
            "POST",
            "https://api.example.com:8443",
            "/v1/a%20b",
            Some("z=1&a=2&a=1&empty=&flag&sp=a+b&pct=%7E%41"),
            &[("content-type", "application/x-www-form-urlencoded")],
            b"x=%F0%9F%A6%80&a=3",
        ),
        request(
            "PUT",
            "http://127.0.0.1:8080",
            "/json",
            Some("q=1"),
            &[("content-type", "application/json")],
            br#"{"a":1}"#,
        ),
        request("GET", "https://api.example.com", "/", None, &[], b""),
    ];
    let mut nonces = Vec::new();
    for mut req in cases {
        s.inject(&mut req).await.unwrap();
        verify(&req, "sec ret&/", "tok secret");
        let params = oauth_params(header(&req, "authorization"));
        let get = |k: &str| params.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("oauth_timestamp"), "1318622958");
        assert_eq!(get("oauth_version"), "1.0");
        assert_eq!(get("oauth_nonce").len(), 32);
        nonces.push(get("oauth_nonce"));
    }
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "nonces repeat");
}

#[tokio::test]
async fn two_legged_ownership_and_hygiene() {
    let s = signer("key", "consumer-secret-zz", None);
    let mut req = request(
        "GET",
        "https://api.example.com",
        "/x",
        Some("a=1"),
        &[],
        b"",
    );
    s.inject(&mut req).await.unwrap();
    verify(&req, "consumer-secret-zz", "");
    assert!(!header(&req, "authorization").contains("oauth_token="));

    assert!(s.owned_query_params().iter().any(|p| p == "oauth_token"));
    assert!(
        s.owned_query_params()
            .iter()
            .any(|p| p == "oauth_signature")
    );
    assert_eq!(s.owned_headers(), &[http::header::AUTHORIZATION]);
    let e = emitted(&s);
    assert!(e.contains(&("cs".to_string(), "consumer-secret-zz".to_string())));
    assert!(!format!("{s:?}").contains("consumer-secret-zz"));

    // OAuth protocol parameters smuggled in a form body are refused, not signed.
    let mut req = request(
        "POST",
        "https://api.example.com",
        "/x",
        None,
        &[("content-type", "application/x-www-form-urlencoded")],
        b"oauth_token=evil&a=1",
    );
    let err = s.inject(&mut req).await.unwrap_err();
    assert!(err.is_agent(), "{err}");
    assert!(!err.to_string().contains("evil"));
}

#[test]
fn empty_consumer_key_is_refused() {
    let err = OAuth1::new(
        NamedSecret::new("ck", secrecy::SecretSlice::from(Vec::new())),
        named("cs", "x"),
        None,
        Arc::new(ManualClock::at_unix(0)),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("\"ck\""));
}
