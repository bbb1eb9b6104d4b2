//! The `gatehouse` command: `serve` (the default), `migrate`, and account administration.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse::accounts::model::{self, CreateUserError};
use gatehouse::accounts::{Email, NewAccount, NewPassword, Role, now};
use gatehouse::app::{Application, StartError, prepare_database};
use gatehouse::config::{ConfigArgs, Settings};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "OAuth 2.0 authorization server and API-key service"
)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the scope registry.
    #[command(subcommand)]
    Scope(ScopeCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage the keys that sign access tokens.
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCommand),
}

#[derive(Subcommand)]
enum ClientCommand {
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
        /// A resource server (one of GATEHOUSE_RESOURCES) the client may ask tokens for;
        /// repeatable. Without one, its tokens are for Gatehouse's own API only.
        #[arg(long = "resource")]
        resource: Vec<String>,
        /// The owner's email (default: the oldest admin).
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SigningKeyCommand {
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

#[derive(Subcommand)]
enum KeyCommand {
    /// Issue a key for a user; prints it once.
    Create {
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
        /// Requests per minute for this key instead of the server's default.
        #[arg(long = "rate-limit-per-minute")]
        per_minute: Option<i64>,
        /// Print JSON (with `id` and `key`).
        #[arg(long)]
        json: bool,
    },
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

#[derive(Subcommand)]
enum ScopeCommand {
    /// Register a scope (e.g. read:invoices).
    Add {
        name: String,
        #[arg(long)]
        description: String,
        /// Only admins may hold it.
        #[arg(long)]
        admin_only: bool,
    },
    /// List registered scopes.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints its id (and the generated password when none is given).
    Create {
        #[arg(long)]
        email: String,
        /// Display name (default: the email's local part).
        #[arg(long, default_value = "")]
        name: String,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: their sessions end and they cannot sign in.
    Disable {
        #[arg(long)]
        email: String,
    },
}

/// A failure with the exit code it deserves.
struct Failure(String, u8);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string(), 1)
    }
}

/// Keep large allocations (argon2's 19 MiB per password check) in their own mappings, returned
/// to the system when freed. glibc would otherwise raise its mmap threshold after the first one
/// and keep the memory in the heap for good, tripling the server's resident size.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called once, before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

fn main() -> ExitCode {
    fixed_mmap_threshold();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message, code)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let settings = Settings::from_args(&cli.config).map_err(|e| Failure(e.to_string(), 2))?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let (_, applied, admin) = prepare_database(&settings)?;
            println!("{} migration(s) applied", applied.len());
            print_bootstrap_admin(admin.as_ref());
            Ok(())
        }
        Command::User(command) => user_command(&settings, command),
        Command::Key(command) => key_command(&settings, command),
        Command::Scope(command) => scope_command(&settings, command),
        Command::SigningKey(command) => signing_key_command(&settings, command),
        Command::Client(command) => client_command(&settings, command),
    }
}

fn serve(settings: Settings) -> Result<(), Failure> {
    let runtime = actix_web::rt::System::new();
    runtime.block_on(async move {
        let issuer = settings.issuer.clone();
        let backend = settings.database.to_string();
        let mut app = Application::build(settings).map_err(start_failure)?;
        print_bootstrap_admin(app.take_bootstrap_admin().as_ref());
        log::info!("Gatehouse listening on {issuer} (database: {backend})");
        app.run_until_stopped().await?;
        log::info!("Gatehouse stopped");
        Ok(())
    })
}

fn start_failure(e: StartError) -> Failure {
    Failure(e.to_string(), 1)
}

fn print_bootstrap_admin(admin: Option<&gatehouse::accounts::BootstrapAdmin>) {
    let Some(admin) = admin else { return };
    println!("Created the first admin account: {}", admin.email);
    match &admin.generated_password {
        Some(password) => println!(
            "One-time password (shown only now; you will be asked to change it at first sign-in): {}",
            password.expose()
        ),
        None => println!("Its password is the one given in GATEHOUSE_ADMIN_PASSWORD."),
    }
}

fn user_command(settings: &Settings, command: UserCommand) -> Result<(), Failure> {
    let (pool, _, _) = prepare_database(settings)?;
    let mut conn = pool.get()?;
    match command {
        UserCommand::Create {
            email,
            name,
            admin,
            password_stdin,
            json,
        } => {
            let email = Email::parse(&email).map_err(|e| Failure(format!("--email: {e}"), 2))?;
            let display_name = model::normalize_display_name(&name, &email)
                .map_err(|e| Failure(format!("--name: {e}"), 2))?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (NewPassword::generate(), true)
            };
            let role = if admin { Role::Admin } else { Role::Member };
            let account = NewAccount {
                email,
                display_name,
                password: password.clone(),
                role,
                password_change_required: generated,
            };
            let user = model::create_user(&mut conn, &account, now()).map_err(|e| match e {
                CreateUserError::DuplicateEmail(email) => {
                    Failure(format!("a user with email {email} already exists"), 3)
                }
                CreateUserError::Db(e) => Failure(e.to_string(), 1),
            })?;
            let shown_password = generated.then(|| password.expose().to_owned());
            if json {
                let mut out = serde_json::to_value(user.view())?;
                if let Some(p) = &shown_password {
                    out["password"] = serde_json::json!(p);
                }
                println!("{out}");
            } else {
                println!("{}", user.id);
                if let Some(p) = shown_password {
                    eprintln!(
                        "Generated password for {} (shown only now): {p}",
                        user.email
                    );
                }
            }
            Ok(())
        }
        UserCommand::List { json } => {
            let users = model::list_users(&mut conn)?;
            if json {
                let views: Vec<_> = users.iter().map(model::User::view).collect();
                println!("{}", serde_json::to_string(&views)?);
            } else {
                for u in users {
                    let status = if u.is_disabled() {
                        "disabled"
                    } else {
                        "active"
                    };
                    println!("{}\t{}\t{}\t{}", u.id, u.email, u.role, status);
                }
            }
            Ok(())
        }
        UserCommand::Disable { email } => {
            let user = find_user(&mut conn, "--email", &email)?;
            model::set_disabled(&mut conn, &user.id, true, now())?;
            println!("disabled {} ({})", user.email, user.id);
            Ok(())
        }
    }
}

fn read_password_stdin() -> Result<NewPassword, Failure> {
    let mut input = String::new();
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
    }
    stdin.lock().take(4096).read_to_string(&mut input)?;
    let line = input.lines().next().unwrap_or_default();
    NewPassword::parse(line).map_err(|e| Failure(format!("password: {e}"), 2))
}

/// The user named by an email flag: exit 2 for an invalid email, 3 for nobody.
fn find_user(
    conn: &mut gatehouse::db::DbConn,
    flag: &str,
    raw_email: &str,
) -> Result<model::User, Failure> {
    let email = Email::parse(raw_email).map_err(|e| Failure(format!("{flag}: {e}"), 2))?;
    model::find_by_email(conn, &email)?
        .ok_or_else(|| Failure(format!("no user with email {email}"), 3))
}

fn key_command(settings: &Settings, command: KeyCommand) -> Result<(), Failure> {
    use gatehouse::api_keys::format::Mode;
    use gatehouse::api_keys::{Expiry, KeyRequest, build_new_key, model as keys, parse_duration};
    use gatehouse::audit::{self, Action, NewEvent};
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::scopes::{ScopeSet, registry};

    let (pool, _, _) = prepare_database(settings)?;
    let mut conn = pool.get()?;
    let now = SystemClock.now();
    match command {
        KeyCommand::Create {
            user,
            name,
            description,
            expires_in,
            test,
            scopes,
            allow_ip,
            per_minute,
            json,
        } => {
            let owner = find_user(&mut conn, "--user", &user)?;
            let expiry = match expires_in.as_deref() {
                None => Expiry::Default,
                Some("never") => Expiry::Never,
                Some(d) => Expiry::In(parse_duration(d).ok_or_else(|| {
                    Failure(format!("--expires-in: {d:?} is not a duration like 90d"), 2)
                })?),
            };
            let scopes = scopes
                .as_deref()
                .map(ScopeSet::parse)
                .transpose()
                .map_err(|e| Failure(format!("--scopes: {e}"), 2))?;
            let allowed_ips = keys::parse_allowed_ips(&allow_ip.join(","))
                .map_err(|e| Failure(format!("--allow-ip: {e}"), 2))?;
            let request = KeyRequest {
                name,
                description,
                mode: if test { Mode::Test } else { Mode::Live },
                scopes,
                allowed_ips,
                expiry,
                rate_limit_per_minute: per_minute,
            };
            // The operator is bounded by nothing but the server's policy and the owner's role.
            let registry = registry::all(&mut conn)?;
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
                Failure(
                    format!(
                        "{}{}",
                        e.field.map(|f| format!("{f}: ")).unwrap_or_default(),
                        e.message
                    ),
                    2,
                )
            })?;
            let pepper = gatehouse::secrets::Pepper::for_digests(&settings.secret.0);
            let (key, secret) = keys::insert(&mut conn, &pepper, &new, now)?;
            let mut event = NewEvent::new(Action::KeyCreated);
            event.subject_user_id = Some(owner.id.clone());
            event.key_id = Some(key.id.clone());
            event.details = serde_json::json!({ "via": "cli", "name": key.name });
            audit::record(&mut conn, &event, now)?;
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
        KeyCommand::List { user, json } => {
            let owner = find_user(&mut conn, "--user", &user)?;
            let filter = keys::ListFilter {
                limit: 10_000,
                ..Default::default()
            };
            let list = keys::list_for_user(&mut conn, &owner.id, &filter, now)?;
            if json {
                let views: Vec<_> = list.iter().map(|k| k.view(now)).collect();
                println!("{}", serde_json::to_string(&views)?);
            } else {
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
            }
            Ok(())
        }
        KeyCommand::Revoke { id } => {
            let key = keys::find(&mut conn, &id)?
                .ok_or_else(|| Failure(format!("no API key {id}"), 3))?;
            if keys::revoke(&mut conn, &key.id, "cli", now)? {
                let mut event = NewEvent::new(Action::KeyRevoked);
                event.subject_user_id = Some(key.user_id.clone());
                event.key_id = Some(key.id.clone());
                event.details = serde_json::json!({ "via": "cli" });
                audit::record(&mut conn, &event, now)?;
                println!("revoked {}", key.id);
            } else {
                println!("{} was already revoked", key.id);
            }
            Ok(())
        }
    }
}

fn scope_command(settings: &Settings, command: ScopeCommand) -> Result<(), Failure> {
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::scopes::{Scope, registry};

    let (pool, _, _) = prepare_database(settings)?;
    let mut conn = pool.get()?;
    match command {
        ScopeCommand::Add {
            name,
            description,
            admin_only,
        } => {
            let scope = Scope::parse(&name).map_err(|e| Failure(e.to_string(), 2))?;
            let description = description.trim();
            if description.is_empty() || description.len() > 200 {
                return Err(Failure("--description: 1 to 200 characters".into(), 2));
            }
            if registry::add(
                &mut conn,
                &scope,
                description,
                admin_only,
                SystemClock.now(),
            )? {
                println!("added {scope}");
                Ok(())
            } else {
                Err(Failure(format!("the scope {scope} already exists"), 3))
            }
        }
        ScopeCommand::List { json } => {
            let all = registry::all(&mut conn)?;
            if json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                for s in all {
                    println!(
                        "{}\t{}{}",
                        s.name,
                        s.description,
                        if s.admin_only { " (admins only)" } else { "" }
                    );
                }
            }
            Ok(())
        }
    }
}

fn signing_key_command(settings: &Settings, command: SigningKeyCommand) -> Result<(), Failure> {
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::jwt::keys::{self, KeyVault};

    let (pool, _, _) = prepare_database(settings)?;
    let mut conn = pool.get()?;
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

fn client_command(settings: &Settings, command: ClientCommand) -> Result<(), Failure> {
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::oauth::clients::{self, ClientType, NewClient};
    use gatehouse::oauth::redirect::RedirectUri;
    use gatehouse::scopes::{ScopeSet, registry};

    let (pool, _, _) = prepare_database(settings)?;
    let mut conn = pool.get()?;
    match command {
        ClientCommand::Create {
            name,
            redirect_uri,
            public,
            scopes,
            first_party,
            client_credentials,
            resource,
            owner,
            json,
        } => {
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
            let known = registry::grantable(&all, true);
            let scopes = match scopes {
                Some(raw) => {
                    ScopeSet::parse(&raw).map_err(|e| Failure(format!("--scopes: {e}"), 2))?
                }
                None => registry::grantable(&all, false),
            };
            if let Some(unknown) = scopes.difference(&known).first() {
                return Err(Failure(
                    format!("--scopes: unknown scope {unknown} (see `gatehouse scope list`)"),
                    2,
                ));
            }
            let new = NewClient {
                name,
                owner_user_id: owner.id.clone(),
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
                    grants
                },
                resources: resource,
            };
            let pepper = gatehouse::secrets::Pepper::for_digests(&settings.secret.0);
            let (client, secret) = clients::create(&mut conn, &pepper, &new, SystemClock.now())?;
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
