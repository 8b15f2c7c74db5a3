"""The network service (Neutron v2.0) as its users see it: the unmodified openstack CLI
and openstacksdk, and the raw API (python requests with a token) where the CLI hides the
answer. Every module's server has the shared `private` network from the bootstrap."""

import concurrent.futures

import pytest

from conftest import column, field


def url(cloud, path=""):
    return f"{cloud.base}/network/v2.0{path}"


def api(cloud, method, path, token=None, **kw):
    """A raw Neutron request as the admin, or with `token`."""
    return cloud.http.request(method, url(cloud, path),
                              headers={"X-Auth-Token": token or cloud.admin_token}, **kw)


def token_of(cloud, m):
    return cloud.password_token(m["name"], m["password"], m["name"])[0]


# --- networks ---------------------------------------------------------------------------

def test_network_list_shows_the_shared_private_network(cloud, member):
    nets = cloud.openstack("network", "list")
    assert "private" in column(nets, "name")
    private = cloud.openstack("network", "show", "private")
    assert field(private, "shared") is True
    assert field(private, "status") == "ACTIVE"
    assert len(field(private, "subnets")) == 1
    subnet = cloud.openstack("subnet", "show", "private-subnet")
    assert field(subnet, "cidr") == "10.0.0.0/24"
    assert field(subnet, "gateway_ip") == "10.0.0.1"
    # a member of another project sees it (shared) and nothing else
    mine = cloud.openstack("network", "list", cloud=member["cloud"])
    assert column(mine, "name") == ["private"]


def test_network_create_show_set_delete(cloud, name):
    created = cloud.openstack("network", "create", "--description", "made by a test",
                              "--tag", "red", "--tag", "blue", name)
    assert field(created, "name") == name
    assert field(created, "description") == "made by a test"
    assert sorted(field(created, "tags")) == ["blue", "red"]
    assert field(created, "mtu") == 1500
    shown = cloud.openstack("network", "show", name)
    assert field(shown, "id") == field(created, "id")
    assert field(shown, "shared") is False
    cloud.openstack("network", "set", "--name", f"{name}-2", "--no-tag", "--tag", "green", name,
                    fmt=None)
    renamed = cloud.openstack("network", "show", f"{name}-2")
    assert field(renamed, "tags") == ["green"]
    assert field(renamed, "revision_number") > field(created, "revision_number")
    assert column(cloud.openstack("network", "list", "--name", f"{name}-2"), "id") == [field(created, "id")]
    assert field(created, "id") in column(cloud.openstack("network", "list", "--tags", "green"), "id")
    cloud.openstack("network", "delete", f"{name}-2", fmt=None)
    cloud.openstack_fails("network", "show", f"{name}-2")
    r = api(cloud, "GET", f"/networks/{field(created, 'id')}")
    assert r.status_code == 404
    assert r.json()["NeutronError"]["type"] == "NetworkNotFound"
    assert r.json()["NeutronError"]["message"] == f"Network {field(created, 'id')} could not be found."


def test_only_admins_share_networks(cloud, member, name):
    err = cloud.openstack_fails("network", "create", "--share", name, cloud=member["cloud"],
                                status=403)
    assert "disallowed by policy" in err
    shared = cloud.openstack("network", "create", "--share", "--project", member["project_id"], name)
    assert field(shared, "shared") is True
    assert field(shared, "project_id") == member["project_id"]


def test_a_network_with_ports_cannot_be_deleted(cloud, name):
    cloud.openstack("network", "create", name)
    cloud.openstack("subnet", "create", "--network", name, "--subnet-range", "10.77.0.0/24", name)
    port = cloud.openstack("port", "create", "--network", name, name)
    err = cloud.openstack_fails("network", "delete", name)
    assert "409" in err or "in use" in err.lower()
    cloud.openstack("port", "delete", field(port, "id"), fmt=None)
    cloud.openstack("network", "delete", name, fmt=None)


# --- subnets ------------------------------------------------------------------------------

def test_subnet_create_with_pools_dns_and_routes(cloud, name):
    cloud.openstack("network", "create", name)
    s = cloud.openstack("subnet", "create", "--network", name, "--subnet-range", "10.20.0.0/24",
                        "--allocation-pool", "start=10.20.0.10,end=10.20.0.20",
                        "--dns-nameserver", "8.8.8.8", "--dns-nameserver", "1.1.1.1",
                        "--host-route", "destination=10.30.0.0/24,gateway=10.20.0.1", name)
    assert field(s, "cidr") == "10.20.0.0/24"
    assert field(s, "ip_version") == 4
    assert field(s, "gateway_ip") == "10.20.0.1"
    assert field(s, "enable_dhcp") is True
    pools = field(s, "allocation_pools")
    assert pools == [{"start": "10.20.0.10", "end": "10.20.0.20"}] or pools == "10.20.0.10-10.20.0.20", pools
    assert field(s, "dns_nameservers") in (["8.8.8.8", "1.1.1.1"], "8.8.8.8, 1.1.1.1")
    routes = field(s, "host_routes")
    assert "10.30.0.0/24" in str(routes) and "10.20.0.1" in str(routes)
    # overlapping CIDRs on one network: 400
    err = cloud.openstack_fails("subnet", "create", "--network", name, "--subnet-range",
                                "10.20.0.128/25", f"{name}-b", status=400)
    assert "overlaps" in err
    # a bad CIDR: 400 with Neutron's words
    err = cloud.openstack_fails("subnet", "create", "--network", name, "--subnet-range",
                                "10.20.0.0/40", f"{name}-c")
    assert "Invalid input for cidr" in err
    cloud.openstack("subnet", "set", "--name", f"{name}-r", "--no-dns-nameservers", name, fmt=None)
    assert field(cloud.openstack("subnet", "show", f"{name}-r"), "dns_nameservers") in ([], "")
    cloud.openstack("subnet", "delete", f"{name}-r", fmt=None)
    assert field(cloud.openstack("network", "show", name), "subnets") in ([], "")


def test_ipv6_subnets(cloud, name):
    cloud.openstack("network", "create", name)
    s = cloud.openstack("subnet", "create", "--network", name, "--ip-version", "6",
                        "--subnet-range", "fd00:20::/64", "--ipv6-ra-mode", "slaac",
                        "--ipv6-address-mode", "slaac", name)
    assert field(s, "ip_version") == 6
    assert field(s, "gateway_ip") == "fd00:20::1"
    assert field(s, "ipv6_address_mode") == "slaac"
    stateful = cloud.openstack("subnet", "create", "--network", name, "--ip-version", "6",
                               "--subnet-range", "fd00:21::/64", f"{name}-2")
    assert field(stateful, "ipv6_address_mode") is None
    port = cloud.openstack("port", "create", "--network", name, name)
    ips = field(port, "fixed_ips")
    assert "fd00:20::f816:3eff:fe" in str(ips), ips  # EUI-64 from the fa:16:3e MAC


# --- ports --------------------------------------------------------------------------------

def test_port_create_with_a_fixed_ip_and_lookups(cloud, name):
    cloud.openstack("network", "create", name)
    subnet = cloud.openstack("subnet", "create", "--network", name, "--subnet-range",
                             "10.40.0.0/24", name)
    port = cloud.openstack("port", "create", "--network", name, "--fixed-ip",
                           f"subnet={name},ip-address=10.40.0.15", "--device-owner", "test:x",
                           name)
    assert "10.40.0.15" in str(field(port, "fixed_ips"))
    assert field(port, "mac_address").startswith("fa:16:3e:")
    assert field(port, "status") == "DOWN"
    ports = cloud.openstack("port", "list", "--network", name)
    assert column(ports, "id") == [field(port, "id")]
    assert column(cloud.openstack("port", "list", "--fixed-ip", "ip-address=10.40.0.15"), "id") \
        == [field(port, "id")]
    assert field(port, "id") in column(cloud.openstack("port", "list", "--device-owner", "test:x"), "id")
    # the same address again: 409
    err = cloud.openstack_fails("port", "create", "--network", name, "--fixed-ip",
                                "ip-address=10.40.0.15", f"{name}-dup", status=409)
    assert "already allocated" in err
    # openstacksdk: filter by device id, find by name
    conn = cloud.sdk()
    p = conn.network.update_port(field(port, "id"), device_id="server-123")
    assert p.device_id == "server-123"
    assert [x.id for x in conn.network.ports(device_id="server-123")] == [field(port, "id")]
    assert conn.network.find_port(name).id == field(port, "id")
    assert conn.network.find_network(name).subnet_ids == [field(subnet, "id")]
    cloud.openstack("port", "set", "--fixed-ip", "ip-address=10.40.0.16", "--no-fixed-ip", name,
                    fmt=None)
    assert "10.40.0.16" in str(field(cloud.openstack("port", "show", name), "fixed_ips"))
    cloud.openstack("port", "delete", name, fmt=None)
    # the address is free again
    again = cloud.openstack("port", "create", "--network", name, "--fixed-ip",
                            "ip-address=10.40.0.15", f"{name}-again")
    assert "10.40.0.15" in str(field(again, "fixed_ips"))


def test_parallel_sdk_port_creation_never_shares_an_address(cloud, name):
    conn = cloud.sdk()
    net = conn.network.create_network(name=name)
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.50.0.0/28")

    def one(i):
        c = cloud.sdk()
        try:
            return c.network.create_port(network_id=net.id, name=f"{name}-{i}").fixed_ips[0]["ip_address"]
        except Exception as e:  # noqa: BLE001 - the refusal is what we check
            return e

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(20)))
    ips = [r for r in results if isinstance(r, str)]
    errors = [r for r in results if not isinstance(r, str)]
    assert len(ips) == 13 and len(set(ips)) == 13, results
    assert all("No more IP addresses available" in str(e) for e in errors), errors


def test_members_do_not_see_other_projects_ports(cloud, member, name):
    cloud.openstack("port", "create", "--network", "private", name)
    assert name not in column(cloud.openstack("port", "list", cloud=member["cloud"]), "name")
    mine = cloud.openstack("port", "create", "--network", "private", f"{name}-m",
                           cloud=member["cloud"])
    assert column(cloud.openstack("port", "list", cloud=member["cloud"]), "name") == [f"{name}-m"]
    assert field(mine, "project_id") == member["project_id"]
    r = api(cloud, "GET", f"/ports/{field(mine, 'id')}")
    assert r.status_code == 200 and "binding:host_id" in r.json()["port"]
    r = api(cloud, "GET", f"/ports/{field(mine, 'id')}", token_of(cloud, member))
    assert "binding:host_id" not in r.json()["port"]


# --- security groups ---------------------------------------------------------------------

def test_security_groups_and_rules(cloud, member, name):
    me = member["cloud"]
    groups = cloud.openstack("security", "group", "list", cloud=me)
    assert column(groups, "name") == ["default"]
    default_rules = cloud.openstack("security", "group", "rule", "list", "default", cloud=me)
    assert len(default_rules) == 4
    g = cloud.openstack("security", "group", "create", "--description", "web servers", name,
                        cloud=me)
    assert field(g, "name") == name and field(g, "description") == "web servers"
    rule = cloud.openstack("security", "group", "rule", "create", "--protocol", "tcp",
                           "--dst-port", "22", "--remote-ip", "192.168.0.0/16", name, cloud=me)
    assert field(rule, "port_range_min") == 22 and field(rule, "port_range_max") == 22
    assert field(rule, "remote_ip_prefix") == "192.168.0.0/16"
    assert field(rule, "direction") == "ingress" and field(rule, "ether_type") == "IPv4"
    icmp = cloud.openstack("security", "group", "rule", "create", "--protocol", "icmp", name,
                           cloud=me)
    assert field(icmp, "protocol") == "icmp"
    err = cloud.openstack_fails("security", "group", "rule", "create", "--protocol", "tcp",
                                "--dst-port", "22", "--remote-ip", "192.168.0.0/16", name,
                                cloud=me, status=409)
    assert "already exists" in err
    rules = cloud.openstack("security", "group", "rule", "list", name, cloud=me)
    assert field(rule, "id") in column(rules, "id")
    cloud.openstack("security", "group", "rule", "delete", field(rule, "id"), cloud=me, fmt=None)
    assert field(rule, "id") not in column(
        cloud.openstack("security", "group", "rule", "list", name, cloud=me), "id")
    cloud.openstack("security", "group", "set", "--name", f"{name}-2", name, cloud=me, fmt=None)
    cloud.openstack_fails("security", "group", "delete", "default", cloud=me, status=409)
    cloud.openstack("security", "group", "delete", f"{name}-2", cloud=me, fmt=None)
    # the admin does not see the member's groups unless asking for all
    assert name not in column(cloud.openstack("security", "group", "list", cloud=me), "name")


# --- quotas and extensions ----------------------------------------------------------------

def test_quota_show_for_network_resources(cloud, member):
    q = cloud.openstack("quota", "show", "--network", member["project_id"])
    text = str(q)
    assert "network" in text.lower() and "100" in text, q
    cloud.openstack("quota", "set", "--networks", "1", member["project_id"], fmt=None)
    cloud.openstack("network", "create", f"{member['name']}-q1", cloud=member["cloud"])
    err = cloud.openstack_fails("network", "create", f"{member['name']}-q2", cloud=member["cloud"],
                                status=409)
    assert "Quota exceeded" in err
    r = api(cloud, "GET", f"/quotas/{member['project_id']}/details")
    assert r.json()["quota"]["network"] == {"limit": 1, "used": 1, "reserved": 0}


def test_extensions_and_unknown_resources(cloud):
    aliases = {e["alias"] for e in api(cloud, "GET", "/extensions").json()["extensions"]}
    assert {"security-group", "binding", "quotas", "external-net", "standard-attr-tag"} <= aliases
    assert "router" not in aliases
    r = api(cloud, "GET", "/routers")
    assert r.status_code == 404
    assert api(cloud, "GET", "/extensions/quotas").json()["extension"]["alias"] == "quotas"
    r = api(cloud, "POST", "/networks", json={"network": {"name": "x", "bogus": 1}})
    assert r.status_code == 400
    assert r.json()["NeutronError"]["message"] == "Unrecognized attribute(s) 'bogus'"


@pytest.mark.parametrize("path", ["/networks/nope", "/subnets/nope", "/ports/nope"])
def test_missing_resources_are_404_in_neutron_words(cloud, path):
    r = api(cloud, "GET", path)
    assert r.status_code == 404
    assert r.json()["NeutronError"]["message"].endswith("nope could not be found.")
