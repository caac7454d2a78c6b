//! A console that a reader task fills while the runner waits on it.
//!
//! This module owns the one way every target kind waits for output: a [`ConsoleBuffer`]
//! (the sans-IO window of what the target printed) shared with the task that reads the
//! target's console, log or output, plus a wake-up for each push. [`LiveConsole::next`] is
//! one round of waiting; the drivers loop on it and check in between that their target is
//! still there, each in its own way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::console::ConsoleBuffer;
use super::TargetError;

/// How long one round waits at most: a reader that ended wakes waiters only once, so the
/// target's state is looked at again at least this often.
const ROUND: Duration = Duration::from_millis(500);

/// What one round of waiting gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited<T> {
    /// The awaited output.
    Found(T),
    /// New output, or a round passed: check the target, then wait again.
    Again,
    /// The deadline passed.
    Expired,
}

/// The console buffer and its wake-up, cheap to clone into the reader task.
#[derive(Debug, Clone, Default)]
pub struct LiveConsole {
    buffer: Arc<Mutex<ConsoleBuffer>>,
    notify: Arc<Notify>,
}

impl LiveConsole {
    /// An empty console.
    pub fn new() -> LiveConsole {
        LiveConsole::default()
    }

    /// Appends output and wakes the waiters.
    pub fn push(&self, data: &[u8]) {
        if let Ok(mut c) = self.buffer.lock() {
            c.push(data);
        }
        self.notify.notify_waiters();
    }

    /// Wakes the waiters without output (a reader ended).
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// Marks everything printed so far as seen.
    pub fn consume_all(&self) {
        if let Ok(mut c) = self.buffer.lock() {
            c.consume_all();
        }
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> String {
        self.buffer.lock().map(|c| c.tail(n)).unwrap_or_default()
    }

    /// Looks for the awaited output now, without waiting.
    pub fn poll<T>(&self, mut find: impl FnMut(&mut ConsoleBuffer) -> Option<T>) -> Option<T> {
        self.buffer.lock().ok().and_then(|mut c| find(&mut c))
    }

    /// One round: `find` on what is there; if it is not there, wait for new output, at most
    /// one round and never past `deadline`.
    pub async fn next<T>(
        &self,
        deadline: Instant,
        find: impl FnMut(&mut ConsoleBuffer) -> Option<T>,
    ) -> Waited<T> {
        let notified = self.notify.notified();
        if let Some(t) = self.poll(find) {
            return Waited::Found(t);
        }
        if Instant::now() >= deadline {
            return Waited::Expired;
        }
        let _ = tokio::time::timeout_at((Instant::now() + ROUND).min(deadline), notified).await;
        Waited::Again
    }

    /// Waits until `find` finds the output, checking `alive` between rounds; on timeout the
    /// error says `what` was awaited, with the console's last lines.
    pub async fn wait<T>(
        &self,
        timeout: Duration,
        what: impl FnOnce() -> String,
        mut find: impl FnMut(&mut ConsoleBuffer) -> Option<T>,
        mut alive: impl FnMut() -> Result<(), TargetError>,
    ) -> Result<T, TargetError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline, &mut find).await {
                Waited::Found(t) => return Ok(t),
                Waited::Again => alive()?,
                Waited::Expired => {
                    return Err(TargetError::Timeout {
                        what: what(),
                        after: timeout,
                        tail: self.tail(15),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::bytes::Regex;

    #[tokio::test]
    async fn output_pushed_later_is_found() {
        let c = LiveConsole::new();
        let c2 = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.push(b"booting\nready\n");
        });
        let re = Regex::new("ready").unwrap();
        let m = c
            .wait(
                Duration::from_secs(5),
                String::new,
                |b| b.find(&re),
                || Ok(()),
            )
            .await
            .unwrap();
        assert_eq!(m, "ready");
    }

    #[tokio::test]
    async fn a_timeout_names_what_was_awaited_with_the_tail() {
        let c = LiveConsole::new();
        c.push(b"last words\n");
        let re = Regex::new("never").unwrap();
        let e = c
            .wait(
                Duration::from_millis(100),
                || "the line".to_string(),
                |b| b.find(&re),
                || Ok(()),
            )
            .await
            .unwrap_err();
        let t = e.to_string();
        assert!(t.contains("the line") && t.contains("last words"), "{t}");
    }

    #[tokio::test]
    async fn a_dead_target_ends_the_wait_early() {
        let c = LiveConsole::new();
        let re = Regex::new("never").unwrap();
        let started = std::time::Instant::now();
        let e = c
            .wait(
                Duration::from_secs(30),
                String::new,
                |b| b.find(&re),
                || Err(TargetError::Guest("gone".into())),
            )
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "gone");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
