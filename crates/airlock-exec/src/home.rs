//! The child's private `HOME` and the git askpass helper that lives in it.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// A fresh directory (mode 0700) used as the child's `HOME`, with `tmp/` inside
/// as its `TMPDIR`; removed with everything in it when dropped — after the child
/// has been reaped, since [`Running`](crate::Running) owns it.
///
/// Nothing of the owner's home is visible to the child: no `~/.gitconfig`,
/// `~/.config/gh`, `~/.npmrc`, `~/.ssh`. Configuration the program needs (a git
/// identity for commits, say) goes in the capability's `env`.
#[derive(Debug)]
pub struct PrivateHome {
    dir: tempfile::TempDir,
}

impl PrivateHome {
    /// Creates one under `parent` (the system temporary directory when `None`).
    pub fn create(parent: Option<&Path>) -> std::io::Result<PrivateHome> {
        let mut builder = tempfile::Builder::new();
        builder
            .prefix("airlock-exec-")
            .permissions(fs::Permissions::from_mode(0o700));
        let dir = match parent {
            Some(p) => builder.tempdir_in(p)?,
            None => builder.tempdir()?,
        };
        // Belt and braces: the umask cannot widen it, but check.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join("tmp"))?;
        Ok(PrivateHome { dir })
    }

    /// The directory (`HOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `HOME/tmp` (`TMPDIR`).
    pub fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// Writes the file git reads as its global configuration (`GIT_CONFIG_GLOBAL`,
    /// mode 0600) and returns its path.
    ///
    /// It pins git's global configuration to a file airlock wrote, so nothing
    /// else in this directory (`~/.gitconfig`, `~/.config/git/config`, written by
    /// a program the child runs) is read as global configuration. It holds no
    /// setting: global configuration ranks below the repository's own, so what
    /// must win over an agent-written `.git/config` is given on git's command
    /// line instead ([`GIT_CONFIG_OVERRIDES`](crate::GIT_CONFIG_OVERRIDES)).
    /// Its one setting is `safe.directory`, limited to `workdirs` (each, and
    /// everything below it): git trusts repositories there even when another
    /// user owns them, and elsewhere only those owned by airlock's user (which
    /// the sandbox keeps out of reach anyway). A workdir whose path cannot be
    /// written as a git config value (a newline in it) gets no entry.
    pub fn write_git_config(&self, workdirs: &[PathBuf]) -> std::io::Result<PathBuf> {
        let (path, mut f) = self.new_file(".airlock-gitconfig", 0o600)?;
        f.write_all(
            b"# git's global configuration for one command airlock runs (GIT_CONFIG_GLOBAL);\n\
              # removed with this directory. The settings that keep git safe are given on\n\
              # its command line (GIT_CONFIG_COUNT), which wins over every file.\n",
        )?;
        let mut safe = String::new();
        for dir in workdirs {
            let Some(d) = dir.to_str().filter(|d| !d.contains(['\n', '\r', '\0'])) else {
                continue;
            };
            let quoted = d.replace('\\', "\\\\").replace('"', "\\\"");
            let all = if quoted.ends_with('/') {
                format!("{quoted}*")
            } else {
                format!("{quoted}/*")
            };
            safe.push_str(&format!(
                "\tdirectory = \"{quoted}\"\n\tdirectory = \"{all}\"\n"
            ));
        }
        if !safe.is_empty() {
            f.write_all(format!("[safe]\n{safe}").as_bytes())?;
        }
        Ok(path)
    }

    /// Creates the new file `name` in this directory with `mode`, for writing.
    fn new_file(&self, name: &str, mode: u32) -> std::io::Result<(PathBuf, fs::File)> {
        let path = self.dir.path().join(name);
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        Ok((path, f))
    }

    /// Writes the askpass helper for `cred` (mode 0700) and returns its path.
    ///
    /// The helper holds no secret: it prints the value of the environment variable
    /// `cred.token_var` (which the child already has), and only when git's prompt
    /// names one of `cred.origins`; for any other prompt it prints nothing and
    /// fails, so a remote on another host gets nothing. The username prompt for an
    /// allowed origin is answered with `cred.username`.
    pub fn write_askpass(&self, cred: &GitCredential) -> std::io::Result<PathBuf> {
        let (path, mut f) = self.new_file(".airlock-askpass", 0o700)?;
        f.write_all(cred.script().as_bytes())?;
        f.sync_all()?;
        Ok(path)
    }
}

/// The variables whose `{{secret}}` git gets through the askpass helper.
const GIT_TOKEN_VARS: [&str; 2] = ["GH_TOKEN", "GITHUB_TOKEN"];

/// How a token reaches git over HTTPS: through `GIT_ASKPASS`, for some origins only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCredential {
    /// Origins (`https://github.com`, `https://ghe.example.com:8443`) whose prompts
    /// are answered. Only `scheme://host[:port]` with a plain host is accepted.
    pub origins: Vec<String>,
    /// The variable in the child's environment that holds the token.
    pub token_var: String,
    /// Username answered to `Username for '<origin>': ` (GitHub accepts any;
    /// `x-access-token` is the documented one).
    pub username: String,
}

impl GitCredential {
    /// The credential for a service whose base URL is `service_url`, with the token
    /// in `token_var`: the service's own origin, plus `https://github.com` when the
    /// service is the GitHub API (`api.github.com`, whose git host differs). `None`
    /// when the URL has no usable origin.
    pub fn for_service(service_url: &url::Url, token_var: &str) -> Option<GitCredential> {
        let host = service_url.host_str()?;
        let scheme = service_url.scheme();
        if scheme != "https" && scheme != "http" {
            return None;
        }
        let mut origins = vec![match service_url.port() {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        }];
        if host.eq_ignore_ascii_case("api.github.com") {
            origins.push("https://github.com".into());
        }
        let cred = GitCredential {
            origins,
            token_var: token_var.to_string(),
            username: "x-access-token".into(),
        };
        cred.is_valid().then_some(cred)
    }

    /// The credential of an exec capability whose `env` gives git the service's
    /// token: `GH_TOKEN` or `GITHUB_TOKEN` set to exactly `{{secret}}` (the first
    /// of the two), for the origin(s) of `service_url`. One rule for the MCP
    /// `exec` tool and for `airlock run`/`wrap --cap`.
    pub fn for_capability_env(
        service_url: &url::Url,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Option<GitCredential> {
        let var = GIT_TOKEN_VARS
            .into_iter()
            .find(|k| env.get(*k).is_some_and(|v| v == "{{secret}}"))?;
        GitCredential::for_service(service_url, var)
    }

    /// Whether every piece can be written into the helper script literally.
    pub fn is_valid(&self) -> bool {
        let origin_ok = |o: &str| {
            let Some((scheme, rest)) = o.split_once("://") else {
                return false;
            };
            matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && rest.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        };
        let var_ok = self
            .token_var
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && self
                .token_var
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let user_ok = !self.username.is_empty()
            && self
                .username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        !self.origins.is_empty() && self.origins.iter().all(|o| origin_ok(o)) && var_ok && user_ok
    }

    /// The helper script. git calls it with the prompt as `$1`:
    /// `Username for 'https://github.com': ` and
    /// `Password for 'https://USER@github.com': `.
    fn script(&self) -> String {
        let mut s = String::from(
            "#!/bin/sh\n\
             # airlock git askpass helper (removed after the command). It holds no\n\
             # secret: it prints a variable of the environment git already has, and\n\
             # only when the prompt names an origin the capability's service owns.\n\
             p=$1\n",
        );
        for origin in &self.origins {
            let (scheme, host) = origin.split_once("://").unwrap_or(("https", origin));
            s.push_str(&format!(
                "case \"$p\" in\n\
                 \"Username for '{origin}': \")\n  printf '%s\\n' '{user}'; exit 0 ;;\n\
                 \"Password for '{scheme}://\"*\"@{host}': \")\n\
                 \x20 u=${{p#\"Password for '{scheme}://\"}}; u=${{u%\"@{host}': \"}}\n\
                 \x20 case \"$u\" in ''|*[/@:\\'\\ ]*) exit 1 ;; esac\n\
                 \x20 printf '%s\\n' \"${var}\"; exit 0 ;;\n\
                 esac\n",
                user = self.username,
                var = self.token_var,
            ));
        }
        s.push_str("exit 1\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_private_and_removed() {
        let home = PrivateHome::create(None).unwrap();
        let p = home.path().to_path_buf();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(home.tmp().is_dir());
        let config = home
            .write_git_config(&[PathBuf::from("/srv/a \"b\""), PathBuf::from("/bad\nline")])
            .unwrap();
        assert!(config.starts_with(&p));
        let text = fs::read_to_string(&config).unwrap();
        assert!(
            text.contains(
                "[safe]\n\tdirectory = \"/srv/a \\\"b\\\"\"\n\tdirectory = \"/srv/a \\\"b\\\"/*\"\n"
            ),
            "{text}"
        );
        assert!(!text.contains("bad"), "{text}");
        let mode = fs::metadata(&config).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(home);
        assert!(!p.exists());
    }

    #[test]
    fn credential_for_github_api() {
        let url = url::Url::parse("https://api.github.com").unwrap();
        let c = GitCredential::for_service(&url, "GH_TOKEN").unwrap();
        assert_eq!(c.origins, ["https://api.github.com", "https://github.com"]);
        let bad = GitCredential {
            origins: vec!["https://x'; rm -rf /".into()],
            token_var: "GH_TOKEN".into(),
            username: "u".into(),
        };
        assert!(!bad.is_valid());
    }
}
