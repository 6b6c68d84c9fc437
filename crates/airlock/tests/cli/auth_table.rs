//! Every auth type of `airlock_config::AUTH_TABLE` round-trips (issue 20 item 4):
//! the flags its row names → `airlock add` → airlock.toml → `Config::parse` → an
//! injector of that type. A new row is covered without touching this test, except
//! for a sample value when it brings a new non-secret field.

use airlock_config::{AUTH_TABLE, AuthKind, AuthValueRef, Config, FlagInput};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::RsaKeyPair;
use base64::Engine;
use secrecy::SecretSlice;

use super::Env;

/// A valid value for each non-secret field that has a flag.
fn sample(field: &str) -> &'static str {
    match field {
        "username" => "me@example.com",
        "header_name" => "X-Api-Key",
        "prefix" => "Token ",
        "param" => "api_key",
        "region" => "us-east-1",
        "aws_service" => "s3",
        "app_id" => "123456",
        "installation_id" => "7890",
        "scopes" => "https://www.googleapis.com/auth/cloud-platform",
        "token_url" => "https://auth.example.com/oauth/token",
        "client_id" => "airlock-test",
        "scope" => "read write",
        other => panic!("no sample value for auth field `{other}`: add one to this test"),
    }
}

/// A fresh RSA private key as PKCS#8 PEM (GitHub App key, GCP key file).
fn rsa_pem() -> String {
    let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(kp.as_der().unwrap().as_ref());
    // 64 characters a line between the markers.
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem + "-----END PRIVATE KEY-----\n"
}

fn shown(v: AuthValueRef<'_>) -> String {
    match v {
        AuthValueRef::Text(s) => s.to_string(),
        AuthValueRef::Number(n) => n.to_string(),
        AuthValueRef::List(l) => l.join(","),
    }
}

#[test]
fn every_auth_type_round_trips_from_flags_to_an_injector() {
    let t = Env::new();
    t.init();
    let dir = t.dir.path();
    let pem = rsa_pem();
    let pem_file = dir.join("app.pem");
    std::fs::write(&pem_file, &pem).unwrap();
    let key_json = serde_json::json!({
        "type": "service_account",
        "client_email": "airlock@example.iam.gserviceaccount.com",
        "private_key_id": "k1",
        "private_key": pem,
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string();
    let json_file = dir.join("sa.json");
    std::fs::write(&json_file, &key_json).unwrap();

    for ty in AUTH_TABLE {
        let name = format!("rt-{}", ty.name);
        let mut args: Vec<String> = ["add", &name, "--url", "https://api.example.com"]
            .map(String::from)
            .to_vec();
        args.extend(["--auth".into(), ty.name.into(), "--no-cap".into()]);
        let mut env: Vec<(String, String)> = Vec::new();
        // (field, value expected in the config, vault secret and its value)
        let mut expected: Vec<(&str, String, Option<Vec<u8>>)> = Vec::new();
        for field in ty.fields {
            let Some(flag) = field.flag else { continue };
            let vault_name = match field.vault_part() {
                None => name.clone(),
                Some(part) => format!("{name}.{part}"),
            };
            let long = |l: &str| format!("--{l}");
            match flag.input {
                FlagInput::Text | FlagInput::Number | FlagInput::List => {
                    args.extend([long(flag.long.unwrap()), sample(field.name).into()]);
                    expected.push((field.name, sample(field.name).into(), None));
                }
                FlagInput::SecretEnv | FlagInput::MainSecret => {
                    let var = format!("RT_{}", field.name.to_uppercase());
                    let value = format!("value-of-{}-{}", ty.name, field.name);
                    args.extend([long(flag.long.unwrap_or("key-from-env")), var.clone()]);
                    env.push((var, value.clone()));
                    expected.push((field.name, vault_name, Some(value.into_bytes())));
                }
                FlagInput::SecretFile { .. } => {
                    let (file, content) = match ty.kind {
                        AuthKind::GitHubApp => (&pem_file, pem.as_bytes()),
                        AuthKind::GcpServiceAccount => (&json_file, key_json.as_bytes()),
                        other => panic!("no sample file for {other:?}: add one to this test"),
                    };
                    args.extend([long(flag.long.unwrap()), file.to_str().unwrap().into()]);
                    expected.push((field.name, vault_name, Some(content.to_vec())));
                }
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        t.run_with(&args, &env, None).ok();

        let config = Config::load(&t.home()).unwrap();
        let service = &config.services[&name];
        assert_eq!(service.auth.type_name(), ty.name, "{args:?}");
        let fields: Vec<(&str, String)> = service
            .auth
            .fields()
            .into_iter()
            .map(|(f, v)| (f.name, shown(v)))
            .collect();
        for (field, value, secret) in &expected {
            assert!(
                fields.contains(&(*field, value.clone())),
                "{}: `{field}` should be {value:?} in {fields:?}",
                ty.name
            );
            if let Some(secret) = secret {
                assert_eq!(
                    &t.secret(value),
                    secret,
                    "{}: vault secret {value}",
                    ty.name
                );
            }
        }
        let secrets: Vec<&str> = expected
            .iter()
            .filter(|(_, _, s)| s.is_some())
            .map(|(_, v, _)| v.as_str())
            .collect();
        assert_eq!(service.auth.secrets(), secrets, "{}", ty.name);

        let injector = airlock_inject::Injectors::new()
            .get(service, &mut |n| Some(SecretSlice::from(t.secret(n))))
            .unwrap_or_else(|e| panic!("{}: {e}", ty.name));
        assert_eq!(injector.kind(), ty.name);
    }
}
