//! `gatehouse signing-key …`: rotate and list the keys that sign access tokens.

use clap::Subcommand;
use gatehouse::config::Settings;

use super::Failure;
use gatehouse::app::prepare_connection;

#[derive(Subcommand)]
pub enum SigningKeyCommand {
    /// Publish a new key now; it signs after the delay, and the old key leaves the JWKS once
    /// every token it signed has expired.
    Rotate {
        /// How long resource servers get to fetch the new key before it signs (e.g. 10m).
        #[arg(long, default_value = "10m")]
        delay: String,
        /// Algorithm of the new key: ES256, RS256 or EdDSA (default: GATEHOUSE_SIGNING_ALG).
        #[arg(long)]
        alg: Option<String>,
    },
    /// List the published keys.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub fn signing_key_command(settings: &Settings, command: SigningKeyCommand) -> Result<(), Failure> {
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::jwt::keys::{self, KeyVault};

    let (mut conn, _, _) = prepare_connection(settings)?;
    let now = SystemClock.now();
    match command {
        SigningKeyCommand::Rotate { delay, alg } => {
            let alg = match alg {
                Some(name) => keys::SigningAlg::parse(&name).ok_or_else(|| {
                    Failure(
                        format!("--alg: {name:?} is not one of ES256, RS256, EdDSA"),
                        2,
                    )
                })?,
                None => settings.signing_alg,
            };
            let delay = if delay == "0" {
                chrono::Duration::zero()
            } else {
                gatehouse::api_keys::parse_duration(&delay).ok_or_else(|| {
                    Failure(format!("--delay: {delay:?} is not a duration like 10m"), 2)
                })?
            };
            let vault = KeyVault::new(&settings.secret.0);
            let key = keys::rotate(
                &mut conn,
                &vault,
                alg,
                now,
                delay,
                settings.access_token_ttl,
            )?;
            println!("{}", key.id);
            eprintln!(
                "Published {} ({}); it signs from {} UTC.",
                key.id,
                key.alg,
                key.activates_at.format("%Y-%m-%d %H:%M:%S")
            );
            Ok(())
        }
        SigningKeyCommand::List { json } => {
            let rows = keys::published(&mut conn, now)?;
            let view: Vec<serde_json::Value> = rows
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "kid": k.id,
                        "alg": k.alg,
                        "created_at": gatehouse::accounts::model::utc(k.created_at),
                        "activates_at": gatehouse::accounts::model::utc(k.activates_at),
                        "retired_at": k.retired_at.map(gatehouse::accounts::model::utc),
                        "expires_at": k.expires_at.map(gatehouse::accounts::model::utc),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(view));
            } else {
                for k in view {
                    println!(
                        "{}\t{}\tsigns from {}\tretired {}",
                        k["kid"].as_str().unwrap_or_default(),
                        k["alg"].as_str().unwrap_or_default(),
                        k["activates_at"].as_str().unwrap_or_default(),
                        k["retired_at"].as_str().unwrap_or("-")
                    );
                }
            }
            Ok(())
        }
    }
}
