//! Address arithmetic: CIDRs (parsed, normalised, containment, overlap), allocation
//! pools (defaults, validation), walking free addresses, EUI-64 and MAC generation.
//! Addresses are handled as `u128` with their IP version beside them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network: the address with host bits cleared, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub version: u8,
    pub network: u128,
    pub prefix: u8,
}

pub fn to_u128(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(a) => (4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (6, u128::from(a)),
    }
}

pub fn from_u128(version: u8, v: u128) -> IpAddr {
    if version == 4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// Parses an address as Neutron's validators do (no whitespace, no zone).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.trim() != s || s.contains('%') {
        return None;
    }
    s.parse().ok()
}

/// The canonical text of an address (what is stored and compared).
pub fn canonical(ip: &str) -> Option<String> {
    parse_ip(ip).map(|a| a.to_string())
}

fn bits(version: u8) -> u8 {
    if version == 4 { 32 } else { 128 }
}

/// Why a CIDR was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum CidrError {
    /// Not an IP network at all.
    Invalid,
    /// An address without a prefix: Neutron recommends the `/32` or `/128`.
    NoPrefix(String),
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x::/n`; host bits are cleared.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        if s.trim() != s || s.is_empty() {
            return Err(CidrError::Invalid);
        }
        let Some((addr, len)) = s.split_once('/') else {
            return match parse_ip(s) {
                Some(ip) => Err(CidrError::NoPrefix(format!("{ip}/{}", bits(to_u128(ip).0)))),
                None => Err(CidrError::Invalid),
            };
        };
        let ip = parse_ip(addr).ok_or(CidrError::Invalid)?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 3 {
            return Err(CidrError::Invalid);
        }
        let prefix: u8 = len.parse().map_err(|_| CidrError::Invalid)?;
        let (version, v) = to_u128(ip);
        if prefix > bits(version) {
            return Err(CidrError::Invalid);
        }
        Ok(Cidr {
            version,
            network: v & mask(version, prefix),
            prefix,
        })
    }

    /// Parses a CIDR or a bare address (a host route: /32, /128).
    pub fn parse_lenient(s: &str) -> Option<Cidr> {
        match Cidr::parse(s) {
            Ok(c) => Some(c),
            Err(CidrError::NoPrefix(full)) => Cidr::parse(&full).ok(),
            Err(CidrError::Invalid) => None,
        }
    }

    pub fn first(&self) -> u128 {
        self.network
    }

    pub fn last(&self) -> u128 {
        self.network | !mask(self.version, self.prefix) & max(self.version)
    }

    pub fn contains(&self, version: u8, v: u128) -> bool {
        version == self.version && v >= self.first() && v <= self.last()
    }

    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        let (ver, v) = to_u128(ip);
        self.contains(ver, v)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.version == other.version
            && self.first() <= other.last()
            && other.first() <= self.last()
    }

    /// The first and last address a host may use (IPv4 leaves out the network and
    /// broadcast addresses, IPv6 the subnet-router anycast address).
    pub fn host_range(&self) -> (u128, u128) {
        let (f, l) = (self.first(), self.last());
        if self.version == 4 {
            if self.prefix >= 31 {
                (f, l)
            } else {
                (f + 1, l - 1)
            }
        } else if self.prefix >= 127 {
            (f, l)
        } else {
            (f + 1, l)
        }
    }

    pub fn ip(&self, v: u128) -> IpAddr {
        from_u128(self.version, v)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            from_u128(self.version, self.network),
            self.prefix
        )
    }
}

fn max(version: u8) -> u128 {
    if version == 4 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    }
}

fn mask(version: u8, prefix: u8) -> u128 {
    let width = bits(version);
    if prefix == 0 {
        0
    } else {
        (max(version) >> (width - prefix)) << (width - prefix) & max(version)
    }
}

/// An inclusive address range (`start`..=`end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u128,
    pub end: u128,
}

impl Range {
    pub fn contains(&self, v: u128) -> bool {
        v >= self.start && v <= self.end
    }
}

/// Neutron's default pools: the host range less the gateway.
pub fn default_pools(cidr: &Cidr, gateway: Option<u128>) -> Vec<Range> {
    let (start, end) = cidr.host_range();
    let whole = Range { start, end };
    match gateway {
        Some(g) if whole.contains(g) => {
            let mut out = Vec::new();
            if g > start {
                out.push(Range { start, end: g - 1 });
            }
            if g < end {
                out.push(Range { start: g + 1, end });
            }
            out
        }
        _ => vec![whole],
    }
}

/// What is wrong with a set of pools (messages are built by the caller).
#[derive(Debug, PartialEq, Eq)]
pub enum PoolError {
    /// start > end
    Inverted(Range),
    OutOfBounds(Range),
    Overlap(Range, Range),
    Gateway(Range),
}

/// Checks pools against the subnet: ordered, inside the host range, disjoint, and
/// not holding the gateway.
pub fn check_pools(cidr: &Cidr, pools: &[Range], gateway: Option<u128>) -> Result<(), PoolError> {
    let (lo, hi) = cidr.host_range();
    for p in pools {
        if p.start > p.end {
            return Err(PoolError::Inverted(*p));
        }
        if p.start < lo || p.end > hi {
            return Err(PoolError::OutOfBounds(*p));
        }
    }
    for (i, a) in pools.iter().enumerate() {
        for b in &pools[i + 1..] {
            if a.start <= b.end && b.start <= a.end {
                return Err(PoolError::Overlap(*a, *b));
            }
        }
    }
    if let Some(g) = gateway
        && let Some(p) = pools.iter().find(|p| p.contains(g))
    {
        return Err(PoolError::Gateway(*p));
    }
    Ok(())
}

/// Up to `want` free addresses of the pools, in pool order; `taken` is sorted.
pub fn free_addresses(pools: &[Range], taken: &[u128], want: usize) -> Vec<u128> {
    let mut out = Vec::new();
    for p in pools {
        let mut v = p.start;
        // the first taken address at or after v
        let mut i = taken.partition_point(|t| *t < v);
        loop {
            if out.len() >= want {
                return out;
            }
            if i < taken.len() && taken[i] == v {
                i += 1;
            } else {
                out.push(v);
            }
            if v >= p.end {
                break;
            }
            v += 1;
        }
    }
    out
}

/// The EUI-64 address of `mac` in a /64 prefix (SLAAC).
pub fn eui64(cidr: &Cidr, mac: &str) -> Option<u128> {
    let b = parse_mac(mac)?;
    let iid = [b[0] ^ 0x02, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]];
    let iid = u64::from_be_bytes(iid);
    Some(cidr.network | u128::from(iid))
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = if s.contains(':') {
        s.split(':').collect()
    } else {
        s.split('-').collect()
    };
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

pub fn format_mac(b: [u8; 6]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A new MAC from `base_mac`: its non-zero octets kept (the first three always),
/// the others random (Neutron's `get_random_mac`).
pub fn random_mac(base: &str, rng: &mut impl rand::Rng) -> String {
    let b = parse_mac(base).unwrap_or([0xfa, 0x16, 0x3e, 0, 0, 0]);
    let mut out = b;
    for (i, o) in out.iter_mut().enumerate() {
        if i >= 3 && b[i] == 0 {
            *o = rng.r#gen();
        }
    }
    format_mac(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        to_u128(s.parse().unwrap()).1
    }

    #[test]
    fn cidrs_are_normalised_and_validated() {
        let c = Cidr::parse("10.0.0.5/24").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/24");
        assert_eq!(
            Cidr::parse("2001:DB8::1/64").unwrap().to_string(),
            "2001:db8::/64"
        );
        assert_eq!(Cidr::parse("10.0.0.0/33"), Err(CidrError::Invalid));
        assert_eq!(Cidr::parse("abc"), Err(CidrError::Invalid));
        assert_eq!(Cidr::parse("10.0.0.0/"), Err(CidrError::Invalid));
        assert_eq!(Cidr::parse(" 10.0.0.0/8"), Err(CidrError::Invalid));
        assert_eq!(
            Cidr::parse("10.0.0.1"),
            Err(CidrError::NoPrefix("10.0.0.1/32".into()))
        );
        assert_eq!(
            Cidr::parse("0.0.0.0/0").unwrap().last(),
            v4("255.255.255.255")
        );
        assert_eq!(Cidr::parse("::/0").unwrap().last(), u128::MAX);
        assert_eq!(
            Cidr::parse_lenient("1.2.3.4").unwrap().to_string(),
            "1.2.3.4/32"
        );
    }

    #[test]
    fn overlap_and_containment() {
        let a = Cidr::parse("10.0.0.0/24").unwrap();
        let b = Cidr::parse("10.0.0.128/25").unwrap();
        let c = Cidr::parse("10.0.1.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(a.contains_ip("10.0.0.255".parse().unwrap()));
        assert!(!a.contains_ip("10.0.1.0".parse().unwrap()));
        assert!(!a.contains_ip("::1".parse().unwrap()));
    }

    #[test]
    fn default_pools_leave_out_gateway_network_and_broadcast() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        let p = default_pools(&c, Some(v4("10.0.0.1")));
        assert_eq!(
            p,
            vec![Range {
                start: v4("10.0.0.2"),
                end: v4("10.0.0.254")
            }]
        );
        let p = default_pools(&c, Some(v4("10.0.0.100")));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].end, v4("10.0.0.99"));
        assert_eq!(p[1].start, v4("10.0.0.101"));
        let p = default_pools(&c, None);
        assert_eq!(p[0].start, v4("10.0.0.1"));
        let c6 = Cidr::parse("2001:db8::/64").unwrap();
        let p = default_pools(&c6, Some(c6.first() + 1));
        assert_eq!(c6.ip(p[0].start).to_string(), "2001:db8::2");
        assert_eq!(c6.ip(p[0].end).to_string(), "2001:db8::ffff:ffff:ffff:ffff");
    }

    #[test]
    fn pools_are_checked() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        let r = |a: &str, b: &str| Range {
            start: v4(a),
            end: v4(b),
        };
        assert!(check_pools(&c, &[r("10.0.0.10", "10.0.0.20")], Some(v4("10.0.0.1"))).is_ok());
        assert!(matches!(
            check_pools(&c, &[r("10.0.0.20", "10.0.0.10")], None),
            Err(PoolError::Inverted(_))
        ));
        assert!(matches!(
            check_pools(&c, &[r("10.0.0.0", "10.0.0.10")], None),
            Err(PoolError::OutOfBounds(_))
        ));
        assert!(matches!(
            check_pools(&c, &[r("10.0.0.200", "10.0.0.255")], None),
            Err(PoolError::OutOfBounds(_))
        ));
        assert!(matches!(
            check_pools(
                &c,
                &[r("10.0.0.10", "10.0.0.20"), r("10.0.0.20", "10.0.0.30")],
                None
            ),
            Err(PoolError::Overlap(_, _))
        ));
        assert!(matches!(
            check_pools(&c, &[r("10.0.0.1", "10.0.0.20")], Some(v4("10.0.0.1"))),
            Err(PoolError::Gateway(_))
        ));
    }

    #[test]
    fn free_addresses_skip_taken_ones_across_pools() {
        let pools = [Range { start: 10, end: 12 }, Range { start: 20, end: 21 }];
        assert_eq!(free_addresses(&pools, &[10, 12], 10), vec![11, 20, 21]);
        assert_eq!(free_addresses(&pools, &[], 2), vec![10, 11]);
        assert!(free_addresses(&pools, &[10, 11, 12, 20, 21], 5).is_empty());
        // a huge IPv6 pool stays cheap
        let big = [Range {
            start: 1,
            end: u128::MAX - 1,
        }];
        assert_eq!(free_addresses(&big, &[1, 2, 4], 2), vec![3, 5]);
    }

    #[test]
    fn eui64_and_macs() {
        let c = Cidr::parse("2001:db8::/64").unwrap();
        let a = eui64(&c, "fa:16:3e:12:34:56").unwrap();
        assert_eq!(c.ip(a).to_string(), "2001:db8::f816:3eff:fe12:3456");
        let mut rng = rand::thread_rng();
        let m = random_mac("fa:16:3e:00:00:00", &mut rng);
        assert!(m.starts_with("fa:16:3e:"), "{m}");
        assert!(parse_mac(&m).is_some());
        assert_eq!(
            parse_mac("FA-16-3E-00-00-01"),
            Some([0xfa, 0x16, 0x3e, 0, 0, 1])
        );
        assert_eq!(parse_mac("fa:16:3e:00:00"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00:zz"), None);
    }
}
