//! Go's `encoding/json` syntax errors, word for word: the apiserver quotes them when a
//! `.dockerconfigjson` is not JSON (`invalid character 'o' in literal null (expecting 'u')`).

/// Checks `text` is one JSON value; the error is Go's message.
pub(crate) fn check(text: &[u8]) -> Result<(), String> {
    let mut p = Parser { s: text, i: 0 };
    p.ws();
    p.value("looking for beginning of value")?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.bad("after top-level value"));
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

const END: &str = "unexpected end of JSON input";

fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '"' => "'\"'".into(),
        '\n' => "'\\n'".into(),
        '\r' => "'\\r'".into(),
        '\t' => "'\\t'".into(),
        c if (c as u32) < 0x20 => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn current(&self) -> char {
        std::str::from_utf8(&self.s[self.i..])
            .ok()
            .and_then(|t| t.chars().next())
            .or_else(|| {
                // Not valid UTF-8 from here: Go reports the replacement character.
                let end = (self.i + 4).min(self.s.len());
                String::from_utf8_lossy(&self.s[self.i..end]).chars().next()
            })
            .unwrap_or('\u{fffd}')
    }

    fn bad(&self, context: &str) -> String {
        format!("invalid character {} {context}", quote_char(self.current()))
    }

    fn peek(&self) -> Result<u8, String> {
        self.s.get(self.i).copied().ok_or_else(|| END.to_string())
    }

    fn value(&mut self, context: &str) -> Result<(), String> {
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string(),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.bad(context)),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), String> {
        for expected in word.bytes() {
            let got = self.peek()?;
            if got != expected {
                return Err(format!(
                    "invalid character {} in literal {word} (expecting {})",
                    quote_char(self.current()),
                    quote_char(expected as char)
                ));
            }
            self.i += 1;
        }
        Ok(())
    }

    fn object(&mut self) -> Result<(), String> {
        self.i += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek()? != b'"' {
                return Err(self.bad("looking for beginning of object key string"));
            }
            self.string()?;
            self.ws();
            if self.peek()? != b':' {
                return Err(self.bad("after object key"));
            }
            self.i += 1;
            self.ws();
            self.value("looking for beginning of value")?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.bad("after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> Result<(), String> {
        self.i += 1;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value("looking for beginning of value")?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.bad("after array element")),
            }
        }
    }

    fn string(&mut self) -> Result<(), String> {
        self.i += 1;
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek()?.is_ascii_hexdigit() {
                                    return Err(self.bad("in \\u hexadecimal character escape"));
                                }
                                self.i += 1;
                            }
                        }
                        _ => return Err(self.bad("in string escape code")),
                    }
                }
                c if c < 0x20 => return Err(self.bad("in string literal")),
                _ => self.i += 1,
            }
        }
    }

    fn digits(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
    }

    fn number(&mut self) -> Result<(), String> {
        if self.peek()? == b'-' {
            self.i += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.bad("in numeric literal"));
            }
        }
        if self.peek()? == b'0' {
            self.i += 1;
        } else {
            self.digits();
        }
        if self.i < self.s.len() && self.s[self.i] == b'.' {
            self.i += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.bad("after decimal point in numeric literal"));
            }
            self.digits();
        }
        if self.i < self.s.len() && matches!(self.s[self.i], b'e' | b'E') {
            self.i += 1;
            if matches!(self.peek()?, b'+' | b'-') {
                self.i += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return Err(self.bad("in exponent of numeric literal"));
            }
            self.digits();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn messages_match_go() {
        assert_eq!(check(b"no"), Err("invalid character 'o' in literal null (expecting 'u')".into()));
        assert_eq!(check(b""), Err("unexpected end of JSON input".into()));
        assert_eq!(check(b"{\"a\":1"), Err("unexpected end of JSON input".into()));
        assert_eq!(check(b"x"), Err("invalid character 'x' looking for beginning of value".into()));
        assert_eq!(check(b"{a}"), Err("invalid character 'a' looking for beginning of object key string".into()));
        assert_eq!(check(b"{\"a\" 1}"), Err("invalid character '1' after object key".into()));
        assert_eq!(check(b"{\"a\":1 \"b\"}"), Err("invalid character '\"' after object key:value pair".into()));
        assert_eq!(check(b"[1 2]"), Err("invalid character '2' after array element".into()));
        assert_eq!(check(b"{} x"), Err("invalid character 'x' after top-level value".into()));
        assert_eq!(check(b"-x"), Err("invalid character 'x' in numeric literal".into()));
        assert_eq!(check(b" {\"auths\":{\"r\":{\"auth\":\"eA==\"}},\"n\":[1.5e3,true,null]} "), Ok(()));
    }
}
