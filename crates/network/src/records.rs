//! The network domain's SQL: every table of the crate (`networks`, `subnets`, `ports`,
//! `port_security_groups`, `ip_allocations`, `security_groups`, `security_group_rules`,
//! `default_security_groups`, `network_quotas`) is read and written here and nowhere
//! else. Loading resources (with their subnets, fixed IPs, rules), writing them back.
//! SQL only; no policy here. Every write takes the caller's transaction; reads take
//! it or a pooled connection ([`conn`]).

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use ferrostack_core::Db;
use ferrostack_core::db::{Cols, Param};

use crate::error::{Error, Result};
use crate::model::{Network, Port, PortIp, Rule, SecurityGroup, Subnet};

/// The connection the records functions run on: a transaction's (`&mut tx`) or a
/// pooled one.
pub(crate) type Conn = AnyConnection;

/// A connection taken from the pool, for reads outside a transaction.
pub(crate) type Pooled = PoolConnection<Any>;

pub(crate) async fn conn(db: &Db) -> Result<Pooled> {
    Ok(db.pool().acquire().await?)
}

/// Whether `e` is a database error of a write that lost a race (duplicate key,
/// deadlock, serialization failure, busy or locked database).
pub(crate) fn lost_race(e: &(dyn std::error::Error + 'static)) -> bool {
    let Some(e) = e.downcast_ref::<sqlx::Error>() else {
        return false;
    };
    if ferrostack_core::db::is_unique_violation(e) {
        return true;
    }
    match e {
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            Some("40001" | "40P01" | "5" | "6" | "517" | "261")
        ),
        _ => false,
    }
}

/// Whose rows a read considers.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    All,
    Project(&'a str),
}

fn doc<T: DeserializeOwned>(r: &AnyRow) -> Result<T> {
    let text: String = r.try_get("doc")?;
    Ok(serde_json::from_str(&text)?)
}

pub use ferrostack_core::time::now_us;

// --- networks -------------------------------------------------------------------------

const NET_VISIBLE: &str = "(project_id = $1 OR shared = TRUE OR external = TRUE)";

async fn fill_subnet_ids(conn: &mut AnyConnection, nets: &mut [Network]) -> Result<()> {
    if nets.is_empty() {
        return Ok(());
    }
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, n) in nets.iter().enumerate() {
        index.insert(n.id.clone(), i);
    }
    let rows = if nets.len() == 1 {
        sqlx::query(
            "SELECT id, network_id FROM subnets WHERE network_id = $1 ORDER BY created_us, id",
        )
        .bind(nets[0].id.clone())
        .fetch_all(&mut *conn)
        .await?
    } else {
        sqlx::query("SELECT id, network_id FROM subnets ORDER BY created_us, id")
            .fetch_all(&mut *conn)
            .await?
    };
    for r in rows {
        let net: String = r.try_get("network_id")?;
        if let Some(&i) = index.get(&net) {
            nets[i].subnets.push(r.try_get("id")?);
        }
    }
    Ok(())
}

pub async fn network(conn: &mut AnyConnection, id: &str) -> Result<Option<Network>> {
    let Some(row) = sqlx::query("SELECT doc FROM networks WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut n = [doc::<Network>(&row)?];
    fill_subnet_ids(conn, &mut n).await?;
    let [n] = n;
    Ok(Some(n))
}

pub async fn networks(conn: &mut AnyConnection, who: Who<'_>) -> Result<Vec<Network>> {
    let rows = match who {
        Who::All => {
            sqlx::query("SELECT doc FROM networks ORDER BY id")
                .fetch_all(&mut *conn)
                .await?
        }
        Who::Project(p) => {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT doc FROM networks WHERE {NET_VISIBLE} ORDER BY id"
            )))
            .bind(p.to_string())
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut nets = rows.iter().map(doc).collect::<Result<Vec<Network>>>()?;
    fill_subnet_ids(conn, &mut nets).await?;
    Ok(nets)
}

pub async fn put_network(conn: &mut AnyConnection, n: &Network, insert: bool) -> Result<()> {
    let text = serde_json::to_string(n)?;
    let sql = if insert {
        "INSERT INTO networks (id, project_id, name, shared, external, created_us, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    } else {
        "UPDATE networks SET project_id = $2, name = $3, shared = $4, external = $5, doc = $7 \
         WHERE id = $1 AND $6 = $6"
    };
    sqlx::query(sql)
        .bind(n.id.clone())
        .bind(n.project_id.clone())
        .bind(n.name.clone())
        .bind(n.shared)
        .bind(n.external)
        .bind(now_us())
        .bind(text)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_network(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM networks WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// --- subnets --------------------------------------------------------------------------

pub async fn subnet(conn: &mut AnyConnection, id: &str) -> Result<Option<Subnet>> {
    sqlx::query("SELECT doc FROM subnets WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(doc)
        .transpose()
}

/// A network's subnets, oldest first.
pub async fn subnets_of(conn: &mut AnyConnection, network_id: &str) -> Result<Vec<Subnet>> {
    sqlx::query("SELECT doc FROM subnets WHERE network_id = $1 ORDER BY created_us, id")
        .bind(network_id.to_string())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(doc)
        .collect()
}

/// Subnets of the networks `who` sees, and `who`'s own.
pub async fn subnets(conn: &mut AnyConnection, who: Who<'_>) -> Result<Vec<Subnet>> {
    let rows = match who {
        Who::All => {
            sqlx::query("SELECT doc FROM subnets ORDER BY id")
                .fetch_all(&mut *conn)
                .await?
        }
        Who::Project(p) => {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT doc FROM subnets WHERE project_id = $1 OR network_id IN \
                 (SELECT id FROM networks WHERE {NET_VISIBLE}) ORDER BY id"
            )))
            .bind(p.to_string())
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.iter().map(doc).collect()
}

pub async fn put_subnet(conn: &mut AnyConnection, s: &Subnet, insert: bool) -> Result<()> {
    let text = serde_json::to_string(s)?;
    let sql = if insert {
        "INSERT INTO subnets (id, network_id, project_id, created_us, doc) VALUES ($1, $2, $3, $4, $5)"
    } else {
        "UPDATE subnets SET doc = $5 WHERE id = $1 AND network_id = $2 AND project_id = $3 AND $4 = $4"
    };
    sqlx::query(sql)
        .bind(s.id.clone())
        .bind(s.network_id.clone())
        .bind(s.project_id.clone())
        .bind(now_us())
        .bind(text)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_subnet(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM subnets WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// --- ports and addresses ----------------------------------------------------------------

/// Ports with their fixed IPs in one read: a port's row repeats once per address
/// (in address order), ports in creation order. `cond` is on `ports p`.
fn ports_sql(cond: &str) -> String {
    format!(
        "SELECT p.id, p.doc, a.subnet_id, a.ip_address FROM ports p \
         LEFT JOIN ip_allocations a ON a.port_id = p.id WHERE {cond} \
         ORDER BY p.created_us, p.id, a.position"
    )
}

/// Adds a row of [`ports_sql`] to `ports`: a new port, or another address of the last.
fn add_port_row(ports: &mut Vec<Port>, r: &dyn Cols) -> Result<()> {
    let id = r.text(0)?;
    if ports.last().is_none_or(|p| p.id != id) {
        ports.push(serde_json::from_str(r.text(1)?)?);
    }
    if let (Some(subnet_id), Some(port)) = (r.opt_text(2)?, ports.last_mut()) {
        port.fixed_ips.push(PortIp {
            subnet_id: subnet_id.to_owned(),
            ip_address: r.text(3)?.to_owned(),
        });
    }
    Ok(())
}

/// The ports `cond` selects, in a transaction or on a pooled connection.
async fn ports_where(
    conn: &mut AnyConnection,
    cond: &str,
    bind: Option<&str>,
) -> Result<Vec<Port>> {
    let mut q = sqlx::query(AssertSqlSafe(ports_sql(cond)));
    if let Some(b) = bind {
        q = q.bind(b.to_string());
    }
    let mut ports = Vec::new();
    for r in q.fetch_all(&mut *conn).await? {
        add_port_row(&mut ports, &r)?;
    }
    Ok(ports)
}

/// The ports `cond` selects, read outside any transaction (`Db::fold`).
async fn read_ports(db: &Db, cond: &str, params: Vec<Param>) -> Result<Vec<Port>> {
    db.fold(ports_sql(cond), params, Vec::new(), |ports, r| {
        add_port_row(ports, r)?;
        Ok::<_, Error>(ControlFlow::Continue(()))
    })
    .await
}

const PORT_BY_ID: &str = "p.id = $1";
const PORTS_OF_NETWORK: &str = "p.network_id = $1";
const PORTS_OF_DEVICE: &str = "p.device_id = $1";
const PORTS_OF_PROJECT: &str =
    "(p.project_id = $1 OR p.network_id IN (SELECT id FROM networks WHERE project_id = $1))";

pub async fn port(conn: &mut AnyConnection, id: &str) -> Result<Option<Port>> {
    Ok(ports_where(conn, PORT_BY_ID, Some(id)).await?.pop())
}

/// One port (a show, a server's requested port), outside any transaction.
pub async fn get_port(db: &Db, id: &str) -> Result<Option<Port>> {
    Ok(read_ports(db, PORT_BY_ID, vec![Param::Text(id.to_owned())])
        .await?
        .pop())
}

/// Ports `who` sees: its own and those on its networks.
pub async fn ports(db: &Db, who: Who<'_>) -> Result<Vec<Port>> {
    match who {
        Who::All => read_ports(db, "1 = 1", Vec::new()).await,
        Who::Project(p) => read_ports(db, PORTS_OF_PROJECT, vec![Param::Text(p.to_owned())]).await,
    }
}

pub async fn ports_of_network(conn: &mut AnyConnection, network_id: &str) -> Result<Vec<Port>> {
    ports_where(conn, PORTS_OF_NETWORK, Some(network_id)).await
}

pub async fn ports_of_device(conn: &mut AnyConnection, device_id: &str) -> Result<Vec<Port>> {
    ports_where(conn, PORTS_OF_DEVICE, Some(device_id)).await
}

/// A server's ports, outside any transaction.
pub async fn device_ports(db: &Db, device_id: &str) -> Result<Vec<Port>> {
    read_ports(db, PORTS_OF_DEVICE, vec![Param::Text(device_id.to_owned())]).await
}

pub async fn put_port(conn: &mut AnyConnection, p: &Port, insert: bool) -> Result<()> {
    let text = serde_json::to_string(p)?;
    let sql = if insert {
        "INSERT INTO ports (id, network_id, project_id, mac_address, device_id, device_owner, \
         created_by_compute, compute_slot, created_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    } else {
        "UPDATE ports SET network_id = $2, project_id = $3, mac_address = $4, device_id = $5, \
         device_owner = $6, created_by_compute = $7, compute_slot = $8, doc = $10 WHERE id = $1 AND $9 = $9"
    };
    sqlx::query(sql)
        .bind(p.id.clone())
        .bind(p.network_id.clone())
        .bind(p.project_id.clone())
        .bind(p.mac_address.clone())
        .bind(p.device_id.clone())
        .bind(p.device_owner.clone())
        .bind(p.created_by_compute)
        .bind(p.compute_slot)
        .bind(now_us())
        .bind(text)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM port_security_groups WHERE port_id = $1")
        .bind(p.id.clone())
        .execute(&mut *conn)
        .await?;
    for g in &p.security_groups {
        sqlx::query(
            "INSERT INTO port_security_groups (port_id, security_group_id) VALUES ($1, $2)",
        )
        .bind(p.id.clone())
        .bind(g.clone())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Replaces the port's addresses with `ips` (in that order).
pub async fn put_ips(conn: &mut AnyConnection, p: &Port) -> Result<()> {
    sqlx::query("DELETE FROM ip_allocations WHERE port_id = $1")
        .bind(p.id.clone())
        .execute(&mut *conn)
        .await?;
    for (i, ip) in p.fixed_ips.iter().enumerate() {
        sqlx::query(
            "INSERT INTO ip_allocations (network_id, ip_address, subnet_id, port_id, position) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.network_id.clone())
        .bind(ip.ip_address.clone())
        .bind(ip.subnet_id.clone())
        .bind(p.id.clone())
        .bind(i64::try_from(i).unwrap_or(0))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn delete_port(conn: &mut AnyConnection, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM ip_allocations WHERE port_id = $1",
        "DELETE FROM port_security_groups WHERE port_id = $1",
        "DELETE FROM ports WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The addresses taken in a subnet, as text.
pub async fn taken_in_subnet(conn: &mut AnyConnection, subnet_id: &str) -> Result<Vec<String>> {
    Ok(
        sqlx::query("SELECT ip_address FROM ip_allocations WHERE subnet_id = $1")
            .bind(subnet_id.to_string())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("ip_address"))
            .collect::<std::result::Result<_, _>>()?,
    )
}

/// The port holding `ip` on `network_id`, if any.
pub async fn ip_holder(
    conn: &mut AnyConnection,
    network_id: &str,
    ip: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query("SELECT port_id FROM ip_allocations WHERE network_id = $1 AND ip_address = $2")
            .bind(network_id.to_string())
            .bind(ip.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get::<String, _>("port_id"))
            .transpose()?,
    )
}

/// Whether another port than `port_id` on `network_id` has `mac`.
pub async fn mac_held_by_other(
    conn: &mut AnyConnection,
    network_id: &str,
    mac: &str,
    port_id: &str,
) -> Result<bool> {
    Ok(
        sqlx::query("SELECT id FROM ports WHERE network_id = $1 AND mac_address = $2 AND id <> $3")
            .bind(network_id.to_string())
            .bind(mac.to_string())
            .bind(port_id.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

pub async fn mac_taken(conn: &mut AnyConnection, network_id: &str, mac: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT id FROM ports WHERE network_id = $1 AND mac_address = $2")
            .bind(network_id.to_string())
            .bind(mac.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

// --- security groups ------------------------------------------------------------------

async fn fill_rules(conn: &mut AnyConnection, groups: &mut [SecurityGroup]) -> Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        index.insert(g.id.clone(), i);
    }
    let rows = if groups.len() == 1 {
        sqlx::query("SELECT doc FROM security_group_rules WHERE security_group_id = $1 ORDER BY created_us, id")
            .bind(groups[0].id.clone())
            .fetch_all(&mut *conn)
            .await?
    } else {
        sqlx::query("SELECT doc FROM security_group_rules ORDER BY created_us, id")
            .fetch_all(&mut *conn)
            .await?
    };
    let defaults = default_group_ids(conn).await?;
    for g in groups.iter_mut() {
        g.is_default = defaults.contains_key(&g.id);
    }
    for r in rows {
        let mut rule: Rule = doc(&r)?;
        if let Some(&i) = index.get(&rule.security_group_id) {
            rule.in_default_group = groups[i].is_default;
            groups[i].rules.push(rule);
        }
    }
    Ok(())
}

/// Default group id → project.
pub async fn default_group_ids(conn: &mut AnyConnection) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for r in sqlx::query("SELECT project_id, security_group_id FROM default_security_groups")
        .fetch_all(&mut *conn)
        .await?
    {
        out.insert(r.try_get("security_group_id")?, r.try_get("project_id")?);
    }
    Ok(out)
}

pub async fn default_group_of(conn: &mut AnyConnection, project: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query("SELECT security_group_id FROM default_security_groups WHERE project_id = $1")
            .bind(project.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get::<String, _>("security_group_id"))
            .transpose()?,
    )
}

/// Records `group_id` as `project`'s default group.
pub async fn set_default_group(
    conn: &mut AnyConnection,
    project: &str,
    group_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO default_security_groups (project_id, security_group_id) VALUES ($1, $2)",
    )
    .bind(project.to_string())
    .bind(group_id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn group(conn: &mut AnyConnection, id: &str) -> Result<Option<SecurityGroup>> {
    let Some(row) = sqlx::query("SELECT doc FROM security_groups WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut g = [doc::<SecurityGroup>(&row)?];
    fill_rules(conn, &mut g).await?;
    let [g] = g;
    Ok(Some(g))
}

pub async fn groups(conn: &mut AnyConnection, who: Who<'_>) -> Result<Vec<SecurityGroup>> {
    let rows = match who {
        Who::All => {
            sqlx::query("SELECT doc FROM security_groups ORDER BY id")
                .fetch_all(&mut *conn)
                .await?
        }
        Who::Project(p) => {
            sqlx::query("SELECT doc FROM security_groups WHERE project_id = $1 ORDER BY id")
                .bind(p.to_string())
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let mut gs = rows
        .iter()
        .map(doc)
        .collect::<Result<Vec<SecurityGroup>>>()?;
    fill_rules(conn, &mut gs).await?;
    Ok(gs)
}

pub async fn put_group(conn: &mut AnyConnection, g: &SecurityGroup, insert: bool) -> Result<()> {
    let text = serde_json::to_string(g)?;
    let sql = if insert {
        "INSERT INTO security_groups (id, project_id, name, created_us, doc) VALUES ($1, $2, $3, $4, $5)"
    } else {
        "UPDATE security_groups SET project_id = $2, name = $3, doc = $5 WHERE id = $1 AND $4 = $4"
    };
    sqlx::query(sql)
        .bind(g.id.clone())
        .bind(g.project_id.clone())
        .bind(g.name.clone())
        .bind(now_us())
        .bind(text)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_group(conn: &mut AnyConnection, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM security_group_rules WHERE security_group_id = $1",
        "DELETE FROM default_security_groups WHERE security_group_id = $1",
        "DELETE FROM security_groups WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn group_in_use(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT port_id FROM port_security_groups WHERE security_group_id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

pub async fn rule(conn: &mut AnyConnection, id: &str) -> Result<Option<Rule>> {
    let Some(mut r) = sqlx::query("SELECT doc FROM security_group_rules WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(doc::<Rule>)
        .transpose()?
    else {
        return Ok(None);
    };
    r.in_default_group = default_group_ids(conn)
        .await?
        .contains_key(&r.security_group_id);
    Ok(Some(r))
}

pub async fn insert_rule(conn: &mut AnyConnection, r: &Rule) -> Result<()> {
    sqlx::query(
        "INSERT INTO security_group_rules (id, security_group_id, project_id, created_us, doc) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(r.id.clone())
    .bind(r.security_group_id.clone())
    .bind(r.project_id.clone())
    .bind(now_us())
    .bind(serde_json::to_string(r)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes a rule's document back (only its description changes).
pub async fn update_rule(conn: &mut AnyConnection, r: &Rule) -> Result<()> {
    sqlx::query("UPDATE security_group_rules SET doc = $2 WHERE id = $1")
        .bind(r.id.clone())
        .bind(serde_json::to_string(r)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_rule(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM security_group_rules WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// --- quotas ---------------------------------------------------------------------------

/// How many `resource` rows `project` owns.
pub async fn count(conn: &mut AnyConnection, resource: &str, project: &str) -> Result<i64> {
    let table = match resource {
        "network" => "networks",
        "subnet" => "subnets",
        "port" => "ports",
        "security_group" => "security_groups",
        "security_group_rule" => "security_group_rules",
        _ => return Ok(0),
    };
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE project_id = $1"
    )))
    .bind(project.to_string())
    .fetch_one(&mut *conn)
    .await?;
    Ok(r.try_get("n")?)
}

pub async fn quota_overrides(
    conn: &mut AnyConnection,
    project: Option<&str>,
) -> Result<Vec<(String, String, i64)>> {
    let rows =
        match project {
            Some(p) => sqlx::query(
                "SELECT project_id, resource, hard_limit FROM network_quotas WHERE project_id = $1",
            )
            .bind(p.to_string())
            .fetch_all(&mut *conn)
            .await?,
            None => sqlx::query(
                "SELECT project_id, resource, hard_limit FROM network_quotas ORDER BY project_id",
            )
            .fetch_all(&mut *conn)
            .await?,
        };
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("project_id")?,
                r.try_get("resource")?,
                r.try_get("hard_limit")?,
            ))
        })
        .collect()
}

pub async fn set_quota(
    conn: &mut AnyConnection,
    project: &str,
    resource: &str,
    limit: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM network_quotas WHERE project_id = $1 AND resource = $2")
        .bind(project.to_string())
        .bind(resource.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO network_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)",
    )
    .bind(project.to_string())
    .bind(resource.to_string())
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn reset_quotas(conn: &mut AnyConnection, project: &str) -> Result<()> {
    sqlx::query("DELETE FROM network_quotas WHERE project_id = $1")
        .bind(project.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
