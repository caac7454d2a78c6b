//! The command line's grammar: every subcommand, flag and help text (clap). The binary's `main` dispatches on
//! it; nothing here does any work.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  pass: no canary found (analyze), every policy rule and claim held (run)
  1  a canary was found / a policy rule, claim or snapshot was violated / a claim is STILL LEAKING
  2  bad input: unreadable file, not a capture, invalid identity file or scenario
  3  infrastructure failure: the target did not boot, hung or crashed, or telltale failed
  4  inconclusive: verify could not show a claim either way (or NOT REPRODUCED)
  130  interrupted (Ctrl-C); artifacts of the runs are kept";

/// Finds planted personal data (canaries) in everything a device sent.
#[derive(Parser, Debug)]
#[command(name = "telltale", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse a capture: conversations, DNS, HTTP, TLS, DHCP, and every canary in any encoding.
    #[command(after_help = "\
Examples:
  telltale analyze device.pcap --identity canaries.yaml
  telltale analyze run.pcapng.gz --identity canaries.yaml --format json > report.json

The identity file is YAML mapping names to the fake personal values planted on the device:
  imei: \"356938035643809\"
  phone: \"+15555550123\"
  contacts: [\"Alice Canary\", \"+15555550199\"]
Each value is searched raw, case-insensitively, URL-, base64-, hex-, JSON- and UTF-16-encoded, as md5/sha1/\
sha256/sha512 digests (hex or base64), and inside base64-encoded gzip, in every TCP stream (both directions), \
UDP payload, decoded HTTP body (chunked, gzip, deflate, br, zstd), query parameter and DNS name.

Exit codes: 0 no canary found, 1 canary found, 2 bad input, 3 internal failure.")]
    Analyze {
        /// Capture file: pcap or pcapng, optionally gzip-compressed.
        capture: PathBuf,
        /// YAML file of canary values to search for.
        #[arg(long, short = 'i', value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the report to FILE instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Colour in text output.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
        /// Cap of each TCP direction's out-of-order buffer, in KiB.
        #[arg(long, default_value_t = 512, value_name = "KIB")]
        reassembly_cap: usize,
        /// Layers opened at most on the way to a canary (multipart, gzip, base64, JSON…); bytes still encoded
        /// at the limit are reported unread (`decode_depth`), never skipped in silence.
        #[arg(long, default_value_t = telltale::layers::graph::DEFAULT_DEPTH, value_name = "N",
              value_parser = clap::value_parser!(usize))]
        decode_depth: usize,
        /// TLS key log (NSS format, as SSLKEYLOGFILE writes it); repeatable. Keys in the capture's pcapng
        /// decryption secrets blocks are used too.
        #[arg(long, value_name = "FILE")]
        keylog: Vec<PathBuf>,
    },
    /// Check an identity file and show what will be searched for.
    #[command(
        after_help = "With --patterns, prints every searched byte string (escaped) one per line, e.g. for \
`grep -F -f` comparisons. Exit codes: 0 valid, 2 invalid."
    )]
    Identity {
        /// YAML file of canary values.
        file: PathBuf,
        /// Print every searched pattern.
        #[arg(long)]
        patterns: bool,
    },
    /// Run scenarios: boot each target on telltale's network, drive it, capture, analyse, judge.
    #[command(after_help = "\
Examples:
  telltale run scenarios/cloudsync-v1.yaml
  telltale run scenarios/ --jobs 2 --out results/

Each scenario gets an artifacts folder OUT/<name>/ with capture.pcap, console.log, report.json \
(analysis, steps, phases, network log, policy and claim results) and manifest.json (hashes of the \
scenario and images, telltale's version, timings). See scenarios/README.md for the language. The last \
line sums up every run: verdicts, the exit code and why.

Exit codes: 0 all policies and claims held, 1 a policy or claim was violated, 2 invalid scenario, \
3 infrastructure failure (target did not boot, hung, crashed; the step is named, the console log \
kept), 130 interrupted.")]
    Run {
        /// Scenario files, or folders of them (*.yaml, *.yml).
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        flags: RunFlags,
        #[command(flatten)]
        reports: ReportFiles,
    },
    /// Run scenarios and compare each run's privacy behaviour with its accepted snapshot: the CI gate.
    #[command(after_help = "\
For each scenario: run it (as `telltale run`), derive its privacy snapshot (per phase: destinations, \
requests, canaries and their encodings, upload size buckets; normalised so that the same firmware gives \
the same snapshot every run) and compare it with DIR/<name>[@<release>].snap (DIR: --snapshots).

Fails on a new destination, request, DNS lookup, canary, encoding of a canary, or a larger upload bucket; \
a policy rule or claim violated; no accepted snapshot yet. Passes when unchanged, or when only things are \
gone (a note; --strict fails on that too, so the snapshot is updated).

A differing or missing snapshot is written as .snap.new beside it (insta's format: `cargo insta review` \
works on it, or `telltale accept --snapshots DIR`). check never writes accepted snapshots, in CI (CI set) \
or anywhere. The last line sums up every run and snapshot: verdicts, the exit code and why.

Exit codes: 0 pass, 1 privacy regression (policy, claim or snapshot), 2 invalid input, 3 infrastructure \
failure, 130 interrupted.")]
    Check {
        /// Scenario files, or folders of them.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        /// Folder of accepted snapshots.
        #[arg(long, default_value = "snapshots", value_name = "DIR")]
        snapshots: PathBuf,
        /// Fail when something in the accepted snapshot is gone, too.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        flags: RunFlags,
        #[command(flatten)]
        reports: ReportFiles,
    },
    /// Accept pending snapshots (.snap.new → .snap).
    #[command(after_help = "\
Examples:
  telltale accept                                  # every pending snapshot in snapshots/
  telltale accept scenarios/cloudsync-v3.yaml      # that scenario's
  telltale accept --snapshots snaps                # after `telltale check --snapshots snaps`

Exit codes: 0 accepted, 2 nothing pending for a named scenario or an invalid scenario.")]
    Accept {
        /// Scenarios whose pending snapshots to accept (default: all pending).
        #[arg(value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        /// Folder of snapshots.
        #[arg(long, default_value = "snapshots", value_name = "DIR")]
        snapshots: PathBuf,
    },
    /// Check a patch's claims: run the scenario on the release before and after the fix.
    #[command(after_help = "\
Each of the scenario's `claims:` gets a verdict:
  FIXED           the leak was seen before the fix and is gone after it
  STILL LEAKING   the leak is still there after the fix
  NOT REPRODUCED  the leak was not seen before the fix either, so the run does not show the fix
  INCONCLUSIVE    a run could not observe it (failed, never reached the phase, traffic encrypted)

--before/--after take a firmware image (it replaces the scenario's initrd, or its disk when it has no \
initrd) or another scenario file of the same firmware (its target is used).

Writes an evidence bundle OUT/verify-<scenario>/ and OUT/verify-<scenario>.tar.gz: both runs' captures, \
reports, console logs and manifests, the scenario, the verdicts, MANIFEST.json with the SHA-256 of every \
file and of both images, telltale's version and the command line, and attestation.dsse.json: an in-toto \
Statement in a DSSE envelope (signed with --sign-key). `telltale verify-bundle` checks it all offline.

Example:
  telltale verify scenarios/cloudsync-v1.yaml \\
      --before target/demo-images/cloudsync-v1.cpio.gz \\
      --after target/demo-images/cloudsync-v2-fix.cpio.gz

Exit codes: 0 every claim FIXED, 1 a claim is STILL LEAKING, 2 invalid input, 3 a run failed to start, \
4 a claim is INCONCLUSIVE or NOT REPRODUCED.")]
    Verify {
        /// The scenario whose claims are checked.
        scenario: PathBuf,
        /// The release before the fix: an image file, or a scenario file.
        #[arg(long, value_name = "IMAGE_OR_SCENARIO")]
        before: PathBuf,
        /// The release after the fix: an image file, or a scenario file.
        #[arg(long, value_name = "IMAGE_OR_SCENARIO")]
        after: PathBuf,
        /// Where the evidence bundle goes.
        #[arg(long, short, default_value = "telltale-out", value_name = "DIR")]
        out: PathBuf,
        /// QEMU accelerator (see `telltale run --help`).
        #[arg(long, value_enum, default_value_t = Accel::Tcg)]
        accel: Accel,
        /// Sign the bundle's attestation with this Ed25519 private key (PKCS#8 PEM, or 32 raw bytes);
        /// without it the attestation is an unsigned DSSE envelope. `telltale keygen` makes a key pair.
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
        #[command(flatten)]
        host: HostFlags,
    },
    /// Check an evidence bundle of `telltale verify`, offline: hashes, attestation, signature, verdicts.
    #[command(after_help = "\
BUNDLE is the folder OUT/verify-<scenario>/ or its .tar.gz. Checked, in order:
  1. every file against MANIFEST.json (SHA-256 and size; an unlisted file is reported too)
  2. attestation.dsse.json: an in-toto Statement v1 in a DSSE envelope, whose subjects are \
every file, MANIFEST.json and both images, and whose predicate carries the verdicts
  3. its Ed25519 signature over DSSE's PAE, with --key (without --key it is not checked)
  4. the verdicts: each capture analysed again with the bundled scenario, identity and \
phase times, judged again, and compared with report.json and verdicts.json

Prints the verdicts, or every difference with the file it is in.

Example:
  telltale verify-bundle verify-cloudsync-v1.tar.gz --key vendor.pub

Exit codes: 0 the bundle holds, 1 it does not (a file changed, the signature does not verify \
with the key, or the re-derived verdicts differ), 2 bad input (not a bundle, unreadable key).")]
    VerifyBundle {
        /// The bundle: a folder or a .tar.gz.
        bundle: PathBuf,
        /// The signer's Ed25519 public key (SPKI PEM, or 32 raw bytes).
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair for signing evidence bundles: PREFIX.key (PKCS#8 PEM) and PREFIX.pub.
    #[command(after_help = "\
The same with OpenSSL:
  openssl genpkey -algorithm ed25519 -out vendor.key
  openssl pkey -in vendor.key -pubout -out vendor.pub

Exit codes: 0 written, 2 a file exists already or cannot be written.")]
    Keygen {
        /// Path prefix of the two files.
        #[arg(value_name = "PREFIX")]
        prefix: PathBuf,
    },
    /// Compare the canary uploads of two runs: what persisted, what disappeared, what appeared.
    #[command(after_help = "\
RUN_A and RUN_B are artifacts folders of `telltale run` (or their report.json files).

Exit codes: 0 run B uploads no canary, 1 run B still (or newly) uploads a canary, 2 unreadable \
report.")]
    Compare {
        /// The earlier run.
        run_a: PathBuf,
        /// The later run.
        run_b: PathBuf,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check scenarios without running them.
    #[command(
        after_help = "Lists, under each valid scenario, everything it would do on or read from the host beyond its own
folder (host commands, ssh options, files outside its folder, a netns program keeping root, a host interface
taken over for a device); each needs
--allow-host (or --allow-host=KIND) here and in run, check and verify.

Exit codes: 0 every scenario is valid, 2 at least one is not (each error is shown with its file, line and column)."
    )]
    Validate {
        /// Scenario files, or folders of them.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        host: HostFlags,
    },
    /// Serve telltale's isolated network to a QEMU you start yourself (until Ctrl-C).
    #[command(after_help = "\
The network gives DHCP (10.77.0.10 and up, gateway and DNS 10.77.0.1), answers every DNS name with \
its own address from 198.18.0.0/15, accepts TCP to any address and port (HTTP gets `200 {}`), refuses \
other UDP with ICMP port unreachable, and forwards nothing anywhere. Every frame goes to the capture.

Example:
  telltale vnet --listen /tmp/tt.sock --pcap run.pcap &
  qemu-system-x86_64 ... -nodefaults \\
    -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/tt.sock \\
    -device virtio-net-pci,netdev=n0
  telltale analyze run.pcap --identity canaries.yaml")]
    Vnet {
        /// Unix socket to listen on for QEMU's `-netdev stream`.
        #[arg(long, value_name = "SOCKET")]
        listen: PathBuf,
        /// Capture file to write (classic pcap, nanosecond timestamps).
        #[arg(long, value_name = "FILE")]
        pcap: PathBuf,
        /// Also write the network's events (leases, DNS answers, requests) as JSON lines.
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// Print nothing while running.
        #[arg(long, short)]
        quiet: bool,
    },
    /// TLS key logs: embed one in a capture.
    Keylog {
        #[command(subcommand)]
        action: KeylogCommand,
    },
}

/// `telltale keylog …`.
#[derive(Subcommand, Debug)]
pub enum KeylogCommand {
    /// Write a pcapng with the key log in a decryption secrets block before the packets (what
    /// `editcap --inject-secrets tls,KEYLOG` writes): one file that Wireshark and `telltale analyze` open decrypted.
    #[command(after_help = "\
A pcap input is converted to pcapng; secrets blocks already in a pcapng input are kept (merged into the one block). \
Exit codes: 0 written, 2 unreadable capture or key log, or a key log without a single key.")]
    Inject {
        /// Capture file: pcap or pcapng, optionally gzip-compressed.
        capture: PathBuf,
        /// Key log (NSS format); repeatable.
        #[arg(required = true, value_name = "KEYLOG")]
        keylog: Vec<PathBuf>,
        /// The pcapng to write.
        #[arg(long, short = 'o', value_name = "OUT")]
        output: PathBuf,
    },
}

/// How `run` and `check` run scenarios.
#[derive(clap::Args, Debug, Clone)]
pub struct RunFlags {
    /// Where the artifacts folders go.
    #[arg(long, short, default_value = "telltale-out", value_name = "DIR")]
    pub out: PathBuf,
    /// Scenarios run at the same time (default: the number of CPUs, at most 4).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// QEMU accelerator. TCG (software) works everywhere; `auto` tries KVM first and falls
    /// back to TCG only when KVM fails to start, so use it only where KVM really runs guests
    /// (on some CI machines /dev/kvm opens but guests never run).
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
    /// Leave `container` targets in place after the run, for debugging (their ids are
    /// printed; remove them with `docker rm -f ID`).
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub host: HostFlags,
}

/// What a scenario may do on the host (none of it by default).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HostFlags {
    /// Allow scenarios to reach the host beyond their own folder: `commands` (`host:` steps, ssh
    /// `options`, `install`), `files` (paths outside the scenario's folder: absolute, climbing with
    /// `..`, or links out; serial ports), `root` (a `netns` program that keeps root), `network` (a host
    /// interface a `device`'s traffic comes in on, which telltale takes over). Without a list: all of
    /// them. Read `telltale validate --allow-host` first: it lists every such place.
    #[arg(
        long,
        value_name = "KINDS",
        num_args = 0..=1,
        require_equals = true,
        value_delimiter = ',',
        default_missing_value = "all",
        value_enum
    )]
    pub allow_host: Option<Vec<HostKind>>,
}

/// A kind of host access (`--allow-host=KIND,…`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum HostKind {
    /// Every kind below.
    All,
    /// Commands on the host: `host:` steps, ssh `options`, `install`.
    Commands,
    /// Host files outside the scenario's folder.
    Files,
    /// `netns` programs that keep root.
    Root,
    /// Host interfaces taken over for a `device`'s traffic.
    Network,
}

impl HostFlags {
    /// The kinds allowed.
    pub fn allow(&self) -> telltale::scenario::HostAllow {
        use telltale::scenario::{HostAccessKind as K, HostAllow};
        let mut a = HostAllow::default();
        for k in self.allow_host.iter().flatten() {
            a = match k {
                HostKind::All => HostAllow::all(),
                HostKind::Commands => a.with(K::Commands),
                HostKind::Files => a.with(K::Files),
                HostKind::Root => a.with(K::Root),
                HostKind::Network => a.with(K::Network),
            };
        }
        a
    }
}

/// Report files for CI and people, written after the runs.
#[derive(clap::Args, Debug, Default)]
pub struct ReportFiles {
    /// JUnit XML: one test case per scenario × claim / policy rule / snapshot (for CI test views).
    #[arg(long, value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
    /// The full structured result (every run's report, and snapshot outcomes) as JSON.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// One self-contained HTML page: verdicts, claims, a timeline of uploads per destination with phases,
    /// the findings with their evidence, policy results and snapshot diffs. Needs no network to view.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Accel {
    /// KVM, falling back to TCG when KVM cannot start.
    Auto,
    /// Software emulation only.
    Tcg,
    /// KVM only.
    Kvm,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Format {
    /// Human-readable summary, findings first.
    Text,
    /// The full report as JSON (a stable, documented contract).
    Json,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Color {
    /// When writing to a terminal and NO_COLOR is not set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Accel {
    /// The accelerators to try, in order.
    pub fn list(self) -> Vec<String> {
        match self {
            Accel::Auto => vec!["kvm".to_string(), "tcg".to_string()],
            Accel::Tcg => vec!["tcg".to_string()],
            Accel::Kvm => vec!["kvm".to_string()],
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The long help of `telltale` and of every subcommand, wrapped by clap at `width` columns.
    fn help_at(width: usize) -> String {
        let mut cmd = Cli::command().term_width(width);
        let mut out = cmd.render_long_help().to_string();
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        for name in names {
            if let Some(sub) = cmd.find_subcommand_mut(&name) {
                let mut sub = sub.clone().term_width(width);
                out.push_str(&format!("\n===== telltale {name} --help\n"));
                out.push_str(&sub.render_long_help().to_string());
            }
        }
        out
    }

    /// Help text is written for clap's wrapping: at every width no line is longer than the terminal, and no
    /// paragraph was wrapped by hand (a hand-wrapped line re-wrapped leaves a short line in mid-paragraph).
    fn check(width: usize) -> String {
        let help = help_at(width);
        // clap does not wrap the usage line.
        for line in help.lines().filter(|l| !l.starts_with("Usage:")) {
            assert!(
                line.chars().count() <= width,
                "longer than {width} columns: {line:?}"
            );
        }
        let lines: Vec<&str> = help.lines().collect();
        for pair in lines.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            // A single word on its own line that would have fit on the line before: a break clap did not make.
            let orphan = !a.trim().is_empty()
                && !a.ends_with(':')
                && !b.trim().is_empty()
                && !b.trim().contains(' ')
                && !b.starts_with(' ')
                && !b.ends_with(':')
                && a.chars().count() + 1 + b.chars().count() <= width;
            assert!(!orphan, "a word left on its own line: {a:?} / {b:?}");
        }
        help
    }

    #[test]
    fn help_at_80_columns() {
        insta::assert_snapshot!(check(80));
    }

    #[test]
    fn help_at_120_columns() {
        insta::assert_snapshot!(check(120));
    }
}
