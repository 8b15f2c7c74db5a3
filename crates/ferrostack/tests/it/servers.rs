//! Compute (Nova v2.1) servers as a user sees them over HTTP: create (validation,
//! microversions, quotas), list filters and paging, project isolation, metadata,
//! tags, actions, instance actions, delete and injected failures. Servers run on the
//! `fake` hypervisor driver. Flavors are the interim ones ("1" m1.tiny, "2"
//! m1.small, "42" m1.nano, "84" m1.micro).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, Resp, Server, nova_error};
use crate::{both_backends, both_backends_env};

const WAIT: u64 = 30;

/// A create body for `image`, with `extra` fields merged into `server`.
fn server_body(image: &str, name: &str, extra: Value) -> Value {
    let mut s = json!({"name": name, "imageRef": image, "flavorRef": "1"});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            s[k] = v;
        }
    }
    json!({ "server": s })
}

async fn create(s: &Server, token: &str, body: Value, mv: Option<&str>) -> Resp {
    s.compute(Method::POST, "/servers", token, Some(body), mv)
        .await
}

/// Creates a server and returns its id (202 asserted).
async fn boot(s: &Server, token: &str, image: &str, name: &str, extra: Value) -> String {
    let r = create(s, token, server_body(image, name, extra), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.body["server"]["id"].as_str().unwrap().to_string()
}

/// Creates a server and waits for it to be ACTIVE.
async fn boot_active(s: &Server, token: &str, image: &str, name: &str) -> String {
    let id = boot(s, token, image, name, json!({})).await;
    s.wait_server(token, &id, "ACTIVE", None, WAIT).await;
    id
}

async fn action(s: &Server, token: &str, id: &str, body: Value, mv: Option<&str>) -> Resp {
    s.compute(
        Method::POST,
        &format!("/servers/{id}/action"),
        token,
        Some(body),
        mv,
    )
    .await
}

async fn show(s: &Server, token: &str, id: &str, mv: Option<&str>) -> Value {
    let r = s
        .compute(Method::GET, &format!("/servers/{id}"), token, None, mv)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["server"].clone()
}

fn names(list: &Value) -> Vec<String> {
    list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// A project with a `member` user; returns (project id, token).
async fn member(s: &Server, admin: &str, name: &str) -> (String, String) {
    let pw = format!("pw-{name}");
    let (pid, _) = s.project_user(admin, name, name, &pw, "member").await;
    (pid, s.token_for(name, &pw, name).await)
}

async fn make_public(s: &Server, admin: &str, image: &str) {
    let p = s
        .client
        .patch(format!("{}/image/v2/images/{image}", s.base))
        .header("X-Auth-Token", admin)
        .header(
            "Content-Type",
            "application/openstack-images-v2.1-json-patch",
        )
        .body(r#"[{"op": "replace", "path": "/visibility", "value": "public"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(p.status(), StatusCode::OK);
}

both_backends!(
    create_becomes_active_and_the_admin_password_is_returned_once,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "cirros").await;
        let r = create(&s, &admin, server_body(&image, "vm1", json!({})), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let srv = &r.body["server"];
        let id = srv["id"].as_str().unwrap().to_string();
        let pass = srv["adminPass"]
            .as_str()
            .expect("adminPass in the create response");
        assert_eq!(pass.len(), 12, "{pass}");
        assert_eq!(srv["OS-DCF:diskConfig"], "MANUAL");
        assert_eq!(
            srv["links"][0]["href"],
            format!("{}/compute/v2.1/servers/{id}", s.base)
        );
        assert_eq!(srv["links"][0]["rel"], "self");
        assert_eq!(srv["links"][1]["rel"], "bookmark");
        assert_eq!(
            r.headers["location"].to_str().unwrap(),
            format!("{}/compute/v2.1/servers/{id}", s.base)
        );

        let v = s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        assert!(v.get("adminPass").is_none(), "adminPass shown again: {v}");
        assert_eq!(v["name"], "vm1");
        assert_eq!(v["OS-EXT-STS:vm_state"], "active");
        assert_eq!(v["OS-EXT-STS:power_state"], 1);
        assert!(v["OS-SRV-USG:launched_at"].is_string(), "{v}");
        assert!(v["OS-SRV-USG:terminated_at"].is_null());
        assert_eq!(v["image"]["id"], image.as_str());
        assert!(!v["hostId"].as_str().unwrap().is_empty());
        assert!(v["addresses"].is_object(), "{v}");
        assert!(v.get("fault").is_none(), "{v}");
        // admin sees where it runs
        assert!(v["OS-EXT-SRV-ATTR:host"].is_string(), "{v}");
        // the user's own password comes back as given
        let r = create(
            &s,
            &admin,
            server_body(&image, "vm2", json!({"adminPass": "s3cret-pass"})),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        assert_eq!(r.body["server"]["adminPass"], "s3cret-pass");
    }
);

both_backends!(
    responses_carry_the_microversion_and_request_id_headers,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let r = s.compute(Method::GET, "/servers", &admin, None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["openstack-api-version"], "compute 2.1");
        assert_eq!(r.headers["x-openstack-nova-api-version"], "2.1");
        let rid = r.headers["x-openstack-request-id"].to_str().unwrap();
        assert!(rid.starts_with("req-"), "{rid}");
        assert_eq!(r.headers["x-compute-request-id"].to_str().unwrap(), rid);
        let vary = r.headers["vary"].to_str().unwrap();
        assert!(vary.contains("OpenStack-API-Version"), "{vary}");

        let r = s
            .compute(Method::GET, "/servers", &admin, None, Some("2.47"))
            .await;
        assert_eq!(r.headers["openstack-api-version"], "compute 2.47");
        let r = s
            .compute(Method::GET, "/servers", &admin, None, Some("latest"))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let latest = r.headers["openstack-api-version"].to_str().unwrap();
        assert!(latest.starts_with("compute 2."), "{latest}");
        // the legacy header alone works too
        let r = s
            .client
            .get(format!("{}/compute/v2.1/servers", s.base))
            .header("X-Auth-Token", &admin)
            .header("X-OpenStack-Nova-API-Version", "2.19")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["openstack-api-version"], "compute 2.19");

        let r = s
            .compute(Method::GET, "/servers", &admin, None, Some("2.9999"))
            .await;
        let m = nova_error(&r, StatusCode::NOT_ACCEPTABLE);
        assert!(m.contains("2.9999") && m.contains("not supported"), "{m}");
        let r = s
            .compute(Method::GET, "/servers", &admin, None, Some("two.one"))
            .await;
        let m = nova_error(&r, StatusCode::BAD_REQUEST);
        assert!(m.contains("invalid format"), "{m}");
        let r = s
            .compute(Method::GET, "/servers", &admin, None, Some("3.0"))
            .await;
        nova_error(&r, StatusCode::NOT_ACCEPTABLE);
        // no token: 401
        let r = s
            .client
            .get(format!("{}/compute/v2.1/servers", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
);

both_backends!(views_follow_the_microversion, |s: Server| async move {
    let admin = s.admin_token().await;
    let image = s.active_image(&admin, "img").await;
    let r = create(
        &s,
        &admin,
        server_body(
            &image,
            "described",
            json!({"description": "my vm", "networks": "none", "tags": ["blue"]}),
        ),
        Some("2.52"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;

    let v = show(&s, &admin, &id, None).await;
    assert_eq!(v["flavor"]["id"], "1");
    assert_eq!(
        v["flavor"]["links"][0]["href"],
        format!("{}/compute/flavors/1", s.base)
    );
    for absent in ["description", "tags", "locked"] {
        assert!(v.get(absent).is_none(), "{absent} at 2.1: {v}");
    }
    let v = show(&s, &admin, &id, Some("2.46")).await;
    assert_eq!(v["flavor"]["id"], "1");
    let v = show(&s, &admin, &id, Some("2.47")).await;
    assert_eq!(v["flavor"]["original_name"], "m1.tiny");
    assert_eq!(v["flavor"]["ram"], 512);
    assert_eq!(v["flavor"]["vcpus"], 1);
    assert_eq!(v["flavor"]["disk"], 1);
    assert!(v["flavor"].get("id").is_none(), "{v}");
    assert_eq!(show(&s, &admin, &id, Some("2.9")).await["locked"], false);
    assert!(
        show(&s, &admin, &id, Some("2.18"))
            .await
            .get("description")
            .is_none()
    );
    assert_eq!(
        show(&s, &admin, &id, Some("2.19")).await["description"],
        "my vm"
    );
    assert!(
        show(&s, &admin, &id, Some("2.25"))
            .await
            .get("tags")
            .is_none()
    );
    assert_eq!(
        show(&s, &admin, &id, Some("2.26")).await["tags"],
        json!(["blue"])
    );
    // a server without ports has no security groups in its view (Nova)
    assert!(v.get("security_groups").is_none(), "{v}");
    // description at create is refused below 2.19
    let r = create(
        &s,
        &admin,
        server_body(&image, "d", json!({"description": "x"})),
        Some("2.18"),
    )
    .await;
    let m = nova_error(&r, StatusCode::BAD_REQUEST);
    assert!(m.contains("'description' was unexpected"), "{m}");
});

both_backends!(
    networks_are_required_from_2_37_and_personality_ends_at_2_57,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let r = create(
            &s,
            &admin,
            server_body(&image, "n", json!({})),
            Some("2.37"),
        )
        .await;
        let m = nova_error(&r, StatusCode::BAD_REQUEST);
        assert!(m.contains("'networks' is a required property"), "{m}");
        for net in [json!("none"), json!("auto")] {
            let r = create(
                &s,
                &admin,
                server_body(&image, "n", json!({ "networks": net })),
                Some("2.37"),
            )
            .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{net}: {}", r.body);
        }
        // "none"/"auto" are 2.37 words
        let r = create(
            &s,
            &admin,
            server_body(&image, "n", json!({"networks": "none"})),
            Some("2.36"),
        )
        .await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        // without networks below 2.37: fine
        let r = create(
            &s,
            &admin,
            server_body(&image, "n", json!({})),
            Some("2.36"),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

        let files = json!([{"path": "/etc/motd", "contents": "aGVsbG8gd29ybGQK"}]);
        let r = create(
            &s,
            &admin,
            server_body(
                &image,
                "p",
                json!({"networks": "none", "personality": files.clone()}),
            ),
            Some("2.56"),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        let r = create(
            &s,
            &admin,
            server_body(
                &image,
                "p",
                json!({"networks": "none", "personality": files.clone()}),
            ),
            Some("2.57"),
        )
        .await;
        let m = nova_error(&r, StatusCode::BAD_REQUEST);
        assert!(m.contains("'personality' was unexpected"), "{m}");
        // personality that is not base64
        let r = create(
            &s,
            &admin,
            server_body(
                &image,
                "p",
                json!({"networks": "none", "personality": [{"path": "/a", "contents": "not base64!"}]}),
            ),
            Some("2.56"),
        )
        .await;
        nova_error(&r, StatusCode::BAD_REQUEST);
    }
);

both_backends!(
    invalid_create_requests_are_400_with_novas_messages,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let missing = "11111111-2222-4333-8444-555555555555";
        let cases: Vec<(Value, &str)> = vec![
            (json!({"name": " lead"}), "does not match the name pattern"),
            (json!({"name": ""}), "is too short"),
            (json!({"name": "x".repeat(256)}), "is too long"),
            (json!({"name": 42}), "is not of type 'string'"),
            (
                json!({"flavorRef": "999"}),
                "Flavor 999 could not be found.",
            ),
            (json!({"imageRef": missing}), "could not be found."),
            (
                json!({"imageRef": "not-a-uuid"}),
                "Invalid imageRef provided.",
            ),
            (json!({"user_data": "!!not base64!!"}), "is not a 'base64'"),
            (json!({"user_data": "QUFB".repeat(16384)}), "is too long"),
            (json!({"bogus_field": 1}), "'bogus_field' was unexpected"),
            (
                json!({"block_device_mapping_v2": [{"source_type": "image", "destination_type": "volume",
                    "uuid": image, "boot_index": 0, "volume_size": 1}]}),
                "volume",
            ),
            (
                json!({"min_count": 3, "max_count": 2}),
                "min_count must be <= max_count",
            ),
            (json!({"min_count": 0}), "less than the minimum of 1"),
            (json!({"metadata": {"k": 1}}), "is not of type 'string'"),
            (json!({"metadata": {"k": "v".repeat(256)}}), "is too long"),
            (json!({"accessIPv4": "not-an-ip"}), "ipv4"),
            (
                json!({"key_name": "no-such-key"}),
                "Invalid key_name provided.",
            ),
        ];
        for (extra, want) in cases {
            let r = create(&s, &admin, server_body(&image, "bad", extra.clone()), None).await;
            let m = nova_error(&r, StatusCode::BAD_REQUEST);
            assert!(m.contains(want), "{extra}: {m:?} does not contain {want:?}");
        }
        // the image's name in the message is the one asked for
        let r = create(
            &s,
            &admin,
            server_body(&image, "bad", json!({"imageRef": missing})),
            None,
        )
        .await;
        assert_eq!(
            nova_error(&r, StatusCode::BAD_REQUEST),
            format!("Image {missing} could not be found.")
        );
        // missing name / flavorRef / server
        let r = create(
            &s,
            &admin,
            json!({"server": {"imageRef": image, "flavorRef": "1"}}),
            None,
        )
        .await;
        assert!(nova_error(&r, StatusCode::BAD_REQUEST).contains("'name' is a required property"));
        let r = create(
            &s,
            &admin,
            json!({"server": {"imageRef": image, "name": "x"}}),
            None,
        )
        .await;
        assert!(
            nova_error(&r, StatusCode::BAD_REQUEST).contains("'flavorRef' is a required property")
        );
        let r = create(&s, &admin, json!({"nope": {}}), None).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        // malformed JSON
        let r = s
            .client
            .post(format!("{}/compute/v2.1/servers", s.base))
            .header("X-Auth-Token", &admin)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        // a booting image that is not active yet
        let q = s
            .glance(
                Method::POST,
                "/images",
                &admin,
                Some(json!({"name": "queued", "disk_format": "raw", "container_format": "bare"})),
            )
            .await;
        let qid = q.body["id"].as_str().unwrap();
        let r = create(&s, &admin, server_body(qid, "bad", json!({})), None).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        // nothing was made
        let l = s.compute(Method::GET, "/servers", &admin, None, None).await;
        assert_eq!(l.body["servers"], json!([]), "{}", l.body);
    }
);

both_backends!(
    injected_file_and_metadata_quotas_are_403_with_novas_messages,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let meta = |n: usize| -> Value {
            Value::Object(
                (0..n)
                    .map(|i| (format!("k{i}"), Value::String("v".into())))
                    .collect(),
            )
        };
        let file = |path: String, contents: String| json!({"path": path, "contents": contents});
        let over: Vec<(Value, &str)> = vec![
            (
                json!({"metadata": meta(129)}),
                "Maximum number of metadata items exceeds 128",
            ),
            (
                json!({"personality": (0..6).map(|i| file(format!("/f{i}"), "QQ==".into())).collect::<Vec<_>>()}),
                "Personality file limit exceeded",
            ),
            (
                json!({"personality": [file(format!("/{}", "p".repeat(255)), "QQ==".into())]}),
                "Personality file path exceeds maximum 255",
            ),
            (
                // measured on the base64 text, as Nova does: 10241 characters
                json!({"personality": [file("/big".into(), format!("{}\n", "A".repeat(10240)))]}),
                "Personality file content exceeds maximum 10240",
            ),
            (
                json!({"personality": [file("/big".into(), "A".repeat(10244))]}),
                "Personality file content exceeds maximum 10240",
            ),
        ];
        for (extra, want) in over {
            let r = create(&s, &admin, server_body(&image, "q", extra), None).await;
            assert_eq!(nova_error(&r, StatusCode::FORBIDDEN), want);
        }
        let l = s.compute(Method::GET, "/servers", &admin, None, None).await;
        assert_eq!(l.body["servers"], json!([]), "{}", l.body);

        // right at the limits: accepted
        let at: Vec<Value> = vec![
            json!({"metadata": meta(128)}),
            json!({"personality": (0..5).map(|i| file(format!("/f{i}"), "QQ==".into())).collect::<Vec<_>>()}),
            json!({"personality": [file(format!("/{}", "p".repeat(254)), "QQ==".into())]}),
            json!({"personality": [file("/big".into(), "A".repeat(10240))]}),
        ];
        for extra in at {
            let r = create(&s, &admin, server_body(&image, "q", extra.clone()), None).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        }
    }
);

both_backends_env!(
    the_instances_quota_is_403_and_counts_deleted_servers_out,
    &[("FERROSTACK_QUOTA__INSTANCES", "2")],
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let a = boot(&s, &admin, &image, "a", json!({})).await;
        boot(&s, &admin, &image, "b", json!({})).await;
        let r = create(&s, &admin, server_body(&image, "c", json!({})), None).await;
        assert_eq!(
            nova_error(&r, StatusCode::FORBIDDEN),
            "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"
        );
        // a multi-create that cannot reach its minimum
        let r = create(
            &s,
            &admin,
            server_body(&image, "m", json!({"min_count": 2, "max_count": 3})),
            None,
        )
        .await;
        assert_eq!(
            nova_error(&r, StatusCode::FORBIDDEN),
            "Quota exceeded for instances: Requested 2, but already used 2 of 2 instances"
        );
        // deleting frees the quota (counted, never leaked)
        s.wait_server(&admin, &a, "ACTIVE", None, WAIT).await;
        let d = s
            .compute(Method::DELETE, &format!("/servers/{a}"), &admin, None, None)
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        s.wait_server(&admin, &a, "DELETED", None, WAIT).await;
        // Nova builds as many as fit between min_count and max_count
        let r = create(
            &s,
            &admin,
            server_body(&image, "m", json!({"min_count": 1, "max_count": 5})),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let l = s
            .compute(Method::GET, "/servers?name=^m", &admin, None, None)
            .await;
        assert_eq!(names(&l.body).len(), 1, "{}", l.body);
        let l = s.compute(Method::GET, "/servers", &admin, None, None).await;
        assert_eq!(ids(&l.body).len(), 2, "{}", l.body);
    }
);

both_backends!(
    multi_create_makes_between_min_and_max_servers_and_can_answer_a_reservation_id,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let r = create(
            &s,
            &admin,
            server_body(&image, "web", json!({"min_count": 2, "max_count": 3})),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        assert!(r.body["server"]["adminPass"].is_string());
        let l = s
            .compute(
                Method::GET,
                "/servers/detail?name=^web",
                &admin,
                None,
                Some("2.3"),
            )
            .await;
        let mut n = names(&l.body);
        n.sort();
        assert_eq!(n, vec!["web-1", "web-2", "web-3"]);
        let resv: Vec<&Value> = l.body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["OS-EXT-SRV-ATTR:reservation_id"])
            .collect();
        assert!(resv.iter().all(|r| *r == resv[0]), "{resv:?}");
        let mut idx: Vec<i64> = l.body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["OS-EXT-SRV-ATTR:launch_index"].as_i64().unwrap())
            .collect();
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2]);

        let r = create(
            &s,
            &admin,
            server_body(
                &image,
                "batch",
                json!({"max_count": 2, "return_reservation_id": true}),
            ),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let obj = r.body.as_object().unwrap();
        assert_eq!(obj.len(), 1, "only the reservation id: {}", r.body);
        let rid = r.body["reservation_id"].as_str().unwrap();
        assert!(rid.starts_with("r-"), "{rid}");
        let l = s
            .compute(
                Method::GET,
                &format!("/servers?reservation_id={rid}"),
                &admin,
                None,
                None,
            )
            .await;
        let mut n = names(&l.body);
        n.sort();
        assert_eq!(n, vec!["batch-1", "batch-2"]);
        // a single server keeps its name
        boot(&s, &admin, &image, "solo", json!({"max_count": 1})).await;
        let l = s
            .compute(Method::GET, "/servers?name=^solo", &admin, None, None)
            .await;
        assert_eq!(names(&l.body), vec!["solo"]);
    }
);

/// Follows `servers_links` from `first` until the end; returns every id seen.
async fn walk(s: &Server, token: &str, first: &str, mv: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut r = s.compute(Method::GET, first, token, None, mv).await;
    let mut pages = 0;
    loop {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        out.extend(ids(&r.body));
        pages += 1;
        assert!(pages < 50, "paging does not end");
        match r.body["servers_links"][0]["href"].as_str() {
            Some(next) => {
                assert_eq!(r.body["servers_links"][0]["rel"], "next");
                assert!(next.contains("marker="), "{next}");
                r = s.get_abs(next, token, mv).await;
            }
            None => break,
        }
    }
    out
}

both_backends!(
    lists_filter_sort_and_page_with_next_links,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let r = create(
            &s,
            &admin,
            server_body(&image, "page", json!({"min_count": 5, "max_count": 5})),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let other = boot(&s, &admin, &image, "other", json!({})).await;
        let zeta = boot(&s, &admin, &image, "zeta", json!({})).await;
        let all = s.compute(Method::GET, "/servers", &admin, None, None).await;
        assert_eq!(ids(&all.body).len(), 7);
        for id in ids(&all.body) {
            s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        }
        // the summary view is id, name, links only
        let first = &all.body["servers"][0];
        let mut keys: Vec<&String> = first.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, vec!["id", "links", "name"]);

        // name is a regular expression
        let l = s
            .compute(Method::GET, "/servers?name=^page-[12]$", &admin, None, None)
            .await;
        let mut n = names(&l.body);
        n.sort();
        assert_eq!(n, vec!["page-1", "page-2"]);
        let l = s
            .compute(Method::GET, "/servers?name=eta", &admin, None, None)
            .await;
        assert_eq!(names(&l.body), vec!["zeta"]);

        // status
        let st = action(&s, &admin, &other, json!({"os-stop": null}), None).await;
        assert_eq!(st.status, StatusCode::ACCEPTED, "{}", st.body);
        let stopped = s.wait_server(&admin, &other, "SHUTOFF", None, WAIT).await;
        let l = s
            .compute(
                Method::GET,
                "/servers/detail?status=SHUTOFF",
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(ids(&l.body), vec![other.clone()]);
        let l = s
            .compute(
                Method::GET,
                "/servers/detail?status=ACTIVE",
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(ids(&l.body).len(), 6);
        assert!(
            l.body["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v["status"] == "ACTIVE")
        );
        let l = s
            .compute(
                Method::GET,
                "/servers?status=NOPE",
                &admin,
                None,
                Some("2.38"),
            )
            .await;
        nova_error(&l, StatusCode::BAD_REQUEST);

        // changes-since: only what changed at or after the time
        let since = stopped["updated"].as_str().unwrap().to_string();
        let l = s
            .compute(
                Method::GET,
                &format!("/servers?changes-since={since}"),
                &admin,
                None,
                None,
            )
            .await;
        assert!(ids(&l.body).contains(&other), "{}", l.body);
        let l = s
            .compute(
                Method::GET,
                "/servers?changes-since=2999-01-01T00:00:00Z",
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(ids(&l.body), Vec::<String>::new());
        let l = s
            .compute(
                Method::GET,
                "/servers?changes-since=yesterday",
                &admin,
                None,
                None,
            )
            .await;
        nova_error(&l, StatusCode::BAD_REQUEST);

        // tags (2.26)
        for id in [&other, &zeta] {
            let t = s
                .compute(
                    Method::PUT,
                    &format!("/servers/{id}/tags"),
                    &admin,
                    Some(json!({"tags": ["red", id.as_str()]})),
                    Some("2.26"),
                )
                .await;
            assert_eq!(t.status, StatusCode::OK, "{}", t.body);
        }
        let l = s
            .compute(Method::GET, "/servers?tags=red", &admin, None, Some("2.26"))
            .await;
        let mut got = ids(&l.body);
        got.sort();
        let mut want = vec![other.clone(), zeta.clone()];
        want.sort();
        assert_eq!(got, want);
        let l = s
            .compute(
                Method::GET,
                &format!("/servers?tags=red,{zeta}"),
                &admin,
                None,
                Some("2.26"),
            )
            .await;
        assert_eq!(ids(&l.body), vec![zeta.clone()]);
        let l = s
            .compute(
                Method::GET,
                "/servers?not-tags=red",
                &admin,
                None,
                Some("2.26"),
            )
            .await;
        assert_eq!(ids(&l.body).len(), 5);
        let l = s
            .compute(
                Method::GET,
                &format!("/servers?tags-any={other},{zeta}"),
                &admin,
                None,
                Some("2.26"),
            )
            .await;
        assert_eq!(ids(&l.body).len(), 2);
        // below 2.26 the tag filters are not known: ignored
        let l = s
            .compute(Method::GET, "/servers?tags=red", &admin, None, Some("2.25"))
            .await;
        assert_eq!(ids(&l.body).len(), 7);

        // sort
        let l = s
            .compute(
                Method::GET,
                "/servers?sort_key=name&sort_dir=asc",
                &admin,
                None,
                None,
            )
            .await;
        let n = names(&l.body);
        let mut sorted = n.clone();
        sorted.sort();
        assert_eq!(n, sorted);
        let l = s
            .compute(
                Method::GET,
                "/servers?sort_key=name&sort_dir=desc",
                &admin,
                None,
                None,
            )
            .await;
        let mut rev = sorted.clone();
        rev.reverse();
        assert_eq!(names(&l.body), rev);
        let l = s
            .compute(
                Method::GET,
                "/servers?sort_key=nonsense",
                &admin,
                None,
                None,
            )
            .await;
        nova_error(&l, StatusCode::BAD_REQUEST);
        let l = s
            .compute(
                Method::GET,
                "/servers?sort_key=name&sort_dir=sideways",
                &admin,
                None,
                None,
            )
            .await;
        nova_error(&l, StatusCode::BAD_REQUEST);

        // paging: default order and a sorted order, each id exactly once
        let full = ids(&all.body);
        let l = s
            .compute(Method::GET, "/servers?limit=3", &admin, None, None)
            .await;
        assert_eq!(ids(&l.body), full[..3].to_vec());
        let next = l.body["servers_links"][0]["href"].as_str().unwrap();
        assert!(
            next.starts_with(&format!("{}/compute/v2.1/servers?", s.base)),
            "{next}"
        );
        assert!(next.contains("limit=3"), "{next}");
        assert!(next.contains(&format!("marker={}", full[2])), "{next}");
        assert_eq!(walk(&s, &admin, "/servers?limit=3", None).await, full);
        assert_eq!(
            walk(&s, &admin, "/servers/detail?limit=2", None).await,
            full
        );
        let by_name = ids(&l_sorted(&s, &admin).await);
        assert_eq!(
            walk(
                &s,
                &admin,
                "/servers?sort_key=name&sort_dir=asc&limit=2",
                None
            )
            .await,
            by_name
        );
        // a filtered walk keeps its filter
        let pages = walk(&s, &admin, "/servers?name=^page&limit=2", None).await;
        assert_eq!(pages.len(), 5);
        // a page that ends exactly at the end has no next link... or one to an empty page
        let l = s
            .compute(Method::GET, "/servers?limit=7", &admin, None, None)
            .await;
        assert_eq!(ids(&l.body).len(), 7);
        if let Some(next) = l.body["servers_links"][0]["href"].as_str() {
            let r = s.get_abs(next, &admin, None).await;
            assert_eq!(ids(&r.body), Vec::<String>::new());
        }
        let l = s
            .compute(
                Method::GET,
                "/servers?marker=00000000-0000-4000-8000-000000000000",
                &admin,
                None,
                None,
            )
            .await;
        let m = nova_error(&l, StatusCode::BAD_REQUEST);
        assert!(m.contains("marker"), "{m}");
        let l = s
            .compute(Method::GET, "/servers?limit=-1", &admin, None, None)
            .await;
        nova_error(&l, StatusCode::BAD_REQUEST);
        let l = s
            .compute(Method::GET, "/servers?limit=abc", &admin, None, None)
            .await;
        nova_error(&l, StatusCode::BAD_REQUEST);
    }
);

async fn l_sorted(s: &Server, token: &str) -> Value {
    s.compute(
        Method::GET,
        "/servers?sort_key=name&sort_dir=asc",
        token,
        None,
        None,
    )
    .await
    .body
}

both_backends!(
    another_project_cannot_see_or_touch_a_server,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        // public so the other project may boot it too
        make_public(&s, &admin, &image).await;
        let (_, alice) = member(&s, &admin, "alice").await;
        let (bob_project, bob) = member(&s, &admin, "bob").await;
        let mine = boot_active(&s, &alice, &image, "alice-vm").await;
        let theirs = boot_active(&s, &bob, &image, "bob-vm").await;

        // bob: 404 on everything of alice's
        for (m, path, body) in [
            (Method::GET, format!("/servers/{mine}"), None),
            (
                Method::PUT,
                format!("/servers/{mine}"),
                Some(json!({"server": {"name": "stolen"}})),
            ),
            (Method::DELETE, format!("/servers/{mine}"), None),
            (
                Method::POST,
                format!("/servers/{mine}/action"),
                Some(json!({"os-stop": null})),
            ),
            (Method::GET, format!("/servers/{mine}/metadata"), None),
            (
                Method::POST,
                format!("/servers/{mine}/metadata"),
                Some(json!({"metadata": {"a": "b"}})),
            ),
            (
                Method::GET,
                format!("/servers/{mine}/os-instance-actions"),
                None,
            ),
            (Method::GET, format!("/servers/{mine}/ips"), None),
            (
                Method::GET,
                format!("/servers/{mine}/os-server-password"),
                None,
            ),
        ] {
            let r = s.compute(m.clone(), &path, &bob, body, None).await;
            nova_error(&r, StatusCode::NOT_FOUND);
        }
        let r = s
            .compute(
                Method::GET,
                &format!("/servers/{mine}/tags"),
                &bob,
                None,
                Some("2.26"),
            )
            .await;
        nova_error(&r, StatusCode::NOT_FOUND);
        // lists show only one's own
        let l = s
            .compute(Method::GET, "/servers/detail", &bob, None, None)
            .await;
        assert_eq!(ids(&l.body), vec![theirs.clone()]);
        let l = s.compute(Method::GET, "/servers", &alice, None, None).await;
        assert_eq!(ids(&l.body), vec![mine.clone()]);
        // a non-admin may not list all projects, nor filter by one
        for q in ["all_tenants=1", "all_tenants=true", "all_tenants"] {
            let r = s
                .compute(Method::GET, &format!("/servers?{q}"), &bob, None, None)
                .await;
            nova_error(&r, StatusCode::FORBIDDEN);
        }
        let r = s
            .compute(
                Method::GET,
                &format!("/servers?project_id={bob_project}"),
                &alice,
                None,
                None,
            )
            .await;
        assert_eq!(ids(&r.body), vec![mine.clone()], "{}", r.body);
        // a non-admin's marker from another project is not found
        let r = s
            .compute(
                Method::GET,
                &format!("/servers?marker={mine}"),
                &bob,
                None,
                None,
            )
            .await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        // the admin sees both with all_tenants, and one project with project_id
        let l = s
            .compute(Method::GET, "/servers?all_tenants=1", &admin, None, None)
            .await;
        let mut got = ids(&l.body);
        got.sort();
        let mut want = vec![mine.clone(), theirs.clone()];
        want.sort();
        assert_eq!(got, want);
        let l = s
            .compute(
                Method::GET,
                &format!("/servers?all_tenants=1&project_id={bob_project}"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(ids(&l.body), vec![theirs.clone()]);
        // ... but not in its own project's default list
        let l = s.compute(Method::GET, "/servers", &admin, None, None).await;
        assert_eq!(ids(&l.body), Vec::<String>::new());
        // a non-admin view has no host attributes
        let v = show(&s, &alice, &mine, Some("2.3")).await;
        assert!(v.get("OS-EXT-SRV-ATTR:host").is_none(), "{v}");
        // alice's server is untouched
        let v = show(&s, &alice, &mine, None).await;
        assert_eq!(v["name"], "alice-vm");
        assert_eq!(v["status"], "ACTIVE");
    }
);

both_backends!(
    a_reader_cannot_create_or_change_servers,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        make_public(&s, &admin, &image).await;
        s.project_user(&admin, "ro", "ro", "pw-ro", "reader").await;
        let reader = s.token_for("ro", "pw-ro", "ro").await;
        let r = create(&s, &reader, server_body(&image, "x", json!({})), None).await;
        nova_error(&r, StatusCode::FORBIDDEN);
        let l = s
            .compute(Method::GET, "/servers", &reader, None, None)
            .await;
        assert_eq!(l.status, StatusCode::OK, "{}", l.body);
    }
);

both_backends!(
    update_changes_name_and_description,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot_active(&s, &admin, &image, "before").await;
        let r = s
            .compute(
                Method::PUT,
                &format!("/servers/{id}"),
                &admin,
                Some(json!({"server": {"name": "after", "description": "now described"}})),
                Some("2.19"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["server"]["name"], "after");
        assert_eq!(r.body["server"]["description"], "now described");
        let v = show(&s, &admin, &id, Some("2.19")).await;
        assert_eq!(v["name"], "after");
        assert_eq!(v["description"], "now described");
        // null clears the description
        let r = s
            .compute(
                Method::PUT,
                &format!("/servers/{id}"),
                &admin,
                Some(json!({"server": {"description": null}})),
                Some("2.19"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(show(&s, &admin, &id, Some("2.19")).await["description"].is_null());
        // description is unknown before 2.19; bad names are 400
        for (body, mv) in [
            (json!({"server": {"description": "x"}}), "2.18"),
            (json!({"server": {"name": ""}}), "2.19"),
            (json!({"server": {"name": " x "}}), "2.19"),
            (json!({"server": {"bogus": 1}}), "2.19"),
            (json!({"name": "not wrapped"}), "2.19"),
        ] {
            let r = s
                .compute(
                    Method::PUT,
                    &format!("/servers/{id}"),
                    &admin,
                    Some(body.clone()),
                    Some(mv),
                )
                .await;
            nova_error(&r, StatusCode::BAD_REQUEST);
        }
        assert_eq!(show(&s, &admin, &id, None).await["name"], "after");
        let r = s
            .compute(
                Method::PUT,
                "/servers/00000000-0000-4000-8000-000000000000",
                &admin,
                Some(json!({"server": {"name": "x"}})),
                None,
            )
            .await;
        nova_error(&r, StatusCode::NOT_FOUND);
    }
);

both_backends!(
    metadata_api_merges_replaces_and_edits_items,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot(&s, &admin, &image, "md", json!({"metadata": {"a": "1"}})).await;
        // (edits while the build is in flight: see user_edits_during_a_build_are_kept)
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        let m = |path: &str| format!("/servers/{id}/metadata{path}");
        let r = s.compute(Method::GET, &m(""), &admin, None, None).await;
        assert_eq!(r.body, json!({"metadata": {"a": "1"}}));
        let r = s
            .compute(
                Method::POST,
                &m(""),
                &admin,
                Some(json!({"metadata": {"b": "2", "a": "one"}})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, json!({"metadata": {"a": "one", "b": "2"}}));
        let r = s
            .compute(
                Method::PUT,
                &m(""),
                &admin,
                Some(json!({"metadata": {"c": "3"}})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, json!({"metadata": {"c": "3"}}));
        assert_eq!(
            show(&s, &admin, &id, None).await["metadata"],
            json!({"c": "3"})
        );

        let r = s.compute(Method::GET, &m("/c"), &admin, None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, json!({"meta": {"c": "3"}}));
        let r = s
            .compute(Method::GET, &m("/nope"), &admin, None, None)
            .await;
        nova_error(&r, StatusCode::NOT_FOUND);
        let r = s
            .compute(
                Method::PUT,
                &m("/d"),
                &admin,
                Some(json!({"meta": {"d": "4"}})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, json!({"meta": {"d": "4"}}));
        let r = s
            .compute(
                Method::PUT,
                &m("/d"),
                &admin,
                Some(json!({"meta": {"e": "4"}})),
                None,
            )
            .await;
        assert_eq!(
            nova_error(&r, StatusCode::BAD_REQUEST),
            "Request body and URI mismatch"
        );
        let r = s
            .compute(
                Method::PUT,
                &m("/d"),
                &admin,
                Some(json!({"meta": {"d": "4", "e": "5"}})),
                None,
            )
            .await;
        assert_eq!(
            nova_error(&r, StatusCode::BAD_REQUEST),
            "Request body contains too many items"
        );
        let r = s
            .compute(Method::DELETE, &m("/d"), &admin, None, None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = s
            .compute(Method::DELETE, &m("/d"), &admin, None, None)
            .await;
        nova_error(&r, StatusCode::NOT_FOUND);
        // invalid keys and values
        for body in [
            json!({"metadata": {"bad/key": "v"}}),
            json!({"metadata": {"k": 5}}),
            json!({"metadata": ["k"]}),
            json!({"meta": {"k": "v"}}),
        ] {
            let r = s
                .compute(Method::POST, &m(""), &admin, Some(body.clone()), None)
                .await;
            nova_error(&r, StatusCode::BAD_REQUEST);
        }
        // the item count quota (128) holds for merges and replaces
        let many: serde_json::Map<String, Value> = (0..128)
            .map(|i| (format!("k{i}"), Value::String("v".into())))
            .collect();
        let r = s
            .compute(
                Method::POST,
                &m(""),
                &admin,
                Some(json!({ "metadata": many.clone() })),
                None,
            )
            .await;
        assert_eq!(
            nova_error(&r, StatusCode::FORBIDDEN),
            "Maximum number of metadata items exceeds 128"
        );
        let r = s
            .compute(
                Method::PUT,
                &m(""),
                &admin,
                Some(json!({ "metadata": many.clone() })),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "128 items fit: {}", r.body);
        let r = s
            .compute(
                Method::PUT,
                &m("/one-more"),
                &admin,
                Some(json!({"meta": {"one-more": "x"}})),
                None,
            )
            .await;
        nova_error(&r, StatusCode::FORBIDDEN);
        let r = s
            .compute(
                Method::GET,
                "/servers/00000000-0000-4000-8000-000000000000/metadata",
                &admin,
                None,
                None,
            )
            .await;
        nova_error(&r, StatusCode::NOT_FOUND);
    }
);

both_backends!(tags_api_from_2_26, |s: Server| async move {
    let admin = s.admin_token().await;
    let image = s.active_image(&admin, "img").await;
    let id = boot_active(&s, &admin, &image, "tagged").await;
    let t = |path: &str| format!("/servers/{id}/tags{path}");
    let v = Some("2.26");
    // not there before 2.26
    let r = s
        .compute(Method::GET, &t(""), &admin, None, Some("2.25"))
        .await;
    nova_error(&r, StatusCode::NOT_FOUND);
    let r = s.compute(Method::PUT, &t("/a"), &admin, None, None).await;
    nova_error(&r, StatusCode::NOT_FOUND);

    let r = s.compute(Method::GET, &t(""), &admin, None, v).await;
    assert_eq!(r.body, json!({"tags": []}));
    let r = s
        .compute(
            Method::PUT,
            &t(""),
            &admin,
            Some(json!({"tags": ["b", "a", "b"]})),
            v,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut got: Vec<String> = serde_json::from_value(r.body["tags"].clone()).unwrap();
    got.sort();
    assert_eq!(got, vec!["a", "b"]);
    let r = s.compute(Method::PUT, &t("/c"), &admin, None, v).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/servers/{id}/tags/c"))
    );
    let r = s.compute(Method::PUT, &t("/c"), &admin, None, v).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "adding again");
    let r = s.compute(Method::GET, &t("/c"), &admin, None, v).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s.compute(Method::GET, &t("/zz"), &admin, None, v).await;
    nova_error(&r, StatusCode::NOT_FOUND);
    let r = s.compute(Method::DELETE, &t("/c"), &admin, None, v).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s.compute(Method::DELETE, &t("/c"), &admin, None, v).await;
    nova_error(&r, StatusCode::NOT_FOUND);
    let mut shown: Vec<String> =
        serde_json::from_value(show(&s, &admin, &id, v).await["tags"].clone()).unwrap();
    shown.sort();
    assert_eq!(shown, vec!["a", "b"]);
    // invalid tags
    for body in [
        json!({"tags": ["has/slash"]}),
        json!({"tags": ["has,comma"]}),
        json!({"tags": ["x".repeat(61)]}),
        json!({"tags": (0..51).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
        json!({"tags": "a"}),
    ] {
        let r = s
            .compute(Method::PUT, &t(""), &admin, Some(body.clone()), v)
            .await;
        nova_error(&r, StatusCode::BAD_REQUEST);
    }
    let r = s.compute(Method::DELETE, &t(""), &admin, None, v).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s.compute(Method::GET, &t(""), &admin, None, v).await;
    assert_eq!(r.body, json!({"tags": []}));
});

both_backends!(
    power_actions_move_the_server_and_wrong_states_are_409,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot_active(&s, &admin, &image, "power").await;
        let go = |body: Value| {
            let s = &s;
            let admin = admin.clone();
            let id = id.clone();
            async move { action(s, &admin, &id, body, None).await }
        };
        let conflict = |r: Resp, what: &str| {
            let m = nova_error(&r, StatusCode::CONFLICT);
            assert!(m.contains(&format!("Cannot '{what}'")), "{m}");
        };
        // ACTIVE: start, unpause, resume, confirm/revert are conflicts
        conflict(go(json!({"os-start": null})).await, "start");
        conflict(go(json!({"unpause": null})).await, "unpause");
        conflict(go(json!({"resume": null})).await, "resume");
        conflict(go(json!({"confirmResize": null})).await, "confirmResize");
        conflict(go(json!({"revertResize": null})).await, "revertResize");

        assert_eq!(
            go(json!({"os-stop": null})).await.status,
            StatusCode::ACCEPTED
        );
        let v = s.wait_server(&admin, &id, "SHUTOFF", None, WAIT).await;
        assert_eq!(v["OS-EXT-STS:power_state"], 4);
        assert_eq!(v["OS-EXT-STS:vm_state"], "stopped");
        conflict(go(json!({"os-stop": null})).await, "stop");
        conflict(go(json!({"pause": null})).await, "pause");
        conflict(go(json!({"reboot": {"type": "SOFT"}})).await, "reboot");
        conflict(
            go(json!({"changePassword": {"adminPass": "x"}})).await,
            "changePassword",
        );
        assert_eq!(
            go(json!({"os-start": null})).await.status,
            StatusCode::ACCEPTED
        );
        let v = s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        assert_eq!(v["OS-EXT-STS:power_state"], 1);

        for t in ["SOFT", "HARD", "soft"] {
            let r = go(json!({"reboot": {"type": t}})).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{t}: {}", r.body);
            s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        }
        let r = go(json!({"reboot": {"type": "GENTLE"}})).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        let r = go(json!({"reboot": {}})).await;
        nova_error(&r, StatusCode::BAD_REQUEST);

        assert_eq!(
            go(json!({"pause": null})).await.status,
            StatusCode::ACCEPTED
        );
        let v = s.wait_server(&admin, &id, "PAUSED", None, WAIT).await;
        assert_eq!(v["OS-EXT-STS:power_state"], 3);
        conflict(go(json!({"pause": null})).await, "pause");
        conflict(go(json!({"os-start": null})).await, "start");
        assert_eq!(
            go(json!({"unpause": null})).await.status,
            StatusCode::ACCEPTED
        );
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;

        assert_eq!(
            go(json!({"suspend": null})).await.status,
            StatusCode::ACCEPTED
        );
        let v = s.wait_server(&admin, &id, "SUSPENDED", None, WAIT).await;
        assert_eq!(v["OS-EXT-STS:power_state"], 7);
        conflict(go(json!({"unpause": null})).await, "unpause");
        assert_eq!(
            go(json!({"resume": null})).await.status,
            StatusCode::ACCEPTED
        );
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;

        // a hard reboot brings a stopped server back (Nova allows it)
        assert_eq!(
            go(json!({"os-stop": null})).await.status,
            StatusCode::ACCEPTED
        );
        s.wait_server(&admin, &id, "SHUTOFF", None, WAIT).await;
        let r = go(json!({"reboot": {"type": "HARD"}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;

        // unknown and malformed actions
        let r = go(json!({"fly": null})).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        let r = go(json!({"os-stop": null, "os-start": null})).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        let r = action(
            &s,
            &admin,
            "00000000-0000-4000-8000-000000000000",
            json!({"os-stop": null}),
            None,
        )
        .await;
        nova_error(&r, StatusCode::NOT_FOUND);
    }
);

both_backends!(
    a_locked_server_refuses_a_non_admins_actions_until_unlocked,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        make_public(&s, &admin, &image).await;
        let (_, user) = member(&s, &admin, "owner").await;
        let id = boot_active(&s, &user, &image, "locked").await;

        // the owner locks it: its own actions are refused while locked
        let r = action(
            &s,
            &user,
            &id,
            json!({"lock": {"locked_reason": "maintenance"}}),
            Some("2.73"),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let v = show(&s, &user, &id, Some("2.73")).await;
        assert_eq!(v["locked"], true);
        assert_eq!(v["locked_reason"], "maintenance");
        let l = s
            .compute(
                Method::GET,
                "/servers?locked=true",
                &user,
                None,
                Some("2.73"),
            )
            .await;
        assert_eq!(ids(&l.body), vec![id.clone()]);
        for body in [
            json!({"os-stop": null}),
            json!({"reboot": {"type": "HARD"}}),
            json!({"resize": {"flavorRef": "2"}}),
        ] {
            let r = action(&s, &user, &id, body, None).await;
            let m = nova_error(&r, StatusCode::CONFLICT);
            assert_eq!(m, format!("Instance {id} is locked"));
        }
        let r = s
            .compute(Method::DELETE, &format!("/servers/{id}"), &user, None, None)
            .await;
        nova_error(&r, StatusCode::CONFLICT);
        let r = s
            .compute(
                Method::PUT,
                &format!("/servers/{id}"),
                &user,
                Some(json!({"server": {"name": "renamed"}})),
                None,
            )
            .await;
        nova_error(&r, StatusCode::CONFLICT);
        // an admin is not held back by the lock
        let r = action(&s, &admin, &id, json!({"os-stop": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        s.wait_server(&user, &id, "SHUTOFF", None, WAIT).await;
        // the owner unlocks, and may act again
        let r = action(&s, &user, &id, json!({"unlock": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        assert_eq!(show(&s, &user, &id, Some("2.9")).await["locked"], false);
        let r = action(&s, &user, &id, json!({"os-start": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        s.wait_server(&user, &id, "ACTIVE", None, WAIT).await;

        // locked by an admin: the owner may not unlock it
        let r = action(&s, &admin, &id, json!({"lock": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let r = action(&s, &user, &id, json!({"unlock": null}), None).await;
        nova_error(&r, StatusCode::FORBIDDEN);
        let r = action(&s, &user, &id, json!({"os-stop": null}), None).await;
        nova_error(&r, StatusCode::CONFLICT);
        let r = action(&s, &admin, &id, json!({"unlock": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let r = action(&s, &user, &id, json!({"os-stop": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
);

both_backends!(
    rebuild_answers_a_new_admin_password_and_returns_to_active,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let other = s.active_image(&admin, "img2").await;
        let r = create(&s, &admin, server_body(&image, "rb", json!({})), None).await;
        let first_pass = r.body["server"]["adminPass"].as_str().unwrap().to_string();
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        let r = action(
            &s,
            &admin,
            &id,
            json!({"rebuild": {"imageRef": other, "name": "rebuilt", "metadata": {"m": "1"}}}),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let v = &r.body["server"];
        let pass = v["adminPass"].as_str().expect("rebuild answers adminPass");
        assert_eq!(pass.len(), 12);
        assert_ne!(pass, first_pass);
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["image"]["id"], other.as_str());
        assert_eq!(v["name"], "rebuilt");
        assert!(
            ["REBUILD", "ACTIVE"].contains(&v["status"].as_str().unwrap()),
            "{v}"
        );
        let v = s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        assert_eq!(v["image"]["id"], other.as_str());
        assert_eq!(v["metadata"], json!({"m": "1"}));
        assert!(v.get("adminPass").is_none());
        // a password of one's own
        let r = action(
            &s,
            &admin,
            &id,
            json!({"rebuild": {"imageRef": image, "adminPass": "mine-123"}}),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        assert_eq!(r.body["server"]["adminPass"], "mine-123");
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        // bad images
        let r = action(
            &s,
            &admin,
            &id,
            json!({"rebuild": {"imageRef": "11111111-2222-4333-8444-555555555555"}}),
            None,
        )
        .await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        let r = action(&s, &admin, &id, json!({"rebuild": {}}), None).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        // personality on rebuild is gone at 2.57
        let r = action(
            &s,
            &admin,
            &id,
            json!({"rebuild": {"imageRef": image, "personality": [{"path": "/a", "contents": "QQ=="}]}}),
            Some("2.57"),
        )
        .await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        // a stopped server is rebuilt and stays stopped
        assert_eq!(
            action(&s, &admin, &id, json!({"os-stop": null}), None)
                .await
                .status,
            StatusCode::ACCEPTED
        );
        s.wait_server(&admin, &id, "SHUTOFF", None, WAIT).await;
        let r = action(
            &s,
            &admin,
            &id,
            json!({"rebuild": {"imageRef": other}}),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        s.wait_server(&admin, &id, "SHUTOFF", None, WAIT).await;
    }
);

both_backends!(
    resize_then_confirm_keeps_the_new_flavor_and_revert_restores_the_old,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let a = boot_active(&s, &admin, &image, "grow").await;
        let b = boot_active(&s, &admin, &image, "undo").await;
        let mv = Some("2.47");

        let r = action(&s, &admin, &a, json!({"resize": {"flavorRef": "2"}}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let v = s.wait_server(&admin, &a, "VERIFY_RESIZE", mv, WAIT).await;
        assert_eq!(v["OS-EXT-STS:vm_state"], "resized");
        assert_eq!(v["flavor"]["original_name"], "m1.small");
        let r = action(&s, &admin, &a, json!({"confirmResize": null}), None).await;
        // Nova answers 204 to confirmResize (202 to revertResize)
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let v = s.wait_server(&admin, &a, "ACTIVE", mv, WAIT).await;
        assert_eq!(v["flavor"]["original_name"], "m1.small");
        assert_eq!(v["flavor"]["ram"], 2048);
        assert_eq!(show(&s, &admin, &a, None).await["flavor"]["id"], "2");
        let l = s
            .compute(Method::GET, "/servers?flavor=2", &admin, None, None)
            .await;
        assert_eq!(ids(&l.body), vec![a.clone()]);
        // confirming twice is a conflict
        let r = action(&s, &admin, &a, json!({"confirmResize": null}), None).await;
        nova_error(&r, StatusCode::CONFLICT);

        let r = action(&s, &admin, &b, json!({"resize": {"flavorRef": "2"}}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        s.wait_server(&admin, &b, "VERIFY_RESIZE", mv, WAIT).await;
        // no second resize while one waits for its verdict
        let r = action(&s, &admin, &b, json!({"resize": {"flavorRef": "84"}}), None).await;
        nova_error(&r, StatusCode::CONFLICT);
        let r = action(&s, &admin, &b, json!({"revertResize": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let v = s.wait_server(&admin, &b, "ACTIVE", mv, WAIT).await;
        assert_eq!(v["flavor"]["original_name"], "m1.tiny");
        assert_eq!(v["flavor"]["ram"], 512);
        assert_eq!(show(&s, &admin, &b, None).await["flavor"]["id"], "1");

        // same flavor, unknown flavor, a smaller disk
        let r = action(&s, &admin, &b, json!({"resize": {"flavorRef": "1"}}), None).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        let r = action(
            &s,
            &admin,
            &b,
            json!({"resize": {"flavorRef": "777"}}),
            None,
        )
        .await;
        assert_eq!(
            nova_error(&r, StatusCode::BAD_REQUEST),
            "Flavor 777 could not be found."
        );
        let r = action(&s, &admin, &a, json!({"resize": {"flavorRef": "1"}}), None).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
        let r = action(&s, &admin, &b, json!({"resize": {}}), None).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
    }
);

async fn wait_image_active(s: &Server, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(WAIT);
    loop {
        let r = s
            .glance(Method::GET, &format!("/images/{id}"), token, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["status"] == "active" {
            return r.body;
        }
        assert!(Instant::now() < deadline, "snapshot not active: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends!(
    create_image_makes_an_active_snapshot_in_glance,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot_active(&s, &admin, &image, "snapme").await;
        let r = action(
            &s,
            &admin,
            &id,
            json!({"createImage": {"name": "snap-new", "metadata": {"purpose": "test"}}}),
            Some("2.45"),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let snap = r.body["image_id"]
            .as_str()
            .expect("image_id at 2.45")
            .to_string();
        assert!(r.headers.get("location").is_none());
        let img = wait_image_active(&s, &admin, &snap).await;
        assert_eq!(img["name"], "snap-new");
        assert_eq!(img["instance_uuid"], id.as_str());
        assert_eq!(img["image_type"], "snapshot");
        assert_eq!(img["purpose"], "test");
        assert!(img["size"].as_i64().unwrap() > 0, "{img}");
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;

        // before 2.45: no body, a Location header
        let r = action(
            &s,
            &admin,
            &id,
            json!({"createImage": {"name": "snap-old"}}),
            Some("2.44"),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let loc = r.headers["location"].to_str().unwrap().to_string();
        let old = loc.rsplit('/').next().unwrap().to_string();
        wait_image_active(&s, &admin, &old).await;
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        // a server booted from the snapshot
        let from_snap = boot_active(&s, &admin, &snap, "child").await;
        assert_eq!(
            show(&s, &admin, &from_snap, None).await["image"]["id"],
            snap.as_str()
        );

        let r = action(&s, &admin, &id, json!({"createImage": {}}), None).await;
        nova_error(&r, StatusCode::BAD_REQUEST);
    }
);

both_backends!(
    change_password_and_the_server_password_api,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot_active(&s, &admin, &image, "pw").await;
        let r = action(
            &s,
            &admin,
            &id,
            json!({"changePassword": {"adminPass": "n3w-pass"}}),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let v = s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        assert!(v.get("adminPass").is_none());
        let r = action(&s, &admin, &id, json!({"changePassword": {}}), None).await;
        nova_error(&r, StatusCode::BAD_REQUEST);

        let p = format!("/servers/{id}/os-server-password");
        let r = s.compute(Method::GET, &p, &admin, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, json!({"password": ""}));
        let r = s.compute(Method::DELETE, &p, &admin, None, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = s.compute(Method::GET, &p, &admin, None, None).await;
        assert_eq!(r.body, json!({"password": ""}));
    }
);

both_backends!(console_output_and_remote_consoles, |s: Server| async move {
    let admin = s.admin_token().await;
    let image = s.active_image(&admin, "img").await;
    let id = boot_active(&s, &admin, &image, "console").await;
    assert_eq!(
        action(&s, &admin, &id, json!({"reboot": {"type": "SOFT"}}), None)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
    let r = action(&s, &admin, &id, json!({"os-getConsoleOutput": {}}), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let all = r.body["output"].as_str().unwrap().to_string();
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines.len() >= 3, "{all}");
    assert!(all.contains("login:"), "{all}");
    // Nova's tail counts the pieces between newlines (`_tail_log`), so the log's
    // final newline is a piece of its own: length n gives n pieces of split('\n').
    let pieces: Vec<&str> = all.split('\n').collect();
    for (len, want) in [
        (json!(1), 1),
        (json!(2), 2),
        (json!(3), 3),
        (json!("2"), 2),
        (json!(-1), pieces.len()),
        (json!(null), pieces.len()),
    ] {
        let r = action(
            &s,
            &admin,
            &id,
            json!({"os-getConsoleOutput": {"length": len}}),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{len}: {}", r.body);
        let out = r.body["output"].as_str().unwrap();
        assert_eq!(out.split('\n').count(), want, "{len}: {out:?}");
        assert_eq!(out, pieces[pieces.len() - want..].join("\n"), "the tail");
    }
    for bad in [json!(-2), json!("x"), json!(1.5)] {
        let r = action(
            &s,
            &admin,
            &id,
            json!({"os-getConsoleOutput": {"length": bad}}),
            None,
        )
        .await;
        nova_error(&r, StatusCode::BAD_REQUEST);
    }

    // remote consoles: the fake driver's consoles lead nowhere, but the API around
    // them (tokens, URLs, lookups, revocation) is the real one
    let rc = format!("/servers/{id}/remote-consoles");
    let console = |proto: &'static str, ty: &'static str, mv: &'static str| {
        let (s, admin, rc) = (&s, admin.clone(), rc.clone());
        async move {
            s.compute(
                Method::POST,
                &rc,
                &admin,
                Some(json!({"remote_console": {"protocol": proto, "type": ty}})),
                Some(mv),
            )
            .await
        }
    };
    let r = console("vnc", "novnc", "2.6").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["remote_console"]["protocol"], "vnc");
    assert_eq!(r.body["remote_console"]["type"], "novnc");
    let url = r.body["remote_console"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, token) = url
        .split_once("/vnc_auto.html?path=%3Ftoken%3D")
        .unwrap_or_else(|| panic!("noVNC URL shape: {url}"));
    assert!(token.len() >= 40, "{token}");
    let lookup = |token: String, mv: &'static str, who: String| {
        let s = &s;
        async move {
            s.compute(
                Method::GET,
                &format!("/os-console-auth-tokens/{token}"),
                &who,
                None,
                Some(mv),
            )
            .await
        }
    };
    let r = lookup(token.to_string(), "2.31", admin.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["console"]["instance_uuid"], json!(id));
    assert!(r.body["console"].get("internal_access_path").is_some());
    assert!(
        r.body["console"].get("tls_port").is_none(),
        "tls_port is 2.99's"
    );
    nova_error(
        &lookup(token.to_string(), "2.30", admin.clone()).await,
        StatusCode::UNAUTHORIZED,
    );
    nova_error(
        &lookup("no-such-token".into(), "2.31", admin.clone()).await,
        StatusCode::NOT_FOUND,
    );
    let (_, alice) = member(&s, &admin, "consoles-alice").await;
    nova_error(
        &lookup(token.to_string(), "2.31", alice.clone()).await,
        StatusCode::FORBIDDEN,
    );
    // another project's server is not there for a member
    let r = s
        .compute(
            Method::POST,
            &rc,
            &alice,
            Some(json!({"remote_console": {"protocol": "vnc", "type": "novnc"}})),
            Some("2.6"),
        )
        .await;
    nova_error(&r, StatusCode::NOT_FOUND);

    let r = console("spice", "spice-html5", "2.6").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let spice = r.body["remote_console"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(spice.contains("/spice_auto.html?token="), "{spice}");
    let r = console("serial", "serial", "2.6").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let serial = r.body["remote_console"]["url"].as_str().unwrap();
    assert!(
        serial.starts_with("ws://") && serial.contains("/?token="),
        "{serial}"
    );
    // a type of another protocol, a type before its microversion, unknown ones
    let m = nova_error(
        &console("vnc", "spice-html5", "2.6").await,
        StatusCode::BAD_REQUEST,
    );
    assert!(m.contains("Invalid console type spice-html5"), "{m}");
    let m = nova_error(
        &console("spice", "spice-direct", "2.96").await,
        StatusCode::BAD_REQUEST,
    );
    assert!(m.contains("is not one of"), "{m}");
    nova_error(
        &console("carrier-pigeon", "x", "2.6").await,
        StatusCode::BAD_REQUEST,
    );
    let m = nova_error(
        &console("rdp", "rdp-html5", "2.6").await,
        StatusCode::BAD_REQUEST,
    );
    assert!(m.contains("Unavailable console type rdp-html5"), "{m}");
    nova_error(&console("vnc", "novnc", "2.5").await, StatusCode::NOT_FOUND);

    // the legacy actions (2.1 to 2.5)
    let r = action(
        &s,
        &admin,
        &id,
        json!({"os-getVNCConsole": {"type": "novnc"}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["console"]["type"], "novnc");
    assert!(r.body["console"]["url"].as_str().unwrap().contains("token"));
    let r = action(
        &s,
        &admin,
        &id,
        json!({"os-getSPICEConsole": {"type": "novnc"}}),
        None,
    )
    .await;
    nova_error(&r, StatusCode::BAD_REQUEST);
    let r = action(
        &s,
        &admin,
        &id,
        json!({"os-getVNCConsole": {"type": "novnc"}}),
        Some("2.6"),
    )
    .await;
    nova_error(&r, StatusCode::NOT_FOUND);
    let r = s
        .compute(
            Method::POST,
            "/servers/00000000-0000-4000-8000-000000000000/remote-consoles",
            &admin,
            Some(json!({"remote_console": {"protocol": "vnc", "type": "novnc"}})),
            Some("2.6"),
        )
        .await;
    nova_error(&r, StatusCode::NOT_FOUND);

    // a console password change revokes the server's tokens
    let r = lookup(token.to_string(), "2.31", admin.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = s
        .compute(
            Method::POST,
            &format!("/servers/{id}/metadata"),
            &admin,
            Some(json!({"metadata": {"spice_passwd": "new-one"}})),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    nova_error(
        &lookup(token.to_string(), "2.31", admin.clone()).await,
        StatusCode::NOT_FOUND,
    );
    // other metadata leaves them alone
    let r = console("vnc", "novnc", "2.6").await;
    let url = r.body["remote_console"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = url.rsplit("%3D").next().unwrap().to_string();
    let r = s
        .compute(
            Method::POST,
            &format!("/servers/{id}/metadata"),
            &admin,
            Some(json!({"metadata": {"other": "x"}})),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        lookup(token.clone(), "2.31", admin.clone()).await.status,
        StatusCode::OK
    );
    // a stopped server has no console
    assert_eq!(
        action(&s, &admin, &id, json!({"os-stop": null}), None)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    s.wait_server(&admin, &id, "SHUTOFF", None, WAIT).await;
    let m = nova_error(&console("vnc", "novnc", "2.6").await, StatusCode::CONFLICT);
    assert!(m.contains("is not ready"), "{m}");
    // deleting the server ends its tokens at once
    let r = s
        .compute(
            Method::DELETE,
            &format!("/servers/{id}"),
            &admin,
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    nova_error(
        &lookup(token, "2.31", admin.clone()).await,
        StatusCode::NOT_FOUND,
    );
});

both_backends!(
    instance_actions_list_and_show_with_events,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let r = create(&s, &admin, server_body(&image, "acts", json!({})), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let create_rid = r.headers["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
        let r = action(&s, &admin, &id, json!({"os-stop": null}), None).await;
        let stop_rid = r.headers["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        s.wait_server(&admin, &id, "SHUTOFF", None, WAIT).await;

        let r = s
            .compute(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let list = r.body["instanceActions"].as_array().unwrap();
        let acts: Vec<&str> = list.iter().map(|a| a["action"].as_str().unwrap()).collect();
        assert_eq!(acts, vec!["stop", "create"], "newest first");
        assert_eq!(list[0]["request_id"], stop_rid.as_str());
        assert_eq!(list[1]["request_id"], create_rid.as_str());
        assert_eq!(list[1]["instance_uuid"], id.as_str());
        assert!(list[1].get("events").is_none());

        let r = s
            .compute(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions/{create_rid}"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let a = &r.body["instanceAction"];
        assert_eq!(a["action"], "create");
        let events = a["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{a}");
        assert_eq!(events[0]["event"], "compute__do_build_and_run_instance");
        assert_eq!(events[0]["result"], "Success");
        assert!(events[0]["finish_time"].is_string());
        let r = s
            .compute(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions/{stop_rid}"),
                &admin,
                None,
                Some("2.62"),
            )
            .await;
        let ev = &r.body["instanceAction"]["events"][0];
        assert_eq!(ev["event"], "compute_stop_instance");
        assert_eq!(ev["result"], "Success");
        assert!(ev["host"].is_string(), "admin sees the host at 2.62: {ev}");
        let r = s
            .compute(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions/req-nope"),
                &admin,
                None,
                None,
            )
            .await;
        nova_error(&r, StatusCode::NOT_FOUND);

        // a deleted server's actions can still be read (Nova reads deleted rows)
        let d = s
            .compute(
                Method::DELETE,
                &format!("/servers/{id}"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        s.wait_server(&admin, &id, "DELETED", None, WAIT).await;
        let r = s
            .compute(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let acts: Vec<&str> = r.body["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(acts, vec!["delete", "stop", "create"]);
    }
);

both_backends!(
    delete_makes_the_server_go_away_and_a_second_delete_is_404,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot_active(&s, &admin, &image, "doomed").await;
        let keep = boot_active(&s, &admin, &image, "kept").await;
        assert_eq!(s.fake_guests().len(), 2);
        let r = s
            .compute(
                Method::DELETE,
                &format!("/servers/{id}"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let gone = s.wait_server(&admin, &id, "DELETED", None, WAIT).await;
        assert_eq!(
            gone["itemNotFound"]["message"],
            format!("Instance {id} could not be found.")
        );
        let r = s
            .compute(
                Method::DELETE,
                &format!("/servers/{id}"),
                &admin,
                None,
                None,
            )
            .await;
        nova_error(&r, StatusCode::NOT_FOUND);
        let r = action(&s, &admin, &id, json!({"os-stop": null}), None).await;
        nova_error(&r, StatusCode::NOT_FOUND);
        let l = s.compute(Method::GET, "/servers", &admin, None, None).await;
        assert_eq!(ids(&l.body), vec![keep.clone()]);
        // the guest is gone from the hypervisor too
        assert_eq!(s.fake_guests(), vec![keep.clone()]);
        // an admin may list deleted servers
        let l = s
            .compute(
                Method::GET,
                "/servers/detail?deleted=true",
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(ids(&l.body), vec![id.clone()], "{}", l.body);
        assert_eq!(l.body["servers"][0]["status"], "DELETED");
        // forceDelete works like delete
        let r = action(&s, &admin, &keep, json!({"forceDelete": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        s.wait_server(&admin, &keep, "DELETED", None, WAIT).await;
        assert_eq!(s.fake_guests(), Vec::<String>::new());
    }
);

both_backends!(
    an_injected_spawn_failure_ends_in_error_with_a_fault,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        make_public(&s, &admin, &image).await;
        let (_, user) = member(&s, &admin, "unlucky").await;
        let started = Instant::now();
        let id = boot(
            &s,
            &user,
            &image,
            "broken",
            json!({"metadata": {"fake:fail": "spawn"}}),
        )
        .await;
        let v = s.wait_server(&user, &id, "ERROR", None, WAIT).await;
        // three attempts, 0.5 s and 1 s apart
        assert!(
            started.elapsed() >= Duration::from_millis(1400),
            "gave up after {:?}",
            started.elapsed()
        );
        assert_eq!(v["OS-EXT-STS:vm_state"], "error");
        let fault = &v["fault"];
        assert_eq!(fault["code"], 500, "{v}");
        let msg = fault["message"].as_str().unwrap();
        assert!(!msg.is_empty());
        assert!(fault["created"].is_string());
        assert!(
            fault.get("details").is_none(),
            "details are for admins: {fault}"
        );
        let va = show(&s, &admin, &id, None).await;
        assert!(va["fault"]["details"].is_string(), "{va}");
        // the create action records the failed event
        let r = s
            .compute(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions"),
                &user,
                None,
                None,
            )
            .await;
        let rid = r.body["instanceActions"][0]["request_id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s
            .compute(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions/{rid}"),
                &user,
                None,
                None,
            )
            .await;
        assert_eq!(r.body["instanceAction"]["message"], "Error");
        assert_eq!(r.body["instanceAction"]["events"][0]["result"], "Error");
        // ERROR servers are listed by status and can be deleted
        let l = s
            .compute(Method::GET, "/servers?status=ERROR", &user, None, None)
            .await;
        assert_eq!(ids(&l.body), vec![id.clone()]);
        let r = s
            .compute(Method::DELETE, &format!("/servers/{id}"), &user, None, None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.wait_server(&user, &id, "DELETED", None, WAIT).await;
        // a healthy server beside it is unaffected
        boot_active(&s, &user, &image, "fine").await;
    }
);

both_backends_env!(
    user_edits_during_a_build_are_kept,
    &[("FERROSTACK_COMPUTE__FAKE_SPAWN_DELAY_MS", "1500")],
    |s: Server| async move {
        // Bug: name/description/metadata/tags/password writes do not bump the server's
        // generation, and the host agent (and scheduler) records its step by rewriting
        // the whole row from the copy it loaded before the step: the user's edit made
        // meanwhile is silently lost (update_if matches the unchanged generation).
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot(&s, &admin, &image, "orig", json!({"metadata": {"a": "1"}})).await;
        let deadline = Instant::now() + Duration::from_secs(WAIT);
        while show(&s, &admin, &id, None).await["OS-EXT-STS:task_state"] != "spawning" {
            assert!(Instant::now() < deadline, "never spawning");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = s
            .compute(
                Method::PUT,
                &format!("/servers/{id}"),
                &admin,
                Some(json!({"server": {"name": "renamed", "description": "d"}})),
                Some("2.19"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = s
            .compute(
                Method::POST,
                &format!("/servers/{id}/metadata"),
                &admin,
                Some(json!({"metadata": {"b": "2"}})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = s
            .compute(
                Method::PUT,
                &format!("/servers/{id}/tags"),
                &admin,
                Some(json!({"tags": ["t"]})),
                Some("2.26"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v = s
            .wait_server(&admin, &id, "ACTIVE", Some("2.26"), WAIT)
            .await;
        assert_eq!(v["name"], "renamed", "rename lost: {v}");
        assert_eq!(
            v["metadata"],
            json!({"a": "1", "b": "2"}),
            "metadata lost: {v}"
        );
        assert_eq!(v["tags"], json!(["t"]), "tags lost: {v}");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gets_an_address_on_the_private_network() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let admin = s.admin_token().await;
    let image = s.active_image(&admin, "img").await;
    let r = create(
        &s,
        &admin,
        server_body(&image, "net", json!({"networks": "auto"})),
        Some("2.37"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    let v = s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
    let private = v["addresses"]["private"]
        .as_array()
        .expect("private network");
    assert_eq!(private.len(), 1, "{v}");
    let addr = private[0]["addr"].as_str().unwrap();
    assert!(addr.starts_with("10.0.0."), "{addr}");
    assert_eq!(private[0]["version"], 4);
    assert_eq!(private[0]["OS-EXT-IPS:type"], "fixed");
    assert!(private[0]["OS-EXT-IPS-MAC:mac_addr"].is_string());
    let ips = s
        .compute(
            Method::GET,
            &format!("/servers/{id}/ips"),
            &admin,
            None,
            None,
        )
        .await;
    // /ips shows only version and address (Nova's ips view)
    assert_eq!(
        ips.body["addresses"],
        json!({"private": [{"version": 4, "addr": addr}]})
    );
    let one = s
        .compute(
            Method::GET,
            &format!("/servers/{id}/ips/private"),
            &admin,
            None,
            None,
        )
        .await;
    assert_eq!(one.body["private"], json!([{"version": 4, "addr": addr}]));
    let l = s
        .compute(Method::GET, "/servers?ip=10.0.0.", &admin, None, None)
        .await;
    assert_eq!(ids(&l.body), vec![id.clone()]);
    // networks "none" gets no address
    let r = create(
        &s,
        &admin,
        server_body(&image, "none", json!({"networks": "none"})),
        Some("2.37"),
    )
    .await;
    let nid = r.body["server"]["id"].as_str().unwrap().to_string();
    let v = s.wait_server(&admin, &nid, "ACTIVE", None, WAIT).await;
    assert_eq!(v["addresses"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_boots_with_a_key_pair_and_shows_its_name() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let admin = s.admin_token().await;
    let image = s.active_image(&admin, "img").await;
    let k = s
        .compute(
            Method::POST,
            "/os-keypairs",
            &admin,
            Some(json!({"keypair": {"name": "k1"}})),
            Some("2.1"),
        )
        .await;
    assert_eq!(k.status, StatusCode::OK, "{}", k.body);
    let id = boot(&s, &admin, &image, "keyed", json!({"key_name": "k1"})).await;
    let v = s.wait_server(&admin, &id, "ACTIVE", None, WAIT).await;
    assert_eq!(v["key_name"], "k1");
    let l = s
        .compute(Method::GET, "/servers?key_name=k1", &admin, None, None)
        .await;
    assert_eq!(ids(&l.body), vec![id]);
}

// Nova: finish_resize keeps a stopped instance powered off, and confirm/revert put it
// back to vm_state stopped (SHUTOFF). Here plan::after(ConfirmResize|RevertResize)
// always lands in Active while the guest stays shut down (status ACTIVE, power 4).
both_backends_env!(
    a_stopped_server_stays_stopped_through_resize_confirm_and_revert,
    &[],
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let a = boot_active(&s, &admin, &image, "cold-a").await;
        let b = boot_active(&s, &admin, &image, "cold-b").await;
        for id in [&a, &b] {
            let r = action(&s, &admin, id, json!({"os-stop": null}), None).await;
            assert_eq!(r.status, StatusCode::ACCEPTED);
            s.wait_server(&admin, id, "SHUTOFF", None, WAIT).await;
            let r = action(&s, &admin, id, json!({"resize": {"flavorRef": "2"}}), None).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            let v = s.wait_server(&admin, id, "VERIFY_RESIZE", None, WAIT).await;
            assert_eq!(v["OS-EXT-STS:power_state"], 4, "{v}");
        }
        let r = action(&s, &admin, &a, json!({"confirmResize": null}), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = action(&s, &admin, &b, json!({"revertResize": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        for id in [&a, &b] {
            let deadline = Instant::now() + Duration::from_secs(WAIT);
            let v = loop {
                let v = show(&s, &admin, id, None).await;
                if v["OS-EXT-STS:task_state"].is_null() && v["status"] != "VERIFY_RESIZE" {
                    break v;
                }
                assert!(Instant::now() < deadline, "{v}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(v["status"], "SHUTOFF", "{v}");
            assert_eq!(v["OS-EXT-STS:power_state"], 4, "{v}");
        }
    }
);

/// Four ACTIVE servers "pg-1".."pg-4"; returns their ids in the default order.
async fn four_active(s: &Server, admin: &str) -> Vec<String> {
    let image = s.active_image(admin, "img").await;
    let r = create(
        s,
        admin,
        server_body(&image, "pg", json!({"min_count": 4, "max_count": 4})),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let all = ids(&s
        .compute(Method::GET, "/servers", admin, None, None)
        .await
        .body);
    for id in &all {
        s.wait_server(admin, id, "ACTIVE", None, WAIT).await;
    }
    all
}

// Nova pages by the marker's sort-key values, whether or not the marker still matches
// the filters (or still exists). Lists that are filtered or sorted in memory here
// (query.rs: `pos.get(marker).map_or(0, ...)`) restart from the beginning when the
// marker is not in the filtered result: the next page repeats servers already seen,
// and a client following `next` links can loop.
both_backends_env!(
    paging_goes_on_after_a_marker_that_stopped_matching_the_filter,
    &[],
    |s: Server| async move {
        let admin = s.admin_token().await;
        let all = four_active(&s, &admin).await;
        let p1 = s
            .compute(
                Method::GET,
                "/servers?status=ACTIVE&limit=2",
                &admin,
                None,
                None,
            )
            .await;
        let first = ids(&p1.body);
        assert_eq!(first, all[..2].to_vec());
        let next = p1.body["servers_links"][0]["href"]
            .as_str()
            .unwrap()
            .to_string();
        let r = action(&s, &admin, &first[1], json!({"os-stop": null}), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        s.wait_server(&admin, &first[1], "SHUTOFF", None, WAIT)
            .await;
        let p2 = s.get_abs(&next, &admin, None).await;
        assert_eq!(
            ids(&p2.body),
            all[2..4].to_vec(),
            "page 2 after a stopped marker"
        );
    }
);

both_backends_env!(
    paging_goes_on_after_a_marker_that_was_deleted,
    &[],
    |s: Server| async move {
        let admin = s.admin_token().await;
        four_active(&s, &admin).await;
        let by_name = ids(&l_sorted(&s, &admin).await);
        let p1 = s
            .compute(
                Method::GET,
                "/servers?sort_key=name&sort_dir=asc&limit=2",
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(ids(&p1.body), by_name[..2].to_vec());
        let next = p1.body["servers_links"][0]["href"]
            .as_str()
            .unwrap()
            .to_string();
        let d = s
            .compute(
                Method::DELETE,
                &format!("/servers/{}", by_name[1]),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        s.wait_server(&admin, &by_name[1], "DELETED", None, WAIT)
            .await;
        let p2 = s.get_abs(&next, &admin, None).await;
        assert_eq!(
            ids(&p2.body),
            by_name[2..4].to_vec(),
            "page 2 after a deleted marker"
        );
    }
);

both_backends_env!(
    deleting_a_server_mid_build_leaves_no_guest_behind,
    &[("FERROSTACK_COMPUTE__FAKE_SPAWN_DELAY_MS", "1500")],
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot(&s, &admin, &image, "short-lived", json!({})).await;
        let deadline = Instant::now() + Duration::from_secs(WAIT);
        while show(&s, &admin, &id, None).await["OS-EXT-STS:task_state"] != "spawning" {
            assert!(Instant::now() < deadline, "never spawning");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = s
            .compute(
                Method::DELETE,
                &format!("/servers/{id}"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        s.wait_server(&admin, &id, "DELETED", None, WAIT).await;
        // the spawn that was running finished after the delete: its guest must go too
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.fake_guests().is_empty() {
            assert!(
                Instant::now() < deadline,
                "guest left: {:?}",
                s.fake_guests()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let l = s.compute(Method::GET, "/servers", &admin, None, None).await;
        assert_eq!(ids(&l.body), Vec::<String>::new());
    }
);

both_backends_env!(
    a_resize_beyond_the_ram_quota_is_403,
    &[("FERROSTACK_QUOTA__RAM", "1024")],
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot_active(&s, &admin, &image, "big").await;
        let r = action(&s, &admin, &id, json!({"resize": {"flavorRef": "2"}}), None).await;
        assert_eq!(
            nova_error(&r, StatusCode::FORBIDDEN),
            "Quota exceeded for ram: Requested 1536, but already used 512 of 1024 ram"
        );
        let v = show(&s, &admin, &id, None).await;
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["flavor"]["id"], "1");
        // a create that does not fit the RAM left
        let r = create(
            &s,
            &admin,
            server_body(&image, "x", json!({"flavorRef": "2"})),
            None,
        )
        .await;
        assert_eq!(
            nova_error(&r, StatusCode::FORBIDDEN),
            "Quota exceeded for ram: Requested 2048, but already used 512 of 1024 ram"
        );
    }
);

// A delete that read the server before the scheduler placed it takes the "not on a
// host yet" path (ops.rs delete_server: local delete, ports released at once). The
// scheduler's and the agent's writes do not bump the generation, so the delete's
// conditional update still matches after the server was placed: the server is
// marked deleted while the agent goes on to allocate ports and spawn; its later
// records fail and nothing ever destroys the guest (or, after the network merge,
// frees the ports). Racy: a few servers out of 40 leak on a 2-core machine.
both_backends_env!(
    deleting_right_after_create_leaves_no_guest_behind,
    &[
        ("FERROSTACK_QUOTA__INSTANCES", "100"),
        ("FERROSTACK_QUOTA__CORES", "200"),
    ],
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        for round in 0..4 {
            let r = create(
                &s,
                &admin,
                server_body(
                    &image,
                    &format!("r{round}"),
                    json!({"min_count": 10, "max_count": 10}),
                ),
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            let l = s
                .compute(
                    Method::GET,
                    &format!("/servers?name=^r{round}-"),
                    &admin,
                    None,
                    None,
                )
                .await;
            for id in ids(&l.body) {
                let d = s
                    .compute(
                        Method::DELETE,
                        &format!("/servers/{id}"),
                        &admin,
                        None,
                        None,
                    )
                    .await;
                assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.body);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(WAIT);
        loop {
            let l = s.compute(Method::GET, "/servers", &admin, None, None).await;
            if ids(&l.body).is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "servers left: {}", l.body);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert_eq!(
            s.fake_guests(),
            Vec::<String>::new(),
            "guests of deleted servers left on the hypervisor"
        );
    }
);

/// A stand-in for Debian's noVNC files (the proxy serves whatever directory it is
/// given), made once per test process.
fn console_web_dir() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        // under target/ (cargo's scratch space for integration tests), one per test
        // process: nextest runs each test in a process of its own
        let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("console-web-{}", std::process::id()));
        std::fs::create_dir_all(d.join("core")).unwrap();
        std::fs::write(d.join("vnc.html"), "<title>noVNC stand-in</title>").unwrap();
        std::fs::write(d.join("core/rfb.js"), "export default 1;").unwrap();
        d.to_string_lossy().into_owned()
    })
}

/// A raw HTTP/1.1 request to the console proxy; the status code of the answer.
async fn raw_status(addr: &str, request: String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await {
            Ok(Ok(1)) => head.push(b[0]),
            _ => break,
        }
    }
    let line = String::from_utf8_lossy(&head).to_string();
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
}

fn upgrade_request(addr: &str, path: &str, origin: Option<&str>) -> String {
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n{origin}\r\n"
    )
}

both_backends_env!(
    console_proxy_refuses_before_the_upgrade,
    &[("FERROSTACK_CONSOLE__NOVNC_DIR", console_web_dir())],
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = boot_active(&s, &admin, &image, "proxied").await;
        let r = s
            .compute(
                Method::POST,
                &format!("/servers/{id}/remote-consoles"),
                &admin,
                Some(json!({"remote_console": {"protocol": "vnc", "type": "novnc"}})),
                Some("2.6"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let url = r.body["remote_console"]["url"]
            .as_str()
            .unwrap()
            .to_string();
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let token = url.rsplit("%3D").next().unwrap().to_string();

        // the web client's files, and nothing outside them
        let page = s.client.get(&url).send().await.unwrap();
        assert_eq!(
            page.status(),
            StatusCode::NOT_FOUND,
            "vnc_auto.html is not in the stand-in"
        );
        let page = s
            .client
            .get(format!("http://{addr}/vnc.html"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.text().await.unwrap().contains("noVNC stand-in"));
        for path in ["/core/rfb.js", "/vnc.html?x=1"] {
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            assert_eq!(raw_status(&addr, req).await, 200, "{path}");
        }
        for path in [
            "/../vnc.html",
            "/core/../../etc/passwd",
            "//evil.example/x",
            "/",
            "/core",
        ] {
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            assert_eq!(raw_status(&addr, req).await, 404, "{path}");
        }

        // websockets: no token, a wrong one, a foreign Origin: refused before the
        // upgrade; a good one gets as far as the console, which for the fake driver
        // leads nowhere (502)
        let ws = |path: String, origin: Option<&'static str>| {
            let addr = addr.clone();
            async move { raw_status(&addr, upgrade_request(&addr, &path, origin)).await }
        };
        assert_eq!(ws("/".into(), None).await, 403);
        assert_eq!(ws("/?token=not-a-token".into(), None).await, 403);
        let good = format!("/websockify?token={token}");
        assert_eq!(ws(good.clone(), Some("http://evil.example")).await, 403);
        assert_eq!(
            ws(good.clone(), Some("https://evil.example:6080")).await,
            403
        );
        assert_eq!(ws(format!("/?path=%3Ftoken%3D{token}"), None).await, 502);
        let own = format!("http://{addr}");
        let own: &'static str = Box::leak(own.into_boxed_str());
        assert_eq!(ws(good.clone(), Some(own)).await, 502);
        // the cookie spice_auto.html sets
        let req = upgrade_request(&addr, "/websockify", None)
            .replace("\r\n\r\n", &format!("\r\nCookie: token={token}\r\n\r\n"));
        assert_eq!(raw_status(&addr, req).await, 502);

        // deleted: the token is gone with the server
        let r = s
            .compute(
                Method::DELETE,
                &format!("/servers/{id}"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(ws(good, None).await, 403);
    }
);

/// A Neutron security group of the token's project; returns its id.
async fn security_group(s: &Server, token: &str, name: &str) -> String {
    let r = s
        .client
        .post(format!("{}/network/v2.0/security-groups", s.base))
        .header("X-Auth-Token", token)
        .json(&json!({"security_group": {"name": name}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["security_group"]["id"].as_str().unwrap().to_string()
}

both_backends!(
    an_unknown_security_group_is_refused_at_create_time,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "sg-img").await;
        make_public(&s, &admin, &image).await;
        let (_, alice) = member(&s, &admin, "sg-alice").await;
        let (_, bob) = member(&s, &admin, "sg-bob").await;
        let web = security_group(&s, &alice, "web").await;
        let bobs = security_group(&s, &bob, "bobs").await;
        let groups = |names: &[&str]| json!({"security_groups": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()});

        // Nova: SecurityGroupNotFound -> 400, with neutronclient's message
        for (missing, networks) in [
            ("nope", None),
            ("nope", Some("none")),
            (bobs.as_str(), None),
        ] {
            let mut extra = groups(&[missing]);
            let mv = networks.map(|n| {
                extra["networks"] = json!(n);
                "2.37"
            });
            let r = create(&s, &alice, server_body(&image, "sg-bad", extra), mv).await;
            assert_eq!(
                nova_error(&r, StatusCode::BAD_REQUEST),
                format!("Unable to find security_group with name or id '{missing}'")
            );
        }
        let r = s.compute(Method::GET, "/servers", &alice, None, None).await;
        assert!(names(&r.body).is_empty(), "{}", r.body);

        // by name, by id, `default`, and with no networks at all
        boot(&s, &alice, &image, "sg-name", groups(&["web"])).await;
        boot(&s, &alice, &image, "sg-id", groups(&[&web])).await;
        boot(&s, &alice, &image, "sg-default", groups(&["default"])).await;
        let r = create(
            &s,
            &alice,
            server_body(
                &image,
                "sg-none",
                json!({"networks": "none", "security_groups": [{"name": "web"}]}),
            ),
            Some("2.37"),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

        // an admin may name another project's group by id
        let r = create(
            &s,
            &admin,
            server_body(&image, "sg-admin", groups(&[&bobs])),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

        // a name two groups carry: Nova's NoUniqueMatch -> 409
        security_group(&s, &alice, "twin").await;
        security_group(&s, &alice, "twin").await;
        let r = create(
            &s,
            &alice,
            server_body(&image, "sg-twin", groups(&["twin"])),
            None,
        )
        .await;
        assert_eq!(
            nova_error(&r, StatusCode::CONFLICT),
            "Multiple security_group matches found for name 'twin', use an ID to be more specific."
        );
    }
);
