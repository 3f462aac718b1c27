//! CustomResourceDefinitions (apiextensions.k8s.io/v1; apiextensions-apiserver's
//! pkg/registry/customresourcedefinition and pkg/apis/apiextensions/validation). The status
//! (accepted names, NamesAccepted and Established conditions, storedVersions) is kept at write,
//! where upstream's naming and establishing controllers set it; names that collide with another
//! CRD of the group are not accepted and the CRD is not served.

use async_trait::async_trait;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use serde_json::{json, Value};

use daas_store::KeyValue;

use super::{crschema, customresource, decode_as, is_dns_label, is_dns_subdomain, Cause, Strategy};
use crate::error::ApiResult;
use crate::handlers::{now_rfc3339, Ctx};
use crate::resources::{ResourceDef, Subresource};

#[derive(Debug)]
pub struct CrdStrategy;

pub const RESOURCE: ResourceDef = ResourceDef {
    group: "apiextensions.k8s.io",
    version: "v1",
    kind: "CustomResourceDefinition",
    list_kind: "CustomResourceDefinitionList",
    plural: "customresourcedefinitions",
    singular: "customresourcedefinition",
    namespaced: false,
    short_names: &["crd", "crds"],
    categories: &["api-extensions"],
    subresources: &[Subresource::Status],
    has_spec: true,
    strategy: &CrdStrategy,
};

fn condition(c: &Value, ty: &str) -> Option<Value> {
    c["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|x| x["type"] == ty)
        .cloned()
}

/// Is the CRD established (its resources served)?
pub fn is_established(c: &Value) -> bool {
    condition(c, "Established").is_some_and(|x| x["status"] == "True")
}

fn set_condition(c: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    let mut conds: Vec<Value> = c["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let now = now_rfc3339();
    match conds.iter_mut().find(|x| x["type"] == ty) {
        Some(x) => {
            if x["status"] != status {
                x["lastTransitionTime"] = json!(now);
            }
            x["status"] = json!(status);
            x["reason"] = json!(reason);
            x["message"] = json!(message);
        }
        None => conds.push(json!({
            "type": ty, "status": status, "lastTransitionTime": now,
            "reason": reason, "message": message,
        })),
    }
    c["status"]["conditions"] = json!(conds);
}

fn storage_version(c: &Value) -> Option<String> {
    c["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .map(String::from)
}

/// Names of the other CRDs in the group that `c`'s names collide with: (reason, message).
fn name_conflict(c: &Value, others: &[Value]) -> Option<(&'static str, String)> {
    let group = &c["spec"]["group"];
    let names = &c["spec"]["names"];
    for o in others {
        if o["spec"]["group"] != *group || o["metadata"]["name"] == c["metadata"]["name"] {
            continue;
        }
        let taken = &o["status"]["acceptedNames"];
        if taken["kind"] == names["kind"] {
            return Some((
                "KindConflict",
                format!("{} is already in use", names["kind"]),
            ));
        }
        if taken["listKind"] == names["listKind"] {
            return Some((
                "ListKindConflict",
                format!("{} is already in use", names["listKind"]),
            ));
        }
        if !names["singular"].is_null()
            && (taken["singular"] == names["singular"] || taken["plural"] == names["singular"])
        {
            return Some((
                "SingularConflict",
                format!("{} is already in use", names["singular"]),
            ));
        }
        let theirs: Vec<&Value> = taken["shortNames"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        for s in names["shortNames"].as_array().into_iter().flatten() {
            if theirs.contains(&s) {
                return Some(("ShortNamesConflict", format!("{s} is already in use")));
            }
        }
    }
    None
}

#[async_trait]
impl Strategy for CrdStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        match decode_as::<apiext::CustomResourceDefinition>(obj) {
            Ok(v) => Ok(v),
            // Required members left out: validation reports them as upstream does (422).
            Err(e) if e.starts_with("missing field") => Ok(obj.clone()),
            Err(e) => Err(e),
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({});
    }

    fn defaults(&self, obj: &mut Value) {
        let names_ok = matches!(obj["spec"]["names"], Value::Object(_) | Value::Null);
        if !obj["spec"].is_object() || !names_ok || !obj.is_object() {
            return;
        }
        let spec = &mut obj["spec"];
        if let Some(kind) = spec["names"]["kind"].as_str().map(String::from) {
            if spec["names"]["singular"].as_str().unwrap_or("").is_empty() {
                spec["names"]["singular"] = json!(kind.to_lowercase());
            }
            if spec["names"]["listKind"].as_str().unwrap_or("").is_empty() {
                spec["names"]["listKind"] = json!(format!("{kind}List"));
            }
        }
        if spec["conversion"]["strategy"].is_null() && spec.is_object() {
            spec["conversion"] = json!({"strategy": "None"});
        }
        // Status the naming and establishing controllers keep upstream.
        if !obj["status"].is_object() {
            obj["status"] = json!({});
        }
        let mut stored: Vec<Value> = obj["status"]["storedVersions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(sv) = storage_version(obj) {
            if !stored.contains(&json!(sv)) {
                stored.push(json!(sv));
            }
        }
        obj["status"]["storedVersions"] = json!(stored);
        let refused = condition(obj, "NamesAccepted").is_some_and(|c| c["status"] == "False");
        if refused {
            return;
        }
        obj["status"]["acceptedNames"] = obj["spec"]["names"].clone();
        set_condition(
            obj,
            "NamesAccepted",
            "True",
            "NoConflicts",
            "no conflicts found",
        );
        set_condition(
            obj,
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        );
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_crd(obj, causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        if old["spec"]["scope"] != new["spec"]["scope"] {
            causes.push((
                "spec.scope".into(),
                format!(
                    "Invalid value: {}: field is immutable",
                    new["spec"]["scope"]
                ),
            ));
        }
    }

    async fn allocate(&self, ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
        let res = ctx.store.list(&RESOURCE.prefix(None)).await?;
        let mut others = Vec::new();
        for kv in &res.items {
            others.push(crate::handlers::decode_kv(kv)?);
        }
        if let Some((reason, msg)) = name_conflict(obj, &others) {
            obj["status"]["acceptedNames"] = json!({"plural": "", "kind": ""});
            set_condition(obj, "NamesAccepted", "False", reason, &msg);
            set_condition(
                obj,
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
            );
        }
        Ok(())
    }

    /// Serve what the CRDs now say; the objects of a CRD deleted by a path that skipped
    /// `before_delete` (a collection delete) are removed here.
    async fn after_write(&self, ctx: &Ctx) {
        if let Err(e) = accept_names(ctx).await {
            tracing::warn!(error = %e.message, "re-checking refused CRD names failed");
        }
        match customresource::sync(&ctx.store).await {
            Ok(gone) => {
                for (group, plural) in gone {
                    if let Err(e) = customresource::delete_all(ctx, &group, &plural).await {
                        tracing::warn!(error = %e.message, %group, %plural, "removing custom resources failed");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "refreshing the served custom resources failed")
            }
        }
    }

    async fn before_delete(&self, ctx: &Ctx, obj: &Value, kv: KeyValue) -> ApiResult<KeyValue> {
        let group = obj["spec"]["group"].as_str().unwrap_or("");
        let plural = obj["spec"]["names"]["plural"].as_str().unwrap_or("");
        if !group.is_empty() && !plural.is_empty() {
            customresource::delete_all(ctx, group, plural).await?;
        }
        Ok(kv)
    }
}

/// Accept the names of a CRD refused for a conflict once the conflict is gone (its names were
/// changed, or the CRD holding them was deleted), as upstream's naming controller does: the
/// names become accepted and the CRD established.
async fn accept_names(ctx: &Ctx) -> ApiResult<()> {
    let res = ctx.store.list(&RESOURCE.prefix(None)).await?;
    let mut all = Vec::new();
    for kv in &res.items {
        all.push((kv, crate::handlers::decode_kv(kv)?));
    }
    let mut accepted: Vec<Value> = all
        .iter()
        .filter(|(_, c)| !refused(c))
        .map(|(_, c)| c.clone())
        .collect();
    for (kv, c) in all.iter().filter(|(_, c)| refused(c)) {
        if !c["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let mut c = c.clone();
        let conflict = name_conflict(&c, &accepted);
        if let Some((reason, msg)) = &conflict {
            // Still refused: the condition says for which name now.
            let cond = condition(&c, "NamesAccepted").unwrap_or_default();
            if cond["reason"] == *reason && cond["message"] == msg.as_str() {
                continue;
            }
            set_condition(&mut c, "NamesAccepted", "False", reason, msg);
        } else {
            c["status"]["acceptedNames"] = c["spec"]["names"].clone();
            set_condition(
                &mut c,
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
            );
            set_condition(
                &mut c,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            );
        }
        match ctx
            .store
            .update(&kv.key, &crate::handlers::encode(&c)?, kv.mod_revision)
            .await
        {
            // Two refused CRDs may claim the same names: the first one gets them.
            Ok(_) if conflict.is_none() => accepted.push(c),
            Ok(_) => {}
            // Changed meanwhile: that write re-checks.
            Err(daas_store::StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn refused(c: &Value) -> bool {
    condition(c, "NamesAccepted").is_some_and(|x| x["status"] == "False")
}

const GROUP_MSG: &str = "should be a domain with at least one dot";

/// apiextensions validation of a CRD (ValidateCustomResourceDefinition).
pub fn validate_crd(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let group = spec["group"].as_str().unwrap_or("");
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or("");
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    if name != format!("{plural}.{group}") {
        causes.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if group.is_empty() {
        causes.push(("spec.group".into(), "Required value".into()));
    } else if !is_dns_subdomain(group) || !group.contains('.') {
        causes.push((
            "spec.group".into(),
            format!("Invalid value: \"{group}\": {GROUP_MSG}"),
        ));
    }
    match spec["scope"].as_str() {
        Some("Cluster" | "Namespaced") => {}
        None | Some("") => causes.push(("spec.scope".into(), "Required value".into())),
        Some(s) => causes.push((
            "spec.scope".into(),
            format!("Unsupported value: \"{s}\": supported values: \"Cluster\", \"Namespaced\""),
        )),
    }
    for f in ["plural", "kind", "listKind"] {
        let v = names[f].as_str().unwrap_or("");
        if v.is_empty() {
            causes.push((format!("spec.names.{f}"), "Required value".into()));
        }
    }
    for f in ["plural", "singular"] {
        if let Some(v) = names[f].as_str().filter(|v| !v.is_empty()) {
            if !is_dns_label(v) {
                causes.push((
                    format!("spec.names.{f}"),
                    format!("Invalid value: \"{v}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
                ));
            }
        }
    }
    if names["kind"].as_str().is_some_and(|k| !k.is_empty()) && names["kind"] == names["listKind"] {
        causes.push((
            "spec.names.listKind".into(),
            format!(
                "Invalid value: {}: kind and listKind may not be the same or parameters of a list",
                names["listKind"]
            ),
        ));
    }
    for (i, s) in names["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !s.as_str().is_some_and(is_dns_label) {
            causes.push((
                format!("spec.names.shortNames[{i}]"),
                format!("Invalid value: {s}: a lowercase RFC 1123 label is required"),
            ));
        }
    }
    if spec["preserveUnknownFields"] == true {
        causes.push((
            "spec.preserveUnknownFields".into(),
            "Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead".into(),
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push((
            "spec.versions".into(),
            "Invalid value: \"null\": must have exactly one version marked as storage version"
                .into(),
        ));
    }
    let storage = versions.iter().filter(|v| v["storage"] == true).count();
    if !versions.is_empty() && storage != 1 {
        causes.push((
            "spec.versions".into(),
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                json!(versions.iter().map(|v| &v["name"]).collect::<Vec<_>>())
            ),
        ));
    }
    if !versions.is_empty() && !versions.iter().any(|v| v["served"] == true) {
        causes.push((
            "spec.versions".into(),
            "Invalid value: must have at least one served version".into(),
        ));
    }
    let mut seen = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let p = format!("spec.versions[{i}]");
        validate_version(v, &p, &mut seen, causes);
    }
    validate_conversion(&spec["conversion"], causes);
    for (i, sv) in obj["status"]["storedVersions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !versions.iter().any(|v| v["name"] == *sv) {
            causes.push((
                format!("status.storedVersions[{i}]"),
                format!("Invalid value: {sv}: must appear in spec.versions"),
            ));
        }
    }
}

/// `spec.conversion`: a webhook is required with strategy `Webhook` (with exactly one of url or
/// service, and its review versions) and forbidden otherwise.
fn validate_conversion(conv: &Value, causes: &mut Vec<Cause>) {
    let webhook = &conv["webhook"];
    match conv["strategy"].as_str() {
        None | Some("None") => {
            if !webhook.is_null() {
                causes.push((
                    "spec.conversion.webhook".into(),
                    "Forbidden: should not be set when strategy is not set to Webhook".into(),
                ));
            }
        }
        Some("Webhook") => {
            if !webhook.is_object() {
                causes.push((
                    "spec.conversion.webhook".into(),
                    "Required value: required when strategy is set to Webhook".into(),
                ));
                return;
            }
            let cc = &webhook["clientConfig"];
            match (cc["url"].as_str(), cc["service"].is_object()) {
                (Some(_), true) | (None, false) => causes.push((
                    "spec.conversion.webhook.clientConfig".into(),
                    "Required value: exactly one of url or service is required".into(),
                )),
                (Some(url), false) => {
                    if !url.starts_with("https://") {
                        causes.push((
                            "spec.conversion.webhook.clientConfig.url".into(),
                            format!(
                                "Invalid value: \"{url}\": 'https' is the only allowed URL scheme"
                            ),
                        ));
                    }
                }
                (None, true) => {
                    for f in ["name", "namespace"] {
                        if cc["service"][f].as_str().unwrap_or("").is_empty() {
                            causes.push((
                                format!("spec.conversion.webhook.clientConfig.service.{f}"),
                                "Required value: service namespace and name are required".into(),
                            ));
                        }
                    }
                }
            }
            let versions: Vec<&str> = webhook["conversionReviewVersions"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            if versions.is_empty() {
                causes.push((
                    "spec.conversion.webhook.conversionReviewVersions".into(),
                    "Required value: must contain at least one value".into(),
                ));
            } else if !versions.iter().any(|v| matches!(*v, "v1" | "v1beta1")) {
                causes.push((
                    "spec.conversion.webhook.conversionReviewVersions".into(),
                    format!(
                        "Invalid value: {}: must include at least one of v1, v1beta1",
                        json!(versions)
                    ),
                ));
            }
        }
        Some(other) => causes.push((
            "spec.conversion.strategy".into(),
            format!("Unsupported value: \"{other}\": supported values: \"None\", \"Webhook\""),
        )),
    }
}

fn validate_version(v: &Value, p: &str, seen: &mut Vec<String>, causes: &mut Vec<Cause>) {
    let name = v["name"].as_str().unwrap_or("");
    if name.is_empty() {
        causes.push((format!("{p}.name"), "Required value".into()));
    } else if !is_dns_label(name) || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        causes.push((format!("{p}.name"), format!("Invalid value: \"{name}\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")));
    } else if seen.iter().any(|s| s == name) {
        causes.push((
            format!("{p}.name"),
            format!("Invalid value: \"{name}\": must be unique"),
        ));
    } else {
        seen.push(name.to_string());
    }
    if let Some(w) = v["deprecationWarning"].as_str() {
        if v["deprecated"] != true {
            causes.push((
                format!("{p}.deprecationWarning"),
                format!(
                    "Invalid value: {}: can only be set for deprecated versions",
                    json!(w)
                ),
            ));
        } else if w.chars().count() > 256 {
            causes.push((
                format!("{p}.deprecationWarning"),
                format!(
                    "Invalid value: {}: must be <= 256 characters long",
                    json!(w)
                ),
            ));
        }
    }
    let schema = &v["schema"]["openAPIV3Schema"];
    if !schema.is_object() {
        causes.push((
            format!("{p}.schema.openAPIV3Schema"),
            "Required value: schemas are required".into(),
        ));
    } else {
        crschema::structural_errors(schema, &format!("{p}.schema.openAPIV3Schema"), causes);
    }
    if let Some(scale) = v["subresources"]["scale"].as_object() {
        let sp = format!("{p}.subresources.scale");
        match scale.get("specReplicasPath").and_then(|x| x.as_str()) {
            None | Some("") => {
                causes.push((format!("{sp}.specReplicasPath"), "Required value".into()))
            }
            Some(s) if !s.starts_with(".spec.") => causes.push((
                format!("{sp}.specReplicasPath"),
                format!("Invalid value: \"{s}\": should be a json path under .spec"),
            )),
            _ => {}
        }
        match scale.get("statusReplicasPath").and_then(|x| x.as_str()) {
            None | Some("") => {
                causes.push((format!("{sp}.statusReplicasPath"), "Required value".into()))
            }
            Some(s) if !s.starts_with(".status.") => causes.push((
                format!("{sp}.statusReplicasPath"),
                format!("Invalid value: \"{s}\": should be a json path under .status"),
            )),
            _ => {}
        }
        if let Some(s) = scale.get("labelSelectorPath").and_then(|x| x.as_str()) {
            if !(s.starts_with(".spec.") || s.starts_with(".status.")) {
                causes.push((format!("{sp}.labelSelectorPath"), format!("Invalid value: \"{s}\": should be a json path under either .spec or .status")));
            }
        }
    }
    for (i, c) in v["additionalPrinterColumns"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let cp = format!("{p}.additionalPrinterColumns[{i}]");
        if c["name"].as_str().unwrap_or("").is_empty() {
            causes.push((format!("{cp}.name"), "Required value".into()));
        }
        match c["type"].as_str() {
            Some("integer" | "number" | "string" | "boolean" | "date") => {}
            None | Some("") => causes.push((format!("{cp}.type"), "Required value".into())),
            Some(t) => causes.push((format!("{cp}.type"), format!("Unsupported value: \"{t}\": supported values: \"boolean\", \"date\", \"integer\", \"number\", \"string\""))),
        }
        if c["jsonPath"].as_str().unwrap_or("").is_empty() {
            causes.push((format!("{cp}.jsonPath"), "Required value".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn widget_crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}}]
            }
        })
    }

    fn errs(o: &Value) -> Vec<String> {
        let mut o = o.clone();
        CrdStrategy.defaults(&mut o);
        let mut c = Vec::new();
        validate_crd(&o, &mut c);
        c.into_iter().map(|(f, m)| format!("{f}: {m}")).collect()
    }

    #[test]
    fn valid_crd_gets_established_status() {
        let mut o = widget_crd();
        assert!(errs(&o).is_empty(), "{:?}", errs(&o));
        CrdStrategy.defaults(&mut o);
        assert_eq!(o["spec"]["names"]["singular"], "widget");
        assert_eq!(o["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(o["status"]["acceptedNames"]["kind"], "Widget");
        assert_eq!(o["status"]["storedVersions"], json!(["v1"]));
        assert!(is_established(&o));
        // The typed decode keeps what the schema says.
        let d = CrdStrategy.decode(&o).unwrap();
        assert_eq!(
            d["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["type"],
            "object"
        );
    }

    #[test]
    fn invalid_crds() {
        let mut o = widget_crd();
        o["metadata"]["name"] = json!("gadgets.example.com");
        o["spec"]["group"] = json!("example");
        o["spec"]["versions"][0]["storage"] = json!(false);
        let e = errs(&o);
        assert!(e.contains(&"metadata.name: Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group".to_string()), "{e:?}");
        assert!(e
            .iter()
            .any(|m| m.starts_with("spec.group: Invalid value: \"example\"")));
        assert!(e
            .iter()
            .any(|m| m.starts_with("spec.versions: Invalid value")
                && m.ends_with("must have exactly one version marked as storage version")));
        let mut o = widget_crd();
        o["spec"]["versions"][0]["schema"] = json!(null);
        assert_eq!(
            errs(&o),
            vec!["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]
        );
        let mut c = Vec::new();
        let mut n = widget_crd();
        n["spec"]["scope"] = json!("Cluster");
        CrdStrategy.validate_update(&widget_crd(), &n, &mut c);
        assert_eq!(c[0].0, "spec.scope");
    }

    #[test]
    fn conversion_webhook_is_required_with_strategy_webhook_and_forbidden_otherwise() {
        let mut o = widget_crd();
        o["spec"]["conversion"] = json!({"strategy": "Webhook"});
        assert_eq!(
            errs(&o),
            vec![
                "spec.conversion.webhook: Required value: required when strategy is set to Webhook"
            ]
        );
        o["spec"]["conversion"]["webhook"] = json!({"clientConfig": {}});
        assert_eq!(
            errs(&o),
            vec![
                "spec.conversion.webhook.clientConfig: Required value: exactly one of url or service is required",
                "spec.conversion.webhook.conversionReviewVersions: Required value: must contain at least one value",
            ]
        );
        o["spec"]["conversion"]["webhook"] = json!({
            "clientConfig": {"url": "http://h/c"}, "conversionReviewVersions": ["v2"]});
        assert_eq!(errs(&o).len(), 2, "{:?}", errs(&o));
        o["spec"]["conversion"]["webhook"] = json!({
            "clientConfig": {"service": {"name": "s", "namespace": "n"}},
            "conversionReviewVersions": ["v1"]});
        assert!(errs(&o).is_empty(), "{:?}", errs(&o));
        o["spec"]["conversion"]["strategy"] = json!("None");
        assert_eq!(
            errs(&o),
            vec!["spec.conversion.webhook: Forbidden: should not be set when strategy is not set to Webhook"]
        );
        let mut d = widget_crd();
        d["spec"]["versions"][0]["deprecationWarning"] = json!("old");
        assert_eq!(
            errs(&d),
            vec!["spec.versions[0].deprecationWarning: Invalid value: \"old\": can only be set for deprecated versions"]
        );
        d["spec"]["versions"][0]["deprecated"] = json!(true);
        assert!(errs(&d).is_empty(), "{:?}", errs(&d));
        o["spec"]["conversion"] = json!({"strategy": "Other"});
        assert_eq!(
            errs(&o),
            vec!["spec.conversion.strategy: Unsupported value: \"Other\": supported values: \"None\", \"Webhook\""]
        );
    }

    #[test]
    fn names_conflicts_refuse_the_crd() {
        let mut a = widget_crd();
        CrdStrategy.defaults(&mut a);
        let mut b = widget_crd();
        b["metadata"]["name"] = json!("gizmos.example.com");
        b["spec"]["names"] = json!({"plural": "gizmos", "kind": "Widget", "listKind": "GizmoList"});
        let (reason, _) = name_conflict(&b, &[a.clone()]).unwrap();
        assert_eq!(reason, "KindConflict");
        b["spec"]["names"]["kind"] = json!("Gizmo");
        b["spec"]["names"]["shortNames"] = json!(["wd"]);
        assert_eq!(name_conflict(&b, &[a]).unwrap().0, "ShortNamesConflict");
    }
}
