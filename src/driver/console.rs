//! The serial console as text to wait on and a shell to drive.
//!
//! This module owns the console protocol, sans-IO: [`ConsoleBuffer`] holds what the device
//! printed (a window of it; the whole log goes to `console.log`), finds regular expressions
//! in what has not been consumed yet, and [`ShellCall`] frames a command so that its
//! output and exit status can be read back unambiguously from a console that echoes input
//! and interleaves other output:
//!
//! ```text
//! echo __TT_B7__; CMD; echo __TT_E7_$?__
//! ```
//!
//! The markers are matched only at the start of a line, with the status as digits, so the
//! echoed command line (which shows `$?`, not a number) never matches.

use regex::bytes::Regex;

/// How much already-consumed output is kept before the window is trimmed.
const KEEP_CONSUMED: usize = 256 * 1024;

/// The console window: the most output held at once, searched by `wait_for` and shell calls. A
/// target that prints more than this between two matches (a flood) loses the oldest unsearched
/// output from the window (it is still in `console.log`); the bytes are counted
/// ([`ConsoleBuffer::unsearched`]) and named in the tail of every timeout message. Memory stays
/// below twice the window.
pub const CONSOLE_WINDOW: usize = 4 * 1024 * 1024;

/// What the device printed, with a cursor: everything before the cursor has been matched.
#[derive(Debug, Default)]
pub struct ConsoleBuffer {
    buf: Vec<u8>,
    cursor: usize,
    /// Bytes dropped from the front of `buf` so far.
    trimmed: u64,
    /// Bytes dropped before anything searched them ([`CONSOLE_WINDOW`]).
    unsearched: u64,
}

impl ConsoleBuffer {
    /// An empty buffer.
    pub fn new() -> ConsoleBuffer {
        ConsoleBuffer::default()
    }

    /// Appends output.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.cursor > 2 * KEEP_CONSUMED {
            let cut = self.cursor - KEEP_CONSUMED;
            self.buf.drain(..cut);
            self.cursor -= cut;
            self.trimmed += cut as u64;
        }
        if self.buf.len() > 2 * CONSOLE_WINDOW {
            // A flood: keep the newest window, searched or not.
            let cut = self.buf.len() - CONSOLE_WINDOW;
            self.unsearched += cut.saturating_sub(self.cursor) as u64;
            self.buf.drain(..cut);
            self.cursor = self.cursor.saturating_sub(cut);
            self.trimmed += cut as u64;
        }
    }

    /// Bytes the target printed that left the window before `wait_for` or a shell call searched them
    /// ([`CONSOLE_WINDOW`]; they are in `console.log`).
    pub fn unsearched(&self) -> u64 {
        self.unsearched
    }

    /// Total bytes received.
    pub fn total(&self) -> u64 {
        self.trimmed + self.buf.len() as u64
    }

    /// Marks everything received so far as consumed (e.g. before a reboot, so that the
    /// next wait needs fresh output).
    pub fn consume_all(&mut self) {
        self.cursor = self.buf.len();
    }

    /// Finds `re` in the unconsumed output; on a match, consumes up to its end and returns
    /// the matched text.
    pub fn find(&mut self, re: &Regex) -> Option<String> {
        let hay = &self.buf[self.cursor..];
        let m = re.find(hay)?;
        let text = String::from_utf8_lossy(m.as_bytes()).into_owned();
        self.cursor += m.end();
        Some(text)
    }

    /// The last `n` lines received (for error messages), without carriage returns.
    pub fn tail(&self, n: usize) -> String {
        let text = String::from_utf8_lossy(&self.buf).replace('\r', "");
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(n);
        let tail = lines[start..].join("\n");
        if self.unsearched == 0 {
            return tail;
        }
        format!(
            "{tail}\n[telltale] {} bytes of output left the {} MiB console window unsearched (a flood); console.log has them",
            self.unsearched,
            CONSOLE_WINDOW >> 20
        )
    }
}

/// One framed shell command.
#[derive(Debug)]
pub struct ShellCall {
    begin: Regex,
    end: Regex,
    /// The line to write to the console (newline included).
    pub line: String,
}

/// The result of a shell command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutput {
    /// Exit status of the command.
    pub status: i32,
    /// What it printed (carriage returns removed, no trailing newline).
    pub output: String,
}

impl ShellCall {
    /// Frames `cmd` with markers numbered `n` (unique per console).
    pub fn new(cmd: &str, n: u64) -> ShellCall {
        // A shell prompt (`# `, `$ `) may sit in front of a marker on its line.
        let begin =
            Regex::new(&format!(r"(?m)^(?:[#$>%] ?)*__TT_B{n}__\r?\n")).expect("static regex");
        let end =
            Regex::new(&format!(r"(?m)^(?:[#$>%] ?)*__TT_E{n}_(\d+)__\r?$")).expect("static regex");
        ShellCall {
            begin,
            end,
            // The status is kept before the newline that ends whatever the command printed last
            // (output without a trailing newline would put the end marker mid-line).
            line: format!("echo __TT_B{n}__; {cmd}\n__tt=$?; echo; echo __TT_E{n}_${{__tt}}__\n"),
        }
    }

    /// Looks for the completed call in the unconsumed output; consumes it when found.
    pub fn poll(&self, console: &mut ConsoleBuffer) -> Option<ShellOutput> {
        let hay = &console.buf[console.cursor..];
        let b = self.begin.find(hay)?;
        let after = &hay[b.end()..];
        let caps = self.end.captures(after)?;
        let whole = caps.get(0)?;
        let status = std::str::from_utf8(caps.get(1)?.as_bytes())
            .ok()?
            .parse()
            .unwrap_or(-1);
        let raw = &after[..whole.start()];
        let mut text = String::from_utf8_lossy(raw).replace('\r', "");
        // The newline telltale's `echo` adds before the end marker.
        if text.ends_with('\n') {
            text.pop();
        }
        // The console echoes our second line ("echo __TT_E…") before its output: drop it.
        let output: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("echo __TT_E"))
            .collect();
        console.cursor += b.end() + whole.end();
        Some(ShellOutput {
            status,
            output: output.join("\n"),
        })
    }
}

/// Shell commands that write `content` to `path` in the guest, in pieces small enough for
/// a terminal line (base64 through a temporary file, then decoded in place).
pub fn plant_commands(path: &str, content: &[u8], mode: Option<u32>) -> Vec<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    let tmp = "/tmp/.telltale-plant";
    let q = shell_quote(path);
    let mut cmds = vec![format!("mkdir -p \"$(dirname {q})\" && : > {tmp}")];
    for piece in b64.as_bytes().chunks(512) {
        // base64 is [A-Za-z0-9+/=]: safe inside single quotes.
        cmds.push(format!(
            "printf '%s' '{}' >> {tmp}",
            String::from_utf8_lossy(piece)
        ));
    }
    let mut last = format!("base64 -d {tmp} > {q} && rm -f {tmp}");
    if let Some(m) = mode {
        last.push_str(&format!(" && chmod {m:o} {q}"));
    }
    last.push_str(" && sync");
    cmds.push(last);
    cmds
}

/// A console's shell running one command (an `async_trait` method's future).
pub type ShellFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<ShellOutput, super::TargetError>> + Send + 'a>,
>;

/// Writes `content` to `path` through `target`'s console shell, where `shell` runs one command: each of
/// [`plant_commands`] in turn, all within `timeout`. The first command that fails ends it, with its status
/// and output in the error. (QEMU's console and a serial port's both write files this way.)
pub async fn plant_through<T: Send + ?Sized>(
    target: &mut T,
    shell: for<'a> fn(&'a mut T, &'a str, std::time::Duration) -> ShellFuture<'a>,
    path: &str,
    content: &[u8],
    timeout: std::time::Duration,
) -> Result<(), super::TargetError> {
    let deadline = tokio::time::Instant::now() + timeout;
    for cmd in plant_commands(path, content, None) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let out = shell(target, &cmd, left).await?;
        if out.status != 0 {
            return Err(super::TargetError::Guest(format!(
                "writing {path} failed with status {}: {}",
                out.status, out.output
            )));
        }
    }
    Ok(())
}

/// Quotes a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_call_reads_status_and_output_despite_echo_and_noise() {
        let call = ShellCall::new("cat /data/imei", 3);
        let mut c = ConsoleBuffer::new();
        // What a real tty shows: the echo of both lines, noise, then the markers.
        c.push(b"# echo __TT_B3__; cat /data/imei\r\n");
        assert!(call.poll(&mut c).is_none());
        c.push(b"__TT_B3__\r\n356938035643809\r\n[  12.3] random kernel line\r\n# echo __TT_E3_$?__\r\n");
        assert!(
            call.poll(&mut c).is_none(),
            "the echoed `$?` is not a status"
        );
        c.push(b"__TT_E3_0__\r\n# ");
        let out = call.poll(&mut c).unwrap();
        assert_eq!(out.status, 0);
        assert_eq!(out.output, "356938035643809\n[  12.3] random kernel line");
        // Consumed: polling again finds nothing.
        assert!(call.poll(&mut c).is_none());
    }

    #[test]
    fn output_without_a_trailing_newline_still_ends() {
        let call = ShellCall::new("cat /data/imei", 9);
        assert!(
            call.line.contains("echo; echo __TT_E9_${__tt}__"),
            "{}",
            call.line
        );
        let mut c = ConsoleBuffer::default();
        // `cat` of a file with no newline: the marker comes after telltale's own newline.
        c.push(b"__TT_B9__\r\n356938035643809\r\n__TT_E9_0__\r\n");
        let out = call.poll(&mut c).expect("the call ended");
        assert_eq!((out.status, out.output.as_str()), (0, "356938035643809"));
        // With a trailing newline of its own: one newline only is removed.
        let call = ShellCall::new("echo hi", 10);
        c.push(b"__TT_B10__\r\nhi\r\n\r\n__TT_E10_3__\r\n");
        let out = call.poll(&mut c).expect("the call ended");
        assert_eq!((out.status, out.output.as_str()), (3, "hi"));
    }

    #[test]
    fn prompts_without_echo() {
        // What the demo firmware's shell shows: echo off, `# ` before each command's output.
        let call = ShellCall::new("cat /data/phone", 4);
        let mut c = ConsoleBuffer::new();
        c.push(b"# __TT_B4__\r\n+15555550123\r\n# __TT_E4_0__\r\n# ");
        let out = call.poll(&mut c).unwrap();
        assert_eq!(out.status, 0);
        assert_eq!(out.output, "+15555550123");
    }

    #[test]
    fn nonzero_status() {
        let call = ShellCall::new("false", 9);
        let mut c = ConsoleBuffer::new();
        c.push(b"__TT_B9__\n__TT_E9_1__\n");
        assert_eq!(
            call.poll(&mut c),
            Some(ShellOutput {
                status: 1,
                output: String::new()
            })
        );
    }

    #[test]
    fn find_consumes_and_tail_shows_the_end() {
        let mut c = ConsoleBuffer::new();
        c.push(b"booting\r\ntelltale-demo: ready\r\n");
        let re = Regex::new("ready").unwrap();
        assert_eq!(c.find(&re).as_deref(), Some("ready"));
        assert_eq!(c.find(&re), None, "consumed");
        c.push(b"telltale-demo: ready\n");
        assert!(c.find(&re).is_some());
        assert_eq!(c.tail(1), "telltale-demo: ready");
    }

    #[test]
    fn window_is_trimmed_but_totals_are_kept() {
        let mut c = ConsoleBuffer::new();
        let line = vec![b'x'; 1024];
        for _ in 0..2000 {
            c.push(&line);
            c.consume_all();
        }
        assert_eq!(c.total(), 2000 * 1024);
        assert!(c.buf.len() <= 2 * KEEP_CONSUMED + 1024);
    }

    #[test]
    fn plant_commands_round_trip_through_a_real_shell() {
        let dir = std::env::temp_dir().join(format!("tt-plant-{}", std::process::id()));
        let target = dir.join("sub dir/it's.txt");
        let content: Vec<u8> = (0..3000u32).map(|i| (i % 256) as u8).collect();
        let cmds = plant_commands(target.to_str().unwrap(), &content, Some(0o600));
        assert!(
            cmds.iter().all(|c| c.len() < 1024),
            "every line fits a terminal"
        );
        for c in &cmds {
            let st = std::process::Command::new("sh")
                .arg("-c")
                .arg(c)
                .status()
                .unwrap();
            assert!(st.success(), "{c}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), content);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_flood_that_never_matches_cannot_grow_the_window() {
        // 256 MiB of output that no wait matches, then the line that is waited for.
        let mut c = ConsoleBuffer::new();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..4096 {
            c.push(&chunk);
            assert!(c.buf.len() <= 2 * CONSOLE_WINDOW + chunk.len());
        }
        assert!(
            c.buf.capacity() <= 4 * CONSOLE_WINDOW,
            "{}",
            c.buf.capacity()
        );
        c.push(b"\nagent: ready\n");
        assert_eq!(c.total(), 4096 * 64 * 1024 + 14);
        // Everything past the window is counted, and a wait still sees the newest output.
        let kept = c.buf.len() as u64;
        assert_eq!(c.unsearched(), c.total() - kept);
        assert!(c.unsearched() > 250 << 20);
        assert_eq!(
            c.find(&Regex::new("agent: ready").unwrap()).as_deref(),
            Some("agent: ready")
        );
        let tail = c.tail(2);
        assert!(
            tail.contains("left the 4 MiB console window unsearched"),
            "{tail}"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
