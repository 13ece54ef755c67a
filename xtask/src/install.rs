//! `cargo xtask install`: the release binary, the systemd unit and an example config,
//! laid out the way `docs/operations.md` describes.
//!
//! | what | where |
//! |---|---|
//! | binary | `PREFIX/bin/vipd` (0755) |
//! | unit | `/etc/systemd/system/vipd.service` (0644), `ExecStart` pointing at the binary |
//! | example config | `/etc/vipd/vipd.toml.example` (0644); `/etc/vipd/vipd.toml` is never written |
//! | docs | `PREFIX/share/doc/vipd/*.md` (the unit's `Documentation=`) |
//!
//! Everything goes under `DESTDIR` when one is given (staging for a package). The live
//! config is the operator's: the unit refuses to start until `vipd check` accepts it.
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Where the shipped unit expects the binary.
const UNIT_BIN: &str = "/usr/local/bin/vipd";
/// Where the shipped unit points its documentation.
const UNIT_DOC: &str = "/usr/share/doc/vipd/";

/// What [`install`] wrote.
#[derive(Debug)]
pub struct Installed {
    pub files: Vec<PathBuf>,
    /// The installed binary's path as the system will see it (without DESTDIR).
    pub bin: PathBuf,
}

/// Copies `bin` and the repository's unit, example config and docs from `root` into
/// `destdir` + `prefix`.
pub fn install(
    root: &Path,
    bin: &Path,
    prefix: &Path,
    destdir: Option<&Path>,
) -> anyhow::Result<Installed> {
    anyhow::ensure!(
        prefix.is_absolute(),
        "--prefix must be an absolute path, not {}",
        prefix.display()
    );
    let staged = |path: &Path| -> PathBuf {
        match destdir {
            // `Path::join` with an absolute path would replace DESTDIR: strip the root.
            Some(d) => d.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    };
    let system_bin = prefix.join("bin/vipd");
    let doc_dir = prefix.join("share/doc/vipd");
    let mut files = Vec::new();

    let target = staged(&system_bin);
    put(&target, &read(bin)?, 0o755)?;
    files.push(target);

    let unit = String::from_utf8(read(&root.join("contrib/vipd.service"))?)
        .context("contrib/vipd.service is not UTF-8")?
        .replace(UNIT_BIN, &system_bin.to_string_lossy())
        .replace(UNIT_DOC, &format!("{}/", doc_dir.display()));
    let target = staged(Path::new("/etc/systemd/system/vipd.service"));
    put(&target, unit.as_bytes(), 0o644)?;
    files.push(target);

    let target = staged(Path::new("/etc/vipd/vipd.toml.example"));
    put(
        &target,
        &read(&root.join("examples/vipd-node1.toml"))?,
        0o644,
    )?;
    files.push(target);

    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .context("reading docs/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    for doc in docs {
        let Some(name) = doc.file_name() else {
            continue;
        };
        let target = staged(&doc_dir.join(name));
        put(&target, &read(&doc)?, 0o644)?;
        files.push(target);
    }
    Ok(Installed {
        files,
        bin: system_bin,
    })
}

pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes `bytes` to `path` with `mode`, creating parent directories; replaces the file
/// atomically so a running binary is not rewritten in place.
pub(crate) fn put(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.xtask-install",
        path.file_name()
            .map_or("file".into(), |n| n.to_string_lossy())
    ));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("installing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-install-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn stages_binary_unit_example_and_docs_under_destdir() {
        let root = crate::workspace_root();
        let dest = scratch("stage");
        let fake_bin = dest.with_extension("bin");
        fs::write(&fake_bin, b"\x7fELF not really").unwrap();
        let installed = install(&root, &fake_bin, Path::new("/opt/vipd"), Some(&dest)).unwrap();
        assert_eq!(installed.bin, PathBuf::from("/opt/vipd/bin/vipd"));

        let bin = dest.join("opt/vipd/bin/vipd");
        assert_eq!(fs::read(&bin).unwrap(), b"\x7fELF not really");
        assert_eq!(
            fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
            0o755
        );

        let unit = fs::read_to_string(dest.join("etc/systemd/system/vipd.service")).unwrap();
        assert!(unit.contains("ExecStart=/opt/vipd/bin/vipd run -c /etc/vipd/vipd.toml"));
        assert!(unit.contains("Type=notify"), "{unit}");
        assert!(!unit.contains(UNIT_BIN), "{unit}");
        assert!(
            unit.contains("file:///opt/vipd/share/doc/vipd/operations.md"),
            "{unit}"
        );

        let example = dest.join("etc/vipd/vipd.toml.example");
        assert_eq!(
            fs::read(&example).unwrap(),
            fs::read(root.join("examples/vipd-node1.toml")).unwrap()
        );
        assert!(!dest.join("etc/vipd/vipd.toml").exists());
        assert!(dest.join("opt/vipd/share/doc/vipd/operations.md").exists());
        // Nothing escaped DESTDIR, and a second run (an upgrade) is fine.
        assert!(installed.files.iter().all(|f| f.starts_with(&dest)));
        install(&root, &fake_bin, Path::new("/opt/vipd"), Some(&dest)).unwrap();
        let _ = fs::remove_dir_all(&dest);
        let _ = fs::remove_file(&fake_bin);
    }

    #[test]
    fn relative_prefix_is_refused() {
        let root = crate::workspace_root();
        let err = install(&root, Path::new("/nonexistent"), Path::new("usr"), None).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    }
}
