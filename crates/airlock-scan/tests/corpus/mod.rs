//! Labelled corpus generator: for every rule, random but format-valid secrets
//! (checksums computed) embedded in realistic files, plus decoys of every kind
//! the scanner must ignore. Deterministic: a fixed-seed xorshift generator.
//!
//! Secrets are assembled at run time, so this file itself holds no token
//! that another scanner (or push protection) would flag.

use airlock_scan::testing::{bech32_encode, github_checksum};
use base64::Engine as _;

/// One labelled file.
pub(crate) struct Sample {
    pub(crate) file: String,
    pub(crate) content: String,
    /// The rule that must fire (None: a decoy, nothing may fire).
    pub(crate) expect: Option<&'static str>,
}

/// Deterministic xorshift64*.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const DIGITS: &[u8] = b"0123456789";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const PASSWORDISH: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#^+_-";
const BECH32_UPPER: &[u8] = b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";

/// Expands `{X:n}` placeholders: A alnum, a lower alnum, L letters, U upper
/// alnum, h hex, d digits, u base64url, b base64, 2 base32, 8 bech32 (upper),
/// P password-ish;
/// `{crc}` appends the GitHub checksum of the text since the last `_`.
pub(crate) fn expand(t: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let spec = &rest[i + 1..i + j];
        rest = &rest[i + j + 1..];
        if spec == "crc" {
            let random = out.rsplit('_').next().unwrap_or_default().to_owned();
            out.push_str(&github_checksum(random.as_bytes()));
            continue;
        }
        if spec == "uuid" {
            let u = format!(
                "{}-{}-4{}-a{}-{}",
                rng.pick(HEX, 8),
                rng.pick(HEX, 4),
                rng.pick(HEX, 3),
                rng.pick(HEX, 3),
                rng.pick(HEX, 12)
            );
            out.push_str(&u);
            continue;
        }
        let (class, n) = spec.split_once(':').unwrap_or((spec, "1"));
        let n: usize = n.parse().unwrap_or(1);
        let alphabet = match class {
            "A" => ALNUM,
            "a" => LOWER_ALNUM,
            "L" => LETTERS,
            "U" => UPPER_ALNUM,
            "h" => HEX,
            "d" => DIGITS,
            "u" => B64URL,
            "b" => B64,
            "2" => B32,
            "8" => BECH32_UPPER,
            "P" => PASSWORDISH,
            _ => ALNUM,
        };
        // the first character of a password-ish value is a letter
        if class == "P" {
            out.push_str(&rng.pick(LETTERS, 1));
            out.push_str(&rng.pick(alphabet, n - 1));
        } else {
            out.push_str(&rng.pick(alphabet, n));
        }
    }
    out.push_str(rest);
    out
}

/// (rule id, templates, variable name — `None` rotates neutral names).
/// Templates starting with `@` are whole-secret generators handled in code.
pub(crate) const TEMPLATES: &[(&str, &[&str], Option<&str>)] = &[
    ("aws-access-key-id", &["AKIA{2:16}", "ASIA{2:16}"], None),
    (
        "aws-secret-access-key",
        &["{b:40}", "@aws_tf"],
        Some("aws_secret_access_key"),
    ),
    ("gcp-service-account-key", &["@gcp"], None),
    ("gcp-api-key", &["AIza{u:35}"], None),
    ("gcp-oauth-client-secret", &["GOCSPX-{u:28}"], None),
    (
        "azure-storage-account-key",
        &[
            "DefaultEndpointsProtocol=https;AccountName=acct{a:6};AccountKey={b:86}==;EndpointSuffix=core.windows.net",
        ],
        None,
    ),
    (
        "azure-ad-client-secret",
        &["{A:3}{d:1}Q~{A:34}", "{A:3}{d:1}Q~{A:31}"],
        None,
    ),
    ("azure-devops-pat", &["{A:76}AZDO{A:4}"], None),
    (
        "azure-shared-access-key",
        &[
            "Endpoint=sb://ns{a:6}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={b:43}=",
        ],
        None,
    ),
    ("alibaba-access-key-id", &["LTAI{A:20}", "LTAI{A:16}"], None),
    (
        "digitalocean-token",
        &["dop_v1_{h:64}", "doo_v1_{h:64}"],
        None,
    ),
    ("cloudflare-origin-ca-key", &["v1.0-{h:24}-{h:146}"], None),
    (
        "cloudflare-api-key",
        &["{h:37}", "{u:40}"],
        Some("CLOUDFLARE_API_TOKEN"),
    ),
    ("openshift-token", &["sha256~{u:43}"], None),
    ("heroku-api-key-v2", &["HRKU-AA{u:58}"], None),
    ("heroku-api-key", &["{uuid}"], Some("HEROKU_API_KEY")),
    ("flyio-token", &["fo1_{u:43}", "fm2_{b:140}"], None),
    ("netlify-token", &["nfp_{A:36}"], None),
    ("vercel-token", &["{A:24}"], Some("VERCEL_TOKEN")),
    ("supabase-pat", &["sbp_{h:40}"], None),
    ("supabase-secret-key", &["sb_secret_{u:31}"], None),
    ("databricks-token", &["dapi{h:32}", "dapi{h:32}-2"], None),
    ("pulumi-token", &["pul-{h:40}"], None),
    ("terraform-cloud-token", &["{A:14}.atlasv1.{u:67}"], None),
    ("vault-token", &["hvs.{u:90}", "hvs.{A:24}"], None),
    (
        "doppler-token",
        &[
            "dp.pt.{A:43}",
            "dp.st.{A:40}",
            "dp.st.dev.{A:43}",
            "dp.said.{A:44}",
            "dp.ct.{A:42}",
            "dp.st.prd_eu-1.{A:44}",
        ],
        None,
    ),
    ("onepassword-service-account", &["ops_eyJ{u:160}"], None),
    (
        "onepassword-secret-key",
        &[
            "A3-{U:6}-{U:11}-{U:5}-{U:5}-{U:5}",
            "A3-{U:6}-{U:6}-{U:5}-{U:5}-{U:5}-{U:5}",
        ],
        None,
    ),
    // `@age` has a valid bech32 checksum, the template does not (still a key)
    ("age-secret-key", &["@age", "AGE-SECRET-KEY-1{8:58}"], None),
    (
        "tailscale-key",
        &["tskey-auth-{A:12}-{A:30}", "tskey-api-{A:10}-{A:24}"],
        None,
    ),
    ("github-pat", &["ghp_{A:30}{crc}"], None),
    ("github-oauth-token", &["gho_{A:30}{crc}"], None),
    ("github-user-token", &["ghu_{A:30}{crc}"], None),
    ("github-app-token", &["ghs_{A:30}{crc}"], None),
    ("github-refresh-token", &["ghr_{A:30}{crc}"], None),
    (
        "github-fine-grained-pat",
        &["github_pat_{A:22}_{A:59}"],
        None,
    ),
    ("gitlab-pat", &["glpat-{u:20}"], None),
    ("gitlab-runner-token", &["glrt-{u:20}"], None),
    ("gitlab-deploy-token", &["gldt-{u:24}"], None),
    (
        "gitlab-token",
        &[
            "glptt-{h:40}",
            "gloas-{u:64}",
            "glcbt-{h:2}_{u:20}",
            "glft-{u:20}",
            "glagent-{u:50}",
            "glsoat-{u:20}",
        ],
        None,
    ),
    ("circleci-pat", &["CCIPAT_{A:22}_{h:40}"], None),
    ("sonarqube-token", &["sqp_{h:40}", "squ_{h:40}"], None),
    ("harness-token", &["pat.{u:22}.{h:24}.{A:20}"], None),
    ("clojars-token", &["CLOJARS_{a:60}"], None),
    ("readme-api-key", &["rdme_{a:70}"], None),
    ("infracost-api-key", &["ico-{A:32}"], None),
    ("scalingo-token", &["tk-us-{u:48}"], None),
    ("render-api-key", &["rnd_{A:32}"], None),
    ("neon-api-key", &["napi_{a:64}"], None),
    ("contentful-token", &["CFPAT-{u:43}"], None),
    ("typeform-token", &["tfp_{u:59}"], None),
    ("frameio-token", &["fio-u-{u:64}"], None),
    ("adobe-client-secret", &["p8e-{A:32}"], None),
    ("buildkite-token", &["bkua_{h:40}"], None),
    ("atlassian-api-token", &["ATATT3{u:180}"], None),
    ("linear-api-key", &["lin_api_{A:40}"], None),
    ("notion-token", &["secret_{A:43}", "ntn_{d:11}{A:35}"], None),
    ("postman-api-key", &["PMAK-{h:24}-{h:34}"], None),
    ("airtable-pat", &["pat{A:14}.{h:64}"], None),
    ("figma-pat", &["figd_{u:40}"], None),
    (
        "stripe-secret-key",
        &["sk_live_{A:24}", "sk_live_{A:99}"],
        None,
    ),
    (
        "stripe-test-secret-key",
        &["sk_test_{A:24}", "sk_test_{A:99}"],
        None,
    ),
    (
        "stripe-restricted-key",
        &["rk_live_{A:24}", "rk_live_{A:99}"],
        None,
    ),
    ("stripe-test-restricted-key", &["rk_test_{A:24}"], None),
    ("stripe-webhook-secret", &["whsec_{A:32}"], None),
    (
        "square-access-token",
        &["EAAA{u:60}", "sq0atp-{u:22}"],
        None,
    ),
    ("square-oauth-secret", &["sq0csp-{u:43}"], None),
    (
        "braintree-access-token",
        &["access_token$production${a:16}${h:32}"],
        None,
    ),
    (
        "paypal-client-secret",
        &["E{u:79}"],
        Some("PAYPAL_CLIENT_SECRET"),
    ),
    (
        "shopify-access-token",
        &["shpat_{h:32}", "shpca_{h:32}"],
        None,
    ),
    ("shopify-shared-secret", &["shpss_{h:32}"], None),
    ("easypost-api-key", &["EZAK{A:54}", "EZTK{A:54}"], None),
    (
        "flutterwave-secret-key",
        &["FLWSECK-{h:32}-X", "FLWSECK_TEST-{h:32}-X"],
        None,
    ),
    ("shippo-token", &["shippo_live_{h:40}"], None),
    ("duffel-token", &["duffel_live_{u:43}"], None),
    (
        "plaid-access-token",
        &["access-production-{uuid}", "access-sandbox-{uuid}"],
        None,
    ),
    (
        "openai-api-key",
        &[
            "sk-proj-{u:74}T3BlbkFJ{u:74}",
            "sk-{A:20}T3BlbkFJ{A:20}",
            "sk-svcacct-{u:60}T3BlbkFJ{u:60}",
        ],
        None,
    ),
    ("anthropic-api-key", &["sk-ant-api03-{u:93}AA"], None),
    ("anthropic-admin-key", &["sk-ant-admin01-{u:93}AA"], None),
    ("groq-api-key", &["gsk_{A:52}"], None),
    ("huggingface-token", &["hf_{L:34}", "api_org_{L:34}"], None),
    ("replicate-api-token", &["r8_{A:37}"], None),
    ("perplexity-api-key", &["pplx-{A:48}"], None),
    ("xai-api-key", &["xai-{A:80}"], None),
    ("mistral-api-key", &["{A:32}"], Some("MISTRAL_API_KEY")),
    ("cohere-api-key", &["{A:40}"], Some("COHERE_API_KEY")),
    ("openrouter-api-key", &["sk-or-v1-{h:64}"], None),
    (
        "langsmith-api-key",
        &["lsv2_pt_{h:32}_{h:10}", "lsv2_sk_{h:32}_{h:10}"],
        None,
    ),
    ("pinecone-api-key", &["pcsk_{A:6}_{A:60}"], None),
    ("tavily-api-key", &["tvly-dev-{A:32}", "tvly-{A:32}"], None),
    ("e2b-api-key", &["e2b_{h:40}"], None),
    ("slack-bot-token", &["xoxb-{d:12}-{d:13}-{A:24}"], None),
    (
        "slack-user-token",
        &["xoxp-{d:12}-{d:12}-{d:13}-{h:32}"],
        None,
    ),
    ("slack-app-token", &["xapp-1-{U:11}-{d:13}-{h:64}"], None),
    (
        "slack-config-token",
        &["xoxe.xoxp-1-{A:164}", "xoxe-1-{A:146}"],
        None,
    ),
    (
        "slack-legacy-token",
        &["xoxa-2-{A:40}", "xoxs-{d:10}-{d:11}-{d:12}-{h:64}"],
        None,
    ),
    (
        "slack-webhook",
        &["https://hooks.slack.com/services/T{U:10}/B{U:10}/{A:24}"],
        None,
    ),
    (
        "discord-bot-token",
        &["M{A:25}.{u:6}.{u:38}", "N{A:23}.{u:6}.{u:27}"],
        Some("DISCORD_BOT_TOKEN"),
    ),
    (
        "discord-webhook",
        &["https://discord.com/api/webhooks/{d:19}/{u:68}"],
        None,
    ),
    ("telegram-bot-token", &["{d:10}:AA{u:33}"], None),
    (
        "teams-webhook",
        &[
            "https://contoso.webhook.office.com/webhookb2/{uuid}@{uuid}/IncomingWebhook/{h:32}/{uuid}",
        ],
        None,
    ),
    ("sendgrid-api-key", &["SG.{u:22}.{u:43}"], None),
    ("mailgun-api-key", &["key-{h:32}"], None),
    ("mailchimp-api-key", &["{h:32}-us{d:2}"], None),
    (
        "postmark-server-token",
        &["{uuid}"],
        Some("POSTMARK_SERVER_TOKEN"),
    ),
    ("brevo-api-key", &["xkeysib-{h:64}-{A:16}"], None),
    ("npm-access-token", &["npm_{A:30}{crc}"], None),
    ("npmrc-auth-token", &["@npmrc"], None),
    ("pypi-token", &["pypi-AgEIcHlwaS5vcmc{u:70}"], None),
    (
        "pypi-test-token",
        &["pypi-AgENdGVzdC5weXBpLm9yZw{u:70}"],
        None,
    ),
    ("rubygems-api-key", &["rubygems_{h:48}"], None),
    ("crates-io-token", &["cio{A:32}"], None),
    ("nuget-api-key", &["oy2{a:43}"], None),
    ("dockerhub-pat", &["dckr_pat_{u:27}"], None),
    ("docker-config-auth", &["@docker"], None),
    (
        "jfrog-api-key",
        &["AKCp{A:69}", "cmVmdGtuOjAxOj{A:50}"],
        None,
    ),
    ("netrc-password", &["@netrc"], None),
    (
        "postgres-url",
        &[
            "postgres://app:{P:20}@db.internal:5432/app",
            "postgresql+psycopg2://svc:{A:24}@10.0.0.5/prod",
            "postgres://app:{A:20}@pg-host-01.examplecorp.net:5432/app",
            "postgresql://app:{A:20}@/app?host=/var/run/postgresql",
        ],
        None,
    ),
    (
        "mysql-url",
        &["mysql://deploy:{P:20}@mysql.internal:3306/shop"],
        None,
    ),
    (
        "mysql-dsn",
        &["deploy:{A:20}@tcp(mysql-host.internal:3306)/shop?parseTime=true"],
        None,
    ),
    (
        "mongodb-url",
        &["mongodb+srv://app:{A:20}@cluster0.ab12c.mongodb.net/prod"],
        None,
    ),
    (
        "redis-url",
        &[
            "redis://default:{A:24}@redis.internal:6379/0",
            "rediss://:{A:32}@cache.internal:6380",
        ],
        None,
    ),
    (
        "url-password",
        &[
            "https://deploy:{A:20}@git.internal.corp/repo.git",
            "amqp://worker:{P:18}@mq.internal:5672/",
            "@shell:https://ci-bot:{A:20}@build-host.corp/artifacts/app.tgz",
        ],
        None,
    ),
    ("private-key-rsa", &["@pem:RSA PRIVATE KEY"], None),
    ("private-key-ec", &["@pem:EC PRIVATE KEY"], None),
    ("private-key-dsa", &["@pem:DSA PRIVATE KEY"], None),
    ("private-key-openssh", &["@pem:OPENSSH PRIVATE KEY"], None),
    ("private-key-pkcs8", &["@pem:PRIVATE KEY"], None),
    (
        "private-key-pkcs8-encrypted",
        &["@pem:ENCRYPTED PRIVATE KEY"],
        None,
    ),
    ("private-key-pgp", &["@pem:PGP PRIVATE KEY BLOCK"], None),
    ("private-key-putty", &["@putty"], None),
    ("jwt", &["@jwt"], None),
    ("twilio-api-key", &["SK{h:32}"], None),
    (
        "twilio-auth-token",
        &["{h:32}", "@env_list:{h:32}"],
        Some("TWILIO_AUTH_TOKEN"),
    ),
    ("twilio-account-sid", &["AC{h:32}"], None),
    ("sentry-auth-token", &["sntryu_{h:64}"], None),
    ("datadog-api-key", &["{h:32}"], Some("DD_API_KEY")),
    ("newrelic-user-api-key", &["NRAK-{U:27}"], None),
    ("newrelic-license-key", &["{h:36}NRAL"], None),
    ("grafana-cloud-token", &["glc_{b:80}"], None),
    (
        "grafana-service-account-token",
        &["glsa_{A:32}_{h:8}"],
        None,
    ),
    ("mapbox-secret-token", &["sk.eyJ{u:60}.{u:22}"], None),
    (
        "planetscale-token",
        &["pscale_tkn_{u:43}", "pscale_pw_{u:43}"],
        None,
    ),
    ("prefect-api-key", &["pnu_{A:36}"], None),
    ("dynatrace-token", &["dt0c01.{U:24}.{U:64}"], None),
    ("newrelic-insert-key", &["NRII-{u:32}"], None),
    ("grafana-api-key", &["eyJrIjoi{b:72}"], None),
    ("posthog-personal-api-key", &["phx_{A:43}"], None),
    ("launchdarkly-key", &["sdk-{uuid}", "api-{uuid}"], None),
    ("wandb-api-key", &["{h:40}"], Some("WANDB_API_KEY")),
    ("algolia-admin-key", &["{h:32}"], Some("ALGOLIA_ADMIN_KEY")),
    (
        "generic-secret-assignment",
        &["{P:16}", "{P:24}", "{A:32}"],
        Some("DB_PASSWORD"),
    ),
    ("generic-xml-secret", &["@xml"], None),
    ("authorization-header", &["@header"], None),
    ("cli-secret-flag", &["@flag"], None),
    ("curl-user-password", &["@curl"], None),
    // widened inventory (issue 18); last, so the samples above keep their
    // random stream
    (
        "google-oauth-access-token",
        &["ya29.{u:40}", "ya29.a0{u:120}"],
        None,
    ),
    ("google-oauth-refresh-token", &["1//0{u:100}"], None),
    (
        "firebase-fcm-server-key",
        &["AAAA{u:7}:APA91b{u:134}"],
        None,
    ),
    ("dropbox-token", &["sl.{u:138}", "sl.u.{u:140}"], None),
    (
        "facebook-access-token",
        &["EAAB{A:120}", "EAAG{A:180}"],
        None,
    ),
    (
        "twitter-bearer-token",
        &["AAAAAAAAAAAAAAAAAAAAAA{A:20}%2B{A:58}"],
        None,
    ),
    (
        "settlemint-token",
        &["sm_aat_{A:16}", "sm_pat_{A:16}", "sm_sat_{A:16}"],
        None,
    ),
    ("defined-networking-token", &["dnkey-{u:26}-{u:52}"], None),
    ("clickhouse-cloud-key", &["4b1d{A:38}"], None),
    ("maxmind-license-key", &["{A:6}_{A:29}_mmk"], None),
    ("octopus-deploy-api-key", &["API-{U:26}"], None),
    ("yandex-api-key", &["AQVN{u:36}"], None),
    ("yandex-iam-token", &["t1.{u:60}.{u:86}"], None),
    (
        "sidekiq-secret",
        &["{h:8}:{h:8}"],
        Some("BUNDLE_ENTERPRISE__CONTRIBSYS__COM"),
    ),
    (
        "hubspot-private-app-token",
        &["pat-na1-{uuid}", "pat-eu1-{uuid}"],
        None,
    ),
    (
        "sourcegraph-token",
        &["sgp_{h:16}_{h:40}", "sgp_local_{h:40}", "sgp_{h:40}"],
        None,
    ),
    ("okta-api-token", &["00{u:40}"], Some("OKTA_API_TOKEN")),
    ("fastly-api-token", &["{u:32}"], Some("FASTLY_API_TOKEN")),
    ("snyk-token", &["{uuid}"], Some("SNYK_TOKEN")),
    (
        "asana-pat",
        &["2/{d:16}/{d:16}:{h:32}", "1/{d:16}:{h:32}"],
        Some("ASANA_ACCESS_TOKEN"),
    ),
    (
        "lob-api-key",
        &["live_{h:35}", "test_{h:35}"],
        Some("LOB_API_KEY"),
    ),
    (
        "gocardless-token",
        &["live_{u:40}", "sandbox_{u:40}"],
        Some("GOCARDLESS_ACCESS_TOKEN"),
    ),
    ("authress-key", &["sc_{a:12}.{a:5}.acc_{a:20}.{u:64}"], None),
    ("bitbucket-app-password", &["ATBB{A:32}"], None),
    ("nvidia-api-key", &["nvapi-{u:64}"], None),
    ("elevenlabs-api-key", &["sk_{h:48}"], None),
    ("firecrawl-api-key", &["fc-{h:32}"], None),
    ("langfuse-secret-key", &["sk-lf-{uuid}"], None),
    ("salesforce-access-token", &["00D{A:12}!{A:96}"], None),
    ("cisco-meraki-api-key", &["{h:40}"], Some("MERAKI_API_KEY")),
    (
        "intercom-access-token",
        &["dG9rOj{A:53}="],
        Some("INTERCOM_ACCESS_TOKEN"),
    ),
    ("zendesk-api-token", &["{A:40}"], Some("ZENDESK_API_TOKEN")),
    (
        "aws-bedrock-api-key",
        &["ABSK{b:130}", "ABSK{b:200}=="],
        None,
    ),
    (
        "gitlab-runner-registration-token",
        &["GR1348941{u:20}"],
        None,
    ),
    ("gitlab-session-cookie", &["@gitlab_session"], None),
    (
        "intra42-client-secret",
        &["s-s4t2ud-{h:64}", "s-s4t2af-{h:64}"],
        None,
    ),
    ("nuget-config-password", &["@nuget"], None),
    ("travisci-token", &["{A:22}"], Some("TRAVIS_API_TOKEN")),
    (
        "twitch-api-token",
        &["{a:30}"],
        Some("TWITCH_CLIENT_SECRET"),
    ),
    ("mattermost-token", &["{a:26}"], Some("MATTERMOST_TOKEN")),
    ("rapidapi-key", &["{u:50}"], Some("RAPIDAPI_KEY")),
    ("sumologic-access-key", &["{A:64}"], Some("SUMO_ACCESS_KEY")),
    (
        "squarespace-token",
        &["{uuid}"],
        Some("SQUARESPACE_API_KEY"),
    ),
    ("sendbird-token", &["{h:40}"], Some("SENDBIRD_API_TOKEN")),
    ("droneci-token", &["{A:32}"], Some("DRONE_TOKEN")),
    ("codecov-token", &["{uuid}"], Some("CODECOV_TOKEN")),
    (
        "confluent-secret",
        &["{A:64}"],
        Some("CONFLUENT_API_SECRET"),
    ),
    ("coinbase-secret", &["{u:64}"], Some("COINBASE_API_SECRET")),
    ("kraken-secret", &["{b:86}=="], Some("KRAKEN_PRIVATE_KEY")),
    ("kucoin-secret", &["{uuid}"], Some("KUCOIN_API_SECRET")),
    ("gitter-token", &["{a:40}"], Some("GITTER_TOKEN")),
    ("finnhub-key", &["{a:20}"], Some("FINNHUB_API_KEY")),
    ("etsy-key", &["{a:24}"], Some("ETSY_API_KEY")),
    ("nytimes-key", &["{u:32}"], Some("NYTIMES_API_KEY")),
    ("messagebird-key", &["{A:25}"], Some("MESSAGEBIRD_API_KEY")),
    ("adafruit-key", &["aio_{A:28}"], Some("ADAFRUIT_IO_KEY")),
    (
        "discord-client-secret",
        &["{u:32}"],
        Some("DISCORD_CLIENT_SECRET"),
    ),
    (
        "linear-client-secret",
        &["{h:32}"],
        Some("LINEAR_CLIENT_SECRET"),
    ),
    (
        "alibaba-secret-key",
        &["{A:30}"],
        Some("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    ),
    ("beamer-token", &["b_{u:44}"], Some("BEAMER_API_KEY")),
    (
        "freshbooks-token",
        &["{a:64}"],
        Some("FRESHBOOKS_ACCESS_TOKEN"),
    ),
    ("flickr-key", &["{h:32}"], Some("FLICKR_API_SECRET")),
    ("plaid-secret", &["{a:30}"], Some("PLAID_SECRET")),
    (
        "mailgun-signing-key",
        &["{h:32}-{h:8}-{h:8}"],
        Some("MAILGUN_WEBHOOK_SIGNING_KEY"),
    ),
    (
        "looker-client-secret",
        &["{A:24}"],
        Some("LOOKER_CLIENT_SECRET"),
    ),
    (
        "linkedin-client-secret",
        &["{A:16}"],
        Some("LINKEDIN_CLIENT_SECRET"),
    ),
    (
        "twitter-api-secret",
        &["{A:50}"],
        Some("TWITTER_API_SECRET"),
    ),
    (
        "bitbucket-client-secret",
        &["{u:64}"],
        Some("BITBUCKET_CLIENT_SECRET"),
    ),
    (
        "asana-client-secret",
        &["{a:32}"],
        Some("ASANA_CLIENT_SECRET"),
    ),
    (
        "facebook-app-secret",
        &["{h:32}"],
        Some("FACEBOOK_APP_SECRET"),
    ),
    ("finicity-secret", &["{h:32}"], Some("FINICITY_APP_KEY")),
    ("hubspot-api-key", &["{uuid}"], Some("HUBSPOT_API_KEY")),
    ("privateai-key", &["{a:32}"], Some("PRIVATE_AI_API_KEY")),
];

const NEUTRAL_VARS: &[&str] = &["API_TOKEN", "UPSTREAM", "SERVICE_KEY", "value"];

fn pem_body(rng: &mut Rng, lines: usize) -> Vec<String> {
    (0..lines).map(|_| rng.pick(B64, 64)).collect()
}

fn pem(rng: &mut Rng, label: &str) -> String {
    let mut s = format!("-----BEGIN {label}-----\n");
    if label.starts_with("PGP") {
        s.push_str("Version: GnuPG v2\n\n");
    }
    for l in pem_body(rng, 12) {
        s.push_str(&l);
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn jwt(rng: &mut Rng) -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = format!(
        r#"{{"sub":"svc-{}","role":"service_role","iat":17{}}}"#,
        rng.pick(DIGITS, 6),
        rng.pick(DIGITS, 8)
    );
    format!(
        "{header}.{}.{}",
        b64url(payload.as_bytes()),
        rng.pick(B64URL, 43)
    )
}

fn age(rng: &mut Rng) -> String {
    let data: Vec<u8> = (0..52).map(|_| rng.below(32) as u8).collect();
    bech32_encode("AGE-SECRET-KEY-", &data)
}

/// Value-style contexts: the same secret as source code, .env, JSON, YAML,
/// TOML and an MCP config.
fn contexts(var: &str, secret: &str) -> Vec<(String, String)> {
    let env_var = var.to_ascii_uppercase();
    let py_var = var.to_ascii_lowercase();
    let json_secret = serde_json::to_string(secret).unwrap_or_default();
    let mcp = serde_json::json!({
        "mcpServers": { "svc": { "command": "npx", "args": ["-y", "@acme/svc-mcp"], "env": { env_var.clone(): secret } } }
    });
    vec![
        (
            "src/client.py".into(),
            format!(
                "import acme\n\nclient = acme.Client(\n    {py_var}=\"{secret}\",\n    timeout=30,\n)\n"
            ),
        ),
        (
            ".env".into(),
            format!("# service settings\nLOG_LEVEL=info\n{env_var}={secret}\n"),
        ),
        (
            "config/settings.json".into(),
            format!(
                "{{\n  \"service\": {{\n    \"name\": \"svc\",\n    \"{var}\": {json_secret}\n  }}\n}}\n"
            ),
        ),
        (
            "deploy/values.yaml".into(),
            format!("service:\n  name: svc\n  {var}: {json_secret}\n"),
        ),
        (
            "config.toml".into(),
            format!("[service]\nname = \"svc\"\n{var} = {json_secret}\n"),
        ),
        (
            ".cursor/mcp.json".into(),
            serde_json::to_string_pretty(&mcp).unwrap_or_default(),
        ),
    ]
}

fn multiline_contexts(secret: &str) -> Vec<(String, String)> {
    let json_secret = serde_json::to_string(secret).unwrap_or_default();
    let indented: String = secret.lines().map(|l| format!("    {l}\n")).collect();
    vec![
        ("keys/deploy_key".into(), secret.to_owned()),
        (
            "config/tls.json".into(),
            format!("{{\n  \"tls\": {{ \"key\": {json_secret} }}\n}}\n"),
        ),
        (
            "deploy/tls.yaml".into(),
            format!("tls:\n  key: |\n{indented}"),
        ),
        (
            "src/keys.py".into(),
            format!("KEY = \"\"\"{secret}\"\"\"\n"),
        ),
    ]
}

/// Every true sample.
pub(crate) fn positives(per_rule: usize, rng: &mut Rng) -> Vec<Sample> {
    let mut out = Vec::new();
    for (rule, templates, var) in TEMPLATES {
        for n in 0..per_rule {
            let t = templates[n % templates.len()];
            let var = var.unwrap_or(NEUTRAL_VARS[n % NEUTRAL_VARS.len()]);
            let push = |out: &mut Vec<Sample>, files: Vec<(String, String)>| {
                for (file, content) in files {
                    out.push(Sample {
                        file,
                        content,
                        expect: Some(rule),
                    });
                }
            };
            match t {
                "@gcp" => {
                    let key = pem(rng, "PRIVATE KEY");
                    let doc = serde_json::json!({
                        "type": "service_account", "project_id": "acme-prod",
                        "private_key_id": rng.pick(HEX, 40), "private_key": key,
                        "client_email": "svc@acme-prod.iam.gserviceaccount.com"
                    });
                    push(
                        &mut out,
                        vec![(
                            "acme-prod-sa.json".into(),
                            serde_json::to_string_pretty(&doc).unwrap_or_default(),
                        )],
                    );
                }
                "@aws_tf" => {
                    let key = expand("{b:40}", rng);
                    push(
                        &mut out,
                        vec![
                            (
                                "infra/main.tf".into(),
                                format!(
                                    "provider \"aws\" {{\n  region     = \"eu-west-1\"\n  secret_key = \"{key}\"\n}}\n"
                                ),
                            ),
                            (
                                "infra/variables.tf".into(),
                                format!(
                                    "variable \"aws_secret_access_key\" {{\n  type    = string\n  default = \"{key}\"\n}}\n"
                                ),
                            ),
                        ],
                    );
                }
                "@nuget" => {
                    let pw = expand("{P:20}", rng);
                    push(
                        &mut out,
                        vec![(
                            "NuGet.Config".into(),
                            format!(
                                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <packageSourceCredentials>\n    <internal>\n      <add key=\"Username\" value=\"ci\" />\n      <add key=\"ClearTextPassword\" value=\"{pw}\" />\n    </internal>\n  </packageSourceCredentials>\n</configuration>\n"
                            ),
                        )],
                    );
                }
                "@gitlab_session" => {
                    let cookie = expand("{a:32}", rng);
                    push(
                        &mut out,
                        vec![
                            (
                                "scripts/export.sh".into(),
                                format!(
                                    "curl -H 'Cookie: _gitlab_session={cookie}' https://gitlab.acme-corp.net/api/v4/projects\n"
                                ),
                            ),
                            (
                                "tests/fixtures/request.http".into(),
                                format!(
                                    "GET /dashboard HTTP/1.1\nHost: gitlab.acme-corp.net\nCookie: _gitlab_session={cookie}; event_filter=all\n"
                                ),
                            ),
                        ],
                    );
                }
                t if t.starts_with("@env_list:") => {
                    let value = expand(&t[10..], rng);
                    let name = var.to_ascii_uppercase();
                    let ecs = serde_json::json!({ "containerDefinitions": [{ "name": "app", "environment": [
                        { "name": "LOG_LEVEL", "value": "info" }, { "name": name.clone(), "value": value.clone() } ] }] });
                    push(
                        &mut out,
                        vec![
                            (
                                "k8s/deploy.yaml".into(),
                                format!(
                                    "spec:\n  containers:\n    - name: app\n      env:\n        - name: LOG_LEVEL\n          value: info\n        - name: {name}\n          value: {value}\n"
                                ),
                            ),
                            (
                                "ecs/task.json".into(),
                                serde_json::to_string_pretty(&ecs).unwrap_or_default(),
                            ),
                        ],
                    );
                }
                t if t.starts_with("@shell:") => {
                    let url = expand(&t[7..], rng);
                    push(
                        &mut out,
                        vec![
                            (
                                "scripts/fetch.sh".into(),
                                format!("#!/bin/sh\nset -eu\ncurl -fsS \"{url}\" -o app.tgz\n"),
                            ),
                            (
                                "Dockerfile".into(),
                                format!("FROM alpine\nRUN wget -q {url}\n"),
                            ),
                        ],
                    );
                }
                "@age" => {
                    let k = age(rng);
                    push(
                        &mut out,
                        vec![
                            (
                                "keys.txt".into(),
                                format!(
                                    "# created: 2026-01-01T00:00:00Z\n# public key: age1{}\n{k}\n",
                                    rng.pick(LOWER_ALNUM, 58)
                                ),
                            ),
                            (".env".into(), format!("SOPS_AGE_KEY={k}\n")),
                        ],
                    );
                }
                "@npmrc" => {
                    let uuid = expand("{uuid}", rng);
                    push(
                        &mut out,
                        vec![(
                            ".npmrc".into(),
                            format!(
                                "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={uuid}\n"
                            ),
                        )],
                    );
                }
                "@docker" => {
                    let auth = base64::engine::general_purpose::STANDARD
                        .encode(format!("ci-bot:{}", rng.pick(ALNUM, 24)));
                    let doc = serde_json::json!({ "auths": { "https://index.docker.io/v1/": { "auth": auth } } });
                    push(
                        &mut out,
                        vec![(
                            ".docker/config.json".into(),
                            serde_json::to_string_pretty(&doc).unwrap_or_default(),
                        )],
                    );
                }
                "@netrc" => {
                    let pw = rng.pick(ALNUM, 20);
                    push(
                        &mut out,
                        vec![(
                            ".netrc".into(),
                            format!("machine git.internal.corp login bob password {pw}\n"),
                        )],
                    );
                }
                "@jwt" => {
                    let tok = jwt(rng);
                    push(&mut out, contexts(var, &tok));
                }
                "@putty" => {
                    let mut s = String::from(
                        "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n",
                    );
                    s.push_str(&format!(
                        "{}\n{}\nPrivate-Lines: 3\n",
                        rng.pick(B64, 64),
                        rng.pick(B64, 40)
                    ));
                    for l in pem_body(rng, 3) {
                        s.push_str(&l);
                        s.push('\n');
                    }
                    s.push_str(&format!("Private-MAC: {}\n", rng.pick(HEX, 40)));
                    push(&mut out, vec![("deploy.ppk".into(), s)]);
                }
                "@xml" => {
                    let pw = expand("{P:20}", rng);
                    push(
                        &mut out,
                        vec![
                            (
                                ".m2/settings.xml".into(),
                                format!(
                                    "<settings>\n  <servers>\n    <server>\n      <id>internal</id>\n      <username>deploy</username>\n      <password>{pw}</password>\n    </server>\n  </servers>\n</settings>\n"
                                ),
                            ),
                            (
                                "App.config".into(),
                                format!(
                                    "<configuration>\n  <appSettings>\n    <ApiToken>{pw}</ApiToken>\n  </appSettings>\n</configuration>\n"
                                ),
                            ),
                        ],
                    );
                }
                "@header" => {
                    let tok = rng.pick(B64URL, 40);
                    let mcp = serde_json::json!({ "mcpServers": { "remote": { "url": "https://mcp.internal.corp/mcp", "headers": { "Authorization": format!("Bearer {tok}") } } } });
                    push(
                        &mut out,
                        vec![
                            (
                                ".vscode/mcp.json".into(),
                                serde_json::to_string_pretty(&mcp).unwrap_or_default(),
                            ),
                            (
                                "scripts/call.sh".into(),
                                format!(
                                    "curl -s https://api.internal.corp/v1/items -H \"Authorization: Bearer {tok}\"\n"
                                ),
                            ),
                            (
                                "src/http.py".into(),
                                format!("HEADERS = {{\"Authorization\": \"Token {tok}\"}}\n"),
                            ),
                        ],
                    );
                }
                "@flag" => {
                    let tok = rng.pick(ALNUM, 32);
                    let mcp = serde_json::json!({ "mcpServers": { "search": { "command": "search-mcp", "args": ["--api-key", tok.clone()] } } });
                    let mcp2 = serde_json::json!({ "mcpServers": { "search": { "command": "search-mcp", "args": [format!("--token={tok}")] } } });
                    push(
                        &mut out,
                        vec![
                            (
                                "claude_desktop_config.json".into(),
                                serde_json::to_string_pretty(&mcp).unwrap_or_default(),
                            ),
                            (
                                ".mcp.json".into(),
                                serde_json::to_string_pretty(&mcp2).unwrap_or_default(),
                            ),
                            (
                                "scripts/run.sh".into(),
                                format!("#!/bin/sh\nexec search-cli --api-key {tok} \"$@\"\n"),
                            ),
                        ],
                    );
                }
                "@curl" => {
                    let pw = expand("{A:18}", rng);
                    let pw2 = expand("{A:6}*{A:10}", rng);
                    push(
                        &mut out,
                        vec![
                            (
                                "scripts/upload.sh".into(),
                                format!(
                                    "#!/bin/sh\ncurl -fsS -u deploy:{pw} -T dist.tgz https://artifacts.acme-corp.net/upload\n"
                                ),
                            ),
                            (
                                ".github/workflows/release.yml".into(),
                                format!(
                                    "jobs:\n  up:\n    steps:\n      - run: |\n          curl -X POST \\\n            --user ci:{pw2} \\\n            https://ci.globex.io/hooks\n"
                                ),
                            ),
                        ],
                    );
                }
                t if t.starts_with("@pem:") => {
                    let key = pem(rng, &t[5..]);
                    push(&mut out, multiline_contexts(&key));
                }
                t => {
                    let secret = expand(t, rng);
                    push(&mut out, contexts(var, &secret));
                }
            }
        }
    }
    out
}

/// Negative examples per rule: one character short or long, a character
/// outside the alphabet, a wrong type segment, no word boundary.
pub(crate) const NEAR_MISSES: &[(&str, &[&str])] = &[
    (
        "doppler-token",
        &["dp.pt.{A:39}", "dp.xx.{A:43}", "dp.st.d.{A:43}"],
    ),
    (
        "age-secret-key",
        &["AGE-SECRET-KEY-1{8:57}", "AGE-SECRET-KEY-1{8:30}B{8:27}"],
    ),
    (
        "twilio-account-sid",
        &["AC{h:31}", "xAC{h:32}", "AC{h:30}XY"],
    ),
    (
        "mysql-dsn",
        &["app@tcp(db:3306)/shop", "mailto:ops{a:6}@corp.net"],
    ),
    ("azure-devops-pat", &["{A:76}AZDO{A:3}"]),
    ("azure-shared-access-key", &["SharedAccessKey={b:20}="]),
    ("openshift-token", &["sha256~{u:40}"]),
    ("gitlab-token", &["glptt-{h:39}", "glft-{u:12}"]),
    ("circleci-pat", &["CCIPAT_{A:22}_{h:39}"]),
    ("sonarqube-token", &["sqx_{h:40}", "sqp_{h:39}"]),
    ("harness-token", &["pat.{u:22}.{h:23}.{A:20}"]),
    ("clojars-token", &["CLOJARS_{a:59}"]),
    ("readme-api-key", &["rdme_{a:69}"]),
    ("infracost-api-key", &["ico-{A:31}"]),
    ("scalingo-token", &["tk-us-{u:40}"]),
    ("render-api-key", &["rnd_{A:31}"]),
    ("neon-api-key", &["napi_{a:63}"]),
    ("contentful-token", &["CFPAT-{u:40}"]),
    ("typeform-token", &["tfp_{A:50}"]),
    ("frameio-token", &["fio-u-{A:60}"]),
    ("adobe-client-secret", &["p8e-{A:31}"]),
    (
        "onepassword-secret-key",
        &["A3-{U:6}-{U:10}-{U:5}-{U:5}-{U:5}"],
    ),
    ("easypost-api-key", &["EZAK{A:50}"]),
    (
        "flutterwave-secret-key",
        &["FLWSECK-{h:32}", "FLWPUBK-{h:32}-X"],
    ),
    ("shippo-token", &["shippo_live_{h:39}"]),
    ("duffel-token", &["duffel_live_{A:40}"]),
    ("plaid-access-token", &["access-staging-{uuid}"]),
    ("slack-config-token", &["xoxe.xoxp-1-{A:100}"]),
    ("slack-legacy-token", &["xoxa-{A:5}"]),
    ("dynatrace-token", &["dt0c01.{U:24}.{U:60}"]),
    ("newrelic-insert-key", &["NRII-{A:20}"]),
    ("grafana-api-key", &["eyJrIjoi{A:30}"]),
    ("posthog-personal-api-key", &["phx_{A:40}", "phc_{A:43}"]),
    ("launchdarkly-key", &["sdk-{h:32}", "mob-{uuid}"]),
    ("jfrog-api-key", &["cmVmdGtuOjAxOj{A:40}"]),
    ("huggingface-token", &["api_org_{A:20}"]),
    // widened inventory (issue 18): too short, wrong type segment, public halves
    ("google-oauth-access-token", &["ya29.{u:12}"]),
    (
        "google-oauth-refresh-token",
        &["1//0{u:30}", "http://1//0{u:80}"],
    ),
    ("firebase-fcm-server-key", &["AAAA{u:7}:APA91b{u:90}"]),
    ("dropbox-token", &["sl.{u:60}"]),
    ("facebook-access-token", &["EAA{A:60}"]),
    ("twitter-bearer-token", &["AAAAAAAAAAAAAAAAAAAAAA{A:30}"]),
    ("settlemint-token", &["sm_xat_{A:16}", "sm_pat_{A:12}"]),
    ("defined-networking-token", &["dnkey-{a:26}-{a:20}"]),
    ("clickhouse-cloud-key", &["4b1d{A:30}"]),
    ("maxmind-license-key", &["{A:6}_{A:29}_mmx"]),
    ("octopus-deploy-api-key", &["API-{U:20}", "API-{a:26}"]),
    ("yandex-api-key", &["AQVN{u:20}"]),
    ("yandex-iam-token", &["t1.{u:20}.{u:40}"]),
    (
        "sidekiq-secret",
        &["BUNDLE_GEMS__CONTRIBSYS__COM={h:8}:{h:6}"],
    ),
    (
        "hubspot-private-app-token",
        &["pat-xx1-{uuid}", "pat-na1-{h:32}"],
    ),
    ("sourcegraph-token", &["sgp_{h:39}", "sgp_{h:16}_{h:30}"]),
    ("okta-api-token", &["SSWS 00{u:30}", "okta_token=01{u:40}"]),
    ("fastly-api-token", &["fastly_token={u:20}"]),
    ("snyk-token", &["snyk_token={h:32}"]),
    ("asana-pat", &["asana_token=3/{d:16}:{h:32}"]),
    (
        "lob-api-key",
        &["lob_api_key=live_pub_{h:31}", "lob_key=test_{h:20}"],
    ),
    ("gocardless-token", &["gocardless_token=live_{u:20}"]),
    ("authress-key", &["sc_{a:12}.{a:5}.bcc_{a:20}.{u:64}"]),
    ("bitbucket-app-password", &["ATBB{A:10}"]),
    ("nvidia-api-key", &["nvapi-{u:30}"]),
    ("elevenlabs-api-key", &["sk_{h:40}", "sk_{A:48}"]),
    ("firecrawl-api-key", &["fc-{h:31}"]),
    ("langfuse-secret-key", &["pk-lf-{uuid}"]),
    ("salesforce-access-token", &["00D{A:12}!{A:20}"]),
    ("cisco-meraki-api-key", &["meraki_key={h:32}"]),
    ("intercom-access-token", &["intercom_token={A:20}"]),
    ("zendesk-api-token", &["zendesk_token={A:20}"]),
    ("aws-bedrock-api-key", &["ABSK{b:60}"]),
    ("gitlab-runner-registration-token", &["GR1348941{u:12}"]),
    ("gitlab-session-cookie", &["_gitlab_session={h:20}"]),
    ("intra42-client-secret", &["s-s4t2xx-{h:64}"]),
    (
        "nuget-config-password",
        &["<add key=\"Username\" value=\"{P:16}\" />"],
    ),
    ("travisci-token", &["TRAVIS_CLIENT_ID={A:22}"]),
    ("twitch-api-token", &["TWITCH_CLIENT_ID={a:30}"]),
    ("mattermost-token", &["MATTERMOST_CLIENT_ID={a:26}"]),
    ("rapidapi-key", &["RAPIDAPI_CLIENT_ID={u:50}"]),
    ("sumologic-access-key", &["SUMO_CLIENT_ID={A:64}"]),
    ("squarespace-token", &["SQUARESPACE_CLIENT_ID={uuid}"]),
    ("sendbird-token", &["SENDBIRD_CLIENT_ID={h:40}"]),
    ("droneci-token", &["DRONE_CLIENT_ID={A:32}"]),
    ("codecov-token", &["CODECOV_CLIENT_ID={uuid}"]),
    ("confluent-secret", &["CONFLUENT_CLIENT_ID={A:64}"]),
    ("coinbase-secret", &["COINBASE_CLIENT_ID={u:64}"]),
    ("kraken-secret", &["KRAKEN_CLIENT_ID={b:86}=="]),
    ("kucoin-secret", &["KUCOIN_CLIENT_ID={uuid}"]),
    ("gitter-token", &["GITTER_CLIENT_ID={a:40}"]),
    ("finnhub-key", &["FINNHUB_CLIENT_ID={a:20}"]),
    ("etsy-key", &["ETSY_CLIENT_ID={a:24}"]),
    ("nytimes-key", &["NYTIMES_CLIENT_ID={u:32}"]),
    ("messagebird-key", &["MESSAGEBIRD_CLIENT_ID={A:25}"]),
    ("adafruit-key", &["ADAFRUIT_CLIENT_ID=aio_{A:28}"]),
    ("discord-client-secret", &["DISCORD_CLIENT_ID={u:32}"]),
    ("linear-client-secret", &["LINEAR_CLIENT_ID={h:32}"]),
    ("alibaba-secret-key", &["ALIBABA_CLIENT_ID={A:30}"]),
    ("beamer-token", &["BEAMER_CLIENT_ID=b_{u:44}"]),
    ("freshbooks-token", &["FRESHBOOKS_CLIENT_ID={a:64}"]),
    ("flickr-key", &["FLICKR_CLIENT_ID={h:32}"]),
    ("plaid-secret", &["PLAID_CLIENT_ID={a:30}"]),
    (
        "mailgun-signing-key",
        &["MAILGUN_CLIENT_ID={h:32}-{h:8}-{h:8}"],
    ),
    ("looker-client-secret", &["LOOKER_CLIENT_ID={A:24}"]),
    ("linkedin-client-secret", &["LINKEDIN_CLIENT_ID={A:16}"]),
    ("twitter-api-secret", &["TWITTER_CLIENT_ID={A:50}"]),
    ("bitbucket-client-secret", &["BITBUCKET_CLIENT_ID={u:64}"]),
    ("asana-client-secret", &["ASANA_CLIENT_ID={a:32}"]),
    ("facebook-app-secret", &["FACEBOOK_CLIENT_ID={h:32}"]),
    ("finicity-secret", &["FINICITY_CLIENT_ID={h:32}"]),
    ("hubspot-api-key", &["HUBSPOT_CLIENT_ID={uuid}"]),
    ("privateai-key", &["PRIVATEAI_CLIENT_ID={a:32}"]),
];

/// Decoys: none of these may produce a finding.
pub(crate) fn decoys(rng: &mut Rng) -> Vec<Sample> {
    let mut d: Vec<(String, String)> = Vec::new();
    let mut add = |f: &str, c: String| d.push((f.to_owned(), c));
    // placeholders and references
    add(
        ".env",
        "OPENAI_API_KEY=changeme\nSTRIPE_SECRET_KEY=<YOUR_KEY>\nGITHUB_TOKEN=${GITHUB_TOKEN}\n"
            .into(),
    );
    add(".env.example", "ANTHROPIC_API_KEY=your_api_key_here\nDB_PASSWORD=xxxxxxxxxxxxxxxx\nAPI_SECRET=****************\n".into());
    add(
        "deploy/values.yaml",
        "apiKey: \"{{ .Values.apiKey }}\"\nclient_secret: '{{ secrets.CLIENT_SECRET }}'\n".into(),
    );
    add(".env", "STRIPE_KEY=airlock://stripe\nDB_PASSWORD=op://prod/db/password\nVAULT_TOKEN=vault:secret/data/app#token\n".into());
    add(
        "src/app.js",
        "const token = process.env.GITHUB_TOKEN;\nconst apiKey = config.get('api_key');\n".into(),
    );
    // curl with a reference, a default password, a prompt for the password
    add(
        "scripts/fetch.sh",
        "curl -u \"$USER:$TOKEN\" https://api.acme-corp.net/\ncurl -u admin:password https://intranet.acme-corp.net/\ncurl -u admin: https://intranet.acme-corp.net/\ncurl -u user:${PASSWORD} https://x.acme-corp.net\n".into(),
    );
    add("src/app.py", "password = get_password()\nsecret_key = settings.SECRET_KEY\ntoken = os.environ[\"TOKEN\"]\n".into());
    add(
        "tests/x.py",
        "client_ssl_key = \".%2Ftests%2Fcerts%2Fkeys%2Fclient.key\"\nclient_ssl_ca = \"..%2Fcerts%2Frsa%2Fca.crt\"\n".into(),
    );
    add("config.yaml", "max_tokens: 4096\ntoken_type: Bearer\npassword_min_length: 12\nsecret_name: prod-db-credentials\n".into());
    // documented example keys
    add(
        "docs/aws.md",
        format!(
            "aws_access_key_id = {}\naws_secret_access_key = {}\n",
            concat!("AKIA", "IOSFODNN7EXAMPLE"),
            concat!("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY")
        ),
    );
    add(
        "docs/stripe.md",
        format!(
            "Use a key like `{}` in tests.\n",
            concat!("sk_live_", "xxxxxxxxxxxxxxxxxxxxxxxx")
        ),
    );
    add(
        "docs/jwt.md",
        format!(
            "Example: {}\n",
            concat!(
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.",
                "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.",
                "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
            )
        ),
    );
    // wrong checksums
    for prefix in ["ghp_", "gho_", "npm_"] {
        let random = rng.pick(ALNUM, 30);
        let good = github_checksum(random.as_bytes());
        let bad: String = good.chars().rev().collect::<String>();
        let bad = if bad == good {
            "000000".to_owned()
        } else {
            bad
        };
        add(
            "src/tokens.rs",
            format!("const T: &str = \"{prefix}{random}{bad}\";\n"),
        );
    }
    // public by design, and human language under secret-looking names
    add(
        ".env",
        format!(
            "STRIPE_PUBLISHABLE_KEY=pk_live_{}\nSTRIPE_KEY=pk_test_{}\nPOSTHOG_API_KEY=phc_{}\n",
            rng.pick(ALNUM, 99),
            rng.pick(ALNUM, 24),
            rng.pick(ALNUM, 43)
        ),
    );
    add(
        "src/checkout.js",
        format!("const stripeKey = \"pk_live_{}\";\n", rng.pick(ALNUM, 34)),
    );
    add(
        "i18n/de.json",
        "{\"apiKey\": \"API-Schlüssel\", \"apiKeyLabel\": \"Geben Sie Ihren API-Schlüssel ein\", \"password\": \"Passwörter\"}\n".into(),
    );
    add(
        "locales/fr.yml",
        "fr:\n  api_key: Clé-d’API\n  secret_token: Jeton-secret-personnalisé\n".into(),
    );
    // near misses of the provider formats: one sample each, under a name
    // that says nothing, so only the provider rule could fire
    for (rule, templates) in NEAR_MISSES {
        for t in *templates {
            add(
                &format!("src/near_{}.py", rule.replace('-', "_")),
                format!("value = \"{}\"\n", expand(t, rng)),
            );
        }
    }
    // UUIDs, digests, commit hashes, lockfile integrity
    add(
        "config.json",
        format!(
            "{{\"request_token\": \"{}\", \"client_secret_id\": \"{}\"}}\n",
            expand("{uuid}", rng),
            expand("{uuid}", rng)
        ),
    );
    add(
        "src/build.rs",
        format!(
            "// fixed in commit {}\nconst SECRET_SHA256: &str = \"{}\";\n",
            rng.pick(HEX, 40),
            rng.pick(HEX, 64)
        ),
    );
    add(
        "package-lock.json",
        format!(
            "{{\"packages\": {{\"node_modules/x\": {{\"integrity\": \"sha512-{}==\"}}}}}}\n",
            rng.pick(B64, 86)
        ),
    );
    add(
        "yarn.lock",
        format!("x@1.0.0:\n  integrity sha512-{}==\n", rng.pick(B64, 86)),
    );
    add(
        "deps.json",
        format!(
            "{{\"token_integrity\": \"sha512-{}==\"}}\n",
            rng.pick(B64, 86)
        ),
    );
    add(
        "Dockerfile",
        format!("FROM alpine@sha256:{}\n", rng.pick(HEX, 64)),
    );
    add(
        ".git-blame-ignore-revs",
        format!("{}\n{}\n", rng.pick(HEX, 40), rng.pick(HEX, 40)),
    );
    // low entropy, repeated, templated
    add(
        "config.ini",
        "api_key = aaaaaaaaaaaaaaaaaaaa\npassword = 1111111111111\n".into(),
    );
    add("docker-compose.yml", "DATABASE_URL: postgres://postgres:postgres@localhost:5432/app\nREDIS_URL: redis://:password@redis:6379\nMONGO: mongodb://user:${MONGO_PASSWORD}@mongo/db\n".into());
    add("README.md", "Clone with `https://user:pass@git.example.com/repo.git` or `git@github.com:org/repo.git`.\n".into());
    add(
        "docs/keys.md",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n".into(),
    );
    add(
        "certs/pub.pem",
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            rng.pick(B64, 64),
            rng.pick(B64, 64)
        ),
    );
    add("src/lib.rs", "let key = KeyPair::generate();\nlet token = tokenizer.next_token()?;\nfn api_key_header() -> &'static str { \"x-api-key\" }\n".into());
    add(
        "src/ids.ts",
        "const SK_PREFIX = 'SKU-';\nconst skip = true;\nconst pattern = /ghp_[A-Za-z0-9]{36}/;\n"
            .into(),
    );
    add("infra/main.tf", "variable \"db_password\" {\n  type      = string\n  sensitive = true\n}\npassword = var.db_password\n".into());
    add(
        ".github/workflows/ci.yml",
        "env:\n  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n  GH_TOKEN: ${{ github.token }}\n".into(),
    );
    add(
        "src/hash.go",
        format!(
            "var commit = \"{}\"\nvar md5sum = \"{}\"\n",
            rng.pick(HEX, 40),
            rng.pick(HEX, 32)
        ),
    );
    // near misses: a prefix inside a longer word, one character short, bad JSON in a JWT shape,
    // a data URI, a UUID under a secret name
    add(
        "src/near.py",
        format!(
            "x = \"my{}{}\"\ny = \"{}{}\"\n",
            "sk_live_",
            rng.pick(ALNUM, 24),
            "glpat-",
            rng.pick(B64URL, 19)
        ),
    );
    add(
        "src/jwtish.js",
        format!(
            "const t = \"eyJ{}.eyJ{}.{}\";\n",
            rng.pick(ALNUM, 20),
            rng.pick(ALNUM, 20),
            rng.pick(B64URL, 30)
        ),
    );
    add(
        "ui/icon.json",
        format!(
            "{{\"icon\": \"data:image/png;base64,iVBORw0KGgo{}\"}}\n",
            rng.pick(B64, 120)
        ),
    );
    add(
        "config.yaml",
        format!("api_key: {}\n", expand("{uuid}", rng)),
    );
    add(
        "src/slack.rs",
        format!("// xoxb-{}-{}\n", rng.pick(DIGITS, 4), rng.pick(ALNUM, 10)),
    );
    add("docs/age.md", "Keys look like `AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ`.\n".into());
    // bare "key" names with values that are not random enough
    add(
        "settings.ini",
        "APP_KEY = iftkeq2y4qj0nbt\nsort_key = created_at_desc\ncache_key = user-profile-v2\n"
            .into(),
    );
    add(
        "i18n/en.json",
        "{\"key\": \"welcome_message\", \"primaryKey\": \"CustomerId\"}\n".into(),
    );
    // names made of words, code, and test vectors from real crates
    add("Cargo.toml", "[features]\nWin32_Security_Credentials = [\"Win32_Security\"]\nauthors = [\"Jane Doe <jane@corp.invalid>\"]\n".into());
    add(
        "tests/auth.json",
        "{\"access_token\": \"m2m-access-token-12345\", \"progressToken\": \"progress-test-1\"}\n"
            .into(),
    );
    add("src/tokens.rs", "pub brace_token: token::Brace,\nlet password = entry.get_password().unwrap();\npub const SEC_E_NO_CREDENTIALS: HRESULT = 0x8009030E_u32 as _;\n".into());
    add(
        "tests/urls.json",
        "{\"input\": \"http://&a:foo(b]c@d:2/\", \"href\": \"ftp://rms:secret123@example.com\"}\n"
            .into(),
    );
    d.into_iter()
        .map(|(file, content)| Sample {
            file,
            content,
            expect: None,
        })
        .collect()
}
