//! `token_format = "jwt"`: RFC 9068 access tokens verified by an independent implementation
//! (the `jsonwebtoken` crate) from nothing but the published JWKS; revocation, introspection and
//! Wazo validation find them through their `jti`; forged tokens are nobody's.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

on_both_backends!(jwt_access_tokens_verify_with_the_published_jwks);

/// `GET path`, its body as JSON.
async fn get_json<T: serde::de::DeserializeOwned>(app: &TestApp, path: &str) -> T {
    app.http
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What a resource server does: fetch the metadata, then the JWKS, then verify.
async fn verify_like_a_resource_server(app: &TestApp, token: &str) -> Value {
    let metadata: Value = get_json(app, "/.well-known/oauth-authorization-server").await;
    let issuer = str_of(&metadata, "issuer").to_owned();
    let jwks_uri = str_of(&metadata, "jwks_uri").to_owned();
    assert_eq!(jwks_uri, format!("{issuer}/oauth2/jwks"));
    let jwks: JwkSet = get_json(app, "/oauth2/jwks").await;
    let header = decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the kid is published");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[&issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("verifies with the JWKS alone");
    data.claims
}

async fn jwt_access_tokens_verify_with_the_published_jwks(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_POLICY__TOKEN_FORMAT", "jwt")]).await;
    let client = app.add_full_client("resource-app");
    let user_id = app.add_user("jay", "pw", &["PRODUCTION", "#"]);
    let now = app.service.now();

    // A user's token: RFC 9068 §2.2 claims.
    let grant = app
        .password_grant(&client, "jay", "pw", Some("PRODUCTION"))
        .await;
    let token = str_of(&grant, "access_token").to_owned();
    let claims = verify_like_a_resource_server(&app, &token).await;
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["client_id"], "resource-app");
    assert_eq!(claims["scope"], "PRODUCTION");
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(grant["expires_in"], 3600);
    let jti = str_of(&claims, "jti").to_owned();
    uuid::Uuid::parse_str(&jti).expect("jti is a UUID");

    // A client's own token: sub is the client.
    let cc = app.client_credentials_token(&client).await;
    let cc_claims = verify_like_a_resource_server(&app, &cc).await;
    assert_eq!(cc_claims["sub"], "resource-app");
    assert_ne!(cc_claims["jti"], claims["jti"]);

    // Introspection and Wazo validation find it; the refresh grant mints JWTs too.
    let active = app.introspect(&client, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], user_id.as_str());
    assert_eq!(app.wazo_check(&token).await, 204);
    let refreshed: Value = app
        .refresh(&client, str_of(&grant, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    verify_like_a_resource_server(&app, str_of(&refreshed, "access_token")).await;

    // Hostile look-alikes: the jti alone, the jti in the key namespace, a re-signed payload,
    // a token whose payload was edited (signature no longer matches), alg none.
    let [h, p, _s]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
    let mut forged_claims = claims.clone();
    forged_claims["scope"] = json!("#");
    let forged_payload = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    let sig = token.rsplit('.').next().unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    for fake in [
        jti.clone(),
        format!("jwt:{jti}"),
        format!("{h}.{forged_payload}.{sig}"),
        format!("{none_header}.{p}."),
        format!("{h}.{p}.AAAA"),
    ] {
        assert_eq!(
            app.introspect(&client, &fake).await,
            json!({"active": false}),
            "{fake}"
        );
        assert_eq!(app.wazo_check(&fake).await, 404, "{fake}");
    }

    // Revocation through the jti: the token stays verifiable offline (that is what a JWT is)
    // but the server says inactive.
    let resp = app
        .post_form("/oauth2/revoke", Some(&client), &[("token", &token)])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        app.introspect(&client, &token).await,
        json!({"active": false})
    );
    assert_eq!(app.wazo_check(&token).await, 404);
    assert_eq!(app.introspect(&client, &cc).await["active"], true);

    // The key file is private and survives a restart: old tokens still verify and introspect.
    let key_file = app.settings.server.data_dir.join("jwt-signing-key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pem = std::fs::read_to_string(&key_file).unwrap();
    let app = app
        .restart(&[("TESSERA_POLICY__TOKEN_FORMAT", "jwt")])
        .await;
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), pem);
    verify_like_a_resource_server(&app, &cc).await;
    assert_eq!(app.introspect(&client, &cc).await["active"], true);
}

/// Without a policy that mints JWTs no key is created and the JWKS is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_is_made_until_a_policy_needs_it() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let jwks: Value = get_json(&app, "/oauth2/jwks").await;
    assert_eq!(jwks, json!({"keys": []}));
    assert!(
        !app.settings
            .server
            .data_dir
            .join("jwt-signing-key.pem")
            .exists()
    );
}
