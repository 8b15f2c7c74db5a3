"""Version discovery, request ids and the error dialect, as keystoneauth and the CLI
read them (raw HTTP)."""

import requests


def test_identity_root_lists_v3_with_300_multiple_choices(cloud):
    r = cloud.http.get(cloud.identity)
    assert r.status_code == 300, r.text
    values = r.json()["versions"]["values"]
    v3 = [v for v in values if v["id"].startswith("v3")]
    assert len(v3) == 1, values
    v3 = v3[0]
    assert v3["id"] == "v3.14" and v3["status"] == "stable"
    self_links = [link["href"] for link in v3["links"] if link["rel"] == "self"]
    assert self_links and self_links[0].rstrip("/") == cloud.auth_url, v3["links"]
    assert {"base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json"} in v3["media-types"]


def test_identity_v3_describes_itself(cloud):
    for url in (cloud.auth_url, cloud.auth_url + "/"):
        r = cloud.http.get(url)
        assert r.status_code == 200, (url, r.text)
        version = r.json()["version"]
        assert version["id"] == "v3.14" and version["status"] == "stable"
        assert any(link["rel"] == "self" and link["href"].rstrip("/") == cloud.auth_url
                   for link in version["links"])


def test_every_response_gets_a_fresh_request_id(cloud):
    ids = set()
    for url in (cloud.identity, cloud.auth_url, cloud.auth_url + "/projects",
                cloud.auth_url + "/no-such-thing", cloud.base + "/no-such-service"):
        r = requests.get(url, timeout=30)
        rid = r.headers.get("x-openstack-request-id", "")
        assert rid.startswith("req-"), (url, r.status_code, dict(r.headers))
        ids.add(rid)
    assert len(ids) == 5


def test_unauthenticated_call_gets_keystone_401_body(cloud):
    r = cloud.http.get(cloud.auth_url + "/projects")
    assert r.status_code == 401
    assert r.json() == {"error": {"code": 401, "title": "Unauthorized",
                                  "message": "The request you have made requires authentication."}}
    assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")


def test_garbled_token_is_401_and_unknown_resource_is_404(cloud):
    r = cloud.http.get(cloud.auth_url + "/projects", headers={"X-Auth-Token": "not-a-token"})
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    r = cloud.http.get(cloud.auth_url + "/projects/0123456789abcdef0123456789abcdef",
                       headers={"X-Auth-Token": cloud.admin_token})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == 404 and err["title"] == "Not Found" and err["message"]


def test_malformed_json_is_400(cloud):
    r = cloud.http.post(cloud.auth_url + "/projects", data="{not json",
                        headers={"X-Auth-Token": cloud.admin_token, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 400
