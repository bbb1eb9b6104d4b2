//! `gatehouse registration-token …`: the initial access tokens (RFC 7591 §3) that
//! `GATEHOUSE_REGISTRATION=token` asks of apps registering themselves, as the operator
//! (audited with `"via": "cli"`). The token is printed once; only its digest is stored.

use chrono::{Duration, NaiveDateTime};
use clap::Subcommand;
use gatehouse::audit::{self, Action, Actor};
use gatehouse::clients::registration as reg;
use gatehouse::clock::{Clock, SystemClock};
use gatehouse::config::Settings;
use gatehouse::db::DbConn;
use serde_json::json;

use super::Failure;
use gatehouse::app::prepare_connection;

#[derive(Subcommand)]
pub enum RegistrationTokenCommand {
    /// Mint an initial access token (printed once).
    Create {
        /// What it is for (shown on the Agents page).
        #[arg(long, default_value = "")]
        label: String,
        /// Days until it expires.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Registrations it allows (default: any number until it expires).
        #[arg(long)]
        uses: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List initial access tokens (never the tokens themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke one by id.
    Revoke { id: String },
}

pub fn registration_token_command(
    settings: &Settings,
    command: RegistrationTokenCommand,
) -> Result<(), Failure> {
    let (mut conn, _, _) = prepare_connection(settings)?;
    let now = SystemClock.now();
    let conn = &mut conn;
    match command {
        RegistrationTokenCommand::Create {
            label,
            days,
            uses,
            json,
        } => create(settings, conn, now, &label, days, uses, json),
        RegistrationTokenCommand::List { json } => list(conn, now, json),
        RegistrationTokenCommand::Revoke { id } => revoke(conn, now, &id),
    }
}

fn create(
    settings: &Settings,
    conn: &mut DbConn,
    now: NaiveDateTime,
    label: &str,
    days: u32,
    uses: Option<u32>,
    json: bool,
) -> Result<(), Failure> {
    let pepper = gatehouse::secrets::Pepper::for_digests(&settings.secret.0);
    if !(1..=365).contains(&days) {
        return Err(Failure("--days: 1 to 365".into(), 2));
    }
    let uses = match uses {
        Some(0) => return Err(Failure("--uses: at least 1".into(), 2)),
        Some(n) => Some(i32::try_from(n).map_err(|_| Failure("--uses: too large".into(), 2))?),
        None => None,
    };
    let label = label.trim().chars().take(100).collect::<String>();
    let (token, secret) = gatehouse::db::write_transaction(conn, |c| {
        let minted = reg::mint_initial_token(
            c,
            &pepper,
            &label,
            None,
            now + Duration::days(i64::from(days)),
            uses,
            now,
        )?;
        let mut event = Actor::operator().event(Action::RegistrationTokenCreated);
        event.details = json!({ "id": minted.0.id, "label": label, "uses": uses, "days": days });
        audit::record(c, &event, now)?;
        Ok::<_, gatehouse::db::DbError>(minted)
    })?;
    if json {
        println!(
            "{}",
            json!({
                "id": token.id,
                "token": secret.expose(),
                "expires_at": token.expires_at.and_utc().to_rfc3339(),
                "uses_left": token.uses_left,
            })
        );
    } else {
        println!("{}", secret.expose());
        eprintln!(
            "{}: expires {}; shown once — give it to the app's developer",
            token.id,
            token.expires_at.and_utc().to_rfc3339()
        );
    }
    Ok(())
}

fn list(conn: &mut DbConn, now: NaiveDateTime, json: bool) -> Result<(), Failure> {
    let tokens = reg::list_initial_tokens(conn)?;
    for t in tokens {
        let state = if t.usable(now) { "usable" } else { "spent" };
        if json {
            println!(
                "{}",
                json!({
                    "id": t.id,
                    "label": t.label,
                    "created_at": t.created_at.and_utc().to_rfc3339(),
                    "expires_at": t.expires_at.and_utc().to_rfc3339(),
                    "uses_left": t.uses_left,
                    "revoked": t.revoked_at.is_some(),
                    "usable": t.usable(now),
                })
            );
        } else {
            println!(
                "{}\t{}\t{}\t{}",
                t.id,
                state,
                t.expires_at.and_utc().to_rfc3339(),
                t.label
            );
        }
    }
    Ok(())
}

fn revoke(conn: &mut DbConn, now: NaiveDateTime, id: &str) -> Result<(), Failure> {
    let revoked = gatehouse::db::write_transaction(conn, |c| {
        let revoked = reg::revoke_initial_token(c, id, now)?;
        if revoked {
            let mut event = Actor::operator().event(Action::RegistrationTokenRevoked);
            event.details = json!({ "id": id });
            audit::record(c, &event, now)?;
        }
        Ok::<_, gatehouse::db::DbError>(revoked)
    })?;
    if revoked {
        println!("revoked {id}");
        Ok(())
    } else {
        Err(Failure(format!("no live registration token {id}"), 3))
    }
}
