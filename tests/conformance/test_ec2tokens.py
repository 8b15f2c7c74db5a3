"""POST /v3/ec2tokens and /v2.0/ec2tokens with requests signed by real AWS clients
(boto3, awscli, botocore's signers), forwarded the way an EC2 front end (openstack/ec2-api)
forwards them to Keystone: see ec2front.py."""

import datetime
import hashlib
import subprocess
import time
import types
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV2Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import VENV_BIN, clean_env, field
from ec2front import Captured, Ec2FrontEnd

BODY = "Action=DescribeRegions&Version=2016-11-15"


@pytest.fixture
def ec2(cloud):
    """An EC2 credential of the admin, from `openstack ec2 credentials create`."""
    c = cloud.openstack("ec2", "credentials", "create")
    return types.SimpleNamespace(access=field(c, "access"), secret=field(c, "secret"),
                                 project_id=field(c, "project_id"), user_id=field(c, "user_id"))


def boto3_request(access, secret, signature_version="v4"):
    """DescribeRegions from boto3's EC2 client, as the front end received it."""
    with Ec2FrontEnd("/ec2/") as front:
        client = boto3.client("ec2", endpoint_url=front.url, region_name="RegionOne",
                              aws_access_key_id=access, aws_secret_access_key=secret,
                              config=Config(signature_version=signature_version,
                                            retries={"max_attempts": 1}))
        client.describe_regions()
        return front.last()


def botocore_signed(access, secret, version, url, now=None):
    """A POST signed by botocore's SigV2Auth/SigV4Auth (optionally at another time), as
    the front end would receive it."""
    if version == 4:
        req = AWSRequest(method="POST", url=url, data=BODY,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        signer = SigV4Auth(Credentials(access, secret), "ec2", "RegionOne")
        if now is None:
            signer.add_auth(req)
        else:
            with mock.patch.object(botocore.auth, "get_current_datetime",
                                   return_value=now.replace(tzinfo=None)):
                signer.add_auth(req)
        headers = dict(req.headers.items())
        body = BODY.encode()
    else:
        req = AWSRequest(method="POST", url=url,
                         data={"Action": "DescribeRegions", "Version": "2016-11-15"})
        clock = time if now is None else types.SimpleNamespace(
            strftime=time.strftime, gmtime=lambda *a: now.timetuple())
        with mock.patch.object(botocore.auth, "time", clock):
            SigV2Auth(Credentials(access, secret)).add_auth(req)
        prepared = req.prepare()
        headers = dict(prepared.headers.items())
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    host = url.split("//", 1)[1].split("/", 1)[0]
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    return Captured("POST", path, {"Host": host, **headers}, body)


def post(cloud, body, token=True, version="v3"):
    headers = {"Content-Type": "application/json"}
    if token is True:
        headers["X-Auth-Token"] = cloud.admin_token
    elif token:
        headers["X-Auth-Token"] = token
    return cloud.http.post(f"{cloud.identity}/{version}/ec2tokens", json=body, headers=headers)


def assert_project_token(cloud, r, ec2):
    assert r.status_code == 200, r.text
    token_id = r.headers["X-Subject-Token"]
    tok = r.json()["token"]
    assert tok["project"]["id"] == ec2.project_id
    assert tok["user"]["id"] == ec2.user_id
    assert "ec2credential" in tok["methods"]
    assert {"admin", "member", "reader"} <= {role["name"] for role in tok["roles"]}
    assert any(s["type"] == "identity" for s in tok["catalog"])
    assert cloud.validate(token_id).status_code == 200
    # the token works against the API
    me = cloud.http.get(f"{cloud.auth_url}/projects/{ec2.project_id}", headers={"X-Auth-Token": token_id})
    assert me.status_code == 200, me.text


def test_boto3_sigv4_request_gets_a_project_token(cloud, ec2):
    req = boto3_request(ec2.access, ec2.secret)
    assert req.headers["Authorization"].startswith("AWS4-HMAC-SHA256 ")
    creds = req.keystone_credentials()
    assert creds["params"] == {} and ":" in creds["host"]
    for key in ("ec2Credentials", "credentials"):  # ec2-api's key, and Keystone's own
        assert_project_token(cloud, post(cloud, {key: creds}), ec2)


def test_boto3_sigv2_request_gets_a_project_token(cloud, ec2):
    req = boto3_request(ec2.access, ec2.secret, signature_version="v2")
    creds = req.keystone_credentials()
    assert creds["params"]["SignatureVersion"] == "2" and "Signature" not in creds["params"]
    assert_project_token(cloud, post(cloud, {"ec2Credentials": creds}), ec2)


def test_botocore_signers_v2_v4_and_a_host_signed_without_port(cloud, ec2):
    for version in (2, 4):
        creds = botocore_signed(ec2.access, ec2.secret, version, f"{cloud.base}/ec2/").keystone_credentials()
        assert_project_token(cloud, post(cloud, {"credentials": creds}), ec2)
    # A client that signed over the host name alone, reaching us on a port: accepted.
    port = cloud.base.rsplit(":", 1)[1]
    creds = botocore_signed(ec2.access, ec2.secret, 2, "http://127.0.0.1/ec2/").keystone_credentials()
    creds["host"] = f"127.0.0.1:{port}"
    assert_project_token(cloud, post(cloud, {"credentials": creds}), ec2)


def test_classic_middleware_body_without_headers_and_body_hash(cloud, ec2):
    """keystonemiddleware's old ec2_token / Nova's EC2 API sent V2 fields only."""
    creds = boto3_request(ec2.access, ec2.secret, "v2").keystone_credentials()
    old = {k: creds[k] for k in ("access", "signature", "host", "verb", "path", "params")}
    assert_project_token(cloud, post(cloud, {"ec2Credentials": old}), ec2)
    r = post(cloud, {"ec2Credentials": old}, version="v2.0")
    assert r.status_code == 200, r.text


def test_awscli_with_ec2rc_credentials(cloud):
    rc = dict(line.split("=", 1) for line in subprocess.run(
        ["bash", "-c", '. "$1"; env | grep -E "^(AWS|EC2)_"', "bash", str(cloud.state / "ec2rc.sh")],
        capture_output=True, text=True, check=True).stdout.splitlines())
    with Ec2FrontEnd("/ec2/") as front:
        env = clean_env({"AWS_ACCESS_KEY_ID": rc["AWS_ACCESS_KEY_ID"], "HOME": str(cloud.tmp),
                         "AWS_SECRET_ACCESS_KEY": rc["AWS_SECRET_ACCESS_KEY"],
                         "AWS_DEFAULT_REGION": "RegionOne", "AWS_CONFIG_FILE": "/dev/null",
                         "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
        p = subprocess.run([str(VENV_BIN / "aws"), "--endpoint-url", front.url, "ec2",
                            "describe-regions"], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        creds = front.last().keystone_credentials()
    r = post(cloud, {"ec2Credentials": creds})
    assert r.status_code == 200, r.text
    assert r.json()["token"]["project"]["name"] == "admin"


def test_wrong_secret_or_tampered_request_is_401(cloud, ec2):
    for version in (2, 4):
        bad = botocore_signed(ec2.access, "not-the-secret", version, f"{cloud.base}/ec2/")
        r = post(cloud, {"credentials": bad.keystone_credentials()})
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == 401
    tampered = boto3_request(ec2.access, ec2.secret).keystone_credentials()
    tampered["body_hash"] = hashlib.sha256(b"Action=TerminateInstances&Version=2016-11-15").hexdigest()
    assert post(cloud, {"credentials": tampered}).status_code == 401
    tampered = boto3_request(ec2.access, ec2.secret, "v2").keystone_credentials()
    tampered["params"]["Action"] = "TerminateInstances"
    assert post(cloud, {"credentials": tampered}).status_code == 401


def test_stale_signatures_are_refused(cloud, ec2):
    """[credential] auth_ttl, 15 minutes by default, bounds the request's timestamp."""
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    for version in (2, 4):
        creds = botocore_signed(ec2.access, ec2.secret, version, f"{cloud.base}/ec2/", now=old)
        r = post(cloud, {"credentials": creds.keystone_credentials()})
        assert r.status_code == 401, (version, r.text)
    recent = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    creds = botocore_signed(ec2.access, ec2.secret, 4, f"{cloud.base}/ec2/", now=recent)
    assert post(cloud, {"credentials": creds.keystone_credentials()}).status_code == 200


def test_caller_must_be_an_authenticated_admin_or_service(cloud, ec2, member):
    creds = boto3_request(ec2.access, ec2.secret).keystone_credentials()
    r = post(cloud, {"credentials": creds}, token=None)
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")
    member_tok, _ = cloud.password_token(member["name"], member["password"], member["name"])
    assert post(cloud, {"credentials": creds}, token=member_tok).status_code == 403


def test_unknown_access_key_and_bad_bodies(cloud, ec2):
    creds = boto3_request("0" * 32, ec2.secret).keystone_credentials()
    r = post(cloud, {"credentials": creds})
    assert r.status_code in (401, 404), r.text
    assert post(cloud, {}).status_code == 400
    assert post(cloud, {"credentials": {"access": ec2.access}}).status_code in (400, 401)
    r = cloud.http.get(f"{cloud.auth_url}/ec2tokens", headers={"X-Auth-Token": cloud.admin_token})
    assert r.status_code == 405


def test_v2_0_ec2tokens_answers_in_the_v2_access_shape(cloud, ec2):
    creds = boto3_request(ec2.access, ec2.secret, "v2").keystone_credentials()
    r = post(cloud, {"ec2Credentials": creds}, version="v2.0")
    assert r.status_code == 200, r.text
    access = r.json()["access"]
    assert access["token"]["id"] and access["token"]["expires"]
    assert access["token"]["tenant"]["id"] == ec2.project_id
    assert access["user"]["id"] == ec2.user_id
    assert {"admin", "member", "reader"} <= {role["name"] for role in access["user"]["roles"]}
    identity = [s for s in access["serviceCatalog"] if s["type"] == "identity"]
    assert identity and identity[0]["endpoints"][0]["publicURL"].startswith(cloud.base)
    # the token it carries is a working token
    assert cloud.validate(access["token"]["id"]).status_code == 200
    v4 = boto3_request(ec2.access, ec2.secret).keystone_credentials()
    assert post(cloud, {"ec2Credentials": v4}, version="v2.0").status_code == 200
