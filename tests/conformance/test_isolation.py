"""A member of one project sees and changes only what upstream's default policy allows:
the openstack CLI as a non-admin user, and the raw API where the CLI hides the answer."""

from conftest import column, field


def test_member_gets_a_token_for_their_project(cloud, member):
    tok = cloud.openstack("token", "issue", cloud=member["cloud"])
    assert tok["project_id"] == member["project_id"] and tok["user_id"] == member["user_id"]
    assert "identity" in {c["Type"] for c in cloud.openstack("catalog", "list", cloud=member["cloud"])}


def test_member_cannot_list_projects_but_sees_their_own(cloud, member):
    tok, _ = cloud.password_token(member["name"], member["password"], member["name"])
    r = cloud.http.get(f"{cloud.auth_url}/projects", headers={"X-Auth-Token": tok})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == 403
    # With a filter the CLI passes the 403 on ...
    cloud.openstack_fails("project", "list", "--domain", "default", cloud=member["cloud"], status=403)
    # ... without one it falls back to GET /v3/users/{me}/projects: just their own.
    mine = cloud.openstack("project", "list", cloud=member["cloud"])
    assert column(mine, "name") == [member["name"]]
    assert column(cloud.openstack("project", "list", "--my-projects", cloud=member["cloud"]),
                  "name") == [member["name"]]
    # by name a project is looked up with a list, so only its id works for a member
    cloud.openstack_fails("project", "show", member["name"], cloud=member["cloud"], status=403)
    r = cloud.http.get(f"{cloud.auth_url}/auth/projects", headers={"X-Auth-Token": tok})
    assert [p["name"] for p in r.json()["projects"]] == [member["name"]]


def test_member_sees_their_project_and_not_others(cloud, member, name):
    me = member["cloud"]
    assert cloud.openstack("project", "show", member["project_id"], cloud=me)["name"] == member["name"]
    admin_project = cloud.openstack("project", "show", "admin")["id"]
    cloud.openstack_fails("project", "show", admin_project, cloud=me, status=403)
    cloud.openstack_fails("project", "show", "admin", cloud=me)
    other = cloud.openstack("project", "create", f"{name}-other")
    cloud.openstack_fails("project", "show", other["id"], cloud=me, status=403)


def test_member_cannot_administer_identity(cloud, member, name):
    me = member["cloud"]
    for args in (("user", "list"),
                 ("user", "create", "--password", "x", f"{name}-evil"),
                 ("user", "show", "admin"),
                 ("project", "create", f"{name}-evil"),
                 ("domain", "create", f"{name}-evil"),
                 ("role", "create", f"{name}-evil"),
                 ("group", "list"),
                 ("endpoint", "list"),
                 ("role", "assignment", "list", "--user", "admin")):
        cloud.openstack_fails(*args, cloud=me, status=403)
    # and nothing was created
    assert f"{name}-evil" not in column(cloud.openstack("user", "list"), "name")
    assert f"{name}-evil" not in column(cloud.openstack("project", "list"), "name")


def test_member_cannot_grant_themselves_a_role(cloud, member):
    tok, _ = cloud.password_token(member["name"], member["password"], member["name"])
    admin_role = cloud.openstack("role", "show", "admin")["id"]
    r = cloud.http.put(f"{cloud.auth_url}/projects/{member['project_id']}/users/{member['user_id']}"
                       f"/roles/{admin_role}", headers={"X-Auth-Token": tok})
    assert r.status_code == 403, r.text
    # OSC 10.5's `role add` gets the same 403 but exits 0 without a word; what matters is
    # that nothing changed.
    cloud.run_cli("role", "add", "--user", member["user_id"], "--project", member["project_id"],
                  admin_role, cloud=member["cloud"], fmt=None)
    rows = cloud.openstack("role", "assignment", "list", "--names", "--user", member["name"])
    assert [r["Role"] for r in rows] == ["member"]


def test_member_can_read_themselves(cloud, member):
    me = member["cloud"]
    assert cloud.openstack("user", "show", member["user_id"], cloud=me)["name"] == member["name"]
    roles = cloud.openstack("role", "assignment", "list", "--user", member["user_id"],
                            "--project", member["project_id"], "--names", cloud=me)
    assert {r["Role"] for r in roles} >= {"member"}


def test_member_manages_own_ec2_credentials_only(cloud, member):
    me = member["cloud"]
    mine = cloud.openstack("ec2", "credentials", "create", cloud=me)
    assert field(mine, "user_id") == member["user_id"]
    assert field(mine, "project_id") == member["project_id"]
    assert column(cloud.openstack("ec2", "credentials", "list", cloud=me), "access") == [field(mine, "access")]
    admins = cloud.openstack("ec2", "credentials", "create")
    cloud.openstack_fails("ec2", "credentials", "list", "--user", "admin", cloud=me)
    admin_id = cloud.openstack("user", "show", "admin")["id"]
    r = cloud.http.get(f"{cloud.auth_url}/users/{admin_id}/credentials/OS-EC2/{field(admins, 'access')}",
                       headers={"X-Auth-Token": cloud.password_token(member["name"], member["password"],
                                                                     member["name"])[0]})
    assert r.status_code == 403, r.text


def test_member_cannot_see_or_revoke_others_tokens(cloud, member):
    tok, _ = cloud.password_token(member["name"], member["password"], member["name"])
    admin_tok = cloud.openstack("token", "issue")["id"]
    h = {"X-Auth-Token": tok, "X-Subject-Token": admin_tok}
    assert cloud.http.get(f"{cloud.auth_url}/auth/tokens", headers=h).status_code == 403
    assert cloud.http.delete(f"{cloud.auth_url}/auth/tokens", headers=h).status_code == 403
    assert cloud.validate(admin_tok).status_code == 200
    # their own token they may check and revoke
    own = {"X-Auth-Token": tok, "X-Subject-Token": tok}
    assert cloud.http.get(f"{cloud.auth_url}/auth/tokens", headers=own).status_code == 200
    assert cloud.http.delete(f"{cloud.auth_url}/auth/tokens", headers=own).status_code == 204
    assert cloud.validate(tok).status_code == 404
