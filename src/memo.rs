//! A small in-process memo with a time-to-live and a size bound, in front of the database
//! for the hottest reads (API keys, fresh FRMR answers). It never decides anything the
//! database would not: entries are copies of rows, kept for seconds.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::Duration;

use tokio::time::Instant;

pub struct Memo<K, V> {
    ttl: Duration,
    capacity: usize,
    map: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    /// Entries live `ttl`; at most `capacity` are kept (when full, expired entries go, and if
    /// that is not enough, all of them: a memo refills from the database).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity: capacity.max(1), map: RwLock::new(HashMap::new()) }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((v, at)) if at.elapsed() < self.ttl => Some(v.clone()),
            _ => None,
        }
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&key) {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, (value, Instant::now()));
    }

    pub fn remove(&self, key: &K) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire() {
        let m = Memo::new(Duration::from_secs(10), 10);
        m.insert("a", 1);
        assert_eq!(m.get(&"a"), Some(1));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(m.get(&"a"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn size_is_bounded() {
        let m = Memo::new(Duration::from_secs(10), 3);
        for i in 0..3 {
            m.insert(i, i);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        m.insert(3, 3);
        assert_eq!(m.len(), 1, "expired entries make room");
        m.insert(4, 4);
        m.insert(5, 5);
        m.insert(6, 6);
        assert!(m.len() <= 3);
        assert_eq!(m.get(&6), Some(6));
    }

    #[test]
    fn zero_ttl_keeps_nothing() {
        let m = Memo::new(Duration::ZERO, 3);
        m.insert(1, 1);
        assert!(m.is_empty());
    }
}
