//! End-to-end: the web console in a real headless Debian `chromium` (through `chromedriver`)
//! against `daas up` and a real `daas agent`. The admin signs in with the keyboard; the page
//! shows the node and a pod with its phase, drops the pod when kubectl deletes it (watch, no
//! reload), shows the PCRs `/api/v1/health` reports, fits a 375 px phone screen, and a user-tier
//! staker sees only its own namespace. The data API refuses anonymous and wrong credentials with
//! 401 and a user-tier staker's node view with 403. Needs root (the agent) and the Debian
//! packages chromium and chromium-driver.

use crate::common;

use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::curl::{self, headers, sleeping_busybox_pod as pod};
use common::webdriver::{artifacts_dir, Browser};
use common::{daas_ok, Cluster};
use serde_json::{json, Value};

/// GET `url` + `path` with an optional bearer token: (status, JSON body).
fn get(url: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let (code, body) = curl::get(&format!("{url}{path}"), token);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn console_in_headless_chromium() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let node = "console-1";
    let a = start_agent(&c, node, 31);
    wait_node_ready(&c, &a, node);
    let url = c.server_url();
    let admin = std::fs::read_to_string(c.data_dir().join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let chain = c.chain_url();

    // --- the data API as an adversary sees it
    for p in [
        "/api/v1/console/nodes",
        "/api/v1/console/ledger-events",
        "/api/v1/console/attestation",
    ] {
        let (code, body) = get(&url, p, None);
        assert_eq!(code, 401, "{p} anonymous: {body}");
        assert_eq!(body["kind"], "Status", "{body}");
        assert_eq!(body["reason"], "Unauthorized", "{body}");
        let (code, _) = get(&url, p, Some("not-a-token"));
        assert_eq!(code, 401, "{p} with a wrong token");
        let (code, body) = get(&url, p, Some(&admin));
        assert_eq!(code, 200, "{p} as admin: {body}");
    }
    let h = headers(&format!("{url}/console/"));
    assert!(
        h.contains("content-security-policy: default-src 'self'"),
        "{h}"
    );
    assert!(h.contains("x-content-type-options: nosniff"), "{h}");
    assert!(h.contains("referrer-policy: no-referrer"), "{h}");
    assert!(!h.contains("unsafe-inline"), "{h}");

    // A user-tier staker: its own namespace, no nodes; the public attestation.
    let (key, alice_addr) = c.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let alice = daas_ok(&[
        "token",
        "--chain",
        &chain,
        "--key",
        key.to_str().unwrap(),
        "--audience",
        &c.audience(),
    ])
    .trim()
    .to_string();
    let (code, body) = get(&url, "/api/v1/console/nodes", Some(&alice));
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden", "{body}");
    let (code, _) = get(&url, "/api/v1/console/attestation", Some(&alice));
    assert_eq!(code, 200);
    let (kc, out) = c.join(&chain, &key);
    let alice_ns = common::joined_namespace(&out);
    // She funds her escrow: the console's ledger events show the deposit.
    daas_ok(&[
        "deposit",
        "--chain",
        &chain,
        "--key",
        key.to_str().unwrap(),
        "--amount",
        "7000",
    ]);
    // Alice's first request creates her namespace.
    let created = c.kubectl_as(&kc, &["create", "configmap", "alice-cm", "-n", &alice_ns]);
    assert!(created.status.success(), "{}", common::stderr(&created));

    // --- a pod of the admin's
    c.ok_stdin(&["create", "-f", "-"], &pod("web", "default"));
    wait_for(
        &c,
        "pod web Running",
        Duration::from_secs(90),
        || c.ok(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]) == "Running",
        &a,
    );

    // --- the admin signs in with the keyboard
    let master_port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("master port");
    let b = Browser::start(&[master_port]);
    b.goto(&format!("{url}/console/"));
    b.wait_js(
        "the login field to have the focus",
        Duration::from_secs(20),
        "return document.activeElement && document.activeElement.id === 'token'",
        json!([]),
    );
    // Tab reaches the Sign in button, Shift+Tab back to the field (keyboard-operable form).
    b.keys("\u{E004}");
    assert_eq!(
        b.js("return document.activeElement.textContent", json!([])),
        "Sign in"
    );
    b.cmd(
        "POST",
        "/actions",
        Some(json!({"actions": [{"type": "key", "id": "kb", "actions": [
            {"type": "keyDown", "value": "\u{E008}"}, {"type": "keyDown", "value": "\u{E004}"},
            {"type": "keyUp", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E008}"}]}]})),
    );
    assert_eq!(b.js("return document.activeElement.id", json!([])), "token");
    // A wrong credential is refused on the page.
    b.keys("wrong-token\u{E007}");
    b.wait_js(
        "the refusal of a wrong credential",
        Duration::from_secs(20),
        "return document.getElementById('login-error').textContent.includes('401')",
        json!([]),
    );
    // The field has the focus again, its text selected: typing replaces it.
    assert_eq!(b.js("return document.activeElement.id", json!([])), "token");
    b.keys(&format!("{admin}\u{E007}"));
    b.wait_js(
        "the node row",
        Duration::from_secs(30),
        "const r = document.querySelector(`tr[data-node=\"${arguments[0]}\"]`); return !!r && r.textContent.includes('Ready') && r.textContent.includes('Active');",
        json!([node]),
    );
    // The credential is in session storage, never in the URL.
    assert_eq!(
        b.js(
            "return location.href.includes(arguments[0])",
            json!([admin])
        ),
        false
    );
    b.wait_js(
        "pod web Running",
        Duration::from_secs(30),
        "const r = document.querySelector(`tr[data-pod=\"${arguments[0]}\"] td.phase`); return !!r && r.textContent === 'Running';",
        json!(["default/web"]),
    );
    // The pod is listed under its node.
    assert_eq!(
        b.js(
            "const r = document.querySelector('tr[data-pod=\"default/web\"]'); return r.closest('[data-group]').dataset.group",
            json!([])
        ),
        node
    );
    // The heartbeat age and the stake of the node's operator.
    let row = b.js(
        "return document.querySelector(`tr[data-node=\"${arguments[0]}\"]`).innerText",
        json!([node]),
    );
    let row = row.as_str().unwrap_or_default().to_string();
    assert!(row.contains("ago") && row.contains("MIST"), "{row}");
    // The operator's earnings in the market (nothing settled yet).
    assert!(row.contains("0 MIST (0 earned)"), "{row}");

    // The attestation panel shows the PCRs the master reports in /api/v1/health.
    let (_, health) = get(&url, "/api/v1/health", None);
    let pcrs = health["enclave"]["pcrs"].as_object().expect("pcrs").clone();
    assert!(!pcrs.is_empty());
    b.wait_js(
        "the attestation panel",
        Duration::from_secs(20),
        "return !!document.querySelector('dd[data-pcr=\"0\"]') && document.getElementById('att-summary').textContent.length > 0",
        json!([]),
    );
    for (i, v) in &pcrs {
        assert_eq!(
            b.js(
                "const d = document.querySelector(`dd[data-pcr=\"${arguments[0]}\"]`); return d ? d.textContent : null",
                json!([i])
            ),
            *v,
            "PCR{i}"
        );
    }
    assert_eq!(
        b.js(
            "return document.getElementById('att-summary').textContent",
            json!([])
        ),
        "verified against the ledger"
    );
    // The ledger events show the node's stake.
    b.wait_js(
        "the node's Staked event from the ledger's event log",
        Duration::from_secs(20),
        "return [...document.querySelectorAll('tr[data-event=\"Staked\"]')].some((r) => r.textContent.includes(arguments[0]) && !!r.querySelector('time[datetime]'))",
        json!([node]),
    );

    // ... and the user's escrow deposit.
    b.wait_js(
        "alice's Deposited event from the ledger's event log",
        Duration::from_secs(20),
        "return [...document.querySelectorAll('tr[data-event=\"Deposited\"]')].some((r) => [...r.querySelectorAll('[title]')].some((t) => t.title === arguments[0]) && r.textContent.includes('7,000'))",
        json!([alice_addr]),
    );

    let art = artifacts_dir();
    b.screenshot(&art.join("console.png"));

    // --- live: the pod disappears when kubectl deletes it, without a reload.
    b.js("window.__noReload = 42", json!([]));
    c.ok(&["delete", "pod", "web", "--wait=false"]);
    b.wait_js(
        "the deleted pod to disappear",
        Duration::from_secs(60),
        "return !document.querySelector('tr[data-pod=\"default/web\"]')",
        json!([]),
    );
    assert_eq!(b.js("return window.__noReload", json!([])), 42);

    // --- a phone: 375 px wide, no horizontal scrolling of the page.
    b.window(375, 812);
    b.wait_js(
        "the 375 px layout",
        Duration::from_secs(10),
        "return window.innerWidth <= 400",
        json!([]),
    );
    let fit = b.js(
        "return [document.documentElement.scrollWidth, window.innerWidth]",
        json!([]),
    );
    let (sw, iw) = (fit[0].as_i64().unwrap(), fit[1].as_i64().unwrap());
    assert!(sw <= iw, "page scrolls horizontally at 375 px: {sw} > {iw}");
    b.screenshot(&art.join("console-375.png"));
    // Watches that broke and were resumed (Chromium drops requests in flight when the host's
    // addresses change, as they do when the agent removes the pod's veth).
    eprintln!(
        "watch interruptions: {}",
        b.js("return window.daasWatchErrors || []", json!([]))
    );
    b.window(1280, 1000);

    // --- alice: only her namespace; the nodes panel says it is forbidden.
    c.ok_stdin(&["create", "-f", "-"], &pod("admin-secret", "default"));
    b.js("document.getElementById('logout').click()", json!([]));
    b.wait_js(
        "the login form again",
        Duration::from_secs(10),
        "return document.activeElement && document.activeElement.id === 'token'",
        json!([]),
    );
    assert_eq!(
        b.js("return sessionStorage.length", json!([])),
        0,
        "signing out forgets the credential"
    );
    b.keys(&format!("{alice}\u{E007}"));
    b.wait_js(
        "alice's view",
        Duration::from_secs(30),
        "return !document.getElementById('nodes-forbidden').hidden && document.getElementById('pods-live').textContent.includes(arguments[0])",
        json!([alice_ns]),
    );
    let text = b
        .js("return document.body.innerText", json!([]))
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("Forbidden"), "{text}");
    assert!(!text.contains("admin-secret"), "{text}");
    assert_eq!(
        b.js(
            "return document.querySelectorAll('tr[data-pod^=\"default/\"]').length",
            json!([])
        ),
        0
    );
    assert_eq!(
        b.js(
            "return document.querySelectorAll('tr[data-node]').length",
            json!([])
        ),
        0
    );
    b.screenshot(&art.join("console-user.png"));
}
