//! Reading the bearer token out of a request (RFC 6750 §2.1, §3.1).
//!
//! Only the `Authorization` header is a credential source. Query parameters, form bodies
//! and cookies are never read as credentials (they leak through logs and invite CSRF);
//! a query `access_token` next to a header token is refused as "more than one method".

use axum::http::{HeaderMap, Uri, header::AUTHORIZATION};

use crate::rejection::RequestError;

/// What the request's credentials are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// No `Authorization` header, or one with another scheme (`Basic`, `DPoP`, …).
    None,
    /// A syntactically valid bearer token (RFC 6750 `b64token`).
    Bearer(&'a str),
    /// A token sent with the `DPoP` scheme (RFC 9449 §7.1), same syntax; only read for an
    /// authority with DPoP on.
    Dpop(&'a str),
}

/// Extracts the bearer token, enforcing RFC 6750's syntax:
/// `credentials = "Bearer" 1*SP b64token`, the scheme compared case-insensitively.
pub(crate) fn bearer_token<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<Credentials<'a>, RequestError> {
    token(headers, uri, false)
}

/// Extracts the access token of the `Bearer` scheme, or with `dpop` of the `DPoP` scheme
/// too (`credentials = "DPoP" 1*SP token68`, RFC 9449 §7.1), with the same syntax checks.
pub(crate) fn token<'a>(headers: &'a HeaderMap, uri: &Uri, dpop: bool) -> Result<Credentials<'a>, RequestError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Credentials::None);
    };
    if values.next().is_some() {
        return Err(RequestError::MultipleAuthorizationHeaders);
    }
    let bytes = value.as_bytes();
    // Without an early exit, so that the compiler checks many bytes per instruction: the
    // header carries a whole token, hundreds of bytes, on every request.
    let visible_ascii = bytes.iter().fold(true, |ok, &b| ok & ((b == b'\t') | ((0x20..0x7f).contains(&b))));
    if !visible_ascii {
        return Err(RequestError::NonAsciiHeader);
    }
    // Visible ASCII, SP and HTAB only, so this cannot fail; treat a failure as malformed.
    let value = std::str::from_utf8(bytes).map_err(|_| RequestError::NonAsciiHeader)?;

    let scheme_end = value.find([' ', '\t']).unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    let is_dpop = dpop && scheme.eq_ignore_ascii_case("dpop");
    if !(is_dpop || scheme.eq_ignore_ascii_case("bearer")) {
        return Ok(Credentials::None);
    }
    if rest.starts_with('\t') {
        return Err(RequestError::MalformedCredentials);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(RequestError::EmptyToken);
    }
    if !is_b64token(token) {
        return Err(RequestError::MalformedCredentials);
    }
    if has_query_access_token(uri) {
        return Err(RequestError::MultipleMethods);
    }
    Ok(if is_dpop { Credentials::Dpop(token) } else { Credentials::Bearer(token) })
}

/// The token of the common request, `Authorization: Bearer <token>` (one header, the scheme
/// in any case, then spaces), if the request takes that form and has no `access_token`
/// query parameter; `None` for everything else. Its syntax is **not** checked, and it is
/// not even read as text: it is only
/// for looking the token up among tokens that passed [`token`]'s checks (the
/// verified-token cache, which holds only compact JWS, three base64url segments joined by
/// dots). An exact match is a token [`token`] accepts, the same `Bearer` credential: a
/// header of this form whose token has that syntax is visible ASCII with a `b64token`.
/// Anything that is not a match goes through [`token`].
///
/// The checks it skips were the largest cost of a request whose token the cache already
/// knew: reading every byte of the header twice (BENCHMARKS.md).
pub(crate) fn plain_bearer<'a>(headers: &'a HeaderMap, uri: &Uri) -> Option<&'a [u8]> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?.as_bytes();
    if values.next().is_some() {
        return None;
    }
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.starts_with(b" ") {
        return None;
    }
    let start = rest.iter().position(|&b| b != b' ')?;
    let token = rest.get(start..)?;
    (!has_query_access_token(uri)).then_some(token)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    // Branch-free per byte and without an early exit: about two instructions a byte,
    // where a byte-wise `all` with `||` took nine and was the largest cost of a request
    // whose token the cache already knows (callgrind, BENCHMARKS.md).
    let b64 = |b: u8| {
        (b | 0x20).is_ascii_lowercase()
            | b.is_ascii_digit()
            | (b == b'-')
            | (b == b'.')
            | (b == b'_')
            | (b == b'~')
            | (b == b'+')
            | (b == b'/')
    };
    !body.is_empty() && body.as_bytes().iter().fold(true, |ok, &b| ok & b64(b))
}

/// Whether the query has an `access_token` parameter, its name compared after
/// percent-decoding as a form decoder would (`access%5Ftoken`, `%61ccess_token`).
fn has_query_access_token(uri: &Uri) -> bool {
    uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or(pair);
            percent_decoded_eq(name.as_bytes(), b"access_token")
        })
    })
}

/// Whether `encoded`, percent-decoded, is exactly `wanted`.
fn percent_decoded_eq(encoded: &[u8], wanted: &[u8]) -> bool {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let (mut rest, mut wanted) = (encoded, wanted);
    loop {
        let escape = match rest {
            [b'%', hi, lo, tail @ ..] => hex(*hi).zip(hex(*lo)).map(|(hi, lo)| (hi << 4 | lo, tail)),
            _ => None,
        };
        let Some((byte, tail)) = escape.or_else(|| rest.split_first().map(|(b, tail)| (*b, tail))) else {
            return wanted.is_empty();
        };
        let Some((&expected, more)) = wanted.split_first() else {
            return false;
        };
        if byte != expected {
            return false;
        }
        (rest, wanted) = (tail, more);
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn extract(values: &[&[u8]], uri: &str) -> Result<Credentials<'static>, RequestError> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        let headers: &'static HeaderMap = Box::leak(Box::new(headers));
        bearer_token(headers, &uri.parse().unwrap())
    }

    #[test]
    fn scheme_is_case_insensitive_and_several_spaces_are_allowed() {
        assert_eq!(extract(&[b"bearer abc"], "/"), Ok(Credentials::Bearer("abc")));
        assert_eq!(extract(&[b"BEARER   a.b.c"], "/"), Ok(Credentials::Bearer("a.b.c")));
    }

    #[test]
    fn other_schemes_are_no_credentials() {
        assert_eq!(extract(&[b"Basic dXNlcjpwdw=="], "/"), Ok(Credentials::None));
        assert_eq!(extract(&[b"DPoP abc"], "/"), Ok(Credentials::None));
        assert_eq!(extract(&[b"Bearerx abc"], "/"), Ok(Credentials::None));
        assert_eq!(extract(&[], "/?access_token=abc"), Ok(Credentials::None));
    }

    #[test]
    fn every_byte_is_classified_as_rfc_6750_says() {
        for b in 0..=255u8 {
            let b64token_char = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            let token = [b'a', b, b'a'];
            let text = std::str::from_utf8(&token);
            assert_eq!(text.is_ok_and(is_b64token), b64token_char, "byte {b:#04x}");
            let header = [b"Bearer a".as_slice(), &[b], b"a"].concat();
            if HeaderValue::from_bytes(&header).is_err() {
                continue; // control characters never reach a handler
            }
            let expected = if b == b'\t' || (0x20..0x7f).contains(&b) {
                if b64token_char { Ok(()) } else { Err(RequestError::MalformedCredentials) }
            } else {
                Err(RequestError::NonAsciiHeader)
            };
            assert_eq!(extract(&[&header], "/").map(|_| ()), expected, "byte {b:#04x}");
        }
    }

    /// `plain_bearer` skips the syntax checks for tokens found in the verified-token
    /// cache, which holds only compact JWS: for every header and query it reads such a
    /// token from, `token` must accept the same token as the same credential.
    #[test]
    fn a_compact_jws_read_by_plain_bearer_is_the_token_the_full_checks_accept() {
        let jws_syntax = |t: &str| {
            t.split('.').count() == 3
                && t.split('.')
                    .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        };
        let schemes = ["Bearer", "bearer", "BEARER", "bEaReR", "Bearerx", "Bearer,", "Basic", "DPoP", "Bear"];
        let separators = ["", " ", "   ", "\t", " \t", "\t ", ","];
        let mut tokens: Vec<String> = vec!["a.b.c".into(), "eyJ.eyJ.sig-_".into(), "a.b".into(), "a..c".into()];
        for b in 0..=255u8 {
            tokens.push(format!("a.b{}.c", char::from(b)));
            tokens.push(format!("a.b.c{}", char::from(b)));
        }
        let uris: [Uri; 5] = ["/", "/x?y=1", "/x?access_token=t", "/x?a=1&%61ccess_token=t", "/x?access_tokens=t"]
            .map(|u| u.parse().unwrap());
        let mut checked = 0;
        for scheme in schemes {
            for separator in separators {
                for token in &tokens {
                    let Ok(value) = HeaderValue::from_bytes(format!("{scheme}{separator}{token}").as_bytes()) else {
                        continue;
                    };
                    for count in [1, 2] {
                        let mut headers = HeaderMap::new();
                        for _ in 0..count {
                            headers.append(AUTHORIZATION, value.clone());
                        }
                        for uri in &uris {
                            let Some(fast) = plain_bearer(&headers, uri) else { continue };
                            let Ok(fast) = std::str::from_utf8(fast) else { continue };
                            if jws_syntax(fast) {
                                assert_eq!(token_of(&headers, uri), Ok(Credentials::Bearer(fast)), "{value:?} {uri}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        // Four Bearer spellings × three space separators × the tokens of JWS form × the
        // three URIs without an access_token parameter.
        assert!(checked >= 4 * 3 * 60 * 3, "{checked}");
    }

    fn token_of<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<Credentials<'a>, RequestError> {
        token(headers, uri, true)
    }

    #[test]
    fn the_dpop_scheme_is_read_only_when_asked_for() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("dpop  a.b.c"));
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(token(&headers, &uri, true), Ok(Credentials::Dpop("a.b.c")));
        assert_eq!(token(&headers, &uri, false), Ok(Credentials::None));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("DPoP a b"));
        assert_eq!(token(&headers, &uri, true), Err(RequestError::MalformedCredentials));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(token(&headers, &uri, true), Ok(Credentials::Bearer("abc")));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(extract(&[b"Bearer"], "/"), Err(RequestError::EmptyToken));
        assert_eq!(extract(&[b"Bearer\tabc"], "/"), Err(RequestError::MalformedCredentials));
        assert_eq!(extract(&[b"Bearer a,b"], "/"), Err(RequestError::MalformedCredentials));
        assert_eq!(extract(&[b"Bearer a b"], "/"), Err(RequestError::MalformedCredentials));
        assert_eq!(extract(&[b"Bearer ===="], "/"), Err(RequestError::MalformedCredentials));
        assert_eq!(extract(&[b"Bearer a\xffb"], "/"), Err(RequestError::NonAsciiHeader));
        assert_eq!(extract(&[b"Bearer a", b"Bearer b"], "/"), Err(RequestError::MultipleAuthorizationHeaders));
        assert_eq!(extract(&[b"Bearer a"], "/x?y=1&access_token=b"), Err(RequestError::MultipleMethods));
        for query in ["access%5Ftoken=b", "access%5ftoken", "%61ccess_token=b", "%61%63%63%65%73%73%5f%74%6f%6b%65%6e"]
        {
            assert_eq!(extract(&[b"Bearer a"], &format!("/?{query}")), Err(RequestError::MultipleMethods), "{query}");
        }
        for query in ["access%5Ftokens=b", "access%token=b", "access_toke%6", "xaccess_token=b"] {
            assert_eq!(extract(&[b"Bearer a"], &format!("/?{query}")), Ok(Credentials::Bearer("a")), "{query}");
        }
    }

    /// Text that is valid UTF-8 but not visible ASCII (a single byte above 0x7f is never
    /// UTF-8, so `every_byte_is_classified_as_rfc_6750_says` cannot show this): refused as
    /// non-ASCII, wherever it sits in the header, not read as a malformed token.
    #[test]
    fn a_header_with_utf8_text_beyond_ascii_is_refused_as_non_ascii() {
        for value in ["Bearer a\u{e4}b", "Bearer \u{e4}", "Be\u{e4}rer abc", "Bearer abc\u{2003}", "Basic \u{20ac}"] {
            assert_eq!(extract(&[value.as_bytes()], "/"), Err(RequestError::NonAsciiHeader), "{value}");
        }
    }
}
