#!/usr/bin/env bash
# Writes the seed corpora of the cargo-fuzz targets, fuzz/seeds/<target>/, from the literals of
# the tests (the parsers' unit tests and tests/api/*.rs): form and JSON bodies, Basic headers
# and credentials, ACL tables, scopes, JWT claims, and a token signed by the fixture key.
# Deterministic; rewrites each target's seed directory. See fuzz/seeds.py for what is taken
# from where, and docs/security.md, "Fuzzing the parsers".
#
#   scripts/fuzz-seeds.sh
#
# Needs python3 (and openssl, for the signed JWT seed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec "${PYTHON:-python3}" fuzz/seeds.py
