//! Numbers as shadow reads them: strtoul with base 0, minus the parts of strtoul that only cause trouble.

/// Parses `s` as C's `strtoul(s, &end, 0)` would with `*end == '\0'` required: decimal, `0x`/`0X` hex,
/// or octal with a leading `0`. Unlike strtoul it refuses leading white space and `+`/`-` signs
/// (strtoul turns "-1" into ULONG_MAX). `None` on overflow or any stray byte; never panics.
pub fn parse_c_ulong(s: &[u8]) -> Option<u64> {
    let (digits, radix) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        [b'0', rest @ ..] if !rest.is_empty() => (rest, 8),
        _ => (s, 10),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        let digit = char::from(b).to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::parse_c_ulong;

    #[test]
    fn accepts_what_strtoul_base0_accepts() {
        assert_eq!(parse_c_ulong(b"0"), Some(0));
        assert_eq!(parse_c_ulong(b"100000"), Some(100000));
        assert_eq!(parse_c_ulong(b"0x186a0"), Some(100000));
        assert_eq!(parse_c_ulong(b"0X186A0"), Some(100000));
        assert_eq!(parse_c_ulong(b"0303240"), Some(100000));
        assert_eq!(parse_c_ulong(b"18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn refuses_everything_else() {
        for s in [
            &b""[..],
            b" 1",
            b"1 ",
            b"+1",
            b"-1",
            b"0x",
            b"08",
            b"1e5",
            b"12x",
            b"abc",
            b"18446744073709551616",
            b"0x10000000000000000",
            "\u{661}".as_bytes(),
        ] {
            assert_eq!(parse_c_ulong(s), None, "{:?}", String::from_utf8_lossy(s));
        }
    }
}
