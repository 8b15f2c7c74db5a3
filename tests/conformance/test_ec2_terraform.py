"""The Terraform AWS provider's calls for one `aws_instance`, replayed with a strict SDK.

Terraform cannot run here (its provider comes from a registry this machine does not
reach), so tests/conformance/jssdk/terraform_replay.mjs makes the provider's calls in the
provider's order with the AWS SDK for JavaScript v3, whose deserializers are generated
from the same Smithy models as aws-sdk-go-v2 (the provider's SDK): a mis-named element
there is an `undefined` field, which the script checks for after every call (the fields
the provider dereferences, by name and type; and, for whole answers, that every leaf
element of the XML shows up in the parsed output). The three phases are three processes,
as `terraform apply`, `terraform plan` and `terraform destroy` would be, each configuring
the provider (sts:GetCallerIdentity) anew; plan and destroy refresh the instance and must
find it as apply stored it (no diff).

The SDK is the one pinned in tests/conformance/jssdk/package-lock.json, installed by
scripts/jssdk outside the repository (npm ci, cached by the lock's hash). Without node/npm
the test skips, or fails under FERROSTACK_REQUIRE_HOST_TOOLS=1 (as scripts/test sets).
What the calls did is checked on the OpenStack side with the openstack CLI as the same
user."""

import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, _cloud, clean_env, field
from test_ec2 import FLAVOR, MARK, REGION, ami, ec2_url, flavor, new_account, upload_image

pytestmark = pytest.mark.timeout(600)

JSSDK = ROOT / "scripts" / "jssdk"
INSTALL_TIMEOUT = 300  # npm ci of ~26 packages, first run only
PHASE_TIMEOUT = 240  # each phase polls for at most 180 s


def need_node():
    missing = [t for t in ("node", "npm") if shutil.which(t) is None]
    if not missing:
        major = subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        if not major.isdigit() or int(major) < 20:
            missing = [f"node >= 20 (found {major or 'none'})"]
    if missing:
        msg = f"{' and '.join(missing)} missing: the JS SDK replay needs node >= 20 and npm"
        if os.environ.get("FERROSTACK_REQUIRE_HOST_TOOLS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module", params=["sqlite"])
def cloud(request, tmp_path_factory):
    """One server on SQLite for this module (the replay is about the wire, not the
    database); a parameter all the same, so that test ids say [sqlite] like the other
    modules' (`scripts/test -k 'ec2 and sqlite'`)."""
    yield from _cloud(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def sdk_dir():
    """The cached directory with the pinned SDK and the replay script."""
    need_node()
    p = subprocess.run([str(JSSDK)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                       env=clean_env())
    assert p.returncode == 0, f"scripts/jssdk exited {p.returncode}:\n{p.stderr}\n{p.stdout}"
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 and os.path.isfile(os.path.join(lines[0], "terraform_replay.mjs")), \
        f"scripts/jssdk printed {p.stdout!r}\n{p.stderr}"
    return lines[0]


def run_replay(cloud, sdk_dir, acct, image_id, phase, state_file=None, extra=None, flags=()):
    """Runs one phase of terraform_replay.mjs as `acct` (`extra`: more environment,
    `flags`: more arguments): the finished process."""
    args = ["node", os.path.join(sdk_dir, "terraform_replay.mjs"), "--phase", phase, *flags]
    if state_file:
        args += ["--state", str(state_file)]
    env = clean_env({"AWS_ACCESS_KEY_ID": acct.access, "AWS_SECRET_ACCESS_KEY": acct.secret,
                     "AWS_REGION": REGION, "FERROSTACK_EC2_ENDPOINT": ec2_url(cloud),
                     "FERROSTACK_EC2_IMAGE": image_id, "FERROSTACK_EC2_TYPE": FLAVOR,
                     # no shared config/credentials files of whoever runs the tests
                     "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                     **(extra or {})})
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=PHASE_TIMEOUT,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        pytest.fail(f"terraform_replay --phase {phase} did not finish within {PHASE_TIMEOUT}s:\n"
                    f"{err or ''}")


def replay(cloud, sdk_dir, acct, image_id, phase, state_file=None):
    """Runs one phase of terraform_replay.mjs as `acct`, which must succeed: its JSON
    summary."""
    p = run_replay(cloud, sdk_dir, acct, image_id, phase, state_file)
    assert p.returncode == 0, (f"terraform_replay --phase {phase} exited {p.returncode}:\n"
                               f"{p.stderr}\n--- stdout:\n{p.stdout}")
    summary = json.loads(p.stdout)
    assert summary["ok"] is True and summary["phase"] == phase, summary
    return summary


def servers_named(acct, name):
    return [s for s in acct.openstack("server", "list", "--name", f"^{re.escape(name)}$")
            if field(s, "name") == name]


def test_terraform_aws_instance_apply_plan_destroy(cloud, sdk_dir, tmp_path):
    acct = new_account(cloud, f"tf-{os.urandom(4).hex()}")
    image_name = f"tf-img-{os.urandom(4).hex()}"
    upload_image(cloud, tmp_path, image_name, cloud_name=acct.cloud_name)
    image_id = ami(acct.ec2, image_name)
    tiny = flavor(cloud, FLAVOR)

    # terraform apply ------------------------------------------------------------------
    applied = replay(cloud, sdk_dir, acct, image_id, "apply")
    assert applied["sdk"] == {"@aws-sdk/client-ec2": locked("@aws-sdk/client-ec2"),
                              "@aws-sdk/client-sts": locked("@aws-sdk/client-sts")}, applied["sdk"]
    assert applied["account"] == acct.account and applied["partition"] == "aws", applied
    assert applied["arn"] == f"arn:aws:iam::{acct.account}:user/{acct.username}", applied
    assert applied["create_states"][-1] == "running", applied["create_states"]
    res, state = applied["resource"], applied["state"]
    iid = applied["instance_id"]
    assert re.fullmatch(r"i-[0-9a-f]{17}", iid), iid
    assert state["instance_state"] == "running" and state["ami"] == image_id, state
    assert state["instance_type"] == FLAVOR, state
    assert state["instance_type_info"]["vcpus"] == tiny["vcpus"], (state, tiny)
    assert state["instance_type_info"]["memory_mib"] == tiny["ram"], (state, tiny)
    assert state["instance_type_info"]["burstable"] is False, state
    assert state["tags"] == {"Name": res["marker"], MARK: res["marker"]}, state
    assert state["user_data"] == hashlib.sha1(res["userData"].encode()).hexdigest(), state
    assert state["disable_api_stop"] is False and state["disable_api_termination"] is False, state
    assert state["vpc_security_group_ids"] == [applied["default_security_group"]], state
    assert [d["device_name"] for d in state["root_block_device"]] == [res["rootDevice"]], state
    calls = applied["calls"]
    for name in ("GetCallerIdentity", "DescribeImages", "RunInstances", "DescribeInstanceTypes",
                 "DescribeTags(launch template)", "DescribeInstanceAttribute(disableApiStop)",
                 "DescribeInstanceAttribute(userData)", "DescribeVolumes"):
        assert name in calls, calls

    # the same instance on the OpenStack side: a running Nova server named by the Name
    # tag, with the tags as metadata and the address the EC2 API gave
    servers = servers_named(acct, res["marker"])
    assert len(servers) == 1, servers
    server = acct.openstack("server", "show", field(servers[0], "id"))
    assert field(server, "status") == "ACTIVE", server
    shown = field(server, "flavor")  # "m1.tiny (id)", or a dict in newer OSC
    if isinstance(shown, dict):
        shown = shown.get("name") or shown.get("original_name") or ""
    assert shown.split(" ")[0] == FLAVOR, server
    assert state["private_ip"] in json.dumps(field(server, "addresses")), (state, server)
    props = field(server, "properties")
    props = props if isinstance(props, dict) else {}
    assert props.get(MARK) == res["marker"], server

    state_file = tmp_path / "terraform.tfstate.json"
    state_file.write_text(json.dumps(applied))

    # terraform plan: nothing to change --------------------------------------------------
    planned = replay(cloud, sdk_dir, acct, image_id, "plan", state_file)
    assert planned["changes"] == 0 and planned["refreshes"] == 1, planned
    assert planned["state"] == state, (planned["state"], state)

    # terraform destroy --------------------------------------------------------------------
    destroyed = replay(cloud, sdk_dir, acct, image_id, "destroy", state_file)
    assert destroyed["final_state"] == "terminated", destroyed
    assert destroyed["delete_states"][-1] == "terminated", destroyed
    for name in ("ModifyInstanceAttribute(DisableApiTermination)",
                 "ModifyInstanceAttribute(DisableApiStop)", "TerminateInstances"):
        assert name in destroyed["calls"], destroyed["calls"]
    assert servers_named(acct, res["marker"]) == [], "the Nova server outlived TerminateInstances"
    # and EC2 still lists it, as terminated (botocore's InstanceTerminated waiter needs that)
    left = acct.ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    assert left[0]["Instances"][0]["State"]["Name"] == "terminated", left


def test_terraform_replay_in_one_process(cloud, sdk_dir, tmp_path):
    """apply, plan and destroy in one process (three refreshes): the summary alone."""
    acct = new_account(cloud, f"tf1-{os.urandom(4).hex()}")
    name = f"tf1-img-{os.urandom(4).hex()}"
    upload_image(cloud, tmp_path, name, cloud_name=acct.cloud_name)
    done = replay(cloud, sdk_dir, acct, ami(acct.ec2, name), "all")
    assert done["refreshes"] == 3 and done["final_state"] == "terminated", done
    assert done["create_states"][-1] == "running", done
    assert done["calls"].count("RunInstances") == 1, done["calls"]


def test_terraform_volume_tags(cloud, sdk_dir, tmp_path):
    """volume_tags: RunInstances' TagSpecification for `volume` lands on the root volume
    (DescribeVolumes' tagSet), so a refresh shows no change."""
    acct = new_account(cloud, f"tf3-{os.urandom(4).hex()}")
    name = f"tf3-img-{os.urandom(4).hex()}"
    upload_image(cloud, tmp_path, name, cloud_name=acct.cloud_name)
    p = run_replay(cloud, sdk_dir, acct, ami(acct.ec2, name), "all",
                   flags=["--volume-tags", '{"tier": "data"}'])
    assert p.returncode == 0, f"{p.stderr}\n--- stdout:\n{p.stdout}"


# What ferrostack's root disks cannot be (another size than the flavor's, kept after the
# instance): RunInstances refuses with InvalidBlockDeviceMapping instead of silently
# booting something else (which would show as a diff on every `terraform plan`).
@pytest.mark.parametrize("hcl", [
    pytest.param(["--root-volume-size", "2"], id="root_block_device.volume_size"),
    pytest.param(["--root-delete-on-termination", "false"], id="root_block_device.delete_on_termination"),
])
def test_terraform_root_block_device_is_refused_not_ignored(cloud, sdk_dir, tmp_path, hcl):
    acct = new_account(cloud, f"tf3-{os.urandom(4).hex()}")
    name = f"tf3-img-{os.urandom(4).hex()}"
    upload_image(cloud, tmp_path, name, cloud_name=acct.cloud_name)
    p = run_replay(cloud, sdk_dir, acct, ami(acct.ec2, name), "all", flags=hcl)
    assert p.returncode != 0, p.stdout
    assert "InvalidBlockDeviceMapping" in p.stderr + p.stdout, p.stderr
    # nothing was launched
    assert acct.ec2.describe_instances()["Reservations"] == []


def test_the_replay_notices_a_misnamed_element(cloud, sdk_dir):
    """The checks are not vacuous: an answer with one element mis-named (as an emulator
    might) fails the replay, naming the call, although the SDK itself raises nothing."""
    acct = new_account(cloud, f"tf2-{os.urandom(4).hex()}")
    mangle = [["DescribeVpcs", "<isDefault>", "<isdefault>"],
              ["DescribeVpcs", "</isDefault>", "</isdefault>"]]
    p = run_replay(cloud, sdk_dir, acct, "ami-00000000000000000", "apply",
                   extra={"FERROSTACK_REPLAY_MANGLE": json.dumps(mangle)})
    assert p.returncode == 1, (p.returncode, p.stderr, p.stdout)
    assert "DescribeVpcs(isDefault)" in p.stderr and "isdefault" in p.stderr, p.stderr
    assert "RunInstances" not in p.stderr, p.stderr  # it stopped before launching anything
    assert p.stdout == "", p.stdout


def locked(package):
    lock = json.loads((ROOT / "tests" / "conformance" / "jssdk" / "package-lock.json").read_text())
    return lock["packages"][f"node_modules/{package}"]["version"]
