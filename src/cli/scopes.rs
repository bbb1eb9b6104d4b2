//! `gatehouse scope …`: the scope registry.

use clap::Subcommand;
use gatehouse::config::Settings;

use super::Failure;
use gatehouse::app::prepare_connection;

#[derive(Subcommand)]
pub enum ScopeCommand {
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

pub fn scope_command(settings: &Settings, command: ScopeCommand) -> Result<(), Failure> {
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::scopes::{Scope, registry};

    let (mut conn, _, _) = prepare_connection(settings)?;
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
