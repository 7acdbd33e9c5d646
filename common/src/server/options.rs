//! The settings a [`super::Server`] is started with, taken from the daemon's config.

use super::allow_hosts::AllowHosts;
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
