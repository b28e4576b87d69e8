//! The parts a report is made of (paragraphs, tables, figures under headings), and their
//! markdown.

use std::fmt::Write;

/// A table: its head and rows of cells, as markdown writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub head: Vec<String>,
    /// Rows, each as many cells as the head.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with `head`.
    pub fn new<S: Into<String>>(head: impl IntoIterator<Item = S>) -> Self {
        Self {
            head: head.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as markdown, one line per row.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        let mut out = line(&self.head);
        let _ = write!(out, "\n|{}", " --- |".repeat(self.head.len()));
        for row in &self.rows {
            let _ = write!(out, "\n{}", line(row));
        }
        out
    }
}

/// A figure written beside the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// File name inside the report's figure folder.
    pub file: String,
    /// What it shows, as its caption.
    pub caption: String,
}

/// One block of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph of prose.
    Text(String),
    /// A table.
    Table(Table),
    /// A figure, by its file in the figure folder.
    Figure(Figure),
}

/// A heading with its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading.
    pub title: String,
    /// What follows it.
    pub blocks: Vec<Block>,
}

impl Section {
    /// A section with no blocks yet.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// Appends a paragraph (nothing for an empty one).
    pub fn text(&mut self, text: impl Into<String>) -> &mut Self {
        let text = text.into();
        if !text.trim().is_empty() {
            self.blocks.push(Block::Text(text));
        }
        self
    }

    /// Appends a table (nothing for an empty one).
    pub fn table(&mut self, table: Table) -> &mut Self {
        if !table.is_empty() {
            self.blocks.push(Block::Table(table));
        }
        self
    }

    /// Appends a figure.
    pub fn figure(&mut self, figure: Figure) -> &mut Self {
        self.blocks.push(Block::Figure(figure));
        self
    }

    /// Whether it has nothing under its heading.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The section as markdown under a heading of `level` hashes; figures are linked
    /// through `figure_dir`.
    pub fn markdown(&self, level: usize, figure_dir: &str) -> String {
        let mut out = format!("{} {}\n", "#".repeat(level), self.title);
        for block in &self.blocks {
            let _ = match block {
                Block::Text(t) => write!(out, "\n{}\n", t.trim()),
                Block::Table(t) => write!(out, "\n{}\n", t.markdown()),
                Block::Figure(f) => write!(
                    out,
                    "\n![{}]({figure_dir}{})\n\n*{}*\n",
                    f.caption, f.file, f.caption
                ),
            };
        }
        out
    }
}

/// Sections as one markdown text, each under a heading of `level`.
pub fn markdown(sections: &[Section], level: usize, figure_dir: &str) -> String {
    sections
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.markdown(level, figure_dir))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_write_markdown() {
        let mut t = Table::new(["a", "b"]);
        t.row(["1", "2"]);
        let mut s = Section::new("Title");
        s.text("Some text.").table(t).text(" ").figure(Figure {
            file: "f.svg".into(),
            caption: "A figure.".into(),
        });
        assert_eq!(
            s.markdown(2, "seed/"),
            "## Title\n\nSome text.\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n\
             ![A figure.](seed/f.svg)\n\n*A figure.*\n"
        );
        assert!(Section::new("x").is_empty());
        assert_eq!(markdown(&[Section::new("empty")], 2, ""), "");
    }
}
