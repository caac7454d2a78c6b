//! `kind: capture`: a run without a device. An existing capture (for auditors who were
//! handed pcaps, or a capture pulled from a device) is judged against the scenario's
//! identity, policy, claims and snapshot exactly as a live run's capture would be.
//!
//! This module owns turning the target's phase list into time spans: `at:` offsets count
//! from the capture's first frame, `at_epoch:` times are absolute. The capture is copied
//! into the run folder as `capture.pcap`, so the artifacts (and evidence bundles) look like
//! those of a live run.

use std::path::Path;
use std::sync::Arc;

use super::record::{PhaseSpan, VnetRecord};
use super::{conclude, Concluding, Launched, Progress, RunError, RunOptions, RunOutcome};
use crate::capture::CaptureReader;
use crate::scenario::{CaptureTarget, PhaseStart, Scenario, INITIAL_PHASE};
use crate::vnet::VnetStats;

/// First and last frame time (ns since the epoch) and the number of frames readable.
fn time_span(path: &Path) -> Result<(u64, u64, u64), RunError> {
    let mut r = CaptureReader::open(path)
        .map_err(|e| RunError::Setup(format!("cannot read the capture: {e}")))?;
    let (mut first, mut last, mut n) = (None, 0u64, 0u64);
    // Damage ends the span where it is; the analysis reports it with its offset.
    while let Ok(Some(p)) = r.next_packet() {
        if p.ts_nanos != 0 {
            first.get_or_insert(p.ts_nanos);
            last = last.max(p.ts_nanos);
        }
        n += 1;
    }
    let first = first.unwrap_or(0);
    Ok((first, last.max(first), n))
}

/// The phases as spans over the capture: the initial phase first, then each listed phase
/// in order. A phase listed before the previous one's start is refused.
pub(super) fn phase_spans(
    target: &CaptureTarget,
    first: u64,
    last: u64,
) -> Result<Vec<PhaseSpan>, String> {
    let mut spans = vec![PhaseSpan {
        name: INITIAL_PHASE.to_string(),
        start_ns: first,
        end_ns: 0,
    }];
    for (name, start) in &target.phases {
        let at = match start {
            PhaseStart::Offset(d) => {
                first.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            }
            PhaseStart::EpochNanos(t) => *t,
        };
        let prev = spans.last_mut().ok_or("no phase")?;
        if at < prev.start_ns && prev.name != INITIAL_PHASE {
            return Err(format!(
                "phase `{name}` starts before phase `{}`; list the phases in time order",
                prev.name
            ));
        }
        prev.end_ns = at;
        spans.push(PhaseSpan {
            name: name.clone(),
            start_ns: at,
            end_ns: 0,
        });
    }
    if let Some(l) = spans.last_mut() {
        l.end_ns = last.max(l.start_ns);
    }
    Ok(spans)
}

/// Judges `target.file` as the run's capture.
pub(super) fn replay_capture(
    scenario: &Scenario,
    target: &CaptureTarget,
    identity: &crate::Identity,
    opts: &RunOptions,
    progress: Arc<dyn Progress>,
    wall: std::time::Instant,
) -> Result<RunOutcome, RunError> {
    let dir = &opts.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| RunError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    let pcap = dir.join("capture.pcap");
    let same = std::fs::canonicalize(&target.file).ok() == std::fs::canonicalize(&pcap).ok();
    if !same {
        let _ = std::fs::remove_file(&pcap);
        std::fs::copy(&target.file, &pcap).map_err(|e| {
            RunError::Setup(format!(
                "cannot copy {} to {}: {e}",
                target.file.display(),
                pcap.display()
            ))
        })?;
    }
    for f in ["console.log", "report.json", "manifest.json"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    progress.note(&scenario.name, "reading the capture");
    let (first, last, frames) = time_span(&pcap)?;
    let phases = phase_spans(target, first, last)
        .map_err(|m| RunError::Setup(format!("{}: {m}", scenario.source_name)))?;
    conclude(
        scenario,
        identity,
        Concluding {
            opts,
            pcap: &pcap,
            phases,
            steps: Vec::new(),
            failure: None,
            started: first,
            ended: last,
            vnet: VnetRecord {
                stats: VnetStats::default(),
                frames_recorded: frames,
                frames_dropped: 0,
                events: Vec::new(),
                port_errors: Vec::new(),
            },
            launched: Launched {
                launch: Vec::new(),
                images: vec![target.file.clone()],
            },
            wall,
        },
        progress.as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn target(phases: Vec<(&str, PhaseStart)>) -> CaptureTarget {
        CaptureTarget {
            file: "x.pcap".into(),
            phases: phases
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect(),
        }
    }

    #[test]
    fn offsets_count_from_the_first_frame() {
        let t = target(vec![
            ("setup", PhaseStart::Offset(Duration::from_secs(2))),
            (
                "declined",
                PhaseStart::EpochNanos(1_000_000_005_000_000_000),
            ),
        ]);
        let s = phase_spans(&t, 1_000_000_000_000_000_000, 1_000_000_009_000_000_000).unwrap();
        let got: Vec<(&str, u64, u64)> = s
            .iter()
            .map(|p| (p.name.as_str(), p.start_ns, p.end_ns))
            .collect();
        assert_eq!(
            got,
            vec![
                ("boot", 1_000_000_000_000_000_000, 1_000_000_002_000_000_000),
                (
                    "setup",
                    1_000_000_002_000_000_000,
                    1_000_000_005_000_000_000
                ),
                (
                    "declined",
                    1_000_000_005_000_000_000,
                    1_000_000_009_000_000_000
                ),
            ]
        );
    }

    #[test]
    fn phases_out_of_order_are_refused() {
        let t = target(vec![
            ("a", PhaseStart::Offset(Duration::from_secs(5))),
            ("b", PhaseStart::Offset(Duration::from_secs(1))),
        ]);
        let e = phase_spans(&t, 10, 20_000_000_000).unwrap_err();
        assert!(e.contains("`b` starts before phase `a`"), "{e}");
    }

    #[test]
    fn a_phase_may_start_before_the_first_frame() {
        // A live run's phases can begin before the device sends anything.
        let t = target(vec![("setup", PhaseStart::EpochNanos(5))]);
        let s = phase_spans(&t, 100, 200).unwrap();
        assert_eq!(s[1].start_ns, 5);
        assert_eq!(s[1].end_ns, 200);
    }
}
