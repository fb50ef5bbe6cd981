//! Issue 6: `GET /openapi.yaml` serves `docs/openapi.yaml` byte for byte, the document is
//! well-formed, and it documents exactly the routes `src/http/routes.rs` registers: a route added
//! without documentation, or documentation left behind by a removed route, fails here.
//!
//! The document is read with a small structural scanner (block-style YAML as the file is
//! written: two-space indentation, no tabs, no flow-style paths). The full YAML and OpenAPI 3.1
//! validation is schemathesis's, in `scripts/api-fuzz.sh`, which refuses a document it cannot
//! load before it sends a single request.
use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use tessera::http::routes::WAZO_PREFIXES;

use crate::helpers::{Db, TestApp};

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn manifest_file(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn document() -> String {
    manifest_file("docs/openapi.yaml")
}

/// `/users/{user}/tokens` and `/users/{user_uuid}/tokens` are the same route.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// The lines of the top-level section `name:` (up to the next top-level key).
fn section<'a>(doc: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("{name}:");
    doc.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .collect()
}

/// A key at exactly `indent` spaces: `  /token:` gives `/token`.
fn key_at(line: &str, indent: usize) -> Option<&str> {
    let rest = line.strip_prefix(&" ".repeat(indent))?;
    if rest.starts_with(' ') || rest.starts_with('#') || rest.starts_with('-') {
        return None;
    }
    let (key, _) = rest.split_once(':')?;
    Some(key.trim_matches('\''))
}

/// Every documented operation: normalized path → methods.
fn documented_operations(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut operations: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in section(doc, "paths") {
        if let Some(path) = key_at(line, 2) {
            assert!(
                path.starts_with('/'),
                "a path key must start with /: {line:?}"
            );
            let path = normalize(path);
            assert!(
                !operations.contains_key(&path),
                "{path} is documented twice (up to parameter names)"
            );
            operations.insert(path.clone(), BTreeSet::new());
            current = Some(path);
        } else if let Some(method) = key_at(line, 4).filter(|k| HTTP_METHODS.contains(k)) {
            let path = current.clone().expect("a method under a path");
            operations
                .entry(path)
                .or_default()
                .insert(method.to_uppercase());
        }
    }
    operations
}

/// Every route of `src/http/routes.rs`: normalized path → methods, the Wazo routes under both
/// prefixes. Read from the source text, so that no route escapes the comparison.
fn registered_routes() -> BTreeMap<String, BTreeSet<String>> {
    let source = manifest_file("src/http/routes.rs");
    let code: String = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    let (top_level, wazo) = code
        .split_once("fn wazo_routes")
        .expect("routes.rs defines fn wazo_routes");
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (part, prefixes) in [(top_level, vec![""]), (wazo, WAZO_PREFIXES.to_vec())] {
        // Resources are made by `resource(prefix, "/path")` and `aliased("/pattern",
        // "/alias")`: the path routed is the last string literal of the call; calls without
        // a literal are the helpers' own definitions.
        let part = part.replace("aliased(", "resource(");
        for resource in part.split("resource(").skip(1) {
            let (paths, rest) = resource.split_once(')').expect("resource(…) is closed");
            let Some(path) = paths.split('"').skip(1).step_by(2).last() else {
                continue;
            };
            let literals = [path];
            let methods: BTreeSet<String> = rest
                .split("web::")
                .skip(1)
                .filter_map(|call| call.split_once("()").map(|(name, _)| name.trim()))
                .filter(|name| HTTP_METHODS.contains(name))
                .map(str::to_uppercase)
                .collect();
            assert!(!methods.is_empty(), "no method routed for {literals:?}");
            for prefix in &prefixes {
                for path in &literals {
                    routes
                        .entry(normalize(&format!("{prefix}{path}")))
                        .or_default()
                        .extend(methods.iter().cloned());
                }
            }
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_docs_openapi_yaml_byte_for_byte() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let resp = app
        .http
        .get(app.url("/openapi.yaml"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/yaml")
    );
    let body = resp.bytes().await.expect("body read");
    assert!(
        body.as_ref() == document().as_bytes(),
        "the served document differs from docs/openapi.yaml (rebuild?)"
    );
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let routes = registered_routes();
    let documented = documented_operations(&document());
    // Sanity: the scanner saw both dialects.
    assert!(routes.contains_key("/oauth2/token") && routes.contains_key("/0.1/token/{}"));
    for (path, methods) in &routes {
        let Some(doc) = documented.get(path) else {
            panic!("{path} ({methods:?}) is routed but not in docs/openapi.yaml");
        };
        assert_eq!(
            doc, methods,
            "{path}: documented methods differ from routed ones"
        );
    }
    for path in documented.keys() {
        assert!(
            routes.contains_key(path),
            "{path} is in docs/openapi.yaml but routes.rs does not route it"
        );
    }
}

#[test]
fn the_document_is_well_formed() {
    let doc = document();
    assert!(
        doc.starts_with("openapi: 3.1.0\n"),
        "an OpenAPI 3.1 document"
    );
    assert!(!doc.contains('\t'), "YAML indentation never uses tabs");
    for key in ["info", "servers", "paths", "components"] {
        assert!(
            doc.lines().any(|l| l == format!("{key}:")),
            "top-level {key}"
        );
    }
    // Every `$ref` names a component that exists.
    let mut components: BTreeSet<String> = BTreeSet::new();
    let mut kind = String::new();
    for line in section(&doc, "components") {
        if let Some(k) = key_at(line, 2) {
            kind = k.to_owned();
        } else if let Some(name) = key_at(line, 4) {
            components.insert(format!("#/components/{kind}/{name}"));
        }
    }
    for reference in doc.split("$ref: '").skip(1) {
        let target = reference.split('\'').next().unwrap_or_default();
        assert!(
            components.contains(target),
            "$ref to a missing component: {target}"
        );
    }
    // Every alias refers to an anchor defined before it.
    let mut anchors: BTreeSet<&str> = BTreeSet::new();
    for line in doc.lines() {
        let value = line.split_once(": ").map(|(_, v)| v.trim());
        if let Some(anchor) = value.and_then(|v| v.strip_prefix('&')) {
            let name = anchor.split_whitespace().next().unwrap_or_default();
            assert!(anchors.insert(name), "anchor &{name} defined twice");
        } else if let Some(alias) = value.and_then(|v| v.strip_prefix('*')) {
            assert!(anchors.contains(alias), "alias *{alias} before its anchor");
        }
    }
    // operationIds are unique, and every link names one of them.
    let ids: Vec<&str> = section(&doc, "paths")
        .into_iter()
        .filter_map(|l| l.trim().strip_prefix("operationId: "))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "duplicate operationId");
    for line in section(&doc, "components") {
        if let Some(target) = line.trim().strip_prefix("operationId: ") {
            assert!(
                unique.contains(target),
                "link to unknown operation {target}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_reaches_a_handler() {
    let app = TestApp::spawn(Db::Sqlite).await;
    for (path, methods) in documented_operations(&document()) {
        let url = app.url(&path.replace("{}", "x"));
        for method in methods {
            let method = Method::from_bytes(method.as_bytes()).expect("HTTP method");
            let resp = app
                .http
                .request(method.clone(), &url)
                .send()
                .await
                .expect("request sent");
            let status = resp.status().as_u16();
            let body = resp.bytes().await.expect("body read");
            assert_ne!(status, 405, "{method} {path}: not routed");
            // actix's own 404 for an unknown path has no body; the handlers' 404s all have one.
            assert!(
                !(status == 404 && body.is_empty() && method != Method::HEAD),
                "{method} {path}: no such route"
            );
        }
    }
}
