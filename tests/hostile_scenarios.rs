//! Scenarios written as a hostile vendor would, run through the `telltale` binary: each is refused
//! (exit 2, with the place and the flag that would allow it), contained, or bounded, and nothing
//! is written outside the run folder. Everything here runs without root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const IMEI: &str = "356938035643809";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_telltale"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh folder `<tmp>/<case>/vendor` for the scenario, with `<tmp>/<case>` as the place
/// "outside" it.
fn folder(case: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("tt-hostile-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let vendor = root.join("vendor");
    std::fs::create_dir_all(&vendor).unwrap();
    (root, vendor)
}

/// A capture the scenario can name (one UDP datagram).
fn small_capture(path: &Path) {
    let mut s = telltale::synth::Synth::ethernet();
    s.udp(
        "10.77.0.10:5000".parse().unwrap(),
        "10.77.0.1:9".parse().unwrap(),
        b"hello",
    );
    std::fs::write(path, s.finish()).unwrap();
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn validate(scenario: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("validate")
        .arg(scenario)
        .args(extra)
        .output()
        .unwrap()
}

/// Exit 2, the scenario's file:line:col and the flag named.
fn assert_refused(o: &Output, place: &str, flag: &str) {
    let all = text(o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("host access not allowed"), "{all}");
    assert!(all.contains(place), "expected {place} in:\n{all}");
    assert!(all.contains(flag), "expected {flag} in:\n{all}");
}

const NETNS_HEAD: &str = "target:\n  kind: netns\n  command: [sleep, '1']\n";
const ID: &str = "identity:\n  values: {imei: \"356938035643809\"}\n";

#[test]
fn a_host_step_needs_allow_host_commands_and_validate_lists_it() {
    let (_root, vendor) = folder("host-step");
    let s = write(
        &vendor,
        "s.yaml",
        &format!("{NETNS_HEAD}{ID}steps:\n  - idle: 1s\n  - host: touch /tmp/owned\n"),
    );
    let o = validate(&s, &[]);
    assert_refused(&o, "s.yaml:8:5", "--allow-host=commands");
    // The wrong kind does not allow it either.
    assert_refused(
        &validate(&s, &["--allow-host=files,root"]),
        "s.yaml:8:5",
        "--allow-host=commands",
    );
    let o = validate(&s, &["--allow-host=commands"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("reaches the host:"), "{all}");
    assert!(
        all.contains("s.yaml:8:5  [commands] `host` step runs `touch /tmp/owned` on the host"),
        "{all}"
    );
    // `run` refuses it before anything starts: no run folder at all.
    let out = vendor.join("out");
    let o = bin()
        .arg("run")
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_refused(&o, "s.yaml:8:5", "--allow-host=commands");
    assert!(!out.exists());
}

#[test]
fn ssh_options_install_and_serial_ports_are_host_access() {
    let (_root, vendor) = folder("ssh");
    let s = write(
        &vendor,
        "s.yaml",
        &format!("target:\n  kind: device\n  control: {{ssh: {{host: 10.0.0.2, options: [\"ProxyCommand=sh -c 'id > /tmp/x'\"]}}}}\n  traffic: {{interface: eth9}}\n{ID}steps:\n  - idle: 1s\n"),
    );
    assert_refused(&validate(&s, &[]), "s.yaml:3:", "--allow-host=commands");
    let serial = write(
        &vendor,
        "serial.yaml",
        &format!("target:\n  kind: device\n  control: {{serial: /dev/ttyS0}}\n  traffic: {{pull: /data/c.pcap}}\n{ID}steps:\n  - idle: 1s\n"),
    );
    assert_refused(
        &validate(&serial, &[]),
        "serial.yaml:3:21",
        "--allow-host=files",
    );
    // Taking over a host interface for the device's traffic.
    let nic = write(
        &vendor,
        "nic.yaml",
        &format!("target:\n  kind: device\n  control: {{adb: SERIAL1}}\n  traffic: {{interface: eth9}}\n{ID}steps:\n  - idle: 1s\n"),
    );
    assert_refused(
        &validate(&nic, &[]),
        "nic.yaml:4:24",
        "--allow-host=network",
    );
    let o = validate(&nic, &["--allow-host=network"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("[network] the host interface `eth9` is taken over"),
        "{}",
        text(&o)
    );
    write(&vendor, "app.apk", "PK");
    let adb = write(
        &vendor,
        "adb.yaml",
        &format!("target:\n  kind: device\n  control: {{adb: SERIAL1}}\n  traffic: {{pull: /data/c.pcap}}\n{ID}steps:\n  - install: app.apk\n"),
    );
    assert_refused(
        &validate(&adb, &[]),
        "adb.yaml:8:5",
        "--allow-host=commands",
    );
}

#[test]
fn paths_outside_the_scenario_folder_need_allow_host_files() {
    let (root, vendor) = folder("paths");
    small_capture(&root.join("outside.pcap"));
    small_capture(&vendor.join("inside.pcap"));
    let cap = |file: &str| format!("name: audit\ntarget:\n  kind: capture\n  file: {file}\n{ID}");
    // Absolute: any host file (here one that exists everywhere).
    let abs = write(&vendor, "abs.yaml", &cap("/etc/passwd"));
    assert_refused(&validate(&abs, &[]), "abs.yaml:4:9", "--allow-host=files");
    // Climbing out with `..`.
    let up = write(&vendor, "up.yaml", &cap("../outside.pcap"));
    assert_refused(&validate(&up, &[]), "up.yaml:4:9", "--allow-host=files");
    // `..` that stays inside is fine.
    std::fs::create_dir_all(vendor.join("sub")).unwrap();
    let stay = write(&vendor, "stay.yaml", &cap("sub/../inside.pcap"));
    assert_eq!(validate(&stay, &[]).status.code(), Some(0));
    // A link out of the folder is the same as a path out of it.
    std::os::unix::fs::symlink(root.join("outside.pcap"), vendor.join("link.pcap")).unwrap();
    let link = write(&vendor, "link.yaml", &cap("link.pcap"));
    let o = validate(&link, &[]);
    assert_refused(&o, "link.yaml:4:9", "--allow-host=files");
    assert!(
        text(&o).contains("is a link to the host file"),
        "{}",
        text(&o)
    );
    // A kernel too (and the identity file).
    let k = write(
        &vendor,
        "k.yaml",
        &format!("target:\n  kind: qemu\n  kernel: /etc/passwd\n{ID}steps:\n  - idle: 1s\n"),
    );
    assert_refused(&validate(&k, &[]), "k.yaml:3:11", "--allow-host=files");
    let o = validate(&k, &["--allow-host"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("[files] `kernel` reads the host file /etc/passwd"));
}

/// An identity file or a disk outside the folder is refused before it is opened: the host file's text (here a
/// line shaped like `/etc/shadow`'s) never reaches the error, which an auditor might paste anywhere.
#[test]
fn host_files_are_not_opened_before_the_flag_allows_them() {
    let (root, vendor) = folder("identity");
    small_capture(&vendor.join("c.pcap"));
    write(
        &root,
        "shadow",
        "root:$6$SECRETSALT$SECRETHASH:19000:0:99999:7:::\n",
    );
    let s = write(
        &vendor,
        "s.yaml",
        "name: audit\ntarget:\n  kind: capture\n  file: c.pcap\nidentity: ../shadow\n",
    );
    let o = validate(&s, &[]);
    assert_refused(&o, "s.yaml:5:11", "--allow-host=files");
    assert!(!text(&o).contains("SECRET"), "{}", text(&o));
    let d = write(
        &vendor,
        "d.yaml",
        &format!("target:\n  kind: qemu\n  kernel: c.pcap\n  disk: ../shadow\n{ID}steps:\n  - idle: 1s\n"),
    );
    let o = validate(&d, &[]);
    assert_refused(&o, "d.yaml:4:9", "--allow-host=files");
    assert!(!text(&o).contains("SECRET"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn run_names_are_plain_names() {
    let (root, vendor) = folder("names");
    small_capture(&vendor.join("c.pcap"));
    for bad in ["..", "."] {
        let s = write(
            &vendor,
            "s.yaml",
            &format!("name: \"{bad}\"\ntarget:\n  kind: capture\n  file: c.pcap\n{ID}"),
        );
        let o = validate(&s, &["--allow-host"]);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{all}");
        assert!(
            all.contains("s.yaml:1:7") && all.contains("is not a name"),
            "{all}"
        );
    }
    let s = write(
        &vendor,
        "s.yaml",
        &format!("name: \"../../x\"\ntarget:\n  kind: capture\n  file: c.pcap\n{ID}"),
    );
    assert_eq!(validate(&s, &[]).status.code(), Some(2));
    // A file whose stem is not a plain name gets a plain run folder inside --out.
    let odd = write(
        &vendor,
        "we ird$.yaml",
        &format!("target:\n  kind: capture\n  file: c.pcap\n{ID}"),
    );
    let out = root.join("out");
    let o = bin()
        .arg("run")
        .arg(&odd)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let entries: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, vec!["we_ird_".to_string()]);
    assert!(out.join("we_ird_").join("report.json").is_file());
    // Nothing else appeared next to the scenario's folder.
    let mut around: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    around.sort();
    assert_eq!(around, vec!["out".to_string(), "vendor".to_string()]);
}

#[test]
fn a_netns_program_stays_in_the_run_home_and_root_is_opt_in() {
    let (_root, vendor) = folder("netns");
    for (plant, place) in [
        ("../../etc/cron.d/x", "s.yaml:7:19"),
        ("/etc/cron.d/x", "s.yaml:7:19"),
    ] {
        let s = write(
            &vendor,
            "s.yaml",
            &format!("{NETNS_HEAD}{ID}steps:\n  - plant: {{path: \"{plant}\", content: \"{{{{imei}}}}\"}}\n"),
        );
        let o = validate(&s, &["--allow-host"]);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{all}");
        assert!(
            all.contains("path outside the run's home") && all.contains(place),
            "{all}"
        );
    }
    for workdir in ["/root", "../.."] {
        let s = write(
            &vendor,
            "w.yaml",
            &format!("target:\n  kind: netns\n  command: [sleep, '1']\n  workdir: \"{workdir}\"\n{ID}steps:\n  - idle: 1s\n"),
        );
        let o = validate(&s, &["--allow-host"]);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{all}");
        assert!(
            all.contains("w.yaml:4:12") && all.contains("outside the run's home"),
            "{all}"
        );
    }
    let r = write(
        &vendor,
        "r.yaml",
        &format!("target:\n  kind: netns\n  command: [sleep, '1']\n  root: true\n{ID}steps:\n  - idle: 1s\n"),
    );
    assert_refused(&validate(&r, &[]), "r.yaml:4:3", "--allow-host=root");
    assert_eq!(validate(&r, &["--allow-host=root"]).status.code(), Some(0));
    let _ = IMEI;
}

/// `levels` anchors, each a list of two aliases of the one before: 2^levels nodes expanded.
fn alias_bomb(levels: usize) -> String {
    let mut t = String::from("l0: &l0 [abcdefg, abcdefh]\n");
    for i in 1..levels {
        t.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
    }
    t
}

#[test]
fn alias_bombs_and_huge_files_exit_2_at_once() {
    let (_root, vendor) = folder("bombs");
    let id = write(&vendor, "ids.yaml", &alias_bomb(60));
    let started = std::time::Instant::now();
    let o = bin().arg("identity").arg(&id).output().unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("aliases are copied"), "{all}");
    assert!(!all.contains("error: error:"), "{all}");
    // The same bomb as a scenario's identity file, and inline in a scenario.
    let s = write(
        &vendor,
        "s.yaml",
        "target: {kind: capture, file: c.pcap}\nidentity: ids.yaml\n",
    );
    small_capture(&vendor.join("c.pcap"));
    let o = validate(&s, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("aliases are copied"), "{}", text(&o));
    let inline = write(
        &vendor,
        "inline.yaml",
        &format!(
            "target: {{kind: capture, file: c.pcap}}\nidentity:\n  values: {{imei: \"{IMEI}\"}}\nx:\n{}",
            alias_bomb(60)
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        ),
    );
    let o = validate(&inline, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("aliases are copied"), "{}", text(&o));
    // A file far larger than any identity: refused without being read whole.
    let big = vendor.join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(8 << 30).unwrap(); // sparse: 8 GiB of NULs, no disk used
    let o = bin().arg("identity").arg(&big).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("identity file too large"), "{}", text(&o));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let _ = std::fs::remove_file(&big);
}

#[test]
fn plain_canaries_are_refused_with_their_line() {
    let (_root, vendor) = folder("plain");
    let id = write(
        &vendor,
        "ids.yaml",
        "imei: \"356938035643809\"\npin: \"\\0\\0\\0\\0\\0\\0\"\n",
    );
    let o = bin().arg("identity").arg(&id).output().unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains("identity value too plain") && all.contains("ids.yaml:2:6"),
        "{all}"
    );
    assert!(!all.contains("error: error:"), "{all}");
}

#[test]
fn vnet_listen_never_replaces_a_file_that_is_not_a_socket() {
    let (_root, vendor) = folder("vnet");
    let precious = write(&vendor, "precious.txt", "keep me");
    let o = bin()
        .args(["vnet", "--quiet", "--listen"])
        .arg(&precious)
        .arg("--pcap")
        .arg(vendor.join("c.pcap"))
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("is not a socket"), "{all}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    // A socket another program listens on is not taken over either.
    let busy = vendor.join("busy.sock");
    let listener = std::os::unix::net::UnixListener::bind(&busy).unwrap();
    let o = bin()
        .args(["vnet", "--quiet", "--listen"])
        .arg(&busy)
        .arg("--pcap")
        .arg(vendor.join("c.pcap"))
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains("a program is listening on this socket"),
        "{all}"
    );
    assert!(std::os::unix::net::UnixStream::connect(&busy).is_ok());
    drop(listener);
}

#[test]
fn a_capture_target_whose_file_is_not_a_capture_is_bad_input() {
    let (root, vendor) = folder("notcap");
    std::fs::write(vendor.join("c.pcap"), b"this is not a capture at all\n").unwrap();
    let s = write(
        &vendor,
        "s.yaml",
        &format!("target:\n  kind: capture\n  file: c.pcap\n{ID}"),
    );
    for cmd in ["validate", "run"] {
        let o = if cmd == "validate" {
            validate(&s, &[])
        } else {
            bin()
                .arg("run")
                .arg(&s)
                .arg("--out")
                .arg(root.join("out"))
                .output()
                .unwrap()
        };
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {all}");
        assert!(
            all.contains("c.pcap is not a capture file") && all.contains("pcapng"),
            "{cmd}: {all}"
        );
    }
    // Nothing was started: no run folder.
    assert!(!root.join("out").join("s").exists());
}
