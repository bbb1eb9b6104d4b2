//! The `gatehouse` command: `serve` (the default), `migrate`, and account administration.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse::app::{Application, StartError, prepare_connection};
use gatehouse::config::{ConfigArgs, Settings};

use cli::Failure;
use cli::clients::{ClientCommand, client_command};
use cli::keys::{KeyCommand, key_command};
use cli::scopes::{ScopeCommand, scope_command};
use cli::signing_keys::{SigningKeyCommand, signing_key_command};
use cli::users::{UserCommand, user_command};

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
    /// Manage workspaces and their members.
    #[command(subcommand)]
    Workspace(cli::workspaces::WorkspaceCommand),
    /// Initial access tokens for apps that register themselves (GATEHOUSE_REGISTRATION=token).
    #[command(subcommand, name = "registration-token")]
    RegistrationToken(cli::registration::RegistrationTokenCommand),
    /// Manage the keys that sign access tokens.
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCommand),
    /// Copy a SQLite database (and its generated secret) while the server runs.
    Backup {
        /// The new file to write (it must not exist).
        #[arg(long)]
        to: std::path::PathBuf,
    },
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
    let cli = Cli::parse();
    // A bad format is reported with the other settings; the logger starts as text meanwhile.
    gatehouse::logs::init(
        gatehouse::config::LogFormat::parse(&cli.config.log_format).unwrap_or_default(),
    );
    let outcome = run(cli);
    // Whatever pool threads are still opening a connection finish before exit() tears down
    // the TLS library they are in.
    if !gatehouse::db::stop_connecting(std::time::Duration::from_secs(10)) {
        log::warn!("exiting while a database connection is still being opened");
    }
    match outcome {
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
            let (_, applied, admin) = prepare_connection(&settings)?;
            println!("{} migration(s) applied", applied.len());
            print_bootstrap_admin(admin.as_ref());
            Ok(())
        }
        Command::User(command) => user_command(&settings, command),
        Command::Key(command) => key_command(&settings, command),
        Command::Scope(command) => scope_command(&settings, command),
        Command::SigningKey(command) => signing_key_command(&settings, command),
        Command::Client(command) => client_command(&settings, command),
        Command::Workspace(command) => cli::workspaces::workspace_command(&settings, command),
        Command::RegistrationToken(command) => {
            cli::registration::registration_token_command(&settings, command)
        }
        Command::Backup { to } => cli::backup::backup(&settings, &to),
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
