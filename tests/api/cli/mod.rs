//! The `gatehouse` command and start-up: bad configuration, the first admin, concurrent
//! starts, user administration, graceful shutdown.

use std::process::{Command, Output};

use crate::helpers::TestDatabase;

mod commands;
mod startup;

const SECRET: &str = "cli-test-secret-that-is-long-enough-0123";

fn gatehouse() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for (key, _) in std::env::vars() {
        if key.starts_with("GATEHOUSE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn gatehouse_on(db: &TestDatabase) -> Command {
    let mut cmd = gatehouse();
    cmd.env("GATEHOUSE_DATABASE_URL", &db.raw_url)
        .env("GATEHOUSE_SECRET", SECRET);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("gatehouse runs")
}
