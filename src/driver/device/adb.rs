//! The adb control channel (Android): `adb -s SERIAL`. This module owns the adb command
//! lines, the device-state check (with the list of attached devices when it fails), and
//! adb's own file transfer (`push`, `pull`) and `install`.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::remote::{planted, Client, RebootPlan};
use super::{output_within, ControlChannel, Sink, CHECK_TIMEOUT};
use crate::driver::console::{shell_quote, ShellOutput};
use crate::driver::TargetError;

/// A device controlled over adb.
pub(super) struct Adb {
    serial: String,
    client: Client,
}

impl Adb {
    pub(super) fn new(serial: &str, log_command: Option<String>, sink: Sink) -> Adb {
        Adb {
            serial: serial.to_string(),
            client: Client::new(
                "adb",
                vec!["-s".into(), serial.to_string()],
                "shell",
                format!("adb device {serial}"),
                "/data/local/tmp",
                log_command,
                sink,
            ),
        }
    }
}

#[async_trait::async_trait]
impl ControlChannel for Adb {
    fn describe(&self) -> String {
        self.client.name()
    }

    fn tmp_dir(&self) -> &'static str {
        self.client.tmp_dir()
    }

    fn has_console(&self) -> bool {
        self.client.has_console()
    }

    async fn open(&mut self) -> Result<(), TargetError> {
        let serial = &self.serial;
        let mut cmd = self.client.local(&["get-state"]);
        let out = output_within(&mut cmd, CHECK_TIMEOUT, "adb").await?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && state == "device" {
            return Ok(());
        }
        let mut list = Command::new("adb");
        list.arg("devices").kill_on_drop(true);
        let devices = match output_within(&mut list, CHECK_TIMEOUT, "adb").await {
            Ok(o) => attached_serials(&String::from_utf8_lossy(&o.stdout)),
            Err(_) => Vec::new(),
        };
        let why = if out.status.success() {
            format!("it is in state `{state}`, not `device`")
        } else {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        };
        Err(TargetError::Io(format!(
            "adb device {serial} is not available: {why}; attached: {}",
            if devices.is_empty() {
                "none (is it plugged in, with USB debugging on and this computer authorised?)"
                    .to_string()
            } else {
                devices.join(", ")
            }
        )))
    }

    async fn shell(&mut self, cmd: &str, timeout: Duration) -> Result<ShellOutput, TargetError> {
        self.client.shell(cmd, None, timeout).await
    }

    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = std::env::temp_dir().join(format!("telltale-plant-{}-{n}", std::process::id()));
        std::fs::write(&tmp, content)
            .map_err(|e| TargetError::Io(format!("cannot write {}: {e}", tmp.display())))?;
        let q = shell_quote(path);
        let mk = self
            .client
            .shell(&format!("mkdir -p \"$(dirname {q})\""), None, timeout)
            .await;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut push = self.client.local(&["push"]);
        push.arg(&tmp).arg(path);
        let pushed = output_within(&mut push, left, "adb").await;
        let _ = std::fs::remove_file(&tmp);
        mk?;
        let o = pushed?;
        let out = ShellOutput {
            status: o.status.code().unwrap_or(-1),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .trim()
            .to_string(),
        };
        planted(path, out)
    }

    async fn install(&mut self, apk: &Path, timeout: Duration) -> Result<(), TargetError> {
        let mut cmd = self.client.local(&["install", "-r"]);
        cmd.arg(apk);
        let out = output_within(&mut cmd, timeout, "adb").await?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && text.contains("Success") {
            Ok(())
        } else {
            Err(TargetError::Guest(format!(
                "`adb install {}` failed: {}",
                apk.display(),
                text.trim()
            )))
        }
    }

    async fn pull(
        &mut self,
        remote_path: &str,
        dest: &Path,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        let mut cmd = self.client.local(&["pull", remote_path]);
        cmd.arg(dest);
        let out = output_within(&mut cmd, timeout, "adb").await?;
        if !out.status.success() {
            return Err(TargetError::Guest(format!(
                "`adb pull {remote_path}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    async fn start_log(&mut self) -> Result<(), TargetError> {
        self.client.start_log().await
    }

    async fn reboot(&mut self, timeout: Duration) -> Result<(), TargetError> {
        let plan = RebootPlan {
            request: self.client.local(&["reboot"]),
            request_must_run: true,
            before_each_look: Some(&["wait-for-device"]),
        };
        self.client.reboot(timeout, plan).await
    }

    fn remote_started(&mut self, tag: &'static str) {
        self.client.remote_started(tag);
    }

    fn remote_ended(&mut self, tag: &'static str) {
        self.client.remote_ended(tag);
    }

    async fn stop(&mut self) {
        self.client.stop().await;
    }
}

/// The serials `adb devices` lists, with their states (`R58M… (unauthorized)`).
pub fn attached_serials(adb_devices: &str) -> Vec<String> {
    adb_devices
        .lines()
        .filter(|l| !l.starts_with("List of devices") && !l.starts_with('*'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let serial = parts.next()?;
            let state = parts.next()?;
            Some(if state == "device" {
                serial.to_string()
            } else {
                format!("{serial} ({state})")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adb_device_list() {
        let text = "* daemon started successfully\nList of devices attached\nR58M123\tdevice\nemulator-5554\tunauthorized\n\n";
        assert_eq!(
            attached_serials(text),
            vec![
                "R58M123".to_string(),
                "emulator-5554 (unauthorized)".to_string()
            ]
        );
        assert!(attached_serials("List of devices attached\n\n").is_empty());
    }
}
