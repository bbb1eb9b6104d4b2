//! The floors of the house, held as tests: the core crate serves no HTTP (no web-serving or
//! templating crate anywhere in its dependency tree, as `cargo tree` resolves it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The names of the packages a package's build pulls in (normal dependencies, features as
/// that package alone enables them), as `cargo tree` resolves them.
fn dependency_tree(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Crates that serve HTTP or render templates: the server's business, never the core's.
fn serves_or_renders(name: &str) -> bool {
    const PREFIXES: &[&str] = &["actix", "askama", "axum", "warp", "rocket", "poem", "salvo"];
    const NAMES: &[&str] = &["tera", "handlebars", "minijinja", "maud", "tinytemplate"];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

#[test]
fn the_core_serves_no_http() {
    let core = dependency_tree("gatehouse-core");
    assert!(core.contains("diesel"), "the reader follows the tree");
    let forbidden: Vec<_> = core.iter().filter(|n| serves_or_renders(n)).collect();
    assert!(
        forbidden.is_empty(),
        "gatehouse-core depends on web-serving or templating crates: {forbidden:?}"
    );
    // The server does (the test would pass for a reader that sees nothing otherwise).
    let server = dependency_tree("gatehouse");
    assert!(server.iter().any(|n| n == "actix-web") && server.iter().any(|n| n == "askama"));
}

/// Each table's owner: the one file that creates, changes, deletes and queries its rows (a
/// folder, ending in `/`: the one room whose files share those tables, where one statement
/// spans them — a code's redemption starts its refresh family in one round trip). Every other
/// room asks the owner.
const OWNERS: &[(&str, &str)] = &[
    ("users", "gatehouse-core/src/accounts/model.rs"),
    ("sessions", "gatehouse-core/src/accounts/sessions.rs"),
    ("login_failures", "gatehouse-core/src/accounts/throttle.rs"),
    ("scopes", "gatehouse-core/src/scopes/registry.rs"),
    ("api_keys", "gatehouse-core/src/api_keys/model.rs"),
    ("audit_events", "gatehouse-core/src/audit.rs"),
    ("clients", "gatehouse-core/src/clients/mod.rs"),
    ("pushed_requests", "gatehouse-core/src/authorize/pushed.rs"),
    ("used_jtis", "gatehouse-core/src/clients/assertion.rs"),
    ("device_codes", "gatehouse-core/src/device/mod.rs"),
    (
        "registration_tokens",
        "gatehouse-core/src/clients/registration_tokens.rs",
    ),
    (
        "blocked_client_hosts",
        "gatehouse-core/src/clients/documents.rs",
    ),
    (
        "backchannel_logouts",
        "gatehouse-core/src/oidc/backchannel.rs",
    ),
    ("signing_keys", "gatehouse-core/src/jwt/keys.rs"),
    ("consents", "gatehouse-core/src/grants/"),
    ("auth_codes", "gatehouse-core/src/grants/"),
    ("refresh_families", "gatehouse-core/src/grants/"),
    ("refresh_tokens", "gatehouse-core/src/grants/"),
    (
        "revoked_access_tokens",
        "gatehouse-core/src/jwt/denylist.rs",
    ),
    ("workspaces", "gatehouse-core/src/workspaces/mod.rs"),
    ("workspace_members", "gatehouse-core/src/workspaces/mod.rs"),
    (
        "workspace_invitations",
        "gatehouse-core/src/workspaces/mod.rs",
    ),
];

/// Reads that join another room's table into an owner's own query, in one statement where two
/// would cost a round trip on a path that matters: (file, table, why). Never a write.
const JOINS: &[(&str, &str, &str)] = &[
    (
        "gatehouse-core/src/accounts/sessions.rs",
        "users",
        "a session is read with its user (every signed-in page)",
    ),
    (
        "gatehouse-core/src/api_keys/model.rs",
        "users",
        "a key is read with its owner (every key's first use)",
    ),
    (
        "gatehouse-core/src/api_keys/model.rs",
        "workspaces",
        "a key is read with its workspace's claim",
    ),
    (
        "gatehouse-core/src/api_keys/model.rs",
        "workspace_members",
        "a key is read with its owner's role",
    ),
    (
        "gatehouse-core/src/workspaces/mod.rs",
        "users",
        "members are listed with their names",
    ),
    (
        "gatehouse-core/src/grants/consents.rs",
        "clients",
        "approvals are listed with their apps' names",
    ),
    (
        "gatehouse-core/src/grants/consents.rs",
        "workspace_members",
        "a remembered workspace counts while the user is a member",
    ),
    (
        "gatehouse-core/src/grants/codes.rs",
        "workspaces",
        "a redeemed code carries the workspace claim",
    ),
    (
        "gatehouse-core/src/grants/codes.rs",
        "workspace_members",
        "a redeemed code carries the member's role",
    ),
    (
        "gatehouse-core/src/grants/families.rs",
        "workspaces",
        "a refresh carries the workspace claim",
    ),
    (
        "gatehouse-core/src/grants/families.rs",
        "workspace_members",
        "a refresh carries the member's role",
    ),
    (
        "gatehouse-core/src/clients/mod.rs",
        "workspace_members",
        "the apps a member controls are listed in one query",
    ),
];

fn rust_files(dir: &Path, found: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let relative = path.strip_prefix(root()).unwrap().display().to_string();
            found.push((relative, text));
        }
    }
}

/// The tables `schema.rs` declares.
fn tables() -> Vec<String> {
    let schema =
        std::fs::read_to_string(root().join("gatehouse-core/src/db/schema.rs")).expect("schema");
    schema
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.ends_with(") {") && !l.starts_with(' '))
        .filter_map(|l| l.split(" (").next())
        .map(str::to_owned)
        .collect()
}

/// The tables a file names through `schema::…` (one by one or in a `{…}` group) and in SQL.
fn tables_named(text: &str, tables: &[String]) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut named = BTreeSet::new();
    for (at, _) in code.match_indices("schema::") {
        let rest = &code[at + "schema::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            group[..group.find('}').unwrap_or(group.len())]
                .split(',')
                .map(|n| n.split(" as ").next().unwrap_or("").trim())
                .collect()
        } else {
            vec![
                rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or(""),
            ]
        };
        named.extend(
            names
                .into_iter()
                .filter(|n| tables.iter().any(|t| t == n))
                .map(str::to_owned),
        );
    }
    for table in tables {
        for verb in ["FROM ", "JOIN ", "UPDATE ", "INTO "] {
            if code.contains(&format!("{verb}{table} "))
                || code.contains(&format!("{verb}{table}\n"))
            {
                named.insert(table.clone());
            }
        }
    }
    named
}

/// Whether the file writes rows of `table` (Diesel or SQL).
fn writes(text: &str, table: &str) -> bool {
    [
        format!("insert_into({table}::table"),
        format!("update({table}::table"),
        format!("delete({table}::table"),
        format!("INSERT INTO {table} "),
        format!("UPDATE {table} "),
        format!("DELETE FROM {table} "),
    ]
    .iter()
    .any(|w| text.contains(w.as_str()))
}

/// `owner` (a file, or a folder ending in `/`) holds `file`.
fn owns(owner: &str, file: &str) -> bool {
    owner == file || (owner.ends_with('/') && file.starts_with(owner))
}

#[test]
fn every_table_is_queried_by_its_owner_only() {
    let tables = tables();
    assert!(tables.len() >= 20, "the schema reader found {tables:?}");
    for table in &tables {
        assert!(
            OWNERS.iter().any(|(t, _)| t == table),
            "the table {table} has no owner in OWNERS"
        );
    }
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("gatehouse-core/src"), &mut files);
    let mut strangers = Vec::new();
    for (file, text) in &files {
        if file.ends_with("db/schema.rs") {
            continue;
        }
        for table in tables_named(text, &tables) {
            let owner = OWNERS.iter().find(|(t, _)| *t == table).map(|(_, f)| *f);
            if owner.is_some_and(|o| owns(o, file)) {
                continue;
            }
            let joined = JOINS.iter().any(|(f, t, _)| f == file && *t == table);
            if !joined || writes(text, &table) {
                strangers.push(format!(
                    "{file} uses {table} (owner: {})",
                    owner.unwrap_or("?")
                ));
            }
        }
    }
    assert!(
        strangers.is_empty(),
        "tables used outside their owner (ask the owner, or list a read-only join in JOINS):\n{}",
        strangers.join("\n")
    );
    // The owners are real: each names its table (the test would pass for a reader that sees
    // nothing otherwise).
    for (table, owner) in OWNERS {
        let text: String = files
            .iter()
            .filter(|(f, _)| owns(owner, f))
            .map(|(_, t)| t.as_str())
            .collect();
        assert!(
            tables_named(&text, &tables).contains(*table),
            "{owner} does not query {table}"
        );
    }
    for (file, table, why) in JOINS {
        assert!(!why.is_empty());
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        assert!(
            tables_named(&text, &tables).contains(*table),
            "{file} no longer joins {table}: remove the row"
        );
    }
}

/// The longest a function may be, in lines from its signature to its closing brace.
const LONGEST_FUNCTION: usize = 75;

/// Tables that read best whole: (file, function, why). They may be as long as they need.
const TABLES: &[(&str, &str, &str)] = &[
    (
        "src/app.rs",
        "routes",
        "the route table: one resource per route",
    ),
    (
        "gatehouse-core/src/policy/mod.rs",
        "authorize",
        "the policy's decision table: one arm per action",
    ),
    (
        "src/openapi.rs",
        "security_schemes",
        "the OpenAPI security schemes, described",
    ),
    (
        "src/openapi.rs",
        "v1_error_responses",
        "the OpenAPI error responses, one per status",
    ),
];

/// (file, function, lines) of every function outside test modules (`#[cfg(test)]` modules
/// close each file, as clippy requires).
fn function_lengths() -> Vec<(String, String, usize)> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("gatehouse-core/src"), &mut files);
    let mut found = Vec::new();
    for (file, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        let end = lines
            .iter()
            .position(|l| l.trim_start().starts_with("#[cfg(test)]"))
            .unwrap_or(lines.len());
        for (i, line) in lines[..end].iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            let after_vis = trimmed
                .strip_prefix("pub(crate) ")
                .or_else(|| trimmed.strip_prefix("pub "))
                .unwrap_or(trimmed);
            let after_async = after_vis.strip_prefix("async ").unwrap_or(after_vis);
            let Some(rest) = after_async.strip_prefix("fn ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The body opens where the signature ends; a declaration without one is skipped.
            let Some(open) = (i..end).find(|&j| {
                let l = lines[j].trim_end();
                l.ends_with('{') || l.ends_with(';')
            }) else {
                continue;
            };
            if lines[open].trim_end().ends_with(';') {
                continue;
            }
            let close = (open + 1..end)
                .find(|&j| {
                    let l = lines[j];
                    l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}')
                })
                .unwrap_or(end);
            found.push((file.clone(), name, close - i + 1));
        }
    }
    found
}

#[test]
fn no_function_is_longer_than_the_limit_outside_tables() {
    let lengths = function_lengths();
    assert!(
        lengths
            .iter()
            .any(|(f, n, _)| f == "src/app.rs" && n == "routes"),
        "the reader finds the functions"
    );
    let mut over = Vec::new();
    for (file, name, lines) in &lengths {
        if *lines <= LONGEST_FUNCTION || TABLES.iter().any(|(f, n, _)| f == file && n == name) {
            continue;
        }
        over.push(format!("{file} {name}: {lines} lines"));
    }
    assert!(
        over.is_empty(),
        "functions over {LONGEST_FUNCTION} lines (split them):\n{}",
        over.join("\n")
    );
}

/// The module path of a source file (`src/a/b.rs` and `src/a/b/mod.rs` → `a::b`).
fn module_of(file: &str, src: &str) -> Vec<String> {
    let rest = file.strip_prefix(src).unwrap().trim_end_matches(".rs");
    let mut parts: Vec<String> = rest.split('/').map(str::to_owned).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Which files of one crate each file imports, as its `crate::…` and `super::…` paths (and
/// the groups of `use crate::{…}`) name them.
fn import_graph(src: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&root().join(src), &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|(f, _)| (module_of(f, src), f.clone()))
        .collect();
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .find_map(|n| modules.get(&path[..n]).cloned())
    };
    let mut graph = BTreeMap::new();
    for (file, text) in &files {
        let me = module_of(file, src);
        let is_mod = file.ends_with("mod.rs") || file.ends_with("lib.rs");
        let code: String = text
            .lines()
            .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut targets = BTreeSet::new();
        let mut add = |base: Vec<String>, rest: &str| {
            let mut path = base;
            for seg in rest.split("::") {
                let seg: String = seg
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if seg.is_empty() {
                    break;
                }
                path.push(seg);
            }
            if let Some(target) = resolve(&path)
                && &target != file
            {
                targets.insert(target);
            }
        };
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                for item in group[..group.find('}').unwrap_or(0)].split(',') {
                    add(Vec::new(), item.trim());
                }
            } else {
                add(Vec::new(), rest);
            }
        }
        for (at, _) in code.match_indices("super::") {
            if code[..at].ends_with("super::") {
                continue;
            }
            let mut base = if is_mod {
                me.clone()
            } else {
                me[..me.len().saturating_sub(1)].to_vec()
            };
            let mut rest = &code[at + "super::".len()..];
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            if let Some(group) = rest.strip_prefix('{') {
                for item in group[..group.find('}').unwrap_or(0)].split(',') {
                    add(base.clone(), item.trim());
                }
            } else {
                add(base, rest);
            }
        }
        graph.insert(file.clone(), targets);
    }
    graph
}

/// The strongly connected sets of more than one file (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for t in w.graph.get(v).into_iter().flatten() {
            let t = t.as_str();
            if !w.index.contains_key(t) {
                visit(w, t);
                let low = w.low[v].min(w.low[t]);
                w.low.insert(v, low);
            } else if w.stack.contains(&t) {
                let low = w.low[v].min(w.index[t]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut circle = Vec::new();
            while let Some(x) = w.stack.pop() {
                circle.push(x.to_owned());
                if x == v {
                    break;
                }
            }
            if circle.len() > 1 {
                w.found.push(circle);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            visit(&mut walk, v);
        }
    }
    walk.found
}

#[test]
fn neither_crate_has_an_import_circle() {
    for src in ["src/", "gatehouse-core/src/"] {
        let graph = import_graph(src);
        let edges: usize = graph.values().map(BTreeSet::len).sum();
        assert!(edges > 100, "{src}: the reader found {edges} imports");
        let found = circles(&graph);
        assert!(found.is_empty(), "{src}: import circles {found:?}");
    }
    // The reader sees a circle when there is one.
    let mut made = BTreeMap::new();
    made.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    made.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(circles(&made).len(), 1);
}

/// The operator (an administrator with every scope, everywhere) is a caller only at the
/// command line: no handler, page or service makes one to get past the policy. (A `Caller` is
/// made only by the policy room's constructors, and an `Allowed` only by `policy::authorize`:
/// the compiler holds those.)
#[test]
fn only_the_command_line_acts_as_the_operator() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("gatehouse-core/src"), &mut files);
    let mut outside = Vec::new();
    let mut at_the_cli = 0;
    for (file, text) in &files {
        let code = text.split("#[cfg(test)]").next().unwrap_or(text);
        let uses = code.matches("Caller::operator()").count();
        if uses == 0 {
            continue;
        }
        if file.starts_with("src/cli/") {
            at_the_cli += uses;
        } else {
            outside.push(file.clone());
        }
    }
    assert!(
        at_the_cli > 0,
        "the reader finds the command line's operator"
    );
    assert!(
        outside.is_empty(),
        "acting as the operator outside the command line: {outside:?}"
    );
}
