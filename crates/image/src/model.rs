//! An image record as the domain sees it, and the Glance vocabularies (disk and
//! container formats, visibility, member status).

use std::collections::BTreeMap;

use crate::status::Status;

/// Glance's default `disk_formats`.
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
/// Glance's default `container_formats`.
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
    Shared,
    Community,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Community => "community",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            "shared" => Some(Visibility::Shared),
            "community" => Some(Visibility::Community),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: Status,
    pub visibility: Visibility,
    pub protected: bool,
    pub os_hidden: bool,
    pub owner: Option<String>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    /// Where the bytes are (store-specific URL); never shown to users.
    pub location: Option<String>,
    /// Unix microseconds.
    pub created_at_us: i64,
    pub updated_at_us: i64,
    pub tags: Vec<String>,
    /// Custom properties, shown flat beside the core attributes.
    pub properties: BTreeMap<String, String>,
}

impl Image {
    /// A new record as Glance creates it: queued, `shared`, no data.
    pub fn new_queued(id: String, owner: Option<String>, now_us: i64) -> Image {
        Image {
            id,
            name: None,
            status: Status::Queued,
            visibility: Visibility::Shared,
            protected: false,
            os_hidden: false,
            owner,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            size: None,
            virtual_size: None,
            min_disk: 0,
            min_ram: 0,
            disk_format: None,
            container_format: None,
            location: None,
            created_at_us: now_us,
            updated_at_us: now_us,
            tags: Vec::new(),
            properties: BTreeMap::new(),
        }
    }

    pub fn created_at(&self) -> i64 {
        self.created_at_us.div_euclid(1_000_000)
    }

    pub fn updated_at(&self) -> i64 {
        self.updated_at_us.div_euclid(1_000_000)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Accepted,
    Rejected,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<MemberStatus> {
        match s {
            "pending" => Some(MemberStatus::Pending),
            "accepted" => Some(MemberStatus::Accepted),
            "rejected" => Some(MemberStatus::Rejected),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub image_id: String,
    pub member_id: String,
    pub status: MemberStatus,
    pub created_at: i64,
    pub updated_at: i64,
}
