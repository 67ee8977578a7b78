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

use crate::numbers::parse_c_ulong;
use crate::sys;

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
    /// "\n" + key + ":" for each key: the byte patterns that can start one of this owner's lines.
    needles: Vec<Needle>,
    /// Where a needle may start: the bytes of every needle that the scan compares first.
    filter: LineFilter,
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
        let needles: Vec<Needle> = keys.iter().map(|key| Needle::new(key)).collect();
        let filter = LineFilter::for_needles(&needles);
        SubidOwner {
            keys,
            needles,
            filter,
        }
    }

    /// A found needle only says where a line may start: a name that contains ':' (some NSS sources
    /// allow it) matches the start of another user's line, so the parsed field must be compared.
    fn owns(&self, owner_field: &[u8]) -> bool {
        self.keys.iter().any(|key| key == owner_field)
    }

    /// Whether one of the needles starts at `pos` of `region`.
    fn needle_at(&self, region: &[u8], pos: usize) -> bool {
        self.needles.iter().any(|needle| needle.is_at(region, pos))
    }
}

/// "\n" + key + ":", with its first 8 bytes as a word for a quick first comparison.
#[derive(Clone, Debug)]
struct Needle {
    bytes: Vec<u8>,
    head: u64,
    head_mask: u64,
}

impl Needle {
    fn new(key: &[u8]) -> Needle {
        let mut bytes = Vec::with_capacity(key.len() + 2);
        bytes.push(b'\n');
        bytes.extend_from_slice(key);
        bytes.push(b':');
        let mut head = [0u8; 8];
        let n = bytes.len().min(8);
        head[..n].copy_from_slice(&bytes[..n]);
        Needle {
            head: u64::from_le_bytes(head),
            head_mask: u64::MAX >> (8 * (8 - n)),
            bytes,
        }
    }

    fn is_at(&self, region: &[u8], pos: usize) -> bool {
        let Some(rest) = region.get(pos..) else {
            return false;
        };
        // Most candidates differ in their first 8 bytes: one comparison of words, no call.
        if let Some(word) = rest.first_chunk::<8>()
            && (u64::from_le_bytes(*word) ^ self.head) & self.head_mask != 0
        {
            return false;
        }
        rest.starts_with(&self.bytes)
    }
}

/// The filter of the scan: position `i` of a region may start a needle when the region has "\n" at
/// `i` and, for one of the two needles, its bytes `bytes[2j]` and `bytes[2j + 1]` at `i +
/// offsets[2j]` and `i + offsets[2j + 1]` (with one needle, both halves are the same). The bytes are
/// each needle's two rarest in subid files (`byte_rank`), taken from its first `FILTER_REACH` bytes,
/// so every needle passes the filter wherever it starts; every candidate is then compared in full.
/// Only speed depends on the choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineFilter {
    offsets: [usize; 4],
    bytes: [u8; 4],
    /// 32 positions at a time where the processor has AVX2, else 16 (SSE2).
    avx2: Option<sys::Avx2>,
}

/// How far past a "\n" the filter looks: offsets are taken modulo FILTER_REACH.
pub const FILTER_REACH: usize = 64;
/// The filter decides 64 positions at a time, from a block of this many bytes.
pub const FILTER_BLOCK: usize = 64 + FILTER_REACH;

impl LineFilter {
    /// A filter with these offsets (modulo FILTER_REACH) and bytes, as fast as the machine allows.
    pub fn new(offsets: [usize; 4], bytes: [u8; 4]) -> LineFilter {
        LineFilter {
            offsets: offsets.map(|o| o % FILTER_REACH),
            bytes,
            avx2: sys::avx2(),
        }
    }

    /// The same filter without AVX2 (tests compare both ways with `mask_scalar`).
    pub fn without_avx2(self) -> LineFilter {
        LineFilter { avx2: None, ..self }
    }

    pub fn uses_avx2(&self) -> bool {
        self.avx2.is_some()
    }

    fn for_needles(needles: &[Needle]) -> LineFilter {
        let pick = |needle: &Needle| {
            let bytes = &needle.bytes;
            // Rarest first; of equally rare bytes the later (names share prefixes: user1, user2...).
            let mut positions: Vec<usize> = (1..bytes.len().min(FILTER_REACH)).collect();
            positions.sort_by_key(|&i| (byte_rank(bytes[i]), std::cmp::Reverse(i)));
            let first = positions.first().copied().unwrap_or(1);
            let second = positions.get(1).copied().unwrap_or(first);
            [first, second].map(|i| (i, bytes.get(i).copied().unwrap_or(b':')))
        };
        let a = needles.first().map(pick).unwrap_or([(1, b':'); 2]);
        let b = needles.get(1).map(pick).unwrap_or(a);
        LineFilter::new(
            [a[0].0, a[1].0, b[0].0, b[1].0],
            [a[0].1, a[1].1, b[0].1, b[1].1],
        )
    }

    /// Bit `i` of the result: position `i` of `block` (0..64) passes the filter. The definition of
    /// the vectorised version in sys.rs (tests compare them), and the filter on other architectures.
    pub fn mask_scalar(&self, block: &[u8; FILTER_BLOCK]) -> u64 {
        let [o0, o1, o2, o3] = self.offsets.map(|o| o % FILTER_REACH);
        let [b0, b1, b2, b3] = self.bytes;
        (0..64).fold(0, |mask, i| {
            let hit = block[i] == b'\n'
                && ((block[i + o0] == b0 && block[i + o1] == b1)
                    || (block[i + o2] == b2 && block[i + o3] == b3));
            mask | (u64::from(hit) << i)
        })
    }

    /// From `pos`, in steps of 64 positions while a whole block of `region` remains from the step's
    /// first: the first step with positions that pass the filter, `Ok((step, mask))` (bit `i` for
    /// position `step + i`), or `Err(end)`: the positions from `end` on are not decided. Vectorised
    /// where the machine allows, else with `mask_scalar`.
    pub fn next_candidates(&self, region: &[u8], pos: usize) -> Result<(usize, u64), usize> {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        {
            sys::next_line_candidates(region, pos, self.offsets, self.bytes, self.avx2)
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        {
            self.next_candidates_scalar(region, pos)
        }
    }

    /// `next_candidates` with `mask_scalar`.
    pub fn next_candidates_scalar(
        &self,
        region: &[u8],
        mut pos: usize,
    ) -> Result<(usize, u64), usize> {
        while let Some(block) = region
            .get(pos..)
            .and_then(|rest| rest.first_chunk::<FILTER_BLOCK>())
        {
            let mask = self.mask_scalar(block);
            if mask != 0 {
                return Ok((pos, mask));
            }
            pos += 64;
        }
        Err(pos)
    }
}

/// How common each byte is in a subid file, for choosing the filter's bytes (the rarest are compared
/// first). Digits and ':' are most of the file, so "\n1003:" would be a candidate at nearly every
/// line start of a file of numeric owners if its digits were not compared too.
fn byte_rank(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => 255,
        b':' => 200,
        b'\n' => 150,
        b'a'..=b'z' => 120,
        _ => 40,
    }
}

/// Scan window: the scan goes region by region, each ending at a line's end (the window boundaries
/// are tested with tiny windows).
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
/// other owners are never parsed: one vectorised pass finds where "\nNAME:" or "\nUID:" may start
/// (`LineFilter`) and only those places are compared; nothing is allocated; and a mapped file is read
/// only as far as the scan goes.
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

/// `region` starts with "\n"; its last line ends at the region's end. Visits the owner's lines in it,
/// in order: one pass of the filter over 64 positions at a time, then every "\n" of the last bytes,
/// each candidate compared with the needles in full.
fn scan_region<'a>(
    region: &'a [u8],
    owner: &SubidOwner,
    visit: &mut impl FnMut(SubidEntry<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut pos = 0;
    let tail = loop {
        match owner.filter.next_candidates(region, pos) {
            Ok((step, mut mask)) => {
                while mask != 0 {
                    visit_candidate(region, step + mask.trailing_zeros() as usize, owner, visit)?;
                    mask &= mask - 1;
                }
                pos = step + 64;
            }
            Err(end) => break end,
        }
    };
    // The last bytes, fewer than a block: every "\n" is a candidate.
    let rest = region.get(tail..).unwrap_or_default();
    for newline in memchr::memchr_iter(b'\n', rest) {
        visit_candidate(region, tail + newline, owner, visit)?;
    }
    ControlFlow::Continue(())
}

/// `region[pos]` is a "\n": visits the line after it when a needle starts there.
fn visit_candidate<'a>(
    region: &'a [u8],
    pos: usize,
    owner: &SubidOwner,
    visit: &mut impl FnMut(SubidEntry<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if !owner.needle_at(region, pos) {
        return ControlFlow::Continue(());
    }
    let line = region.get(pos + 1..).unwrap_or_default();
    let line_len = memchr::memchr(b'\n', line).unwrap_or(line.len());
    visit_line(&line[..line_len], owner, visit)
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
    fn the_filter_compares_each_needles_two_rarest_bytes() {
        let owner = SubidOwner::new(b"urt-bench", 1004);
        // "\nurt-bench:": '-' (rarest), then the last of the equally rare letters; "\n1004:": ':', then
        // the last digit.
        assert_eq!(owner.filter.offsets, [4, 9, 5, 4]);
        assert_eq!(owner.filter.bytes, *b"-h:4");
        // One needle (no passwd entry): both halves are the same.
        let ghost = SubidOwner::named(b"ghost", None);
        assert_eq!(ghost.filter.offsets, [5, 4, 5, 4]);
        assert_eq!(ghost.filter.bytes, *b"tsts");
        // Offsets stay within the filter's reach for long names.
        let long = SubidOwner::named(&[b'a'; 200], Some(7));
        assert!(
            long.filter
                .offsets
                .iter()
                .all(|&o| (1..FILTER_REACH).contains(&o))
        );
    }

    /// Bytes from the alphabet of subid files, deterministically scrambled.
    fn scrambled(len: usize, seed: u64) -> Vec<u8> {
        const ALPHABET: &[u8] = b"\n\n\n:::0123456789abh-";
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ALPHABET[(x % ALPHABET.len() as u64) as usize]
            })
            .collect()
    }

    fn all_candidates(next: impl Fn(usize) -> Result<(usize, u64), usize>) -> (Vec<usize>, usize) {
        let (mut found, mut pos) = (Vec::new(), 0);
        loop {
            match next(pos) {
                Ok((step, mut mask)) => {
                    while mask != 0 {
                        found.push(step + mask.trailing_zeros() as usize);
                        mask &= mask - 1;
                    }
                    pos = step + 64;
                }
                Err(end) => return (found, end),
            }
        }
    }

    #[test]
    fn the_vectorised_filter_equals_the_scalar_one() {
        let filters = [
            LineFilter::new([4, 9, 5, 4], *b"-h:4"),
            LineFilter::new([1, 2, 1, 2], *b"0:a:"),
            LineFilter::new([63, 1, 62, 2], *b"9a::"),
            LineFilter::new([64 + 3, 200, 1, 1], *b"::00"),
        ];
        for seed in 1..40 {
            let region = scrambled(100 + 37 * seed as usize, seed);
            for filter in filters {
                let scalar = all_candidates(|pos| filter.next_candidates_scalar(&region, pos));
                assert_eq!(
                    all_candidates(|pos| filter.next_candidates(&region, pos)),
                    scalar,
                    "seed {seed}, {filter:?}"
                );
                assert_eq!(
                    all_candidates(|pos| filter.without_avx2().next_candidates(&region, pos)),
                    scalar,
                    "seed {seed}, {filter:?}"
                );
                // The blocks end where fewer than a whole block remain.
                assert_eq!(
                    scalar.1,
                    region.len().saturating_sub(FILTER_BLOCK - 64) / 64 * 64
                );
            }
        }
    }

    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    #[test]
    fn avx2_is_used_exactly_where_the_processor_has_it() {
        let filter = LineFilter::new([1; 4], [b':'; 4]);
        assert_eq!(
            filter.uses_avx2(),
            std::arch::is_x86_feature_detected!("avx2")
        );
        assert!(!filter.without_avx2().uses_avx2());
    }

    #[test]
    fn needles_are_compared_in_full() {
        let short = Needle::new(b"1004");
        let long = Needle::new(b"urt-bench");
        let region = b"\n1004:1:1\n1005:1:1\n1004\n\nurt-bench:5:5\nurt-bencH:1:1\n1004:";
        let at = |needle: &Needle| {
            (0..region.len() + 2)
                .filter(|&i| needle.is_at(region, i))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(&short), [0, 52]);
        assert_eq!(at(&long), [24]);
        assert!(!long.is_at(b"\nurt-bench", 0));
    }

    #[test]
    fn lines_at_every_place_in_the_blocks_are_found() {
        // alice's line after every number of filler bytes, across the 64- and 128-byte blocks and the
        // tail: the filter never hides a line.
        let owner = SubidOwner::new(b"alice", 1001);
        for filler in 0..300 {
            for numeric in [false, true] {
                let mut file = b"bob:1:1\n".to_vec();
                file.extend(std::iter::repeat_n(b'x', filler));
                file.extend(if numeric {
                    &b"\n1001:7:1\n"[..]
                } else {
                    b"\nalice:7:1\n"
                });
                file.extend(std::iter::repeat_n(b'y', 300 - filler));
                file.extend(b"\nalice:9:1");
                assert_eq!(
                    owner_ranges(&file, &owner),
                    [iv(7, 1), iv(9, 1)],
                    "filler {filler}, numeric {numeric}"
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
