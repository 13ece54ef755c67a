//! The keepalived front end: `keepalived.conf` text → [`Draft`] →
//! [`validate`](super::validate::validate), so keepalived users get the same rules,
//! defaults and messages as the native TOML.
//!
//! # Why a hand-written parser
//!
//! No maintained crate parses keepalived.conf, and its grammar is not a general format
//! (not TOML, not nginx's, not libconfig's): it is line-oriented, `!` and `#` start a
//! comment anywhere outside quotes, `"…"` groups words and glues onto adjacent text,
//! `include` splices files at any line start, and the meaning of a word depends on its
//! block. A small tokenizer and a recursive block parser (~one screen each) keep every
//! token's `line:col`, which a generic parser would not give us.
//!
//! # Stages
//!
//! 1. **Read** ([`Reader`]): lex each file into [`Lexed`] tokens and splice `include`d
//!    files (globs relative to the including file, cycles refused). Every file gets its
//!    own range of *virtual* line numbers in one [`SourceMap`], so a token's
//!    [`Location`] names its file without changing the model's `Location` type.
//! 2. **Parse** ([`parse_nodes`]): tokens → a tree of [`Node`]s, `keyword args… [{ … }]`.
//! 3. **Map** ([`Mapper`]; the load balancer's blocks in `keepalived_lb.rs`): nodes →
//!    [`Draft`], plus a warning for every keyword vipd does not implement (one per block,
//!    so an unsupported SMTP_CHECK `host` block is one warning).
//!    keepalived's defaults that differ from vipd's (VRRP version 2; the `vrrp_garp_*`
//!    globals) are applied here, as values with no location.
//! 4. **Validate**, then translate virtual locations back to `file:line:col`.
//!
//! No stage stops at its first error: an unterminated quote skips the rest of its line,
//! a stray brace or a bad `include` is skipped, a bad value leaves its key unset, and
//! validation still runs on what was read, so `vipd check` lists every mistake in one
//! run. Validation errors that only echo an earlier one ("missing" for a key whose value
//! was unreadable, "no instance" when a `vrrp_instance` block was broken) are dropped
//! ([`merge_errors`]).
//!
//! # Commands
//!
//! keepalived runs scripts through `/bin/sh -c`; vipd execs an argv without a shell. A
//! command line with shell syntax (`[[`, `&&`, `|`, `;`, `$`, redirections, …) becomes
//! `["/bin/bash", "-c", LINE]` with a warning, so it keeps working and `vipd convert`
//! shows exactly what runs; a plain command is split into argv as usual.

use std::path::{Path, PathBuf};

use super::draft::{
    Draft, DraftAnnounce, DraftAuthentication, DraftBfd, DraftCommand, DraftInitFile,
    DraftInstance, DraftScript, DraftSyncGroup, DraftTrackFile, DraftTrackedBfd,
    DraftTrackedScript, DraftVip, Sourced,
};
use super::{ConfigError, ConfigErrors, ConfigWarning, ErrorKind, Loaded, Location, WarningKind};

/// The shell a command with shell syntax runs in (the seed's `[[ … ]]` needs bash).
pub const SHELL: &str = "/bin/bash";

/// Deepest `include` nesting and block nesting accepted (keeps recursion bounded).
const MAX_DEPTH: usize = 32;

/// Whether `include` directives are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Includes {
    /// Read included files from the filesystem, relative to the including file.
    Follow,
    /// Treat every `include` as an error (text-only parsing: fuzzing, tests).
    Refuse,
}

/// What is wrong with a keepalived.conf, beyond what validation checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeepalivedError {
    /// A `"` with no closing `"` on the same line.
    #[error("unterminated quoted string (a quoted string ends on the line it starts)")]
    UnterminatedQuote,
    /// A `}` with no open block.
    #[error("unexpected `}}`: no block is open here")]
    UnexpectedClose,
    /// A `{` with no keyword before it.
    #[error("`{{` without a keyword before it")]
    OpenWithoutKeyword,
    /// A block that reaches the end of the file.
    #[error("block `{keyword}` opened here is never closed (missing `}}`)")]
    Unclosed {
        /// The block's keyword.
        keyword: String,
    },
    /// Blocks or includes nested deeper than [`MAX_DEPTH`].
    #[error("nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// A keyword with the wrong number of values.
    #[error("`{keyword}` takes {expected}, found {found}")]
    Arity {
        /// The keyword.
        keyword: String,
        /// What it takes, e.g. "one value".
        expected: &'static str,
        /// How many values were written.
        found: usize,
    },
    /// A keyword that needs a `{ … }` block.
    #[error("`{keyword}` needs a block: {keyword} {{ … }}")]
    BlockExpected {
        /// The keyword.
        keyword: String,
    },
    /// A keyword that takes values, written with a block.
    #[error("`{keyword}` takes a value, not a block")]
    BlockUnexpected {
        /// The keyword.
        keyword: String,
    },
    /// Not an integer.
    #[error("`{keyword}`: {text:?} is not an integer")]
    NotAnInteger {
        /// The keyword.
        keyword: String,
        /// The value as written.
        text: String,
    },
    /// Not a boolean.
    #[error("`{keyword}`: {text:?} is not one of on, off, true, false, yes, no")]
    NotABool {
        /// The keyword.
        keyword: String,
        /// The value as written.
        text: String,
    },
    /// An option word at the end of a line without its value.
    #[error("`{option}` needs a value")]
    OptionWithoutValue {
        /// The option.
        option: String,
    },
    /// `include` with no file name.
    #[error("`include` needs a file name or pattern")]
    IncludeWithoutFile,
    /// `include` while parsing text that has no file behind it.
    #[error("`include` is not available when parsing text without a file")]
    IncludeRefused,
    /// An included file that cannot be read.
    #[error("cannot read included file {path}: {reason}")]
    IncludeUnreadable {
        /// The path.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// A glob pattern that does not parse.
    #[error("bad include pattern {pattern:?}: {reason}")]
    IncludeBadPattern {
        /// The pattern as written.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// A file that (indirectly) includes itself.
    #[error("include cycle: {chain}")]
    IncludeCycle {
        /// The files involved, `a.conf -> b.conf -> a.conf`.
        chain: String,
    },
}

/// What vipd ignores in a keepalived.conf, and says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeepalivedWarning {
    /// A keepalived keyword vipd does not implement (yet).
    #[error("`{keyword}`{span} is not implemented by vipd yet; ignored{note}")]
    NotImplemented {
        /// The keyword (with its arguments for top-level blocks).
        keyword: String,
        /// Where a top-level block spans, ` (lines 40-71)`, or empty.
        span: String,
        /// What that means, starting with "; " or " (" — or empty.
        note: String,
    },
    /// A keyword keepalived does not know either (a typo?).
    #[error("unknown keyword `{keyword}`; ignored")]
    UnknownKeyword {
        /// The keyword.
        keyword: String,
    },
    /// A command with shell syntax, run through bash.
    #[error(
        "script uses shell syntax; runs via {SHELL} -c (a plain command is exec'd without a \
         shell); consider a script file or an argv"
    )]
    ShellCommand,
    /// An `include` glob that matches no file.
    #[error("include pattern {pattern:?} matches no file")]
    IncludeNoMatch {
        /// The pattern as written.
        pattern: String,
    },
}

/// Parses and validates keepalived.conf text. `file_name` is used in messages and, with
/// [`Includes::Follow`], as the base for relative `include` paths.
pub fn parse_keepalived(
    text: &str,
    file_name: &str,
    includes: Includes,
) -> Result<Loaded, ConfigErrors> {
    let mut reader = Reader {
        includes,
        map: SourceMap::default(),
        stack: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let main_path = Path::new(file_name);
    let tokens = reader.read(file_name, main_path, text, 0);
    let map = reader.map;
    let mut warnings = reader.warnings;
    // Syntax and include errors: each is reported and reading goes on, so the rest of
    // the file is still checked.
    let mut structural = reader.errors;
    let nodes = parse_nodes(&tokens, file_name, &mut structural);
    let mut mapper = Mapper {
        file: file_name.to_owned(),
        map: &map,
        draft: Draft {
            file: file_name.to_owned(),
            ..Draft::default()
        },
        defaults: InstanceDefaults::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    mapper.file_nodes(&nodes);
    mapper.apply_defaults();
    mapper.draft.end = map.end_of_main();
    warnings.append(&mut mapper.warnings);
    let validated = super::validate::validate(&mapper.draft);
    let (loaded, invalid) = match validated {
        Ok(loaded) => (Some(loaded), Vec::new()),
        Err(invalid) => {
            warnings.extend(invalid.warnings);
            (None, invalid.errors)
        }
    };
    if structural.is_empty() && mapper.errors.is_empty() {
        if let Some(mut loaded) = loaded {
            warnings.append(&mut loaded.warnings);
            loaded.warnings = map.warnings(warnings);
            return Ok(loaded);
        }
        return Err(map.errors(invalid, warnings));
    }
    if let Some(mut loaded) = loaded {
        warnings.append(&mut loaded.warnings);
    }
    let errors = merge_errors(&nodes, structural, mapper.errors, invalid);
    Err(map.errors(errors, warnings))
}

/// One list of every error, in file order, from the three stages: syntax and includes
/// (`structural`), keyword values (`mapped`) and validation of what could be read
/// (`validated`). A validation error that only echoes an earlier one is dropped, so each
/// mistake is reported once:
/// * "missing required key" for a block that has an earlier error inside it (the key was
///   probably written, wrongly);
/// * "no instance defined" when a `vrrp_instance` block could not be read, or the file
///   itself could not be (it may have held the instances);
/// * anything else on a line that already has a syntax error.
fn merge_errors(
    nodes: &[Node],
    structural: Vec<ConfigError>,
    mapped: Vec<ConfigError>,
    validated: Vec<ConfigError>,
) -> Vec<ConfigError> {
    let earlier: Vec<Location> = structural
        .iter()
        .chain(&mapped)
        .filter_map(|e| e.location)
        .collect();
    // A block's name (where validation points "missing" errors) → whether an earlier
    // error lies between its keyword and its `}` (or the end, when unclosed).
    let damaged: Vec<Location> = nodes
        .iter()
        .filter(|node| node.block.is_some())
        .filter(|node| {
            let start = node.at();
            earlier
                .iter()
                .any(|at| *at >= start && node.close.is_none_or(|close| *at <= close))
        })
        .filter_map(|node| node.args().first().map(|name| name.at))
        .collect();
    let had_instance_block = nodes.iter().any(|n| n.keyword() == "vrrp_instance");
    let structural_lines: Vec<usize> = structural
        .iter()
        .filter_map(|e| e.location.map(|l| l.line))
        .collect();
    let echoes = |e: &ConfigError| match e.kind {
        ErrorKind::Missing { .. } => e.location.is_some_and(|at| damaged.contains(&at)),
        ErrorKind::NoInstances => had_instance_block || !structural.is_empty(),
        _ => false,
    };
    let validated: Vec<ConfigError> = validated.into_iter().filter(|e| !echoes(e)).collect();
    let mut errors: Vec<ConfigError> = mapped
        .into_iter()
        .chain(validated)
        .filter(|e| {
            e.location
                .is_none_or(|at| !structural_lines.contains(&at.line))
        })
        .collect();
    errors.extend(structural);
    errors.sort_by_key(|e| e.location);
    errors
}

/// Whether `text` (read from `path`) looks like keepalived.conf rather than TOML: a
/// `.conf` name, or a line starting with a keepalived top-level keyword not followed by
/// `=`.
pub fn looks_like_keepalived(path: &Path, text: &str) -> bool {
    if path.extension().is_some_and(|ext| ext == "conf") {
        return true;
    }
    text.lines().any(|line| {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        let second = words.next().unwrap_or("");
        matches!(
            first,
            "global_defs"
                | "vrrp_instance"
                | "vrrp_script"
                | "vrrp_sync_group"
                | "vrrp_track_file"
                | "virtual_server"
                | "virtual_server_group"
                | "include"
        ) && !second.starts_with('=')
    })
}

// ---- source map: virtual lines → file:line ----

/// One file's slice of the virtual line space.
#[derive(Debug)]
struct SourceFile {
    name: String,
    /// Virtual line of this file's line 1, minus one.
    base: usize,
    /// Lines in the file (at least 1).
    lines: usize,
}

/// Every file read, in the order read; the first is the main file.
#[derive(Debug, Default)]
struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// Registers a file and returns its base.
    fn add(&mut self, name: &str, text: &str) -> usize {
        let base = self.files.last().map_or(0, |f| f.base + f.lines);
        self.files.push(SourceFile {
            name: name.to_owned(),
            base,
            lines: text.matches('\n').count() + 1,
        });
        base
    }

    /// The file and real location of a virtual location.
    fn resolve(&self, at: Location) -> Option<(&str, Location)> {
        let file = self
            .files
            .iter()
            .find(|f| at.line > f.base && at.line <= f.base + f.lines)?;
        Some((
            &file.name,
            Location {
                line: at.line - file.base,
                column: at.column,
            },
        ))
    }

    fn end_of_main(&self) -> Option<Location> {
        self.files.first().map(|f| Location {
            line: f.lines,
            column: 1,
        })
    }

    fn relocate(&self, file: &mut String, location: &mut Option<Location>) {
        if let Some((name, at)) = location.and_then(|at| self.resolve(at)) {
            *file = name.to_owned();
            *location = Some(at);
        }
    }

    fn warnings(&self, mut warnings: Vec<ConfigWarning>) -> Vec<ConfigWarning> {
        for w in &mut warnings {
            self.relocate(&mut w.file, &mut w.location);
        }
        warnings
    }

    fn errors(&self, mut errors: Vec<ConfigError>, warnings: Vec<ConfigWarning>) -> ConfigErrors {
        for e in &mut errors {
            self.relocate(&mut e.file, &mut e.location);
        }
        ConfigErrors {
            errors,
            warnings: self.warnings(warnings),
        }
    }
}

// ---- lexer ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A word; `quoted` if any part of it was in `"…"`.
    Word {
        text: String,
        quoted: bool,
    },
    Open,
    Close,
    Newline,
}

#[derive(Debug, Clone)]
struct Lexed {
    token: Token,
    at: Location,
}

/// Splits one file into tokens; lines are numbered from `base + 1`. An unterminated quote
/// is reported in `errors` and the rest of its line skipped, so lexing goes on.
fn lex(text: &str, base: usize, errors: &mut Vec<(Location, KeepalivedError)>) -> Vec<Lexed> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut column) = (base + 1, 0usize);
    let mut word: Option<(String, bool, Location)> = None;
    let flush = |word: &mut Option<(String, bool, Location)>, out: &mut Vec<Lexed>| {
        if let Some((text, quoted, at)) = word.take() {
            out.push(Lexed {
                token: Token::Word { text, quoted },
                at,
            });
        }
    };
    while let Some(c) = chars.next() {
        column += 1;
        let here = Location { line, column };
        match c {
            '\n' => {
                flush(&mut word, &mut out);
                out.push(Lexed {
                    token: Token::Newline,
                    at: here,
                });
                line += 1;
                column = 0;
            }
            // A backslash before the newline continues the line.
            '\\' if chars.peek() == Some(&'\n') => {
                flush(&mut word, &mut out);
                chars.next();
                line += 1;
                column = 0;
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            '#' | '!' => {
                flush(&mut word, &mut out);
                while chars.next_if(|&c| c != '\n').is_some() {}
            }
            '{' | '}' => {
                flush(&mut word, &mut out);
                out.push(Lexed {
                    token: if c == '{' { Token::Open } else { Token::Close },
                    at: here,
                });
            }
            '"' => {
                let entry = word.get_or_insert_with(|| (String::new(), true, here));
                entry.1 = true;
                let mut terminated = false;
                while let Some(c) = chars.next_if(|&c| c != '\n') {
                    column += 1;
                    match c {
                        '"' => {
                            terminated = true;
                            break;
                        }
                        '\\' => {
                            let Some(escaped) = chars.next_if(|&c| c != '\n') else {
                                break;
                            };
                            column += 1;
                            entry.0.push(unescape(escaped));
                        }
                        c => entry.0.push(c),
                    }
                }
                if !terminated {
                    // The half-read word is dropped; the next line starts afresh.
                    errors.push((here, KeepalivedError::UnterminatedQuote));
                    word = None;
                }
            }
            c => word
                .get_or_insert_with(|| (String::new(), false, here))
                .0
                .push(c),
        }
    }
    flush(&mut word, &mut out);
    out.push(Lexed {
        token: Token::Newline,
        at: Location {
            line,
            column: column + 1,
        },
    });
    out
}

/// C-style escapes inside `"…"`; any other character stands for itself (`\\`, `\"`).
fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        'E' | 'e' => '\u{1b}',
        c => c,
    }
}

// ---- reader: files and includes ----

struct Reader {
    includes: Includes,
    map: SourceMap,
    /// Canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
    warnings: Vec<ConfigWarning>,
    /// Lexing and include errors; reading goes on after each (a bad include is skipped).
    errors: Vec<ConfigError>,
}

impl Reader {
    fn error(&self, at: Location, kind: KeepalivedError) -> Box<ConfigError> {
        Box::new(ConfigError {
            file: String::new(),
            location: Some(at),
            key: String::new(),
            kind: ErrorKind::Keepalived(kind),
        })
    }

    /// Lexes `text` (the contents of `path`) and splices its includes. Errors go to
    /// [`Self::errors`].
    fn read(&mut self, name: &str, path: &Path, text: &str, depth: usize) -> Vec<Lexed> {
        let base = self.map.add(name, text);
        let mut lex_errors = Vec::new();
        let tokens = lex(text, base, &mut lex_errors);
        for (at, kind) in lex_errors {
            let error = self.error(at, kind);
            self.errors.push(*error);
        }
        self.stack
            .push(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()));
        let result = self.splice_includes(tokens, path, depth);
        self.stack.pop();
        result
    }

    /// Replaces each `include` line with the tokens of the files it names; a bad
    /// `include` is reported and skipped.
    fn splice_includes(&mut self, tokens: Vec<Lexed>, path: &Path, depth: usize) -> Vec<Lexed> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut iter = tokens.into_iter().peekable();
        let mut line_start = true;
        while let Some(lexed) = iter.next() {
            let is_include = line_start
                && matches!(&lexed.token, Token::Word { text, quoted: false } if text == "include");
            line_start = lexed.token == Token::Newline;
            if !is_include {
                out.push(lexed);
                continue;
            }
            let mut patterns = Vec::new();
            let mut brace = None;
            while let Some(next) = iter.next_if(|t| t.token != Token::Newline) {
                match next.token {
                    Token::Word { text, .. } => patterns.push(text),
                    Token::Open | Token::Close => brace = brace.or(Some(next.at)),
                    Token::Newline => {}
                }
            }
            if let Some(at) = brace {
                let error = self.error(
                    at,
                    KeepalivedError::Arity {
                        keyword: "include".into(),
                        expected: "file names, not a block",
                        found: patterns.len(),
                    },
                );
                self.errors.push(*error);
                continue;
            }
            if patterns.is_empty() {
                let error = self.error(lexed.at, KeepalivedError::IncludeWithoutFile);
                self.errors.push(*error);
                continue;
            }
            for pattern in patterns {
                match self.include(&pattern, path, lexed.at, depth) {
                    Ok(tokens) => out.extend(tokens),
                    Err(error) => self.errors.push(*error),
                }
            }
        }
        out
    }

    /// The tokens of every file `pattern` names, in sorted order.
    fn include(
        &mut self,
        pattern: &str,
        including: &Path,
        at: Location,
        depth: usize,
    ) -> Result<Vec<Lexed>, Box<ConfigError>> {
        if self.includes == Includes::Refuse {
            return Err(self.error(at, KeepalivedError::IncludeRefused));
        }
        if depth >= MAX_DEPTH {
            return Err(self.error(at, KeepalivedError::TooDeep));
        }
        let dir = including.parent().unwrap_or_else(|| Path::new(""));
        let full = if Path::new(pattern).is_absolute() || dir.as_os_str().is_empty() {
            pattern.to_owned()
        } else {
            format!(
                "{}/{pattern}",
                glob::Pattern::escape(&dir.to_string_lossy())
            )
        };
        let files: Vec<PathBuf> = if pattern.contains(['*', '?', '[']) {
            let paths = glob::glob(&full).map_err(|e| {
                self.error(
                    at,
                    KeepalivedError::IncludeBadPattern {
                        pattern: pattern.to_owned(),
                        reason: e.msg.to_owned(),
                    },
                )
            })?;
            let files: Vec<PathBuf> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if files.is_empty() {
                self.warnings.push(ConfigWarning {
                    file: String::new(),
                    location: Some(at),
                    key: "include".into(),
                    kind: WarningKind::Keepalived(KeepalivedWarning::IncludeNoMatch {
                        pattern: pattern.to_owned(),
                    }),
                });
            }
            files
        } else {
            let dir_unescaped = if Path::new(pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                dir.join(pattern)
            };
            vec![dir_unescaped]
        };
        let mut out = Vec::new();
        for file in files {
            let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if let Some(first) = self.stack.iter().position(|p| *p == canonical) {
                let mut chain: Vec<String> = self.stack[first..]
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                chain.push(canonical.display().to_string());
                return Err(self.error(
                    at,
                    KeepalivedError::IncludeCycle {
                        chain: chain.join(" -> "),
                    },
                ));
            }
            let text = std::fs::read_to_string(&file).map_err(|e| {
                self.error(
                    at,
                    KeepalivedError::IncludeUnreadable {
                        path: file.display().to_string(),
                        reason: e.to_string(),
                    },
                )
            })?;
            let name = file.display().to_string();
            out.extend(self.read(&name, &file, &text, depth + 1));
        }
        Ok(out)
    }
}

// ---- parser: tokens → nodes ----

/// One word as written.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    at: Location,
}

impl Word {
    fn sourced(&self) -> Sourced<String> {
        Sourced::new(self.text.clone(), Some(self.at))
    }
}

/// `keyword args… [{ children }]`.
#[derive(Debug, Clone)]
struct Node {
    /// The keyword and its arguments; never empty.
    words: Vec<Word>,
    /// The block's children, when the line opens one.
    block: Option<Vec<Node>>,
    /// Where the block's `}` is.
    close: Option<Location>,
}

impl Node {
    fn keyword(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    fn at(&self) -> Location {
        self.words
            .first()
            .map_or(Location { line: 1, column: 1 }, |w| w.at)
    }

    fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }
}

/// Tokens → nodes. A misplaced brace or an unclosed block is reported in `errors` and
/// parsing goes on, so one run finds every such mistake.
fn parse_nodes(tokens: &[Lexed], file: &str, errors: &mut Vec<ConfigError>) -> Vec<Node> {
    let mut pos = 0;
    let mut found = Vec::new();
    let (nodes, _) = parse_block(tokens, &mut pos, None, 0, &mut found);
    errors.extend(found.into_iter().map(|(at, kind)| ConfigError {
        file: file.to_owned(),
        location: Some(at),
        key: String::new(),
        kind: ErrorKind::Keepalived(kind),
    }));
    nodes
}

/// Parses statements until the `}` closing `open` (or the end, at top level). Errors go
/// to `errors`: a stray `}` is skipped, a `{` without a keyword has its block skipped, and
/// an unclosed block ends at the end of the input.
fn parse_block(
    tokens: &[Lexed],
    pos: &mut usize,
    open: Option<(&Word, Location)>,
    depth: usize,
    errors: &mut Vec<(Location, KeepalivedError)>,
) -> (Vec<Node>, Option<Location>) {
    if depth > MAX_DEPTH {
        let at = open.map_or(Location { line: 1, column: 1 }, |(_, at)| at);
        errors.push((at, KeepalivedError::TooDeep));
        return (Vec::new(), skip_block(tokens, pos));
    }
    let mut nodes = Vec::new();
    loop {
        let Some(lexed) = tokens.get(*pos) else {
            if let Some((keyword, _)) = open {
                errors.push((
                    keyword.at,
                    KeepalivedError::Unclosed {
                        keyword: keyword.text.clone(),
                    },
                ));
            }
            return (nodes, None);
        };
        match &lexed.token {
            Token::Newline => *pos += 1,
            Token::Close if open.is_some() => {
                *pos += 1;
                return (nodes, Some(lexed.at));
            }
            Token::Close => {
                errors.push((lexed.at, KeepalivedError::UnexpectedClose));
                *pos += 1;
            }
            Token::Open => {
                errors.push((lexed.at, KeepalivedError::OpenWithoutKeyword));
                *pos += 1;
                skip_block(tokens, pos);
            }
            Token::Word { .. } => {
                let mut words = Vec::new();
                while let Some(Lexed {
                    token: Token::Word { text, .. },
                    at,
                }) = tokens.get(*pos)
                {
                    words.push(Word {
                        text: text.clone(),
                        at: *at,
                    });
                    *pos += 1;
                }
                // A `{` may follow on the next line.
                let mut look = *pos;
                while tokens.get(look).is_some_and(|t| t.token == Token::Newline) {
                    look += 1;
                }
                let (block, close) = match tokens.get(look) {
                    Some(Lexed {
                        token: Token::Open,
                        at,
                    }) => {
                        *pos = look + 1;
                        let keyword = words.first().cloned().unwrap_or(Word {
                            text: String::new(),
                            at: *at,
                        });
                        let (children, close) =
                            parse_block(tokens, pos, Some((&keyword, *at)), depth + 1, errors);
                        (Some(children), close)
                    }
                    _ => (None, None),
                };
                nodes.push(Node {
                    words,
                    block,
                    close,
                });
            }
        }
    }
}

/// Moves `pos` past the `}` that closes the block whose `{` is just before it, nested
/// blocks included; returns where that `}` is (`None` at the end of the input).
fn skip_block(tokens: &[Lexed], pos: &mut usize) -> Option<Location> {
    let mut depth = 0usize;
    while let Some(lexed) = tokens.get(*pos) {
        *pos += 1;
        match lexed.token {
            Token::Open => depth += 1,
            Token::Close if depth == 0 => return Some(lexed.at),
            Token::Close => depth -= 1,
            _ => {}
        }
    }
    None
}

// ---- mapper: nodes → Draft ----

/// keepalived's `global_defs` defaults for instances, applied after the whole file is
/// read (global_defs may come after the instances).
#[derive(Default)]
struct InstanceDefaults {
    version: Option<Sourced<i64>>,
    garp_master_delay: Option<Sourced<String>>,
    garp_master_repeat: Option<Sourced<i64>>,
    garp_master_refresh: Option<Sourced<String>>,
    garp_interval: Option<Sourced<String>>,
    smtp_alert_vrrp: Option<Sourced<bool>>,
    v3_checksum: Option<Sourced<String>>,
}

/// keepalived's default `vrrp_version` (vipd's own default is 3).
const KEEPALIVED_DEFAULT_VERSION: i64 = 2;

struct Mapper<'a> {
    file: String,
    map: &'a SourceMap,
    draft: Draft,
    defaults: InstanceDefaults,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

/// Known keepalived keywords vipd does not implement, per context, with what it means.
const GLOBAL_UNSUPPORTED: &[(&str, &str)] = &[
    ("vrrp_strict", "; vipd does not enforce strict RFC mode"),
    ("enable_script_security", "; scripts run as vipd's user"),
    ("script_user", "; scripts run as vipd's user"),
    ("vrrp_skip_check_adv_addr", ""),
    ("vrrp_iptables", "; vipd installs no firewall rules"),
    ("vrrp_mcast_group4", "; adverts go to 224.0.0.18"),
    ("vrrp_mcast_group6", "; adverts go to ff02::12"),
    ("vrrp_garp_master_refresh_repeat", ""),
    ("vrrp_garp_lower_prio_delay", ""),
    ("vrrp_garp_lower_prio_repeat", ""),
    ("vrrp_lower_prio_no_advert", ""),
    ("vrrp_higher_prio_send_advert", ""),
    ("vrrp_priority", ""),
    ("vrrp_no_swap", ""),
    ("checker_no_swap", ""),
    ("smtp_helo_name", ""),
    ("notify_fifo", ""),
    ("vrrp_notify_fifo", ""),
    ("dynamic_interfaces", ""),
    ("enable_traps", " (SNMP)"),
    ("snmp_socket", " (SNMP)"),
    ("enable_dbus", ""),
    ("max_auto_priority", ""),
];

const INSTANCE_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "dont_track_primary",
        "; the instance's own interface is still watched",
    ),
    (
        "virtual_ipaddress_excluded",
        "; these addresses are NOT added",
    ),
    ("track_process", ""),
    ("use_vmac_addr", "; VIPs on other interfaces get no VMAC"),
    ("native_ipv6", ""),
    (
        "mcast_src_ip",
        "; adverts use the interface's primary address",
    ),
    ("virtual_routes", "; the routes are NOT added"),
    ("virtual_rules", "; the rules are NOT added"),
    ("lvs_sync_daemon_interface", " (LVS)"),
    ("strict_mode", ""),
    ("notify_master_rx_lower_pri", ""),
    ("notify_deleted", ""),
    ("debug", ""),
    ("garp_lower_prio_delay", ""),
    ("garp_lower_prio_repeat", ""),
    ("garp_master_refresh_repeat", ""),
    ("lower_prio_no_advert", ""),
    ("higher_prio_send_advert", ""),
    ("skip_check_adv_addr", ""),
    ("check_unicast_src", ""),
    ("unicast_ttl", ""),
    ("old_unicast_checksum", ""),
    ("kernel_rx_buf_size", ""),
];

const TOP_UNSUPPORTED: &[(&str, &str)] = &[
    ("vrrp_track_process", ""),
    ("static_ipaddress", "; the addresses are NOT added"),
    ("static_routes", "; the routes are NOT added"),
    ("static_rules", "; the rules are NOT added"),
    ("linkbeat_interfaces", ""),
    ("garp_group", ""),
    ("net_namespace", ""),
    ("instance", ""),
];

const SYNC_GROUP_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "track_interface",
        "; track it in each member instance instead (a member's FAULT faults the group)",
    ),
    (
        "track_script",
        "; track it in each member instance instead (a member's FAULT faults the group)",
    ),
    (
        "track_file",
        "; track it in each member instance instead (a member's FAULT faults the group)",
    ),
    ("track_process", ""),
    ("track_bfd", " (BFD)"),
    ("notify_deleted", ""),
    ("notify_priority_changes", ""),
];

/// Whether a keepalived command line needs a shell to mean what it says.
pub fn uses_shell_syntax(line: &str) -> bool {
    line.contains(['|', '&', ';', '<', '>', '$', '`', '(', ')', '*', '?'])
        || line.split_whitespace().any(|w| w == "[[" || w == "]]")
}

impl Mapper<'_> {
    fn error(&mut self, at: Location, kind: KeepalivedError) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            location: Some(at),
            key: String::new(),
            kind: ErrorKind::Keepalived(kind),
        });
    }

    fn warn(&mut self, at: Location, key: &str, kind: KeepalivedWarning) {
        self.warnings.push(ConfigWarning {
            file: self.file.clone(),
            location: Some(at),
            key: key.to_owned(),
            kind: WarningKind::Keepalived(kind),
        });
    }

    /// Warns about `node` being ignored: known-but-unimplemented if it is in `table`,
    /// unknown otherwise. A block is one warning, however large.
    fn ignored(&mut self, node: &Node, context: &str, table: &[(&str, &str)]) {
        let keyword = node.keyword();
        let key = if context.is_empty() {
            keyword.to_owned()
        } else {
            format!("{context}.{keyword}")
        };
        let known = table.iter().find(|(k, _)| *k == keyword).map(|(_, n)| *n);
        let family = ["lvs_", "snmp_", "enable_snmp", "bfd_", "checker_"]
            .iter()
            .any(|prefix| keyword.starts_with(prefix));
        let span = if context.is_empty() {
            self.block_span(node)
        } else {
            String::new()
        };
        let kind = match known {
            Some(note) => {
                let note = note.to_owned();
                let shown = if context.is_empty() {
                    node.words
                        .iter()
                        .map(|w| w.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    keyword.to_owned()
                };
                KeepalivedWarning::NotImplemented {
                    keyword: shown,
                    note,
                    span,
                }
            }
            None if family => KeepalivedWarning::NotImplemented {
                keyword: keyword.to_owned(),
                note: String::new(),
                span,
            },
            None => KeepalivedWarning::UnknownKeyword {
                keyword: keyword.to_owned(),
            },
        };
        self.warn(node.at(), &key, kind);
    }

    /// ` (lines A-B)` for a block in one file, from its keyword to its `}`.
    fn block_span(&self, node: &Node) -> String {
        let (Some(open), Some(close)) = (self.map.resolve(node.at()), node.close) else {
            return String::new();
        };
        match self.map.resolve(close) {
            Some((file, close)) if file == open.0 => {
                format!(" (lines {}-{})", open.1.line, close.line)
            }
            _ => String::new(),
        }
    }

    /// Exactly `n` arguments and no block.
    fn args<'n>(&mut self, node: &'n Node, n: usize, expected: &'static str) -> Option<&'n [Word]> {
        if node.block.is_some() {
            self.error(
                node.at(),
                KeepalivedError::BlockUnexpected {
                    keyword: node.keyword().into(),
                },
            );
            return None;
        }
        if node.args().len() != n {
            self.error(
                node.at(),
                KeepalivedError::Arity {
                    keyword: node.keyword().into(),
                    expected,
                    found: node.args().len(),
                },
            );
            return None;
        }
        Some(node.args())
    }

    fn text(&mut self, node: &Node) -> Option<Sourced<String>> {
        self.args(node, 1, "one value")
            .and_then(|a| a.first())
            .map(Word::sourced)
    }

    fn int_word(&mut self, keyword: &str, word: &Word) -> Option<Sourced<i64>> {
        match word.text.parse::<i64>() {
            Ok(value) => Some(Sourced::new(value, Some(word.at))),
            Err(_) => {
                self.error(
                    word.at,
                    KeepalivedError::NotAnInteger {
                        keyword: keyword.into(),
                        text: word.text.clone(),
                    },
                );
                None
            }
        }
    }

    /// `weight W [reverse]` of a vrrp_script or vrrp_track_file: the weight (`None`
    /// inside when W is not an integer), with a warning for the unsupported flag after
    /// it (`note` says what happens instead). `None` when the line is malformed (no
    /// value, or a block): the error is reported and the weight is left as it was.
    fn weight_with_flags(
        &mut self,
        node: &Node,
        context: &str,
        note: String,
    ) -> Option<Option<Sourced<i64>>> {
        let [w, rest @ ..] = node.args() else {
            self.int(node);
            return None;
        };
        if node.block.is_some() {
            self.int(node);
            return None;
        }
        let weight = self.int_word("weight", w);
        if let Some(extra) = rest.first() {
            self.warn(
                extra.at,
                &format!("{context}.weight"),
                KeepalivedWarning::NotImplemented {
                    keyword: extra.text.clone(),
                    note,
                    span: String::new(),
                },
            );
        }
        Some(weight)
    }

    fn int(&mut self, node: &Node) -> Option<Sourced<i64>> {
        let word = self.args(node, 1, "one integer")?.first()?.clone();
        self.int_word(node.keyword(), &word)
    }

    /// A keyword alone means true; `on|off|true|false|yes|no` may follow.
    /// keepalived `v3_checksum_as_v2 [BOOL]`: the VRRPv3 IPv4 checksum without the
    /// pseudo-header (vipd's `v3_checksum = "message_only"`); `false` keeps it.
    fn v3_checksum_as_v2(&mut self, node: &Node) -> Option<Sourced<String>> {
        self.flag(node).map(|flag| {
            let form = if flag.value {
                "message_only"
            } else {
                "pseudo_header"
            };
            Sourced::new(form.to_owned(), flag.at)
        })
    }

    fn flag(&mut self, node: &Node) -> Option<Sourced<bool>> {
        if node.args().is_empty() && node.block.is_none() {
            return Some(Sourced::new(true, Some(node.at())));
        }
        let word = self
            .args(node, 1, "no value or one boolean")?
            .first()?
            .clone();
        let value = match word.text.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => true,
            "off" | "false" | "no" => false,
            _ => {
                self.error(
                    word.at,
                    KeepalivedError::NotABool {
                        keyword: node.keyword().into(),
                        text: word.text.clone(),
                    },
                );
                return None;
            }
        };
        Some(Sourced::new(value, Some(word.at)))
    }

    fn block<'n>(&mut self, node: &'n Node) -> Option<&'n [Node]> {
        match &node.block {
            Some(block) => Some(block),
            None => {
                self.error(
                    node.at(),
                    KeepalivedError::BlockExpected {
                        keyword: node.keyword().into(),
                    },
                );
                None
            }
        }
    }

    /// `KEYWORD NAME { … }`: the name and the block.
    fn named_block<'n>(&mut self, node: &'n Node) -> Option<(Sourced<String>, &'n [Node])> {
        let block = self.block(node)?;
        match node.args() {
            [name] => Some((name.sourced(), block)),
            args => {
                self.error(
                    node.at(),
                    KeepalivedError::Arity {
                        keyword: node.keyword().into(),
                        expected: "one name",
                        found: args.len(),
                    },
                );
                None
            }
        }
    }

    /// A command: the first word (usually quoted) is the command line; keepalived reads
    /// further words as the user (and group) to run it as, which vipd does not do.
    fn command(
        &mut self,
        node: &Node,
        key: &str,
        appends_args: bool,
    ) -> Option<Sourced<DraftCommand>> {
        if node.block.is_some() || node.args().is_empty() {
            self.args(node, 1, "a command");
            return None;
        }
        let (line, rest) = node.args().split_first()?;
        if let Some(user) = rest.first() {
            self.warn(
                user.at,
                key,
                KeepalivedWarning::NotImplemented {
                    keyword: "run-as user".into(),
                    note: format!("; {:?} runs as vipd's user", line.text),
                    span: String::new(),
                },
            );
        }
        let command = if uses_shell_syntax(&line.text) {
            self.warn(line.at, key, KeepalivedWarning::ShellCommand);
            let mut argv = vec![SHELL.to_owned(), "-c".to_owned(), line.text.clone()];
            if appends_args {
                // `notify` gets INSTANCE NAME STATE PRIORITY appended; pass them on as
                // "$@" the way /bin/sh -c "LINE ARGS" saw them in keepalived.
                argv[2].push_str(" \"$@\"");
                argv.push("vipd-notify".to_owned());
            }
            DraftCommand::Argv(argv)
        } else {
            DraftCommand::Line(line.text.clone())
        };
        Some(Sourced::new(command, Some(line.at)))
    }

    fn file_nodes(&mut self, nodes: &[Node]) {
        for node in nodes {
            match node.keyword() {
                "global_defs" => {
                    if let Some(block) = self.block(node) {
                        self.global(block);
                    }
                }
                "vrrp_script" => {
                    if let Some((name, block)) = self.named_block(node) {
                        self.script(name, block);
                    }
                }
                "vrrp_instance" => {
                    if let Some((name, block)) = self.named_block(node) {
                        self.instance(name, block);
                    }
                }
                "vrrp_sync_group" => {
                    if let Some((name, block)) = self.named_block(node) {
                        self.sync_group(name, block);
                    }
                }
                "bfd_instance" => {
                    if let Some((name, block)) = self.named_block(node) {
                        self.bfd_instance(name, block);
                    }
                }
                // `vrrp_track_file` is keepalived's older, deprecated name.
                "track_file" | "vrrp_track_file" => {
                    if let Some((name, block)) = self.named_block(node) {
                        self.track_file(name, block);
                    }
                }
                "virtual_server" => self.virtual_server(node),
                "virtual_server_group" => {
                    if let Some((name, block)) = self.named_block(node) {
                        self.virtual_server_group(name, block);
                    }
                }
                _ => self.ignored(node, "", TOP_UNSUPPORTED),
            }
        }
    }

    fn global(&mut self, block: &[Node]) {
        for node in block {
            match node.keyword() {
                "router_id" => self.draft.global.router_id = self.text(node),
                "notification_email" => {
                    if let Some(entries) = self.block(node) {
                        let emails = entries
                            .iter()
                            .flat_map(|e| e.words.iter().map(Word::sourced));
                        self.draft.global.notification_email.extend(emails);
                    }
                }
                "notification_email_from" => {
                    self.draft.global.notification_email_from = self.text(node);
                }
                "smtp_server" => match node.args() {
                    [server] if node.block.is_none() => {
                        self.draft.global.smtp_server = Some(server.sourced());
                    }
                    [server, port] if node.block.is_none() => {
                        self.draft.global.smtp_server = Some(server.sourced());
                        self.draft.global.smtp_port = self.int_word("smtp_server", port);
                    }
                    _ => {
                        self.args(node, 1, "a server and an optional port");
                    }
                },
                "smtp_connect_timeout" => {
                    self.draft.global.smtp_connect_timeout = self.text(node);
                }
                "vrrp_rt_priority" => self.draft.global.realtime_priority = self.int(node),
                "smtp_alert" => self.draft.global.smtp_alert = self.flag(node),
                // Wins over `smtp_alert` for VRRP, wherever it is written.
                "smtp_alert_vrrp" => self.defaults.smtp_alert_vrrp = self.flag(node),
                "v3_checksum_as_v2" => self.defaults.v3_checksum = self.v3_checksum_as_v2(node),
                "vrrp_version" => self.defaults.version = self.int(node),
                "vrrp_garp_master_delay" => self.defaults.garp_master_delay = self.text(node),
                "vrrp_garp_master_repeat" => self.defaults.garp_master_repeat = self.int(node),
                "vrrp_garp_master_refresh" => self.defaults.garp_master_refresh = self.text(node),
                "vrrp_garp_interval" | "vrrp_gna_interval" => {
                    self.defaults.garp_interval = self.text(node);
                }
                _ => self.ignored(node, "global_defs", GLOBAL_UNSUPPORTED),
            }
        }
    }

    fn script(&mut self, name: Sourced<String>, block: &[Node]) {
        let context = format!("vrrp_script.{}", name.value);
        let mut script = DraftScript {
            name,
            script: None,
            interval: None,
            timeout: None,
            weight: None,
            rise: None,
            fall: None,
        };
        for node in block {
            match node.keyword() {
                "script" => {
                    // keepalived joins unquoted words: `script /bin/check arg`.
                    if node.block.is_none() && node.args().len() > 1 {
                        let joined = node
                            .args()
                            .iter()
                            .map(|w| w.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" ");
                        let first = node.args().first().map_or(node.at(), |w| w.at);
                        let merged = Node {
                            words: vec![
                                node.words.first().cloned().unwrap_or(Word {
                                    text: "script".into(),
                                    at: first,
                                }),
                                Word {
                                    text: joined,
                                    at: first,
                                },
                            ],
                            block: None,
                            close: None,
                        };
                        script.script = self.command(&merged, &context, false);
                    } else {
                        script.script = self.command(node, &context, false);
                    }
                }
                "interval" => script.interval = self.text(node),
                "timeout" => script.timeout = self.text(node),
                "weight" => {
                    if let Some(weight) = self.weight_with_flags(node, &context, String::new()) {
                        script.weight = weight;
                    }
                }
                "rise" => script.rise = self.int(node),
                "fall" => script.fall = self.int(node),
                "user" => self.ignored(
                    node,
                    &context,
                    &[("user", "; the script runs as vipd's user")],
                ),
                "init_fail" => self.ignored(node, &context, &[("init_fail", "")]),
                _ => self.ignored(node, &context, &[]),
            }
        }
        self.draft.scripts.push(script);
    }

    fn sync_group(&mut self, name: Sourced<String>, block: &[Node]) {
        let context = format!("vrrp_sync_group.{}", name.value);
        let mut group = DraftSyncGroup::named(name);
        for node in block {
            match node.keyword() {
                "group" => {
                    let Some(entries) = self.block(node) else {
                        continue;
                    };
                    // Names one per line or several on a line, as keepalived reads them.
                    let members = entries
                        .iter()
                        .flat_map(|e| e.words.iter().map(Word::sourced));
                    match &mut group.group {
                        Some(list) => list.value.extend(members),
                        None => {
                            group.group = Some(Sourced::new(members.collect(), Some(node.at())))
                        }
                    }
                }
                "notify_master" => group.notify_master = self.command(node, &context, false),
                "notify_backup" => group.notify_backup = self.command(node, &context, false),
                "notify_fault" => group.notify_fault = self.command(node, &context, false),
                "notify_stop" => group.notify_stop = self.command(node, &context, false),
                "notify" => group.notify = self.command(node, &context, true),
                "smtp_alert" => group.smtp_alert = self.flag(node),
                // `global_tracking` is the deprecated spelling.
                "sync_group_tracking_weight" | "global_tracking" => {
                    group.tracking_weight = self.flag(node);
                }
                _ => self.ignored(node, &context, SYNC_GROUP_UNSUPPORTED),
            }
        }
        self.draft.sync_groups.push(group);
    }

    fn track_file(&mut self, name: Sourced<String>, block: &[Node]) {
        let context = format!("track_file.{}", name.value);
        let mut file = DraftTrackFile {
            name,
            file: None,
            weight: None,
            init_file: None,
        };
        for node in block {
            match node.keyword() {
                "file" => file.file = self.text(node),
                "weight" => {
                    let note = "; the weight applies as written".to_owned();
                    if let Some(weight) = self.weight_with_flags(node, &context, note) {
                        file.weight = weight;
                    }
                }
                "init_file" => {
                    if node.block.is_some() {
                        self.args(node, 0, "an optional value and `overwrite`");
                        continue;
                    }
                    let mut init = DraftInitFile {
                        value: None,
                        overwrite: None,
                    };
                    for word in node.args() {
                        if word.text == "overwrite" {
                            init.overwrite = Some(Sourced::new(true, Some(word.at)));
                        } else if word
                            .text
                            .starts_with(|c: char| c.is_ascii_digit() || c == '-')
                        {
                            init.value = self.int_word("init_file", word);
                        } else {
                            self.warn(
                                word.at,
                                &format!("{context}.init_file"),
                                KeepalivedWarning::UnknownKeyword {
                                    keyword: word.text.clone(),
                                },
                            );
                        }
                    }
                    file.init_file = Some(Sourced::new(init, Some(node.at())));
                }
                _ => self.ignored(node, &context, &[]),
            }
        }
        self.draft.track_files.push(file);
    }

    fn instance(&mut self, name: Sourced<String>, block: &[Node]) {
        let context = format!("vrrp_instance.{}", name.value);
        let mut inst = DraftInstance::named(name);
        for node in block {
            match node.keyword() {
                "state" => inst.state = self.text(node),
                "interface" => inst.interface = self.text(node),
                "announce"
                | "announce_mode"
                | "announce_standby_med"
                | "announce_standby_prepend"
                | "announce_communities" => self.announce_key(node, &mut inst.announce),
                "virtual_router_id" => inst.virtual_router_id = self.int(node),
                "priority" => inst.priority = self.int(node),
                "advert_int" => inst.advert_int = self.text(node),
                "version" => inst.version = self.int(node),
                "nopreempt" => inst.nopreempt = self.flag(node),
                "preempt" => inst.preempt = self.flag(node),
                "preempt_delay" => inst.preempt_delay = self.text(node),
                "accept" => inst.accept_mode = self.flag(node),
                "no_accept" => {
                    inst.accept_mode = self.flag(node).map(|f| Sourced::new(!f.value, f.at));
                }
                "authentication" => inst.authentication = self.authentication(node, &context),
                "virtual_ipaddress" => {
                    if let Some(entries) = self.block(node) {
                        let vips = self.vips(entries, &context);
                        inst.virtual_ipaddress = Some(Sourced::new(vips, Some(node.at())));
                    }
                }
                "unicast_src_ip" => inst.unicast_src_ip = self.text(node),
                "unicast_peer" => {
                    let key = format!("{context}.unicast_peer");
                    for entry in self.block(node).unwrap_or(&[]) {
                        if let Some(address) = self.list_entry(entry, &key) {
                            inst.unicast_peer.push(address);
                        }
                    }
                }
                "track_interface" => {
                    let key = format!("{context}.track_interface");
                    for entry in self.block(node).unwrap_or(&[]) {
                        if let Some(tracked) = self.tracked(entry, &key) {
                            inst.track_interface.push(tracked);
                        }
                    }
                }
                "track_bfd" => {
                    let key = format!("{context}.track_bfd");
                    for entry in self.block(node).unwrap_or(&[]) {
                        if let Some(tracked) = self.tracked_bfd(entry, &key) {
                            inst.track_bfd.push(tracked);
                        }
                    }
                }
                "track_script" => {
                    let key = format!("{context}.track_script");
                    for entry in self.block(node).unwrap_or(&[]) {
                        if let Some(tracked) = self.tracked(entry, &key) {
                            inst.track_script.push(tracked);
                        }
                    }
                }
                "track_file" => {
                    let key = format!("{context}.track_file");
                    for entry in self.block(node).unwrap_or(&[]) {
                        if let Some(tracked) = self.tracked(entry, &key) {
                            inst.track_file.push(tracked);
                        }
                    }
                }
                "garp_master_delay" => inst.garp_master_delay = self.text(node),
                "garp_master_repeat" => inst.garp_master_repeat = self.int(node),
                "garp_master_refresh" => inst.garp_master_refresh = self.text(node),
                "garp_interval" | "gna_interval" => inst.garp_interval = self.text(node),
                "notify_master" => inst.notify_master = self.command(node, &context, false),
                "notify_backup" => inst.notify_backup = self.command(node, &context, false),
                "notify_fault" => inst.notify_fault = self.command(node, &context, false),
                "notify_stop" => inst.notify_stop = self.command(node, &context, false),
                "notify" => inst.notify = self.command(node, &context, true),
                "smtp_alert" => inst.smtp_alert = self.flag(node),
                "v3_checksum_as_v2" => inst.v3_checksum = self.v3_checksum_as_v2(node),
                "use_vmac" => {
                    // `use_vmac [NAME] [MAC]`: a name first, then (rarely) a MAC to use
                    // instead of 00-00-5E-00-01-{VRID}.
                    inst.use_vmac = Some(Sourced::new(true, Some(node.at())));
                    let args = node.args();
                    let (names, macs): (Vec<_>, Vec<_>) =
                        args.iter().partition(|word| !word.text.contains(':'));
                    if let Some(name) = names.first() {
                        inst.vmac_name = Some(name.sourced());
                    }
                    for word in names.iter().skip(1).chain(macs.iter()) {
                        self.warn(
                            word.at,
                            &format!("{context}.use_vmac"),
                            KeepalivedWarning::NotImplemented {
                                keyword: format!("use_vmac {}", word.text),
                                note: "; the VMAC is 00-00-5E-00-01-{VRID} (RFC 9568 §7.3)".into(),
                                span: String::new(),
                            },
                        );
                    }
                }
                "vmac_xmit_base" => inst.vmac_xmit_base = self.flag(node),
                _ => self.ignored(node, &context, INSTANCE_UNSUPPORTED),
            }
        }
        self.draft.instances.push(inst);
    }

    fn authentication(
        &mut self,
        node: &Node,
        context: &str,
    ) -> Option<Sourced<DraftAuthentication>> {
        let block = self.block(node)?;
        let mut auth = DraftAuthentication {
            auth_type: None,
            auth_pass: None,
        };
        for entry in block {
            match entry.keyword() {
                "auth_type" => auth.auth_type = self.text(entry),
                "auth_pass" => auth.auth_pass = self.text(entry),
                _ => self.ignored(entry, &format!("{context}.authentication"), &[]),
            }
        }
        Some(Sourced::new(auth, Some(node.at())))
    }

    /// An entry of an address or interface list: the first word; keepalived's extra
    /// options (`weight W`, `min_ttl N`, …) are warned about.
    fn list_entry(&mut self, entry: &Node, key: &str) -> Option<Sourced<String>> {
        if entry.block.is_some() {
            self.error(
                entry.at(),
                KeepalivedError::BlockUnexpected {
                    keyword: entry.keyword().into(),
                },
            );
            return None;
        }
        if let Some(option) = entry.args().first() {
            self.warn(
                option.at,
                key,
                KeepalivedWarning::NotImplemented {
                    keyword: option.text.clone(),
                    note: String::new(),
                    span: String::new(),
                },
            );
        }
        entry.words.first().map(Word::sourced)
    }

    /// A `track_script`, `track_file` or `track_interface` entry:
    /// `NAME [weight W [reverse|noreverse]]`.
    fn tracked(&mut self, entry: &Node, key: &str) -> Option<DraftTrackedScript> {
        let name = self.list_entry_plain(entry)?;
        let mut weight = None;
        let mut args = entry.args().iter();
        while let Some(option) = args.next() {
            match (option.text.as_str(), args.next()) {
                ("weight", Some(value)) => weight = self.int_word("weight", value),
                ("weight", None) => self.error(
                    option.at,
                    KeepalivedError::OptionWithoutValue {
                        option: "weight".into(),
                    },
                ),
                // keepalived's default direction.
                ("noreverse", next) => {
                    if let Some(next) = next {
                        self.warn(
                            next.at,
                            key,
                            KeepalivedWarning::UnknownKeyword {
                                keyword: next.text.clone(),
                            },
                        );
                    }
                }
                _ => self.warn(
                    option.at,
                    key,
                    KeepalivedWarning::NotImplemented {
                        keyword: option.text.clone(),
                        note: String::new(),
                        span: String::new(),
                    },
                ),
            }
        }
        Some(DraftTrackedScript { name, weight })
    }

    fn list_entry_plain(&mut self, entry: &Node) -> Option<Sourced<String>> {
        if entry.block.is_some() {
            self.error(
                entry.at(),
                KeepalivedError::BlockUnexpected {
                    keyword: entry.keyword().into(),
                },
            );
            return None;
        }
        entry.words.first().map(Word::sourced)
    }

    /// `ADDR[/PREFIX] [dev IF] [label L] [brd B] [scope S] …`, one per line.
    fn vips(&mut self, entries: &[Node], context: &str) -> Vec<DraftVip> {
        let key = format!("{context}.virtual_ipaddress");
        let mut vips = Vec::new();
        for entry in entries {
            let Some(address) = self.list_entry_plain(entry) else {
                continue;
            };
            let mut vip = DraftVip {
                address,
                dev: None,
                label: None,
            };
            let mut args = entry.args().iter();
            while let Some(option) = args.next() {
                let name = option.text.as_str();
                let takes_value = matches!(
                    name,
                    "dev"
                        | "label"
                        | "brd"
                        | "broadcast"
                        | "scope"
                        | "preferred_lft"
                        | "track"
                        | "peer"
                );
                if !takes_value {
                    // Flags such as no_track, home, nodad, noprefixroute, autojoin.
                    self.warn(
                        option.at,
                        &key,
                        KeepalivedWarning::NotImplemented {
                            keyword: name.to_owned(),
                            note: String::new(),
                            span: String::new(),
                        },
                    );
                    continue;
                }
                let Some(value) = args.next() else {
                    self.error(
                        option.at,
                        KeepalivedError::OptionWithoutValue {
                            option: name.to_owned(),
                        },
                    );
                    break;
                };
                match name {
                    "dev" => vip.dev = Some(value.sourced()),
                    "label" => vip.label = Some(value.sourced()),
                    // keepalived's default scope; nothing to do.
                    "scope" if value.text == "global" => {}
                    _ => self.warn(
                        option.at,
                        &key,
                        KeepalivedWarning::NotImplemented {
                            keyword: format!("{name} {}", value.text),
                            note: String::new(),
                            span: String::new(),
                        },
                    ),
                }
            }
            vips.push(vip);
        }
        vips
    }

    /// keepalived defaults that differ from vipd's: VRRP version 2 (3 for IPv6, which
    /// v2 cannot carry) and the `vrrp_garp_*` globals.
    fn apply_defaults(&mut self) {
        let d = &self.defaults;
        if d.smtp_alert_vrrp.is_some() {
            self.draft.global.smtp_alert.clone_from(&d.smtp_alert_vrrp);
        }
        for inst in &mut self.draft.instances {
            if inst.version.is_none() {
                let first_is_v6 = inst
                    .virtual_ipaddress
                    .as_ref()
                    .and_then(|list| list.value.first())
                    .is_some_and(|vip| vip.address.value.contains(':'));
                inst.version = d.version.clone().or_else(|| {
                    let version = if first_is_v6 {
                        3
                    } else {
                        KEEPALIVED_DEFAULT_VERSION
                    };
                    Some(Sourced::new(version, None))
                });
            }
            fill(&mut inst.garp_master_delay, &d.garp_master_delay);
            fill(&mut inst.garp_master_repeat, &d.garp_master_repeat);
            fill(&mut inst.garp_master_refresh, &d.garp_master_refresh);
            fill(&mut inst.garp_interval, &d.garp_interval);
            fill(&mut inst.v3_checksum, &d.v3_checksum);
        }
    }
}

// ---- L3 announcements (vipd's extension) ----

impl Mapper<'_> {
    /// One of the `announce*` keywords of a vrrp_instance or virtual_server (vipd's
    /// extension, docs/l3.md): `announce bgp`, `announce_mode active-active|active-standby`,
    /// `announce_standby_med N`, `announce_standby_prepend N`,
    /// `announce_communities ASN:V ...`.
    fn announce_key(&mut self, node: &Node, announce: &mut DraftAnnounce) {
        match node.keyword() {
            "announce" => announce.announce = self.text(node),
            "announce_mode" => announce.mode = self.text(node),
            "announce_standby_med" => announce.standby_med = self.int(node),
            "announce_standby_prepend" => announce.standby_prepend = self.int(node),
            _ => {
                if node.block.is_some() || node.args().is_empty() {
                    self.args(node, 1, "one or more ASN:VALUE communities");
                    return;
                }
                announce
                    .communities
                    .extend(node.args().iter().map(Word::sourced));
            }
        }
    }
}

// ---- BFD (bfd_instance, track_bfd) ----

impl Mapper<'_> {
    /// `bfd_instance NAME { neighbor_ip …; source_ip …; min_rx MS; min_tx MS; idle_tx MS;
    /// multiplier N; passive; ttl N; max_hops N; weight W }`. keepalived's intervals are
    /// milliseconds (decimals allowed here: `min_tx 3.3`).
    fn bfd_instance(&mut self, name: Sourced<String>, block: &[Node]) {
        let context = format!("bfd_instance.{}", name.value);
        let mut bfd = DraftBfd::named(name);
        let millis = |text: Option<Sourced<String>>| {
            text.map(|t| Sourced::new(format!("{}ms", t.value), t.at))
        };
        for node in block {
            match node.keyword() {
                "neighbor_ip" => bfd.neighbor_ip = self.text(node),
                "source_ip" => bfd.source_ip = self.text(node),
                "min_rx" => bfd.min_rx = millis(self.text(node)),
                "min_tx" => bfd.min_tx = millis(self.text(node)),
                "idle_tx" => bfd.idle_tx = millis(self.text(node)),
                "multiplier" => bfd.multiplier = self.int(node),
                "passive" => bfd.passive = self.flag(node),
                "ttl" | "hoplimit" => bfd.ttl = self.int(node),
                "max_hops" => bfd.max_hops = self.int(node),
                "weight" => bfd.weight = self.int(node),
                "vrrp" | "checker" => self.ignored(
                    node,
                    &context,
                    &[
                        ("vrrp", "; vipd runs BFD in its VRRP process"),
                        ("checker", ""),
                    ],
                ),
                _ => self.ignored(node, &context, &[]),
            }
        }
        self.draft.bfd_instances.push(bfd);
    }

    /// A `track_bfd` entry: `NAME [weight W] [peer]` (`peer` is vipd's).
    fn tracked_bfd(&mut self, entry: &Node, key: &str) -> Option<DraftTrackedBfd> {
        let name = self.list_entry_plain(entry)?;
        let mut tracked = DraftTrackedBfd {
            name,
            weight: None,
            peer: None,
        };
        let mut args = entry.args().iter();
        while let Some(option) = args.next() {
            match option.text.as_str() {
                "weight" => match args.next() {
                    Some(value) => tracked.weight = self.int_word("weight", value),
                    None => self.error(
                        option.at,
                        KeepalivedError::OptionWithoutValue {
                            option: "weight".into(),
                        },
                    ),
                },
                "peer" => tracked.peer = Some(Sourced::new(true, Some(option.at))),
                _ => self.warn(
                    option.at,
                    key,
                    KeepalivedWarning::NotImplemented {
                        keyword: option.text.clone(),
                        note: String::new(),
                        span: String::new(),
                    },
                ),
            }
        }
        Some(tracked)
    }
}

fn fill<T: Clone>(slot: &mut Option<T>, default: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(default);
    }
}

#[path = "keepalived_lb.rs"]
mod lb;

#[cfg(test)]
#[path = "keepalived_tests.rs"]
mod tests;
