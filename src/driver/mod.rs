//! Targets: the devices telltale boots or drives.
//!
//! This module owns starting, driving and stopping a device under test. Each kind lives in
//! its own module ([`qemu`] now); [`console`] is the sans-IO serial-console protocol they
//! share. A target's network is always the vnet (`crate::vnet`); targets never get any
//! other network.

pub mod console;
pub mod container;
pub mod device;
pub mod link;
pub mod live;
pub mod netns;
pub mod qemu;

use std::time::Duration;

use regex::bytes::Regex;

pub use console::ShellOutput;

/// One running target, whatever its kind: the runner drives every kind through this and
/// nothing else. Implementations own their resources (processes, containers, namespaces,
/// TAP devices) and release them in [`Driver::stop`] and, as a last resort, on drop.
#[async_trait::async_trait]
pub trait Driver: Send {
    /// Waits until the target's console or log shows something matching `re` (after what
    /// earlier waits consumed). Fails on timeout or when the target ends.
    async fn wait_for(&mut self, re: &Regex, timeout: Duration) -> Result<String, TargetError>;

    /// Runs a shell command on the target and returns its exit status and output.
    async fn shell(&mut self, command: &str, timeout: Duration)
        -> Result<ShellOutput, TargetError>;

    /// Writes a file on the target.
    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError>;

    /// Restarts the target (the runner then waits for the boot pattern with
    /// [`Driver::wait_for`]). Output printed before the restart is consumed.
    async fn reboot(&mut self, timeout: Duration) -> Result<(), TargetError>;

    /// Resolves with the error to report when the target ends on its own; pending while it
    /// runs (idle steps race against it).
    async fn ended(&mut self) -> TargetError;

    /// Stops the target and releases everything it holds. Called once at the end of every
    /// run, also after failures and Ctrl-C.
    async fn stop(&mut self);

    /// The last `n` lines of the console or log (for error messages).
    fn tail(&self, n: usize) -> String;

    /// Installs an app package (`install` steps; adb devices only).
    async fn install(
        &mut self,
        _package: &std::path::Path,
        _timeout: Duration,
    ) -> Result<(), TargetError> {
        Err(TargetError::Guest(
            "`install` needs a device controlled over adb".into(),
        ))
    }

    /// Whether the target records its own capture, to be analysed instead of the vnet's
    /// (a device with `traffic: {pull: …}`).
    fn records_own_capture(&self) -> bool {
        false
    }

    /// Copies the target's own capture to `dest` (after the steps, before [`Driver::stop`]).
    async fn pull_capture(&mut self, _dest: &std::path::Path) -> Result<(), TargetError> {
        Err(TargetError::Io(
            "this target's traffic goes through telltale's network; there is no capture to pull"
                .into(),
        ))
    }
}

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
    /// telltale lacks a privilege the target kind needs; nothing was started.
    #[error("{what} needs root (CAP_NET_ADMIN): {why}. Run telltale as root (e.g. `sudo telltale run …`); nothing was started")]
    NeedsRoot {
        /// The target kind or step.
        what: String,
        /// What the privilege is for.
        why: String,
    },
}

/// The error for a program that cannot be started, with the Debian package to install.
pub(crate) fn spawn_error(program: &str, e: &std::io::Error) -> TargetError {
    let package = match program {
        "ssh" => Some("openssh-client"),
        "adb" => Some("adb (or Android SDK platform-tools)"),
        "ip" => Some("iproute2"),
        "nsenter" => Some("util-linux"),
        "stty" => Some("coreutils"),
        _ => None,
    };
    TargetError::Spawn {
        program: program.to_string(),
        hint: match (e.kind(), package) {
            (std::io::ErrorKind::NotFound, Some(p)) => {
                format!("`{program}` is not installed (Debian: apt-get install {p})")
            }
            _ => e.to_string(),
        },
    }
}

/// Runs a command on the host (`ip`, `nsenter` …) and fails with its stderr.
pub(crate) async fn run_host(argv: &[&str]) -> Result<(), TargetError> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| TargetError::Io("empty command".into()))?;
    let out = tokio::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| spawn_error(prog, &e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TargetError::Io(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Fails with [`TargetError::NeedsRoot`] unless telltale runs with the effective user id 0.
pub fn require_root(what: &str, why: &str) -> Result<(), TargetError> {
    if is_root() {
        Ok(())
    } else {
        Err(TargetError::NeedsRoot {
            what: what.to_string(),
            why: why.to_string(),
        })
    }
}

/// Whether the effective user id is 0 (read from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
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
