//! The command line, as clap sees it. Names and flags are the contract in
//! DESIGN.md §3; keep them stable.

use clap::{Args, Parser, Subcommand};

/// airlock — a local secrets broker for AI agents. Agents call APIs and tools
/// through airlock; it injects the credential at the last moment, so the agent
/// never holds a key.
#[derive(Debug, Parser)]
#[command(name = "airlock", version = env!("AIRLOCK_VERSION"), about, long_about = None)]
#[command(
    after_help = "Files live in $AIRLOCK_HOME (default ~/.airlock). Exit codes: 0 ok, 1 findings or a failed check, 2 bad input (with a one-line reason)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the airlock home and its encrypted vault (key file by default)
    Init(InitArgs),
    /// Add a service: its base URL, how to authenticate, and its secret
    Add(Box<AddArgs>),
    /// Remove a service, its capabilities and the secrets only it used
    Remove(RemoveArgs),
    /// List services and capabilities
    List(JsonFlag),
    /// Manage capabilities: what agents may do with a service
    #[command(subcommand)]
    Cap(CapCommand),
    /// Learning mode: the rules a learning capability's requests call for
    #[command(subcommand)]
    Learn(LearnCommand),
    /// Authority diff: what a change of airlock.toml grants or takes away
    #[command(subcommand)]
    Policy(crate::cmd::policy::PolicyCommand),
    /// Manage secret values in the vault
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Team mode on PostgreSQL: devices share secrets, revocations and the lock (docs/team.md)
    #[command(subcommand)]
    Team(TeamCommand),
    /// Run the MCP server (stdio by default; --http for streamable HTTP) and/or the HTTP gateway (--gateway)
    Serve(ServeArgs),
    /// Run the egress proxy alone (HTTPS_PROXY for clients whose base URL cannot
    /// change) and print the environment that points a program at it
    Proxy(ProxyArgs),
    /// Issue, list and revoke agent tokens for the HTTP doors
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show the audit log
    Logs(LogsArgs),
    /// Check the audit log's integrity
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print the MCP client configuration snippet that runs airlock
    McpConfig(McpConfigArgs),
    /// List sessions started by the servers on this home
    Sessions(JsonFlag),
    /// End sessions at once, in every running server: one, an agent's, a capability's, or all
    Revoke(RevokeArgs),
    /// List requests waiting for approval, or approve one
    Approve(ApproveArgs),
    /// Deny a request waiting for approval
    Deny {
        /// The pending request's id (see `airlock approve`)
        id: String,
    },
    /// Emergency stop: every running server refuses every request until `airlock unlock`
    Lock,
    /// Release the emergency lock and every incident lock (needs the master key or passphrase)
    Unlock,
    /// Incident response in one command: revoke, lock, rotate at the provider, and the blast radius
    Incident(IncidentArgs),
    /// Move the secrets of a .env file or an MCP client config into the vault and rewrite it
    Migrate(MigrateArgs),
    /// Check permissions, configuration, exposures, the audit chain and running servers
    Doctor(JsonFlag),
    /// Import another tool's setup: `airlock import janee [PATH]`
    Import(ImportArgs),
    /// List the service templates `airlock add` knows
    Search(SearchArgs),
    /// Find exposed secrets in files, MCP client configs and git history, with a risk rating
    Scan(airlock_scan::cli::ScanArgs),
    /// Run a command with secrets in its environment (airlock://NAME references,
    /// --env-file, --cap), its output scrubbed of them
    Run(RunArgs),
    /// Run a stdio MCP server with secrets in its environment, relaying its
    /// protocol with every server message scrubbed and each tool call audited
    Wrap(WrapArgs),
    /// The local web dashboard: live audit, approvals, sessions, lock, configuration, exposures
    Ui(crate::cmd::ui::UiArgs),
    /// Print a shell completion script: bash, zsh, fish, powershell or elvish
    Completions(crate::cmd::ui::CompletionsArgs),
    /// Print the man page (roff)
    Man,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Protect the vault with a passphrase (Argon2id) instead of a key file;
    /// reads AIRLOCK_PASSPHRASE, or asks on a terminal
    #[arg(long, conflicts_with = "keyring")]
    pub(crate) passphrase: bool,
    /// Keep the master key in the OS keyring (macOS Keychain, Windows Credential
    /// Manager, Secret Service on Linux desktops)
    #[arg(long)]
    pub(crate) keyring: bool,
}

/// Where a secret value comes from. With none given, airlock asks on a terminal
/// (without echo).
#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub(crate) struct KeyInput {
    /// Read the key from this environment variable
    #[arg(long, value_name = "VAR")]
    pub(crate) key_from_env: Option<String>,
    /// Read the key from standard input (one trailing newline is removed)
    #[arg(long)]
    pub(crate) key_stdin: bool,
    /// The key itself (discouraged: it lands in your shell history)
    #[arg(long, value_name = "VALUE")]
    pub(crate) key: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Name of the service (also its secret's name). A known name (see `airlock
    /// search`) fills in the URL, auth type and read-only rules.
    pub(crate) name: String,
    /// Name the capability `add` creates (default: NAME). It gets the template's
    /// rules (none for a custom service: every path) and ttl 1h
    #[arg(long, value_name = "CAP", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub(crate) cap: Option<String>,
    /// Create no capability: agents get no access to the service until
    /// `airlock cap add` (for a narrower capability than the template's)
    #[arg(long, conflicts_with_all = ["cap", "agents"])]
    pub(crate) no_cap: bool,
    /// The trusted agents that may use the new capability, comma-separated
    /// (default: per the server's default_access)
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub(crate) agents: Option<Vec<String>>,
    /// Base URL of the API, e.g. https://api.stripe.com
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// How the credential is sent: bearer, basic, header, query, aws-sigv4, oauth1,
    /// github-app, gcp-service-account, oauth2 (default: the template's, else bearer)
    #[arg(long, value_name = "TYPE")]
    pub(crate) auth: Option<String>,
    /// Use this template's URL, auth type and rules under another name
    #[arg(long, value_name = "TEMPLATE")]
    pub(crate) template: Option<String>,
    #[command(flatten)]
    pub(crate) key: KeyInput,
    #[command(flatten)]
    pub(crate) typed: AuthFlags,
}

/// Type-specific `add` flags, one per field of `airlock_config::AUTH_TABLE` that
/// has an `AddFlag` (so a new auth type brings its flags with it). Each secret part
/// comes from `--<part>-from-env VAR` or, on a terminal, a no-echo prompt.
#[derive(Debug, Default, Clone)]
pub(crate) struct AuthFlags {
    /// The values given, by flag (without `--`).
    values: std::collections::BTreeMap<&'static str, Vec<String>>,
    /// The files given, by flag.
    files: std::collections::BTreeMap<&'static str, std::path::PathBuf>,
}

impl AuthFlags {
    /// Every auth type's flags, once each, in table order: (type, flag).
    fn flags() -> impl Iterator<Item = (&'static str, airlock_config::AddFlag, &'static str)> {
        let mut seen = Vec::new();
        airlock_config::AUTH_TABLE
            .iter()
            .flat_map(|t| t.fields.iter().map(move |f| (t.name, f.flag)))
            .filter_map(move |(ty, flag)| {
                let flag = flag?;
                let long = flag.long?;
                (!seen.contains(&long)).then(|| {
                    seen.push(long);
                    (ty, flag, long)
                })
            })
    }

    /// The value of `--long`, if given.
    pub(crate) fn get(&self, long: &str) -> Option<&str> {
        self.values
            .get(long)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// The file named by `--long`, if given.
    pub(crate) fn path(&self, long: &str) -> Option<&std::path::Path> {
        self.files.get(long).map(std::path::PathBuf::as_path)
    }

    /// Every value of a list flag (`--scopes a,b`).
    pub(crate) fn list(&self, long: &str) -> &[String] {
        self.values.get(long).map_or(&[], Vec::as_slice)
    }
}

impl clap::FromArgMatches for AuthFlags {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = AuthFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        use airlock_config::FlagInput;
        for (_, flag, long) in Self::flags() {
            let id = long;
            let values: Vec<String> = match flag.input {
                FlagInput::Number => matches
                    .get_many::<u64>(id)
                    .map(|v| v.map(u64::to_string).collect())
                    .unwrap_or_default(),
                FlagInput::SecretFile { .. } => {
                    if let Some(p) = matches.get_one::<std::path::PathBuf>(id) {
                        self.files.insert(long, p.clone());
                    }
                    continue;
                }
                _ => matches
                    .get_many::<String>(id)
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default(),
            };
            if !values.is_empty() {
                self.values.insert(long, values);
            }
        }
        Ok(())
    }
}

impl Args for AuthFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        use airlock_config::FlagInput;
        use clap::{Arg, ArgAction, value_parser};
        let mut cmd = cmd.next_help_heading("Auth-type options");
        for (ty, flag, long) in Self::flags() {
            let arg = Arg::new(long)
                .long(long)
                .value_name(flag.value_name)
                .help(format!("{ty}: {}", flag.help));
            let arg = match flag.input {
                FlagInput::Number => arg.value_parser(value_parser!(u64)),
                FlagInput::List => arg.action(ArgAction::Append).value_delimiter(','),
                FlagInput::SecretFile { .. } => arg.value_parser(value_parser!(std::path::PathBuf)),
                _ => arg,
            };
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// The service to remove
    pub(crate) name: String,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JsonFlag {
    /// Machine-readable JSON instead of a table
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CapCommand {
    /// Add a capability
    Add(Box<CapAddArgs>),
    /// List capabilities
    List(JsonFlag),
    /// Remove a capability
    #[command(alias = "rm")]
    Remove {
        /// The capability to remove
        name: String,
    },
}

/// `airlock learn`.
#[derive(Debug, Subcommand)]
pub(crate) enum LearnCommand {
    /// Propose the smallest allow rules that cover what a learning capability
    /// was asked for (from the audit log), with counts and examples
    Show {
        /// The capability (added with `airlock cap add NAME --learn`)
        name: String,
        /// One JSON object instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Write the proposed rules into airlock.toml as the capability's `allow`
    /// and end its learning window (the rest of the file is kept as it is)
    Apply {
        /// The capability
        name: String,
        /// Open the proposal in $VISUAL / $EDITOR (else vi) first, one rule a
        /// line; what you save is written (an empty file or an editor that
        /// fails writes nothing)
        #[arg(long)]
        edit: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CapAddArgs {
    /// Name of the capability (agents use it; the gateway path starts with it)
    pub(crate) name: String,
    /// The service it grants access to
    #[arg(long)]
    pub(crate) service: String,
    /// How long a session lasts after first use, e.g. 15m, 1h, 1d
    #[arg(long, default_value = "1h")]
    pub(crate) ttl: String,
    /// Allow rule "METHOD PATH", e.g. 'GET /v1/**' (repeatable; with any allow
    /// rule, everything else is denied)
    #[arg(long, value_name = "RULE")]
    pub(crate) allow: Vec<String>,
    /// Deny rule "METHOD PATH" (repeatable; deny wins)
    #[arg(long, value_name = "RULE")]
    pub(crate) deny: Vec<String>,
    /// Trusted agent identities allowed to use it, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub(crate) agents: Option<Vec<String>>,
    /// Every request must give a reason
    #[arg(long)]
    pub(crate) requires_reason: bool,
    /// Every request waits for a person's approval
    #[arg(long)]
    pub(crate) approval: bool,
    /// Rate limit per agent, e.g. 60/min
    #[arg(long)]
    pub(crate) rate: Option<String>,
    /// Learning mode: for --for (default 1h) the service's requests are allowed
    /// (--deny rules still apply) and recorded; `airlock learn show NAME` then
    /// proposes the smallest rules that cover them, `airlock learn apply NAME`
    /// writes them (HTTP capabilities only, without --allow)
    #[arg(long)]
    pub(crate) learn: bool,
    /// With --learn: how long the learning window lasts, e.g. 30m, 1h, 1d
    #[arg(long = "for", value_name = "DURATION", requires = "learn")]
    pub(crate) learn_for: Option<String>,
    /// `exec`: the agent runs programs with the secret in their environment
    /// (MCP tool `exec`) instead of HTTP requests
    #[arg(long, value_enum, default_value_t = CapMode::Http)]
    pub(crate) mode: CapMode,
    /// With --mode exec: a program the agent may run, a bare name found in PATH
    /// or an absolute path (repeatable, or comma-separated)
    #[arg(long = "command", value_name = "PROG", value_delimiter = ',')]
    pub(crate) commands: Vec<String>,
    /// With --mode exec: an environment variable for the program,
    /// e.g. GH_TOKEN={{secret}} (repeatable)
    #[arg(long = "env", value_name = "VAR=VALUE")]
    pub(crate) env: Vec<String>,
    /// With --mode exec: a directory the program may run in and write to
    /// (repeatable; must exist)
    #[arg(long = "workdir", value_name = "DIR")]
    pub(crate) workdirs: Vec<String>,
    /// With --mode exec: what the program holds for the secret: `placeholder`
    /// (the default: its HTTPS goes through airlock's egress proxy, which puts
    /// the key on requests to the service only) or `env` (the real secret in
    /// its environment, for non-HTTP uses such as a database password)
    #[arg(long, value_enum, value_name = "HOW")]
    pub(crate) inject: Option<CapInject>,
    /// With --mode exec: run its programs outside the kernel sandbox
    /// (`confine = false`; doctor and list warn)
    #[arg(long)]
    pub(crate) no_confine: bool,
    /// With --mode exec: `none` (default) or `direct` (any host)
    #[arg(long, value_enum, value_name = "NET")]
    pub(crate) network: Option<CapNetwork>,
}

/// `cap add --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CapMode {
    /// HTTP requests through the broker (`execute`, the gateway)
    Http,
    /// Programs run with a placeholder (or the secret) in their environment (`exec`)
    Exec,
}

/// `cap add --inject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CapInject {
    /// A host-bound placeholder, swapped by the egress proxy
    Placeholder,
    /// The real secret in the program's environment
    Env,
}

/// `cap add --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CapNetwork {
    /// No network at all
    None,
    /// Any host, directly
    Direct,
}

/// Where a secret value comes from for `secret set`/`rotate`.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub(crate) struct ValueInput {
    /// Read the value from this environment variable
    #[arg(long, value_name = "VAR")]
    pub(crate) from_env: Option<String>,
    /// Read the value from standard input (one trailing newline is removed)
    #[arg(long)]
    pub(crate) stdin: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TeamCommand {
    /// Create the team and its schema in a PostgreSQL database; this device becomes its first admin
    Init {
        /// postgres://USER:PASSWORD@HOST:PORT/DB (kept sealed in this device's team files)
        #[arg(long, value_name = "URL")]
        db: String,
        /// This device's name in `team devices` (default: the host name)
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a single-use enrollment code, valid for 1 hour (admin devices)
    Invite {
        /// The device joining with it becomes an admin once approved
        #[arg(long)]
        admin: bool,
    },
    /// Enroll this device with an invite code; prints its fingerprint for the admin to confirm
    Join {
        /// postgres://USER:PASSWORD@HOST:PORT/DB
        #[arg(long, value_name = "URL")]
        db: String,
        /// The code from `airlock team invite` (it may start with '-')
        #[arg(allow_hyphen_values = true)]
        code: String,
        /// This device's name in `team devices` (default: the host name)
        #[arg(long)]
        name: Option<String>,
    },
    /// List the team's devices, verified from the root admin
    Devices(JsonFlag),
    /// Approve an enrolled device after confirming its fingerprint on both sides (admin devices)
    Approve {
        /// The fingerprint `team join` printed on the new device
        fingerprint: String,
    },
    /// This device, the team, the last sync and the change-log lag
    Status(JsonFlag),
    /// Remove a device (admin devices): new team key epoch, secrets re-sealed for the others; lists the upstream keys it could read
    RevokeDevice {
        /// The device's fingerprint (see `airlock team devices`)
        fingerprint: String,
    },
    /// Share this device's services and capabilities (all, or those named) with the team, signed by this admin device
    PushConfig {
        /// Only these services/capabilities; a name this device no longer defines is removed from the team
        names: Vec<String>,
    },
    /// The team's agents: add and remove them on every device (admin devices), list them
    #[command(subcommand)]
    Agent(crate::cmd::team::AgentCommand),
    /// Designate the admin device that writes the team's audit checkpoints (admin devices)
    Checkpointer {
        /// The admin device's fingerprint (see `airlock team devices`)
        fingerprint: String,
    },
    /// Change this device's database URL, read from stdin (admin devices: every device gets it, sealed under the team key)
    SetDbUrl,
    /// Catch up with the team: secrets into the vault, services and capabilities into airlock.toml, revocations and the lock into this home
    Sync {
        /// Keep following: on every change notification, and every 10 s at the latest
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Store a new secret
    Set {
        /// The secret's name
        name: String,
        #[command(flatten)]
        input: ValueInput,
    },
    /// Replace a secret's value (its version goes up by one)
    Rotate {
        /// The secret's name
        name: String,
        #[command(flatten)]
        input: ValueInput,
    },
    /// List secrets: name, version, dates, fingerprint — never the value
    List(JsonFlag),
    /// Delete a secret no service uses
    #[command(alias = "remove")]
    Rm {
        /// The secret's name
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The trusted agent identity for this server (written by the owner into the
    /// MCP client's config); capability `agents` lists match it
    #[arg(long, value_name = "NAME")]
    pub(crate) agent: Option<String>,
    /// Serve MCP over streamable HTTP on ADDR (e.g. 127.0.0.1:8788) instead of
    /// stdio; every request needs an agent token (`airlock token issue`)
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<String>,
    /// Also serve the HTTP gateway for stock SDKs on ADDR (e.g. 127.0.0.1:8787):
    /// http://ADDR/<capability>/<path>, agent token as the SDK's key. Alone, it
    /// serves only the gateway (no MCP on stdio)
    #[arg(long, value_name = "ADDR")]
    pub(crate) gateway: Option<String>,
    /// Also serve the egress proxy on ADDR (e.g. 127.0.0.1:8789): HTTPS_PROXY for
    /// any client, agent token in Proxy-Authorization. Alone (or with
    /// --gateway), no MCP on stdio
    #[arg(long, value_name = "ADDR")]
    pub(crate) proxy: Option<String>,
    /// Also serve the dashboard (`airlock ui`) on ADDR (e.g. 127.0.0.1:8790); its
    /// one-time login link is printed on stderr. Not a door for agents: it does
    /// not change which of the others are served
    #[arg(long, value_name = "ADDR")]
    pub(crate) ui: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// Where to listen (loopback)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8789")]
    pub(crate) listen: String,
    /// Issue a token for this agent, valid while the proxy runs (revoked when it
    /// stops), and put it in the printed HTTPS_PROXY
    #[arg(long, value_name = "NAME")]
    pub(crate) agent: Option<String>,
    /// With --agent: limit the token to these capabilities (repeatable)
    #[arg(long = "cap", value_name = "CAPABILITY", requires = "agent")]
    pub(crate) caps: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a token for an agent; it is printed once and stored only as a hash
    Issue {
        /// The trusted identity the token carries
        #[arg(long, value_name = "NAME")]
        agent: String,
        /// Limit the token to these capabilities (repeatable; default: all the
        /// agent may use)
        #[arg(long = "cap", value_name = "CAPABILITY")]
        caps: Vec<String>,
        /// How long the token is valid, e.g. 1h, 7d
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Print {"token", "agent", "expires"} as JSON
        #[arg(long)]
        json: bool,
    },
    /// List agent tokens: agent, capabilities, expiry, last use — never the token
    List(JsonFlag),
    /// Revoke an agent token at once, in every running server
    Revoke {
        /// The token's id (see `airlock token list`)
        id: String,
    },
    /// Make a narrower token from an agent token, offline (no home, no secret
    /// but the token): it can do only what its parent can, within these caveats
    Attenuate {
        /// The token to narrow, or `-` to read it from stdin (keeps it out of
        /// argv and shell history)
        token: String,
        /// Limit to these capabilities (repeatable)
        #[arg(long = "cap", value_name = "CAPABILITY")]
        caps: Vec<String>,
        /// Allow only requests matching one of these rules, e.g. 'GET /repos/acme/x/**'
        /// (repeatable; the capability's own rules still apply)
        #[arg(long = "allow", value_name = "RULE")]
        allow: Vec<String>,
        /// Stop working after this long, e.g. 10m (never later than the parent)
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// Print {"token", "root", "caveats", "expires"} as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Keep printing new records as they arrive
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    /// One JSON record per line
    #[arg(long)]
    pub(crate) json: bool,
    /// Only this capability
    #[arg(long, value_name = "C")]
    pub(crate) capability: Option<String>,
    /// Only this agent
    #[arg(long, value_name = "A")]
    pub(crate) agent: Option<String>,
    /// Only records newer than this, e.g. 10m, 2h, 1d
    #[arg(long, value_name = "DURATION")]
    pub(crate) since: Option<String>,
    /// Every device's records, from the team's database (team mode; each row's
    /// signature and chain checked, rows that fail are not shown)
    #[arg(long)]
    pub(crate) team: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the hash chain and its anchor: exit 0 intact, 1 naming the first bad record
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Machine-readable JSON instead of a table
    #[arg(long)]
    pub(crate) json: bool,
    /// Verify the team's audit in its database instead (team mode): every
    /// device's chain, every signature, every checkpoint; names each bad row
    #[arg(long)]
    pub(crate) team: bool,
}

#[derive(Debug, Args)]
pub(crate) struct McpConfigArgs {
    /// The MCP client: claude-desktop, claude-code, cursor, vscode, windsurf or codex
    pub(crate) client: String,
    /// Print {client, file, format, snippet, command} as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct RevokeArgs {
    /// The session to end (see `airlock sessions`)
    pub(crate) session: Option<String>,
    /// End every session of this agent, and revoke its agent tokens
    #[arg(long, value_name = "A")]
    pub(crate) agent: Option<String>,
    /// End every session of this capability
    #[arg(long, value_name = "C")]
    pub(crate) capability: Option<String>,
    /// End every session and revoke every agent token
    #[arg(long)]
    pub(crate) all: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// Filter by name or description
    pub(crate) query: Option<String>,
    /// Machine-readable JSON instead of a table
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Add the environment of this exec capability (its `env`, with {{secret}}
    /// filled in); repeatable
    #[arg(long = "cap", value_name = "C")]
    pub(crate) caps: Vec<String>,
    /// Read variables from this .env file; a value airlock://NAME becomes that
    /// secret (repeatable; later files win)
    #[arg(long, value_name = "FILE")]
    pub(crate) env_file: Vec<std::path::PathBuf>,
    /// Do not scrub the command's output (secrets it prints appear as is)
    #[arg(long)]
    pub(crate) no_mask: bool,
    /// Run the command in the kernel sandbox: it writes only in the current
    /// directory, the --cap capabilities' workdirs and a private HOME, reads the
    /// system's read-only paths, never the airlock home or your home, and has no
    /// network unless a --cap says network = "direct" (with --proxy: only the
    /// run's egress proxy)
    #[arg(long)]
    pub(crate) confine: bool,
    /// Give the command placeholders instead of keys and an egress proxy of
    /// its own (HTTPS_PROXY): the real key goes only on requests to its own
    /// service, under the capability's policy, audited. Without --cap, the
    /// exec capabilities whose `commands` name the program
    #[arg(long)]
    pub(crate) proxy: bool,
    /// The command and its arguments, after --
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct WrapArgs {
    /// Add the environment of this exec capability (its `env`, with {{secret}}
    /// filled in); repeatable
    #[arg(long = "cap", value_name = "C")]
    pub(crate) caps: Vec<String>,
    /// Give the server VAR set to a secret: VAR=airlock://NAME (or a literal
    /// VAR=value); repeatable
    #[arg(long, value_name = "VAR=airlock://NAME")]
    pub(crate) env: Vec<String>,
    /// Run the server in the kernel sandbox (as `airlock run --confine`)
    #[arg(long)]
    pub(crate) confine: bool,
    /// The MCP server's command and its arguments, after --
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// A .env file or an MCP client config (claude_desktop_config.json, .mcp.json, .cursor/mcp.json, .vscode/mcp.json)
    pub(crate) file: std::path::PathBuf,
    /// Show what would move (values redacted) without writing anything
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The pending request to approve; without it, list what is pending
    pub(crate) id: Option<String>,
    /// With no ID: machine-readable JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// What to import from: janee
    pub(crate) source: String,
    /// Its home directory (default: $JANEE_HOME, else ~/.janee)
    pub(crate) path: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["secret", "agent", "token"])))]
pub(crate) struct IncidentArgs {
    /// The secret that leaked (its vault name): every session and token that
    /// could use it is revoked, its capabilities locked, and it is rotated
    pub(crate) secret: Option<String>,
    /// A compromised agent: its sessions and tokens are revoked and the agent locked
    #[arg(long, value_name = "A")]
    pub(crate) agent: Option<String>,
    /// A leaked agent token (its id, see `airlock token list`): revoked with its sessions
    #[arg(long, value_name = "ID")]
    pub(crate) token: Option<String>,
    /// Blast radius from this time: a duration back from now (2h, 7d) or an
    /// RFC 3339 time (default: the secret's last change, else the log's start)
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Show what would be done, change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Machine-readable JSON instead of tables
    #[arg(long)]
    pub(crate) json: bool,
    /// Revoke and lock, but leave the upstream credential as it is
    #[arg(long)]
    pub(crate) no_rotate: bool,
}
