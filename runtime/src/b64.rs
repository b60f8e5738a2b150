//! Strict base64url (RFC 7515 §2): the URL-safe alphabet, no padding, canonical trailing
//! bits. Every segment of a token and every key member is decoded with it.
//!
//! Decoding is `base64-simd`'s (vectorised where the CPU allows: decoding the payload and
//! the signature was a quarter of an uncached verification's cost beyond the signature
//! check, BENCHMARKS.md); encoding, and the reference every decode is tested against, is
//! the `base64` crate's strict engine ([`B64URL`]).

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use base64_simd::{AsOut as _, URL_SAFE_NO_PAD};

/// Strict base64url: URL-safe alphabet, no padding, canonical trailing bits.
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes strict base64url (RFC 7515 §2), or `None`.
pub(crate) fn b64url_decode(input: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode_to_vec(input).ok()
}

/// How many bytes `input` decodes to, if its length is one base64url can have (its
/// characters are not checked).
pub(crate) fn decoded_len(input: &[u8]) -> Option<usize> {
    URL_SAFE_NO_PAD.decoded_length(input).ok()
}

/// Decodes strict base64url into the start of `buffer` (no allocation), returning the
/// decoded bytes; `None` if `input` is not strict base64url or `buffer` is too short.
pub(crate) fn b64url_decode_into<'b>(input: &[u8], buffer: &'b mut [u8]) -> Option<&'b [u8]> {
    let out = buffer.get_mut(..decoded_len(input)?)?;
    URL_SAFE_NO_PAD.decode(input, out.as_out()).ok().map(|decoded| &*decoded)
}

/// Encodes bytes as unpadded base64url.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn b64url_encode(input: &[u8]) -> String {
    B64URL.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the `base64` crate's strict engine says of `input`: the reference.
    fn reference(input: &[u8]) -> Option<Vec<u8>> {
        B64URL.decode(input).ok()
    }

    fn agree(input: &[u8]) {
        let expected = reference(input);
        assert_eq!(b64url_decode(input), expected, "{input:?}");
        let mut buffer = [0u8; 256];
        assert_eq!(b64url_decode_into(input, &mut buffer).map(<[u8]>::to_vec), expected, "{input:?}");
    }

    #[test]
    fn padding_the_standard_alphabet_and_non_canonical_trailing_bits_are_refused() {
        for bad in [&b"YQ=="[..], b"YQ=", b"Y", b"YR", b"YWF", b"a+b/", b"YW Fh", b"YW\nFh", b"\xc3\xa9AA"] {
            assert_eq!(b64url_decode(bad), None, "{bad:?}");
            agree(bad);
        }
        for good in [
            &b""[..],
            b"YQ",
            b"YWE",
            b"YWFh",
            b"-_-_",
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(b64url_decode(good).is_some(), "{good:?}");
            agree(good);
        }
    }

    #[test]
    fn a_buffer_too_short_for_the_decoded_bytes_is_refused_not_overrun() {
        let mut buffer = [0u8; 2];
        assert_eq!(b64url_decode_into(b"YWFh", &mut buffer), None);
        assert_eq!(b64url_decode_into(b"YWE", &mut buffer), Some(&b"aa"[..]));
    }

    proptest! {
        // No regression files: a mutant's failures (cargo-mutants runs in place) are not
        // cases to keep, as in the crate's other property tests.
        #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text over base64's characters and a few others decodes exactly as the
        /// reference decodes it, or is refused exactly when the reference refuses it.
        #[test]
        fn the_decoder_agrees_with_the_reference_on_any_text(
            input in proptest::collection::vec(
                prop_oneof![
                    8 => proptest::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()),
                    1 => proptest::sample::select(b"+/=. \n\0".to_vec()),
                    1 => any::<u8>(),
                ],
                0..300,
            )
        ) {
            agree(&input);
        }

        /// Every encoding of bytes decodes back to them, and flipping any of its
        /// characters' low bits gives what the reference gives (often a non-canonical
        /// last character, which both refuse).
        #[test]
        fn encodings_round_trip_and_their_variants_agree(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            flip in any::<proptest::sample::Index>(),
            bit in 0u8..2,
        ) {
            let text = b64url_encode(&bytes).into_bytes();
            prop_assert_eq!(b64url_decode(&text), Some(bytes));
            if !text.is_empty() {
                let mut variant = text.clone();
                let i = flip.index(variant.len());
                variant[i] ^= 1 << bit;
                agree(&variant);
                let last = variant.len() - 1;
                variant = text;
                variant[last] ^= 1;
                agree(&variant);
            }
        }
    }
}
