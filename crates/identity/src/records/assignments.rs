//! The `assignments` table: who (user or group) holds which role on what (project,
//! domain or the system).

use std::ops::ControlFlow;

use sqlx::Row;

use ferrostack_core::Db;
use ferrostack_core::db::{Cols, Param};

use super::{DbResult, Tx, execute};
use crate::model::{Actor, Assignment, Role, Target};

/// The binds `$1..$5` of one grant: actor type and id, target type and id, role id.
fn grant<'a>(actor: &'a Actor, target: &'a Target, role_id: &'a str) -> [&'a str; 5] {
    [
        actor.kind(),
        actor.id(),
        target.kind(),
        target.id(),
        role_id,
    ]
}

/// A new grant (already granted: unchanged).
pub(crate) async fn insert(
    tx: &mut Tx,
    actor: &Actor,
    target: &Target,
    role_id: &str,
) -> DbResult<()> {
    let sql = "INSERT INTO assignments (actor_type, actor_id, target_type, target_id, role_id) \
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    execute(tx, &[sql], &grant(actor, target, role_id)).await?;
    Ok(())
}

pub(crate) async fn exists(
    db: &Db,
    actor: &Actor,
    target: &Target,
    role_id: &str,
) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM assignments WHERE actor_type = $1 AND actor_id = $2 \
         AND target_type = $3 AND target_id = $4 AND role_id = $5",
    )
    .bind(actor.kind())
    .bind(actor.id())
    .bind(target.kind())
    .bind(target.id())
    .bind(role_id)
    .fetch_one(db.pool())
    .await?;
    Ok(n > 0)
}

/// The roles granted directly to the actor on the target, by name.
pub(crate) async fn roles_of(db: &Db, actor: &Actor, target: &Target) -> DbResult<Vec<Role>> {
    let rows = sqlx::query(
        "SELECT r.* FROM roles r JOIN assignments a ON a.role_id = r.id WHERE a.actor_type = $1 \
         AND a.actor_id = $2 AND a.target_type = $3 AND a.target_id = $4 ORDER BY r.name",
    )
    .bind(actor.kind())
    .bind(actor.id())
    .bind(target.kind())
    .bind(target.id())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(super::roles::from_row).collect()
}

/// Removes a grant; false when there was none.
pub(crate) async fn delete(
    tx: &mut Tx,
    actor: &Actor,
    target: &Target,
    role_id: &str,
) -> DbResult<bool> {
    let sql = "DELETE FROM assignments WHERE actor_type = $1 AND actor_id = $2 AND target_type = $3 \
               AND target_id = $4 AND role_id = $5";
    Ok(execute(tx, &[sql], &grant(actor, target, role_id)).await? > 0)
}

/// The text of a read of the distinct role ids a user holds on a target, directly or
/// through its groups; the arguments are the placeholders for target type, target
/// id and user id.
pub(super) fn role_ids_sql(target_type: &str, target_id: &str, user_id: &str) -> String {
    format!(
        "SELECT DISTINCT role_id FROM assignments WHERE target_type = {target_type} AND \
         target_id = {target_id} AND ((actor_type = 'user' AND actor_id = {user_id}) OR \
         (actor_type = 'group' AND actor_id IN \
         (SELECT group_id FROM group_members WHERE user_id = {user_id})))"
    )
}

/// Role ids assigned to the user on the target, directly or through its groups.
pub(crate) async fn role_ids_of_user(
    db: &Db,
    user_id: &str,
    target: &Target,
) -> crate::error::Result<Vec<String>> {
    let params = vec![
        Param::Text(target.kind().to_owned()),
        Param::Text(target.id().to_owned()),
        Param::Text(user_id.to_owned()),
    ];
    db.fold(
        role_ids_sql("$1", "$2", "$3"),
        params,
        Vec::new(),
        |ids: &mut Vec<String>, r: &dyn Cols| {
            ids.push(r.text(0)?.to_owned());
            Ok(ControlFlow::Continue(()))
        },
    )
    .await
}

/// Ids of the domains the user has a role on, directly or through its groups.
pub(crate) async fn domain_ids_of_user(db: &Db, user_id: &str) -> DbResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT target_id FROM assignments WHERE target_type = 'domain' AND \
         ((actor_type = 'user' AND actor_id = $1) OR (actor_type = 'group' AND actor_id IN \
         (SELECT group_id FROM group_members WHERE user_id = $1)))",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await
}

/// Every direct assignment (rows with a target type this code does not know are skipped).
pub(crate) async fn all(db: &Db) -> DbResult<Vec<Assignment>> {
    let rows = sqlx::query("SELECT * FROM assignments")
        .fetch_all(db.pool())
        .await?;
    let mut direct = Vec::with_capacity(rows.len());
    for r in rows {
        let actor_type: String = r.try_get("actor_type")?;
        let actor_id: String = r.try_get("actor_id")?;
        let target_type: String = r.try_get("target_type")?;
        let target_id: String = r.try_get("target_id")?;
        let actor = match actor_type.as_str() {
            "user" => Actor::User(actor_id),
            _ => Actor::Group(actor_id),
        };
        let Some(target) = Target::from_parts(&target_type, target_id) else {
            continue;
        };
        direct.push(Assignment {
            actor,
            target,
            role_id: r.try_get("role_id")?,
            via_group: None,
            prior_role: None,
        });
    }
    Ok(direct)
}
