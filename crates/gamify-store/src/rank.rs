//! An order-statistic index for leaderboards: members ordered by score
//! (highest first), ties by name (byte order, ascending), with the rank of a
//! member, the member at a rank and its neighbours.
//!
//! The members are a sorted sequence cut into blocks of at most
//! [`MAX_BLOCK`] entries. Finding a member's block is a binary search over
//! the blocks' last entries, and within it another: O(log n); a write moves
//! at most a block's entries. A rank adds the sizes of the blocks before
//! (n / [`MAX_BLOCK`] additions: about two thousand, a microsecond, for a
//! million members), which keeps writes, far more frequent, free of it. An
//! entry is a score and a member number (16 bytes); names live once in
//! [`Names`], shared by every board.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// Entries per block before it splits.
pub const MAX_BLOCK: usize = 1024;

/// Member names by number, and numbers by name; numbers are never reused.
#[derive(Default)]
pub struct Names {
    names: Vec<Arc<str>>,
    numbers: HashMap<Arc<str>, u32>,
}

impl Names {
    /// The member's number, giving it one if it has none.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        let n = self.names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.numbers.insert(name, n);
        n
    }

    /// The member's number, if it has one.
    pub fn number(&self, name: &str) -> Option<u32> {
        self.numbers.get(name).copied()
    }

    /// The name of a member number.
    pub fn name(&self, n: u32) -> &str {
        &self.names[n as usize]
    }

    /// How many members have a number.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether none has.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One member's place: its score and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The score, in thousandths.
    pub score: i64,
    /// The member.
    pub member: u32,
}

fn order(a: &Entry, b: &Entry, names: &Names) -> Ordering {
    b.score
        .cmp(&a.score)
        .then_with(|| names.name(a.member).cmp(names.name(b.member)))
}

/// Members in rank order.
#[derive(Default)]
pub struct RankIndex {
    blocks: Vec<Vec<Entry>>,
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
    fn block_of(&self, entry: &Entry, names: &Names) -> usize {
        let i = self.blocks.partition_point(|b| {
            b.last()
                .is_some_and(|last| order(last, entry, names) == Ordering::Less)
        });
        i.min(self.blocks.len().saturating_sub(1))
    }

    fn before(&self, block: usize) -> usize {
        self.blocks[..block].iter().map(Vec::len).sum()
    }

    /// Adds an entry (its member must not be in the index).
    pub fn insert(&mut self, entry: Entry, names: &Names) {
        if self.blocks.is_empty() {
            self.blocks.push(Vec::with_capacity(MAX_BLOCK / 2));
        }
        let b = self.block_of(&entry, names);
        let block = &mut self.blocks[b];
        let at = block.partition_point(|e| order(e, &entry, names) == Ordering::Less);
        block.insert(at, entry);
        if block.len() > MAX_BLOCK {
            let tail = block.split_off(MAX_BLOCK / 2);
            self.blocks.insert(b + 1, tail);
        }
        self.len += 1;
    }

    /// Removes an entry; returns whether it was there.
    pub fn remove(&mut self, entry: Entry, names: &Names) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        let b = self.block_of(&entry, names);
        let block = &mut self.blocks[b];
        let Ok(at) = block.binary_search_by(|e| order(e, &entry, names)) else {
            return false;
        };
        block.remove(at);
        if block.is_empty() && self.blocks.len() > 1 {
            self.blocks.remove(b);
        }
        self.len -= 1;
        true
    }

    /// The 0-based position of an entry, if it is in the index.
    pub fn position(&self, entry: &Entry, names: &Names) -> Option<usize> {
        if self.blocks.is_empty() {
            return None;
        }
        let b = self.block_of(entry, names);
        let at = self.blocks[b]
            .binary_search_by(|e| order(e, entry, names))
            .ok()?;
        Some(self.before(b) + at)
    }

    /// The 0-based position of the first entry after the place of
    /// `(score, name)`, which need not be in the index (a page's cursor).
    pub fn first_after(&self, score: i64, name: &str, names: &Names) -> usize {
        let is_at_or_before = |e: &Entry| {
            score
                .cmp(&e.score)
                .then_with(|| names.name(e.member).cmp(name))
                != Ordering::Greater
        };
        // Blocks wholly at or before the key, then entries of the next.
        let b = self
            .blocks
            .partition_point(|block| block.last().is_some_and(is_at_or_before));
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

    /// Every entry, in rank order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.blocks.iter().flatten()
    }

    /// Bytes held by the entries and blocks (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.capacity() * std::mem::size_of::<Entry>())
            .sum::<usize>()
            + self.blocks.capacity() * std::mem::size_of::<Vec<Entry>>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The index against a sorted vector, after every step.
    fn check(index: &RankIndex, model: &[Entry], names: &Names) {
        assert_eq!(index.len(), model.len());
        let all: Vec<Entry> = index.iter().copied().collect();
        assert_eq!(all, model);
        for (i, e) in model.iter().enumerate() {
            assert_eq!(index.position(e, names), Some(i));
        }
        for (i, e) in model.iter().enumerate().step_by(97) {
            let name = names.name(e.member);
            assert_eq!(index.first_after(e.score, name, names), i + 1);
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
            for m in 0..3000 {
                // Names not in number order, so ties really sort by name.
                names.intern(&format!("u{}", (m * 7919) % 3001));
            }
            let mut index = RankIndex::default();
            let mut scores: HashMap<u32, i64> = HashMap::new();
            for (i, (member, score, remove)) in ops.into_iter().enumerate() {
                if let Some(old) = scores.remove(&member) {
                    let removed = index.remove(Entry { score: old, member }, &names);
                    prop_assert!(removed);
                }
                if !remove {
                    index.insert(Entry { score, member }, &names);
                    scores.insert(member, score);
                }
                if i % 500 == 0 {
                    let mut model: Vec<Entry> =
                        scores.iter().map(|(&member, &score)| Entry { score, member }).collect();
                    model.sort_by(|a, b| order(a, b, &names));
                    check(&index, &model, &names);
                }
            }
            let mut model: Vec<Entry> =
                scores.iter().map(|(&member, &score)| Entry { score, member }).collect();
            model.sort_by(|a, b| order(a, b, &names));
            check(&index, &model, &names);
        }
    }

    #[test]
    fn ties_order_by_name_and_a_missing_entry_is_not_removed() {
        let mut names = Names::default();
        let (b, a) = (names.intern("bob"), names.intern("alice"));
        let mut index = RankIndex::default();
        index.insert(
            Entry {
                score: 5,
                member: b,
            },
            &names,
        );
        index.insert(
            Entry {
                score: 5,
                member: a,
            },
            &names,
        );
        index.insert(
            Entry {
                score: 9,
                member: names.intern("zed"),
            },
            &names,
        );
        let order: Vec<&str> = index.iter().map(|e| names.name(e.member)).collect();
        assert_eq!(order, ["zed", "alice", "bob"]);
        assert!(!index.remove(
            Entry {
                score: 4,
                member: a
            },
            &names
        ));
        assert_eq!(
            index.position(
                &Entry {
                    score: 5,
                    member: b
                },
                &names
            ),
            Some(2)
        );
    }
}
