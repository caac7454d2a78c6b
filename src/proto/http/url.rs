//! URL helpers: splitting a request target into path and query, the authority of an
//! absolute-form or CONNECT target, percent-decoding and query-string splitting.

/// Length of a `scheme://` prefix of an absolute-form target, if it has one.
fn scheme_len(target: &str) -> Option<usize> {
    let i = target.find("://")?;
    let scheme = target.get(..i)?;
    let valid = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    valid.then_some(i + 3)
}

/// `(path, query)` of a request target.
pub(super) fn split_target(method: &str, target: &str) -> (String, Option<String>) {
    if method.eq_ignore_ascii_case("CONNECT") {
        return (target.to_owned(), None);
    }
    let rest = match scheme_len(target) {
        Some(n) => {
            let after = target.get(n..).unwrap_or_default();
            let auth_end = after.find(['/', '?', '#']).unwrap_or(after.len());
            after.get(auth_end..).unwrap_or_default()
        }
        None => target,
    };
    let without_fragment = rest.split('#').next().unwrap_or_default();
    let (path, query) = match without_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (without_fragment, None),
    };
    let path = if path.is_empty() && scheme_len(target).is_some() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    (path, query)
}

/// Host from an absolute-form (`http://host/...`) or authority-form (CONNECT) target.
pub(super) fn target_authority(method: &str, target: &str) -> Option<String> {
    if method.eq_ignore_ascii_case("CONNECT") {
        return (!target.is_empty()).then(|| target.to_owned());
    }
    let after = target.get(scheme_len(target)?..)?;
    let auth = after.get(..after.find(['/', '?', '#']).unwrap_or(after.len()))?;
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    (!auth.is_empty()).then(|| auth.to_owned())
}

/// Percent-decodes `input`; malformed escapes (`%zz`, a trailing `%4`) are kept literally.
/// With `plus_as_space`, `+` becomes a space (form encoding); an escaped `%2B` stays `+`.
pub fn percent_decode(input: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    if !plus_as_space {
        out.extend(percent_encoding::percent_decode(input));
        return out;
    }
    // `+` is not a hex digit, so no escape spans one: decoding the pieces between them is the
    // same as decoding the whole with `+` read as a space.
    for (i, piece) in input.split(|b| *b == b'+').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend(percent_encoding::percent_decode(piece));
    }
    out
}

/// Splits a query string or `application/x-www-form-urlencoded` body on `&` into
/// `(name, value)` pairs, percent-decoded with `+` as space (names lossily as UTF-8).
/// Empty pieces are skipped; a piece without `=` has an empty value.
pub fn split_query(query: &str) -> Vec<(String, Vec<u8>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let name = String::from_utf8_lossy(&percent_decode(name.as_bytes(), true)).into_owned();
            (name, percent_decode(value.as_bytes(), true))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::testutil::*;
    use crate::proto::http::{HeadKind, HttpParser, Role};

    #[test]
    fn percent_decode_edge_cases() {
        assert_eq!(percent_decode(b"%41%42c", false), b"ABc");
        assert_eq!(percent_decode(b"%6a%6A", false), b"jj");
        assert_eq!(percent_decode(b"%zz", false), b"%zz");
        assert_eq!(percent_decode(b"%4", false), b"%4");
        assert_eq!(percent_decode(b"%", false), b"%");
        assert_eq!(percent_decode(b"%%41", false), b"%A");
        assert_eq!(percent_decode(b"a+b", true), b"a b");
        assert_eq!(percent_decode(b"a+b", false), b"a+b");
        assert_eq!(percent_decode(b"%2B", true), b"+");
        assert_eq!(percent_decode(b"%ff", false), vec![0xff]);
    }

    #[test]
    fn split_query_edge_cases() {
        let got = split_query("a=1&b=%zz&&c&d=x+y&=v&e=%4&f=a=b&n%61me=%41");
        let want: Vec<(String, Vec<u8>)> = vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"%zz".to_vec()),
            ("c".into(), b"".to_vec()),
            ("d".into(), b"x y".to_vec()),
            ("".into(), b"v".to_vec()),
            ("e".into(), b"%4".to_vec()),
            ("f".into(), b"a=b".to_vec()),
            ("name".into(), b"A".to_vec()),
        ];
        assert_eq!(got, want);
        assert!(split_query("").is_empty());
    }

    #[test]
    fn absolute_form_and_connect_targets() {
        let evs = run(
            Role::Client,
            b"GET http://user@Example.com:8080/p/q?x=1#f HTTP/1.1\r\n\r\n",
            false,
        );
        let h = heads(&evs)[0];
        assert_eq!(h.host.as_deref(), Some("Example.com:8080"));
        assert!(
            matches!(&h.kind, HeadKind::Request { path, query, .. } if path == "/p/q" && query.as_deref() == Some("x=1"))
        );
        let evs = run(
            Role::Client,
            b"GET http://h?y HTTP/1.1\r\nHost: other\r\n\r\n",
            false,
        );
        let h = heads(&evs)[0];
        assert_eq!(h.host.as_deref(), Some("other"));
        assert!(
            matches!(&h.kind, HeadKind::Request { path, query, .. } if path == "/" && query.as_deref() == Some("y"))
        );

        // CONNECT: the rest of the client stream is a tunnel.
        let mut data = b"CONNECT h.example:443 HTTP/1.1\r\n\r\n".to_vec();
        data.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x05, b'\n', b'G']);
        let evs = run(Role::Client, &data, true);
        assert_eq!(heads(&evs)[0].host.as_deref(), Some("h.example:443"));
        assert!(desyncs(&evs).is_empty());
        let mut p = HttpParser::new(Role::Server);
        p.push_request_method("CONNECT");
        let mut evs = Vec::new();
        feed(
            &mut p,
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03garbage",
            &mut evs,
        );
        assert!(desyncs(&evs).is_empty());
        assert_eq!(ends(&evs), vec![(0, 0, true, None, false)]);
    }
}
