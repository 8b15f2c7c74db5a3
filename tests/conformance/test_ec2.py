"""The EC2 Query API at {base}/ec2 (and STS GetCallerIdentity on the same endpoint) with
real AWS clients: boto3/botocore (SigV4, and SigV2 with `signature_version='v2'`), awscli
v1, boto 2.34 (the last SigV2 boto, which signs the host without its port) and requests
signed by hand; what the EC2 calls did is checked on the OpenStack side with the openstack
CLI and openstacksdk, as the same user.

Callers are users of projects of their own, with EC2 credentials from the real
`openstack ec2 credentials create`; they act with their roles in that project (member,
reader). The fake hypervisor driver runs the servers. Every EC2 answer must carry a `Date`
header and a request id (checked for every call by a botocore hook, see `ec2_client`)."""

import base64
import contextlib
import datetime
import email.utils
import hashlib
import hmac
import json
import re
import subprocess
import time
import types
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from unittest import mock

import boto3
import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import VENV_BIN, clean_env, column, field

FLAVOR = "m1.tiny"
ZONE = "nova"
REGION = "RegionOne"
# every waiter polls each second, for at most a minute (botocore's default: 15 s x 40)
WAIT = {"Delay": 1, "MaxAttempts": 60}
# the tag every instance of these tests carries, so that a test finds its own servers
# (on the EC2 side with a tag filter, on the Nova side in the server's metadata)
MARK = "ferrostack-test"
STATES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
          "stopping": 64, "stopped": 80}
FORM = "application/x-www-form-urlencoded; charset=utf-8"
# a bad signature, in EC2's words (AuthFailure) or S3/STS-like ones
BAD_SIGNATURE = {"AuthFailure": 401, "SignatureDoesNotMatch": 403}


# --- addresses, clients, checks -----------------------------------------------------------

def ec2_url(cloud, slash=False):
    return f"{cloud.base}/ec2" + ("/" if slash else "")


def hostport(cloud):
    return cloud.base.split("//", 1)[1]


_SESSION = boto3.session.Session()


def _check_every_answer(http_response, parsed, **kwargs):
    """after-call hook of every client: each answer, success or error, carries a Date
    header close to now (SDKs correct clock skew with it) and a request id."""
    date = http_response.headers.get("Date")
    assert date, f"no Date header: {dict(http_response.headers)}"
    when = email.utils.parsedate_to_datetime(date)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((when - now).total_seconds()) < 120, f"Date {date!r} is not now"
    assert parsed.get("ResponseMetadata", {}).get("RequestId"), \
        f"no request id in the answer: {http_response.status_code} {http_response.content[:500]!r}"


def ec2_client(cloud, access, secret, service="ec2", endpoint=None, **config):
    """A boto3 client of `service` for the EC2 endpoint, without retries (so that a
    server error shows), with the Date/request-id check on every answer."""
    config.setdefault("retries", {"total_max_attempts": 1})
    client = _SESSION.client(service, endpoint_url=endpoint or ec2_url(cloud), region_name=REGION,
                             aws_access_key_id=access, aws_secret_access_key=secret,
                             config=Config(**config))
    client.meta.events.register("after-call", _check_every_answer)
    return client


@contextlib.contextmanager
def ec2_error(codes, status=400):
    """The block must raise botocore's ClientError with one of `codes` and HTTP `status`
    (one status, or a {code: status} dict)."""
    codes = (codes,) if isinstance(codes, str) else tuple(codes)
    with pytest.raises(ClientError) as info:
        yield info
    resp = info.value.response
    code = resp.get("Error", {}).get("Code")
    assert code in codes, f"want {codes}, got {resp}"
    want = status[code] if isinstance(status, dict) else status
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == want, resp


def assert_id(kind, value):
    assert isinstance(value, str) and re.fullmatch(rf"{kind}-[0-9a-f]{{17}}", value), \
        f"not a {kind}- id: {value!r}"


def unknown_id(kind):
    return f"{kind}-{uuid.uuid4().hex[:17]}"


def assert_state(instance, name):
    assert instance["State"] == {"Code": STATES[name], "Name": name}, instance["State"]


def wait(client, waiter, **kw):
    client.get_waiter(waiter).wait(WaiterConfig=WAIT, **kw)


def instances(client, **kw):
    return [i for r in client.describe_instances(**kw)["Reservations"] for i in r["Instances"]]


def by_tag(client, key, value, **kw):
    return instances(client, Filters=[{"Name": f"tag:{key}", "Values": [value]}], **kw)


def local(tag):
    return tag.rsplit("}", 1)[-1]


def find(el, *path):
    """Descends through child elements by local name (namespace ignored)."""
    for name in path:
        el = next((c for c in el if local(c.tag) == name), None)
        assert el is not None, f"no <{name}>"
    return el


def xml_error(r, status):
    """A raw EC2 error answer: HTTP status, Date header and EC2's error document
    <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>;
    returns the Code."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("Date"), dict(r.headers)
    root = ET.fromstring(r.content)
    assert root.tag == "Response", r.text
    err = find(root, "Errors", "Error")
    assert find(err, "Message").text, r.text
    assert find(root, "RequestID").text, r.text
    return find(err, "Code").text


# --- signing by hand ------------------------------------------------------------------------

def sigv4_headers(url, access, secret, body, method="POST", service="ec2", now=None):
    """Headers of a request signed by botocore's SigV4Auth (optionally at another time)."""
    headers = {"Content-Type": FORM} if method == "POST" else {}
    req = AWSRequest(method=method, url=url, data=body if method == "POST" else None, headers=headers)
    signer = SigV4Auth(Credentials(access, secret), service, REGION)
    if now is None:
        signer.add_auth(req)
    else:
        with mock.patch.object(botocore.auth, "get_current_datetime",
                               return_value=now.astimezone(datetime.timezone.utc).replace(tzinfo=None)):
            signer.add_auth(req)
    return dict(req.headers.items())


def _rfc3986(s):
    return urllib.parse.quote(str(s), safe="-_.~")


def sigv2_params(access, secret, host, path, params, method="POST", algo="HmacSHA1", when=None):
    """`params` signed with SigV2 the way the EC2 documentation describes it."""
    p = dict(params)
    when = when or datetime.datetime.now(datetime.timezone.utc)
    p.update(AWSAccessKeyId=access, SignatureMethod=algo, SignatureVersion="2",
             Timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    query = "&".join(f"{_rfc3986(k)}={_rfc3986(v)}" for k, v in sorted(p.items()))
    digest = hashlib.sha1 if algo == "HmacSHA1" else hashlib.sha256
    mac = hmac.new(secret.encode(), f"{method}\n{host}\n{path}\n{query}".encode(), digest)
    p["Signature"] = base64.b64encode(mac.digest()).decode()
    return p


# --- the OpenStack side -----------------------------------------------------------------------

class Account:
    """A user in a project with an EC2 credential made by `openstack ec2 credentials
    create` as that user; `cloud_name` is its clouds.yaml entry for the openstack CLI."""

    def __init__(self, cloud, cloud_name, username, cred):
        self.cloud, self.cloud_name, self.username = cloud, cloud_name, username
        self.access, self.secret = field(cred, "access"), field(cred, "secret")
        self.project_id, self.user_id = field(cred, "project_id"), field(cred, "user_id")
        self._account = None

    def client(self, service="ec2", **kw):
        return ec2_client(self.cloud, self.access, self.secret, service, **kw)

    @property
    def ec2(self):
        return self.client()

    @property
    def account(self):
        """The 12-digit account id of the project, from STS GetCallerIdentity."""
        if self._account is None:
            me = self.client("sts").get_caller_identity()
            self._account = me["Account"]
        return self._account

    def openstack(self, *args, **kw):
        return self.cloud.openstack(*args, cloud=self.cloud_name, **kw)

    def nova_server(self, marker):
        """The Nova server (openstacksdk, as this user) carrying tag MARK=marker."""
        found = [s for s in self.cloud.sdk(self.cloud_name).compute.servers(details=True)
                 if (s.metadata or {}).get(MARK) == marker]
        assert len(found) == 1, f"{len(found)} servers have {MARK}={marker}"
        return found[0]

    def nova_count(self, marker):
        return sum(1 for s in self.cloud.sdk(self.cloud_name).compute.servers(details=True)
                   if (s.metadata or {}).get(MARK) == marker)


def credential_for(cloud, user_cloud, username):
    return Account(cloud, user_cloud, username,
                   cloud.openstack("ec2", "credentials", "create", cloud=user_cloud))


def new_user(cloud, project, username, role):
    cloud.openstack("user", "create", "--password", f"pw-{username}", "--project", project, username)
    cloud.openstack("role", "add", "--user", username, "--project", project, role, fmt=None)
    cloud.add_user_cloud(username, username, f"pw-{username}", project=project)
    return credential_for(cloud, username, username)


def new_account(cloud, name, role="member"):
    cloud.openstack("project", "create", name)
    return new_user(cloud, name, name, role)


def upload_image(cloud, tmp, name, cloud_name="ferrostack", public=False):
    f = tmp / f"{name}.raw"
    f.write_bytes(bytes(range(256)) * 64)
    img = cloud.openstack("image", "create", "--disk-format", "raw", "--container-format", "bare",
                          "--public" if public else "--private", "--file", f, name, cloud=cloud_name)
    assert img["status"] == "active", img
    return img["id"]


def flavor(cloud, name):
    f = cloud.openstack("flavor", "show", name)
    return {"vcpus": int(f["vcpus"]), "ram": int(f["ram"]), "disk": int(f["disk"])}


def neutron_ingress(acct, group_name):
    """The ingress rules of the user's Neutron security group `group_name`:
    {(protocol, port range, ip range or None, remote group id or None)}, and its id."""
    groups = [g for g in acct.openstack("security", "group", "list") if g["Name"] == group_name]
    assert len(groups) == 1, groups
    gid = groups[0]["ID"]
    rules = acct.openstack("security", "group", "rule", "list", gid)
    rows = {(r["IP Protocol"], r["Port Range"], r["IP Range"] if not r["Remote Security Group"] else None,
             r["Remote Security Group"]) for r in rules if r["Direction"] == "ingress"}
    return rows, gid


def nova_keypairs(acct):
    return set(column(acct.openstack("keypair", "list"), "name"))


def nova_public_key(acct, key_name):
    return acct.openstack("keypair", "show", "--public-key", key_name, fmt=None).split()[:2]


def glance_image(acct, image_name):
    found = [i for i in acct.openstack("image", "list", "--name", image_name)]
    assert len(found) == 1, found
    return acct.openstack("image", "show", found[0]["ID"])


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def public_image(cloud, tmp_path_factory):
    """A public raw image the admin uploads: its name."""
    name = f"ec2-public-{uuid.uuid4().hex[:8]}"
    upload_image(cloud, tmp_path_factory.mktemp("img"), name, public=True)
    return name


@pytest.fixture(scope="module")
def acct(cloud):
    """A project of this module's tests, with a member user and their EC2 credential."""
    return new_account(cloud, f"ec2-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def admin_acct(cloud):
    """The admin (admin project) with an EC2 credential of their own."""
    return credential_for(cloud, "ferrostack", "admin")


@pytest.fixture
def other(cloud, member):
    """A member of another, fresh project (conftest's `member`), with an EC2 credential."""
    return credential_for(cloud, member["cloud"], member["name"])


def ami(client, image_name):
    images = client.describe_images(Filters=[{"Name": "name", "Values": [image_name]}])["Images"]
    assert len(images) == 1, images
    assert_id("ami", images[0]["ImageId"])
    return images[0]["ImageId"]


def launch(client, image_id, marker, count=1, tags=(), **kw):
    """RunInstances of `count` m1.tiny instances tagged MARK=marker: the response."""
    kw.setdefault("InstanceType", FLAVOR)
    return client.run_instances(
        ImageId=image_id, MinCount=count, MaxCount=count,
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": MARK, "Value": marker}, *tags]}], **kw)


@pytest.fixture
def reaper():
    """Terminates, at the end of the test, what it was given: reaper(client, ids)."""
    todo = []
    yield lambda client, ids: todo.append((client, list(ids)))
    for client, ids in todo:
        for iid in ids:
            with contextlib.suppress(ClientError, AssertionError):
                client.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
            with contextlib.suppress(ClientError, AssertionError):
                client.terminate_instances(InstanceIds=[iid])


@pytest.fixture(scope="module")
def booted(acct, public_image):
    """One running instance of `acct`, launched with a key pair, a security group, user
    data and tags: the tests only read it (and add/remove tags of their own)."""
    ec2 = acct.ec2
    marker = f"booted-{uuid.uuid4().hex[:8]}"
    key = ec2.create_key_pair(KeyName=f"{marker}-key")
    sg = ec2.create_security_group(GroupName=f"{marker}-sg", Description="booted")["GroupId"]
    user_data = f"#!/bin/sh\necho {marker}\n"
    r = launch(ec2, ami(ec2, public_image), marker, KeyName=key["KeyName"], UserData=user_data,
               SecurityGroupIds=[sg], tags=[{"Key": "Name", "Value": marker}])
    iid = r["Instances"][0]["InstanceId"]
    try:
        wait(ec2, "instance_running", InstanceIds=[iid])
        yield types.SimpleNamespace(id=iid, reservation=r, marker=marker, key=key, sg=sg,
                                    sg_name=f"{marker}-sg", user_data=user_data, image=public_image)
    finally:
        with contextlib.suppress(ClientError, AssertionError):
            ec2.terminate_instances(InstanceIds=[iid])


# --- regions, zones, identity, transports ---------------------------------------------------

def test_regions_zones_and_caller_identity(cloud, acct, admin_acct):
    ec2 = acct.ec2
    regions = ec2.describe_regions()["Regions"]
    one = [r for r in regions if r["RegionName"] == REGION]
    assert len(one) == 1, regions
    assert hostport(cloud) in one[0]["Endpoint"], one

    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    nova = [z for z in zones if z["ZoneName"] == ZONE]
    assert len(nova) == 1 and nova[0]["State"] == "available", zones

    me = acct.client("sts").get_caller_identity()
    assert re.fullmatch(r"\d{12}", me["Account"]), me
    assert me["Arn"] == f"arn:aws:iam::{me['Account']}:user/{acct.username}", me
    assert me["UserId"], me
    # the same answer from the trailing-slash endpoint; another project, another account
    again = acct.client("sts", endpoint=ec2_url(cloud, slash=True)).get_caller_identity()
    assert (again["Account"], again["Arn"]) == (me["Account"], me["Arn"])
    admin = admin_acct.client("sts").get_caller_identity()
    assert admin["Arn"] == f"arn:aws:iam::{admin['Account']}:user/admin", admin
    assert re.fullmatch(r"\d{12}", admin["Account"]) and admin["Account"] != me["Account"]


def test_sts_answers_in_the_awsquery_shape(cloud, acct):
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    r = requests.post(ec2_url(cloud), data=body, timeout=30,
                      headers=sigv4_headers(ec2_url(cloud), acct.access, acct.secret, body, service="sts"))
    assert r.status_code == 200, r.text
    assert r.headers.get("Date")
    root = ET.fromstring(r.content)
    assert root.tag == "{https://sts.amazonaws.com/doc/2011-06-15/}GetCallerIdentityResponse", r.text
    result = find(root, "GetCallerIdentityResult")
    assert find(result, "Account").text == acct.account
    assert find(result, "Arn").text == f"arn:aws:iam::{acct.account}:user/{acct.username}"
    # a wrong secret: refused in STS's words or EC2's
    sts = ec2_client(cloud, acct.access, "not-the-secret", "sts")
    with ec2_error(("SignatureDoesNotMatch", "InvalidClientTokenId", "AuthFailure"),
                   {"SignatureDoesNotMatch": 403, "InvalidClientTokenId": 403, "AuthFailure": 401}):
        sts.get_caller_identity()


def test_get_and_post_on_both_paths_with_sigv4(cloud, acct):
    """Form POST and GET query, on /ec2 and /ec2/: signed in the header, and presigned."""
    for slash in (False, True):
        url = ec2_url(cloud, slash)
        zones = acct.client(endpoint=url).describe_availability_zones()["AvailabilityZones"]
        assert ZONE in [z["ZoneName"] for z in zones]
        query = "Action=DescribeAvailabilityZones&Version=2016-11-15"
        r = requests.get(f"{url}?{query}", timeout=30,
                         headers=sigv4_headers(f"{url}?{query}", acct.access, acct.secret, None, "GET"))
        assert r.status_code == 200, r.text
        root = ET.fromstring(r.content)
        assert root.tag == "{http://ec2.amazonaws.com/doc/2016-11-15/}DescribeAvailabilityZonesResponse"
        assert ZONE in [z.text for z in root.iter("{http://ec2.amazonaws.com/doc/2016-11-15/}zoneName")]
        # botocore's presigned URL: the signature in the query string
        signed = acct.client(endpoint=url).generate_presigned_url("describe_availability_zones",
                                                                  ExpiresIn=300)
        assert "X-Amz-Signature=" in signed
        r = requests.get(signed, timeout=30)
        assert r.status_code == 200, r.text
        assert local(ET.fromstring(r.content).tag) == "DescribeAvailabilityZonesResponse"


# --- images and instance types ------------------------------------------------------------

def test_describe_images_instance_types_and_image_tags(cloud, acct, admin_acct, public_image,
                                                        name, tmp_path):
    ec2 = acct.ec2
    # the admin's public image: same id for everyone, owned by the admin's account
    pub = ec2.describe_images(Filters=[{"Name": "name", "Values": [public_image]}])["Images"]
    assert len(pub) == 1, pub
    assert_id("ami", pub[0]["ImageId"])
    assert pub[0]["Name"] == public_image and pub[0]["State"] == "available"
    assert pub[0]["Public"] is True
    assert pub[0]["OwnerId"] == admin_acct.account != acct.account
    assert ami(admin_acct.ec2, public_image) == pub[0]["ImageId"]
    perm = admin_acct.ec2.describe_image_attribute(ImageId=pub[0]["ImageId"], Attribute="launchPermission")
    assert perm["ImageId"] == pub[0]["ImageId"]
    assert {"Group": "all"} in perm["LaunchPermissions"], perm

    # an image of the project's own (uploaded with the CLI as the member)
    glance_id = upload_image(cloud, tmp_path, name, cloud_name=acct.cloud_name)
    own = ami(ec2, name)
    assert own != pub[0]["ImageId"]
    mine = ec2.describe_images(Owners=["self"])["Images"]
    assert own in [i["ImageId"] for i in mine]
    assert pub[0]["ImageId"] not in [i["ImageId"] for i in mine]
    assert all(i["OwnerId"] == acct.account for i in mine), mine
    img = ec2.describe_images(ImageIds=[own])["Images"]
    assert [i["ImageId"] for i in img] == [own]
    assert img[0]["Name"] == name and img[0]["State"] == "available" and img[0]["Public"] is False
    assert ami(ec2, name) == own  # stable
    perm = ec2.describe_image_attribute(ImageId=own, Attribute="launchPermission")
    assert perm["ImageId"] == own and perm["LaunchPermissions"] == [], perm
    with ec2_error("InvalidAMIID.NotFound"):
        ec2.describe_images(ImageIds=[unknown_id("ami")])
    with ec2_error("InvalidAMIID.NotFound"):
        ec2.describe_image_attribute(ImageId=unknown_id("ami"), Attribute="launchPermission")

    # tags on an image
    ec2.create_tags(Resources=[own], Tags=[{"Key": "purpose", "Value": name}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [own]}])["Tags"]
    assert tags == [{"Key": "purpose", "ResourceId": own, "ResourceType": "image", "Value": name}], tags
    assert {"Key": "purpose", "Value": name} in ec2.describe_images(ImageIds=[own])["Images"][0]["Tags"]
    ec2.delete_tags(Resources=[own], Tags=[{"Key": "purpose"}])
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [own]}])["Tags"] == []
    assert not ec2.describe_images(ImageIds=[own])["Images"][0].get("Tags")

    # instance types are the flavors
    tiny = flavor(cloud, FLAVOR)
    types_ = ec2.describe_instance_types(InstanceTypes=[FLAVOR])["InstanceTypes"]
    assert len(types_) == 1, types_
    assert types_[0]["InstanceType"] == FLAVOR
    assert types_[0]["VCpuInfo"]["DefaultVCpus"] == tiny["vcpus"]
    assert types_[0]["MemoryInfo"]["SizeInMiB"] == tiny["ram"]
    cloud.openstack("image", "delete", glance_id, fmt=None)


# --- key pairs and security groups ------------------------------------------------------------

def _public_of(key_material):
    data = key_material.encode()
    if b"OPENSSH PRIVATE KEY" in data:
        key = serialization.load_ssh_private_key(data, password=None)
    else:
        key = serialization.load_pem_private_key(data, password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode().split()[:2]


def _openssh_public(bits=2048):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


FINGERPRINT = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){15,}")


def test_key_pairs(acct, name):
    ec2 = acct.ec2
    created = ec2.create_key_pair(KeyName=f"{name}-c")
    assert created["KeyName"] == f"{name}-c"
    assert created["KeyMaterial"].startswith("-----BEGIN ") and "PRIVATE KEY-----" in created["KeyMaterial"]
    assert FINGERPRINT.fullmatch(created["KeyFingerprint"]), created["KeyFingerprint"]
    assert_id("key", created["KeyPairId"])
    # it is a Nova key pair, whose public half is that of the private key we got
    assert f"{name}-c" in nova_keypairs(acct)
    assert nova_public_key(acct, f"{name}-c") == _public_of(created["KeyMaterial"])
    with ec2_error("InvalidKeyPair.Duplicate"):
        ec2.create_key_pair(KeyName=f"{name}-c")

    # the same public key imported under two names: the same fingerprint
    pub = _openssh_public()
    a = ec2.import_key_pair(KeyName=f"{name}-a", PublicKeyMaterial=pub.encode())
    b = ec2.import_key_pair(KeyName=f"{name}-b", PublicKeyMaterial=pub.encode())
    other = ec2.import_key_pair(KeyName=f"{name}-o", PublicKeyMaterial=_openssh_public().encode())
    assert a["KeyName"] == f"{name}-a" and b["KeyName"] == f"{name}-b"
    assert FINGERPRINT.fullmatch(a["KeyFingerprint"]), a
    assert a["KeyFingerprint"] == b["KeyFingerprint"] != other["KeyFingerprint"]
    for k in (a, b, other):
        assert_id("key", k["KeyPairId"])
    assert len({a["KeyPairId"], b["KeyPairId"], other["KeyPairId"], created["KeyPairId"]}) == 4
    assert nova_public_key(acct, f"{name}-a") == pub.split()[:2]

    names = [f"{name}-{s}" for s in "cabo"]
    listed = {k["KeyName"]: k for k in ec2.describe_key_pairs(KeyNames=names)["KeyPairs"]}
    assert sorted(listed) == sorted(names)
    for k, made in zip(names, (created, a, b, other)):
        assert listed[k]["KeyPairId"] == made["KeyPairId"]
        assert listed[k]["KeyFingerprint"] == made["KeyFingerprint"]
        assert listed[k]["KeyType"] == "rsa"
    everything = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    assert set(names) <= set(everything)

    with ec2_error("InvalidKeyPair.NotFound"):
        ec2.describe_key_pairs(KeyNames=[f"{name}-missing"])
    for k in names:
        ec2.delete_key_pair(KeyName=k)
    with ec2_error("InvalidKeyPair.NotFound"):
        ec2.describe_key_pairs(KeyNames=[f"{name}-a"])
    assert not set(names) & nova_keypairs(acct)


def _perms(group):
    out = set()
    for p in group["IpPermissions"]:
        for r in p.get("IpRanges", []):
            out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"]))
        for g in p.get("UserIdGroupPairs", []):
            out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), g["GroupId"]))
    return out


def test_security_groups(acct, name):
    ec2 = acct.ec2
    gid = ec2.create_security_group(GroupName=name, Description=f"about {name}")["GroupId"]
    assert_id("sg", gid)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert len(group) == 1, group
    g = group[0]
    assert (g["GroupId"], g["GroupName"], g["Description"]) == (gid, name, f"about {name}")
    assert g["OwnerId"] == acct.account and g["VpcId"] == vpc
    assert g["IpPermissions"] == [], g
    assert ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"][0]["GroupId"] == gid

    # the classic top-level form, and the IpPermissions form with a CIDR and a group
    ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=22, ToPort=22,
                                         CidrIp="0.0.0.0/0")
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 81, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": gid}]}])
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert _perms(g) == {("tcp", 22, 22, "0.0.0.0/0"), ("tcp", 80, 81, "10.0.0.0/8"),
                         ("tcp", 443, 443, gid)}, g["IpPermissions"]
    rules, neutron_id = neutron_ingress(acct, name)
    assert rules == {("tcp", "22:22", "0.0.0.0/0", None), ("tcp", "80:81", "10.0.0.0/8", None),
                     ("tcp", "443:443", None, neutron_id)}, rules
    assert ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["GroupId"] == gid

    ec2.revoke_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=22, ToPort=22,
                                      CidrIp="0.0.0.0/0")
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": gid}]}])
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert _perms(g) == {("tcp", 80, 81, "10.0.0.0/8")}, g["IpPermissions"]
    assert neutron_ingress(acct, name)[0] == {("tcp", "80:81", "10.0.0.0/8", None)}

    ec2.delete_security_group(GroupId=gid)
    with ec2_error("InvalidGroup.NotFound"):
        ec2.describe_security_groups(GroupIds=[gid])
    assert name not in column(acct.openstack("security", "group", "list"), "name")


# --- one instance, read from every side ---------------------------------------------------------

@pytest.mark.timeout(300)
def test_run_instance_and_describe_it(cloud, acct, booted):
    ec2 = acct.ec2
    r = booted.reservation
    assert re.fullmatch(r"r-[0-9a-z]{8}", r["ReservationId"]), r["ReservationId"]
    assert r["OwnerId"] == acct.account
    assert len(r["Instances"]) == 1
    launched = r["Instances"][0]
    assert_id("i", launched["InstanceId"])
    assert launched["InstanceType"] == FLAVOR and launched["KeyName"] == booted.key["KeyName"]
    assert launched["State"]["Name"] in ("pending", "running")
    assert_state({"State": launched["State"]}, launched["State"]["Name"])
    assert launched["AmiLaunchIndex"] == 0

    res = ec2.describe_instances(InstanceIds=[booted.id])["Reservations"]
    assert len(res) == 1 and len(res[0]["Instances"]) == 1, res
    assert res[0]["ReservationId"] == r["ReservationId"] and res[0]["OwnerId"] == acct.account
    i = res[0]["Instances"][0]
    assert i["InstanceId"] == booted.id
    assert_state(i, "running")
    assert i["ImageId"] == ami(ec2, booted.image) == launched["ImageId"]
    assert i["InstanceType"] == FLAVOR and i["KeyName"] == booted.key["KeyName"]
    assert i["Placement"]["AvailabilityZone"] == ZONE
    assert isinstance(i["LaunchTime"], datetime.datetime)
    assert {"Key": "Name", "Value": booted.marker} in i["Tags"]
    assert {"Key": MARK, "Value": booted.marker} in i["Tags"]
    assert {"GroupId": booted.sg, "GroupName": booted.sg_name} in i["SecurityGroups"], i["SecurityGroups"]

    # filters: state, tag, id, AND across names
    def ids(*filters):
        return [x["InstanceId"] for x in instances(ec2, Filters=list(filters))]

    running = {"Name": "instance-state-name", "Values": ["running"]}
    named = {"Name": "tag:Name", "Values": [booted.marker]}
    assert ids(running, named) == [booted.id]
    assert ids({"Name": "instance-id", "Values": [booted.id]}) == [booted.id]
    assert ids({"Name": "tag:Name", "Values": [booted.marker + "-nope"]}) == []
    assert ids({"Name": "instance-state-name", "Values": ["stopped", "terminated"]}, named) == []
    assert booted.id in [x["InstanceId"] for x in instances(ec2)]

    # the default VPC: the instance is in it, in one of its default subnets
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["IsDefault"] is True, vpcs
    vpc = vpcs[0]
    assert_id("vpc", vpc["VpcId"])
    assert vpc["OwnerId"] == acct.account and vpc["State"] == "available" and vpc["CidrBlock"]
    assert ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"] == vpcs
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]},
                                            {"Name": "default-for-az", "Values": ["true"]},
                                            {"Name": "state", "Values": ["available"]}])["Subnets"]
    assert subnets, "no default subnet"
    for s in subnets:
        assert_id("subnet", s["SubnetId"])
        assert s["VpcId"] == vpc["VpcId"] and s["DefaultForAz"] is True
        assert s["AvailabilityZone"] == ZONE
    assert i["VpcId"] == vpc["VpcId"], i
    assert i["SubnetId"] in [s["SubnetId"] for s in subnets], i

    # status
    st = ec2.describe_instance_status(InstanceIds=[booted.id], IncludeAllInstances=True)["InstanceStatuses"]
    assert len(st) == 1 and st[0]["InstanceId"] == booted.id, st
    assert st[0]["InstanceState"] == {"Code": 16, "Name": "running"}
    assert st[0]["InstanceStatus"]["Status"] == "ok" and st[0]["AvailabilityZone"] == ZONE
    wait(ec2, "instance_status_ok", InstanceIds=[booted.id])

    # console and password
    out = ec2.get_console_output(InstanceId=booted.id)
    assert out["InstanceId"] == booted.id
    # botocore decodes the base64 Output itself (handlers.decode_console_output):
    # the fake driver's console log must come through as its text.
    assert "booting" in out["Output"], out
    pw = ec2.get_password_data(InstanceId=booted.id)
    assert pw["InstanceId"] == booted.id and isinstance(pw["PasswordData"], str)

    # Nova's view
    shown = acct.openstack("server", "show", acct.nova_server(booted.marker).id)
    assert shown["status"] == "ACTIVE" and shown["key_name"] == booted.key["KeyName"], shown
    assert FLAVOR in str(shown["flavor"]), shown["flavor"]


@pytest.mark.timeout(300)
def test_instance_attributes_and_root_volume(cloud, acct, booted):
    ec2 = acct.ec2

    def attr(name):
        a = ec2.describe_instance_attribute(InstanceId=booted.id, Attribute=name)
        assert a["InstanceId"] == booted.id, a
        return a

    assert attr("userData")["UserData"]["Value"] == base64.b64encode(booted.user_data.encode()).decode()
    assert attr("instanceType")["InstanceType"]["Value"] == FLAVOR
    assert attr("disableApiTermination")["DisableApiTermination"]["Value"] is False
    assert attr("disableApiStop")["DisableApiStop"]["Value"] is False
    assert attr("instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    assert attr("sourceDestCheck")["SourceDestCheck"]["Value"] is True
    assert attr("ebsOptimized")["EbsOptimized"]["Value"] is False
    groups = attr("groupSet")["Groups"]
    assert booted.sg in [g["GroupId"] for g in groups], groups
    root = attr("rootDeviceName")["RootDeviceName"]["Value"]
    assert root.startswith("/dev/"), root
    bdm = attr("blockDeviceMapping")["BlockDeviceMappings"]
    roots = [m for m in bdm if m["DeviceName"] == root]
    assert len(roots) == 1, bdm
    vol = roots[0]["Ebs"]["VolumeId"]
    assert_id("vol", vol)
    with ec2_error("InvalidParameterValue"):
        ec2.describe_instance_attribute(InstanceId=booted.id, Attribute="noSuchAttribute")

    # DescribeInstances says the same, and DescribeVolumes knows that root disk
    i = instances(ec2, InstanceIds=[booted.id])[0]
    assert i["RootDeviceName"] == root
    assert vol in [m["Ebs"]["VolumeId"] for m in i["BlockDeviceMappings"]]
    v = ec2.describe_volumes(VolumeIds=[vol])["Volumes"]
    assert len(v) == 1, v
    v = v[0]
    assert v["VolumeId"] == vol and v["State"] == "in-use" and v["AvailabilityZone"] == ZONE
    assert v["Size"] == flavor(cloud, FLAVOR)["disk"]
    assert len(v["Attachments"]) == 1, v["Attachments"]
    att = v["Attachments"][0]
    assert (att["InstanceId"], att["VolumeId"], att["Device"], att["State"]) == \
        (booted.id, vol, root, "attached")
    assert vol in [x["VolumeId"] for x in ec2.describe_volumes()["Volumes"]]
    with ec2_error("InvalidVolume.NotFound"):
        ec2.describe_volumes(VolumeIds=[unknown_id("vol")])


def test_instance_tags_are_server_metadata(acct, booted, name):
    ec2 = acct.ec2
    launch_tags = {(MARK, booted.marker), ("Name", booted.marker)}

    def tags(*extra):
        got = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [booted.id]}, *extra])["Tags"]
        assert all(t["ResourceId"] == booted.id and t["ResourceType"] == "instance" for t in got), got
        return {(t["Key"], t["Value"]) for t in got}

    before = tags()
    assert launch_tags <= before, before
    ec2.create_tags(Resources=[booted.id], Tags=[{"Key": f"{name}-env", "Value": "test"},
                                                 {"Key": f"{name}-team", "Value": ""}])
    assert tags() == before | {(f"{name}-env", "test"), (f"{name}-team", "")}
    assert tags({"Name": "key", "Values": [f"{name}-env"]}) == {(f"{name}-env", "test")}
    server = acct.nova_server(booted.marker)
    props = acct.openstack("server", "show", server.id)["properties"]
    assert props.get(f"{name}-env") == "test" and props.get("Name") == booted.marker, props
    i = instances(ec2, InstanceIds=[booted.id])[0]
    assert {"Key": f"{name}-env", "Value": "test"} in i["Tags"]

    ec2.delete_tags(Resources=[booted.id], Tags=[{"Key": f"{name}-env"}, {"Key": f"{name}-team"}])
    assert tags() == before
    props = acct.openstack("server", "show", server.id)["properties"]
    assert f"{name}-env" not in props and f"{name}-team" not in props, props


# --- lifecycles -------------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_stop_start_reboot_and_termination_protection(acct, public_image, name, reaper):
    ec2 = acct.ec2
    iid = launch(ec2, ami(ec2, public_image), name)["Instances"][0]["InstanceId"]
    reaper(ec2, [iid])
    wait(ec2, "instance_running", InstanceIds=[iid])
    server = acct.nova_server(name)

    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    got = ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
    assert got["DisableApiTermination"]["Value"] is True
    with ec2_error("OperationNotPermitted"):
        ec2.terminate_instances(InstanceIds=[iid])
    assert_state(instances(ec2, InstanceIds=[iid])[0], "running")
    assert acct.nova_server(name).status == "ACTIVE"

    stopping = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"]
    assert [s["InstanceId"] for s in stopping] == [iid]
    assert stopping[0]["PreviousState"] == {"Code": 16, "Name": "running"}
    assert stopping[0]["CurrentState"]["Name"] in ("stopping", "stopped")
    wait(ec2, "instance_stopped", InstanceIds=[iid])
    assert_state(instances(ec2, InstanceIds=[iid])[0], "stopped")
    assert acct.openstack("server", "show", server.id)["status"] == "SHUTOFF"

    starting = ec2.start_instances(InstanceIds=[iid])["StartingInstances"]
    assert [s["InstanceId"] for s in starting] == [iid]
    assert starting[0]["PreviousState"] == {"Code": 80, "Name": "stopped"}
    assert starting[0]["CurrentState"]["Name"] in ("pending", "running")
    wait(ec2, "instance_running", InstanceIds=[iid])
    assert acct.openstack("server", "show", server.id)["status"] == "ACTIVE"

    ec2.reboot_instances(InstanceIds=[iid])
    wait(ec2, "instance_running", InstanceIds=[iid])
    deadline = time.monotonic() + 60
    while "reboot" not in column(acct.openstack("server", "event", "list", server.id), "action"):
        assert time.monotonic() < deadline, "no reboot action in Nova's event list"
        time.sleep(0.5)
    assert {"create", "stop", "start", "reboot"} <= set(
        column(acct.openstack("server", "event", "list", server.id), "action"))

    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    assert ec2.describe_instance_attribute(
        InstanceId=iid, Attribute="disableApiTermination")["DisableApiTermination"]["Value"] is False
    gone = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"]
    assert [g["InstanceId"] for g in gone] == [iid]
    wait(ec2, "instance_terminated", InstanceIds=[iid])


@pytest.mark.timeout(300)
def test_create_image_then_terminate_and_stay_listed(acct, public_image, name, reaper):
    ec2 = acct.ec2
    r = launch(ec2, ami(ec2, public_image), name)
    iid = r["Instances"][0]["InstanceId"]
    reaper(ec2, [iid])
    wait(ec2, "instance_running", InstanceIds=[iid])
    server = acct.nova_server(name)

    snap = ec2.create_image(InstanceId=iid, Name=f"{name}-snap")["ImageId"]
    assert_id("ami", snap)
    wait(ec2, "image_available", ImageIds=[snap])
    img = ec2.describe_images(ImageIds=[snap])["Images"][0]
    assert img["Name"] == f"{name}-snap" and img["OwnerId"] == acct.account
    assert snap in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert glance_image(acct, f"{name}-snap")["status"] == "active"

    gone = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"]
    assert [g["InstanceId"] for g in gone] == [iid]
    assert gone[0]["PreviousState"] == {"Code": 16, "Name": "running"}
    assert gone[0]["CurrentState"]["Name"] in ("shutting-down", "terminated")
    wait(ec2, "instance_terminated", InstanceIds=[iid])
    # still listed, by id and in lists, as terminated; the server itself is gone
    res = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    assert res[0]["ReservationId"] == r["ReservationId"]
    assert_state(res[0]["Instances"][0], "terminated")
    term = [x["InstanceId"] for x in instances(
        ec2, Filters=[{"Name": "instance-state-name", "Values": ["terminated"]}])]
    assert iid in term
    assert iid not in [x["InstanceId"] for x in instances(
        ec2, Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]}])]
    deadline = time.monotonic() + 30
    while server.id in column(acct.openstack("server", "list"), "id"):
        assert time.monotonic() < deadline, f"Nova still lists {server.id} after it was terminated"
        time.sleep(0.5)
    # terminating again is harmless
    again = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"]
    assert again[0]["CurrentState"]["Name"] == "terminated"
    acct.openstack("image", "delete", glance_image(acct, f"{name}-snap")["id"], fmt=None)


@pytest.mark.timeout(300)
def test_max_count_two_and_client_token(acct, public_image, name, reaper):
    ec2 = acct.ec2
    image = ami(ec2, public_image)
    two = launch(ec2, image, f"{name}-two", count=2)
    ids = [i["InstanceId"] for i in two["Instances"]]
    reaper(ec2, ids)
    assert len(set(ids)) == 2
    assert sorted(i["AmiLaunchIndex"] for i in two["Instances"]) == [0, 1]
    wait(ec2, "instance_running", InstanceIds=ids)
    res = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    assert len(res) == 1 and res[0]["ReservationId"] == two["ReservationId"], res
    assert sorted(i["InstanceId"] for i in res[0]["Instances"]) == sorted(ids)
    assert acct.nova_count(f"{name}-two") == 2

    token = uuid.uuid4().hex
    first = launch(ec2, image, name, ClientToken=token)
    reaper(ec2, [i["InstanceId"] for i in first["Instances"]])
    second = launch(ec2, image, name, ClientToken=token)
    assert second["ReservationId"] == first["ReservationId"]
    assert [i["InstanceId"] for i in second["Instances"]] == [i["InstanceId"] for i in first["Instances"]]
    assert second["Instances"][0].get("ClientToken", token) == token
    with ec2_error("IdempotentParameterMismatch"):
        launch(ec2, image, name, ClientToken=token, InstanceType="m1.small")
    wait(ec2, "instance_running", InstanceIds=[first["Instances"][0]["InstanceId"]])
    assert acct.nova_count(name) == 1
    assert [i["InstanceId"] for i in by_tag(ec2, MARK, name)] == [first["Instances"][0]["InstanceId"]]
    ec2.terminate_instances(InstanceIds=ids + [first["Instances"][0]["InstanceId"]])


@pytest.mark.timeout(300)
def test_describe_instances_pages(other, public_image, reaper):
    """Six instances, one reservation each, in a project of their own: pages of five."""
    ec2 = other.ec2
    image = ami(ec2, public_image)
    ids = []
    for n in range(6):
        ids.append(launch(ec2, image, f"page-{n}")["Instances"][0]["InstanceId"])
        reaper(ec2, ids[-1:])
    wait(ec2, "instance_running", InstanceIds=ids)

    first = ec2.describe_instances(MaxResults=5)
    page1 = [i["InstanceId"] for r in first["Reservations"] for i in r["Instances"]]
    assert len(page1) == 5 and first.get("NextToken"), first
    rest = ec2.describe_instances(MaxResults=5, NextToken=first["NextToken"])
    page2 = [i["InstanceId"] for r in rest["Reservations"] for i in r["Instances"]]
    assert not rest.get("NextToken"), rest
    assert sorted(page1 + page2) == sorted(ids)
    paged = [i["InstanceId"] for page in ec2.get_paginator("describe_instances").paginate(
        PaginationConfig={"PageSize": 5}) for r in page["Reservations"] for i in r["Instances"]]
    assert sorted(paged) == sorted(ids)
    assert sorted(x["InstanceId"] for x in instances(ec2)) == sorted(ids)

    for bad in (4, 1001):
        with ec2_error("InvalidParameterValue"):
            ec2.describe_instances(MaxResults=bad)
    with ec2_error("InvalidParameterCombination"):
        ec2.describe_instances(MaxResults=5, InstanceIds=ids[:1])
    ec2.terminate_instances(InstanceIds=ids)
    wait(ec2, "instance_terminated", InstanceIds=ids)


# --- errors, policy, isolation ------------------------------------------------------------------

def test_request_errors(cloud, acct):
    ec2 = acct.ec2
    for call in (lambda i: ec2.describe_instances(InstanceIds=[i]),
                 lambda i: ec2.terminate_instances(InstanceIds=[i]),
                 lambda i: ec2.describe_instance_attribute(InstanceId=i, Attribute="instanceType")):
        with ec2_error("InvalidInstanceID.NotFound"):
            call(unknown_id("i"))
        with ec2_error("InvalidInstanceID.Malformed"):
            call("x-1234")
    with ec2_error("MissingParameter"):
        ec2.run_instances(InstanceType=FLAVOR, MinCount=1, MaxCount=1)
    with ec2_error("InvalidAMIID.NotFound"):
        ec2.run_instances(ImageId=unknown_id("ami"), InstanceType=FLAVOR, MinCount=1, MaxCount=1)
    with ec2_error("InvalidKeyPair.NotFound"):
        ec2.describe_key_pairs(KeyNames=[unknown_id("k")])

    # the raw error documents: an Action nobody knows, signed properly, and an unknown id
    for action, want in (("FlyToTheMoon", "InvalidAction"),
                         ("DescribeInstances", "InvalidInstanceID.NotFound")):
        body = f"Action={action}&Version=2016-11-15&InstanceId.1={unknown_id('i')}"
        r = requests.post(ec2_url(cloud), data=body, timeout=30,
                          headers=sigv4_headers(ec2_url(cloud), acct.access, acct.secret, body))
        assert xml_error(r, 400) == want


def test_authentication_failures(cloud, acct, name):
    with ec2_error("AuthFailure", 401):
        ec2_client(cloud, uuid.uuid4().hex, acct.secret).describe_availability_zones()
    with ec2_error(tuple(BAD_SIGNATURE), BAD_SIGNATURE):
        ec2_client(cloud, acct.access, "not-the-secret").describe_availability_zones()
    with ec2_error(tuple(BAD_SIGNATURE), BAD_SIGNATURE):
        ec2_client(cloud, acct.access, "not-the-secret",
                   signature_version="v2").describe_availability_zones()
    # no signature at all
    r = requests.post(ec2_url(cloud), data="Action=DescribeAvailabilityZones&Version=2016-11-15",
                      headers={"Content-Type": FORM}, timeout=30)
    assert r.status_code in (400, 401, 403), r.text
    assert xml_error(r, r.status_code) in ("AuthFailure", "MissingAuthenticationToken",
                                           "MissingParameter")

    # a signed CreateKeyPair whose KeyName is changed on the way: refused, nothing made
    url = ec2_url(cloud)
    signed = f"Action=CreateKeyPair&Version=2016-11-15&KeyName={name}-signed"
    tampered = signed.replace(f"{name}-signed", f"{name}-tampered")
    r = requests.post(url, data=tampered, timeout=30,
                      headers=sigv4_headers(url, acct.access, acct.secret, signed))
    assert BAD_SIGNATURE.get(xml_error(r, r.status_code)) == r.status_code, r.text
    params = sigv2_params(acct.access, acct.secret, hostport(cloud), "/ec2/",
                          {"Action": "CreateKeyPair", "Version": "2010-08-31",
                           "KeyName": f"{name}-signed"})
    params["KeyName"] = f"{name}-tampered2"
    r = requests.post(ec2_url(cloud, slash=True), data=params, timeout=30)
    assert BAD_SIGNATURE.get(xml_error(r, r.status_code)) == r.status_code, r.text
    for k in ("signed", "tampered", "tampered2"):
        with ec2_error("InvalidKeyPair.NotFound"):
            acct.ec2.describe_key_pairs(KeyNames=[f"{name}-{k}"])
    assert not {f"{name}-signed", f"{name}-tampered", f"{name}-tampered2"} & nova_keypairs(acct)

    # timestamps: 20 minutes old is expired, 5 minutes old is fine
    now = datetime.datetime.now(datetime.timezone.utc)
    old, recent = now - datetime.timedelta(minutes=20), now - datetime.timedelta(minutes=5)
    client = acct.ec2
    with mock.patch.object(botocore.auth, "get_current_datetime",
                           return_value=old.replace(tzinfo=None)):
        with ec2_error("RequestExpired", 400):
            client.describe_availability_zones()
    with mock.patch.object(botocore.auth, "get_current_datetime",
                           return_value=recent.replace(tzinfo=None)):
        assert client.describe_availability_zones()["AvailabilityZones"]
    params = sigv2_params(acct.access, acct.secret, hostport(cloud), "/ec2/",
                          {"Action": "DescribeAvailabilityZones", "Version": "2010-08-31"}, when=old)
    r = requests.post(ec2_url(cloud, slash=True), data=params, timeout=30)
    assert xml_error(r, 400) == "RequestExpired"


def test_reader_cannot_change_anything(cloud, acct, booted, public_image, name):
    reader = new_user(cloud, acct.cloud_name, f"{name}-reader", "reader")
    ec2 = reader.ec2
    assert reader.account == acct.account
    assert booted.id in [i["InstanceId"] for i in instances(ec2)]
    with ec2_error("UnauthorizedOperation", 403):
        launch(ec2, ami(ec2, public_image), name)
    with ec2_error("UnauthorizedOperation", 403):
        ec2.stop_instances(InstanceIds=[booted.id])
    with ec2_error("UnauthorizedOperation", 403):
        ec2.terminate_instances(InstanceIds=[booted.id])
    assert by_tag(acct.ec2, MARK, name) == [] and acct.nova_count(name) == 0
    assert_state(instances(acct.ec2, InstanceIds=[booted.id])[0], "running")


def test_other_projects_instances_do_not_exist(acct, other, booted, name):
    ec2 = other.ec2
    assert other.account != acct.account
    assert booted.id not in [i["InstanceId"] for i in instances(ec2)]
    with ec2_error("InvalidInstanceID.NotFound"):
        ec2.describe_instances(InstanceIds=[booted.id])
    with ec2_error("InvalidInstanceID.NotFound"):
        ec2.stop_instances(InstanceIds=[booted.id])
    with ec2_error("InvalidInstanceID.NotFound"):
        ec2.terminate_instances(InstanceIds=[booted.id])
    with ec2_error("InvalidInstanceID.NotFound"):
        ec2.create_tags(Resources=[booted.id], Tags=[{"Key": name, "Value": "x"}])
    with ec2_error("InvalidGroup.NotFound"):
        ec2.describe_security_groups(GroupIds=[booted.sg])
    with ec2_error("InvalidKeyPair.NotFound"):
        ec2.describe_key_pairs(KeyNames=[booted.key["KeyName"]])
    # nothing happened to it
    i = instances(acct.ec2, InstanceIds=[booted.id])[0]
    assert_state(i, "running")
    assert name not in [t["Key"] for t in i["Tags"]]
    assert acct.nova_server(booted.marker).status == "ACTIVE"
    # they have a default VPC of their own account (the same vpc- id as ours when both
    # projects' default is one shared Neutron network: one OpenStack object, one id)
    theirs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    assert len(theirs) == 1 and theirs[0]["OwnerId"] == other.account, theirs


# --- SigV2 clients and awscli -----------------------------------------------------------------

def test_sigv2_clients(cloud, acct):
    # boto3 with SigV2 (HmacSHA256 over host:port)
    v2 = acct.client(signature_version="v2")
    assert ZONE in [z["ZoneName"] for z in v2.describe_availability_zones()["AvailabilityZones"]]
    assert isinstance(v2.describe_instances()["Reservations"], list)

    # by hand: HmacSHA1 POST to /ec2/ and HmacSHA256 GET on /ec2, Version 2010-08-31
    ns = "{http://ec2.amazonaws.com/doc/2010-08-31/}"
    call = {"Action": "DescribeAvailabilityZones", "Version": "2010-08-31"}
    posted = requests.post(ec2_url(cloud, slash=True), timeout=30, data=sigv2_params(
        acct.access, acct.secret, hostport(cloud), "/ec2/", call))
    got = requests.get(ec2_url(cloud), timeout=30, params=sigv2_params(
        acct.access, acct.secret, hostport(cloud), "/ec2", call, method="GET", algo="HmacSHA256"))
    for r in (posted, got):
        assert r.status_code == 200, r.text
        assert r.headers.get("Date")
        root = ET.fromstring(r.content)
        assert root.tag == f"{ns}DescribeAvailabilityZonesResponse", r.text
        assert root.find(f"{ns}requestId") is not None and root.find(f"{ns}requestId").text, r.text
        zones = {item.find(f"{ns}zoneName").text: item.find(f"{ns}zoneState").text
                 for item in root.find(f"{ns}availabilityZoneInfo").findall(f"{ns}item")}
        assert zones.get(ZONE) == "available", r.text

    # boto 2.34: SigV2 HmacSHA256, Version 2014-05-01, the host signed without its port
    import boto.ec2.connection
    from boto.regioninfo import RegionInfo

    port = int(cloud.base.rsplit(":", 1)[1])
    conn = boto.ec2.connection.EC2Connection(
        acct.access, acct.secret, is_secure=False, port=port, path="/ec2/",
        region=RegionInfo(name=REGION, endpoint="127.0.0.1"))
    zones = conn.get_all_zones()
    assert [(z.name, z.state) for z in zones if z.name == ZONE] == [(ZONE, "available")]
    assert REGION in [r.name for r in conn.get_all_regions()]
    bad = boto.ec2.connection.EC2Connection(
        acct.access, "not-the-secret", is_secure=False, port=port, path="/ec2/",
        region=RegionInfo(name=REGION, endpoint="127.0.0.1"))
    with pytest.raises(boto.exception.EC2ResponseError) as info:
        bad.get_all_zones()
    assert info.value.error_code in ("AuthFailure", "SignatureDoesNotMatch"), info.value


@pytest.mark.timeout(300)
def test_awscli(cloud, acct, public_image, name, tmp_path, reaper):
    env = clean_env({"AWS_ACCESS_KEY_ID": acct.access, "AWS_SECRET_ACCESS_KEY": acct.secret,
                     "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": ec2_url(cloud),
                     "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path)})

    def aws(*args):
        p = subprocess.run([str(VENV_BIN / "aws"), *args, "--output", "json"], env=env,
                           capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
        assert p.returncode == 0, f"aws {' '.join(args)}: {p.returncode}\n{p.stderr}\n{p.stdout}"
        return json.loads(p.stdout) if p.stdout.strip() else None

    zones = aws("ec2", "describe-availability-zones")["AvailabilityZones"]
    assert [(z["ZoneName"], z["State"]) for z in zones if z["ZoneName"] == ZONE] == [(ZONE, "available")]
    me = aws("sts", "get-caller-identity")
    assert me["Account"] == acct.account and me["Arn"].endswith(f":user/{acct.username}")

    image = ami(acct.ec2, public_image)
    run = aws("ec2", "run-instances", "--image-id", image, "--instance-type", FLAVOR,
              "--user-data", f"hello {name}", "--tag-specifications",
              f"ResourceType=instance,Tags=[{{Key={MARK},Value={name}}}]")
    iid = run["Instances"][0]["InstanceId"]
    reaper(acct.ec2, [iid])
    assert_id("i", iid)
    wait(acct.ec2, "instance_running", InstanceIds=[iid])
    aws("ec2", "wait", "instance-running", "--instance-ids", iid)
    listed = aws("ec2", "describe-instances")
    mine = [i for r in listed["Reservations"] for i in r["Instances"] if i["InstanceId"] == iid]
    assert len(mine) == 1 and mine[0]["State"] == {"Code": 16, "Name": "running"}, listed
    ud = aws("ec2", "describe-instance-attribute", "--instance-id", iid, "--attribute", "userData")
    assert base64.b64decode(ud["UserData"]["Value"]).decode() == f"hello {name}"

    gone = aws("ec2", "terminate-instances", "--instance-ids", iid)["TerminatingInstances"]
    assert [g["InstanceId"] for g in gone] == [iid]
    wait(acct.ec2, "instance_terminated", InstanceIds=[iid])
    aws("ec2", "wait", "instance-terminated", "--instance-ids", iid)
    shown = aws("ec2", "describe-instances", "--instance-ids", iid)
    assert shown["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
