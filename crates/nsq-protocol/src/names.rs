//! Topic and channel name validation.
//!
//! nsqd and nsqlookupd accept the same names for topics and channels: `^[.a-zA-Z0-9_-]+(#ephemeral)?$` with a
//! total length of 1 to 64 bytes, the `#ephemeral` suffix included. The rule is small enough to check by hand,
//! which keeps this crate free of a regex engine.

/// The longest valid topic or channel name, in bytes, including any `#ephemeral` suffix.
pub const MAX_NAME_LENGTH: usize = 64;

/// The suffix that marks a topic or channel as ephemeral (kept in memory only, deleted when unused).
pub const EPHEMERAL_SUFFIX: &str = "#ephemeral";

/// Whether `name` is a valid topic name.
pub fn is_valid_topic_name(name: &str) -> bool {
    is_valid_name(name)
}

/// Whether `name` is a valid channel name.
pub fn is_valid_channel_name(name: &str) -> bool {
    is_valid_name(name)
}

/// Whether `name` ends with `#ephemeral`.
pub fn is_ephemeral(name: &str) -> bool {
    name.ends_with(EPHEMERAL_SUFFIX)
}

fn is_valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LENGTH {
        return false;
    }
    let base = name.strip_suffix(EPHEMERAL_SUFFIX).unwrap_or(name);
    !base.is_empty()
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_characters() {
        for name in [
            "a",
            "golden_sub",
            "A.b-c_D9",
            "...",
            "-",
            "ch#ephemeral",
            "x.y#ephemeral",
        ] {
            assert!(is_valid_topic_name(name), "{name}");
            assert!(is_valid_channel_name(name), "{name}");
        }
    }

    #[test]
    fn rejects_bad_characters_and_empty() {
        for name in [
            "",
            "bad!topic",
            "bad!chan",
            "sp ace",
            "tab\t",
            "new\nline",
            "trailing\n",
            "colon:x",
            "slash/x",
            "ümlaut",
            "#ephemeral",
            "a#ephemeral#ephemeral",
            "a#Ephemeral",
            "a#ephemera",
            "#",
            "a#ephemeralx",
        ] {
            assert!(!is_valid_topic_name(name), "{name:?}");
            assert!(!is_valid_channel_name(name), "{name:?}");
        }
    }

    #[test]
    fn length_limit_includes_the_suffix() {
        let max = "t".repeat(64);
        assert!(is_valid_topic_name(&max));
        // Golden pub_topic_too_long.json uses a 65-character name.
        assert!(!is_valid_topic_name(&"t".repeat(65)));
        let eph_ok = format!("{}#ephemeral", "c".repeat(54));
        assert_eq!(eph_ok.len(), 64);
        assert!(is_valid_channel_name(&eph_ok));
        let eph_long = format!("{}#ephemeral", "c".repeat(55));
        assert!(!is_valid_channel_name(&eph_long));
    }

    #[test]
    fn ephemeral_is_a_suffix_check() {
        assert!(is_ephemeral("ch#ephemeral"));
        assert!(is_ephemeral("#ephemeral"));
        assert!(!is_ephemeral("ch"));
        assert!(!is_ephemeral("ch#ephemeral.x"));
    }
}
