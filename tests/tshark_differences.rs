//! Where telltale and tshark (Debian's 4.0.17) disagree on the real-capture corpus, and we judge telltale right.
//!
//! `ci/corpus-check` compares telltale's DNS names, TLS SNIs and HTTP requests with `tshark -T fields` on
//! ../shared/corpus and tolerates exactly the differences listed in its KNOWN_TSHARK_DIFFERENCES. Each of them is
//! demonstrated here on a capture this test writes, with the reason. A privacy analyser must not hide a request
//! that a server would act on: where the framing is invalid or ambiguous, telltale reports what follows.

mod common;

use common::*;
use telltale::synth::{Side, Synth, Tcp};

fn paths(r: &telltale::Report) -> Vec<String> {
    r.http_requests
        .iter()
        .map(|h| format!("{} {}", h.method, h.target))
        .collect()
}

/// zeek/http/261/variant-01-chunk_2pow64_overflow.pcap. A chunk size of 2^64 does not fit any integer a
/// server uses; RFC 9112 §7.1 requires recipients to guard against such overflow, i.e. to treat it as invalid
/// framing. telltale then finds the complete GET that follows. tshark 4.0 keeps chunk sizes in 32 bits: 2^64
/// saturates to 0xFFFFFFFF, the rest of the stream becomes "chunk data", and the GET disappears (its `-V` output
/// ends in "[Malformed Packet: HTTP]").
#[test]
fn chunk_size_overflow_does_not_hide_the_next_request() {
    let req = b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n\r\nGET /smuggled-chunk-2pow64 HTTP/1.1\r\nHost: target\r\n\r\n";
    let r = analyze(conversation(req, 1460));
    assert_eq!(paths(&r), ["POST /", "GET /smuggled-chunk-2pow64"]);
}

/// zeek/http/261/variant-09-te_obs_fold.pcap. `Transfer-Encoding:` continued on the next line by obsolete line
/// folding. RFC 9112 §5.2: a server either rejects the message or replaces the fold by spaces — the header then
/// says `chunked`, the body is the single last chunk `0`, and the GET is the next request. tshark 4.0 ends the
/// headers at the empty `Transfer-Encoding:` line and shows the fold, the chunk and the GET as 65 bytes of body.
#[test]
fn folded_transfer_encoding_is_unfolded() {
    let req = b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\nGET /smuggled-obsfold HTTP/1.1\r\nHost: target\r\n\r\n";
    let r = analyze(conversation(req, 1460));
    assert_eq!(paths(&r), ["POST /", "GET /smuggled-obsfold"]);
    assert_eq!(
        r.http_requests[0].body_bytes, 5,
        "the body is the last chunk only"
    );
}

/// zeek/http/putty-upload.pcap. An upload whose body is cut short (the server answered and reset the
/// connection after 82,789 of 1,648,120 body bytes). The head is complete, so the request happened: telltale
/// reports it, with the body bytes seen. tshark 4.0 shows no HTTP request at all because its body reassembly
/// never completes (with `-o http.desegment_body:FALSE` it does show `POST /upload`).
#[test]
fn upload_cut_short_is_still_reported() {
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), "127.0.0.1:8080".parse().unwrap(), 1, 1);
    t.open(&mut s);
    let mut req =
        b"POST /upload HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 1648120\r\n\r\n"
            .to_vec();
    req.extend(std::iter::repeat_n(b'x', 20_000));
    t.send(&mut s, Side::Client, &req, 1460);
    t.send(
        &mut s,
        Side::Server,
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
        1460,
    );
    let rst = s.tcp_frame(t.server, t.client, t.sseq, t.cseq, "RA", b"");
    s.frame(&rst);
    let r = analyze(s.finish());
    assert_eq!(paths(&r), ["POST /upload"]);
    assert_eq!(r.http_requests[0].host, "localhost:8080");
    assert_eq!(r.http_requests[0].status, Some(413));
    assert_eq!(r.http_requests[0].body_bytes, 20_000);
}

/// zeek/http/connect-with-smtp.pcap: not a mistake of either tool but a choice. `http.host` in tshark is the Host
/// header only; telltale's `host` of a CONNECT without a Host header is the authority in the request target
/// (RFC 9112 §3.2.3), which is the destination a proxy connects to — the name a privacy report needs.
#[test]
fn connect_host_is_the_target_authority() {
    let req = b"CONNECT mailin03.sul.t-online.de:25 HTTP/1.0\r\n\r\n";
    let r = analyze(conversation(req, 1460));
    assert_eq!(r.http_requests[0].host, "mailin03.sul.t-online.de:25");
    assert_eq!(r.http_requests[0].target, "mailin03.sul.t-online.de:25");
}
