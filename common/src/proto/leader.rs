//! Tracker <-> tracker messages of the leader election and the followers' link to the leader
//! (docs/protocol/cluster-protocol.md 4.2 to 4.4).

use super::{GROUP_NAME_MAX, STORAGE_ID_MAX, VERSION_SIZE};
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

/// TRACKER_GET_STATUS reply: how a tracker ranks in an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningStatus {
    pub is_leader: bool,
    /// seconds up, rounded down to a multiple of 300
    pub running_time: i64,
    /// seconds it was down before this start, rounded down to a multiple of 300
    pub restart_interval: i64,
}

impl Message for RunningStatus {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.is_leader as u8);
        out.put_i64(self.running_time);
        out.put_i64(self.restart_interval);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(RunningStatus {
            is_leader: r.u8("is_leader")? != 0,
            running_time: r.i64("running_time")?,
            restart_interval: r.i64("restart_interval")?,
        })
    }
}

/// NOTIFY_NEXT_LEADER and COMMIT_NEXT_LEADER: the candidate's `ip:port` text, no NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAddr {
    pub addr: String,
}

impl LeaderAddr {
    /// Longest text a tracker accepts (upstream's address buffer).
    pub const MAX_LEN: usize = 52;
}

impl Message for LeaderAddr {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.addr.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let text = r.rest();
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(DecodeError::invalid(
                "leader_addr",
                format!("{} bytes", text.len()),
            ));
        }
        Ok(LeaderAddr {
            addr: String::from_utf8_lossy(text).into_owned(),
        })
    }
}

/// JOIN_LEADER: a follower opens its link to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinLeaderReq {
    pub up_time: i64,
    pub version: String,
    /// the follower's own tracker port (its address is the connection's peer IP)
    pub server_port: i64,
}

impl Message for JoinLeaderReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.up_time);
        out.put_fixed_str(&self.version, VERSION_SIZE);
        out.put_i64(self.server_port);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(JoinLeaderReq {
            up_time: r.i64("up_time")?,
            version: r.fixed_str(VERSION_SIZE, "version")?,
            server_port: r.i64("server_port")?,
        })
    }
}

/// PING_LEADER: the follower's connection counts (alloc, current, max).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingLeaderReq {
    pub connections: [i32; 3],
}

impl Message for PingLeaderReq {
    fn encode(&self, out: &mut Vec<u8>) {
        for c in self.connections {
            out.put_i32(c);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(PingLeaderReq {
            connections: [
                r.i32("alloc_count")?,
                r.i32("current_count")?,
                r.i32("max_count")?,
            ],
        })
    }
}

/// PING_LEADER's non-empty reply: every group with the id of its trunk server (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkServers {
    pub groups: Vec<(String, String)>,
}

impl Message for TrunkServers {
    fn encode(&self, out: &mut Vec<u8>) {
        for (group, server) in &self.groups {
            out.put_fixed_str(group, GROUP_NAME_MAX);
            out.put_fixed_str(server, STORAGE_ID_MAX);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let mut groups = Vec::new();
        while r.remaining() > 0 {
            groups.push((
                r.fixed_str(GROUP_NAME_MAX, "group_name")?,
                r.fixed_str(STORAGE_ID_MAX, "trunk_server_id")?,
            ));
        }
        Ok(TrunkServers { groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unhex;

    /// Bodies upstream sent, as docs/protocol/cluster-protocol.md 4.2 and 4.4 recorded them.
    #[test]
    fn upstream_bodies() {
        let join = unhex("000000006b04cb47 362e31362e310000 000000000000566a");
        let j = JoinLeaderReq::from_bytes(&join).unwrap();
        assert_eq!((j.version.as_str(), j.server_port), ("6.16.1", 22122));
        assert_eq!(j.to_bytes(), join);
        let status = unhex("01 000000000000012c 0000000000000000");
        let s = RunningStatus::from_bytes(&status).unwrap();
        assert!(s.is_leader && s.running_time == 300 && s.restart_interval == 0);
        assert_eq!(s.to_bytes(), status);
        let ping = unhex("00000100 00000002 00000002");
        assert_eq!(
            PingLeaderReq::from_bytes(&ping).unwrap().connections,
            [256, 2, 2]
        );
    }

    #[test]
    fn lengths_and_roundtrips() {
        let s = RunningStatus {
            is_leader: true,
            running_time: 300,
            restart_interval: 0,
        };
        assert_eq!(s.to_bytes().len(), 17);
        assert_eq!(RunningStatus::from_bytes(&s.to_bytes()).unwrap(), s);
        let j = JoinLeaderReq {
            up_time: 1795476537,
            version: "6.16.1".into(),
            server_port: 22122,
        };
        assert_eq!(j.to_bytes().len(), 24);
        assert_eq!(JoinLeaderReq::from_bytes(&j.to_bytes()).unwrap(), j);
        let p = PingLeaderReq {
            connections: [256, 2, 2],
        };
        assert_eq!(PingLeaderReq::from_bytes(&p.to_bytes()).unwrap(), p);
        let t = TrunkServers {
            groups: vec![("group1".into(), String::new())],
        };
        assert_eq!(t.to_bytes().len(), 32);
        assert_eq!(TrunkServers::from_bytes(&t.to_bytes()).unwrap(), t);
        assert!(LeaderAddr::from_bytes(b"").is_err());
        assert!(LeaderAddr::from_bytes(&[b'1'; 53]).is_err());
        assert_eq!(
            LeaderAddr::from_bytes(b"127.0.0.31:22122").unwrap().addr,
            "127.0.0.31:22122"
        );
    }
}
