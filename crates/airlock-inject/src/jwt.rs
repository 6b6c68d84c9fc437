//! RS256 JSON Web Tokens (RFC 7519) for the GitHub App and GCP service-account
//! grants, signed with aws-lc-rs (the crypto rustls already compiles).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use zeroize::Zeroizing;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An RSA private key, held by aws-lc-rs (its memory is cleansed when freed).
pub(crate) struct RsaKey {
    key: RsaKeyPair,
}

impl RsaKey {
    /// Reads a PEM private key: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub hands out)
    /// or PKCS#8 (`BEGIN PRIVATE KEY`, what Google puts in key files). Errors say what
    /// is wrong, never what the key contains.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, &'static str> {
        let (label, der) = pem_decode(pem)?;
        let key = match label {
            PemLabel::Pkcs1 => RsaKeyPair::from_der(&der),
            PemLabel::Pkcs8 => RsaKeyPair::from_pkcs8(&der),
        }
        .map_err(|_| "the PEM block is not a usable RSA private key (2048 to 8192 bits)")?;
        Ok(RsaKey { key })
    }

    /// `base64url(header) "." base64url(claims) "." base64url(RS256 signature)`.
    pub(crate) fn sign_jwt(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<Zeroizing<String>, &'static str> {
        let mut jwt = Zeroizing::new(String::with_capacity(1024));
        B64URL.encode_string(header.to_string(), &mut jwt);
        jwt.push('.');
        B64URL.encode_string(claims.to_string(), &mut jwt);
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                jwt.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "RSA signing failed")?;
        jwt.push('.');
        B64URL.encode_string(&sig, &mut jwt);
        Ok(jwt)
    }
}

enum PemLabel {
    Pkcs1,
    Pkcs8,
}

/// The first private-key PEM block's label and DER bytes.
fn pem_decode(pem: &[u8]) -> Result<(PemLabel, Zeroizing<Vec<u8>>), &'static str> {
    let text = std::str::from_utf8(pem).map_err(|_| "the value is not a PEM text file")?;
    let (label, rest) = if let Some(i) = text.find("-----BEGIN RSA PRIVATE KEY-----") {
        (
            PemLabel::Pkcs1,
            &text[i + "-----BEGIN RSA PRIVATE KEY-----".len()..],
        )
    } else if let Some(i) = text.find("-----BEGIN PRIVATE KEY-----") {
        (
            PemLabel::Pkcs8,
            &text[i + "-----BEGIN PRIVATE KEY-----".len()..],
        )
    } else if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err("the private key is encrypted; store the decrypted PEM in the vault");
    } else {
        return Err("no `-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----` block");
    };
    let end = rest
        .find("-----END ")
        .ok_or("the PEM block has no -----END line")?;
    let mut b64 = Zeroizing::new(Vec::with_capacity(end));
    b64.extend(rest[..end].bytes().filter(|b| !b.is_ascii_whitespace()));
    let mut der = Zeroizing::new(Vec::with_capacity(b64.len() * 3 / 4));
    base64::engine::general_purpose::STANDARD
        .decode_vec(&*b64, &mut der)
        .map_err(|_| "the PEM block is not valid base64")?;
    Ok((label, der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    #[test]
    fn signs_verifiable_jwts_and_rejects_bad_pem() {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = kp.as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let pem = format!("junk\n-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        let key = RsaKey::from_pem(pem.as_bytes()).unwrap();
        let jwt = key
            .sign_jwt(
                &serde_json::json!({"alg":"RS256"}),
                &serde_json::json!({"iss":"x"}),
            )
            .unwrap();
        let (signed, sig) = jwt.rsplit_once('.').unwrap();
        let sig = B64URL.decode(sig).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, kp.public_key().as_ref())
            .verify(signed.as_bytes(), &sig)
            .unwrap();

        for bad in [
            &b"no pem here"[..],
            b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            b"-----BEGIN RSA PRIVATE KEY-----\nAAAA",
        ] {
            assert!(RsaKey::from_pem(bad).is_err());
        }
    }
}
