//! The decoding graph: one input is opened layer by layer, breadth first, by the registered detectors, within a
//! depth limit and budgets; every decoded node is handed to the caller (who searches it for canaries), and
//! everything that was left unopened is returned with its reason, so that the caller can account it as unread.
//!
//! Costs are bounded three ways: per input (bytes decoded, work = bytes examined by detectors, children per node),
//! per capture (a [`Budget`] the caller keeps across inputs) and per child (a decompression cap). Detectors are
//! tried only after cheap checks (a magic, the first byte, an alphabet run), so an input without layers costs a
//! few linear passes.

use std::collections::VecDeque;

use super::structured::{self, Opened};
use super::{codec, container, text, xor, Child};

/// What the caller knows about an input, from its context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Hint<'a> {
    /// Nothing.
    #[default]
    None,
    /// The input's Content-Type (an HTTP body or a multipart part), e.g. `multipart/form-data; boundary=x`.
    ContentType(&'a str),
    /// A `Cookie` header value (`a=b; c=d`).
    Cookie,
}

/// Limits of one exploration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Layers opened on the way to a node at most (a node at this depth is searched, not opened).
    pub max_depth: usize,
    /// Bytes decoded for one input at most.
    pub input_bytes: u64,
    /// Work (bytes examined by detectors) for one input at most.
    pub input_work: u64,
    /// Decoded bytes of one child at most (decompression cap).
    pub child_cap: usize,
    /// Children opened per node at most.
    pub max_children: usize,
}

/// Children opened per node at most by default ([`Limits::max_children`]). The detectors that split a node into
/// many children (runs, form values, cookies, JSON and XML strings, multipart parts, archive members) stop one
/// past it, so that a node cut short always shows up here as children past the limit, reported unopened
/// (`decode_budget`), never as a silent cut.
pub const MAX_CHILDREN: usize = 4096;

/// The default depth limit: deep enough for what SDKs nest (a multipart part, gzip'd, a JSON document, a string
/// in it, base64 in that string is 5); deeper nesting is reported unread at the limit.
pub const DEFAULT_DEPTH: usize = 5;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: DEFAULT_DEPTH,
            input_bytes: 32 << 20,
            input_work: 256 << 20,
            child_cap: 8 << 20,
            max_children: MAX_CHILDREN,
        }
    }
}

/// What is left of a capture-wide budget (kept by the caller across inputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Bytes that may still be decoded.
    pub bytes: u64,
    /// Work (bytes examined by detectors) that may still be done.
    pub work: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            bytes: 1 << 30,
            work: 16 << 30,
        }
    }
}

/// Why something was left unopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stop {
    /// A budget (per input or per capture), the children limit, or a structured walker's bound ran out.
    Budget,
    /// A child was larger than the decompression cap: decoded only in part.
    Cap,
    /// The depth limit was reached on a node that still looks encoded.
    Depth,
}

/// A piece of the input left (partly) unopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unopened {
    /// The chain of the node that was not (fully) opened (`""` for the input itself).
    pub chain: String,
    /// Why.
    pub reason: Stop,
    /// Its size in bytes (for [`Stop::Cap`]: the size of the encoded input that was decoded only in part).
    pub bytes: u64,
}

/// One decoded node, as handed to the visitor.
#[derive(Debug)]
pub struct Node<'a> {
    /// Index of this node in this exploration (the input is 0).
    pub id: usize,
    /// The parent node's id.
    pub parent: usize,
    /// Layers opened to reach it (1 for the input's children).
    pub depth: usize,
    /// The chain of labels from the input, outermost first, joined by `>` (e.g. `multipart[report]>gzip`).
    pub chain: &'a str,
    /// The field path (joined with `/`) where known.
    pub field: Option<&'a str>,
    /// The decoded bytes.
    pub bytes: &'a [u8],
}

/// What an exploration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Explored {
    /// What was left unopened, and why.
    pub unopened: Vec<Unopened>,
    /// Nodes decoded.
    pub nodes: u64,
    /// Bytes decoded.
    pub decoded: u64,
    /// Work done (bytes examined).
    pub work: u64,
}

/// Context of one detector call.
#[derive(Debug)]
pub struct Cx<'a> {
    /// Decoded bytes one child may have at most.
    pub cap: usize,
    /// Set by a detector whose output was cut at `cap`.
    pub truncated: bool,
    /// The hint (only for the input itself; `None` below).
    pub hint: Hint<'a>,
    /// Set by a detector that recognised its layer but stopped at one of its own named bounds (a structured
    /// walker's nesting, values or children limit): the node is reported as unopened ([`Stop::Budget`]).
    pub exceeded: bool,
}

/// A detector: recognises its layer (cheaply first) and returns the decoded children, `None` when not its layer.
pub type Open = fn(&[u8], &mut Cx<'_>) -> Option<Vec<Child>>;

/// One registered layer.
#[derive(Debug, Clone, Copy)]
pub struct Detector {
    /// Name (for documentation and statistics).
    pub name: &'static str,
    /// The detector.
    pub open: Open,
    /// A structure that accounts for the whole node (multipart, JSON, a form): when it opens the node, the
    /// remaining detectors are not tried on it (its children are opened instead).
    pub exclusive: bool,
    /// Recognised by a magic or a framing (not an alphabet): a node at the depth limit that such a detector
    /// opens is reported as unopened.
    pub strong: bool,
}

/// Every layer the graph opens, tried in this order. Adding a layer is one line; a detector of the shape
/// `fn(&[u8]) -> Option<Vec<Child>>` is registered as `|b, _| path::open(b)`.
pub static DETECTORS: &[Detector] = &[
    Detector {
        name: "multipart",
        open: container::multipart,
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "json",
        open: text::json,
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "xml",
        open: text::xml,
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "cookie",
        open: text::cookie,
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "form",
        open: text::form,
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "zip",
        open: container::zip,
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "tar",
        open: container::tar,
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "gzip",
        open: codec::gzip,
        exclusive: false,
        strong: true,
    },
    Detector {
        name: "zlib",
        open: codec::zlib,
        exclusive: false,
        strong: true,
    },
    Detector {
        name: "deflate",
        open: codec::deflate,
        exclusive: false,
        strong: true,
    },
    Detector {
        name: "zstd",
        open: codec::zstd,
        exclusive: false,
        strong: true,
    },
    Detector {
        name: "xz",
        open: codec::xz,
        exclusive: false,
        strong: true,
    },
    Detector {
        name: "bzip2",
        open: codec::bzip2,
        exclusive: false,
        strong: true,
    },
    Detector {
        name: "protobuf",
        open: |b, cx| walked(structured::protobuf::examine(b), cx),
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "msgpack",
        open: |b, cx| walked(structured::msgpack::examine(b), cx),
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "cbor",
        open: |b, cx| walked(structured::cbor::examine(b), cx),
        exclusive: true,
        strong: true,
    },
    Detector {
        name: "url",
        open: text::percent,
        exclusive: false,
        strong: false,
    },
    Detector {
        name: "runs",
        open: text::runs,
        exclusive: false,
        strong: false,
    },
    // Last: only short binary input that nothing above opened as a structure.
    Detector {
        name: "xor",
        open: |b, _| xor::open(b),
        exclusive: false,
        strong: false,
    },
];

/// A structured walker's outcome as a detector's: its children; nothing (and [`Cx::exceeded`]) when a bound ran
/// out on input that looked like the format; `None` when not the format or nothing worth searching.
fn walked(o: Opened, cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    match o {
        Opened::Exceeded(_) => {
            cx.exceeded = true;
            Some(Vec::new())
        }
        o => o.into_children(),
    }
}

struct Pending {
    id: usize,
    depth: usize,
    chain: String,
    field: Option<String>,
    bytes: Vec<u8>,
}

/// Opens `input` layer by layer and hands every decoded node to `visit`. The input itself is not visited (the
/// caller has searched it). Never panics on hostile input; every limit that cut the work is in the result.
pub fn explore(
    input: &[u8],
    hint: Hint<'_>,
    limits: &Limits,
    budget: &mut Budget,
    visit: &mut dyn FnMut(&Node<'_>),
) -> Explored {
    if super::quiet::is_quiet(input) {
        // No layer can open anything here that is not the input's own bytes (see `quiet`).
        return Explored::default();
    }
    explore_all(input, hint, limits, budget, visit)
}

/// [`explore`] without the quiet-input test (the tests check on quiet inputs that it finds nothing new).
fn explore_all(
    input: &[u8],
    hint: Hint<'_>,
    limits: &Limits,
    budget: &mut Budget,
    visit: &mut dyn FnMut(&Node<'_>),
) -> Explored {
    let mut st = State {
        limits,
        budget,
        input_bytes: limits.input_bytes,
        input_work: limits.input_work,
        next_id: 1,
        ex: Explored::default(),
        queue: VecDeque::new(),
    };
    st.open(0, 0, "", None, input, hint, visit);
    while let Some(p) = st.queue.pop_front() {
        st.open(
            p.id,
            p.depth,
            &p.chain,
            p.field.as_deref(),
            &p.bytes,
            Hint::None,
            visit,
        );
    }
    st.ex
}

struct State<'a> {
    limits: &'a Limits,
    budget: &'a mut Budget,
    input_bytes: u64,
    input_work: u64,
    next_id: usize,
    ex: Explored,
    queue: VecDeque<Pending>,
}

impl State<'_> {
    fn unopened(&mut self, chain: &str, reason: Stop, bytes: u64) {
        self.ex.unopened.push(Unopened {
            chain: chain.to_string(),
            reason,
            bytes,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        id: usize,
        depth: usize,
        chain: &str,
        field: Option<&str>,
        bytes: &[u8],
        hint: Hint<'_>,
        visit: &mut dyn FnMut(&Node<'_>),
    ) {
        let limits = self.limits;
        if depth >= limits.max_depth {
            // Searched, not opened: report it if it still looks encoded.
            if looks_encoded(bytes, limits) {
                self.unopened(chain, Stop::Depth, bytes.len() as u64);
            }
            return;
        }
        for det in DETECTORS {
            let cost = bytes.len() as u64;
            if cost > self.input_work.min(self.budget.work)
                || self.input_bytes == 0
                || self.budget.bytes == 0
            {
                self.unopened(chain, Stop::Budget, bytes.len() as u64);
                return;
            }
            self.input_work -= cost;
            self.budget.work -= cost;
            self.ex.work += cost;
            let cap = (limits.child_cap as u64)
                .min(self.input_bytes)
                .min(self.budget.bytes)
                .try_into()
                .unwrap_or(usize::MAX);
            let mut cx = Cx {
                cap,
                truncated: false,
                hint,
                exceeded: false,
            };
            let Some(children) = (det.open)(bytes, &mut cx) else {
                continue;
            };
            if cx.truncated {
                let reason = if cap < limits.child_cap {
                    Stop::Budget
                } else {
                    Stop::Cap
                };
                self.unopened(chain, reason, bytes.len() as u64);
            }
            if cx.exceeded {
                self.unopened(chain, Stop::Budget, bytes.len() as u64);
            }
            let opened = !children.is_empty();
            if children.len() > limits.max_children {
                // More pieces than are opened: the node is reported, whatever the pieces past the limit hold
                // (empty ones included: the cut is what matters).
                self.unopened(chain, Stop::Budget, bytes.len() as u64);
            }
            for child in children.into_iter().take(limits.max_children) {
                if child.bytes.is_empty() || child.bytes == bytes {
                    continue;
                }
                let child_chain = link(chain, &child.label);
                let len = child.bytes.len() as u64;
                if len > self.input_bytes.min(self.budget.bytes) {
                    self.unopened(&child_chain, Stop::Budget, len);
                    continue;
                }
                self.input_bytes -= len;
                self.budget.bytes -= len;
                self.ex.decoded += len;
                self.ex.nodes += 1;
                let node = Pending {
                    id: self.next_id,
                    depth: depth + 1,
                    chain: child_chain,
                    field: match (field, child.field) {
                        (Some(a), Some(b)) => Some(format!("{a}/{b}")),
                        (a, b) => b.or(a.map(str::to_string)),
                    },
                    bytes: child.bytes,
                };
                self.next_id += 1;
                visit(&Node {
                    id: node.id,
                    parent: id,
                    depth: node.depth,
                    chain: &node.chain,
                    field: node.field.as_deref(),
                    bytes: &node.bytes,
                });
                self.queue.push_back(node);
            }
            if opened && det.exclusive {
                return;
            }
        }
    }
}

fn link(chain: &str, label: &str) -> String {
    if chain.is_empty() {
        label.to_string()
    } else {
        format!("{chain}>{label}")
    }
}

/// Whether a node at the depth limit still looks encoded: a strong detector opens it, or a text detector decodes
/// it to mostly printable text or to a known magic.
fn looks_encoded(bytes: &[u8], limits: &Limits) -> bool {
    // XOR is a guess that any short binary may satisfy by chance: it never makes a node at the limit unread.
    for det in DETECTORS.iter().filter(|d| d.name != "xor") {
        let mut cx = Cx {
            cap: limits.child_cap.min(64 << 10),
            truncated: false,
            hint: Hint::None,
            exceeded: false,
        };
        let Some(children) = (det.open)(bytes, &mut cx) else {
            continue;
        };
        let plausible = |c: &Child| {
            c.bytes != bytes
                && c.bytes.len() >= 8
                && (det.strong || mostly_printable(&c.bytes) || codec::has_magic(&c.bytes))
        };
        if children.iter().any(plausible) {
            return true;
        }
    }
    false
}

/// At least 3/4 of the bytes are printable ASCII or whitespace.
pub fn mostly_printable(b: &[u8]) -> bool {
    let n = b
        .iter()
        .filter(|&&c| (0x20..0x7f).contains(&c) || matches!(c, b'\t' | b'\r' | b'\n'))
        .count();
    n * 4 >= b.len() * 3
}

/// A cheap test (no decoding) whether bytes could hold a layer a detector opens: a compression or archive magic,
/// or a run of an encoding alphabet long enough to be opened. Used to decide whether bytes beyond an exploration
/// window must be accounted as unread.
pub fn could_hide_layers(b: &[u8]) -> bool {
    codec::find_magic(b) || text::has_long_run(b, 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn chains(input: &[u8], hint: Hint<'_>, limits: &Limits) -> (Vec<(String, Vec<u8>)>, Explored) {
        let mut out = Vec::new();
        let mut b = Budget::default();
        let ex = explore(input, hint, limits, &mut b, &mut |n| {
            out.push((n.chain.to_string(), n.bytes.to_vec()))
        });
        (out, ex)
    }

    fn has(nodes: &[(String, Vec<u8>)], chain: &str, needle: &[u8]) -> bool {
        nodes
            .iter()
            .any(|(c, b)| c == chain && b.windows(needle.len()).any(|w| w == needle))
    }

    #[test]
    fn base64_of_zlib_of_json_opens_three_deep() {
        let json = br#"{"imei":"356938035643809"}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap();
        let b64 = data_encoding::BASE64.encode(&z.finish().unwrap());
        let (nodes, ex) = chains(b64.as_bytes(), Hint::None, &Limits::default());
        assert!(has(&nodes, "base64>zlib", b"356938035643809"), "{nodes:?}");
        // A JSON string without escapes or further layers is not a node of its own (the document is searched).
        assert!(
            !nodes.iter().any(|(c, _)| c == "base64>zlib>json"),
            "{nodes:?}"
        );
        let nested = br#"{"payload":"{\"imei\":\"356938035643809\"}"}"#;
        let (nodes, _) = chains(nested, Hint::None, &Limits::default());
        assert!(
            has(&nodes, "json", br#"{"imei":"356938035643809"}"#),
            "{nodes:?}"
        );
        assert!(ex.unopened.is_empty(), "{:?}", ex.unopened);
    }

    /// Percent-decoding is for text: a compressed body that holds `%` and two hex digits by chance is not
    /// "decoded" into a damaged copy (which the other detectors then misread into unread noise), while
    /// percent-encoded text still is.
    #[test]
    fn binary_bytes_with_a_percent_sign_are_not_url_decoded() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let text: String = (0..400)
            .map(|i| format!("{{\"seq\":{i},\"v\":\"{}\"}}", i * 7919 % 1000))
            .collect();
        z.write_all(text.as_bytes()).unwrap();
        let mut binary = z.finish().unwrap();
        binary.extend_from_slice(b"\x00%41");
        let (nodes, ex) = chains(&binary, Hint::None, &Limits::default());
        // Only the printable run around the escape is decoded, never a damaged copy of the whole binary.
        let url: Vec<&Vec<u8>> = nodes
            .iter()
            .filter(|(c, _)| c == "url")
            .map(|(_, b)| b)
            .collect();
        assert!(url.iter().all(|b| b.len() < 64), "{url:?}");
        assert!(nodes.iter().any(|(c, _)| c == "zlib"), "{nodes:?}");
        assert!(ex.unopened.is_empty(), "{:?}", ex.unopened);
        // A value percent-encoded in full inside the binary is decoded on its own (the matcher's URL form
        // leaves digits as they are, so only this finds it); its neighbours are not glued to it.
        let mut framed = binary.clone();
        framed.extend_from_slice(
            b"\x01\x02imei=%33%35%36%39%33%38%30%33%35%36%34%33%38%30%39\xff\x00%37%37\x00",
        );
        let (nodes, _) = chains(&framed, Hint::None, &Limits::default());
        let url: Vec<_> = nodes.iter().filter(|(c, _)| c == "url").collect();
        assert_eq!(url.len(), 1, "{nodes:?}");
        assert_eq!(url[0].1, b"A\x00imei=356938035643809\x0077");
        let (nodes, _) = chains(
            b"id=%33%35%36%39%33%38%30%33%35%36",
            Hint::None,
            &Limits::default(),
        );
        assert!(has(&nodes, "form[id]", b"3569380356"), "{nodes:?}");
    }

    /// A node split into more pieces than the graph opens (form values, cookies, JSON strings, encoded runs,
    /// multipart parts) is never cut silently: what was not opened is reported (`Stop::Budget`).
    #[test]
    fn more_pieces_than_the_graph_opens_are_reported() {
        let n = MAX_CHILDREN + 10;
        let form: String = (0..n).map(|i| format!("k{i}=%41%42&")).collect();
        let cookie: String = (0..n)
            .map(|i| format!("c{i}=QUJDREVGR0hJSktMTU5PUA; "))
            .collect();
        let json = format!(
            "[{}\"x\"]",
            (0..n).map(|i| format!("\"%41{i}\",")).collect::<String>()
        );
        let runs: String = (0..n)
            .map(|i| format!("QUJDREVGR0hJSktMTU5P{i:04} "))
            .collect();
        let multipart: String = (0..n)
            .map(|i| format!("--b\r\nContent-Disposition: form-data; name=\"p{i}\"\r\n\r\nv\r\n"))
            .collect::<String>()
            + "--b--\r\n";
        for (name, input, hint) in [
            (
                "form",
                form.as_bytes(),
                Hint::ContentType("application/x-www-form-urlencoded"),
            ),
            ("cookie", cookie.as_bytes(), Hint::Cookie),
            ("json", json.as_bytes(), Hint::None),
            ("runs", runs.as_bytes(), Hint::None),
            (
                "multipart",
                multipart.as_bytes(),
                Hint::ContentType("multipart/form-data; boundary=b"),
            ),
        ] {
            let (_, ex) = chains(input, hint, &Limits::default());
            assert!(
                ex.unopened.iter().any(|u| u.reason == Stop::Budget),
                "{name}: {:?}",
                ex.unopened.len()
            );
        }
        // Below the limit nothing is reported.
        let few: String = (0..100).map(|i| format!("k{i}=%41%42&")).collect();
        let (_, ex) = chains(few.as_bytes(), Hint::None, &Limits::default());
        assert!(ex.unopened.is_empty(), "{:?}", ex.unopened);
    }

    #[test]
    fn depth_limit_on_an_encoded_child_is_reported() {
        let inner = gz(b"hello the secret value is here");
        let twice = gz(&gz(&inner));
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let (nodes, ex) = chains(&twice, Hint::None, &limits);
        assert!(nodes.iter().any(|(c, _)| c == "gzip>gzip"));
        assert!(
            ex.unopened
                .iter()
                .any(|u| u.reason == Stop::Depth && u.chain == "gzip>gzip"),
            "{:?}",
            ex.unopened
        );
    }

    #[test]
    fn decompression_cap_and_budgets_are_reported() {
        let big = gz(&vec![b'a'; 1 << 20]);
        let limits = Limits {
            child_cap: 64 << 10,
            ..Limits::default()
        };
        let (_, ex) = chains(&big, Hint::None, &limits);
        assert!(
            ex.unopened.iter().any(|u| u.reason == Stop::Cap),
            "{:?}",
            ex.unopened
        );
        let mut b = Budget {
            bytes: 1000,
            work: 1 << 30,
        };
        let ex = explore(&big, Hint::None, &Limits::default(), &mut b, &mut |_| {});
        assert!(
            ex.unopened.iter().any(|u| u.reason == Stop::Budget),
            "{:?}",
            ex.unopened
        );
        let mut b = Budget {
            bytes: 1 << 30,
            work: 10,
        };
        let ex = explore(&big, Hint::None, &Limits::default(), &mut b, &mut |_| {});
        assert!(
            ex.unopened.iter().any(|u| u.reason == Stop::Budget),
            "{:?}",
            ex.unopened
        );
    }

    #[test]
    fn plain_text_and_random_binary_open_nothing_deep() {
        let (nodes, ex) = chains(
            b"GET / HTTP/1.1 nothing encoded here, just words and numbers 12345",
            Hint::None,
            &Limits::default(),
        );
        assert!(nodes.is_empty(), "{nodes:?}");
        assert!(ex.unopened.is_empty());
        let mut x = 0x9e3779b97f4a7c15u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (_, ex) = chains(&random, Hint::None, &Limits::default());
        assert!(ex.unopened.is_empty(), "{:?}", ex.unopened);
    }

    #[test]
    fn on_quiet_inputs_the_whole_graph_finds_only_the_inputs_own_bytes() {
        // The premise of skipping quiet inputs (layers::quiet): every node the full graph decodes from one is a
        // piece of the input itself, already searched by the caller.
        let mut rng = crate::testing::Rng(0x2545_f491_4f6c_dd1d);
        let words = [
            "imei",
            "356938035643809",
            "Alice",
            "Canary",
            "cpu.temperature",
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            " ",
            "\n",
            "--",
            "Content-Disposition: form-data; name",
            "a;b",
            "/v1/up",
            "[1,2]",
            "\"{",
            "\"[",
            "12345678901234",
            "x-y_z",
            "0",
            "\"\"",
        ];
        let hints = [
            Hint::None,
            Hint::Cookie,
            Hint::ContentType("application/json"),
            Hint::ContentType("multipart/form-data; boundary=b"),
            Hint::ContentType("application/x-www-form-urlencoded"),
        ];
        let mut checked = 0;
        for i in 0..8000 {
            let n = 1 + rng.below(40);
            let mut text = String::new();
            for _ in 0..n {
                text.push_str(words[rng.below(words.len())]);
            }
            let input = text.as_bytes();
            if !super::super::quiet::is_quiet(input) {
                continue;
            }
            let mut b = Budget::default();
            let mut foreign = Vec::new();
            explore_all(
                input,
                hints[i % hints.len()],
                &Limits::default(),
                &mut b,
                &mut |node| {
                    let inside = node.bytes.is_empty()
                        || input.windows(node.bytes.len()).any(|w| w == node.bytes);
                    if !inside {
                        foreign.push((node.chain.to_string(), node.bytes.to_vec()));
                    }
                },
            );
            assert!(foreign.is_empty(), "{text:?} decoded to {foreign:?}");
            checked += 1;
        }
        assert!(checked > 1000, "only {checked} quiet inputs were made");
    }
}
