//! Registry credentials from a pod's `imagePullSecrets`, matched to images as upstream's
//! credentialprovider keyring does.
//!
//! Secrets of type `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`: `{"auths": {server:
//! entry}}`) and `kubernetes.io/dockercfg` (`.dockercfg`: `{server: entry}`) are parsed into a
//! [`PullKeyring`]; an entry's `auth` is base64 `user:password` and overrides `username`/`password`.
//! A server key may carry a scheme (`https://`, `http://`, stripped), a `/v1/` or `/v2/` suffix
//! (the host alone), a path (longest match first) and `*` globs per host label (`*.example.com`).
//! Credentials live only in memory: [`fmt::Debug`] shows the registries, never a user name,
//! password or token, and parse errors carry no secret bytes.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use serde::Deserialize;

/// Secret type of a `~/.docker/config.json` secret.
pub const SECRET_TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// Key of [`SECRET_TYPE_DOCKER_CONFIG_JSON`] secrets.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// Secret type of a legacy `~/.dockercfg` secret.
pub const SECRET_TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
/// Key of [`SECRET_TYPE_DOCKERCFG`] secrets.
pub const DOCKERCFG_KEY: &str = ".dockercfg";

const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

/// Why a pull secret's credentials were not usable. No variant carries secret content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PullSecretError {
    #[error("secret of type {secret_type} has no {key} key")]
    MissingKey {
        secret_type: String,
        key: &'static str,
    },
    #[error(
        "{key} is not valid docker config JSON ({category} error at line {line} column {column})"
    )]
    Json {
        key: &'static str,
        category: &'static str,
        line: usize,
        column: usize,
    },
    #[error("entry for registry {server:?}: unable to parse auth field, must be formatted as base64(username:password)")]
    Auth { server: String },
    #[error("entry for registry {server:?} is not a valid registry address")]
    Server { server: String },
}

/// One set of credentials for a registry (kept only in memory).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistryCredential {
    /// The server key as written in the secret.
    pub server: String,
    pub username: String,
    pub password: String,
    pub identity_token: String,
}

impl fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Credentials by registry key (`host[:port][/path]`), matched to images by [`PullKeyring::lookup`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PullKeyring {
    creds: BTreeMap<String, Vec<RegistryCredential>>,
}

impl fmt::Debug for PullKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullKeyring")
            .field("registries", &self.creds.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

fn json_error(key: &'static str, e: serde_json::Error) -> PullSecretError {
    use serde_json::error::Category;
    PullSecretError::Json {
        key,
        category: match e.classify() {
            Category::Io => "io",
            Category::Syntax => "syntax",
            Category::Data => "data",
            Category::Eof => "eof",
        },
        line: e.line(),
        column: e.column(),
    }
}

/// The keyring key of a server entry: scheme stripped, `/v1/`/`/v2/` dropped, host plus any path.
fn registry_key(server: &str) -> Option<String> {
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let (host, path) = match s.find('/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let path = match path {
        p if p.starts_with("/v1/") || p.starts_with("/v2/") => &p[3..],
        p => p,
    };
    if path.is_empty() || path == "/" {
        Some(host.to_string())
    } else {
        Some(format!("{host}{path}"))
    }
}

fn credential(server: &str, e: Entry) -> Result<RegistryCredential, PullSecretError> {
    let (mut username, mut password) = (e.username, e.password);
    if !e.auth.is_empty() {
        let bad = || PullSecretError::Auth {
            server: server.to_string(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(e.auth.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
        username = u.to_string();
        password = p.trim_matches('\0').to_string();
    }
    Ok(RegistryCredential {
        server: server.to_string(),
        username,
        password,
        identity_token: e.identity_token,
    })
}

impl PullKeyring {
    pub fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }

    /// Adds the credentials of one secret (its `type` and decoded `data`). Returns how many
    /// entries were added: 0 for a secret of another type. On error nothing of this secret is
    /// added.
    pub fn add_secret(
        &mut self,
        secret_type: &str,
        data: &BTreeMap<String, Vec<u8>>,
    ) -> Result<usize, PullSecretError> {
        let entries: BTreeMap<String, Entry> = match secret_type {
            SECRET_TYPE_DOCKER_CONFIG_JSON => {
                let key = DOCKER_CONFIG_JSON_KEY;
                let raw = data.get(key).filter(|b| !b.is_empty()).ok_or_else(|| {
                    PullSecretError::MissingKey {
                        secret_type: secret_type.to_string(),
                        key,
                    }
                })?;
                serde_json::from_slice::<ConfigJson>(raw)
                    .map_err(|e| json_error(key, e))?
                    .auths
            }
            SECRET_TYPE_DOCKERCFG => {
                let key = DOCKERCFG_KEY;
                let raw = data.get(key).filter(|b| !b.is_empty()).ok_or_else(|| {
                    PullSecretError::MissingKey {
                        secret_type: secret_type.to_string(),
                        key,
                    }
                })?;
                serde_json::from_slice(raw).map_err(|e| json_error(key, e))?
            }
            _ => return Ok(0),
        };
        let mut parsed = Vec::with_capacity(entries.len());
        for (server, e) in entries {
            let key = registry_key(&server).ok_or_else(|| PullSecretError::Server {
                server: server.clone(),
            })?;
            parsed.push((key, credential(&server, e)?));
        }
        let n = parsed.len();
        for (key, c) in parsed {
            self.creds.entry(key).or_default().push(c);
        }
        Ok(n)
    }

    /// The credentials to try for `image`, most specific registry key first; empty: pull
    /// anonymously.
    pub fn lookup(&self, image: &str) -> Vec<&RegistryCredential> {
        let repo = normalized_repository(image);
        // Reverse order puts `host/longer/path` before `host/path` before `host`.
        let mut out: Vec<&RegistryCredential> = self
            .creds
            .iter()
            .rev()
            .filter(|(k, _)| urls_match(k, &repo))
            .flat_map(|(_, v)| v)
            .collect();
        if out.is_empty() && is_default_registry(&repo) {
            if let Some(v) = self.creds.get(DEFAULT_REGISTRY_HOST) {
                out.extend(v);
            }
        }
        out
    }
}

/// `image` without tag or digest, with Docker Hub's implicit `docker.io/` and `library/`.
pub fn normalized_repository(image: &str) -> String {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let name = match name[slash..].find(':') {
        Some(i) => &name[..slash + i],
        None => name,
    };
    match name.split_once('/') {
        None => format!("docker.io/library/{name}"),
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => name.to_string(),
        Some(_) => format!("docker.io/{name}"),
    }
}

fn is_default_registry(repo: &str) -> bool {
    matches!(
        repo.split_once('/'),
        Some(("docker.io" | "index.docker.io", _))
    )
}

fn split_host(s: &str) -> (&str, &str, &str) {
    let (hostport, path) = match s.find('/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p, path),
        _ => (hostport, "", path),
    }
}

/// Whether the registry key `glob` (globs in host labels) covers the repository `target`.
fn urls_match(glob: &str, target: &str) -> bool {
    let (ghost, gport, gpath) = split_host(glob);
    let (thost, tport, tpath) = split_host(target);
    if gport != tport || !tpath.starts_with(gpath) {
        return false;
    }
    let (glabels, tlabels): (Vec<&str>, Vec<&str>) =
        (ghost.split('.').collect(), thost.split('.').collect());
    glabels.len() == tlabels.len()
        && glabels
            .iter()
            .zip(&tlabels)
            .all(|(g, t)| glob_match(g.as_bytes(), t.as_bytes()))
}

/// `*` (any run) and `?` (one byte) within a host label.
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob_match(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob_match(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob_match(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn data(key: &str, v: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(key.to_string(), v.as_bytes().to_vec())])
    }

    fn json_secret(v: serde_json::Value) -> BTreeMap<String, Vec<u8>> {
        data(DOCKER_CONFIG_JSON_KEY, &v.to_string())
    }

    fn users(k: &PullKeyring, image: &str) -> Vec<String> {
        k.lookup(image).iter().map(|c| c.username.clone()).collect()
    }

    #[test]
    fn dockerconfigjson_auth_overrides_username_and_password() {
        let mut k = PullKeyring::default();
        let n = k
            .add_secret(
                SECRET_TYPE_DOCKER_CONFIG_JSON,
                &json_secret(serde_json::json!({"auths": {
                    "https://reg.example.com:5000/v2/": {"username": "ignored", "password": "x", "auth": b64("alice:s3:cret")},
                    "tok.example.com": {"identitytoken": "tkn"},
                }})),
            )
            .unwrap();
        assert_eq!(n, 2);
        let c = k.lookup("reg.example.com:5000/team/app:1");
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].username.as_str(), c[0].password.as_str()),
            ("alice", "s3:cret")
        );
        assert_eq!(c[0].server, "https://reg.example.com:5000/v2/");
        assert_eq!(k.lookup("tok.example.com/a")[0].identity_token, "tkn");
    }

    #[test]
    fn dockercfg_is_a_bare_map() {
        let mut k = PullKeyring::default();
        let n = k
            .add_secret(
                SECRET_TYPE_DOCKERCFG,
                &data(DOCKERCFG_KEY, &serde_json::json!({"quay.io": {"username": "bob", "password": "pw", "email": "b@x"}}).to_string()),
            )
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(users(&k, "quay.io/coreos/etcd@sha256:abcd"), ["bob"]);
    }

    #[test]
    fn bad_secrets_are_refused_without_leaking_content() {
        let mut k = PullKeyring::default();
        let err = k
            .add_secret(
                SECRET_TYPE_DOCKER_CONFIG_JSON,
                &data(DOCKER_CONFIG_JSON_KEY, r#"{"auths": "hunter2"}"#),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                PullSecretError::Json {
                    category: "data",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = k
            .add_secret(SECRET_TYPE_DOCKERCFG, &data(DOCKERCFG_KEY, "{not json"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                PullSecretError::Json {
                    category: "syntax",
                    ..
                }
            ),
            "{err:?}"
        );
        // Bad base64, and base64 without a colon: the whole secret is skipped.
        for auth in ["%%%notbase64", &b64("nocolon")] {
            let err = k
                .add_secret(
                    SECRET_TYPE_DOCKER_CONFIG_JSON,
                    &json_secret(serde_json::json!({"auths": {
                        "good.example.com": {"username": "u", "password": "p"},
                        "bad.example.com": {"auth": auth}}})),
                )
                .unwrap_err();
            assert_eq!(
                err,
                PullSecretError::Auth {
                    server: "bad.example.com".into()
                }
            );
            assert!(err.to_string().contains("base64(username:password)"));
        }
        let err = k
            .add_secret(SECRET_TYPE_DOCKERCFG, &BTreeMap::new())
            .unwrap_err();
        assert!(matches!(
            err,
            PullSecretError::MissingKey {
                key: DOCKERCFG_KEY,
                ..
            }
        ));
        // Another type (even with the key) holds no pull credentials.
        assert_eq!(k.add_secret("Opaque", &data(DOCKERCFG_KEY, "{}")), Ok(0));
        assert!(k.is_empty(), "{k:?}");
    }

    #[test]
    fn debug_shows_no_credentials() {
        let mut k = PullKeyring::default();
        k.add_secret(
            SECRET_TYPE_DOCKER_CONFIG_JSON,
            &json_secret(serde_json::json!({"auths": {"r.example.com": {"username": "alice", "password": "hunter2", "identitytoken": "tok9"}}})),
        )
        .unwrap();
        for s in [
            format!("{k:?}"),
            format!("{:?}", k.lookup("r.example.com/x")),
        ] {
            assert!(s.contains("r.example.com"), "{s}");
            for secret in ["alice", "hunter2", "tok9"] {
                assert!(!s.contains(secret), "{s}");
            }
        }
    }

    fn keyring(entries: &[(&str, &str)]) -> PullKeyring {
        let mut k = PullKeyring::default();
        let auths: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|(server, user)| {
                (
                    server.to_string(),
                    serde_json::json!({"username": user, "password": "p"}),
                )
            })
            .collect();
        k.add_secret(
            SECRET_TYPE_DOCKER_CONFIG_JSON,
            &json_secret(serde_json::json!({ "auths": auths })),
        )
        .unwrap();
        k
    }

    #[test]
    fn matching_by_host_port_and_longest_path() {
        let k = keyring(&[
            ("quay.io", "host"),
            ("http://quay.io/coreos", "ns"),
            ("quay.io/coreos/etcd", "repo"),
            ("127.0.0.1:5000", "local"),
        ]);
        assert_eq!(users(&k, "quay.io/coreos/etcd:v3"), ["repo", "ns", "host"]);
        assert_eq!(users(&k, "quay.io/coreos/other"), ["ns", "host"]);
        assert_eq!(users(&k, "quay.io/other/x"), ["host"]);
        assert_eq!(users(&k, "127.0.0.1:5000/a/b:1"), ["local"]);
        // Another port, another host, a host with more labels: no match (anonymous pull).
        assert!(k.lookup("127.0.0.1:5001/a/b").is_empty());
        assert!(k.lookup("127.0.0.1/a/b").is_empty());
        assert!(k.lookup("gcr.io/x").is_empty());
        assert!(k.lookup("sub.quay.io/x").is_empty());
        assert!(k.lookup("busybox").is_empty());
    }

    #[test]
    fn matching_globs_and_docker_hub() {
        let k = keyring(&[
            ("*.example.com", "glob"),
            ("https://index.docker.io/v1/", "hub"),
        ]);
        assert_eq!(users(&k, "a.example.com/x"), ["glob"]);
        assert!(k.lookup("a.b.example.com/x").is_empty());
        assert!(k.lookup("example.com/x").is_empty());
        for hub in [
            "busybox",
            "library/busybox:1",
            "docker.io/library/busybox",
            "index.docker.io/u/app",
            "user/app@sha256:00",
        ] {
            assert_eq!(users(&k, hub), ["hub"], "{hub}");
        }
        assert!(k.lookup("localhost/app").is_empty());
        let k = keyring(&[("docker.io", "plain")]);
        assert_eq!(users(&k, "busybox"), ["plain"]);
    }

    #[test]
    fn normalizes_repositories() {
        assert_eq!(
            normalized_repository("busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(
            normalized_repository("busybox:1.36"),
            "docker.io/library/busybox"
        );
        assert_eq!(normalized_repository("u/app@sha256:ab"), "docker.io/u/app");
        assert_eq!(
            normalized_repository("localhost:5000/a:1"),
            "localhost:5000/a"
        );
        assert_eq!(normalized_repository("localhost/a"), "localhost/a");
        assert_eq!(normalized_repository("reg.io/a/b:t"), "reg.io/a/b");
    }
}
