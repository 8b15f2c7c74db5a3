//! Image tasks: each interactive import (`POST /v2/images/{id}/import`) is recorded as
//! an `api_image_import` task (`processing`, then `success` or `failure`), listed by
//! `GET /v2/images/{id}/tasks` (Image API v2.12), as Glance does. The standalone tasks
//! API (`/v2/tasks`) is not implemented.

use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use ferrostack_core::RequestContext;
use ferrostack_core::ids::new_uuid;

use crate::error::Result;
use crate::policy;
use crate::service::{Images, now_us};

/// How long a finished task is kept visible (Glance's `task_time_to_live`, 48 h).
const TIME_TO_LIVE_US: i64 = 48 * 3600 * 1_000_000;

/// One image task.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTask {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub owner: Option<String>,
    pub image_id: String,
    pub request_id: Option<String>,
    pub user_id: String,
    pub input: Value,
    pub result: Option<Value>,
    pub message: String,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    pub expires_at_us: Option<i64>,
}

/// `2026-12-01 11:19:52.358392`: how Glance prints a task's times (Python's `str()` of
/// a datetime, UTC).
pub fn task_time(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

impl ImageTask {
    /// The task as `GET /v2/images/{id}/tasks` shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind,
            "status": self.status,
            "owner": self.owner,
            "expires_at": self.expires_at_us.map(task_time),
            "created_at": task_time(self.created_at_us),
            "updated_at": task_time(self.updated_at_us),
            "deleted_at": null,
            "deleted": false,
            "image_id": self.image_id,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "input": self.input,
            "result": self.result,
            "message": self.message,
        })
    }
}

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

/// Records a new import task, in the transaction that starts the import; its id.
pub(crate) async fn begin_import(
    tx: &mut Transaction<'static, Any>,
    ctx: &RequestContext,
    image_id: &str,
    owner: Option<&str>,
    request_id: Option<&str>,
    import_req: &Value,
) -> Result<String> {
    let id = new_uuid();
    let now = now_us();
    let input = json!({"image_id": image_id, "import_req": import_req, "backend": null});
    sqlx::query(
        "INSERT INTO image_tasks (id, image_id, type, status, owner, user_id, request_id, \
         input, result, message, created_at_us, updated_at_us, expires_at_us) \
         VALUES ($1, $2, 'api_image_import', 'processing', $3, $4, $5, $6, NULL, '', $7, $7, NULL)",
    )
    .bind(&id)
    .bind(image_id)
    .bind(owner.map(str::to_string))
    .bind(&ctx.user_id)
    .bind(request_id.map(str::to_string))
    .bind(input.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

impl Images {
    /// Marks an import task finished: `success`, or `failure` with the reason.
    pub(crate) async fn finish_task(
        &self,
        task_id: &str,
        outcome: std::result::Result<(), String>,
    ) {
        let now = now_us();
        let (status, message) = match &outcome {
            Ok(()) => ("success", String::new()),
            Err(m) => ("failure", m.clone()),
        };
        let r = sqlx::query(
            "UPDATE image_tasks SET status = $1, message = $2, updated_at_us = $3, \
             expires_at_us = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(message)
        .bind(now)
        .bind(now + TIME_TO_LIVE_US)
        .bind(task_id)
        .execute(self.db.pool())
        .await;
        if let Err(e) = r {
            tracing::warn!(task_id, error = %e, "image task status not recorded");
        }
    }

    /// `GET /v2/images/{id}/tasks`: the image's tasks, oldest first; who can see the
    /// image can see them.
    pub async fn image_tasks(&self, ctx: &RequestContext, id: &str) -> Result<Vec<ImageTask>> {
        policy::reader(ctx, "get_image")?;
        self.visible(ctx, id).await?;
        let rows =
            sqlx::query("SELECT * FROM image_tasks WHERE image_id = $1 ORDER BY created_at_us, id")
                .bind(id)
                .fetch_all(self.db.pool())
                .await?;
        rows.iter().map(from_row).collect()
    }
}
