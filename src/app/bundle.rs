//! `telltale verify-bundle` and `telltale keygen`: checking an evidence bundle of `telltale verify` with
//! nothing but the bundle (and, for the signature, the signer's public key).
//!
//! This module owns what "the bundle holds" means: every file matches `MANIFEST.json`; the attestation
//! (a DSSE envelope around an in-toto Statement, [`crate::attest`]) names every file, the manifest and
//! both images with the same hashes and carries the same verdicts; its signature verifies with the key
//! when one is given; and the verdicts re-derived from the bundled captures — analysed again with the
//! bundled scenario and identity and the phase times each `report.json` records, judged again — are the
//! bundled reports' and `verdicts.json`'s. Each difference is a [`Problem`] naming its file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use super::verify::{image_subject, IDENTITY_FILE, PREDICATE_TYPE};
use crate::attest::{self, Envelope};
use crate::error::{Error, ExitCode};
use crate::record::{hash_file, RunReport};
use crate::runner::verify::{
    rederive, verify_claims, BundleManifest, ClaimVerification, ATTESTATION, MANIFEST,
};
use crate::scenario::{IdentitySpec, Scenario};

/// Largest bundle archive unpacked, in bytes of content (captures included).
pub const MAX_UNPACKED_BYTES: u64 = 8 << 30;

/// One thing that does not hold, and the file it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path in the bundle (`after/capture.pcap`).
    pub file: String,
    /// What differs.
    pub what: String,
}

/// What was established about the attestation's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// A signature verified with the key given (its key id).
    Verified(String),
    /// No key was given: the signature (if any) was not checked.
    NotChecked {
        /// Signatures in the envelope.
        signatures: usize,
    },
    /// A key was given and no signature verifies with it (also a [`Problem`]).
    Failed,
}

/// The result of `telltale verify-bundle`.
#[derive(Debug, Clone)]
pub struct BundleCheck {
    /// The bundle as given.
    pub bundle: PathBuf,
    /// The scenario's name, when the scenario could be read.
    pub scenario: Option<String>,
    /// Files whose hashes were checked.
    pub files_checked: usize,
    /// The signature.
    pub signature: SignatureStatus,
    /// The verdicts re-derived from the captures (empty if they could not be).
    pub verdicts: Vec<ClaimVerification>,
    /// Everything that does not hold; empty when the bundle holds.
    pub problems: Vec<Problem>,
}

impl BundleCheck {
    /// Whether the bundle holds.
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, file: &str, what: String) {
        self.problems.push(Problem {
            file: file.to_string(),
            what,
        });
    }

    /// 0 the bundle holds, 1 it does not.
    pub fn exit_code(&self) -> ExitCode {
        super::exit::of_bundle(self.holds())
    }
}

/// Reads an Ed25519 private key file (PKCS#8 PEM or 32 raw bytes); a bad file is bad input.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    attest::signing_key(&bytes).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

fn read_verifying_key(path: &Path) -> Result<ed25519_dalek::VerifyingKey, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    attest::verifying_key(&bytes).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

/// `telltale keygen PREFIX`: writes `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub` (SPKI PEM) from
/// a fresh seed; never overwrites.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let with = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (private, public) = (with(".key"), with(".pub"));
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| {
        let os = e.raw_os_error().map(std::io::Error::from_raw_os_error);
        Error::resource("get randomness for the key")(
            os.unwrap_or_else(|| std::io::Error::other(e.to_string())),
        )
    })?;
    let (private_pem, public_pem) =
        attest::key_pair_pem(&seed).map_err(|e| Error::encode("the key pair as PEM", e))?;
    seed.fill(0);
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), Error> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))
    };
    for p in [&private, &public] {
        if p.exists() {
            return Err(Error::Usage(format!(
                "{} exists already; keygen never overwrites a key",
                p.display()
            )));
        }
    }
    write(&private, &private_pem, 0o600)?;
    write(&public, &public_pem, 0o644)?;
    Ok((private, public))
}

/// Where the bundle's files are: the folder itself, or a private folder the archive is unpacked into.
struct Opened {
    dir: PathBuf,
    _unpacked: Option<tempfile::TempDir>,
}

fn open(path: &Path) -> Result<Opened, Error> {
    if path.is_dir() {
        return Ok(Opened {
            dir: path.to_path_buf(),
            _unpacked: None,
        });
    }
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let not_bundle = |e: String| {
        Error::Usage(format!(
            "{} is not an evidence bundle: {e} (give OUT/verify-<scenario>/ or its .tar.gz)",
            path.display()
        ))
    };
    let tmp = tempfile::tempdir().map_err(Error::resource(
        "make a private folder to unpack the bundle in",
    ))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut total = 0u64;
    for entry in archive.entries().map_err(|e| not_bundle(e.to_string()))? {
        let mut entry = entry.map_err(|e| not_bundle(e.to_string()))?;
        // Only regular files and folders: a link could point out of the bundle.
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(not_bundle(format!(
                "entry {} is not a file",
                entry
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNPACKED_BYTES {
            return Err(not_bundle(format!(
                "more than {MAX_UNPACKED_BYTES} bytes unpacked"
            )));
        }
        // `unpack_in` refuses paths that leave the folder.
        entry
            .unpack_in(tmp.path())
            .map_err(|e| not_bundle(e.to_string()))?;
    }
    // The archive holds one folder, `verify-<scenario>/`.
    let dirs: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .map_err(|e| not_bundle(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let [dir] = dirs.as_slice() else {
        return Err(not_bundle("the archive does not hold one folder".into()));
    };
    Ok(Opened {
        dir: dir.clone(),
        _unpacked: Some(tmp),
    })
}

/// Files under `dir`, relative, sorted (`/`-separated).
fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            // Not following links: a link to a parent folder would never end.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// `telltale verify-bundle BUNDLE [--key PUB]`.
pub fn verify_bundle(path: &Path, key: Option<&Path>) -> Result<BundleCheck, Error> {
    let key = key.map(read_verifying_key).transpose()?;
    let opened = open(path)?;
    let dir = &opened.dir;
    if !dir.join(MANIFEST).is_file() {
        return Err(Error::Usage(format!(
            "{} is not an evidence bundle: it has no {MANIFEST} (give OUT/verify-<scenario>/ or its .tar.gz)",
            path.display()
        )));
    }
    let mut c = BundleCheck {
        bundle: path.to_path_buf(),
        scenario: None,
        files_checked: 0,
        signature: SignatureStatus::NotChecked { signatures: 0 },
        verdicts: Vec::new(),
        problems: Vec::new(),
    };

    // 1. The manifest and every file.
    let manifest: BundleManifest = match std::fs::read(dir.join(MANIFEST))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => {
            c.problem(MANIFEST, format!("cannot be read: {e}"));
            return Ok(c);
        }
    };
    let listed: BTreeMap<&str, &crate::record::FileHash> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut checked = 0;
    for (name, want) in &listed {
        match hash_file(&dir.join(name)) {
            Ok(got) if got.sha256 == want.sha256 && got.bytes == want.bytes => checked += 1,
            Ok(got) => c.problem(
                name,
                format!(
                    "SHA-256 {} ({} bytes), but {MANIFEST} says {} ({} bytes)",
                    got.sha256, got.bytes, want.sha256, want.bytes
                ),
            ),
            Err(e) => c.problem(
                name,
                format!("listed in {MANIFEST} but cannot be read: {e}"),
            ),
        }
    }
    for f in files_in(dir) {
        if f != MANIFEST && f != ATTESTATION && !listed.contains_key(f.as_str()) {
            c.problem(&f, format!("is in the bundle but not in {MANIFEST}"));
        }
    }

    // 2. The attestation: the statement against the files, and the signature.
    let manifest_sha = hash_file(&dir.join(MANIFEST))
        .map(|h| h.sha256)
        .unwrap_or_default();
    match std::fs::read(dir.join(ATTESTATION))
        .map_err(|e| format!("missing: {e}"))
        .and_then(|b| Envelope::parse(&b).map_err(|e| e.to_string()))
    {
        Err(e) => c.problem(ATTESTATION, e),
        Ok(env) => {
            match env.statement() {
                Err(e) => c.problem(ATTESTATION, e.to_string()),
                Ok(st) => {
                    if st.predicate_type != PREDICATE_TYPE {
                        c.problem(
                            ATTESTATION,
                            format!(
                                "predicateType is {:?}, not {PREDICATE_TYPE:?}",
                                st.predicate_type
                            ),
                        );
                    }
                    let mut want: BTreeMap<String, String> = listed
                        .iter()
                        .map(|(n, h)| (n.to_string(), h.sha256.clone()))
                        .collect();
                    want.insert(MANIFEST.into(), manifest_sha.clone());
                    for (label, h) in &manifest.images {
                        want.insert(image_subject(label, &h.path), h.sha256.clone());
                    }
                    let mut seen = BTreeMap::new();
                    for s in &st.subject {
                        seen.insert(s.name.clone(), s.sha256_hex().unwrap_or("").to_string());
                    }
                    for (name, sha) in &want {
                        match seen.get(name) {
                            None => c.problem(
                                name,
                                format!("is not a subject of the statement in {ATTESTATION}"),
                            ),
                            Some(s) if s != sha => {
                                // A file's own hash was checked against the manifest above; name the file.
                                c.problem(
                                    name,
                                    format!(
                                        "SHA-256 {sha}, but the statement in {ATTESTATION} says {s}"
                                    ),
                                )
                            }
                            Some(_) => {}
                        }
                    }
                    for name in seen.keys().filter(|n| !want.contains_key(*n)) {
                        c.problem(
                            ATTESTATION,
                            format!("the statement names {name}, which the bundle does not have"),
                        );
                    }
                    let claims = st
                        .predicate
                        .get("claims")
                        .cloned()
                        .map(serde_json::from_value::<Vec<ClaimVerification>>);
                    match claims {
                        Some(Ok(cl)) if cl == manifest.claims => {}
                        Some(Ok(_)) => c.problem(
                            ATTESTATION,
                            format!("the statement's verdicts are not those of {MANIFEST}"),
                        ),
                        _ => c.problem(
                            ATTESTATION,
                            "the statement's predicate has no readable `claims`".into(),
                        ),
                    }
                }
            }
            c.signature = match &key {
                None => SignatureStatus::NotChecked {
                    signatures: env.signatures.len(),
                },
                Some(k) if env.verified_by(k) => SignatureStatus::Verified(attest::key_id(k)),
                Some(k) => {
                    c.problem(
                        ATTESTATION,
                        if env.signatures.is_empty() {
                            "is not signed, but a key was given".to_string()
                        } else {
                            format!(
                                "no signature verifies with the key given (key id {})",
                                attest::key_id(k)
                            )
                        },
                    );
                    SignatureStatus::Failed
                }
            };
        }
    }
    c.files_checked = checked;

    // 3. The verdicts, re-derived from the captures.
    let stored_verdicts: Option<Vec<ClaimVerification>> = std::fs::read(dir.join("verdicts.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if stored_verdicts.as_ref() != Some(&manifest.claims) {
        c.problem(
            "verdicts.json",
            format!("the verdicts are not those of {MANIFEST}"),
        );
    }
    let scenario = match load_scenario(dir) {
        Ok(s) => s,
        Err(p) => {
            c.problems.push(p);
            return Ok(c);
        }
    };
    c.scenario = Some(scenario.name.clone());
    let Some(identity) = scenario.identity().cloned() else {
        c.problems.push(Problem {
            file: "scenario.yaml".into(),
            what: "its identity could not be read".into(),
        });
        return Ok(c);
    };
    let mut runs = Vec::new();
    for which in ["before", "after"] {
        let report_file = format!("{which}/report.json");
        let capture_file = format!("{which}/capture.pcap");
        let text = match std::fs::read(dir.join(&report_file)) {
            Ok(t) => t,
            Err(e) => {
                c.problems.push(Problem {
                    file: report_file,
                    what: format!("cannot be read: {e}"),
                });
                continue;
            }
        };
        let stored: Result<(RunReport, serde_json::Value), String> = serde_json::from_slice(&text)
            .and_then(|r| Ok((r, serde_json::from_slice(&text)?)))
            .map_err(|e| e.to_string());
        let (stored, stored_json) = match stored {
            Ok(x) => x,
            Err(e) => {
                c.problems.push(Problem {
                    file: report_file,
                    what: format!("is not a run report: {e}"),
                });
                continue;
            }
        };
        let again = match rederive(&scenario, &identity, &dir.join(&capture_file), &stored) {
            Ok(r) => r,
            Err(e) => {
                c.problems.push(Problem {
                    file: capture_file,
                    what: e,
                });
                continue;
            }
        };
        for field in ["verdict", "analysis", "judgement"] {
            let re = serde_json::to_value(&again)
                .ok()
                .and_then(|v| v.get(field).cloned())
                .unwrap_or_default();
            let st = stored_json.get(field).cloned().unwrap_or_default();
            if let Some(d) = first_difference(field, &st, &re) {
                c.problems.push(Problem {
                    file: report_file.clone(),
                    what: format!("{d} (re-derived from {capture_file})"),
                });
            }
        }
        runs.push(again);
    }
    if let [before, after] = runs.as_slice() {
        c.verdicts = verify_claims(&scenario, before, after);
        let stored = stored_verdicts.unwrap_or_default();
        for v in &c.verdicts {
            match stored.iter().find(|s| s.id == v.id) {
                Some(s) if s == v => {}
                Some(s) => c.problems.push(Problem {
                    file: "verdicts.json".into(),
                    what: format!(
                        "claim {} is {} in the file, {} re-derived from the captures ({})",
                        v.id,
                        s.verdict.words(),
                        v.verdict.words(),
                        if s.verdict == v.verdict {
                            "same verdict, different evidence"
                        } else {
                            v.reason.as_str()
                        }
                    ),
                }),
                None => c.problems.push(Problem {
                    file: "verdicts.json".into(),
                    what: format!("claim {} has no verdict in the file", v.id),
                }),
            }
        }
        for s in stored
            .iter()
            .filter(|s| !c.verdicts.iter().any(|v| v.id == s.id))
        {
            c.problems.push(Problem {
                file: "verdicts.json".into(),
                what: format!("claim {} is not a claim of the bundled scenario", s.id),
            });
        }
    }
    Ok(c)
}

/// The bundled scenario with the bundled identity (pure parse: the files it names need not exist here).
fn load_scenario(dir: &Path) -> Result<Scenario, Problem> {
    let bad = |file: &str, what: String| Problem {
        file: file.to_string(),
        what,
    };
    let text = std::fs::read_to_string(dir.join("scenario.yaml"))
        .map_err(|e| bad("scenario.yaml", format!("cannot be read: {e}")))?;
    let mut s = Scenario::parse(&text, "scenario.yaml", dir)
        .map_err(|e| bad("scenario.yaml", e.to_string()))?;
    if let IdentitySpec::File(_) = &s.identity {
        let id = std::fs::read_to_string(dir.join(IDENTITY_FILE)).map_err(|e| {
            bad(
                IDENTITY_FILE,
                format!(
                    "the scenario names an identity file, but the bundle's cannot be read: {e}"
                ),
            )
        })?;
        s.attach_identity(&id)
            .map_err(|e| bad(IDENTITY_FILE, e.to_string()))?;
    }
    Ok(s)
}

/// The first place two JSON values differ, as `path: stored X, re-derived Y`.
fn first_difference(
    path: &str,
    stored: &serde_json::Value,
    again: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    match (stored, again) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    &format!("{path}.{k}"),
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
        (Value::Array(a), Value::Array(b)) => Some(format!(
            "{path} has {} entries in the file, {} re-derived",
            a.len(),
            b.len()
        )),
        _ if stored == again => None,
        _ => Some(format!(
            "{path} is {} in the file, {} re-derived",
            short(stored),
            short(again)
        )),
    }
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let a = json!({"findings": [{"count": 2, "canary": "imei"}], "flows": []});
        let b = json!({"findings": [{"count": 3, "canary": "imei"}], "flows": []});
        assert_eq!(
            first_difference("analysis", &a, &b).unwrap(),
            "analysis.findings[0].count is 2 in the file, 3 re-derived"
        );
        assert_eq!(first_difference("analysis", &a, &a), None);
        let c = json!({"findings": [], "flows": []});
        assert_eq!(
            first_difference("analysis", &a, &c).unwrap(),
            "analysis.findings has 1 entries in the file, 0 re-derived"
        );
    }
}
