//! Tests for the inspector: images produced by the real `qemu-img` at test
//! time, hand-built ISO descriptors, policy checks, fuzzing with truncated and
//! bit-flipped headers, the memory bound, and an ignored throughput probe.
#![allow(clippy::unwrap_used)]

use super::*;
use std::path::Path;
use std::process::Command;

/// Chunk sizes every image is fed with; `usize::MAX` means the whole file.
const CHUNKS: &[usize] = &[1, 7, 4096, 65536, usize::MAX];

fn qemu_img(dir: &Path, args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("qemu-img must be installed");
    assert!(
        out.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `qemu-img create -f fmt [-o opts] name size`, returning the file bytes.
fn create(dir: &Path, name: &str, fmt: &str, size: &str, opts: &str) -> Vec<u8> {
    let mut args = vec!["create", "-q", "-f", fmt];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.extend([name, size]);
    qemu_img(dir, &args);
    std::fs::read(dir.join(name)).unwrap()
}

/// qemu's own opinion of the virtual size.
fn qemu_virtual_size(dir: &Path, name: &str, fmt: &str) -> u64 {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-f", fmt, name])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let at = text.rfind("\"virtual-size\":").unwrap() + "\"virtual-size\":".len();
    text[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn inspect_chunked(data: &[u8], chunk: usize) -> Inspection {
    let mut ins = Inspector::new();
    for piece in data.chunks(chunk.clamp(1, data.len().max(1))) {
        ins.feed(piece);
    }
    ins.finish()
}

/// Feed with every chunk size in [`CHUNKS`]; the verdict must not depend on
/// how the stream was cut.
fn inspect_all(data: &[u8]) -> Inspection {
    let first = inspect_chunked(data, CHUNKS[0]);
    for &chunk in &CHUNKS[1..] {
        assert_eq!(inspect_chunked(data, chunk), first, "chunk size {chunk}");
    }
    assert_eq!(first.size, data.len() as u64);
    first
}

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------- qcow2

#[test]
fn qcow2_versions_cluster_sizes_and_sizes() {
    let dir = tmp();
    for compat in ["0.10", "1.1"] {
        for cluster in ["512", "4096", "65536", "2M"] {
            for size in ["1M", "5G", "1234567"] {
                let name = format!("c{compat}-{cluster}-{size}.qcow2");
                let opts = format!("compat={compat},cluster_size={cluster}");
                let data = create(dir.path(), &name, "qcow2", size, &opts);
                let got = inspect_all(&data);
                assert_eq!(got.format, DiskFormat::Qcow2, "{name}");
                assert!(got.problems.is_empty(), "{name}: {:?}", got.problems);
                let want = qemu_virtual_size(dir.path(), &name, "qcow2");
                assert_eq!(got.virtual_size, want, "{name}");
                assert_eq!(verify(&got, "qcow2", "bare", false), Ok(()));
            }
        }
    }
}

#[test]
fn qcow2_known_v3_features_are_fine() {
    let dir = tmp();
    for opts in [
        "extended_l2=on",
        "compression_type=zstd",
        "lazy_refcounts=on",
    ] {
        let data = create(dir.path(), "f.qcow2", "qcow2", "64M", opts);
        let got = inspect_all(&data);
        assert_eq!(got.format, DiskFormat::Qcow2);
        assert!(got.problems.is_empty(), "{opts}: {:?}", got.problems);
    }
}

#[test]
fn qcow2_backing_file_is_unsafe() {
    let dir = tmp();
    create(dir.path(), "base.raw", "raw", "16M", "");
    qemu_img(
        dir.path(),
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "base.raw",
            "-F",
            "raw",
            "top.qcow2",
        ],
    );
    let data = std::fs::read(dir.path().join("top.qcow2")).unwrap();
    let got = inspect_all(&data);
    assert_eq!(got.format, DiskFormat::Qcow2);
    assert_eq!(got.virtual_size, 16 << 20);
    assert!(got.problems.contains(&Unsafe::BackingFile), "{got:?}");
    assert_eq!(
        verify(&got, "qcow2", "bare", true),
        Err(InspectError::Unsafe(Unsafe::BackingFile))
    );
}

#[test]
fn qcow2_external_data_file_is_unsafe() {
    let dir = tmp();
    for opts in [
        "data_file=ext.raw",
        "data_file=ext2.raw,data_file_raw=on",
        "data_file=ext3.raw,compat=1.1,cluster_size=2M",
    ] {
        let data = create(dir.path(), "d.qcow2", "qcow2", "32M", opts);
        let got = inspect_all(&data);
        assert_eq!(got.format, DiskFormat::Qcow2, "{opts}");
        assert!(got.problems.contains(&Unsafe::DataFile), "{opts}: {got:?}");
        assert!(verify(&got, "qcow2", "bare", true).is_err());
    }
}

/// Hand-made header: version 3, 64 KiB clusters, given feature words.
fn qcow2_header(incompat: u64, cluster_bits: u32) -> Vec<u8> {
    let mut h = vec![0u8; 65536];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    h[20..24].copy_from_slice(&cluster_bits.to_be_bytes());
    h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
    h[72..80].copy_from_slice(&incompat.to_be_bytes());
    h[96..100].copy_from_slice(&4u32.to_be_bytes());
    h[100..104].copy_from_slice(&104u32.to_be_bytes());
    h
}

#[test]
fn qcow2_handmade_header_checks() {
    let got = inspect_all(&qcow2_header(0, 16));
    assert!(got.problems.is_empty(), "{got:?}");
    assert_eq!(got.virtual_size, 1 << 30);

    let got = inspect_all(&qcow2_header(1 << 40, 16));
    assert_eq!(got.problems, vec![Unsafe::UnknownFeatures(1 << 40)]);

    let got = inspect_all(&qcow2_header(0, 30));
    assert!(
        matches!(got.problems[..], [Unsafe::Malformed(_)]),
        "{got:?}"
    );

    // Data-file header extension ("DATA") even without the feature bit.
    let mut h = qcow2_header(0, 16);
    h[104..108].copy_from_slice(&0x4441_5441u32.to_be_bytes());
    h[108..112].copy_from_slice(&11u32.to_be_bytes());
    h[112..123].copy_from_slice(b"/etc/shadow");
    assert!(inspect_all(&h).problems.contains(&Unsafe::DataFile));

    // Extension that runs past the first cluster.
    let mut h = qcow2_header(0, 16);
    h[104..108].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    h[108..112].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        inspect_all(&h).problems[..],
        [Unsafe::Malformed(_)]
    ));

    // Truncated header: the magic makes qcow2 certain.
    let got = inspect_all(&qcow2_header(0, 16)[..50]);
    assert_eq!(got.format, DiskFormat::Qcow2);
    assert!(
        matches!(got.problems[..], [Unsafe::Malformed(_)]),
        "{got:?}"
    );
}

// ---------------------------------------------------------------- vmdk

#[test]
fn vmdk_monolithic_subformats_are_accepted() {
    let dir = tmp();
    for sub in ["monolithicSparse", "streamOptimized"] {
        for size in ["1M", "3G", "1000000"] {
            let name = format!("{sub}-{size}.vmdk");
            let data = create(dir.path(), &name, "vmdk", size, &format!("subformat={sub}"));
            let got = inspect_all(&data);
            assert_eq!(got.format, DiskFormat::Vmdk, "{name}");
            assert!(got.problems.is_empty(), "{name}: {:?}", got.problems);
            let want = qemu_virtual_size(dir.path(), &name, "vmdk");
            assert_eq!(got.virtual_size, want, "{name}");
            assert_eq!(verify(&got, "vmdk", "bare", false), Ok(()));
        }
    }
}

#[test]
fn vmdk_split_and_flat_subformats_are_refused() {
    let dir = tmp();
    for sub in [
        "twoGbMaxExtentSparse",
        "monolithicFlat",
        "twoGbMaxExtentFlat",
    ] {
        let name = format!("{sub}.vmdk");
        // The file named on the command line is the text descriptor.
        let data = create(
            dir.path(),
            &name,
            "vmdk",
            "100M",
            &format!("subformat={sub}"),
        );
        let got = inspect_all(&data);
        assert_eq!(got.format, DiskFormat::Vmdk, "{sub}");
        assert_eq!(got.virtual_size, 100 << 20, "{sub}");
        assert!(
            matches!(got.problems[..], [Unsafe::VmdkNotMonolithic(_)]),
            "{sub}: {:?}",
            got.problems
        );
        assert!(verify(&got, "vmdk", "bare", true).is_err());
    }
    // An extent file of a split sparse image has no descriptor of its own.
    let extent = std::fs::read(dir.path().join("twoGbMaxExtentSparse-s001.vmdk")).unwrap();
    assert!(!inspect_all(&extent).is_safe());
}

/// A monolithicSparse image with its embedded descriptor text rewritten.
fn vmdk_with_descriptor(edit: impl Fn(&str) -> String) -> Vec<u8> {
    let dir = tmp();
    let mut data = create(
        dir.path(),
        "e.vmdk",
        "vmdk",
        "64M",
        "subformat=monolithicSparse",
    );
    let desc_off = u64::from_le_bytes(data[28..36].try_into().unwrap()) as usize * 512;
    let desc_len = u64::from_le_bytes(data[36..44].try_into().unwrap()) as usize * 512;
    let area = &mut data[desc_off..desc_off + desc_len];
    let text_len = area.iter().position(|&b| b == 0).unwrap();
    let text = String::from_utf8(area[..text_len].to_vec()).unwrap();
    let new = edit(&text);
    assert!(new.len() <= desc_len);
    area.fill(0);
    area[..new.len()].copy_from_slice(new.as_bytes());
    data
}

#[test]
fn vmdk_edited_descriptors_are_refused() {
    let passwd = vmdk_with_descriptor(|t| {
        let line = t.lines().find(|l| l.starts_with("RW ")).unwrap();
        t.replace(line, "RW 131072 SPARSE \"/etc/passwd\"")
    });
    let got = inspect_all(&passwd);
    assert!(
        matches!(got.problems[..], [Unsafe::VmdkNotMonolithic(_)]),
        "{got:?}"
    );

    let flat = vmdk_with_descriptor(|t| {
        let line = t.lines().find(|l| l.starts_with("RW ")).unwrap();
        t.replace(line, "RW 131072 FLAT \"disk.img\" 0")
    });
    assert!(!inspect_all(&flat).is_safe());

    let two = vmdk_with_descriptor(|t| {
        let line = t
            .lines()
            .find(|l| l.starts_with("RW "))
            .unwrap()
            .to_string();
        t.replace(&line, &format!("{line}\nRW 10 SPARSE \"other.vmdk\""))
    });
    assert!(!inspect_all(&two).is_safe());

    let vmfs = vmdk_with_descriptor(|t| t.replace("monolithicSparse", "vmfs"));
    assert!(matches!(
        inspect_all(&vmfs).problems[..],
        [Unsafe::VmdkNotMonolithic(_)]
    ));

    let parent = vmdk_with_descriptor(|t| {
        t.replace(
            "parentCID=ffffffff",
            "parentCID=1234\nparentFileNameHint=\"/dev/sda\"",
        )
    });
    assert!(inspect_all(&parent).problems.contains(&Unsafe::BackingFile));

    let junk = vmdk_with_descriptor(|t| format!("{t}\nthis is not a descriptor line\n"));
    assert!(matches!(
        inspect_all(&junk).problems[..],
        [Unsafe::Malformed(_)]
    ));

    // Unchanged text is fine (sanity check of the helper).
    assert!(inspect_all(&vmdk_with_descriptor(str::to_string)).is_safe());
}

#[test]
fn vmdk_descriptor_size_limits() {
    let dir = tmp();
    let mut data = create(dir.path(), "b.vmdk", "vmdk", "8M", "");
    data[36..44].copy_from_slice(&(4096u64).to_le_bytes()); // 2 MiB descriptor
    let got = inspect_all(&data);
    assert!(
        matches!(got.problems[..], [Unsafe::Malformed(_)]),
        "{got:?}"
    );
    data[36..44].copy_from_slice(&0u64.to_le_bytes());
    assert!(!inspect_all(&data).is_safe());
    data[28..36].copy_from_slice(&u64::MAX.to_le_bytes());
    data[36..44].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(!inspect_all(&data).is_safe());
}

// ---------------------------------------------------------------- vhd / vhdx / vdi

#[test]
fn vhd_dynamic_and_fixed() {
    let dir = tmp();
    for sub in ["dynamic", "fixed"] {
        for size in ["1M", "100M", "1G"] {
            if sub == "fixed" && size == "1G" {
                continue; // keep the test light: fixed images are fully allocated
            }
            let name = format!("{sub}-{size}.vhd");
            let data = create(dir.path(), &name, "vpc", size, &format!("subformat={sub}"));
            if sub == "fixed" {
                // The footer is only at the end.
                assert!(!data.starts_with(b"conectix"));
            }
            let got = inspect_all(&data);
            assert_eq!(got.format, DiskFormat::Vhd, "{name}");
            assert!(got.problems.is_empty(), "{name}: {:?}", got.problems);
            assert_eq!(
                got.virtual_size,
                qemu_virtual_size(dir.path(), &name, "vpc"),
                "{name}"
            );
            assert_eq!(verify(&got, "vhd", "bare", false), Ok(()));
            assert_eq!(verify(&got, "vpc", "bare", false), Ok(()));
            assert!(verify(&got, "raw", "bare", false).is_err());
        }
    }
}

#[test]
fn vhd_footer_tampering() {
    let dir = tmp();
    let mut data = create(dir.path(), "t.vhd", "vpc", "8M", "subformat=fixed");
    let n = data.len();
    data[n - 512 + 40] ^= 1; // checksum no longer matches
    assert!(matches!(
        inspect_all(&data).problems[..],
        [Unsafe::Malformed(_)]
    ));
    // Fixed footer claiming more data than the file holds.
    let data = create(dir.path(), "t2.vhd", "vpc", "8M", "subformat=fixed");
    let got = inspect_all(&data[data.len() - 4 * 1024 * 1024 - 512..]);
    assert!(
        matches!(got.problems[..], [Unsafe::Malformed(_)]),
        "{got:?}"
    );
}

#[test]
fn vhdx_sizes() {
    let dir = tmp();
    for size in ["1M", "100M", "10G", "123456789"] {
        let name = format!("{size}.vhdx");
        let data = create(dir.path(), &name, "vhdx", size, "");
        let got = inspect_all(&data);
        assert_eq!(got.format, DiskFormat::Vhdx, "{name}");
        assert!(got.problems.is_empty(), "{name}: {:?}", got.problems);
        assert_eq!(
            got.virtual_size,
            qemu_virtual_size(dir.path(), &name, "vhdx"),
            "{name}"
        );
        assert_eq!(verify(&got, "vhdx", "bare", false), Ok(()));
    }
}

#[test]
fn vdi_sizes() {
    let dir = tmp();
    for (size, opts) in [("1M", ""), ("5G", ""), ("3M", "static=on")] {
        let name = format!("{size}.vdi");
        let data = create(dir.path(), &name, "vdi", size, opts);
        let got = inspect_all(&data);
        assert_eq!(got.format, DiskFormat::Vdi, "{name}");
        assert!(got.problems.is_empty(), "{name}: {:?}", got.problems);
        assert_eq!(
            got.virtual_size,
            qemu_virtual_size(dir.path(), &name, "vdi"),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------- raw / iso

#[test]
fn raw_random_and_zeros() {
    let mut rng = Rng(0x1234_5678);
    for data in [
        rng.bytes(300_000),
        vec![0u8; 200_000],
        vec![0u8; 100],
        Vec::new(),
    ] {
        let got = inspect_all(&data);
        assert_eq!(got.format, DiskFormat::Raw);
        assert_eq!(got.virtual_size, data.len() as u64);
        assert!(got.problems.is_empty());
        assert_eq!(verify(&got, "raw", "bare", false), Ok(()));
        assert_eq!(verify(&got, "ami", "ami", false), Ok(()));
    }
    let dir = tmp();
    let data = create(dir.path(), "r.raw", "raw", "1M", "");
    assert_eq!(inspect_all(&data).format, DiskFormat::Raw);
}

/// A minimal ISO 9660 image: system area, primary volume descriptor,
/// terminator, `blocks` blocks of 2 KiB in total.
fn iso_image(blocks: u32, declared_blocks: u32) -> Vec<u8> {
    let mut img = vec![0u8; blocks as usize * 2048];
    let pvd = &mut img[32768..32768 + 2048];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[80..84].copy_from_slice(&declared_blocks.to_le_bytes());
    pvd[84..88].copy_from_slice(&declared_blocks.to_be_bytes());
    pvd[128..130].copy_from_slice(&2048u16.to_le_bytes());
    pvd[130..132].copy_from_slice(&2048u16.to_be_bytes());
    let term = &mut img[34816..34816 + 2048];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    img
}

#[test]
fn iso_detection_and_policy() {
    let iso = iso_image(40, 40);
    let got = inspect_all(&iso);
    assert_eq!(got.format, DiskFormat::Iso);
    assert_eq!(got.virtual_size, 40 * 2048);
    assert!(got.is_safe());
    assert_eq!(verify(&got, "iso", "bare", false), Ok(()));
    assert_eq!(verify(&got, "raw", "bare", false), Ok(()));
    assert!(verify(&got, "qcow2", "bare", false).is_err());

    // Hybrid ISO: an MBR in the system area does not change anything.
    let mut hybrid = iso_image(40, 40);
    hybrid[510] = 0x55;
    hybrid[511] = 0xaa;
    assert_eq!(inspect_all(&hybrid).format, DiskFormat::Iso);

    // Appended data is fine; a volume larger than the file is not.
    let mut longer = iso_image(40, 36);
    longer.extend_from_slice(&[0u8; 4096]);
    assert!(inspect_all(&longer).is_safe());
    assert!(!inspect_all(&iso_image(40, 4000)).is_safe());

    // Upstream's "qcow2 header in the ISO system area" case.
    let mut both = iso_image(40, 40);
    both[..65536].copy_from_slice(&qcow2_header(0, 16)[..]);
    // Put the PVD back (the qcow2 header window overlapped it).
    both[32768..36864].copy_from_slice(&iso_image(40, 40)[32768..36864]);
    let got = inspect_all(&both);
    assert!(
        got.problems.contains(&Unsafe::MultipleFormats(vec![
            DiskFormat::Qcow2,
            DiskFormat::Iso
        ])),
        "{got:?}"
    );
    // A raw image that has nothing at 32 KiB is not an ISO.
    let raw = inspect_all(&vec![0u8; 80_000]);
    assert!(verify(&raw, "iso", "bare", false).is_err());
}

#[test]
fn vhd_footer_appended_to_qcow2_is_multiple_formats() {
    let dir = tmp();
    let mut data = create(dir.path(), "q.qcow2", "qcow2", "8M", "");
    let vhd = create(dir.path(), "v.vhd", "vpc", "1M", "subformat=fixed");
    data.extend_from_slice(&vhd[vhd.len() - 512..]);
    let got = inspect_all(&data);
    assert!(
        matches!(got.problems[0], Unsafe::MultipleFormats(_)),
        "{got:?}"
    );
}

#[test]
fn qed_and_luks_are_unsupported() {
    let dir = tmp();
    let data = create(dir.path(), "x.qed", "qed", "8M", "");
    let got = inspect_all(&data);
    assert_eq!(got.problems, vec![Unsafe::UnsupportedFormat("qed".into())]);
    let mut luks = vec![0u8; 4096];
    luks[..6].copy_from_slice(b"LUKS\xba\xbe");
    assert!(!inspect_all(&luks).is_safe());
}

// ---------------------------------------------------------------- policy

#[test]
fn verify_policy() {
    let dir = tmp();
    let q = inspect_all(&create(dir.path(), "p.qcow2", "qcow2", "8M", ""));
    let raw = inspect_all(&vec![7u8; 10_000]);
    let mismatch = |declared: &str, detected| {
        Err(InspectError::FormatMismatch {
            declared: declared.into(),
            detected,
        })
    };
    assert_eq!(
        verify(&q, "raw", "bare", false),
        mismatch("raw", DiskFormat::Qcow2)
    );
    assert_eq!(
        verify(&q, "ami", "ami", false),
        mismatch("ami", DiskFormat::Qcow2)
    );
    assert_eq!(
        verify(&q, "ploop", "bare", false),
        mismatch("ploop", DiskFormat::Qcow2)
    );
    assert_eq!(verify(&q, "QCOW2", "bare", false), Ok(()));
    assert_eq!(verify(&q, "raw", "bare", true), Ok(()));
    assert_eq!(
        verify(&raw, "qcow2", "bare", false),
        mismatch("qcow2", DiskFormat::Raw)
    );
    assert_eq!(verify(&raw, "qcow2", "bare", true), Ok(()));
    assert_eq!(verify(&raw, "qcow2", "compressed", false), Ok(()));
    assert_eq!(
        verify(&q, "raw", "compressed", false),
        mismatch("raw", DiskFormat::Qcow2)
    );
    assert_eq!(verify(&raw, "aki", "aki", false), Ok(()));
    assert_eq!(verify(&raw, "ploop", "bare", false), Ok(()));

    let msg = InspectError::FormatMismatch {
        declared: "raw".into(),
        detected: DiskFormat::Qcow2,
    }
    .to_string();
    assert_eq!(
        msg,
        "Image disk_format raw does not match stream data qcow2"
    );
    assert_eq!(DiskFormat::Vhd.to_string(), "vhd");
    assert_eq!(DiskFormat::from_name("VPC"), Some(DiskFormat::Vhd));
}

// ---------------------------------------------------------------- robustness

/// Sample images of every format (small ones).
fn corpus() -> Vec<Vec<u8>> {
    let dir = tmp();
    let mut out = vec![
        create(dir.path(), "a.qcow2", "qcow2", "8M", "cluster_size=4096"),
        create(dir.path(), "b.qcow2", "qcow2", "8M", "compat=0.10"),
        create(dir.path(), "c.vmdk", "vmdk", "8M", ""),
        create(
            dir.path(),
            "d.vmdk",
            "vmdk",
            "8M",
            "subformat=streamOptimized",
        ),
        create(
            dir.path(),
            "e.vmdk",
            "vmdk",
            "8M",
            "subformat=monolithicFlat",
        ),
        create(dir.path(), "f.vhd", "vpc", "8M", ""),
        create(dir.path(), "g.vhd", "vpc", "1M", "subformat=fixed"),
        create(dir.path(), "h.vhdx", "vhdx", "8M", ""),
        create(dir.path(), "i.vdi", "vdi", "8M", ""),
        iso_image(40, 40),
    ];
    out.push(qcow2_header(0, 16));
    out
}

#[test]
fn fuzz_truncated_and_bitflipped_never_panics() {
    let mut rng = Rng(0xdead_beef_cafe);
    for image in corpus() {
        // Truncations at interesting and random points.
        let mut cuts = vec![
            0,
            1,
            4,
            8,
            64,
            511,
            512,
            513,
            1024,
            32_768 + 7,
            196_608 + 20,
        ];
        cuts.extend((0..20).map(|_| rng.below(image.len())));
        for cut in cuts {
            let data = &image[..cut.min(image.len())];
            let _ = inspect_chunked(data, 1 + rng.below(70_000));
        }
        // Bit flips and random bytes in the regions the parsers read.
        let hot = [
            0usize,
            512,
            32_768,
            196_608,
            1 << 20,
            2 << 20,
            image.len().saturating_sub(1024),
        ];
        for _ in 0..150 {
            let mut data = image.clone();
            for _ in 0..1 + rng.below(16) {
                let base = hot[rng.below(hot.len())].min(data.len() - 1);
                let at = (base + rng.below(1024)).min(data.len() - 1);
                if rng.below(2) == 0 {
                    data[at] ^= 1 << rng.below(8);
                } else {
                    data[at] = rng.next() as u8;
                }
            }
            // Same verdict whatever the chunking.
            let a = inspect_chunked(&data, 1 + rng.below(9000));
            let b = inspect_chunked(&data, usize::MAX);
            assert_eq!(a, b);
        }
    }
    // Pure noise with format magics planted at the start.
    for magic in [
        &b"QFI\xfb"[..],
        b"KDMV",
        b"COWD",
        b"vhdxfile",
        b"conectix",
        b"# Disk DescriptorFile",
    ] {
        for _ in 0..200 {
            let len = 1 + rng.below(300_000);
            let mut data = rng.bytes(len);
            let n = magic.len().min(data.len());
            data[..n].copy_from_slice(&magic[..n]);
            let _ = inspect_chunked(&data, 1 + rng.below(5000));
        }
    }
}

#[test]
fn memory_stays_bounded() {
    let dir = tmp();
    let zeros = vec![0u8; 1 << 20];
    for (name, fmt, opts) in [
        ("m.qcow2", "qcow2", "cluster_size=2M"),
        ("m.vhdx", "vhdx", ""),
        ("m.vmdk", "vmdk", ""),
        ("m.raw", "raw", ""),
    ] {
        let data = create(dir.path(), name, fmt, "64M", opts);
        let mut ins = Inspector::new();
        ins.feed(&data[..data.len().min(8 << 20)]);
        for _ in 0..64 {
            ins.feed(&zeros);
            assert!(
                ins.captured_bytes() <= 2 * 1024 * 1024 + 256 * 1024,
                "{name}"
            );
        }
        let got = ins.finish();
        assert_ne!(got.size, 0);
    }
}

/// `cargo test --release -- --ignored throughput --nocapture`
#[test]
#[ignore]
fn throughput() {
    let dir = tmp();
    let qcow2 = create(dir.path(), "t.qcow2", "qcow2", "1G", "");
    let vhdx = create(dir.path(), "t.vhdx", "vhdx", "1G", "");
    for chunk_len in [4096usize, 65536, 1 << 20] {
        let chunk = vec![0x5au8; chunk_len];
        for (name, header) in [("raw", &[][..]), ("qcow2", &qcow2[..]), ("vhdx", &vhdx[..])] {
            let start = std::time::Instant::now();
            let mut ins = Inspector::new();
            for piece in header.chunks(chunk_len) {
                ins.feed(piece);
            }
            for _ in 0..(1usize << 30) / chunk_len {
                ins.feed(std::hint::black_box(&chunk));
            }
            let got = std::hint::black_box(ins.finish());
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{name:>5} ({}) + 1 GiB in {chunk_len}-byte chunks: {:.2} ms, {:.1} GB/s",
                got.format,
                secs * 1e3,
                got.size as f64 / secs / 1e9
            );
        }
    }
}

#[test]
fn vmdk_stream_optimized_footer_header_wins() {
    let dir = tmp();
    let mut data = create(
        dir.path(),
        "s.vmdk",
        "vmdk",
        "8M",
        "subformat=streamOptimized",
    );
    data[56..64].copy_from_slice(&u64::MAX.to_le_bytes()); // "grain directory at end"
    let without_footer = inspect_all(&data);
    assert!(matches!(
        without_footer.problems[..],
        [Unsafe::Malformed(_)]
    ));
    // footer marker, footer header (capacity 2 GiB), end-of-stream marker
    let mut footer = data[..512].to_vec();
    footer[12..20].copy_from_slice(&(4u64 << 20).to_le_bytes());
    data.extend_from_slice(&[0u8; 512]);
    data.extend_from_slice(&footer);
    data.extend_from_slice(&[0u8; 512]);
    let got = inspect_all(&data);
    assert!(got.is_safe(), "{got:?}");
    assert_eq!(got.virtual_size, 2 << 30);
}
