//! The process: restarts, key rotation, graceful shutdown, kill -9, files on disk,
//! configuration.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::harness::{Backend, Server, file_mode, signal, wait_with_timeout};

both_backends!(
    data_and_tokens_survive_a_restart_and_one_key_rotation,
    |s: Server| async move {
        let mut s = s;
        let admin = s.admin_token().await;
        let r = s
            .call(
                Method::POST,
                "/v3/projects",
                Some(&admin),
                Some(json!({"project": {"name": "kept"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(s.stop().code(), Some(0), "clean exit on SIGTERM");
        assert!(
            !s.state().join("ferrostack.url").exists(),
            "the url file goes at shutdown"
        );

        let rotate = s
            .command()
            .args(["admin", "rotate-token-keys", "--state-dir"])
            .arg(s.state())
            .output()
            .unwrap();
        assert!(
            rotate.status.success(),
            "{}",
            String::from_utf8_lossy(&rotate.stderr)
        );
        s.spawn();
        let again = s
            .call(Method::GET, "/v3/projects?name=kept", Some(&admin), None)
            .await;
        assert_eq!(
            again.status,
            StatusCode::OK,
            "a token from before the rotation still validates"
        );
        assert_eq!(again.body["projects"].as_array().unwrap().len(), 1);
        let fresh = s.admin_token().await;
        assert_eq!(s.validate(&fresh, &admin).await.status, StatusCode::OK);

        // One more rotation pushes the first primary key out (max_active_keys = 3:
        // staged + primary + one secondary), while the key `fresh` was sealed with stays.
        let out = s
            .command()
            .args(["admin", "rotate-token-keys", "--state-dir"])
            .arg(s.state())
            .output()
            .unwrap();
        assert!(out.status.success());
        s.stop();
        s.spawn();
        let newer = s.admin_token().await;
        s.validate(&newer, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // a token sealed with a key that is still active survives
        assert_eq!(s.validate(&newer, &fresh).await.status, StatusCode::OK);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_noticed_by_a_running_server() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let before = s.admin_token().await;
    let out = s
        .command()
        .args(["admin", "rotate-token-keys", "--state-dir"])
        .arg(s.state())
        .output()
        .unwrap();
    assert!(out.status.success());
    // New tokens are sealed with the new primary once the server reloads (≤ 10 s);
    // tokens sealed by the previous key keep validating throughout.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let after = s.admin_token().await;
    assert_eq!(s.validate(&after, &before).await.status, StatusCode::OK);
    let keys_dir = s.state().join("keys/fernet-keys");
    let mut names: Vec<String> = std::fs::read_dir(&keys_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["0", "1", "2"]);
    for n in names {
        assert_eq!(file_mode(&keys_dir.join(n)), 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let mut s = Server::start(Backend::Sqlite, &[]).unwrap();
    let mut pending = Vec::new();
    for _ in 0..6 {
        let c = s.client.clone();
        let url = s.url("/v3/auth/tokens");
        pending.push(tokio::spawn(async move {
            c.post(url)
                .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"id": "default"}, "password": crate::harness::ADMIN_PASSWORD}}}}}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut child = s.child.take().unwrap();
    signal(&child, "TERM");
    let mut done = 0;
    for p in pending {
        // A request either completed (201) or had not been accepted yet (connection
        // refused); none is cut off half way.
        match p.await.unwrap() {
            Ok(status) => {
                assert_eq!(status, StatusCode::CREATED);
                done += 1;
            }
            Err(e) => assert!(e.is_connect(), "request cut off: {e}"),
        }
    }
    let status = wait_with_timeout(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    assert!(done > 0, "at least one request was in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_writes_leaves_a_consistent_database() {
    let mut s = Server::start(Backend::Sqlite, &[]).unwrap();
    let admin = s.admin_token().await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let c = s.client.clone();
        let base = s.url("");
        let t = admin.clone();
        writers.push(tokio::spawn(async move {
            let mut created = Vec::new();
            for i in 0..1000 {
                let name = format!("w{w}-{i}");
                let r = c
                    .post(format!("{base}/v3/projects"))
                    .header("X-Auth-Token", &t)
                    .json(&json!({"project": {"name": name, "tags": ["a", "b"]}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::CREATED => created.push(name),
                    _ => break,
                }
            }
            created
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.kill9();
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(
        !acknowledged.is_empty(),
        "some writes happened before the kill"
    );

    // The database file itself is intact...
    let db = ferrostack_core::Db::connect(
        &ferrostack_core::Db::sqlite_url(&s.state().join("ferrostack.db")),
        1,
    )
    .await
    .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(check, "ok");
    db.close().await;
    // ...and every acknowledged write is there, complete, after a restart.
    s.spawn();
    let admin = s.admin_token().await;
    let list = s
        .call(Method::GET, "/v3/projects", Some(&admin), None)
        .await;
    let projects = list.body["projects"].as_array().unwrap();
    for name in &acknowledged {
        let p = projects
            .iter()
            .find(|p| p["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} lost"));
        assert_eq!(p["tags"], json!(["a", "b"]));
    }
}

both_backends!(state_files_are_private, |s: Server| async move {
    for f in ["clouds.yaml", "adminrc", "ec2rc.sh", "ferrostack.url"] {
        assert_eq!(file_mode(&s.state().join(f)), 0o600, "{f}");
    }
    assert_eq!(file_mode(&s.state()), 0o700);
    assert_eq!(file_mode(&s.state().join("keys")), 0o700);
    if s.database.is_none() {
        assert_eq!(file_mode(&s.state().join("ferrostack.db")), 0o600);
    }
    let clouds = std::fs::read_to_string(s.state().join("clouds.yaml")).unwrap();
    assert!(clouds.contains(&format!("auth_url: {}/identity/v3", s.base)));
    assert!(clouds.contains(&format!("password: '{}'", crate::harness::ADMIN_PASSWORD)));
    let ec2 = std::fs::read_to_string(s.state().join("ec2rc.sh")).unwrap();
    assert!(
        ec2.contains("export EC2_ACCESS_KEY='") && ec2.contains("export AWS_SECRET_ACCESS_KEY='")
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_show_layers_sources_and_redacts_secrets() {
    let s = Server::start(
        Backend::Sqlite,
        &[("FERROSTACK_CREDENTIAL__AUTH_TTL", "30")],
    )
    .unwrap();
    let out = s
        .command()
        .args(["config", "show", "--state-dir"])
        .arg(s.state())
        .args([
            "--database",
            "postgres://fs:hunter2@db.example/fs",
            "--listen",
            "127.0.0.1:5999",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("auth_ttl = 30"), "{text}");
    assert!(text.contains("listen = \"127.0.0.1:5999\""), "{text}");
    assert!(
        !text.contains("hunter2") && text.contains("fs:***@db.example"),
        "{text}"
    );
    assert!(
        !text.contains(crate::harness::ADMIN_PASSWORD) && text.contains("admin_password = \"***\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_can_also_answer_on_its_own_port() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let s = Server::start(
        Backend::Sqlite,
        &[("FERROSTACK_SERVICES__IDENTITY__LISTEN", &listen)],
    )
    .unwrap();
    let r = s
        .client
        .get(format!("http://{listen}/v3"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["version"]["links"][0]["href"],
        format!("http://{listen}/v3/")
    );
    let clouds = std::fs::read_to_string(s.state().join("clouds.yaml")).unwrap();
    assert!(
        clouds.contains(&format!("auth_url: http://{listen}/v3")),
        "{clouds}"
    );
    // and the path-prefixed listener keeps working
    assert_eq!(
        s.call(Method::GET, "/v3", None, None).await.status,
        StatusCode::OK
    );
}
