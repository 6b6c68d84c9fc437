//! AWS SigV4: the AWS signing test suite (as shipped in the aws-sigv4 crate's
//! `aws-signing-test-suite/v4`), the S3 examples from AWS's S3 SigV4 documentation, and
//! an independent reference signer for single vs double path encoding.

use std::sync::Arc;

use airlock_inject::{Injector, ManualClock, OutgoingRequest, SigV4, SigV4Options};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::support::{emitted, header, named, request};

/// 2015-08-30T12:36:00Z, the test suite's date.
const SUITE_TIME: u64 = 1_440_938_160;
/// 2013-05-24T00:00:00Z, the S3 documentation's date.
const S3_DOC_TIME: u64 = 1_369_353_600;

fn suite_signer(service: &str, token: Option<&str>) -> SigV4 {
    SigV4::new(
        "us-east-1",
        service,
        named("akid", "AKIDEXAMPLE"),
        named("sak", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        token.map(|t| named("tok", t)),
        Arc::new(ManualClock::at_unix(SUITE_TIME)),
    )
    .unwrap()
}

fn signature(auth: &str) -> &str {
    auth.rsplit_once("Signature=").unwrap().1
}

/// Fails unless the request's `Authorization` signs the headers `signed` with the
/// signature `sig`; `what` names the case.
fn assert_signed(req: &OutgoingRequest, signed: &str, sig: &str, what: &str) {
    let auth = header(req, "authorization");
    assert_eq!(signed_headers(auth), signed, "{what}");
    assert_eq!(signature(auth), sig, "{what}");
}

fn signed_headers(auth: &str) -> &str {
    auth.split("SignedHeaders=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
}

/// One vector of the suite: request as in `request.txt` (the Host header is the
/// origin), expected `Authorization` from `header-signed-request.txt`.
struct Vector {
    name: &'static str,
    method: &'static str,
    origin: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    authorization: &'static str,
}

const SUITE: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        origin: "https://example.amazonaws.com",
        path: "/",
        query: None,
        headers: &[],
        body: b"",
        authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        origin: "https://example.amazonaws.com",
        path: "/",
        query: Some("Param2=value2&Param1=value1"),
        headers: &[],
        body: b"",
        authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "post-vanilla-query",
        method: "POST",
        origin: "https://example.amazonaws.com",
        path: "/",
        query: Some("Param1=value1"),
        headers: &[],
        body: b"",
        authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
];

#[tokio::test]
async fn aws_test_suite_vanilla_vectors() {
    for v in SUITE {
        let signer = suite_signer("service", None);
        let mut req = request(v.method, v.origin, v.path, v.query, v.headers, v.body);
        signer.inject(&mut req).await.unwrap();
        assert_eq!(header(&req, "authorization"), v.authorization, "{}", v.name);
        assert_eq!(header(&req, "x-amz-date"), "20150830T123600Z", "{}", v.name);
        assert!(req.headers["authorization"].is_sensitive());
        assert!(
            req.headers.get("x-amz-content-sha256").is_none(),
            "{}",
            v.name
        );
    }
}

/// `post-x-www-form-urlencoded`: `sign_body` in the suite's context, i.e. the
/// `x-amz-content-sha256` header, and `content-length`/`content-type` signed.
#[tokio::test]
async fn aws_test_suite_post_x_www_form_urlencoded() {
    let signer = suite_signer("service", None)
        .with_options(SigV4Options::for_service("service").content_sha256_header(true));
    let mut req = request(
        "POST",
        "https://example.amazonaws.com",
        "/",
        None,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "13"),
        ],
        b"Param1=value1",
    );
    signer.inject(&mut req).await.unwrap();
    assert_eq!(
        header(&req, "authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
    );
    assert_eq!(
        header(&req, "x-amz-content-sha256"),
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
    );
}

/// `get-utf8` (`GET /ሴ`) and `get-space-normalized` (`GET /example%20space/`): the
/// suite encodes the path once. airlock sends paths percent-encoded, so these are the
/// single-encoding cases: `/%E1%88%B4` must sign as `/%E1%88%B4`, not `/%25E1…`.
#[tokio::test]
async fn aws_test_suite_single_encoded_paths() {
    let cases = [
        (
            "/%E1%88%B4",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        ),
        (
            "/example%20space/",
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        ),
    ];
    for (path, sig) in cases {
        let signer = suite_signer("service", None)
            .with_options(SigV4Options::for_service("service").single_encode_path(true));
        let mut req = request("GET", "https://example.amazonaws.com", path, None, &[], b"");
        signer.inject(&mut req).await.unwrap();
        assert_eq!(signature(header(&req, "authorization")), sig, "{path}");
        // The default for a non-S3 service double-encodes: a different signature.
        let mut req = request("GET", "https://example.amazonaws.com", path, None, &[], b"");
        suite_signer("service", None)
            .inject(&mut req)
            .await
            .unwrap();
        assert_ne!(signature(header(&req, "authorization")), sig, "{path}");
    }
}

/// `double-encode-path`: an API Gateway path whose `%3D` must be signed as `%253D`
/// and `@` as `%40` — the default for every service but S3.
#[tokio::test]
async fn aws_test_suite_double_encode_path() {
    let signer = SigV4::new(
        "us-east-1",
        "service",
        named("akid", "ANOTREAL"),
        named("sak", "notrealrnrELgWzOk3IfjzDKtFBhDby"),
        None,
        Arc::new(ManualClock::at_unix(SUITE_TIME)),
    )
    .unwrap();
    let mut req = request(
        "POST",
        "https://tj9n5r0m12.execute-api.us-east-1.amazonaws.com",
        "/test/@connections/JBDvjfGEIAMCERw%3D",
        None,
        &[],
        b"",
    );
    signer.inject(&mut req).await.unwrap();
    assert_eq!(
        header(&req, "authorization"),
        "AWS4-HMAC-SHA256 Credential=ANOTREAL/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=57d157672191bac40bae387e48bbe14b15303c001fdbb01f4abf295dccb09705"
    );
}

#[tokio::test]
async fn aws_test_suite_session_token() {
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    let signer = suite_signer("service", Some(token));
    let mut req = request("GET", "https://example.amazonaws.com", "/", None, &[], b"");
    signer.inject(&mut req).await.unwrap();
    assert_eq!(
        header(&req, "authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
    );
    assert_eq!(header(&req, "x-amz-security-token"), token);
    assert!(req.headers["x-amz-security-token"].is_sensitive());
    // Every secret part is reported for scrubbing; Debug names them only.
    let e = emitted(&signer);
    assert!(e.contains(&("tok".to_string(), token.to_string())));
    assert!(e.contains(&("akid".to_string(), "AKIDEXAMPLE".to_string())));
    let dbg = format!("{signer:?}");
    assert!(
        !dbg.contains(token) && !dbg.contains("EXAMPLEKEY") && !dbg.contains("AKIDEXAMPLE"),
        "{dbg}"
    );
}

fn s3_doc_signer() -> SigV4 {
    SigV4::new(
        "us-east-1",
        "s3",
        named("akid", "AKIAIOSFODNN7EXAMPLE"),
        named("sak", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        None,
        Arc::new(ManualClock::at_unix(S3_DOC_TIME)),
    )
    .unwrap()
}

/// The four worked examples of AWS's "Signature Calculations for the Authorization
/// Header: Transferring Payload in a Single Chunk" (S3 API reference).
#[tokio::test]
async fn s3_documentation_examples() {
    let origin = "https://examplebucket.s3.amazonaws.com";
    // GET Object with a Range header.
    let mut req = request(
        "GET",
        origin,
        "/test.txt",
        None,
        &[("range", "bytes=0-9")],
        b"",
    );
    s3_doc_signer().inject(&mut req).await.unwrap();
    assert_signed(
        &req,
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        "GET Object",
    );
    assert_eq!(
        header(&req, "x-amz-content-sha256"),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );

    // PUT Object `test$file.text` with a body: the key's `$` is signed as `%24`.
    let mut req = request(
        "PUT",
        origin,
        "/test$file.text",
        None,
        &[
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ],
        b"Welcome to Amazon S3.",
    );
    s3_doc_signer().inject(&mut req).await.unwrap();
    assert_signed(
        &req,
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        "PUT Object",
    );
    assert_eq!(
        header(&req, "x-amz-content-sha256"),
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );

    // GET Bucket lifecycle (`?lifecycle`) and List Objects (`?max-keys=2&prefix=J`).
    for (query, sig) in [
        (
            "lifecycle",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ] {
        let mut req = request("GET", origin, "/", Some(query), &[], b"");
        s3_doc_signer().inject(&mut req).await.unwrap();
        assert_eq!(signature(header(&req, "authorization")), sig, "{query}");
    }
}

/// An independent SigV4 (RustCrypto HMAC-SHA256) that takes the canonical URI and
/// query as given: the test states what each must be.
fn reference_signature(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    hs.sort();
    let signed: Vec<&str> = hs.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let creq = format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/{service}/aws4_request\n{}",
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let mac = |key: &[u8], data: &[u8]| {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let k = mac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20150830");
    let k = mac(&k, b"us-east-1");
    let k = mac(&k, service.as_bytes());
    let k = mac(&k, b"aws4_request");
    (signed, hex::encode(mac(&k, sts.as_bytes())))
}

/// An S3 PUT with a query, a percent-encoded key and a body: S3 signs the path encoded
/// once and not normalized; any other service encodes it again.
#[tokio::test]
async fn s3_single_encoding_vs_double_for_other_services() {
    let origin = "https://bucket.example.amazonaws.com";
    let body = b"hello, world";
    let body_hash = hex::encode(Sha256::digest(body));
    for (path, s3_uri, other_uri) in [
        (
            "/bucket/a%20key.txt",
            "/bucket/a%20key.txt",
            "/bucket/a%2520key.txt",
        ),
        // not normalized for S3 (a key may contain `.` segments); normalized otherwise
        (
            "/bucket/a/./b%2Bc",
            "/bucket/a/./b%2Bc",
            "/bucket/a/b%252Bc",
        ),
    ] {
        let put = || {
            request(
                "PUT",
                origin,
                path,
                Some("x-id=PutObject&tagging"),
                &[],
                body,
            )
        };
        // S3
        let mut req = put();
        suite_signer("s3", None).inject(&mut req).await.unwrap();
        let (signed, sig) = reference_signature(
            "PUT",
            s3_uri,
            "tagging=&x-id=PutObject",
            &[
                ("host", "bucket.example.amazonaws.com"),
                ("x-amz-content-sha256", &body_hash),
                ("x-amz-date", "20150830T123600Z"),
            ],
            body,
            "s3",
        );
        assert_signed(&req, &signed, &sig, &format!("s3 {path}"));
        assert_eq!(header(&req, "x-amz-content-sha256"), body_hash);

        // any other service
        let mut req = put();
        suite_signer("service", None)
            .inject(&mut req)
            .await
            .unwrap();
        let (signed, sig) = reference_signature(
            "PUT",
            other_uri,
            "tagging=&x-id=PutObject",
            &[
                ("host", "bucket.example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            body,
            "service",
        );
        assert_signed(&req, &signed, &sig, &format!("service {path}"));
        // The path and query sent are untouched.
        assert_eq!(req.path(), path);
        assert_eq!(req.query(), Some("x-id=PutObject&tagging"));
    }
}

/// Agent copies of the headers SigV4 owns are replaced, and a non-default port is
/// part of the signed host.
#[tokio::test]
async fn owned_headers_are_replaced_and_ports_signed() {
    let signer = suite_signer("service", None);
    let owned: Vec<&str> = signer.owned_headers().iter().map(|h| h.as_str()).collect();
    assert_eq!(
        owned,
        [
            "authorization",
            "x-amz-date",
            "x-amz-security-token",
            "x-amz-content-sha256"
        ]
    );
    let mut req = request(
        "GET",
        "http://127.0.0.1:8443",
        "/x",
        None,
        &[
            ("authorization", "AWS4-HMAC-SHA256 forged"),
            ("x-amz-date", "19990101T000000Z"),
            ("x-amz-security-token", "agent-token"),
        ],
        b"",
    );
    signer.inject(&mut req).await.unwrap();
    assert_eq!(req.headers.get_all("authorization").iter().count(), 1);
    assert_eq!(header(&req, "x-amz-date"), "20150830T123600Z");
    assert!(req.headers.get("x-amz-security-token").is_none());
    let (_, sig) = reference_signature(
        "GET",
        "/x",
        "",
        &[
            ("host", "127.0.0.1:8443"),
            ("x-amz-date", "20150830T123600Z"),
        ],
        b"",
        "service",
    );
    assert_eq!(signature(header(&req, "authorization")), sig);
}

#[test]
fn bad_keys_are_refused_without_echo() {
    let clock = Arc::new(ManualClock::at_unix(SUITE_TIME));
    let err = SigV4::new(
        "us-east-1",
        "s3",
        named("akid", "AKID WITH SPACE"),
        named("sak", "x"),
        None,
        clock,
    )
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("\"akid\"") && !msg.contains("WITH SPACE"),
        "{msg}"
    );
}
