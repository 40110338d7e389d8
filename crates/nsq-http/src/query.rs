//! Query strings read the way Go's `url.ParseQuery` reads them, so both daemons accept and refuse exactly the
//! queries Go's do (a `;` or a bad `%` escape makes the whole query invalid: nsq answers `400 INVALID_REQUEST`).

use crate::router::percent_decode;

/// The parsed query string. Values keep their order; lookups return the first, like Go's `Values.Get`.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses like Go's `url.ParseQuery`: `&`-separated, `+` and `%XX` decoded. A `;` or a bad escape makes the
    /// whole query invalid (Go returns an error, which nsq turns into `400 INVALID_REQUEST`).
    pub fn parse(raw: Option<&str>) -> Result<Self, InvalidQuery> {
        let mut pairs = Vec::new();
        let mut invalid = false;
        for part in raw.unwrap_or("").split('&') {
            if part.is_empty() {
                continue;
            }
            if part.contains(';') {
                invalid = true;
                continue;
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match (
                percent_decode(k.as_bytes(), true),
                percent_decode(v.as_bytes(), true),
            ) {
                (Some(k), Some(v)) => pairs.push((
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )),
                _ => invalid = true,
            }
        }
        if invalid {
            return Err(InvalidQuery);
        }
        Ok(Self { pairs })
    }

    /// The first value of `key`, `None` when the key is absent (present but empty is `Some("")`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The query string could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidQuery;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parses_like_go() {
        let q = Query::parse(Some("topic=a%23b&channel=&x&topic=second&s=a+b")).unwrap();
        assert_eq!(q.get("topic"), Some("a#b"));
        assert_eq!(q.get("channel"), Some(""));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.get("s"), Some("a b"));
        assert_eq!(q.get("missing"), None);
        assert!(Query::parse(None).unwrap().get("topic").is_none());
        assert_eq!(Query::parse(Some("topic=a;b")).unwrap_err(), InvalidQuery);
        assert_eq!(Query::parse(Some("topic=%zz")).unwrap_err(), InvalidQuery);
    }
}
