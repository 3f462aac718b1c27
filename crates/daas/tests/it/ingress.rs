//! The built-in ingress on a real cluster in the network lab: two busybox httpd backends behind
//! two Services, one Ingress (no class given: it gets the default `daas`) routing two hosts and a
//! path, reached with curl from the LAN namespace (the cluster's "host network") at the node's
//! address; an unknown host is a 404, a Service without endpoints a 503, and HTTPS serves the
//! certificate of the Secret named in `spec.tls` (made here with rcgen, checked by curl against
//! the test CA). The Ingress's status carries the node's address. An HTTP Upgrade (what
//! WebSocket uses) is passed through to a pod and spliced. Needs root and
//! containerd/runc/CNI plugins.

use crate::common;

use std::time::Duration;

use common::agent::{wait_for, wait_node_ready, wait_pods_ready};
use common::netlab::{start_agent_in, Lab};
use common::{stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

fn httpd(name: &str, files: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "{files} && exec httpd -f -p 8080 -h /www"]
    ports: [{{containerPort: 8080, name: http}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"#
    )
}

const INGRESS: &str = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site}
spec:
  tls: [{hosts: [web.example.com], secretName: web-tls}]
  rules:
  - host: web.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}
      - {path: /none, pathType: Exact, backend: {service: {name: none, port: {number: 80}}}}
  - host: "*.api.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: none}
spec:
  selector: {app: nothing-has-this}
  ports: [{port: 80}]
"#;

/// A CA and a certificate for `host` signed by it: (ca pem, cert pem, key pem).
fn certificates(host: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ingress test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![host.to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

#[test]
fn ingress_routes_two_hosts_and_a_path_with_tls_from_a_secret() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let a = start_agent_in(&c, &mut lab, "ing-a", 1, serde_json::json!({}));
    wait_node_ready(&c, &a, "ing-a");
    let node_ip = Lab::node_ip(1).to_string();

    let dir = tempfile::tempdir().unwrap();
    let (ca, crt, key) = certificates("web.example.com");
    let path = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    std::fs::write(path("ca.pem"), &ca).unwrap();
    std::fs::write(path("tls.crt"), &crt).unwrap();
    std::fs::write(path("tls.key"), &key).unwrap();
    c.ok(&[
        "create",
        "secret",
        "tls",
        "web-tls",
        &format!("--cert={}", path("tls.crt")),
        &format!("--key={}", path("tls.key")),
    ]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "{}---\n{}---\n{INGRESS}",
            httpd("web", "mkdir -p /www && echo served-by-web > /www/index.html"),
            httpd(
                "api",
                "mkdir -p /www/api && echo served-by-api > /www/index.html && echo api-path > /www/api/index.html"
            ),
        ),
    );
    // The admission gave it the default class; the controller publishes it on the node.
    assert_eq!(
        stdout(&c.kubectl(&[
            "get",
            "ingress",
            "site",
            "-o",
            "jsonpath={.spec.ingressClassName}"
        ])),
        "daas"
    );
    wait_for(
        &c,
        "the ingress status",
        Duration::from_secs(30),
        || {
            stdout(&c.kubectl(&[
                "get",
                "ingress",
                "site",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[*].ip}",
            ])) == node_ip
        },
        &a,
    );
    // kubectl: discovery, tables (short name `ing`), the built-in class marked default.
    let ar = c.ok(&["api-resources", "--api-group=networking.k8s.io"]);
    assert!(
        ar.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == [
                "ingresses",
                "ing",
                "networking.k8s.io/v1",
                "true",
                "Ingress"
            ]),
        "{ar}"
    );
    assert!(
        ar.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == [
                "ingressclasses",
                "networking.k8s.io/v1",
                "false",
                "IngressClass"
            ]),
        "{ar}"
    );
    let table = c.ok(&["get", "ing", "site"]);
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..6],
        [
            "site",
            "daas",
            "web.example.com,*.api.example.com",
            node_ip.as_str(),
            "80,",
            "443"
        ],
        "{table}"
    );
    let classes = c.ok(&["get", "ingressclass"]);
    assert!(
        classes
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..2]
                == ["daas", "k3s-daas.io/ingress"]),
        "{classes}"
    );
    // Upstream validation through kubectl.
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad}\nspec:\n  rules:\n  - host: \"10.0.0.1\"\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}\n",
    );
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"),
        "{err}"
    );
    let curl = |args: &[&str]| stdout(&Lab::run_in(&lab.lan, "curl", args));
    let http = |host: &str, p: &str| {
        curl(&[
            "-s",
            "-m",
            "3",
            "--resolve",
            &format!("{host}:80:{node_ip}"),
            &format!("http://{host}{p}"),
        ])
        .trim()
        .to_string()
    };
    let code = |host: &str, p: &str| {
        curl(&[
            "-s",
            "-m",
            "3",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--resolve",
            &format!("{host}:80:{node_ip}"),
            &format!("http://{host}{p}"),
        ])
    };
    wait_for(
        &c,
        "both hosts routed",
        Duration::from_secs(90),
        || {
            http("web.example.com", "/") == "served-by-web"
                && http("x.api.example.com", "/") == "served-by-api"
        },
        &a,
    );
    // A path of the first host goes to the other Service (port by name), element-wise.
    assert_eq!(http("web.example.com", "/api/"), "api-path");
    // `/apifoo` is not under `/api`: web's httpd answers (its own 404, not the proxy's).
    assert_eq!(code("web.example.com", "/apifoo"), "404");
    assert_ne!(http("web.example.com", "/apifoo"), "404 page not found");
    // Only one label for the wildcard; unknown hosts: 404 from the proxy.
    assert_eq!(code("a.b.api.example.com", "/"), "404");
    assert_eq!(code("unknown.example.org", "/"), "404");
    assert_eq!(
        http("unknown.example.org", "/"),
        "404 page not found",
        "the proxy's own 404"
    );
    // A Service without ready endpoints: 503.
    assert_eq!(code("web.example.com", "/none"), "503");

    // HTTPS: the Secret's certificate for the host, verified against the test CA.
    let https = |host: &str| {
        let o = Lab::run_in(
            &lab.lan,
            "curl",
            &[
                "-sS",
                "-m",
                "3",
                "--cacert",
                &path("ca.pem"),
                "--resolve",
                &format!("{host}:443:{node_ip}"),
                &format!("https://{host}/"),
            ],
        );
        (stdout(&o).trim().to_string(), common::stderr(&o))
    };
    wait_for(
        &c,
        "HTTPS with the Secret's certificate",
        Duration::from_secs(30),
        || https("web.example.com").0 == "served-by-web",
        &a,
    );
    let (_, err) = https("x.api.example.com");
    assert!(
        err.contains("SSL") || err.contains("certificate") || err.contains("subject"),
        "a host the certificate does not name must fail verification: {err}"
    );
}

/// An upgrading backend in a pod: python from the host's `/usr` (hostPath, read-only) through
/// the host's dynamic loader; a request with `Upgrade: echo` gets `101 Switching Protocols` and
/// then every chunk back prefixed with `echo-from-pod:`; anything else gets 400.
const UPGRADE_BACKEND: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: upg, labels: {app: upg}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: upg
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    env: [{name: PYTHONHOME, value: /usr}]
    command:
    - /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
    - /usr/bin/python3
    - -c
    - |
      import socket, threading
      s = socket.socket()
      s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      s.bind(("0.0.0.0", 8080))
      s.listen()
      def serve(c):
          buf = b""
          while b"\r\n\r\n" not in buf:
              d = c.recv(1024)
              if not d:
                  return c.close()
              buf += d
          if b"\r\nupgrade: echo\r\n" not in buf.split(b"\r\n\r\n")[0].lower() + b"\r\n":
              c.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\nconnection: close\r\n\r\nno upgrade\n")
              return c.close()
          c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
          while True:
              d = c.recv(1024)
              if not d:
                  break
              c.sendall(b"echo-from-pod:" + d)
          c.close()
      while True:
          c, _ = s.accept()
          threading.Thread(target=serve, args=(c,), daemon=True).start()
    ports: [{containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
    volumeMounts: [{name: usr, mountPath: /usr, readOnly: true}]
  volumes:
  - name: usr
    hostPath: {path: /usr, type: Directory}
---
apiVersion: v1
kind: Service
metadata: {name: upg}
spec:
  selector: {app: upg}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: upg}
spec:
  ingressClassName: daas
  rules:
  - host: upg.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: upg, port: {number: 80}}}}]}
"#;

/// HTTP Upgrade (what WebSocket uses) through the node's ingress proxy: a client on the LAN sends
/// `Connection: Upgrade`, the pod answers 101, and bytes then flow both ways over the spliced
/// connection; without the upgrade headers the same backend answers 400 through the proxy.
#[test]
fn ingress_passes_an_http_upgrade_through() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let a = start_agent_in(&c, &mut lab, "ingu-a", 1, serde_json::json!({}));
    wait_node_ready(&c, &a, "ingu-a");
    let node_ip = Lab::node_ip(1).to_string();
    c.ok_stdin(&["apply", "-f", "-"], UPGRADE_BACKEND);
    wait_pods_ready(&c, &a, &["upg"]);
    let client = |upgrade: bool| {
        let headers = if upgrade {
            "Connection: Upgrade\\r\\nUpgrade: echo\\r\\n"
        } else {
            ""
        };
        let script = format!(
            r#"
import socket
c = socket.create_connection(("{node_ip}", 80), timeout=3)
c.sendall(b"GET /chat HTTP/1.1\r\nHost: upg.example.com\r\n{headers}\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    d = c.recv(1024)
    if not d:
        break
    buf += d
head, _, rest = buf.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
if b" 101 " in head:
    for m in (b"one", b"two"):
        c.sendall(m)
        print(c.recv(1024).decode())
"#
        );
        stdout(&Lab::run_in(&lab.lan, "python3", &["-c", &script]))
    };
    wait_for(
        &c,
        "the upgrade through the ingress",
        Duration::from_secs(30),
        || client(true).starts_with("HTTP/1.1 101"),
        &a,
    );
    assert_eq!(
        client(true),
        "HTTP/1.1 101 Switching Protocols\necho-from-pod:one\necho-from-pod:two\n"
    );
    assert_eq!(
        client(false).lines().next(),
        Some("HTTP/1.1 400 Bad Request")
    );
}
