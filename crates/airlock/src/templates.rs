//! Service templates: `airlock add stripe` knows Stripe's base URL, how it
//! authenticates, and a read-only set of starting rules. `airlock search` lists
//! them. The rules are a starting point for the owner to widen, never wider than
//! what the name suggests an agent usually needs.

/// How a template authenticates (the secret parts come from the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplateAuth {
    Bearer,
    /// Basic with the username given on the command line.
    Basic,
    /// A header carrying the key.
    Header(&'static str),
    /// AWS SigV4 for this AWS service name.
    AwsSigV4(&'static str),
}

/// One service template.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Template {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    /// Base URL; `{region}` is replaced by `--region`.
    pub(crate) url: &'static str,
    pub(crate) auth: TemplateAuth,
    pub(crate) allow: &'static [&'static str],
    pub(crate) deny: &'static [&'static str],
}

impl TemplateAuth {
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            TemplateAuth::Bearer => "bearer",
            TemplateAuth::Basic => "basic",
            TemplateAuth::Header(_) => "header",
            TemplateAuth::AwsSigV4(_) => "aws-sigv4",
        }
    }
}

/// Every template, by name.
pub(crate) const TEMPLATES: &[Template] = &[
    Template {
        name: "stripe",
        description: "Stripe payments API (read-only: GET /v1/**)",
        url: "https://api.stripe.com",
        auth: TemplateAuth::Bearer,
        allow: &["GET /v1/**"],
        deny: &[],
    },
    Template {
        name: "openai",
        description: "OpenAI API: models, chat completions, responses, embeddings (no files, fine-tuning or admin)",
        url: "https://api.openai.com",
        auth: TemplateAuth::Bearer,
        allow: &[
            "GET /v1/models/**",
            "POST /v1/chat/completions",
            "POST /v1/responses",
            "POST /v1/embeddings",
        ],
        deny: &[],
    },
    Template {
        name: "anthropic",
        description: "Anthropic API: messages, token counting, models (x-api-key)",
        url: "https://api.anthropic.com",
        auth: TemplateAuth::Header("x-api-key"),
        allow: &[
            "POST /v1/messages",
            "POST /v1/messages/count_tokens",
            "GET /v1/models/**",
        ],
        deny: &[],
    },
    Template {
        name: "github",
        description: "GitHub REST API (read-only: GET)",
        url: "https://api.github.com",
        auth: TemplateAuth::Bearer,
        allow: &["GET /**"],
        deny: &[],
    },
    Template {
        name: "gitlab",
        description: "GitLab REST API v4 on gitlab.com (read-only: GET)",
        url: "https://gitlab.com/api/v4",
        auth: TemplateAuth::Bearer,
        allow: &["GET /**"],
        deny: &[],
    },
    Template {
        name: "slack",
        description: "Slack Web API (read-only methods: conversations, users, auth.test)",
        url: "https://slack.com/api",
        auth: TemplateAuth::Bearer,
        allow: &[
            "GET /conversations.list",
            "GET /conversations.history",
            "GET /conversations.info",
            "GET /users.list",
            "GET /users.info",
            "GET /auth.test",
        ],
        deny: &[],
    },
    Template {
        name: "aws-s3",
        description: "Amazon S3 in one region, SigV4 (read-only: GET, HEAD); needs --region",
        url: "https://s3.{region}.amazonaws.com",
        auth: TemplateAuth::AwsSigV4("s3"),
        allow: &["GET /**", "HEAD /**"],
        deny: &[],
    },
    Template {
        name: "aws-ses",
        description: "Amazon SES v2 in one region, SigV4 (read-only: GET /v2/email/**); needs --region",
        url: "https://email.{region}.amazonaws.com",
        auth: TemplateAuth::AwsSigV4("ses"),
        allow: &["GET /v2/email/**"],
        deny: &[],
    },
    Template {
        name: "twilio",
        description: "Twilio REST API (Basic: account SID as --username; read-only: GET)",
        url: "https://api.twilio.com/2010-04-01",
        auth: TemplateAuth::Basic,
        allow: &["GET /Accounts/**"],
        deny: &[],
    },
    Template {
        name: "sendgrid",
        description: "SendGrid v3 API (read-only: GET /v3/**)",
        url: "https://api.sendgrid.com",
        auth: TemplateAuth::Bearer,
        allow: &["GET /v3/**"],
        deny: &[],
    },
    Template {
        name: "huggingface",
        description: "Hugging Face Hub API (read-only: GET /api/**)",
        url: "https://huggingface.co",
        auth: TemplateAuth::Bearer,
        allow: &["GET /api/**"],
        deny: &[],
    },
    Template {
        name: "mistral",
        description: "Mistral AI API: models, chat completions, embeddings",
        url: "https://api.mistral.ai",
        auth: TemplateAuth::Bearer,
        allow: &[
            "GET /v1/models/**",
            "POST /v1/chat/completions",
            "POST /v1/embeddings",
        ],
        deny: &[],
    },
    Template {
        name: "groq",
        description: "Groq API (OpenAI-compatible): models, chat completions",
        url: "https://api.groq.com/openai",
        auth: TemplateAuth::Bearer,
        allow: &["GET /v1/models/**", "POST /v1/chat/completions"],
        deny: &[],
    },
    Template {
        name: "notion",
        description: "Notion API (read: GET /v1/**, search, database queries)",
        url: "https://api.notion.com",
        auth: TemplateAuth::Bearer,
        allow: &[
            "GET /v1/**",
            "POST /v1/search",
            "POST /v1/databases/*/query",
        ],
        deny: &[],
    },
];

/// The template of this name.
pub(crate) fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// Templates whose name or description contains `query` (case-insensitive).
pub(crate) fn search(query: Option<&str>) -> Vec<&'static Template> {
    let q = query.unwrap_or("").to_ascii_lowercase();
    TEMPLATES
        .iter()
        .filter(|t| t.name.contains(&q) || t.description.to_ascii_lowercase().contains(&q))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template's URL and rules are accepted by the real config parser.
    #[test]
    fn templates_are_valid_configs() {
        for t in TEMPLATES {
            let url = t.url.replace("{region}", "us-east-1");
            let auth = match t.auth {
                TemplateAuth::Bearer => "{ type = \"bearer\", secret = \"s\" }".to_string(),
                TemplateAuth::Basic => {
                    "{ type = \"basic\", username = \"u\", secret = \"s\" }".to_string()
                }
                TemplateAuth::Header(h) => {
                    format!("{{ type = \"header\", header_name = \"{h}\", secret = \"s\" }}")
                }
                TemplateAuth::AwsSigV4(svc) => format!(
                    "{{ type = \"aws-sigv4\", region = \"us-east-1\", aws_service = \"{svc}\", access_key_id = \"a\", secret_access_key = \"b\" }}"
                ),
            };
            let quote = |v: &[&str]| {
                v.iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let text = format!(
                "[services.x]\nurl = \"{url}\"\nauth = {auth}\n[capabilities.x]\nservice = \"x\"\nallow = [{}]\ndeny = [{}]\n",
                quote(t.allow),
                quote(t.deny)
            );
            if let Err(e) = airlock_config::Config::parse(std::path::Path::new("t.toml"), &text) {
                panic!("template {}: {e}", t.name);
            }
        }
        assert!(TEMPLATES.len() >= 11);
        assert!(search(Some("AWS")).len() >= 2);
    }
}
