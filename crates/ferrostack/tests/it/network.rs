//! The network service (Neutron v2.0) over HTTP: the bootstrap network, CRUD and
//! Neutron's errors, isolation between projects, addresses never handed out twice
//! under concurrent requests, quotas, the default security group.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Backend, Server};

async fn net(
    s: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = s
        .client
        .request(method, format!("{}/network/v2.0{path}", s.base))
        .header("X-Auth-Token", token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn assert_neutron_error(got: &(StatusCode, Value), status: StatusCode, kind: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["NeutronError"]["type"], kind, "{}", got.1);
}

/// A project with a user holding `role`; returns (project id, token).
async fn project_token(s: &Server, admin: &str, name: &str, role: &str) -> (String, String) {
    let (pid, _) = s
        .project_user(admin, name, name, &format!("pw-{name}"), role)
        .await;
    let r = s.auth(name, &format!("pw-{name}"), Some(name)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (pid, r.subject.unwrap())
}

async fn create(s: &Server, token: &str, coll: &str, key: &str, body: Value) -> Value {
    let r = net(
        s,
        Method::POST,
        &format!("/{coll}"),
        token,
        Some(json!({ key: body })),
    )
    .await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    r.1[key].clone()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

both_backends!(
    the_bootstrap_private_network_is_shared_and_made_once,
    |mut s: Server| async move {
        let admin = s.admin_token().await;
        let (_, nets) = net(&s, Method::GET, "/networks?name=private", &admin, None).await;
        let nets = nets["networks"].as_array().unwrap().clone();
        assert_eq!(nets.len(), 1, "{nets:?}");
        assert_eq!(nets[0]["shared"], true);
        assert_eq!(nets[0]["status"], "ACTIVE");
        assert_eq!(nets[0]["mtu"], 1500);
        let (_, subnets) = net(
            &s,
            Method::GET,
            "/subnets?name=private-subnet",
            &admin,
            None,
        )
        .await;
        let sub = &subnets["subnets"][0];
        assert_eq!(sub["cidr"], "10.0.0.0/24");
        assert_eq!(sub["gateway_ip"], "10.0.0.1");
        assert_eq!(
            sub["allocation_pools"],
            json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
        );
        assert_eq!(nets[0]["subnets"], json!([sub["id"]]));
        // a project member sees it too, and a restart does not make another
        let (_, member) = project_token(&s, &admin, "netproj", "member").await;
        let (st, seen) = net(&s, Method::GET, "/networks", &member, None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(seen["networks"].as_array().unwrap().len(), 1);
        assert!(seen["networks"][0].get("provider:network_type").is_none());
        assert_eq!(s.stop().code(), Some(0));
        s.spawn();
        let admin = s.admin_token().await;
        let (_, nets) = net(&s, Method::GET, "/networks?name=private", &admin, None).await;
        assert_eq!(nets["networks"].as_array().unwrap().len(), 1);
        assert_eq!(nets["networks"][0]["subnets"].as_array().unwrap().len(), 1);
    }
);

both_backends!(
    networks_subnets_and_ports_round_trip_with_neutron_errors,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let n = create(
            &s,
            &admin,
            "networks",
            "network",
            json!({"name": "n1", "description": "d"}),
        )
        .await;
        let nid = id(&n);
        assert_eq!(n["shared"], false);
        assert_eq!(n["router:external"], false);
        assert_eq!(n["port_security_enabled"], true);
        assert!(n["created_at"].as_str().unwrap().ends_with('Z'));
        // bad input
        let bad = net(
            &s,
            Method::POST,
            "/subnets",
            &admin,
            Some(json!({"subnet": {
            "network_id": nid, "ip_version": 4, "cidr": "10.1.0.0/33"}})),
        )
        .await;
        assert_neutron_error(&bad, StatusCode::BAD_REQUEST, "HTTPBadRequest");
        assert!(
            bad.1["NeutronError"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid input for cidr.")
        );
        let bad = net(
            &s,
            Method::POST,
            "/networks",
            &admin,
            Some(json!({"network": {"bogus": 1}})),
        )
        .await;
        assert_eq!(
            bad.1["NeutronError"]["message"],
            "Unrecognized attribute(s) 'bogus'"
        );
        // subnets: normalised CIDR, default gateway and pool, overlap refused
        let sub = create(&s, &admin, "subnets", "subnet", json!({
            "network_id": nid, "ip_version": 4, "cidr": "10.1.0.7/24",
            "dns_nameservers": ["8.8.8.8"], "host_routes": [{"destination": "10.9.0.0/16", "nexthop": "10.1.0.254"}]})).await;
        assert_eq!(sub["cidr"], "10.1.0.0/24");
        assert_eq!(sub["gateway_ip"], "10.1.0.1");
        assert_eq!(
            sub["allocation_pools"],
            json!([{"start": "10.1.0.2", "end": "10.1.0.254"}])
        );
        let overlap = net(
            &s,
            Method::POST,
            "/subnets",
            &admin,
            Some(json!({"subnet": {
            "network_id": nid, "ip_version": 4, "cidr": "10.1.0.128/25"}})),
        )
        .await;
        assert_neutron_error(&overlap, StatusCode::BAD_REQUEST, "InvalidInput");
        let v6 = create(
            &s,
            &admin,
            "subnets",
            "subnet",
            json!({
            "network_id": nid, "ip_version": 6, "cidr": "fd00:1::/64",
            "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
        )
        .await;
        assert_eq!(v6["gateway_ip"], "fd00:1::1");
        // ports: one IPv4 address and one SLAAC address
        let p = create(
            &s,
            &admin,
            "ports",
            "port",
            json!({"network_id": nid, "name": "p"}),
        )
        .await;
        let ips = p["fixed_ips"].as_array().unwrap();
        assert_eq!(ips.len(), 2, "{p}");
        assert_eq!(ips[0]["ip_address"], "10.1.0.2");
        assert!(
            ips[1]["ip_address"]
                .as_str()
                .unwrap()
                .starts_with("fd00:1::")
        );
        assert!(p["mac_address"].as_str().unwrap().starts_with("fa:16:3e:"));
        assert_eq!(p["status"], "DOWN");
        assert_eq!(p["security_groups"].as_array().unwrap().len(), 1);
        let taken = net(
            &s,
            Method::POST,
            "/ports",
            &admin,
            Some(json!({"port": {
            "network_id": nid, "fixed_ips": [{"ip_address": "10.1.0.2"}]}})),
        )
        .await;
        assert_neutron_error(&taken, StatusCode::CONFLICT, "IpAddressAlreadyAllocated");
        let fixed = create(&s, &admin, "ports", "port", json!({"network_id": nid,
            "fixed_ips": [{"subnet_id": id(&sub), "ip_address": "10.1.0.50"}], "device_id": "dev-1"})).await;
        let (_, by_dev) = net(&s, Method::GET, "/ports?device_id=dev-1", &admin, None).await;
        assert_eq!(by_dev["ports"].as_array().unwrap().len(), 1);
        let (_, by_ip) = net(
            &s,
            Method::GET,
            "/ports?fixed_ips=ip_address%3D10.1.0.50",
            &admin,
            None,
        )
        .await;
        assert_eq!(by_ip["ports"][0]["id"], fixed["id"]);
        // update fixed IPs, then the old address is free again
        let (st, upd) = net(&s, Method::PUT, &format!("/ports/{}", id(&fixed)), &admin, Some(json!({"port": {
            "fixed_ips": [{"subnet_id": id(&sub), "ip_address": "10.1.0.51"}], "name": "renamed"}}))).await;
        assert_eq!(st, StatusCode::OK, "{upd}");
        assert_eq!(upd["port"]["fixed_ips"][0]["ip_address"], "10.1.0.51");
        assert_eq!(upd["port"]["revision_number"], 2);
        create(
            &s,
            &admin,
            "ports",
            "port",
            json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.1.0.50"}]}),
        )
        .await;
        // in use: subnet and network cannot go
        let busy = net(
            &s,
            Method::DELETE,
            &format!("/subnets/{}", id(&sub)),
            &admin,
            None,
        )
        .await;
        assert_neutron_error(&busy, StatusCode::CONFLICT, "SubnetInUse");
        let busy = net(
            &s,
            Method::DELETE,
            &format!("/networks/{nid}"),
            &admin,
            None,
        )
        .await;
        assert_neutron_error(&busy, StatusCode::CONFLICT, "NetworkInUse");
        let (_, ports) = net(
            &s,
            Method::GET,
            &format!("/ports?network_id={nid}"),
            &admin,
            None,
        )
        .await;
        for p in ports["ports"].as_array().unwrap() {
            let (st, _) = net(
                &s,
                Method::DELETE,
                &format!("/ports/{}", id(p)),
                &admin,
                None,
            )
            .await;
            assert_eq!(st, StatusCode::NO_CONTENT);
        }
        let (st, _) = net(
            &s,
            Method::DELETE,
            &format!("/networks/{nid}"),
            &admin,
            None,
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let gone = net(&s, Method::GET, &format!("/networks/{nid}"), &admin, None).await;
        assert_neutron_error(&gone, StatusCode::NOT_FOUND, "NetworkNotFound");
        assert_eq!(
            gone.1["NeutronError"]["message"],
            format!("Network {nid} could not be found.")
        );
        let gone = net(
            &s,
            Method::GET,
            &format!("/subnets/{}", id(&sub)),
            &admin,
            None,
        )
        .await;
        assert_neutron_error(&gone, StatusCode::NOT_FOUND, "SubnetNotFound");
        // pagination links, as openstacksdk follows them
        for i in 0..3 {
            create(
                &s,
                &admin,
                "networks",
                "network",
                json!({"name": format!("pg{i}")}),
            )
            .await;
        }
        let (_, page) = net(&s, Method::GET, "/networks?limit=2", &admin, None).await;
        assert_eq!(page["networks"].as_array().unwrap().len(), 2);
        let next = page["networks_links"][0]["href"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(page["networks_links"][0]["rel"], "next");
        let r: Value = s
            .client
            .get(&next)
            .header("X-Auth-Token", &admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["networks"].as_array().unwrap().len(), 2);
        assert!(
            r.get("networks_links").is_some_and(|l| l
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["rel"] != "next"))
        );
    }
);

both_backends!(
    projects_do_not_see_or_use_each_others_resources,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (pa, a) = project_token(&s, &admin, "proja", "member").await;
        let (_, b) = project_token(&s, &admin, "projb", "member").await;
        let (_, reader) = project_token(&s, &admin, "projr", "reader").await;
        let n = create(&s, &a, "networks", "network", json!({"name": "a-net"})).await;
        assert_eq!(n["project_id"], pa.as_str());
        let sub = create(
            &s,
            &a,
            "subnets",
            "subnet",
            json!({"network_id": id(&n), "ip_version": 4, "cidr": "192.168.5.0/24"}),
        )
        .await;
        let port = create(&s, &a, "ports", "port", json!({"network_id": id(&n)})).await;
        // b sees neither the network nor its subnet nor the port
        let hidden = net(&s, Method::GET, &format!("/networks/{}", id(&n)), &b, None).await;
        assert_neutron_error(&hidden, StatusCode::NOT_FOUND, "NetworkNotFound");
        let hidden = net(&s, Method::GET, &format!("/subnets/{}", id(&sub)), &b, None).await;
        assert_neutron_error(&hidden, StatusCode::NOT_FOUND, "SubnetNotFound");
        let hidden = net(&s, Method::GET, &format!("/ports/{}", id(&port)), &b, None).await;
        assert_neutron_error(&hidden, StatusCode::NOT_FOUND, "PortNotFound");
        let (_, list) = net(&s, Method::GET, "/networks", &b, None).await;
        let names: Vec<&str> = list["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["private"]);
        let (_, ports) = net(&s, Method::GET, "/ports", &b, None).await;
        assert!(ports["ports"].as_array().unwrap().is_empty());
        // b cannot put a port on a's network, nor delete a's things
        let refused = net(
            &s,
            Method::POST,
            "/ports",
            &b,
            Some(json!({"port": {"network_id": id(&n)}})),
        )
        .await;
        assert_neutron_error(&refused, StatusCode::NOT_FOUND, "NetworkNotFound");
        let refused = net(
            &s,
            Method::DELETE,
            &format!("/ports/{}", id(&port)),
            &b,
            None,
        )
        .await;
        assert_neutron_error(&refused, StatusCode::NOT_FOUND, "PortNotFound");
        // b may use the shared network but not change it, nor share its own
        let (_, private) = net(&s, Method::GET, "/networks?name=private", &b, None).await;
        let private_id = id(&private["networks"][0]);
        create(&s, &b, "ports", "port", json!({"network_id": private_id})).await;
        let refused = net(
            &s,
            Method::PUT,
            &format!("/networks/{private_id}"),
            &b,
            Some(json!({"network": {"name": "x"}})),
        )
        .await;
        assert_neutron_error(&refused, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let refused = net(
            &s,
            Method::POST,
            "/networks",
            &b,
            Some(json!({"network": {"name": "s", "shared": true}})),
        )
        .await;
        assert_neutron_error(&refused, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        // a reader reads, but does not write
        let (st, _) = net(&s, Method::GET, "/networks", &reader, None).await;
        assert_eq!(st, StatusCode::OK);
        let refused = net(
            &s,
            Method::POST,
            "/networks",
            &reader,
            Some(json!({"network": {"name": "r"}})),
        )
        .await;
        assert_neutron_error(&refused, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        // the admin sees everything and filters by project
        let (_, all) = net(
            &s,
            Method::GET,
            &format!("/ports?project_id={pa}"),
            &admin,
            None,
        )
        .await;
        assert_eq!(all["ports"].as_array().unwrap().len(), 1);
        assert_eq!(all["ports"][0]["id"], port["id"]);
    }
);

both_backends!(
    concurrent_ports_on_a_small_subnet_never_share_an_address,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let n = create(&s, &admin, "networks", "network", json!({"name": "tiny"})).await;
        let nid = id(&n);
        create(
            &s,
            &admin,
            "subnets",
            "subnet",
            json!({"network_id": nid, "ip_version": 4, "cidr": "172.16.0.0/28"}),
        )
        .await;
        // 13 addresses (.2 - .14) for 40 simultaneous requests
        let mut tasks = Vec::new();
        for i in 0..40 {
            let client = s.client.clone();
            let url = format!("{}/network/v2.0/ports", s.base);
            let token = admin.clone();
            let nid = nid.clone();
            tasks.push(tokio::spawn(async move {
                let r = client
                    .post(url)
                    .header("X-Auth-Token", token)
                    .json(&json!({"port": {"network_id": nid, "name": format!("c{i}")}}))
                    .send()
                    .await
                    .unwrap();
                let st = r.status();
                (st, r.json::<Value>().await.unwrap())
            }));
        }
        let mut ips = Vec::new();
        let mut macs = HashSet::new();
        let mut exhausted = 0;
        for t in tasks {
            let (st, body) = t.await.unwrap();
            match st {
                StatusCode::CREATED => {
                    ips.push(
                        body["port"]["fixed_ips"][0]["ip_address"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                    assert!(macs.insert(body["port"]["mac_address"].as_str().unwrap().to_string()));
                }
                StatusCode::CONFLICT => {
                    assert_eq!(
                        body["NeutronError"]["type"], "IpAddressGenerationFailure",
                        "{body}"
                    );
                    assert_eq!(
                        body["NeutronError"]["message"],
                        format!("No more IP addresses available on network {nid}.")
                    );
                    exhausted += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        let unique: HashSet<&String> = ips.iter().collect();
        assert_eq!(
            unique.len(),
            ips.len(),
            "an address was handed out twice: {ips:?}"
        );
        assert_eq!(ips.len(), 13, "{ips:?}");
        assert_eq!(exhausted, 27);
        // what the database holds agrees
        let (_, ports) = net(
            &s,
            Method::GET,
            &format!("/ports?network_id={nid}"),
            &admin,
            None,
        )
        .await;
        assert_eq!(ports["ports"].as_array().unwrap().len(), 13);
    }
);

both_backends!(
    quotas_limit_creation_and_report_usage,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (pid, member) = project_token(&s, &admin, "quotaproj", "member").await;
        let (st, q) = net(&s, Method::GET, &format!("/quotas/{pid}"), &member, None).await;
        assert_eq!(st, StatusCode::OK, "{q}");
        assert_eq!(q["quota"]["network"], 100);
        assert_eq!(q["quota"]["port"], 500);
        let refused = net(
            &s,
            Method::PUT,
            &format!("/quotas/{pid}"),
            &member,
            Some(json!({"quota": {"network": 1}})),
        )
        .await;
        assert_neutron_error(&refused, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let (st, q) = net(
            &s,
            Method::PUT,
            &format!("/quotas/{pid}"),
            &admin,
            Some(json!({"quota": {"network": 1}})),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{q}");
        assert_eq!(q["quota"]["network"], 1);
        create(&s, &member, "networks", "network", json!({"name": "one"})).await;
        let over = net(
            &s,
            Method::POST,
            "/networks",
            &member,
            Some(json!({"network": {"name": "two"}})),
        )
        .await;
        assert_neutron_error(&over, StatusCode::CONFLICT, "OverQuota");
        assert_eq!(
            over.1["NeutronError"]["message"],
            "Quota exceeded for resources: ['network']."
        );
        let (_, d) = net(
            &s,
            Method::GET,
            &format!("/quotas/{pid}/details"),
            &member,
            None,
        )
        .await;
        assert_eq!(
            d["quota"]["network"],
            json!({"limit": 1, "used": 1, "reserved": 0})
        );
        let (_, list) = net(&s, Method::GET, "/quotas", &admin, None).await;
        assert!(
            list["quotas"]
                .as_array()
                .unwrap()
                .iter()
                .any(|q| q["project_id"] == pid.as_str())
        );
        let (st, _) = net(&s, Method::DELETE, &format!("/quotas/{pid}"), &admin, None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        create(&s, &member, "networks", "network", json!({"name": "two"})).await;
        let (_, d) = net(
            &s,
            Method::GET,
            &format!("/quotas/{pid}/default"),
            &admin,
            None,
        )
        .await;
        assert_eq!(d["quota"]["network"], 100);
    }
);

both_backends!(
    each_project_gets_a_default_security_group,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (pid, member) = project_token(&s, &admin, "sgproj", "member").await;
        let (st, groups) = net(&s, Method::GET, "/security-groups", &member, None).await;
        assert_eq!(st, StatusCode::OK);
        let groups = groups["security_groups"].as_array().unwrap().clone();
        assert_eq!(groups.len(), 1, "{groups:?}");
        let def = &groups[0];
        assert_eq!(def["name"], "default");
        assert_eq!(def["project_id"], pid.as_str());
        let rules = def["security_group_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 4);
        let ingress: Vec<_> = rules
            .iter()
            .filter(|r| r["direction"] == "ingress")
            .collect();
        assert!(ingress.iter().all(|r| r["remote_group_id"] == def["id"]));
        // listing again does not make another
        let (_, again) = net(&s, Method::GET, "/security-groups", &member, None).await;
        assert_eq!(again["security_groups"].as_array().unwrap().len(), 1);
        let refused = net(
            &s,
            Method::DELETE,
            &format!("/security-groups/{}", id(def)),
            &member,
            None,
        )
        .await;
        assert_neutron_error(
            &refused,
            StatusCode::CONFLICT,
            "SecurityGroupCannotRemoveDefault",
        );
        // rules: created, duplicates refused, validation
        let web = create(
            &s,
            &member,
            "security-groups",
            "security_group",
            json!({"name": "web"}),
        )
        .await;
        assert_eq!(web["security_group_rules"].as_array().unwrap().len(), 2);
        let rule = json!({"security_group_id": id(&web), "direction": "ingress", "protocol": "tcp",
                          "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"});
        let r = create(
            &s,
            &member,
            "security-group-rules",
            "security_group_rule",
            rule.clone(),
        )
        .await;
        assert_eq!(r["ethertype"], "IPv4");
        let dup = net(
            &s,
            Method::POST,
            "/security-group-rules",
            &member,
            Some(json!({"security_group_rule": rule})),
        )
        .await;
        assert_neutron_error(&dup, StatusCode::CONFLICT, "SecurityGroupRuleExists");
        let bad = net(
            &s,
            Method::POST,
            "/security-group-rules",
            &member,
            Some(json!({"security_group_rule": {
            "security_group_id": id(&web), "direction": "ingress", "protocol": "tcp",
            "port_range_min": 90, "port_range_max": 80}})),
        )
        .await;
        assert_neutron_error(
            &bad,
            StatusCode::BAD_REQUEST,
            "SecurityGroupInvalidPortRange",
        );
        let bad = net(&s, Method::POST, "/security-group-rules", &member, Some(json!({"security_group_rule": {
            "security_group_id": id(&web), "direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}}))).await;
        assert_neutron_error(
            &bad,
            StatusCode::BAD_REQUEST,
            "SecurityGroupRuleParameterConflict",
        );
        // a group a port uses cannot go
        let (_, private) = net(&s, Method::GET, "/networks?name=private", &member, None).await;
        let port = create(
            &s,
            &member,
            "ports",
            "port",
            json!({"network_id": id(&private["networks"][0]), "security_groups": [id(&web)]}),
        )
        .await;
        let busy = net(
            &s,
            Method::DELETE,
            &format!("/security-groups/{}", id(&web)),
            &member,
            None,
        )
        .await;
        assert_neutron_error(&busy, StatusCode::CONFLICT, "SecurityGroupInUse");
        net(
            &s,
            Method::DELETE,
            &format!("/ports/{}", id(&port)),
            &member,
            None,
        )
        .await;
        let (st, _) = net(
            &s,
            Method::DELETE,
            &format!("/security-groups/{}", id(&web)),
            &member,
            None,
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let gone = net(
            &s,
            Method::GET,
            &format!("/security-group-rules/{}", id(&r)),
            &member,
            None,
        )
        .await;
        assert_neutron_error(&gone, StatusCode::NOT_FOUND, "SecurityGroupRuleNotFound");
    }
);
