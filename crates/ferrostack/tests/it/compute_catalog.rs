//! The compute catalog over HTTP: flavors (defaults, CRUD, access, extra specs),
//! key pairs (generate, import, quota, isolation between users), quota sets and
//! limits, hypervisors and services (admin only), availability zones, server
//! groups, and the shapes that change with the microversion.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Backend, Resp, Server};

const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDc238WsrBW2wnbiNN56NsMiLgjaYmvBs6V4R2R7nPLlY1fz5YTqMxuUXRC16hBIbIt175idfi7IXNZVUIF31+IISax+lc69kAUljce3BbtTKbRgp8J6prlv0he17JHh+z66f3V/vGDISkhSoDecUcCEu8DrmFFUq7V/gQ3hDRYEw== test@host";
const RSA_FP: &str = "cb:e8:30:d7:45:8f:ca:05:e3:0e:4e:ee:90:97:60:de";

async fn nova(
    s: &Server,
    token: &str,
    mv: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let mut rb = s
        .client
        .request(method, format!("{}/compute/v2.1{path}", s.base))
        .header("X-Auth-Token", token)
        .header("OpenStack-API-Version", format!("compute {mv}"));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        subject: None,
    }
}

fn assert_fault(r: &Resp, status: StatusCode, fault: &str, message: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body[fault]["code"], status.as_u16(), "{}", r.body);
    let m = r.body[fault]["message"].as_str().unwrap_or_default();
    assert!(m.contains(message), "{m:?} does not contain {message:?}");
}

/// A member of a new project: (token, project id, user id).
async fn member(s: &Server, admin: &str, name: &str) -> (String, String, String) {
    let (pid, uid) = s
        .project_user(admin, name, name, "pw-member", "member")
        .await;
    let r = s.auth(name, "pw-member", Some(name)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.subject.unwrap(), pid, uid)
}

both_backends!(
    flavors_are_seeded_managed_shared_and_specced,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (alice, alice_p, _) = member(&s, &admin, "alice").await;

        // devstack's defaults, sorted by flavorid as strings
        let r = nova(&s, &alice, "2.1", Method::GET, "/flavors/detail", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let ids: Vec<&str> = r.body["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["1", "2", "3", "4", "42", "5", "84"]);
        let tiny = &r.body["flavors"][0];
        assert_eq!(tiny["name"], "m1.tiny");
        assert_eq!(tiny["ram"], 512);
        assert_eq!(tiny["vcpus"], 1);
        assert_eq!(tiny["disk"], 1);
        assert_eq!(tiny["swap"], "");
        assert_eq!(tiny["OS-FLV-EXT-DATA:ephemeral"], 0);
        assert_eq!(tiny["os-flavor-access:is_public"], true);
        assert_eq!(tiny["rxtx_factor"], 1.0);
        assert!(
            tiny["links"][0]["href"]
                .as_str()
                .unwrap()
                .ends_with("/compute/v2.1/flavors/1")
        );
        assert!(tiny.get("extra_specs").is_none());

        // paging, filters
        let r = nova(&s, &alice, "2.1", Method::GET, "/flavors?limit=2", None).await;
        assert_eq!(r.body["flavors"].as_array().unwrap().len(), 2);
        let next = r.body["flavors_links"][0]["href"].as_str().unwrap();
        assert!(next.contains("marker=2"), "{next}");
        let r = nova(&s, &alice, "2.1", Method::GET, "/flavors?marker=5", None).await;
        assert_eq!(r.body["flavors"][0]["id"], "84");
        assert_eq!(r.body["flavors"][0].as_object().unwrap().len(), 3);
        let r = nova(&s, &alice, "2.1", Method::GET, "/flavors?marker=nope", None).await;
        assert_fault(
            &r,
            StatusCode::BAD_REQUEST,
            "badRequest",
            "marker [nope] not found",
        );
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::GET,
            "/flavors/detail?minRam=4096&sort_key=memory_mb&sort_dir=desc",
            None,
        )
        .await;
        let names: Vec<&str> = r.body["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["m1.xlarge", "m1.large", "m1.medium"]);

        // create: admin only, with Nova's policy message
        let body = json!({"flavor": {"name": "fs.priv", "ram": 256, "vcpus": 2, "disk": 3, "id": null,
                                     "swap": 128, "os-flavor-access:is_public": false}});
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::POST,
            "/flavors",
            Some(body.clone()),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::FORBIDDEN,
            "forbidden",
            "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed.",
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::POST,
            "/flavors",
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let fid = r.body["flavor"]["id"].as_str().unwrap().to_string();
        assert_eq!(fid.len(), 36);
        assert_eq!(r.body["flavor"]["swap"], 128);
        assert_eq!(r.body["flavor"]["os-flavor-access:is_public"], false);
        let r = nova(&s, &admin, "2.1", Method::POST, "/flavors", Some(body)).await;
        assert_fault(
            &r,
            StatusCode::CONFLICT,
            "conflictingRequest",
            "Flavor with name fs.priv already exists.",
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::POST,
            "/flavors",
            Some(json!({"flavor": {"name": "other", "ram": 1, "vcpus": 1, "disk": 0, "id": "1"}})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::CONFLICT,
            "conflictingRequest",
            "Flavor with ID 1 already exists.",
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::POST,
            "/flavors",
            Some(json!({"flavor": {"name": "bad", "ram": 0, "vcpus": 1, "disk": 0}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

        // private: hidden from alice until her project gets access
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::GET,
            &format!("/flavors/{fid}"),
            None,
        )
        .await;
        assert_fault(
            &r,
            StatusCode::NOT_FOUND,
            "itemNotFound",
            &format!("Flavor {fid} could not be found."),
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            "/flavors?is_public=None",
            None,
        )
        .await;
        assert!(
            r.body["flavors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == fid.as_str())
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            "/flavors?is_public=false",
            None,
        )
        .await;
        assert_eq!(r.body["flavors"].as_array().unwrap().len(), 1);
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::POST,
            &format!("/flavors/{fid}/action"),
            Some(json!({"addTenantAccess": {"tenant": alice_p}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["flavor_access"],
            json!([{"flavor_id": fid, "tenant_id": alice_p}])
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::POST,
            &format!("/flavors/{fid}/action"),
            Some(json!({"addTenantAccess": {"tenant": alice_p}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::GET,
            &format!("/flavors/{fid}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = nova(&s, &alice, "2.1", Method::GET, "/flavors", None).await;
        assert!(
            r.body["flavors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == fid.as_str())
        );
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::GET,
            &format!("/flavors/{fid}/os-flavor-access"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            &format!("/flavors/{fid}/os-flavor-access"),
            None,
        )
        .await;
        assert_eq!(r.body["flavor_access"][0]["tenant_id"], alice_p.as_str());
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            "/flavors/1/os-flavor-access",
            None,
        )
        .await;
        assert_fault(
            &r,
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "Access list not available for public flavors.",
        );
        let r = nova(
            &s,
            &admin,
            "2.7",
            Method::POST,
            "/flavors/1/action",
            Some(json!({"addTenantAccess": {"tenant": alice_p}})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::CONFLICT,
            "conflictingRequest",
            "Can not add access to a public flavor.",
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::POST,
            &format!("/flavors/{fid}/action"),
            Some(json!({"removeTenantAccess": {"tenant": alice_p}})),
        )
        .await;
        assert_eq!(r.body["flavor_access"], json!([]));
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::GET,
            &format!("/flavors/{fid}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // extra specs
        let specs = format!("/flavors/{fid}/os-extra_specs");
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::POST,
            "/flavors/1/os-extra_specs",
            Some(json!({"extra_specs": {"a": "b"}})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::FORBIDDEN,
            "forbidden",
            "os_compute_api:os-flavor-extra-specs:create",
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::POST,
            &specs,
            Some(json!({"extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": 5}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body,
            json!({"extra_specs": {"hw:cpu_policy": "dedicated", "quota:n": "5"}})
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::PUT,
            &format!("{specs}/quota:n"),
            Some(json!({"quota:n": "6"})),
        )
        .await;
        assert_eq!(r.body, json!({"quota:n": "6"}));
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::PUT,
            &format!("{specs}/quota:n"),
            Some(json!({"other": "6"})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Request body and URI mismatch",
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            &format!("{specs}/quota:n"),
            None,
        )
        .await;
        assert_eq!(r.body, json!({"quota:n": "6"}));
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::DELETE,
            &format!("{specs}/quota:n"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            &format!("{specs}/quota:n"),
            None,
        )
        .await;
        assert_fault(
            &r,
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "has no extra specs with key quota:n.",
        );
        let r = nova(
            &s,
            &admin,
            "2.61",
            Method::GET,
            &format!("/flavors/{fid}"),
            None,
        )
        .await;
        assert_eq!(
            r.body["flavor"]["extra_specs"],
            json!({"hw:cpu_policy": "dedicated"})
        );

        // 2.55 description; 2.75 numeric swap
        let r = nova(
            &s,
            &admin,
            "2.54",
            Method::PUT,
            &format!("/flavors/{fid}"),
            Some(json!({"flavor": {"description": "d"}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = nova(
            &s,
            &admin,
            "2.55",
            Method::PUT,
            &format!("/flavors/{fid}"),
            Some(json!({"flavor": {"description": "small and private"}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["flavor"]["description"], "small and private");
        let r = nova(&s, &admin, "2.75", Method::GET, "/flavors/1", None).await;
        assert_eq!(r.body["flavor"]["swap"], 0);
        assert_eq!(r.body["flavor"]["description"], Value::Null);

        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::DELETE,
            &format!("/flavors/{fid}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            &format!("/flavors/{fid}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
);

both_backends!(
    key_pairs_are_generated_imported_counted_and_private_to_their_user,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (alice, alice_p, alice_u) = member(&s, &admin, "alice").await;
        let (bob, _, _) = member(&s, &admin, "bob").await;

        // generated at 2.1: 200, private key once, no type
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "gen"}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let k = &r.body["keypair"];
        assert!(
            k["private_key"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        assert!(
            k["public_key"]
                .as_str()
                .unwrap()
                .starts_with("ssh-ed25519 ")
        );
        assert_eq!(k["user_id"], alice_u.as_str());
        assert!(k.get("type").is_none());
        let r = nova(&s, &alice, "2.2", Method::GET, "/os-keypairs/gen", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body["keypair"].get("private_key").is_none());
        assert_eq!(r.body["keypair"]["type"], "ssh");
        assert_eq!(r.body["keypair"]["deleted"], false);
        assert!(r.body["keypair"]["id"].is_i64());

        // imported at 2.2: 201, Nova's fingerprint
        let r = nova(
            &s,
            &alice,
            "2.2",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "imp", "public_key": RSA}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["keypair"]["fingerprint"], RSA_FP);
        assert_eq!(r.body["keypair"]["type"], "ssh");
        assert!(r.body["keypair"].get("private_key").is_none());
        let r = nova(
            &s,
            &alice,
            "2.2",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "imp", "public_key": RSA}})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::CONFLICT,
            "conflictingRequest",
            "Key pair 'imp' already exists.",
        );
        let r = nova(
            &s,
            &alice,
            "2.2",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "bad", "public_key": "ssh-rsa AAAA"}})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Keypair data is invalid: failed to generate fingerprint",
        );
        let r = nova(
            &s,
            &alice,
            "2.2",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "key_/.\\@:"}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

        // x509, generated
        let r = nova(
            &s,
            &alice,
            "2.2",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "cert", "type": "x509"}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["keypair"]["type"], "x509");
        assert!(
            r.body["keypair"]["public_key"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert_eq!(r.body["keypair"]["fingerprint"].as_str().unwrap().len(), 59);

        // 2.92: public_key required
        let r = nova(
            &s,
            &alice,
            "2.92",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "nokey"}})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::BAD_REQUEST,
            "badRequest",
            "'public_key' is a required property",
        );

        // list: 2.1 without type; 2.35 paging
        let r = nova(&s, &alice, "2.1", Method::GET, "/os-keypairs", None).await;
        let names: Vec<&str> = r.body["keypairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keypair"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["gen", "imp", "cert"]);
        assert!(r.body["keypairs"][0]["keypair"].get("type").is_none());
        let r = nova(
            &s,
            &alice,
            "2.35",
            Method::GET,
            "/os-keypairs?limit=1&marker=gen",
            None,
        )
        .await;
        assert_eq!(r.body["keypairs"][0]["keypair"]["name"], "imp");
        assert!(
            r.body["keypairs_links"][0]["href"]
                .as_str()
                .unwrap()
                .contains("marker=imp")
        );

        // another user sees none of them
        let r = nova(&s, &bob, "2.10", Method::GET, "/os-keypairs", None).await;
        assert_eq!(r.body["keypairs"], json!([]));
        let r = nova(&s, &bob, "2.10", Method::GET, "/os-keypairs/imp", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        let r = nova(
            &s,
            &bob,
            "2.10",
            Method::GET,
            &format!("/os-keypairs?user_id={alice_u}"),
            None,
        )
        .await;
        assert_fault(
            &r,
            StatusCode::FORBIDDEN,
            "forbidden",
            "os_compute_api:os-keypairs:index",
        );
        let r = nova(
            &s,
            &admin,
            "2.10",
            Method::GET,
            &format!("/os-keypairs?user_id={alice_u}"),
            None,
        )
        .await;
        assert_eq!(r.body["keypairs"].as_array().unwrap().len(), 3);
        let r = nova(
            &s,
            &admin,
            "2.10",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "for-alice", "public_key": RSA, "user_id": alice_u}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["keypair"]["user_id"], alice_u.as_str());

        // quota key_pairs (per user, limit from the project)
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::PUT,
            &format!("/os-quota-sets/{alice_p}"),
            Some(json!({"quota_set": {"key_pairs": 4, "force": true}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = nova(
            &s,
            &alice,
            "2.2",
            Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "fifth", "public_key": RSA}})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::FORBIDDEN,
            "forbidden",
            "Quota exceeded, too many key pairs.",
        );

        // delete: 202 at 2.1, 204 at 2.2; then 404
        let r = nova(&s, &alice, "2.1", Method::DELETE, "/os-keypairs/gen", None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let r = nova(&s, &alice, "2.2", Method::DELETE, "/os-keypairs/imp", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = nova(&s, &alice, "2.2", Method::DELETE, "/os-keypairs/imp", None).await;
        assert_fault(
            &r,
            StatusCode::NOT_FOUND,
            "itemNotFound",
            &format!("Keypair imp not found for user {alice_u}"),
        );
    }
);

both_backends!(quota_sets_and_limits_follow_nova, |s: Server| async move {
    let admin = s.admin_token().await;
    let (alice, alice_p, _) = member(&s, &admin, "alice").await;
    let (_, bob_p, _) = member(&s, &admin, "bob").await;

    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::GET,
        &format!("/os-quota-sets/{alice_p}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let q = &r.body["quota_set"];
    assert_eq!(q["id"], alice_p.as_str());
    assert_eq!(q["instances"], 10);
    assert_eq!(q["cores"], 20);
    assert_eq!(q["ram"], 51200);
    assert_eq!(q["floating_ips"], -1);
    assert_eq!(q["injected_files"], 5);
    let r = nova(
        &s,
        &alice,
        "2.57",
        Method::GET,
        &format!("/os-quota-sets/{alice_p}"),
        None,
    )
    .await;
    assert!(r.body["quota_set"].get("injected_files").is_none());
    assert!(r.body["quota_set"].get("floating_ips").is_none());
    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::GET,
        &format!("/os-quota-sets/{bob_p}"),
        None,
    )
    .await;
    assert_fault(
        &r,
        StatusCode::FORBIDDEN,
        "forbidden",
        "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.",
    );

    // set (admin), validate, detail, defaults, reset
    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::PUT,
        &format!("/os-quota-sets/{alice_p}"),
        Some(json!({"quota_set": {"instances": 5}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = nova(
        &s,
        &admin,
        "2.1",
        Method::PUT,
        &format!("/os-quota-sets/{alice_p}"),
        Some(json!({"quota_set": {"instances": 5, "cores": "8", "ram": -1}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["quota_set"]["instances"], 5);
    assert!(r.body["quota_set"].get("id").is_none());
    let r = nova(
        &s,
        &admin,
        "2.1",
        Method::PUT,
        &format!("/os-quota-sets/{alice_p}"),
        Some(json!({"quota_set": {"instances": -2}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = nova(
        &s,
        &admin,
        "2.1",
        Method::PUT,
        &format!("/os-quota-sets/{alice_p}"),
        Some(json!({"quota_set": {"bogus": 1}})),
    )
    .await;
    assert_fault(
        &r,
        StatusCode::BAD_REQUEST,
        "badRequest",
        "Additional properties are not allowed",
    );
    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::GET,
        &format!("/os-quota-sets/{alice_p}/detail"),
        None,
    )
    .await;
    assert_eq!(
        r.body["quota_set"]["cores"],
        json!({"in_use": 0, "limit": 8, "reserved": 0})
    );
    assert_eq!(r.body["quota_set"]["ram"]["limit"], -1);
    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::GET,
        &format!("/os-quota-sets/{alice_p}/defaults"),
        None,
    )
    .await;
    assert_eq!(r.body["quota_set"]["instances"], 10);

    // limits
    let r = nova(&s, &alice, "2.1", Method::GET, "/limits", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = &r.body["limits"]["absolute"];
    assert_eq!(r.body["limits"]["rate"], json!([]));
    assert_eq!(a["maxTotalInstances"], 5);
    assert_eq!(a["maxTotalCores"], 8);
    assert_eq!(a["maxTotalRAMSize"], -1);
    assert_eq!(a["totalInstancesUsed"], 0);
    assert_eq!(a["maxTotalFloatingIps"], -1);
    assert_eq!(a["maxImageMeta"], 128);
    assert_eq!(a["maxPersonality"], 5);
    let r = nova(&s, &alice, "2.57", Method::GET, "/limits", None).await;
    let a = r.body["limits"]["absolute"].as_object().unwrap();
    for gone in [
        "maxTotalFloatingIps",
        "maxImageMeta",
        "maxPersonality",
        "maxPersonalitySize",
    ] {
        assert!(!a.contains_key(gone), "{gone}");
    }
    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::GET,
        &format!("/limits?tenant_id={bob_p}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = nova(
        &s,
        &admin,
        "2.1",
        Method::GET,
        &format!("/limits?tenant_id={alice_p}"),
        None,
    )
    .await;
    assert_eq!(r.body["limits"]["absolute"]["maxTotalInstances"], 5);

    let r = nova(
        &s,
        &admin,
        "2.1",
        Method::DELETE,
        &format!("/os-quota-sets/{alice_p}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::GET,
        &format!("/os-quota-sets/{alice_p}"),
        None,
    )
    .await;
    assert_eq!(r.body["quota_set"]["instances"], 10);

    // the default quota class changes everyone's defaults
    let r = nova(
        &s,
        &admin,
        "2.50",
        Method::PUT,
        "/os-quota-class-sets/default",
        Some(json!({"quota_class_set": {"instances": 7, "server_groups": 3}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["quota_class_set"]["instances"], 7);
    // reading a quota class is admin-only, as Nova's ADMIN rule
    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::GET,
        "/os-quota-class-sets/default",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = nova(
        &s,
        &admin,
        "2.1",
        Method::GET,
        "/os-quota-class-sets/default",
        None,
    )
    .await;
    assert_eq!(r.body["quota_class_set"]["id"], "default");
    assert_eq!(r.body["quota_class_set"]["floating_ips"], -1);
    let r = nova(
        &s,
        &alice,
        "2.1",
        Method::GET,
        &format!("/os-quota-sets/{bob_p}/defaults"),
        None,
    )
    .await;
    assert_eq!(r.body["quota_set"]["instances"], 7);
    let r = nova(&s, &alice, "2.1", Method::GET, "/limits", None).await;
    assert_eq!(r.body["limits"]["absolute"]["maxTotalInstances"], 7);
    assert_eq!(r.body["limits"]["absolute"]["maxServerGroups"], 3);
});

/// Registers a compute host the way an agent does (the table the agent writes).
async fn register_host(s: &Server, name: &str, zone: &str) {
    let url = match &s.database {
        Some(u) => u.clone(),
        None => ferrostack_core::Db::sqlite_url(&s.state().join("ferrostack.db")),
    };
    let db = ferrostack_core::Db::connect(&url, 1).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let t = |b: bool| -> &'static str {
        match (s.database.is_some(), b) {
            (true, true) => "TRUE",
            (true, false) => "FALSE",
            (false, true) => "1",
            (false, false) => "0",
        }
    };
    let sql = format!(
        "INSERT INTO hosts (id, name, service_id, availability_zone, enabled, disabled_reason, forced_down, \
         hypervisor_type, hypervisor_version, vcpus, memory_mb, local_gb, cpu_allocation_ratio, \
         ram_allocation_ratio, disk_allocation_ratio, reserved_host_memory_mb, reserved_host_disk_mb, \
         host_ip, last_seen_us, created_at_us, updated_at_us) VALUES \
         ($1, $2, $3, $4, {}, NULL, {}, 'fake', 1000, 16, 32768, 500, 16.0, 1.5, 1.0, 512, 0, '127.0.0.1', $5, $5, $5)",
        t(true),
        t(false)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(format!(
            "{:0>8}-0000-4000-8000-{:0>12}",
            name.len(),
            name.len()
        ))
        .bind(name)
        .bind(format!(
            "{:0>8}-1111-4000-8000-{:0>12}",
            name.len(),
            name.len()
        ))
        .bind(zone)
        .bind(now)
        .execute(db.pool())
        .await
        .unwrap();
    db.close().await;
}

both_backends!(
    hypervisors_services_and_zones_are_for_admins,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (alice, _, _) = member(&s, &admin, "alice").await;
        register_host(&s, "fs-test-host", "az1").await;

        for path in [
            "/os-hypervisors",
            "/os-hypervisors/detail",
            "/os-hypervisors/statistics",
            "/os-services",
            "/os-availability-zone/detail",
        ] {
            let r = nova(&s, &alice, "2.1", Method::GET, path, None).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
            assert!(
                r.body["forbidden"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Policy doesn't allow os_compute_api:")
            );
        }

        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            "/os-hypervisors/detail",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let list = r.body["hypervisors"].as_array().unwrap();
        let h = list
            .iter()
            .find(|h| h["hypervisor_hostname"] == "fs-test-host")
            .unwrap();
        assert!(h["id"].is_i64());
        assert_eq!(h["state"], "up");
        assert_eq!(h["status"], "enabled");
        assert_eq!(h["vcpus"], 16);
        assert_eq!(h["memory_mb_used"], 512);
        assert_eq!(h["running_vms"], 0);
        assert_eq!(h["hypervisor_type"], "fake");
        let num = h["id"].as_i64().unwrap();
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            &format!("/os-hypervisors/{num}"),
            None,
        )
        .await;
        assert_eq!(r.body["hypervisor"]["hypervisor_hostname"], "fs-test-host");

        let r = nova(
            &s,
            &admin,
            "2.53",
            Method::GET,
            "/os-hypervisors?hypervisor_hostname_pattern=fs-test",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let uuid = r.body["hypervisors"][0]["id"].as_str().unwrap().to_string();
        let r = nova(
            &s,
            &admin,
            "2.88",
            Method::GET,
            &format!("/os-hypervisors/{uuid}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body["hypervisor"].get("vcpus").is_none());
        let r = nova(
            &s,
            &admin,
            "2.88",
            Method::GET,
            "/os-hypervisors/statistics",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            "/os-hypervisors/statistics",
            None,
        )
        .await;
        assert!(r.body["hypervisor_statistics"]["count"].as_i64().unwrap() >= 1);
        let r = nova(
            &s,
            &admin,
            "2.53",
            Method::GET,
            "/os-hypervisors?hypervisor_hostname_pattern=nomatch",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // services: disable with a reason (2.53), then the old API re-enables
        let r = nova(
            &s,
            &admin,
            "2.53",
            Method::GET,
            "/os-services?binary=nova-compute&host=fs-test-host",
            None,
        )
        .await;
        let svc = &r.body["services"][0];
        assert_eq!(svc["zone"], "az1");
        assert_eq!(svc["forced_down"], false);
        let sid = svc["id"].as_str().unwrap().to_string();
        let r = nova(&s, &admin, "2.1", Method::GET, "/os-services", None).await;
        assert!(
            r.body["services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["binary"] == "nova-scheduler")
        );
        let r = nova(
            &s,
            &admin,
            "2.53",
            Method::PUT,
            &format!("/os-services/{sid}"),
            Some(json!({"status": "disabled", "disabled_reason": "maintenance"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["service"]["status"], "disabled");
        assert_eq!(r.body["service"]["disabled_reason"], "maintenance");
        let r = nova(
            &s,
            &admin,
            "2.53",
            Method::PUT,
            &format!("/os-services/{sid}"),
            Some(json!({"status": "enabled", "disabled_reason": "x"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = nova(
            &s,
            &admin,
            "2.53",
            Method::PUT,
            &format!("/os-services/{sid}"),
            Some(json!({"forced_down": true})),
        )
        .await;
        assert_eq!(r.body["service"]["state"], "down");
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            "/os-availability-zone",
            None,
        )
        .await;
        assert!(
            !r.body["availabilityZoneInfo"]
                .as_array()
                .unwrap()
                .iter()
                .any(|z| z["zoneName"] == "az1" && z["zoneState"]["available"] == true)
        );
        let r = nova(
            &s,
            &admin,
            "2.11",
            Method::PUT,
            "/os-services/enable",
            Some(json!({"host": "fs-test-host", "binary": "nova-compute"})),
        )
        .await;
        assert_eq!(
            r.body,
            json!({"service": {"host": "fs-test-host", "binary": "nova-compute", "status": "enabled"}})
        );
        let r = nova(
            &s,
            &admin,
            "2.11",
            Method::PUT,
            "/os-services/force-down",
            Some(json!({"host": "fs-test-host", "binary": "nova-compute", "forced_down": false})),
        )
        .await;
        assert_eq!(r.body["service"]["forced_down"], false);

        // zones
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::GET,
            "/os-availability-zone",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let z = r.body["availabilityZoneInfo"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zoneName"] == "az1")
            .cloned()
            .unwrap();
        assert_eq!(
            z,
            json!({"zoneName": "az1", "zoneState": {"available": true}, "hosts": null})
        );
        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::GET,
            "/os-availability-zone/detail",
            None,
        )
        .await;
        let zones = r.body["availabilityZoneInfo"].as_array().unwrap();
        assert_eq!(zones[0]["zoneName"], "internal");
        let z = zones.iter().find(|z| z["zoneName"] == "az1").unwrap();
        assert_eq!(
            z["hosts"]["fs-test-host"]["nova-compute"]["available"],
            true
        );
    }
);

both_backends!(
    server_groups_have_policies_and_a_quota,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (alice, alice_p, _) = member(&s, &admin, "alice").await;
        let (bob, _, _) = member(&s, &admin, "bob").await;
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::POST,
            "/os-server-groups",
            Some(json!({"server_group": {"name": "g1", "policies": ["anti-affinity"]}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["server_group"]["policies"], json!(["anti-affinity"]));
        assert_eq!(r.body["server_group"]["members"], json!([]));
        let g1 = r.body["server_group"]["id"].as_str().unwrap().to_string();
        let r = nova(&s, &alice, "2.64", Method::POST, "/os-server-groups",
            Some(json!({"server_group": {"name": "g2", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}}))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["server_group"]["rules"],
            json!({"max_server_per_host": 2})
        );
        assert_eq!(r.body["server_group"]["project_id"], alice_p.as_str());
        let r = nova(
            &s,
            &alice,
            "2.64",
            Method::GET,
            &format!("/os-server-groups/{g1}"),
            None,
        )
        .await;
        assert_eq!(r.body["server_group"]["policy"], "anti-affinity");
        let r = nova(&s, &bob, "2.1", Method::GET, "/os-server-groups", None).await;
        assert_eq!(r.body["server_groups"], json!([]));
        let r = nova(
            &s,
            &bob,
            "2.1",
            Method::GET,
            &format!("/os-server-groups/{g1}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

        let r = nova(
            &s,
            &admin,
            "2.1",
            Method::PUT,
            &format!("/os-quota-sets/{alice_p}"),
            Some(json!({"quota_set": {"server_groups": 2}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::POST,
            "/os-server-groups",
            Some(json!({"server_group": {"name": "g3", "policies": ["affinity"]}})),
        )
        .await;
        assert_fault(
            &r,
            StatusCode::FORBIDDEN,
            "forbidden",
            "Quota exceeded, too many server groups.",
        );
        let r = nova(&s, &alice, "2.1", Method::GET, "/limits", None).await;
        assert_eq!(r.body["limits"]["absolute"]["totalServerGroupsUsed"], 2);

        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::DELETE,
            &format!("/os-server-groups/{g1}"),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = nova(
            &s,
            &alice,
            "2.1",
            Method::GET,
            &format!("/os-server-groups/{g1}"),
            None,
        )
        .await;
        assert_fault(
            &r,
            StatusCode::NOT_FOUND,
            "itemNotFound",
            &format!("Instance group {g1} could not be found."),
        );
    }
);

both_backends!(
    flavor_ids_may_be_numbers_and_is_public_takes_novas_strings,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let create = |body: Value| {
            let s = &s;
            let admin = admin.clone();
            async move {
                nova(
                    s,
                    &admin,
                    "2.1",
                    Method::POST,
                    "/flavors",
                    Some(json!({"flavor": body})),
                )
                .await
            }
        };
        // an integer id is stored as its decimal string
        let r = create(json!({"name": "fs.int", "ram": 64, "vcpus": 1, "disk": 0,
                              "id": 835001500, "os-flavor-access:is_public": "True"}))
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["flavor"]["id"], "835001500");
        assert_eq!(r.body["flavor"]["os-flavor-access:is_public"], true);
        let r = nova(&s, &admin, "2.1", Method::GET, "/flavors/835001500", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["flavor"]["name"], "fs.int");
        let r = create(json!({"name": "fs.int2", "ram": 64, "vcpus": 1, "disk": 0,
                              "id": 835001500}))
        .await;
        assert_fault(
            &r,
            StatusCode::CONFLICT,
            "conflictingRequest",
            "Flavor with ID 835001500 already exists.",
        );
        // floats and negative numbers too: Nova's pattern binds strings only
        let r = create(
            json!({"name": "fs.float", "ram": 64, "vcpus": 1, "disk": 0, "id": 1.5,
                              "os-flavor-access:is_public": "0"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["flavor"]["id"], "1.5");
        assert_eq!(r.body["flavor"]["os-flavor-access:is_public"], false);
        let r = create(
            json!({"name": "fs.neg", "ram": 64, "vcpus": 1, "disk": 0, "id": -7,
                              "os-flavor-access:is_public": "false"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["flavor"]["id"], "-7");
        assert_eq!(r.body["flavor"]["os-flavor-access:is_public"], false);
        // zero is no id: one is generated
        let r = create(json!({"name": "fs.zero", "ram": 64, "vcpus": 1, "disk": 0, "id": 0})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["flavor"]["id"].as_str().unwrap().len(), 36);
        // what the schema refuses
        let r =
            create(json!({"name": "fs.bool", "ram": 64, "vcpus": 1, "disk": 0, "id": true})).await;
        assert_fault(
            &r,
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Invalid input for field/attribute id. Value: True. True is not of type 'string', 'number', 'null'",
        );
        let r = create(json!({"name": "fs.yes", "ram": 64, "vcpus": 1, "disk": 0,
                              "os-flavor-access:is_public": "maybe"}))
        .await;
        assert_fault(
            &r,
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Invalid input for field/attribute os-flavor-access:is_public. Value: maybe. 'maybe' is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']",
        );
    }
);
