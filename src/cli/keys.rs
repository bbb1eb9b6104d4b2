//! `gatehouse key …`: issue, list and revoke API keys for users, as the operator.

use clap::Subcommand;
use gatehouse::config::Settings;

use super::Failure;
use gatehouse::app::prepare_connection;

use super::find_user;
use chrono::NaiveDateTime;
use gatehouse::audit::Actor;
use gatehouse::db::DbConn;

// Parsed once per run: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Issue a key for a user; prints it once.
    Create(CreateArgs),
    /// List a user's keys (never the keys themselves).
    List {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id, at once.
    Revoke { id: String },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The owner's email.
    #[arg(long)]
    user: String,
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Lifetime such as 90d, 12h or 1y (default: the server's default, one year).
    #[arg(long)]
    expires_in: Option<String>,
    /// A test-mode key (sk_test_/rk_test_).
    #[arg(long)]
    test: bool,
    /// Make a restricted key with these scopes (comma- or space-separated).
    #[arg(long)]
    scopes: Option<String>,
    /// Allowed source address or CIDR block; repeat for more.
    #[arg(long = "allow-ip")]
    allow_ip: Vec<String>,
    /// Allowed web origin (https://app.example.com) or host pattern (*.example.com);
    /// repeat for more.
    #[arg(long = "allow-referrer")]
    allow_referrer: Vec<String>,
    /// Allowed endpoint such as "GET /v1/orders/*"; repeat for more.
    #[arg(long = "allow-endpoint")]
    allow_endpoint: Vec<String>,
    /// Requests per minute for this key instead of the server's default.
    #[arg(long = "rate-limit-per-minute")]
    per_minute: Option<i64>,
    /// The workspace (id or slug) the key acts in; the owner must be a member. Default:
    /// the owner's personal workspace.
    #[arg(long)]
    workspace: Option<String>,
    /// Print JSON (with `id` and `key`).
    #[arg(long)]
    json: bool,
}

pub fn key_command(settings: &Settings, command: KeyCommand) -> Result<(), Failure> {
    use gatehouse::clock::{Clock, SystemClock};
    let (mut conn, _, _) = prepare_connection(settings)?;
    let now = SystemClock.now();
    match command {
        KeyCommand::Create(args) => create(settings, &mut conn, args, now),
        KeyCommand::List { user, json } => list(&mut conn, &user, json, now),
        KeyCommand::Revoke { id } => revoke(&mut conn, &id, now),
    }
}

/// Issue a key as the operator: bounded by nothing but the server's policy and the owner's
/// role.
fn create(
    settings: &Settings,
    conn: &mut DbConn,
    args: CreateArgs,
    now: NaiveDateTime,
) -> Result<(), Failure> {
    use gatehouse::api_keys::{build_new_key, service};
    let owner = find_user(conn, "--user", &args.user)?;
    let json = args.json;
    let request = request_of(conn, args, &owner.id)?;
    let registry = gatehouse::scopes::registry::all(conn)?;
    let bounds = gatehouse::policy::attenuate::Bounds::default();
    let new = build_new_key(
        &request,
        &owner,
        "operator",
        &bounds,
        &registry,
        &settings.keys,
        now,
    )
    .map_err(|e| {
        let field = e.field.map(|f| format!("{f}: ")).unwrap_or_default();
        Failure(format!("{field}{}", e.message), 2)
    })?;
    let pepper = gatehouse::secrets::Pepper::for_digests(&settings.secret.0);
    let (key, secret) = service::insert_audited(conn, &pepper, &new, &Actor::operator(), now)?;
    if json {
        let mut out = serde_json::to_value(key.view(now))?;
        out["key"] = serde_json::json!(secret.expose());
        println!("{out}");
    } else {
        println!("{}", secret.expose());
        eprintln!(
            "Created {} ({}) for {}. The key is shown only now.",
            key.id, key.name, owner.email
        );
    }
    Ok(())
}

/// The key the flags ask for.
fn request_of(
    conn: &mut DbConn,
    args: CreateArgs,
    owner_id: &str,
) -> Result<gatehouse::api_keys::KeyRequest, Failure> {
    use gatehouse::api_keys::format::Mode;
    use gatehouse::api_keys::{Expiry, KeyRequest, model as keys, parse_duration};
    let workspace_id =
        super::workspaces::member_workspace(conn, args.workspace.as_deref(), owner_id)?;
    let expiry = match args.expires_in.as_deref() {
        None => Expiry::Default,
        Some("never") => Expiry::Never,
        Some(d) => Expiry::In(parse_duration(d).ok_or_else(|| {
            Failure(format!("--expires-in: {d:?} is not a duration like 90d"), 2)
        })?),
    };
    let scopes = args
        .scopes
        .as_deref()
        .map(gatehouse::scopes::ScopeSet::parse)
        .transpose()
        .map_err(|e| Failure(format!("--scopes: {e}"), 2))?;
    let allowed_ips = keys::parse_allowed_ips(&args.allow_ip.join(","))
        .map_err(|e| Failure(format!("--allow-ip: {e}"), 2))?;
    let restrictions = gatehouse::api_keys::restrictions::Restrictions::parse(
        &args.allow_referrer,
        &args.allow_endpoint,
    )
    .map_err(|(field, e)| {
        let flag = if field == "allowed_referrers" {
            "--allow-referrer"
        } else {
            "--allow-endpoint"
        };
        Failure(format!("{flag}: {e}"), 2)
    })?;
    Ok(KeyRequest {
        restrictions,
        name: args.name,
        description: args.description,
        mode: if args.test { Mode::Test } else { Mode::Live },
        scopes,
        allowed_ips,
        expiry,
        rate_limit_per_minute: args.per_minute,
        workspace_id,
    })
}

fn list(conn: &mut DbConn, user: &str, json: bool, now: NaiveDateTime) -> Result<(), Failure> {
    use gatehouse::api_keys::model as keys;
    let owner = find_user(conn, "--user", user)?;
    let filter = keys::ListFilter {
        limit: 10_000,
        ..Default::default()
    };
    let list = keys::list_for_user(conn, &owner.id, &filter, now)?;
    if json {
        let views: Vec<_> = list.iter().map(|k| k.view(now)).collect();
        println!("{}", serde_json::to_string(&views)?);
        return Ok(());
    }
    for k in list {
        let v = k.view(now);
        let last_used = v.last_used_at.unwrap_or_else(|| "never".into());
        let expires = v.expires_at.unwrap_or_else(|| "never".into());
        println!(
            "{}\t{}…{}\t{}\t{}\tlast used {last_used}\texpires {expires}",
            v.id,
            v.prefix,
            v.last4,
            v.status.as_str(),
            v.name
        );
    }
    Ok(())
}

fn revoke(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<(), Failure> {
    use gatehouse::api_keys::{model as keys, service};
    let key = keys::find(conn, id)?.ok_or_else(|| Failure(format!("no API key {id}"), 3))?;
    if service::revoke_audited(conn, &key, &Actor::operator(), now)? {
        println!("revoked {}", key.id);
    } else {
        println!("{} was already revoked", key.id);
    }
    Ok(())
}
