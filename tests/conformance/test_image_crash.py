"""An upload cut by kill -9 of the server: after a restart on the same state directory
(and database) the image is back in `queued` with no bytes kept, and can be uploaded."""

import hashlib
import threading
import time

import pytest
import requests

CHUNK = 1 << 20
TOTAL = 300 * CHUNK
KILL_AFTER = 50 * CHUNK


def stored(cloud):
    d = cloud.state / "images"
    return ({p.name for p in d.iterdir() if p.name != ".partial"},
            sorted(p.name for p in (d / ".partial").iterdir()))


@pytest.mark.slow
def test_upload_cut_by_a_crash_leaves_a_queued_image_and_no_bytes(fresh_cloud, name):
    cloud = fresh_cloud
    images = f"{cloud.base}/image/v2/images"
    auth = {"X-Auth-Token": cloud.admin_token}
    r = cloud.http.post(images, headers=auth, json={"name": name, "disk_format": "raw",
                                                    "container_format": "bare"})
    assert r.status_code == 201, r.text
    iid = r.json()["id"]

    sent = 0
    block = bytes(range(256)) * (CHUNK // 256)

    def body():
        nonlocal sent
        while sent < TOTAL:
            yield block
            sent += len(block)

    outcome = {}

    def upload():
        try:
            outcome["response"] = requests.put(
                f"{images}/{iid}/file", data=body(), timeout=120,
                headers={**auth, "Content-Type": "application/octet-stream"})
        except requests.RequestException as e:
            outcome["error"] = e

    t = threading.Thread(target=upload, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while sent < KILL_AFTER:
        assert t.is_alive(), f"the upload ended before the crash: {outcome}"
        assert time.monotonic() < deadline, f"only {sent} bytes sent in 60 s"
        time.sleep(0.01)
    r = cloud.http.get(f"{images}/{iid}", headers=auth)
    assert r.json()["status"] == "saving", r.text
    assert stored(cloud)[1], "the upload in progress has no .partial file"

    cloud.kill()  # SIGKILL
    t.join(timeout=30)
    assert not t.is_alive()
    assert "error" in outcome or outcome["response"].status_code >= 500, outcome
    assert sent < TOTAL

    cloud.start()
    images = f"{cloud.base}/image/v2/images"  # the port may have changed
    r = cloud.http.get(f"{images}/{iid}", headers={"X-Auth-Token": cloud.admin_token})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "queued", r.json()
    assert r.json()["size"] is None and r.json()["checksum"] is None
    files, partial = stored(cloud)
    assert iid not in files and partial == []

    data = bytes(range(256)) * 40 + b"tail"
    r = cloud.http.put(f"{images}/{iid}/file", data=data,
                       headers={"X-Auth-Token": cloud.admin_token,
                                "Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    img = cloud.http.get(f"{images}/{iid}", headers={"X-Auth-Token": cloud.admin_token}).json()
    assert img["status"] == "active" and img["size"] == len(data)
    assert img["checksum"] == hashlib.md5(data).hexdigest()
    assert img["os_hash_value"] == hashlib.sha512(data).hexdigest()
    r = cloud.http.get(f"{images}/{iid}/file", headers={"X-Auth-Token": cloud.admin_token})
    assert r.content == data
    assert stored(cloud) == ({iid}, [])


def test_upload_abandoned_by_the_client_goes_back_to_queued(cloud, name):
    import socket
    from urllib.parse import urlsplit

    images = f"{cloud.base}/image/v2/images"
    auth = {"X-Auth-Token": cloud.admin_token}
    r = cloud.http.post(images, headers=auth, json={"name": name, "disk_format": "raw",
                                                    "container_format": "bare"})
    iid = r.json()["id"]
    u = urlsplit(images)
    s = socket.create_connection((u.hostname, u.port))
    s.sendall((f"PUT {u.path}/{iid}/file HTTP/1.1\r\nHost: {u.netloc}\r\n"
               f"X-Auth-Token: {cloud.admin_token}\r\nContent-Type: application/octet-stream\r\n"
               f"Content-Length: {20 * CHUNK}\r\n\r\n").encode())
    for _ in range(4):
        s.sendall(b"\xab" * CHUNK)
    deadline = time.monotonic() + 10
    while cloud.http.get(f"{images}/{iid}", headers=auth).json()["status"] != "saving":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    s.close()
    deadline = time.monotonic() + 10
    while True:
        img = cloud.http.get(f"{images}/{iid}", headers=auth).json()
        if img["status"] == "queued" and stored(cloud) == (set(), []):
            break
        assert time.monotonic() < deadline, (img, stored(cloud))
        time.sleep(0.05)
    r = cloud.http.put(f"{images}/{iid}/file", data=b"ok" * 100,
                       headers={**auth, "Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert cloud.http.get(f"{images}/{iid}", headers=auth).json()["status"] == "active"
