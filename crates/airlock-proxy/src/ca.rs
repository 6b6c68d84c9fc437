//! The per-session certificate authority: created in memory when the proxy
//! starts, never written to disk with its key, and trusted only by the programs
//! the proxy serves (through `SSL_CERT_FILE` and friends), never system-wide.
//!
//! It mints a leaf certificate for a host the proxy terminates TLS for (ECDSA
//! P-256, the host as the only subject alternative name); the proxy caches the
//! TLS configuration built on it per host, so the first CONNECT to a host pays
//! one key generation and one signature, later ones nothing.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use crate::ProxyError;

/// How long the session CA and its leaves are valid: a session that runs longer
/// than this starts a new proxy. Leaves never outlive their CA.
const VALIDITY: time::Duration = time::Duration::days(7);
/// Clock skew allowed for (a leaf valid from an hour ago).
const SKEW: time::Duration = time::Duration::hours(1);

/// The session CA: its certificate (public) and its signing key (in memory only).
pub struct SessionCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    not_after: time::OffsetDateTime,
}

impl std::fmt::Debug for SessionCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl SessionCa {
    /// A new CA with a fresh key, valid from an hour ago for [`VALIDITY`].
    pub fn new() -> Result<SessionCa, ProxyError> {
        let key = KeyPair::generate().map_err(ca_error)?;
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "airlock session CA");
        params.distinguished_name.push(
            DnType::OrganizationName,
            "airlock egress proxy (this session only)",
        );
        // It signs leaves only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - SKEW;
        params.not_after = now + VALIDITY;
        let cert = params.self_signed(&key).map_err(ca_error)?;
        Ok(SessionCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            not_after: now + VALIDITY,
        })
    }

    /// The CA certificate, PEM, for the clients' trust stores.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A new leaf certificate and key for `host` (lower-case DNS name or IP
    /// literal).
    pub fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, ProxyError> {
        let key = KeyPair::generate().map_err(ca_error)?;
        let mut params = CertificateParams::new(vec![host.to_string()]).map_err(ca_error)?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = time::OffsetDateTime::now_utc() - SKEW;
        params.not_after = self.not_after;
        let cert = params.signed_by(&key, &self.issuer).map_err(ca_error)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::aws_lc_rs::sign::any_ecdsa_type(&der)
            .map_err(|e| ProxyError::Ca(e.to_string()))?;
        Ok(Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.cert_der.clone()],
            signing,
        )))
    }
}

fn ca_error(e: rcgen::Error) -> ProxyError {
    ProxyError::Ca(e.to_string())
}
