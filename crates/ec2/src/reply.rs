//! What each action answers: the members of its `{Action}Response` (the api
//! crate adds the root element, namespace and `requestId`).

use serde::Serialize;

use crate::model::*;

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Regions(RegionsReply),
    Zones(ZonesReply),
    Images(ImagesReply),
    ImageAttribute(ImageAttributeReply),
    ImageId(ImageIdReply),
    Reservation(Reservation),
    Instances(InstancesReply),
    InstanceStatus(InstanceStatusReply),
    StateChanges(StateChangesReply),
    Return(ReturnReply),
    ConsoleOutput(ConsoleOutputReply),
    PasswordData(PasswordDataReply),
    InstanceAttribute(Box<InstanceAttributeReply>),
    InstanceTypes(InstanceTypesReply),
    KeyPair(KeyPairReply),
    KeyPairs(KeyPairsReply),
    DeletedKeyPair(DeletedKeyPairReply),
    SecurityGroups(SecurityGroupsReply),
    CreatedGroup(CreatedGroupReply),
    Tags(TagsReply),
    Vpcs(VpcsReply),
    Subnets(SubnetsReply),
    Volumes(VolumesReply),
    AccountAttributes(AccountAttributesReply),
    CallerIdentity(CallerIdentityReply),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionsReply {
    pub region_info: Items<Region>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZonesReply {
    pub availability_zone_info: Items<Zone>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagesReply {
    pub images_set: Items<Image>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageAttributeReply {
    pub image_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Value<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_permission: Option<Items<LaunchPermission>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_device_mapping: Option<Items<Bdm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_codes: Option<Items<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<Value<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Items<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramdisk: Option<Items<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imds_support: Option<Value<&'static str>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPermission {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIdReply {
    pub image_id: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstancesReply {
    pub reservation_set: Items<Reservation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatusReply {
    pub instance_status_set: Items<InstanceStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChangesReply {
    pub instances_set: Items<StateChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReturnReply {
    #[serde(rename = "return")]
    pub ret: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleOutputReply {
    pub instance_id: String,
    pub timestamp: String,
    pub output: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordDataReply {
    pub instance_id: String,
    pub timestamp: String,
    pub password_data: String,
}

#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InstanceAttributeReply {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<Value<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Items<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramdisk: Option<Items<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserDataValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_api_termination: Option<Value<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_initiated_shutdown_behavior: Option<Value<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_device_name: Option<Value<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_device_mapping: Option<Items<InstanceBdm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_codes: Option<Items<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_dest_check: Option<Value<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_set: Option<Items<Group>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ebs_optimized: Option<Value<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sriov_net_support: Option<Items<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ena_support: Option<Value<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclave_options: Option<Enabled>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_api_stop: Option<Value<bool>>,
}

/// `userData`: `<value>` only when the instance has user data.
#[derive(Debug, Clone, Serialize)]
pub struct UserDataValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceTypesReply {
    pub instance_type_set: Items<InstanceType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairReply {
    pub key_pair_id: String,
    pub key_name: String,
    pub key_fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material: Option<String>,
    pub tag_set: Items<Tag>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairsReply {
    pub key_set: Items<KeyPairInfo>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedKeyPairReply {
    #[serde(rename = "return")]
    pub ret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_pair_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupsReply {
    pub security_group_info: Items<SecurityGroup>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedGroupReply {
    #[serde(rename = "return")]
    pub ret: bool,
    pub group_id: String,
    pub security_group_arn: String,
    pub tag_set: Items<Tag>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagsReply {
    pub tag_set: Items<TagDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcsReply {
    pub vpc_set: Items<Vpc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetsReply {
    pub subnet_set: Items<Subnet>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumesReply {
    pub volume_set: Items<Volume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeValue {
    pub attribute_value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAttribute {
    pub attribute_name: String,
    pub attribute_value_set: Items<AttributeValue>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAttributesReply {
    pub account_attribute_set: Items<AccountAttribute>,
}

/// STS: `<GetCallerIdentityResult>` inside the response (awsquery).
#[derive(Debug, Clone, Serialize)]
pub struct CallerIdentityReply {
    #[serde(rename = "GetCallerIdentityResult")]
    pub result: CallerIdentity,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallerIdentity {
    #[serde(rename = "Arn")]
    pub arn: String,
    #[serde(rename = "UserId")]
    pub user_id: String,
    #[serde(rename = "Account")]
    pub account: String,
}

/// Offset paging with an opaque token (`NextToken`), for lists built in memory.
pub fn page<T>(
    items: Vec<T>,
    max: Option<usize>,
    token: Option<&str>,
) -> crate::Result<(Vec<T>, Option<String>)> {
    let start = match token {
        None => 0,
        Some(t) => t
            .strip_prefix("fs1.")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                crate::Error::invalid_value("NextToken", t, "Invalid pagination token.")
            })?,
    };
    let Some(max) = max else {
        return Ok((items.into_iter().skip(start).collect(), None));
    };
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + out.len() < total).then(|| format!("fs1.{}", start + out.len()));
    Ok((out, next))
}
