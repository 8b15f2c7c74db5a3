//! What virsh prints, read: `list --all --managed-save` rows, libvirt's domain
//! states mapped to Nova's power states (a domain libvirt reports crashed or does
//! not know is never `Running`), the reason of a stop, and the `<graphics>`
//! elements of `dumpxml --security-info` (where a console listens, its password).

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::domain::GraphicsKind;
use crate::driver::{PowerState, StopCause};

/// `virsh -q list --all --managed-save` → (name, state) per domain.
pub fn parse_list(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let _id = f.next()?;
            let name = f.next()?;
            let state = f.collect::<Vec<_>>().join(" ");
            (!state.is_empty()).then(|| (name.to_string(), state))
        })
        .collect()
}

/// libvirt's state word → Nova's power state (Nova's `LIBVIRT_POWER_STATE`;
/// `saved` is `list --managed-save`'s word for a managed-saved domain, Nova's
/// SUSPENDED).
pub fn power_state(state: &str) -> PowerState {
    // `domstate --reason` adds " (reason)"
    let word = state.split(" (").next().unwrap_or(state).trim();
    match word {
        "running" | "idle" | "in shutdown" | "blocked" => PowerState::Running,
        "paused" => PowerState::Paused,
        "shut off" | "shutoff" => PowerState::Shutdown,
        "saved" | "pmsuspended" => PowerState::Suspended,
        "crashed" => PowerState::Crashed,
        _ => PowerState::NoState,
    }
}

/// Why a domain that should run stopped, from `domstate --reason`: the guest
/// powered off (`shut off (shutdown)`), or anything else (destroyed from outside,
/// QEMU killed or crashed, `crashed (...)`).
pub fn stop_cause(domstate: &str) -> StopCause {
    if domstate.starts_with("shut off (shutdown)") {
        StopCause::GuestShutdown
    } else {
        StopCause::Crashed
    }
}

/// One `<graphics>` element of a live domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGraphics {
    pub kind: GraphicsKind,
    /// The port QEMU listens on (`-1` before the start: `None`).
    pub port: Option<u16>,
    pub autoport: bool,
    pub listen: Option<String>,
    pub passwd: Option<String>,
}

/// Every VNC/SPICE `<graphics>` of a domain XML.
pub fn graphics(xml: &str) -> Vec<LiveGraphics> {
    let mut r = Reader::from_str(xml);
    let mut out: Vec<LiveGraphics> = Vec::new();
    loop {
        let ev = match r.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(ev) => ev,
        };
        match ev {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"graphics" => {
                let mut kind = None;
                let mut g = LiveGraphics {
                    kind: GraphicsKind::Vnc,
                    port: None,
                    autoport: false,
                    listen: None,
                    passwd: None,
                };
                for a in e.attributes().flatten() {
                    let v = a
                        .unescape_value()
                        .map(|v| v.into_owned())
                        .unwrap_or_default();
                    match a.key.as_ref() {
                        b"type" => {
                            kind = match v.as_str() {
                                "vnc" => Some(GraphicsKind::Vnc),
                                "spice" => Some(GraphicsKind::Spice),
                                _ => None,
                            }
                        }
                        b"port" => g.port = v.parse::<u16>().ok().filter(|p| *p > 0),
                        b"autoport" => g.autoport = v == "yes",
                        b"listen" => g.listen = Some(v),
                        b"passwd" => g.passwd = Some(v),
                        _ => {}
                    }
                }
                if let Some(k) = kind {
                    g.kind = k;
                    out.push(g);
                }
            }
            Event::Empty(e) if e.name().as_ref() == b"listen" => {
                // <graphics><listen type='address' address='...'/></graphics>
                if let Some(last) = out.last_mut()
                    && last.listen.is_none()
                {
                    for a in e.attributes().flatten() {
                        if a.key.as_ref() == b"address" {
                            last.listen = a.unescape_value().ok().map(|v| v.into_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn list_rows() {
        let out =
            " 3    instance-a   running\n -    instance-b   shut off\n -    instance-c   saved\n\n";
        assert_eq!(
            parse_list(out),
            vec![
                ("instance-a".to_string(), "running".to_string()),
                ("instance-b".into(), "shut off".into()),
                ("instance-c".into(), "saved".into()),
            ]
        );
    }

    #[test]
    fn states_map_to_nova() {
        assert_eq!(power_state("running"), PowerState::Running);
        assert_eq!(power_state("running (booted)"), PowerState::Running);
        assert_eq!(power_state("paused (user)"), PowerState::Paused);
        assert_eq!(power_state("shut off"), PowerState::Shutdown);
        assert_eq!(power_state("shut off (destroyed)"), PowerState::Shutdown);
        assert_eq!(power_state("saved"), PowerState::Suspended);
        assert_eq!(power_state("crashed (panicked)"), PowerState::Crashed);
        assert_eq!(power_state("no state"), PowerState::NoState);
        assert_eq!(stop_cause("shut off (shutdown)"), StopCause::GuestShutdown);
        assert_eq!(stop_cause("shut off (destroyed)"), StopCause::Crashed);
        assert_eq!(stop_cause("shut off (crashed)"), StopCause::Crashed);
    }

    #[test]
    fn graphics_of_a_live_domain() {
        let xml = r#"<domain type='qemu'><devices>
  <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1' passwd='pw&amp;1'>
    <listen type='address' address='127.0.0.1'/>
  </graphics>
  <graphics type='spice' port='5901' autoport='yes' passwd='pw2'>
    <listen type='address' address='127.0.0.2'/>
    <image compression='off'/>
  </graphics>
  <graphics type='spice' autoport='yes'/>
</devices></domain>"#;
        let g = graphics(xml);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].kind, GraphicsKind::Vnc);
        assert_eq!(g[0].port, Some(5900));
        assert_eq!(g[0].passwd.as_deref(), Some("pw&1"));
        assert_eq!(g[0].listen.as_deref(), Some("127.0.0.1"));
        assert_eq!(g[1].kind, GraphicsKind::Spice);
        assert_eq!(g[1].listen.as_deref(), Some("127.0.0.2"));
        assert_eq!(g[2].port, None);
    }
}
