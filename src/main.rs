//! The `telltale` command: parses the arguments ([`cli`]), calls the application layer (`telltale::app`),
//! prints what it returns (`telltale::render`) and ends with the exit code `telltale::app::exit` decides.
//! Nothing else happens here.

mod cli;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode as ProcessExit;
use std::sync::Arc;

use clap::Parser;
use cli::{Cli, Color, Command, Format, ReportFiles, RunFlags};
use telltale::app::{self, exit, Batch, RunRequest};
use telltale::render::{self, progress::FileProgress, progress::RunProgress, reports};
use telltale::{Config, Error, ExitCode, Identity, Matcher};

fn main() -> ProcessExit {
    let cli = Cli::parse();
    let outcome = std::panic::catch_unwind(move || dispatch(cli));
    let code = match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            if e.is_diagnostic() {
                eprintln!("{e}");
            } else {
                eprintln!("error: {e}");
            }
            e.exit_code()
        }
        Err(_) => {
            eprintln!("error: telltale failed internally (a bug); please report it with the command line and, if possible, the input");
            ExitCode::Internal
        }
    };
    ProcessExit::from(code as u8)
}

fn dispatch(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Analyze {
            capture,
            identity,
            format,
            output,
            color,
            reassembly_cap,
            decode_depth,
            keylog,
        } => {
            let identity = match &identity {
                Some(p) => telltale::load_identity(p)?,
                None => {
                    eprintln!("note: no --identity given: reporting traffic only, searching for no canaries");
                    Identity::default()
                }
            };
            let mut cfg = Config {
                reassembly_cap: reassembly_cap.saturating_mul(1024),
                keys: std::sync::Arc::new(app::load_keylogs(&keylog)?),
                ..Config::default()
            };
            cfg.layers.max_depth = decode_depth;
            let progress = FileProgress::new(&capture);
            let report = app::analyze(&capture, &identity, cfg, |done| progress.update(done))?;
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
            Ok(exit::of_findings(report.has_findings()))
        }
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
        Command::Validate { scenarios, host } => {
            let list = app::validate(&scenarios, host.allow())?;
            print!("{}", render::validated(&list));
            print!("{}", render::host_access(&list));
            Ok(ExitCode::Clean)
        }
        Command::Run {
            scenarios,
            flags,
            reports,
        } => {
            let scenarios = app::load_scenarios(&scenarios, flags.host.allow())?;
            let req = run_request(&flags);
            let plans = app::plan(scenarios, &req.out);
            let batch = app::execute(plans.clone(), &req, progress_for(&plans))?;
            print!("{}", render::batch(&batch));
            write_reports(&reports, &batch, |_| None)?;
            print!("{}", render::batch_total(&batch));
            Ok(batch.exit_code())
        }
        Command::Check {
            scenarios,
            snapshots,
            strict,
            flags,
            reports,
        } => {
            let scenarios = app::load_scenarios(&scenarios, flags.host.allow())?;
            let req = run_request(&flags);
            let names: Vec<String> = app::plan(scenarios.clone(), &req.out)
                .into_iter()
                .map(|p| p.name)
                .collect();
            let progress = Arc::new(RunProgress::new(&names));
            let outcome = app::check(scenarios, &req, &snapshots, strict, progress)?;
            print!("{}", render::batch(&outcome.batch));
            print!("{}", render::check(&outcome));
            write_reports(&reports, &outcome.batch, |name| outcome.snapshot_of(name))?;
            print!("{}", render::check_total(&outcome));
            Ok(outcome.exit_code())
        }
        Command::Accept {
            scenarios,
            snapshots,
        } => {
            let outcome = app::accept(&scenarios, &snapshots)?;
            let (out, err) = render::accepted(&outcome);
            print!("{out}");
            eprint!("{err}");
            Ok(if outcome.failed.is_empty() {
                ExitCode::Clean
            } else {
                ExitCode::BadInput
            })
        }
        Command::Verify {
            scenario,
            before,
            after,
            out,
            accel,
            sign_key,
            host,
        } => {
            app::require_host_access(&[&scenario, &before, &after], host.allow())?;
            let sign_key = sign_key
                .as_deref()
                .map(app::bundle::read_signing_key)
                .transpose()?;
            let req = RunRequest {
                out,
                jobs: 2,
                accel: accel.list(),
                keep: false,
                command_line: std::env::args().collect(),
            };
            // Host access was checked above.
            let base = telltale::scenario::Scenario::load(&scenario, host.allow())?;
            let names = [
                format!("{}@before", base.name),
                format!("{}@after", base.name),
            ];
            let progress = Arc::new(RunProgress::new(&names));
            let outcome = app::verify::verify_loaded(
                base,
                &scenario,
                &before,
                &after,
                &req,
                sign_key.as_ref(),
                progress,
            )?;
            print!(
                "{}",
                render::verified(
                    &outcome,
                    &before.display().to_string(),
                    &after.display().to_string()
                )
            );
            print!("{}", render::bundle::attestation(&outcome));
            Ok(outcome.exit_code())
        }
        Command::VerifyBundle { bundle, key } => {
            let check = app::bundle::verify_bundle(&bundle, key.as_deref())?;
            print!("{}", render::bundle::checked(&check));
            Ok(check.exit_code())
        }
        Command::Keygen { prefix } => {
            let (private, public) = app::bundle::keygen(&prefix)?;
            println!(
                "wrote {} (private: keep it secret) and {}",
                private.display(),
                public.display()
            );
            Ok(ExitCode::Clean)
        }
        Command::Compare {
            run_a,
            run_b,
            format,
        } => {
            let rows = app::compare(&run_a, &run_b)?;
            match format {
                Format::Text => print!(
                    "{}",
                    render::compared(
                        &rows,
                        &run_a.display().to_string(),
                        &run_b.display().to_string()
                    )
                ),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&rows)
                        .map_err(|e| Error::encode("the comparison as JSON", e))?
                ),
            }
            Ok(exit::of_findings(rows.iter().any(|r| r.count_b > 0)))
        }
        Command::Vnet {
            listen,
            pcap,
            events,
            quiet,
        } => {
            app::vnet::serve(&listen, &pcap, events.as_deref(), quiet)?;
            Ok(ExitCode::Clean)
        }
        Command::Keylog {
            action:
                cli::KeylogCommand::Inject {
                    capture,
                    keylog,
                    output,
                },
        } => {
            let done = app::keylog_inject(&capture, &keylog, &output)?;
            println!(
                "wrote {}: {} packets, {} keys of {} connections in a decryption secrets block",
                output.display(),
                done.packets,
                done.keys,
                done.connections
            );
            for b in &done.bad_lines {
                eprintln!("warning: {b}");
            }
            Ok(ExitCode::Clean)
        }
    }
}

fn run_request(flags: &RunFlags) -> RunRequest {
    RunRequest {
        out: flags.out.clone(),
        jobs: flags.jobs.unwrap_or_else(RunRequest::default_jobs).max(1),
        accel: flags.accel.list(),
        keep: flags.keep,
        command_line: std::env::args().collect(),
    }
}

fn progress_for(plans: &[app::Planned]) -> Arc<RunProgress> {
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    Arc::new(RunProgress::new(&names))
}

/// Writes the report files asked for, over every run that produced a report.
fn write_reports<'a>(
    files: &ReportFiles,
    batch: &'a Batch,
    snapshot: impl Fn(&str) -> Option<&'a app::SnapshotOutcome>,
) -> Result<(), Error> {
    let entries: Vec<reports::Entry> = batch
        .completed()
        .map(|(r, o)| reports::Entry {
            scenario: &r.name,
            artifacts: &o.dir,
            snapshot: snapshot(&r.name),
            report: &o.report,
        })
        .collect();
    reports::write(
        &reports::ReportFiles {
            junit: files.report_junit.clone(),
            json: files.report_json.clone(),
            html: files.report_html.clone(),
        },
        &entries,
    )
}

fn write_out(path: Option<&Path>, bytes: &[u8]) -> Result<(), Error> {
    write_with(path, |w| w.write_all(bytes))
}

/// Writes to FILE or standard output through a buffer; a closed pipe (e.g. `| head`) is not a failure.
fn write_with(
    path: Option<&Path>,
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
