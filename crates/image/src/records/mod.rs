//! The image domain's SQL: the tables `images`, `image_properties`, `image_tags` and
//! `image_members` are read and written here (whole records: core columns, properties,
//! tags; members), `image_tasks` in [`tasks`]. SQL only; no policy here. The rest of
//! the crate passes a [`Tx`] or a pooled connection ([`conn`]) through.

pub(crate) mod tasks;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;

use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};

use ferrostack_core::Db;
use ferrostack_core::db::{Cols, Param};

use crate::error::{Error, Result};
use crate::model::{Image, Member, MemberStatus, Visibility};
use crate::status::Status;

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

/// A row of [`COLUMNS`], by position (the fold's rows and sqlx's `AnyRow` alike).
fn decode(r: &dyn Cols) -> Result<Image> {
    let status = r.text(2)?;
    let visibility = r.text(3)?;
    let own = |v: Option<&str>| v.map(str::to_owned);
    Ok(Image {
        id: r.text(0)?.to_owned(),
        name: own(r.opt_text(1)?),
        status: status.parse().map_err(|()| corrupt("status", status))?,
        visibility: Visibility::parse(visibility)
            .ok_or_else(|| corrupt("visibility", visibility))?,
        protected: r.flag(4)?,
        os_hidden: r.flag(5)?,
        owner: own(r.opt_text(6)?),
        checksum: own(r.opt_text(7)?),
        os_hash_algo: own(r.opt_text(8)?),
        os_hash_value: own(r.opt_text(9)?),
        size: r.opt_int(10)?,
        virtual_size: r.opt_int(11)?,
        min_disk: r.int(12)?,
        min_ram: r.int(13)?,
        disk_format: own(r.opt_text(14)?),
        container_format: own(r.opt_text(15)?),
        location: own(r.opt_text(16)?),
        created_at_us: r.int(17)?,
        updated_at_us: r.int(18)?,
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

/// The images a list reads: whose, and (when the list decides it) only hidden or
/// only not hidden ones.
pub struct Scope<'a> {
    pub who: Visible<'a>,
    pub hidden: Option<bool>,
}

impl Scope<'_> {
    /// The condition on `images` and its parameters.
    fn sql(&self) -> (String, Vec<Param>) {
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Visible::Project(p) = self.who {
            conds.push(
                "(owner = $1 OR visibility IN ('public', 'community') OR (visibility = 'shared' \
                 AND EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id \
                 AND m.member = $1)))"
                    .to_owned(),
            );
            params.push(Param::Text(p.to_owned()));
        }
        if let Some(h) = self.hidden {
            params.push(Param::Bool(h));
            conds.push(format!("os_hidden = ${}", params.len()));
        }
        if conds.is_empty() {
            conds.push("1 = 1".to_owned());
        }
        (conds.join(" AND "), params)
    }
}

/// Properties (kind 0: name, value) and tags (kind 1: value) of the images whose
/// ids `images_of` selects, in one read; tags in order.
fn children_sql(images_of: &str) -> String {
    format!(
        "SELECT image_id, CAST(0 AS BIGINT), name, value FROM image_properties \
         WHERE image_id {images_of} \
         UNION ALL SELECT image_id, CAST(1 AS BIGINT), value, value FROM image_tags WHERE image_id {images_of} \
         ORDER BY 2, 3"
    )
}

/// Adds a row of [`children_sql`] to the image it belongs to, if it is one of `images`.
fn add_child(images: &mut [Image], index: &HashMap<String, usize>, r: &dyn Cols) -> Result<()> {
    let Some(&i) = index.get(r.text(0)?) else {
        return Ok(());
    };
    let im = &mut images[i];
    if r.int(1)? == 0 {
        im.properties
            .insert(r.text(2)?.to_owned(), r.text(3)?.to_owned());
    } else {
        im.tags.push(r.text(2)?.to_owned());
    }
    Ok(())
}

fn index_of(images: &[Image]) -> HashMap<String, usize> {
    images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.id.clone(), i))
        .collect()
}

/// One image with its properties and tags, inside a transaction (or on a pooled
/// connection).
pub async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<Image>> {
    let sql = format!("SELECT {COLUMNS} FROM images WHERE id = $1");
    let Some(row) = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut image = [decode(&row)?];
    let index = index_of(&image);
    for r in sqlx::query(AssertSqlSafe(children_sql("= $1")))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
    {
        add_child(&mut image, &index, &r)?;
    }
    let [image] = image;
    Ok(Some(image))
}

/// One image with its properties and tags (a show: outside any transaction).
pub async fn get(db: &Db, id: &str) -> Result<Option<Image>> {
    let params = vec![Param::Text(id.to_owned())];
    let found = db
        .fold(
            format!("SELECT {COLUMNS} FROM images WHERE id = $1"),
            params.clone(),
            None,
            |acc: &mut Option<Image>, r| {
                *acc = Some(decode(r)?);
                Ok::<_, Error>(ControlFlow::Break(()))
            },
        )
        .await?;
    let Some(image) = found else {
        return Ok(None);
    };
    let [image] = with_children(db, children_sql("= $1"), params, [image]).await?;
    Ok(Some(image))
}

/// `images` with their properties and tags, read by `sql` (a [`children_sql`]).
async fn with_children<I>(db: &Db, sql: String, params: Vec<Param>, images: I) -> Result<I>
where
    I: AsRef<[Image]> + AsMut<[Image]> + Send + 'static,
{
    let index = index_of(images.as_ref());
    db.fold(sql, params, images, move |images, r| {
        add_child(images.as_mut(), &index, r)?;
        Ok::<_, Error>(ControlFlow::Continue(()))
    })
    .await
}

/// Folds the images of `scope` (without properties and tags) into `init`; newest
/// first (`created_at` then `id`, both descending) when `newest_first`, else in no
/// particular order. `f` may stop the read.
pub async fn fold_images<A, F>(
    db: &Db,
    scope: &Scope<'_>,
    newest_first: bool,
    init: A,
    mut f: F,
) -> Result<A>
where
    A: Send + 'static,
    F: FnMut(&mut A, Image) -> ControlFlow<()> + Send + 'static,
{
    let (cond, params) = scope.sql();
    let order = if newest_first {
        " ORDER BY created_at_us DESC, id DESC"
    } else {
        ""
    };
    db.fold(
        format!("SELECT {COLUMNS} FROM images WHERE {cond}{order}"),
        params,
        init,
        move |acc, r| Ok::<_, Error>(f(acc, decode(r)?)),
    )
    .await
}

/// Fills in the properties and tags of `images`, all of which are in `scope`, in
/// one read over the children of the scope's images created in the span of
/// `images` (a page read newest first is such a span).
pub async fn fill_children(db: &Db, scope: &Scope<'_>, images: Vec<Image>) -> Result<Vec<Image>> {
    let (Some(first), Some(last)) = (
        images.iter().map(|im| im.created_at_us).min(),
        images.iter().map(|im| im.created_at_us).max(),
    ) else {
        return Ok(images);
    };
    let (cond, mut params) = scope.sql();
    params.push(Param::Int(first));
    params.push(Param::Int(last));
    let sql = children_sql(&format!(
        "IN (SELECT id FROM images WHERE {cond} AND created_at_us BETWEEN ${} AND ${})",
        params.len() - 1,
        params.len()
    ));
    with_children(db, sql, params, images).await
}

/// The ids of the images whose bytes are in the store (`Status::has_data`).
pub async fn ids_with_data(db: &Db) -> Result<HashSet<String>> {
    db.fold(
        "SELECT id, status FROM images".to_owned(),
        Vec::new(),
        HashSet::new(),
        |ids, r| {
            let status = r.text(1)?;
            let status: Status = status.parse().map_err(|()| corrupt("status", status))?;
            if status.has_data() {
                ids.insert(r.text(0)?.to_owned());
            }
            Ok::<_, Error>(ControlFlow::Continue(()))
        },
    )
    .await
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
pub async fn memberships(db: &Db, project: &str) -> Result<HashMap<String, MemberStatus>> {
    db.fold(
        "SELECT image_id, status FROM image_members WHERE member = $1".to_owned(),
        vec![Param::Text(project.to_owned())],
        HashMap::new(),
        |out, r| {
            let status = r.text(1)?;
            out.insert(
                r.text(0)?.to_owned(),
                MemberStatus::parse(status).ok_or_else(|| corrupt("member status", status))?,
            );
            Ok::<_, Error>(ControlFlow::Continue(()))
        },
    )
    .await
}

/// Whether `project` is a member of `image_id` (whatever the member's status).
pub async fn is_member(db: &Db, image_id: &str, project: &str) -> Result<bool> {
    db.fold(
        "SELECT 1 FROM image_members WHERE image_id = $1 AND member = $2".to_owned(),
        vec![
            Param::Text(image_id.to_owned()),
            Param::Text(project.to_owned()),
        ],
        false,
        |found, _| {
            *found = true;
            Ok::<_, Error>(ControlFlow::Break(()))
        },
    )
    .await
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
