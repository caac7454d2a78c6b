//! Layered decoding: recognising the containers and encodings a payload is wrapped in, and opening them.
//!
//! A *layer* is one way bytes can be wrapped (gzip, base64, multipart, protobuf, …). A detector looks at a
//! buffer and, when it recognises its layer, returns the decoded [`Child`]ren, each named by a label that becomes
//! one link of a finding's encoding chain (`multipart[report]>gzip>raw`, `protobuf[1]>varint`). The children are
//! searched for canaries and opened again, to a bounded depth and within budgets; see the decoding graph in this
//! module's submodules. Everything here is sans-IO and panic-free on hostile input.
//!
//! - [`graph`]: the decoding graph ([`graph::explore`]), its limits and budgets, and the registry of detectors
//!   ([`graph::DETECTORS`]).
//! - [`codec`]: compression found by magic (gzip, zlib, raw deflate, zstd, xz, bzip2).
//! - [`container`]: multipart, zip, tar.
//! - [`text`]: JSON, XML, forms, cookies, percent-encoding, base64/base32/hex runs.
//! - [`structured`]: schema-less protobuf, MessagePack and CBOR (strings as children, numbers as decimal text).
//! - [`xor`]: single-byte XOR over short binary input (the key is named in the chain, `xor[0x5a]`).

pub mod codec;
pub mod container;
pub mod graph;
pub mod quiet;
pub mod structured;
pub mod text;
pub mod xor;

pub use graph::{explore, Budget, Explored, Hint, Limits, Node, Stop, Unopened};

/// One decoded piece of a layer, to be searched and opened again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// This layer's link of the encoding chain, e.g. `gzip`, `multipart[report]`, `protobuf[1]`, `varint`.
    pub label: String,
    /// The field path inside the parent when the layer knows it (a form key, a JSON path, a part name).
    pub field: Option<String>,
    /// The decoded bytes. Numbers found by structured layers (varints, fixed-width integers) are handed on as
    /// their decimal text, so a numeric canary (an IMEI, a phone number's digits) matches them as raw text.
    pub bytes: Vec<u8>,
}

pub mod opaque;
