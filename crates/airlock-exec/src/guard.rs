//! Argument guards: defense in depth for well-known trampolines.
//!
//! The owner's allow-list is the primary control: the agent can only run programs
//! the owner named. But some of those programs run *other* programs when given the
//! right arguments (`git -c alias.x='!sh …' x`, `git clone --upload-pack=…`,
//! `gh extension exec`, `npm exec`, `env sh`, `find -exec`). For those, the guards
//! here refuse the arguments that would let the agent pick a program after all.
//!
//! Decisions, per program:
//!
//! * **git** — global options before the sub-command come from a short allow-list
//!   (`--no-pager`, `-P`, `-p`, `--paginate`, `--bare`, `--no-replace-objects`,
//!   `--*-pathspecs`, `--no-optional-locks`, `--no-advice`, `--version`, `-h`);
//!   everything else is refused, in particular `-c` and `--config-env` (entirely:
//!   configuration can name programs through `alias.*`, `core.sshCommand`,
//!   `core.pager`, `core.editor`, `credential.helper`, `core.fsmonitor`…),
//!   `--exec-path`, and `-C`/`--git-dir`/`--work-tree` (they leave the workdirs).
//!   The sub-command must be a built-in git command from [`GIT_SUBCOMMANDS`]: an
//!   alias can never shadow a built-in, so no alias runs, and no external `git-*`
//!   program either. Refused sub-commands: `config` (writes the configuration
//!   later commands obey), `filter-branch`, `difftool`, `mergetool`, `help` (runs a
//!   viewer), `maintenance` (installs schedulers), `bisect run`,
//!   `submodule foreach`. Per sub-command option guards (`GIT_OPTION_GUARDS`;
//!   long options also in every abbreviation git accepts, short options also
//!   inside clusters), by what they would do:
//!   - *run a program*: `--upload-pack`/`-u` (clone, ls-remote; fetch and pull:
//!     `--upload-pack`), `--config`/`-c` (clone), `--receive-pack`/`--exec`
//!     (push), `--exec` (archive), `--exec`/`-x` (rebase),
//!     `--open-files-in-pager`/`-O` (grep), and `--ext-diff`, `--help`,
//!     `--exec-path` everywhere;
//!   - *install configuration that runs programs*: `--template` (init, clone: the
//!     template's `config` may set `diff.external`, its `hooks/` run);
//!   - *write outside the workdirs*: `--output` and `--output-directory`
//!     everywhere (every command with diff options), `-o` (format-patch,
//!     archive), `--unsafe-paths` (apply), `--separate-git-dir` (init, clone);
//!   - *read outside the workdirs*: `--no-index` everywhere (diff, grep), path
//!     arguments of `diff` and `hash-object` that are absolute (other than
//!     `/dev/null`) or contain `..` — `git diff` with a path outside the working
//!     tree is an implicit `--no-index` — also after `--`;
//!     `--add-file` (archive), `--contents` (blame, annotate), `--stdin-paths`
//!     (hash-object), `--reference[-if-able]` (clone, submodule).
//!
//!   `-C`, `--git-dir`, `--work-tree` stay refused rather than checked against
//!   the workdirs: the request's `cwd` is checked already, and a second
//!   directory would only add a way around that check. Other arguments are not
//!   inspected (git has many ways to name a file: `commit -F`, `init <dir>`,
//!   `bundle create <file>`…): the guards are defence in depth, and the kernel
//!   sandbox (DESIGN.md §7, invariant 11) is what keeps a child inside the
//!   workdirs.
//!   What arguments cannot stop — the repository's own `.git/config`, which the
//!   agent may be able to write — is narrowed by [`GIT_CONFIG_OVERRIDES`] in the
//!   child's environment; see `docs/exec.md` for what remains.
//! * **gh** — `alias`, `extension`/`extensions`/`ext` refused (they define or run
//!   arbitrary commands); arguments after `--` go to `git clone` and get the
//!   clone guard.
//! * **npm** — `exec`, `x`, `explore`, `create`, `init <initializer>` refused, and
//!   `--call`/`-c`, `--script-shell`, `--node-options`, `--shell`. (npm still runs
//!   the project's `package.json` scripts on `install`, `test`, `run`: allowing npm
//!   in a directory the agent can write allows that.)
//! * **env** — may print the environment (options and `NAME=value` only); running
//!   a program (`env sh`), `-S`/`--split-string` and `-C`/`--chdir` are refused.
//! * **find** — `-exec`, `-execdir`, `-ok`, `-okdir`, `-fprint`, `-fprint0`,
//!   `-fprintf`, `-fls` refused.
//! * **shells, interpreters, pure trampolines** (`sh`, `bash`, `python`, `node`,
//!   `xargs`, `sudo`, `npx`…) — not guarded: running code is what they do, so
//!   allowing one allows everything. Refused unless the owner lists them; flagged
//!   by [`ExecPolicy::warnings`](crate::ExecPolicy::warnings) when listed.
//!
//! `deny_args` ([`DenyArgs`]) adds the owner's own refusals to every program of
//! the capability.
//!
//! [`GIT_CONFIG_OVERRIDES`]: crate::GIT_CONFIG_OVERRIDES

use crate::error::{Refusal, shown};
use crate::program::ProgramKind;

/// Built-in git sub-commands an agent may run (others are refused: aliases,
/// external `git-*` programs, and the refused ones listed in the module docs).
pub const GIT_SUBCOMMANDS: &[&str] = &[
    "add",
    "am",
    "annotate",
    "apply",
    "archive",
    "bisect",
    "blame",
    "branch",
    "bundle",
    "cat-file",
    "check-attr",
    "check-ignore",
    "check-mailmap",
    "check-ref-format",
    "checkout",
    "cherry",
    "cherry-pick",
    "clean",
    "clone",
    "commit",
    "commit-graph",
    "count-objects",
    "describe",
    "diff",
    "diff-files",
    "diff-index",
    "diff-tree",
    "fetch",
    "for-each-ref",
    "format-patch",
    "fsck",
    "gc",
    "grep",
    "hash-object",
    "init",
    "log",
    "ls-files",
    "ls-remote",
    "ls-tree",
    "merge",
    "merge-base",
    "mv",
    "name-rev",
    "notes",
    "prune",
    "pull",
    "push",
    "range-diff",
    "rebase",
    "reflog",
    "remote",
    "repack",
    "replace",
    "reset",
    "restore",
    "rev-list",
    "rev-parse",
    "revert",
    "rm",
    "shortlog",
    "show",
    "show-branch",
    "show-ref",
    "sparse-checkout",
    "stash",
    "status",
    "submodule",
    "switch",
    "symbolic-ref",
    "tag",
    "update-index",
    "update-ref",
    "var",
    "verify-commit",
    "verify-tag",
    "version",
    "whatchanged",
    "worktree",
    "write-tree",
];

/// Global git options (before the sub-command) that are allowed.
const GIT_GLOBAL_OK: &[&str] = &[
    "--no-pager",
    "-P",
    "-p",
    "--paginate",
    "--bare",
    "--no-replace-objects",
    "--literal-pathspecs",
    "--glob-pathspecs",
    "--noglob-pathspecs",
    "--icase-pathspecs",
    "--no-optional-locks",
    "--no-advice",
    "--version",
    "-v",
    "-h",
];

/// Sub-commands that exist but are refused, and why.
const GIT_REFUSED_SUBCOMMANDS: &[(&str, &str)] = &[
    (
        "config",
        "it writes configuration that later git commands obey (aliases, core.sshCommand, core.fsmonitor…)",
    ),
    ("filter-branch", "its filters are shell commands"),
    ("difftool", "it runs a configurable external tool"),
    ("mergetool", "it runs a configurable external tool"),
    ("help", "it runs a configurable viewer or browser"),
    (
        "maintenance",
        "it installs schedulers (cron, systemd) that run later",
    ),
];

/// Why a git option is refused (the message after the option's name).
const RUNS: &str = "it runs a program of the caller's choosing";
const TEMPLATE: &str =
    "it copies a template directory whose config and hooks git then obeys (diff.external, hooks…)";
const WRITES: &str = "it writes a file wherever it is told, outside the workdirs too";
const READS: &str = "it reads a file named by the caller, outside the workdirs too";
const OTHER_REPO: &str = "it reads the objects of another repository on this machine";

/// `(sub-command, long options without "--", short option letters, why)`
/// refused. A sub-command may have several rows.
const GIT_OPTION_GUARDS: &[(&str, &[&str], &[char], &str)] = &[
    ("clone", &["upload-pack", "config"], &['u', 'c'], RUNS),
    ("clone", &["template"], &[], TEMPLATE),
    ("clone", &["separate-git-dir"], &[], WRITES),
    (
        "clone",
        &["reference", "reference-if-able"],
        &[],
        OTHER_REPO,
    ),
    ("init", &["template"], &[], TEMPLATE),
    ("init", &["separate-git-dir"], &[], WRITES),
    ("submodule", &["reference"], &[], OTHER_REPO),
    ("ls-remote", &["upload-pack"], &['u'], RUNS),
    ("fetch", &["upload-pack"], &[], RUNS),
    ("pull", &["upload-pack"], &[], RUNS),
    ("push", &["receive-pack", "exec"], &[], RUNS),
    ("archive", &["exec"], &[], RUNS),
    ("archive", &["output"], &['o'], WRITES),
    ("archive", &["add-file"], &[], READS),
    ("hash-object", &["stdin-paths"], &[], READS),
    ("format-patch", &[], &['o'], WRITES),
    ("apply", &["unsafe-paths"], &[], WRITES),
    ("blame", &["contents"], &[], READS),
    ("annotate", &["contents"], &[], READS),
    ("rebase", &["exec"], &['x'], RUNS),
    ("grep", &["open-files-in-pager"], &['O'], RUNS),
];

/// Long options refused for every git sub-command (matched from three letters on).
const GIT_LONG_EVERYWHERE: &[(&str, &str)] = &[
    (
        "ext-diff",
        "it runs the external diff program named in the repository's configuration",
    ),
    ("help", "it runs a configurable viewer or browser"),
    (
        "no-index",
        "it makes git diff or grep read any file on the machine, not only the repository",
    ),
    ("output", WRITES),
    ("output-directory", WRITES),
    (
        "exec-path",
        "it chooses where git finds the programs it runs",
    ),
];

fn refuse(program: &str, arg: &str, reason: impl Into<String>) -> Refusal {
    Refusal::Argument {
        program: program.to_string(),
        arg: shown(arg),
        reason: reason.into(),
    }
}

/// Applies the built-in guard for `kind` to `args` (the arguments after
/// `argv[0]`). `program` is the allowed name, for messages.
pub fn check(kind: ProgramKind, program: &str, args: &[String]) -> Result<(), Refusal> {
    match kind {
        ProgramKind::Git => check_git(program, args),
        ProgramKind::Gh => check_gh(program, args),
        ProgramKind::Npm => check_npm(program, args),
        ProgramKind::Env => check_env(program, args),
        ProgramKind::Find => check_find(program, args),
        ProgramKind::Runner | ProgramKind::Other => Ok(()),
    }
}

fn check_git(program: &str, args: &[String]) -> Result<(), Refusal> {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if !arg.starts_with('-') {
            break;
        }
        if GIT_GLOBAL_OK.contains(&arg.as_str()) {
            i += 1;
            continue;
        }
        let reason = if arg.starts_with("-c") || arg.starts_with("--config-env") {
            "git -c and --config-env are refused: command-line configuration can run programs (alias.*, core.sshCommand, core.pager, core.editor, credential.helper…)"
        } else if arg.starts_with("--exec-path") {
            "--exec-path chooses where git finds the programs it runs"
        } else if arg.starts_with("-C")
            || arg.starts_with("--git-dir")
            || arg.starts_with("--work-tree")
            || arg.starts_with("--namespace")
        {
            "it moves git outside the capability's workdirs; pass `cwd` instead"
        } else if arg == "--help" {
            "it runs a configurable viewer or browser"
        } else {
            "not a git global option airlock allows (allowed: --no-pager, -P, -p, --bare, --no-replace-objects, --*-pathspecs, --no-optional-locks, --version, -h)"
        };
        return Err(refuse(program, arg, reason));
    }
    let Some(sub) = args.get(i) else {
        return Ok(());
    };
    if let Some((_, why)) = GIT_REFUSED_SUBCOMMANDS.iter().find(|(s, _)| s == sub) {
        return Err(refuse(program, sub, format!("git {sub} is refused: {why}")));
    }
    if !GIT_SUBCOMMANDS.contains(&sub.as_str()) {
        return Err(refuse(
            program,
            sub,
            "not a built-in git command airlock allows (aliases and external git-* programs are refused)",
        ));
    }
    let rest = &args[i + 1..];
    let first_positional = rest.iter().find(|a| !a.starts_with('-'));
    match (sub.as_str(), first_positional.map(String::as_str)) {
        ("bisect", Some("run")) => {
            return Err(refuse(program, "run", "git bisect run executes a command"));
        }
        ("submodule", Some("foreach")) => {
            return Err(refuse(
                program,
                "foreach",
                "git submodule foreach executes a shell command",
            ));
        }
        _ => {}
    }
    if GIT_PATH_SUBCOMMANDS.contains(&sub.as_str()) {
        let mut options_done = false;
        for arg in rest {
            let positional = options_done || !arg.starts_with('-');
            if !options_done && (arg == "--" || arg == "--end-of-options") {
                options_done = true;
                continue;
            }
            if positional && leaves_cwd(arg) {
                return Err(refuse(
                    program,
                    arg,
                    format!(
                        "git {sub} with a path outside the working directory reads any file on the machine (as --no-index does); give paths relative to cwd, without `..`"
                    ),
                ));
            }
        }
    }
    let guards = || GIT_OPTION_GUARDS.iter().filter(|(s, ..)| s == sub);
    for arg in rest {
        if arg == "--" || arg == "--end-of-options" {
            break;
        }
        if let Some(name) = arg.strip_prefix("--") {
            let name = name.split('=').next().unwrap_or(name);
            if name.is_empty() {
                continue;
            }
            // git accepts any unambiguous abbreviation of a long option.
            for (_, long, _, why) in guards() {
                if let Some(opt) = long.iter().find(|o| o.starts_with(name)) {
                    return Err(refuse(program, arg, format!("git {sub} --{opt}: {why}")));
                }
            }
            if let Some((opt, why)) = GIT_LONG_EVERYWHERE
                .iter()
                .find(|(o, _)| o.starts_with(name) && name.len() >= 3)
            {
                return Err(refuse(program, arg, format!("--{opt}: {why}")));
            }
        } else if let Some(cluster) = arg.strip_prefix('-') {
            for (_, _, short, why) in guards() {
                if let Some(c) = short.iter().find(|c| cluster.contains(**c)) {
                    return Err(refuse(program, arg, format!("git {sub} -{c}: {why}")));
                }
            }
        }
    }
    Ok(())
}

/// Sub-commands whose path arguments must stay below the working directory:
/// `git diff` compares two files anywhere (an implicit `--no-index`) when one of
/// them lies outside the working tree, and `hash-object` stores any file it is
/// given, for `cat-file` to print.
const GIT_PATH_SUBCOMMANDS: &[&str] = &["diff", "hash-object"];

/// Whether a path argument may name something outside the working directory:
/// absolute (other than `/dev/null`) or with a `..` component. Symlinks are not
/// followed here; the kernel sandbox is what holds.
fn leaves_cwd(path: &str) -> bool {
    (path.starts_with('/') && path != "/dev/null") || path.split('/').any(|c| c == "..")
}

fn check_gh(program: &str, args: &[String]) -> Result<(), Refusal> {
    if let Some(sub) = args.iter().find(|a| !a.starts_with('-'))
        && matches!(sub.as_str(), "alias" | "extension" | "extensions" | "ext")
    {
        return Err(refuse(
            program,
            sub,
            format!("gh {sub} defines or runs arbitrary commands"),
        ));
    }
    // `gh repo clone R -- <git clone flags>`, `gh repo fork --clone -- <flags>`.
    if let Some(pos) = args.iter().position(|a| a == "--") {
        let mut as_git = vec!["clone".to_string()];
        as_git.extend(args[pos + 1..].iter().cloned());
        check_git(program, &as_git)?;
    }
    Ok(())
}

fn check_npm(program: &str, args: &[String]) -> Result<(), Refusal> {
    for arg in args {
        if arg == "--" {
            break;
        }
        let name = arg.split('=').next().unwrap_or(arg);
        if matches!(
            name,
            "--call" | "-c" | "--script-shell" | "--node-options" | "--shell"
        ) {
            return Err(refuse(
                program,
                arg,
                "it names a command or shell for npm to run",
            ));
        }
    }
    let mut positional = args.iter().filter(|a| !a.starts_with('-'));
    if let Some(sub) = positional.next() {
        match sub.as_str() {
            "exec" | "x" | "explore" | "create" => {
                return Err(refuse(
                    program,
                    sub,
                    format!("npm {sub} runs an arbitrary command or package"),
                ));
            }
            "init" | "innit" | "create-" if positional.next().is_some() => {
                return Err(refuse(
                    program,
                    sub,
                    "npm init <initializer> runs an arbitrary package (npm exec create-…)",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_env(program: &str, args: &[String]) -> Result<(), Refusal> {
    for arg in args {
        let name = arg.split('=').next().unwrap_or(arg);
        if arg.starts_with("-S")
            || arg.starts_with("-C")
            || matches!(name, "--split-string" | "--chdir")
        {
            return Err(refuse(
                program,
                arg,
                "env may print the environment but not run or split commands",
            ));
        }
        if !arg.starts_with('-') && !arg.contains('=') {
            return Err(refuse(
                program,
                arg,
                "env may print the environment but not run a program; allow that program itself instead",
            ));
        }
    }
    Ok(())
}

fn check_find(program: &str, args: &[String]) -> Result<(), Refusal> {
    for arg in args {
        if matches!(
            arg.as_str(),
            "-exec" | "-execdir" | "-ok" | "-okdir" | "-fprint" | "-fprint0" | "-fprintf" | "-fls"
        ) {
            return Err(refuse(
                program,
                arg,
                "find may search but not run commands or write files",
            ));
        }
    }
    Ok(())
}

/// A capability's `deny_args`, compiled.
///
/// An entry ending in `=` (`--output=`) refuses the option in both spellings:
/// `--output=x` and `--output x`. Any other entry refuses that exact argument, and
/// a long option (`--force`) also in its `--force=value` spelling. Entries are
/// compared with the agent's arguments as given (no abbreviation handling: list the
/// spellings you need).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyArgs {
    entries: Vec<String>,
}

impl DenyArgs {
    /// Compiles the entries as written in the configuration.
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DenyArgs {
            entries: entries
                .into_iter()
                .map(Into::into)
                .filter(|e| !e.is_empty())
                .collect(),
        }
    }

    /// Refuses the first argument that matches an entry.
    pub fn check(&self, program: &str, args: &[String]) -> Result<(), Refusal> {
        for arg in args {
            for entry in &self.entries {
                let hit = if let Some(flag) = entry.strip_suffix('=') {
                    arg == flag || arg.starts_with(entry.as_str())
                } else if entry.starts_with("--") {
                    arg == entry
                        || arg
                            .strip_prefix(entry.as_str())
                            .is_some_and(|r| r.starts_with('='))
                } else {
                    arg == entry
                };
                if hit {
                    return Err(refuse(
                        program,
                        arg,
                        format!("the capability's deny_args lists \"{}\"", shown(entry)),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn git(args: &[&str]) -> Result<(), Refusal> {
        check(ProgramKind::Git, "git", &v(args))
    }

    #[test]
    fn git_allows_ordinary_commands() {
        for ok in [
            &["status"][..],
            &["--no-pager", "log", "--oneline", "-5"],
            &["push", "-u", "origin", "main"],
            &["fetch", "-u", "origin"],
            &["commit", "-m", "fix: exec"],
            &["clone", "https://github.com/a/b", "--depth=1"],
            &["log", "--", "--upload-pack=x"],
            &["diff", "--stat"],
            &[],
        ] {
            assert!(git(ok).is_ok(), "{ok:?}: {:?}", git(ok));
        }
    }

    #[test]
    fn git_refuses_trampolines() {
        for bad in [
            &["-c", "alias.x=!sh", "x"][..],
            &["-calias.x=!sh", "x"],
            &["--config-env=core.sshCommand=X", "fetch"],
            &["--config-env", "core.pager=X", "log"],
            &["--exec-path=/tmp", "status"],
            &["--exec-path"],
            &["-C", "/", "status"],
            &["--git-dir=/x", "log"],
            &["x"],
            &["config", "alias.x", "!sh"],
            &["clone", "--upload-pack=touch /tmp/p", "u"],
            &["clone", "--upload-p", "x", "u"],
            &["clone", "-u", "x", "u"],
            &["clone", "-qu", "x", "u"],
            &["clone", "-c", "core.sshCommand=x", "u"],
            &["clone", "--template=/tmp/t", "u"],
            &["ls-remote", "-u", "x", "u"],
            &["fetch", "--upload-pack=x"],
            &["pull", "--upload-pack", "x"],
            &["push", "--receive-pack=x"],
            &["push", "--exec=x"],
            &["archive", "--exec=x", "--remote=u"],
            &["rebase", "-x", "sh"],
            &["rebase", "--exec", "sh"],
            &["rebase", "-ix", "sh"],
            &["grep", "-O", "x"],
            &["grep", "--open-files-in-pager=vi", "x"],
            &["diff", "--ext-diff"],
            &["status", "--help"],
            &["--help"],
            &["bisect", "run", "sh"],
            &["submodule", "foreach", "sh"],
            &["difftool"],
            &["filter-branch", "--tree-filter", "sh"],
        ] {
            assert!(git(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn git_refuses_reads_and_writes_outside_the_workdirs() {
        for bad in [
            &["diff", "--no-index", "/etc/passwd", "/dev/null"][..],
            &["diff", "--no-ind", "a", "b"],
            &["diff", "--stat", "--no-index", "a", "b"],
            &["grep", "--no-index", "x", "/etc/passwd"],
            &["grep", "--no-in", "x"],
            &["log", "--no-index"],
            &["diff", "/etc/passwd", "/dev/null"],
            &["diff", "--", "/etc/passwd", "/dev/null"],
            &["diff", "../outside", "a"],
            &["diff", "--", "a/../../outside", "b"],
            &["hash-object", "-w", "/etc/passwd"],
            &["hash-object", "--stdin-paths"],
            &["diff", "--output=/tmp/x"],
            &["log", "-p", "--output", "/tmp/x"],
            &["diff", "--out=/tmp/x"],
            &["format-patch", "-1", "--output-directory=/tmp/d"],
            &["format-patch", "-1", "-o", "/tmp/d"],
            &["format-patch", "-1", "-ko/tmp/d"],
            &["archive", "-o", "/tmp/x.tar", "HEAD"],
            &["archive", "--out=/tmp/x.tar", "HEAD"],
            &["archive", "--add-file=/etc/passwd", "HEAD"],
            &["apply", "--unsafe-paths", "p.patch"],
            &["apply", "--unsafe-p", "p.patch"],
            &["apply", "--unsa", "p.patch"],
            &["init", "--template=/tmp/t"],
            &["init", "--templ=/tmp/t"],
            &["init", "--te", "/tmp/t"],
            &["init", "--separate-git-dir=/tmp/g"],
            &["clone", "--templ=/tmp/t", "u"],
            &["clone", "--reference", "/home/o/repo", "u"],
            &["clone", "--reference-if-able=/home/o/repo", "u"],
            &["submodule", "update", "--reference", "/home/o/repo"],
            &["blame", "--contents", "/etc/passwd", "f"],
            &["annotate", "--contents=/etc/passwd", "f"],
            &["status", "--exec-path=/tmp"],
            &["--exec-path=/tmp", "status"],
            &["-C", "sub", "status"],
            &["--work-tree=/", "status"],
        ] {
            let r = git(bad);
            assert!(
                matches!(r, Err(Refusal::Argument { .. })),
                "{bad:?} accepted: {r:?}"
            );
        }
        for ok in [
            &["diff", "HEAD~1..HEAD", "--", "src/lib.rs"][..],
            &["diff", "main...feature"],
            &["diff", "a.txt", "/dev/null"],
            &["diff", "--output-indicator-new=>"],
            &["diff", "--index"],
            &["apply", "--index", "p.patch"],
            &["init", "--initial-branch=main"],
            &["log", "--", "../x"],
            &["grep", "-o", "x"],
            &["clone", "-o", "up", "https://x/y"],
            &["hash-object", "-w", "src/lib.rs"],
        ] {
            assert!(git(ok).is_ok(), "{ok:?}: {:?}", git(ok));
        }
    }

    #[test]
    fn gh_npm_env_find() {
        let gh = |a: &[&str]| check(ProgramKind::Gh, "gh", &v(a));
        assert!(gh(&["pr", "list"]).is_ok());
        assert!(gh(&["api", "/user"]).is_ok());
        assert!(gh(&["alias", "set", "x", "--shell", "sh"]).is_err());
        assert!(gh(&["extension", "exec", "x"]).is_err());
        assert!(gh(&["repo", "clone", "a/b", "--", "--upload-pack=x"]).is_err());
        assert!(gh(&["repo", "clone", "a/b", "--", "--depth=1"]).is_ok());

        let npm = |a: &[&str]| check(ProgramKind::Npm, "npm", &v(a));
        assert!(npm(&["ci"]).is_ok());
        assert!(npm(&["init", "-y"]).is_ok());
        assert!(npm(&["exec", "x"]).is_err());
        assert!(npm(&["x", "x"]).is_err());
        assert!(npm(&["init", "evil"]).is_err());
        assert!(npm(&["test", "--script-shell=/bin/sh"]).is_err());

        let env = |a: &[&str]| check(ProgramKind::Env, "env", &v(a));
        assert!(env(&[]).is_ok());
        assert!(env(&["-0", "A=b"]).is_ok());
        assert!(env(&["sh", "-c", "id"]).is_err());
        assert!(env(&["-S", "sh -c id"]).is_err());
        assert!(env(&["A=b", "/bin/sh"]).is_err());

        let find = |a: &[&str]| check(ProgramKind::Find, "find", &v(a));
        assert!(find(&[".", "-name", "*.rs"]).is_ok());
        assert!(find(&[".", "-exec", "sh", ";"]).is_err());
    }

    #[test]
    fn deny_args() {
        let d = DenyArgs::new(["--force", "--output=", "-rf"]);
        let c = |a: &[&str]| d.check("tool", &v(a));
        assert!(c(&["--forced"]).is_ok());
        assert!(c(&["--force"]).is_err());
        assert!(c(&["--force=yes"]).is_err());
        assert!(c(&["--output", "x"]).is_err());
        assert!(c(&["--output=x"]).is_err());
        assert!(c(&["-rf"]).is_err());
        assert!(c(&["-r"]).is_ok());
    }
}
