// Replays what the Terraform AWS provider (v5, internal/service/ec2/ec2_instance.go and
// aws-sdk-go-base) calls for `provider "aws"` + one `aws_instance`, through the AWS SDK
// for JavaScript v3, whose deserializers come from the same Smithy models as
// aws-sdk-go-v2 (Terraform's SDK): a mis-named or missing XML element becomes
// `undefined` here instead of an error, so every field the provider dereferences is
// checked explicitly after each call.
//
// Phases (--phase), one process each as terraform commands are; each configures the
// provider and refreshes the data sources first:
//   configure  sts:GetCallerIdentity; account and partition parsed from the Arn
//              (aws-sdk-go-v2 arn.Parse)
//   data       DescribeVpcs(isDefault) + DescribeSecurityGroups(vpc-id, group-name=default),
//              as `data "aws_vpc"` / `data "aws_security_group"` feeding
//              vpc_security_group_ids
//   apply      DescribeImages (FetchRootDeviceName: root_block_device is set) →
//              RunInstances (ClientToken, MinCount=MaxCount=1, TagSpecifications,
//              MetadataOptions, base64 UserData; sent twice, the second must answer the
//              same instance) → DescribeInstances until running → read
//   plan       read, which must match the state apply printed (--state FILE): no diff
//   destroy    read (no diff), then ModifyInstanceAttribute(DisableApiTermination=false),
//              ModifyInstanceAttribute(DisableApiStop=false) → TerminateInstances →
//              DescribeInstances until terminated
//   all        (default) apply, plan and destroy in this one process
// read = DescribeInstances(InstanceIds) → DescribeInstanceTypes(InstanceTypes=[type]), which
// must find it and say BurstablePerformanceSupported=false (so no credit specifications) →
// DescribeTags(resource-id, key=aws:ec2launchtemplate:id) → DescribeVpcs(VpcIds) (IsDefault)
// → DescribeInstanceAttribute(instanceInitiatedShutdownBehavior) → DescribeVolumes(the
// BlockDeviceMappings' volumes) → DescribeInstanceAttribute(disableApiStop,
// disableApiTermination, userData); then DescribeSecurityGroups(GroupIds) as the group's
// own refresh would.
//
// Beyond the named fields, every answer must be understood whole: each leaf element of
// the XML has to appear as a value of the parsed output (see allUnderstood).
//
// Input (flags win over the environment):
//   --endpoint URL   FERROSTACK_EC2_ENDPOINT   the EC2 Query endpoint, e.g. http://127.0.0.1:5000/ec2
//                                              (STS is asked at the same URL)
//   --region R       AWS_REGION                default RegionOne
//   --image ami-…    FERROSTACK_EC2_IMAGE      the AMI to launch
//   --type T         FERROSTACK_EC2_TYPE       default m1.tiny
//   --phase P        apply | plan | destroy | all (default)
//   --state FILE     for plan and destroy: the JSON that apply printed
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//   FERROSTACK_REPLAY_TRACE=FILE     append every raw exchange to FILE
//   FERROSTACK_REPLAY_MANGLE=JSON    rewrite answers (self-test of the checks, see below)
// Output: one JSON summary on stdout (the Terraform-like `state` of the instance, the calls
// made, the states seen); on any failure a message with the last raw exchanges on stderr
// and exit status 1 (2 for bad input). A failed apply terminates what it launched.

import { createHash, randomBytes } from "node:crypto";
import { appendFileSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual, parseArgs } from "node:util";

import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import {
  EC2Client,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeSecurityGroupsCommand,
  DescribeTagsCommand,
  DescribeVolumesCommand,
  DescribeVpcsCommand,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";

const T0 = Date.now();
const POLL_MS = 1000;
const WAIT_MS = 180_000;

// --- input ------------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    endpoint: { type: "string" },
    region: { type: "string" },
    image: { type: "string" },
    type: { type: "string" },
    phase: { type: "string" },
    state: { type: "string" },
    "root-volume-size": { type: "string" },
    "root-delete-on-termination": { type: "string" },
    "volume-tags": { type: "string" },
  },
});
const cfg = {
  endpoint: flags.endpoint ?? process.env.FERROSTACK_EC2_ENDPOINT,
  region: flags.region ?? process.env.AWS_REGION ?? "RegionOne",
  image: flags.image ?? process.env.FERROSTACK_EC2_IMAGE,
  type: flags.type ?? process.env.FERROSTACK_EC2_TYPE ?? "m1.tiny",
  access: process.env.AWS_ACCESS_KEY_ID,
  secret: process.env.AWS_SECRET_ACCESS_KEY,
};
for (const [k, v] of Object.entries(cfg)) {
  if (!v) {
    process.stderr.write(`terraform_replay: missing ${k} (see the header of ${process.argv[1]})\n`);
    process.exit(2);
  }
}
// the resource's optional arguments (apply): root_block_device { volume_size,
// delete_on_termination } and volume_tags; Terraform sends them in RunInstances and a
// refresh that reads other values back means a diff on every later plan
const hcl = {
  root_volume_size: flags["root-volume-size"] === undefined ? undefined : Number(flags["root-volume-size"]),
  root_delete_on_termination: (flags["root-delete-on-termination"] ?? "true") === "true",
  volume_tags: flags["volume-tags"] === undefined ? undefined : JSON.parse(flags["volume-tags"]),
};
if (hcl.root_volume_size !== undefined && !(Number.isInteger(hcl.root_volume_size) && hcl.root_volume_size > 0)) {
  process.stderr.write("terraform_replay: --root-volume-size wants a positive integer (GiB)\n");
  process.exit(2);
}

// --- raw exchanges, for the evidence on failure -----------------------------------------

const trace = []; // {call, status, request, response}
// FERROSTACK_REPLAY_TRACE=FILE: every exchange, appended to FILE (for a human to read)
const traceFile = process.env.FERROSTACK_REPLAY_TRACE;
// FERROSTACK_REPLAY_MANGLE='[["DescribeInstances", "<vpcId>", "<vpcID>"], ...]': rewrites
// answers before the SDK parses them (every occurrence), to prove that the checks notice a
// mis-named element (tests/conformance/test_ec2_terraform.py uses it on itself)
const mangle = JSON.parse(process.env.FERROSTACK_REPLAY_MANGLE || "[]");
const calls = []; // [action, ms]

function captureRaw(name) {
  return (next, context) => async (args) => {
    const entry = { call: `${name}:${context.commandName}`, request: String(args.request?.body ?? "") };
    trace.push(entry);
    if (trace.length > 8) trace.shift();
    const out = await next(args);
    const res = out.response;
    const chunks = [];
    if (res.body && typeof res.body[Symbol.asyncIterator] === "function") {
      for await (const c of res.body) chunks.push(Buffer.from(c));
    } else if (res.body) {
      chunks.push(Buffer.from(res.body));
    }
    let buf = Buffer.concat(chunks);
    for (const [action, from, to] of mangle) {
      if (`${context.commandName}` === `${action}Command`) buf = Buffer.from(buf.toString("utf8").split(from).join(to));
    }
    entry.status = res.statusCode;
    entry.response = buf.toString("utf8");
    entry.date = res.headers?.date;
    res.body = new Uint8Array(buf);
    if (traceFile) {
      appendFileSync(traceFile, `> ${entry.call} ${entry.request}\n< HTTP ${entry.status} Date: ${entry.date}\n${entry.response}\n\n`);
    }
    return out;
  };
}

function instrument(client, name) {
  client.middlewareStack.add(captureRaw(name), {
    step: "deserialize",
    priority: "low",
    name: "ferrostackCaptureRaw",
  });
  return client;
}

class Failure extends Error {}

function fail(msg) {
  throw new Failure(msg);
}

// --- field checks -----------------------------------------------------------------------

function get(obj, path) {
  let cur = obj;
  for (const part of path.split(".")) {
    if (cur === undefined || cur === null) return undefined;
    cur = /^\d+$/.test(part) ? cur[Number(part)] : cur[part];
  }
  return cur;
}

function kindOf(v) {
  if (v === undefined) return "undefined (missing or mis-named element)";
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? "invalid date" : "date";
  return typeof v;
}

/// Checks of one answer: all problems of a call are reported together.
class Checks {
  constructor(call, out, what = "the answer lacks what Terraform reads") {
    this.call = call;
    this.out = out;
    this.what = what;
    this.problems = [];
  }
  // type: "string" | "number" | "boolean" | "array" | "date" | "object" | RegExp | (v => bool)
  need(path, type, what) {
    const v = get(this.out, path);
    let ok;
    if (type instanceof RegExp) ok = typeof v === "string" && type.test(v);
    else if (typeof type === "function") ok = type(v);
    else if (type === "array") ok = Array.isArray(v);
    else if (type === "date") ok = v instanceof Date && !Number.isNaN(v.getTime());
    else if (type === "number") ok = typeof v === "number" && Number.isFinite(v);
    else ok = kindOf(v) === type;
    if (!ok) {
      const want = type instanceof RegExp ? `a string matching ${type}` : typeof type === "function" ? (what ?? "a valid value") : `a ${type}`;
      this.problems.push(`${path}: want ${want}, got ${kindOf(v)}${v !== undefined ? ` ${JSON.stringify(v)}` : ""}`);
    }
    return v;
  }
  equal(path, want) {
    const v = get(this.out, path);
    if (!isDeepStrictEqual(v, want)) {
      this.problems.push(`${path}: want ${JSON.stringify(want)}, got ${kindOf(v)}${v !== undefined ? ` ${JSON.stringify(v)}` : ""}`);
    }
    return v;
  }
  assert(cond, msg) {
    if (!cond) this.problems.push(msg);
    return cond;
  }
  done() {
    if (this.problems.length) {
      fail(`${this.call}: ${this.what}:\n  - ${this.problems.join("\n  - ")}`);
    }
    return this.out;
  }
}

// --- every element must be understood ---------------------------------------------------
// The SDK silently drops an element whose name is not in the model. Each leaf element of
// an answer (no child elements: a value, or an empty list/structure) must therefore show
// up as one value of the parsed output (a scalar, or an empty array/object); when the
// counts differ, an element was mis-named or misplaced.

/// The leaf elements of an XML document, as their paths (the request id left out).
function xmlLeaves(xml) {
  const leaves = [];
  const stack = [];
  const re = /<(\/?)([A-Za-z_][\w.:-]*)[^>]*?(\/?)>/g;
  let m;
  const body = xml.replace(/<\?xml[^>]*\?>/, "");
  while ((m = re.exec(body))) {
    const [, close, tag, selfClose] = m;
    const name = tag.replace(/^.*:/, "");
    if (close) {
      const top = stack.pop();
      if (top && !top.children) leaves.push(top.path);
      if (stack.length) stack[stack.length - 1].children = true;
    } else if (selfClose) {
      if (stack.length) stack[stack.length - 1].children = true;
      leaves.push([...stack.map((e) => e.name), name].join("/"));
    } else {
      if (stack.length) stack[stack.length - 1].children = true;
      stack.push({ name, path: [...stack.map((e) => e.name), name].join("/"), children: false });
    }
  }
  return leaves.filter((p) => !/(^|\/)(requestId|RequestId|RequestID)$/.test(p));
}

/// The values of parsed output, as their paths ($metadata left out).
function outLeaves(v, path = "", acc = []) {
  if (Array.isArray(v)) {
    if (!v.length) acc.push(path);
    v.forEach((x, i) => outLeaves(x, `${path}[${i}]`, acc));
  } else if (v !== null && typeof v === "object" && !(v instanceof Date) && !(v instanceof Uint8Array)) {
    const keys = Object.keys(v).filter((k) => k !== "$metadata");
    if (!keys.length) acc.push(path);
    for (const k of keys) outLeaves(v[k], path ? `${path}.${k}` : k, acc);
  } else if (v !== undefined) {
    acc.push(path);
  }
  return acc;
}

function allUnderstood(name, xml, out) {
  let inXml = xmlLeaves(xml);
  // EC2 answers <return>true</return> to actions whose modelled output is empty
  // (ModifyInstanceAttribute): AWS does so too, and the SDK drops it by design
  if (out?.Return === undefined) inXml = inXml.filter((p) => !/^[^/]+\/return$/.test(p));
  const parsed = Object.keys(out ?? {}).some((k) => k !== "$metadata") ? outLeaves(out) : [];
  if (inXml.length !== parsed.length) {
    const names = (list, split) => {
      const counts = {};
      for (const p of list) {
        const leaf = p.split(split).pop().replace(/\[\d+\]$/, "").toLowerCase();
        counts[leaf] = (counts[leaf] ?? 0) + 1;
      }
      return counts;
    };
    const x = names(inXml, "/");
    const o = names(parsed, ".");
    // elements the output has fewer of (some are only renamed by the model, e.g. tagSet → Tags)
    const suspects = Object.keys(x).filter((k) => x[k] > (o[k] ?? 0)).map((k) => `${k}×${x[k] - (o[k] ?? 0)}`);
    fail(`${name}: the SDK understood ${parsed.length} of the answer's ${inXml.length} leaf elements ` +
      `(a mis-named or misplaced element is dropped silently, by aws-sdk-go-v2 too); ` +
      `leaf names the output has fewer of: ${suspects.join(", ")}`);
  }
}

// --- calls ------------------------------------------------------------------------------

const credentials = { accessKeyId: cfg.access, secretAccessKey: cfg.secret };
const common = { endpoint: cfg.endpoint, region: cfg.region, credentials, maxAttempts: 1 };
const sts = instrument(new STSClient(common), "sts");
const ec2 = instrument(new EC2Client(common), "ec2");

async function call(client, Command, input, label) {
  const name = label ?? Command.name.replace(/Command$/, "");
  const t = Date.now();
  let out;
  try {
    out = await client.send(new Command(input));
  } catch (e) {
    const status = e?.$metadata?.httpStatusCode;
    fail(`${name} ${JSON.stringify(input)} failed: ${e?.name ?? "Error"}${status ? ` (HTTP ${status})` : ""}: ${e?.message ?? e}`);
  } finally {
    calls.push([name, Date.now() - t]);
  }
  const last = trace[trace.length - 1];
  if (!last || last.response === undefined) fail(`${name}: no raw answer was captured`);
  if (!last.date) fail(`${name}: the answer has no Date header (SDKs correct clock skew with it)`);
  allUnderstood(name, last.response, out);
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

// --- configure: provider "aws" ----------------------------------------------------------

/// aws-sdk-go-v2 aws/arn.Parse: "arn:" prefix and six ':'-separated sections.
function arnParse(s) {
  if (typeof s !== "string" || !s.startsWith("arn:")) fail(`GetCallerIdentity: Arn ${JSON.stringify(s)}: arn: invalid prefix`);
  const sections = s.split(":");
  if (sections.length < 6) fail(`GetCallerIdentity: Arn ${JSON.stringify(s)}: arn: not enough sections`);
  const [, partition, service, region, accountID] = sections;
  return { partition, service, region, accountID, resource: sections.slice(5).join(":") };
}

async function configure() {
  const out = await call(sts, GetCallerIdentityCommand, {});
  const c = new Checks("sts:GetCallerIdentity", out);
  const arn = c.need("Arn", "string");
  c.need("UserId", "string");
  c.need("Account", /^\d{12}$/);
  c.done();
  const parsed = arnParse(arn);
  const p = new Checks("sts:GetCallerIdentity Arn", parsed);
  // the partition decides every ARN the provider builds; the account every owner id
  p.need("partition", /^aws(-[a-z]+)*$/);
  p.equal("service", "iam");
  p.need("accountID", /^\d{12}$/);
  p.equal("accountID", out.Account);
  p.need("resource", /^(user|assumed-role|role|root)/);
  p.done();
  return { account: parsed.accountID, partition: parsed.partition, arn, userId: out.UserId };
}

// --- data sources -----------------------------------------------------------------------

async function defaultVpc(account) {
  const out = await call(ec2, DescribeVpcsCommand, { Filters: [{ Name: "isDefault", Values: ["true"] }] }, "DescribeVpcs(isDefault)");
  const c = new Checks("DescribeVpcs(isDefault=true)", out);
  c.need("Vpcs", "array");
  c.assert(out.Vpcs?.length === 1, `want exactly one default VPC, got ${out.Vpcs?.length}`);
  c.need("Vpcs.0.VpcId", /^vpc-[0-9a-f]+$/);
  c.equal("Vpcs.0.IsDefault", true);
  c.need("Vpcs.0.CidrBlock", "string");
  c.equal("Vpcs.0.State", "available");
  c.equal("Vpcs.0.OwnerId", account);
  return c.done().Vpcs[0].VpcId;
}

function checkGroup(c, prefix, account, vpc) {
  c.need(`${prefix}.GroupId`, /^sg-[0-9a-f]+$/);
  c.need(`${prefix}.GroupName`, "string");
  c.need(`${prefix}.Description`, "string");
  c.equal(`${prefix}.VpcId`, vpc);
  c.equal(`${prefix}.OwnerId`, account);
  c.need(`${prefix}.IpPermissions`, "array");
  c.need(`${prefix}.IpPermissionsEgress`, "array");
  const rules = [...(get(c.out, `${prefix}.IpPermissions`) ?? []), ...(get(c.out, `${prefix}.IpPermissionsEgress`) ?? [])];
  rules.forEach((r, i) => {
    if (typeof r.IpProtocol !== "string") c.problems.push(`${prefix} rule ${i}: IpProtocol ${kindOf(r.IpProtocol)}`);
    for (const list of ["IpRanges", "Ipv6Ranges", "UserIdGroupPairs", "PrefixListIds"]) {
      if (r[list] !== undefined && !Array.isArray(r[list])) c.problems.push(`${prefix} rule ${i}: ${list} is not a list`);
    }
  });
}

async function defaultGroup(account, vpc) {
  const input = { Filters: [{ Name: "vpc-id", Values: [vpc] }, { Name: "group-name", Values: ["default"] }] };
  const out = await call(ec2, DescribeSecurityGroupsCommand, input, "DescribeSecurityGroups(default)");
  const c = new Checks("DescribeSecurityGroups(vpc-id, group-name=default)", out);
  c.need("SecurityGroups", "array");
  c.assert(out.SecurityGroups?.length === 1, `want exactly one group "default" in ${vpc}, got ${out.SecurityGroups?.length}`);
  c.equal("SecurityGroups.0.GroupName", "default");
  checkGroup(c, "SecurityGroups.0", account, vpc);
  return c.done().SecurityGroups[0].GroupId;
}

// --- create -----------------------------------------------------------------------------

async function fetchRootDeviceName(image) {
  const out = await call(ec2, DescribeImagesCommand, { ImageIds: [image] });
  const c = new Checks("DescribeImages (FetchRootDeviceName)", out);
  c.need("Images", "array");
  c.assert(out.Images?.length === 1, `want one image ${image}, got ${out.Images?.length}`);
  c.equal("Images.0.ImageId", image);
  c.need("Images.0.State", (v) => typeof v === "string" && v !== "deregistered", "a state other than deregistered");
  c.equal("Images.0.RootDeviceType", "ebs");
  const root = c.need("Images.0.RootDeviceName", /^\/dev\//);
  c.need("Images.0.BlockDeviceMappings", "array");
  c.need("Images.0.Architecture", "string");
  c.need("Images.0.OwnerId", /^\d{12}$/);
  c.done();
  return root;
}

function checkInstance(c, p, want) {
  c.need(`${p}.InstanceId`, INSTANCE_ID);
  c.equal(`${p}.ImageId`, want.image);
  c.equal(`${p}.InstanceType`, want.type);
  c.need(`${p}.State.Name`, /^(pending|running|shutting-down|terminated|stopping|stopped)$/);
  c.need(`${p}.State.Code`, "number");
  c.need(`${p}.LaunchTime`, "date");
  c.need(`${p}.AmiLaunchIndex`, "number");
  c.need(`${p}.Placement.AvailabilityZone`, "string");
  c.need(`${p}.Placement.Tenancy`, "string");
  c.need(`${p}.Architecture`, "string");
  c.need(`${p}.VirtualizationType`, "string");
  c.need(`${p}.Hypervisor`, "string");
  c.need(`${p}.RootDeviceType`, "string");
  c.need(`${p}.EbsOptimized`, "boolean");
  c.need(`${p}.Monitoring.State`, "string");
  c.need(`${p}.Tags`, "array");
  c.need(`${p}.SecurityGroups`, "array");
  for (const [i] of (get(c.out, `${p}.SecurityGroups`) ?? []).entries()) {
    c.need(`${p}.SecurityGroups.${i}.GroupId`, /^sg-/);
    c.need(`${p}.SecurityGroups.${i}.GroupName`, "string");
  }
  c.need(`${p}.MetadataOptions.HttpTokens`, /^(optional|required)$/);
  c.need(`${p}.MetadataOptions.HttpEndpoint`, /^(enabled|disabled)$/);
  c.need(`${p}.MetadataOptions.HttpPutResponseHopLimit`, "number");
  c.need(`${p}.CpuOptions.CoreCount`, "number");
  c.need(`${p}.CpuOptions.ThreadsPerCore`, "number");
  // the primary network interface: Terraform dereferences Attachment.DeviceIndex of each
  const nics = get(c.out, `${p}.NetworkInterfaces`);
  if (nics !== undefined) {
    c.need(`${p}.NetworkInterfaces`, "array");
    (nics ?? []).forEach((_, i) => {
      c.need(`${p}.NetworkInterfaces.${i}.NetworkInterfaceId`, /^eni-/);
      c.need(`${p}.NetworkInterfaces.${i}.Attachment.DeviceIndex`, "number");
      c.need(`${p}.NetworkInterfaces.${i}.SubnetId`, /^subnet-/);
      c.need(`${p}.NetworkInterfaces.${i}.SourceDestCheck`, "boolean");
      c.need(`${p}.NetworkInterfaces.${i}.PrivateIpAddresses`, "array");
    });
  }
}

function checkRunning(c, p) {
  c.equal(`${p}.State.Name`, "running");
  c.equal(`${p}.State.Code`, 16);
  c.need(`${p}.VpcId`, /^vpc-/);
  c.need(`${p}.SubnetId`, /^subnet-/);
  c.need(`${p}.PrivateIpAddress`, IPV4);
  c.need(`${p}.PrivateDnsName`, "string");
  c.need(`${p}.RootDeviceName`, /^\/dev\//);
  const bdms = c.need(`${p}.BlockDeviceMappings`, "array") ?? [];
  c.assert(bdms.length >= 1, `${p}.BlockDeviceMappings is empty (the root volume is missing)`);
  bdms.forEach((_, i) => {
    c.need(`${p}.BlockDeviceMappings.${i}.DeviceName`, /^\/dev\//);
    c.need(`${p}.BlockDeviceMappings.${i}.Ebs.VolumeId`, /^vol-[0-9a-f]+$/);
    c.need(`${p}.BlockDeviceMappings.${i}.Ebs.DeleteOnTermination`, "boolean");
    c.need(`${p}.BlockDeviceMappings.${i}.Ebs.Status`, "string");
  });
  const root = get(c.out, `${p}.RootDeviceName`);
  c.assert(bdms.some((b) => b.DeviceName === root),
    `no BlockDeviceMappings entry has the RootDeviceName ${JSON.stringify(root)}: Terraform finds no root_block_device`);
}

async function describeInstance(id) {
  const out = await call(ec2, DescribeInstancesCommand, { InstanceIds: [id] });
  const c = new Checks(`DescribeInstances(${id})`, out);
  c.need("Reservations", "array");
  // FindInstanceByID: exactly one reservation with exactly one instance, the asked one
  c.assert(out.Reservations?.length === 1, `want one reservation, got ${out.Reservations?.length}`);
  c.need("Reservations.0.Instances", "array");
  c.assert(out.Reservations?.[0]?.Instances?.length === 1, `want one instance, got ${out.Reservations?.[0]?.Instances?.length}`);
  c.equal("Reservations.0.Instances.0.InstanceId", id);
  c.need("Reservations.0.ReservationId", /^r-[0-9a-f]+$/);
  c.need("Reservations.0.OwnerId", /^\d{12}$/);
  return c;
}

async function waitFor(id, want, along) {
  const deadline = Date.now() + WAIT_MS;
  const seen = [];
  for (;;) {
    const c = await describeInstance(id);
    const state = get(c.out, "Reservations.0.Instances.0.State.Name");
    if (seen[seen.length - 1] !== state) seen.push(state);
    if (state === want) return { checks: c, seen };
    if (!along.includes(state)) fail(`DescribeInstances(${id}): state ${JSON.stringify(state)} while waiting for ${want} (seen ${seen.join(" → ")})`);
    if (Date.now() > deadline) fail(`DescribeInstances(${id}): still ${state} after ${WAIT_MS / 1000}s waiting for ${want}`);
    await sleep(POLL_MS);
  }
}

async function create(sg) {
  const rootDevice = await fetchRootDeviceName(cfg.image);
  const marker = `tf-replay-${randomBytes(4).toString("hex")}`;
  const userData = `#!/bin/sh\necho ${marker}\n`;
  const userDataB64 = Buffer.from(userData).toString("base64");
  // id.UniqueId() of terraform-plugin-sdk: "terraform-" + timestamp + counter
  const stamp = new Date().toISOString().replace(/\D/g, "").slice(0, 17);
  const clientToken = `terraform-${stamp}${String(Math.floor(Math.random() * 1e8)).padStart(9, "0")}`;
  const tags = [{ Key: "Name", Value: marker }, { Key: "ferrostack-test", Value: marker }];
  const input = {
    ClientToken: clientToken,
    ImageId: cfg.image,
    InstanceType: cfg.type,
    MinCount: 1,
    MaxCount: 1,
    UserData: userDataB64,
    SecurityGroupIds: [sg],
    DisableApiTermination: false,
    DisableApiStop: false,
    EbsOptimized: false,
    Monitoring: { Enabled: false },
    MetadataOptions: {
      HttpEndpoint: "enabled",
      HttpTokens: "optional",
      HttpPutResponseHopLimit: 1,
      InstanceMetadataTags: "disabled",
    },
    // root_block_device { delete_on_termination = true }
    BlockDeviceMappings: [{
      DeviceName: rootDevice,
      Ebs: {
        DeleteOnTermination: hcl.root_delete_on_termination,
        ...(hcl.root_volume_size !== undefined ? { VolumeSize: hcl.root_volume_size } : {}),
      },
    }],
    TagSpecifications: [
      { ResourceType: "instance", Tags: tags },
      ...(hcl.volume_tags ? [{ ResourceType: "volume", Tags: Object.entries(hcl.volume_tags).map(([Key, Value]) => ({ Key, Value })) }] : []),
    ],
  };
  const out = await call(ec2, RunInstancesCommand, input);
  const c = new Checks("RunInstances", out);
  c.need("Instances", "array");
  c.assert(out.Instances?.length === 1, `want one instance, got ${out.Instances?.length}`);
  c.need("ReservationId", /^r-[0-9a-f]+$/);
  c.need("OwnerId", /^\d{12}$/);
  c.need("Instances.0.InstanceId", INSTANCE_ID);
  c.need("Instances.0.State.Name", /^(pending|running)$/);
  c.done();
  const id = out.Instances[0].InstanceId;
  launched = id;
  const created = { id, clientToken, marker, userData, rootDevice, reservation: out.ReservationId, hcl };

  // the provider's retry of a lost answer: the same ClientToken gives the same instance
  const again = await call(ec2, RunInstancesCommand, input, "RunInstances(same ClientToken)");
  new Checks("RunInstances(same ClientToken)", again).equal("Instances.0.InstanceId", id);

  const { checks, seen } = await waitFor(id, "running", ["pending"]);
  created.states = seen;
  checkInstance(checks, "Reservations.0.Instances.0", { image: cfg.image, type: cfg.type });
  checkRunning(checks, "Reservations.0.Instances.0");
  checks.done();
  return created;
}

// --- read -------------------------------------------------------------------------------

async function read(created, ctx) {
  const { id } = created;
  const c = await describeInstance(id);
  const p = "Reservations.0.Instances.0";
  checkInstance(c, p, { image: cfg.image, type: cfg.type });
  checkRunning(c, p);
  c.equal("Reservations.0.OwnerId", ctx.account);
  const inst = c.done().Reservations[0].Instances[0];
  const state = {};
  state.id = inst.InstanceId;
  state.instance_state = inst.State.Name;
  state.ami = inst.ImageId;
  state.instance_type = inst.InstanceType;
  state.availability_zone = inst.Placement.AvailabilityZone;
  state.tenancy = inst.Placement.Tenancy;
  state.private_ip = inst.PrivateIpAddress;
  state.private_dns = inst.PrivateDnsName;
  state.public_ip = inst.PublicIpAddress ?? "";
  state.subnet_id = inst.SubnetId;
  state.key_name = inst.KeyName ?? "";
  state.ebs_optimized = inst.EbsOptimized;
  state.monitoring = inst.Monitoring.State === "enabled";
  state.cpu_core_count = inst.CpuOptions.CoreCount;
  state.cpu_threads_per_core = inst.CpuOptions.ThreadsPerCore;
  state.metadata_options = {
    http_endpoint: inst.MetadataOptions.HttpEndpoint,
    http_tokens: inst.MetadataOptions.HttpTokens,
    http_put_response_hop_limit: inst.MetadataOptions.HttpPutResponseHopLimit,
  };
  state.tags = Object.fromEntries((inst.Tags ?? []).map((t) => [t.Key, t.Value]));
  const primary = (inst.NetworkInterfaces ?? []).find((n) => n.Attachment?.DeviceIndex === 0);
  state.primary_network_interface_id = primary?.NetworkInterfaceId ?? "";
  state.source_dest_check = primary ? primary.SourceDestCheck : inst.SourceDestCheck;
  const tv = new Checks("read", state, "not as configured (every later plan shows a diff)");
  tv.equal("instance_state", "running");
  tv.equal("metadata_options.http_tokens", "optional");
  tv.equal("tags.Name", created.marker);
  tv.equal("tags.ferrostack-test", created.marker);
  tv.assert(inst.RootDeviceName === created.rootDevice,
    `RootDeviceName ${inst.RootDeviceName} differs from the image's ${created.rootDevice}`);
  tv.done();

  // FindInstanceTypeByName: not found is an error; credit specs only when burstable
  const types = await call(ec2, DescribeInstanceTypesCommand, { InstanceTypes: [inst.InstanceType] });
  const tc = new Checks(`DescribeInstanceTypes(${inst.InstanceType})`, types);
  tc.need("InstanceTypes", "array");
  tc.assert(types.InstanceTypes?.length === 1, `want one instance type ${inst.InstanceType}, got ${types.InstanceTypes?.length}`);
  tc.equal("InstanceTypes.0.InstanceType", inst.InstanceType);
  tc.need("InstanceTypes.0.VCpuInfo.DefaultVCpus", "number");
  tc.need("InstanceTypes.0.VCpuInfo.DefaultCores", "number");
  tc.need("InstanceTypes.0.VCpuInfo.DefaultThreadsPerCore", "number");
  tc.need("InstanceTypes.0.MemoryInfo.SizeInMiB", "number");
  tc.equal("InstanceTypes.0.BurstablePerformanceSupported", false);
  tc.need("InstanceTypes.0.ProcessorInfo.SupportedArchitectures", "array");
  tc.need("InstanceTypes.0.CurrentGeneration", "boolean");
  tc.done();
  const it = types.InstanceTypes[0];
  state.instance_type_info = {
    vcpus: it.VCpuInfo.DefaultVCpus,
    memory_mib: it.MemoryInfo.SizeInMiB,
    burstable: it.BurstablePerformanceSupported,
  };
  if (it.InstanceStorageInfo?.TotalSizeInGB !== undefined) state.instance_type_info.storage_gb = it.InstanceStorageInfo.TotalSizeInGB;

  // findInstanceLaunchTemplateID: DescribeTags(resource-id, key=aws:ec2launchtemplate:id)
  const tags = await call(ec2, DescribeTagsCommand, {
    Filters: [
      { Name: "resource-id", Values: [id] },
      { Name: "key", Values: ["aws:ec2launchtemplate:id"] },
    ],
  }, "DescribeTags(launch template)");
  const gc = new Checks("DescribeTags(resource-id, key=aws:ec2launchtemplate:id)", tags);
  gc.need("Tags", (v) => v === undefined || Array.isArray(v), "a list (or none)");
  gc.assert((tags.Tags ?? []).length === 0, `no launch template was used, got ${JSON.stringify(tags.Tags)}`);
  gc.done();
  // and the same filter with the instance's own key must find exactly that tag
  const own = await call(ec2, DescribeTagsCommand, {
    Filters: [{ Name: "resource-id", Values: [id] }, { Name: "key", Values: ["Name"] }],
  }, "DescribeTags(Name)");
  const oc = new Checks("DescribeTags(resource-id, key=Name)", own);
  oc.need("Tags", "array");
  oc.assert(own.Tags?.length === 1, `want the one Name tag, got ${JSON.stringify(own.Tags)}`);
  oc.equal("Tags.0.ResourceId", id);
  oc.equal("Tags.0.ResourceType", "instance");
  oc.equal("Tags.0.Key", "Name");
  oc.equal("Tags.0.Value", created.marker);
  oc.done();

  // readSecurityGroups: the VPC's IsDefault decides names vs ids
  const vpcs = await call(ec2, DescribeVpcsCommand, { VpcIds: [inst.VpcId] });
  const vc = new Checks(`DescribeVpcs(${inst.VpcId})`, vpcs);
  vc.need("Vpcs", "array");
  vc.assert(vpcs.Vpcs?.length === 1, `want one VPC, got ${vpcs.Vpcs?.length}`);
  vc.equal("Vpcs.0.VpcId", inst.VpcId);
  vc.need("Vpcs.0.IsDefault", "boolean");
  vc.done();
  const useName = vpcs.Vpcs[0].IsDefault;
  state.vpc_is_default = useName;
  state.vpc_security_group_ids = inst.SecurityGroups.map((g) => g.GroupId).sort();
  state.security_groups = useName ? inst.SecurityGroups.map((g) => g.GroupName).sort() : [];
  const sgc = new Checks("read: vpc_security_group_ids", state);
  sgc.assert(state.vpc_security_group_ids.includes(ctx.sg), `the instance's groups ${JSON.stringify(state.vpc_security_group_ids)} lack ${ctx.sg}`);
  sgc.done();

  const attr = async (Attribute) => {
    const out = await call(ec2, DescribeInstanceAttributeCommand, { InstanceId: id, Attribute }, `DescribeInstanceAttribute(${Attribute})`);
    const ac = new Checks(`DescribeInstanceAttribute(${Attribute})`, out);
    ac.equal("InstanceId", id);
    return ac;
  };

  const sd = await attr("instanceInitiatedShutdownBehavior");
  state.instance_initiated_shutdown_behavior = sd.need("InstanceInitiatedShutdownBehavior.Value", /^(stop|terminate)$/);
  sd.done();

  // readBlockDevices: DescribeVolumes of the instance's EBS volumes
  const volumeIds = inst.BlockDeviceMappings.map((b) => b.Ebs.VolumeId);
  const vols = await call(ec2, DescribeVolumesCommand, { VolumeIds: volumeIds });
  const dc = new Checks(`DescribeVolumes(${volumeIds.join(",")})`, vols);
  dc.need("Volumes", "array");
  dc.assert(vols.Volumes?.length === volumeIds.length, `want ${volumeIds.length} volumes, got ${vols.Volumes?.length}`);
  (vols.Volumes ?? []).forEach((v, i) => {
    dc.need(`Volumes.${i}.VolumeId`, (x) => volumeIds.includes(x), `one of ${volumeIds}`);
    dc.need(`Volumes.${i}.Size`, "number");
    dc.need(`Volumes.${i}.VolumeType`, "string");
    dc.need(`Volumes.${i}.Encrypted`, "boolean");
    dc.need(`Volumes.${i}.AvailabilityZone`, "string");
    dc.need(`Volumes.${i}.CreateTime`, "date");
    dc.equal(`Volumes.${i}.State`, "in-use");
    dc.need(`Volumes.${i}.Attachments`, "array");
    dc.equal(`Volumes.${i}.Attachments.0.InstanceId`, id);
    dc.need(`Volumes.${i}.Attachments.0.Device`, /^\/dev\//);
    dc.need(`Volumes.${i}.Attachments.0.State`, "string");
    dc.need(`Volumes.${i}.Attachments.0.DeleteOnTermination`, "boolean");
    if (v.Iops !== undefined) dc.need(`Volumes.${i}.Iops`, "number");
  });
  dc.done();
  const bdmByVol = Object.fromEntries(inst.BlockDeviceMappings.map((b) => [b.Ebs.VolumeId, b]));
  state.root_block_device = [];
  state.ebs_block_device = [];
  for (const v of vols.Volumes) {
    const b = bdmByVol[v.VolumeId];
    const dev = {
      volume_id: v.VolumeId,
      device_name: b.DeviceName,
      delete_on_termination: b.Ebs.DeleteOnTermination,
      encrypted: v.Encrypted,
      volume_size: v.Size,
      volume_type: v.VolumeType,
      iops: v.Iops ?? 0,
      tags: Object.fromEntries((v.Tags ?? []).map((t) => [t.Key, t.Value])),
    };
    (b.DeviceName === inst.RootDeviceName ? state.root_block_device : state.ebs_block_device).push(dev);
  }
  const rc = new Checks("read: root_block_device", state, "not as configured (every later plan shows a diff)");
  rc.assert(state.root_block_device.length === 1, `want one root block device, got ${JSON.stringify(state.root_block_device)}`);
  rc.equal("root_block_device.0.delete_on_termination", created.hcl?.root_delete_on_termination ?? true);
  rc.done();

  const stop = await attr("disableApiStop");
  state.disable_api_stop = stop.need("DisableApiStop.Value", "boolean");
  stop.equal("DisableApiStop.Value", false);
  stop.done();
  const term = await attr("disableApiTermination");
  state.disable_api_termination = term.need("DisableApiTermination.Value", "boolean");
  term.equal("DisableApiTermination.Value", false);
  term.done();
  const ud = await attr("userData");
  const b64 = ud.need("UserData.Value", "string");
  ud.done();
  const decoded = Buffer.from(b64, "base64").toString("utf8");
  const uc = new Checks("DescribeInstanceAttribute(userData) value", { decoded });
  uc.equal("decoded", created.userData);
  uc.done();
  // the provider stores the SHA-1 of the user data
  state.user_data = createHash("sha1").update(decoded).digest("hex");

  if (it.BurstablePerformanceSupported) fail("unreachable: burstable types are refused above");

  // the groups themselves, as aws_security_group's refresh reads them
  const groups = await call(ec2, DescribeSecurityGroupsCommand, { GroupIds: state.vpc_security_group_ids }, "DescribeSecurityGroups(ids)");
  const sc = new Checks(`DescribeSecurityGroups(${state.vpc_security_group_ids})`, groups);
  sc.need("SecurityGroups", "array");
  sc.assert(groups.SecurityGroups?.length === state.vpc_security_group_ids.length,
    `want ${state.vpc_security_group_ids.length} groups, got ${groups.SecurityGroups?.length}`);
  (groups.SecurityGroups ?? []).forEach((_, i) => checkGroup(sc, `SecurityGroups.${i}`, ctx.account, inst.VpcId));
  sc.done();

  return state;
}

// --- delete -----------------------------------------------------------------------------

async function destroy(id) {
  // disableInstanceAPITermination / disableInstanceAPIStop (the provider only warns when
  // these fail; here they must succeed)
  await call(ec2, ModifyInstanceAttributeCommand, { InstanceId: id, DisableApiTermination: { Value: false } }, "ModifyInstanceAttribute(DisableApiTermination)");
  await call(ec2, ModifyInstanceAttributeCommand, { InstanceId: id, DisableApiStop: { Value: false } }, "ModifyInstanceAttribute(DisableApiStop)");
  const out = await call(ec2, TerminateInstancesCommand, { InstanceIds: [id] });
  const c = new Checks("TerminateInstances", out);
  c.need("TerminatingInstances", "array");
  c.equal("TerminatingInstances.0.InstanceId", id);
  c.need("TerminatingInstances.0.CurrentState.Name", /^(shutting-down|terminated)$/);
  c.need("TerminatingInstances.0.CurrentState.Code", "number");
  c.equal("TerminatingInstances.0.PreviousState.Name", "running");
  c.done();
  const { checks, seen } = await waitFor(id, "terminated", ["running", "shutting-down", "stopping", "stopped", "pending"]);
  checks.equal("Reservations.0.Instances.0.State.Code", 48);
  checks.done();
  return seen;
}

/// The installed version of a package (its package.json above its resolved entry point).
function versionOf(pkg) {
  let dir = path.dirname(fileURLToPath(import.meta.resolve(pkg)));
  while (dir !== path.dirname(dir)) {
    try {
      const meta = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
      if (meta.name === pkg) return meta.version;
    } catch {}
    dir = path.dirname(dir);
  }
  return null;
}

// --- main -------------------------------------------------------------------------------

/// The attributes whose values differ between two states (what `terraform plan` would show).
function diff(before, after) {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => !isDeepStrictEqual(before[k], after[k]))
    .map((k) => `${k}: ${JSON.stringify(before[k])} → ${JSON.stringify(after[k])}`);
}

function loadState(file) {
  if (!file) fail(`--phase ${phase} needs --state FILE (the JSON an earlier --phase apply printed)`);
  const prior = JSON.parse(readFileSync(file, "utf8"));
  if (!prior?.resource?.id || !prior?.state) fail(`${file}: not the output of --phase apply`);
  return prior;
}

/// A refresh must find the instance unchanged: Terraform would otherwise plan an update.
async function refresh(resource, ctx, stored, label) {
  const state = await read(resource, ctx);
  const changes = diff(stored, state);
  if (changes.length) fail(`${label}: the refresh differs from the stored state (Terraform would plan a change):\n  - ${changes.join("\n  - ")}`);
  return state;
}

const phase = flags.phase ?? "all";
if (!["apply", "plan", "destroy", "all"].includes(phase)) {
  process.stderr.write(`terraform_replay: unknown --phase ${phase} (apply, plan, destroy or all)\n`);
  process.exit(2);
}

let launched = null; // the instance id, as soon as RunInstances answered
try {
  // every terraform command configures the provider and refreshes the data sources
  const identity = await configure();
  const vpc = await defaultVpc(identity.account);
  const sg = await defaultGroup(identity.account, vpc);
  const ctx = { ...identity, vpc, sg };
  const summary = {
    ok: true,
    phase,
    endpoint: cfg.endpoint,
    region: cfg.region,
    sdk: { "@aws-sdk/client-ec2": versionOf("@aws-sdk/client-ec2"), "@aws-sdk/client-sts": versionOf("@aws-sdk/client-sts") },
    account: identity.account,
    partition: identity.partition,
    arn: identity.arn,
    default_vpc: vpc,
    default_security_group: sg,
  };
  let resource, state;
  if (phase === "apply" || phase === "all") {
    // terraform apply: create, whose last step is a read
    resource = await create(sg);
    state = await read(resource, ctx);
    const v = new Checks("read: default VPC", state);
    v.equal("vpc_is_default", true);
    v.done();
    // what was configured must read back, or the next plan shows a diff
    const back = new Checks("apply", state, "what was configured reads back otherwise (every later plan shows a diff)");
    if (hcl.root_volume_size !== undefined) back.equal("root_block_device.0.volume_size", hcl.root_volume_size);
    if (hcl.volume_tags !== undefined) back.equal("root_block_device.0.tags", hcl.volume_tags);
    back.done();
    summary.create_states = resource.states;
    summary.refreshes = 1;
  } else {
    const prior = loadState(flags.state);
    resource = prior.resource;
    state = prior.state;
    summary.refreshes = 0;
  }
  if (phase === "plan" || phase === "all") {
    // terraform plan: a refresh that finds nothing to change
    state = await refresh(resource, ctx, state, "plan");
    summary.refreshes += 1;
    summary.changes = 0;
  }
  if (phase === "destroy" || phase === "all") {
    // terraform destroy: refresh, then delete
    state = await refresh(resource, ctx, state, "destroy");
    summary.refreshes += 1;
    summary.delete_states = await destroy(resource.id);
    summary.final_state = "terminated";
  }
  const { states: _states, ...kept } = resource;
  summary.resource = kept;
  summary.instance_id = resource.id;
  summary.state = state;
  summary.calls = calls.map(([n]) => n);
  summary.seconds = (Date.now() - T0) / 1000;
  process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
} catch (e) {
  const lines = [`terraform_replay (--phase ${phase}): FAILED: ${e instanceof Failure ? e.message : e?.stack ?? e}`];
  if (launched) {
    // best effort, so that a failed apply leaves no running instance behind
    try {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [launched] }));
      lines.push(`(instance ${launched} terminated after the failure)`);
    } catch (t) {
      lines.push(`(instance ${launched} may still exist: ${t?.name}: ${t?.message})`);
    }
  }
  lines.push("--- last exchanges (oldest first):");
  for (const t of trace) {
    lines.push(`> ${t.call} ${t.request}`);
    lines.push(`< HTTP ${t.status ?? "?"} ${(t.response ?? "(no answer)").slice(0, 4000)}`);
  }
  process.stderr.write(lines.join("\n") + "\n");
  process.exitCode = 1;
} finally {
  ec2.destroy();
  sts.destroy();
}
