"""Tokens through the openstack CLI, and the client files `ferrostack up` writes."""

import datetime
import os
import stat
import subprocess

from conftest import VENV_BIN, clean_env, field


def _expires(value):
    return datetime.datetime.strptime(value.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")


def test_token_issue_shows_expiry_and_ids(cloud):
    tok = cloud.openstack("token", "issue")
    assert set(tok) >= {"expires", "id", "project_id", "user_id"}
    assert all(tok[k] for k in ("expires", "id", "project_id", "user_id"))
    left = _expires(tok["expires"]) - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(minutes=55) < left <= datetime.timedelta(hours=1, minutes=1)
    assert tok["project_id"] == cloud.openstack("project", "show", "admin")["id"]
    assert tok["user_id"] == cloud.openstack("user", "show", "admin")["id"]


def test_wrong_password_is_refused_with_401(cloud, name):
    cloud.add_user_cloud(name, "admin", "not-the-password", project="admin")
    cloud.openstack_fails("token", "issue", cloud=name, status=401)


def test_token_works_for_another_client_until_revoked(cloud):
    tok = cloud.openstack("token", "issue")["id"]
    as_token = {"OS_AUTH_TYPE": "v3token", "OS_TOKEN": tok, "OS_AUTH_URL": cloud.auth_url,
                "OS_PROJECT_NAME": "admin", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne"}
    assert cloud.openstack("project", "show", "admin", cloud=None, env=as_token)["name"] == "admin"
    assert cloud.validate(tok).status_code == 200
    assert cloud.http.head(f"{cloud.auth_url}/auth/tokens", headers={
        "X-Auth-Token": cloud.admin_token, "X-Subject-Token": tok}).status_code == 200

    assert cloud.openstack("token", "revoke", tok, fmt=None) == ""

    gone = cloud.validate(tok)
    assert gone.status_code == 404, gone.text
    assert gone.json()["error"]["code"] == 404
    assert cloud.http.head(f"{cloud.auth_url}/auth/tokens", headers={
        "X-Auth-Token": cloud.admin_token, "X-Subject-Token": tok}).status_code == 404
    cloud.openstack_fails("project", "show", "admin", cloud=None, env=as_token)
    # the revoked token cannot be used to call the API either
    r = cloud.http.get(f"{cloud.auth_url}/projects", headers={"X-Auth-Token": tok})
    assert r.status_code == 401


def test_unscoped_and_system_tokens(cloud):
    unscoped, body = cloud.password_token(project=None)
    assert "project" not in body and not body.get("catalog")
    assert cloud.validate(unscoped).status_code == 200
    if "ferrostack-system" in cloud.clouds:
        tok = cloud.openstack("token", "issue", cloud="ferrostack-system")
        assert tok["id"] and not tok.get("project_id")


def test_client_files_are_private_and_point_at_the_server(cloud):
    for f in ("clouds.yaml", "adminrc", "ec2rc.sh"):
        mode = stat.S_IMODE(os.stat(cloud.state / f).st_mode)
        assert mode == 0o600, f"{f} has mode {oct(mode)}"
    c = cloud.clouds["ferrostack"]
    assert c["auth"]["auth_url"] == cloud.auth_url
    assert {k: c["auth"][k] for k in ("username", "project_name", "user_domain_name",
                                      "project_domain_name")} == {
        "username": "admin", "project_name": "admin", "user_domain_name": "Default",
        "project_domain_name": "Default"}
    assert c["region_name"] == "RegionOne" and str(c["identity_api_version"]) == "3"
    assert c["interface"] == "public"
    assert len(c["auth"]["password"]) >= 16, "a random password"


def _sourced(cloud, script, command):
    """Runs `command` in bash after sourcing state/SCRIPT, with a clean environment."""
    env = clean_env({"HOME": str(cloud.tmp)})
    return subprocess.run(["bash", "-c", f'set -e; . "$1"; {command}', "bash",
                           str(cloud.state / script)], env=env, capture_output=True,
                          text=True, timeout=60)


def test_adminrc_works_for_the_real_openstack_command(cloud):
    # The real console script as its own process (the rest of the suite forks a warm one).
    p = _sourced(cloud, "adminrc", f'"{VENV_BIN}/openstack" token issue -f json')
    assert p.returncode == 0, p.stderr
    assert '"project_id"' in p.stdout
    p = _sourced(cloud, "adminrc", 'env | grep ^OS_ | sort')
    env = dict(line.split("=", 1) for line in p.stdout.splitlines())
    assert env["OS_AUTH_URL"].rstrip("/") == cloud.auth_url
    assert env["OS_USERNAME"] == "admin" and env["OS_PROJECT_NAME"] == "admin"
    assert env["OS_IDENTITY_API_VERSION"] == "3"


def test_ec2rc_holds_a_working_ec2_credential(cloud):
    p = _sourced(cloud, "ec2rc.sh", "env | grep -E '^(EC2|AWS)_' | sort")
    env = dict(line.split("=", 1) for line in p.stdout.splitlines())
    assert env["EC2_ACCESS_KEY"] == env["AWS_ACCESS_KEY_ID"]
    assert env["EC2_SECRET_KEY"] == env["AWS_SECRET_ACCESS_KEY"]
    assert env["EC2_URL"].startswith(cloud.base + "/ec2")
    creds = cloud.openstack("ec2", "credentials", "list")
    assert env["EC2_ACCESS_KEY"] in [field(c, "access") for c in creds]


def test_fast_cli_answers_like_the_real_console_script(cloud, name):
    """The suite forks a pre-loaded `openstack` (oscfork.py); it must behave exactly as
    `.venv/bin/openstack` run as its own process."""
    env = clean_env({"OS_CLIENT_CONFIG_FILE": cloud.clouds_yaml})
    for argv in (["--os-cloud", "ferrostack", "project", "show", "admin", "-f", "json"],
                 ["--os-cloud", "ferrostack", "project", "show", name],
                 ["--os-cloud", "ferrostack", "no-such-command"]):
        real = subprocess.run([str(VENV_BIN / "openstack"), *argv], env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        rc, out, err, _ = cloud.run_cli(*argv[2:], fmt=None)
        assert (rc, out, err) == (real.returncode, real.stdout, real.stderr), argv
