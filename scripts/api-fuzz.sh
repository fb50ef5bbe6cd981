#!/usr/bin/env bash
# Fuzzes the live HTTP API with schemathesis against the OpenAPI document the server serves
# (`GET /openapi.yaml`, compiled in from docs/openapi.yaml): every operation of both dialects,
# positive and negative data, stateful sequences along the document's links. Fails on any 5xx,
# any answer whose status, content type, headers or body the document does not describe, and
# any crash (of schemathesis or of the server).
#
#   scripts/api-fuzz.sh                  # 200 examples per operation
#   EXAMPLES=25 scripts/api-fuzz.sh      # what .ci/run does
#   SEED=1234 scripts/api-fuzz.sh        # reproduce a run
#
# Environment:
#   EXAMPLES            examples per operation in the fuzzing phase (default 200)
#   SEED                hypothesis seed (default: random, printed)
#   WORKERS             schemathesis workers (default 1: hypothesis is not thread-safe)
#   MAX_STEPS           longest stateful sequence (default 6)
#   CHECKS              schemathesis checks (default: no 5xx; status code, content type,
#                       headers and body as documented)
#   PHASES              schemathesis phases (default all: examples,coverage,fuzzing,stateful)
#   BRUTE_FORCE_LIMITS  off (default) or shipped, see below
#   REPORT_DIR          where the JUnit and NDJSON reports go (default: the temporary
#                       directory, removed unless the run fails)
#   TESSERA_BIN         the server binary (default: target/debug/tessera, built here)
#   PYTHON              the interpreter for schemathesis (default python3)
#
# The server runs on a free loopback port with a fresh SQLite database in a temporary directory.
# Authentication is wired per security scheme of the document: `clientBasic` is the bootstrap
# client, `wazoUserBasic` the bootstrap admin (ACL `#`), `wazoToken` a Wazo login of a user
# `fuzz-operator` (ACL `#` in the admin's tenant, minus ending its own session), `bearerAuth` an
# OAuth2 token of a user `fuzz-auditor` scoped `auth.tokens.revoke auth.tokens.introspect`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${EXAMPLES:-200}
WORKERS=${WORKERS:-1}
MAX_STEPS=${MAX_STEPS:-6}
CHECKS=${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}
PYTHON=${PYTHON:-python3}

say() { printf '==> %s\n' "$*"; }
die() {
    printf 'api-fuzz: %s\n' "$*" >&2
    exit 1
}

# --- schemathesis -----------------------------------------------------------------------------
# The pinned version, from PyPI: in the user site of $PYTHON, or, where that is refused (an
# externally managed Python), in a virtual environment kept under ~/.cache.
installed_version() {
    "$PYTHON" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true
}
if [[ $(installed_version) != "$SCHEMATHESIS_VERSION" ]]; then
    say "installing schemathesis $SCHEMATHESIS_VERSION (PyPI)"
    if ! "$PYTHON" -m pip install --user --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" >&2; then
        venv=${XDG_CACHE_HOME:-$HOME/.cache}/tessera-api-fuzz/venv
        "$PYTHON" -m venv "$venv" || die "cannot create a virtual environment in $venv"
        PYTHON=$venv/bin/python
        if [[ $(installed_version) != "$SCHEMATHESIS_VERSION" ]]; then
            "$PYTHON" -m pip install --quiet --disable-pip-version-check \
                "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
                || die "cannot install schemathesis $SCHEMATHESIS_VERSION"
        fi
    fi
fi
[[ $(installed_version) == "$SCHEMATHESIS_VERSION" ]] \
    || die "schemathesis $SCHEMATHESIS_VERSION is not importable by $PYTHON"
schemathesis() {
    "$PYTHON" -c 'import sys; from schemathesis.cli import schemathesis as st
sys.argv[0] = "schemathesis"; sys.exit(st())' "$@"
}

# --- the server -------------------------------------------------------------------------------
if [[ -z ${TESSERA_BIN:-} ]]; then
    say "cargo build"
    cargo build --quiet --bin tessera
    TESSERA_BIN=target/debug/tessera
fi
[[ -x $TESSERA_BIN ]] || die "$TESSERA_BIN is not an executable"

work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-api-fuzz.XXXXXX")
chmod 700 "$work"
server_pid=""
status=1
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $status -ne 0 ]]; then
        if [[ -s $work/server.log ]]; then
            echo "--- last lines of the server log ($work/server.log) ---" >&2
            grep -v '^First start' "$work/server.log" | tail -n 40 >&2 || true
        fi
        echo "api-fuzz: kept $work for inspection" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

export TESSERA_SERVER__BIND="127.0.0.1:$port"
export TESSERA_SERVER__DATA_DIR="$work/data"
export TESSERA_SERVER__WORKERS=4
export TESSERA_DATABASE__URL="sqlite://$work/data/tessera.db"
export TESSERA_WAZO__XIVO_UUID=6e9a3c1f-2b4d-4e8a-9f1c-0d2e3b4a5c6d
# Thousands of logins of one user: the session limit (429, documented) would end the successful
# ones after a hundred.
export TESSERA_WAZO__MAX_USER_CONCURRENT_SESSIONS=1000000
# Likewise the brute-force limits of `[security]`: thousands of wrong passwords and secrets from
# one address would lock every login out within seconds, and the run would test little but the
# refusal. BRUTE_FORCE_LIMITS=shipped keeps the shipped limits (their answers are documented too).
if [[ ${BRUTE_FORCE_LIMITS:-off} == off ]] && grep -q '^login_failures' conf/tessera.toml; then
    export TESSERA_SECURITY__LOGIN_FAILURES=0 TESSERA_SECURITY__ADDRESS_FAILURES=0
    export TESSERA_SECURITY__CLIENT_FAILURES=0
fi
export TESSERA_LOG__LEVEL=warn
unset TESSERA_CONFIG

say "starting $TESSERA_BIN on $base"
mkdir -p "$work/data"
"$TESSERA_BIN" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if "$PYTHON" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
        "$base/healthz" 2>/dev/null; then
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || die "the server exited at start"
    sleep 0.2
done
[[ -s $work/data/initial-credentials.env ]] || die "no initial credentials written"
# shellcheck disable=SC1091
. "$work/data/initial-credentials.env"

new_secret() { "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))'; }
json_path() { "$PYTHON" -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[k]
print(v)' "$@"; }
admin_tenant=$("$TESSERA_BIN" user show "$TESSERA_ADMIN_USERNAME" | sed -n 's/^tenant_uuid: //p')

# A public client, so `client_id` alone in the body authenticates too.
"$TESSERA_BIN" client add fuzz-public --public --scope '#' >/dev/null
# The X-Auth-Token holder: everything in the admin's tenant except ending its own session, which
# the fuzzer would otherwise find in a listing and delete.
operator_password=$(new_secret)
"$TESSERA_BIN" user add fuzz-operator --password-stdin --tenant "$admin_tenant" --purpose internal \
    --acl '!auth.sessions.my_session.delete' --acl '!auth.users.*.sessions.my_session.delete' \
    --acl '#' <<<"$operator_password" >/dev/null
# The bearer of revocations and introspections, in a tenant of its own, out of the operator's
# sight for the same reason.
auditor_password=$(new_secret)
"$TESSERA_BIN" user add fuzz-auditor --password-stdin --acl 'auth.tokens.#' \
    <<<"$auditor_password" >/dev/null

# --- credentials for the security schemes -----------------------------------------------------
FUZZ_BEARER=$(curl -sS --fail -u "$TESSERA_CLIENT_ID:$TESSERA_CLIENT_SECRET" \
    -d grant_type=password -d username=fuzz-auditor --data-urlencode "password=$auditor_password" \
    --data-urlencode "scope=auth.tokens.revoke auth.tokens.introspect" \
    "$base/oauth2/token" | json_path access_token)
FUZZ_WAZO_TOKEN=$(curl -sS --fail -u "fuzz-operator:$operator_password" \
    -H 'Content-Type: application/json' -d '{"expiration": 86400}' \
    "$base/0.1/token" | json_path data token)
export FUZZ_CLIENT_ID=$TESSERA_CLIENT_ID FUZZ_CLIENT_SECRET=$TESSERA_CLIENT_SECRET
export FUZZ_ADMIN_USERNAME=$TESSERA_ADMIN_USERNAME FUZZ_ADMIN_PASSWORD=$TESSERA_ADMIN_PASSWORD
export FUZZ_BEARER FUZZ_WAZO_TOKEN

# The schemathesis configuration: the credentials of each security scheme (read from the
# environment), values mixed into bodies so that password grants and logins also succeed, no
# reuse of values seen in answers while fuzzing (each operation then gets its full count of
# distinct examples; the coverage phase and the links still use them), and only the document's
# own links for stateful sequences.
cat >"$work/schemathesis.toml" <<EOF
[auth.openapi.clientBasic]
username = "\${FUZZ_CLIENT_ID}"
password = "\${FUZZ_CLIENT_SECRET}"

[auth.openapi.wazoUserBasic]
username = "\${FUZZ_ADMIN_USERNAME}"
password = "\${FUZZ_ADMIN_PASSWORD}"

[auth.openapi.bearerAuth]
bearer = "\${FUZZ_BEARER}"

[auth.openapi.wazoToken]
api_key = "\${FUZZ_WAZO_TOKEN}"

[dictionaries.usernames]
values = ["$TESSERA_ADMIN_USERNAME"]

[dictionaries.passwords]
values = ["$TESSERA_ADMIN_PASSWORD"]

[dictionaries.client_ids]
values = ["$TESSERA_CLIENT_ID", "fuzz-public"]

[parameters]
"body.username" = { dictionary = "usernames", probability = 0.5 }
"body.password" = { dictionary = "passwords", probability = 0.5 }
"body.client_id" = { dictionary = "client_ids", probability = 0.3 }

[phases.fuzzing.extra-data-sources]
responses = false

[phases.stateful]
max-steps = $MAX_STEPS

[phases.stateful.inference]
algorithms = []
EOF

# --- the run ----------------------------------------------------------------------------------
report_dir=${REPORT_DIR:-$work/report}
mkdir -p "$report_dir"
report_dir=$(cd "$report_dir" && pwd)
args=(
    run "$base/openapi.yaml"
    # Selects every operation, GET /openapi.yaml included (left out by default, as it serves
    # the schema document itself).
    --include-path-regex '^/'
    --checks "$CHECKS"
    --max-examples "$EXAMPLES"
    --workers "$WORKERS"
    --request-timeout 30
    --report 'junit,ndjson'
    --report-dir "$report_dir"
    --no-color
)
[[ -n ${SEED:-} ]] && args+=(--seed "$SEED")
[[ -n ${PHASES:-} ]] && args+=(--phases "$PHASES")

say "schemathesis $SCHEMATHESIS_VERSION: $EXAMPLES examples per operation, $WORKERS workers"
started=$(date +%s)
set +e
# From the temporary directory, where schemathesis and hypothesis keep their caches.
(cd "$work" && schemathesis --config-file "$work/schemathesis.toml" "${args[@]}") 2>&1 \
    | tee "$work/schemathesis.log"
st_status=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - started))

kill -0 "$server_pid" 2>/dev/null || {
    st_status=1
    echo "api-fuzz: the server died during the run" >&2
}

# --- summary ----------------------------------------------------------------------------------
echo
"$PYTHON" - "$report_dir" "$elapsed" "$st_status" <<'PY'
import collections, glob, json, sys

report_dir, elapsed, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
operations, statuses, failures = set(), collections.Counter(), 0
for path in glob.glob(f"{report_dir}/ndjson-*.ndjson"):
    for line in open(path, encoding="utf-8"):
        event = json.loads(line)
        (kind, body), = event.items()
        if kind != "ScenarioFinished":
            continue
        recorder = body.get("recorder") or {}
        if recorder.get("label") != "Stateful tests":
            operations.add(recorder.get("label"))
        for interaction in (recorder.get("interactions") or {}).values():
            response = interaction.get("response") or {}
            statuses[response.get("status_code", "no response")] += 1
        for checks in (recorder.get("checks") or {}).values():
            failures += sum(1 for c in checks if c.get("status") == "failure")
requests = sum(statuses.values())
by_class = collections.Counter(
    f"{s // 100}xx" if isinstance(s, int) else s for s in statuses.elements()
)
print(f"==> api-fuzz summary: {len(operations)} operations, {requests} requests in {elapsed}s, "
      f"failed checks: {failures}, schemathesis exit: {status}")
print("    responses: " + ", ".join(f"{k}: {v}" for k, v in sorted(by_class.items(), key=str)))
PY
status=$st_status
exit "$status"
