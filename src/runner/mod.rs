//! Running a scenario: boot the target on a fresh vnet, drive it through the steps,
//! stop everything, analyse the capture, judge it, and write the artifacts.
//!
//! This module owns the run's lifecycle and its artifacts folder:
//! `capture.pcap` (every frame, both directions), `console.log`, `report.json` (the analysis
//! report plus steps, phases with time spans, the vnet's log, policy and claim results) and
//! `manifest.json` (hashes of the scenario and of every image, telltale's version, the
//! command line, timings). Async lives here and in the target and vnet drivers only; the
//! analysis and the judgement are the library's sans-IO parts.
//!
//! Failures are typed: an invalid scenario never gets here (exit 2); a target that does not
//! boot, hangs, crashes or whose step fails ends the run as an infrastructure failure
//! (exit 3) naming the step, with the console log and everything captured so far kept;
//! Ctrl-C stops QEMU and the vnet cleanly and keeps the artifacts too.

/// The run record moved to the top-level [`crate::record`]; this name stays for the renderers.
pub use crate::record;
mod replay;
pub mod tls;
pub mod verdict;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::bytes::Regex;
use tokio::sync::watch;

use crate::driver::container::{Container, ContainerSpec};
use crate::driver::device::{Device, DeviceSpec, Traffic};
use crate::driver::netns::{NetnsProgram, NetnsSpec, RunAs};
use crate::driver::qemu::{describe_status, Qemu, QemuSpec};
use crate::driver::{Driver, TargetError};
use crate::scenario::{HostCommand, Scenario, StepKind, Target};
use crate::vnet::run::{now_nanos, VnetHandle};
use crate::vnet::{DnsConfig, SinkResponse, VnetConfig};
use crate::{Config, Matcher};
pub use record::{Manifest, PhaseSpan, RunReport, StepRecord, Verdict};

/// Default timeout of steps that wait for the guest (shell, plant).
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Default timeout of host commands.
pub const DEFAULT_HOST_TIMEOUT: Duration = Duration::from_secs(120);
/// Kernel command line when the scenario gives none.
pub const DEFAULT_APPEND: &str = "console=ttyS0 quiet loglevel=3";
/// The TLS key log a `netns` target's programs write (`SSLKEYLOGFILE` points at it unless the scenario sets it),
/// in the run folder; the run's analysis decrypts with it.
pub const KEYLOG_FILE: &str = "tls-keys.log";
/// Largest run key log read.
pub const MAX_RUN_KEYLOG_BYTES: u64 = 256 << 20;

/// Where a `netns` target's key log is: the scenario's own `SSLKEYLOGFILE` (relative to the program's working
/// folder), or [`KEYLOG_FILE`] in the run folder. `None` for other targets.
fn run_keylog_path(scenario: &Scenario, dir: &Path) -> Option<PathBuf> {
    let Target::Netns(n) = &scenario.target else {
        return None;
    };
    Some(match n.env.iter().find(|(k, _)| k == "SSLKEYLOGFILE") {
        Some((_, v)) => {
            let home = match &n.workdir {
                Some(w) => dir.join("home").join(w),
                None => dir.join("home"),
            };
            home.join(v)
        }
        None => absolute(&dir.join(KEYLOG_FILE)),
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The run's key log as the analysis uses it (empty when the programs wrote none, or it is too large: then a
/// line of the progress says so).
fn run_keylog(
    scenario: &Scenario,
    dir: &Path,
    progress: &dyn Progress,
) -> crate::proto::keylog::KeyLog {
    let mut keys = crate::proto::keylog::KeyLog::new();
    let Some(path) = run_keylog_path(scenario, dir) else {
        return keys;
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.len() > MAX_RUN_KEYLOG_BYTES => progress.note(
            &scenario.name,
            &format!(
                "the run's TLS key log {} is larger than {} MiB and was not used",
                path.display(),
                MAX_RUN_KEYLOG_BYTES >> 20
            ),
        ),
        Ok(_) => {
            if let Ok(bytes) = std::fs::read(&path) {
                let name = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                keys.add_bytes(
                    &bytes,
                    &format!("the run's key log {name} (SSLKEYLOGFILE of the target)"),
                );
            }
        }
        Err(_) => {}
    }
    keys
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The scenario's artifacts folder (created; files of an earlier run are replaced).
    pub dir: PathBuf,
    /// Accelerators to try, in order.
    pub accel: Vec<String>,
    /// The command line, for the manifest.
    pub command_line: Vec<String>,
    /// Leave containers in place after the run (`--keep`).
    pub keep: bool,
}

/// Where a run is (for progress display).
pub trait Progress: Send + Sync {
    /// A step started.
    fn step(&self, scenario: &str, index: usize, total: usize, label: &str);
    /// Something worth a line.
    fn note(&self, scenario: &str, message: &str);
    /// The run ended (or could not run); `message` is its verdict or why.
    fn finished(&self, _scenario: &str, _message: &str) {}
}

/// A progress sink that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&self, _: &str, _: usize, _: usize, _: &str) {}
    fn note(&self, _: &str, _: &str) {}
}

/// Why a run could not be carried out (beyond the target's own failures).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The target failed during a step.
    #[error("{step}: {source}")]
    Step {
        /// Step label (`step 3 (shell, line 20)`).
        step: String,
        /// What happened.
        #[source]
        source: TargetError,
    },
    /// Setting up or tearing down failed.
    #[error("{0}")]
    Setup(String),
    /// Ctrl-C.
    #[error("interrupted during {0}")]
    Interrupted(String),
}

/// A run that got as far as writing its artifacts. A run whose target failed or that was
/// interrupted still ends here, with [`Verdict::Error`] or [`Verdict::Interrupted`] and the
/// error in words in [`RunReport::error`]; `Err` is only for runs that could not start.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run's report (also in `report.json`).
    pub report: RunReport,
    /// The artifacts folder.
    pub dir: PathBuf,
}

/// The vnet configuration a scenario asks for.
pub fn vnet_config(scenario: &Scenario) -> VnetConfig {
    let net = &scenario.network;
    let dns = DnsConfig {
        overrides: net
            .dns
            .overrides
            .iter()
            .filter_map(|(g, ip)| match ip {
                std::net::IpAddr::V4(v4) => Some((g.as_str().to_string(), *v4)),
                std::net::IpAddr::V6(_) => None,
            })
            .collect(),
        nxdomain: net
            .dns
            .nxdomain
            .iter()
            .map(|g| g.as_str().to_string())
            .collect(),
        ..DnsConfig::default()
    };
    VnetConfig {
        dns,
        responses: net
            .responses
            .iter()
            .map(|r| SinkResponse {
                host: Some(r.host.as_str().to_string()),
                path: r.path.as_ref().map(|p| p.as_str().to_string()),
                status: r.status,
                body: r.body.clone().into_bytes(),
                content_type: r.content_type.clone(),
            })
            .collect(),
        tls: crate::vnet::TlsPolicy {
            intercept: net.tls.intercept,
            except: net.tls.except.clone(),
        },
        ..VnetConfig::default()
    }
}

/// A fresh, private folder for the run's sockets (created with a random name and mode 0700, never reused),
/// removed with everything in it when the run ends.
fn socket_dir() -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt as _;
    tempfile::Builder::new()
        .prefix("tt-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// What was started for the run's target, for the manifest.
struct Launched {
    /// How the target was started, in words and arguments (QEMU's command line, the image…).
    launch: Vec<String>,
    /// Files the target was built from (kernel, initrd, disk, a capture), hashed.
    images: Vec<PathBuf>,
}

/// Refuses, before anything is started, a run whose target needs a privilege telltale
/// does not have.
fn preflight(target: &Target) -> Result<(), TargetError> {
    match target {
        Target::Container(_) => crate::driver::container::check_privileges(),
        Target::Netns(_) => crate::driver::netns::check_privileges(),
        Target::Device(d) => {
            crate::driver::device::check_privileges(&device_spec(d), crate::driver::is_root())
        }
        _ => Ok(()),
    }
}

/// Checks the inputs a run reads before anything starts: a `capture` target's file must be a pcap or
/// pcapng capture ([`crate::Error::NotACapture`], bad input, exit 2), not a run that fails halfway.
pub fn check_inputs(scenario: &Scenario) -> Result<(), crate::Error> {
    if let Target::Capture(c) = &scenario.target {
        crate::capture::CaptureReader::open(&c.file)?;
    }
    Ok(())
}

/// Runs one scenario to the end. `cancel` turning true means Ctrl-C.
pub async fn run_scenario(
    scenario: &Scenario,
    opts: &RunOptions,
    progress: Arc<dyn Progress>,
    mut cancel: watch::Receiver<bool>,
) -> Result<RunOutcome, RunError> {
    let started = now_nanos();
    let wall = std::time::Instant::now();
    let identity = scenario
        .identity()
        .cloned()
        .ok_or_else(|| RunError::Setup("the scenario's identity was not loaded".into()))?;
    if let Target::Capture(c) = &scenario.target {
        return replay::replay_capture(scenario, c, &identity, opts, progress, wall);
    }
    preflight(&scenario.target).map_err(|e| RunError::Step {
        step: "checking privileges".into(),
        source: e,
    })?;
    let dir = &opts.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| RunError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    for f in [
        "capture.pcap",
        "console.log",
        "report.json",
        "manifest.json",
        "disk.img",
        "device.pcap",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let sockets = socket_dir()
        .map_err(|e| RunError::Setup(format!("cannot create a socket directory: {e}")))?;
    let mut vcfg = vnet_config(scenario);
    // The run's CA, in the run folder before the target starts (so it can be told to trust it).
    let ca = crate::vnet::RunCa::generate()
        .map_err(|e| RunError::Setup(format!("cannot make the run's TLS CA: {e}")))?;
    tls::write_ca(&ca, dir)
        .map_err(|e| RunError::Setup(format!("cannot write the run's TLS CA: {e}")))?;
    vcfg.tls_ca = Some(Arc::new(ca));
    let pcap = dir.join("capture.pcap");
    let vnet = VnetHandle::start(vcfg, &pcap)
        .map_err(|e| RunError::Setup(format!("cannot start the network: {e}")))?;

    let mut steps: Vec<StepRecord> = Vec::new();
    let mut phases: Vec<PhaseSpan> = vec![PhaseSpan {
        name: crate::scenario::INITIAL_PHASE.to_string(),
        start_ns: started,
        end_ns: 0,
    }];
    let mut failure: Option<RunError> = None;
    progress.note(
        &scenario.name,
        &format!("starting the {} target", scenario.target.kind()),
    );
    let (driver, launched) = match start_target(scenario, opts, &vnet, sockets.path()).await {
        Ok((d, l)) => (Some(d), l),
        Err((e, l)) => {
            failure = Some(RunError::Step {
                step: "starting the target".into(),
                source: e,
            });
            (None, l)
        }
    };
    let mut driver = driver;
    // A device that records its own traffic: its capture is the run's (the vnet saw none).
    let mut own_capture: Option<PathBuf> = None;
    let boot_pattern = scenario.steps.iter().find_map(|s| match &s.kind {
        StepKind::WaitFor(p) => Some(p.as_str().to_string()),
        _ => None,
    });
    if let Some(drv) = driver.as_mut() {
        let total = scenario.steps.len();
        for (i, step) in scenario.steps.iter().enumerate() {
            let label = step.label(i);
            progress.step(&scenario.name, i, total, &label);
            let t0 = now_nanos();
            let fut = execute_step(
                scenario,
                step,
                drv.as_mut(),
                scenario.target.boot_timeout(),
                boot_pattern.as_deref(),
                dir,
            );
            let result = tokio::select! {
                r = fut => r,
                _ = cancel.wait_for(|c| *c) => Err(StepFailure::Interrupted),
            };
            let t1 = now_nanos();
            let (outcome, detail) = match &result {
                Ok(d) => (record::StepOutcome::Ok, d.clone()),
                Err(StepFailure::Interrupted) => (record::StepOutcome::Interrupted, None),
                Err(StepFailure::Target(e)) => (record::StepOutcome::Failed, Some(e.to_string())),
            };
            steps.push(StepRecord {
                index: i + 1,
                label: label.clone(),
                kind: step.kind.keyword().to_string(),
                start_ns: t0,
                end_ns: t1,
                outcome,
                detail,
            });
            if let StepKind::Phase(name) = &step.kind {
                if let Some(last) = phases.last_mut() {
                    last.end_ns = t0;
                }
                phases.push(PhaseSpan {
                    name: name.clone(),
                    start_ns: t0,
                    end_ns: 0,
                });
            }
            match result {
                Ok(_) => {}
                Err(StepFailure::Interrupted) => {
                    failure = Some(RunError::Interrupted(label));
                    break;
                }
                Err(StepFailure::Target(e)) => {
                    failure = Some(RunError::Step {
                        step: label,
                        source: e,
                    });
                    break;
                }
            }
        }
        if drv.records_own_capture() {
            progress.note(&scenario.name, "pulling the device's capture");
            let dest = dir.join("device.pcap");
            match drv.pull_capture(&dest).await {
                Ok(()) => own_capture = Some(dest),
                Err(e) => {
                    failure.get_or_insert(RunError::Step {
                        step: "pulling the device's capture".into(),
                        source: e,
                    });
                }
            }
        }
        progress.note(&scenario.name, "stopping the target");
        drv.stop().await;
    }
    drop(driver);
    let ended = now_nanos();
    if let Some(last) = phases.last_mut() {
        last.end_ns = ended;
    }
    let summary = vnet
        .stop()
        .await
        .map_err(|e| RunError::Setup(format!("stopping the network: {e}")))?;
    if let Some(own) = own_capture {
        std::fs::rename(&own, &pcap).map_err(|e| {
            RunError::Setup(format!(
                "cannot move {} to {}: {e}",
                own.display(),
                pcap.display()
            ))
        })?;
    }

    let vnet_record = record::VnetRecord {
        stats: summary.stats,
        frames_recorded: summary.frames_recorded,
        frames_dropped: summary.frames_dropped,
        events: summary.events,
        port_errors: summary.port_errors,
    };
    conclude(
        scenario,
        &identity,
        Concluding {
            opts,
            pcap: &pcap,
            phases,
            steps,
            failure,
            started,
            ended,
            vnet: vnet_record,
            launched,
            wall,
        },
        progress.as_ref(),
    )
}

/// What a run hands to [`conclude`].
struct Concluding<'a> {
    opts: &'a RunOptions,
    pcap: &'a Path,
    phases: Vec<PhaseSpan>,
    steps: Vec<StepRecord>,
    failure: Option<RunError>,
    started: u64,
    ended: u64,
    vnet: record::VnetRecord,
    launched: Launched,
    wall: std::time::Instant,
}

/// Analyses the capture (whatever happened before), judges it, and writes `report.json`
/// and `manifest.json`.
fn conclude(
    scenario: &Scenario,
    identity: &crate::Identity,
    c: Concluding<'_>,
    progress: &dyn Progress,
) -> Result<RunOutcome, RunError> {
    let dir = &c.opts.dir;
    progress.note(&scenario.name, "analysing the capture");
    let matcher = Arc::new(Matcher::new(identity));
    let cfg = Config {
        phases: c
            .phases
            .iter()
            .map(|p| (p.start_ns, p.name.clone()))
            .collect(),
        keys: Arc::new(run_keylog(scenario, dir, progress)),
        ..Config::default()
    };
    let mut analysis = crate::analyze_file(c.pcap, matcher.clone(), cfg, |_| {})
        .map_err(|e| RunError::Setup(format!("analysing {}: {e}", c.pcap.display())))?;
    // What the vnet's TLS endpoint adds: refusals as unread spans, intercepted plaintext searched.
    tls::add_vnet_tls(&mut analysis, &c.vnet.events, &matcher, &c.phases);
    let observed = verdict::Observed {
        phases: &c.phases,
        completed: c.failure.is_none(),
    };
    let judgement = verdict::judge(scenario, identity, &analysis, &observed);
    let stopped = c.failure.as_ref().map(|e| match e {
        RunError::Interrupted(_) => Verdict::Interrupted,
        _ => Verdict::Error,
    });
    let verdict = verdict::run_verdict(stopped, &judgement);
    let report = RunReport {
        schema: record::SCHEMA,
        format_version: 1,
        telltale_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: record::ScenarioInfo::of(scenario),
        verdict,
        error: c.failure.as_ref().map(|e| e.to_string()),
        start_ns: c.started,
        end_ns: c.ended,
        steps: c.steps,
        phases: c.phases,
        judgement,
        analysis,
        vnet: c.vnet,
    };
    write_json(&dir.join("report.json"), &report)?;
    let manifest = Manifest::build(
        scenario,
        &c.launched.launch,
        &c.launched.images,
        dir,
        &c.opts.command_line,
        c.started,
        c.ended,
        c.wall.elapsed(),
    )
    .map_err(|e| RunError::Setup(format!("writing the manifest: {e}")))?;
    write_json(&dir.join("manifest.json"), &manifest)?;
    Ok(RunOutcome {
        report,
        dir: dir.clone(),
    })
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), RunError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| RunError::Setup(format!("cannot write {}: {e}", path.display())))?;
    bytes.push(b'\n');
    crate::record::write_atomic(path, &bytes)
        .map_err(|e| RunError::Setup(format!("cannot write {}: {e}", path.display())))
}

enum StepFailure {
    Target(TargetError),
    Interrupted,
}

impl From<TargetError> for StepFailure {
    fn from(e: TargetError) -> Self {
        StepFailure::Target(e)
    }
}

fn bytes_regex(pattern: &str) -> Result<Regex, TargetError> {
    Regex::new(pattern).map_err(|e| TargetError::Guest(format!("invalid pattern /{pattern}/: {e}")))
}

/// Starts the scenario's target on `vnet`. On failure the error comes with what was
/// attempted, for the manifest.
async fn start_target(
    scenario: &Scenario,
    opts: &RunOptions,
    vnet: &VnetHandle,
    sockets: &Path,
) -> Result<(Box<dyn Driver>, Launched), (TargetError, Launched)> {
    let dir = &opts.dir;
    let console = dir.join("console.log");
    match &scenario.target {
        Target::Qemu(q) => {
            let net_sock = sockets.join("net.sock");
            let qmp_sock = sockets.join("qmp.sock");
            let mut launched = Launched {
                launch: Vec::new(),
                images: [Some(&q.kernel), q.initrd.as_ref(), q.disk.as_ref()]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
            };
            let disk = match &q.disk {
                Some(src) => {
                    let dst = dir.join("disk.img");
                    if let Err(e) = std::fs::copy(src, &dst) {
                        let msg = format!(
                            "cannot copy the disk image {} to {}: {e}",
                            src.display(),
                            dst.display()
                        );
                        return Err((TargetError::Io(msg), launched));
                    }
                    Some(dst)
                }
                None => None,
            };
            let spec = QemuSpec {
                arch: q.arch.as_str().to_string(),
                kernel: q.kernel.clone(),
                initrd: q.initrd.clone(),
                disk,
                append: q
                    .append
                    .clone()
                    .unwrap_or_else(|| DEFAULT_APPEND.to_string()),
                memory_mib: u64::from(q.memory_mib),
                cpus: q.cpus,
                accel: opts.accel.clone(),
                mac: "52:54:00:74:74:10".into(),
                run_as: crate::driver::is_root().then(|| "nobody".to_string()),
            };
            launched.launch = std::iter::once(spec.program())
                .chain(spec.args(Path::new("NET.sock"), Path::new("QMP.sock")))
                .collect();
            if let Err(e) = vnet.listen_qemu(&net_sock) {
                return Err((
                    TargetError::Io(format!("cannot start the network: {e}")),
                    launched,
                ));
            }
            match Qemu::start(&spec, &net_sock, &qmp_sock, &console).await {
                Ok(q) => Ok((Box::new(q), launched)),
                Err(e) => Err((e, launched)),
            }
        }
        Target::Netns(n) => {
            let launched = Launched {
                launch: match &n.command {
                    HostCommand::Argv(v) => v.clone(),
                    HostCommand::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
                },
                images: Vec::new(),
            };
            let run_as = if n.root {
                RunAs::Root
            } else {
                match RunAs::user(n.user.as_deref()) {
                    Ok(u) => u,
                    Err(e) => return Err((e, launched)),
                }
            };
            // The program's home is made fresh for each run: what a program left in it (a link to a host file
            // where a `plant` will write, an old key log) must not reach the next run.
            let home = dir.join("home");
            if home.symlink_metadata().is_ok() {
                // `remove_dir_all` does not follow links; a link in place of the folder is removed itself.
                let gone = if home.is_symlink() {
                    std::fs::remove_file(&home)
                } else {
                    std::fs::remove_dir_all(&home)
                };
                if let Err(e) = gone {
                    return Err((
                        TargetError::Io(format!("cannot clear {}: {e}", home.display())),
                        launched,
                    ));
                }
            }
            let ca_pem = dir.join(tls::CA_PEM_FILE);
            let fill = |t: &String| tls::fill_run_templates(t, &ca_pem);
            // The CA for common clients first, so that the scenario's own variables win.
            let mut env: Vec<(String, String)> = tls::ca_env(&ca_pem)
                .into_iter()
                .chain(n.env.iter().map(|(k, v)| (k.clone(), fill(v))))
                .collect();
            // TLS keys of curl, Python, NSS, Chromium, rustls…: into the run folder, for the analysis. The file is
            // made here and given to the program's user, who cannot create files in the run folder.
            if !n.env.iter().any(|(k, _)| k == "SSLKEYLOGFILE") {
                let path = absolute(&dir.join(KEYLOG_FILE));
                let made = std::fs::File::create(&path)
                    .map_err(|e| TargetError::Io(format!("cannot make {}: {e}", path.display())))
                    .and_then(|_| run_as.give(&path));
                if let Err(e) = made {
                    return Err((e, launched));
                }
                env.push(("SSLKEYLOGFILE".into(), path.display().to_string()));
            }
            let spec = NetnsSpec {
                command: match &n.command {
                    HostCommand::Shell(s) => HostCommand::Shell(fill(s)),
                    HostCommand::Argv(v) => HostCommand::Argv(v.iter().map(fill).collect()),
                },
                env,
                // The scenario checked that `workdir` is relative and does not climb.
                workdir: match &n.workdir {
                    Some(w) => dir.join("home").join(w),
                    None => dir.join("home"),
                },
                run_as,
            };
            match NetnsProgram::start(&spec, vnet, &console).await {
                Ok(p) => Ok((Box::new(p), launched)),
                Err(e) => Err((e, launched)),
            }
        }
        Target::Container(c) => {
            let spec = ContainerSpec {
                image: c.image.clone(),
                tag: c.tag.clone(),
                cmd: c.cmd.clone(),
                env: c.env.clone(),
                copy: c.copy.clone(),
                keep: opts.keep,
                user: None,
            };
            let launched = Launched {
                launch: std::iter::once(format!("docker:{}", spec.reference()))
                    .chain(c.cmd.iter().cloned())
                    .collect(),
                images: c.copy.iter().map(|(p, _)| p.clone()).collect(),
            };
            match Container::start(&spec, vnet, &console).await {
                Ok(p) => Ok((Box::new(p), launched)),
                Err(e) => Err((e, launched)),
            }
        }
        Target::Device(d) => {
            let spec = device_spec(d);
            let launched = Launched {
                launch: describe_device(d),
                images: Vec::new(),
            };
            match Device::start(&spec, vnet, &console).await {
                Ok(p) => Ok((Box::new(p), launched)),
                Err(e) => Err((e, launched)),
            }
        }
        Target::Capture(_) => Err((
            TargetError::Guest("a `capture` target runs nothing".into()),
            Launched {
                launch: Vec::new(),
                images: Vec::new(),
            },
        )),
    }
}

/// A device target in words, for the manifest.
fn describe_device(d: &crate::scenario::DeviceTarget) -> Vec<String> {
    use crate::scenario::{DeviceControl, DeviceTraffic};
    vec![
        match &d.control {
            DeviceControl::Ssh {
                host, port, user, ..
            } => format!("ssh {user}@{host}:{port}"),
            DeviceControl::Adb { serial } => format!("adb -s {serial}"),
            DeviceControl::Serial { path, baud } => format!("serial {} {baud}", path.display()),
        },
        match &d.traffic {
            DeviceTraffic::Interface(i) => format!("gateway on {i}"),
            DeviceTraffic::Pull { path, .. } => format!("capture pulled from {path}"),
        },
    ]
}

/// The device driver's view of a `device` target.
fn device_spec(d: &crate::scenario::DeviceTarget) -> DeviceSpec {
    use crate::scenario::DeviceTraffic;
    DeviceSpec {
        control: d.control.clone(),
        traffic: match &d.traffic {
            DeviceTraffic::Interface(i) => Traffic::Interface(i.clone()),
            DeviceTraffic::Pull { path, start } => Traffic::PullCapture {
                remote_path: path.clone(),
                start: start.clone(),
            },
        },
        log_command: d.log.clone(),
    }
}

/// Carries out one step; `Ok(Some(detail))` for steps with something to show.
async fn execute_step(
    scenario: &Scenario,
    step: &crate::scenario::Step,
    qemu: &mut dyn Driver,
    boot_timeout: Duration,
    boot_pattern: Option<&str>,
    dir: &Path,
) -> Result<Option<String>, StepFailure> {
    let timeout = step.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
    match &step.kind {
        StepKind::WaitFor(p) => {
            let t = step.timeout.unwrap_or(boot_timeout);
            let m = qemu.wait_for(&bytes_regex(p.as_str())?, t).await?;
            Ok(Some(format!("matched {m:?}")))
        }
        StepKind::Plant { path, content } => {
            let text = scenario
                .render_template(content)
                .map_err(|e| TargetError::Guest(e.to_string()))?;
            let text = tls::fill_run_templates(&text, &dir.join(tls::CA_PEM_FILE));
            qemu.plant(path, text.as_bytes(), timeout).await?;
            Ok(Some(format!("{} bytes to {path}", text.len())))
        }
        StepKind::Shell {
            command,
            expect_exit,
            expect_output,
        } => {
            let cmd = scenario
                .render_template(command)
                .map_err(|e| TargetError::Guest(e.to_string()))?;
            let cmd = tls::fill_run_templates(&cmd, &dir.join(tls::CA_PEM_FILE));
            let out = qemu.shell(&cmd, timeout).await?;
            if let Some(code) = expect_exit {
                if out.status != *code {
                    return Err(TargetError::Guest(format!(
                        "`{cmd}` exited with status {}, expected {code}; output:\n{}",
                        out.status, out.output
                    ))
                    .into());
                }
            }
            if let Some(p) = expect_output {
                if !p.is_match(&out.output) {
                    return Err(TargetError::Guest(format!(
                        "the output of `{cmd}` does not match /{}/; output:\n{}",
                        p.as_str(),
                        out.output
                    ))
                    .into());
                }
            }
            Ok(Some(format!("status {}", out.status)))
        }
        StepKind::Phase(_) => Ok(None),
        StepKind::Idle(d) => {
            tokio::select! {
                _ = tokio::time::sleep(*d) => Ok(None),
                e = qemu.ended() => Err(e.into()),
            }
        }
        StepKind::Reboot { wait_for } => {
            qemu.reboot(step.timeout.unwrap_or(boot_timeout)).await?;
            let pattern = wait_for.as_ref().map(|p| p.as_str()).or(boot_pattern);
            match pattern {
                Some(p) => {
                    let t = step.timeout.unwrap_or(boot_timeout);
                    let m = qemu.wait_for(&bytes_regex(p)?, t).await?;
                    Ok(Some(format!("back up: {m:?}")))
                }
                None => Ok(None),
            }
        }
        StepKind::Host(cmd) => {
            let t = step.timeout.unwrap_or(DEFAULT_HOST_TIMEOUT);
            let mut c = match cmd {
                HostCommand::Shell(s) => {
                    let mut c = tokio::process::Command::new("sh");
                    c.arg("-c").arg(s);
                    c
                }
                HostCommand::Argv(v) => {
                    let mut c = tokio::process::Command::new(
                        v.first().map(String::as_str).unwrap_or("true"),
                    );
                    c.args(v.iter().skip(1));
                    c
                }
            };
            c.current_dir(&scenario.base_dir)
                .env("TELLTALE_RUN_DIR", dir)
                .env("TELLTALE_CAPTURE", dir.join("capture.pcap"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            let child = c
                .spawn()
                .map_err(|e| TargetError::Io(format!("cannot run the host command: {e}")))?;
            // Whatever the command started in the background ends with it: its process group is killed
            // when the step ends, however it ends (the group outlives its leader).
            let _group = child.id().map(ProcessGroup);

            let out = tokio::time::timeout(t, child.wait_with_output())
                .await
                .map_err(|_| TargetError::Timeout {
                    what: "the host command to finish".into(),
                    after: t,
                    tail: String::new(),
                })?
                .map_err(|e| TargetError::Io(format!("cannot run the host command: {e}")))?;
            if !out.status.success() {
                return Err(TargetError::Guest(format!(
                    "host command failed ({}): {}",
                    describe_status(out.status),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
                .into());
            }
            Ok(Some(
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            ))
        }
        StepKind::ExpectNoUpload(_) => Ok(Some("checked against the whole run's findings".into())),
        StepKind::Install(package) => {
            qemu.install(package, timeout).await?;
            Ok(Some(format!("installed {}", package.display())))
        }
    }
}

/// A process group killed (SIGKILL) when dropped: what a `host:` step started. Killed right after the step's
/// command was reaped, before the kernel could hand its number to another group.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod socket_dir_tests {
    use std::os::unix::fs::PermissionsExt as _;

    /// The socket folder is new each time (never an existing `tt-<pid>-0` someone else made), private, and gone
    /// with its contents when dropped.
    #[test]
    fn socket_folders_are_fresh_private_and_removed() {
        let a = super::socket_dir().unwrap();
        let b = super::socket_dir().unwrap();
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let inside = a.path().join("net.sock");
        std::fs::write(&inside, b"x").unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }
}
