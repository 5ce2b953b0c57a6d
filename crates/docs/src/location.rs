//! Where in its document a chunk is: a page, a slide, a row, a message, a cell, a chapter.

/// Where in its document a chunk is: what a person would cite ("p. 12", "slide 3").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Location {
    /// A PDF page, from 1.
    Page { page: u32 },
    /// A presentation's slide, from 1.
    Slide { slide: u32 },
    /// A spreadsheet's sheet (empty for CSV/TSV) and the first row of the chunk's rows, from 1
    /// (row 1 is the header).
    Sheet { sheet: String, row: u32 },
    /// A message of a mailbox, from 1, and its subject.
    Message {
        message: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    /// A notebook's cell, from 1.
    Cell { cell: u32 },
    /// An e-book's chapter (its place in the reading order, from 1) and its title.
    Chapter {
        chapter: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
}

impl Location {
    /// A short label for people: "p. 12", "slide 3", "sheet Q3, row 5000", "row 12" (CSV),
    /// "message 4: Subject", "cell 7", "chapter 2: Title".
    pub fn label(&self) -> String {
        match self {
            Self::Page { page } => format!("p. {page}"),
            Self::Slide { slide } => format!("slide {slide}"),
            Self::Sheet { sheet, row } if sheet.is_empty() => format!("row {row}"),
            Self::Sheet { sheet, row } => format!("sheet {sheet}, row {row}"),
            Self::Message { message, subject } => match subject.as_deref().map(str::trim) {
                Some(s) if !s.is_empty() => format!("message {message}: {s}"),
                _ => format!("message {message}"),
            },
            Self::Cell { cell } => format!("cell {cell}"),
            Self::Chapter { chapter, title } => match title.as_deref().map(str::trim) {
                Some(t) if !t.is_empty() => format!("chapter {chapter}: {t}"),
                _ => format!("chapter {chapter}"),
            },
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}
