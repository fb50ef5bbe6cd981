//! JWT access tokens on the verification path (`JwtSigner::verify`: RFC 7515 §7.1 compact
//! serialisation, RFC 9068 §2.1 header, RS256 signature, §2.2 claims), under a fixed test key
//! (`fuzz/fixtures/jwt-signing-key.pem`, used nowhere else): garbage is refused without a panic,
//! a token this key signed verifies to exactly its claims, and the same token with any one
//! byte changed, cut short or extended is refused.
//!
//! Input: a presented token, or `sign` followed by newline-separated claims (`iss`, `sub`,
//! `aud`, `client_id`, `scope`, `jti`, `iat`, `exp`) and a position to tamper with, to sign,
//! verify and tamper with (one RSA signature per such run).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tessera::fuzzing::{AccessClaims, JwtSigner, MAX_TOKEN_BYTES, VerifiedJwt};

static SIGNER: LazyLock<JwtSigner> = LazyLock::new(|| {
    JwtSigner::from_pem(include_str!("../fixtures/jwt-signing-key.pem")).expect("the test key")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.strip_prefix("sign\n") {
        Some(claims) => round_trip(claims),
        None => presented(text),
    }
});

fn presented(token: &str) {
    let verified = SIGNER.verify(token);
    if token.len() > MAX_TOKEN_BYTES {
        assert_eq!(verified, None, "an oversized token verified");
    }
    if verified.is_some() {
        // Only a signature of this key gets here, so the token is exactly as signed: any
        // change to it is refused.
        assert_eq!(token.split('.').count(), 3);
        tampered_are_refused(token, token.len() / 2);
    }
}

fn round_trip(claims: &str) {
    let mut fields = claims.split('\n');
    let mut next = || fields.next().unwrap_or_default();
    let (iss, sub, aud, client_id, scope, jti) = (next(), next(), next(), next(), next(), next());
    let iat = next().parse::<i64>().unwrap_or(1_700_000_000);
    let exp = next().parse::<i64>().unwrap_or(4_102_444_800);
    let position = next().parse::<usize>().unwrap_or(0);
    let token = SIGNER.sign(&AccessClaims {
        iss,
        sub,
        aud,
        client_id,
        scope,
        iat,
        exp,
        jti,
    });
    let token = token.expose();
    let expected = (token.len() <= MAX_TOKEN_BYTES).then(|| VerifiedJwt {
        jti: jti.to_owned(),
        exp,
        iat,
        sub: sub.to_owned(),
        client_id: client_id.to_owned(),
    });
    assert_eq!(SIGNER.verify(token), expected, "{token}");
    tampered_are_refused(token, position);
}

fn tampered_are_refused(token: &str, position: usize) {
    let bytes = token.as_bytes();
    let at = position % bytes.len().max(1);
    let mut changed = bytes.to_vec();
    if let Some(b) = changed.get_mut(at) {
        *b = if *b == b'A' { b'B' } else { b'A' };
    }
    let changed = String::from_utf8(changed).expect("ASCII");
    assert_eq!(
        SIGNER.verify(&changed),
        None,
        "one byte changed at {at}: {changed}"
    );
    assert_eq!(
        SIGNER.verify(token.get(..at).unwrap_or_default()),
        None,
        "cut at {at}"
    );
    assert_eq!(SIGNER.verify(&format!("{token}A")), None, "extended");
    assert_eq!(SIGNER.verify(&format!("{token}.")), None, "a fourth part");
}
