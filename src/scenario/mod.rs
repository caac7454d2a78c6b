//! The scenario language: one YAML file (`scenarios/*.yaml`) describing one run of `telltale run`:
//! the target to boot, the canary identity to plant, the virtual network's behaviour, the steps to
//! drive the device through, the privacy policy and the claims of a patch.
//!
//! This module owns the typed model ([`Scenario`] and everything under it), strict parsing and
//! validation with hurl-style errors ([`ScenarioError`]: file:line:col, the line, a caret, and a
//! "did you mean" where one fits), identity generation from a seed ([`generate`]) and the
//! `{{name}}` templates over identity values ([`template`]).
//!
//! Parsing is pure: [`Scenario::parse`] takes the text, a display name and the directory that
//! relative paths are resolved against. I/O is separate: [`Scenario::check_files`] checks that
//! the named files exist, [`Scenario::attach_identity`] takes the text of an identity file, and
//! [`Scenario::load`] does all of it for a path.
//!
//! YAML is read with `saphyr-parser` into a tree whose nodes know their positions
//! (`crate::yaml`, shared with identity files), because most checks are semantic (unknown
//! phase, unknown canary, a step with two kinds) and need a position that serde_yaml cannot
//! give; the `parse` submodule converts that tree, one file per section.

// A scenario error carries every problem of its file (`ScenarioError::also`, boxed): 128 bytes, at clippy's
// threshold; errors are the rare path of parsing, and the top-level `Error` boxes it.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod generate;
mod parse;
pub mod template;
pub mod values;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ScenarioError, ScenarioErrorKind};
pub use generate::Generate;
pub use template::{Template, TemplateVars, VarRef, VarValue};
pub use values::{Glob, Pattern};

use crate::canary::{Canary, Identity};
use crate::diag::{did_you_mean, list};
use crate::yaml;

/// The phase findings belong to before the first `phase` step.
pub const INITIAL_PHASE: &str = "boot";
/// Largest scenario file accepted, in bytes.
pub const MAX_SCENARIO_BYTES: usize = 1 << 20;
/// Default guest memory in MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 256;
/// Default boot timeout.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most virtual CPUs a QEMU target may have.
pub const MAX_CPUS: u32 = 64;

/// One parsed and validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `name:`, or the file stem of the source name.
    pub name: String,
    /// `release:` label (one accepted snapshot per release).
    pub release: Option<String>,
    /// The scenario file's display name (used in messages).
    pub source_name: String,
    /// The directory relative paths were resolved against.
    pub base_dir: PathBuf,
    /// What to run.
    pub target: Target,
    /// Where the canary values come from.
    pub identity: IdentitySpec,
    /// The virtual network's behaviour.
    pub network: NetworkSpec,
    /// What to do, in order (never empty).
    pub steps: Vec<Step>,
    /// What the device must not do.
    pub policy: Policy,
    /// Claims of a patch, checked against the run.
    pub claims: Vec<Claim>,
    canaries: Option<Identity>,
    src: Source,
}

/// Positions kept for checks that happen after parsing.
#[derive(Clone, Default)]
struct Source {
    text: String,
    identity_pos: yaml::Pos,
    files: Vec<FileRef>,
    refs: Vec<NameRef>,
    host: Vec<HostAccess>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Source { .. }")
    }
}

#[derive(Debug, Clone)]
struct FileRef {
    what: &'static str,
    path: PathBuf,
    pos: yaml::Pos,
}

/// A use of an identity name that can only be checked once the identity is known.
#[derive(Debug, Clone)]
enum NameRef {
    Template(VarRef, yaml::Pos),
    Canary(String, yaml::Pos),
}

/// `s` as a plain name for a run folder: letters, digits, `.`, `_` and `-` (anything else becomes
/// `_`), never empty, `.` or `..` (those become `scenario`).
pub fn plain_name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() || n == "." || n == ".." {
        "scenario".to_string()
    } else {
        n
    }
}

/// A kind of access to the host that a scenario may need, each allowed by `--allow-host=KIND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostAccessKind {
    /// Commands run on the host: `host:` steps, ssh `options` (`ProxyCommand=…`), `install`.
    Commands,
    /// Host files outside the scenario's folder (absolute paths or paths climbing with `..`):
    /// kernel, initrd, disk, identity file, capture, ssh key, files copied into a container,
    /// app packages, serial ports.
    Files,
    /// A `netns` program that keeps root (`root: true`) instead of running unprivileged.
    Root,
    /// A host network interface telltale takes over for a `device` (`traffic: {interface: …}`): its
    /// addresses are flushed and ARP and IPv6 turned off on it, so whatever else used it loses it.
    Network,
}

impl HostAccessKind {
    /// Every kind, in the order `--allow-host` lists them.
    pub const ALL: [HostAccessKind; 4] = [
        HostAccessKind::Commands,
        HostAccessKind::Files,
        HostAccessKind::Root,
        HostAccessKind::Network,
    ];

    /// The name used by `--allow-host=NAME`.
    pub fn name(self) -> &'static str {
        match self {
            HostAccessKind::Commands => "commands",
            HostAccessKind::Files => "files",
            HostAccessKind::Root => "root",
            HostAccessKind::Network => "network",
        }
    }

    /// The kind named `name` (as in `--allow-host=NAME`).
    pub fn from_name(name: &str) -> Option<HostAccessKind> {
        HostAccessKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One thing a scenario would do on (or read from) the host, where the scenario says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAccess {
    /// Which permission it needs.
    pub kind: HostAccessKind,
    /// 1-based line in the scenario file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What it does, in words (`runs \`rm -rf /tmp/x\` on the host`).
    pub what: String,
}

/// The kinds of host access the command line allows (`--allow-host`); none by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostAllow {
    /// `host:` steps, ssh `options`, `install`.
    pub commands: bool,
    /// Files outside the scenario's folder.
    pub files: bool,
    /// `netns` programs that keep root.
    pub root: bool,
    /// Host interfaces taken over for a `device`.
    pub network: bool,
}

impl HostAllow {
    /// Everything allowed (`--allow-host` without a list).
    pub fn all() -> HostAllow {
        HostAllow {
            commands: true,
            files: true,
            root: true,
            network: true,
        }
    }

    /// Is `kind` allowed?
    pub fn allows(&self, kind: HostAccessKind) -> bool {
        match kind {
            HostAccessKind::Commands => self.commands,
            HostAccessKind::Files => self.files,
            HostAccessKind::Root => self.root,
            HostAccessKind::Network => self.network,
        }
    }

    /// Allow `kind` too.
    pub fn with(mut self, kind: HostAccessKind) -> HostAllow {
        match kind {
            HostAccessKind::Commands => self.commands = true,
            HostAccessKind::Files => self.files = true,
            HostAccessKind::Root => self.root = true,
            HostAccessKind::Network => self.network = true,
        }
        self
    }
}

/// The kind of target: what runs the firmware, and how telltale drives it. Every kind's
/// network is the vnet; a capture is analysed as if a live run had recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A QEMU virtual machine booted from a kernel (+ initrd, + disk).
    Qemu(QemuTarget),
    /// A container image run through the Docker engine, with no Docker network.
    Container(ContainerTarget),
    /// A host program in a fresh network namespace.
    Netns(NetnsTarget),
    /// An attached device driven over ssh, adb or a serial port.
    Device(DeviceTarget),
    /// An existing capture, analysed without running anything.
    Capture(CaptureTarget),
}

impl Target {
    /// The QEMU target, if this is one.
    pub fn as_qemu(&self) -> Option<&QemuTarget> {
        match self {
            Target::Qemu(q) => Some(q),
            _ => None,
        }
    }

    /// The QEMU target, if this is one, to change (e.g. another release's image).
    pub fn as_qemu_mut(&mut self) -> Option<&mut QemuTarget> {
        match self {
            Target::Qemu(q) => Some(q),
            _ => None,
        }
    }

    /// The kind's name as written in `kind:`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Qemu(_) => "qemu",
            Target::Container(_) => "container",
            Target::Netns(_) => "netns",
            Target::Device(_) => "device",
            Target::Capture(_) => "capture",
        }
    }

    /// How long booting (the first `wait_for`) may take.
    pub fn boot_timeout(&self) -> Duration {
        match self {
            Target::Qemu(q) => q.boot_timeout,
            Target::Container(c) => c.boot_timeout,
            Target::Netns(n) => n.boot_timeout,
            Target::Device(d) => d.boot_timeout,
            Target::Capture(_) => DEFAULT_BOOT_TIMEOUT,
        }
    }
}

/// Target kinds of the language.
pub const TARGET_KINDS: [&str; 5] = ["qemu", "container", "netns", "device", "capture"];

/// A container image (`kind: container`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerTarget {
    /// Image name (`telltale-demo/cloudsync`); local images are never pulled.
    pub image: String,
    /// Image tag (default `latest`).
    pub tag: String,
    /// Command replacing the image's (empty: the image's own).
    pub cmd: Vec<String>,
    /// Environment variables, in file order.
    pub env: Vec<(String, String)>,
    /// Host files copied into the container before it starts: (host path, container path).
    pub copy: Vec<(PathBuf, String)>,
    /// How long the first `wait_for` may take (default 60 s).
    pub boot_timeout: Duration,
}

/// A host program in a network namespace (`kind: netns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsTarget {
    /// The program: a shell command line or an argument vector.
    pub command: HostCommand,
    /// Environment variables added to telltale's, in file order.
    pub env: Vec<(String, String)>,
    /// Working directory, relative to the run folder's `home/` (made fresh per run) and never
    /// leaving it; default: `home/` itself.
    pub workdir: Option<PathBuf>,
    /// `root: true`: the program keeps root and its capabilities (needs `--allow-host=root`);
    /// by default it runs as an unprivileged user without capabilities.
    pub root: bool,
    /// How long the first `wait_for` may take (default 60 s).
    pub boot_timeout: Duration,
    /// `user:` the unprivileged user the program and `shell` steps run as (a name in `/etc/passwd`,
    /// `UID` or `UID:GID`, never 0); default `nobody` (65534). Ignored with `root: true`.
    pub user: Option<String>,
}

/// An attached device (`kind: device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTarget {
    /// How telltale runs commands and copies files on it.
    pub control: DeviceControl,
    /// How its traffic reaches telltale.
    pub traffic: DeviceTraffic,
    /// A command on the device whose output is the console `wait_for` reads
    /// (`logcat`, `logread -f`); none: the console is the serial port, or empty.
    pub log: Option<String>,
    /// How long the first `wait_for` may take (default 60 s).
    pub boot_timeout: Duration,
}

/// The control channel of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceControl {
    /// `ssh user@host -p port` (key authentication, batch mode).
    Ssh {
        /// Host name or address (reached over a management link, not the vnet).
        host: String,
        /// Port (default 22).
        port: u16,
        /// User (default root).
        user: String,
        /// Private key file (resolved path).
        identity: Option<PathBuf>,
        /// `ssh -o` options (`UserKnownHostsFile=…`), before telltale's defaults.
        options: Vec<String>,
    },
    /// `adb -s SERIAL`.
    Adb {
        /// The device's serial (`adb devices`).
        serial: String,
    },
    /// A serial console with a shell on it.
    Serial {
        /// The tty (`/dev/ttyUSB0`).
        path: PathBuf,
        /// Baud rate (default 115200).
        baud: u32,
    },
}

/// How a device's traffic reaches telltale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceTraffic {
    /// The device's gateway is this host interface; telltale serves the vnet on it.
    Interface(String),
    /// The device records its own capture; telltale pulls the file at the end.
    Pull {
        /// The capture's path on the device.
        path: String,
        /// A command started on the device before the steps (e.g. `tcpdump -w …`).
        start: Option<String>,
    },
}

/// An existing capture (`kind: capture`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureTarget {
    /// The capture file (pcap or pcapng; resolved path).
    pub file: PathBuf,
    /// When each phase began, in order (the initial phase covers what comes before).
    pub phases: Vec<(String, PhaseStart)>,
}

/// When a phase of a replayed capture began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseStart {
    /// This long after the capture's first frame.
    Offset(Duration),
    /// At this time (nanoseconds since the Unix epoch, as in the capture's timestamps).
    EpochNanos(u64),
}

/// A QEMU virtual machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuTarget {
    /// Guest architecture (default x86_64).
    pub arch: Arch,
    /// Kernel image (resolved path).
    pub kernel: PathBuf,
    /// Initial ramdisk (resolved path).
    pub initrd: Option<PathBuf>,
    /// Disk image, copied per run by the runner (resolved path).
    pub disk: Option<PathBuf>,
    /// Kernel command line; `None` lets the runner choose (serial console).
    pub append: Option<String>,
    /// Guest memory in MiB (default 256).
    pub memory_mib: u32,
    /// Virtual CPUs (default 1).
    pub cpus: u32,
    /// How long booting may take before the run fails (default 60 s).
    pub boot_timeout: Duration,
}

/// Guest CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `x86_64`
    X86_64,
    /// `aarch64`
    Aarch64,
}

impl Arch {
    /// Names accepted in `arch:`.
    pub const NAMES: [&'static str; 2] = ["x86_64", "aarch64"];

    /// The name as written in scenarios (and QEMU's `qemu-system-<arch>`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

/// Where the canary values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySpec {
    /// An identity file (same format as `telltale analyze --identity`), resolved path.
    File(PathBuf),
    /// Values generated from a seed and/or given in the scenario.
    Inline(InlineIdentity),
}

/// `identity: { seed, generate, values }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineIdentity {
    /// Seed of the generated values.
    pub seed: Option<u64>,
    /// What to generate (all four kinds when `seed` is given without `generate`).
    pub generate: Vec<Generate>,
    /// Given values, in file order.
    pub values: Vec<(String, VarValue)>,
}

/// The virtual network's behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSpec {
    /// DNS answers.
    pub dns: DnsSpec,
    /// Offer IPv6 to the guest (default false).
    pub ipv6: bool,
    /// HTTP sink answers, first match wins; unmatched requests get [`HttpResponse::default`].
    pub responses: Vec<HttpResponse>,
    /// TLS: ended by the vnet with the run's CA (default) or not, and where not.
    pub tls: TlsSpec,
}

/// `network.tls`: whether the vnet ends TLS with the run's CA, and the destinations it never
/// intercepts (written `tls: intercept`, `tls: off`, or `tls: {mode: intercept, except: [..]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSpec {
    /// End TLS with the run's CA (`intercept`, the default) or only read the ClientHello (`off`).
    pub intercept: bool,
    /// Destinations never intercepted: host globs (SNI or the vnet's DNS name) or addresses.
    pub except: Vec<String>,
}

impl Default for TlsSpec {
    fn default() -> Self {
        TlsSpec {
            intercept: true,
            except: Vec::new(),
        }
    }
}

impl NetworkSpec {
    /// The configured answer for a request, if a rule matches (first match wins).
    pub fn response_for(&self, host: &str, path: &str) -> Option<&HttpResponse> {
        self.responses
            .iter()
            .find(|r| r.host.matches(host) && r.path.as_ref().is_none_or(|p| p.matches(path)))
    }
}

/// DNS behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsSpec {
    /// Names answered with a fixed address, in file order.
    pub overrides: Vec<(Glob, IpAddr)>,
    /// Names answered with NXDOMAIN.
    pub nxdomain: Vec<Glob>,
}

/// One HTTP sink rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Host (glob).
    pub host: Glob,
    /// Path (glob); `None` matches every path.
    pub path: Option<Glob>,
    /// Status code (default 200).
    pub status: u16,
    /// Body (default `{}`).
    pub body: String,
    /// Content type (default `application/json`).
    pub content_type: String,
}

impl Default for HttpResponse {
    /// The answer to requests no rule matches: 200, `{}`, `application/json`.
    fn default() -> HttpResponse {
        HttpResponse {
            host: Glob::new("*"),
            path: None,
            status: 200,
            body: "{}".to_string(),
            content_type: "application/json".to_string(),
        }
    }
}

/// One step of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `name:` (for messages).
    pub name: Option<String>,
    /// `timeout:`; `None` lets the runner choose.
    pub timeout: Option<Duration>,
    /// What the step does.
    pub kind: StepKind,
    /// 1-based line of the step in the scenario file.
    pub line: usize,
}

impl Step {
    /// `step 4 (idle, line 23)` or `step 4 "unlock" (shell, line 23)`; `index` is 0-based.
    pub fn label(&self, index: usize) -> String {
        match &self.name {
            Some(n) => format!(
                "step {} {n:?} ({}, line {})",
                index + 1,
                self.kind.keyword(),
                self.line
            ),
            None => format!(
                "step {} ({}, line {})",
                index + 1,
                self.kind.keyword(),
                self.line
            ),
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepKind {
    /// Wait until the serial console matches.
    WaitFor(Pattern),
    /// Write a file on the guest; `content` is a template over identity values.
    Plant {
        /// Absolute guest path.
        path: String,
        /// The file's content.
        content: Template,
    },
    /// Run a shell command on the guest.
    Shell {
        /// The command (a template).
        command: Template,
        /// Required exit status; not checked when `None`.
        expect_exit: Option<i32>,
        /// Regex the output must match; not checked when `None`.
        expect_output: Option<Pattern>,
    },
    /// Findings from here on belong to this phase.
    Phase(String),
    /// Let the device run.
    Idle(Duration),
    /// Reboot the guest, optionally waiting for a console line.
    Reboot {
        /// Regex on the serial console that means "back up".
        wait_for: Option<Pattern>,
    },
    /// A command on the host.
    Host(HostCommand),
    /// Fail the run if a canary was uploaded (so far).
    ExpectNoUpload(UploadCheck),
    /// Install an app package on an adb device (`adb install -r`; resolved host path).
    Install(PathBuf),
}

impl StepKind {
    /// The step keys, as written in scenarios.
    pub const NAMES: [&'static str; 9] = [
        "wait_for",
        "plant",
        "shell",
        "phase",
        "idle",
        "reboot",
        "host",
        "expect_no_upload",
        "install",
    ];

    /// The key of this kind.
    pub fn keyword(&self) -> &'static str {
        match self {
            StepKind::WaitFor(_) => "wait_for",
            StepKind::Plant { .. } => "plant",
            StepKind::Shell { .. } => "shell",
            StepKind::Phase(_) => "phase",
            StepKind::Idle(_) => "idle",
            StepKind::Reboot { .. } => "reboot",
            StepKind::Host(_) => "host",
            StepKind::ExpectNoUpload(_) => "expect_no_upload",
            StepKind::Install(_) => "install",
        }
    }
}

/// A command run on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCommand {
    /// `host: "cmd args"`: run with `sh -c`.
    Shell(String),
    /// `host: [cmd, arg, …]`: run directly.
    Argv(Vec<String>),
}

/// `expect_no_upload: { canaries, phase, destinations }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadCheck {
    /// Which canaries.
    pub canaries: CanarySelection,
    /// Only uploads in this phase (declared by an earlier step); `None`: any phase so far.
    pub phase: Option<String>,
    /// Only uploads to these destinations; empty: anywhere.
    pub destinations: Vec<Glob>,
}

/// Which canaries a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanarySelection {
    /// `[all]`
    All,
    /// Identity keys (`contacts`: every item) or item names (`contacts[1]`).
    Names(Vec<String>),
}

impl CanarySelection {
    /// Is `canary` selected?
    pub fn includes(&self, canary: &Canary) -> bool {
        match self {
            CanarySelection::All => true,
            CanarySelection::Names(n) => n.iter().any(|n| *n == canary.key || *n == canary.name),
        }
    }
}

/// What the device must not do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Forbidden uploads.
    pub forbid: Vec<ForbidRule>,
    /// When set, contacting any other destination is a violation.
    pub allow_destinations: Option<Vec<Glob>>,
    /// Upper bounds on bytes sent per destination (glob), in file order.
    pub max_upload_bytes: Vec<(Glob, u64)>,
    /// Unread traffic the scenario's author accepts explicitly (so it does not make a rule inconclusive).
    pub accept_unread: Vec<AcceptUnread>,
}

impl Policy {
    /// Whether the scenario wrote no rule at all (then the default applies: no canary may leave the device).
    pub fn is_empty(&self) -> bool {
        self.forbid.is_empty()
            && self.allow_destinations.is_none()
            && self.max_upload_bytes.is_empty()
    }
}

/// "Traffic to these destinations that telltale cannot read, for these reasons, up to this many bytes, is
/// accepted": the policy's explicit exception to "unread means inconclusive".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptUnread {
    /// Destinations (empty: any).
    pub destinations: Vec<Glob>,
    /// Reasons, as the report names them (`tls`, `encrypted`…); empty: any reason.
    pub reasons: Vec<String>,
    /// At most this many unread bytes per destination (none: no limit).
    pub max_bytes: Option<u64>,
    /// 1-based line.
    pub line: usize,
}

impl AcceptUnread {
    /// Whether `bytes` unread bytes to `destination` for `reason` are accepted.
    pub fn accepts(&self, destination: &str, reason: &str, bytes: u64) -> bool {
        (self.destinations.is_empty() || self.destinations.iter().any(|g| g.matches(destination)))
            && (self.reasons.is_empty() || self.reasons.iter().any(|r| r == reason))
            && self.max_bytes.is_none_or(|m| bytes <= m)
    }
}

/// "These canaries must not go to these destinations in these phases."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbidRule {
    /// Which canaries.
    pub canaries: CanarySelection,
    /// Empty: any destination.
    pub destinations: Vec<Glob>,
    /// Empty: any phase.
    pub phases: Vec<String>,
    /// 1-based line of the rule.
    pub line: usize,
}

impl ForbidRule {
    /// Does the rule cover an upload of `canary` to `destination` during `phase`?
    pub fn covers(&self, canary: &Canary, destination: &str, phase: &str) -> bool {
        self.canaries.includes(canary)
            && (self.destinations.is_empty()
                || self.destinations.iter().any(|g| g.matches(destination)))
            && (self.phases.is_empty() || self.phases.iter().any(|p| p == phase))
    }
}

/// A claim of a patch ("CVE-2014-0001: contacts are no longer uploaded without consent").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Identifier (unique in the scenario).
    pub id: String,
    /// The claim in words.
    pub says: String,
    /// What the claim forbids.
    pub forbid: ForbidRule,
    /// 1-based line of the claim.
    pub line: usize,
}

impl Scenario {
    /// Parse and validate a scenario (pure: no file access). `source_name` is used in messages and
    /// gives the default name (its file stem); relative paths are resolved against `base_dir`.
    ///
    /// Names used in templates, policy, claims and `expect_no_upload` steps are checked against
    /// the identity here when it is inline; for `identity: FILE` they are checked by
    /// [`Scenario::attach_identity`] (which [`Scenario::load`] calls).
    pub fn parse(
        text: &str,
        source_name: &str,
        base_dir: &Path,
    ) -> Result<Scenario, ScenarioError> {
        parse::scenario(text, source_name, base_dir)
    }

    /// Read, parse and fully check a scenario file: named files exist, the host access it needs is granted by
    /// `allow` ([`Scenario::check_host_access`]), the identity file (if any) is valid and defines every name
    /// the scenario uses. Host access is checked before the identity file is read, so that a file outside the
    /// scenario's folder (`identity: /etc/shadow`) is never opened, nor quoted in an error, without the flag.
    pub fn load(path: &Path, allow: HostAllow) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        let text =
            crate::canary::identity::read_bounded(path, MAX_SCENARIO_BYTES).map_err(|e| {
                ScenarioError::whole(
                    ScenarioErrorKind::Io,
                    &name,
                    "cannot read scenario",
                    format!("cannot read {name}: {e}"),
                )
            })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut s = Scenario::parse(&text, &name, base)?;
        s.check_files()?;
        s.note_linked_files();
        s.check_host_access(allow)?;
        if let IdentitySpec::File(p) = &s.identity {
            let id_text = crate::canary::identity::read_bounded(
                p,
                crate::canary::identity::MAX_IDENTITY_BYTES,
            )
            .map_err(|e| {
                s.error_at(
                    ScenarioErrorKind::MissingFile,
                    s.src.identity_pos,
                    "cannot read identity file",
                    format!("cannot read {}: {e}", p.display()),
                )
            })?;
            s.attach_identity(&id_text)?;
        }
        Ok(s)
    }

    /// Everything the scenario would do on or read from the host beyond its own folder, in file
    /// order (what `telltale validate` lists).
    pub fn host_access(&self) -> &[HostAccess] {
        &self.src.host
    }

    /// Refuse the scenario if it needs a kind of host access that `allow` does not grant: the
    /// error points at the first such place and names the `--allow-host` flag that allows it.
    pub fn check_host_access(&self, allow: HostAllow) -> Result<(), ScenarioError> {
        let denied: Vec<&HostAccess> = self
            .src
            .host
            .iter()
            .filter(|h| !allow.allows(h.kind))
            .collect();
        let Some(first) = denied.first() else {
            return Ok(());
        };
        let more = match denied.len() - 1 {
            0 => String::new(),
            n => format!(
                " ({n} more place{} need{} host access; `telltale validate --allow-host` lists them all)",
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "" }
            ),
        };
        Err(ScenarioError::at(
            ScenarioErrorKind::HostAccess,
            &self.source_name,
            &self.src.text,
            first.line,
            first.column,
            "host access not allowed",
            format!(
                "{}; telltale does this only with `--allow-host={}` (or `--allow-host` for every kind){more}",
                first.what,
                first.kind.name()
            ),
        ))
    }

    /// A path written inside the scenario's folder that is a link out of it reaches the host
    /// just the same: note it as host access (files that do not resolve were refused before).
    fn note_linked_files(&mut self) {
        let Ok(base) = std::fs::canonicalize(&self.base_dir) else {
            return;
        };
        for f in &self.src.files {
            let noted = self.src.host.iter().any(|h| {
                h.kind == HostAccessKind::Files && (h.line, h.column) == (f.pos.line, f.pos.col)
            });
            if noted {
                continue;
            }
            if let Ok(real) = std::fs::canonicalize(&f.path) {
                if !real.starts_with(&base) {
                    self.src.host.push(HostAccess {
                        kind: HostAccessKind::Files,
                        line: f.pos.line,
                        column: f.pos.col,
                        what: format!(
                            "{} {} is a link to the host file {}, outside the scenario's folder",
                            f.what,
                            f.path.display(),
                            real.display()
                        ),
                    });
                }
            }
        }
    }

    /// Check that every file the scenario names (kernel, initrd, disk, identity file) exists
    /// and is a regular file (or a link to one).
    pub fn check_files(&self) -> Result<(), ScenarioError> {
        for f in &self.src.files {
            let problem = match std::fs::metadata(&f.path) {
                Ok(m) if m.is_file() => continue,
                Ok(_) => "is not a file",
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
                Err(_) => "cannot be read",
            };
            return Err(self.error_at(
                ScenarioErrorKind::MissingFile,
                f.pos,
                "missing file",
                format!(
                    "the {} {} {problem} (paths are relative to the scenario's directory)",
                    f.what,
                    f.path.display()
                ),
            ));
        }
        Ok(())
    }

    /// Use the text of the identity file named by `identity: FILE`: validate it with
    /// [`Identity::from_yaml`] and check every name the scenario uses against it.
    /// For inline identities this only re-checks the names.
    pub fn attach_identity(&mut self, identity_text: &str) -> Result<(), ScenarioError> {
        let IdentitySpec::File(path) = &self.identity else {
            self.check_names()?;
            return self.fill_target_templates();
        };
        let shown = path.display().to_string();
        let id = Identity::from_yaml(identity_text, &shown).map_err(|e| {
            let mut err = self.error_at(
                ScenarioErrorKind::Identity,
                self.src.identity_pos,
                e.title,
                e.message.clone(),
            );
            err.identity = Some(Box::new(e));
            err
        })?;
        self.canaries = Some(id);
        self.check_names()?;
        self.fill_target_templates()
    }

    /// Fills `{{name}}` templates in the text the target receives (a program's command line and
    /// environment, a container's command and environment, a kernel command line, a device's log command):
    /// checked at parse time, filled once the identity is known, so a program never sees `{{imei}}`.
    pub(crate) fn fill_target_templates(&mut self) -> Result<(), ScenarioError> {
        let Some(vars) = self.template_vars() else {
            return Ok(());
        };
        let source = self.source_name.clone();
        let fill = |text: &mut String| -> Result<(), ScenarioError> {
            if !text.contains("{{") {
                return Ok(());
            }
            let t = Template::parse(text).map_err(|e| {
                ScenarioError::whole(
                    ScenarioErrorKind::InvalidTemplate,
                    &source,
                    "invalid template",
                    e.message,
                )
            })?;
            *text = t.render(&vars).map_err(|m| {
                ScenarioError::whole(
                    ScenarioErrorKind::UnknownTemplateName,
                    &source,
                    "unknown identity value in template",
                    m,
                )
            })?;
            Ok(())
        };
        let command = |c: &mut HostCommand| -> Result<(), ScenarioError> {
            match c {
                HostCommand::Shell(s) => fill(s),
                HostCommand::Argv(v) => v.iter_mut().try_for_each(fill),
            }
        };
        match &mut self.target {
            Target::Netns(n) => {
                command(&mut n.command)?;
                n.env.iter_mut().try_for_each(|(_, v)| fill(v))?;
            }
            Target::Container(c) => {
                c.cmd.iter_mut().try_for_each(fill)?;
                c.env.iter_mut().try_for_each(|(_, v)| fill(v))?;
            }
            Target::Qemu(q) => {
                if let Some(a) = q.append.as_mut() {
                    fill(a)?;
                }
            }
            Target::Device(d) => {
                if let Some(l) = d.log.as_mut() {
                    fill(l)?;
                }
            }
            Target::Capture(_) => {}
        }
        Ok(())
    }

    /// The identity: built at parse time for inline identities, after
    /// [`Scenario::attach_identity`] for identity files.
    pub fn identity(&self) -> Option<&Identity> {
        self.canaries.as_ref()
    }

    /// The template variables of the identity (see [`Scenario::identity`]).
    pub fn template_vars(&self) -> Option<TemplateVars> {
        self.canaries.as_ref().map(TemplateVars::from_identity)
    }

    /// Fill a template with identity values.
    pub fn render_template(&self, template: &Template) -> Result<String, ScenarioError> {
        let Some(vars) = self.template_vars() else {
            return Err(ScenarioError::whole(
                ScenarioErrorKind::Identity,
                &self.source_name,
                "identity not loaded",
                "the identity file has not been read yet (use Scenario::load or attach_identity)"
                    .to_string(),
            ));
        };
        template.render(&vars).map_err(|m| {
            ScenarioError::whole(
                ScenarioErrorKind::UnknownTemplateName,
                &self.source_name,
                "unknown identity value in template",
                m,
            )
        })
    }

    /// The phases, in order of first declaration, starting with [`INITIAL_PHASE`].
    pub fn phases(&self) -> Vec<&str> {
        let mut out = vec![INITIAL_PHASE];
        for s in &self.steps {
            if let StepKind::Phase(p) = &s.kind {
                if !out.contains(&p.as_str()) {
                    out.push(p);
                }
            }
        }
        out
    }

    fn error_at(
        &self,
        kind: ScenarioErrorKind,
        pos: yaml::Pos,
        title: &'static str,
        message: String,
    ) -> ScenarioError {
        ScenarioError::at(
            kind,
            &self.source_name,
            &self.src.text,
            pos.line,
            pos.col,
            title,
            message,
        )
    }

    /// Check template and canary names against the identity.
    fn check_names(&self) -> Result<(), ScenarioError> {
        let Some(id) = &self.canaries else {
            return Ok(());
        };
        let vars = TemplateVars::from_identity(id);
        for r in &self.src.refs {
            match r {
                NameRef::Template(v, pos) => {
                    if let Err(m) = vars.get(v) {
                        return Err(self.error_at(
                            ScenarioErrorKind::UnknownTemplateName,
                            *pos,
                            "unknown identity value in template",
                            m,
                        ));
                    }
                }
                NameRef::Canary(name, pos) => {
                    if id
                        .canaries
                        .iter()
                        .any(|c| c.key == *name || c.name == *name)
                    {
                        continue;
                    }
                    let mut keys: Vec<&str> = Vec::new();
                    for c in &id.canaries {
                        if !keys.contains(&c.key.as_str()) {
                            keys.push(&c.key);
                        }
                    }
                    // `key[i]` past the end of a list key.
                    let items = name
                        .strip_suffix(']')
                        .and_then(|n| n.split_once('['))
                        .map(|(k, _)| {
                            (
                                k,
                                id.canaries
                                    .iter()
                                    .filter(|c| c.key == k && c.name != k)
                                    .count(),
                            )
                        })
                        .filter(|(_, n)| *n > 0);
                    let hint = match (items, did_you_mean(name, keys.iter().copied())) {
                        (Some((k, n)), _) => format!(
                            "; `{k}` has {n} item{} (indices start at 0)",
                            if n == 1 { "" } else { "s" }
                        ),
                        (None, Some(k)) => format!("; did you mean `{k}`?"),
                        (None, None) => {
                            format!("; the identity defines {}, or write `all`", list(&keys))
                        }
                    };
                    return Err(self.error_at(
                        ScenarioErrorKind::UnknownCanary,
                        *pos,
                        "unknown canary",
                        format!("the identity has no canary `{name}`{hint}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE_ID: &str = "target: {kind: qemu, kernel: k}\nidentity: ids.yaml\nsteps:\n  - plant: {path: /d/i, content: \"{{imei}}\"}\npolicy:\n  forbid: [{canaries: [contacts]}]\n";

    #[test]
    fn attach_identity_validates_the_file_and_the_names() {
        let mut s = Scenario::parse(FILE_ID, "s.yaml", Path::new("/b")).unwrap();
        assert!(s.identity().is_none());
        // A broken identity file: its own error, located in that file.
        let e = s.attach_identity("imei: \"12\"\n").unwrap_err();
        assert_eq!(e.kind, ScenarioErrorKind::Identity);
        assert_eq!(e.identity.as_ref().unwrap().line, 1);
        assert_eq!((e.line, e.column), (2, 11));
        assert!(
            e.to_string()
                .starts_with("error: identity value too short\n  --> /b/ids.yaml:1:7"),
            "{e}"
        );
        // Valid file, but `contacts` is not in it.
        let e = s
            .attach_identity("imei: \"356938035643809\"\n")
            .unwrap_err();
        assert_eq!(e.kind, ScenarioErrorKind::UnknownCanary);
        assert_eq!((e.line, e.column), (6, 24));
        s.attach_identity("imei: \"356938035643809\"\ncontacts: [Ottoline Vanstone]\n")
            .unwrap();
        let StepKind::Plant { content, .. } = &s.steps[0].kind else {
            panic!()
        };
        assert_eq!(s.render_template(content).unwrap(), "356938035643809");
        assert_eq!(s.template_vars().unwrap().names().count(), 2);
    }

    #[test]
    fn rules_and_responses() {
        let id = Identity::from_pairs(&[("imei", "356938035643809")]);
        let mut c = id.canaries[0].clone();
        let r = ForbidRule {
            canaries: CanarySelection::Names(vec!["contacts".into()]),
            destinations: vec![],
            phases: vec![],
            line: 1,
        };
        assert!(!r.covers(&c, "a.example", "boot"));
        c.key = "contacts".into();
        c.name = "contacts[0]".into();
        assert!(r.covers(&c, "a.example", "boot"));
        assert!(CanarySelection::Names(vec!["contacts[0]".into()]).includes(&c));
        assert!(!CanarySelection::Names(vec!["contacts[1]".into()]).includes(&c));
        assert!(CanarySelection::All.includes(&c));

        let net = NetworkSpec {
            responses: vec![HttpResponse {
                host: Glob::new("*.v.example"),
                path: Some(Glob::new("/a/*")),
                status: 204,
                ..HttpResponse::default()
            }],
            ..NetworkSpec::default()
        };
        assert_eq!(net.response_for("x.v.example", "/a/b").unwrap().status, 204);
        assert!(net.response_for("x.v.example", "/b").is_none());
        let d = HttpResponse::default();
        assert_eq!(
            (d.status, d.body.as_str(), d.content_type.as_str()),
            (200, "{}", "application/json")
        );
    }

    #[test]
    fn step_labels() {
        let s = Step {
            name: None,
            timeout: None,
            kind: StepKind::Idle(Duration::from_secs(1)),
            line: 23,
        };
        assert_eq!(s.label(3), "step 4 (idle, line 23)");
        let n = Step {
            name: Some("unlock".into()),
            ..s
        };
        assert_eq!(n.label(0), "step 1 \"unlock\" (idle, line 23)");
        assert_eq!(Arch::Aarch64.as_str(), "aarch64");
    }
}
