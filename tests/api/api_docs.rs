//! Every curl example in `docs/api.md` runs against a live server (issue 7 check 4).
//!
//! The page's `sh` and `bash` blocks run as printed, in order, in one `bash` with
//! `set -euo pipefail`, in the directory of a freshly started `tessera` binary; only the port
//! `127.0.0.1:9497` is changed to a free one, and `tessera` runs the binary under test. What each
//! example promises is checked:
//! - every answer a `curl` gets is a 2xx, unless the command is followed by a `# NNN` comment
//!   (then each of its answers is NNN, and the command prints exactly NNN) or the block's info
//!   string says so (```` ```sh expect=401 ````);
//! - a `# {…}` comment right after a command, or a ```` ```json ```` block right after the example
//!   (for the last command of the block that printed), shows the answer: every member it shows
//!   is in the answer, with the same JSON type, and booleans and `null` with the same value. `…`
//!   stands for what is left out (members, elements, or a value);
//! - a `curl` command anywhere else on the page (prose, a comment, another kind of block) fails
//!   the test, so that no example escapes it.
//!
//! The examples read answers with `jq`, which a fresh machine may lack (the rest of the suite
//! assumes only `bash`, `curl` and `python3`). Without `jq` on the `PATH`, the script defines a
//! `jq` function in python3 that knows exactly the form the page uses, `jq -r .key[.key…]`, and
//! fails loudly on any other. A second run forces that stand-in, so it is tested on every
//! machine, with `jq` installed or not.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{BIN, free_port, start_server_with};

const PAGE: &str = include_str!("../../docs/api.md");

/// The port the page's examples use.
const DOC_ADDRESS: &str = "127.0.0.1:9497";

/// One command of an example: a line and its `\` continuations.
#[derive(Debug)]
struct Step {
    /// 1-based line in the page.
    line: usize,
    text: String,
    /// The `# …` comment right after it, when it shows an output (`# 204`, `# {…}`).
    shows: Option<String>,
}

impl Step {
    /// The status a `# NNN` comment promises.
    fn shown_status(&self) -> Option<&str> {
        self.shows.as_deref().filter(|s| is_status(s))
    }
}

/// A `sh` or `bash` block of the page.
#[derive(Debug)]
struct Example {
    line: usize,
    /// `expect=NNN` in the info string: the status of every answer in the block.
    expect: Option<String>,
    steps: Vec<Step>,
    /// The `json` block right after this one: the answer of its last command that printed.
    answer: Option<(usize, String)>,
}

/// The page's examples, and the lines of curl commands outside them.
fn examples(page: &str) -> (Vec<Example>, Vec<(usize, String)>) {
    let lines: Vec<&str> = page.lines().collect();
    let mut examples: Vec<Example> = Vec::new();
    let mut stray = Vec::new();
    // The example a `json` block may follow, while nothing but blank lines came since.
    let mut last_example: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let Some(info) = line.trim_start().strip_prefix("```") else {
            if !line.trim().is_empty() {
                last_example = None;
            }
            if curl_commands(line) > 0 {
                stray.push((i + 1, line.to_owned()));
            }
            i += 1;
            continue;
        };
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .unwrap_or_else(|| panic!("docs/api.md:{}: unclosed code block", i + 1));
        let body = &lines[start..end];
        let mut words = info.split_whitespace();
        match words.next() {
            Some("sh" | "bash") => {
                let expect = words
                    .find_map(|w| w.strip_prefix("expect="))
                    .map(str::to_owned);
                assert!(
                    expect.as_deref().is_none_or(is_status),
                    "docs/api.md:{}: expect= takes a status",
                    i + 1
                );
                let (steps, comments) = steps(body, start + 1);
                stray.extend(comments);
                examples.push(Example {
                    line: i + 1,
                    expect,
                    steps,
                    answer: None,
                });
                last_example = Some(examples.len() - 1);
                i = end + 1;
                continue;
            }
            Some("json") if last_example.is_some() => {
                let example = &mut examples[last_example.unwrap()];
                example.answer = Some((i + 1, body.join("\n")));
            }
            _ => {}
        }
        for (j, line) in body.iter().enumerate() {
            if curl_commands(line) > 0 {
                stray.push((start + j + 1, (*line).to_owned()));
            }
        }
        last_example = None;
        i = end + 1;
    }
    (examples, stray)
}

/// Splits a block into commands; returns them and the comment lines that mention curl.
fn steps(body: &[&str], first_line: usize) -> (Vec<Step>, Vec<(usize, String)>) {
    let mut steps: Vec<Step> = Vec::new();
    let mut stray = Vec::new();
    let mut continued = false;
    // Whether the previous line ended a command or continued the comment shown after it.
    let mut after_command = false;
    for (j, line) in body.iter().enumerate() {
        if continued {
            let step = steps.last_mut().unwrap();
            step.text.push('\n');
            step.text.push_str(line);
            continued = line.ends_with('\\');
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            after_command = false;
        } else if let Some(comment) = trimmed.strip_prefix('#') {
            if curl_commands(comment) > 0 {
                stray.push((first_line + j, (*line).to_owned()));
            }
            let comment = comment.trim();
            let step = steps.last_mut().filter(|_| after_command);
            match step {
                Some(Step {
                    shows: Some(shows), ..
                }) => {
                    shows.push(' ');
                    shows.push_str(comment);
                }
                Some(step)
                    if comment.starts_with('{')
                        || comment.starts_with('[')
                        || is_status(comment) =>
                {
                    step.shows = Some(comment.to_owned());
                }
                _ => after_command = false,
            }
        } else {
            steps.push(Step {
                line: first_line + j,
                text: (*line).to_owned(),
                shows: None,
            });
            continued = line.ends_with('\\');
            after_command = true;
        }
    }
    assert!(!continued, "line {first_line}: a block ends with `\\`");
    (steps, stray)
}

fn is_status(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())
}

/// How many curl commands `text` holds: `curl` as a word, then an option, a quote, a URL or a
/// variable (so `curl/8.0` and "a curl command" do not count).
fn curl_commands(text: &str) -> usize {
    text.match_indices("curl")
        .filter(|&(at, _)| {
            let before = text[..at].chars().next_back();
            let after = &text[at + "curl".len()..];
            let starts_command = before.is_none_or(|c| c.is_whitespace() || "($|;&`".contains(c));
            let rest = after.trim_start();
            starts_command
                && after.starts_with(char::is_whitespace)
                && (rest.starts_with(['-', '"', '\'', '$']) || rest.starts_with("http"))
        })
        .count()
}

/// Set (to anything) in the script's environment, it makes the script use [`JQ_STAND_IN`] even
/// when `jq` is installed.
const FORCE_JQ_STAND_IN: &str = "__DOC_JQ_STAND_IN";

/// `jq` for a machine without it: `jq -r .key[.key…]`, the one form docs/api.md uses, read as jq
/// does (a missing key or a key of `null` is `null`; a string is printed raw, anything else as
/// indented JSON; no input prints nothing). Any other form, or indexing a string, a number or an
/// array, fails with a message on stderr. Each call writes `@@jq` on stderr, so the test can tell
/// it ran.
const JQ_STAND_IN: &str = r#"if [ -n "${__DOC_JQ_STAND_IN:-}" ] || ! command -v jq >/dev/null 2>&1; then
__doc_jq_py='
import json, re, sys
args = sys.argv[1:]
if len(args) != 2 or args[0] != "-r" or not re.fullmatch(r"(\.[A-Za-z_][A-Za-z0-9_]*)+", args[1]):
    sys.exit("jq (python3 stand-in): unsupported form: jq %s\n"
             "It knows only `jq -r .key[.key...]`; install jq, or teach tests/api/api_docs.rs the new form."
             % " ".join(args))
text = sys.stdin.read()
if not text.strip():
    sys.exit(0)
value = json.loads(text)
for key in args[1].split(".")[1:]:
    if value is None:
        continue
    if not isinstance(value, dict):
        sys.exit("jq (python3 stand-in): error: cannot index %s with \"%s\"" % (type(value).__name__, key))
    value = value.get(key)
print(value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False))
'
# The interpreter itself, not a wrapper such as pyenv's shim, which costs 0.1 s a call.
__doc_python=$(python3 -c 'import sys; print(sys.executable or "python3")')
jq() {
    printf '@@jq stand-in\n' >&2
    "$__doc_python" -c "$__doc_jq_py" "$@"
}
fi
"#;

/// Run before the examples: `tessera` is the binary under test, and `curl` records the status of
/// each answer on stderr (`@@curl NNN`) and fails on one the example does not expect.
const PRELUDE: &str = r#"set -euo pipefail
tessera() { "$TESSERA_BIN" "$@"; }
__doc_expect=2xx
__doc_step() {
    __doc_expect=$3
    printf '\n@@step %s\n' "$1 $2"
    printf '\n@@step %s\n' "$1 $2" >&2
}
curl() {
    local headers status rc=0
    headers=$(mktemp)
    command curl -D "$headers" "$@" || rc=$?
    status=$(sed -n 's|^HTTP/[0-9.]* \([0-9][0-9][0-9]\).*|\1|p' "$headers" | tail -n 1)
    rm -f "$headers"
    printf '@@curl %s\n' "${status:-none}" >&2
    if [ "$rc" -ne 0 ]; then return "$rc"; fi
    case "$__doc_expect" in
        2xx) [[ $status == 2?? ]] ;;
        *) [[ $status == "$__doc_expect" ]] ;;
    esac || {
        printf 'HTTP status %s, the example expects %s\n' "${status:-none}" "$__doc_expect" >&2
        return 22
    }
}
"#;

/// The examples as one script, each command announced by `__doc_step BLOCK STEP EXPECTED`.
fn script(examples: &[Example], port: u16) -> String {
    let mut script = String::from(PRELUDE);
    script.push_str(JQ_STAND_IN);
    for (b, example) in examples.iter().enumerate() {
        for (s, step) in example.steps.iter().enumerate() {
            let expect = step
                .shown_status()
                .or(example.expect.as_deref())
                .unwrap_or("2xx");
            writeln!(script, "__doc_step {b} {s} {expect}").unwrap();
            script.push_str(&step.text.replace(DOC_ADDRESS, &format!("127.0.0.1:{port}")));
            script.push('\n');
        }
    }
    script.push_str("__doc_step end end 2xx\n");
    script
}

/// Splits an output at the `@@step` markers: `"b s"` → what that step wrote.
fn by_step(output: &str) -> HashMap<String, String> {
    output
        .split("\n@@step ")
        .skip(1)
        .map(|chunk| {
            let (key, text) = chunk.split_once('\n').unwrap_or((chunk, ""));
            (key.to_owned(), text.to_owned())
        })
        .collect()
}

/// Reads an output shown in the page as JSON. `…` where a value belongs matches any value;
/// elsewhere it stands for members or elements left out, and goes with one comma.
fn shown_json(text: &str) -> Result<Value, serde_json::Error> {
    let mut json = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            json.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                json.push(c);
            }
            '…' => {
                let before = json.trim_end().chars().next_back();
                if before == Some(':') {
                    json.push_str("\"…\"");
                    continue;
                }
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                if chars.next_if_eq(&',').is_none() && before == Some(',') {
                    json.truncate(json.trim_end().len() - 1);
                }
            }
            _ => json.push(c),
        }
    }
    serde_json::from_str(&json)
}

/// Whether `actual` has every member `shown` shows, with the same types, booleans and nulls.
/// Each element of a shown array must match some element of the actual one.
fn shows(shown: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (shown, actual) {
        (Value::String(s), _) if s == "…" => Ok(()),
        (Value::Object(want), Value::Object(got)) => want.iter().try_for_each(|(key, value)| {
            let path = format!("{path}.{key}");
            match got.get(key) {
                Some(actual) => shows(value, actual, &path),
                None => Err(format!("{path} is missing")),
            }
        }),
        (Value::Array(want), Value::Array(got)) => {
            want.iter().enumerate().try_for_each(|(i, value)| {
                if got.iter().any(|actual| shows(value, actual, "").is_ok()) {
                    Ok(())
                } else {
                    Err(format!("{path}[{i}] = {value} matches no element"))
                }
            })
        }
        (Value::String(_), Value::String(_)) | (Value::Number(_), Value::Number(_)) => Ok(()),
        (Value::Bool(_) | Value::Null, _) if shown == actual => Ok(()),
        _ => Err(format!(
            "{path}: the page shows {shown}, the server answered {actual}"
        )),
    }
}

/// Checks that a command printed what the page shows after it (`line` is where it is shown).
fn check_shown(shown: &str, printed: &str, line: usize, port: u16) {
    let printed = printed.trim();
    if is_status(shown) {
        assert_eq!(printed, shown, "docs/api.md:{line}: the command printed");
        return;
    }
    let shown = shown.replace(DOC_ADDRESS, &format!("127.0.0.1:{port}"));
    let shown = shown_json(&shown)
        .unwrap_or_else(|e| panic!("docs/api.md:{line}: the output shown is not JSON ({e})"));
    let actual: Value = serde_json::from_str(printed).unwrap_or_else(|e| {
        panic!("docs/api.md:{line}: the command printed no JSON ({e}):\n{printed}")
    });
    if let Err(why) = shows(&shown, &actual, "$") {
        panic!("docs/api.md:{line}: {why}\nthe server answered: {printed}");
    }
}

/// The server process, stopped when the test ends, even by a panic.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_curl_example_in_the_api_docs_works_as_printed() {
    run_the_examples(false);
}

/// The same run with the python3 `jq` stand-in, whether `jq` is installed or not.
#[test]
fn every_curl_example_in_the_api_docs_works_without_jq() {
    run_the_examples(true);
}

/// Runs every example of the page against a fresh server and checks what each shows; with
/// `jq_stand_in`, `jq` is the python3 stand-in.
fn run_the_examples(jq_stand_in: bool) {
    let (examples, stray) = examples(PAGE);
    assert!(
        stray.is_empty(),
        "curl commands outside the examples that run:\n{stray:#?}"
    );
    let commands: usize = examples
        .iter()
        .flat_map(|e| &e.steps)
        .map(|s| curl_commands(&s.text))
        .sum();
    assert_eq!(
        commands,
        PAGE.lines().map(curl_commands).sum::<usize>(),
        "every curl command of the page runs"
    );
    assert_ne!(commands, 0, "no curl command found");

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // What the Wazo examples assume: a server in UTC+2 (POSIX writes it UTC-2) and a XIVO_UUID.
    let env = [
        ("TZ", "UTC-2"),
        ("XIVO_UUID", "d0a1e5b4-7c3f-4a8e-9b2d-6f1e0c9a8b7d"),
    ];
    let server = Server(start_server_with(dir.path(), port, Stdio::null(), &env));
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(script(&examples, port))
        .current_dir(dir.path())
        .env("TESSERA_BIN", BIN)
        .env_remove("TESSERA_CONFIG")
        .env_remove(FORCE_JQ_STAND_IN);
    if jq_stand_in {
        bash.env(FORCE_JQ_STAND_IN, "1");
    }
    let out = bash.output().unwrap();
    drop(server);
    let stdout = by_step(&String::from_utf8_lossy(&out.stdout));
    let stderr = by_step(&String::from_utf8_lossy(&out.stderr));

    if !out.status.success() || !stdout.contains_key("end end") {
        // The last step announced on stderr is the one that failed.
        let err = String::from_utf8_lossy(&out.stderr);
        let key = err
            .rsplit("\n@@step ")
            .next()
            .and_then(|chunk| chunk.lines().next())
            .unwrap_or_default();
        let (b, s) = key.split_once(' ').unwrap_or_default();
        let step = b
            .parse::<usize>()
            .ok()
            .zip(s.parse::<usize>().ok())
            .map(|(b, s)| (&examples[b], &examples[b].steps[s]));
        match step {
            Some((example, step)) => panic!(
                "docs/api.md:{}: the example of line {} failed ({}):\n{}\n--- stdout:\n{}\n--- stderr:\n{}",
                step.line,
                example.line,
                out.status,
                step.text,
                stdout.get(key).map_or("", String::as_str),
                stderr.get(key).map_or("", String::as_str),
            ),
            None => panic!("the examples did not run ({}):\n{err}", out.status),
        }
    }

    for (b, example) in examples.iter().enumerate() {
        let mut last_printed = None;
        for (s, step) in example.steps.iter().enumerate() {
            let key = format!("{b} {s}");
            let printed = stdout.get(&key).map_or("", String::as_str);
            let answers = stderr.get(&key).map_or(0, |e| {
                e.lines().filter(|l| l.starts_with("@@curl ")).count()
            });
            assert_eq!(
                answers,
                curl_commands(&step.text),
                "docs/api.md:{}: each curl of the command ran once",
                step.line
            );
            if let Some(shown) = &step.shows {
                check_shown(shown, printed, step.line, port);
            }
            if !printed.trim().is_empty() {
                last_printed = Some(printed);
            }
        }
        if let Some((line, answer)) = &example.answer {
            let printed = last_printed
                .unwrap_or_else(|| panic!("docs/api.md:{line}: the example above printed nothing"));
            check_shown(answer, printed, *line, port);
        }
    }
    if jq_stand_in {
        let uses = examples
            .iter()
            .flat_map(|e| &e.steps)
            .map(|s| s.text.matches("| jq ").count())
            .sum::<usize>();
        let calls = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| *l == "@@jq stand-in")
            .count();
        assert_ne!(uses, 0, "the page uses jq");
        assert_eq!(calls, uses, "every jq of the page ran the stand-in");
    }
}

/// The stand-in answers as jq does for the form the page uses, and refuses every other form.
#[test]
fn the_jq_stand_in_reads_the_pages_form_and_refuses_the_rest() {
    let answer = r#"{"data":{"token":"t-1","expires_at":7,"acl":["a"],"none":null}}"#;
    // (input, arguments, what it prints on stdout, or the error it gives on stderr)
    let cases: &[(&str, &str, Result<&str, &str>)] = &[
        (answer, "-r .data.token", Ok("t-1\n")),
        (answer, "-r .data.expires_at", Ok("7\n")),
        (answer, "-r .data.acl", Ok("[\n  \"a\"\n]\n")),
        (answer, "-r .data.missing", Ok("null\n")),
        (answer, "-r .data.none.deeper", Ok("null\n")),
        ("", "-r .data", Ok("")),
        (answer, ".data.token", Err("unsupported form")),
        (answer, "-e .data.token", Err("unsupported form")),
        (answer, "-r '.data | keys'", Err("unsupported form")),
        (answer, "-r '.[0]'", Err("unsupported form")),
        (answer, "-r .data.token extra", Err("unsupported form")),
        (answer, "-r .data.token.deeper", Err("cannot index str")),
    ];
    // One bash for every case: the stand-in looks python3 up once per script.
    let mut script = format!("set -euo pipefail\n{JQ_STAND_IN}");
    for (i, (input, args, _)) in cases.iter().enumerate() {
        writeln!(
            script,
            "printf '\\n@@step %s\\n' {i}; printf '\\n@@step %s\\n' {i} >&2\n\
             printf '%s' '{input}' | jq {args} && s=0 || s=$?\n\
             printf '@@exit %s\\n' \"$s\" >&2"
        )
        .unwrap();
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env(FORCE_JQ_STAND_IN, "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = by_step(&String::from_utf8_lossy(&out.stdout));
    let stderr = by_step(&String::from_utf8_lossy(&out.stderr));
    for (i, (_, args, expected)) in cases.iter().enumerate() {
        let printed = stdout[&i.to_string()].as_str();
        let errors = stderr[&i.to_string()].as_str();
        let ok = errors.contains("@@exit 0\n");
        match expected {
            Ok(want) => {
                assert!(ok, "jq {args}: {errors}");
                assert_eq!(printed, *want, "jq {args}");
            }
            Err(why) => {
                assert!(!ok, "jq {args} printed {printed}");
                assert!(errors.contains(why), "jq {args}: {errors}");
            }
        }
    }
}
