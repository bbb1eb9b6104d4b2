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

fn main() -> ExitCode {
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
            let email = Email::parse(&email).map_err(|e| Failure(format!("--email: {e}"), 2))?;
            let user = model::find_by_email(&mut conn, &email)?
                .ok_or_else(|| Failure(format!("no user with email {email}"), 3))?;
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
