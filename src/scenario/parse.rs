//! Conversion of the positioned YAML tree into the typed [`Scenario`], with every check that
//! needs no file access. The first problem found is returned; structure is checked section by
//! section (target, identity, network, steps, policy, claims), names last.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{hint, list, ScenarioError, ScenarioErrorKind as K};
use super::generate::{Generate, DEFAULT_CONTACTS, MAX_CONTACTS};
use super::template::{Template, VarValue};
use super::values::{self, Glob, Pattern};
use super::yaml::{self, Node, NodeKind, Pos};
use super::*;
use crate::canary::{Identity, MIN_VALUE_LEN};

type R<T> = Result<T, ScenarioError>;

const TOP_KEYS: [&str; 8] = [
    "name", "release", "target", "identity", "network", "steps", "policy", "claims",
];
const TOP_WHAT: &str = "the scenario";
const QEMU_KEYS: [&str; 9] = [
    "kind",
    "arch",
    "kernel",
    "initrd",
    "disk",
    "append",
    "memory",
    "cpus",
    "boot_timeout",
];
const CONTAINER_KEYS: [&str; 7] = ["kind", "image", "tag", "cmd", "env", "copy", "boot_timeout"];
const COPY_KEYS: [&str; 2] = ["from", "to"];
const NETNS_KEYS: [&str; 5] = ["kind", "command", "env", "workdir", "boot_timeout"];
const DEVICE_KEYS: [&str; 5] = ["kind", "control", "traffic", "log", "boot_timeout"];
const CONTROL_KINDS: [&str; 3] = ["ssh", "adb", "serial"];
const SSH_KEYS: [&str; 5] = ["host", "port", "user", "identity", "options"];
const SERIAL_KEYS: [&str; 2] = ["path", "baud"];
const TRAFFIC_KINDS: [&str; 2] = ["interface", "pull"];
const PULL_KEYS: [&str; 2] = ["path", "start"];
const CAPTURE_KEYS: [&str; 3] = ["kind", "file", "phases"];
const CAPTURE_PHASE_KEYS: [&str; 3] = ["name", "at", "at_epoch"];
const IDENTITY_KEYS: [&str; 3] = ["seed", "generate", "values"];
const NETWORK_KEYS: [&str; 3] = ["dns", "ipv6", "responses"];
const DNS_KEYS: [&str; 2] = ["overrides", "nxdomain"];
const RESPONSE_KEYS: [&str; 5] = ["host", "path", "status", "body", "content_type"];
const STEP_MODIFIERS: [&str; 4] = ["name", "timeout", "expect_exit", "expect_output"];
const PLANT_KEYS: [&str; 2] = ["path", "content"];
const REBOOT_KEYS: [&str; 1] = ["wait_for"];
const UPLOAD_CHECK_KEYS: [&str; 3] = ["canaries", "phase", "destinations"];
const POLICY_KEYS: [&str; 3] = ["forbid", "allow_destinations", "max_upload_bytes"];
const RULE_KEYS: [&str; 3] = ["canaries", "destinations", "phases"];
const CLAIM_KEYS: [&str; 3] = ["id", "says", "forbid"];

/// The keys of one mapping, checked against the allowed ones.
struct Fields<'n> {
    entries: &'n [(Node, Node)],
    /// Where "missing key" errors point: the mapping's own key, or the mapping.
    at: Pos,
    what: &'static str,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(_, v)| v)
    }

    fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(k, _)| k.pos)
    }

    fn keys(&self) -> impl Iterator<Item = (&'n str, Pos)> {
        self.entries
            .iter()
            .map(|(k, _)| (k.scalar().unwrap_or(""), k.pos))
    }
}

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
    let root = match yaml::parse(text) {
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
        Err(e) if e.duplicate => {
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
            if stem.is_empty() {
                "scenario".to_string()
            } else {
                stem
            }
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
        Some(parts) => Some(cx.build_identity(parts, id_pos)?),
        None => None,
    };

    let s = Scenario {
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
        },
    };
    s.check_names()?;
    Ok(s)
}

/// One identity entry before validation: key, values with their positions, list or scalar, and
/// whether it was generated (and by which `generate` item).
struct Entry {
    key: String,
    key_pos: Pos,
    values: Vec<(String, Pos)>,
    list: bool,
    generated: bool,
}

impl Cx<'_> {
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

    /// The mapping in `node` with its keys checked; `at` is where a missing key is reported.
    fn fields<'n>(
        &self,
        node: &'n Node,
        at: Pos,
        what: &'static str,
        allowed: &[&str],
    ) -> R<Fields<'n>> {
        let entries: &'n [(Node, Node)] = match &node.kind {
            NodeKind::Map(m) => m,
            NodeKind::Null => &[],
            _ => {
                return Err(self.err(
                    K::WrongType,
                    node.pos,
                    "expected a mapping",
                    format!(
                        "{what} must be a mapping of {}, not {}",
                        list(allowed),
                        node.describe()
                    ),
                ))
            }
        };
        let f = Fields { entries, at, what };
        for (k, pos) in f.keys() {
            if !allowed.contains(&k) {
                return Err(self.err(
                    K::UnknownKey,
                    pos,
                    "unknown key",
                    format!("{what} has no key `{k}`{}", hint(k, allowed)),
                ));
            }
        }
        Ok(f)
    }

    fn req<'n>(&self, f: &Fields<'n>, key: &str, example: &str) -> R<&'n Node> {
        f.get(key).ok_or_else(|| {
            if f.what == TOP_WHAT {
                return ScenarioError::whole(
                    K::MissingKey,
                    self.source,
                    "missing key",
                    format!("the scenario needs `{key}`: add {example}"),
                );
            }
            self.err(
                K::MissingKey,
                f.at,
                "missing key",
                format!("{} needs `{key}`: add {example}", f.what),
            )
        })
    }

    fn string(&self, n: &Node, key: &str) -> R<String> {
        match &n.kind {
            NodeKind::Scalar { text, .. } => Ok(text.clone()),
            NodeKind::Null => Err(self.err(
                K::WrongType,
                n.pos,
                "missing value",
                format!("`{key}` needs a value"),
            )),
            _ => Err(self.err(
                K::WrongType,
                n.pos,
                "expected a string",
                format!("`{key}` must be a string, not {}", n.describe()),
            )),
        }
    }

    fn nonempty(&self, n: &Node, key: &str) -> R<String> {
        let s = self.string(n, key)?;
        if s.trim().is_empty() {
            return Err(self.err(
                K::InvalidValue,
                n.pos,
                "empty value",
                format!("`{key}` cannot be empty"),
            ));
        }
        Ok(s)
    }

    /// A name used in file names and reports: letters, digits, `.`, `_`, `-`.
    fn label(&self, n: &Node, key: &str) -> R<String> {
        let s = self.nonempty(n, key)?;
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(self.err(
                K::InvalidValue,
                n.pos,
                "invalid name",
                format!(
                    "`{key}` may hold letters, digits, `.`, `_` and `-` only; `{c}` is not allowed"
                ),
            ));
        }
        Ok(s)
    }

    fn uint(&self, n: &Node, key: &str, min: u64, max: u64) -> R<u64> {
        let range = || format!("`{key}` must be a whole number from {min} to {max}");
        let Some(text) = n.scalar() else {
            return Err(self.err(
                K::WrongType,
                n.pos,
                "expected a number",
                format!("{}, not {}", range(), n.describe()),
            ));
        };
        let t = text.trim();
        let body = t.strip_prefix(['-', '+']).unwrap_or(t);
        let numeric = !body.is_empty() && body.chars().all(|c| c.is_ascii_digit());
        if !n.is_plain() || !numeric {
            return Err(self.err(
                K::WrongType,
                n.pos,
                "expected a number",
                format!("{}, not {}", range(), n.describe()),
            ));
        }
        match t.trim_start_matches('+').parse::<i128>() {
            Ok(v) if v >= i128::from(min) && v <= i128::from(max) => Ok(v as u64),
            _ => Err(self.err(
                K::InvalidValue,
                n.pos,
                "number out of range",
                format!("{}, not `{t}`", range()),
            )),
        }
    }

    fn int(&self, n: &Node, key: &str) -> R<i32> {
        let err = || {
            self.err(
                K::WrongType,
                n.pos,
                "expected a number",
                format!("`{key}` must be a whole number, not {}", n.describe()),
            )
        };
        let t = n.scalar().ok_or_else(err)?.trim();
        if !n.is_plain() {
            return Err(err());
        }
        t.parse::<i32>().map_err(|_| err())
    }

    fn boolean(&self, n: &Node, key: &str) -> R<bool> {
        match (n.is_plain(), n.scalar()) {
            (true, Some("true" | "True" | "TRUE")) => Ok(true),
            (true, Some("false" | "False" | "FALSE")) => Ok(false),
            _ => Err(self.err(
                K::WrongType,
                n.pos,
                "expected true or false",
                format!("`{key}` must be `true` or `false`, not {}", n.describe()),
            )),
        }
    }

    fn duration(&self, n: &Node, key: &str) -> R<Duration> {
        let Some(text) = n.scalar() else {
            return Err(self.err(
                K::InvalidDuration,
                n.pos,
                "invalid duration",
                format!(
                    "`{key}` must be a duration such as `30s`, `500ms` or `2m`, not {}",
                    n.describe()
                ),
            ));
        };
        values::parse_duration(text)
            .map_err(|m| self.err(K::InvalidDuration, n.pos, "invalid duration", m))
    }

    fn seq<'n>(&self, n: &'n Node, key: &str) -> R<&'n [Node]> {
        match &n.kind {
            NodeKind::Seq(items) => Ok(items),
            _ => Err(self.err(
                K::WrongType,
                n.pos,
                "expected a list",
                format!(
                    "`{key}` must be a list (`[a, b]` or `- a` lines), not {}",
                    n.describe()
                ),
            )),
        }
    }

    fn one_of<'c>(&self, n: &Node, key: &str, names: &[&'c str]) -> R<&'c str> {
        let s = self.string(n, key)?;
        names.iter().copied().find(|c| *c == s).ok_or_else(|| {
            self.err(
                K::InvalidValue,
                n.pos,
                "invalid value",
                format!("`{key}` cannot be `{s}`{}", hint(&s, names)),
            )
        })
    }

    fn pattern(&self, n: &Node, key: &str) -> R<Pattern> {
        let s = self.string(n, key)?;
        Pattern::new(&s).map_err(|m| {
            self.err(
                K::InvalidRegex,
                n.pos,
                "invalid regex",
                format!("`{key}` is not a valid regex: {m}"),
            )
        })
    }

    fn template(&mut self, n: &Node, key: &str) -> R<Template> {
        let s = self.string(n, key)?;
        match Template::parse(&s) {
            Ok(t) => {
                for v in t.vars() {
                    let pos = yaml::pos_of_nth(self.text, n, &s, "{{", v.nth);
                    self.refs.push(NameRef::Template(v.clone(), pos));
                }
                Ok(t)
            }
            Err(e) => {
                let pos = yaml::pos_of_nth(self.text, n, &s, "{{", e.nth);
                Err(self.err(K::InvalidTemplate, pos, "invalid template", e.message))
            }
        }
    }

    fn path(&mut self, n: &Node, key: &str, what: &'static str) -> R<PathBuf> {
        let s = self.nonempty(n, key)?;
        let p = Path::new(&s);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        };
        self.files.push(FileRef {
            what,
            path: path.clone(),
            pos: n.pos,
        });
        Ok(path)
    }

    fn host_glob(&self, n: &Node, key: &str) -> R<Glob> {
        let s = self.string(n, key)?;
        values::check_host_glob(s.trim())
            .map_err(|m| self.err(K::InvalidValue, n.pos, "invalid host pattern", m))
    }

    fn host_globs(&self, n: &Node, key: &str) -> R<Vec<Glob>> {
        self.seq(n, key)?
            .iter()
            .map(|i| self.host_glob(i, key))
            .collect()
    }

    fn phase_name(&self, n: &Node, key: &str) -> R<String> {
        self.label(n, key)
    }

    /// A phase used by policy, claims (`earlier_than: None`) or an `expect_no_upload` step
    /// (declared by a step before `earlier_than`).
    fn known_phase(&self, n: &Node, key: &str, earlier_than: Option<usize>) -> R<String> {
        let p = self.phase_name(n, key)?;
        if p == INITIAL_PHASE {
            return Ok(p);
        }
        let declared: Vec<&str> = std::iter::once(INITIAL_PHASE)
            .chain(self.target_phases.iter().map(String::as_str))
            .chain(
                self.phases
                    .iter()
                    .filter(|(_, i)| earlier_than.is_none_or(|e| *i < e))
                    .map(|(p, _)| p.as_str()),
            )
            .collect();
        if declared.contains(&p.as_str()) {
            return Ok(p);
        }
        let later = earlier_than.is_some() && self.all_phases.contains(&p);
        let msg = if later {
            format!("phase `{p}` is declared only by a later step; an `expect_no_upload` step can check phases that have already begun")
        } else {
            let h = match super::error::did_you_mean(&p, declared.iter().copied()) {
                Some(c) => format!("; did you mean `{c}`?"),
                None => format!(
                    "; declared phases: {} (declare one with a `- phase: {p}` step)",
                    list(&declared)
                ),
            };
            format!("no step declares phase `{p}`{h}")
        };
        Err(self.err(K::UnknownPhase, n.pos, "unknown phase", msg))
    }

    fn canaries(&mut self, n: &Node, key: &str) -> R<CanarySelection> {
        if n.scalar() == Some("all") {
            return Ok(CanarySelection::All);
        }
        let items = self.seq(n, key)?;
        if items.is_empty() {
            return Err(self.err(
                K::InvalidValue,
                n.pos,
                "empty canary list",
                format!(
                    "`{key}` is empty; name identity values (`[imei, contacts]`) or write `[all]`"
                ),
            ));
        }
        let mut names = Vec::new();
        for i in items {
            let s = self.nonempty(i, key)?;
            if s == "all" {
                if items.len() > 1 {
                    return Err(self.err(
                        K::InvalidValue,
                        i.pos,
                        "`all` with other names",
                        "`all` already covers every canary; remove the other names or `all`"
                            .to_string(),
                    ));
                }
                return Ok(CanarySelection::All);
            }
            self.refs.push(NameRef::Canary(s.clone(), i.pos));
            names.push(s);
        }
        Ok(CanarySelection::Names(names))
    }

    // ---- target -------------------------------------------------------------------------

    fn target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let NodeKind::Map(entries) = &n.kind else {
            return Err(self.err(
                K::WrongType,
                n.pos,
                "expected a mapping",
                format!(
                    "`target` must be a mapping with `kind: qemu`, `kernel:` …, not {}",
                    n.describe()
                ),
            ));
        };
        let probe = Fields {
            entries,
            at,
            what: "`target`",
        };
        let kind_node = self.req(&probe, "kind", "`kind: qemu`")?;
        match self.one_of(kind_node, "kind", &TARGET_KINDS)? {
            "container" => self.container_target(n, at),
            "netns" => self.netns_target(n, at),
            "device" => self.device_target(n, at),
            "capture" => self.capture_target(n, at),
            _ => self.qemu_target(n, at),
        }
    }

    fn qemu_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `qemu` target", &QEMU_KEYS)?;
        let arch = match f.get("arch") {
            Some(a) => match self.one_of(a, "arch", &Arch::NAMES)? {
                "aarch64" => Arch::Aarch64,
                _ => Arch::X86_64,
            },
            None => Arch::X86_64,
        };
        let kernel = self.path(
            self.req(&f, "kernel", "`kernel: path/to/vmlinuz`")?,
            "kernel",
            "kernel",
        )?;
        let initrd = f
            .get("initrd")
            .map(|n| self.path(n, "initrd", "initrd"))
            .transpose()?;
        let disk = f
            .get("disk")
            .map(|n| self.path(n, "disk", "disk image"))
            .transpose()?;
        let append = f
            .get("append")
            .map(|n| self.string(n, "append"))
            .transpose()?;
        let memory_mib = match f.get("memory") {
            None => DEFAULT_MEMORY_MIB,
            Some(m) => {
                let text = self.string(m, "memory")?;
                let r = values::parse_memory_mib(&text);
                r.map_err(|msg| self.err(K::InvalidValue, m.pos, "invalid memory size", msg))?
            }
        };
        let cpus = match f.get("cpus") {
            Some(c) => self.uint(c, "cpus", 1, u64::from(MAX_CPUS))? as u32,
            None => 1,
        };
        let boot_timeout = match f.get("boot_timeout") {
            Some(d) => self.duration(d, "boot_timeout")?,
            None => DEFAULT_BOOT_TIMEOUT,
        };
        Ok(Target::Qemu(QemuTarget {
            arch,
            kernel,
            initrd,
            disk,
            append,
            memory_mib,
            cpus,
            boot_timeout,
        }))
    }

    fn boot_timeout(&self, f: &Fields<'_>) -> R<Duration> {
        match f.get("boot_timeout") {
            Some(d) => self.duration(d, "boot_timeout"),
            None => Ok(DEFAULT_BOOT_TIMEOUT),
        }
    }

    /// `env: {NAME: value}` in file order.
    fn env(&self, n: &Node) -> R<Vec<(String, String)>> {
        let NodeKind::Map(entries) = &n.kind else {
            return Err(self.err(
                K::WrongType,
                n.pos,
                "expected a mapping",
                format!(
                    "`env` must be a mapping of NAME: value, not {}",
                    n.describe()
                ),
            ));
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let name = self.nonempty(k, "env")?;
            if name.contains('=') || name.contains('\0') {
                return Err(self.err(
                    K::InvalidValue,
                    k.pos,
                    "invalid variable name",
                    format!("environment variable names cannot contain `=`: `{name}`"),
                ));
            }
            out.push((
                name,
                self.string(v, &format!("env.{}", k.scalar().unwrap_or("")))?,
            ));
        }
        Ok(out)
    }

    /// A program: `"shell command line"` or `[argv0, arg1, …]`.
    fn command(&self, n: &Node, key: &str) -> R<HostCommand> {
        match &n.kind {
            NodeKind::Seq(items) if !items.is_empty() => Ok(HostCommand::Argv(
                items
                    .iter()
                    .map(|i| self.nonempty(i, key))
                    .collect::<R<Vec<_>>>()?,
            )),
            _ => Ok(HostCommand::Shell(self.nonempty(n, key)?)),
        }
    }

    fn container_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `container` target", &CONTAINER_KEYS)?;
        let image_node = self.req(
            &f,
            "image",
            "`image: vendor/firmware` (a local or registry image)",
        )?;
        let mut image = self.nonempty(image_node, "image")?;
        let mut tag = f.get("tag").map(|t| self.nonempty(t, "tag")).transpose()?;
        if tag.is_none() {
            // `image: name:tag` (a `:` after the last `/`; a registry port comes before it).
            if let Some(i) = image.rfind(':').filter(|i| !image[*i..].contains('/')) {
                tag = Some(image[i + 1..].to_string());
                image.truncate(i);
            }
        }
        let cmd = match f.get("cmd") {
            None => Vec::new(),
            Some(c) => match self.command(c, "cmd")? {
                HostCommand::Argv(v) => v,
                HostCommand::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s],
            },
        };
        let env = f
            .get("env")
            .map(|e| self.env(e))
            .transpose()?
            .unwrap_or_default();
        let mut copy = Vec::new();
        if let Some(c) = f.get("copy") {
            for item in self.seq(c, "copy")? {
                let cf = self.fields(item, item.pos, "a `copy` entry", &COPY_KEYS)?;
                let from = self.path(
                    self.req(&cf, "from", "`from: host/file`")?,
                    "from",
                    "file to copy",
                )?;
                let to_node = self.req(&cf, "to", "`to: /absolute/path/in/container`")?;
                let to = self.nonempty(to_node, "to")?;
                if !to.starts_with('/') {
                    return Err(self.err(
                        K::InvalidValue,
                        to_node.pos,
                        "relative container path",
                        format!("`to` must be an absolute path in the container, e.g. `/{to}`"),
                    ));
                }
                copy.push((from, to));
            }
        }
        Ok(Target::Container(ContainerTarget {
            image,
            tag: tag.unwrap_or_else(|| "latest".to_string()),
            cmd,
            env,
            copy,
            boot_timeout: self.boot_timeout(&f)?,
        }))
    }

    fn netns_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `netns` target", &NETNS_KEYS)?;
        let command = self.command(
            self.req(
                &f,
                "command",
                "`command: [program, arg]` (the program to run in the namespace)",
            )?,
            "command",
        )?;
        let env = f
            .get("env")
            .map(|e| self.env(e))
            .transpose()?
            .unwrap_or_default();
        let workdir = match f.get("workdir") {
            Some(w) => {
                let s = self.nonempty(w, "workdir")?;
                let p = Path::new(&s);
                Some(if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    self.base_dir.join(p)
                })
            }
            None => None,
        };
        self.relative_plant = true;
        Ok(Target::Netns(NetnsTarget {
            command,
            env,
            workdir,
            boot_timeout: self.boot_timeout(&f)?,
        }))
    }

    /// `{one_of_kinds: value}`: the single key and its value.
    fn single<'n>(
        &self,
        n: &'n Node,
        key: &str,
        kinds: &[&'static str],
        example: &str,
    ) -> R<(&'static str, &'n Node)> {
        match &n.kind {
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                let kind = self.one_of(k, key, kinds)?;
                Ok((kind, v))
            }
            _ => Err(self.err(
                K::WrongType,
                n.pos,
                "expected a mapping with one key",
                format!(
                    "`{key}` is a mapping with one of {}, e.g. {example}",
                    list(kinds)
                ),
            )),
        }
    }

    fn device_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `device` target", &DEVICE_KEYS)?;
        let cn = self.req(
            &f,
            "control",
            "`control: {ssh: {host: 192.168.77.2}}`, `{adb: SERIAL}` or `{serial: /dev/ttyUSB0}`",
        )?;
        let (ckind, cv) = self.single(cn, "control", &CONTROL_KINDS, "`control: {adb: SERIAL}`")?;
        let control = match ckind {
            "ssh" => {
                let (host, port, user, identity, options) = match &cv.kind {
                    NodeKind::Scalar { .. } => (
                        self.nonempty(cv, "ssh")?,
                        22,
                        "root".to_string(),
                        None,
                        Vec::new(),
                    ),
                    _ => {
                        let sf = self.fields(cv, cv.pos, "`ssh`", &SSH_KEYS)?;
                        let host =
                            self.nonempty(self.req(&sf, "host", "`host: 192.168.77.2`")?, "host")?;
                        let port = match sf.get("port") {
                            Some(p) => self.uint(p, "port", 1, 65535)? as u16,
                            None => 22,
                        };
                        let user = sf
                            .get("user")
                            .map(|u| self.nonempty(u, "user"))
                            .transpose()?
                            .unwrap_or_else(|| "root".into());
                        let identity = sf
                            .get("identity")
                            .map(|i| self.path(i, "identity", "ssh key"))
                            .transpose()?;
                        let mut options = Vec::new();
                        if let Some(o) = sf.get("options") {
                            for item in self.seq(o, "options")? {
                                let opt = self.nonempty(item, "options")?;
                                if !opt.contains('=') {
                                    return Err(self.err(
                                        K::InvalidValue,
                                        item.pos,
                                        "invalid ssh option",
                                        format!("ssh options are `Name=value` (as `ssh -o`), e.g. `UserKnownHostsFile=lab_known_hosts`, not `{opt}`"),
                                    ));
                                }
                                options.push(opt);
                            }
                        }
                        (host, port, user, identity, options)
                    }
                };
                DeviceControl::Ssh {
                    host,
                    port,
                    user,
                    identity,
                    options,
                }
            }
            "adb" => DeviceControl::Adb {
                serial: self.nonempty(cv, "adb")?,
            },
            _ => match &cv.kind {
                NodeKind::Scalar { .. } => DeviceControl::Serial {
                    path: PathBuf::from(self.nonempty(cv, "serial")?),
                    baud: 115_200,
                },
                _ => {
                    let sf = self.fields(cv, cv.pos, "`serial`", &SERIAL_KEYS)?;
                    let path = PathBuf::from(
                        self.nonempty(self.req(&sf, "path", "`path: /dev/ttyUSB0`")?, "path")?,
                    );
                    let baud = match sf.get("baud") {
                        Some(b) => self.uint(b, "baud", 50, 4_000_000)? as u32,
                        None => 115_200,
                    };
                    DeviceControl::Serial { path, baud }
                }
            },
        };
        let tn = self.req(&f, "traffic", "`traffic: {interface: eth1}` (telltale is the device's gateway on it) or `{pull: /sdcard/capture.pcap}`")?;
        let (tkind, tv) = self.single(
            tn,
            "traffic",
            &TRAFFIC_KINDS,
            "`traffic: {interface: eth1}`",
        )?;
        let traffic = match tkind {
            "interface" => {
                let name = self.nonempty(tv, "interface")?;
                if name.len() > 15 || name.contains(['/', ' ']) {
                    return Err(self.err(
                        K::InvalidValue,
                        tv.pos,
                        "invalid interface name",
                        format!("`{name}` is not a Linux interface name (at most 15 characters, no `/` or spaces)"),
                    ));
                }
                DeviceTraffic::Interface(name)
            }
            _ => match &tv.kind {
                NodeKind::Scalar { .. } => DeviceTraffic::Pull {
                    path: self.nonempty(tv, "pull")?,
                    start: None,
                },
                _ => {
                    let pf = self.fields(tv, tv.pos, "`pull`", &PULL_KEYS)?;
                    DeviceTraffic::Pull {
                        path: self.nonempty(
                            self.req(&pf, "path", "`path: /sdcard/capture.pcap`")?,
                            "path",
                        )?,
                        start: pf
                            .get("start")
                            .map(|s| self.nonempty(s, "start"))
                            .transpose()?,
                    }
                }
            },
        };
        let log = f.get("log").map(|l| self.nonempty(l, "log")).transpose()?;
        self.adb_target = matches!(control, DeviceControl::Adb { .. });
        Ok(Target::Device(DeviceTarget {
            control,
            traffic,
            log,
            boot_timeout: self.boot_timeout(&f)?,
        }))
    }

    fn capture_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `capture` target", &CAPTURE_KEYS)?;
        let file = self.path(
            self.req(&f, "file", "`file: capture.pcap`")?,
            "file",
            "capture",
        )?;
        let mut phases: Vec<(String, PhaseStart)> = Vec::new();
        if let Some(p) = f.get("phases") {
            for item in self.seq(p, "phases")? {
                let pf = self.fields(item, item.pos, "a phase", &CAPTURE_PHASE_KEYS)?;
                let name_node = self.req(&pf, "name", "`name: consent_declined`")?;
                let name = self.phase_name(name_node, "name")?;
                if name == INITIAL_PHASE || phases.iter().any(|(p, _)| *p == name) {
                    return Err(self.err(
                        K::Duplicate,
                        name_node.pos,
                        "duplicate phase",
                        format!("phase `{name}` is already declared (`{INITIAL_PHASE}` is the phase before the first one listed)"),
                    ));
                }
                let start = match (pf.get("at"), pf.get("at_epoch")) {
                    (Some(a), None) => PhaseStart::Offset(self.duration(a, "at")?),
                    (None, Some(e)) => {
                        let t = self.string(e, "at_epoch")?;
                        PhaseStart::EpochNanos(values::parse_epoch_nanos(&t).map_err(|m| self.err(K::InvalidValue, e.pos, "invalid time", m))?)
                    }
                    _ => {
                        return Err(self.err(
                            K::MissingKey,
                            item.pos,
                            "phase start",
                            "a phase needs exactly one of `at: 12500ms` (after the capture's first frame) or `at_epoch: 1795300000.25` (seconds since 1970, as Wireshark's frame.time_epoch)".to_string(),
                        ))
                    }
                };
                phases.push((name, start));
            }
        }
        self.target_phases = phases.iter().map(|(n, _)| n.clone()).collect();
        Ok(Target::Capture(CaptureTarget { file, phases }))
    }

    /// A capture target runs nothing: only `expect_no_upload` steps apply.
    fn capture_steps(&mut self, n: &Node) -> R<Vec<Step>> {
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

    // ---- identity -----------------------------------------------------------------------

    fn identity(&mut self, n: &Node, at: Pos) -> R<(IdentitySpec, Option<Vec<Entry>>)> {
        match &n.kind {
            NodeKind::Scalar { .. } => {
                let p = self.path(n, "identity", "identity file")?;
                return Ok((IdentitySpec::File(p), None));
            }
            NodeKind::Map(m) if !m.is_empty() => {}
            _ => {
                return Err(self.err(
                    K::WrongType,
                    n.pos,
                    "invalid identity",
                    format!("`identity` is either the path of an identity file (`identity: ids.yaml`) or a mapping with `seed`, `generate` and/or `values`, not {}", n.describe()),
                ))
            }
        }
        let f = self.fields(n, at, "`identity`", &IDENTITY_KEYS)?;
        let seed = f
            .get("seed")
            .map(|s| self.uint(s, "seed", 0, u64::MAX))
            .transpose()?;
        let mut generate: Vec<(Generate, Pos)> = Vec::new();
        match (f.get("generate"), seed) {
            (Some(g), None) => {
                return Err(self.err(
                    K::MissingKey,
                    f.key_pos("generate").unwrap_or(g.pos),
                    "missing key",
                    "generated values are derived from a seed: add `seed:` (any number, e.g. `seed: 1`) to `identity`".to_string(),
                ))
            }
            (Some(g), Some(_)) => {
                for item in self.seq(g, "generate")? {
                    let (kind, pos) = self.generate_item(item)?;
                    if let Some((_, first)) = generate.iter().find(|(k, _)| k.key() == kind.key()) {
                        return Err(self.err(
                            K::Duplicate,
                            pos,
                            "duplicate generated value",
                            format!(
                                "`{}` is already listed in `generate` (column {})",
                                kind.key(),
                                first.col
                            ),
                        ));
                    }
                    generate.push((kind, pos));
                }
            }
            (None, Some(_)) => {
                let p = f.key_pos("seed").unwrap_or(n.pos);
                generate = vec![
                    (Generate::Imei, p),
                    (Generate::Phone, p),
                    (Generate::Email, p),
                    (Generate::Contacts(DEFAULT_CONTACTS), p),
                ];
            }
            (None, None) => {}
        }
        let mut entries: Vec<Entry> = Vec::new();
        if let Some(s) = seed {
            for (g, pos) in &generate {
                let (values, list) = match g.value(s) {
                    VarValue::One(v) => (vec![(v, *pos)], false),
                    VarValue::List(v) => (v.into_iter().map(|x| (x, *pos)).collect(), true),
                };
                entries.push(Entry {
                    key: g.key().to_string(),
                    key_pos: *pos,
                    values,
                    list,
                    generated: true,
                });
            }
        }
        let mut given: Vec<(String, VarValue)> = Vec::new();
        if let Some(v) = f.get("values") {
            let vf = match &v.kind {
                NodeKind::Map(m) if !m.is_empty() => m,
                _ => {
                    return Err(self.err(
                        K::WrongType,
                        v.pos,
                        "expected a mapping",
                        format!(
                        "`values` must be a mapping of name: value (like an identity file), not {}",
                        v.describe()
                    ),
                    ))
                }
            };
            for (k, val) in vf {
                let key = k.scalar().unwrap_or("").to_string();
                if let Some(e) = entries.iter().find(|e| e.key == key) {
                    return Err(self.err(
                        K::Duplicate,
                        k.pos,
                        "duplicate identity key",
                        format!(
                            "`{key}` is also generated (line {}); remove it from `values` or from `generate`",
                            e.key_pos.line
                        ),
                    ));
                }
                let entry = self.identity_value(&key, k.pos, val)?;
                given.push((
                    key,
                    if entry.list {
                        VarValue::List(entry.values.iter().map(|(s, _)| s.clone()).collect())
                    } else {
                        VarValue::One(
                            entry
                                .values
                                .first()
                                .map(|(s, _)| s.clone())
                                .unwrap_or_default(),
                        )
                    },
                ));
                entries.push(entry);
            }
        }
        if entries.is_empty() {
            return Err(self.err(
                K::MissingKey,
                at,
                "empty identity",
                "`identity` defines no canaries: add `seed:` (generated values) or `values:`"
                    .to_string(),
            ));
        }
        let spec = IdentitySpec::Inline(InlineIdentity {
            seed,
            generate: generate.into_iter().map(|(g, _)| g).collect(),
            values: given,
        });
        Ok((spec, Some(entries)))
    }

    fn generate_item(&self, n: &Node) -> R<(Generate, Pos)> {
        if let NodeKind::Map(m) = &n.kind {
            if let [(k, v)] = m.as_slice() {
                if k.scalar() == Some("contacts") {
                    let c = self.uint(v, "contacts", 1, MAX_CONTACTS as u64)?;
                    return Ok((Generate::Contacts(c as usize), n.pos));
                }
                let key = k.scalar().unwrap_or("");
                return Err(self.err(
                    K::InvalidValue,
                    k.pos,
                    "invalid generated value",
                    format!(
                        "only `contacts` takes a count (`{{contacts: 5}}`); `{key}` cannot{}",
                        hint(key, &["contacts"])
                    ),
                ));
            }
        }
        let name = self.one_of(n, "generate", &Generate::NAMES)?;
        let g = match name {
            "imei" => Generate::Imei,
            "phone" => Generate::Phone,
            "email" => Generate::Email,
            _ => Generate::Contacts(DEFAULT_CONTACTS),
        };
        Ok((g, n.pos))
    }

    /// One `values:` entry, shaped like an identity-file entry.
    fn identity_value(&self, key: &str, key_pos: Pos, n: &Node) -> R<Entry> {
        let scalar = |item: &Node, name: &str| -> R<(String, Pos)> {
            match &item.kind {
                NodeKind::Scalar { text, .. } => Ok((text.trim().to_string(), item.pos)),
                NodeKind::Null => Err(self.err(
                    K::Identity,
                    item.pos,
                    "identity value missing",
                    format!("`{name}` has no value; write the planted value, or remove it"),
                )),
                _ => Err(self.err(
                    K::Identity,
                    item.pos,
                    "nested value in identity",
                    format!(
                        "`{name}` is not a scalar; values must be a scalar or a list of scalars"
                    ),
                )),
            }
        };
        let (values, list) = match &n.kind {
            NodeKind::Seq(items) => {
                if items.is_empty() {
                    return Err(self.err(
                        K::Identity,
                        n.pos,
                        "empty identity list",
                        format!("`{key}` is an empty list; add values or remove it"),
                    ));
                }
                let v = items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| scalar(it, &format!("{key}[{i}]")))
                    .collect::<R<Vec<_>>>()?;
                (v, true)
            }
            _ => (vec![scalar(n, key)?], false),
        };
        Ok(Entry {
            key: key.to_string(),
            key_pos,
            values,
            list,
            generated: false,
        })
    }

    /// Apply the identity-file rules (minimum length, distinct values) with positions, then build
    /// the [`Identity`] with [`Identity::from_yaml`] itself so the rules cannot drift apart.
    fn build_identity(&self, entries: Vec<Entry>, id_pos: Pos) -> R<Identity> {
        let mut seen: Vec<(String, String, Pos)> = Vec::new();
        for e in &entries {
            for (i, (value, pos)) in e.values.iter().enumerate() {
                let name = if e.list {
                    format!("{}[{i}]", e.key)
                } else {
                    e.key.clone()
                };
                let origin = if e.generated { " (generated)" } else { "" };
                if value.len() < MIN_VALUE_LEN {
                    return Err(self.err(
                        K::Identity,
                        *pos,
                        "identity value too short",
                        format!("`{name}`{origin}: canary values must be at least {MIN_VALUE_LEN} bytes long, or every packet would match; use a longer fake value"),
                    ));
                }
                if let Some((prev, _, ppos)) =
                    seen.iter().find(|(_, v, _)| v.eq_ignore_ascii_case(value))
                {
                    return Err(self.err(
                        K::Identity,
                        *pos,
                        "duplicate identity value",
                        format!("`{name}`{origin} has the same value as `{prev}` (line {}); every canary needs a distinct value so a hit names one canary{}",
                            ppos.line,
                            if e.generated { "; pick another seed" } else { "" }),
                    ));
                }
                seen.push((name, value.clone(), *pos));
            }
        }
        let mut map = serde_yaml::Mapping::new();
        for e in &entries {
            let v = if e.list {
                serde_yaml::Value::Sequence(
                    e.values
                        .iter()
                        .map(|(s, _)| serde_yaml::Value::String(s.clone()))
                        .collect(),
                )
            } else {
                serde_yaml::Value::String(
                    e.values.first().map(|(s, _)| s.clone()).unwrap_or_default(),
                )
            };
            map.insert(serde_yaml::Value::String(e.key.clone()), v);
        }
        let text = serde_yaml::to_string(&map)
            .map_err(|e| self.err(K::Identity, id_pos, "invalid identity", e.to_string()))?;
        Identity::from_yaml(&text, self.source)
            .map_err(|e| self.err(K::Identity, id_pos, e.title, e.message))
    }

    // ---- network ------------------------------------------------------------------------

    fn network(&mut self, n: &Node, at: Pos) -> R<NetworkSpec> {
        let f = self.fields(n, at, "`network`", &NETWORK_KEYS)?;
        let mut net = NetworkSpec::default();
        if let Some(d) = f.get("dns") {
            let df = self.fields(
                d,
                f.key_pos("dns").unwrap_or(at),
                "`network.dns`",
                &DNS_KEYS,
            )?;
            if let Some(o) = df.get("overrides") {
                let entries: &[(Node, Node)] = match &o.kind {
                    NodeKind::Map(m) => m,
                    NodeKind::Null => &[],
                    _ => {
                        return Err(self.err(
                            K::WrongType,
                            o.pos,
                            "expected a mapping",
                            format!(
                                "`overrides` must be a mapping of host: address, not {}",
                                o.describe()
                            ),
                        ))
                    }
                };
                for (k, v) in entries {
                    let host = self.host_glob(k, "overrides")?;
                    let ip_text = self.string(v, "overrides")?;
                    let ip: IpAddr = ip_text.trim().parse().map_err(|_| {
                        self.err(
                            K::InvalidValue,
                            v.pos,
                            "invalid IP address",
                            format!("`{ip_text}` is not an IP address; write e.g. `198.51.100.7` or `2001:db8::7`"),
                        )
                    })?;
                    net.dns.overrides.push((host, ip));
                }
            }
            if let Some(x) = df.get("nxdomain") {
                net.dns.nxdomain = self.host_globs(x, "nxdomain")?;
            }
        }
        if let Some(v) = f.get("ipv6") {
            net.ipv6 = self.boolean(v, "ipv6")?;
        }
        if let Some(r) = f.get("responses") {
            for item in self.seq(r, "responses")? {
                let rf = self.fields(item, item.pos, "a response", &RESPONSE_KEYS)?;
                let mut resp = HttpResponse {
                    host: self.host_glob(
                        self.req(&rf, "host", "`host: api.vendor.example` (globs allowed)")?,
                        "host",
                    )?,
                    ..HttpResponse::default()
                };
                if let Some(p) = rf.get("path") {
                    let s = self.string(p, "path")?;
                    resp.path = Some(values::check_path_glob(&s).map_err(|m| {
                        self.err(K::InvalidValue, p.pos, "invalid path pattern", m)
                    })?);
                }
                if let Some(s) = rf.get("status") {
                    resp.status = self.uint(s, "status", 100, 599)? as u16;
                }
                if let Some(b) = rf.get("body") {
                    resp.body = self.string(b, "body")?;
                }
                if let Some(c) = rf.get("content_type") {
                    resp.content_type = self.nonempty(c, "content_type")?;
                }
                net.responses.push(resp);
            }
        }
        Ok(net)
    }

    // ---- steps --------------------------------------------------------------------------

    fn steps(&mut self, n: &Node) -> R<Vec<Step>> {
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
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.step(item, i)?);
        }
        Ok(out)
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
            let h = match super::error::did_you_mean(key, allowed.iter().copied()) {
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
                // A host program's relative paths are under its working directory.
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
                StepKind::Install(self.path(kind_val, "install", "app package")?)
            }
            "host" => match &kind_val.kind {
                NodeKind::Seq(items) => {
                    if items.is_empty() {
                        return Err(self.err(
                            K::InvalidValue,
                            kind_val.pos,
                            "empty value",
                            "`host` needs a command: `[program, arg, …]`".to_string(),
                        ));
                    }
                    StepKind::Host(HostCommand::Argv(
                        items
                            .iter()
                            .map(|i| self.string(i, "host"))
                            .collect::<R<_>>()?,
                    ))
                }
                _ => StepKind::Host(HostCommand::Shell(self.nonempty(kind_val, "host")?)),
            },
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

    // ---- policy and claims --------------------------------------------------------------

    fn rule(&mut self, n: &Node, at: Pos, what: &'static str) -> R<ForbidRule> {
        let f = self.fields(n, at, what, &RULE_KEYS)?;
        let canaries = self.canaries(
            self.req(
                &f,
                "canaries",
                "`canaries: [imei, contacts]` or `canaries: [all]`",
            )?,
            "canaries",
        )?;
        let destinations = f
            .get("destinations")
            .map(|d| self.host_globs(d, "destinations"))
            .transpose()?
            .unwrap_or_default();
        let mut phases = Vec::new();
        if let Some(p) = f.get("phases") {
            for item in self.seq(p, "phases")? {
                phases.push(self.known_phase(item, "phases", None)?);
            }
        }
        Ok(ForbidRule {
            canaries,
            destinations,
            phases,
            line: n.pos.line,
        })
    }

    fn policy(&mut self, n: &Node, at: Pos) -> R<Policy> {
        let f = self.fields(n, at, "`policy`", &POLICY_KEYS)?;
        let mut p = Policy::default();
        if let Some(list) = f.get("forbid") {
            for item in self.seq(list, "forbid")? {
                let r = self.rule(item, item.pos, "a `forbid` rule")?;
                p.forbid.push(r);
            }
        }
        if let Some(a) = f.get("allow_destinations") {
            p.allow_destinations = Some(self.host_globs(a, "allow_destinations")?);
        }
        if let Some(m) = f.get("max_upload_bytes") {
            let NodeKind::Map(entries) = &m.kind else {
                return Err(self.err(
                    K::WrongType,
                    m.pos,
                    "expected a mapping",
                    format!(
                        "`max_upload_bytes` must be a mapping of host: bytes, not {}",
                        m.describe()
                    ),
                ));
            };
            for (k, v) in entries {
                let host = self.host_glob(k, "max_upload_bytes")?;
                let text = self.string(v, "max_upload_bytes")?;
                let bytes = values::parse_bytes(&text)
                    .map_err(|msg| self.err(K::InvalidValue, v.pos, "invalid byte count", msg))?;
                p.max_upload_bytes.push((host, bytes));
            }
        }
        Ok(p)
    }

    fn claims(&mut self, n: &Node) -> R<Vec<Claim>> {
        let mut out: Vec<Claim> = Vec::new();
        for item in self.seq(n, "claims")? {
            let f = self.fields(item, item.pos, "a claim", &CLAIM_KEYS)?;
            let id_node = self.req(&f, "id", "`id: CVE-2014-0001`")?;
            let id = self.nonempty(id_node, "id")?;
            if let Some(prev) = out.iter().find(|c| c.id == id) {
                return Err(self.err(
                    K::Duplicate,
                    id_node.pos,
                    "duplicate claim id",
                    format!("claim `{id}` is already defined on line {}", prev.line),
                ));
            }
            let says = self.nonempty(
                self.req(&f, "says", "`says: \"what the patch fixes\"`")?,
                "says",
            )?;
            let fnode = self.req(
                &f,
                "forbid",
                "`forbid: { canaries: [contacts], phases: [consent_declined] }`",
            )?;
            let forbid = self.rule(
                fnode,
                f.key_pos("forbid").unwrap_or(item.pos),
                "a claim's `forbid`",
            )?;
            out.push(Claim {
                id,
                says,
                forbid,
                line: item.pos.line,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str =
        "target: {kind: qemu, kernel: vmlinuz}\nidentity: ids.yaml\nsteps:\n  - idle: 5\n";

    fn ok(text: &str) -> Scenario {
        match scenario(text, "dir/min.yaml", Path::new("/base")) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn kind(text: &str) -> K {
        scenario(text, "s.yaml", Path::new("/base"))
            .expect_err("should fail")
            .kind
    }

    #[test]
    fn defaults_of_a_minimal_scenario() {
        let s = ok(MIN);
        assert_eq!(s.name, "min");
        assert_eq!(s.release, None);
        let q = s.target.as_qemu().expect("a qemu target");
        assert_eq!(q.arch, Arch::X86_64);
        assert_eq!(q.kernel, Path::new("/base/vmlinuz"));
        assert_eq!((q.memory_mib, q.cpus), (DEFAULT_MEMORY_MIB, 1));
        assert_eq!(q.boot_timeout, DEFAULT_BOOT_TIMEOUT);
        assert_eq!(
            (q.initrd.as_ref(), q.disk.as_ref(), q.append.as_ref()),
            (None, None, None)
        );
        assert_eq!(
            s.identity,
            IdentitySpec::File(PathBuf::from("/base/ids.yaml"))
        );
        assert!(s.identity().is_none());
        assert_eq!(s.network, NetworkSpec::default());
        assert_eq!(s.policy, Policy::default());
        assert_eq!(s.steps[0].kind, StepKind::Idle(Duration::from_secs(5)));
        assert_eq!(s.steps[0].line, 4);
        // Names in templates and rules wait for the identity file.
        let s = ok(&format!(
            "{MIN}  - shell: \"echo {{{{anything}}}}\"\npolicy:\n  forbid:\n    - canaries: [whatever]\n"
        ));
        assert_eq!(s.steps.len(), 2);
    }

    #[test]
    fn absolute_paths_stay_and_numbers_are_typed() {
        let t = "target:\n  kind: qemu\n  kernel: /abs/vmlinuz\n  arch: aarch64\n  memory: 1024\n  cpus: 4\n  boot_timeout: 2m\nidentity: {values: {serial: \"0123456\"}}\nsteps: [{idle: 500ms}]\n";
        let s = ok(t);
        let q = s.target.as_qemu().expect("a qemu target");
        assert_eq!(q.kernel, Path::new("/abs/vmlinuz"));
        assert_eq!((q.arch, q.memory_mib, q.cpus), (Arch::Aarch64, 1024, 4));
        assert_eq!(q.boot_timeout, Duration::from_secs(120));
        // Scalars keep their source text: the leading zero survives.
        assert_eq!(s.identity().unwrap().canaries[0].value, "0123456");
        // A quoted number is a string, not a number.
        assert_eq!(kind(&t.replace("cpus: 4", "cpus: \"4\"")), K::WrongType);
        assert_eq!(kind(&t.replace("cpus: 4", "cpus: 65")), K::InvalidValue);
    }

    #[test]
    fn seed_alone_generates_everything() {
        let s = ok("target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps: [{idle: 1s}]\n");
        let IdentitySpec::Inline(i) = &s.identity else {
            panic!()
        };
        assert_eq!(
            i.generate,
            [
                Generate::Imei,
                Generate::Phone,
                Generate::Email,
                Generate::Contacts(DEFAULT_CONTACTS)
            ]
        );
        assert_eq!(s.identity().unwrap().canaries.len(), 3 + DEFAULT_CONTACTS);
        assert_eq!(
            kind("target: {kind: qemu, kernel: k}\nidentity: {}\nsteps: [{idle: 1s}]\n"),
            K::WrongType
        );
    }

    #[test]
    fn canary_selection_forms() {
        let base = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps: [{idle: 1s}]\npolicy:\n  forbid:\n";
        let s = ok(&format!("{base}    - canaries: all\n    - canaries: [all]\n    - canaries: [imei, \"contacts[2]\"]\n"));
        assert_eq!(s.policy.forbid[0].canaries, CanarySelection::All);
        assert_eq!(s.policy.forbid[1].canaries, CanarySelection::All);
        assert_eq!(
            s.policy.forbid[2].canaries,
            CanarySelection::Names(vec!["imei".into(), "contacts[2]".into()])
        );
        assert_eq!(
            kind(&format!("{base}    - canaries: []\n")),
            K::InvalidValue
        );
        assert_eq!(kind(&format!("{base}    - canaries: imei\n")), K::WrongType);
        assert_eq!(
            kind(&format!("{base}    - canaries: [\"contacts[3]\"]\n")),
            K::UnknownCanary
        );
    }

    #[test]
    fn phases_and_expect_steps() {
        let t = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps:\n  - expect_no_upload: {canaries: [all], phase: boot}\n  - phase: a\n  - expect_no_upload: {canaries: [imei], phase: a, destinations: [\"*.x.example\"]}\n  - phase: b\n  - phase: a\npolicy:\n  forbid: [{canaries: [all], phases: [b, boot]}]\n";
        let s = ok(t);
        assert_eq!(s.phases(), ["boot", "a", "b"]);
        let StepKind::ExpectNoUpload(c) = &s.steps[2].kind else {
            panic!()
        };
        assert_eq!(c.phase.as_deref(), Some("a"));
        assert_eq!(c.destinations, [Glob::new("*.x.example")]);
        assert_eq!(
            kind(&t.replace("phases: [b, boot]", "phases: [c]")),
            K::UnknownPhase
        );
        assert_eq!(
            kind(&t.replace("- phase: b", "- phase: \"b c\"")),
            K::InvalidValue
        );
    }

    #[test]
    fn step_forms() {
        let t = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps:\n  - reboot:\n  - host: [a, b]\n  - host: echo hi\n  - shell: x\n    expect_exit: -1\n  - wait_for: ok\n    name: up\n    timeout: 3s\n";
        let s = ok(t);
        assert_eq!(s.steps[0].kind, StepKind::Reboot { wait_for: None });
        assert_eq!(
            s.steps[1].kind,
            StepKind::Host(HostCommand::Argv(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            s.steps[2].kind,
            StepKind::Host(HostCommand::Shell("echo hi".into()))
        );
        let StepKind::Shell { expect_exit, .. } = &s.steps[3].kind else {
            panic!()
        };
        assert_eq!(*expect_exit, Some(-1));
        assert_eq!(s.steps[4].name.as_deref(), Some("up"));
        assert_eq!(s.steps[4].timeout, Some(Duration::from_secs(3)));
        assert_eq!(
            kind(&t.replace("host: [a, b]", "host: []")),
            K::InvalidValue
        );
        assert_eq!(
            kind(&t.replace("shell: x", "shell: \" \"")),
            K::InvalidValue
        );
        assert_eq!(
            kind(&t.replace("expect_exit: -1", "expect_exit: zero")),
            K::WrongType
        );
        assert_eq!(
            kind(&t.replace("reboot:", "reboot: {wiat_for: x}")),
            K::UnknownKey
        );
    }

    #[test]
    fn anchors_are_expanded() {
        let t = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps:\n  - &nap {idle: 2s}\n  - *nap\n";
        let s = ok(t);
        assert_eq!(s.steps.len(), 2);
        assert_eq!(s.steps[1].kind, StepKind::Idle(Duration::from_secs(2)));
        assert_eq!(s.steps[1].line, 5);
    }

    #[test]
    fn template_positions_point_at_the_braces() {
        let t = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps:\n  - shell: >\n      echo {{imei}}\n      and {{imie}}\n";
        let e = scenario(t, "s.yaml", Path::new("/")).unwrap_err();
        assert_eq!(e.kind, K::UnknownTemplateName);
        assert_eq!((e.line, e.column), (6, 11));
    }

    #[test]
    fn oversized_input_is_refused() {
        let big = format!("# {}\n", "x".repeat(MAX_SCENARIO_BYTES));
        assert_eq!(kind(&big), K::Syntax);
    }
}
