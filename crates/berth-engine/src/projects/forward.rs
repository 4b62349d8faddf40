//! Host port forwarding for native services: a host port relays TCP
//! connections and UDP datagrams to the port the service listens on.
//! Dropping a [`Forwarder`] closes its port and every relayed connection;
//! its target can change while it runs, so a service re-created on another
//! port keeps its host port without closing and re-binding it.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// A UDP client's relay is dropped after this long without traffic.
const UDP_IDLE: Duration = Duration::from_secs(120);

/// A running forwarder; closes its port when dropped.
#[derive(Debug)]
pub struct Forwarder {
    task: JoinHandle<()>,
    target: Arc<Mutex<SocketAddr>>,
    /// The bound address.
    pub local: SocketAddr,
}

impl Forwarder {
    /// Where new connections (TCP) and new clients (UDP) are relayed to.
    pub fn target(&self) -> SocketAddr {
        *self.target.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Relays new connections and clients to `target` from now on; those
    /// already relayed keep their upstream.
    pub fn retarget(&self, target: SocketAddr) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = target;
    }
}

fn current(target: &Mutex<SocketAddr>) -> SocketAddr {
    *target.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards TCP connections on `bind` to `target`.
pub async fn tcp(bind: SocketAddr, target: SocketAddr) -> io::Result<Forwarder> {
    let listener = TcpListener::bind(bind).await?;
    let local = listener.local_addr()?;
    let target = Arc::new(Mutex::new(target));
    let shared = target.clone();
    let task = tokio::spawn(async move {
        // Owned here, so aborting the accept loop aborts every relay too.
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut inbound, _)) = accepted else { continue };
                    let target = current(&shared);
                    conns.spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = inbound.set_nodelay(true);
                            let _ = outbound.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    Ok(Forwarder {
        task,
        target,
        local,
    })
}

/// Relays UDP datagrams on `bind` to `target`, and replies back to each
/// client through its own upstream socket.
pub async fn udp(bind: SocketAddr, target: SocketAddr) -> io::Result<Forwarder> {
    let sock = Arc::new(UdpSocket::bind(bind).await?);
    let local = sock.local_addr()?;
    let target = Arc::new(Mutex::new(target));
    let shared = target.clone();
    let task = tokio::spawn(async move {
        let mut relays: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut tasks = JoinSet::new();
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                got = sock.recv_from(&mut buf) => {
                    let Ok((n, client)) = got else { continue };
                    let up = match relays.get(&client) {
                        Some(u) => u.clone(),
                        None => {
                            let target = current(&shared);
                            let any: SocketAddr = if target.is_ipv4() {
                                "0.0.0.0:0".parse().expect("literal address")
                            } else {
                                "[::]:0".parse().expect("literal address")
                            };
                            let Ok(u) = UdpSocket::bind(any).await else { continue };
                            if u.connect(target).await.is_err() {
                                continue;
                            }
                            let u = Arc::new(u);
                            relays.insert(client, u.clone());
                            let (back, up2) = (sock.clone(), u.clone());
                            tasks.spawn(async move {
                                let mut b = vec![0u8; 65536];
                                while let Ok(Ok(n)) =
                                    tokio::time::timeout(UDP_IDLE, up2.recv(&mut b)).await
                                {
                                    let _ = back.send_to(&b[..n], client).await;
                                }
                                client
                            });
                            u
                        }
                    };
                    let _ = up.send(&buf[..n]).await;
                }
                Some(Ok(client)) = tasks.join_next(), if !tasks.is_empty() => {
                    relays.remove(&client);
                }
            }
        }
    });
    Ok(Forwarder {
        task,
        target,
        local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn tcp_relays_both_ways_and_closes_on_drop() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = upstream.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 5];
                    s.read_exact(&mut b).await.unwrap();
                    s.write_all(&b.to_ascii_uppercase()).await.unwrap();
                });
            }
        });
        let f = tcp("127.0.0.1:0".parse().unwrap(), target).await.unwrap();
        let mut c = TcpStream::connect(f.local).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"HELLO");
        let port = f.local;
        drop(f);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(port).await.is_err());
    }

    #[tokio::test]
    async fn udp_relays_replies_to_the_sender() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            while let Ok((n, from)) = upstream.recv_from(&mut b).await {
                let _ = upstream.send_to(&b[..n].to_ascii_uppercase(), from).await;
            }
        });
        let f = udp("127.0.0.1:0".parse().unwrap(), target).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(b"ping", f.local).await.unwrap();
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], b"PING");
    }
}
