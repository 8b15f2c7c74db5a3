"""The image service (Glance v2) as its users see it: the unmodified openstack CLI, and
the raw API (python requests with a token) where the CLI hides the answer. Images are a
few hundred KiB at most; the data directory is STATE_DIR/images."""

import hashlib
import json
import os
import subprocess

import pytest

from conftest import column

OCTET = {"Content-Type": "application/octet-stream"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


# --- helpers --------------------------------------------------------------------------

def url(cloud, path=""):
    return f"{cloud.base}/image/v2{path}"


def api(cloud, method, path, token=None, headers=None, **kw):
    """A raw Glance request as the admin, or with `token`."""
    h = {"X-Auth-Token": token or cloud.admin_token, **(headers or {})}
    return cloud.http.request(method, url(cloud, path), headers=h, **kw)


def token_of(cloud, m):
    return cloud.password_token(m["name"], m["password"], m["name"])[0]


def write(path, data):
    path.write_bytes(data)
    return path


def payload(size, seed=0):
    """`size` reproducible bytes that no format inspector takes for anything but raw."""
    out = bytearray()
    block = seed.to_bytes(8, "big")
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block
    return bytes(out[:size])


def qemu_img(*args):
    p = subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def create_image(cloud, name, path=None, disk="raw", container="bare", *extra, as_cloud="ferrostack"):
    """`openstack image create`: the image as the CLI shows it."""
    args = ["image", "create", "--disk-format", disk, "--container-format", container, *extra]
    if path is not None:
        args += ["--file", path]
    return cloud.openstack(*args, name, cloud=as_cloud)


def queued(cloud, name, token=None, **body):
    """POST /v2/images: a queued image (the CLI would upload its stdin)."""
    r = api(cloud, "POST", "/images", token, json={"name": name, **body})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "queued"
    return r.json()


def stored(cloud):
    """(names of the files in STATE_DIR/images, names in STATE_DIR/images/.partial)."""
    d = cloud.state / "images"
    return ({p.name for p in d.iterdir() if p.name != ".partial"},
            sorted(p.name for p in (d / ".partial").iterdir()))


def all_images(cloud):
    r = api(cloud, "GET", "/images?limit=1000")
    assert r.status_code == 200, r.text
    return r.json()["images"]


def assert_store_holds_only_live_images(cloud):
    files, partial = stored(cloud)
    live = {im["id"] for im in all_images(cloud) if im["status"] in ("active", "deactivated")}
    assert partial == [], f"left-over partial uploads: {partial}"
    assert files <= live, f"files of images that are not active: {files - live}"


def make_member(cloud, name):
    project = cloud.openstack("project", "create", name)
    user = cloud.openstack("user", "create", "--password", f"pw-{name}", "--project", name, name)
    cloud.openstack("role", "add", "--user", name, "--project", name, "member", fmt=None)
    cloud.add_user_cloud(name, name, f"pw-{name}", project=name)
    return {"name": name, "cloud": name, "password": f"pw-{name}",
            "project_id": project["id"], "user_id": user["id"]}


@pytest.fixture
def other(cloud, name):
    """A second project with a `member` user (the `member` fixture's twin)."""
    return make_member(cloud, f"{name}o")


# --- 1, 2: upload and what show reports ------------------------------------------------

def test_raw_upload_becomes_active_with_size_and_hashes(cloud, name, tmp_path):
    data = payload(1 << 20 | 12345)
    f = write(tmp_path / "disk.raw", data)
    created = create_image(cloud, name, f)
    img = cloud.openstack("image", "show", created["id"])
    assert img["status"] == "active"
    assert img["name"] == name and img["disk_format"] == "raw" and img["container_format"] == "bare"
    assert img["size"] == len(data)
    assert img["virtual_size"] == len(data)
    assert img["checksum"] == hashlib.md5(data).hexdigest()
    assert img["properties"]["os_hash_algo"] == "sha512"
    assert img["properties"]["os_hash_value"] == hashlib.sha512(data).hexdigest()
    # the raw API has them at the top level, as Glance does
    raw = api(cloud, "GET", f"/images/{img['id']}").json()
    assert raw["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert raw["file"] == f"/v2/images/{img['id']}/file" and raw["self"] == f"/v2/images/{img['id']}"


def test_qcow2_upload_reports_its_virtual_size(cloud, name, tmp_path):
    f = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", f, "64M")
    info = json.loads(qemu_img("info", "--output", "json", f))
    img = create_image(cloud, name, f, "qcow2")
    img = cloud.openstack("image", "show", img["id"])
    assert img["status"] == "active" and img["disk_format"] == "qcow2"
    assert img["virtual_size"] == info["virtual-size"] == 64 << 20
    assert img["size"] == f.stat().st_size
    assert img["checksum"] == hashlib.md5(f.read_bytes()).hexdigest()


# --- 3: listing ------------------------------------------------------------------------

def test_image_list_filters(cloud, name, tmp_path):
    f = write(tmp_path / "a.raw", payload(4096))
    a = create_image(cloud, f"{name}-a", f, "raw", "bare", "--tag", name, "--tag", f"{name}-t",
                     "--private")
    b = create_image(cloud, f"{name}-b", f, "raw", "bare", "--tag", name, "--property",
                     f"{name}k=v1", "--public")
    c = queued(cloud, f"{name}-c", tags=[name], visibility="community")
    ids = lambda *args: set(column(cloud.openstack("image", "list", *args), "id"))

    assert [r["Name"] for r in cloud.openstack("image", "list", "--name", f"{name}-b")] == [f"{name}-b"]
    assert ids("--tag", f"{name}-t") == {a["id"]}
    assert ids("--tag", name) == {a["id"], b["id"], c["id"]}
    assert ids("--property", f"{name}k=v1") == {b["id"]}
    assert ids("--property", f"{name}k=v2") == set()
    assert c["id"] in ids("--status", "queued")
    assert {a["id"], b["id"]}.isdisjoint(ids("--status", "queued"))
    assert {a["id"], b["id"]} <= ids("--status", "active")
    assert ids("--tag", name, "--private") == {a["id"]}
    assert ids("--tag", name, "--public") == {b["id"]}
    assert ids("--tag", name, "--community") == {c["id"]}
    assert ids("--tag", name, "--shared") == set()
    # the default view has the project's own images, community ones included
    assert ids("--tag", name) >= {a["id"], b["id"]}

    rows = cloud.openstack("image", "list", "--tag", name, "--sort", "name:desc")
    assert column(rows, "name") == [f"{name}-c", f"{name}-b", f"{name}-a"]

    # --limit/--marker: one page at a time, server order, no duplicates, nothing missed
    seen, marker = [], None
    while True:
        args = ["image", "list", "--tag", name, "--limit", "1"] + (["--marker", marker] if marker else [])
        page = cloud.openstack(*args)
        if not page:
            break
        assert len(page) == 1
        seen.append(page[0]["ID"])
        marker = page[0]["ID"]
    assert sorted(seen) == sorted({a["id"], b["id"], c["id"]})
    assert seen == [c["id"], b["id"], a["id"]], "Glance's default order is created_at desc"


def test_api_next_links_page_through_everything(cloud, name):
    for i in range(3):
        queued(cloud, f"{name}-{i}")
    everything = [im["id"] for im in all_images(cloud)]
    assert len(everything) >= 3
    seen, path, pages = [], "/images?limit=1", 0
    while path:
        r = api(cloud, "GET", path.removeprefix("/v2"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["first"].startswith("/v2/images")
        seen += [im["id"] for im in body["images"]]
        assert len(body["images"]) <= 1
        path = body.get("next")
        pages += 1
        assert pages <= len(everything) + 1, "next links never end"
    assert len(seen) == len(set(seen)), "an image came twice"
    assert seen == everything


def test_list_sorts_with_sort_key_and_dir(cloud, name):
    for n in ("b", "c", "a"):
        queued(cloud, f"{name}-{n}", tags=[name])
    r = api(cloud, "GET", f"/images?tag={name}&sort_key=name&sort_dir=asc")
    assert [im["name"] for im in r.json()["images"]] == [f"{name}-a", f"{name}-b", f"{name}-c"]
    r = api(cloud, "GET", f"/images?tag={name}&sort=name:desc")
    assert [im["name"] for im in r.json()["images"]] == [f"{name}-c", f"{name}-b", f"{name}-a"]


# --- 4: download -----------------------------------------------------------------------

def test_download_whole_and_ranges(cloud, name, tmp_path):
    data = payload(300_000, seed=4)
    img = create_image(cloud, name, write(tmp_path / "in.raw", data))
    out = tmp_path / "out.raw"
    cloud.openstack("image", "save", "--file", out, img["id"], fmt=None)
    assert out.read_bytes() == data

    r = api(cloud, "GET", f"/images/{img['id']}/file")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-MD5"] == hashlib.md5(data).hexdigest() == img["checksum"]
    assert r.headers["Content-Type"] == "application/octet-stream"

    r = api(cloud, "GET", f"/images/{img['id']}/file", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206, r.text
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert r.content == data[10:20]

    r = api(cloud, "GET", f"/images/{img['id']}/file", headers={"Range": "bytes=-7"})
    assert r.status_code == 206 and r.content == data[-7:]

    r = api(cloud, "GET", f"/images/{img['id']}/file", headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416, r.text


def test_download_of_a_queued_image_is_204(cloud, name):
    img = queued(cloud, name, disk_format="raw", container_format="bare")
    r = api(cloud, "GET", f"/images/{img['id']}/file")
    assert r.status_code == 204 and r.content == b""


# --- 5: changing and deleting ----------------------------------------------------------

def test_set_and_unset(cloud, name, tmp_path):
    img = create_image(cloud, name, write(tmp_path / "a.raw", payload(1000)))
    cloud.openstack("image", "set", "--property", "a=b", "--property", "c=d", "--tag", "t",
                    "--name", f"{name}-new", "--min-disk", "1", img["id"], fmt=None)
    got = cloud.openstack("image", "show", img["id"])
    assert got["name"] == f"{name}-new" and got["min_disk"] == 1
    assert got["properties"]["a"] == "b" and got["properties"]["c"] == "d"
    assert got["tags"] == ["t"]
    cloud.openstack("image", "unset", "--property", "a", "--tag", "t", img["id"], fmt=None)
    got = cloud.openstack("image", "show", img["id"])
    assert "a" not in got["properties"] and got["properties"]["c"] == "d"
    assert got["tags"] == []
    assert got["status"] == "active" and got["checksum"] == img["checksum"]


def test_protected_image_cannot_be_deleted(cloud, name, tmp_path):
    img = create_image(cloud, name, write(tmp_path / "a.raw", payload(1000)))
    cloud.openstack("image", "set", "--protected", img["id"], fmt=None)
    assert cloud.openstack("image", "show", img["id"])["protected"] is True
    cloud.openstack_fails("image", "delete", img["id"])
    r = api(cloud, "DELETE", f"/images/{img['id']}")
    assert r.status_code == 403, r.text
    assert cloud.openstack("image", "show", img["id"])["status"] == "active"

    cloud.openstack("image", "set", "--unprotected", img["id"], fmt=None)
    cloud.openstack("image", "delete", img["id"], fmt=None)
    cloud.openstack_fails("image", "show", img["id"])
    assert api(cloud, "GET", f"/images/{img['id']}").status_code == 404
    assert img["id"] not in stored(cloud)[0]


# --- 6: deactivate ---------------------------------------------------------------------

def test_deactivated_image_is_only_downloadable_by_admin(cloud, member, name, tmp_path):
    data = payload(2000, seed=6)
    img = create_image(cloud, name, write(tmp_path / "a.raw", data), as_cloud=member["cloud"])
    mine = token_of(cloud, member)
    cloud.openstack("image", "set", "--deactivate", img["id"], fmt=None)
    assert cloud.openstack("image", "show", img["id"], cloud=member["cloud"])["status"] == "deactivated"
    r = api(cloud, "GET", f"/images/{img['id']}/file", mine)
    assert r.status_code == 403, r.text
    cloud.openstack_fails("image", "save", "--file", tmp_path / "x", img["id"], cloud=member["cloud"])
    r = api(cloud, "GET", f"/images/{img['id']}/file")
    assert r.status_code == 200 and r.content == data

    cloud.openstack("image", "set", "--activate", img["id"], fmt=None)
    assert cloud.openstack("image", "show", img["id"])["status"] == "active"
    r = api(cloud, "GET", f"/images/{img['id']}/file", mine)
    assert r.status_code == 200 and r.content == data


# --- 7: projects, members, visibility --------------------------------------------------

def test_private_image_is_invisible_to_other_projects(cloud, member, other, name, tmp_path):
    img = create_image(cloud, name, write(tmp_path / "a.raw", payload(500)), "raw", "bare",
                       "--private", as_cloud=member["cloud"])
    assert img["visibility"] == "private"
    assert img["id"] in column(cloud.openstack("image", "list", cloud=member["cloud"]), "id")
    cloud.openstack_fails("image", "show", img["id"], cloud=other["cloud"])
    r = api(cloud, "GET", f"/images/{img['id']}", token_of(cloud, other))
    assert r.status_code == 404, r.text
    r = api(cloud, "GET", f"/images/{img['id']}/file", token_of(cloud, other))
    assert r.status_code == 404, r.text
    for flag in ((), ("--private",), ("--shared",), ("--member-status", "all")):
        assert img["id"] not in column(cloud.openstack("image", "list", *flag, cloud=other["cloud"]), "id")


def test_sharing_with_a_project_needs_its_acceptance(cloud, member, other, name, tmp_path):
    A, B = member["cloud"], other["cloud"]
    data = payload(3000, seed=7)
    img = create_image(cloud, name, write(tmp_path / "a.raw", data), "raw", "bare", "--shared",
                       as_cloud=A)
    iid = img["id"]
    cloud.openstack("image", "add", "project", iid, other["project_id"], cloud=A)
    members = cloud.openstack("image", "member", "list", iid, cloud=A)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(other["project_id"], "pending")]
    ids = lambda *args: set(column(cloud.openstack("image", "list", *args, cloud=B), "id"))

    # pending: not in B's default list, nor in --shared (member_status defaults to
    # accepted), but there with --member-status pending/all; show works
    assert iid not in ids()
    assert iid not in ids("--shared")
    assert iid in ids("--shared", "--member-status", "all")
    assert iid in ids("--member-status", "pending")
    assert cloud.openstack("image", "show", iid, cloud=B)["name"] == name

    cloud.openstack("image", "set", "--accept", iid, cloud=B, fmt=None)
    assert iid in ids() and iid in ids("--shared")
    out = tmp_path / "b.raw"
    cloud.openstack("image", "save", "--file", out, iid, cloud=B, fmt=None)
    assert out.read_bytes() == data
    members = cloud.openstack("image", "member", "list", iid, cloud=A)
    assert [m["Status"] for m in members] == ["accepted"]

    # a member may neither change nor delete the owner's image: 403 (it can see it)
    tb = token_of(cloud, other)
    r = api(cloud, "PATCH", f"/images/{iid}", tb, headers=PATCH,
            data=json.dumps([{"op": "replace", "path": "/name", "value": "stolen"}]))
    assert r.status_code == 403, r.text
    r = api(cloud, "DELETE", f"/images/{iid}", tb)
    assert r.status_code == 403, r.text
    cloud.openstack_fails("image", "set", "--name", "stolen", iid, cloud=B, status=403)
    cloud.openstack_fails("image", "delete", iid, cloud=B)
    # nor add members
    r = api(cloud, "POST", f"/images/{iid}/members", tb, json={"member": member["project_id"]})
    assert r.status_code == 403, r.text
    assert cloud.openstack("image", "show", iid)["name"] == name

    cloud.openstack("image", "set", "--reject", iid, cloud=B, fmt=None)
    assert iid not in ids()
    assert iid in ids("--member-status", "rejected")

    # the owner removes B: B no longer sees it at all
    cloud.openstack("image", "remove", "project", iid, other["project_id"], cloud=A, fmt=None)
    assert api(cloud, "GET", f"/images/{iid}", tb).status_code == 404


def test_member_status_is_the_members_to_set(cloud, member, other, name, tmp_path):
    img = create_image(cloud, name, write(tmp_path / "a.raw", payload(100)), "raw", "bare",
                       "--shared", as_cloud=member["cloud"])
    ta, tb = token_of(cloud, member), token_of(cloud, other)
    r = api(cloud, "POST", f"/images/{img['id']}/members", ta, json={"member": other["project_id"]})
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    # the owner cannot accept on the member's behalf
    r = api(cloud, "PUT", f"/images/{img['id']}/members/{other['project_id']}", ta,
            json={"status": "accepted"})
    assert r.status_code == 403, r.text
    r = api(cloud, "PUT", f"/images/{img['id']}/members/{other['project_id']}", tb,
            json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    r = api(cloud, "PUT", f"/images/{img['id']}/members/{other['project_id']}", tb,
            json={"status": "maybe"})
    assert r.status_code == 400, r.text
    # adding the same member twice is a conflict
    r = api(cloud, "POST", f"/images/{img['id']}/members", ta, json={"member": other["project_id"]})
    assert r.status_code == 409, r.text


def test_only_admin_publishes_images(cloud, member, name):
    cloud.openstack_fails("image", "create", "--public", "--disk-format", "raw", f"{name}-m",
                          cloud=member["cloud"], status=403)
    r = api(cloud, "POST", "/images", token_of(cloud, member), json={"name": name, "visibility": "public"})
    assert r.status_code == 403, r.text
    assert name not in column(cloud.openstack("image", "list", "--public"), "name")
    img = queued(cloud, name, visibility="public")
    assert img["visibility"] == "public"
    assert img["id"] in column(cloud.openstack("image", "list", cloud=member["cloud"]), "id")


def test_community_image_is_listed_only_on_request(cloud, member, other, name, tmp_path):
    img = create_image(cloud, name, write(tmp_path / "a.raw", payload(100)), "raw", "bare",
                       "--community", as_cloud=member["cloud"])
    B = other["cloud"]
    assert img["id"] in column(cloud.openstack("image", "list", "--community", cloud=B), "id")
    assert img["id"] not in column(cloud.openstack("image", "list", cloud=B), "id")
    assert cloud.openstack("image", "show", img["id"], cloud=B)["visibility"] == "community"
    r = api(cloud, "GET", f"/images?visibility=all", token_of(cloud, other))
    assert img["id"] in [im["id"] for im in r.json()["images"]]
    # its owner has it in the default list
    assert img["id"] in column(cloud.openstack("image", "list", cloud=member["cloud"]), "id")


# --- 8: unsafe and mislabelled uploads ---------------------------------------------------

def refused_upload(cloud, name, path, disk_format):
    """POST + PUT: the upload must be refused with 400, the image left `killed`, and no
    byte of it kept in the store."""
    img = queued(cloud, name, disk_format=disk_format, container_format="bare")
    r = api(cloud, "PUT", f"/images/{img['id']}/file", headers=OCTET, data=path.read_bytes())
    assert r.status_code == 400, f"{r.status_code} {r.text}"
    assert r.json()["message"]
    got = api(cloud, "GET", f"/images/{img['id']}").json()
    assert got["status"] == "killed", got
    assert api(cloud, "GET", f"/images/{img['id']}/file").status_code == 204
    files, partial = stored(cloud)
    assert img["id"] not in files and partial == []
    return img


def test_qcow2_with_a_backing_file_is_refused(cloud, name, tmp_path):
    base = write(tmp_path / "base.raw", payload(1 << 20))
    f = tmp_path / "backed.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", base, "-F", "raw", f)
    cloud.openstack_fails("image", "create", "--file", f, "--disk-format", "qcow2",
                          "--container-format", "bare", f"{name}-cli", status=400)
    leftovers = [im for im in all_images(cloud) if im["name"] == f"{name}-cli"]
    assert all(im["status"] != "active" for im in leftovers), leftovers
    refused_upload(cloud, name, f, "qcow2")
    assert_store_holds_only_live_images(cloud)


def test_qcow2_labelled_raw_is_refused(cloud, name, tmp_path):
    """Content that is not its disk_format: Glance's 415 (InvalidImageData), and the
    image is restored to `queued`, without its bytes."""
    f = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", f, "16M")
    cloud.openstack_fails("image", "create", "--file", f, "--disk-format", "raw",
                          "--container-format", "bare", f"{name}-cli", status=415)
    img = queued(cloud, name, disk_format="raw", container_format="bare")
    r = api(cloud, "PUT", f"/images/{img['id']}/file", headers=OCTET, data=f.read_bytes())
    assert r.status_code == 415, f"{r.status_code} {r.text}"
    assert r.json()["message"] == "Image disk_format raw does not match stream data qcow2", r.text
    got = api(cloud, "GET", f"/images/{img['id']}").json()
    assert got["status"] == "queued", got
    assert api(cloud, "GET", f"/images/{img['id']}/file").status_code == 204
    files, partial = stored(cloud)
    assert img["id"] not in files and partial == []
    assert_store_holds_only_live_images(cloud)


def test_qcow2_with_an_external_data_file_is_refused(cloud, name, tmp_path):
    f = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", f, "16M")
    refused_upload(cloud, name, f, "qcow2")
    assert_store_holds_only_live_images(cloud)


def test_vmdk_monolithic_flat_descriptor_is_refused(cloud, name, tmp_path):
    f = tmp_path / "disk.vmdk"
    qemu_img("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", f, "16M")
    assert b"monolithicFlat" in f.read_bytes()[:4096]
    refused_upload(cloud, name, f, "vmdk")
    assert_store_holds_only_live_images(cloud)


def test_store_holds_exactly_the_live_images(cloud, name, tmp_path):
    img = create_image(cloud, name, write(tmp_path / "a.raw", payload(777)))
    files, partial = stored(cloud)
    assert img["id"] in files and partial == []
    assert (cloud.state / "images" / img["id"]).read_bytes() == payload(777)
    assert_store_holds_only_live_images(cloud)


# --- 9: bad requests -------------------------------------------------------------------

def test_upload_to_an_active_image_is_409(cloud, name, tmp_path):
    img = create_image(cloud, name, write(tmp_path / "a.raw", payload(100)))
    r = api(cloud, "PUT", f"/images/{img['id']}/file", headers=OCTET, data=payload(50))
    assert r.status_code == 409, r.text
    got = api(cloud, "GET", f"/images/{img['id']}").json()
    assert got["status"] == "active" and got["size"] == 100


def test_upload_without_disk_format_is_400(cloud, name):
    img = queued(cloud, name)
    r = api(cloud, "PUT", f"/images/{img['id']}/file", headers=OCTET, data=payload(100))
    assert r.status_code == 400, r.text
    assert api(cloud, "GET", f"/images/{img['id']}").json()["status"] == "queued"


def test_patch_needs_the_json_patch_media_type(cloud, name):
    img = queued(cloud, name)
    body = json.dumps([{"op": "replace", "path": "/name", "value": "x"}])
    r = api(cloud, "PATCH", f"/images/{img['id']}", headers={"Content-Type": "application/json"}, data=body)
    assert r.status_code == 415, r.text
    r = api(cloud, "PATCH", f"/images/{img['id']}", headers=PATCH, data=body)
    assert r.status_code == 200 and r.json()["name"] == "x", r.text


def test_status_and_reserved_properties_are_not_the_users(cloud, name):
    img = queued(cloud, name)
    r = api(cloud, "PATCH", f"/images/{img['id']}", headers=PATCH,
            data=json.dumps([{"op": "replace", "path": "/status", "value": "active"}]))
    assert r.status_code == 403, r.text
    assert api(cloud, "GET", f"/images/{img['id']}").json()["status"] == "queued"
    r = api(cloud, "POST", "/images", json={"name": name, "os_glance_x": "y"})
    assert r.status_code == 403, r.text
    assert name not in [im["name"] for im in all_images(cloud) if im["id"] != img["id"]]


def test_errors_are_glance_json(cloud):
    r = api(cloud, "GET", "/images/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.json()["message"], r.text
    r = api(cloud, "GET", "/images?sort_key=bogus")
    assert r.status_code == 400 and r.json()["message"], r.text
    r = api(cloud, "GET", "/images?sort=bogus:asc")
    assert r.status_code == 400, r.text
    r = api(cloud, "POST", "/images", headers={"Content-Type": "application/json"}, data="{nope")
    assert r.status_code == 400 and r.json()["message"], r.text
    r = cloud.http.get(url(cloud, "/images"))
    assert r.status_code == 401, r.text
    r = cloud.http.get(url(cloud, "/images"), headers={"X-Auth-Token": "not-a-token"})
    assert r.status_code == 401, r.text


# --- more of the API -------------------------------------------------------------------

def test_next_link_keeps_the_filters(cloud, name):
    made = {queued(cloud, f"{name}-{i}", tags=[name])["id"] for i in range(3)}
    queued(cloud, f"{name}-untagged")
    seen, path = [], f"/images?limit=2&tag={name}"
    while path:
        body = api(cloud, "GET", path.removeprefix("/v2")).json()
        seen += [im["id"] for im in body["images"]]
        path = body.get("next")
        assert path is None or f"tag={name}" in path, path
    assert sorted(seen) == sorted(made)


def test_tags_api(cloud, name):
    img = queued(cloud, name)
    r = api(cloud, "PUT", f"/images/{img['id']}/tags/blue")
    assert r.status_code == 204, r.text
    assert api(cloud, "PUT", f"/images/{img['id']}/tags/blue").status_code == 204
    assert api(cloud, "GET", f"/images/{img['id']}").json()["tags"] == ["blue"]
    assert api(cloud, "DELETE", f"/images/{img['id']}/tags/blue").status_code == 204
    assert api(cloud, "DELETE", f"/images/{img['id']}/tags/blue").status_code == 404
    assert api(cloud, "GET", f"/images/{img['id']}").json()["tags"] == []


def test_create_with_own_id_and_validated_formats(cloud, name):
    iid = "7b4bd0d8-5a0c-4b0a-9a3e-0c2e5c1b0f11".replace("0f11", os.urandom(2).hex())
    r = api(cloud, "POST", "/images", json={"name": name, "id": iid})
    assert r.status_code == 201 and r.json()["id"] == iid, r.text
    assert r.headers["Location"].endswith(f"/v2/images/{iid}")
    r = api(cloud, "POST", "/images", json={"name": name, "id": iid})
    assert r.status_code == 409, r.text
    r = api(cloud, "POST", "/images", json={"name": name, "disk_format": "floppy"})
    assert r.status_code == 400, r.text
    r = api(cloud, "POST", "/images", json={"name": name, "visibility": "everyone"})
    assert r.status_code == 400, r.text


def test_hidden_images_are_listed_only_on_request(cloud, name):
    img = queued(cloud, name, os_hidden=True)
    assert img["id"] not in [im["id"] for im in all_images(cloud)]
    r = api(cloud, "GET", "/images?os_hidden=true&limit=1000")
    assert img["id"] in [im["id"] for im in r.json()["images"]]
    assert img["id"] in column(cloud.openstack("image", "list", "--hidden"), "id")
    assert img["id"] not in column(cloud.openstack("image", "list"), "id")


def test_admin_sees_every_projects_private_images(cloud, member, name):
    img = queued(cloud, name, token_of(cloud, member), visibility="private")
    assert api(cloud, "GET", f"/images/{img['id']}").status_code == 200
    assert img["id"] in column(cloud.openstack("image", "list"), "id")
    assert cloud.openstack("image", "show", img["id"])["owner"] == member["project_id"]


def test_member_cannot_upload_to_or_publish_anothers_image(cloud, member, other, name):
    ta, tb = token_of(cloud, member), token_of(cloud, other)
    img = queued(cloud, name, ta, visibility="shared", disk_format="raw", container_format="bare")
    r = api(cloud, "POST", f"/images/{img['id']}/members", ta, json={"member": other["project_id"]})
    assert r.status_code == 200, r.text
    r = api(cloud, "PUT", f"/images/{img['id']}/file", tb, headers=OCTET, data=b"x" * 100)
    assert r.status_code == 403, r.text
    assert api(cloud, "GET", f"/images/{img['id']}", ta).json()["status"] == "queued"
    r = api(cloud, "PATCH", f"/images/{img['id']}", ta, headers=PATCH,
            data=json.dumps([{"op": "replace", "path": "/visibility", "value": "public"}]))
    assert r.status_code == 403, r.text
    # made private, the image is no longer the member's to see
    r = api(cloud, "PATCH", f"/images/{img['id']}", ta, headers=PATCH,
            data=json.dumps([{"op": "replace", "path": "/visibility", "value": "private"}]))
    assert r.status_code == 200, r.text
    assert api(cloud, "GET", f"/images/{img['id']}", tb).status_code == 404


def test_version_discovery_at_the_catalog_url(cloud):
    endpoint = next(e["url"] for e in cloud.openstack("catalog", "show", "image")["endpoints"]
                    if e["interface"] == "public")
    r = cloud.http.get(endpoint)
    assert r.status_code == 300, r.text
    assert any(v["status"] == "CURRENT" and v["links"][0]["href"].rstrip("/").endswith("/v2")
               for v in r.json()["versions"])


def test_version_discovery_with_a_trailing_slash(cloud):
    r = cloud.http.get(f"{cloud.base}/image/")
    assert r.status_code == 300, r.text
