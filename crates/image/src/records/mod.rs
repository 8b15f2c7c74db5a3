//! The image domain's SQL: the tables `images`, `image_properties`, `image_tags` and
//! `image_members` are read and written here (whole records: core columns, properties,
//! tags; members), `image_tasks` in [`tasks`]. SQL only; no policy here. The rest of
//! the crate passes a [`Tx`] or a pooled connection ([`conn`]) through.

pub(crate) mod tasks;

use std::collections::{BTreeMap, HashMap};

use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};

use ferrostack_core::Db;
use ferrostack_core::db::get_bool;

use crate::error::{Error, Result};
use crate::model::{Image, Member, MemberStatus, Visibility};

const COLUMNS: &str = "id, name, status, visibility, protected, os_hidden, owner, checksum, \
     os_hash_algo, os_hash_value, size, virtual_size, min_disk, min_ram, disk_format, \
     container_format, location, created_at_us, updated_at_us";

/// A write transaction (`Db::begin_write`), as the records functions take it.
pub(crate) type Tx = Transaction<'static, Any>;

/// A connection from the pool, for reads outside a transaction.
pub(crate) async fn conn(db: &Db) -> Result<PoolConnection<Any>> {
    Ok(db.pool().acquire().await?)
}

fn corrupt(what: &str, value: &str) -> Error {
    Error::Internal(format!("database holds an invalid image {what}: {value:?}").into())
}

fn from_row(r: &AnyRow) -> Result<Image> {
    let status: String = r.try_get("status")?;
    let visibility: String = r.try_get("visibility")?;
    Ok(Image {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        status: status.parse().map_err(|()| corrupt("status", &status))?,
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| corrupt("visibility", &visibility))?,
        protected: get_bool(r, "protected")?,
        os_hidden: get_bool(r, "os_hidden")?,
        owner: r.try_get("owner")?,
        checksum: r.try_get("checksum")?,
        os_hash_algo: r.try_get("os_hash_algo")?,
        os_hash_value: r.try_get("os_hash_value")?,
        size: r.try_get("size")?,
        virtual_size: r.try_get("virtual_size")?,
        min_disk: r.try_get("min_disk")?,
        min_ram: r.try_get("min_ram")?,
        disk_format: r.try_get("disk_format")?,
        container_format: r.try_get("container_format")?,
        location: r.try_get("location")?,
        created_at_us: r.try_get("created_at_us")?,
        updated_at_us: r.try_get("updated_at_us")?,
        tags: Vec::new(),
        properties: BTreeMap::new(),
    })
}

/// Who is asking, for the rows a list may consider.
pub enum Visible<'a> {
    /// Admin: every image.
    All,
    /// A project: its own, public, community, and shared images it is a member of.
    Project(&'a str),
}

/// One image with its properties and tags.
pub async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<Image>> {
    let sql = format!("SELECT {COLUMNS} FROM images WHERE id = $1");
    let Some(row) = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut image = from_row(&row)?;
    for r in sqlx::query("SELECT name, value FROM image_properties WHERE image_id = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
    {
        image
            .properties
            .insert(r.try_get("name")?, r.try_get("value")?);
    }
    for r in sqlx::query("SELECT value FROM image_tags WHERE image_id = $1 ORDER BY value")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
    {
        image.tags.push(r.try_get("value")?);
    }
    Ok(Some(image))
}

/// Every image the caller may possibly see, with properties and tags.
pub async fn load_visible(conn: &mut AnyConnection, who: Visible<'_>) -> Result<Vec<Image>> {
    let (filter, project) = match who {
        Visible::All => ("1 = 1", ""),
        Visible::Project(p) => (
            "(owner = $1 OR visibility IN ('public', 'community') OR (visibility = 'shared' \
             AND EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id AND m.member = $1)))",
            p,
        ),
    };
    let bind = matches!(who, Visible::Project(_));
    let sql = format!("SELECT {COLUMNS} FROM images WHERE {filter}");
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if bind {
        q = q.bind(project);
    }
    let mut images: Vec<Image> = q
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(from_row)
        .collect::<Result<_>>()?;
    let mut index: HashMap<String, usize> = HashMap::with_capacity(images.len());
    for (i, im) in images.iter().enumerate() {
        index.insert(im.id.clone(), i);
    }
    let sub = format!("SELECT id FROM images WHERE {filter}");
    let props_sql =
        format!("SELECT image_id, name, value FROM image_properties WHERE image_id IN ({sub})");
    let mut q = sqlx::query(AssertSqlSafe(props_sql));
    if bind {
        q = q.bind(project);
    }
    for r in q.fetch_all(&mut *conn).await? {
        let id: String = r.try_get("image_id")?;
        if let Some(&i) = index.get(&id) {
            images[i]
                .properties
                .insert(r.try_get("name")?, r.try_get("value")?);
        }
    }
    let tags_sql =
        format!("SELECT image_id, value FROM image_tags WHERE image_id IN ({sub}) ORDER BY value");
    let mut q = sqlx::query(AssertSqlSafe(tags_sql));
    if bind {
        q = q.bind(project);
    }
    for r in q.fetch_all(&mut *conn).await? {
        let id: String = r.try_get("image_id")?;
        if let Some(&i) = index.get(&id) {
            images[i].tags.push(r.try_get("value")?);
        }
    }
    Ok(images)
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Binds $1..$17: every column of [`COLUMNS`] but the two times.
fn bind_columns<'q>(q: AnyQuery<'q>, im: &'q Image) -> AnyQuery<'q> {
    q.bind(&im.id)
        .bind(&im.name)
        .bind(im.status.as_str())
        .bind(im.visibility.as_str())
        .bind(im.protected)
        .bind(im.os_hidden)
        .bind(&im.owner)
        .bind(&im.checksum)
        .bind(&im.os_hash_algo)
        .bind(&im.os_hash_value)
        .bind(im.size)
        .bind(im.virtual_size)
        .bind(im.min_disk)
        .bind(im.min_ram)
        .bind(&im.disk_format)
        .bind(&im.container_format)
        .bind(&im.location)
}

/// Inserts a new image with its properties and tags.
pub async fn insert(tx: &mut Tx, im: &Image) -> Result<()> {
    let sql = format!(
        "INSERT INTO images ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19)"
    );
    bind_columns(sqlx::query(AssertSqlSafe(sql)), im)
        .bind(im.created_at_us)
        .bind(im.updated_at_us)
        .execute(&mut **tx)
        .await?;
    write_children(tx, im).await
}

/// Writes every attribute of an existing image back (properties and tags replaced).
pub async fn save(tx: &mut Tx, im: &Image) -> Result<()> {
    bind_columns(
        sqlx::query(
            "UPDATE images SET name = $2, status = $3, visibility = $4, protected = $5, \
         os_hidden = $6, owner = $7, checksum = $8, os_hash_algo = $9, os_hash_value = $10, \
         size = $11, virtual_size = $12, min_disk = $13, min_ram = $14, disk_format = $15, \
         container_format = $16, location = $17, updated_at_us = $18 WHERE id = $1",
        ),
        im,
    )
    .bind(im.updated_at_us)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM image_properties WHERE image_id = $1")
        .bind(&im.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
        .bind(&im.id)
        .execute(&mut **tx)
        .await?;
    write_children(tx, im).await
}

async fn write_children(tx: &mut Tx, im: &Image) -> Result<()> {
    for (k, v) in &im.properties {
        sqlx::query("INSERT INTO image_properties (image_id, name, value) VALUES ($1, $2, $3)")
            .bind(&im.id)
            .bind(k)
            .bind(v)
            .execute(&mut **tx)
            .await?;
    }
    for t in &im.tags {
        sqlx::query("INSERT INTO image_tags (image_id, value) VALUES ($1, $2)")
            .bind(&im.id)
            .bind(t)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Removes an image row (properties, tags and members go with it).
pub async fn delete(tx: &mut Tx, id: &str) -> Result<()> {
    for table in ["image_properties", "image_tags", "image_members"] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE image_id = $1"
        )))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("DELETE FROM images WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn member_from_row(r: &AnyRow) -> Result<Member> {
    let status: String = r.try_get("status")?;
    Ok(Member {
        image_id: r.try_get("image_id")?,
        member_id: r.try_get("member")?,
        status: MemberStatus::parse(&status).ok_or_else(|| corrupt("member status", &status))?,
        created_at: r.try_get::<i64, _>("created_at_us")?.div_euclid(1_000_000),
        updated_at: r.try_get::<i64, _>("updated_at_us")?.div_euclid(1_000_000),
    })
}

pub async fn members(conn: &mut AnyConnection, image_id: &str) -> Result<Vec<Member>> {
    sqlx::query(
        "SELECT image_id, member, status, created_at_us, updated_at_us FROM image_members \
         WHERE image_id = $1 ORDER BY created_at_us, member",
    )
    .bind(image_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(member_from_row)
    .collect()
}

pub async fn member(
    conn: &mut AnyConnection,
    image_id: &str,
    member: &str,
) -> Result<Option<Member>> {
    sqlx::query(
        "SELECT image_id, member, status, created_at_us, updated_at_us FROM image_members \
         WHERE image_id = $1 AND member = $2",
    )
    .bind(image_id)
    .bind(member)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(member_from_row)
    .transpose()
}

/// The membership status of every shared image `project` is a member of.
pub async fn memberships(
    conn: &mut AnyConnection,
    project: &str,
) -> Result<HashMap<String, MemberStatus>> {
    let mut out = HashMap::new();
    for r in sqlx::query("SELECT image_id, status FROM image_members WHERE member = $1")
        .bind(project)
        .fetch_all(&mut *conn)
        .await?
    {
        let status: String = r.try_get("status")?;
        out.insert(
            r.try_get("image_id")?,
            MemberStatus::parse(&status).ok_or_else(|| corrupt("member status", &status))?,
        );
    }
    Ok(out)
}

pub async fn put_member(tx: &mut Tx, m: &Member, now_us: i64, insert: bool) -> Result<()> {
    let sql = if insert {
        "INSERT INTO image_members (image_id, member, status, created_at_us, updated_at_us) \
         VALUES ($1, $2, $3, $4, $4)"
    } else {
        "UPDATE image_members SET status = $3, updated_at_us = $4 WHERE image_id = $1 AND member = $2"
    };
    sqlx::query(sql)
        .bind(&m.image_id)
        .bind(&m.member_id)
        .bind(m.status.as_str())
        .bind(now_us)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn delete_member(tx: &mut Tx, image_id: &str, member: &str) -> Result<()> {
    sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member = $2")
        .bind(image_id)
        .bind(member)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Images of a project and their total size (quotas).
pub async fn usage(conn: &mut AnyConnection, owner: &str) -> Result<(i64, i64)> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM images WHERE owner = $1",
    )
    .bind(owner)
    .fetch_one(&mut *conn)
    .await?;
    Ok((r.try_get("n")?, r.try_get("bytes")?))
}

/// Start-up: uploads and imports cut by a crash go back to `queued` (their size
/// forgotten); how many.
pub async fn requeue_interrupted(tx: &mut Tx) -> Result<u64> {
    let mut stuck = 0;
    for sql in [
        // an upload or an import cut by the crash: its bytes are not in the store
        "UPDATE images SET status = 'queued', size = NULL WHERE status IN ('saving', 'importing')",
        "UPDATE images SET status = 'queued', size = NULL WHERE status = 'uploading'",
    ] {
        stuck += sqlx::query(sql).execute(&mut **tx).await?.rows_affected();
    }
    Ok(stuck)
}

/// An image back to `queued` (size forgotten) if it is still in status `from`.
pub async fn requeue_if(tx: &mut Tx, id: &str, from: &str) -> Result<()> {
    sqlx::query("UPDATE images SET status = 'queued', size = NULL WHERE id = $1 AND status = $2")
        .bind(id)
        .bind(from)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
