//! The one persisted model of a run: `report.json` ([`RunReport`]) and `manifest.json` ([`Manifest`]).
//!
//! This module owns the contract that `telltale run` writes and that later commands (`check`, `compare`,
//! `verify`), the renderers and people read. The same types are written and read back (Serialize +
//! Deserialize), so there is one description of the file, typed: verdicts and statuses are enums, not
//! words. `schemas/report.schema.json` describes the JSON; `tests/report_schema.rs` validates real reports
//! against it. [`SCHEMA`] is that file's version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::report::Report;
use crate::scenario::Scenario;
use crate::vnet::{VnetEvent, VnetStats};

/// Version of `schemas/report.schema.json` that [`RunReport`] follows. Adding a field keeps it; removing one
/// or changing what one means raises it.
pub const SCHEMA: u32 = 1;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every policy rule and claim held.
    Pass,
    /// A policy rule or claim was violated.
    Fail,
    /// Nothing was violated, but a rule or claim covers traffic the run could not read (or a phase that
    /// never ran): it cannot be said to hold.
    Inconclusive,
    /// The run could not be carried out (target did not boot, hung, crashed, step failed).
    Error,
    /// Ctrl-C.
    Interrupted,
}

/// Which scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// Release label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Scenario file.
    pub file: String,
}

impl ScenarioInfo {
    /// The scenario's identification as runs record it.
    pub fn of(s: &Scenario) -> ScenarioInfo {
        ScenarioInfo {
            name: s.name.clone(),
            release: s.release.clone(),
            file: s.source_name.clone(),
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It did what it should.
    Ok,
    /// The target failed it (the detail says how).
    Failed,
    /// Ctrl-C came during it.
    Interrupted,
}

/// One step as it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based position.
    pub index: usize,
    /// `step 3 (shell, line 20)`.
    pub label: String,
    /// Step kind (the scenario's keyword: `shell`, `idle`…).
    pub kind: String,
    /// Start (ns since the epoch, the capture's clock).
    pub start_ns: u64,
    /// End.
    pub end_ns: u64,
    /// How it ended.
    pub outcome: StepOutcome,
    /// What it did or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A phase of the run and when it lasted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseSpan {
    /// Phase name (`boot` until the first `phase` step).
    pub name: String,
    /// Start (ns since the epoch).
    pub start_ns: u64,
    /// End.
    pub end_ns: u64,
}

/// The vnet's side of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VnetRecord {
    /// Counters.
    pub stats: VnetStats,
    /// Frames in the capture.
    pub frames_recorded: u64,
    /// Frames a port could not take.
    pub frames_dropped: u64,
    /// Leases, DNS answers, connections, requests received by the sink.
    pub events: Vec<VnetEvent>,
    /// Port failures.
    pub port_errors: Vec<String>,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Version of the JSON Schema this file follows ([`SCHEMA`]); 0 in reports written before it existed.
    #[serde(default)]
    pub schema: u32,
    /// Format version of this file.
    #[serde(default)]
    pub format_version: u32,
    /// telltale's version.
    #[serde(default)]
    pub telltale_version: String,
    /// Which scenario.
    pub scenario: ScenarioInfo,
    /// How it ended.
    pub verdict: Verdict,
    /// Why it could not be carried out, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Start of the run.
    pub start_ns: u64,
    /// End of the run.
    pub end_ns: u64,
    /// Steps as they happened.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// Phases with their time spans.
    pub phases: Vec<PhaseSpan>,
    /// Policy rules, in-line checks and claims.
    pub judgement: Judgement,
    /// The analysis engine's report of the capture (findings carry their phase).
    pub analysis: Report,
    /// The network's log.
    #[serde(default)]
    pub vnet: VnetRecord,
}

/// A `report.json` read back: the same record (kept as a name for the commands that only read).
pub type StoredRun = RunReport;

impl RunReport {
    /// Reads `report.json` from a run's folder, or a report file given directly.
    pub fn load(path: &Path) -> Result<RunReport, String> {
        let file = if path.is_dir() {
            path.join("report.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a telltale run report: {e} (line {}, column {})",
                file.display(),
                e.line(),
                e.column()
            )
        })
    }
}

/// A file and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    /// Path as used.
    pub path: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// `manifest.json`: what was run, with what, by which telltale, and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// telltale's version.
    pub telltale_version: String,
    /// The command line.
    pub command_line: Vec<String>,
    /// The scenario file.
    pub scenario: FileHash,
    /// Kernel, initrd, disk as given by the scenario.
    pub images: Vec<FileHash>,
    /// Artifacts of this run.
    pub artifacts: Vec<FileHash>,
    /// How the target was started: the QEMU command line (without the per-run socket
    /// paths), the container image, the program; empty for a capture.
    pub emulator: Vec<String>,
    /// Start (ns since the epoch).
    pub start_ns: u64,
    /// End.
    pub end_ns: u64,
    /// Wall-clock duration in seconds.
    pub seconds: f64,
}

/// `path` with `.` and `dir/..` pairs removed, without touching the file system (a scenario's
/// `../target/demo-images/vmlinuz` is recorded as `target/demo-images/vmlinuz`, not
/// `scenarios/../target/…`). A leading `..` that nothing cancels is kept.
pub fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// SHA-256 of a file, streamed (its path recorded as [`lexical`] gives it).
pub fn hash_file(path: &Path) -> std::io::Result<FileHash> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileHash {
        path: lexical(path).display().to_string(),
        sha256: hex(&h.finalize()),
        bytes,
    })
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

impl Manifest {
    /// Hashes everything once the run's artifacts are written (`report.json` included).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        scenario: &Scenario,
        launch: &[String],
        images: &[PathBuf],
        dir: &Path,
        command_line: &[String],
        start_ns: u64,
        end_ns: u64,
        elapsed: Duration,
    ) -> std::io::Result<Manifest> {
        let source = Path::new(&scenario.source_name);
        let scenario_hash = hash_file(source)?;
        let images = images
            .iter()
            .map(|p| hash_file(p))
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut artifacts = Vec::new();
        for name in ["capture.pcap", "console.log", "report.json"] {
            let p = dir.join(name);
            if p.exists() {
                artifacts.push(hash_file(&p)?);
            }
        }
        let emulator = launch.to_vec();
        Ok(Manifest {
            telltale_version: env!("CARGO_PKG_VERSION").to_string(),
            command_line: command_line.to_vec(),
            scenario: scenario_hash,
            images,
            artifacts,
            emulator,
            start_ns,
            end_ns,
            seconds: elapsed.as_secs_f64(),
        })
    }
}

// --- The judgement: policy rules, in-line checks and claims as judged (written by `runner::verdict`). ---

/// One finding that breaks a rule, in words and as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Canary name (`contacts[1]`), empty for destination and volume rules.
    pub canary: String,
    /// Encoding chain (`sha1>hex`).
    pub encoding: String,
    /// Destination name (or address).
    pub destination: String,
    /// HTTP method and path, when in HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Phase of the run.
    pub phase: String,
    /// Occurrences.
    pub count: u64,
    /// Frame of the first occurrence in the capture.
    pub packet: u64,
    /// The sentence a person reads.
    pub text: String,
}

/// Which kind of rule a [`RuleResult`] is; written to `report.json` as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A policy `forbid` rule (`forbid`).
    Forbid,
    /// The policy's `allow_destinations` list (`allow_destinations`).
    AllowDestinations,
    /// A policy `max_upload_bytes` limit (`max_upload_bytes`).
    MaxUploadBytes,
    /// An in-line `expect_no_upload` step (`expect_no_upload`).
    ExpectNoUpload,
}

impl RuleKind {
    /// The name as written in scenarios and `report.json` (`forbid`, `allow_destinations`…).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Forbid => "forbid",
            RuleKind::AllowDestinations => "allow_destinations",
            RuleKind::MaxUploadBytes => "max_upload_bytes",
            RuleKind::ExpectNoUpload => "expect_no_upload",
        }
    }
}

impl std::fmt::Display for RuleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A patch claim's verdict; written to `report.json` as `HOLDS` or `BROKEN`.
///
/// A later issue adds an `Inconclusive` state (a run that cannot show the claim either
/// way); code that matches on this enum should keep matching exhaustively so that the
/// new state has to be handled wherever a verdict is shown or counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ClaimStatus {
    /// Everything the claim covers was read, and no upload it covers was seen (`HOLDS`).
    Holds,
    /// An upload the claim covers was seen (`BROKEN`).
    Broken,
    /// No covered upload was seen, but the run could not read everything the claim covers (unread bytes
    /// to a covered destination in a covered phase, a phase that never ran, a run that did not complete):
    /// the claim cannot be said to hold (`INCONCLUSIVE`).
    Inconclusive,
}

impl ClaimStatus {
    /// The word as written in `report.json` (`HOLDS`, `BROKEN`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Holds => "HOLDS",
            ClaimStatus::Broken => "BROKEN",
            ClaimStatus::Inconclusive => "INCONCLUSIVE",
        }
    }
}

impl std::fmt::Display for ClaimStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleResult {
    /// `forbid`, `allow_destinations`, `max_upload_bytes` or `expect_no_upload`.
    pub kind: RuleKind,
    /// The rule in words.
    pub rule: String,
    /// Line of the rule in the scenario.
    pub line: usize,
    /// Whether it held: true only when nothing broke it and everything it covers was read.
    pub held: bool,
    /// What broke it.
    pub violations: Vec<Violation>,
    /// Why it cannot be said to hold although nothing broke it (unread traffic it covers, a phase that never
    /// ran); empty when it held or broke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inconclusive: Vec<String>,
}

impl RuleResult {
    /// Held, broken or inconclusive, in one word.
    pub fn status(&self) -> RuleStatus {
        if !self.violations.is_empty() || (!self.held && self.inconclusive.is_empty()) {
            RuleStatus::Broken
        } else if !self.inconclusive.is_empty() {
            RuleStatus::Inconclusive
        } else {
            RuleStatus::Held
        }
    }
}

/// How a rule came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleStatus {
    /// Nothing broke it, and everything it covers was read.
    Held,
    /// Something broke it.
    Broken,
    /// Nothing broke it, but not everything it covers could be read.
    Inconclusive,
}

/// Outcome of one patch claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// Advisory or ticket.
    pub id: String,
    /// The vendor's words.
    pub says: String,
    /// Line in the scenario.
    pub line: usize,
    /// `HOLDS`, `BROKEN` or `INCONCLUSIVE`.
    pub verdict: ClaimStatus,
    /// What broke it.
    pub violations: Vec<Violation>,
    /// Why it cannot be said to hold (when `INCONCLUSIVE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inconclusive: Vec<String>,
    /// One line a person reads first.
    pub text: String,
}

/// Everything judged: `report.json`'s `judgement`, written by `run` and read back by the
/// reports (HTML, JUnit) of stored runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    /// Policy rules and in-line checks.
    pub rules: Vec<RuleResult>,
    /// Patch claims.
    pub claims: Vec<ClaimResult>,
}

impl Judgement {
    /// Whether anything was violated.
    pub fn violated(&self) -> bool {
        self.broken_rules() > 0 || self.broken_claims() > 0
    }

    /// Whether anything could not be shown either way (and nothing was violated, or also something was).
    pub fn inconclusive(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.status() == RuleStatus::Inconclusive)
            || self
                .claims
                .iter()
                .any(|c| c.verdict == ClaimStatus::Inconclusive)
    }

    /// Rules (and in-line checks) that were broken.
    pub fn broken_rules(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| r.status() == RuleStatus::Broken)
            .count()
    }

    /// Claims that are broken.
    pub fn broken_claims(&self) -> usize {
        self.claims
            .iter()
            .filter(|c| c.verdict == ClaimStatus::Broken)
            .count()
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then renamed over
/// `path`, so a reader (or a full disk, or a crash) never sees a truncated `report.json` or manifest.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod atomic_tests {
    #[test]
    fn write_atomic_replaces_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("tt-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("report.json");
        std::fs::write(&p, "old old old").unwrap();
        super::write_atomic(&p, b"{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{}\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A folder that does not exist: an error, nothing written.
        assert!(super::write_atomic(&dir.join("no/such.json"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod lexical_tests {
    use super::lexical;
    use std::path::Path;

    #[test]
    fn parent_components_are_resolved_in_the_text() {
        let l = |p: &str| lexical(Path::new(p)).display().to_string();
        assert_eq!(
            l("scenarios/../target/demo-images/vmlinuz"),
            "target/demo-images/vmlinuz"
        );
        assert_eq!(l("./a/./b/../c"), "a/c");
        assert_eq!(l("../images/x"), "../images/x", "nothing to cancel: kept");
        assert_eq!(l("/a/../../b"), "/b");
        assert_eq!(l("a/.."), ".");
    }
}
