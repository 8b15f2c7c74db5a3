"""Ansible's amazon.aws collection (bundled by PyPI `ansible`, run from this virtualenv's
ansible-playbook with its boto3/botocore) against the EC2 Query API at {base}/ec2.

Playbooks written into the test's tmp dir run on localhost (connection local, no facts),
with the endpoint and a member user's EC2 credential (from `openstack ec2 credentials
create`) as module defaults of the `group/amazon.aws.aws` action group, and an environment
with a HOME and ANSIBLE_* of their own, so that no user or machine configuration leaks in.
The `ansible.posix.json` stdout callback gives each task's result, which is checked here
(changed flags, instance ids, states) and cross-checked with boto3 and the openstack CLI.
Ansible reaches the cloud through a recording loopback proxy (`Recorder`), so that the test
knows which API calls each task made and what ferrostack answered (amazon.aws's own
`resource_actions` only parse https:// AWS endpoints): they are written to
ec2-calls.log in the test's tmp dir and shown when an assertion fails.

What this covers of the collection's call sequences (see reference/ec2-clients.md §2):
- ec2_key: DescribeKeyPairs by name, CreateKeyPair; for imported keys ImportKeyPair under a
  temporary name to compare KeyFingerprint, so a second run must report changed=false.
- ec2_instance: DescribeVpcs(isDefault) + DescribeSubnets(default-for-az) for the default
  subnet, DescribeInstances by tag:Name/image-id/subnet-id/instance-state-name (its
  idempotency), RunInstances, the instance_exists and instance_running waiters,
  DescribeInstanceStatus, DescribeInstanceAttribute instanceType, DescribeTags; `absent`:
  TerminateInstances and the instance_terminated waiter.
- ec2_instance_info: DescribeInstances with a tag filter.

Runs on SQLite only: a cloud of its own (`_cloud("sqlite", ...)`, as test_consoles.py),
with the fake hypervisor driver."""

import datetime
import html
import http.client
import http.server
import json
import os
import re
import shlex
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from conftest import VENV_BIN, _cloud, clean_env, column
from test_ec2 import FLAVOR, MARK, REGION, ami, ec2_url, instances, new_account, upload_image

ANSIBLE_PLAYBOOK = str(VENV_BIN / "ansible-playbook")
PLAYBOOK_TIMEOUT = 120
# the error answers the modules expect and handle: ec2_key looks a key pair up by name
# before it creates one; aws_caller_info asks IAM for the account alias and does without
EXPECTED_ERRORS = {"ec2:DescribeKeyPairs": {"InvalidKeyPair.NotFound"}, "iam:ListAccountAliases": None}


# --- the cloud and the account ----------------------------------------------------------------

@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """A cloud of this module's own, on SQLite (named `cloud` so that conftest prints its
    log when a test fails)."""
    yield from _cloud("sqlite", tmp_path_factory)


@pytest.fixture(scope="module")
def acct(cloud):
    return new_account(cloud, f"ans-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def image_name(cloud, tmp_path_factory):
    name = f"ans-public-{uuid.uuid4().hex[:8]}"
    upload_image(cloud, tmp_path_factory.mktemp("img"), name, public=True)
    return name


# --- a recording proxy between Ansible and the cloud ----------------------------------------------

class Call:
    def __init__(self, service, action, status, code, message):
        self.service, self.action, self.status = service, action, status
        self.code, self.message = code, message
        self.at = datetime.datetime.now(datetime.timezone.utc)
        self.task = None

    @property
    def name(self):
        return f"{self.service}:{self.action}"

    def __str__(self):
        err = f" {self.code}: {self.message}" if self.code else ""
        return f"{self.at:%H:%M:%S.%f} [{self.task}] {self.name} -> {self.status}{err}"


class Recorder:
    """A loopback HTTP proxy in front of the cloud: forwards each request unchanged (the
    Host header too, which SigV4 signs) and records the service (from the signature's
    scope), the Action, the HTTP status and, for errors, the error code and message."""

    def __init__(self, upstream):
        up = urllib.parse.urlsplit(upstream)
        self.calls = []
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body or None,
                                 headers={k: v for k, v in self.headers.items()})
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                rec.record(self.path, self.headers, body, resp.status, data)
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{up.path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, path, headers, body, status, data):
        query = urllib.parse.urlsplit(path).query
        params = dict(urllib.parse.parse_qsl(query))
        if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            params.update(urllib.parse.parse_qsl(body.decode(errors="replace")))
        scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
        code = message = None
        if status >= 300:
            text = data.decode(errors="replace")
            code = (re.search(r"<Code>(.*?)</Code>", text) or [None, text[:200]])[1]
            message = html.unescape((re.search(r"<Message>(.*?)</Message>", text, re.S) or [None, ""])[1])
        with self.lock:
            self.calls.append(Call(scope.group(1) if scope else "?", params.get("Action", "?"),
                                   status, code, message))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- running ansible-playbook ---------------------------------------------------------------------

class Playbook:
    """Writes playbooks into `tmp` and runs them with ansible-playbook, isolated from any
    user or machine configuration; every amazon.aws module gets the endpoint and the
    credential as module defaults."""

    def __init__(self, tmp, recorder, acct):
        if not os.access(ANSIBLE_PLAYBOOK, os.X_OK):
            pytest.fail(f"no {ANSIBLE_PLAYBOOK}: install tests/conformance/requirements.txt")
        self.tmp = tmp
        self.recorder = recorder
        self.home = tmp / "home"
        self.home.mkdir()
        (tmp / "collections").mkdir()
        # ANSIBLE_CONFIG names a file that exists, or ansible would go on looking for
        # ./ansible.cfg, ~/.ansible.cfg and /etc/ansible/ansible.cfg
        self.config = tmp / "ansible.cfg"
        self.config.write_text("[defaults]\n")
        self.inventory = tmp / "inventory.ini"
        self.inventory.write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={VENV_BIN / 'python'}\n")
        self.aws = {"endpoint_url": recorder.url, "access_key": acct.access,
                    "secret_key": acct.secret, "region": REGION}
        self.runs = 0

    def env(self):
        env = {k: v for k, v in clean_env().items() if not k.startswith("ANSIBLE_")}
        env.update({
            "HOME": str(self.home),
            "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",  # ansible-core refuses non-UTF-8 locales
            "ANSIBLE_CONFIG": str(self.config),
            "ANSIBLE_COLLECTIONS_PATH": str(self.tmp / "collections"),  # only the bundled ones
            "ANSIBLE_LOCAL_TEMP": str(self.tmp / "ansible-tmp"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(self.home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "no-aws-credentials"),
        })
        return env

    def run(self, tasks):
        """Runs one play of `tasks` (each with a unique `name`); returns {task name: the
        result on localhost, with "_calls": the API calls it made, e.g. "ec2:RunInstances"}.
        The playbook must succeed."""
        self.runs += 1
        first_call = len(self.recorder.calls)
        play = [{"name": f"ferrostack ec2 {self.runs}", "hosts": "localhost", "gather_facts": False,
                 "module_defaults": {"group/amazon.aws.aws": self.aws}, "tasks": tasks}]
        path = self.tmp / f"playbook{self.runs}.yml"
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        argv = [ANSIBLE_PLAYBOOK, "-i", str(self.inventory), str(path)]
        start = time.monotonic()
        p = subprocess.run(argv, env=self.env(), cwd=str(self.tmp), capture_output=True, text=True,
                           timeout=PLAYBOOK_TIMEOUT, stdin=subprocess.DEVNULL)
        took = time.monotonic() - start
        (self.tmp / f"playbook{self.runs}.out.json").write_text(p.stdout)
        calls = self.recorder.calls[first_call:]
        try:
            out = json.loads(p.stdout)
        except ValueError:
            raise AssertionError(f"`{shlex.join(argv)}` exited {p.returncode} without JSON output:\n"
                                 f"--- stdout:\n{p.stdout[-5000:]}\n--- stderr:\n{p.stderr[-5000:]}"
                                 f"\n--- API calls:\n" + "\n".join(map(str, calls)))
        results = {}
        for t in out["plays"][0]["tasks"]:
            name, when = t["task"]["name"], t["task"]["duration"]
            start_at, end_at = (datetime.datetime.fromisoformat(when[k].replace("Z", "+00:00"))
                                for k in ("start", "end"))
            for c in calls:
                if start_at <= c.at <= end_at:
                    c.task = name
            results[name] = t["hosts"].get("localhost", {})
            results[name]["_calls"] = [c.name for c in calls if c.task == name]
        with open(self.tmp / "ec2-calls.log", "a") as log:
            log.write(f"# playbook{self.runs}.yml\n" + "".join(f"{c}\n" for c in calls))
        all_calls = "\n--- API calls:\n" + "\n".join(map(str, calls))
        failed = {k: v for k, v in results.items() if v.get("failed") or v.get("unreachable")}
        assert p.returncode == 0 and not failed, (
            f"ansible-playbook exited {p.returncode} after {took:.1f}s; failed tasks:\n"
            + json.dumps(failed, indent=1, default=str)[:12000] + f"\n--- stderr:\n{p.stderr[-3000:]}"
            + all_calls)
        stats = out["stats"]["localhost"]
        assert stats["failures"] == 0 and stats["unreachable"] == 0, stats
        # a waiter that gives up (e.g. instance_terminated on an error answer) is only a
        # warning to ec2_instance: none is allowed
        warned = {k: v["warnings"] for k, v in results.items() if v.get("warnings")}
        assert not warned, f"warnings: {warned}{all_calls}"
        unexpected = [c for c in calls if c.status >= 500 or (
            c.status >= 300 and c.name not in EXPECTED_ERRORS)
            or (c.status >= 300 and EXPECTED_ERRORS.get(c.name) and c.code not in EXPECTED_ERRORS[c.name])]
        assert not unexpected, "unexpected error answers:\n" + "\n".join(map(str, unexpected)) + all_calls
        return results


@pytest.fixture
def recorder(cloud):
    r = Recorder(ec2_url(cloud))
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def playbook(tmp_path, recorder, acct):
    return Playbook(tmp_path, recorder, acct)


def calls(result):
    """The API calls a task made, e.g. ["ec2:DescribeInstances", ...]."""
    return result["_calls"]


# --- the test -------------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_ansible_key_pair_and_instance_lifecycle(cloud, acct, image_name, playbook):
    ec2 = acct.ec2
    image = ami(ec2, image_name)
    name = f"ans-{uuid.uuid4().hex[:10]}"
    key_name, imported_name = f"{name}-key", f"{name}-imported"
    pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + f" {name}"

    instance = {"state": "running", "image_id": image, "instance_type": FLAVOR, "key_name": key_name,
                "tags": {"Name": name, MARK: name}, "wait": True, "wait_timeout": 60}
    info = {"filters": {"tag:Name": name, "instance-state-name": ["pending", "running"]}}
    tasks = [
        {"name": "caller", "amazon.aws.aws_caller_info": {}},
        {"name": "key", "amazon.aws.ec2_key": {"name": key_name}},
        {"name": "key again", "amazon.aws.ec2_key": {"name": key_name}},
        {"name": "import", "amazon.aws.ec2_key": {"name": imported_name, "key_material": pub}},
        {"name": "import again", "amazon.aws.ec2_key": {"name": imported_name, "key_material": pub}},
        {"name": "launch", "amazon.aws.ec2_instance": instance},
        {"name": "launch again", "amazon.aws.ec2_instance": instance},
        {"name": "info", "amazon.aws.ec2_instance_info": info},
    ]
    r = playbook.run(tasks)

    # who Ansible is: the member's project as an account
    assert r["caller"]["account"] == acct.account, r["caller"]
    assert r["caller"]["arn"] == f"arn:aws:iam::{acct.account}:user/{acct.username}", r["caller"]

    # ec2_key: created once, then found (changed=false), same id and fingerprint
    key, again = r["key"], r["key again"]
    assert key["changed"] is True and again["changed"] is False, (key, again)
    assert key["key"]["name"] == again["key"]["name"] == key_name
    assert key["key"]["private_key"].startswith("-----BEGIN"), key["key"].keys()
    assert key["key"]["fingerprint"] == again["key"]["fingerprint"]
    assert key["key"]["id"] == again["key"]["id"] and key["key"]["id"].startswith("key-"), (key, again)
    assert again["key"]["type"] == "rsa", again["key"]
    assert "ec2:CreateKeyPair" in calls(key) and "ec2:CreateKeyPair" not in calls(again), calls(again)
    ec2_keys = {k["KeyName"]: k for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert ec2_keys[key_name]["KeyFingerprint"] == key["key"]["fingerprint"]
    nova_keys = set(column(acct.openstack("keypair", "list"), "name"))
    assert key_name in nova_keys, nova_keys
    # an imported key: the second run imports it under a temporary name to compare
    # fingerprints (unchanged), and deletes the temporary key again
    imp, imp2 = r["import"], r["import again"]
    assert imp["changed"] is True and imp2["changed"] is False, (imp, imp2)
    assert imp["key"]["fingerprint"] == imp2["key"]["fingerprint"]
    assert imp2["key"]["type"] == "ed25519", imp2["key"]
    assert "ec2:ImportKeyPair" in calls(imp2) and "ec2:DeleteKeyPair" in calls(imp2), calls(imp2)
    left = set(column(acct.openstack("keypair", "list"), "name"))
    assert imported_name in left and not any(k.startswith("ansible-") for k in left), left

    # ec2_instance: launched once; the second run finds it by its tags/filters
    launch, again = r["launch"], r["launch again"]
    assert launch["changed"] is True, launch
    assert "ec2:RunInstances" in calls(launch), calls(launch)
    iids = launch["instance_ids"]
    assert len(iids) == 1 and iids[0].startswith("i-"), launch
    iid = iids[0]
    assert again["changed"] is False, again
    assert "ec2:RunInstances" not in calls(again), calls(again)
    assert again["instance_ids"] == [iid], again
    for res in (launch, again):
        (inst,) = res["instances"]
        assert inst["instance_id"] == iid and inst["state"]["name"] == "running", inst
        assert inst["image_id"] == image and inst["instance_type"] == FLAVOR, inst
        assert inst["key_name"] == key_name and inst["tags"]["Name"] == name, inst

    # ec2_instance_info finds it by tag
    found = r["info"]["instances"]
    assert [i["instance_id"] for i in found] == [iid], found
    assert found[0]["state"]["name"] == "running" and found[0]["tags"][MARK] == name, found[0]

    # the same on the EC2 and Nova sides
    (live,) = instances(ec2, Filters=[{"Name": "tag:Name", "Values": [name]}])
    assert live["InstanceId"] == iid and live["State"]["Name"] == "running", live
    servers = [s for s in acct.openstack("server", "list", "--long")
               if s.get("Properties", {}).get(MARK) == name]
    assert len(servers) == 1 and servers[0]["Status"] == "ACTIVE", servers
    shown = acct.openstack("server", "show", servers[0]["ID"])
    assert shown["key_name"] == key_name and FLAVOR in str(shown["flavor"]), shown

    # absent: terminated (and waited for); then nothing left to do
    gone = {"state": "absent", "image_id": image, "tags": {"Name": name, MARK: name},
            "wait": True, "wait_timeout": 60}
    r = playbook.run([
        {"name": "terminate", "amazon.aws.ec2_instance": gone},
        {"name": "terminate again", "amazon.aws.ec2_instance": gone},
        {"name": "info after", "amazon.aws.ec2_instance_info": info},
        {"name": "key absent", "amazon.aws.ec2_key": {"name": key_name, "state": "absent"}},
        {"name": "key absent again", "amazon.aws.ec2_key": {"name": key_name, "state": "absent"}},
    ])
    term, term2 = r["terminate"], r["terminate again"]
    assert term["changed"] is True and term["terminate_success"] == [iid], term
    assert "ec2:TerminateInstances" in calls(term), calls(term)
    assert [i["state"]["name"] for i in term["instances"]] == ["terminated"], term["instances"]
    assert term2["changed"] is False, term2
    assert "ec2:TerminateInstances" not in calls(term2), calls(term2)
    assert r["info after"]["instances"] == [], r["info after"]
    assert r["key absent"]["changed"] is True and r["key absent again"]["changed"] is False, r
    (dead,) = instances(ec2, InstanceIds=[iid])
    assert dead["State"]["Name"] == "terminated", dead
    deadline = time.monotonic() + 30
    while [s for s in acct.openstack("server", "list", "--long")
           if s.get("Properties", {}).get(MARK) == name]:
        assert time.monotonic() < deadline, f"Nova still lists the server of {iid}"
        time.sleep(0.5)
    assert key_name not in set(column(acct.openstack("keypair", "list"), "name"))
