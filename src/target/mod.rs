//! Targets: the devices telltale boots or drives.
//!
//! This module owns starting, driving and stopping a device under test. Each kind lives in
//! its own module ([`qemu`] now); [`console`] is the sans-IO serial-console protocol they
//! share. A target's network is always the vnet (`crate::vnet`); targets never get any
//! other network.

pub mod console;
pub mod qemu;

use std::time::Duration;

/// Why a target could not be started or driven. Every variant is an infrastructure failure
/// (exit code 3) and carries what the console showed last, where there is one.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The emulator could not be started.
    #[error("cannot start {program}: {hint}")]
    Spawn {
        /// Program name.
        program: String,
        /// What to do about it.
        hint: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {} waiting for {what}\n--- last console lines ---\n{tail}", humantime(*.after))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
        /// Last console lines.
        tail: String,
    },
    /// The emulator ended while we needed it.
    #[error("the target stopped unexpectedly ({status})\n--- last console lines ---\n{tail}")]
    Exited {
        /// How it ended.
        status: String,
        /// Last console lines.
        tail: String,
    },
    /// A command in the guest failed where success was needed.
    #[error("{0}")]
    Guest(String),
    /// Local I/O around the target failed.
    #[error("{0}")]
    Io(String),
}

/// `1.5s`, `2m`, `250ms`.
pub fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
