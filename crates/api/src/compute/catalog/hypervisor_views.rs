//! The wire views of hosts as the admin APIs show them: hypervisors (summary,
//! detail), compute services and availability zones, with Nova's microversion
//! rules (integer ids below 2.53, `cpu_info` as an object from 2.28, usage
//! fields gone and `uptime` in from 2.88, `forced_down` from 2.11).

use serde_json::{Value, json};

use ferrostack_compute::ApiVersion;
use ferrostack_compute::hypervisors::{Host, Service, uptime_text};
use ferrostack_compute::zones::Zone;

fn state(up: bool) -> &'static str {
    if up { "up" } else { "down" }
}

fn status(enabled: bool) -> &'static str {
    if enabled { "enabled" } else { "disabled" }
}

fn hypervisor_id(h: &Host, v: ApiVersion) -> Value {
    if v.at_least(2, 53) {
        json!(h.id)
    } else {
        json!(h.number)
    }
}

/// `GET /os-hypervisors` item.
pub fn summary(h: &Host, v: ApiVersion) -> Value {
    json!({
        "id": hypervisor_id(h, v),
        "hypervisor_hostname": h.name,
        "state": state(h.up),
        "status": status(h.enabled),
    })
}

/// `GET /os-hypervisors/{id}/uptime` (below 2.88).
pub fn uptime(h: &Host, v: ApiVersion) -> Value {
    let mut m = summary(h, v);
    m["uptime"] = json!(uptime_text());
    m
}

/// `GET /os-hypervisors/detail` item and `GET /os-hypervisors/{id}`.
pub fn detail(h: &Host, v: ApiVersion) -> Value {
    let mut m = summary(h, v);
    m["hypervisor_type"] = json!(h.hypervisor_type);
    m["hypervisor_version"] = json!(h.hypervisor_version);
    m["host_ip"] = json!(h.host_ip);
    m["service"] = json!({
        "host": h.name,
        "id": if v.at_least(2, 53) { json!(h.service_id) } else { json!(h.service_num()) },
        "disabled_reason": h.disabled_reason,
    });
    if v.at_least(2, 88) {
        m["uptime"] = json!(uptime_text());
        return m;
    }
    let cpu_info = json!({
        "arch": std::env::consts::ARCH,
        "model": "fake",
        "vendor": "ferrostack",
        "topology": {"sockets": h.vcpus, "cores": 1, "threads": 1},
        "features": [],
    });
    m["cpu_info"] = if v.at_least(2, 28) {
        cpu_info
    } else {
        json!(cpu_info.to_string())
    };
    m["vcpus"] = json!(h.vcpus);
    m["memory_mb"] = json!(h.memory_mb);
    m["local_gb"] = json!(h.local_gb);
    m["vcpus_used"] = json!(h.usage.vcpus_used);
    m["memory_mb_used"] = json!(h.memory_mb_used());
    m["local_gb_used"] = json!(h.local_gb_used());
    m["free_ram_mb"] = json!(h.memory_mb - h.memory_mb_used());
    m["free_disk_gb"] = json!(h.local_gb - h.local_gb_used());
    m["current_workload"] = json!(h.usage.current_workload);
    m["running_vms"] = json!(h.usage.running_vms);
    m["disk_available_least"] = json!(h.local_gb - h.local_gb_used());
    m
}

/// `GET /os-services` item.
pub fn service(s: &Service, v: ApiVersion) -> Value {
    let mut m = json!({
        "id": if v.at_least(2, 53) { json!(s.uuid) } else { json!(s.number) },
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": status(s.enabled),
        "state": state(s.up),
        "updated_at": ferrostack_compute::nova_time(s.updated_at_us),
        "disabled_reason": s.disabled_reason,
    });
    if v.at_least(2, 11) {
        m["forced_down"] = json!(s.forced_down);
    }
    m
}

/// `availabilityZoneInfo` item.
pub fn zone(z: &Zone) -> Value {
    json!({
        "zoneName": z.name,
        "zoneState": {"available": z.available},
        "hosts": z.hosts.clone().map(Value::Object),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_compute::hypervisors::HostUsage;

    fn host() -> Host {
        Host {
            row: ferrostack_compute::hosts::Host {
                id: "7e1d1f3c-0000-4000-8000-000000000001".into(),
                name: "h1".into(),
                service_id: "7e1d1f3c-0000-4000-8000-000000000002".into(),
                availability_zone: "nova".into(),
                enabled: true,
                disabled_reason: None,
                forced_down: false,
                hypervisor_type: "fake".into(),
                hypervisor_version: 1000,
                vcpus: 8,
                memory_mb: 8192,
                local_gb: 100,
                cpu_allocation_ratio: 16.0,
                ram_allocation_ratio: 1.5,
                disk_allocation_ratio: 1.0,
                reserved_host_memory_mb: 512,
                reserved_host_disk_mb: 0,
                host_ip: "127.0.0.1".into(),
                last_seen_us: 0,
            },
            number: 1,
            up: true,
            usage: HostUsage {
                running_vms: 1,
                vcpus_used: 2,
                memory_mb_used: 1024,
                local_gb_used: 10,
                current_workload: 0,
            },
        }
    }

    #[test]
    fn hypervisor_ids_and_fields_follow_microversions() {
        let h = host();
        let old = detail(&h, ApiVersion::new(2, 1));
        assert_eq!(old["id"], 1);
        assert_eq!(old["service"]["id"], 3);
        assert!(old["cpu_info"].is_string());
        assert_eq!(old["memory_mb_used"], 1536);
        assert_eq!(old["free_ram_mb"], 8192 - 1536);
        assert_eq!(old["running_vms"], 1);
        let v28 = detail(&h, ApiVersion::new(2, 28));
        assert!(v28["cpu_info"].is_object());
        let v53 = detail(&h, ApiVersion::new(2, 53));
        assert_eq!(v53["id"], h.id.as_str());
        assert_eq!(v53["service"]["id"], h.service_id.as_str());
        let v88 = detail(&h, ApiVersion::new(2, 88));
        assert!(v88.get("vcpus").is_none());
        assert!(v88.get("running_vms").is_none());
        assert!(v88["uptime"].as_str().unwrap().contains(" up "));
        assert_eq!(v88["hypervisor_type"], "fake");
    }

    #[test]
    fn services_follow_microversions() {
        let s = Service {
            number: 3,
            uuid: "7e1d1f3c-0000-4000-8000-000000000002".into(),
            binary: "nova-compute".into(),
            host: "h1".into(),
            zone: "nova".into(),
            enabled: true,
            disabled_reason: None,
            forced_down: false,
            up: true,
            updated_at_us: 0,
        };
        let r = service(&s, ApiVersion::new(2, 1));
        assert!(r.get("forced_down").is_none());
        assert_eq!(r["id"], 3);
        assert_eq!(r["state"], "up");
        let r = service(&s, ApiVersion::new(2, 53));
        assert_eq!(r["forced_down"], false);
        assert_eq!(r["id"], s.uuid.as_str());
    }
}
