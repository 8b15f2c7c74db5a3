"""The compute catalog (Nova v2.1) as its users see it: the unmodified openstack CLI
and openstacksdk for flavors, key pairs, availability zones, limits, quotas,
hypervisors and compute services; the raw API where the CLI hides the answer."""

import sqlite3
import subprocess
import time
import uuid

import pytest

from conftest import column, field

NOVA = {"OpenStack-API-Version": "compute 2.1"}


def api(cloud, method, path, token=None, mv="2.1", **kw):
    h = {"X-Auth-Token": token or cloud.admin_token, "OpenStack-API-Version": f"compute {mv}"}
    return cloud.http.request(method, f"{cloud.base}/compute/v2.1{path}", headers=h, **kw)


def ensure_host(cloud):
    """A registered compute host: the agent's, else one written to the hosts table
    (SQLite) the way an agent registers itself."""
    hosts = cloud.openstack("hypervisor", "list")
    if hosts:
        return field(hosts[0], "Hypervisor Hostname")
    if cloud.backend != "sqlite":
        pytest.skip("no compute host registered and no SQLite file to add one to")
    now = int(time.time() * 1_000_000)
    db = sqlite3.connect(cloud.state / "ferrostack.db")
    with db:
        db.execute(
            "INSERT INTO hosts (id, name, service_id, availability_zone, enabled, disabled_reason,"
            " forced_down, hypervisor_type, hypervisor_version, vcpus, memory_mb, local_gb,"
            " cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio,"
            " reserved_host_memory_mb, reserved_host_disk_mb, host_ip, last_seen_us,"
            " created_at_us, updated_at_us) VALUES"
            " (?, 'conf-host', ?, 'nova', 1, NULL, 0, 'fake', 1000, 8, 16384, 200, 16.0, 1.5, 1.0,"
            " 512, 0, '127.0.0.1', ?, ?, ?)",
            (str(uuid.uuid4()), str(uuid.uuid4()), now, now, now))
    db.close()
    return "conf-host"


# --- flavors ---------------------------------------------------------------------------

def test_default_flavors_are_listed(cloud):
    names = column(cloud.openstack("flavor", "list"), "Name")
    for n in ["m1.nano", "m1.micro", "m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"]:
        assert n in names
    tiny = cloud.openstack("flavor", "show", "m1.tiny")
    assert field(tiny, "id") == "1"
    assert field(tiny, "ram") == 512
    assert field(tiny, "vcpus") == 1
    assert field(tiny, "disk") == 1
    nano = cloud.openstack("flavor", "show", "42")
    assert field(nano, "name") == "m1.nano"


def test_flavor_create_set_unset_delete(cloud, name):
    f = cloud.openstack("flavor", "create", "--ram", "256", "--vcpus", "2", "--disk", "3",
                        "--ephemeral", "1", "--swap", "64", "--description", "made by a test",
                        "--property", "hw:cpu_policy=shared", name)
    assert field(f, "name") == name
    assert len(field(f, "id")) == 36  # --id auto sends "id": null
    assert field(f, "ram") == 256
    assert field(f, "swap") == 64
    assert field(f, "OS-FLV-EXT-DATA:ephemeral") == 1
    assert field(f, "description") == "made by a test"
    assert field(f, "properties") == {"hw:cpu_policy": "shared"}

    cloud.openstack("flavor", "set", "--property", "quota:disk_read_bytes_sec=1000",
                    "--description", "changed", name, fmt=None)
    shown = cloud.openstack("flavor", "show", name)
    assert field(shown, "properties") == {"hw:cpu_policy": "shared",
                                          "quota:disk_read_bytes_sec": "1000"}
    assert field(shown, "description") == "changed"
    cloud.openstack("flavor", "unset", "--property", "hw:cpu_policy", name, fmt=None)
    assert field(cloud.openstack("flavor", "show", name), "properties") == {
        "quota:disk_read_bytes_sec": "1000"}

    err = cloud.openstack_fails("flavor", "create", "--ram", "1", "--vcpus", "1", name)
    assert "already exists" in err

    cloud.openstack("flavor", "delete", name, fmt=None)
    assert name not in column(cloud.openstack("flavor", "list", "--all"), "Name")


def test_private_flavor_is_seen_only_by_projects_given_access(cloud, member, name):
    other = f"{name}x"
    f = cloud.openstack("flavor", "create", "--ram", "128", "--vcpus", "1", "--disk", "1",
                        "--private", "--project", member["name"], name)
    assert field(f, "os-flavor-access:is_public") is False
    cloud.openstack("flavor", "create", "--ram", "128", "--vcpus", "1", "--private", other)

    seen = column(cloud.openstack("flavor", "list", cloud=member["cloud"]), "Name")
    assert name in seen and other not in seen
    cloud.openstack_fails("flavor", "show", other, cloud=member["cloud"])
    assert field(cloud.openstack("flavor", "show", name, cloud=member["cloud"]), "id") == field(f, "id")

    private = column(cloud.openstack("flavor", "list", "--private"), "Name")
    assert {name, other} <= set(private) and "m1.tiny" not in private
    access = cloud.openstack("flavor", "show", name)
    assert member["project_id"] in str(field(access, "access_project_ids"))

    cloud.openstack("flavor", "unset", "--project", member["name"], name, fmt=None)
    assert name not in column(cloud.openstack("flavor", "list", cloud=member["cloud"]), "Name")
    cloud.openstack_fails("flavor", "create", "--ram", "1", "--vcpus", "1", f"{name}m",
                          cloud=member["cloud"], status=403)
    for n in (name, other):
        cloud.openstack("flavor", "delete", n, fmt=None)


def test_sdk_pages_through_flavors(cloud):
    conn = cloud.sdk()
    everything = [f.name for f in conn.compute.flavors(details=True)]
    paged = [f.name for f in conn.compute.flavors(details=True, limit=2, paginated=True)]
    assert everything == paged
    assert len(everything) >= 7


# --- key pairs -------------------------------------------------------------------------

def test_keypair_generated_private_key_is_printed_once(cloud, member, name):
    out = cloud.openstack("keypair", "create", name, cloud=member["cloud"], fmt=None)
    assert "PRIVATE KEY-----" in out
    shown = cloud.openstack("keypair", "show", name, cloud=member["cloud"])
    assert field(shown, "name") == name
    assert field(shown, "user_id") == member["user_id"]
    assert not shown.get("private_key")
    assert len(field(shown, "fingerprint")) == 47
    # the key is the user's: the admin does not see it in its own list
    assert name not in column(cloud.openstack("keypair", "list"), "Name")
    cloud.openstack_fails("keypair", "show", name)
    cloud.openstack("keypair", "delete", name, cloud=member["cloud"], fmt=None)
    assert name not in column(cloud.openstack("keypair", "list", cloud=member["cloud"]), "Name")


def test_keypair_import_reports_the_openssh_md5_fingerprint(cloud, name, tmp_path):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t@h", "-f", str(key)],
                   check=True)
    want = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", f"{key}.pub"], check=True,
                          capture_output=True, text=True).stdout.split()[1].removeprefix("MD5:")
    k = cloud.openstack("keypair", "create", "--public-key", f"{key}.pub", name)
    assert field(k, "fingerprint") == want
    assert field(k, "type") == "ssh"
    listed = cloud.openstack("keypair", "list")
    assert want in column(listed, "Fingerprint")
    bad = tmp_path / "bad.pub"
    bad.write_text("ssh-rsa AAAAnotakey t@h\n")
    err = cloud.openstack_fails("keypair", "create", "--public-key", bad, f"{name}b", status=400)
    assert "Keypair data is invalid" in err
    err = cloud.openstack_fails("keypair", "create", "--public-key", f"{key}.pub", name, status=409)
    assert "already exists" in err
    cloud.openstack("keypair", "delete", name, fmt=None)


def test_keypair_quota_is_enforced(cloud, member, name):
    cloud.openstack("quota", "set", "--key-pairs", "1", member["name"], fmt=None)
    cloud.openstack("keypair", "create", name, cloud=member["cloud"], fmt=None)
    err = cloud.openstack_fails("keypair", "create", f"{name}2", cloud=member["cloud"], status=403)
    assert "Quota exceeded, too many key pairs." in err


def test_sdk_x509_keypair(cloud, name):
    conn = cloud.sdk()
    conn.compute.default_microversion = "2.2"
    kp = conn.compute.create_keypair(name=name, type="x509")
    assert kp.type == "x509"
    assert kp.private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert kp.public_key.startswith("-----BEGIN CERTIFICATE-----")
    conn.compute.delete_keypair(name)


# --- zones, limits, quotas -------------------------------------------------------------

def test_availability_zone_list(cloud):
    zones = cloud.openstack("availability", "zone", "list", "--compute")
    assert "nova" in column(zones, "Zone Name")
    assert set(column(zones, "Zone Status")) == {"available"}


def test_limits_show_absolute(cloud, member):
    out = cloud.openstack("limits", "show", "--absolute", cloud=member["cloud"])
    limits = {r["Name"]: r["Value"] for r in out} if isinstance(out, list) else out
    # the SDK's names for maxTotalInstances, maxTotalCores, ...
    assert limits["instances"] == 10
    assert limits["total_cores"] == 20
    assert limits["total_ram"] == 51200
    assert limits["keypairs"] == 100
    assert limits["instances_used"] == 0
    raw = api(cloud, "GET", "/limits", token=cloud.password_token(
        member["name"], member["password"], member["name"])[0]).json()
    assert raw["limits"]["absolute"]["maxTotalInstances"] == 10


def test_quota_set_and_show(cloud, member):
    cloud.openstack("quota", "set", "--instances", "5", "--cores", "12", "--ram", "4096",
                    member["name"], fmt=None)
    q = cloud.openstack("quota", "show", "--compute", member["name"])
    values = {r["Resource"]: r["Limit"] for r in q} if isinstance(q, list) else q
    assert values["instances"] == 5
    assert values["cores"] == 12
    assert values["ram"] == 4096
    # a member reads its own quotas, not another project's
    mine = cloud.openstack("quota", "show", "--compute", member["project_id"],
                           cloud=member["cloud"])
    assert mine
    cloud.openstack_fails("quota", "set", "--instances", "50", member["name"],
                          cloud=member["cloud"], status=403)
    r = api(cloud, "GET", f"/os-quota-sets/{member['project_id']}/detail")
    assert r.json()["quota_set"]["instances"] == {"in_use": 0, "limit": 5, "reserved": 0}


# --- hypervisors and services ----------------------------------------------------------

def test_hypervisor_list_and_show(cloud, member):
    host = ensure_host(cloud)
    hv = cloud.openstack("hypervisor", "list")
    assert host in column(hv, "Hypervisor Hostname")
    shown = cloud.openstack("hypervisor", "show", host)
    assert field(shown, "hypervisor_type") == "fake"
    assert field(shown, "state") == "up"
    cloud.openstack_fails("hypervisor", "list", cloud=member["cloud"], status=403)


def test_compute_service_disable_and_enable(cloud):
    host = ensure_host(cloud)
    services = cloud.openstack("compute", "service", "list")
    assert "nova-scheduler" in column(services, "Binary")
    cloud.openstack("compute", "service", "set", "--disable", "--disable-reason", "testing",
                    host, "nova-compute", fmt=None)
    mine = [s for s in cloud.openstack("compute", "service", "list", "--long")
            if field(s, "Host") == host and field(s, "Binary") == "nova-compute"]
    assert field(mine[0], "Status") == "disabled"
    assert field(mine[0], "Disabled Reason") == "testing"
    cloud.openstack("compute", "service", "set", "--enable", host, "nova-compute", fmt=None)
    mine = [s for s in cloud.openstack("compute", "service", "list")
            if field(s, "Host") == host and field(s, "Binary") == "nova-compute"]
    assert field(mine[0], "Status") == "enabled"


def test_server_groups_with_the_cli(cloud, name):
    g = cloud.openstack("server", "group", "create", "--policy", "anti-affinity", name)
    assert field(g, "policy") == "anti-affinity"
    assert name in column(cloud.openstack("server", "group", "list"), "Name")
    cloud.openstack("server", "group", "delete", name, fmt=None)
    assert name not in column(cloud.openstack("server", "group", "list"), "Name")
