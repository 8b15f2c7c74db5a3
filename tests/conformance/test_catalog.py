"""The service catalog, endpoints, services and regions through the openstack CLI."""

from conftest import column

SERVICES = {"identity": "/identity", "image": "/image", "compute": "/compute",
            "network": "/network", "ec2": "/ec2"}


def test_catalog_lists_every_service(cloud):
    catalog = cloud.openstack("catalog", "list")
    assert set(SERVICES) <= {c["Type"] for c in catalog}
    shown = cloud.openstack("catalog", "show", "identity")
    assert shown["type"] == "identity"
    assert f"{cloud.base}/identity" in str(shown["endpoints"])


def test_endpoints_for_each_service_and_interface(cloud):
    eps = cloud.openstack("endpoint", "list")
    for service, prefix in SERVICES.items():
        mine = [e for e in eps if e["Service Type"] == service]
        assert {e["Interface"] for e in mine} == {"public", "internal", "admin"}, service
        assert all(e["Region"] == "RegionOne" and e["Enabled"] for e in mine), mine
        assert all(e["URL"].startswith(cloud.base + prefix) for e in mine), mine
    ident = [e for e in eps if e["Service Type"] == "identity"]
    assert {e["URL"] for e in ident} == {f"{cloud.base}/identity"}
    public = cloud.openstack("endpoint", "list", "--service", "identity", "--interface", "public")
    assert len(public) == 1 and public[0]["URL"] == f"{cloud.base}/identity"
    shown = cloud.openstack("endpoint", "show", public[0]["ID"])
    assert shown["interface"] == "public" and shown["service_type"] == "identity"


def test_services_and_regions(cloud, name):
    services = cloud.openstack("service", "list")
    assert set(SERVICES) <= set(column(services, "type"))
    assert cloud.openstack("service", "show", "identity")["type"] == "identity"
    assert column(cloud.openstack("region", "list"), "region") == ["RegionOne"]
    assert cloud.openstack("region", "show", "RegionOne")["region"] == "RegionOne"


def test_catalog_can_be_extended(cloud, name):
    svc = cloud.openstack("service", "create", "--name", name, "--description", "d", f"{name}-type")
    cloud.openstack("region", "create", name)
    ep = cloud.openstack("endpoint", "create", "--region", name, svc["id"], "public",
                         f"http://example.test/{name}")
    assert ep["url"] == f"http://example.test/{name}" and ep["region"] == name
    assert f"{name}-type" in {c["Type"] for c in cloud.openstack("catalog", "list")}
    cloud.openstack("endpoint", "delete", ep["id"], fmt=None)
    cloud.openstack("service", "delete", svc["id"], fmt=None)
    cloud.openstack("region", "delete", name, fmt=None)
    assert f"{name}-type" not in {c["Type"] for c in cloud.openstack("catalog", "list")}
