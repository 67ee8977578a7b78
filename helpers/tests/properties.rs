//! Property tests of the privileged parsers and of the range decision.
//!
//! - the parsers (`subid::parse_line`, `numbers::parse_c_ulong`, `target::parse_target`,
//!   `idmap::parse_mappings`) never panic on arbitrary input, and what they accept keeps their invariants;
//! - `subid::coverage`, `subid::owner_ranges` and `newidmap::authorize` agree with a plain reference model
//!   (a set of individual ids) on random subid files and requests, long files included;
//! - the scan's vectorised filter marks exactly what its scalar definition marks;
//! - `getsubids::list_ranges` lists what shadow's rule lists, and exactly the ranges the helpers grant.

use std::cell::Cell;
use std::collections::HashSet;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use unshare_run_helpers::getsubids;
use unshare_run_helpers::idmap::{self, IdMapping, MAX_MAP_LINES, MapError};
use unshare_run_helpers::newidmap::{self, Caller, IdKind};
use unshare_run_helpers::numbers::parse_c_ulong;
use unshare_run_helpers::subid::{
    self, IdInterval, LineFilter, MAX_LINE_LEN, SubidFileError, SubidOwner,
};
use unshare_run_helpers::target::{TargetSpec, parse_target};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn iv(start: u64, count: u64) -> IdInterval {
    IdInterval::from_start_count(start, count).unwrap()
}

// ---------------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------------

/// Bytes that matter to the parsers, plus any byte now and then.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => select(b"0123456789:xX+- \nabfF#".to_vec()),
        1 => any::<u8>(),
    ]
}

/// Arbitrary bytes, and byte strings built from the bytes the parsers care about (far more likely to
/// reach the accepting paths than uniform bytes).
fn parser_input(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..max_len),
        vec(interesting_byte(), 0..40),
        // owner:start:count with each field drawn from a small grammar.
        (field(), field(), field(), prop::option::of(field())).prop_map(|(a, b, c, d)| {
            let mut line = [a, b, c].join(&b':');
            if let Some(d) = d {
                line.push(b':');
                line.extend(d);
            }
            line
        }),
    ]
}

/// A number in one of strtoul's renderings, a near-miss, or junk.
fn field() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<u64>().prop_map(|v| v.to_string().into_bytes()),
        (0u64..300).prop_map(|v| v.to_string().into_bytes()),
        any::<u64>().prop_map(|v| format!("0x{v:x}").into_bytes()),
        any::<u64>().prop_map(|v| format!("0{v:o}").into_bytes()),
        (u64::from(u32::MAX) - 3..=u64::from(u32::MAX) + 3)
            .prop_map(|v| v.to_string().into_bytes()),
        select(vec![
            "alice",
            "1001",
            "+alice",
            "-",
            "",
            "0x",
            "08",
            "-1",
            " 1",
            "99999999999999999999"
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        vec(interesting_byte(), 0..12),
    ]
}

/// One line of a generated subid file.
#[derive(Clone, Debug)]
enum Line {
    /// A well-formed `owner:start:count` line; `base` picks decimal, hex or octal renderings.
    Entry {
        owner: &'static str,
        start: u64,
        count: u64,
        base: u8,
    },
    /// A line that is never a valid entry of alice or of uid 1001.
    Garbage(&'static str),
}

impl Line {
    fn render(&self) -> String {
        match self {
            Line::Entry {
                owner,
                start,
                count,
                base,
            } => {
                let n = |v: u64| match base {
                    1 => format!("0x{v:x}"),
                    2 if v != 0 => format!("0{v:o}"),
                    _ => v.to_string(),
                };
                format!("{owner}:{}:{}", n(*start), n(*count))
            }
            Line::Garbage(s) => s.to_string(),
        }
    }

    /// The range this line grants to alice (uid 1001), per the documented rules.
    fn alice_range(&self) -> Option<IdInterval> {
        match self {
            Line::Entry {
                owner,
                start,
                count,
                ..
            } if (*owner == "alice" || *owner == "1001") && *count > 0 => Some(iv(*start, *count)),
            _ => None,
        }
    }
}

const GARBAGE: &[&str] = &[
    "#x",
    "",
    "alice:1",
    "alice:a:b",
    "# alice:1:5",
    "+alice:1:5",
    "-alice:1:5",
    "alice:5:5:",
    "alice:5:5:5",
    " alice:5:5",
    "alice :5:5",
    "alice:5:5 ",
    "alice: 5:5",
    "alice:+5:5",
    "alice:-5:5",
    "alice:08:5",
    "alice:0x:5",
    "01001:3:4",
    "1001 :3:4",
    "Alice:3:4",
    "alice:18446744073709551615:2",
    "alice",
    ":1:2",
    "alice:3:4\r",
];

fn subid_line(starts: impl Strategy<Value = u64> + Clone + 'static) -> impl Strategy<Value = Line> {
    let entry = (
        select(vec!["alice", "1001", "bob", "alice2"]),
        starts,
        prop_oneof![1 => Just(0u64), 6 => 0u64..30],
        0u8..3,
    )
        .prop_map(|(owner, start, count, base)| Line::Entry {
            owner,
            start,
            count,
            base,
        });
    prop_oneof![
        4 => entry,
        1 => select(GARBAGE).prop_map(Line::Garbage),
    ]
}

/// The lines of a subid file, shuffled, and whether the file ends with "\n".
fn subid_file(
    starts: impl Strategy<Value = u64> + Clone + 'static,
) -> impl Strategy<Value = (Vec<Line>, bool)> {
    (vec(subid_line(starts), 0..25).prop_shuffle(), any::<bool>())
}

fn render_file(lines: &[Line], trailing_newline: bool) -> Vec<u8> {
    let mut text = lines
        .iter()
        .map(Line::render)
        .collect::<Vec<_>>()
        .join("\n");
    if trailing_newline {
        text.push('\n');
    }
    text.into_bytes()
}

/// The reference model: every id granted to alice, one by one.
fn model_ids(lines: &[Line]) -> HashSet<u64> {
    lines
        .iter()
        .filter_map(Line::alice_range)
        .flat_map(|r| r.start..r.end)
        .collect()
}

fn model_covers(ids: &HashSet<u64>, interval: IdInterval) -> bool {
    (interval.start..interval.end).all(|id| ids.contains(&id))
}

fn requests() -> impl Strategy<Value = Vec<IdInterval>> {
    let count = prop_oneof![1u64..5, 1u64..40];
    vec((0u64..250, count).prop_map(|(s, c)| iv(s, c)), 1..4)
}

fn alice() -> SubidOwner {
    SubidOwner::new(b"alice", 1001)
}

// ---------------------------------------------------------------------------------------------------
// subid::parse_line
// ---------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn parse_line_never_panics_and_keeps_its_invariants(line in parser_input(2000)) {
        let parsed = subid::parse_line(&line);
        if let Some(entry) = parsed {
            prop_assert!(!entry.owner.is_empty());
            prop_assert!(!entry.owner.contains(&b':'));
            prop_assert!(entry.owner[0] != b'+' && entry.owner[0] != b'-');
            prop_assert!(entry.range.end >= entry.range.start);
            prop_assert!(line.len() < MAX_LINE_LEN);
        }
        // Reference: exactly three ':'-separated fields, a valid owner, two strtoul numbers whose sum
        // does not overflow, and a line shorter than shadow's limit.
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        let expected = match fields.as_slice() {
            [owner, start, count]
                if line.len() < MAX_LINE_LEN
                    && !owner.is_empty()
                    && owner[0] != b'+'
                    && owner[0] != b'-' =>
            {
                match (parse_c_ulong(start), parse_c_ulong(count)) {
                    (Some(s), Some(c)) => IdInterval::from_start_count(s, c).map(|r| (*owner, r)),
                    _ => None,
                }
            }
            _ => None,
        };
        prop_assert_eq!(parsed.map(|e| (e.owner, e.range)), expected);
    }
}

// ---------------------------------------------------------------------------------------------------
// numbers::parse_c_ulong
// ---------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn parse_c_ulong_never_panics_and_accepts_only_strtoul_forms(s in prop_oneof![
        parser_input(64),
        field(),
        vec(select(b"0123456789abcdefABCDEFxX".to_vec()), 0..24),
    ]) {
        if let Some(v) = parse_c_ulong(&s) {
            // Whatever is accepted is one of strtoul's base-0 forms, with no sign and no space.
            let (digits, radix) = match s.as_slice() {
                [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
                [b'0', rest @ ..] if !rest.is_empty() => (rest, 8),
                _ => (s.as_slice(), 10),
            };
            prop_assert!(!digits.is_empty());
            prop_assert!(digits.iter().all(u8::is_ascii_alphanumeric));
            let digits = std::str::from_utf8(digits).unwrap();
            prop_assert_eq!(u64::from_str_radix(digits, radix), Ok(v));
        }
    }

    #[test]
    fn parse_c_ulong_reads_every_rendering_of_a_u64(v in any::<u64>()) {
        prop_assert_eq!(parse_c_ulong(v.to_string().as_bytes()), Some(v));
        prop_assert_eq!(parse_c_ulong(format!("0x{v:x}").as_bytes()), Some(v));
        prop_assert_eq!(parse_c_ulong(format!("0X{v:X}").as_bytes()), Some(v));
        prop_assert_eq!(parse_c_ulong(format!("0{v:o}").as_bytes()), Some(v));
    }

    #[test]
    fn parse_c_ulong_refuses_signs_and_leading_space(
        prefix in select(vec![b'+', b'-', b' ']),
        rest in prop_oneof![field(), any::<u64>().prop_map(|v| v.to_string().into_bytes())],
    ) {
        let mut s = vec![prefix];
        s.extend(rest);
        prop_assert_eq!(parse_c_ulong(&s), None);
    }

    #[test]
    fn parse_c_ulong_overflow_is_refused(v in (u128::from(u64::MAX) + 1)..=u128::MAX) {
        prop_assert_eq!(parse_c_ulong(v.to_string().as_bytes()), None);
        prop_assert_eq!(parse_c_ulong(format!("0x{v:x}").as_bytes()), None);
        prop_assert_eq!(parse_c_ulong(format!("0{v:o}").as_bytes()), None);
    }
}

// ---------------------------------------------------------------------------------------------------
// target::parse_target
// ---------------------------------------------------------------------------------------------------

fn target_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        parser_input(64),
        any::<i32>().prop_map(|p| p.to_string().into_bytes()),
        any::<i32>().prop_map(|p| format!("fd:{p}").into_bytes()),
        (
            prop::option::of(Just("fd:")),
            vec(select(b"0123456789+- x".to_vec()), 0..13)
        )
            .prop_map(|(prefix, digits)| {
                let mut s = prefix.unwrap_or("").as_bytes().to_vec();
                s.extend(digits);
                s
            }),
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    /// What is accepted keeps the target's invariants. Leading zeros are accepted, as by shadow's
    /// strtol base 10 (decided after the fuzzing finding in docs/fuzzing.md).
    #[test]
    fn parse_target_never_panics_and_accepts_only_decimal(arg in target_input()) {
        let strip_zeros = |s: &[u8]| -> Vec<u8> {
            let first = s.iter().position(|&b| b != b'0').unwrap_or(s.len().saturating_sub(1));
            s[first..].to_vec()
        };
        match parse_target(&arg) {
            Ok(TargetSpec::Pid(p)) => {
                prop_assert!(p >= 1);
                prop_assert_eq!(strip_zeros(&arg), p.to_string().into_bytes());
            }
            Ok(TargetSpec::Fd(fd)) => {
                prop_assert!(fd >= 0);
                let digits = arg.strip_prefix(b"fd:").expect("fd target without fd: prefix");
                prop_assert_eq!(strip_zeros(digits), fd.to_string().into_bytes());
            }
            Err(_) => {}
        }
    }

    /// Any run of leading zeros is accepted: the value is what counts, whatever the length.
    #[test]
    fn target_pid_with_leading_zeros_is_its_decimal_value(p in 1..=i32::MAX, zeros in 0usize..20) {
        let arg = format!("{}{p}", "0".repeat(zeros));
        prop_assert_eq!(parse_target(arg.as_bytes()), Ok(TargetSpec::Pid(p)));
        prop_assert_eq!(parse_target(format!("fd:{arg}").as_bytes()), Ok(TargetSpec::Fd(p)));
    }

    #[test]
    fn parse_target_accepts_every_canonical_pid_and_fd(p in any::<i32>()) {
        let pid = parse_target(p.to_string().as_bytes());
        let fd = parse_target(format!("fd:{p}").as_bytes());
        if p >= 1 {
            prop_assert_eq!(pid, Ok(TargetSpec::Pid(p)));
        } else {
            prop_assert!(pid.is_err());
        }
        if p >= 0 {
            prop_assert_eq!(fd, Ok(TargetSpec::Fd(p)));
        } else {
            prop_assert!(fd.is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// idmap::parse_mappings and render_map
// ---------------------------------------------------------------------------------------------------

fn mapping_arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (0u64..300).prop_map(|v| v.to_string().into_bytes()),
        1 => (0u64..300).prop_map(|v| format!("0x{v:x}").into_bytes()),
        1 => (1u64..300).prop_map(|v| format!("0{v:o}").into_bytes()),
        1 => (u64::from(u32::MAX) - 300..=u64::from(u32::MAX) + 2)
            .prop_map(|v| v.to_string().into_bytes()),
        1 => any::<u32>().prop_map(|v| v.to_string().into_bytes()),
        1 => vec(any::<u8>(), 0..12),
        1 => field(),
    ]
}

fn mapping_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        // Arbitrary vectors of arbitrary bytes.
        vec(vec(any::<u8>(), 0..16), 0..10),
        // Mostly numbers, any length.
        vec(mapping_arg(), 0..20),
        // Whole triplets of small numbers: many pass, many overlap.
        vec(
            (0u32..200, 0u32..200, 0u32..40).prop_map(|(i, o, c)| vec![
                i.to_string(),
                o.to_string(),
                c.to_string()
            ]),
            1..8,
        )
        .prop_map(|t| t.into_iter().flatten().map(String::into_bytes).collect()),
        // Around the line limit: disjoint singletons.
        (MAX_MAP_LINES - 3..=MAX_MAP_LINES + 3).prop_map(|n| {
            (0..n)
                .flat_map(|i| {
                    [
                        i.to_string(),
                        (100_000 + 2 * i).to_string(),
                        "1".to_string(),
                    ]
                })
                .map(String::into_bytes)
                .collect()
        }),
    ]
}

/// Reference model of parse_mappings, rule by rule.
fn model_mappings(args: &[Vec<u8>]) -> Option<Vec<IdMapping>> {
    if args.is_empty() || !args.len().is_multiple_of(3) || args.len() / 3 > MAX_MAP_LINES {
        return None;
    }
    let id = |s: &Vec<u8>| parse_c_ulong(s).and_then(|v| u32::try_from(v).ok());
    let mut out = Vec::new();
    for t in args.chunks(3) {
        let (inside, outside, count) = (id(&t[0])?, id(&t[1])?, id(&t[2])?);
        let limit = u64::from(u32::MAX);
        if count == 0
            || u64::from(inside) + u64::from(count) > limit
            || u64::from(outside) + u64::from(count) > limit
        {
            return None;
        }
        out.push(IdMapping {
            inside,
            outside,
            count,
        });
    }
    for (i, a) in out.iter().enumerate() {
        for b in &out[i + 1..] {
            let ids = |m: &IdMapping, inside: bool| {
                let s = u64::from(if inside { m.inside } else { m.outside });
                s..s + u64::from(m.count)
            };
            let meet = |x: std::ops::Range<u64>, y: std::ops::Range<u64>| {
                x.start < y.end && y.start < x.end
            };
            if meet(ids(a, true), ids(b, true)) || meet(ids(a, false), ids(b, false)) {
                return None;
            }
        }
    }
    Some(out)
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn parse_mappings_never_panics_and_keeps_its_invariants(args in mapping_args()) {
        let parsed = idmap::parse_mappings(&args);
        if let Ok(ms) = &parsed {
            prop_assert!(!ms.is_empty());
            prop_assert!(ms.len() <= MAX_MAP_LINES);
            prop_assert_eq!(ms.len() * 3, args.len());
            for m in ms {
                prop_assert!(m.count >= 1);
                prop_assert!(u64::from(m.inside) + u64::from(m.count) <= u64::from(u32::MAX));
                prop_assert!(u64::from(m.outside) + u64::from(m.count) <= u64::from(u32::MAX));
            }
            for (i, a) in ms.iter().enumerate() {
                for b in &ms[i + 1..] {
                    let (ai, bi) = (a.inside_interval(), b.inside_interval());
                    let (ao, bo) = (a.outside_interval(), b.outside_interval());
                    prop_assert!(ai.end <= bi.start || bi.end <= ai.start, "inside overlap {:?} {:?}", a, b);
                    prop_assert!(ao.end <= bo.start || bo.end <= ao.start, "outside overlap {:?} {:?}", a, b);
                }
            }
            // The rendered map re-parses to the same mappings.
            if let Ok(text) = idmap::render_map(ms) {
                prop_assert!(text.len() <= idmap::MAX_MAP_BYTES);
                let text = String::from_utf8(text).unwrap();
                let words: Vec<&str> = text.split_whitespace().collect();
                prop_assert_eq!(&idmap::parse_mappings(&words).unwrap(), ms);
            }
        }
        let expected = model_mappings(&args);
        prop_assert_eq!(parsed.as_ref().ok(), expected.as_ref());
        if args.len().is_multiple_of(3) && args.len() / 3 > MAX_MAP_LINES {
            prop_assert_eq!(parsed, Err(MapError::TooManyLines(args.len() / 3)));
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// subid::coverage and subid::owner_ranges against the reference model
// ---------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn coverage_equals_the_reference_model(
        (lines, trailing_newline) in subid_file(0u64..200),
        wanted in requests(),
    ) {
        let file = render_file(&lines, trailing_newline);
        let ids = model_ids(&lines);
        let expected: Vec<bool> = wanted.iter().map(|&w| model_covers(&ids, w)).collect();

        let got = subid::coverage(&file[..], &alice(), &wanted);
        prop_assert_eq!(&got, &expected, "file {:?}", String::from_utf8_lossy(&file));
    }

    #[test]
    fn owner_ranges_are_alices_valid_entries_in_file_order(
        (lines, trailing_newline) in subid_file(0u64..200),
        window in 1usize..64,
    ) {
        let file = render_file(&lines, trailing_newline);
        let expected: Vec<IdInterval> = lines.iter().filter_map(Line::alice_range).collect();
        prop_assert_eq!(
            &subid::owner_ranges(&file[..], &alice()),
            &expected,
            "file {:?}",
            String::from_utf8_lossy(&file)
        );
        // Same answer with small scan windows, so lines straddle every kind of window boundary.
        prop_assert_eq!(subid::owner_ranges_windowed(&file, &alice(), window), expected);
    }
}

// ---------------------------------------------------------------------------------------------------
// The scan's vectorised filter, and the scan over files long enough for it
// ---------------------------------------------------------------------------------------------------

/// Every candidate position of `filter` in `region`, and where the undecided positions begin.
fn candidates(next: impl Fn(usize) -> Result<(usize, u64), usize>) -> (Vec<usize>, usize) {
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

/// A line of a long subid file: alice's (by name or uid), and owners that share her bytes: names
/// with the same letters, uids with the same digits or length.
fn long_file_line() -> impl Strategy<Value = Line> {
    let entry = (
        select(vec![
            "alice", "1001", "bob", "alice2", "ali", "xalice", "1000", "1011", "10010", "1001x",
            "2001", "user1001", "al:ice",
        ]),
        0u64..200,
        prop_oneof![1 => Just(0u64), 6 => 0u64..30],
        0u8..3,
    )
        .prop_map(|(owner, start, count, base)| Line::Entry {
            owner,
            start,
            count,
            base,
        });
    prop_oneof![
        8 => entry,
        1 => select(GARBAGE).prop_map(Line::Garbage),
    ]
}

proptest! {
    #![proptest_config(config(1000))]

    /// The vectorised filter (AVX2 where the processor has it, and SSE2) marks exactly the positions
    /// of its scalar definition, for any offsets and bytes, block by block up to the same end.
    #[test]
    fn the_vectorised_filter_equals_its_scalar_definition(
        region in vec(prop_oneof![4 => select(b"\n:0123456789alice-".to_vec()), 1 => any::<u8>()], 0..700),
        offsets in [0usize..200, 0usize..200, 0usize..200, 0usize..200],
        bytes in [
            select(b":01ae\n-".to_vec()),
            select(b":01ae\n-".to_vec()),
            select(b":01ae\n-".to_vec()),
            select(b":01ae\n-".to_vec()),
        ],
    ) {
        let filter = LineFilter::new(offsets, bytes);
        let expected = candidates(|pos| filter.next_candidates_scalar(&region, pos));
        prop_assert_eq!(&candidates(|pos| filter.next_candidates(&region, pos)), &expected);
        prop_assert_eq!(&candidates(|pos| filter.without_avx2().next_candidates(&region, pos)), &expected);
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Files of hundreds of lines, whose other owners share alice's letters or uid digits, so that
    /// the filter's blocks, the per-line comparison and the tail all decide: the ranges are alice's
    /// entries in file order, for any scan window.
    #[test]
    fn owner_ranges_of_long_files_are_alices_entries_in_file_order(
        lines in vec(long_file_line(), 100..600),
        trailing_newline in any::<bool>(),
        window in prop_oneof![1usize..200, 200usize..20_000],
    ) {
        let file = render_file(&lines, trailing_newline);
        let expected: Vec<IdInterval> = lines.iter().filter_map(Line::alice_range).collect();
        prop_assert_eq!(&subid::owner_ranges(&file, &alice()), &expected);
        prop_assert_eq!(subid::owner_ranges_windowed(&file, &alice(), window), expected);
    }
}

/// A login name: the usual ones, prefixes of each other, numeric ones, and short odd ones.
fn login_name(with_colon: bool) -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = if with_colon { b"ab1:0+" } else { b"ab10+" };
    prop_oneof![
        select(vec![
            "alice", "al", "alice2", "bob", "1001", "01001", "a", "b"
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        vec(select(alphabet.to_vec()), 1..6),
    ]
}

/// A subid file whose owner fields come from the same small alphabet as the names.
fn file_for_names() -> impl Strategy<Value = Vec<u8>> {
    let owner = prop_oneof![
        login_name(true),
        select(vec!["1", "10", "1001", "01001"]).prop_map(|s| s.as_bytes().to_vec()),
    ];
    let line = (owner, 0u64..100, 0u64..5).prop_map(|(mut o, start, count)| {
        o.extend(format!(":{start}:{count}").as_bytes());
        o
    });
    (vec(line, 0..12), any::<bool>()).prop_map(|(lines, trailing_newline)| {
        let mut file = lines.join(&b'\n');
        if trailing_newline {
            file.push(b'\n');
        }
        file
    })
}

/// shadow's rule: a line counts when its owner field equals the name or the decimal uid.
fn exact_owner_model(file: &[u8], name: &[u8], uid: u32) -> Vec<IdInterval> {
    let uid = uid.to_string();
    file.split(|&b| b == b'\n')
        .filter_map(subid::parse_line)
        .filter(|e| (e.owner == name || e.owner == uid.as_bytes()) && !e.range.is_empty())
        .map(|e| e.range)
        .collect()
}

proptest! {
    #![proptest_config(config(1500))]

    /// Any name without ':' (the passwd field separator): exactly the lines whose owner field is the
    /// name or the uid, whatever other names share a prefix with it.
    #[test]
    fn owner_ranges_match_the_owner_field_exactly(
        name in login_name(false),
        uid in select(vec![1u32, 10, 1001]),
        file in file_for_names(),
    ) {
        let owner = SubidOwner::new(&name, uid);
        prop_assert_eq!(
            subid::owner_ranges(&file[..], &owner),
            exact_owner_model(&file, &name, uid),
            "name {:?}, file {:?}",
            String::from_utf8_lossy(&name),
            String::from_utf8_lossy(&file)
        );
    }

    /// The same for names containing ':', aimed at "OWNER:START" names and "OWNER:START:COUNT" lines:
    /// the "\nNAME:" needle of a name "bob:1" finds the line "bob:1:3", whose owner is "bob" (the
    /// fuzzing finding in docs/fuzzing.md, fixed by comparing the parsed owner field).
    #[test]
    fn owner_ranges_match_the_owner_field_exactly_for_any_name(
        name in prop_oneof![
            login_name(true),
            (select(vec!["a", "bob", "1001"]), 0u64..4).prop_map(|(o, s)| format!("{o}:{s}").into_bytes()),
        ],
        uid in select(vec![1u32, 10, 1001]),
        file in prop_oneof![
            file_for_names(),
            vec((select(vec!["a", "bob", "1001"]), 0u64..4, 1u64..5), 1..6).prop_map(|lines| {
                lines
                    .iter()
                    .map(|(o, s, c)| format!("{o}:{s}:{c}\n"))
                    .collect::<String>()
                    .into_bytes()
            }),
        ],
    ) {
        let owner = SubidOwner::new(&name, uid);
        prop_assert_eq!(
            subid::owner_ranges(&file[..], &owner),
            exact_owner_model(&file, &name, uid),
            "name {:?}, file {:?}",
            String::from_utf8_lossy(&name),
            String::from_utf8_lossy(&file)
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// getsubids::list_ranges against shadow's listing rule, and against what the helpers grant
// ---------------------------------------------------------------------------------------------------

/// shadow's getsubids: every valid line, in file order, once for an owner field equal to the name and
/// once more for one equal to the decimal uid; "INDEX: NAME START COUNT".
fn listing_model(file: &[u8], name: &[u8], uid: Option<u32>) -> Vec<u8> {
    let uid = uid.map(|uid| uid.to_string());
    let mut out = Vec::new();
    let mut index = 0;
    for entry in file.split(|&b| b == b'\n').filter_map(subid::parse_line) {
        let matches = usize::from(entry.owner == name)
            + usize::from(uid.as_deref().map(str::as_bytes) == Some(entry.owner));
        for _ in 0..matches {
            out.extend(format!("{index}: ").as_bytes());
            out.extend(name);
            out.extend(format!(" {} {}\n", entry.range.start, entry.range.count()).as_bytes());
            index += 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn getsubids_lists_as_the_model(
        name in login_name(false),
        uid in prop::option::of(select(vec![1u32, 10, 1001])),
        file in prop_oneof![
            file_for_names(),
            subid_file(0u64..200).prop_map(|(lines, nl)| render_file(&lines, nl)),
        ],
    ) {
        let (got, expected) = (getsubids::list_ranges(&file, &name, uid), listing_model(&file, &name, uid));
        prop_assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "name {:?} uid {:?}, file {:?}",
            String::from_utf8_lossy(&name),
            uid,
            String::from_utf8_lossy(&file)
        );
    }

    /// One reader: the ranges getsubids lists, less the count-0 lines, are exactly the entries the
    /// helpers' coverage decision uses (for names that are not the uid in digits, which shadow lists
    /// twice).
    #[test]
    fn getsubids_lists_the_ranges_the_helpers_grant(
        (lines, trailing_newline) in subid_file(0u64..200),
    ) {
        let file = render_file(&lines, trailing_newline);
        let listing = String::from_utf8(getsubids::list_ranges(&file, b"alice", Some(1001))).unwrap();
        let listed: Vec<IdInterval> = listing
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                iv(fields[2].parse().unwrap(), fields[3].parse().unwrap())
            })
            .filter(|range| !range.is_empty())
            .collect();
        prop_assert_eq!(listed, subid::owner_ranges(&file, &alice()));
    }
}

// ---------------------------------------------------------------------------------------------------
// newidmap::authorize against the reference model
// ---------------------------------------------------------------------------------------------------

const OWN_ID: u32 = 1001;

fn caller() -> Caller {
    Caller {
        uid: OWN_ID,
        gid: OWN_ID,
        name: "alice".into(),
        passwd_gid: OWN_ID,
    }
}

#[derive(Clone, Debug)]
enum FileState {
    Present,
    Missing,
    Symlink,
}

fn request_mappings() -> impl Strategy<Value = Vec<IdMapping>> {
    vec(
        (
            prop_oneof![3 => 0u32..250, 2 => Just(OWN_ID), 1 => 995u32..1010],
            prop_oneof![2 => Just(1u32), 3 => 1u32..40],
        ),
        1..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (outside, count))| IdMapping {
                inside: i as u32 * 100,
                outside,
                count,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn authorize_equals_the_reference_model(
        (lines, trailing_newline) in subid_file(prop_oneof![3 => 0u64..200, 1 => 990u64..1010]),
        mappings in request_mappings(),
        kind in select(vec![IdKind::Uid, IdKind::Gid]),
        state in prop_oneof![8 => Just(FileState::Present), 1 => Just(FileState::Missing), 1 => Just(FileState::Symlink)],
    ) {
        let file = render_file(&lines, trailing_newline);
        let ids = match state {
            FileState::Present => model_ids(&lines),
            FileState::Missing | FileState::Symlink => HashSet::new(),
        };

        // The model, following the doc comment of `authorize` and its own-id-only rule for gid maps.
        let own = |m: &IdMapping| m.count == 1 && m.outside == OWN_ID;
        let covered = |m: &IdMapping| model_covers(&ids, m.outside_interval());
        let only_own = mappings.iter().all(own);
        let consulted = |m: &IdMapping| !own(m) || (only_own && kind == IdKind::Gid);
        let from_file: Vec<bool> = mappings.iter().map(|m| consulted(m) && covered(m)).collect();
        let first_refused = mappings
            .iter()
            .zip(&from_file)
            .position(|(m, &f)| !(f || own(m)));
        let expect_open = mappings.iter().any(consulted);

        let opened = Cell::new(0);
        let result = newidmap::authorize(kind, &caller(), &mappings, || {
            opened.set(opened.get() + 1);
            match state {
                FileState::Present => Ok(Some(&file[..])),
                FileState::Missing => Ok(None),
                FileState::Symlink => Err(SubidFileError::Symlink),
            }
        });

        prop_assert_eq!(opened.get(), usize::from(expect_open), "file opened when not needed (or not when needed)");
        match (first_refused, result) {
            (None, Ok(grant)) => {
                let expected = from_file.iter().any(|&f| f);
                prop_assert_eq!(grant.setgroups_allowed, expected);
                if kind == IdKind::Gid {
                    // The brief's wording: setgroups stays allowed iff some mapping is covered by the file.
                    prop_assert_eq!(grant.setgroups_allowed, mappings.iter().any(covered));
                }
            }
            (Some(i), Err(message)) => {
                let m = &mappings[i];
                let (inside, outside) = (m.inside_interval(), m.outside_interval());
                let word = if kind == IdKind::Uid { "uid" } else { "gid" };
                let head = format!(
                    "{word} range [{}-{}) -> [{}-{}) not allowed",
                    inside.start, inside.end, outside.start, outside.end
                );
                prop_assert!(message.starts_with(&head), "{} does not start with {}", message, head);
                if matches!(state, FileState::Symlink) && expect_open {
                    prop_assert!(message.contains("is a symbolic link"), "{}", message);
                }
            }
            (expected, got) => {
                prop_assert!(
                    false,
                    "model refuses {:?}, authorize gave {:?}; mappings {:?}, file {:?}",
                    expected,
                    got,
                    mappings,
                    String::from_utf8_lossy(&file)
                );
            }
        }
    }
}
