//! An order-statistic index for leaderboards: members ordered by score
//! (highest first), ties by name (byte order, ascending), with the rank of a
//! member, the member at a rank and its neighbours.
//!
//! The members are a sorted sequence cut into blocks of at most
//! [`MAX_BLOCK`] entries. Finding a member's block is a binary search over
//! the blocks' last entries, and within it another: O(log n); a write moves
//! at most a block's entries. A rank adds the sizes of the blocks before
//! (n / [`MAX_BLOCK`] additions: about two thousand, a microsecond, for a
//! million members), which keeps writes, far more frequent, free of it.
//!
//! Ties are common (many users have the same points), and comparing names
//! would chase a pointer per comparison. So each name gets a **tie key**: a
//! number whose order is the names' order, kept in [`Names`] (new names take
//! a number between their neighbours'; when no gap is left, every key is
//! renumbered, and the boards rewrite theirs with [`RankIndex::retie`]). An
//! entry is a score, a tie key and a member number: 24 bytes, compared as
//! integers.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::Arc;

/// Entries per block before it splits.
pub const MAX_BLOCK: usize = 128;

/// The distance between neighbouring tie keys after a renumbering, and the
/// step past the last one.
const SPACING: u64 = 1 << 32;

/// The most a new name takes of a gap: ids often arrive in order
/// (`user_1001`, `user_1002`, …), all into the same gap, so taking half
/// each time would use it up in 32; taking at most this leaves room for
/// 4096 in a row before a renumbering.
const STEP: u64 = 1 << 20;

/// Member names by number, their tie keys, and numbers by name; numbers
/// are never reused. Each name is stored once (shared by the two maps);
/// looking a name up walks the ordered map (a few microseconds at most),
/// which a hash map beside it would save at 30-odd bytes a member.
#[derive(Default)]
pub struct Names {
    /// By member number: the name and its tie key.
    members: Vec<(Arc<str>, u64)>,
    /// Names in order, with their member numbers.
    order: BTreeMap<Arc<str>, u32>,
}

impl Names {
    /// The member's number, giving it one if it has none, and whether
    /// every tie key was renumbered to make room (then each board must
    /// [`RankIndex::retie`]).
    pub fn intern(&mut self, name: &str) -> (u32, bool) {
        if let Some(&n) = self.order.get(name) {
            return (n, false);
        }
        let below = self
            .order
            .range::<str, _>((Unbounded, Excluded(name)))
            .next_back()
            .map(|(_, &m)| self.tie(m));
        let above = self
            .order
            .range::<str, _>((Excluded(name), Unbounded))
            .next()
            .map(|(_, &m)| self.tie(m));
        let n = self.members.len() as u32;
        let name: Arc<str> = Arc::from(name);
        let key: Option<u64> = match (below, above) {
            (None, None) => Some(u64::MAX / 2),
            (Some(b), None) => b.checked_add(SPACING).filter(|k| *k < u64::MAX),
            (None, Some(a)) => a.checked_sub(SPACING).filter(|k| *k > 0),
            (Some(b), Some(a)) => (a - b >= 2).then(|| b + ((a - b) / 2).min(STEP)),
        };
        self.members.push((name.clone(), key.unwrap_or(0)));
        self.order.insert(name, n);
        if key.is_none() {
            self.renumber();
        }
        (n, key.is_none())
    }

    fn renumber(&mut self) {
        for (i, (_, &m)) in self.order.iter().enumerate() {
            self.members[m as usize].1 = (i as u64 + 1) * SPACING;
        }
        tracing::debug!(
            names = self.members.len(),
            "renumbered the leaderboards' tie keys"
        );
    }

    /// The member's number, if it has one.
    pub fn number(&self, name: &str) -> Option<u32> {
        self.order.get(name).copied()
    }

    /// The name of a member number.
    pub fn name(&self, n: u32) -> &str {
        &self.members[n as usize].0
    }

    /// The tie key of a member number.
    pub fn tie(&self, n: u32) -> u64 {
        self.members[n as usize].1
    }

    /// The entry of a member at a score.
    pub fn entry(&self, member: u32, score: i64) -> Entry {
        Entry {
            score,
            tie: self.tie(member),
            member,
        }
    }

    /// The tie key of the last name not after `name` (itself if known),
    /// if any: where a cursor naming it stands among ties.
    pub fn tie_at_or_before(&self, name: &str) -> Option<u64> {
        self.order
            .range::<str, _>((Unbounded, Included(name)))
            .next_back()
            .map(|(_, &m)| self.tie(m))
    }

    /// How many members have a number.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether none has.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// One member's place: its score, its name's tie key and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The score, in thousandths.
    pub score: i64,
    /// The tie key of the member's name ([`Names::tie`]).
    pub tie: u64,
    /// The member.
    pub member: u32,
}

fn order(a: &Entry, b: &Entry) -> Ordering {
    b.score.cmp(&a.score).then(a.tie.cmp(&b.tie))
}

/// Members in rank order.
#[derive(Default)]
pub struct RankIndex {
    blocks: Vec<Vec<Entry>>,
    /// Each non-empty block's last entry, side by side: finding a block
    /// searches this small array instead of touching every block's memory
    /// (a cache miss each), which was most of a write's cost.
    lasts: Vec<Entry>,
    len: usize,
}

impl RankIndex {
    /// How many members it ranks.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it ranks none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block an entry belongs in: the first whose last entry is not
    /// before it (the last block if none).
    fn block_of(&self, entry: &Entry) -> usize {
        let i = self
            .lasts
            .partition_point(|last| order(last, entry) == Ordering::Less);
        i.min(self.blocks.len().saturating_sub(1))
    }

    /// Brings `lasts` up to date after block `b` changed.
    fn sync_last(&mut self, b: usize) {
        match self.blocks[b].last() {
            Some(&last) if b < self.lasts.len() => self.lasts[b] = last,
            Some(&last) => self.lasts.push(last),
            None if b < self.lasts.len() => {
                self.lasts.remove(b);
            }
            None => {}
        }
    }

    fn before(&self, block: usize) -> usize {
        self.blocks[..block].iter().map(Vec::len).sum()
    }

    /// Adds an entry (its member must not be in the index).
    pub fn insert(&mut self, entry: Entry) {
        if self.blocks.is_empty() {
            self.blocks.push(Vec::with_capacity(MAX_BLOCK + 1));
        }
        let b = self.block_of(&entry);
        let block = &mut self.blocks[b];
        let at = block.partition_point(|e| order(e, &entry) == Ordering::Less);
        block.insert(at, entry);
        // Every block keeps room for MAX_BLOCK + 1 entries and no more: a
        // Vec left to grow would double to 256 and keep that after a split.
        let split = (block.len() > MAX_BLOCK).then(|| {
            let mut tail = Vec::with_capacity(MAX_BLOCK + 1);
            tail.extend(block.drain(MAX_BLOCK / 2..));
            tail
        });
        self.sync_last(b);
        if let Some(tail) = split {
            let last = *tail.last().expect("a split tail holds entries");
            self.blocks.insert(b + 1, tail);
            self.lasts.insert(b + 1, last);
        }
        self.len += 1;
    }

    /// Removes an entry; returns whether it was there.
    pub fn remove(&mut self, entry: Entry) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        let b = self.block_of(&entry);
        let block = &mut self.blocks[b];
        let Ok(at) = block.binary_search_by(|e| order(e, &entry)) else {
            return false;
        };
        block.remove(at);
        self.sync_last(b);
        if self.blocks[b].is_empty() && self.blocks.len() > 1 {
            self.blocks.remove(b);
        }
        self.len -= 1;
        true
    }

    /// The 0-based position of an entry, if it is in the index.
    pub fn position(&self, entry: &Entry) -> Option<usize> {
        if self.blocks.is_empty() {
            return None;
        }
        let b = self.block_of(entry);
        let at = self.blocks[b].binary_search_by(|e| order(e, entry)).ok()?;
        Some(self.before(b) + at)
    }

    /// The 0-based position of the first entry after the place of a score
    /// and a name whose [`Names::tie_at_or_before`] is `tie` (the name need
    /// not be in the index: a page's cursor).
    pub fn first_after(&self, score: i64, tie: Option<u64>) -> usize {
        let is_at_or_before =
            |e: &Entry| e.score > score || (e.score == score && tie.is_some_and(|t| e.tie <= t));
        // Blocks wholly at or before the key, then entries of the next.
        let b = self.lasts.partition_point(is_at_or_before);
        match self.blocks.get(b) {
            None => self.len,
            Some(block) => self.before(b) + block.partition_point(is_at_or_before),
        }
    }

    /// The entries from 0-based position `from` on, at most `count`.
    pub fn range(&self, from: usize, count: usize) -> Vec<Entry> {
        let mut out = Vec::with_capacity(count.min(self.len.saturating_sub(from)));
        let mut skip = from;
        let mut start = 0;
        while start < self.blocks.len() && skip >= self.blocks[start].len() {
            skip -= self.blocks[start].len();
            start += 1;
        }
        for block in self.blocks.iter().skip(start) {
            for e in block.iter().skip(skip) {
                if out.len() == count {
                    return out;
                }
                out.push(*e);
            }
            skip = 0;
        }
        out
    }

    /// Rewrites every entry's tie key after [`Names`] renumbered them (the
    /// order is unchanged: only the numbers moved).
    pub fn retie(&mut self, names: &Names) {
        for e in self
            .blocks
            .iter_mut()
            .flatten()
            .chain(self.lasts.iter_mut())
        {
            e.tie = names.tie(e.member);
        }
    }

    /// Every entry, in rank order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.blocks.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn by_name(a: &Entry, b: &Entry, names: &Names) -> Ordering {
        b.score
            .cmp(&a.score)
            .then_with(|| names.name(a.member).cmp(names.name(b.member)))
    }

    /// The index against a sorted vector (sorted by real names), after
    /// every step.
    fn check(index: &RankIndex, model: &[Entry], names: &Names) {
        assert_eq!(index.len(), model.len());
        let all: Vec<Entry> = index.iter().copied().collect();
        assert_eq!(all, model);
        for (i, e) in model.iter().enumerate() {
            assert_eq!(index.position(e), Some(i));
        }
        for (i, e) in model.iter().enumerate().step_by(97) {
            let tie = names.tie_at_or_before(names.name(e.member));
            assert_eq!(index.first_after(e.score, tie), i + 1);
        }
        for from in [
            0,
            1,
            model.len() / 2,
            model.len().saturating_sub(3),
            model.len(),
        ] {
            assert_eq!(
                index.range(from, 5),
                model.iter().skip(from).take(5).copied().collect::<Vec<_>>()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn ranks_match_a_sorted_list_through_inserts_moves_and_removals(
            ops in proptest::collection::vec((0u32..3000, -5i64..40, any::<bool>()), 1..4000)
        ) {
            let mut names = Names::default();
            let mut index = RankIndex::default();
            let mut scores: HashMap<u32, i64> = HashMap::new();
            for (i, (m, score, remove)) in ops.into_iter().enumerate() {
                // Names interned in a scrambled order, so tie keys are
                // bisected and renumbered.
                let (member, renumbered) = names.intern(&format!("u{}", (m * 7919) % 3001));
                if renumbered {
                    index.retie(&names);
                }
                if let Some(old) = scores.remove(&member) {
                    let removed = index.remove(names.entry(member, old));
                    prop_assert!(removed);
                }
                if !remove {
                    index.insert(names.entry(member, score));
                    scores.insert(member, score);
                }
                if i % 500 == 0 {
                    let mut model: Vec<Entry> =
                        scores.iter().map(|(&m, &s)| names.entry(m, s)).collect();
                    model.sort_by(|a, b| by_name(a, b, &names));
                    check(&index, &model, &names);
                }
            }
            let mut model: Vec<Entry> = scores.iter().map(|(&m, &s)| names.entry(m, s)).collect();
            model.sort_by(|a, b| by_name(a, b, &names));
            check(&index, &model, &names);
        }
    }

    #[test]
    fn ids_arriving_in_order_rarely_renumber_and_keys_keep_the_names_order() {
        let mut names = Names::default();
        let mut renumbered = 0;
        // Appends, and ascending runs into one gap ("b…" between "a" and
        // "c"), as sequential ids arrive; and unpadded numbers, which
        // interleave ("u10" sorts before "u2").
        names.intern("a");
        names.intern("c");
        for i in 0..20_000 {
            renumbered += usize::from(names.intern(&format!("b{i:06}")).1);
            renumbered += usize::from(names.intern(&format!("d{i:06}")).1);
            renumbered += usize::from(names.intern(&format!("u{i}")).1);
        }
        let mut sorted: Vec<(String, u64)> = (0..names.len() as u32)
            .map(|m| (names.name(m).to_owned(), names.tie(m)))
            .collect();
        sorted.sort();
        assert!(sorted.windows(2).all(|w| w[0].1 < w[1].1));
        assert!(renumbered <= 40, "{renumbered} renumberings");
    }

    #[test]
    fn ties_order_by_name_and_a_missing_entry_is_not_removed() {
        let mut names = Names::default();
        let (b, _) = names.intern("bob");
        let (a, _) = names.intern("alice");
        let (z, _) = names.intern("zed");
        let mut index = RankIndex::default();
        index.insert(names.entry(b, 5));
        index.insert(names.entry(a, 5));
        index.insert(names.entry(z, 9));
        let order: Vec<&str> = index.iter().map(|e| names.name(e.member)).collect();
        assert_eq!(order, ["zed", "alice", "bob"]);
        assert!(!index.remove(names.entry(a, 4)));
        assert_eq!(index.position(&names.entry(b, 5)), Some(2));
        // A cursor after "alice" at 5 (or a name between) starts at bob.
        assert_eq!(index.first_after(5, names.tie_at_or_before("alice")), 2);
        assert_eq!(index.first_after(5, names.tie_at_or_before("al")), 1);
    }
}
