//! The crypto backend's self-test, run when the first authority is built.

use std::sync::OnceLock;

use crate::config::ConfigError;

/// The outcome of the crypto self-test, once it has run.
static SELF_TEST: OnceLock<bool> = OnceLock::new();

/// Proves once per process that the crypto backend verifies a good signature and refuses
/// a bad one (security spec case 179).
pub(super) fn crypto_self_test() -> Result<(), ConfigError> {
    let ok = *SELF_TEST.get_or_init(|| {
        use aws_lc_rs::hmac;
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"scopegate crypto self-test key, 32+ bytes");
        let tag = hmac::sign(&key, b"message");
        let good = hmac::verify(&key, b"message", tag.as_ref()).is_ok();
        let bad = hmac::verify(&key, b"messagf", tag.as_ref()).is_err();
        let ed = ed25519_self_test();
        good && bad && ed
    });
    if ok { Ok(()) } else { Err(ConfigError::new("crypto", "the aws-lc-rs crypto backend failed its self-test")) }
}

/// Whether the crypto self-test has run in this process, and passed (feature `testing`):
/// `None` until the first authority is built. Lets a test see that building one ran it.
#[cfg(feature = "testing")]
#[doc(hidden)]
#[must_use]
pub fn crypto_self_test_result() -> Option<bool> {
    SELF_TEST.get().copied()
}

fn ed25519_self_test() -> bool {
    use aws_lc_rs::signature::{ED25519, ParsedPublicKey};
    // RFC 8032 §7.1, test 1: the empty message.
    const PUBLIC: [u8; 32] = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1,
        0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
    ];
    const SIGNATURE: [u8; 64] = [
        0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80, 0x6e, 0x82, 0x8a, 0x84, 0x87,
        0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73, 0xe0, 0x65, 0x22, 0x49, 0x01, 0x55, 0x5f, 0xb8, 0x82, 0x15,
        0x90, 0xa3, 0x3b, 0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b, 0xd2, 0x5b, 0xf5, 0xf0, 0x59, 0x5b,
        0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b,
    ];
    ParsedPublicKey::new(&ED25519, PUBLIC)
        .is_ok_and(|key| key.verify_sig(b"", &SIGNATURE).is_ok() && key.verify_sig(b"x", &SIGNATURE).is_err())
}
