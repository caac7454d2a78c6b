//! The `device` target: real hardware (or anything that behaves like it) that telltale
//! drives but does not boot.
//!
//! This module owns the [`Device`] driver and the two channels to an attached device:
//! - **control**, out of band from the device's traffic: `ssh` (the system's OpenSSH
//!   client, `BatchMode`, never a password prompt), `adb` (Android), or a serial port. Shell
//!   commands, planting files, rebooting, and an optional log command (`logcat`,
//!   `tail -F /var/log/messages`) whose output is the device's "console" (`console.log`,
//!   matched by [`Driver::wait_for`](super::Driver::wait_for)). The driver speaks to every
//!   kind through one trait, `ControlChannel`, implemented in `ssh`, `adb` and `serial`
//!   (`remote` holds what the ssh and adb clients share); only `open_channel` looks at the
//!   kind;
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

mod adb;
mod remote;
mod serial;
mod ssh;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::bytes::Regex;
use tokio::process::Command;

use super::console::{shell_quote, ShellOutput};
use super::live::LiveConsole;
use super::{run_host, spawn_error, Driver, TargetError};
use crate::vnet::port::PacketPort;
use crate::vnet::run::VnetHandle;

pub use adb::attached_serials;
pub use remote::parse_status;
pub use ssh::ssh_args;

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

/// What the driver needs from a control channel (ssh, adb or a serial port). Each kind
/// owns the processes and descriptors it opens, ends them in [`ControlChannel::stop`] and,
/// as a last resort, on drop.
#[async_trait::async_trait]
trait ControlChannel: Send + Sync {
    /// A name for error messages (`ssh root@host:22`, `adb device X`, `serial port …`).
    fn describe(&self) -> String;

    /// A writable directory on the device for telltale's small files.
    fn tmp_dir(&self) -> &'static str;

    /// Whether the console gets any output: from the log command, or the serial port's own.
    fn has_console(&self) -> bool;

    /// Checks that the device answers (and opens what the channel needs).
    async fn open(&mut self) -> Result<(), TargetError>;

    /// Runs a shell command on the device: its status and output (stdout and stderr).
    async fn shell(&mut self, cmd: &str, timeout: Duration) -> Result<ShellOutput, TargetError>;

    /// Writes `content` to `path` on the device (parent directories created).
    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError>;

    /// Installs an app package; only adb can.
    async fn install(&mut self, apk: &Path, _timeout: Duration) -> Result<(), TargetError> {
        Err(TargetError::Io(format!(
            "installing {} needs an adb device; this is {}",
            apk.display(),
            self.describe()
        )))
    }

    /// Copies the device's file `remote_path` to `dest`.
    async fn pull(
        &mut self,
        remote_path: &str,
        dest: &Path,
        timeout: Duration,
    ) -> Result<(), TargetError>;

    /// Starts the log command (if the device has one) with its output going to the console.
    async fn start_log(&mut self) -> Result<(), TargetError>;

    /// Restarts the device (the console's earlier output is consumed already).
    async fn reboot(&mut self, timeout: Duration) -> Result<(), TargetError>;

    /// A device-side process was started in the background with its pid in
    /// [`pidfile`]`(tmp_dir, tag)`: end it at stop.
    fn remote_started(&mut self, tag: &'static str);

    /// The device-side process `tag` was ended: nothing to do for it at stop.
    fn remote_ended(&mut self, tag: &'static str);

    /// Fails with [`TargetError::Exited`] once the channel closed on its own.
    fn closed(&self) -> Result<(), TargetError> {
        Ok(())
    }

    /// Ends everything the channel started (device-side commands, local processes).
    async fn stop(&mut self);
}

/// The one place that looks at the control kind.
fn open_channel(
    control: &Control,
    log_command: Option<String>,
    sink: Sink,
) -> Box<dyn ControlChannel> {
    match control {
        Control::Ssh {
            host,
            port,
            user,
            identity,
            options,
        } => Box::new(ssh::Ssh::new(
            host,
            *port,
            user,
            identity.as_deref(),
            options,
            log_command,
            sink,
        )),
        Control::Adb { serial } => Box::new(adb::Adb::new(serial, log_command, sink)),
        Control::Serial { path, baud } => {
            Box::new(serial::Serial::new(path, *baud, log_command, sink))
        }
    }
}

/// The file on the device holding the pid of telltale's background command `tag`.
fn pidfile(tmp_dir: &str, tag: &str) -> String {
    format!("{tmp_dir}/.telltale-{tag}.pid")
}

/// Where the device's output goes: the live console (matched by `wait_for`) and
/// `console.log`. Cheap to clone into reader tasks.
#[derive(Clone)]
struct Sink {
    console: LiveConsole,
    log: Arc<Mutex<Option<std::fs::File>>>,
}

impl Sink {
    /// Appends output to the console buffer and `console.log`.
    fn append(&self, data: &[u8]) {
        use std::io::Write;
        if let Ok(mut f) = self.log.lock() {
            if let Some(f) = f.as_mut() {
                let _ = f.write_all(data);
            }
        }
        self.console.push(data);
    }

    /// The last `n` lines of the console.
    fn tail(&self, n: usize) -> String {
        self.console.tail(n)
    }

    /// Closes `console.log`.
    fn close(&self) {
        if let Ok(mut f) = self.log.lock() {
            *f = None;
        }
    }
}

/// A running attached device.
pub struct Device {
    control: Control,
    traffic: Traffic,
    sink: Sink,
    channel: Box<dyn ControlChannel>,
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
        let sink = Sink {
            console: LiveConsole::new(),
            log: Arc::new(Mutex::new(Some(file))),
        };
        let mut dev = Device {
            control: spec.control.clone(),
            traffic: spec.traffic.clone(),
            channel: open_channel(&spec.control, spec.log_command.clone(), sink.clone()),
            sink,
            stopped: false,
        };
        dev.channel.open().await?;
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
        dev.channel.start_log().await?;
        if let Traffic::PullCapture {
            start: Some(cmd), ..
        } = &spec.traffic
        {
            dev.start_background(cmd, "capture").await?;
        }
        Ok(dev)
    }

    /// Starts `cmd` in the background on the device, its pid in [`pidfile`]`(…, tag)`; it
    /// is ended at stop.
    async fn start_background(&mut self, cmd: &str, tag: &'static str) -> Result<(), TargetError> {
        let pidfile = pidfile(self.channel.tmp_dir(), tag);
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
        self.channel.remote_started(tag);
        Ok(())
    }

    /// Installs an Android package (`adb install -r`). Only for adb devices.
    pub async fn install(&mut self, apk: &Path, timeout: Duration) -> Result<(), TargetError> {
        self.channel.install(apk, timeout).await
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
            let pidfile = pidfile(self.channel.tmp_dir(), "capture");
            let stop = format!(
                "p=$(cat {pidfile} 2>/dev/null); w() {{ i=0; while [ -n \"$p\" ] && kill -0 $p 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; }}; [ -n \"$p\" ] && kill -INT $p 2>/dev/null; w; [ -n \"$p\" ] && kill -TERM $p 2>/dev/null; w; rm -f {pidfile}; true"
            );
            self.shell(&stop, CHECK_TIMEOUT).await?;
            self.channel.remote_ended("capture");
        }
        self.channel.pull(&remote_path, dest, timeout).await
    }

    /// Ends everything this device started (device-side commands, local processes).
    pub async fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.channel.stop().await;
        self.sink.close();
    }

    /// The last `n` lines of the console.
    pub fn tail(&self, n: usize) -> String {
        self.sink.tail(n)
    }
}

#[async_trait::async_trait]
impl Driver for Device {
    /// Waits until the console (log command output, or the serial output) shows `re`.
    async fn wait_for(&mut self, re: &Regex, timeout: Duration) -> Result<String, TargetError> {
        let silent = !self.channel.has_console();
        let what = || {
            if silent {
                format!("log output matching /{}/ (this device has no log command: nothing is ever logged)", re.as_str())
            } else {
                format!("log output matching /{}/", re.as_str())
            }
        };
        let channel = &self.channel;
        self.sink
            .console
            .wait(timeout, what, |c| c.find(re), || channel.closed())
            .await
    }

    /// Runs a shell command on the device: its status and output (stdout and stderr).
    async fn shell(&mut self, cmd: &str, timeout: Duration) -> Result<ShellOutput, TargetError> {
        self.channel.shell(cmd, timeout).await
    }

    /// Writes `content` to `path` on the device (parent directories created).
    async fn plant(
        &mut self,
        path: &str,
        content: &[u8],
        timeout: Duration,
    ) -> Result<(), TargetError> {
        self.channel.plant(path, content, timeout).await
    }

    /// Restarts the device. Over ssh and adb it waits until the control channel answers
    /// from the new boot (a new `boot_id`) and starts the log command again; over a serial
    /// port it only sends the command (the boot pattern on the console tells the rest).
    async fn reboot(&mut self, timeout: Duration) -> Result<(), TargetError> {
        self.sink.console.consume_all();
        self.channel.reboot(timeout).await
    }

    async fn ended(&mut self) -> TargetError {
        // ssh and adb devices do not end on their own; a serial port can close.
        let never = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            if let Err(e) = self.channel.closed() {
                return e;
            }
            let _ = self.sink.console.next(never, |_| None::<()>).await;
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
