//! The schema, as embedded sqlx migrations in the `airlock` schema.

use std::borrow::Cow;

use sqlx::PgPool;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::Result;

/// Creates or upgrades the `airlock` schema (idempotent; migrations are applied
/// under sqlx's advisory lock, so two devices may run it at once). `team init`
/// runs it, and so does every `airlock team sync`, which is how a team made by
/// an older airlock gets the newer migrations.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    sqlx::query("CREATE SCHEMA IF NOT EXISTS airlock")
        .execute(pool)
        .await?;
    let mut migrator = Migrator::with_migrations(vec![
        Migration::new(
            1,
            Cow::Borrowed("team"),
            MigrationType::Simple,
            sqlx::SqlStr::from_static(include_str!("../migrations/0001_team.sql")),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("audit checkpoints"),
            MigrationType::Simple,
            sqlx::SqlStr::from_static(include_str!("../migrations/0002_audit_checkpoints.sql")),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("config append-only"),
            MigrationType::Simple,
            sqlx::SqlStr::from_static(include_str!("../migrations/0003_config_append_only.sql")),
            false,
        ),
        Migration::new(
            4,
            Cow::Borrowed("device db urls"),
            MigrationType::Simple,
            sqlx::SqlStr::from_static(include_str!("../migrations/0004_device_db_urls.sql")),
            false,
        ),
    ]);
    migrator.dangerous_set_table_name("airlock._sqlx_migrations");
    migrator.run(pool).await?;
    Ok(())
}
