"""The metadata service at 169.254.169.254, from inside real guests (qemu driver, TCG,
no config drive): each guest reads its own OpenStack and EC2 documents and no other's —
whatever it sends — the rest of 169.254.0.0/16 is refused, the guest can post its
password once, and real cloud-init in the Debian image configures a guest (key,
hostname, user data) from the service alone.

The service tells guests apart by the QEMU process that made the connection
(ferrostack_virt::metadata_route); this needs root and iptables, which CI has."""

import hashlib
import json
import os
import uuid

import pytest

from test_qemu import BOOT_TIMEOUT, create, guest_cloud, guest_image

pytestmark = pytest.mark.timeout(900)

MD = "http://169.254.169.254"


def ec2_id(prefix, os_id):
    """The EC2 id ferrostack gives an OpenStack id (the EC2 API's ids)."""
    return f"{prefix}-" + hashlib.sha256(f"{prefix}:{os_id}".encode()).hexdigest()[:17]


@pytest.fixture(scope="module")
def guests(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the metadata service's interception needs root")
    yield from guest_cloud(tmp_path_factory, {
        # a port of its own (other clouds may hold the default), and no silent
        # fallback: this module is about the service
        "FERROSTACK_METADATA__LISTEN": "127.0.0.1:0",
        "FERROSTACK_METADATA__INTERCEPT": "on",
    })


@pytest.fixture(scope="module")
def tiny_image(guests):
    img = guests.cloud.openstack(
        "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
        "--file", guest_image("tiny"), "--public", "tiny-md", timeout=120)
    assert img["status"] == "active", img
    return img["id"]


@pytest.fixture(scope="module")
def keypair(guests):
    guests.cloud.openstack("keypair", "create", "--public-key", f"{guests.key}.pub", "kmd")
    return "kmd"


def fetch(guests, sid, path, *wget_args):
    """wget inside the guest; returns (exit status, body). busybox's own -T crashes,
    so `timeout` bounds it."""
    args = " ".join(wget_args)
    out = guests.ssh(sid, f"timeout 20 wget -q -O - {args} '{MD}{path}'; echo \"rc=$?\"")
    body, _, rc = out.rpartition("rc=")
    return int(rc.strip()), body.rstrip("\n")


def test_each_guest_reads_its_own_data_and_nothing_else(guests, tiny_image, keypair, name,
                                                         tmp_path):
    c = guests.cloud
    ud = {}
    ids = []
    for i in range(2):
        f = tmp_path / f"ud{i}"
        ud[i] = f"user-data-{i}-{uuid.uuid4().hex}"
        f.write_text(ud[i])
        ids.append(create(guests, f"{name}-{i}", tiny_image, keypair, "--user-data", str(f),
                          wait=False))
    for sid in ids:
        guests.wait_status(sid, "ACTIVE")
    for i, sid in enumerate(ids):
        other = ids[1 - i]
        assert not (guests.instance_dir(sid) / "disk.config").exists()
        rc, body = fetch(guests, sid, "/openstack/latest/meta_data.json")
        assert rc == 0, body
        md = json.loads(body)
        assert md["uuid"] == sid and md["name"] == f"{name}-{i}", md
        assert guests.key.with_suffix(".pub").read_text().split()[1] in md["public_keys"]["kmd"]
        assert "admin_pass" not in md and "files" not in md
        rc, body = fetch(guests, sid, "/openstack/latest/user_data")
        assert (rc, body) == (0, ud[i])
        rc, body = fetch(guests, sid, "/openstack/latest/network_data.json")
        assert rc == 0 and json.loads(body)["links"], body
        rc, body = fetch(guests, sid, "/openstack")
        assert rc == 0 and "2018-08-27" in body.split() and "latest" in body.split(), body
        # the EC2 tree: the same instance id the EC2 API gives it
        rc, body = fetch(guests, sid, "/latest/meta-data/instance-id")
        assert (rc, body) == (0, ec2_id("i", sid))
        rc, body = fetch(guests, sid, "/2009-04-04/meta-data/public-keys/")
        assert (rc, body) == (0, "0=kmd")
        rc, body = fetch(guests, sid, "/2009-04-04/user-data")
        assert (rc, body) == (0, ud[i])
        # nothing the guest sends changes whose data it gets
        rc, body = fetch(guests, sid, "/openstack/latest/meta_data.json",
                         f"--header 'X-Instance-ID: {other}'",
                         f"--header 'X-Tenant-ID: {c.openstack('server', 'show', other)['project_id']}'")
        assert rc == 0 and json.loads(body)["uuid"] == sid, body
        rc, body = fetch(guests, sid, "/openstack/latest/meta_data.json",
                         "--header 'X-Forwarded-For: 10.0.0.99'")
        assert rc != 0, body
        # the rest of the link-local network is refused at once (not carried to the host's)
        out = guests.ssh(sid, "timeout 10 wget -q -O - http://169.254.169.253/ ; echo rc=$?")
        assert "rc=0" not in out, out
    # the password: posted once by the guest, then refused; the owner reads it over Nova
    sid = ids[0]
    rc, _ = fetch(guests, sid, "/openstack/latest/password", "--post-data=ZW5jcnlwdGVk")
    assert rc == 0
    rc, body = fetch(guests, sid, "/openstack/latest/password")
    assert (rc, body) == (0, "ZW5jcnlwdGVk")
    rc, _ = fetch(guests, sid, "/openstack/latest/password", "--post-data=again")
    assert rc != 0
    r = c.http.get(f"{c.base}/compute/v2.1/servers/{sid}/os-server-password",
                   headers={"X-Auth-Token": c.admin_token})
    assert r.status_code == 200 and r.json()["password"] == "ZW5jcnlwdGVk", r.text
    # the second guest never saw it
    rc, body = fetch(guests, ids[1], "/openstack/latest/password")
    assert (rc, body) == (0, "")
    for sid in ids:
        c.openstack("server", "delete", "--wait", sid, fmt=None, timeout=120)


def test_cloud_init_configures_a_guest_from_the_metadata_service(guests, keypair, name,
                                                                  tmp_path):
    """Debian 12's cloud-init, no config drive: the OpenStack datasource finds the service
    and applies the key (as `debian`), the hostname and a #cloud-config user data."""
    c = guests.cloud
    c.openstack("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                "--file", guest_image("cloudinit"), "debian-md", timeout=300)
    token = uuid.uuid4().hex
    ud = tmp_path / "user-data"
    ud.write_text(f"""#cloud-config
write_files:
  - path: /etc/ferrostack-md-test
    content: |
      from-the-metadata-service {token}
""")
    s = c.openstack("server", "create", "--wait", "--image", "debian-md", "--flavor", "m1.small",
                    "--key-name", keypair, "--user-data", str(ud), "--network", "private",
                    name, timeout=BOOT_TIMEOUT + 180)
    sid = s["id"]
    assert not (guests.instance_dir(sid) / "disk.config").exists()
    out = guests.ssh(sid, "cloud-init status --wait >/dev/null; cloud-init status; hostname; "
                          "cat /etc/ferrostack-md-test; "
                          "sudo -n cat /run/cloud-init/instance-data.json | "
                          "python3 -c 'import json,sys; d=json.load(sys.stdin); "
                          "print(d[\"v1\"][\"platform\"], d[\"v1\"][\"instance_id\"])'",
                     user="debian", timeout=300)
    lines = out.splitlines()
    assert lines[0] == "status: done", out
    assert lines[1] == name, out
    assert lines[2] == f"from-the-metadata-service {token}", out
    # cloud-init's OpenStack datasource over the network (platform "openstack", not
    # "configdrive")
    assert lines[3].split() == ["openstack", sid], out
    # IMDSv2 from inside the guest: a token (PUT with a TTL) opens the EC2 tree, a wrong
    # token is 401, a PUT without a TTL 400
    imds = guests.ssh(sid, """python3 - <<'PY'
import urllib.request as u, urllib.error as e
B = "http://169.254.169.254"
def code(req):
    try:
        return u.urlopen(req, timeout=10).read().decode()
    except e.HTTPError as x:
        return str(x.code)
t = code(u.Request(B + "/latest/api/token", method="PUT",
                   headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}))
print(code(u.Request(B + "/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": t})))
print(code(u.Request(B + "/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": "bad"})))
print(code(u.Request(B + "/latest/api/token", method="PUT")))
PY""", user="debian")
    assert imds.split() == [ec2_id("i", sid), "401", "400"], imds
    c.openstack("server", "delete", "--wait", sid, fmt=None, timeout=120)
