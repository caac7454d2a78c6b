//! The HTML report: one self-contained page a person opens instead of reading logs.
//!
//! This module owns the page that shows one or more runs ([`StoredRun`]s read back from
//! `report.json`): per run a header with the verdict, the patch claims in plain words, a
//! timeline of every upload (inline SVG: phases as bands, one row per destination, uploads
//! that carried a canary in red), the canaries found, the policy rules and, when given, the
//! snapshot diff. It reads the run's typed [`Judgement`]; the snapshot diff's line
//! classification ([`diff_line_kind`]) is shared with the JUnit writer.
//!
//! The page needs no network: CSS and SVG are inline, there are no external fonts, images
//! or scripts (and no script at all). Everything taken from a report is HTML-escaped,
//! control and bidirectional-override characters are shown as escapes, and every list is
//! capped (the page says when something was left out), so a hostile capture can neither
//! inject markup nor blow the page up. The same input always gives the same bytes.
//!
//! The markup is written with `maud`'s `html!` templates: they are checked when telltale
//! compiles (an unclosed element is a build error), they escape every spliced value by
//! default, there are no template files to ship or find at run time, and maud brings no
//! runtime dependency tree (its macros run at build time). Text from a report is spliced
//! through [`Text`], which escapes more strictly still (quotes, control and bidi
//! characters) and caps the length.

use std::collections::{BTreeMap, BTreeSet};

use maud::{html, Markup, PreEscaped, Render, DOCTYPE};

use crate::record::{ClaimResult, ClaimStatus, Judgement, RuleStatus, Violation};
use crate::record::{StoredRun, Verdict};
use crate::report::{Direction, Finding};

/// Destinations (timeline rows) drawn per run; the rest are counted in a note.
pub const MAX_ROWS: usize = 40;
/// Upload marks drawn per destination row; uploads with canaries are kept first.
pub const MAX_MARKS_PER_ROW: usize = 300;
/// Rows of the canary table per run.
pub const MAX_FINDING_ROWS: usize = 500;
/// Violations listed per claim or rule.
pub const MAX_VIOLATIONS_SHOWN: usize = 50;
/// Lines of the snapshot diff shown.
pub const MAX_DIFF_LINES: usize = 2000;
/// Characters shown of any one text taken from a report (excerpts, names, messages).
pub const MAX_TEXT_CHARS: usize = 600;

/// One run to show.
#[derive(Debug, Clone)]
pub struct HtmlRun<'a> {
    /// The run, as read back from `report.json`.
    pub run: &'a StoredRun,
    /// The snapshot comparison as diff text (`+`/`-` lines), when there was one.
    pub snapshot_diff: Option<String>,
    /// The snapshot gate's result in words (`check`: every run, unchanged ones included), e.g. "PASSES: the
    /// same privacy behaviour as the accepted snapshot snapshots/x.snap".
    pub snapshot_gate: Option<String>,
    /// Heading of the run's section (e.g. the scenario name and release).
    pub title: String,
}

/// The verdict as a word.
pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Inconclusive => "INCONCLUSIVE",
        Verdict::Error => "ERROR",
        Verdict::Interrupted => "INTERRUPTED",
    }
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Error => "error",
        Verdict::Interrupted => "interrupted",
    }
}

// ---------------------------------------------------------------------------------------------
// Escaping and formatting

/// Text taken from a report, spliced into a template: HTML-escaped (valid in text and in
/// quoted attributes, `'` included), control and bidirectional-override characters shown as
/// escapes, at most `max` characters (the rest counted).
#[derive(Debug, Clone, Copy)]
struct Text<'a> {
    s: &'a str,
    max: usize,
}

/// `s` as [`Text`], cut at [`MAX_TEXT_CHARS`].
fn text(s: &str) -> Text<'_> {
    Text {
        s,
        max: MAX_TEXT_CHARS,
    }
}

/// `s` as [`Text`], cut at `max` characters.
fn text_max(s: &str, max: usize) -> Text<'_> {
    Text { s, max }
}

impl Render for Text<'_> {
    fn render_to(&self, out: &mut String) {
        esc_max(out, self.s, self.max);
    }
}

/// Appends `s` HTML-escaped (valid in text and in quoted attributes), at most `max` characters.
fn esc_max(out: &mut String, s: &str, max: usize) {
    use std::fmt::Write as _;
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            let rest = s.chars().count().saturating_sub(max);
            let _ = write!(out, "… ({rest} more characters)");
            return;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A coordinate with one decimal (`12.5`).
fn f1(x: f64) -> String {
    format!("{x:.1}")
}

/// A coordinate without decimals (`1160`).
fn f0(x: f64) -> String {
    format!("{x:.0}")
}

/// Seconds with a precision that suits the size.
fn secs(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 600.0 {
        format!("{s:.1} s")
    } else {
        let total = ns / 1_000_000_000;
        format!("{} min {:02} s", total / 60, total % 60)
    }
}

use super::summary::bytes;

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `2026-11-21 19:50:19 UTC` for ns since the epoch (the calendar is the `time` crate's).
fn utc(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{ns} ns after 1970"),
    }
}

// ---------------------------------------------------------------------------------------------
// The page

const CSS: &str = r#"
:root { --red:#c62828; --red-bg:#fdecea; --green:#2e7d32; --green-bg:#e8f5e9; --amber:#b26a00;
  --amber-bg:#fff4e0; --grey:#5f6368; --line:#dde1e6; --ink:#1f2328; --muted:#59636e; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 22px; margin: 4px 0 14px; }
h1 small { color: var(--muted); font-weight: normal; font-size: 14px; }
h2 { font-size: 20px; margin: 0; }
h3 { font-size: 15px; margin: 22px 0 8px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
code, pre { font-family: "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.run { background: #fff; border: 1px solid var(--line); border-radius: 10px; margin: 0 0 26px;
  padding: 18px 22px 22px; box-shadow: 0 1px 2px rgba(0,0,0,.05); }
.run.v-fail { border-top: 6px solid var(--red); }
.run.v-pass { border-top: 6px solid var(--green); }
.run.v-error { border-top: 6px solid var(--amber); }
.run.v-inconclusive { border-top: 6px solid var(--amber); }
.run.v-interrupted { border-top: 6px solid var(--grey); }
.head { display: flex; gap: 16px; align-items: center; }
.head > div { flex: 1; min-width: 0; }
.badge { display: inline-block; border-radius: 6px; padding: 3px 10px; font-weight: 700;
  letter-spacing: .05em; color: #fff; font-size: 14px; }
.badge.big { font-size: 20px; padding: 6px 16px; }
.b-pass { background: var(--green); } .b-fail { background: var(--red); }
.b-error { background: var(--amber); } .b-inconclusive { background: var(--amber); } .b-interrupted { background: var(--grey); }
.meta { color: var(--muted); font-size: 14px; margin-top: 4px; }
.meta b { color: var(--ink); font-weight: 600; }
.summary { margin: 14px 0 0; font-size: 16px; }
.chips { margin: 6px 0 0; display: flex; flex-wrap: wrap; gap: 6px; }
.chip { background: var(--red-bg); color: var(--red); border: 1px solid #f5c2c0; border-radius: 14px;
  padding: 1px 10px; font-size: 13px; }
.chip code { font-size: 12px; color: #8e1c1c; }
.errorbox { background: var(--amber-bg); border: 1px solid #f0c36d; border-radius: 8px;
  padding: 10px 14px; margin: 12px 0 0; white-space: pre-wrap; }
.claim { border-radius: 8px; padding: 10px 14px; margin: 0 0 10px; border: 1px solid var(--line); }
.claim.broken { background: var(--red-bg); border-color: #f5c2c0; }
.claim.holds { background: var(--green-bg); border-color: #b7dfb9; }
.claim .word { font-weight: 800; letter-spacing: .03em; margin-right: 8px; }
.claim.broken .word { color: var(--red); } .claim.holds .word { color: var(--green); }
.claim.inconclusive { background: var(--amber-bg); border-color: #f0c36d; }
.claim.inconclusive .word { color: var(--amber); }
td.unsure { color: var(--amber); font-weight: 700; }
.claim .says { font-style: italic; }
.claim ul, .rules ul { margin: 6px 0 0 0; padding-left: 20px; }
.claim li { color: #7f1d1d; }
.muted { color: var(--muted); }
.note { color: var(--amber); font-size: 13px; margin: 4px 0; }
.timeline { width: 100%; height: auto; display: block; border: 1px solid var(--line);
  border-radius: 8px; background: #fff; }
.timeline text { font-family: system-ui, "DejaVu Sans", sans-serif; }
.t-phase { font-size: 12px; font-weight: 600; fill: #374151; }
.t-dest { font-size: 12.5px; fill: #1f2328; }
.t-dest.leak { fill: var(--red); font-weight: 700; }
.t-app { fill: #8a939e; font-weight: normal; font-size: 11px; }
.t-tick { font-size: 11px; fill: #6b7280; }
.rowline { stroke: #eceff3; stroke-width: 1; }
.boundary { stroke: #9aa4b2; stroke-width: 1; stroke-dasharray: 3 3; }
.reboot { stroke: #b45309; stroke-width: 2; stroke-dasharray: 6 3; }
.t-reboot { font-size: 11px; fill: #b45309; }
.services { color: #4b5563; }
.axis { stroke: #9aa4b2; stroke-width: 1; }
.span { stroke: #b6bcc6; stroke-width: 3; stroke-linecap: round; }
.m-leak { fill: var(--red); stroke: #7f1010; stroke-width: 1.2; }
.m-plain { fill: #9aa0a6; stroke: #6b7280; stroke-width: .8; }
.legend { display: flex; flex-wrap: wrap; gap: 16px; font-size: 13px; color: var(--muted);
  margin: 6px 2px 0; align-items: center; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 50%; vertical-align: -1px;
  margin-right: 5px; }
.sw.leak { background: var(--red); } .sw.plain { background: #9aa0a6; }
.sw.band { border-radius: 2px; border: 1px solid #c7ccd3; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th { text-align: left; font-weight: 600; color: var(--muted); border-bottom: 2px solid var(--line);
  padding: 6px 8px; }
td { border-bottom: 1px solid var(--line); padding: 6px 8px; vertical-align: top; }
td code { background: #f6f8fa; border: 1px solid #e5e7eb; border-radius: 4px; padding: 1px 4px;
  white-space: pre-wrap; word-break: break-all; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td code.enc { white-space: nowrap; word-break: normal; }
tr.recv td { color: var(--muted); }
.ok { color: var(--green); font-weight: 700; } .bad { color: var(--red); font-weight: 700; }
pre.diff { background: #f6f8fa; border: 1px solid var(--line); border-radius: 8px; padding: 10px 0;
  overflow-x: auto; margin: 0; }
pre.diff span { display: block; padding: 0 12px; white-space: pre; min-height: 1.35em; }
pre.diff .rule { color: #b6bcc6; }
pre.diff .reg { color: var(--red); font-weight: 700; }
pre.diff .dnote { color: var(--amber); font-weight: 600; }
pre.diff .add { background: #e6ffec; color: #116329; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { color: #0550ae; background: #ddf4ff; }
pre.diff .meta { color: var(--muted); font-weight: 600; }
.overview td, .overview th { font-size: 14px; }
.overview a { color: inherit; }
footer { color: var(--muted); font-size: 12.5px; text-align: center; margin-top: 10px; }
"#;

/// Renders the runs as one self-contained HTML page. Same input, same bytes.
pub fn render(runs: &[HtmlRun<'_>]) -> String {
    let failed = runs
        .iter()
        .filter(|r| r.run.verdict != Verdict::Pass)
        .count();
    let page_title = match runs {
        [one] => format!(
            "telltale: {} — {}",
            one.title,
            verdict_word(one.run.verdict)
        ),
        _ => format!(
            "telltale: {} — {} not passing",
            plural(runs.len(), "run", "runs"),
            failed
        ),
    };
    let page = html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            head {
                "\n"
                meta charset="utf-8"; "\n"
                meta name="viewport" content="width=device-width, initial-scale=1"; "\n"
                title { (text(&page_title)) } "\n"
                // A constant of this module: inserted as written.
                style { (PreEscaped(CSS)) } "\n"
            } "\n"
            body {
                "\n"
                main {
                    "\n"
                    h1 {
                        "telltale privacy report "
                        small {
                            (plural(runs.len(), "run", "runs"))
                            @if !runs.is_empty() {
                                ", " (runs.len() - failed) " passed, " (failed) " not passing"
                            }
                        }
                    } "\n"
                    @if runs.len() > 1 {
                        (overview(runs))
                    }
                    @if runs.is_empty() {
                        p class="muted" { "No runs to show." } "\n"
                    }
                    @for (i, r) in runs.iter().enumerate() {
                        (run_section(i, r))
                    }
                    footer {
                        "Made by telltale " (env!("CARGO_PKG_VERSION")) " from the runs' report.json. \
                         This page is self-contained: it loads nothing from the network."
                    } "\n"
                } "\n"
            } "\n"
        } "\n"
    };
    page.into_string()
}

fn overview(runs: &[HtmlRun<'_>]) -> Markup {
    html! {
        div class="run" {
            table class="overview" {
                thead {
                    tr {
                        th { "verdict" } th { "run" } th { "release" }
                        th class="num" { "claims broken" } th class="num" { "rules broken" }
                        th class="num" { "canaries sent" } th class="num" { "duration" }
                    }
                }
                tbody {
                    "\n"
                    @for (i, r) in runs.iter().enumerate() {
                        @let j = &r.run.judgement;
                        @let sent: BTreeSet<&str> = r
                            .run
                            .analysis
                            .findings
                            .iter()
                            .filter(|f| f.direction == Direction::Up)
                            .map(|f| f.canary.as_str())
                            .collect();
                        tr {
                            td {
                                span class={ "badge b-" (verdict_class(r.run.verdict)) } {
                                    (verdict_word(r.run.verdict))
                                }
                            }
                            td { a href={ "#run-" (i + 1) } { (text(&r.title)) } }
                            td { (text(r.run.scenario.release.as_deref().unwrap_or("—"))) }
                            td class="num" { (j.broken_claims()) }
                            td class="num" { (j.broken_rules()) }
                            td class="num" { (sent.len()) }
                            td class="num" { (secs(r.run.end_ns.saturating_sub(r.run.start_ns))) }
                        } "\n"
                    }
                }
            }
        } "\n"
    }
}

fn run_section(index: usize, hr: &HtmlRun<'_>) -> Markup {
    let run = hr.run;
    let j = &run.judgement;
    let vclass = verdict_class(run.verdict);
    let error_what = if run.verdict == Verdict::Interrupted {
        "The run was interrupted"
    } else {
        "The run could not be carried out"
    };
    html! {
        section class={ "run v-" (vclass) } id={ "run-" (index + 1) } {
            "\n"
            // Header.
            div class="head" {
                span class={ "badge big b-" (vclass) } { (verdict_word(run.verdict)) }
                div {
                    h2 { (text(&hr.title)) }
                    div class="meta" {
                        "scenario " b { (text(&run.scenario.name)) }
                        @if let Some(rel) = &run.scenario.release {
                            " · release " b { (text(rel)) }
                        }
                        " · file " code { (text(&run.scenario.file)) }
                        " · started " (utc(run.start_ns))
                        " · ran " b { (secs(run.end_ns.saturating_sub(run.start_ns))) }
                        " · " (plural(j.broken_claims(), "claim broken", "claims broken"))
                        ", " (plural(j.broken_rules(), "rule broken", "rules broken"))
                    }
                }
            } "\n"
            @if let Some(e) = &run.error {
                div class="errorbox" {
                    b { (error_what) ":" } " " (text_max(e, 4 * MAX_TEXT_CHARS))
                } "\n"
            }
            (summary(run))
            // Claims first.
            h3 { "Patch claims" } "\n"
            @if j.claims.is_empty() {
                p class="muted" { "This scenario makes no patch claims." } "\n"
            }
            @for c in &j.claims {
                (claim(c))
            }
            h3 { "Timeline of uploads" } "\n"
            (timeline(run))
            (findings_table(run))
            (rules(j))
            @if hr.snapshot_gate.is_some() || hr.snapshot_diff.is_some() {
                (snapshot(hr.snapshot_gate.as_deref(), hr.snapshot_diff.as_deref().unwrap_or("")))
            }
        } "\n"
    }
}

/// The sentence under the header: what left the device, in plain words.
fn summary(run: &StoredRun) -> Markup {
    let a = &run.analysis;
    let uploads = uploads_count(run);
    let dests: BTreeSet<&str> = a
        .traffic_by_destination()
        .into_iter()
        .filter(|(_, t)| t.up > 0)
        .map(|(d, _)| d)
        .collect();
    let services = a.network_services();
    // destination -> canary -> encodings
    let mut sent: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for f in a.findings.iter().filter(|f| f.direction == Direction::Up) {
        sent.entry(f.destination.as_str())
            .or_default()
            .entry(f.canary.as_str())
            .or_default()
            .insert(f.encoding.as_str());
    }
    let canaries: BTreeSet<&str> = sent.values().flat_map(|m| m.keys().copied()).collect();
    html! {
        p class="summary" {
            "The device made " (plural(uploads, "upload", "uploads"))
            " to " (plural(dests.len(), "destination", "destinations")) " during the run. "
            @if !services.is_empty() {
                span class="services" {
                    "Not counted, listed apart: the network's own services — "
                    @for (i, (k, t)) in services.iter().enumerate() {
                        @if i > 0 { ", " }
                        (k.as_str()) " (" (plural(t.flows as usize, "conversation", "conversations")) ", "
                        (bytes(t.up)) " sent)"
                    }
                    ". "
                }
            }
            @if sent.is_empty() {
                span class="ok" { "No canary was found in anything it sent." }
            } @else {
                span class="bad" {
                    (plural(canaries.len(), "canary", "canaries")) " left the device:"
                }
            }
        } "\n"
        @for (dest, canaries) in sent.iter().take(MAX_ROWS) {
            div class="chips" {
                span { "to " b { (text(dest)) } ":" }
                @for (canary, encs) in canaries.iter().take(MAX_ROWS) {
                    @let list: Vec<&str> = encs.iter().copied().collect();
                    span class="chip" {
                        b { (text(canary)) } " as " code { (text(&list.join(", "))) }
                    }
                }
                @if canaries.len() > MAX_ROWS {
                    span class="muted" { "… " (canaries.len() - MAX_ROWS) " more" }
                }
            } "\n"
        }
        @if sent.len() > MAX_ROWS {
            p class="note" {
                "… and " (sent.len() - MAX_ROWS) " more destinations (see the table below)."
            } "\n"
        }
    }
}

fn claim(c: &ClaimResult) -> Markup {
    let (class, word, holds) = match c.verdict {
        ClaimStatus::Holds => ("holds", "CLAIM HOLDS", true),
        ClaimStatus::Broken => ("broken", "CLAIM BROKEN", false),
        ClaimStatus::Inconclusive => ("inconclusive", "CLAIM INCONCLUSIVE", false),
    };
    html! {
        div class={ "claim " (class) } {
            span class="word" { (word) }
            b { (text(&c.id)) }
            " — the vendor says "
            span class="says" { "“" (text(&c.says)) "”" }
            @if c.line > 0 {
                " " span class="muted" { "(scenario line " (c.line) ")" }
            }
            @if holds {
                div class="muted" { "No upload it covers was seen." }
            } @else if !c.violations.is_empty() {
                div { "It does not hold:" }
                ul { (violation_items(&c.violations)) }
            } @else if !c.inconclusive.is_empty() {
                div { "It cannot be said to hold: telltale could not see everything it covers." }
                ul { @for w in &c.inconclusive { li { (text(w)) } } }
            } @else {
                div { (text(&c.text)) }
            }
        } "\n"
    }
}

fn violation_items(vs: &[Violation]) -> Markup {
    html! {
        @for v in vs.iter().take(MAX_VIOLATIONS_SHOWN) {
            li { (text(&v.text)) }
        }
        @if vs.len() > MAX_VIOLATIONS_SHOWN {
            li class="muted" { "… " (vs.len() - MAX_VIOLATIONS_SHOWN) " more in report.json" }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timeline

/// One upload on the timeline.
#[derive(Debug, Clone)]
struct Mark {
    /// ns since the run's start.
    t: u64,
    /// End of the conversation, for flows drawn as a span.
    until: Option<u64>,
    /// First tooltip line (`POST /v1/register`, `udp dns 10.77.0.1:53`).
    what: String,
    /// Bytes sent (request body or flow payload).
    bytes: u64,
    /// What `bytes` counts.
    bytes_label: &'static str,
    /// Application protocol (`http`, `dns`...) or transport when unknown.
    app: String,
    /// `imei (raw)`, sorted.
    canaries: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Row {
    marks: Vec<Mark>,
    dropped: usize,
}

impl Row {
    fn leaks(&self) -> bool {
        self.marks.iter().any(|m| !m.canaries.is_empty())
    }
    fn first(&self) -> u64 {
        self.marks.iter().map(|m| m.t).min().unwrap_or(0)
    }
}

fn canary_label(f: &Finding) -> String {
    format!("{} ({})", f.canary, f.encoding)
}

fn uploads_count(run: &StoredRun) -> usize {
    let a = &run.analysis;
    let services = service_flows(run);
    let with_http: BTreeSet<usize> = a.http_requests.iter().map(|r| r.flow).collect();
    a.http_requests
        .iter()
        .filter(|r| !services.contains(&r.flow))
        .count()
        + a.flows
            .iter()
            .filter(|f| f.bytes_up > 0 && !with_http.contains(&f.id) && !services.contains(&f.id))
            .count()
}

/// Flows that are the network's own services (`FlowRecord::network_service`): not uploads, not timeline rows
/// (a canary found in one is still drawn, at its own time).
fn service_flows(run: &StoredRun) -> BTreeSet<usize> {
    run.analysis
        .flows
        .iter()
        .filter(|f| f.is_network_service())
        .map(|f| f.id)
        .collect()
}

/// Every upload of the run per destination, with the canaries it carried.
fn build_rows(run: &StoredRun) -> BTreeMap<String, Row> {
    let a = &run.analysis;
    let start = run.start_ns;
    let mut marks: Vec<(String, Mark)> = Vec::new();
    let mut by_flow: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let services = service_flows(run);
    for r in a
        .http_requests
        .iter()
        .filter(|r| !services.contains(&r.flow))
    {
        by_flow.entry(r.flow).or_default().push(marks.len());
        marks.push((
            r.destination.clone(),
            Mark {
                t: r.time_ns.saturating_sub(start),
                until: None,
                what: format!("{} {}", r.method, r.path),
                bytes: r.body_bytes,
                bytes_label: "body",
                app: "http".into(),
                canaries: BTreeSet::new(),
            },
        ));
    }
    // Flows without HTTP requests, by flow id.
    let mut flow_mark: BTreeMap<usize, usize> = BTreeMap::new();
    for f in &a.flows {
        if f.bytes_up == 0 || by_flow.contains_key(&f.id) || services.contains(&f.id) {
            continue;
        }
        flow_mark.insert(f.id, marks.len());
        let app_name = f.app_or_transport();
        let app = if f.app.is_unknown() {
            String::new()
        } else {
            format!(" {}", f.app)
        };
        marks.push((
            f.destination.clone(),
            Mark {
                t: f.first_ns.saturating_sub(start),
                until: Some(f.last_ns.saturating_sub(start)),
                what: format!("{}{app} to {}", f.protocol, f.server),
                bytes: f.bytes_up,
                bytes_label: "sent",
                app: app_name,
                canaries: BTreeSet::new(),
            },
        ));
    }
    for f in a.findings.iter().filter(|f| f.direction == Direction::Up) {
        let target = if let Some(reqs) = by_flow.get(&f.flow) {
            // The request of the finding's conversation with the same method and path
            // (any request of it when none matches) whose time is closest.
            let want = f.request();
            let matching: Vec<usize> = reqs
                .iter()
                .copied()
                .filter(|&i| match (&want, marks.get(i)) {
                    (Some(w), Some((_, m))) => m.what == *w,
                    (None, Some(_)) => true,
                    (_, None) => false,
                })
                .collect();
            let pool = if matching.is_empty() { reqs } else { &matching };
            pool.iter().copied().min_by_key(|&i| {
                let t = marks.get(i).map(|(_, m)| m.t).unwrap_or(0);
                t.abs_diff(f.time_ns.saturating_sub(start))
            })
        } else {
            flow_mark.get(&f.flow).copied()
        };
        match target.and_then(|i| marks.get_mut(i)) {
            Some((_, m)) => {
                m.canaries.insert(canary_label(f));
            }
            None => {
                // Not in any recorded upload: still shown, at the finding's own time.
                let mut canaries = BTreeSet::new();
                canaries.insert(canary_label(f));
                marks.push((
                    f.destination.clone(),
                    Mark {
                        t: f.time_ns.saturating_sub(start),
                        until: None,
                        what: format!("{} data", f.protocol),
                        bytes: 0,
                        bytes_label: "",
                        app: f.protocol.clone(),
                        canaries,
                    },
                ));
            }
        }
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for (dest, m) in marks {
        rows.entry(dest).or_default().marks.push(m);
    }
    for row in rows.values_mut() {
        // Keep the uploads with canaries first when a row is over the cap.
        row.marks.sort_by_key(|m| (m.canaries.is_empty(), m.t));
        if row.marks.len() > MAX_MARKS_PER_ROW {
            row.dropped = row.marks.len() - MAX_MARKS_PER_ROW;
            row.marks.truncate(MAX_MARKS_PER_ROW);
        }
        row.marks.sort_by_key(|m| m.t);
    }
    rows
}

const PHASE_FILLS: [&str; 8] = [
    "#e3edfb", "#fdf1d6", "#e2f3e4", "#efe6fa", "#fde6d6", "#d9f2ef", "#fbe3ee", "#e6e9fb",
];

const SVG_W: f64 = 1160.0;
const PLOT_X0: f64 = 250.0;
const PLOT_X1: f64 = 1140.0;
const TOP: f64 = 30.0;
const ROW_H: f64 = 30.0;
const AXIS_H: f64 = 30.0;

fn phase_at(run: &StoredRun, t: u64) -> Option<&str> {
    let abs = run.start_ns.saturating_add(t);
    run.phases
        .iter()
        .rev()
        .find(|p| p.start_ns <= abs)
        .map(|p| p.name.as_str())
}

/// A tick step of 1, 2 or 5 × 10^k seconds giving about eight ticks.
fn tick_step(dur_s: f64) -> f64 {
    let raw = (dur_s / 8.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

/// A phase drawn as a band.
struct Band<'r> {
    name: &'r str,
    fill: &'static str,
    /// Start and end, ns since the run's start.
    s: u64,
    e: u64,
    x0: f64,
    x1: f64,
}

fn timeline(run: &StoredRun) -> Markup {
    let rows_map = build_rows(run);
    let traffic = run.analysis.traffic_by_destination();
    let mut rows: Vec<(String, Row)> = rows_map.into_iter().collect();
    // Destinations that received canaries first, then by first upload.
    rows.sort_by(|(an, a), (bn, b)| {
        (!a.leaks(), a.first(), an.as_str()).cmp(&(!b.leaks(), b.first(), bn.as_str()))
    });
    let hidden_rows = rows.len().saturating_sub(MAX_ROWS);
    rows.truncate(MAX_ROWS);
    let run_len = run.end_ns.saturating_sub(run.start_ns);
    let latest = rows
        .iter()
        .flat_map(|(_, r)| r.marks.iter())
        .map(|m| m.until.unwrap_or(m.t).max(m.t))
        .max()
        .unwrap_or(0);
    let dur = run_len.max(latest).max(1);
    let x = |t: u64| -> f64 { PLOT_X0 + (t.min(dur) as f64 / dur as f64) * (PLOT_X1 - PLOT_X0) };
    let nrows = rows.len().max(1);
    let plot_bottom = TOP + ROW_H * nrows as f64;
    let height = plot_bottom + AXIS_H;
    let bands: Vec<Band<'_>> = run
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let s = p.start_ns.saturating_sub(run.start_ns).min(dur);
            let e = if p.end_ns == 0 || p.end_ns < p.start_ns {
                dur
            } else {
                p.end_ns.saturating_sub(run.start_ns).min(dur)
            };
            Band {
                name: &p.name,
                fill: PHASE_FILLS[i % PHASE_FILLS.len()],
                s,
                e,
                x0: x(s),
                x1: x(e),
            }
        })
        .collect();
    // Reboots (a `reboot` step): the device restarted here, so its boot-time traffic (a new DHCP lease, the
    // first lookups) appears again after it.
    let reboots: Vec<(f64, u64, usize)> = run
        .steps
        .iter()
        .filter(|st| st.kind == "reboot")
        .map(|st| {
            let t = st.start_ns.saturating_sub(run.start_ns).min(dur);
            (x(t), t, st.index)
        })
        .collect();
    // Time axis ticks: position and label.
    let dur_s = dur as f64 / 1e9;
    let step = tick_step(dur_s);
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()).clamp(0.0, 9.0) as usize
    };
    let ticks: Vec<(f64, String)> = (0..=60u32)
        .map(|k| step * f64::from(k))
        .take_while(|&ts| ts <= dur_s * 1.000_001)
        .map(|ts| {
            (
                PLOT_X0 + ts / dur_s * (PLOT_X1 - PLOT_X0),
                format!("{ts:.decimals$} s"),
            )
        })
        .collect();
    let dropped: usize = rows.iter().map(|(_, r)| r.dropped).sum();
    let mut not_drawn = Vec::new();
    if hidden_rows > 0 {
        not_drawn.push(format!(
            "{} not shown (at most {MAX_ROWS} rows; those that received canaries come first)",
            plural(hidden_rows, "destination", "destinations")
        ));
    }
    if dropped > 0 {
        not_drawn.push(format!(
            "{} not drawn (at most {MAX_MARKS_PER_ROW} per destination; those with canaries are kept)",
            plural(dropped, "upload", "uploads")
        ));
    }
    html! {
        svg class="timeline" viewBox={ "0 0 " (f0(SVG_W)) " " (f0(height)) }
            role="img" aria-label="Uploads over time, one row per destination" {
            "\n"
            // Phase bands.
            @for (i, b) in bands.iter().enumerate() {
                rect x=(f1(b.x0)) y=(f1(TOP - 26.0)) width=(f1((b.x1 - b.x0).max(1.0)))
                    height=(f1(plot_bottom - TOP + 26.0)) fill=(b.fill) {
                    title { "phase " (text(b.name)) ": " (secs(b.s)) " – " (secs(b.e)) }
                } "\n"
                @if i > 0 {
                    line class="boundary" x1=(f1(b.x0)) x2=(f1(b.x0)) y1=(f1(TOP - 26.0))
                        y2=(f1(plot_bottom)) {} "\n"
                }
                // A label when the band is wide enough for a few characters (about 7 units each).
                @let room = ((b.x1 - b.x0 - 10.0) / 7.0).floor();
                @if room >= 3.0 {
                    text class="t-phase" x=(f1(b.x0 + 6.0)) y=(f1(TOP - 10.0)) {
                        (text(&clip_chars(b.name, room as usize)))
                    } "\n"
                }
            }
            @for (rx, t, index) in &reboots {
                line class="reboot" x1=(f1(*rx)) x2=(f1(*rx)) y1=(f1(TOP - 26.0)) y2=(f1(plot_bottom)) {
                    title { "reboot (step " (index) ") at " (secs(*t)) }
                } "\n"
                text class="t-reboot" x=(f1(*rx + 3.0)) y=(f1(plot_bottom - 4.0)) { "⟲ reboot" } "\n"
            }
            // Rows.
            @for (r, (dest, row)) in rows.iter().enumerate() {
                @let y = TOP + ROW_H * r as f64 + ROW_H / 2.0;
                @let n = row.marks.len() + row.dropped;
                // Bytes sent: the report's one definition (transport payload of the device's conversations
                // to this destination), as in the terminal summary and report.json.
                @let sent: u64 = traffic.get(dest.as_str()).map_or(0, |t| t.up);
                @let apps: BTreeSet<&str> = row.marks.iter().map(|m| m.app.as_str()).collect();
                @let apps: Vec<&str> = apps.into_iter().take(3).collect();
                line class="rowline" x1="8" x2=(f0(PLOT_X1)) y1=(f1(y + ROW_H / 2.0))
                    y2=(f1(y + ROW_H / 2.0)) {} "\n"
                text class={ "t-dest" @if row.leaks() { " leak" } } x=(f1(PLOT_X0 - 10.0))
                    y=(f1(y + 4.0)) text-anchor="end" {
                    title {
                        (text(dest)) ": " (plural(n, "upload", "uploads")) ", " (bytes(sent)) " sent"
                    }
                    (text(&clip_chars(dest, 28)))
                    tspan class="t-app" { " · " (text_max(&clip_chars(&apps.join(","), 14), 20)) }
                } "\n"
                @for m in &row.marks {
                    @let cx = x(m.t);
                    @if let Some(until) = m.until {
                        @let x1 = x(until);
                        @if x1 - cx >= 2.0 {
                            line class="span" x1=(f1(cx)) x2=(f1(x1)) y1=(f1(y)) y2=(f1(y)) {} "\n"
                        }
                    }
                    @let (class, radius) = if m.canaries.is_empty() {
                        ("m-plain", "4.5")
                    } else {
                        ("m-leak", "7")
                    };
                    circle class=(class) cx=(f1(cx)) cy=(f1(y)) r=(radius) {
                        title { (mark_tooltip(run, dest, m)) }
                    } "\n"
                }
                @if row.dropped > 0 {
                    text class="t-tick" x=(f0(PLOT_X1)) y=(f1(y - 8.0)) text-anchor="end" {
                        "+" (row.dropped) " not drawn"
                    } "\n"
                }
            }
            @if rows.is_empty() {
                text class="t-tick" x=(f1((PLOT_X0 + PLOT_X1) / 2.0)) y=(f1(TOP + ROW_H / 2.0 + 4.0))
                    text-anchor="middle" { "no uploads were captured" } "\n"
            }
            // Time axis.
            line class="axis" x1=(f0(PLOT_X0)) x2=(f0(PLOT_X1)) y1=(f1(plot_bottom))
                y2=(f1(plot_bottom)) {} "\n"
            @for (tx, label) in &ticks {
                line class="axis" x1=(f1(*tx)) x2=(f1(*tx)) y1=(f1(plot_bottom))
                    y2=(f1(plot_bottom + 5.0)) {}
                text class="t-tick" x=(f1(*tx)) y=(f1(plot_bottom + 18.0)) text-anchor="middle" {
                    (label)
                } "\n"
            }
        } "\n"
        // Legend.
        div class="legend" {
            span { span class="sw leak" {} "upload carrying a canary" }
            span { span class="sw plain" {} "upload without canary" }
            @if !reboots.is_empty() {
                span { span class="t-reboot" { "⟲" } " device reboot (its boot-time traffic starts again)" }
            }
            span {
                "the network's own services (DHCP, DNS to the resolver, NTP, ARP) are not drawn; they are listed "
                "above the timeline"
            }
            @for b in bands.iter().take(MAX_ROWS) {
                span {
                    span class="sw band" style={ "background:" (b.fill) } {}
                    (text(b.name)) " " (secs(b.s)) "–" (secs(b.e))
                }
            }
            span {
                "time since the run started (" (secs(run_len)) " in all); hover a mark for details"
            }
        } "\n"
        @if !not_drawn.is_empty() {
            p class="note" {
                "Not everything is drawn: " (not_drawn.join("; ")) ". report.json has them all."
            } "\n"
        }
    }
}

/// A mark's tooltip: what was sent where, when, how much, and which canaries it carried.
fn mark_tooltip(run: &StoredRun, dest: &str, m: &Mark) -> Markup {
    let list: Vec<&str> = m.canaries.iter().map(String::as_str).take(20).collect();
    html! {
        (text_max(&m.what, 200)) " → " (text_max(dest, 200)) "\nat " (secs(m.t))
        @if let Some(p) = phase_at(run, m.t) {
            " (" (text_max(p, 100)) ")"
        }
        @if !m.bytes_label.is_empty() {
            "\n" (m.bytes_label) ": " (bytes(m.bytes))
        }
        @if m.canaries.is_empty() {
            "\nno canary found"
        } @else {
            "\ncanaries: " (text_max(&list.join(", "), 1000))
            @if m.canaries.len() > 20 {
                " … " (m.canaries.len() - 20) " more"
            }
        }
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut o: String = s.chars().take(max.saturating_sub(1)).collect();
    o.push('…');
    o
}

// ---------------------------------------------------------------------------------------------
// Tables

fn findings_table(run: &StoredRun) -> Markup {
    // One row per (direction, canary, encoding, destination, request, field, phase), counts added.
    type Key<'a> = (
        bool,
        &'a str,
        &'a str,
        &'a str,
        Option<(&'a str, &'a str)>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let mut groups: Vec<(Key<'_>, u64, &Finding)> = Vec::new();
    let mut index: BTreeMap<Key<'_>, usize> = BTreeMap::new();
    for f in &run.analysis.findings {
        let key: Key<'_> = (
            f.direction != Direction::Up,
            f.canary.as_str(),
            f.encoding.as_str(),
            f.destination.as_str(),
            f.http_method.as_deref().zip(f.http_path.as_deref()),
            f.field.as_deref(),
            f.phase.as_deref(),
        );
        match index.get(&key).and_then(|&i| groups.get_mut(i)) {
            Some(g) => g.1 = g.1.saturating_add(f.count),
            None => {
                index.insert(key, groups.len());
                groups.push((key, f.count, f));
            }
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    html! {
        h3 { "Canaries found" } "\n"
        @if groups.is_empty() {
            p class="ok" { "None: no planted value was found in any encoding in the traffic." } "\n"
        } @else {
            table class="findings" {
                thead {
                    tr {
                        th { "canary" } th { "encoding" } th { "destination" } th { "request" }
                        th { "phase" } th class="num" { "count" } th { "excerpt" }
                    }
                }
                tbody {
                    "\n"
                    @for (key, count, f) in groups.iter().take(MAX_FINDING_ROWS) {
                        // Received from a destination: greyed, the canary not in bold.
                        @let recv = key.0;
                        tr class=[recv.then_some("recv")] {
                            td {
                                @if recv { (text(&f.canary)) } @else { b { (text(&f.canary)) } }
                            }
                            td { code class="enc" { (text(&f.encoding)) } }
                            td { (text(&f.destination)) }
                            td {
                                @if recv { i { "received from it" } " " }
                                @match (&f.http_method, &f.http_path) {
                                    (Some(m), Some(p)) => { (text(m)) " " (text(p)) }
                                    _ => { (text(&f.protocol)) }
                                }
                                @if let Some(field) = &f.field {
                                    " " span class="muted" { "· " (text(field)) }
                                }
                            }
                            td { (text(f.phase.as_deref().unwrap_or("—"))) }
                            td class="num" { (count) }
                            td { code { (text(&f.excerpt)) } }
                        } "\n"
                    }
                }
            } "\n"
            @if groups.len() > MAX_FINDING_ROWS {
                p class="note" {
                    (groups.len() - MAX_FINDING_ROWS) " more rows are in report.json (at most "
                    (MAX_FINDING_ROWS) " shown)."
                } "\n"
            }
            p class="muted" {
                "One row per canary, encoding, destination, request and phase; \
                 count adds up the occurrences in every conversation."
            } "\n"
        }
    }
}

fn rules(j: &Judgement) -> Markup {
    html! {
        h3 { "Policy" } "\n"
        @if j.rules.is_empty() {
            p class="muted" { "The scenario has no policy rules." } "\n"
        } @else {
            table class="rules" {
                thead { tr { th { "result" } th { "rule" } th { "what broke it" } } }
                tbody {
                    "\n"
                    @for r in &j.rules {
                        tr {
                            @match r.status() {
                                RuleStatus::Held => { td class="ok" { "held" } }
                                RuleStatus::Broken => { td class="bad" { "VIOLATED" } }
                                RuleStatus::Inconclusive => { td class="unsure" { "INCONCLUSIVE" } }
                            }
                            td {
                                code { (r.kind.as_str()) } " " (text(&r.rule))
                                @if r.line > 0 {
                                    " " span class="muted" { "(line " (r.line) ")" }
                                }
                            }
                            td {
                                @if !r.violations.is_empty() {
                                    ul { (violation_items(&r.violations)) }
                                } @else if !r.inconclusive.is_empty() {
                                    ul { @for w in &r.inconclusive { li { (text(w)) } } }
                                } @else {
                                    span class="muted" { "—" }
                                }
                            }
                        } "\n"
                    }
                }
            } "\n"
        }
    }
}

/// How a line of a snapshot diff reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffLineKind {
    /// Only in the new snapshot (`+`, `│+`, or a `  + ` fact).
    Added,
    /// Only in the accepted one (`-`, `│-`, or a `  - ` fact).
    Removed,
    /// In both.
    Context,
    /// File names or the legend (`---`/`+++`, `-accepted snapshot`/`+new snapshot`).
    Header,
    /// A unified diff's `@@` line.
    Hunk,
    /// A ruler of box-drawing characters.
    Rule,
    /// `REGRESSION: …`.
    Regression,
    /// `note: …`.
    Note,
}

/// Classifies a line of a diff: a unified diff, or telltale's own (insta's layout: line
/// numbers, `│`, the sign, the line; then `REGRESSION:`/`note:` and `  + `/`  - ` facts).
pub fn diff_line_kind(line: &str) -> DiffLineKind {
    if let Some((gutter, rest)) = line.split_once('│') {
        if gutter.chars().all(|c| c == ' ' || c.is_ascii_digit()) {
            return match rest.chars().next() {
                Some('+') => DiffLineKind::Added,
                Some('-') => DiffLineKind::Removed,
                _ => DiffLineKind::Context,
            };
        }
    }
    if !line.is_empty() && line.chars().all(|c| "─┬┴┼┈ ".contains(c)) {
        return DiffLineKind::Rule;
    }
    if line.starts_with("+++")
        || line.starts_with("---")
        || line == "-accepted snapshot"
        || line == "+new snapshot"
    {
        return DiffLineKind::Header;
    }
    if line.starts_with("@@") {
        return DiffLineKind::Hunk;
    }
    if line.starts_with("REGRESSION") {
        return DiffLineKind::Regression;
    }
    if line.starts_with("note:") {
        return DiffLineKind::Note;
    }
    if line.starts_with('+') || line.starts_with("  + ") {
        return DiffLineKind::Added;
    }
    if line.starts_with('-') || line.starts_with("  - ") {
        return DiffLineKind::Removed;
    }
    DiffLineKind::Context
}

/// The text of an added or removed line without its gutter and sign.
pub fn diff_line_text(line: &str) -> &str {
    let rest = match line.split_once('│') {
        Some((gutter, rest)) if gutter.chars().all(|c| c == ' ' || c.is_ascii_digit()) => rest,
        _ => line.trim_start(),
    };
    rest.strip_prefix(['+', '-']).unwrap_or(rest).trim()
}

fn snapshot(gate: Option<&str>, diff: &str) -> Markup {
    let total = diff.lines().count();
    html! {
        h3 { "Snapshot gate" } "\n"
        @if let Some(gate) = gate {
            @let class = if gate.starts_with("PASSES") { "ok" } else { "bad" };
            p class=(class) { (text(gate)) } "\n"
        }
        @if diff.trim().is_empty() {
            p class="ok" { "Same privacy behaviour as the accepted snapshot." } "\n"
        } @else {
            pre class="diff" {
                @for line in diff.lines().take(MAX_DIFF_LINES) {
                    @let line = line.strip_suffix('\r').unwrap_or(line);
                    @let class = match diff_line_kind(line) {
                        DiffLineKind::Added => "add",
                        DiffLineKind::Removed => "del",
                        DiffLineKind::Context => "ctx",
                        DiffLineKind::Header => "meta",
                        DiffLineKind::Hunk => "hunk",
                        DiffLineKind::Rule => "rule",
                        DiffLineKind::Regression => "reg",
                        DiffLineKind::Note => "dnote",
                    };
                    span class=(class) { (text(line)) }
                }
            } "\n"
            @if total > MAX_DIFF_LINES {
                p class="note" {
                    (total - MAX_DIFF_LINES) " more lines of the diff are not shown."
                } "\n"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RuleKind, RuleResult};
    use serde_json::{json, Value};

    fn finding(canary: &str, enc: &str, flow: usize, t: u64, excerpt: &str) -> Value {
        json!({
            "canary": canary, "encoding": enc, "destination": "sync.kestrel.example",
            "address": "198.18.9.118:80", "protocol": "http", "direction": "up",
            "http_method": "POST", "http_path": "/v2/sync", "field": "body", "flow": flow,
            "packet": 12, "offset": 190, "time_ns": t, "phase": "consent_declined", "count": 1,
            "excerpt": excerpt
        })
    }

    fn flow(id: usize, proto: &str, app: &str, server: &str, dest: &str, up: u64, t: u64) -> Value {
        json!({
            "id": id, "protocol": proto, "app": app, "client": "10.77.0.15:40000",
            "server": server, "destination": dest, "packets_up": 3, "packets_down": 3,
            "bytes_up": up, "bytes_down": 100, "first_ns": t, "last_ns": t + 5_000_000,
            "first_packet": 1, "opaque_bytes": 0
        })
    }

    fn request(flow: usize, method: &str, path: &str, dest: &str, t: u64) -> Value {
        json!({
            "method": method, "host": dest, "path": path, "target": path, "body_bytes": 205,
            "body_decoded_bytes": 205, "destination": dest, "flow": flow, "packet": 12,
            "time_ns": t
        })
    }

    const S: u64 = 1_000_000_000;

    /// The judgement of a v2-fix-like run: one forbid rule and one claim, broken by the
    /// IMEI sent base64-encoded when `broken`.
    fn judgement(broken: bool, excerpt_claim: &str) -> Judgement {
        let violation = |text: &str| Violation {
            canary: "imei".into(),
            encoding: "base64".into(),
            destination: "sync.kestrel.example".into(),
            request: Some("POST /v2/sync".into()),
            phase: "consent_declined".into(),
            count: 2,
            packet: 12,
            text: text.into(),
        };
        let rule_violations = if broken {
            vec![violation("imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times")]
        } else {
            Vec::new()
        };
        let claim_violations = if broken {
            vec![violation(excerpt_claim)]
        } else {
            Vec::new()
        };
        Judgement {
            rules: vec![RuleResult {
                inconclusive: Vec::new(),
                kind: RuleKind::Forbid,
                rule: "no canary, in any encoding, to any destination during consent_declined"
                    .into(),
                line: 35,
                held: !broken,
                violations: rule_violations,
            }],
            claims: vec![ClaimResult {
                inconclusive: Vec::new(),
                id: "KST-2014-0001".into(),
                says: "contacts and device identifiers are no longer uploaded without consent"
                    .into(),
                line: 38,
                verdict: if broken {
                    ClaimStatus::Broken
                } else {
                    ClaimStatus::Holds
                },
                violations: claim_violations,
                text: "CLAIM BROKEN  KST-2014-0001".into(),
            }],
        }
    }

    /// A v2-fix-like run: hashed contacts and base64 IMEI to sync.kestrel.example.
    fn stored(verdict: &str, findings: Vec<Value>, excerpt_claim: &str) -> StoredRun {
        let broken = !findings.is_empty();
        let mut run: StoredRun =
            serde_json::from_value(run_json(verdict, findings)).expect("test input parses");
        run.judgement = judgement(broken, excerpt_claim);
        run
    }

    /// The report.json text of [`stored`], with an empty judgement.
    fn run_json(verdict: &str, findings: Vec<Value>) -> Value {
        json!({
            "scenario": {"name": "cloudsync-v2-fix", "release": "v2-fix", "file": "scenarios/cloudsync-v2-fix.yaml"},
            "verdict": verdict,
            "start_ns": 100 * S, "end_ns": 150 * S,
            "phases": [
                {"name": "boot", "start_ns": 100 * S, "end_ns": 104 * S},
                {"name": "setup", "start_ns": 104 * S, "end_ns": 105 * S},
                {"name": "consent_declined", "start_ns": 105 * S, "end_ns": 150 * S}
            ],
            "judgement": {"rules": [], "claims": []},
            "analysis": {
                "format_version": 1, "telltale_version": "0.1.0",
                "capture": {"file": "capture.pcap", "format": "pcap", "gzip": false, "packets": 75, "bytes": 10000,
                            "first_ns": 100 * S, "last_ns": 150 * S, "link_types": {"ethernet": 75},
                            "non_ip_packets": 0, "ip_fragments": 0, "malformed_packets": 0, "damaged_at": null},
                "canaries": ["imei", "phone", "contacts[0]"],
                "findings": findings,
                "flows": [
                    flow(0, "udp", "dhcp", "255.255.255.255:67", "255.255.255.255", 1222, 103 * S),
                    flow(1, "udp", "dns", "10.77.0.1:53", "10.77.0.1", 38, 108 * S),
                    flow(2, "tcp", "http", "198.18.9.118:80", "sync.kestrel.example", 387, 109 * S),
                    flow(3, "tcp", "http", "198.18.9.118:80", "sync.kestrel.example", 387, 114 * S),
                    flow(4, "tcp", "http", "198.18.9.119:80", "cdn.kestrel.example", 80, 120 * S)
                ],
                "dns_queries": [], "tls": [], "dhcp": [], "warnings": [],
                "http_requests": [
                    request(2, "POST", "/v2/sync", "sync.kestrel.example", 109 * S),
                    request(3, "POST", "/v2/sync", "sync.kestrel.example", 114 * S),
                    request(4, "GET", "/fw/latest", "cdn.kestrel.example", 120 * S)
                ]
            }
        })
    }

    fn v2() -> StoredRun {
        let findings = vec![
            finding(
                "imei",
                "base64",
                2,
                109 * S,
                "{\"did\":\"MzUzNjA0NDE2NzczMDAy\"",
            ),
            finding(
                "imei",
                "base64",
                3,
                114 * S,
                "{\"did\":\"MzUzNjA0NDE2NzczMDAy\"",
            ),
            finding(
                "contacts[0]",
                "sha1>hex",
                2,
                109 * S,
                "\"contact_hashes\":[\"794031b3\"",
            ),
        ];
        stored(
            "fail",
            findings,
            "imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times",
        )
    }

    fn page(run: &StoredRun, diff: Option<&str>) -> String {
        render(&[HtmlRun {
            run,
            snapshot_diff: diff.map(str::to_string),
            snapshot_gate: None,
            title: "cloudsync-v2-fix (v2-fix)".into(),
        }])
    }

    #[test]
    fn failing_run_shows_verdict_broken_claim_first_and_red_marks() {
        let run = v2();
        let html = page(&run, None);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("badge big b-fail\">FAIL</span>"));
        assert!(html.contains("CLAIM BROKEN"));
        assert!(html.contains("KST-2014-0001"));
        // The claim comes before the timeline and the findings table.
        let claim = html.find("CLAIM BROKEN").unwrap();
        let svg = html.find("<svg").unwrap();
        let table = html.find("<table class=\"findings\"").unwrap();
        assert!(claim < svg && svg < table);
        // Two sync requests carried canaries, the cdn request did not; the DHCP/DNS flows are the network's
        // own services: not drawn, listed apart.
        assert_eq!(html.matches("class=\"m-leak\"").count(), 2);
        assert_eq!(html.matches("class=\"m-plain\"").count(), 1);
        assert!(html.contains("<span class=\"services\">Not counted, listed apart: the network's own services — DHCP"), "{html}");
        assert!(html.contains("canaries: contacts[0] (sha1&gt;hex), imei (base64)"));
        // Rows: the destination that received canaries comes first and is marked.
        let sync = html.find("t-dest leak").unwrap();
        let cdn = html
            .find(">cdn.kestrel.example<tspan class=\"t-app\"> · http</tspan>")
            .unwrap();
        assert!(sync < cdn);
        // Phases are bands with labels.
        assert!(html.contains(">consent_declined</text>"));
        assert!(html.contains("<title>phase boot: 0.00 s – 4.00 s</title>"));
        // Findings grouped: imei in two conversations adds up to one row with count 2.
        assert!(html.contains("<td class=\"num\">2</td>"));
        assert!(html.contains("VIOLATED"));
        assert!(html.contains("(line 35)"));
        // The DHCP and DNS flows are the network's own: not uploads, not destinations.
        assert!(
            html.contains("The device made 3 uploads to 2 destinations"),
            "{html}"
        );
    }

    #[test]
    fn passing_run_says_nothing_left_the_device() {
        let run = stored("pass", vec![], "");
        let html = page(&run, Some(""));
        assert!(html.contains("b-pass\">PASS"));
        assert!(html.contains("CLAIM HOLDS"));
        assert!(!html.contains("CLAIM BROKEN"));
        assert!(html.contains("No canary was found"));
        assert_eq!(html.matches("class=\"m-leak\"").count(), 0);
        assert!(html.contains("Same privacy behaviour as the accepted snapshot"));
        assert!(html.contains("<td class=\"ok\">held</td>"));
    }

    #[test]
    fn everything_from_the_report_is_escaped() {
        let evil = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;";
        let mut run = v2();
        run.analysis.findings[0].excerpt = evil.into();
        run.analysis.findings[0].canary = evil.into();
        run.analysis.findings[0].destination = evil.into();
        run.analysis.http_requests[0].path = evil.into();
        run.analysis.flows[1].destination = evil.into();
        run.phases[0].name = evil.into();
        run.scenario.name = evil.into();
        run.scenario.release = Some(evil.into());
        run.error = Some(evil.into());
        run.judgement.claims[0].says = evil.into();
        run.judgement.claims[0].violations[0].text = evil.into();
        run.judgement.rules[0].rule = evil.into();
        let html = render(&[HtmlRun {
            run: &run,
            snapshot_diff: Some(format!("+{evil}\n-{evil}")),
            snapshot_gate: Some(format!("FAILS: {evil}")),
            title: evil.into(),
        }]);
        assert!(!html.contains("<script"), "raw script tag in the page");
        assert!(!html.contains("<img"), "raw img tag in the page");
        assert!(!html.contains("onerror=alert(2)>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;img"));
        assert!(html.contains("&amp;amp;"));
        // The excerpt is shown in <code>, as text.
        assert!(html.contains("<code>&lt;script&gt;alert(1)"));
    }

    #[test]
    fn control_and_bidi_characters_are_shown_as_escapes() {
        let mut run = v2();
        run.analysis.findings[0].excerpt = "a\u{0}b\u{1b}[31m\u{202e}gnp.exe".into();
        let html = page(&run, None);
        assert!(html.contains("a\\x00b\\x1b[31m\\u{202e}gnp.exe"));
        assert!(!html.contains('\u{202e}'));
        assert!(!html.contains('\u{0}'));
    }

    #[test]
    fn output_is_deterministic() {
        let run = v2();
        let a = page(&run, Some("+x\n-y"));
        let b = page(&run, Some("+x\n-y"));
        assert_eq!(a, b);
        let runs = [
            HtmlRun {
                run: &run,
                snapshot_diff: None,
                snapshot_gate: None,
                title: "a".into(),
            },
            HtmlRun {
                run: &run,
                snapshot_diff: None,
                snapshot_gate: None,
                title: "b".into(),
            },
        ];
        assert_eq!(render(&runs), render(&runs));
        assert!(render(&runs).contains("href=\"#run-2\""));
    }

    #[test]
    fn snapshot_diff_lines_are_coloured() {
        let run = v2();
        let diff = "--- accepted\n+++ this run\n@@ consent_declined @@\n destinations: 1\n+sync.kestrel.example imei (base64)\n-api.account.kestrel.example imei (raw)";
        let html = page(&run, Some(diff));
        assert!(html.contains("<span class=\"add\">+sync.kestrel.example imei (base64)</span>"));
        assert!(html.contains("<span class=\"del\">-api.account.kestrel.example imei (raw)</span>"));
        assert!(html.contains("<span class=\"meta\">--- accepted</span>"));
        assert!(html.contains("<span class=\"hunk\">@@ consent_declined @@</span>"));
        assert!(html.contains("<span class=\"ctx\"> destinations: 1</span>"));
    }

    #[test]
    fn telltale_snapshot_diffs_are_coloured() {
        let diff = "-accepted snapshot\n+new snapshot\n────────────┬──────\n    5     5 │ phase consent_declined\n    6       │-  lookup api.account.kestrel.example\n          6 │+  lookup sync.kestrel.example\n────────────┴──────\nREGRESSION: 1 new privacy fact\n  + consent_declined: new DNS lookup sync.kestrel.example\nnote: 1 privacy fact gone or smaller\n  - consent_declined: DNS lookup api.account.kestrel.example gone";
        let html = page(&v2(), Some(diff));
        for (class, text) in [
            ("meta", "-accepted snapshot"),
            ("meta", "+new snapshot"),
            ("rule", "────────────┬──────"),
            ("ctx", "    5     5 │ phase consent_declined"),
            ("del", "    6       │-  lookup api.account.kestrel.example"),
            ("add", "          6 │+  lookup sync.kestrel.example"),
            ("reg", "REGRESSION: 1 new privacy fact"),
            (
                "add",
                "  + consent_declined: new DNS lookup sync.kestrel.example",
            ),
            ("dnote", "note: 1 privacy fact gone or smaller"),
            (
                "del",
                "  - consent_declined: DNS lookup api.account.kestrel.example gone",
            ),
        ] {
            let want = format!("<span class=\"{class}\">{text}</span>");
            assert!(html.contains(&want), "missing {want}");
        }
        assert_eq!(
            diff_line_text("          6 │+  lookup sync.kestrel.example"),
            "lookup sync.kestrel.example"
        );
        assert_eq!(
            diff_line_text("  + consent_declined: x"),
            "consent_declined: x"
        );
        assert_eq!(diff_line_kind("│"), DiffLineKind::Context);
        assert_eq!(diff_line_kind(""), DiffLineKind::Context);
    }

    #[test]
    fn caps_are_applied_and_said() {
        let mut run = v2();
        let base = run.analysis.http_requests[2].clone();
        let mut many = Vec::new();
        for i in 0..(MAX_MARKS_PER_ROW + 25) {
            let mut r = base.clone();
            r.time_ns = 120 * S + i as u64 * 1000;
            many.push(r);
        }
        for d in 0..(MAX_ROWS + 5) {
            let mut r = base.clone();
            r.destination = format!("host{d:03}.example");
            r.flow = 1000 + d;
            many.push(r);
        }
        run.analysis.http_requests.extend(many);
        let long = "x".repeat(MAX_TEXT_CHARS * 3);
        run.analysis.findings[0].excerpt = long;
        let html = page(&run, Some(&"+line\n".repeat(MAX_DIFF_LINES + 7)));
        assert!(html.matches("<circle").count() <= MAX_ROWS * MAX_MARKS_PER_ROW);
        assert!(html.contains("+26 not drawn"));
        assert!(html.contains("not shown (at most 40 rows"));
        assert!(html.contains("7 more lines of the diff are not shown"));
        assert!(html.contains(&format!("… ({} more characters)", MAX_TEXT_CHARS * 2)));
        // The destination with canaries is still drawn and its marks kept.
        assert_eq!(html.matches("class=\"m-leak\"").count(), 2);
    }

    #[test]
    fn odd_reports_do_not_panic() {
        let mut run = v2();
        run.judgement = Judgement::default();
        run.end_ns = 0; // before start
        run.phases[2].end_ns = 0; // never closed
        run.analysis.findings[0].flow = usize::MAX; // no such flow
        run.analysis.findings[1].time_ns = 0; // before the run
        run.analysis.http_requests[0].time_ns = u64::MAX;
        let html = page(&run, None);
        assert!(html.contains("This scenario makes no patch claims"));
        // The orphan finding is still drawn, red, in its destination's row.
        assert!(html.contains("http data → sync.kestrel.example"));
        // A rule and a claim with nothing filled in.
        run.judgement = Judgement {
            rules: vec![RuleResult {
                inconclusive: Vec::new(),
                kind: RuleKind::Forbid,
                rule: String::new(),
                line: 0,
                held: false,
                violations: vec![Violation {
                    canary: String::new(),
                    encoding: String::new(),
                    destination: String::new(),
                    request: None,
                    phase: String::new(),
                    count: 0,
                    packet: 0,
                    text: String::new(),
                }],
            }],
            claims: vec![ClaimResult {
                inconclusive: Vec::new(),
                id: String::new(),
                says: String::new(),
                line: 0,
                verdict: ClaimStatus::Holds,
                violations: Vec::new(),
                text: String::new(),
            }],
        };
        run.phases.clear();
        run.analysis.http_requests.clear();
        run.analysis.flows.clear();
        run.analysis.findings.clear();
        let html = page(&run, None);
        assert!(html.contains("no uploads were captured"));
        assert!(html.contains("CLAIM HOLDS"));
        assert!(render(&[]).contains("No runs to show"));
    }

    #[test]
    fn error_runs_show_the_error() {
        let mut run = v2();
        run.verdict = Verdict::Error;
        run.error = Some("step 1 \"boot\" (wait_for, line 21): timed out".into());
        let html = page(&run, None);
        assert!(html.contains("b-error\">ERROR"));
        assert!(html.contains("The run could not be carried out"));
        assert!(html.contains("timed out"));
    }

    #[test]
    fn utc_and_ticks() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_288_419_948_634_688), "2026-11-21 19:13:39 UTC");
        assert_eq!(utc(951_782_400 * S), "2000-02-29 00:00:00 UTC");
        assert_eq!(tick_step(57.5), 10.0);
        assert_eq!(tick_step(8.0), 1.0);
        assert!((tick_step(0.05) - 0.01).abs() < 1e-12);
    }
}
