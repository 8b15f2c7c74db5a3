"""The host-side spawn pipeline through the real clients: `ferrostack up --driver prepare`
(every step of a spawn for real, no hypervisor started). Servers created with the
openstack CLI leave under STATE/instances/<uuid>/ the cache file, the qcow2 overlay, the
config drive, injected files and the domain XML, and each is read back with an
independent tool: qemu-img, virt-xml-validate, xorriso + cloud-init's own config-drive
reader (Debian's /usr/bin/python3), debugfs.

Needs the host programs of scripts/host-tools (scripts/test installs them)."""

import base64
import crypt  # deprecated since 3.11 (removed in 3.13), still how to check a crypt(3) hash
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

SERVER_ENV = {
    "FERROSTACK_COMPUTE__DRIVER": "prepare",
    "FERROSTACK_HOST__VIRT_TYPE": "qemu",
    "FERROSTACK_HOST__LUKS_ITER_TIME_MS": "10",
    "FERROSTACK_HOST__INJECT_PARTITION": "-1",
    "FERROSTACK_HOST__INJECT_KEY": "true",
    "FERROSTACK_HOST__INJECT_PASSWORD": "true",
}
SPICE_PW = "spice-Pa55-w0rd"
CLOUD_INIT_READER = r"""
import sys, json, logging
logging.disable(logging.CRITICAL)
from cloudinit.sources.helpers import openstack
r = openstack.ConfigDriveReader(sys.argv[1]).read_v2()
ud = r["userdata"]
print(json.dumps({"metadata": r["metadata"],
  "userdata": ud.decode() if isinstance(ud, bytes) else ud,
  "networkdata": r["networkdata"],
  "files": {k: (v.decode() if isinstance(v, bytes) else v) for k, v in r["files"].items()},
  "ec2": r["ec2-metadata"]}, default=lambda b: b.decode("latin-1")))
"""


def tool(name):
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)
    if path is None:
        if os.environ.get("FERROSTACK_REQUIRE_HOST_TOOLS") == "1":
            pytest.fail(f"{name} is missing (scripts/host-tools installs it)")
        pytest.skip(f"{name} is not installed (scripts/host-tools)")
    return path


def run(*args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{args}: {p.stdout}\n{p.stderr}"
    return p.stdout


def qemu_img_info(path):
    return json.loads(run("qemu-img", "info", "-U", "--output=json", path))


def debugfs_cat(image, path):
    return run(tool("debugfs"), "-R", f"cat {path}", image)


def make_rootfs(dir, name, customise=None):
    """A small ext4 root filesystem image (raw, no partition table)."""
    tree = dir / f"{name}.tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "root").mkdir()
    (tree / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tree / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (tree / "etc" / "motd").write_text("original motd\n")
    if customise:
        customise(tree)
    img = dir / f"{name}.raw"
    run(tool("mkfs.ext4"), "-q", "-F", "-d", tree, img, "24M")
    return img


@pytest.fixture(scope="module")
def rootfs(cloud, tmp_path_factory):
    d = tmp_path_factory.mktemp("rootfs")
    img = make_rootfs(d, "root")
    created = cloud.openstack("image", "create", "--disk-format", "raw", "--container-format",
                              "bare", "--public", "--file", img, "prepare-ext4")
    assert created["status"] == "active"
    return {"id": created["id"], "file": img}


def instance_dir(cloud, server_id):
    return cloud.state / "instances" / server_id


def create(cloud, name, image, *extra, timeout=180):
    return cloud.openstack("server", "create", "--image", image, "--flavor", "m1.tiny",
                           "--network", "private", *extra, "--wait", name, timeout=timeout)


def create_with_files(cloud, name, image, files, key, metadata, user_data=None,
                      config_drive=False):
    """Personality files need microversion <= 2.56 and openstacksdk: the CLI's own
    `server create --file` is broken in python-openstackclient 10.5 ("Object of type
    BufferedReader is not JSON serializable", before any request is sent)."""
    import openstack

    config = openstack.config.OpenStackConfig(config_files=[cloud.clouds_yaml],
                                              secure_files=[], load_envvars=False)
    conn = openstack.connection.Connection(
        config=config.get_one(cloud="ferrostack", compute_api_version="2.56"))
    net = conn.network.find_network("private")
    kw = {}
    if user_data is not None:
        kw["user_data"] = base64.b64encode(user_data.encode()).decode()
    s = conn.compute.create_server(
        name=name, image_id=image, flavor_id=conn.compute.find_flavor("m1.tiny").id,
        networks=[{"uuid": net.id}], key_name=key, metadata=metadata,
        config_drive=config_drive,
        personality=[{"path": p, "contents": base64.b64encode(d.encode()).decode()}
                     for p, d in files.items()], **kw)
    admin_pass = s.admin_password
    s = conn.compute.wait_for_server(s, status="ACTIVE", wait=180)
    return {"id": s.id, "status": s.status, "adminPass": admin_pass}


def test_config_drive_overlay_cache_and_domain_xml(cloud, rootfs, name, tmp_path):
    for t in ("qemu-img", "xorriso", "virt-xml-validate", "debugfs"):
        tool(t)
    if not pathlib.Path("/usr/lib/python3/dist-packages/cloudinit").is_dir():
        tool("cloud-init")
    cloud.openstack("keypair", "create", "--private-key", tmp_path / "k.pem", f"k{name}")
    pub = cloud.openstack("keypair", "show", "--public-key", f"k{name}", fmt=None).strip()
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\nhostname: from-user-data\n")
    motd = tmp_path / "motd"
    motd.write_text("injected through the config drive\n")
    s = create_with_files(cloud, name, rootfs["id"], {"/etc/motd": motd.read_text()},
                          key=f"k{name}", metadata={"spice_passwd": SPICE_PW, "role": "web"},
                          user_data=user_data.read_text(), config_drive=True)
    assert s["status"] == "ACTIVE", s
    shown = cloud.openstack("server", "show", s["id"])
    assert shown["OS-EXT-STS:power_state"] in ("NOSTATE", "NOSTATE (0)", 0), shown
    d = instance_dir(cloud, s["id"])

    # the cache file: _base/sha1(image id), the uploaded bytes
    base = cloud.state / "instances" / "_base" / hashlib.sha1(rootfs["id"].encode()).hexdigest()
    assert base.read_bytes() == rootfs["file"].read_bytes()

    # the overlay: qcow2 on the cached base, grown to the flavor's 1 GiB root disk
    info = qemu_img_info(d / "disk")
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(base)
    assert info.get("backing-filename-format") == "raw"
    assert info["virtual-size"] == 1 << 30
    assert not info.get("encrypted", False)
    assert json.loads((d / "disk.info").read_text())[str(d / "disk")] == "qcow2"

    # the config drive, read by cloud-init's own reader
    out = tmp_path / "drive"
    run("xorriso", "-osirrox", "on", "-indev", d / "disk.config", "-extract", "/", out)
    got = json.loads(run("/usr/bin/python3", "-c", CLOUD_INIT_READER, out))
    md = got["metadata"]
    assert md["instance-id"] == s["id"]
    assert md["name"] == name
    assert md["public_keys"][f"k{name}"].strip() == pub
    assert md["meta"]["role"] == "web"
    assert md["meta"]["spice_passwd"] == SPICE_PW
    assert got["userdata"] == user_data.read_text()
    assert got["files"]["/etc/motd"] == motd.read_text()
    port = cloud.openstack("port", "list", "--server", s["id"])[0]
    links = got["networkdata"]["links"]
    assert links[0]["ethernet_mac_address"] == port["MAC Address"]
    fixed = port["Fixed IP Addresses"]
    ip = (fixed[0]["ip_address"] if isinstance(fixed, list) else
          str(fixed).split("ip_address='")[1].split("'")[0])
    net = got["networkdata"]["networks"][0]
    # the private subnet has DHCP: upstream then gives no address, only the type
    assert net["type"] == "ipv4_dhcp", net
    assert net["network_id"] == port["Network ID"] if "Network ID" in port else True
    assert got["ec2"]["local-ipv4"] == ip, got["ec2"]
    assert got["ec2"]["instance-id"].startswith("i-")
    # with a config drive, nothing is injected into the disk itself (as upstream)
    flat = tmp_path / "flat.raw"
    run("qemu-img", "convert", "-O", "raw", d / "disk", flat)
    assert debugfs_cat(flat, "/etc/motd") == "original motd\n"

    # the domain XML: valid, with the overlay, the cdrom and the console password
    xml_path = d / "libvirt.xml"
    assert xml_path.stat().st_mode & 0o777 == 0o600
    run("virt-xml-validate", xml_path, "domain")
    xml = xml_path.read_text()
    assert f"<uuid>{s['id']}</uuid>" in xml
    assert f'<source file="{base}"/>' in xml
    assert f'<source file="{d / "disk.config"}"/>' in xml and 'device="cdrom"' in xml
    assert xml.count(f'passwd="{SPICE_PW}"') == 2  # VNC and SPICE
    assert f'<mac address="{port["MAC Address"]}"/>' in xml
    assert f'<source path="{d / "console.log"}"/>' in xml
    assert SPICE_PW not in cloud.log.read_text(), "the console password was logged"

    cloud.openstack("server", "delete", "--wait", s["id"], fmt=None)
    assert not d.exists()
    assert base.exists(), "the cache outlives its servers (pruned later by age)"


def test_file_injection_into_the_overlay(cloud, rootfs, name, tmp_path):
    for t in ("qemu-img", "debugfs", "qemu-storage-daemon"):
        tool(t)
    cloud.openstack("keypair", "create", "--private-key", tmp_path / "k.pem", f"k{name}")
    pub = cloud.openstack("keypair", "show", "--public-key", f"k{name}", fmt=None).strip()
    motd = tmp_path / "motd"
    motd.write_text("injected into the disk\n")
    s = create_with_files(cloud, name, rootfs["id"],
                          {"/etc/motd": motd.read_text(), "/opt/app/conf": motd.read_text()},
                          key=f"k{name}", metadata={"role": "db"})
    assert s["status"] == "ACTIVE", s
    d = instance_dir(cloud, s["id"])
    assert not (d / "disk.config").exists()
    flat = tmp_path / "flat.raw"
    run("qemu-img", "convert", "-O", "raw", d / "disk", flat)
    assert pub in debugfs_cat(flat, "/root/.ssh/authorized_keys")
    assert debugfs_cat(flat, "/etc/motd") == motd.read_text()
    assert debugfs_cat(flat, "/opt/app/conf") == motd.read_text()
    assert json.loads(debugfs_cat(flat, "/meta.js")) == {"role": "db"}
    root = debugfs_cat(flat, "/etc/shadow").splitlines()[0].split(":")
    assert root[0] == "root" and root[1].startswith("$6$")
    assert crypt.crypt(s["adminPass"], root[1]) == root[1], "the admin password was injected"
    run(tool("e2fsck"), "-fn", flat)
    # the cached base is untouched
    base = pathlib.Path(qemu_img_info(d / "disk")["backing-filename"])
    assert base.read_bytes() == rootfs["file"].read_bytes()
    cloud.openstack("server", "delete", "--wait", s["id"], fmt=None)


def test_a_hostile_image_fails_the_build_and_is_not_written(cloud, name, tmp_path):
    tool("debugfs")

    def hostile(tree):
        os.symlink("/etc", tree / "root" / ".ssh")

    img = make_rootfs(tmp_path, "hostile", hostile)
    image = cloud.openstack("image", "create", "--disk-format", "raw", "--container-format",
                            "bare", "--file", img, f"hostile-{name}")
    cloud.openstack("keypair", "create", "--private-key", tmp_path / "k.pem", f"k{name}")
    s = cloud.openstack("server", "create", "--image", image["id"], "--flavor", "m1.tiny",
                        "--network", "private", "--key-name", f"k{name}", name)
    deadline = time.monotonic() + 120
    while (s := cloud.openstack("server", "show", s["id"]))["status"] == "BUILD":
        assert time.monotonic() < deadline, s
        time.sleep(0.3)
    assert s["status"] == "ERROR", s
    fault = json.dumps(s.get("fault"))
    assert "symlink" in fault, fault
    cloud.openstack("server", "delete", "--wait", s["id"], fmt=None)
    assert not instance_dir(cloud, s["id"]).exists()


def test_encrypted_disks_from_a_flavor(cloud, rootfs, name):
    tool("qemu-img")
    for mode in ("overlay", "full"):
        flavor = f"{name}-{mode}"
        cloud.openstack("flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1",
                        "--property", "hw:ephemeral_encryption=true",
                        "--property", "hw:ephemeral_encryption_format=luks",
                        "--property", f"hw:ephemeral_encryption_mode={mode}", flavor)
        s = cloud.openstack("server", "create", "--image", rootfs["id"], "--flavor", flavor,
                            "--no-network", "--wait", f"{name}-{mode}", timeout=180)
        assert s["status"] == "ACTIVE", s
        d = instance_dir(cloud, s["id"])
        info = qemu_img_info(d / "disk")
        assert info["encrypted"] is True, info
        assert ("backing-filename" in info) == (mode == "overlay"), info
        keys = d / "disk.keys"
        assert keys.stat().st_mode & 0o777 == 0o600
        xml = (d / "libvirt.xml").read_text()
        assert '<encryption format="luks">' in xml
        assert '<secret type="passphrase" uuid="' in xml
        run("virt-xml-validate", d / "libvirt.xml", "domain")
        if mode == "full":
            # nothing of the image is readable in the file
            assert b"original motd" not in (d / "disk").read_bytes()
        cloud.openstack("server", "delete", "--wait", s["id"], fmt=None)
        assert not d.exists()
        cloud.openstack("flavor", "delete", flavor, fmt=None)
