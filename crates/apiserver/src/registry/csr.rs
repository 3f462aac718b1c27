//! CertificateSigningRequests (pkg/registry/certificates/certificates/strategy.go,
//! pkg/apis/certificates/validation) and the signing of approved requests for the
//! `kubernetes.io/kube-apiserver-client{,-kubelet}` signers (pkg/controller/certificates/signer).
//!
//! The main resource never changes `spec` or `status`; `/approval` writes only the conditions;
//! `/status` writes the conditions (keeping Approved/Denied as they were) and the certificate.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use k8s_openapi::api::certificates::v1 as certificates;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};
use serde_json::{json, Value};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use super::{decode_as, Cause, Column, Strategy};
use crate::authz::GROUP_MASTERS;
use crate::error::ApiError;
use crate::resources::{ResourceDef, Subresource};
use crate::server::User;
use crate::table::s;

#[derive(Debug)]
pub struct CsrStrategy;

/// The REST shape of CertificateSigningRequests, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "certificates.k8s.io",
    version: "v1",
    kind: "CertificateSigningRequest",
    list_kind: "CertificateSigningRequestList",
    plural: "certificatesigningrequests",
    singular: "certificatesigningrequest",
    namespaced: false,
    short_names: &["csr"],
    categories: &[],
    subresources: &[Subresource::Status, Subresource::Approval],
    has_spec: true,
    strategy: &CsrStrategy,
};

pub const APPROVED: &str = "Approved";
pub const DENIED: &str = "Denied";
pub const FAILED: &str = "Failed";
pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Longest certificate the built-in signers issue (upstream's `--cluster-signing-duration`).
pub const MAX_SIGNING_SECONDS: i64 = 365 * 24 * 3600;
/// Shortest `spec.expirationSeconds` a request may ask for.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The key usages a request may name (certificates.KeyUsage).
pub const USAGES: [&str; 23] = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// Why a request cannot be parsed, verified or signed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotCsrPem,
    #[error("{0}")]
    Parse(String),
    #[error("x509: ECDSA verification failure")]
    BadSignature,
    #[error("{0}")]
    Signer(String),
    #[error("invalid signing CA: {0}")]
    Ca(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

fn pem_blocks(data: &[u8]) -> Vec<::pem::Pem> {
    ::pem::parse_many(data).unwrap_or_default()
}

/// The DER of the first `CERTIFICATE REQUEST` PEM block of `data`, with its signature checked.
pub fn parse_request(data: &[u8]) -> Result<Vec<u8>, CsrError> {
    let block = pem_blocks(data)
        .into_iter()
        .next()
        .filter(|p| p.tag() == "CERTIFICATE REQUEST")
        .ok_or(CsrError::NotCsrPem)?;
    let der = block.contents().to_vec();
    let (_, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| CsrError::Parse(format!("asn1: {e}")))?;
    csr.verify_signature().map_err(|_| CsrError::BadSignature)?;
    Ok(der)
}

/// Upstream `validateCertificate`: one or more `CERTIFICATE` PEM blocks, each a parseable certificate.
fn certificate_errors(data: &[u8]) -> Option<String> {
    let blocks = pem_blocks(data);
    if blocks.is_empty() {
        return Some("must contain at least one CERTIFICATE PEM block".into());
    }
    for b in blocks {
        if b.tag() != "CERTIFICATE" {
            return Some(format!(
                "only CERTIFICATE PEM blocks are allowed, found \"{}\"",
                b.tag()
            ));
        }
        if b.headers().iter().next().is_some() {
            return Some("no PEM block headers are permitted".into());
        }
        if let Err(e) = X509Certificate::from_der(b.contents()) {
            return Some(format!("asn1: {e}"));
        }
    }
    None
}

fn bytes_of(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .unwrap_or_default()
}

fn is_qualified_signer(name: &str) -> bool {
    let Some((domain, path)) = name.split_once('/') else {
        return false;
    };
    super::is_dns_subdomain(domain)
        && !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

fn conditions(obj: &Value) -> Vec<Value> {
    obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_condition(obj: &Value, ty: &str) -> bool {
    conditions(obj).iter().any(|c| c["type"] == ty)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Upstream `populateConditionTimestamps`: new conditions get lastUpdateTime (and
/// lastTransitionTime, kept from the old instance when the status did not change).
fn populate_timestamps(new: &mut Value, old: Option<&Value>) {
    let old_conds = old.map(conditions).unwrap_or_default();
    let ts = now();
    if let Some(cs) = new["status"]["conditions"].as_array_mut() {
        for c in cs {
            if c["lastUpdateTime"].is_null() {
                c["lastUpdateTime"] = json!(ts);
            }
            if c["lastTransitionTime"].is_null() {
                let prev = old_conds.iter().find(|o| o["type"] == c["type"]);
                c["lastTransitionTime"] = match prev {
                    Some(p) if p["status"] == c["status"] && !p["lastTransitionTime"].is_null() => {
                        p["lastTransitionTime"].clone()
                    }
                    _ => json!(ts),
                };
            }
        }
    }
}

/// Upstream `preserveConditionInstances`: conditions of `ty` are what `old` had, whatever `new` says.
/// As many instances on both sides: the old ones replace the new ones in place; otherwise the
/// new ones are dropped and the old ones appended.
fn preserve_conditions(new: &mut Value, old: &Value, ty: &str) {
    let mut out = conditions(new);
    let olds: Vec<Value> = conditions(old)
        .into_iter()
        .filter(|c| c["type"] == ty)
        .collect();
    let at: Vec<usize> = (0..out.len()).filter(|i| out[*i]["type"] == ty).collect();
    if at.len() == olds.len() {
        for (i, o) in at.into_iter().zip(olds) {
            out[i] = o;
        }
    } else {
        out.retain(|c| c["type"] != ty);
        out.extend(olds);
    }
    new["status"]["conditions"] = json!(out);
}

/// What an approval write stores: the old object with the new metadata and conditions.
pub fn prepare_approval_update(old: &Value, new: Value) -> Value {
    let mut out = old.clone();
    out["metadata"] = new["metadata"].clone();
    if !out["status"].is_object() {
        out["status"] = json!({});
    }
    out["status"]["conditions"] = new["status"]["conditions"].clone();
    populate_timestamps(&mut out, Some(old));
    out
}

/// Fill `spec.username`, `uid`, `groups` and `extra` from the creating user (upstream
/// PrepareForCreate), replacing whatever the request said.
pub fn stamp_requester(obj: &mut Value, user: Option<&User>) {
    if !obj["spec"].is_object() {
        return;
    }
    let spec = &mut obj["spec"];
    if let Some(m) = spec.as_object_mut() {
        for k in ["username", "uid", "groups", "extra"] {
            m.remove(k);
        }
    }
    if let Some(u) = user {
        spec["username"] = json!(u.name);
        spec["groups"] = json!(u.groups);
        if !u.uid.is_empty() {
            spec["uid"] = json!(u.uid);
        }
        if !u.extra.is_empty() {
            spec["extra"] = json!(u.extra);
        }
    }
}

fn forbidden(obj: &Value, why: &str) -> ApiError {
    let name = s(&obj["metadata"]["name"]);
    ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {why}",
        RESOURCE.qualified()
    ))
    .with_details(json!({"name": name, "group": RESOURCE.group, "kind": RESOURCE.plural}))
}

/// The subject organizations of the request in `csr` (none when it does not parse; validation
/// refuses such a request anyway).
fn requested_orgs(csr: &Value) -> Vec<String> {
    let Ok(der) = parse_request(&bytes_of(&csr["spec"]["request"])) else {
        return Vec::new();
    };
    let Ok((_, req)) = X509CertificationRequest::from_der(&der) else {
        return Vec::new();
    };
    req.certification_request_info
        .subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(String::from)
        .collect()
}

/// Upstream's CertificateSubjectRestriction admission: no one may ask the
/// `kubernetes.io/kube-apiserver-client` signer for a `system:masters` certificate.
pub fn restrict_subject(csr: &Value) -> Result<(), ApiError> {
    if csr["spec"]["signerName"].as_str() == Some(KUBE_APISERVER_CLIENT)
        && requested_orgs(csr).iter().any(|o| o == GROUP_MASTERS)
    {
        return Err(forbidden(
            csr,
            &format!(
                "use of {KUBE_APISERVER_CLIENT} signer with {GROUP_MASTERS} group is not allowed"
            ),
        ));
    }
    Ok(())
}

/// May `u` `verb` (approve, sign) requests of `signer`: `signers` named by the signer, or by its
/// domain wildcard `<domain>/*` (upstream's `isAuthorizedForSignerName`).
fn may_for_signer(policy: &crate::rbac::Policy, u: &User, verb: &str, signer: &str) -> bool {
    if crate::authz::is_master(u) {
        return true;
    }
    let ask = |name: String| crate::rbac::Attributes {
        verb: verb.into(),
        resource_request: true,
        group: RESOURCE.group.into(),
        resource: "signers".into(),
        name,
        ..Default::default()
    };
    policy.allows(u, &ask(signer.to_string()))
        || signer
            .split_once('/')
            .is_some_and(|(domain, _)| policy.allows(u, &ask(format!("{domain}/*"))))
}

/// Upstream's CertificateApproval and CertificateSigning admission: a write of
/// `certificatesigningrequests/approval` needs `approve` on the request's signer, and a change
/// of `status.certificate` needs `sign` on it.
pub async fn admit_write(
    ctx: &crate::handlers::Ctx,
    user: Option<&User>,
    subresource: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    let Some(u) = user else { return Ok(()) };
    let verb = match subresource {
        "approval" => "approve",
        "status" if old["status"]["certificate"] != new["status"]["certificate"] => "sign",
        _ => return Ok(()),
    };
    let signer = s(&new["spec"]["signerName"]);
    let (policy, _) = crate::rbac::Policy::load(ctx.store.as_ref()).await?;
    if may_for_signer(&policy, u, verb, &signer) {
        return Ok(());
    }
    Err(forbidden(
        new,
        &format!("user not permitted to {verb} requests with signerName {signer:?}"),
    ))
}

impl Strategy for CsrStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<certificates::CertificateSigningRequest>(obj)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.signerName"]
    }

    fn defaults(&self, obj: &mut Value) {
        if let Some(cs) = obj["status"]["conditions"].as_array_mut() {
            for c in cs {
                if c["status"].as_str().unwrap_or_default().is_empty() {
                    c["status"] = json!("True");
                }
            }
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        let request = bytes_of(&spec["request"]);
        if request.is_empty() {
            causes.push(("spec.request".into(), "Required value".into()));
        } else if let Err(e) = parse_request(&request) {
            causes.push((
                "spec.request".into(),
                format!("Invalid value: \"<{} bytes>\": {e}", request.len()),
            ));
        }
        match spec["signerName"].as_str().unwrap_or_default() {
            "" => causes.push(("spec.signerName".into(), "Required value".into())),
            n if !is_qualified_signer(n) => causes.push((
                "spec.signerName".into(),
                format!("Invalid value: {n:?}: must be a fully qualified domain and path of the form 'example.com/signer-name'"),
            )),
            _ => {}
        }
        let usages: Vec<&str> = spec["usages"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if usages.is_empty() {
            causes.push((
                "spec.usages".into(),
                "Required value: usages must be provided".into(),
            ));
        }
        for (i, u) in usages.iter().enumerate() {
            if !USAGES.contains(u) {
                let supported = USAGES
                    .iter()
                    .map(|x| format!("{x:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                causes.push((
                    format!("spec.usages[{i}]"),
                    format!("Unsupported value: {u:?}: supported values: {supported}"),
                ));
            } else if usages[..i].contains(u) {
                causes.push((
                    format!("spec.usages[{i}]"),
                    format!("Duplicate value: {u:?}"),
                ));
            }
        }
        if let Some(e) = spec["expirationSeconds"].as_i64() {
            if e < MIN_EXPIRATION_SECONDS {
                causes.push((
                    "spec.expirationSeconds".into(),
                    format!("Invalid value: {e}: may not specify a duration less than 600 seconds (10 minutes)"),
                ));
            }
        }
        let conds = conditions(obj);
        let mut seen: Vec<String> = Vec::new();
        for (i, c) in conds.iter().enumerate() {
            let path = format!("status.conditions[{i}]");
            let ty = c["type"].as_str().unwrap_or_default();
            let st = c["status"].as_str().unwrap_or_default();
            if ty.is_empty() {
                causes.push((format!("{path}.type"), "Required value".into()));
            }
            if [APPROVED, DENIED, FAILED].contains(&ty) {
                if seen.iter().any(|x| x == ty) {
                    causes.push((format!("{path}.type"), format!("Duplicate value: {ty:?}")));
                }
                seen.push(ty.to_string());
            }
            if [APPROVED, DENIED].contains(&ty) && st != "True" {
                causes.push((
                    format!("{path}.status"),
                    format!("Unsupported value: {st:?}: supported values: \"True\""),
                ));
            } else if !["True", "False", "Unknown"].contains(&st) {
                causes.push((
                    format!("{path}.status"),
                    format!("Unsupported value: {st:?}: supported values: \"False\", \"True\", \"Unknown\""),
                ));
            }
        }
        if seen.iter().any(|x| x == APPROVED) && seen.iter().any(|x| x == DENIED) {
            causes.push((
                "status.conditions".into(),
                "Invalid value: \"Approved\": Approved and Denied conditions are mutually exclusive"
                    .into(),
            ));
        }
        let cert = bytes_of(&obj["status"]["certificate"]);
        if !cert.is_empty() {
            if let Some(e) = certificate_errors(&cert) {
                causes.push((
                    "status.certificate".into(),
                    format!("Invalid value: \"<certificate data>\": {e}"),
                ));
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        if old["spec"] != new["spec"] {
            causes.push((
                "spec".into(),
                "Invalid value: \"<spec>\": field is immutable".into(),
            ));
        }
        let old_cert = &old["status"]["certificate"];
        if !bytes_of(old_cert).is_empty() && old_cert != &new["status"]["certificate"] {
            causes.push((
                "status.certificate".into(),
                "Forbidden: updates may not modify existing certificate content".into(),
            ));
        }
        for ty in [APPROVED, DENIED] {
            if has_condition(old, ty) && !has_condition(new, ty) {
                causes.push((
                    "status.conditions".into(),
                    format!("Forbidden: updates may not remove a condition of type {ty:?}"),
                ));
            }
        }
    }

    /// `/status`: old spec; new metadata, certificate and conditions, but the Approved and Denied
    /// conditions stay as they were (those belong to `/approval`).
    fn prepare_status_update(&self, old: &Value, new: Value) -> Value {
        let mut out = new;
        out["spec"] = old["spec"].clone();
        if !out["status"].is_object() {
            out["status"] = json!({});
        }
        preserve_conditions(&mut out, old, APPROVED);
        preserve_conditions(&mut out, old, DENIED);
        populate_timestamps(&mut out, Some(old));
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("Name", "name", 0),
            ("Age", "", 0),
            ("SignerName", "", 0),
            ("Requestor", "", 0),
            ("RequestedDuration", "", 0),
            ("Condition", "", 0),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, age) = super::name_and_age(o, now);
        let duration = match o["spec"]["expirationSeconds"].as_i64() {
            Some(secs) => crate::table::human_duration(secs),
            None => "<none>".to_string(),
        };
        let mut conds: Vec<String> = conditions(o)
            .iter()
            .filter(|c| c["status"] == "True")
            .map(|c| s(&c["type"]).to_string())
            .collect();
        if !bytes_of(&o["status"]["certificate"]).is_empty() {
            conds.push("Issued".to_string());
        }
        let condition = if conds.is_empty() {
            "Pending".to_string()
        } else {
            conds.join(",")
        };
        vec![
            name,
            age,
            json!(s(&o["spec"]["signerName"])),
            json!(s(&o["spec"]["username"])),
            json!(duration),
            json!(condition),
        ]
    }
}

/// A request's subject public key, as rcgen needs it to sign a certificate for it.
struct RequestKey {
    raw: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for RequestKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }
    fn algorithm(&self) -> &SignatureAlgorithm {
        self.alg
    }
}

/// Does the request's state call for the built-in signer: approved, not denied or failed, no
/// certificate yet, and one of the signers this API server implements?
pub fn wants_signing(csr: &Value) -> bool {
    let signer = csr["spec"]["signerName"].as_str().unwrap_or_default();
    [KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET].contains(&signer)
        && has_condition(csr, APPROVED)
        && !has_condition(csr, DENIED)
        && !has_condition(csr, FAILED)
        && bytes_of(&csr["status"]["certificate"]).is_empty()
}

/// The cluster CA that signs client certificates.
pub struct SigningCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl SigningCa {
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CsrError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| CsrError::Ca(e.to_string()))?;
        let block = pem_blocks(cert_pem.as_bytes())
            .into_iter()
            .find(|p| p.tag() == "CERTIFICATE")
            .ok_or_else(|| CsrError::Ca("no CERTIFICATE block".into()))?;
        let (_, ca) =
            X509Certificate::from_der(block.contents()).map_err(|e| CsrError::Ca(e.to_string()))?;
        // The issuer as rcgen sees it: same name and key as the CA certificate (the signature
        // of an issued certificate depends on nothing else).
        let mut dn = DistinguishedName::new();
        for attr in ca.subject().iter_attributes() {
            let value = attr
                .as_str()
                .map_err(|e| CsrError::Ca(format!("subject attribute: {e}")))?;
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .ok_or_else(|| CsrError::Ca("subject attribute type".into()))?
                .collect();
            dn.push(DnType::from_oid(&oid), value);
        }
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| CsrError::Ca(e.to_string()))?;
        params.distinguished_name = dn;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|e| CsrError::Ca(e.to_string()))?;
        Ok(SigningCa { cert, key })
    }

    /// The CA as rcgen's issuer of other certificates (the API server's serving certificate).
    pub(crate) fn issuer(&self) -> (&rcgen::Certificate, &KeyPair) {
        (&self.cert, &self.key)
    }

    /// Sign an approved request of a built-in signer: checks the signer's rules (upstream
    /// `isKubeletClient`/`validAPIServerClientUsages`), then issues a certificate (PEM) valid
    /// from five minutes ago for `spec.expirationSeconds` (at most a year).
    pub fn sign(&self, csr: &Value) -> Result<String, CsrError> {
        let der = parse_request(&bytes_of(&csr["spec"]["request"]))?;
        let (_, req) =
            X509CertificationRequest::from_der(&der).map_err(|e| CsrError::Parse(e.to_string()))?;
        let info = &req.certification_request_info;
        let signer = csr["spec"]["signerName"].as_str().unwrap_or_default();
        let usages: Vec<&str> = csr["spec"]["usages"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let allowed = ["digital signature", "key encipherment", "client auth"];
        if let Some(u) = usages.iter().find(|u| !allowed.contains(u)) {
            return Err(CsrError::Signer(format!(
                "invalid usage for client certificate: {u}"
            )));
        }
        if !usages.contains(&"client auth") {
            return Err(CsrError::Signer(
                "missing required usages: client auth".into(),
            ));
        }
        let mut dn = DistinguishedName::new();
        let mut cn = String::new();
        let mut orgs: Vec<String> = Vec::new();
        for attr in info.subject.iter_attributes() {
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .ok_or_else(|| CsrError::Parse("subject attribute type".into()))?
                .collect();
            let value = attr
                .as_str()
                .map_err(|e| CsrError::Parse(format!("subject attribute: {e}")))?
                .to_string();
            let ty = DnType::from_oid(&oid);
            if ty == DnType::CommonName {
                cn = value.clone();
            }
            if ty == DnType::OrganizationName {
                orgs.push(value.clone());
            }
            dn.push(ty, value);
        }
        let mut sans: Vec<SanType> = Vec::new();
        if let Some(exts) = req.requested_extensions() {
            for ext in exts {
                if let ParsedExtension::SubjectAlternativeName(san) = ext {
                    for n in &san.general_names {
                        let s = match n {
                            GeneralName::DNSName(d) => SanType::DnsName(
                                (*d).try_into()
                                    .map_err(|_| CsrError::Parse("DNS name".into()))?,
                            ),
                            GeneralName::RFC822Name(e) => SanType::Rfc822Name(
                                (*e).try_into()
                                    .map_err(|_| CsrError::Parse("email".into()))?,
                            ),
                            GeneralName::URI(u) => SanType::URI(
                                (*u).try_into().map_err(|_| CsrError::Parse("URI".into()))?,
                            ),
                            GeneralName::IPAddress(b) => match b.len() {
                                4 => SanType::IpAddress(std::net::IpAddr::from(
                                    <[u8; 4]>::try_from(*b).unwrap_or_default(),
                                )),
                                16 => SanType::IpAddress(std::net::IpAddr::from(
                                    <[u8; 16]>::try_from(*b).unwrap_or_default(),
                                )),
                                _ => return Err(CsrError::Parse("IP address".into())),
                            },
                            _ => continue,
                        };
                        sans.push(s);
                    }
                }
            }
        }
        if signer == KUBE_APISERVER_CLIENT_KUBELET {
            if orgs != ["system:nodes"] {
                return Err(CsrError::Signer(
                    "subject organization is not system:nodes".into(),
                ));
            }
            if !cn.starts_with("system:node:") {
                return Err(CsrError::Signer(
                    "subject common name does not begin with system:node:".into(),
                ));
            }
            if !sans.is_empty() {
                return Err(CsrError::Signer(
                    "DNS, email, URI and IP subjectAltNames are not allowed".into(),
                ));
            }
        }
        let alg = key_algorithm(&info.subject_pki)?;
        let key = RequestKey {
            raw: info.subject_pki.subject_public_key.data.to_vec(),
            alg,
        };
        let seconds = csr["spec"]["expirationSeconds"]
            .as_i64()
            .unwrap_or(MAX_SIGNING_SECONDS)
            .clamp(MIN_EXPIRATION_SECONDS, MAX_SIGNING_SECONDS);
        let now = Utc::now();
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| CsrError::Sign(e.to_string()))?;
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.not_before = to_offset(now - Duration::minutes(5))?;
        params.not_after = to_offset(now + Duration::seconds(seconds))?;
        let mut serial = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut serial);
        serial[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.key_usages = usages
            .iter()
            .filter_map(|u| match *u {
                "digital signature" => Some(KeyUsagePurpose::DigitalSignature),
                "key encipherment" => Some(KeyUsagePurpose::KeyEncipherment),
                _ => None,
            })
            .collect();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(|e| CsrError::Sign(e.to_string()))?;
        Ok(cert.pem())
    }
}

fn to_offset(t: DateTime<Utc>) -> Result<time::OffsetDateTime, CsrError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|e| CsrError::Sign(e.to_string()))
}

/// The rcgen algorithm describing the request's key type.
fn key_algorithm(
    spki: &x509_parser::x509::SubjectPublicKeyInfo,
) -> Result<&'static SignatureAlgorithm, CsrError> {
    use x509_parser::oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
        OID_SIG_ED25519,
    };
    let alg = &spki.algorithm;
    if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| CsrError::Signer("EC key without a named curve".into()))?;
        if curve == OID_EC_P256 {
            return Ok(&rcgen::PKCS_ECDSA_P256_SHA256);
        }
        if curve == OID_NIST_EC_P384 {
            return Ok(&rcgen::PKCS_ECDSA_P384_SHA384);
        }
        return Err(CsrError::Signer(format!("unsupported EC curve {curve}")));
    }
    if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        return Ok(&rcgen::PKCS_RSA_SHA256);
    }
    if alg.algorithm == OID_SIG_ED25519 {
        return Ok(&rcgen::PKCS_ED25519);
    }
    Err(CsrError::Signer(format!(
        "unsupported public key algorithm {}",
        alg.algorithm
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSR (PEM) for `cn` in organizations `orgs`, and its key.
    pub(crate) fn make_csr(cn: &str, orgs: &[&str]) -> String {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        for o in orgs {
            p.distinguished_name.push(DnType::OrganizationName, *o);
        }
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn csr_obj(pem: &str, signer: &str, usages: &[&str]) -> Value {
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": "x"},
            "spec": {"request": STANDARD.encode(pem), "signerName": signer, "usages": usages}})
    }

    fn causes(o: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        CsrStrategy.validate(o, &mut c);
        c
    }

    #[test]
    fn validation() {
        let pem = make_csr("alice", &[]);
        assert!(causes(&csr_obj(&pem, "example.com/e2e", &["client auth"])).is_empty());
        let c = causes(&csr_obj("garbage", "example.com/e2e", &["client auth"]));
        assert_eq!(c[0].0, "spec.request");
        assert!(c[0]
            .1
            .contains("PEM block type must be CERTIFICATE REQUEST"));
        let c = causes(&csr_obj(&pem, "nodomain", &["client auth"]));
        assert_eq!(c[0].0, "spec.signerName");
        let c = causes(&csr_obj(
            &pem,
            "example.com/e2e",
            &["client auth", "client auth", "bogus"],
        ));
        assert_eq!(c.len(), 2, "{c:?}");
        let c = causes(&csr_obj(&pem, "example.com/e2e", &[]));
        assert_eq!(c[0].0, "spec.usages");
        let mut o = csr_obj(&pem, "example.com/e2e", &["client auth"]);
        o["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]});
        let c = causes(&o);
        assert!(
            c.iter().any(|(_, m)| m.contains("mutually exclusive")),
            "{c:?}"
        );
        // A tampered request fails its signature check.
        let der = pem_blocks(pem.as_bytes())[0].contents().to_vec();
        let mut bad = der.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        let bad_pem = ::pem::encode(&::pem::Pem::new("CERTIFICATE REQUEST", bad));
        assert!(parse_request(bad_pem.as_bytes()).is_err());
    }

    #[test]
    fn status_and_approval_writes_keep_their_lanes() {
        let pem = make_csr("alice", &[]);
        let old = csr_obj(&pem, "example.com/e2e", &["client auth"]);
        let mut new = old.clone();
        new["spec"]["signerName"] = json!("example.com/other");
        new["metadata"]["annotations"] = json!({"a": "b"});
        new["status"] =
            json!({"conditions": [{"type": "Approved", "status": "True"}], "certificate": "eA=="});
        let out = CsrStrategy.prepare_status_update(&old, new.clone());
        assert_eq!(out["spec"], old["spec"]);
        assert_eq!(out["metadata"]["annotations"]["a"], "b");
        assert_eq!(out["status"]["conditions"], json!([]));
        assert_eq!(out["status"]["certificate"], "eA==");
        let out = prepare_approval_update(&old, new);
        assert_eq!(out["spec"], old["spec"]);
        assert_eq!(out["status"]["conditions"][0]["type"], "Approved");
        assert!(out["status"]["conditions"][0]["lastUpdateTime"].is_string());
        assert!(out["status"]["certificate"].is_null());
    }

    #[test]
    fn signing_follows_the_signer_rules() {
        let dir = tempfile::tempdir().unwrap();
        let tls = crate::TlsMaterial::load_or_generate(dir.path(), &[]).unwrap();
        let key = std::fs::read_to_string(dir.path().join("ca.key")).unwrap();
        let ca = SigningCa::from_pem(&tls.ca_cert_pem, &key).unwrap();

        let pem = make_csr("system:node:n1", &["system:nodes"]);
        let mut o = csr_obj(
            &pem,
            KUBE_APISERVER_CLIENT_KUBELET,
            &["digital signature", "client auth"],
        );
        o["spec"]["expirationSeconds"] = json!(3600);
        assert!(!wants_signing(&o));
        o["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
        assert!(wants_signing(&o));
        let cert = ca.sign(&o).unwrap();
        let block = pem_blocks(cert.as_bytes()).remove(0);
        let (_, x) = X509Certificate::from_der(block.contents()).unwrap();
        assert_eq!(
            x.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "system:node:n1"
        );
        let ca_block = pem_blocks(tls.ca_cert_pem.as_bytes()).remove(0);
        let (_, cax) = X509Certificate::from_der(ca_block.contents()).unwrap();
        assert_eq!(x.issuer(), cax.subject());
        x.verify_signature(Some(cax.public_key())).unwrap();
        let life = x.validity().not_after.timestamp() - x.validity().not_before.timestamp();
        assert_eq!(life, 3600 + 300);
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);

        // The kubelet signer wants system:nodes / system:node:*.
        let other = csr_obj(
            &make_csr("bob", &[]),
            KUBE_APISERVER_CLIENT_KUBELET,
            &["client auth"],
        );
        assert!(matches!(ca.sign(&other), Err(CsrError::Signer(_))));
        // Client certificates only.
        let server = csr_obj(
            &make_csr("bob", &[]),
            KUBE_APISERVER_CLIENT,
            &["server auth", "client auth"],
        );
        assert_eq!(
            ca.sign(&server).unwrap_err(),
            CsrError::Signer("invalid usage for client certificate: server auth".into())
        );
        let ok = csr_obj(
            &make_csr("bob", &["devs"]),
            KUBE_APISERVER_CLIENT,
            &["client auth"],
        );
        assert!(ca.sign(&ok).is_ok());
    }
}
