//! The downstream schema: numbered, idempotent migrations, recorded in a table.
//!
//! `snakkaz-pay sink schema` prints exactly what `apply` runs, so an operator who applies
//! it by hand (SNAKKAZ_PAY_SUPABASE_MANAGE_SCHEMA=false) ends in the same state.

use tokio_postgres::Client;

/// A schema change, applied once and recorded in `snakkaz_pay_migrations`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Sequence number; migrations apply in this order.
    pub version: i32,
    /// Short name, recorded with the version.
    pub name: &'static str,
    /// The SQL; must be idempotent.
    pub sql: &'static str,
}

/// Every migration, oldest first. Append only: a shipped migration never changes.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("sql/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "receipts",
        sql: include_str!("sql/0002_receipts.sql"),
    },
];

/// Creates the table that records applied migrations.
const BOOTSTRAP: &str = "\
CREATE TABLE IF NOT EXISTS snakkaz_pay_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE snakkaz_pay_migrations ENABLE ROW LEVEL SECURITY;
";

/// Serialises concurrent appliers (two appliances, or a restart racing an old session):
/// an arbitrary constant, "snakkaz" in ASCII.
const LOCK_KEY: i64 = 0x0073_6e61_6b6b_617a;

/// The whole schema as one script, for `snakkaz-pay sink schema`.
pub fn script() -> String {
    let mut s = String::from("-- snakkaz-pay downstream schema (Supabase / PostgreSQL).\n");
    s.push_str("-- Idempotent: applying it again is harmless.\nBEGIN;\n");
    s.push_str(BOOTSTRAP);
    for m in MIGRATIONS {
        s.push_str(&format!("\n-- migration {} ({})\n", m.version, m.name));
        s.push_str(m.sql);
        s.push_str(&record_sql(m));
    }
    s.push_str("COMMIT;\n");
    s
}

fn record_sql(m: &Migration) -> String {
    format!(
        "INSERT INTO snakkaz_pay_migrations (version, name) VALUES ({}, '{}') ON CONFLICT (version) DO NOTHING;\n",
        m.version, m.name
    )
}

/// Applies the migrations the database does not have yet, in one transaction.
/// Returns the versions applied.
pub async fn apply(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(BOOTSTRAP).await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM snakkaz_pay_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        tx.batch_execute(m.sql).await?;
        tx.batch_execute(&record_sql(m)).await?;
        done.push(m.version);
    }
    tx.commit().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
            assert!(!m.name.contains('\''), "names are inlined into SQL");
        }
    }

    #[test]
    fn script_records_every_migration_and_enables_rls() {
        let s = script();
        for m in MIGRATIONS {
            assert!(s.contains(&format!("VALUES ({}, '{}')", m.version, m.name)));
        }
        for t in [
            "electrum_payments",
            "electrum_payments_archive",
            "bitcoin_wallets",
            "electrum_transaction_cache",
        ] {
            assert!(
                s.contains(&format!("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")),
                "{t}"
            );
        }
        assert!(!s.contains("CREATE POLICY"), "no public policies");
    }
}
