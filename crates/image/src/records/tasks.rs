//! The `image_tasks` table: import tasks, written when an import starts and ends,
//! read for `GET /v2/images/{id}/tasks`.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::Db;

use super::Tx;
use crate::error::Result;
use crate::tasks::ImageTask;

fn from_row(r: &AnyRow) -> Result<ImageTask> {
    let input: String = r.try_get("input")?;
    let result: Option<String> = r.try_get("result")?;
    Ok(ImageTask {
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        status: r.try_get("status")?,
        owner: r.try_get("owner")?,
        image_id: r.try_get("image_id")?,
        request_id: r.try_get("request_id")?,
        user_id: r.try_get("user_id")?,
        input: serde_json::from_str(&input).unwrap_or(Value::Null),
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
        message: r.try_get("message")?,
        created_at_us: r.try_get("created_at_us")?,
        updated_at_us: r.try_get("updated_at_us")?,
        expires_at_us: r.try_get("expires_at_us")?,
    })
}

/// Inserts a new import task (`api_image_import`, `processing`, no result yet).
pub async fn insert_import(tx: &mut Tx, t: &ImageTask) -> Result<()> {
    sqlx::query(
        "INSERT INTO image_tasks (id, image_id, type, status, owner, user_id, request_id, \
         input, result, message, created_at_us, updated_at_us, expires_at_us) \
         VALUES ($1, $2, 'api_image_import', 'processing', $3, $4, $5, $6, NULL, '', $7, $7, NULL)",
    )
    .bind(&t.id)
    .bind(&t.image_id)
    .bind(t.owner.clone())
    .bind(&t.user_id)
    .bind(t.request_id.clone())
    .bind(t.input.to_string())
    .bind(t.created_at_us)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a task's end: its status, message, time and expiry.
pub async fn finish(
    db: &Db,
    id: &str,
    status: &str,
    message: String,
    now_us: i64,
    expires_at_us: i64,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE image_tasks SET status = $1, message = $2, updated_at_us = $3, \
         expires_at_us = $4 WHERE id = $5",
    )
    .bind(status)
    .bind(message)
    .bind(now_us)
    .bind(expires_at_us)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Start-up: tasks that were running when the service stopped failed.
pub async fn fail_interrupted(tx: &mut Tx) -> Result<()> {
    sqlx::query(
        "UPDATE image_tasks SET status = 'failure', \
         message = 'Interrupted by a restart of the image service.' \
         WHERE status IN ('pending', 'processing')",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An image's tasks, oldest first.
pub async fn of_image(db: &Db, image_id: &str) -> Result<Vec<ImageTask>> {
    sqlx::query("SELECT * FROM image_tasks WHERE image_id = $1 ORDER BY created_at_us, id")
        .bind(image_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}
