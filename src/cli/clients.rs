//! `gatehouse client …`: register OAuth clients, as the operator.

use clap::Subcommand;
use gatehouse::config::Settings;

use super::Failure;
use gatehouse::accounts::model;
use gatehouse::app::prepare_connection;

use super::find_user;

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register an OAuth client; prints its id (and a confidential client's secret, once).
    Create(CreateArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// A redirect URI (exact; https, or http on 127.0.0.1/[::1]/localhost); repeatable.
    #[arg(long = "redirect-uri", required = true)]
    redirect_uri: Vec<String>,
    /// A public client (no secret; PKCE required).
    #[arg(long)]
    public: bool,
    /// Scopes the client may ask for (default: every scope members may hold).
    #[arg(long)]
    scopes: Option<String>,
    /// A first-party client: users are not asked to consent.
    #[arg(long)]
    first_party: bool,
    /// May also use the client_credentials grant (confidential clients only).
    #[arg(long)]
    client_credentials: bool,
    /// May also use token exchange (RFC 8693; confidential clients only).
    #[arg(long)]
    token_exchange: bool,
    /// May use the device grant (RFC 8628: CLIs and TVs sign in with a code).
    #[arg(long)]
    device: bool,
    /// Its authorization requests must be pushed to /oauth/par first (RFC 9126).
    #[arg(long)]
    require_par: bool,
    /// A resource server (one of GATEHOUSE_RESOURCES) the client may ask tokens for;
    /// repeatable. Without one, its tokens are for Gatehouse's own API only.
    #[arg(long = "resource")]
    resource: Vec<String>,
    /// OpenID Connect: where /oauth/logout may send the browser after signing out
    /// (exact); repeatable.
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uri: Vec<String>,
    /// OpenID Connect Back-Channel Logout: an https URI a logout token is POSTed to.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// The app needs `sid` in logout tokens.
    #[arg(long)]
    backchannel_logout_session_required: bool,
    /// The owner's email (default: the oldest admin).
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn client_command(settings: &Settings, command: ClientCommand) -> Result<(), Failure> {
    let (mut conn, _, _) = prepare_connection(settings)?;
    match command {
        ClientCommand::Create(args) => create(settings, &mut conn, args),
    }
}

/// Register a client as the operator: checked like the API's, owned by `--owner` (or the
/// oldest admin) in their personal workspace.
fn create(
    settings: &Settings,
    conn: &mut gatehouse::db::DbConn,
    args: CreateArgs,
) -> Result<(), Failure> {
    use gatehouse::clients::{self, ClientType, NewClient};
    use gatehouse::clock::{Clock, SystemClock};
    check(settings, &args)?;
    let logout = logout_of(settings, &args)?;
    let name = args.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Failure("--name: 1 to 100 characters".into(), 2));
    }
    let redirect_uris = uris("--redirect-uri", &args.redirect_uri)?;
    let owner = owner_of(conn, args.owner.as_deref())?;
    let scopes = scopes_of(conn, args.scopes.as_deref())?;
    let new = NewClient {
        name,
        owner_user_id: Some(owner.id.clone()),
        // The owner's personal workspace controls it.
        owner_workspace_id: gatehouse::workspaces::personal_of(conn, &owner.id)?.map(|w| w.id),
        client_type: if args.public {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        redirect_uris,
        scopes,
        first_party: args.first_party,
        grant_types: grant_types_of(&args),
        options: clients::ClientOptions {
            require_pushed_authorization_requests: args.require_par,
            ..Default::default()
        },
        resources: args.resource,
        logout,
        workspace_id: None,
        ..NewClient::default()
    };
    let pepper = gatehouse::secrets::Pepper::for_digests(&settings.secret.0);
    let now = SystemClock.now();
    let (client, secret) = clients::create(conn, &pepper, &new, now)?;
    let mut event =
        gatehouse::audit::Actor::operator().event(gatehouse::audit::Action::ClientCreated);
    event.subject_user_id = client.owner_user_id.clone();
    event.details = serde_json::json!({ "client_id": client.id, "name": client.name });
    gatehouse::audit::record(conn, &event, now)?;
    if args.json {
        let mut out = serde_json::to_value(client.view())?;
        if let Some(secret) = &secret {
            out["client_secret"] = serde_json::json!(secret.expose());
        }
        println!("{out}");
    } else {
        println!("{}", client.id);
        if let Some(secret) = secret {
            eprintln!("Client secret (shown only now): {}", secret.expose());
        }
    }
    Ok(())
}

/// What a client cannot be: a resource the server does not know, a public client with a
/// machine grant.
fn check(settings: &Settings, args: &CreateArgs) -> Result<(), Failure> {
    if let Some(unknown) = args
        .resource
        .iter()
        .find(|r| !settings.resources.contains(r))
    {
        return Err(Failure(
            format!("--resource {unknown}: not one of GATEHOUSE_RESOURCES"),
            2,
        ));
    }
    if args.client_credentials && args.public {
        return Err(Failure(
            "--client-credentials needs a confidential client (not --public)".into(),
            2,
        ));
    }
    if args.token_exchange && args.public {
        return Err(Failure(
            "--token-exchange needs a confidential client (not --public)".into(),
            2,
        ));
    }
    Ok(())
}

fn uris(
    flag: &str,
    raw: &[String],
) -> Result<Vec<gatehouse::clients::redirect::RedirectUri>, Failure> {
    raw.iter()
        .map(|u| {
            gatehouse::clients::redirect::RedirectUri::parse(u)
                .map_err(|e| Failure(format!("{flag} {u:?}: {e}"), 2))
        })
        .collect()
}

fn logout_of(
    settings: &Settings,
    args: &CreateArgs,
) -> Result<gatehouse::clients::LogoutSettings, Failure> {
    let post_logout_redirect_uris =
        uris("--post-logout-redirect-uri", &args.post_logout_redirect_uri)?;
    let backchannel_logout_uri = match &args.backchannel_logout_uri {
        Some(raw) => {
            gatehouse::clients::manage::backchannel_uri(raw, settings.backchannel_allow_private)
                .map_err(|why| Failure(format!("--backchannel-logout-uri {raw:?}: {why}"), 2))?
        }
        None => None,
    };
    Ok(gatehouse::clients::LogoutSettings {
        post_logout_redirect_uris,
        backchannel_logout_uri,
        backchannel_logout_session_required: args.backchannel_logout_session_required,
    })
}

/// `--owner`, or the oldest admin who is not disabled.
fn owner_of(conn: &mut gatehouse::db::DbConn, owner: Option<&str>) -> Result<model::User, Failure> {
    match owner {
        Some(email) => find_user(conn, "--owner", email),
        None => model::list_users(conn)?
            .into_iter()
            .find(|u| u.is_admin() && !u.is_disabled())
            .ok_or_else(|| Failure("no admin to own the client: pass --owner".into(), 3)),
    }
}

/// `--scopes` within what the operator may give an app (default: what members may hold).
fn scopes_of(
    conn: &mut gatehouse::db::DbConn,
    scopes: Option<&str>,
) -> Result<gatehouse::scopes::ScopeSet, Failure> {
    use gatehouse::policy::{Caller, grantable};
    let all = gatehouse::scopes::registry::all(conn)?;
    let known = grantable::app_may_be_given(&Caller::operator(), &all);
    let scopes = match scopes {
        Some(raw) => gatehouse::scopes::ScopeSet::parse(raw)
            .map_err(|e| Failure(format!("--scopes: {e}"), 2))?,
        None => grantable::self_registered_may_ask(&all),
    };
    if let Some(unknown) = scopes.difference(&known).first() {
        return Err(Failure(
            format!("--scopes: unknown scope {unknown} (see `gatehouse scope list`)"),
            2,
        ));
    }
    Ok(scopes)
}

fn grant_types_of(args: &CreateArgs) -> Vec<String> {
    use gatehouse::clients;
    let mut grants = clients::default_grant_types();
    if args.client_credentials {
        grants.push("client_credentials".into());
    }
    if args.token_exchange {
        grants.push(clients::TOKEN_EXCHANGE.into());
    }
    if args.device {
        grants.push(clients::DEVICE_CODE.into());
    }
    grants
}
