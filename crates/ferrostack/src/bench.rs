//! Benchmarks (filled in below).
#[derive(clap::Args, Debug)]
pub struct IdentityBench {}
pub async fn identity(_b: IdentityBench) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
