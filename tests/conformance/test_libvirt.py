"""Real guests under libvirt: `ferrostack up` with `[compute] driver = libvirt` against
the host's libvirtd (qemu:///system; scripts/libvirtd starts it, scripts/host-tools
--libvirt installs it), driven with the openstack CLI and checked through `ferrostack
ssh`, `virsh` and /proc. The same tiny guest as test_qemu.py (its helpers are reused).

Bounded: every wait has a timeout; guests boot under TCG in ~10 s.
"""

import contextlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import ROOT, _cloud
from test_qemu import BOOT_TIMEOUT, Guests, create, fixed_ip, need_qemu, secrets_absent, \
    sid_name
# test_qemu's fixtures, on this module's `guests`: the tiny image (with
# hw_qemu_guest_agent=yes) and a key pair
from test_qemu import image, keypair, tiny  # noqa: F401

URI = "qemu:///system"
SPICE_PW = f"spice-{uuid.uuid4().hex[:12]}"
SERVER_ENV = {
    "FERROSTACK_COMPUTE__DRIVER": "libvirt",
    "FERROSTACK_HOST__LIBVIRT_URI": URI,
    "FERROSTACK_HOST__VIRT_TYPE": "qemu",
    "FERROSTACK_HOST__LUKS_ITER_TIME_MS": "10",
    "FERROSTACK_COMPUTE__SHUTDOWN_TIMEOUT": "20",
    "FERROSTACK_COMPUTE__SHUTDOWN_RETRY_INTERVAL": "5",
    # the console proxy on a port of its own (its default 6080 may be taken)
    "FERROSTACK_CONSOLE__LISTEN": "127.0.0.1:0",
}
pytestmark = pytest.mark.timeout(900)


def virsh(*args, timeout=60, check=True):
    p = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert p.returncode == 0, f"virsh {' '.join(args)}: {p.stderr}"
    return p


def need_libvirtd():
    """libvirtd answering on qemu:///system: installed by scripts/host-tools --libvirt
    when missing, started by scripts/libvirtd. Skips (fails under
    FERROSTACK_REQUIRE_HOST_TOOLS=1) only when it cannot be installed."""
    need_qemu()
    strict = os.environ.get("FERROSTACK_REQUIRE_HOST_TOOLS") == "1"
    if not (shutil.which("libvirtd") or os.path.exists("/usr/sbin/libvirtd")):
        p = subprocess.run([str(ROOT / "scripts" / "host-tools"), "--libvirt"],
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            msg = f"libvirtd cannot be installed (scripts/host-tools --libvirt):\n{p.stderr[-2000:]}"
            if strict:
                pytest.fail(msg)
            pytest.skip(msg)
    p = subprocess.run([str(ROOT / "scripts" / "libvirtd")], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, f"scripts/libvirtd failed:\n{p.stdout}{p.stderr}"


class LibvirtGuests(Guests):
    def qemu_pid(self, sid):
        """The pid of the guest's QEMU (libvirt's pidfile), or None when none runs."""
        try:
            pid = int(pathlib.Path(f"/run/libvirt/qemu/instance-{sid}.pid").read_text().strip())
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if sid.encode() in cmd else None


class SearchableTmp:
    """tmp_path_factory's mktemp, below a directory of our own in /tmp. QEMU runs as
    libvirt-qemu: the path down to the state directory must be searchable (the driver
    opens the state directory itself and everything below it), and pytest's own
    /tmp/pytest-of-USER is closed again (0700) by every pytest session that starts
    meanwhile, which cut the guests off their disks when another session ran."""

    def __init__(self):
        self.base = pathlib.Path(tempfile.mkdtemp(prefix="ferrostack-libvirt-"))
        self.base.chmod(0o711)

    def mktemp(self, name):
        d = pathlib.Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        d.chmod(0o711)
        return d


@pytest.fixture(scope="module")
def guests(tmp_path_factory):
    need_libvirtd()
    tmp = tmp_path_factory.mktemp("libvirt")
    public = SearchableTmp()
    gen = _cloud("sqlite", public, SERVER_ENV)
    cloud = next(gen)
    try:
        yield LibvirtGuests(cloud, tmp)
    finally:
        try:
            for s in cloud.openstack("server", "list", "--all-projects"):
                cloud.run_cli("server", "delete", "--wait", s["ID"], fmt=None, timeout=120)
        finally:
            try:
                gen.close()
            finally:
                for d in (cloud.state / "instances").glob("*-*-*-*-*"):
                    virsh("destroy", f"instance-{d.name}", check=False)
                    virsh("undefine", f"instance-{d.name}", "--nvram", "--managed-save",
                          check=False)
                # the server log stays with pytest's temporary files, for a failure
                if cloud.log.exists():
                    shutil.copy(cloud.log, tmp / "server.log")
                shutil.rmtree(public.base, ignore_errors=True)


def dominfo(sid):
    """`virsh dominfo` of the guest's domain as a dict (`State`, `Max memory`, ...)."""
    out = virsh("dominfo", f"instance-{sid}").stdout
    return {k.strip(): v.strip() for k, _, v in
            (line.partition(":") for line in out.splitlines()) if k.strip()}


class Clock:
    """Wall time of each action (from the API call to the check from inside the guest),
    printed at the end: the numbers of docs/adr/0005."""

    def __init__(self):
        self.times = {}

    @contextlib.contextmanager
    def __call__(self, label):
        t0 = time.monotonic()
        yield
        self.times[label] = time.monotonic() - t0

    def report(self, what):
        print(f"libvirt {what}: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.times.items()))


def flavor_name(server):
    """The server's flavor name (a dict since microversion 2.47)."""
    f = server["flavor"]
    return f.get("original_name") or f.get("name") if isinstance(f, dict) else f.split()[0]


def guest_size(guests, sid):
    """(vCPUs, MemTotal kB, root disk sectors) as the guest sees them."""
    out = guests.ssh(sid, "nproc; awk '/MemTotal/ {print $2}' /proc/meminfo; "
                          "cat /sys/block/vda/size").split()
    return tuple(int(x) for x in out)


def wait_ssh(guests, sid):
    t0 = time.monotonic()
    guests.ssh(sid, "true")
    return time.monotonic() - t0


def test_libvirt_guests(guests, image, keypair, name):
    """Boot (plain and LUKS-encrypted), SSH, stop/start, what libvirt holds, a ferrostack
    kill -9 + restart (adopted, SSH works), `virsh destroy` from outside -> SHUTOFF, delete;
    no secret in any command line or log."""
    c = guests.cloud
    t0 = time.monotonic()
    sid = create(guests, name, image, keypair, "--config-drive", "True",
                 "--property", f"spice_passwd={SPICE_PW}")
    active = time.monotonic() - t0
    to_ssh = wait_ssh(guests, sid)
    print(f"libvirt: ACTIVE after {active:.1f}s, SSH {to_ssh:.1f}s later")
    ip = fixed_ip(guests.server(sid))
    out = guests.ssh(sid, "hostname; ip -4 -o addr show dev eth0").splitlines()
    assert out[0] == name and f"inet {ip}/" in out[1], out
    dom = f"instance-{sid}"
    assert virsh("domstate", dom).stdout.strip() == "running"
    assert guests.qemu_pid(sid), "no QEMU process of the domain"
    xml = virsh("dumpxml", "--security-info", dom).stdout
    assert f"passwd='{SPICE_PW}'" in xml, xml
    assert "<acpi/>" in xml and "hostfwd=tcp:127.0.0.1:" in xml, xml
    assert "TINY-READY" in c.openstack("console", "log", "show", sid, fmt=None)

    # an encrypted root disk: the domain names a libvirt secret, which is gone again
    # once QEMU has the key
    flavor = f"{name}-luks"
    c.openstack("flavor", "create", "--ram", "512", "--vcpus", "1", "--disk", "1",
                "--property", "hw:ephemeral_encryption=True", flavor)
    esid = create(guests, f"{name}-e", image, keypair, "--config-drive", "True", flavor=flavor)
    guests.ssh(esid, "true")
    exml = virsh("dumpxml", "--security-info", f"instance-{esid}").stdout
    assert "<encryption format='luks'" in exml, exml
    secret_uuid = exml.split("<secret type='passphrase' uuid='")[1].split("'")[0]
    assert secret_uuid not in virsh("secret-list").stdout

    # stop and start: libvirt's QEMU gone, then the same disk boots
    guests.ssh(sid, "echo persisted > /root/m; sync")
    c.openstack("server", "stop", sid, fmt=None)
    guests.wait_status(sid, "SHUTOFF", timeout=60)
    assert virsh("domstate", dom).stdout.strip() == "shut off"
    assert guests.qemu_pid(sid) is None
    c.openstack("server", "start", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE")
    assert guests.ssh(sid, "cat /root/m").strip() == "persisted"
    c.openstack("server", "stop", esid, fmt=None)
    guests.wait_status(esid, "SHUTOFF", timeout=60)
    c.openstack("server", "start", esid, fmt=None)
    guests.wait_status(esid, "ACTIVE")
    # the encrypted guest's managed save restores (the secret defined again for it,
    # and gone after), and its disk can be imaged while it runs
    guests.ssh(esid, "echo in-memory > /run/memory-marker")
    c.openstack("server", "suspend", esid, fmt=None)
    guests.wait_status(esid, "SUSPENDED", timeout=90)
    c.openstack("server", "resume", esid, fmt=None)
    guests.wait_status(esid, "ACTIVE", timeout=90)
    assert guests.ssh(esid, "cat /run/memory-marker").strip() == "in-memory"
    assert secret_uuid not in virsh("secret-list").stdout
    c.openstack("server", "image", "create", "--wait", "--name", f"{name}-esnap", esid,
                timeout=300)
    assert c.openstack("image", "show", f"{name}-esnap")["status"] == "active"
    guests.wait_status(esid, "ACTIVE", timeout=30)

    # kill -9 of ferrostack: libvirt keeps the guests; a restart adopts them
    pids = {x: guests.qemu_pid(x) for x in (sid, esid)}
    c.proc.kill()
    c.proc.wait()
    c.proc = None
    c.start()
    assert {x: guests.qemu_pid(x) for x in (sid, esid)} == pids, "a guest was restarted"
    for x in (sid, esid):
        assert guests.server(x)["status"] == "ACTIVE"
        guests.ssh(x, "true")

    # destroyed from outside: SHUTOFF, never ACTIVE
    t0 = time.monotonic()
    virsh("destroy", dom)
    while guests.server(sid)["status"] != "SHUTOFF":
        assert time.monotonic() - t0 < 15, "a domain destroyed from outside is not SHUTOFF"
        time.sleep(0.3)
    print(f"libvirt: virsh destroy noticed in {time.monotonic() - t0:.1f}s")
    time.sleep(2)
    assert guests.server(sid)["status"] == "SHUTOFF"

    secrets_absent(guests, [SPICE_PW])
    for x in (sid, esid):
        c.openstack("server", "delete", "--wait", x, fmt=None, timeout=90)
        assert virsh("domstate", f"instance-{x}", check=False).returncode != 0
        assert not guests.instance_dir(x).exists()
    assert secret_uuid not in virsh("secret-list").stdout


def test_libvirt_server_actions(guests, image, keypair, name):
    """test_qemu.py's walk-through under libvirt: soft and hard reboot (new boot),
    pause/unpause (`virsh suspend`: no SSH answer, same boot), suspend/resume (managed save:
    no QEMU, memory back), createImage and a server booted from it, resize m1.tiny ->
    m1.small + revert (the old disk and size back), + confirm (the backup gone); each
    checked from inside the guest and from libvirt."""
    c = guests.cloud
    clock = Clock()
    with clock("boot"):
        sid = create(guests, name, image, keypair, "--config-drive", "True")
        guests.ssh(sid, "echo persisted > /root/disk-marker; sync")
    dom = f"instance-{sid}"
    boot = guests.boot_id(sid)

    # soft and hard reboot: new boots, the disk kept
    for kind in ("--soft", "--hard"):
        with clock(f"reboot {kind[2:]}"):
            c.openstack("server", "reboot", kind, "--wait", sid, fmt=None, timeout=BOOT_TIMEOUT)
            guests.wait_status(sid, "ACTIVE")
            b = guests.boot_id(sid)
        assert b != boot, f"reboot {kind} did not reboot the guest"
        boot = b
        assert virsh("domstate", dom).stdout.strip() == "running"
    assert guests.ssh(sid, "cat /root/disk-marker").strip() == "persisted"

    # pause/unpause: vCPUs stopped (no SSH answer), then the same boot goes on in the
    # same QEMU
    pid = guests.qemu_pid(sid)
    with clock("pause"):
        c.openstack("server", "pause", sid, fmt=None)
        guests.wait_status(sid, "PAUSED", timeout=30)
    assert virsh("domstate", dom).stdout.strip() == "paused"
    p = guests.try_ssh(sid, "true", timeout=15)
    assert p.returncode != 0, "a paused guest answered SSH"
    with clock("unpause"):
        c.openstack("server", "unpause", sid, fmt=None)
        guests.wait_status(sid, "ACTIVE", timeout=30)
        assert guests.boot_id(sid) == boot
    assert guests.qemu_pid(sid) == pid, "unpause started another QEMU"

    # suspend/resume: a managed save (no QEMU), the memory restored (same boot, same
    # tmpfs file)
    guests.ssh(sid, "echo in-memory > /run/memory-marker")
    with clock("suspend"):
        c.openstack("server", "suspend", sid, fmt=None)
        guests.wait_status(sid, "SUSPENDED", timeout=90)
    assert guests.qemu_pid(sid) is None, "QEMU still runs while suspended"
    assert dominfo(sid)["Managed save"] == "yes"
    time.sleep(2)  # the poller must not take a managed save for a crash
    assert guests.server(sid)["status"] == "SUSPENDED"
    with clock("resume"):
        c.openstack("server", "resume", sid, fmt=None)
        guests.wait_status(sid, "ACTIVE", timeout=90)
        assert guests.ssh(sid, "cat /run/memory-marker").strip() == "in-memory"
    assert guests.boot_id(sid) == boot
    assert dominfo(sid)["Managed save"] == "no"

    # suspended while paused, across a kill -9 of ferrostack (libvirt keeps the managed
    # save; the restart finds it SUSPENDED): resume runs the guest, not a paused one
    guests.ssh(sid, "echo kept-in-memory > /run/memory-marker")
    c.openstack("server", "pause", sid, fmt=None)
    guests.wait_status(sid, "PAUSED", timeout=30)
    c.openstack("server", "suspend", sid, fmt=None)
    guests.wait_status(sid, "SUSPENDED", timeout=90)
    c.proc.kill()
    c.proc.wait()
    c.proc = None
    c.start()
    assert guests.server(sid)["status"] == "SUSPENDED"
    assert dominfo(sid)["Managed save"] == "yes"
    c.openstack("server", "resume", sid, fmt=None)
    guests.wait_status(sid, "ACTIVE", timeout=90)
    assert virsh("domstate", dom).stdout.strip() == "running"
    assert guests.ssh(sid, "cat /run/memory-marker").strip() == "kept-in-memory"
    assert guests.boot_id(sid) == boot

    # createImage of the running guest, and a server booted from that image carries the
    # disk's contents
    snap = f"{name}-snap"
    with clock("createImage"):
        c.openstack("server", "image", "create", "--wait", "--name", snap, sid, timeout=300)
        guests.wait_status(sid, "ACTIVE", timeout=30)
    img = c.openstack("image", "show", snap)
    assert img["status"] == "active", img
    assert virsh("domstate", dom).stdout.strip() == "running"
    assert guests.boot_id(sid) == boot
    with clock("boot from snapshot"):
        sid2 = create(guests, f"{name}-2", snap, keypair, "--config-drive", "True")
        out = guests.ssh(sid2, "cat /root/disk-marker; hostname").split()
    assert out == ["persisted", f"{name}-2"], out
    c.openstack("server", "delete", "--wait", sid2, fmt=None, timeout=90)

    # resize + revert: the guest sees m1.small, then the old size and the old disk (what
    # was written meanwhile is gone)
    before = guest_size(guests, sid)
    with clock("resize"):
        c.openstack("server", "resize", "--flavor", "m1.small", "--wait", sid, fmt=None,
                    timeout=BOOT_TIMEOUT + 60)
        guests.wait_status(sid, "VERIFY_RESIZE")
        after = guest_size(guests, sid)
    assert after[1] > before[1] * 2, (before, after)  # 512 MiB -> 2 GiB
    assert after[2] > before[2], (before, after)  # 1 GB -> 20 GB
    assert dominfo(sid)["Max memory"] == f"{2048 * 1024} KiB"
    assert (guests.instance_dir(sid) / "disk.resize-orig").exists()
    guests.ssh(sid, "echo resized > /root/resize-marker; sync")
    with clock("revert"):
        c.openstack("server", "resize", "revert", sid, fmt=None)
        guests.wait_status(sid, "ACTIVE", timeout=BOOT_TIMEOUT)
        reverted = guest_size(guests, sid)
    assert reverted == before, (before, reverted)
    assert dominfo(sid)["Max memory"] == f"{512 * 1024} KiB"
    assert flavor_name(guests.server(sid)) == "m1.tiny", guests.server(sid)["flavor"]
    out = guests.ssh(sid, "cat /root/disk-marker; cat /root/resize-marker 2>/dev/null || "
                          "echo no-marker").split()
    assert out == ["persisted", "no-marker"], out
    assert not (guests.instance_dir(sid) / "disk.resize-orig").exists()

    # resize + confirm: the new size stays, the backup of the old disk goes
    with clock("resize 2"):
        c.openstack("server", "resize", "--flavor", "m1.small", "--wait", sid, fmt=None,
                    timeout=BOOT_TIMEOUT + 60)
        guests.wait_status(sid, "VERIFY_RESIZE")
        after = guest_size(guests, sid)
    assert after[1] > before[1] * 2 and after[2] > before[2], (before, after)
    guests.ssh(sid, "echo resized > /root/resize-marker; sync")
    with clock("confirm"):
        c.openstack("server", "resize", "confirm", sid, fmt=None)
        guests.wait_status(sid, "ACTIVE", timeout=30)
    assert not (guests.instance_dir(sid) / "disk.resize-orig").exists()
    assert guest_size(guests, sid) == after
    assert guests.ssh(sid, "cat /root/resize-marker").strip() == "resized"
    assert flavor_name(guests.server(sid)) == "m1.small", guests.server(sid)["flavor"]
    assert dominfo(sid)["Max memory"] == f"{2048 * 1024} KiB"

    with clock("delete"):
        c.openstack("server", "delete", "--wait", sid, fmt=None, timeout=90)
    assert virsh("domstate", dom, check=False).returncode != 0
    assert not guests.instance_dir(sid).exists()
    clock.report("actions")


def test_libvirt_change_password(guests, image, keypair, name):
    """changePassword under libvirt reaches the guest through qemu-ga (libvirt's agent
    channel, the command on virsh's stdin): the guest's /etc/shadow gets a crypt hash of
    the new password; the password is on no command line and in no log."""
    import crypt  # deprecated since 3.11, still how to check a crypt(3) hash

    sid = create(guests, name, image, keypair, "--config-drive", "True")
    guests.ssh(sid, "true")
    assert sid_name(guests.cloud, sid) == name
    pw = f"Pw-{uuid.uuid4().hex[:10]}'\\\""  # a quote, a backslash, a double quote
    t0 = time.monotonic()
    conn = guests.cloud.sdk()
    conn.compute.change_server_password(sid, pw)
    deadline = time.monotonic() + 60
    while True:
        line = guests.ssh(sid, "grep '^root:' /etc/shadow").strip()
        if line.split(":")[1].startswith("$") or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"libvirt changePassword: {time.monotonic() - t0:.1f}s to the guest's /etc/shadow")
    h = line.split(":")[1]
    assert h.startswith("$6$") and crypt.crypt(pw, h) == h, line
    secrets_absent(guests, [pw])
    guests.cloud.openstack("server", "delete", "--wait", sid, fmt=None, timeout=90)


def test_libvirt_consoles(guests, image, keypair, name):
    """The consoles of libvirt guests (TCP VNC and SPICE, passwords in the domain XML)
    through ferrostack's console proxy and directly: with the owner's spice_passwd the
    proxy relays QEMU's own VNC authentication (the password is asked for), without it
    the proxy logs in and offers None; the direct SPICE port takes only the owner's
    password; `server set --property spice_passwd=NEW` changes it on the running domain
    (`update-device --live`, no restart) and libvirt's XML says so."""
    from spicelink import RfbOverWs, spice_link
    from test_consoles import auth_token_info, console_url, token_of

    pw = f"lv{uuid.uuid4().hex[:6]}"
    sid = create(guests, name, image, keypair, "--property", f"spice_passwd={pw}")
    open_sid = create(guests, f"{name}-open", image, keypair)
    pid = guests.qemu_pid(sid)

    rfb = RfbOverWs(console_url(guests, sid, "novnc"))
    try:
        types, chosen, server_name = rfb.handshake(password=pw)
    finally:
        rfb.close()
    assert types == [2] and chosen == 2 and sid in server_name, (types, server_name)
    rfb = RfbOverWs(console_url(guests, open_sid, "novnc"))
    try:
        types, chosen, server_name = rfb.handshake()
    finally:
        rfb.close()
    assert types == [1] and open_sid in server_name, (types, server_name)

    def direct(password, server=sid):
        r = auth_token_info(guests, token_of(console_url(guests, server, "spice")))
        assert r.status_code == 200, r.text
        c = r.json()["console"]
        return spice_link(c["host"], c["port"], password)

    assert direct(pw) == 0
    assert direct("wrong") == 7
    assert direct("", server=open_sid) == 7, "a guest without spice_passwd is open to nobody"

    new = f"nw{uuid.uuid4().hex[:6]}"
    guests.cloud.openstack("server", "set", "--property", f"spice_passwd={new}", sid, fmt=None)
    assert direct(new) == 0 and direct(pw) == 7
    xml = virsh("dumpxml", "--security-info", f"instance-{sid}").stdout
    assert f"passwd='{new}'" in xml, xml
    assert guests.qemu_pid(sid) == pid, "the password change restarted the guest"
    secrets_absent(guests, [pw, new])
    for s in (sid, open_sid):
        guests.cloud.openstack("server", "delete", "--wait", s, fmt=None, timeout=90)
