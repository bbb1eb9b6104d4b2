//! The floors of the house, held as tests: the core crate serves no HTTP (no web-serving or
//! templating crate anywhere in its dependency tree, as `cargo tree` resolves it).

use std::collections::BTreeSet;
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
