//! What the cloud offers: regions, availability zones, instance types (flavors),
//! images (Glance) and the root disks as volumes; account attributes and STS's
//! caller identity.

use ferrostack_compute::flavors::{Flavor, FlavorQuery};
use ferrostack_core::RequestContext;
use ferrostack_image::{Image as GlanceImage, Status, Visibility};

use crate::action::Paging;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::ids::{Kind, ec2_id};
use crate::instances::{ids_account, iso_us, now_us};
use crate::model::*;
use crate::params::{Filter, all_match};
use crate::reply::*;
use crate::{Ec2, Reply};

/// AND across filters, each matched against the values `field` gives for its
/// name (`None`: the resource has no such filter).
fn filters_hold(
    filters: &[Filter],
    mut field: impl FnMut(&str) -> Option<Vec<String>>,
) -> Result<bool> {
    all_match(filters, |f| {
        field(&f.name).map(|values| f.matches_any(values.iter().map(String::as_str)))
    })
}

impl Ec2 {
    pub(crate) fn default_zone(&self) -> String {
        let z = &self.compute.settings().compute.availability_zone;
        if z.is_empty() {
            "nova".into()
        } else {
            z.clone()
        }
    }

    pub(crate) fn describe_regions(&self, names: &[String]) -> Result<Reply> {
        let region = &self.settings.region;
        if let Some(n) = names.iter().find(|n| *n != region) {
            return Err(Error::new(
                400,
                "InvalidParameterValue",
                format!("Invalid region: {n}"),
            ));
        }
        Ok(Reply::Regions(RegionsReply {
            region_info: vec![Region {
                region_name: region.clone(),
                region_endpoint: self.settings.endpoint.clone(),
                opt_in_status: "opt-in-not-required",
            }]
            .into(),
        }))
    }

    pub(crate) async fn describe_zones(
        &self,
        ctx: &RequestContext,
        names: &[String],
    ) -> Result<Reply> {
        let zones = self.compute.availability_zones(ctx, false).await?;
        let mut out = Vec::new();
        for z in zones {
            if !names.is_empty() && !names.contains(&z.name) {
                continue;
            }
            out.push(Zone {
                zone_state: if z.available {
                    "available"
                } else {
                    "unavailable"
                },
                region_name: self.settings.region.clone(),
                zone_id: z.name.clone(),
                zone_type: "availability-zone",
                opt_in_status: "opt-in-not-required",
                group_name: self.settings.region.clone(),
                network_border_group: self.settings.region.clone(),
                message_set: Items::default(),
                zone_name: z.name,
            });
        }
        if let Some(n) = names
            .iter()
            .find(|n| !out.iter().any(|z| &&z.zone_name == n))
        {
            return Err(Error::new(
                400,
                "InvalidParameterValue",
                format!("The zone '{n}' does not exist."),
            ));
        }
        Ok(Reply::Zones(ZonesReply {
            availability_zone_info: out.into(),
        }))
    }

    pub(crate) async fn flavors(&self, ctx: &RequestContext) -> Result<Vec<Flavor>> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let q = FlavorQuery {
                marker: marker.clone(),
                limit: Some("1000".into()),
                ..Default::default()
            };
            let (page, more) = self.compute.list_flavors(ctx, &q).await?;
            marker = page.last().map(|f| f.id.clone());
            let n = page.len();
            out.extend(page);
            if !more || n == 0 {
                break;
            }
        }
        Ok(out)
    }

    pub(crate) async fn flavor_by_name(&self, ctx: &RequestContext, name: &str) -> Result<Flavor> {
        self.flavors(ctx)
            .await?
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| Error::invalid_value("InstanceType", name, ""))
    }

    pub(crate) async fn describe_instance_types(
        &self,
        ctx: &RequestContext,
        types: &[String],
        filters: &[Filter],
        paging: &Paging,
    ) -> Result<Reply> {
        let flavors = self.flavors(ctx).await?;
        for t in types {
            if !flavors.iter().any(|f| &f.name == t) {
                return Err(Error::new(
                    400,
                    "InvalidInstanceType",
                    format!("The following supplied instance types do not exist: [{t}]"),
                ));
            }
        }
        let mut out = Vec::new();
        for f in flavors.into_iter().filter(|f| !f.disabled) {
            if !types.is_empty() && !types.contains(&f.name) {
                continue;
            }
            let ok = filters_hold(filters, |name| match name {
                "instance-type" => Some(vec![f.name.clone()]),
                "vcpu-info.default-vcpus" => Some(vec![f.vcpus.to_string()]),
                "memory-info.size-in-mib" => Some(vec![f.memory_mb.to_string()]),
                "current-generation" => Some(vec!["true".into()]),
                "burstable-performance-supported" => Some(vec!["false".into()]),
                "processor-info.supported-architecture" => Some(vec!["x86_64".into()]),
                _ => None,
            })?;
            if !ok {
                continue;
            }
            let storage = f.root_gb + f.ephemeral_gb;
            out.push(InstanceType {
                instance_type: f.name.clone(),
                current_generation: true,
                free_tier_eligible: false,
                supported_usage_classes: vec!["on-demand"].into(),
                supported_root_device_types: vec!["ebs"].into(),
                supported_virtualization_types: vec!["hvm"].into(),
                bare_metal: false,
                hypervisor: "xen",
                processor_info: ProcessorInfo {
                    supported_architectures: vec!["x86_64"].into(),
                    sustained_clock_speed_in_ghz: 2.0,
                },
                v_cpu_info: VCpuInfo {
                    default_v_cpus: f.vcpus,
                    default_cores: f.vcpus,
                    default_threads_per_core: 1,
                },
                memory_info: MemoryInfo {
                    size_in_mib: f.memory_mb,
                },
                instance_storage_supported: storage > 0,
                instance_storage_info: (storage > 0).then(|| StorageInfo {
                    total_size_in_gb: storage,
                    disks: vec![Disk {
                        size_in_gb: storage,
                        count: 1,
                        kind: "ssd",
                    }]
                    .into(),
                    nvme_support: "unsupported",
                }),
                ebs_info: EbsInfo {
                    ebs_optimized_support: "unsupported",
                    encryption_support: "supported",
                    nvme_support: "unsupported",
                },
                network_info: NetworkInfo {
                    network_performance: "Moderate",
                    maximum_network_interfaces: 8,
                    maximum_network_cards: 1,
                    default_network_card_index: 0,
                    ipv4_addresses_per_interface: 1,
                    ipv6_addresses_per_interface: 0,
                    ipv6_supported: false,
                    ena_support: "unsupported",
                    efa_supported: false,
                    encryption_in_transit_supported: false,
                    ena_srd_supported: false,
                },
                placement_group_info: PlacementGroupInfo {
                    supported_strategies: vec!["spread"].into(),
                },
                hibernation_supported: false,
                burstable_performance_supported: false,
                dedicated_hosts_supported: false,
                auto_recovery_supported: false,
                supported_boot_modes: vec!["legacy-bios"].into(),
                nitro_enclaves_support: "unsupported",
                nitro_tpm_support: "unsupported",
                phc_support: "unsupported",
            });
        }
        let (page, next) = page(out, paging.max_results, paging.next_token.as_deref())?;
        Ok(Reply::InstanceTypes(InstanceTypesReply {
            instance_type_set: page.into(),
            next_token: next,
        }))
    }

    /// Every image the caller can see, remembered.
    pub(crate) async fn glance_images(&self, ctx: &RequestContext) -> Result<Vec<GlanceImage>> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let q = ferrostack_image::query::ListQuery {
                limit: 1000,
                marker: marker.clone(),
                sort: vec![("created_at".into(), false), ("id".into(), false)],
                filters: vec![],
            };
            let (page, more) = self.images.list(ctx, &q).await?;
            marker = page.last().map(|i| i.id.clone());
            let n = page.len();
            out.extend(page);
            if !more || n == 0 {
                break;
            }
        }
        let pairs: Vec<(&str, &str)> = out
            .iter()
            .map(|i| (i.id.as_str(), i.owner.as_deref().unwrap_or("")))
            .collect();
        self.remember(Kind::Image, &pairs).await?;
        Ok(out)
    }

    fn image_view(&self, i: &GlanceImage) -> Image {
        let owner = ids_account(i.owner.as_deref().unwrap_or(""));
        let tags = i
            .properties
            .iter()
            .filter(|(k, _)| is_tag_property(k))
            .map(|(k, v)| (k.clone(), v.clone()));
        Image {
            image_id: ec2_id(Kind::Image, &i.id),
            image_location: format!("{}/{}", owner, i.name.clone().unwrap_or_default()),
            image_state: match i.status {
                Status::Active => "available",
                Status::Queued | Status::Saving | Status::Uploading | Status::Importing => {
                    "pending"
                }
                Status::Deactivated => "disabled",
                Status::Killed => "failed",
                Status::PendingDelete | Status::Deleted => "deregistered",
            },
            image_owner_id: owner,
            creation_date: iso_us(i.created_at_us),
            is_public: matches!(i.visibility, Visibility::Public),
            product_codes: Items::default(),
            architecture: i
                .properties
                .get("architecture")
                .or(i.properties.get("hw_architecture"))
                .cloned()
                .filter(|a| a == "x86_64" || a == "arm64" || a == "i386")
                .unwrap_or_else(|| "x86_64".into()),
            image_type: "machine",
            platform_details: "Linux/UNIX",
            usage_operation: "RunInstances",
            name: i.name.clone().unwrap_or_default(),
            description: i.properties.get("description").cloned(),
            root_device_type: "ebs",
            root_device_name: "/dev/vda",
            block_device_mapping: vec![Bdm {
                device_name: "/dev/vda",
                ebs: BdmEbs {
                    snapshot_id: None,
                    volume_size: ((i.virtual_size.or(i.size).unwrap_or(0) + (1 << 30) - 1) >> 30)
                        .max(i.min_disk)
                        .max(1),
                    delete_on_termination: true,
                    volume_type: "standard",
                    encrypted: false,
                },
            }]
            .into(),
            virtualization_type: "hvm",
            hypervisor: "xen",
            ena_support: false,
            boot_mode: "legacy-bios",
            imds_support: "v2.0",
            tag_set: tag_items(tags),
            deregistration_protection: "disabled",
        }
    }

    pub(crate) async fn describe_images(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        owners: &[String],
        filters: &[Filter],
    ) -> Result<Reply> {
        let project = Self::project(ctx)?;
        let images = self.glance_images(ctx).await?;
        for id in ids {
            Kind::Image.check(id)?;
            if !images.iter().any(|i| ec2_id(Kind::Image, &i.id) == *id) {
                return Err(Kind::Image.not_found(id));
            }
        }
        let me = ids_account(project);
        let mut out = Vec::new();
        for i in &images {
            if matches!(i.status, Status::Deleted | Status::PendingDelete) {
                continue;
            }
            let v = self.image_view(i);
            if !ids.is_empty() && !ids.contains(&v.image_id) {
                continue;
            }
            if !owners.is_empty()
                && !owners
                    .iter()
                    .any(|o| (o == "self" && v.image_owner_id == me) || *o == v.image_owner_id)
            {
                continue;
            }
            let ok = filters_hold(filters, |name| {
                if let Some(key) = name.strip_prefix("tag:") {
                    return Some(
                        v.tag_set
                            .item
                            .iter()
                            .filter(|t| t.key == key)
                            .map(|t| t.value.clone())
                            .collect(),
                    );
                }
                match name {
                    "image-id" => Some(vec![v.image_id.clone()]),
                    "name" => Some(vec![v.name.clone()]),
                    "state" => Some(vec![v.image_state.to_string()]),
                    "owner-id" => Some(vec![v.image_owner_id.clone()]),
                    "is-public" => Some(vec![v.is_public.to_string()]),
                    "architecture" => Some(vec![v.architecture.clone()]),
                    "image-type" => Some(vec!["machine".into()]),
                    "root-device-type" => Some(vec!["ebs".into()]),
                    "virtualization-type" => Some(vec!["hvm".into()]),
                    "description" => Some(v.description.clone().into_iter().collect()),
                    "tag-key" => Some(v.tag_set.item.iter().map(|t| t.key.clone()).collect()),
                    _ => None,
                }
            })?;
            if ok {
                out.push(v);
            }
        }
        Ok(Reply::Images(ImagesReply {
            images_set: out.into(),
        }))
    }

    pub(crate) async fn image(&self, ctx: &RequestContext, id: &str) -> Result<GlanceImage> {
        let os = self.resolve(Kind::Image, id).await?;
        match self.images.get(ctx, &os).await {
            Ok(i) => Ok(i),
            Err(ferrostack_image::Error::NotFound(_) | ferrostack_image::Error::Forbidden(_)) => {
                Err(Kind::Image.not_found(id))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn describe_image_attribute(
        &self,
        ctx: &RequestContext,
        id: &str,
        attribute: &str,
    ) -> Result<Reply> {
        let i = self.image(ctx, id).await?;
        let v = self.image_view(&i);
        let mut r = ImageAttributeReply {
            image_id: id.to_string(),
            description: None,
            launch_permission: None,
            block_device_mapping: None,
            product_codes: None,
            boot_mode: None,
            kernel: None,
            ramdisk: None,
            imds_support: None,
        };
        match attribute {
            "description" => {
                r.description = Some(Value {
                    value: v.description.unwrap_or_default(),
                })
            }
            "launchPermission" => {
                r.launch_permission = Some(if v.is_public {
                    vec![LaunchPermission {
                        group: Some("all"),
                        user_id: None,
                    }]
                    .into()
                } else {
                    Items::default()
                })
            }
            "blockDeviceMapping" => r.block_device_mapping = Some(v.block_device_mapping),
            "productCodes" => r.product_codes = Some(Items::default()),
            "bootMode" => {
                r.boot_mode = Some(Value {
                    value: "legacy-bios",
                })
            }
            "kernel" => r.kernel = Some(Items::default()),
            "ramdisk" => r.ramdisk = Some(Items::default()),
            "imdsSupport" => r.imds_support = Some(Value { value: "v2.0" }),
            "sriovNetSupport"
            | "uefiData"
            | "lastLaunchedTime"
            | "tpmSupport"
            | "deregistrationProtection" => {}
            other => {
                return Err(Error::invalid_value(
                    "Attribute",
                    other,
                    "Unknown attribute.",
                ));
            }
        }
        Ok(Reply::ImageAttribute(r))
    }

    pub(crate) async fn create_image(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        name: String,
        description: Option<String>,
        tags: Vec<(String, String)>,
        request_id: &str,
    ) -> Result<Reply> {
        let os = self.resolve(Kind::Instance, instance_id).await?;
        let mut metadata: std::collections::BTreeMap<String, String> = tags.into_iter().collect();
        if let Some(d) = description {
            metadata.insert("description".into(), d);
        }
        let out = self
            .compute
            .server_action(
                ctx,
                &os,
                ferrostack_compute::servers::ops::Action::CreateImage { name, metadata },
                request_id,
            )
            .await
            .map_err(|e| match e {
                ferrostack_compute::Error::NotFound(_) => Kind::Instance.not_found(instance_id),
                other => other.into(),
            })?;
        let image = out
            .image_id
            .ok_or_else(|| Error::internal("createImage gave no image id"))?;
        self.remember(Kind::Image, &[(image.as_str(), Self::project(ctx)?)])
            .await?;
        Ok(Reply::ImageId(ImageIdReply {
            image_id: ec2_id(Kind::Image, &image),
        }))
    }

    pub(crate) async fn describe_volumes(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        filters: &[Filter],
        paging: &Paging,
    ) -> Result<Reply> {
        let servers = self.compute.project_servers(ctx, now_us()).await?;
        let pairs: Vec<(&str, &str)> = servers
            .iter()
            .map(|s| (s.id.as_str(), s.project_id.as_str()))
            .collect();
        self.remember(Kind::Volume, &pairs).await?;
        self.remember(Kind::Instance, &pairs).await?;
        let stored = crate::records::tags(&self.db, Self::project(ctx)?).await?;
        let mut out = Vec::new();
        for s in &servers {
            if s.deleted {
                continue;
            }
            let vol = ec2_id(Kind::Volume, &s.id);
            let vol_tags = stored.get(&vol).cloned().unwrap_or_default();
            let inst = ec2_id(Kind::Instance, &s.id);
            let at = iso_us(s.launched_at_us.unwrap_or(s.created_at_us));
            let v = Volume {
                volume_id: vol.clone(),
                size: s.root_gb.max(1),
                snapshot_id: String::new(),
                availability_zone: s
                    .availability_zone
                    .clone()
                    .unwrap_or_else(|| self.default_zone()),
                status: "in-use",
                create_time: iso_us(s.created_at_us),
                attachment_set: vec![VolumeAttachment {
                    volume_id: vol,
                    instance_id: inst.clone(),
                    device: "/dev/vda".into(),
                    status: "attached",
                    attach_time: at,
                    delete_on_termination: true,
                }]
                .into(),
                volume_type: "standard",
                encrypted: s
                    .doc
                    .flavor
                    .extra_specs
                    .get("hw:ephemeral_encryption")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                multi_attach_enabled: false,
                iops: 0,
                tag_set: tag_items(vol_tags.clone()),
            };
            let ok = filters_hold(filters, |name| match name {
                "volume-id" => Some(vec![v.volume_id.clone()]),
                "attachment.instance-id" => Some(vec![inst.clone()]),
                "attachment.device" => Some(vec!["/dev/vda".into()]),
                "attachment.status" => Some(vec!["attached".into()]),
                "attachment.delete-on-termination" => Some(vec!["true".into()]),
                "availability-zone" => Some(vec![v.availability_zone.clone()]),
                "status" => Some(vec!["in-use".into()]),
                "size" => Some(vec![v.size.to_string()]),
                "volume-type" => Some(vec!["standard".into()]),
                "encrypted" => Some(vec![v.encrypted.to_string()]),
                _ => None,
            })?;
            if ok {
                out.push(v);
            }
        }
        for id in ids {
            Kind::Volume.check(id)?;
            if !out.iter().any(|v| &v.volume_id == id)
                && !servers
                    .iter()
                    .any(|s| !s.deleted && ec2_id(Kind::Volume, &s.id) == *id)
            {
                return Err(Kind::Volume.not_found(id));
            }
        }
        if !ids.is_empty() {
            out.retain(|v| ids.contains(&v.volume_id));
        }
        let (page, next) = page(out, paging.max_results, paging.next_token.as_deref())?;
        Ok(Reply::Volumes(VolumesReply {
            volume_set: page.into(),
            next_token: next,
        }))
    }

    pub(crate) fn account_attributes(&self, names: &[String]) -> Reply {
        let all = [
            ("supported-platforms", vec!["VPC"]),
            ("default-vpc", vec!["default"]),
            ("max-instances", vec!["20"]),
            ("vpc-max-security-groups-per-interface", vec!["5"]),
            ("max-elastic-ips", vec!["0"]),
            ("vpc-max-elastic-ips", vec!["0"]),
        ];
        let out = all
            .into_iter()
            .filter(|(n, _)| names.is_empty() || names.iter().any(|x| x == n))
            .map(|(n, vals)| AccountAttribute {
                attribute_name: n.to_string(),
                attribute_value_set: vals
                    .into_iter()
                    .map(|v| AttributeValue {
                        attribute_value: v.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .into(),
            })
            .collect::<Vec<_>>();
        Reply::AccountAttributes(AccountAttributesReply {
            account_attribute_set: out.into(),
        })
    }

    pub(crate) fn caller_identity(&self, caller: &Caller) -> Reply {
        let account = ids_account(caller.ctx.project_id().unwrap_or_default());
        Reply::CallerIdentity(CallerIdentityReply {
            result: CallerIdentity {
                arn: format!("arn:aws:iam::{account}:user/{}", caller.ctx.user_name),
                user_id: caller.ctx.user_id.clone(),
                account,
            },
        })
    }
}

/// Image properties that are EC2 tags: the custom ones, not Glance's or the
/// hypervisor's well-known keys.
pub(crate) fn is_tag_property(k: &str) -> bool {
    !(k.starts_with("os_")
        || k.starts_with("hw_")
        || k.starts_with("img_")
        || k.starts_with("owner_")
        || matches!(
            k,
            "architecture"
                | "kernel_id"
                | "ramdisk_id"
                | "instance_uuid"
                | "image_type"
                | "base_image_ref"
                | "image_location"
                | "image_state"
                | "user_id"
                | "description"
                | "boot_roles"
                | "bdm_v2"
                | "block_device_mapping"
                | "root_device_name"
                | "stores"
                | "backup_type"
        ))
}
