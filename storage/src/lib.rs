//! fdfs-storage: the rfdfs storage server. docs/architecture.md draws its threads and follows a
//! request through them; this is the map of its files.
//!
//! `daemon` runs it: start, the tracker handshake (`tracker_handshake`), the threads, the main
//! loop, the stop. `storage` holds the daemon's state (config, store paths, binlog, statistics,
//! the identity the trackers gave it). Files live in the store paths under upstream's
//! `data/HH/HH` layout (`store`, with `init_flag` and `stat_file` for the state files beside
//! it and `state_file` for how they are written); clients' commands are served by `service`
//! (downloads zero-copy, `zero_copy`, and over HTTP, `http`; `access_log` records them),
//! replicas pushed by the other members of the group by `replica`, who may send them by
//! `peers`. Every change goes to the binlog (`binlog`, compressed daily by
//! `binlog_compression`, repaired by `binlog_repair`); one thread per member replays it to that
//! member (`sync`, its position in a `mark` file, its socket in `open_syncs`), and a storage
//! that lost a store path fetches it back from a member (`recovery`, run as a `job`). The
//! `reporter` joins the trackers and beats to them, and moves a departed peer's mark
//! (`mark_moves`); the sync threads reach the trackers through its `tracker_link`.
//! `write_ack_copies` is `copies`; `scrub` re-reads stored files and `reconcile` compares the
//! members. `metrics` serves `/metrics` and `/health`.
//!
//! Small files go into trunk files when the tracker says so: `trunk` is a member's part (slots
//! asked for, written, freed; the trunk binlog kept) and the trunk server's (allocation,
//! binlog push, snapshot, compaction), `trunk_alloc` the free-space index, `slot_blocks` the
//! unreadable blocks of trunk files; reading a file in a trunk is `store::Store::open_stored`.

#![forbid(unsafe_code)]

pub mod access_log;
pub mod binlog;
pub mod binlog_compression;
pub mod binlog_repair;
pub mod copies;
mod daemon;
pub mod expiry;
pub mod http;
pub mod init_flag;
pub mod job;
pub mod listing;
pub mod mark;
pub mod mark_moves;
pub mod metrics;
pub mod open_syncs;
pub mod peers;
pub mod reconcile;
pub mod recovery;
pub mod replica;
pub mod reporter;
pub mod s3;
pub mod scrub;
pub mod service;
pub mod slot_blocks;
pub mod stat_file;
pub mod state_file;
pub mod storage;
pub mod store;
pub mod sync;
pub mod tracker_handshake;
pub mod tracker_link;
pub mod trunk;
pub mod trunk_alloc;
pub mod zero_copy;

pub use daemon::{run, SPEC};
