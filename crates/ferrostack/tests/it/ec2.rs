//! The EC2 Query API on both databases: SigV2-signed form POSTs (signed here with
//! the same canonicalisation AWS clients use), ids, ClientToken, project
//! isolation and refusals. The real clients (boto3, awscli, a SigV2 client) drive
//! it in tests/conformance/test_ec2.py.

use std::collections::BTreeMap;

use ferrostack_identity::ec2sig::{SignedRequest, compute_signature};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;
use crate::{both_backends, both_backends_env};

struct Ec2User {
    access: String,
    secret: String,
}

/// A member (or `role`) of a new project with EC2 credentials; returns them and a token.
async fn ec2_user(s: &Server, admin: &str, project: &str, role: &str) -> (Ec2User, String) {
    let (pid, uid) = s
        .project_user(admin, project, &format!("{project}-u"), "pw", role)
        .await;
    let t = s.token_for(&format!("{project}-u"), "pw", project).await;
    let c = s
        .call(
            Method::POST,
            &format!("/v3/users/{uid}/credentials/OS-EC2"),
            Some(&t),
            Some(json!({"tenant_id": pid})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    (
        Ec2User {
            access: c.body["credential"]["access"].as_str().unwrap().into(),
            secret: c.body["credential"]["secret"].as_str().unwrap().into(),
        },
        t,
    )
}

/// POSTs a SigV2 (HmacSHA256) request to `/ec2/`; (status, body, Date header).
async fn ec2(
    s: &Server,
    u: &Ec2User,
    params: &[(&str, &str)],
    tamper: bool,
) -> (StatusCode, String, bool) {
    ec2_at(s, &format!("{}/ec2/", s.base), u, params, tamper).await
}

/// The same to any EC2 URL.
async fn ec2_at(
    s: &Server,
    url: &str,
    u: &Ec2User,
    params: &[(&str, &str)],
    tamper: bool,
) -> (StatusCode, String, bool) {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = host.to_string();
    let mut p: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    p.insert("AWSAccessKeyId".into(), u.access.clone());
    p.insert("SignatureVersion".into(), "2".into());
    p.insert("SignatureMethod".into(), "HmacSHA256".into());
    p.insert("Version".into(), "2016-11-15".into());
    p.entry("Timestamp".into())
        .or_insert_with(|| ferrostack_core::time::iso_time(ferrostack_core::time::unix_now()));
    let signed = SignedRequest {
        access: u.access.clone(),
        host,
        verb: "POST".into(),
        path: path.to_string(),
        params: p.clone(),
        ..Default::default()
    };
    let sig = compute_signature(&u.secret, &signed).unwrap();
    p.insert("Signature".into(), sig);
    if tamper {
        p.insert("MaxCount".into(), "9".into());
    }
    let r = s.client.post(url).form(&p).send().await.unwrap();
    let status = r.status();
    let dated = r.headers().contains_key("date");
    (status, r.text().await.unwrap(), dated)
}

fn between<'a>(body: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    body.split(open)
        .skip(1)
        .filter_map(|rest| rest.split(close).next())
        .collect()
}

both_backends!(
    ec2_lifecycle_ids_client_token_and_isolation,
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (alice, token) = ec2_user(&s, &admin, "ec2a", "member").await;
        let (bob, _) = ec2_user(&s, &admin, "ec2b", "member").await;
        let (reader, _) = ec2_user(&s, &admin, "ec2r", "reader").await;
        let image = s.active_image(&token, "ec2-img").await;

        let (st, body, dated) = ec2(
            &s,
            &alice,
            &[("Action", "DescribeAvailabilityZones")],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert!(dated, "every answer has a Date header");
        assert!(body.contains("<DescribeAvailabilityZonesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"), "{body}");
        assert!(
            body.contains("<zoneName>nova</zoneName><zoneState>available</zoneState>"),
            "{body}"
        );

        let (_, body, _) = ec2(
            &s,
            &alice,
            &[
                ("Action", "DescribeImages"),
                ("Filter.1.Name", "name"),
                ("Filter.1.Value.1", "ec2-img"),
            ],
            false,
        )
        .await;
        let ami = between(&body, "<imageId>", "</imageId>");
        assert_eq!(ami.len(), 1, "{body}");
        let ami = ami[0].to_string();
        assert!(ami.starts_with("ami-") && ami.len() == 21, "{ami}");
        let _ = image;

        let run = [
            ("Action", "RunInstances"),
            ("ImageId", ami.as_str()),
            ("InstanceType", "m1.tiny"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("ClientToken", "once"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web"),
        ];
        let (st, first, _) = ec2(&s, &alice, &run, false).await;
        assert_eq!(st, StatusCode::OK, "{first}");
        let (st, again, _) = ec2(&s, &alice, &run, false).await;
        assert_eq!(st, StatusCode::OK, "{again}");
        let iid = between(&first, "<instanceId>", "</instanceId>")[0].to_string();
        assert_eq!(
            between(&again, "<instanceId>", "</instanceId>"),
            vec![iid.as_str()],
            "ClientToken answers the same instance"
        );
        let mut other = run.to_vec();
        other[2] = ("InstanceType", "m1.small");
        let (st, body, _) = ec2(&s, &alice, &other, false).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("<Code>IdempotentParameterMismatch</Code>"),
            "{body}"
        );
        let servers = s.compute(Method::GET, "/servers", &token, None, None).await;
        assert_eq!(
            servers.body["servers"].as_array().unwrap().len(),
            1,
            "{}",
            servers.body
        );

        // Stable ids: the same instance id every time, by filter too.
        let (_, body, _) = ec2(
            &s,
            &alice,
            &[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", "tag:Name"),
                ("Filter.1.Value.1", "w*"),
            ],
            false,
        )
        .await;
        assert_eq!(
            between(&body, "<instanceId>", "</instanceId>"),
            vec![iid.as_str()],
            "{body}"
        );

        // Tampered parameter, wrong secret, unknown key, expired timestamp.
        let (st, body, _) = ec2(&s, &alice, &run, true).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body.contains("<Code>AuthFailure</Code>"), "{body}");
        let wrong = Ec2User {
            access: alice.access.clone(),
            secret: "nope".into(),
        };
        let (st, _, _) = ec2(&s, &wrong, &[("Action", "DescribeRegions")], false).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let unknown = Ec2User {
            access: "0000".into(),
            secret: "x".into(),
        };
        let (st, _, _) = ec2(&s, &unknown, &[("Action", "DescribeRegions")], false).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let old = ferrostack_core::time::iso_time(ferrostack_core::time::unix_now() - 20 * 60);
        let (st, body, _) = ec2(
            &s,
            &alice,
            &[("Action", "DescribeRegions"), ("Timestamp", old.as_str())],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(body.contains("<Code>RequestExpired</Code>"), "{body}");
        let (st, body, _) = ec2(&s, &alice, &[("Action", "LaunchMissiles")], false).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");

        // Another project sees nothing of it and can change nothing; a reader cannot run.
        for action in ["DescribeInstances", "StopInstances", "TerminateInstances"] {
            let (st, body, _) = ec2(
                &s,
                &bob,
                &[("Action", action), ("InstanceId.1", iid.as_str())],
                false,
            )
            .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{action}: {body}");
            assert!(
                body.contains("<Code>InvalidInstanceID.NotFound</Code>"),
                "{action}: {body}"
            );
        }
        let (st, body, _) = ec2(&s, &reader, &run, false).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body.contains("<Code>UnauthorizedOperation</Code>"),
            "{body}"
        );

        // Security group with an SSH rule lands in Neutron.
        let (st, body, _) = ec2(
            &s,
            &alice,
            &[
                ("Action", "CreateSecurityGroup"),
                ("GroupName", "ssh"),
                ("GroupDescription", "ssh in"),
            ],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let sg = between(&body, "<groupId>", "</groupId>")[0].to_string();
        let (st, body, _) = ec2(
            &s,
            &alice,
            &[
                ("Action", "AuthorizeSecurityGroupIngress"),
                ("GroupId", sg.as_str()),
                ("IpPermissions.1.IpProtocol", "tcp"),
                ("IpPermissions.1.FromPort", "22"),
                ("IpPermissions.1.ToPort", "22"),
                ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
            ],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let rules = s
            .client
            .get(format!(
                "{}/network/v2.0/security-group-rules?direction=ingress&port_range_min=22",
                s.base
            ))
            .header("X-Auth-Token", &token)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert!(
            rules["security_group_rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["remote_ip_prefix"] == "0.0.0.0/0" && r["protocol"] == "tcp"),
            "{rules}"
        );

        // Tags on a security group are kept by the EC2 API, per project.
        let (st, body, _) = ec2(
            &s,
            &alice,
            &[
                ("Action", "CreateTags"),
                ("ResourceId.1", sg.as_str()),
                ("Tag.1.Key", "tier"),
                ("Tag.1.Value", "web"),
            ],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let (_, body, _) = ec2(
            &s,
            &alice,
            &[
                ("Action", "DescribeTags"),
                ("Filter.1.Name", "resource-id"),
                ("Filter.1.Value.1", sg.as_str()),
            ],
            false,
        )
        .await;
        assert!(
            body.contains(
                "<resourceType>security-group</resourceType><key>tier</key><value>web</value>"
            ),
            "{body}"
        );
        let (_, body, _) = ec2(
            &s,
            &alice,
            &[
                ("Action", "DescribeSecurityGroups"),
                ("GroupId.1", sg.as_str()),
            ],
            false,
        )
        .await;
        assert!(
            body.contains("<tagSet><item><key>tier</key><value>web</value></item></tagSet>"),
            "{body}"
        );
        let (st, body, _) = ec2(
            &s,
            &bob,
            &[
                ("Action", "CreateTags"),
                ("ResourceId.1", sg.as_str()),
                ("Tag.1.Key", "x"),
                ("Tag.1.Value", "y"),
            ],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("<Code>InvalidID</Code>"), "{body}");

        // Terminate: listed as terminated afterwards, also by id.
        let (st, body, _) = ec2(
            &s,
            &alice,
            &[
                ("Action", "TerminateInstances"),
                ("InstanceId.1", iid.as_str()),
            ],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let mut terminated = false;
        for _ in 0..100 {
            let (_, body, _) = ec2(
                &s,
                &alice,
                &[
                    ("Action", "DescribeInstances"),
                    ("InstanceId.1", iid.as_str()),
                ],
                false,
            )
            .await;
            if body.contains("<name>terminated</name>") {
                terminated = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(terminated, "a terminated instance stays listed");
    }
);

both_backends_env!(
    ec2_on_its_classic_port_at_services_cloud,
    &[("FERROSTACK_SERVICES__EC2__LISTEN", "127.0.0.1:0")],
    |s: Server| async move {
        let admin = s.admin_token().await;
        let (u, _) = ec2_user(&s, &admin, "classic", "member").await;
        // ec2rc.sh and the catalog name the classic URL
        let rc = std::fs::read_to_string(s.state().join("ec2rc.sh")).unwrap();
        let url = rc
            .lines()
            .find_map(|l| l.strip_prefix("export EC2_URL='"))
            .and_then(|l| l.strip_suffix('\''))
            .unwrap()
            .to_string();
        assert!(
            url.ends_with("/services/Cloud") && !url.starts_with(&s.base),
            "{url}"
        );
        let (st, body, _) = ec2_at(&s, &url, &u, &[("Action", "DescribeRegions")], false).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert!(
            body.contains(&format!("<regionEndpoint>{url}</regionEndpoint>")),
            "{body}"
        );
        let root = format!("{}/", url.trim_end_matches("/services/Cloud"));
        let (st, body, _) = ec2_at(
            &s,
            &root,
            &u,
            &[("Action", "DescribeAvailabilityZones")],
            false,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        // the main listener's /ec2 still answers
        let (st, _, _) = ec2(&s, &u, &[("Action", "DescribeRegions")], false).await;
        assert_eq!(st, StatusCode::OK);
    }
);
