//! Strict base64url (RFC 7515 §2): the URL-safe alphabet, no padding, canonical trailing
//! bits. Every segment of a token and every key member is decoded with it.

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};

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
    B64URL.decode(input).ok()
}

/// Encodes bytes as unpadded base64url.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn b64url_encode(input: &[u8]) -> String {
    B64URL.encode(input)
}
