//! A storage's part in trunk files (docs/protocol/sync-and-storage-layout.md 6.5, 6.6).
//!
//! Every member: small uploads go into a slot it asks the trunk server for (TRUNK_ALLOC_SPACE),
//! written data first, confirmed (TRUNK_ALLOC_CONFIRM), then made visible by the slot header; a
//! client delete gives the slot back (TRUNK_FREE_SPACE). The member keeps a copy of the trunk
//! binlog the trunk server pushes (TRUNK_SYNC_BINLOG, TRUNK_TRUNCATE_BINLOG_FILE), which the
//! tracker elects trunk servers by (TRUNK_GET_BINLOG_SIZE).
//!
//! The trunk server: the free-space index (`trunk_alloc`), rebuilt from `storage_trunk.dat` and
//! the trunk binlog when the role arrives, every change appended to the binlog before an
//! answer depends on it (an allocation's lines go in with its confirm), new trunk files created
//! as needed, the binlog pushed to the members every 100 ms
//! with a mark per member.
//!
//! One file per side: `server` (the role, its state and housekeeping), `allocation` (the trunk
//! server's answers to members), `slots` (a member's slot upload and writes) and `binlog_push`
//! (the trunk binlog sent to and received by members).

mod allocation;
mod binlog_push;
mod server;
mod slots;

pub use server::TrunkJobs;
