//! batch/v1 CronJobs (pkg/registry/batch/cronjob/strategy.go, pkg/apis/batch/validation), and
//! the schedule parsing the CronJob controller shares: standard 5-field cron syntax (with the
//! `@hourly`-style macros) evaluated in `spec.timeZone` (an IANA name; UTC when unset).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use k8s_openapi::api::batch::v1 as batch;
use serde_json::{json, Value};

use super::job::validate_job_spec;
use super::{decode_as, name_and_age, Cause, Column, PodSpecAt, Strategy, AGE, NAME};
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::{self, or_none};
use crate::typed::{default_key, obj_mut};

#[derive(Debug)]
pub struct CronJobStrategy;

/// The REST shape of CronJobs, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "batch",
    version: "v1",
    kind: "CronJob",
    list_kind: "CronJobList",
    plural: "cronjobs",
    singular: "cronjob",
    namespaced: true,
    short_names: &["cj"],
    categories: &["all"],
    subresources: &[Status],
    has_spec: true,
    strategy: &CronJobStrategy,
};

/// Why a schedule or time zone is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("{0}")]
    Syntax(String),
    #[error("unknown time zone {0}")]
    TimeZone(String),
}

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    tz: Tz,
}

impl Schedule {
    /// Parse `schedule` (a `TZ=`/`CRON_TZ=` prefix names the zone, as old objects may carry)
    /// evaluated in `time_zone` (UTC when `None`).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let mut s = schedule.trim();
        let mut zone = time_zone.map(str::to_string);
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(rest) = s.strip_prefix(prefix) {
                let (z, r) = rest.split_once(' ').unwrap_or((rest, ""));
                zone = Some(z.to_string());
                s = r.trim();
            }
        }
        let tz = match zone.as_deref() {
            None | Some("") => Tz::UTC,
            Some(z) => parse_tz(z)?,
        };
        if s.is_empty() {
            return Err(ScheduleError::Syntax("empty spec string".into()));
        }
        let s = if s.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            s
        };
        if !s.starts_with('@') {
            let n = s.split_whitespace().count();
            if n != 5 {
                return Err(ScheduleError::Syntax(format!(
                    "expected exactly 5 fields, found {n}: {s}"
                )));
            }
        }
        let cron = croner::Cron::new(s)
            .parse()
            .map_err(|e| ScheduleError::Syntax(e.to_string()))?;
        Ok(Schedule { cron, tz })
    }

    /// The first scheduled time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|n| n.with_timezone(&Utc))
    }
}

fn parse_tz(z: &str) -> Result<Tz, ScheduleError> {
    // Upstream refuses "Local" (the server's zone) and accepts IANA names only.
    if z == "Local" {
        return Err(ScheduleError::TimeZone(z.to_string()));
    }
    z.parse::<Tz>()
        .map_err(|_| ScheduleError::TimeZone(z.to_string()))
}

fn has_tz_prefix(s: &str) -> bool {
    s.contains("TZ")
}

fn validate_cronjob(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    if let Some(name) = obj["metadata"]["name"].as_str() {
        // Jobs are named `<cronjob>-<11 digits>`, which must stay a valid 63-character label.
        if name.len() > 52 {
            causes.push((
                "metadata.name".into(),
                format!("Invalid value: {name:?}: must be no more than 52 characters"),
            ));
        }
    }
    let schedule = spec["schedule"].as_str().unwrap_or("");
    let tz = spec["timeZone"].as_str();
    if schedule.is_empty() {
        causes.push(("spec.schedule".into(), "Required value".into()));
    } else {
        let old_schedule = old.and_then(|o| o["spec"]["schedule"].as_str());
        if has_tz_prefix(schedule) && old_schedule != Some(schedule) {
            causes.push((
                "spec.schedule".into(),
                format!("Invalid value: {schedule:?}: cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
            ));
        } else if has_tz_prefix(schedule) && tz.is_some() {
            causes.push((
                "spec.schedule".into(),
                format!("Invalid value: {schedule:?}: cannot use both timeZone field and TZ or CRON_TZ in schedule"),
            ));
        } else if let Err(ScheduleError::Syntax(e)) = Schedule::parse(schedule, None) {
            causes.push((
                "spec.schedule".into(),
                format!("Invalid value: {schedule:?}: {e}"),
            ));
        }
    }
    if let Some(z) = tz {
        if let Err(e) = parse_tz(z) {
            causes.push(("spec.timeZone".into(), format!("Invalid value: {z:?}: {e}")));
        }
    }
    match spec["concurrencyPolicy"].as_str() {
        Some("Allow") | Some("Forbid") | Some("Replace") => {}
        None => causes.push(("spec.concurrencyPolicy".into(), "Required value".into())),
        Some(p) => causes.push((
            "spec.concurrencyPolicy".into(),
            format!(
                "Unsupported value: {p:?}: supported values: \"Allow\", \"Forbid\", \"Replace\""
            ),
        )),
    }
    for f in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        if let Some(n) = spec[f].as_i64().filter(|n| *n < 0) {
            causes.push((
                format!("spec.{f}"),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
    }
    let jt = &spec["jobTemplate"]["spec"];
    if jt["manualSelector"].as_bool() == Some(true) || !jt["selector"].is_null() {
        // Upstream: the Jobs a CronJob makes get generated selectors.
        if !jt["selector"].is_null() && jt["manualSelector"].as_bool() != Some(true) {
            causes.push((
                "spec.jobTemplate.spec.selector".into(),
                "Invalid value: `selector` will be auto-generated".into(),
            ));
        }
    }
    validate_job_spec(jt, "spec.jobTemplate.spec", causes, true);
}

impl Strategy for CronJobStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])?;
        decode_as::<batch::CronJob>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        default_key(spec, "concurrencyPolicy", json!("Allow"));
        default_key(spec, "suspend", json!(false));
        default_key(spec, "successfulJobsHistoryLimit", json!(3));
        default_key(spec, "failedJobsHistoryLimit", json!(1));
        // The pod template inside gets pod defaults (upstream's recursive defaulting); the
        // JobSpec fields stay as written and are defaulted on each Job's create.
        if let Some(Value::Object(jt)) = spec.get_mut("jobTemplate") {
            if let Some(Value::Object(js)) = jt.get_mut("spec") {
                if let Some(Value::Object(tpl)) = js.get_mut("template") {
                    if let Some(Value::Object(ps)) = tpl.get_mut("spec") {
                        crate::typed::default_pod_spec(ps);
                    }
                }
            }
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({});
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        if obj["metadata"]["uid"].as_str().unwrap_or("").is_empty() {
            validate_cronjob(obj, None, causes);
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        validate_cronjob(new, Some(old), causes);
    }

    fn pod_spec_at(&self) -> Option<PodSpecAt> {
        Some(PodSpecAt::JobTemplate)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Schedule", "", 0),
            ("Timezone", "", 0),
            ("Suspend", "", 0),
            ("Active", "", 0),
            ("Last Schedule", "", 0),
            AGE,
            ("Containers", "", 1),
            ("Images", "", 1),
            ("Selector", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let spec = &o["spec"];
        let suspend = match spec["suspend"].as_bool() {
            Some(true) => "True",
            Some(false) => "False",
            None => "<unset>",
        };
        let last = match o["status"]["lastScheduleTime"] {
            Value::Null => "<none>".to_string(),
            ref t => table::age(t, now),
        };
        let active = o["status"]["active"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0);
        let (c, i) = table::containers_and_images(&spec["jobTemplate"]["spec"]["template"]["spec"]);
        vec![
            name,
            json!(table::s(&spec["schedule"])),
            json!(or_none(table::s(&spec["timeZone"]))),
            json!(suspend),
            json!(active),
            json!(last),
            created,
            json!(c),
            json!(i),
            json!(or_none(table::selector_string(
                &spec["jobTemplate"]["spec"]["selector"]
            ))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cj(spec_extra: Value) -> Value {
        let mut c = json!({"metadata": {"name": "hello", "namespace": "default"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        for (k, v) in spec_extra.as_object().into_iter().flatten() {
            c["spec"][k] = v.clone();
        }
        CronJobStrategy.defaults(&mut c);
        c
    }

    fn causes_of(c: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        CronJobStrategy.validate(c, &mut out);
        out
    }

    #[test]
    fn defaults_as_upstream() {
        let c = cj(json!({}));
        assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(c["spec"]["suspend"], false);
        assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
        assert!(causes_of(&c).is_empty());
    }

    #[test]
    fn schedules_macros_and_time_zones() {
        for ok in [
            "@hourly",
            "@daily",
            "@midnight",
            "@weekly",
            "@monthly",
            "@yearly",
            "0 3 * * 1-5",
            "*/15 * * * *",
        ] {
            assert!(Schedule::parse(ok, None).is_ok(), "{ok}");
        }
        for bad in ["* * * *", "61 * * * *", "hello", "* * * * * *"] {
            assert!(Schedule::parse(bad, None).is_err(), "{bad}");
        }
        let t = DateTime::parse_from_rfc3339("2024-03-01T10:20:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let s = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(
            s.next_after(t).unwrap().to_rfc3339(),
            "2024-03-01T11:00:00+00:00"
        );
        // 09:00 in Tokyo (UTC+9) is 00:00 UTC.
        let s = Schedule::parse("0 9 * * *", Some("Asia/Tokyo")).unwrap();
        assert_eq!(
            s.next_after(t).unwrap().to_rfc3339(),
            "2024-03-02T00:00:00+00:00"
        );
        assert_eq!(
            Schedule::parse("0 9 * * *", Some("Mars/Olympus")).unwrap_err(),
            ScheduleError::TimeZone("Mars/Olympus".into())
        );
    }

    #[test]
    fn validation_messages() {
        let c = causes_of(&cj(json!({"schedule": "61 * * * *"})));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "spec.schedule");
        assert!(c[0].1.starts_with("Invalid value: \"61 * * * *\": "));
        let c = causes_of(&cj(json!({"schedule": "TZ=UTC 0 * * * *"})));
        assert_eq!(c[0].1, "Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
        let c = causes_of(&cj(json!({"timeZone": "Nowhere/City"})));
        assert_eq!(
            c,
            vec![(
                "spec.timeZone".to_string(),
                "Invalid value: \"Nowhere/City\": unknown time zone Nowhere/City".to_string()
            )]
        );
        let c = causes_of(&cj(json!({"concurrencyPolicy": "Sometimes"})));
        assert_eq!(c[0].1, "Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"");
        let mut c = cj(json!({}));
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        let c = causes_of(&c);
        assert_eq!(c[0].0, "spec.jobTemplate.spec.template.spec.restartPolicy");
        let mut long = cj(json!({}));
        long["metadata"]["name"] = json!("a".repeat(53));
        assert_eq!(causes_of(&long)[0].0, "metadata.name");
        let c = causes_of(&cj(json!({"startingDeadlineSeconds": -5})));
        assert_eq!(c[0].0, "spec.startingDeadlineSeconds");
    }

    #[test]
    fn table_cells() {
        let now = Utc::now();
        let mut c = cj(json!({}));
        c["metadata"]["creationTimestamp"] =
            json!((now - chrono::Duration::seconds(90)).to_rfc3339());
        c["status"] = json!({"active": [{"name": "hello-1"}], "lastScheduleTime": (now - chrono::Duration::seconds(30)).to_rfc3339()});
        let cells = CronJobStrategy.cells(&c, now);
        assert_eq!(cells[1], "*/1 * * * *");
        assert_eq!(cells[2], "<none>");
        assert_eq!(cells[3], "False");
        assert_eq!(cells[4], 1);
        assert_eq!(cells[5], "30s");
        assert_eq!(cells[6], "90s");
        assert_eq!(CronJobStrategy.columns().len(), cells.len());
    }
}
