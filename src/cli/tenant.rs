//! `tessera tenant add|list`: the tenant tree that `?tenant=` and `Wazo-Tenant` consult. A
//! user's tenant need not be registered; registering tenants with parents gives sub-tenants.
use std::io::Write;

use clap::Subcommand;
use serde::Serialize;
use uuid::Uuid;

use crate::app::open_store;
use crate::config::Settings;
use crate::store::tenants::{self, TenantRecord};
use crate::store::{StoreError, connection};

use super::{CliResult, JsonOutput, canonical_uuid, now, print_json};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant, optionally below a parent.
    Add {
        /// The tenant's name.
        name: String,
        /// The tenant's UUID (default: a new one).
        #[arg(long)]
        uuid: Option<String>,
        /// The parent tenant's UUID.
        #[arg(long)]
        parent: Option<String>,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        output: JsonOutput,
    },
}

/// A tenant as `tenant list --json` prints it.
#[derive(Serialize)]
struct TenantView<'a> {
    uuid: &'a str,
    name: &'a str,
    parent_uuid: Option<&'a str>,
    created_at: i64,
}

pub fn run(settings: &Settings, command: TenantCommand) -> CliResult {
    let store = open_store(settings).map_err(|e| e.to_string())?;
    let mut conn = store.conn().map_err(|e| e.to_string())?;
    let conn = &mut *conn;
    let mut out = std::io::stdout().lock();
    match command {
        TenantCommand::Add { name, uuid, parent } => {
            let tenant = TenantRecord {
                uuid: match uuid {
                    Some(u) => canonical_uuid(&u, "--uuid")?,
                    None => Uuid::new_v4().to_string(),
                },
                parent_uuid: parent.map(|p| canonical_uuid(&p, "--parent")).transpose()?,
                name,
                created_at: now(),
            };
            connection::write(conn, |c| tenants::insert(c, &tenant)).map_err(|e| match e {
                StoreError::Conflict => format!("tenant {} already exists", tenant.uuid),
                other => other.to_string(),
            })?;
            let _ = writeln!(out, "created tenant {} ({})", tenant.name, tenant.uuid);
        }
        TenantCommand::List { output } => {
            let list = tenants::list(conn)?;
            if output.json {
                let views: Vec<TenantView<'_>> = list
                    .iter()
                    .map(|t| TenantView {
                        uuid: &t.uuid,
                        name: &t.name,
                        parent_uuid: t.parent_uuid.as_deref(),
                        created_at: t.created_at,
                    })
                    .collect();
                return print_json(&views);
            }
            for t in list {
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}",
                    t.name,
                    t.uuid,
                    t.parent_uuid.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}
