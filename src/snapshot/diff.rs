//! Comparing a new privacy snapshot with the accepted one.
//!
//! Two views of the same comparison:
//!
//! * a line diff of the two bodies, for people: `+`/`-` lines with four lines of context, laid
//!   out like insta's (old and new line numbers, `│`, the sign, the line), no colours;
//! * a structured classification, for the verdict, computed on the parsed snapshots rather than
//!   on text lines (so `upload <16KiB` replacing `upload <1KiB` is recognised as larger). Anything
//!   new is a regression: a destination, a protocol or request, a query parameter name, a DNS
//!   lookup, a canary, a new encoding of a canary, a larger upload bucket, a new reason of unread
//!   traffic (an upload telltale could not read). Things that are gone
//!   (and smaller uploads) are notes; `--strict` callers fail on them too ([`SnapshotDiff::fails`]).
//!
//! Facts are per phase: the same upload moving from `setup` into `consent_declined` is new in
//! `consent_declined`.

use std::fmt::Write as _;

use similar::{Algorithm, ChangeTag, TextDiff};

use super::text::SnapError;
use super::{
    CanaryUse, Channel, ChannelSnapshot, DestinationSnapshot, PhaseSnapshot, PrivacySnapshot,
    UploadBucket,
};

/// Lines of context around each change in the line diff (as insta).
const CONTEXT: usize = 4;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// A destination not contacted in this phase before.
    NewDestination,
    /// A protocol or HTTP request to a known destination.
    NewChannel,
    /// A query parameter name on a known request.
    NewQueryKey,
    /// A DNS name not asked for in this phase before.
    NewLookup,
    /// A canary not sent to this destination in this phase before (or sent over another
    /// request or direction than before).
    NewCanary,
    /// A canary sent to this destination before, now also in another encoding.
    NewEncoding,
    /// A larger upload bucket.
    LargerUpload,
    /// A destination no longer contacted in this phase.
    GoneDestination,
    /// A protocol or request no longer used.
    GoneChannel,
    /// A query parameter name no longer sent.
    GoneQueryKey,
    /// A DNS name no longer asked for.
    GoneLookup,
    /// A canary (in an encoding) no longer found.
    GoneCanary,
    /// A smaller upload bucket.
    SmallerUpload,
    /// Something the device sent to this destination could not be read, for a reason not seen before
    /// (a release that starts hiding an upload inside TLS or an encrypted body).
    NewUnread,
    /// A reason of unread traffic no longer seen.
    GoneUnread,
}

impl ChangeKind {
    /// Whether this change makes the comparison fail: everything new is a regression.
    pub fn is_regression(self) -> bool {
        matches!(
            self,
            ChangeKind::NewDestination
                | ChangeKind::NewChannel
                | ChangeKind::NewQueryKey
                | ChangeKind::NewLookup
                | ChangeKind::NewCanary
                | ChangeKind::NewEncoding
                | ChangeKind::LargerUpload
                | ChangeKind::NewUnread
        )
    }
}

/// One classified change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What kind.
    pub kind: ChangeKind,
    /// The phase it concerns.
    pub phase: String,
    /// The destination it concerns (none for DNS lookups).
    pub destination: Option<String>,
    /// One line for people, without the phase (e.g. `new destination x.example (upload <1KiB)`).
    pub text: String,
}

/// Kind of a line of the line diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTag {
    /// In both.
    Context,
    /// Only in the new snapshot.
    Added,
    /// Only in the accepted snapshot.
    Removed,
}

/// One line of the line diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    /// Added, removed or context.
    pub tag: LineTag,
    /// 1-based line number in the accepted body.
    pub old_line: Option<usize>,
    /// 1-based line number in the new body.
    pub new_line: Option<usize>,
    /// The line, without its newline.
    pub text: String,
}

/// The comparison of a new snapshot with the accepted one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotDiff {
    /// Classified changes, new things first in the new snapshot's order, then gone things.
    pub changes: Vec<Change>,
    /// Lines only in the new body.
    pub added: Vec<String>,
    /// Lines only in the accepted body.
    pub removed: Vec<String>,
    /// The line diff: groups of lines around changes.
    pub hunks: Vec<Vec<DiffLine>>,
}

impl SnapshotDiff {
    /// Something new appeared: the check fails.
    pub fn is_regression(&self) -> bool {
        self.changes.iter().any(|c| c.kind.is_regression())
    }

    /// Something is gone (or smaller): a note, a failure only with `--strict`.
    pub fn has_removals(&self) -> bool {
        self.changes.iter().any(|c| !c.kind.is_regression())
    }

    /// No privacy fact changed (the text may still differ, e.g. in comments or order).
    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether the check fails: on a regression, and with `strict` also on removals.
    pub fn fails(&self, strict: bool) -> bool {
        self.is_regression() || (strict && self.has_removals())
    }

    /// The regressions.
    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.kind.is_regression())
    }

    /// The removals.
    pub fn removals(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| !c.kind.is_regression())
    }

    /// The line diff and the classification, as text for a terminal or a CI log.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.hunks.is_empty() && self.changes.is_empty() {
            out.push_str("privacy snapshot unchanged\n");
            return out;
        }
        if !self.hunks.is_empty() {
            out.push_str("-accepted snapshot\n+new snapshot\n");
            let _ = writeln!(out, "────────────┬{}", "─".repeat(40));
            for (i, hunk) in self.hunks.iter().enumerate() {
                if i > 0 {
                    let _ = writeln!(out, "┈┈┈┈┈┈┈┈┈┈┈┈┼{}", "┈".repeat(40));
                }
                for l in hunk {
                    let num = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
                    let sign = match l.tag {
                        LineTag::Context => ' ',
                        LineTag::Added => '+',
                        LineTag::Removed => '-',
                    };
                    let _ = writeln!(
                        out,
                        "{:>5} {:>5} │{}{}",
                        num(l.old_line),
                        num(l.new_line),
                        sign,
                        l.text
                    );
                }
            }
            let _ = writeln!(out, "────────────┴{}", "─".repeat(40));
        }
        let new: Vec<&Change> = self.regressions().collect();
        let gone: Vec<&Change> = self.removals().collect();
        if !new.is_empty() {
            let _ = writeln!(
                out,
                "REGRESSION: {} new privacy fact{}",
                new.len(),
                if new.len() == 1 { "" } else { "s" }
            );
            for c in &new {
                let _ = writeln!(out, "  + {}: {}", c.phase, c.text);
            }
        }
        if !gone.is_empty() {
            let _ = writeln!(
                out,
                "note: {} privacy fact{} gone or smaller{}",
                gone.len(),
                if gone.len() == 1 { "" } else { "s" },
                if new.is_empty() {
                    " (passes; fails with --strict)"
                } else {
                    ""
                }
            );
            for c in &gone {
                let _ = writeln!(out, "  - {}: {}", c.phase, c.text);
            }
        }
        if new.is_empty() && gone.is_empty() {
            out.push_str("no privacy fact changed (only the text differs)\n");
        }
        out
    }
}

/// Compares the body of the accepted `.snap` file with a new snapshot.
pub fn compare(accepted_body: &str, new: &PrivacySnapshot) -> Result<SnapshotDiff, SnapError> {
    let accepted = PrivacySnapshot::parse_body(accepted_body)?;
    Ok(build(
        accepted_body,
        &new.render_body(),
        classify(&accepted, new),
    ))
}

/// Compares two bodies.
pub fn compare_bodies(accepted_body: &str, new_body: &str) -> Result<SnapshotDiff, SnapError> {
    let accepted = PrivacySnapshot::parse_body(accepted_body)?;
    let new = PrivacySnapshot::parse_body(new_body)?;
    Ok(build(accepted_body, new_body, classify(&accepted, &new)))
}

/// Compares two snapshots.
pub fn compare_snapshots(accepted: &PrivacySnapshot, new: &PrivacySnapshot) -> SnapshotDiff {
    build(
        &accepted.render_body(),
        &new.render_body(),
        classify(accepted, new),
    )
}

fn build(old: &str, new: &str, changes: Vec<Change>) -> SnapshotDiff {
    let old = format!("{}\n", old.trim_end());
    let new = format!("{}\n", new.trim_end());
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .diff_lines(old.as_str(), new.as_str());
    let mut out = SnapshotDiff {
        changes,
        ..SnapshotDiff::default()
    };
    for group in diff.grouped_ops(CONTEXT) {
        let mut hunk = Vec::new();
        for op in &group {
            for ch in diff.iter_changes(op) {
                let text = ch.value().trim_end_matches(['\n', '\r']).to_string();
                let tag = match ch.tag() {
                    ChangeTag::Equal => LineTag::Context,
                    ChangeTag::Insert => {
                        out.added.push(text.clone());
                        LineTag::Added
                    }
                    ChangeTag::Delete => {
                        out.removed.push(text.clone());
                        LineTag::Removed
                    }
                };
                hunk.push(DiffLine {
                    tag,
                    old_line: ch.old_index().map(|i| i.saturating_add(1)),
                    new_line: ch.new_index().map(|i| i.saturating_add(1)),
                    text,
                });
            }
        }
        if hunk.iter().any(|l| l.tag != LineTag::Context) {
            out.hunks.push(hunk);
        }
    }
    out
}

/// The structured comparison.
fn classify(accepted: &PrivacySnapshot, new: &PrivacySnapshot) -> Vec<Change> {
    let empty = PhaseSnapshot::default();
    let mut out = Vec::new();
    for np in &new.phases {
        let ap = accepted.phase(&np.name).unwrap_or(&empty);
        phase_changes(ap, np, &np.name, &mut out);
    }
    for ap in &accepted.phases {
        if new.phase(&ap.name).is_none() {
            phase_changes(ap, &empty, &ap.name, &mut out);
        }
    }
    // New things first, each group in the order found.
    let (mut regressions, removals): (Vec<Change>, Vec<Change>) =
        out.into_iter().partition(|c| c.kind.is_regression());
    regressions.extend(removals);
    regressions
}

fn phase_changes(ap: &PhaseSnapshot, np: &PhaseSnapshot, phase: &str, out: &mut Vec<Change>) {
    let mut push = |kind: ChangeKind, destination: Option<&str>, text: String| {
        out.push(Change {
            kind,
            phase: phase.to_string(),
            destination: destination.map(str::to_string),
            text,
        })
    };
    for l in np.lookups.difference(&ap.lookups) {
        push(ChangeKind::NewLookup, None, format!("new DNS lookup {l}"));
    }
    for (name, nd) in &np.destinations {
        let Some(ad) = ap.destinations.get(name) else {
            let upload = nd
                .upload
                .map(|u| format!(" (upload {u})"))
                .unwrap_or_default();
            push(
                ChangeKind::NewDestination,
                Some(name),
                format!("new destination {name}{upload}"),
            );
            for r in &nd.unread {
                push(
                    ChangeKind::NewUnread,
                    Some(name),
                    format!("unread traffic to {name} ({r})"),
                );
            }
            let none = DestinationSnapshot::default();
            for (ch, nc) in &nd.channels {
                for c in &nc.canaries {
                    let (kind, text) = canary_change(&none, name, ch, c);
                    push(kind, Some(name), text);
                }
            }
            continue;
        };
        let (a, n) = (bucket(ad.upload), bucket(nd.upload));
        if n > a {
            push(
                ChangeKind::LargerUpload,
                Some(name),
                format!("larger upload to {name}: {a} → {n}"),
            );
        } else if n < a {
            push(
                ChangeKind::SmallerUpload,
                Some(name),
                format!("smaller upload to {name}: {a} → {n}"),
            );
        }
        for r in nd.unread.difference(&ad.unread) {
            push(
                ChangeKind::NewUnread,
                Some(name),
                format!("unread traffic to {name} ({r})"),
            );
        }
        for r in ad.unread.difference(&nd.unread) {
            push(
                ChangeKind::GoneUnread,
                Some(name),
                format!("no more unread traffic to {name} ({r})"),
            );
        }
        let none = ChannelSnapshot::default();
        for (ch, nc) in &nd.channels {
            let ac = match ad.channels.get(ch) {
                Some(ac) => ac,
                None => {
                    push(
                        ChangeKind::NewChannel,
                        Some(name),
                        format!("new {ch} to {name}"),
                    );
                    &none
                }
            };
            if ad.channels.contains_key(ch) {
                for k in nc.query_keys.difference(&ac.query_keys) {
                    push(
                        ChangeKind::NewQueryKey,
                        Some(name),
                        format!("new query parameter {k} in {ch} to {name}"),
                    );
                }
            }
            for c in nc.canaries.difference(&ac.canaries) {
                let (kind, text) = canary_change(ad, name, ch, c);
                push(kind, Some(name), text);
            }
        }
        for (ch, ac) in &ad.channels {
            let Some(nc) = nd.channels.get(ch) else {
                push(
                    ChangeKind::GoneChannel,
                    Some(name),
                    format!("{ch} to {name} no longer used"),
                );
                continue;
            };
            for k in ac.query_keys.difference(&nc.query_keys) {
                push(
                    ChangeKind::GoneQueryKey,
                    Some(name),
                    format!("query parameter {k} no longer in {ch} to {name}"),
                );
            }
            for c in ac.canaries.difference(&nc.canaries) {
                push(
                    ChangeKind::GoneCanary,
                    Some(name),
                    format!("{c} no longer found in {ch} to {name}"),
                );
            }
        }
    }
    for l in ap.lookups.difference(&np.lookups) {
        push(ChangeKind::GoneLookup, None, format!("DNS lookup {l} gone"));
    }
    for name in ap.destinations.keys() {
        if !np.destinations.contains_key(name) {
            push(
                ChangeKind::GoneDestination,
                Some(name),
                format!("destination {name} no longer contacted"),
            );
        }
    }
}

/// No connection started in the phase counts as nothing uploaded.
fn bucket(u: Option<UploadBucket>) -> UploadBucket {
    u.unwrap_or(UploadBucket::Zero)
}

/// A canary use absent from the accepted destination `ad`: a new canary there, or a known canary
/// in a new encoding.
fn canary_change(
    ad: &DestinationSnapshot,
    dest: &str,
    ch: &Channel,
    c: &CanaryUse,
) -> (ChangeKind, String) {
    let uses = || ad.channels.values().flat_map(|x| x.canaries.iter());
    let verb = if c.received {
        "received from"
    } else {
        "sent to"
    };
    let known_name = uses().any(|u| u.canary == c.canary);
    let known_encoding = uses().any(|u| u.canary == c.canary && u.encoding == c.encoding);
    if known_name && !known_encoding {
        (
            ChangeKind::NewEncoding,
            format!(
                "{} {verb} {dest} in a new encoding {} ({ch})",
                c.canary, c.encoding
            ),
        )
    } else {
        (
            ChangeKind::NewCanary,
            format!("{} {verb} {dest} as {} ({ch})", c.canary, c.encoding),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::{v1_like, v2_fix_like};

    fn parse(body: &str) -> PrivacySnapshot {
        PrivacySnapshot::parse_body(body).unwrap()
    }

    const BASE: &str = "\
phase boot

phase consent_declined
  lookup sync.example
  to sync.example  upload <1KiB
    http POST /v2/sync?did
      contacts[0]  sha1>hex
      imei  base64
";

    fn kinds(d: &SnapshotDiff) -> Vec<ChangeKind> {
        d.changes.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn identical_snapshots_are_unchanged() {
        let d = compare(BASE, &parse(BASE)).unwrap();
        assert!(d.is_unchanged());
        assert!(!d.is_regression() && !d.has_removals() && !d.fails(true));
        assert!(d.hunks.is_empty() && d.added.is_empty() && d.removed.is_empty());
        assert_eq!(d.render(), "privacy snapshot unchanged\n");
    }

    #[test]
    fn new_destination_is_a_regression_with_its_canaries() {
        let new = BASE.replace(
            "  to sync.example",
            "  to track.example  upload 0\n    tls\n      email  raw\n  to sync.example",
        );
        let d = compare(BASE, &parse(&new)).unwrap();
        assert_eq!(
            kinds(&d),
            vec![ChangeKind::NewDestination, ChangeKind::NewCanary]
        );
        assert!(d.is_regression());
        assert!(!d.has_removals());
        assert_eq!(d.changes[0].destination.as_deref(), Some("track.example"));
        assert_eq!(
            d.changes[0].text,
            "new destination track.example (upload 0)"
        );
        assert_eq!(
            d.changes[1].text,
            "email sent to track.example as raw (tls)"
        );
        assert_eq!(
            d.added,
            vec![
                "  to track.example  upload 0",
                "    tls",
                "      email  raw"
            ]
        );
        assert!(d.removed.is_empty());
    }

    #[test]
    fn new_canary_is_a_regression() {
        let new = BASE.replace(
            "      imei  base64\n",
            "      imei  base64\n      phone  raw\n",
        );
        let d = compare(BASE, &parse(&new)).unwrap();
        assert_eq!(kinds(&d), vec![ChangeKind::NewCanary]);
        assert!(d.is_regression());
        assert_eq!(
            d.changes[0].text,
            "phone sent to sync.example as raw (http POST /v2/sync)"
        );
    }

    #[test]
    fn new_encoding_of_a_known_canary_is_a_regression() {
        let new = BASE.replace(
            "      imei  base64\n",
            "      imei  base64\n      imei  raw\n",
        );
        let d = compare(BASE, &parse(&new)).unwrap();
        assert_eq!(kinds(&d), vec![ChangeKind::NewEncoding]);
        assert!(d.is_regression());
        // Replacing the encoding: new encoding (regression) plus the old one gone (note).
        let new = BASE.replace("      imei  base64\n", "      imei  gzip>base64\n");
        let d = compare(BASE, &parse(&new)).unwrap();
        assert_eq!(
            kinds(&d),
            vec![ChangeKind::NewEncoding, ChangeKind::GoneCanary]
        );
        assert!(d.is_regression() && d.has_removals());
    }

    #[test]
    fn bigger_bucket_is_a_regression_smaller_a_note() {
        let bigger = BASE.replace("upload <1KiB", "upload <16KiB");
        let d = compare(BASE, &parse(&bigger)).unwrap();
        assert_eq!(kinds(&d), vec![ChangeKind::LargerUpload]);
        assert!(d.is_regression());
        assert_eq!(
            d.changes[0].text,
            "larger upload to sync.example: <1KiB → <16KiB"
        );
        // The same lines the other way round: smaller.
        let d = compare(&bigger, &parse(BASE)).unwrap();
        assert_eq!(kinds(&d), vec![ChangeKind::SmallerUpload]);
        assert!(!d.is_regression() && d.has_removals());
        // Lexically `<256KiB` < `<4MiB` < `>=4MiB`, but it is the order of sizes that counts.
        let a = BASE.replace("upload <1KiB", "upload >=4MiB");
        let b = BASE.replace("upload <1KiB", "upload <256KiB");
        assert!(!compare(&a, &parse(&b)).unwrap().is_regression());
        assert!(compare(&b, &parse(&a)).unwrap().is_regression());
    }

    #[test]
    fn removals_are_notes_that_fail_only_when_strict() {
        let new = "phase boot\n\nphase consent_declined\n  to sync.example  upload <1KiB\n    http POST /v2/sync\n      imei  base64\n";
        let d = compare(BASE, &parse(new)).unwrap();
        assert_eq!(
            kinds(&d),
            vec![
                ChangeKind::GoneQueryKey,
                ChangeKind::GoneCanary,
                ChangeKind::GoneLookup
            ]
        );
        assert!(!d.is_regression());
        assert!(d.has_removals());
        assert!(!d.fails(false));
        assert!(d.fails(true));
        let text = d.render();
        assert!(
            text.contains("note: 3 privacy facts gone or smaller (passes; fails with --strict)")
        );
        assert!(text.contains("  - consent_declined: contacts[0] (sha1>hex) no longer found in http POST /v2/sync to sync.example"));
        assert!(!text.contains("REGRESSION"));
    }

    #[test]
    fn new_request_query_key_and_lookup_are_regressions() {
        let new = BASE
            .replace("http POST /v2/sync?did", "http POST /v2/sync?did&loc")
            .replace(
                "  lookup sync.example\n",
                "  lookup sync.example\n  lookup t.example\n",
            )
            .replace(
                "  to sync.example  upload <1KiB\n",
                "  to sync.example  upload <1KiB\n    http GET /v2/ping\n",
            );
        let d = compare(BASE, &parse(&new)).unwrap();
        assert_eq!(
            kinds(&d),
            vec![
                ChangeKind::NewLookup,
                ChangeKind::NewChannel,
                ChangeKind::NewQueryKey
            ]
        );
    }

    #[test]
    fn a_fact_moving_to_another_phase_is_new_there() {
        let accepted =
            "phase setup\n  to a.example  upload <1KiB\n    tls\n\nphase consent_declined\n";
        let new = "phase setup\n\nphase consent_declined\n  to a.example  upload <1KiB\n    tls\n";
        let d = compare(accepted, &parse(new)).unwrap();
        assert_eq!(
            kinds(&d),
            vec![ChangeKind::NewDestination, ChangeKind::GoneDestination]
        );
        assert_eq!(d.changes[0].phase, "consent_declined");
        assert_eq!(d.changes[1].phase, "setup");
        // A phase missing from the new snapshot: its facts are gone.
        let d = compare(accepted, &parse("phase consent_declined\n")).unwrap();
        assert_eq!(kinds(&d), vec![ChangeKind::GoneDestination]);
    }

    #[test]
    fn line_diff_has_context_and_line_numbers_like_insta() {
        let new = BASE.replace("upload <1KiB", "upload <16KiB");
        let d = compare(BASE, &parse(&new)).unwrap();
        assert_eq!(d.removed, vec!["  to sync.example  upload <1KiB"]);
        assert_eq!(d.added, vec!["  to sync.example  upload <16KiB"]);
        assert_eq!(d.hunks.len(), 1);
        let text = d.render();
        assert!(
            text.contains("    5       │-  to sync.example  upload <1KiB\n"),
            "{text}"
        );
        assert!(
            text.contains("          5 │+  to sync.example  upload <16KiB\n"),
            "{text}"
        );
        assert!(
            text.contains("    4     4 │   lookup sync.example\n"),
            "{text}"
        );
        assert!(text.contains("REGRESSION: 1 new privacy fact\n"), "{text}");
    }

    #[test]
    fn release_v1_to_v2_fix_is_a_regression_and_the_reverse_too() {
        let v1 = PrivacySnapshot::from_run(&v1_like(7, 0));
        let v2 = PrivacySnapshot::from_run(&v2_fix_like(6, 3));
        let d = compare_snapshots(&v1, &v2);
        assert!(d.is_regression());
        assert!(d.has_removals());
        let new: Vec<ChangeKind> = d.regressions().map(|c| c.kind).collect();
        assert_eq!(
            new[..2],
            [ChangeKind::NewLookup, ChangeKind::NewDestination]
        );
        assert_eq!(
            new.iter().filter(|k| **k == ChangeKind::NewCanary).count(),
            4
        );
        // v2-fix → v1 brings raw contacts back: new again.
        assert!(compare_snapshots(&v2, &v1).is_regression());
    }

    #[test]
    fn compare_bodies_rejects_bad_bodies() {
        assert!(compare_bodies("phase a\n bad\n", BASE).is_err());
        assert!(compare_bodies(BASE, "  to x\n").is_err());
        assert!(compare("nonsense\n", &parse(BASE)).is_err());
        assert!(compare_bodies(BASE, BASE).unwrap().is_unchanged());
    }

    #[test]
    fn text_only_differences_change_no_fact() {
        let edited = format!("# reviewed\n{BASE}");
        let d = compare(&edited, &parse(BASE)).unwrap();
        assert!(d.is_unchanged());
        assert_eq!(d.removed, vec!["# reviewed"]);
        assert!(d
            .render()
            .ends_with("no privacy fact changed (only the text differs)\n"));
    }
}
