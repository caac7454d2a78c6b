//! Snapshot files: where a scenario's snapshot lives, writing the pending `.snap.new` beside it,
//! accepting and rejecting it, listing pending snapshots. The only part of [`super`] that does
//! I/O; each function is one file operation.
//!
//! Layout (as insta's): `snapshots/<scenario>.snap`, or `snapshots/<scenario>@<release>.snap`
//! when the scenario names a release; a new, not yet accepted snapshot is the same path with
//! `.new` appended (`….snap.new`), which is also where `cargo insta review` looks for it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::text::{SnapError, SnapFile};
use crate::record::ScenarioInfo;

/// A snapshot file that cannot be used.
#[derive(Debug, Error)]
pub enum FileError {
    /// Reading, writing, renaming or listing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file is not a snapshot file.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: SnapError,
    },
    /// `accept` or `reject` found no pending `.snap.new`.
    #[error("{}: no pending snapshot to accept or reject", path.display())]
    NoPending {
        /// The `.snap.new` path looked for.
        path: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `dir/<scenario>.snap`, or `dir/<scenario>@<release>.snap` when the scenario names a release.
/// Characters other than ASCII letters, digits, `.`, `_` and `-` become `_` (a name never
/// leaves `dir` or hides as a dot file).
pub fn snapshot_path(dir: &Path, scenario: &ScenarioInfo) -> PathBuf {
    let mut name = file_part(&scenario.name);
    if let Some(release) = &scenario.release {
        name.push('@');
        name.push_str(&file_part(release));
    }
    name.push_str(".snap");
    dir.join(name)
}

fn file_part(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// The pending file of a snapshot: `x.snap` → `x.snap.new` (a path already ending in `.new` is
/// returned as it is).
pub fn pending_path(snap: &Path) -> PathBuf {
    if is_pending(snap) {
        return snap.to_path_buf();
    }
    let mut s: OsString = snap.as_os_str().to_os_string();
    s.push(".new");
    PathBuf::from(s)
}

/// The accepted file of a pending one: `x.snap.new` → `x.snap` (other paths unchanged).
fn accepted_path(path: &Path) -> PathBuf {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(name) if name.ends_with(".snap.new") => {
            path.with_file_name(&name[..name.len().saturating_sub(4)])
        }
        _ => path.to_path_buf(),
    }
}

fn is_pending(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".snap.new"))
}

/// Reads the accepted snapshot; `None` when there is none yet.
pub fn read_accepted(snap: &Path) -> Result<Option<SnapFile>, FileError> {
    let text = match std::fs::read_to_string(snap) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(snap)(e)),
    };
    SnapFile::parse(&text)
        .map(Some)
        .map_err(|source| FileError::Parse {
            path: snap.to_path_buf(),
            source,
        })
}

/// Writes `text` (a rendered `.snap`) as the pending `.snap.new` beside `snap`, creating the
/// folder when needed; returns the pending path.
pub fn write_pending(snap: &Path, text: &str) -> Result<PathBuf, FileError> {
    let path = pending_path(snap);
    write(&path, text)?;
    Ok(path)
}

/// Writes `text` as the accepted snapshot itself (for `--accept` style runs), creating the
/// folder when needed, and removes a pending `.snap.new` left beside it.
pub fn write_accepted(snap: &Path, text: &str) -> Result<(), FileError> {
    let snap = accepted_path(snap);
    write(&snap, text)?;
    remove_if_present(&pending_path(&snap))
}

fn write(path: &Path, text: &str) -> Result<(), FileError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    std::fs::write(path, text).map_err(io_error(path))
}

fn remove_if_present(path: &Path) -> Result<(), FileError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Accepts a pending snapshot: renames `x.snap.new` over `x.snap`. `path` may name either file.
/// Returns the accepted path.
pub fn accept(path: &Path) -> Result<PathBuf, FileError> {
    let pending = pending_path(path);
    let accepted = accepted_path(&pending);
    match std::fs::rename(&pending, &accepted) {
        Ok(()) => Ok(accepted),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(FileError::NoPending { path: pending })
        }
        Err(e) => Err(io_error(&pending)(e)),
    }
}

/// Rejects a pending snapshot: removes `x.snap.new`. `path` may name either file.
pub fn reject(path: &Path) -> Result<(), FileError> {
    let pending = pending_path(path);
    match std::fs::remove_file(&pending) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(FileError::NoPending { path: pending })
        }
        Err(e) => Err(io_error(&pending)(e)),
    }
}

/// The pending `*.snap.new` files directly in `dir`, sorted; none when `dir` does not exist.
pub fn pending(dir: &Path) -> Result<Vec<PathBuf>, FileError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        if is_pending(&path) && entry.file_type().map_err(io_error(&path))?.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, release: Option<&str>) -> ScenarioInfo {
        ScenarioInfo {
            name: name.into(),
            release: release.map(str::to_string),
            file: "s.yaml".into(),
        }
    }

    #[test]
    fn paths_follow_scenario_and_release() {
        let dir = Path::new("snapshots");
        assert_eq!(
            snapshot_path(dir, &info("cloudsync-v1", None)),
            Path::new("snapshots/cloudsync-v1.snap")
        );
        assert_eq!(
            snapshot_path(dir, &info("cloudsync-v2-fix", Some("v2-fix"))),
            Path::new("snapshots/cloudsync-v2-fix@v2-fix.snap")
        );
        assert_eq!(
            snapshot_path(dir, &info("../etc/x y", Some("1.0/rc"))),
            Path::new("snapshots/_.._etc_x_y@1.0_rc.snap")
        );
        assert_eq!(
            snapshot_path(dir, &info("", None)),
            Path::new("snapshots/_.snap")
        );
        let snap = Path::new("snapshots/a@v1.2.snap");
        assert_eq!(pending_path(snap), Path::new("snapshots/a@v1.2.snap.new"));
        assert_eq!(pending_path(&pending_path(snap)), pending_path(snap));
        assert_eq!(accepted_path(&pending_path(snap)), snap);
    }

    #[test]
    fn write_accept_reject_and_list_pending() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("snapshots");
        assert!(
            pending(&dir).unwrap().is_empty(),
            "missing folder: none pending"
        );
        let snap = snapshot_path(&dir, &info("b", Some("v1")));
        let other = snapshot_path(&dir, &info("a", None));
        let text = "---\nsource: s.yaml\nexpression: x\n---\nphase boot\n";
        assert!(read_accepted(&snap).unwrap().is_none());

        let p = write_pending(&snap, text).unwrap();
        assert_eq!(p, dir.join("b@v1.snap.new"));
        write_pending(&other, text).unwrap();
        std::fs::write(dir.join("c.snap"), text).unwrap();
        std::fs::create_dir(dir.join("d.snap.new")).unwrap();
        assert_eq!(
            pending(&dir).unwrap(),
            vec![dir.join("a.snap.new"), dir.join("b@v1.snap.new")]
        );

        assert_eq!(accept(&snap).unwrap(), snap);
        assert!(!p.exists());
        let f = read_accepted(&snap).unwrap().unwrap();
        assert_eq!(f.body, "phase boot");
        assert!(matches!(accept(&snap), Err(FileError::NoPending { .. })));

        reject(&pending_path(&other)).unwrap();
        assert!(!pending_path(&other).exists());
        assert!(matches!(reject(&other), Err(FileError::NoPending { .. })));
        assert_eq!(pending(&dir).unwrap(), Vec::<PathBuf>::new());

        // Accepting directly replaces the file and clears a stale pending one.
        write_pending(&snap, "stale").unwrap();
        write_accepted(&snap, &text.replace("boot", "setup")).unwrap();
        assert!(!pending_path(&snap).exists());
        assert_eq!(read_accepted(&snap).unwrap().unwrap().body, "phase setup");

        std::fs::write(&snap, "not a snapshot").unwrap();
        let e = read_accepted(&snap).unwrap_err();
        assert!(matches!(e, FileError::Parse { .. }));
        assert!(e.to_string().contains("b@v1.snap"), "{e}");
    }
}
