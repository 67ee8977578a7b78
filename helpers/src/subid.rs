//! /etc/subuid and /etc/subgid: parsing, trusted opening and the coverage decision.
//!
//! Format (shadow's): one `owner:start:count` per line, owner a login name or a numeric uid. There is no
//! comment syntax: any line that is not exactly that (comments, blanks, NIS `+`/`-` lines, extra fields,
//! bad numbers, lines of `MAX_LINE_LEN` bytes or more) is skipped and never invalidates other lines.
//! Numbers are read as C's strtoul with base 0 reads them (decimal, `0x` hex, leading-`0` octal), but
//! without the signs and white space strtoul would also accept. A last line without "\n" is read
//! (shadow 4.13, Debian 12's, reads it too).
//!
//! Stricter than shadow, on purpose:
//! - an entry with count 0 grants nothing (shadow <= 4.19 let `user:0:0` cover every id);
//! - a numeric owner matches only the caller's uid in canonical decimal, not other names sharing the uid;
//! - the file must be a regular file owned by root and not writable by group or others, and is opened
//!   without following a symlink.

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use memchr::arch::all::packedpair::HeuristicFrequencyRank;
use memchr::memmem::{Finder, FinderBuilder};

use crate::numbers::parse_c_ulong;

/// A line this long or longer is invalid (shadow's limit).
pub const MAX_LINE_LEN: usize = 1024;

/// A half-open id interval `[start, end)`. Kept in u64 so `start + count` never overflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdInterval {
    pub start: u64,
    pub end: u64,
}

impl IdInterval {
    pub fn from_start_count(start: u64, count: u64) -> Option<IdInterval> {
        Some(IdInterval {
            start,
            end: start.checked_add(count)?,
        })
    }

    pub fn count(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// One valid line of a subid file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubidEntry<'a> {
    pub owner: &'a [u8],
    pub range: IdInterval,
}

/// Parses one line (without its "\n"). `None` for every invalid line; never panics.
pub fn parse_line(line: &[u8]) -> Option<SubidEntry<'_>> {
    if line.len() >= MAX_LINE_LEN {
        return None;
    }
    let mut fields = line.split(|&b| b == b':');
    let owner = fields.next()?;
    let start = parse_c_ulong(fields.next()?)?;
    let count = parse_c_ulong(fields.next()?)?;
    if fields.next().is_some() || !is_valid_owner(owner) {
        return None;
    }
    Some(SubidEntry {
        owner,
        range: IdInterval::from_start_count(start, count)?,
    })
}

fn is_valid_owner(owner: &[u8]) -> bool {
    // NIS compat lines start with + or -; shadow never matches them against a user.
    !owner.is_empty() && owner[0] != b'+' && owner[0] != b'-'
}

/// The user whose entries count: by login name or by numeric uid.
#[derive(Clone, Debug)]
pub struct SubidOwner {
    /// The login name and the decimal uid: an entry counts when its owner field is exactly one of them.
    keys: Vec<Vec<u8>>,
    /// Searchers for "\n" + key + ":", the byte patterns that can start one of this owner's lines.
    finders: Vec<Finder<'static>>,
}

impl SubidOwner {
    pub fn new(name: &[u8], uid: u32) -> SubidOwner {
        SubidOwner::named(name, Some(uid))
    }

    /// The owner of lines named `name`, and of lines numbered `uid` when the name has a passwd entry
    /// (getsubids asks for names that may have none).
    pub fn named(name: &[u8], uid: Option<u32>) -> SubidOwner {
        let mut keys = vec![name.to_vec()];
        keys.extend(uid.map(|uid| uid.to_string().into_bytes()));
        keys.dedup();
        let finders = keys
            .iter()
            .map(|key| {
                let mut needle = Vec::with_capacity(key.len() + 2);
                needle.push(b'\n');
                needle.extend_from_slice(key);
                needle.push(b':');
                FinderBuilder::new()
                    .build_forward_with_ranker(SubidByteFrequency, &needle)
                    .into_owned()
            })
            .collect();
        SubidOwner { keys, finders }
    }

    /// A found needle only says where a line may start: a name that contains ':' (some NSS sources
    /// allow it) matches the start of another user's line, so the parsed field must be compared.
    fn owns(&self, owner_field: &[u8]) -> bool {
        self.keys.iter().any(|key| key == owner_field)
    }
}

/// How common each byte is in a subid file, for the searcher's prefilter (which looks for the two
/// rarest bytes of the needle first). memchr's default table is for text, where digits and ':' are rare;
/// here they are most of the file, so "\n1003:" was checked at nearly every number. Only speed depends
/// on this: every candidate is still compared in full.
struct SubidByteFrequency;

impl HeuristicFrequencyRank for SubidByteFrequency {
    fn rank(&self, byte: u8) -> u8 {
        match byte {
            b'0'..=b'9' => 255,
            b':' => 200,
            b'\n' => 150,
            b'a'..=b'z' => 120,
            _ => 40,
        }
    }
}

/// Scan window: small enough that both searches (name and numeric uid) run over L1-resident data
/// (measured: 32 KiB beat 16, 64 and 128 KiB; docs/benchmarks.md).
const WINDOW: usize = 32 * 1024;

/// Calls `visit` for each valid entry of `owner` in `file` (a whole subid file) that grants ids, in
/// file order, until `visit` breaks: what the coverage decision and the runner use.
pub fn for_each_owner_entry(
    file: &[u8],
    owner: &SubidOwner,
    mut visit: impl FnMut(IdInterval) -> ControlFlow<()>,
) {
    for_each_owner_line(file, owner, |entry| granting(entry, &mut visit));
}

/// Calls `visit` for each valid line of `owner` in `file`, count-0 lines included (they grant
/// nothing, but getsubids lists them as shadow does), in file order, until `visit` breaks. Lines of
/// other owners are never parsed: a vectorised search for "\nNAME:" skips them; nothing is allocated;
/// and a mapped file is read only as far as the scan goes.
pub fn for_each_owner_line<'a>(
    file: &'a [u8],
    owner: &SubidOwner,
    visit: impl FnMut(SubidEntry<'a>) -> ControlFlow<()>,
) {
    for_each_owner_line_windowed(file, owner, WINDOW, visit);
}

fn granting(
    entry: SubidEntry<'_>,
    visit: &mut impl FnMut(IdInterval) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if entry.range.is_empty() {
        ControlFlow::Continue(())
    } else {
        visit(entry.range)
    }
}

/// `for_each_owner_line` with a given window size (tests use tiny windows to hit every boundary).
fn for_each_owner_line_windowed<'a>(
    file: &'a [u8],
    owner: &SubidOwner,
    window: usize,
    mut visit: impl FnMut(SubidEntry<'a>) -> ControlFlow<()>,
) {
    let window = window.max(1);
    // The first line has no "\n" before it for the needles to find.
    let first_end = memchr::memchr(b'\n', file).unwrap_or(file.len());
    if visit_line(&file[..first_end], owner, &mut visit).is_break() {
        return;
    }
    // Each region starts at a "\n" and ends at the next region's "\n" (or the end of the file), so
    // every line starts inside exactly one region.
    let mut start = first_end;
    while start < file.len() {
        let limit = start.saturating_add(window).min(file.len() - 1);
        let end = match memchr::memrchr(b'\n', &file[start + 1..=limit]) {
            Some(pos) => start + 1 + pos,
            // A line longer than the window: the region runs to its end.
            None => {
                memchr::memchr(b'\n', &file[limit + 1..]).map_or(file.len(), |pos| limit + 1 + pos)
            }
        };
        if scan_region(&file[start..end], owner, &mut visit).is_break() {
            return;
        }
        start = end;
    }
}

/// `region` starts with "\n"; its last line ends at the region's end. Visits the owner's lines in it.
fn scan_region<'a>(
    region: &'a [u8],
    owner: &SubidOwner,
    visit: &mut impl FnMut(SubidEntry<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut pos = 0;
    loop {
        // The earliest match of any needle keeps file order.
        let next = owner
            .finders
            .iter()
            .filter_map(|finder| finder.find(&region[pos..]))
            .min();
        let Some(offset) = next else {
            return ControlFlow::Continue(());
        };
        let line_start = pos + offset + 1;
        let line_len =
            memchr::memchr(b'\n', &region[line_start..]).unwrap_or(region.len() - line_start);
        visit_line(&region[line_start..line_start + line_len], owner, visit)?;
        pos = line_start + line_len;
    }
}

fn visit_line<'a>(
    line: &'a [u8],
    owner: &SubidOwner,
    visit: &mut impl FnMut(SubidEntry<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    match parse_line(line) {
        Some(entry) if owner.owns(entry.owner) => visit(entry),
        _ => ControlFlow::Continue(()),
    }
}

/// For each wanted interval: whether the owner's entries cover it completely. Entries combine
/// (adjacent or overlapping lines of the same owner), and the scan stops as soon as all are covered.
pub fn coverage(file: &[u8], owner: &SubidOwner, wanted: &[IdInterval]) -> Vec<bool> {
    // The parts of each wanted interval not yet covered, tagged with the interval's index.
    let mut uncovered: Vec<(usize, IdInterval)> = wanted
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, w)| !w.is_empty())
        .collect();
    if !uncovered.is_empty() {
        for_each_owner_entry(file, owner, |entry| {
            subtract(&mut uncovered, entry);
            if uncovered.is_empty() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    }
    (0..wanted.len())
        .map(|i| !wanted[i].is_empty() && uncovered.iter().all(|(j, _)| *j != i))
        .collect()
}

/// Removes `entry` from every uncovered piece, splitting a piece that it cuts in two.
fn subtract(uncovered: &mut Vec<(usize, IdInterval)>, entry: IdInterval) {
    let mut i = 0;
    while i < uncovered.len() {
        let (index, piece) = uncovered[i];
        if entry.end <= piece.start || entry.start >= piece.end {
            i += 1;
            continue;
        }
        let left = IdInterval {
            start: piece.start,
            end: entry.start,
        };
        let right = IdInterval {
            start: entry.end,
            end: piece.end,
        };
        match (left.start < left.end, right.start < right.end) {
            (false, false) => {
                uncovered.swap_remove(i);
                continue;
            }
            (true, false) => uncovered[i].1 = left,
            (false, true) => uncovered[i].1 = right,
            (true, true) => {
                uncovered[i].1 = left;
                uncovered.push((index, right));
            }
        }
        i += 1;
    }
}

/// All of the owner's ranges, in file order (what the runner maps after inside id 0).
pub fn owner_ranges(file: &[u8], owner: &SubidOwner) -> Vec<IdInterval> {
    owner_ranges_windowed(file, owner, WINDOW)
}

/// `owner_ranges` with a given scan window, for tests of the window boundaries (not for other use).
#[doc(hidden)]
pub fn owner_ranges_windowed(file: &[u8], owner: &SubidOwner, window: usize) -> Vec<IdInterval> {
    let mut ranges = Vec::new();
    for_each_owner_line_windowed(file, owner, window, |entry| {
        granting(entry, &mut |range| {
            ranges.push(range);
            ControlFlow::Continue(())
        })
    });
    ranges
}

/// A subid file's bytes, mapped read-only.
pub use crate::sys::MappedFile as SubidFile;

/// Maps an open subid file for scanning (no privilege involved: for the runner).
pub fn map_file(file: &File) -> io::Result<SubidFile> {
    SubidFile::map(file)
}

#[derive(Debug)]
pub enum SubidFileError {
    Symlink,
    NotRegular,
    Untrusted { uid: u32, mode: u32 },
    Io(io::Error),
}

impl std::fmt::Display for SubidFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubidFileError::Symlink => write!(f, "is a symbolic link, refusing to follow it"),
            SubidFileError::NotRegular => write!(f, "is not a regular file"),
            SubidFileError::Untrusted { uid, mode } => write!(
                f,
                "must be owned by root and not writable by others (owner {uid}, mode {mode:04o})"
            ),
            SubidFileError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Opens and maps a subid file for a privileged decision. A missing file is `Ok(None)`: nobody has
/// ranges.
pub fn open_trusted(path: &Path) -> Result<Option<SubidFile>, SubidFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(SubidFileError::Symlink),
        Err(e) => return Err(SubidFileError::Io(e)),
    };
    let meta = file.metadata().map_err(SubidFileError::Io)?;
    check_trusted_metadata(meta.file_type().is_file(), meta.uid(), meta.mode())?;
    SubidFile::map(&file).map(Some).map_err(SubidFileError::Io)
}

fn check_trusted_metadata(is_regular: bool, uid: u32, mode: u32) -> Result<(), SubidFileError> {
    if !is_regular {
        return Err(SubidFileError::NotRegular);
    }
    if uid != 0 || mode & 0o022 != 0 {
        return Err(SubidFileError::Untrusted {
            uid,
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(start: u64, count: u64) -> IdInterval {
        IdInterval::from_start_count(start, count).unwrap()
    }

    #[test]
    fn parses_valid_lines() {
        let e = parse_line(b"alice:100000:65536").unwrap();
        assert_eq!(e.owner, b"alice");
        assert_eq!(e.range, iv(100000, 65536));
        assert_eq!(parse_line(b"1001:0x10:010").unwrap().range, iv(16, 8));
    }

    #[test]
    fn rejects_invalid_lines() {
        for line in [
            &b""[..],
            b"alice:100000",
            b"alice:100000:65536:",
            b"alice:100000:65536:1",
            b":100000:65536",
            b"+alice:100000:65536",
            b"-alice:100000:65536",
            b"alice:-1:65536",
            b"alice: 100000:65536",
            b"alice:100000:65536 ",
            b"alice:1e5:65536",
            b"alice:18446744073709551615:2",
            b"alice:99999999999999999999:1",
        ] {
            assert_eq!(
                parse_line(line),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let mut long = b"alice:100000:65536".to_vec();
        long.resize(MAX_LINE_LEN, b'0');
        assert_eq!(parse_line(&long), None);
    }

    #[test]
    fn lines_of_max_len_or_more_are_invalid() {
        // "alice:000...01:1": leading zeros keep the value (octal 1), so only the length differs.
        let line = |len: usize| {
            let mut l = b"alice:".to_vec();
            l.resize(len - 3, b'0');
            l.extend(b"1:1");
            l
        };
        assert_eq!(parse_line(&line(MAX_LINE_LEN - 1)).unwrap().range, iv(1, 1));
        assert_eq!(parse_line(&line(MAX_LINE_LEN)), None);
        let owner = SubidOwner::new(b"alice", 1001);
        let mut file = line(MAX_LINE_LEN);
        file.push(b'\n');
        assert_eq!(owner_ranges(&file[..], &owner), []);
    }

    #[test]
    fn names_with_colons_do_not_take_other_users_lines() {
        // "bob:100000" finds "\nbob:100000:" at the start of bob's line; the owner field is "bob".
        let owner = SubidOwner::new(b"bob:100000", 1001);
        let file = b"bob:100000:65536\n";
        assert_eq!(owner_ranges(&file[..], &owner), []);
        assert_eq!(coverage(&file[..], &owner, &[iv(100000, 65536)]), [false]);
    }

    #[test]
    fn comment_like_lines_never_match_a_user() {
        // shadow has no comment syntax: "# alice" is just an owner no login name can equal.
        assert_eq!(parse_line(b"# alice:1:1").unwrap().owner, b"# alice");
        let owner = SubidOwner::new(b"alice", 1001);
        assert_eq!(
            owner_ranges(
                &b"# alice:1:1
#alice:1:1
"[..],
                &owner
            ),
            []
        );
    }

    #[test]
    fn count_zero_entries_grant_nothing() {
        let owner = SubidOwner::new(b"alice", 1001);
        let file = b"alice:0:0\n";
        assert_eq!(
            coverage(&file[..], &owner, &[iv(0, 1), iv(5, 10)]),
            [false, false]
        );
    }

    #[test]
    fn adjacent_entries_combine() {
        let owner = SubidOwner::new(b"alice", 1001);
        let file = b"alice:100000:10\nbob:100010:5\nalice:100010:10\n";
        assert_eq!(coverage(&file[..], &owner, &[iv(100000, 20)]), [true]);
        assert_eq!(coverage(&file[..], &owner, &[iv(100000, 21)]), [false]);
    }

    #[test]
    fn numeric_uid_owner_matches() {
        let owner = SubidOwner::new(b"alice", 1001);
        let file = b"1001:200000:100\n01001:300000:100\n";
        assert_eq!(
            coverage(&file[..], &owner, &[iv(200000, 100), iv(300000, 1)]),
            [true, false]
        );
    }

    #[test]
    fn other_owners_and_prefixes_do_not_match() {
        let owner = SubidOwner::new(b"al", 1001);
        let file = b"alice:100000:65536\nxal:100000:65536\nal :100000:65536\n";
        assert_eq!(coverage(&file[..], &owner, &[iv(100000, 1)]), [false]);
    }

    #[test]
    fn malformed_lines_do_not_hide_valid_ones() {
        let owner = SubidOwner::new(b"alice", 1001);
        let file = b"garbage\n\n#alice:1:1\nalice:100000:65536\nalice:x:y\n+:::\n";
        assert_eq!(coverage(&file[..], &owner, &[iv(100000, 65536)]), [true]);
    }

    #[test]
    fn first_and_last_line_without_newline() {
        let owner = SubidOwner::new(b"alice", 1001);
        assert_eq!(owner_ranges(&b"alice:1:2"[..], &owner), [iv(1, 2)]);
        assert_eq!(owner_ranges(&b"bob:5:5\nalice:1:2"[..], &owner), [iv(1, 2)]);
    }

    #[test]
    fn owner_ranges_keep_file_order_across_name_and_uid() {
        let owner = SubidOwner::new(b"alice", 1001);
        let file = b"1001:300:10\nalice:100:10\nbob:1:1\n1001:200:10\nalice:0:0\n";
        assert_eq!(
            owner_ranges(&file[..], &owner),
            [iv(300, 10), iv(100, 10), iv(200, 10)]
        );
    }

    #[test]
    fn lines_include_count_zero_entries_that_grant_nothing() {
        let owner = SubidOwner::new(b"alice", 1001);
        let file = b"alice:5:0\nbob:1:1\n1001:0:0\nalice:7:1\n";
        let mut lines = Vec::new();
        for_each_owner_line(file, &owner, |entry| {
            lines.push((entry.owner, entry.range));
            ControlFlow::Continue(())
        });
        assert_eq!(
            lines,
            [
                (&b"alice"[..], iv(5, 0)),
                (&b"1001"[..], iv(0, 0)),
                (&b"alice"[..], iv(7, 1)),
            ]
        );
        assert_eq!(owner_ranges(file, &owner), [iv(7, 1)]);
    }

    #[test]
    fn an_owner_without_uid_matches_only_its_name() {
        let owner = SubidOwner::named(b"ghost", None);
        let file = b"1001:1:1\nghost:2:2\n0:3:3\n";
        assert_eq!(owner_ranges(file, &owner), [iv(2, 2)]);
        let both = SubidOwner::named(b"ghost", Some(0));
        assert_eq!(owner_ranges(file, &both), [iv(2, 2), iv(3, 3)]);
    }

    #[test]
    fn every_window_size_gives_the_same_entries() {
        let owner = SubidOwner::new(b"alice", 1001);
        let mut file = b"alice:1:1\n".to_vec();
        file.extend(std::iter::repeat_n(b'x', 3000));
        file.extend(b"\nalice:7:1\nbob:8:1\n\n1001:9:1\nalice:11:1");
        let expected = [iv(1, 1), iv(7, 1), iv(9, 1), iv(11, 1)];
        for window in [0, 1, 2, 3, 5, 8, 13, 64, 1000, 4096, 1 << 20] {
            assert_eq!(
                owner_ranges_windowed(&file, &owner, window),
                expected,
                "window {window}"
            );
        }
        assert_eq!(owner_ranges(&file, &owner), expected);
        for file in [&b""[..], b"\n", b"\n\n", b"alice:1:1\n", b"\nalice:1:1"] {
            for window in [1, 2, 100] {
                let got = owner_ranges_windowed(file, &owner, window);
                assert_eq!(
                    got.len(),
                    usize::from(file.len() > 2),
                    "{file:?} window {window}"
                );
            }
        }
    }

    #[test]
    fn a_huge_last_line_without_newline_is_invalid() {
        let owner = SubidOwner::new(b"alice", 1001);
        let mut file = b"alice:1:1\nalice:2:1".to_vec();
        file.extend(std::iter::repeat_n(b'0', 300_000));
        assert_eq!(owner_ranges(&file[..], &owner), [iv(1, 1)]);
    }

    #[test]
    fn scan_stops_once_covered() {
        let owner = SubidOwner::new(b"alice", 1001);
        let file = b"alice:100000:10\nalice:100010:10\nalice:100020:10\n";
        let mut seen = Vec::new();
        let mut uncovered = vec![(0, iv(100000, 20))];
        for_each_owner_entry(file, &owner, |entry| {
            seen.push(entry);
            subtract(&mut uncovered, entry);
            if uncovered.is_empty() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(
            seen,
            [iv(100000, 10), iv(100010, 10)],
            "read past the covering line"
        );
        assert_eq!(coverage(file, &owner, &[iv(100000, 20)]), [true]);
    }

    #[test]
    fn subtract_splits_and_trims() {
        let mut pieces = vec![(0, iv(10, 10))];
        subtract(&mut pieces, iv(12, 2));
        assert_eq!(pieces, [(0, iv(10, 2)), (0, iv(14, 6))]);
        subtract(&mut pieces, iv(0, 11));
        assert_eq!(pieces, [(0, iv(11, 1)), (0, iv(14, 6))]);
        subtract(&mut pieces, iv(11, 100));
        assert!(pieces.is_empty());
    }

    #[test]
    fn trusted_metadata_rules() {
        assert!(check_trusted_metadata(true, 0, 0o100644).is_ok());
        assert!(check_trusted_metadata(true, 0, 0o100600).is_ok());
        assert!(matches!(
            check_trusted_metadata(false, 0, 0o644),
            Err(SubidFileError::NotRegular)
        ));
        assert!(matches!(
            check_trusted_metadata(true, 1000, 0o644),
            Err(SubidFileError::Untrusted { .. })
        ));
        assert!(matches!(
            check_trusted_metadata(true, 0, 0o664),
            Err(SubidFileError::Untrusted { .. })
        ));
        assert!(matches!(
            check_trusted_metadata(true, 0, 0o646),
            Err(SubidFileError::Untrusted { .. })
        ));
    }

    #[test]
    fn open_trusted_refuses_symlinks_and_accepts_missing() {
        let dir = std::env::temp_dir().join(format!("subid-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        assert!(matches!(open_trusted(&link), Err(SubidFileError::Symlink)));
        assert!(matches!(open_trusted(&dir.join("missing")), Ok(None)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
