//! `gatehouse user …`: create, list and disable accounts, as the operator.

use clap::Subcommand;
use gatehouse::config::Settings;

use super::Failure;
use std::io::{IsTerminal, Read};

use gatehouse::accounts::model::{self, CreateUserError};
use gatehouse::accounts::{Email, NewAccount, NewPassword, Role, now};
use gatehouse::app::prepare_connection;

use super::find_user;

#[derive(Subcommand)]
pub enum UserCommand {
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

pub fn user_command(settings: &Settings, command: UserCommand) -> Result<(), Failure> {
    let (mut conn, _, _) = prepare_connection(settings)?;
    match command {
        UserCommand::Create {
            email,
            name,
            admin,
            password_stdin,
            json,
        } => create(&mut conn, &email, &name, admin, password_stdin, json),
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
            let allowed =
                super::as_operator(gatehouse::policy::Action::ManageUser { id: &user.id })?;
            let operator = gatehouse::audit::Actor::operator();
            gatehouse::accounts::set_disabled_audited(
                &mut conn,
                allowed,
                &user.id,
                true,
                &operator,
                now(),
            )?;
            println!("disabled {} ({})", user.email, user.id);
            Ok(())
        }
    }
}

/// An account created by the operator (a generated password must be changed at first sign-in).
fn create(
    conn: &mut gatehouse::db::DbConn,
    email: &str,
    name: &str,
    admin: bool,
    password_stdin: bool,
    json: bool,
) -> Result<(), Failure> {
    let email = Email::parse(email).map_err(|e| Failure(format!("--email: {e}"), 2))?;
    let display_name = model::normalize_display_name(name, &email)
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
    let allowed = super::as_operator(gatehouse::policy::Action::CreateUser)?;
    let operator = gatehouse::audit::Actor::operator();
    let hash = gatehouse::accounts::password::hash_password(&account.password);
    let user =
        gatehouse::accounts::create_audited(conn, allowed, &account, &hash, &operator, now())
            .map_err(|e| match e {
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
