#!/usr/bin/env python3
"""An independent labelled corpus for `airlock scan` (issue 18, item 3).

Written from the token formats that providers document and that public rule
sets (gitleaks' default config, GitHub secret scanning's pattern list) publish,
NOT from airlock's rules.rs: every generator below has its own alphabet and
length, taken from those formats, and nothing here imports or reads airlock's
code. Secrets are random (seeded) and fake; decoys are values that look like
secrets but are not (publishable keys, UUIDs, digests, documented example keys,
placeholders, references, human-language labels).

Usage: gen.py --seed N --out DIR
Writes DIR/<files> and DIR/labels.json:
  {"seed": N, "labels": [{"file", "line", "end", "kind", "label"}]}
where label is "secret" (must be reported), "decoy" (must not be) or "either"
(an identifier some scanners report and some do not: neither counted).
A finding on a line that holds no secret label is a false positive.
"""
import argparse
import base64
import json
import os
import random
import string
import urllib.parse
import zlib

ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase  # GitHub's base62 order
UPPER_NUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

R = random.Random()


def rs(alphabet, n):
    return "".join(R.choice(alphabet) for _ in range(n))


def b62_checksum(entropy):
    """GitHub's token checksum: CRC32 of the random part, base62, 6 chars."""
    n = zlib.crc32(entropy.encode()) & 0xFFFFFFFF
    out = ""
    while n:
        n, d = divmod(n, 62)
        out = B62[d] + out
    return out.rjust(6, "0")


def checksummed(prefix):
    body = rs(ALNUM, 30)
    return prefix + body + b62_checksum(body)


def b64url_json(obj):
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def jwt(payload):
    return b64url_json({"alg": "HS256", "typ": "JWT"}) + "." + b64url_json(payload) + "." + rs(B64URL, 43)


def strong_password(n=None):
    n = n or R.randint(14, 24)
    pool = ALNUM + "!#%^*-_+="
    while True:
        p = rs(pool, n)
        if any(c.isdigit() for c in p) and any(c.isupper() for c in p) and any(c.islower() for c in p):
            return p


def url_password():
    """A password as it must be written in a URL's userinfo (RFC 3986):
    unreserved and sub-delim characters as they are, the rest percent-encoded."""
    return urllib.parse.quote(strong_password(), safe="!*+=-_~")


def host():
    return R.choice(["db", "pg", "mysql", "cache", "mq", "orders-db", "primary"]) + "-" + rs("abcdefghjkmnpqrstuvwxyz", 4) + "." + R.choice(
        ["prod.acme-corp.net", "internal.globex.io", "eu-west-1.rds.amazonaws.com", "c.initech.cloud", "svc.cluster.local"])


# ---------------------------------------------------------------------------
# Secrets: kind -> (generator, variable names it is usually found under).
# Formats as documented by the provider or published in public rule sets.
# ---------------------------------------------------------------------------
def aws_key_id():
    return "AKIA" + rs("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)


SECRETS = {
    "aws-access-key-id": (aws_key_id, ["AWS_ACCESS_KEY_ID", "aws_access_key_id", "accessKeyId"]),
    "aws-secret-access-key": (lambda: rs(B64, 40), ["AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", "secretAccessKey"]),
    "github-pat": (lambda: checksummed("ghp_"), ["GITHUB_TOKEN", "GH_TOKEN", "github_token"]),
    "github-oauth": (lambda: checksummed("gho_"), ["GITHUB_OAUTH_TOKEN", "oauth_token"]),
    "github-app": (lambda: checksummed(R.choice(["ghs_", "ghu_"])), ["GITHUB_APP_TOKEN", "installation_token"]),
    "github-fine-grained": (lambda: "github_pat_" + rs(ALNUM, 22) + "_" + rs(ALNUM, 59), ["GITHUB_PAT", "GH_PAT"]),
    "gitlab-pat": (lambda: "glpat-" + rs(ALNUM + "-_", 20), ["GITLAB_TOKEN", "CI_JOB_PAT"]),
    "gitlab-runner": (lambda: "glrt-" + rs(ALNUM + "-_", 20), ["RUNNER_TOKEN"]),
    "gitlab-deploy": (lambda: "gldt-" + rs(ALNUM + "-_", 20), ["DEPLOY_TOKEN"]),
    "slack-bot": (lambda: "xoxb-" + rs(string.digits, 12) + "-" + rs(string.digits, 13) + "-" + rs(ALNUM, 24), ["SLACK_BOT_TOKEN", "slack_token"]),
    "slack-user": (lambda: "xoxp-" + "-".join(rs(string.digits, 12) for _ in range(3)) + "-" + rs(HEX, 32), ["SLACK_USER_TOKEN"]),
    "slack-app": (lambda: "xapp-1-A" + rs(UPPER_NUM, 10) + "-" + rs(string.digits, 13) + "-" + rs(HEX, 64), ["SLACK_APP_TOKEN"]),
    "slack-webhook": (lambda: "https://hooks.slack.com/services/T" + rs(UPPER_NUM, 8) + "/B" + rs(UPPER_NUM, 10) + "/" + rs(ALNUM, 24), ["SLACK_WEBHOOK_URL", "webhook_url"]),
    "stripe-secret": (lambda: "sk_live_" + rs(ALNUM, R.choice([24, 99])), ["STRIPE_SECRET_KEY", "stripe_api_key"]),
    "stripe-restricted": (lambda: "rk_live_" + rs(ALNUM, R.choice([24, 99])), ["STRIPE_RESTRICTED_KEY"]),
    "stripe-webhook": (lambda: "whsec_" + rs(ALNUM, 32), ["STRIPE_WEBHOOK_SECRET"]),
    "openai-project": (lambda: "sk-proj-" + rs(B64URL, 74) + "T3BlbkFJ" + rs(B64URL, 74), ["OPENAI_API_KEY", "openai_api_key"]),
    "openai-legacy": (lambda: "sk-" + rs(ALNUM, 20) + "T3BlbkFJ" + rs(ALNUM, 20), ["OPENAI_API_KEY"]),
    "anthropic": (lambda: "sk-ant-api03-" + rs(B64URL, 93) + "AA", ["ANTHROPIC_API_KEY", "anthropic_api_key"]),
    "anthropic-admin": (lambda: "sk-ant-admin01-" + rs(B64URL, 93) + "AA", ["ANTHROPIC_ADMIN_KEY"]),
    "azure-ad-client-secret": (lambda: rs(ALNUM, 3) + rs(string.digits, 1) + "Q~" + rs(ALNUM + "_~.-", 34), ["AZURE_CLIENT_SECRET", "client_secret"]),
    "twilio-api-key": (lambda: "SK" + rs(HEX, 32), ["TWILIO_API_KEY"]),
    "twilio-auth-token": (lambda: rs(HEX, 32), ["TWILIO_AUTH_TOKEN"]),
    "sendgrid": (lambda: "SG." + rs(B64URL, 22) + "." + rs(B64URL, 43), ["SENDGRID_API_KEY"]),
    "mailgun": (lambda: "key-" + rs(HEX, 32), ["MAILGUN_API_KEY"]),
    "mailchimp": (lambda: rs(HEX, 32) + "-us" + str(R.randint(10, 21)), ["MAILCHIMP_API_KEY"]),
    "npm": (lambda: checksummed("npm_"), ["NPM_TOKEN"]),
    "pypi": (lambda: "pypi-AgEIcHlwaS5vcmc" + rs(B64URL, R.randint(70, 160)), ["PYPI_TOKEN", "TWINE_PASSWORD"]),
    "dockerhub": (lambda: "dckr_pat_" + rs(B64URL, 27), ["DOCKERHUB_TOKEN"]),
    "shopify": (lambda: R.choice(["shpat_", "shpss_", "shpca_", "shppa_"]) + rs(HEX, 32), ["SHOPIFY_ACCESS_TOKEN"]),
    "vault": (lambda: "hvs." + rs(B64URL, 90), ["VAULT_TOKEN"]),
    "terraform-cloud": (lambda: rs(ALNUM, 14) + ".atlasv1." + rs(ALNUM + "-_", 67), ["TFE_TOKEN", "TF_TOKEN_app_terraform_io"]),
    "digitalocean": (lambda: R.choice(["dop_v1_", "doo_v1_", "dor_v1_"]) + rs(HEX, 64), ["DIGITALOCEAN_TOKEN", "DO_TOKEN"]),
    "databricks": (lambda: "dapi" + rs(HEX, 32), ["DATABRICKS_TOKEN"]),
    "huggingface": (lambda: "hf_" + rs(string.ascii_letters, 34), ["HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN"]),
    "linear": (lambda: "lin_api_" + rs(ALNUM, 40), ["LINEAR_API_KEY"]),
    "notion": (lambda: "ntn_" + rs(string.digits, 11) + rs(ALNUM, 35), ["NOTION_TOKEN"]),
    "atlassian": (lambda: "ATATT3xFfGF0" + rs(B64URL, 174) + "=" + rs(HEX.upper(), 8), ["JIRA_API_TOKEN", "ATLASSIAN_TOKEN"]),
    "discord-webhook": (lambda: "https://discord.com/api/webhooks/" + rs(string.digits, 19) + "/" + rs(B64URL, 68), ["DISCORD_WEBHOOK"]),
    "discord-bot": (lambda: base64.b64encode(rs(string.digits, 18).encode()).decode().rstrip("=") + "." + rs(B64URL, 6) + "." + rs(B64URL, 38), ["DISCORD_BOT_TOKEN"]),
    "telegram-bot": (lambda: rs(string.digits, 10) + ":AA" + rs(B64URL, 33), ["TELEGRAM_BOT_TOKEN"]),
    "square": (lambda: "EAAA" + rs(B64URL, 60), ["SQUARE_ACCESS_TOKEN"]),
    "planetscale": (lambda: R.choice(["pscale_tkn_", "pscale_pw_"]) + rs(B64URL, 43), ["PLANETSCALE_TOKEN", "DATABASE_PASSWORD"]),
    "doppler": (lambda: R.choice(["dp.pt.", "dp.st.prd.", "dp.sa."]) + rs(ALNUM, 43), ["DOPPLER_TOKEN"]),
    "pulumi": (lambda: "pul-" + rs(HEX, 40), ["PULUMI_ACCESS_TOKEN"]),
    "postman": (lambda: "PMAK-" + rs(HEX, 24) + "-" + rs(HEX, 34), ["POSTMAN_API_KEY"]),
    "sentry-user": (lambda: "sntryu_" + rs(HEX, 64), ["SENTRY_AUTH_TOKEN"]),
    "newrelic-user": (lambda: "NRAK-" + rs(UPPER_NUM, 27), ["NEW_RELIC_API_KEY"]),
    "grafana-sa": (lambda: "glsa_" + rs(ALNUM, 32) + "_" + rs(HEX, 8), ["GRAFANA_TOKEN"]),
    "grafana-cloud": (lambda: "glc_" + rs(ALNUM, 32) + "==", ["GRAFANA_CLOUD_TOKEN"]),
    "age": (lambda: "AGE-SECRET-KEY-1" + rs(BECH32, 58).upper(), ["SOPS_AGE_KEY", "AGE_KEY"]),
    "heroku-v2": (lambda: "HRKU-AA" + rs(B64URL, 58), ["HEROKU_API_KEY"]),
    "groq": (lambda: "gsk_" + rs(ALNUM, 52), ["GROQ_API_KEY"]),
    "replicate": (lambda: "r8_" + rs(ALNUM, 37), ["REPLICATE_API_TOKEN"]),
    "perplexity": (lambda: "pplx-" + rs(ALNUM, 48), ["PERPLEXITY_API_KEY"]),
    "openrouter": (lambda: "sk-or-v1-" + rs(HEX, 64), ["OPENROUTER_API_KEY"]),
    "langsmith": (lambda: "lsv2_pt_" + rs(HEX, 32) + "_" + rs(HEX, 10), ["LANGSMITH_API_KEY"]),
    "alibaba": (lambda: "LTAI" + rs(ALNUM, 20), ["ALIBABA_CLOUD_ACCESS_KEY_ID"]),
    "onepassword-sa": (lambda: "ops_eyJ" + rs(B64, 300), ["OP_SERVICE_ACCOUNT_TOKEN"]),
    "easypost": (lambda: "EZAK" + rs(ALNUM, 54), ["EASYPOST_API_KEY"]),
    "duffel": (lambda: "duffel_live_" + rs(B64URL, 43), ["DUFFEL_TOKEN"]),
    "shippo": (lambda: "shippo_live_" + rs(HEX, 40), ["SHIPPO_API_KEY"]),
    "rubygems": (lambda: "rubygems_" + rs(HEX, 48), ["GEM_HOST_API_KEY"]),
    "clojars": (lambda: "CLOJARS_" + rs(string.ascii_lowercase + string.digits, 60), ["CLOJARS_TOKEN"]),
    "readme": (lambda: "rdme_" + rs(string.ascii_lowercase + string.digits, 70), ["README_API_KEY"]),
    "typeform": (lambda: "tfp_" + rs(ALNUM, 59), ["TYPEFORM_TOKEN"]),
    "infracost": (lambda: "ico-" + rs(ALNUM, 32), ["INFRACOST_API_KEY"]),
    "dynatrace": (lambda: "dt0c01." + rs(UPPER_NUM, 24) + "." + rs(UPPER_NUM, 64), ["DT_API_TOKEN"]),
    "prefect": (lambda: "pnu_" + rs(ALNUM, 36), ["PREFECT_API_KEY"]),
    "brevo": (lambda: "xkeysib-" + rs(HEX, 64) + "-" + rs(ALNUM, 16), ["BREVO_API_KEY"]),
    "artifactory": (lambda: "AKCp" + rs(ALNUM, 69), ["ARTIFACTORY_API_KEY"]),
    "cloudflare-origin-ca": (lambda: "v1.0-" + rs(HEX, 24) + "-" + rs(HEX, 146), ["CF_ORIGIN_CA_KEY"]),
    "openshift": (lambda: "sha256~" + rs(B64URL, 43), ["OPENSHIFT_TOKEN"]),
    "flyio": (lambda: "FlyV1 fm2_" + rs(B64, 120), ["FLY_API_TOKEN"]),
    "supabase-pat": (lambda: "sbp_" + rs(HEX, 40), ["SUPABASE_ACCESS_TOKEN"]),
    "jwt": (lambda: jwt({"sub": rs(string.digits, 8), "iss": "https://auth.acme-corp.net", "iat": R.randint(1.6e9, 1.8e9), "scope": "admin"}), ["SESSION_TOKEN", "ACCESS_TOKEN", "id_token"]),
    "postgres-url": (lambda: f"postgres://{R.choice(['app', 'svc_orders', 'admin'])}:{url_password()}@{host()}:5432/{R.choice(['app', 'orders'])}", ["DATABASE_URL", "POSTGRES_URL"]),
    "mysql-url": (lambda: f"mysql://{R.choice(['root', 'app', 'wp'])}:{url_password()}@{host()}:3306/app", ["MYSQL_URL", "DB_URL"]),
    "mongodb-url": (lambda: f"mongodb+srv://{R.choice(['app', 'reader'])}:{url_password()}@cluster0.{rs('abcdefghijklmnop', 5)}.mongodb.net/app?retryWrites=true", ["MONGODB_URI", "MONGO_URL"]),
    "redis-url": (lambda: f"redis://default:{url_password()}@{host()}:6379/0", ["REDIS_URL"]),
    "amqp-url": (lambda: f"amqps://{R.choice(['worker', 'app'])}:{url_password()}@{host()}/vhost", ["AMQP_URL", "BROKER_URL"]),
    "generic-password": (strong_password, ["DB_PASSWORD", "POSTGRES_PASSWORD", "SMTP_PASSWORD", "admin_password", "password"]),
    "generic-secret": (lambda: rs(B64URL, R.choice([32, 43, 50])), ["JWT_SECRET", "SESSION_SECRET", "APP_SECRET", "client_secret", "SECRET_KEY"]),
    "generic-api-key": (lambda: rs(ALNUM, R.choice([32, 40])), ["ACME_API_KEY", "WEATHER_API_KEY", "apiKey", "x_api_key"]),
}
def uuid4():
    return "%08x-%04x-4%03x-%04x-%012x" % (R.getrandbits(32), R.getrandbits(16), R.getrandbits(12), 0x8000 | R.getrandbits(14), R.getrandbits(48))


LOWER_NUM = string.ascii_lowercase + string.digits
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

# The second wave (issue 18, item 1's wider inventory): more providers, from
# the same kinds of sources (providers' token-format docs, gitleaks' default
# config, GitHub secret scanning's partner list). Tokens that have no prefix of
# their own are planted under the names their docs and SDKs read them from.
SECRETS.update({
    "gcp-api-key": (lambda: "AIza" + rs(B64URL, 35), ["GEMINI_API_KEY", "GOOGLE_API_KEY"]),
    "gcp-oauth-client-secret": (lambda: "GOCSPX-" + rs(B64URL, 28), ["GOOGLE_CLIENT_SECRET"]),
    "azure-storage-connection": (lambda: f"DefaultEndpointsProtocol=https;AccountName=acme{rs(LOWER_NUM, 6)};AccountKey="
                                 + base64.b64encode(R.randbytes(64)).decode() + ";EndpointSuffix=core.windows.net", ["AZURE_STORAGE_CONNECTION_STRING"]),
    "azure-devops-pat": (lambda: rs(ALNUM, 76) + "AZDO" + rs(ALNUM, 4), ["AZURE_DEVOPS_EXT_PAT", "AZDO_PAT"]),
    "azure-service-bus": (lambda: f"Endpoint=sb://acme-{rs(LOWER_NUM, 5)}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey="
                          + base64.b64encode(R.randbytes(32)).decode(), ["SERVICEBUS_CONNECTION"]),
    "alibaba-secret": (lambda: rs(ALNUM, 30), ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]),
    "cloudflare-global-key": (lambda: rs(HEX, 37), ["CLOUDFLARE_API_KEY", "CF_API_KEY"]),
    "cloudflare-api-token": (lambda: rs(B64URL, 40), ["CLOUDFLARE_API_TOKEN", "CF_API_TOKEN"]),
    "heroku-uuid": (uuid4, ["HEROKU_API_KEY"]),
    "netlify": (lambda: "nfp_" + rs(ALNUM, 36), ["NETLIFY_AUTH_TOKEN"]),
    "vercel": (lambda: rs(ALNUM, 24), ["VERCEL_TOKEN"]),
    "onepassword-secret-key": (lambda: "A3-" + "-".join(rs(UPPER_NUM, n) for n in (6, 6, 5, 5, 5, 5)), ["OP_SECRET_KEY"]),
    "tailscale": (lambda: "tskey-" + R.choice(["auth", "api", "client"]) + "-k" + rs(ALNUM, 11) + "CNTRL-" + rs(ALNUM, 32), ["TS_AUTHKEY", "TAILSCALE_API_KEY"]),
    "github-refresh": (lambda: "ghr_" + rs(ALNUM, 76), ["GITHUB_REFRESH_TOKEN"]),
    "gitlab-other": (lambda: R.choice(["glptt-" + rs(HEX, 40), "glft-" + rs(ALNUM + "-_", 20), "glagent-" + rs(ALNUM + "-_", 50),
                                       "gloas-" + rs(ALNUM + "-_", 64), "glcbt-" + rs(HEX, 5) + "_" + rs(ALNUM + "-_", 20)]), ["GITLAB_TRIGGER_TOKEN", "GITLAB_FEED_TOKEN"]),
    "gitlab-registration": (lambda: "GR1348941" + rs(ALNUM + "-_", 20), ["REGISTRATION_TOKEN"]),
    "circleci": (lambda: "CCIPAT_" + rs(ALNUM, 22) + "_" + rs(HEX, 40), ["CIRCLECI_TOKEN", "CIRCLE_TOKEN"]),
    "sonarqube": (lambda: R.choice(["squ_", "sqp_", "sqa_"]) + rs(HEX, 40), ["SONAR_TOKEN"]),
    "harness": (lambda: R.choice(["pat.", "sat."]) + rs(B64URL, 22) + "." + rs(HEX, 24) + "." + rs(ALNUM, 20), ["HARNESS_API_KEY"]),
    "scalingo": (lambda: "tk-us-" + rs(B64URL, 48), ["SCALINGO_API_TOKEN"]),
    "render": (lambda: "rnd_" + rs(ALNUM, 32), ["RENDER_API_KEY"]),
    "neon": (lambda: "napi_" + rs(LOWER_NUM, 64), ["NEON_API_KEY"]),
    "contentful": (lambda: "CFPAT-" + rs(B64URL, 43), ["CONTENTFUL_MANAGEMENT_TOKEN"]),
    "frameio": (lambda: "fio-u-" + rs(B64URL, 64), ["FRAMEIO_TOKEN"]),
    "adobe": (lambda: "p8e-" + rs(ALNUM, 32), ["ADOBE_CLIENT_SECRET"]),
    "buildkite": (lambda: "bkua_" + rs(HEX, 40), ["BUILDKITE_API_TOKEN"]),
    "airtable": (lambda: "pat" + rs(ALNUM, 14) + "." + rs(HEX, 64), ["AIRTABLE_TOKEN"]),
    "figma": (lambda: "figd_" + rs(B64URL, 40), ["FIGMA_TOKEN"]),
    "stripe-test-secret": (lambda: R.choice(["sk_test_", "rk_test_"]) + rs(ALNUM, R.choice([24, 99])), ["STRIPE_TEST_SECRET_KEY"]),
    "square-oauth-secret": (lambda: "sq0csp-" + rs(B64URL, 43), ["SQUARE_APPLICATION_SECRET"]),
    "braintree": (lambda: "access_token$production$" + rs(LOWER_NUM, 16) + "$" + rs(HEX, 32), ["BRAINTREE_ACCESS_TOKEN"]),
    "paypal-secret": (lambda: "E" + rs(B64URL, 79), ["PAYPAL_CLIENT_SECRET"]),
    "flutterwave": (lambda: "FLWSECK-" + rs(HEX, 32) + "-X", ["FLW_SECRET_KEY"]),
    "plaid-access": (lambda: "access-production-" + uuid4(), ["PLAID_ACCESS_TOKEN"]),
    "plaid-secret": (lambda: rs(HEX, 30), ["PLAID_SECRET"]),
    "xai": (lambda: "xai-" + rs(ALNUM, 80), ["XAI_API_KEY"]),
    "mistral": (lambda: rs(ALNUM, 32), ["MISTRAL_API_KEY"]),
    "cohere": (lambda: rs(ALNUM, 40), ["COHERE_API_KEY", "CO_API_KEY"]),
    "pinecone": (lambda: "pcsk_" + rs(ALNUM, 5) + "_" + rs(ALNUM, 64), ["PINECONE_API_KEY"]),
    "tavily": (lambda: "tvly-" + R.choice(["", "dev-", "prod-"]) + rs(ALNUM, 32), ["TAVILY_API_KEY"]),
    "e2b": (lambda: "e2b_" + rs(HEX, 40), ["E2B_API_KEY"]),
    "slack-config": (lambda: R.choice(["xoxe.xoxp-1-" + rs(ALNUM, R.randint(163, 166)), "xoxe-1-" + rs(ALNUM, 146)]), ["SLACK_CONFIG_TOKEN", "SLACK_CONFIG_REFRESH_TOKEN"]),
    "slack-legacy": (lambda: "xoxs-" + rs(string.digits, 11) + "-" + rs(string.digits, 12) + "-" + rs(string.digits, 13) + "-" + rs(HEX, 64), ["SLACK_LEGACY_TOKEN"]),
    "teams-webhook": (lambda: f"https://acme.webhook.office.com/webhookb2/{uuid4()}@{uuid4()}/IncomingWebhook/{rs(HEX, 32)}/{uuid4()}", ["TEAMS_WEBHOOK_URL"]),
    "postmark": (uuid4, ["POSTMARK_SERVER_TOKEN", "POSTMARK_API_TOKEN"]),
    "pypi-test": (lambda: "pypi-AgENdGVzdC5weXBpLm9yZw" + rs(B64URL, R.randint(70, 140)), ["TEST_PYPI_TOKEN"]),
    "crates-io": (lambda: "cio" + rs(ALNUM, 32), ["CARGO_REGISTRY_TOKEN"]),
    "nuget": (lambda: "oy2" + rs(LOWER_NUM, 43), ["NUGET_API_KEY"]),
    "jfrog-reference": (lambda: "cmVmdGtuOjAxOjE3" + rs(B64, 48), ["JFROG_ACCESS_TOKEN"]),
    "mysql-dsn": (lambda: f"{R.choice(['app', 'svc'])}:{url_password()}@tcp({host()}:3306)/app?parseTime=true", ["MYSQL_DSN"]),
    "https-userinfo": (lambda: f"https://{R.choice(['deploy', 'ci-bot'])}:{url_password()}@{R.choice(['git', 'nexus', 'artifacts'])}.acme-corp.net/{R.choice(['repo.git', 'repository/pypi/simple'])}",
                       ["PIP_INDEX_URL", "REPO_URL", "NEXUS_URL"]),
    "sentry-org": (lambda: "sntrys_" + b64url_json({"iat": R.randint(1.6e9, 1.8e9), "url": "https://sentry.io", "org": "acme"}) + "_" + rs(B64URL, 43), ["SENTRY_ORG_TOKEN"]),
    "datadog-api": (lambda: rs(HEX, 32), ["DD_API_KEY", "DATADOG_API_KEY"]),
    "datadog-app": (lambda: rs(HEX, 40), ["DD_APP_KEY", "DATADOG_APP_KEY"]),
    "newrelic-license": (lambda: rs(HEX, 36) + "NRAL", ["NEW_RELIC_LICENSE_KEY"]),
    "newrelic-insert": (lambda: "NRII-" + rs(B64URL, 32), ["NEW_RELIC_INSERT_KEY"]),
    "grafana-legacy": (lambda: b64url_json({"k": rs(ALNUM, 32), "n": "ci", "id": R.randint(1, 99)}), ["GRAFANA_API_KEY"]),
    "mapbox-secret": (lambda: "sk.eyJ1IjoiYWNtZSIsImEiOiJ" + rs(ALNUM, 20) + "." + rs(B64URL, 22), ["MAPBOX_SECRET_TOKEN"]),
    "posthog": (lambda: "phx_" + rs(ALNUM, 43), ["POSTHOG_PERSONAL_API_KEY"]),
    "launchdarkly": (lambda: R.choice(["api-", "sdk-"]) + uuid4(), ["LAUNCHDARKLY_SDK_KEY", "LD_API_KEY"]),
    "wandb": (lambda: rs(HEX, 40), ["WANDB_API_KEY"]),
    "algolia-admin": (lambda: rs(HEX, 32), ["ALGOLIA_ADMIN_API_KEY", "ALGOLIA_WRITE_KEY"]),
    "google-access-token": (lambda: "ya29." + rs(B64URL, R.randint(120, 200)), ["GOOGLE_ACCESS_TOKEN"]),
    "google-refresh-token": (lambda: "1//0" + rs(B64URL, 99), ["GOOGLE_REFRESH_TOKEN"]),
    "fcm-server-key": (lambda: "AAAA" + rs(B64URL, 7) + ":APA91b" + rs(B64URL, 134), ["FCM_SERVER_KEY"]),
    "dropbox": (lambda: "sl." + rs(B64URL, 135), ["DROPBOX_ACCESS_TOKEN"]),
    "facebook-token": (lambda: "EAAG" + rs(ALNUM, 180), ["FACEBOOK_ACCESS_TOKEN", "META_ACCESS_TOKEN"]),
    "twitter-bearer": (lambda: "A" * 22 + rs(ALNUM, 30) + "%3D" + rs(ALNUM, 50), ["TWITTER_BEARER_TOKEN", "X_BEARER_TOKEN"]),
    "settlemint": (lambda: R.choice(["sm_aat_", "sm_pat_", "sm_sat_"]) + rs(ALNUM, 16), ["SETTLEMINT_ACCESS_TOKEN"]),
    "defined-networking": (lambda: "dnkey-" + rs(B32, 26) + "-" + rs(B32, 52), ["DN_API_KEY"]),
    "clickhouse": (lambda: "4b1d" + rs(ALNUM, 38), ["CLICKHOUSE_KEY_SECRET"]),
    "maxmind": (lambda: rs(ALNUM, 6) + "_" + rs(ALNUM, 29) + "_mmk", ["MAXMIND_LICENSE_KEY"]),
    "octopus": (lambda: "API-" + rs(UPPER_NUM, 26), ["OCTOPUS_API_KEY"]),
    "yandex-api": (lambda: "AQVN" + rs(B64URL, 36), ["YC_API_KEY"]),
    "yandex-iam": (lambda: "t1." + rs(B64URL, 36) + "." + rs(B64URL, 86), ["YC_IAM_TOKEN"]),
    "sidekiq": (lambda: rs(HEX, 8) + ":" + rs(HEX, 8), ["BUNDLE_ENTERPRISE__CONTRIBSYS__COM", "BUNDLE_GEMS__CONTRIBSYS__COM"]),
    "hubspot-private-app": (lambda: "pat-" + R.choice(["na1", "eu1"]) + "-" + uuid4(), ["HUBSPOT_ACCESS_TOKEN"]),
    "sourcegraph": (lambda: "sgp_" + rs(HEX, 16) + "_" + rs(HEX, 40), ["SRC_ACCESS_TOKEN"]),
    "okta": (lambda: "00" + rs(B64URL, 40), ["OKTA_API_TOKEN"]),
    "fastly": (lambda: rs(B64URL, 32), ["FASTLY_API_TOKEN"]),
    "snyk": (uuid4, ["SNYK_TOKEN"]),
    "asana-pat": (lambda: "2/" + rs(string.digits, 16) + "/" + rs(string.digits, 16) + ":" + rs(HEX, 32), ["ASANA_ACCESS_TOKEN"]),
    "lob": (lambda: "live_" + rs(HEX, 35), ["LOB_API_KEY"]),
    "gocardless": (lambda: "live_" + rs(B64URL, 40), ["GOCARDLESS_ACCESS_TOKEN"]),
    "bitbucket-app-password": (lambda: "ATBB" + rs(ALNUM, 32), ["BITBUCKET_APP_PASSWORD"]),
    "nvidia": (lambda: "nvapi-" + rs(B64URL, 64), ["NVIDIA_API_KEY", "NGC_API_KEY"]),
    "elevenlabs": (lambda: "sk_" + rs(HEX, 48), ["ELEVENLABS_API_KEY"]),
    "firecrawl": (lambda: "fc-" + rs(HEX, 32), ["FIRECRAWL_API_KEY"]),
    "langfuse": (lambda: "sk-lf-" + uuid4(), ["LANGFUSE_SECRET_KEY"]),
    "salesforce": (lambda: "00D" + rs(ALNUM, 12) + "!" + rs(ALNUM + "._", 96), ["SF_ACCESS_TOKEN", "SALESFORCE_SESSION_ID"]),
    "meraki": (lambda: rs(HEX, 40), ["MERAKI_DASHBOARD_API_KEY"]),
    "intercom": (lambda: "dG9rOj" + rs(B64, 54) + "=", ["INTERCOM_ACCESS_TOKEN"]),
    "zendesk": (lambda: rs(ALNUM, 40), ["ZENDESK_API_TOKEN"]),
    "bedrock": (lambda: "ABSKQmVkcm9ja0FQSUtleS" + rs(B64, 110), ["AWS_BEARER_TOKEN_BEDROCK"]),
    "intra42": (lambda: "s-s4t2ud-" + rs(HEX, 64), ["FT_CLIENT_SECRET"]),
    "twitch": (lambda: rs(LOWER_NUM, 30), ["TWITCH_CLIENT_SECRET"]),
    "mattermost": (lambda: rs(LOWER_NUM, 26), ["MATTERMOST_TOKEN"]),
    "rapidapi": (lambda: rs(ALNUM, 50), ["RAPIDAPI_KEY", "X_RAPIDAPI_KEY"]),
    "sumologic": (lambda: rs(ALNUM, 64), ["SUMO_ACCESS_KEY"]),
    "sendbird": (lambda: rs(HEX, 40), ["SENDBIRD_API_TOKEN"]),
    "drone": (lambda: rs(ALNUM, 32), ["DRONE_TOKEN"]),
    "codecov": (uuid4, ["CODECOV_TOKEN"]),
    "confluent": (lambda: rs(ALNUM + "+/", 64), ["CONFLUENT_CLOUD_API_SECRET"]),
    "kraken": (lambda: base64.b64encode(R.randbytes(64)).decode(), ["KRAKEN_PRIVATE_KEY"]),
    "finnhub": (lambda: rs(LOWER_NUM, 20), ["FINNHUB_API_KEY"]),
    "adafruit": (lambda: "aio_" + rs(ALNUM, 28), ["ADAFRUIT_IO_KEY"]),
    "discord-client-secret": (lambda: rs(B64URL, 32), ["DISCORD_CLIENT_SECRET"]),
    "linear-client-secret": (lambda: rs(HEX, 32), ["LINEAR_CLIENT_SECRET"]),
    "facebook-app-secret": (lambda: rs(HEX, 32), ["FACEBOOK_APP_SECRET", "FB_APP_SECRET"]),
    "twitter-secret": (lambda: rs(ALNUM, 50), ["TWITTER_API_SECRET", "TWITTER_ACCESS_TOKEN_SECRET"]),
    "linkedin-secret": (lambda: rs(ALNUM, 16), ["LINKEDIN_CLIENT_SECRET"]),
    "hubspot-legacy": (uuid4, ["HUBSPOT_API_KEY", "HAPIKEY"]),
})


# Keys that belong to a pair are planted with their partner on the next line.
PAIRS = {"aws-access-key-id": "aws-secret-access-key"}
PEM_KINDS = ["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY"]
PEM_PREFIX = {"RSA PRIVATE KEY": "MIIEowIBAAKCAQEA", "EC PRIVATE KEY": "MHcCAQEEI", "PRIVATE KEY": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
              "OPENSSH PRIVATE KEY": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAB"}


def pem(kind):
    n = {"EC PRIVATE KEY": 160, "OPENSSH PRIVATE KEY": 1600}.get(kind, 1560)
    body = PEM_PREFIX[kind] + rs(B64, n)
    lines = [body[i:i + (70 if kind.startswith("OPENSSH") else 64)] for i in range(0, len(body), 70 if kind.startswith("OPENSSH") else 64)]
    return [f"-----BEGIN {kind}-----"] + lines + [f"-----END {kind}-----"]


# ---------------------------------------------------------------------------
# Decoys: (kind, name, value). None of them is a usable credential.
# ---------------------------------------------------------------------------
def decoy():
    u = "%08x-%04x-4%03x-%04x-%012x" % (R.getrandbits(32), R.getrandbits(16), R.getrandbits(12), 0x8000 | R.getrandbits(14), R.getrandbits(48))
    choices = [
        ("stripe-publishable", "STRIPE_PUBLISHABLE_KEY", "pk_live_" + rs(ALNUM, 99)),
        ("stripe-publishable", "NEXT_PUBLIC_STRIPE_KEY", "pk_test_" + rs(ALNUM, 99)),
        ("uuid", "REQUEST_ID", u),
        ("uuid", "tenant_id", u),
        ("sha256", "checksum", rs(HEX, 64)),
        ("git-sha", "commit", rs(HEX, 40)),
        ("image-digest", "image", "ghcr.io/acme/api@sha256:" + rs(HEX, 64)),
        ("integrity", "integrity", "sha512-" + base64.b64encode(R.randbytes(64)).decode()),
        ("aws-example", "AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("aws-example", "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("placeholder", "OPENAI_API_KEY", "sk-your-key-here"),
        ("placeholder", "GITHUB_TOKEN", "ghp_" + "x" * 36),
        ("placeholder", "API_KEY", "<YOUR_API_KEY>"),
        ("placeholder", "SECRET_KEY", "changeme"),
        ("placeholder", "STRIPE_SECRET_KEY", "sk_live_" + "X" * 24),
        ("reference", "DB_PASSWORD", "${DB_PASSWORD}"),
        ("reference", "api_token", "{{ .Values.apiToken }}"),
        ("reference", "ANTHROPIC_API_KEY", "$ANTHROPIC_API_KEY"),
        ("human-language", "api_key_label", "API-Schlüssel eingeben"),
        ("human-language", "password_hint", "Mindestens acht Zeichen, bitte"),
        ("human-language", "token_help", "Jeton d'accès personnel"),
        ("human-language", "secret_question", "¿Cuál es el nombre de tu primera mascota?"),
        ("public-key", "ssh_public_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(B64, 43) + " deploy@ci"),
        ("bcrypt-hash", "password_hash", "$2b$12$" + rs(ALNUM + "./", 53)),
        ("oauth-client-id", "GOOGLE_CLIENT_ID", rs(string.digits, 12) + "-" + rs(string.ascii_lowercase + string.digits, 32) + ".apps.googleusercontent.com"),
        ("url-no-password", "DATABASE_URL", f"postgres://app@{host()}:5432/app"),
        ("url-reference", "DATABASE_URL", "postgres://app:${DB_PASSWORD}@" + host() + ":5432/app"),
        ("sentry-dsn", "SENTRY_DSN", f"https://{rs(HEX, 32)}@o{rs(string.digits, 6)}.ingest.sentry.io/{rs(string.digits, 7)}"),
        ("mapbox-public", "MAPBOX_PUBLIC_TOKEN", "pk.eyJ1IjoiYWNtZSIsImEiOiJ" + rs(ALNUM, 20) + "." + rs(B64URL, 22)),
        ("version", "version", f"{R.randint(1, 9)}.{R.randint(0, 40)}.{R.randint(0, 99)}"),
        ("max-tokens", "max_tokens", str(R.choice([1024, 4096, 8192]))),
        ("token-type", "token_type", "Bearer"),
        ("secret-name", "secret_name", "prod-db-credentials"),
        ("empty", "password", ""),
        ("file-path", "private_key_path", "/etc/ssl/private/server.key"),
        ("env-lookup", "token", "os.environ['API_TOKEN']"),
    ]
    return R.choice(choices)


EITHER = [("twilio-account-sid", "TWILIO_ACCOUNT_SID", lambda: "AC" + rs(HEX, 32))]


# ---------------------------------------------------------------------------
# Files. Each writer takes items (name, value, label, kind) and returns lines;
# a line is (text, label or None). One labelled value per line.
# ---------------------------------------------------------------------------
def q(v):
    return json.dumps(v, ensure_ascii=False)


def w_env(items):
    out = [("# generated service settings", None)]
    for name, v, lab in items:
        form = R.choice(["{n}={v}", "export {n}={v}", '{n}="{v}"', "{n}='{v}'"])
        out.append((form.format(n=name.upper(), v=v), lab))
    return out


def w_yaml(items):
    out = [("app:", None), ("  name: orders", None), ("  settings:", None)]
    for name, v, lab in items:
        out.append((f"    {name}: {q(v) if R.random() < 0.5 or not v else v}", lab))
    return out


def w_json(items):
    out = [("{", None), ('  "service": "billing",', None), ('  "config": {', None)]
    for i, (name, v, lab) in enumerate(items):
        out.append((f"    {q(name)}: {q(v)}" + ("," if i < len(items) - 1 else ""), lab))
    return out + [("  }", None), ("}", None)]


def w_toml(items):
    out = [("[server]", None), ('listen = "0.0.0.0:8080"', None), ("", None), ("[credentials]", None)]
    for name, v, lab in items:
        out.append((f"{name.lower()} = {q(v)}", lab))
    return out


def w_hcl(items):
    out = []
    for name, v, lab in items:
        if R.random() < 0.5:
            out += [(f'variable "{name.lower()}" {{', None), ('  type    = string', None), (f"  default = {q(v)}", lab), ("}", None), ("", None)]
        else:
            out += [('resource "acme_integration" "main" {', None), (f"  {name.lower()} = {q(v)}", lab), ("}", None), ("", None)]
    return out


def w_shell(items):
    out = [("#!/usr/bin/env bash", None), ("set -euo pipefail", None)]
    for name, v, lab in items:
        form = R.choice(["export {n}={qv}", "{n}={qv}", "export {n}={qv}"])
        out.append((form.format(n=name.upper(), qv='"' + v + '"'), lab))
    out.append(('curl -sf "$API_URL/health"', None))
    return out


def w_python(items):
    out = [("import os", None), ("", None)]
    for name, v, lab in items:
        form = R.choice(["{n} = {qv}", 'os.environ.setdefault("{N}", {qv})', "client = Client({n}={qv})"])
        out.append((form.format(n=name.lower(), N=name.upper(), qv=q(v)), lab))
    return out


def w_js(items):
    out = [("'use strict';", None)]
    for name, v, lab in items:
        camel = "".join(p.capitalize() if i else p.lower() for i, p in enumerate(name.split("_")))
        form = R.choice(["const {c} = '{v}';", "module.exports.{c} = \"{v}\";", "const cfg = {{ {c}: '{v}' }};"])
        out.append((form.format(c=camel, v=v), lab))
    return out


def w_dockerfile(items):
    out = [("FROM python:3.12-slim", None), ("WORKDIR /app", None)]
    for name, v, lab in items:
        out.append((R.choice(["ENV {n}={v}", "ARG {n}={v}", 'ENV {n}="{v}"']).format(n=name.upper(), v=v), lab))
    return out + [('CMD ["python", "-m", "app"]', None)]


def w_compose(items):
    out = [("services:", None), ("  api:", None), ("    image: acme/api:1.4", None), ("    environment:", None)]
    as_list = R.random() < 0.5
    for name, v, lab in items:
        out.append(((f"      - {name.upper()}={v}") if as_list else (f"      {name.upper()}: {q(v)}"), lab))
    return out


def w_k8s(items):
    if R.random() < 0.5:
        out = [("apiVersion: apps/v1", None), ("kind: Deployment", None), ("metadata:", None), ("  name: api", None), ("spec:", None),
               ("  template:", None), ("    spec:", None), ("      containers:", None), ("        - name: api", None), ("          env:", None)]
        for name, v, lab in items:
            out += [(f"            - name: {name.upper()}", None), (f"              value: {q(v)}", lab)]
        return out
    encode = R.random() < 0.5
    out = [("apiVersion: v1", None), ("kind: Secret", None), ("metadata:", None), ("  name: api-secrets", None), ("type: Opaque", None),
           ("data:" if encode else "stringData:", None)]
    for name, v, lab in items:
        val = base64.b64encode(v.encode()).decode() if encode else q(v)
        out.append((f"  {name.upper()}: {val}", lab))
    return out


def w_notebook(items):
    out = [("{", None), (' "cells": [', None), ("  {", None), ('   "cell_type": "code",', None), ('   "execution_count": 1,', None),
           ('   "metadata": {},', None), ('   "outputs": [],', None), ('   "source": [', None), ('    "import os\\n",', None)]
    for i, (name, v, lab) in enumerate(items):
        line = f'os.environ[{q(name.upper())}] = {q(v)}' + ("\n" if i < len(items) - 1 else "")
        out.append(("    " + q(line) + ("," if i < len(items) - 1 else ""), lab))
    out += [("   ]", None), ("  }", None), (" ],", None), (' "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},', None),
            (' "nbformat": 4,', None), (' "nbformat_minor": 5', None), ("}", None)]
    return out


WRITERS = {
    ".env": w_env, "config.yaml": w_yaml, "settings.json": w_json, "config.toml": w_toml, "main.tf": w_hcl, "deploy.sh": w_shell,
    "settings.py": w_python, "config.js": w_js, "Dockerfile": w_dockerfile, "docker-compose.yml": w_compose, "k8s.yaml": w_k8s,
    "analysis.ipynb": w_notebook,
}


def pem_file(kind):
    """A private key in one of the shapes keys travel in; returns (name, lines)."""
    block = pem(kind)
    shape = R.choice(["raw", "yaml", "json", "python"])
    lab = ("secret", "private-key")
    if shape == "raw":
        return R.choice(["id_deploy", "server.key", "tls.pem"]), [(block[0], lab)] + [(x, None) for x in block[1:]]
    if shape == "yaml":
        return "values.yaml", [("tls:", None), ("  key: |", None), ("    " + block[0], lab)] + [("    " + x, None) for x in block[1:]]
    if shape == "json":
        key = "\\n".join(block) + "\\n"
        return "service-account.json", [("{", None), ('  "type": "service_account",', None), (f'  "project_id": "acme-{rs(HEX, 6)}",', None),
                                         (f'  "private_key_id": "{rs(HEX, 40)}",', None), (f'  "private_key": "{key}",', lab),
                                         (f'  "client_email": "ci@acme-{rs(HEX, 6)}.iam.gserviceaccount.com"', None), ("}", None)]
    return "signing.py", [("SIGNING_KEY = '''" + block[0], lab)] + [(x, None) for x in block[1:-1]] + [(block[-1] + "'''", None)]


def special_file():
    """Files whose whole shape carries the secret."""
    pick = R.choice(["npmrc", "netrc", "git-credentials", "docker-config", "curl", "pypirc", "firebase"])
    if pick == "npmrc":
        return ".npmrc", [("registry=https://registry.npmjs.org/", None), ("//registry.npmjs.org/:_authToken=" + checksummed("npm_"), ("secret", "npmrc"))]
    if pick == "netrc":
        return ".netrc", [("machine api.acme-corp.net", None), ("  login deploy", None), ("  password " + strong_password(), ("secret", "netrc"))]
    if pick == "git-credentials":
        return ".git-credentials", [(f"https://ci-bot:{checksummed('ghp_')}@github.com", ("secret", "git-credentials"))]
    if pick == "docker-config":
        auth = base64.b64encode(f"deploy:{strong_password()}".encode()).decode()
        return "config.json", [("{", None), ('  "auths": {', None), ('    "registry.acme-corp.net": {', None), (f'      "auth": "{auth}"', ("secret", "docker-auth")),
                               ("    }", None), ("  }", None), ("}", None)]
    if pick == "curl":
        tok = R.choice([checksummed("ghp_"), "sk-ant-api03-" + rs(B64URL, 93) + "AA", rs(ALNUM, 40)])
        return "release.sh", [("#!/bin/sh", None), ("curl -fsS -X POST \\", None), (f'  -H "Authorization: Bearer {tok}" \\', ("secret", "curl-bearer")),
                              ("  https://api.acme-corp.net/v1/releases", None),
                              (f"curl -u deploy:{url_password()} https://artifacts.acme-corp.net/upload", ("secret", "curl-user"))]
    if pick == "pypirc":
        return ".pypirc", [("[pypi]", None), ("username = __token__", None), ("password = pypi-AgEIcHlwaS5vcmc" + rs(B64URL, 120), ("secret", "pypirc"))]
    # Firebase web config: the apiKey is public by design (it ships in every web page).
    return "firebase.js", [("const firebaseConfig = {", None), (f'  apiKey: "AIza{rs(B64URL, 35)}",', ("decoy", "firebase-web-api-key")),
                           (f'  authDomain: "acme-{rs(HEX, 5)}.firebaseapp.com",', None), (f'  projectId: "acme-{rs(HEX, 5)}",', None), ("};", None)]


def build(seed, out_dir):
    R.seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    labels = []
    kinds = list(SECRETS)
    # Every kind at least once, then random ones, ~160 secrets per seed.
    bag = kinds + [R.choice(kinds) for _ in range(60)]
    R.shuffle(bag)
    files = []
    n = 0
    while bag:
        fname = R.choice(list(WRITERS))
        items = []
        for _ in range(min(len(bag), R.randint(1, 3))):
            kind = bag.pop()
            gen, names = SECRETS[kind]
            items.append((R.choice(names), gen(), ("secret", kind)))
            if kind in PAIRS:
                partner = PAIRS[kind]
                items.append((SECRETS[partner][1][0], SECRETS[partner][0](), ("secret", partner)))
        for _ in range(R.randint(1, 3)):
            dk, dn, dv = decoy()
            items.insert(R.randrange(len(items) + 1), (dn, dv, ("decoy", dk)))
        if R.random() < 0.15:
            ek, en, eg = R.choice(EITHER)
            items.append((en, eg(), ("either", ek)))
        # one name once per file: a repeated key is invalid YAML, JSON and TOML
        seen = set()
        for i, (name, v, lab) in enumerate(items):
            while name.upper() in seen:
                name += "_2"
            seen.add(name.upper())
            items[i] = (name, v, lab)
        files.append((fname, WRITERS[fname](items)))
        n += 1
    for _ in range(8):
        files.append(pem_file(R.choice(PEM_KINDS)))
    for _ in range(10):
        files.append(special_file())
    for _ in range(12):  # files with decoys only
        fname = R.choice(list(WRITERS))
        decoys = {}
        for dk, dn, dv in (decoy() for _ in range(R.randint(2, 5))):
            decoys.setdefault(dn.upper(), (dn, dv, ("decoy", dk)))
        files.append((fname, WRITERS[fname](list(decoys.values()))))
    for i, (fname, lines) in enumerate(files):
        rel = os.path.join(f"f{i:03d}", fname)
        os.makedirs(os.path.join(out_dir, f"f{i:03d}"), exist_ok=True)
        with open(os.path.join(out_dir, rel), "w", encoding="utf-8") as fh:
            fh.write("\n".join(text for text, _ in lines) + "\n")
        for ln, (text, lab) in enumerate(lines, 1):
            if lab:
                end = ln
                if lab[1] == "private-key" and "-----BEGIN" in text and "\\n" not in text:
                    end = next(j for j in range(ln, len(lines) + 1) if "-----END" in lines[j - 1][0])
                labels.append({"file": rel, "line": ln, "end": end, "kind": lab[1], "label": lab[0]})
    with open(os.path.join(out_dir, "labels.json"), "w") as fh:
        json.dump({"seed": seed, "labels": labels}, fh, indent=1)
    return labels


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    labs = build(a.seed, a.out)
    print(f"seed {a.seed}: {sum(1 for x in labs if x['label'] == 'secret')} secrets, "
          f"{sum(1 for x in labs if x['label'] == 'decoy')} decoys in {len({x['file'] for x in labs})} files")
