//! The `regions`, `services` and `endpoints` tables.

use sqlx::Row;
use sqlx::any::AnyRow;

use ferrostack_core::Db;
use ferrostack_core::db::get_bool;

use super::{DbResult, Tx, execute, fetch_all, fetch_optional, parse_json_map, to_json};
use crate::model::{Endpoint, Region, Service};

// ----- regions ---------------------------------------------------------------------------

fn region_from_row(r: &AnyRow) -> DbResult<Region> {
    Ok(Region {
        id: r.try_get("id")?,
        description: r.try_get("description")?,
        parent_region_id: r.try_get("parent_region_id")?,
        extra: parse_json_map(&r.try_get::<String, _>("extra")?),
    })
}

pub(crate) async fn region(db: &Db, id: &str) -> DbResult<Option<Region>> {
    fetch_optional(
        db,
        "SELECT * FROM regions WHERE id = $1",
        &[id],
        region_from_row,
    )
    .await
}

/// All regions by id.
pub(crate) async fn regions(db: &Db) -> DbResult<Vec<Region>> {
    fetch_all(
        db,
        "SELECT * FROM regions ORDER BY id",
        &[],
        region_from_row,
    )
    .await
}

/// A new region; a taken id fails with a unique violation.
pub(crate) async fn insert_region(tx: &mut Tx, r: &Region) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO regions (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)",
    )
    .bind(&r.id)
    .bind(&r.description)
    .bind(r.parent_region_id.clone())
    .bind(to_json(&r.extra)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A region with only an id, unless it exists; true when it was created.
pub(crate) async fn insert_region_if_missing(tx: &mut Tx, id: &str) -> DbResult<bool> {
    let created = sqlx::query(
        "INSERT INTO regions (id, description, parent_region_id, extra) \
         VALUES ($1, '', NULL, '{}') ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(created > 0)
}

/// Writes the region's mutable columns.
pub(crate) async fn update_region(tx: &mut Tx, r: &Region) -> DbResult<()> {
    sqlx::query(
        "UPDATE regions SET description = $1, parent_region_id = $2, extra = $3 WHERE id = $4",
    )
    .bind(&r.description)
    .bind(r.parent_region_id.clone())
    .bind(to_json(&r.extra)?)
    .bind(&r.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether endpoints or child regions refer to the region.
pub(crate) async fn region_in_use(db: &Db, id: &str) -> DbResult<bool> {
    let used: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM endpoints WHERE region_id = $1) + \
         (SELECT COUNT(*) FROM regions WHERE parent_region_id = $1)",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await?;
    Ok(used > 0)
}

pub(crate) async fn delete_region(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(tx, &["DELETE FROM regions WHERE id = $1"], &[id]).await?;
    Ok(())
}

// ----- services --------------------------------------------------------------------------

fn service_from_row(r: &AnyRow) -> DbResult<Service> {
    Ok(Service {
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        enabled: get_bool(r, "enabled")?,
        extra: parse_json_map(&r.try_get::<String, _>("extra")?),
    })
}

pub(crate) async fn service(db: &Db, id: &str) -> DbResult<Option<Service>> {
    fetch_optional(
        db,
        "SELECT * FROM services WHERE id = $1",
        &[id],
        service_from_row,
    )
    .await
}

/// All services by type, then id.
pub(crate) async fn services(db: &Db) -> DbResult<Vec<Service>> {
    fetch_all(
        db,
        "SELECT * FROM services ORDER BY type, id",
        &[],
        service_from_row,
    )
    .await
}

pub(crate) async fn insert_service(tx: &mut Tx, s: &Service) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO services (id, type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.id)
    .bind(&s.kind)
    .bind(&s.name)
    .bind(&s.description)
    .bind(s.enabled)
    .bind(to_json(&s.extra)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the service's mutable columns.
pub(crate) async fn update_service(tx: &mut Tx, s: &Service) -> DbResult<()> {
    sqlx::query(
        "UPDATE services SET type = $1, name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $6",
    )
    .bind(&s.kind)
    .bind(&s.name)
    .bind(&s.description)
    .bind(s.enabled)
    .bind(to_json(&s.extra)?)
    .bind(&s.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the service and its endpoints.
pub(crate) async fn delete_service(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(
        tx,
        &[
            "DELETE FROM endpoints WHERE service_id = $1",
            "DELETE FROM services WHERE id = $1",
        ],
        &[id],
    )
    .await?;
    Ok(())
}

// ----- endpoints -------------------------------------------------------------------------

fn endpoint_from_row(r: &AnyRow) -> DbResult<Endpoint> {
    let region_id: Option<String> = r.try_get("region_id")?;
    Ok(Endpoint {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        interface: r.try_get("interface")?,
        region: region_id.clone(),
        region_id,
        url: r.try_get("url")?,
        enabled: get_bool(r, "enabled")?,
        extra: parse_json_map(&r.try_get::<String, _>("extra")?),
    })
}

pub(crate) async fn endpoint(db: &Db, id: &str) -> DbResult<Option<Endpoint>> {
    fetch_optional(
        db,
        "SELECT * FROM endpoints WHERE id = $1",
        &[id],
        endpoint_from_row,
    )
    .await
}

/// All endpoints by service, interface, then id.
pub(crate) async fn endpoints(db: &Db) -> DbResult<Vec<Endpoint>> {
    fetch_all(
        db,
        "SELECT * FROM endpoints ORDER BY service_id, interface, id",
        &[],
        endpoint_from_row,
    )
    .await
}

pub(crate) async fn insert_endpoint(tx: &mut Tx, e: &Endpoint) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO endpoints (id, service_id, interface, region_id, url, enabled, extra) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.id)
    .bind(&e.service_id)
    .bind(&e.interface)
    .bind(e.region_id.clone())
    .bind(&e.url)
    .bind(e.enabled)
    .bind(to_json(&e.extra)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the endpoint's mutable columns.
pub(crate) async fn update_endpoint(tx: &mut Tx, e: &Endpoint) -> DbResult<()> {
    sqlx::query(
        "UPDATE endpoints SET service_id = $1, interface = $2, region_id = $3, url = $4, \
         enabled = $5, extra = $6 WHERE id = $7",
    )
    .bind(&e.service_id)
    .bind(&e.interface)
    .bind(e.region_id.clone())
    .bind(&e.url)
    .bind(e.enabled)
    .bind(to_json(&e.extra)?)
    .bind(&e.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn set_endpoint_url(tx: &mut Tx, id: &str, url: &str) -> DbResult<()> {
    execute(
        tx,
        &["UPDATE endpoints SET url = $1 WHERE id = $2"],
        &[url, id],
    )
    .await?;
    Ok(())
}

pub(crate) async fn delete_endpoint(tx: &mut Tx, id: &str) -> DbResult<()> {
    execute(tx, &["DELETE FROM endpoints WHERE id = $1"], &[id]).await?;
    Ok(())
}
