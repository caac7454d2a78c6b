//! The container target: a local container image run by the Docker engine, wired to the vnet.
//!
//! This module owns one container's life: creating it from a local image (pulled only when
//! missing) with Docker's network mode `none`, copying files in, starting it, giving its
//! network namespace a TAP into the vnet as its only interface ([`link::attach`], addressed
//! with the vnet's lease, default route to telltale) and an `/etc/resolv.conf` that sends
//! every lookup to telltale, mirroring its log (stdout and stderr) to `console.log`,
//! `shell` through `docker exec`, `plant` through the archive API (no shell needed in the
//! image), `reboot` as `docker restart` with the same TAP moved out of the old namespace
//! and into the new one, and its removal: on [`Container::stop`] and, as a last resort, on
//! drop (a synchronous request on the engine's socket, so it works without a runtime).
//! With `keep` the container is left running and its id printed.
//!
//! The engine is reached with bollard on the unix socket of `DOCKER_HOST` (`unix://…`) or
//! `/var/run/docker.sock`. The API version is negotiated down to the engine's (Debian's
//! docker.io 20.10 speaks 1.41; bollard's default, 1.49, is refused there). Containers carry
//! the label `telltale=1` (and `telltale.pid=<pid of telltale>`), so leftovers can be found
//! with `docker ps -a --filter label=telltale=1`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::exec::StartExecResults;
use bollard::models::{ContainerCreateBody, ExecConfig, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt;
use regex::bytes::Regex;
use tokio::io::AsyncWriteExt;

use super::console::ShellOutput;
use super::link::{self, NetnsRef, NsLink};
use super::live::{LiveConsole, Waited};
use super::TargetError;
use crate::vnet::run::VnetHandle;

/// The label every container telltale makes carries.
pub const LABEL: &str = "telltale";
/// Interface name of the vnet link inside the container.
const IFNAME: &str = "eth0";
/// Seconds the engine waits after SIGTERM before SIGKILL on stop and restart.
const STOP_GRACE_SECS: i32 = 5;
/// Timeout of one engine request (not of streams once they started).
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// The oldest API version asked for when probing the engine.
const PROBE_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 24,
};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    /// Image name (`telltale-demo/cloudsync`).
    pub image: String,
    /// Image tag (`v1`).
    pub tag: String,
    /// Command replacing the image's CMD; empty keeps the image's.
    pub cmd: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Files (or directories) on the host copied to absolute paths in the container before
    /// it starts.
    pub copy: Vec<(PathBuf, String)>,
    /// Leave the container running at the end (for debugging) instead of removing it.
    pub keep: bool,
    /// User the container's process and `shell` commands run as (default: the image's).
    pub user: Option<String>,
}

impl ContainerSpec {
    /// `image:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }
}

/// A running container on the vnet.
pub struct Container {
    docker: Docker,
    id: String,
    keep: bool,
    user: Option<String>,
    console: LiveConsole,
    /// Timestamp of the last log line taken (log streams are reopened after a restart).
    last_log: Arc<Mutex<Option<LogTime>>>,
    log_file: PathBuf,
    reader: tokio::task::JoinHandle<()>,
    link: NsLink,
    pid: u32,
    /// Removed (or deliberately kept): nothing left to do on drop.
    released: bool,
    socket: String,
}

/// Why containers cannot run here (no engine answering, with what to do), or `None`.
pub async fn engine_unavailable() -> Option<String> {
    match tokio::time::timeout(Duration::from_secs(10), connect()).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!(
            "the Docker engine at {} did not answer within 10s; start one with `ci/docker-engine start`",
            socket_path().unwrap_or_else(|_| "DOCKER_HOST".into())
        )),
    }
}

/// Fails with [`TargetError::NeedsRoot`] unless telltale can put a TAP into a container.
/// [`Container::start`] calls it first; the runner calls it before it starts anything.
pub fn check_privileges() -> Result<(), TargetError> {
    super::require_root(
        "a `container` target",
        "telltale moves a TAP device into the container's network namespace",
    )
}

impl Container {
    /// Creates and starts the container, puts it on `vnet` and mirrors its log to
    /// `console_log`. Needs root (checked before anything is started). On failure nothing is
    /// left behind.
    pub async fn start(
        spec: &ContainerSpec,
        vnet: &VnetHandle,
        console_log: &Path,
    ) -> Result<Container, TargetError> {
        check_privileges()?;
        let socket = socket_path()?;
        let docker = connect().await?;
        let reference = spec.reference();
        ensure_image(&docker, &reference).await?;
        let mut log = tokio::fs::File::create(console_log).await.map_err(|e| {
            TargetError::Io(format!("cannot create {}: {e}", console_log.display()))
        })?;
        let id = create(&docker, spec).await?;
        // From here on the container exists: removed again on any failure, also when this
        // future is dropped half-way (Ctrl-C during start).
        let mut guard = RemoveGuard {
            socket: socket.clone(),
            id: Some(id.clone()),
        };
        for (host, path) in &spec.copy {
            let tar = tar_of_host_path(host, path)?;
            upload(
                &docker,
                &id,
                tar,
                &format!("copying {} to {path}", host.display()),
            )
            .await?;
        }
        docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
            .map_err(|e| TargetError::Spawn {
                program: format!("container {reference}"),
                hint: format!("the engine could not start it: {}", engine_message(&e)),
            })?;
        let pid = running_pid(&docker, &id).await?;
        let link = match link::attach(vnet, &NetnsRef::Pid(pid), IFNAME).await {
            Ok(l) => l,
            // A container that ended at once takes its namespace with it: say that.
            Err(e) => return Err(running_pid(&docker, &id).await.err().unwrap_or(e)),
        };
        write_resolv_conf(&docker, &id, &link).await?;
        let _ = log
            .write_all(
                format!(
                    "[telltale] container {} ({reference}) pid {pid}, {IFNAME} {}/{} via {}\n",
                    short(&id),
                    link.lease.ip,
                    link.lease.prefix_len,
                    link.lease.gateway
                )
                .as_bytes(),
            )
            .await;
        drop(log);
        let console = LiveConsole::new();
        let last_log = Arc::new(Mutex::new(None));
        let reader = spawn_reader(
            docker.clone(),
            id.clone(),
            console.clone(),
            last_log.clone(),
            console_log.to_path_buf(),
        );
        guard.id = None;
        Ok(Container {
            docker,
            id,
            keep: spec.keep,
            user: spec.user.clone(),
            console,
            last_log,
            log_file: console_log.to_path_buf(),
            reader,
            link,
            pid,
            released: false,
            socket,
        })
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// PID of the container's first process, as the host sees it (changes on reboot).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The vnet link inside the container.
    pub fn link(&self) -> &NsLink {
        &self.link
    }

    /// The last lines of the log.
    pub fn tail(&self, n: usize) -> String {
        self.console.tail(n)
    }

    /// Fails with [`TargetError::Exited`] when the container no longer runs. Restarts the
    /// log reader if its stream ended while the container still runs.
    async fn check_alive(&mut self) -> Result<(), TargetError> {
        if !self.reader.is_finished() {
            return Ok(());
        }
        let state = self
            .docker
            .inspect_container(&self.id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.state);
        match state {
            Some(s) if s.running == Some(true) => {
                self.reader = spawn_reader(
                    self.docker.clone(),
                    self.id.clone(),
                    self.console.clone(),
                    self.last_log.clone(),
                    self.log_file.clone(),
                );
                Ok(())
            }
            Some(s) => Err(TargetError::Exited {
                status: match s.exit_code {
                    Some(c) => format!("container exited with status {c}"),
                    None => "container stopped".into(),
                },
                tail: self.tail(15),
            }),
            None => Err(TargetError::Exited {
                status: "container gone".into(),
                tail: self.tail(15),
            }),
        }
    }

    /// Moves the TAP out of the container's namespace into telltale's own (down, under a
    /// fresh `tt…` name), so that it outlives the namespace: a TAP whose namespace goes away
    /// is deleted under the vnet's feet (its reads then fail with EBADFD). Once the vnet
    /// closes the descriptor the device is gone. Returns the parked name.
    async fn park_link(&self) -> Result<String, TargetError> {
        let parked = link::unique_tap_name();
        let ns = NetnsRef::Pid(self.pid);
        let own = std::process::id().to_string();
        link::run_in(&ns, &["ip", "link", "set", "dev", IFNAME, "down"]).await?;
        link::run_in(&ns, &["ip", "link", "set", "dev", IFNAME, "name", &parked]).await?;
        link::run_in(&ns, &["ip", "link", "set", "dev", &parked, "netns", &own]).await?;
        Ok(parked)
    }

    /// Resolves when the container stops on its own.
    pub async fn wait_exit(&mut self) -> String {
        loop {
            let mut s = self.docker.wait_container(
                &self.id,
                Some(
                    WaitContainerOptionsBuilder::new()
                        .condition("not-running")
                        .build(),
                ),
            );
            match s.next().await {
                Some(Ok(r)) => return format!("container exited with status {}", r.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    return format!("container exited with status {code}")
                }
                Some(Err(bollard::errors::Error::RequestTimeoutError)) => continue,
                Some(Err(e)) => return format!("lost the container: {}", engine_message(&e)),
                None => return "container stopped".into(),
            }
        }
    }

    /// Stops and removes the container (with `keep`: leaves it running and prints its id).
    pub async fn stop(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        if self.keep {
            eprintln!(
                "telltale: kept container {} (running, without network once telltale ends); \
                 inspect with `docker exec -it {} sh`, remove with `docker rm -f {}`",
                self.id,
                short(&self.id),
                short(&self.id)
            );
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.reader).await;
            self.reader.abort();
            return;
        }
        // Pull the cable first (best effort: the container may have ended already).
        let _ = tokio::time::timeout(Duration::from_secs(5), self.park_link()).await;
        let _ = tokio::time::timeout(
            Duration::from_secs(u64::from(STOP_GRACE_SECS.unsigned_abs()) + 5),
            self.docker.stop_container(
                &self.id,
                Some(
                    StopContainerOptionsBuilder::new()
                        .t(STOP_GRACE_SECS)
                        .build(),
                ),
            ),
        )
        .await;
        // Let the reader take the last lines before the log goes with the container.
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.reader).await;
        self.reader.abort();
        let removed = tokio::time::timeout(
            Duration::from_secs(30),
            self.docker.remove_container(
                &self.id,
                Some(
                    RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            ),
        )
        .await;
        if !matches!(removed, Ok(Ok(()))) {
            remove_blocking(&self.socket, &self.id);
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.reader.abort();
        if !self.released && !self.keep {
            remove_blocking(&self.socket, &self.id);
        }
    }
}

#[async_trait::async_trait]
impl super::Driver for Container {
    /// Waits until the log shows something matching `re` (after what earlier waits
    /// consumed). Fails on timeout or when the container stops.
    async fn wait_for(&mut self, re: &Regex, timeout: Duration) -> Result<String, TargetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.console.next(deadline, |c| c.find(re)).await {
                Waited::Found(m) => return Ok(m),
                Waited::Again => self.check_alive().await?,
                Waited::Expired => {
                    return Err(TargetError::Timeout {
                        what: format!("log output matching /{}/", re.as_str()),
                        after: timeout,
                        tail: self.tail(15),
                    })
                }
            }
        }
    }

    /// Runs `sh -c command` in the container (`docker exec`) and returns its exit status and
    /// its output (stdout and stderr as they came).
    async fn shell(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<ShellOutput, TargetError> {
        self.check_alive().await?;
        let run = async {
            let exec = self
                .docker
                .create_exec(
                    &self.id,
                    ExecConfig {
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        cmd: Some(vec!["sh".into(), "-c".into(), command.to_string()]),
                        user: self.user.clone(),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| format!("cannot run a command: {}", engine_message(&e)))?;
            let mut raw = Vec::new();
            match self.docker.start_exec(&exec.id, None).await {
                Ok(StartExecResults::Attached { mut output, .. }) => {
                    while let Some(chunk) = output.next().await {
                        match chunk {
                            Ok(c) => raw.extend_from_slice(&c.into_bytes()),
                            Err(e) => return Err(format!("reading the command's output: {e}")),
                        }
                    }
                }
                Ok(StartExecResults::Detached) => {}
                Err(e) => return Err(format!("cannot run a command: {}", engine_message(&e))),
            }
            let status = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| format!("cannot read the command's status: {e}"))?
                .exit_code
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(-1);
            Ok::<_, String>((status, raw))
        };
        match tokio::time::timeout(timeout, run).await {
            Err(_) => Err(TargetError::Timeout {
                what: format!("the shell command `{command}` to finish"),
                after: timeout,
                tail: self.tail(15),
            }),
            Ok(Err(msg)) => {
                self.check_alive().await?;
                Err(TargetError::Guest(msg))
            }
            Ok(Ok((status, raw))) => {
                let text = String::from_utf8_lossy(&raw).replace('\r', "");
                Ok(ShellOutput {
                    status,
                    output: text.lines().collect::<Vec<_>>().join("\n"),
                })
            }
        }
    }

    /// Writes `content` to the absolute `path` in the container (mode 0644, owned by root,
    /// missing parent directories created), through the engine's archive API.
    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError> {
        self.check_alive().await?;
        let rel = container_rel_path(path)?;
        let tar = tar_of_bytes(&rel, content, 0o644)?;
        match tokio::time::timeout(
            timeout,
            upload(&self.docker, &self.id, tar, &format!("writing {path}")),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(TargetError::Timeout {
                what: format!("writing {path} in the container"),
                after: timeout,
                tail: self.tail(15),
            }),
        }
    }

    /// `docker restart`: the container's processes are stopped (SIGTERM, SIGKILL after a
    /// grace period) and started again; its file system is kept. Its network namespace is
    /// new after a restart, so the vnet's TAP is moved out of the old one first (link down,
    /// the port on the vnet stays), then into the new one and configured as before (same
    /// MAC and address). Output printed before is consumed.
    async fn reboot(&mut self, timeout: Duration) -> Result<(), TargetError> {
        self.console.consume_all();
        let deadline = tokio::time::Instant::now() + timeout;
        let parked = self.park_link().await?;
        let grace = STOP_GRACE_SECS;
        let restarted = tokio::time::timeout_at(
            deadline,
            self.docker.restart_container(
                &self.id,
                Some(RestartContainerOptionsBuilder::new().t(grace).build()),
            ),
        )
        .await;
        match restarted {
            Err(_) => {
                return Err(TargetError::Timeout {
                    what: "the container to restart".into(),
                    after: timeout,
                    tail: self.tail(15),
                })
            }
            Ok(Err(e)) => {
                return Err(TargetError::Exited {
                    status: format!("restart failed: {}", engine_message(&e)),
                    tail: self.tail(15),
                })
            }
            Ok(Ok(())) => {}
        }
        self.pid = running_pid(&self.docker, &self.id).await?;
        let ns = NetnsRef::Pid(self.pid);
        link::move_into(&parked, &ns).await?;
        link::configure(&ns, &parked, &self.link).await?;
        // The engine writes a fresh resolv.conf on every start.
        write_resolv_conf(&self.docker, &self.id, &self.link).await?;
        self.reader.abort();
        self.reader = spawn_reader(
            self.docker.clone(),
            self.id.clone(),
            self.console.clone(),
            self.last_log.clone(),
            self.log_file.clone(),
        );
        Ok(())
    }

    async fn ended(&mut self) -> TargetError {
        let status = self.wait_exit().await;
        // Let the reader take the last lines.
        let _ = tokio::time::timeout(Duration::from_millis(500), &mut self.reader).await;
        TargetError::Exited {
            status,
            tail: self.tail(15),
        }
    }

    async fn stop(&mut self) {
        Container::stop(self).await
    }

    fn tail(&self, n: usize) -> String {
        Container::tail(self, n)
    }
}

/// Removes a container on drop unless disarmed.
struct RemoveGuard {
    socket: String,
    id: Option<String>,
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            remove_blocking(&self.socket, &id);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The engine

/// The engine's unix socket: `DOCKER_HOST` (`unix://PATH`) or `/var/run/docker.sock`.
fn socket_path() -> Result<String, TargetError> {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => match h.strip_prefix("unix://") {
            Some(p) => Ok(p.to_string()),
            None => Err(TargetError::Spawn {
                program: "the Docker engine".into(),
                hint: format!(
                    "DOCKER_HOST={h}: container targets need an engine on this machine, reached \
                     through a unix socket (unix://PATH), since telltale enters the container's \
                     network namespace"
                ),
            }),
        },
        _ => Ok("/var/run/docker.sock".into()),
    }
}

fn no_engine(socket: &str, why: &str) -> TargetError {
    TargetError::Spawn {
        program: "the Docker engine".into(),
        hint: format!(
            "no engine answers at unix://{socket} ({why}); start one with `ci/docker-engine start` \
             (installs Debian's docker.io if needed), or set DOCKER_HOST=unix://PATH"
        ),
    }
}

/// Connects with the newest API version both bollard and the engine speak.
async fn connect() -> Result<Docker, TargetError> {
    let socket = socket_path()?;
    let probe = Docker::connect_with_unix(&socket, 10, &PROBE_VERSION)
        .map_err(|e| no_engine(&socket, &e.to_string()))?;
    let version = probe
        .version()
        .await
        .map_err(|e| no_engine(&socket, &engine_message(&e)))?;
    let server = version
        .api_version
        .as_deref()
        .and_then(parse_api_version)
        .unwrap_or(PROBE_VERSION);
    let use_version = if server < *API_DEFAULT_VERSION {
        server
    } else {
        ClientVersion {
            major_version: API_DEFAULT_VERSION.major_version,
            minor_version: API_DEFAULT_VERSION.minor_version,
        }
    };
    Docker::connect_with_unix(&socket, REQUEST_TIMEOUT_SECS, &use_version)
        .map_err(|e| no_engine(&socket, &e.to_string()))
}

/// `"1.41"` → 1.41.
fn parse_api_version(s: &str) -> Option<ClientVersion> {
    let (a, b) = s.trim().split_once('.')?;
    Some(ClientVersion {
        major_version: a.parse().ok()?,
        minor_version: b.parse().ok()?,
    })
}

/// The engine's own message for server errors, else the error.
fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        other => other.to_string(),
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Uses the local image; pulls only when it is missing.
async fn ensure_image(docker: &Docker, reference: &str) -> Result<(), TargetError> {
    match docker.inspect_image(reference).await {
        Ok(_) => return Ok(()),
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            return Err(TargetError::Spawn {
                program: format!("container image {reference}"),
                hint: format!("cannot inspect it: {}", engine_message(&e)),
            })
        }
    }
    let (image, tag) = match reference.rsplit_once(':') {
        Some((i, t)) if !t.contains('/') => (i, t),
        _ => (reference, "latest"),
    };
    let mut pull = docker.create_image(
        Some(
            CreateImageOptionsBuilder::new()
                .from_image(image)
                .tag(tag)
                .build(),
        ),
        None,
        None,
    );
    while let Some(r) = pull.next().await {
        if let Err(e) = r {
            return Err(TargetError::Spawn {
                program: format!("container image {reference}"),
                hint: format!(
                    "it is not on this engine and pulling it failed ({}); build it locally \
                     (the demo firmware: ci/build-demo-images --containers)",
                    engine_message(&e)
                ),
            });
        }
    }
    Ok(())
}

/// Container names: `telltale-<pid>-<n>`.
fn container_name() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("telltale-{}-{n}", std::process::id())
}

/// What the engine is asked to create.
fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let labels = HashMap::from([
        (LABEL.to_string(), "1".to_string()),
        (format!("{LABEL}.pid"), std::process::id().to_string()),
    ]);
    // IPv4 only, like the VM firmware: no IPv6 link-local chatter from the TAP put in later
    // (it takes the namespace's defaults).
    let sysctls = HashMap::from([
        (
            "net.ipv6.conf.all.disable_ipv6".to_string(),
            "1".to_string(),
        ),
        (
            "net.ipv6.conf.default.disable_ipv6".to_string(),
            "1".to_string(),
        ),
    ]);
    ContainerCreateBody {
        image: Some(spec.reference()),
        cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        user: spec.user.clone(),
        labels: Some(labels),
        attach_stdout: Some(false),
        tty: Some(false),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            sysctls: Some(sysctls),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn create(docker: &Docker, spec: &ContainerSpec) -> Result<String, TargetError> {
    let name = container_name();
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            create_body(spec),
        )
        .await
        .map(|r| r.id)
        .map_err(|e| TargetError::Spawn {
            program: format!("container {}", spec.reference()),
            hint: format!("the engine could not create it: {}", engine_message(&e)),
        })
}

/// The host PID of the container's first process; fails when it is not running.
async fn running_pid(docker: &Docker, id: &str) -> Result<u32, TargetError> {
    let info = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| {
            TargetError::Io(format!(
                "cannot inspect the container: {}",
                engine_message(&e)
            ))
        })?;
    let state = info.state.unwrap_or_default();
    match state.pid.and_then(|p| u32::try_from(p).ok()) {
        Some(pid) if pid > 0 && state.running == Some(true) => Ok(pid),
        _ => Err(TargetError::Exited {
            status: match state.exit_code {
                Some(c) => format!("container exited with status {c} right after starting"),
                None => "container not running after start".into(),
            },
            tail: String::new(),
        }),
    }
}

/// Points the container's `/etc/resolv.conf` at telltale. The engine bind-mounts that file
/// from its own directory (also with network `none`, and rewrites it on every start), so
/// the archive API cannot replace it (EBUSY); the host side of the mount is written instead.
async fn write_resolv_conf(docker: &Docker, id: &str, link: &NsLink) -> Result<(), TargetError> {
    let info = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| {
            TargetError::Io(format!(
                "cannot inspect the container: {}",
                engine_message(&e)
            ))
        })?;
    let text = link::resolv_conf(&link.lease);
    match info.resolv_conf_path.filter(|p| !p.is_empty()) {
        Some(p) => tokio::fs::write(&p, text.as_bytes()).await.map_err(|e| {
            TargetError::Io(format!(
                "cannot write the container's resolv.conf ({p}): {e}; container targets need the \
                 engine's data directory on this machine"
            ))
        }),
        // No file from the engine: the image's own /etc/resolv.conf is in the container's
        // file system and can be replaced.
        None => {
            let tar = tar_of_bytes("etc/resolv.conf", text.as_bytes(), 0o644)?;
            upload(docker, id, tar, "writing /etc/resolv.conf").await
        }
    }
}

/// Extracts a tar at `/` in the container.
async fn upload(docker: &Docker, id: &str, tar: Vec<u8>, what: &str) -> Result<(), TargetError> {
    docker
        .upload_to_container(
            id,
            Some(UploadToContainerOptionsBuilder::new().path("/").build()),
            bollard::body_full(tar.into()),
        )
        .await
        .map_err(|e| TargetError::Guest(format!("{what} failed: {}", engine_message(&e))))
}

/// An absolute container path as a tar member name (`/data/imei` → `data/imei`).
fn container_rel_path(path: &str) -> Result<String, TargetError> {
    let bad = || {
        TargetError::Guest(format!(
            "cannot write {path:?} in the container: give an absolute path to a file, without `..`"
        ))
    };
    let rel = path.strip_prefix('/').ok_or_else(bad)?;
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") || path.ends_with('/') || path.contains('\0') {
        return Err(bad());
    }
    Ok(parts.join("/"))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A tar with one regular file, root-owned.
fn tar_of_bytes(rel: &str, content: &[u8], mode: u32) -> Result<Vec<u8>, TargetError> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(now_secs());
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, rel, content)
        .and_then(|()| b.into_inner())
        .map_err(|e| TargetError::Io(format!("cannot pack {rel}: {e}")))
}

/// A tar of a host file or directory, to land at the absolute container path `dest`.
fn tar_of_host_path(host: &Path, dest: &str) -> Result<Vec<u8>, TargetError> {
    let rel = container_rel_path(dest)?;
    let err = |e: std::io::Error| TargetError::Io(format!("cannot copy {}: {e}", host.display()));
    let meta = std::fs::metadata(host).map_err(err)?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(true);
    if meta.is_dir() {
        b.append_dir_all(&rel, host).map_err(err)?;
    } else {
        let mut f = std::fs::File::open(host).map_err(err)?;
        b.append_file(&rel, &mut f).map_err(err)?;
    }
    b.into_inner().map_err(err)
}

// ---------------------------------------------------------------------------------------
// The log

/// A log line's engine timestamp: seconds since the epoch and nanoseconds.
type LogTime = (i64, u32);

/// Parses Docker's RFC 3339 UTC timestamps (`2026-11-21T22:12:00.123456789Z`).
fn parse_log_time(s: &str) -> Option<LogTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, b),
        None => (time, ""),
    };
    let mut t = hms.splitn(3, ':');
    let (h, mi, se): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se, nanos))
}

/// Follows the container's log (stdout and stderr, with the engine's timestamps) from the
/// last line taken on, into the console buffer and `console.log`; ends when the stream does
/// (the container stopped), waking waiters.
fn spawn_reader(
    docker: Docker,
    id: String,
    console: LiveConsole,
    last: Arc<Mutex<Option<LogTime>>>,
    log_path: PathBuf,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut log = tokio::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log_path)
            .await
            .ok();
        let since = last
            .lock()
            .ok()
            .and_then(|l| *l)
            .map(|(s, _)| i32::try_from(s).unwrap_or(0))
            .unwrap_or(0);
        let mut stream = docker.logs(
            &id,
            Some(
                LogsOptionsBuilder::new()
                    .follow(true)
                    .stdout(true)
                    .stderr(true)
                    .timestamps(true)
                    .since(since)
                    .build(),
            ),
        );
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { break };
            let raw = chunk.into_bytes();
            let (time, text) = split_timestamp(&raw);
            if let Some(t) = time {
                let Ok(mut l) = last.lock() else { break };
                if l.is_some_and(|prev| t <= prev) {
                    continue; // taken before a restart
                }
                *l = Some(t);
            }
            if let Some(f) = log.as_mut() {
                let _ = f.write_all(text).await;
                let _ = f.flush().await;
            }
            console.push(text);
        }
        console.wake();
    })
}

/// `TIMESTAMP text` → (time, text).
fn split_timestamp(raw: &[u8]) -> (Option<LogTime>, &[u8]) {
    let Some(sp) = raw.iter().position(|&b| b == b' ') else {
        return (None, raw);
    };
    let head = raw.get(..sp).and_then(|h| std::str::from_utf8(h).ok());
    match head.and_then(parse_log_time) {
        Some(t) => (Some(t), raw.get(sp + 1..).unwrap_or_default()),
        None => (None, raw),
    }
}

// ---------------------------------------------------------------------------------------
// The last-resort removal

/// `DELETE /containers/ID?force=1&v=1` on the engine's socket, synchronously (for drop,
/// where no runtime may be left). Best effort, bounded by a few seconds.
fn remove_blocking(socket: &str, id: &str) {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let req = format!(
        "DELETE /containers/{id}?force=1&v=1 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_ok() {
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_parse_and_order() {
        let v = parse_api_version("1.41").expect("parses");
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(
            v < *API_DEFAULT_VERSION,
            "1.41 is older than bollard's default"
        );
        assert!(parse_api_version("1").is_none());
        assert!(parse_api_version("x.y").is_none());
    }

    #[test]
    fn log_timestamps_parse_to_epoch_and_compare() {
        assert_eq!(parse_log_time("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_log_time("2026-11-21T22:12:00.5Z"),
            Some((1_795_299_120, 500_000_000))
        );
        let a = parse_log_time("2026-11-21T22:12:00.12345Z").expect("a");
        let b = parse_log_time("2026-11-21T22:12:00.123456789Z").expect("b");
        assert!(a < b, "trimmed fractions compare as numbers");
        assert_eq!(
            parse_log_time("2024-02-29T12:00:00Z").map(|t| t.0),
            Some(1_709_208_000)
        );
        assert!(parse_log_time("2026-13-01T00:00:00Z").is_none());
        assert!(parse_log_time("2026-11-21T22:12:00.1234567890Z").is_none());
        assert!(parse_log_time("garbage").is_none());
    }

    #[test]
    fn log_lines_lose_their_timestamp() {
        let (t, text) = split_timestamp(b"2026-11-21T22:12:00.000000001Z telltale-demo: ready\n");
        assert_eq!(t, Some((1_795_299_120, 1)));
        assert_eq!(text, b"telltale-demo: ready\n");
        let (t, text) = split_timestamp(b"no timestamp here\n");
        assert_eq!((t, text), (None, &b"no timestamp here\n"[..]));
    }

    #[test]
    fn plant_paths_are_absolute_and_stay_inside() {
        assert_eq!(
            container_rel_path("/data/imei").ok(),
            Some("data/imei".into())
        );
        assert_eq!(
            container_rel_path("//data/./imei").ok(),
            Some("data/imei".into())
        );
        for bad in ["data/imei", "/", "/data/../etc/x", "/data/", ""] {
            assert!(container_rel_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_planted_file_is_one_root_owned_tar_member() {
        let tar = tar_of_bytes("data/imei", b"356938035643809\n", 0o644).expect("tar");
        let mut a = tar::Archive::new(&tar[..]);
        let mut entries = a.entries().expect("entries");
        let mut e = entries.next().expect("one").expect("entry");
        assert_eq!(e.path().expect("path").to_str(), Some("data/imei"));
        assert_eq!(e.header().uid().ok(), Some(0));
        assert_eq!(e.header().mode().ok(), Some(0o644));
        let mut body = String::new();
        e.read_to_string(&mut body).expect("body");
        assert_eq!(body, "356938035643809\n");
        assert!(entries.next().is_none());
    }

    #[test]
    fn containers_get_no_network_from_docker_and_a_findable_label() {
        let spec = ContainerSpec {
            image: "telltale-demo/cloudsync".into(),
            tag: "v1".into(),
            env: vec![("CLOUDSYNC_INTERVAL".into(), "2".into())],
            ..Default::default()
        };
        let body = create_body(&spec);
        assert_eq!(body.image.as_deref(), Some("telltale-demo/cloudsync:v1"));
        assert_eq!(body.cmd, None, "the image's CMD is kept");
        assert_eq!(body.env, Some(vec!["CLOUDSYNC_INTERVAL=2".to_string()]));
        let hc = body.host_config.expect("host config");
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(
            body.labels
                .as_ref()
                .and_then(|l| l.get(LABEL))
                .map(String::as_str),
            Some("1")
        );
    }
}
