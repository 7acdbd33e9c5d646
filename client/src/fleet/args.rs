//! `rfdfs_bench fleet`'s command line.

use std::net::Ipv4Addr;

/// `rfdfs_bench fleet`'s command line.
#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    /// the trackers, HOST:PORT[,HOST:PORT...] (every simulated storage reports to each)
    #[arg(long, value_delimiter = ',', required = true)]
    pub trackers: Vec<String>,
    /// groups of simulated storages
    #[arg(long)]
    pub groups: usize,
    /// storages per group
    #[arg(long)]
    pub per_group: usize,
    /// seconds to run, joins included
    #[arg(long)]
    pub seconds: f64,
    /// a storage's heart_beat_interval
    #[arg(long, default_value_t = 30)]
    pub beat_interval: u64,
    /// a storage's stat_report_interval (REPORT_DISK_USAGE)
    #[arg(long, default_value_t = 60)]
    pub stat_report_interval: u64,
    /// QUERY_STORE and QUERY_FETCH per second, half each (0: none)
    #[arg(long, default_value_t = 0)]
    pub queries_per_second: u64,
    /// the first simulated storage's address; the others follow it
    #[arg(long, default_value = "127.64.0.1")]
    pub first_address: Ipv4Addr,
    /// the port every simulated storage claims
    #[arg(long, default_value_t = 23000)]
    pub storage_port: u16,
    /// simulator threads serving the storages
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// tracker processes to report CPU, memory and disk writes of (steady state only)
    #[arg(long, value_delimiter = ',')]
    pub tracker_pids: Vec<u32>,
    /// once every storage is ACTIVE, one more storage joins group1 and is timed until it is
    /// ACTIVE on every tracker
    #[arg(long)]
    pub late_joiner: bool,
}
