//! Property tests of the Query API's parameter parsing (`params.rs`, `action.rs`):
//! hostile parameter maps — every action name, the members each action reads,
//! numbered members with odd indexes, arbitrary values — never make the parser
//! panic, and what it accepts is what was asked. `scripts/fuzz-ec2sig` runs this
//! (with the signature properties) for a given time; `PROPTEST_CASES` sets the
//! cases per run (default 512).

use std::collections::BTreeMap;

use ferrostack_ec2::action::Action;
use ferrostack_ec2::params::{Params, glob};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const ACTIONS: &[&str] = &[
    "DescribeRegions",
    "DescribeAvailabilityZones",
    "DescribeImages",
    "DescribeImageAttribute",
    "CreateImage",
    "RunInstances",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "TerminateInstances",
    "StopInstances",
    "StartInstances",
    "RebootInstances",
    "GetConsoleOutput",
    "GetPasswordData",
    "DescribeInstanceAttribute",
    "ModifyInstanceAttribute",
    "DescribeInstanceTypes",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPair",
    "DescribeSecurityGroups",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "RevokeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupEgress",
    "CreateTags",
    "DeleteTags",
    "DescribeTags",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeVolumes",
    "DescribeAccountAttributes",
    "GetCallerIdentity",
    "",
    "describeinstances",
    "Describe Instances",
];

/// Member names the actions read, with `N` to be replaced by an index.
const MEMBERS: &[&str] = &[
    "InstanceId.N",
    "ImageId",
    "ImageId.N",
    "InstanceType",
    "InstanceType.N",
    "MinCount",
    "MaxCount",
    "KeyName",
    "KeyName.N",
    "KeyType",
    "PublicKeyMaterial",
    "UserData",
    "ClientToken",
    "SecurityGroupId.N",
    "SecurityGroup.N",
    "SubnetId",
    "PrivateIpAddress",
    "Placement.AvailabilityZone",
    "MetadataOptions.HttpTokens",
    "TagSpecification.N.ResourceType",
    "TagSpecification.N.Tag.N.Key",
    "TagSpecification.N.Tag.N.Value",
    "Filter.N.Name",
    "Filter.N.Value.N",
    "MaxResults",
    "NextToken",
    "IncludeAllInstances",
    "Attribute",
    "Value",
    "DisableApiTermination.Value",
    "DisableApiStop.Value",
    "SourceDestCheck.Value",
    "InstanceInitiatedShutdownBehavior.Value",
    "UserData.Value",
    "GroupId",
    "GroupId.N",
    "GroupName",
    "GroupName.N",
    "GroupDescription",
    "VpcId",
    "IpProtocol",
    "FromPort",
    "ToPort",
    "CidrIp",
    "IpPermissions.N.IpProtocol",
    "IpPermissions.N.FromPort",
    "IpPermissions.N.ToPort",
    "IpPermissions.N.IpRanges.N.CidrIp",
    "IpPermissions.N.Ipv6Ranges.N.CidrIpv6",
    "IpPermissions.N.Groups.N.GroupId",
    "ResourceId.N",
    "Tag.N.Key",
    "Tag.N.Value",
    "Name",
    "Description",
    "RegionName.N",
    "ZoneName.N",
    "Owner.N",
    "AttributeName.N",
    "DryRun",
];

fn index() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..4).prop_map(|n| n.to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("4294967296".to_string()),
        Just("".to_string()),
        Just("x".to_string()),
        Just("1.2".to_string()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prop::sample::select(MEMBERS), index(), index(), index()).prop_map(|(m, a, b, c)| {
            let mut out = String::new();
            let mut idx = [a, b, c].into_iter();
            for ch in m.chars() {
                if ch == 'N' && (out.ends_with('.') || out.is_empty()) {
                    out.push_str(&idx.next().unwrap_or_default());
                } else {
                    out.push(ch);
                }
            }
            out
        }),
        1 => "\\PC{0,24}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("tcp".to_string()),
        Just("-1".to_string()),
        Just("i-0123456789abcdef0".to_string()),
        Just("ami-0123".to_string()),
        Just("sg-00000000000000000".to_string()),
        Just("*".to_string()),
        Just("aGVsbG8=".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("99999999999999999999".to_string()),
        "[0-9]{1,6}",
        "\\PC{0,64}",
        "[\\x00-\\x7f]{0,300}",
    ]
}

fn params() -> impl Strategy<Value = BTreeMap<String, String>> {
    (
        prop::sample::select(ACTIONS),
        prop::collection::btree_map(key(), value(), 0..24),
    )
        .prop_map(|(action, mut rest)| {
            if !action.is_empty() {
                rest.insert("Action".into(), action.to_string());
            }
            rest
        })
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the parameters, parsing answers (an action or an EC2 error) and
    /// the error is one of the request errors, never an internal one.
    #[test]
    fn prop_hostile_parameters_never_panic(p in params()) {
        let params = Params(p.clone());
        match Action::parse(&params) {
            Ok(a) => prop_assert_eq!(Some(a.name()), p.get("Action").map(String::as_str)),
            Err(e) => {
                prop_assert!(e.status == 400, "{} {}", e.status, e.code);
                prop_assert!(!e.code.is_empty() && e.internal.is_none());
            }
        }
        // the list and structure readers on their own
        for prefix in ["InstanceId", "Filter", "TagSpecification", "IpPermissions", "Tag"] {
            let _ = params.list(prefix);
            for s in params.structs(prefix) {
                let _ = s.list("Value");
                let _ = s.structs("Tag");
            }
            let _ = params.sub(prefix);
        }
        let _ = params.filters();
        let _ = params.tag_specs("instance");
    }

    /// Numbered members come back in numeric order, whatever order they were sent in.
    #[test]
    fn prop_lists_keep_numeric_order(ids in prop::collection::vec("i-[0-9a-f]{17}", 1..40)) {
        let p: BTreeMap<String, String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (format!("InstanceId.{}", i + 1), id.clone()))
            .chain([("Action".to_string(), "TerminateInstances".to_string())])
            .collect();
        match Action::parse(&Params(p)).unwrap() {
            Action::TerminateInstances { ids: got } => prop_assert_eq!(got, ids),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// `*` matches anything, a literal pattern only itself; the matcher never panics
    /// (and does not backtrack exponentially) on hostile patterns.
    #[test]
    fn prop_filter_globs(s in "\\PC{0,40}", pat in "[a*?\\\\]{0,30}") {
        prop_assert!(glob("*", &s));
        let literal: String = s.chars().filter(|c| !matches!(c, '*' | '?' | '\\')).collect();
        prop_assert!(glob(&literal, &literal));
        let _ = glob(&pat, &s);
        let _ = glob(&pat, &"a".repeat(60));
    }
}
