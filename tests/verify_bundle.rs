//! `telltale verify-bundle`: the evidence bundle of `telltale verify` checked by a third party with the
//! bundle alone. The bundles come from `verify` over two captures (`kind: capture`) the tests write with
//! the project's own `synth` module, so nothing runs; the scenario names an identity file, which the bundle
//! must carry.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use common::runs::*;
use serde_json::Value;
use telltale::attest::{Envelope, Statement};
use telltale::synth::Synth;

const IMEI: &str = "356938035643809";
const B64_IMEI: &str = "MzU2OTM4MDM1NjQzODA5";

/// An upload at once, 300 ms of unrelated datagrams, then a second upload with `later` as its body.
fn capture(path: &Path, later: &str) {
    let mut s = Synth::ethernet();
    common::upload(&mut s, 40000, "api.vendor.example", &format!("imei={IMEI}"));
    for i in 0..300u16 {
        s.udp(
            "10.77.0.10:5000".parse().unwrap(),
            "10.77.0.1:9".parse().unwrap(),
            &i.to_be_bytes(),
        );
    }
    common::upload(&mut s, 40001, "sync.vendor.example", later);
    std::fs::write(path, s.finish()).unwrap();
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// Captures, a scenario with an identity file, a key pair, and `verify` signed with it: the bundle folder.
struct Fixture {
    dir: PathBuf,
    bundle: PathBuf,
    archive: PathBuf,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = workdir(tag);
        capture(&dir.join("before.pcap"), &format!("id={B64_IMEI}"));
        capture(&dir.join("after.pcap"), "id=none");
        std::fs::write(dir.join("ids.yaml"), format!("imei: \"{IMEI}\"\n")).unwrap();
        std::fs::write(
            dir.join("audit.yaml"),
            "name: audit\nrelease: fw-2\ntarget:\n  kind: capture\n  file: before.pcap\n  phases:\n    - {name: consent_declined, at: 100ms}\nidentity: ids.yaml\npolicy:\n  forbid:\n    - canaries: all\n      phases: [consent_declined]\nclaims:\n  - id: FW-2-001\n    says: the IMEI is no longer sent once consent is declined\n    forbid: {canaries: [imei], phases: [consent_declined]}\n",
        )
        .unwrap();
        for k in ["vendor", "other"] {
            let o = run(&["keygen".as_ref(), dir.join(k).as_os_str()]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        }
        let f = Fixture {
            bundle: dir.join("out/verify-audit"),
            archive: dir.join("out/verify-audit.tar.gz"),
            dir,
        };
        let o = f.verify();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(
            text(&o).contains("attestation: signed with Ed25519 key"),
            "{}",
            text(&o)
        );
        f
    }

    fn verify(&self) -> Output {
        let d = &self.dir;
        run(&[
            "verify".as_ref(),
            d.join("audit.yaml").as_os_str(),
            "--before".as_ref(),
            d.join("before.pcap").as_os_str(),
            "--after".as_ref(),
            d.join("after.pcap").as_os_str(),
            "--out".as_ref(),
            d.join("out").as_os_str(),
            "--sign-key".as_ref(),
            d.join("vendor.key").as_os_str(),
        ])
    }

    /// A fresh copy of the bundle folder to tamper with.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.dir.join(name);
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(&self.bundle, &to);
        to
    }

    fn check(&self, bundle: &Path, key: &str) -> (Option<i32>, String) {
        let o = run(&[
            "verify-bundle".as_ref(),
            bundle.as_os_str(),
            "--key".as_ref(),
            self.dir.join(key).as_os_str(),
        ]);
        (o.status.code(), text(&o))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let at = at.min(b.len() - 1);
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

fn envelope(bundle: &Path) -> Envelope {
    Envelope::parse(&std::fs::read(bundle.join("attestation.dsse.json")).unwrap()).unwrap()
}

#[test]
fn a_bundle_verifies_offline_and_is_reproducible() {
    let f = Fixture::new("bundle-holds");

    // The folder and the archive hold, with the signer's key; the verdict is re-derived and printed.
    for b in [&f.bundle, &f.archive] {
        let (code, out) = f.check(b, "vendor.pub");
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("BUNDLE HOLDS"), "{out}");
        assert!(out.contains("signature: verified with key"), "{out}");
        assert!(out.contains("FIXED           FW-2-001"), "{out}");
    }
    // Without a key the signature is not checked, and that is said.
    let o = run(&["verify-bundle".as_ref(), f.bundle.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("not checked (give --key PUB)"),
        "{}",
        text(&o)
    );

    // Self-contained: the identity file is in the bundle.
    assert_eq!(
        std::fs::read_to_string(f.bundle.join("identity.yaml")).unwrap(),
        format!("imei: \"{IMEI}\"\n")
    );
    // The envelope: DSSE's JSON fields, an in-toto Statement v1 naming the images, the scenario, the
    // identity, the captures and the manifest by SHA-256, and the verdicts in its predicate.
    let raw: Value =
        serde_json::from_slice(&std::fs::read(f.bundle.join("attestation.dsse.json")).unwrap())
            .unwrap();
    assert_eq!(raw["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(raw["signatures"].as_array().unwrap().len(), 1);
    let body = base64::engine::general_purpose::STANDARD
        .decode(raw["payload"].as_str().unwrap())
        .unwrap();
    let st: Statement = serde_json::from_slice(&body).unwrap();
    assert_eq!(st.type_, "https://in-toto.io/Statement/v1");
    let names: Vec<&str> = st.subject.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "image-before:before.pcap",
        "image-after:after.pcap",
        "scenario.yaml",
        "identity.yaml",
        "before/capture.pcap",
        "after/capture.pcap",
        "before/report.json",
        "verdicts.json",
        "MANIFEST.json",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let cap = st
        .subject
        .iter()
        .find(|s| s.name == "after/capture.pcap")
        .unwrap();
    assert_eq!(
        cap.sha256_hex().unwrap(),
        telltale::record::hash_file(&f.dir.join("after.pcap"))
            .unwrap()
            .sha256
    );
    assert_eq!(st.predicate["claims"][0]["verdict"], "FIXED");
    assert_eq!(st.predicate["claims"][0]["id"], "FW-2-001");

    // The same runs give the same bundle, byte for byte (signature included: Ed25519 is deterministic).
    let first = std::fs::read(&f.archive).unwrap();
    let o = f.verify();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        std::fs::read(&f.archive).unwrap() == first,
        "the second bundle differs from the first"
    );
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn one_byte_changed_anywhere_is_found_and_the_file_named() {
    let f = Fixture::new("bundle-tamper");

    // In a capture: its hash, and the statement's subject, name it.
    let b = f.copy("capture");
    flip_byte(&b.join("after/capture.pcap"), 2000);
    let (code, out) = f.check(&b, "vendor.pub");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("BUNDLE DOES NOT HOLD"), "{out}");
    assert!(out.contains("after/capture.pcap: SHA-256"), "{out}");
    // No verdict is shown for evidence that does not hold.
    assert!(!out.contains("FIXED"), "{out}");

    // In a report.
    let b = f.copy("report");
    let p = b.join("before/report.json");
    let t = std::fs::read_to_string(&p)
        .unwrap()
        .replacen("\"count\": 1", "\"count\": 2", 1);
    std::fs::write(&p, t).unwrap();
    let (code, out) = f.check(&b, "vendor.pub");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("before/report.json: SHA-256"), "{out}");

    // In the statement: one byte of the payload (the claim's verdict), so the signature fails too.
    let b = f.copy("statement");
    let mut e = envelope(&b);
    let body = String::from_utf8(e.body().unwrap()).unwrap();
    assert!(body.contains("\"FIXED\""));
    let body = body.replacen("\"FIXED\"", "\"FIXEd\"", 1);
    e.payload = base64::engine::general_purpose::STANDARD.encode(body);
    std::fs::write(b.join("attestation.dsse.json"), e.to_json()).unwrap();
    let (code, out) = f.check(&b, "vendor.pub");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("attestation.dsse.json: "), "{out}");
    assert!(out.contains("no signature verifies"), "{out}");

    // In the signature.
    let b = f.copy("signature");
    let mut e = envelope(&b);
    let mut sig = base64::engine::general_purpose::STANDARD
        .decode(&e.signatures[0].sig)
        .unwrap();
    sig[10] ^= 0x01;
    e.signatures[0].sig = base64::engine::general_purpose::STANDARD.encode(sig);
    std::fs::write(b.join("attestation.dsse.json"), e.to_json()).unwrap();
    let (code, out) = f.check(&b, "vendor.pub");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("attestation.dsse.json: no signature verifies"),
        "{out}"
    );

    // A file slipped in is named too.
    let b = f.copy("extra");
    std::fs::write(b.join("after/notes.txt"), "trust me").unwrap();
    let (code, out) = f.check(&b, "vendor.pub");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("after/notes.txt: is in the bundle but not in MANIFEST.json"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&f.dir);
}

/// Without a signature anyone can recompute every hash; the verdicts re-derived from the captures still
/// catch a report or a verdict that the captures do not support.
#[test]
fn rehashed_edits_are_caught_by_re_deriving_the_verdicts() {
    let f = Fixture::new("bundle-rederive");
    let b = f.copy("rehashed");
    // Claim the leak was never seen before the fix: drop the claim's violations from the report...
    let p = b.join("before/report.json");
    let mut r: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    assert!(!r["judgement"]["claims"][0]["violations"]
        .as_array()
        .unwrap()
        .is_empty());
    r["judgement"]["claims"][0]["violations"] = Value::Array(Vec::new());
    std::fs::write(&p, serde_json::to_string_pretty(&r).unwrap() + "\n").unwrap();
    // ...and make MANIFEST.json and an unsigned statement agree with the edited file.
    let sha = telltale::record::hash_file(&p).unwrap();
    let mp = b.join("MANIFEST.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    for file in m["files"].as_array_mut().unwrap() {
        if file["path"] == "before/report.json" {
            file["sha256"] = sha.sha256.clone().into();
            file["bytes"] = sha.bytes.into();
        }
    }
    std::fs::write(&mp, serde_json::to_string_pretty(&m).unwrap() + "\n").unwrap();
    let msha = telltale::record::hash_file(&mp).unwrap().sha256;
    let mut st = envelope(&b).statement().unwrap();
    for s in &mut st.subject {
        match s.name.as_str() {
            "before/report.json" => *s = telltale::attest::Subject::sha256(&s.name, &sha.sha256),
            "MANIFEST.json" => *s = telltale::attest::Subject::sha256(&s.name, &msha),
            _ => {}
        }
    }
    std::fs::write(
        b.join("attestation.dsse.json"),
        Envelope::of_statement(&st, None).to_json(),
    )
    .unwrap();

    let o = run(&["verify-bundle".as_ref(), b.as_os_str()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("before/report.json: judgement.claims[0].violations has 0 entries in the file, 1 re-derived (re-derived from before/capture.pcap)"),
        "{out}"
    );
    // The rewritten, unsigned statement fails the vendor's key.
    let (code, out) = f.check(&b, "vendor.pub");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("attestation.dsse.json: is not signed, but a key was given"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn another_key_does_not_verify_and_bad_input_is_exit_2() {
    let f = Fixture::new("bundle-keys");
    let (code, out) = f.check(&f.archive, "other.pub");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("DOES NOT VERIFY with the key given"), "{out}");
    assert!(
        out.contains("attestation.dsse.json: no signature verifies"),
        "{out}"
    );

    // Not a bundle, a missing one, a private key given as the public one, a bad signing key: exit 2.
    let (code, out) = f.check(&f.dir.join("before.pcap"), "vendor.pub");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("is not an evidence bundle"), "{out}");
    let (code, out) = f.check(&f.dir.join("nothing-here"), "vendor.pub");
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = f.check(&f.bundle, "vendor.key");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("not an Ed25519 public key"), "{out}");
    std::fs::write(f.dir.join("junk.key"), "junk").unwrap();
    let d = &f.dir;
    let o = run(&[
        "verify".as_ref(),
        d.join("audit.yaml").as_os_str(),
        "--before".as_ref(),
        d.join("before.pcap").as_os_str(),
        "--after".as_ref(),
        d.join("after.pcap").as_os_str(),
        "--out".as_ref(),
        d.join("out2").as_os_str(),
        "--sign-key".as_ref(),
        d.join("junk.key").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!d.join("out2").exists(), "nothing runs with a bad key");
    // keygen never overwrites.
    let o = run(&["keygen".as_ref(), d.join("vendor").as_os_str()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&f.dir);
}

/// An identity generated from a seed (with a given value) lives in the scenario: the bundle needs no
/// identity file, and verify-bundle regenerates the same canaries.
#[test]
fn a_seeded_inline_identity_needs_no_identity_file() {
    let dir = workdir("bundle-seeded");
    capture(&dir.join("before.pcap"), &format!("id={B64_IMEI}"));
    capture(&dir.join("after.pcap"), "id=none");
    std::fs::write(
        dir.join("audit.yaml"),
        format!("name: audit\ntarget:\n  kind: capture\n  file: before.pcap\n  phases:\n    - {{name: consent_declined, at: 100ms}}\nidentity:\n  seed: 2014\n  generate: [phone, email]\n  values: {{imei: \"{IMEI}\"}}\nclaims:\n  - id: FW-2-001\n    says: the IMEI is no longer sent once consent is declined\n    forbid: {{canaries: [imei], phases: [consent_declined]}}\n"),
    )
    .unwrap();
    let o = run(&[
        "verify".as_ref(),
        dir.join("audit.yaml").as_os_str(),
        "--before".as_ref(),
        dir.join("before.pcap").as_os_str(),
        "--after".as_ref(),
        dir.join("after.pcap").as_os_str(),
        "--out".as_ref(),
        dir.join("out").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bundle = dir.join("out/verify-audit");
    assert!(!bundle.join("identity.yaml").exists());
    let r: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("before/report.json")).unwrap()).unwrap();
    // The generated canaries are searched for too, so a different seed would change the report.
    assert!(
        r["analysis"]["canaries"].as_array().unwrap().len() > 1,
        "{}",
        r["analysis"]["canaries"]
    );
    let o = run(&[
        "verify-bundle".as_ref(),
        dir.join("out/verify-audit.tar.gz").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("FIXED           FW-2-001"),
        "{}",
        text(&o)
    );

    // The seed edited in the bundled scenario (and rehashed): other canaries, another report.
    let s = bundle.join("scenario.yaml");
    let t = std::fs::read_to_string(&s)
        .unwrap()
        .replace("seed: 2014", "seed: 2015");
    std::fs::write(&s, t).unwrap();
    let o = run(&["verify-bundle".as_ref(), bundle.as_os_str()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("scenario.yaml: SHA-256"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
