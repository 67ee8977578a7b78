//! The map a helper is asked to write: `<inside> <outside> <count>` triplets from the command line.

use std::fmt;

use crate::numbers::parse_c_ulong;
use crate::subid::IdInterval;

/// The kernel accepts at most this many lines in one uid_map or gid_map write.
pub const MAX_MAP_LINES: usize = 340;
/// The kernel refuses a map write of a page or more.
pub const MAX_MAP_BYTES: usize = 4095;

/// One line of a map: ids `inside..inside+count` in the namespace are `outside..outside+count` outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMapping {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl IdMapping {
    /// inside, outside, count: a line of a map file, or a triplet of the helpers' arguments.
    pub fn fields(&self) -> [u32; 3] {
        [self.inside, self.outside, self.count]
    }

    pub fn outside_interval(&self) -> IdInterval {
        IdInterval {
            start: u64::from(self.outside),
            end: u64::from(self.outside) + u64::from(self.count),
        }
    }

    pub fn inside_interval(&self) -> IdInterval {
        IdInterval {
            start: u64::from(self.inside),
            end: u64::from(self.inside) + u64::from(self.count),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum MapError {
    /// Not a positive multiple of three arguments.
    WrongArgumentCount(usize),
    /// A field that is not a number (or does not fit in 32 bits).
    NotANumber(String),
    /// `count` 0.
    EmptyRange(usize),
    /// `start + count` passes the last valid id (2^32 - 2).
    Overflow(usize),
    TooManyLines(usize),
    Overlap {
        first: usize,
        second: usize,
    },
    TooLong(usize),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::WrongArgumentCount(n) => write!(
                f,
                "{n} mapping arguments given, but they must come in groups of three"
            ),
            MapError::NotANumber(s) => write!(f, "invalid id or count {s:?}"),
            MapError::EmptyRange(i) => write!(f, "range {} has a count of 0", i + 1),
            MapError::Overflow(i) => {
                write!(
                    f,
                    "range {} overflows the id space (subuid overflow detected)",
                    i + 1
                )
            }
            MapError::TooManyLines(n) => write!(
                f,
                "{n} ranges given, the kernel accepts at most {MAX_MAP_LINES}"
            ),
            MapError::Overlap { first, second } => {
                write!(f, "ranges {} and {} overlap", first + 1, second + 1)
            }
            MapError::TooLong(n) => write!(
                f,
                "the map is {n} bytes long, the kernel accepts at most {MAX_MAP_BYTES}"
            ),
        }
    }
}

/// Parses the triplets after the target argument. Every check the kernel would make is made here
/// first, so that a refused map is refused before anything is written.
pub fn parse_mappings<S: AsRef<[u8]>>(args: &[S]) -> Result<Vec<IdMapping>, MapError> {
    if args.is_empty() || !args.len().is_multiple_of(3) {
        return Err(MapError::WrongArgumentCount(args.len()));
    }
    let lines = args.len() / 3;
    if lines > MAX_MAP_LINES {
        return Err(MapError::TooManyLines(lines));
    }
    let mut mappings = Vec::with_capacity(lines);
    for (index, triplet) in args.chunks_exact(3).enumerate() {
        let number = |s: &S| parse_id(s.as_ref());
        let mapping = IdMapping {
            inside: number(&triplet[0])?,
            outside: number(&triplet[1])?,
            count: number(&triplet[2])?,
        };
        check_range_is_valid(index, &mapping)?;
        mappings.push(mapping);
    }
    check_no_overlap(&mappings)?;
    Ok(mappings)
}

fn parse_id(s: &[u8]) -> Result<u32, MapError> {
    parse_c_ulong(s)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| MapError::NotANumber(String::from_utf8_lossy(s).into_owned()))
}

/// count >= 1, and both ends stay below 2^32 - 1 (the kernel's invalid id), without wrapping.
fn check_range_is_valid(index: usize, m: &IdMapping) -> Result<(), MapError> {
    if m.count == 0 {
        return Err(MapError::EmptyRange(index));
    }
    let limit = u64::from(u32::MAX);
    if m.inside_interval().end > limit || m.outside_interval().end > limit {
        return Err(MapError::Overflow(index));
    }
    Ok(())
}

/// No two lines may share an inside id or an outside id (the kernel refuses such maps too).
fn check_no_overlap(mappings: &[IdMapping]) -> Result<(), MapError> {
    let intersects = |a: IdInterval, b: IdInterval| a.start < b.end && b.start < a.end;
    for (i, a) in mappings.iter().enumerate() {
        for (j, b) in mappings.iter().enumerate().skip(i + 1) {
            if intersects(a.inside_interval(), b.inside_interval())
                || intersects(a.outside_interval(), b.outside_interval())
            {
                return Err(MapError::Overlap {
                    first: i,
                    second: j,
                });
            }
        }
    }
    Ok(())
}

/// The text written to uid_map/gid_map, in one piece.
pub fn render_map(mappings: &[IdMapping]) -> Result<Vec<u8>, MapError> {
    let text = map_text(mappings);
    if text.len() > MAX_MAP_BYTES {
        return Err(MapError::TooLong(text.len()));
    }
    Ok(text.into_bytes())
}

/// The text of a map file: "inside outside count\n" per line (as written; the kernel pads what it shows).
pub fn map_text(mappings: &[IdMapping]) -> String {
    let mut text = String::with_capacity(mappings.len() * 24);
    for m in mappings {
        use fmt::Write;
        let _ = writeln!(text, "{} {} {}", m.inside, m.outside, m.count);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Vec<IdMapping>, MapError> {
        let v: Vec<&str> = args.split_whitespace().collect();
        parse_mappings(&v)
    }

    #[test]
    fn parses_triplets() {
        assert_eq!(
            parse("0 1000 1 1 100000 65536").unwrap(),
            [
                IdMapping {
                    inside: 0,
                    outside: 1000,
                    count: 1
                },
                IdMapping {
                    inside: 1,
                    outside: 100000,
                    count: 65536
                },
            ]
        );
        assert_eq!(parse("0 0x10 010").unwrap()[0].outside, 16);
    }

    #[test]
    fn argument_count_must_be_multiple_of_three() {
        assert_eq!(parse(""), Err(MapError::WrongArgumentCount(0)));
        assert_eq!(parse("0 1000"), Err(MapError::WrongArgumentCount(2)));
        assert_eq!(parse("0 1000 1 1"), Err(MapError::WrongArgumentCount(4)));
    }

    #[test]
    fn numbers_must_be_valid_u32() {
        assert!(matches!(parse("0 abc 1"), Err(MapError::NotANumber(_))));
        assert!(matches!(parse("0 -1 1"), Err(MapError::NotANumber(_))));
        assert!(matches!(
            parse("0 4294967296 1"),
            Err(MapError::NotANumber(_))
        ));
        assert!(matches!(parse("0 12x 1"), Err(MapError::NotANumber(_))));
    }

    #[test]
    fn zero_count_is_refused() {
        assert_eq!(parse("0 1000 0"), Err(MapError::EmptyRange(0)));
    }

    #[test]
    fn wrapping_ranges_are_refused() {
        // CVE-2016-6252: lower + count wrapping past 2^32.
        assert_eq!(parse("0 4294967295 1"), Err(MapError::Overflow(0)));
        assert_eq!(parse("0 4294967294 2"), Err(MapError::Overflow(0)));
        assert_eq!(parse("4294967294 0 2"), Err(MapError::Overflow(0)));
        assert!(parse("0 4294967294 1").is_ok());
        assert!(parse("1 0 4294967294").is_ok());
    }

    #[test]
    fn overlaps_are_refused() {
        assert_eq!(
            parse("0 1000 10 5 2000 1"),
            Err(MapError::Overlap {
                first: 0,
                second: 1
            })
        );
        assert_eq!(
            parse("0 1000 10 10 1009 1"),
            Err(MapError::Overlap {
                first: 0,
                second: 1
            })
        );
        assert!(parse("0 1000 10 10 1010 1").is_ok());
    }

    #[test]
    fn line_and_byte_limits() {
        let many: Vec<String> = (0..341u32)
            .flat_map(|i| [i.to_string(), (100000 + i).to_string(), "1".into()])
            .collect();
        assert_eq!(parse_mappings(&many), Err(MapError::TooManyLines(341)));
        let long: Vec<IdMapping> = (0..340u32)
            .map(|i| IdMapping {
                inside: 1_000_000_000 + i,
                outside: 2_000_000_000 + i,
                count: 1,
            })
            .collect();
        assert!(matches!(render_map(&long), Err(MapError::TooLong(_))));
    }

    #[test]
    fn renders_one_line_per_mapping() {
        let m = parse("0 1000 1 1 100000 65536").unwrap();
        assert_eq!(render_map(&m).unwrap(), b"0 1000 1\n1 100000 65536\n");
    }
}
