//! End-to-end: the Endpoints/EndpointSlice controllers and ServiceLB inside a real `daas up`,
//! seen through the real kubectl; the test plays the kubelet with `kubectl patch
//! --subresource=status`.

use crate::common;

use std::time::{Duration, Instant};

use common::Cluster;

const OBJECTS: &str = r#"apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {k3s-daas.io/staked: "true", kubernetes.io/hostname: node-1}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata:
  name: lb
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, port: 8081, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-a
  labels: {app: web}
spec:
  nodeName: node-1
  containers:
  - name: c
    image: nginx:1.27
    ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web-b
  labels: {app: web}
spec:
  nodeName: node-1
  containers:
  - name: c
    image: nginx:1.27
    ports: [{name: http, containerPort: 9090}]
"#;

fn pod_status(ip: &str) -> String {
    format!(
        r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
    )
}

/// Wait until `kubectl args` prints something `pred` accepts.
fn until(c: &Cluster, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.kubectl(args);
        let text = common::stdout(&out);
        if out.status.success() && pred(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {args:?} never matched; last output:\n{text}{}\n{}",
            common::stderr(&out),
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kubectl_shows_endpoints_slices_and_load_balancer_ingress() {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], OBJECTS);
    let node_status = r#"{"status":{"addresses":[{"type":"InternalIP","address":"192.0.2.21"},{"type":"Hostname","address":"node-1"}],"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}}"#;
    c.ok(&[
        "patch",
        "node",
        "node-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        node_status,
    ]);
    for (pod, ip) in [("web-a", "10.42.0.7"), ("web-b", "10.42.0.8")] {
        c.ok(&[
            "patch",
            "pod",
            pod,
            "--subresource=status",
            "--type=merge",
            "-p",
            &pod_status(ip),
        ]);
    }

    // Each pod's named port resolves to its own container port.
    let eps = until(&c, &["get", "endpoints", "web"], |t| {
        t.contains("10.42.0.7:8080") && t.contains("10.42.0.8:9090")
    });
    assert!(eps.starts_with("NAME"), "{eps}");
    let both = c.ok(&[
        "get",
        "endpoints,endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    assert!(
        both.contains("endpointslice.discovery.k8s.io/web-"),
        "{both}"
    );
    assert!(both.contains("IPv4"), "{both}");
    let slices = c.ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} {.ports[0].port} {.endpoints[0].addresses[0]} {.endpoints[0].conditions.ready}{\"\\n\"}{end}",
    ]);
    let mut rows: Vec<&str> = slices.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            "endpointslice-controller.k8s.io 8080 10.42.0.7 true",
            "endpointslice-controller.k8s.io 9090 10.42.0.8 true"
        ],
        "{slices}"
    );
    let describe = c.ok(&["describe", "svc", "web"]);
    let line = describe
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or_else(|| panic!("{describe}"));
    assert!(
        line.contains("10.42.0.7:8080") && line.contains("10.42.0.8:9090"),
        "{describe}"
    );

    // The LoadBalancer Service: a node port, and the staked Ready node's address as ingress.
    let svc = until(&c, &["get", "svc", "lb"], |t| t.contains("192.0.2.21"));
    let row: Vec<&str> = svc.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[1], "LoadBalancer", "{svc}");
    assert_eq!(row[3], "192.0.2.21", "{svc}");
    assert!(row[4].starts_with("8081:3"), "{svc}");

    // The Service goes: its Endpoints and slices too.
    c.ok(&["delete", "svc", "web"]);
    until(
        &c,
        &[
            "get",
            "endpoints,endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "name",
        ],
        |t| t.trim().is_empty(),
    );
    let gone = c.kubectl(&["get", "endpoints", "web"]);
    assert!(!gone.status.success());
    assert!(
        common::stderr(&gone).contains("endpoints \"web\" not found"),
        "{}",
        common::stderr(&gone)
    );
}
