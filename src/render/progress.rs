//! Progress on standard error while long work runs: a bar for reading a large capture, a spinner (or plain
//! lines when standard error is not a terminal) per scenario run.

use std::io::IsTerminal;

/// A progress bar on standard error for reading a large file, when standard error is a terminal.
pub struct FileProgress {
    bar: Option<indicatif::ProgressBar>,
}

impl FileProgress {
    /// A bar for reading `path` (none when standard error is not a terminal, or the file is small or gzip).
    pub fn new(path: &std::path::Path) -> Self {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let gz = path.extension().is_some_and(|e| e == "gz");
        if !std::io::stderr().is_terminal() || size < (64 << 20) || gz {
            return FileProgress { bar: None };
        }
        let bar = indicatif::ProgressBar::new(size);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} analysing {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        FileProgress { bar: Some(bar) }
    }

    /// `done` bytes read so far.
    pub fn update(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    /// Reading is over: the bar goes.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Progress lines (plain, one per step) or spinners on a terminal.
pub struct RunProgress {
    bars: Option<(
        indicatif::MultiProgress,
        std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
    )>,
}

impl RunProgress {
    /// Spinners for the runs named (plain lines when standard error is not a terminal).
    pub fn new(names: &[String]) -> RunProgress {
        if !std::io::stderr().is_terminal() {
            return RunProgress { bars: None };
        }
        let multi = indicatif::MultiProgress::new();
        let style =
            indicatif::ProgressStyle::with_template("{spinner} {prefix:.bold} [{elapsed}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let mut map = std::collections::HashMap::new();
        for n in names {
            let pb = multi.add(indicatif::ProgressBar::new_spinner());
            pb.set_style(style.clone());
            pb.set_prefix(n.clone());
            pb.set_message("waiting");
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
            map.insert(n.clone(), pb);
        }
        RunProgress {
            bars: Some((multi, std::sync::Mutex::new(map))),
        }
    }
}

impl crate::runner::Progress for RunProgress {
    fn step(&self, scenario: &str, index: usize, total: usize, label: &str) {
        let msg = format!("{}/{total} {label}", index + 1);
        match &self.bars {
            Some((_, map)) => {
                if let Some(pb) = map.lock().ok().and_then(|m| m.get(scenario).cloned()) {
                    pb.set_message(msg);
                }
            }
            None => eprintln!("[{scenario}] {msg}"),
        }
    }

    fn note(&self, scenario: &str, message: &str) {
        match &self.bars {
            Some((_, map)) => {
                if let Some(pb) = map.lock().ok().and_then(|m| m.get(scenario).cloned()) {
                    pb.set_message(message.to_string());
                }
            }
            None => eprintln!("[{scenario}] {message}"),
        }
    }

    fn finished(&self, name: &str, msg: &str) {
        match &self.bars {
            Some((_, map)) => {
                if let Some(pb) = map.lock().ok().and_then(|m| m.get(name).cloned()) {
                    pb.finish_with_message(msg.to_string());
                }
            }
            None => eprintln!("[{name}] {msg}"),
        }
    }
}
