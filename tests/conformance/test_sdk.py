"""openstacksdk (from PyPI) against ferrostack: the identity proxy calls SDK users make."""

import json

import openstack.exceptions
import pytest


def test_sdk_session_and_listing(cloud):
    conn = cloud.sdk()
    assert conn.session.get_token()
    assert conn.current_project_id and conn.current_user_id
    assert {"admin", "service"} <= {p.name for p in conn.identity.projects()}
    assert {"admin", "member", "reader"} <= {r.name for r in conn.identity.roles()}
    assert "default" in {d.id for d in conn.identity.domains()}
    assert {e.interface for e in conn.identity.endpoints()} == {"public", "internal", "admin"}
    assert {"identity", "image", "compute", "network", "ec2"} <= {s.type for s in conn.identity.services()}
    assert [r.id for r in conn.identity.regions()] == ["RegionOne"]
    # the catalog the SDK resolves service endpoints from
    assert conn.endpoint_for("identity").rstrip("/").startswith(cloud.identity)


def test_sdk_project_and_user_lifecycle(cloud, name):
    conn = cloud.sdk()
    p = conn.identity.create_project(name=name, description="sdk", domain_id="default")
    assert p.id and p.is_enabled
    p = conn.identity.update_project(p, description="sdk2", is_enabled=False)
    got = conn.identity.get_project(p.id)
    assert got.description == "sdk2" and got.is_enabled is False
    assert conn.identity.find_project(name).id == p.id

    u = conn.identity.create_user(name=name, password="sdk-pw", default_project_id=p.id,
                                  email="s@example.com")
    assert u.id and conn.identity.get_user(u.id).email == "s@example.com"
    member = conn.identity.find_role("member")
    conn.identity.assign_project_role_to_user(p, u, member)
    assert conn.identity.validate_user_has_project_role(p, u, member)
    assigned = list(conn.identity.role_assignments(user_id=u.id, scope_project_id=p.id))
    assert [a.role["id"] for a in assigned] == [member.id]
    effective = list(conn.identity.role_assignments(user_id=u.id, effective=True, include_names=True))
    assert {a.role["name"] for a in effective} == {"member", "reader"}
    conn.identity.unassign_project_role_from_user(p, u, member)
    assert list(conn.identity.role_assignments(user_id=u.id)) == []

    g = conn.identity.create_group(name=name)
    conn.identity.add_user_to_group(u, g)
    assert conn.identity.check_user_in_group(u, g)
    conn.identity.remove_user_from_group(u, g)
    conn.identity.delete_group(g)

    conn.identity.delete_user(u)
    conn.identity.delete_project(p)
    assert conn.identity.find_project(name) is None
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.identity.get_user(u.id)


def test_sdk_application_credential(cloud, name):
    conn = cloud.sdk()
    me = conn.current_user_id
    ac = conn.identity.create_application_credential(user=me, name=name, description="x")
    assert ac.secret and ac.id
    assert name in [a.name for a in conn.identity.application_credentials(user=me)]
    got = conn.identity.get_application_credential(user=me, application_credential=ac.id)
    assert got.name == name and not got.secret

    cloud.add_user_cloud(name, auth_type="v3applicationcredential", auth={
        "application_credential_id": ac.id, "application_credential_secret": ac.secret})
    other = cloud.sdk(name)
    assert other.session.get_token()
    assert other.current_project_id == conn.current_project_id

    conn.identity.delete_application_credential(user=me, application_credential=ac)
    assert name not in [a.name for a in conn.identity.application_credentials(user=me)]


def test_sdk_ec2_credentials_via_the_credential_api(cloud, name):
    conn = cloud.sdk()
    blob = json.dumps({"access": f"{name}-a", "secret": f"{name}-s"})
    cred = conn.identity.create_credential(type="ec2", user_id=conn.current_user_id,
                                           project_id=conn.current_project_id, blob=blob)
    assert cred.id and cred.type == "ec2"
    listed = {c.id: c for c in conn.identity.credentials()}
    assert json.loads(listed[cred.id].blob) == {"access": f"{name}-a", "secret": f"{name}-s",
                                                "trust_id": None} or \
        json.loads(listed[cred.id].blob)["secret"] == f"{name}-s"
    assert conn.identity.get_credential(cred.id).project_id == conn.current_project_id
    # visible through the OS-EC2 API as well
    r = cloud.http.get(f"{cloud.auth_url}/users/{conn.current_user_id}/credentials/OS-EC2/{name}-a",
                       headers={"X-Auth-Token": conn.session.get_token()})
    assert r.status_code == 200 and r.json()["credential"]["secret"] == f"{name}-s"
    conn.identity.delete_credential(cred)
    assert cred.id not in {c.id for c in conn.identity.credentials()}


def test_sdk_as_a_member_cannot_administer(cloud, member, name):
    me = cloud.sdk(member["cloud"])
    assert me.current_project_id == member["project_id"]
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(me.identity.users())
    with pytest.raises(openstack.exceptions.ForbiddenException):
        me.identity.create_project(name=f"{name}-x")
    assert me.identity.get_project(member["project_id"]).name == member["name"]
