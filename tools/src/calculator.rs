//! The `calculator` tool: a small, self-contained expression engine over `f64`
//! (normaliser for natural phrasings, tokenizer, precedence-climbing parser that
//! evaluates as it parses) with hard limits so hostile input fails fast.
//!
//! ```
//! use toolforge_tools::calculator::evaluate;
//! assert_eq!(evaluate("15% of 2850").unwrap(), 427.5);
//! assert_eq!(evaluate("average of 12, 19, 33 and 40").unwrap(), 26.0);
//! assert!(evaluate("9^9^9^9").is_err());
//! ```

use std::sync::LazyLock;

use async_trait::async_trait;
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge_core::{Tool, ToolError};

/// Longest expression accepted, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 1000;
/// Deepest nesting of parentheses and function calls accepted.
pub const MAX_NESTING: usize = 64;
/// Largest argument accepted by `factorial` / postfix `!` (171! overflows `f64`).
pub const MAX_FACTORIAL: u32 = 170;

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    /// Nothing left to evaluate once lead-in words are removed.
    #[error("the expression is empty")]
    Empty,
    /// The expression is longer than [`MAX_EXPRESSION_CHARS`].
    #[error("expression is too long ({0} characters; the limit is {MAX_EXPRESSION_CHARS})")]
    TooLong(usize),
    /// Parentheses or function calls nest deeper than [`MAX_NESTING`].
    #[error("expression is nested too deeply (the limit is {MAX_NESTING} levels)")]
    TooDeep,
    /// A character that is not part of the expression language.
    #[error("unexpected character '{0}'")]
    UnexpectedChar(char),
    /// A word that is neither a function, a constant nor an operator word.
    #[error("unknown word or function '{0}'")]
    UnknownName(String),
    /// The tokens do not form an expression.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A function called with the wrong number of arguments.
    #[error("{name} takes {expected}, got {got}")]
    Arity {
        /// The function's name.
        name: String,
        /// What it accepts, e.g. "1 argument".
        expected: &'static str,
        /// How many it was given.
        got: usize,
    },
    /// Division or modulo by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A function applied outside its domain.
    #[error("{0}")]
    Domain(String),
    /// An intermediate or final result overflowed to infinity or is NaN.
    #[error("result is not a finite number")]
    NotFinite,
}

impl CalcError {
    /// True when the expression itself is malformed (as opposed to well-formed
    /// math that has no finite answer).
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            CalcError::DivisionByZero | CalcError::Domain(_) | CalcError::NotFinite
        )
    }
}

impl From<CalcError> for ToolError {
    fn from(e: CalcError) -> Self {
        if e.is_input_error() {
            ToolError::InvalidArguments(e.to_string())
        } else {
            ToolError::Failed(e.to_string())
        }
    }
}

/// Evaluates an arithmetic expression, natural phrasings included
/// ("what's 15% of 2850?", "2 to the power of 20", "sqrt of 44567").
pub fn evaluate(expression: &str) -> Result<f64, CalcError> {
    let chars = expression.chars().count();
    if chars > MAX_EXPRESSION_CHARS {
        return Err(CalcError::TooLong(chars));
    }
    let normalized = normalize(&strip_lead_in(expression));
    let tokens = tokenize(&normalized)?;
    if tokens.is_empty() {
        return Err(CalcError::Empty);
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let value = parser.expression()?;
    match parser.peek() {
        None => finite(value),
        Some(tok) => Err(CalcError::Syntax(format!("unexpected {}", tok.describe()))),
    }
}

/// Formats a result for people: integers without `.0`, otherwise rounded to 12
/// significant digits without float noise (`0.1 + 0.2` -> `0.3`); very large or
/// very small magnitudes in scientific notation.
pub fn format_number(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let rounded = round_significant(x);
    let magnitude = rounded.abs();
    if (1e-6..1e15).contains(&magnitude) {
        // Display of f64 is the shortest exact representation, so after rounding
        // it has at most 12 significant digits.
        let s = rounded.to_string();
        if s.contains('e') {
            format!("{rounded:e}")
        } else {
            s
        }
    } else {
        format!("{rounded:e}")
    }
}

/// Rounds to 12 significant digits (removes float noise from a result).
fn round_significant(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// The value reported in JSON: float noise removed for ordinary magnitudes,
/// exact integers and large magnitudes kept as computed.
fn clean_value(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else if x.fract() == 0.0 || x.abs() >= 1e15 {
        x
    } else {
        round_significant(x)
    }
}

fn finite(x: f64) -> Result<f64, CalcError> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(CalcError::NotFinite)
    }
}

// ---------------------------------------------------------------------------
// Normalisation of natural phrasings
// ---------------------------------------------------------------------------

/// Compiles one of this module's literal patterns; every pattern is exercised by
/// the tests, so `None` (skipped rewrite) cannot happen in a tested build.
fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static LEAD_IN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)^\s*(?:hey|hi|ok|okay|so|please|can you|could you|would you|tell me|quickly|what's|whats|what is|what are|what're|calculate|compute|evaluate|solve|work out|figure out|how much is|how much are|find|give me)\b[\s,:]*",
    )
});
static TRAILING: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)(?:\s*(?:\?|=|\.|please|for me)\s*)+$"));

/// Removes conversational lead-ins ("what's", "calculate") and trailing `?`/`=`,
/// keeping the original wording otherwise (used for the summary too).
fn strip_lead_in(expression: &str) -> String {
    let mut s = expression.trim().replace(['’', '‘'], "'");
    if let Some(lead_in) = LEAD_IN.as_ref() {
        loop {
            let next = lead_in.replace(&s, "").into_owned();
            if next == s {
                break;
            }
            s = next;
        }
    }
    if let Some(trailing) = TRAILING.as_ref() {
        s = trailing.replace(&s, "").into_owned();
    }
    // A label before the math ("the tip: 18% of 64.50", "total: 3 * 4.99").
    if let Some((label, math)) = s.split_once(':') {
        if !label.chars().any(|c| c.is_ascii_digit()) && math.chars().any(|c| c.is_ascii_digit()) {
            s = math.to_string();
        }
    }
    s.trim().to_string()
}

/// Ordered (pattern, replacement) rewrites from words to symbols.
static REWRITES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"\bper ?cent\b", "%"),
        // Money: the amount is the number ("$64.50", "64.50 dollars", "€20").
        (r"[$€£¥₹]\s*([0-9.])", "$1"),
        (r"([0-9.])\s*(?:[$€£¥₹]|(?:us )?dollars?|bucks|euros?|pounds?|usd|eur|gbp)(?:\b|\s|$)", "$1 "),
        // "20% off 45" is the price after the discount.
        (r"([0-9.]+)\s*%\s*off\s*(?:of\s*)?([0-9.]+)", "$2 * (1 - $1 / 100)"),
        (r"%\s*(?:tip|tax|discount|interest)?\s*(?:of|on)\b", "% *"),
        (r"%\s*of\b", "% *"),
        (r"\blog(?:arithm)? base\s+([0-9.]+)\s+of\s+([0-9.]+)", "log($2, $1)"),
        (r"\bsquare root\b", "sqrt"),
        (r"\bcube root\b", "cbrt"),
        (r"\bnatural log(?:arithm)?\b", "ln"),
        (r"\blogarithm\b", "log"),
        (r"\babsolute value\b", "abs"),
        (r"\b(sqrt|cbrt|abs|ln|log|log2|log10|exp|sin|cos|tan|asin|acos|atan|arcsin|arccos|arctan|sinh|cosh|tanh|floor|ceil|round|factorial|min|max|minimum|maximum|avg|average|mean|sum)\s+of\b", "$1"),
        (r"([0-9)])\s*factorial\b", "$1!"),
        (r"\braised to(?: the power(?: of)?)?\b", "^"),
        (r"\bto the power(?: of)?\b", "^"),
        (r"\bto the\s+([0-9]+)\s*(?:st|nd|rd|th)(?:\s+power)?\b", "^ $1"),
        (r"\bsquared\b", "^2"),
        (r"\bcubed\b", "^3"),
        (r"\bmultiplied by\b", "*"),
        (r"\btimes\b", "*"),
        (r"\bdivided by\b", "/"),
        (r"\bover\b", "/"),
        (r"\bplus\b", "+"),
        (r"\bminus\b", "-"),
        (r"\bmod(?:ulo)?\b", "%"),
        (r"\band\b", ","),
        (r"\bthe\b", " "),
    ]
    .into_iter()
    .filter_map(|(p, r)| Some((re(p)?, r)))
    .collect()
});

/// Lowercases and rewrites phrasings into the symbolic language the tokenizer reads.
fn normalize(expression: &str) -> String {
    let mut s = expression
        .to_lowercase()
        .replace(['×', '·'], "*")
        .replace('÷', "/")
        .replace(['−', '–'], "-")
        .replace('π', " pi ")
        .replace('√', " sqrt ")
        .replace('²', "^2")
        .replace('³', "^3");
    for (pattern, replacement) in REWRITES.iter() {
        s = pattern.replace_all(&s, *replacement).into_owned();
    }
    s
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    Percent,
    Bang,
    Degree,
    LParen,
    RParen,
    Comma,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(n) => format!("number {}", format_number(*n)),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Caret => "'^'".into(),
            Tok::Percent => "'%'".into(),
            Tok::Bang => "'!'".into(),
            Tok::Degree => "'°'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
        }
    }
}

/// How commas inside the innermost parentheses are read.
#[derive(Clone, Copy, PartialEq)]
enum CommaContext {
    /// Commas may be thousands separators (`2,850`).
    Grouping,
    /// A function's argument list written with tight commas only (`max(1,234)`):
    /// every comma separates arguments.
    TightArguments,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, CalcError> {
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::new();
    let mut contexts = vec![CommaContext::Grouping];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '0'..='9' | '.' => {
                let grouping = contexts.last() == Some(&CommaContext::Grouping);
                let (value, next) = lex_number(&chars, i, grouping)?;
                tokens.push(Tok::Num(value));
                i = next;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphabetic() || chars[i] == '_') {
                    i += 1;
                }
                let mut word: String = chars[start..i].iter().collect();
                // Digits continue a word only for names like `log2` and `log10`,
                // so `3x4` reads as 3 x 4.
                let digits = count_digits(&chars, i);
                if digits > 0 {
                    let longer: String = chars[start..i + digits].iter().collect();
                    if function(&longer).is_some() {
                        word = longer;
                        i += digits;
                    }
                }
                tokens.push(Tok::Ident(word));
            }
            '(' | '[' => {
                let after_function =
                    matches!(tokens.last(), Some(Tok::Ident(name)) if function(name).is_some());
                let context = if after_function && tight_argument_list(&chars, i) {
                    CommaContext::TightArguments
                } else {
                    CommaContext::Grouping
                };
                contexts.push(context);
                tokens.push(Tok::LParen);
                i += 1;
            }
            ')' | ']' => {
                if contexts.len() > 1 {
                    contexts.pop();
                }
                tokens.push(Tok::RParen);
                i += 1;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                tokens.push(Tok::Caret);
                i += 2;
            }
            _ => {
                let tok = match c {
                    '+' => Tok::Plus,
                    '-' => Tok::Minus,
                    '*' => Tok::Star,
                    '/' => Tok::Slash,
                    '^' => Tok::Caret,
                    '%' => Tok::Percent,
                    '!' => Tok::Bang,
                    '°' => Tok::Degree,
                    ',' | ';' => Tok::Comma,
                    other => return Err(CalcError::UnexpectedChar(other)),
                };
                tokens.push(tok);
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// True when the parenthesised list opening at `open` has commas at its own level
/// and none of them is followed by whitespace (`max(1,234)`).
fn tight_argument_list(chars: &[char], open: usize) -> bool {
    let mut depth = 0usize;
    let mut commas = 0usize;
    for i in open..chars.len() {
        match chars[i] {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            ',' | ';' if depth == 1 => {
                if chars.get(i + 1).is_some_and(|c| c.is_whitespace()) {
                    return false;
                }
                commas += 1;
            }
            _ => {}
        }
    }
    commas > 0
}

fn count_digits(chars: &[char], from: usize) -> usize {
    chars[from..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count()
}

/// Lexes a number starting at `start`: digits, optional thousands groups
/// (`2,850`, only when `grouping`), fraction and exponent. Returns the value and
/// the index after it.
fn lex_number(chars: &[char], start: usize, grouping: bool) -> Result<(f64, usize), CalcError> {
    let mut text = String::new();
    let mut i = start;
    let lead = count_digits(chars, i);
    text.extend(&chars[i..i + lead]);
    i += lead;
    if grouping && (1..=3).contains(&lead) && chars[start] != '0' {
        // `,ddd` groups, each exactly three digits and not followed by a digit.
        while chars.get(i) == Some(&',') && count_digits(chars, i + 1) == 3 {
            text.extend(&chars[i + 1..i + 4]);
            i += 4;
        }
    }
    if chars.get(i) == Some(&'.') {
        let frac = count_digits(chars, i + 1);
        if lead == 0 && frac == 0 {
            return Err(CalcError::UnexpectedChar('.'));
        }
        text.push('.');
        text.extend(&chars[i + 1..i + 1 + frac]);
        i += 1 + frac;
    }
    if matches!(chars.get(i), Some('e') | Some('E')) {
        let sign = usize::from(matches!(chars.get(i + 1), Some('+') | Some('-')));
        let exp = count_digits(chars, i + 1 + sign);
        if exp > 0 {
            text.extend(&chars[i..i + 1 + sign + exp]);
            i += 1 + sign + exp;
        }
    }
    let value: f64 = text
        .parse()
        .map_err(|_| CalcError::Syntax(format!("malformed number '{text}'")))?;
    Ok((finite(value)?, i))
}

// ---------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Func {
    Unary(fn(f64) -> Result<f64, CalcError>),
    /// `log(x)` or `log(x, base)`; `round(x)` or `round(x, digits)`.
    OneOrTwo(fn(f64, Option<f64>) -> Result<f64, CalcError>),
    Binary(fn(f64, f64) -> Result<f64, CalcError>),
    Variadic(fn(&[f64]) -> f64),
}

fn function(name: &str) -> Option<Func> {
    use Func::*;
    Some(match name {
        "sqrt" => Unary(|x| {
            if x < 0.0 {
                Err(CalcError::Domain("square root of a negative number".into()))
            } else {
                Ok(x.sqrt())
            }
        }),
        "cbrt" => Unary(|x| Ok(x.cbrt())),
        "abs" => Unary(|x| Ok(x.abs())),
        "ln" => Unary(|x| positive_log(x, "ln").map(f64::ln)),
        "log" => OneOrTwo(|x, base| {
            let x = positive_log(x, "log")?;
            match base {
                None => Ok(x.log10()),
                Some(b) if b > 0.0 && b != 1.0 => Ok(x.ln() / b.ln()),
                Some(_) => Err(CalcError::Domain(
                    "a logarithm's base must be positive and not 1".into(),
                )),
            }
        }),
        "log2" => Unary(|x| positive_log(x, "log2").map(f64::log2)),
        "log10" => Unary(|x| positive_log(x, "log10").map(f64::log10)),
        "exp" => Unary(|x| Ok(x.exp())),
        "sin" => Unary(|x| Ok(x.sin())),
        "cos" => Unary(|x| Ok(x.cos())),
        "tan" => Unary(|x| Ok(x.tan())),
        "asin" | "arcsin" => Unary(|x| unit_interval(x, "asin").map(f64::asin)),
        "acos" | "arccos" => Unary(|x| unit_interval(x, "acos").map(f64::acos)),
        "atan" | "arctan" => Unary(|x| Ok(x.atan())),
        "sinh" => Unary(|x| Ok(x.sinh())),
        "cosh" => Unary(|x| Ok(x.cosh())),
        "tanh" => Unary(|x| Ok(x.tanh())),
        "floor" => Unary(|x| Ok(x.floor())),
        "ceil" => Unary(|x| Ok(x.ceil())),
        "round" => OneOrTwo(|x, digits| match digits {
            None => Ok(x.round()),
            Some(d) if d.fract() == 0.0 && (0.0..=15.0).contains(&d) => {
                let scale = 10f64.powi(d as i32);
                Ok((x * scale).round() / scale)
            }
            Some(_) => Err(CalcError::Domain(
                "round's digits must be a whole number from 0 to 15".into(),
            )),
        }),
        "factorial" | "fact" => Unary(factorial),
        "pow" => Binary(power),
        "min" | "minimum" => Variadic(|xs| xs.iter().copied().fold(f64::INFINITY, f64::min)),
        "max" | "maximum" => Variadic(|xs| xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        "avg" | "average" | "mean" => Variadic(|xs| xs.iter().sum::<f64>() / xs.len() as f64),
        "sum" => Variadic(|xs| xs.iter().sum()),
        _ => return None,
    })
}

fn constant(name: &str) -> Option<f64> {
    match name {
        "pi" => Some(std::f64::consts::PI),
        "e" => Some(std::f64::consts::E),
        "tau" => Some(std::f64::consts::TAU),
        _ => None,
    }
}

fn positive_log(x: f64, name: &str) -> Result<f64, CalcError> {
    if x > 0.0 {
        Ok(x)
    } else {
        Err(CalcError::Domain(format!(
            "{name} is only defined for positive numbers"
        )))
    }
}

fn unit_interval(x: f64, name: &str) -> Result<f64, CalcError> {
    if (-1.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(CalcError::Domain(format!(
            "{name} is only defined between -1 and 1"
        )))
    }
}

fn factorial(x: f64) -> Result<f64, CalcError> {
    if x.fract() != 0.0 || !(0.0..=f64::from(MAX_FACTORIAL)).contains(&x) {
        return Err(CalcError::Domain(format!(
            "factorial is only defined here for whole numbers from 0 to {MAX_FACTORIAL}, got {}",
            format_number(x)
        )));
    }
    // Bounded by MAX_FACTORIAL iterations.
    Ok((2..=x as u32).fold(1.0, |acc, k| acc * f64::from(k)))
}

fn power(base: f64, exponent: f64) -> Result<f64, CalcError> {
    if base == 0.0 && exponent < 0.0 {
        return Err(CalcError::DivisionByZero);
    }
    let result = base.powf(exponent);
    if result.is_nan() && base < 0.0 {
        return Err(CalcError::Domain(
            "a negative number raised to a fractional power has no real value".into(),
        ));
    }
    finite(result)
}

// ---------------------------------------------------------------------------
// Parser / evaluator
// ---------------------------------------------------------------------------

/// Precedence climbing, evaluating as it goes:
///
/// ```text
/// expression := term (('+' | '-') term)*
/// term       := signed (('*' | '/' | 'x' | '%') signed)*
/// signed     := ('+' | '-')* power
/// power      := postfix ('^' signed)*          (right-associative)
/// postfix    := primary ('!' | '%' | '°' | 'deg')*
/// primary    := number | constant | '(' expression ')' | function call
/// ```
///
/// Only parentheses and function calls recurse (bounded by [`MAX_NESTING`]);
/// sign runs and power chains are handled with loops.
struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, offset: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + offset)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.tokens.get(self.pos).cloned();
        if tok.is_some() {
            self.pos += 1;
        }
        tok
    }

    fn expect_rparen(&mut self) -> Result<(), CalcError> {
        match self.next() {
            Some(Tok::RParen) => Ok(()),
            Some(tok) => Err(CalcError::Syntax(format!(
                "expected ')' but found {}",
                tok.describe()
            ))),
            None => Err(CalcError::Syntax("missing ')'".into())),
        }
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            Err(CalcError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn expression(&mut self) -> Result<f64, CalcError> {
        let mut acc = self.term()?;
        loop {
            match self.peek() {
                Some(Tok::Plus) => {
                    self.pos += 1;
                    acc = finite(acc + self.term()?)?;
                }
                Some(Tok::Minus) => {
                    self.pos += 1;
                    acc = finite(acc - self.term()?)?;
                }
                _ => return Ok(acc),
            }
        }
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut acc = self.signed()?;
        loop {
            match self.peek() {
                Some(Tok::Star) => {
                    self.pos += 1;
                    acc = finite(acc * self.signed()?)?;
                }
                Some(Tok::Ident(w)) if w == "x" => {
                    self.pos += 1;
                    acc = finite(acc * self.signed()?)?;
                }
                Some(Tok::Slash) => {
                    self.pos += 1;
                    let divisor = self.signed()?;
                    if divisor == 0.0 {
                        return Err(CalcError::DivisionByZero);
                    }
                    acc = finite(acc / divisor)?;
                }
                Some(Tok::Percent) => {
                    self.pos += 1;
                    let divisor = self.signed()?;
                    if divisor == 0.0 {
                        return Err(CalcError::DivisionByZero);
                    }
                    acc = finite(acc % divisor)?;
                }
                _ => return Ok(acc),
            }
        }
    }

    fn signed(&mut self) -> Result<f64, CalcError> {
        let mut negative = false;
        loop {
            match self.peek() {
                Some(Tok::Minus) => negative = !negative,
                Some(Tok::Plus) => {}
                _ => break,
            }
            self.pos += 1;
        }
        let value = self.power()?;
        Ok(if negative { -value } else { value })
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        // Operands of a chain `a ^ ±b ^ ±c`, folded from the right.
        let mut operands = vec![(false, self.postfix()?)];
        while self.peek() == Some(&Tok::Caret) {
            self.pos += 1;
            let mut negative = false;
            loop {
                match self.peek() {
                    Some(Tok::Minus) => negative = !negative,
                    Some(Tok::Plus) => {}
                    _ => break,
                }
                self.pos += 1;
            }
            operands.push((negative, self.postfix()?));
        }
        let mut iter = operands.into_iter().rev();
        let Some((mut negative, mut acc)) = iter.next() else {
            return Err(CalcError::Empty);
        };
        for (sign, base) in iter {
            let exponent = if negative { -acc } else { acc };
            acc = power(base, exponent)?;
            negative = sign;
        }
        Ok(acc)
    }

    /// True when a `%` at the current position is the percent sign rather than
    /// the modulo operator: nothing that can start an operand follows it.
    fn percent_is_postfix(&self) -> bool {
        match self.peek_at(1) {
            None => true,
            Some(Tok::Num(_)) | Some(Tok::LParen) => false,
            Some(Tok::Ident(w)) => w == "x" || w == "of" || is_degree_word(w),
            Some(_) => true,
        }
    }

    fn postfix(&mut self) -> Result<f64, CalcError> {
        let mut value = self.primary()?;
        loop {
            match self.peek() {
                Some(Tok::Bang) => {
                    self.pos += 1;
                    value = factorial(value)?;
                }
                Some(Tok::Percent) if self.percent_is_postfix() => {
                    self.pos += 1;
                    value /= 100.0;
                }
                Some(Tok::Degree) => {
                    self.pos += 1;
                    value = value.to_radians();
                }
                Some(Tok::Ident(w)) if is_degree_word(w) => {
                    self.pos += 1;
                    value = value.to_radians();
                }
                _ => return Ok(value),
            }
        }
    }

    fn primary(&mut self) -> Result<f64, CalcError> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(n),
            Some(Tok::LParen) => {
                self.enter()?;
                let value = self.expression()?;
                self.expect_rparen()?;
                self.leave();
                Ok(value)
            }
            Some(Tok::Ident(name)) => {
                if let Some(value) = constant(&name) {
                    return Ok(value);
                }
                let Some(func) = function(&name) else {
                    return Err(CalcError::UnknownName(name));
                };
                self.enter()?;
                let value = self.call(&name, func)?;
                self.leave();
                Ok(value)
            }
            Some(tok) => Err(CalcError::Syntax(format!("unexpected {}", tok.describe()))),
            None => Err(CalcError::Syntax("unexpected end of expression".into())),
        }
    }

    /// Arguments of a function: a parenthesised list, or without parentheses a
    /// single operand (`sqrt 16`) or, for list functions, a comma list
    /// (`average 12, 19, 33, 40`).
    fn arguments(&mut self, variadic: bool) -> Result<Vec<f64>, CalcError> {
        if matches!(self.peek(), Some(Tok::Ident(w)) if w == "of") {
            self.pos += 1;
        }
        let parenthesised = self.peek() == Some(&Tok::LParen);
        if !parenthesised && !variadic {
            return Ok(vec![self.signed()?]);
        }
        if parenthesised {
            self.pos += 1;
            if self.peek() == Some(&Tok::RParen) {
                self.pos += 1;
                return Ok(Vec::new());
            }
        }
        let mut args = vec![self.expression()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            args.push(self.expression()?);
        }
        if parenthesised {
            self.expect_rparen()?;
        }
        Ok(args)
    }

    fn call(&mut self, name: &str, func: Func) -> Result<f64, CalcError> {
        let args = self.arguments(matches!(func, Func::Variadic(_)))?;
        let arity = |expected: &'static str| CalcError::Arity {
            name: name.to_string(),
            expected,
            got: args.len(),
        };
        let value = match func {
            Func::Unary(f) => match args.as_slice() {
                [x] => f(*x)?,
                _ => return Err(arity("1 argument")),
            },
            Func::OneOrTwo(f) => match args.as_slice() {
                [x] => f(*x, None)?,
                [x, y] => f(*x, Some(*y))?,
                _ => return Err(arity("1 or 2 arguments")),
            },
            Func::Binary(f) => match args.as_slice() {
                [x, y] => f(*x, *y)?,
                _ => return Err(arity("2 arguments")),
            },
            Func::Variadic(f) => {
                if args.is_empty() {
                    return Err(arity("at least 1 argument"));
                }
                f(&args)
            }
        };
        finite(value)
    }
}

fn is_degree_word(w: &str) -> bool {
    matches!(w, "deg" | "degree" | "degrees")
}

// ---------------------------------------------------------------------------
// The tool
// ---------------------------------------------------------------------------

/// Arguments of the `calculator` tool.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CalculatorArgs {
    /// The math to evaluate, as written: symbols ("(3 + 4) * 2^10", "17 % 5", "sqrt(2)")
    /// or words ("15% of 2850", "2 to the power of 20", "sqrt of 44567",
    /// "average of 12, 19, 33 and 40", "12 factorial"). Functions: sqrt, cbrt, abs,
    /// ln, log, log2, log10, exp, sin, cos, tan, asin, acos, atan, floor, ceil, round,
    /// factorial, min, max, average, sum; constants pi and e.
    pub expression: String,
}

/// The `calculator` tool: evaluates arithmetic with [`evaluate`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CalculatorTool;

impl CalculatorTool {
    /// A calculator (it holds no state).
    pub fn new() -> Self {
        Self
    }

    /// Evaluates `expression` into the tool's JSON output.
    pub fn run(&self, expression: &str) -> Result<Value, ToolError> {
        let value = evaluate(expression)?;
        let value = clean_value(value);
        let result = format_number(value);
        let shown = strip_lead_in(expression);
        Ok(json!({
            "expression": expression,
            "value": value,
            "result": result,
            "summary": format!("{shown} = {result}"),
        }))
    }
}

#[async_trait]
impl Tool for CalculatorTool {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        crate::knowledge::examples(self.name())
    }

    type Args = CalculatorArgs;

    fn name(&self) -> &str {
        "calculator"
    }

    fn description(&self) -> &str {
        "Evaluates arithmetic and math functions (percentages, powers, roots, logarithms, \
         trigonometry, factorials, averages); the output carries the numeric `value`."
    }

    async fn call(&self, args: CalculatorArgs) -> Result<Value, ToolError> {
        self.run(&args.expression)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolforge_core::DynTool;

    fn ev(s: &str) -> f64 {
        match evaluate(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} failed: {e}"),
        }
    }

    fn close(s: &str, expected: f64) {
        let v = ev(s);
        assert!(
            (v - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "{s:?} = {v}, expected {expected}"
        );
    }

    fn err(s: &str) -> CalcError {
        match evaluate(s) {
            Ok(v) => panic!("{s:?} should fail, got {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn basic_arithmetic_and_precedence() {
        assert_eq!(ev("1 + 2 * 3"), 7.0);
        assert_eq!(ev("(1 + 2) * 3"), 9.0);
        assert_eq!(ev("10 - 4 - 3"), 3.0);
        assert_eq!(ev("100 / 10 / 5"), 2.0);
        assert_eq!(ev("2 + 3 * 4 ^ 2"), 50.0);
        assert_eq!(ev("2^3^2"), 512.0);
        assert_eq!(ev("2**10"), 1024.0);
        assert_eq!(ev("-2^2"), -4.0);
        assert_eq!(ev("(-2)^2"), 4.0);
        assert_eq!(ev("2^-1"), 0.5);
        assert_eq!(ev("2^-2^2"), 0.0625);
        assert_eq!(ev("--3"), 3.0);
        assert_eq!(ev("+3 - -3"), 6.0);
        assert_eq!(ev("3 * -2"), -6.0);
        assert_eq!(ev("1.5e3 + .5"), 1500.5);
        assert_eq!(ev("[2 + 3] * 2"), 10.0);
    }

    #[test]
    fn modulo_and_percent() {
        assert_eq!(ev("17 % 5"), 2.0);
        assert_eq!(ev("17 mod 5"), 2.0);
        assert_eq!(ev("17 % (2 + 3)"), 2.0);
        assert_eq!(ev("15%"), 0.15);
        assert_eq!(ev("15% of 2850"), 427.5);
        assert_eq!(ev("15 percent of 2850"), 427.5);
        assert_eq!(ev("what's 15% of 2850"), 427.5);
        assert_eq!(ev("hey what's 15% of 2850?"), 427.5);
        assert_eq!(ev("200 * 15%"), 30.0);
        assert_eq!(ev("(50%) * 8"), 4.0);
    }

    #[test]
    fn percentages_of_money_and_labels() {
        let close = |s: &str, want: f64| {
            let got = ev(s);
            assert!((got - want).abs() < 1e-9, "{s}: {got}");
        };
        close("calculate the tip: 18% of $64.50", 11.61);
        close("18% tip on 64.50", 11.61);
        close("20% off €45", 36.0);
        close("15 percent of 80 dollars", 12.0);
        close("$64.50 * 0.18", 11.61);
        close("3 * 4.99 usd", 14.97);
        close("total: 3 * 4.99", 14.97);
        assert_eq!(ev("time: 10 - 4"), 6.0);
    }

    #[test]
    fn multiplication_and_division_signs() {
        assert_eq!(ev("3 x 4"), 12.0);
        assert_eq!(ev("3x4"), 12.0);
        assert_eq!(ev("3 × 4"), 12.0);
        assert_eq!(ev("12 ÷ 4"), 3.0);
        assert_eq!(ev("12 − 4"), 8.0);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(ev("2,850 * 2"), 5700.0);
        assert_eq!(ev("15% of 2,850"), 427.5);
        assert_eq!(ev("1,234,567 + 1"), 1234568.0);
        assert_eq!(ev("1,234.5 * 2"), 2469.0);
        assert_eq!(ev("sum(1,234, 1)"), 1235.0);
        assert_eq!(ev("max(1,234)"), 234.0);
        assert_eq!(ev("average of 1,200, 3,400 and 5,000"), 3200.0);
        assert_eq!(ev("sum of 1,2,3"), 6.0);
    }

    #[test]
    fn natural_phrasings() {
        assert_eq!(ev("2 to the power of 20"), 1048576.0);
        assert_eq!(ev("2 to the power 8"), 256.0);
        assert_eq!(ev("2 raised to 10"), 1024.0);
        assert_eq!(ev("2 raised to the power of 3"), 8.0);
        assert_eq!(ev("10 to the 3rd power"), 1000.0);
        assert_eq!(ev("9 cubed"), 729.0);
        assert_eq!(ev("7 squared"), 49.0);
        assert_eq!(ev("7²"), 49.0);
        close("sqrt of 44567", 211.108976597);
        close("square root of 44567", 211.108976597);
        close("the square root of 44567", 211.108976597);
        close("√2", std::f64::consts::SQRT_2);
        assert_eq!(ev("cube root of 27"), 3.0);
        assert_eq!(ev("average of 12, 19, 33 and 40"), 26.0);
        assert_eq!(ev("the mean of 1, 2 and 3"), 2.0);
        assert_eq!(ev("sum of 3 and 4"), 7.0);
        assert_eq!(ev("12 factorial"), 479001600.0);
        assert_eq!(ev("factorial of 5"), 120.0);
        assert_eq!(ev("5 plus 3 times 2"), 11.0);
        assert_eq!(ev("10 minus 4"), 6.0);
        assert_eq!(ev("10 divided by 4"), 2.5);
        assert_eq!(ev("6 multiplied by 7"), 42.0);
        assert_eq!(ev("6 times 7"), 42.0);
        assert_eq!(ev("3 over 4"), 0.75);
        assert_eq!(ev("log base 2 of 8"), 3.0);
        close("natural log of e", 1.0);
    }

    #[test]
    fn lead_ins_trailers_and_case() {
        assert_eq!(ev("What is 2 + 2?"), 4.0);
        assert_eq!(ev("WHAT'S 6 TIMES 7"), 42.0);
        assert_eq!(ev("what’s 6 times 7"), 42.0);
        assert_eq!(ev("Calculate 5 Plus 3 Times 2"), 11.0);
        assert_eq!(ev("compute 2^10 ="), 1024.0);
        assert_eq!(ev("how much is 12 * 12?"), 144.0);
        assert_eq!(ev("  1+1  "), 2.0);
        assert_eq!(ev("SQRT(16)"), 4.0);
    }

    #[test]
    fn functions_and_constants() {
        assert_eq!(ev("sqrt(16)"), 4.0);
        assert_eq!(ev("sqrt 16 + 9"), 13.0);
        assert_eq!(ev("cbrt(-8)"), -2.0);
        assert_eq!(ev("abs(-3.5)"), 3.5);
        close("ln(e)", 1.0);
        close("ln e^2", 2.0);
        close("log(1000)", 3.0);
        close("log(8, 2)", 3.0);
        close("log2(1024)", 10.0);
        close("log10(0.01)", -2.0);
        close("exp(1)", std::f64::consts::E);
        close("sin(pi / 2)", 1.0);
        close("cos(0)", 1.0);
        close("tan(pi / 4)", 1.0);
        close("sin(30°)", 0.5);
        close("cos 60 degrees", 0.5);
        close("asin(1)", std::f64::consts::FRAC_PI_2);
        close("arcsin(1)", std::f64::consts::FRAC_PI_2);
        close("acos(1)", 0.0);
        close("arccos(0)", std::f64::consts::FRAC_PI_2);
        close("atan(1)", std::f64::consts::FRAC_PI_4);
        close("arctan(1)", std::f64::consts::FRAC_PI_4);
        assert_eq!(ev("floor(2.7)"), 2.0);
        assert_eq!(ev("ceil(2.1)"), 3.0);
        assert_eq!(ev("round(2.5)"), 3.0);
        assert_eq!(ev("round(2.71828, 2)"), 2.72);
        assert_eq!(ev("factorial(5)"), 120.0);
        assert_eq!(ev("5!"), 120.0);
        assert_eq!(ev("0!"), 1.0);
        assert_eq!(ev("3!!"), 720.0);
        assert_eq!(ev("min(4, 2, 8)"), 2.0);
        assert_eq!(ev("max(4, 2, 8)"), 8.0);
        assert_eq!(ev("avg(1, 2, 3, 4)"), 2.5);
        assert_eq!(ev("mean(2, 4)"), 3.0);
        assert_eq!(ev("sum(1, 2, 3)"), 6.0);
        assert_eq!(ev("pow(2, 5)"), 32.0);
        close("2 * pi", std::f64::consts::TAU);
        close("π", std::f64::consts::PI);
        close("e", std::f64::consts::E);
    }

    #[test]
    fn guards_fail_fast() {
        let long = "1+".repeat(5000) + "1";
        assert!(matches!(err(&long), CalcError::TooLong(10001)));
        let deep = "(".repeat(100) + "1" + &")".repeat(100);
        assert_eq!(err(&deep), CalcError::TooDeep);
        let deep_calls = "sqrt(".repeat(80) + "1" + &")".repeat(80);
        assert_eq!(err(&deep_calls), CalcError::TooDeep);
        let nested_ok = "(".repeat(60) + "1" + &")".repeat(60);
        assert_eq!(ev(&nested_ok), 1.0);
        // Long sign runs and power chains are loops, not recursion.
        assert_eq!(ev(&("-".repeat(900) + "1")), 1.0);
        assert_eq!(ev(&("1^".repeat(400) + "1")), 1.0);
        assert_eq!(err("9^9^9^9"), CalcError::NotFinite);
        assert_eq!(err("10^400"), CalcError::NotFinite);
        assert_eq!(err("1e308 * 10"), CalcError::NotFinite);
        assert_eq!(err("1e999"), CalcError::NotFinite);
        assert!(matches!(err("factorial(1e9)"), CalcError::Domain(_)));
        assert!(matches!(err("171!"), CalcError::Domain(_)));
        assert!(matches!(err("2.5!"), CalcError::Domain(_)));
        assert!(matches!(err("(-1)!"), CalcError::Domain(_)));
        assert!(ev("170!") > 7.2e306);
        assert_eq!(err("1 / 0"), CalcError::DivisionByZero);
        assert_eq!(err("5 % 0"), CalcError::DivisionByZero);
        assert_eq!(err("0 ^ -1"), CalcError::DivisionByZero);
        assert_eq!(err("10 divided by (5 - 5)"), CalcError::DivisionByZero);
        assert!(matches!(err("sqrt(-1)"), CalcError::Domain(_)));
        assert!(matches!(err("ln(0)"), CalcError::Domain(_)));
        assert!(matches!(err("asin(2)"), CalcError::Domain(_)));
        assert!(matches!(err("(-8)^(1/3)"), CalcError::Domain(_)));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err(""), CalcError::Empty);
        assert_eq!(err("what is ?"), CalcError::Empty);
        assert!(matches!(err("2 +"), CalcError::Syntax(_)));
        assert!(matches!(err("(2 + 3"), CalcError::Syntax(_)));
        assert!(matches!(err("2 + 3)"), CalcError::Syntax(_)));
        assert!(matches!(err("2 3"), CalcError::Syntax(_)));
        assert!(matches!(err("2(3)"), CalcError::Syntax(_)));
        assert!(matches!(err("12, 19"), CalcError::Syntax(_)));
        assert!(matches!(err("foo(2)"), CalcError::UnknownName(_)));
        assert!(matches!(err("2 & 3"), CalcError::UnexpectedChar('&')));
        assert!(matches!(err("sqrt(4, 5)"), CalcError::Arity { .. }));
        assert!(matches!(err("max()"), CalcError::Arity { .. }));
        assert!(matches!(err("pow(2)"), CalcError::Arity { .. }));
        assert!(matches!(err("(.)"), CalcError::UnexpectedChar('.')));
    }

    #[test]
    fn all_builtin_patterns_compile() {
        assert!(LEAD_IN.is_some());
        assert!(TRAILING.is_some());
        assert_eq!(REWRITES.len(), 28);
    }

    #[test]
    fn formatting_has_no_float_noise() {
        assert_eq!(format_number(427.5), "427.5");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(4.0), "4");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(-12.0), "-12");
        assert_eq!(format_number(479001600.0), "479001600");
        assert_eq!(format_number(1.0 / 3.0), "0.333333333333");
        assert_eq!(format_number(211.10897659720604), "211.108976597");
        assert_eq!(format_number(2f64.powi(60)), "1.15292150461e18");
        assert_eq!(format_number(1.5e-9), "1.5e-9");
        assert_eq!(clean_value(0.1 + 0.2), 0.3);
        assert_eq!(clean_value(427.49999999999994), 427.5);
    }

    #[tokio::test]
    async fn tool_output_shape() {
        let tool = CalculatorTool::new();
        let out = tool
            .call_json(json!({"expression": "15% of 2850"}))
            .await
            .unwrap();
        assert_eq!(
            out,
            json!({"expression": "15% of 2850", "value": 427.5, "result": "427.5",
                   "summary": "15% of 2850 = 427.5"})
        );
        let out = tool
            .call_json(json!({"expression": "What's 12 factorial?"}))
            .await
            .unwrap();
        assert_eq!(out["value"], json!(479001600.0));
        assert_eq!(out["summary"], "12 factorial = 479001600");
        let out = tool
            .call_json(json!({"expression": "sqrt of 44567"}))
            .await
            .unwrap();
        assert_eq!(out["summary"], "sqrt of 44567 = 211.108976597");
        let out = tool
            .call_json(json!({"expression": "0.1 + 0.2"}))
            .await
            .unwrap();
        assert_eq!(out["value"], json!(0.3));
    }

    #[tokio::test]
    async fn tool_errors_are_classified() {
        let tool = CalculatorTool::new();
        let e = tool
            .call_json(json!({"expression": "2 +"}))
            .await
            .unwrap_err();
        assert!(matches!(e, ToolError::InvalidArguments(_)), "{e:?}");
        let e = tool
            .call_json(json!({"expression": "1/0"}))
            .await
            .unwrap_err();
        assert_eq!(e, ToolError::Failed("division by zero".into()));
        let e = tool
            .call_json(json!({"expression": "9^9^9^9"}))
            .await
            .unwrap_err();
        assert_eq!(e, ToolError::Failed("result is not a finite number".into()));
        let e = tool
            .call_json(json!({"expression": "9".repeat(10_000)}))
            .await
            .unwrap_err();
        assert!(matches!(e, ToolError::InvalidArguments(m) if m.contains("too long")));
        let e = tool.call_json(json!({})).await.unwrap_err();
        assert!(matches!(e, ToolError::InvalidArguments(_)));
    }

    #[test]
    fn schema_requires_expression() {
        let spec = CalculatorTool::new().spec();
        assert_eq!(spec.name, "calculator");
        assert_eq!(spec.parameters["required"], json!(["expression"]));
        assert!(spec.parameters["properties"]["expression"]["description"].is_string());
    }
}
