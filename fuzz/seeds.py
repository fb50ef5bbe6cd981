#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, fuzz/seeds/<target>/, from the tests.

Run by scripts/fuzz-seeds.sh. Each seed is an input the test suite already sends or parses,
taken from the literals of the unit tests of the parsers (src/http/params.rs,
src/http/credentials.rs, src/oauth/acl.rs, src/domain/scope.rs, src/oauth/scope.rs,
src/crypto/jwt.rs) and of the integration tests (tests/api/*.rs): form bodies, JSON bodies
(json! literals made plain JSON), Basic headers and credentials, ACL tables, scopes, JWT
claims. Literals built at run time (format!, variables) are skipped; a few seeds that only
make sense for a target's input format (the route and Authorization bytes of
token_endpoints, a token signed by the fixture key) are written here explicitly. The output
is deterministic: one file per distinct seed, named by the SHA-1 of its content as libFuzzer
names corpus files, and a target's directory is rewritten from scratch on every run.
"""

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
API_TESTS = sorted((ROOT / "tests" / "api").glob("*.rs"))

# --- Rust literals ---------------------------------------------------------------------------

# A string or byte-string literal, plain or raw (r"", r#""#, br#""#).
LITERAL = re.compile(
    r'(?P<prefix>b?)(?:r(?P<hashes>#*)"(?P<raw>.*?)"(?P=hashes)|"(?P<body>(?:[^"\\]|\\.)*)")',
    re.S,
)


def unescape(body: str, is_bytes: bool) -> bytes:
    """The value of a non-raw Rust literal's body."""
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = body[i + 1]
        i += 2
        if n in "nrt0\\\"'":
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0"}.get(n, n.encode())
        elif n == "x":
            value = int(body[i : i + 2], 16)
            out += bytes([value]) if is_bytes else chr(value).encode()
            i += 2
        elif n == "u":
            end = body.index("}", i)
            out += chr(int(body[i + 1 : end], 16)).encode()
            i = end + 1
        elif n == "\n":  # a line continuation: the newline and the next line's indent go
            while i < len(body) and body[i] in " \t\n":
                i += 1
    return bytes(out)


def literals(text: str):
    """Every string literal of `text` as (bytes, start, end)."""
    for m in LITERAL.finditer(text):
        if m.group("raw") is not None:
            value = m.group("raw").encode()
        else:
            value = unescape(m.group("body"), bool(m.group("prefix")))
        yield value, m.start(), m.end()


def call_args(text: str, name: str):
    """The source of the parenthesised arguments of every call `name(…)`."""
    for m in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text[m.end() : i - 1]


def only_literal(arg: str):
    """The value of an argument that is one literal (`.to_vec()`, `&` allowed), else None."""
    arg = arg.strip().removeprefix("&").removesuffix(".to_vec()").strip()
    for value, start, end in literals(arg):
        if start == 0 and end == len(arg):
            return value
    return None


def json_macros(text: str):
    """json!({…}) / json!([…]) literals that are plain JSON once Rust syntax is removed."""
    for arg in call_args(text, "json!"):
        plain = re.sub(r",(\s*[}\]])", r"\1", arg)
        try:
            yield json.loads(plain)
        except (ValueError, RecursionError):
            continue


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_sources():
    return [read(p) for p in API_TESTS]


# --- the seeds per target --------------------------------------------------------------------

FORM_NAMES = re.compile(rb"(^|&)(grant_type|token|client_id|client_secret|username|scope|"
                        rb"refresh_token|password|token_type_hint|a|p0)=")


def form_seeds():
    seeds = set()
    sources = test_sources() + [read(ROOT / "src/http/params.rs")]
    for text in sources:
        for name in [".body", "from_form", "reject_sensitive_query"]:
            for arg in call_args(text, name):
                value = only_literal(arg)
                if value is not None and not value.startswith((b"{", b"[")):
                    seeds.add(value)
        for value, _, _ in literals(text):
            if FORM_NAMES.search(value) and b"{" not in value:
                seeds.add(value)
        # .form(&[("name", "value"), …]) as the client sends it.
        for arg in call_args(text, ".form"):
            pairs = re.findall(r'\(\s*"((?:[^"\\]|\\.)*)"\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)', arg)
            if pairs:
                decoded = [(unescape(k, False), unescape(v, False)) for k, v in pairs]
                seeds.add(urllib.parse.urlencode(decoded).encode())
    return seeds


def json_seeds():
    seeds = set()
    for text in test_sources() + [read(ROOT / "src/http/params.rs")]:
        for name in [".body", "from_json", "wazo_post_token", "post_json"]:
            for arg in call_args(text, name):
                value = only_literal(arg)
                if value is not None and value.lstrip().startswith((b"{", b"[")):
                    seeds.add(value)
        for value, _, _ in literals(text):
            if value.startswith(b"{\"") or value == b"[1]":
                seeds.add(value)
        for value in json_macros(text):
            seeds.add(json.dumps(value, separators=(",", ":")).encode())
    return seeds


# token_endpoints: byte 0 picks the route, byte 1 the Authorization header (see the target).
OAUTH2_FORM, OAUTH2_JSON, TOKEN_FORM, WAZO_JSON = b"0", b"1", b"2", b"4"
NO_AUTH, CLIENT, LOGIN_WRONG = b"0", b"1", b"3"


def token_seeds(forms, jsons):
    seeds = set()
    for body in forms:
        seeds.add(OAUTH2_FORM + CLIENT + body)
        seeds.add(TOKEN_FORM + NO_AUTH + body)
    for body in jsons:
        seeds.add(WAZO_JSON + LOGIN_WRONG + body)
        seeds.add(OAUTH2_JSON + CLIENT + body)
    seeds |= {
        OAUTH2_FORM + NO_AUTH
        + b"grant_type=client_credentials&client_id={client_id}&client_secret={client_secret}",
        OAUTH2_FORM + CLIENT + b"grant_type=client_credentials&scope=read",
        OAUTH2_FORM + CLIENT + b"grant_type=password&username={username}&password=wrong",
        OAUTH2_FORM + CLIENT + b"grant_type=refresh_token&refresh_token=abc&scope=read",
        OAUTH2_JSON + CLIENT + b'{"grant_type":"client_credentials","scope":"read"}',
        WAZO_JSON + NO_AUTH + b'{"client_id":"{client_id}","refresh_token":"x"}',
        WAZO_JSON + LOGIN_WRONG + b'{"expiration":60,"access_type":"offline","client_id":"a"}',
    }
    return seeds


def basic_seeds():
    seeds = set()
    sources = test_sources() + [read(ROOT / "src/http/credentials.rs")]
    for text in sources:
        for value, _, _ in literals(text):
            if re.match(rb"(?i)(basic|bearer)( |$)", value) and b"{" not in value:
                seeds.add(value)
        for arg in call_args(text, "encode"):
            value = only_literal(arg)
            if value is not None and b":" in value:
                seeds.add(value)
                seeds.add(b"Basic " + base64.b64encode(value))
        for arg in call_args(text, "basic_auth"):
            found = [v for v, _, _ in literals(arg)]
            if len(found) == 2 and re.fullmatch(r'\s*"[^"]*"\s*,\s*Some\("[^"]*"\)\s*', arg):
                pair = found[0] + b":" + found[1]
                seeds.add(pair)
                seeds.add(b"Basic " + base64.b64encode(pair))
        # Form bodies with client credentials, for the body-versus-header rule.
        for value, _, _ in literals(text):
            if re.search(rb"client_(id|secret)=", value) and b"{" not in value:
                seeds.add(value)
    return seeds


def acl_seeds():
    seeds = set()
    text = read(ROOT / "src/oauth/acl.rs")
    # ME in the unit tests: auth_id 1234-uuid, session sess-1.
    me = b"\n1234-uuid\nsess-1\n"
    row = re.compile(r'\(\s*&\[(?P<acl>[^\]]*)\]\s*,\s*(?P<req>"(?:[^"\\]|\\.)*")\s*,\s*'
                     r'(?:true|false)\s*,?\s*\)', re.S)
    for m in row.finditer(text):
        acl = [v for v, _, _ in literals(m.group("acl"))]
        required = only_literal(m.group("req"))
        seeds.add(required + me + b"\n".join(acl))
    call = re.compile(r'is_allowed\(&\[(?P<acl>[^\]]*)\]\s*,\s*(?P<req>"[^"]*")\s*,\s*none\)')
    for m in call.finditer(text):
        acl = [v for v, _, _ in literals(m.group("acl"))]
        seeds.add(only_literal(m.group("req")) + b"\n\n\n" + b"\n".join(acl))
    # ACLs of the users and policies the integration tests create.
    for source in test_sources():
        for value in json_macros(source):
            stack = [value]
            while stack:
                v = stack.pop()
                if isinstance(v, dict):
                    for k, item in v.items():
                        if k in ("acl", "scopes") and isinstance(item, list):
                            entries = [e.encode() for e in item if isinstance(e, str)]
                            for required in entries[:1] or [b"auth.tokens.read"]:
                                seeds.add(required + b"\nuser-uuid\nsession-uuid\n"
                                          + b"\n".join(entries))
                        stack.append(item)
                elif isinstance(v, list):
                    stack.extend(v)
    # The hostile pattern of `hostile_patterns_stay_fast`.
    seeds.add(b"a." * 400 + me + b"#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.x")
    return seeds


def scope_seeds():
    seeds = set()
    sources = test_sources() + [read(ROOT / "src/domain/scope.rs"),
                                read(ROOT / "src/oauth/scope.rs")]
    for text in sources:
        for name in ["ScopeSet::parse", "set"]:
            for arg in call_args(text, name):
                value = only_literal(arg)
                if value is not None:
                    seeds.add(value)
        for m in re.finditer(r'\(\s*"scope"\s*,\s*("(?:[^"\\]|\\.)*")\s*\)', text):
            seeds.add(only_literal(m.group(1)))
        for value in json_macros(text):
            if isinstance(value, dict) and isinstance(value.get("scope"), str):
                seeds.add(value["scope"].encode())
    # Every literal of the scope parser's own tests (the refused characters among them).
    text = read(ROOT / "src/domain/scope.rs")
    seeds |= {v for v, _, _ in literals(text[text.index("mod tests"):])}
    # The grant tables of src/oauth/scope.rs: requested, client scopes, defaults, user ACL.
    text = read(ROOT / "src/oauth/scope.rs")
    for test in re.split(r"#\[test\]", text)[1:]:
        clients = [[[v for v, _, _ in literals(part)] for part in m]
                   for m in re.findall(r"client\(&\[([^\]]*)\],\s*&\[([^\]]*)\]\)", test)]
        users = [[v for v, _, _ in literals(m)] for m in re.findall(r"user\(&\[([^\]]*)\]\)", test)]
        requests = [v for arg in call_args(test, "set") if (v := only_literal(arg)) is not None]
        for scopes, defaults in clients:
            for acl in [None] + users:
                for requested in requests or [b""]:
                    lines = [requested, b" ".join(scopes), b" ".join(defaults)]
                    if acl is not None:
                        lines.append(b" ".join(acl))
                    seeds.add(b"\n".join(lines))
    return seeds


def jwt_seeds():
    seeds = set()
    text = read(ROOT / "src/crypto/jwt.rs")
    for arg in call_args(text, "SIGNER.verify"):
        value = only_literal(arg)
        if value is not None:
            seeds.add(value)
    garbage = text[text.index("fn garbage_is_refused_without_panicking"):]
    garbage = garbage[: garbage.index("] {")]
    for value, _, _ in literals(garbage):
        if b"{" not in value:
            seeds.add(value)
    # The claims of the unit tests' `claims()`, and their constants.
    fields = {k: v for k, v in re.findall(r'(\w+): "([^"]*)",', text)}
    consts = dict(re.findall(r"const (EXP|IAT): i64 = ([\d_]+);", text))
    claims = [fields.get(k, "") for k in ("iss", "sub", "aud", "client_id")]
    iat, exp = consts.get("IAT", "0").replace("_", ""), consts.get("EXP", "0").replace("_", "")
    for scope in ["openid email", "openid", ""]:
        lines = claims + [scope, fields.get("jti", ""), iat, exp, "100"]
        seeds.add(("sign\n" + "\n".join(lines)).encode())
    token = signed_token(fields, scope="openid", iat=int(iat), exp=int(exp))
    if token:
        seeds.add(token)
        header, payload, signature = token.split(b".")
        seeds.add(header + b"." + payload)
        seeds.add(header + b"." + payload + b".")
    return seeds


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def signed_token(fields, scope, iat, exp):
    """A token as JwtSigner::sign makes it, signed with the fixture key by openssl."""
    key = FUZZ / "fixtures" / "jwt-signing-key.pem"
    try:
        modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"],
                                 check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"fuzz-seeds: no signed JWT seed (openssl: {e})", file=sys.stderr)
        return None
    n = bytes.fromhex(modulus.decode().strip().split("=", 1)[1])
    e = (65537).to_bytes(3, "big")
    canonical = b'{"e":"%s","kty":"RSA","n":"%s"}' % (b64url(e), b64url(n))
    kid = b64url(hashlib.sha256(canonical).digest()).decode()
    header = {"alg": "RS256", "typ": "at+jwt", "kid": kid}
    claims = {"iss": fields["iss"], "sub": fields["sub"], "aud": fields["aud"], "exp": exp,
              "iat": iat, "jti": fields["jti"], "client_id": fields["client_id"],
              "scope": scope}
    compact = lambda v: json.dumps(v, separators=(",", ":")).encode()  # noqa: E731
    signing_input = b64url(compact(header)) + b"." + b64url(compact(claims))
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                               input=signing_input, check=True, capture_output=True).stdout
    return signing_input + b"." + b64url(signature)


def write(target: str, seeds):
    directory = FUZZ / "seeds" / target
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    print(f"{target}: {len(seeds)} seeds")


def main():
    forms, jsons = form_seeds(), json_seeds()
    write("form_body", forms)
    write("json_body", jsons)
    write("token_endpoints", token_seeds(forms, jsons))
    write("basic_credentials", basic_seeds())
    write("acl_match", acl_seeds())
    write("scope_parse", scope_seeds())
    write("jwt_verify", jwt_seeds())


if __name__ == "__main__":
    main()
