//! The `target:` section: which kind of target (qemu, container, netns, device, capture) and
//! its settings; a capture target's phases are known to the later sections.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::read::Fields;
use super::{Cx, R};
use crate::diag::list;
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::values;
use crate::scenario::*;
use crate::yaml::{Node, NodeKind, Pos};

const QEMU_KEYS: [&str; 9] = [
    "kind",
    "arch",
    "kernel",
    "initrd",
    "disk",
    "append",
    "memory",
    "cpus",
    "boot_timeout",
];
const CONTAINER_KEYS: [&str; 7] = ["kind", "image", "tag", "cmd", "env", "copy", "boot_timeout"];
const COPY_KEYS: [&str; 2] = ["from", "to"];
const NETNS_KEYS: [&str; 7] = [
    "kind",
    "command",
    "env",
    "workdir",
    "root",
    "boot_timeout",
    "user",
];
const DEVICE_KEYS: [&str; 5] = ["kind", "control", "traffic", "log", "boot_timeout"];
const CONTROL_KINDS: [&str; 3] = ["ssh", "adb", "serial"];
const SSH_KEYS: [&str; 5] = ["host", "port", "user", "identity", "options"];
const SERIAL_KEYS: [&str; 2] = ["path", "baud"];
const TRAFFIC_KINDS: [&str; 2] = ["interface", "pull"];
const PULL_KEYS: [&str; 2] = ["path", "start"];
const CAPTURE_KEYS: [&str; 3] = ["kind", "file", "phases"];
const CAPTURE_PHASE_KEYS: [&str; 3] = ["name", "at", "at_epoch"];

impl Cx<'_> {
    pub(super) fn target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let NodeKind::Map(entries) = &n.kind else {
            return Err(self.err(
                K::WrongType,
                n.pos,
                "expected a mapping",
                format!(
                    "`target` must be a mapping with `kind: qemu`, `kernel:` …, not {}",
                    n.describe()
                ),
            ));
        };
        let probe = Fields {
            entries,
            at,
            what: "`target`",
        };
        let kind_node = self.req(&probe, "kind", "`kind: qemu`")?;
        match self.one_of(kind_node, "kind", &TARGET_KINDS)? {
            "container" => self.container_target(n, at),
            "netns" => self.netns_target(n, at),
            "device" => self.device_target(n, at),
            "capture" => self.capture_target(n, at),
            _ => self.qemu_target(n, at),
        }
    }

    fn qemu_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `qemu` target", &QEMU_KEYS)?;
        let arch = match f.get("arch") {
            Some(a) => match self.one_of(a, "arch", &Arch::NAMES)? {
                "aarch64" => Arch::Aarch64,
                _ => Arch::X86_64,
            },
            None => Arch::X86_64,
        };
        let kernel = self.path(
            self.req(&f, "kernel", "`kernel: path/to/vmlinuz`")?,
            "kernel",
            "kernel",
        )?;
        let initrd = f
            .get("initrd")
            .map(|n| self.path(n, "initrd", "initrd"))
            .transpose()?;
        let disk = f
            .get("disk")
            .map(|n| self.path(n, "disk", "disk image"))
            .transpose()?;
        let append = f
            .get("append")
            .map(|n| self.templated(n, "append"))
            .transpose()?;
        let memory_mib = match f.get("memory") {
            None => DEFAULT_MEMORY_MIB,
            Some(m) => {
                let text = self.string(m, "memory")?;
                let r = values::parse_memory_mib(&text);
                r.map_err(|msg| self.err(K::InvalidValue, m.pos, "invalid memory size", msg))?
            }
        };
        let cpus = match f.get("cpus") {
            Some(c) => self.uint(c, "cpus", 1, u64::from(MAX_CPUS))? as u32,
            None => 1,
        };
        let boot_timeout = match f.get("boot_timeout") {
            Some(d) => self.duration(d, "boot_timeout")?,
            None => DEFAULT_BOOT_TIMEOUT,
        };
        Ok(Target::Qemu(QemuTarget {
            arch,
            kernel,
            initrd,
            disk,
            append,
            memory_mib,
            cpus,
            boot_timeout,
        }))
    }

    fn boot_timeout(&self, f: &Fields<'_>) -> R<Duration> {
        match f.get("boot_timeout") {
            Some(d) => self.duration(d, "boot_timeout"),
            None => Ok(DEFAULT_BOOT_TIMEOUT),
        }
    }

    /// `env: {NAME: value}` in file order.
    fn env(&mut self, n: &Node) -> R<Vec<(String, String)>> {
        let NodeKind::Map(entries) = &n.kind else {
            return Err(self.err(
                K::WrongType,
                n.pos,
                "expected a mapping",
                format!(
                    "`env` must be a mapping of NAME: value, not {}",
                    n.describe()
                ),
            ));
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let name = self.nonempty(k, "env")?;
            if name.contains('=') || name.contains('\0') {
                return Err(self.err(
                    K::InvalidValue,
                    k.pos,
                    "invalid variable name",
                    format!("environment variable names cannot contain `=`: `{name}`"),
                ));
            }
            let key = format!("env.{}", k.scalar().unwrap_or(""));
            out.push((name, self.templated(v, &key)?));
        }
        Ok(out)
    }

    /// A program: `"shell command line"` or `[argv0, arg1, …]`; `{{name}}` templates are checked here and
    /// filled in once the identity is known ([`crate::scenario::Scenario`]'s template pass).
    fn command(&mut self, n: &Node, key: &str) -> R<HostCommand> {
        match &n.kind {
            NodeKind::Seq(items) if !items.is_empty() => {
                let mut argv = Vec::with_capacity(items.len());
                for i in items {
                    self.nonempty(i, key)?;
                    argv.push(self.templated(i, key)?);
                }
                Ok(HostCommand::Argv(argv))
            }
            _ => {
                self.nonempty(n, key)?;
                Ok(HostCommand::Shell(self.templated(n, key)?))
            }
        }
    }

    /// Text that reaches the target: its `{{name}}` templates are checked (syntax now, names against the
    /// identity later, both with the line) and the text kept as written until they are filled in.
    fn templated(&mut self, n: &Node, key: &str) -> R<String> {
        Ok(self.template(n, key)?.as_str().to_string())
    }

    fn container_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `container` target", &CONTAINER_KEYS)?;
        let image_node = self.req(
            &f,
            "image",
            "`image: vendor/firmware` (a local or registry image)",
        )?;
        let mut image = self.nonempty(image_node, "image")?;
        let mut tag = f.get("tag").map(|t| self.nonempty(t, "tag")).transpose()?;
        if tag.is_none() {
            // `image: name:tag` (a `:` after the last `/`; a registry port comes before it).
            if let Some(i) = image.rfind(':').filter(|i| !image[*i..].contains('/')) {
                tag = Some(image[i + 1..].to_string());
                image.truncate(i);
            }
        }
        let cmd = match f.get("cmd") {
            None => Vec::new(),
            Some(c) => match self.command(c, "cmd")? {
                HostCommand::Argv(v) => v,
                HostCommand::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s],
            },
        };
        let env = f
            .get("env")
            .map(|e| self.env(e))
            .transpose()?
            .unwrap_or_default();
        let mut copy = Vec::new();
        if let Some(c) = f.get("copy") {
            for item in self.seq(c, "copy")? {
                let cf = self.fields(item, item.pos, "a `copy` entry", &COPY_KEYS)?;
                let from = self.path(
                    self.req(&cf, "from", "`from: host/file`")?,
                    "from",
                    "file to copy",
                )?;
                let to_node = self.req(&cf, "to", "`to: /absolute/path/in/container`")?;
                let to = self.nonempty(to_node, "to")?;
                if !to.starts_with('/') {
                    return Err(self.err(
                        K::InvalidValue,
                        to_node.pos,
                        "relative container path",
                        format!("`to` must be an absolute path in the container, e.g. `/{to}`"),
                    ));
                }
                copy.push((from, to));
            }
        }
        Ok(Target::Container(ContainerTarget {
            image,
            tag: tag.unwrap_or_else(|| "latest".to_string()),
            cmd,
            env,
            copy,
            boot_timeout: self.boot_timeout(&f)?,
        }))
    }

    fn netns_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `netns` target", &NETNS_KEYS)?;
        let command = self.command(
            self.req(
                &f,
                "command",
                "`command: [program, arg]` (the program to run in the namespace)",
            )?,
            "command",
        )?;
        let env = f
            .get("env")
            .map(|e| self.env(e))
            .transpose()?
            .unwrap_or_default();
        let workdir = match f.get("workdir") {
            Some(w) => {
                let s = self.nonempty(w, "workdir")?;
                if super::escapes(Path::new(&s)) {
                    return Err(self.err(
                        K::InvalidValue,
                        w.pos,
                        "working directory outside the run's home",
                        format!("`workdir` is a folder inside the run's `home/` (made fresh per run): it must be relative and must not climb with `..`, not `{s}`"),
                    ));
                }
                Some(PathBuf::from(s))
            }
            None => None,
        };
        let root = match f.get("root") {
            Some(r) => self.boolean(r, "root")?,
            None => false,
        };
        if root {
            self.host_access(
                HostAccessKind::Root,
                f.key_pos("root").unwrap_or(at),
                "`netns` program keeps root and its capabilities (it could leave its namespace)"
                    .to_string(),
            );
        }
        let user = match f.get("user") {
            Some(u) => {
                let s = self.nonempty(u, "user")?;
                if root {
                    return Err(self.err(
                        K::InvalidValue,
                        u.pos,
                        "user with root",
                        "`root: true` keeps root: drop `user`, or drop `root: true` to run as `user`"
                            .to_string(),
                    ));
                }
                if s == "root" || s.split(':').any(|p| p.trim() == "0") {
                    return Err(self.err(
                        K::InvalidValue,
                        u.pos,
                        "root is not an unprivileged user",
                        format!("`user` is the unprivileged user the program runs as (a name, `UID` or `UID:GID`, not 0); to keep root write `root: true` (needs `--allow-host=root`), not `user: {s}`"),
                    ));
                }
                Some(s)
            }
            None => None,
        };
        self.relative_plant = true;
        Ok(Target::Netns(NetnsTarget {
            command,
            env,
            workdir,
            root,
            user,
            boot_timeout: self.boot_timeout(&f)?,
        }))
    }

    /// `{one_of_kinds: value}`: the single key and its value.
    fn single<'n>(
        &self,
        n: &'n Node,
        key: &str,
        kinds: &[&'static str],
        example: &str,
    ) -> R<(&'static str, &'n Node)> {
        match &n.kind {
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                let kind = self.one_of(k, key, kinds)?;
                Ok((kind, v))
            }
            _ => Err(self.err(
                K::WrongType,
                n.pos,
                "expected a mapping with one key",
                format!(
                    "`{key}` is a mapping with one of {}, e.g. {example}",
                    list(kinds)
                ),
            )),
        }
    }

    fn device_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `device` target", &DEVICE_KEYS)?;
        let cn = self.req(
            &f,
            "control",
            "`control: {ssh: {host: 192.168.77.2}}`, `{adb: SERIAL}` or `{serial: /dev/ttyUSB0}`",
        )?;
        let (ckind, cv) = self.single(cn, "control", &CONTROL_KINDS, "`control: {adb: SERIAL}`")?;
        let control = match ckind {
            "ssh" => {
                let (host, port, user, identity, options) = match &cv.kind {
                    NodeKind::Scalar { .. } => (
                        self.nonempty(cv, "ssh")?,
                        22,
                        "root".to_string(),
                        None,
                        Vec::new(),
                    ),
                    _ => {
                        let sf = self.fields(cv, cv.pos, "`ssh`", &SSH_KEYS)?;
                        let host =
                            self.nonempty(self.req(&sf, "host", "`host: 192.168.77.2`")?, "host")?;
                        let port = match sf.get("port") {
                            Some(p) => self.uint(p, "port", 1, 65535)? as u16,
                            None => 22,
                        };
                        let user = sf
                            .get("user")
                            .map(|u| self.nonempty(u, "user"))
                            .transpose()?
                            .unwrap_or_else(|| "root".into());
                        let identity = sf
                            .get("identity")
                            .map(|i| self.path(i, "identity", "ssh key"))
                            .transpose()?;
                        let mut options = Vec::new();
                        if let Some(o) = sf.get("options") {
                            for item in self.seq(o, "options")? {
                                let opt = self.nonempty(item, "options")?;
                                if !opt.contains('=') {
                                    return Err(self.err(
                                        K::InvalidValue,
                                        item.pos,
                                        "invalid ssh option",
                                        format!("ssh options are `Name=value` (as `ssh -o`), e.g. `UserKnownHostsFile=lab_known_hosts`, not `{opt}`"),
                                    ));
                                }
                                self.host_access(
                                    HostAccessKind::Commands,
                                    item.pos,
                                    format!("ssh option `{opt}` is given to the host's ssh (options such as `ProxyCommand` run host commands)"),
                                );
                                options.push(opt);
                            }
                        }
                        (host, port, user, identity, options)
                    }
                };
                DeviceControl::Ssh {
                    host,
                    port,
                    user,
                    identity,
                    options,
                }
            }
            "adb" => DeviceControl::Adb {
                serial: self.nonempty(cv, "adb")?,
            },
            _ => match &cv.kind {
                NodeKind::Scalar { .. } => {
                    let path = PathBuf::from(self.nonempty(cv, "serial")?);
                    self.serial_access(&path, cv.pos);
                    DeviceControl::Serial {
                        path,
                        baud: 115_200,
                    }
                }
                _ => {
                    let sf = self.fields(cv, cv.pos, "`serial`", &SERIAL_KEYS)?;
                    let path = PathBuf::from(
                        self.nonempty(self.req(&sf, "path", "`path: /dev/ttyUSB0`")?, "path")?,
                    );
                    self.serial_access(&path, sf.get("path").map_or(cv.pos, |p| p.pos));
                    let baud = match sf.get("baud") {
                        Some(b) => self.uint(b, "baud", 50, 4_000_000)? as u32,
                        None => 115_200,
                    };
                    DeviceControl::Serial { path, baud }
                }
            },
        };
        let tn = self.req(&f, "traffic", "`traffic: {interface: eth1}` (telltale is the device's gateway on it) or `{pull: /sdcard/capture.pcap}`")?;
        let (tkind, tv) = self.single(
            tn,
            "traffic",
            &TRAFFIC_KINDS,
            "`traffic: {interface: eth1}`",
        )?;
        let traffic = match tkind {
            "interface" => {
                let name = self.nonempty(tv, "interface")?;
                if name.len() > 15 || name.contains(['/', ' ']) {
                    return Err(self.err(
                        K::InvalidValue,
                        tv.pos,
                        "invalid interface name",
                        format!("`{name}` is not a Linux interface name (at most 15 characters, no `/` or spaces)"),
                    ));
                }
                self.host_access(
                    HostAccessKind::Network,
                    tv.pos,
                    format!("the host interface `{name}` is taken over for the device (its addresses flushed, ARP and IPv6 turned off on it)"),
                );
                DeviceTraffic::Interface(name)
            }
            _ => match &tv.kind {
                NodeKind::Scalar { .. } => DeviceTraffic::Pull {
                    path: self.nonempty(tv, "pull")?,
                    start: None,
                },
                _ => {
                    let pf = self.fields(tv, tv.pos, "`pull`", &PULL_KEYS)?;
                    DeviceTraffic::Pull {
                        path: self.nonempty(
                            self.req(&pf, "path", "`path: /sdcard/capture.pcap`")?,
                            "path",
                        )?,
                        start: pf
                            .get("start")
                            .map(|s| self.nonempty(s, "start"))
                            .transpose()?,
                    }
                }
            },
        };
        let log = match f.get("log") {
            Some(l) => {
                self.nonempty(l, "log")?;
                Some(self.templated(l, "log")?)
            }
            None => None,
        };
        self.adb_target = matches!(control, DeviceControl::Adb { .. });
        Ok(Target::Device(DeviceTarget {
            control,
            traffic,
            log,
            boot_timeout: self.boot_timeout(&f)?,
        }))
    }

    fn serial_access(&mut self, path: &Path, pos: Pos) {
        self.host_access(
            HostAccessKind::Files,
            pos,
            format!("`serial` opens the host device {}", path.display()),
        );
    }

    fn capture_target(&mut self, n: &Node, at: Pos) -> R<Target> {
        let f = self.fields(n, at, "a `capture` target", &CAPTURE_KEYS)?;
        let file = self.path(
            self.req(&f, "file", "`file: capture.pcap`")?,
            "file",
            "capture",
        )?;
        let mut phases: Vec<(String, PhaseStart)> = Vec::new();
        if let Some(p) = f.get("phases") {
            for item in self.seq(p, "phases")? {
                let pf = self.fields(item, item.pos, "a phase", &CAPTURE_PHASE_KEYS)?;
                let name_node = self.req(&pf, "name", "`name: consent_declined`")?;
                let name = self.phase_name(name_node, "name")?;
                if name == INITIAL_PHASE || phases.iter().any(|(p, _)| *p == name) {
                    return Err(self.err(
                        K::Duplicate,
                        name_node.pos,
                        "duplicate phase",
                        format!("phase `{name}` is already declared (`{INITIAL_PHASE}` is the phase before the first one listed)"),
                    ));
                }
                let start = match (pf.get("at"), pf.get("at_epoch")) {
                    (Some(a), None) => PhaseStart::Offset(self.duration(a, "at")?),
                    (None, Some(e)) => {
                        let t = self.string(e, "at_epoch")?;
                        PhaseStart::EpochNanos(values::parse_epoch_nanos(&t).map_err(|m| self.err(K::InvalidValue, e.pos, "invalid time", m))?)
                    }
                    _ => {
                        return Err(self.err(
                            K::MissingKey,
                            item.pos,
                            "phase start",
                            "a phase needs exactly one of `at: 12500ms` (after the capture's first frame) or `at_epoch: 1795300000.25` (seconds since 1970, as Wireshark's frame.time_epoch)".to_string(),
                        ))
                    }
                };
                phases.push((name, start));
            }
        }
        self.target_phases = phases.iter().map(|(n, _)| n.clone()).collect();
        Ok(Target::Capture(CaptureTarget { file, phases }))
    }
}
