//! `docs/configuration.md` documents exactly the keys of `conf/tessera.toml` (issue 7 check 5):
//! a key in the file but not in the docs, or documented under a table the file does not have,
//! fails this test. Each key is a `| \`key\` |` row under the `## \`[table]\`` heading.
use std::collections::BTreeSet;

/// `(table, key)` for every key assignment of the shipped configuration.
fn shipped_keys() -> BTreeSet<(String, String)> {
    let text = include_str!("../../conf/tessera.toml");
    let mut table = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_owned();
            continue;
        }
        let key = line.split('=').next().unwrap().trim();
        keys.insert((table.clone(), key.to_owned()));
    }
    keys
}

/// `(table, key)` for every key row of the configuration reference.
fn documented_keys() -> BTreeSet<(String, String)> {
    let text = include_str!("../../docs/configuration.md");
    let mut table = None;
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            table = heading
                .strip_prefix("`[")
                .and_then(|h| h.strip_suffix("]`"))
                .map(str::to_owned);
            continue;
        }
        let Some(table) = &table else { continue };
        if let Some(row) = line.strip_prefix("| `") {
            let key = row.split('`').next().unwrap();
            let is_key = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_key {
                keys.insert((table.clone(), key.to_owned()));
            }
        }
    }
    keys
}

#[test]
fn every_shipped_key_is_documented_and_every_documented_key_exists() {
    let shipped = shipped_keys();
    let documented = documented_keys();
    assert!(shipped.len() > 30, "the parser found the keys: {shipped:?}");
    let undocumented: Vec<_> = shipped.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&shipped).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "in conf/tessera.toml but not in docs/configuration.md: {undocumented:?}\n\
         in docs/configuration.md but not in conf/tessera.toml: {unknown:?}"
    );
}
