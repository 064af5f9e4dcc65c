//! Open connections, counted after `accept`, with a per-source cap.
//!
//! The accept loop never waits for a free slot: when the table is full (for this source,
//! or overall), the oldest *idle* connection (no request being served) makes room, and
//! only when every connection is busy is the newcomer closed. A flood of idle or
//! trickling sockets therefore cannot keep a health check or a real client out.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Most connections open at once.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// Most connections open at once from one source address.
pub(crate) const MAX_PER_SOURCE: usize = 64;

struct Slot {
    source: IpAddr,
    busy: Arc<AtomicUsize>,
    kill: CancellationToken,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    // Ordered by id, which is the order of acceptance: the first idle one is the oldest.
    open: BTreeMap<u64, Slot>,
    per_source: HashMap<IpAddr, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = self.open.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&slot.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&slot.source);
            }
        }
        Some(slot)
    }

    /// Closes the oldest idle connection matching `pred`; false when every one is busy.
    fn evict_idle(&mut self, pred: impl Fn(IpAddr) -> bool) -> bool {
        let victim = self
            .open
            .iter()
            .find(|(_, s)| pred(s.source) && s.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match victim.and_then(|id| self.remove(id)) {
            Some(slot) => {
                slot.kill.cancel();
                true
            }
            None => false,
        }
    }
}

/// The table of open connections.
pub(crate) struct Conns {
    table: Mutex<Table>,
    max_total: usize,
    max_per_source: usize,
}

/// An admitted connection: its busy counter, its kill switch, and its place in the table
/// (given back on drop).
pub(crate) struct Admitted {
    pub busy: Arc<AtomicUsize>,
    pub kill: CancellationToken,
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        // Already gone when it was evicted.
        let _evicted_before = self.conns.table.lock().expect("conn table").remove(self.id);
    }
}

/// Marks a connection busy while a request is served.
pub(crate) struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    pub(crate) fn new(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(busy.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Conns {
    pub(crate) fn new(max_total: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(Conns {
            table: Mutex::new(Table::default()),
            max_total,
            max_per_source,
        })
    }

    /// Admits a connection from `source`, making room if needed; `None`: close it.
    pub(crate) fn admit(self: &Arc<Self>, source: IpAddr) -> Option<Admitted> {
        let mut t = self.table.lock().expect("conn table");
        let from_source = t.per_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.max_per_source {
            if !t.evict_idle(|s| s == source) {
                return None;
            }
        } else if t.open.len() >= self.max_total && !t.evict_idle(|_| true) {
            return None;
        }
        let id = t.next_id;
        t.next_id += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let kill = CancellationToken::new();
        t.open.insert(
            id,
            Slot {
                source,
                busy: busy.clone(),
                kill: kill.clone(),
            },
        );
        *t.per_source.entry(source).or_insert(0) += 1;
        Some(Admitted {
            busy,
            kill,
            conns: self.clone(),
            id,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().expect("conn table").open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn a_full_source_gives_up_its_oldest_idle_connection() {
        let c = Conns::new(10, 3);
        let a: Vec<_> = (0..3).map(|_| c.admit(ip(1)).unwrap()).collect();
        let _busy = BusyGuard::new(&a[0].busy);
        let d = c.admit(ip(1)).unwrap();
        assert!(!a[0].kill.is_cancelled(), "busy connections are kept");
        assert!(a[1].kill.is_cancelled(), "the oldest idle one makes room");
        assert!(!a[2].kill.is_cancelled());
        assert_eq!(c.len(), 3);
        drop(d);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn when_everything_is_busy_the_newcomer_is_refused() {
        let c = Conns::new(10, 2);
        let a: Vec<_> = (0..2).map(|_| c.admit(ip(1)).unwrap()).collect();
        let _g: Vec<_> = a.iter().map(|x| BusyGuard::new(&x.busy)).collect();
        assert!(c.admit(ip(1)).is_none());
        assert!(c.admit(ip(2)).is_some(), "another source still gets in");
    }

    #[test]
    fn the_total_cap_evicts_across_sources() {
        let c = Conns::new(4, 4);
        let a: Vec<_> = (1..=4).map(|n| c.admit(ip(n)).unwrap()).collect();
        let _e = c.admit(ip(9)).unwrap();
        assert!(a[0].kill.is_cancelled());
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn a_flood_of_idle_connections_never_locks_out_a_new_one() {
        let c = Conns::new(MAX_CONNECTIONS, MAX_PER_SOURCE);
        let flood: Vec<_> = (0..2000).filter_map(|_| c.admit(ip(1))).collect();
        assert_eq!(flood.len(), 2000);
        assert!(c.len() <= MAX_PER_SOURCE);
        assert!(c.admit(ip(1)).is_some());
    }
}
