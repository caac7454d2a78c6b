//! Conversion of the positioned YAML tree ([`crate::yaml`]) into the typed [`Scenario`], with
//! every check that needs no file access. The first problem found is returned; structure is
//! checked section by section (target, identity, network, steps, policy, claims), names last.
//!
//! This file owns the conversion context ([`Cx`]) and the top level of the file; each section
//! has its own file, and [`read`] and [`refs`] hold the node readers the sections share.

mod claims;
mod identity;
mod network;
mod policy;
mod read;
mod refs;
mod steps;
mod target;
#[cfg(test)]
mod tests;

use std::path::Path;

use super::error::{ScenarioError, ScenarioErrorKind as K};
use super::*;
use crate::yaml::{self, FileKind, NodeKind, Pos, TreeErrorKind};

type R<T> = Result<T, ScenarioError>;

const TOP_KEYS: [&str; 8] = [
    "name", "release", "target", "identity", "network", "steps", "policy", "claims",
];
const TOP_WHAT: &str = "the scenario";

/// The conversion of one scenario: its source, and what later checks need from earlier sections.
struct Cx<'a> {
    text: &'a str,
    source: &'a str,
    base_dir: &'a Path,
    files: Vec<FileRef>,
    refs: Vec<NameRef>,
    /// Phases declared so far, with the step index that declared them.
    phases: Vec<(String, usize)>,
    /// Every `phase:` of the steps (pre-scanned), to tell "declared later" from "never".
    all_phases: Vec<String>,
    /// Phases a capture target declares (known everywhere).
    target_phases: Vec<String>,
    /// `plant` may use relative paths (a `netns` target: under its working directory).
    relative_plant: bool,
    /// The target is a device controlled over adb (`install` steps apply).
    adb_target: bool,
    /// What the scenario would do on or read from the host (see [`HostAccess`]).
    host: Vec<HostAccess>,
}

pub(super) fn scenario(text: &str, source: &str, base_dir: &Path) -> R<Scenario> {
    let mut cx = Cx {
        text,
        source,
        base_dir,
        files: Vec::new(),
        refs: Vec::new(),
        phases: Vec::new(),
        all_phases: Vec::new(),
        target_phases: Vec::new(),
        relative_plant: false,
        adb_target: false,
        host: Vec::new(),
    };
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(ScenarioError::whole(
            K::Syntax,
            source,
            "scenario too large",
            format!(
                "the scenario is {} bytes; scenarios are at most {MAX_SCENARIO_BYTES} bytes",
                text.len()
            ),
        ));
    }
    let root = match yaml::parse(text, FileKind::Scenario) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(ScenarioError::whole(
                K::MissingKey,
                source,
                "empty scenario",
                "the scenario is empty; it needs at least `target`, `identity` and `steps`"
                    .to_string(),
            ))
        }
        Err(e) if matches!(e.kind, TreeErrorKind::Duplicate { .. }) => {
            return Err(cx.err(K::Duplicate, e.pos, "duplicate key", e.message));
        }
        Err(e) => return Err(cx.err(K::Syntax, e.pos, "invalid YAML in scenario", e.message)),
    };
    if !matches!(root.kind, NodeKind::Map(_)) {
        return Err(cx.err(
            K::WrongType,
            root.pos,
            "scenario is not a mapping",
            "the top level must be a mapping with `target:`, `identity:`, `steps:` …".to_string(),
        ));
    }
    let top = cx.fields(&root, root.pos, TOP_WHAT, &TOP_KEYS)?;

    let name = match top.get("name") {
        Some(n) => cx.label(n, "name")?,
        None => {
            let stem = Path::new(source)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            plain_name(&stem)
        }
    };
    let release = top
        .get("release")
        .map(|n| cx.label(n, "release"))
        .transpose()?;

    // Each section is read even when an earlier one is wrong, so that one `validate` shows every problem
    // (the steps only with a valid target: what a step may do depends on it).
    let mut errors = Vec::new();
    let target = keep_err(
        &mut errors,
        cx.req(
            &top,
            "target",
            "a `target:` mapping with `kind: qemu`, `kernel:` …",
        )
        .and_then(|n| cx.target(n, top.key_pos("target").unwrap_or(root.pos))),
    );
    let id = cx
        .req(
            &top,
            "identity",
            "an `identity:` (a file path, or `seed:` / `values:`)",
        )
        .map(|n| (n.pos, n))
        .and_then(|(pos, n)| {
            cx.identity(n, top.key_pos("identity").unwrap_or(root.pos))
                .map(|r| (pos, r))
        });
    let id = keep_err(&mut errors, id);
    let network = match top.get("network") {
        Some(n) => keep_err(
            &mut errors,
            cx.network(n, top.key_pos("network").unwrap_or(root.pos)),
        ),
        None => Some(NetworkSpec::default()),
    };
    // With a wrong target, its kind still says which steps apply; what a step may do that depends on the
    // rest of the target (relative plant paths, adb installs) is allowed, so as to report no false error.
    let capture = match &target {
        Some(t) => matches!(t, Target::Capture(_)),
        None => {
            cx.relative_plant = true;
            cx.adb_target = true;
            top.get("target").and_then(|t| match &t.kind {
                NodeKind::Map(m) => m
                    .iter()
                    .find(|(k, _)| k.scalar() == Some("kind"))
                    .and_then(|(_, v)| v.scalar()),
                _ => None,
            }) == Some("capture")
        }
    };
    let steps = match (capture, top.get("steps")) {
        (true, None) => Some(Vec::new()),
        (true, Some(n)) => keep_err(&mut errors, cx.capture_steps(n)),
        _ => {
            let r = cx
                .req(&top, "steps", "a `steps:` list, e.g. `- idle: 30s`")
                .and_then(|n| cx.steps(n));
            keep_err(&mut errors, r)
        }
    };
    // A capture target declares its phases itself: when it is wrong, the phases the policy and claims name
    // cannot be checked, so they are left until the target is fixed.
    let judged = !(capture && target.is_none());
    if steps.is_none() {
        // Phases of steps that could not be read are still declared for the policy and claims.
        for p in std::mem::take(&mut cx.all_phases) {
            if !cx.phases.iter().any(|(q, _)| *q == p) {
                cx.phases.push((p.clone(), 0));
            }
            cx.all_phases.push(p);
        }
    }
    let policy = match top.get("policy") {
        Some(_) if !judged => None,
        Some(n) => keep_err(
            &mut errors,
            cx.policy(n, top.key_pos("policy").unwrap_or(root.pos)),
        ),
        None => Some(Policy::default()),
    };
    let claims = match top.get("claims") {
        Some(_) if !judged => None,
        Some(n) => keep_err(&mut errors, cx.claims(n)),
        None => Some(Vec::new()),
    };
    let (
        Some(target),
        Some((id_pos, (identity, inline))),
        Some(network),
        Some(steps),
        Some(policy),
        Some(claims),
    ) = (target, id, network, steps, policy, claims)
    else {
        return Err(ScenarioError::combine(errors).unwrap_or_else(|| {
            cx.err(
                K::Syntax,
                root.pos,
                "invalid scenario",
                "the scenario could not be read".to_string(),
            )
        }));
    };
    let canaries = match inline {
        Some(parts) => Some(cx.build_identity(parts)?),
        None => None,
    };

    let mut s = Scenario {
        name,
        release,
        source_name: source.to_string(),
        base_dir: base_dir.to_path_buf(),
        target,
        identity,
        network,
        steps,
        policy,
        claims,
        canaries,
        src: Source {
            text: text.to_string(),
            identity_pos: id_pos,
            files: cx.files,
            refs: cx.refs,
            host: cx.host,
        },
    };
    s.check_names()?;
    s.fill_target_templates()?;
    Ok(s)
}

/// `Some(value)`, or `None` with the error kept for the report of every problem in the file.
fn keep_err<T>(errors: &mut Vec<ScenarioError>, r: R<T>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

impl Cx<'_> {
    /// Note a place where the scenario reaches the host (checked against `--allow-host` later).
    fn host_access(&mut self, kind: HostAccessKind, pos: Pos, what: String) {
        self.host.push(HostAccess {
            kind,
            line: pos.line,
            column: pos.col,
            what,
        });
    }

    fn err(&self, kind: K, pos: Pos, title: &'static str, message: String) -> ScenarioError {
        ScenarioError::at(
            kind,
            self.source,
            self.text,
            pos.line,
            pos.col,
            title,
            message,
        )
    }
}

/// Does `p` leave the folder it is relative to (absolute, or climbing above it with `..`)?
pub(super) fn escapes(p: &Path) -> bool {
    use std::path::Component;
    let mut depth: isize = 0;
    for c in p.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => return true,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
        }
    }
    false
}
