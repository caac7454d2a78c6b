//! The `device` target: real hardware (or anything that behaves like it) that telltale
//! drives but does not boot.
//!
//! This module owns the two channels to an attached device and everything it starts on
//! them:
//! - **control**, out of band from the device's traffic: `ssh` (the system's OpenSSH
//!   client, `BatchMode`, never a password prompt), `adb` (Android), or a serial port. Shell
//!   commands, planting files, rebooting, and an optional log command (`logcat`,
//!   `tail -F /var/log/messages`) whose output is the device's "console" (`console.log`,
//!   matched by [`Driver::wait_for`](super::Driver::wait_for));
//! - **traffic**: either an Ethernet interface the device uses as its gateway, opened with
//!   `AF_PACKET` ([`crate::vnet::port::PacketPort`]) and served by the vnet (DHCP, DNS,
//!   sink, capture), the way measurement labs make a laptop the device's router; or a
//!   capture file the device writes itself (tcpdump, PCAPdroid) that [`Device::pull_capture`]
//!   copies out at the end.
//!
//! **The gateway interface belongs to telltale while it runs.** [`prepare_gateway_interface`]
//! takes the host's stack off it (no addresses, no ARP, no IPv6, no forwarding), so the
//! device's traffic reaches only the vnet, and the host never answers, routes or accepts it.
//! It is left that way afterwards (up, without addresses): give it back with `ip` when done.
//!
//! Root is needed for the interface (`AF_PACKET`, interface settings); without it
//! [`Device::start`] fails with [`TargetError::NeedsRoot`] before it starts or changes
//! anything. A device never ends on its own: [`Driver::ended`](super::Driver::ended) pends
//! for `ssh` and `adb` (a lost connection shows up as the failing step), and resolves only
//! when a serial port closes (adapter unplugged).
//!
//! Every process this module starts (ssh/adb clients, the log command, the device-side
//! capture) is ended in [`Driver::stop`](super::Driver::stop); local processes also on drop.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::bytes::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::console::{plant_commands, shell_quote, ShellCall, ShellOutput};
use super::live::LiveConsole;
use super::{run_host, spawn_error, TargetError};
use crate::vnet::port::PacketPort;
use crate::vnet::run::VnetHandle;

/// How telltale controls the device: the scenario's `control:` as it is.
pub use crate::scenario::DeviceControl as Control;

/// How the device's traffic reaches telltale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Traffic {
    /// The device's gateway is this interface: telltale serves the vnet on it (needs root).
    Interface(String),
    /// The device records its own traffic; the file is pulled after the steps.
    PullCapture {
        /// Where the device writes it.
        remote_path: String,
        /// Started (in the background, on the device) before the steps, e.g.
        /// `tcpdump -i any -U -w /data/local/tmp/tt.pcap`; interrupted before the pull.
        start: Option<String>,
    },
}

/// An attached device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Control channel.
    pub control: Control,
    /// Traffic path.
    pub traffic: Traffic,
    /// Command run on the device whose output is the console (`logcat`, `tail -F …`).
    pub log_command: Option<String>,
}

/// Default ssh options: never prompt, fail fast, notice a dead link.
const SSH_DEFAULTS: [&str; 5] = [
    "BatchMode=yes",
    "ConnectTimeout=10",
    "ServerAliveInterval=5",
    "ServerAliveCountMax=3",
    "LogLevel=ERROR",
];

/// How long the control check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Fails with [`TargetError::NeedsRoot`] when `spec` needs root and `is_root` is false.
/// [`Device::start`] calls it first, with [`super::is_root`].
pub fn check_privileges(spec: &DeviceSpec, is_root: bool) -> Result<(), TargetError> {
    match &spec.traffic {
        Traffic::Interface(ifname) if !is_root => Err(TargetError::NeedsRoot {
            what: format!("a device whose gateway is interface {ifname}"),
            why: "telltale opens the interface with AF_PACKET and takes the host's network stack off it"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// Makes `ifname` telltale's: the host's stack stays off it, so the device's frames reach
/// only the vnet (through an `AF_PACKET` socket) and the host never answers them. Removes
/// its addresses, turns off ARP, IPv6 and IPv4 forwarding on it, and brings it up. Needs
/// root. The interface stays like this after the run.
pub async fn prepare_gateway_interface(ifname: &str) -> Result<(), TargetError> {
    if ifname.is_empty() || ifname.contains('/') || ifname.len() > 15 {
        return Err(TargetError::Io(format!(
            "{ifname:?} is not an interface name"
        )));
    }
    let sys = Path::new("/sys/class/net").join(ifname);
    if !sys.exists() {
        return Err(TargetError::Io(format!(
            "there is no network interface {ifname} (see `ip link`)"
        )));
    }
    // IPv6 off first, before the link is up: no link-local address, no router
    // solicitations, no duplicate address detection from the host.
    let v6 = Path::new("/proc/sys/net/ipv6/conf")
        .join(ifname)
        .join("disable_ipv6");
    if v6.exists() {
        write_sysctl(&v6, "1")?;
    }
    let fwd = Path::new("/proc/sys/net/ipv4/conf")
        .join(ifname)
        .join("forwarding");
    if fwd.exists() {
        write_sysctl(&fwd, "0")?;
    }
    run_host(&["ip", "addr", "flush", "dev", ifname]).await?;
    run_host(&["ip", "link", "set", "dev", ifname, "arp", "off"]).await?;
    run_host(&["ip", "link", "set", "dev", ifname, "up"]).await?;
    Ok(())
}

fn write_sysctl(path: &Path, value: &str) -> Result<(), TargetError> {
    std::fs::write(path, value)
        .map_err(|e| TargetError::Io(format!("cannot write {value} to {}: {e}", path.display())))
}

/// The serial port, open non-blocking and polled by tokio (a quiet port never holds a
/// thread or the exit). tokio's pipe halves work on any pollable descriptor, ttys too.
struct SerialIo {
    write: tokio::net::unix::pipe::Sender,
}

/// A running attached device.
pub struct Device {
    control: Control,
    traffic: Traffic,
    log_command: Option<String>,
    console: LiveConsole,
    console_log: Arc<Mutex<Option<std::fs::File>>>,
    /// Local log process (ssh/adb running the log command).
    log_child: Option<Child>,
    /// Tasks copying output into the console.
    readers: Vec<tokio::task::JoinHandle<()>>,
    serial: Option<SerialIo>,
    /// Set when the serial port closed.
    serial_closed: Arc<Mutex<Option<String>>>,
    calls: u64,
    /// Device-side process ids to end on stop (log command, capture).
    remote_pids: Vec<String>,
    stopped: bool,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("control", &self.control)
            .field("traffic", &self.traffic)
            .finish_non_exhaustive()
    }
}

impl Device {
    /// Checks privileges (before anything else), checks that the control channel answers,
    /// attaches the gateway interface to `vnet` (for [`Traffic::Interface`]), then starts the
    /// log command and the device-side capture. `console_log` receives the log output.
    pub async fn start(
        spec: &DeviceSpec,
        vnet: &VnetHandle,
        console_log: &Path,
    ) -> Result<Device, TargetError> {
        check_privileges(spec, super::is_root())?;
        let file = std::fs::File::create(console_log).map_err(|e| {
            TargetError::Io(format!("cannot create {}: {e}", console_log.display()))
        })?;
        let mut dev = Device {
            control: spec.control.clone(),
            traffic: spec.traffic.clone(),
            log_command: spec.log_command.clone(),
            console: LiveConsole::new(),
            console_log: Arc::new(Mutex::new(Some(file))),
            log_child: None,
            readers: Vec::new(),
            serial: None,
            serial_closed: Arc::new(Mutex::new(None)),
            calls: 0,
            remote_pids: Vec::new(),
            stopped: false,
        };
        dev.check_control().await?;
        if let Traffic::Interface(ifname) = &spec.traffic {
            prepare_gateway_interface(ifname).await?;
            let port = PacketPort::open(ifname).map_err(|e| TargetError::Io(e.to_string()))?;
            let (r, w) = port
                .split()
                .map_err(|e| TargetError::Io(format!("cannot use interface {ifname}: {e}")))?;
            vnet.attach(r, w).await.map_err(|e| {
                TargetError::Io(format!("cannot attach {ifname} to the network: {e}"))
            })?;
        }
        dev.start_log().await?;
        if let Traffic::PullCapture {
            start: Some(cmd), ..
        } = &spec.traffic
        {
            let pid = dev.start_background(cmd, "capture").await?;
            dev.remote_pids.push(pid);
        }
        Ok(dev)
    }

    /// The local program and leading arguments for the control channel (ssh or adb).
    fn base_command(&self) -> Option<(String, Vec<String>)> {
        match &self.control {
            Control::Ssh {
                host,
                port,
                user,
                identity,
                options,
            } => Some((
                "ssh".into(),
                ssh_args(host, *port, user, identity.as_deref(), options),
            )),
            Control::Adb { serial } => Some(("adb".into(), vec!["-s".into(), serial.clone()])),
            Control::Serial { .. } => None,
        }
    }

    /// A name for error messages.
    fn describe(&self) -> String {
        match &self.control {
            Control::Ssh {
                host, port, user, ..
            } => format!("ssh {user}@{host}:{port}"),
            Control::Adb { serial } => format!("adb device {serial}"),
            Control::Serial { path, .. } => format!("serial port {}", path.display()),
        }
    }

    /// A local process that runs `remote` (one shell command line) on the device.
    fn remote_command(&self, remote: &str) -> Result<Command, TargetError> {
        let (prog, mut args) = self
            .base_command()
            .ok_or_else(|| TargetError::Io("not a ssh or adb device".into()))?;
        match self.control {
            Control::Ssh { .. } => {
                args.push("--".into());
                args.push(remote.to_string());
            }
            _ => {
                args.push("shell".into());
                args.push(remote.to_string());
            }
        }
        let mut cmd = Command::new(prog);
        cmd.args(args).kill_on_drop(true);
        Ok(cmd)
    }

    async fn check_control(&mut self) -> Result<(), TargetError> {
        match self.control.clone() {
            Control::Ssh { .. } => {
                let mut cmd = self.remote_command("true")?;
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
            Control::Adb { serial } => {
                let mut cmd = Command::new("adb");
                cmd.args(["-s", &serial, "get-state"]).kill_on_drop(true);
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
                        "none (is it plugged in, with USB debugging on and this computer authorised?)".to_string()
                    } else {
                        devices.join(", ")
                    }
                )))
            }
            Control::Serial { path, baud } => {
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
                    .open(&path)
                    .map_err(|e| TargetError::Io(format!("cannot open serial port {p}: {e}")))?;
                let poll_err = |e: std::io::Error| {
                    TargetError::Io(format!("cannot poll serial port {p}: {e}"))
                };
                let reader = file.try_clone().map_err(poll_err)?;
                let mut reader = tokio::net::unix::pipe::Receiver::from_file_unchecked(reader)
                    .map_err(poll_err)?;
                let write =
                    tokio::net::unix::pipe::Sender::from_file_unchecked(file).map_err(poll_err)?;
                let (c, log, closed) = (
                    self.console.clone(),
                    self.console_log.clone(),
                    self.serial_closed.clone(),
                );
                self.readers.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let why = loop {
                        match reader.read(&mut buf).await {
                            Ok(0) => break "the serial port closed".to_string(),
                            Ok(k) => append(&c, &log, buf.get(..k).unwrap_or_default()),
                            // EIO: the other end of the line is gone (adapter unplugged).
                            Err(e) => break format!("the serial port closed ({e})"),
                        }
                    };
                    if let Ok(mut g) = closed.lock() {
                        *g = Some(why);
                    }
                    c.wake();
                }));
                self.serial = Some(SerialIo { write });
                Ok(())
            }
        }
    }

    /// Starts the log command (if any) with its output going to the console.
    async fn start_log(&mut self) -> Result<(), TargetError> {
        let Some(cmd) = self.log_command.clone() else {
            return Ok(());
        };
        if let Control::Serial { .. } = self.control {
            // The serial output is the console already; the command runs in the background.
            let line = format!("({cmd}) &\n");
            return self.serial_write(line.as_bytes()).await;
        }
        let pidfile = format!("{}/.telltale-log.pid", self.tmp_dir());
        // `exec` keeps the pid of the wrapper shell: the log command itself.
        let remote = format!(
            "sh -c {}",
            shell_quote(&format!("echo $$ > {pidfile}; exec {cmd}"))
        );
        let mut c = self.remote_command(&remote)?;
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let prog = if matches!(self.control, Control::Ssh { .. }) {
            "ssh"
        } else {
            "adb"
        };
        let mut child = c.spawn().map_err(|e| spawn_error(prog, &e))?;
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
            let (c2, log) = (self.console.clone(), self.console_log.clone());
            self.readers.push(tokio::spawn(async move {
                let mut s = stream;
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(k) = s.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    append(&c2, &log, buf.get(..k).unwrap_or_default());
                }
            }));
        }
        self.log_child = Some(child);
        self.remote_pids
            .push(format!("$(cat {pidfile} 2>/dev/null)"));
        Ok(())
    }

    /// A writable directory on the device for telltale's small files.
    fn tmp_dir(&self) -> &'static str {
        match self.control {
            Control::Adb { .. } => "/data/local/tmp",
            _ => "/tmp",
        }
    }

    /// Starts `cmd` in the background on the device; returns a shell expression for its pid.
    async fn start_background(&mut self, cmd: &str, tag: &str) -> Result<String, TargetError> {
        let pidfile = format!("{}/.telltale-{tag}.pid", self.tmp_dir());
        let line = format!(
            "nohup sh -c {} >/dev/null 2>&1 </dev/null & echo $! > {pidfile}",
            shell_quote(&format!("exec {cmd}"))
        );
        let out = self.shell(&line, CHECK_TIMEOUT).await?;
        if out.status != 0 {
            return Err(TargetError::Guest(format!(
                "starting `{cmd}` on the device failed with status {}: {}",
                out.status, out.output
            )));
        }
        Ok(format!("$(cat {pidfile} 2>/dev/null)"))
    }

    /// Runs one command line on the device over ssh/adb and reads its status from a marker
    /// printed after it (ssh's own failures exit 255, adb before 29 does not pass statuses).
    async fn remote_shell(
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
        let mut c = self.remote_command(&line)?;
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let prog = if matches!(self.control, Control::Ssh { .. }) {
            "ssh"
        } else {
            "adb"
        };
        let mut child = c.spawn().map_err(|e| spawn_error(prog, &e))?;
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
                    self.describe()
                )))
            }
            Err(_) => {
                return Err(TargetError::Timeout {
                    what: format!("the shell command `{cmd}` to finish"),
                    after: timeout,
                    tail: self.tail(15),
                })
            }
        };
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        match parse_status(&text, &marker) {
            Some(r) => Ok(r),
            None => Err(TargetError::Io(format!(
                "running `{cmd}` over {} failed ({}): {}",
                self.describe(),
                super::qemu::describe_status(out.status),
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }

    async fn serial_write(&mut self, data: &[u8]) -> Result<(), TargetError> {
        self.check_serial()?;
        let s = self
            .serial
            .as_mut()
            .ok_or_else(|| TargetError::Io("the serial port is not open".into()))?;
        s.write
            .write_all(data)
            .await
            .map_err(|e| TargetError::Io(format!("writing to the serial port: {e}")))
    }

    fn check_serial(&self) -> Result<(), TargetError> {
        match self.serial_closed.lock().ok().and_then(|g| g.clone()) {
            Some(status) => Err(TargetError::Exited {
                status,
                tail: self.tail(15),
            }),
            None => Ok(()),
        }
    }

    async fn serial_shell(
        &mut self,
        cmd: &str,
        timeout: Duration,
    ) -> Result<ShellOutput, TargetError> {
        self.calls += 1;
        let call = ShellCall::new(cmd, self.calls);
        self.serial_write(call.line.as_bytes()).await?;
        let what = || format!("the shell command `{cmd}` to finish");
        self.console
            .wait(timeout, what, |c| call.poll(c), || self.check_serial())
            .await
    }

    /// Runs a shell command on the device: its status and output (stdout and stderr).
    pub async fn shell(
        &mut self,
        cmd: &str,
        timeout: Duration,
    ) -> Result<ShellOutput, TargetError> {
        match self.control {
            Control::Serial { .. } => self.serial_shell(cmd, timeout).await,
            _ => self.remote_shell(cmd, None, timeout).await,
        }
    }

    /// Writes `content` to `path` on the device (parent directories created).
    pub async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let out = match self.control.clone() {
            Control::Ssh { .. } => {
                let q = shell_quote(path);
                self.remote_shell(
                    &format!("mkdir -p \"$(dirname {q})\" && cat > {q}"),
                    Some(content),
                    timeout,
                )
                .await?
            }
            Control::Adb { serial } => {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let tmp =
                    std::env::temp_dir().join(format!("telltale-plant-{}-{n}", std::process::id()));
                std::fs::write(&tmp, content)
                    .map_err(|e| TargetError::Io(format!("cannot write {}: {e}", tmp.display())))?;
                let q = shell_quote(path);
                let mk = self
                    .remote_shell(&format!("mkdir -p \"$(dirname {q})\""), None, timeout)
                    .await;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let mut push = Command::new("adb");
                push.arg("-s")
                    .arg(&serial)
                    .arg("push")
                    .arg(&tmp)
                    .arg(path)
                    .kill_on_drop(true);
                let pushed = output_within(&mut push, left, "adb").await;
                let _ = std::fs::remove_file(&tmp);
                mk?;
                let o = pushed?;
                ShellOutput {
                    status: o.status.code().unwrap_or(-1),
                    output: format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                    .trim()
                    .to_string(),
                }
            }
            Control::Serial { .. } => {
                for cmd in plant_commands(path, content, None) {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let out = self.serial_shell(&cmd, left).await?;
                    if out.status != 0 {
                        return Err(TargetError::Guest(format!(
                            "writing {path} failed with status {}: {}",
                            out.status, out.output
                        )));
                    }
                }
                return Ok(());
            }
        };
        if out.status != 0 {
            return Err(TargetError::Guest(format!(
                "writing {path} on the device failed with status {}: {}",
                out.status, out.output
            )));
        }
        Ok(())
    }

    /// Installs an Android package (`adb install -r`). Only for adb devices.
    pub async fn install(&mut self, apk: &Path, timeout: Duration) -> Result<(), TargetError> {
        let Control::Adb { serial } = &self.control else {
            return Err(TargetError::Io(format!(
                "installing {} needs an adb device; this is {}",
                apk.display(),
                self.describe()
            )));
        };
        let mut cmd = Command::new("adb");
        cmd.arg("-s")
            .arg(serial)
            .arg("install")
            .arg("-r")
            .arg(apk)
            .kill_on_drop(true);
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

    /// For [`Traffic::PullCapture`]: ends the device-side capture command (SIGINT, so it
    /// flushes, then SIGTERM: a background job may ignore SIGINT) and copies the capture to `dest`. The runner should analyse this file
    /// *instead of* the vnet's capture: with this traffic mode the device's traffic never
    /// crosses the vnet, whose capture is empty.
    pub async fn pull_capture(&mut self, dest: &Path) -> Result<(), TargetError> {
        let Traffic::PullCapture { remote_path, start } = self.traffic.clone() else {
            return Err(TargetError::Io(
                "this device's traffic goes through telltale's network; there is no capture to pull".into(),
            ));
        };
        let timeout = Duration::from_secs(300);
        if start.is_some() {
            let pidfile = format!("{}/.telltale-capture.pid", self.tmp_dir());
            let stop = format!(
                "p=$(cat {pidfile} 2>/dev/null); w() {{ i=0; while [ -n \"$p\" ] && kill -0 $p 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; }}; [ -n \"$p\" ] && kill -INT $p 2>/dev/null; w; [ -n \"$p\" ] && kill -TERM $p 2>/dev/null; w; rm -f {pidfile}; true"
            );
            self.shell(&stop, CHECK_TIMEOUT).await?;
            self.remote_pids
                .retain(|p| !p.contains(".telltale-capture.pid"));
        }
        match self.control.clone() {
            Control::Adb { serial } => {
                let mut cmd = Command::new("adb");
                cmd.arg("-s")
                    .arg(&serial)
                    .arg("pull")
                    .arg(&remote_path)
                    .arg(dest)
                    .kill_on_drop(true);
                let out = output_within(&mut cmd, timeout, "adb").await?;
                if !out.status.success() {
                    return Err(TargetError::Guest(format!(
                        "`adb pull {remote_path}` failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
            Control::Ssh { .. } => {
                let mut cmd = self.remote_command(&format!("cat {}", shell_quote(&remote_path)))?;
                cmd.stdin(Stdio::null());
                let out = output_within(&mut cmd, timeout, "ssh").await?;
                if !out.status.success() {
                    return Err(TargetError::Guest(format!(
                        "reading {remote_path} over ssh failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                std::fs::write(dest, &out.stdout).map_err(|e| {
                    TargetError::Io(format!("cannot write {}: {e}", dest.display()))
                })?;
            }
            Control::Serial { .. } => {
                use base64::Engine;
                let out = self
                    .serial_shell(&format!("base64 {}", shell_quote(&remote_path)), timeout)
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
                std::fs::write(dest, bytes).map_err(|e| {
                    TargetError::Io(format!("cannot write {}: {e}", dest.display()))
                })?;
            }
        }
        Ok(())
    }

    /// Waits until the console (log command output, or the serial output) shows `re`.
    pub async fn wait_for(&mut self, re: &Regex, timeout: Duration) -> Result<String, TargetError> {
        let silent = self.log_command.is_none() && !matches!(self.control, Control::Serial { .. });
        let what = || {
            if silent {
                format!("log output matching /{}/ (this device has no log command: nothing is ever logged)", re.as_str())
            } else {
                format!("log output matching /{}/", re.as_str())
            }
        };
        self.console
            .wait(timeout, what, |c| c.find(re), || self.check_serial())
            .await
    }

    /// The device's boot id (changes on every boot), if it has one.
    async fn boot_id(&mut self) -> Option<String> {
        let out = self
            .remote_shell(
                "cat /proc/sys/kernel/random/boot_id",
                None,
                Duration::from_secs(15),
            )
            .await
            .ok()?;
        let id = out.output.trim().to_string();
        (out.status == 0 && !id.is_empty()).then_some(id)
    }

    /// Restarts the device and waits until the control channel answers from the new boot
    /// (a new `boot_id`); the log command is started again.
    pub async fn reboot(&mut self, timeout: Duration) -> Result<(), TargetError> {
        self.console.consume_all();
        if let Control::Serial { .. } = self.control {
            return self.serial_write(b"sync; reboot\n").await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let before = self.boot_id().await;
        self.end_log().await;
        match self.control.clone() {
            Control::Adb { serial } => {
                let mut cmd = Command::new("adb");
                cmd.args(["-s", &serial, "reboot"]).kill_on_drop(true);
                output_within(&mut cmd, Duration::from_secs(30), "adb").await?;
            }
            _ => {
                // The connection usually drops before an answer: the status does not matter.
                let mut cmd =
                    self.remote_command("sh -c 'sync; (sleep 1; reboot) >/dev/null 2>&1 &'")?;
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let _ = output_within(&mut cmd, Duration::from_secs(30), "ssh").await;
            }
        }
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Err(TargetError::Timeout {
                    what: format!("{} to come back after the reboot", self.describe()),
                    after: timeout,
                    tail: self.tail(15),
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Control::Adb { serial } = &self.control {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let mut cmd = Command::new("adb");
                cmd.args(["-s", serial, "wait-for-device"])
                    .kill_on_drop(true);
                let _ = output_within(&mut cmd, left.min(Duration::from_secs(30)), "adb").await;
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

    /// Ends the log command (device side and local client).
    async fn end_log(&mut self) {
        let pidfile = format!("{}/.telltale-log.pid", self.tmp_dir());
        if self.log_child.is_some() && !matches!(self.control, Control::Serial { .. }) {
            let _ = self
                .remote_shell(
                    &format!(
                        "kill $(cat {pidfile} 2>/dev/null) 2>/dev/null; rm -f {pidfile}; true"
                    ),
                    None,
                    Duration::from_secs(10),
                )
                .await;
            self.remote_pids
                .retain(|p| !p.contains(".telltale-log.pid"));
        }
        if let Some(mut c) = self.log_child.take() {
            let _ = c.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
        }
    }

    /// Ends everything this device started (device-side commands, local processes).
    pub async fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let remote: Vec<String> = std::mem::take(&mut self.remote_pids);
        if !remote.is_empty() && !matches!(self.control, Control::Serial { .. }) {
            let line = remote
                .iter()
                .map(|p| format!("kill {p} 2>/dev/null"))
                .collect::<Vec<_>>()
                .join("; ");
            let _ = self
                .remote_shell(&format!("{line}; true"), None, Duration::from_secs(10))
                .await;
        }
        if let Some(mut c) = self.log_child.take() {
            let _ = c.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
        }
        for r in self.readers.drain(..) {
            r.abort();
        }
        self.serial = None;
        if let Ok(mut f) = self.console_log.lock() {
            *f = None;
        }
    }

    /// The last `n` lines of the console.
    pub fn tail(&self, n: usize) -> String {
        self.console.tail(n)
    }
}

impl Drop for Device {
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

#[async_trait::async_trait]
impl super::Driver for Device {
    async fn wait_for(&mut self, re: &Regex, timeout: Duration) -> Result<String, TargetError> {
        Device::wait_for(self, re, timeout).await
    }

    async fn shell(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<ShellOutput, TargetError> {
        Device::shell(self, command, timeout).await
    }

    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError> {
        Device::plant(self, path, content, timeout).await
    }

    async fn reboot(&mut self, timeout: Duration) -> Result<(), TargetError> {
        Device::reboot(self, timeout).await
    }

    async fn ended(&mut self) -> TargetError {
        // ssh and adb devices do not end on their own; a serial port can close.
        let never = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            if let Err(e) = self.check_serial() {
                return e;
            }
            let _ = self.console.next(never, |_| None::<()>).await;
        }
    }

    async fn stop(&mut self) {
        Device::stop(self).await
    }

    async fn install(&mut self, package: &Path, timeout: Duration) -> Result<(), TargetError> {
        Device::install(self, package, timeout).await
    }

    fn records_own_capture(&self) -> bool {
        matches!(self.traffic, Traffic::PullCapture { .. })
    }

    async fn pull_capture(&mut self, dest: &Path) -> Result<(), TargetError> {
        Device::pull_capture(self, dest).await
    }

    fn tail(&self, n: usize) -> String {
        Device::tail(self, n)
    }
}

/// Appends output to the console buffer and `console.log`.
fn append(console: &LiveConsole, log: &Mutex<Option<std::fs::File>>, data: &[u8]) {
    use std::io::Write;
    if let Ok(mut f) = log.lock() {
        if let Some(f) = f.as_mut() {
            let _ = f.write_all(data);
        }
    }
    console.push(data);
}

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

/// Runs a local command to completion within `timeout` (killed when it takes longer).
async fn output_within(
    cmd: &mut Command,
    timeout: Duration,
    program: &str,
) -> Result<std::process::Output, TargetError> {
    // `output()` gives the child no stdin unless one was set.
    cmd.kill_on_drop(true);
    let fut = cmd.output();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(spawn_error(program, &e)),
        Err(_) => Err(TargetError::Timeout {
            what: format!("`{program}` to answer"),
            after: timeout,
            tail: String::new(),
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(traffic: Traffic) -> DeviceSpec {
        DeviceSpec {
            control: Control::Adb { serial: "X".into() },
            traffic,
            log_command: None,
        }
    }

    #[test]
    fn interface_traffic_needs_root_and_says_why() {
        let s = spec(Traffic::Interface("enx001122".into()));
        let err = check_privileges(&s, false).unwrap_err();
        assert!(matches!(err, TargetError::NeedsRoot { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("enx001122") && text.contains("AF_PACKET"),
            "{text}"
        );
        assert!(check_privileges(&s, true).is_ok());
        let pull = spec(Traffic::PullCapture {
            remote_path: "/sdcard/x.pcap".into(),
            start: None,
        });
        assert!(
            check_privileges(&pull, false).is_ok(),
            "pulling a capture needs no root"
        );
    }

    #[tokio::test]
    async fn start_without_root_changes_nothing() {
        if super::super::is_root() {
            return; // the check under test only applies without root
        }
        let dir = std::env::temp_dir().join(format!("tt-dev-noroot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vnet =
            VnetHandle::start(crate::vnet::VnetConfig::default(), &dir.join("c.pcap")).unwrap();
        let log = dir.join("console.log");
        let err = Device::start(&spec(Traffic::Interface("lo".into())), &vnet, &log)
            .await
            .unwrap_err();
        assert!(matches!(err, TargetError::NeedsRoot { .. }));
        assert!(
            !log.exists(),
            "nothing was created before the privilege check"
        );
        let _ = vnet.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

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

    #[test]
    fn missing_tools_say_what_to_install() {
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        let t = spawn_error("adb", &e).to_string();
        assert!(t.contains("apt-get install adb"), "{t}");
        let t = spawn_error("ssh", &e).to_string();
        assert!(t.contains("openssh-client"), "{t}");
    }

    #[tokio::test]
    async fn preparing_a_missing_interface_names_it() {
        let err = prepare_gateway_interface("tt-nosuch1").await.unwrap_err();
        assert!(err.to_string().contains("tt-nosuch1"), "{err}");
        let err = prepare_gateway_interface("../x").await.unwrap_err();
        assert!(err.to_string().contains("not an interface"), "{err}");
    }
}
