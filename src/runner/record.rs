//! The run's records: `report.json` ([`RunReport`]) and `manifest.json` ([`Manifest`]).
//!
//! This module owns the data model of one run, the contract that `telltale run` writes and
//! that later commands (`check`, `compare`, `verify`) and people read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::verdict::Judgement;
use super::RunOptions;
use crate::report::Report;
use crate::scenario::Scenario;
use crate::vnet::{VnetEvent, VnetStats};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every policy rule and claim held.
    Pass,
    /// A policy rule or claim was violated.
    Fail,
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

/// One step as it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    /// 1-based position.
    pub index: usize,
    /// `step 3 (shell, line 20)`.
    pub label: String,
    /// Step kind.
    pub kind: &'static str,
    /// Start (ns since the epoch, the capture's clock).
    pub start_ns: u64,
    /// End.
    pub end_ns: u64,
    /// `ok`, `failed` or `interrupted`.
    pub outcome: &'static str,
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Format version of this file.
    pub format_version: u32,
    /// telltale's version.
    pub telltale_version: String,
    /// Which scenario.
    pub scenario: ScenarioInfo,
    /// How it ended.
    pub verdict: Verdict,
    /// Why it could not be carried out, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Start of the run.
    pub start_ns: u64,
    /// End of the run.
    pub end_ns: u64,
    /// Steps as they happened.
    pub steps: Vec<StepRecord>,
    /// Phases with their time spans.
    pub phases: Vec<PhaseSpan>,
    /// Policy rules, in-line checks and claims.
    pub judgement: Judgement,
    /// The analysis engine's report of the capture (findings carry their phase).
    pub analysis: Report,
    /// The network's log.
    pub vnet: VnetRecord,
}

/// A `report.json` read back (by `check`, `compare`, `verify`): the parts later commands use.
/// Unknown fields are ignored, so older and newer reports read alike.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredRun {
    /// Which scenario.
    pub scenario: ScenarioInfo,
    /// How it ended.
    pub verdict: Verdict,
    /// Why it could not be carried out.
    #[serde(default)]
    pub error: Option<String>,
    /// Start of the run.
    pub start_ns: u64,
    /// End of the run.
    pub end_ns: u64,
    /// Phases with their time spans.
    pub phases: Vec<PhaseSpan>,
    /// Policy, checks and claims, as written.
    pub judgement: Judgement,
    /// The analysis report.
    pub analysis: Report,
}

impl StoredRun {
    /// Reads `report.json` from a run's folder, or a report file given directly.
    pub fn load(path: &Path) -> Result<StoredRun, String> {
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

/// SHA-256 of a file, streamed.
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
        path: path.display().to_string(),
        sha256: hex(&h.finalize()),
        bytes,
    })
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    String::from_utf8(crate::canary::forms::hex(bytes)).unwrap_or_default()
}

impl Manifest {
    /// Hashes everything once the run's artifacts are written (`report.json` included).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        scenario: &Scenario,
        launch: &[String],
        images: &[PathBuf],
        dir: &Path,
        opts: &RunOptions,
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
            command_line: opts.command_line.clone(),
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
