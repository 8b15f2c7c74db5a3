//! How a Neutron port becomes a user-mode (slirp) network private to one NIC:
//! the port's subnet is the network, its gateway is slirp's host address (DHCP's
//! router), its fixed IP is the one and only DHCP lease (`dhcpstart`), and SSH is
//! forwarded from a free port on the host's loopback. Also reads the forwarded
//! port back from QEMU (`info usernet`). See
//! `docs/adr/0003-user-mode-guest-networking.md` for why slirp.

use std::net::Ipv4Addr;

use crate::domain::{HostForward, UserNet};
use crate::driver::SpecNic;

/// An IPv4 network, `10.0.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net4 {
    base: u32,
    prefix: u8,
}

impl Net4 {
    fn parse(cidr: &str) -> Option<Net4> {
        let (a, p) = cidr.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        if prefix > 30 {
            return None;
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Some(Net4 {
            base: u32::from(addr) & mask,
            prefix,
        })
    }

    fn mask(self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    fn contains(self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == self.base
    }

    fn broadcast(self) -> u32 {
        self.base | !self.mask()
    }

    fn cidr(self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }

    /// The usable host addresses, highest first.
    fn hosts_desc(self) -> impl Iterator<Item = Ipv4Addr> {
        let (lo, hi) = (self.base + 1, self.broadcast() - 1);
        (lo..=hi).rev().map(Ipv4Addr::from)
    }
}

/// The user-mode network of one NIC, or `None` when the port has no IPv4 address
/// (a user-mode network needs one).
pub fn user_net(
    nic: &SpecNic,
    hostname: Option<&str>,
    domain: Option<&str>,
    ssh_forward: bool,
) -> Option<UserNet> {
    let (address, subnet) = nic.addresses.iter().find_map(|a| {
        let ip: Ipv4Addr = a.address.parse().ok()?;
        let net = Net4::parse(&a.subnet.cidr)?;
        net.contains(ip).then_some((ip, (net, &a.subnet)))
    })?;
    let (net, sn) = subnet;
    let taken = |a: Ipv4Addr, others: &[Ipv4Addr]| a == address || others.contains(&a);
    let gateway = sn
        .gateway_ip
        .as_deref()
        .and_then(|g| g.parse::<Ipv4Addr>().ok())
        .filter(|g| net.contains(*g) && *g != address)
        .or_else(|| {
            let mut hosts: Vec<Ipv4Addr> = net.hosts_desc().collect();
            hosts.reverse();
            hosts.into_iter().find(|a| !taken(*a, &[]))
        })?;
    // slirp answers DNS on an address of its own inside the network and forwards
    // the queries to the host's resolver. A DNS server of the subnet that lies
    // inside it is used as that address; otherwise the highest free one.
    let dns = sn
        .dns_nameservers
        .iter()
        .filter_map(|d| d.parse::<Ipv4Addr>().ok())
        .find(|d| net.contains(*d) && !taken(*d, &[gateway]))
        .or_else(|| net.hosts_desc().find(|a| !taken(*a, &[gateway])));
    Some(UserNet {
        net: net.cidr(),
        gateway: gateway.to_string(),
        address: address.to_string(),
        dns: dns.map(|d| d.to_string()),
        hostname: hostname.filter(|h| !h.is_empty()).map(str::to_string),
        domain: domain.filter(|d| !d.is_empty()).map(str::to_string),
        forwards: if ssh_forward {
            vec![HostForward {
                host_addr: "127.0.0.1".into(),
                host_port: 0,
                guest_port: 22,
            }]
        } else {
            Vec::new()
        },
    })
}

/// The host port of the TCP forward to `guest_port`, from the text of HMP's
/// `info usernet` (`TCP[HOST_FORWARD]  13  127.0.0.1 45233  10.0.0.5  22 ...`).
pub fn forwarded_port(info_usernet: &str, guest_port: u16) -> Option<u16> {
    info_usernet.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.first() != Some(&"TCP[HOST_FORWARD]") || f.len() < 7 {
            return None;
        }
        // protocol, fd, source address, source port, dest address, dest port
        let (sport, dport) = (f[3].parse::<u16>().ok()?, f[5].parse::<u16>().ok()?);
        (dport == guest_port).then_some(sport)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferrostack_guest::{GuestIp, GuestSubnet};

    fn nic(addr: &str, cidr: &str, gw: Option<&str>, dns: &[&str]) -> SpecNic {
        SpecNic {
            port_id: "p1".into(),
            network_id: "n1".into(),
            mac: "fa:16:3e:00:00:01".into(),
            fixed_ips: vec![addr.into()],
            mtu: None,
            addresses: vec![GuestIp {
                address: addr.into(),
                subnet: GuestSubnet {
                    id: "s1".into(),
                    cidr: cidr.into(),
                    ip_version: 4,
                    gateway_ip: gw.map(str::to_string),
                    dns_nameservers: dns.iter().map(|d| d.to_string()).collect(),
                    host_routes: vec![],
                    enable_dhcp: true,
                    ipv6_address_mode: None,
                },
            }],
        }
    }

    #[test]
    fn the_port_address_is_the_lease_and_the_gateway_the_router() {
        let u = user_net(
            &nic("10.0.0.5", "10.0.0.0/24", Some("10.0.0.1"), &[]),
            Some("vm1"),
            Some("novalocal"),
            true,
        )
        .unwrap();
        assert_eq!(u.net, "10.0.0.0/24");
        assert_eq!(u.address, "10.0.0.5");
        assert_eq!(u.gateway, "10.0.0.1");
        assert_eq!(u.dns.as_deref(), Some("10.0.0.254"));
        assert_eq!(u.forwards[0].guest_port, 22);
    }

    #[test]
    fn dns_and_gateway_never_collide_with_the_address() {
        let u = user_net(
            &nic("10.0.0.254", "10.0.0.0/24", None, &["8.8.8.8"]),
            None,
            None,
            false,
        )
        .unwrap();
        assert_eq!(u.gateway, "10.0.0.1");
        assert_eq!(u.dns.as_deref(), Some("10.0.0.253"));
        assert!(u.forwards.is_empty());
        let u = user_net(
            &nic("10.1.0.9", "10.1.0.0/28", Some("10.1.0.1"), &["10.1.0.2"]),
            None,
            None,
            false,
        )
        .unwrap();
        assert_eq!(u.dns.as_deref(), Some("10.1.0.2"));
    }

    #[test]
    fn ipv6_only_ports_have_no_user_network() {
        assert!(user_net(&nic("fd00::5", "fd00::/64", None, &[]), None, None, true).is_none());
    }

    #[test]
    fn the_forwarded_port_is_read_from_info_usernet() {
        let text = "Hub -1 (net0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  TCP[HOST_FORWARD]  13       127.0.0.1 45233        10.0.0.5    22     0     0\r\n";
        assert_eq!(forwarded_port(text, 22), Some(45233));
        assert_eq!(forwarded_port(text, 80), None);
        assert_eq!(forwarded_port("", 22), None);
    }
}
