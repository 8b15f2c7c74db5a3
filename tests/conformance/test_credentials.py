"""Application credentials and EC2 credentials through the openstack CLI."""

from conftest import column, field


def _app_cred_env(cloud, ac_id, secret):
    return {"OS_AUTH_TYPE": "v3applicationcredential", "OS_AUTH_URL": cloud.auth_url,
            "OS_APPLICATION_CREDENTIAL_ID": ac_id, "OS_APPLICATION_CREDENTIAL_SECRET": secret,
            "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public"}


def test_application_credential_secret_is_shown_once_and_authenticates(cloud, name):
    ac = cloud.openstack("application", "credential", "create", "--description", "ci", name)
    ac_id, secret = field(ac, "id"), field(ac, "secret")
    assert secret and field(ac, "name") == name
    admin = cloud.openstack("token", "issue")
    assert field(ac, "project_id") == admin["project_id"]

    shown = cloud.openstack("application", "credential", "show", name)
    assert field(shown, "id") == ac_id and field(shown, "description") == "ci"
    assert "secret" not in {k.lower() for k in shown} or not field(shown, "secret")
    assert name in column(cloud.openstack("application", "credential", "list"), "name")

    # OS_AUTH_TYPE=v3applicationcredential with id + secret, as an openrc would set it
    env = _app_cred_env(cloud, ac_id, secret)
    tok = cloud.openstack("token", "issue", cloud=None, env=env)
    assert tok["project_id"] == admin["project_id"] and tok["user_id"] == admin["user_id"]
    # by name + user, from a clouds.yaml entry
    cloud.add_user_cloud(f"{name}-byname", auth_type="v3applicationcredential", auth={
        "application_credential_name": name, "application_credential_secret": secret,
        "username": "admin", "user_domain_name": "Default"})
    assert cloud.openstack("token", "issue", cloud=f"{name}-byname")["project_id"] == admin["project_id"]

    cloud.openstack_fails("token", "issue", cloud=None, status=401,
                          env={**env, "OS_APPLICATION_CREDENTIAL_SECRET": "wrong"})
    cloud.openstack("application", "credential", "delete", name, fmt=None)
    assert name not in column(cloud.openstack("application", "credential", "list"), "name")
    cloud.openstack_fails("token", "issue", cloud=None, env=env, status=401)


def test_application_credential_limited_to_reader_cannot_write(cloud, name):
    ac = cloud.openstack("application", "credential", "create", "--role", "reader", name)
    roles = str(field(ac, "roles"))
    assert "reader" in roles and "member" not in roles and "admin" not in roles, roles
    env = _app_cred_env(cloud, field(ac, "id"), field(ac, "secret"))
    tok = cloud.openstack("token", "issue", cloud=None, env=env)
    # reading is allowed (by id: looking a project up by name is a list, admin-only)
    assert cloud.openstack("project", "show", tok["project_id"], cloud=None, env=env)["name"] == "admin"
    cloud.openstack_fails("project", "create", f"{name}-x", cloud=None, env=env, status=403)
    cloud.openstack_fails("user", "create", f"{name}-x", cloud=None, env=env, status=403)


def test_application_credential_of_a_member(cloud, member):
    me = member["cloud"]
    ac = cloud.openstack("application", "credential", "create", member["name"], cloud=me)
    env = _app_cred_env(cloud, field(ac, "id"), field(ac, "secret"))
    tok = cloud.openstack("token", "issue", cloud=None, env=env)
    assert tok["project_id"] == member["project_id"] and tok["user_id"] == member["user_id"]
    # it cannot create application credentials itself (upstream: 403 for app-cred tokens)
    cloud.openstack_fails("application", "credential", "create", "again", cloud=None, env=env,
                          status=403)


def test_ec2_credentials_create_list_show_delete(cloud):
    created = cloud.openstack("ec2", "credentials", "create")
    access, secret = field(created, "access"), field(created, "secret")
    assert len(access) >= 16 and len(secret) >= 16
    admin = cloud.openstack("token", "issue")
    assert field(created, "project_id") == admin["project_id"]
    assert field(created, "user_id") == admin["user_id"]

    listed = cloud.openstack("ec2", "credentials", "list")
    assert access in column(listed, "access")
    shown = cloud.openstack("ec2", "credentials", "show", access)
    assert field(shown, "secret") == secret and field(shown, "access") == access

    cloud.openstack("ec2", "credentials", "delete", access, fmt=None)
    assert access not in column(cloud.openstack("ec2", "credentials", "list"), "access")
    # upstream answers 404 (the credential is gone); 401 "EC2 access key not found." is for
    # a credential that is not an ec2 one
    err = cloud.openstack_fails("ec2", "credentials", "show", access, status=404)
    assert "could not find credential" in err.lower()


def test_ec2_credentials_for_another_user_and_project(cloud, member):
    c = cloud.openstack("ec2", "credentials", "create", "--user", member["name"],
                        "--project", member["name"])
    assert field(c, "user_id") == member["user_id"]
    assert field(c, "project_id") == member["project_id"]
    mine = cloud.openstack("ec2", "credentials", "list", cloud=member["cloud"])
    assert column(mine, "access") == [field(c, "access")]
    theirs = cloud.openstack("ec2", "credentials", "list", "--user", member["name"])
    assert column(theirs, "access") == [field(c, "access")]
    # the generic credential API shows it as type ec2
    creds = cloud.openstack("credential", "list", "--type", "ec2", "--user", member["name"])
    assert len(creds) == 1 and field(creds[0], "type") == "ec2"
