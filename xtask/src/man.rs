//! vipd.toml(5), generated from docs/configuration.md.
//!
//! Why generated rather than a hand-kept roff file next to it: the markdown is the
//! reference that reviews keep current (every new key lands there with its type, default
//! and keepalived equivalent); a second copy in roff would drift the first time someone
//! adds a key and forgets it. The page is built at packaging time by this converter for
//! the small markdown subset the document uses: headings, paragraphs, bullet lists,
//! fenced code and the key tables (each row becomes a tagged paragraph:
//! key, type, default, meaning, keepalived equivalent). Links keep their text only. The
//! section for developers ("For developers: the model") is left out: it is about the
//! Rust API, not the file.
//!
//! No markdown crate: the subset is fixed by our own document and the converter's test
//! runs it against that document, so a construct it does not know shows up there.

/// A heading whose section (and everything after it up to the next heading of the same
/// level) stays out of the man page.
const SKIPPED_SECTION: &str = "For developers";

/// Converts the configuration reference to a man page in section 5.
pub fn config_page(markdown: &str, version: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        ".TH VIPD.TOML 5 \"\" \"vipd {version}\" \"File Formats Manual\"\n"
    ));
    out.push_str(".SH NAME\nvipd.toml \\- configuration file of the vipd VRRP daemon\n");
    out.push_str(".SH SYNOPSIS\n\\fI/etc/vipd/vipd.toml\\fR\n");

    let mut lines = markdown.lines().peekable();
    let mut skipping = false;
    let mut paragraph: Vec<String> = Vec::new();
    let flush = |paragraph: &mut Vec<String>, out: &mut String| {
        if !paragraph.is_empty() {
            out.push_str(".PP\n");
            out.push_str(&text_line(&paragraph.join(" ")));
            paragraph.clear();
        }
    };
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix("# ") {
            // The document title: what follows is the description.
            let _ = title;
            flush(&mut paragraph, &mut out);
            out.push_str(".SH DESCRIPTION\n");
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            flush(&mut paragraph, &mut out);
            skipping = heading.starts_with(SKIPPED_SECTION);
            if !skipping {
                out.push_str(&format!(".SH {}\n", heading_text(heading, true)));
            }
            continue;
        }
        if skipping {
            continue;
        }
        if let Some(heading) = line.strip_prefix("### ") {
            flush(&mut paragraph, &mut out);
            out.push_str(&format!(".SS {}\n", heading_text(heading, false)));
            continue;
        }
        if line.starts_with("```") {
            flush(&mut paragraph, &mut out);
            out.push_str(".PP\n.RS 4\n.nf\n");
            for code in lines.by_ref() {
                if code.starts_with("```") {
                    break;
                }
                out.push_str(&code_line(code));
            }
            out.push_str(".fi\n.RE\n");
            continue;
        }
        if line.starts_with('|') {
            flush(&mut paragraph, &mut out);
            let header = cells(line);
            // The |---| line.
            lines.next_if(|l| l.starts_with("|-") || l.starts_with("|:"));
            while let Some(row) = lines.next_if(|l| l.starts_with('|')) {
                out.push_str(&table_row(&header, &cells(row)));
            }
            continue;
        }
        if let Some(item) = line.strip_prefix("- ") {
            flush(&mut paragraph, &mut out);
            let mut text = item.to_owned();
            while let Some(more) = lines.next_if(|l| l.starts_with("  ") && !l.trim().is_empty()) {
                text.push(' ');
                text.push_str(more.trim());
            }
            out.push_str(".IP \\(bu 2\n");
            out.push_str(&text_line(&text));
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut paragraph, &mut out);
            continue;
        }
        paragraph.push(line.trim().to_owned());
    }
    flush(&mut paragraph, &mut out);
    out.push_str(".SH FILES\n.TP\n\\fI/etc/vipd/vipd.toml\\fR\nThe configuration \\fBvipd run\\fR reads by default.\n");
    out.push_str(".SH SEE ALSO\n\\fBvipd\\fR(8), \\fBvipd\\-check\\fR(8), \\fBvipd\\-convert\\fR(8), \\fBkeepalived.conf\\fR(5);\n/usr/share/doc/vipd/configuration.md\n");
    out
}

/// A heading's text: code spans unwrapped; a section's plain words upper-cased as man
/// sections are, table names (`[instance.NAME]`) kept as written, since they are what
/// one types.
fn heading_text(heading: &str, section: bool) -> String {
    let plain = strip_links(heading);
    if plain.contains('`') || !section {
        escape(&plain.replace('`', ""))
    } else {
        escape(&plain.to_uppercase())
    }
}

/// The cells of a table row, outer pipes dropped; `\|` stays a literal pipe.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    out.push(cell.trim().to_owned());
    out
}

/// One key row as a tagged paragraph: the key in bold as the tag; type and default on
/// the first line; the meaning; the keepalived equivalent last.
fn table_row(header: &[String], row: &[String]) -> String {
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .and_then(|i| row.get(i))
            .filter(|c| !c.is_empty() && c.as_str() != "—")
    };
    let mut out = String::from(".TP\n");
    out.push_str(&text_line(row.first().map_or("", String::as_str)));
    let mut summary = Vec::new();
    if let Some(kind) = column("type") {
        summary.push(kind.clone());
    }
    if let Some(default) = column("default") {
        summary.push(format!("default: {default}"));
    }
    if !summary.is_empty() {
        out.push_str(&text_line(&format!("({})", summary.join("; "))));
        out.push_str(".br\n");
    }
    if let Some(meaning) = column("meaning") {
        out.push_str(&text_line(meaning));
    }
    if let Some(keepalived) = column("keepalived") {
        out.push_str(&text_line(&format!("keepalived: {keepalived}.")));
    }
    out
}

/// Markdown links keep their text: `[text](target)` becomes `text`.
fn strip_links(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find("](") else {
            break;
        };
        let Some(end) = after[close + 2..].find(')') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&after[..close]);
        rest = &after[close + 2 + end + 1..];
    }
    out.push_str(rest);
    out
}

/// Characters that roff treats specially or that are better named than left to the
/// terminal's font.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '—' => out.push_str("\\(em"),
            '–' => out.push_str("\\(en"),
            '−' => out.push_str("\\-"),
            '≤' => out.push_str("\\(<="),
            '≥' => out.push_str("\\(>="),
            '×' => out.push_str("\\(mu"),
            '→' => out.push_str("\\(->"),
            '…' => out.push_str("..."),
            '¹' => out.push_str("^1"),
            '²' => out.push_str("^2"),
            '³' => out.push_str("^3"),
            _ => out.push(c),
        }
    }
    out
}

/// A line of running text: links unwrapped, `code` and **strong** in bold, and a
/// leading `.` or `'` protected so roff does not read it as a request.
fn text_line(text: &str) -> String {
    let text = strip_links(text);
    let mut out = String::new();
    let mut bold = false;
    let mut rest = text.as_str();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("**") {
            out.push_str(if bold { "\\fR" } else { "\\fB" });
            bold = !bold;
            rest = after;
        } else if let Some(after) = rest.strip_prefix('`') {
            let end = after.find('`').unwrap_or(after.len());
            out.push_str("\\fB");
            out.push_str(&escape(&after[..end]));
            out.push_str(if bold { "\\fB" } else { "\\fR" });
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            // Up to the next code span or strong marker (a lone `*` is text).
            let next = rest
                .char_indices()
                .skip(1)
                .find(|&(i, _)| rest[i..].starts_with('`') || rest[i..].starts_with("**"))
                .map_or(rest.len(), |(i, _)| i);
            let (chunk, after) = rest.split_at(next);
            out.push_str(&escape(chunk));
            rest = after;
        }
    }
    if bold {
        out.push_str("\\fR");
    }
    protect_start(out)
}

/// A line of a code block, verbatim but escaped.
fn code_line(code: &str) -> String {
    protect_start(escape(code))
}

fn protect_start(mut line: String) -> String {
    if line.starts_with('.') || line.starts_with('\'') {
        line.insert_str(0, "\\&");
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> String {
        let doc = std::fs::read_to_string(crate::workspace_root().join("docs/configuration.md"))
            .expect("docs/configuration.md");
        config_page(&doc, "0.1.0")
    }

    #[test]
    fn every_key_of_the_reference_becomes_a_tagged_paragraph() {
        let doc = std::fs::read_to_string(crate::workspace_root().join("docs/configuration.md"))
            .expect("docs/configuration.md");
        let page = page();
        let mut keys = 0;
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let cell = cells(line)[0].clone();
            // A cell may name several keys: `address`, `port`.
            let names: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
            let tag = if names.len() == 1 {
                format!(".TP\n\\fB{}\\fR\n", escape(names[0]))
            } else {
                let bold: Vec<String> = names
                    .iter()
                    .map(|n| format!("\\fB{}\\fR", escape(n)))
                    .collect();
                format!(".TP\n{}\n", bold.join(", "))
            };
            assert!(page.contains(&tag), "{cell} missing as {tag:?}");
            keys += 1;
        }
        assert!(
            keys > 40,
            "only {keys} keys found: did the table format change?"
        );
        assert!(page.starts_with(".TH VIPD.TOML 5 "), "{page}");
        assert!(page.contains(".SH [global]\n") && page.contains(".SS Election\n"));
        assert!(
            !page.contains("parse_toml"),
            "the developers' section is left out"
        );
    }

    #[test]
    fn text_is_escaped_for_roff() {
        assert_eq!(
            text_line("`a-b` is **not** [c](d.md) ≤ 3"),
            "\\fBa\\-b\\fR is \\fBnot\\fR c \\(<= 3\n"
        );
        assert_eq!(code_line(".hidden 'x'"), "\\&.hidden 'x'\n");
        assert_eq!(cells("| `a` | x \\| y | |"), vec!["`a`", "x | y", ""]);
    }

    #[test]
    fn groff_reads_the_page_without_warnings() {
        if which::which("groff").is_err() {
            eprintln!("groff not installed: skipping");
            return;
        }
        let dir = std::env::temp_dir().join(format!("xtask-man-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vipd.toml.5");
        std::fs::write(&path, page()).unwrap();
        let out = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z", "-K", "utf8"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    }
}
