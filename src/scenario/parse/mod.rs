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

    let target = cx.target(
        cx.req(
            &top,
            "target",
            "a `target:` mapping with `kind: qemu`, `kernel:` …",
        )?,
        top.key_pos("target").unwrap_or(root.pos),
    )?;
    let id_node = cx.req(
        &top,
        "identity",
        "an `identity:` (a file path, or `seed:` / `values:`)",
    )?;
    let id_pos = id_node.pos;
    let (identity, inline) = cx.identity(id_node, top.key_pos("identity").unwrap_or(root.pos))?;
    let network = match top.get("network") {
        Some(n) => cx.network(n, top.key_pos("network").unwrap_or(root.pos))?,
        None => NetworkSpec::default(),
    };
    let steps = match (&target, top.get("steps")) {
        (Target::Capture(_), None) => Vec::new(),
        (Target::Capture(_), Some(n)) => cx.capture_steps(n)?,
        _ => {
            let steps_node = cx.req(&top, "steps", "a `steps:` list, e.g. `- idle: 30s`")?;
            cx.steps(steps_node)?
        }
    };
    let policy = match top.get("policy") {
        Some(n) => cx.policy(n, top.key_pos("policy").unwrap_or(root.pos))?,
        None => Policy::default(),
    };
    let claims = match top.get("claims") {
        Some(n) => cx.claims(n)?,
        None => Vec::new(),
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
