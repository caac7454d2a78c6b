//! The `telltale` command: argument parsing, output and exit codes over the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode as ProcessExit;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use telltale::scenario::Target;
use telltale::{Config, Error, ExitCode, Identity, Matcher};

const EXIT_CODES: &str = "\
Exit codes:
  0  pass: no canary found (analyze), every policy rule and claim held (run)
  1  a canary was found / a policy rule, claim or snapshot was violated / a claim is STILL LEAKING
  2  bad input: unreadable file, not a capture, invalid identity file or scenario
  3  infrastructure failure: the target did not boot, hung or crashed, or telltale failed
  4  inconclusive: verify could not show a claim either way (or NOT REPRODUCED)
  130  interrupted (Ctrl-C); artifacts of the runs are kept";

/// Finds planted personal data (canaries) in everything a device sent.
#[derive(Parser, Debug)]
#[command(name = "telltale", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse a capture: conversations, DNS, HTTP, TLS, DHCP, and every canary in any encoding.
    #[command(after_help = "\
Examples:
  telltale analyze device.pcap --identity canaries.yaml
  telltale analyze run.pcapng.gz --identity canaries.yaml --format json > report.json

The identity file is YAML mapping names to the fake personal values planted on the device:
  imei: \"356938035643809\"
  phone: \"+15555550123\"
  contacts: [\"Alice Canary\", \"+15555550199\"]
Each value is searched raw, case-insensitively, URL-, base64-, hex-, JSON- and UTF-16-encoded, as md5/sha1/
sha256/sha512 digests (hex or base64), and inside base64-encoded gzip, in every TCP stream (both directions),
UDP payload, decoded HTTP body (chunked, gzip, deflate, br, zstd), query parameter and DNS name.

Exit codes: 0 no canary found, 1 canary found, 2 bad input, 3 internal failure.")]
    Analyze {
        /// Capture file: pcap or pcapng, optionally gzip-compressed.
        capture: PathBuf,
        /// YAML file of canary values to search for.
        #[arg(long, short = 'i', value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the report to FILE instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Colour in text output.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
        /// Cap of each TCP direction's out-of-order buffer, in KiB.
        #[arg(long, default_value_t = 512, value_name = "KIB")]
        reassembly_cap: usize,
    },
    /// Check an identity file and show what will be searched for.
    #[command(
        after_help = "With --patterns, prints every searched byte string (escaped) one per line, e.g. for
`grep -F -f` comparisons. Exit codes: 0 valid, 2 invalid."
    )]
    Identity {
        /// YAML file of canary values.
        file: PathBuf,
        /// Print every searched pattern.
        #[arg(long)]
        patterns: bool,
    },
    /// Run scenarios: boot each target on telltale's network, drive it, capture, analyse, judge.
    #[command(after_help = "\
Examples:
  telltale run scenarios/cloudsync-v1.yaml
  telltale run scenarios/ --jobs 2 --out results/

Each scenario gets an artifacts folder OUT/<name>/ with capture.pcap, console.log, report.json
(analysis, steps, phases, network log, policy and claim results) and manifest.json (hashes of the
scenario and images, telltale's version, timings). See scenarios/README.md for the language.

Exit codes: 0 all policies and claims held, 1 a policy or claim was violated, 2 invalid scenario,
3 infrastructure failure (target did not boot, hung, crashed; the step is named, the console log
kept), 130 interrupted.")]
    Run {
        /// Scenario files, or folders of them (*.yaml, *.yml).
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        flags: RunFlags,
        #[command(flatten)]
        reports: ReportFiles,
    },
    /// Run scenarios and compare each run's privacy behaviour with its accepted snapshot: the CI gate.
    #[command(after_help = "\
For each scenario: run it (as `telltale run`), derive its privacy snapshot (per phase: destinations,
requests, canaries and their encodings, upload size buckets; normalised so that the same firmware gives
the same snapshot every run) and compare it with snapshots/<name>[@<release>].snap.

  fails   a new destination, request, DNS lookup, canary, encoding of a canary, or a larger upload bucket;
          a policy rule or claim violated; no accepted snapshot yet
  passes  unchanged, or only things gone (a note; --strict fails on that too, so the snapshot is updated)

A differing or missing snapshot is written as .snap.new beside it (insta's format: `cargo insta review`
works on it, or `telltale accept`). check never writes accepted snapshots, in CI (CI set) or anywhere.

Exit codes: 0 pass, 1 privacy regression (policy, claim or snapshot), 2 invalid input, 3 infrastructure
failure, 130 interrupted.")]
    Check {
        /// Scenario files, or folders of them.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        /// Folder of accepted snapshots.
        #[arg(long, default_value = "snapshots", value_name = "DIR")]
        snapshots: PathBuf,
        /// Fail when something in the accepted snapshot is gone, too.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        flags: RunFlags,
        #[command(flatten)]
        reports: ReportFiles,
    },
    /// Accept pending snapshots (.snap.new → .snap).
    #[command(after_help = "\
Examples:
  telltale accept                                  # every pending snapshot in snapshots/
  telltale accept scenarios/cloudsync-v3.yaml      # that scenario's

Exit codes: 0 accepted, 2 nothing pending for a named scenario or an invalid scenario.")]
    Accept {
        /// Scenarios whose pending snapshots to accept (default: all pending).
        #[arg(value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        /// Folder of snapshots.
        #[arg(long, default_value = "snapshots", value_name = "DIR")]
        snapshots: PathBuf,
    },
    /// Check a patch's claims: run the scenario on the release before and after the fix.
    #[command(after_help = "\
Each of the scenario's `claims:` gets a verdict:
  FIXED           the leak was seen before the fix and is gone after it
  STILL LEAKING   the leak is still there after the fix
  NOT REPRODUCED  the leak was not seen before the fix either, so the run does not show the fix
  INCONCLUSIVE    a run could not observe it (failed, never reached the phase, traffic encrypted)

--before/--after take a firmware image (it replaces the scenario's initrd, or its disk when it has no
initrd) or another scenario file of the same firmware (its target is used).

Writes an evidence bundle OUT/verify-<scenario>/ and OUT/verify-<scenario>.tar.gz: both runs' captures,
reports, console logs and manifests, the scenario, the verdicts, and MANIFEST.json with the SHA-256 of
every file and of both images, telltale's version and the command line.

Example:
  telltale verify scenarios/cloudsync-v1.yaml --before target/demo-images/cloudsync-v1.cpio.gz \\
      --after target/demo-images/cloudsync-v2-fix.cpio.gz

Exit codes: 0 every claim FIXED, 1 a claim is STILL LEAKING, 2 invalid input, 3 a run failed to start,
4 a claim is INCONCLUSIVE or NOT REPRODUCED.")]
    Verify {
        /// The scenario whose claims are checked.
        scenario: PathBuf,
        /// The release before the fix: an image file, or a scenario file.
        #[arg(long, value_name = "IMAGE_OR_SCENARIO")]
        before: PathBuf,
        /// The release after the fix: an image file, or a scenario file.
        #[arg(long, value_name = "IMAGE_OR_SCENARIO")]
        after: PathBuf,
        /// Where the evidence bundle goes.
        #[arg(long, short, default_value = "telltale-out", value_name = "DIR")]
        out: PathBuf,
        /// QEMU accelerator (see `telltale run --help`).
        #[arg(long, value_enum, default_value_t = Accel::Tcg)]
        accel: Accel,
    },
    /// Compare the canary uploads of two runs: what persisted, what disappeared, what appeared.
    #[command(after_help = "\
RUN_A and RUN_B are artifacts folders of `telltale run` (or their report.json files).

Exit codes: 0 run B uploads no canary, 1 run B still (or newly) uploads a canary, 2 unreadable report.")]
    Compare {
        /// The earlier run.
        run_a: PathBuf,
        /// The later run.
        run_b: PathBuf,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check scenarios without running them.
    #[command(
        after_help = "Exit codes: 0 every scenario is valid, 2 at least one is not (each error is shown with its file, line and column)."
    )]
    Validate {
        /// Scenario files, or folders of them.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
    },
    /// Serve telltale's isolated network to a QEMU you start yourself (until Ctrl-C).
    #[command(after_help = "\
The network gives DHCP (10.77.0.10 and up, gateway and DNS 10.77.0.1), answers every DNS name with
its own address from 198.18.0.0/15, accepts TCP to any address and port (HTTP gets `200 {}`), refuses
other UDP with ICMP port unreachable, and forwards nothing anywhere. Every frame goes to the capture.

Example:
  telltale vnet --listen /tmp/tt.sock --pcap run.pcap &
  qemu-system-x86_64 ... -nodefaults \\
    -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/tt.sock \\
    -device virtio-net-pci,netdev=n0
  telltale analyze run.pcap --identity canaries.yaml")]
    Vnet {
        /// Unix socket to listen on for QEMU's `-netdev stream`.
        #[arg(long, value_name = "SOCKET")]
        listen: PathBuf,
        /// Capture file to write (classic pcap, nanosecond timestamps).
        #[arg(long, value_name = "FILE")]
        pcap: PathBuf,
        /// Also write the network's events (leases, DNS answers, requests) as JSON lines.
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// Print nothing while running.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// Report files for CI and people, written after the runs.
/// How `run` and `check` run scenarios.
#[derive(clap::Args, Debug, Clone)]
struct RunFlags {
    /// Where the artifacts folders go.
    #[arg(long, short, default_value = "telltale-out", value_name = "DIR")]
    out: PathBuf,
    /// Scenarios run at the same time (default: the number of CPUs, at most 4).
    #[arg(long, short, value_name = "N")]
    jobs: Option<usize>,
    /// QEMU accelerator. TCG (software) works everywhere; `auto` tries KVM first and falls
    /// back to TCG only when KVM fails to start, so use it only where KVM really runs guests
    /// (on some CI machines /dev/kvm opens but guests never run).
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    accel: Accel,
    /// Leave `container` targets in place after the run, for debugging (their ids are
    /// printed; remove them with `docker rm -f ID`).
    #[arg(long)]
    keep: bool,
}

#[derive(clap::Args, Debug, Default)]
struct ReportFiles {
    /// JUnit XML: one test case per scenario × claim / policy rule / snapshot (for CI test views).
    #[arg(long, value_name = "FILE")]
    report_junit: Option<PathBuf>,
    /// The full structured result (every run's report, and snapshot outcomes) as JSON.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// One self-contained HTML page: verdicts, claims, a timeline of uploads per destination with phases,
    /// the findings with their evidence, policy results and snapshot diffs. Needs no network to view.
    #[arg(long, value_name = "FILE")]
    report_html: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Accel {
    /// KVM, falling back to TCG when KVM cannot start.
    Auto,
    /// Software emulation only.
    Tcg,
    /// KVM only.
    Kvm,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Format {
    /// Human-readable summary, findings first.
    Text,
    /// The full report as JSON (a stable, documented contract).
    Json,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

fn main() -> ProcessExit {
    let cli = Cli::parse();
    let outcome = std::panic::catch_unwind(move || run(cli));
    let code = match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
        Err(_) => {
            eprintln!("error: telltale failed internally (a bug); please report it with the command line and, if possible, the input");
            ExitCode::Internal
        }
    };
    ProcessExit::from(code as u8)
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Analyze {
            capture,
            identity,
            format,
            output,
            color,
            reassembly_cap,
        } => {
            let identity = match &identity {
                Some(p) => telltale::load_identity(p)?,
                None => {
                    eprintln!("note: no --identity given: reporting traffic only, searching for no canaries");
                    Identity::default()
                }
            };
            let matcher = Arc::new(Matcher::new(&identity));
            let cfg = Config {
                reassembly_cap: reassembly_cap.saturating_mul(1024),
                ..Config::default()
            };
            let progress = Progress::new(&capture);
            let report =
                telltale::analyze_file(&capture, matcher, cfg, |done| progress.update(done))?;
            progress.finish();
            match format {
                // Streamed to the output: the report's JSON is never held in memory whole.
                Format::Json => write_with(output.as_deref(), |w| {
                    serde_json::to_writer_pretty(&mut *w, &report)
                        .map_err(std::io::Error::other)?;
                    w.write_all(b"\n")
                })?,
                Format::Text => {
                    let tty = output.is_none() && std::io::stdout().is_terminal();
                    let color = match color {
                        Color::Always => true,
                        Color::Never => false,
                        Color::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
                    };
                    let text = telltale::report::text::render(&report, color);
                    write_out(output.as_deref(), text.as_bytes())?;
                }
            }
            Ok(if report.has_findings() {
                ExitCode::Found
            } else {
                ExitCode::Clean
            })
        }
        Command::Run {
            scenarios,
            flags,
            reports,
        } => run_scenarios(&scenarios, &flags, &reports),
        Command::Validate { scenarios } => validate(&scenarios),
        Command::Check {
            scenarios,
            snapshots,
            strict,
            flags,
            reports,
        } => check(&scenarios, &snapshots, strict, &flags, &reports),
        Command::Accept {
            scenarios,
            snapshots,
        } => accept(&scenarios, &snapshots),
        Command::Verify {
            scenario,
            before,
            after,
            out,
            accel,
        } => verify(&scenario, &before, &after, &out, accel),
        Command::Compare {
            run_a,
            run_b,
            format,
        } => compare(&run_a, &run_b, format),
        Command::Vnet {
            listen,
            pcap,
            events,
            quiet,
        } => serve_vnet(&listen, &pcap, events.as_deref(), quiet),
        Command::Identity { file, patterns } => {
            let identity = telltale::load_identity(&file)?;
            let matcher = Matcher::new(&identity);
            let mut out = String::new();
            if patterns {
                for p in matcher.patterns() {
                    out.push_str(&String::from_utf8_lossy(&p).escape_debug().to_string());
                    out.push('\n');
                }
            } else {
                for c in &identity.canaries {
                    out.push_str(&format!("{:<16} {}\n", c.name, c.value));
                }
                out.push_str(&format!(
                    "{} canaries, {} distinct patterns searched (longest {} bytes)\n",
                    identity.canaries.len(),
                    matcher.patterns().len(),
                    matcher.max_pattern_len()
                ));
            }
            write_out(None, out.as_bytes())?;
            Ok(ExitCode::Clean)
        }
    }
}

fn write_out(path: Option<&std::path::Path>, bytes: &[u8]) -> Result<(), Error> {
    write_with(path, |w| w.write_all(bytes))
}

/// Writes to FILE or standard output through a buffer; a closed pipe (e.g. `| head`) is not a failure.
fn write_with(
    path: Option<&std::path::Path>,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let result = match path {
        Some(p) => std::fs::File::create(p).and_then(|file| {
            let mut w = std::io::BufWriter::new(file);
            f(&mut w)?;
            w.flush()
        }),
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            f(&mut w).and_then(|_| w.flush())
        }
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && path.is_none() => Ok(()),
        r => r.map_err(Error::Output),
    }
}

/// A progress bar on standard error for large files, when it is a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(path: &std::path::Path) -> Self {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let gz = path.extension().is_some_and(|e| e == "gz");
        if !std::io::stderr().is_terminal() || size < (64 << 20) || gz {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::new(size);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} analysing {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar: Some(bar) }
    }

    fn update(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `telltale vnet`: serve the network on a unix socket until Ctrl-C.
fn serve_vnet(
    listen: &std::path::Path,
    pcap: &std::path::Path,
    events_file: Option<&std::path::Path>,
    quiet: bool,
) -> Result<ExitCode, Error> {
    use telltale::vnet::{run::VnetHandle, VnetConfig};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let io_err = |path: &std::path::Path, source: std::io::Error| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let handle = VnetHandle::start(VnetConfig::default(), pcap).map_err(|e| io_err(pcap, e))?;
        handle.listen_qemu(listen).map_err(|e| io_err(listen, e))?;
        if !quiet {
            eprintln!(
                "telltale vnet: listening on {} (QEMU: -netdev stream,id=n0,server=off,addr.type=unix,addr.path={}); Ctrl-C stops",
                listen.display(),
                listen.display()
            );
        }
        let mut shown = 0usize;
        let mut out = match events_file {
            Some(p) => Some(std::fs::File::create(p).map_err(|e| io_err(p, e))?),
            None => None,
        };
        let mut show = |evs: Vec<telltale::vnet::VnetEvent>| {
            for e in evs {
                let line = serde_json::to_string(&e).unwrap_or_default();
                if !quiet {
                    eprintln!("{line}");
                }
                if let Some(f) = out.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                    let evs = handle.events_since(shown);
                    shown += evs.len();
                    show(evs);
                }
            }
        }
        let summary = handle
            .stop()
            .await
            .map_err(|e| Error::Internal(format!("stopping the network: {e}")))?;
        show(summary.events.get(shown..).map(<[_]>::to_vec).unwrap_or_default());
        let _ = std::fs::remove_file(listen);
        if !quiet {
            eprintln!(
                "telltale vnet: {} frames recorded in {} ({} in, {} out, {} TCP connections)",
                summary.frames_recorded,
                pcap.display(),
                summary.stats.frames_in,
                summary.stats.frames_out,
                summary.stats.connections
            );
        }
        Ok(ExitCode::Clean)
    })
}

/// Scenario files named on the command line: files as given, folders expanded to their
/// `*.yaml` / `*.yml` files in name order.
fn collect_scenarios(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && matches!(f.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::Io {
                    path: p.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the folder has no *.yaml scenario",
                    ),
                });
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Loads every scenario; all errors are shown, not only the first.
fn load_scenarios(paths: &[PathBuf]) -> Result<Vec<telltale::scenario::Scenario>, ExitCode> {
    let files = collect_scenarios(paths).map_err(|e| {
        eprintln!("error: {e}");
        e.exit_code()
    })?;
    let mut ok = Vec::new();
    let mut bad = 0;
    for f in &files {
        match telltale::scenario::Scenario::load(f) {
            Ok(s) => ok.push(s),
            Err(e) => {
                eprintln!("{e}\n");
                bad += 1;
            }
        }
    }
    if bad > 0 {
        eprintln!(
            "{bad} of {} scenario(s) invalid; nothing was run",
            files.len()
        );
        return Err(ExitCode::BadInput);
    }
    Ok(ok)
}

fn validate(paths: &[PathBuf]) -> Result<ExitCode, Error> {
    match load_scenarios(paths) {
        Ok(list) => {
            for s in &list {
                println!(
                    "ok  {} ({}: {} steps, {} policy rules, {} claims)",
                    s.source_name,
                    s.name,
                    s.steps.len(),
                    s.policy.forbid.len()
                        + usize::from(s.policy.allow_destinations.is_some())
                        + s.policy.max_upload_bytes.len(),
                    s.claims.len()
                );
            }
            Ok(ExitCode::Clean)
        }
        Err(code) => Ok(code),
    }
}

/// Progress lines (plain, one per step) or spinners on a terminal.
struct RunProgress {
    bars: Option<(
        indicatif::MultiProgress,
        std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
    )>,
}

impl RunProgress {
    fn new(names: &[String]) -> RunProgress {
        if !std::io::stderr().is_terminal() {
            return RunProgress { bars: None };
        }
        let multi = indicatif::MultiProgress::new();
        let style =
            indicatif::ProgressStyle::with_template("{spinner} {prefix:.bold} [{elapsed}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let mut map = std::collections::HashMap::new();
        for n in names {
            let pb = multi.add(indicatif::ProgressBar::new_spinner());
            pb.set_style(style.clone());
            pb.set_prefix(n.clone());
            pb.set_message("waiting");
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
            map.insert(n.clone(), pb);
        }
        RunProgress {
            bars: Some((multi, std::sync::Mutex::new(map))),
        }
    }

    fn finish(&self, name: &str, msg: &str) {
        match &self.bars {
            Some((_, map)) => {
                if let Some(pb) = map.lock().ok().and_then(|m| m.get(name).cloned()) {
                    pb.finish_with_message(msg.to_string());
                }
            }
            None => eprintln!("[{name}] {msg}"),
        }
    }
}

impl telltale::runner::Progress for RunProgress {
    fn step(&self, scenario: &str, index: usize, total: usize, label: &str) {
        let msg = format!("{}/{total} {label}", index + 1);
        match &self.bars {
            Some((_, map)) => {
                if let Some(pb) = map.lock().ok().and_then(|m| m.get(scenario).cloned()) {
                    pb.set_message(msg);
                }
            }
            None => eprintln!("[{scenario}] {msg}"),
        }
    }

    fn note(&self, scenario: &str, message: &str) {
        match &self.bars {
            Some((_, map)) => {
                if let Some(pb) = map.lock().ok().and_then(|m| m.get(scenario).cloned()) {
                    pb.set_message(message.to_string());
                }
            }
            None => eprintln!("[{scenario}] {message}"),
        }
    }
}

/// One run to carry out: the scenario, its artifacts folder, its display name.
struct Planned {
    scenario: telltale::scenario::Scenario,
    dir: PathBuf,
    name: String,
}

type Finished = (
    String,
    PathBuf,
    Result<telltale::runner::RunOutcome, String>,
);

fn accel_list(accel: Accel) -> Vec<String> {
    match accel {
        Accel::Auto => vec!["kvm".to_string(), "tcg".to_string()],
        Accel::Tcg => vec!["tcg".to_string()],
        Accel::Kvm => vec!["kvm".to_string()],
    }
}

fn default_jobs(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
    })
    .max(1)
}

/// Runs the planned scenarios, `jobs` at a time, with Ctrl-C stopping them cleanly.
fn execute_runs(
    plans: Vec<Planned>,
    jobs: usize,
    accel: Accel,
    keep: bool,
) -> Result<Vec<Finished>, Error> {
    use telltale::runner::{run_scenario, RunOptions};
    let accel = accel_list(accel);
    let command_line: Vec<String> = std::env::args().collect();
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    let progress = Arc::new(RunProgress::new(&names));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(async {
        let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: stopping the targets and keeping the artifacts (Ctrl-C again to abort at once)");
                let _ = cancel_tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(ExitCode::Interrupted as i32);
                }
            }
        });
        let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
        let mut tasks = Vec::new();
        for plan in plans {
            let opts = RunOptions {
                dir: plan.dir,
                accel: accel.clone(),
                command_line: command_line.clone(),
                keep,
            };
            let name = plan.name;
            let scenario = plan.scenario;
            let (sem, progress, cancel) = (sem.clone(), progress.clone(), cancel_rx.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                if *cancel.borrow() {
                    return (name, opts.dir, Err("not started (interrupted)".to_string()));
                }
                let p: Arc<dyn telltale::runner::Progress> = progress.clone();
                let r = run_scenario(&scenario, &opts, p, cancel).await;
                let r = r.map_err(|e| e.to_string());
                let msg = match &r {
                    Ok(o) => format!("{:?}", o.report.verdict).to_lowercase(),
                    Err(e) => format!("error: {e}"),
                };
                progress.finish(&name, &msg);
                (name, opts.dir, r)
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await {
                results.push(r);
            }
        }
        results
    }))
}

/// The worse of two exit codes (what a batch of runs ends with).
fn worse(a: ExitCode, b: ExitCode) -> ExitCode {
    let rank = |c: ExitCode| match c {
        ExitCode::Clean => 0,
        ExitCode::Found => 1,
        ExitCode::Inconclusive => 2,
        ExitCode::Interrupted => 3,
        ExitCode::BadInput => 4,
        ExitCode::Internal => 5,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn run_scenarios(
    paths: &[PathBuf],
    flags: &RunFlags,
    reports: &ReportFiles,
) -> Result<ExitCode, Error> {
    let scenarios = match load_scenarios(paths) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let plans = plan_runs(scenarios, &flags.out);
    let results = execute_runs(plans, default_jobs(flags.jobs), flags.accel, flags.keep)?;
    let code = print_results(&results);
    let entries = results
        .iter()
        .filter_map(|(name, _, r)| r.as_ref().ok().map(|o| (name, o)))
        .map(|(name, o)| Ok((name.clone(), o.dir.clone(), stored(&o.report)?, None)))
        .collect::<Result<Vec<_>, Error>>()?;
    write_reports(reports, &entries)?;
    Ok(code)
}

/// One run as the report files see it: name, artifacts folder, report, snapshot outcome.
type Entry = (
    String,
    PathBuf,
    telltale::runner::record::StoredRun,
    Option<SnapshotOutcome>,
);

fn write_file(path: &std::path::Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the requested report files.
fn write_reports(files: &ReportFiles, entries: &[Entry]) -> Result<(), Error> {
    use telltale::runner::{html, junit};
    if let Some(p) = &files.report_junit {
        let runs: Vec<junit::JunitRun> = entries
            .iter()
            .map(|(_, _, run, snap)| junit::JunitRun {
                run,
                snapshot: snap.as_ref().map(|s| (s.fails, s.diff.clone())),
            })
            .collect();
        let xml = junit::junit(&runs).map_err(|e| Error::Internal(format!("JUnit report: {e}")))?;
        write_file(p, &xml)?;
    }
    if let Some(p) = &files.report_html {
        let runs: Vec<html::HtmlRun> = entries
            .iter()
            .map(|(name, _, run, snap)| html::HtmlRun {
                run,
                snapshot_diff: snap
                    .as_ref()
                    .filter(|s| !s.diff.is_empty())
                    .map(|s| s.diff.clone()),
                title: name.clone(),
            })
            .collect();
        write_file(p, &html::render(&runs))?;
    }
    if let Some(p) = &files.report_json {
        let json: Vec<serde_json::Value> = entries
            .iter()
            .map(|(name, dir, _, snap)| {
                let report = std::fs::read_to_string(dir.join("report.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .unwrap_or(serde_json::Value::Null);
                serde_json::json!({
                    "scenario": name,
                    "artifacts": dir,
                    "snapshot": snap,
                    "report": report,
                })
            })
            .collect();
        let text =
            serde_json::to_string_pretty(&json).map_err(|e| Error::Internal(e.to_string()))?;
        write_file(p, &(text + "\n"))?;
    }
    Ok(())
}

/// Artifacts folders: the scenario name, made unique when two scenarios share one.
fn plan_runs(scenarios: Vec<telltale::scenario::Scenario>, out: &std::path::Path) -> Vec<Planned> {
    let mut plans = Vec::new();
    let mut used = std::collections::HashSet::new();
    for scenario in scenarios {
        let mut name = scenario.name.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{}-{n}", scenario.name);
            n += 1;
        }
        plans.push(Planned {
            dir: out.join(&name),
            name,
            scenario,
        });
    }
    plans
}

/// Prints every run's summary; the exit code of the batch.
fn print_results(results: &[Finished]) -> ExitCode {
    use telltale::runner::Verdict;
    let mut code = ExitCode::Clean;
    println!();
    for (name, dir, r) in results {
        match r {
            Ok(o) => {
                print!("{}", telltale::runner::summary::render(&o.report, dir));
                code = worse(
                    code,
                    match o.report.verdict {
                        Verdict::Pass => ExitCode::Clean,
                        Verdict::Fail => ExitCode::Found,
                        Verdict::Error => ExitCode::Internal,
                        Verdict::Interrupted => ExitCode::Interrupted,
                    },
                );
            }
            Err(e) => {
                println!("{name}: ERROR  {e}");
                code = worse(code, ExitCode::Internal);
            }
        }
        println!();
    }
    code
}

/// Whether this is a CI job (`CI` set to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
        .unwrap_or(false)
}

/// A run's report as later commands read it back.
fn stored(
    report: &telltale::runner::RunReport,
) -> Result<telltale::runner::record::StoredRun, Error> {
    serde_json::to_value(report)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::Internal(format!("re-reading a run report: {e}")))
}

/// The snapshot outcome of one run, for people and for reports.
#[derive(serde::Serialize)]
struct SnapshotOutcome {
    path: PathBuf,
    /// `unchanged`, `regression`, `removed-only`, `new` (no accepted snapshot).
    status: &'static str,
    fails: bool,
    diff: String,
}

fn snapshot_outcome(
    run: &telltale::runner::record::StoredRun,
    scenario_file: &str,
    dir: &std::path::Path,
    strict: bool,
) -> Result<SnapshotOutcome, Error> {
    use telltale::snapshot::{
        compare, read_accepted, snapshot_path, write_pending, PrivacySnapshot,
    };
    let snap = PrivacySnapshot::from_run(run);
    let path = snapshot_path(dir, &run.scenario);
    let text = snap.render(scenario_file);
    let file_err = |e: telltale::snapshot::FileError| Error::Internal(e.to_string());
    let accepted = match read_accepted(&path) {
        Ok(a) => a,
        Err(e) => {
            return Err(Error::Internal(format!(
                "the accepted snapshot {} cannot be read: {e}",
                path.display()
            )))
        }
    };
    let Some(accepted) = accepted else {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let pending = write_pending(&path, &text).map_err(file_err)?;
        return Ok(SnapshotOutcome {
            path,
            status: "new",
            fails: true,
            diff: format!(
                "no accepted snapshot yet; the run's snapshot is in {}: review it, then `telltale accept`",
                pending.display()
            ),
        });
    };
    let diff = compare(&accepted.body, &snap).map_err(|e| {
        Error::Internal(format!(
            "the accepted snapshot {} is damaged: {e}",
            path.display()
        ))
    })?;
    let pending = telltale::snapshot::pending_path(&path);
    if diff.is_unchanged() {
        let _ = std::fs::remove_file(&pending);
        return Ok(SnapshotOutcome {
            path,
            status: "unchanged",
            fails: false,
            diff: String::new(),
        });
    }
    write_pending(&path, &text).map_err(file_err)?;
    Ok(SnapshotOutcome {
        status: if diff.is_regression() {
            "regression"
        } else {
            "removed-only"
        },
        fails: diff.fails(strict),
        diff: diff.render(),
        path,
    })
}

fn check(
    paths: &[PathBuf],
    snapshots: &std::path::Path,
    strict: bool,
    flags: &RunFlags,
    reports: &ReportFiles,
) -> Result<ExitCode, Error> {
    let scenarios = match load_scenarios(paths) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let files: std::collections::HashMap<String, String> = scenarios
        .iter()
        .map(|s| (s.name.clone(), s.source_name.clone()))
        .collect();
    let results = execute_runs(
        plan_runs(scenarios, &flags.out),
        default_jobs(flags.jobs),
        flags.accel,
        flags.keep,
    )?;
    let mut code = print_results(&results);
    let ci = in_ci();
    let mut entries: Vec<Entry> = Vec::new();
    for (name, _dir, r) in &results {
        let Ok(o) = r else {
            continue;
        };
        let run = stored(&o.report)?;
        let file = files
            .get(&o.report.scenario.name)
            .cloned()
            .unwrap_or_default();
        let outcome = snapshot_outcome(&run, &file, snapshots, strict)?;
        match outcome.status {
            "unchanged" => println!("{name}: snapshot unchanged ({})", outcome.path.display()),
            "new" => println!("{name}: SNAPSHOT MISSING  {}", outcome.diff),
            "regression" => println!(
                "{name}: SNAPSHOT REGRESSION  new privacy behaviour against {} (pending: .snap.new)\n{}",
                outcome.path.display(),
                outcome.diff
            ),
            _ => println!(
                "{name}: snapshot: less behaviour than accepted in {}{}\n{}",
                outcome.path.display(),
                if strict { " (--strict: fails)" } else { " (a note; --strict fails on it)" },
                outcome.diff
            ),
        }
        if outcome.fails {
            code = worse(code, ExitCode::Found);
        }
        entries.push((name.clone(), o.dir.clone(), run, Some(outcome)));
    }
    if ci {
        println!(
            "(CI is set: accepted snapshots were not touched; differences are in .snap.new files)"
        );
    }
    write_reports(reports, &entries)?;
    Ok(code)
}

fn accept(paths: &[PathBuf], snapshots: &std::path::Path) -> Result<ExitCode, Error> {
    use telltale::snapshot::{accept, pending, pending_path, snapshot_path};
    let targets: Vec<PathBuf> = if paths.is_empty() {
        pending(snapshots)
            .map_err(|e| Error::Internal(e.to_string()))?
            .into_iter()
            .map(|p| p.with_extension(""))
            .collect()
    } else {
        let scenarios = match load_scenarios(paths) {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        scenarios
            .iter()
            .map(|s| {
                snapshot_path(
                    snapshots,
                    &telltale::runner::record::ScenarioInfo {
                        name: s.name.clone(),
                        release: s.release.clone(),
                        file: s.source_name.clone(),
                    },
                )
            })
            .collect()
    };
    if targets.is_empty() {
        println!("no pending snapshot in {}", snapshots.display());
        return Ok(ExitCode::Clean);
    }
    let mut code = ExitCode::Clean;
    for t in targets {
        match accept(&t) {
            Ok(p) => println!("accepted {}", p.display()),
            Err(e) => {
                eprintln!("error: {} : {e}", pending_path(&t).display());
                code = ExitCode::BadInput;
            }
        }
    }
    Ok(code)
}

fn compare(a: &std::path::Path, b: &std::path::Path, format: Format) -> Result<ExitCode, Error> {
    use telltale::runner::record::StoredRun;
    use telltale::runner::verify;
    let load = |p: &std::path::Path| {
        StoredRun::load(p).map_err(|detail| Error::NotACapture {
            path: p.to_path_buf(),
            detail,
        })
    };
    let (ra, rb) = (load(a)?, load(b)?);
    let rows = verify::compare(&ra.analysis, &rb.analysis);
    match format {
        Format::Text => print!(
            "{}",
            verify::render_compare(&rows, &a.display().to_string(), &b.display().to_string())
        ),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| Error::Internal(e.to_string()))?
        ),
    }
    Ok(if rows.iter().any(|r| r.count_b > 0) {
        ExitCode::Found
    } else {
        ExitCode::Clean
    })
}

/// A release given to `verify`: an image file (replacing the scenario's initrd, else its disk) or
/// another scenario file (whose target is used). Returns the scenario to run and the image.
fn release_variant(
    base: &telltale::scenario::Scenario,
    arg: &std::path::Path,
) -> Result<(telltale::scenario::Scenario, PathBuf), ExitCode> {
    let mut s = base.clone();
    if matches!(
        arg.extension().and_then(|x| x.to_str()),
        Some("yaml" | "yml")
    ) {
        let other = telltale::scenario::Scenario::load(arg).map_err(|e| {
            eprintln!("{e}");
            ExitCode::BadInput
        })?;
        s.target = other.target.clone();
    } else if let Target::Container(c) = &mut s.target {
        // A container release is an image reference (`vendor/fw:2.1`), not a file.
        let r = arg.to_string_lossy();
        match r.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((image, tag)) => {
                c.image = image.to_string();
                c.tag = tag.to_string();
            }
            None => c.tag = r.into_owned(),
        }
    } else {
        if !arg.is_file() {
            eprintln!(
                "error: {} is not a file: --before/--after take a firmware image, a capture (for a `capture` target) or a scenario file",
                arg.display()
            );
            return Err(ExitCode::BadInput);
        }
        match &mut s.target {
            Target::Qemu(q) if q.initrd.is_some() => q.initrd = Some(arg.to_path_buf()),
            Target::Qemu(q) => q.disk = Some(arg.to_path_buf()),
            Target::Capture(c) => c.file = arg.to_path_buf(),
            other => {
                eprintln!(
                    "error: a `{}` target has no image file to replace: give --before/--after as scenario files",
                    other.kind()
                );
                return Err(ExitCode::BadInput);
            }
        }
    }
    let image = match &s.target {
        Target::Qemu(q) => q
            .initrd
            .clone()
            .or_else(|| q.disk.clone())
            .unwrap_or_else(|| q.kernel.clone()),
        Target::Capture(c) => c.file.clone(),
        Target::Container(c) => PathBuf::from(format!("{}:{}", c.image, c.tag)),
        _ => PathBuf::new(),
    };
    Ok((s, image))
}

fn verify(
    scenario: &std::path::Path,
    before: &std::path::Path,
    after: &std::path::Path,
    out: &std::path::Path,
    accel: Accel,
) -> Result<ExitCode, Error> {
    use telltale::runner::verify::{seal_bundle, verify_claims, ClaimVerdict};
    let base = match telltale::scenario::Scenario::load(scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::BadInput);
        }
    };
    if base.claims.is_empty() {
        eprintln!(
            "error: {} has no `claims:`; verify checks a release's claims (add one, see scenarios/README.md)",
            scenario.display()
        );
        return Ok(ExitCode::BadInput);
    }
    let (s_before, img_before) = match release_variant(&base, before) {
        Ok(x) => x,
        Err(c) => return Ok(c),
    };
    let (s_after, img_after) = match release_variant(&base, after) {
        Ok(x) => x,
        Err(c) => return Ok(c),
    };
    let bundle = out.join(format!("verify-{}", base.name));
    let _ = std::fs::remove_dir_all(&bundle);
    let plans = vec![
        Planned {
            scenario: s_before,
            dir: bundle.join("before"),
            name: format!("{}@before", base.name),
        },
        Planned {
            scenario: s_after,
            dir: bundle.join("after"),
            name: format!("{}@after", base.name),
        },
    ];
    let mut results = execute_runs(plans, 2, accel, false)?;
    let after_run = results.pop();
    let before_run = results.pop();
    let (Some((_, _, Ok(b))), Some((_, _, Ok(a)))) = (before_run, after_run) else {
        eprintln!("error: a run could not be started; see the messages above");
        return Ok(ExitCode::Internal);
    };
    let verdicts = verify_claims(&base, &b.report, &a.report);
    let io = |e: std::io::Error| Error::Internal(format!("writing the evidence bundle: {e}"));
    for d in [&b.dir, &a.dir] {
        let _ = std::fs::remove_file(d.join("disk.img"));
    }
    std::fs::copy(scenario, bundle.join("scenario.yaml")).map_err(io)?;
    std::fs::write(
        bundle.join("verdicts.json"),
        serde_json::to_string_pretty(&verdicts).map_err(|e| Error::Internal(e.to_string()))? + "\n",
    )
    .map_err(io)?;
    let archive = seal_bundle(
        &bundle,
        &[("before", &img_before), ("after", &img_after)],
        verdicts.clone(),
        std::env::args().collect(),
    )
    .map_err(io)?;
    println!();
    println!(
        "{}: before = {}, after = {}",
        base.name,
        before.display(),
        after.display()
    );
    let mut code = ExitCode::Clean;
    for v in &verdicts {
        println!("  {:<15} {}  \"{}\"", v.verdict.words(), v.id, v.says);
        println!("                  {}", v.reason);
        for t in v.after.iter().take(5) {
            println!("                  after:  {t}");
        }
        if v.verdict == ClaimVerdict::Fixed {
            for t in v.before.iter().take(3) {
                println!("                  before: {t}");
            }
        }
        code = worse(
            code,
            match v.verdict {
                ClaimVerdict::Fixed => ExitCode::Clean,
                ClaimVerdict::StillLeaking => ExitCode::Found,
                ClaimVerdict::NotReproduced | ClaimVerdict::Inconclusive => ExitCode::Inconclusive,
            },
        );
    }
    println!("  evidence: {} and {}", bundle.display(), archive.display());
    Ok(code)
}
