//! The QEMU target: boots a kernel (+ initrd, + disk) under emulation, wired to the vnet.
//!
//! This module owns the QEMU process: its command line (no default devices, never QEMU's
//! user network; the only NIC is a virtio-net whose backend is the vnet's unix socket), its
//! serial console (stdin/stdout, mirrored to `console.log`), and its end: QMP `quit`, then
//! SIGKILL if it does not go, on [`Qemu::stop`] and on drop, so no QEMU outlives a run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use regex::bytes::Regex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, ChildStdin, Command};

use super::console::{plant_through, ShellCall, ShellOutput};
use super::live::LiveConsole;
use super::TargetError;

/// What to boot and how.
#[derive(Debug, Clone, PartialEq)]
pub struct QemuSpec {
    /// `x86_64` or `aarch64`.
    pub arch: String,
    /// Kernel image.
    pub kernel: PathBuf,
    /// Initial ramdisk.
    pub initrd: Option<PathBuf>,
    /// Disk image (the caller passes a per-run copy: it is written to).
    pub disk: Option<PathBuf>,
    /// Kernel command line.
    pub append: String,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Accelerators to try in order (`kvm`, `tcg`); QEMU falls back to the next.
    pub accel: Vec<String>,
    /// MAC address of the guest's NIC.
    pub mac: String,
    /// The user QEMU becomes once it has opened its files and sockets (`-runas`): telltale passes `nobody`
    /// when it runs as root, so that a guest that escapes through a QEMU bug is not root on the host.
    pub run_as: Option<String>,
}

impl QemuSpec {
    /// The emulator binary for the architecture.
    pub fn program(&self) -> String {
        format!("qemu-system-{}", self.arch)
    }

    /// The full argument list. `net_sock` is the vnet's stream socket, `qmp_sock` where
    /// QEMU listens for QMP.
    pub fn args(&self, net_sock: &Path, qmp_sock: &Path) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |s: &str| a.push(s.to_string());
        match self.arch.as_str() {
            "aarch64" => {
                push("-machine");
                push("virt");
                push("-cpu");
                push("cortex-a57");
            }
            _ => {
                push("-machine");
                push("q35");
            }
        }
        for acc in &self.accel {
            push("-accel");
            push(acc);
        }
        for s in [
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-monitor",
            "none",
        ] {
            push(s);
        }
        // QEMU's seccomp sandbox: no obsolete system calls, no fork/exec, and no setuid/setgid (the guest's
        // way out through a QEMU bug is narrower). With `-runas`, QEMU's own change of user must be allowed
        // (QEMU 7.2 dies of SIGSYS otherwise); once it is `nobody`, it cannot become root again.
        push("-sandbox");
        match &self.run_as {
            Some(user) => {
                push("on,obsolete=deny,elevateprivileges=allow,spawn=deny");
                push("-runas");
                push(user);
            }
            None => push("on,obsolete=deny,elevateprivileges=deny,spawn=deny"),
        }
        push("-serial");
        push("stdio");
        push("-m");
        push(&self.memory_mib.to_string());
        push("-smp");
        push(&self.cpus.to_string());
        push("-qmp");
        push(&format!("unix:{},server=on,wait=off", qmp_sock.display()));
        push("-kernel");
        push(&self.kernel.display().to_string());
        if let Some(i) = &self.initrd {
            push("-initrd");
            push(&i.display().to_string());
        }
        push("-append");
        push(&self.append);
        if let Some(d) = &self.disk {
            push("-drive");
            push(&format!(
                "file={},format=raw,if=virtio",
                escape_opt(&d.display().to_string())
            ));
        }
        push("-netdev");
        push(&format!(
            "stream,id=net0,server=off,addr.type=unix,addr.path={}",
            escape_opt(&net_sock.display().to_string())
        ));
        push("-device");
        push(&format!("virtio-net-pci,netdev=net0,mac={}", self.mac));
        a
    }
}

/// QEMU option values escape commas by doubling them.
fn escape_opt(s: &str) -> String {
    s.replace(',', ",,")
}

/// A running QEMU.
pub struct Qemu {
    child: Child,
    stdin: ChildStdin,
    console: LiveConsole,
    qmp: PathBuf,
    calls: u64,
    reader: tokio::task::JoinHandle<()>,
}

impl Qemu {
    /// Starts QEMU. The console is mirrored to `console_log`.
    pub async fn start(
        spec: &QemuSpec,
        net_sock: &Path,
        qmp_sock: &Path,
        console_log: &Path,
    ) -> Result<Qemu, TargetError> {
        let program = spec.program();
        let mut cmd = Command::new(&program);
        cmd.args(spec.args(net_sock, qmp_sock))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| TargetError::Spawn {
            program: program.clone(),
            hint: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "install it (Debian: apt-get install --no-install-recommends qemu-system-{})",
                    qemu_package(&spec.arch)
                )
            } else {
                e.to_string()
            },
        })?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| TargetError::Io("no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| TargetError::Io("no stdout".into()))?;
        let stderr = child.stderr.take();
        let console = LiveConsole::new();
        let mut log = tokio::fs::File::create(console_log).await.map_err(|e| {
            TargetError::Io(format!("cannot create {}: {e}", console_log.display()))
        })?;
        let c2 = console.clone();
        let reader = tokio::spawn(async move {
            let mut out = stdout;
            let mut err = stderr.map(BufReader::new);
            let mut buf = vec![0u8; 16 * 1024];
            let mut line = String::new();
            loop {
                tokio::select! {
                    n = out.read(&mut buf) => {
                        let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                        let _ = log.write_all(&buf[..n]).await;
                        let _ = log.flush().await;
                        c2.push(&buf[..n]);
                    }
                    r = async { match err.as_mut() { Some(e) => e.read_line(&mut line).await, None => std::future::pending().await } } => {
                        match r {
                            Ok(0) | Err(_) => { err = None; }
                            Ok(_) => {
                                let msg = format!("[qemu] {line}");
                                let _ = log.write_all(msg.as_bytes()).await;
                                c2.push(msg.as_bytes());
                                line.clear();
                            }
                        }
                    }
                }
            }
            c2.wake();
        });
        Ok(Qemu {
            child,
            stdin,
            console,
            qmp: qmp_sock.to_path_buf(),
            calls: 0,
            reader,
        })
    }

    /// The process id (for tests that kill it).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether QEMU has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of the console.
    pub fn tail(&self, n: usize) -> String {
        self.console.tail(n)
    }

    /// Types `command` (e.g. `reboot`) without waiting for it to finish; output printed so
    /// far is consumed, so the next wait needs fresh output.
    pub async fn send_line(&mut self, command: &str) -> Result<(), TargetError> {
        self.console.consume_all();
        self.write(format!("{command}\n").as_bytes()).await
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), TargetError> {
        self.check_alive()?;
        self.stdin
            .write_all(data)
            .await
            .map_err(|e| TargetError::Io(format!("writing to the console: {e}")))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| TargetError::Io(format!("writing to the console: {e}")))
    }

    fn check_alive(&mut self) -> Result<(), TargetError> {
        match self.exited() {
            Some(status) => Err(TargetError::Exited {
                status: describe_status(status),
                tail: self.tail(15),
            }),
            None => Ok(()),
        }
    }

    /// Resolves when QEMU exits.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        match self.child.wait().await {
            Ok(s) => s,
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops QEMU: QMP `quit`, then SIGKILL after `grace`. Always reaps the process.
    pub async fn stop(&mut self, grace: Duration) {
        if self.exited().is_none() {
            let _ = tokio::time::timeout(grace, qmp_quit(&self.qmp)).await;
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.reader).await;
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        // kill_on_drop does the SIGKILL; reap if it already ended.
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
        self.reader.abort();
    }
}

#[async_trait::async_trait]
impl super::Driver for Qemu {
    /// Waits until the console prints something matching `re` (after what earlier waits
    /// consumed). Fails on timeout or when QEMU exits.
    async fn wait_for(&mut self, re: &Regex, timeout: Duration) -> Result<String, TargetError> {
        let console = self.console.clone();
        let what = || format!("console output matching /{}/", re.as_str());
        console
            .wait(timeout, what, |c| c.find(re), || self.check_alive())
            .await
    }

    /// Runs a shell command on the console and returns its status and output.
    async fn shell(&mut self, cmd: &str, timeout: Duration) -> Result<ShellOutput, TargetError> {
        self.calls += 1;
        let call = ShellCall::new(cmd, self.calls);
        self.write(call.line.as_bytes()).await?;
        let console = self.console.clone();
        let what = || format!("the shell command `{cmd}` to finish");
        console
            .wait(timeout, what, |c| call.poll(c), || self.check_alive())
            .await
    }

    /// Writes a file in the guest through the shell.
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

    async fn reboot(&mut self, _timeout: Duration) -> Result<(), TargetError> {
        self.send_line("sync; reboot").await
    }

    async fn ended(&mut self) -> TargetError {
        let status = self.wait_exit().await;
        TargetError::Exited {
            status: describe_status(status),
            tail: self.tail(15),
        }
    }

    async fn stop(&mut self) {
        Qemu::stop(self, Duration::from_secs(5)).await
    }

    fn tail(&self, n: usize) -> String {
        Qemu::tail(self, n)
    }
}

async fn qmp_quit(path: &Path) -> std::io::Result<()> {
    let s = UnixStream::connect(path).await?;
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await?; // greeting
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n").await?;
    line.clear();
    r.read_line(&mut line).await?;
    w.write_all(b"{\"execute\":\"quit\"}\n").await?;
    line.clear();
    let _ = r.read_line(&mut line).await;
    Ok(())
}

fn qemu_package(arch: &str) -> &'static str {
    match arch {
        "aarch64" => "arm",
        _ => "x86",
    }
}

/// "exit status 1", "killed by signal 9 (SIGKILL)"…
pub fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(9) => "killed by signal 9 (SIGKILL)".into(),
        Some(15) => "killed by signal 15 (SIGTERM)".into(),
        Some(2) => "killed by signal 2 (SIGINT)".into(),
        Some(s) => format!("killed by signal {s}"),
        None => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> QemuSpec {
        QemuSpec {
            arch: "x86_64".into(),
            kernel: "/img/vmlinuz".into(),
            initrd: Some("/img/fw,1.cpio.gz".into()),
            disk: Some("/run/disk.img".into()),
            append: "console=ttyS0 quiet".into(),
            memory_mib: 256,
            cpus: 1,
            accel: vec!["kvm".into(), "tcg".into()],
            mac: "52:54:00:12:34:56".into(),
            run_as: None,
        }
    }

    #[test]
    fn command_line_has_no_user_network_and_one_stream_nic() {
        let args = spec().args(Path::new("/tmp/x/net.sock"), Path::new("/tmp/x/qmp.sock"));
        let joined = args.join(" ");
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("user") || a.contains("user,") || a == "-nic"),
            "{joined}"
        );
        assert!(!joined.contains("slirp"));
        assert!(args.contains(&"-nodefaults".to_string()), "no default NIC");
        let sandbox = args.iter().position(|a| a == "-sandbox").expect("-sandbox");
        assert!(args[sandbox + 1].starts_with("on,"), "{args:?}");
        assert!(
            args[sandbox + 1].contains("elevateprivileges=deny"),
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a == "-runas"), "{args:?}");
        let mut root = spec();
        root.run_as = Some("nobody".into());
        let args = root.args(Path::new("/n"), Path::new("/q"));
        assert!(
            args.windows(2)
                .any(|w| w[0] == "-runas" && w[1] == "nobody"),
            "{args:?}"
        );
        let sandbox = args.iter().position(|a| a == "-sandbox").expect("-sandbox");
        assert!(args[sandbox + 1].contains("spawn=deny"), "{args:?}");
        assert_eq!(args.iter().filter(|a| *a == "-netdev").count(), 1);
        assert!(joined.contains(
            "-netdev stream,id=net0,server=off,addr.type=unix,addr.path=/tmp/x/net.sock"
        ));
        assert!(
            joined.contains("-initrd /img/fw,1.cpio.gz"),
            "plain paths are not escaped"
        );
        assert!(joined.contains("-accel kvm -accel tcg"));
        assert_eq!(spec().program(), "qemu-system-x86_64");
    }

    #[test]
    fn aarch64_uses_virt() {
        let mut s = spec();
        s.arch = "aarch64".into();
        let args = s.args(Path::new("/n"), Path::new("/q"));
        assert!(args
            .windows(2)
            .any(|w| w[0] == "-machine" && w[1] == "virt"));
        assert_eq!(s.program(), "qemu-system-aarch64");
    }

    #[test]
    fn option_values_escape_commas() {
        let mut s = spec();
        s.disk = Some("/a,b/disk.img".into());
        let args = s.args(Path::new("/n"), Path::new("/q"));
        assert!(args
            .iter()
            .any(|a| a == "file=/a,,b/disk.img,format=raw,if=virtio"));
    }
}
