//! The DNS protocol side: one query in, one response out ([`Resolver::handle`]), over UDP and
//! TCP listeners bound with `IP_FREEBIND` (the node gateway address may not exist yet when the
//! agent starts: the CNI bridge gets it with the first pod).
//!
//! Only clients in the allowed networks (the cluster CIDR and the node's own addresses) are
//! answered; everyone else gets REFUSED, so a staker's host is never an open resolver. Names
//! outside the cluster domain are forwarded to the upstream servers in turn, each within the
//! timeout; SERVFAIL when none answers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use super::zone::{Answer, Zone};
use super::{Cidr, DnsError};

/// Largest UDP response without EDNS (RFC 1035).
const PLAIN_UDP_MAX: usize = 512;
/// The UDP payload size this server advertises and accepts (the DNS flag day's 1232).
const EDNS_UDP_MAX: u16 = 1232;
/// Queries handled at once per listener.
const MAX_IN_FLIGHT: usize = 256;
/// An idle TCP client is closed after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// How a query came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Answers queries from the current [`Zone`] and the upstream servers.
pub struct Resolver {
    pub zone: watch::Receiver<Arc<Zone>>,
    pub forwarders: Vec<SocketAddr>,
    pub allowed: Vec<Cidr>,
    /// Per upstream server.
    pub timeout: Duration,
}

/// A query id for the upstream (unpredictable enough that an off-path answer does not match).
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() as u16
}

fn error_response(id: u16, op: OpCode, code: ResponseCode) -> Option<Vec<u8>> {
    Message::error_msg(id, op, code).to_vec().ok()
}

impl Resolver {
    fn allowed(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.allowed.iter().any(|c| c.contains(ip))
    }

    /// The response to one DNS message from `src` (none: not even a header to answer to).
    pub async fn handle(&self, bytes: &[u8], src: IpAddr, transport: Transport) -> Option<Vec<u8>> {
        let id = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]);
        if !self.allowed(src) {
            tracing::debug!(%src, "query from outside the cluster refused");
            return error_response(id, OpCode::Query, ResponseCode::Refused);
        }
        let req = match Message::from_vec(bytes) {
            Ok(m) => m,
            Err(_) => return error_response(id, OpCode::Query, ResponseCode::FormErr),
        };
        if req.message_type() != MessageType::Query {
            return None;
        }
        if req.op_code() != OpCode::Query {
            return error_response(id, req.op_code(), ResponseCode::NotImp);
        }
        let [query] = req.queries() else {
            return error_response(id, OpCode::Query, ResponseCode::FormErr);
        };
        let zone = self.zone.borrow().clone();
        let answer = zone.resolve(query.name(), query.query_type());
        tracing::debug!(name = %query.name(), qtype = %query.query_type(), answer = ?std::mem::discriminant(&answer), "query");
        let mut resp = Message::new();
        resp.set_id(id)
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(req.recursion_desired())
            .set_recursion_available(true)
            .add_query(query.clone());
        match answer {
            Answer::Forward => {
                return match self.forward(bytes, transport).await {
                    Some(r) => Some(r),
                    None => {
                        let mut m = resp;
                        m.set_response_code(ResponseCode::ServFail);
                        m.to_vec().ok()
                    }
                };
            }
            Answer::NxDomain => {
                resp.set_authoritative(true)
                    .set_response_code(ResponseCode::NXDomain);
                resp.add_name_servers(zone.soa());
            }
            Answer::Records {
                mut answers,
                additionals,
            } => {
                resp.set_authoritative(true);
                if answers.is_empty() {
                    resp.add_name_servers(zone.soa());
                }
                let chased = self
                    .chase(&zone, &answers, query.query_type(), transport)
                    .await;
                answers.extend(chased);
                resp.add_answers(answers).add_additionals(additionals);
            }
        }
        let max = match (transport, req.extensions()) {
            (Transport::Tcp, _) => usize::from(u16::MAX),
            (Transport::Udp, Some(e)) => usize::from(e.max_payload().clamp(512, EDNS_UDP_MAX)),
            (Transport::Udp, None) => PLAIN_UDP_MAX,
        };
        if req.extensions().is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_UDP_MAX);
            resp.set_edns(edns);
        }
        let out = resp.to_vec().ok()?;
        if out.len() > max {
            // Too big for the client's UDP: the client retries over TCP.
            return resp.truncate().to_vec().ok();
        }
        Some(out)
    }

    /// An ExternalName's CNAME asked for A/AAAA: the target's addresses too (from the zone, or
    /// from upstream), as CoreDNS does, so stub resolvers that do not follow CNAMEs get them.
    async fn chase(
        &self,
        zone: &Zone,
        answers: &[Record],
        qtype: RecordType,
        transport: Transport,
    ) -> Vec<Record> {
        let target = match answers {
            [only] if matches!(qtype, RecordType::A | RecordType::AAAA) => match only.data() {
                RData::CNAME(t) => t.0.clone(),
                _ => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        match zone.resolve(&target, qtype) {
            Answer::Records { answers, .. } => answers,
            Answer::NxDomain => Vec::new(),
            Answer::Forward => {
                let mut q = Message::new();
                q.set_id(rand_id())
                    .set_recursion_desired(true)
                    .add_query(Query::query(target, qtype));
                let Ok(bytes) = q.to_vec() else {
                    return Vec::new();
                };
                self.forward(&bytes, transport)
                    .await
                    .and_then(|r| Message::from_vec(&r).ok())
                    .map(|mut m| m.take_answers())
                    .unwrap_or_default()
            }
        }
    }

    /// Ask the upstream servers in turn; the first answer wins.
    async fn forward(&self, bytes: &[u8], transport: Transport) -> Option<Vec<u8>> {
        for up in &self.forwarders {
            let r = tokio::time::timeout(self.timeout, async {
                match transport {
                    Transport::Udp => forward_udp(*up, bytes).await,
                    Transport::Tcp => forward_tcp(*up, bytes).await,
                }
            })
            .await;
            match r {
                Ok(Ok(resp)) => return Some(resp),
                Ok(Err(e)) => tracing::debug!(upstream = %up, error = %e, "forwarding failed"),
                Err(_) => tracing::debug!(upstream = %up, "forwarding timed out"),
            }
        }
        None
    }
}

async fn forward_udp(up: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if up.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(up).await?;
    sock.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Only the answer to this query (same id) counts.
        if n >= 2 && buf[..2] == bytes[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn forward_tcp(up: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(up).await?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    s.write_all(&len.to_be_bytes()).await?;
    s.write_all(bytes).await?;
    let n = s.read_u16().await?;
    let mut buf = vec![0u8; usize::from(n)];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// A socket bound with `IP_FREEBIND`/`IPV6_FREEBIND`.
fn freebind_socket(addr: SocketAddr, ty: socket2::Type) -> Result<socket2::Socket, DnsError> {
    let err = |source| DnsError::Bind { addr, source };
    let domain = socket2::Domain::for_address(addr);
    let proto = if ty == socket2::Type::DGRAM {
        socket2::Protocol::UDP
    } else {
        socket2::Protocol::TCP
    };
    let s = socket2::Socket::new(domain, ty, Some(proto)).map_err(err)?;
    if addr.is_ipv4() {
        s.set_freebind_v4(true).map_err(err)?;
    } else {
        s.set_freebind_v6(true).map_err(err)?;
    }
    if ty == socket2::Type::STREAM {
        s.set_reuse_address(true).map_err(err)?;
    }
    s.set_nonblocking(true).map_err(err)?;
    s.bind(&addr.into()).map_err(err)?;
    Ok(s)
}

/// The UDP and TCP listeners on `addr`.
pub fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    let err = |source| DnsError::Bind { addr, source };
    let udp = freebind_socket(addr, socket2::Type::DGRAM)?;
    let udp = UdpSocket::from_std(udp.into()).map_err(err)?;
    let tcp = freebind_socket(addr, socket2::Type::STREAM)?;
    tcp.listen(128).map_err(err)?;
    let tcp = TcpListener::from_std(tcp.into()).map_err(err)?;
    Ok((udp, tcp))
}

/// Serve UDP queries until the task is aborted.
pub async fn serve_udp(sock: UdpSocket, resolver: Arc<Resolver>) {
    let sock = Arc::new(sock);
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "dns udp receive failed");
                continue;
            }
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let query = buf[..n].to_vec();
        let (sock, resolver) = (sock.clone(), resolver.clone());
        let span = tracing::debug_span!("dns", %src, transport = "udp");
        tokio::spawn(
            async move {
                let _permit = permit;
                if let Some(resp) = resolver.handle(&query, src.ip(), Transport::Udp).await {
                    if let Err(e) = sock.send_to(&resp, src).await {
                        tracing::debug!(error = %e, "dns udp send failed");
                    }
                }
            }
            .instrument(span),
        );
    }
}

/// Serve TCP clients (length-prefixed messages, several per connection) until aborted.
pub async fn serve_tcp(listener: TcpListener, resolver: Arc<Resolver>) {
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let (mut conn, src) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "dns tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let resolver = resolver.clone();
        let span = tracing::debug_span!("dns", %src, transport = "tcp");
        tokio::spawn(
            async move {
                let _permit = permit;
                loop {
                    let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, conn.read_u16()).await else {
                        return;
                    };
                    let mut q = vec![0u8; usize::from(len)];
                    if tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut q))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let Some(resp) = resolver.handle(&q, src.ip(), Transport::Tcp).await else {
                        return;
                    };
                    let Ok(n) = u16::try_from(resp.len()) else {
                        return;
                    };
                    if conn.write_all(&n.to_be_bytes()).await.is_err()
                        || conn.write_all(&resp).await.is_err()
                    {
                        return;
                    }
                }
            }
            .instrument(span),
        );
    }
}

/// A query message (for the tests).
#[cfg(test)]
fn query_bytes(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
    use hickory_proto::rr::Name;
    let mut m = Message::new();
    m.set_id(id)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.to_vec().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(forwarders: Vec<SocketAddr>) -> Resolver {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]}}))
        .unwrap();
        let ext: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "api.external.example"}}))
        .unwrap();
        let zone = Zone::build("cluster.local", &[svc, ext], &[]);
        let (_tx, rx) = watch::channel(Arc::new(zone));
        Resolver {
            zone: rx,
            forwarders,
            allowed: vec![
                "10.42.0.0/16".parse().unwrap(),
                "127.0.0.0/8".parse().unwrap(),
            ],
            timeout: Duration::from_millis(300),
        }
    }

    fn pod() -> IpAddr {
        "10.42.1.7".parse().unwrap()
    }

    async fn ask(r: &Resolver, name: &str, t: RecordType, src: IpAddr) -> Message {
        let b = r
            .handle(&query_bytes(name, t, 4242), src, Transport::Udp)
            .await
            .unwrap();
        let m = Message::from_vec(&b).unwrap();
        assert_eq!(m.id(), 4242);
        m
    }

    #[tokio::test]
    async fn answers_the_cluster_zone_authoritatively() {
        let r = resolver(vec![]);
        let m = ask(&r, "web.default.svc.cluster.local.", RecordType::A, pod()).await;
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.authoritative());
        assert_eq!(
            m.answers()[0].data(),
            &RData::A("10.43.0.20".parse().unwrap())
        );
        let m = ask(
            &r,
            "web.default.svc.cluster.local.",
            RecordType::AAAA,
            pod(),
        )
        .await;
        assert_eq!(
            (m.response_code(), m.answers().len()),
            (ResponseCode::NoError, 0)
        );
        assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
        let m = ask(&r, "gone.default.svc.cluster.local.", RecordType::A, pod()).await;
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
    }

    #[tokio::test]
    async fn refuses_clients_outside_the_cluster() {
        let r = resolver(vec![]);
        for src in ["172.30.0.1", "192.0.2.1", "10.43.0.1", "::ffff:8.8.8.8"] {
            let m = ask(
                &r,
                "web.default.svc.cluster.local.",
                RecordType::A,
                src.parse().unwrap(),
            )
            .await;
            assert_eq!(m.response_code(), ResponseCode::Refused, "{src}");
            assert!(m.answers().is_empty());
        }
        // Not even forwarded.
        let m = ask(
            &r,
            "example.org.",
            RecordType::A,
            "192.0.2.1".parse().unwrap(),
        )
        .await;
        assert_eq!(m.response_code(), ResponseCode::Refused);
    }

    #[tokio::test]
    async fn forwards_other_names_and_servfails_without_upstream() {
        // An upstream that answers every A query with 192.0.2.7.
        let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, from) = up.recv_from(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut resp = Message::new();
                resp.set_id(q.id()).set_message_type(MessageType::Response);
                resp.add_query(q.queries()[0].clone());
                resp.add_answer(Record::from_rdata(
                    q.queries()[0].name().clone(),
                    60,
                    RData::A("192.0.2.7".parse().unwrap()),
                ));
                up.send_to(&resp.to_vec().unwrap(), from).await.unwrap();
            }
        });
        // A dead upstream first: the next one is tried.
        let dead = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let r = resolver(vec![dead.local_addr().unwrap(), up_addr]);
        let m = ask(&r, "external.example.", RecordType::A, pod()).await;
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert_eq!(
            m.answers()[0].data(),
            &RData::A("192.0.2.7".parse().unwrap())
        );
        assert!(!m.authoritative());
        // An ExternalName's target is looked up upstream.
        let m = ask(&r, "ext.default.svc.cluster.local.", RecordType::A, pod()).await;
        assert_eq!(m.answers().len(), 2, "{m:?}");
        assert_eq!(m.answers()[0].record_type(), RecordType::CNAME);
        assert_eq!(
            m.answers()[1].data(),
            &RData::A("192.0.2.7".parse().unwrap())
        );

        let r = resolver(vec![dead.local_addr().unwrap()]);
        let m = ask(&r, "external.example.", RecordType::A, pod()).await;
        assert_eq!(m.response_code(), ResponseCode::ServFail);
    }

    #[tokio::test]
    async fn serves_udp_and_tcp_on_a_freebind_address() {
        // 127.0.0.53 is not ... any address on lo works; freebind also allows one that is not
        // configured yet.
        let (udp, tcp) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let udp_addr = udp.local_addr().unwrap();
        let tcp_addr = tcp.local_addr().unwrap();
        let r = Arc::new(resolver(vec![]));
        let t1 = tokio::spawn(serve_udp(udp, r.clone()));
        let t2 = tokio::spawn(serve_tcp(tcp, r));
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(
            &query_bytes("web.default.svc.cluster.local.", RecordType::A, 7),
            udp_addr,
        )
        .await
        .unwrap();
        let mut buf = vec![0u8; 1500];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Message::from_vec(&buf[..n]).unwrap().answers().len(), 1);
        let m = forward_tcp(
            tcp_addr,
            &query_bytes(
                "_http._tcp.web.default.svc.cluster.local.",
                RecordType::SRV,
                8,
            ),
        )
        .await
        .unwrap();
        let m = Message::from_vec(&m).unwrap();
        assert_eq!(
            m.answers()[0].data().to_string(),
            "0 100 80 web.default.svc.cluster.local."
        );
        // An address not on any interface can be bound (the node gateway before the bridge).
        let (_u, _t) = bind("10.255.254.1:0".parse().unwrap()).unwrap();
        t1.abort();
        t2.abort();
    }
}
