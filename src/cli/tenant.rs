//! `tessera tenant add|list`: the tenant tree that `?tenant=` and `Wazo-Tenant` consult. A
//! user's tenant need not be registered; registering tenants with parents gives sub-tenants.
use std::io::Write;

use clap::Subcommand;
use uuid::Uuid;

use crate::app::open_store;
use crate::config::Settings;
use crate::store::tenants::{self, TenantRecord};
use crate::store::{StoreError, connection};

use super::{CliResult, canonical_uuid, now};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant, optionally below a parent.
    Add {
        name: String,
        /// The tenant's UUID (default: a new one).
        #[arg(long)]
        uuid: Option<String>,
        /// The parent tenant's UUID.
        #[arg(long)]
        parent: Option<String>,
    },
    /// List tenants.
    List,
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
        TenantCommand::List => {
            for t in tenants::list(conn).map_err(|e| e.to_string())? {
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
