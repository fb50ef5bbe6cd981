//! Check 4: `tests/wazo_auth_client.py`, a standard-library Python script that sends requests
//! exactly as wazo-auth-client does (its headers, `Basic Og==`, booleans as `True`/`False`;
//! wazo-contract §5.1), runs its whole scenario against a real server and passes.
use std::process::Command;

use crate::helpers::{Db, TestApp};

/// Alice's ACL: her own tokens and sessions (`me` matches her uuid), the tenant-wide refresh
/// token and session lists, deleting the session of the token in hand, and one confd right.
const ALICE_ACL: &[&str] = &[
    "auth.users.me.#",
    "auth.tokens.read",
    "auth.sessions.read",
    "auth.sessions.my_session.delete",
    "confd.users.me.read",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_wazo_auth_client_scenario_passes() {
    let app = TestApp::spawn(Db::Sqlite).await;

    let tenant = uuid::Uuid::new_v4().to_string();
    let sub_tenant = uuid::Uuid::new_v4().to_string();
    let other_tenant = uuid::Uuid::new_v4().to_string();
    app.add_tenant(&tenant, None);
    app.add_tenant(&sub_tenant, Some(&tenant));
    app.add_tenant(&other_tenant, None);
    let in_tenant = |t: &str| {
        let t = t.to_owned();
        move |u: &mut tessera::domain::User| u.tenant_uuid = t
    };

    let alice = app.add_user_with("alice", "s3cret-Alice", ALICE_ACL, in_tenant(&tenant));
    let carol = app.add_user_with("carol", "carol-pw", &[], in_tenant(&sub_tenant));
    let bob = app.add_user_with("bob", "bob-pw", &[], in_tenant(&other_tenant));
    let utf8 = app.add_user("unicode-utf8", "pépéç€", &[]);
    let latin1 = app.add_user("unicode-latin1", "pépéç", &[]);

    let port = app
        .base
        .rsplit(':')
        .next()
        .expect("port in the base URL")
        .to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wazo_auth_client.py");
    let args: Vec<String> = [
        ("--port", port.as_str()),
        ("--username", "alice"),
        ("--password", "s3cret-Alice"),
        ("--user-uuid", alice.as_str()),
        ("--tenant", tenant.as_str()),
        ("--sub-tenant", sub_tenant.as_str()),
        ("--sub-username", "carol"),
        ("--sub-password", "carol-pw"),
        ("--sub-user-uuid", carol.as_str()),
        ("--other-tenant", other_tenant.as_str()),
        ("--other-username", "bob"),
        ("--other-password", "bob-pw"),
        ("--other-user-uuid", bob.as_str()),
        ("--utf8-username", "unicode-utf8"),
        ("--utf8-password", "pépéç€"),
        ("--utf8-user-uuid", utf8.as_str()),
        ("--latin1-username", "unicode-latin1"),
        ("--latin1-password", "pépéç"),
        ("--latin1-user-uuid", latin1.as_str()),
    ]
    .iter()
    .flat_map(|(flag, value)| [(*flag).to_owned(), (*value).to_owned()])
    .collect();

    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args(&args)
            .env("PYTHONUTF8", "1")
            .env("PYTHONIOENCODING", "utf-8")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
    })
    .await
    .expect("the python runner did not panic");

    let output = match output {
        Ok(output) => output,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but python3 cannot be started: {e}")
        }
        Err(e) => {
            eprintln!("python3 cannot be started ({e}): skipping the wazo-auth-client scenario");
            return;
        }
    };
    assert!(
        output.status.success(),
        "{script} failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
