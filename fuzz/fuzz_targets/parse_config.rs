//! Any text given as airlock.toml either parses or yields a located, one-line
//! error — never a panic. A parsed config goes through the CLI's edit path
//! (`ConfigDoc`, toml_edit): loaded, it re-parses to the same config; each edit the
//! CLI makes (remove a capability, add a capability, add a service with a copied
//! auth, remove an unused service) re-parses to the original config with exactly
//! that change and nothing else.
#![no_main]

use std::fmt::Debug;
use std::path::Path;

use airlock_config::{CapabilitySpec, Config, ConfigDoc};
use libfuzzer_sys::fuzz_target;

/// Names no fuzz input is likely to use, so the adds below do not collide.
const NEW_CAP: &str = "fuzz-added-capability";
const NEW_SVC: &str = "fuzz-added-service";

fn dbg<T: Debug>(t: &T) -> String {
    format!("{t:?}")
}

/// Re-parses the edited document; a config the CLI produced must always parse.
fn reparse(doc: &ConfigDoc, what: &str) -> Config {
    match doc.config() {
        Ok(c) => c,
        Err(e) => panic!(
            "{what}: the edited config does not parse: {e}\n{}",
            doc.to_text()
        ),
    }
}

/// `remove` (the edit `what`) of `name` from the home's config as loaded: it must
/// find it; the config read back.
fn removed(
    home: &airlock_home::Home,
    name: &str,
    what: &str,
    remove: impl FnOnce(&mut ConfigDoc, &str) -> bool,
) -> Config {
    let mut doc = ConfigDoc::load(home).expect("load");
    assert!(remove(&mut doc, name), "{what}({name:?}) found nothing");
    reparse(&doc, what)
}

/// The table an edit of the other one must leave as it was.
enum Kept {
    Services,
    Capabilities,
}

/// After the edit `what`, the `kept` table reads back as in `cfg`; with `server`
/// also the `[server]` table (`same_server`).
fn rest_unchanged(after: &Config, cfg: &Config, what: &str, kept: Kept, server: bool) {
    match kept {
        Kept::Services => assert_eq!(
            dbg(&after.services),
            dbg(&cfg.services),
            "{what} changed services"
        ),
        Kept::Capabilities => assert_eq!(
            dbg(&after.capabilities),
            dbg(&cfg.capabilities),
            "{what} changed capabilities"
        ),
    }
    if server {
        same_server(after, cfg, what);
    }
}

/// Everything but `services` and `capabilities` is unchanged.
fn same_server(a: &Config, b: &Config, what: &str) {
    assert_eq!(a.server, b.server, "{what}: [server] changed");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = match Config::parse(Path::new("airlock.toml"), text) {
        Ok(cfg) => cfg,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("airlock.toml:"), "{msg}");
            assert!(!msg.contains('\n'), "{msg:?}");
            return;
        }
    };
    for cap in cfg.capabilities.values() {
        assert!(cfg.services.contains_key(&cap.service));
    }

    // The CLI's path: airlock.toml in a home, loaded as an editable document.
    let dir = tempfile::tempdir().expect("tempdir");
    let home = airlock_home::Home::at(dir.path());
    std::fs::write(home.config_path(), text).expect("write airlock.toml");
    let doc = match ConfigDoc::load(&home) {
        Ok(d) => d,
        Err(e) => panic!("Config::parse accepted the text but ConfigDoc::load refused it: {e}"),
    };
    // Unedited: the same config.
    let same = reparse(&doc, "unedited");
    assert_eq!(
        dbg(&same),
        dbg(&cfg),
        "unedited document re-parses to a different config"
    );

    // Remove the first capability: everything else stays.
    if let Some(name) = cfg.capabilities.keys().next().cloned() {
        let after = removed(&home, &name, "remove_capability", |doc, n| {
            assert!(doc.has_capability(n));
            doc.remove_capability(n)
        });
        let mut want = cfg.capabilities.clone();
        want.remove(&name);
        assert_eq!(
            dbg(&after.capabilities),
            dbg(&want),
            "remove_capability({name:?})"
        );
        rest_unchanged(&after, &cfg, "remove_capability", Kept::Services, true);
    }

    if let Some(svc) = cfg.services.values().next() {
        // Add a capability on the first service, as `airlock cap add` does.
        if !cfg.capabilities.contains_key(NEW_CAP) {
            let mut doc = ConfigDoc::load(&home).expect("load");
            let spec = CapabilitySpec {
                service: svc.name.clone(),
                allow: vec!["GET /fuzz/**".into()],
                deny: vec!["* /fuzz/admin/**".into()],
                ..CapabilitySpec::default()
            };
            doc.add_capability(NEW_CAP, &spec).expect("add_capability");
            assert!(
                doc.add_capability(NEW_CAP, &spec).is_err(),
                "second add of the same name"
            );
            let after = reparse(&doc, "add_capability");
            let added = &after.capabilities[NEW_CAP];
            assert_eq!(added.service, svc.name);
            assert_eq!(added.allow_written().collect::<Vec<_>>(), spec.allow);
            assert_eq!(added.deny_written().collect::<Vec<_>>(), spec.deny);
            let mut rest = after.capabilities.clone();
            rest.remove(NEW_CAP);
            assert_eq!(
                dbg(&rest),
                dbg(&cfg.capabilities),
                "add_capability changed others"
            );
            rest_unchanged(&after, &cfg, "add_capability", Kept::Services, true);
        }

        // Add a service with the first one's URL and auth (`airlock add` writes the
        // auth as an inline table): it must read back as the same auth.
        if !cfg.services.contains_key(NEW_SVC) {
            let mut doc = ConfigDoc::load(&home).expect("load");
            doc.add_service(NEW_SVC, svc.url.as_str(), &svc.auth)
                .expect("add_service");
            let after = reparse(&doc, "add_service");
            let added = &after.services[NEW_SVC];
            assert_eq!(
                added.auth, svc.auth,
                "auth written inline reads back differently"
            );
            assert_eq!(added.url, svc.url);
            let mut rest = after.services.clone();
            rest.remove(NEW_SVC);
            assert_eq!(dbg(&rest), dbg(&cfg.services), "add_service changed others");
            rest_unchanged(&after, &cfg, "add_service", Kept::Capabilities, true);
        }
    }

    // Remove a service no capability uses.
    let unused = cfg
        .services
        .keys()
        .find(|s| !cfg.capabilities.values().any(|c| &c.service == *s));
    if let Some(name) = unused.cloned() {
        let after = removed(&home, &name, "remove_service", ConfigDoc::remove_service);
        let mut want = cfg.services.clone();
        want.remove(&name);
        assert_eq!(dbg(&after.services), dbg(&want), "remove_service({name:?})");
        rest_unchanged(&after, &cfg, "remove_service", Kept::Capabilities, false);
    }
});
