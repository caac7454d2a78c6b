//! Carrying out a batch of runs: planning each scenario's artifacts folder, running `jobs` at a time on one
//! async runtime, Ctrl-C stopping them cleanly, and every run accounted for — a run whose task panicked is
//! a [`RunFailure::Panicked`] naming its scenario (exit 3), never dropped from the batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, ExitCode};
use crate::runner::{run_scenario, Progress, RunOptions, RunOutcome};
use crate::scenario::Scenario;

/// How a batch is run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Where the artifacts folders go (`OUT/<name>/`).
    pub out: PathBuf,
    /// Runs at the same time (at least 1).
    pub jobs: usize,
    /// QEMU accelerators to try, in order.
    pub accel: Vec<String>,
    /// Leave containers in place after the run.
    pub keep: bool,
    /// The command line, for the manifests.
    pub command_line: Vec<String>,
}

impl RunRequest {
    /// The default number of runs at a time: the CPUs, at most 4.
    pub fn default_jobs() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4)
    }
}

/// One run to carry out: the scenario, its artifacts folder, its display name.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The scenario.
    pub scenario: Scenario,
    /// Its artifacts folder.
    pub dir: PathBuf,
    /// Its name in output (the scenario's name, made unique within the batch).
    pub name: String,
}

/// Artifacts folders: the scenario name, made unique when two scenarios share one.
pub fn plan(scenarios: Vec<Scenario>, out: &Path) -> Vec<Planned> {
    let mut plans = Vec::new();
    let mut used = std::collections::HashSet::new();
    for scenario in scenarios {
        // Parsed scenarios have plain names; a scenario built in code is made one here, so that the
        // run's folder is always a child of `out`.
        let base = crate::scenario::plain_name(&scenario.name);
        let mut name = base.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{n}");
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

/// Why a run has no report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunFailure {
    /// Ctrl-C came before the run started.
    #[error("not started (interrupted)")]
    NotStarted,
    /// The run could not be set up (see [`crate::runner::RunError`]).
    #[error("{0}")]
    Failed(String),
    /// telltale itself failed inside the run (a panic): a bug. The artifacts written so far are kept.
    #[error("telltale failed internally during this run (a bug; please report it): {0}")]
    Panicked(String),
}

/// One run of a batch, however it ended.
#[derive(Debug)]
pub struct RunResult {
    /// Its name in output.
    pub name: String,
    /// Its artifacts folder.
    pub dir: PathBuf,
    /// The run, or why there is none.
    pub outcome: Result<RunOutcome, RunFailure>,
}

/// Every run of a batch, in the order planned.
#[derive(Debug, Default)]
pub struct Batch {
    /// The runs.
    pub runs: Vec<RunResult>,
}

impl Batch {
    /// The runs that produced a report.
    pub fn completed(&self) -> impl Iterator<Item = (&RunResult, &RunOutcome)> {
        self.runs
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok().map(|o| (r, o)))
    }

    /// The exit code of the batch: the worst of its runs'.
    pub fn exit_code(&self) -> ExitCode {
        self.runs
            .iter()
            .map(super::exit::of_run)
            .fold(ExitCode::Clean, ExitCode::worse)
    }
}

/// Runs the planned scenarios, `req.jobs` at a time, with Ctrl-C stopping them cleanly. Every plan gets a
/// [`RunResult`], in order: a task that panicked is [`RunFailure::Panicked`].
pub fn execute(
    plans: Vec<Planned>,
    req: &RunRequest,
    progress: Arc<dyn Progress>,
) -> Result<Batch, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::resource("start the async runtime"))?;
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
        let sem = Arc::new(tokio::sync::Semaphore::new(req.jobs.max(1)));
        let mut tasks = Vec::new();
        for plan in plans {
            let opts = RunOptions {
                dir: plan.dir.clone(),
                accel: req.accel.clone(),
                command_line: req.command_line.clone(),
                keep: req.keep,
            };
            let name = plan.name.clone();
            let scenario = plan.scenario;
            let (sem, progress, cancel) = (sem.clone(), progress.clone(), cancel_rx.clone());
            let task = tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                if *cancel.borrow() {
                    return Err(RunFailure::NotStarted);
                }
                let r = run_scenario(&scenario, &opts, progress.clone(), cancel)
                    .await
                    .map_err(|e| RunFailure::Failed(e.to_string()));
                let msg = match &r {
                    Ok(o) => format!("{:?}", o.report.verdict).to_lowercase(),
                    Err(e) => format!("error: {e}"),
                };
                progress.finished(&name, &msg);
                r
            });
            tasks.push((plan.name, plan.dir, task));
        }
        let mut runs = Vec::new();
        for (name, dir, task) in tasks {
            let outcome = match task.await {
                Ok(r) => r,
                Err(e) => {
                    let why = if e.is_panic() {
                        panic_message(e.into_panic())
                    } else {
                        "the run's task was cancelled".to_string()
                    };
                    progress.finished(&name, &format!("error: {why}"));
                    Err(RunFailure::Panicked(why))
                }
            };
            runs.push(RunResult { name, dir, outcome });
        }
        Batch { runs }
    }))
}

/// The text a panic carried, when it carried one.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}
