//! The binary: `config check` names a bad key, and a first start on an empty database creates
//! the administrator and a client whose credentials work at once.
use std::process::{Command, Stdio};

use crate::helpers::{BIN, free_port, start_server_with};

#[test]
fn config_check_names_the_offending_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[policy]\nrotate_refresh_tokens = false\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[policy]\nrefresh_token_tl = 5\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refresh_token_tl"));

    // The same check stops `serve`.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&bad)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn user_and_client_commands_manage_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .args(args)
            .env_remove("TESSERA_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(&["user", "add", "grace", "--acl", "read"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("password: "));
    assert!(
        !run(&["user", "add", "GRACE"]).status.success(),
        "logins are unique case-insensitively"
    );
    let out = run(&["client", "add", "cli-app", "--scope", "read"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("client secret (shown once): "));
    let listed = String::from_utf8_lossy(&run(&["client", "list"]).stdout).into_owned();
    assert!(
        listed.contains("cli-app\tconfidential\tpassword,refresh_token,client_credentials\tread"),
        "{listed}"
    );
    assert!(run(&["user", "disable", "grace"]).status.success());
    assert!(String::from_utf8_lossy(&run(&["user", "list"]).stdout).contains("disabled"));
    assert!(run(&["user", "remove", "grace"]).status.success());
    assert!(!run(&["user", "remove", "grace"]).status.success());
    assert!(run(&["client", "remove", "cli-app"]).status.success());
}

#[test]
fn first_start_creates_an_admin_and_a_client_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start_server(dir.path(), port, Stdio::piped());
    let creds_file = dir.path().join("data/initial-credentials.env");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&creds_file).unwrap();
    let var = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let client = reqwest::blocking::Client::new();
    let resp = client
        .post(format!("http://127.0.0.1:{port}/oauth2/token"))
        .basic_auth(var("TESSERA_CLIENT_ID"), Some(var("TESSERA_CLIENT_SECRET")))
        .form(&[
            ("grant_type", "password"),
            ("username", var("TESSERA_ADMIN_USERNAME").as_str()),
            ("password", var("TESSERA_ADMIN_PASSWORD").as_str()),
        ])
        .send()
        .unwrap();
    let status = resp.status();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(status, 200);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&var("TESSERA_ADMIN_PASSWORD")),
        "credentials printed once on stdout"
    );
}

/// Starts the binary in `dir` on `port` and waits until it listens and has written its
/// first-start credentials.
fn start_server(dir: &std::path::Path, port: u16, stdout: Stdio) -> std::process::Child {
    start_server_with(dir, port, stdout, &[])
}

/// The README's "Try it with curl" commands, run as printed by bash and curl against the real
/// binary (only the port is changed, to a free one).
#[test]
fn the_readme_curl_commands_work_as_printed() {
    let stdout = run_readme_section("## Try it with curl", &["/token", "/revoke"]);
    for expected in [
        "\"scope\":\"PRODUCTION\"",
        "Refresh token was already used; every token of its grant is revoked.\"}{",
        "\"active\":true",
        "{\"active\":false}",
        "HTTP/1.1 200 OK",
        "Refresh token is revoked.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected} in:\n{stdout}"
        );
    }
}

/// The README's Wazo commands (the seeds' curl commands), run as printed.
#[test]
fn the_readme_wazo_curl_commands_work_as_printed() {
    let stdout = run_readme_section("## Try the Wazo API with curl", &["/api/auth/0.1/token"]);
    for expected in [
        "\"xivo_user_uuid\"",
        "refresh token: ",
        "\"client_id\":\"example\"",
        "401\n204\n",
        "same refresh token",
        "204\n{\"reason\":[\"Authentication Failed\"]",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected} in:\n{stdout}"
        );
    }
}

/// Runs the `sh` blocks of a README section with bash against a fresh server; returns stdout.
fn run_readme_section(heading: &str, must_mention: &[&str]) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split(heading)
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let mut script = String::from("set -eu\n");
    for block in section.split("```sh\n").skip(1) {
        script.push_str(block.split("```").next().unwrap());
        script.push('\n');
    }
    assert!(must_mention.iter().all(|m| script.contains(m)), "{script}");

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let script = script.replace("127.0.0.1:9497", &format!("127.0.0.1:{port}"));
    let mut server = start_server(dir.path(), port, Stdio::null());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The CLI sets what the Wazo dialect shows: uuid, tenant (with sub-tenants), purpose, email,
/// ACL; a confirmed email logs in; disabling a user ends its sessions at once.
#[test]
fn the_cli_sets_wazo_user_attributes_and_disabling_ends_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .args(args)
            .env_remove("TESSERA_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let port = free_port();
    let mut server = start_server(dir.path(), port, Stdio::null());
    let root = "8e5d6b2e-3f0a-4c55-9d3e-2b1f6a0c9d11";
    let child = "1c9a4f7e-52b8-4d1a-8f6e-7a3b2c1d0e99";
    let user = "5b7c9d1e-2f3a-4b5c-8d7e-9f0a1b2c3d4e";
    run(&["tenant", "add", "root", "--uuid", &root.to_uppercase()]);
    run(&["tenant", "add", "child", "--uuid", child, "--parent", root]);
    assert!(run(&["tenant", "list"]).contains(&format!("child\t{child}\t{root}")));
    run(&[
        "user",
        "add",
        "heidi",
        "--uuid",
        user,
        "--tenant",
        root,
        "--email",
        "Heidi@Example.org",
        "--email-confirmed",
        "--purpose",
        "external_api",
    ]);
    run(&[
        "user",
        "set",
        "heidi",
        "--acl",
        "auth.users.me.#",
        "--acl",
        "confd.read",
    ]);
    let shown = run(&["user", "show", "heidi"]);
    for line in [
        &format!("uuid: {user}"),
        &format!("tenant_uuid: {root}"),
        "purpose: external_api",
        "email: Heidi@Example.org (confirmed)",
        "acl: auth.users.me.# confd.read",
    ] {
        assert!(shown.contains(line), "{line} missing in {shown}");
    }

    let http = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}/0.1");
    let mut passwd = Command::new(BIN)
        .current_dir(dir.path())
        .args(["user", "passwd", "heidi", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        passwd
            .stdin
            .take()
            .unwrap()
            .write_all(b"pw-heidi\n")
            .unwrap();
    }
    assert!(passwd.wait().unwrap().success());
    let resp = http
        .post(format!("{base}/token"))
        .basic_auth("HEIDI@example.ORG", Some("pw-heidi"))
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let data: serde_json::Value = resp.json().unwrap();
    let token = data["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(data["data"]["metadata"]["purpose"], "external_api");
    assert_eq!(
        data["data"]["metadata"]["pbx_user_uuid"],
        serde_json::Value::Null
    );
    assert_eq!(data["data"]["metadata"]["tenant_uuid"], root);
    let check = |query: &str| {
        http.head(format!("{base}/token/{token}{query}"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(check(&format!("?tenant={child}")), 204);
    assert_eq!(check("?scope=confd.read"), 204);
    assert_eq!(check("?scope=confd.write"), 403);

    run(&["user", "disable", "heidi"]);
    assert_eq!(check(""), 404);
    server.kill().unwrap();
    let _ = server.wait();
}

/// `*_at` fields are server local time without offset, `utc_*_at` UTC: in a zone one hour east
/// of UTC they differ by exactly one hour, as wazo-auth's integration test asserts.
#[test]
fn local_and_utc_times_differ_by_the_zone_offset() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start_server_with(dir.path(), port, Stdio::null(), &[("TZ", "UTC-1")]);
    let creds = std::fs::read_to_string(dir.path().join("data/initial-credentials.env")).unwrap();
    let value = |key: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_owned()
    };
    let http = reqwest::blocking::Client::new();
    let resp = http
        .post(format!("http://127.0.0.1:{port}/0.1/token"))
        .basic_auth(
            value("TESSERA_ADMIN_USERNAME"),
            Some(value("TESSERA_ADMIN_PASSWORD")),
        )
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let data = resp.json::<serde_json::Value>().unwrap()["data"].clone();
    let token = data["token"].as_str().unwrap().to_owned();
    let got = http
        .get(format!("http://127.0.0.1:{port}/0.1/token/{token}"))
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap()["data"]
        .clone();
    server.kill().unwrap();
    let _ = server.wait();
    let parse = |v: &serde_json::Value, format: &str| {
        chrono::NaiveDateTime::parse_from_str(v.as_str().unwrap(), format).unwrap()
    };
    // POST: microseconds everywhere, parsable with %f.
    let local = parse(&data["issued_at"], "%Y-%m-%dT%H:%M:%S.%6f");
    let utc = parse(&data["utc_issued_at"], "%Y-%m-%dT%H:%M:%S.%6f");
    assert_eq!((local - utc).num_seconds(), 3600);
    // GET: whole seconds, no fraction locally, `.000000` in UTC.
    let local = parse(&got["issued_at"], "%Y-%m-%dT%H:%M:%S");
    let utc = parse(&got["utc_issued_at"], "%Y-%m-%dT%H:%M:%S.%6f");
    assert!(got["utc_issued_at"].as_str().unwrap().ends_with(".000000"));
    assert_eq!((local - utc).num_seconds(), 3600);
}

/// `tessera policy show` prints each key's effective value and the table it came from.
#[test]
fn policy_show_names_where_each_value_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "[policy.clients.\"mobile-app\"]\nrefresh_token_ttl = 2592000\nreuse_grace = 30\n",
    )
    .unwrap();
    let show = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&file)
            .args(["policy", "show"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        show(&["--client", "mobile-app", "--dialect", "wazo"]),
        "access_token_ttl = 7200  # from [policy.wazo]\n\
         rotate_refresh_tokens = false  # from [policy.wazo]\n\
         refresh_token_ttl = 2592000  # from [policy.clients.\"mobile-app\"]\n\
         extend_on_rotation = true  # from [policy]\n\
         refresh_idle_timeout = 0  # from [policy]\n\
         refresh_family_max_age = 0  # from [policy]\n\
         reuse_detection = true  # from [policy]\n\
         reuse_grace = 30  # from [policy.clients.\"mobile-app\"]\n\
         reuse_grace_max = 1  # from [policy]\n\
         token_format = \"opaque\"  # from [policy.wazo]\n"
    );
    assert_eq!(
        show(&[]),
        "access_token_ttl = 3600  # from [policy]\n\
         rotate_refresh_tokens = true  # from [policy]\n\
         refresh_token_ttl = 86400  # from [policy]\n\
         extend_on_rotation = true  # from [policy]\n\
         refresh_idle_timeout = 0  # from [policy]\n\
         refresh_family_max_age = 0  # from [policy]\n\
         reuse_detection = true  # from [policy]\n\
         reuse_grace = 0  # from [policy]\n\
         reuse_grace_max = 1  # from [policy]\n\
         token_format = \"opaque\"  # from [policy]\n"
    );
}
