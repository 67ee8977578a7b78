//! `WWW-Authenticate` challenges (RFC 9110 section 11.6.1): what a registry's 401 asks for, e.g.
//! `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    /// Lowercase: `bearer`, `basic`.
    pub scheme: String,
    /// Parameter names lowercase, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The challenges of one header value (several may share it, separated by commas). Whatever does
/// not parse ends the list: a registry's garbage must not fail the pull here.
pub(super) fn parse(header: &str) -> Vec<Challenge> {
    let mut cursor = Cursor {
        text: header.as_bytes(),
        at: 0,
    };
    let mut challenges = Vec::new();
    loop {
        cursor.skip(|b| b == b' ' || b == b'\t' || b == b',');
        let Some(scheme) = cursor.token() else { break };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        // Parameters follow until a comma is followed by a token that has no `=`: a new scheme.
        loop {
            cursor.skip(|b| b == b' ' || b == b'\t');
            let checkpoint = cursor.at;
            let Some(name) = cursor.token() else { break };
            cursor.skip(|b| b == b' ' || b == b'\t');
            if !cursor.eat(b'=') {
                // The next challenge's scheme (or a token68, which registries do not use).
                cursor.at = checkpoint;
                break;
            }
            cursor.skip(|b| b == b' ' || b == b'\t');
            let value = match cursor.peek() {
                Some(b'"') => cursor.quoted(),
                _ => cursor.token().map(String::from),
            };
            let Some(value) = value else { break };
            challenge.params.push((name.to_ascii_lowercase(), value));
            cursor.skip(|b| b == b' ' || b == b'\t');
            if !cursor.eat(b',') {
                break;
            }
        }
        challenges.push(challenge);
        if cursor.at >= cursor.text.len() {
            break;
        }
        if cursor
            .peek()
            .is_some_and(|b| !is_token_byte(b) && b != b',' && b != b' ')
        {
            break;
        }
    }
    challenges
}

/// The challenges of all of a response's `WWW-Authenticate` values, Bearer preferred over Basic.
pub(super) fn preferred<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let all: Vec<Challenge> = values.flat_map(parse).collect();
    ["bearer", "basic"]
        .iter()
        .find_map(|scheme| all.iter().find(|c| c.scheme == *scheme).cloned())
}

struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&what) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        self.skip(is_token_byte);
        // Token bytes are ASCII, so the slice is UTF-8.
        let text: &'a [u8] = self.text;
        std::str::from_utf8(&text[start..self.at])
            .ok()
            .filter(|t| !t.is_empty())
    }

    /// A quoted-string, its backslash escapes undone; None if it does not end.
    fn quoted(&mut self) -> Option<String> {
        self.eat(b'"');
        let mut value = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return String::from_utf8(value).ok();
                }
                b'\\' => {
                    self.at += 1;
                    value.push(self.peek()?);
                    self.at += 1;
                }
                byte => {
                    value.push(byte);
                    self.at += 1;
                }
            }
        }
    }
}

/// RFC 9110's tchar.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn docker_hubs_bearer_challenge() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            params(&c[0]),
            [
                ("realm", "https://auth.docker.io/token"),
                ("service", "registry.docker.io"),
                ("scope", "repository:library/debian:pull")
            ]
        );
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("nope"), None);
    }

    #[test]
    fn spacing_case_tokens_and_escapes() {
        let c =
            parse(r#"  BEARER  Realm = "https://a/t?x=1" , Service=reg.io,error="invalid_token" "#);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            params(&c[0]),
            [
                ("realm", "https://a/t?x=1"),
                ("service", "reg.io"),
                ("error", "invalid_token")
            ]
        );
        let c = parse(r#"Basic realm="say \"hi\", \\ ok""#);
        assert_eq!(params(&c[0]), [("realm", r#"say "hi", \ ok"#)]);
    }

    #[test]
    fn several_challenges_in_one_value() {
        let c =
            parse(r#"Basic realm="Registry Realm", Bearer realm="https://t/token",service="s""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(params(&c[0]), [("realm", "Registry Realm")]);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("s"));
        let best = preferred([r#"Basic realm="x""#, r#"Bearer realm="y""#].into_iter()).unwrap();
        assert_eq!(best.param("realm"), Some("y"));
        let basic = preferred(std::iter::once("Basic")).unwrap();
        assert_eq!((basic.scheme.as_str(), basic.params.len()), ("basic", 0));
        assert_eq!(preferred(std::iter::once("Negotiate abc==")), None);
    }

    #[test]
    fn garbage_gives_what_parsed_and_never_panics() {
        assert!(parse("").is_empty());
        assert!(parse(",,, ").is_empty());
        let c = parse(r#"Bearer realm="unterminated"#);
        assert_eq!(c[0].scheme, "bearer");
        assert!(c[0].params.is_empty());
        for text in [
            "=",
            "\"",
            "Bearer =",
            "Bearer realm=",
            "Bearer realm=\"\\",
            "\u{e9}t\u{e9}",
            "a b c",
        ] {
            let _ = parse(text);
        }
    }
}
