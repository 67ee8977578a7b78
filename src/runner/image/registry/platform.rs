//! Platforms as OCI image indexes name them (`os/architecture[/variant]`, Go's names), the host's,
//! and which index entries a wanted platform accepts, best first.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine: linux and Go's name for the architecture the runner was built for (a 32-bit arm
    /// build reads its variant from /proc/cpuinfo).
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8".to_string())),
            "arm" => ("arm", Some(arm_variant_of_cpu())),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            "loongarch64" => ("loong64", None),
            "mips64" => ("mips64le", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant,
        }
    }

    /// `OS/ARCH[/VARIANT]` (podman's --platform), with the usual other spellings of an
    /// architecture normalised: x86_64 is amd64, aarch64 arm64, armhf arm/v7 ...
    pub fn parse(text: &str) -> Result<Platform, String> {
        let fields: Vec<&str> = text.split('/').collect();
        let bad = |why: &str| {
            format!("invalid platform `{text}`: {why} (OS/ARCH[/VARIANT], e.g. linux/arm64)")
        };
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !(2..=3).contains(&fields.len()) || !fields.iter().all(|f| word(f)) {
            return Err(bad("expected two or three fields"));
        }
        let os = fields[0].to_ascii_lowercase();
        let (architecture, mut variant) = normalise(
            &fields[1].to_ascii_lowercase(),
            fields.get(2).map(|v| v.to_ascii_lowercase()),
        );
        // "arm64/8" and "arm/7" are common spellings of v8 and v7.
        if let Some(v) = &variant
            && v.chars().all(|c| c.is_ascii_digit())
        {
            variant = Some(format!("v{v}"));
        }
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// The (architecture, variant) pairs an index entry may have for this platform, best first:
    /// the exact variant, then older ones the CPU also runs (arm v8 -> v7 -> v6 -> v5, amd64 v3 ->
    /// v2 -> v1), then an entry that names no variant. An entry with another os never fits.
    pub(super) fn accepted_variants(&self) -> Vec<Option<String>> {
        let numbered = |prefix: &str, from: u32, down_to: u32| -> Vec<Option<String>> {
            (down_to..=from)
                .rev()
                .map(|n| Some(format!("{prefix}{n}")))
                .collect()
        };
        let level = |v: &Option<String>| {
            v.as_deref()
                .and_then(|v| v.strip_prefix('v'))
                .and_then(|n| n.parse::<u32>().ok())
        };
        let mut accepted = match (self.architecture.as_str(), level(&self.variant)) {
            ("arm", Some(n)) if (5..=8).contains(&n) => numbered("v", n, 5),
            ("arm", None) => numbered("v", 7, 5),
            ("arm64", Some(8) | None) => vec![Some("v8".to_string())],
            ("amd64", Some(n)) if (1..=4).contains(&n) => numbered("v", n, 1),
            ("amd64", None) => vec![Some("v1".to_string())],
            _ => self.variant.iter().cloned().map(Some).collect(),
        };
        accepted.push(None);
        accepted
    }

    /// Whether an entry's platform is this one's os and architecture with an accepted variant, and
    /// how good a fit it is (0 best). Without a variant of our own, an architecture whose variants
    /// are not CPU levels accepts any entry variant, last.
    pub(crate) fn rank(&self, entry: &Platform) -> Option<usize> {
        if entry.os != self.os || entry.architecture != self.architecture {
            return None;
        }
        let accepted = self.accepted_variants();
        match accepted.iter().position(|v| *v == entry.variant) {
            Some(rank) => Some(rank),
            None if self.variant.is_none()
                && !["arm", "arm64", "amd64"].contains(&&*self.architecture) =>
            {
                Some(accepted.len())
            }
            None => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Other names of the architectures (uname's, Debian's) as the Go names images use.
fn normalise(architecture: &str, variant: Option<String>) -> (String, Option<String>) {
    let (arch, variant) = match architecture {
        "x86_64" | "x86-64" => ("amd64", variant),
        "aarch64" => ("arm64", variant),
        "armhf" => ("arm", variant.or(Some("v7".into()))),
        "armel" => ("arm", variant.or(Some("v6".into()))),
        "i386" | "i686" => ("386", variant),
        other => (other, variant),
    };
    (arch.to_string(), variant)
}

/// The ARM architecture level /proc/cpuinfo reports ("CPU architecture: 7"); v7 when unknown.
fn arm_variant_of_cpu() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    arm_variant_in(&cpuinfo)
}

fn arm_variant_in(cpuinfo: &str) -> String {
    let level = cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "CPU architecture")
        .and_then(|(_, value)| {
            let digits: String = value
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits.parse::<u32>().ok()
        });
    match level {
        Some(n @ 5..=8) => format!("v{n}"),
        // AArch64 kernels running 32-bit code report 8 or more; "AArch64" alone too.
        Some(n) if n > 8 => "v8".into(),
        _ => "v7".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Platform {
        Platform::parse(text).unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/arm/7").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(p("Linux/AMD64").to_string(), "linux/amd64");
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v1/x",
            "linux/am d64",
        ] {
            let err = Platform::parse(bad).expect_err(bad);
            assert!(err.contains("OS/ARCH[/VARIANT]"), "{err}");
        }
    }

    #[test]
    fn the_host_is_linux_with_a_go_architecture_name() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(host.to_string(), "linux/amd64");
        #[cfg(target_arch = "aarch64")]
        assert_eq!(host.to_string(), "linux/arm64/v8");
    }

    #[test]
    fn arm_levels_come_from_cpuinfo() {
        assert_eq!(
            arm_variant_in("processor\t: 0\nCPU architecture: 7\n"),
            "v7"
        );
        assert_eq!(arm_variant_in("CPU architecture: 6TEJ\n"), "v6");
        assert_eq!(arm_variant_in("CPU architecture: 8\n"), "v8");
        assert_eq!(arm_variant_in("nothing here"), "v7");
    }

    #[test]
    fn variants_fall_back_to_older_ones_then_to_none() {
        let variants = |t: &str| {
            p(t).accepted_variants()
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "-".into()))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(variants("linux/arm/v8"), "v8,v7,v6,v5,-");
        assert_eq!(variants("linux/arm/v7"), "v7,v6,v5,-");
        assert_eq!(variants("linux/arm/v6"), "v6,v5,-");
        assert_eq!(variants("linux/arm64/v8"), "v8,-");
        assert_eq!(variants("linux/arm64"), "v8,-");
        assert_eq!(variants("linux/amd64"), "v1,-");
        assert_eq!(variants("linux/amd64/v3"), "v3,v2,v1,-");
        assert_eq!(variants("linux/s390x"), "-");
    }

    #[test]
    fn ranks_prefer_the_exact_variant() {
        let arm7 = p("linux/arm/v7");
        assert_eq!(arm7.rank(&p("linux/arm/v7")), Some(0));
        assert_eq!(arm7.rank(&p("linux/arm/v6")), Some(1));
        assert_eq!(
            arm7.rank(&p("linux/arm/v8")),
            None,
            "a v7 CPU cannot run v8 code"
        );
        assert_eq!(arm7.rank(&p("linux/arm64/v8")), None);
        assert_eq!(arm7.rank(&p("windows/arm/v7")), None);
        let amd64 = p("linux/amd64");
        assert_eq!(amd64.rank(&p("linux/amd64")), Some(1));
        assert_eq!(
            amd64.rank(&p("linux/amd64/v3")),
            None,
            "the CPU may lack v3's instructions"
        );
        assert_eq!(
            p("linux/ppc64le").rank(&p("linux/ppc64le/power9")),
            Some(1),
            "last"
        );
        assert_eq!(p("linux/arm64").rank(&p("linux/arm64/v8")), Some(0));
    }
}
