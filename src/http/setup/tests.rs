use axum::http::{HeaderMap, HeaderValue, header};

use super::address::{Unreachable, manifest_json, unreachable};
use super::app_file::write_app_file;
use super::handlers::{SetupRefusal, admission_cookie, browser_cookie, is_login};
use super::pages::{self, InstallLink};
use super::*;
use crate::github::AppRegistration;

#[test]
fn the_manifest_gets_this_servers_addresses() {
    let json: serde_json::Value =
        serde_json::from_str(&manifest_json("https://bot.example.com", "/webhook").unwrap())
            .unwrap();
    assert_eq!(
        json["hook_attributes"]["url"],
        "https://bot.example.com/webhook"
    );
    assert_eq!(
        json["redirect_url"],
        "https://bot.example.com/setup/callback"
    );
    assert_eq!(json["default_permissions"]["issues"], "write");
    assert_eq!(
        json["default_permissions"]["organization_projects"],
        "write"
    );
    let events: Vec<&str> = json["default_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    for event in [
        "issues",
        "issue_comment",
        "label",
        "pull_request",
        "projects_v2_item",
        "issue_dependencies",
    ] {
        assert!(events.contains(&event), "{event}");
    }
}

#[test]
fn html_is_escaped() {
    assert_eq!(
        pages::escape(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn addresses_github_cannot_reach_are_named() {
    let loopback = |host: &str| Some(Unreachable::Loopback(host.to_owned()));
    assert_eq!(
        unreachable("http://127.0.0.1:3000", true),
        loopback("127.0.0.1")
    );
    assert_eq!(unreachable("http://[::1]:3000", false), loopback("[::1]"));
    assert_eq!(
        unreachable("http://localhost:3000", false),
        loopback("localhost")
    );
    assert_eq!(
        unreachable("http://0.0.0.0:3000", false),
        loopback("0.0.0.0")
    );
    assert_eq!(
        unreachable("http://[::ffff:127.0.0.1]", true),
        loopback("[::ffff:127.0.0.1]")
    );
    for private in [
        "http://10.1.2.3:3000",
        "http://192.168.1.20",
        "http://172.16.0.1",
        "http://169.254.1.1",
        "http://100.100.1.1",
        "http://[fd00::1]:80",
    ] {
        assert!(
            matches!(unreachable(private, true), Some(Unreachable::Private(_))),
            "{private}"
        );
        // A GitHub Enterprise Server in the same network reaches it.
        assert_eq!(unreachable(private, false), None, "{private}");
    }
    for local in [
        "http://devbox:3000",
        "http://bot.internal",
        "http://pi.local",
    ] {
        assert!(
            matches!(unreachable(local, true), Some(Unreachable::LocalName(_))),
            "{local}"
        );
    }
    for public in [
        "https://bot.example.com",
        "https://user@bot.example.com:8443/x",
        "http://203.0.113.7:3000",
        "http://[2001:db8::1]:3000",
    ] {
        assert_eq!(unreachable(public, true), None, "{public}");
    }
}

#[test]
fn organisation_logins_are_checked() {
    for good in ["acme", "Acme-Corp", "a", "x1-", &"a".repeat(39)] {
        assert!(is_login(good), "{good}");
    }
    for bad in [
        "",
        "-acme",
        "ac me",
        "acme.org",
        "<script>",
        "@acme",
        "https://github.com/acme",
        &"a".repeat(40),
        "ácme",
    ] {
        assert!(!is_login(bad), "{bad}");
    }
}

#[test]
fn the_setup_link_names_the_address_served_on() {
    let setup = SetupState::new(&GithubConfig::default(), None, "/webhook").unwrap();
    let token = setup.setup_token().unwrap().to_owned();
    assert_eq!(token.len(), 32);
    assert_eq!(
        setup.setup_link("0.0.0.0:3000".parse().unwrap()),
        Some(format!("http://127.0.0.1:3000/setup?token={token}"))
    );
    assert_eq!(
        setup.setup_link("[::]:8080".parse().unwrap()),
        Some(format!("http://[::1]:8080/setup?token={token}"))
    );
    assert_eq!(
        setup.setup_link("192.0.2.4:3000".parse().unwrap()),
        Some(format!("http://192.0.2.4:3000/setup?token={token}"))
    );
    let public = SetupState::new(
        &GithubConfig::default(),
        Some("https://bot.example.com/".into()),
        "/webhook",
    )
    .unwrap();
    let link = public.setup_link("0.0.0.0:3000".parse().unwrap()).unwrap();
    assert!(
        link.starts_with("https://bot.example.com/setup?token="),
        "{link}"
    );
    assert_ne!(
        public.setup_token(),
        setup.setup_token(),
        "drawn at each start"
    );

    let token_mode = GithubConfig {
        token: Some(crate::config::Secret::new("ghp_x")),
        ..GithubConfig::default()
    };
    let token_mode = SetupState::new(&token_mode, None, "/webhook").unwrap();
    assert_eq!(token_mode.credentials, Credentials::Token);
    assert_eq!(token_mode.setup_token(), None);
    assert_eq!(token_mode.setup_link("0.0.0.0:3000".parse().unwrap()), None);
}

#[test]
fn states_are_bound_to_their_browser_and_bounded() {
    let setup = SetupState::new(&GithubConfig::default(), None, "/webhook").unwrap();
    let mine = setup.admit(None).unwrap();
    let other = setup.admit(None).unwrap();
    let state = setup.issue_state(&mine).unwrap().unwrap();
    assert!(!setup.take_state(Some(&other), &state), "another browser");
    assert!(!setup.take_state(None, &state), "no cookie");
    assert!(setup.take_state(Some(&mine), &state));
    assert!(!setup.take_state(Some(&mine), &state), "used up");

    let states: Vec<String> = (0..10)
        .map(|_| setup.issue_state(&mine).unwrap().unwrap())
        .collect();
    assert!(
        !setup.take_state(Some(&mine), &states[0]),
        "the oldest gave way"
    );
    assert!(setup.take_state(Some(&mine), &states[9]));
    let admitted = setup.browsers().len();
    assert_eq!(admitted, 2);
    for _ in 0..3 * MAX_BROWSERS {
        setup.admit(None).unwrap();
    }
    assert_eq!(setup.browsers().len(), MAX_BROWSERS);
    assert_eq!(setup.admit(None).unwrap().len(), 32);
}

#[test]
fn the_credentials_file_is_replaced_whole_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data/github-app.yaml");
    let conversion: AppRegistration = serde_json::from_value(serde_json::json!({
        "id": 7, "slug": "bot", "pem": "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n",
        "webhook_secret": "whsec", "html_url": "https://github.com/apps/bot",
        "client_id": "Iv1.bot", "client_secret": "oauth-secret",
    }))
    .unwrap();
    write_app_file(&file, &conversion).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# Written by codegen-orchestrator's /setup"));
    assert!(text.contains("app_id: 7") && text.contains("webhook_secret: whsec"));
    assert!(text.contains("client_id: Iv1.bot") && text.contains("client_secret: oauth-secret"));
    let names: Vec<String> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["github-app.yaml"], "no temporary file left behind");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}

#[test]
fn cookies_are_read_among_others() {
    let mut headers = HeaderMap::new();
    headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
    headers.append(
        header::COOKIE,
        HeaderValue::from_static("x=y;codegen_orchestrator_setup=abc123 ; z=0"),
    );
    assert_eq!(browser_cookie(&headers), Some("abc123"));
    assert_eq!(browser_cookie(&HeaderMap::new()), None);
    let cookie = admission_cookie("abc", true).unwrap();
    assert_eq!(
        cookie,
        "codegen_orchestrator_setup=abc; Path=/setup; Max-Age=3600; HttpOnly; SameSite=Lax; Secure"
    );
    let cookie = admission_cookie("abc", false).unwrap();
    assert!(!cookie.to_str().unwrap().contains("Secure"));
}

// Every page, as the user reads it.

#[test]
fn page_registration_for_a_personal_account() {
    insta::assert_snapshot!(pages::registration(&pages::Registration {
        organisation: None,
        action: "https://github.com/settings/apps/new?state=0123abcd",
        manifest: r#"{"name":"codegen-orchestrator"}"#,
        hook: "https://bot.example.com/webhook",
        unreachable: None,
        app_file: "data/github-app.yaml",
    }));
}

#[test]
fn page_registration_for_an_organisation_at_a_loopback_address() {
    insta::assert_snapshot!(pages::registration(&pages::Registration {
        organisation: Some("acme"),
        action: "https://github.com/organizations/acme/settings/apps/new?state=0123abcd",
        manifest: r#"{"name":"codegen-orchestrator"}"#,
        hook: "http://127.0.0.1:3000/webhook",
        unreachable: Some(&Unreachable::Loopback("127.0.0.1".into())),
        app_file: "data/github-app.yaml",
    }));
}

#[test]
fn page_unreachable_private_and_local_names() {
    for (name, why) in [
        ("private", Unreachable::Private("10.0.0.5".into())),
        ("local_name", Unreachable::LocalName("devbox".into())),
    ] {
        let page = pages::registration(&pages::Registration {
            organisation: None,
            action: "https://github.com/settings/apps/new?state=0123abcd",
            manifest: "{}",
            hook: "http://host/webhook",
            unreachable: Some(&why),
            app_file: "data/github-app.yaml",
        });
        let warning = &page[page.find("<p id=\"unreachable\"").unwrap()..];
        let warning = &warning[..warning.find("</p>").unwrap() + 4];
        insta::assert_snapshot!(format!("page_unreachable_{name}"), warning);
    }
}

#[test]
fn page_app_configured() {
    insta::assert_snapshot!(
        "page_app_configured_with_its_installation_page",
        pages::app_configured(&InstallLink::Page(
            "https://github.com/apps/codegen-orchestrator-acme/installations/new".into()
        ))
    );
    insta::assert_snapshot!(
        "page_app_configured_when_github_did_not_say_which",
        pages::app_configured(&InstallLink::AppsList(
            "https://github.com/settings/apps".into()
        ))
    );
}

#[test]
fn page_saved_before_the_restart() {
    insta::assert_snapshot!(pages::saved(
        "data/github-app.yaml",
        Some("https://github.com/apps/codegen-orchestrator-acme/installations/new")
    ));
}

#[test]
fn page_app_created() {
    insta::assert_snapshot!(pages::app_created(&pages::Created {
        name: "codegen-orchestrator-acme",
        id: 424242,
        app_file: "data/github-app.yaml",
        install: "https://github.com/apps/codegen-orchestrator-acme/installations/new",
    }));
}

#[test]
fn page_refusals() {
    let refusals = [
        ("token_mode", SetupRefusal::TokenMode),
        ("link_needed", SetupRefusal::LinkNeeded),
        ("wrong_token", SetupRefusal::WrongToken),
        (
            "invalid_organisation",
            SetupRefusal::InvalidOrganisation("ac<me>".into()),
        ),
        ("no_code", SetupRefusal::NoCode),
        ("not_started_here", SetupRefusal::NotStartedHere),
        ("already_registered", SetupRefusal::AlreadyRegistered),
        ("in_progress", SetupRefusal::InProgress),
        (
            "code_rejected",
            SetupRefusal::CodeRejected("GitHub answered 404 Not Found".into()),
        ),
        (
            "cannot_save",
            SetupRefusal::CannotSave(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "Permission denied (os error 13)",
            )),
        ),
        (
            "bad_manifest",
            SetupRefusal::BadManifest("invalid type".into()),
        ),
        (
            "no_randomness",
            SetupRefusal::NoRandomness(io::Error::other("getrandom failed")),
        ),
    ];
    for (name, refusal) in refusals {
        let page = pages::refusal(&refusal, "data/github-app.yaml");
        assert!(!page.contains('`'), "{name}: no Markdown on a web page");
        insta::assert_snapshot!(format!("page_refusal_{name}"), page);
    }
}
