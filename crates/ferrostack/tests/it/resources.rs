//! Resources, roles, assignments and the catalog: CRUD, filters, pagination,
//! conflicts, validation and project isolation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::harness::{Backend, Server};

both_backends!(
    duplicates_and_bad_fields_change_nothing,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let p = |name: serde_json::Value| json!({"project": {"name": name}});
        assert_eq!(
            s.call(
                Method::POST,
                "/v3/projects",
                Some(&admin),
                Some(p(json!("dup")))
            )
            .await
            .status,
            StatusCode::CREATED
        );
        let r = s
            .call(
                Method::POST,
                "/v3/projects",
                Some(&admin),
                Some(p(json!("dup"))),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Duplicate entry")
        );
        s.call(
            Method::POST,
            "/v3/projects",
            Some(&admin),
            Some(p(json!("x".repeat(65)))),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.call(
            Method::POST,
            "/v3/projects",
            Some(&admin),
            Some(p(json!(42))),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.call(
            Method::POST,
            "/v3/projects",
            Some(&admin),
            Some(json!({"project": {"name": "e", "enabled": "yes"}})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.call(
            Method::POST,
            "/v3/users",
            Some(&admin),
            Some(json!({"user": {"name": "u", "domain_id": "nope"}})),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND); // Keystone: get_domain's DomainNotFound
        let list = s
            .call(Method::GET, "/v3/projects?name=dup", Some(&admin), None)
            .await;
        assert_eq!(list.body["projects"].as_array().unwrap().len(), 1);
        let all = s
            .call(Method::GET, "/v3/projects", Some(&admin), None)
            .await;
        let names: Vec<&str> = all.body["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            3,
            "admin, service, dup and nothing else: {names:?}"
        );
        // renaming onto an existing name conflicts and leaves the row alone
        let svc = all.body["projects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "service")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        s.call(
            Method::PATCH,
            &format!("/v3/projects/{svc}"),
            Some(&admin),
            Some(p(json!("dup"))),
        )
        .await
        .assert_error(StatusCode::CONFLICT);
        let again = s
            .call(
                Method::GET,
                &format!("/v3/projects/{svc}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(again.body["project"]["name"], "service");
        s.call(Method::GET, "/v3/projects/nope", Some(&admin), None)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
);

both_backends!(
    project_hierarchy_and_domain_lifecycle,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let parent = s
            .call(
                Method::POST,
                "/v3/projects",
                Some(&admin),
                Some(json!({"project": {"name": "parent"}})),
            )
            .await;
        assert_eq!(
            parent.body["project"]["parent_id"], "default",
            "top level shows the domain as parent"
        );
        let pid = parent.body["project"]["id"].as_str().unwrap().to_string();
        let child = s
            .call(
                Method::POST,
                "/v3/projects",
                Some(&admin),
                Some(json!({"project": {"name": "child", "parent_id": pid}})),
            )
            .await;
        assert_eq!(child.status, StatusCode::CREATED, "{}", child.body);
        assert_eq!(child.body["project"]["parent_id"], pid.as_str());
        let kids = s
            .call(
                Method::GET,
                &format!("/v3/projects?parent_id={pid}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(kids.body["projects"].as_array().unwrap().len(), 1);
        s.call(
            Method::DELETE,
            &format!("/v3/projects/{pid}"),
            Some(&admin),
            None,
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.call(
            Method::PATCH,
            &format!("/v3/projects/{pid}"),
            Some(&admin),
            Some(json!({"project": {"enabled": false}})),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        let d = s
            .call(
                Method::POST,
                "/v3/domains",
                Some(&admin),
                Some(json!({"domain": {"name": "acme", "description": "x"}})),
            )
            .await;
        assert_eq!(d.status, StatusCode::CREATED);
        let did = d.body["domain"]["id"].as_str().unwrap().to_string();
        let inside = s
            .call(
                Method::POST,
                "/v3/projects",
                Some(&admin),
                Some(json!({"project": {"name": "in-acme", "domain_id": did}})),
            )
            .await;
        assert_eq!(inside.status, StatusCode::CREATED);
        s.call(
            Method::DELETE,
            &format!("/v3/domains/{did}"),
            Some(&admin),
            None,
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.call(
            Method::PATCH,
            &format!("/v3/domains/{did}"),
            Some(&admin),
            Some(json!({"domain": {"enabled": false}})),
        )
        .await;
        let del = s
            .call(
                Method::DELETE,
                &format!("/v3/domains/{did}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
        let gone = s
            .call(Method::GET, "/v3/projects?name=in-acme", Some(&admin), None)
            .await;
        assert_eq!(
            gone.body["projects"].as_array().unwrap().len(),
            0,
            "the domain's projects went with it"
        );
    }
);

both_backends!(members_see_only_their_own_things, |s: Server| async move {
    let admin = s.admin_token().await;
    let (p1, u1) = s.project_user(&admin, "p1", "u1", "pw1", "member").await;
    let (p2, u2) = s.project_user(&admin, "p2", "u2", "pw2", "member").await;
    let t1 = s.auth("u1", "pw1", Some("p1")).await.subject.unwrap();
    s.call(Method::GET, "/v3/projects", Some(&t1), None)
        .await
        .assert_error(StatusCode::FORBIDDEN);
    s.call(Method::GET, "/v3/users", Some(&t1), None)
        .await
        .assert_error(StatusCode::FORBIDDEN);
    assert_eq!(
        s.call(Method::GET, &format!("/v3/projects/{p1}"), Some(&t1), None)
            .await
            .status,
        StatusCode::OK
    );
    s.call(Method::GET, &format!("/v3/projects/{p2}"), Some(&t1), None)
        .await
        .assert_error(StatusCode::FORBIDDEN);
    // an id that does not exist looks like someone else's (no probing); admin sees 404
    for path in [
        "/v3/projects/no-such-id",
        "/v3/users/no-such-id",
        "/v3/groups/no-such-id",
    ] {
        s.call(Method::GET, path, Some(&t1), None)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.call(Method::GET, path, Some(&admin), None)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
    assert_eq!(
        s.call(Method::GET, &format!("/v3/users/{u1}"), Some(&t1), None)
            .await
            .status,
        StatusCode::OK
    );
    s.call(Method::GET, &format!("/v3/users/{u2}"), Some(&t1), None)
        .await
        .assert_error(StatusCode::FORBIDDEN);
    s.call(
        Method::POST,
        "/v3/users",
        Some(&t1),
        Some(json!({"user": {"name": "evil"}})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);
    s.call(
        Method::PATCH,
        &format!("/v3/users/{u2}"),
        Some(&t1),
        Some(json!({"user": {"enabled": false}})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);
    s.validate(&t1, &admin)
        .await
        .assert_error(StatusCode::FORBIDDEN);
    // own EC2 credential yes, someone else's no
    assert_eq!(
        s.call(
            Method::POST,
            &format!("/v3/users/{u1}/credentials/OS-EC2"),
            Some(&t1),
            Some(json!({"tenant_id": p1}))
        )
        .await
        .status,
        StatusCode::CREATED
    );
    s.call(
        Method::POST,
        &format!("/v3/users/{u2}/credentials/OS-EC2"),
        Some(&t1),
        Some(json!({"tenant_id": p2})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);
    s.call(
        Method::GET,
        &format!("/v3/users/{u2}/credentials/OS-EC2"),
        Some(&t1),
        None,
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);
    // credentials listing only shows one's own
    let t2 = s.auth("u2", "pw2", Some("p2")).await.subject.unwrap();
    s.call(
        Method::POST,
        &format!("/v3/users/{u2}/credentials/OS-EC2"),
        Some(&t2),
        Some(json!({"tenant_id": p2})),
    )
    .await;
    let mine = s
        .call(Method::GET, "/v3/credentials", Some(&t1), None)
        .await;
    let owners: Vec<&str> = mine.body["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(owners, vec![u1.as_str()]);
    let scopes = s
        .call(Method::GET, "/v3/auth/projects", Some(&t1), None)
        .await;
    let ids: Vec<&str> = scopes.body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![p1.as_str()]);
});

both_backends!(
    role_assignments_with_groups_implied_roles_and_names,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (pid, uid) = s.project_user(&admin, "p1", "u1", "pw", "reader").await;
        let g = s
            .call(
                Method::POST,
                "/v3/groups",
                Some(&admin),
                Some(json!({"group": {"name": "ops"}})),
            )
            .await;
        let gid = g.body["group"]["id"].as_str().unwrap().to_string();
        assert_eq!(
            s.call(
                Method::PUT,
                &format!("/v3/groups/{gid}/users/{uid}"),
                Some(&admin),
                None
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        let member = s
            .call(Method::GET, "/v3/roles?name=member", Some(&admin), None)
            .await
            .body["roles"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            s.call(
                Method::PUT,
                &format!("/v3/projects/{pid}/groups/{gid}/roles/{member}"),
                Some(&admin),
                None
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        let direct = s
            .call(
                Method::GET,
                &format!("/v3/role_assignments?scope.project.id={pid}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            direct.body["role_assignments"].as_array().unwrap().len(),
            2,
            "{}",
            direct.body
        );
        let eff = s
            .call(
                Method::GET,
                &format!("/v3/role_assignments?scope.project.id={pid}&effective&include_names"),
                Some(&admin),
                None,
            )
            .await;
        let list = eff.body["role_assignments"].as_array().unwrap();
        let roles: Vec<&str> = list
            .iter()
            .map(|a| a["role"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            list.len(),
            2,
            "member via group and reader (direct and implied) once each: {}",
            eff.body
        );
        assert!(roles.contains(&"member") && roles.contains(&"reader"));
        let via_group = list.iter().find(|a| a["role"]["name"] == "member").unwrap();
        assert_eq!(via_group["user"]["name"], "u1");
        assert_eq!(via_group["scope"]["project"]["name"], "p1");
        assert!(
            via_group["links"]["membership"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/groups/{gid}/users/{uid}"))
        );
        // the user's token now carries member (from the group) and reader
        let t = s.auth("u1", "pw", Some("p1")).await;
        let names: Vec<&str> = t.body["token"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["member", "reader"]);
        // leaving the group takes the role away from existing tokens too
        let tok = t.subject.unwrap();
        s.call(
            Method::DELETE,
            &format!("/v3/groups/{gid}/users/{uid}"),
            Some(&admin),
            None,
        )
        .await;
        let v = s.validate(&admin, &tok).await;
        let names: Vec<&str> = v.body["token"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["reader"]);
        // implied role listing
        let inf = s
            .call(Method::GET, "/v3/role_inferences", Some(&admin), None)
            .await;
        assert_eq!(inf.body["role_inferences"].as_array().unwrap().len(), 2);
    }
);

both_backends!(
    roles_in_use_can_be_deleted_but_bootstrap_roles_are_immutable,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (pid, uid) = s.project_user(&admin, "p1", "u1", "pw", "reader").await;
        let r = s
            .call(
                Method::POST,
                "/v3/roles",
                Some(&admin),
                Some(json!({"role": {"name": "auditor"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let rid = r.body["role"]["id"].as_str().unwrap().to_string();
        s.call(
            Method::POST,
            "/v3/roles",
            Some(&admin),
            Some(json!({"role": {"name": "auditor"}})),
        )
        .await
        .assert_error(StatusCode::CONFLICT);
        s.call(
            Method::PUT,
            &format!("/v3/projects/{pid}/users/{uid}/roles/{rid}"),
            Some(&admin),
            None,
        )
        .await;
        let del = s
            .call(
                Method::DELETE,
                &format!("/v3/roles/{rid}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(del.status, StatusCode::NO_CONTENT);
        let left = s
            .call(
                Method::GET,
                &format!("/v3/role_assignments?role.id={rid}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(left.body["role_assignments"].as_array().unwrap().len(), 0);
        let admin_role = s
            .call(Method::GET, "/v3/roles?name=admin", Some(&admin), None)
            .await
            .body["roles"][0]
            .clone();
        assert_eq!(admin_role["options"]["immutable"], true);
        let id = admin_role["id"].as_str().unwrap();
        s.call(
            Method::DELETE,
            &format!("/v3/roles/{id}"),
            Some(&admin),
            None,
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        let reader = s
            .call(Method::GET, "/v3/roles?name=reader", Some(&admin), None)
            .await
            .body["roles"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        s.call(
            Method::PUT,
            &format!("/v3/roles/{reader}/implies/{id}"),
            Some(&admin),
            None,
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        let revoke = s
            .call(
                Method::DELETE,
                &format!("/v3/projects/{pid}/users/{uid}/roles/{reader}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(revoke.status, StatusCode::NO_CONTENT);
        s.call(
            Method::DELETE,
            &format!("/v3/projects/{pid}/users/{uid}/roles/{reader}"),
            Some(&admin),
            None,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        s.auth("u1", "pw", Some("p1"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    lists_filter_and_paginate_with_links,
    |s: Server| async move {
        let admin = s.admin_token().await;
        for i in 0..5 {
            s.call(
                Method::POST,
                "/v3/projects",
                Some(&admin),
                Some(json!({"project": {"name": format!("page-{i}"), "enabled": i % 2 == 0}})),
            )
            .await;
        }
        let disabled = s
            .call(
                Method::GET,
                "/v3/projects?enabled=false",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(disabled.body["projects"].as_array().unwrap().len(), 2);
        let pre = s
            .call(
                Method::GET,
                "/v3/projects?name__startswith=page-",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(pre.body["projects"].as_array().unwrap().len(), 5);
        let first = s
            .call(
                Method::GET,
                "/v3/projects?name__startswith=page-&limit=2",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(first.body["projects"].as_array().unwrap().len(), 2);
        assert!(
            first.body["links"]["self"]
                .as_str()
                .unwrap()
                .contains("limit=2")
        );
        let mut seen = 2;
        let mut next = first.body["links"]["next"].as_str().map(str::to_string);
        while let Some(url) = next {
            let r = s
                .client
                .get(&url)
                .header("X-Auth-Token", &admin)
                .send()
                .await
                .unwrap();
            let b: serde_json::Value = r.json().await.unwrap();
            seen += b["projects"].as_array().unwrap().len();
            next = b["links"]["next"].as_str().map(str::to_string);
        }
        assert_eq!(seen, 5);
        let one = &pre.body["projects"][0];
        assert_eq!(
            one["links"]["self"],
            format!(
                "{}/identity/v3/projects/{}",
                s.base,
                one["id"].as_str().unwrap()
            )
        );
    }
);

both_backends!(catalog_crud_feeds_tokens, |s: Server| async move {
    let admin = s.admin_token().await;
    let svc = s
        .call(
            Method::POST,
            "/v3/services",
            Some(&admin),
            Some(json!({"service": {"type": "object-store", "name": "swift"}})),
        )
        .await;
    assert_eq!(svc.status, StatusCode::CREATED);
    let sid = svc.body["service"]["id"].as_str().unwrap().to_string();
    let ep = s
        .call(Method::POST, "/v3/endpoints", Some(&admin), Some(json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://swift/v1/AUTH_$(project_id)s", "region_id": "RegionOne"}})))
        .await;
    assert_eq!(ep.status, StatusCode::CREATED, "{}", ep.body);
    assert_eq!(ep.body["endpoint"]["region"], "RegionOne");
    s.call(
        Method::POST,
        "/v3/endpoints",
        Some(&admin),
        Some(json!({"endpoint": {"service_id": sid, "interface": "sideways", "url": "http://x"}})),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);
    let t = s
        .auth("admin", crate::harness::ADMIN_PASSWORD, Some("admin"))
        .await;
    let pid = t.body["token"]["project"]["id"].as_str().unwrap();
    let swift = t.body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "object-store")
        .unwrap()
        .clone();
    assert_eq!(
        swift["endpoints"][0]["url"],
        format!("http://swift/v1/AUTH_{pid}")
    );
    let cat = s
        .call(Method::GET, "/v3/auth/catalog", Some(&admin), None)
        .await;
    assert!(
        cat.body["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "object-store")
    );
    s.call(Method::DELETE, "/v3/regions/RegionOne", Some(&admin), None)
        .await
        .assert_error(StatusCode::FORBIDDEN);
    assert_eq!(
        s.call(
            Method::DELETE,
            &format!("/v3/services/{sid}"),
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let eps = s
        .call(
            Method::GET,
            &format!("/v3/endpoints?service_id={sid}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(eps.body["endpoints"].as_array().unwrap().len(), 0);
});

// Behaviours tempest's identity tests found different from Keystone.
both_backends!(keystone_behaviours_tempest_checks, |s: Server| async move {
    let admin = s.admin_token().await;
    let a = Some(admin.as_str());

    // An endpoint given the v2-style `region` creates that region when missing.
    let svc = s
        .call(
            Method::POST,
            "/v3/services",
            a,
            Some(json!({"service": {"type": "tempest-svc", "name": "t"}})),
        )
        .await;
    let sid = svc.body["service"]["id"].as_str().unwrap().to_string();
    let ep = s
        .call(
            Method::POST,
            "/v3/endpoints",
            a,
            Some(
                json!({"endpoint": {"service_id": sid, "interface": "public",
                    "url": "http://x.example/", "region": "legacy-region"}}),
            ),
        )
        .await;
    assert_eq!(ep.status, StatusCode::CREATED, "{}", ep.body);
    assert_eq!(ep.body["endpoint"]["region_id"], "legacy-region");
    let r = s
        .call(Method::GET, "/v3/regions/legacy-region", a, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let eid = ep.body["endpoint"]["id"].as_str().unwrap().to_string();
    let up = s
        .call(
            Method::PATCH,
            &format!("/v3/endpoints/{eid}"),
            a,
            Some(json!({"endpoint": {"region": "legacy-region-2"}})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    let r = s
        .call(Method::GET, "/v3/regions/legacy-region-2", a, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // `region_id` still has to name an existing region
    s.call(
        Method::POST,
        "/v3/endpoints",
        a,
        Some(
            json!({"endpoint": {"service_id": sid, "interface": "public",
                "url": "http://x.example/", "region_id": "no-such-region"}}),
        ),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);

    // A user (or group) in a domain that does not exist: 404, as get_domain says.
    s.call(
        Method::POST,
        "/v3/users",
        a,
        Some(json!({"user": {"name": "nobody", "domain_id": "0123456789abcdef"}})),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    s.call(
        Method::POST,
        "/v3/groups",
        a,
        Some(json!({"group": {"name": "nogroup", "domain_id": "0123456789abcdef"}})),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);

    // HEAD on an implied-role rule answers 204 (GET: 200 with the rule).
    let role = |name: &str, domain: Option<&str>| {
        let mut body = json!({"role": {"name": name}});
        if let Some(d) = domain {
            body["role"]["domain_id"] = json!(d);
        }
        let s = &s;
        let admin = admin.clone();
        async move {
            let r = s
                .call(Method::POST, "/v3/roles", Some(&admin), Some(body))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["role"]["id"].as_str().unwrap().to_string()
        }
    };
    let prior = role("prior", None).await;
    let implied = role("implied", None).await;
    let rule = format!("/v3/roles/{prior}/implies/{implied}");
    assert_eq!(
        s.call(Method::PUT, &rule, a, None).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        s.call(Method::HEAD, &rule, a, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.call(Method::GET, &rule, a, None).await.status,
        StatusCode::OK
    );

    // A domain-specific role is stripped from effective assignments.
    let (pid, uid) = s
        .project_user(&admin, "dr-p", "dr-u", "dr-pw", "reader")
        .await;
    let domain_role = role("domain-role", Some("default")).await;
    let g = s
        .call(
            Method::PUT,
            &format!("/v3/projects/{pid}/users/{uid}/roles/{domain_role}"),
            a,
            None,
        )
        .await;
    assert_eq!(g.status, StatusCode::NO_CONTENT, "{}", g.body);
    let eff = s
            .call(
                Method::GET,
                &format!(
                    "/v3/role_assignments?effective&scope.project.id={pid}&user.id={uid}&role.id={domain_role}"
                ),
                a,
                None,
            )
            .await;
    assert_eq!(eff.body["role_assignments"], json!([]), "{}", eff.body);
    let direct = s
        .call(
            Method::GET,
            &format!(
                "/v3/role_assignments?scope.project.id={pid}&user.id={uid}&role.id={domain_role}"
            ),
            a,
            None,
        )
        .await;
    assert_eq!(direct.body["role_assignments"].as_array().unwrap().len(), 1);

    // An application credential's expires_at comes back to the microsecond, no zone.
    let me = s.validate(&admin, &admin).await.body["token"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ac = s
        .call(
            Method::POST,
            &format!("/v3/users/{me}/application_credentials"),
            a,
            Some(json!({"application_credential": {"name": "exp",
                    "expires_at": "2099-01-02T03:04:05.123456"}})),
        )
        .await;
    assert_eq!(ac.status, StatusCode::CREATED, "{}", ac.body);
    assert_eq!(
        ac.body["application_credential"]["expires_at"],
        "2099-01-02T03:04:05.123456"
    );
    let id = ac.body["application_credential"]["id"].as_str().unwrap();
    let shown = s
        .call(
            Method::GET,
            &format!("/v3/users/{me}/application_credentials/{id}"),
            a,
            None,
        )
        .await;
    assert_eq!(
        shown.body["application_credential"]["expires_at"],
        "2099-01-02T03:04:05.123456"
    );

    // EC2: a deleted credential is 404; an ec2 blob may change its keys, not its scope.
    let c = s
            .call(
                Method::POST,
                &format!("/v3/users/{me}/credentials/OS-EC2"),
                a,
                Some(json!({"tenant_id": s.validate(&admin, &admin).await.body["token"]["project"]["id"]})),
            )
            .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    let access = c.body["credential"]["access"].as_str().unwrap().to_string();
    let path = format!("/v3/users/{me}/credentials/OS-EC2/{access}");
    assert_eq!(
        s.call(Method::DELETE, &path, a, None).await.status,
        StatusCode::NO_CONTENT
    );
    s.call(Method::GET, &path, a, None)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let pid_admin = s.validate(&admin, &admin).await.body["token"]["project"]["id"].clone();
    let cred = s
        .call(
            Method::POST,
            "/v3/credentials",
            a,
            Some(
                json!({"credential": {"user_id": me, "project_id": pid_admin, "type": "ec2",
                    "blob": "{\"access\": \"a1\", \"secret\": \"s1\"}"}}),
            ),
        )
        .await;
    assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.body);
    let cid = cred.body["credential"]["id"].as_str().unwrap().to_string();
    let up = s
        .call(
            Method::PATCH,
            &format!("/v3/credentials/{cid}"),
            a,
            Some(json!({"credential": {"blob": "{\"access\": \"a2\", \"secret\": \"s2\"}"}})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["credential"]["id"], cid.as_str());
    s.call(
            Method::PATCH,
            &format!("/v3/credentials/{cid}"),
            a,
            Some(json!({"credential": {"blob": "{\"access\": \"a2\", \"secret\": \"s2\", \"trust_id\": \"t\"}"}})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
});

both_backends!(
    a_project_acting_as_a_domain_is_a_domain,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let post = |body: serde_json::Value| {
            let s = &s;
            let admin = admin.clone();
            async move {
                s.call(Method::POST, "/v3/projects", Some(&admin), Some(body))
                    .await
            }
        };

        // Keystone: a project acting as a domain is a root; without a parent_id
        // the domain_id would be its parent, so neither may be given
        for extra in [
            json!({"parent_id": "default"}),
            json!({"domain_id": "default"}),
        ] {
            let mut body = json!({"project": {"name": "pad-bad", "is_domain": true}});
            for (k, v) in extra.as_object().unwrap() {
                body["project"][k] = v.clone();
            }
            let r = post(body).await;
            r.assert_error(StatusCode::BAD_REQUEST);
            let m = r.body["error"]["message"].as_str().unwrap();
            assert!(
                m.starts_with("only root projects are allowed to act as domains."),
                "{m}"
            );
        }

        let r = post(json!({"project": {"name": "pad", "is_domain": true,
                                        "description": "a domain", "tags": ["t1"]}}))
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let p = &r.body["project"];
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(p["name"], "pad");
        assert_eq!(p["is_domain"], true);
        assert!(p["domain_id"].is_null(), "{p}");
        assert!(p["parent_id"].is_null(), "{p}");
        assert_eq!(p["enabled"], true);
        assert_eq!(p["description"], "a domain");
        assert_eq!(p["tags"], json!(["t1"]));
        assert!(
            p["links"]["self"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/v3/projects/{id}")),
            "{p}"
        );

        // it is a domain, with the same id and name
        let r = s
            .call(
                Method::GET,
                &format!("/v3/domains/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["domain"]["name"], "pad");
        let r = s
            .call(Method::GET, "/v3/domains?name=pad", Some(&admin), None)
            .await;
        assert_eq!(r.body["domains"][0]["id"], id.as_str(), "{}", r.body);
        // ... and still a project acting as one
        let r = s
            .call(
                Method::GET,
                &format!("/v3/projects/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["project"]["is_domain"], true);
        assert!(r.body["project"]["domain_id"].is_null());

        // listed only when is_domain is asked for
        let listed = |q: &'static str| {
            let s = &s;
            let admin = admin.clone();
            async move {
                let r = s.call(Method::GET, q, Some(&admin), None).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                r.body["projects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert!(!listed("/v3/projects").await.contains(&id));
        assert!(!listed("/v3/projects?is_domain=false").await.contains(&id));
        let domains = listed("/v3/projects?is_domain=true").await;
        assert!(domains.contains(&id) && domains.contains(&"default".to_string()));
        assert!(
            !domains.contains(
                &s.call(Method::GET, "/v3/projects?name=admin", Some(&admin), None)
                    .await
                    .body["projects"][0]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            )
        );

        // a second one with a taken domain name
        let r = post(json!({"project": {"name": "pad", "is_domain": true}})).await;
        r.assert_error(StatusCode::CONFLICT);
        assert_eq!(
            r.body["error"]["message"],
            "Conflict occurred attempting to store project - it is not permitted to have two \
             projects acting as domains with the same name: pad."
        );

        // usable as a domain: projects go in it
        let r = post(json!({"project": {"name": "inside", "domain_id": id}})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["project"]["domain_id"], id.as_str());
        assert_eq!(r.body["project"]["parent_id"], id.as_str());
        let inside = r.body["project"]["id"].as_str().unwrap().to_string();

        // enabled, it cannot be deleted; disabled (through /v3/projects), it can
        let r = s
            .call(
                Method::DELETE,
                &format!("/v3/projects/{id}"),
                Some(&admin),
                None,
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = s
            .call(
                Method::PATCH,
                &format!("/v3/projects/{id}"),
                Some(&admin),
                Some(json!({"project": {"is_domain": false}})),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .call(
                Method::PATCH,
                &format!("/v3/projects/{id}"),
                Some(&admin),
                Some(json!({"project": {"enabled": false, "description": "off"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["project"]["enabled"], false);
        assert_eq!(r.body["project"]["is_domain"], true);
        let r = s
            .call(
                Method::GET,
                &format!("/v3/domains/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.body["domain"]["enabled"], false);
        assert_eq!(r.body["domain"]["description"], "off");
        let r = s
            .call(
                Method::DELETE,
                &format!("/v3/projects/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        for gone in [
            format!("/v3/domains/{id}"),
            format!("/v3/projects/{inside}"),
        ] {
            let r = s.call(Method::GET, &gone, Some(&admin), None).await;
            r.assert_error(StatusCode::NOT_FOUND);
        }
    }
);
