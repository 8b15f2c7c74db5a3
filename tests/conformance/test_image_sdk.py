"""openstacksdk (from PyPI) against ferrostack: the image proxy and cloud-layer calls SDK
users make."""

import hashlib

import openstack.exceptions
import pytest



def payload(size, seed=0):
    out, block = bytearray(), seed.to_bytes(8, "big")
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block
    return bytes(out[:size])


def test_sdk_image_lifecycle(cloud, name, tmp_path):
    conn = cloud.sdk()
    data = payload(600_000, seed=10)
    src = tmp_path / "in.raw"
    src.write_bytes(data)
    img = conn.create_image(name, filename=str(src), disk_format="raw", container_format="bare",
                            wait=True)
    assert img.status == "active" and img.size == len(data)
    assert img.checksum == hashlib.md5(data).hexdigest()
    assert img.hash_algo == "sha512" and img.hash_value == hashlib.sha512(data).hexdigest()
    assert img.id in {i.id for i in conn.image.images()}
    assert conn.image.find_image(name).id == img.id

    out = tmp_path / "out.raw"
    conn.download_image(name, output_file=str(out))
    assert out.read_bytes() == data
    assert conn.image.download_image(img).content == data

    conn.image.update_image(img, min_ram=64)
    got = conn.image.get_image(img.id)
    assert got.min_ram == 64
    conn.image.add_tag(got, "sdk")
    assert conn.image.get_image(img.id).tags == ["sdk"]
    assert img.id in {i.id for i in conn.image.images(tag="sdk")}

    assert conn.delete_image(name, wait=True)
    assert conn.image.find_image(name) is None
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_image(img.id)


def test_sdk_members_between_projects(cloud, member, name, tmp_path):
    owner = cloud.sdk()
    consumer = cloud.sdk(member["cloud"])
    img = owner.image.create_image(name=name, disk_format="raw", container_format="bare",
                                   visibility="shared")
    m = owner.image.add_member(img, member=member["project_id"])
    assert m.status == "pending"
    assert img.id not in {i.id for i in consumer.image.images()}
    consumer.image.update_member(member["project_id"], img, status="accepted")
    assert img.id in {i.id for i in consumer.image.images()}
    assert [x.status for x in owner.image.members(img)] == ["accepted"]
    with pytest.raises(openstack.exceptions.ForbiddenException):
        consumer.image.update_image(img, name="stolen")
    owner.image.remove_member(member["project_id"], img)
    with pytest.raises(openstack.exceptions.NotFoundException):
        consumer.image.get_image(img.id)
    owner.image.delete_image(img)


def test_sdk_update_image_adds_a_property(cloud, name, tmp_path):
    conn = cloud.sdk()
    src = tmp_path / "in.raw"
    src.write_bytes(payload(1000, seed=11))
    img = conn.create_image(name, filename=str(src), disk_format="raw", container_format="bare",
                            wait=True)
    conn.image.update_image(img, foo="bar")
    got = conn.image.get_image(img.id)
    assert got.properties["foo"] == "bar" and got.status == "active"
