//! The JWS compact serialization (RFC 7515 §7.1) and the JOSE header (RFC 7515 §4.1).
//!
//! Everything here runs on unverified input, so it may only reject (security spec G3).
//! The token is split on exactly two dots, each segment must be canonical unpadded
//! base64url, and the header is a small strict JSON object whose `alg` is allowed and
//! which carries none of the parameters scopegate refuses.

use arc_swap::ArcSwapOption;
use std::{borrow::Cow, sync::Arc};

use crate::{
    algorithm::Algorithm,
    b64::{self, b64url_decode, b64url_decode_into},
    config::MAX_KID_LEN,
    json::{Member, Sink},
    rejection::TokenError,
};

/// The longest header segment accepted (security spec case 22).
pub(crate) const MAX_HEADER_SEGMENT: usize = 2048;

/// The three segments of a compact JWS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compact<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header "." payload`: the bytes the signature covers.
    pub(crate) signing_input: &'a str,
}

/// Splits a token into exactly three non-empty segments (cases 17-19). Base64 validity is
/// checked when each segment is decoded.
pub(crate) fn split(token: &str) -> Result<Compact<'_>, TokenError> {
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(TokenError::Malformed);
    };
    let header = token.get(..first).unwrap_or_default();
    let payload = token.get(first + 1..second).unwrap_or_default();
    let signature = token.get(second + 1..).unwrap_or_default();
    let signing_input = token.get(..second).unwrap_or_default();
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Compact { header, payload, signature, signing_input })
}

/// How the header types the token (RFC 9068 §4, RFC 8725 §3.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Typ {
    /// `at+jwt` or `application/at+jwt`, in any ASCII case.
    AccessToken,
    /// `JWT` or `application/jwt`: how ID tokens and legacy JWTs are typed.
    Jwt,
    /// No `typ`.
    Absent,
    /// Any other type (`logout+jwt`, `dpop+jwt`, `at+jwt;v=1`, …).
    Other,
}

/// The header members the verifier uses, borrowed from the decoded header.
#[derive(Debug, Clone)]
pub(crate) struct Header<'h> {
    pub(crate) alg: Algorithm,
    pub(crate) typ: Typ,
    pub(crate) kid: Option<Cow<'h, str>>,
}

/// Header parameters that are refused outright: extensions scopegate does not
/// understand (`crit`, `b64`), JWE or nesting markers (`enc`, `zip`, `cty`), and keys or
/// key URLs carried by the token itself (`jwk`, `jku`, `x5u`).
const REFUSED_PARAMETERS: [&str; 8] = ["crit", "b64", "cty", "enc", "zip", "jwk", "jku", "x5u"];

/// The most bytes a header segment of [`MAX_HEADER_SEGMENT`] characters decodes to.
pub(crate) const MAX_HEADER_BYTES: usize = MAX_HEADER_SEGMENT / 4 * 3;

/// Room for the longest signature accepted, an RSA-8192 signature (1024 bytes), and a
/// little more (a longer segment is refused as malformed, never truncated).
pub(crate) const MAX_SIGNATURE_BYTES: usize = 1040;

/// Decodes the signature segment into `buffer` (no allocation); `None` if it is not
/// strict base64url or longer than any supported signature.
pub(crate) fn decode_signature<'b>(segment: &str, buffer: &'b mut [u8; MAX_SIGNATURE_BYTES]) -> Option<&'b [u8]> {
    b64url_decode_into(segment.as_bytes(), buffer)
}

/// Decodes the header segment into `buffer` (no allocation), returning the JSON bytes.
pub(crate) fn decode_header<'b>(segment: &str, buffer: &'b mut [u8; MAX_HEADER_BYTES]) -> Result<&'b [u8], TokenError> {
    if segment.len() > MAX_HEADER_SEGMENT {
        return Err(TokenError::Malformed);
    }
    b64url_decode_into(segment.as_bytes(), buffer).ok_or(TokenError::Malformed)
}

/// Room for the claim set of a typical token, decoded on the stack (longer ones are
/// decoded into a `Vec`).
pub(crate) const PAYLOAD_BUFFER_BYTES: usize = 2048;

/// Decodes the payload segment as UTF-8 text, into `buffer` when it fits (no allocation);
/// `None` if it is not strict base64url or not UTF-8.
pub(crate) fn decode_payload<'b>(segment: &str, buffer: &'b mut [u8; PAYLOAD_BUFFER_BYTES]) -> Option<Cow<'b, str>> {
    if b64::decoded_len(segment.as_bytes())? > PAYLOAD_BUFFER_BYTES {
        let bytes = b64url_decode(segment.as_bytes())?;
        return String::from_utf8(bytes).ok().map(Cow::Owned);
    }
    std::str::from_utf8(b64url_decode_into(segment.as_bytes(), buffer)?).ok().map(Cow::Borrowed)
}

#[derive(Default)]
struct HeaderMembers<'h> {
    alg: Option<Member<'h>>,
    typ: Option<Member<'h>>,
    kid: Option<Member<'h>>,
    refused: bool,
}

impl<'h> Sink<'h> for HeaderMembers<'h> {
    fn wants(&self, name: &str) -> bool {
        matches!(name, "alg" | "typ" | "kid")
    }

    fn member(&mut self, name: &str, value: Option<Member<'h>>) {
        match name {
            "alg" => self.alg = value,
            "typ" => self.typ = value,
            "kid" => self.kid = value,
            _ => self.refused |= REFUSED_PARAMETERS.contains(&name),
        }
    }
}

/// Checks the decoded header (cases 21-60).
pub(crate) fn parse_header<'h>(json: &'h [u8], allowed: &[Algorithm]) -> Result<Header<'h>, TokenError> {
    let mut header = HeaderMembers::default();
    crate::json::read_object(json, &mut header).map_err(|_| TokenError::Malformed)?;

    let alg = match &header.alg {
        Some(Member::Str(name)) => Algorithm::from_name(name).filter(|alg| allowed.contains(alg)),
        _ => None,
    }
    .ok_or(TokenError::AlgorithmNotAllowed)?;

    if header.refused {
        return Err(TokenError::UnsupportedHeader);
    }

    let kid = match header.kid {
        None => None,
        Some(Member::Str(kid)) if kid.len() <= MAX_KID_LEN => Some(kid),
        Some(_) => return Err(TokenError::Malformed),
    };

    let typ = match &header.typ {
        None => Typ::Absent,
        Some(Member::Str(typ)) => classify_typ(typ),
        Some(_) => return Err(TokenError::Malformed),
    };
    Ok(Header { alg, typ, kid })
}

/// The header of the last token whose signature verified, kept with its segment: an
/// issuer's tokens share a few headers (one per signing key), so most tokens skip decoding
/// and reading theirs. Reading a header depends only on its segment and the allowed
/// algorithms (fixed for an authority), so a recalled header is exactly what reading the
/// same segment again would give; any other segment is read in full.
#[derive(Debug, Default)]
pub(crate) struct HeaderMemo(ArcSwapOption<Remembered>);

/// A header as [`HeaderMemo`] keeps it.
#[derive(Debug)]
pub(crate) struct Remembered {
    segment: Box<str>,
    alg: Algorithm,
    typ: Typ,
    kid: Option<Box<str>>,
}

impl HeaderMemo {
    /// What the memo holds now (a cheap `Arc` clone, never waiting).
    pub(crate) fn load(&self) -> Option<Arc<Remembered>> {
        self.0.load_full()
    }

    /// Remembers `header`, read from `segment`, in place of the last one.
    pub(crate) fn remember(&self, segment: &str, header: &Header<'_>) {
        let kid = header.kid.as_deref().map(Box::from);
        self.0.store(Some(Arc::new(Remembered { segment: segment.into(), alg: header.alg, typ: header.typ, kid })));
    }
}

impl Remembered {
    /// The remembered header, if it was read from `segment`.
    pub(crate) fn header(&self, segment: &str) -> Option<Header<'_>> {
        (*self.segment == *segment).then(|| Header {
            alg: self.alg,
            typ: self.typ,
            kid: self.kid.as_deref().map(Cow::Borrowed),
        })
    }
}

/// Media types compare case-insensitively, and `application/` is implied when the value
/// has no `/` (RFC 7515 §4.1.9). Nothing is trimmed.
fn classify_typ(typ: &str) -> Typ {
    let short = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => typ.get(12..).unwrap_or_default(),
        _ => typ,
    };
    if short.eq_ignore_ascii_case("at+jwt") {
        Typ::AccessToken
    } else if short.eq_ignore_ascii_case("jwt") {
        Typ::Jwt
    } else {
        Typ::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::{b64url_decode, b64url_encode};

    fn header(json: &str) -> Result<Header<'_>, TokenError> {
        parse_header(json.as_bytes(), &Algorithm::ASYMMETRIC)
    }

    #[test]
    fn signatures_up_to_rsa_8192_decode_into_the_buffer() {
        let mut buffer = [0; MAX_SIGNATURE_BYTES];
        let rsa_8192 = b64url_encode(&[0xA5; 1024]);
        assert_eq!(decode_signature(&rsa_8192, &mut buffer).map(<[u8]>::len), Some(1024));
        let too_long = b64url_encode(&[0xA5; 2048]);
        assert_eq!(decode_signature(&too_long, &mut buffer), None);
    }

    #[test]
    fn payloads_decode_on_the_stack_when_they_fit_and_into_a_vec_otherwise() {
        let mut buffer = [0; PAYLOAD_BUFFER_BYTES];
        // The decoded length is exact: 2048 bytes (2731 characters) fit in 2048, 2049 bytes
        // (2732 characters) do not.
        let fits = b64url_encode(&[b'a'; 2048]);
        assert!(matches!(decode_payload(&fits, &mut buffer), Some(Cow::Borrowed(text)) if text.len() == 2048));
        let longer = b64url_encode(&[b'a'; 2049]);
        assert!(matches!(decode_payload(&longer, &mut buffer), Some(Cow::Owned(text)) if text.len() == 2049));
        for bad in [b64url_encode(&[0xFF; 8]), b64url_encode(&[0xFF; 4000]), "YQ==".to_owned(), "Y+Q".to_owned()] {
            assert_eq!(decode_payload(&bad, &mut buffer), None, "{bad}");
        }
    }

    #[test]
    fn a_remembered_header_is_recalled_only_for_its_own_segment() {
        let memo = HeaderMemo::default();
        assert!(memo.load().is_none());
        let json = r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#;
        let segment = b64url_encode(json.as_bytes());
        memo.remember(&segment, &header(json).unwrap());
        let remembered = memo.load().unwrap();
        let recalled = remembered.header(&segment).unwrap();
        assert_eq!(
            (recalled.alg, recalled.typ, recalled.kid.as_deref()),
            (Algorithm::RS256, Typ::AccessToken, Some("k1"))
        );
        // The same header members in another order, or another kid, are another segment.
        for other in [r#"{"typ":"at+jwt","alg":"RS256","kid":"k1"}"#, r#"{"alg":"RS256","typ":"at+jwt","kid":"k2"}"#] {
            assert!(remembered.header(&b64url_encode(other.as_bytes())).is_none(), "{other}");
        }
        assert!(remembered.header(&segment[1..]).is_none());
    }

    #[test]
    fn header_segment_size_cap() {
        let mut buffer = [0; MAX_HEADER_BYTES];
        let max = "A".repeat(MAX_HEADER_SEGMENT);
        assert!(decode_header(&max, &mut buffer).is_ok());
        let over = "A".repeat(MAX_HEADER_SEGMENT + 4);
        assert_eq!(decode_header(&over, &mut buffer).err(), Some(TokenError::Malformed));
    }

    #[test]
    fn only_the_application_prefix_is_implied_in_typ() {
        assert_eq!(classify_typ("application/at+jwt"), Typ::AccessToken);
        assert_eq!(classify_typ("APPLICATION/JWT"), Typ::Jwt);
        // Another twelve characters before a known type make another type.
        assert_eq!(classify_typ("applicationXat+jwt"), Typ::Other);
        assert_eq!(classify_typ("xxxxxxxxxxxxJWT"), Typ::Other);
    }

    #[test]
    fn split_requires_exactly_three_non_empty_segments() {
        assert!(split("a.b.c").is_ok());
        for bad in ["a.b", "a.b.", ".b.c", "a..c", "a.b.c.d", "a.b.c.d.e", ""] {
            assert_eq!(split(bad).err(), Some(TokenError::Malformed), "{bad}");
        }
        assert_eq!(split("ab.cd.ef").unwrap().signing_input, "ab.cd");
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64url_decode(b"YQ"), Some(b"a".to_vec()));
        for bad in [&b"YQ=="[..], b"Y+Q", b"Y/Q", b"YR", b"Y Q"] {
            assert_eq!(b64url_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn typ_classification() {
        for (typ, want) in [
            ("at+jwt", Typ::AccessToken),
            ("application/at+jwt", Typ::AccessToken),
            ("AT+JWT", Typ::AccessToken),
            ("Application/At+Jwt", Typ::AccessToken),
            ("JWT", Typ::Jwt),
            ("at+jwt ", Typ::Other),
            ("at+jwt;v=1", Typ::Other),
            ("logout+jwt", Typ::Other),
        ] {
            assert_eq!(classify_typ(typ), want, "{typ}");
        }
    }

    #[test]
    fn header_checks() {
        assert_eq!(header(r#"{"alg":"RS256","typ":"at+jwt","kid":"k"}"#).unwrap().kid.as_deref(), Some("k"));
        assert_eq!(header(r#"{"typ":"at+jwt"}"#).err(), Some(TokenError::AlgorithmNotAllowed));
        assert_eq!(header(r#"{"alg":"none"}"#).err(), Some(TokenError::AlgorithmNotAllowed));
        assert_eq!(header(r#"{"alg":"HS256"}"#).err(), Some(TokenError::AlgorithmNotAllowed));
        assert_eq!(header(r#"{"alg":"RS256","crit":["b64"],"b64":false}"#).err(), Some(TokenError::UnsupportedHeader));
        assert_eq!(header(r#"{"alg":"RS256","kid":5}"#).err(), Some(TokenError::Malformed));
        assert_eq!(header(r#"{"alg":"RS256","typ":5}"#).err(), Some(TokenError::Malformed));
        assert_eq!(header(r#"{"alg":"RS256","alg":"RS256"}"#).err(), Some(TokenError::Malformed));
        assert_eq!(header(r#"["RS256"]"#).err(), Some(TokenError::Malformed));
    }

    #[test]
    fn a_token_is_split_at_its_two_dots_into_header_payload_and_signature() {
        for (token, segments) in [
            ("hdr.payload.signature", ("hdr", "payload", "signature", "hdr.payload")),
            ("a.b.c", ("a", "b", "c", "a.b")),
            ("eyJh.eyJzdWIiOiJ4In0.c2ln-_", ("eyJh", "eyJzdWIiOiJ4In0", "c2ln-_", "eyJh.eyJzdWIiOiJ4In0")),
        ] {
            let compact = split(token).unwrap();
            assert_eq!(
                (compact.header, compact.payload, compact.signature, compact.signing_input),
                segments,
                "{token}"
            );
        }
    }

    #[test]
    fn a_header_segment_within_the_cap_decodes_to_its_json() {
        let mut buffer = [0; MAX_HEADER_BYTES];
        let json = r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#;
        assert_eq!(decode_header(&b64url_encode(json.as_bytes()), &mut buffer), Ok(json.as_bytes()));
        assert_eq!(decode_header("e30", &mut buffer), Ok(&b"{}"[..]));
        assert_eq!(decode_header("e30=", &mut buffer), Err(TokenError::Malformed), "padded");
    }

    #[test]
    fn a_kid_of_256_bytes_is_read_and_one_of_257_is_malformed() {
        let with_kid = |kid: &str| format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
        let longest = with_kid(&"k".repeat(MAX_KID_LEN));
        assert_eq!(header(&longest).unwrap().kid.as_deref(), Some("k".repeat(256).as_str()));
        for kid in ["k".repeat(257), "\u{e9}".repeat(129)] {
            assert_eq!(header(&with_kid(&kid)).err(), Some(TokenError::Malformed), "{} bytes", kid.len());
        }
    }
}
