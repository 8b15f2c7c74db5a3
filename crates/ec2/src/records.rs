//! The EC2 API's SQL, all of it: the id map, ClientTokens and the instance
//! attributes Nova has no place for.

use sqlx::Row;

use ferrostack_core::Db;
use ferrostack_core::db::get_bool;

use crate::error::Result;
use crate::ids::Kind;

/// Stores (ec2 id ↔ OpenStack id) pairs that are not stored yet.
pub async fn remember(db: &Db, kind: Kind, items: &[(String, String, String)]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    for (ec2_id, os_id, project) in items {
        sqlx::query(
            "INSERT INTO ec2_ids (ec2_id, kind, os_id, project_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(ec2_id)
        .bind(kind.as_str())
        .bind(os_id)
        .bind(project)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The OpenStack id of an EC2 id of this kind.
pub async fn os_id(db: &Db, kind: Kind, ec2_id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT os_id FROM ec2_ids WHERE ec2_id = $1 AND kind = $2")
        .bind(ec2_id)
        .bind(kind.as_str())
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get("os_id")).transpose()?)
}

/// A ClientToken's row: the hash of the request it came with and its reservation.
pub struct TokenRow {
    pub params_hash: String,
    pub reservation_id: String,
    pub created_at_us: i64,
}

pub async fn client_token(db: &Db, project: &str, token: &str) -> Result<Option<TokenRow>> {
    let row = sqlx::query(
        "SELECT params_hash, reservation_id, created_at_us FROM ec2_client_tokens \
         WHERE project_id = $1 AND client_token = $2",
    )
    .bind(project)
    .bind(token)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(TokenRow {
            params_hash: r.try_get("params_hash")?,
            reservation_id: r.try_get("reservation_id")?,
            created_at_us: r.try_get("created_at_us")?,
        })
    })
    .transpose()
}

/// Claims a ClientToken; false when another request holds it already.
pub async fn claim_token(
    db: &Db,
    project: &str,
    token: &str,
    hash: &str,
    now_us: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO ec2_client_tokens (project_id, client_token, params_hash, reservation_id, created_at_us) \
         VALUES ($1, $2, $3, '', $4) ON CONFLICT DO NOTHING",
    )
    .bind(project)
    .bind(token)
    .bind(hash)
    .bind(now_us)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Takes over a claim left without a reservation by a request that died.
pub async fn retake_token(
    db: &Db,
    project: &str,
    token: &str,
    hash: &str,
    older_than_us: i64,
    now_us: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE ec2_client_tokens SET params_hash = $1, created_at_us = $2 \
         WHERE project_id = $3 AND client_token = $4 AND reservation_id = '' AND created_at_us < $5",
    )
    .bind(hash)
    .bind(now_us)
    .bind(project)
    .bind(token)
    .bind(older_than_us)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn settle_token(db: &Db, project: &str, token: &str, reservation: &str) -> Result<()> {
    sqlx::query(
        "UPDATE ec2_client_tokens SET reservation_id = $1 WHERE project_id = $2 AND client_token = $3",
    )
    .bind(reservation)
    .bind(project)
    .bind(token)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn release_token(db: &Db, project: &str, token: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM ec2_client_tokens WHERE project_id = $1 AND client_token = $2 AND reservation_id = ''",
    )
    .bind(project)
    .bind(token)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The EC2-only attributes of an instance.
#[derive(Debug, Clone)]
pub struct Attrs {
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub source_dest_check: bool,
    pub shutdown_behavior: String,
    pub client_token: String,
    pub http_tokens: String,
}

impl Default for Attrs {
    fn default() -> Self {
        Attrs {
            disable_api_termination: false,
            disable_api_stop: false,
            source_dest_check: true,
            shutdown_behavior: "stop".into(),
            client_token: String::new(),
            http_tokens: "optional".into(),
        }
    }
}

/// The attributes of many instances at once (missing = defaults).
pub async fn attrs(
    db: &Db,
    server_ids: &[&str],
) -> Result<std::collections::HashMap<String, Attrs>> {
    let mut out = std::collections::HashMap::new();
    for chunk in server_ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT server_id, disable_api_termination, disable_api_stop, source_dest_check, \
             shutdown_behavior, client_token, http_tokens FROM ec2_instance_attrs WHERE server_id IN ({})",
            marks.join(",")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(db.pool()).await? {
            out.insert(
                r.try_get::<String, _>("server_id")?,
                Attrs {
                    disable_api_termination: get_bool(&r, "disable_api_termination")?,
                    disable_api_stop: get_bool(&r, "disable_api_stop")?,
                    source_dest_check: get_bool(&r, "source_dest_check")?,
                    shutdown_behavior: r.try_get("shutdown_behavior")?,
                    client_token: r.try_get("client_token")?,
                    http_tokens: r.try_get("http_tokens")?,
                },
            );
        }
    }
    Ok(out)
}

pub async fn put_attrs(db: &Db, server_id: &str, a: &Attrs) -> Result<()> {
    sqlx::query(
        "INSERT INTO ec2_instance_attrs (server_id, disable_api_termination, disable_api_stop, \
         source_dest_check, shutdown_behavior, client_token, http_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (server_id) DO UPDATE SET disable_api_termination = $2, disable_api_stop = $3, \
         source_dest_check = $4, shutdown_behavior = $5, client_token = $6, http_tokens = $7",
    )
    .bind(server_id)
    .bind(a.disable_api_termination)
    .bind(a.disable_api_stop)
    .bind(a.source_dest_check)
    .bind(&a.shutdown_behavior)
    .bind(&a.client_token)
    .bind(&a.http_tokens)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Tags kept here (resources without an OpenStack place for them), by resource.
pub async fn tags(
    db: &Db,
    project: &str,
) -> Result<std::collections::BTreeMap<String, Vec<(String, String)>>> {
    let rows = sqlx::query(
        "SELECT resource_id, tag_key, tag_value FROM ec2_tags WHERE project_id = $1 \
         ORDER BY resource_id, tag_key",
    )
    .bind(project)
    .fetch_all(db.pool())
    .await?;
    let mut out: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for r in rows {
        out.entry(r.try_get("resource_id")?)
            .or_default()
            .push((r.try_get("tag_key")?, r.try_get("tag_value")?));
    }
    Ok(out)
}

pub async fn put_tags(
    db: &Db,
    project: &str,
    resource: &str,
    tags: &[(String, String)],
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    for (k, v) in tags {
        sqlx::query(
            "INSERT INTO ec2_tags (resource_id, tag_key, tag_value, project_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, resource_id, tag_key) DO UPDATE SET tag_value = $3",
        )
        .bind(resource)
        .bind(k)
        .bind(v)
        .bind(project)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes tags of a resource: all of them, or the keys given (with a value,
/// only when it matches).
pub async fn delete_tags(
    db: &Db,
    project: &str,
    resource: &str,
    tags: &[(String, Option<String>)],
) -> Result<()> {
    if tags.is_empty() {
        sqlx::query("DELETE FROM ec2_tags WHERE project_id = $1 AND resource_id = $2")
            .bind(project)
            .bind(resource)
            .execute(db.pool())
            .await?;
        return Ok(());
    }
    for (k, v) in tags {
        let q = match v {
            Some(v) => sqlx::query(
                "DELETE FROM ec2_tags WHERE project_id = $1 AND resource_id = $2 AND tag_key = $3 \
                 AND tag_value = $4",
            )
            .bind(project)
            .bind(resource)
            .bind(k)
            .bind(v),
            None => sqlx::query(
                "DELETE FROM ec2_tags WHERE project_id = $1 AND resource_id = $2 AND tag_key = $3",
            )
            .bind(project)
            .bind(resource)
            .bind(k),
        };
        q.execute(db.pool()).await?;
    }
    Ok(())
}
