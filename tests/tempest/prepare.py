"""Prepares a fresh `ferrostack up` for tempest (run by scripts/tempest with the
.venv-tempest Python; standard library + PyYAML only).

- reads the cloud's URL and admin password from STATE/clouds.yaml (written at bootstrap);
- gets a project-scoped admin token, uploads two tiny public images (a 1 MiB raw and a
  1 MiB-virtual qcow2 made here byte by byte, so no qemu-img is needed): tempest's
  `[compute] image_ref` and `image_ref_alt`;
- writes RUN/tempest.conf from the template (the @NAME@s replaced).
"""

import argparse
import json
import pathlib
import struct
import sys
import urllib.error
import urllib.request

import yaml


def request(method, url, body=None, token=None, headers=None, raw=None):
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    elif raw is not None:
        data = raw
        h["Content-Type"] = "application/octet-stream"
    if token:
        h["X-Auth-Token"] = token
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            return r.status, dict(r.headers), (json.loads(text) if text.strip() else None)
    except urllib.error.HTTPError as e:
        sys.exit(f"prepare.py: {method} {url} -> {e.code} {e.read()[:500]!r}")


def qcow2(virtual_size):
    """A valid, empty qcow2 v2 image (header, one L1 table, refcount table and block),
    as `qemu-img create -f qcow2 -o compat=0.10` lays it out with 64 KiB clusters."""
    cluster = 1 << 16
    l2_entries = cluster // 8
    l1_size = -(-virtual_size // (cluster * l2_entries))
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb", 2, 0, 0,             # magic, version, backing file offset/size
        16, virtual_size, 0,             # cluster_bits, size, crypt_method
        l1_size, 3 * cluster,            # l1_size, l1_table_offset
        cluster, 1,                      # refcount_table_offset, clusters
        0, 0)                            # nb_snapshots, snapshots_offset
    img = bytearray(4 * cluster)
    img[: len(header)] = header
    # refcount table -> refcount block at cluster 2; 4 clusters in use, refcount 1 each
    img[cluster: cluster + 8] = struct.pack(">Q", 2 * cluster)
    for i in range(4):
        img[2 * cluster + 2 * i: 2 * cluster + 2 * i + 2] = struct.pack(">H", 1)
    return bytes(img)


def upload(image_url, token, name, disk_format, data):
    _, _, img = request("POST", f"{image_url}/v2/images", token=token, body={
        "name": name, "disk_format": disk_format, "container_format": "bare",
        "visibility": "public"})
    request("PUT", f"{image_url}/v2/images/{img['id']}/file", token=token, raw=data)
    _, _, img = request("GET", f"{image_url}/v2/images/{img['id']}", token=token)
    if img["status"] != "active":
        sys.exit(f"prepare.py: image {name} is {img['status']} after upload")
    return img["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state-dir", required=True, type=pathlib.Path)
    ap.add_argument("--template", required=True, type=pathlib.Path)
    ap.add_argument("--run-dir", required=True, type=pathlib.Path)
    ap.add_argument("--compute", default="0")
    ap.add_argument("--network", default="0")
    ap.add_argument("--consoles", default="0")
    a = ap.parse_args()

    cloud = yaml.safe_load((a.state_dir / "clouds.yaml").read_text())["clouds"]["ferrostack"]
    auth = cloud["auth"]
    auth_url = auth["auth_url"].rstrip("/")
    base = auth_url.rsplit("/identity/", 1)[0]
    _, headers, body = request("POST", f"{auth_url}/auth/tokens", body={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "domain": {"name": auth["user_domain_name"]},
            "password": auth["password"]}}},
        "scope": {"project": {"name": auth["project_name"],
                              "domain": {"name": auth["project_domain_name"]}}}}})
    token = headers.get("X-Subject-Token") or headers.get("x-subject-token")
    image_url = next(e["url"] for s in body["token"]["catalog"] if s["type"] == "image"
                     for e in s["endpoints"] if e["interface"] == "public").rstrip("/")

    ref = upload(image_url, token, "tempest-raw", "raw", b"\0" * (1 << 20))
    ref_alt = upload(image_url, token, "tempest-qcow2", "qcow2", qcow2(1 << 20))
    print(f"images: image_ref={ref} (raw) image_ref_alt={ref_alt} (qcow2)")

    flag = {"1": "true", "0": "false"}
    conf = a.template.read_text()
    for k, v in {"BASE": base, "ADMIN_PASSWORD": auth["password"], "IMAGE_REF": ref,
                 "IMAGE_REF_ALT": ref_alt, "RUN_DIR": str(a.run_dir),
                 "NOVA": flag[a.compute], "NEUTRON": flag[a.network],
                 "VNC_CONSOLE": flag[a.consoles]}.items():
        conf = conf.replace(f"@{k}@", v)
    out = a.run_dir / "tempest.conf"
    out.write_text(conf)
    out.chmod(0o600)
    (a.run_dir / "lock").mkdir(exist_ok=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
