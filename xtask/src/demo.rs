pub fn demo(_bin: &std::path::Path) -> anyhow::Result<()> {
    Ok(())
}
