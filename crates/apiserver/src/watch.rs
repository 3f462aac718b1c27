//! `?watch=true`: streamed watch events (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR), with selectors,
//! Table output for `kubectl get -w`, bookmarks and `sendInitialEvents`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use daas_store::{Event, EventKind};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::handlers::{decode_kv, list_objects, Ctx, Filter};
use crate::request::{As, ResourceTarget};
use crate::resources::ResourceDef;
use crate::table::{self, IncludeObject};

pub struct WatchParams {
    pub start: Start,
    pub allow_bookmarks: bool,
    pub send_initial_end_bookmark: bool,
    pub timeout: Duration,
    pub accept: As,
    pub include: IncludeObject,
}

pub enum Start {
    /// Send the current state as ADDED events, then changes.
    CurrentState,
    /// Changes after this revision.
    After(i64),
}

impl WatchParams {
    pub fn from_query(q: &HashMap<String, String>, accept: As) -> ApiResult<Self> {
        let send_initial = q
            .get("sendInitialEvents")
            .map(|s| s == "true")
            .unwrap_or(false);
        let rv = q.get("resourceVersion").map(|s| s.as_str()).unwrap_or("");
        let start =
            if send_initial || rv.is_empty() || rv == "0" {
                Start::CurrentState
            } else {
                Start::After(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv}"))
                })?)
            };
        let timeout = match q.get("timeoutSeconds").filter(|s| !s.is_empty()) {
            Some(t) => Duration::from_secs(
                t.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?,
            ),
            None => Duration::from_secs(1800),
        };
        let allow_bookmarks = q
            .get("allowWatchBookmarks")
            .map(|s| s == "true")
            .unwrap_or(false);
        Ok(WatchParams {
            start,
            allow_bookmarks,
            send_initial_end_bookmark: send_initial && allow_bookmarks,
            timeout,
            accept,
            include: IncludeObject::parse(q.get("includeObject").map(|s| s.as_str())),
        })
    }
}

struct Encoder {
    def: &'static ResourceDef,
    accept: As,
    include: IncludeObject,
    sent_columns: bool,
}

impl Encoder {
    fn event(&mut self, ty: &str, obj: &Value) -> Bytes {
        let object = match self.accept {
            As::Object => obj.clone(),
            As::PartialMetadata => table::partial_metadata(obj),
            As::Table => {
                let rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let first = !self.sent_columns;
                self.sent_columns = true;
                table::table(
                    self.def,
                    std::slice::from_ref(obj),
                    &rv,
                    self.include,
                    first,
                )
            }
        };
        line(&json!({"type": ty, "object": object}))
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(&json!({"type": "BOOKMARK", "object": {
            "kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": md}}))
    }
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// Translate a store event into the watch event a filtered client must see.
fn translate(
    def: &ResourceDef,
    ev: &Event,
    filter: &Filter,
    name: Option<&str>,
) -> ApiResult<Option<(&'static str, Value)>> {
    let obj = {
        let mut o = decode_kv(&ev.kv)?;
        o["metadata"]["resourceVersion"] = json!(ev.kv.mod_revision.to_string());
        def.strategy.present(&mut o);
        o
    };
    let matches =
        |o: &Value| filter.matches(o) && name.map(|n| o["metadata"]["name"] == n).unwrap_or(true);
    let now = matches(&obj);
    let before = match &ev.prev {
        Some(p) => {
            let mut prev = decode_kv(p)?;
            def.strategy.present(&mut prev);
            matches(&prev)
        }
        None => false,
    };
    Ok(match ev.kind {
        EventKind::Delete => now.then_some(("DELETED", obj)),
        EventKind::Put => match (before, now) {
            (true, true) => Some(("MODIFIED", obj)),
            (false, true) => Some(("ADDED", obj)),
            (true, false) => Some(("DELETED", obj)),
            (false, false) => None,
        },
    })
}

pub async fn watch(
    ctx: Arc<Ctx>,
    t: &ResourceTarget,
    q: &HashMap<String, String>,
    accept: As,
) -> ApiResult<Response> {
    let def = t.def;
    let filter = Filter::from_query(def, q)?;
    let params = WatchParams::from_query(q, accept)?;
    let ns = if def.namespaced {
        t.namespace.clone()
    } else {
        None
    };
    let name = t.name.clone();
    let prefix = def.prefix(ns.as_deref());
    let mut enc = Encoder {
        def,
        accept: params.accept,
        include: params.include,
        sent_columns: false,
    };

    let mut initial: Vec<Bytes> = Vec::new();
    let start_rev = match params.start {
        Start::After(rv) => rv,
        Start::CurrentState => {
            let (items, rev) = list_objects(&ctx, def, ns.as_deref(), &filter).await?;
            for o in items.iter().filter(|o| {
                name.as_deref()
                    .map(|n| o["metadata"]["name"] == n)
                    .unwrap_or(true)
            }) {
                initial.push(enc.event("ADDED", o));
            }
            if params.send_initial_end_bookmark {
                initial.push(enc.bookmark(rev, true));
            }
            rev
        }
    };
    let mut rx = match ctx.store.watch(&prefix, start_rev).await {
        Ok(rx) => rx,
        Err(e) => {
            let err: ApiError = e.into();
            let body = line(&json!({"type": "ERROR", "object": err.to_status()}));
            return Ok((
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response());
        }
    };

    let (tx, out_rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let bookmark_every = ctx.bookmark_interval;
    tokio::spawn(async move {
        for b in initial {
            if tx.send(Ok(b)).await.is_err() {
                return;
            }
        }
        let mut last_rv = start_rev;
        let deadline = tokio::time::sleep(params.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(bookmark_every);
        tick.tick().await;
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let Some(ev) = ev else { break };
                    last_rv = ev.kv.mod_revision;
                    match translate(def, &ev, &filter, name.as_deref()) {
                        Ok(Some((ty, obj))) => {
                            if tx.send(Ok(enc.event(ty, &obj))).await.is_err() { break; }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = tx.send(Ok(line(&json!({"type": "ERROR", "object": e.to_status()})))).await;
                            break;
                        }
                    }
                }
                _ = tick.tick(), if params.allow_bookmarks => {
                    if tx.send(Ok(enc.bookmark(last_rv, false))).await.is_err() { break; }
                }
                _ = &mut deadline => break,
                _ = tx.closed() => break,
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out_rx);
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}
