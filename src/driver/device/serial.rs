//! The serial-port control channel: a shell on a tty. This module owns the port (set up
//! with `stty`, opened non-blocking and polled by tokio, so a quiet port never holds a
//! thread or the exit), the task copying its output into the console, and the sans-IO
//! console protocol's use for shell calls, planting and pulling files (base64).
//!
//! The port's output *is* the console. A log command runs in the background of the port's
//! shell; nothing is sent to end device-side commands at stop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{output_within, ControlChannel, Sink, CHECK_TIMEOUT};
use crate::driver::console::{plant_through, shell_quote, ShellCall, ShellOutput};
use crate::driver::TargetError;

/// A device controlled over a serial port.
pub(super) struct Serial {
    path: PathBuf,
    baud: u32,
    sink: Sink,
    log_command: Option<String>,
    /// The port's writing half, once open. tokio's pipe halves work on any pollable
    /// descriptor, ttys too.
    write: Option<tokio::net::unix::pipe::Sender>,
    /// Set when the port closed.
    closed: Arc<Mutex<Option<String>>>,
    /// The task copying the port's output into the console.
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Shell calls so far (each gets its own status marker).
    calls: u64,
}

impl Serial {
    pub(super) fn new(path: &Path, baud: u32, log_command: Option<String>, sink: Sink) -> Serial {
        Serial {
            path: path.to_path_buf(),
            baud,
            sink,
            log_command,
            write: None,
            closed: Arc::new(Mutex::new(None)),
            readers: Vec::new(),
            calls: 0,
        }
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), TargetError> {
        self.closed()?;
        let w = self
            .write
            .as_mut()
            .ok_or_else(|| TargetError::Io("the serial port is not open".into()))?;
        w.write_all(data)
            .await
            .map_err(|e| TargetError::Io(format!("writing to the serial port: {e}")))
    }
}

#[async_trait::async_trait]
impl ControlChannel for Serial {
    fn describe(&self) -> String {
        format!("serial port {}", self.path.display())
    }

    fn tmp_dir(&self) -> &'static str {
        "/tmp"
    }

    fn has_console(&self) -> bool {
        true
    }

    async fn open(&mut self) -> Result<(), TargetError> {
        let (path, baud) = (&self.path, self.baud);
        let p = path.display().to_string();
        let mut stty = Command::new("stty");
        stty.args([
            "-F",
            &p,
            &baud.to_string(),
            "raw",
            "-echo",
            "clocal",
            "cs8",
            "-cstopb",
            "-parenb",
        ])
        .kill_on_drop(true);
        let out = output_within(&mut stty, CHECK_TIMEOUT, "stty").await?;
        if !out.status.success() {
            return Err(TargetError::Io(format!(
                "cannot set up serial port {p} at {baud} baud: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags_noctty()
            .open(path)
            .map_err(|e| TargetError::Io(format!("cannot open serial port {p}: {e}")))?;
        let poll_err =
            |e: std::io::Error| TargetError::Io(format!("cannot poll serial port {p}: {e}"));
        let reader = file.try_clone().map_err(poll_err)?;
        let mut reader =
            tokio::net::unix::pipe::Receiver::from_file_unchecked(reader).map_err(poll_err)?;
        let write = tokio::net::unix::pipe::Sender::from_file_unchecked(file).map_err(poll_err)?;
        let (sink, closed) = (self.sink.clone(), self.closed.clone());
        self.readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let why = loop {
                match reader.read(&mut buf).await {
                    Ok(0) => break "the serial port closed".to_string(),
                    Ok(k) => sink.append(buf.get(..k).unwrap_or_default()),
                    // EIO: the other end of the line is gone (adapter unplugged).
                    Err(e) => break format!("the serial port closed ({e})"),
                }
            };
            if let Ok(mut g) = closed.lock() {
                *g = Some(why);
            }
            sink.console.wake();
        }));
        self.write = Some(write);
        Ok(())
    }

    async fn shell(&mut self, cmd: &str, timeout: Duration) -> Result<ShellOutput, TargetError> {
        self.calls += 1;
        let call = ShellCall::new(cmd, self.calls);
        self.write(call.line.as_bytes()).await?;
        let what = || format!("the shell command `{cmd}` to finish");
        self.sink
            .console
            .wait(timeout, what, |c| call.poll(c), || self.closed())
            .await
    }

    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError> {
        plant_through(
            self,
            |t, cmd, left| t.shell(cmd, left),
            path,
            content,
            timeout,
        )
        .await
    }

    async fn pull(
        &mut self,
        remote_path: &str,
        dest: &Path,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        use base64::Engine;
        let out = self
            .shell(&format!("base64 {}", shell_quote(remote_path)), timeout)
            .await?;
        if out.status != 0 {
            return Err(TargetError::Guest(format!(
                "reading {remote_path} failed: {}",
                out.output
            )));
        }
        let text: String = out.output.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| {
                TargetError::Guest(format!(
                    "the capture came back garbled over the serial port: {e}"
                ))
            })?;
        std::fs::write(dest, bytes)
            .map_err(|e| TargetError::Io(format!("cannot write {}: {e}", dest.display())))
    }

    async fn start_log(&mut self) -> Result<(), TargetError> {
        let Some(cmd) = self.log_command.clone() else {
            return Ok(());
        };
        // The serial output is the console already; the command runs in the background.
        let line = format!("({cmd}) &\n");
        self.write(line.as_bytes()).await
    }

    /// Only sends the command: the boot pattern on the console tells when it is back.
    async fn reboot(&mut self, _timeout: Duration) -> Result<(), TargetError> {
        self.write(b"sync; reboot\n").await
    }

    fn remote_started(&mut self, _tag: &'static str) {}

    fn remote_ended(&mut self, _tag: &'static str) {}

    fn closed(&self) -> Result<(), TargetError> {
        match self.closed.lock().ok().and_then(|g| g.clone()) {
            Some(status) => Err(TargetError::Exited {
                status,
                tail: self.sink.tail(15),
            }),
            None => Ok(()),
        }
    }

    async fn stop(&mut self) {
        for r in self.readers.drain(..) {
            r.abort();
        }
        self.write = None;
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

/// `O_NOCTTY | O_NONBLOCK`: a tty opened without becoming our controlling terminal, and
/// without waiting for carrier.
trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
    }
}
