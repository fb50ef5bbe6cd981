//! JWT access tokens (RFC 9068) signed RS256 (RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with SHA-256),
//! in the JWS compact serialisation (RFC 7515 §7.1), and the JWK Set that lets resource servers
//! check them offline (RFC 7517 §5, RFC 7518 §6.3.1). The key id is the key's JWK thumbprint
//! (RFC 7638), so it changes exactly when the key does. The key is generated on first start and
//! kept as a PKCS#8 PEM file readable by its owner only.
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::OsRng;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::CryptoError;
use crate::domain::Secret;

mod key_file;

pub use key_file::load_or_create;

/// Size of a generated key, and the smallest key accepted (RFC 7518 §3.3).
pub const KEY_BITS: usize = 2048;
/// The largest key accepted: the largest the `rsa` crate verifies, and more than enough.
const MAX_KEY_BITS: usize = 4096;
/// Longer presented tokens are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
const ALG: &str = "RS256";
/// RFC 9068 §2.1: the media type of a JWT access token, without its `application/` prefix.
const TYP: &str = "at+jwt";

/// The server's RS256 key. Its `Debug` shows the key id only.
pub struct JwtSigner {
    key: RsaPrivateKey,
    signing_key: SigningKey<Sha256>,
    verifying_key: VerifyingKey<Sha256>,
    kid: String,
    /// base64url of the modulus and the public exponent (RFC 7518 §6.3.1).
    n: String,
    e: String,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The claims of an access token (RFC 9068 §2.2). For a client_credentials token `sub` is the
/// client id.
#[derive(Debug, Clone, Copy)]
pub struct AccessClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub client_id: &'a str,
    /// Space-separated; omitted from the token when empty.
    pub scope: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
}

/// What a token signed by this server says. Expiry is not checked: the caller compares `exp`
/// with its own clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
    pub sub: String,
    pub client_id: String,
}

impl JwtSigner {
    /// A fresh 2048-bit key from the OS generator (a second or so).
    pub fn generate() -> Result<Self, CryptoError> {
        let key = RsaPrivateKey::new(&mut OsRng, KEY_BITS)
            .map_err(|e| CryptoError(format!("cannot generate an RSA key: {e}")))?;
        Self::from_key(key)
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`) of 2048 to 4096 bits.
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            return Err(CryptoError(
                "the JWT signing key is PKCS#1 (BEGIN RSA PRIVATE KEY); convert it to PKCS#8 \
                 with `openssl pkcs8 -topk8 -nocrypt`"
                    .to_owned(),
            ));
        }
        let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| {
            CryptoError(format!(
                "the JWT signing key is not an unencrypted PKCS#8 PEM RSA key: {e}"
            ))
        })?;
        Self::from_key(key)
    }

    /// The PKCS#8 PEM form of the key, as [`JwtSigner::from_pem`] reads it.
    pub fn to_pem(&self) -> Secret {
        match self.key.to_pkcs8_pem(LineEnding::LF) {
            Ok(pem) => Secret::new(pem.as_str()),
            // Encoding a two-prime key the crate built itself cannot fail; an empty PEM would
            // be refused by `from_pem`, never mistaken for a key.
            Err(e) => {
                log::error!("cannot encode the JWT signing key as PKCS#8: {e}");
                Secret::new(String::new())
            }
        }
    }

    fn from_key(key: RsaPrivateKey) -> Result<Self, CryptoError> {
        let bits = key.n().bits();
        if !(KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(CryptoError(format!(
                "the JWT signing key has {bits} bits; RS256 keys must have {KEY_BITS} to \
                 {MAX_KEY_BITS} bits"
            )));
        }
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        let signer = Self {
            signing_key: SigningKey::new(key.clone()),
            verifying_key: VerifyingKey::new(key.to_public_key()),
            kid: thumbprint(&n, &e),
            key,
            n,
            e,
        };
        // Sign once now, so that a key which cannot sign fails at start-up, not at issuance.
        let probe = b"tessera: RS256 key check";
        signer
            .signing_key
            .try_sign_with_rng(&mut OsRng, probe)
            .and_then(|sig| signer.verifying_key.verify(probe, &sig))
            .map_err(|e| CryptoError(format!("the JWT signing key cannot sign: {e}")))?;
        Ok(signer)
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A signed access token: `base64url(header).base64url(claims).base64url(signature)`.
    pub fn sign(&self, claims: &AccessClaims<'_>) -> Secret {
        self.sign_parts(&self.header(), &claims_json(claims))
    }

    fn header(&self) -> Value {
        let mut header = Map::new();
        header.insert("alg".into(), ALG.into());
        header.insert("typ".into(), TYP.into());
        header.insert("kid".into(), self.kid.as_str().into());
        Value::Object(header)
    }

    fn sign_parts(&self, header: &Value, claims: &Value) -> Secret {
        let mut token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // With blinding (the random generator), so the timing of a signature says nothing of
        // the key. The key signed a probe when it was loaded, so this does not fail in
        // practice; if it did, the token would carry no signature and every verifier refuses it.
        let signature = self
            .signing_key
            .try_sign_with_rng(&mut OsRng, token.as_bytes());
        token.push('.');
        match signature {
            Ok(signature) => token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes())),
            Err(e) => log::error!("RS256 signing failed, the access token is unsigned: {e}"),
        }
        Secret::new(token)
    }

    /// The claims of `token` if this key signed it as an access token: a compact JWS with a
    /// header `RS256`, `at+jwt` and our key id, a valid signature, and the claims of RFC 9068
    /// §2.2 with the right types. Anything else is `None`. Expiry is not checked.
    pub fn verify(&self, token: &str) -> Option<VerifiedJwt> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let mut parts = token.split('.');
        let (header_b64, claims_b64, signature_b64) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header = decode_json(header_b64)?;
        let header = header.as_object()?;
        let header_is_ours = header.get("alg")?.as_str()? == ALG
            && header.get("typ")?.as_str()? == TYP
            && header.get("kid")?.as_str()? == self.kid
            && !header.contains_key("crit");
        if !header_is_ours {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).ok()?;
        if signature.len() != self.key.size() {
            return None;
        }
        let signature = Signature::try_from(signature.as_slice()).ok()?;
        let signing_input = token.get(..header_b64.len() + 1 + claims_b64.len())?;
        self.verifying_key
            .verify(signing_input.as_bytes(), &signature)
            .ok()?;
        let claims = decode_json(claims_b64)?;
        let claims = claims.as_object()?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        text("iss")?;
        text("aud")?;
        if claims.get("scope").is_some_and(|s| !s.is_string()) {
            return None;
        }
        Some(VerifiedJwt {
            jti: text("jti")?.to_owned(),
            exp: number("exp")?,
            iat: number("iat")?,
            sub: text("sub")?.to_owned(),
            client_id: text("client_id")?.to_owned(),
        })
    }

    /// The public key as a JWK Set, for the `jwks_uri` of RFC 8414 §2.
    pub fn jwks(&self) -> Value {
        let mut jwk = Map::new();
        jwk.insert("kty".into(), "RSA".into());
        jwk.insert("use".into(), "sig".into());
        jwk.insert("alg".into(), ALG.into());
        jwk.insert("kid".into(), self.kid.as_str().into());
        jwk.insert("n".into(), self.n.as_str().into());
        jwk.insert("e".into(), self.e.as_str().into());
        let mut set = Map::new();
        set.insert("keys".into(), Value::Array(vec![Value::Object(jwk)]));
        Value::Object(set)
    }
}

/// RFC 9068 §2.2, in a fixed order; `scope` only when there is one.
fn claims_json(claims: &AccessClaims<'_>) -> Value {
    let mut map = Map::new();
    map.insert("iss".into(), claims.iss.into());
    map.insert("sub".into(), claims.sub.into());
    map.insert("aud".into(), claims.aud.into());
    map.insert("exp".into(), claims.exp.into());
    map.insert("iat".into(), claims.iat.into());
    map.insert("jti".into(), claims.jti.into());
    map.insert("client_id".into(), claims.client_id.into());
    if !claims.scope.is_empty() {
        map.insert("scope".into(), claims.scope.into());
    }
    Value::Object(map)
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// RFC 7638 §3: SHA-256 of the required members in lexicographic order without whitespace.
/// The base64url values need no JSON escaping.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::sync::LazyLock;

    use hmac::{Hmac, Mac};
    use serde_json::json;

    use super::key_file::load_or_create_with;
    use super::*;

    /// Key generation is the slow part: one key shared by the tests, one "other" key.
    static SIGNER: LazyLock<JwtSigner> = LazyLock::new(|| JwtSigner::generate().unwrap());
    static OTHER: LazyLock<JwtSigner> = LazyLock::new(|| JwtSigner::generate().unwrap());

    /// 2100-01-01: far enough for `jsonwebtoken`, which checks `exp` against the system clock.
    const EXP: i64 = 4_102_444_800;
    const IAT: i64 = 1_700_000_000;

    fn claims(scope: &str) -> AccessClaims<'_> {
        AccessClaims {
            iss: "https://auth.example.com",
            sub: "user-1",
            aud: "https://api.example.com",
            client_id: "client-1",
            scope,
            iat: IAT,
            exp: EXP,
            jti: "jti-1",
        }
    }

    fn expected() -> VerifiedJwt {
        VerifiedJwt {
            jti: "jti-1".into(),
            exp: EXP,
            iat: IAT,
            sub: "user-1".into(),
            client_id: "client-1".into(),
        }
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn parts(token: &Secret) -> Vec<String> {
        token.expose().split('.').map(str::to_owned).collect()
    }

    #[test]
    fn a_signed_token_verifies_and_carries_exactly_the_rfc_9068_claims() {
        let token = SIGNER.sign(&claims("openid email"));
        assert_eq!(SIGNER.verify(token.expose()), Some(expected()));
        let p = parts(&token);
        assert_eq!(p.len(), 3);
        assert_eq!(
            String::from_utf8(URL_SAFE_NO_PAD.decode(&p[0]).unwrap()).unwrap(),
            format!(
                r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#,
                SIGNER.kid()
            )
        );
        assert_eq!(
            decode_json(&p[1]).unwrap(),
            json!({"iss": "https://auth.example.com", "sub": "user-1",
                   "aud": "https://api.example.com", "exp": EXP, "iat": IAT, "jti": "jti-1",
                   "client_id": "client-1", "scope": "openid email"})
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&p[2]).unwrap().len(), 256);
    }

    #[test]
    fn an_empty_scope_is_left_out() {
        let token = SIGNER.sign(&claims(""));
        let payload = decode_json(&parts(&token)[1]).unwrap();
        assert!(payload.get("scope").is_none());
        assert_eq!(SIGNER.verify(token.expose()), Some(expected()));
    }

    #[test]
    fn an_independent_implementation_verifies_the_token_from_the_jwks_alone() {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk};
        let token = SIGNER.sign(&claims("openid"));
        let set: jwk::JwkSet = serde_json::from_value(SIGNER.jwks()).unwrap();
        let key = set.find(SIGNER.kid()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://api.example.com"]);
        validation.set_issuer(&["https://auth.example.com"]);
        let data = decode::<Value>(
            token.expose(),
            &DecodingKey::from_jwk(key).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["client_id"], "client-1");
        assert_eq!(data.claims["scope"], "openid");
        let header = decode_header(token.expose()).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(SIGNER.kid()));
        assert_eq!(header.alg, Algorithm::RS256);

        // And refuses it under the other key's JWKS.
        let other: jwk::JwkSet = serde_json::from_value(OTHER.jwks()).unwrap();
        let other_key = DecodingKey::from_jwk(&other.keys[0]).unwrap();
        assert!(decode::<Value>(token.expose(), &other_key, &validation).is_err());
    }

    #[test]
    fn the_jwks_publishes_the_public_key_only() {
        let jwks = SIGNER.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let jwk = keys[0].as_object().unwrap();
        let names: Vec<&str> = jwk.keys().map(String::as_str).collect();
        assert_eq!(names, ["kty", "use", "alg", "kid", "n", "e"]);
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["kid"], SIGNER.kid());
        assert_eq!(jwk["e"], "AQAB");
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0, "no leading zero octet (RFC 7518 §6.3.1.1)");
        assert_eq!(thumbprint(&SIGNER.n, &SIGNER.e), SIGNER.kid());
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let token = SIGNER.sign(&claims("openid"));
        let p = parts(&token);

        let mut payload = decode_json(&p[1]).unwrap();
        payload["sub"] = json!("admin");
        let forged = format!("{}.{}.{}", p[0], b64(&payload), p[2]);
        assert_eq!(SIGNER.verify(&forged), None);

        let mut signature = URL_SAFE_NO_PAD.decode(&p[2]).unwrap();
        signature[100] ^= 1;
        let forged = format!("{}.{}.{}", p[0], p[1], URL_SAFE_NO_PAD.encode(&signature));
        assert_eq!(SIGNER.verify(&forged), None);

        let truncated = format!(
            "{}.{}.{}",
            p[0],
            p[1],
            URL_SAFE_NO_PAD.encode(&signature[1..])
        );
        assert_eq!(SIGNER.verify(&truncated), None);
    }

    #[test]
    fn tokens_of_another_key_are_refused_even_under_our_kid() {
        let theirs = OTHER.sign(&claims("openid"));
        assert_eq!(OTHER.verify(theirs.expose()), Some(expected()));
        assert_eq!(SIGNER.verify(theirs.expose()), None);
        let under_our_kid = OTHER.sign_parts(&SIGNER.header(), &claims_json(&claims("openid")));
        assert_eq!(SIGNER.verify(under_our_kid.expose()), None);
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused() {
        let payload = b64(&claims_json(&claims("openid")));
        let kid = SIGNER.kid();

        let none = b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid}));
        assert_eq!(SIGNER.verify(&format!("{none}.{payload}.")), None);
        assert_eq!(SIGNER.verify(&format!("{none}.{payload}")), None);

        // The classic confusion: HMAC keyed with the public key.
        let hs = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
        let input = format!("{hs}.{payload}");
        let mut mac = Hmac::<Sha256>::new_from_slice(SIGNER.n.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(SIGNER.verify(&format!("{input}.{tag}")), None);
    }

    #[test]
    fn headers_other_than_ours_are_refused_even_when_signed() {
        let payload = claims_json(&claims("openid"));
        let kid = SIGNER.kid();
        for header in [
            json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            json!({"alg": "RS256", "kid": kid}),
            json!({"alg": "RS256", "typ": "at+jwt"}),
            json!({"alg": "RS256", "typ": "at+jwt", "kid": OTHER.kid()}),
            json!({"alg": "RS256", "typ": "at+jwt", "kid": kid, "crit": ["exp"]}),
            json!(["RS256"]),
        ] {
            let token = SIGNER.sign_parts(&header, &payload);
            assert_eq!(SIGNER.verify(token.expose()), None, "{header}");
        }
    }

    #[test]
    fn signed_claims_of_the_wrong_shape_are_refused() {
        let good = claims_json(&claims("openid"));
        let mut cases = Vec::new();
        for name in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] {
            let mut missing = good.clone();
            missing.as_object_mut().unwrap().remove(name);
            cases.push(missing);
        }
        for (name, bad) in [
            ("exp", json!("4102444800")),
            ("exp", json!(4.1e9)),
            ("iat", json!(null)),
            ("sub", json!(1)),
            ("client_id", json!(["client-1"])),
            ("aud", json!(["https://api.example.com"])),
            ("scope", json!(["openid"])),
        ] {
            let mut wrong = good.clone();
            wrong[name] = bad;
            cases.push(wrong);
        }
        cases.push(json!("not an object"));
        for payload in cases {
            let token = SIGNER.sign_parts(&SIGNER.header(), &payload);
            assert_eq!(SIGNER.verify(token.expose()), None, "{payload}");
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let token = SIGNER.sign(&claims("openid"));
        let p = parts(&token);
        let long = format!("{}.{}.{}", p[0], "A".repeat(MAX_TOKEN_BYTES), p[2]);
        for garbage in [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "not a token",
            "é.é.é",
            &format!("{}.{}", p[0], p[1]),
            &format!("{}.{}.{}.{}", p[0], p[1], p[2], p[2]),
            &format!("{}=.{}.{}", p[0], p[1], p[2]),
            &format!("{}.{}.{}=", p[0], p[1], p[2]),
            &format!("{}.{}.{}", p[0], p[1], p[2].replace('_', "/")),
            &format!(" {}", token.expose()),
            &long,
        ] {
            assert_eq!(SIGNER.verify(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn the_pem_round_trips_and_debug_shows_no_key() {
        let pem = SIGNER.to_pem();
        assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = JwtSigner::from_pem(pem.expose()).unwrap();
        assert_eq!(back.kid(), SIGNER.kid());
        let token = back.sign(&claims("openid"));
        assert_eq!(SIGNER.verify(token.expose()), Some(expected()));

        let debug = format!("{:?}", *SIGNER);
        assert_eq!(
            debug,
            format!("JwtSigner {{ kid: {:?}, .. }}", SIGNER.kid())
        );
    }

    #[test]
    fn small_pkcs1_and_broken_keys_are_refused_clearly() {
        let small = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
        let err = JwtSigner::from_pem(&pem).unwrap_err();
        assert!(err.0.contains("1024 bits"), "{err}");
        assert!(err.0.contains("2048"), "{err}");

        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let pkcs1 = SIGNER.key.to_pkcs1_pem(LineEnding::LF).unwrap();
        let err = JwtSigner::from_pem(&pkcs1).unwrap_err();
        assert!(err.0.contains("PKCS#1"), "{err}");

        for broken in [
            "",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(JwtSigner::from_pem(broken).is_err());
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn load_or_create_creates_a_private_file_then_reads_the_same_key_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("jwt.pem");
        let ours = || JwtSigner::from_pem(SIGNER.to_pem().expose());

        let (created, was_created) = load_or_create_with(&path, ours).unwrap();
        assert!(was_created);
        assert_eq!(created.kid(), SIGNER.kid());
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);

        let (loaded, was_created) =
            load_or_create_with(&path, || panic!("must not generate")).unwrap();
        assert!(!was_created);
        assert_eq!(loaded.kid(), SIGNER.kid());
        let (loaded, was_created) = load_or_create(&path).unwrap();
        assert!(!was_created);
        assert_eq!(loaded.kid(), SIGNER.kid());
    }

    #[test]
    fn instances_racing_on_one_directory_end_up_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.pem");
        let results: Vec<(String, bool)> = std::thread::scope(|s| {
            let handles = [&*SIGNER, &*OTHER].map(|signer| {
                let path = &path;
                s.spawn(move || {
                    let (got, created) =
                        load_or_create_with(path, || JwtSigner::from_pem(signer.to_pem().expose()))
                            .unwrap();
                    (got.kid().to_owned(), created)
                })
            });
            handles.map(|h| h.join().unwrap()).into()
        });
        assert_eq!(results[0].0, results[1].0);
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_naming_it_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.pem");
        fs::write(&path, "not a key").unwrap();
        let err = load_or_create_with(&path, || panic!("must not generate")).unwrap_err();
        assert!(err.0.contains(&path.display().to_string()), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a key");
    }
}
