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
use crate::handlers::{decode_kv, Ctx, Filter};
use crate::registry::crd_conversion;
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

/// Translate a store event into the watch event a filtered client must see: both the object and
/// its previous state as served (converted to the requested version by a custom resource's
/// conversion webhook, one review per event) before the selectors see them. The previous state is
/// converted only for a label selector: conversion keeps names and namespaces.
async fn translate(
    ctx: &Ctx,
    def: &ResourceDef,
    ev: &Event,
    filter: &Filter,
    name: Option<&str>,
) -> ApiResult<Option<(&'static str, Value)>> {
    let mut obj = decode_kv(&ev.kv)?;
    obj["metadata"]["resourceVersion"] = json!(ev.kv.mod_revision.to_string());
    crd_conversion::to_served(ctx, def, &mut obj).await?;
    def.strategy.present(&mut obj);
    let matches =
        |o: &Value| filter.matches(o) && name.map(|n| o["metadata"]["name"] == n).unwrap_or(true);
    let now = matches(&obj);
    let before = match &ev.prev {
        Some(p) => {
            let mut prev = decode_kv(p)?;
            if filter.labels.is_some() {
                crd_conversion::to_served(ctx, def, &mut prev).await?;
            }
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

/// The ERROR event ending a watch.
fn error_event(e: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": e.to_status()}))
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
            // The current state in one conversion review; a failed conversion ends the watch
            // with an ERROR event, as a failure of a later event does.
            let res = ctx.store.list(&prefix).await?;
            let mut items = res
                .items
                .iter()
                .map(decode_kv)
                .collect::<ApiResult<Vec<_>>>()?;
            if let Err(e) = crd_conversion::all_to_served(&ctx, def, &mut items).await {
                tracing::warn!(resource = def.plural, error = %e, "watch: initial conversion failed");
                return Ok(stream_response(Body::from(error_event(&e))));
            }
            for o in items.iter_mut() {
                def.strategy.present(o);
            }
            for o in items.iter().filter(|o| {
                filter.matches(o)
                    && name
                        .as_deref()
                        .map(|n| o["metadata"]["name"] == n)
                        .unwrap_or(true)
            }) {
                initial.push(enc.event("ADDED", o));
            }
            if params.send_initial_end_bookmark {
                initial.push(enc.bookmark(res.revision, true));
            }
            res.revision
        }
    };
    // One node's pods: the store offers this watch only the events naming that node.
    let route = crate::watchprefilter::route(def, &filter);
    let mut rx = match ctx.store.watch_routed(&prefix, start_rev, route).await {
        Ok(rx) => rx,
        Err(e) => {
            let err: ApiError = e.into();
            return Ok(stream_response(Body::from(error_event(&err))));
        }
    };

    let (tx, out_rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let bookmark_every = ctx.bookmark_interval;
    let prefilter = crate::watchprefilter::needle(def, &filter);
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
                    if let Some(n) = &prefilter {
                        if !crate::watchprefilter::may_match(n, &ev.kv.value, ev.prev.as_ref().map(|p| p.value.as_slice())) {
                            continue;
                        }
                    }
                    match translate(&ctx, def, &ev, &filter, name.as_deref()).await {
                        Ok(Some((ty, obj))) => {
                            if tx.send(Ok(enc.event(ty, &obj))).await.is_err() { break; }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(resource = def.plural, error = %e, "watch ended");
                            let _ = tx.send(Ok(error_event(&e))).await;
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
    Ok(stream_response(Body::from_stream(stream)))
}

fn stream_response(body: Body) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
