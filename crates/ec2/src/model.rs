//! The AWS data model of the answers, with EC2's element names (the
//! `locationName`s of the EC2 service model): serialized to XML by the api crate,
//! which adds the envelope. Lists are `<fooSet><item>…</item></fooSet>`.
//! Fields AWS always sends are always present; optional ones are skipped, never
//! sent empty.

use serde::Serialize;

/// `<xSet><item/>…</xSet>`.
#[derive(Debug, Clone, Serialize)]
pub struct Items<T> {
    pub item: Vec<T>,
}

impl<T> From<Vec<T>> for Items<T> {
    fn from(item: Vec<T>) -> Self {
        Items { item }
    }
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items { item: Vec::new() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Value<T> {
    pub value: T,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

pub fn tag_items(tags: impl IntoIterator<Item = (String, String)>) -> Items<Tag> {
    tags.into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect::<Vec<_>>()
        .into()
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub region_name: String,
    pub region_endpoint: String,
    pub opt_in_status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Zone {
    pub zone_name: String,
    pub zone_state: &'static str,
    pub region_name: String,
    pub zone_id: String,
    pub zone_type: &'static str,
    pub opt_in_status: &'static str,
    pub group_name: String,
    pub network_border_group: String,
    pub message_set: Items<()>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub code: i32,
    pub name: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub group_id: String,
    pub group_name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub availability_zone: String,
    pub group_name: String,
    pub tenancy: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EbsDevice {
    pub volume_id: String,
    pub status: &'static str,
    pub attach_time: String,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceBdm {
    pub device_name: String,
    pub ebs: EbsDevice,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EniAttachment {
    pub attachment_id: String,
    pub device_index: i32,
    pub status: &'static str,
    pub attach_time: String,
    pub delete_on_termination: bool,
    pub network_card_index: i32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateIp {
    pub private_ip_address: String,
    pub private_dns_name: String,
    pub primary: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eni {
    pub network_interface_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub description: String,
    pub owner_id: String,
    pub status: &'static str,
    pub mac_address: String,
    pub private_ip_address: String,
    pub private_dns_name: String,
    pub source_dest_check: bool,
    pub interface_type: &'static str,
    pub group_set: Items<Group>,
    pub attachment: EniAttachment,
    pub private_ip_addresses_set: Items<PrivateIp>,
    pub ipv6_addresses_set: Items<()>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    pub state: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuOptions {
    pub core_count: i64,
    pub threads_per_core: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOptions {
    pub state: &'static str,
    pub http_tokens: String,
    pub http_put_response_hop_limit: i32,
    pub http_endpoint: &'static str,
    pub http_protocol_ipv6: &'static str,
    pub instance_metadata_tags: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Configured {
    pub configured: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub instance_id: String,
    pub image_id: String,
    pub instance_state: State,
    pub private_dns_name: String,
    pub dns_name: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    pub ami_launch_index: i64,
    pub product_codes: Items<()>,
    pub instance_type: String,
    pub launch_time: String,
    pub placement: Placement,
    pub monitoring: Monitoring,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
    pub source_dest_check: bool,
    pub group_set: Items<Group>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<Reason>,
    pub architecture: &'static str,
    pub root_device_type: &'static str,
    pub root_device_name: &'static str,
    pub block_device_mapping: Items<InstanceBdm>,
    pub virtualization_type: &'static str,
    pub client_token: String,
    pub tag_set: Items<Tag>,
    pub hypervisor: &'static str,
    pub network_interface_set: Items<Eni>,
    pub ebs_optimized: bool,
    pub ena_support: bool,
    pub cpu_options: CpuOptions,
    pub capacity_reservation_specification: CapacityReservation,
    pub hibernation_options: Configured,
    pub metadata_options: MetadataOptions,
    pub enclave_options: Enabled,
    pub boot_mode: &'static str,
    pub platform_details: &'static str,
    pub usage_operation: &'static str,
    pub usage_operation_update_time: String,
    pub private_dns_name_options: PrivateDnsNameOptions,
    pub maintenance_options: MaintenanceOptions,
    pub current_instance_boot_mode: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReservation {
    pub capacity_reservation_preference: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateDnsNameOptions {
    pub hostname_type: &'static str,
    pub enable_resource_name_dns_a_record: bool,
    #[serde(rename = "enableResourceNameDnsAAAARecord")]
    pub enable_resource_name_dns_aaaa_record: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceOptions {
    pub auto_recovery: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub reservation_id: String,
    pub owner_id: String,
    pub group_set: Items<Group>,
    pub instances_set: Items<Instance>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    pub instance_id: String,
    pub current_state: State,
    pub previous_state: State,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetail {
    pub name: &'static str,
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSummary {
    pub status: &'static str,
    pub details: Items<StatusDetail>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    pub instance_id: String,
    pub availability_zone: String,
    pub instance_state: State,
    pub system_status: StatusSummary,
    pub instance_status: StatusSummary,
    pub attached_ebs_status: StatusSummary,
    pub events_set: Items<()>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BdmEbs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    pub volume_size: i64,
    pub delete_on_termination: bool,
    pub volume_type: &'static str,
    pub encrypted: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bdm {
    pub device_name: &'static str,
    pub ebs: BdmEbs,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub image_id: String,
    pub image_location: String,
    pub image_state: &'static str,
    pub image_owner_id: String,
    pub creation_date: String,
    pub is_public: bool,
    pub product_codes: Items<()>,
    pub architecture: String,
    pub image_type: &'static str,
    pub platform_details: &'static str,
    pub usage_operation: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub root_device_type: &'static str,
    pub root_device_name: &'static str,
    pub block_device_mapping: Items<Bdm>,
    pub virtualization_type: &'static str,
    pub hypervisor: &'static str,
    pub ena_support: bool,
    pub boot_mode: &'static str,
    pub imds_support: &'static str,
    pub tag_set: Items<Tag>,
    pub deregistration_protection: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorInfo {
    pub supported_architectures: Items<&'static str>,
    pub sustained_clock_speed_in_ghz: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VCpuInfo {
    pub default_v_cpus: i64,
    pub default_cores: i64,
    pub default_threads_per_core: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryInfo {
    #[serde(rename = "sizeInMiB")]
    pub size_in_mib: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    #[serde(rename = "sizeInGB")]
    pub size_in_gb: i64,
    pub count: i64,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageInfo {
    #[serde(rename = "totalSizeInGB")]
    pub total_size_in_gb: i64,
    pub disks: Items<Disk>,
    pub nvme_support: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EbsInfo {
    pub ebs_optimized_support: &'static str,
    pub encryption_support: &'static str,
    pub nvme_support: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInfo {
    pub network_performance: &'static str,
    pub maximum_network_interfaces: i64,
    pub maximum_network_cards: i64,
    pub default_network_card_index: i64,
    pub ipv4_addresses_per_interface: i64,
    pub ipv6_addresses_per_interface: i64,
    pub ipv6_supported: bool,
    pub ena_support: &'static str,
    pub efa_supported: bool,
    pub encryption_in_transit_supported: bool,
    pub ena_srd_supported: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementGroupInfo {
    pub supported_strategies: Items<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceType {
    pub instance_type: String,
    pub current_generation: bool,
    pub free_tier_eligible: bool,
    pub supported_usage_classes: Items<&'static str>,
    pub supported_root_device_types: Items<&'static str>,
    pub supported_virtualization_types: Items<&'static str>,
    pub bare_metal: bool,
    pub hypervisor: &'static str,
    pub processor_info: ProcessorInfo,
    pub v_cpu_info: VCpuInfo,
    pub memory_info: MemoryInfo,
    pub instance_storage_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_storage_info: Option<StorageInfo>,
    pub ebs_info: EbsInfo,
    pub network_info: NetworkInfo,
    pub placement_group_info: PlacementGroupInfo,
    pub hibernation_supported: bool,
    pub burstable_performance_supported: bool,
    pub dedicated_hosts_supported: bool,
    pub auto_recovery_supported: bool,
    pub supported_boot_modes: Items<&'static str>,
    pub nitro_enclaves_support: &'static str,
    pub nitro_tpm_support: &'static str,
    pub phc_support: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairInfo {
    pub key_pair_id: String,
    pub key_name: String,
    pub key_fingerprint: String,
    pub key_type: String,
    pub create_time: String,
    pub tag_set: Items<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRange {
    pub cidr_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv6Range {
    pub cidr_ipv6: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPair {
    pub user_id: String,
    pub group_id: String,
    pub group_name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpPermission {
    pub ip_protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i64>,
    pub groups: Items<GroupPair>,
    pub ip_ranges: Items<IpRange>,
    pub ipv6_ranges: Items<Ipv6Range>,
    pub prefix_list_ids: Items<()>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub owner_id: String,
    pub group_id: String,
    pub group_name: String,
    pub group_description: String,
    pub vpc_id: String,
    pub security_group_arn: String,
    pub ip_permissions: Items<IpPermission>,
    pub ip_permissions_egress: Items<IpPermission>,
    pub tag_set: Items<Tag>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagDescription {
    pub resource_id: String,
    pub resource_type: &'static str,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CidrAssociation {
    pub cidr_block: String,
    pub association_id: String,
    pub cidr_block_state: StateName,
}

#[derive(Debug, Clone, Serialize)]
pub struct StateName {
    pub state: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Vpc {
    pub vpc_id: String,
    pub owner_id: String,
    pub state: &'static str,
    pub cidr_block: String,
    pub cidr_block_association_set: Items<CidrAssociation>,
    pub ipv6_cidr_block_association_set: Items<()>,
    pub dhcp_options_id: &'static str,
    pub instance_tenancy: &'static str,
    pub is_default: bool,
    pub tag_set: Items<Tag>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub subnet_id: String,
    pub subnet_arn: String,
    pub state: &'static str,
    pub owner_id: String,
    pub vpc_id: String,
    pub cidr_block: String,
    pub ipv6_cidr_block_association_set: Items<()>,
    pub available_ip_address_count: i64,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
    pub map_customer_owned_ip_on_launch: bool,
    pub assign_ipv6_address_on_creation: bool,
    pub enable_dns64: bool,
    pub ipv6_native: bool,
    pub private_dns_name_options_on_launch: SubnetDnsOptions,
    pub tag_set: Items<Tag>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetDnsOptions {
    pub hostname_type: &'static str,
    pub enable_resource_name_dns_a_record: bool,
    #[serde(rename = "enableResourceNameDnsAAAARecord")]
    pub enable_resource_name_dns_aaaa_record: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeAttachment {
    pub volume_id: String,
    pub instance_id: String,
    pub device: String,
    pub status: &'static str,
    pub attach_time: String,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub volume_id: String,
    pub size: i64,
    pub snapshot_id: String,
    pub availability_zone: String,
    pub status: &'static str,
    pub create_time: String,
    pub attachment_set: Items<VolumeAttachment>,
    pub volume_type: &'static str,
    pub encrypted: bool,
    pub multi_attach_enabled: bool,
    pub iops: i64,
    pub tag_set: Items<Tag>,
}
