//! `telltale verify`: the same scenario on the release before and after a fix, a verdict per claim, and the
//! evidence bundle. This module owns choosing the release (an image file, a container tag, a capture, or
//! another scenario's target) and putting the bundle together; the verdicts themselves are
//! [`crate::runner::verify`]'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{execute, Planned, RunRequest};
use crate::attest::{Envelope, Statement, Subject};
use crate::error::{Error, ExitCode};
use crate::runner::verify::{
    archive_bundle, verify_claims, write_manifest, BundleManifest, ClaimVerification, ATTESTATION,
    MANIFEST,
};
use crate::runner::{Progress, RunOutcome};
use crate::scenario::{HostAllow, IdentitySpec, Scenario, Target};

/// The predicate type of the bundle's statement: telltale's verify predicate, described in the README
/// ("For auditors"). A name, not a location.
pub const PREDICATE_TYPE: &str = "https://telltale.invalid/attestation/verify/v1";
/// The identity file's name in the bundle, when the scenario names one.
pub const IDENTITY_FILE: &str = "identity.yaml";

/// What `telltale verify` established.
#[derive(Debug)]
pub struct VerifyOutcome {
    /// The scenario's name.
    pub scenario: String,
    /// The verdict of every claim.
    pub verdicts: Vec<ClaimVerification>,
    /// The run before the fix.
    pub before: RunOutcome,
    /// The run after it.
    pub after: RunOutcome,
    /// The evidence bundle's folder.
    pub bundle: PathBuf,
    /// The bundle as a deterministic `.tar.gz`.
    pub archive: PathBuf,
    /// The key id of the attestation's signature, when it was signed.
    pub signed_by: Option<String>,
}

impl VerifyOutcome {
    /// The worst claim verdict's exit code.
    pub fn exit_code(&self) -> ExitCode {
        self.verdicts
            .iter()
            .map(|v| super::exit::of_claim(v.verdict))
            .fold(ExitCode::Clean, ExitCode::worse)
    }
}

/// A release given to `verify`: an image file (replacing the scenario's initrd, else its disk), a container
/// image reference, a capture (for a `capture` target) or another scenario file (whose target is used).
/// Returns the scenario to run and the image it runs.
pub fn release_variant(base: &Scenario, arg: &Path) -> Result<(Scenario, PathBuf), Error> {
    let mut s = base.clone();
    if matches!(
        arg.extension().and_then(|x| x.to_str()),
        Some("yaml" | "yml")
    ) {
        // Its host access was checked against the command line's flags ([`super::require_host_access`]).
        let other = Scenario::load(arg, HostAllow::all())?;
        s.target = other.target.clone();
    } else if let Target::Container(c) = &mut s.target {
        // A container release is an image reference (`vendor/fw:2.1`), not a file.
        let r = arg.to_string_lossy();
        match r.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((image, tag)) => {
                c.image = image.to_string();
                c.tag = tag.to_string();
            }
            None => c.tag = r.into_owned(),
        }
    } else {
        if !arg.is_file() {
            return Err(Error::Usage(format!(
                "{} is not a file: --before/--after take a firmware image, a capture (for a `capture` target) or a scenario file",
                arg.display()
            )));
        }
        match &mut s.target {
            Target::Qemu(q) if q.initrd.is_some() => q.initrd = Some(arg.to_path_buf()),
            Target::Qemu(q) => q.disk = Some(arg.to_path_buf()),
            Target::Capture(c) => c.file = arg.to_path_buf(),
            other => {
                return Err(Error::Usage(format!(
                    "a `{}` target has no image file to replace: give --before/--after as scenario files",
                    other.kind()
                )))
            }
        }
    }
    let image = match &s.target {
        Target::Qemu(q) => q
            .initrd
            .clone()
            .or_else(|| q.disk.clone())
            .unwrap_or_else(|| q.kernel.clone()),
        Target::Capture(c) => c.file.clone(),
        Target::Container(c) => PathBuf::from(format!("{}:{}", c.image, c.tag)),
        _ => PathBuf::new(),
    };
    Ok((s, image))
}

/// `telltale verify`: runs `scenario` on the release `before` and `after` the fix (side by side), gives each
/// claim a verdict and writes the evidence bundle `OUT/verify-<scenario>/` and its `.tar.gz`, with its
/// attestation (signed with `sign_key` when given). No host access is granted here: the command line's
/// `telltale verify --allow-host` goes through [`verify_loaded`].
pub fn verify(
    scenario: &Path,
    before: &Path,
    after: &Path,
    req: &RunRequest,
    sign_key: Option<&ed25519_dalek::SigningKey>,
    progress: Arc<dyn Progress>,
) -> Result<VerifyOutcome, Error> {
    let base = Scenario::load(scenario, HostAllow::default())?;
    super::require_host_access(&[before, after], HostAllow::default())?;
    verify_loaded(base, scenario, before, after, req, sign_key, progress)
}

/// [`verify`] of a scenario already loaded from the file `scenario` (which goes into the bundle), so that a
/// caller that needs the scenario first does not load it twice.
pub fn verify_loaded(
    base: Scenario,
    scenario: &Path,
    before: &Path,
    after: &Path,
    req: &RunRequest,
    sign_key: Option<&ed25519_dalek::SigningKey>,
    progress: Arc<dyn Progress>,
) -> Result<VerifyOutcome, Error> {
    if base.claims.is_empty() {
        return Err(Error::Usage(format!(
            "{} has no `claims:`; verify checks a release's claims (add one, see scenarios/README.md)",
            scenario.display()
        )));
    }
    let (s_before, img_before) = release_variant(&base, before)?;
    let (s_after, img_after) = release_variant(&base, after)?;
    crate::runner::check_inputs(&s_before)?;
    crate::runner::check_inputs(&s_after)?;
    let bundle = req.out.join(format!("verify-{}", base.name));
    let _ = std::fs::remove_dir_all(&bundle);
    let plans = vec![
        Planned {
            scenario: s_before,
            dir: bundle.join("before"),
            name: format!("{}@before", base.name),
        },
        Planned {
            scenario: s_after,
            dir: bundle.join("after"),
            name: format!("{}@after", base.name),
        },
    ];
    let req = RunRequest {
        jobs: 2,
        keep: false,
        ..req.clone()
    };
    let mut batch = execute(plans, &req, progress)?;
    let after_run = batch.runs.pop();
    let before_run = batch.runs.pop();
    let (Some(b), Some(a)) = (before_run, after_run) else {
        return Err(Error::Bug(
            "verify planned two runs and did not get both back",
        ));
    };
    let (b, a) = match (b.outcome, a.outcome) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => {
            return Err(Error::Infrastructure(format!(
                "{}: a run could not be carried out: {e}",
                base.name
            )))
        }
    };
    let verdicts = verify_claims(&base, &b.report, &a.report);
    for d in [&b.dir, &a.dir] {
        let _ = std::fs::remove_file(d.join("disk.img"));
    }
    let to = |name: &str| bundle.join(name);
    std::fs::copy(scenario, to("scenario.yaml")).map_err(Error::write(&to("scenario.yaml")))?;
    // Self-contained: the identity file travels with the scenario (an inline identity is in it).
    if let IdentitySpec::File(p) = &base.identity {
        std::fs::copy(p, to(IDENTITY_FILE)).map_err(Error::write(&to(IDENTITY_FILE)))?;
    }
    for d in [&b.dir, &a.dir] {
        let m = d.join("manifest.json");
        without_wall_clock(&m).map_err(Error::write(&m))?;
    }
    let verdicts_json = serde_json::to_string_pretty(&verdicts)
        .map_err(|e| Error::encode("the claims' verdicts", e))?;
    crate::record::write_atomic(&to("verdicts.json"), (verdicts_json + "\n").as_bytes())
        .map_err(Error::write(&to("verdicts.json")))?;
    let manifest = write_manifest(
        &bundle,
        &[("before", &img_before), ("after", &img_after)],
        verdicts.clone(),
        req.command_line.clone(),
    )
    .map_err(Error::write(&to(MANIFEST)))?;
    let manifest_hash =
        crate::record::hash_file(&to(MANIFEST)).map_err(Error::write(&to(MANIFEST)))?;
    let statement = statement(&manifest, &manifest_hash.sha256, &base.name, &b, &a);
    let envelope = Envelope::of_statement(&statement, sign_key);
    crate::record::write_atomic(&to(ATTESTATION), envelope.to_json().as_bytes())
        .map_err(Error::write(&to(ATTESTATION)))?;
    let archive = archive_bundle(&bundle).map_err(Error::write(&bundle))?;
    Ok(VerifyOutcome {
        scenario: base.name,
        verdicts,
        before: b,
        after: a,
        bundle,
        archive,
        signed_by: sign_key.map(|k| crate::attest::key_id(&k.verifying_key())),
    })
}

/// A run's `manifest.json` without its wall-clock duration: the one value of a bundle that is not from
/// the runs themselves, so that the same runs give the same bundle byte for byte.
fn without_wall_clock(path: &Path) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(std::io::Error::other)?;
    if let Some(m) = v.as_object_mut() {
        m.remove("seconds");
    }
    let text = serde_json::to_string_pretty(&v).map_err(std::io::Error::other)? + "\n";
    crate::record::write_atomic(path, text.as_bytes())
}

/// The subject name of a release's image in the statement: `image-before:NAME`.
pub fn image_subject(label: &str, path: &str) -> String {
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string());
    format!("image-{label}:{name}")
}

/// The bundle's in-toto Statement: every file of the bundle, `MANIFEST.json` and both images as
/// subjects; telltale's verify predicate (the verdicts, each run's rules and phases, telltale's version,
/// the command line).
fn statement(
    manifest: &BundleManifest,
    manifest_sha256: &str,
    scenario: &str,
    before: &RunOutcome,
    after: &RunOutcome,
) -> Statement {
    let mut subject: Vec<Subject> = manifest
        .images
        .iter()
        .map(|(label, h)| Subject::sha256(image_subject(label, &h.path), h.sha256.clone()))
        .collect();
    subject.extend(
        manifest
            .files
            .iter()
            .map(|f| Subject::sha256(f.path.clone(), f.sha256.clone())),
    );
    subject.push(Subject::sha256(MANIFEST, manifest_sha256));
    let run = |o: &RunOutcome| {
        serde_json::json!({
            "verdict": o.report.verdict,
            "phases": o.report.phases,
            "rules": o.report.judgement.rules,
        })
    };
    Statement::new(
        subject,
        PREDICATE_TYPE,
        serde_json::json!({
            "telltale_version": manifest.telltale_version,
            "command_line": manifest.command_line,
            "scenario": scenario,
            "claims": manifest.claims,
            "runs": {"before": run(before), "after": run(after)},
        }),
    )
}
