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
    Create {
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
    },
}

pub fn client_command(settings: &Settings, command: ClientCommand) -> Result<(), Failure> {
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::oauth::clients::{self, ClientType, NewClient};
    use gatehouse::oauth::redirect::RedirectUri;
    use gatehouse::scopes::{ScopeSet, registry};

    let (mut conn, _, _) = prepare_connection(settings)?;
    match command {
        ClientCommand::Create {
            name,
            redirect_uri,
            public,
            scopes,
            first_party,
            client_credentials,
            token_exchange,
            device,
            require_par,
            resource,
            post_logout_redirect_uri,
            backchannel_logout_uri,
            backchannel_logout_session_required,
            owner,
            json,
        } => {
            let post_logout_redirect_uris = post_logout_redirect_uri
                .iter()
                .map(|u| {
                    RedirectUri::parse(u)
                        .map_err(|e| Failure(format!("--post-logout-redirect-uri {u:?}: {e}"), 2))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let backchannel_logout_uri = match &backchannel_logout_uri {
                Some(raw) => gatehouse::oauth::manage::backchannel_uri(
                    raw,
                    settings.backchannel_allow_private,
                )
                .map_err(|why| Failure(format!("--backchannel-logout-uri {raw:?}: {why}"), 2))?,
                None => None,
            };
            if let Some(unknown) = resource.iter().find(|r| !settings.resources.contains(r)) {
                return Err(Failure(
                    format!("--resource {unknown}: not one of GATEHOUSE_RESOURCES"),
                    2,
                ));
            }
            if client_credentials && public {
                return Err(Failure(
                    "--client-credentials needs a confidential client (not --public)".into(),
                    2,
                ));
            }
            if token_exchange && public {
                return Err(Failure(
                    "--token-exchange needs a confidential client (not --public)".into(),
                    2,
                ));
            }
            let name = name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(Failure("--name: 1 to 100 characters".into(), 2));
            }
            let redirect_uris = redirect_uri
                .iter()
                .map(|u| {
                    RedirectUri::parse(u)
                        .map_err(|e| Failure(format!("--redirect-uri {u:?}: {e}"), 2))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let owner = match owner {
                Some(email) => find_user(&mut conn, "--owner", &email)?,
                None => model::list_users(&mut conn)?
                    .into_iter()
                    .find(|u| u.is_admin() && !u.is_disabled())
                    .ok_or_else(|| Failure("no admin to own the client: pass --owner".into(), 3))?,
            };
            let all = registry::all(&mut conn)?;
            let known = gatehouse::policy::grantable::app_may_be_given(
                &gatehouse::policy::Caller::operator(),
                &all,
            );
            let scopes = match scopes {
                Some(raw) => {
                    ScopeSet::parse(&raw).map_err(|e| Failure(format!("--scopes: {e}"), 2))?
                }
                None => gatehouse::policy::grantable::self_registered_may_ask(&all),
            };
            if let Some(unknown) = scopes.difference(&known).first() {
                return Err(Failure(
                    format!("--scopes: unknown scope {unknown} (see `gatehouse scope list`)"),
                    2,
                ));
            }
            let new = NewClient {
                name,
                owner_user_id: Some(owner.id.clone()),
                // The owner's personal workspace controls it.
                owner_workspace_id: gatehouse::workspaces::personal_of(&mut conn, &owner.id)?
                    .map(|w| w.id),
                client_type: if public {
                    ClientType::Public
                } else {
                    ClientType::Confidential
                },
                redirect_uris,
                scopes,
                first_party,
                grant_types: {
                    let mut grants = clients::default_grant_types();
                    if client_credentials {
                        grants.push("client_credentials".into());
                    }
                    if token_exchange {
                        grants.push(clients::TOKEN_EXCHANGE.into());
                    }
                    if device {
                        grants.push(clients::DEVICE_CODE.into());
                    }
                    grants
                },
                options: clients::ClientOptions {
                    require_pushed_authorization_requests: require_par,
                    ..Default::default()
                },
                resources: resource,
                logout: clients::LogoutSettings {
                    post_logout_redirect_uris,
                    backchannel_logout_uri,
                    backchannel_logout_session_required,
                },
                workspace_id: None,
                ..NewClient::default()
            };
            let pepper = gatehouse::secrets::Pepper::for_digests(&settings.secret.0);
            let now = SystemClock.now();
            let (client, secret) = clients::create(&mut conn, &pepper, &new, now)?;
            let mut event =
                gatehouse::audit::Actor::operator().event(gatehouse::audit::Action::ClientCreated);
            event.subject_user_id = client.owner_user_id.clone();
            event.details = serde_json::json!({ "client_id": client.id, "name": client.name });
            gatehouse::audit::record(&mut conn, &event, now)?;
            if json {
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
    }
}
