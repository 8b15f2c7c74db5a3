//! The hypervisor seam. [`Driver`] is the only way the host side (the compute
//! agent) touches a hypervisor; it speaks a [`SpawnSpec`] — everything a guest
//! needs, resolved — never database rows. Drivers: [`fake::FakeDriver`] (in memory,
//! optionally persisted, with delays and injected failures), [`prepare::PrepareDriver`]
//! (the host-side pipeline without a hypervisor) and [`qemu::QemuDriver`] (real
//! guests: detached QEMU processes driven over QMP, user-mode networking).

pub use ferrostack_guest as guest;

pub mod disk;
pub mod domain;
pub mod driver;
pub mod fake;
pub mod libvirt;
pub mod metadata_route;
pub mod pipeline;
pub mod prepare;
pub mod probe;
pub mod qemu;
pub mod usernet;

pub use driver::{
    ConsoleEndpoint, ConsoleKind, ConsoleTarget, Driver, DriverError, GuestEvent, HostResources,
    InstanceInfo, PowerState, SnapshotSpec, SpawnSpec, SpecNic, StopCause,
};
