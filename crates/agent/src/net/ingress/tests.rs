//! The proxy over real sockets: a fixed cluster view, real HTTP backends on loopback addresses,
//! requests through the proxy's listener.

use super::*;
use serde_json::json;

/// An HTTP backend answering `<name> <host> <xff> <xfp> <xfh> <path?query>`.
async fn backend(ip: &str, name: &'static str) -> SocketAddr {
    backend_at(TcpListener::bind(format!("{ip}:0")).await.unwrap(), name)
}

fn backend_at(l: TcpListener, name: &'static str) -> SocketAddr {
    let addr = l.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| async move {
        let h = |k: &str| {
            req.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        format!(
            "{name} {} {} {} {} {}",
            h("host"),
            h("x-forwarded-for"),
            h("x-forwarded-proto"),
            h("x-forwarded-host"),
            req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("")
        )
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

fn service(name: &str, port: u16) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}}))
        .unwrap(),
    )
}

fn slice(svc: &str, eps: &[SocketAddr]) -> Arc<EndpointSlice> {
    let port = eps.first().map(|e| e.port()).unwrap_or(1);
    Arc::new(
        serde_json::from_value(
            json!({"metadata": {"name": format!("{svc}-1"), "namespace": "web",
            "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": eps.iter().map(|e| json!({"addresses": [e.ip().to_string()],
            "conditions": {"ready": true}})).collect::<Vec<_>>()}),
        )
        .unwrap(),
    )
}

async fn get(proxy: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = Request::get(format!("http://{proxy}{path}"))
        .header(HOST, host)
        .header("x-forwarded-for", "192.0.2.7")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test]
async fn routes_by_host_and_path_to_ready_endpoints_round_robin() {
    let a1 = backend("127.0.0.1", "a1").await;
    // The same port on a second loopback address: a second "pod" of Service a (when free).
    let a2 = TcpListener::bind(SocketAddr::new("127.0.0.2".parse().unwrap(), a1.port()))
        .await
        .ok()
        .map(|l| backend_at(l, "a2"));
    let b = backend("127.0.0.1", "b").await;
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        a
    };
    let a_eps: Vec<SocketAddr> = [Some(a1), a2].into_iter().flatten().collect();
    let view = Snapshot {
        ingresses: vec![Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "web"},
            "spec": {"ingressClassName": "daas", "rules": [
                {"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "a", "port": {"name": "http"}}}},
                    {"path": "/empty", "pathType": "Prefix", "backend": {"service": {"name": "empty", "port": {"number": 80}}}},
                    {"path": "/dead", "pathType": "Prefix", "backend": {"service": {"name": "dead", "port": {"number": 80}}}}]}},
                {"host": "*.b.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "b", "port": {"number": 80}}}}]}}]}}))
            .unwrap(),
        )],
        services: vec![
            service("a", a1.port()),
            service("b", b.port()),
            service("empty", 1),
            service("dead", dead.port()),
        ],
        slices: vec![
            slice("a", &a_eps),
            slice("b", &[b]),
            slice("empty", &[]),
            slice("dead", &[dead]),
        ],
    };
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(serve(l, Proxy::new(view), None));

    let (code, body) = get(addr, "a.example.com", "/x?q=1").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        format!("a1 a.example.com 192.0.2.7, 127.0.0.1 http a.example.com /x?q=1")
    );
    if a_eps.len() == 2 {
        let (_, second) = get(addr, "a.example.com", "/").await;
        assert!(second.starts_with("a2 "), "{second}");
        let (_, third) = get(addr, "a.example.com", "/").await;
        assert!(third.starts_with("a1 "), "{third}");
    }
    // Wildcard host, with a port in the Host header.
    let (code, body) = get(addr, "x.b.example.com:8080", "/p").await;
    assert_eq!(code, 200);
    assert!(body.starts_with("b x.b.example.com:8080 "), "{body}");
    // One label only for a wildcard; unknown hosts: 404.
    assert_eq!(get(addr, "y.x.b.example.com", "/").await.0, 404);
    let (code, body) = get(addr, "unknown.test", "/").await;
    assert_eq!((code, body.as_str()), (404, "404 page not found\n"));
    // No ready endpoints: 503; an endpoint refusing connections: 502.
    assert_eq!(get(addr, "a.example.com", "/empty").await.0, 503);
    assert_eq!(get(addr, "a.example.com", "/dead").await.0, 502);
    task.abort();
}

#[test]
fn host_of_a_request() {
    let r = |h: &str| request_host(&Request::get("/").header(HOST, h).body(()).unwrap());
    assert_eq!(r("A.Example.COM:80"), "a.example.com");
    assert_eq!(r("[::1]:8080"), "::1");
    assert_eq!(r("x.test."), "x.test");
}

/// A WebSocket backend (a real server handshake, then an echo of every text message with its
/// name) and a plain HTTP request to it, through the proxy: the upgrade is passed through and
/// the two connections are spliced; a request without `Connection: upgrade` stays plain HTTP.
#[tokio::test]
async fn websocket_upgrades_are_passed_through_and_spliced() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let wl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_addr = wl.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = wl.accept().await {
            tokio::spawn(async move {
                // A request that is not an upgrade is refused by the handshake: the socket closes.
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m {
                        if ws
                            .send(Message::text(format!("ws-backend echo {}", t.as_str())))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    let plain = backend("127.0.0.1", "plain").await;
    let view = Snapshot {
        ingresses: vec![Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "ws", "namespace": "web"},
            "spec": {"ingressClassName": "daas", "rules": [
                {"host": "ws.example.com", "http": {"paths": [
                    {"path": "/ws", "pathType": "Prefix", "backend": {"service": {"name": "ws", "port": {"number": 80}}}},
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "plain", "port": {"number": 80}}}}]}}]}}))
            .unwrap(),
        )],
        services: vec![service("ws", ws_addr.port()), service("plain", plain.port())],
        slices: vec![slice("ws", &[ws_addr]), slice("plain", &[plain])],
    };
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(serve(l, Proxy::new(view), None));

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async("ws://ws.example.com/ws/chat", tcp)
        .await
        .expect("the WebSocket handshake through the proxy");
    assert_eq!(resp.status(), 101);
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("an answer")
            .expect("open")
            .unwrap();
        assert_eq!(
            m.into_text().unwrap().as_str(),
            format!("ws-backend echo hello {i}")
        );
    }
    ws.close(None).await.unwrap();

    // A plain request on the same host is still proxied as HTTP, without upgrade headers.
    let (code, body) = get(addr, "ws.example.com", "/x").await;
    assert_eq!(code, 200);
    assert!(body.starts_with("plain ws.example.com "), "{body}");

    // A WebSocket handshake to a backend that does not upgrade gets the backend's answer.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let err = tokio_tungstenite::client_async("ws://ws.example.com/plain", tcp)
        .await
        .expect_err("no upgrade");
    assert!(err.to_string().contains("200"), "{err}");
    task.abort();
}
