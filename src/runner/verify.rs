//! Checking a vendor's patch claims: the same scenario on the release before and after the
//! fix, a verdict per claim, and an evidence bundle anyone can check byte for byte; and
//! comparing two runs' findings.
//!
//! This module owns the verdicts (pure: two run reports in, verdicts out), the comparison
//! table, the bundle (a folder and a deterministic `.tar.gz` with a manifest of SHA-256
//! hashes of every file and both images), and re-deriving a run's report from its capture
//! ([`rederive`], for `verify-bundle`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{hash_file, ClaimStatus, FileHash, RunReport, Verdict};
use crate::report::{Direction, Report};
use crate::scenario::Scenario;

/// What a claim turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimVerdict {
    /// The leak was seen before the fix and is gone after it.
    Fixed,
    /// The leak is still there after the fix.
    StillLeaking,
    /// The leak was not seen before the fix either: the claim is not shown.
    NotReproduced,
    /// A run could not observe it (it failed, never reached the phase, or the relevant
    /// traffic was opaque).
    Inconclusive,
}

impl ClaimVerdict {
    /// As printed: `FIXED`, `STILL LEAKING`, `NOT REPRODUCED`, `INCONCLUSIVE`.
    pub fn words(self) -> &'static str {
        match self {
            ClaimVerdict::Fixed => "FIXED",
            ClaimVerdict::StillLeaking => "STILL LEAKING",
            ClaimVerdict::NotReproduced => "NOT REPRODUCED",
            ClaimVerdict::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// One claim's verdict with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimVerification {
    /// Advisory or ticket.
    pub id: String,
    /// The vendor's words.
    pub says: String,
    /// The verdict.
    pub verdict: ClaimVerdict,
    /// Why, in words.
    pub reason: String,
    /// What broke the claim before the fix.
    pub before: Vec<String>,
    /// What breaks it after the fix.
    pub after: Vec<String>,
}

/// Why a run cannot show any claim either way: it did not complete.
fn incomplete(run: &RunReport, which: &str) -> Option<String> {
    match run.verdict {
        Verdict::Error | Verdict::Interrupted => Some(format!(
            "the {which} run did not complete: {}",
            run.error.as_deref().unwrap_or("interrupted")
        )),
        Verdict::Pass | Verdict::Fail | Verdict::Inconclusive => None,
    }
}

/// The run's own judgement of claim `id`: what broke it, and why it could not be shown to hold when nothing
/// did (a phase it covers that never ran, unread traffic it covers). These are the run verdict's rules, so
/// `verify` and `run` never disagree about what a run observed.
fn judged(run: &RunReport, id: &str) -> (Vec<String>, Vec<String>) {
    let Some(c) = run.judgement.claims.iter().find(|c| c.id == id) else {
        return (Vec::new(), Vec::new());
    };
    let broke = c.violations.iter().map(|v| v.text.clone()).collect();
    let unshown = if c.verdict == ClaimStatus::Inconclusive {
        c.inconclusive.clone()
    } else {
        Vec::new()
    };
    (broke, unshown)
}

/// A verdict for every claim of the scenario, from the runs before and after the fix.
pub fn verify_claims(
    scenario: &Scenario,
    before: &RunReport,
    after: &RunReport,
) -> Vec<ClaimVerification> {
    scenario
        .claims
        .iter()
        .map(|claim| {
            let (b, unshown_before) = judged(before, &claim.id);
            let (a, unshown_after) = judged(after, &claim.id);
            let (verdict, reason) = if let Some(why) =
                incomplete(before, "before").or_else(|| incomplete(after, "after"))
            {
                (ClaimVerdict::Inconclusive, why)
            } else if !a.is_empty() {
                (
                    ClaimVerdict::StillLeaking,
                    format!("{} violation(s) after the fix, {} before", a.len(), b.len()),
                )
            } else if b.is_empty() && !unshown_before.is_empty() {
                (
                    ClaimVerdict::Inconclusive,
                    format!(
                        "the before run could not show the leak: {}",
                        unshown_before.join("; ")
                    ),
                )
            } else if b.is_empty() {
                (
                    ClaimVerdict::NotReproduced,
                    "the leak was not seen before the fix either, so the run does not show the fix"
                        .into(),
                )
            } else if !unshown_after.is_empty() {
                (
                    ClaimVerdict::Inconclusive,
                    format!(
                        "gone from what telltale could read, but after the fix {}",
                        unshown_after.join("; ")
                    ),
                )
            } else {
                (
                    ClaimVerdict::Fixed,
                    format!("{} violation(s) before the fix, none after", b.len()),
                )
            };
            ClaimVerification {
                id: claim.id.clone(),
                says: claim.says.clone(),
                verdict,
                reason,
                before: b,
                after: a,
            }
        })
        .collect()
}

/// One row of a comparison: an upload finding and how often each run saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComparedFinding {
    /// `PERSISTED`, `DISAPPEARED` or `APPEARED`.
    pub status: &'static str,
    /// Canary name.
    pub canary: String,
    /// Encoding chain.
    pub encoding: String,
    /// Destination.
    pub destination: String,
    /// `METHOD /path` or the protocol.
    pub request: String,
    /// Phase.
    pub phase: String,
    /// Occurrences in run A.
    pub count_a: u64,
    /// Occurrences in run B.
    pub count_b: u64,
}

fn upload_keys(r: &Report) -> BTreeMap<(String, String, String, String, String), u64> {
    let mut m = BTreeMap::new();
    for f in r.findings.iter().filter(|f| f.direction == Direction::Up) {
        let request = f.request().unwrap_or_else(|| f.protocol.clone());
        let key = (
            f.canary.clone(),
            f.encoding.clone(),
            f.destination.clone(),
            request,
            f.phase
                .clone()
                .unwrap_or_else(|| crate::scenario::INITIAL_PHASE.into()),
        );
        *m.entry(key).or_insert(0) += f.count;
    }
    m
}

/// Upload findings of two runs side by side: persisted (both), disappeared (A only),
/// appeared (B only). Sorted by status, then canary.
pub fn compare(a: &Report, b: &Report) -> Vec<ComparedFinding> {
    let (ka, kb) = (upload_keys(a), upload_keys(b));
    let mut out = Vec::new();
    for (k, ca) in &ka {
        let cb = kb.get(k).copied().unwrap_or(0);
        out.push((k.clone(), *ca, cb));
    }
    for (k, cb) in &kb {
        if !ka.contains_key(k) {
            out.push((k.clone(), 0, *cb));
        }
    }
    let mut rows: Vec<ComparedFinding> = out
        .into_iter()
        .map(
            |((canary, encoding, destination, request, phase), ca, cb)| ComparedFinding {
                status: match (ca > 0, cb > 0) {
                    (true, true) => "PERSISTED",
                    (true, false) => "DISAPPEARED",
                    _ => "APPEARED",
                },
                canary,
                encoding,
                destination,
                request,
                phase,
                count_a: ca,
                count_b: cb,
            },
        )
        .collect();
    let order = |s: &str| match s {
        "PERSISTED" => 0,
        "APPEARED" => 1,
        _ => 2,
    };
    rows.sort_by(|x, y| {
        (
            order(x.status),
            &x.canary,
            &x.encoding,
            &x.destination,
            &x.request,
            &x.phase,
        )
            .cmp(&(
                order(y.status),
                &y.canary,
                &y.encoding,
                &y.destination,
                &y.request,
                &y.phase,
            ))
    });
    rows
}

/// `MANIFEST.json` of an evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// telltale's version.
    pub telltale_version: String,
    /// The command line.
    pub command_line: Vec<String>,
    /// The firmware image of the release before the fix, and after.
    pub images: BTreeMap<String, FileHash>,
    /// Every file in the bundle (paths relative to the bundle), except this manifest.
    pub files: Vec<FileHash>,
    /// The verdicts.
    pub claims: Vec<ClaimVerification>,
}

/// Files under `dir`, relative paths, sorted.
fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The bundle's attestation: a DSSE envelope around an in-toto Statement (not listed in `MANIFEST.json`,
/// which it covers by hash).
pub const ATTESTATION: &str = "attestation.dsse.json";
/// The bundle's manifest.
pub const MANIFEST: &str = "MANIFEST.json";

/// Writes `MANIFEST.json`: hashes of every file in `bundle` (except the manifest and the attestation) and
/// of both images.
pub fn write_manifest(
    bundle: &Path,
    images: &[(&str, &Path)],
    claims: Vec<ClaimVerification>,
    command_line: Vec<String>,
) -> std::io::Result<BundleManifest> {
    let mut files = Vec::new();
    for rel in walk(bundle)? {
        if rel == Path::new(MANIFEST) || rel == Path::new(ATTESTATION) {
            continue;
        }
        let mut h = hash_file(&bundle.join(&rel))?;
        h.path = rel.display().to_string();
        files.push(h);
    }
    let mut imgs = BTreeMap::new();
    for (label, p) in images {
        // Container images are references, not files: each run's manifest names them.
        if p.is_file() {
            imgs.insert(label.to_string(), hash_file(p)?);
        }
    }
    let manifest = BundleManifest {
        telltale_version: env!("CARGO_PKG_VERSION").to_string(),
        command_line,
        images: imgs,
        files,
        claims,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)? + "\n";
    crate::record::write_atomic(&bundle.join(MANIFEST), text.as_bytes())?;
    Ok(manifest)
}

/// Writes `<bundle>.tar.gz` (sorted entries, fixed times and owners: the same files give the same
/// archive).
pub fn archive_bundle(bundle: &Path) -> std::io::Result<PathBuf> {
    let name = bundle
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let archive = bundle.with_file_name(format!("{name}.tar.gz"));
    // Written beside it, then renamed: a full disk or a crash never leaves a truncated archive under its name.
    let tmp = bundle.with_file_name(format!(".{name}.tar.gz.tmp-{}", std::process::id()));
    let result = (|| {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&tmp)?,
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        for rel in walk(bundle)? {
            let mut f = std::fs::File::open(bundle.join(&rel))?;
            tar.append_file(Path::new(&name).join(&rel), &mut f)?;
        }
        tar.into_inner()?.finish()?.sync_all()?;
        std::fs::rename(&tmp, &archive)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| archive)
}

/// A run's report re-derived from its capture: the capture analysed again with the identity and the
/// phase spans the report records, and judged again by the scenario's rules and claims. Everything else
/// (steps, the network's log, times) is the stored report's.
pub fn rederive(
    scenario: &Scenario,
    identity: &crate::Identity,
    pcap: &Path,
    stored: &RunReport,
) -> Result<RunReport, String> {
    let matcher = std::sync::Arc::new(crate::Matcher::new(identity));
    let cfg = crate::Config {
        phases: stored
            .phases
            .iter()
            .map(|p| (p.start_ns, p.name.clone()))
            .collect(),
        ..crate::Config::default()
    };
    let mut analysis = crate::analyze_file(pcap, matcher, cfg, |_| {})
        .map_err(|e| format!("cannot analyse {}: {e}", pcap.display()))?;
    // The file name is where the capture was read from, not evidence.
    analysis.capture.file = stored.analysis.capture.file.clone();
    let stopped = matches!(stored.verdict, Verdict::Error | Verdict::Interrupted);
    let observed = super::verdict::Observed {
        phases: &stored.phases,
        completed: !stopped,
    };
    let judgement = super::verdict::judge(scenario, identity, &analysis, &observed);
    let verdict = super::verdict::run_verdict(stopped.then_some(stored.verdict), &judgement);
    Ok(RunReport {
        verdict,
        judgement,
        analysis,
        ..stored.clone()
    })
}

#[cfg(test)]
mod archive_tests {
    use super::*;

    /// The archive appears whole under its name or not at all: an archive that cannot be put in place (its
    /// name is taken by a folder) is an error and leaves no partial file behind; a second run replaces the
    /// first archive whole.
    #[test]
    fn the_archive_is_renamed_into_place_whole() {
        let root = std::env::temp_dir().join(format!("tt-archive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let bundle = root.join("verify-x");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(bundle.join("a.txt"), "first").unwrap();
        let archive = archive_bundle(&bundle).unwrap();
        let first = std::fs::read(&archive).unwrap();
        std::fs::write(bundle.join("a.txt"), "second, longer").unwrap();
        archive_bundle(&bundle).unwrap();
        assert_ne!(std::fs::read(&archive).unwrap(), first);
        let leftovers = |root: &Path| {
            std::fs::read_dir(root)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
                .count()
        };
        assert_eq!(leftovers(&root), 0);
        std::fs::remove_file(&archive).unwrap();
        std::fs::create_dir_all(archive.join("in-the-way")).unwrap();
        assert!(archive_bundle(&bundle).is_err());
        assert_eq!(leftovers(&root), 0);
        let _ = std::fs::remove_dir_all(&root);
    }
}
