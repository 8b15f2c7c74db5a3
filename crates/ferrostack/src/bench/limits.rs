//! This machine's own limits for the image upload pipeline: sequential
//! write+fsync throughput of a directory, and single-thread md5 and sha512
//! throughput. Plain blocking functions returning MB/s (10^6 bytes per second),
//! used by `bench image` to express the pipeline's speed as a share of them.
//! (Bench code: it lives with the benches, not in the image domain.)

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use md5::Md5;
use sha2::{Digest, Sha512};

use ferrostack_image::store::fs::WRITE_CHUNK;

/// Buffer size the hash measurements feed per `update` call.
pub const HASH_CHUNK: usize = 1 << 20;

/// Writes `bytes` to a new file in `dir` in [`WRITE_CHUNK`] writes (the store's
/// coalesced write size), fsyncs it, deletes it; returns MB/s of write+fsync.
pub fn measure_write_fsync(dir: &Path, bytes: u64) -> io::Result<f64> {
    let path = dir.join(format!(".limits-{}", ferrostack_core::ids::new_hex_id()));
    let mut buf = vec![0u8; WRITE_CHUNK];
    fill_pseudo_random(&mut buf, 0x5eed);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let start = Instant::now();
        let mut left = bytes;
        while left > 0 {
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
        Ok(mb_per_s(bytes, start))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// The upload pipeline's work without the API: write+fsync, md5 and sha512 of
/// `bytes` bytes, each on its own thread, all at once (as the pipeline runs them).
/// Returns MB/s of the whole, i.e. bytes over the time the slowest one took. On a
/// machine with fewer cores than stages this is the real ceiling for uploads.
pub fn measure_all_at_once(dir: &Path, bytes: u64) -> io::Result<f64> {
    let start = Instant::now();
    let dir = dir.to_path_buf();
    let writer = std::thread::spawn(move || measure_write_fsync(&dir, bytes));
    let md5 = std::thread::spawn(move || measure_md5(bytes));
    let sha = std::thread::spawn(move || measure_sha512(bytes));
    let joined = |r: std::thread::Result<f64>| r.map_err(|_| io::Error::other("thread panicked"));
    writer
        .join()
        .map_err(|_| io::Error::other("thread panicked"))??;
    joined(md5.join())?;
    joined(sha.join())?;
    Ok(mb_per_s(bytes, start))
}

/// Single-thread md5 throughput in MB/s over `bytes` bytes.
pub fn measure_md5(bytes: u64) -> f64 {
    measure_digest::<Md5>(bytes)
}

/// Single-thread sha512 throughput in MB/s over `bytes` bytes.
pub fn measure_sha512(bytes: u64) -> f64 {
    measure_digest::<Sha512>(bytes)
}

fn measure_digest<D: Digest>(bytes: u64) -> f64 {
    let mut buf = vec![0u8; HASH_CHUNK];
    fill_pseudo_random(&mut buf, 0xd16e57);
    let start = Instant::now();
    let mut d = D::new();
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        d.update(black_box(&buf[..n]));
        left -= n as u64;
    }
    black_box(d.finalize());
    mb_per_s(bytes, start)
}

fn mb_per_s(bytes: u64, start: Instant) -> f64 {
    bytes as f64 / 1e6 / start.elapsed().as_secs_f64().max(1e-9)
}

/// Fills `buf` with incompressible pseudo-random bytes (xorshift64*), deterministic
/// for a given `seed`. For benchmarks and tests, not for cryptography.
pub fn fill_pseudo_random(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_are_positive_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(measure_write_fsync(dir.path(), 3 << 20).unwrap() > 0.0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(measure_md5(1 << 20) > 0.0);
        assert!(measure_sha512((1 << 20) + 5) > 0.0);
    }

    #[test]
    fn pseudo_random_is_deterministic() {
        let (mut a, mut b) = (vec![0u8; 13], vec![0u8; 13]);
        fill_pseudo_random(&mut a, 7);
        fill_pseudo_random(&mut b, 7);
        assert_eq!(a, b);
        assert!(a.iter().any(|&x| x != 0));
    }
}
