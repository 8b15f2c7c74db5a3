"""The consumer the config drive exists for: a real Debian 12 image with cloud-init
(scripts/guest-images cloudinit), booted on the qemu driver with the openstack CLI.
cloud-init itself, unmodified from Debian's packages, must apply the key pair (SSH as
its default user `debian`), the hostname, a `#cloud-config` user-data (write_files +
runcmd) and the network configuration of network_data.json.

One boot per run (~25 s under TCG); SQLite only."""

import uuid

import pytest

from test_qemu import fixed_ip, guest_cloud, guest_image

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def guests(tmp_path_factory):
    yield from guest_cloud(tmp_path_factory)


def test_cloud_init_applies_the_config_drive(guests, tmp_path, name):
    image = guest_image("cloudinit")
    c = guests.cloud
    c.openstack("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                "--file", image, "--property", "hw_qemu_guest_agent=yes", "debian-ci",
                timeout=300)
    c.openstack("keypair", "create", "--public-key", f"{guests.key}.pub", "kci")
    token = uuid.uuid4().hex
    ud = tmp_path / "user-data"
    ud.write_text(f"""#cloud-config
write_files:
  - path: /etc/ferrostack-test
    permissions: '0644'
    content: |
      written-by-cloud-init {token}
runcmd:
  - [sh, -c, "echo runcmd-{token} > /var/tmp/runcmd-marker"]
""")
    s = c.openstack("server", "create", "--wait", "--image", "debian-ci", "--flavor", "m1.small",
                    "--key-name", "kci", "--user-data", str(ud), "--config-drive", "True",
                    "--network", "private", name, timeout=300)
    sid = s["id"]
    ip = fixed_ip(guests.server(sid))
    mac = c.openstack("port", "list", "--server", sid)[0]["MAC Address"]

    # the key pair logs in as cloud-init's default user; cloud-init finished cleanly
    out = guests.ssh(sid, "cloud-init status --wait >/dev/null; cloud-init status; hostname; "
                          "cat /etc/ferrostack-test /var/tmp/runcmd-marker; "
                          "sudo -n cat /run/cloud-init/instance-data.json | "
                          "python3 -c 'import json,sys; d=json.load(sys.stdin); "
                          "print(d[\"v1\"][\"platform\"], d[\"v1\"][\"instance_id\"])'; "
                          "ip -4 -o addr show; ip -o link show",
                     user="debian", timeout=300)
    lines = out.splitlines()
    assert lines[0] == "status: done", out
    assert lines[1] == name, out
    assert lines[2] == f"written-by-cloud-init {token}", out
    assert lines[3] == f"runcmd-{token}", out
    # the OpenStack config drive datasource found this server (cloud-init's platform
    # for it is "configdrive")
    assert lines[4].split() == ["configdrive", sid], out
    assert f"inet {ip}/" in out, out
    assert mac.lower() in out.lower(), out
    # network config rendered by cloud-init from network_data.json (ifupdown)
    net = guests.ssh(sid, "cat /etc/network/interfaces.d/50-cloud-init", user="debian")
    assert "auto" in net and ("dhcp" in net or ip in net), net
    # sudo works for the default user (cloud-init's default_user)
    assert guests.ssh(sid, "sudo -n id -u", user="debian").strip() == "0"
    c.openstack("server", "delete", "--wait", sid, fmt=None, timeout=120)
