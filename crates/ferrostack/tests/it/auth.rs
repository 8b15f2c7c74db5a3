//! Tokens: issue, validate, revoke, rescope, expiry, bad input, disabled entities,
//! application credentials, EC2 token errors.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_PASSWORD, Backend, Server};

both_backends!(
    discovery_answers_in_keystoneauth_shapes,
    |s: Server| async move {
        let r = s.call(Method::GET, "", None, None).await;
        assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
        let v = &r.body["versions"]["values"][0];
        assert_eq!(v["id"], "v3.14");
        assert_eq!(v["status"], "stable");
        assert_eq!(v["links"][0]["rel"], "self");
        assert_eq!(v["links"][0]["href"], format!("{}/identity/v3/", s.base));
        let id = r.headers["x-openstack-request-id"].to_str().unwrap();
        assert!(id.starts_with("req-") && id.len() == 40, "{id}");
        let r = s.call(Method::GET, "/v3", None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["version"]["id"], "v3.14");
        // errors carry a request id too
        let r = s.call(Method::GET, "/v3/nothing-here", None, None).await;
        r.assert_error(StatusCode::NOT_FOUND);
        assert!(r.headers.contains_key("x-openstack-request-id"));
    }
);

both_backends!(token_issue_validate_revoke, |s: Server| async move {
    let r = s.auth("admin", ADMIN_PASSWORD, Some("admin")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let t = r.subject.clone().unwrap();
    let tok = &r.body["token"];
    assert_eq!(tok["methods"], json!(["password"]));
    assert_eq!(tok["user"]["name"], "admin");
    assert_eq!(tok["user"]["domain"]["id"], "default");
    assert_eq!(tok["project"]["name"], "admin");
    assert!(tok["expires_at"].as_str().unwrap().ends_with(".000000Z"));
    assert_eq!(tok["audit_ids"].as_array().unwrap().len(), 1);
    let roles: Vec<&str> = tok["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in ["admin", "member", "reader"] {
        assert!(roles.contains(&want), "implied roles expanded: {roles:?}");
    }
    let types: Vec<&str> = tok["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    for want in ["identity", "image", "compute", "network", "ec2"] {
        assert!(types.contains(&want), "{types:?}");
    }

    let v = s.validate(&t, &t).await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(v.subject.as_deref(), Some(t.as_str()));
    assert_eq!(v.body["token"]["audit_ids"], tok["audit_ids"]);
    let nocat = s.call(Method::POST, "/v3/auth/tokens?nocatalog", None, Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": t}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))).await;
    assert_eq!(nocat.status, StatusCode::CREATED, "{}", nocat.body);
    assert!(nocat.body["token"].get("catalog").is_none());
    let head = s
        .client
        .head(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &t)
        .header("X-Subject-Token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);

    let other = s.admin_token().await;
    let del = s
        .client
        .delete(s.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &other)
        .header("X-Subject-Token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    s.validate(&other, &t)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let r = s.call(Method::GET, "/v3/projects", Some(&t), None).await;
    r.assert_error(StatusCode::UNAUTHORIZED);
    let www = r.headers["www-authenticate"].to_str().unwrap();
    assert_eq!(www, format!("Keystone uri=\"{}/identity\"", s.base));
    // the other token is untouched by revoking this one
    assert_eq!(s.validate(&other, &other).await.status, StatusCode::OK);
});

both_backends!(
    rescoping_keeps_expiry_and_chains_audit_ids,
    |s: Server| async move {
        let unscoped = s.auth("admin", ADMIN_PASSWORD, None).await;
        assert_eq!(unscoped.status, StatusCode::CREATED);
        assert!(unscoped.body["token"].get("project").is_none());
        assert!(unscoped.body["token"].get("catalog").is_none());
        let t = unscoped.subject.unwrap();
        let parent_audit = unscoped.body["token"]["audit_ids"][0].clone();
        let r = s
            .call(
                Method::POST,
                "/v3/auth/tokens",
                None,
                Some(
                    json!({"auth": {"identity": {"methods": ["token"], "token": {"id": t}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(
            r.body["token"]["expires_at"],
            unscoped.body["token"]["expires_at"]
        );
        assert_eq!(r.body["token"]["audit_ids"][1], parent_audit);
        assert_eq!(r.body["token"]["methods"], json!(["token", "password"]));
        let sys = s
        .call(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": t}}, "scope": {"system": {"all": true}}}})),
        )
        .await;
        assert_eq!(sys.status, StatusCode::CREATED, "{}", sys.body);
        assert_eq!(sys.body["token"]["system"], json!({"all": true}));
    }
);

both_backends!(bad_input_gets_keystone_errors, |s: Server| async move {
    let bad_json = s
        .client
        .post(s.url("/v3/auth/tokens"))
        .header("content-type", "application/json")
        .body("{\"auth\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = bad_json.json().await.unwrap();
    assert_eq!(body["error"]["title"], "Bad Request");
    s.call(
        Method::POST,
        "/v3/auth/tokens",
        None,
        Some(json!({"nope": 1})),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);
    s.auth("admin", "wrong", Some("admin"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    s.auth("nobody", "wrong", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    let totp = s
        .call(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(json!({"auth": {"identity": {"methods": ["totp"], "totp": {}}}})),
        )
        .await;
    totp.assert_error(StatusCode::UNAUTHORIZED);
    s.call(Method::GET, "/v3/projects", Some("gAAAAAgarbage"), None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    s.call(Method::GET, "/v3/projects", None, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    let admin = s.admin_token().await;
    s.validate(&admin, "gAAAAAgarbage")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let r = s
        .call(Method::PATCH, "/v3/auth/tokens", Some(&admin), None)
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED);
    // a project scope that does not exist
    let r = s
        .call(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"project": {"id": "does-not-exist"}}}}),
            ),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED);
});

both_backends!(
    disabled_users_projects_and_domains_lose_their_tokens,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (pid, uid) = s.project_user(&admin, "p1", "u1", "pw1", "member").await;
        let u_tok = s.auth("u1", "pw1", Some("p1")).await.subject.unwrap();
        assert_eq!(s.validate(&admin, &u_tok).await.status, StatusCode::OK);

        let r = s
            .call(
                Method::PATCH,
                &format!("/v3/users/{uid}"),
                Some(&admin),
                Some(json!({"user": {"enabled": false}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        s.validate(&admin, &u_tok)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.auth("u1", "pw1", Some("p1")).await;
        r.assert_error(StatusCode::UNAUTHORIZED);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("disabled")
        );
        // re-enabling does not resurrect the old token
        s.call(
            Method::PATCH,
            &format!("/v3/users/{uid}"),
            Some(&admin),
            Some(json!({"user": {"enabled": true}})),
        )
        .await;
        s.validate(&admin, &u_tok)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let u_tok = s.auth("u1", "pw1", Some("p1")).await.subject.unwrap();

        s.call(
            Method::PATCH,
            &format!("/v3/projects/{pid}"),
            Some(&admin),
            Some(json!({"project": {"enabled": false}})),
        )
        .await;
        s.validate(&admin, &u_tok)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.auth("u1", "pw1", Some("p1"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        s.call(
            Method::PATCH,
            &format!("/v3/projects/{pid}"),
            Some(&admin),
            Some(json!({"project": {"enabled": true}})),
        )
        .await;

        // a user in another domain; disabling the domain kills its tokens
        let d = s
            .call(
                Method::POST,
                "/v3/domains",
                Some(&admin),
                Some(json!({"domain": {"name": "d9"}})),
            )
            .await;
        let did = d.body["domain"]["id"].as_str().unwrap().to_string();
        let u = s
            .call(
                Method::POST,
                "/v3/users",
                Some(&admin),
                Some(json!({"user": {"name": "du", "domain_id": did, "password": "dpw"}})),
            )
            .await;
        let duid = u.body["user"]["id"].as_str().unwrap().to_string();
        let reader = s
            .call(Method::GET, "/v3/roles?name=reader", Some(&admin), None)
            .await
            .body["roles"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let g = s
            .call(
                Method::PUT,
                &format!("/v3/domains/{did}/users/{duid}/roles/{reader}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(g.status, StatusCode::NO_CONTENT);
        let dtok = s
            .call(
                Method::POST,
                "/v3/auth/tokens",
                None,
                Some(
                    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": duid, "password": "dpw"}}}, "scope": {"domain": {"id": did}}}}),
                ),
            )
            .await;
        assert_eq!(dtok.status, StatusCode::CREATED, "{}", dtok.body);
        assert_eq!(dtok.body["token"]["domain"]["id"], did.as_str());
        let dtok = dtok.subject.unwrap();
        s.call(
            Method::PATCH,
            &format!("/v3/domains/{did}"),
            Some(&admin),
            Some(json!({"domain": {"enabled": false}})),
        )
        .await;
        s.validate(&admin, &dtok)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
);

both_backends!(
    password_change_by_the_user_revokes_its_tokens,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (_, uid) = s.project_user(&admin, "p1", "u1", "old-pw", "member").await;
        let t = s.auth("u1", "old-pw", Some("p1")).await.subject.unwrap();
        let wrong = s
            .call(
                Method::POST,
                &format!("/v3/users/{uid}/password"),
                Some(&t),
                Some(json!({"user": {"password": "new-pw", "original_password": "nope"}})),
            )
            .await;
        wrong.assert_error(StatusCode::UNAUTHORIZED);
        let ok = s
            .call(
                Method::POST,
                &format!("/v3/users/{uid}/password"),
                Some(&t),
                Some(json!({"user": {"password": "new-pw", "original_password": "old-pw"}})),
            )
            .await;
        assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
        s.validate(&admin, &t)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.auth("u1", "old-pw", Some("p1"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        assert_eq!(
            s.auth("u1", "new-pw", Some("p1")).await.status,
            StatusCode::CREATED
        );
    }
);

both_backends!(
    application_credentials_delegate_a_subset_of_roles,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (pid, uid) = s.project_user(&admin, "p1", "u1", "pw", "member").await;
        let t = s.auth("u1", "pw", Some("p1")).await.subject.unwrap();
        let r = s
        .call(
            Method::POST,
            &format!("/v3/users/{uid}/application_credentials"),
            Some(&t),
            Some(json!({"application_credential": {"name": "ci", "roles": [{"name": "reader"}]}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let ac = &r.body["application_credential"];
        let (id, secret) = (
            ac["id"].as_str().unwrap().to_string(),
            ac["secret"].as_str().unwrap().to_string(),
        );
        assert_eq!(ac["project_id"], pid.as_str());
        // the secret is shown once
        let shown = s
            .call(
                Method::GET,
                &format!("/v3/users/{uid}/application_credentials/{id}"),
                Some(&t),
                None,
            )
            .await;
        assert!(shown.body["application_credential"].get("secret").is_none());
        // a role the user does not have cannot be delegated
        let r = s
            .call(
                Method::POST,
                &format!("/v3/users/{uid}/application_credentials"),
                Some(&t),
                Some(
                    json!({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}}),
                ),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let auth = |secret: String| json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret}}}});
        let r = s
            .call(
                Method::POST,
                "/v3/auth/tokens",
                None,
                Some(auth(secret.clone())),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["token"]["project"]["id"], pid.as_str());
        let names: Vec<&str> = r.body["token"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["reader"]);
        assert_eq!(
            r.body["token"]["application_credential"]["restricted"],
            true
        );
        let ac_tok = r.subject.unwrap();
        // a restricted application credential cannot mint more credentials
        let r = s
            .call(
                Method::POST,
                &format!("/v3/users/{uid}/application_credentials"),
                Some(&ac_tok),
                Some(json!({"application_credential": {"name": "y"}})),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        s.call(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(auth("wrong".into())),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
        let d = s
            .call(
                Method::DELETE,
                &format!("/v3/users/{uid}/application_credentials/{id}"),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
        s.call(Method::POST, "/v3/auth/tokens", None, Some(auth(secret)))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        s.validate(&admin, &ac_tok)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
);

both_backends!(
    ec2tokens_requires_an_admin_or_service_caller,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (_, uid) = s.project_user(&admin, "p1", "u1", "pw", "member").await;
        let t = s.auth("u1", "pw", Some("p1")).await.subject.unwrap();
        let pid = s
            .call(Method::GET, "/v3/auth/projects", Some(&t), None)
            .await
            .body["projects"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let c = s
            .call(
                Method::POST,
                &format!("/v3/users/{uid}/credentials/OS-EC2"),
                Some(&t),
                Some(json!({"tenant_id": pid})),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
        let access = c.body["credential"]["access"].as_str().unwrap().to_string();
        let creds = json!({"credentials": {"access": access, "signature": "bm90IGEgc2lnbmF0dXJl", "host": "h", "verb": "GET", "path": "/", "params": {"Action": "DescribeRegions", "SignatureVersion": "2", "SignatureMethod": "HmacSHA256"}, "headers": {}, "body_hash": ""}});
        s.call(Method::POST, "/v3/ec2tokens", None, Some(creds.clone()))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        s.call(Method::POST, "/v3/ec2tokens", Some(&t), Some(creds.clone()))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.call(
            Method::POST,
            "/v3/ec2tokens",
            Some(&admin),
            Some(creds.clone()),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
        let mut unknown = creds.clone();
        unknown["credentials"]["access"] = json!("0123");
        s.call(Method::POST, "/v3/ec2tokens", Some(&admin), Some(unknown))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.call(Method::POST, "/v3/ec2tokens", Some(&admin), Some(json!({})))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .call(Method::GET, "/v3/ec2tokens", Some(&admin), None)
            .await;
        r.assert_error(StatusCode::METHOD_NOT_ALLOWED);
        // the blob is encrypted at rest: the secret does not appear in the database file
        let secret = c.body["credential"]["secret"].as_str().unwrap().to_string();
        if s.database.is_none() {
            let mut found = false;
            for f in ["ferrostack.db", "ferrostack.db-wal"] {
                if let Ok(bytes) = std::fs::read(s.state().join(f)) {
                    found |= bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                }
            }
            assert!(!found, "EC2 secret stored in clear");
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_fail_unless_allow_expired() {
    let s = Server::start(Backend::Sqlite, &[("FERROSTACK_TOKEN__EXPIRATION", "2")]).unwrap();
    let admin = s.admin_token().await;
    let short = s.admin_token().await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let fresh = s.admin_token().await;
    s.validate(&fresh, &short)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let r = s
        .client
        .get(s.url("/v3/auth/tokens?allow_expired=1"))
        .header("X-Auth-Token", &fresh)
        .header("X-Subject-Token", &short)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.call(Method::GET, "/v3/projects", Some(&admin), None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_when_configured() {
    let s = Server::start(
        Backend::Sqlite,
        &[
            (
                "FERROSTACK_SECURITY_COMPLIANCE__LOCKOUT_FAILURE_ATTEMPTS",
                "2",
            ),
            ("FERROSTACK_SECURITY_COMPLIANCE__LOCKOUT_DURATION", "600"),
        ],
    )
    .unwrap();
    let admin = s.admin_token().await;
    s.project_user(&admin, "p1", "u1", "pw", "member").await;
    s.auth("u1", "bad", Some("p1"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    s.auth("u1", "bad", Some("p1"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    let r = s.auth("u1", "pw", Some("p1")).await;
    r.assert_error(StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("locked"),
        "{}",
        r.body
    );
}
