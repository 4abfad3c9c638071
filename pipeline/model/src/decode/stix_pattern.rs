//! The subset of STIX 2.1 patterning iocflow accepts, and nothing more.
//!
//! Accepted: comparisons with `=` or `IN (…)` on `ipv4-addr:value`, `ipv6-addr:value`,
//! `domain-name:value`, `url:value`, `email-addr:value`, `file:hashes.(MD5|SHA-1|SHA-256)` and
//! `autonomous-system:number`, joined by `OR` inside or between observations. `AND` is accepted
//! only across hashes of one file (each hash alone names the same file). Anything else — other
//! operators, other objects, qualifiers, `AND` across different objects — is refused: splitting
//! such a pattern would invent broad indicators that end up on national blocklists.

use crate::IndicatorType;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    Comma,
    Eq,
    Str(String),
    Num(String),
    Word(String),
}

fn tokens(p: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let quoted = |i: &mut usize| -> Result<String, String> {
        let mut s = String::new();
        *i += 1;
        loop {
            match chars.get(*i) {
                None => return Err("unterminated string".into()),
                Some('\\') => {
                    s.push(*chars.get(*i + 1).ok_or("unterminated escape")?);
                    *i += 2;
                }
                Some('\'') => {
                    *i += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(*c);
                    *i += 1;
                }
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '[' => (out.push(Token::Open), i += 1).1,
            ']' => (out.push(Token::Close), i += 1).1,
            '(' => (out.push(Token::LParen), i += 1).1,
            ')' => (out.push(Token::RParen), i += 1).1,
            ',' => (out.push(Token::Comma), i += 1).1,
            '=' => (out.push(Token::Eq), i += 1).1,
            '\'' => out.push(Token::Str(quoted(&mut i)?)),
            _ if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(Token::Num(chars[start..i].iter().collect()));
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                // A word or an object path; a path may hold quoted keys (`hashes.'SHA-256'`).
                let mut w = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if c.is_ascii_alphanumeric() || "_-:.".contains(c) {
                        w.push(c);
                        i += 1;
                    } else if c == '\'' && w.ends_with('.') {
                        w.push_str(&quoted(&mut i)?);
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(w));
            }
            _ => return Err(format!("unsupported operator or character {c:?}")),
        }
    }
    Ok(out)
}

/// One comparison: `object:path` against one or more values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparison {
    path: String,
    values: Vec<String>,
    is_in: bool,
}

struct Parser {
    t: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.t.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn expect(&mut self, t: Token) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(format!("expected {t:?}, found {other:?}")),
        }
    }

    /// pattern := observation (OR observation)*
    fn pattern(&mut self) -> Result<Vec<Vec<Comparison>>, String> {
        let mut alternatives = self.observation()?;
        while self.word("OR") {
            self.i += 1;
            alternatives.extend(self.observation()?);
        }
        match self.peek() {
            None => Ok(alternatives),
            Some(t) => {
                Err(format!("unsupported: {t:?} after an observation (AND, FOLLOWEDBY and qualifiers are refused)"))
            }
        }
    }

    fn observation(&mut self) -> Result<Vec<Vec<Comparison>>, String> {
        self.expect(Token::Open)?;
        let e = self.or_expr()?;
        self.expect(Token::Close)?;
        Ok(e)
    }

    /// Disjunctive normal form: alternatives of conjunctions.
    fn or_expr(&mut self) -> Result<Vec<Vec<Comparison>>, String> {
        let mut alternatives = self.and_expr()?;
        while self.word("OR") {
            self.i += 1;
            alternatives.extend(self.and_expr()?);
        }
        Ok(alternatives)
    }

    fn and_expr(&mut self) -> Result<Vec<Vec<Comparison>>, String> {
        let mut parts = vec![self.primary()?];
        while self.word("AND") {
            self.i += 1;
            parts.push(self.primary()?);
        }
        if parts.len() == 1 {
            return Ok(parts.pop().unwrap_or_default());
        }
        if parts.iter().any(|p| p.len() != 1) {
            return Err("unsupported: AND over OR".into());
        }
        Ok(vec![parts.into_iter().flat_map(|p| p.into_iter().flatten()).collect()])
    }

    fn primary(&mut self) -> Result<Vec<Vec<Comparison>>, String> {
        if self.peek() == Some(&Token::LParen) {
            self.i += 1;
            let e = self.or_expr()?;
            self.expect(Token::RParen)?;
            return Ok(e);
        }
        let path = match self.next() {
            Some(Token::Word(w)) if w.contains(':') => w,
            other => return Err(format!("expected an object path, found {other:?}")),
        };
        if self.word("IN") {
            self.i += 1;
            self.expect(Token::LParen)?;
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Token::Comma) {
                self.i += 1;
                values.push(self.literal()?);
            }
            self.expect(Token::RParen)?;
            return Ok(vec![vec![Comparison { path, values, is_in: true }]]);
        }
        match self.next() {
            Some(Token::Eq) => Ok(vec![vec![Comparison { path, values: vec![self.literal()?], is_in: false }]]),
            other => Err(format!("unsupported operator {other:?} (only = and IN)")),
        }
    }

    fn literal(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Str(s) | Token::Num(s)) => Ok(s),
            other => Err(format!("expected a literal, found {other:?}")),
        }
    }
}

/// The indicator type an object path compares, if iocflow carries it.
fn path_type(path: &str, value: &str) -> Option<IndicatorType> {
    let net = |single, cidr| if value.contains('/') { cidr } else { single };
    Some(match path {
        "ipv4-addr:value" => net(IndicatorType::Ipv4, IndicatorType::Cidr),
        "ipv6-addr:value" => net(IndicatorType::Ipv6, IndicatorType::Cidr),
        "domain-name:value" => IndicatorType::Domain,
        "url:value" => IndicatorType::Url,
        "email-addr:value" => IndicatorType::Email,
        "autonomous-system:number" => IndicatorType::Asn,
        _ => return hash_type(path),
    })
}

fn hash_type(path: &str) -> Option<IndicatorType> {
    match path.strip_prefix("file:hashes.")?.to_ascii_uppercase().as_str() {
        "MD5" => Some(IndicatorType::Md5),
        "SHA-1" | "SHA1" => Some(IndicatorType::Sha1),
        "SHA-256" | "SHA256" => Some(IndicatorType::Sha256),
        _ => None,
    }
}

/// The (type, value) pairs a pattern names, or why it is refused.
pub(crate) fn indicators(pattern: &str) -> Result<Vec<(IndicatorType, String)>, String> {
    let alternatives = Parser { t: tokens(pattern)?, i: 0 }.pattern()?;
    let mut out = Vec::new();
    for conjunction in alternatives {
        let one_file = conjunction.len() > 1 && conjunction.iter().all(|c| !c.is_in && hash_type(&c.path).is_some());
        if conjunction.len() > 1 && !one_file {
            return Err("unsupported: AND across different objects".into());
        }
        for c in conjunction {
            for v in c.values {
                let kind = path_type(&c.path, &v).ok_or_else(|| format!("unsupported object path {}", c.path))?;
                out.push((kind, v));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorType as T;

    fn ok(p: &str) -> Vec<(T, String)> {
        indicators(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn accepted_patterns() {
        assert_eq!(ok("[ipv4-addr:value = '198.51.100.1']"), [(T::Ipv4, "198.51.100.1".into())]);
        assert_eq!(ok("[ipv4-addr:value = '198.51.100.0/24']"), [(T::Cidr, "198.51.100.0/24".into())]);
        assert_eq!(
            ok(
                "[domain-name:value = 'a.example' OR domain-name:value = 'b.example'] OR [url:value = 'http://c.example/x']"
            ),
            [(T::Domain, "a.example".into()), (T::Domain, "b.example".into()), (T::Url, "http://c.example/x".into())]
        );
        assert_eq!(
            ok("[email-addr:value IN ('a@example.com', 'b@example.com')]"),
            [(T::Email, "a@example.com".into()), (T::Email, "b@example.com".into())]
        );
        assert_eq!(
            ok("[file:hashes.'SHA-256' = 'ab' AND file:hashes.MD5 = 'cd']"),
            [(T::Sha256, "ab".into()), (T::Md5, "cd".into())]
        );
        assert_eq!(ok("[autonomous-system:number = 64500]"), [(T::Asn, "64500".into())]);
        assert_eq!(ok("[url:value = 'http://x.example/it\\'s']"), [(T::Url, "http://x.example/it's".into())]);
        assert_eq!(ok("[(ipv6-addr:value = '2001:db8::1')]"), [(T::Ipv6, "2001:db8::1".into())]);
    }

    #[test]
    fn refused_patterns() {
        for p in [
            "[ipv4-addr:value = '198.51.100.1' AND domain-name:value = 'x.example']",
            "[ipv4-addr:value = '198.51.100.1'] AND [domain-name:value = 'x.example']",
            "[ipv4-addr:value = '198.51.100.1'] REPEATS 5 TIMES",
            "[ipv4-addr:value != '198.51.100.1']",
            "[url:value LIKE 'http://%']",
            "[url:value MATCHES '^http']",
            "[network-traffic:dst_port = 443]",
            "[file:name = 'invoice.exe']",
            "[file:hashes.'SSDEEP' = 'x']",
            "[file:hashes.MD5 = 'a' AND (file:hashes.SHA1 = 'b' OR file:hashes.SHA1 = 'c')]",
            "[ipv4-addr:value = '198.51.100.1'",
            "ipv4-addr:value = '198.51.100.1'",
            "[ipv4-addr:value = '198.51.100.1] ",
            "",
        ] {
            assert!(indicators(p).is_err(), "{p} was accepted");
        }
    }
}
