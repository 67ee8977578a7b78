//! The helpers' command line: NUL-separated arguments, the first is the target and the rest triplets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unshare_run_helpers::idmap::{self, MAX_MAP_BYTES, MAX_MAP_LINES};
use unshare_run_helpers::target::{self, TargetSpec};

fuzz_target!(|data: &[u8]| {
    let args: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let (first, rest) = args.split_first().expect("split yields at least one piece");

    match target::parse_target(first) {
        Ok(TargetSpec::Pid(p)) => assert!(p >= 1, "{first:?}"),
        Ok(TargetSpec::Fd(fd)) => assert!(fd >= 0, "{first:?}"),
        Err(_) => {}
    }

    let Ok(mappings) = idmap::parse_mappings(rest) else {
        return;
    };
    assert!(!mappings.is_empty() && mappings.len() <= MAX_MAP_LINES);
    assert_eq!(mappings.len() * 3, rest.len());
    let limit = u64::from(u32::MAX);
    for (i, a) in mappings.iter().enumerate() {
        assert!(a.count >= 1);
        assert!(a.inside_interval().end <= limit && a.outside_interval().end <= limit);
        for b in &mappings[i + 1..] {
            let (ai, bi) = (a.inside_interval(), b.inside_interval());
            let (ao, bo) = (a.outside_interval(), b.outside_interval());
            assert!(ai.end <= bi.start || bi.end <= ai.start, "{a:?} {b:?}");
            assert!(ao.end <= bo.start || bo.end <= ao.start, "{a:?} {b:?}");
        }
    }

    if let Ok(text) = idmap::render_map(&mappings) {
        assert!(text.len() <= MAX_MAP_BYTES);
        let text = std::str::from_utf8(&text).expect("the map is ASCII");
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(idmap::parse_mappings(&words).as_ref(), Ok(&mappings));
    }
});
