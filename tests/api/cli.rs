//! The binary: `config check` names a bad key, and a first start on an empty database creates
//! the administrator and a client whose credentials work at once.
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

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
    let child = Command::new(BIN)
        .current_dir(dir)
        .env("TESSERA_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env_remove("TESSERA_CONFIG")
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let creds_file = dir.join("data/initial-credentials.env");
    for _ in 0..600 {
        if creds_file.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The README's "Try it with curl" commands, run as printed by bash and curl against the real
/// binary (only the port is changed, to a free one).
#[test]
fn the_readme_curl_commands_work_as_printed() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Try it with curl")
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
    assert!(
        script.contains("/token") && script.contains("/revoke"),
        "{script}"
    );

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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "\"scope\":\"PRODUCTION\"",
        "Refresh token was already used.",
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
