//! The ssh control channel: the system's OpenSSH client in batch mode (never a password
//! prompt). This module owns the ssh command line, the reachability check, and how files
//! go to and come from the device (through the command's stdin and stdout).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::remote::{planted, Client, RebootPlan};
use super::{output_within, ControlChannel, Sink, CHECK_TIMEOUT};
use crate::driver::console::{shell_quote, ShellOutput};
use crate::driver::TargetError;

/// Default ssh options: never prompt, fail fast, notice a dead link.
const SSH_DEFAULTS: [&str; 5] = [
    "BatchMode=yes",
    "ConnectTimeout=10",
    "ServerAliveInterval=5",
    "ServerAliveCountMax=3",
    "LogLevel=ERROR",
];

/// The ssh arguments before the remote command.
pub fn ssh_args(
    host: &str,
    port: u16,
    user: &str,
    identity: Option<&Path>,
    options: &[String],
) -> Vec<String> {
    let mut a = Vec::new();
    // User options first: for ssh the first value of an option wins.
    for o in options.iter().map(String::as_str).chain(SSH_DEFAULTS) {
        a.push("-o".to_string());
        a.push(o.to_string());
    }
    a.push("-p".into());
    a.push(port.to_string());
    if let Some(i) = identity {
        a.push("-i".into());
        a.push(i.display().to_string());
    }
    a.push("-T".into());
    a.push(format!("{user}@{host}"));
    a
}

/// A device controlled over ssh.
pub(super) struct Ssh {
    client: Client,
}

impl Ssh {
    pub(super) fn new(
        host: &str,
        port: u16,
        user: &str,
        identity: Option<&Path>,
        options: &[String],
        log_command: Option<String>,
        sink: Sink,
    ) -> Ssh {
        Ssh {
            client: Client::new(
                "ssh",
                ssh_args(host, port, user, identity, options),
                "--",
                format!("ssh {user}@{host}:{port}"),
                "/tmp",
                log_command,
                sink,
            ),
        }
    }
}

#[async_trait::async_trait]
impl ControlChannel for Ssh {
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
        let mut cmd = self.client.command("true");
        let out = output_within(&mut cmd, CHECK_TIMEOUT, "ssh").await?;
        if !out.status.success() {
            return Err(TargetError::Io(format!(
                "cannot reach the device over {} (`ssh … true` failed: {}); check the address, the key (ssh runs with BatchMode=yes: no password prompts) and the host key",
                self.describe(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
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
        let q = shell_quote(path);
        let out = self
            .client
            .shell(
                &format!("mkdir -p \"$(dirname {q})\" && cat > {q}"),
                Some(content),
                timeout,
            )
            .await?;
        planted(path, out)
    }

    async fn pull(
        &mut self,
        remote_path: &str,
        dest: &Path,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        let mut cmd = self
            .client
            .command(&format!("cat {}", shell_quote(remote_path)));
        cmd.stdin(Stdio::null());
        let out = output_within(&mut cmd, timeout, "ssh").await?;
        if !out.status.success() {
            return Err(TargetError::Guest(format!(
                "reading {remote_path} over ssh failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        std::fs::write(dest, &out.stdout)
            .map_err(|e| TargetError::Io(format!("cannot write {}: {e}", dest.display())))
    }

    async fn start_log(&mut self) -> Result<(), TargetError> {
        self.client.start_log().await
    }

    async fn reboot(&mut self, timeout: Duration) -> Result<(), TargetError> {
        let mut request = self
            .client
            .command("sh -c 'sync; (sleep 1; reboot) >/dev/null 2>&1 &'");
        request
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let plan = RebootPlan {
            request,
            // The connection usually drops before an answer: the status does not matter.
            request_must_run: false,
            before_each_look: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_arguments_never_prompt_and_user_options_win() {
        let a = ssh_args(
            "192.168.77.2",
            2222,
            "root",
            Some(Path::new("/k/id")),
            &["ConnectTimeout=3".to_string()],
        );
        let joined = a.join(" ");
        assert!(joined.contains("-o BatchMode=yes"), "{joined}");
        let user_at = joined.find("ConnectTimeout=3").unwrap();
        let default_at = joined.find("ConnectTimeout=10").unwrap();
        assert!(user_at < default_at, "ssh keeps the first value: {joined}");
        assert!(
            joined.ends_with("-p 2222 -i /k/id -T root@192.168.77.2"),
            "{joined}"
        );
    }
}
