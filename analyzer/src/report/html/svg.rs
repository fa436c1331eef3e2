//! A small typed SVG writer: the plots are values (rectangles, lines, text with a tooltip),
//! and only [`Svg`]'s `Display` turns them into markup, escaping every piece of text on the
//! way. Nothing from a report is ever pasted into markup by hand.

use std::fmt::{self, Display, Write as _};

/// Escapes text for SVG/HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML; show them as the replacement mark.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Horizontal alignment of a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// Starts at x.
    Start,
    /// Centred on x.
    Middle,
    /// Ends at x.
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// One element of a plot. `class` names come from the page's own style sheet (static
/// strings, never report data); text and tooltips are escaped when written.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A rectangle, with a tooltip when `title` is given.
    Rect {
        /// Left.
        x: f64,
        /// Top.
        y: f64,
        /// Width.
        w: f64,
        /// Height.
        h: f64,
        /// Style class.
        class: &'static str,
        /// Opacity from 0 to 1 (aggregated cells shade by count).
        opacity: f64,
        /// Tooltip.
        title: Option<String>,
    },
    /// A straight line.
    Line {
        /// Start x.
        x1: f64,
        /// Start y.
        y1: f64,
        /// End x.
        x2: f64,
        /// End y.
        y2: f64,
        /// Style class.
        class: &'static str,
    },
    /// A label.
    Text {
        /// Anchor x.
        x: f64,
        /// Baseline y.
        y: f64,
        /// Alignment.
        anchor: Anchor,
        /// Style class.
        class: &'static str,
        /// The text (escaped when written).
        text: String,
    },
}

/// A whole plot: its size, an accessible label, and its elements in drawing order.
#[derive(Clone, Debug, PartialEq)]
pub struct Svg {
    /// Width in px (the plot scales down with its container).
    pub width: f64,
    /// Height in px.
    pub height: f64,
    /// What the plot shows, for screen readers.
    pub label: String,
    /// Elements, drawn in order.
    pub nodes: Vec<Node>,
}

impl Svg {
    /// An empty plot.
    pub fn new(width: f64, height: f64, label: impl Into<String>) -> Svg {
        Svg {
            width,
            height,
            label: label.into(),
            nodes: Vec::new(),
        }
    }

    /// Adds a rectangle without a tooltip.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, class: &'static str) {
        self.nodes.push(Node::Rect {
            x,
            y,
            w,
            h,
            class,
            opacity: 1.0,
            title: None,
        });
    }

    /// Adds a line.
    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), class: &'static str) {
        self.nodes.push(Node::Line {
            x1,
            y1,
            x2,
            y2,
            class,
        });
    }

    /// Adds a label.
    pub fn text(&mut self, x: f64, y: f64, anchor: Anchor, class: &'static str, text: &str) {
        self.nodes.push(Node::Text {
            x,
            y,
            anchor,
            class,
            text: text.to_owned(),
        });
    }
}

/// A coordinate with at most one decimal: enough for a screen, and keeps big plots small.
struct Px(f64);

impl Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.0.is_finite() { self.0 } else { 0.0 };
        let rounded = (v * 10.0).round() / 10.0;
        if rounded.fract() == 0.0 {
            write!(f, "{}", rounded as i64)
        } else {
            write!(f, "{rounded:.1}")
        }
    }
}

impl Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Rect {
                x,
                y,
                w,
                h,
                class,
                opacity,
                title,
            } => {
                write!(
                    f,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" class="{class}""#,
                    Px(*x),
                    Px(*y),
                    Px(w.max(0.0)),
                    Px(h.max(0.0))
                )?;
                if *opacity < 1.0 {
                    write!(f, r#" fill-opacity="{:.2}""#, opacity.clamp(0.0, 1.0))?;
                }
                match title {
                    Some(t) => write!(f, "><title>{}</title></rect>", escape(t)),
                    None => f.write_str("/>"),
                }
            }
            Node::Line {
                x1,
                y1,
                x2,
                y2,
                class,
            } => write!(
                f,
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}" class="{class}"/>"#,
                Px(*x1),
                Px(*y1),
                Px(*x2),
                Px(*y2)
            ),
            Node::Text {
                x,
                y,
                anchor,
                class,
                text,
            } => write!(
                f,
                r#"<text x="{}" y="{}" text-anchor="{}" class="{class}">{}</text>"#,
                Px(*x),
                Px(*y),
                anchor.as_str(),
                escape(text)
            ),
        }
    }
}

impl Display for Svg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(64 + self.nodes.len() * 80);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">"#,
            Px(self.width),
            Px(self.height),
            Px(self.width),
            Px(self.height),
            escape(&self.label)
        );
        for node in &self.nodes {
            let _ = write!(out, "{node}");
        }
        out.push_str("</svg>");
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_tooltips_are_escaped() {
        let mut svg = Svg::new(10.0, 10.0, r#"a "plot" <of> x"#);
        svg.text(
            1.0,
            2.0,
            Anchor::Start,
            "label",
            "<script>alert(1)</script>",
        );
        svg.nodes.push(Node::Rect {
            x: 0.0,
            y: 0.0,
            w: 1.0,
            h: 1.0,
            class: "k0",
            opacity: 0.5,
            title: Some("\"><img src=x onerror=alert(1)>\u{7}".into()),
        });
        let out = svg.to_string();
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("<title>&quot;&gt;&lt;img src=x"), "{out}");
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{out}"
        );
        assert!(out.contains("aria-label=\"a &quot;plot&quot; &lt;of&gt; x\""));
        assert!(out.contains('\u{FFFD}') && !out.contains('\u{7}'));
    }

    #[test]
    fn coordinates_are_short_and_finite() {
        assert_eq!(Px(3.0).to_string(), "3");
        assert_eq!(Px(2.345).to_string(), "2.3");
        assert_eq!(Px(f64::NAN).to_string(), "0");
        assert_eq!(Px(-0.04).to_string(), "0");
    }
}
