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
    /// Who the program and `shell` steps run as.
    pub run_as: RunAs,
}

/// Who a `netns` program and its `shell` steps run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// Root with its capabilities (`root: true`, allowed by `--allow-host=root`): it could leave its
    /// namespace.
    Root,
    /// An unprivileged user: `setpriv` sets the real, effective and saved user and group ids, clears the
    /// supplementary groups, empties the capability bounding and inheritable sets and sets
    /// `no_new_privs`, after `ip netns exec` has entered the namespace. The program cannot enter another
    /// namespace, change routes or reach another interface. Ports below 1024 stay bindable inside the
    /// namespace (its `ip_unprivileged_port_start` is 0).
    User {
        /// User id (never 0).
        uid: u32,
        /// Group id.
        gid: u32,
    },
}

/// The default unprivileged user, and its ids when `/etc/passwd` has no such name.
pub const DEFAULT_USER: &str = "nobody";
const NOBODY_ID: u32 = 65534;

impl RunAs {
    /// The user `spec` names (`NAME` from `/etc/passwd`, `UID` or `UID:GID`; a bare `UID` takes
    /// the same number as its group), or [`DEFAULT_USER`]. Root (id 0) is refused: keeping root is
    /// [`RunAs::Root`], which the scenario must ask for.
    pub fn user(spec: Option<&str>) -> Result<RunAs, TargetError> {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        Self::user_in(spec, &passwd)
    }

    /// [`RunAs::user`] against the text of a passwd file.
    pub fn user_in(spec: Option<&str>, passwd: &str) -> Result<RunAs, TargetError> {
        let name = spec.unwrap_or(DEFAULT_USER).trim();
        let bad = |why: &str| TargetError::Io(format!("cannot run the program as `{name}`: {why}"));
        let ids = if let Some((u, g)) = name.split_once(':') {
            match (u.trim().parse::<u32>(), g.trim().parse::<u32>()) {
                (Ok(u), Ok(g)) => (u, g),
                _ => return Err(bad("`UID:GID` takes two numbers")),
            }
        } else if let Ok(u) = name.parse::<u32>() {
            (u, u)
        } else {
            let found = passwd.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                match f.as_slice() {
                    [n, _, u, g, ..] if *n == name => Some((u.parse().ok()?, g.parse().ok()?)),
                    _ => None,
                }
            });
            match found {
                Some(ids) => ids,
                None if spec.is_none() => (NOBODY_ID, NOBODY_ID),
                None => return Err(bad("no such user in /etc/passwd")),
            }
        };
        if ids.0 == 0 {
            return Err(bad(
                "that is root; to keep root the scenario says `root: true` (and the command line `--allow-host=root`)",
            ));
        }
        Ok(RunAs::User {
            uid: ids.0,
            gid: ids.1,
        })
    }

    /// What to put between `ip netns exec NAME` and the program.
    fn prefix(&self) -> Vec<String> {
        match self {
            RunAs::Root => Vec::new(),
            RunAs::User { uid, gid } => vec![
                "setpriv".into(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--no-new-privs".into(),
                "--inh-caps=-all".into(),
                "--bounding-set=-all".into(),
                "--".into(),
            ],
        }
    }

    /// Gives a file telltale made for the program to the program's user.
    pub fn give(&self, path: &Path) -> Result<(), TargetError> {
        match self {
            RunAs::Root => Ok(()),
            RunAs::User { uid, gid } => std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .map_err(|e| {
                    TargetError::Io(format!("cannot give {} to uid {uid}: {e}", path.display()))
                }),
        }
    }
}

/// Output of a `shell` step kept at most (bytes); what follows is counted, not kept.
pub const SHELL_OUTPUT_MAX: usize = 1 << 20;

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
        spec.run_as.give(&spec.workdir)?;
        if let RunAs::User { .. } = spec.run_as {
            // Low ports stay bindable for the unprivileged program, in this namespace only.
            super::run_host(&[
                "ip",
                "netns",
                "exec",
                &ns.name,
                "sh",
                "-c",
                "echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start",
            ])
            .await?;
        }
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

    /// A command run inside the namespace (`ip netns exec NAME …`). For an unprivileged program, the
    /// scenario's `env` is set by `env` after `setpriv` has dropped root, so that `PATH`, `LD_PRELOAD` and
    /// the like never reach `ip` or `setpriv`, which run as root.
    fn in_ns(&self, argv: &[String]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns.name])
            .args(self.spec.run_as.prefix());
        match self.spec.run_as {
            RunAs::User { .. } => {
                c.arg("env")
                    .arg("--")
                    .arg(format!("HOME={}", self.spec.workdir.display()))
                    .args(self.spec.env.iter().map(|(k, v)| format!("{k}={v}")));
                if argv.first().is_some_and(|a| a.contains('=')) {
                    // `env` would read a program named `x=y` as one more variable: a shell runs it instead.
                    c.args(["sh", "-c", "exec \"$@\"", "sh"]);
                }
            }
            RunAs::Root => {
                c.envs(self.spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            }
        }
        c.args(argv)
            .current_dir(&self.spec.workdir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Writes `content` to `path` (under the program's home) as the program's user, making the folders
    /// between (see [`NetnsProgram::plant`]).
    async fn plant_as_user(&self, path: &Path, content: &[u8]) -> Result<(), TargetError> {
        let fail = |e: String| TargetError::Io(format!("cannot write {}: {e}", path.display()));
        let mut c = Command::new("setpriv");
        c.args(self.spec.run_as.prefix().into_iter().skip(1))
            .args([
                "sh",
                "-c",
                "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\"",
                "sh",
            ])
            .arg(path)
            .current_dir(&self.spec.workdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = c.spawn().map_err(|e| fail(format!("setpriv: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(content)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(
                String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(500)
                    .collect::<String>()
                    .trim()
                    .to_string(),
            ))
        }
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
        // The command as the scenario wrote it (a shell command is not shown wrapped in another `sh -c`).
        let shown = match &self.spec.command {
            HostCommand::Argv(v) => v.join(" "),
            HostCommand::Shell(s) => s.clone(),
        };
        self.note(&format!("started `{shown}`")).await;
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
        c.stdout(Stdio::piped()).stderr(Stdio::null());
        let io = |e: std::io::Error| {
            TargetError::Io(format!("cannot run `{command}` in the namespace: {e}"))
        };
        let mut child = c.spawn().map_err(io)?;
        let run = async {
            // At most SHELL_OUTPUT_MAX bytes are kept; the rest is read and dropped, so a command that prints
            // without end costs no memory (and still ends by its timeout).
            let mut kept = Vec::new();
            let mut over = 0u64;
            if let Some(mut out) = child.stdout.take() {
                (&mut out)
                    .take(SHELL_OUTPUT_MAX as u64)
                    .read_to_end(&mut kept)
                    .await?;
                over = tokio::io::copy(&mut out, &mut tokio::io::sink()).await?;
            }
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((kept, over, status))
        };
        let (kept, over, status) = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| TargetError::Timeout {
                what: format!("the shell command `{command}` to finish"),
                after: timeout,
                tail: self.tail(15),
            })?
            .map_err(io)?;
        let mut output = String::from_utf8_lossy(&kept).into_owned();
        if over > 0 {
            output.push_str(&format!(
                "\n[telltale: {over} more bytes of output past {SHELL_OUTPUT_MAX} were not kept]\n"
            ));
        }
        Ok(ShellOutput {
            status: status.code().unwrap_or(-1),
            output,
        })
    }

    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError> {
        let p = self.spec.workdir.join(path);
        let io = |e: std::io::Error| TargetError::Io(format!("cannot write {}: {e}", p.display()));
        if let RunAs::User { .. } = self.spec.run_as {
            // Written by the program's own user: the program owns its home and could have put a link where
            // the file goes (`key -> /etc/shadow`); as that user, the write cannot reach past what it may.
            // Bounded: the program could have put a FIFO where the file goes.
            return tokio::time::timeout(timeout, self.plant_as_user(&p, content))
                .await
                .map_err(|_| TargetError::Timeout {
                    what: format!("{} to be written", p.display()),
                    after: timeout,
                    tail: String::new(),
                })?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\ntoor:x:0:0::/:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";

    #[test]
    fn the_default_user_is_nobody() {
        let u = |ids| RunAs::User { uid: ids, gid: ids };
        assert_eq!(RunAs::user_in(None, PASSWD).unwrap(), u(65534));
        // Without a passwd entry, the conventional ids.
        assert_eq!(RunAs::user_in(None, "").unwrap(), u(65534));
    }

    #[test]
    fn users_by_name_number_or_pair_and_never_root() {
        assert_eq!(
            RunAs::user_in(Some("app"), PASSWD).unwrap(),
            RunAs::User {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(
            RunAs::user_in(Some("4000:4001"), PASSWD).unwrap(),
            RunAs::User {
                uid: 4000,
                gid: 4001
            }
        );
        assert_eq!(
            RunAs::user_in(Some("4000"), "").unwrap(),
            RunAs::User {
                uid: 4000,
                gid: 4000
            }
        );
        for root in ["root", "toor", "0", "0:5"] {
            let e = RunAs::user_in(Some(root), PASSWD).unwrap_err().to_string();
            assert!(e.contains("root: true"), "{root}: {e}");
        }
        let e = RunAs::user_in(Some("ghost"), PASSWD)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such user"), "{e}");
    }

    #[test]
    fn an_unprivileged_program_runs_through_setpriv_without_capabilities() {
        let p = RunAs::User { uid: 7, gid: 8 }.prefix();
        assert_eq!(p[0], "setpriv");
        for flag in [
            "--reuid=7",
            "--regid=8",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ] {
            assert!(p.iter().any(|a| a == flag), "{flag} missing: {p:?}");
        }
        assert!(RunAs::Root.prefix().is_empty());
    }
}
