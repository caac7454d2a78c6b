//! The `steps:` section: each step's one kind and its modifiers (`name`, `timeout`,
//! `expect_exit`, `expect_output`), phase declarations in order, and the restricted steps of a
//! capture target.

use super::read::Fields;
use super::{Cx, R};
use crate::diag::{hint, list};
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::*;
use crate::yaml::{Node, NodeKind, Pos};

const STEP_MODIFIERS: [&str; 4] = ["name", "timeout", "expect_exit", "expect_output"];
const PLANT_KEYS: [&str; 2] = ["path", "content"];
const REBOOT_KEYS: [&str; 1] = ["wait_for"];
const UPLOAD_CHECK_KEYS: [&str; 3] = ["canaries", "phase", "destinations"];

impl Cx<'_> {
    /// A capture target runs nothing: only `expect_no_upload` steps apply.
    pub(super) fn capture_steps(&mut self, n: &Node) -> R<Vec<Step>> {
        let items = self.seq(n, "steps")?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let step = self.step(item, i)?;
            if !matches!(step.kind, StepKind::ExpectNoUpload(_)) {
                return Err(self.err(
                    K::InvalidValue,
                    item.pos,
                    "step on a capture",
                    format!("a `capture` target runs nothing, so `{}` cannot apply; only `expect_no_upload` steps can (phases come from the target's `phases:`)", step.kind.keyword()),
                ));
            }
            out.push(step);
        }
        Ok(out)
    }

    pub(super) fn steps(&mut self, n: &Node) -> R<Vec<Step>> {
        let items = self.seq(n, "steps")?;
        if items.is_empty() {
            return Err(self.err(
                K::MissingKey,
                n.pos,
                "no steps",
                "`steps` is empty; a scenario needs at least one step, e.g. `- idle: 30s`"
                    .to_string(),
            ));
        }
        for item in items {
            if let NodeKind::Map(m) = &item.kind {
                for (k, v) in m {
                    if let (Some("phase"), Some(p)) = (k.scalar(), v.scalar()) {
                        self.all_phases.push(p.to_string());
                    }
                }
            }
        }
        // Every step is read, so that one `validate` shows every wrong step.
        let mut out = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match self.step(item, i) {
                Ok(s) => out.push(s),
                Err(e) => errors.push(e),
            }
        }
        match ScenarioError::combine(errors) {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// A `host:` step's command: `"shell line"` or `[program, arg, …]`.
    fn host_step(&self, n: &Node) -> R<HostCommand> {
        match &n.kind {
            NodeKind::Seq(items) => {
                if items.is_empty() {
                    return Err(self.err(
                        K::InvalidValue,
                        n.pos,
                        "empty value",
                        "`host` needs a command: `[program, arg, …]`".to_string(),
                    ));
                }
                Ok(HostCommand::Argv(
                    items
                        .iter()
                        .map(|i| self.string(i, "host"))
                        .collect::<R<_>>()?,
                ))
            }
            _ => Ok(HostCommand::Shell(self.nonempty(n, "host")?)),
        }
    }

    fn step(&mut self, n: &Node, index: usize) -> R<Step> {
        let entries = match &n.kind {
            NodeKind::Map(m) => m,
            _ => {
                let msg = match n.scalar() {
                    Some(s) if StepKind::NAMES.contains(&s) => {
                        format!("a step is a mapping: write `- {s}: …` (e.g. `- reboot: {{}}`)")
                    }
                    _ => format!(
                        "a step is a mapping with one kind key, e.g. `- idle: 30s`, not {}",
                        n.describe()
                    ),
                };
                return Err(self.err(K::WrongType, n.pos, "expected a step", msg));
            }
        };
        // Which keys are kinds?
        let mut kinds: Vec<(&str, Pos, &Node)> = Vec::new();
        let mut unknown: Option<(&str, Pos)> = None;
        for (k, v) in entries {
            let key = k.scalar().unwrap_or("");
            if StepKind::NAMES.contains(&key) {
                kinds.push((key, k.pos, v));
            } else if !STEP_MODIFIERS.contains(&key) && unknown.is_none() {
                unknown = Some((key, k.pos));
            }
        }
        if let Some((key, pos)) = unknown {
            if kinds.is_empty() {
                return Err(self.err(
                    K::UnknownStepKind,
                    pos,
                    "unknown step kind",
                    format!("`{key}` is not a step kind{}", hint(key, &StepKind::NAMES)),
                ));
            }
            let allowed: Vec<&str> = StepKind::NAMES
                .iter()
                .chain(STEP_MODIFIERS.iter())
                .copied()
                .collect();
            let h = match crate::diag::did_you_mean(key, allowed.iter().copied()) {
                Some(c) => format!("; did you mean `{c}`?"),
                None => format!(
                    "; a step has one kind key and may have {}",
                    list(&STEP_MODIFIERS)
                ),
            };
            return Err(self.err(
                K::UnknownKey,
                pos,
                "unknown key",
                format!("a step has no key `{key}`{h}"),
            ));
        }
        let (kind_key, kind_val) = match kinds.as_slice() {
            [(k, _, v)] => (*k, *v),
            [] => {
                return Err(self.err(
                    K::StepKindCount,
                    n.pos,
                    "step without a kind",
                    format!("this step does nothing; give it one of {}", list(&StepKind::NAMES)),
                ))
            }
            [(a, apos, _), (b, bpos, _), ..] => {
                return Err(self.err(
                    K::StepKindCount,
                    *bpos,
                    "step with two kinds",
                    format!(
                        "a step does one thing, but this one has `{a}` (line {}) and `{b}`; split it into two steps",
                        apos.line
                    ),
                ))
            }
        };
        let f = Fields {
            entries,
            at: n.pos,
            what: "a step",
        };
        for m in ["expect_exit", "expect_output"] {
            if kind_key != "shell" {
                if let Some(p) = f.key_pos(m) {
                    return Err(self.err(
                        K::UnknownKey,
                        p,
                        "key does not apply",
                        format!("`{m}` applies to `shell` steps only, not to `{kind_key}`"),
                    ));
                }
            }
        }
        if matches!(kind_key, "phase" | "idle") {
            if let Some(p) = f.key_pos("timeout") {
                return Err(self.err(
                    K::UnknownKey,
                    p,
                    "key does not apply",
                    format!("`timeout` does not apply to `{kind_key}` steps"),
                ));
            }
        }
        let name = f
            .get("name")
            .map(|v| self.nonempty(v, "name"))
            .transpose()?;
        let timeout = f
            .get("timeout")
            .map(|v| self.duration(v, "timeout"))
            .transpose()?;
        let kind_pos = f.key_pos(kind_key).unwrap_or(n.pos);
        let kind = match kind_key {
            "wait_for" => StepKind::WaitFor(self.pattern(kind_val, "wait_for")?),
            "plant" => {
                let pf = self.fields(kind_val, kind_pos, "`plant`", &PLANT_KEYS)?;
                let pn = self.req(&pf, "path", "`path: /data/imei` (absolute guest path)")?;
                let path = self.nonempty(pn, "path")?;
                // A host program's relative paths are under its working directory, inside
                // the run's home: anywhere else would write a file of the host.
                if self.relative_plant && super::escapes(std::path::Path::new(&path)) {
                    return Err(self.err(
                        K::InvalidValue,
                        pn.pos,
                        "path outside the run's home",
                        format!(
                            "a `netns` program's `plant` writes under its working directory in the run's home: `path` must be relative and must not climb with `..`, not `{path}`"
                        ),
                    ));
                }
                if !path.starts_with('/') && !self.relative_plant {
                    return Err(self.err(
                        K::InvalidValue,
                        pn.pos,
                        "relative guest path",
                        format!(
                            "`plant` writes on the guest: `path` must be absolute, e.g. `/{path}`"
                        ),
                    ));
                }
                let content = self.template(
                    self.req(&pf, "content", "`content: \"{{imei}}\"`")?,
                    "content",
                )?;
                StepKind::Plant { path, content }
            }
            "shell" => {
                if kind_val.scalar().is_some_and(|s| s.trim().is_empty()) {
                    return Err(self.err(
                        K::InvalidValue,
                        kind_val.pos,
                        "empty value",
                        "`shell` cannot be empty".to_string(),
                    ));
                }
                let command = self.template(kind_val, "shell")?;
                let expect_exit = f
                    .get("expect_exit")
                    .map(|v| self.int(v, "expect_exit"))
                    .transpose()?;
                let expect_output = f
                    .get("expect_output")
                    .map(|v| self.pattern(v, "expect_output"))
                    .transpose()?;
                StepKind::Shell {
                    command,
                    expect_exit,
                    expect_output,
                }
            }
            "phase" => {
                let p = self.phase_name(kind_val, "phase")?;
                self.phases.push((p.clone(), index));
                StepKind::Phase(p)
            }
            "idle" => StepKind::Idle(self.duration(kind_val, "idle")?),
            "reboot" => {
                let rf = self.fields(kind_val, kind_pos, "`reboot`", &REBOOT_KEYS)?;
                StepKind::Reboot {
                    wait_for: rf
                        .get("wait_for")
                        .map(|v| self.pattern(v, "wait_for"))
                        .transpose()?,
                }
            }
            "install" => {
                if !self.adb_target {
                    return Err(self.err(
                        K::InvalidValue,
                        kind_pos,
                        "install without adb",
                        "`install` puts an app package on a `device` target controlled over adb (`control: {adb: SERIAL}`); on other targets use `shell` or `plant`".to_string(),
                    ));
                }
                let package = self.path(kind_val, "install", "app package")?;
                self.host_access(
                    HostAccessKind::Commands,
                    kind_pos,
                    format!(
                        "`install` runs `adb install` on the host with {}",
                        package.display()
                    ),
                );
                StepKind::Install(package)
            }
            "host" => {
                let command = self.host_step(kind_val)?;
                let shown = match &command {
                    HostCommand::Shell(c) => c.clone(),
                    HostCommand::Argv(v) => v.join(" "),
                };
                self.host_access(
                    HostAccessKind::Commands,
                    kind_pos,
                    format!("`host` step runs `{shown}` on the host, as telltale's user"),
                );
                StepKind::Host(command)
            }
            _ => {
                let cf =
                    self.fields(kind_val, kind_pos, "`expect_no_upload`", &UPLOAD_CHECK_KEYS)?;
                let canaries = self.canaries(
                    self.req(&cf, "canaries", "`canaries: [imei]` or `canaries: [all]`")?,
                    "canaries",
                )?;
                let phase = cf
                    .get("phase")
                    .map(|p| self.known_phase(p, "phase", Some(index)))
                    .transpose()?;
                let destinations = cf
                    .get("destinations")
                    .map(|d| self.host_globs(d, "destinations"))
                    .transpose()?
                    .unwrap_or_default();
                StepKind::ExpectNoUpload(UploadCheck {
                    canaries,
                    phase,
                    destinations,
                })
            }
        };
        Ok(Step {
            name,
            timeout,
            kind,
            line: n.pos.line,
        })
    }
}
