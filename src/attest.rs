//! Attestations: an in-toto Statement v1 in a DSSE envelope, signed with Ed25519 or left unsigned.
//!
//! This module owns the formats (pure: bytes in, bytes or values out, no files): the Statement
//! (`https://in-toto.io/Statement/v1`: subjects by SHA-256, a predicate type, a predicate), the DSSE
//! envelope (`payloadType`, base64 `payload`, `signatures[{keyid, sig}]`), the pre-authentication
//! encoding every signature covers (`PAE`, DSSE protocol v1), and Ed25519 keys (ed25519-dalek) read
//! from PKCS#8 / SPKI PEM (what `openssl genpkey -algorithm ed25519` writes) or from 32 raw bytes.
//! Serialisation is deterministic: struct fields in a fixed order, JSON maps sorted, and Ed25519
//! signatures are deterministic, so the same statement and key give the same bytes.

use std::collections::BTreeMap;

use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The in-toto Statement's `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The DSSE `payloadType` of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// What went wrong with an attestation or a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestError {
    /// The envelope is not DSSE JSON.
    #[error("not a DSSE envelope: {0}")]
    Envelope(String),
    /// The payload is not base64, or not an in-toto Statement v1.
    #[error("the payload is not an in-toto Statement v1: {0}")]
    Statement(String),
    /// A key file that is neither PEM nor 32 raw bytes.
    #[error("not an Ed25519 {what} key (give PKCS#8/SPKI PEM, e.g. from `openssl genpkey -algorithm ed25519`, or 32 raw bytes): {detail}")]
    Key {
        /// `private` or `public`.
        what: &'static str,
        /// What the parser said.
        detail: String,
    },
}

/// A subject: a name and its digests (`sha256` here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// What the digest is of (a path in the bundle, or `image-before:NAME`).
    pub name: String,
    /// `{"sha256": HEX}`.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject with its SHA-256 in hex.
    pub fn sha256(name: impl Into<String>, hex: impl Into<String>) -> Subject {
        Subject {
            name: name.into(),
            digest: BTreeMap::from([("sha256".to_string(), hex.into())]),
        }
    }

    /// The SHA-256 in hex, if given.
    pub fn sha256_hex(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// What the predicate means.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

impl Statement {
    /// A statement about `subject`.
    pub fn new(
        subject: Vec<Subject>,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Statement {
        Statement {
            type_: STATEMENT_TYPE.to_string(),
            subject,
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// A hint naming the key (here: SHA-256 of the raw public key, hex); never trusted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// The signature over [`pae`], base64.
    pub sig: String,
}

/// A DSSE envelope (the JSON form of the DSSE spec's `envelope.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The serialized body, base64.
    pub payload: String,
    /// How to read the payload.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Zero or more signatures.
    pub signatures: Vec<Signature>,
}

/// DSSE's pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Either standard or URL-safe base64 (the DSSE spec: verifiers must accept both), padded or not.
fn unb64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
}

/// The key id telltale writes: SHA-256 of the raw 32-byte public key, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Envelope {
    /// An envelope around `body` of type `payload_type`, signed with `key` when given.
    pub fn seal(payload_type: &str, body: &[u8], key: Option<&SigningKey>) -> Envelope {
        let signatures = key
            .map(|k| Signature {
                keyid: key_id(&k.verifying_key()),
                sig: b64(&k.sign(&pae(payload_type, body)).to_bytes()),
            })
            .into_iter()
            .collect();
        Envelope {
            payload: b64(body),
            payload_type: payload_type.to_string(),
            signatures,
        }
    }

    /// An envelope around a Statement (serialised as compact JSON, keys in a fixed order).
    pub fn of_statement(st: &Statement, key: Option<&SigningKey>) -> Envelope {
        // Serialising these types cannot fail (string keys, no non-finite floats).
        let body = serde_json::to_vec(st).unwrap_or_default();
        Envelope::seal(PAYLOAD_TYPE, &body, key)
    }

    /// Reads an envelope from JSON.
    pub fn parse(json: &[u8]) -> Result<Envelope, AttestError> {
        serde_json::from_slice(json).map_err(|e| AttestError::Envelope(e.to_string()))
    }

    /// The envelope as JSON (pretty, with a final newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The decoded payload.
    pub fn body(&self) -> Result<Vec<u8>, AttestError> {
        unb64(&self.payload).map_err(|e| AttestError::Envelope(format!("payload: {e}")))
    }

    /// The payload as an in-toto Statement v1 (payload type and `_type` checked).
    pub fn statement(&self) -> Result<Statement, AttestError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(AttestError::Statement(format!(
                "payloadType is {:?}, not {PAYLOAD_TYPE:?}",
                self.payload_type
            )));
        }
        let st: Statement = serde_json::from_slice(&self.body()?)
            .map_err(|e| AttestError::Statement(e.to_string()))?;
        if st.type_ != STATEMENT_TYPE {
            return Err(AttestError::Statement(format!(
                "_type is {:?}, not {STATEMENT_TYPE:?}",
                st.type_
            )));
        }
        Ok(st)
    }

    /// Whether a signature verifies with `key` over PAE(payloadType, payload).
    pub fn verified_by(&self, key: &VerifyingKey) -> bool {
        let Ok(body) = self.body() else { return false };
        let msg = pae(&self.payload_type, &body);
        self.signatures.iter().any(|s| {
            unb64(&s.sig)
                .ok()
                .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
                .is_some_and(|sig| key.verify(&msg, &sig).is_ok())
        })
    }
}

/// A private key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) or 32 raw bytes (the seed).
pub fn signing_key(bytes: &[u8]) -> Result<SigningKey, AttestError> {
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return Ok(SigningKey::from_bytes(&raw));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| AttestError::Key {
        what: "private",
        detail: format!("{} bytes, not PEM text", bytes.len()),
    })?;
    SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| AttestError::Key {
        what: "private",
        detail: e.to_string(),
    })
}

/// A public key from SPKI PEM (`-----BEGIN PUBLIC KEY-----`) or 32 raw bytes.
pub fn verifying_key(bytes: &[u8]) -> Result<VerifyingKey, AttestError> {
    let bad = |detail: String| AttestError::Key {
        what: "public",
        detail,
    };
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return VerifyingKey::from_bytes(&raw).map_err(|e| bad(e.to_string()));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| bad(format!("{} bytes, not PEM text", bytes.len())))?;
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| bad(e.to_string()))
}

/// A key pair from a 32-byte seed, as PEM: (PKCS#8 private key, SPKI public key).
pub fn key_pair_pem(seed: &[u8; 32]) -> Result<(String, String), AttestError> {
    let k = SigningKey::from_bytes(seed);
    let private = k
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| AttestError::Key {
            what: "private",
            detail: e.to_string(),
        })?;
    let public = k
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| AttestError::Key {
            what: "public",
            detail: e.to_string(),
        })?;
    Ok((private.to_string(), public))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, section 7.1, TEST 1.
    const RFC8032_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC8032_SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn rfc_key() -> SigningKey {
        let seed: [u8; 32] = hex::decode(RFC8032_SECRET).unwrap().try_into().unwrap();
        SigningKey::from_bytes(&seed)
    }

    #[test]
    fn pae_is_the_dsse_spec_test_vector() {
        // protocol.md, "Test Vectors": type http://example.com/HelloWorld, body "hello world".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn the_envelope_has_the_spec_fields_and_payload_encoding() {
        let e = Envelope::seal("http://example.com/HelloWorld", b"hello world", None);
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        // The spec's resulting envelope carries exactly this payload for "hello world".
        assert_eq!(v["payload"], "aGVsbG8gd29ybGQ=");
        assert_eq!(v["payloadType"], "http://example.com/HelloWorld");
        assert_eq!(v["signatures"], serde_json::json!([]));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["payload", "payloadType", "signatures"]);
        // The spec's own envelope (its ECDSA signature aside) reads back.
        let spec = br#"{"payload": "aGVsbG8gd29ybGQ=", "payloadType": "http://example.com/HelloWorld", "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
        let parsed = Envelope::parse(spec).unwrap();
        assert_eq!(parsed.body().unwrap(), b"hello world");
        assert_eq!(parsed.signatures[0].keyid, "");
    }

    #[test]
    fn ed25519_is_rfc8032_and_signs_the_pae() {
        let k = rfc_key();
        assert_eq!(hex::encode(k.verifying_key().as_bytes()), RFC8032_PUBLIC);
        assert_eq!(hex::encode(k.sign(b"").to_bytes()), RFC8032_SIG);

        let e = Envelope::seal("http://example.com/HelloWorld", b"hello world", Some(&k));
        let sig = unb64(&e.signatures[0].sig).unwrap();
        let expected = k.sign(b"DSSEv1 29 http://example.com/HelloWorld 11 hello world");
        assert_eq!(sig, expected.to_bytes().to_vec());
        assert!(e.verified_by(&k.verifying_key()));
        assert_eq!(e.signatures[0].keyid, key_id(&k.verifying_key()));

        // The type is authenticated: the same signature over another type does not verify.
        let mut other = e.clone();
        other.payload_type = "http://example.com/Other".into();
        assert!(!other.verified_by(&k.verifying_key()));
        // So is the body, and the key.
        let mut other = e.clone();
        other.payload = b64(b"hello World");
        assert!(!other.verified_by(&k.verifying_key()));
        let stranger = SigningKey::from_bytes(&[7u8; 32]);
        assert!(!e.verified_by(&stranger.verifying_key()));
        // URL-safe base64 is accepted as the spec requires.
        let mut url = e.clone();
        url.signatures[0].sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sig);
        assert!(url.verified_by(&k.verifying_key()));
    }

    #[test]
    fn statements_round_trip_and_are_checked() {
        let st = Statement::new(
            vec![Subject::sha256("a.pcap", "00ff")],
            "https://example.com/p",
            serde_json::json!({"b": 1, "a": [true]}),
        );
        let e = Envelope::of_statement(&st, None);
        let body = String::from_utf8(e.body().unwrap()).unwrap();
        assert_eq!(
            body,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.pcap","digest":{"sha256":"00ff"}}],"predicateType":"https://example.com/p","predicate":{"a":[true],"b":1}}"#
        );
        assert_eq!(e.statement().unwrap(), st);
        let mut bad = e.clone();
        bad.payload_type = "application/json".into();
        assert!(matches!(bad.statement(), Err(AttestError::Statement(_))));
        let bad = Envelope::seal(
            PAYLOAD_TYPE,
            br#"{"_type":"x","subject":[],"predicateType":"p","predicate":null}"#,
            None,
        );
        assert!(matches!(bad.statement(), Err(AttestError::Statement(_))));
    }

    #[test]
    fn keys_read_from_pem_and_raw_bytes() {
        let (private, public) = key_pair_pem(&[3u8; 32]).unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
        let k = signing_key(private.as_bytes()).unwrap();
        assert_eq!(k.to_bytes(), [3u8; 32]);
        let p = verifying_key(public.as_bytes()).unwrap();
        assert_eq!(p, k.verifying_key());
        assert_eq!(signing_key(&[3u8; 32]).unwrap().to_bytes(), [3u8; 32]);
        assert_eq!(verifying_key(p.as_bytes()).unwrap(), p);
        assert!(matches!(
            signing_key(b"not a key"),
            Err(AttestError::Key {
                what: "private",
                ..
            })
        ));
        assert!(matches!(
            verifying_key(private.as_bytes()),
            Err(AttestError::Key { what: "public", .. })
        ));
    }
}
