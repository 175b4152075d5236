//! `open-forensics install`: the binary, the systemd unit, a default config and rule file, shell
//! completions and man pages, each where a distribution would put it under `--prefix`.
//!
//! Nothing an administrator may have edited is overwritten: an existing config, rule file or
//! unit that differs from what would be installed stays, and the new one is written beside it as
//! `NAME.new` (said on stderr), as dpkg does with conffiles. Every file is written to a temporary
//! name in its directory and renamed into place, so a reader never sees half of one.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The unit, as shipped (ExecStart names `/usr/local/bin`; [`unit_for`] rewrites it).
pub const UNIT: &str = include_str!("../../contrib/open-forensics.service");
/// The default config.
pub const CONFIG: &str = include_str!("../../contrib/config.yaml");
/// The default rules (the config's `rules`).
pub const RULES: &str = include_str!("../../fixtures/rules/detections.yaml");

/// The installed binary's debug info, split off (see `cli::debuginfo`).
pub const DEBUG_NAME: &str = "open-forensics.debug";

/// The unit with ExecStart pointing at `bindir`.
pub fn unit_for(bindir: &Path) -> String {
    UNIT.replace(
        "ExecStart=/usr/local/bin/open-forensics",
        &format!("ExecStart={}/open-forensics", bindir.display()),
    )
}

/// One file to install.
pub struct Item {
    /// Where it goes (already under the destination root).
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub mode: u32,
    /// An administrator's file (config, rules, unit): never replaced when it differs.
    pub keep: bool,
}

/// Where things go: `prefix` for the binary, completions and man pages; `/etc` for the unit and
/// the config; everything under `destdir` (staging for packages and tests; `/` normally).
pub struct Layout {
    pub prefix: PathBuf,
    pub destdir: PathBuf,
}

impl Layout {
    fn under(&self, p: &Path) -> PathBuf {
        self.destdir.join(p.strip_prefix("/").unwrap_or(p))
    }

    pub fn bindir(&self) -> PathBuf {
        self.prefix.join("bin")
    }

    /// The files to install, given the binary and the generated completions and man pages
    /// (`(file name, bytes)`).
    pub fn items(
        &self,
        binary: Vec<u8>,
        debug: Option<Vec<u8>>,
        completions: &[(&str, Vec<u8>)],
        man: &[(String, Vec<u8>)],
    ) -> Vec<Item> {
        let p = &self.prefix;
        let mut v = vec![
            Item {
                path: self.under(&self.bindir().join("open-forensics")),
                bytes: binary,
                mode: 0o755,
                keep: false,
            },
            Item {
                path: self.under(Path::new("/etc/systemd/system/open-forensics.service")),
                bytes: unit_for(&self.bindir()).into_bytes(),
                mode: 0o644,
                keep: true,
            },
            Item {
                path: self.under(Path::new("/etc/open-forensics/config.yaml")),
                bytes: CONFIG.as_bytes().to_vec(),
                mode: 0o644,
                keep: true,
            },
            Item {
                path: self.under(Path::new("/etc/open-forensics/rules/detections.yaml")),
                bytes: RULES.as_bytes().to_vec(),
                mode: 0o644,
                keep: true,
            },
        ];
        // Where gdb and perf look for a binary's debug link: /usr/lib/debug + its directory.
        if let Some(bytes) = debug {
            let dir = Path::new("/usr/lib/debug")
                .join(self.bindir().strip_prefix("/").unwrap_or(&self.bindir()));
            v.push(Item {
                path: self.under(&dir.join(DEBUG_NAME)),
                bytes,
                mode: 0o644,
                keep: false,
            });
        }
        for (shell, bytes) in completions {
            let rel = match *shell {
                "bash" => "share/bash-completion/completions/open-forensics",
                "zsh" => "share/zsh/site-functions/_open-forensics",
                "fish" => "share/fish/vendor_completions.d/open-forensics.fish",
                _ => continue,
            };
            v.push(Item {
                path: self.under(&p.join(rel)),
                bytes: bytes.clone(),
                mode: 0o644,
                keep: false,
            });
        }
        for (name, bytes) in man {
            v.push(Item {
                path: self.under(&p.join("share/man/man1").join(name)),
                bytes: bytes.clone(),
                mode: 0o644,
                keep: false,
            });
        }
        v
    }
}

/// What happened to one item.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    Installed,
    Unchanged,
    /// An existing, different administrator's file stayed; the new one went to `.new`.
    KeptWithNew(PathBuf),
}

/// Installs one item (or, with `dry_run`, says what would happen).
pub fn install(item: &Item, dry_run: bool) -> anyhow::Result<Done> {
    let existing = match std::fs::symlink_metadata(&item.path) {
        Ok(m) if m.is_file() => Some(std::fs::read(&item.path)?),
        Ok(_) if item.keep => Some(Vec::new()), // a link or directory there: leave it alone
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("inspect {}", item.path.display())),
    };
    let (target, done) = match existing {
        Some(old) if old == item.bytes => return Ok(Done::Unchanged),
        Some(_) if item.keep => {
            let mut new = item.path.clone().into_os_string();
            new.push(".new");
            let new = PathBuf::from(new);
            (new.clone(), Done::KeptWithNew(new))
        }
        _ => (item.path.clone(), Done::Installed),
    };
    if dry_run {
        return Ok(done);
    }
    let dir = target.parent().unwrap_or(Path::new("/"));
    create_dirs(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".open-forensics-install")
        .tempfile_in(dir)
        .with_context(|| format!("create a file in {}", dir.display()))?;
    tmp.write_all(&item.bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("write {}", target.display()))?;
    set_mode(tmp.path(), item.mode)?;
    tmp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("install {}", target.display()))?;
    Ok(done)
}

/// Creates `dir` and its missing parents 0755 (the process umask is the store's, 077).
fn create_dirs(dir: &Path) -> anyhow::Result<()> {
    // (A relative destdir ends in "", which is the current directory, not one to create.)
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .collect();
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for d in missing {
        set_mode(d, 0o755)?;
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_config_is_kept_and_the_new_one_goes_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let item = |bytes: &str| Item {
            path: d.path().join("etc/config.yaml"),
            bytes: bytes.as_bytes().to_vec(),
            mode: 0o644,
            keep: true,
        };
        assert_eq!(install(&item("a"), false).unwrap(), Done::Installed);
        assert_eq!(install(&item("a"), false).unwrap(), Done::Unchanged);
        let new = d.path().join("etc/config.yaml.new");
        assert_eq!(
            install(&item("b"), true).unwrap(),
            Done::KeptWithNew(new.clone())
        );
        assert!(!new.exists(), "a dry run writes nothing");
        assert_eq!(
            install(&item("b"), false).unwrap(),
            Done::KeptWithNew(new.clone())
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join("etc/config.yaml")).unwrap(),
            "a"
        );
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "b");
    }

    #[test]
    fn the_unit_runs_the_installed_binary() {
        let u = unit_for(Path::new("/opt/of/bin"));
        assert!(u.contains(
            "ExecStart=/opt/of/bin/open-forensics record --config /etc/open-forensics/config.yaml"
        ));
        assert!(!u.contains("/usr/local/bin"));
    }
}
