//! The terminal output of `telltale verify-bundle` (the bundle's check, from [`crate::app::bundle`]) and
//! the attestation line of `telltale verify`.

use std::fmt::Write as _;

use crate::app::bundle::{BundleCheck, SignatureStatus};
use crate::app::VerifyOutcome;

/// `telltale verify`: how the bundle's attestation was sealed.
pub fn attestation(outcome: &VerifyOutcome) -> String {
    match &outcome.signed_by {
        Some(k) => format!("  attestation: signed with Ed25519 key {k}\n"),
        None => "  attestation: unsigned (sign with --sign-key, or with cosign: see README, \"For auditors\")\n".into(),
    }
}

/// `telltale verify-bundle`: the verdicts when the bundle holds, otherwise every problem with its file.
pub fn checked(c: &BundleCheck) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}{}: {} files match MANIFEST.json",
        c.bundle.display(),
        c.scenario
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        c.files_checked
    );
    let _ = writeln!(
        out,
        "  signature: {}",
        match &c.signature {
            SignatureStatus::Verified(k) => format!("verified with key {k}"),
            SignatureStatus::NotChecked { signatures: 0 } =>
                "none (the envelope is unsigned)".to_string(),
            SignatureStatus::NotChecked { signatures } =>
                format!("{signatures} signature(s), not checked (give --key PUB)"),
            SignatureStatus::Failed => "DOES NOT VERIFY with the key given".to_string(),
        }
    );
    // Verdicts are shown only for a bundle that holds: re-derived from files that do not match their
    // hashes, a FIXED would be a claim about evidence nobody can vouch for.
    if c.holds() && !c.verdicts.is_empty() {
        let _ = writeln!(out, "  verdicts re-derived from the captures:");
        for v in &c.verdicts {
            let _ = writeln!(
                out,
                "    {:<15} {}  \"{}\"",
                v.verdict.words(),
                v.id,
                v.says
            );
            let _ = writeln!(out, "                    {}", v.reason);
        }
    }
    if c.holds() {
        let _ = writeln!(out, "BUNDLE HOLDS");
    } else {
        let _ = writeln!(out, "BUNDLE DOES NOT HOLD: {} problem(s)", c.problems.len());
        for p in &c.problems {
            let _ = writeln!(out, "  {}: {}", p.file, p.what);
        }
    }
    out
}
