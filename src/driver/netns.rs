//! `kind: netns`: a host program (a vendor daemon, an SDK sample, a real application) in a
//! fresh network namespace whose only interface is a TAP into the vnet.
//!
//! This module owns that namespace and everything started in it: the namespace is made
//! with `ip netns add` (so `ip netns exec` gives the program a `/etc/resolv.conf` that points
//! at telltale), the program runs in its own process group with its output mirrored to
//! `console.log`, `shell` steps run `sh -c` inside the namespace, `plant` writes host files
//! (relative paths under the working directory). At the end every process still in the
//! namespace is killed by PID and the namespace is deleted, which deletes the TAP too.
//! Nothing here can reach another network: the namespace has `lo` and the TAP, nothing else.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use regex::bytes::Regex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::console::ShellOutput;
use super::link::{self, NetnsRef, NsLink};
use super::live::{LiveConsole, Waited};
use super::qemu::describe_status;
use super::{Driver, TargetError};
use crate::scenario::HostCommand;
use crate::vnet::run::VnetHandle;

/// What to run.
#[derive(Debug, Clone)]
pub struct NetnsSpec {
    /// The program.
    pub command: HostCommand,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory (created if missing); relative `plant` paths land here.
    pub workdir: PathBuf,
}

/// A named network namespace, deleted on drop (with its `/etc/netns` folder).
#[derive(Debug)]
pub struct NamedNetns {
    name: String,
}

impl NamedNetns {
    /// Creates `tt-<pid>-<n>`.
    pub async fn create() -> Result<NamedNetns, TargetError> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tt-{}-{n}", std::process::id());
        super::run_host(&["ip", "netns", "add", &name]).await?;
        Ok(NamedNetns { name })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Process ids in the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<u32> {
        std::process::Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills every process left in the namespace (they were all started by telltale).
    pub fn kill_all(&self) {
        for _ in 0..20 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            let mut c = std::process::Command::new("kill");
            c.arg("-KILL").arg("--");
            for p in &pids {
                c.arg(p.to_string());
            }
            let _ = c.stderr(Stdio::null()).status();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
    }
}

/// Fails with [`TargetError::NeedsRoot`] unless telltale can make a namespace with a TAP.
/// [`NetnsProgram::start`] calls it first; the runner calls it before it starts anything.
pub fn check_privileges() -> Result<(), TargetError> {
    super::require_root(
        "a `netns` target",
        "it creates a network namespace and a TAP device",
    )
}

/// A program running in its namespace.
pub struct NetnsProgram {
    ns: NamedNetns,
    spec: NetnsSpec,
    link: NsLink,
    child: Option<Child>,
    console: LiveConsole,
    log: Arc<tokio::sync::Mutex<tokio::fs::File>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl NetnsProgram {
    /// Makes the namespace, puts it on `vnet` and starts the program; its output goes to
    /// `console_log`. Needs root; checked before anything is made.
    pub async fn start(
        spec: &NetnsSpec,
        vnet: &VnetHandle,
        console_log: &Path,
    ) -> Result<NetnsProgram, TargetError> {
        check_privileges()?;
        let ns = NamedNetns::create().await?;
        let link = link::attach(vnet, &NetnsRef::Named(ns.name.clone()), "eth0").await?;
        let etc = Path::new("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&etc)
            .and_then(|_| std::fs::write(etc.join("resolv.conf"), link::resolv_conf(&link.lease)))
            .map_err(|e| TargetError::Io(format!("cannot write {}: {e}", etc.display())))?;
        std::fs::create_dir_all(&spec.workdir).map_err(|e| {
            TargetError::Io(format!("cannot create {}: {e}", spec.workdir.display()))
        })?;
        let file = tokio::fs::File::create(console_log).await.map_err(|e| {
            TargetError::Io(format!("cannot create {}: {e}", console_log.display()))
        })?;
        let mut p = NetnsProgram {
            ns,
            spec: spec.clone(),
            link,
            child: None,
            console: LiveConsole::new(),
            log: Arc::new(tokio::sync::Mutex::new(file)),
            readers: Vec::new(),
        };
        p.note(&format!(
            "namespace {} on telltale's network: {} {}/{} via {}",
            p.ns.name,
            p.link.ifname,
            p.link.lease.ip,
            p.link.lease.prefix_len,
            p.link.lease.gateway
        ))
        .await;
        p.spawn().await?;
        Ok(p)
    }

    /// The namespace's name (for tests and messages).
    pub fn namespace(&self) -> &str {
        self.ns.name()
    }

    /// The address the program has on the vnet.
    pub fn address(&self) -> std::net::Ipv4Addr {
        self.link.lease.ip
    }

    /// A command run inside the namespace (`ip netns exec NAME …`).
    fn in_ns(&self, argv: &[String]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns.name])
            .args(argv)
            .current_dir(&self.spec.workdir)
            .envs(self.spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// A line of telltale's own in `console.log`. It stays out of what `wait_for` searches:
    /// the program's command line in it would match a pattern the program has not printed.
    async fn note(&self, line: &str) {
        let text = format!("[telltale] {line}\n");
        let mut f = self.log.lock().await;
        let _ = f.write_all(text.as_bytes()).await;
        let _ = f.flush().await;
    }

    async fn spawn(&mut self) -> Result<(), TargetError> {
        let argv = match &self.spec.command {
            HostCommand::Argv(v) => v.clone(),
            HostCommand::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
        };
        let mut cmd = self.in_ns(&argv);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| TargetError::Spawn {
            program: "ip netns exec".into(),
            hint: format!("{e} (Debian: apt-get install iproute2)"),
        })?;
        self.note(&format!("started `{}`", argv.join(" "))).await;
        for out in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let (c, l) = (self.console.clone(), self.log.clone());
            self.readers.push(tokio::spawn(async move {
                let mut out = out;
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(k) = out.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    push_output(&c, &l, &buf[..k]).await;
                }
                c.wake();
            }));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Whether the program has ended (and how).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Stops the program: SIGTERM to its process group, SIGKILL after `grace`, then every
    /// process left in the namespace.
    async fn kill_program(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            if let (None, Some(pid)) = (child.try_wait().ok().flatten(), child.id()) {
                let _ = Command::new("kill")
                    .args(["-TERM", "--", &format!("-{pid}")])
                    .stderr(Stdio::null())
                    .status()
                    .await;
                if tokio::time::timeout(grace, child.wait()).await.is_err() {
                    let _ = Command::new("kill")
                        .args(["-KILL", "--", &format!("-{pid}")])
                        .stderr(Stdio::null())
                        .status()
                        .await;
                    let _ = child.wait().await;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                self.note(&format!("program ended: {}", describe_status(status)))
                    .await;
            }
        }
        self.ns.kill_all();
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(1), r).await;
        }
    }
}

async fn push_output(
    console: &LiveConsole,
    log: &tokio::sync::Mutex<tokio::fs::File>,
    data: &[u8],
) {
    {
        let mut f = log.lock().await;
        let _ = f.write_all(data).await;
        let _ = f.flush().await;
    }
    console.push(data);
}

#[async_trait::async_trait]
impl Driver for NetnsProgram {
    async fn wait_for(&mut self, re: &Regex, timeout: Duration) -> Result<String, TargetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.console.next(deadline, |c| c.find(re)).await {
                Waited::Found(m) => return Ok(m),
                Waited::Expired => {
                    return Err(TargetError::Timeout {
                        what: format!("output matching /{}/", re.as_str()),
                        after: timeout,
                        tail: self.tail(15),
                    })
                }
                Waited::Again => {}
            }
            if let Some(status) = self.exited() {
                // Its output may still be in flight: read what is left, then decide.
                for r in self.readers.drain(..) {
                    let _ = tokio::time::timeout(Duration::from_secs(1), r).await;
                }
                if let Some(m) = self.console.poll(|c| c.find(re)) {
                    return Ok(m);
                }
                return Err(TargetError::Exited {
                    status: describe_status(status),
                    tail: self.tail(15),
                });
            }
        }
    }

    async fn shell(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<ShellOutput, TargetError> {
        let mut c = self.in_ns(&["sh".into(), "-c".into(), format!("exec 2>&1; {command}")]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = tokio::time::timeout(timeout, c.output())
            .await
            .map_err(|_| TargetError::Timeout {
                what: format!("the shell command `{command}` to finish"),
                after: timeout,
                tail: self.tail(15),
            })?
            .map_err(|e| {
                TargetError::Io(format!("cannot run `{command}` in the namespace: {e}"))
            })?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(ShellOutput {
            status: out.status.code().unwrap_or(-1),
            output,
        })
    }

    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        _timeout: Duration,
    ) -> Result<(), TargetError> {
        let p = self.spec.workdir.join(path);
        let io = |e: std::io::Error| TargetError::Io(format!("cannot write {}: {e}", p.display()));
        if let Some(parent) = p.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        tokio::fs::write(&p, content).await.map_err(io)
    }

    async fn reboot(&mut self, _timeout: Duration) -> Result<(), TargetError> {
        self.console.consume_all();
        self.kill_program(Duration::from_secs(5)).await;
        self.note("restarting the program").await;
        self.spawn().await
    }

    /// A host program that ends is not a failure in itself (one-shot clients end): this
    /// never resolves. A `wait_for` on a program that has ended fails at once.
    async fn ended(&mut self) -> TargetError {
        std::future::pending().await
    }

    async fn stop(&mut self) {
        self.kill_program(Duration::from_secs(5)).await;
    }

    fn tail(&self, n: usize) -> String {
        self.console.tail(n)
    }
}

impl Drop for NetnsProgram {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let (Ok(None), Some(pid)) = (child.try_wait(), child.id()) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for r in &self.readers {
            r.abort();
        }
        // `ns` drops next: it kills what is left and deletes the namespace and the TAP.
    }
}
