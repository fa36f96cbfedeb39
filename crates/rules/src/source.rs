//! The rules file: JSON with `//` and `/* */` comments, whose strings may span lines, read
//! with every value's position so errors can point at a line and column. serde_json takes
//! neither comments nor raw newlines in strings, hence this small reader.

use crate::LoadError;

/// A line and column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    /// Numbers are only checked: no rules key takes one.
    Num,
    /// The text and the source position of each of its characters (for errors inside
    /// rule expressions), plus one past the end.
    Str(String, Vec<Pos>),
    Arr(Vec<Spanned>),
    Obj(Vec<(String, Pos, Spanned)>),
}

#[derive(Debug, Clone)]
pub struct Spanned {
    pub value: Json,
    pub at: Pos,
}

pub fn parse(text: &str) -> Result<Spanned, LoadError> {
    let mut r = Reader {
        chars: text.chars().collect(),
        i: 0,
        line: 1,
        column: 1,
    };
    let v = r.value(0)?;
    r.skip_blank()?;
    if r.i < r.chars.len() {
        return Err(r.error("unexpected text after the rules object"));
    }
    Ok(v)
}

/// Nesting beyond this is refused rather than risking the stack.
const MAX_NESTING: usize = 128;

struct Reader {
    chars: Vec<char>,
    i: usize,
    line: usize,
    column: usize,
}

impl Reader {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn error(&self, message: &str) -> LoadError {
        LoadError::at(self.pos(), message)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_blank(&mut self) -> Result<(), LoadError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') if self.chars.get(self.i + 1) == Some(&'/') => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                Some('/') if self.chars.get(self.i + 1) == Some(&'*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => return Err(LoadError::at(start, "unterminated comment")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, LoadError> {
        self.skip_blank()?;
        if depth > MAX_NESTING {
            return Err(self.error("the rules nest too deeply"));
        }
        let at = self.pos();
        let value = match self.peek() {
            Some('{') => self.object(depth)?,
            Some('[') => self.array(depth)?,
            Some('"') => {
                let (s, p) = self.string()?;
                Json::Str(s, p)
            }
            Some(c) if c == '-' || c.is_ascii_digit() => self.number()?,
            Some(c) if c.is_ascii_alphabetic() => {
                let mut word = String::new();
                while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric()) {
                    word.push(c);
                    self.bump();
                }
                match word.as_str() {
                    "true" => Json::Bool(true),
                    "false" => Json::Bool(false),
                    "null" => Json::Null,
                    _ => return Err(LoadError::at(at, &format!("unexpected word '{word}'"))),
                }
            }
            Some(c) => return Err(self.error(&format!("unexpected character '{c}'"))),
            None => return Err(self.error("unexpected end of the rules")),
        };
        Ok(Spanned { value, at })
    }

    fn object(&mut self, depth: usize) -> Result<Json, LoadError> {
        self.bump();
        let mut members: Vec<(String, Pos, Spanned)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        self.skip_blank()?;
        if self.peek() == Some('}') {
            self.bump();
            return Ok(Json::Obj(members));
        }
        loop {
            self.skip_blank()?;
            let key_at = self.pos();
            if self.peek() != Some('"') {
                return Err(self.error("expected a quoted key"));
            }
            let (key, _) = self.string()?;
            if !seen.insert(key.clone()) {
                return Err(LoadError::at(key_at, &format!("duplicate key '{key}'")));
            }
            self.skip_blank()?;
            if self.bump() != Some(':') {
                return Err(self.error("expected ':' after a key"));
            }
            let v = self.value(depth + 1)?;
            members.push((key, key_at, v));
            self.skip_blank()?;
            match self.bump() {
                Some(',') => {
                    // A trailing comma is tolerated, as the console does.
                    self.skip_blank()?;
                    if self.peek() == Some('}') {
                        self.bump();
                        return Ok(Json::Obj(members));
                    }
                }
                Some('}') => return Ok(Json::Obj(members)),
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, LoadError> {
        self.bump();
        let mut items = Vec::new();
        self.skip_blank()?;
        if self.peek() == Some(']') {
            self.bump();
            return Ok(Json::Arr(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_blank()?;
            match self.bump() {
                Some(',') => {}
                Some(']') => return Ok(Json::Arr(items)),
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self) -> Result<Json, LoadError> {
        let at = self.pos();
        let mut text = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            text.push(c);
            self.bump();
        }
        text.parse::<f64>()
            .map(|_| Json::Num)
            .map_err(|_| LoadError::at(at, &format!("invalid number '{text}'")))
    }

    /// A string; raw line breaks are kept (rule expressions may span lines).
    fn string(&mut self) -> Result<(String, Vec<Pos>), LoadError> {
        let start = self.pos();
        self.bump();
        let mut out = String::new();
        let mut positions = Vec::new();
        loop {
            let at = self.pos();
            let c = match self.bump() {
                Some('"') => {
                    positions.push(at);
                    return Ok((out, positions));
                }
                Some('\\') => match self.bump() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    Some('b') => '\u{8}',
                    Some('f') => '\u{c}',
                    Some('u') => {
                        let mut code = 0u32;
                        for _ in 0..4 {
                            let d = self
                                .bump()
                                .and_then(|c| c.to_digit(16))
                                .ok_or_else(|| self.error("invalid \\u escape"))?;
                            code = code * 16 + d;
                        }
                        char::from_u32(code).unwrap_or('\u{fffd}')
                    }
                    Some(c) => c,
                    None => return Err(LoadError::at(start, "unterminated string")),
                },
                Some(c) => c,
                None => return Err(LoadError::at(start, "unterminated string")),
            };
            out.push(c);
            positions.push(at);
        }
    }
}
