//! Compute survives its process dying: `kill -9` with builds and deletes in flight,
//! and test crash points (`FERROSTACK_TEST_CRASH_AT=<step>`: the process exits right
//! after a host-agent step ran, before it was recorded). After a restart on the same
//! state directory and database, every server ends where its user asked, exactly
//! once: no duplicate guest, no guest left behind for a deleted server.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends_env;
use crate::harness::{Backend, Server};

const CRASH_ENV: &str = "FERROSTACK_TEST_CRASH_AT";
/// The exit code of a test crash point.
const CRASH_CODE: i32 = 86;

async fn create(s: &Server, token: &str, image: &str, name: &str, count: u32) -> Vec<String> {
    let r = s
        .compute(
            Method::POST,
            "/servers",
            token,
            Some(
                json!({"server": {"name": name, "imageRef": image, "flavorRef": "42",
                "min_count": count, "max_count": count}}),
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let l = s
        .compute(
            Method::GET,
            &format!("/servers?name=^{name}"),
            token,
            None,
            None,
        )
        .await;
    let ids: Vec<String> = l.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), count as usize, "{}", l.body);
    ids
}

async fn detail(s: &Server, token: &str) -> Vec<Value> {
    let r = s
        .compute(Method::GET, "/servers/detail", token, None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["servers"].as_array().unwrap().clone()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Restarts the process without the crash point (and any other `drop` variable).
fn restart_without(s: &mut Server, drop: &str) {
    s.env.retain(|(k, _)| k != drop);
    s.spawn();
}

both_backends_env!(
    kill_9_with_builds_and_deletes_in_flight_converges_after_restart,
    &[
        ("FERROSTACK_COMPUTE__FAKE_SPAWN_DELAY_MS", "2000"),
        ("FERROSTACK_QUOTA__INSTANCES", "100"),
        ("FERROSTACK_QUOTA__CORES", "200"),
    ],
    |s: Server| async move {
        let mut s = s;
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let first = create(&s, &admin, &image, "old", 5).await;
        for id in &first {
            s.wait_server(&admin, id, "ACTIVE", None, 60).await;
        }
        assert_eq!(s.fake_guests(), sorted(first.clone()));
        let builds = create(&s, &admin, &image, "new", 20).await;
        for id in &first {
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
        }
        // the 20 are mid-spawn (2 s each), the 5 waiting to be destroyed
        let building = detail(&s, &admin)
            .await
            .iter()
            .filter(|v| v["status"] == "BUILD")
            .count();
        assert!(building > 0, "nothing was in flight at the kill");
        s.kill9();

        s.spawn();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let all = detail(&s, &admin).await;
            let done = all.len() == 20
                && all
                    .iter()
                    .all(|v| v["status"] == "ACTIVE" && v["OS-EXT-STS:task_state"].is_null());
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not converged after restart: {:?}",
                all.iter()
                    .map(|v| (
                        v["name"].clone(),
                        v["status"].clone(),
                        v["OS-EXT-STS:task_state"].clone()
                    ))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let all = detail(&s, &admin).await;
        let ids: Vec<String> = all
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            sorted(ids),
            sorted(builds.clone()),
            "exactly the 20 builds exist"
        );
        for id in &first {
            let r = s
                .compute(Method::GET, &format!("/servers/{id}"), &admin, None, None)
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}: {}", r.body);
        }
        // the hypervisor holds exactly the 20: nothing spawned twice, nothing left
        // of the deleted 5
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.fake_guests() != sorted(builds.clone()) {
            assert!(
                Instant::now() < deadline,
                "guests {:?} != servers",
                s.fake_guests()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // every build ran once: one create action with one successful build event
        for id in builds.iter().take(3) {
            let r = s
                .compute(
                    Method::GET,
                    &format!("/servers/{id}/os-instance-actions"),
                    &admin,
                    None,
                    None,
                )
                .await;
            let acts = r.body["instanceActions"].as_array().unwrap();
            assert_eq!(acts.len(), 1, "{}", r.body);
            let rid = acts[0]["request_id"].as_str().unwrap();
            let a = s
                .compute(
                    Method::GET,
                    &format!("/servers/{id}/os-instance-actions/{rid}"),
                    &admin,
                    None,
                    None,
                )
                .await;
            let events = a.body["instanceAction"]["events"].as_array().unwrap();
            assert_eq!(events.len(), 1, "{}", a.body);
            assert_eq!(events[0]["result"], "Success");
        }
        // No leaked ports: none for the deleted 5, exactly one per surviving server.
        for id in &first {
            let r = s
                .get_abs(
                    &format!("{}/network/v2.0/ports?device_id={id}", s.base),
                    &admin,
                    None,
                )
                .await;
            assert_eq!(
                r.body["ports"],
                json!([]),
                "ports left for deleted {id}: {} {}",
                r.status,
                r.body
            );
        }
        let r = s
            .get_abs(
                &format!("{}/network/v2.0/ports?device_owner=compute:nova", s.base),
                &admin,
                None,
            )
            .await;
        let owners: Vec<String> = r.body["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["device_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            sorted(owners),
            sorted(builds.clone()),
            "one port per server"
        );
        // No leaked quota usage: exactly the 20 count.
        let project = r.body["ports"][0]["project_id"]
            .as_str()
            .unwrap()
            .to_string();
        let q = s
            .compute(
                Method::GET,
                &format!("/os-quota-sets/{project}/detail"),
                &admin,
                None,
                None,
            )
            .await;
        assert_eq!(q.body["quota_set"]["instances"]["in_use"], 20, "{}", q.body);
    }
);

both_backends_env!(
    a_crash_right_after_spawn_is_adopted_not_spawned_twice,
    &[(CRASH_ENV, "Spawn")],
    |s: Server| async move {
        let mut s = s;
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = create(&s, &admin, &image, "once", 1).await.remove(0);
        let status = s.wait_exit(Duration::from_secs(30));
        assert_eq!(status.code(), Some(CRASH_CODE), "{status}");
        // the guest exists, the database does not know yet
        assert_eq!(s.fake_guests(), vec![id.clone()]);

        restart_without(&mut s, CRASH_ENV);
        let v = s.wait_server(&admin, &id, "ACTIVE", None, 30).await;
        assert_eq!(v["OS-EXT-STS:power_state"], 1);
        assert!(v["OS-SRV-USG:launched_at"].is_string());
        assert_eq!(s.fake_guests(), vec![id.clone()]);
        let all = detail(&s, &admin).await;
        assert_eq!(all.len(), 1);
        // one boot on the console: the guest was adopted, not spawned again
        let r = s
            .compute(
                Method::POST,
                &format!("/servers/{id}/action"),
                &admin,
                Some(json!({"os-getConsoleOutput": {}})),
                None,
            )
            .await;
        let out = r.body["output"].as_str().unwrap();
        assert_eq!(out.matches("fake: booting").count(), 1, "{out}");
        // and it works normally afterwards
        let r = s
            .compute(
                Method::POST,
                &format!("/servers/{id}/action"),
                &admin,
                Some(json!({"os-stop": null})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        s.wait_server(&admin, &id, "SHUTOFF", None, 30).await;
    }
);

both_backends_env!(
    a_crash_after_network_allocation_still_builds_the_server_once,
    &[(CRASH_ENV, "AllocateNetwork")],
    |s: Server| async move {
        let mut s = s;
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = create(&s, &admin, &image, "net", 1).await.remove(0);
        let status = s.wait_exit(Duration::from_secs(30));
        assert_eq!(status.code(), Some(CRASH_CODE), "{status}");
        assert_eq!(s.fake_guests(), Vec::<String>::new());
        restart_without(&mut s, CRASH_ENV);
        s.wait_server(&admin, &id, "ACTIVE", None, 30).await;
        assert_eq!(s.fake_guests(), vec![id.clone()]);
        assert_eq!(detail(&s, &admin).await.len(), 1);
    }
);

/// Creates a server that becomes ACTIVE, deletes it (the process then dies at the
/// crash point in `s`'s env), restarts without it: the server is gone for good.
async fn delete_across_a_crash(mut s: Server) {
    let admin = s.admin_token().await;
    let image = s.active_image(&admin, "img").await;
    let id = create(&s, &admin, &image, "gone", 1).await.remove(0);
    let keep = create(&s, &admin, &image, "kept", 1).await.remove(0);
    s.wait_server(&admin, &id, "ACTIVE", None, 30).await;
    s.wait_server(&admin, &keep, "ACTIVE", None, 30).await;
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
    let status = s.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(CRASH_CODE), "{status}");
    // the guest is destroyed already; the database still has the server
    assert_eq!(s.fake_guests(), vec![keep.clone()]);

    restart_without(&mut s, CRASH_ENV);
    s.wait_server(&admin, &id, "DELETED", None, 30).await;
    let all = detail(&s, &admin).await;
    let ids: Vec<&str> = all.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![keep.as_str()]);
    assert_eq!(all[0]["status"], "ACTIVE");
    assert_eq!(s.fake_guests(), vec![keep.clone()]);
    let r = s
        .compute(
            Method::DELETE,
            &format!("/servers/{id}"),
            &admin,
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // the delete action finished with its event
    let r = s
        .compute(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            &admin,
            None,
            None,
        )
        .await;
    let acts = r.body["instanceActions"].as_array().unwrap();
    assert_eq!(acts[0]["action"], "delete", "{}", r.body);
    let rid = acts[0]["request_id"].as_str().unwrap();
    let a = s
        .compute(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions/{rid}"),
            &admin,
            None,
            None,
        )
        .await;
    let events = a.body["instanceAction"]["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "compute_terminate_instance" && e["result"] == "Success"),
        "{}",
        a.body
    );
    let r = s
        .get_abs(
            &format!("{}/network/v2.0/ports?device_id={id}", s.base),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        r.body["ports"],
        json!([]),
        "ports left for deleted {id}: {} {}",
        r.status,
        r.body
    );
}

both_backends_env!(
    a_crash_right_after_destroy_finishes_the_delete_after_restart,
    &[(CRASH_ENV, "Destroy")],
    delete_across_a_crash
);

both_backends_env!(
    a_crash_right_after_finish_delete_finishes_the_delete_after_restart,
    &[(CRASH_ENV, "FinishDelete")],
    delete_across_a_crash
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_stop_completes_the_stop_after_restart() {
    let mut s = Server::start(Backend::Sqlite, &[(CRASH_ENV, "PowerOff")]).unwrap();
    let admin = s.admin_token().await;
    let image = s.active_image(&admin, "img").await;
    let id = create(&s, &admin, &image, "stopme", 1).await.remove(0);
    s.wait_server(&admin, &id, "ACTIVE", None, 30).await;
    let r = s
        .compute(
            Method::POST,
            &format!("/servers/{id}/action"),
            &admin,
            Some(json!({"os-stop": null})),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let status = s.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(CRASH_CODE), "{status}");
    restart_without(&mut s, CRASH_ENV);
    let v = s.wait_server(&admin, &id, "SHUTOFF", None, 30).await;
    assert_eq!(v["OS-EXT-STS:power_state"], 4);
    assert!(v.get("fault").is_none(), "{v}");
}

both_backends_env!(
    an_action_on_a_guest_that_vanished_ends_in_error_with_a_fault,
    &[],
    |s: Server| async move {
        let mut s = s;
        let admin = s.admin_token().await;
        let image = s.active_image(&admin, "img").await;
        let id = create(&s, &admin, &image, "vanish", 1).await.remove(0);
        s.wait_server(&admin, &id, "ACTIVE", None, 30).await;
        assert_eq!(s.stop().code(), Some(0));
        // the hypervisor lost the guest while the control plane was down
        std::fs::remove_file(s.state().join(format!("instances/_fake/{id}.json"))).unwrap();
        s.spawn();
        let r = s
            .compute(
                Method::POST,
                &format!("/servers/{id}/action"),
                &admin,
                Some(json!({"os-stop": null})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let v = s.wait_server(&admin, &id, "ERROR", None, 30).await;
        let msg = v["fault"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(&id), "{v}");
        // and it can still be deleted
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
        s.wait_server(&admin, &id, "DELETED", None, 30).await;
    }
);
