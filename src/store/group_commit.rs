//! Group commit: intakes that arrive while a commit is being written wait for the next one
//! and share it — one transaction, one fsync — so that durable acknowledgement does not
//! cost one disk flush per document.
//!
//! No intake waits for company: a committer takes whatever has queued the moment it is
//! free (at most `max` documents), so a lone intake is committed at once, and under load
//! the batches grow by themselves to the number that arrived during the previous flush.
//! SQLite has one committer (one writer); PostgreSQL several, whose transactions run side
//! by side.
//! Each intake is answered only after the commit that holds it returned; a document that
//! fails (its savepoint rolled back) fails alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::{Outbox, StoreError};
use crate::submission::{Intake, NewSubmission};

type Waiting = (NewSubmission, oneshot::Sender<Result<Intake, StoreError>>);

/// What the committer writes batches to: the outbox, or a stand-in in tests.
#[async_trait::async_trait]
pub trait CommitBatch: Send + Sync {
    async fn commit_batch(&self, batch: &[NewSubmission]) -> Result<Vec<Result<Intake, StoreError>>, StoreError>;
}

#[async_trait::async_trait]
impl<T: Outbox + ?Sized> CommitBatch for T {
    async fn commit_batch(&self, batch: &[NewSubmission]) -> Result<Vec<Result<Intake, StoreError>>, StoreError> {
        self.intake_batch(batch).await
    }
}

/// How many commits and documents went through (for metrics and tests).
#[derive(Debug, Default)]
pub struct GroupCommitStats {
    pub commits: AtomicU64,
    pub documents: AtomicU64,
}

/// The handle intakes send their documents through. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Waiting>,
    stats: Arc<GroupCommitStats>,
}

impl GroupCommit {
    /// Starts `committers` committers for `store` (1 for SQLite, whose writers queue anyway;
    /// several for PostgreSQL, which writes concurrent transactions in parallel and flushes
    /// their commits together), each taking batches of at most `max` documents. They end
    /// when the last handle is dropped, after committing what was queued.
    pub fn start<S: CommitBatch + ?Sized + 'static>(store: Arc<S>, max: usize, committers: usize) -> Self {
        let max = max.max(1);
        let (queue, waiting) = mpsc::channel::<Waiting>(4 * max * committers.max(1));
        let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
        let stats = Arc::new(GroupCommitStats::default());
        for _ in 0..committers.max(1) {
            let (store, waiting, counted) = (Arc::clone(&store), Arc::clone(&waiting), Arc::clone(&stats));
            tokio::spawn(async move {
                let mut batch: Vec<Waiting> = Vec::with_capacity(max);
                loop {
                    // One committer at a time takes what has queued; the others are writing.
                    let taken = waiting.lock().await.recv_many(&mut batch, max).await;
                    if taken == 0 {
                        return;
                    }
                    counted.commits.fetch_add(1, Ordering::Relaxed);
                    counted.documents.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    commit(&*store, std::mem::take(&mut batch)).await;
                }
            });
        }
        Self { queue, stats }
    }

    /// Commits made and documents stored through them so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.stats.commits.load(Ordering::Relaxed), self.stats.documents.load(Ordering::Relaxed))
    }

    /// Stores `new` in the next shared commit; returns once that commit is on disk.
    pub async fn intake(&self, new: NewSubmission) -> Result<Intake, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.queue.send((new, answer)).await.map_err(|_| StoreError::NotReady("the gateway is stopping".into()))?;
        answered.await.map_err(|_| StoreError::NotReady("the gateway is stopping".into()))?
    }
}

async fn commit<S: CommitBatch + ?Sized>(store: &S, batch: Vec<Waiting>) {
    use futures::FutureExt;
    let (documents, answers): (Vec<NewSubmission>, Vec<_>) = batch.into_iter().unzip();
    // A panic in the store fails this batch (whether or not its commit happened, none of
    // it was acknowledged), not the committer: the next batch is taken as usual.
    let committed = std::panic::AssertUnwindSafe(store.commit_batch(&documents))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(StoreError::CommitFailed("the store panicked during the commit".into())));
    match committed {
        Ok(results) if results.len() == answers.len() => {
            for (answer, result) in answers.into_iter().zip(results) {
                let _ = answer.send(result);
            }
        }
        Ok(results) => {
            tracing::error!(
                documents = answers.len(),
                answered = results.len(),
                "a store answered a batch incompletely"
            );
            for answer in answers {
                let _ = answer.send(Err(StoreError::CommitFailed("the store answered the batch incompletely".into())));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, documents = documents.len(), "a shared intake commit failed; nothing of it is stored");
            let text = e.to_string();
            for answer in answers {
                let _ = answer.send(Err(StoreError::CommitFailed(text.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Records each batch; takes 30 ms per commit, like a slow disk; fails documents whose
    /// local_uid starts with "bad", and the whole commit when one is "doom".
    #[derive(Default)]
    struct SlowDisk {
        batches: Mutex<Vec<usize>>,
    }

    #[async_trait::async_trait]
    impl CommitBatch for SlowDisk {
        async fn commit_batch(&self, batch: &[NewSubmission]) -> Result<Vec<Result<Intake, StoreError>>, StoreError> {
            self.batches.lock().unwrap().push(batch.len());
            tokio::time::sleep(Duration::from_millis(30)).await;
            if batch.iter().any(|n| n.local_uid == "doom") {
                return Err(StoreError::NotReady("disk gone".into()));
            }
            if batch.iter().any(|n| n.local_uid == "panic") {
                panic!("a bug in the store");
            }
            Ok(batch
                .iter()
                .map(|n| {
                    if n.local_uid.starts_with("bad") {
                        Err(StoreError::Corrupt("constraint".into()))
                    } else {
                        Ok(Intake::Existing(crate::submission::tests_support::record(&n.local_uid)))
                    }
                })
                .collect())
        }
    }

    fn doc(uid: &str) -> NewSubmission {
        crate::submission::tests_support::new_submission(uid)
    }

    #[tokio::test]
    async fn intakes_that_arrive_during_a_commit_share_the_next_one() {
        let disk = Arc::new(SlowDisk::default());
        let group = GroupCommit::start(Arc::clone(&disk), 64, 1);
        let first = tokio::spawn({
            let group = group.clone();
            async move { group.intake(doc("first")).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // 40 more while the first commit is on disk, 3 of them bad.
        let rest: Vec<_> = (0..40)
            .map(|i| {
                let group = group.clone();
                let uid = if i % 13 == 0 { format!("bad-{i}") } else { format!("doc-{i}") };
                tokio::spawn(async move { (uid.clone(), group.intake(doc(&uid)).await) })
            })
            .collect();
        assert!(first.await.unwrap().is_ok());
        for task in rest {
            let (uid, result) = task.await.unwrap();
            assert_eq!(result.is_err(), uid.starts_with("bad"), "{uid}: one bad document fails alone");
        }
        assert_eq!(*disk.batches.lock().unwrap(), vec![1, 40]);
        assert_eq!(group.stats(), (2, 41));
    }

    #[tokio::test]
    async fn a_batch_is_bounded_and_a_failed_commit_fails_all_of_it() {
        let disk = Arc::new(SlowDisk::default());
        let group = GroupCommit::start(Arc::clone(&disk), 8, 1);
        let first = tokio::spawn({
            let group = group.clone();
            async move { group.intake(doc("first")).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let rest: Vec<_> = (0..20)
            .map(|i| {
                let group = group.clone();
                let uid = if i == 0 { "doom".to_owned() } else { format!("doc-{i}") };
                tokio::spawn(async move { group.intake(doc(&uid)).await })
            })
            .collect();
        first.await.unwrap().unwrap();
        let results: Vec<_> = futures::future::join_all(rest).await.into_iter().map(Result::unwrap).collect();
        let batches = disk.batches.lock().unwrap().clone();
        assert!(batches.iter().all(|&n| n <= 8), "{batches:?}");
        assert_eq!(batches.iter().sum::<usize>(), 21);
        // The batch with "doom" failed whole: exactly its documents got CommitFailed.
        let failed = results.iter().filter(|r| matches!(r, Err(StoreError::CommitFailed(_)))).count();
        assert_eq!(failed, batches[1], "{batches:?}");
    }

    #[tokio::test]
    async fn a_panicking_store_fails_its_batch_and_the_committer_goes_on() {
        let disk = Arc::new(SlowDisk::default());
        let group = GroupCommit::start(Arc::clone(&disk), 8, 1);
        assert!(matches!(group.intake(doc("panic")).await, Err(StoreError::CommitFailed(_))));
        assert!(group.intake(doc("after")).await.is_ok(), "the next intake is committed as usual");
    }
}
