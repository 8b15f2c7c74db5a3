//! The closed set of actions this EC2 API answers, each parsed once from the
//! request's parameters into typed values. Anything else is `InvalidAction`.

use crate::error::{Error, Result};
use crate::params::{Filter, Params, tag_list};

/// `MaxResults`/`NextToken` of a paginated action.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub max_results: Option<usize>,
    pub next_token: Option<String>,
}

impl Paging {
    fn parse(p: &Params, min: i64, max: i64) -> Result<Paging> {
        let max_results = match p.int("MaxResults")? {
            None => None,
            Some(n) if (min..=max).contains(&n) => Some(n as usize),
            Some(n) => {
                return Err(Error::invalid_value(
                    "MaxResults",
                    &n.to_string(),
                    &format!("Value must be between {min} and {max}."),
                ));
            }
        };
        Ok(Paging {
            max_results,
            next_token: p.string("NextToken").filter(|t| !t.is_empty()),
        })
    }
}

/// RunInstances, as asked.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub image_id: String,
    pub instance_type: String,
    pub min_count: i64,
    pub max_count: i64,
    pub key_name: Option<String>,
    /// Base64, as sent (Nova keeps it base64 too).
    pub user_data: Option<String>,
    pub security_group_ids: Vec<String>,
    pub security_groups: Vec<String>,
    pub subnet_id: Option<String>,
    pub private_ip: Option<String>,
    pub availability_zone: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Tags for the root volume (`TagSpecification` of `volume`).
    pub volume_tags: Vec<(String, String)>,
    /// The root device's size asked in `BlockDeviceMapping` (GiB), if any.
    pub root_size: Option<i64>,
    pub client_token: Option<String>,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub shutdown_behavior: String,
    pub http_tokens: String,
}

/// The attributes of DescribeInstanceAttribute (AWS's whole enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAttr {
    InstanceType,
    Kernel,
    Ramdisk,
    UserData,
    DisableApiTermination,
    InstanceInitiatedShutdownBehavior,
    RootDeviceName,
    BlockDeviceMapping,
    ProductCodes,
    SourceDestCheck,
    GroupSet,
    EbsOptimized,
    SriovNetSupport,
    EnaSupport,
    EnclaveOptions,
    DisableApiStop,
}

impl InstanceAttr {
    fn parse(s: &str) -> Result<InstanceAttr> {
        use InstanceAttr::*;
        Ok(match s {
            "instanceType" => InstanceType,
            "kernel" => Kernel,
            "ramdisk" => Ramdisk,
            "userData" => UserData,
            "disableApiTermination" => DisableApiTermination,
            "instanceInitiatedShutdownBehavior" => InstanceInitiatedShutdownBehavior,
            "rootDeviceName" => RootDeviceName,
            "blockDeviceMapping" => BlockDeviceMapping,
            "productCodes" => ProductCodes,
            "sourceDestCheck" => SourceDestCheck,
            "groupSet" => GroupSet,
            "ebsOptimized" => EbsOptimized,
            "sriovNetSupport" => SriovNetSupport,
            "enaSupport" => EnaSupport,
            "enclaveOptions" => EnclaveOptions,
            "disableApiStop" => DisableApiStop,
            other => {
                return Err(Error::invalid_value(
                    "attribute",
                    other,
                    "Unknown attribute.",
                ));
            }
        })
    }
}

/// What ModifyInstanceAttribute changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrChange {
    DisableApiTermination(bool),
    DisableApiStop(bool),
    SourceDestCheck(bool),
    ShutdownBehavior(String),
    InstanceType(String),
    UserData(String),
    Groups(Vec<String>),
    EbsOptimized(bool),
}

/// One `IpPermissions.N` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// `tcp`/`udp`/`icmp`/`-1` or a number.
    pub protocol: String,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub cidrs: Vec<String>,
    pub cidrs_v6: Vec<String>,
    /// Group ids (or names) the rule admits.
    pub groups: Vec<String>,
}

/// A security group named by id or (in the default VPC) by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Id(String),
    Name(String),
}

#[derive(Debug, Clone)]
pub enum Action {
    DescribeRegions {
        names: Vec<String>,
    },
    DescribeAvailabilityZones {
        names: Vec<String>,
    },
    DescribeImages {
        ids: Vec<String>,
        owners: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeImageAttribute {
        image_id: String,
        attribute: String,
    },
    CreateImage {
        instance_id: String,
        name: String,
        description: Option<String>,
        tags: Vec<(String, String)>,
    },
    RunInstances(Box<RunRequest>),
    DescribeInstances {
        ids: Vec<String>,
        filters: Vec<Filter>,
        paging: Paging,
    },
    DescribeInstanceStatus {
        ids: Vec<String>,
        filters: Vec<Filter>,
        include_all: bool,
        paging: Paging,
    },
    TerminateInstances {
        ids: Vec<String>,
    },
    StopInstances {
        ids: Vec<String>,
    },
    StartInstances {
        ids: Vec<String>,
    },
    RebootInstances {
        ids: Vec<String>,
    },
    GetConsoleOutput {
        id: String,
    },
    GetPasswordData {
        id: String,
    },
    DescribeInstanceAttribute {
        id: String,
        attribute: InstanceAttr,
    },
    ModifyInstanceAttribute {
        id: String,
        change: AttrChange,
    },
    DescribeInstanceTypes {
        types: Vec<String>,
        filters: Vec<Filter>,
        paging: Paging,
    },
    CreateKeyPair {
        name: String,
        key_type: String,
        tags: Vec<(String, String)>,
    },
    ImportKeyPair {
        name: String,
        public_key: String,
        tags: Vec<(String, String)>,
    },
    DescribeKeyPairs {
        names: Vec<String>,
        ids: Vec<String>,
        filters: Vec<Filter>,
        include_public_key: bool,
    },
    DeleteKeyPair {
        name: Option<String>,
        id: Option<String>,
    },
    DescribeSecurityGroups {
        ids: Vec<String>,
        names: Vec<String>,
        filters: Vec<Filter>,
    },
    CreateSecurityGroup {
        name: String,
        description: String,
        vpc_id: Option<String>,
        tags: Vec<(String, String)>,
    },
    DeleteSecurityGroup {
        group: GroupRef,
    },
    AuthorizeSecurityGroupIngress {
        group: GroupRef,
        permissions: Vec<Permission>,
    },
    RevokeSecurityGroupIngress {
        group: GroupRef,
        permissions: Vec<Permission>,
    },
    AuthorizeSecurityGroupEgress {
        group: GroupRef,
        permissions: Vec<Permission>,
    },
    RevokeSecurityGroupEgress {
        group: GroupRef,
        permissions: Vec<Permission>,
    },
    CreateTags {
        resources: Vec<String>,
        tags: Vec<(String, String)>,
    },
    DeleteTags {
        resources: Vec<String>,
        /// A key alone deletes whatever its value; with a value, only that value.
        tags: Vec<(String, Option<String>)>,
    },
    DescribeTags {
        filters: Vec<Filter>,
        paging: Paging,
    },
    DescribeVpcs {
        ids: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeSubnets {
        ids: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeVolumes {
        ids: Vec<String>,
        filters: Vec<Filter>,
        paging: Paging,
    },
    DescribeAccountAttributes {
        names: Vec<String>,
    },
    GetCallerIdentity,
}

impl Action {
    /// The action's name (the root element of its answer is `{name}Response`).
    pub fn name(&self) -> &'static str {
        use Action::*;
        match self {
            DescribeRegions { .. } => "DescribeRegions",
            DescribeAvailabilityZones { .. } => "DescribeAvailabilityZones",
            DescribeImages { .. } => "DescribeImages",
            DescribeImageAttribute { .. } => "DescribeImageAttribute",
            CreateImage { .. } => "CreateImage",
            RunInstances(_) => "RunInstances",
            DescribeInstances { .. } => "DescribeInstances",
            DescribeInstanceStatus { .. } => "DescribeInstanceStatus",
            TerminateInstances { .. } => "TerminateInstances",
            StopInstances { .. } => "StopInstances",
            StartInstances { .. } => "StartInstances",
            RebootInstances { .. } => "RebootInstances",
            GetConsoleOutput { .. } => "GetConsoleOutput",
            GetPasswordData { .. } => "GetPasswordData",
            DescribeInstanceAttribute { .. } => "DescribeInstanceAttribute",
            ModifyInstanceAttribute { .. } => "ModifyInstanceAttribute",
            DescribeInstanceTypes { .. } => "DescribeInstanceTypes",
            CreateKeyPair { .. } => "CreateKeyPair",
            ImportKeyPair { .. } => "ImportKeyPair",
            DescribeKeyPairs { .. } => "DescribeKeyPairs",
            DeleteKeyPair { .. } => "DeleteKeyPair",
            DescribeSecurityGroups { .. } => "DescribeSecurityGroups",
            CreateSecurityGroup { .. } => "CreateSecurityGroup",
            DeleteSecurityGroup { .. } => "DeleteSecurityGroup",
            AuthorizeSecurityGroupIngress { .. } => "AuthorizeSecurityGroupIngress",
            RevokeSecurityGroupIngress { .. } => "RevokeSecurityGroupIngress",
            AuthorizeSecurityGroupEgress { .. } => "AuthorizeSecurityGroupEgress",
            RevokeSecurityGroupEgress { .. } => "RevokeSecurityGroupEgress",
            CreateTags { .. } => "CreateTags",
            DeleteTags { .. } => "DeleteTags",
            DescribeTags { .. } => "DescribeTags",
            DescribeVpcs { .. } => "DescribeVpcs",
            DescribeSubnets { .. } => "DescribeSubnets",
            DescribeVolumes { .. } => "DescribeVolumes",
            DescribeAccountAttributes { .. } => "DescribeAccountAttributes",
            GetCallerIdentity => "GetCallerIdentity",
        }
    }

    /// Whether this is STS's action (answered in STS's awsquery dialect).
    pub fn is_sts(&self) -> bool {
        matches!(self, Action::GetCallerIdentity)
    }

    /// Parses `Action` and its parameters.
    pub fn parse(p: &Params) -> Result<Action> {
        let name = p.get("Action").ok_or_else(|| Error::missing("Action"))?;
        use Action::*;
        Ok(match name {
            "DescribeRegions" => DescribeRegions {
                names: p.list("RegionName"),
            },
            "DescribeAvailabilityZones" => DescribeAvailabilityZones {
                names: p.list("ZoneName"),
            },
            "DescribeImages" => DescribeImages {
                ids: p.list("ImageId"),
                owners: p.list("Owner"),
                filters: p.filters()?,
            },
            "DescribeImageAttribute" => DescribeImageAttribute {
                image_id: p.required("ImageId")?.to_string(),
                attribute: p.required("Attribute")?.to_string(),
            },
            "CreateImage" => CreateImage {
                instance_id: p.required("InstanceId")?.to_string(),
                name: p.required("Name")?.to_string(),
                description: p.string("Description"),
                tags: p.tag_specs("image")?,
            },
            "RunInstances" => RunInstances(Box::new(parse_run(p)?)),
            "DescribeInstances" => {
                let ids = p.list("InstanceId");
                let paging = Paging::parse(p, 5, 1000)?;
                if !ids.is_empty() && paging.max_results.is_some() {
                    return Err(Error::combination(
                        "The parameter instancesSet cannot be used with the parameter maxResults",
                    ));
                }
                DescribeInstances {
                    ids,
                    filters: p.filters()?,
                    paging,
                }
            }
            "DescribeInstanceStatus" => DescribeInstanceStatus {
                ids: p.list("InstanceId"),
                filters: p.filters()?,
                include_all: p.bool("IncludeAllInstances")?.unwrap_or(false),
                paging: Paging::parse(p, 5, 1000)?,
            },
            "TerminateInstances" => TerminateInstances {
                ids: required_list(p, "InstanceId")?,
            },
            "StopInstances" => StopInstances {
                ids: required_list(p, "InstanceId")?,
            },
            "StartInstances" => StartInstances {
                ids: required_list(p, "InstanceId")?,
            },
            "RebootInstances" => RebootInstances {
                ids: required_list(p, "InstanceId")?,
            },
            "GetConsoleOutput" => GetConsoleOutput {
                id: p.required("InstanceId")?.to_string(),
            },
            "GetPasswordData" => GetPasswordData {
                id: p.required("InstanceId")?.to_string(),
            },
            "DescribeInstanceAttribute" => DescribeInstanceAttribute {
                id: p.required("InstanceId")?.to_string(),
                attribute: InstanceAttr::parse(p.required("Attribute")?)?,
            },
            "ModifyInstanceAttribute" => ModifyInstanceAttribute {
                id: p.required("InstanceId")?.to_string(),
                change: parse_change(p)?,
            },
            "DescribeInstanceTypes" => DescribeInstanceTypes {
                types: p.list("InstanceType"),
                filters: p.filters()?,
                paging: Paging::parse(p, 5, 100)?,
            },
            "CreateKeyPair" => CreateKeyPair {
                name: key_name(p)?,
                key_type: match p.get("KeyType").unwrap_or("rsa") {
                    t @ ("rsa" | "ed25519") => t.to_string(),
                    other => return Err(Error::invalid_value("KeyType", other, "")),
                },
                tags: p.tag_specs("key-pair")?,
            },
            "ImportKeyPair" => ImportKeyPair {
                name: key_name(p)?,
                public_key: decode_public_key(p.required("PublicKeyMaterial")?)?,
                tags: p.tag_specs("key-pair")?,
            },
            "DescribeKeyPairs" => DescribeKeyPairs {
                names: p.list("KeyName"),
                ids: p.list("KeyPairId"),
                filters: p.filters()?,
                include_public_key: p.bool("IncludePublicKey")?.unwrap_or(false),
            },
            "DeleteKeyPair" => {
                let name = p.string("KeyName").filter(|n| !n.is_empty());
                let id = p.string("KeyPairId").filter(|n| !n.is_empty());
                if name.is_none() && id.is_none() {
                    return Err(Error::missing("KeyName"));
                }
                DeleteKeyPair { name, id }
            }
            "DescribeSecurityGroups" => DescribeSecurityGroups {
                ids: p.list("GroupId"),
                names: p.list("GroupName"),
                filters: p.filters()?,
            },
            "CreateSecurityGroup" => CreateSecurityGroup {
                name: p.required("GroupName")?.to_string(),
                description: p
                    .get("GroupDescription")
                    .or(p.get("Description"))
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| Error::missing("GroupDescription"))?
                    .to_string(),
                vpc_id: p.string("VpcId").filter(|v| !v.is_empty()),
                tags: p.tag_specs("security-group")?,
            },
            "DeleteSecurityGroup" => DeleteSecurityGroup {
                group: group_ref(p)?,
            },
            "AuthorizeSecurityGroupIngress" => AuthorizeSecurityGroupIngress {
                group: group_ref(p)?,
                permissions: permissions(p)?,
            },
            "RevokeSecurityGroupIngress" => RevokeSecurityGroupIngress {
                group: group_ref(p)?,
                permissions: permissions(p)?,
            },
            "AuthorizeSecurityGroupEgress" => AuthorizeSecurityGroupEgress {
                group: group_ref(p)?,
                permissions: permissions(p)?,
            },
            "RevokeSecurityGroupEgress" => RevokeSecurityGroupEgress {
                group: group_ref(p)?,
                permissions: permissions(p)?,
            },
            "CreateTags" => {
                let tags = tag_list(p, "Tag")?;
                if tags.is_empty() {
                    return Err(Error::missing("Tag"));
                }
                CreateTags {
                    resources: required_list(p, "ResourceId")?,
                    tags,
                }
            }
            "DeleteTags" => DeleteTags {
                resources: required_list(p, "ResourceId")?,
                tags: p
                    .structs("Tag")
                    .into_iter()
                    .map(|t| {
                        let key = t.get("Key").unwrap_or_default();
                        if key.is_empty() {
                            return Err(Error::missing("Tag.N.Key"));
                        }
                        Ok((key.to_string(), t.string("Value")))
                    })
                    .collect::<Result<_>>()?,
            },
            "DescribeTags" => DescribeTags {
                filters: p.filters()?,
                paging: Paging::parse(p, 5, 1000)?,
            },
            "DescribeVpcs" => DescribeVpcs {
                ids: p.list("VpcId"),
                filters: p.filters()?,
            },
            "DescribeSubnets" => DescribeSubnets {
                ids: p.list("SubnetId"),
                filters: p.filters()?,
            },
            "DescribeVolumes" => DescribeVolumes {
                ids: p.list("VolumeId"),
                filters: p.filters()?,
                paging: Paging::parse(p, 5, 500)?,
            },
            "DescribeAccountAttributes" => DescribeAccountAttributes {
                names: p.list("AttributeName"),
            },
            "GetCallerIdentity" => GetCallerIdentity,
            other => return Err(Error::invalid_action(other)),
        })
    }
}

fn required_list(p: &Params, prefix: &str) -> Result<Vec<String>> {
    let l = p.list(prefix);
    if l.is_empty() {
        return Err(Error::missing(&format!("{prefix}.1")));
    }
    Ok(l)
}

fn key_name(p: &Params) -> Result<String> {
    let name = p.required("KeyName")?;
    if name.len() > 255 || name.chars().any(|c| c.is_control()) {
        return Err(Error::invalid_value("KeyName", name, ""));
    }
    Ok(name.to_string())
}

/// PublicKeyMaterial is base64 of the key on the wire (botocore encodes it);
/// a raw OpenSSH line is taken as it is.
fn decode_public_key(raw: &str) -> Result<String> {
    use base64::Engine as _;
    let raw = raw.trim();
    if raw.starts_with("ssh-") || raw.starts_with("ecdsa-") {
        return Ok(raw.to_string());
    }
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.trim().to_string())
        .ok_or_else(|| {
            Error::new(
                400,
                "InvalidKeyPair.Format",
                "Key is not in valid OpenSSH public key format",
            )
        })
}

fn group_ref(p: &Params) -> Result<GroupRef> {
    match (
        p.string("GroupId").filter(|g| !g.is_empty()),
        p.string("GroupName").filter(|g| !g.is_empty()),
    ) {
        (Some(id), _) => Ok(GroupRef::Id(id)),
        (None, Some(name)) => Ok(GroupRef::Name(name)),
        (None, None) => Err(Error::missing("GroupId")),
    }
}

fn permissions(p: &Params) -> Result<Vec<Permission>> {
    let mut out = Vec::new();
    for ip in p.structs("IpPermissions") {
        let protocol = ip.required("IpProtocol")?.to_ascii_lowercase();
        out.push(Permission {
            protocol,
            from_port: ip.int("FromPort")?,
            to_port: ip.int("ToPort")?,
            cidrs: ip
                .structs("IpRanges")
                .iter()
                .filter_map(|r| r.string("CidrIp"))
                .collect(),
            cidrs_v6: ip
                .structs("Ipv6Ranges")
                .iter()
                .filter_map(|r| r.string("CidrIpv6"))
                .collect(),
            groups: ip
                .structs("Groups")
                .iter()
                .filter_map(|g| g.string("GroupId").or(g.string("GroupName")))
                .collect(),
        });
    }
    // The old flat form: IpProtocol/FromPort/ToPort/CidrIp at the top level.
    if out.is_empty()
        && let Some(proto) = p.get("IpProtocol")
    {
        out.push(Permission {
            protocol: proto.to_ascii_lowercase(),
            from_port: p.int("FromPort")?,
            to_port: p.int("ToPort")?,
            cidrs: p.string("CidrIp").into_iter().collect(),
            cidrs_v6: vec![],
            groups: p.string("SourceSecurityGroupName").into_iter().collect(),
        });
    }
    if out.is_empty() {
        return Err(Error::missing("IpPermissions"));
    }
    Ok(out)
}

fn parse_run(p: &Params) -> Result<RunRequest> {
    let min_count = p
        .int("MinCount")?
        .ok_or_else(|| Error::missing("MinCount"))?;
    let max_count = p
        .int("MaxCount")?
        .ok_or_else(|| Error::missing("MaxCount"))?;
    if min_count < 1 {
        return Err(Error::invalid_value(
            "MinCount",
            &min_count.to_string(),
            "Must be at least 1.",
        ));
    }
    if max_count < min_count {
        return Err(Error::invalid_value(
            "MaxCount",
            &max_count.to_string(),
            "Must be at least MinCount.",
        ));
    }
    let user_data = p.string("UserData").filter(|u| !u.is_empty());
    if let Some(u) = &user_data {
        use base64::Engine as _;
        if base64::engine::general_purpose::STANDARD.decode(u).is_err() {
            return Err(Error::invalid_value(
                "UserData",
                "(hidden)",
                "Invalid BASE64 encoding of user data.",
            ));
        }
    }
    let meta = p.sub("MetadataOptions");
    let http_tokens = match meta.get("HttpTokens").unwrap_or("optional") {
        t @ ("optional" | "required") => t.to_string(),
        other => {
            return Err(Error::invalid_value(
                "MetadataOptions.HttpTokens",
                other,
                "",
            ));
        }
    };
    let client_token = p.string("ClientToken").filter(|t| !t.is_empty());
    if client_token.as_ref().is_some_and(|t| t.len() > 64) {
        return Err(Error::invalid_value(
            "ClientToken",
            client_token.as_deref().unwrap_or_default(),
            "The length must be at most 64 characters.",
        ));
    }
    Ok(RunRequest {
        image_id: p.required("ImageId")?.to_string(),
        instance_type: p.get("InstanceType").unwrap_or("m1.small").to_string(),
        min_count,
        max_count,
        key_name: p.string("KeyName").filter(|k| !k.is_empty()),
        user_data,
        security_group_ids: p.list("SecurityGroupId"),
        security_groups: p.list("SecurityGroup"),
        subnet_id: p
            .string("SubnetId")
            .or_else(|| p.string("NetworkInterface.1.SubnetId"))
            .filter(|s| !s.is_empty()),
        private_ip: p.string("PrivateIpAddress").filter(|s| !s.is_empty()),
        availability_zone: p
            .string("Placement.AvailabilityZone")
            .filter(|s| !s.is_empty()),
        tags: p.tag_specs("instance")?,
        volume_tags: p.tag_specs("volume")?,
        root_size: root_device(p)?,
        client_token,
        disable_api_termination: p.bool("DisableApiTermination")?.unwrap_or(false),
        disable_api_stop: p.bool("DisableApiStop")?.unwrap_or(false),
        shutdown_behavior: match p.get("InstanceInitiatedShutdownBehavior").unwrap_or("stop") {
            b @ ("stop" | "terminate") => b.to_string(),
            other => {
                return Err(Error::invalid_value(
                    "InstanceInitiatedShutdownBehavior",
                    other,
                    "",
                ));
            }
        },
        http_tokens,
    })
}

/// `BlockDeviceMapping.N`: only the root device (`/dev/vda`), deleted with the
/// instance, of the flavor's size (checked at launch), on this cloud's one volume
/// type, is what ferrostack's root disks are; anything else is refused rather
/// than silently not done. Returns the size asked, if any.
fn root_device(p: &Params) -> Result<Option<i64>> {
    let bad = |m: String| Error::new(400, "InvalidBlockDeviceMapping", m);
    let mut size = None;
    for m in p.structs("BlockDeviceMapping") {
        let dev = m.get("DeviceName").unwrap_or_default();
        if !matches!(dev, "/dev/vda" | "vda") {
            return Err(bad(format!(
                "Only the root device /dev/vda can be mapped here (no extra volumes): {dev}"
            )));
        }
        if m.get("NoDevice").is_some() || m.get("VirtualName").is_some() {
            return Err(bad(
                "The root device cannot be suppressed or be an instance store.".into(),
            ));
        }
        let ebs = m.sub("Ebs");
        if ebs.bool("DeleteOnTermination")? == Some(false) {
            return Err(bad(
                "Root disks are deleted with their instance here (DeleteOnTermination=false is not available)."
                    .into(),
            ));
        }
        if let Some(t) = ebs.get("VolumeType").filter(|t| *t != "standard") {
            return Err(bad(format!(
                "The volume type {t} is not available (this cloud has one: standard)."
            )));
        }
        if ebs.bool("Encrypted")? == Some(true) {
            return Err(bad(
                "Encrypted root disks come from an instance type whose flavor has hw:ephemeral_encryption."
                    .into(),
            ));
        }
        if ebs.get("SnapshotId").is_some_and(|s| !s.is_empty()) {
            return Err(bad(
                "Root disks come from the image, not from a snapshot.".into()
            ));
        }
        size = ebs.int("VolumeSize")?;
    }
    Ok(size)
}

fn parse_change(p: &Params) -> Result<AttrChange> {
    let bool_of = |k: &str| -> Result<Option<bool>> {
        match p.bool(&format!("{k}.Value"))? {
            Some(b) => Ok(Some(b)),
            None => p.bool(k),
        }
    };
    let value_of = |k: &str| p.string(&format!("{k}.Value")).or_else(|| p.string(k));
    if let Some(b) = bool_of("DisableApiTermination")? {
        return Ok(AttrChange::DisableApiTermination(b));
    }
    if let Some(b) = bool_of("DisableApiStop")? {
        return Ok(AttrChange::DisableApiStop(b));
    }
    if let Some(b) = bool_of("SourceDestCheck")? {
        return Ok(AttrChange::SourceDestCheck(b));
    }
    if let Some(b) = bool_of("EbsOptimized")? {
        return Ok(AttrChange::EbsOptimized(b));
    }
    if let Some(v) = value_of("InstanceInitiatedShutdownBehavior") {
        return match v.as_str() {
            "stop" | "terminate" => Ok(AttrChange::ShutdownBehavior(v)),
            _ => Err(Error::invalid_value(
                "InstanceInitiatedShutdownBehavior",
                &v,
                "",
            )),
        };
    }
    if let Some(v) = value_of("InstanceType") {
        return Ok(AttrChange::InstanceType(v));
    }
    if let Some(v) = value_of("UserData") {
        return Ok(AttrChange::UserData(v));
    }
    let groups = p.list("GroupId");
    if !groups.is_empty() {
        return Ok(AttrChange::Groups(groups));
    }
    // The generic form: Attribute=disableApiTermination&Value=true.
    if let (Some(attr), Some(v)) = (p.get("Attribute"), p.get("Value")) {
        let b = || {
            v.parse::<bool>()
                .map_err(|_| Error::invalid_value("Value", v, "Expected a boolean."))
        };
        return Ok(match attr {
            "disableApiTermination" => AttrChange::DisableApiTermination(b()?),
            "disableApiStop" => AttrChange::DisableApiStop(b()?),
            "sourceDestCheck" => AttrChange::SourceDestCheck(b()?),
            "ebsOptimized" => AttrChange::EbsOptimized(b()?),
            "instanceInitiatedShutdownBehavior" => AttrChange::ShutdownBehavior(v.to_string()),
            "instanceType" => AttrChange::InstanceType(v.to_string()),
            "userData" => AttrChange::UserData(v.to_string()),
            other => {
                return Err(Error::invalid_value(
                    "Attribute",
                    other,
                    "Unknown attribute.",
                ));
            }
        });
    }
    Err(Error::missing("Attribute"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn unknown_and_missing_actions_are_refused_with_aws_codes() {
        let e = Action::parse(&params(&[("Action", "LaunchMissiles")])).unwrap_err();
        assert_eq!(e.code, "InvalidAction");
        let e = Action::parse(&params(&[])).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        let e = Action::parse(&params(&[
            ("Action", "RunInstances"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ]))
        .unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            (
                "MissingParameter",
                "The request must contain the parameter ImageId"
            )
        );
    }

    #[test]
    fn describe_instances_refuses_ids_with_max_results() {
        let e = Action::parse(&params(&[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", "i-1"),
            ("MaxResults", "5"),
        ]))
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterCombination");
        let e = Action::parse(&params(&[
            ("Action", "DescribeInstances"),
            ("MaxResults", "4"),
        ]))
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[test]
    fn run_instances_reads_every_member() {
        let a = Action::parse(&params(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-1"),
            ("InstanceType", "m1.tiny"),
            ("MinCount", "1"),
            ("MaxCount", "2"),
            ("SecurityGroupId.1", "sg-1"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web"),
            ("MetadataOptions.HttpTokens", "required"),
            ("UserData", "aGk="),
            ("ClientToken", "abc"),
        ]))
        .unwrap();
        let Action::RunInstances(r) = a else { panic!() };
        assert_eq!(r.max_count, 2);
        assert_eq!(r.security_group_ids, vec!["sg-1"]);
        assert_eq!(r.tags, vec![("Name".into(), "web".into())]);
        assert_eq!(r.http_tokens, "required");
        assert_eq!(r.client_token.as_deref(), Some("abc"));
        let e = Action::parse(&params(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-1"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("UserData", "***"),
        ]))
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[test]
    fn attributes_follow_awss_enum() {
        for a in [
            "disableApiStop",
            "userData",
            "instanceInitiatedShutdownBehavior",
            "enclaveOptions",
        ] {
            assert!(InstanceAttr::parse(a).is_ok(), "{a}");
        }
        assert!(InstanceAttr::parse("nope").is_err());
        let a = Action::parse(&params(&[
            ("Action", "ModifyInstanceAttribute"),
            ("InstanceId", "i-1"),
            ("DisableApiTermination.Value", "false"),
        ]))
        .unwrap();
        assert!(matches!(
            a,
            Action::ModifyInstanceAttribute {
                change: AttrChange::DisableApiTermination(false),
                ..
            }
        ));
    }
}
