//! The `quotas` and `quota_classes` tables, and the usage counted from `servers`.

use sqlx::{AnyConnection, Row};

use crate::error::Result;
use crate::quotas::Usage;

fn limit_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<(String, i64)>> {
    rows.iter()
        .map(|row| Ok((row.try_get("resource")?, row.try_get("hard_limit")?)))
        .collect()
}

/// A project's own limits (`(resource, hard_limit)`), not a user's.
pub async fn project_limits(
    conn: &mut AnyConnection,
    project_id: &str,
) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT resource, hard_limit FROM quotas WHERE project_id = $1 AND user_id = ''",
    )
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await?;
    limit_rows(&rows)
}

/// The limits set for one user of a project.
pub async fn user_limits(
    conn: &mut AnyConnection,
    project_id: &str,
    user_id: &str,
) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT resource, hard_limit FROM quotas WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    limit_rows(&rows)
}

/// The limits of the `default` quota class.
pub async fn class_defaults(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT resource, hard_limit FROM quota_classes WHERE class_name = 'default'")
            .fetch_all(&mut *conn)
            .await?;
    limit_rows(&rows)
}

/// Servers not deleted, counted against instances, cores and RAM.
pub async fn usage(conn: &mut AnyConnection, project_id: &str) -> Result<Usage> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r \
         FROM servers WHERE project_id = $1 AND deleted = $2",
    )
    .bind(project_id)
    .bind(false)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Usage {
        instances: row.try_get::<i64, _>("n")?,
        cores: row.try_get::<i64, _>("c")?,
        ram: row.try_get::<i64, _>("r")?,
    })
}

/// Sets one limit of a project (`user_id` `""`) or of one of its users.
pub async fn put(
    conn: &mut AnyConnection,
    project_id: &str,
    user_id: &str,
    resource: &str,
    n: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM quotas WHERE project_id = $1 AND user_id = $2 AND resource = $3")
        .bind(project_id)
        .bind(user_id)
        .bind(resource)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO quotas (project_id, user_id, resource, hard_limit) VALUES ($1, $2, $3, $4)",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(resource)
    .bind(n)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Drops a user's limits, or (`None`) all limits of a project and its users.
pub async fn delete(
    conn: &mut AnyConnection,
    project_id: &str,
    user_id: Option<&str>,
) -> Result<()> {
    match user_id {
        Some(u) => {
            sqlx::query("DELETE FROM quotas WHERE project_id = $1 AND user_id = $2")
                .bind(project_id)
                .bind(u)
                .execute(&mut *conn)
                .await?;
        }
        None => {
            sqlx::query("DELETE FROM quotas WHERE project_id = $1")
                .bind(project_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Sets one limit of a quota class.
pub async fn put_class(
    conn: &mut AnyConnection,
    class: &str,
    resource: &str,
    n: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM quota_classes WHERE class_name = $1 AND resource = $2")
        .bind(class)
        .bind(resource)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO quota_classes (class_name, resource, hard_limit) VALUES ($1, $2, $3)")
        .bind(class)
        .bind(resource)
        .bind(n)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
