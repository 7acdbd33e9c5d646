//! The settings a [`super::Server`] is started with, taken from the daemon's config.

use super::allow_hosts::AllowHosts;
use crate::config::server::ServerConfig;
use std::time::Duration;

/// Listener settings taken from the daemon's config.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub name: &'static str,
    pub bind_addr: String,
    pub port: u16,
    pub accept_threads: usize,
    pub work_threads: usize,
    pub max_connections: usize,
    pub network_timeout: Duration,
    pub allow_hosts: AllowHosts,
}

impl ServerOptions {
    /// A daemon's listener as its config sets it: `bind_addr`, `port`, threads, connections,
    /// `network_timeout`, `allow_hosts`.
    pub fn of(name: &'static str, server: &ServerConfig) -> ServerOptions {
        ServerOptions {
            name,
            bind_addr: server.bind_addr.clone(),
            port: server.port,
            accept_threads: server.accept_threads,
            work_threads: server.work_threads,
            max_connections: server.max_connections,
            network_timeout: Duration::from_secs(server.network_timeout),
            allow_hosts: AllowHosts::parse(&server.allow_hosts),
        }
    }
}
