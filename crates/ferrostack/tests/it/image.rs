//! The image service's data path over HTTP: a client that goes away mid-upload,
//! interactive import (stage + glance-direct), and ranged reads.

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Backend, Server};

fn image_url(s: &Server, path: &str) -> String {
    format!("{}/image{path}", s.base)
}

async fn create(s: &Server, token: &str, name: &str) -> String {
    let r = s
        .client
        .post(image_url(s, "/v2/images"))
        .header("X-Auth-Token", token)
        .json(&json!({"name": name, "disk_format": "raw", "container_format": "bare"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.headers()["openstack-image-import-methods"],
        "glance-direct"
    );
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn show(s: &Server, token: &str, id: &str) -> Value {
    s.client
        .get(image_url(s, &format!("/v2/images/{id}")))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn put_bytes(s: &Server, token: &str, id: &str, what: &str, data: Vec<u8>) -> StatusCode {
    s.client
        .request(
            Method::PUT,
            image_url(s, &format!("/v2/images/{id}/{what}")),
        )
        .header("X-Auth-Token", token)
        .header("Content-Type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .unwrap()
        .status()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".partial")
                .collect()
        })
        .unwrap_or_default()
}

both_backends!(
    a_client_gone_mid_upload_leaves_the_image_queued_and_no_bytes,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let id = create(&s, &admin, "cut").await;
        // Announce 8 MiB, send 1 MiB, hang up.
        let host = s.base.trim_start_matches("http://").to_string();
        let mut sock = std::net::TcpStream::connect(&host).unwrap();
        write!(
            sock,
            "PUT /image/v2/images/{id}/file HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {admin}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            8 << 20
        )
        .unwrap();
        sock.write_all(&vec![7u8; 1 << 20]).unwrap();
        sock.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(sock);

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = show(&s, &admin, &id).await["status"].clone();
            if st == "queued" {
                break;
            }
            assert!(Instant::now() < deadline, "image stuck in {st}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let images = s.state().join("images");
        // the store removes the partial file once the body stream is dropped
        let deadline = Instant::now() + Duration::from_secs(5);
        while !files_in(&images.join(".partial")).is_empty() {
            assert!(Instant::now() < deadline, "partial upload left behind");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(files_in(&images).is_empty(), "{:?}", files_in(&images));

        // a retry succeeds
        assert_eq!(
            put_bytes(&s, &admin, &id, "file", b"hello image".to_vec()).await,
            StatusCode::NO_CONTENT
        );
        let v = show(&s, &admin, &id).await;
        assert_eq!(v["status"], "active");
        assert_eq!(v["size"], 11);
        assert_eq!(v["checksum"], format!("{:032x}", md5_of(b"hello image")));
    }
);

fn md5_of(data: &[u8]) -> u128 {
    // md5 via the system tool keeps the test free of another hashing crate
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    u128::from_str_radix(hex.split_whitespace().next().unwrap(), 16).unwrap()
}

both_backends!(
    staged_data_becomes_active_through_glance_direct_import,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let id = create(&s, &admin, "imported").await;
        let import = |id: String| {
            let s = &s;
            let admin = admin.clone();
            async move {
                s.client
                    .post(image_url(s, &format!("/v2/images/{id}/import")))
                    .header("X-Auth-Token", admin)
                    .json(&json!({"method": {"name": "glance-direct"}}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        // nothing staged yet
        assert_eq!(import(id.clone()).await, StatusCode::CONFLICT);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            put_bytes(&s, &admin, &id, "stage", data.clone()).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(show(&s, &admin, &id).await["status"], "uploading");
        assert_eq!(import(id.clone()).await, StatusCode::ACCEPTED);
        let deadline = Instant::now() + Duration::from_secs(10);
        let v = loop {
            let v = show(&s, &admin, &id).await;
            if v["status"] == "active" {
                break v;
            }
            assert!(Instant::now() < deadline, "import did not finish: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(v["size"], 200_000);
        assert_eq!(v["checksum"], format!("{:032x}", md5_of(&data)));
        assert!(files_in(&s.state().join("staging")).is_empty());

        // ranged read of the imported data
        let r = s
            .client
            .get(image_url(&s, &format!("/v2/images/{id}/file")))
            .header("X-Auth-Token", &admin)
            .header("Range", "bytes=-5")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()["content-range"], "bytes 199995-199999/200000");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data[199_995..]);
        let r = s
            .client
            .get(image_url(&s, &format!("/v2/images/{id}/file")))
            .header("X-Auth-Token", &admin)
            .header("Range", "bytes=200000-")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers()["content-range"], "bytes */200000");
    }
);

// Behaviours tempest's image tests found different from Glance.
both_backends!(glance_behaviours_tempest_checks, |s: Server| async move {
    let admin = s.admin_token().await;
    s.project_user(&admin, "gp", "gu", "gpw", "member").await;
    let user = s.auth("gu", "gpw", Some("gp")).await.subject.unwrap();
    let id = create(&s, &user, "v20").await;

    // The deprecated v2.0 JSON patch dialect (draft 4), which tempest sends.
    let patch = |media: &'static str, body: Value| {
        let s = &s;
        let user = user.clone();
        let id = id.clone();
        async move {
            let r = s
                .client
                .patch(image_url(s, &format!("/v2/images/{id}")))
                .header("X-Auth-Token", user)
                .header("Content-Type", media)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    const V20: &str = "application/openstack-images-v2.0-json-patch";
    let (st, v) = patch(
        V20,
        json!([{"replace": "/name", "value": "renamed"}, {"add": "/color", "value": "blue"}]),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "renamed");
    assert_eq!(v["color"], "blue");
    let (st, v) = patch(V20, json!([{"remove": "/color"}])).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.get("color").is_none(), "{v}");
    // two operations in one object, or none, are refused
    let (st, _) = patch(V20, json!([{"add": "/a", "remove": "/b", "value": "1"}])).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = patch(V20, json!([{"path": "/a", "value": "1"}])).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // the v2.1 dialect is unchanged, and one dialect is not read as the other
    let (st, v) = patch(
        "application/openstack-images-v2.1-json-patch",
        json!([{"op": "replace", "path": "/name", "value": "again"}]),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "again");
    let (st, _) = patch(
        V20,
        json!([{"op": "replace", "path": "/name", "value": "x"}]),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // A member of the owning project may deactivate and reactivate its image.
    assert_eq!(
        put_bytes(&s, &user, &id, "file", b"data".to_vec()).await,
        StatusCode::NO_CONTENT
    );
    let action = |what: &'static str, token: String| {
        let s = &s;
        let id = id.clone();
        async move {
            s.client
                .post(image_url(s, &format!("/v2/images/{id}/actions/{what}")))
                .header("X-Auth-Token", token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        action("deactivate", user.clone()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(show(&s, &user, &id).await["status"], "deactivated");
    assert_eq!(
        action("reactivate", user.clone()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(show(&s, &user, &id).await["status"], "active");
    // ... but not another project's member (the image is shared with nobody: 404)
    s.project_user(&admin, "gp2", "gu2", "gpw2", "member").await;
    let other = s.auth("gu2", "gpw2", Some("gp2")).await.subject.unwrap();
    assert_eq!(action("deactivate", other).await, StatusCode::NOT_FOUND);

    // Single-store Glance has no /v2/info/stores (and images no `stores`).
    let r = s
        .client
        .get(image_url(&s, "/v2/info/stores"))
        .header("X-Auth-Token", &user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(show(&s, &user, &id).await.get("stores").is_none());

    // An import is a task (GET /v2/images/{id}/tasks, v2.12) carrying its request id.
    let imp = create(&s, &user, "task").await;
    assert_eq!(
        put_bytes(&s, &user, &imp, "stage", vec![1u8; 4096]).await,
        StatusCode::NO_CONTENT
    );
    let r = s
        .client
        .post(image_url(&s, &format!("/v2/images/{imp}/import")))
        .header("X-Auth-Token", &user)
        .json(&json!({"method": {"name": "glance-direct"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let request_id = r.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let task = loop {
        let v: Value = s
            .client
            .get(image_url(&s, &format!("/v2/images/{imp}/tasks")))
            .header("X-Auth-Token", &user)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tasks = v["tasks"].as_array().unwrap().clone();
        assert_eq!(tasks.len(), 1, "{v}");
        if tasks[0]["status"] == "success" {
            break tasks[0].clone();
        }
        assert_eq!(tasks[0]["status"], "processing", "{v}");
        assert!(Instant::now() < deadline, "task did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(task["type"], "api_image_import");
    assert_eq!(task["image_id"], imp.as_str());
    assert_eq!(task["request_id"], request_id.as_str());
    assert_eq!(
        task["input"]["import_req"]["method"]["name"],
        "glance-direct"
    );
    assert_eq!(show(&s, &user, &imp).await["status"], "active");
    // not someone else's to see
    let other = s.auth("gu2", "gpw2", Some("gp2")).await.subject.unwrap();
    let r = s
        .client
        .get(image_url(&s, &format!("/v2/images/{imp}/tasks")))
        .header("X-Auth-Token", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
});

both_backends!(
    content_that_is_not_its_disk_format_is_415_and_the_image_queued_again,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let r = s
            .client
            .post(image_url(&s, "/v2/images"))
            .header("X-Auth-Token", &admin)
            .json(&json!({"name": "liar", "disk_format": "qcow2", "container_format": "bare"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();

        // Glance: InvalidImageData -> HTTPUnsupportedMediaType, image restored to queued
        let r = s
            .client
            .put(image_url(&s, &format!("/v2/images/{id}/file")))
            .header("X-Auth-Token", &admin)
            .header("Content-Type", "application/octet-stream")
            .body(vec![0x5au8; 8192])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({
                "code": "415 Unsupported Media Type",
                "title": "Unsupported Media Type",
                "message": "Image disk_format qcow2 does not match stream data raw",
            })
        );
        let v = show(&s, &admin, &id).await;
        assert_eq!(v["status"], "queued", "{v}");
        assert!(v["size"].is_null(), "{v}");
        let images = s.state().join("images");
        assert!(files_in(&images).is_empty(), "{:?}", files_in(&images));
        assert!(files_in(&images.join(".partial")).is_empty());

        // queued again: the owner may correct the format and upload once more
        let r = s
            .client
            .patch(image_url(&s, &format!("/v2/images/{id}")))
            .header("X-Auth-Token", &admin)
            .header(
                "Content-Type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(json!([{"op": "replace", "path": "/disk_format", "value": "raw"}]).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            put_bytes(&s, &admin, &id, "file", vec![0x5au8; 8192]).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(show(&s, &admin, &id).await["status"], "active");
    }
);
