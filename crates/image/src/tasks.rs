//! Image tasks: each interactive import (`POST /v2/images/{id}/import`) is recorded as
//! an `api_image_import` task (`processing`, then `success` or `failure`), listed by
//! `GET /v2/images/{id}/tasks` (Image API v2.12), as Glance does. The standalone tasks
//! API (`/v2/tasks`) is not implemented.

use serde_json::{Value, json};

use ferrostack_core::RequestContext;
use ferrostack_core::ids::new_uuid;

use crate::error::Result;
use crate::policy;
use crate::records::{self, Tx};
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

/// Records a new import task, in the transaction that starts the import; its id.
pub(crate) async fn begin_import(
    tx: &mut Tx,
    ctx: &RequestContext,
    image_id: &str,
    owner: Option<&str>,
    request_id: Option<&str>,
    import_req: &Value,
) -> Result<String> {
    let now = now_us();
    let task = ImageTask {
        id: new_uuid(),
        kind: "api_image_import".into(),
        status: "processing".into(),
        owner: owner.map(str::to_string),
        image_id: image_id.to_string(),
        request_id: request_id.map(str::to_string),
        user_id: ctx.user_id.clone(),
        input: json!({"image_id": image_id, "import_req": import_req, "backend": null}),
        result: None,
        message: String::new(),
        created_at_us: now,
        updated_at_us: now,
        expires_at_us: None,
    };
    records::tasks::insert_import(tx, &task).await?;
    Ok(task.id)
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
        let r = records::tasks::finish(
            &self.db,
            task_id,
            status,
            message,
            now,
            now + TIME_TO_LIVE_US,
        )
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
        records::tasks::of_image(&self.db, id).await
    }
}
