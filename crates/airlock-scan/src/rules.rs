//! The rule table: one entry per provider token format, written from the
//! providers' published formats.
//!
//! Every pattern names the secret with the capture group `s` (the whole match
//! otherwise). `{E}` expands to an end-of-token boundary that, unlike `\b`,
//! also works after a trailing `-` or `_` (base64url alphabets). Patterns are
//! compiled with `(?-u)`: ASCII classes, `.` matches any byte but `\n`.

/// How live a match of a rule looks; drives the risk rating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A production credential.
    Live,
    /// A test-mode or sandbox credential.
    Test,
    /// A private key (PEM, OpenSSH, PGP, PuTTY).
    PrivateKey,
    /// A passphrase-protected private key.
    Encrypted,
    /// A value that only looks like a secret because of its name and entropy.
    Generic,
    /// An account identifier (Twilio account SID): not a credential by itself,
    /// but it names the account whose credential is usually next to it.
    Identifier,
}

/// Extra validation after the regex matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// None beyond the decoy filter.
    None,
    /// GitHub / npm: CRC32 of the 30 random characters, base62, as the last 6.
    GithubCrc32,
    /// Header and payload must decode to JSON objects; header has `alg`.
    Jwt,
    /// base64 of `user:password` with a non-empty password.
    DockerAuth,
    /// The password part of a URL: placeholder and default-password filter.
    UrlPassword,
    /// Name + entropy gate for generic assignments.
    Generic,
}

/// One rule of the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RuleDef {
    pub(crate) id: &'static str,
    pub(crate) provider: &'static str,
    pub(crate) description: &'static str,
    /// Literal keywords (ASCII case-insensitive): the rule's regex only runs on
    /// a file that contains one of them.
    pub(crate) keywords: &'static [&'static str],
    pub(crate) pattern: &'static str,
    pub(crate) kind: Kind,
    pub(crate) check: Check,
    /// Minimum Shannon entropy (bits per byte) of the secret; 0 = none.
    pub(crate) min_entropy: f64,
    /// Higher wins when two findings overlap.
    pub(crate) priority: u8,
    /// The rule's format is hex/UUID, so hex digests and UUIDs are not decoys.
    pub(crate) hex_ok: bool,
    /// A substring of the secret that marks a test/sandbox credential.
    pub(crate) test_marker: Option<&'static str>,
    /// Shown instead of the secret's own prefix in the redacted preview.
    pub(crate) label: Option<&'static str>,
}

const fn r(
    id: &'static str,
    provider: &'static str,
    description: &'static str,
    keywords: &'static [&'static str],
    pattern: &'static str,
) -> RuleDef {
    RuleDef {
        id,
        provider,
        description,
        keywords,
        pattern,
        kind: Kind::Live,
        check: Check::None,
        min_entropy: 2.5,
        priority: 2,
        hex_ok: false,
        test_marker: None,
        label: None,
    }
}

impl RuleDef {
    const fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }
    const fn check(mut self, check: Check) -> Self {
        self.check = check;
        self
    }
    const fn entropy(mut self, e: f64) -> Self {
        self.min_entropy = e;
        self
    }
    const fn priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }
    const fn hex(mut self) -> Self {
        self.hex_ok = true;
        self
    }
    const fn test_marker(mut self, m: &'static str) -> Self {
        self.test_marker = Some(m);
        self
    }
    const fn label(mut self, l: &'static str) -> Self {
        self.label = Some(l);
        self
    }
}

/// End-of-token boundary for base64url-ish tokens.
pub(crate) const END: &str = r"(?:[^A-Za-z0-9_\-]|\z)";

/// Ids of the generic rules (also produced by the structured readers).
pub(crate) const GENERIC_ASSIGNMENT: &str = "generic-secret-assignment";
pub(crate) const XML_SECRET: &str = "generic-xml-secret";
pub(crate) const AUTH_HEADER: &str = "authorization-header";
pub(crate) const CLI_FLAG: &str = "cli-secret-flag";

const fn pem(
    id: &'static str,
    what: &'static str,
    kw: &'static [&'static str],
    pat: &'static str,
) -> RuleDef {
    r(id, "Private key", what, kw, pat)
        .kind(Kind::PrivateKey)
        .entropy(0.0)
        .priority(2)
}

/// The rule table.
pub(crate) static RULES: &[RuleDef] = &[
    // ---- cloud -------------------------------------------------------------
    r("aws-access-key-id", "AWS", "AWS access key ID", &["AKIA", "ASIA", "ABIA", "ACCA"],
      r"\b(?P<s>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b").entropy(2.8),
    // by name: `aws_secret_access_key`, and (Terraform's provider and S3 backend,
    // CloudFormation outputs) `secret_key`, `secret_access_key`, `SecretAccessKey`
    r("aws-secret-access-key", "AWS", "AWS secret access key",
      &["aws", "secret_key", "secret-key", "secretkey", "secret_access", "secret-access", "secretaccess"],
      r#"(?i)(?:aws[A-Za-z0-9_.\-]{0,24}?(?:secret|sk)[A-Za-z0-9_.\-]{0,24}|\bsecret[_\-]?(?:access[_\-]?)?key)(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)"#)
        .entropy(3.5).priority(3),
    r("gcp-service-account-key", "Google Cloud", "GCP service-account JSON key (private key)", &["service_account"],
      r#""private_key"\s*:\s*"(?P<s>-----BEGIN (?:RSA )?PRIVATE KEY-----\\n[A-Za-z0-9+/=\\]{64,}?-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)""#)
        .entropy(0.0).priority(3).label("gcp:PRIVATE KEY"),
    r("gcp-api-key", "Google Cloud", "Google API key (Maps, Gemini, Firebase…)", &["AIza"],
      r"\b(?P<s>AIza[0-9A-Za-z_\-]{35}){E}"),
    r("gcp-oauth-client-secret", "Google Cloud", "Google OAuth client secret", &["GOCSPX-"],
      r"\b(?P<s>GOCSPX-[0-9A-Za-z_\-]{28}){E}"),
    r("azure-storage-account-key", "Azure", "Azure storage account key", &["AccountKey"],
      r"AccountKey=(?P<s>[A-Za-z0-9+/]{86}==)").entropy(3.5).label("AccountKey="),
    r("azure-ad-client-secret", "Azure", "Azure AD (Entra ID) client secret", &["Q~"],
      r"(?:\A|[^A-Za-z0-9_~.\-])(?P<s>[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|\z)")
        .entropy(3.0),
    r("azure-devops-pat", "Azure", "Azure DevOps personal access token", &["AZDO"],
      r"\b(?P<s>[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4})\b").entropy(3.5).label("azdo:"),
    r("azure-shared-access-key", "Azure", "Azure Service Bus / Event Hubs / IoT Hub shared access key", &["SharedAccessKey="],
      r"SharedAccessKey=(?P<s>[A-Za-z0-9+/]{43}=)").entropy(3.5).label("SharedAccessKey="),
    r("alibaba-access-key-id", "Alibaba Cloud", "Alibaba Cloud AccessKey ID", &["LTAI"],
      r"\b(?P<s>LTAI[A-Za-z0-9]{12,20})\b").entropy(3.0),
    r("digitalocean-token", "DigitalOcean", "DigitalOcean API / OAuth token", &["dop_v1_", "doo_v1_", "dor_v1_"],
      r"\b(?P<s>do[opr]_v1_[a-f0-9]{64})\b").hex(),
    r("cloudflare-origin-ca-key", "Cloudflare", "Cloudflare Origin CA key", &["v1.0-"],
      r"\b(?P<s>v1\.0-[a-f0-9]{24}-[a-f0-9]{146})\b").hex(),
    r("cloudflare-api-key", "Cloudflare", "Cloudflare global API key or API token (by context)", &["cloudflare", "cf_api"],
      r#"(?i)(?:cloudflare[A-Za-z0-9_.\-]{0,30}?(?:key|token|secret)|cf_api_(?:key|token))[A-Za-z0-9_.\-]{0,10}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{37}|[A-Za-z0-9_\-]{40})(?:[^A-Za-z0-9_\-]|\z)"#)
        .hex().entropy(3.3).priority(3),
    r("openshift-token", "Red Hat", "OpenShift user token", &["sha256~"],
      r"(?:\A|[^A-Za-z0-9_~])(?P<s>sha256~[A-Za-z0-9_\-]{43}){E}").entropy(3.5),
    r("heroku-api-key-v2", "Heroku", "Heroku API key", &["HRKU-"],
      r"\b(?P<s>HRKU-AA[0-9A-Za-z_\-]{58}){E}"),
    r("heroku-api-key", "Heroku", "Heroku API key (UUID, by context)", &["heroku"],
      r#"(?i)heroku[A-Za-z0-9_.\-]{0,40}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#)
        .hex().priority(3),
    r("flyio-token", "Fly.io", "Fly.io access token", &["fo1_", "fm1", "fm2"],
      r"\b(?P<s>fo1_[A-Za-z0-9_\-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3})(?:[^A-Za-z0-9_\-+/=]|\z)"),
    r("netlify-token", "Netlify", "Netlify personal access token", &["nfp_"],
      r"\b(?P<s>nfp_[A-Za-z0-9]{36})\b"),
    r("vercel-token", "Vercel", "Vercel access token (by context)", &["vercel"],
      r#"(?i)vercel[A-Za-z0-9_.\-]{0,40}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{24})\b"#)
        .entropy(3.5).priority(3),
    r("supabase-pat", "Supabase", "Supabase management access token", &["sbp_"],
      r"\b(?P<s>sbp_[a-f0-9]{40})\b").hex(),
    r("supabase-secret-key", "Supabase", "Supabase secret API key", &["sb_secret_"],
      r"\b(?P<s>sb_secret_[A-Za-z0-9_\-]{31,}){E}"),
    r("databricks-token", "Databricks", "Databricks personal access token", &["dapi"],
      r"\b(?P<s>dapi[a-f0-9]{32}(?:-[0-9])?)\b").hex(),
    r("pulumi-token", "Pulumi", "Pulumi access token", &["pul-"],
      r"\b(?P<s>pul-[a-f0-9]{40})\b").hex(),
    r("terraform-cloud-token", "HashiCorp", "Terraform Cloud / Enterprise API token", &["atlasv1"],
      r"\b(?P<s>[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,70})(?:[^A-Za-z0-9_\-=]|\z)").label("atlasv1:"),
    r("vault-token", "HashiCorp", "HashiCorp Vault token", &["hvs.", "hvb."],
      r"\b(?P<s>hv[sb]\.[A-Za-z0-9_\-]{24,}){E}").entropy(3.0),
    // service tokens may carry the config's slug: `dp.st.dev.…`
    r("doppler-token", "Doppler", "Doppler token", &["dp.pt.", "dp.st.", "dp.sa.", "dp.said.", "dp.ct.", "dp.scim.", "dp.audit."],
      r"\b(?P<s>dp\.(?:pt|st(?:\.[a-z0-9_\-]{2,35})?|sa|said|ct|scim|audit)\.[A-Za-z0-9]{40,44})\b"),
    r("onepassword-service-account", "1Password", "1Password service account token", &["ops_eyJ"],
      r"\b(?P<s>ops_eyJ[A-Za-z0-9+/=_\-]{100,})(?:[^A-Za-z0-9+/=_\-]|\z)"),
    r("onepassword-secret-key", "1Password", "1Password account Secret Key", &["A3-"],
      r"\b(?P<s>A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})\b").entropy(3.3),
    // No checksum gate: a copy with one character wrong still holds almost
    // every bit of a real key.
    r("age-secret-key", "age", "age secret key", &["AGE-SECRET-KEY-1"],
      r"\b(?P<s>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}|age-secret-key-1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58})\b"),
    r("tailscale-key", "Tailscale", "Tailscale auth / API key", &["tskey-"],
      r"\b(?P<s>tskey-(?:auth|api|client|webhook|scim)-[A-Za-z0-9]{8,}-[A-Za-z0-9]{16,})\b"),
    // ---- version control and CI ---------------------------------------------
    r("github-pat", "GitHub", "GitHub personal access token (classic)", &["ghp_"],
      r"\b(?P<s>ghp_[A-Za-z0-9]{36})\b").check(Check::GithubCrc32),
    r("github-oauth-token", "GitHub", "GitHub OAuth access token", &["gho_"],
      r"\b(?P<s>gho_[A-Za-z0-9]{36})\b").check(Check::GithubCrc32),
    r("github-user-token", "GitHub", "GitHub App user-to-server token", &["ghu_"],
      r"\b(?P<s>ghu_[A-Za-z0-9]{36})\b").check(Check::GithubCrc32),
    r("github-app-token", "GitHub", "GitHub App installation (server-to-server) token", &["ghs_"],
      r"\b(?P<s>ghs_[A-Za-z0-9]{36})\b").check(Check::GithubCrc32),
    r("github-refresh-token", "GitHub", "GitHub App refresh token", &["ghr_"],
      r"\b(?P<s>ghr_[A-Za-z0-9]{36})\b").check(Check::GithubCrc32),
    r("github-fine-grained-pat", "GitHub", "GitHub fine-grained personal access token", &["github_pat_"],
      r"\b(?P<s>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b"),
    r("gitlab-pat", "GitLab", "GitLab personal access token", &["glpat-"],
      r"\b(?P<s>glpat-[A-Za-z0-9_\-]{20,}(?:\.[0-9a-z]{2}\.[0-9a-z]{9})?){E}"),
    r("gitlab-runner-token", "GitLab", "GitLab runner authentication token", &["glrt-"],
      r"\b(?P<s>glrt-[A-Za-z0-9_\-]{20,}){E}"),
    r("gitlab-deploy-token", "GitLab", "GitLab deploy token", &["gldt-"],
      r"\b(?P<s>gldt-[A-Za-z0-9_\-]{20,}){E}"),
    r("gitlab-token", "GitLab", "GitLab pipeline trigger, CI job, OAuth app, feed, mail, agent or SCIM token",
      &["glptt-", "gloas-", "glcbt-", "glft-", "glimt-", "glagent-", "glsoat-", "glffct-"],
      r"\b(?P<s>glptt-[a-f0-9]{40}|gloas-[A-Za-z0-9_\-]{64}|glcbt-(?:[0-9a-f]{1,5}_)?[A-Za-z0-9_\-]{20,}|gl(?:ft|imt|agent|soat|ffct)-[A-Za-z0-9_\-]{20,}){E}"),
    r("circleci-pat", "CircleCI", "CircleCI personal API token", &["CCIPAT_"],
      r"\b(?P<s>CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40})\b"),
    r("sonarqube-token", "SonarSource", "SonarQube / SonarCloud token", &["sqp_", "squ_", "sqa_"],
      r"\b(?P<s>sq[pua]_[a-f0-9]{40})\b").hex(),
    r("harness-token", "Harness", "Harness personal / service account token", &["pat.", "sat."],
      r"\b(?P<s>[ps]at\.[A-Za-z0-9_\-]{22}\.[0-9a-f]{24}\.[A-Za-z0-9]{20})\b").label("harness:"),
    r("clojars-token", "Clojars", "Clojars deploy token", &["CLOJARS_"],
      r"\b(?P<s>CLOJARS_[a-z0-9]{60})\b"),
    r("readme-api-key", "ReadMe", "ReadMe API key", &["rdme_"],
      r"\b(?P<s>rdme_[a-z0-9]{70})\b"),
    r("infracost-api-key", "Infracost", "Infracost API key", &["ico-"],
      r"\b(?P<s>ico-[A-Za-z0-9]{32})\b").entropy(3.5),
    r("scalingo-token", "Scalingo", "Scalingo API token", &["tk-us-"],
      r"\b(?P<s>tk-us-[A-Za-z0-9_\-]{48}){E}"),
    r("render-api-key", "Render", "Render API key", &["rnd_"],
      r"\b(?P<s>rnd_[A-Za-z0-9]{32})\b").entropy(3.5),
    r("neon-api-key", "Neon", "Neon API key", &["napi_"],
      r"\b(?P<s>napi_[a-z0-9]{64})\b"),
    r("contentful-token", "Contentful", "Contentful personal access token", &["CFPAT-"],
      r"\b(?P<s>CFPAT-[A-Za-z0-9_\-]{43}){E}"),
    r("typeform-token", "Typeform", "Typeform personal access token", &["tfp_"],
      r"\b(?P<s>tfp_[A-Za-z0-9_\-.=]{59})(?:[^A-Za-z0-9_\-.=]|\z)"),
    r("frameio-token", "Frame.io", "Frame.io developer token", &["fio-u-"],
      r"\b(?P<s>fio-u-[A-Za-z0-9_\-=]{64})(?:[^A-Za-z0-9_\-=]|\z)"),
    r("adobe-client-secret", "Adobe", "Adobe client secret", &["p8e-"],
      r"\b(?P<s>p8e-[A-Za-z0-9]{32})\b").entropy(3.5),
    r("buildkite-token", "Buildkite", "Buildkite user access token", &["bkua_"],
      r"\b(?P<s>bkua_[a-f0-9]{40})\b").hex(),
    r("atlassian-api-token", "Atlassian", "Atlassian (Jira/Confluence) API token", &["ATATT3"],
      r"\b(?P<s>ATATT3[A-Za-z0-9_\-=]{150,})(?:[^A-Za-z0-9_\-=]|\z)"),
    r("linear-api-key", "Linear", "Linear API key", &["lin_api_"],
      r"\b(?P<s>lin_api_[A-Za-z0-9]{40})\b"),
    r("notion-token", "Notion", "Notion integration token", &["secret_", "ntn_"],
      r"\b(?P<s>secret_[A-Za-z0-9]{43}|ntn_[0-9]{11}[A-Za-z0-9]{35})\b").entropy(3.5),
    r("postman-api-key", "Postman", "Postman API key", &["PMAK-"],
      r"\b(?P<s>PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b").hex(),
    r("airtable-pat", "Airtable", "Airtable personal access token", &["pat"],
      r"\b(?P<s>pat[A-Za-z0-9]{14}\.[a-f0-9]{64})\b").hex().label("pat"),
    r("figma-pat", "Figma", "Figma personal access token", &["figd_"],
      r"\b(?P<s>figd_[A-Za-z0-9_\-]{40}){E}"),
    // ---- payments -----------------------------------------------------------
    r("stripe-secret-key", "Stripe", "Stripe live secret key", &["sk_live_"],
      r"\b(?P<s>sk_live_[A-Za-z0-9]{24,247})\b"),
    r("stripe-test-secret-key", "Stripe", "Stripe test-mode secret key", &["sk_test_"],
      r"\b(?P<s>sk_test_[A-Za-z0-9]{24,247})\b").kind(Kind::Test),
    r("stripe-restricted-key", "Stripe", "Stripe live restricted key", &["rk_live_"],
      r"\b(?P<s>rk_live_[A-Za-z0-9]{24,247})\b"),
    r("stripe-test-restricted-key", "Stripe", "Stripe test-mode restricted key", &["rk_test_"],
      r"\b(?P<s>rk_test_[A-Za-z0-9]{24,247})\b").kind(Kind::Test),
    r("stripe-webhook-secret", "Stripe", "Stripe webhook signing secret", &["whsec_"],
      r"\b(?P<s>whsec_[A-Za-z0-9+/]{32,}={0,2})(?:[^A-Za-z0-9+/=]|\z)"),
    r("square-access-token", "Square", "Square access token", &["EAAA", "sq0atp-"],
      r"\b(?P<s>EAAA[A-Za-z0-9_\-]{60}|sq0atp-[A-Za-z0-9_\-]{22}){E}").entropy(3.0),
    r("square-oauth-secret", "Square", "Square OAuth application secret", &["sq0csp-"],
      r"\b(?P<s>sq0csp-[A-Za-z0-9_\-]{43}){E}"),
    r("braintree-access-token", "PayPal/Braintree", "PayPal Braintree access token", &["access_token$"],
      r"\b(?P<s>access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32})\b")
        .hex().test_marker("$sandbox$").label("access_token$"),
    r("paypal-client-secret", "PayPal/Braintree", "PayPal REST client secret (by context)", &["paypal"],
      r#"(?i)paypal[A-Za-z0-9_.\-]{0,30}secret[A-Za-z0-9_.\-]{0,20}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>E[A-Za-z0-9_\-]{79})(?:[^A-Za-z0-9_\-]|\z)"#)
        .entropy(3.5).priority(3),
    r("shopify-access-token", "Shopify", "Shopify access token", &["shpat_", "shpca_", "shppa_"],
      r"\b(?P<s>shp(?:at|ca|pa)_[a-fA-F0-9]{32})\b").hex(),
    r("shopify-shared-secret", "Shopify", "Shopify app shared secret", &["shpss_"],
      r"\b(?P<s>shpss_[a-fA-F0-9]{32})\b").hex(),
    r("easypost-api-key", "EasyPost", "EasyPost API key", &["EZAK", "EZTK"],
      r"\b(?P<s>EZ[AT]K[A-Za-z0-9]{54})\b").test_marker("EZTK"),
    r("flutterwave-secret-key", "Flutterwave", "Flutterwave secret key", &["FLWSECK"],
      r"\b(?P<s>FLWSECK(?:_TEST)?-[a-h0-9]{32}-X)\b").hex().test_marker("_TEST"),
    r("shippo-token", "Shippo", "Shippo API token", &["shippo_"],
      r"\b(?P<s>shippo_(?:live|test)_[a-f0-9]{40})\b").hex().test_marker("_test_"),
    r("duffel-token", "Duffel", "Duffel access token", &["duffel_"],
      r"\b(?P<s>duffel_(?:live|test)_[A-Za-z0-9_\-=]{43})(?:[^A-Za-z0-9_\-=]|\z)").test_marker("_test_"),
    r("plaid-access-token", "Plaid", "Plaid access token", &["access-sandbox-", "access-development-", "access-production-"],
      r"\b(?P<s>access-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")
        .hex().test_marker("-sandbox-"),
    // ---- LLM and AI providers -----------------------------------------------
    r("openai-api-key", "OpenAI", "OpenAI API key", &["T3BlbkFJ"],
      r"\b(?P<s>sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}){E}"),
    r("anthropic-api-key", "Anthropic", "Anthropic API key", &["sk-ant-api03-"],
      r"\b(?P<s>sk-ant-api03-[A-Za-z0-9_\-]{93}AA){E}"),
    r("anthropic-admin-key", "Anthropic", "Anthropic Admin API key", &["sk-ant-admin01-"],
      r"\b(?P<s>sk-ant-admin01-[A-Za-z0-9_\-]{93}AA){E}"),
    r("groq-api-key", "Groq", "Groq API key", &["gsk_"],
      r"\b(?P<s>gsk_[A-Za-z0-9]{52})\b"),
    r("huggingface-token", "Hugging Face", "Hugging Face access token", &["hf_", "api_org_"],
      r"\b(?P<s>hf_[A-Za-z]{34}|api_org_[A-Za-z]{34})\b").entropy(3.5),
    r("replicate-api-token", "Replicate", "Replicate API token", &["r8_"],
      r"\b(?P<s>r8_[A-Za-z0-9]{37})\b"),
    r("perplexity-api-key", "Perplexity", "Perplexity API key", &["pplx-"],
      r"\b(?P<s>pplx-[A-Za-z0-9]{48})\b"),
    r("xai-api-key", "xAI", "xAI (Grok) API key", &["xai-"],
      r"\b(?P<s>xai-[A-Za-z0-9]{80})\b"),
    r("mistral-api-key", "Mistral AI", "Mistral API key (by context)", &["mistral"],
      r#"(?i)mistral[A-Za-z0-9_.\-]{0,40}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{32})\b"#)
        .entropy(3.5).priority(3),
    r("cohere-api-key", "Cohere", "Cohere API key (by context)", &["cohere", "co_api"],
      r#"(?i)(?:cohere|co_api)[A-Za-z0-9_.\-]{0,40}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{40})\b"#)
        .entropy(3.5).priority(3),
    r("openrouter-api-key", "OpenRouter", "OpenRouter API key", &["sk-or-v1-"],
      r"\b(?P<s>sk-or-v1-[a-f0-9]{64})\b").hex(),
    r("langsmith-api-key", "LangChain", "LangSmith API key", &["lsv2_"],
      r"\b(?P<s>lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10})\b").hex(),
    r("pinecone-api-key", "Pinecone", "Pinecone API key", &["pcsk_"],
      r"\b(?P<s>pcsk_[A-Za-z0-9]{4,8}_[A-Za-z0-9]{40,80})\b"),
    r("tavily-api-key", "Tavily", "Tavily API key", &["tvly-"],
      r"\b(?P<s>tvly-(?:dev-|prod-)?[A-Za-z0-9]{32})\b"),
    r("e2b-api-key", "E2B", "E2B API key", &["e2b_"],
      r"\b(?P<s>e2b_[a-f0-9]{40})\b").hex(),
    // ---- chat ---------------------------------------------------------------
    r("slack-bot-token", "Slack", "Slack bot token", &["xoxb-"],
      r"\b(?P<s>xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24})\b"),
    r("slack-user-token", "Slack", "Slack user token", &["xoxp-", "xoxe-"],
      r"\b(?P<s>xox[pe]-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[a-f0-9]{32})\b").hex(),
    r("slack-app-token", "Slack", "Slack app-level token", &["xapp-"],
      r"\b(?P<s>xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,13}-[a-f0-9]{64})\b").hex(),
    r("slack-config-token", "Slack", "Slack app configuration access / refresh token", &["xoxe"],
      r"\b(?P<s>xoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{163,166}|xoxe-[0-9]-[A-Za-z0-9]{146})\b"),
    r("slack-legacy-token", "Slack", "Slack legacy workspace / session token", &["xoxa-", "xoxr-", "xoxs-", "xoxo-"],
      r"\b(?P<s>xox[ar]-(?:[0-9]-)?[0-9A-Za-z]{8,48}|xox[os]-[0-9]+-[0-9]+-[0-9]+-[a-fA-F0-9]+)\b").entropy(3.0),
    r("slack-webhook", "Slack", "Slack incoming webhook URL", &["hooks.slack.com"],
      r"(?P<s>https://hooks\.slack\.com/(?:services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24}|(?:workflows|triggers)/T[A-Z0-9]{8,12}/A[A-Z0-9]{8,12}/[0-9]{10,20}/[a-f0-9]{32}))\b")
        .entropy(3.0).label("hooks.slack.com/"),
    r("discord-bot-token", "Discord", "Discord bot token", &["discord"],
      r"\b(?P<s>[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}){E}")
        .entropy(3.5).label("discord:"),
    r("discord-webhook", "Discord", "Discord webhook URL", &["discord.com/api/webhooks", "discordapp.com/api/webhooks"],
      r"(?P<s>https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_\-]{60,68}){E}")
        .label("discord.com/api/webhooks/"),
    r("telegram-bot-token", "Telegram", "Telegram bot token", &[":AA"],
      r"\b(?P<s>[0-9]{8,10}:AA[0-9A-Za-z_\-]{33}){E}").entropy(3.0).label("telegram:"),
    r("teams-webhook", "Microsoft", "Microsoft Teams incoming webhook URL", &["webhook.office.com"],
      r"(?P<s>https://[a-z0-9\-]+\.webhook\.office\.com/webhookb2/[a-f0-9\-]{36}@[a-f0-9\-]{36}/IncomingWebhook/[a-f0-9]{32}/[a-f0-9\-]{36})\b")
        .hex().label("webhook.office.com/"),
    // ---- email --------------------------------------------------------------
    r("sendgrid-api-key", "SendGrid", "SendGrid API key", &["SG."],
      r"\b(?P<s>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}){E}"),
    r("mailgun-api-key", "Mailgun", "Mailgun private API key", &["key-"],
      r"\b(?P<s>key-[0-9a-f]{32})\b").hex(),
    r("mailchimp-api-key", "Mailchimp", "Mailchimp API key", &["-us"],
      r"\b(?P<s>[0-9a-f]{32}-us[0-9]{1,2})\b").hex().label("mailchimp:"),
    r("postmark-server-token", "Postmark", "Postmark server token (by context)", &["postmark"],
      r#"(?i)postmark[A-Za-z0-9_.\-]{0,40}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#)
        .hex().priority(3),
    r("brevo-api-key", "Brevo", "Brevo (Sendinblue) API key", &["xkeysib-"],
      r"\b(?P<s>xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16})\b").hex(),
    // ---- package registries -------------------------------------------------
    r("npm-access-token", "npm", "npm access token", &["npm_"],
      r"\b(?P<s>npm_[A-Za-z0-9]{36})\b").check(Check::GithubCrc32),
    r("npmrc-auth-token", "npm", "registry auth token in .npmrc", &["_authToken"],
      r#":_authToken\s*=\s*["']?(?P<s>[A-Za-z0-9_\-.=+/]{20,})"#).hex().priority(1).label("_authToken="),
    r("pypi-token", "PyPI", "PyPI upload token", &["pypi-AgEIcHlwaS5vcmc"],
      r"\b(?P<s>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}){E}"),
    r("pypi-test-token", "PyPI", "TestPyPI upload token", &["pypi-AgENdGVzdC5weXBpLm9yZw"],
      r"\b(?P<s>pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9_\-]{50,}){E}").kind(Kind::Test),
    r("rubygems-api-key", "RubyGems", "RubyGems API key", &["rubygems_"],
      r"\b(?P<s>rubygems_[a-f0-9]{48})\b").hex(),
    r("crates-io-token", "crates.io", "crates.io API token", &["cio"],
      r"\b(?P<s>cio[A-Za-z0-9]{32})\b").entropy(3.5),
    r("nuget-api-key", "NuGet", "NuGet API key", &["oy2"],
      r"\b(?P<s>oy2[a-z0-9]{43})\b").entropy(3.5),
    r("dockerhub-pat", "Docker", "Docker Hub access token", &["dckr_pat_", "dckr_oat_"],
      r"\b(?P<s>dckr_(?:pat|oat)_[A-Za-z0-9_\-]{27}){E}"),
    r("docker-config-auth", "Docker", "registry credentials in Docker config.json", &["\"auths\""],
      r#""auth"\s*:\s*"(?P<s>[A-Za-z0-9+/]{8,}={0,2})""#).check(Check::DockerAuth).entropy(0.0).label("auth:"),
    r("jfrog-api-key", "JFrog", "JFrog Artifactory API key or reference token", &["AKCp", "cmVmdGtu"],
      r"\b(?P<s>AKCp[A-Za-z0-9]{69}|cmVmdGtuOjAxOj[A-Za-z0-9]{50})\b"),
    r("netrc-password", "netrc", "password in a .netrc entry", &["machine"],
      r"machine\s+\S+\s+login\s+\S+\s+password\s+(?P<s>\S+)").check(Check::UrlPassword).entropy(0.0).priority(1),
    // ---- databases and URLs -------------------------------------------------
    r("postgres-url", "PostgreSQL", "PostgreSQL connection URL with password", &["postgres"],
      r#"(?i)\bpostgres(?:ql)?(?:\+[a-z0-9]+)?://[^:@/\s"'`]*:(?P<s>[^@/\s"'`]{1,128})@(?:[^\s"'`/:]+|/[^\s"'`]*)"#)
        .check(Check::UrlPassword).entropy(0.0).label("postgres:"),
    r("mysql-url", "MySQL", "MySQL/MariaDB connection URL with password", &["mysql", "mariadb"],
      r#"(?i)\b(?:mysql|mariadb)(?:\+[a-z0-9]+)?://[^:@/\s"'`]*:(?P<s>[^@/\s"'`]{1,128})@[^\s"'`/:]+"#)
        .check(Check::UrlPassword).entropy(0.0).label("mysql:"),
    r("mysql-dsn", "MySQL", "MySQL DSN with password (Go driver: user:pass@tcp(host)/db)", &["@tcp(", "@unix("],
      r#"(?:\A|[\s"'`=])[A-Za-z0-9_.\-]{1,64}:(?P<s>[^@/\s"'`]{1,128})@(?:tcp|unix)\([^)\s"'`]*\)"#)
        .check(Check::UrlPassword).entropy(0.0).label("mysql:"),
    r("mongodb-url", "MongoDB", "MongoDB connection URL with password", &["mongodb"],
      r#"(?i)\bmongodb(?:\+srv)?://[^:@/\s"'`]*:(?P<s>[^@/\s"'`]{1,128})@[^\s"'`/:]+"#)
        .check(Check::UrlPassword).entropy(0.0).label("mongodb:"),
    r("redis-url", "Redis", "Redis connection URL with password", &["redis"],
      r#"(?i)\brediss?://[^:@/\s"'`]*:(?P<s>[^@/\s"'`]{1,128})@[^\s"'`/:]+"#)
        .check(Check::UrlPassword).entropy(0.0).label("redis:"),
    r("url-password", "URL", "URL with an embedded password", &["://"],
      r#"(?i)\b[a-z][a-z0-9+.\-]{1,20}://[^:@/\s"'`]{1,64}:(?P<s>[^@/\s"'`]{3,128})@[A-Za-z0-9.\-_\[\]]+"#)
        .check(Check::UrlPassword).entropy(0.0).priority(1).label("url:"),
    // ---- private keys -------------------------------------------------------
    pem("private-key-rsa", "RSA private key", &["RSA PRIVATE KEY"],
      r"-----BEGIN RSA PRIVATE KEY-----(?P<s>[A-Za-z0-9+/=\s\\:,\-]{64,}?)-----END RSA PRIVATE KEY-----").label("RSA PRIVATE KEY:"),
    pem("private-key-ec", "EC private key", &["EC PRIVATE KEY"],
      r"-----BEGIN EC PRIVATE KEY-----(?P<s>[A-Za-z0-9+/=\s\\:,\-]{64,}?)-----END EC PRIVATE KEY-----").label("EC PRIVATE KEY:"),
    pem("private-key-dsa", "DSA private key", &["DSA PRIVATE KEY"],
      r"-----BEGIN DSA PRIVATE KEY-----(?P<s>[A-Za-z0-9+/=\s\\:,\-]{64,}?)-----END DSA PRIVATE KEY-----").label("DSA PRIVATE KEY:"),
    pem("private-key-openssh", "OpenSSH private key", &["OPENSSH PRIVATE KEY"],
      r"-----BEGIN OPENSSH PRIVATE KEY-----(?P<s>[A-Za-z0-9+/=\s\\]{64,}?)-----END OPENSSH PRIVATE KEY-----").label("OPENSSH PRIVATE KEY:"),
    pem("private-key-pkcs8", "PKCS#8 private key", &["BEGIN PRIVATE KEY"],
      r"-----BEGIN PRIVATE KEY-----(?P<s>[A-Za-z0-9+/=\s\\]{64,}?)-----END PRIVATE KEY-----").label("PRIVATE KEY:"),
    pem("private-key-pkcs8-encrypted", "encrypted PKCS#8 private key", &["ENCRYPTED PRIVATE KEY"],
      r"-----BEGIN ENCRYPTED PRIVATE KEY-----(?P<s>[A-Za-z0-9+/=\s\\]{64,}?)-----END ENCRYPTED PRIVATE KEY-----")
        .kind(Kind::Encrypted).label("ENCRYPTED PRIVATE KEY:"),
    pem("private-key-pgp", "PGP private key block", &["PGP PRIVATE KEY BLOCK"],
      r"-----BEGIN PGP PRIVATE KEY BLOCK-----(?P<s>[A-Za-z0-9+/=\s\\:,.()\-]{64,}?)-----END PGP PRIVATE KEY BLOCK-----").label("PGP PRIVATE KEY:"),
    pem("private-key-putty", "PuTTY private key", &["PuTTY-User-Key-File"],
      r"PuTTY-User-Key-File-[23]:[^\n]*\n(?:[^\n]*\n){0,8}?Private-Lines:\s*[0-9]+\s*\n(?P<s>[A-Za-z0-9+/=\s]{40,}?)\s*Private-MAC").label("PuTTY:"),
    // ---- tokens of many origins ---------------------------------------------
    r("jwt", "JWT", "JSON Web Token", &["eyJ"],
      r"\b(?P<s>eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,}){E}")
        .check(Check::Jwt).priority(1).label("eyJ"),
    r("twilio-api-key", "Twilio", "Twilio API key SID", &["SK"],
      r"\b(?P<s>SK[0-9a-f]{32})\b").hex().entropy(3.0),
    r("twilio-auth-token", "Twilio", "Twilio auth token (by context)", &["twilio"],
      r#"(?i)twilio[A-Za-z0-9_.\-]{0,30}(?:auth|token|secret)[A-Za-z0-9_.\-]{0,20}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[0-9a-f]{32})\b"#)
        .hex().priority(3),
    r("twilio-account-sid", "Twilio", "Twilio account SID (an identifier; low risk on its own)", &["AC"],
      r"\b(?P<s>AC[0-9a-f]{32})\b").hex().entropy(3.0).kind(Kind::Identifier),
    r("sentry-auth-token", "Sentry", "Sentry auth token", &["sntryu_", "sntrys_"],
      r"\b(?P<s>sntry[us]_[A-Za-z0-9+/=_\-]{64,})(?:[^A-Za-z0-9+/=_\-]|\z)"),
    r("datadog-api-key", "Datadog", "Datadog API / application key (by context)", &["datadog", "dd_api", "dd_app", "dd-api", "dd-app", "ddapi", "ddapp"],
      r#"(?i)(?:datadog[_\-.]?(?:api|app|application)?[_\-.]?key|dd[_\-]?(?:api|app|application)[_\-]?key)(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{32}(?:[a-f0-9]{8})?)\b"#)
        .hex().priority(3),
    r("newrelic-user-api-key", "New Relic", "New Relic user API key", &["NRAK-"],
      r"\b(?P<s>NRAK-[A-Z0-9]{27})\b"),
    r("newrelic-license-key", "New Relic", "New Relic ingest license key", &["NRAL"],
      r"\b(?P<s>[a-f0-9]{36}NRAL)\b").hex().label("newrelic:"),
    r("grafana-cloud-token", "Grafana", "Grafana Cloud access policy token", &["glc_"],
      r"\b(?P<s>glc_[A-Za-z0-9+/]{32,}={0,2})(?:[^A-Za-z0-9+/=_\-]|\z)"),
    r("grafana-service-account-token", "Grafana", "Grafana service account token", &["glsa_"],
      r"\b(?P<s>glsa_[A-Za-z0-9]{32}_[a-f0-9]{8})\b"),
    r("mapbox-secret-token", "Mapbox", "Mapbox secret access token", &["sk.eyJ"],
      r"\b(?P<s>sk\.eyJ[A-Za-z0-9_\-]{50,}\.[A-Za-z0-9_\-]{20,}){E}"),
    r("planetscale-token", "PlanetScale", "PlanetScale token or password", &["pscale_"],
      r"\b(?P<s>pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-.]{43}){E}"),
    r("prefect-api-key", "Prefect", "Prefect API key", &["pnu_"],
      r"\b(?P<s>pnu_[A-Za-z0-9]{36})\b"),
    r("dynatrace-token", "Dynatrace", "Dynatrace API token", &["dt0"],
      r"\b(?P<s>dt0[a-z][0-9]{2}\.[A-Z0-9]{24}\.[A-Z0-9]{64})\b"),
    r("newrelic-insert-key", "New Relic", "New Relic Insights insert key", &["NRII-"],
      r"\b(?P<s>NRII-[A-Za-z0-9_\-]{32}){E}"),
    r("grafana-api-key", "Grafana", "Grafana API key (legacy)", &["eyJrIjoi"],
      r"\b(?P<s>eyJrIjoi[A-Za-z0-9+/]{60,400}={0,2})(?:[^A-Za-z0-9+/=_\-]|\z)").entropy(3.5),
    r("posthog-personal-api-key", "PostHog", "PostHog personal API key", &["phx_"],
      r"\b(?P<s>phx_[A-Za-z0-9]{43})\b"),
    r("launchdarkly-key", "LaunchDarkly", "LaunchDarkly API access token or server-side SDK key", &["api-", "sdk-"],
      r"\b(?P<s>(?:api|sdk)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b").hex(),
    r("wandb-api-key", "Weights & Biases", "Weights & Biases API key (by context)", &["wandb"],
      r#"(?i)wandb[A-Za-z0-9_.\-]{0,20}key(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{40})\b"#)
        .hex().priority(3),
    r("algolia-admin-key", "Algolia", "Algolia admin / write API key (by context)", &["algolia"],
      r#"(?i)algolia[A-Za-z0-9_.\-]{0,20}(?:admin|write|secret|api)[A-Za-z0-9_.\-]{0,12}key(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{32})\b"#)
        .hex().priority(3),
    // ---- widened against gitleaks' default rules, trufflehog's detectors and
    // GitHub's secret-scanning partner patterns (issue 18); formats only
    r("google-oauth-access-token", "Google Cloud", "Google OAuth 2.0 access token", &["ya29."],
      r"\b(?P<s>ya29\.[0-9A-Za-z_\-]{30,}){E}").entropy(3.0),
    r("google-oauth-refresh-token", "Google Cloud", "Google OAuth 2.0 refresh token", &["1//0"],
      r"(?m)(?:^|[^A-Za-z0-9_/:\-])(?P<s>1//0[0-9A-Za-z_\-]{60,}){E}").entropy(3.5),
    r("firebase-fcm-server-key", "Google Firebase", "Firebase Cloud Messaging legacy server key", &["APA91b"],
      r"\b(?P<s>AAAA[A-Za-z0-9_\-]{7}:APA91b[A-Za-z0-9_\-]{134}){E}"),
    r("dropbox-token", "Dropbox", "Dropbox short-lived access token", &["sl."],
      r"\b(?P<s>sl\.(?:u\.)?[A-Za-z0-9_\-]{130,}){E}").entropy(3.5),
    r("facebook-access-token", "Meta", "Facebook / Meta Graph API access token", &["EAA"],
      r"\b(?P<s>EAA[A-Za-z0-9]{100,})\b").entropy(3.5),
    r("twitter-bearer-token", "X (Twitter)", "X (Twitter) app-only bearer token", &["AAAAAAAAAAAAAAAAAAAAAA"],
      r"\b(?P<s>A{22}[A-Za-z0-9%]{80,110})(?:[^A-Za-z0-9%]|\z)").entropy(3.0),
    r("settlemint-token", "SettleMint", "SettleMint application, personal or service access token", &["sm_aat_", "sm_pat_", "sm_sat_"],
      r"\b(?P<s>sm_(?:aat|pat|sat)_[A-Za-z0-9]{16})\b"),
    r("defined-networking-token", "Defined Networking", "Defined Networking (Nebula) API token", &["dnkey-"],
      r"\b(?P<s>dnkey-[A-Za-z0-9=_\-]{26}-[A-Za-z0-9=_\-]{52})(?:[^A-Za-z0-9=_\-]|\z)"),
    r("clickhouse-cloud-key", "ClickHouse", "ClickHouse Cloud API key secret", &["4b1d"],
      r"\b(?P<s>4b1d[A-Za-z0-9]{38})\b").entropy(3.5),
    r("maxmind-license-key", "MaxMind", "MaxMind license key", &["_mmk"],
      r"\b(?P<s>[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk)\b"),
    r("octopus-deploy-api-key", "Octopus Deploy", "Octopus Deploy API key", &["API-"],
      r"\b(?P<s>API-[A-Z0-9]{26})\b").entropy(3.5),
    r("yandex-api-key", "Yandex Cloud", "Yandex Cloud API key", &["AQVN"],
      r"\b(?P<s>AQVN[A-Za-z0-9_\-]{35,38}){E}"),
    r("yandex-iam-token", "Yandex Cloud", "Yandex Cloud IAM token", &["t1."],
      r"\b(?P<s>t1\.[A-Za-z0-9_\-]+={0,2}\.[A-Za-z0-9_\-]{86}={0,2})(?:[^A-Za-z0-9_\-=]|\z)").entropy(3.5),
    r("sidekiq-secret", "Sidekiq", "Sidekiq Pro / Enterprise gem server credential", &["contribsys"],
      r#"(?i)(?:(?:BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM|[A-Za-z]*contribsys_*com)(?:["']?\]?\s*(?::=|=>|=|:))\s*["']?|https?://)(?P<s>[a-f0-9]{8}:[a-f0-9]{8})\b"#)
        .hex().entropy(2.0),
    r("hubspot-private-app-token", "HubSpot", "HubSpot private app access token", &["pat-na1-", "pat-eu1-"],
      r"\b(?P<s>pat-(?:na1|eu1)-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})\b").hex(),
    r("sourcegraph-token", "Sourcegraph", "Sourcegraph access token", &["sgp_"],
      r"\b(?P<s>sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40})\b").hex(),
    r("okta-api-token", "Okta", "Okta API token (by context, or after SSWS)", &["okta", "ssws"],
      r#"(?i)(?:okta[A-Za-z0-9_.\-]{0,24}(?:token|key|secret)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?|\bSSWS\s+)(?P<s>00[A-Za-z0-9_\-]{40}){E}"#)
        .entropy(3.5).priority(3),
    r("fastly-api-token", "Fastly", "Fastly API token (by context)", &["fastly"],
      r#"(?i)fastly[A-Za-z0-9_.\-]{0,24}(?:token|key|secret)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9_\-]{32}){E}"#)
        .entropy(3.5).priority(3),
    r("snyk-token", "Snyk", "Snyk API token (by context)", &["snyk"],
      r#"(?i)snyk[A-Za-z0-9_.\-]{0,24}(?:token|key|auth)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#)
        .hex().priority(3),
    r("asana-pat", "Asana", "Asana personal access token (by context)", &["asana"],
      r#"(?i)asana[A-Za-z0-9_.\-]{0,24}(?:token|pat|key|secret)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[12]/[0-9]{10,20}(?:/[0-9]{10,20})?:[a-f0-9]{32})\b"#)
        .hex().priority(3),
    r("lob-api-key", "Lob", "Lob secret API key (by context)", &["lob"],
      r#"(?i)\blob[A-Za-z0-9_.\-]{0,16}(?:key|secret|token)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>(?:live|test)_[a-f0-9]{35})\b"#)
        .hex().priority(3).test_marker("test_"),
    r("gocardless-token", "GoCardless", "GoCardless access token (by context)", &["gocardless"],
      r#"(?i)gocardless[A-Za-z0-9_.\-]{0,24}(?:token|key|secret)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>(?:live|sandbox)_[A-Za-z0-9_\-=]{40})(?:[^A-Za-z0-9_\-=]|\z)"#)
        .priority(3).test_marker("sandbox_"),
    // keyed on the `.acc_` every key holds: `sc_`/`ext_` are in most C sources
    r("authress-key", "Authress", "Authress service client access key", &[".acc_", ".acc-"],
      r"(?i)\b(?P<s>(?:sc|ext|scauth|authress)_[a-z0-9]{5,30}\.[a-z0-9]{4,6}\.acc[_\-][a-z0-9\-]{10,32}\.[a-z0-9+/_=\-]{30,120})(?:[^a-z0-9+/_=\-]|\z)"),
    r("bitbucket-app-password", "Atlassian", "Bitbucket app password", &["ATBB"],
      r"\b(?P<s>ATBB[A-Za-z0-9_=.\-]{28,40}){E}").entropy(3.0),
    r("nvidia-api-key", "NVIDIA", "NVIDIA API / NGC key", &["nvapi-"],
      r"\b(?P<s>nvapi-[A-Za-z0-9_\-]{60,70}){E}"),
    r("elevenlabs-api-key", "ElevenLabs", "ElevenLabs API key", &["sk_"],
      r"\b(?P<s>sk_[a-f0-9]{48})\b").hex().entropy(3.0),
    r("firecrawl-api-key", "Firecrawl", "Firecrawl API key", &["fc-"],
      r"\b(?P<s>fc-[a-f0-9]{32})\b").hex().entropy(3.0),
    r("langfuse-secret-key", "Langfuse", "Langfuse secret key", &["sk-lf-"],
      r"\b(?P<s>sk-lf-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})\b").hex(),
    r("salesforce-access-token", "Salesforce", "Salesforce access token / session id", &["00D"],
      r"\b(?P<s>00D[A-Za-z0-9]{12}![A-Za-z0-9._]{90,})").entropy(3.5),
    r("cisco-meraki-api-key", "Cisco", "Cisco Meraki Dashboard API key (by context)", &["meraki"],
      r#"(?i)meraki[A-Za-z0-9_.\-]{0,24}(?:key|token|secret)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{40})\b"#)
        .hex().priority(3),
    r("intercom-access-token", "Intercom", "Intercom access token (by context)", &["intercom"],
      r#"(?i)intercom[A-Za-z0-9_.\-]{0,24}(?:token|key|secret)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9_\-=]{60})(?:[^A-Za-z0-9_\-=]|\z)"#)
        .entropy(3.5).priority(3),
    r("zendesk-api-token", "Zendesk", "Zendesk API token (by context)", &["zendesk"],
      r#"(?i)zendesk[A-Za-z0-9_.\-]{0,24}(?:token|key|secret)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{40})\b"#)
        .entropy(3.5).priority(3),
    r("aws-bedrock-api-key", "AWS", "Amazon Bedrock API key", &["ABSK", "bedrock-api-key-"],
      r"\b(?P<s>ABSK[A-Za-z0-9+/]{109,269}={0,2}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/%]{20,}={0,2})(?:[^A-Za-z0-9+/=%]|\z)").entropy(3.5),
    r("nuget-config-password", "NuGet", "password of a package source in NuGet.Config", &["cleartextpassword", "\"password\""],
      r#"(?i)<add\s+key\s*=\s*"(?:ClearText)?Password"\s+value\s*=\s*"(?P<s>[^"\s]{8,256})""#)
        .entropy(3.0).label("nuget:"),
    r("gitlab-runner-registration-token", "GitLab", "GitLab runner registration token (legacy)", &["GR1348941"],
      r"\b(?P<s>GR1348941[A-Za-z0-9_\-]{20}){E}"),
    r("gitlab-session-cookie", "GitLab", "GitLab session cookie", &["_gitlab_session="],
      r"_gitlab_session=(?P<s>[0-9a-z]{32})\b").hex(),
    r("intra42-client-secret", "42", "42 Intra API client secret", &["s-s4t2"],
      r"\b(?P<s>s-s4t2(?:ud|af)-[a-f0-9]{64})\b").hex(),
    // by context: the provider's name in the variable, a secret word, a value of the shape
    r("travisci-token", "Travis CI", "Travis CI API token (by context)", &["travis"],
      r#"(?i)travis[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{22})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("twitch-api-token", "Twitch", "Twitch client secret / OAuth token (by context)", &["twitch"],
      r#"(?i)twitch[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9]{30})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("mattermost-token", "Mattermost", "Mattermost access token (by context)", &["mattermost"],
      r#"(?i)mattermost[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9]{26})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("rapidapi-key", "RapidAPI", "RapidAPI key (by context)", &["rapidapi"],
      r#"(?i)rapidapi[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9_\-]{50})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("sumologic-access-key", "Sumo Logic", "Sumo Logic access key (by context)", &["sumo"],
      r#"(?i)sumo(?:logic)?[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{64})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("squarespace-token", "Squarespace", "Squarespace API key (by context)", &["squarespace"],
      r#"(?i)squarespace[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("sendbird-token", "Sendbird", "Sendbird API token (by context)", &["sendbird"],
      r#"(?i)sendbird[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{40})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("droneci-token", "Drone CI", "Drone CI access token (by context)", &["drone"],
      r#"(?i)drone[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("codecov-token", "Codecov", "Codecov upload / access token (by context)", &["codecov"],
      r#"(?i)codecov[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9]{32}))(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("confluent-secret", "Confluent", "Confluent Cloud API secret (by context)", &["confluent"],
      r#"(?i)confluent[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9+/]{64})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("coinbase-secret", "Coinbase", "Coinbase API secret (by context)", &["coinbase"],
      r#"(?i)coinbase[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9_\-]{64})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("kraken-secret", "Kraken", "Kraken API private key (by context)", &["kraken"],
      r#"(?i)kraken[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9/=_+\-]{80,90})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("kucoin-secret", "KuCoin", "KuCoin API secret (by context)", &["kucoin"],
      r#"(?i)kucoin[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("gitter-token", "Gitter", "Gitter access token (by context)", &["gitter"],
      r#"(?i)gitter[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9_\-]{40})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("finnhub-key", "Finnhub", "Finnhub API key (by context)", &["finnhub"],
      r#"(?i)finnhub[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9]{20})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("etsy-key", "Etsy", "Etsy API key (by context)", &["etsy"],
      r#"(?i)etsy[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9]{24})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("nytimes-key", "The New York Times", "New York Times API key (by context)", &["nytimes"],
      r#"(?i)nytimes[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9=_\-]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("messagebird-key", "MessageBird", "MessageBird (Bird) API key (by context)", &["messagebird", "message_bird", "message-bird"],
      r#"(?i)message[_\-]?bird[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{25})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("adafruit-key", "Adafruit", "Adafruit IO key (by context)", &["adafruit"],
      r#"(?i)adafruit[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9_\-]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("discord-client-secret", "Discord", "Discord OAuth2 client secret (by context)", &["discord"],
      r#"(?i)discord[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9=_\-]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("linear-client-secret", "Linear", "Linear OAuth client secret (by context)", &["linear"],
      r#"(?i)linear[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("alibaba-secret-key", "Alibaba Cloud", "Alibaba Cloud AccessKey secret (by context)", &["alibaba", "aliyun"],
      r#"(?i)(?:alibaba|aliyun)[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{30})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("beamer-token", "Beamer", "Beamer API key (by context)", &["beamer"],
      r#"(?i)beamer[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>b_[A-Za-z0-9=_\-]{44})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("freshbooks-token", "FreshBooks", "FreshBooks access token (by context)", &["freshbooks"],
      r#"(?i)freshbooks[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9]{64})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("flickr-key", "Flickr", "Flickr API secret (by context)", &["flickr"],
      r#"(?i)flickr[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("plaid-secret", "Plaid", "Plaid API secret (by context)", &["plaid"],
      r#"(?i)plaid[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9]{30})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("mailgun-signing-key", "Mailgun", "Mailgun webhook signing key (by context)", &["mailgun"],
      r#"(?i)mailgun[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-h0-9]{32}-[a-h0-9]{8}-[a-h0-9]{8})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("looker-client-secret", "Looker", "Looker API client secret (by context)", &["looker"],
      r#"(?i)looker[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{24})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("linkedin-client-secret", "LinkedIn", "LinkedIn client secret (by context)", &["linkedin", "linked_in", "linked-in"],
      r#"(?i)linked[_\-]?in[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9]{16})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("twitter-api-secret", "X (Twitter)", "X (Twitter) API / access token secret (by context)", &["twitter"],
      r#"(?i)twitter[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>(?:[A-Za-z0-9]{50}|[A-Za-z0-9]{45}))(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("bitbucket-client-secret", "Atlassian", "Bitbucket OAuth consumer secret (by context)", &["bitbucket"],
      r#"(?i)bitbucket[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[A-Za-z0-9=_\-]{32,64})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("asana-client-secret", "Asana", "Asana OAuth client secret (by context)", &["asana"],
      r#"(?i)asana[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    r("facebook-app-secret", "Meta", "Facebook app secret (by context)", &["facebook", "fb_app", "fb-app", "fbapp"],
      r#"(?i)(?:facebook|\bfb[_\-.]?app)[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-f0-9]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("finicity-secret", "Finicity", "Finicity API token / client secret (by context)", &["finicity"],
      r#"(?i)finicity[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>(?:[a-f0-9]{32}|[a-z0-9]{20}))(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("hubspot-api-key", "HubSpot", "HubSpot API key (legacy, UUID; by context, or `hapikey`)", &["hubspot", "hapikey"],
      r#"(?i)(?:hubspot[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)|hapikey)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .hex().priority(3),
    r("privateai-key", "Private AI", "Private AI API key (by context)", &["privateai", "private_ai", "private-ai"],
      r#"(?i)private[_\-]?ai[A-Za-z0-9_.\-]{0,24}(?:token|key|secret|password)[A-Za-z0-9_.\-]{0,12}(?:["']?\]?\s*(?::=|=>|=|:)|["']\s*,)\s*["']?(?P<s>[a-z0-9]{32})(?:[^A-Za-z0-9=_\-.+/]|\z)"#)
        .priority(3),
    // ---- generic (weak context) ---------------------------------------------
    r(GENERIC_ASSIGNMENT, "Generic", "high-entropy value assigned to a secret-looking name",
      &["pass", "pwd", "secret", "token", "key", "cred", "auth"],
      r#"(?i)(?P<k>[A-Za-z0-9_.\-]*(?:password|passwd|passphrase|pwd|secret|token|api[_\-.]?key|apikey|access[_\-.]?key|private[_\-.]?key|auth[_\-.]?key|credentials?|key)[A-Za-z0-9_.\-]*)(?:["'`]?\]?[ \t]*(?::=|=>|=|:)|["'`][ \t]*,)[ \t]*(?:[bru]?(?P<q>["'`]))?(?P<s>[^\s"'`,;()\[\]{}<>]{8,256})"#)
        .kind(Kind::Generic).check(Check::Generic).entropy(0.0).priority(0).label(""),
    r(XML_SECRET, "Generic", "high-entropy value in an XML element with a secret-looking name",
      &["pass", "secret", "token", "key", "cred"],
      r#"(?i)<(?P<k>[A-Za-z0-9_.\-:]*(?:password|passwd|passphrase|secret|token|api[_\-.]?key|apikey|access[_\-.]?key|private[_\-.]?key|credentials?)[A-Za-z0-9_.\-]*)>[ \t]*(?P<s>[^<>\s]{8,256})[ \t]*</"#)
        .kind(Kind::Generic).check(Check::Generic).entropy(0.0).priority(0).label(""),
    r(AUTH_HEADER, "Generic", "credential in an Authorization header", &["authorization"],
      r#"(?i)authorization["']?\s*[:=]\s*["']?(?:bearer|token|basic)\s+(?P<s>[A-Za-z0-9_\-.=:/+~]{16,})"#)
        .kind(Kind::Generic).entropy(3.0).priority(1).label(""),
    // `curl -u user:password URL` (also `--user`, on a continuation line);
    // the default-password filter of URL passwords applies
    r("curl-user-password", "curl", "password passed to curl with -u / --user", &["curl"],
      r#"\bcurl\b(?:[^\n]|\\\r?\n){0,400}?\s(?:-u|--user)(?:=|[ \t]*)["']?[^\s:"'`$]{1,64}:(?P<s>[^\s"'`]{3,128})"#)
        .check(Check::UrlPassword).entropy(0.0).priority(1).label("curl:"),
    r(CLI_FLAG, "Generic", "credential passed as a command-line flag",
      &["--api", "--token", "--secret", "--password", "--access", "--auth", "--client-secret"],
      r#"--(?:api[_\-]?key|access[_\-]?token|auth[_\-]?token|token|secret|password|client[_\-]secret)(?:=|\s+)["']?(?P<s>[^\s"'`]{12,})"#)
        .kind(Kind::Generic).entropy(3.0).priority(1).label(""),
];
