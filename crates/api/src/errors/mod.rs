//! Error dialects: each OpenStack API has its own error body shape. Domain errors
//! are mapped to status + body in exactly one place per dialect.

pub mod ec2;
pub mod glance;
pub mod keystone;
pub mod neutron;
pub mod nova;
