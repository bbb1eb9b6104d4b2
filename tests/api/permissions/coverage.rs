//! What the matrix covers: every route the server wires has rows (read from the source of its
//! routing functions), every route left to another suite names a test that exists, and the
//! README's "Who may do what" agrees with the matrix.

use reqwest::StatusCode;

use crate::both_backends;

use super::MATRIX;

/// Routes and page actions that are public or belong to the OAuth suites (client
/// authentication, the browser flow), each with the test that covers it (`module::test`, its
/// path in this binary): `every_exemption_names_a_test_that_exists` fails when that test is gone
/// or renamed.
const COVERED_ELSEWHERE: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "health::healthz_and_readyz_answer"),
    ("GET", "/readyz", "health::healthz_and_readyz_answer"),
    (
        "GET",
        "/.well-known/jwks.json",
        "oauth::tokens::forged_or_confused_jwts_are_refused_at_the_api",
    ),
    (
        "GET",
        "/.well-known/oauth-authorization-server",
        "openapi::public_answers_match_the_document",
    ),
    (
        "GET",
        "/.well-known/openid-configuration",
        "oidc::discovery_says_exactly_what_is_supported_at_both_addresses",
    ),
    (
        "GET",
        "/.well-known/oauth-protected-resource",
        "verify_crate::the_actix_extractor_answers_in_the_envelope",
    ),
    // Dynamic registration (off, token, open) and its attacks.
    (
        "POST",
        "/oauth/register",
        "agents::registration::a_flood_of_registrations_from_one_address_is_refused",
    ),
    (
        "GET",
        "/oauth/logout",
        "oidc_logout::an_expired_or_foreign_hint_asks_first",
    ),
    (
        "POST",
        "/oauth/logout",
        "oidc_logout::an_expired_or_foreign_hint_asks_first",
    ),
    (
        "GET",
        "/oauth/authorize",
        "oauth::refusals::consent_needs_its_csrf_token_and_a_signed_in_user",
    ),
    (
        "POST",
        "/oauth/authorize",
        "oauth::refusals::consent_needs_its_csrf_token_and_a_signed_in_user",
    ),
    (
        "POST",
        "/oauth/token",
        "dpop::the_token_endpoint_wants_a_fresh_single_use_proof_with_its_nonce",
    ),
    // Pushed authorization requests and their attacks.
    (
        "POST",
        "/oauth/par",
        "par::an_app_that_requires_pushed_requests_cannot_be_started_from_a_plain_link",
    ),
    // Device authorization, its page and its attacks.
    (
        "POST",
        "/oauth/device_authorization",
        "device::a_cli_signs_in_once_the_user_approves_its_code",
    ),
    (
        "GET",
        "/device",
        "device::a_cli_signs_in_once_the_user_approves_its_code",
    ),
    (
        "POST",
        "/device",
        "device::denied_expired_and_foreign_device_codes_give_nothing",
    ),
    (
        "GET",
        "/docs/errors",
        "api_envelope::error_catalogue_documents_every_code",
    ),
    (
        "GET",
        "/static/app.css",
        "permissions::coverage::static_assets_are_served_to_anyone",
    ),
    (
        "GET",
        "/static/app.js",
        "permissions::coverage::static_assets_are_served_to_anyone",
    ),
    ("GET", "/", "sessions::logout_ends_the_session_for_good"),
    (
        "GET",
        "/login",
        "sessions::logout_ends_the_session_for_good",
    ),
    (
        "POST",
        "/login",
        "sessions::logout_ends_the_session_for_good",
    ),
    (
        "POST",
        "/logout",
        "sessions::logout_needs_the_session_csrf_token",
    ),
    ("GET", "/signup", "account_audit::sign_ups_are_audited"),
    ("POST", "/signup", "account_audit::sign_ups_are_audited"),
];

#[test]
fn every_exemption_names_a_test_that_exists() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let mut missing = Vec::new();
    for (method, path, test) in COVERED_ELSEWHERE {
        let (module, name) = test.rsplit_once("::").expect("module::test");
        let file = dir.join(module.replace("::", "/"));
        let source = std::fs::read_to_string(file.with_extension("rs"))
            .or_else(|_| std::fs::read_to_string(file.join("mod.rs")))
            .unwrap_or_default();
        let defined = source.contains(&format!("fn {name}("))
            || source.contains(&format!("both_backends!(\n    {name},"))
            || source.contains(&format!("both_backends!({name},"));
        if !defined {
            missing.push(format!("{method} {path}: {test}"));
        }
    }
    assert!(
        missing.is_empty(),
        "exemptions naming tests that do not exist: {missing:?}"
    );
}

both_backends!(static_assets_are_served_to_anyone, |app| async move {
    for (path, kind) in [
        ("/static/app.css", "text/css"),
        ("/static/app.js", "javascript"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.contains(kind), "{path}: {content_type}");
    }
});

/// The bodies of every `fn …routes(` in the server's source, wherever the routes are wired.
fn routing_functions() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, found: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (at, _) in source.match_indices("fn ") {
                let name_end = source[at..].find('(').map_or(at, |p| at + p);
                let name = &source[at + 3..name_end];
                if !name.ends_with("routes") || name.contains(char::is_whitespace) {
                    continue;
                }
                // The function ends at the first closing brace in column 0.
                let body_end = source[at..].find("\n}").map_or(source.len(), |p| at + p);
                found.push((path.display().to_string(), source[at..body_end].to_owned()));
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

/// The (method, path) pairs the server wires, read from the source of its routing functions
/// (`fn routes` in `src/app.rs` today; any `fn …routes(` under `src/` where they move).
pub(crate) fn wired_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (file, routes_fn) in routing_functions() {
        routes.extend(routes_in(&file, &routes_fn));
    }
    routes
}

fn routes_in(file: &str, routes_fn: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    // `api_resource("/v1/…", "GET, POST")` and `resource("/oauth/…", "GET")`: the second
    // argument is the `Allow` list, which must name exactly the methods routed inside.
    let starts: Vec<usize> = routes_fn
        .match_indices("resource(\"")
        .map(|(at, _)| at + "resource(\"".len())
        .collect();
    for (i, &at) in starts.iter().enumerate() {
        let rest = &routes_fn[at..];
        let path = &rest[..rest.find('"').unwrap()];
        let after = &rest[path.len() + 1..];
        let methods_start = after.find('"').unwrap() + 1;
        let methods =
            &after[methods_start..methods_start + after[methods_start..].find('"').unwrap()];
        let block_end = starts.get(i + 1).map_or(rest.len(), |next| next - at);
        let routed: Vec<String> = rest[..block_end]
            .match_indices("web::")
            .filter_map(|(w, _)| {
                let name = &rest[w + "web::".len()..];
                let name = &name[..name.find('(')?];
                ["get", "post", "put", "patch", "delete"]
                    .contains(&name)
                    .then(|| name.to_uppercase())
            })
            .collect();
        let allowed: Vec<String> = methods.split(", ").map(str::to_owned).collect();
        assert_eq!(
            routed, allowed,
            "{file} {path}: Allow list vs routed methods"
        );
        for m in allowed {
            routes.push((m, path.to_owned()));
        }
    }
    assert!(
        !routes_fn.contains(".route(\""),
        "{file}: every route is wired through resource() or api_resource() (405 with Allow)"
    );
    routes
}

/// How many (method, path) routes were wired when the reader was taught to follow the routes
/// wherever they are wired (the crate split).
const ROUTES_AT_THE_SPLIT: usize = 107;

/// Routes removed on purpose since then: (method, path, why). A route that disappears from the
/// reader's sight without a row here fails `the_route_reader_still_sees_every_route`.
const REMOVED_ROUTES: &[(&str, &str, &str)] = &[];

#[test]
fn the_route_reader_still_sees_every_route() {
    let wired = wired_routes();
    assert!(
        wired.len() + REMOVED_ROUTES.len() >= ROUTES_AT_THE_SPLIT,
        "the route reader finds {} routes (+{} removed on purpose), fewer than the {} wired at \
         the split: routes moved where `wired_routes` does not look, or were removed without a \
         row in REMOVED_ROUTES",
        wired.len(),
        REMOVED_ROUTES.len(),
        ROUTES_AT_THE_SPLIT
    );
    for (method, path, why) in REMOVED_ROUTES {
        assert!(!why.is_empty(), "{method} {path}: say why it was removed");
        assert!(
            !wired.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is listed as removed but is still wired"
        );
    }
    let mut unique = wired.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), wired.len(), "a route is wired twice");
}

/// A matrix path in the shape `src/app.rs` writes it (`{id}` placeholders).
fn as_pattern(path: &str) -> String {
    let path = path.split('?').next().unwrap();
    path.split('/')
        .map(|seg| match seg {
            "{member}" | "{admin}" | "{key}" | "{client}" | "{consent}" | "{member2}"
            | "{user3}" | "{ws}" | "{pws}" | "{inv}" | "{wskey}" => "{id}",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn route_matches(pattern: &str, path: &str) -> bool {
    let (a, b): (Vec<_>, Vec<_>) = (pattern.split('/').collect(), path.split('/').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || x.starts_with('{'))
}

#[test]
fn every_route_has_rows_in_the_matrix() {
    let wired = wired_routes();
    assert!(
        wired.len() > 40,
        "the route reader found {} routes",
        wired.len()
    );
    let missing: Vec<_> = wired
        .iter()
        .filter(|(method, path)| {
            let in_matrix = MATRIX
                .iter()
                .any(|(m, p, _, _)| m == method && route_matches(path, &as_pattern(p)));
            let elsewhere = COVERED_ELSEWHERE
                .iter()
                .any(|(m, p, _)| m == method && route_matches(path, p));
            !in_matrix && !elsewhere
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes without rows in the permission matrix: {missing:?}"
    );
}

#[test]
fn the_readme_says_who_may_do_what_for_every_api_route_of_the_matrix() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("## Who may do what")
        .expect("README has a \"Who may do what\" section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut missing = Vec::new();
    for (method, path, _, _) in MATRIX {
        if !(path.starts_with("/v1") || path.starts_with("/oauth")) {
            continue;
        }
        let pattern = as_pattern(path);
        let described = section.lines().any(|line| {
            line.starts_with('|')
                && line.contains(method)
                && [format!("{pattern}`"), format!("{pattern},")]
                    .iter()
                    .any(|token| line.contains(token.as_str()))
        });
        if !described {
            missing.push(format!("{method} {pattern}"));
        }
    }
    assert!(
        missing.is_empty(),
        "README's \"Who may do what\" lacks: {missing:?}"
    );
}
