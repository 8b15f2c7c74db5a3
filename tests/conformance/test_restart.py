"""What survives a restart of `ferrostack up` on the same state directory (and database),
and token key rotation in between."""

import pytest

from conftest import column, field


@pytest.mark.slow
def test_restart_keeps_data_and_valid_tokens(fresh_cloud, name):
    cloud = fresh_cloud
    cloud.openstack("project", "create", name)
    cloud.openstack("user", "create", "--password", "pw", "--project", name, name)
    cloud.openstack("role", "add", "--user", name, "--project", name, "member", fmt=None)
    ec2 = cloud.openstack("ec2", "credentials", "create")
    tok = cloud.openstack("token", "issue")["id"]
    password = cloud.admin_password
    old_base = cloud.base

    assert cloud.stop() == 0
    assert not cloud.url_file.exists()
    cloud.start()

    assert cloud.admin_password == password, "the admin password survives a restart"
    assert name in column(cloud.openstack("project", "list"), "name")
    cloud.add_user_cloud(name, name, "pw", project=name)
    cloud.openstack("token", "issue", cloud=name)
    assert field(ec2, "access") in column(cloud.openstack("ec2", "credentials", "list"), "access")
    assert cloud.validate(tok).status_code == 200
    if cloud.base != old_base:  # another free port: the client files follow it
        assert cloud.base in open(cloud.clouds_yaml).read()


@pytest.mark.slow
def test_rotated_keys_still_validate_old_tokens(fresh_cloud):
    cloud = fresh_cloud
    old = cloud.openstack("token", "issue")["id"]
    assert cloud.stop() == 0
    r = cloud.ferrostack("admin", "rotate-token-keys")
    assert r.returncode == 0, r.stdout + r.stderr
    cloud.start()
    assert cloud.validate(old).status_code == 200, "a token from before one rotation validates"
    new = cloud.openstack("token", "issue")["id"]
    assert new != old and cloud.validate(new).status_code == 200
    # a revocation made now applies to the old token too
    cloud.openstack("token", "revoke", old, fmt=None)
    assert cloud.validate(old).status_code == 404
