"""Real guests: `ferrostack up` on the qemu driver (TCG here), driven with the unmodified
openstack CLI and openstacksdk, and checked from inside the guests through `ferrostack
ssh` or from QEMU's own process.

The guest is scripts/guest-images' "tiny" image (Debian kernel + busybox + dropbear +
qemu-ga): it applies the config drive's keys and hostname, runs "#!" user-data and prints
"TINY-READY" on its serial console. The cloud-init image has its own module
(test_qemu_cloudinit.py).

Needs qemu-system-x86_64 and the image builder's packages (scripts/host-tools,
scripts/guest-images; scripts/test runs both). Runs on SQLite only: the database backends
are the API suites' business, and every boot here costs seconds of TCG.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import BIN, ROOT, _cloud, clean_env

SPICE_PW = f"spice-{uuid.uuid4().hex[:12]}"
SERVER_ENV = {
    "FERROSTACK_COMPUTE__DRIVER": "qemu",
    "FERROSTACK_HOST__VIRT_TYPE": "qemu",
    "FERROSTACK_HOST__LUKS_ITER_TIME_MS": "10",
    # file injection into the root filesystem when there is no config drive
    "FERROSTACK_HOST__INJECT_PARTITION": "-1",
    "FERROSTACK_HOST__INJECT_KEY": "true",
    # a clean shutdown of the tiny guest takes well under a second; a guest that
    # ignores ACPI must not hold a test for a minute
    "FERROSTACK_COMPUTE__SHUTDOWN_TIMEOUT": "20",
    "FERROSTACK_COMPUTE__SHUTDOWN_RETRY_INTERVAL": "5",
}
BOOT_TIMEOUT = 120  # TCG; the tiny guest reaches SSH in ~6 s on an idle machine
pytestmark = pytest.mark.timeout(900)  # whole walk-throughs of TCG guests


def need_qemu():
    if shutil.which("qemu-system-x86_64") is None:
        if os.environ.get("FERROSTACK_REQUIRE_HOST_TOOLS") == "1":
            pytest.fail("qemu-system-x86_64 is missing (scripts/host-tools installs it)")
        pytest.skip("qemu-system-x86_64 is not installed (scripts/host-tools)")


def guest_image(name):
    """The cached test image NAME, built by scripts/guest-images when missing."""
    need_qemu()
    env_name = f"FERROSTACK_TEST_{name.upper()}_IMAGE"
    if os.environ.get(env_name):
        return os.environ[env_name]
    p = subprocess.run([str(ROOT / "scripts" / "guest-images"), name], capture_output=True,
                       text=True, timeout=1800)
    assert p.returncode == 0, f"scripts/guest-images {name} failed:\n{p.stderr[-3000:]}"
    return p.stdout.strip().splitlines()[-1]


class Guests:
    """A qemu-driver cloud plus what the tests need to reach its guests."""

    def __init__(self, cloud, tmp):
        self.cloud = cloud
        self.tmp = tmp
        self.key = tmp / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)],
                       check=True)

    # ---- API --------------------------------------------------------------------
    def server(self, sid):
        return self.cloud.openstack("server", "show", sid)

    def wait_status(self, sid, want, timeout=BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            s = self.server(sid)
            if s["status"] == want and not s.get("OS-EXT-STS:task_state"):
                return s
            if s["status"] == "ERROR" and want != "ERROR":
                raise AssertionError(f"server {sid} went to ERROR: {s.get('fault')}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server {sid} not {want} within {timeout}s: {s['status']} "
                                     f"task={s.get('OS-EXT-STS:task_state')}\n"
                                     f"{self.cloud.log_tail()}")
            time.sleep(0.5)

    def instance_dir(self, sid):
        return self.cloud.state / "instances" / sid

    def qemu_pid(self, sid):
        """The pid of the guest's QEMU, or None when no QEMU of that guest runs."""
        try:
            pid = int((self.instance_dir(sid) / "qemu.pid").read_text().strip())
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if sid.encode() in cmd else None

    # ---- inside the guest ---------------------------------------------------------
    def ssh_argv(self, sid, command, user="root", connect_timeout=5):
        return [BIN, "ssh", "--os-cloud", "ferrostack", f"{user}@{sid}",
                "-i", str(self.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", f"ConnectTimeout={connect_timeout}",
                # rebuilt guests get new host keys
                "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "LogLevel=ERROR",
                "--", command]

    def try_ssh(self, sid, command, user="root", timeout=30):
        env = clean_env({"OS_CLIENT_CONFIG_FILE": self.cloud.clouds_yaml})
        try:
            return subprocess.run(self.ssh_argv(sid, command, user), env=env, text=True,
                                  capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 255, "", "ssh timed out")

    def ssh(self, sid, command, user="root", timeout=BOOT_TIMEOUT):
        """Runs COMMAND in the guest through `ferrostack ssh`, retrying while the guest
        boots; returns its stdout."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.try_ssh(sid, command, user)
            if p.returncode == 0:
                return p.stdout
            if time.monotonic() > deadline:
                raise AssertionError(f"`ferrostack ssh {sid} {command}` failed for {timeout}s: "
                                     f"rc={p.returncode}\n{p.stderr}\n--- console:\n"
                                     f"{self.console(sid)[-2000:]}")
            time.sleep(1)

    def boot_id(self, sid):
        return self.ssh(sid, "cat /proc/sys/kernel/random/boot_id").strip()

    def console(self, sid):
        try:
            return self.cloud.openstack("console", "log", "show", sid, fmt=None)
        except Exception as e:  # noqa: BLE001 - for failure messages only
            return f"(console log unavailable: {e})"


@pytest.fixture(scope="module")
def tiny():
    return guest_image("tiny")


def guest_cloud(tmp_path_factory, env=None):
    """A qemu-driver cloud on SQLite (a generator for module fixtures): servers left by a
    failed test are deleted, and any QEMU still running is killed, at the end. `env` adds
    to SERVER_ENV."""
    need_qemu()
    tmp = tmp_path_factory.mktemp("qemu")
    gen = _cloud("sqlite", tmp_path_factory, {**SERVER_ENV, **(env or {})})
    cloud = next(gen)
    try:
        yield Guests(cloud, tmp)
    finally:
        try:
            for s in cloud.openstack("server", "list", "--all-projects"):
                cloud.run_cli("server", "delete", "--wait", s["ID"], fmt=None, timeout=120)
        finally:
            gen.close()
            for pidfile in (cloud.state / "instances").glob("*/qemu.pid"):
                try:
                    os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass


@pytest.fixture(scope="module")
def guests(tmp_path_factory):
    yield from guest_cloud(tmp_path_factory)


@pytest.fixture(scope="module")
def image(guests, tiny):
    img = guests.cloud.openstack(
        "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
        "--file", tiny, "--property", "hw_qemu_guest_agent=yes", "--public", "tiny",
        timeout=120)
    assert img["status"] == "active", img
    return img["id"]


@pytest.fixture(scope="module")
def keypair(guests):
    guests.cloud.openstack("keypair", "create", "--public-key", f"{guests.key}.pub", "k1")
    return "k1"


def create(guests, name, image, keypair, *extra, flavor="m1.tiny", wait=True):
    args = ["server", "create", "--image", image, "--flavor", flavor, "--key-name", keypair,
            "--network", "private", *extra, name]
    if wait:
        args.insert(2, "--wait")
    s = guests.cloud.openstack(*args, timeout=BOOT_TIMEOUT + 60)
    if wait:
        assert s["status"] == "ACTIVE", s
    return s["id"]


def fixed_ip(server):
    addrs = server["addresses"]
    if isinstance(addrs, dict):
        return addrs["private"][0]
    m = re.search(r"(\d+\.\d+\.\d+\.\d+)", str(addrs))
    return m.group(1)


def secrets_absent(guests, secrets):
    """No secret in any process's command line or in any log. The domain description
    (domain.json, libvirt.xml) holds the console password as libvirt's own domain files
    do: it must be 0600 in a 0700 directory."""
    secrets = [s for s in secrets if s]
    for p in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = p.read_bytes()
        except OSError:
            continue
        for s in secrets:
            assert s.encode() not in cmd, f"a secret is on the command line of {p}"
    state = guests.cloud.state
    for f in [guests.cloud.log, *state.glob("*.log"), *state.glob("instances/*/*")]:
        if not f.is_file() or f.name in ("disk", "disk.keys") or f.name.startswith("disk."):
            continue
        data = f.read_bytes()
        for s in secrets:
            if s.encode() in data:
                assert f.name in ("domain.json", "libvirt.xml"), f"a secret is in {f}"
                assert f.stat().st_mode & 0o777 == 0o600, f"{f} holds a secret and is not 0600"


def test_boot_with_config_drive_then_every_action(guests, image, keypair, name, tmp_path):
    """The issue's walk-through: boot with key, user-data, spice password and config drive,
    then every server action, each checked from inside the guest or from QEMU."""
    c = guests.cloud
    ud = tmp_path / "user-data"
    ud.write_text("#!/bin/sh\necho user-data-ran > /root/user-data-marker\n")
    sid = create(guests, name, image, keypair, "--user-data", str(ud),
                 "--property", f"spice_passwd={SPICE_PW}", "--config-drive", "True")
    server = guests.server(sid)
    ip = fixed_ip(server)
    out = guests.ssh(sid, "cat /root/user-data-marker; hostname; ip -4 -o addr show dev eth0")
    lines = out.splitlines()
    assert lines[0] == "user-data-ran", out
    assert lines[1] == name, out
    assert f"inet {ip}/" in lines[2], out
    pid = guests.qemu_pid(sid)
    assert pid, "no QEMU process for the server"
    # QEMU dropped to the unprivileged user
    uid = int(re.search(r"^Uid:\s+(\d+)", pathlib.Path(f"/proc/{pid}/status").read_text(),
                        re.M).group(1))
    assert uid != 0, "QEMU runs as root"
    assert (guests.instance_dir(sid).stat().st_mode & 0o777) == 0o700
    secrets_absent(guests, [SPICE_PW])

    # console log: the guest's serial output, tail semantics
    log = c.openstack("console", "log", "show", sid, fmt=None)
    assert "TINY-READY" in log, log[-2000:]
    tail = c.openstack("console", "log", "show", "--lines", "3", sid, fmt=None)
    assert len(tail.rstrip("\n").splitlines()) <= 3, tail

    # stop: ACPI power-off, QEMU gone; start: the same disk boots again
    boot0 = guests.boot_id(sid)
    guests.ssh(sid, "echo persisted > /root/disk-marker; sync")
    c.openstack("server", "stop", sid, fmt=None)
    guests.wait_status(sid, "SHUTOFF", timeout=60)
    assert guests.qemu_pid(sid) is None, "QEMU still runs after stop"
    c.openstack("server", "start", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE")
    assert guests.ssh(sid, "cat /root/disk-marker").strip() == "persisted"
    boot1 = guests.boot_id(sid)
    assert boot1 != boot0

    # soft and hard reboot: new boots, same process for a soft reboot
    for kind in ("--soft", "--hard"):
        c.openstack("server", "reboot", kind, "--wait", sid, fmt=None, timeout=BOOT_TIMEOUT)
        guests.wait_status(sid, "ACTIVE")
        b = guests.boot_id(sid)
        assert b != boot1, f"reboot {kind} did not reboot the guest"
        boot1 = b

    # pause/unpause: vCPUs stopped (no SSH answer), then the same boot goes on
    c.openstack("server", "pause", sid, fmt=None)
    guests.wait_status(sid, "PAUSED", timeout=30)
    p = guests.try_ssh(sid, "true", timeout=15)
    assert p.returncode != 0, "a paused guest answered SSH"
    c.openstack("server", "unpause", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE", timeout=30)
    assert guests.boot_id(sid) == boot1

    # suspend/resume: QEMU process gone, memory restored (same boot, same tmpfs file)
    guests.ssh(sid, "echo in-memory > /run/memory-marker")
    c.openstack("server", "suspend", sid, fmt=None)
    guests.wait_status(sid, "SUSPENDED", timeout=60)
    assert guests.qemu_pid(sid) is None, "QEMU still runs while suspended"
    c.openstack("server", "resume", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE", timeout=60)
    assert guests.ssh(sid, "cat /run/memory-marker").strip() == "in-memory"
    assert guests.boot_id(sid) == boot1

    # createImage, and a server booted from that image carries the disk's contents
    snap = f"{name}-snap"
    c.openstack("server", "image", "create", "--wait", "--name", snap, sid, timeout=300)
    guests.wait_status(sid, "ACTIVE", timeout=30)
    img = c.openstack("image", "show", snap)
    assert img["status"] == "active", img
    sid2 = create(guests, f"{name}-2", snap, keypair, "--config-drive", "True")
    assert guests.ssh(sid2, "cat /root/disk-marker; hostname").split() == ["persisted", f"{name}-2"]
    c.openstack("server", "delete", "--wait", sid2, fmt=None, timeout=90)

    # rebuild: a new root disk from the image (the marker is gone), the same server
    c.openstack("server", "rebuild", "--wait", "--image", image, sid, fmt=None,
                timeout=BOOT_TIMEOUT)
    guests.wait_status(sid, "ACTIVE")
    out = guests.ssh(sid, "cat /root/disk-marker 2>/dev/null || echo no-marker; hostname")
    assert out.split() == ["no-marker", name], out

    # resize: more vCPUs, RAM and disk seen by the guest; confirm
    before = guests.ssh(sid, "nproc; awk '/MemTotal/ {print $2}' /proc/meminfo; "
                             "cat /sys/block/vda/size").split()
    c.openstack("server", "resize", "--flavor", "m1.small", "--wait", sid, fmt=None,
                timeout=BOOT_TIMEOUT + 60)
    guests.wait_status(sid, "VERIFY_RESIZE")
    after = guests.ssh(sid, "nproc; awk '/MemTotal/ {print $2}' /proc/meminfo; "
                            "cat /sys/block/vda/size").split()
    assert int(after[1]) > int(before[1]) * 2, (before, after)  # 512 MiB -> 2 GiB
    assert int(after[2]) > int(before[2]), (before, after)  # 1 GB -> 20 GB
    c.openstack("server", "resize", "confirm", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE", timeout=30)

    # delete: process, files and port gone
    pid = guests.qemu_pid(sid)
    port_ids = [p["ID"] for p in c.openstack("port", "list", "--server", sid)]
    assert port_ids
    c.openstack("server", "delete", "--wait", sid, fmt=None, timeout=90)
    assert pid is None or not pathlib.Path(f"/proc/{pid}").exists()
    assert not guests.instance_dir(sid).exists()
    left = {p["ID"] for p in c.openstack("port", "list")}
    assert not left & set(port_ids)
    secrets_absent(guests, [SPICE_PW])


def test_change_password_through_the_guest_agent(guests, image, keypair, name):
    """changePassword reaches the guest through qemu-ga: the guest's /etc/shadow gets a
    crypt hash of the new password (checked with the host's crypt)."""
    import crypt  # deprecated since 3.11, still how to check a crypt(3) hash

    sid = create(guests, name, image, keypair, "--config-drive", "True")
    guests.ssh(sid, "true")
    pw = f"Pw-{uuid.uuid4().hex[:10]}"
    conn = guests.cloud.sdk()
    conn.compute.change_server_password(sid, pw)
    line = guests.ssh(sid, "grep '^root:' /etc/shadow").strip()
    h = line.split(":")[1]
    assert h.startswith("$6$") and crypt.crypt(pw, h) == h, line
    secrets_absent(guests, [pw])
    guests.cloud.openstack("server", "delete", "--wait", sid, fmt=None, timeout=90)


def test_file_injection_without_config_drive(guests, image, keypair, name):
    """No config drive: the key is injected into the root filesystem before boot
    (inject_partition=-1, inject_key=true) and logs in; the guest saw no config drive."""
    sid = create(guests, name, image, keypair)
    assert not (guests.instance_dir(sid) / "disk.config").exists()
    out = guests.ssh(sid, "cat /root/.ssh/authorized_keys")
    assert "injected by ferrostack" in out, out
    assert guests.key.with_suffix(".pub").read_text().split()[1] in out
    console = guests.console(sid)
    assert "no config drive" in console and "TINY-META" not in console, console[-2000:]
    guests.cloud.openstack("server", "delete", "--wait", sid, fmt=None, timeout=90)


def test_encrypted_server(guests, image, keypair, name):
    """A flavor asking for ephemeral encryption: the guest boots from a LUKS overlay and
    SSH works; a marker written in the guest never reaches the overlay file in clear; with
    another instance's key in its place the start fails with a clear fault, not a hang."""
    c = guests.cloud
    flavor = f"{name}-luks"
    c.openstack("flavor", "create", "--ram", "512", "--vcpus", "1", "--disk", "1",
                "--property", "hw:ephemeral_encryption=true", flavor)
    sid = create(guests, name, image, keypair, "--config-drive", "True", flavor=flavor)
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(guests.instance_dir(sid) / "disk")],
        capture_output=True, text=True, check=True).stdout)
    assert info.get("encrypted") is True, info
    # the LUKS passphrase reached QEMU as a secret file, removed once QEMU had read it
    argv = pathlib.Path(f"/proc/{guests.qemu_pid(sid)}/cmdline").read_bytes().split(b"\0")
    secrets = [a.decode() for a in argv if a.startswith(b"secret,")]
    assert secrets, argv
    for obj in secrets:
        assert "data=" not in obj and "file=" in obj, obj
        path = dict(kv.split("=", 1) for kv in obj.split(",")[1:])["file"]
        assert not os.path.exists(path), f"secret file {path} left behind"
    marker = f"MARKER-{uuid.uuid4().hex}"
    guests.ssh(sid, f"for i in $(seq 200); do echo {marker}; done > /root/m; sync; "
                    "echo 3 > /proc/sys/vm/drop_caches")
    c.openstack("server", "stop", sid, fmt=None)
    guests.wait_status(sid, "SHUTOFF", timeout=60)
    disk = (guests.instance_dir(sid) / "disk").read_bytes()
    assert marker.encode() not in disk, "the marker is in clear in the encrypted overlay"
    # the guest did write it: it is there after a start
    c.openstack("server", "start", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE")
    assert marker in guests.ssh(sid, "head -1 /root/m")

    # wrong key: another encrypted server's sealed key in this one's place
    other = create(guests, f"{name}-o", image, keypair, flavor=flavor, wait=True)
    c.openstack("server", "stop", sid, fmt=None)
    guests.wait_status(sid, "SHUTOFF", timeout=60)
    mine = guests.instance_dir(sid) / "disk.keys"
    mine.write_bytes((guests.instance_dir(other) / "disk.keys").read_bytes())
    c.openstack("server", "start", sid, fmt=None)
    deadline = time.monotonic() + 60
    while True:
        s = guests.server(sid)
        if not s.get("OS-EXT-STS:task_state"):
            break
        assert time.monotonic() < deadline, f"start with a wrong key still busy: {s}"
        time.sleep(0.5)
    assert guests.qemu_pid(sid) is None, "QEMU runs with a wrong key"
    assert s["status"] in ("SHUTOFF", "ERROR"), s
    actions = c.openstack("server", "event", "list", sid)
    start = next(a for a in actions if a["Action"] == "start")
    detail = c.openstack("server", "event", "show", sid, start["Request ID"])
    events = detail.get("events") or []
    assert any(e.get("result") == "Error" for e in events), detail
    for x in (sid, other):
        c.openstack("server", "delete", "--wait", x, fmt=None, timeout=90)


def test_guests_outlive_ferrostack(guests, image, keypair, name):
    """kill -9 of ferrostack with three guests running: the same QEMU processes go on, a
    restart re-attaches (ACTIVE, SSH works, stop works). kill -9 of one QEMU: SHUTOFF within
    10 s with an instance-action event; start brings it back."""
    c = guests.cloud
    ids = [create(guests, f"{name}-{i}", image, keypair, "--config-drive", "True", wait=False)
           for i in range(3)]
    for sid in ids:
        guests.wait_status(sid, "ACTIVE")
    for sid in ids:
        guests.ssh(sid, "true")
    pids = {sid: guests.qemu_pid(sid) for sid in ids}
    assert all(pids.values()), pids

    c.proc.kill()  # SIGKILL
    c.proc.wait()
    c.proc = None
    time.sleep(1)
    assert {sid: guests.qemu_pid(sid) for sid in ids} == pids, "a guest died with ferrostack"
    c.start()
    assert {sid: guests.qemu_pid(sid) for sid in ids} == pids, "a guest was restarted"
    for sid in ids:
        assert guests.server(sid)["status"] == "ACTIVE"
        assert guests.ssh(sid, "hostname").strip() == sid_name(c, sid)
    c.openstack("server", "stop", ids[0], fmt=None)
    guests.wait_status(ids[0], "SHUTOFF", timeout=60)
    assert guests.qemu_pid(ids[0]) is None

    # kill -9 of one QEMU
    victim = ids[1]
    t0 = time.monotonic()
    os.kill(pids[victim], signal.SIGKILL)
    while guests.server(victim)["status"] != "SHUTOFF":
        assert time.monotonic() - t0 < 10, "a killed QEMU was not noticed within 10 s"
        time.sleep(0.2)
    noticed = time.monotonic() - t0
    actions = c.openstack("server", "event", "list", victim)
    stop = next(a for a in actions if a["Action"] == "stop")
    detail = c.openstack("server", "event", "show", victim, stop["Request ID"])
    assert detail.get("events"), detail
    c.openstack("server", "start", victim, fmt=None)
    guests.wait_status(victim, "ACTIVE")
    guests.ssh(victim, "true")
    print(f"kill -9 of QEMU noticed in {noticed:.2f}s")
    for sid in ids:
        c.openstack("server", "delete", "--wait", sid, fmt=None, timeout=90)


def sid_name(cloud, sid):
    return cloud.openstack("server", "show", sid)["name"]


def test_power_off_inside_suspend_across_restart_backup_and_host_reboot(guests, image, keypair,
                                                                        name):
    """A guest powered off from inside becomes SHUTOFF (a `stop` action with an event); a
    suspended guest stays suspended across a ferrostack restart and resumes with its
    memory; createBackup makes an active image; after a (simulated) host reboot a guest
    that should run is started again."""
    c = guests.cloud
    sid = create(guests, name, image, keypair, "--config-drive", "True")
    guests.ssh(sid, "true")

    # powered off from inside
    guests.try_ssh(sid, "sync; poweroff -f", timeout=20)
    t0 = time.monotonic()
    while guests.server(sid)["status"] != "SHUTOFF":
        assert time.monotonic() - t0 < 30, "a guest that powered itself off is not SHUTOFF"
        time.sleep(0.2)
    assert guests.qemu_pid(sid) is None
    actions = c.openstack("server", "event", "list", sid)
    assert any(a["Action"] == "stop" for a in actions), actions
    c.openstack("server", "start", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE")

    # suspended across a restart of ferrostack
    guests.ssh(sid, "echo kept-in-memory > /run/memory-marker")
    c.openstack("server", "suspend", sid, fmt=None)
    guests.wait_status(sid, "SUSPENDED", timeout=60)
    c.proc.kill()
    c.proc.wait()
    c.proc = None
    c.start()
    assert guests.server(sid)["status"] == "SUSPENDED"
    c.openstack("server", "resume", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE", timeout=60)
    assert guests.ssh(sid, "cat /run/memory-marker").strip() == "kept-in-memory"

    # createBackup of a running guest
    backup = f"{name}-backup"
    c.openstack("server", "backup", "create", "--name", backup, "--type", "daily",
                "--rotate", "1", sid, fmt=None, timeout=60)
    deadline = time.monotonic() + 300
    while True:
        imgs = [i for i in c.openstack("image", "list", "--long") if i["Name"] == backup]
        if imgs and imgs[0]["Status"] == "active":
            break
        assert time.monotonic() < deadline, f"backup not active: {imgs}"
        time.sleep(1)
    guests.wait_status(sid, "ACTIVE", timeout=60)
    props = c.openstack("image", "show", backup)["properties"]
    assert props.get("image_type") == "backup" and props.get("backup_type") == "daily", props

    # host reboot, simulated: ferrostack and the guest's QEMU both gone, and the boot id
    # the guest was started under is not this boot's
    old_pid = guests.qemu_pid(sid)
    c.proc.kill()
    c.proc.wait()
    c.proc = None
    os.kill(old_pid, signal.SIGKILL)
    time.sleep(0.5)
    run = guests.instance_dir(sid) / "run.json"
    rec = json.loads(run.read_text())
    rec["boot_id"] = "00000000-0000-0000-0000-000000000000"
    run.write_text(json.dumps(rec))
    c.start()
    guests.wait_status(sid, "ACTIVE", timeout=60)
    new_pid = guests.qemu_pid(sid)
    assert new_pid and new_pid != old_pid, "the guest was not started again after the reboot"
    guests.ssh(sid, "true")
    actions = [a["Action"] for a in c.openstack("server", "event", "list", sid)]
    assert "start" in actions, actions
    c.openstack("server", "delete", "--wait", sid, fmt=None, timeout=90)
