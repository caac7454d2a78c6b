//! What the ssh and adb channels share: every device command is one local client process
//! (`ssh … -- CMD`, `adb -s X shell CMD`) whose exit status comes from a marker the command
//! prints; the log command is such a process too, its output copied into the console. This
//! module owns those processes, the device-side processes to end at stop, and the reboot
//! sequence (wait for a new `boot_id`, start the log again).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::{output_within, pidfile, Sink};
use crate::driver::console::{shell_quote, ShellOutput};
use crate::driver::{spawn_error, TargetError};

/// How a client channel asks for a restart.
pub(super) struct RebootPlan {
    /// The local command that asks the device to restart.
    pub request: Command,
    /// Whether a failure to run `request` fails the reboot (adb answers; an ssh connection
    /// usually drops before it can).
    pub request_must_run: bool,
    /// Client arguments run (status ignored) before each look for the new boot, like
    /// `wait-for-device`.
    pub before_each_look: Option<&'static [&'static str]>,
}

/// One device reached through a local client program (ssh or adb).
pub(super) struct Client {
    /// The local program: `ssh` or `adb`.
    program: &'static str,
    /// Its arguments before a device command (`-o … -T user@host`, `-s SERIAL`).
    args: Vec<String>,
    /// What comes between them and the device command: `--` (ssh) or `shell` (adb).
    run: &'static str,
    /// A name for error messages.
    name: String,
    /// A writable directory on the device.
    tmp_dir: &'static str,
    sink: Sink,
    log_command: Option<String>,
    /// The local client running the log command.
    log_child: Option<Child>,
    /// Tasks copying the log command's output into the console.
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Shell calls so far (each gets its own status marker).
    calls: u64,
    /// Device-side background commands to end on stop, by pid file tag, in start order.
    remote: Vec<&'static str>,
}

impl Client {
    pub(super) fn new(
        program: &'static str,
        args: Vec<String>,
        run: &'static str,
        name: String,
        tmp_dir: &'static str,
        log_command: Option<String>,
        sink: Sink,
    ) -> Client {
        Client {
            program,
            args,
            run,
            name,
            tmp_dir,
            sink,
            log_command,
            log_child: None,
            readers: Vec::new(),
            calls: 0,
            remote: Vec::new(),
        }
    }

    /// A name for error messages.
    pub(super) fn name(&self) -> String {
        self.name.clone()
    }

    /// A writable directory on the device.
    pub(super) fn tmp_dir(&self) -> &'static str {
        self.tmp_dir
    }

    /// Whether the device has a log command (its output is the whole console).
    pub(super) fn has_console(&self) -> bool {
        self.log_command.is_some()
    }

    /// The local client with `extra` arguments of its own (`adb -s X get-state`).
    pub(super) fn local(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(self.program);
        cmd.args(&self.args).args(extra).kill_on_drop(true);
        cmd
    }

    /// A local process that runs `remote` (one shell command line) on the device.
    pub(super) fn command(&self, remote: &str) -> Command {
        let mut cmd = Command::new(self.program);
        cmd.args(&self.args)
            .arg(self.run)
            .arg(remote)
            .kill_on_drop(true);
        cmd
    }

    /// Runs one command line on the device, `stdin` fed to it, and reads its status from a
    /// marker printed after it (ssh's own failures exit 255, adb before 29 does not pass
    /// statuses).
    pub(super) async fn shell(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ShellOutput, TargetError> {
        self.calls += 1;
        let marker = format!("__TT_S{}_", self.calls);
        // The newline before the marker puts it at the start of a line even when the
        // output does not end with one.
        let line = format!(
            "sh -c {} 2>&1; s=$?; echo; echo \"{marker}$s\"",
            shell_quote(cmd)
        );
        let mut c = self.command(&line);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| spawn_error(self.program, &e))?;
        let input = stdin.map(<[u8]>::to_vec);
        let mut child_in = child.stdin.take();
        let run = async move {
            if let (Some(data), Some(mut w)) = (input, child_in.take()) {
                w.write_all(&data).await?;
                w.shutdown().await?;
            }
            child.wait_with_output().await
        };
        let out = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                return Err(TargetError::Io(format!(
                    "running `{cmd}` over {}: {e}",
                    self.name
                )))
            }
            Err(_) => {
                return Err(TargetError::Timeout {
                    what: format!("the shell command `{cmd}` to finish"),
                    after: timeout,
                    tail: self.sink.tail(15),
                })
            }
        };
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        match parse_status(&text, &marker) {
            Some(r) => Ok(r),
            None => Err(TargetError::Io(format!(
                "running `{cmd}` over {} failed ({}): {}",
                self.name,
                crate::driver::qemu::describe_status(out.status),
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }

    /// Starts the log command (if any) with its output going to the console.
    pub(super) async fn start_log(&mut self) -> Result<(), TargetError> {
        let Some(cmd) = self.log_command.clone() else {
            return Ok(());
        };
        let pidfile = pidfile(self.tmp_dir, "log");
        // `exec` keeps the pid of the wrapper shell: the log command itself.
        let remote = format!(
            "sh -c {}",
            shell_quote(&format!("echo $$ > {pidfile}; exec {cmd}"))
        );
        let mut c = self.command(&remote);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| spawn_error(self.program, &e))?;
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = self.sink.clone();
            self.readers.push(tokio::spawn(async move {
                let mut s = stream;
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(k) = s.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    sink.append(buf.get(..k).unwrap_or_default());
                }
            }));
        }
        self.log_child = Some(child);
        self.remote.push("log");
        Ok(())
    }

    /// Ends the log command (device side and local client).
    async fn end_log(&mut self) {
        if self.log_child.is_some() {
            let pidfile = pidfile(self.tmp_dir, "log");
            let _ = self
                .shell(
                    &format!(
                        "kill $(cat {pidfile} 2>/dev/null) 2>/dev/null; rm -f {pidfile}; true"
                    ),
                    None,
                    Duration::from_secs(10),
                )
                .await;
            self.remote_ended("log");
        }
        self.kill_log_child().await;
    }

    async fn kill_log_child(&mut self) {
        if let Some(mut c) = self.log_child.take() {
            let _ = c.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
        }
    }

    /// The device's boot id (changes on every boot), if it has one.
    async fn boot_id(&mut self) -> Option<String> {
        let out = self
            .shell(
                "cat /proc/sys/kernel/random/boot_id",
                None,
                Duration::from_secs(15),
            )
            .await
            .ok()?;
        let id = out.output.trim().to_string();
        (out.status == 0 && !id.is_empty()).then_some(id)
    }

    /// Restarts the device as `plan` says and waits until the control channel answers from
    /// the new boot (a new `boot_id`); the log command is started again.
    pub(super) async fn reboot(
        &mut self,
        timeout: Duration,
        mut plan: RebootPlan,
    ) -> Result<(), TargetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let before = self.boot_id().await;
        self.end_log().await;
        let sent = output_within(&mut plan.request, Duration::from_secs(30), self.program).await;
        if plan.request_must_run {
            sent?;
        }
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Err(TargetError::Timeout {
                    what: format!("{} to come back after the reboot", self.name),
                    after: timeout,
                    tail: self.sink.tail(15),
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(args) = plan.before_each_look {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let mut cmd = self.local(args);
                let _ =
                    output_within(&mut cmd, left.min(Duration::from_secs(30)), self.program).await;
            }
            let now = self.boot_id().await;
            match (&before, &now) {
                (Some(b), Some(n)) if b != n => break,
                // No boot id on this device: answering again after a pause is the best sign.
                (None, Some(_)) => break,
                _ => {}
            }
        }
        self.start_log().await
    }

    /// A device-side background command `tag` to end at stop.
    pub(super) fn remote_started(&mut self, tag: &'static str) {
        self.remote.push(tag);
    }

    /// The device-side command `tag` was ended already.
    pub(super) fn remote_ended(&mut self, tag: &'static str) {
        self.remote.retain(|t| *t != tag);
    }

    /// Ends the device-side commands, then the local processes.
    pub(super) async fn stop(&mut self) {
        let remote = std::mem::take(&mut self.remote);
        if !remote.is_empty() {
            let line = remote
                .iter()
                .map(|tag| {
                    format!(
                        "kill $(cat {} 2>/dev/null) 2>/dev/null",
                        pidfile(self.tmp_dir, tag)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let _ = self
                .shell(&format!("{line}; true"), None, Duration::from_secs(10))
                .await;
        }
        self.kill_log_child().await;
        for r in self.readers.drain(..) {
            r.abort();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(c) = self.log_child.as_mut() {
            let _ = c.start_kill();
            let _ = c.try_wait();
        }
        for r in &self.readers {
            r.abort();
        }
    }
}

/// Fails unless a command that wrote `path` exited 0.
pub(super) fn planted(path: &str, out: ShellOutput) -> Result<(), TargetError> {
    if out.status != 0 {
        return Err(TargetError::Guest(format!(
            "writing {path} on the device failed with status {}: {}",
            out.status, out.output
        )));
    }
    Ok(())
}

/// Splits what a remote command printed into its output and the status printed after the
/// `marker` (which starts a line; trailing newlines of the output are dropped); `None` when
/// the marker is missing (the channel failed).
pub fn parse_status(stdout: &str, marker: &str) -> Option<ShellOutput> {
    let at = stdout.rfind(marker)?;
    // The marker must start a line.
    if at > 0 && stdout.get(at - 1..at) != Some("\n") {
        return None;
    }
    let status: i32 = stdout.get(at + marker.len()..)?.trim().parse().ok()?;
    let output = stdout.get(..at)?.trim_end_matches('\n').to_string();
    Some(ShellOutput { status, output })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_marker_parsing() {
        let out = parse_status("hello\nworld\n__TT_S3_7\n", "__TT_S3_").unwrap();
        assert_eq!(out.status, 7);
        assert_eq!(out.output, "hello\nworld");
        let out = parse_status("{}\n__TT_S5_0\n", "__TT_S5_").unwrap();
        assert_eq!((out.status, out.output.as_str()), (0, "{}"));
        let out = parse_status("__TT_S1_0\n", "__TT_S1_").unwrap();
        assert_eq!((out.status, out.output.as_str()), (0, ""));
        // Output that mentions the marker mid-line does not count; no marker = failure.
        assert!(parse_status("x __TT_S2_0\n", "__TT_S2_").is_none());
        assert!(parse_status("ssh: connect refused\n", "__TT_S2_").is_none());
        assert!(parse_status("__TT_S2_abc\n", "__TT_S2_").is_none());
    }
}
