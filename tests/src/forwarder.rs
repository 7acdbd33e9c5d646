//! A TCP port forwarder, as `docker run -p 24000:23000` or a NAT puts in front of a storage:
//! connections to `listen` are carried to `target` from the forwarder's own address (so a rule
//! that refuses clients at the target still lets the forwarded connections in). It counts the
//! connections it carried, so a test can tell that a client came through it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Forwarder {
    pub listen: SocketAddr,
    carried: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Forwarder {
    pub fn start(listen: &str, target: &str) -> Forwarder {
        let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("bind {listen}: {e}"));
        let listen = listener.local_addr().unwrap();
        let target: SocketAddr = target.parse().unwrap();
        let f = Forwarder {
            listen,
            carried: Arc::default(),
            stop: Arc::default(),
            open: Arc::default(),
        };
        let (carried, stop, open) = (f.carried.clone(), f.stop.clone(), f.open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = fdfs_common::net::connect(
                    &target.ip().to_string(),
                    target.port(),
                    Some(listen.ip()),
                    Duration::from_secs(5),
                    Duration::from_secs(3600),
                ) else {
                    continue;
                };
                carried.fetch_add(1, Ordering::SeqCst);
                let mut o = open.lock().unwrap();
                o.push(client.try_clone().unwrap());
                o.push(server.try_clone().unwrap());
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        f
    }

    /// Connections carried so far.
    pub fn carried(&self) -> usize {
        self.carried.load(Ordering::SeqCst)
    }
}

/// Copy `from` to `to` until the end, then pass the end on.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.listen);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}
