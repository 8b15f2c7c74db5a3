"""Compute (Nova v2.1) servers with the real clients: the openstack CLI and openstacksdk
against `ferrostack up` on the fake hypervisor driver.

Until the flavors/keypairs and network work lands, flavors are the interim ids "1"
(m1.tiny), "2" (m1.small), "42", "84" with no `/flavors` API, key pairs are unknown and
servers get no ports. The CLI looks flavors up through `/flavors`, so `server create`
and `server resize` with the CLI are xfail until then; servers for the other CLI tests
are made with openstacksdk, which sends flavorRef as given."""

import base64
import time

import openstack.exceptions
import pytest

from conftest import column

FLAVOR = "1"
WAIT = 60
NEEDS_FLAVORS = "needs flavors/keypairs merge (the CLI resolves flavors and key pairs by name)"
NEEDS_FLAVORS_AND_NETWORK = "needs flavors/keypairs and network merge"


# --- helpers --------------------------------------------------------------------------

def nova(cloud, method, path, token=None, microversion=None, **kw):
    """A raw Nova request (admin by default)."""
    h = {"X-Auth-Token": token or cloud.admin_token}
    if microversion:
        h["OpenStack-API-Version"] = f"compute {microversion}"
    return cloud.http.request(method, f"{cloud.base}/compute/v2.1{path}", headers=h, **kw)


def sdk_at(cloud, microversion, name="ferrostack"):
    """An openstacksdk connection whose compute calls use `microversion`."""
    import openstack

    path = cloud.clouds_yaml if name in cloud.clouds else str(cloud.users_file)
    config = openstack.config.OpenStackConfig(config_files=[path], secure_files=[],
                                              load_envvars=False)
    return openstack.connection.Connection(
        config=config.get_one(cloud=name, compute_api_version=microversion))


def sdk_boot(conn, image, name, wait=True, **kw):
    kw.setdefault("flavor_id", FLAVOR)
    kw.setdefault("networks", "none")
    s = conn.compute.create_server(name=name, image_id=image, **kw)
    if wait:
        s = conn.compute.wait_for_server(s, status="ACTIVE", wait=WAIT)
    return s


def cli_status(cloud, server_id, want, cloud_name="ferrostack", timeout=WAIT):
    """Polls `openstack server show` until status is `want` (and no task)."""
    deadline = time.monotonic() + timeout
    while True:
        s = cloud.openstack("server", "show", server_id, cloud=cloud_name)
        task = s.get("OS-EXT-STS:task_state")
        if s["status"] == want and not task:
            return s
        assert time.monotonic() < deadline, f"{server_id} not {want}: {s['status']} {task}"
        time.sleep(0.2)


def personality_body(image, name, files):
    return {"server": {"name": name, "imageRef": image, "flavorRef": FLAVOR,
                       "networks": "none", "personality": files}}


@pytest.fixture(scope="module")
def image(cloud, tmp_path_factory):
    """A small public raw image, made with the CLI."""
    f = tmp_path_factory.mktemp("img") / "disk.raw"
    f.write_bytes(bytes(range(256)) * 64)
    img = cloud.openstack("image", "create", "--disk-format", "raw", "--container-format",
                          "bare", "--public", "--file", f, "servers-image")
    assert img["status"] == "active"
    return img["id"]


@pytest.fixture
def member(cloud, name):
    project = cloud.openstack("project", "create", name)
    cloud.openstack("user", "create", "--password", f"pw-{name}", "--project", name, name)
    cloud.openstack("role", "add", "--user", name, "--project", name, "member", fmt=None)
    cloud.add_user_cloud(name, name, f"pw-{name}", project=name)
    return {"name": name, "cloud": name, "project_id": project["id"],
            "token": cloud.password_token(name, f"pw-{name}", name)[0]}


# --- the CLI ----------------------------------------------------------------------------

def test_cli_server_create_with_flavor_name_network_key_and_user_data(cloud, image, name, tmp_path):
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\nhostname: from-user-data\n")
    cloud.openstack("keypair", "create", "--private-key", tmp_path / "k.pem", f"k{name}")
    s = cloud.openstack("server", "create", "--image", image, "--flavor", "m1.tiny",
                        "--network", "private", "--key-name", f"k{name}",
                        "--property", "k=v", "--user-data", user_data, "--wait", name,
                        timeout=120)
    assert s["status"] == "ACTIVE"
    assert s["name"] == name
    assert s["key_name"] == f"k{name}"
    assert s["properties"] == {"k": "v"}
    shown = cloud.openstack("server", "show", s["id"])
    addrs = shown["addresses"]
    assert "private" in addrs and "10.0.0." in str(addrs["private"]), addrs
    assert shown["flavor"]["name"] == "m1.tiny" or "m1.tiny" in str(shown["flavor"])
    cloud.openstack("server", "delete", "--wait", s["id"], fmt=None)
    cloud.openstack("keypair", "delete", f"k{name}", fmt=None)


def test_cli_lists_shows_sets_and_acts_on_a_server(cloud, image, name):
    conn = cloud.sdk()
    sid = sdk_boot(conn, image, name).id

    listed = cloud.openstack("server", "list")
    assert sid in column(listed, "id")
    row = next(r for r in listed if r["ID"] == sid)
    assert row["Status"] == "ACTIVE" and row["Name"] == name
    assert sid in column(cloud.openstack("server", "list", "--long"), "id")
    assert column(cloud.openstack("server", "list", "--name", f"^{name}$"), "id") == [sid]

    shown = cloud.openstack("server", "show", sid)
    assert shown["id"] == sid and shown["status"] == "ACTIVE"
    assert shown["image"] and image in str(shown["image"])

    cloud.openstack("server", "set", "--property", "a=1", "--property", "b=2", sid, fmt=None)
    assert cloud.openstack("server", "show", sid)["properties"] == {"a": "1", "b": "2"}
    cloud.openstack("server", "unset", "--property", "a", sid, fmt=None)
    assert cloud.openstack("server", "show", sid)["properties"] == {"b": "2"}
    cloud.openstack("server", "set", "--name", f"{name}-renamed", sid, fmt=None)
    assert cloud.openstack("server", "show", sid)["name"] == f"{name}-renamed"

    cloud.openstack("server", "stop", sid, fmt=None)
    stopped = cli_status(cloud, sid, "SHUTOFF")
    assert str(stopped.get("OS-EXT-STS:power_state", stopped.get("power_state"))).lower() \
        in ("shutdown", "4"), stopped
    cloud.openstack("server", "start", sid, fmt=None)
    cli_status(cloud, sid, "ACTIVE")
    cloud.openstack("server", "reboot", "--wait", sid, fmt=None, timeout=120)
    cli_status(cloud, sid, "ACTIVE")
    cloud.openstack("server", "reboot", "--hard", "--wait", sid, fmt=None, timeout=120)
    cli_status(cloud, sid, "ACTIVE")
    cloud.openstack("server", "pause", sid, fmt=None)
    cli_status(cloud, sid, "PAUSED")
    cloud.openstack("server", "unpause", sid, fmt=None)
    cli_status(cloud, sid, "ACTIVE")
    cloud.openstack("server", "suspend", sid, fmt=None)
    cli_status(cloud, sid, "SUSPENDED")
    cloud.openstack("server", "resume", sid, fmt=None)
    cli_status(cloud, sid, "ACTIVE")

    # a state conflict is reported, not a crash
    cloud.openstack_fails("server", "start", sid, status=409)

    log = cloud.openstack("console", "log", "show", sid, fmt=None)
    assert "login:" in log
    tail = cloud.openstack("console", "log", "show", "--lines", "1", sid, fmt=None)
    assert len(tail.strip().splitlines()) == 1

    snap = cloud.openstack("server", "image", "create", "--name", f"{name}-snap", "--wait", sid,
                           timeout=120)
    assert snap["name"] == f"{name}-snap"
    img = cloud.openstack("image", "show", snap["id"])
    assert img["status"] == "active"
    cli_status(cloud, sid, "ACTIVE")

    actions = cloud.openstack("server", "event", "list", sid)
    assert {"create", "stop", "start", "reboot", "pause", "createImage"} <= set(column(actions, "action"))

    cloud.openstack("server", "delete", "--wait", sid, fmt=None, timeout=120)
    assert "No Server found" in cloud.openstack_fails("server", "show", sid)
    assert sid not in column(cloud.openstack("server", "list"), "id")
    cloud.openstack("image", "delete", snap["id"], fmt=None)


def test_cli_resize_and_confirm(cloud, image, name):
    sid = sdk_boot(cloud.sdk(), image, name).id
    cloud.openstack("server", "resize", "--flavor", "2", "--wait", sid, fmt=None, timeout=120)
    assert cli_status(cloud, sid, "VERIFY_RESIZE")
    cloud.openstack("server", "resize", "confirm", sid, fmt=None)
    s = cli_status(cloud, sid, "ACTIVE")
    assert "m1.small" in str(s["flavor"])
    cloud.openstack("server", "delete", "--wait", sid, fmt=None, timeout=120)


def test_cli_member_cannot_list_all_projects_or_see_others(cloud, image, member, name):
    sid = sdk_boot(cloud.sdk(), image, name).id
    cloud.openstack_fails("server", "list", "--all-projects", cloud=member["cloud"], status=403)
    assert cloud.openstack("server", "list", cloud=member["cloud"]) == []
    assert "No Server found" in cloud.openstack_fails("server", "show", sid, cloud=member["cloud"])
    assert "No Server found" in cloud.openstack_fails("server", "stop", sid, cloud=member["cloud"])
    assert "No Server found" in cloud.openstack_fails("server", "delete", sid, cloud=member["cloud"])
    # the admin sees it across projects
    assert sid in column(cloud.openstack("server", "list", "--all-projects"), "id")
    assert cloud.openstack("server", "show", sid)["status"] == "ACTIVE"
    cloud.openstack("server", "delete", "--wait", sid, fmt=None, timeout=120)


def test_cli_too_many_properties_is_403(cloud, image, name):
    sid = sdk_boot(cloud.sdk(), image, name).id
    args = []
    for i in range(129):
        args += ["--property", f"k{i}=v"]
    err = cloud.openstack_fails("server", "set", *args, sid, status=403)
    assert "Maximum number of metadata items exceeds 128" in err
    cloud.openstack("server", "delete", "--wait", sid, fmt=None, timeout=120)


# --- openstacksdk -----------------------------------------------------------------------

def test_sdk_create_wait_list_update_and_delete(cloud, image, name):
    conn = cloud.sdk()
    s = conn.compute.create_server(name=name, image_id=image, flavor_id=FLAVOR, networks="none",
                                   metadata={"role": "web"})
    assert s.admin_password and len(s.admin_password) == 12
    s = conn.compute.wait_for_server(s, status="ACTIVE", wait=WAIT)
    assert s.status == "ACTIVE"
    assert s.metadata == {"role": "web"}
    assert s.flavor["original_name"] == "m1.tiny"  # embedded flavor (>= 2.47)
    assert s.power_state == 1 and s.vm_state == "active"
    assert s.id in {x.id for x in conn.compute.servers()}
    assert [x.id for x in conn.compute.servers(name=f"^{name}$")] == [s.id]
    assert conn.compute.find_server(name).id == s.id

    conn.compute.update_server(s, name=f"{name}-2", description="described")
    got = conn.compute.get_server(s.id)
    assert got.name == f"{name}-2" and got.description == "described"
    conn.compute.set_server_metadata(s, extra="1")
    assert conn.compute.get_server_metadata(s).metadata == {"role": "web", "extra": "1"}
    conn.compute.delete_server_metadata(s, ["extra"])
    s.add_tag(conn.compute, "blue")
    assert "blue" in conn.compute.get_server(s.id).tags

    conn.compute.stop_server(s)
    conn.compute.wait_for_server(s, status="SHUTOFF", wait=WAIT)
    conn.compute.start_server(s)
    conn.compute.wait_for_server(s, status="ACTIVE", wait=WAIT)
    conn.compute.reboot_server(s, "HARD")
    conn.compute.wait_for_server(s, status="ACTIVE", wait=WAIT)
    out = conn.compute.get_server_console_output(s, length=1)
    assert len(out["output"].strip().splitlines()) == 1

    actions = list(conn.compute.server_actions(s))
    assert [a.action for a in actions][-1] == "create"
    conn.compute.delete_server(s)
    conn.compute.wait_for_delete(s, wait=WAIT)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.get_server(s.id)


def test_sdk_personality_at_2_56_and_refused_at_2_57(cloud, image, name):
    files = [{"path": "/etc/motd", "contents": base64.b64encode(b"hello\n").decode()}]
    conn = sdk_at(cloud, "2.56")
    s = conn.compute.create_server(name=name, image_id=image, flavor_id=FLAVOR,
                                   networks="none", personality=files)
    s = conn.compute.wait_for_server(s, status="ACTIVE", wait=WAIT)
    assert s.status == "ACTIVE"
    # the raw API through the SDK's session, pinned per call
    r = cloud.sdk().compute.post("/servers", json=personality_body(image, f"{name}-b", files),
                                 microversion="2.57", raise_exc=False)
    assert r.status_code == 400, r.text
    assert "'personality' was unexpected" in r.json()["badRequest"]["message"]
    cloud.sdk().compute.delete_server(s.id)


@pytest.mark.parametrize("files,message", [
    ([{"path": f"/f{i}", "contents": "QQ=="} for i in range(6)],
     "Personality file limit exceeded"),
    ([{"path": "/" + "p" * 255, "contents": "QQ=="}],
     "Personality file path exceeds maximum 255"),
    ([{"path": "/big", "contents": "A" * 10240 + "\n"}],
     "Personality file content exceeds maximum 10240"),
], ids=["count", "path-length", "content-size"])
def test_sdk_injected_file_quotas_are_403(cloud, image, name, files, message):
    conn = sdk_at(cloud, "2.56")
    with pytest.raises(openstack.exceptions.ForbiddenException) as e:
        conn.compute.create_server(name=name, image_id=image, flavor_id=FLAVOR,
                                   networks="none", personality=files)
    assert message in str(e.value)
    r = cloud.sdk().compute.post("/servers", json=personality_body(image, name, files),
                                 microversion="2.56", raise_exc=False)
    assert r.status_code == 403
    assert r.json() == {"forbidden": {"code": 403, "message": message}}
    assert name not in {s.name for s in cloud.sdk().compute.servers()}


def test_sdk_too_many_metadata_items_is_403(cloud, image, name):
    conn = cloud.sdk()
    with pytest.raises(openstack.exceptions.ForbiddenException) as e:
        conn.compute.create_server(name=name, image_id=image, flavor_id=FLAVOR, networks="none",
                                   metadata={f"k{i}": "v" for i in range(129)})
    assert "Maximum number of metadata items exceeds 128" in str(e.value)
    s = sdk_boot(conn, image, name, metadata={f"k{i}": "v" for i in range(128)})
    assert len(s.metadata) == 128
    conn.compute.delete_server(s)


def test_sdk_unknown_flavor_or_image_is_400(cloud, image, name):
    conn = cloud.sdk()
    with pytest.raises(openstack.exceptions.BadRequestException) as e:
        conn.compute.create_server(name=name, image_id=image, flavor_id="999", networks="none")
    assert "Flavor 999 could not be found." in str(e.value)
    missing = "11111111-2222-4333-8444-555555555555"
    with pytest.raises(openstack.exceptions.BadRequestException) as e:
        conn.compute.create_server(name=name, image_id=missing, flavor_id=FLAVOR, networks="none")
    assert f"Image {missing} could not be found." in str(e.value)
    # networks are required from 2.37
    r = conn.compute.post("/servers", json={"server": {"name": name, "imageRef": image,
                                                       "flavorRef": FLAVOR}},
                          microversion="2.37", raise_exc=False)
    assert r.status_code == 400


def test_sdk_member_all_projects_is_403(cloud, image, member, name):
    conn = cloud.sdk(member["cloud"])
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(conn.compute.servers(all_projects=True))
    mine = sdk_boot(conn, image, name)
    assert [s.id for s in conn.compute.servers()] == [mine.id]
    r = nova(cloud, "GET", "/servers?all_tenants=1", token=member["token"])
    assert r.status_code == 403
    assert r.json()["forbidden"]["code"] == 403
    conn.compute.delete_server(mine)
    conn.compute.wait_for_delete(mine, wait=WAIT)
