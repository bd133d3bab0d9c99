//! Memory and speed of the embedded leaderboards' structures, in process:
//! USERS members on BOARDS boards, as `src/sqlite/boards.rs` holds them (one
//! `Names` for all, per board a `RankIndex` and an array of scores).
//! Prints the resident memory they added per member per board, and the
//! time of a rank lookup (a name's member, then its position) and of a
//! top-10 read.
//! `cargo run --release --example bench_rank_memory -- USERS BOARDS`
use std::time::Instant;

use gamify_store::rank::{Names, RankIndex};

// The allocator `gamify serve` uses, so that the memory measured is what
// the server holds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users: u32 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let boards: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let before = resident_bytes();
    let mut names = Names::default();
    let mut indexes: Vec<(RankIndex, Vec<i64>)> = (0..boards)
        .map(|_| (RankIndex::default(), Vec::new()))
        .collect();
    let started = Instant::now();
    for i in 0..users {
        // Ids arrive in a scrambled order, as users sign up.
        let n = (u64::from(i) * 104_729) % u64::from(users);
        let (member, renumbered) = names.intern(&format!("user_{n}"));
        if renumbered {
            for (index, _) in &mut indexes {
                index.retie(&names);
            }
        }
        for (b, (index, scores)) in indexes.iter_mut().enumerate() {
            let score = ((n * 7919 + b as u64 * 31) % 100_000) as i64 * 1000;
            index.insert(names.entry(member, score));
            if scores.len() <= member as usize {
                scores.resize(member as usize + 1, i64::MIN);
            }
            scores[member as usize] = score;
        }
    }
    let build = started.elapsed();
    let after = resident_bytes();
    let per = (after - before) as f64 / (f64::from(users) * boards as f64);
    let names_only = names.len();

    // Rank of random members by name, as a request asks, and the top 10,
    // on the first board.
    let (index, scores) = &indexes[0];
    let lookups = 200_000u32;
    let asked: Vec<String> = (0..lookups)
        .map(|i| format!("user_{}", u64::from(i) * 7_919 % u64::from(users)))
        .collect();
    let started = Instant::now();
    let mut found = 0usize;
    for name in &asked {
        let member = names.number(name).expect("every asked name is a member");
        let entry = names.entry(member, scores[member as usize]);
        found += index.position(&entry).map_or(0, |p| p & 1);
    }
    let rank_ns = started.elapsed().as_nanos() as f64 / f64::from(lookups);
    let started = Instant::now();
    for _ in 0..lookups {
        found += index.range(0, 10).len();
    }
    let top_ns = started.elapsed().as_nanos() as f64 / f64::from(lookups);
    println!(
        "users={users} boards={boards} names={names_only} build_ms={} resident_bytes_per_user_per_board={per:.1} rank_ns={rank_ns:.0} top10_ns={top_ns:.0} (checksum {found})",
        build.as_millis()
    );
}
