//! Groups and storage servers as the tracker knows them, and the status machine
//! (docs/protocol/cluster-protocol.md section 3).

use fdfs_common::config::{ReservedSpace, TrackerConfig};
use fdfs_common::proto::client::{GroupStat, IpWidth, StorageStat};
use fdfs_common::proto::cluster::{stat, Brief, PathUsage, StatBlock};
use fdfs_common::proto::{rw_mode, status};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct StorageServer {
    pub id: String,
    pub ip: String,
    pub port: i64,
    pub status: u8,
    pub rw_mode: u8,
    pub version: String,
    pub join_time: i64,
    pub up_time: i64,
    pub total_mb: i64,
    pub free_mb: i64,
    pub paths: Vec<PathUsage>,
    pub store_path_count: i64,
    pub subdir_count_per_path: i64,
    pub upload_priority: i64,
    pub current_write_path: usize,
    pub sync_src_id: String,
    pub sync_until_timestamp: i64,
    pub stat: StatBlock,
    pub last_heart_beat_time: i64,
    pub last_synced_timestamp: i64,
    pub changelog_offset: i64,
    /// group change counter last pushed to this storage (0 = send the whole list)
    pub group_change_seen: u64,
    /// trunk server change counter of the group last pushed to this storage
    pub trunk_change_seen: u64,
    /// `last_sync_timestamps[src][self]`: newest source timestamp received from each source
    pub synced_from: BTreeMap<String, i64>,
    /// bumped at every JOIN so that a stale connection's close does not mark a rejoined storage
    /// offline
    pub join_generation: u64,
    /// its `advertise_address` rules (STORAGE_ADVERTISE), forgotten at each JOIN
    pub advertise: Vec<fdfs_common::proto::advertise::AdvertiseRule>,
}

impl StorageServer {
    pub fn is_available(&self) -> bool {
        matches!(
            self.status,
            status::OFFLINE | status::ONLINE | status::ACTIVE
        )
    }

    pub fn readable(&self) -> bool {
        self.status == status::ACTIVE && self.rw_mode & rw_mode::READ != 0
    }

    pub fn writable(&self) -> bool {
        self.status == status::ACTIVE && self.rw_mode & rw_mode::WRITE != 0
    }

    pub fn brief(&self) -> Brief {
        Brief {
            status: self.status,
            port: self.port as i32,
            id: self.id.clone(),
            ip: self.ip.clone(),
        }
    }

    pub fn to_stat(
        &self,
        reserved: ReservedSpace,
        width: IpWidth,
        trunk_server: bool,
    ) -> StorageStat {
        let mut st = self.stat;
        st.counters[stat::LAST_SYNCED_TIMESTAMP] = self.last_synced_timestamp;
        st.counters[stat::LAST_HEART_BEAT_TIME] = self.last_heart_beat_time;
        StorageStat {
            status: self.status,
            rw_mode: self.rw_mode,
            id: self.id.clone(),
            ip: self.ip.clone(),
            src_id: self.sync_src_id.clone(),
            version: self.version.clone(),
            join_time: self.join_time,
            up_time: self.up_time,
            total_mb: self.total_mb,
            free_mb: self.free_mb,
            reserved_mb: if self.total_mb > 0 {
                reserved.reserved_mb(self.total_mb)
            } else {
                0
            },
            upload_priority: self.upload_priority,
            store_path_count: self.store_path_count,
            subdir_count_per_path: self.subdir_count_per_path,
            current_write_path: self.current_write_path as i64,
            storage_port: self.port,
            stat: st,
            if_trunk_server: trunk_server as u8,
            width,
        }
    }

    /// Mark offline after its reporter connection closed or it stopped beating.
    pub fn go_offline(&mut self) -> bool {
        if matches!(
            self.status,
            status::ONLINE | status::ACTIVE | status::OFFLINE
        ) {
            let changed = self.status != status::OFFLINE;
            self.status = status::OFFLINE;
            self.up_time = 0;
            self.group_change_seen = 0;
            self.trunk_change_seen = 0;
            return changed;
        }
        false
    }
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub storage_port: i64,
    pub store_path_count: i64,
    pub subdir_count_per_path: i64,
    pub current_trunk_file_id: i64,
    pub trunk_server: String,
    pub last_trunk_server: String,
    /// bumped when `trunk_server` changes: storages get the trunk server brief again
    pub trunk_change: u64,
    /// what the trunk server last reported (REPORT_TRUNK_FREE)
    pub trunk_free_mb: i64,
    /// insertion order, as upstream's group array
    pub storages: Vec<StorageServer>,
    pub current_write_server: usize,
    pub current_read_server: usize,
    pub change_count: u64,
    /// bumped whenever what `placement` derives from the members may have changed
    members_version: u64,
    placement: std::cell::RefCell<Option<Placement>>,
}

/// A group's writable and readable members (id order) and its space, as of `version`.
#[derive(Debug, Clone, Default)]
struct Placement {
    version: u64,
    writable: Vec<usize>,
    readable: Vec<usize>,
    space: (i64, i64),
}

impl Group {
    pub fn new(name: &str) -> Group {
        Group {
            name: name.to_string(),
            change_count: 1,
            // a storage's counter starts at 0: a trunk server loaded from the data files is
            // announced to every storage after a tracker restart
            trunk_change: 1,
            ..Default::default()
        }
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        self.storages.iter().position(|s| s.id == id)
    }

    pub fn storage_mut(&mut self, id: &str) -> Option<&mut StorageServer> {
        self.storages.iter_mut().find(|s| s.id == id)
    }

    /// Indexes of storages in id order (strcmp), as upstream's sorted arrays.
    pub fn sorted(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.storages.len()).collect();
        v.sort_by(|&a, &b| self.storages[a].id.cmp(&self.storages[b].id));
        v
    }

    /// The writable members in id order, from the placement cache.
    pub fn writable(&self) -> Vec<usize> {
        self.placement().writable.clone()
    }

    pub fn readable(&self) -> Vec<usize> {
        self.placement().readable.clone()
    }

    pub fn has_writable(&self) -> bool {
        !self.placement().writable.is_empty()
    }

    /// Group space = the writable member with the least free space (total of that member).
    pub fn space(&self) -> (i64, i64) {
        self.placement().space
    }

    /// Who may take uploads and serve downloads, and the group's space, computed once per
    /// change of the members (statuses, rw modes, disk reports) rather than at every query:
    /// placing an upload looks at every group, and must not look at every storage.
    fn placement(&self) -> std::cell::Ref<'_, Placement> {
        {
            let cached = self.placement.borrow();
            if cached
                .as_ref()
                .is_some_and(|p| p.version == self.members_version)
            {
                return std::cell::Ref::map(cached, |p| p.as_ref().expect("checked"));
            }
        }
        let sorted = self.sorted();
        let writable: Vec<usize> = sorted
            .iter()
            .copied()
            .filter(|&i| self.storages[i].writable())
            .collect();
        let readable: Vec<usize> = sorted
            .iter()
            .copied()
            .filter(|&i| self.storages[i].readable())
            .collect();
        let space = writable
            .iter()
            .map(|&i| &self.storages[i])
            .filter(|s| s.total_mb > 0)
            .min_by_key(|s| s.free_mb)
            .map(|s| (s.total_mb, s.free_mb))
            .unwrap_or_else(|| {
                // no writable member: report the last known figures of any member
                self.storages
                    .iter()
                    .filter(|s| s.total_mb > 0 && s.status != status::DELETED)
                    .min_by_key(|s| s.free_mb)
                    .map(|s| (s.total_mb, s.free_mb))
                    .unwrap_or((0, 0))
            });
        *self.placement.borrow_mut() = Some(Placement {
            version: self.members_version,
            writable,
            readable,
            space,
        });
        std::cell::Ref::map(self.placement.borrow(), |p| p.as_ref().expect("just set"))
    }

    /// A member's status, rw mode or disk figures changed (without a group list change for
    /// the storages: `bump` covers both).
    pub fn members_changed(&mut self) {
        self.members_version += 1;
    }

    pub fn has_room(&self, reserved: ReservedSpace) -> bool {
        let (total, free) = self.space();
        reserved.has_room(total, free, 1)
    }

    pub fn bump(&mut self) {
        self.change_count += 1;
        self.members_version += 1;
    }

    pub fn to_stat(&self, reserved: ReservedSpace, use_trunk_file: bool) -> GroupStat {
        let (total, free) = self.space();
        GroupStat {
            group: self.name.clone(),
            total_mb: total,
            free_mb: free,
            reserved_mb: if total > 0 {
                reserved.reserved_mb(total)
            } else {
                0
            },
            trunk_free_mb: if use_trunk_file {
                self.trunk_free_mb
            } else {
                0
            },
            storage_count: self.storages.len() as i64,
            storage_port: self.storage_port,
            readable_server_count: self.placement().readable.len() as i64,
            writable_server_count: self.placement().writable.len() as i64,
            current_write_server: self.current_write_server as i64,
            store_path_count: self.store_path_count,
            subdir_count_per_path: self.subdir_count_per_path,
            current_trunk_file_id: if use_trunk_file {
                self.current_trunk_file_id
            } else {
                -1
            },
        }
    }
}

/// Everything the tracker knows, behind one lock.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub groups: BTreeMap<String, Group>,
    pub current_write_group: usize,
    /// tracker list learned from the first STORAGE_JOIN
    pub trackers: Vec<String>,
    /// the storages, groups or changelog changed since the data files were written
    pub dirty: bool,
    /// beats with statistics still to come before they are saved (0: a round starts)
    pub beats_until_save: u64,
}

impl State {
    pub fn storage_count(&self) -> usize {
        self.groups.values().map(|g| g.storages.len()).sum()
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Apply a reported status per the REPORT_STATUS / REPLICA_CHG rule (2.11).
    pub fn apply_reported_status(group: &mut Group, b: &Brief) -> bool {
        if b.status == status::NONE {
            return false;
        }
        match group.storage_mut(&b.id) {
            Some(s) => {
                if b.status == s.status
                    || matches!(
                        s.status,
                        status::INIT | status::ONLINE | status::ACTIVE | status::RECOVERY
                    )
                {
                    return false;
                }
                if matches!(b.status, status::DELETED | status::IP_CHANGED) || b.status > s.status {
                    s.status = b.status;
                    group.bump();
                    return true;
                }
                false
            }
            None => {
                if matches!(
                    b.status,
                    status::DELETED | status::IP_CHANGED | status::ACTIVE | status::ONLINE
                ) {
                    return false;
                }
                group.storages.push(StorageServer {
                    id: b.id.clone(),
                    ip: b.ip.clone(),
                    port: b.port as i64,
                    status: b.status,
                    rw_mode: rw_mode::BOTH,
                    ..Default::default()
                });
                group.bump();
                true
            }
        }
    }
}

/// `ReservedSpace` and reply width as configured.
pub fn width_of(cfg: &TrackerConfig) -> IpWidth {
    if cfg.response_ip_v6 {
        IpWidth::V6
    } else {
        IpWidth::V4
    }
}
