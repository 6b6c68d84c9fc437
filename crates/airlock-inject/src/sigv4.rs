//! AWS Signature Version 4, through the `aws-sigv4` crate (no AWS SDK).

use std::fmt;
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use secrecy::ExposeSecret;

use crate::request::percent_encode_into;
use crate::{BoxFuture, Clock, InjectError, Injector, NamedSecret, OutgoingRequest};

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
static OWNED: std::sync::LazyLock<[HeaderName; 4]> = std::sync::LazyLock::new(|| {
    [
        AUTHORIZATION,
        X_AMZ_DATE,
        X_AMZ_SECURITY_TOKEN,
        X_AMZ_CONTENT_SHA256,
    ]
});

/// How the canonical request is built; [`SigV4Options::for_service`] picks what AWS
/// expects from the service's signing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigV4Options {
    /// Encode the path once (S3) instead of twice (every other service). With single
    /// encoding the canonical path is the sent path re-encoded the way S3 reads it
    /// (percent-decoded, then every byte but unreserved characters and `/` as `%XX`),
    /// so `/a%20key.txt` signs as `/a%20key.txt` and `/test$file` as `/test%24file`.
    /// With double encoding the sent path is encoded again: `/a%20b` → `/a%2520b`.
    pub single_encode_path: bool,
    /// Resolve `.`/`..` segments in the canonical path (every service but S3; airlock's
    /// paths are already normalized, so this only matters for hand-built requests).
    pub normalize_path: bool,
    /// Send and sign `x-amz-content-sha256: <hex sha256 of the body>` (S3 requires it).
    pub content_sha256_header: bool,
}

impl SigV4Options {
    /// What AWS expects for `aws_service`: S3 (`s3`, `s3-object-lambda`, `s3express`…)
    /// gets single encoding, no normalization and the payload hash header; every other
    /// service double encoding and normalization.
    pub fn for_service(aws_service: &str) -> Self {
        if aws_service == "s3" || aws_service.starts_with("s3-") || aws_service == "s3express" {
            SigV4Options {
                single_encode_path: true,
                normalize_path: false,
                content_sha256_header: true,
            }
        } else {
            SigV4Options {
                single_encode_path: false,
                normalize_path: true,
                content_sha256_header: false,
            }
        }
    }

    /// Sets [`SigV4Options::single_encode_path`].
    pub fn single_encode_path(mut self, yes: bool) -> Self {
        self.single_encode_path = yes;
        self
    }

    /// Sets [`SigV4Options::normalize_path`].
    pub fn normalize_path(mut self, yes: bool) -> Self {
        self.normalize_path = yes;
        self
    }

    /// Sets [`SigV4Options::content_sha256_header`].
    pub fn content_sha256_header(mut self, yes: bool) -> Self {
        self.content_sha256_header = yes;
        self
    }
}

/// AWS SigV4 in the `Authorization` header, with `x-amz-date`, `x-amz-security-token`
/// (temporary credentials) and, for S3, `x-amz-content-sha256`.
///
/// The signature covers the method, the exact URL sent (origin, path, query), every
/// header on the request at injection time (the agent's, as filtered by the engine,
/// plus `host` from the origin) and the body's SHA-256.
pub struct SigV4 {
    region: String,
    aws_service: String,
    options: SigV4Options,
    credentials: Credentials,
    secrets: Vec<NamedSecret>,
    clock: Arc<dyn Clock>,
}

impl SigV4 {
    /// A signer for `aws_service` in `region`. The key id and secret key must be UTF-8
    /// without whitespace; so must the optional session token.
    pub fn new(
        region: impl Into<String>,
        aws_service: impl Into<String>,
        access_key_id: NamedSecret,
        secret_access_key: NamedSecret,
        session_token: Option<NamedSecret>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InjectError> {
        let region = region.into();
        let aws_service = aws_service.into();
        let word = |v: &str| {
            !v.is_empty()
                && v.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
                })
        };
        if !word(&region) || !word(&aws_service) {
            return Err(InjectError::InvalidParameter {
                auth: "aws-sigv4",
                reason: "region and aws_service must be lowercase letters, digits and -".into(),
            });
        }
        let text = |s: &NamedSecret| -> Result<String, InjectError> {
            let v = s.value.expose_secret();
            crate::check_ascii(
                &s.name,
                "aws-sigv4",
                v,
                b'!',
                "AWS keys are printable ASCII without spaces or line breaks",
            )?;
            // Checked ASCII above, so this cannot fail; no copy of the bytes is kept.
            String::from_utf8(v.to_vec()).map_err(|_| InjectError::InvalidSecret {
                secret: s.name.clone(),
                auth: "aws-sigv4",
                reason: "the value is not UTF-8",
            })
        };
        let credentials = Credentials::new(
            text(&access_key_id)?,
            text(&secret_access_key)?,
            session_token.as_ref().map(&text).transpose()?,
            None,
            "airlock",
        );
        let options = SigV4Options::for_service(&aws_service);
        let mut secrets = vec![access_key_id, secret_access_key];
        secrets.extend(session_token);
        Ok(SigV4 {
            region,
            aws_service,
            options,
            credentials,
            secrets,
            clock,
        })
    }

    /// Replaces the options [`SigV4Options::for_service`] chose.
    pub fn with_options(mut self, options: SigV4Options) -> Self {
        self.options = options;
        self
    }

    /// The options in force.
    pub fn options(&self) -> SigV4Options {
        self.options
    }

    /// A signed `POST /` to `origin` with the form `form` as its body
    /// (`application/x-www-form-urlencoded; charset=utf-8`): a call of an AWS
    /// Query API (STS, IAM). Returns the request's parts, ready to send.
    pub fn sign_form_post(
        &self,
        origin: impl Into<String>,
        form: impl Into<bytes::Bytes>,
    ) -> Result<(http::Method, String, http::HeaderMap, bytes::Bytes), InjectError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let mut req =
            OutgoingRequest::new(http::Method::POST, origin, "/", None, headers, form.into());
        self.sign(&mut req)?;
        Ok(req.into_parts())
    }

    /// Signs `req` in place (what [`Injector::inject`] does).
    pub fn sign(&self, req: &mut OutgoingRequest) -> Result<(), InjectError> {
        for h in OWNED.iter() {
            req.headers.remove(h);
        }
        let bad_request = |reason: String| InjectError::Request {
            auth: "aws-sigv4",
            reason,
        };
        let mut headers = Vec::with_capacity(req.headers.len());
        for (name, value) in &req.headers {
            let v = value.to_str().map_err(|_| {
                bad_request(format!(
                    "header {name} is not printable ASCII and cannot be signed"
                ))
            })?;
            headers.push((name.as_str(), v));
        }
        let path = if self.options.single_encode_path {
            s3_canonical_path(req.path())
        } else {
            req.path().to_string()
        };
        let mut uri = String::with_capacity(
            req.origin().len() + path.len() + 1 + req.query().map_or(0, str::len),
        );
        uri.push_str(req.origin());
        uri.push_str(&path);
        if let Some(q) = req.query() {
            uri.push('?');
            uri.push_str(q);
        }

        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = if self.options.single_encode_path {
            PercentEncodingMode::Single
        } else {
            PercentEncodingMode::Double
        };
        settings.uri_path_normalization_mode = if self.options.normalize_path {
            UriPathNormalizationMode::Enabled
        } else {
            UriPathNormalizationMode::Disabled
        };
        settings.payload_checksum_kind = if self.options.content_sha256_header {
            PayloadChecksumKind::XAmzSha256
        } else {
            PayloadChecksumKind::NoHeader
        };
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.aws_service)
            .time(self.clock.now())
            .settings(settings)
            .build()
            .map_err(|e| bad_request(format!("cannot sign: {e}")))?
            .into();
        let signable = SignableRequest::new(
            req.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::Bytes(req.body()),
        )
        .map_err(|e| bad_request(format!("cannot sign this request: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| bad_request(format!("cannot sign this request: {e}")))?
            .into_parts();
        let (out_headers, _params) = instructions.into_parts();
        let mut signed = Vec::with_capacity(out_headers.len());
        for h in out_headers {
            let name = HeaderName::from_static(h.name());
            let mut value = HeaderValue::from_str(h.value()).map_err(|_| {
                bad_request(format!(
                    "the signer produced an invalid {} header",
                    h.name()
                ))
            })?;
            if h.sensitive() || name == AUTHORIZATION || name == X_AMZ_SECURITY_TOKEN {
                value.set_sensitive(true);
            }
            signed.push((name, value));
        }
        for (name, value) in signed {
            req.headers.insert(name, value);
        }
        Ok(())
    }
}

/// The path as S3 canonicalizes it: percent-decoded, then every byte except
/// unreserved characters and `/` encoded as `%XX` (upper case). An encoded `/`
/// (`%2F`) stays encoded; a `%` not followed by two hex digits is a literal `%`.
fn s3_canonical_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len() + 8);
    let push = |b: u8, out: &mut String| percent_encode_into(&[b], out);
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'/' {
            out.push('/');
            i += 1;
        } else if b == b'%' {
            match (
                bytes.get(i + 1).and_then(|&x| hex(x)),
                bytes.get(i + 2).and_then(|&x| hex(x)),
            ) {
                (Some(h), Some(l)) => {
                    push(h << 4 | l, &mut out);
                    i += 3;
                }
                _ => {
                    push(b'%', &mut out);
                    i += 1;
                }
            }
        } else {
            push(b, &mut out);
            i += 1;
        }
    }
    out
}

impl fmt::Debug for SigV4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV4")
            .field("region", &self.region)
            .field("aws_service", &self.aws_service)
            .field("options", &self.options)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Injector for SigV4 {
    fn kind(&self) -> &'static str {
        "aws-sigv4"
    }

    fn owned_headers(&self) -> &[HeaderName] {
        &OWNED[..]
    }

    fn visit_emitted_secrets(&self, visit: &mut dyn FnMut(&str, &[u8])) {
        for s in &self.secrets {
            visit(&s.name, s.value.expose_secret());
        }
    }

    fn inject<'a>(
        &'a self,
        req: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), InjectError>> {
        Box::pin(async move { self.sign(req) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_path_is_encoded_once() {
        for (path, canonical) in [
            ("/bucket/a%20key.txt", "/bucket/a%20key.txt"),
            ("/test$file.text", "/test%24file.text"),
            ("/a%2fb/%7Ex", "/a%2Fb/~x"),
            ("/%E1%88%B4", "/%E1%88%B4"),
            ("/50%", "/50%25"),
            ("/a+b//c", "/a%2Bb//c"),
        ] {
            assert_eq!(s3_canonical_path(path), canonical, "{path}");
        }
    }

    #[test]
    fn options_follow_the_service() {
        assert!(SigV4Options::for_service("s3").single_encode_path);
        assert!(!SigV4Options::for_service("s3").normalize_path);
        assert!(SigV4Options::for_service("s3-object-lambda").content_sha256_header);
        assert!(!SigV4Options::for_service("ses").single_encode_path);
        assert!(SigV4Options::for_service("execute-api").normalize_path);
    }
}
