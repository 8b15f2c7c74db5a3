"""Domains, projects, users, groups, roles and assignments through the openstack CLI."""

import pytest

from conftest import column


def names(rows):
    return column(rows, "name")


def test_domain_lifecycle_with_its_own_users(cloud, name):
    d = cloud.openstack("domain", "create", "--description", "first", name)
    assert d["name"] == name and d["enabled"] is True and d["id"] != "default"
    assert name in names(cloud.openstack("domain", "list"))
    assert cloud.openstack("domain", "show", name)["description"] == "first"
    cloud.openstack("domain", "set", "--description", "second", name, fmt=None)
    assert cloud.openstack("domain", "show", d["id"])["description"] == "second"

    # a project and a user of that domain; the user logs in with the domain's name
    p = cloud.openstack("project", "create", "--domain", name, f"{name}-p")
    assert p["domain_id"] == d["id"]
    u = cloud.openstack("user", "create", "--domain", name, "--password", "pw", f"{name}-u")
    assert u["domain_id"] == d["id"]
    cloud.openstack("role", "add", "--user", f"{name}-u", "--user-domain", name,
                    "--project", f"{name}-p", "--project-domain", name, "member", fmt=None)
    cloud.add_user_cloud(name, f"{name}-u", "pw", project=f"{name}-p", domain=name)
    assert cloud.openstack("token", "issue", cloud=name)["project_id"] == p["id"]

    cloud.openstack_fails("domain", "delete", name, status=403)  # still enabled
    cloud.openstack("domain", "set", "--disable", name, fmt=None)
    assert cloud.openstack("domain", "show", name)["enabled"] is False
    cloud.openstack_fails("token", "issue", cloud=name, status=401)  # its users are out
    cloud.openstack("domain", "delete", name, fmt=None)
    assert name not in names(cloud.openstack("domain", "list"))
    # (the CLI reports a missing resource as "No Project found for ...", not the 404)
    cloud.openstack_fails("project", "show", p["id"])
    cloud.openstack_fails("user", "show", u["id"])


def test_project_lifecycle_with_parent(cloud, name):
    parent = cloud.openstack("project", "create", "--description", "p", name)
    assert parent["domain_id"] == "default" and parent["parent_id"] == "default"
    assert parent["enabled"] is True and parent["is_domain"] is False
    child = cloud.openstack("project", "create", "--parent", name, f"{name}-child")
    assert child["parent_id"] == parent["id"]
    listed = names(cloud.openstack("project", "list"))
    assert name in listed and f"{name}-child" in listed
    assert names(cloud.openstack("project", "list", "--parent", parent["id"])) == [f"{name}-child"]

    cloud.openstack("project", "set", "--disable", "--description", "off", f"{name}-child", fmt=None)
    shown = cloud.openstack("project", "show", f"{name}-child")
    assert shown["enabled"] is False and shown["description"] == "off"
    cloud.openstack("project", "set", "--enable", "--name", f"{name}-kid", f"{name}-child", fmt=None)
    kid = cloud.openstack("project", "show", f"{name}-kid")
    assert kid["enabled"] is True and kid["id"] == child["id"]

    cloud.openstack_fails("project", "delete", name, status=403)  # not a leaf
    cloud.openstack("project", "delete", f"{name}-kid", fmt=None)
    cloud.openstack("project", "delete", name, fmt=None)
    assert name not in names(cloud.openstack("project", "list"))
    assert "No Project found" in cloud.openstack_fails("project", "show", parent["id"])


def test_disabled_project_cannot_be_logged_into(cloud, member):
    cloud.openstack("token", "issue", cloud=member["cloud"])
    cloud.openstack("project", "set", "--disable", member["name"], fmt=None)
    cloud.openstack_fails("token", "issue", cloud=member["cloud"], status=401)
    cloud.openstack("project", "set", "--enable", member["name"], fmt=None)
    cloud.openstack("token", "issue", cloud=member["cloud"])


def test_duplicate_names_are_refused_with_409(cloud, name):
    cloud.openstack("project", "create", name)
    cloud.openstack_fails("project", "create", name, status=409)
    assert names(cloud.openstack("project", "list")).count(name) == 1
    cloud.openstack("user", "create", name)
    cloud.openstack_fails("user", "create", name, status=409)
    cloud.openstack("group", "create", name)
    cloud.openstack_fails("group", "create", name, status=409)
    cloud.openstack("role", "create", name)
    cloud.openstack_fails("role", "create", name, status=409)
    cloud.openstack("domain", "create", name)
    cloud.openstack_fails("domain", "create", name, status=409)
    # `--or-show` turns the conflict into a lookup, client-side
    assert cloud.openstack("project", "create", "--or-show", name)["name"] == name


def test_user_lifecycle_password_and_disable(cloud, name):
    p = cloud.openstack("project", "create", name)
    u = cloud.openstack("user", "create", "--password", "pw-1", "--project", name,
                        "--email", "u@example.com", "--description", "d", name)
    assert u["name"] == name and u["enabled"] is True and u["default_project_id"] == p["id"]
    assert "password" not in u
    shown = cloud.openstack("user", "show", name)
    assert shown["email"] == "u@example.com" and shown["id"] == u["id"]
    assert name in names(cloud.openstack("user", "list"))
    assert names(cloud.openstack("user", "list", "--project", name)) == []
    cloud.openstack("role", "add", "--user", name, "--project", name, "member", fmt=None)
    assert names(cloud.openstack("user", "list", "--project", name)) == [name]
    me = cloud.add_user_cloud(name, name, "pw-1", project=name)
    tok = cloud.openstack("token", "issue", cloud=me)
    assert tok["user_id"] == u["id"] and tok["project_id"] == p["id"]

    cloud.openstack("user", "set", "--password", "pw-2", "--email", "v@example.com", name, fmt=None)
    assert cloud.openstack("user", "show", name)["email"] == "v@example.com"
    cloud.openstack_fails("token", "issue", cloud=me, status=401)
    me = cloud.add_user_cloud(name, name, "pw-2", project=name)
    cloud.openstack("token", "issue", cloud=me)

    cloud.openstack("user", "set", "--disable", name, fmt=None)
    assert cloud.openstack("user", "show", name)["enabled"] is False
    cloud.openstack_fails("token", "issue", cloud=me, status=401)
    cloud.openstack("user", "set", "--enable", name, fmt=None)
    cloud.openstack("token", "issue", cloud=me)

    cloud.openstack("user", "delete", name, fmt=None)
    cloud.openstack_fails("user", "show", u["id"])
    cloud.openstack_fails("token", "issue", cloud=me, status=401)


def test_disabling_a_user_ends_their_tokens(cloud, member):
    tok = cloud.openstack("token", "issue", cloud=member["cloud"])["id"]
    assert cloud.validate(tok).status_code == 200
    cloud.openstack("user", "set", "--disable", member["name"], fmt=None)
    assert cloud.validate(tok).status_code == 404


def test_user_changes_own_password_with_the_original(cloud, member):
    me = member["cloud"]
    cloud.openstack_fails("user", "password", "set", "--password", "new-pw",
                          "--original-password", "wrong", cloud=me, status=401)
    cloud.openstack("user", "password", "set", "--password", "new-pw",
                    "--original-password", member["password"], cloud=me, fmt=None)
    cloud.openstack_fails("token", "issue", cloud=me, status=401)
    me = cloud.add_user_cloud(member["name"], member["name"], "new-pw", project=member["name"])
    cloud.openstack("token", "issue", cloud=me)


def test_group_membership(cloud, name):
    g = cloud.openstack("group", "create", "--description", "ops", name)
    assert g["name"] == name and g["domain_id"] == "default"
    cloud.openstack("user", "create", "--password", "pw", name)
    # `group contains user` exits 0 either way: "not in group" goes to stderr
    rc, out, err, _ = cloud.run_cli("group", "contains", "user", name, name, fmt=None)
    assert rc == 0 and "not in group" in err and out == ""
    cloud.openstack("group", "add", "user", name, name, fmt=None)
    rc, out, err, _ = cloud.run_cli("group", "contains", "user", name, name, fmt=None)
    assert rc == 0 and f"{name} in group {name}" in out
    assert name in names(cloud.openstack("group", "list", "--user", name))
    assert names(cloud.openstack("user", "list", "--group", name)) == [name]
    cloud.openstack("group", "set", "--name", f"{name}-2", "--description", "dev", name, fmt=None)
    shown = cloud.openstack("group", "show", f"{name}-2")
    assert shown["id"] == g["id"] and shown["description"] == "dev"
    cloud.openstack("group", "remove", "user", f"{name}-2", name, fmt=None)
    assert cloud.openstack("group", "list", "--user", name) == []
    cloud.openstack("group", "delete", f"{name}-2", fmt=None)
    assert f"{name}-2" not in names(cloud.openstack("group", "list"))


def test_group_role_gives_members_access(cloud, name):
    cloud.openstack("project", "create", name)
    cloud.openstack("group", "create", name)
    cloud.openstack("user", "create", "--password", "pw", name)
    cloud.openstack("group", "add", "user", name, name, fmt=None)
    me = cloud.add_user_cloud(name, name, "pw", project=name)
    cloud.openstack_fails("token", "issue", cloud=me, status=401)  # no role on it yet
    cloud.openstack("role", "add", "--group", name, "--project", name, "member", fmt=None)
    cloud.openstack("token", "issue", cloud=me)
    eff = cloud.openstack("role", "assignment", "list", "--effective", "--names", "--user", name)
    assert {(r["Role"], r["Project"]) for r in eff} == {("member", f"{name}@Default"),
                                                         ("reader", f"{name}@Default")}


def test_role_assignments_and_implied_roles(cloud, name):
    cloud.openstack("project", "create", name)
    cloud.openstack("user", "create", "--password", "pw", name)
    role = cloud.openstack("role", "create", name)
    assert cloud.openstack("role", "show", name)["id"] == role["id"]
    cloud.openstack("role", "set", "--description", "custom", name, fmt=None)
    assert cloud.openstack("role", "show", role["id"])["description"] == "custom"
    assert {"admin", "member", "reader", name} <= set(names(cloud.openstack("role", "list")))

    cloud.openstack("role", "add", "--user", name, "--project", name, "member", fmt=None)
    rows = cloud.openstack("role", "assignment", "list", "--names", "--user", name)
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == \
        [("member", f"{name}@Default", f"{name}@Default")]
    eff = cloud.openstack("role", "assignment", "list", "--names", "--effective", "--user", name)
    assert sorted(r["Role"] for r in eff) == ["member", "reader"]
    by_project = cloud.openstack("role", "assignment", "list", "--project", name)
    assert [r["User"] for r in by_project] == [cloud.openstack("user", "show", name)["id"]]

    implied = cloud.openstack("implied", "role", "list")
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in implied}
    assert {("admin", "member"), ("member", "reader")} <= pairs
    cloud.openstack("implied", "role", "create", "--implied-role", "reader", name)
    assert (name, "reader") in {(r["Prior Role Name"], r["Implied Role Name"])
                                for r in cloud.openstack("implied", "role", "list")}
    cloud.openstack("implied", "role", "delete", "--implied-role", "reader", name, fmt=None)
    assert (name, "reader") not in {(r["Prior Role Name"], r["Implied Role Name"])
                                    for r in cloud.openstack("implied", "role", "list")}

    cloud.openstack("role", "add", "--user", name, "--project", name, name, fmt=None)
    cloud.openstack("role", "remove", "--user", name, "--project", name, "member", fmt=None)
    rows = cloud.openstack("role", "assignment", "list", "--names", "--user", name)
    assert [r["Role"] for r in rows] == [name]
    cloud.openstack("role", "delete", name, fmt=None)  # in use: its assignments go with it
    assert cloud.openstack("role", "assignment", "list", "--user", name) == []


def test_system_role_assignment_of_admin(cloud):
    rows = cloud.openstack("role", "assignment", "list", "--names", "--user", "admin")
    got = {(r["Role"], r["Project"], r["System"]) for r in rows}
    assert ("admin", "admin@Default", "") in got
    assert ("admin", "", "all") in got


@pytest.mark.parametrize("what", ["project", "user", "group", "role", "domain"])
def test_show_of_unknown_name_fails_cleanly(cloud, what, name):
    err = cloud.openstack_fails(what, "show", name)
    assert "No " in err or "404" in err or "Could not find" in err, err
