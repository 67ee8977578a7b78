//! The input as one subid line (`parse_line`) and as a whole subid file (`owner_ranges`, `coverage`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unshare_run_helpers::subid::{self, IdInterval, MAX_LINE_LEN, SubidOwner};

/// Whether the union of `ranges` contains every id of `want`.
fn union_covers(ranges: &[IdInterval], want: IdInterval) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut reached = want.start;
    for r in sorted {
        if reached >= want.end {
            break;
        }
        if r.start <= reached && r.end > reached {
            reached = r.end;
        }
    }
    !want.is_empty() && reached >= want.end
}

fuzz_target!(|data: &[u8]| {
    // One line.
    if let Some(entry) = subid::parse_line(data) {
        assert!(data.len() < MAX_LINE_LEN);
        assert!(!entry.owner.is_empty());
        assert!(!entry.owner.contains(&b':'));
        assert!(entry.owner[0] != b'+' && entry.owner[0] != b'-');
        assert!(entry.range.end >= entry.range.start);
    }

    // A whole file.
    let owner = SubidOwner::new(b"alice", 1001);
    let ranges = subid::owner_ranges(data, &owner);

    // The vectorised scan finds exactly the entries a naive line-by-line parse finds, in order.
    let naive: Vec<IdInterval> = data
        .split(|&b| b == b'\n')
        .filter_map(subid::parse_line)
        .filter(|e| (e.owner == b"alice" || e.owner == b"1001") && !e.range.is_empty())
        .map(|e| e.range)
        .collect();
    assert_eq!(ranges, naive);
    // Small scan windows, so lines straddle window boundaries.
    assert_eq!(subid::owner_ranges_windowed(data, &owner, 61), ranges);

    let mut wanted = vec![
        IdInterval { start: 0, end: 1 },
        IdInterval {
            start: 1001,
            end: 1002,
        },
        IdInterval {
            start: 100_000,
            end: 165_536,
        },
        IdInterval {
            start: 0,
            end: u64::from(u32::MAX),
        },
        IdInterval { start: 5, end: 5 },
    ];
    // Every returned range, the union of the first two, and a range just past the first.
    wanted.extend(ranges.iter().take(8).copied());
    if let [a, b, ..] = ranges.as_slice() {
        wanted.push(IdInterval {
            start: a.start.min(b.start),
            end: a.end.max(b.end),
        });
    }
    if let Some(a) = ranges.first() {
        wanted.push(IdInterval {
            start: a.start,
            end: a.end.saturating_add(1),
        });
    }

    let covered = subid::coverage(data, &owner, &wanted);
    assert_eq!(covered.len(), wanted.len());
    for (w, &c) in wanted.iter().zip(&covered) {
        // Covered exactly when the union of alice's ranges contains the interval.
        assert_eq!(c, union_covers(&ranges, *w), "{w:?} {ranges:?}");
    }
    for (i, r) in ranges.iter().take(8).enumerate() {
        assert!(covered[5 + i], "own range {r:?} not covered");
    }
});
