//! How long a projected service account token lives: checked when a setting
//! or an annotation gives it, and spread for EKS Pod Identity's default.

/// Token lifetime in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiration(u32);

impl TokenExpiration {
    /// The kubelet refuses projected tokens shorter than 10 minutes.
    pub const MIN: u32 = 600;
    /// A day: the official webhook's default, and the longest we hand out.
    pub const MAX: u32 = 86_400;
    /// The default lifetime, when no annotation or setting chose another.
    pub const DEFAULT: Self = Self(Self::MAX);
    /// The shortest lifetime the default is spread down to for EKS Pod
    /// Identity (the official webhook's `DefaultMinTokenExpiration`, 22 hours).
    pub const SPREAD_FLOOR: u32 = 79_200;

    pub fn seconds(self) -> u32 {
        self.0
    }

    /// For settings, which are written once by a platform team: out of range is an error.
    pub fn within_bounds(seconds: i64) -> Result<Self, String> {
        if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&seconds) {
            Ok(Self(seconds as u32))
        } else {
            Err(format!(
                "must be between {} and {} seconds",
                Self::MIN,
                Self::MAX
            ))
        }
    }

    /// The default lifetime spread uniformly over [79200, 86400] seconds, as
    /// the official webhook's `addJitterToDefaultToken` does for EKS Pod
    /// Identity tokens (its PR #260), so that pods created together do not all
    /// refresh their tokens together. It draws from a random source; here the
    /// draw is a hash of `identity`, so the same request always gets the same
    /// lifetime (replays, tests, a re-run on the policy's own output).
    pub fn spread_default(identity: &[&str]) -> Self {
        // FNV-1a, 64 bits: the same on every platform and build (std's hasher
        // is not), and a few lines rather than a dependency. Each part ends
        // with a 0 byte, so ("ab", "c") and ("a", "bc") differ.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in identity {
            for &byte in part.as_bytes().iter().chain(&[0]) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        let span = u64::from(Self::MAX - Self::SPREAD_FLOOR) + 1;
        Self(Self::SPREAD_FLOOR + (hash % span) as u32)
    }

    /// For annotations: what the official webhook reads with Go's
    /// `strconv.ParseInt(value, 10, 64)` (an optional `+` or `-`, decimal
    /// digits, no spaces, within 64 bits), clamped into range; it raises short
    /// (and negative) values to 600 too. The flag says whether it was clamped,
    /// so the pod's author can be warned.
    pub fn from_annotation(value: &str) -> Result<(Self, bool), String> {
        let (negative, digits) = match value.as_bytes().first() {
            Some(b'-') => (true, &value[1..]),
            Some(b'+') => (false, &value[1..]),
            _ => (false, value),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("is not a whole number of seconds".into());
        }
        // A sign and digits: the only parse failure left is overflow, and Go's
        // parser refuses what does not fit a signed 64-bit number.
        let limit = i64::MAX as u64 + u64::from(negative);
        let magnitude = digits
            .parse::<u64>()
            .ok()
            .filter(|magnitude| *magnitude <= limit)
            .ok_or_else(|| "is a whole number beyond 64 bits".to_owned())?;
        // Any negative number is below the minimum.
        let asked = if negative { 0 } else { magnitude };
        let clamped = asked.clamp(u64::from(Self::MIN), u64::from(Self::MAX));
        Ok((Self(clamped as u32), clamped != asked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("3600", 3600, false)]
    #[case("+7200", 7200, false)]
    #[case("007200", 7200, false)]
    #[case("600", 600, false)]
    #[case("86400", 86400, false)]
    #[case("60", 600, true)]
    #[case("0", 600, true)]
    #[case("-0", 600, true)]
    #[case("-600", 600, true)]
    #[case("-9223372036854775808", 600, true)]
    #[case("100000", 86400, true)]
    #[case("9223372036854775807", 86400, true)]
    fn clamps_annotation_expiration_into_range(
        #[case] value: &str,
        #[case] seconds: u32,
        #[case] clamped: bool,
    ) {
        let (expiration, was_clamped) = TokenExpiration::from_annotation(value).unwrap();
        assert_eq!(expiration.seconds(), seconds);
        assert_eq!(was_clamped, clamped);
    }

    // Go's strconv.ParseInt(value, 10, 64) refuses each of these, so the
    // official webhook ignores them; the policy refuses them by name.
    #[rstest]
    #[case("1h")]
    #[case("")]
    #[case("3600.5")]
    #[case(" 7200 ")]
    #[case("7200 ")]
    #[case("+")]
    #[case("+-600")]
    #[case("1_000")]
    #[case("0x600")]
    #[case("\u{0663}600")]
    #[case("9223372036854775808")]
    #[case("99999999999999999999")]
    #[case("-9223372036854775809")]
    fn rejects_what_go_parse_int_refuses(#[case] value: &str) {
        assert!(TokenExpiration::from_annotation(value).is_err());
    }

    #[test]
    fn the_spread_default_covers_79200_to_86400_evenly() {
        let seconds: Vec<u32> = (0..20_000)
            .map(|i| {
                let name = format!("web-{i}");
                TokenExpiration::spread_default(&["uid", "team-a", &name, "app"]).seconds()
            })
            .collect();
        assert!(seconds.iter().all(|s| (79_200..=86_400).contains(s)));
        let (min, max) = (seconds.iter().min().unwrap(), seconds.iter().max().unwrap());
        assert!(*min < 79_200 + 60 && *max > 86_400 - 60, "{min}..{max}");
        // Uniform: each of the span's eight slices gets its eighth, give or take.
        let mut slices = [0u32; 8];
        for s in &seconds {
            slices[((s - 79_200) * 8 / 7_201) as usize] += 1;
        }
        assert!(
            slices.iter().all(|n| (2_250..=2_750).contains(n)),
            "{slices:?}"
        );
    }

    #[test]
    fn the_spread_default_is_the_same_for_the_same_identity() {
        let identity = ["705ab4f5", "team-a", "web", "app"];
        let once = TokenExpiration::spread_default(&identity);
        assert_eq!(TokenExpiration::spread_default(&identity), once);
        // Pinned: a change of the hash would change every pod's lifetime.
        assert_eq!(once.seconds(), 84_414);
        assert_ne!(
            TokenExpiration::spread_default(&["705ab4f5", "team-a", "we", "bapp"]),
            once
        );
    }
}
