//! The report's page: one self-contained XHTML file (inline CSS and SVG,
//! no script, no font or anything else fetched), written so that it also
//! parses as XML, which is what the structural test checks.

use std::fmt::Write as _;

/// Text and attribute values made safe for XML and HTML alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 refuses most control characters even as references.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// System fonts only: nothing to fetch, readable offline.
const STYLE: &str = "
body { font-family: sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h1 small { color: #666; font-weight: normal; }
h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #cf222e; font-weight: bold; }
.unknown { color: #9a6700; font-weight: bold; }
p.verdict { font-size: 16px; }
figure { margin: 8px 0 16px 0; } figcaption { font-size: 13px; color: #555; max-width: 1100px; }
pre { background: #f6f8fa; padding: 8px; white-space: pre-wrap; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
.charts figure { margin: 0; width: 370px; } .charts figcaption { font-size: 12px; }
";

/// A page under construction.
pub struct Page {
    body: String,
    title: String,
}

impl Page {
    pub fn new(title: &str) -> Page {
        Page { body: String::new(), title: title.to_string() }
    }

    /// Markup already escaped (or SVG already built).
    pub fn raw(&mut self, markup: &str) {
        self.body.push_str(markup);
    }

    pub fn heading(&mut self, level: u8, text: &str) {
        let _ = writeln!(self.body, "<h{level}>{}</h{level}>", escape(text));
    }

    pub fn paragraph(&mut self, class: &str, text: &str) {
        let _ = writeln!(self.body, "<p class=\"{}\">{}</p>", escape(class), escape(text));
    }

    pub fn preformatted(&mut self, text: &str) {
        let _ = writeln!(self.body, "<pre>{}</pre>", escape(text));
    }

    /// A figure holding one SVG and its caption.
    pub fn figure(&mut self, id: &str, svg: &str, caption: &str) {
        let _ = writeln!(
            self.body,
            "<figure class=\"plot\" id=\"{}\">\n{svg}<figcaption>{}</figcaption>\n</figure>",
            escape(id),
            escape(caption)
        );
    }

    pub fn table(&mut self, table: &Table) {
        self.body.push_str(&table.render());
    }

    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            escape(&self.title),
            self.body
        )
    }
}

/// A cell: text, and a class (`num` right-aligns, `pass`/`fail` colour).
pub struct Cell {
    pub text: String,
    pub class: &'static str,
    /// `text` is markup already (links), not to be escaped again.
    pub markup: bool,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), class: "", markup: false }
    }

    pub fn num(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), class: "num", markup: false }
    }

    pub fn class(text: impl Into<String>, class: &'static str) -> Cell {
        Cell { text: text.into(), class, markup: false }
    }

    /// Markup the caller built and escaped (a list of links).
    pub fn markup(markup: impl Into<String>) -> Cell {
        Cell { text: markup.into(), class: "", markup: true }
    }
}

/// A table with a header row; each body row is a `<tr class="row">`.
pub struct Table {
    class: String,
    header: Vec<String>,
    rows: Vec<(String, Vec<Cell>)>,
}

impl Table {
    pub fn new(class: &str, header: &[&str]) -> Table {
        Table { class: class.to_string(), header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// `key` goes to the row's `data-key` (a variant's name, a check's).
    pub fn row(&mut self, key: &str, cells: Vec<Cell>) {
        self.rows.push((key.to_string(), cells));
    }

    fn render(&self) -> String {
        let mut s = format!("<table class=\"{}\">\n<thead><tr>", escape(&self.class));
        for h in &self.header {
            let _ = write!(s, "<th>{}</th>", escape(h));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for (key, cells) in &self.rows {
            let _ = write!(s, "<tr class=\"row\" data-key=\"{}\">", escape(key));
            for cell in cells {
                let text = if cell.markup { cell.text.clone() } else { escape(&cell.text) };
                if cell.class.is_empty() {
                    let _ = write!(s, "<td>{text}</td>");
                } else {
                    let _ = write!(s, "<td class=\"{}\">{text}</td>", cell.class);
                }
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody>\n</table>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_as_xml_whatever_the_text_holds() {
        let mut page = Page::new("a <b> & \"c\"");
        page.heading(2, "x < y");
        page.preformatted("key \u{1}\u{7f} 'k' & <v>");
        let mut t = Table::new("t", &["a", "b"]);
        t.row("v&1", vec![Cell::text("<1>"), Cell::num("2")]);
        page.table(&t);
        let html = page.finish();
        let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        let doc = roxmltree::Document::parse_with_options(&html, options).expect("well-formed");
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("tr")).count(), 2);
    }
}
